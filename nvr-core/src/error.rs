//! The coarse classes of failure every crate's error maps onto; the web layer turns them into
//! HTTP statuses in exactly one place and the CLI into exit messages.

use serde::Serialize;

/// What kind of failure an error is, independent of where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller's input is malformed or out of range.
    InvalidArgument,
    /// The named thing does not exist.
    NotFound,
    /// It exists already (e.g. a camera name).
    AlreadyExists,
    /// No valid session or credentials.
    Unauthenticated,
    /// Authenticated but not allowed.
    PermissionDenied,
    /// The request is valid but the current state forbids it (e.g. footage under an evidence
    /// hold, a limit per user reached).
    FailedPrecondition,
    /// Too many attempts, or too many at once: try again later (login throttling, a busy
    /// password verifier).
    Throttled,
    /// A disk or storage quota is full.
    ResourceExhausted,
    /// A peer (camera) could not be reached or refused us.
    Unavailable,
    /// Stored data failed authentication or is inconsistent.
    DataLoss,
    /// A bug or an unexpected system failure.
    Internal,
}
