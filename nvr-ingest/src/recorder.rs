//! The recorder: one supervisor task and one writer thread per enabled camera, kept in step
//! with the camera list in the index, plus the periodic retention pass.
//!
//! Threads: supervisors are tokio tasks (network); each camera's writer is an OS thread
//! (blocking file and SQLite I/O) fed through a queue bounded in frames and bytes
//! (`writer_queue.rs`), so one slow disk write delays only that camera, a slow or failing camera
//! never blocks another, and a camera of huge frames costs a bounded amount of memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nvr_core::{CameraId, CameraUrl, Clock};
use nvr_storage::retention::{self, RetentionPolicy};
use nvr_storage::store::Store;
use nvr_storage::writer::{CameraWriter, WriterConfig};
use tokio::sync::watch;
use tracing::{error, info};

use crate::egress::EgressPolicy;
use crate::live::LiveHub;
use crate::source::{CameraSource, ConnectTarget};
use crate::status::{CameraStatus, StatusBoard};
use crate::supervisor::{Supervised, SupervisorConfig, supervise};
use crate::writer_queue::{WRITER_QUEUE_BYTES, WRITER_QUEUE_FRAMES, writer_queue};
use crate::writer_thread::writer_loop;

/// How often each camera's hash chain head is signed: segments are attested within 10 minutes
/// of being recorded (and at every export), without a signature per segment.
const CHAIN_HEAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// How often free space is checked (when retention runs less often): a 2-core box with 64
/// cameras writes ~30 MB/s, so 5 s costs at most ~150 MB of the free-space margin.
const FREE_SPACE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Recorder settings.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    pub writer: WriterConfig,
    pub supervisor: SupervisorConfig,
    /// Defaults applied to cameras without their own limits.
    pub default_retention: RetentionPolicy,
    pub retention_interval: std::time::Duration,
    /// Free space retention keeps on the data directory's file system, deleting the oldest
    /// unheld footage of any camera; below a quarter of it recording stalls (0: off).
    pub min_free_bytes: u64,
}

struct CameraHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    writer: std::thread::JoinHandle<()>,
}

