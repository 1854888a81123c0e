//! The on-demand H.264 transcoder for one browser viewer that cannot decode the camera's codec:
//! a GStreamer pipeline fed access units by [`Transcoder::push`] and drained by
//! [`Transcoder::pull`], built for low latency (no frame-holding queues, slice-threaded
//! decoding, x264 `zerolatency` without B-frames):
//!
//! ```text
//! appsrc (is-live, bounded by MAX_QUEUED_INPUT) ! h26xparse ! avdec_h26x thread-type=slice
//!   ! videoscale ! videoconvert ! video/x-raw,format=I420,width=W,height=H,pixel-aspect-ratio=1/1
//!   ! x264enc tune=zerolatency speed-preset=superfast bframes=0 key-int-max=60 byte-stream=false
//!     aud=false bitrate=B (plus a force-key-unit event at input key frames / every 2 s)
//!   ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink sync=false max-buffers=N
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use nvr_core::frame::is_random_access;
use nvr_core::{VideoCodec, VideoParams};

use crate::MediaError;
use crate::geometry::fit_even;
use crate::gst_util::{
    PipelineGuard, au_buffer, clock_time_to_ticks, describe_error, init, input_format, make,
    pad_running_time, parser_and_decoder, running_time, start, ticks_to_clock_time,
};
use crate::keyframes::KeyPlan;
use crate::sample_entry::{avc1_sample_entry, rfc6381_from_avcc};

/// Input frames that may wait in the pipeline's input queue before [`Transcoder::push`] starts
/// dropping: about half a second at 15 fps. The queue only fills when decoding/encoding is
/// slower than real time or nobody pulls, and a deeper queue would only add latency.
pub const MAX_QUEUED_INPUT: usize = 8;
/// Encoded frames the appsink holds when nobody pulls; when full the pipeline stalls, the
/// input queue fills and `push` drops, so an absent consumer costs bounded memory.
const MAX_QUEUED_OUTPUT: u32 = 8;
/// x264's own key-frame interval cap, in frames: 2 s at 30 fps. Only a backstop: key frames
/// are forced by presentation time (see `keyframes`), which works at any frame rate.
const KEY_INT_MAX_FRAMES: u32 = 60;
/// Largest output box side accepted (H.264 level 5.2 tops out at 4096 wide).
const MAX_OUTPUT_SIDE: u32 = 4096;
/// Furthest an input timestamp may lie before the newest (B-frames come in decode order,
/// stamped with their presentation times): storage's reorder window, 2 s.
const MAX_REORDER_90K: i64 = 2 * 90_000;
/// Input timestamps remembered to refuse a repeated one: more than the deepest reordering
/// (16 frames) can reach.
const RECENT_PTS: usize = 32;
/// Bitrate range accepted by x264enc's `bitrate` property, kbit/s.
const BITRATE_RANGE_KBPS: std::ops::RangeInclusive<u32> = 1..=2_048_000;

/// What the transcoder outputs: a bounding box (the output fits in it with the input's aspect
/// ratio and even dimensions, never upscaled) and the x264 target bitrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TranscodeOptions {
    /// Largest output width, pixels (at least 2).
    pub max_width: u32,
    /// Largest output height, pixels (at least 2).
    pub max_height: u32,
    /// x264 target bitrate, kbit/s.
    pub bitrate_kbps: u32,
}

/// One H.264 access unit out of the transcoder.
#[derive(Clone, Debug)]
pub struct TranscodedFrame {
    /// NAL units, each prefixed by a 4-byte big-endian length (MP4 framing).
    pub data: Bytes,
    /// The presentation time of the input frame this picture came from (90 kHz).
    pub pts_90k: i64,
    /// Duration if GStreamer knows it; usually `None` (inputs carry no duration), so derive it
    /// from the next frame's `pts_90k`.
    pub duration_90k: Option<u32>,
    /// An IDR picture: a viewer can start decoding here.
    pub is_key: bool,
}

