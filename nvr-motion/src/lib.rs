//! Motion analysis: an index that makes footage findable by when and where something moved.
//! It never decides what is recorded and never slows recording: it reads frames from the live
//! fan-out (which drops frames for a reader that falls behind), decodes at a lower priority,
//! and says in each camera's status when it skips.
//!
//! Per camera: decode the stream (every picture of a small stream, analysed at `fps`; key
//! frames only of a large one), shrink the luma plane to ~90 px high, compare it with an
//! adaptive background ([`detector`]), fold each second's pictures into one entry of a 16x16
//! cell mask and a score ([`accumulate`]), and store them with the segments they describe
//! (`nvr_storage::motion`). [`reindex`] does the same from stored footage.
//!
//! Depends on storage, ingest (the live fan-out) and media (decoding); nothing below depends
//! on it.

pub mod accumulate;
pub mod decoder;
pub mod detector;
pub mod error;
pub mod reindex;
pub mod service;
pub mod settings;
pub mod status;
pub mod worker;

pub use decoder::{Decoder, DecoderFactory, gstreamer_decoders};
pub use error::MotionError;
pub use service::{FrameFeed, MotionService};
pub use settings::MotionSettings;
pub use status::{MotionState, MotionStatus};
