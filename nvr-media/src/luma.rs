//! Decoding for motion analysis: a small luma (brightness) picture of each decoded frame,
//! taken straight from the decoder's Y plane and shrunk by box averaging, no colour
//! conversion or scaling element in the pipeline:
//!
//! ```text
//! appsrc (bounded by MAX_QUEUED_INPUT) ! h26xparse ! avdec_h26x max-threads=1
//!   ! appsink (planar or semi-planar YUV, 8 to 16 bits) sync=false max-buffers=N
//! ```
//!
//! One decoding thread per camera: with dozens of cameras on two cores, threads inside the
//! decoder would only add switching. Deterministic: the same access units give the same
//! pictures (H.264/H.265 decoding is bit-exact; the shrinking is integer arithmetic).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::VideoFrameExt;
use nvr_core::VideoParams;

use crate::MediaError;
use crate::gst_util::{
    PipelineGuard, au_buffer, clock_time_to_ticks, describe_error, init, input_format, make,
    parser_and_decoder, running_time, start, ticks_to_clock_time,
};

/// Access units that may wait in the decoder's input queue before [`LumaDecoder::push`]
/// refuses more: about a second of a 15 fps sub-stream. Deeper only adds memory: a decoder
/// that cannot keep up must skip anyway.
pub const MAX_QUEUED_INPUT: usize = 16;
/// Bytes of access units that may wait there: a hostile camera's 8 MiB frames must not make
/// analysis hold 16 of them (a sub-stream's second is well under a MiB). One unit is always
/// taken when nothing waits.
pub const MAX_QUEUED_INPUT_BYTES: u64 = 4 << 20;
/// The nice value of the decoder's streaming thread: analysis yields the CPU to recording and
/// viewing (a decoder that falls behind skips; recording must never wait).
pub const DECODER_NICE: i32 = 10;
/// Decoded pictures held for the caller; when full the decoder waits (and the input queue
/// fills), so an absent caller costs bounded memory.
const MAX_QUEUED_OUTPUT: u32 = 4;
/// Raw formats whose first component is luma, planar or semi-planar, that the decoders give
/// for 8 to 12-bit 4:2:0, 4:2:2 and 4:4:4 video.
const LUMA_FORMATS: &[&str] = &[
    "I420",
    "YV12",
    "NV12",
    "NV21",
    "Y42B",
    "Y444",
    "GRAY8",
    "I420_10LE",
    "I420_12LE",
    "I422_10LE",
    "I422_12LE",
    "Y444_10LE",
    "Y444_12LE",
    "P010_10LE",
    "GRAY16_LE",
];

/// A small 8-bit luma picture: `width * height` bytes, row by row from the top left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LumaImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// The integer factor that shrinks a picture `height` high to the smallest height that is
/// still at least `target_height` (1 when it is already smaller).
pub fn shrink_factor(height: u32, target_height: u32) -> u32 {
    (height / target_height.max(1)).max(1)
}

/// One decoded picture, still in the decoder's buffer.
#[derive(Debug)]
pub struct DecodedPicture {
    sample: gst::Sample,
    info: gst_video::VideoInfo,
    /// Presentation time, as pushed (90 kHz).
    pub pts_90k: i64,
}

impl DecodedPicture {
    /// The decoded size.
    pub fn size(&self) -> (u32, u32) {
        (self.info.width(), self.info.height())
    }

