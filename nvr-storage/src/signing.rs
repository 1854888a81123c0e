//! The recorder's Ed25519 signing key (ring) and how keys are named: signs chain heads and
//! export manifests so a court can check offline that a bundle is what this recorder recorded.
//! The current key is DATA_DIR/signing.key, PKCS#8, mode 0600 (`signing_keys.rs` keeps the
//! history and rotates it). Every key is named by its [`Fingerprint`], one format everywhere:
//! `nvr init`, `nvr key show`, the status API and page, bundles and `nvr verify`.

use std::path::Path;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::{Result, StorageError};
use crate::keys::write_secret_file;

/// File name of the current key in the data directory.
pub const SIGNING_KEY_FILE: &str = "signing.key";

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 } BIT STRING (32 bytes) }; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// What a fingerprint starts with when shown.
const FINGERPRINT_PREFIX: &str = "SHA256:";

/// The name of an Ed25519 public key: SHA-256 of its raw 32 bytes. Shown as `SHA256:` and 64
/// lowercase hex digits in 16 groups of four joined by `-`, e.g. `SHA256:3f2a-9b01-...`: groups
/// are easy to compare character by character (or read out on the phone), and the string is one
/// word in a shell. [`Fingerprint::parse`] takes it with or without the prefix and separators, in
/// any case, so a plain 64-digit hex SHA-256 (what `sha256sum` of the raw key gives, and what
/// bundles before this format carried) names the same key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a raw Ed25519 public key.
    pub fn of(public_key: &[u8; 32]) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, public_key).as_ref());
        Fingerprint(out)
    }

    /// Parses a fingerprint as typed or pasted: an optional `SHA256:` prefix, then 64 hex
    /// digits in any case, with any `-`, `:` or blanks between them.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            StorageError::InvalidArgument(format!(
                "{text:?} is not a key fingerprint ({why}); expected {FINGERPRINT_PREFIX} and 64 \
                 hex digits, e.g. as `nvr key show` prints it"
            ))
        };
        let trimmed = text.trim();
        let body = match trimmed.get(..FINGERPRINT_PREFIX.len()) {
            Some(p) if p.eq_ignore_ascii_case(FINGERPRINT_PREFIX) => {
                &trimmed[FINGERPRINT_PREFIX.len()..]
            }
            _ => trimmed,
        };
        let digits: String = body
            .chars()
            .filter(|c| !matches!(c, '-' | ':') && !c.is_whitespace())
            .collect();
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(bad(&format!("{c:?} is not a hex digit")));
        }
        if digits.len() != 64 {
            return Err(bad(&format!("{} hex digits instead of 64", digits.len())));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits.to_ascii_lowercase(), &mut out).map_err(|_| bad("not hex"))?;
        Ok(Fingerprint(out))
    }

    pub fn sha256(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(FINGERPRINT_PREFIX)?;
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{}", hex::encode(pair))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self> {
        Fingerprint::parse(s)
    }
}

/// An Ed25519 key pair of the recorder.
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

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key())
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

/// The keys a verifier trusts to have signed for the recorder (pinned out of band): only a
/// bundle signed by one of them is shown to come from the recorder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<Fingerprint>,
}

impl TrustedKeys {
    pub fn new() -> Self {
        TrustedKeys::default()
    }

    pub fn add(&mut self, key: Fingerprint) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Adds every key of a trusted-keys file: one fingerprint per line, or Ed25519 public keys
    /// in PEM (`recorder.pub.pem` of a bundle known to be genuine); `#` starts a comment, blank
    /// lines are skipped. `source` names the file in errors. A file that names no key is refused
    /// (it would pin nothing).
    pub fn add_file_text(&mut self, source: &str, text: &str) -> Result<()> {
        let mut lines = text.lines().enumerate();
        let mut found = 0;
        while let Some((i, raw)) = lines.next() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with("-----BEGIN") {
                let mut block = format!("{line}\n");
                for (_, l) in lines.by_ref() {
                    block.push_str(l.trim());
                    block.push('\n');
                    if l.trim().starts_with("-----END") {
                        break;
                    }
                }
                let key = parse_public_key_pem(&block).ok_or_else(|| {
                    StorageError::InvalidArgument(format!(
                        "{source} line {}: not an Ed25519 public key in PEM",
                        i + 1
                    ))
                })?;
                self.add(Fingerprint::of(&key));
            } else {
                let fp = Fingerprint::parse(line).map_err(|e| {
                    StorageError::InvalidArgument(format!("{source} line {}: {e}", i + 1))
                })?;
                self.add(fp);
            }
            found += 1;
        }
        if found == 0 {
            return Err(StorageError::InvalidArgument(format!(
                "{source} names no key (one fingerprint per line, `#` comments)"
            )));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &Fingerprint) -> bool {
        self.keys.contains(key)
    }

    pub fn keys(&self) -> &[Fingerprint] {
        &self.keys
    }
}

impl FromIterator<Fingerprint> for TrustedKeys {
    fn from_iter<I: IntoIterator<Item = Fingerprint>>(iter: I) -> Self {
        let mut t = TrustedKeys::new();
        for k in iter {
            t.add(k);
        }
        t
    }
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

    #[test]
    fn fingerprint_shows_in_groups_and_parses_in_any_spelling() {
        let key = [7u8; 32];
        let fp = Fingerprint::of(&key);
        let hex = hex::encode(ring::digest::digest(&ring::digest::SHA256, &key));
        let shown = fp.to_string();
        assert_eq!(shown.len(), "SHA256:".len() + 64 + 15, "{shown}");
        assert!(shown.starts_with("SHA256:"), "{shown}");
        assert_eq!(shown["SHA256:".len()..].replace('-', ""), hex);
        assert!(
            shown["SHA256:".len()..]
                .split('-')
                .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit()))
        );
        for spelling in [
            shown.clone(),
            shown.to_uppercase(),
            hex.clone(),
            hex.to_uppercase(),
            format!("sha256:{hex}"),
            shown.replace('-', " "),
            shown.replace('-', ":"),
            format!("  {shown}\n"),
        ] {
            assert_eq!(Fingerprint::parse(&spelling).expect(&spelling), fp);
        }
        for bad in [
            "",
            "SHA256:",
            &hex[..62],
            &format!("{hex}00"),
            &format!("{}g", &hex[..63]),
            "MD5:abcd",
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn trusted_keys_file_takes_fingerprints_pem_and_comments() {
        let a = Fingerprint::of(&[1; 32]);
        let b = Fingerprint::of(&[2; 32]);
        let c = Fingerprint::of(&[3; 32]);
        let text = format!(
            "# the recorder at the gate\n{a}   # since 2026\n\n  {}  \n{}",
            hex::encode(b.sha256()),
            public_key_pem(&[3; 32])
        );
        let mut t = TrustedKeys::new();
        t.add_file_text("keys.txt", &text).expect("parse");
        assert_eq!(t.keys(), &[a, b, c]);
        let mut t = TrustedKeys::new();
        let e = t
            .add_file_text("keys.txt", &format!("{a}\nnot a key\n"))
            .expect_err("bad line");
        assert!(e.to_string().contains("keys.txt line 2"), "{e}");
        let e = t
            .add_file_text("empty.txt", "# nothing\n\n")
            .expect_err("empty");
        assert!(e.to_string().contains("names no key"), "{e}");
    }
}
