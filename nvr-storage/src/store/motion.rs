//! `Store`'s typed operations on the motion index and each camera's analysis settings.

use nvr_core::CameraId;

use super::Store;
use crate::db::{AuditNote, MotionSettingsRow};
use crate::error::{IndexContext, Result};
use crate::motion::{MotionSpan, ReindexedSegment};

impl Store {
    /// A camera's analysis settings, if it has its own.
    pub fn motion_settings(&self, camera: CameraId) -> Result<Option<MotionSettingsRow>> {
        self.db
            .motion_settings(camera)
            .context(|| format!("reading the motion settings of camera {camera} (motion_settings)"))
    }

    /// Every camera's own analysis settings.
    pub fn all_motion_settings(&self) -> Result<Vec<MotionSettingsRow>> {
        self.db
            .all_motion_settings()
            .context(|| "reading every camera's motion settings (motion_settings)".to_owned())
    }

    /// Changes a camera's analysis settings, with its audit entry.
    pub fn set_motion_settings(&self, s: &MotionSettingsRow, note: AuditNote) -> Result<()> {
        self.db.set_motion_settings(s, note).context(|| {
            format!(
                "changing the motion settings of camera {} (motion_settings, audit_log)",
                s.camera_id
            )
        })
    }

    /// Adds live analysis' seconds with motion to the rows of the segments they fall in, every
    /// camera's in one transaction; returns, per span, whether it found its segment.
    pub fn append_motion(&self, spans: &[(CameraId, MotionSpan)]) -> Result<Vec<bool>> {
        self.db
            .append_motion(spans)
            .context(|| "adding live motion (motion)".to_owned())
    }

    /// Replaces the motion rows of reindexed segments (with `note`, the run's audit entry, if
    /// given); returns how many segments were written (gone ones, or another camera's, are
    /// left out).
    pub fn replace_motion(
        &self,
        camera: CameraId,
        segments: &[ReindexedSegment],
        note: Option<&AuditNote>,
    ) -> Result<usize> {
        self.db
            .replace_motion(camera, segments, note)
            .context(|| format!("replacing reindexed motion of camera {camera} (motion)"))
    }
}
