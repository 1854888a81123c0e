//! Evidence: exports (one lifecycle for the web and the CLI: validate, hold the range, write,
//! verify the bundle as a court would, then offer it), evidence holds, the audit log, and the
//! bounds that keep one user from crowding out recording (exports running at once, footage
//! held) or keeping plaintext copies of footage forever (bundles expire).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nvr_core::account::EXPORT_HOLD_OWNER;
use nvr_core::{CameraId, ErrorKind, Time90k};
use nvr_storage::export::{ExportRequest, WrittenBundle, validate, write_verified_bundle};
use nvr_storage::{AuditEntry, AuditFilter, AuditNote, ExportRow, HoldRow, NewExport, NewHold};
use serde_json::json;

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};

/// Bundles written at once: each reads and hashes footage at disk speed; more would only
/// share the disk and slow recording.
pub const EXPORT_SLOTS: usize = 2;

/// The longest range one hold may cover: a year.
pub const MAX_HOLD_SECS: i64 = 366 * 86_400;

/// Bytes done and total of the exports being written, by export id.
#[derive(Debug, Default)]
pub struct ExportProgress(Mutex<HashMap<i64, (u64, u64)>>);

impl ExportProgress {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (u64, u64)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set(&self, id: i64, done: u64, total: u64) {
        self.lock().insert(id, (done, total));
    }
    /// Fraction done of a running export.
    pub fn fraction(&self, id: i64) -> Option<f64> {
        self.lock()
            .get(&id)
            .map(|&(d, t)| if t == 0 { 0.0 } else { d as f64 / t as f64 })
    }
    fn remove(&self, id: i64) {
        self.lock().remove(&id);
    }
}

/// An export to make.
#[derive(Clone, Debug)]
pub struct ExportOrder {
    pub cameras: Vec<CameraId>,
    pub start: Time90k,
    pub end: Time90k,
    pub case_ref: String,
    pub reason: String,
    /// Add each camera's working copy: the video re-encoded with the recording time in the
    /// picture, for viewing (the original stays the evidence).
    pub working_copy: bool,
}

/// The longest a working copy may take to make, per camera: 4x the longest export (a slow
/// machine re-encodes 1080p at a fraction of real time); the export fails rather than hang.
const WORKING_COPY_LIMIT: std::time::Duration = std::time::Duration::from_secs(4 * 24 * 3600);

/// Working copies through GStreamer (`nvr-media`): storage never decodes.
fn working_copy_maker() -> nvr_storage::export::WorkingCopyMaker {
    nvr_storage::export::WorkingCopyMaker(Arc::new(|input, output| {
        nvr_media::burn_in_time(input, output, WORKING_COPY_LIMIT).map_err(|e| e.to_string())
    }))
}

/// A hold to place.
#[derive(Clone, Debug)]
pub struct HoldOrder {
    pub camera: CameraId,
    pub start: Time90k,
    pub end: Time90k,
    pub case_ref: String,
    pub reason: String,
}

/// Whether a bundle's file is kept in the data directory (made through the web API), as
/// opposed to written by the CLI wherever its operator said.
pub fn bundle_stored(e: &ExportRow) -> bool {
    !e.created_by.starts_with("cli:")
}

impl App {
    /// Checks the request and the actor's limits; returns the storage request.
    fn prepare_export(&self, actor: &Actor, order: &ExportOrder) -> AppResult<ExportRequest> {
        actor.require_evidence()?;
        let req = ExportRequest {
            cameras: order.cameras.clone(),
            start: order.start,
            end: order.end,
            case_ref: order.case_ref.clone(),
            reason: order.reason.clone(),
            operator: actor.audit_name(),
            export_id: None,
            working_copy: order.working_copy.then(working_copy_maker),
        };
        validate(&req)?;
        for c in &req.cameras {
            let row = self.camera(*c)?;
            // Refuse now rather than fail in the background: only sealed segments export.
            if self
                .store
                .sealed_segments_overlapping(*c, req.start.0, req.end.0)?
                .is_empty()
            {
                return Err(AppError::not_found(format!(
                    "no sealed recordings of camera {:?} between {} and {} (the last minute \
                     is still being written)",
                    row.name, req.start, req.end
                )));
            }
        }
        let running = self.store.running_exports_by(&req.operator)?;
        let max = u64::from(self.evidence.max_running_exports_per_user);
        if running >= max {
            return Err(AppError::precondition(format!(
                "{} has {running} exports running already (at most {max} at once); wait for \
                 one to finish",
                req.operator
            ))
            .with_detail("too_many_exports"));
        }
        Ok(req)
    }

