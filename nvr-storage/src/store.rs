//! The data directory as one handle: paths, the index, the keyring, and the views of segments
//! being written right now, one per stream (so playback can reach the last seconds before they
//! are sealed).
//!
//! ```text
//! DATA_DIR/                       (0700)
//!   master.key                    root key (0600)
//!   index.db (+ -wal, -shm)       SQLite index
//!   keys/<epoch id>.key           wrapped epoch keys (0600)
//!   segments/<camera id>/<segment id>.seg   encrypted segment files of any stream (0600)
//! ```

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use nvr_core::{
    CameraId, CameraUrl, Clock, SegmentId, Stream, StreamKey, VideoParams, validate_camera_name,
};

use crate::db::{AuditNote, CameraRetention, Database, DeletedCamera, NewCamera};
use crate::error::{IndexContext, Result, StorageError};
use crate::frame_index::FrameInfo;
use crate::keys::{self, CAMERA_PASSWORD_PURPOSE, Keyring, MasterKey, SETUP_CODE_PURPOSE};
use crate::signing::RecorderKey;
use crate::signing_keys::{ActiveKey, Rotation, SigningKeys};

// The typed operations of each domain, beside the ones below that also touch files or keys.
mod accounts;
mod cameras;
mod evidence;
mod motion;

const MASTER_KEY_FILE: &str = "master.key";
const INDEX_FILE: &str = "index.db";
const KEYS_DIR: &str = "keys";
const SEGMENTS_DIR: &str = "segments";

/// What readers may see of a segment still being written.
#[derive(Clone, Debug)]
pub struct OpenSegmentState {
    pub segment_id: SegmentId,
    pub run_id: SegmentId,
    pub video_params_id: i64,
    pub params: Arc<VideoParams>,
    /// Wall-time estimate of the first frame.
    pub start_90k: i64,
    /// Frames whose duration is known (all but the newest), with payload offsets.
    pub frames: Vec<FrameInfo>,
    /// Plaintext bytes sealed into the file so far: frames ending beyond this are not readable.
    pub sealed_plaintext_len: u64,
    pub video_bytes: u64,
    pub file_bytes: u64,
}

impl OpenSegmentState {
    /// The prefix of `frames` a reader can decrypt now.
    pub fn readable_frames(&self) -> &[FrameInfo] {
        let n = self.frames.partition_point(|f| {
            f.data_offset + u64::from(f.size_bytes) <= self.sealed_plaintext_len
        });
        &self.frames[..n]
    }

    /// Media duration of the readable frames.
    pub fn readable_duration_90k(&self) -> i64 {
        self.readable_frames()
            .iter()
            .map(|f| i64::from(f.duration_90k))
            .sum()
    }
}

/// Space on the data directory's file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    /// What an unprivileged writer may still use (`f_bavail`).
    pub available_bytes: u64,
    pub total_bytes: u64,
}

/// The connection settings of a camera, as an add or an edit gives them (all fields; the
/// caller merges a partial change).
#[derive(Clone, Copy)]
pub struct CameraEdit<'a> {
    pub name: &'a str,
    /// The main stream's URL.
    pub url: &'a CameraUrl,
    /// The sub-stream's URL; `None`: no sub-stream (an edit removing it keeps its recordings).
    pub sub_url: Option<&'a CameraUrl>,
    /// Record the sub-stream (else it is pulled for live view only).
    pub record_sub: bool,
    pub username: Option<&'a str>,
    /// `None` keeps the stored password, `Some("")` clears it, else replaces it (an add takes
    /// `None` and `Some("")` as no password).
    pub password: Option<&'a str>,
    /// Ignored by an add: a new camera is enabled.
    pub enabled: bool,
    /// Record the main stream's audio (off unless an admin switches it on).
    pub record_audio: bool,
}

impl<'a> CameraEdit<'a> {
    /// An enabled camera with a main stream only and no credentials; change fields with
    /// struct update syntax.
    pub fn new(name: &'a str, url: &'a CameraUrl) -> Self {
        CameraEdit {
            name,
            url,
            sub_url: None,
            record_sub: true,
            username: None,
            password: None,
            enabled: true,
            record_audio: false,
        }
    }
}

impl std::fmt::Debug for CameraEdit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraEdit")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("sub_url", &self.sub_url)
            .field("record_sub", &self.record_sub)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("enabled", &self.enabled)
            .field("record_audio", &self.record_audio)
            .finish()
    }
}

/// Shared, lockable view of one open segment.
pub type OpenSegmentView = Arc<RwLock<OpenSegmentState>>;

