//! The recorder's signing keys over time: which key signs now (DATA_DIR/signing.key, checked
//! against the index's `signing_keys` history, where every key used is kept with its dates),
//! rotation (`nvr key rotate`), and finishing a rotation that a crash interrupted.
//!
//! Rotation, under the exclusive `flock` of DATA_DIR/signing.lock (one at a time):
//! 1. the new key is written to DATA_DIR/signing.key.new (0600, fsynced with its directory);
//! 2. one index transaction retires the current key, records the new one and appends the
//!    `signing_key_rotate` audit entry;
//! 3. signing.key.new is renamed over signing.key, which deletes the old private key (only its
//!    public key stays, in the index, to check what it signed).
//!
//! The index says which key is current. A crash after 2 leaves signing.key.new holding the
//! current key: whoever loads the key next finishes the rename. A crash before 2 leaves a
//! signing.key.new that is not current and is never used (the next rotation replaces it). A
//! signing.key that the index does not know at all (replaced or lost behind the recorder's
//! back) is recorded as the current key with a `signing_key_adopt` audit entry; one the index
//! knows as retired is refused.
//!
//! A process that loaded the key (a running `nvr serve`) looks up the current key in the index
//! each time it signs, so it signs with the new key from the first chain head or export after
//! the rotation, without a restart.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{FlockOperation, flock};

use crate::db::{
    AuditNote, Database, KeyChange, SIGNING_KEY_ADOPT_ACTION, SIGNING_KEY_ROTATE_ACTION,
    SigningKeyRow,
};
use crate::error::IndexContext;
use crate::error::{Result, StorageError};
use crate::keys::{sync_dir, write_secret_file};
use crate::signing::{Fingerprint, RecorderKey, SIGNING_KEY_FILE, generate_pkcs8};

/// A rotation's new key until it is current and renamed over signing.key.
pub const NEW_SIGNING_KEY_FILE: &str = "signing.key.new";
/// Held (`flock`) by a rotation for its whole length.
pub const ROTATION_LOCK_FILE: &str = "signing.lock";

/// How many times a load re-reads the index and signing.key when they disagree (a rotation in
/// another process between its commit and its rename) before it records the file's key.
const LOAD_ATTEMPTS: usize = 3;

/// The key that signs now, with its row in the history.
#[derive(Debug)]
pub struct ActiveKey {
    id: i64,
    key: RecorderKey,
}

impl ActiveKey {
    /// Its id in the history (`signing_keys.id`), recorded with every chain head it signs.
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message)
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.key.fingerprint()
    }

    pub fn public_key_pem(&self) -> String {
        self.key.public_key_pem()
    }
}

/// What `nvr key rotate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub retired: SigningKeyRow,
    pub current: SigningKeyRow,
}

/// The current signing key of a data directory, as one process holds it.
#[derive(Debug)]
pub struct SigningKeys {
    dir: PathBuf,
    active: Mutex<Arc<ActiveKey>>,
}

impl SigningKeys {
    /// Loads the current key (creating DATA_DIR/signing.key if missing), finishing an
    /// interrupted rotation and recording the key in the history as needed.
    pub fn open(dir: &Path, db: &Database, now_90k: i64) -> Result<Self> {
        Ok(SigningKeys {
            dir: dir.to_owned(),
            active: Mutex::new(Arc::new(load(dir, db, now_90k)?)),
        })
    }

    fn loaded(&self) -> Arc<ActiveKey> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The key to sign with now: the one loaded, or the one another process (`nvr key rotate`)
    /// made current since. If the newer key cannot be loaded yet, the loaded one signs (its
    /// signatures stay checkable: heads name their key) and the failure is logged.
    pub fn active(&self, db: &Database, now_90k: i64) -> Arc<ActiveKey> {
        let loaded = self.loaded();
        match db.current_signing_key() {
            Ok(Some(c)) if c.id != loaded.id => match load(&self.dir, db, now_90k) {
                Ok(k) => {
                    tracing::info!(fingerprint = %k.fingerprint(), "signing with the new key");
                    let k = Arc::new(k);
                    *self.active.lock().unwrap_or_else(|p| p.into_inner()) = k.clone();
                    k
                }
                Err(e) => {
                    tracing::warn!(error = %e, "loading the new signing key failed; signing with the previous one");
                    loaded
                }
            },
            Ok(_) => loaded,
            Err(e) => {
                tracing::warn!(error = %e, "reading the current signing key from the index failed");
                loaded
            }
        }
    }

