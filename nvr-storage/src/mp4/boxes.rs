//! Serialises the file's in-memory header: `ftyp`, `moov` with all sample tables, `mdat` header.
//!
//! Box layout (ISO/IEC 14496-12 unless noted). "v0|v1" = version 0 (32-bit times and
//! durations) unless a value needs version 1 (64-bit).
//!
//! ```text
//! box               when                     contents
//! ----------------  -----------------------  ------------------------------------------------
//! ftyp              always                   major 'isom', minor 0x200, compatible 'isom'
//!                                            'iso6' 'mp41', + 'avc1' if any entry is AVC
//! moov              always                   comes BEFORE mdat (progressive playback)
//! +- mvhd           always                   v0|v1, timescale 90000, duration = presentation,
//! |                                          next_track_ID 2
//! +- trak           always                   the single video track
//!    +- tkhd        always                   v0|v1, flags 3, track_ID 1, duration =
//!    |                                       presentation, width/height of the first part's
//!    |                                       sample entry as 16.16 fixed point
//!    +- edts        trim, duration limit     (or a composition shift: B-frames)
//!    |  +- elst     with edts                v0|v1, 1 entry: segment_duration = presentation,
//!    |                                       media_time = start trim + composition shift,
//!    |                                       rate 1.0
//!    +- mdia        always
//!       +- mdhd     always                   v0|v1, timescale 90000, duration = sum of sample
//!       |                                    durations, language 'und'
//!       +- hdlr     always                   handler 'vide', name "VideoHandler"
//!       +- minf     always
//!          +- vmhd  always                   flags 1, graphicsmode copy
//!          +- dinf  always
//!          |  +- dref                        1 entry:
//!          |     +- 'url '                   flags 1 = media data is in this same file
//!          +- stbl  always
//!             +- stsd                        every SampleEntry verbatim, in request order
//!             +- stts                        run-length (sample_count, sample_delta) pairs
//!             +- ctts       B-frames             v0, run-length (sample_count, sample_offset):
//!             |                                  composition offset + the plan's shift (so
//!             |                                  none is negative; the edit list starts
//!             |                                  that much later)
//!             +- stss                        1-based sample numbers of the key frames
//!             +- stsz                        sample_size 0 (= sizes vary), then each size
//!             +- stsc                        one chunk per part; an entry only where
//!             |                              samples_per_chunk or sample_description_index
//!             |                              (= sample_entry_idx + 1) changes
//!             +- stco|co64                   absolute file offset of each part's first byte;
//!                                            co64 when the last one exceeds u32::MAX
//! mdat              always                   8-byte header, or 16 bytes (size field 1 +
//!                                            64-bit largesize) when the box exceeds u32::MAX;
//!                                            payload = every part's frames, in order
//! ```
//!
//! The chunk offset box is the last thing in `moov` (stbl is the last child of minf, minf of
//! mdia, mdia of trak, trak of moov). So when it is reached, the size of everything before the
//! mdat payload is known from the bytes written so far plus its own size, which depends only on
//! the part count and stco-vs-co64: one pass, no placeholder offsets. Keep it last.

use bytes::{BufMut, Bytes};

use super::extras::{Extras, TEXT_TRACK_ID, text_track, write_meta};
use super::layout::{PartPlan, Plan};
use super::{Mp4Error, SampleEntry, TIMESCALE_90K};

/// Seconds from the MP4 epoch (1904-01-01) to the Unix epoch (1970-01-01): 66 years of which
/// 17 are leap years, (66 * 365 + 17) * 86400.
const MP4_EPOCH_OFFSET_SECS: i64 = 2_082_844_800;

/// `ftyp` minor version: 0x200 (512) is what ffmpeg and most muxers write with major brand
/// 'isom'; readers treat it as informational.
const FTYP_MINOR_VERSION: u32 = 0x200;

/// 1.0 as 16.16 fixed point (`mvhd` rate).
const FIXED_16_16_ONE: u32 = 0x0001_0000;

