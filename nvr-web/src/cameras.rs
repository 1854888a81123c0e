//! Camera routes: list (with live status, per stream), add (admin; validated and probed first),
//! and test a camera's URLs without adding it. Passwords go in, never out.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use std::collections::BTreeMap;

use nvr_app::cameras::{CameraChange, CameraStorage, NewCamera, probe_json};
use nvr_core::{CameraId, Stream, Time90k, VideoCodec};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{CurrentUser, actor};
use crate::error::{ApiError, ApiResult};

/// A camera as the API shows it. `status`, `status_detail`, `codec`, `storage` and `retention`
/// are its main stream's (as for a camera without a sub-stream); `streams` has each stream's.
#[derive(Debug, Serialize)]
pub struct CameraJson {
    pub id: CameraId,
    pub name: String,
    pub url: String,
    /// The sub-stream's URL, or null.
    pub sub_url: Option<String>,
    /// Whether the sub-stream is recorded (else live view only).
    pub record_sub: bool,
    pub username: Option<String>,
    pub has_password: bool,
    pub enabled: bool,
    /// Whether the main stream's audio is recorded (off unless an admin switched it on).
    pub record_audio: bool,
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
    /// `main`, and `sub` when the camera has (or had: its recordings remain) a sub-stream.
    pub streams: BTreeMap<Stream, StreamJson>,
}

/// One stream of a camera.
#[derive(Debug, Serialize)]
pub struct StreamJson {
    /// Null for a sub-stream that was removed (its recordings remain until retention).
    pub url: Option<String>,
    /// Recorded (else pulled for live view only, or removed).
    pub recorded: bool,
    pub status: String,
    pub status_detail: Option<nvr_ingest::CameraStatus>,
    pub codec: Option<VideoCodec>,
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub storage: StorageJson,
    pub retention: RetentionJson,
}

/// What a camera's stream occupies on disk.
#[derive(Debug, Serialize)]
pub struct StorageJson {
    pub bytes: u64,
    /// The oldest recording still kept: the retention horizon.
    pub oldest: Option<String>,
    pub newest: Option<String>,
}

/// A stream's effective retention limits.
#[derive(Debug, Serialize)]
pub struct RetentionJson {
    pub max_bytes: Option<u64>,
    pub max_age_days: Option<u64>,
    /// Bytes over the quota that retention may not delete because evidence holds protect them:
    /// holds are crowding out new recording (the UI warns).
    pub held_over_quota_bytes: u64,
}

fn retention_json(storage: &CameraStorage) -> RetentionJson {
    RetentionJson {
        max_bytes: storage.retention.max_bytes,
        max_age_days: storage
            .retention
            .max_age
            .map(|a| (a.0 / 90_000 / 86_400) as u64),
        held_over_quota_bytes: storage.held_over_quota_bytes,
    }
}

fn storage_json(storage: &CameraStorage) -> StorageJson {
    StorageJson {
        bytes: storage.bytes,
        oldest: storage.oldest_90k.map(|t| Time90k(t).to_rfc3339()),
        newest: storage.newest_90k.map(|t| Time90k(t).to_rfc3339()),
    }
}

/// What the API says a stream is doing: its supervisor's state, `disabled` when the camera (or
/// the stream) is off, `stalled_disk` while frames are dropped for a full disk.
fn status_text(detail: Option<&nvr_ingest::CameraStatus>, running: bool) -> String {
    match (detail, running) {
        (_, false) => "disabled".to_owned(),
        (Some(d), true) if d.disk_stalled => "stalled_disk".to_owned(),
        (Some(d), true) => serde_json::to_value(d.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into()),
        (None, true) => "starting".to_owned(),
    }
}

/// A stream's answer; reads the index: call on a blocking thread ([`crate::blocking`]).
fn stream_json(s: &AppState, c: &nvr_storage::CameraRow, stream: Stream) -> ApiResult<StreamJson> {
    let storage = s.app.stream_storage(c, stream)?;
    let url = c.stream_url(stream).map(str::to_owned);
    let detail = s.recorder.stream_status(c.id.stream(stream));
    let running = c.enabled && url.is_some();
    Ok(StreamJson {
        recorded: c.records(stream),
        status: status_text(detail.as_ref(), running),
        codec: detail
            .as_ref()
            .and_then(|d| d.codec.as_deref())
            .and_then(VideoCodec::from_rfc6381),
        width: detail.as_ref().and_then(|d| d.width),
        height: detail.as_ref().and_then(|d| d.height),
        status_detail: detail,
        url,
        storage: storage_json(&storage),
        retention: retention_json(&storage),
    })
}

