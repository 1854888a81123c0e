//! The storage crate's error type. Messages name the camera and segment they concern, so a log
//! line or a `nvr check` report points at the file to look at; an index error says what it was
//! doing (which operation, on which table, for which camera, segment or account:
//! [`IndexContext`]). A full disk is its own kind wherever it happens (files or index).

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
    /// An index error without context yet: `Store`'s operations and the writer give it one
    /// ([`IndexContext`]) before it leaves the crate.
    #[error("index database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// An index error, with what the operation was doing when it failed.
    #[error("index database error {context}: {source}")]
    Index {
        /// E.g. "reading camera 3 (cameras, streams)".
        context: String,
        #[source]
        source: rusqlite::Error,
    },
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
            StorageError::Db(source) | StorageError::Index { source, .. } => matches!(
                source,
                rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull
            ),
            _ => false,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            e if e.is_disk_full() => ErrorKind::ResourceExhausted,
            StorageError::Io { .. } | StorageError::Db(_) | StorageError::Index { .. } => {
                ErrorKind::Internal
            }
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

/// Says what an index error was doing: `db.camera(id).context(|| format!("reading camera {id}"))`
/// turns a bare SQLite error ([`StorageError::Db`]) into [`StorageError::Index`] naming it;
/// every other error (already specific: not found, conflict, a file's I/O) passes unchanged.
pub(crate) trait IndexContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IndexContext<T> for Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| match e {
            StorageError::Db(source) => StorageError::Index {
                context: what(),
                source,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn index_errors_say_what_they_were_doing_and_keep_their_kind() {
        let e = Err::<(), _>(StorageError::Db(sqlite(rusqlite::ffi::SQLITE_IOERR)))
            .context(|| "reading camera 3 (cameras, streams)".to_owned())
            .expect_err("an error");
        assert!(
            e.to_string()
                .starts_with("index database error reading camera 3 (cameras, streams): "),
            "{e}"
        );
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(std::error::Error::source(&e).is_some());

        let full = Err::<(), _>(StorageError::Db(sqlite(rusqlite::ffi::SQLITE_FULL)))
            .context(|| "sealing segment 7 of camera 1/sub".to_owned())
            .expect_err("an error");
        assert!(full.is_disk_full());
        assert_eq!(full.kind(), ErrorKind::ResourceExhausted);
        assert!(full.to_string().contains("sealing segment 7"), "{full}");
    }

    #[test]
    fn specific_errors_pass_context_unchanged() {
        let e = Err::<(), _>(StorageError::NotFound("hold 4".into()))
            .context(|| unreachable!("not an index error"))
            .expect_err("an error");
        assert!(matches!(e, StorageError::NotFound(ref s) if s == "hold 4"));
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
