//! `Transcoder` against real streams: H.265 -> H.264 and H.264 -> H.264 at a smaller size, the
//! output checked frame by frame and decoded back independently; the drop policy when nobody
//! pulls; input errors; B-frames in decode order.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    CLIP_FRAMES, Clip, KEYINT, clip, decode_h264, encode_with, pts, transcode_all, within,
};
use nvr_core::VideoCodec;
use nvr_core::frame::is_random_access;
use nvr_media::{
    MediaError, SampleEntryKind, TranscodeOptions, TranscodedFrame, Transcoder, parse_sample_entry,
    rfc6381_from_avcc,
};

/// Arbitrary non-zero start, like a camera session's media time.
const BASE: i64 = 123_456_789;

fn options(max_width: u32, max_height: u32) -> TranscodeOptions {
    TranscodeOptions {
        max_width,
        max_height,
        bitrate_kbps: 300,
    }
}

/// Checks the output parameters and every output frame, and decodes the output back.
fn check_output(t: &Transcoder, clip: &Clip, out: &[TranscodedFrame], w: u32, h: u32) {
    assert_eq!(out.len(), clip.frames.len(), "every pushed frame comes out");
    assert_eq!(t.dropped_frames(), 0);

    let params = t.output_params().expect("output params after output");
    assert_eq!(params.codec, VideoCodec::H264);
    assert_eq!((u32::from(params.width), u32::from(params.height)), (w, h));
    let config = parse_sample_entry(&params.sample_entry).unwrap();
    assert_eq!(config.kind, SampleEntryKind::Avc1);
    assert_eq!((u32::from(config.width), u32::from(config.height)), (w, h));
    assert_eq!(config.record[0], 1, "avcC version");
    assert_eq!(config.record[4] & 3, 3, "4-byte NAL lengths");
    assert_eq!(
        Some(params.rfc6381_codec.clone()),
        rfc6381_from_avcc(config.record)
    );
    assert!(
        params.rfc6381_codec.starts_with("avc1."),
        "{}",
        params.rfc6381_codec
    );

    assert!(out[0].is_key, "first output frame is a key frame");
    for (i, f) in out.iter().enumerate() {
        assert_eq!(
            f.pts_90k,
            pts(BASE, i),
            "pts of frame {i} follows the input"
        );
        assert_eq!(
            f.is_key,
            is_random_access(VideoCodec::H264, &f.data),
            "is_key of frame {i} matches its NAL units"
        );
    }
    // Output key frames at least at every input key frame (the clip's GOP is 1 s, the minimum
    // interval at which input key frames are followed).
    for (i, &key) in clip.keys.iter().enumerate() {
        if key {
            assert!(
                out[i].is_key,
                "input key frame {i} gives an output key frame"
            );
        }
    }

    let frames: Vec<Bytes> = out.iter().map(|f| f.data.clone()).collect();
    assert_eq!(decode_h264(&params, &frames), (out.len(), w, h));
    // A viewer joining at a later key frame can decode from there.
    let later_key = (1..out.len())
        .find(|&i| out[i].is_key)
        .expect("a second key frame");
    assert_eq!(
        decode_h264(&params, &frames[later_key..]),
        (out.len() - later_key, w, h)
    );
}

fn transcode(codec: VideoCodec, opts: TranscodeOptions, w: u32, h: u32) {
    let clip = clip(codec);
    let t = Arc::new(Transcoder::new(&clip.params, &opts).unwrap());
    assert_eq!(t.output_size(), (w, h));
    let out = {
        let t = Arc::clone(&t);
        within(60, "transcoding", move || transcode_all(&t, clip, BASE))
    };
    check_output(&t, clip, &out, w, h);
}

#[test]
fn h265_to_h264_smaller_box() {
    transcode(VideoCodec::H265, options(160, 160), 160, 120);
}

#[test]
fn h264_to_h264_rescale() {
    transcode(VideoCodec::H264, options(240, 1000), 240, 180);
}

