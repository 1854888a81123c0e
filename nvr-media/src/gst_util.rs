//! GStreamer plumbing shared by snapshots and the transcoder: one-time initialisation, element
//! creation that names the missing Debian package, input caps from `VideoParams`, buffers from
//! access units, 90 kHz <-> nanosecond conversion and bounded waits on a pipeline's bus.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use nvr_core::{VideoCodec, VideoParams};

use crate::MediaError;
use crate::error::debian_package;
use crate::sample_entry::{SampleEntryKind, parse_sample_entry};

/// Nanoseconds per second.
const NS_PER_SEC: u128 = 1_000_000_000;
/// The recorder's media clock rate (RTP video clock), ticks per second.
const TICKS_PER_SEC: u128 = 90_000;

/// Initializes GStreamer once (idempotent, thread-safe); every other function calls it.
///
/// The outcome of the first call is remembered, so a failure is reported every time.
pub fn init() -> Result<(), MediaError> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| gst::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(MediaError::GstInit)
}

/// Creates an element of factory `factory`.
pub(crate) fn make(factory: &'static str) -> Result<gst::Element, MediaError> {
    if gst::ElementFactory::find(factory).is_none() {
        return Err(MediaError::MissingElement {
            element: factory,
            package: debian_package(factory),
        });
    }
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| MediaError::Pipeline(format!("cannot create `{factory}`: {e}")))
}

/// The GStreamer element factories that parse and decode `codec`.
pub(crate) fn parser_and_decoder(codec: VideoCodec) -> (&'static str, &'static str) {
    match codec {
        VideoCodec::H264 => ("h264parse", "avdec_h264"),
        VideoCodec::H265 => ("h265parse", "avdec_h265"),
    }
}

/// What the input side of a pipeline needs to know about the stored stream.
#[derive(Debug, Clone)]
pub(crate) struct InputFormat {
    /// `video/x-h26x, stream-format=..., alignment=au, codec_data=...`.
    pub caps: gst::Caps,
    /// The codec, as checked against the sample entry's box type.
    pub codec: VideoCodec,
}

/// Builds the caps of the stored access units from `params`, rejecting a sample entry that is
/// malformed or whose box type disagrees with `params.codec`.
pub(crate) fn input_format(params: &VideoParams) -> Result<InputFormat, MediaError> {
    let config = parse_sample_entry(&params.sample_entry)?;
    if config.kind.codec() != params.codec {
        return Err(MediaError::InvalidSampleEntry(format!(
            "the sample entry is {:?} but the parameters say {}",
            config.kind,
            params.codec.name()
        )));
    }
    let media_type = match config.kind {
        SampleEntryKind::Avc1 | SampleEntryKind::Avc3 => "video/x-h264",
        SampleEntryKind::Hvc1 | SampleEntryKind::Hev1 => "video/x-h265",
    };
    let codec_data = gst::Buffer::from_slice(config.record.to_vec());
    let caps = gst::Caps::builder(media_type)
        .field("stream-format", config.kind.gst_stream_format())
        .field("alignment", "au")
        .field("codec_data", codec_data)
        .build();
    Ok(InputFormat {
        caps,
        codec: params.codec,
    })
}

/// Wraps an access unit in a buffer without copying, flagged as a delta unit unless `is_key`.
pub(crate) fn au_buffer(data: Bytes, is_key: bool, pts: Option<gst::ClockTime>) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice(data);
    if let Some(b) = buffer.get_mut() {
        b.set_pts(pts);
        if !is_key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
    }
    buffer
}

