//! What an exported MP4 carries beyond the camera's video (playback's files carry none of it):
//! a timed-text track of the wall-clock time, and the ONVIF Export File Format metadata
//! (`suep`: who exported what from which camera, `cstb`: the absolute UTC start of each
//! track). The video track and its sample bytes are the same with or without them.
//!
//! ```text
//! box                  contents
//! -------------------  -----------------------------------------------------------------------
//! meta (file level)    FullBox v0, right after ftyp (ONVIF: suep "as early as possible")
//! +- hdlr              handler 'oeff' (the ONVIF Export File Format's scheme code), name
//! +- suep              FullBox v1: ExportUnitName, ExportUnitURL, ExportUnitMAC (NUL-terminated
//! |                    UTF-8), ExportUnitTime u64 (seconds since 1904-01-01 UTC), ExportOperator,
//! |                    entry_count u32, per track: TrackID u16, SourceName, SourceURL,
//! |                    SourceMAC, SourceLine
//! +- cstb              Box: entry_count u32, per track: track_ID u32, startTime u64 (100 ns
//!                      intervals since 1601-01-01 UTC of the track's media time 0)
//! moov/trak (track 2)  after the video track: the wall-clock time as 3GPP timed text
//! +- tkhd              flags 3 (enabled, in movie), the video's size, layer -1 (in front)
//! +- mdia
//!    +- mdhd           timescale 90000, duration = the video's presentation duration
//!    +- hdlr           'sbtl' "SubtitleHandler" (what ffmpeg writes for tx3g in MP4)
//!    +- minf
//!       +- nmhd, dinf
//!       +- stbl
//!          +- stsd     one 'tx3g' entry: bottom-centred white text on a translucent box,
//!          |           'ftab' with one font ("Sans-Serif")
//!          +- stts     each cue's duration (until the next cue; the last until the end)
//!          +- stsz     each sample's size
//!          +- stsc     one chunk holding every sample
//!          +- co64     that chunk's offset: the payload of the text mdat
//! mdat (text)          after moov, before the video's mdat: each sample is u16 length + UTF-8
//! ```
//! The text track has no edit list: its media time is the presentation time, so a cue at
//! `start_90k` shows when the video's presentation reaches it, and its first cue (at 0) is
//! the time of the first presented frame.

use bytes::BufMut;

use super::boxes::{begin, begin_full, end, patch_u32, write_dinf};
use super::{Mp4Error, TIMESCALE_90K};

/// The timed-text track's ID (the video track is 1).
pub const TEXT_TRACK_ID: u32 = 2;

/// Seconds from 1601-01-01 (the Windows FILETIME epoch that `cstb` counts from) to the Unix
/// epoch: 369 years of which 89 are leap years, (369 * 365 + 89) * 86400.
const FILETIME_UNIX_OFFSET_SECS: i128 = 11_644_473_600;

/// `tkhd` flags: enabled (0x1) | in movie (0x2).
const TKHD_ENABLED_IN_MOVIE: u32 = 0x3;

/// tx3g justification: 1 = centre (horizontal), -1 = bottom (vertical) (3GPP TS 26.245 5.16).
const JUSTIFY_CENTRE: i8 = 1;
const JUSTIFY_BOTTOM: i8 = -1;
/// Background black at half opacity, text opaque white (RGBA).
const BACKGROUND_RGBA: [u8; 4] = [0, 0, 0, 0x80];
const TEXT_RGBA: [u8; 4] = [0xff, 0xff, 0xff, 0xff];
/// Font size in pixels of the track's box, and the one font's id and name.
const FONT_SIZE_PX: u8 = 24;
const FONT_ID: u16 = 1;
const FONT_NAME: &[u8] = b"Sans-Serif";

/// One cue of the timed-text track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextCue {
    /// Presentation time (90 kHz) at which it shows; it lasts until the next one.
    pub start_90k: u64,
    pub text: String,
}

/// One track's entry in `suep` and `cstb`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackSource {
    pub track_id: u16,
    pub name: String,
    /// Without credentials.
    pub url: String,
    /// UTC time (Unix, 90 kHz) of the track's media time 0.
    pub media_origin_unix_90k: i64,
}

/// The ONVIF Export File Format's export information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportInfo {
    pub unit_name: String,
    pub unit_url: String,
    pub export_time_unix_secs: i64,
    pub operator: String,
    pub tracks: Vec<TrackSource>,
}

/// Everything an export adds to the MP4.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// The wall-clock cues, the first at 0, strictly increasing, all before the presentation's
    /// end; empty: no text track.
    pub time_cues: Vec<TextCue>,
    pub export_info: Option<ExportInfo>,
}

