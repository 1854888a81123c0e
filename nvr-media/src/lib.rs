//! Snapshots and on-demand transcoding with GStreamer (in progress).
