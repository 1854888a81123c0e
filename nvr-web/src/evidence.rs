//! Evidence routes (evidence and admin roles): export bundles made in the background with
//! progress, their download, evidence holds, and the audit log.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nvr_core::{CameraId, Time90k};
use nvr_storage::db::{AuditFilter, ExportRow, HoldRow};
use nvr_storage::export::{ExportRequest, validate, write_bundle};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};

/// Bytes done and total of the exports being written, by export id.
#[derive(Debug, Default)]
pub struct ExportProgress(Mutex<HashMap<i64, (u64, u64)>>);

impl ExportProgress {
    fn set(&self, id: i64, done: u64, total: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (done, total));
    }
    fn get(&self, id: i64) -> Option<(u64, u64)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }
    fn remove(&self, id: i64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// Who made holds that only protect a running export (released when it ends, or at the next
/// start if the server stopped meanwhile).
pub const EXPORT_HOLD_OWNER: &str = "export";

/// Cleans up after exports a stop interrupted: marks them failed and releases their holds.
pub fn cleanup_interrupted_exports(
    store: &nvr_storage::store::Store,
    now_90k: i64,
) -> nvr_storage::Result<()> {
    store.db().fail_running_exports(now_90k)?;
    for h in store.db().holds(true)? {
        if h.created_by == EXPORT_HOLD_OWNER {
            store.db().release_hold(h.id, EXPORT_HOLD_OWNER, now_90k)?;
        }
    }
    Ok(())
}

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
    let progress = state
        .exports
        .get(e.id)
        .map(|(d, t)| if t == 0 { 0.0 } else { d as f64 / t as f64 });
    ExportJson {
        download: (e.state == "ready").then(|| format!("/api/exports/{}/bundle.zip", e.id)),
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
        state: e.state,
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
    user.require_evidence()?;
    let er = ExportRequest {
        cameras: req.cameras.iter().map(|&c| CameraId(c)).collect(),
        start: parse_time("start", &req.start)?,
        end: parse_time("end", &req.end)?,
        case_ref: req.case,
        reason: req.reason,
        operator: user.username.clone(),
    };
    validate(&er)?;
    for c in &er.cameras {
        let row = state
            .store
            .db()
            .camera(*c)?
            .ok_or_else(|| ApiError::not_found(format!("camera {c}")))?;
        // Refuse now rather than fail in the background: only sealed segments are exported.
        if state
            .store
            .db()
            .sealed_segments_overlapping(*c, er.start.0, er.end.0)?
            .is_empty()
        {
            return Err(ApiError::not_found(format!(
                "no sealed recordings of camera {:?} between {} and {} (the last minute is \
                 still being written)",
                row.name, er.start, er.end
            )));
        }
    }
    let db = state.store.db();
    let now = state.clock.realtime().0;
    let id = db.insert_export(
        &user.username,
        now,
        &req.cameras,
        er.start.0,
        er.end.0,
        &er.case_ref,
        &er.reason,
    )?;
    for c in &er.cameras {
        state.store.audit(
            &user.username,
            "export",
            &format!("camera:{c}"),
            json!({"export": id, "start": er.start.to_rfc3339(), "end": er.end.to_rfc3339(),
                   "case": er.case_ref, "reason": er.reason}),
        );
    }
    // Hold the range while the bundle is written, so retention cannot delete it meanwhile.
    let mut holds = Vec::new();
    for c in &er.cameras {
        holds.push(db.insert_hold(
            *c,
            er.start.0,
            er.end.0,
            &er.case_ref,
            &format!("export {id} in progress"),
            EXPORT_HOLD_OWNER,
            now,
        )?);
    }
    let dir = exports_dir(&state)?;
    let (store, progress, clock) = (
        state.store.clone(),
        state.exports.clone(),
        state.clock.clone(),
    );
    progress.set(id, 0, 0);
    tokio::task::spawn_blocking(move || {
        let part = dir.join(format!("{id}.zip.part"));
        let result = (|| -> Result<(u64, [u8; 32]), String> {
            let f = std::fs::File::create(&part).map_err(|e| e.to_string())?;
            write_bundle(&store, &er, f, &mut |d, t| progress.set(id, d, t))
                .map_err(|e| e.to_string())?;
            // The recorder checks its own bundle the way a court would before offering it.
            let report = nvr_storage::export::verify::verify_bundle(&part);
            if !report.valid() {
                return Err(format!(
                    "the bundle failed its own verification: {}",
                    report.failures.join("; ")
                ));
            }
            let (bytes, sha) = file_sha256(&part).map_err(|e| e.to_string())?;
            std::fs::rename(&part, dir.join(format!("{id}.zip"))).map_err(|e| e.to_string())?;
            Ok((bytes, sha))
        })();
        if let Err(e) = &result {
            tracing::error!(export = id, error = %e, "export failed");
            let _ = std::fs::remove_file(&part);
        }
        let now = clock.realtime().0;
        if let Err(e) = store.db().finish_export(id, result, now) {
            tracing::error!(export = id, error = %e, "recording the export's end failed");
        }
        for h in holds {
            let _ = store.db().release_hold(h, EXPORT_HOLD_OWNER, now);
        }
        progress.remove(id);
    });
    let row = db
        .export(id)?
        .ok_or_else(|| ApiError::internal("export vanished after insert"))?;
    Ok((StatusCode::ACCEPTED, Json(export_json(&state, row))))
}

/// Size and SHA-256 of a file, read in pieces (bundles can be gigabytes).
fn file_sha256(path: &std::path::Path) -> std::io::Result<(u64, [u8; 32])> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        total += n as u64;
    }
    let mut a = [0u8; 32];
    a.copy_from_slice(ctx.finish().as_ref());
    Ok((total, a))
}