/// `startTime` of `cstb`: 100 ns intervals since 1601-01-01 UTC.
pub fn filetime_100ns(unix_90k: i64) -> u64 {
    // 90 kHz to 100 ns: * 10^7 / 90_000 = * 1000 / 9.
    let t = i128::from(unix_90k) * 1000 / 9 + FILETIME_UNIX_OFFSET_SECS * 10_000_000;
    u64::try_from(t).unwrap_or(0)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    // NUL ends the string: any inside it would cut the field short, so they are dropped.
    buf.extend(s.bytes().filter(|&b| b != 0));
    buf.put_u8(0);
}

/// Writes the file-level `meta` box with `suep` and `cstb`.
pub(super) fn write_meta(buf: &mut Vec<u8>, info: &ExportInfo) -> Result<(), Mp4Error> {
    let meta = begin_full(buf, b"meta", 0, 0);
    let hdlr = begin_full(buf, b"hdlr", 0, 0);
    buf.put_u32(0); // pre_defined
    buf.put_slice(b"oeff"); // handler_type
    buf.put_bytes(0, 3 * 4); // reserved[3]
    buf.put_slice(b"ONVIF Export File Format\0");
    end(buf, hdlr)?;

    let suep = begin_full(buf, b"suep", 1, 0);
    put_str(buf, &info.unit_name);
    put_str(buf, &info.unit_url);
    put_str(buf, ""); // ExportUnitMAC: not known
    buf.put_u64(super::boxes::mp4_time(info.export_time_unix_secs));
    put_str(buf, &info.operator);
    buf.put_u32(u32::try_from(info.tracks.len()).map_err(|_| too_large("suep"))?);
    for t in &info.tracks {
        buf.put_u16(t.track_id);
        put_str(buf, &t.name);
        put_str(buf, &t.url);
        put_str(buf, ""); // SourceMAC: not known
        put_str(buf, ""); // SourceLine: single-channel sources
    }
    end(buf, suep)?;

    let cstb = begin(buf, b"cstb");
    buf.put_u32(u32::try_from(info.tracks.len()).map_err(|_| too_large("cstb"))?);
    for t in &info.tracks {
        buf.put_u32(u32::from(t.track_id));
        buf.put_u64(filetime_100ns(t.media_origin_unix_90k));
    }
    end(buf, cstb)?;
    end(buf, meta)
}

fn too_large(what: &'static str) -> Mp4Error {
    Mp4Error::TooLarge { what }
}

/// The text track rendered ahead of time: its `trak` (with a placeholder chunk offset at
/// `chunk_offset_at`) and its `mdat` box.
pub(super) struct TextTrack {
    pub trak: Vec<u8>,
    pub chunk_offset_at: usize,
    pub mdat: Vec<u8>,
}

impl TextTrack {
    /// Sets the chunk offset, given where the text `mdat` box starts in the file.
    pub fn place(&mut self, mdat_pos: u64) {
        let at = self.chunk_offset_at;
        // The payload follows the 8-byte mdat header.
        self.trak[at..at + 8].copy_from_slice(&(mdat_pos + 8).to_be_bytes());
    }
}

