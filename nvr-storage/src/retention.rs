//! Retention: deletes a stream's oldest sealed segments while it is over its byte quota, and
//! any segment older than its maximum age (each stream of a camera, main and sub, has its own
//! limits); and, whatever the quotas say, the oldest footage of any stream while the data
//! directory's file system has less than a configured amount free. The segment being written
//! and footage under an evidence hold (which covers every stream of its camera) are never
//! deleted. Epoch keys whose day is over and whose segments are all gone are shredded.
//!
//! Deletion order is crash-safe: one transaction moves the segments' rows to the garbage list
//! and records the deletion in the audit log, then the files are unlinked and the garbage rows
//! dropped; a crash in between leaves garbage rows that the next start unlinks
//! (`recovery::collect_garbage`).

use std::collections::BTreeMap;

use nvr_core::{Duration90k, SegmentId, Stream, StreamKey, Time90k};

use crate::db::RetentionDelete;
use crate::error::IndexContext;
use crate::error::Result;
use crate::recovery::collect_garbage;
use crate::store::Store;

/// Limits for one stream. `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration90k>,
}

impl RetentionPolicy {
    /// A stream's effective limits: its own overrides where set, else `defaults` (the same
    /// for either stream). An override of 0 means "no limit" for that stream (as 0 does
    /// everywhere: config, CLI and API), never "keep nothing".
    pub fn for_stream(
        camera: &crate::db::CameraRow,
        stream: Stream,
        defaults: RetentionPolicy,
    ) -> Self {
        let own = camera.retention(stream);
        RetentionPolicy {
            max_bytes: match own.max_bytes {
                None => defaults.max_bytes,
                Some(0) => None,
                Some(b) => Some(b),
            },
            max_age: match own.max_age_secs {
                None => defaults.max_age,
                Some(0) => None,
                Some(s) => Some(Duration90k::from_secs(
                    i64::try_from(s).unwrap_or(i64::MAX / 90_000),
                )),
            },
        }
    }
}

/// What a pass with some policy would delete now (nothing is deleted): to confirm a change of
/// limits with the person making it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPreview {
    pub segments: u64,
    pub bytes: u64,
    /// The oldest footage that would remain, if any would be deleted.
    pub new_oldest_90k: Option<i64>,
}

/// What [`enforce`] with `policy` would delete from `stream` at `now`.
pub fn preview(
    store: &Store,
    stream: StreamKey,
    policy: RetentionPolicy,
    now: Time90k,
) -> Result<RetentionPreview> {
    let plan = plan(store, stream, policy, now)?;
    let doomed: std::collections::HashSet<SegmentId> = plan.deleted.iter().copied().collect();
    Ok(RetentionPreview {
        segments: plan.deleted.len() as u64,
        bytes: plan.deleted_bytes,
        new_oldest_90k: if doomed.is_empty() {
            None
        } else {
            plan.candidates
                .iter()
                .find(|c| !doomed.contains(&c.id))
                .map(|c| c.start_90k)
        },
    })
}

/// The segments a pass would delete, oldest first, and the candidates it looked at.
struct Plan {
    candidates: Vec<crate::db::RetentionCandidate>,
    deleted: Vec<SegmentId>,
    deleted_bytes: u64,
    held_over_quota_bytes: u64,
}

