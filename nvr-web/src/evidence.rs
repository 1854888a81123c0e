//! Evidence routes (evidence and admin roles): export bundles made in the background with
//! progress, their download, evidence holds, and the audit log.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nvr_app::evidence::{ExportOrder, HoldOrder, bundle_stored};
use nvr_core::{CameraId, Time90k};
use nvr_storage::{AuditFilter, ExportRow, HoldRow};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{CurrentUser, actor};
use crate::error::{ApiError, ApiResult};

fn parse_time(name: &str, v: &str) -> ApiResult<Time90k> {
    Time90k::parse_rfc3339(v).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExport {
    cameras: Vec<i64>,
    start: String,
    end: String,
    #[serde(default)]
    case: String,
    reason: String,
    /// Add working copies with the time in the picture.
    #[serde(default)]
    working_copy: bool,
}

impl std::fmt::Debug for NewExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewExport")
            .field("cameras", &self.cameras)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
pub struct ExportJson {
    id: i64,
    created_by: String,
    created: String,
    cameras: Vec<i64>,
    start: String,
    end: String,
    case: String,
    reason: String,
    state: String,
    bytes: Option<i64>,
    sha256: Option<String>,
    error: Option<String>,
    finished: Option<String>,
    progress: Option<f64>,
    download: Option<String>,
    /// The recorder verified the bundle (signature, every hash, each segment against its
    /// ingest-time hash, the chain) after writing it; only verified bundles become ready.
    verified: bool,
}

fn export_json(state: &AppState, e: ExportRow) -> ExportJson {
    let progress = state.app.export_progress(e.id);
    let offered = e.state == "ready" && e.deleted_90k.is_none() && bundle_stored(&e);
    ExportJson {
        download: offered.then(|| format!("/api/exports/{}/bundle.zip", e.id)),
        verified: e.state == "ready",
        id: e.id,
        created_by: e.created_by,
        created: Time90k(e.created_90k).to_rfc3339(),
        cameras: e.cameras,
        start: Time90k(e.start_90k).to_rfc3339(),
        end: Time90k(e.end_90k).to_rfc3339(),
        case: e.case_ref,
        reason: e.reason,
        progress: if e.state == "ready" {
            Some(1.0)
        } else {
            progress
        },
        state: if e.deleted_90k.is_some() {
            "expired".to_owned()
        } else {
            e.state
        },
        bytes: e.bytes,
        sha256: e.sha256.map(hex::encode),
        error: e.error,
        finished: e.finished_90k.map(|t| Time90k(t).to_rfc3339()),
    }
}

/// `POST /api/exports`: starts an export in the background; answers 202 with its id.
pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<NewExport>,
) -> ApiResult<(StatusCode, Json<ExportJson>)> {
    let order = ExportOrder {
        cameras: req.cameras.iter().map(|&c| CameraId(c)).collect(),
        start: parse_time("start", &req.start)?,
        end: parse_time("end", &req.end)?,
        case_ref: req.case,
        reason: req.reason,
        working_copy: req.working_copy,
    };
    let row = crate::blocking(&state, move |s| {
        Ok(s.app.start_export(&actor(&user), &order)?)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(export_json(&state, row))))
}

/// `GET /api/exports`.
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<Json<Vec<ExportJson>>> {
    let rows = crate::blocking(&state, move |s| Ok(s.app.exports(&actor(&user))?)).await?;
    Ok(Json(
        rows.into_iter().map(|e| export_json(&state, e)).collect(),
    ))
}

/// `GET /api/exports/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ExportJson>> {
    let row = crate::blocking(&state, move |s| Ok(s.app.export(&actor(&user), id)?)).await?;
    Ok(Json(export_json(&state, row)))
}

/// `GET /api/exports/{id}/bundle.zip`: streamed; the stream ends when the session does.
pub async fn download(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let (row, file) = {
        let asker = actor(&user);
        crate::blocking(&state, move |s| Ok(s.app.open_bundle(&asker, id)?)).await?
    };
    let file = tokio::fs::File::from_std(file);
    let stream = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let stream = crate::streaming::until_session_ends(&state, &user, stream);
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(b) = row.bytes
        && let Ok(v) = HeaderValue::from_str(&b.to_string())
    {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"nvr-export-{id}.zip\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[derive(Debug, Serialize)]
pub struct HoldJson {
    id: i64,
    camera: i64,
    start: String,
    end: String,
    case: String,
    reason: String,
    created_by: String,
    created: String,
    released_by: Option<String>,
    released: Option<String>,
    active: bool,
}

fn hold_json(h: HoldRow) -> HoldJson {
    HoldJson {
        id: h.id,
        camera: h.camera_id.0,
        start: Time90k(h.start_90k).to_rfc3339(),
        end: Time90k(h.end_90k).to_rfc3339(),
        case: h.case_ref,
        reason: h.reason,
        created_by: h.created_by,
        created: Time90k(h.created_90k).to_rfc3339(),
        active: h.released_90k.is_none(),
        released_by: h.released_by,
        released: h.released_90k.map(|t| Time90k(t).to_rfc3339()),
    }
}

#[derive(Debug, Deserialize)]
pub struct HoldsQuery {
    #[serde(default)]
    all: bool,
}

/// `GET /api/holds[?all=true]`: active holds (or every hold).
pub async fn holds(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Query(q): Query<HoldsQuery>,
) -> ApiResult<Json<Vec<HoldJson>>> {
    let rows = crate::blocking(&state, move |s| Ok(s.app.holds(&actor(&user), !q.all)?)).await?;
    Ok(Json(rows.into_iter().map(hold_json).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    camera: i64,
    start: String,
    end: String,
    #[serde(default)]
    case: String,
    reason: String,
}

/// `POST /api/holds`: exempts a camera's range from retention until released.
pub async fn create_hold(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<NewHold>,
) -> ApiResult<(StatusCode, Json<HoldJson>)> {
    let order = HoldOrder {
        camera: CameraId(req.camera),
        start: parse_time("start", &req.start)?,
        end: parse_time("end", &req.end)?,
        case_ref: req.case,
        reason: req.reason,
    };
    let row = crate::blocking(&state, move |s| {
        Ok(s.app.create_hold(&actor(&user), &order)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(hold_json(row))))
}

/// `POST /api/holds/{id}/release`.
pub async fn release_hold(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    crate::blocking(&state, move |s| {
        Ok(s.app.release_hold(&actor(&user), id)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    object: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before_id: Option<i64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct AuditJson {
    id: i64,
    time: String,
    actor: String,
    action: String,
    object: String,
    detail: serde_json::Value,
}

/// `GET /api/audit?actor=&action=&object=&since=&until=&before_id=&limit=` (newest first).
pub async fn audit(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditJson>>> {
    let f = AuditFilter {
        actor: q.actor.filter(|s| !s.is_empty()),
        action: q.action.filter(|s| !s.is_empty()),
        object: q.object.filter(|s| !s.is_empty()),
        since_90k: q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?
            .map(|t| t.0),
        until_90k: q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?
            .map(|t| t.0),
        before_id: q.before_id,
        limit: q.limit.unwrap_or(200).min(5000),
    };
    let rows = crate::blocking(&state, move |s| {
        Ok(s.app.audit_entries(&actor(&user), &f)?)
    })
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| AuditJson {
                id: e.id,
                time: Time90k(e.time_90k).to_rfc3339(),
                actor: e.actor,
                action: e.action,
                object: e.object,
                detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    ))
}
