//! Camera routes: list (with live status), add (admin; validated and probed first), and test a
//! URL without adding it. Passwords go in, never out.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nvr_core::{CameraId, CameraUrl, HostKind, Time90k, VideoCodec};
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
    /// `starting`, `connecting`, `recording`, `reconnecting`, `disabled`, or `stalled_disk`
    /// (connected, but the disk is full and retention cannot free space: frames are dropped).
    pub status: String,
    pub status_detail: Option<nvr_ingest::CameraStatus>,
    /// `h264` or `h265` once the camera has sent video.
    pub codec: Option<VideoCodec>,
    pub storage: StorageJson,
    pub retention: RetentionJson,
}

/// What a camera occupies on disk.
#[derive(Debug, Serialize)]
pub struct StorageJson {
    pub bytes: u64,
    /// The oldest recording still kept: the retention horizon.
    pub oldest: Option<String>,
    pub newest: Option<String>,
}

/// A camera's effective retention limits.
#[derive(Debug, Serialize)]
pub struct RetentionJson {
    pub max_bytes: Option<u64>,
    pub max_age_days: Option<u64>,
    /// Bytes over the quota that retention may not delete because evidence holds protect them:
    /// holds are crowding out new recording (the UI warns).
    pub held_over_quota_bytes: u64,
}

