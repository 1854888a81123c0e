//! Getting video from cameras: the RTSP client (retina), one supervised task per camera that
//! reconnects forever, the per-camera writer threads that hand frames to storage, camera
//! status, retention scheduling, and probing a camera before it is added.
//!
//! Invariant: `retina_source` is the only module of the recorder that names `retina`; every
//! other module sees cameras through the [`source::CameraSource`] trait, which tests fake.

pub mod egress;
pub mod error;
pub mod live;
pub mod probe;
pub mod recorder;
pub mod retina_source;
pub mod source;
pub mod status;
pub mod supervisor;
pub mod writer_queue;
mod writer_thread;

pub use error::{CameraErrorKind, IngestError};
pub use recorder::{Recorder, RecorderConfig};
pub use status::CameraStatus;
