//! Retention: deletes a camera's oldest sealed segments while it is over its byte quota, and
//! any segment older than its maximum age. The segment being written is never deleted. Epoch
//! keys whose day is over and whose segments are all gone are shredded.
//!
//! Deletion order is crash-safe: one transaction moves the segments' rows to the garbage list,
//! then the files are unlinked and the garbage rows dropped; a crash in between leaves garbage
//! rows that the next start unlinks (`recovery::collect_garbage`).

use nvr_core::{CameraId, Duration90k, SegmentId, Time90k};

use crate::error::Result;
use crate::recovery::collect_garbage;
use crate::store::Store;

/// Limits for one camera. `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration90k>,
}

/// What one pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted: Vec<SegmentId>,
    pub deleted_bytes: u64,
    pub shredded_epochs: Vec<i64>,
}

/// Applies `policy` to `camera` at time `now`.
pub fn enforce(
    store: &Store,
    camera: CameraId,
    policy: RetentionPolicy,
    now: Time90k,
) -> Result<RetentionOutcome> {
    let candidates = store.db().retention_candidates(camera)?;
    let open_bytes = store
        .open_segment(camera)
        .map(|v| v.read().unwrap_or_else(|p| p.into_inner()).file_bytes)
        .unwrap_or(0);
    let mut total: u64 = candidates
        .iter()
        .map(|c| c.file_bytes.max(0) as u64)
        .sum::<u64>()
        + open_bytes;
    let min_end = policy.max_age.map(|a| (now - a).0);
    let mut out = RetentionOutcome::default();
    for c in &candidates {
        let over_quota = policy.max_bytes.is_some_and(|m| total > m);
        let too_old = min_end.is_some_and(|m| c.end_90k <= m);
        if !over_quota && !too_old {
            break;
        }
        out.deleted.push(c.id);
        out.deleted_bytes += c.file_bytes.max(0) as u64;
        total = total.saturating_sub(c.file_bytes.max(0) as u64);
    }
    if !out.deleted.is_empty() {
        store.db().delete_segments(camera, &out.deleted)?;
        collect_garbage(store)?;
        tracing::info!(camera = %camera, segments = out.deleted.len(), bytes = out.deleted_bytes,
            "retention deleted the oldest footage");
    }
    for epoch in store.db().shreddable_epochs(&now.utc_day())? {
        store.keyring().shred(epoch)?;
        store.db().mark_epoch_shredded(epoch)?;
        out.shredded_epochs.push(epoch);
    }
    Ok(out)
}
