//! Segment files, format v1: one encrypted, self-describing file per ~minute of one camera.
//! `format` draws the layout, `crypto` seals chunks, `file` writes and reads them, `scan`
//! authenticates whole files and rebuilds their frame lists.

pub mod crypto;
#[cfg(any(test, feature = "test-support"))]
pub mod fault;
pub mod file;
pub mod format;
pub mod scan;

#[cfg(test)]
mod tests;
