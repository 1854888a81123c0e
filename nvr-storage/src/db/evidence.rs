//! Queries of the evidence tables: holds, signed chain heads, and exports.

use rusqlite::{OptionalExtension, Row, named_params};

use super::{AuditNote, Database};
use crate::error::{Result, StorageError};
use nvr_core::{CameraId, SegmentId, StreamKey};

const INSERT_HOLD: &str = "
    INSERT INTO holds (camera_id, start_90k, end_90k, case_ref, reason, created_by, created_90k)
    VALUES (:camera_id, :start_90k, :end_90k, :case_ref, :reason, :created_by, :created_90k)";
const SELECT_HOLDS: &str = "
    SELECT id, camera_id, start_90k, end_90k, case_ref, reason, created_by, created_90k,
           released_by, released_90k
    FROM holds";
const RELEASE_HOLD: &str = "
    UPDATE holds SET released_by = :by, released_90k = :at
    WHERE id = :id AND released_90k IS NULL";
const INSERT_HEAD: &str = "
    INSERT INTO chain_heads (camera_id, stream, segment_id, chain_sha256, signed_90k, signature,
                             signing_key_id)
    VALUES (:camera_id, :stream, :segment_id, :chain, :signed_90k, :signature, :signing_key_id)";
const SELECT_HEADS: &str = "
    SELECT id, camera_id, segment_id, chain_sha256, signed_90k, signature, signing_key_id, stream
    FROM chain_heads";
const SELECT_STREAM_HEAD_STATE: &str = "
    SELECT chain_segment_id, chain_sha256 FROM streams
    WHERE camera_id = :camera_id AND stream = :stream";
const SELECT_CHAIN_ROWS: &str = "
    SELECT id, start_90k, end_90k, frames, sha256, prev_segment_id, prev_chain_sha256,
           chain_sha256
    FROM segments
    WHERE camera_id = :camera_id AND stream = :stream AND state = 1
      AND id >= :from_id AND id <= :to_id
    ORDER BY id";
const INSERT_EXPORT: &str = "
    INSERT INTO exports (created_by, created_90k, cameras, start_90k, end_90k, case_ref, reason,
                         state)
    VALUES (:created_by, :created_90k, :cameras, :start_90k, :end_90k, :case_ref, :reason,
            'running')";
const FINISH_EXPORT: &str = "
    UPDATE exports SET state = :state, bytes = :bytes, sha256 = :sha256, error = :error,
        finished_90k = :finished_90k
    WHERE id = :id";
const SELECT_EXPORTS: &str = "
    SELECT id, created_by, created_90k, cameras, start_90k, end_90k, case_ref, reason, state,
           bytes, sha256, error, finished_90k, deleted_90k
    FROM exports";
const COUNT_RUNNING_EXPORTS_BY: &str =
    "SELECT COUNT(*) FROM exports WHERE state = 'running' AND created_by = :by";
/// Ready bundles made before `:before` whose files still exist.
const SELECT_EXPIRED_EXPORTS: &str = "
    SELECT id FROM exports
    WHERE state = 'ready' AND deleted_90k IS NULL AND created_90k < :before ORDER BY id";
const MARK_EXPORT_DELETED: &str =
    "UPDATE exports SET deleted_90k = :at WHERE id = :id AND deleted_90k IS NULL";
/// Bytes of footage a user's active holds cover (segments overlapping any of them, each once).
const SELECT_HELD_BYTES_BY: &str = "
    SELECT COALESCE(SUM(s.file_bytes), 0) FROM segments s
    WHERE EXISTS (
        SELECT 1 FROM holds h
        WHERE h.created_by = :by AND h.released_90k IS NULL AND h.camera_id = s.camera_id
          AND h.start_90k < s.end_90k AND h.end_90k > s.start_90k)";
