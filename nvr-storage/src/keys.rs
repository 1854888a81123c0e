//! The key hierarchy: the master key file, random per-camera-per-day epoch keys wrapped by it in
//! files of their own, and the sealing of camera passwords.
//!
//! ```text
//! master.key (0600)           32 random bytes (file: "NVRMKEY1" || key)
//!   |- HKDF "nvr/v1/wrap"         -> wraps epoch keys     keys/<epoch id>.key (0600)
//!   |                                  "NVREPK1\0" || nonce(12) || AES-GCM(epoch key) || tag
//!   |                                  AAD = "nvr/v1/epoch" || epoch id || camera id
//!   |- HKDF "nvr/v1/camera-password" -> seals camera passwords stored in the index
//! epoch key --HKDF(salt, "nvr/v1/seg" || camera || segment)--> segment key (never stored)
//! ```
//! Epoch keys live in their own small files, not in SQLite, because SQLite's WAL and free pages
//! keep old bytes around: deleting an epoch key file at retention expiry shreds that camera-day
//! for good. A key file is fsynced (file and directory) before any segment uses it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ring::aead::{Aad, Nonce};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Result, StorageError};
use crate::segment::crypto::{KEY_LEN, aes_key, hkdf_sha256};

const MASTER_MAGIC: &[u8; 8] = b"NVRMKEY1";
const EPOCH_MAGIC: &[u8; 8] = b"NVREPK1\0";
const NONCE_LEN: usize = 12;
const EPOCH_FILE_LEN: usize = 8 + NONCE_LEN + KEY_LEN + 16;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| StorageError::Key("the system random number generator failed".into()))
}

/// Writes a new file with mode 0600, fsyncs it and its directory. Fails if it exists. A failed
/// write (a full disk) removes the file again: a short key file would refuse every later try.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(StorageError::io(path))?;
    if let Err(e) = f.write_all(contents).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = fs::remove_file(path);
        return Err(StorageError::io(path)(e));
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory so a file created or removed in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io(dir))
}

/// The root key of a data directory.
pub struct MasterKey {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Creates a new random master key file (mode 0600). Fails if one exists.
    pub fn create(path: &Path) -> Result<Self> {
        let mut key = [0u8; KEY_LEN];
        random_bytes(&mut key)?;
        let mut contents = MASTER_MAGIC.to_vec();
        contents.extend_from_slice(&key);
        write_secret_file(path, &contents)?;
        Ok(MasterKey { key })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let b = fs::read(path).map_err(StorageError::io(path))?;
        if b.len() != 8 + KEY_LEN || &b[..8] != MASTER_MAGIC {
            return Err(StorageError::Key(format!(
                "{} is not a master key file",
                path.display()
            )));
        }
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&b[8..]);
        Ok(MasterKey { key })
    }

    fn subkey(&self, purpose: &[u8]) -> [u8; KEY_LEN] {
        hkdf_sha256(&self.key, b"", &[purpose])
    }

    /// A short public fingerprint of the key (first 8 bytes of SHA-256, hex), for reports.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.key);
        hex::encode(&d.as_ref()[..8])
    }
}

/// Seals a short secret (a camera password) under the master key. Output: nonce || ct || tag.
pub fn seal_secret(master: &MasterKey, purpose: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let key = aes_key(&master.subkey(purpose));
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(purpose),
        &mut buf,
    )
    .map_err(|_| StorageError::Key("sealing failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`seal_secret`] sealed.
pub fn open_secret(master: &MasterKey, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(StorageError::Key("sealed secret is truncated".into()));
    }
    let key = aes_key(&master.subkey(purpose));
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let mut buf = sealed[NONCE_LEN..].to_vec();
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose),
            &mut buf,
        )
        .map_err(|_| StorageError::Key("sealed secret failed authentication".into()))?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// Purpose label of camera passwords sealed with [`seal_secret`].
pub const CAMERA_PASSWORD_PURPOSE: &[u8] = b"nvr/v1/camera-password";
/// Purpose of the key that seals the first-run setup code.
pub const SETUP_CODE_PURPOSE: &[u8] = b"nvr/v1/setup-code";

/// Unwrapped epoch keys by (epoch id, camera id).
type KeyCache = HashMap<(i64, i64), Arc<[u8; KEY_LEN]>>;

/// Epoch keys: creation, unwrapping (cached), and shredding.
pub struct Keyring {
    dir: PathBuf,
    wrap_key: ring::aead::LessSafeKey,
    master: MasterKey,
    /// Unwrapped keys by (epoch id, camera id): the camera is part of the key's identity.
    cache: Mutex<KeyCache>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(dir: PathBuf, master: MasterKey) -> Self {
        let wrap_key = aes_key(&master.subkey(b"nvr/v1/wrap"));
        Keyring {
            dir,
            wrap_key,
            master,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub fn epoch_path(&self, epoch_id: i64) -> PathBuf {
        self.dir.join(format!("{epoch_id}.key"))
    }

    fn aad(epoch_id: i64, camera_id: i64) -> Vec<u8> {
        let mut a = b"nvr/v1/epoch".to_vec();
        a.extend_from_slice(&epoch_id.to_be_bytes());
        a.extend_from_slice(&camera_id.to_be_bytes());
        a
    }

    /// Creates a new random epoch key, wraps it, and makes the file durable before returning.
    pub fn create_epoch(&self, epoch_id: i64, camera_id: i64) -> Result<Arc<[u8; KEY_LEN]>> {
        let mut key = [0u8; KEY_LEN];
        random_bytes(&mut key)?;
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let mut buf = key.to_vec();
        self.wrap_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(epoch_id, camera_id)),
                &mut buf,
            )
            .map_err(|_| StorageError::Key("wrapping epoch key failed".into()))?;
        let mut contents = EPOCH_MAGIC.to_vec();
        contents.extend_from_slice(&nonce);
        contents.extend_from_slice(&buf);
        write_secret_file(&self.epoch_path(epoch_id), &contents)?;
        let key = Arc::new(key);
        self.lock().insert((epoch_id, camera_id), key.clone());
        Ok(key)
    }

