//! The replay clip: encoded once at start-up into memory as a list of access units that
//! starts on a key frame and ends on a GOP boundary, so looping it is seamless.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::{TestCamConfig, TestCamError, pipelines};

/// How long encoding may go without producing a frame before it counts as stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the bus is polled while the clip is encoding.
const POLL_INTERVAL: gst::ClockTime = gst::ClockTime::from_mseconds(200);

/// An encoded clip shared by all replay mounts.
#[derive(Debug)]
pub(crate) struct Clip {
    /// Caps of the access units (`video/x-h26x, stream-format=byte-stream, alignment=au`).
    pub caps: gst::Caps,
    /// One buffer per access unit, in decode order; the first is a key frame carrying
    /// parameter sets. Timestamps are meaningless: the feeder stamps each copy it sends.
    pub frames: Vec<gst::Buffer>,
    /// Per frame: the frame slot it is presented in minus the one it is decoded in, within
    /// the clip (all 0 without B-frames; with them, anchor frames are presented later and
    /// B-frames earlier than their place in decode order).
    pub reorder_slots: Vec<i64>,
    /// Frames per second the clip was encoded at.
    pub fps: u32,
}

/// Whether an access unit is a key frame (random access point).
fn is_key_frame(buffer: &gst::Buffer) -> bool {
    !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
}

/// Encodes the clip described by `config` (blocking; seconds for 1080p).
pub(crate) fn encode(config: &TestCamConfig) -> Result<Clip, TestCamError> {
    let keyint = config.keyint();
    let clip_frames = config.replay_frames();
    // x265 always starts with an IDR picture, even with open GOP; encode one extra GOP
    // and drop it so every key frame of an open-GOP clip is a CRA picture.
    let skip = if config.open_gop { keyint } else { 0 };
    let total = clip_frames.saturating_add(skip);
    let launch = pipelines::clip_encoder(config, total);
    tracing::debug!(%launch, "encoding replay clip");
    let started = Instant::now();

    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| TestCamError::Encode(format!("cannot build `{launch}`: {e}")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| TestCamError::Encode("launch line is not a pipeline".into()))?;
    let sink = pipeline
        .by_name(pipelines::CLIP_SINK_NAME)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| TestCamError::Encode("appsink not found".into()))?;

    if let Some(spec) = config.scene_spec() {
        feed_scene(&pipeline, spec, config, total)?;
    }
    let collected: Arc<Mutex<Collected>> = Arc::default();
    let collected_cb = Arc::clone(&collected);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let mut c = collected_cb.lock().unwrap_or_else(PoisonError::into_inner);
                if c.caps.is_none() {
                    c.caps = sample.caps_owned();
                }
                if let Some(buffer) = sample.buffer_owned() {
                    c.frames.push(buffer);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );

    let result = run_to_eos(&pipeline, &collected);
    // Shutting down cannot meaningfully fail; the result above is what matters.
    let _ = pipeline.set_state(gst::State::Null);
    result?;

    let Collected { caps, frames } =
        std::mem::take(&mut *collected.lock().unwrap_or_else(PoisonError::into_inner));
    let caps = caps.ok_or_else(|| TestCamError::Encode("the encoder produced no caps".into()))?;
    let encoded = frames.len();
    let frames = trim_to_gops(frames, skip as usize, clip_frames as usize)?;
    let clip = Clip {
        caps,
        reorder_slots: reorder_slots(&frames, config.fps),
        frames,
        fps: config.fps,
    };
    tracing::info!(
        frames = clip.frames.len(),
        encoded,
        bytes = clip.frames.iter().map(|b| b.size()).sum::<usize>(),
        elapsed_ms = started.elapsed().as_millis(),
        "replay clip encoded"
    );
    Ok(clip)
}

