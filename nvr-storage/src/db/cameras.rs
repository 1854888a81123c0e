//! Queries of the `cameras` and `streams` tables.

use rusqlite::{OptionalExtension, Row, named_params};

use super::{AuditNote, Database};
use crate::error::{Result, StorageError};
use nvr_core::{CameraId, SegmentId, Stream, StreamKey};

const INSERT_CAMERA: &str = "
    INSERT INTO cameras (name, username, password_sealed, enabled, created_90k, record_audio)
    VALUES (:name, :username, :password_sealed, 1, :created_90k, :record_audio)";
const INSERT_STREAM: &str = "
    INSERT INTO streams (camera_id, stream, url, record) VALUES (:camera_id, :stream, :url, :record)";
/// A camera with its main stream and, if it has (or had) one, its sub-stream.
const SELECT_CAMERAS: &str = "
    SELECT c.id, c.name, m.url, c.username, c.password_sealed IS NOT NULL, c.enabled,
           m.retain_max_bytes, m.retain_max_age_secs, c.created_90k,
           s.camera_id IS NOT NULL, s.url, COALESCE(s.record, 1), s.retain_max_bytes,
           s.retain_max_age_secs, c.record_audio
    FROM cameras c
    JOIN streams m ON m.camera_id = c.id AND m.stream = 0
    LEFT JOIN streams s ON s.camera_id = c.id AND s.stream = 1";
const SELECT_PASSWORD: &str = "SELECT password_sealed FROM cameras WHERE id = :id";
const UPDATE_CAMERA: &str = "
    UPDATE cameras SET name = :name, username = :username, password_sealed = :password_sealed,
        enabled = :enabled, record_audio = :record_audio
    WHERE id = :id";
const UPDATE_MAIN_URL: &str = "UPDATE streams SET url = :url WHERE camera_id = :id AND stream = 0";
/// Sets the sub-stream's URL and whether it is recorded, adding its row if it never had one.
const UPSERT_SUB_STREAM: &str = "
    INSERT INTO streams (camera_id, stream, url, record) VALUES (:id, 1, :url, :record)
    ON CONFLICT (camera_id, stream) DO UPDATE SET url = excluded.url, record = excluded.record";
/// Removes the sub-stream's URL; its row stays for its recordings and chain.
const CLEAR_SUB_STREAM: &str =
    "UPDATE streams SET url = NULL, record = :record WHERE camera_id = :id AND stream = 1";
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
const DELETE_CAMERA_STREAMS: &str = "DELETE FROM streams WHERE camera_id = :id";
const DELETE_CAMERA: &str = "DELETE FROM cameras WHERE id = :id";
const COUNT_CAMERA_SEGMENTS: &str = "SELECT COUNT(*) FROM segments WHERE camera_id = :id";
const SET_STREAM_CLOCK: &str = "
    UPDATE streams SET clock_offset_90k = :offset_90k, clock_measured_90k = :measured_90k
    WHERE camera_id = :camera_id AND stream = :stream";
const SELECT_STREAM_CLOCK: &str = "
    SELECT clock_offset_90k, clock_measured_90k FROM streams
    WHERE camera_id = :camera_id AND stream = :stream AND clock_measured_90k IS NOT NULL";
const UPDATE_RETENTION: &str = "
    UPDATE streams SET retain_max_bytes = :max_bytes, retain_max_age_secs = :max_age_secs
    WHERE camera_id = :id AND stream = :stream";

/// A camera as stored (without its password), with its streams' settings: the main stream's
/// (`url`, `retain_*`) and the sub-stream's (`sub_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraRow {
    pub id: CameraId,
    pub name: String,
    /// The main stream's URL.
    pub url: String,
    pub username: Option<String>,
    pub has_password: bool,
    pub enabled: bool,
    /// The main stream's retention overrides.
    pub retain_max_bytes: Option<u64>,
    pub retain_max_age_secs: Option<u64>,
    pub created_90k: i64,
    /// The camera has a sub-stream row: it has a sub-stream now (`sub_url`), or had one whose
    /// recordings may remain.
    pub has_sub_row: bool,
    /// The sub-stream's URL, while the camera has one.
    pub sub_url: Option<String>,
    /// Whether the sub-stream is recorded (else it is pulled for live view only).
    pub record_sub: bool,
    /// The sub-stream's retention overrides.
    pub sub_retain_max_bytes: Option<u64>,
    pub sub_retain_max_age_secs: Option<u64>,
    /// Whether the main stream's audio is recorded (off unless an admin switched it on).
    pub record_audio: bool,
}