/// Records every enabled camera of a store.
pub struct Recorder {
    store: Arc<Store>,
    source: Arc<dyn CameraSource>,
    egress: Arc<EgressPolicy>,
    config: RecorderConfig,
    statuses: StatusBoard,
    cameras: Mutex<HashMap<CameraId, CameraHandle>>,
    live: Mutex<HashMap<CameraId, Arc<LiveHub>>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates the recorder and starts the retention loop. Call [`Recorder::reconcile`] to start
    /// the cameras. Must be called inside a tokio runtime.
    pub fn start(
        store: Arc<Store>,
        source: Arc<dyn CameraSource>,
        egress: Arc<EgressPolicy>,
        config: RecorderConfig,
    ) -> Arc<Self> {
        if config.min_free_bytes > 0
            && let Ok(space) = store.disk_space()
            && space.total_bytes < config.min_free_bytes.saturating_mul(2)
        {
            tracing::warn!(
                min_free_bytes = config.min_free_bytes,
                disk_bytes = space.total_bytes,
                "retention.min_free_bytes is more than half the data disk: most footage will be \
                 deleted as soon as it is sealed"
            );
        }
        let (stop, _) = watch::channel(false);
        let r = Arc::new(Recorder {
            store,
            source,
            egress,
            config,
            statuses: StatusBoard::default(),
            cameras: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            stop,
        });
        let weak = Arc::downgrade(&r);
        let mut stop_rx = r.stop.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(CHAIN_HEAD_INTERVAL) => {}
                    _ = stop_rx.changed() => return,
                }
                let Some(r) = weak.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || r.sign_chain_heads()).await;
            }
        });
        let weak = Arc::downgrade(&r);
        let mut stop_rx = r.stop.subscribe();
        // Quotas and ages every `retention_interval`; free space more often, because a disk
        // fills in minutes while quotas are reckoned in days.
        let interval = r.config.retention_interval;
        let tick = interval.min(FREE_SPACE_INTERVAL);
        tokio::spawn(async move {
            let mut since_retention = std::time::Duration::ZERO;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = stop_rx.changed() => return,
                }
                since_retention += tick;
                let full_pass = since_retention >= interval;
                if full_pass {
                    since_retention = std::time::Duration::ZERO;
                }
                let Some(r) = weak.upgrade() else { return };
                let r2 = r.clone();
                let pass = move || {
                    if full_pass {
                        r2.run_retention();
                    }
                    r2.enforce_free_space();
                };
                if let Err(e) = tokio::task::spawn_blocking(pass).await {
                    error!(error = %e, "retention task panicked");
                }
            }
        });
        r
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn source(&self) -> &Arc<dyn CameraSource> {
        &self.source
    }

    /// The retention limits of cameras without their own.
    pub fn default_retention(&self) -> RetentionPolicy {
        self.config.default_retention
    }

    pub fn allow_host_names(&self) -> bool {
        self.egress.allow_host_names()
    }

    /// The egress policy: which camera addresses may be connected to.
    pub fn egress(&self) -> &Arc<EgressPolicy> {
        &self.egress
    }

    fn clock(&self) -> &Arc<dyn Clock> {
        self.store.clock()
    }

    /// The retention policy of a camera: its own limits, else the defaults (0 = no limit).
    fn policy(&self, camera: &nvr_storage::db::CameraRow) -> RetentionPolicy {
        RetentionPolicy::for_camera(camera, self.config.default_retention)
    }

    /// Signs every camera's chain head that changed since it was last signed (blocking).
    pub fn sign_chain_heads(&self) {
        let Ok(cameras) = self.store.db().cameras() else {
            return;
        };
        for c in cameras {
            if let Err(e) = self.store.sign_chain_head(c.id) {
                error!(camera = %c.id, error = %e, "signing the chain head failed");
            }
        }
    }

    /// One retention pass over every camera (blocking).
    pub fn run_retention(&self) {
        let cameras = match self.store.db().cameras() {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "retention: cannot list cameras");
                return;
            }
        };
        for c in &cameras {
            let now = self.clock().realtime();
            if let Err(e) = retention::enforce(&self.store, c.id, self.policy(c), now) {
                error!(camera = %c.id, error = %e, "retention failed");
            }
        }
    }

    /// Deletes the oldest unheld footage of any camera while the disk has less free space than
    /// configured (blocking; see [`retention::enforce_free_space`]).
    pub fn enforce_free_space(&self) {
        if self.config.min_free_bytes == 0 {
            return;
        }
        if let Err(e) = retention::enforce_free_space(&self.store, self.config.min_free_bytes) {
            error!(error = %e, "retention: freeing disk space failed");
        }
    }

    /// Starts supervisors for enabled cameras that have none and stops those of cameras that
    /// were disabled or removed.
    pub fn reconcile(&self) -> nvr_storage::Result<()> {
        let rows = self.store.db().cameras()?;
        let urls: Vec<CameraUrl> = rows
            .iter()
            .filter(|c| c.enabled)
            .filter_map(|c| CameraUrl::parse(&c.url).ok())
            .collect();
        self.egress.set_cameras(&urls);
        let mut cameras = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: HashMap<CameraId, &nvr_storage::db::CameraRow> = rows
            .iter()
            .filter(|c| c.enabled)
            .map(|c| (c.id, c))
            .collect();
        let gone: Vec<CameraId> = cameras
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(h) = cameras.remove(&id) {
                let _ = h.stop.send(true);
                info!(camera = %id, "camera stopped");
            }
        }
        for (id, row) in wanted {
            if cameras.contains_key(&id) {
                continue;
            }
            match self.spawn_camera(row) {
                Ok(h) => {
                    cameras.insert(id, h);
                }
                Err(e) => error!(camera = %id, error = %e, "cannot start camera"),
            }
        }
        Ok(())
    }

    fn spawn_camera(&self, row: &nvr_storage::db::CameraRow) -> nvr_storage::Result<CameraHandle> {
        let url = CameraUrl::parse(&row.url)
            .map_err(|e| nvr_storage::StorageError::InvalidArgument(e.to_string()))?;
        let password = self.store.camera_password(row.id)?;
        let target = ConnectTarget {
            url,
            username: row.username.clone(),
            password,
        };
        let status = self.statuses.cell(row.id, self.clock().realtime());
        let (tx, rx) = writer_queue(WRITER_QUEUE_FRAMES, WRITER_QUEUE_BYTES);
        let writer = CameraWriter::new(self.store.clone(), row.id, self.config.writer)?;
        let writer_status = status.clone();
        let camera = row.id;
        let store = self.store.clone();
        let min_free_bytes = self.config.min_free_bytes;
        let writer = std::thread::Builder::new()
            .name(format!("writer-{}", row.id))
            .spawn(move || writer_loop(camera, writer, rx, writer_status, store, min_free_bytes))
            .map_err(|e| nvr_storage::StorageError::Io {
                path: "writer thread".into(),
                source: e,
            })?;
        let (stop, stop_rx) = watch::channel(false);
        let mut global_stop = self.stop.subscribe();
        let stop_fwd = stop.clone();
        tokio::spawn(async move {
            let _ = global_stop.changed().await;
            let _ = stop_fwd.send(true);
        });
        let task = tokio::spawn(supervise(Supervised {
            camera: row.id,
            name: row.name.clone(),
            target,
            source: self.source.clone(),
            writer: tx,
            status,
            live: self.live(row.id),
            clock: self.clock().clone(),
            config: self.config.supervisor,
            stop: stop_rx,
        }));
        info!(camera = %row.id, name = %row.name, "camera started");
        Ok(CameraHandle { stop, task, writer })
    }

    /// The live fan-out of a camera (created on first use).
    pub fn live(&self, camera: CameraId) -> Arc<LiveHub> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(camera)
            .or_default()
            .clone()
    }

    /// Stops one camera and waits until its open segment is sealed.
    pub async fn stop_camera(&self, camera: CameraId) {
        let h = self
            .cameras
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&camera);
        if let Some(h) = h {
            let _ = h.stop.send(true);
            let _ = h.task.await;
            let _ = tokio::task::spawn_blocking(move || h.writer.join()).await;
            info!(camera = %camera, "camera stopped");
        }
    }

    pub fn status(&self, camera: CameraId) -> Option<CameraStatus> {
        self.statuses.get(camera)
    }

    /// Stops every camera, waits for their segments to be sealed, and ends retention.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handles: Vec<CameraHandle> = self
            .cameras
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in handles {
            let _ = h.stop.send(true);
            let _ = h.task.await;
            let _ = tokio::task::spawn_blocking(move || h.writer.join()).await;
        }
    }
}
