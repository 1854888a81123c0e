//! The byte layout of segment files, format v1: header, records and trailer. Pure encoding and
//! decoding; the crypto lives in `crypto.rs` and file I/O in `file.rs`.
//!
//! ```text
//! file = header || chunk_0 || chunk_1 || ... || chunk_n          (chunk_n is the final chunk)
//!
//! header (96 bytes, plaintext, bound into every chunk as AAD = SHA-256(header)):
//!   off len field
//!     0   8 magic "NVRSEG1\0"
//!     8   2 format version = 1                         (big-endian, as every integer here)
//!    10   2 algorithm = 1 (AES-256-GCM)
//!    12   4 chunk plaintext size = 65536
//!    16   8 camera id
//!    24   8 segment id
//!    32   8 epoch id (which wrapped epoch key derives this segment's key)
//!    40  16 salt (random; HKDF salt of the segment key)
//!    56   8 start time, 90 kHz since the Unix epoch (estimate when the file was opened)
//!    64  32 reserved, zero
//!
//! chunk i (at offset 96 + i * 65552): AES-256-GCM(segment key, nonce_i, AAD, plaintext_i) || tag
//!   nonce_i = 11-byte big-endian i || flag (0 inner, 1 last, 2 last written by crash recovery)
//!   every chunk but the last holds exactly 65536 plaintext bytes; the last holds 96..=65536.
//!
//! plaintext = record* || padding || trailer          (records may straddle chunk boundaries)
//! record header (16 bytes), then `size` payload bytes:
//!   off len field
//!     0   1 kind: 1 = video parameters, 2 = video frame
//!     1   1 flags: bit 0 = key frame (IRAP)
//!     2   2 reserved, zero
//!     4   4 payload size in bytes
//!     8   8 media time of the frame relative to the segment's first frame, 90 kHz (0 for params)
//! The first record is always the video parameters; the rest are frames in decode order. A
//! frame's media time is its presentation time (the RTP timestamp): with B-frames it goes back
//! within a GOP, at most 2 s, and no two frames of a segment share one; decode times are
//! derived from them (`frame_timing`).
//!
//! trailer (the last 96 bytes of the final chunk's plaintext):
//!   off len field
//!     0   8 magic "NVRTRL1\0"
//!     8   8 records end: plaintext offset where the records stop (padding may follow)
//!    16   8 frame count
//!    24   8 media duration, 90 kHz
//!    32   8 wall start, 90 kHz since the Unix epoch
//!    40   8 wall end
//!    48   4 flags: bit 0 = recovered after a crash
//!    52  12 reserved, zero
//!    64  32 SHA-256 of plaintext[0 .. records end]
//! ```
//!
//! Why 64 KiB chunks: large enough that the 16-byte tag and the per-chunk call cost are noise
//! (0.02 % overhead), small enough that a `kill -9` loses at most one chunk (well under a second
//! of a 1-4 Mbit/s camera) and that a Range request decrypts little more than it serves.

use nvr_core::{VideoCodec, VideoParams};

pub const MAGIC: [u8; 8] = *b"NVRSEG1\0";
pub const TRAILER_MAGIC: [u8; 8] = *b"NVRTRL1\0";
pub const FORMAT_VERSION: u16 = 1;
pub const ALGORITHM_AES_256_GCM: u16 = 1;
pub const HEADER_LEN: usize = 96;
pub const CHUNK_PLAINTEXT_LEN: usize = 64 * 1024;
pub const TAG_LEN: usize = 16;
pub const CHUNK_CIPHERTEXT_LEN: usize = CHUNK_PLAINTEXT_LEN + TAG_LEN;
pub const RECORD_HEADER_LEN: usize = 16;
pub const TRAILER_LEN: usize = 96;
pub const SALT_LEN: usize = 16;

pub const RECORD_PARAMS: u8 = 1;
pub const RECORD_FRAME: u8 = 2;
pub const FLAG_KEY: u8 = 1;
pub const TRAILER_FLAG_RECOVERED: u32 = 1;