fn plan(store: &Store, stream: StreamKey, policy: RetentionPolicy, now: Time90k) -> Result<Plan> {
    let camera = stream.camera;
    let candidates = store
        .db()
        .retention_candidates(stream)
        .context(|| format!("listing retention candidates of {stream} (segments)"))?;
    let open_bytes = store
        .open_segment(stream)
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
        .holds(true)
        .context(|| format!("listing active holds of camera {camera} (holds)"))?
        .into_iter()
        .filter(|h| h.camera_id == camera)
        .collect();
    // Exports hold their range while they run, so one hold check covers both.
    let protected = |c: &crate::db::RetentionCandidate| {
        holds
            .iter()
            .any(|h| h.start_90k < c.end_90k && h.end_90k > c.start_90k)
    };
    let mut deleted = Vec::new();
    let mut deleted_bytes = 0;
    for c in &candidates {
        let over_quota = policy.max_bytes.is_some_and(|m| total > m);
        let too_old = min_end.is_some_and(|m| c.end_90k <= m);
        if !over_quota && !too_old {
            break;
        }
        if protected(c) {
            continue;
        }
        deleted.push(c.id);
        deleted_bytes += c.file_bytes.max(0) as u64;
        total = total.saturating_sub(c.file_bytes.max(0) as u64);
    }
    let held_over_quota_bytes = match policy.max_bytes {
        Some(m) if total > m => total - m,
        _ => 0,
    };
    Ok(Plan {
        candidates,
        deleted,
        deleted_bytes,
        held_over_quota_bytes,
    })
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

/// Applies `policy` to `stream` at time `now`.
pub fn enforce(
    store: &Store,
    stream: StreamKey,
    policy: RetentionPolicy,
    now: Time90k,
) -> Result<RetentionOutcome> {
    let plan = plan(store, stream, policy, now)?;
    let candidates = plan.candidates;
    let mut out = RetentionOutcome {
        deleted: plan.deleted,
        deleted_bytes: plan.deleted_bytes,
        shredded_epochs: Vec::new(),
        held_over_quota_bytes: plan.held_over_quota_bytes,
    };
    if out.held_over_quota_bytes > 0 {
        tracing::warn!(camera = %stream, bytes = out.held_over_quota_bytes,
            "evidence holds keep this stream over its byte quota: new recording crowds them");
    }
    if !out.deleted.is_empty() {
        let chosen: Vec<(SegmentId, u64)> = candidates
            .iter()
            .filter(|c| out.deleted.contains(&c.id))
            .map(|c| (c.id, c.file_bytes.max(0) as u64))
            .collect();
        // A hold placed since the candidates were read still wins: count only what went. The
        // audit entry is written in the same transaction.
        (out.deleted, out.deleted_bytes) = store
            .db()
            .delete_unheld_segments(&RetentionDelete {
                stream,
                segments: &chosen,
                time_90k: store.clock().realtime().0,
                reason: None,
            })
            .context(|| {
                format!(
                    "deleting {} segments of {stream} (segments, audit_log)",
                    chosen.len()
                )
            })?;
        collect_garbage(store)?;
    }
    if !out.deleted.is_empty() {
        tracing::info!(camera = %stream, segments = out.deleted.len(), bytes = out.deleted_bytes,
            "retention deleted the oldest footage");
    }
    let today = now.utc_day();
    for epoch in store
        .db()
        .shreddable_epochs(&today)
        .context(|| "listing epochs to shred (epochs)".to_owned())?
    {
        // Marked first, with the conditions checked again in that statement: a writer may have
        // given the epoch a new segment since it was listed (its row and epoch are one
        // transaction), and then its key must stay. A crash before the unlink leaves a key
        // file of a shredded epoch, which the next start's recovery removes.
        if store
            .db()
            .mark_epoch_shredded(epoch, &today)
            .context(|| format!("marking epoch {epoch} shredded (epochs)"))?
        {
            store.keyring().shred(epoch)?;
            out.shredded_epochs.push(epoch);
        }
    }
    Ok(out)
}

/// Rows read at a time when looking for the oldest unheld segments of a stream.
const CANDIDATE_PAGE: u32 = 256;

/// What one free-space pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FreeSpaceOutcome {
    /// Bytes available on the file system before the pass.
    pub available_bytes: u64,
    pub deleted: Vec<SegmentId>,
    pub deleted_bytes: u64,
    /// Bytes still missing to reach the target: everything left is held, open, or not ours.
    pub short_bytes: u64,
}

