//! ISO BMFF `VisualSampleEntry` boxes (`avc1`/`avc3`/`hvc1`/`hev1`): extracting the decoder
//! configuration record (avcC/hvcC payload) the recorder stores, building an `avc1` box around
//! an avcC, and the RFC 6381 codec string of an avcC. Pure byte handling, no GStreamer.

use bytes::{BufMut, Bytes, BytesMut};
use nvr_core::VideoCodec;

use crate::MediaError;

/// Size of an ISO BMFF box header with a 32-bit size: size (4) + fourcc (4).
const BOX_HEADER_LEN: usize = 8;
/// Size of a box header with a 64-bit `largesize`: size (4) = 1, fourcc (4), largesize (8).
const LARGE_BOX_HEADER_LEN: usize = 16;
/// Fixed fields of a VisualSampleEntry after its box header (ISO/IEC 14496-12 8.5.2.2 and
/// 12.1.3.2): reserved (6) + data_reference_index (2) + pre_defined/reserved (16) + width (2) +
/// height (2) + resolutions (8) + reserved (4) + frame_count (2) + compressorname (32) +
/// depth (2) + pre_defined (2) = 78 bytes.
const VISUAL_SAMPLE_ENTRY_FIELDS_LEN: usize = 78;
/// Shortest avcC: version, profile, compatibility, level, length size, SPS count, PPS count
/// (ISO/IEC 14496-15 5.3.3.1), without any parameter set.
const MIN_AVCC_LEN: usize = 7;
/// Shortest hvcC: the 22 fixed bytes plus `numOfArrays` (ISO/IEC 14496-15 8.3.3.1).
const MIN_HVCC_LEN: usize = 23;

/// The sample entry types the recorder can store, i.e. how parameter sets travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleEntryKind {
    /// H.264, parameter sets only in the avcC.
    Avc1,
    /// H.264, parameter sets may also be in the stream.
    Avc3,
    /// H.265, parameter sets only in the hvcC.
    Hvc1,
    /// H.265, parameter sets may also be in the stream.
    Hev1,
}

impl SampleEntryKind {
    /// The codec of this sample entry type.
    pub fn codec(self) -> VideoCodec {
        match self {
            SampleEntryKind::Avc1 | SampleEntryKind::Avc3 => VideoCodec::H264,
            SampleEntryKind::Hvc1 | SampleEntryKind::Hev1 => VideoCodec::H265,
        }
    }

    /// The GStreamer `stream-format` caps field for this type (`avc`, `avc3`, `hvc1`, `hev1`).
    pub fn gst_stream_format(self) -> &'static str {
        match self {
            SampleEntryKind::Avc1 => "avc",
            SampleEntryKind::Avc3 => "avc3",
            SampleEntryKind::Hvc1 => "hvc1",
            SampleEntryKind::Hev1 => "hev1",
        }
    }

    fn from_fourcc(fourcc: [u8; 4]) -> Option<Self> {
        match &fourcc {
            b"avc1" => Some(SampleEntryKind::Avc1),
            b"avc3" => Some(SampleEntryKind::Avc3),
            b"hvc1" => Some(SampleEntryKind::Hvc1),
            b"hev1" => Some(SampleEntryKind::Hev1),
            _ => None,
        }
    }

    /// The fourcc of the configuration child box (`avcC` or `hvcC`).
    fn config_fourcc(self) -> [u8; 4] {
        match self.codec() {
            VideoCodec::H264 => *b"avcC",
            VideoCodec::H265 => *b"hvcC",
        }
    }
}

/// What a sample entry box holds that a decoder needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecConfig<'a> {
    /// The sample entry's type.
    pub kind: SampleEntryKind,
    /// The avcC/hvcC payload (decoder configuration record), i.e. GStreamer's `codec_data`.
    pub record: &'a [u8],
    /// Width from the VisualSampleEntry fields.
    pub width: u16,
    /// Height from the VisualSampleEntry fields.
    pub height: u16,
}

/// One box split off the front of `data`.
struct RawBox<'a> {
    fourcc: [u8; 4],
    body: &'a [u8],
    rest: &'a [u8],
}

/// Reads the box at the start of `data`; errors on any truncation or impossible size.
fn read_box(data: &[u8]) -> Result<RawBox<'_>, MediaError> {
    let bad = |why: String| MediaError::InvalidSampleEntry(why);
    let (size_bytes, after_size) = data
        .split_first_chunk::<4>()
        .ok_or_else(|| bad(format!("box header truncated ({} bytes)", data.len())))?;
    let (fourcc, after_type) = after_size
        .split_first_chunk::<4>()
        .ok_or_else(|| bad(format!("box header truncated ({} bytes)", data.len())))?;
    let (size, header_len) = match u32::from_be_bytes(*size_bytes) {
        // Size 0 means "extends to the end of the enclosing data".
        0 => (data.len(), BOX_HEADER_LEN),
        1 => {
            let (large, _) = after_type
                .split_first_chunk::<8>()
                .ok_or_else(|| bad("64-bit box size truncated".into()))?;
            let large = u64::from_be_bytes(*large);
            let size = usize::try_from(large)
                .map_err(|_| bad(format!("box size {large} does not fit in memory")))?;
            (size, LARGE_BOX_HEADER_LEN)
        }
        n => (n as usize, BOX_HEADER_LEN),
    };
    if size < header_len {
        return Err(bad(format!(
            "box `{}` has size {size}, smaller than its header",
            fourcc_str(*fourcc)
        )));
    }
    if size > data.len() {
        return Err(bad(format!(
            "box `{}` claims {size} bytes but only {} remain",
            fourcc_str(*fourcc),
            data.len()
        )));
    }
    Ok(RawBox {
        fourcc: *fourcc,
        body: &data[header_len..size],
        rest: &data[size..],
    })
}

