//! The seam between cameras and the rest of ingest: a [`CameraSource`] connects to a camera and
//! yields frames. The real one is `retina_source::RetinaSource`; tests use scripted fakes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use nvr_core::{CameraUrl, VideoFrame, VideoParams};

use crate::error::IngestError;

/// Where and how to connect. `Debug` never prints the password.
#[derive(Clone)]
pub struct ConnectTarget {
    pub url: CameraUrl,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ConnectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectTarget")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One frame from a camera with the parameters it was encoded with.
#[derive(Clone, Debug)]
pub struct SourceFrame {
    pub params: Arc<VideoParams>,
    pub frame: VideoFrame,
}

/// A connected session: frames until the camera stops or fails.
pub type FrameStream = Pin<Box<dyn Stream<Item = Result<SourceFrame, IngestError>> + Send>>;

/// What a camera offers, learned while connecting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionInfo {
    /// Encoding name of the video stream, e.g. `h264`.
    pub video_encoding: String,
    /// Frame rate announced in the SDP, if any.
    pub announced_fps: Option<f32>,
    /// The camera also offers an audio stream (not recorded yet).
    pub has_audio: bool,
}

/// A connected camera.
pub struct Session {
    pub info: SessionInfo,
    pub frames: FrameStream,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Something that can connect to cameras.
pub trait CameraSource: Send + Sync + 'static {
    fn connect(
        &self,
        target: &ConnectTarget,
    ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>>;
}