/// Pulls until nothing arrives for `quiet`.
/// B-frames: access units pushed in decode order, each with its presentation time (going back
/// within each GOP, as a camera sends them), come out one for one in presentation order, with
/// the input's presentation times, and decode.
#[test]
fn b_frames_come_out_in_presentation_order() {
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        let clip = encode_with(codec, 320, 240, CLIP_FRAMES, KEYINT, "ball", 2);
        assert!(
            clip.pts_90k.windows(2).any(|w| w[1] < w[0]),
            "{codec:?}: the clip has B-frames: {:?}",
            clip.pts_90k
        );
        let t = Arc::new(Transcoder::new(&clip.params, &options(160, 120)).unwrap());
        let out = {
            let (t, clip) = (Arc::clone(&t), clip.clone());
            within(60, "transcoding", move || transcode_all(&t, &clip, BASE))
        };
        assert_eq!(t.dropped_frames(), 0);
        let got: Vec<i64> = out.iter().map(|f| f.pts_90k).collect();
        let mut want: Vec<i64> = clip.pts_90k.iter().map(|p| BASE + p).collect();
        want.sort_unstable();
        assert_eq!(got, want, "{codec:?}");
        let params = t.output_params().expect("output params");
        let frames: Vec<Bytes> = out.iter().map(|f| f.data.clone()).collect();
        assert_eq!(decode_h264(&params, &frames), (out.len(), 160, 120));
    }
}

fn pull_until_quiet(t: &Transcoder, quiet: Duration) -> Vec<TranscodedFrame> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(f) = t.pull(quiet).unwrap() {
        out.push(f);
        assert!(Instant::now() < deadline, "output never quiet");
    }
    out
}

#[test]
fn nobody_pulling_drops_to_the_next_key_frame() {
    let clip = clip(VideoCodec::H265);
    let t = Transcoder::new(&clip.params, &options(160, 120)).unwrap();
    // Push everything at once: the pipeline cannot keep up and nobody pulls.
    let mut accepted_pts = Vec::new();
    let mut previous_accepted = false;
    for (i, (frame, &key)) in clip.frames.iter().zip(&clip.keys).enumerate() {
        match t.push(frame.clone(), pts(BASE, i), key) {
            Ok(()) => {
                assert!(
                    key || previous_accepted,
                    "non-key frame {i} accepted after a drop"
                );
                accepted_pts.push(pts(BASE, i));
                previous_accepted = true;
            }
            Err(e) => {
                assert!(e.is_frame_dropped(), "{e}");
                previous_accepted = false;
            }
        }
    }
    let accepted = accepted_pts.len();
    assert!(accepted < clip.frames.len(), "a full pipeline drops frames");
    assert!(accepted >= nvr_media::MAX_QUEUED_INPUT, "{accepted}");
    assert_eq!(t.dropped_frames(), (clip.frames.len() - accepted) as u64);

    let mut out = pull_until_quiet(&t, Duration::from_secs(1));
    assert_eq!(t.queued_input(), 0);
    // The queue is empty now, but decoding can only resume at a key frame.
    let mut next = clip.frames.len();
    let err = t
        .push(clip.frames[1].clone(), pts(BASE, next), false)
        .unwrap_err();
    assert!(matches!(err, MediaError::Backlogged { queued: 0 }), "{err}");
    next += 1;
    for i in 0..KEYINT as usize {
        // Pulling keeps the output queue from filling; pacing keeps the input queue short.
        out.extend(t.pull(Duration::ZERO).unwrap());
        common::push_paced(
            &t,
            clip.frames[i].clone(),
            pts(BASE, next + i),
            clip.keys[i],
        );
    }
    t.finish().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !t.is_drained() {
        assert!(Instant::now() < deadline, "not drained");
        out.extend(t.pull(Duration::from_millis(100)).unwrap());
    }
    assert_eq!(out.len(), accepted + KEYINT as usize);
    let out_pts: Vec<i64> = out.iter().map(|f| f.pts_90k).collect();
    assert_eq!(
        &out_pts[..accepted],
        &accepted_pts[..],
        "accepted frames come out in order"
    );
    assert!(out_pts.windows(2).all(|w| w[0] < w[1]), "pts increase");
    assert!(out[accepted].is_key, "output resumes with a key frame");
    let params = t.output_params().unwrap();
    let frames: Vec<Bytes> = out.iter().map(|f| f.data.clone()).collect();
    assert_eq!(decode_h264(&params, &frames), (out.len(), 160, 120));
}