/// A data directory opened for use.
pub struct Store {
    dir: PathBuf,
    db: Arc<Database>,
    /// Appends the entries of [`Store::audit`] off the caller's thread.
    audit_writer: crate::audit_writer::AuditWriter,
    keyring: Keyring,
    signing_keys: SigningKeys,
    clock: Arc<dyn Clock>,
    open_segments: Mutex<HashMap<StreamKey, OpenSegmentView>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn mkdir_private(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(StorageError::io(path))
}

impl Store {
    /// Creates a new data directory: master key, index and subdirectories. Refuses to touch a
    /// directory that already holds a master key or index.
    pub fn init(dir: &Path, clock: &dyn Clock) -> Result<()> {
        mkdir_private(dir)?;
        for existing in [MASTER_KEY_FILE, INDEX_FILE] {
            if dir.join(existing).exists() {
                return Err(StorageError::AlreadyExists(format!(
                    "{} (this data directory is already initialized)",
                    dir.join(existing).display()
                )));
            }
        }
        mkdir_private(&dir.join(KEYS_DIR))?;
        mkdir_private(&dir.join(SEGMENTS_DIR))?;
        MasterKey::create(&dir.join(MASTER_KEY_FILE))?;
        RecorderKey::load_or_create(dir)?;
        let mut uuid = [0u8; 16];
        keys::random_bytes(&mut uuid)?;
        let index_path = dir.join(INDEX_FILE);
        Database::create(&index_path, &uuid, clock.realtime().0)
            .context(|| format!("creating the index {}", index_path.display()))?;
        keys::sync_dir(dir)?;
        Ok(())
    }