/// Bytes of a camera's footage overlapping a range.
const SELECT_RANGE_BYTES: &str = "
    SELECT COALESCE(SUM(file_bytes), 0) FROM segments
    WHERE camera_id = :camera_id AND start_90k < :end_90k AND end_90k > :start_90k";

/// An evidence hold on a camera's time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRow {
    pub id: i64,
    pub camera_id: CameraId,
    pub start_90k: i64,
    pub end_90k: i64,
    pub case_ref: String,
    pub reason: String,
    pub created_by: String,
    pub created_90k: i64,
    pub released_by: Option<String>,
    pub released_90k: Option<i64>,
}

/// A signed chain head of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHeadRow {
    pub id: i64,
    pub camera_id: CameraId,
    pub stream: nvr_core::Stream,
    pub segment_id: SegmentId,
    pub chain_sha256: [u8; 32],
    pub signed_90k: i64,
    pub signature: Vec<u8>,
    /// The key that signed it (`signing_keys.id`); `None` only in an index whose keys are not
    /// recorded yet (see `signing_keys.rs`).
    pub signing_key_id: Option<i64>,
}

/// A sealed segment's chain link, as the index holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRow {
    pub id: SegmentId,
    pub start_90k: i64,
    pub end_90k: i64,
    pub frames: i64,
    pub sha256: [u8; 32],
    pub prev_segment_id: Option<SegmentId>,
    /// `None` for segments sealed before the chain existed (schema version 2).
    pub prev_chain_sha256: Option<[u8; 32]>,
    pub chain_sha256: Option<[u8; 32]>,
}

/// An export made through the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRow {
    pub id: i64,
    pub created_by: String,
    pub created_90k: i64,
    pub cameras: Vec<i64>,
    pub start_90k: i64,
    pub end_90k: i64,
    pub case_ref: String,
    pub reason: String,
    /// `running`, `ready` or `failed`.
    pub state: String,
    pub bytes: Option<i64>,
    pub sha256: Option<Vec<u8>>,
    pub error: Option<String>,
    pub finished_90k: Option<i64>,
    /// When its bundle file was deleted because it expired.
    pub deleted_90k: Option<i64>,
}

/// A hold to place.
#[derive(Clone, Copy, Debug)]
pub struct NewHold<'a> {
    pub camera: CameraId,
    pub start_90k: i64,
    pub end_90k: i64,
    pub case_ref: &'a str,
    pub reason: &'a str,
    pub created_by: &'a str,
    pub created_90k: i64,
}

/// An export to start: its row, and the holds that protect its range while it runs.
#[derive(Clone, Debug)]
pub struct NewExport<'a> {
    pub created_by: &'a str,
    pub created_90k: i64,
    pub cameras: &'a [CameraId],
    pub start_90k: i64,
    pub end_90k: i64,
    pub case_ref: &'a str,
    pub reason: &'a str,
    /// Owner of the holds (not a user name, so no user can release them).
    pub hold_owner: &'a str,
    pub hold_reason: &'a str,
}

/// What starting an export made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedExport {
    pub id: i64,
    pub holds: Vec<i64>,
}

fn hold(r: &Row<'_>) -> rusqlite::Result<HoldRow> {
    Ok(HoldRow {
        id: r.get(0)?,
        camera_id: CameraId(r.get(1)?),
        start_90k: r.get(2)?,
        end_90k: r.get(3)?,
        case_ref: r.get(4)?,
        reason: r.get(5)?,
        created_by: r.get(6)?,
        created_90k: r.get(7)?,
        released_by: r.get(8)?,
        released_90k: r.get(9)?,
    })
}

fn insert_hold_in(tx: &rusqlite::Transaction<'_>, h: &NewHold<'_>) -> Result<i64> {
    tx.prepare_cached(INSERT_HOLD)?.execute(named_params! {
        ":camera_id": h.camera.0,
        ":start_90k": h.start_90k,
        ":end_90k": h.end_90k,
        ":case_ref": h.case_ref,
        ":reason": h.reason,
        ":created_by": h.created_by,
        ":created_90k": h.created_90k,
    })?;
    Ok(tx.last_insert_rowid())
}

