//! Working copies of exported video: the recording time carried by an exported MP4's
//! timed-text track drawn into the picture, re-encoded as H.264. For viewing on any player;
//! never the evidence (the original MP4 beside it is what the camera sent).

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::MediaError;
use crate::gst_util::{init, make, start, wait_for_eos};

/// The pipeline: the MP4's video (H.264 or H.265, decoded whatever the codec) under its first
/// text track (the time cues of the export), bottom centre, white on a shaded band, encoded
/// with x264 (`veryfast`: a working copy needs to be watchable, not small).
const PIPELINE: &str = "filesrc name=src ! qtdemux name=demux \
    demux.video_0 ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=64 ! decodebin ! \
    videoconvert ! textoverlay name=overlay valignment=bottom halignment=center \
    font-desc=\"Sans 24\" shaded-background=true wait-text=false ! videoconvert ! \
    x264enc speed-preset=veryfast ! h264parse ! mp4mux faststart=true ! filesink name=sink \
    demux.subtitle_0 ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=1024 ! \
    overlay.text_sink";

/// Writes `output`: `input` (an exported MP4 with its time track) with the time burnt in.
/// Gives up after `limit` (the output is then incomplete; the caller deletes it).
pub fn burn_in_time(input: &Path, output: &Path, limit: Duration) -> Result<(), MediaError> {
    init()?;
    // Named elements first, so a missing plugin names its package.
    for factory in ["qtdemux", "decodebin", "textoverlay", "x264enc", "mp4mux"] {
        make(factory)?;
    }
    let pipeline = gst::parse::launch(PIPELINE)
        .map_err(|e| MediaError::Pipeline(format!("working copy pipeline: {e}")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Pipeline("working copy pipeline is not a pipeline".into()))?;
    let by_name = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| MediaError::Pipeline(format!("no element {name}")))
    };
    // Set as properties, not in the description: paths are never parsed.
    by_name("src")?.set_property("location", input.to_string_lossy().as_ref());
    by_name("sink")?.set_property("location", output.to_string_lossy().as_ref());
    let result = start(&pipeline, "a working copy")
        .and_then(|()| wait_for_eos(&pipeline, limit, "a working copy"));
    let _ = pipeline.set_state(gst::State::Null);
    result
}