/// 1.0 as 8.8 fixed point (`mvhd` volume).
const FIXED_8_8_ONE: u16 = 0x0100;

/// Unity transformation matrix {a, b, u, c, d, v, x, y, w}: a, b, c, d, x, y are 16.16 fixed
/// point, u, v, w are 2.30 fixed point (so 0x4000_0000 = 1.0).
pub(super) const UNITY_MATRIX: [u32; 9] = [
    FIXED_16_16_ONE,
    0,
    0,
    0,
    FIXED_16_16_ONE,
    0,
    0,
    0,
    0x4000_0000,
];

/// `tkhd` flags: track_enabled (0x1) | track_in_movie (0x2).
const TKHD_FLAGS: u32 = 0x1 | 0x2;

/// The only track's ID; `mvhd` next_track_ID is one more.
pub(super) const TRACK_ID: u32 = 1;

/// ISO 639-2 "und" (undetermined) packed as three 5-bit letters (each `c - 0x60`):
/// u = 21, n = 14, d = 4 -> (21 << 10) | (14 << 5) | 4.
pub(super) const LANGUAGE_UND: u16 = (21 << 10) | (14 << 5) | 4;

/// `vmhd` flags: must be 1 (ISO/IEC 14496-12 section 12.1.2.2).
const VMHD_FLAGS: u32 = 1;

/// `url ` flags: 1 = self-contained, the media data is in the same file.
const URL_SELF_CONTAINED: u32 = 1;

/// Size of a full box's fixed part: 8-byte header + 4 bytes version/flags.
const FULL_BOX_HEADER_LEN: usize = 12;

/// `mdat` header sizes: size (4) + type (4), optionally + largesize (8).
const MDAT_HEADER_LEN: u64 = 8;
const MDAT_LARGE_HEADER_LEN: u64 = 16;

/// An ISO/IEC 14496-12 date (seconds since 1904-01-01 UTC) from Unix seconds; before 1904
/// clamps to 0, and the sum saturates rather than overflow.
pub(super) fn mp4_time(unix_secs: i64) -> u64 {
    u64::try_from(unix_secs.saturating_add(MP4_EPOCH_OFFSET_SECS)).unwrap_or(0)
}