    /// Records the export's start: its row, holds over its range (owned by the export, so
    /// retention keeps the footage while it is written) and audit entries, in one transaction.
    fn begin_export(&self, req: &ExportRequest) -> AppResult<nvr_storage::StartedExport> {
        let now = self.clock.realtime().0;
        let started = self.store.start_export(
            &NewExport {
                created_by: &req.operator,
                created_90k: now,
                cameras: &req.cameras,
                start_90k: req.start.0,
                end_90k: req.end.0,
                case_ref: &req.case_ref,
                reason: &req.reason,
                hold_owner: EXPORT_HOLD_OWNER,
                hold_reason: "export in progress",
            },
            |id| {
                req.cameras
                    .iter()
                    .map(|c| {
                        AuditNote::new(
                            now,
                            req.operator.clone(),
                            "export",
                            format!("camera:{c}"),
                            json!({"export": id, "start": req.start.to_rfc3339(),
                                   "end": req.end.to_rfc3339(), "case": req.case_ref,
                                   "reason": req.reason}),
                        )
                    })
                    .collect()
            },
        )?;
        Ok(started)
    }

    /// Records the end of an export and releases its holds.
    fn end_export(
        &self,
        started: &nvr_storage::StartedExport,
        result: &nvr_storage::Result<WrittenBundle>,
    ) {
        let now = self.clock.realtime().0;
        let outcome = match result {
            Ok(b) => Ok((b.bytes, b.sha256)),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = self.store.finish_export(started.id, outcome, now) {
            tracing::error!(export = started.id, error = %e, "recording the export's end failed");
        }
        for &h in &started.holds {
            if let Err(e) = self.store.release_hold(h, EXPORT_HOLD_OWNER, now, None) {
                tracing::error!(export = started.id, hold = h, error = %e,
                    "releasing an export's hold failed (the next start releases it)");
            }
        }
    }

    /// Starts an export in the background (web): the bundle lands in the data directory and
    /// is offered only once it verified. Returns its row at once.
    pub fn start_export(
        self: &Arc<Self>,
        actor: &Actor,
        order: &ExportOrder,
    ) -> AppResult<ExportRow> {
        let mut req = self.prepare_export(actor, order)?;
        let started = self.begin_export(&req)?;
        let id = started.id;
        req.export_id = Some(id);
        self.exports.set(id, 0, 0);
        let app = self.clone();
        tokio::spawn(async move {
            // Wait for a slot without holding a thread.
            let _slot = app.export_slots.clone().acquire_owned().await;
            let app2 = app.clone();
            let result = tokio::task::spawn_blocking(move || {
                let progress = app2.exports.clone();
                app2.store
                    .write_export_bundle(id, &req, &mut |d, t| progress.set(id, d, t))
            })
            .await
            .unwrap_or_else(|e| {
                Err(nvr_storage::StorageError::Format(format!(
                    "the export task failed: {e}"
                )))
            });
            if let Err(e) = &result {
                tracing::error!(export = id, error = %e, "export failed");
            }
            app.end_export(&started, &result);
            app.exports.remove(id);
        });
        self.export(actor, id)
    }

    /// Writes an export to `out` (CLI) with the same lifecycle as the web's: limits, holds,
    /// audit, the bundle verified before it gets its name, the export recorded.
    pub fn export_to_file(
        &self,
        actor: &Actor,
        order: &ExportOrder,
        out: &Path,
    ) -> AppResult<WrittenBundle> {
        let req = self.prepare_export(actor, order)?;
        if out.exists() {
            return Err(AppError::new(
                ErrorKind::AlreadyExists,
                format!("{} exists already: choose a new file", out.display()),
            ));
        }
        let started = self.begin_export(&req)?;
        let req = ExportRequest {
            export_id: Some(started.id),
            ..req
        };
        let result = write_verified_bundle(&self.store, &req, out, &mut |_, _| {});
        self.end_export(&started, &result);
        Ok(result?)
    }

    /// Every export, newest first (evidence role).
    pub fn exports(&self, actor: &Actor) -> AppResult<Vec<ExportRow>> {
        actor.require_evidence()?;
        Ok(self.store.exports()?)
    }

    /// The export `id`, or 404 (evidence role).
    pub fn export(&self, actor: &Actor, id: i64) -> AppResult<ExportRow> {
        actor.require_evidence()?;
        self.store
            .export(id)?
            .ok_or_else(|| AppError::not_found(format!("export {id}")))
    }

    /// Fraction done of a running export.
    pub fn export_progress(&self, id: i64) -> Option<f64> {
        self.exports.fraction(id)
    }

    /// Opens a ready bundle for download, with its audit entry (evidence role).
    pub fn open_bundle(&self, actor: &Actor, id: i64) -> AppResult<(ExportRow, std::fs::File)> {
        let row = self.export(actor, id)?;
        if row.state != "ready" {
            return Err(AppError::not_found(format!("export {id} is {}", row.state)));
        }
        if row.deleted_90k.is_some() {
            return Err(AppError::not_found(format!(
                "the bundle of export {id} expired and was deleted"
            )));
        }
        if !bundle_stored(&row) {
            return Err(AppError::not_found(format!(
                "export {id} was written by the command line to a file of its own; it is not \
                 kept on the recorder"
            )));
        }
        let file = self.store.open_export_bundle(id)?;
        self.store.audit(
            &actor.audit_name(),
            "export_download",
            &format!("export:{id}"),
            json!({}),
        );
        Ok((row, file))
    }

    /// Deletes bundles older than `evidence.export_keep_days` (0: never). Returns how many.
    pub fn expire_exports(&self) -> AppResult<usize> {
        let days = self.evidence.export_keep_days;
        if days == 0 {
            return Ok(0);
        }
        let now = self.clock.realtime();
        let before = now.0 - i64::from(days) * 86_400 * 90_000;
        let mut n = 0;
        for id in self.store.expired_exports(before)? {
            let Some(row) = self.store.export(id)? else {
                continue;
            };
            if bundle_stored(&row) {
                self.store.delete_export_bundle(id)?;
            }
            self.store.mark_export_deleted(
                id,
                now.0,
                self.note(
                    nvr_core::account::SYSTEM_ACTOR,
                    "export_expired",
                    format!("export:{id}"),
                    json!({"keep_days": days}),
                ),
            )?;
            tracing::info!(export = id, "an export bundle expired and was deleted");
            n += 1;
        }
        Ok(n)
    }

    /// After a stop: marks exports it interrupted failed, releases their holds, removes their
    /// partial files.
    pub fn recover_exports(&self) -> AppResult<()> {
        let now = self.clock.realtime().0;
        self.store.fail_running_exports(now)?;
        for h in self.store.holds(true)? {
            if h.created_by == EXPORT_HOLD_OWNER {
                self.store
                    .release_hold(h.id, EXPORT_HOLD_OWNER, now, None)?;
            }
        }
        let removed = self.store.remove_partial_exports()?;
        if removed > 0 {
            tracing::info!(files = removed, "removed partial export files a stop left");
        }
        Ok(())
    }

    /// The footage a user may hold, in bytes (`None`: no limit).
    fn max_held_bytes(&self) -> AppResult<Option<u64>> {
        let percent = self.evidence.max_held_percent_per_user;
        if percent == 0 {
            return Ok(None);
        }
        let total = self.store.disk_space()?.total_bytes;
        Ok(Some(total / 100 * u64::from(percent)))
    }

    /// Places an evidence hold (evidence role): exempts a camera's range from retention until
    /// released. Bounded per user by `evidence.max_held_percent_per_user`.
    pub fn create_hold(&self, actor: &Actor, order: &HoldOrder) -> AppResult<HoldRow> {
        actor.require_evidence()?;
        if order.end <= order.start {
            return Err(AppError::invalid("the hold's range is empty"));
        }
        if (order.end - order.start).0 > MAX_HOLD_SECS * 90_000 {
            return Err(AppError::invalid("a hold covers at most a year"));
        }
        if order.reason.trim().is_empty() {
            return Err(AppError::invalid("a hold needs a reason"));
        }
        for (what, v) in [
            ("case reference", &order.case_ref),
            ("reason", &order.reason),
        ] {
            if v.chars().count() > 1000 || v.chars().any(|c| c.is_control() && c != '\n') {
                return Err(AppError::invalid(format!(
                    "the {what} must be at most 1000 characters without control characters"
                )));
            }
        }
        self.camera(order.camera)?;
        let by = actor.audit_name();
        if let Some(max) = self.max_held_bytes()? {
            let held = self.store.held_bytes_by(&by)?;
            let more = self
                .store
                .range_bytes(order.camera, order.start.0, order.end.0)?;
            if held.saturating_add(more) > max {
                return Err(AppError::precondition(format!(
                    "{by} holds {held} bytes of footage already; this hold adds {more} and the \
                     limit is {max} (evidence.max_held_percent_per_user): release a hold first"
                ))
                .with_detail("held_bytes_limit")
                .with_fields(json!({"held_bytes": held, "hold_bytes": more, "max_bytes": max})));
            }
        }
        let now = self.clock.realtime().0;
        let id = self.store.insert_hold(
            &NewHold {
                camera: order.camera,
                start_90k: order.start.0,
                end_90k: order.end.0,
                case_ref: &order.case_ref,
                reason: &order.reason,
                created_by: &by,
                created_90k: now,
            },
            |id| {
                self.note(
                    &by,
                    "hold",
                    format!("camera:{}", order.camera),
                    json!({"hold": id, "start": order.start.to_rfc3339(),
                           "end": order.end.to_rfc3339(), "case": order.case_ref,
                           "reason": order.reason}),
                )
            },
        )?;
        self.store
            .hold(id)?
            .ok_or_else(|| AppError::internal("hold vanished after insert"))
    }

    /// Releases a hold (evidence role); an export's own hold ends with the export.
    pub fn release_hold(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require_evidence()?;
        let row = self
            .store
            .hold(id)?
            .ok_or_else(|| AppError::not_found(format!("hold {id}")))?;
        if row.created_by == EXPORT_HOLD_OWNER {
            return Err(AppError::precondition(
                "this hold protects an export being written; it ends with the export",
            ));
        }
        let by = actor.audit_name();
        self.store.release_hold(
            id,
            &by,
            self.clock.realtime().0,
            Some(self.note(
                &by,
                "hold_release",
                format!("camera:{}", row.camera_id),
                json!({"hold": id}),
            )),
        )?;
        Ok(())
    }

    /// Holds, active or all (evidence role).
    pub fn holds(&self, actor: &Actor, active_only: bool) -> AppResult<Vec<HoldRow>> {
        actor.require_evidence()?;
        Ok(self.store.holds(active_only)?)
    }

    /// Audit entries, newest first (evidence role).
    pub fn audit_entries(&self, actor: &Actor, f: &AuditFilter) -> AppResult<Vec<AuditEntry>> {
        actor.require_evidence()?;
        // Every entry made before this request is in the list.
        self.store.flush_audit();
        Ok(self.store.audit_entries(f)?)
    }
}
