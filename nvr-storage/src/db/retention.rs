//! Queries of retention and of what deleting footage leaves behind: the oldest sealed
//! segments of a stream, deleting them with their audit entry, the garbage list of files to
//! unlink, epochs whose keys can be shredded, and what each stream occupies.

use rusqlite::named_params;

use super::AuditNote;
use super::Database;
use super::audit::{RETENTION_DELETE_ACTION, append_in};
use crate::error::Result;
use nvr_core::{CameraId, SegmentId, Stream, StreamKey};

const SELECT_RETENTION_CANDIDATES: &str = "
    SELECT id, start_90k, end_90k, file_bytes FROM segments
    WHERE camera_id = :camera_id AND stream = :stream AND state = 1 ORDER BY start_90k, id";
const SELECT_RETENTION_CANDIDATES_AFTER: &str = "
    SELECT id, start_90k, end_90k, file_bytes FROM segments
    WHERE camera_id = :camera_id AND stream = :stream AND state = 1
      AND (start_90k, id) > (:after_start_90k, :after_id)
    ORDER BY start_90k, id LIMIT :limit";
const INSERT_GARBAGE: &str =
    "INSERT OR IGNORE INTO garbage (segment_id, camera_id) VALUES (:segment_id, :camera_id)";
const DELETE_SEGMENT: &str = "DELETE FROM segments WHERE id = :id";
/// Deletes a segment unless an active hold overlaps it, checked in the same statement, so a hold
/// placed after retention chose its candidates still protects its range.
const DELETE_SEGMENT_UNHELD: &str = "
    DELETE FROM segments WHERE id = :id AND NOT EXISTS (
        SELECT 1 FROM holds h
        WHERE h.camera_id = segments.camera_id AND h.released_90k IS NULL
          AND h.start_90k < segments.end_90k AND h.end_90k > segments.start_90k)";
const SELECT_GARBAGE: &str = "SELECT segment_id, camera_id FROM garbage ORDER BY segment_id";
const DELETE_GARBAGE: &str = "DELETE FROM garbage WHERE segment_id = :segment_id";
const SELECT_SHREDDABLE_EPOCHS: &str = "
    SELECT e.id FROM epochs e
    WHERE e.shredded = 0 AND e.day < :today
      AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.epoch_id = e.id)";
/// Marks an epoch shredded only if it still may be: a writer may have given it a segment since
/// [`SELECT_SHREDDABLE_EPOCHS`] listed it (its segment row and the epoch lookup are one
/// transaction), so the condition is checked again in the statement that marks it.
const MARK_SHREDDED: &str = "
    UPDATE epochs SET shredded = 1
    WHERE id = :id AND shredded = 0 AND day < :today
      AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.epoch_id = epochs.id)";
const SELECT_SHREDDED_EPOCHS: &str = "SELECT id FROM epochs WHERE shredded = 1";
const SELECT_USAGE: &str = "
    SELECT COALESCE(SUM(file_bytes), 0), MIN(start_90k), COUNT(*) FROM segments
    WHERE camera_id = :camera_id";
const SELECT_STREAM_USAGE: &str = "
    SELECT COALESCE(SUM(file_bytes), 0), MIN(start_90k), COUNT(*) FROM segments
    WHERE camera_id = :camera_id AND stream = :stream";

/// What one retention pass deletes from one stream, for [`Database::delete_unheld_segments`].
#[derive(Clone, Copy, Debug)]
pub struct RetentionDelete<'a> {
    pub stream: StreamKey,
    /// The segments to delete and their file sizes, oldest first.
    pub segments: &'a [(SegmentId, u64)],
    /// When, for the audit entry.
    pub time_90k: i64,
    /// Why, when not the camera's own limits (`"disk_free"`); recorded in the audit entry.
    pub reason: Option<&'a str>,
}

/// A sealed segment as retention sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionCandidate {
    pub id: SegmentId,
    pub start_90k: i64,
    pub end_90k: i64,
    pub file_bytes: i64,
}

