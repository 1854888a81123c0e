//! Everything the recorder keeps on disk: encrypted segment files, the keys that protect them,
//! and the SQLite index of segments and frames; plus retention, crash recovery, `nvr check` and
//! building MP4s from the index. All file and database I/O of the recorder flows through this
//! crate; no other crate opens a segment file or the index.

mod audit_writer;
pub mod check;
pub(crate) mod db;
pub(crate) mod error;
pub mod export;
pub mod frame_index;
pub mod frame_timing;
pub mod integrity;
pub mod keys;
pub mod lock;
pub mod motion;
pub mod mp4;
pub mod playback;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod signing;
pub(crate) mod signing_keys;
pub mod store;
pub mod tls;
pub mod writer;

pub use error::{Result, StorageError};
pub use signing_keys::{ActiveKey, Rotation};

// The index's rows and the records of changes, for the callers of `Store`'s typed operations;
// the queries themselves (`db::Database`) stay inside this crate.
#[cfg(feature = "test-support")]
pub use db::Database;
pub use db::{
    AuditEntry, AuditFilter, AuditNote, CAMERA_DELETE_ACTION, CameraRetention, CameraRow,
    ChainHeadRow, ChainRow, DeletedCamera, ExportRow, HoldRow, MotionRow, MotionSettingsRow,
    NewExport, NewHold, NewSession, RETENTION_DELETE_ACTION, SIGNING_KEY_ADOPT_ACTION,
    SIGNING_KEY_ROTATE_ACTION, SealedSegment, SegmentRow, SessionRow, SigningKeyRow, StartedExport,
    UserChange, UserRow,
};

#[cfg(test)]
mod tests;