/// Push-side bookkeeping.
#[derive(Debug, Default)]
struct InputState {
    /// Presentation times of the last pushed frames (at most [`RECENT_PTS`]) and the newest
    /// of them: a timestamp must be new, and at most [`MAX_REORDER_90K`] before the newest.
    recent_pts: std::collections::VecDeque<i64>,
    newest_pts: Option<i64>,
    /// Frames handed to appsrc.
    pushed: u64,
    /// Set after a dropped frame (and before the first key frame): only a key frame can follow.
    waiting_for_key: bool,
    /// Frames dropped by `push`.
    dropped: u64,
    /// `finish` was called.
    finished: bool,
}

/// State shared with GStreamer's streaming threads and bus handler.
#[derive(Debug, Default)]
struct Shared {
    /// Frames that have left appsrc's queue (counted by a probe on its src pad).
    dequeued: AtomicU64,
    /// The first error the pipeline posted.
    error: Mutex<Option<String>>,
    /// When to force output key frames.
    keys: Mutex<KeyPlan>,
}

/// Pull-side bookkeeping: the caps last seen on the output and the parameters built from them.
#[derive(Debug, Default)]
struct OutputState {
    caps: Option<gst::Caps>,
    params: Option<VideoParams>,
}

/// Locks `m`, recovering the data if another thread panicked while holding it (every critical
/// section here leaves the state consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An on-demand transcoder to H.264 (decode H.265 or H.264 -> scale -> x264enc zerolatency),
/// for one browser viewer that cannot decode the camera's codec. Runs its own GStreamer
/// pipeline (appsrc ... appsink); push input as it arrives, pull output as it is ready.
///
/// `Send + Sync`: one thread may push while another pulls. Dropping it stops the pipeline.
#[derive(Debug)]
pub struct Transcoder {
    pipeline: PipelineGuard,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    /// Output picture size.
    width: u32,
    height: u32,
    /// The first accepted input timestamp; pipeline time 0 corresponds to it.
    base_pts: OnceLock<i64>,
    input: Mutex<InputState>,
    output: Mutex<OutputState>,
    shared: Arc<Shared>,
}

impl Transcoder {
    /// Builds and starts the pipeline for `input`'s codec, scaling to fit `options`' box.
    ///
    /// Errors: bad sample entry or options, a missing GStreamer element (named with its Debian
    /// package), or a pipeline that cannot start. Errors in the data show up in `push`/`pull`.
    pub fn new(input: &VideoParams, options: &TranscodeOptions) -> Result<Transcoder, MediaError> {
        init()?;
        let format = input_format(input)?;
        if options.max_width > MAX_OUTPUT_SIDE || options.max_height > MAX_OUTPUT_SIDE {
            return Err(MediaError::InvalidInput(format!(
                "output box {}x{} exceeds {MAX_OUTPUT_SIDE}x{MAX_OUTPUT_SIDE}",
                options.max_width, options.max_height
            )));
        }
        if !BITRATE_RANGE_KBPS.contains(&options.bitrate_kbps) {
            return Err(MediaError::InvalidInput(format!(
                "bitrate {} kbit/s is outside {BITRATE_RANGE_KBPS:?}",
                options.bitrate_kbps
            )));
        }
        let (width, height) = fit_even(
            u32::from(input.width),
            u32::from(input.height),
            options.max_width,
            options.max_height,
        )
        .ok_or_else(|| {
            MediaError::InvalidInput(format!(
                "cannot fit {}x{} into {}x{}",
                input.width, input.height, options.max_width, options.max_height
            ))
        })?;

        let shared = Arc::new(Shared::default());
        let (pipeline, src, sink) =
            build_pipeline(&format.caps, format.codec, width, height, options, &shared)?;
        let pipeline = PipelineGuard(pipeline);
        start(&pipeline.0, "transcoding")?;
        tracing::debug!(
            codec = format.codec.name(),
            in_w = input.width,
            in_h = input.height,
            width,
            height,
            bitrate_kbps = options.bitrate_kbps,
            "transcoder started"
        );
        Ok(Transcoder {
            pipeline,
            src,
            sink,
            width,
            height,
            base_pts: OnceLock::new(),
            input: Mutex::new(InputState {
                waiting_for_key: true,
                ..InputState::default()
            }),
            output: Mutex::default(),
            shared,
        })
    }

