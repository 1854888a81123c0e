//! Queries of the `cameras` table.

use rusqlite::{OptionalExtension, Row, named_params};

use super::{AuditNote, Database};
use crate::error::{Result, StorageError};
use nvr_core::{CameraId, SegmentId};

const INSERT_CAMERA: &str = "
    INSERT INTO cameras (name, url, username, password_sealed, enabled, created_90k)
    VALUES (:name, :url, :username, :password_sealed, 1, :created_90k)";
const SELECT_CAMERAS: &str = "
    SELECT id, name, url, username, password_sealed IS NOT NULL, enabled, retain_max_bytes,
           retain_max_age_secs, created_90k
    FROM cameras";
const SELECT_PASSWORD: &str = "SELECT password_sealed FROM cameras WHERE id = :id";
const UPDATE_CAMERA: &str = "
    UPDATE cameras SET name = :name, url = :url, username = :username,
        password_sealed = :password_sealed, enabled = :enabled
    WHERE id = :id";
const SET_CAMERA_ENABLED: &str = "UPDATE cameras SET enabled = :enabled WHERE id = :id";
const DELETE_CAMERA_EPOCHS: &str = "DELETE FROM epochs WHERE camera_id = :id";
const SELECT_CAMERA_EPOCHS: &str = "SELECT id FROM epochs WHERE camera_id = :id";
const SELECT_ACTIVE_CAMERA_HOLDS: &str =
    "SELECT id FROM holds WHERE camera_id = :id AND released_90k IS NULL ORDER BY id";
/// Released holds go with their camera (the audit log keeps their history).
const DELETE_RELEASED_CAMERA_HOLDS: &str =
    "DELETE FROM holds WHERE camera_id = :id AND released_90k IS NOT NULL";
const SELECT_CAMERA_SEGMENT_IDS: &str = "SELECT id FROM segments WHERE camera_id = :id ORDER BY id";
const MOVE_CAMERA_SEGMENTS_TO_GARBAGE: &str = "
    INSERT INTO garbage (segment_id, camera_id)
    SELECT id, camera_id FROM segments WHERE camera_id = :id";
const DELETE_CAMERA_SEGMENTS: &str = "DELETE FROM segments WHERE camera_id = :id";
const DELETE_CAMERA: &str = "DELETE FROM cameras WHERE id = :id";
const COUNT_CAMERA_SEGMENTS: &str = "SELECT COUNT(*) FROM segments WHERE camera_id = :id";
const UPDATE_RETENTION: &str = "
    UPDATE cameras SET retain_max_bytes = :max_bytes, retain_max_age_secs = :max_age_secs
    WHERE id = :id";

/// A camera as stored (without its password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraRow {
    pub id: CameraId,
    pub name: String,
    pub url: String,
    pub username: Option<String>,
    pub has_password: bool,
    pub enabled: bool,
    pub retain_max_bytes: Option<u64>,
    pub retain_max_age_secs: Option<u64>,
    pub created_90k: i64,
}

/// A camera to insert. The URL must already be validated and the password sealed.
#[derive(Debug)]
pub struct NewCamera<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub username: Option<&'a str>,
    pub password_sealed: Option<&'a [u8]>,
    pub created_90k: i64,
}

fn camera_from_row(r: &Row<'_>) -> rusqlite::Result<CameraRow> {
    Ok(CameraRow {
        id: CameraId(r.get(0)?),
        name: r.get(1)?,
        url: r.get(2)?,
        username: r.get(3)?,
        has_password: r.get(4)?,
        enabled: r.get(5)?,
        retain_max_bytes: r.get::<_, Option<i64>>(6)?.map(|v| v.max(0) as u64),
        retain_max_age_secs: r.get::<_, Option<i64>>(7)?.map(|v| v.max(0) as u64),
        created_90k: r.get(8)?,
    })
}

/// What deleting a camera removed from the index: its segments (their files are now garbage
/// to unlink) and its epochs (whose key files to shred).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedCamera {
    pub camera: CameraRow,
    pub segments: Vec<SegmentId>,
    pub epochs: Vec<i64>,
}

/// The editable fields of a camera, all given (the caller merges a partial update).
#[derive(Debug)]
pub struct CameraUpdate<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub username: Option<&'a str>,
    pub password_sealed: Option<&'a [u8]>,
    pub enabled: bool,
}

fn constraint_to_exists(e: rusqlite::Error, what: String) -> StorageError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StorageError::AlreadyExists(what)
        }
        e => e.into(),
    }
}

impl Database {
    /// Inserts a camera with the audit entry `audit` makes from its new id; a duplicate name
    /// is `AlreadyExists`.
    pub fn insert_camera(
        &self,
        c: &NewCamera<'_>,
        audit: impl FnOnce(CameraId) -> AuditNote,
    ) -> Result<CameraId> {
        self.audited(|tx| {
            tx.execute(
                INSERT_CAMERA,
                named_params! {
                    ":name": c.name,
                    ":url": c.url,
                    ":username": c.username,
                    ":password_sealed": c.password_sealed,
                    ":created_90k": c.created_90k,
                },
            )
            .map_err(|e| constraint_to_exists(e, format!("camera {:?}", c.name)))?;
            let id = CameraId(tx.last_insert_rowid());
            Ok((id, audit(id)))
        })
    }