/// Renders `ftyp` + `moov` + the `mdat` header for `plan`, with an export's `extras` (see
/// `extras.rs`: a file-level `meta` after `ftyp`, a text track after the video track and its
/// `mdat` before the video's).
pub(super) fn write_head(
    entries: &[SampleEntry],
    plan: &Plan,
    creation_time_unix_secs: i64,
    extras: &Extras,
) -> Result<Bytes, Mp4Error> {
    let entries_len: usize = entries.iter().map(|e| e.box_bytes.len()).sum();
    // Fixed-size boxes are well under 1 KiB; stsz takes 4 bytes a sample, stss and stts usually
    // much less (they grow if needed), stsc and co64 at most 12 and 8 bytes a part.
    let frames = usize::try_from(plan.frame_count).unwrap_or(0);
    let mut buf = Vec::with_capacity(1024 + entries_len + 4 * frames + 20 * plan.parts.len());

    write_ftyp(&mut buf, entries);
    if let Some(info) = &extras.export_info {
        write_meta(&mut buf, info)?;
    }

    let creation = mp4_time(creation_time_unix_secs);
    // One version for mvhd/tkhd/mdhd; the media duration is >= the presentation duration.
    let v1 = creation > u64::from(u32::MAX) || plan.media_duration_90k > u64::from(u32::MAX);
    let first_entry = &entries[plan.parts[0].sample_entry_idx];
    // Rendered first: its length (not its chunk offset) is needed for the video's offsets.
    let mut text = if extras.time_cues.is_empty() {
        None
    } else {
        Some(text_track(
            &extras.time_cues,
            plan.presentation_duration_90k,
            creation,
            first_entry.width,
            first_entry.height,
        )?)
    };
    // What comes between the video's chunk offsets and its mdat: the text trak and mdat.
    let text_len = text
        .as_ref()
        .map_or(0, |t| (t.trak.len() + t.mdat.len()) as u64);

    let moov = begin(&mut buf, b"moov");
    write_mvhd(&mut buf, v1, creation, plan.presentation_duration_90k);
    if text.is_some() {
        // next_track_ID, the last field of mvhd.
        let at = buf.len() - 4;
        patch_u32(&mut buf, at, TEXT_TRACK_ID + 1);
    }
    let trak = begin(&mut buf, b"trak");
    write_tkhd(
        &mut buf,
        v1,
        creation,
        plan.presentation_duration_90k,
        first_entry,
    );
    if let Some(edit) = plan.edit {
        let edts = begin(&mut buf, b"edts");
        let elst_v1 =
            edit.duration_90k > u64::from(u32::MAX) || edit.media_time_90k > i32::MAX as u64;
        let elst = begin_full(&mut buf, b"elst", u8::from(elst_v1), 0);
        buf.put_u32(1); // entry_count
        put_var(&mut buf, elst_v1, edit.duration_90k); // segment_duration, movie timescale
        put_var(&mut buf, elst_v1, edit.media_time_90k); // media_time (signed; always >= 0 here)
        buf.put_i16(1); // media_rate_integer: normal speed
        buf.put_i16(0); // media_rate_fraction
        end(&mut buf, elst)?;
        end(&mut buf, edts)?;
    }
    let mdia = begin(&mut buf, b"mdia");
    write_mdhd(&mut buf, v1, creation, plan.media_duration_90k);
    write_hdlr(&mut buf)?;
    let minf = begin(&mut buf, b"minf");
    write_vmhd_dinf(&mut buf)?;
    let stbl = begin(&mut buf, b"stbl");

    let stsd = begin_full(&mut buf, b"stsd", 0, 0);
    buf.put_u32(u32::try_from(entries.len()).map_err(|_| too_large("stsd"))?);
    for e in entries {
        buf.put_slice(&e.box_bytes);
    }
    end(&mut buf, stsd)?;
    write_stts(&mut buf, plan)?;
    if plan.composition_offsets {
        write_ctts(&mut buf, plan)?;
    }
    write_stss(&mut buf, plan)?;
    write_stsz(&mut buf, plan)?;
    write_stsc(&mut buf, &plan.parts)?;

    // Chunk offsets, last in moov (see the module comment).
    let n_chunks = plan.parts.len();
    let mdat_header_len = if plan.mdat_payload_len > u64::from(u32::MAX) - MDAT_HEADER_LEN {
        MDAT_LARGE_HEADER_LEN
    } else {
        MDAT_HEADER_LEN
    };
    // entry_count (4) + 4 or 8 bytes an entry.
    let co_len = |entry_len: usize| (FULL_BOX_HEADER_LEN + 4 + entry_len * n_chunks) as u64;
    let written = buf.len() as u64;
    let last_mdat_start = plan.parts[n_chunks - 1].mdat_start;
    let mut payload_start = written + co_len(4) + text_len + mdat_header_len;
    let co64 = payload_start + last_mdat_start > u64::from(u32::MAX);
    if co64 {
        payload_start = written + co_len(8) + text_len + mdat_header_len;
        let co = begin_full(&mut buf, b"co64", 0, 0);
        buf.put_u32(u32::try_from(n_chunks).map_err(|_| too_large("co64"))?);
        for p in plan.parts.iter() {
            buf.put_u64(payload_start + p.mdat_start);
        }
        end(&mut buf, co)?;
    } else {
        let co = begin_full(&mut buf, b"stco", 0, 0);
        buf.put_u32(u32::try_from(n_chunks).map_err(|_| too_large("stco"))?);
        for p in plan.parts.iter() {
            // Fits: checked above for the largest offset.
            buf.put_u32((payload_start + p.mdat_start) as u32);
        }
        end(&mut buf, co)?;
    }

    for pos in [stbl, minf, mdia, trak] {
        end(&mut buf, pos)?;
    }
    if let Some(t) = &mut text {
        // The text mdat follows moov, which ends with this trak.
        t.place((buf.len() + t.trak.len()) as u64);
        buf.extend_from_slice(&t.trak);
        end(&mut buf, moov)?;
        buf.extend_from_slice(&t.mdat);
    } else {
        end(&mut buf, moov)?;
    }

    let mdat_box_len = plan.mdat_payload_len + mdat_header_len;
    if mdat_header_len == MDAT_LARGE_HEADER_LEN {
        buf.put_u32(1); // size 1: the real size follows as a 64-bit largesize
        buf.put_slice(b"mdat");
        buf.put_u64(mdat_box_len);
    } else {
        buf.put_u32(mdat_box_len as u32); // fits: checked when choosing the header
        buf.put_slice(b"mdat");
    }
    if buf.len() as u64 != payload_start {
        return Err(Mp4Error::Internal(
            "header length does not match chunk offsets",
        ));
    }
    Ok(Bytes::from(buf))
}