    /// Returns the unwrapped epoch key, reading and authenticating its file on first use.
    pub fn epoch_key(&self, epoch_id: i64, camera_id: i64) -> Result<Arc<[u8; KEY_LEN]>> {
        if let Some(k) = self.lock().get(&(epoch_id, camera_id)) {
            return Ok(k.clone());
        }
        let path = self.epoch_path(epoch_id);
        let b = fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StorageError::Key(format!(
                    "epoch key {epoch_id} of camera {camera_id} is missing ({}): its footage \
                     cannot be decrypted",
                    path.display()
                ))
            } else {
                StorageError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        if b.len() != EPOCH_FILE_LEN || &b[..8] != EPOCH_MAGIC {
            return Err(StorageError::Key(format!(
                "{} is not an epoch key file",
                path.display()
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[8..8 + NONCE_LEN]);
        let mut buf = b[8 + NONCE_LEN..].to_vec();
        let plain = self
            .wrap_key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(epoch_id, camera_id)),
                &mut buf,
            )
            .map_err(|_| {
                StorageError::Key(format!(
                    "epoch key {epoch_id} of camera {camera_id} failed authentication (wrong \
                     master key, or a key file from another data directory)"
                ))
            })?;
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(plain);
        let key = Arc::new(key);
        self.lock().insert((epoch_id, camera_id), key.clone());
        Ok(key)
    }

    /// Deletes an epoch key file for good: every segment encrypted under it becomes unreadable.
    pub fn shred(&self, epoch_id: i64) -> Result<()> {
        self.lock().retain(|(e, _), _| *e != epoch_id);
        let path = self.epoch_path(epoch_id);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Io { path, source: e }),
        }
    }

    /// The ids of the epoch key files present, in no particular order.
    pub fn epoch_file_ids(&self) -> Result<Vec<i64>> {
        let mut ids = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => {
                return Err(StorageError::Io {
                    path: self.dir.clone(),
                    source: e,
                });
            }
        };
        for entry in rd {
            let entry = entry.map_err(StorageError::io(&self.dir))?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".key"))
                .and_then(|n| n.parse::<i64>().ok())
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn master_and_epoch_keys_round_trip_with_0600_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mk_path = dir.path().join("master.key");
        let mk = MasterKey::create(&mk_path).expect("create");
        let mode = fs::metadata(&mk_path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(MasterKey::create(&mk_path).is_err(), "must not overwrite");
        let fp = mk.fingerprint();
        let kr = Keyring::new(dir.path().to_owned(), mk);
        let k1 = kr.create_epoch(1, 10).expect("epoch");
        let mode = fs::metadata(kr.epoch_path(1))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        // A fresh keyring (no cache) unwraps the same key from the file.
        let kr2 = Keyring::new(
            dir.path().to_owned(),
            MasterKey::load(&mk_path).expect("load"),
        );
        assert_eq!(kr2.master().fingerprint(), fp);
        assert_eq!(kr2.epoch_key(1, 10).expect("unwrap"), k1);
        // Bound to its camera: the same file under another camera id fails.
        assert!(kr2.epoch_key(1, 11).is_err());
        kr2.shred(1).expect("shred");
        assert!(kr2.epoch_key(1, 10).is_err());
    }

    #[test]
    fn another_master_key_cannot_unwrap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Keyring::new(
            dir.path().to_owned(),
            MasterKey::create(&dir.path().join("a")).expect("a"),
        );
        a.create_epoch(5, 1).expect("epoch");
        let b = Keyring::new(
            dir.path().to_owned(),
            MasterKey::create(&dir.path().join("b")).expect("b"),
        );
        let e = b.epoch_key(5, 1).expect_err("must fail");
        assert!(e.to_string().contains("authentication"), "{e}");
    }

    #[test]
    fn secrets_round_trip_and_detect_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mk = MasterKey::create(&dir.path().join("m")).expect("m");
        let sealed = seal_secret(&mk, CAMERA_PASSWORD_PURPOSE, b"hunter2").expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            open_secret(&mk, CAMERA_PASSWORD_PURPOSE, &sealed).expect("open"),
            b"hunter2"
        );
        let mut bad = sealed.clone();
        bad[14] ^= 1;
        assert!(open_secret(&mk, CAMERA_PASSWORD_PURPOSE, &bad).is_err());
        assert!(open_secret(&mk, b"other", &sealed).is_err());
    }
}