/// Draws the clip's pictures of a scene into its `appsrc`: picture `i` at `i / fps` seconds
/// into the period, then end of stream.
fn feed_scene(
    pipeline: &gst::Pipeline,
    spec: crate::scene::SceneSpec,
    config: &TestCamConfig,
    total: u32,
) -> Result<(), TestCamError> {
    let src = pipeline
        .by_name(pipelines::SCENE_SRC_NAME)
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| TestCamError::Encode("scene appsrc not found".into()))?;
    let (w, h, fps) = (config.width, config.height, config.fps.max(1));
    let mut next = 0u32;
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                if next >= total {
                    let _ = src.end_of_stream();
                    return;
                }
                let t = f64::from(next) / f64::from(fps);
                let data = crate::scene::draw(&spec, w, h, t, u64::from(next));
                let mut b = gst::Buffer::from_mut_slice(data);
                if let Some(b) = b.get_mut() {
                    b.set_pts(gst::ClockTime::from_nseconds(
                        u64::from(next) * 1_000_000_000 / u64::from(fps),
                    ));
                }
                next += 1;
                let _ = src.push_buffer(b);
            })
            .build(),
    );
    Ok(())
}

/// What the appsink callback collects.
#[derive(Debug, Default)]
struct Collected {
    caps: Option<gst::Caps>,
    frames: Vec<gst::Buffer>,
}

/// Plays `pipeline` until EOS, failing on an error message or a stall.
fn run_to_eos(pipeline: &gst::Pipeline, collected: &Mutex<Collected>) -> Result<(), TestCamError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| TestCamError::Encode("pipeline has no bus".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| TestCamError::Encode(format!("cannot start the encoder: {e}")))?;
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    loop {
        let message = bus.timed_pop_filtered(
            POLL_INTERVAL,
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match message.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => return Ok(()),
            Some(gst::MessageView::Error(err)) => {
                return Err(TestCamError::Encode(format!(
                    "{} ({})",
                    err.error(),
                    err.debug().map(|d| d.to_string()).unwrap_or_default()
                )));
            }
            _ => {}
        }
        let count = collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .frames
            .len();
        if count != last_count {
            last_count = count;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALL_TIMEOUT {
            return Err(TestCamError::Encode(format!(
                "no progress for {} s after {count} frames",
                STALL_TIMEOUT.as_secs()
            )));
        }
    }
}

/// Each frame's presentation slot (from the encoder's timestamps, relative to the first
/// frame) minus its decode slot (its index). All 0 when the encoder did not reorder, or when
/// the timestamps do not give every frame its own slot.
fn reorder_slots(frames: &[gst::Buffer], fps: u32) -> Vec<i64> {
    let ns = |b: &gst::Buffer| b.pts().map(|t| i128::from(t.nseconds()));
    let first = frames.first().and_then(ns);
    let fps = i128::from(fps.max(1));
    let slots: Option<Vec<i64>> = frames
        .iter()
        .map(|b| {
            let d = ns(b)? - first?;
            // Round to the nearest slot, either side of the first frame.
            let half = if d < 0 { -500_000_000 } else { 500_000_000 };
            i64::try_from((d * fps + half) / 1_000_000_000).ok()
        })
        .collect();
    let in_order = vec![0; frames.len()];
    let Some(slots) = slots else {
        return in_order;
    };
    let distinct: std::collections::HashSet<i64> = slots.iter().copied().collect();
    if distinct.len() != slots.len() {
        tracing::warn!("the encoder's timestamps share frame slots; replaying in decode order");
        return in_order;
    }
    slots.iter().zip(0i64..).map(|(s, i)| s - i).collect()
}