impl Database {
    /// Sealed segments of `stream`, oldest first.
    pub fn retention_candidates(&self, stream: StreamKey) -> Result<Vec<RetentionCandidate>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_RETENTION_CANDIDATES)?
            .query_map(
                named_params! {":camera_id": stream.camera.0, ":stream": stream.stream.index()},
                |r| {
                    Ok(RetentionCandidate {
                        id: SegmentId(r.get(0)?),
                        start_90k: r.get(1)?,
                        end_90k: r.get(2)?,
                        file_bytes: r.get(3)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The oldest `limit` sealed segments of `stream` after (`start_90k`, `id`) `after` in
    /// retention order: a page of [`Self::retention_candidates`], read through the
    /// (camera_id, stream, start_90k) index, so its cost does not grow with the history.
    pub fn retention_candidates_after(
        &self,
        stream: StreamKey,
        after: (i64, SegmentId),
        limit: u32,
    ) -> Result<Vec<RetentionCandidate>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_RETENTION_CANDIDATES_AFTER)?
            .query_map(
                named_params! {
                    ":camera_id": stream.camera.0,
                    ":stream": stream.stream.index(),
                    ":after_start_90k": after.0,
                    ":after_id": after.1.0,
                    ":limit": limit,
                },
                |r| {
                    Ok(RetentionCandidate {
                        id: SegmentId(r.get(0)?),
                        start_90k: r.get(1)?,
                        end_90k: r.get(2)?,
                        file_bytes: r.get(3)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Removes segments (of any stream) of `camera` from the index, listing their files as
    /// garbage, in one transaction.
    pub fn delete_segments(&self, camera: CameraId, ids: &[SegmentId]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for id in ids {
            tx.prepare_cached(INSERT_GARBAGE)?
                .execute(named_params! {":segment_id": id.0, ":camera_id": camera.0})?;
            tx.prepare_cached(DELETE_SEGMENT)?
                .execute(named_params! {":id": id.0})?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes segments for retention, like [`Self::delete_segments`], skipping those an active
    /// hold overlaps at the moment of deleting, and appends the `retention_delete` audit entry
    /// naming what went (detail: `segments`, `bytes`, `stream` for a sub-stream, and `reason` if
    /// given), all in one
    /// transaction: footage never leaves the index without its record, which `nvr check` relies
    /// on to tell retention's gaps from footage removed behind the recorder's back. Returns the
    /// ids deleted and their bytes; no entry is written when nothing was.
    pub fn delete_unheld_segments(&self, d: &RetentionDelete<'_>) -> Result<(Vec<SegmentId>, u64)> {
        let mut conn = self.lock();
        // Immediate: the audit entry appended below must stay the newest (see `append_in`).
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut deleted = Vec::with_capacity(d.segments.len());
        let mut bytes = 0;
        for &(id, file_bytes) in d.segments {
            let n = tx
                .prepare_cached(DELETE_SEGMENT_UNHELD)?
                .execute(named_params! {":id": id.0})?;
            if n == 1 {
                tx.prepare_cached(INSERT_GARBAGE)?.execute(
                    named_params! {":segment_id": id.0, ":camera_id": d.stream.camera.0},
                )?;
                deleted.push(id);
                bytes += file_bytes;
            }
        }
        if !deleted.is_empty() {
            let mut detail = serde_json::json!({
                "segments": deleted.iter().map(|s| s.0).collect::<Vec<_>>(),
                "bytes": bytes,
            });
            if d.stream.stream != Stream::Main {
                detail["stream"] = d.stream.stream.as_str().into();
            }
            if let Some(reason) = d.reason {
                detail["reason"] = reason.into();
            }
            append_in(
                &tx,
                &AuditNote::new(
                    d.time_90k,
                    nvr_core::account::SYSTEM_ACTOR,
                    RETENTION_DELETE_ACTION,
                    format!("camera:{}", d.stream.camera),
                    detail,
                ),
            )?;
        }
        tx.commit()?;
        Ok((deleted, bytes))
    }

    pub fn garbage(&self) -> Result<Vec<(SegmentId, CameraId)>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_GARBAGE)?
            .query_map([], |r| Ok((SegmentId(r.get(0)?), CameraId(r.get(1)?))))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn remove_garbage(&self, id: SegmentId) -> Result<()> {
        self.lock()
            .prepare_cached(DELETE_GARBAGE)?
            .execute(named_params! {":segment_id": id.0})?;
        Ok(())
    }

    /// Candidates for shredding: epochs whose day is over and that no segment uses now. A writer
    /// may take one before it is marked; [`Self::mark_epoch_shredded`] decides.
    pub fn shreddable_epochs(&self, today: &str) -> Result<Vec<i64>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_SHREDDABLE_EPOCHS)?
            .query_map(named_params! {":today": today}, |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Marks epoch `id` shredded if its day is before `today` and no segment uses it, checked in
    /// the same statement. Returns whether it did: only then may its key file be deleted.
    pub fn mark_epoch_shredded(&self, id: i64, today: &str) -> Result<bool> {
        let n = self
            .lock()
            .prepare_cached(MARK_SHREDDED)?
            .execute(named_params! {":id": id, ":today": today})?;
        Ok(n == 1)
    }

    /// Every shredded epoch (their key files should be gone; recovery removes any left over).
    pub fn shredded_epochs(&self) -> Result<Vec<i64>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_SHREDDED_EPOCHS)?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// (bytes on disk, oldest start, segment count) of `stream`.
    pub fn stream_usage(&self, stream: StreamKey) -> Result<(u64, Option<i64>, u64)> {
        let conn = self.read();
        Ok(conn.prepare_cached(SELECT_STREAM_USAGE)?.query_row(
            named_params! {":camera_id": stream.camera.0, ":stream": stream.stream.index()},
            |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get(1)?,
                    r.get::<_, i64>(2)?.max(0) as u64,
                ))
            },
        )?)
    }

    /// (bytes on disk, oldest start, segment count) of a camera, all its streams.
    pub fn camera_usage(&self, camera: CameraId) -> Result<(u64, Option<i64>, u64)> {
        let conn = self.read();
        Ok(conn.prepare_cached(SELECT_USAGE)?.query_row(
            named_params! {":camera_id": camera.0},
            |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get(1)?,
                    r.get::<_, i64>(2)?.max(0) as u64,
                ))
            },
        )?)
    }
}