/// Converts a non-negative 90 kHz tick count to a GStreamer time, rounding to the nearest ns.
pub(crate) fn ticks_to_clock_time(ticks: u64) -> gst::ClockTime {
    let ns = (u128::from(ticks) * NS_PER_SEC + TICKS_PER_SEC / 2) / TICKS_PER_SEC;
    gst::ClockTime::from_nseconds(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// Converts a GStreamer time to 90 kHz ticks, rounding to the nearest tick, so that
/// `clock_time_to_ticks(ticks_to_clock_time(t)) == t`.
pub(crate) fn clock_time_to_ticks(t: gst::ClockTime) -> u64 {
    let ticks = (u128::from(t.nseconds()) * TICKS_PER_SEC + NS_PER_SEC / 2) / NS_PER_SEC;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// The running time of `pts` in `segment`: the pipeline-wide time base. Encoders shift their
/// output timestamps (x264enc adds 1000 hours so DTS never goes negative) and compensate in the
/// segment, so raw timestamps on different sides of an encoder are not comparable.
/// Without a time segment, `pts` is returned unchanged.
pub(crate) fn running_time(
    segment: Option<&gst::Segment>,
    pts: gst::ClockTime,
) -> Option<gst::ClockTime> {
    match segment.and_then(|s| s.downcast_ref::<gst::ClockTime>()) {
        Some(segment) => segment.to_running_time(pts),
        None => Some(pts),
    }
}

/// The running time of a buffer's `pts` on `pad`, using the pad's current segment.
pub(crate) fn pad_running_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    let event = pad.sticky_event::<gst::event::Segment>(0);
    running_time(event.as_ref().map(|e| e.segment()), pts)
}

/// A human-readable form of an error message from a bus.
pub(crate) fn describe_error(err: &gst::message::Error) -> String {
    let source = err
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_else(|| "pipeline".into());
    match err.debug() {
        Some(debug) => format!("{source}: {} ({debug})", err.error()),
        None => format!("{source}: {}", err.error()),
    }
}

/// A pipeline that is set to `Null` (stopping all its streaming threads) when dropped.
#[derive(Debug)]
pub(crate) struct PipelineGuard(pub gst::Pipeline);

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.set_state(gst::State::Null) {
            tracing::warn!(error = %e, "cannot stop GStreamer pipeline");
        }
    }
}

/// Sets `pipeline` playing (asynchronously; errors show up on the bus).
pub(crate) fn start(pipeline: &gst::Pipeline, what: &'static str) -> Result<(), MediaError> {
    pipeline
        .set_state(gst::State::Playing)
        .map(|_| ())
        .map_err(|e| MediaError::Pipeline(format!("cannot start the pipeline for {what}: {e}")))
}

/// Waits until the started `pipeline` reaches end of stream, at most `limit`.
pub(crate) fn wait_for_eos(
    pipeline: &gst::Pipeline,
    limit: Duration,
    what: &'static str,
) -> Result<(), MediaError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| MediaError::Pipeline("pipeline has no bus".into()))?;
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(MediaError::Timeout {
                what,
                secs: limit.as_secs(),
            });
        }
        let timeout =
            gst::ClockTime::from_nseconds(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX));
        let Some(message) =
            bus.timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error])
        else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(err) => return Err(MediaError::Pipeline(describe_error(err))),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tick_conversion_round_trips() {
        let samples = (0..200_000u64).chain([
            1 << 32,
            (1 << 40) + 7,
            90_000 * 86_400 * 365 * 100, // a century of 90 kHz ticks
        ]);
        for t in samples {
            assert_eq!(clock_time_to_ticks(ticks_to_clock_time(t)), t, "{t}");
        }
        assert_eq!(ticks_to_clock_time(90_000), gst::ClockTime::SECOND);
        assert_eq!(ticks_to_clock_time(3_000).nseconds(), 33_333_333);
    }

    #[test]
    fn init_is_idempotent_and_missing_elements_name_the_package() {
        init().unwrap();
        init().unwrap();
        make("capsfilter").unwrap();
        // A factory that does not exist maps to MissingElement; `debian_package` only knows
        // ours, so this exercises the "unknown" branch.
        match make("nvr_no_such_element") {
            Err(MediaError::MissingElement { element, package }) => {
                assert_eq!(element, "nvr_no_such_element");
                assert_eq!(package, "(unknown package)");
            }
            other => panic!("expected MissingElement, got {other:?}"),
        }
    }
}
