//! Motion routes: searching a camera's motion index by time and picture region, the live
//! grid's "motion now" marks, and each camera's analysis settings (admin).

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use nvr_app::motion::{MotionSearch, Region, SettingsChange};
use nvr_core::{CameraId, Time90k};
use nvr_motion::{MotionSettings, MotionStatus};
use nvr_storage::motion::{CellMask, GRID, fraction_from_score};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{CurrentUser, actor};
use crate::error::{ApiError, ApiResult};

/// Query of `GET /api/cameras/{id}/motion`.
#[derive(Debug, Deserialize)]
pub struct MotionQueryJson {
    pub start: Option<String>,
    pub end: Option<String>,
    /// `x0,y0,x1,y1` in 0..1 picture coordinates.
    pub region: Option<String>,
    /// Intensity buckets over the range for a timeline strip.
    pub buckets: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct IntervalJson {
    pub start: String,
    pub end: String,
    /// The largest share of the picture in motion during the interval, 0..1.
    pub peak: f64,
}

#[derive(Debug, Serialize)]
pub struct SpanJson {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize)]
pub struct MotionJson {
    pub intervals: Vec<IntervalJson>,
    /// Seconds where the whole picture changed at once (lighting, infrared switch, a camera
    /// that moved): not motion.
    pub scene_changes: Vec<String>,
    /// With `buckets`: per bucket, the highest intensity 0..1 (the share of the picture in
    /// motion, square-rooted so small objects show), else empty.
    pub buckets: Vec<f64>,
    /// Recorded footage in the range that is not indexed (yet): the search is partial there.
    pub not_indexed: Vec<SpanJson>,
}

fn time(s: &Option<String>, name: &str) -> ApiResult<Time90k> {
    let s = s
        .as_deref()
        .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {name}")))?;
    Time90k::parse_rfc3339(s).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}

/// Rounds to 4 decimals: the index's resolution, in fewer bytes.
fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// `GET /api/cameras/{id}/motion?start=&end=[&region=x0,y0,x1,y1][&buckets=N]`.
pub async fn search(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<MotionQueryJson>,
) -> ApiResult<Json<MotionJson>> {
    let search = MotionSearch {
        camera: CameraId(id),
        start: time(&q.start, "start")?,
        end: time(&q.end, "end")?,
        region: q.region.as_deref().map(Region::parse).transpose()?,
        buckets: q.buckets.unwrap_or(0),
    };
    let app = state.app.clone();
    let actor = actor(&user);
    let r = tokio::task::spawn_blocking(move || app.motion_search(&actor, &search)).await??;
    Ok(Json(MotionJson {
        intervals: r
            .intervals
            .iter()
            .map(|i| IntervalJson {
                start: i.start.to_rfc3339(),
                end: i.end.to_rfc3339(),
                peak: round4(fraction_from_score(i.peak)),
            })
            .collect(),
        scene_changes: r.scene_changes.iter().map(|t| t.to_rfc3339()).collect(),
        buckets: r
            .buckets
            .iter()
            .map(|&b| round4(f64::from(b) / 255.0))
            .collect(),
        not_indexed: r
            .not_indexed
            .iter()
            .map(|(s, e)| SpanJson {
                start: s.to_rfc3339(),
                end: e.to_rfc3339(),
            })
            .collect(),
    }))
}

/// One camera's entry in `GET /api/motion/live`.
#[derive(Debug, Serialize)]
pub struct LiveMotionJson {
    pub camera: CameraId,
    pub motion_now: bool,
    pub last_motion: Option<String>,
    pub state: nvr_motion::MotionState,
}

/// `GET /api/motion/live`: which cameras see motion now (the live grid polls it).
pub async fn live(State(state): State<AppState>) -> ApiResult<Json<Vec<LiveMotionJson>>> {
    let cameras = crate::blocking(&state, |s| Ok(s.app.cameras()?)).await?;
    Ok(Json(
        cameras
            .iter()
            .map(|c| {
                let s = state.app.motion_status(c.id);
                LiveMotionJson {
                    camera: c.id,
                    motion_now: s.motion_now,
                    last_motion: s.last_motion.map(|t| t.to_rfc3339()),
                    state: s.state,
                }
            })
            .collect(),
    ))
}

/// A camera's analysis settings and status.
#[derive(Debug, Serialize)]
pub struct SettingsJson {
    pub enabled: bool,
    /// 1 (least sensitive) ..= 10; 5 is the default.
    pub sensitivity: u8,
    /// Ignored cells: 16 rows from the top, each a number whose bit c is column c from the left.
    pub mask: [u16; GRID],
    pub status: MotionStatus,
}

fn settings_json(s: MotionSettings, status: MotionStatus) -> SettingsJson {
    SettingsJson {
        enabled: s.enabled,
        sensitivity: s.sensitivity,
        mask: s.mask.0,
        status,
    }
}

/// `GET /api/cameras/{id}/motion/settings`.
pub async fn settings(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<SettingsJson>> {
    let camera = CameraId(id);
    let s = crate::blocking(&state, move |s| Ok(s.app.motion_settings(camera)?)).await?;
    Ok(Json(settings_json(s, state.app.motion_status(camera))))
}

/// Body of `PATCH /api/cameras/{id}/motion/settings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChangeJson {
    pub enabled: Option<bool>,
    pub sensitivity: Option<u8>,
    /// As in the answer; `null` or all zeros clears it.
    #[serde(default, deserialize_with = "serde_with_none::deserialize")]
    pub mask: Option<Option<[u16; GRID]>>,
}

/// Distinguishes an absent field (unchanged) from `null` (cleared).
mod serde_with_none {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// `PATCH /api/cameras/{id}/motion/settings` (admin).
pub async fn change_settings(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Json(body): Json<SettingsChangeJson>,
) -> ApiResult<Json<SettingsJson>> {
    let camera = CameraId(id);
    let change = SettingsChange {
        enabled: body.enabled,
        sensitivity: body.sensitivity,
        mask: body.mask.map(|m| m.map(CellMask).filter(|m| !m.is_empty())),
    };
    let app = state.app.clone();
    let actor = actor(&user);
    let s = tokio::task::spawn_blocking(move || app.change_motion_settings(&actor, camera, change))
        .await??;
    Ok(Json(settings_json(s, state.app.motion_status(camera))))
}
