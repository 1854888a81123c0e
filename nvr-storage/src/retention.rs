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
    /// Bytes over the quota that could not be freed because they are held as evidence (or being
    /// exported): holds are crowding out new recording.
    pub held_over_quota_bytes: u64,
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
    let holds: Vec<_> = store
        .db()
        .holds(true)?
        .into_iter()
        .filter(|h| h.camera_id == camera)
        .collect();
    // Exports hold their range while they run, so one hold check covers both.
    let protected = |c: &crate::db::RetentionCandidate| {
        holds
            .iter()
            .any(|h| h.start_90k < c.end_90k && h.end_90k > c.start_90k)
    };
    let mut out = RetentionOutcome::default();
    for c in &candidates {
        let over_quota = policy.max_bytes.is_some_and(|m| total > m);
        let too_old = min_end.is_some_and(|m| c.end_90k <= m);
        if !over_quota && !too_old {
            break;
        }
        if protected(c) {
            continue;
        }
        out.deleted.push(c.id);
        out.deleted_bytes += c.file_bytes.max(0) as u64;
        total = total.saturating_sub(c.file_bytes.max(0) as u64);
    }
    if let Some(m) = policy.max_bytes
        && total > m
    {
        out.held_over_quota_bytes = total - m;
        tracing::warn!(camera = %camera, bytes = total - m,
            "evidence holds keep this camera over its byte quota: new recording crowds them");
    }
    if !out.deleted.is_empty() {
        store.db().delete_segments(camera, &out.deleted)?;
        collect_garbage(store)?;
        store.audit(
            "system",
            "retention_delete",
            &format!("camera:{camera}"),
            serde_json::json!({
                "segments": out.deleted.iter().map(|s| s.0).collect::<Vec<_>>(),
                "bytes": out.deleted_bytes,
            }),
        );
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
