//! The status page's data (admin): version, disk use, per-camera storage and retention
//! horizon, TLS state, the evidence signing key's fingerprint and every key used before; and
//! the local CA certificate for clients to install.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nvr_core::Time90k;
use serde::Serialize;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};

/// What the server knows about itself at start.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub started: Time90k,
    pub tls: Option<TlsInfo>,
}

/// The local CA, when serving HTTPS.
#[derive(Clone, Debug)]
pub struct TlsInfo {
    pub ca_pem: String,
    pub ca_fingerprint_sha256: String,
}

#[derive(Debug, Serialize)]
pub struct StatusJson {
    version: &'static str,
    started: String,
    data_dir: String,
    disk: DiskJson,
    cameras: Vec<CameraStorageJson>,
    tls: TlsJson,
    /// The key that signs exports now, as `nvr key show` and bundles name it.
    signing_key_fingerprint: String,
    /// Every key the recorder has signed with, oldest first.
    signing_keys: Vec<SigningKeyJson>,
}

#[derive(Debug, Serialize)]
struct SigningKeyJson {
    fingerprint: String,
    first_used: String,
    /// `None` for the current key.
    retired: Option<String>,
    current: bool,
}

#[derive(Debug, Serialize)]
struct DiskJson {
    total_bytes: u64,
    free_bytes: u64,
    recordings_bytes: u64,
}

#[derive(Debug, Serialize)]
struct CameraStorageJson {
    id: i64,
    name: String,
    bytes: u64,
    oldest: Option<String>,
    newest: Option<String>,
    retention_max_bytes: Option<u64>,
    retention_max_age_days: Option<u64>,
}

#[derive(Debug, Serialize)]
struct TlsJson {
    enabled: bool,
    ca_fingerprint_sha256: Option<String>,
    ca_url: Option<&'static str>,
}

/// `GET /api/status` (admin).
pub async fn status(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<Json<StatusJson>> {
    crate::auth::actor(&user).require_admin()?;
    // The index, the disk's free space and the key history: off the async workers.
    Ok(Json(crate::blocking(&state, status_json).await?))
}

/// The answer of [`status`], read on a blocking thread.
fn status_json(s: &AppState) -> ApiResult<StatusJson> {
    let dir = s.store.dir().to_owned();
    let disk = s.store.disk_space()?;
    let mut cameras = Vec::new();
    let mut recordings_bytes = 0;
    for c in s.app.cameras()? {
        let storage = s.app.camera_storage(&c)?;
        recordings_bytes += storage.bytes;
        cameras.push(CameraStorageJson {
            id: c.id.0,
            name: c.name,
            bytes: storage.bytes,
            oldest: storage.oldest_90k.map(|t| Time90k(t).to_rfc3339()),
            newest: storage.newest_90k.map(|t| Time90k(t).to_rfc3339()),
            retention_max_bytes: storage.retention.max_bytes,
            retention_max_age_days: storage
                .retention
                .max_age
                .map(|a| (a.0 / 90_000 / 86_400) as u64),
        });
    }
    let signing_key_fingerprint = s.store.signing_key().fingerprint().to_string();
    let signing_keys = s
        .store
        .signing_key_history()?
        .into_iter()
        .map(|k| SigningKeyJson {
            fingerprint: k.fingerprint().to_string(),
            first_used: Time90k(k.first_used_90k).to_rfc3339(),
            retired: k.retired_90k.map(|t| Time90k(t).to_rfc3339()),
            current: k.is_current(),
        })
        .collect();
    let tls = s.server.tls.as_ref();
    Ok(StatusJson {
        version: env!("CARGO_PKG_VERSION"),
        started: s.server.started.to_rfc3339(),
        data_dir: dir.display().to_string(),
        disk: DiskJson {
            total_bytes: disk.total_bytes,
            free_bytes: disk.available_bytes,
            recordings_bytes,
        },
        cameras,
        tls: TlsJson {
            enabled: tls.is_some(),
            ca_fingerprint_sha256: tls.map(|t| t.ca_fingerprint_sha256.clone()),
            ca_url: tls.map(|_| "/api/tls/ca.pem"),
        },
        signing_key_fingerprint,
        signing_keys,
    })
}

/// `GET /api/tls/ca.pem` (no session: a certificate is public, and clients need it before they
/// can trust the login page).
pub async fn ca_pem(State(state): State<AppState>) -> ApiResult<Response> {
    let tls = state
        .server
        .tls
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this server does not use TLS"))?;
    let mut r = tls.ca_pem.clone().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"nvr-ca.pem\""),
    );
    Ok(r)
}
