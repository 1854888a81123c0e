//! The SQLite index: opening, schema creation and numbered migrations, and the typed queries of
//! each table (cameras and their streams, segments, retention, users and sessions, evidence
//! and the audit log, signing keys, meta). All SQL of the recorder lives in this module, as
//! named constants with named parameters.
//!
//! Locking: one writer connection behind a mutex, and [`READERS`] read-only connections.
//! Every change takes the writer for one statement or one transaction, whose commit fsyncs the
//! WAL (`synchronous = FULL`: a committed segment row survives power loss); on a spinning disk
//! that is 10-100 ms. The queries that serve requests (sessions, cameras, the timeline, holds,
//! the audit log) run on the readers instead, which WAL lets read beside the writer, so a login
//! or a camera list never waits behind a segment's seal. No method does file I/O other than
//! SQLite's while holding a connection.

mod audit;
mod cameras;
mod evidence;
mod meta;
mod motion;
mod retention;
mod segments;
mod signing_keys;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, OptionalExtension, named_params};

use crate::error::{Result, StorageError};

pub use audit::{
    AuditEntry, AuditFilter, AuditNote, CAMERA_DELETE_ACTION, RETENTION_DELETE_ACTION,
};
pub use cameras::{CameraRetention, CameraRow, CameraUpdate, DeletedCamera, NewCamera};
pub use evidence::{ChainHeadRow, ChainRow, ExportRow, HoldRow, NewExport, NewHold, StartedExport};
pub use motion::{MotionRow, MotionSettingsRow};
pub use retention::{RetentionCandidate, RetentionDelete};
pub use segments::{
    NewOpenSegment, SEGMENT_FLAG_CLOCK_JUMP, SEGMENT_FLAG_RECOVERED, SealedSegment, SegmentRow,
};
pub use signing_keys::{
    KeyChange, SIGNING_KEY_ADOPT_ACTION, SIGNING_KEY_ROTATE_ACTION, SigningKeyRow,
};
pub use users::{NewSession, SessionRow, UserChange, UserRow};

/// The schema version this program writes; `PRAGMA user_version` holds the database's: the
/// number of the last migration applied.
pub const SCHEMA_VERSION: i64 = 10;

/// The current schema, used for new databases.
const FRESH_SCHEMA: &str = include_str!("schema.sql");

/// The numbered migrations, in order: migration `n` takes a database to version `n` from the
/// version of the migration before it. A database is brought up by every migration numbered
/// above its version.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_recording.sql")),
    (2, include_str!("migrations/0002_users.sql")),
    (3, include_str!("migrations/0003_evidence.sql")),
    (4, include_str!("migrations/0004_live_epochs.sql")),
    (5, include_str!("migrations/0005_hostile_lan.sql")),
    (6, include_str!("migrations/0006_signing_keys.sql")),
    (7, include_str!("migrations/0007_streams.sql")),
    (8, include_str!("migrations/0008_motion.sql")),
    (9, include_str!("migrations/0009_camera_clock.sql")),
    (10, include_str!("migrations/0010_record_audio.sql")),
];

/// Every row whose foreign key points nowhere: (table, rowid, referenced table, key index).
const FOREIGN_KEY_CHECK: &str = "PRAGMA foreign_key_check";

const INSERT_META: &str =
    "INSERT INTO meta (id, data_dir_uuid, created_90k) VALUES (1, :uuid, :created_90k)";

/// Read-only connections for the queries that serve requests: enough for the web server's
/// concurrent requests on a small machine (each query takes well under a millisecond).
pub const READERS: usize = 4;

/// A test seam: the environment variable that makes every segment seal hold the writer
/// connection this many milliseconds longer before it commits, as a slow disk's fsync would.
/// Used by the API latency test and the load bench; never set in production.
pub const SLOW_SEAL_ENV: &str = "NVR_FAULT_SLOW_SEAL_MS";

/// A test seam: the environment variable naming an audit action (e.g. `camera_add`); a change
/// recorded with that action kills the process after the change's statements and before its
/// audit entry, inside their transaction, to show that a crash there keeps neither. Never set
/// in production.
pub const ABORT_BEFORE_AUDIT_ENV: &str = "NVR_FAULT_ABORT_BEFORE_AUDIT";

/// The index database.
pub struct Database {
    conn: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    /// See [`SLOW_SEAL_ENV`].
    slow_seal: Option<std::time::Duration>,
    /// See [`Database::set_seal_hook`].
    #[cfg(feature = "test-support")]
    seal_hook: Mutex<Option<SealHook>>,
    path: PathBuf,
}

/// A test seam run inside every seal's transaction: see [`Database::set_seal_hook`].
#[cfg(feature = "test-support")]
pub type SealHook = std::sync::Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

impl Database {
    /// Creates a new database at `path` with the current schema. Fails if it exists.
    pub fn create(path: &Path, data_dir_uuid: &[u8; 16], now_90k: i64) -> Result<Self> {
        if path.exists() {
            return Err(StorageError::AlreadyExists(format!("{}", path.display())));
        }
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        let tx = conn.transaction()?;
        tx.execute_batch(FRESH_SCHEMA)?;
        tx.execute(
            INSERT_META,
            named_params! {":uuid": &data_dir_uuid[..], ":created_90k": now_90k},
        )?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Self::with_readers(conn, path)
    }