    /// Feeds one input access unit (4-byte length-prefixed NAL units), in decode order, with its
    /// presentation time (90 kHz: increasing, or with B-frames a little before the newest, never
    /// repeated) and whether it is a key frame. Never blocks.
    ///
    /// Drop policy: a frame is dropped, and [`MediaError::Backlogged`] returned, when
    /// [`MAX_QUEUED_INPUT`] frames are already waiting (the pipeline is behind or nobody
    /// pulls), or when it is not a key frame and the previous frame was dropped or no key frame
    /// was accepted yet (decoding can only resume at a key frame). Such errors are
    /// informational ([`MediaError::is_frame_dropped`]); keep pushing. Other errors (a repeated
    /// timestamp or one more than 2 s before the newest, [`MediaError::Finished`], a pipeline
    /// error) mean the frame was refused.
    pub fn push(&self, data: Bytes, pts_90k: i64, is_key: bool) -> Result<(), MediaError> {
        self.check_error()?;
        let mut input = lock(&self.input);
        if input.finished {
            return Err(MediaError::Finished);
        }
        if let Some(newest) = input.newest_pts
            && (pts_90k < newest - MAX_REORDER_90K || input.recent_pts.contains(&pts_90k))
        {
            return Err(MediaError::InvalidInput(format!(
                "timestamp {pts_90k} does not follow {newest}"
            )));
        }
        input.newest_pts = Some(input.newest_pts.map_or(pts_90k, |n| n.max(pts_90k)));
        if input.recent_pts.len() == RECENT_PTS {
            input.recent_pts.pop_front();
        }
        input.recent_pts.push_back(pts_90k);
        let queued = self.queued_input_locked(&input);
        if queued >= MAX_QUEUED_INPUT || (input.waiting_for_key && !is_key) {
            input.dropped += 1;
            if !input.waiting_for_key {
                tracing::debug!(
                    queued,
                    pts_90k,
                    "transcoder behind; dropping to the next key frame"
                );
            }
            input.waiting_for_key = true;
            return Err(MediaError::Backlogged { queued });
        }
        input.waiting_for_key = false;
        let base = *self.base_pts.get_or_init(|| pts_90k);
        // A base taken from the first accepted (key) frame: never negative, but for the leading
        // pictures of an open GOP, which cannot be decoded from it anyway.
        let rel = u64::try_from(pts_90k.saturating_sub(base)).unwrap_or(0);
        let pts = ticks_to_clock_time(rel);
        if is_key {
            lock(&self.shared.keys).input_key(pts.nseconds());
        }
        self.src
            .push_buffer(au_buffer(data, is_key, Some(pts)))
            .map_err(|e| MediaError::Pipeline(format!("appsrc refused the frame: {e:?}")))?;
        input.pushed += 1;
        Ok(())
    }

