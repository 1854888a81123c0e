//! Everything the recorder keeps on disk: encrypted segment files, the keys that protect them,
//! and the SQLite index of segments and frames; plus retention, crash recovery, `nvr check` and
//! building MP4s from the index. All file and database I/O of the recorder flows through this
//! crate; no other crate opens a segment file or the index.

mod audit_writer;
pub mod check;
pub mod db;
pub mod error;
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
pub mod signing_keys;
pub mod store;
pub mod tls;
pub mod writer;

pub use error::{Result, StorageError};

#[cfg(test)]
mod tests;
