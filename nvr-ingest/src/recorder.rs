//! The recorder: one supervisor task per stream of each enabled camera (its main stream, and its
//! sub-stream if it has one) and one writer thread per recorded stream, kept in step with the
//! camera list in the index, plus the periodic retention pass and chain-head signing.
//!
//! Threads: supervisors are tokio tasks (network); each recorded stream's writer is an OS
//! thread (blocking file and SQLite I/O) fed through a queue bounded in frames and bytes
//! (`writer_queue.rs`), so one slow disk write delays only that stream, a slow or failing
//! camera never blocks another, and a camera of huge frames costs a bounded amount of memory
//! (per stream: every bound of ARCHITECTURE.md's table applies to each stream apart). A sub-stream
//! that is not recorded has a supervisor (for live view) and no writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nvr_core::{CameraId, CameraUrl, Clock, Stream, StreamKey};
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

/// One running stream: its supervisor, and its writer thread when it is recorded.
struct StreamHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// What it was started with; a change restarts it.
    url: String,
    recorded: bool,
    /// Whether its audio is taken (the main stream of a camera with audio recording on).
    audio: bool,
}

impl StreamHandle {
    /// Stops the supervisor and waits until the writer sealed its open segment.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Some(w) = self.writer {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
    }
}

/// Records every enabled camera of a store.
pub struct Recorder {
    store: Arc<Store>,
    source: Arc<dyn CameraSource>,
    egress: Arc<EgressPolicy>,
    config: RecorderConfig,
    statuses: StatusBoard,
    streams: Mutex<HashMap<StreamKey, StreamHandle>>,
    /// Streams being stopped by a reconcile (their writers sealing): one is started again only
    /// once its stop finished, so a stream never has two writers.
    stopping: Mutex<HashMap<StreamKey, tokio::task::JoinHandle<()>>>,
    live: Mutex<HashMap<StreamKey, Arc<LiveHub>>>,
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
            streams: Mutex::new(HashMap::new()),
            stopping: Mutex::new(HashMap::new()),
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

    /// The retention policy of a camera's stream: its own limits, else the defaults (0 = no
    /// limit).
    fn policy(&self, camera: &nvr_storage::CameraRow, stream: Stream) -> RetentionPolicy {
        RetentionPolicy::for_stream(camera, stream, self.config.default_retention)
    }

    /// Signs the chain head of every stream that changed since it was last signed (blocking).
    pub fn sign_chain_heads(&self) {
        let Ok(cameras) = self.store.cameras() else {
            return;
        };
        for c in cameras {
            for s in Stream::ALL.into_iter().filter(|&s| c.has_stream_row(s)) {
                if let Err(e) = self.store.sign_chain_head(c.id.stream(s)) {
                    error!(camera = %c.id.stream(s), error = %e, "signing the chain head failed");
                }
            }
        }
    }