    /// The next output frame, waiting at most `timeout`; `Ok(None)` on timeout and once the
    /// stream has ended (see [`Transcoder::is_drained`]). Errors if the pipeline failed.
    pub fn pull(&self, timeout: Duration) -> Result<Option<TranscodedFrame>, MediaError> {
        self.check_error()?;
        let timeout =
            gst::ClockTime::from_nseconds(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
        let Some(sample) = self.sink.try_pull_sample(timeout) else {
            self.check_error()?;
            return Ok(None);
        };
        if let Some(caps) = sample.caps() {
            self.note_output_caps(caps);
        }
        let buffer = sample
            .buffer_owned()
            .ok_or_else(|| MediaError::Pipeline("output sample without a buffer".into()))?;
        // Input timestamps are running times (appsrc's segment starts at 0); map the output
        // back through its segment, which undoes the encoder's offset.
        let pts = buffer
            .pts()
            .and_then(|pts| running_time(sample.segment(), pts))
            .ok_or_else(|| MediaError::Pipeline("output frame without a timestamp".into()))?;
        let base = self.base_pts.get().copied().unwrap_or(0);
        let rel = i64::try_from(clock_time_to_ticks(pts)).unwrap_or(i64::MAX);
        let duration_90k = buffer
            .duration()
            .and_then(|d| u32::try_from(clock_time_to_ticks(d)).ok());
        let data = buffer
            .into_mapped_buffer_readable()
            .map(Bytes::from_owner)
            .map_err(|_| MediaError::Pipeline("cannot read an output frame".into()))?;
        // From the NAL units rather than the buffer flags: h264parse also marks x264's
        // scene-cut I pictures (not IDR) as non-delta, but a viewer can only start at an IDR.
        let is_key = is_random_access(VideoCodec::H264, &data);
        Ok(Some(TranscodedFrame {
            data,
            pts_90k: base.saturating_add(rel),
            duration_90k,
            is_key,
        }))
    }

    /// Parameters of the H.264 output (an `avc1` sample entry with the encoder's avcC, the
    /// output size and the RFC 6381 codec string) once the encoder has produced its caps,
    /// which is at the latest when the first frame can be pulled.
    pub fn output_params(&self) -> Option<VideoParams> {
        if let Some(params) = &lock(&self.output).params {
            return Some(params.clone());
        }
        let caps = self.sink.static_pad("sink")?.current_caps()?;
        self.note_output_caps(&caps);
        lock(&self.output).params.clone()
    }

    /// Signals end of input and drains: frames still in the pipeline come out of `pull`, after
    /// which [`Transcoder::is_drained`] is true. Idempotent.
    pub fn finish(&self) -> Result<(), MediaError> {
        let mut input = lock(&self.input);
        if input.finished {
            return Ok(());
        }
        input.finished = true;
        self.src
            .end_of_stream()
            .map(|_| ())
            .map_err(|e| MediaError::Pipeline(format!("cannot end the input: {e:?}")))
    }

    /// Whether the end of the stream was reached and every output frame has been pulled.
    pub fn is_drained(&self) -> bool {
        lock(&self.input).finished && self.sink.is_eos()
    }

    /// Input frames waiting in the pipeline's input queue (at most about [`MAX_QUEUED_INPUT`]).
    /// A producer that must not drop (transcoding a recording) can wait while this is high.
    pub fn queued_input(&self) -> usize {
        self.queued_input_locked(&lock(&self.input))
    }

    /// Frames `push` has dropped so far.
    pub fn dropped_frames(&self) -> u64 {
        lock(&self.input).dropped
    }

    /// The output picture size chosen from the input size and the options' box.
    pub fn output_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn queued_input_locked(&self, input: &InputState) -> usize {
        let dequeued = self.shared.dequeued.load(Ordering::Acquire);
        usize::try_from(input.pushed.saturating_sub(dequeued)).unwrap_or(usize::MAX)
    }

    /// Returns the pipeline's first error, if any.
    fn check_error(&self) -> Result<(), MediaError> {
        match &*lock(&self.shared.error) {
            Some(e) => Err(MediaError::Pipeline(e.clone())),
            None => Ok(()),
        }
    }

    /// Rebuilds the output parameters if `caps` differ from the last ones seen.
    fn note_output_caps(&self, caps: &gst::CapsRef) {
        let mut output = lock(&self.output);
        if output.caps.as_ref().is_some_and(|c| c.as_ref() == caps) {
            return;
        }
        output.params = params_from_caps(caps);
        if output.params.is_none() {
            tracing::warn!(%caps, "transcoder output caps lack a usable codec_data");
        }
        output.caps = Some(caps.to_owned());
    }
}

impl Drop for Transcoder {
    fn drop(&mut self) {
        let input = lock(&self.input);
        tracing::debug!(
            pushed = input.pushed,
            dropped = input.dropped,
            "stopping transcoder"
        );
        drop(input);
        // Going to Null flushes appsink (unblocking a streaming thread waiting for room), stops
        // and joins every streaming thread and frees the decoder and encoder. The field's
        // `PipelineGuard` would do the same; this makes the order explicit.
        if let Err(e) = self.pipeline.0.set_state(gst::State::Null) {
            tracing::warn!(error = %e, "cannot stop the transcoding pipeline");
        }
    }
}

/// H.264 output parameters from the encoder's caps: width, height and `codec_data` (avcC).
fn params_from_caps(caps: &gst::CapsRef) -> Option<VideoParams> {
    let s = caps.structure(0)?;
    let width = u16::try_from(s.get::<i32>("width").ok()?).ok()?;
    let height = u16::try_from(s.get::<i32>("height").ok()?).ok()?;
    let codec_data = s.get::<gst::Buffer>("codec_data").ok()?;
    let avcc = codec_data.map_readable().ok()?;
    Some(VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: rfc6381_from_avcc(&avcc)?,
        width,
        height,
        sample_entry: avc1_sample_entry(&avcc, width, height),
    })
}