impl CameraRow {
    /// The URL of `stream`, if the camera has that stream now.
    pub fn stream_url(&self, stream: Stream) -> Option<&str> {
        match stream {
            Stream::Main => Some(&self.url),
            Stream::Sub => self.sub_url.as_deref(),
        }
    }

    /// The streams the camera has now: main, and sub if configured.
    pub fn streams(&self) -> Vec<Stream> {
        Stream::ALL
            .into_iter()
            .filter(|&s| self.stream_url(s).is_some())
            .collect()
    }

    /// Whether `stream` is recorded now (a configured stream with recording on).
    pub fn records(&self, stream: Stream) -> bool {
        match stream {
            Stream::Main => true,
            Stream::Sub => self.sub_url.is_some() && self.record_sub,
        }
    }

    /// Whether the index knows `stream` of this camera (it may have recordings): the streams
    /// retention, `nvr check` and playback look at.
    pub fn has_stream_row(&self, stream: Stream) -> bool {
        match stream {
            Stream::Main => true,
            Stream::Sub => self.has_sub_row,
        }
    }

    /// The retention overrides of `stream`.
    pub fn retention(&self, stream: Stream) -> CameraRetention {
        match stream {
            Stream::Main => CameraRetention {
                max_bytes: self.retain_max_bytes,
                max_age_secs: self.retain_max_age_secs,
            },
            Stream::Sub => CameraRetention {
                max_bytes: self.sub_retain_max_bytes,
                max_age_secs: self.sub_retain_max_age_secs,
            },
        }
    }

    /// Replaces the retention overrides of `stream` (in this copy).
    pub fn set_retention(&mut self, stream: Stream, r: CameraRetention) {
        match stream {
            Stream::Main => {
                self.retain_max_bytes = r.max_bytes;
                self.retain_max_age_secs = r.max_age_secs;
            }
            Stream::Sub => {
                self.sub_retain_max_bytes = r.max_bytes;
                self.sub_retain_max_age_secs = r.max_age_secs;
            }
        }
    }
}

/// A camera to insert. The URLs must already be validated and the password sealed.
#[derive(Debug)]
pub struct NewCamera<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub username: Option<&'a str>,
    pub password_sealed: Option<&'a [u8]>,
    pub created_90k: i64,
    /// The sub-stream's URL, if it has one.
    pub sub_url: Option<&'a str>,
    /// Record the sub-stream (else live view only).
    pub record_sub: bool,
    /// Record the main stream's audio.
    pub record_audio: bool,
}

