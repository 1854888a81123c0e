//! The compact per-segment frame index stored in SQLite: enough to build an MP4 or find a frame
//! by time without reading the segment file.
//!
//! ```text
//! blob = varint(version = 1) varint(first record offset)
//!        { varint(duration_90k) varint(size_bytes << 1 | is_key) } per frame
//! ```
//! Payload offsets are not stored: frame i's record starts at `first record offset +
//! sum over j < i of (16 + size_j)` and its payload 16 bytes later, because records are packed
//! back to back in the segment plaintext. At 30 fps a one-minute index is about 6 KiB.

use crate::segment::format::RECORD_HEADER_LEN;

const VERSION: u64 = 1;

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
}

/// Encodes frames whose records start at `first_record_offset` and follow each other.
pub fn encode(first_record_offset: u64, frames: &[FrameInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + frames.len() * 4);
    put_varint(&mut out, VERSION);
    put_varint(&mut out, first_record_offset);
    for f in frames {
        put_varint(&mut out, u64::from(f.duration_90k));
        put_varint(
            &mut out,
            (u64::from(f.size_bytes) << 1) | u64::from(f.is_key),
        );
    }
    out
}

/// Decodes a blob made by [`encode`], recomputing payload offsets.
pub fn decode(blob: &[u8]) -> Result<Vec<FrameInfo>, String> {
    let mut r = blob;
    let version = get_varint(&mut r)?;
    if version != VERSION {
        return Err(format!("frame index version {version} is not supported"));
    }
    let mut record = get_varint(&mut r)?;
    let mut frames = Vec::with_capacity(blob.len() / 4);
    while !r.is_empty() {
        let duration = get_varint(&mut r)?;
        let size_key = get_varint(&mut r)?;
        let size = size_key >> 1;
        let duration_90k =
            u32::try_from(duration).map_err(|_| format!("frame duration {duration} too large"))?;
        let size_bytes = u32::try_from(size).map_err(|_| format!("frame size {size} too large"))?;
        let data_offset = record + RECORD_HEADER_LEN as u64;
        frames.push(FrameInfo {
            duration_90k,
            size_bytes,
            is_key: size_key & 1 == 1,
            data_offset,
        });
        record = data_offset + size;
    }
    Ok(frames)
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
        let mut rec = first;
        spec.iter()
            .map(|&(d, s, k)| {
                let f = FrameInfo {
                    duration_90k: d,
                    size_bytes: s,
                    is_key: k,
                    data_offset: rec + 16,
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
        fn garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&blob);
        }
    }

    #[test]
    fn truncation_is_an_error() {
        let frames = frames_from(100, &[(3000, 70_000, true), (3000, 200, false)]);
        let blob = encode(100, &frames);
        // Cutting inside a varint must fail; cutting at a frame boundary yields fewer frames.
        assert!(decode(&blob[..blob.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[2, 0]).is_err());
    }
}