fn too_large(what: &'static str) -> Mp4Error {
    Mp4Error::TooLarge { what }
}

/// Starts a box; returns its position for [`end`], which patches the size.
pub(super) fn begin(buf: &mut Vec<u8>, fourcc: &[u8; 4]) -> usize {
    let pos = buf.len();
    buf.put_u32(0); // size placeholder
    buf.put_slice(fourcc);
    pos
}

/// Starts a full box (a box with a version byte and 24 bits of flags).
pub(super) fn begin_full(buf: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
    let pos = begin(buf, fourcc);
    // 8-bit version in the top byte, 24-bit flags below it.
    buf.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    pos
}

/// Ends the box started at `pos` by writing its 32-bit size.
pub(super) fn end(buf: &mut [u8], pos: usize) -> Result<(), Mp4Error> {
    let size = u32::try_from(buf.len() - pos).map_err(|_| too_large("moov box"))?;
    patch_u32(buf, pos, size);
    Ok(())
}

pub(super) fn patch_u32(buf: &mut [u8], pos: usize, v: u32) {
    buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
}

/// Writes a time or duration as 64 bits (version 1 boxes) or 32 bits (version 0; the caller
/// chose version 0 only if it fits).
fn put_var(buf: &mut Vec<u8>, v1: bool, value: u64) {
    if v1 {
        buf.put_u64(value);
    } else {
        buf.put_u32(value as u32);
    }
}

pub(super) fn write_ftyp(buf: &mut Vec<u8>, entries: &[SampleEntry]) {
    let ftyp = begin(buf, b"ftyp");
    buf.put_slice(b"isom"); // major brand: ISO base media file format
    buf.put_u32(FTYP_MINOR_VERSION);
    // Compatible brands: 'isom' (the base format), 'iso6' (nothing used here is outside the
    // sixth-edition feature set, e.g. v1 elst, co64, several stsd entries), 'mp41' (MP4 v1
    // players accept it), 'avc1' (AVC per ISO/IEC 14496-15) only if an entry is AVC.
    buf.put_slice(b"isom");
    buf.put_slice(b"iso6");
    buf.put_slice(b"mp41");
    if entries
        .iter()
        .any(|e| matches!(e.box_bytes.get(4..8), Some(b"avc1" | b"avc3")))
    {
        buf.put_slice(b"avc1");
    }
    // ftyp is a few dozen bytes; its size always fits.
    let size = (buf.len() - ftyp) as u32;
    patch_u32(buf, ftyp, size);
}

pub(super) fn write_mvhd(buf: &mut Vec<u8>, v1: bool, creation: u64, duration_90k: u64) {
    let pos = begin_full(buf, b"mvhd", u8::from(v1), 0);
    put_var(buf, v1, creation); // creation_time
    put_var(buf, v1, creation); // modification_time
    buf.put_u32(TIMESCALE_90K);
    put_var(buf, v1, duration_90k);
    buf.put_u32(FIXED_16_16_ONE); // rate 1.0
    buf.put_u16(FIXED_8_8_ONE); // volume 1.0
    buf.put_u16(0); // reserved
    buf.put_u64(0); // reserved[2]
    for m in UNITY_MATRIX {
        buf.put_u32(m);
    }
    buf.put_bytes(0, 6 * 4); // pre_defined[6]
    buf.put_u32(TRACK_ID + 1); // next_track_ID
    let size = (buf.len() - pos) as u32; // fixed size, < 128 bytes
    patch_u32(buf, pos, size);
}

