//! The recorder's local certificate authority and its HTTPS server certificate (rcgen), kept in
//! DATA_DIR/tls. Browsers on the LAN trust the recorder by installing the CA once; the server
//! certificate is re-issued by the same CA whenever the names or addresses it must cover change.
//!
//! ```text
//! tls/ca.pem       CA certificate (public; what clients install)
//! tls/ca.key       CA private key, PKCS#8 PEM (0600)
//! tls/server.pem   server certificate: CA-signed, SANs = every name and address served
//! tls/server.key   server private key (0600)
//! tls/server.sans  the SANs the server certificate covers, one per line
//! ```
//! Keys are ECDSA P-256 (rcgen's default, with ring). The CA's distinguished name is derived
//! from the data directory's id, so the CA can sign again after a restart without parsing its
//! own certificate.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::error::{Result, StorageError};
use crate::keys::write_secret_file;

/// PEM material for serving HTTPS.
#[derive(Clone)]
pub struct TlsMaterial {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// SHA-256 of the CA certificate (DER), as colon-separated upper-case hex, the way browsers
    /// and `openssl x509 -fingerprint -sha256` show it.
    pub ca_fingerprint_sha256: String,
    pub sans: Vec<String>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_fingerprint_sha256", &self.ca_fingerprint_sha256)
            .field("sans", &self.sans)
            .finish_non_exhaustive()
    }
}

fn tls_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Key(format!("TLS certificate: {e}"))
}

fn ca_params(data_dir_id: &str) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "nvr");
    dn.push(DnType::CommonName, format!("nvr local CA {data_dir_id}"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Twenty years: a recorder lives long, and replacing a CA on every client is costly.
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2044, 1, 1);
    Ok(p)
}

fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn pem_der(pem_text: &str) -> Result<Vec<u8>> {
    pem::parse(pem_text)
        .map(|p| p.into_contents())
        .map_err(|e| tls_err(format!("ca.pem: {e}")))
}

