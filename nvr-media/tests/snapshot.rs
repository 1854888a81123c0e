//! `snapshot_jpeg` against real H.264/H.265 streams: sizes, scaling, decoding past the key
//! frame, and errors (never panics or hangs) for bad input.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{Clip, assert_jpeg, clip, within};
use nvr_core::VideoCodec;
use nvr_media::{MediaError, snapshot_jpeg};

/// Generous bound on any single snapshot in these tests; a hang fails instead of blocking.
const LIMIT_SECS: u64 = 30;

fn snap(
    clip: &'static Clip,
    frames: std::ops::Range<usize>,
    max_width: Option<u32>,
) -> Result<Vec<u8>, MediaError> {
    within(LIMIT_SECS, "snapshot", move || {
        snapshot_jpeg(&clip.params, &clip.frames[frames], max_width, 80)
    })
}

fn key_frame_snapshots(codec: VideoCodec) {
    let clip = clip(codec);
    assert!(clip.keys[0]);
    let full = snap(clip, 0..1, None).unwrap();
    assert_eq!(assert_jpeg(&full), (320, 240));
    let same = snap(clip, 0..1, Some(320)).unwrap();
    assert_eq!(assert_jpeg(&same), (320, 240));
    let thumb = snap(clip, 0..1, Some(160)).unwrap();
    assert_eq!(assert_jpeg(&thumb), (160, 120));
    let odd = snap(clip, 0..1, Some(101)).unwrap();
    assert_eq!(assert_jpeg(&odd), (100, 76), "even, aspect kept");
}

#[test]
fn h264_key_frame_snapshot_full_and_scaled() {
    key_frame_snapshots(VideoCodec::H264);
}

#[test]
fn h265_key_frame_snapshot_full_and_scaled() {
    key_frame_snapshots(VideoCodec::H265);
}

/// Key + 5 following frames gives the sixth picture: a different image from the key frame's
/// (the test pattern's ball moves every frame), and the same as decoding exactly those frames
/// would give regardless of how many come before in the GOP.
fn snapshot_after_following_frames(codec: VideoCodec) {
    let clip = clip(codec);
    assert!(
        !clip.keys[1..6].iter().any(|&k| k),
        "frames 1..6 are not key frames"
    );
    let key_only = snap(clip, 0..1, None).unwrap();
    let sixth = snap(clip, 0..6, None).unwrap();
    assert_eq!(assert_jpeg(&sixth), (320, 240));
    assert_ne!(
        key_only, sixth,
        "the last picture, not the key frame, is encoded"
    );
    let fifth = snap(clip, 0..5, None).unwrap();
    assert_ne!(fifth, sixth);
    // Deterministic: decoding the same frames again gives the same JPEG.
    assert_eq!(snap(clip, 0..6, None).unwrap(), sixth);
    // A whole GOP scaled.
    let gop = snap(clip, 0..15, Some(160)).unwrap();
    assert_eq!(assert_jpeg(&gop), (160, 120));
}

#[test]
fn h264_snapshot_after_several_frames() {
    snapshot_after_following_frames(VideoCodec::H264);
}

#[test]
fn h265_snapshot_after_several_frames() {
    snapshot_after_following_frames(VideoCodec::H265);
}

#[test]
fn empty_frame_list_is_an_error() {
    let clip = clip(VideoCodec::H264);
    let err = snap(clip, 0..0, None).unwrap_err();
    assert!(matches!(err, MediaError::InvalidInput(_)), "{err}");
}

#[test]
fn first_frame_not_key_is_an_error() {
    let clip = clip(VideoCodec::H265);
    let err = snap(clip, 1..4, None).unwrap_err();
    assert!(matches!(err, MediaError::InvalidInput(_)), "{err}");
}

