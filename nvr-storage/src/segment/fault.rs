//! Injected chunk-write failures, for tests only (`cfg(test)` or feature `test-support`): the
//! seam through which tests make [`super::file::SegmentWriter`] meet a failing disk at a chosen
//! chunk, as a full disk or an I/O error would, optionally after part of the chunk reached the
//! file (a short write).
//!
//! The fault is per thread (each camera's writer runs on one thread, and so does each test) and
//! fires once: the next write succeeds again, like a disk on which space was freed meanwhile.
//! That is the case that matters for nonce safety: a writer that retried the failed chunk would
//! succeed in writing whatever it sealed the second time.

use std::cell::Cell;

/// Which chunk write fails, and how much of it reaches the file first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkWriteFault {
    /// Index of the chunk (within its segment) whose write fails: the first write of a chunk
    /// with this index by any segment writer on this thread.
    pub chunk: u64,
    /// Whether the first half of the sealed chunk reaches the file before the failure (a short
    /// write); otherwise nothing of it does.
    pub partial: bool,
}

/// `ENOSPC`: the failure a full disk gives, the likeliest in the field.
const ENOSPC: i32 = 28;

thread_local! {
    static FAULT: Cell<Option<ChunkWriteFault>> = const { Cell::new(None) };
}

/// Arms (or with `None` disarms) the fault for writers on this thread.
pub fn inject(fault: Option<ChunkWriteFault>) {
    FAULT.with(|f| f.set(fault));
}

/// Whether the armed fault has not fired yet.
pub fn pending() -> bool {
    FAULT.with(|f| f.get().is_some())
}

/// Called by the writer before writing chunk `index` of `len` bytes: if the armed fault is for
/// it, disarms it and returns how many bytes to write before failing, and the error to report.
pub(super) fn take(index: u64, len: usize) -> Option<(usize, std::io::Error)> {
    FAULT.with(|f| match f.get() {
        Some(fault) if fault.chunk == index => {
            f.set(None);
            let prefix = if fault.partial { len / 2 } else { 0 };
            Some((prefix, std::io::Error::from_raw_os_error(ENOSPC)))
        }
        _ => None,
    })
}
