//! Fragmented MP4 for live view: an initialization segment (`ftyp` + `moov` with `mvex`) built
//! from a sample entry, then one media fragment (`moof` + `mdat`) per frame, which a browser
//! appends to a Media Source Extensions `SourceBuffer` as the frames arrive.
//!
//! ```text
//! init segment                         media fragment (one per call)
//! ftyp  isom/iso6/mp41[/avc1]          moof
//! moov                                 +- mfhd   sequence_number (1, 2, ...)
//! +- mvhd  duration 0                  +- traf
//! +- trak                                 +- tfhd  flags default-base-is-moof, track 1
//! |  +- tkhd  duration 0, w x h           +- tfdt  v1, base media decode time (90 kHz)
//! |  +- mdia                              +- trun  flags data-offset, duration, size, sample
//! |     +- mdhd  90 kHz                           flags [, composition offset: v1, signed,
//! |     |                                         only when a sample has one (B-frames)];
//! |     |                                         data offset = moof size + 8
//! |     +- hdlr  vide                     mdat  the samples, back to back
//! |     +- minf  vmhd, dinf, stbl with
//! |              stsd (the entry) and empty stts/stsc/stsz/stco
//! +- mvex
//!    +- trex  track 1, sample description 1
//! ```

use bytes::{BufMut, Bytes};

use super::boxes::{
    TRACK_ID, begin, begin_full, end, write_ftyp, write_hdlr, write_mdhd, write_mvhd, write_tkhd,
    write_vmhd_dinf,
};
use super::{Mp4Error, SampleEntry};

/// `tfhd` flag: sample data offsets are relative to the start of this `moof`, which MSE
/// requires (no base_data_offset).
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags: data-offset present, then per sample: duration, size, flags.
const TRUN_FLAGS: u32 = 0x0001 | 0x0100 | 0x0200 | 0x0400;
/// `trun` flag: per sample, a composition time offset follows the flags (signed in version 1).
const TRUN_COMPOSITION_OFFSETS: u32 = 0x0800;
/// Sample flags of a key frame: sample_depends_on = 2 (depends on no other sample).
const SAMPLE_FLAGS_KEY: u32 = 0x0200_0000;
/// Sample flags of other frames: sample_depends_on = 1 and sample_is_non_sync_sample = 1.
const SAMPLE_FLAGS_NON_KEY: u32 = 0x0101_0000;

/// Builds the initialization segment for one video track described by `entry`.
pub fn init_segment(entry: &SampleEntry) -> Result<Bytes, Mp4Error> {
    let mut buf = Vec::with_capacity(1024 + entry.box_bytes.len());
    write_ftyp(&mut buf, std::slice::from_ref(entry));
    let moov = begin(&mut buf, b"moov");
    write_mvhd(&mut buf, false, 0, 0);
    let trak = begin(&mut buf, b"trak");
    write_tkhd(&mut buf, false, 0, 0, entry);
    let mdia = begin(&mut buf, b"mdia");
    write_mdhd(&mut buf, false, 0, 0);
    write_hdlr(&mut buf)?;
    let minf = begin(&mut buf, b"minf");
    write_vmhd_dinf(&mut buf)?;
    let stbl = begin(&mut buf, b"stbl");
    let stsd = begin_full(&mut buf, b"stsd", 0, 0);
    buf.put_u32(1); // entry_count
    buf.put_slice(&entry.box_bytes);
    end(&mut buf, stsd)?;
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let b = begin_full(&mut buf, fourcc, 0, 0);
        buf.put_u32(0); // entry_count
        end(&mut buf, b)?;
    }
    let stsz = begin_full(&mut buf, b"stsz", 0, 0);
    buf.put_u32(0); // sample_size
    buf.put_u32(0); // sample_count
    end(&mut buf, stsz)?;
    end(&mut buf, stbl)?;
    end(&mut buf, minf)?;
    end(&mut buf, mdia)?;
    end(&mut buf, trak)?;
    let mvex = begin(&mut buf, b"mvex");
    let trex = begin_full(&mut buf, b"trex", 0, 0);
    buf.put_u32(TRACK_ID);
    buf.put_u32(1); // default_sample_description_index
    buf.put_u32(0); // default_sample_duration
    buf.put_u32(0); // default_sample_size
    buf.put_u32(0); // default_sample_flags
    end(&mut buf, trex)?;
    end(&mut buf, mvex)?;
    end(&mut buf, moov)?;
    Ok(Bytes::from(buf))
}

