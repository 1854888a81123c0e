//! The NVR's GStreamer media toolbox, used where decoding is needed: JPEG snapshots and
//! thumbnails of stored video, on-demand H.264 transcoding for browsers that cannot decode
//! H.265, small luma pictures for motion analysis, and exports' working copies with the time
//! in the picture. Never on the recording path.
//!
//! Input is what the recorder stores: [`nvr_core::VideoParams`] (a retina-style ISO BMFF
//! sample entry with an avcC/hvcC) and access units in MP4 framing (4-byte length-prefixed NAL
//! units). Every entry point calls [`init`] itself.

mod burn_in;
mod error;
mod geometry;
mod gst_util;
mod keyframes;
mod luma;
mod sample_entry;
mod snapshot;
mod transcode;

pub use burn_in::burn_in_time;
pub use error::MediaError;
pub use gst_util::init;
pub use luma::{DecodedPicture, LumaDecoder, LumaImage, shrink_factor};
pub use sample_entry::{
    CodecConfig, SampleEntryKind, avc1_sample_entry, parse_sample_entry, rfc6381_from_avcc,
};
pub use snapshot::snapshot_jpeg;
pub use transcode::{MAX_QUEUED_INPUT, TranscodeOptions, TranscodedFrame, Transcoder};