fn h32(v: Vec<u8>) -> [u8; 32] {
    let mut a = [0u8; 32];
    if v.len() == 32 {
        a.copy_from_slice(&v);
    }
    a
}

fn head(r: &Row<'_>) -> rusqlite::Result<ChainHeadRow> {
    Ok(ChainHeadRow {
        id: r.get(0)?,
        camera_id: CameraId(r.get(1)?),
        segment_id: SegmentId(r.get(2)?),
        chain_sha256: h32(r.get(3)?),
        signed_90k: r.get(4)?,
        signature: r.get(5)?,
        signing_key_id: r.get(6)?,
        stream: super::segments::stream_of(r.get(7)?)?,
    })
}

impl ChainHeadRow {
    /// The camera's stream whose chain this is.
    pub fn key(&self) -> StreamKey {
        StreamKey::new(self.camera_id, self.stream)
    }
}

fn export(r: &Row<'_>) -> rusqlite::Result<ExportRow> {
    let cameras: String = r.get(3)?;
    Ok(ExportRow {
        id: r.get(0)?,
        created_by: r.get(1)?,
        created_90k: r.get(2)?,
        cameras: serde_json::from_str(&cameras).unwrap_or_default(),
        start_90k: r.get(4)?,
        end_90k: r.get(5)?,
        case_ref: r.get(6)?,
        reason: r.get(7)?,
        state: r.get(8)?,
        bytes: r.get(9)?,
        sha256: r.get(10)?,
        error: r.get(11)?,
        finished_90k: r.get(12)?,
        deleted_90k: r.get(13)?,
    })
}

impl Database {
    /// Places a hold with its audit entry (made from the new hold's id).
    pub fn insert_hold(
        &self,
        h: &NewHold<'_>,
        audit: impl FnOnce(i64) -> AuditNote,
    ) -> Result<i64> {
        self.audited(|tx| {
            let id = insert_hold_in(tx, h)?;
            Ok((id, audit(id)))
        })
    }

