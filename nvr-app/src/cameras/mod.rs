//! Cameras: testing their URLs, adding (validated and probed first), changing (retention
//! changes that would delete footage now must be confirmed), deleting (never footage under an
//! evidence hold), and what the UI shows of each (storage use and effective retention, per
//! stream). A camera has a main stream and optionally a sub-stream (`sub_url`), sharing its
//! credentials; each is validated and probed alike, and each stream has its own retention.
//! Every change is one transaction with its audit entry; a running recorder is told at once.

mod retention;

pub use retention::CameraStorage;

use std::time::Duration;

use nvr_core::{CameraId, CameraUrl, ErrorKind, HostKind, Stream};
use nvr_ingest::probe::{ProbeResult, probe};
use nvr_ingest::source::ConnectTarget;
use nvr_storage::retention::RetentionPolicy;
use nvr_storage::store::CameraEdit;
use nvr_storage::{AuditNote, CameraRetention, CameraRow};
use serde_json::json;

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};

/// How long a camera test may take (the UI says so next to the button).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A camera to add, or URLs to test: also the body of `POST /api/cameras` and
/// `POST /api/cameras/test` (only `url` is required).
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCamera {
    #[serde(default)]
    pub name: String,
    /// The main stream's URL.
    pub url: String,
    /// The sub-stream's URL, if the camera has one (empty: none).
    #[serde(default)]
    pub sub_url: Option<String>,
    /// Record the sub-stream (default: yes); else it is pulled for live view only.
    #[serde(default)]
    pub record_sub: Option<bool>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Add it even if it cannot be reached now (it is retried forever).
    #[serde(default)]
    pub skip_probe: bool,
    /// Record the main stream's audio (default: no; recording sound needs a justification).
    #[serde(default)]
    pub record_audio: bool,
    /// Why sound is recorded (optional; kept in the audit entry with the switch).
    #[serde(default)]
    pub audio_reason: Option<String>,
}

impl std::fmt::Debug for NewCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCamera")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("sub_url", &self.sub_url)
            .field("record_sub", &self.record_sub)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("skip_probe", &self.skip_probe)
            .field("record_audio", &self.record_audio)
            .field("audio_reason", &self.audio_reason)
            .finish()
    }
}

/// A change to a camera; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct CameraChange {
    pub name: Option<String>,
    pub url: Option<String>,
    /// `Some(None)` (or an empty URL) removes the sub-stream; its recordings stay until
    /// retention takes them.
    pub sub_url: Option<Option<String>>,
    pub record_sub: Option<bool>,
    /// `Some(None)` clears the username.
    pub username: Option<Option<String>>,
    /// `Some("")` clears the password.
    pub password: Option<String>,
    pub enabled: Option<bool>,
    /// Record the main stream's audio (admin; audited with the rest of the change).
    pub record_audio: Option<bool>,
    /// Why sound is recorded, or no longer (optional; only with a `record_audio` switch, kept
    /// in its audit entry).
    pub audio_reason: Option<String>,
    /// The main stream's limits. `Some(None)`: back to the server default; `Some(Some(0))`:
    /// no limit.
    pub retain_max_bytes: Option<Option<u64>>,
    pub retain_max_age_days: Option<Option<u64>>,
    /// The sub-stream's limits, the same way.
    pub sub_retain_max_bytes: Option<Option<u64>>,
    pub sub_retain_max_age_days: Option<Option<u64>>,
    /// The person saw what a retention change deletes now and confirmed it.
    pub confirm_delete: bool,
}

impl std::fmt::Debug for CameraChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraChange")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("sub_url", &self.sub_url)
            .field("record_sub", &self.record_sub)
            .field("enabled", &self.enabled)
            .field("record_audio", &self.record_audio)
            .field("audio_reason", &self.audio_reason)
            .field("retain_max_bytes", &self.retain_max_bytes)
            .field("retain_max_age_days", &self.retain_max_age_days)
            .field("sub_retain_max_bytes", &self.sub_retain_max_bytes)
            .field("sub_retain_max_age_days", &self.sub_retain_max_age_days)
            .finish_non_exhaustive()
    }
}

/// What testing a camera found: its main stream, and its sub-stream when one was given (what
/// it offers, or why it cannot be used).
#[derive(Debug)]
pub struct CameraTest {
    pub main: ProbeResult,
    pub sub: Option<AppResult<ProbeResult>>,
}

