//! `Store`'s typed operations on cameras, their streams and what they have recorded (the
//! camera changes that seal secrets or delete files are in `store.rs`).

use nvr_core::{CameraId, SegmentId, StreamKey, VideoParams};

use super::Store;
use crate::db::{CameraRow, SegmentRow};
use crate::error::{IndexContext, Result};

impl Store {
    /// The camera `id` with its streams, if any.
    pub fn camera(&self, id: CameraId) -> Result<Option<CameraRow>> {
        self.db
            .camera(id)
            .context(|| format!("reading camera {id} (cameras, streams)"))
    }

    /// The camera named `name`, if any.
    pub fn camera_by_name(&self, name: &str) -> Result<Option<CameraRow>> {
        self.db
            .camera_by_name(name)
            .context(|| format!("reading camera {name:?} (cameras, streams)"))
    }

    /// Turns a camera's recording on or off (no audit entry: the caller's operation has one).
    pub fn set_camera_enabled(&self, id: CameraId, enabled: bool) -> Result<()> {
        self.db
            .set_camera_enabled(id, enabled)
            .context(|| format!("setting camera {id} enabled={enabled} (cameras)"))
    }

    /// How many segments of any stream the camera has.
    pub fn camera_segment_count(&self, id: CameraId) -> Result<u64> {
        self.db
            .camera_segment_count(id)
            .context(|| format!("counting the segments of camera {id} (segments)"))
    }

    /// A camera's recordings over all its streams: (bytes, oldest start, segment count).
    pub fn camera_usage(&self, camera: CameraId) -> Result<(u64, Option<i64>, u64)> {
        self.db
            .camera_usage(camera)
            .context(|| format!("summing the recordings of camera {camera} (segments)"))
    }

    /// One stream's recordings: (bytes, oldest start, segment count).
    pub fn stream_usage(&self, stream: StreamKey) -> Result<(u64, Option<i64>, u64)> {
        self.db
            .stream_usage(stream)
            .context(|| format!("summing the recordings of camera {stream} (segments)"))
    }

    /// Where the stream's newest segment ends, if it has any.
    pub fn last_segment_end(&self, stream: StreamKey) -> Result<Option<i64>> {
        self.db
            .last_segment_end(stream)
            .context(|| format!("reading the end of camera {stream}'s last segment (segments)"))
    }

    /// The video parameters (codec, size, sample entry) stored under `id`.
    pub fn video_params(&self, id: i64) -> Result<VideoParams> {
        self.db
            .video_params(id)
            .context(|| format!("reading video parameters {id} (video_params)"))
    }

    /// The sealed segments of any stream of `camera` overlapping `[start_90k, end_90k)`.
    pub fn sealed_segments_overlapping(
        &self,
        camera: CameraId,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<SegmentRow>> {
        self.db
            .sealed_segments_overlapping(camera, start_90k, end_90k)
            .context(|| format!("listing sealed segments of camera {camera} (segments)"))
    }

    /// The sealed segments of `stream` overlapping `[start_90k, end_90k)`.
    pub fn sealed_stream_segments_overlapping(
        &self,
        stream: StreamKey,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<SegmentRow>> {
        self.db
            .sealed_stream_segments_overlapping(stream, start_90k, end_90k)
            .context(|| format!("listing sealed segments of {stream} (segments)"))
    }

    /// A segment's compact frame index (see `frame_index.rs`).
    pub fn frame_index(&self, segment: SegmentId) -> Result<Vec<u8>> {
        self.db
            .frame_index(segment)
            .context(|| format!("reading the frame index of segment {segment} (segments)"))
    }
}