/// Deletes the oldest sealed, unheld segments of all streams (globally oldest first, whatever
/// their camera or stream) when the data directory's file system has less than `min_free_bytes`
/// available, until it has an eighth more, so a disk that fills faster than the quotas
/// expected (quotas too generous, other files on the same disk) keeps room for new recording.
/// `min_free_bytes == 0` turns it off.
pub fn enforce_free_space(store: &Store, min_free_bytes: u64) -> Result<FreeSpaceOutcome> {
    let space = store.disk_space()?;
    let mut out = FreeSpaceOutcome {
        available_bytes: space.available_bytes,
        ..FreeSpaceOutcome::default()
    };
    if space.available_bytes >= min_free_bytes {
        return Ok(out);
    }
    // Free an eighth more than the target, so a disk kept full by recording is not trimmed on
    // every pass.
    let needed = min_free_bytes - space.available_bytes + min_free_bytes / 8;
    delete_oldest_unheld(store, needed, &mut out)?;
    if !out.deleted.is_empty() {
        tracing::info!(
            segments = out.deleted.len(),
            bytes = out.deleted_bytes,
            available_bytes = space.available_bytes,
            min_free_bytes,
            "the disk is nearly full: deleted the oldest footage"
        );
    }
    if out.short_bytes > 0 {
        // Repeated every pass while it lasts: the writers say once, as a warning, when they
        // stall (a quarter of the target).
        tracing::info!(
            short_bytes = out.short_bytes,
            available_bytes = space.available_bytes,
            min_free_bytes,
            "the disk is nearly full and everything left is held or open"
        );
    }
    Ok(out)
}

/// Deletes the oldest sealed, unheld segments of all streams until `needed_bytes` of files are
/// gone (or nothing deletable is left), filling in `out`.
pub fn delete_oldest_unheld(store: &Store, needed: u64, out: &mut FreeSpaceOutcome) -> Result<()> {
    let holds = store
        .db()
        .holds(true)
        .context(|| "listing active holds (holds)".to_owned())?;
    let streams: Vec<StreamKey> = store
        .db()
        .cameras()
        .context(|| "listing cameras (cameras, streams)".to_owned())?
        .iter()
        .flat_map(|c| {
            Stream::ALL
                .into_iter()
                .filter(|&s| c.has_stream_row(s))
                .map(|s| c.id.stream(s))
        })
        .collect();
    // Per stream, its oldest unheld segments up to `needed` bytes (no stream can give more to
    // the global pick), read a page at a time: the cost follows what is freed, not the history.
    let mut candidates = Vec::new();
    for key in streams {
        let mut after = (i64::MIN, SegmentId(i64::MIN));
        let mut bytes = 0u64;
        'pages: loop {
            let page = store
                .db()
                .retention_candidates_after(key, after, CANDIDATE_PAGE)
                .context(|| format!("listing retention candidates of {key} (segments)"))?;
            let Some(last) = page.last() else { break };
            after = (last.start_90k, last.id);
            let full_page = page.len() == CANDIDATE_PAGE as usize;
            for c in page {
                let held = holds.iter().any(|h| {
                    h.camera_id == key.camera && h.start_90k < c.end_90k && h.end_90k > c.start_90k
                });
                if held {
                    continue;
                }
                bytes += c.file_bytes.max(0) as u64;
                candidates.push((key, c));
                if bytes >= needed {
                    break 'pages;
                }
            }
            if !full_page {
                break;
            }
        }
    }
    candidates.sort_by_key(|(_, c)| (c.start_90k, c.id.0));
    let mut by_stream: BTreeMap<StreamKey, Vec<(SegmentId, u64)>> = BTreeMap::new();
    let mut chosen_bytes = 0;
    let mut oldest_first = Vec::new();
    for (key, c) in candidates {
        if chosen_bytes >= needed {
            break;
        }
        let bytes = c.file_bytes.max(0) as u64;
        by_stream.entry(key).or_default().push((c.id, bytes));
        oldest_first.push(c.id);
        chosen_bytes += bytes;
    }
    let mut gone = std::collections::HashSet::new();
    let mut result = Ok(());
    for (key, chosen) in &by_stream {
        // A hold placed since the candidates were read still wins: count only what went. The
        // audit entry is written in the same transaction.
        let (ids, bytes) = match store
            .db()
            .delete_unheld_segments(&RetentionDelete {
                stream: *key,
                segments: chosen,
                time_90k: store.clock().realtime().0,
                reason: Some("disk_free"),
            })
            .context(|| {
                format!(
                    "deleting {} segments of {key} (segments, audit_log)",
                    chosen.len()
                )
            }) {
            Ok(r) => r,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        gone.extend(ids);
        out.deleted_bytes += bytes;
    }
    out.deleted = oldest_first
        .into_iter()
        .filter(|id| gone.contains(id))
        .collect();
    out.short_bytes = needed.saturating_sub(out.deleted_bytes);
    // Unlink what was deleted even if a later stream failed: its rows are already garbage.
    if !out.deleted.is_empty() {
        collect_garbage(store)?;
    }
    result
}
