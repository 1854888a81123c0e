//! Cameras: testing a URL, adding (validated and probed first), changing (retention changes
//! that would delete footage now must be confirmed), deleting (never footage under an
//! evidence hold), and what the UI shows of each (storage use and effective retention).
//! Every change is one transaction with its audit entry; a running recorder is told at once.

use std::time::Duration;

use nvr_core::{CameraId, CameraUrl, ErrorKind, HostKind};
use nvr_ingest::probe::{ProbeResult, probe};
use nvr_ingest::source::ConnectTarget;
use nvr_storage::db::{AuditNote, CameraRetention, CameraRow};
use nvr_storage::retention::{self, RetentionPolicy};
use nvr_storage::store::CameraEdit;
use serde_json::json;

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};

/// How long a camera test may take (the UI says so next to the button).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A camera to add, or a URL to test.
#[derive(Clone, Default)]
pub struct NewCamera {
    pub name: String,
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Add it even if it cannot be reached now (it is retried forever).
    pub skip_probe: bool,
}

impl std::fmt::Debug for NewCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCamera")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("skip_probe", &self.skip_probe)
            .finish()
    }
}

/// A change to a camera; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct CameraChange {
    pub name: Option<String>,
    pub url: Option<String>,
    /// `Some(None)` clears the username.
    pub username: Option<Option<String>>,
    /// `Some("")` clears the password.
    pub password: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)`: back to the server default; `Some(Some(0))`: no limit.
    pub retain_max_bytes: Option<Option<u64>>,
    pub retain_max_age_days: Option<Option<u64>>,
    /// The person saw what a retention change deletes now and confirmed it.
    pub confirm_delete: bool,
}

impl std::fmt::Debug for CameraChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraChange")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("retain_max_bytes", &self.retain_max_bytes)
            .field("retain_max_age_days", &self.retain_max_age_days)
            .finish_non_exhaustive()
    }
}

/// What a camera occupies and keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraStorage {
    pub bytes: u64,
    pub oldest_90k: Option<i64>,
    pub newest_90k: Option<i64>,
    /// Effective limits (`None` = no limit).
    pub retention: RetentionPolicy,
    /// Bytes over the quota retention may not delete because holds protect them.
    pub held_over_quota_bytes: u64,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl App {
    /// Validates a camera URL against syntax and the host-name policy.
    pub fn checked_camera_url(&self, url: &str) -> AppResult<CameraUrl> {
        let url = CameraUrl::parse(url).map_err(|e| AppError::invalid(e.to_string()))?;
        if let HostKind::Name(n) = url.host()
            && !self.cameras.egress.allow_host_names()
        {
            return Err(AppError::invalid(format!(
                "camera host {n:?} is a name, and resolving names is disabled \
                 (cameras.allow_host_names = false in the config): use the camera's IP address"
            )));
        }
        Ok(url)
    }

    fn connect_target(&self, c: &NewCamera) -> AppResult<ConnectTarget> {
        let url = self.checked_camera_url(&c.url)?;
        if non_empty(&c.password).is_some() && non_empty(&c.username).is_none() {
            return Err(AppError::invalid("a camera password needs a username"));
        }
        Ok(ConnectTarget {
            url,
            username: non_empty(&c.username).map(str::to_owned),
            password: non_empty(&c.password).map(str::to_owned),
        })
    }

    async fn probe_target(&self, target: &ConnectTarget) -> AppResult<ProbeResult> {
        // An admin testing an address is the one outbound connection not to a configured
        // camera, allowed for the duration of the test only.
        let _allow = self.cameras.egress.allow_probe(&target.url);
        Ok(probe(self.cameras.source.as_ref(), target, PROBE_TIMEOUT).await?)
    }

    /// Tests a camera without adding it (admin): what it offers, or why it cannot be used.
    pub async fn test_camera(&self, actor: &Actor, c: &NewCamera) -> AppResult<ProbeResult> {
        actor.require_admin()?;
        let target = self.connect_target(c)?;
        self.store.audit(
            &actor.audit_name(),
            "camera_test",
            &format!("url:{}", target.url),
            json!({}),
        );
        self.probe_target(&target).await
    }

    /// Adds a camera (admin; the CLI too): validated, probed unless `skip_probe`, stored with
    /// its audit entry, and started. Nothing is stored when any step fails. Returns the
    /// camera and, when probed, what the probe saw.
    pub async fn add_camera(
        &self,
        actor: &Actor,
        c: &NewCamera,
    ) -> AppResult<(CameraRow, Option<ProbeResult>)> {
        actor.require_admin()?;
        let name = c.name.trim();
        nvr_core::validate_camera_name(name).map_err(AppError::invalid)?;
        if self.store.db().camera_by_name(name)?.is_some() {
            return Err(AppError::new(
                ErrorKind::AlreadyExists,
                format!("a camera named {name:?} exists already"),
            ));
        }
        let target = self.connect_target(c)?;
        let probed = if c.skip_probe {
            None
        } else {
            Some(self.probe_target(&target).await?)
        };
        let by = actor.audit_name();
        let id = self.store.add_camera(
            name,
            &target.url,
            target.username.as_deref(),
            target.password.as_deref(),
            |id| {
                self.note(
                    &by,
                    "camera_add",
                    format!("camera:{id}"),
                    json!({"name": name, "url": target.url.as_str(),
                           "probed": probed.is_some()}),
                )
            },
        )?;
        tracing::info!(camera = %id, name = %name, by = %by, "camera added");
        self.reconcile_cameras();
        let row = self
            .store
            .db()
            .camera(id)?
            .ok_or_else(|| AppError::internal("camera vanished after insert"))?;
        Ok((row, probed))
    }

    /// Changes a camera (admin). A camera whose connection settings changed is restarted. A
    /// retention change that would delete footage now is refused (409, `retention_deletes`,
    /// with what it would delete) unless `confirm_delete`.
    pub async fn change_camera(
        &self,
        actor: &Actor,
        id: CameraId,
        change: &CameraChange,
    ) -> AppResult<CameraRow> {
        actor.require_admin()?;
        let row = self.camera(id)?;
        let name = change
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or(&row.name)
            .to_owned();
        let url = self.checked_camera_url(change.url.as_deref().unwrap_or(&row.url))?;
        let username = match &change.username {
            None => row.username.clone(),
            Some(u) => u.clone().filter(|u| !u.is_empty()),
        };
        let enabled = change.enabled.unwrap_or(row.enabled);
        let connection_changed = change.name.is_some()
            || change.url.is_some()
            || change.username.is_some()
            || change.password.is_some()
            || change.enabled.is_some();
        let retention = (change.retain_max_bytes.is_some() || change.retain_max_age_days.is_some())
            .then(|| CameraRetention {
                max_bytes: change.retain_max_bytes.unwrap_or(row.retain_max_bytes),
                max_age_secs: match change.retain_max_age_days {
                    None => row.retain_max_age_secs,
                    Some(d) => d.map(|d| d.saturating_mul(86_400)),
                },
            });
        if let Some(r) = retention {
            let mut after = row.clone();
            after.retain_max_bytes = r.max_bytes;
            after.retain_max_age_secs = r.max_age_secs;
            let policy = RetentionPolicy::for_camera(&after, self.cameras.default_retention);
            let preview = retention::preview(&self.store, id, policy, self.clock.realtime())?;
            if preview.bytes > 0 && !change.confirm_delete {
                return Err(AppError::precondition(format!(
                    "these limits delete {} segments ({} bytes) of camera {:?} now; send \
                     \"confirm_delete\": true to apply them",
                    preview.segments, preview.bytes, row.name
                ))
                .with_detail("retention_deletes")
                .with_fields(json!({
                    "would_delete_segments": preview.segments,
                    "would_delete_bytes": preview.bytes,
                    "new_oldest": preview.new_oldest_90k.map(|t| nvr_core::Time90k(t).to_rfc3339()),
                })));
            }
        }
        let by = actor.audit_name();
        self.store.update_camera(
            id,
            &CameraEdit {
                name: &name,
                url: &url,
                username: username.as_deref(),
                password: change.password.as_deref(),
                enabled,
            },
            retention,
            self.note(
                &by,
                "camera_change",
                format!("camera:{id}"),
                json!({"name": name, "url": url.as_str(), "enabled": enabled,
                       "password_changed": change.password.is_some(),
                       "retain_max_bytes": retention.map(|r| r.max_bytes),
                       "retain_max_age_secs": retention.map(|r| r.max_age_secs)}),
            ),
        )?;
        if connection_changed && let Some(r) = &self.cameras.recorder {
            r.stop_camera(id).await;
        }
        self.reconcile_cameras();
        if retention.is_some() {
            // Confirmed limits apply now, not at the next pass.
            let store = self.store.clone();
            let policy =
                RetentionPolicy::for_camera(&self.camera(id)?, self.cameras.default_retention);
            let now = self.clock.realtime();
            tokio::task::spawn_blocking(move || retention::enforce(&store, id, policy, now))
                .await??;
        }
        tracing::info!(camera = %id, by = %by, "camera changed");
        self.camera(id)
    }

    /// Deletes a camera and its recordings (admin). Refused (409, `held`, listing the holds)
    /// while evidence holds cover any of its footage; with recordings, only when
    /// `delete_recordings` confirms it. The deletion and its audit entry (which lists every
    /// segment, so `nvr check` can tell it from footage that vanished) are one transaction.
    pub async fn delete_camera(
        &self,
        actor: &Actor,
        id: CameraId,
        delete_recordings: bool,
    ) -> AppResult<()> {
        actor.require_admin()?;
        let row = self.camera(id)?;
        let holds: Vec<i64> = self
            .store
            .db()
            .holds(true)?
            .into_iter()
            .filter(|h| h.camera_id == id)
            .map(|h| h.id)
            .collect();
        if !holds.is_empty() {
            return Err(nvr_storage::StorageError::Held { camera: id, holds }.into());
        }
        if self.store.db().camera_segment_count(id)? > 0 && !delete_recordings {
            return Err(AppError::new(
                ErrorKind::AlreadyExists,
                format!(
                    "camera {:?} has recordings; confirm with ?delete_recordings=true to delete \
                     them too",
                    row.name
                ),
            ));
        }
        // Stop recording first (no reconcile may restart it meanwhile), so its open segment is
        // sealed; if the deletion is then refused, recording resumes.
        self.store.db().set_camera_enabled(id, false)?;
        if let Some(r) = &self.cameras.recorder {
            r.stop_camera(id).await;
        }
        let store = self.store.clone();
        let by = actor.audit_name();
        let now = self.clock.realtime().0;
        let result = tokio::task::spawn_blocking(move || {
            store.delete_camera(id, |d| {
                AuditNote::new(
                    now,
                    by,
                    nvr_storage::db::CAMERA_DELETE_ACTION,
                    format!("camera:{id}"),
                    json!({"name": d.camera.name,
                           "segments": d.segments.iter().map(|s| s.0).collect::<Vec<_>>()}),
                )
            })
        })
        .await?;
        if let Err(e) = result {
            if row.enabled {
                self.store.db().set_camera_enabled(id, true)?;
            }
            self.reconcile_cameras();
            return Err(e.into());
        }
        self.reconcile_cameras();
        tracing::info!(camera = %id, name = %row.name, by = %actor.audit_name(), "camera deleted");
        Ok(())
    }

    /// The camera `id`, or 404.
    pub fn camera(&self, id: CameraId) -> AppResult<CameraRow> {
        self.store
            .db()
            .camera(id)?
            .ok_or_else(|| AppError::not_found(format!("camera {id}")))
    }

    /// Every camera.
    pub fn cameras(&self) -> AppResult<Vec<CameraRow>> {
        Ok(self.store.db().cameras()?)
    }

    /// What a camera occupies and keeps.
    pub fn camera_storage(&self, c: &CameraRow) -> AppResult<CameraStorage> {
        let db = self.store.db();
        let (bytes, oldest_90k, _) = db.camera_usage(c.id)?;
        let newest_90k = db.last_segment_end(c.id)?;
        let retention = RetentionPolicy::for_camera(c, self.cameras.default_retention);
        let held = db.holds(true)?.iter().any(|h| h.camera_id == c.id);
        let held_over_quota_bytes = match retention.max_bytes {
            Some(m) if held && bytes > m => bytes - m,
            _ => 0,
        };
        Ok(CameraStorage {
            bytes,
            oldest_90k,
            newest_90k,
            retention,
            held_over_quota_bytes,
        })
    }

    /// The retention limits of cameras without their own.
    pub fn default_retention(&self) -> RetentionPolicy {
        self.cameras.default_retention
    }

    fn reconcile_cameras(&self) {
        if let Some(r) = &self.cameras.recorder
            && let Err(e) = r.reconcile()
        {
            tracing::warn!(error = %e, "re-reading the camera list failed");
        }
        self.reconcile_motion();
    }

    pub(crate) fn note(
        &self,
        actor: &str,
        action: &str,
        object: String,
        detail: serde_json::Value,
    ) -> AuditNote {
        AuditNote::new(self.clock.realtime().0, actor, action, object, detail)
    }
}
