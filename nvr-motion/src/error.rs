//! Errors of motion analysis and reindexing.

use nvr_core::ErrorKind;

/// What can go wrong outside the analysis itself (which records its own troubles in the
/// camera's status and carries on).
#[derive(Debug, thiserror::Error)]
pub enum MotionError {
    #[error(transparent)]
    Storage(#[from] nvr_storage::StorageError),
    #[error("decoding for motion analysis: {0}")]
    Media(#[from] nvr_media::MediaError),
    #[error("starting motion analysis: {0}")]
    Io(#[from] std::io::Error),
}

impl MotionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            MotionError::Storage(e) => e.kind(),
            MotionError::Media(e) => e.kind(),
            MotionError::Io(_) => ErrorKind::Internal,
        }
    }
}
