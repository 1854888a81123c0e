//! The seam between cameras and the rest of ingest: a [`CameraSource`] connects to a camera and
//! yields frames. The real one is `retina_source::RetinaSource`; tests use scripted fakes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures::Stream;
use nvr_core::{CameraUrl, Time90k, VideoFrame, VideoParams};

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
    /// The camera's clock against the recorder's, from its RTCP sender reports (if it sends
    /// them); set by the source while frames flow.
    pub camera_clock: Arc<CameraClockCell>,
}

/// One comparison of a camera's clock with the recorder's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CameraClockSample {
    /// Camera time minus recorder time (90 kHz): positive when the camera is ahead. Taken when
    /// an RTCP sender report arrived, from the wall time it carries (NTP format) against the
    /// recorder's clock at arrival, so it includes the network's delay (milliseconds on a LAN).
    pub offset_90k: i64,
    /// When it was measured (recorder time).
    pub measured: Time90k,
}

/// The latest [`CameraClockSample`] of a session, shared between the source that reads the
/// camera's reports and the supervisor that publishes them.
#[derive(Debug, Default)]
pub struct CameraClockCell {
    offset_90k: AtomicI64,
    /// 0 until the first sample.
    measured_90k: AtomicI64,
}

impl CameraClockCell {
    pub fn set(&self, sample: CameraClockSample) {
        self.offset_90k.store(sample.offset_90k, Ordering::Relaxed);
        self.measured_90k
            .store(sample.measured.0, Ordering::Release);
    }

    /// The latest sample, if any. (A sample read while the next is stored may pair the newer
    /// offset with the older time: both are within a report's interval of each other.)
    pub fn get(&self) -> Option<CameraClockSample> {
        let measured = self.measured_90k.load(Ordering::Acquire);
        (measured != 0).then(|| CameraClockSample {
            offset_90k: self.offset_90k.load(Ordering::Relaxed),
            measured: Time90k(measured),
        })
    }
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