    pub fn cameras(&self) -> Result<Vec<CameraRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!("{SELECT_CAMERAS} ORDER BY id"))?;
        let rows = stmt
            .query_map([], camera_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn camera(&self, id: CameraId) -> Result<Option<CameraRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!("{SELECT_CAMERAS} WHERE id = :id"))?;
        Ok(stmt
            .query_row(named_params! {":id": id.0}, camera_from_row)
            .optional()?)
    }

    pub fn camera_by_name(&self, name: &str) -> Result<Option<CameraRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!("{SELECT_CAMERAS} WHERE name = :name"))?;
        Ok(stmt
            .query_row(named_params! {":name": name}, camera_from_row)
            .optional()?)
    }

    /// The sealed password of a camera, if it has one.
    pub fn camera_password_sealed(&self, id: CameraId) -> Result<Option<Vec<u8>>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(SELECT_PASSWORD)?;
        Ok(stmt
            .query_row(named_params! {":id": id.0}, |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Replaces a camera's editable fields (and, when given, its retention overrides) with an
    /// audit entry; a duplicate name is `AlreadyExists`.
    pub fn update_camera(
        &self,
        id: CameraId,
        c: &CameraUpdate<'_>,
        retention: Option<CameraRetention>,
        audit: AuditNote,
    ) -> Result<()> {
        self.audited(|tx| {
            let n = tx
                .execute(
                    UPDATE_CAMERA,
                    named_params! {
                        ":id": id.0,
                        ":name": c.name,
                        ":url": c.url,
                        ":username": c.username,
                        ":password_sealed": c.password_sealed,
                        ":enabled": c.enabled,
                    },
                )
                .map_err(|e| constraint_to_exists(e, format!("camera {:?}", c.name)))?;
            if n == 0 {
                return Err(StorageError::NotFound(format!("camera {id}")));
            }
            if let Some(r) = retention {
                let to_sql = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                tx.execute(
                    UPDATE_RETENTION,
                    named_params! {
                        ":id": id.0,
                        ":max_bytes": to_sql(r.max_bytes),
                        ":max_age_secs": to_sql(r.max_age_secs),
                    },
                )?;
            }
            Ok(((), audit))
        })
    }

    /// Switches recording of a camera on or off without an audit entry: a step inside an
    /// operation that records its own (deleting a camera stops it first).
    pub fn set_camera_enabled(&self, id: CameraId, enabled: bool) -> Result<()> {
        let n = self.lock().execute(
            SET_CAMERA_ENABLED,
            named_params! {":id": id.0, ":enabled": enabled},
        )?;
        if n == 0 {
            return Err(StorageError::NotFound(format!("camera {id}")));
        }
        Ok(())
    }

    /// Number of segments (sealed or open) of a camera.
    pub fn camera_segment_count(&self, id: CameraId) -> Result<u64> {
        let n: i64 = self
            .lock()
            .prepare_cached(COUNT_CAMERA_SEGMENTS)?
            .query_row(named_params! {":id": id.0}, |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Deletes a camera and, in the same transaction, its segments (moved to the garbage list
    /// for the caller to unlink), its released holds and its epochs, with the audit entry
    /// `audit` makes from what was deleted. Refuses with `Held` while an active hold covers
    /// any of its footage, deleting nothing. The caller must have stopped its recording.
    pub fn delete_camera(
        &self,
        id: CameraId,
        audit: impl FnOnce(&DeletedCamera) -> AuditNote,
    ) -> Result<DeletedCamera> {
        self.audited(|tx| {
            let camera = tx
                .prepare_cached(&format!("{SELECT_CAMERAS} WHERE id = :id"))?
                .query_row(named_params! {":id": id.0}, camera_from_row)
                .optional()?
                .ok_or_else(|| StorageError::NotFound(format!("camera {id}")))?;
            let ids = |sql: &str| -> Result<Vec<i64>> {
                Ok(tx
                    .prepare_cached(sql)?
                    .query_map(named_params! {":id": id.0}, |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
            };
            let holds = ids(SELECT_ACTIVE_CAMERA_HOLDS)?;
            if !holds.is_empty() {
                return Err(StorageError::Held { camera: id, holds });
            }
            let segments: Vec<SegmentId> = ids(SELECT_CAMERA_SEGMENT_IDS)?
                .into_iter()
                .map(SegmentId)
                .collect();
            let epochs = ids(SELECT_CAMERA_EPOCHS)?;
            tx.execute(MOVE_CAMERA_SEGMENTS_TO_GARBAGE, named_params! {":id": id.0})?;
            tx.execute(DELETE_CAMERA_SEGMENTS, named_params! {":id": id.0})?;
            tx.execute(DELETE_RELEASED_CAMERA_HOLDS, named_params! {":id": id.0})?;
            tx.execute(DELETE_CAMERA_EPOCHS, named_params! {":id": id.0})?;
            tx.execute(DELETE_CAMERA, named_params! {":id": id.0})?;
            let deleted = DeletedCamera {
                camera,
                segments,
                epochs,
            };
            let note = audit(&deleted);
            Ok((deleted, note))
        })
    }
}

/// A camera's retention overrides: `None` = the server default, `Some(0)` = no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CameraRetention {
    pub max_bytes: Option<u64>,
    pub max_age_secs: Option<u64>,
}