    /// One retention pass over every stream of every camera (blocking).
    pub fn run_retention(&self) {
        let cameras = match self.store.cameras() {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "retention: cannot list cameras");
                return;
            }
        };
        for c in &cameras {
            for s in Stream::ALL.into_iter().filter(|&s| c.has_stream_row(s)) {
                let now = self.clock().realtime();
                let key = c.id.stream(s);
                if let Err(e) = retention::enforce(&self.store, key, self.policy(c, s), now) {
                    error!(camera = %key, error = %e, "retention failed");
                }
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

    /// Starts supervisors (and writers) for the streams of enabled cameras that have none,
    /// restarts those whose URL or recording changed, and stops those of cameras that were
    /// disabled or removed and of sub-streams removed from their camera.
    pub fn reconcile(&self) -> nvr_storage::Result<()> {
        let rows = self.store.cameras()?;
        // Every stream of an enabled camera may be connected to, and nothing else.
        let urls: Vec<CameraUrl> = rows
            .iter()
            .filter(|c| c.enabled)
            .flat_map(|c| c.streams().into_iter().filter_map(|s| c.stream_url(s)))
            .filter_map(|u| CameraUrl::parse(u).ok())
            .collect();
        self.egress.set_cameras(&urls);
        let wanted: HashMap<StreamKey, (&nvr_storage::CameraRow, &str)> = rows
            .iter()
            .filter(|c| c.enabled)
            .flat_map(|c| {
                c.streams()
                    .into_iter()
                    .filter_map(move |s| Some((c.id.stream(s), (c, c.stream_url(s)?))))
            })
            .collect();
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<StreamKey> = streams
            .iter()
            .filter(|(key, h)| match wanted.get(key) {
                None => true,
                Some((row, url)) => {
                    h.url != *url
                        || h.recorded != row.records(key.stream)
                        || h.audio != takes_audio(row, key.stream)
                }
            })
            .map(|(key, _)| *key)
            .collect();
        let mut stopping = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        stopping.retain(|_, task| !task.is_finished());
        for key in gone {
            if let Some(h) = streams.remove(&key) {
                info!(camera = %key, "camera stream stopping");
                stopping.insert(key, tokio::spawn(h.stop()));
            }
        }
        for (key, (row, url)) in wanted {
            // A stream still stopping starts at a later reconcile (one writer at a time).
            if streams.contains_key(&key) || stopping.contains_key(&key) {
                continue;
            }
            match self.spawn_stream(row, key.stream, url) {
                Ok(h) => {
                    streams.insert(key, h);
                }
                Err(e) => error!(camera = %key, error = %e, "cannot start camera stream"),
            }
        }
        Ok(())
    }

    fn spawn_stream(
        &self,
        row: &nvr_storage::CameraRow,
        stream: Stream,
        url: &str,
    ) -> nvr_storage::Result<StreamHandle> {
        let key = row.id.stream(stream);
        let parsed = CameraUrl::parse(url)
            .map_err(|e| nvr_storage::StorageError::InvalidArgument(e.to_string()))?;
        let password = self.store.camera_password(row.id)?;
        let audio = takes_audio(row, stream);
        let target = ConnectTarget {
            url: parsed,
            username: row.username.clone(),
            password,
            audio,
        };
        let status = self.statuses.cell(key, self.clock().realtime());
        let recorded = row.records(stream);
        let (tx, writer) = if recorded {
            let (tx, rx) = writer_queue(WRITER_QUEUE_FRAMES, WRITER_QUEUE_BYTES);
            let writer = CameraWriter::new(self.store.clone(), key, self.config.writer)?;
            let writer_status = status.clone();
            let store = self.store.clone();
            let min_free_bytes = self.config.min_free_bytes;
            let thread_name = match stream {
                Stream::Main => format!("writer-{}", row.id),
                s => format!("writer-{}-{s}", row.id),
            };
            let writer = std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || writer_loop(key, writer, rx, writer_status, store, min_free_bytes))
                .map_err(|e| nvr_storage::StorageError::Io {
                    path: "writer thread".into(),
                    source: e,
                })?;
            (Some(tx), Some(writer))
        } else {
            (None, None)
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut global_stop = self.stop.subscribe();
        let stop_fwd = stop.clone();
        tokio::spawn(async move {
            let _ = global_stop.changed().await;
            let _ = stop_fwd.send(true);
        });
        let task = tokio::spawn(supervise(Supervised {
            camera: key,
            name: row.name.clone(),
            target,
            source: self.source.clone(),
            writer: tx,
            status,
            live: self.live(key),
            clock: self.clock().clone(),
            config: self.config.supervisor,
            stop: stop_rx,
        }));
        info!(camera = %key, name = %row.name, recorded, "camera stream started");
        Ok(StreamHandle {
            stop,
            task,
            writer,
            url: url.to_owned(),
            recorded,
            audio,
        })
    }

    /// The live fan-out of a camera's stream (created on first use).
    pub fn live(&self, stream: StreamKey) -> Arc<LiveHub> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stream)
            .or_default()
            .clone()
    }

    /// Whether the recorder pulls `stream` now (its camera is enabled and has that stream).
    pub fn pulls(&self, stream: StreamKey) -> bool {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&stream)
    }

    /// Stops every stream of one camera and waits until their open segments are sealed.
    pub async fn stop_camera(&self, camera: CameraId) {
        let handles: Vec<(StreamKey, StreamHandle)> = {
            let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<StreamKey> = streams
                .keys()
                .filter(|k| k.camera == camera)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| streams.remove(&k).map(|h| (k, h)))
                .collect()
        };
        let stopping: Vec<tokio::task::JoinHandle<()>> = {
            let mut stopping = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<StreamKey> = stopping
                .keys()
                .filter(|k| k.camera == camera)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| stopping.remove(&k))
                .collect()
        };
        for (key, h) in handles {
            h.stop().await;
            info!(camera = %key, "camera stream stopped");
        }
        for task in stopping {
            let _ = task.await;
        }
    }

    /// The status of a camera's main stream.
    pub fn status(&self, camera: CameraId) -> Option<CameraStatus> {
        self.statuses.get(camera.main())
    }

    /// The status of one stream of a camera.
    pub fn stream_status(&self, stream: StreamKey) -> Option<CameraStatus> {
        self.statuses.get(stream)
    }

    /// Stops every stream, waits for their segments to be sealed, and ends retention.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handles: Vec<StreamHandle> = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in handles {
            h.stop().await;
        }
        let stopping: Vec<tokio::task::JoinHandle<()>> = self
            .stopping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, t)| t)
            .collect();
        for task in stopping {
            let _ = task.await;
        }
    }
}

/// Whether `stream` of `row` takes the camera's audio: its main stream, while an admin has
/// audio recording switched on (a stream is restarted when that changes).
fn takes_audio(row: &nvr_storage::CameraRow, stream: Stream) -> bool {
    stream == Stream::Main && row.record_audio
}