fn camera_from_row(r: &Row<'_>) -> rusqlite::Result<CameraRow> {
    let size = |i| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(|v| v.max(0) as u64))
    };
    Ok(CameraRow {
        id: CameraId(r.get(0)?),
        name: r.get(1)?,
        url: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        username: r.get(3)?,
        has_password: r.get(4)?,
        enabled: r.get(5)?,
        retain_max_bytes: size(6)?,
        retain_max_age_secs: size(7)?,
        created_90k: r.get(8)?,
        has_sub_row: r.get(9)?,
        sub_url: r.get(10)?,
        record_sub: r.get(11)?,
        sub_retain_max_bytes: size(12)?,
        sub_retain_max_age_secs: size(13)?,
        record_audio: r.get(14)?,
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
    /// The sub-stream's URL; `None` removes the sub-stream (its recordings stay).
    pub sub_url: Option<&'a str>,
    pub record_sub: bool,
    /// Record the main stream's audio.
    pub record_audio: bool,
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
                    ":username": c.username,
                    ":password_sealed": c.password_sealed,
                    ":created_90k": c.created_90k,
                    ":record_audio": c.record_audio,
                },
            )
            .map_err(|e| constraint_to_exists(e, format!("camera {:?}", c.name)))?;
            let id = CameraId(tx.last_insert_rowid());
            let mut insert_stream = tx.prepare_cached(INSERT_STREAM)?;
            insert_stream.execute(named_params! {
                ":camera_id": id.0, ":stream": Stream::Main.index(), ":url": c.url, ":record": true,
            })?;
            if let Some(sub) = c.sub_url {
                insert_stream.execute(named_params! {
                    ":camera_id": id.0, ":stream": Stream::Sub.index(), ":url": sub,
                    ":record": c.record_sub,
                })?;
            }
            Ok((id, audit(id)))
        })
    }

    pub fn cameras(&self) -> Result<Vec<CameraRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!("{SELECT_CAMERAS} ORDER BY c.id"))?;
        let rows = stmt
            .query_map([], camera_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn camera(&self, id: CameraId) -> Result<Option<CameraRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!("{SELECT_CAMERAS} WHERE c.id = :id"))?;
        Ok(stmt
            .query_row(named_params! {":id": id.0}, camera_from_row)
            .optional()?)
    }

    pub fn camera_by_name(&self, name: &str) -> Result<Option<CameraRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!("{SELECT_CAMERAS} WHERE c.name = :name"))?;
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

    /// Replaces a camera's editable fields (and the retention overrides of the streams
    /// `retention` names) with an audit entry; a duplicate name is `AlreadyExists`, retention
    /// of a sub-stream the camera never had `InvalidArgument`.
    pub fn update_camera(
        &self,
        id: CameraId,
        c: &CameraUpdate<'_>,
        retention: &[(Stream, CameraRetention)],
        audit: AuditNote,
    ) -> Result<()> {
        self.audited(|tx| {
            let n = tx
                .execute(
                    UPDATE_CAMERA,
                    named_params! {
                        ":id": id.0,
                        ":name": c.name,
                        ":username": c.username,
                        ":password_sealed": c.password_sealed,
                        ":enabled": c.enabled,
                        ":record_audio": c.record_audio,
                    },
                )
                .map_err(|e| constraint_to_exists(e, format!("camera {:?}", c.name)))?;
            if n == 0 {
                return Err(StorageError::NotFound(format!("camera {id}")));
            }
            tx.execute(UPDATE_MAIN_URL, named_params! {":id": id.0, ":url": c.url})?;
            match c.sub_url {
                Some(url) => tx.execute(
                    UPSERT_SUB_STREAM,
                    named_params! {":id": id.0, ":url": url, ":record": c.record_sub},
                )?,
                None => tx.execute(
                    CLEAR_SUB_STREAM,
                    named_params! {":id": id.0, ":record": c.record_sub},
                )?,
            };
            for &(stream, r) in retention {
                let to_sql = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                let n = tx.execute(
                    UPDATE_RETENTION,
                    named_params! {
                        ":id": id.0,
                        ":stream": stream.index(),
                        ":max_bytes": to_sql(r.max_bytes),
                        ":max_age_secs": to_sql(r.max_age_secs),
                    },
                )?;
                if n == 0 {
                    return Err(StorageError::InvalidArgument(format!(
                        "camera {id} has no {stream} stream to set the retention of"
                    )));
                }
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

    /// Keeps the latest camera clock offset of `stream` (see `streams.clock_offset_90k`).
    pub fn set_stream_clock(
        &self,
        stream: StreamKey,
        offset_90k: i64,
        measured_90k: i64,
    ) -> Result<()> {
        self.lock()
            .prepare_cached(SET_STREAM_CLOCK)?
            .execute(named_params! {
                ":camera_id": stream.camera.0,
                ":stream": stream.stream.index(),
                ":offset_90k": offset_90k,
                ":measured_90k": measured_90k,
            })?;
        Ok(())
    }

    /// The latest camera clock offset of `stream` and when it was measured (both 90 kHz), if
    /// one was ever observed.
    pub fn stream_clock(&self, stream: StreamKey) -> Result<Option<(i64, i64)>> {
        Ok(self
            .read()
            .prepare_cached(SELECT_STREAM_CLOCK)?
            .query_row(
                named_params! {":camera_id": stream.camera.0, ":stream": stream.stream.index()},
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Number of segments (sealed or open) of a camera.
    pub fn camera_segment_count(&self, id: CameraId) -> Result<u64> {
        let n: i64 = self
            .read()
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
                .prepare_cached(&format!("{SELECT_CAMERAS} WHERE c.id = :id"))?
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
            tx.execute(DELETE_CAMERA_STREAMS, named_params! {":id": id.0})?;
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

/// A stream's retention overrides: `None` = the server default, `Some(0)` = no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CameraRetention {
    pub max_bytes: Option<u64>,
    pub max_age_secs: Option<u64>,
}