/// A camera's answer; reads the index: call on a blocking thread ([`crate::blocking`]).
fn camera_json(s: &AppState, c: nvr_storage::CameraRow) -> ApiResult<CameraJson> {
    let streams: BTreeMap<Stream, StreamJson> = Stream::ALL
        .into_iter()
        .filter(|&k| c.has_stream_row(k))
        .map(|k| Ok((k, stream_json(s, &c, k)?)))
        .collect::<ApiResult<_>>()?;
    let main = &streams[&Stream::Main];
    Ok(CameraJson {
        id: c.id,
        status: main.status.clone(),
        status_detail: main.status_detail.clone(),
        codec: main.codec,
        storage: StorageJson {
            bytes: main.storage.bytes,
            oldest: main.storage.oldest.clone(),
            newest: main.storage.newest.clone(),
        },
        retention: RetentionJson { ..main.retention },
        name: c.name,
        url: c.url,
        record_sub: c.sub_url.is_some() && c.record_sub,
        sub_url: c.sub_url,
        username: c.username,
        has_password: c.has_password,
        enabled: c.enabled,
        record_audio: c.record_audio,
        streams,
        motion: s.app.motion_status(c.id),
    })
}

/// `GET /api/cameras`.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<CameraJson>>> {
    let rows = crate::blocking(&state, |s| {
        s.app
            .cameras()?
            .into_iter()
            .map(|c| camera_json(s, c))
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    Ok(Json(rows))
}

/// `GET /api/cameras/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CameraJson>> {
    let c = crate::blocking(&state, move |s| camera_json(s, s.app.camera(CameraId(id))?)).await?;
    Ok(Json(c))
}

/// `POST /api/cameras/test` (admin): what the camera's main stream offers (at the top level,
/// as before sub-streams) and, when `sub_url` is given, `sub`: what the sub-stream offers or
/// `{"error","kind"}`; or 422 when the main stream cannot be used (with `sub` too).
pub async fn test(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<NewCamera>,
) -> ApiResult<Json<serde_json::Value>> {
    let t = state.app.test_camera(&actor(&user), &req).await?;
    let mut body = serde_json::to_value(&t.main).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(sub) = &t.sub {
        body["sub"] = probe_json(sub);
    }
    Ok(Json(body))
}

/// `POST /api/cameras` (admin): validates, probes (unless `skip_probe`), stores, and starts
/// recording. Nothing is stored when any step fails.
pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<NewCamera>,
) -> ApiResult<(StatusCode, Json<CameraJson>)> {
    let (row, _) = state.app.add_camera(&actor(&user), &req).await?;
    let c = crate::blocking(&state, move |s| camera_json(s, row)).await?;
    Ok((StatusCode::CREATED, Json(c)))
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
    /// `null` or `""` removes the sub-stream (its recordings stay until retention).
    #[serde(default, deserialize_with = "double_option")]
    sub_url: Option<Option<String>>,
    record_sub: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    username: Option<Option<String>>,
    /// `""` clears the password.
    password: Option<String>,
    enabled: Option<bool>,
    /// Record the main stream's audio (audited).
    record_audio: Option<bool>,
    /// Why (kept in the audit entry of the switch).
    audio_reason: Option<String>,
    /// `null`: the server default; `0`: no limit.
    #[serde(default, deserialize_with = "double_option")]
    retain_max_bytes: Option<Option<u64>>,
    /// `null`: the server default; `0`: no limit.
    #[serde(default, deserialize_with = "double_option")]
    retain_max_age_days: Option<Option<u64>>,
    /// The sub-stream's limits, the same way.
    #[serde(default, deserialize_with = "double_option")]
    sub_retain_max_bytes: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    sub_retain_max_age_days: Option<Option<u64>>,
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
            .field("sub_url", &self.sub_url)
            .field("record_sub", &self.record_sub)
            .field("enabled", &self.enabled)
            .field("record_audio", &self.record_audio)
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
        sub_url: req.sub_url,
        record_sub: req.record_sub,
        username: req.username,
        password: req.password,
        enabled: req.enabled,
        record_audio: req.record_audio,
        audio_reason: req.audio_reason,
        retain_max_bytes: req.retain_max_bytes,
        retain_max_age_days: req.retain_max_age_days,
        sub_retain_max_bytes: req.sub_retain_max_bytes,
        sub_retain_max_age_days: req.sub_retain_max_age_days,
        confirm_delete: req.confirm_delete,
    };
    let row = state
        .app
        .change_camera(&actor(&user), CameraId(id), &change)
        .await?;
    Ok(Json(
        crate::blocking(&state, move |s| camera_json(s, row)).await?,
    ))
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