/// Cuts the encoded frames to whole GOPs: drops everything before the first key frame
/// at or after index `skip`, then keeps `wanted` frames, moving the end back to a key
/// frame if `wanted` does not end on a GOP boundary.
fn trim_to_gops(
    mut frames: Vec<gst::Buffer>,
    skip: usize,
    wanted: usize,
) -> Result<Vec<gst::Buffer>, TestCamError> {
    let start = frames
        .iter()
        .enumerate()
        .skip(skip)
        .find(|(_, b)| is_key_frame(b))
        .map(|(i, _)| i)
        .ok_or_else(|| {
            TestCamError::Encode(format!(
                "no key frame after frame {skip} of {}",
                frames.len()
            ))
        })?;
    frames.drain(..start);
    if frames.len() > wanted {
        // The frame after the clip must be a key frame for a seamless loop.
        let end = (1..=wanted)
            .rev()
            .find(|&i| is_key_frame(&frames[i]))
            .unwrap_or(wanted);
        frames.truncate(end);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;

    /// NAL unit types of an H.265 byte-stream access unit.
    fn h265_nal_types(data: &[u8]) -> Vec<u8> {
        data.windows(4)
            .filter(|w| w[..3] == [0, 0, 1])
            .map(|w| (w[3] >> 1) & 0x3f)
            .collect()
    }

    fn small(codec: Codec, open_gop: bool) -> TestCamConfig {
        TestCamConfig {
            codec,
            open_gop,
            width: 160,
            height: 120,
            fps: 10,
            keyint_frames: 5,
            replay_secs: 2,
            bitrate_kbps: 200,
            ..TestCamConfig::default()
        }
    }

    fn check_gops(clip: &Clip) {
        assert_eq!(clip.frames.len(), 20, "2 s at 10 fps, 4 GOPs of 5");
        assert_eq!(clip.reorder_slots.len(), 20);
        for (i, frame) in clip.frames.iter().enumerate() {
            assert_eq!(is_key_frame(frame), i % 5 == 0, "frame {i}");
        }
    }

    #[test]
    fn h264_clip_is_whole_closed_gops() {
        gst::init().expect("GStreamer initialises");
        let clip = encode(&small(Codec::H264, false)).expect("encodes");
        check_gops(&clip);
        let s = clip.caps.structure(0).expect("caps have a structure");
        assert_eq!(s.name(), "video/x-h264");
        assert_eq!(s.get::<&str>("stream-format").ok(), Some("byte-stream"));
        let map = clip.frames[0].map_readable().expect("readable");
        let types: Vec<u8> = map
            .windows(4)
            .filter(|w| w[..3] == [0, 0, 1])
            .map(|w| w[3] & 0x1f)
            .collect();
        assert!(
            types.contains(&7) && types.contains(&8),
            "SPS+PPS: {types:?}"
        );
        assert!(types.contains(&5), "IDR: {types:?}");
    }

    /// With B-frames the clip keeps whole GOPs in decode order, and each GOP presents its own
    /// slots, each once: anchors later than their decode slot, B-frames earlier.
    #[test]
    fn b_frame_clips_are_reordered_within_their_gops() {
        gst::init().expect("GStreamer initialises");
        for codec in [Codec::H264, Codec::H265] {
            let config = TestCamConfig {
                bframes: 2,
                keyint_frames: 10,
                ..small(codec, false)
            };
            let clip = encode(&config).expect("encodes");
            assert_eq!(clip.frames.len(), 20, "{codec}");
            assert!(
                clip.reorder_slots.iter().any(|&d| d < 0),
                "{codec}: no B-frame presented early: {:?}",
                clip.reorder_slots
            );
            for gop in 0..2 {
                let mut presented: Vec<i64> = (gop * 10..gop * 10 + 10)
                    .map(|i| i as i64 + clip.reorder_slots[i])
                    .collect();
                presented.sort_unstable();
                let want: Vec<i64> = (gop as i64 * 10..gop as i64 * 10 + 10).collect();
                assert_eq!(
                    presented, want,
                    "{codec} GOP {gop}: {:?}",
                    clip.reorder_slots
                );
                assert!(is_key_frame(&clip.frames[gop * 10]), "{codec}");
            }
        }
    }

    #[test]
    fn h265_open_gop_clip_has_only_cra_key_frames() {
        gst::init().expect("GStreamer initialises");
        let clip = encode(&small(Codec::H265, true)).expect("encodes");
        check_gops(&clip);
        for (i, frame) in clip.frames.iter().enumerate() {
            let map = frame.map_readable().expect("readable");
            let types = h265_nal_types(&map);
            assert!(
                !types.iter().any(|t| (19..=20).contains(t)),
                "IDR in {i}: {types:?}"
            );
            if i % 5 == 0 {
                assert!(types.contains(&21), "CRA in frame {i}: {types:?}");
                for ps in [32, 33, 34] {
                    assert!(types.contains(&ps), "VPS/SPS/PPS in frame {i}: {types:?}");
                }
            }
        }
    }

    #[test]
    fn h265_closed_gop_clip_has_idr_key_frames() {
        gst::init().expect("GStreamer initialises");
        let clip = encode(&small(Codec::H265, false)).expect("encodes");
        check_gops(&clip);
        let map = clip.frames[5].map_readable().expect("readable");
        let types = h265_nal_types(&map);
        assert!(types.iter().any(|t| (19..=20).contains(t)), "{types:?}");
    }
}