    /// Replaces the current key by a new random one (see the module comment), with the audit
    /// entry naming `actor`. Bundles and heads the old key signed stay verifiable.
    pub fn rotate(&self, db: &Database, now_90k: i64, actor: &str) -> Result<Rotation> {
        let _lock = RotationLock::acquire(&self.dir)?;
        // Settle the state first: this finishes an earlier rotation a crash interrupted, so a
        // signing.key.new left now is one that never became current.
        let old = load(&self.dir, db, now_90k)?;
        let new_path = self.dir.join(NEW_SIGNING_KEY_FILE);
        match fs::remove_file(&new_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StorageError::io(&new_path)(e));
            }
            _ => {}
        }
        let pkcs8 = generate_pkcs8()?;
        let new = RecorderKey::from_pkcs8(&pkcs8)?;
        write_secret_file(&new_path, &pkcs8)?;
        let change = db.make_signing_key_current(&new.public_key(), now_90k, |retired, current| {
            AuditNote::new(
                now_90k,
                actor,
                SIGNING_KEY_ROTATE_ACTION,
                format!("signing_key:{}", current.id),
                serde_json::json!({
                    "retired": retired.fingerprint().to_string(),
                    "current": current.fingerprint().to_string(),
                }),
            )
        });
        let (retired, current) = match change {
            Ok(KeyChange::Replaced { retired, current }) => (retired, current),
            Ok(other) => {
                let _ = fs::remove_file(&new_path);
                return Err(StorageError::Key(format!(
                    "rotating from key {} did not replace it ({other:?})",
                    old.fingerprint()
                )));
            }
            Err(e) => {
                let _ = fs::remove_file(&new_path);
                return Err(e);
            }
        };
        if !finish_rotation(&self.dir, &current)?
            && RecorderKey::load(&self.dir.join(SIGNING_KEY_FILE))?.public_key()
                != current.public_key
        {
            return Err(StorageError::Key(format!(
                "the new key {} is current in the index but {} does not hold it",
                current.fingerprint(),
                SIGNING_KEY_FILE
            )));
        }
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(ActiveKey {
            id: current.id,
            key: new,
        });
        Ok(Rotation { retired, current })
    }
}

/// The key in signing.key, reconciled with the index's current key.
fn load(dir: &Path, db: &Database, now_90k: i64) -> Result<ActiveKey> {
    for attempt in 1..=LOAD_ATTEMPTS {
        let current = db
            .current_signing_key()
            .context(|| "reading the current signing key (signing_keys)".to_owned())?;
        let key = RecorderKey::load_or_create(dir)?;
        let pk = key.public_key();
        let Some(current) = current else {
            // A new data directory, or one from before the history: its key is the first.
            let change = db
                .make_signing_key_current(&pk, now_90k, adopt_note(now_90k))
                .context(|| {
                    "adopting signing.key as the current key (signing_keys, audit_log)".to_owned()
                })?;
            return Ok(ActiveKey {
                id: change.current().id,
                key,
            });
        };
        if current.public_key == pk {
            return Ok(ActiveKey {
                id: current.id,
                key,
            });
        }
        if finish_rotation(dir, &current)? || attempt < LOAD_ATTEMPTS {
            continue; // Read both again: a rotation may be between its commit and its rename.
        }
        let change = db
            .make_signing_key_current(&pk, now_90k, adopt_note(now_90k))
            .context(|| {
                "adopting signing.key as the current key (signing_keys, audit_log)".to_owned()
            })?;
        if let KeyChange::Replaced { retired, current } = &change {
            tracing::warn!(
                previous = %retired.fingerprint(),
                adopted = %current.fingerprint(),
                "signing.key was replaced outside `nvr key rotate`; recorded its key as the current one"
            );
        }
        return Ok(ActiveKey {
            id: change.current().id,
            key,
        });
    }
    Err(StorageError::Key(
        "signing.key kept changing while it was loaded".into(),
    ))
}

/// The audit entry of a key found in signing.key that the index did not know.
fn adopt_note(now_90k: i64) -> impl FnOnce(&SigningKeyRow, &SigningKeyRow) -> AuditNote {
    move |retired, new| {
        AuditNote::new(
            now_90k,
            "system",
            SIGNING_KEY_ADOPT_ACTION,
            format!("signing_key:{}", new.id),
            serde_json::json!({
                "retired": retired.fingerprint().to_string(),
                "current": new.fingerprint().to_string(),
                "reason": "signing.key holds a key the index did not know",
            }),
        )
    }
}

/// Renames signing.key.new over signing.key if it holds `current` (a rotation committed it
/// but did not rename it yet). Returns whether it did.
fn finish_rotation(dir: &Path, current: &SigningKeyRow) -> Result<bool> {
    let new_path = dir.join(NEW_SIGNING_KEY_FILE);
    // Missing, or still being written by a rotation that has not committed: not current.
    let Ok(pending) = RecorderKey::load(&new_path) else {
        return Ok(false);
    };
    if pending.public_key() != current.public_key {
        return Ok(false);
    }
    match fs::rename(&new_path, dir.join(SIGNING_KEY_FILE)) {
        Ok(()) => {}
        // Another process finished it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(StorageError::io(&new_path)(e)),
    }
    sync_dir(dir)?;
    Ok(true)
}

/// The exclusive lock of a rotation, held until dropped.
struct RotationLock {
    _file: fs::File,
}

impl RotationLock {
    fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(ROTATION_LOCK_FILE);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(StorageError::io(&path))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(RotationLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(StorageError::Conflict(format!(
                "another key rotation is running on {}",
                dir.display()
            ))),
            Err(e) => Err(StorageError::io(&path)(e.into())),
        }
    }
}

#[cfg(test)]
mod tests;