/// A probe's outcome as structured detail: what the stream offers, or `{"error","kind"}`.
pub fn probe_json(r: &AppResult<ProbeResult>) -> serde_json::Value {
    match r {
        Ok(p) => serde_json::to_value(p).unwrap_or_default(),
        Err(e) => json!({"error": e.message, "kind": e.detail}),
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A sub-stream failure, said to be the sub-stream's.
fn sub_stream_error(e: AppError) -> AppError {
    AppError {
        message: format!("sub-stream: {}", e.message),
        ..e
    }
}

/// Where to connect for a camera's streams: the main one and, if given, the sub-stream (the
/// same credentials).
struct Targets {
    main: ConnectTarget,
    sub: Option<ConnectTarget>,
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

    /// Validates a sub-stream URL like the main one's; it must be another URL.
    fn checked_sub_url(&self, sub: &str, main: &CameraUrl) -> AppResult<CameraUrl> {
        let sub = self
            .checked_camera_url(sub)
            .map_err(|e| AppError::invalid(format!("sub-stream URL: {}", e.message)))?;
        if sub == *main {
            return Err(AppError::invalid(
                "the sub-stream URL is the main stream's: give the camera's second stream, or \
                 none",
            ));
        }
        Ok(sub)
    }

    fn connect_targets(&self, c: &NewCamera) -> AppResult<Targets> {
        let url = self.checked_camera_url(&c.url)?;
        let sub = non_empty(&c.sub_url)
            .map(|s| self.checked_sub_url(s, &url))
            .transpose()?;
        if non_empty(&c.password).is_some() && non_empty(&c.username).is_none() {
            return Err(AppError::invalid("a camera password needs a username"));
        }
        let target = |url| ConnectTarget {
            url,
            username: non_empty(&c.username).map(str::to_owned),
            password: non_empty(&c.password).map(str::to_owned),
            // A test learns what audio is offered from the SDP; it never takes it.
            audio: false,
        };
        Ok(Targets {
            main: target(url),
            sub: sub.map(target),
        })
    }

    async fn probe_target(&self, target: &ConnectTarget) -> AppResult<ProbeResult> {
        // An admin testing an address is the one outbound connection not to a configured
        // camera, allowed for the duration of the test only.
        let _allow = self.cameras.egress.allow_probe(&target.url);
        Ok(probe(self.cameras.source.as_ref(), target, PROBE_TIMEOUT).await?)
    }

    /// Probes both streams at once.
    async fn probe_targets(
        &self,
        t: &Targets,
    ) -> (AppResult<ProbeResult>, Option<AppResult<ProbeResult>>) {
        let sub = async {
            match &t.sub {
                Some(s) => Some(self.probe_target(s).await.map_err(sub_stream_error)),
                None => None,
            }
        };
        tokio::join!(self.probe_target(&t.main), sub)
    }

    /// Tests a camera's streams without adding it (admin): what each offers, or why it cannot
    /// be used. A main stream that fails is the error (with the sub-stream's outcome in its
    /// fields, `sub`); a sub-stream that fails is reported beside the main stream's result.
    pub async fn test_camera(&self, actor: &Actor, c: &NewCamera) -> AppResult<CameraTest> {
        actor.require_admin()?;
        let targets = self.connect_targets(c)?;
        for t in std::iter::once(&targets.main).chain(&targets.sub) {
            self.store.audit(
                &actor.audit_name(),
                "camera_test",
                &format!("url:{}", t.url),
                json!({}),
            );
        }
        match self.probe_targets(&targets).await {
            (Ok(main), sub) => Ok(CameraTest { main, sub }),
            (Err(e), Some(sub)) => {
                let mut fields = e.fields.clone().unwrap_or_else(|| json!({}));
                fields["sub"] = probe_json(&sub);
                Err(e.with_fields(fields))
            }
            (Err(e), None) => Err(e),
        }
    }

    /// Adds a camera (admin; the CLI too): validated, both streams probed unless `skip_probe`,
    /// stored with its audit entry, and started. Nothing is stored when any step fails.
    /// Returns the camera and, when probed, what the probes saw.
    pub async fn add_camera(
        &self,
        actor: &Actor,
        c: &NewCamera,
    ) -> AppResult<(CameraRow, Option<CameraTest>)> {
        actor.require_admin()?;
        let name = c.name.trim();
        nvr_core::validate_camera_name(name).map_err(AppError::invalid)?;
        if self.blocking(|| self.store.camera_by_name(name))?.is_some() {
            return Err(AppError::new(
                ErrorKind::AlreadyExists,
                format!("a camera named {name:?} exists already"),
            ));
        }
        let targets = self.connect_targets(c)?;
        let audio_reason = checked_audio_reason(c.audio_reason.as_deref(), c.record_audio)?;
        let probed = if c.skip_probe {
            None
        } else {
            let (main, sub) = self.probe_targets(&targets).await;
            Some(CameraTest {
                main: main?,
                sub: sub.transpose()?.map(Ok),
            })
        };
        let record_sub = c.record_sub.unwrap_or(true);
        let by = actor.audit_name();
        let sub_url = targets.sub.as_ref().map(|t| &t.url);
        let id = self.blocking(|| {
            self.store.add_camera(
                &CameraEdit {
                    name,
                    url: &targets.main.url,
                    sub_url,
                    record_sub,
                    username: targets.main.username.as_deref(),
                    password: targets.main.password.as_deref(),
                    enabled: true,
                    record_audio: c.record_audio,
                },
                |id| {
                    self.note(
                        &by,
                        "camera_add",
                        format!("camera:{id}"),
                        json!({"name": name, "url": targets.main.url.as_str(),
                           "sub_url": sub_url.map(CameraUrl::as_str),
                           "record_sub": sub_url.is_some() && record_sub,
                           "record_audio": c.record_audio,
                           "audio_reason": audio_reason,
                           "probed": probed.is_some()}),
                    )
                },
            )
        })?;
        tracing::info!(camera = %id, name = %name, by = %by, "camera added");
        self.blocking(|| self.reconcile_cameras());
        let row = self
            .blocking(|| self.store.camera(id))?
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
        let row = self.blocking(|| self.camera(id))?;
        let name = change
            .name
            .as_deref()
            .map(str::trim)
            .unwrap_or(&row.name)
            .to_owned();
        let url = self.checked_camera_url(change.url.as_deref().unwrap_or(&row.url))?;
        let sub_url = match &change.sub_url {
            None => row.sub_url.clone(),
            Some(s) => s.clone().filter(|s| !s.is_empty()),
        }
        .map(|s| self.checked_sub_url(&s, &url))
        .transpose()?;
        let record_sub = change.record_sub.unwrap_or(row.record_sub);
        let username = match &change.username {
            None => row.username.clone(),
            Some(u) => u.clone().filter(|u| !u.is_empty()),
        };
        let enabled = change.enabled.unwrap_or(row.enabled);
        let record_audio = change.record_audio.unwrap_or(row.record_audio);
        let audio_reason = checked_audio_reason(
            change.audio_reason.as_deref(),
            record_audio != row.record_audio,
        )?;
        let connection_changed = change.name.is_some()
            || change.url.is_some()
            || change.sub_url.is_some()
            || change.record_sub.is_some()
            || change.username.is_some()
            || change.password.is_some()
            || change.enabled.is_some()
            || record_audio != row.record_audio;
        let retention = retention_changes(&row, change);
        if retention.iter().any(|(s, _)| *s == Stream::Sub) && !row.has_sub_row && sub_url.is_none()
        {
            return Err(AppError::invalid(format!(
                "camera {:?} has no sub-stream to set the retention of",
                row.name
            )));
        }
        self.blocking(|| self.confirm_retention(&row, &retention, change.confirm_delete))?;
        let by = actor.audit_name();
        let mut detail = json!({"name": name, "url": url.as_str(), "enabled": enabled,
            "sub_url": sub_url.as_ref().map(CameraUrl::as_str), "record_sub": record_sub,
            "password_changed": change.password.is_some(), "record_audio": record_audio});
        if record_audio != row.record_audio {
            // Switching sound recording on or off is named on its own in the log, so an
            // auditor finds who did it and when without comparing entries.
            detail["record_audio_changed"] = json!(true);
            if let Some(reason) = &audio_reason {
                detail["audio_reason"] = json!(reason);
            }
        }
        for &(stream, r) in &retention {
            let prefix = match stream {
                Stream::Main => "",
                Stream::Sub => "sub_",
            };
            detail[format!("{prefix}retain_max_bytes")] = json!(r.max_bytes);
            detail[format!("{prefix}retain_max_age_secs")] = json!(r.max_age_secs);
        }
        self.blocking(|| {
            self.store.update_camera(
                id,
                &CameraEdit {
                    name: &name,
                    url: &url,
                    sub_url: sub_url.as_ref(),
                    record_sub,
                    username: username.as_deref(),
                    password: change.password.as_deref(),
                    enabled,
                    record_audio,
                },
                &retention,
                self.note(&by, "camera_change", format!("camera:{id}"), detail),
            )
        })?;
        if connection_changed && let Some(r) = &self.cameras.recorder {
            r.stop_camera(id).await;
        }
        self.blocking(|| self.reconcile_cameras());
        if !retention.is_empty() {
            // Confirmed limits apply now, not at the next pass.
            let streams: Vec<Stream> = retention.iter().map(|(s, _)| *s).collect();
            self.enforce_retention(id, &streams).await?;
        }
        tracing::info!(camera = %id, by = %by, "camera changed");
        self.blocking(|| self.camera(id))
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
        let row = self.blocking(|| self.camera(id))?;
        let holds: Vec<i64> = self
            .blocking(|| self.store.holds(true))?
            .into_iter()
            .filter(|h| h.camera_id == id)
            .map(|h| h.id)
            .collect();
        if !holds.is_empty() {
            return Err(nvr_storage::StorageError::Held { camera: id, holds }.into());
        }
        if self.blocking(|| self.store.camera_segment_count(id))? > 0 && !delete_recordings {
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
        self.blocking(|| self.store.set_camera_enabled(id, false))?;
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
                    nvr_storage::CAMERA_DELETE_ACTION,
                    format!("camera:{id}"),
                    json!({"name": d.camera.name,
                           "segments": d.segments.iter().map(|s| s.0).collect::<Vec<_>>()}),
                )
            })
        })
        .await?;
        if let Err(e) = result {
            if row.enabled {
                self.blocking(|| self.store.set_camera_enabled(id, true))?;
            }
            self.blocking(|| self.reconcile_cameras());
            return Err(e.into());
        }
        self.blocking(|| self.reconcile_cameras());
        tracing::info!(camera = %id, name = %row.name, by = %actor.audit_name(), "camera deleted");
        Ok(())
    }

    /// The camera `id`, or 404.
    pub fn camera(&self, id: CameraId) -> AppResult<CameraRow> {
        self.store
            .camera(id)?
            .ok_or_else(|| AppError::not_found(format!("camera {id}")))
    }

    /// Every camera.
    pub fn cameras(&self) -> AppResult<Vec<CameraRow>> {
        Ok(self.store.cameras()?)
    }

    /// The camera a command line names: by id when `name_or_id` is a number, else by name;
    /// 404 when there is none.
    pub fn camera_named(&self, name_or_id: &str) -> AppResult<CameraRow> {
        let row = match name_or_id.parse::<i64>() {
            Ok(id) => self.store.camera(CameraId(id))?,
            Err(_) => self.store.camera_by_name(name_or_id)?,
        };
        row.ok_or_else(|| AppError::not_found(format!("no camera {name_or_id:?}")))
    }

    /// Bytes of recordings on disk of every stream of `camera`.
    pub fn camera_bytes(&self, camera: CameraId) -> AppResult<u64> {
        Ok(self.store.camera_usage(camera)?.0)
    }

    /// The video parameters (codec, size, sample entry) stored under `id`.
    pub fn video_params(&self, id: i64) -> AppResult<nvr_core::VideoParams> {
        Ok(self.store.video_params(id)?)
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

/// The longest reason for a sound recording switch, in characters.
pub const MAX_AUDIO_REASON_CHARS: usize = 500;

/// A reason given with a sound recording switch: trimmed, at most
/// [`MAX_AUDIO_REASON_CHARS`], no control characters but line breaks; refused when nothing is
/// switched (it would be kept nowhere). Empty is no reason.
fn checked_audio_reason(reason: Option<&str>, switching: bool) -> AppResult<Option<String>> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if !switching {
        return Err(AppError::invalid(
            "audio_reason goes with switching sound recording (record_audio) on or off",
        ));
    }
    if reason.chars().count() > MAX_AUDIO_REASON_CHARS {
        return Err(AppError::invalid(format!(
            "audio_reason is longer than {MAX_AUDIO_REASON_CHARS} characters"
        )));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::invalid(
            "audio_reason must not contain control characters",
        ));
    }
    Ok(Some(reason.to_owned()))
}

/// The streams whose retention `change` sets, with their new overrides (the fields it leaves
/// out keep their values).
fn retention_changes(row: &CameraRow, change: &CameraChange) -> Vec<(Stream, CameraRetention)> {
    let days = |d: Option<u64>| d.map(|d| d.saturating_mul(86_400));
    [
        (
            Stream::Main,
            change.retain_max_bytes,
            change.retain_max_age_days,
        ),
        (
            Stream::Sub,
            change.sub_retain_max_bytes,
            change.sub_retain_max_age_days,
        ),
    ]
    .into_iter()
    .filter(|(_, b, d)| b.is_some() || d.is_some())
    .map(|(stream, bytes, age_days)| {
        let old = row.retention(stream);
        (
            stream,
            CameraRetention {
                max_bytes: bytes.unwrap_or(old.max_bytes),
                max_age_secs: age_days.map_or(old.max_age_secs, days),
            },
        )
    })
    .collect()
}