    /// Opens an existing database, applying any pending migrations (one transaction each).
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Self::with_readers(conn, path)
    }

    /// The database with its writer `conn` (schema current) and [`READERS`] read-only
    /// connections beside it.
    fn with_readers(conn: Connection, path: &Path) -> Result<Self> {
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(10))?;
            readers.push(Mutex::new(r));
        }
        let slow_seal = std::env::var(SLOW_SEAL_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map(std::time::Duration::from_millis);
        if let Some(d) = slow_seal {
            tracing::warn!(
                delay_ms = d.as_millis() as u64,
                "{SLOW_SEAL_ENV} is set: every seal is slowed (a test seam)"
            );
        }
        Ok(Database {
            conn: Mutex::new(conn),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            slow_seal,
            #[cfg(feature = "test-support")]
            seal_hook: Mutex::new(None),
            path: path.to_owned(),
        })
    }

    /// A read-only connection: a free one if any (starting from a rotating index), else waits
    /// for one. Queries that serve requests use it instead of the writer ([`Self::lock`]).
    pub(crate) fn read(&self) -> MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        self.readers[start % n]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The seal delay of the test seam ([`SLOW_SEAL_ENV`]), if set.
    pub(crate) fn slow_seal(&self) -> Option<std::time::Duration> {
        self.slow_seal
    }

    /// A test seam (the `test-support` feature): `hook` runs inside every segment seal's
    /// transaction, holding the writer before the commit, as a slow fsync would; a test that
    /// blocks in it knows a seal is in progress for as long as it likes, without timing.
    #[cfg(feature = "test-support")]
    pub fn set_seal_hook(&self, hook: Option<SealHook>) {
        *self.seal_hook.lock().unwrap_or_else(|p| p.into_inner()) = hook;
    }

    /// Runs the hook of [`Self::set_seal_hook`], if any (a no-op without the feature).
    pub(crate) fn run_seal_hook(&self) {
        #[cfg(feature = "test-support")]
        {
            let hook = self
                .seal_hook
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(hook) = hook {
                hook();
            }
        }
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the connection lock. A panic elsewhere while holding it leaves SQLite consistent
    /// (an open transaction is rolled back on drop), so a poisoned lock is safe to reuse.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn data_dir_uuid(&self) -> Result<Vec<u8>> {
        Ok(self
            .lock()
            .query_row("SELECT data_dir_uuid FROM meta WHERE id = 1", [], |r| {
                r.get(0)
            })?)
    }

    /// Makes sure new segments get ids above `max_id`. A lost WAL (power cut, truncated file)
    /// can roll the id sequence back below files already on disk; reusing such an id would
    /// collide with the file. Returns whether the sequence had to move.
    pub fn ensure_segment_ids_above(&self, max_id: i64) -> Result<bool> {
        let conn = self.lock();
        let seq: Option<i64> = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'segments'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let max_row: Option<i64> =
            conn.query_row("SELECT MAX(id) FROM segments", [], |r| r.get(0))?;
        let current = seq.unwrap_or(0).max(max_row.unwrap_or(0));
        if current >= max_id {
            return Ok(false);
        }
        if seq.is_some() {
            conn.execute(
                "UPDATE sqlite_sequence SET seq = :max WHERE name = 'segments'",
                named_params! {":max": max_id},
            )?;
        } else {
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('segments', :max)",
                named_params! {":max": max_id},
            )?;
        }
        Ok(true)
    }

    /// Runs `change` and appends the audit entry it returns in one immediate transaction: both
    /// happen or neither. (The entry comes from the change because it often names what the
    /// change found, e.g. the segments a deletion took.)
    pub(crate) fn audited<T>(
        &self,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, AuditNote)>,
    ) -> Result<T> {
        self.audited_many(|tx| change(tx).map(|(out, note)| (out, vec![note])))
    }

    /// Like [`Self::audited`], for a change recorded by several entries (e.g. one per camera).
    pub(crate) fn audited_many<T>(
        &self,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Vec<AuditNote>)>,
    ) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (out, notes) = change(&tx)?;
        if let Ok(action) = std::env::var(ABORT_BEFORE_AUDIT_ENV)
            && notes.iter().any(|n| n.action == action)
        {
            // The test seam: a crash between the change and its record.
            std::process::abort();
        }
        for note in &notes {
            audit::append_in(&tx, note)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Runs SQLite's own consistency check; returns its complaints (empty when healthy).
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }
}

/// Brings `conn` from its version to [`SCHEMA_VERSION`], one transaction per step.
fn migrate(conn: &mut Connection) -> Result<()> {
    let version = user_version(conn)?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        return Err(StorageError::Format(
            "the index database has no schema (was `nvr init` interrupted?)".into(),
        ));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // A step may rebuild a table (SQLite cannot change a constraint in place), which needs
    // foreign keys off, and that can only be switched outside a transaction. Each step checks
    // them before it commits.
    conn.pragma_update(None, "foreign_keys", "off")?;
    let steps = apply_migrations(conn, version);
    conn.pragma_update(None, "foreign_keys", "on")?;
    steps
}

/// Applies the migrations after `version`, one transaction each.
fn apply_migrations(conn: &mut Connection, from: i64) -> Result<()> {
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        let violations: Vec<(String, Option<i64>, String)> = tx
            .prepare(FOREIGN_KEY_CHECK)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if let Some((table, rowid, parent)) = violations.first() {
            return Err(StorageError::Format(format!(
                "migrating the index to version {version} would break {} foreign key(s), \
                 e.g. row {} of {table} referencing {parent}; this step was not applied",
                violations.len(),
                rowid.map_or_else(|| "?".to_owned(), |r| r.to_string())
            )));
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "index database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