    /// The luma plane shrunk by `factor` in both directions, each output pixel the rounded
    /// mean of a `factor` x `factor` block (the edges that do not fill a block are left out),
    /// 8 bits whatever the decoded depth.
    pub fn shrunk_luma(&self, factor: u32) -> Result<LumaImage, MediaError> {
        let factor = factor.max(1) as usize;
        let buffer = self
            .sample
            .buffer()
            .ok_or_else(|| MediaError::Pipeline("decoded sample without a buffer".into()))?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &self.info)
            .map_err(|e| MediaError::Pipeline(format!("cannot map a decoded picture: {e}")))?;
        let format = frame.format_info();
        let depth = format.depth()[0];
        let bytes_per_sample = usize::try_from(format.pixel_stride()[0])
            .unwrap_or(1)
            .max(1);
        let stride = usize::try_from(frame.plane_stride()[0])
            .map_err(|_| MediaError::Pipeline("decoded picture with a negative stride".into()))?;
        let data = frame
            .comp_data(0)
            .map_err(|e| MediaError::Pipeline(format!("cannot read the luma plane: {e}")))?;
        let (w, h) = (self.info.width() as usize, self.info.height() as usize);
        let (out_w, out_h) = (w / factor, h / factor);
        if out_w == 0 || out_h == 0 || stride < w * bytes_per_sample {
            return Err(MediaError::Pipeline(format!(
                "picture {w}x{h} (stride {stride}) cannot shrink by {factor}"
            )));
        }
        // Samples deeper than 8 bits sit in the low bits of a 16-bit little-endian word.
        let shift = depth.saturating_sub(8);
        // Per output row: the `factor` input rows summed column by column (contiguous, so the
        // compiler vectorises it), then each `factor` columns summed.
        let mut columns = vec![0u32; out_w * factor];
        let mut pixels = Vec::with_capacity(out_w * out_h);
        let block = (factor * factor) as u32;
        for oy in 0..out_h {
            columns.iter_mut().for_each(|s| *s = 0);
            for y in oy * factor..(oy + 1) * factor {
                let line = data
                    .get(y * stride..y * stride + out_w * factor * bytes_per_sample)
                    .ok_or_else(|| {
                        MediaError::Pipeline("the luma plane is shorter than its size".into())
                    })?;
                if bytes_per_sample == 1 {
                    for (sum, &p) in columns.iter_mut().zip(line) {
                        *sum += u32::from(p);
                    }
                } else {
                    for (sum, s) in columns.iter_mut().zip(line.chunks_exact(bytes_per_sample)) {
                        *sum += u32::from(u16::from_le_bytes([s[0], s[1]])) >> shift;
                    }
                }
            }
            pixels.extend(
                columns
                    .chunks_exact(factor)
                    .map(|c| ((c.iter().sum::<u32>() + block / 2) / block).min(255) as u8),
            );
        }
        Ok(LumaImage {
            width: out_w as u32,
            height: out_h as u32,
            pixels,
        })
    }
}

/// State shared with GStreamer's threads.
#[derive(Debug, Default)]
struct Shared {
    /// Access units that have left appsrc's queue.
    dequeued: AtomicU64,
    /// Their bytes.
    dequeued_bytes: AtomicU64,
    /// The first error the pipeline posted.
    error: Mutex<Option<String>>,
    /// The streaming thread's nice value before it was lowered.
    nice_before: Mutex<Option<i32>>,
}

