//! Camera routes: list (with live status), add (admin; validated and probed first), and test a
//! URL without adding it. Passwords go in, never out.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nvr_core::{CameraId, CameraUrl, HostKind};
use nvr_ingest::probe::{ProbeResult, probe};
use nvr_ingest::source::ConnectTarget;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};

/// How long a camera test may take (the UI says so next to the button).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A camera as the API shows it.
#[derive(Debug, Serialize)]
pub struct CameraJson {
    pub id: CameraId,
    pub name: String,
    pub url: String,
    pub username: Option<String>,
    pub has_password: bool,
    pub enabled: bool,
    pub status: String,
    pub status_detail: Option<nvr_ingest::CameraStatus>,
}

fn camera_json(state: &AppState, c: nvr_storage::db::CameraRow) -> CameraJson {
    let detail = state.recorder.status(c.id);
    let status = match (&detail, c.enabled) {
        (_, false) => "disabled".to_owned(),
        (Some(d), true) => serde_json::to_value(d.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into()),
        (None, true) => "starting".to_owned(),
    };
    CameraJson {
        id: c.id,
        name: c.name,
        url: c.url,
        username: c.username,
        has_password: c.has_password,
        enabled: c.enabled,
        status,
        status_detail: detail,
    }
}

/// `GET /api/cameras`.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<CameraJson>>> {
    let rows = state.store.db().cameras()?;
    Ok(Json(
        rows.into_iter().map(|c| camera_json(&state, c)).collect(),
    ))
}

/// `GET /api/cameras/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CameraJson>> {
    let c = state
        .store
        .db()
        .camera(CameraId(id))?
        .ok_or_else(|| ApiError::not_found(format!("camera {id}")))?;
    Ok(Json(camera_json(&state, c)))
}

/// Body of `POST /api/cameras` and `POST /api/cameras/test`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraRequest {
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Add the camera even if it cannot be reached now (it will be retried forever).
    #[serde(default)]
    pub skip_probe: bool,
}

impl std::fmt::Debug for CameraRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraRequest")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("skip_probe", &self.skip_probe)
            .finish()
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Validates the URL against syntax and the host-name policy.
pub fn checked_url(url: &str, allow_host_names: bool) -> ApiResult<CameraUrl> {
    let url = CameraUrl::parse(url).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let HostKind::Name(n) = url.host()
        && !allow_host_names
    {
        return Err(ApiError::bad_request(format!(
            "camera host {n:?} is a name, and resolving names is disabled \
             (cameras.allow_host_names = false in the config): use the camera's IP address"
        )));
    }
    Ok(url)
}

fn target(state: &AppState, req: &CameraRequest) -> ApiResult<ConnectTarget> {
    let url = checked_url(&req.url, state.recorder.allow_host_names())?;
    if non_empty(&req.password).is_some() && non_empty(&req.username).is_none() {
        return Err(ApiError::bad_request("a camera password needs a username"));
    }
    Ok(ConnectTarget {
        url,
        username: non_empty(&req.username).map(str::to_owned),
        password: non_empty(&req.password).map(str::to_owned),
        allow_host_names: state.recorder.allow_host_names(),
    })
}

/// `POST /api/cameras/test` (admin): what the camera offers, or why it cannot be used.
pub async fn test(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<CameraRequest>,
) -> ApiResult<Json<ProbeResult>> {
    user.require_admin()?;
    let target = target(&state, &req)?;
    Ok(Json(
        probe(state.recorder.source().as_ref(), &target, PROBE_TIMEOUT).await?,
    ))
}

/// `POST /api/cameras` (admin): validates, probes (unless `skip_probe`), stores, and starts
/// recording. Nothing is stored when any step fails.
pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<CameraRequest>,
) -> ApiResult<(StatusCode, Json<CameraJson>)> {
    user.require_admin()?;
    let name = req
        .name
        .as_deref()
        .map(str::trim)
        .ok_or_else(|| ApiError::bad_request("missing camera name"))?;
    nvr_core::validate_camera_name(name).map_err(ApiError::bad_request)?;
    if state.store.db().camera_by_name(name)?.is_some() {
        return Err(ApiError::new(
            nvr_core::ErrorKind::AlreadyExists,
            format!("a camera named {name:?} exists already"),
        ));
    }
    let target = target(&state, &req)?;
    if !req.skip_probe {
        probe(state.recorder.source().as_ref(), &target, PROBE_TIMEOUT).await?;
    }
    let id = state.store.add_camera(
        name,
        &target.url,
        target.username.as_deref(),
        target.password.as_deref(),
    )?;
    tracing::info!(camera = %id, name = %name, by = %user.username, "camera added");
    state.recorder.reconcile()?;
    let row = state
        .store
        .db()
        .camera(id)?
        .ok_or_else(|| ApiError::internal("camera vanished after insert"))?;
    Ok((StatusCode::CREATED, Json(camera_json(&state, row))))
}
