//! The recorder's Ed25519 signing key (ring): signs chain heads and export manifests so a court
//! can check offline that a bundle is what this recorder recorded. Made by `nvr init` (or on
//! first use) as DATA_DIR/signing.key, PKCS#8, mode 0600 (`signing_keys.rs` keeps the history
//! and rotates it).

use std::path::Path;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::{Result, StorageError};
use crate::keys::write_secret_file;

/// File name of the key in the data directory.
pub const SIGNING_KEY_FILE: &str = "signing.key";

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 } BIT STRING (32 bytes) }; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The recorder's signing key.
pub struct RecorderKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for RecorderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecorderKey({})", self.fingerprint())
    }
}

impl RecorderKey {
    /// Loads DATA_DIR/signing.key, creating it if missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(SIGNING_KEY_FILE);
        if !path.exists() {
            write_secret_file(&path, &generate_pkcs8()?)?;
        }
        Self::load(&path)
    }

    /// Loads a PKCS#8 key file.
    pub fn load(path: &Path) -> Result<Self> {
        let pkcs8 = std::fs::read(path).map_err(StorageError::io(path))?;
        Self::from_pkcs8(&pkcs8)
            .map_err(|_| StorageError::Key(format!("{} is not an Ed25519 key", path.display())))
    }

    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| StorageError::Key("not an Ed25519 PKCS#8 key".into()))?;
        Ok(RecorderKey { pair })
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }

    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key())
    }

    pub fn public_key_pem(&self) -> String {
        public_key_pem(&self.public_key())
    }
}

/// A new random Ed25519 key, PKCS#8.
pub(crate) fn generate_pkcs8() -> Result<Vec<u8>> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| StorageError::Key("generating a signing key failed".into()))
}

/// SHA-256 of the raw public key, hex: how the recorder's key is named in manifests and reports.
pub fn fingerprint(public_key: &[u8; 32]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, public_key).as_ref())
}

/// The public key as a PEM SubjectPublicKeyInfo, readable by `openssl pkeyutl -pubin`.
pub fn public_key_pem(public_key: &[u8; 32]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(public_key);
    pem::encode(&pem::Pem::new("PUBLIC KEY", der))
}

/// Parses what [`public_key_pem`] writes.
pub fn parse_public_key_pem(text: &str) -> Option<[u8; 32]> {
    let p = pem::parse(text).ok()?;
    let der = p.contents();
    if p.tag() != "PUBLIC KEY" || der.len() != 44 || der[..12] != ED25519_SPKI_PREFIX {
        return None;
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&der[12..]);
    Some(out)
}

/// Checks an Ed25519 signature.
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sign_verify_and_pem_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = RecorderKey::load_or_create(dir.path()).expect("key");
        let mode = std::fs::metadata(dir.path().join(SIGNING_KEY_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = RecorderKey::load_or_create(dir.path()).expect("reload");
        assert_eq!(k.public_key(), again.public_key());
        let sig = k.sign(b"manifest");
        assert!(verify(&k.public_key(), b"manifest", &sig));
        assert!(!verify(&k.public_key(), b"manifesT", &sig));
        let pem = k.public_key_pem();
        assert!(pem.contains("BEGIN PUBLIC KEY"));
        assert_eq!(parse_public_key_pem(&pem), Some(k.public_key()));
    }
}