#[test]
fn input_errors() {
    let clip = clip(VideoCodec::H264);
    let t = Transcoder::new(&clip.params, &options(160, 120)).unwrap();
    // Before the first key frame, frames are dropped.
    let err = t
        .push(clip.frames[1].clone(), pts(BASE, 0), false)
        .unwrap_err();
    assert!(err.is_frame_dropped(), "{err}");
    t.push(clip.frames[0].clone(), pts(BASE, 1), true).unwrap();
    let err = t
        .push(clip.frames[1].clone(), pts(BASE, 1), false)
        .unwrap_err();
    assert!(
        matches!(err, MediaError::InvalidInput(_)),
        "same pts: {err}"
    );
    let err = t
        .push(clip.frames[1].clone(), pts(BASE, 1) - 2 * 90_000 - 1, false)
        .unwrap_err();
    assert!(
        matches!(err, MediaError::InvalidInput(_)),
        "pts more than 2 s back: {err}"
    );
    t.finish().unwrap();
    t.finish().unwrap();
    let err = t
        .push(clip.frames[1].clone(), pts(BASE, 5), false)
        .unwrap_err();
    assert!(matches!(err, MediaError::Finished), "{err}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while !t.is_drained() {
        assert!(Instant::now() < deadline, "not drained");
        out.extend(t.pull(Duration::from_millis(100)).unwrap());
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].pts_90k, pts(BASE, 1));
    assert!(t.pull(Duration::ZERO).unwrap().is_none());

    for (name, opts) in [
        ("tiny box", options(1, 120)),
        ("huge box", options(100_000, 120)),
        (
            "zero bitrate",
            TranscodeOptions {
                bitrate_kbps: 0,
                ..options(160, 120)
            },
        ),
    ] {
        let err = Transcoder::new(&clip.params, &opts).unwrap_err();
        assert!(matches!(err, MediaError::InvalidInput(_)), "{name}: {err}");
    }
    let mut bad = clip.params.clone();
    bad.sample_entry = bad.sample_entry.slice(..bad.sample_entry.len() - 3);
    let err = Transcoder::new(&bad, &options(160, 120)).unwrap_err();
    assert!(matches!(err, MediaError::InvalidSampleEntry(_)), "{err}");
}

#[test]
fn garbage_input_neither_hangs_nor_panics() {
    let clip = clip(VideoCodec::H265);
    let params = clip.params.clone();
    within(30, "garbage transcode", move || {
        let t = Transcoder::new(&params, &options(160, 120)).unwrap();
        // Key-frame-looking AUs (CRA NAL header) full of noise.
        let mut au = vec![0, 0, 0, 201, 0x2a, 0x01];
        au.extend((0..199u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let au = Bytes::from(au);
        let mut outcome = Ok(());
        for i in 0..5 {
            if let Err(e) = t.push(au.clone(), pts(BASE, i), true) {
                outcome = Err(e);
                break;
            }
        }
        if outcome.is_ok() {
            t.finish().unwrap();
        }
        // Either errors surface or the stream simply ends with nothing (or concealment) out.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match t.pull(Duration::from_millis(100)) {
                Err(MediaError::Pipeline(_)) => return,
                Err(e) => panic!("unexpected error {e}"),
                Ok(_) if t.is_drained() => return,
                Ok(_) => {}
            }
        }
        panic!("neither drained nor failed");
    });
}