/// The fixed plaintext header of a segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub camera_id: i64,
    pub segment_id: i64,
    pub epoch_id: i64,
    pub salt: [u8; SALT_LEN],
    pub start_90k: i64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        b[10..12].copy_from_slice(&ALGORITHM_AES_256_GCM.to_be_bytes());
        b[12..16].copy_from_slice(&(CHUNK_PLAINTEXT_LEN as u32).to_be_bytes());
        b[16..24].copy_from_slice(&self.camera_id.to_be_bytes());
        b[24..32].copy_from_slice(&self.segment_id.to_be_bytes());
        b[32..40].copy_from_slice(&self.epoch_id.to_be_bytes());
        b[40..56].copy_from_slice(&self.salt);
        b[56..64].copy_from_slice(&self.start_90k.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < HEADER_LEN {
            return Err(format!("header is {} bytes, want {HEADER_LEN}", b.len()));
        }
        if b[0..8] != MAGIC {
            return Err("not a segment file (bad magic)".into());
        }
        let version = u16::from_be_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported segment format version {version}"));
        }
        let alg = u16::from_be_bytes([b[10], b[11]]);
        if alg != ALGORITHM_AES_256_GCM {
            return Err(format!("unsupported algorithm {alg}"));
        }
        let chunk = u32::from_be_bytes(arr(&b[12..16]));
        if chunk as usize != CHUNK_PLAINTEXT_LEN {
            return Err(format!("unsupported chunk size {chunk}"));
        }
        if b[64..HEADER_LEN].iter().any(|&x| x != 0) {
            return Err("reserved header bytes are not zero".into());
        }
        Ok(SegmentHeader {
            camera_id: i64::from_be_bytes(arr(&b[16..24])),
            segment_id: i64::from_be_bytes(arr(&b[24..32])),
            epoch_id: i64::from_be_bytes(arr(&b[32..40])),
            salt: arr(&b[40..56]),
            start_90k: i64::from_be_bytes(arr(&b[56..64])),
        })
    }
}

/// Copies a slice of known length into an array. Callers index fixed ranges of checked buffers.
fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: u8,
    pub flags: u8,
    pub size_bytes: u32,
    pub media_offset_90k: i64,
}

impl RecordHeader {
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[0] = self.kind;
        b[1] = self.flags;
        b[4..8].copy_from_slice(&self.size_bytes.to_be_bytes());
        b[8..16].copy_from_slice(&self.media_offset_90k.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8; RECORD_HEADER_LEN]) -> Result<Self, String> {
        let h = RecordHeader {
            kind: b[0],
            flags: b[1],
            size_bytes: u32::from_be_bytes(arr(&b[4..8])),
            media_offset_90k: i64::from_be_bytes(arr(&b[8..16])),
        };
        if h.kind != RECORD_PARAMS && h.kind != RECORD_FRAME {
            return Err(format!("unknown record kind {}", h.kind));
        }
        if b[2] != 0 || b[3] != 0 || h.flags & !FLAG_KEY != 0 {
            return Err("reserved record header bits are set".into());
        }
        Ok(h)
    }

    pub fn is_key(&self) -> bool {
        self.flags & FLAG_KEY != 0
    }
}

/// The trailer at the end of the final chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub records_end: u64,
    pub frame_count: u64,
    pub media_duration_90k: i64,
    pub wall_start_90k: i64,
    pub wall_end_90k: i64,
    pub flags: u32,
    pub sha256: [u8; 32],
}

impl Trailer {
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&TRAILER_MAGIC);
        b[8..16].copy_from_slice(&self.records_end.to_be_bytes());
        b[16..24].copy_from_slice(&self.frame_count.to_be_bytes());
        b[24..32].copy_from_slice(&self.media_duration_90k.to_be_bytes());
        b[32..40].copy_from_slice(&self.wall_start_90k.to_be_bytes());
        b[40..48].copy_from_slice(&self.wall_end_90k.to_be_bytes());
        b[48..52].copy_from_slice(&self.flags.to_be_bytes());
        b[64..96].copy_from_slice(&self.sha256);
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() != TRAILER_LEN || b[0..8] != TRAILER_MAGIC {
            return Err("final chunk has no trailer".into());
        }
        if b[52..64].iter().any(|&x| x != 0) {
            return Err("reserved trailer bytes are not zero".into());
        }
        Ok(Trailer {
            records_end: u64::from_be_bytes(arr(&b[8..16])),
            frame_count: u64::from_be_bytes(arr(&b[16..24])),
            media_duration_90k: i64::from_be_bytes(arr(&b[24..32])),
            wall_start_90k: i64::from_be_bytes(arr(&b[32..40])),
            wall_end_90k: i64::from_be_bytes(arr(&b[40..48])),
            flags: u32::from_be_bytes(arr(&b[48..52])),
            sha256: arr(&b[64..96]),
        })
    }
}