/// Sets enum/flags property `name` from its nick if `element` has such a property (older
/// GStreamer versions lack some), logging when it does not.
fn set_if_present(element: &gst::Element, name: &str, value: &str) {
    if element.find_property(name).is_some() {
        element.set_property_from_str(name, value);
    } else {
        tracing::debug!(element = %element.name(), name, "property not available");
    }
}

/// Builds the transcoding pipeline (not started) and installs its probes and bus handler.
fn build_pipeline(
    caps: &gst::Caps,
    codec: VideoCodec,
    width: u32,
    height: u32,
    options: &TranscodeOptions,
    shared: &Arc<Shared>,
) -> Result<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSink), MediaError> {
    let (parser_name, decoder_name) = parser_and_decoder(codec);
    let src = gst_app::AppSrc::builder()
        .caps(caps)
        .format(gst::Format::Time)
        // Live: frames arrive in real time, and avdec then avoids frame threading, whose
        // reordering delay (one frame per thread) would add latency.
        .is_live(true)
        // The queue is bounded by `push` counting frames, so appsrc's own limits are off and it
        // never blocks the caller.
        .max_bytes(0)
        .block(false)
        .build();
    let parser = make(parser_name)?;
    let decoder = make(decoder_name)?;
    set_if_present(&decoder, "thread-type", "slice");
    let scale = make("videoscale")?;
    // Even rounding may change the aspect by a fraction of a pixel: stretch, no black bars.
    scale.set_property("add-borders", false);
    let convert = make("videoconvert")?;
    let raw_filter = make("capsfilter")?;
    raw_filter.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            // 8-bit 4:2:0, which every H.264 decoder handles (x264 High profile).
            .field("format", "I420")
            .field("width", i32::try_from(width).unwrap_or(i32::MAX))
            .field("height", i32::try_from(height).unwrap_or(i32::MAX))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    let encoder = make("x264enc")?;
    encoder.set_property_from_str("tune", "zerolatency");
    // superfast rather than ultrafast: High profile with CABAC (about 10-15% fewer bits for the
    // same quality) for roughly 1 ms more CPU per 640x360 frame; measured with the
    // `transcode_latency` example.
    encoder.set_property_from_str("speed-preset", "superfast");
    encoder.set_property("bframes", 0u32);
    encoder.set_property("key-int-max", KEY_INT_MAX_FRAMES);
    encoder.set_property("bitrate", options.bitrate_kbps);
    encoder.set_property("byte-stream", false);
    // Access unit delimiters are useless in MP4 framing.
    encoder.set_property("aud", false);
    let out_parser = make("h264parse")?;
    let out_filter = make("capsfilter")?;
    out_filter.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build(),
    );
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(MAX_QUEUED_OUTPUT)
        .drop(false)
        .enable_last_sample(false)
        .build();

    let pipeline = gst::Pipeline::new();
    let elements = [
        src.upcast_ref(),
        &parser,
        &decoder,
        &scale,
        &convert,
        &raw_filter,
        &encoder,
        &out_parser,
        &out_filter,
        sink.upcast_ref(),
    ];
    pipeline
        .add_many(elements)
        .and_then(|()| gst::Element::link_many(elements))
        .map_err(|e| MediaError::Pipeline(format!("cannot build the transcoding pipeline: {e}")))?;

    install_probes(&src, &raw_filter, &encoder, shared)?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| MediaError::Pipeline("pipeline has no bus".into()))?;
    let bus_shared = Arc::clone(shared);
    // Handled synchronously and dropped, so messages never pile up on a bus nobody polls.
    bus.set_sync_handler(move |_, message| {
        match message.view() {
            gst::MessageView::Error(err) => {
                let text = describe_error(err);
                tracing::warn!(error = %text, "transcoder pipeline error");
                lock(&bus_shared.error).get_or_insert(text);
            }
            gst::MessageView::Warning(w) => {
                tracing::debug!(warning = %w.error(), "transcoder pipeline warning");
            }
            _ => {}
        }
        gst::BusSyncReply::Drop
    });
    Ok((pipeline, src, sink))
}

