//! Motion: searching a camera's motion index (any role, audited like playback since it tells
//! what the footage shows), each camera's analysis settings (admin, audited), its analysis
//! status, and reindexing recorded footage (admin; the CLI's `nvr motion reindex`).

use nvr_core::{CameraId, Duration90k, Time90k};
use nvr_motion::reindex::{ReindexOutcome, ReindexRequest};
use nvr_motion::settings::SENSITIVITY_RANGE;
use nvr_motion::{MotionSettings, MotionStatus};
use nvr_storage::MotionSettingsRow;
use nvr_storage::motion::{CellMask, MAX_BUCKETS, MotionQuery, MotionResult};
use serde_json::json;

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};

/// The longest range one search may cover: a month, the widest timeline view; a year of a busy
/// camera is a dozen searches.
pub const MAX_SEARCH_SECS: i64 = 31 * 86_400;

/// The longest range one reindex may cover: a year (what retention keeps at most).
pub const MAX_REINDEX_SECS: i64 = 366 * 86_400;

/// A picture region in 0..=1 coordinates (0, 0 the top left).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Region {
    /// Parses `x0,y0,x1,y1`.
    pub fn parse(s: &str) -> AppResult<Region> {
        let v: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| AppError::invalid(format!("region {s:?}: expected x0,y0,x1,y1")))?;
        let [x0, y0, x1, y1] = v[..] else {
            return Err(AppError::invalid(format!(
                "region {s:?}: expected four numbers x0,y0,x1,y1"
            )));
        };
        let r = Region { x0, y0, x1, y1 };
        r.cells()?;
        Ok(r)
    }

    /// The grid cells the region touches.
    pub fn cells(&self) -> AppResult<CellMask> {
        CellMask::from_region(self.x0, self.y0, self.x1, self.y1).ok_or_else(|| {
            AppError::invalid(
                "region: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 (picture coordinates)",
            )
        })
    }
}

/// A search.
#[derive(Clone, Copy, Debug)]
pub struct MotionSearch {
    pub camera: CameraId,
    pub start: Time90k,
    pub end: Time90k,
    pub region: Option<Region>,
    /// Intensity buckets for a timeline strip (0: none).
    pub buckets: usize,
}

/// A camera's settings as shown and changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub enabled: Option<bool>,
    pub sensitivity: Option<u8>,
    /// `Some(None)` clears the mask.
    pub mask: Option<Option<CellMask>>,
}

impl App {
    /// Searches a camera's motion index. Any role may search (it is how footage is found), and
    /// every search is on record, like each playback request.
    pub fn motion_search(&self, actor: &Actor, q: &MotionSearch) -> AppResult<MotionResult> {
        self.camera(q.camera)?;
        if q.end <= q.start {
            return Err(AppError::invalid(format!(
                "empty time range: end {} is not after start {}",
                q.end, q.start
            )));
        }
        if q.end - q.start > Duration90k::from_secs(MAX_SEARCH_SECS) {
            return Err(AppError::invalid(format!(
                "time range of {} is longer than the 31-day limit",
                q.end - q.start
            )));
        }
        if q.buckets > MAX_BUCKETS {
            return Err(AppError::invalid(format!(
                "buckets = {}: at most {MAX_BUCKETS}",
                q.buckets
            )));
        }
        let region = q.region.map(|r| r.cells()).transpose()?;
        self.store.audit(
            &actor.audit_name(),
            "motion_search",
            &format!("camera:{}", q.camera),
            json!({
                "start": q.start.to_rfc3339(),
                "end": q.end.to_rfc3339(),
                "region": q.region.map(|r| [r.x0, r.y0, r.x1, r.y1]),
            }),
        );
        Ok(nvr_storage::motion::search(
            &self.store,
            &MotionQuery {
                camera: q.camera,
                start: q.start,
                end: q.end,
                region,
                buckets: q.buckets,
            },
        )?)
    }

    /// A camera's analysis settings (the defaults when it has none of its own).
    pub fn motion_settings(&self, camera: CameraId) -> AppResult<MotionSettings> {
        self.camera(camera)?;
        Ok(self
            .store
            .motion_settings(camera)?
            .as_ref()
            .map(MotionSettings::from)
            .unwrap_or_default())
    }

    /// Changes a camera's analysis settings (admin), with its audit entry; the running
    /// analysis picks them up at once.
    pub fn change_motion_settings(
        &self,
        actor: &Actor,
        camera: CameraId,
        change: SettingsChange,
    ) -> AppResult<MotionSettings> {
        actor.require_admin()?;
        let mut s = self.motion_settings(camera)?;
        if let Some(v) = change.sensitivity {
            if !SENSITIVITY_RANGE.contains(&v) {
                return Err(AppError::invalid(format!(
                    "sensitivity {v}: must be {}..={}",
                    SENSITIVITY_RANGE.start(),
                    SENSITIVITY_RANGE.end()
                )));
            }
            s.sensitivity = v;
        }
        if let Some(e) = change.enabled {
            s.enabled = e;
        }
        if let Some(m) = change.mask {
            s.mask = m.unwrap_or(CellMask::EMPTY);
        }
        let row = MotionSettingsRow {
            camera_id: camera,
            enabled: s.enabled,
            sensitivity: s.sensitivity,
            mask: (!s.mask.is_empty()).then_some(s.mask),
        };
        let note = self.note(
            &actor.audit_name(),
            "motion_settings",
            format!("camera:{camera}"),
            json!({
                "enabled": s.enabled,
                "sensitivity": s.sensitivity,
                "masked_cells": s.mask.count(),
            }),
        );
        self.store.set_motion_settings(&row, note)?;
        self.reconcile_motion();
        Ok(s)
    }

    /// What a camera's analysis is doing (off when this is not the server).
    pub fn motion_status(&self, camera: CameraId) -> MotionStatus {
        self.cameras
            .motion
            .as_ref()
            .map_or_else(MotionStatus::off, |m| m.status(camera))
    }

    /// Reindexes a camera's recorded footage in `[start, end)` with its current settings
    /// (admin; blocking). `progress` gets (segments done, segments in all).
    pub fn reindex_motion(
        &self,
        actor: &Actor,
        camera: CameraId,
        start: Time90k,
        end: Time90k,
        progress: &mut dyn FnMut(u64, u64),
    ) -> AppResult<ReindexOutcome> {
        actor.require_admin()?;
        if end <= start || end - start > Duration90k::from_secs(MAX_REINDEX_SECS) {
            return Err(AppError::invalid(
                "reindex range: end must be after start, at most a year later",
            ));
        }
        let settings = self.motion_settings(camera)?;
        let req = ReindexRequest {
            camera,
            start,
            end,
            actor: actor.audit_name(),
            settings,
            config: self.motion.clone(),
        };
        let decoders = nvr_motion::gstreamer_decoders();
        nvr_motion::reindex::reindex(&self.store, &req, &decoders, progress)
            .map_err(|e| AppError::new(e.kind(), e.to_string()))
    }

    /// Tells the running analysis about camera or settings changes.
    pub(crate) fn reconcile_motion(&self) {
        if let Some(m) = &self.cameras.motion
            && let Err(e) = m.reconcile()
        {
            tracing::warn!(error = %e, "updating motion analysis failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_and_refuse_nonsense() {
        let r = Region::parse("0,0.5, 0.5,1").expect("region");
        assert_eq!(r.cells().expect("cells").count(), 64);
        for bad in [
            "",
            "1,2,3",
            "0,0,1,1,1",
            "0,0,2,1",
            "0.5,0,0.5,1",
            "a,b,c,d",
            "NaN,0,1,1",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }
}