pub(super) fn write_tkhd(
    buf: &mut Vec<u8>,
    v1: bool,
    creation: u64,
    presentation_duration_90k: u64,
    entry: &SampleEntry,
) {
    let pos = begin_full(buf, b"tkhd", u8::from(v1), TKHD_FLAGS);
    put_var(buf, v1, creation); // creation_time
    put_var(buf, v1, creation); // modification_time
    buf.put_u32(TRACK_ID);
    buf.put_u32(0); // reserved
    put_var(buf, v1, presentation_duration_90k); // in the movie timescale (also 90 kHz)
    buf.put_u64(0); // reserved[2]
    buf.put_i16(0); // layer
    buf.put_i16(0); // alternate_group
    buf.put_u16(0); // volume: 0 for video
    buf.put_u16(0); // reserved
    for m in UNITY_MATRIX {
        buf.put_u32(m);
    }
    buf.put_u32(u32::from(entry.width) << 16); // 16.16 fixed point
    buf.put_u32(u32::from(entry.height) << 16);
    let size = (buf.len() - pos) as u32; // fixed size, < 128 bytes
    patch_u32(buf, pos, size);
}

pub(super) fn write_mdhd(buf: &mut Vec<u8>, v1: bool, creation: u64, media_duration_90k: u64) {
    let pos = begin_full(buf, b"mdhd", u8::from(v1), 0);
    put_var(buf, v1, creation); // creation_time
    put_var(buf, v1, creation); // modification_time
    buf.put_u32(TIMESCALE_90K);
    put_var(buf, v1, media_duration_90k);
    buf.put_u16(LANGUAGE_UND); // pad bit 0 + language
    buf.put_u16(0); // pre_defined
    let size = (buf.len() - pos) as u32; // fixed size, < 64 bytes
    patch_u32(buf, pos, size);
}

pub(super) fn write_hdlr(buf: &mut Vec<u8>) -> Result<(), Mp4Error> {
    let pos = begin_full(buf, b"hdlr", 0, 0);
    buf.put_u32(0); // pre_defined
    buf.put_slice(b"vide"); // handler_type: video track
    buf.put_bytes(0, 3 * 4); // reserved[3]
    buf.put_slice(b"VideoHandler\0"); // name, null-terminated UTF-8
    end(buf, pos)
}

pub(super) fn write_vmhd_dinf(buf: &mut Vec<u8>) -> Result<(), Mp4Error> {
    let vmhd = begin_full(buf, b"vmhd", 0, VMHD_FLAGS);
    buf.put_u16(0); // graphicsmode: copy
    buf.put_bytes(0, 3 * 2); // opcolor[3]
    end(buf, vmhd)?;
    write_dinf(buf)
}

/// `dinf` with one self-contained `url ` entry.
pub(super) fn write_dinf(buf: &mut Vec<u8>) -> Result<(), Mp4Error> {
    let dinf = begin(buf, b"dinf");
    let dref = begin_full(buf, b"dref", 0, 0);
    buf.put_u32(1); // entry_count
    let url = begin_full(buf, b"url ", 0, URL_SELF_CONTAINED);
    end(buf, url)?;
    end(buf, dref)?;
    end(buf, dinf)
}