/// A printable form of a fourcc, escaping non-ASCII bytes.
fn fourcc_str(fourcc: [u8; 4]) -> String {
    fourcc.escape_ascii().to_string()
}

/// Parses a complete VisualSampleEntry box as produced by retina's
/// `VideoParameters::mp4_sample_entry().build()` and returns its decoder configuration.
///
/// Never panics; any truncation, unknown box type, missing avcC/hvcC or implausible
/// configuration record is an [`MediaError::InvalidSampleEntry`].
pub fn parse_sample_entry(entry: &[u8]) -> Result<CodecConfig<'_>, MediaError> {
    let bad = |why: String| MediaError::InvalidSampleEntry(why);
    let outer = read_box(entry)?;
    if !outer.rest.is_empty() {
        return Err(bad(format!(
            "{} trailing bytes after the sample entry box",
            outer.rest.len()
        )));
    }
    let kind = SampleEntryKind::from_fourcc(outer.fourcc).ok_or_else(|| {
        bad(format!(
            "box type `{}` is not avc1, avc3, hvc1 or hev1",
            fourcc_str(outer.fourcc)
        ))
    })?;
    let Some((fields, mut children)) = outer.body.split_at_checked(VISUAL_SAMPLE_ENTRY_FIELDS_LEN)
    else {
        return Err(bad(format!(
            "`{}` body has {} bytes, fewer than the {VISUAL_SAMPLE_ENTRY_FIELDS_LEN} of a \
             VisualSampleEntry",
            fourcc_str(outer.fourcc),
            outer.body.len()
        )));
    };
    // Width and height sit after reserved (6), data_reference_index (2), pre_defined etc. (16).
    let width = u16::from_be_bytes([fields[24], fields[25]]);
    let height = u16::from_be_bytes([fields[26], fields[27]]);
    let wanted = kind.config_fourcc();
    while !children.is_empty() {
        let child = read_box(children)?;
        if child.fourcc == wanted {
            check_record(kind.codec(), child.body)?;
            return Ok(CodecConfig {
                kind,
                record: child.body,
                width,
                height,
            });
        }
        children = child.rest;
    }
    Err(bad(format!(
        "`{}` has no `{}` child box",
        fourcc_str(outer.fourcc),
        fourcc_str(wanted)
    )))
}

/// Rejects configuration records too short or of the wrong version to be real.
fn check_record(codec: VideoCodec, record: &[u8]) -> Result<(), MediaError> {
    let min = match codec {
        VideoCodec::H264 => MIN_AVCC_LEN,
        VideoCodec::H265 => MIN_HVCC_LEN,
    };
    if record.len() < min {
        return Err(MediaError::InvalidSampleEntry(format!(
            "{} configuration record has {} bytes, fewer than the minimum {min}",
            codec.name(),
            record.len()
        )));
    }
    // configurationVersion is 1 for both avcC and hvcC.
    if record[0] != 1 {
        return Err(MediaError::InvalidSampleEntry(format!(
            "{} configuration record has version {}, expected 1",
            codec.name(),
            record[0]
        )));
    }
    Ok(())
}

/// Builds a complete `avc1` VisualSampleEntry box (the layout retina writes: 72 dpi, one frame
/// per sample, depth 24, no `pasp`) around the avcC payload `avcc`.
pub fn avc1_sample_entry(avcc: &[u8], width: u16, height: u16) -> Bytes {
    let len = BOX_HEADER_LEN + VISUAL_SAMPLE_ENTRY_FIELDS_LEN + BOX_HEADER_LEN + avcc.len();
    let mut b = BytesMut::with_capacity(len);
    // Box sizes are u32; an avcC over 4 GiB cannot exist (parameter sets are tiny), so
    // saturating keeps this infallible without hiding a realistic case.
    b.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    b.put_slice(b"avc1");
    b.put_bytes(0, 6); // SampleEntry reserved
    b.put_u16(1); // data_reference_index
    b.put_bytes(0, 16); // pre_defined, reserved, pre_defined[3]
    b.put_u16(width);
    b.put_u16(height);
    b.put_u32(0x0048_0000); // horizresolution: 72 dpi in 16.16 fixed point
    b.put_u32(0x0048_0000); // vertresolution: 72 dpi
    b.put_u32(0); // reserved
    b.put_u16(1); // frame_count: one frame per sample
    b.put_bytes(0, 32); // compressorname: empty
    b.put_u16(0x0018); // depth: 24-bit colour without alpha
    b.put_i16(-1); // pre_defined
    b.put_u32(u32::try_from(BOX_HEADER_LEN + avcc.len()).unwrap_or(u32::MAX));
    b.put_slice(b"avcC");
    b.put_slice(avcc);
    b.freeze()
}

