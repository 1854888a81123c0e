//! Camera routes: list (with live status), add (admin; validated and probed first), and test a
//! URL without adding it. Passwords go in, never out.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nvr_app::cameras::{CameraChange, NewCamera};
use nvr_core::{CameraId, Time90k, VideoCodec};
use nvr_ingest::probe::ProbeResult;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{CurrentUser, actor};
use crate::error::{ApiError, ApiResult};

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
    /// The camera's motion analysis: its state (`behind` while it skips pictures to keep up),
    /// pictures analysed and skipped, the last error.
    pub motion: nvr_motion::MotionStatus,
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

fn camera_json(state: &AppState, c: nvr_storage::db::CameraRow) -> ApiResult<CameraJson> {
    let storage = state.app.camera_storage(&c)?;
    let retention = RetentionJson {
        max_bytes: storage.retention.max_bytes,
        max_age_days: storage
            .retention
            .max_age
            .map(|a| (a.0 / 90_000 / 86_400) as u64),
        held_over_quota_bytes: storage.held_over_quota_bytes,
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
    Ok(CameraJson {
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
            bytes: storage.bytes,
            oldest: storage.oldest_90k.map(|t| Time90k(t).to_rfc3339()),
            newest: storage.newest_90k.map(|t| Time90k(t).to_rfc3339()),
        },
        retention,
        motion: state.app.motion_status(c.id),
    })
}

/// `GET /api/cameras`.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<CameraJson>>> {
    let rows = state.app.cameras()?;
    Ok(Json(
        rows.into_iter()
            .map(|c| camera_json(&state, c))
            .collect::<ApiResult<_>>()?,
    ))
}

/// `GET /api/cameras/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CameraJson>> {
    let c = state.app.camera(CameraId(id))?;
    Ok(Json(camera_json(&state, c)?))
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

impl CameraRequest {
    fn into_new(self) -> NewCamera {
        NewCamera {
            name: self.name.unwrap_or_default(),
            url: self.url,
            username: self.username,
            password: self.password,
            skip_probe: self.skip_probe,
        }
    }
}

/// `POST /api/cameras/test` (admin): what the camera offers, or why it cannot be used.
pub async fn test(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<CameraRequest>,
) -> ApiResult<Json<ProbeResult>> {
    Ok(Json(
        state
            .app
            .test_camera(&actor(&user), &req.into_new())
            .await?,
    ))
}

/// `POST /api/cameras` (admin): validates, probes (unless `skip_probe`), stores, and starts
/// recording. Nothing is stored when any step fails.
pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<CameraRequest>,
) -> ApiResult<(StatusCode, Json<CameraJson>)> {
    if req.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request("missing camera name"));
    }
    let (row, _) = state.app.add_camera(&actor(&user), &req.into_new()).await?;
    Ok((StatusCode::CREATED, Json(camera_json(&state, row)?)))
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
pub struct CameraChangeRequest {
    name: Option<String>,
    url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    username: Option<Option<String>>,
    /// `""` clears the password.
    password: Option<String>,
    enabled: Option<bool>,
    /// `null`: the server default; `0`: no limit.
    #[serde(default, deserialize_with = "double_option")]
    retain_max_bytes: Option<Option<u64>>,
    /// `null`: the server default; `0`: no limit.
    #[serde(default, deserialize_with = "double_option")]
    retain_max_age_days: Option<Option<u64>>,
    /// Apply retention limits that delete footage now (the first try answers 409 with what
    /// they would delete).
    #[serde(default)]
    confirm_delete: bool,
}

impl std::fmt::Debug for CameraChangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraChangeRequest")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// `PATCH /api/cameras/{id}` (admin): changes what is given; a camera whose connection
/// settings changed is restarted; retention limits that would delete footage now need
/// `confirm_delete` (409 `retention_deletes` otherwise).
pub async fn change(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Json(req): Json<CameraChangeRequest>,
) -> ApiResult<Json<CameraJson>> {
    let change = CameraChange {
        name: req.name,
        url: req.url,
        username: req.username,
        password: req.password,
        enabled: req.enabled,
        retain_max_bytes: req.retain_max_bytes,
        retain_max_age_days: req.retain_max_age_days,
        confirm_delete: req.confirm_delete,
    };
    let row = state
        .app
        .change_camera(&actor(&user), CameraId(id), &change)
        .await?;
    Ok(Json(camera_json(&state, row)?))
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    #[serde(default)]
    delete_recordings: bool,
}

/// `DELETE /api/cameras/{id}` (admin): stops recording and deletes the camera; its recordings
/// go too, which the caller must confirm with `?delete_recordings=true`. Refused (409 `held`)
/// while evidence holds cover its footage.
pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    state
        .app
        .delete_camera(&actor(&user), CameraId(id), q.delete_recordings)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