fn camera_json(state: &AppState, c: nvr_storage::db::CameraRow) -> CameraJson {
    let (bytes, oldest, _) = state.store.db().camera_usage(c.id).unwrap_or((0, None, 0));
    let newest = state.store.db().last_segment_end(c.id).unwrap_or(None);
    let defaults = state.recorder.default_retention();
    let max_bytes = c.retain_max_bytes.or(defaults.max_bytes);
    let held = state
        .store
        .db()
        .holds(true)
        .map(|h| h.iter().any(|h| h.camera_id == c.id))
        .unwrap_or(false);
    let retention = RetentionJson {
        max_bytes,
        max_age_days: c
            .retain_max_age_secs
            .map(|s| s / 86_400)
            .or(defaults.max_age.map(|a| (a.0 / 90_000 / 86_400) as u64)),
        held_over_quota_bytes: match max_bytes {
            Some(m) if held && bytes > m => bytes - m,
            _ => 0,
        },
    };
    let detail = state.recorder.status(c.id);
    let status = match (&detail, c.enabled) {
        (_, false) => "disabled".to_owned(),
        (Some(d), true) if d.disk_stalled => "stalled_disk".to_owned(),
        (Some(d), true) => serde_json::to_value(d.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into()),
        (None, true) => "starting".to_owned(),
    };
    let codec = detail
        .as_ref()
        .and_then(|d| d.codec.as_deref())
        .and_then(VideoCodec::from_rfc6381);
    CameraJson {
        id: c.id,
        name: c.name,
        url: c.url,
        username: c.username,
        has_password: c.has_password,
        enabled: c.enabled,
        status,
        status_detail: detail,
        codec,
        storage: StorageJson {
            bytes,
            oldest: oldest.map(|t| Time90k(t).to_rfc3339()),
            newest: newest.map(|t| Time90k(t).to_rfc3339()),
        },
        retention,
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
    // An admin testing an address is the one outbound connection not to a configured camera.
    let _allow = state.recorder.egress().allow_probe(&target.url);
    state.store.audit(
        &user.username,
        "camera_test",
        &format!("url:{}", target.url),
        serde_json::json!({}),
    );
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
        let _allow = state.recorder.egress().allow_probe(&target.url);
        probe(state.recorder.source().as_ref(), &target, PROBE_TIMEOUT).await?;
    }
    let id = state.store.add_camera(
        name,
        &target.url,
        target.username.as_deref(),
        target.password.as_deref(),
    )?;
    tracing::info!(camera = %id, name = %name, by = %user.username, "camera added");
    state.store.audit(
        &user.username,
        "camera_add",
        &format!("camera:{id}"),
        serde_json::json!({"name": name, "url": target.url.as_str()}),
    );
    state.recorder.reconcile()?;
    let row = state
        .store
        .db()
        .camera(id)?
        .ok_or_else(|| ApiError::internal("camera vanished after insert"))?;
    Ok((StatusCode::CREATED, Json(camera_json(&state, row))))
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /api/cameras/{id}`: absent fields are unchanged.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraChange {
    name: Option<String>,
    url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    username: Option<Option<String>>,
    /// `""` clears the password.
    password: Option<String>,
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    retain_max_bytes: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    retain_max_age_days: Option<Option<u64>>,
}

impl std::fmt::Debug for CameraChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraChange")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// `PATCH /api/cameras/{id}` (admin): changes what is given; a camera whose connection
/// settings changed is restarted.
pub async fn change(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Json(req): Json<CameraChange>,
) -> ApiResult<Json<CameraJson>> {
    user.require_admin()?;
    let id = CameraId(id);
    let db = state.store.db();
    let row = db
        .camera(id)?
        .ok_or_else(|| ApiError::not_found(format!("camera {id}")))?;
    let name = req
        .name
        .as_deref()
        .map(str::trim)
        .unwrap_or(&row.name)
        .to_owned();
    let url = checked_url(
        req.url.as_deref().unwrap_or(&row.url),
        state.recorder.allow_host_names(),
    )?;
    let username = match &req.username {
        None => row.username.clone(),
        Some(u) => u.clone().filter(|u| !u.is_empty()),
    };
    let enabled = req.enabled.unwrap_or(row.enabled);
    let connection_changed = req.name.is_some()
        || req.url.is_some()
        || req.username.is_some()
        || req.password.is_some()
        || req.enabled.is_some();
    if connection_changed {
        state.store.update_camera(
            id,
            &name,
            &url,
            username.as_deref(),
            req.password.as_deref(),
            enabled,
        )?;
    }
    if req.retain_max_bytes.is_some() || req.retain_max_age_days.is_some() {
        let max_bytes = req.retain_max_bytes.unwrap_or(row.retain_max_bytes);
        let max_age = match req.retain_max_age_days {
            None => row.retain_max_age_secs,
            Some(d) => d.map(|d| d.saturating_mul(86_400)),
        };
        db.set_camera_retention(id, max_bytes, max_age)?;
    }
    if connection_changed {
        state.recorder.stop_camera(id).await;
        state.recorder.reconcile()?;
    }
    tracing::info!(camera = %id, by = %user.username, "camera changed");
    state.store.audit(
        &user.username,
        "camera_change",
        &format!("camera:{id}"),
        serde_json::json!({"name": name, "url": url.as_str(), "enabled": enabled,
                           "password_changed": req.password.is_some()}),
    );
    let row = db
        .camera(id)?
        .ok_or_else(|| ApiError::not_found(format!("camera {id}")))?;
    Ok(Json(camera_json(&state, row)))
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    #[serde(default)]
    delete_recordings: bool,
}

/// `DELETE /api/cameras/{id}` (admin): stops recording and deletes the camera; its recordings
/// go too, which the caller must confirm with `?delete_recordings=true`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let id = CameraId(id);
    let db = state.store.db();
    let row = db
        .camera(id)?
        .ok_or_else(|| ApiError::not_found(format!("camera {id}")))?;
    if db.camera_segment_count(id)? > 0 && !q.delete_recordings {
        return Err(ApiError::new(
            nvr_core::ErrorKind::AlreadyExists,
            format!(
                "camera {:?} has recordings; confirm with ?delete_recordings=true to delete them too",
                row.name
            ),
        ));
    }
    // Disable first so no reconcile restarts it, then stop and wait for its segment to seal.
    let url = checked_url(&row.url, true)?;
    state
        .store
        .update_camera(id, &row.name, &url, row.username.as_deref(), None, false)?;
    state.recorder.stop_camera(id).await;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.delete_camera(id)).await??;
    tracing::info!(camera = %id, name = %row.name, by = %user.username, "camera deleted");
    state.store.audit(
        &user.username,
        "camera_delete",
        &format!("camera:{id}"),
        serde_json::json!({"name": row.name}),
    );
    Ok(StatusCode::NO_CONTENT)
}
