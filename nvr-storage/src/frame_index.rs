//! The compact per-segment frame index stored in SQLite: enough to build an MP4 or find a frame
//! by time without reading the segment file.
//!
//! ```text
//! blob = varint(version = 1) varint(first record offset)
//!        { varint(duration_90k) varint(size_bytes << 1 | is_key) } per frame
//!      | varint(version = 2) varint(first record offset)
//!        { varint(duration_90k) varint(size_bytes << 1 | is_key)
//!          zigzag varint(composition_offset_90k) } per frame
//! ```
//! Version 2 is written only when some frame is presented out of decode order (B-frames, see
//! `frame_timing`); every other segment keeps version 1, byte for byte as before, and both
//! versions are read.
//! Payload offsets are not stored: frame i's record starts at `first record offset +
//! sum over j < i of (16 + size_j)` and its payload 16 bytes later, because records are packed
//! back to back in the segment plaintext. At 30 fps a one-minute index is about 6 KiB.

use crate::segment::format::RECORD_HEADER_LEN;

/// Frames in presentation order: no composition offsets.
const VERSION_IN_ORDER: u64 = 1;
/// With each frame's composition offset.
const VERSION_REORDERED: u64 = 2;

/// One frame as the index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// Duration in 90 kHz units; > 0 for every frame of a sealed segment.
    pub duration_90k: u32,
    /// Size of the sample (an access unit of 4-byte length-prefixed NAL units).
    pub size_bytes: u32,
    /// Whether this is a sync sample (IDR / IRAP).
    pub is_key: bool,
    /// Plaintext offset of the frame's payload inside its segment.
    pub data_offset: u64,
    /// Presentation time minus decode time, 90 kHz: 0 unless the camera sends B-frames (see
    /// `frame_timing`). The decode time is the sum of the durations before the frame.
    pub composition_offset_90k: i32,
}

/// Encodes frames whose records start at `first_record_offset` and follow each other.
pub fn encode(first_record_offset: u64, frames: &[FrameInfo]) -> Vec<u8> {
    let reordered = frames.iter().any(|f| f.composition_offset_90k != 0);
    let mut out = Vec::with_capacity(4 + frames.len() * if reordered { 6 } else { 4 });
    put_varint(
        &mut out,
        if reordered {
            VERSION_REORDERED
        } else {
            VERSION_IN_ORDER
        },
    );
    put_varint(&mut out, first_record_offset);
    for f in frames {
        put_varint(&mut out, u64::from(f.duration_90k));
        put_varint(
            &mut out,
            (u64::from(f.size_bytes) << 1) | u64::from(f.is_key),
        );
        if reordered {
            put_varint(&mut out, zigzag(f.composition_offset_90k));
        }
    }
    out
}

/// Decodes a blob made by [`encode`], recomputing payload offsets.
pub fn decode(blob: &[u8]) -> Result<Vec<FrameInfo>, String> {
    let mut r = blob;
    let version = get_varint(&mut r)?;
    let reordered = match version {
        VERSION_IN_ORDER => false,
        VERSION_REORDERED => true,
        _ => return Err(format!("frame index version {version} is not supported")),
    };
    let mut record = get_varint(&mut r)?;
    let mut frames = Vec::with_capacity(blob.len() / 4);
    while !r.is_empty() {
        let duration = get_varint(&mut r)?;
        let size_key = get_varint(&mut r)?;
        let size = size_key >> 1;
        let duration_90k =
            u32::try_from(duration).map_err(|_| format!("frame duration {duration} too large"))?;
        let size_bytes = u32::try_from(size).map_err(|_| format!("frame size {size} too large"))?;
        let composition_offset_90k = if reordered {
            unzigzag(get_varint(&mut r)?)?
        } else {
            0
        };
        let data_offset = record + RECORD_HEADER_LEN as u64;
        frames.push(FrameInfo {
            duration_90k,
            size_bytes,
            is_key: size_key & 1 == 1,
            data_offset,
            composition_offset_90k,
        });
        record = data_offset + size;
    }
    Ok(frames)
}

/// Signed to unsigned, small magnitudes to small numbers: 0, -1, 1, -2 -> 0, 1, 2, 3.
fn zigzag(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn unzigzag(v: u64) -> Result<i32, String> {
    let v = u32::try_from(v).map_err(|_| format!("composition offset {v} too large"))?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(r: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = r.split_first().ok_or("frame index is truncated")?;
        *r = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("frame index varint is too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames_from(first: u64, spec: &[(u32, u32, bool)]) -> Vec<FrameInfo> {
        with_offsets(first, spec, &[])
    }

    /// Frames whose composition offsets are `offsets` (0 beyond its end).
    fn with_offsets(first: u64, spec: &[(u32, u32, bool)], offsets: &[i32]) -> Vec<FrameInfo> {
        let mut rec = first;
        spec.iter()
            .enumerate()
            .map(|(i, &(d, s, k))| {
                let f = FrameInfo {
                    duration_90k: d,
                    size_bytes: s,
                    is_key: k,
                    data_offset: rec + 16,
                    composition_offset_90k: offsets.get(i).copied().unwrap_or(0),
                };
                rec += 16 + u64::from(s);
                f
            })
            .collect()
    }

    proptest! {
        #[test]
        fn round_trip(first in 0u64..1_000_000, spec in proptest::collection::vec((1u32..200_000, 0u32..5_000_000, any::<bool>()), 0..300)) {
            let frames = frames_from(first, &spec);
            prop_assert_eq!(decode(&encode(first, &frames)).expect("decode"), frames);
        }

        #[test]
        fn round_trip_with_offsets(first in 0u64..1_000_000, spec in proptest::collection::vec((1u32..200_000, 0u32..5_000_000, any::<bool>(), any::<i32>()), 1..300)) {
            let offsets: Vec<i32> = spec.iter().map(|s| s.3).collect();
            let spec: Vec<(u32, u32, bool)> = spec.iter().map(|s| (s.0, s.1, s.2)).collect();
            let frames = with_offsets(first, &spec, &offsets);
            prop_assert_eq!(decode(&encode(first, &frames)).expect("decode"), frames);
        }

        #[test]
        fn garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&blob);
        }
    }

    #[test]
    fn version_1_unless_reordered() {
        // A stream without B-frames: the blob is what it always was.
        let frames = frames_from(100, &[(3000, 70_000, true), (3000, 200, false)]);
        assert_eq!(
            encode(100, &frames),
            [1, 100, 0xb8, 0x17, 0xe1, 0xc5, 0x08, 0xb8, 0x17, 0x90, 0x03]
        );
        let frames = with_offsets(
            100,
            &[(3000, 70_000, true), (3000, 200, false), (3000, 150, false)],
            &[0, 3000, -3000],
        );
        let blob = encode(100, &frames);
        assert_eq!(blob[0], 2);
        assert_eq!(decode(&blob).expect("decode"), frames);
        for (v, z) in [(0, 0), (-1, 1), (1, 2), (i32::MIN, u64::from(u32::MAX))] {
            assert_eq!(zigzag(v), z);
            assert_eq!(unzigzag(z), Ok(v));
        }
        assert!(unzigzag(1 << 32).is_err());
    }

    #[test]
    fn truncation_is_an_error() {
        let frames = frames_from(100, &[(3000, 70_000, true), (3000, 200, false)]);
        let blob = encode(100, &frames);
        // Cutting inside a varint must fail; cutting at a frame boundary yields fewer frames.
        assert!(decode(&blob[..blob.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[3, 0]).is_err());
        assert!(
            decode(&[2, 0, 1, 2]).is_err(),
            "version 2 without the offset"
        );
    }
}