/// Renders the text track of `cues` over a presentation of `duration_90k`.
pub(super) fn text_track(
    cues: &[TextCue],
    duration_90k: u64,
    creation: u64,
    width: u16,
    height: u16,
) -> Result<TextTrack, Mp4Error> {
    let bad = |reason| Err(Mp4Error::InvalidExtras { reason });
    if cues.first().map(|c| c.start_90k) != Some(0) {
        return bad("the first cue must start at 0");
    }
    if cues.windows(2).any(|w| w[1].start_90k <= w[0].start_90k)
        || cues.last().is_some_and(|c| c.start_90k >= duration_90k)
    {
        return bad("cues must increase and start before the end");
    }
    if cues.iter().any(|c| c.text.len() > usize::from(u16::MAX)) {
        return bad("a cue is longer than 65535 bytes");
    }
    let n = u32::try_from(cues.len()).map_err(|_| too_large("text samples"))?;
    let v1 = duration_90k > u64::from(u32::MAX) || creation > u64::from(u32::MAX);
    let put_var = |buf: &mut Vec<u8>, v: u64| {
        if v1 {
            buf.put_u64(v)
        } else {
            buf.put_u32(v as u32) // fits: v1 otherwise
        }
    };

    let mut b = Vec::with_capacity(512 + cues.len() * 12);
    let trak = begin(&mut b, b"trak");
    let tkhd = begin_full(&mut b, b"tkhd", u8::from(v1), TKHD_ENABLED_IN_MOVIE);
    put_var(&mut b, creation);
    put_var(&mut b, creation);
    b.put_u32(TEXT_TRACK_ID);
    b.put_u32(0); // reserved
    put_var(&mut b, duration_90k);
    b.put_u64(0); // reserved[2]
    b.put_i16(-1); // layer: in front of the video (layer 0)
    b.put_i16(0); // alternate_group
    b.put_u16(0); // volume
    b.put_u16(0); // reserved
    for m in super::boxes::UNITY_MATRIX {
        b.put_u32(m);
    }
    b.put_u32(u32::from(width) << 16); // 16.16 fixed point
    b.put_u32(u32::from(height) << 16);
    end(&mut b, tkhd)?;

    let mdia = begin(&mut b, b"mdia");
    let mdhd = begin_full(&mut b, b"mdhd", u8::from(v1), 0);
    put_var(&mut b, creation);
    put_var(&mut b, creation);
    b.put_u32(TIMESCALE_90K);
    put_var(&mut b, duration_90k);
    b.put_u16(super::boxes::LANGUAGE_UND);
    b.put_u16(0); // pre_defined
    end(&mut b, mdhd)?;
    let hdlr = begin_full(&mut b, b"hdlr", 0, 0);
    b.put_u32(0); // pre_defined
    b.put_slice(b"sbtl");
    b.put_bytes(0, 3 * 4);
    b.put_slice(b"SubtitleHandler\0");
    end(&mut b, hdlr)?;
    let minf = begin(&mut b, b"minf");
    let nmhd = begin_full(&mut b, b"nmhd", 0, 0);
    end(&mut b, nmhd)?;
    write_dinf(&mut b)?;
    let stbl = begin(&mut b, b"stbl");

    let stsd = begin_full(&mut b, b"stsd", 0, 0);
    b.put_u32(1); // entry_count
    let tx3g = begin(&mut b, b"tx3g");
    b.put_bytes(0, 6); // reserved
    b.put_u16(1); // data_reference_index
    b.put_u32(0); // displayFlags
    b.put_i8(JUSTIFY_CENTRE);
    b.put_i8(JUSTIFY_BOTTOM);
    b.put_slice(&BACKGROUND_RGBA);
    b.put_bytes(0, 4 * 2); // default text box: top, left, bottom, right = the track's box
    b.put_u16(0); // style startChar
    b.put_u16(0); // style endChar
    b.put_u16(FONT_ID);
    b.put_u8(0); // face style flags: plain
    b.put_u8(FONT_SIZE_PX);
    b.put_slice(&TEXT_RGBA);
    let ftab = begin(&mut b, b"ftab");
    b.put_u16(1); // entry_count
    b.put_u16(FONT_ID);
    b.put_u8(FONT_NAME.len() as u8); // a short constant
    b.put_slice(FONT_NAME);
    end(&mut b, ftab)?;
    end(&mut b, tx3g)?;
    end(&mut b, stsd)?;

    let stts = begin_full(&mut b, b"stts", 0, 0);
    b.put_u32(n);
    for (i, c) in cues.iter().enumerate() {
        let next = cues.get(i + 1).map_or(duration_90k, |c| c.start_90k);
        b.put_u32(1);
        b.put_u32(u32::try_from(next - c.start_90k).map_err(|_| too_large("text cue"))?);
    }
    end(&mut b, stts)?;
    let stsz = begin_full(&mut b, b"stsz", 0, 0);
    b.put_u32(0); // sizes vary
    b.put_u32(n);
    for c in cues {
        b.put_u32(2 + c.text.len() as u32); // checked above: <= 65535 + 2
    }
    end(&mut b, stsz)?;
    let stsc = begin_full(&mut b, b"stsc", 0, 0);
    b.put_u32(1); // entry_count
    b.put_u32(1); // first_chunk
    b.put_u32(n); // samples_per_chunk: all in one
    b.put_u32(1); // sample_description_index
    end(&mut b, stsc)?;
    let co64 = begin_full(&mut b, b"co64", 0, 0);
    b.put_u32(1);
    let chunk_offset_at = b.len();
    b.put_u64(0); // placed later
    end(&mut b, co64)?;
    for pos in [stbl, minf, mdia, trak] {
        end(&mut b, pos)?;
    }

    let payload: usize = cues.iter().map(|c| 2 + c.text.len()).sum();
    let mut mdat = Vec::with_capacity(8 + payload);
    mdat.put_u32(0);
    mdat.put_slice(b"mdat");
    for c in cues {
        mdat.put_u16(c.text.len() as u16); // checked above
        mdat.put_slice(c.text.as_bytes());
    }
    let len = u32::try_from(mdat.len()).map_err(|_| too_large("text mdat"))?;
    patch_u32(&mut mdat, 0, len);
    Ok(TextTrack {
        trak: b,
        chunk_offset_at,
        mdat,
    })
}