fn exports_dir(state: &AppState) -> ApiResult<std::path::PathBuf> {
    let dir = state.store.dir().join("exports");
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    }
    Ok(dir)
}

/// `GET /api/exports`.
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<Json<Vec<ExportJson>>> {
    user.require_evidence()?;
    let rows = state.store.db().exports()?;
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
    user.require_evidence()?;
    let row = export_row(&state, id)?;
    Ok(Json(export_json(&state, row)))
}

/// The export `id`, or 404.
fn export_row(state: &AppState, id: i64) -> ApiResult<ExportRow> {
    state
        .store
        .db()
        .export(id)?
        .ok_or_else(|| ApiError::not_found(format!("export {id}")))
}

/// `GET /api/exports/{id}/bundle.zip`.
pub async fn download(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    user.require_evidence()?;
    let row = export_row(&state, id)?;
    if row.state != "ready" {
        return Err(ApiError::not_found(format!("export {id} is {}", row.state)));
    }
    let path = state.store.dir().join("exports").join(format!("{id}.zip"));
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    state.store.audit(
        &user.username,
        "export_download",
        &format!("export:{id}"),
        json!({}),
    );
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
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
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
    user.require_evidence()?;
    let rows = state.store.db().holds(!q.all)?;
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
    user.require_evidence()?;
    let (start, end) = (
        parse_time("start", &req.start)?,
        parse_time("end", &req.end)?,
    );
    if end <= start {
        return Err(ApiError::bad_request("the hold's range is empty"));
    }
    if req.reason.trim().is_empty() {
        return Err(ApiError::bad_request("a hold needs a reason"));
    }
    let camera = CameraId(req.camera);
    state
        .store
        .db()
        .camera(camera)?
        .ok_or_else(|| ApiError::not_found(format!("camera {camera}")))?;
    let now = state.clock.realtime().0;
    let id = state.store.db().insert_hold(
        camera,
        start.0,
        end.0,
        &req.case,
        &req.reason,
        &user.username,
        now,
    )?;
    state.store.audit(
        &user.username,
        "hold",
        &format!("camera:{camera}"),
        json!({"hold": id, "start": start.to_rfc3339(), "end": end.to_rfc3339(),
               "case": req.case, "reason": req.reason}),
    );
    let row = state
        .store
        .db()
        .hold(id)?
        .ok_or_else(|| ApiError::internal("hold vanished after insert"))?;
    Ok((StatusCode::CREATED, Json(hold_json(row))))
}

/// `POST /api/holds/{id}/release`.
pub async fn release_hold(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    user.require_evidence()?;
    let row = state
        .store
        .db()
        .hold(id)?
        .ok_or_else(|| ApiError::not_found(format!("hold {id}")))?;
    state
        .store
        .db()
        .release_hold(id, &user.username, state.clock.realtime().0)?;
    state.store.audit(
        &user.username,
        "hold_release",
        &format!("camera:{}", row.camera_id),
        json!({"hold": id}),
    );
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
    user.require_evidence()?;
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
    let rows = state.store.db().audit_list(&f)?;
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
