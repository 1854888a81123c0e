//! What ingest hands to storage: video parameters (codec, size, the MP4 sample entry holding the
//! SPS/PPS) and frames (one access unit each, in MP4 framing), plus key-frame detection.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::time::Time90k;

/// The video codecs the recorder stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    /// Guesses the codec from an RFC 6381 codec string (`avc1.4d401f`, `hvc1.1.6.L93.B0`).
    pub fn from_rfc6381(codec: &str) -> Option<Self> {
        let prefix = codec.split('.').next().unwrap_or("");
        match prefix {
            "avc1" | "avc3" => Some(VideoCodec::H264),
            "hvc1" | "hev1" => Some(VideoCodec::H265),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }
}

/// Everything needed to decode a run of frames: constant until the camera changes its settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VideoParams {
    pub codec: VideoCodec,
    /// RFC 6381 codec string, e.g. `avc1.64001f`, for MSE and the API.
    pub rfc6381_codec: String,
    pub width: u16,
    pub height: u16,
    /// A complete ISO BMFF `avc1`/`hvc1` sample entry box, including SPS/PPS(/VPS).
    pub sample_entry: Bytes,
}

/// One encoded picture as received from a camera.
#[derive(Clone, Debug)]
pub struct VideoFrame {
    /// Media time since the start of the RTSP session, from RTP timestamps (90 kHz).
    pub media_time_90k: i64,
    /// Wall-clock time when the last packet of the frame arrived.
    pub received: Time90k,
    /// An IRAP picture (IDR, or CRA/BLA in H.265): decoding can start here.
    pub is_key: bool,
    /// The access unit: NAL units, each prefixed by a 4-byte big-endian length.
    pub data: Bytes,
}

/// Returns true if `data` (4-byte length-prefixed NAL units) holds a picture decoding can start at.
///
/// For H.264 that is an IDR slice (NAL type 5). For H.265 it is any IRAP picture (NAL types
/// 16..=23: BLA, IDR, CRA and reserved IRAP types), because open-GOP encoders emit CRA pictures and
/// never IDR ones; treating only IDR as key would make such a camera look key-frame-less.
pub fn is_random_access(codec: VideoCodec, data: &[u8]) -> bool {
    nal_headers(data).any(|b0| match codec {
        VideoCodec::H264 => b0 & 0x1f == 5,
        VideoCodec::H265 => (16..=23).contains(&((b0 >> 1) & 0x3f)),
    })
}

/// Yields the first byte of each NAL unit of a length-prefixed access unit; stops at malformed data.
fn nal_headers(mut data: &[u8]) -> impl Iterator<Item = u8> + '_ {
    std::iter::from_fn(move || {
        let (len_bytes, rest) = data.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len_bytes) as usize;
        if len == 0 || len > rest.len() {
            data = &[];
            return None;
        }
        let first = rest[0];
        data = &rest[len..];
        Some(first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn h264_idr_is_key_and_p_slice_is_not() {
        assert!(is_random_access(
            VideoCodec::H264,
            &au(&[&[0x67, 1], &[0x68, 2], &[0x65, 3]])
        ));
        assert!(!is_random_access(VideoCodec::H264, &au(&[&[0x41, 1, 2]])));
    }

    #[test]
    fn h265_cra_and_idr_are_key_trail_is_not() {
        // NAL type is bits 1..6 of the first byte: CRA = 21 -> 0x2a, IDR_W_RADL = 19 -> 0x26.
        assert!(is_random_access(VideoCodec::H265, &au(&[&[0x2a, 1, 1]])));
        assert!(is_random_access(VideoCodec::H265, &au(&[&[0x26, 1, 1]])));
        assert!(!is_random_access(VideoCodec::H265, &au(&[&[0x02, 1, 1]])));
    }

    #[test]
    fn malformed_lengths_do_not_panic() {
        assert!(!is_random_access(VideoCodec::H264, &[0, 0, 0, 9, 0x65]));
        assert!(!is_random_access(VideoCodec::H264, &[0, 0]));
        assert!(!is_random_access(VideoCodec::H264, &[]));
    }

    #[test]
    fn codec_from_rfc6381() {
        assert_eq!(
            VideoCodec::from_rfc6381("avc1.64001f"),
            Some(VideoCodec::H264)
        );
        assert_eq!(
            VideoCodec::from_rfc6381("hvc1.1.6.L93.B0"),
            Some(VideoCodec::H265)
        );
        assert_eq!(VideoCodec::from_rfc6381("mp4a.40.2"), None);
    }
}