/// The TLS directory of a data directory.
pub fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// Loads the CA and a server certificate covering `sans`, creating the CA on first use and
/// re-issuing the server certificate when it does not cover every one of `sans`.
pub fn ensure(data_dir: &Path, data_dir_id: &str, sans: &[String]) -> Result<TlsMaterial> {
    let dir = tls_dir(data_dir);
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .create(&dir)
            .map_err(StorageError::io(&dir))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(StorageError::io(&dir))?;
    }
    let (ca_pem_path, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    let params = ca_params(data_dir_id)?;
    let (ca_pem, ca_key) = if ca_key_path.exists() {
        let key_pem = fs::read_to_string(&ca_key_path).map_err(StorageError::io(&ca_key_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(tls_err)?;
        let pem = fs::read_to_string(&ca_pem_path).map_err(StorageError::io(&ca_pem_path))?;
        (pem, key)
    } else {
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = params.self_signed(&key).map_err(tls_err)?;
        write_secret_file(&ca_key_path, key.serialize_pem().as_bytes())?;
        let pem = cert.pem();
        replace_file(&ca_pem_path, pem.as_bytes(), false)?;
        (pem, key)
    };

    let wanted: BTreeSet<String> = sans.iter().cloned().collect();
    let sans_path = dir.join("server.sans");
    let covered: BTreeSet<String> = fs::read_to_string(&sans_path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    let fresh = !cert_path.exists() || !key_path.exists() || !wanted.is_subset(&covered);
    let all: Vec<String> = covered.union(&wanted).cloned().collect();
    if fresh {
        let mut sp = CertificateParams::new(all.clone()).map_err(tls_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "nvr");
        dn.push(
            DnType::CommonName,
            all.first().cloned().unwrap_or_else(|| "nvr".into()),
        );
        sp.distinguished_name = dn;
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        sp.use_authority_key_identifier_extension = true;
        // Browsers refuse server certificates valid for more than 825 days (398 days for
        // public CAs, not enforced for locally installed roots); re-issued at start when due.
        let now = std::time::SystemTime::now();
        sp.not_before = now.into();
        sp.not_after = (now + std::time::Duration::from_secs(800 * 86_400)).into();
        let key = KeyPair::generate().map_err(tls_err)?;
        let issuer = Issuer::new(params, &ca_key);
        let cert = sp.signed_by(&key, &issuer).map_err(tls_err)?;
        replace_file(&key_path, key.serialize_pem().as_bytes(), true)?;
        replace_file(&cert_path, cert.pem().as_bytes(), false)?;
        replace_file(&sans_path, all.join("\n").as_bytes(), false)?;
        tracing::info!(sans = ?all, "issued the HTTPS server certificate");
    }
    Ok(TlsMaterial {
        ca_fingerprint_sha256: fingerprint(&pem_der(&ca_pem)?),
        ca_pem,
        server_cert_pem: fs::read_to_string(&cert_path).map_err(StorageError::io(&cert_path))?,
        server_key_pem: fs::read_to_string(&key_path).map_err(StorageError::io(&key_path))?,
        sans: all,
    })
}

/// Writes a file through a temporary name and a rename, so it is never seen half-written.
fn replace_file(path: &Path, contents: &[u8], secret: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    if secret {
        write_secret_file(&tmp, contents)?;
    } else {
        fs::write(&tmp, contents).map_err(StorageError::io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(StorageError::io(path))?;
    crate::keys::sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The names and addresses of this machine a server certificate should cover: `localhost`,
/// the loopback addresses, the host name, and every configured interface address.
pub fn machine_sans() -> Vec<String> {
    let mut out = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let uname = rustix::system::uname();
    if let Ok(h) = uname.nodename().to_str()
        && !h.is_empty()
    {
        out.push(h.to_owned());
    }
    // IPv4 addresses from the kernel's local routing table.
    if let Ok(trie) = fs::read_to_string("/proc/net/fib_trie") {
        let mut last_ip = None;
        for line in trie.lines() {
            let t = line.trim();
            if let Some(ip) = t.strip_prefix("|-- ") {
                last_ip = Some(ip.to_owned());
            } else if t.contains("/32 host LOCAL")
                && let Some(ip) = last_ip.take()
                && !ip.starts_with("127.")
            {
                out.push(ip);
            }
        }
    }
    // IPv6 addresses: 32 hex digits per line of /proc/net/if_inet6.
    if let Ok(v6) = fs::read_to_string("/proc/net/if_inet6") {
        for line in v6.lines() {
            if let Some(hex) = line.split_whitespace().next()
                && hex.len() == 32
                && let Ok(n) = u128::from_str_radix(hex, 16)
            {
                let ip = std::net::Ipv6Addr::from(n);
                if !ip.is_loopback() && !ip.is_unicast_link_local() {
                    out.push(ip.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ca_is_kept_and_server_cert_grows_to_cover_new_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ensure(
            dir.path(),
            "abcd",
            &["localhost".into(), "127.0.0.1".into()],
        )
        .expect("tls");
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(a.ca_fingerprint_sha256.len(), 32 * 3 - 1);
        for f in ["ca.key", "server.key"] {
            let mode = fs::metadata(tls_dir(dir.path()).join(f))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let b = ensure(dir.path(), "abcd", &["127.0.0.1".into()]).expect("again");
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(
            a.server_cert_pem, b.server_cert_pem,
            "covered: not re-issued"
        );
        let c = ensure(dir.path(), "abcd", &["10.1.2.3".into()]).expect("new address");
        assert_eq!(a.ca_fingerprint_sha256, c.ca_fingerprint_sha256, "same CA");
        assert_ne!(a.server_cert_pem, c.server_cert_pem);
        assert!(
            c.sans.contains(&"10.1.2.3".to_owned()) && c.sans.contains(&"localhost".to_owned())
        );
    }

    #[test]
    fn machine_sans_include_loopback() {
        let s = machine_sans();
        assert!(s.contains(&"localhost".to_owned()) && s.contains(&"127.0.0.1".to_owned()));
    }
}
