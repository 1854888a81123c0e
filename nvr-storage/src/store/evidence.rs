//! `Store`'s typed operations on evidence: holds, the export lifecycle, and reading the audit
//! log. Every change that people make carries its audit entry into its own transaction.

use nvr_core::CameraId;

use super::Store;
use crate::db::{
    AuditEntry, AuditFilter, AuditNote, ExportRow, HoldRow, NewExport, NewHold, StartedExport,
};
use crate::error::{IndexContext, Result};

impl Store {
    /// Evidence holds, oldest first: the active ones only, or every one ever placed.
    pub fn holds(&self, active_only: bool) -> Result<Vec<HoldRow>> {
        self.db
            .holds(active_only)
            .context(|| "listing holds (holds)".to_owned())
    }

    /// The hold `id`, if any.
    pub fn hold(&self, id: i64) -> Result<Option<HoldRow>> {
        self.db
            .hold(id)
            .context(|| format!("reading hold {id} (holds)"))
    }

    /// Places a hold, with the audit entry `audit` makes from its id.
    pub fn insert_hold(
        &self,
        h: &NewHold<'_>,
        audit: impl FnOnce(i64) -> AuditNote,
    ) -> Result<i64> {
        self.db
            .insert_hold(h, audit)
            .context(|| format!("placing a hold on camera {} (holds, audit_log)", h.camera))
    }

    /// Releases a hold as `by`, with its audit entry if one is given (an export's own holds
    /// are released without one: the export's entry covers them).
    pub fn release_hold(
        &self,
        id: i64,
        by: &str,
        at_90k: i64,
        audit: Option<AuditNote>,
    ) -> Result<()> {
        self.db
            .release_hold(id, by, at_90k, audit)
            .context(|| format!("releasing hold {id} (holds)"))
    }

    /// Bytes of footage under the active holds `by` placed.
    pub fn held_bytes_by(&self, by: &str) -> Result<u64> {
        self.db
            .held_bytes_by(by)
            .context(|| "summing the footage held by a user (holds, segments)".to_owned())
    }

    /// Bytes of the camera's segments overlapping `[start_90k, end_90k)`.
    pub fn range_bytes(&self, camera: CameraId, start_90k: i64, end_90k: i64) -> Result<u64> {
        self.db
            .range_bytes(camera, start_90k, end_90k)
            .context(|| format!("summing the footage of camera {camera} in a range (segments)"))
    }

    /// Records a running export with the holds that keep its footage while it is written, and
    /// the audit entries `audit` makes from its id.
    pub fn start_export(
        &self,
        e: &NewExport<'_>,
        audit: impl FnOnce(i64) -> Vec<AuditNote>,
    ) -> Result<StartedExport> {
        self.db
            .start_export(e, audit)
            .context(|| "starting an export (exports, holds, audit_log)".to_owned())
    }

    /// Records how an export ended: its bundle's size and SHA-256, or the error.
    pub fn finish_export(
        &self,
        id: i64,
        result: std::result::Result<(u64, [u8; 32]), String>,
        finished_90k: i64,
    ) -> Result<()> {
        self.db
            .finish_export(id, result, finished_90k)
            .context(|| format!("finishing export {id} (exports)"))
    }

    /// How many exports `by` has running.
    pub fn running_exports_by(&self, by: &str) -> Result<u64> {
        self.db
            .running_exports_by(by)
            .context(|| "counting a user's running exports (exports)".to_owned())
    }

    /// Every export, newest first.
    pub fn exports(&self) -> Result<Vec<ExportRow>> {
        self.db
            .exports()
            .context(|| "listing exports (exports)".to_owned())
    }

    /// The export `id`, if any.
    pub fn export(&self, id: i64) -> Result<Option<ExportRow>> {
        self.db
            .export(id)
            .context(|| format!("reading export {id} (exports)"))
    }

    /// Exports whose bundle expired before `before_90k` and is not deleted yet.
    pub fn expired_exports(&self, before_90k: i64) -> Result<Vec<i64>> {
        self.db
            .expired_exports(before_90k)
            .context(|| "listing expired exports (exports)".to_owned())
    }

    /// Records that an export's bundle was deleted, with its audit entry.
    pub fn mark_export_deleted(&self, id: i64, at_90k: i64, audit: AuditNote) -> Result<()> {
        self.db
            .mark_export_deleted(id, at_90k, audit)
            .context(|| format!("marking export {id} deleted (exports, audit_log)"))
    }

    /// Marks every export still running as failed (a restart interrupted it); returns how many.
    pub fn fail_running_exports(&self, at_90k: i64) -> Result<u64> {
        self.db
            .fail_running_exports(at_90k)
            .context(|| "failing interrupted exports (exports)".to_owned())
    }

    /// Audit entries matching `f`, newest first. Entries of [`Store::audit`] still queued are
    /// not included: call [`Store::flush_audit`] first.
    pub fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.db
            .audit_list(f)
            .context(|| "reading the audit log (audit_log)".to_owned())
    }
}