#[test]
fn garbage_frames_are_errors() {
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        let params = clip(codec).params.clone();
        // Passes the key-frame check (an IDR NAL header) but the slice data is noise.
        let nal_header: &[u8] = match codec {
            VideoCodec::H264 => &[0x65],
            VideoCodec::H265 => &[0x26, 0x01],
        };
        let mut noise: Vec<u8> = nal_header.to_vec();
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            // xorshift32: deterministic pseudo-random bytes.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push(x as u8);
        }
        let mut au = (noise.len() as u32).to_be_bytes().to_vec();
        au.extend_from_slice(&noise);
        let frames = vec![Bytes::from(au.clone()), Bytes::from(au)];
        let err = within(LIMIT_SECS, "garbage snapshot", move || {
            snapshot_jpeg(&params, &frames, Some(160), 80)
        })
        .unwrap_err();
        assert!(
            matches!(err, MediaError::NoPicture { .. } | MediaError::Pipeline(_)),
            "{codec:?}: {err}"
        );
        // Data that is not even length-prefixed NAL units fails the key-frame check.
        let params = clip(codec).params.clone();
        let err = snapshot_jpeg(
            &params,
            &[Bytes::from_static(b"\xff\xff\xff\xffgarbage")],
            None,
            80,
        )
        .unwrap_err();
        assert!(matches!(err, MediaError::InvalidInput(_)), "{err}");
    }
}

#[test]
fn malformed_sample_entries_are_errors() {
    let good = clip(VideoCodec::H264);
    let frames = good.frames[..1].to_vec();
    let mut cases = Vec::new();
    let mut truncated = good.params.clone();
    truncated.sample_entry = good.params.sample_entry.slice(..40);
    cases.push(("truncated", truncated));
    let mut empty = good.params.clone();
    empty.sample_entry = Bytes::new();
    cases.push(("empty", empty));
    let mut wrong_codec = good.params.clone();
    wrong_codec.codec = VideoCodec::H265;
    cases.push(("codec mismatch", wrong_codec));
    // A structurally valid box whose avcC is noise: the decoder must reject it.
    let mut noise_avcc = good.params.clone();
    noise_avcc.sample_entry =
        common::sample_entry(b"avc1", b"avcC", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 320, 240);
    for (name, params) in cases {
        let frames = frames.clone();
        let err = within(LIMIT_SECS, name, move || {
            snapshot_jpeg(&params, &frames, None, 80)
        })
        .unwrap_err();
        assert!(
            matches!(err, MediaError::InvalidSampleEntry(_)),
            "{name}: {err}"
        );
    }
    let err = within(LIMIT_SECS, "noise avcC", move || {
        snapshot_jpeg(&noise_avcc, &frames, None, 80)
    })
    .unwrap_err();
    assert!(
        matches!(err, MediaError::Pipeline(_) | MediaError::NoPicture { .. }),
        "noise avcC: {err}"
    );
}

#[test]
fn quality_changes_the_output_and_extremes_are_accepted() {
    let clip = clip(VideoCodec::H264);
    let frames = clip.frames[..1].to_vec();
    let low = snapshot_jpeg(&clip.params, &frames, None, 0).unwrap();
    let high = snapshot_jpeg(&clip.params, &frames, None, 255).unwrap();
    assert_jpeg(&low);
    assert_jpeg(&high);
    assert!(low.len() < high.len(), "{} vs {}", low.len(), high.len());
}

#[test]
fn avc3_and_hev1_sample_entries_decode() {
    for (codec, fourcc) in [(VideoCodec::H264, b"avc3"), (VideoCodec::H265, b"hev1")] {
        let clip = clip(codec);
        let mut params = clip.params.clone();
        let mut entry = params.sample_entry.to_vec();
        entry[4..8].copy_from_slice(fourcc);
        params.sample_entry = Bytes::from(entry);
        let frames = clip.frames[..3].to_vec();
        let jpeg = within(LIMIT_SECS, "avc3/hev1 snapshot", move || {
            snapshot_jpeg(&params, &frames, Some(160), 80)
        })
        .unwrap();
        assert_eq!(assert_jpeg(&jpeg), (160, 120), "{codec:?}");
    }
}