/// Encodes video parameters as the payload of a params record:
/// codec (1 byte: 1 = H.264, 2 = H.265), width (2), height (2), RFC 6381 codec string
/// (2-byte length + UTF-8), sample entry box (4-byte length + bytes).
pub fn encode_params(p: &VideoParams) -> Vec<u8> {
    let mut v = Vec::with_capacity(11 + p.rfc6381_codec.len() + p.sample_entry.len());
    v.push(match p.codec {
        VideoCodec::H264 => 1,
        VideoCodec::H265 => 2,
    });
    v.extend_from_slice(&p.width.to_be_bytes());
    v.extend_from_slice(&p.height.to_be_bytes());
    // Codec strings are ~20 bytes; anything longer than u16 is a bug upstream, so truncate.
    let codec = &p.rfc6381_codec.as_bytes()[..p.rfc6381_codec.len().min(u16::MAX as usize)];
    v.extend_from_slice(&(codec.len() as u16).to_be_bytes());
    v.extend_from_slice(codec);
    v.extend_from_slice(&(p.sample_entry.len() as u32).to_be_bytes());
    v.extend_from_slice(&p.sample_entry);
    v
}

pub fn decode_params(b: &[u8]) -> Result<VideoParams, String> {
    let err = || "truncated video parameters record".to_string();
    let codec = match b.first().ok_or_else(err)? {
        1 => VideoCodec::H264,
        2 => VideoCodec::H265,
        c => return Err(format!("unknown codec {c} in parameters record")),
    };
    let width = u16::from_be_bytes(arr(b.get(1..3).ok_or_else(err)?));
    let height = u16::from_be_bytes(arr(b.get(3..5).ok_or_else(err)?));
    let codec_len = u16::from_be_bytes(arr(b.get(5..7).ok_or_else(err)?)) as usize;
    let codec_str = b.get(7..7 + codec_len).ok_or_else(err)?;
    let rfc6381_codec = String::from_utf8(codec_str.to_vec())
        .map_err(|_| "codec string is not UTF-8".to_string())?;
    let at = 7 + codec_len;
    let entry_len = u32::from_be_bytes(arr(b.get(at..at + 4).ok_or_else(err)?)) as usize;
    let entry = b.get(at + 4..at + 4 + entry_len).ok_or_else(err)?;
    if at + 4 + entry_len != b.len() {
        return Err("trailing bytes after video parameters".into());
    }
    Ok(VideoParams {
        codec,
        rfc6381_codec,
        width,
        height,
        sample_entry: bytes::Bytes::copy_from_slice(entry),
    })
}

/// Plaintext offset of chunk `i`'s first byte.
pub fn chunk_plaintext_start(i: u64) -> u64 {
    i * CHUNK_PLAINTEXT_LEN as u64
}

/// File offset of chunk `i`'s first byte.
pub fn chunk_file_offset(i: u64) -> u64 {
    HEADER_LEN as u64 + i * CHUNK_CIPHERTEXT_LEN as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = SegmentHeader {
            camera_id: 7,
            segment_id: 1234,
            epoch_id: 9,
            salt: [3; 16],
            start_90k: 161_636_391_045_000,
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        let mut bad = b;
        bad[0] = b'X';
        assert!(SegmentHeader::decode(&bad).is_err());
        let mut bad = b;
        bad[9] = 2;
        assert!(SegmentHeader::decode(&bad).is_err());
    }

    #[test]
    fn params_round_trip_and_truncation() {
        let p = VideoParams {
            codec: VideoCodec::H265,
            rfc6381_codec: "hvc1.1.6.L93.B0".into(),
            width: 1920,
            height: 1080,
            sample_entry: bytes::Bytes::from_static(&[1, 2, 3, 4, 5]),
        };
        let b = encode_params(&p);
        assert_eq!(decode_params(&b), Ok(p));
        for n in 0..b.len() {
            assert!(decode_params(&b[..n]).is_err(), "truncated at {n}");
        }
    }

    proptest::proptest! {
        /// The decoders of everything read from a segment file take any bytes without panicking.
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = SegmentHeader::decode(&b);
            let _ = decode_params(&b);
            let _ = Trailer::decode(&b);
            if b.len() >= RECORD_HEADER_LEN {
                let mut h = [0u8; RECORD_HEADER_LEN];
                h.copy_from_slice(&b[..RECORD_HEADER_LEN]);
                let _ = RecordHeader::decode(&h);
            }
        }
    }

    #[test]
    fn record_header_rejects_unknown_kinds() {
        let h = RecordHeader {
            kind: RECORD_FRAME,
            flags: FLAG_KEY,
            size_bytes: 5,
            media_offset_90k: 6000,
        };
        assert_eq!(RecordHeader::decode(&h.encode()), Ok(h));
        let mut b = h.encode();
        b[0] = 0;
        assert!(RecordHeader::decode(&b).is_err());
    }
}