#[derive(Debug, Default)]
struct InputState {
    last_pts: Option<i64>,
    pushed: u64,
    pushed_bytes: u64,
    finished: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A decoder of one stream to luma pictures. Push access units in decode order (the first a
/// key frame), pull pictures as they come. Never blocks on push; `Send + Sync`.
#[derive(Debug)]
pub struct LumaDecoder {
    pipeline: PipelineGuard,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    base_pts: OnceLock<i64>,
    input: Mutex<InputState>,
    shared: Arc<Shared>,
    /// The output caps last seen and their video info: parsing caps for every picture costs
    /// more than the rest of pulling it.
    info: Mutex<Option<(gst::Caps, gst_video::VideoInfo)>>,
}

impl LumaDecoder {
    /// Builds and starts a decoder for `params`. `name` names the pipeline's elements (and so
    /// GStreamer's streaming thread, e.g. `m12:src`), to find its CPU time.
    pub fn new(params: &VideoParams, name: &str) -> Result<LumaDecoder, MediaError> {
        init()?;
        let format = input_format(params)?;
        let (parser_name, decoder_name) = parser_and_decoder(format.codec);
        let src = gst_app::AppSrc::builder()
            .name(name)
            .caps(&format.caps)
            .format(gst::Format::Time)
            .max_bytes(0)
            .block(false)
            .build();
        let parser = make(parser_name)?;
        let decoder = make(decoder_name)?;
        if decoder.find_property("max-threads").is_some() {
            decoder.set_property("max-threads", 1i32);
        }
        if decoder.find_property("output-corrupt").is_some() {
            decoder.set_property("output-corrupt", false);
        }
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", gst::List::new(LUMA_FORMATS.iter().copied()))
            .build();
        let sink = gst_app::AppSink::builder()
            .caps(&caps)
            .sync(false)
            .max_buffers(MAX_QUEUED_OUTPUT)
            .drop(false)
            .enable_last_sample(false)
            .build();
        let pipeline = gst::Pipeline::new();
        let elements = [src.upcast_ref(), &parser, &decoder, sink.upcast_ref()];
        pipeline
            .add_many(elements)
            .and_then(|()| gst::Element::link_many(elements))
            .map_err(|e| MediaError::Pipeline(format!("cannot build the luma decoder: {e}")))?;
        let shared = Arc::new(Shared::default());
        let counter = Arc::clone(&shared);
        src.static_pad("src")
            .ok_or_else(|| MediaError::Pipeline("appsrc has no src pad".into()))?
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let bytes = info.buffer().map_or(0, |b| b.size() as u64);
                counter.dequeued_bytes.fetch_add(bytes, Ordering::AcqRel);
                counter.dequeued.fetch_add(1, Ordering::AcqRel);
                gst::PadProbeReturn::Ok
            });
        let bus = pipeline
            .bus()
            .ok_or_else(|| MediaError::Pipeline("pipeline has no bus".into()))?;
        let bus_shared = Arc::clone(&shared);
        bus.set_sync_handler(move |_, message| {
            match message.view() {
                gst::MessageView::Error(err) => {
                    let text = describe_error(err);
                    tracing::debug!(error = %text, "luma decoder error");
                    lock(&bus_shared.error).get_or_insert(text);
                }
                // Posted synchronously from the streaming thread itself as it enters and
                // leaves the pipeline's task (GStreamer's way to set thread priorities): the
                // thread decodes at a lower priority and gets its own back before it returns
                // to GStreamer's shared thread pool.
                gst::MessageView::StreamStatus(status) => match status.get().0 {
                    gst::StreamStatusType::Enter => {
                        let before = rustix::process::getpriority_process(None).unwrap_or(0);
                        *lock(&bus_shared.nice_before) = Some(before);
                        if let Err(e) =
                            rustix::process::setpriority_process(None, before.max(DECODER_NICE))
                        {
                            tracing::debug!(error = %e, "cannot lower the decoder's priority");
                        }
                    }
                    gst::StreamStatusType::Leave => {
                        if let Some(before) = lock(&bus_shared.nice_before).take() {
                            // Raising it back needs CAP_SYS_NICE unless the limit allows it;
                            // failing leaves a pool thread niced, which costs nothing else.
                            let _ = rustix::process::setpriority_process(None, before);
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        let pipeline = PipelineGuard(pipeline);
        start(&pipeline.0, "decoding for motion analysis")?;
        Ok(LumaDecoder {
            pipeline,
            src,
            sink,
            base_pts: OnceLock::new(),
            input: Mutex::new(InputState::default()),
            shared,
            info: Mutex::new(None),
        })
    }

    /// Queues one access unit (4-byte length-prefixed NAL units) with its presentation time
    /// (90 kHz, increasing). [`MediaError::Backlogged`] when [`MAX_QUEUED_INPUT`] units, or
    /// with this one more than [`MAX_QUEUED_INPUT_BYTES`], are already waiting: the unit was not taken (the caller skips to the next key frame, or
    /// waits and pushes it again).
    pub fn push(&self, data: Bytes, pts_90k: i64, is_key: bool) -> Result<(), MediaError> {
        self.check_error()?;
        let mut input = lock(&self.input);
        if input.finished {
            return Err(MediaError::Finished);
        }
        if input.last_pts.is_some_and(|last| pts_90k <= last) {
            return Err(MediaError::InvalidInput(format!(
                "timestamp {pts_90k} does not follow {:?}",
                input.last_pts
            )));
        }
        let queued = self.queued(&input);
        let queued_bytes = input
            .pushed_bytes
            .saturating_sub(self.shared.dequeued_bytes.load(Ordering::Acquire));
        if queued >= MAX_QUEUED_INPUT
            || (queued > 0 && queued_bytes + data.len() as u64 > MAX_QUEUED_INPUT_BYTES)
        {
            return Err(MediaError::Backlogged { queued });
        }
        let size = data.len() as u64;
        let base = *self.base_pts.get_or_init(|| pts_90k);
        let rel = u64::try_from(pts_90k.saturating_sub(base)).unwrap_or(0);
        self.src
            .push_buffer(au_buffer(data, is_key, Some(ticks_to_clock_time(rel))))
            .map_err(|e| MediaError::Pipeline(format!("appsrc refused the frame: {e:?}")))?;
        input.last_pts = Some(pts_90k);
        input.pushed += 1;
        input.pushed_bytes += size;
        Ok(())
    }

    /// Access units waiting to be decoded.
    pub fn queued_input(&self) -> usize {
        self.queued(&lock(&self.input))
    }

    fn queued(&self, input: &InputState) -> usize {
        let dequeued = self.shared.dequeued.load(Ordering::Acquire);
        usize::try_from(input.pushed.saturating_sub(dequeued)).unwrap_or(usize::MAX)
    }

    /// The next decoded picture, waiting at most `timeout`; `Ok(None)` on timeout and once
    /// drained. Errors if the decoder failed (undecodable data).
    pub fn pull(&self, timeout: Duration) -> Result<Option<DecodedPicture>, MediaError> {
        self.check_error()?;
        let timeout =
            gst::ClockTime::from_nseconds(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
        let Some(sample) = self.sink.try_pull_sample(timeout) else {
            self.check_error()?;
            return Ok(None);
        };
        let caps = sample
            .caps()
            .ok_or_else(|| MediaError::Pipeline("decoded picture without caps".into()))?;
        let info = {
            let mut cached = lock(&self.info);
            match &*cached {
                // Caps are shared between buffers until they change: compare pointers first.
                Some((c, info)) if c.as_ptr() == caps.as_ptr() || c.as_ref() == caps => {
                    info.clone()
                }
                _ => {
                    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| {
                        MediaError::Pipeline(format!("decoded picture caps {caps}: {e}"))
                    })?;
                    *cached = Some((caps.to_owned(), info.clone()));
                    info
                }
            }
        };
        let pts = sample
            .buffer()
            .and_then(|b| b.pts())
            .and_then(|pts| running_time(sample.segment(), pts))
            .ok_or_else(|| MediaError::Pipeline("decoded picture without a timestamp".into()))?;
        let base = self.base_pts.get().copied().unwrap_or(0);
        let rel = i64::try_from(clock_time_to_ticks(pts)).unwrap_or(i64::MAX);
        Ok(Some(DecodedPicture {
            sample,
            info,
            pts_90k: base.saturating_add(rel),
        }))
    }

    /// Ends the input: the pictures still inside come out of `pull`, then
    /// [`LumaDecoder::is_drained`] is true.
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

    /// The input has ended and every picture has been pulled.
    pub fn is_drained(&self) -> bool {
        lock(&self.input).finished && self.sink.is_eos()
    }

    fn check_error(&self) -> Result<(), MediaError> {
        match &*lock(&self.shared.error) {
            Some(e) => Err(MediaError::Pipeline(e.clone())),
            None => Ok(()),
        }
    }
}

impl Drop for LumaDecoder {
    fn drop(&mut self) {
        if let Err(e) = self.pipeline.0.set_state(gst::State::Null) {
            tracing::warn!(error = %e, "cannot stop the luma decoder");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_factors_keep_about_the_target_height() {
        assert_eq!(shrink_factor(360, 90), 4);
        assert_eq!(shrink_factor(1080, 90), 12);
        assert_eq!(shrink_factor(576, 90), 6);
        assert_eq!(shrink_factor(240, 90), 2);
        assert_eq!(shrink_factor(60, 90), 1);
    }
}