/// One sample of a fragment.
#[derive(Clone, Debug)]
pub struct FragmentSample {
    pub duration_90k: u32,
    pub is_key: bool,
    pub data: Bytes,
    /// Presentation time minus decode time; 0 unless frames are reordered (B-frames).
    pub composition_offset_90k: i32,
}

/// Numbers fragments and builds them.
#[derive(Debug, Default)]
pub struct FragmentWriter {
    sequence: u32,
}

impl FragmentWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds `moof` + `mdat` for `samples`, the first decoded at `base_decode_time_90k`.
    pub fn fragment(
        &mut self,
        base_decode_time_90k: u64,
        samples: &[FragmentSample],
    ) -> Result<Bytes, Mp4Error> {
        self.sequence = self.sequence.wrapping_add(1);
        let payload: usize = samples.iter().map(|s| s.data.len()).sum();
        let mut buf = Vec::with_capacity(128 + samples.len() * 12 + payload);
        let moof = begin(&mut buf, b"moof");
        let mfhd = begin_full(&mut buf, b"mfhd", 0, 0);
        buf.put_u32(self.sequence);
        end(&mut buf, mfhd)?;
        let traf = begin(&mut buf, b"traf");
        let tfhd = begin_full(&mut buf, b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
        buf.put_u32(TRACK_ID);
        end(&mut buf, tfhd)?;
        let tfdt = begin_full(&mut buf, b"tfdt", 1, 0);
        buf.put_u64(base_decode_time_90k);
        end(&mut buf, tfdt)?;
        // Version 1 (signed offsets) only when some sample has one: a stream without B-frames
        // gets the fragments it always got.
        let offsets = samples.iter().any(|s| s.composition_offset_90k != 0);
        let trun = if offsets {
            begin_full(&mut buf, b"trun", 1, TRUN_FLAGS | TRUN_COMPOSITION_OFFSETS)
        } else {
            begin_full(&mut buf, b"trun", 0, TRUN_FLAGS)
        };
        buf.put_u32(
            u32::try_from(samples.len()).map_err(|_| Mp4Error::TooLarge {
                what: "fragment sample count",
            })?,
        );
        let data_offset_pos = buf.len();
        buf.put_u32(0); // data_offset, patched below
        for s in samples {
            buf.put_u32(s.duration_90k);
            buf.put_u32(u32::try_from(s.data.len()).map_err(|_| Mp4Error::TooLarge {
                what: "fragment sample",
            })?);
            buf.put_u32(if s.is_key {
                SAMPLE_FLAGS_KEY
            } else {
                SAMPLE_FLAGS_NON_KEY
            });
            if offsets {
                buf.put_i32(s.composition_offset_90k);
            }
        }
        end(&mut buf, trun)?;
        end(&mut buf, traf)?;
        end(&mut buf, moof)?;
        // The samples start after the moof and the 8-byte mdat header.
        let data_offset =
            u32::try_from(buf.len() - moof + 8).map_err(|_| Mp4Error::TooLarge { what: "moof" })?;
        buf[data_offset_pos..data_offset_pos + 4].copy_from_slice(&data_offset.to_be_bytes());
        let mdat_size = u32::try_from(8 + payload).map_err(|_| Mp4Error::TooLarge {
            what: "fragment mdat",
        })?;
        buf.put_u32(mdat_size);
        buf.put_slice(b"mdat");
        for s in samples {
            buf.put_slice(&s.data);
        }
        Ok(Bytes::from(buf))
    }
}