    /// Opens an initialized data directory (applying index migrations). Does not recover open
    /// segments: the server calls [`crate::recovery::recover`] before recording.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Store>> {
        let mk_path = dir.join(MASTER_KEY_FILE);
        let index_path = dir.join(INDEX_FILE);
        if !mk_path.exists() || !index_path.exists() {
            return Err(StorageError::NotInitialized {
                path: dir.to_owned(),
            });
        }
        let master = MasterKey::load(&mk_path)?;
        let db = Arc::new(
            Database::open(&index_path)
                .context(|| format!("opening the index {}", index_path.display()))?,
        );
        let signing_keys = SigningKeys::open(dir, &db, clock.realtime().0)?;
        let audit_writer =
            crate::audit_writer::AuditWriter::start(db.clone()).map_err(StorageError::io(dir))?;
        Ok(Arc::new(Store {
            dir: dir.to_owned(),
            db,
            audit_writer,
            keyring: Keyring::new(dir.join(KEYS_DIR), master),
            signing_keys,
            clock,
            open_segments: Mutex::new(HashMap::new()),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index: storage's own modules only. Other crates use the typed operations of
    /// `store/` (accounts, cameras, evidence, motion) and of this file.
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// The whole index, for tests and benchmarks that set up or inspect state no operation
    /// exposes (the `test-support` feature, enabled by dev-dependencies only).
    /// `tests/layering.rs` keeps it out of every crate's non-test code.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn db_for_tests(&self) -> &Database {
        &self.db
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The recorder's current Ed25519 signing key (a rotation by another process is picked up
    /// here: see `signing_keys.rs`).
    pub fn signing_key(&self) -> Arc<ActiveKey> {
        self.signing_keys.active(&self.db, self.clock.realtime().0)
    }

    /// Every signing key the recorder has used, oldest first, with the dates it was in use.
    pub fn signing_key_history(&self) -> Result<Vec<crate::db::SigningKeyRow>> {
        self.db
            .signing_keys()
            .context(|| "listing signing keys (signing_keys)".to_owned())
    }

    /// `nvr key rotate`: a new signing key from now on, audited as `actor`.
    pub fn rotate_signing_key(&self, actor: &str) -> Result<Rotation> {
        self.signing_keys
            .rotate(&self.db, self.clock.realtime().0, actor)
    }

    /// Every camera, by id.
    pub fn cameras(&self) -> Result<Vec<crate::db::CameraRow>> {
        self.db
            .cameras()
            .context(|| "listing cameras (cameras, streams)".to_owned())
    }

    /// The data directory's random id, hex: names this recorder in manifests.
    pub fn recorder_id(&self) -> Result<String> {
        Ok(hex::encode(self.db.data_dir_uuid().context(|| {
            "reading the recorder's id (meta)".to_owned()
        })?))
    }

    /// Appends to the tamper-evident audit log, now, without waiting for the index's writer:
    /// for entries that record a read or an attempt (a change records its entry in its own
    /// transaction). Entries are written in the order made (see `audit_writer.rs`); failures
    /// are logged, not returned: an audit entry must never be the reason an operation fails
    /// half-way.
    pub fn audit(&self, actor: &str, action: &str, object: &str, detail: serde_json::Value) {
        let now = self.clock.realtime().0;
        self.audit_writer
            .append(AuditNote::new(now, actor, action, object, detail));
    }

    /// Waits until every entry of [`Store::audit`] made before this call is in the index:
    /// readers of the audit log call it first.
    pub fn flush_audit(&self) {
        self.audit_writer.flush();
    }

    /// Signs the stream's current chain head if it is newer than the last signed one.
    pub fn sign_chain_head(&self, stream: StreamKey) -> Result<Option<crate::db::ChainHeadRow>> {
        let context =
            || format!("signing the chain head of camera {stream} (chain_heads, streams)");
        let Some((segment, chain)) = self.db.stream_chain_head(stream).context(context)? else {
            return Ok(None);
        };
        if let Some(h) = self.db.latest_chain_head(stream).context(context)?
            && h.segment_id == segment
        {
            return Ok(Some(h));
        }
        let now = self.clock.realtime().0;
        let key = self.signing_key();
        let sig = key.sign(&crate::integrity::chain_head_message(
            stream.stream,
            stream.camera.0,
            segment.0,
            &chain,
            now,
        ));
        let id = self
            .db
            .insert_chain_head(stream, segment, &chain, now, &sig, key.id())
            .context(context)?;
        Ok(Some(crate::db::ChainHeadRow {
            id,
            camera_id: stream.camera,
            stream: stream.stream,
            segment_id: segment,
            chain_sha256: chain,
            signed_90k: now,
            signature: sig.to_vec(),
            signing_key_id: Some(key.id()),
        }))
    }

    /// The data directory's file system: bytes available to us and its total size.
    pub fn disk_space(&self) -> Result<DiskSpace> {
        let vfs = rustix::fs::statvfs(&self.dir).map_err(|e| StorageError::Io {
            path: self.dir.clone(),
            source: e.into(),
        })?;
        Ok(DiskSpace {
            available_bytes: vfs.f_bavail.saturating_mul(vfs.f_frsize),
            total_bytes: vfs.f_blocks.saturating_mul(vfs.f_frsize),
        })
    }

    pub fn segments_root(&self) -> PathBuf {
        self.dir.join(SEGMENTS_DIR)
    }

    pub fn camera_dir(&self, camera: CameraId) -> PathBuf {
        self.segments_root().join(camera.0.to_string())
    }

    pub fn segment_path(&self, camera: CameraId, segment: SegmentId) -> PathBuf {
        self.camera_dir(camera).join(format!("{}.seg", segment.0))
    }

    pub(crate) fn ensure_camera_dir(&self, camera: CameraId) -> Result<PathBuf> {
        let d = self.camera_dir(camera);
        if !d.exists() {
            mkdir_private(&d)?;
            keys::sync_dir(&self.segments_root())?;
        }
        Ok(d)
    }

    /// Validates and inserts a camera with its streams, sealing its password under the master
    /// key, with the audit entry `audit` makes from its id.
    pub fn add_camera(
        &self,
        c: &CameraEdit<'_>,
        audit: impl FnOnce(CameraId) -> AuditNote,
    ) -> Result<CameraId> {
        let (name, username) = (c.name, c.username);
        let password = c.password.filter(|p| !p.is_empty());
        validate_camera_name(name).map_err(StorageError::InvalidArgument)?;
        if password.is_some() && username.is_none() {
            return Err(StorageError::InvalidArgument(
                "a camera password needs a username".into(),
            ));
        }
        let sealed = password
            .map(|p| {
                keys::seal_secret(self.keyring.master(), CAMERA_PASSWORD_PURPOSE, p.as_bytes())
            })
            .transpose()?;
        self.db
            .insert_camera(
                &NewCamera {
                    name,
                    url: c.url.as_str(),
                    username,
                    password_sealed: sealed.as_deref(),
                    created_90k: self.clock.realtime().0,
                    sub_url: c.sub_url.map(CameraUrl::as_str),
                    record_sub: c.record_sub,
                    record_audio: c.record_audio,
                },
                audit,
            )
            .context(|| format!("adding camera {name:?} (cameras, streams, audit_log)"))
    }

    /// Changes a camera, with its audit entry. `password`: `None` keeps it, `Some("")`
    /// clears it, else replaces it. `retention`: new overrides of the streams it names.
    pub fn update_camera(
        &self,
        id: CameraId,
        edit: &CameraEdit<'_>,
        retention: &[(Stream, CameraRetention)],
        audit: AuditNote,
    ) -> Result<()> {
        validate_camera_name(edit.name).map_err(StorageError::InvalidArgument)?;
        let context = || format!("changing camera {id} (cameras, streams, audit_log)");
        let sealed = match edit.password {
            None => self.db.camera_password_sealed(id).context(context)?,
            Some("") => None,
            Some(p) => Some(keys::seal_secret(
                self.keyring.master(),
                CAMERA_PASSWORD_PURPOSE,
                p.as_bytes(),
            )?),
        };
        if sealed.is_some() && edit.username.is_none() {
            return Err(StorageError::InvalidArgument(
                "a camera password needs a username".into(),
            ));
        }
        self.db
            .update_camera(
                id,
                &crate::db::CameraUpdate {
                    name: edit.name,
                    url: edit.url.as_str(),
                    username: edit.username,
                    password_sealed: sealed.as_deref(),
                    enabled: edit.enabled,
                    sub_url: edit.sub_url.map(CameraUrl::as_str),
                    record_sub: edit.record_sub,
                    record_audio: edit.record_audio,
                },
                retention,
                audit,
            )
            .context(context)
    }

    /// Deletes a camera with every segment of it and its epoch keys, and the audit entry
    /// `audit` makes from what went, unless evidence holds cover any of its footage (`Held`,
    /// nothing deleted). The index change and the audit entry are one transaction; the files
    /// are unlinked and the keys shredded after it commits (a crash in between leaves garbage
    /// rows the next start unlinks). The caller must have stopped its recording first.
    pub fn delete_camera(
        &self,
        id: CameraId,
        audit: impl FnOnce(&DeletedCamera) -> AuditNote,
    ) -> Result<DeletedCamera> {
        if Stream::ALL
            .iter()
            .any(|&s| self.open_segment(id.stream(s)).is_some())
        {
            return Err(StorageError::InvalidArgument(format!(
                "camera {id} is still recording; stop it first"
            )));
        }
        let deleted = self.db.delete_camera(id, audit).context(|| {
            format!("deleting camera {id} (cameras, streams, segments, motion, audit_log)")
        })?;
        crate::recovery::collect_garbage(self)?;
        for &epoch in &deleted.epochs {
            self.keyring.shred(epoch)?;
        }
        let dir = self.camera_dir(id);
        if dir.exists() {
            fs::remove_dir(&dir).map_err(StorageError::io(&dir))?;
            keys::sync_dir(&self.segments_root())?;
        }
        Ok(deleted)
    }

    /// The first-run setup code while no account exists: the stored one, or a new one made by
    /// `make` and stored (sealed under the master key) for `nvr init` and every `nvr serve` to
    /// print the same. `None` once an account exists. The code is cleared in the transaction
    /// that creates the first account.
    pub fn setup_code(&self, make: impl FnOnce() -> String) -> Result<Option<String>> {
        let context = || "reading or storing the setup code (users, meta)".to_owned();
        if self.db.user_count().context(context)? > 0 {
            return Ok(None);
        }
        if let Some(sealed) = self.db.setup_code_sealed().context(context)? {
            let plain = keys::open_secret(self.keyring.master(), SETUP_CODE_PURPOSE, &sealed)?;
            return String::from_utf8(plain)
                .map(Some)
                .map_err(|_| StorageError::Key("setup code is not UTF-8".into()));
        }
        let code = make();
        let sealed = keys::seal_secret(self.keyring.master(), SETUP_CODE_PURPOSE, code.as_bytes())?;
        self.db
            .set_setup_code_sealed(Some(&sealed))
            .context(context)?;
        Ok(Some(code))
    }

    /// The camera's RTSP password in clear, for connecting. Never log or return it.
    pub fn camera_password(&self, camera: CameraId) -> Result<Option<String>> {
        let Some(sealed) = self
            .db
            .camera_password_sealed(camera)
            .context(|| format!("reading camera {camera}'s password (cameras)"))?
        else {
            return Ok(None);
        };
        let plain = keys::open_secret(self.keyring.master(), CAMERA_PASSWORD_PURPOSE, &sealed)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| StorageError::Key("camera password is not UTF-8".into()))
    }

    pub(crate) fn set_open_segment(&self, stream: StreamKey, view: Option<OpenSegmentView>) {
        let mut m = self.open_segments.lock().unwrap_or_else(|p| p.into_inner());
        match view {
            Some(v) => {
                m.insert(stream, v);
            }
            None => {
                m.remove(&stream);
            }
        }
    }

    /// The segment `stream` is writing now, if any.
    pub fn open_segment(&self, stream: StreamKey) -> Option<OpenSegmentView> {
        self.open_segments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&stream)
            .cloned()
    }
}
