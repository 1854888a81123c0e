//! JPEG snapshots of stored video: decode a run of access units starting at a key frame and
//! encode the last decoded picture, optionally scaled down, as a JPEG.
//!
//! Two short-lived pipelines, so that only the picture that is wanted is scaled and encoded:
//!
//! ```text
//! decode: appsrc ! h26xparse ! avdec_h26x ! appsink (max-buffers=1 drop=true: keeps the last)
//! encode: appsrc ! videoscale ! videoconvert ! video/x-raw,width=W,height=H ! jpegenc ! appsink
//! ```

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use nvr_core::VideoParams;
use nvr_core::frame::is_random_access;

use crate::MediaError;
use crate::geometry::snapshot_size;
use crate::gst_util::{
    PipelineGuard, au_buffer, init, input_format, make, parser_and_decoder, start, wait_for_eos,
};

/// Time allowed for building and draining a decode pipeline regardless of the frame count.
const DECODE_BASE_LIMIT: Duration = Duration::from_secs(10);
/// Extra decode time allowed per access unit: a generous bound (a 4K H.265 picture decodes in
/// well under 100 ms on one core) so a long GOP never times out but a stuck decoder does.
const DECODE_PER_FRAME_LIMIT: Duration = Duration::from_millis(100);
/// Time allowed to scale and JPEG-encode one picture.
const ENCODE_LIMIT: Duration = Duration::from_secs(10);

/// Decodes `frames` (the first must be a key frame; later ones are decoded after it in order)
/// and returns the LAST decoded picture as a JPEG, scaled down (aspect kept, even dimensions)
/// so its width is at most `max_width` when given. Blocking; meant for `spawn_blocking`.
///
/// `quality` is the JPEG quality, 1-100 (0 is treated as 1, values above 100 as 100). Pixels are
/// assumed square (a camera's non-square pixel aspect ratio is not corrected).
///
/// Errors: [`MediaError::InvalidInput`] for an empty list or a first frame that is not a key
/// frame, [`MediaError::InvalidSampleEntry`] for bad parameters, [`MediaError::NoPicture`] or
/// [`MediaError::Pipeline`] for undecodable data, [`MediaError::Timeout`] if GStreamer stalls.
pub fn snapshot_jpeg(
    params: &VideoParams,
    frames: &[Bytes],
    max_width: Option<u32>,
    quality: u8,
) -> Result<Vec<u8>, MediaError> {
    init()?;
    let input = input_format(params)?;
    let first = frames
        .first()
        .ok_or_else(|| MediaError::InvalidInput("no frames to decode".into()))?;
    if !is_random_access(input.codec, first) {
        return Err(MediaError::InvalidInput(
            "the first frame is not a key frame; decoding must start at one".into(),
        ));
    }
    if max_width.is_some_and(|w| w < 2) {
        return Err(MediaError::InvalidInput(format!(
            "max_width {max_width:?} is below 2 pixels"
        )));
    }
    let picture = decode_last(&input.caps, input.codec, frames)?;
    encode_jpeg(&picture, max_width, quality.clamp(1, 100))
}

/// Decodes all of `frames` and returns the last picture the decoder output.
fn decode_last(
    caps: &gst::Caps,
    codec: nvr_core::VideoCodec,
    frames: &[Bytes],
) -> Result<gst::Sample, MediaError> {
    let (parser_name, decoder_name) = parser_and_decoder(codec);
    let src = gst_app::AppSrc::builder()
        .caps(caps)
        .format(gst::Format::Time)
        // Every frame is already in memory; queue them all rather than blocking the caller.
        .max_bytes(0)
        .block(false)
        .build();
    let parser = make(parser_name)?;
    let decoder = make(decoder_name)?;
    // Keeping just one buffer and dropping older ones leaves the last decoded picture queued.
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(1)
        .drop(true)
        // Post EOS without waiting for the kept picture to be pulled.
        .wait_on_eos(false)
        .build();
    let pipeline = gst::Pipeline::new();
    let guard = PipelineGuard(pipeline.clone());
    let elements = [src.upcast_ref(), &parser, &decoder, sink.upcast_ref()];
    pipeline
        .add_many(elements)
        .and_then(|()| gst::Element::link_many(elements))
        .map_err(|e| MediaError::Pipeline(format!("cannot build the decode pipeline: {e}")))?;
    start(&pipeline, "decoding for a snapshot")?;

    for (i, frame) in frames.iter().enumerate() {
        let is_key = i == 0 || is_random_access(codec, frame);
        src.push_buffer(au_buffer(frame.clone(), is_key, None))
            .map_err(|e| MediaError::Pipeline(format!("cannot queue frame {i}: {e}")))?;
    }
    src.end_of_stream()
        .map_err(|e| MediaError::Pipeline(format!("cannot end the input: {e}")))?;

    let frame_count = u32::try_from(frames.len()).unwrap_or(u32::MAX);
    let limit =
        DECODE_BASE_LIMIT.saturating_add(DECODE_PER_FRAME_LIMIT.saturating_mul(frame_count));
    wait_for_eos(&pipeline, limit, "decoding for a snapshot")?;
    // After EOS the sink holds the last picture, if the decoder produced any.
    let sample = sink.try_pull_sample(gst::ClockTime::ZERO);
    drop(guard);
    sample.ok_or(MediaError::NoPicture {
        frames: frames.len(),
    })
}

