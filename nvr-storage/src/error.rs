//! The storage crate's error type. Messages name the camera and segment they concern, so a log
//! line or a `nvr check` report points at the file to look at.

use nvr_core::{CameraId, ErrorKind, SegmentId};
use std::path::PathBuf;

/// Everything that can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("segment {segment} of camera {camera}: {detail}")]
    Corrupt {
        camera: CameraId,
        segment: SegmentId,
        detail: String,
    },
    #[error("{0}")]
    Format(String),
    #[error("key error: {0}")]
    Key(String),
    #[error("data directory {path} is not initialized: run `nvr init --data-dir {path}` first")]
    NotInitialized { path: PathBuf },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The change conflicts with the current state (changed meanwhile, or a limit).
    #[error("{0}")]
    Conflict(String),
    /// Footage the change would delete is under evidence holds.
    #[error("camera {camera} has footage under evidence holds {holds:?}: release them first")]
    Held { camera: CameraId, holds: Vec<i64> },
    #[error("database schema version {found} is newer than this program supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(
        "data directory {} is in use by another nvr process ({}); only one `nvr serve` or \
         `nvr demo` may use a data directory at a time: stop it first",
        .dir.display(),
        .holder_pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"))
    )]
    Locked {
        dir: PathBuf,
        holder_pid: Option<u32>,
    },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// Whether the file system is out of space (or quota), for files or for the index.
    pub fn is_disk_full(&self) -> bool {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        match self {
            StorageError::Io { source, .. } => {
                matches!(source.raw_os_error(), Some(ENOSPC | EDQUOT))
            }
            StorageError::Db(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            _ => false,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            e if e.is_disk_full() => ErrorKind::ResourceExhausted,
            StorageError::Io { .. } | StorageError::Db(_) => ErrorKind::Internal,
            StorageError::Corrupt { .. } | StorageError::Format(_) => ErrorKind::DataLoss,
            StorageError::Key(_) => ErrorKind::DataLoss,
            StorageError::NotInitialized { .. } | StorageError::SchemaTooNew { .. } => {
                ErrorKind::Internal
            }
            StorageError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            StorageError::NotFound(_) => ErrorKind::NotFound,
            StorageError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            StorageError::Conflict(_) | StorageError::Held { .. } => ErrorKind::FailedPrecondition,
            StorageError::Locked { .. } => ErrorKind::Unavailable,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { path, source }
    }
}