/// The RFC 6381 codec string of an avcC, `avc1.PPCCLL` in lowercase hex from its
/// AVCProfileIndication, profile_compatibility and AVCLevelIndication bytes.
/// `None` if `avcc` is too short or not version 1.
pub fn rfc6381_from_avcc(avcc: &[u8]) -> Option<String> {
    match avcc {
        [1, profile, compat, level, ..] => {
            Some(format!("avc1.{profile:02x}{compat:02x}{level:02x}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An avcC of a real 320x240 x264 stream (High profile, level 1.3).
    const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x0d, 0x01, 0x00, 0x04,
        0x68, 0xeb, 0xe3, 0xcb,
    ];

    fn boxed(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(fourcc);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn avc1_round_trips_through_the_parser() {
        let entry = avc1_sample_entry(AVCC, 320, 240);
        assert_eq!(entry.len(), 8 + 78 + 8 + AVCC.len());
        let c = parse_sample_entry(&entry).unwrap();
        assert_eq!(c.kind, SampleEntryKind::Avc1);
        assert_eq!(c.record, AVCC);
        assert_eq!((c.width, c.height), (320, 240));
    }

    #[test]
    fn finds_config_after_other_children() {
        let mut body = avc1_sample_entry(AVCC, 16, 16)[8..8 + 78].to_vec();
        body.extend(boxed(b"pasp", &[0, 0, 0, 1, 0, 0, 0, 1]));
        let mut hvcc = vec![1u8];
        hvcc.resize(MIN_HVCC_LEN, 0);
        body.extend(boxed(b"hvcC", &hvcc));
        let entry = boxed(b"hev1", &body);
        let c = parse_sample_entry(&entry).unwrap();
        assert_eq!(c.kind, SampleEntryKind::Hev1);
        assert_eq!(c.kind.codec(), VideoCodec::H265);
        assert_eq!(c.record, &hvcc[..]);
    }

    #[test]
    fn malformed_entries_are_errors() {
        let good = avc1_sample_entry(AVCC, 320, 240).to_vec();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("short header", good[..5].to_vec()),
            ("truncated body", good[..50].to_vec()),
            ("truncated child", good[..good.len() - 1].to_vec()),
            ("trailing", [good.clone(), vec![0]].concat()),
            ("no child", boxed(b"avc1", &good[8..86])),
            ("wrong type", boxed(b"mp4v", &good[8..])),
            ("size below header", [&[0, 0, 0, 4][..], b"avc1"].concat()),
        ];
        // A child whose size overruns the parent.
        let mut overrun = good.clone();
        overrun[86..90].copy_from_slice(&1000u32.to_be_bytes());
        cases.push(("child overrun", overrun));
        // A 64-bit size that does not fit.
        let mut large = vec![0, 0, 0, 1];
        large.extend_from_slice(b"avc1");
        large.extend_from_slice(&u64::MAX.to_be_bytes());
        cases.push(("huge largesize", large));
        // avcC of the wrong version.
        let mut version = good.clone();
        version[94] = 2;
        cases.push(("avcC version", version));
        // The hvcC child missing from an H.265 entry (avcC present instead).
        let mut hvc1 = good.clone();
        hvc1[4..8].copy_from_slice(b"hvc1");
        cases.push(("hvc1 with avcC", hvc1));
        for (name, data) in cases {
            match parse_sample_entry(&data) {
                Err(MediaError::InvalidSampleEntry(why)) => assert!(!why.is_empty(), "{name}"),
                other => panic!("{name}: expected InvalidSampleEntry, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_truncation_and_byte_flip_is_handled_without_panic() {
        let good = avc1_sample_entry(AVCC, 320, 240).to_vec();
        for len in 0..good.len() {
            assert!(parse_sample_entry(&good[..len]).is_err(), "prefix {len}");
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut d = good.clone();
                d[i] = v;
                let _ = parse_sample_entry(&d);
            }
        }
    }

    #[test]
    fn rfc6381_string() {
        assert_eq!(rfc6381_from_avcc(AVCC).as_deref(), Some("avc1.64000d"));
        assert_eq!(
            rfc6381_from_avcc(&[1, 0x42, 0xc0, 0x1f]).as_deref(),
            Some("avc1.42c01f")
        );
        assert_eq!(rfc6381_from_avcc(&[1, 0x42, 0xc0]), None);
        assert_eq!(rfc6381_from_avcc(&[0, 0x42, 0xc0, 0x1f]), None);
    }
}
