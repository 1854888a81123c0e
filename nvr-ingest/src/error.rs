//! Why a camera session failed, classified so the UI can say "wrong password" rather than dump
//! a protocol trace. Messages never contain credentials.

use nvr_core::ErrorKind;
use serde::Serialize;

/// The class of a camera failure, as shown in the camera's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraErrorKind {
    /// The camera refused our credentials (RTSP 401/403).
    Auth,
    /// No TCP connection could be made, or it was reset.
    Unreachable,
    /// The camera answered but offers no H.264/H.265 video stream.
    NoVideo,
    /// No frame arrived for too long.
    Stalled,
    /// The address is not allowed by the egress policy.
    Policy,
    /// Anything else the camera did wrong (bad SDP, bad RTP, timestamps).
    Protocol,
    /// Recording failed on our side (disk).
    Storage,
}

/// A camera session failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    pub kind: CameraErrorKind,
    pub message: String,
}

impl IngestError {
    pub fn new(kind: CameraErrorKind, message: impl Into<String>) -> Self {
        IngestError {
            kind,
            message: message.into(),
        }
    }

    pub fn error_kind(&self) -> ErrorKind {
        match self.kind {
            CameraErrorKind::Policy => ErrorKind::InvalidArgument,
            CameraErrorKind::Storage => ErrorKind::Internal,
            _ => ErrorKind::Unavailable,
        }
    }
}