/// `stts`: consecutive equal durations collapse into one (sample_count, sample_delta) entry.
fn write_stts(buf: &mut Vec<u8>, plan: &Plan) -> Result<(), Mp4Error> {
    let pos = begin_full(buf, b"stts", 0, 0);
    let count_pos = buf.len();
    buf.put_u32(0); // entry_count placeholder
    let mut entries: u32 = 0;
    let mut run: Option<(u32, u32)> = None; // (sample_count, sample_delta)
    for d in plan.sample_durations() {
        run = match run {
            Some((n, delta)) if delta == d => Some((n + 1, delta)),
            Some((n, delta)) => {
                buf.put_u32(n);
                buf.put_u32(delta);
                entries += 1;
                Some((1, d))
            }
            None => Some((1, d)),
        };
    }
    if let Some((n, delta)) = run {
        buf.put_u32(n);
        buf.put_u32(delta);
        entries += 1;
    }
    patch_u32(buf, count_pos, entries);
    end(buf, pos)
}

/// `ctts` version 0: consecutive equal (shifted, non-negative) composition offsets collapse
/// into one (sample_count, sample_offset) entry.
fn write_ctts(buf: &mut Vec<u8>, plan: &Plan) -> Result<(), Mp4Error> {
    let pos = begin_full(buf, b"ctts", 0, 0);
    let count_pos = buf.len();
    buf.put_u32(0); // entry_count placeholder
    let mut entries: u32 = 0;
    let mut run: Option<(u32, u32)> = None; // (sample_count, sample_offset)
    for o in plan.sample_composition_offsets() {
        run = match run {
            Some((n, offset)) if offset == o => Some((n + 1, offset)),
            Some((n, offset)) => {
                buf.put_u32(n);
                buf.put_u32(offset);
                entries += 1;
                Some((1, o))
            }
            None => Some((1, o)),
        };
    }
    if let Some((n, offset)) = run {
        buf.put_u32(n);
        buf.put_u32(offset);
        entries += 1;
    }
    patch_u32(buf, count_pos, entries);
    end(buf, pos)
}

/// `stss`: the 1-based sample numbers of key frames.
fn write_stss(buf: &mut Vec<u8>, plan: &Plan) -> Result<(), Mp4Error> {
    let pos = begin_full(buf, b"stss", 0, 0);
    let count_pos = buf.len();
    buf.put_u32(0); // entry_count placeholder
    let mut entries: u32 = 0;
    // frame_count <= u32::MAX (checked by the plan), so sample numbers fit.
    for (f, sample_number) in plan.parts.iter().flat_map(PartPlan::frames).zip(1u32..) {
        if f.is_key {
            buf.put_u32(sample_number);
            entries += 1;
        }
    }
    patch_u32(buf, count_pos, entries);
    end(buf, pos)
}

/// `stsz`: sample_size 0 (sizes vary), sample_count, then every size.
fn write_stsz(buf: &mut Vec<u8>, plan: &Plan) -> Result<(), Mp4Error> {
    let pos = begin_full(buf, b"stsz", 0, 0);
    buf.put_u32(0); // sample_size: 0 = a table follows
    buf.put_u32(plan.frame_count as u32); // fits: checked by the plan
    for f in plan.parts.iter().flat_map(PartPlan::frames) {
        buf.put_u32(f.size_bytes);
    }
    end(buf, pos)
}

/// `stsc`: chunk i + 1 is part i; runs of parts with the same sample count and sample entry
/// share an entry.
fn write_stsc(buf: &mut Vec<u8>, parts: &[PartPlan]) -> Result<(), Mp4Error> {
    let pos = begin_full(buf, b"stsc", 0, 0);
    let count_pos = buf.len();
    buf.put_u32(0); // entry_count placeholder
    let mut entries: u32 = 0;
    let mut prev: Option<(u32, u32)> = None; // (samples_per_chunk, sample_description_index)
    for (p, first_chunk) in parts.iter().zip(1u32..) {
        // Both fit: the frame count and the stsd entry count were checked to fit in u32.
        let samples = p.frame_range.len() as u32;
        let sdi = p.sample_entry_idx as u32 + 1; // 1-based
        if prev != Some((samples, sdi)) {
            buf.put_u32(first_chunk);
            buf.put_u32(samples);
            buf.put_u32(sdi);
            entries += 1;
            prev = Some((samples, sdi));
        }
    }
    patch_u32(buf, count_pos, entries);
    end(buf, pos)
}