/// Installs the probes that count frames leaving appsrc and force output key frames.
fn install_probes(
    src: &gst_app::AppSrc,
    raw_filter: &gst::Element,
    encoder: &gst::Element,
    shared: &Arc<Shared>,
) -> Result<(), MediaError> {
    let pad = |e: &gst::Element, name: &str| {
        e.static_pad(name)
            .ok_or_else(|| MediaError::Pipeline(format!("{} has no {name} pad", e.name())))
    };
    let counter = Arc::clone(shared);
    pad(src.upcast_ref(), "src")?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter.dequeued.fetch_add(1, Ordering::AcqRel);
        gst::PadProbeReturn::Ok
    });

    // Decoded pictures on their way into x264enc: force a key frame when the plan says so by
    // sending a force-key-unit event to the encoder just before the picture.
    let planner = Arc::clone(shared);
    pad(raw_filter, "src")?.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info
            .buffer()
            .and_then(|b| b.pts())
            .and_then(|pts| pad_running_time(pad, pts))
        else {
            return gst::PadProbeReturn::Ok;
        };
        // A separate statement, so the lock is released before the event reaches the encoder.
        let force = lock(&planner.keys).should_force(pts.nseconds());
        if force
            && let Some(encoder_sink) = pad.peer()
            && !encoder_sink.send_event(force_key_unit_event())
        {
            tracing::debug!("encoder ignored a force-key-unit event");
        }
        gst::PadProbeReturn::Ok
    });

    // IDR pictures x264 decides on itself (scene cuts, its interval) restart the 2 s clock.
    // x264enc's output is already length-prefixed (`byte-stream=false`).
    let observer = Arc::clone(shared);
    pad(encoder, "src")?.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if let Some(b) = info.buffer()
            && !b.flags().contains(gst::BufferFlags::DELTA_UNIT)
            && b.map_readable()
                .is_ok_and(|m| is_random_access(VideoCodec::H264, &m))
            && let Some(pts) = b.pts().and_then(|pts| pad_running_time(pad, pts))
        {
            lock(&observer.keys).output_key(pts.nseconds());
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// A downstream force-key-unit event ("GstForceKeyUnit", as built by
/// `gst_video_event_new_downstream_force_key_unit`) asking for a key frame as soon as possible,
/// with SPS/PPS. Without `running-time` the encoder applies it to the next picture.
fn force_key_unit_event() -> gst::Event {
    let s = gst::Structure::builder("GstForceKeyUnit")
        .field("all-headers", true)
        .field("count", 0u32)
        .build();
    gst::event::CustomDownstream::new(s)
}