/// Width and height from the caps of a raw video sample.
fn raw_size(sample: &gst::Sample) -> Result<(u32, u32), MediaError> {
    let s = sample
        .caps()
        .and_then(|c| c.structure(0))
        .ok_or_else(|| MediaError::Pipeline("decoded picture has no caps".into()))?;
    let dim = |field: &str| {
        s.get::<i32>(field)
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| MediaError::Pipeline(format!("decoded picture caps lack {field}: {s}")))
    };
    Ok((dim("width")?, dim("height")?))
}

/// Scales `picture` to fit `max_width` and encodes it as a JPEG of the given quality.
fn encode_jpeg(
    picture: &gst::Sample,
    max_width: Option<u32>,
    quality: u8,
) -> Result<Vec<u8>, MediaError> {
    let (in_w, in_h) = raw_size(picture)?;
    let (out_w, out_h) = snapshot_size(in_w, in_h, max_width);
    let src = gst_app::AppSrc::builder()
        .format(gst::Format::Time)
        .max_bytes(0)
        .block(false)
        .build();
    // Scale first so a high-bit-depth picture is converted to 8 bits at the smaller size.
    // `add-borders=false`: the even rounding may change the aspect by a fraction of a pixel,
    // which must stretch rather than add black bars.
    let scale = make("videoscale")?;
    scale.set_property("add-borders", false);
    let convert = make("videoconvert")?;
    let filter = make("capsfilter")?;
    filter.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", i32::try_from(out_w).unwrap_or(i32::MAX))
            .field("height", i32::try_from(out_h).unwrap_or(i32::MAX))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    let jpegenc = make("jpegenc")?;
    jpegenc.set_property("quality", i32::from(quality));
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .wait_on_eos(false)
        .build();
    let pipeline = gst::Pipeline::new();
    let _guard = PipelineGuard(pipeline.clone());
    let elements = [
        src.upcast_ref(),
        &scale,
        &convert,
        &filter,
        &jpegenc,
        sink.upcast_ref(),
    ];
    pipeline
        .add_many(elements)
        .and_then(|()| gst::Element::link_many(elements))
        .map_err(|e| MediaError::Pipeline(format!("cannot build the JPEG pipeline: {e}")))?;
    start(&pipeline, "JPEG encoding")?;
    src.push_sample(picture)
        .map_err(|e| MediaError::Pipeline(format!("cannot queue the picture: {e}")))?;
    src.end_of_stream()
        .map_err(|e| MediaError::Pipeline(format!("cannot end the JPEG input: {e}")))?;
    wait_for_eos(&pipeline, ENCODE_LIMIT, "JPEG encoding")?;
    let sample = sink
        .try_pull_sample(gst::ClockTime::ZERO)
        .ok_or_else(|| MediaError::Pipeline("jpegenc produced no image".into()))?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| MediaError::Pipeline("JPEG sample without a buffer".into()))?;
    let map = buffer
        .map_readable()
        .map_err(|e| MediaError::Pipeline(format!("cannot read the JPEG: {e}")))?;
    tracing::debug!(
        in_w,
        in_h,
        out_w,
        out_h,
        bytes = map.len(),
        "snapshot encoded"
    );
    Ok(map.to_vec())
}
