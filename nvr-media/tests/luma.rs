//! The luma decoder against streams GStreamer's encoders made: every frame comes out as a
//! shrunk luma picture with its timestamp, the brightness is the picture's, decoding twice
//! gives the same bytes, and H.265 works too.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{encode_pattern, pts};
use nvr_core::VideoCodec;
use nvr_media::{LumaDecoder, LumaImage, shrink_factor};

/// Decodes every frame of `clip` and returns the shrunk pictures with their timestamps.
fn decode_all(clip: &common::Clip, target_height: u32) -> Vec<(i64, LumaImage)> {
    let d = LumaDecoder::new(&clip.params, "mtest").unwrap();
    let mut out = Vec::new();
    let factor = shrink_factor(u32::from(clip.params.height), target_height);
    let take = |d: &LumaDecoder, wait: Duration, out: &mut Vec<(i64, LumaImage)>| {
        while let Some(p) = d.pull(wait).unwrap() {
            out.push((p.pts_90k, p.shrunk_luma(factor).unwrap()));
        }
    };
    for (i, f) in clip.frames.iter().enumerate() {
        loop {
            match d.push(f.clone(), pts(1_000_000, i), clip.keys[i]) {
                Ok(()) => break,
                Err(e) if e.is_frame_dropped() => take(&d, Duration::from_millis(10), &mut out),
                Err(e) => panic!("{e}"),
            }
        }
        take(&d, Duration::ZERO, &mut out);
    }
    d.finish().unwrap();
    while !d.is_drained() {
        take(&d, Duration::from_millis(100), &mut out);
    }
    out
}

fn mean(img: &LumaImage) -> f64 {
    img.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / img.pixels.len() as f64
}

#[test]
fn every_frame_becomes_a_small_luma_picture_deterministically() {
    let clip = encode_pattern(VideoCodec::H264, 320, 240, 20, 10, "ball");
    let a = decode_all(&clip, 60);
    assert_eq!(a.len(), 20);
    for (i, (t, img)) in a.iter().enumerate() {
        assert_eq!(*t, pts(1_000_000, i), "timestamps come back as pushed");
        assert_eq!((img.width, img.height, img.pixels.len()), (80, 60, 80 * 60));
    }
    assert_ne!(a[0].1, a[10].1, "the ball moves");
    let b = decode_all(&clip, 60);
    assert_eq!(a, b, "decoding is deterministic");
}

#[test]
fn brightness_is_the_pictures() {
    let white = decode_all(
        &encode_pattern(VideoCodec::H264, 160, 120, 3, 3, "white"),
        30,
    );
    let black = decode_all(
        &encode_pattern(VideoCodec::H265, 160, 120, 3, 3, "black"),
        30,
    );
    // Video range: white is 235, black 16.
    assert!(
        (mean(&white[0].1) - 235.0).abs() < 3.0,
        "{}",
        mean(&white[0].1)
    );
    assert!(
        (mean(&black[0].1) - 16.0).abs() < 3.0,
        "{}",
        mean(&black[0].1)
    );
    assert_eq!((black[0].1.width, black[0].1.height), (40, 30));
}

/// Undecodable input (what a hostile camera may send and the recorder still records) gives
/// no picture and never blocks the caller.
#[test]
fn garbage_gives_no_picture_and_never_blocks() {
    let clip = encode_pattern(VideoCodec::H264, 160, 120, 3, 3, "ball");
    let d = LumaDecoder::new(&clip.params, "mgarbage").unwrap();
    let junk = bytes::Bytes::from(vec![0, 0, 0, 8, 0x65, 1, 2, 3, 4, 5, 6, 7]);
    for i in 0..10 {
        if d.push(junk.clone(), pts(0, i), true).is_err() {
            break;
        }
        match d.pull(Duration::from_millis(50)) {
            Err(_) => break,
            Ok(Some(_)) => panic!("a picture from garbage"),
            Ok(None) => {}
        }
    }
    d.finish().unwrap();
}