    /// Every hold, active ones (`active_only`) or all, oldest first.
    pub fn holds(&self, active_only: bool) -> Result<Vec<HoldRow>> {
        let sql = if active_only {
            format!("{SELECT_HOLDS} WHERE released_90k IS NULL ORDER BY id")
        } else {
            format!("{SELECT_HOLDS} ORDER BY id")
        };
        let conn = self.read();
        let rows = conn
            .prepare_cached(&sql)?
            .query_map([], hold)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn hold(&self, id: i64) -> Result<Option<HoldRow>> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(&format!("{SELECT_HOLDS} WHERE id = :id"))?
            .query_row(named_params! {":id": id}, hold)
            .optional()?)
    }

    /// Releases an active hold, with its audit entry (`None`: the release of an export's own
    /// hold, recorded by the export's entries).
    pub fn release_hold(
        &self,
        id: i64,
        by: &str,
        at_90k: i64,
        audit: Option<AuditNote>,
    ) -> Result<()> {
        self.audited_many(|tx| {
            let n = tx
                .prepare_cached(RELEASE_HOLD)?
                .execute(named_params! {":id": id, ":by": by, ":at": at_90k})?;
            if n == 0 {
                return Err(StorageError::NotFound(format!("active hold {id}")));
            }
            Ok(((), audit.into_iter().collect()))
        })
    }

    /// Bytes of footage the active holds created by `by` cover.
    pub fn held_bytes_by(&self, by: &str) -> Result<u64> {
        let n: i64 = self
            .read()
            .prepare_cached(SELECT_HELD_BYTES_BY)?
            .query_row(named_params! {":by": by}, |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Bytes of a camera's footage overlapping `[start, end)`.
    pub fn range_bytes(&self, camera: CameraId, start_90k: i64, end_90k: i64) -> Result<u64> {
        let n: i64 = self.read().prepare_cached(SELECT_RANGE_BYTES)?.query_row(
            named_params! {":camera_id": camera.0, ":start_90k": start_90k, ":end_90k": end_90k},
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// The stream's current chain head (segment id and chain), if it has sealed anything.
    pub fn stream_chain_head(&self, stream: StreamKey) -> Result<Option<(SegmentId, [u8; 32])>> {
        let conn = self.lock();
        let (id, chain): (Option<i64>, Option<Vec<u8>>) = conn
            .prepare_cached(SELECT_STREAM_HEAD_STATE)?
            .query_row(
                named_params! {":camera_id": stream.camera.0, ":stream": stream.stream.index()},
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((None, None));
        Ok(id.zip(chain).map(|(i, c)| (SegmentId(i), h32(c))))
    }

    pub fn insert_chain_head(
        &self,
        stream: StreamKey,
        segment: SegmentId,
        chain: &[u8; 32],
        signed_90k: i64,
        signature: &[u8],
        signing_key_id: i64,
    ) -> Result<i64> {
        let conn = self.lock();
        conn.prepare_cached(INSERT_HEAD)?.execute(named_params! {
            ":camera_id": stream.camera.0,
            ":stream": stream.stream.index(),
            ":segment_id": segment.0,
            ":chain": &chain[..],
            ":signed_90k": signed_90k,
            ":signature": signature,
            ":signing_key_id": signing_key_id,
        })?;
        Ok(conn.last_insert_rowid())
    }

    /// The newest signed head of a stream.
    pub fn latest_chain_head(&self, stream: StreamKey) -> Result<Option<ChainHeadRow>> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(&format!(
                "{SELECT_HEADS} WHERE camera_id = :c AND stream = :st
                 ORDER BY segment_id DESC, id DESC LIMIT 1"
            ))?
            .query_row(
                named_params! {":c": stream.camera.0, ":st": stream.stream.index()},
                head,
            )
            .optional()?)
    }

    /// The earliest signed head of a stream at or after `segment`.
    pub fn first_chain_head_at_or_after(
        &self,
        stream: StreamKey,
        segment: SegmentId,
    ) -> Result<Option<ChainHeadRow>> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached(&format!(
                "{SELECT_HEADS} WHERE camera_id = :c AND stream = :st AND segment_id >= :s
                 ORDER BY segment_id, id LIMIT 1"
            ))?
            .query_row(
                named_params! {":c": stream.camera.0, ":st": stream.stream.index(), ":s": segment.0},
                head,
            )
            .optional()?)
    }

    /// Every signed head, for `nvr check`.
    pub fn chain_heads(&self) -> Result<Vec<ChainHeadRow>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(&format!("{SELECT_HEADS} ORDER BY id"))?
            .query_map([], head)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Sealed segments of `stream` with ids in `[from, to]`, with their chain links.
    pub fn chain_rows(
        &self,
        stream: StreamKey,
        from: SegmentId,
        to: SegmentId,
    ) -> Result<Vec<ChainRow>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_CHAIN_ROWS)?
            .query_map(
                named_params! {
                    ":camera_id": stream.camera.0,
                    ":stream": stream.stream.index(),
                    ":from_id": from.0,
                    ":to_id": to.0,
                },
                |r| {
                    Ok(ChainRow {
                        id: SegmentId(r.get(0)?),
                        start_90k: r.get(1)?,
                        end_90k: r.get(2)?,
                        frames: r.get(3)?,
                        sha256: h32(r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default()),
                        prev_segment_id: r.get::<_, Option<i64>>(5)?.map(SegmentId),
                        prev_chain_sha256: r.get::<_, Option<Vec<u8>>>(6)?.map(h32),
                        chain_sha256: r.get::<_, Option<Vec<u8>>>(7)?.map(h32),
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Starts an export: its row, one hold per camera over its range (owned by
    /// `hold_owner`), and the audit entries `audit` makes from the new export's id, in one
    /// transaction.
    pub fn start_export(
        &self,
        e: &NewExport<'_>,
        audit: impl FnOnce(i64) -> Vec<AuditNote>,
    ) -> Result<StartedExport> {
        self.audited_many(|tx| {
            let cameras: Vec<i64> = e.cameras.iter().map(|c| c.0).collect();
            tx.prepare_cached(INSERT_EXPORT)?.execute(named_params! {
                ":created_by": e.created_by,
                ":created_90k": e.created_90k,
                ":cameras": serde_json::to_string(&cameras).unwrap_or_else(|_| "[]".into()),
                ":start_90k": e.start_90k,
                ":end_90k": e.end_90k,
                ":case_ref": e.case_ref,
                ":reason": e.reason,
            })?;
            let id = tx.last_insert_rowid();
            let mut holds = Vec::with_capacity(e.cameras.len());
            for &camera in e.cameras {
                holds.push(insert_hold_in(
                    tx,
                    &NewHold {
                        camera,
                        start_90k: e.start_90k,
                        end_90k: e.end_90k,
                        case_ref: e.case_ref,
                        reason: e.hold_reason,
                        created_by: e.hold_owner,
                        created_90k: e.created_90k,
                    },
                )?);
            }
            Ok((StartedExport { id, holds }, audit(id)))
        })
    }

    /// Exports `by` has running now.
    pub fn running_exports_by(&self, by: &str) -> Result<u64> {
        let n: i64 = self
            .read()
            .prepare_cached(COUNT_RUNNING_EXPORTS_BY)?
            .query_row(named_params! {":by": by}, |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Ready exports made before `before_90k` whose bundle files still exist.
    pub fn expired_exports(&self, before_90k: i64) -> Result<Vec<i64>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_EXPIRED_EXPORTS)?
            .query_map(named_params! {":before": before_90k}, |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Records that an export's bundle file was deleted because it expired.
    pub fn mark_export_deleted(&self, id: i64, at_90k: i64, audit: AuditNote) -> Result<()> {
        self.audited(|tx| {
            tx.prepare_cached(MARK_EXPORT_DELETED)?
                .execute(named_params! {":id": id, ":at": at_90k})?;
            Ok(((), audit))
        })
    }

    pub fn finish_export(
        &self,
        id: i64,
        result: std::result::Result<(u64, [u8; 32]), String>,
        finished_90k: i64,
    ) -> Result<()> {
        let (state, bytes, sha, error) = match result {
            Ok((b, s)) => ("ready", Some(b as i64), Some(s.to_vec()), None),
            Err(e) => ("failed", None, None, Some(e)),
        };
        self.lock()
            .prepare_cached(FINISH_EXPORT)?
            .execute(named_params! {
                ":id": id,
                ":state": state,
                ":bytes": bytes,
                ":sha256": sha,
                ":error": error,
                ":finished_90k": finished_90k,
            })?;
        Ok(())
    }

    pub fn exports(&self) -> Result<Vec<ExportRow>> {
        let conn = self.read();
        let rows = conn
            .prepare_cached(&format!("{SELECT_EXPORTS} ORDER BY id DESC"))?
            .query_map([], export)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn export(&self, id: i64) -> Result<Option<ExportRow>> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(&format!("{SELECT_EXPORTS} WHERE id = :id"))?
            .query_row(named_params! {":id": id}, export)
            .optional()?)
    }

    /// Exports still marked running (left so by a crash).
    pub fn fail_running_exports(&self, at_90k: i64) -> Result<u64> {
        let n = self.lock().execute(
            "UPDATE exports SET state = 'failed', error = 'interrupted by a restart',
                 finished_90k = :at WHERE state = 'running'",
            named_params! {":at": at_90k},
        )?;
        Ok(n as u64)
    }
}
