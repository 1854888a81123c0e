//! The motion service of a running recorder: one analysis thread per camera that records with
//! analysis on, kept in step with the camera table and each camera's settings, a supervisor
//! that restarts a camera's analysis after it dies (a panic in a decoder), and one writer
//! thread that stores every camera's latest seconds in a single transaction every few seconds.
//!
//! Nothing here can slow recording: frames come from the live fan-out, which drops frames for a
//! reader that falls behind instead of waiting for it; analysis threads run at a lower
//! priority; the index writer takes the database lock for one short transaction per flush.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nvr_core::CameraId;
use nvr_core::config::MotionConfig;
use nvr_ingest::live::LiveReceiver;
use nvr_ingest::source::SourceFrame;
use nvr_storage::motion::MotionSpan;
use nvr_storage::store::Store;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::decoder::DecoderFactory;
use crate::settings::MotionSettings;
use crate::status::{MotionStatus, StatusBoard, StatusCell};
use crate::worker::{FLUSH_INTERVAL, Worker};

/// How long a camera's analysis waits before starting again after it died.
const RESTART_DELAY: Duration = Duration::from_secs(5);
/// The nice value of analysis threads (the decoders' own threads are lowered by nvr-media):
/// recording and viewing come first.
const ANALYSIS_NICE: i32 = 10;

/// Where a camera's frames come from: the recorder's live fan-out of its sub-stream when the
/// recorder pulls one (small pictures: every one sampled is decoded cheaply), else of its main
/// stream (whose key frames only are decoded above 640x480, see `worker::key_frames_only`).
/// Returns the current GOP and a receiver of what follows.
pub trait FrameFeed: Send + Sync + 'static {
    fn subscribe(&self, camera: CameraId) -> (Vec<SourceFrame>, LiveReceiver);
}

impl FrameFeed for nvr_ingest::Recorder {
    fn subscribe(&self, camera: CameraId) -> (Vec<SourceFrame>, LiveReceiver) {
        let stream = if self.pulls(camera.sub()) {
            camera.sub()
        } else {
            camera.main()
        };
        self.live(stream).subscribe()
    }
}

struct Running {
    stop: watch::Sender<bool>,
    settings: watch::Sender<MotionSettings>,
    thread: std::thread::JoinHandle<()>,
}

/// Analyses every recording camera.
pub struct MotionService {
    store: Arc<Store>,
    feed: Arc<dyn FrameFeed>,
    config: MotionConfig,
    decoders: DecoderFactory,
    runtime: tokio::runtime::Handle,
    statuses: StatusBoard,
    running: Mutex<HashMap<CameraId, Running>>,
    spans: Mutex<Option<mpsc::Sender<(CameraId, MotionSpan)>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for MotionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotionService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MotionService {
    /// Starts the index writer; [`MotionService::reconcile`] starts the cameras. Call within a
    /// tokio runtime (analysis threads wait on the live fan-out through it).
    pub fn start(
        store: Arc<Store>,
        feed: Arc<dyn FrameFeed>,
        config: MotionConfig,
        decoders: DecoderFactory,
    ) -> std::io::Result<Arc<MotionService>> {
        let (tx, rx) = mpsc::channel();
        let writer_store = store.clone();
        let writer = std::thread::Builder::new()
            .name("motion-index".into())
            .spawn(move || write_index(&writer_store, &rx))?;
        Ok(Arc::new(MotionService {
            store,
            feed,
            config,
            decoders,
            runtime: tokio::runtime::Handle::current(),
            statuses: StatusBoard::default(),
            running: Mutex::new(HashMap::new()),
            spans: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        }))
    }

    pub fn config(&self) -> &MotionConfig {
        &self.config
    }

    /// Starts analysis for enabled cameras with analysis on, stops it for the others, and
    /// hands changed settings to running ones.
    pub fn reconcile(&self) -> nvr_storage::Result<()> {
        let cameras = self.store.cameras()?;
        let settings: HashMap<CameraId, MotionSettings> = self
            .store
            .all_motion_settings()?
            .iter()
            .map(|r| (r.camera_id, MotionSettings::from(r)))
            .collect();
        let wanted: HashMap<CameraId, MotionSettings> = cameras
            .iter()
            .filter(|c| c.enabled && self.config.enabled)
            .map(|c| (c.id, settings.get(&c.id).copied().unwrap_or_default()))
            .filter(|(_, s)| s.enabled)
            .collect();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<CameraId> = running
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(r) = running.remove(&id) {
                let _ = r.stop.send(true);
                self.statuses.remove(id);
                info!(camera = %id, "motion analysis stopped");
            }
        }
        running.retain(|_, r| !r.thread.is_finished());
        for (id, s) in wanted {
            if let Some(r) = running.get(&id) {
                r.settings.send_if_modified(|old| {
                    let changed = *old != s;
                    *old = s;
                    changed
                });
                continue;
            }
            match self.spawn(id, s) {
                Ok(r) => {
                    running.insert(id, r);
                }
                Err(e) => error!(camera = %id, error = %e, "cannot start motion analysis"),
            }
        }
        Ok(())
    }

    fn spawn(&self, camera: CameraId, settings: MotionSettings) -> std::io::Result<Running> {
        let (stop, stop_rx) = watch::channel(false);
        let (settings_tx, settings_rx) = watch::channel(settings);
        let status = Arc::new(StatusCell::new(self.config.fps));
        self.statuses.insert(camera, status.clone());
        let spans = self
            .spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| std::io::Error::other("the motion service is shut down"))?;
        let feed = self.feed.clone();
        let runtime = self.runtime.clone();
        let config = self.config.clone();
        let decoders = self.decoders.clone();
        let clock = self.store.clock().clone();
        let thread = std::thread::Builder::new()
            .name(format!("motion-{camera}"))
            .spawn(move || {
                if let Err(e) = rustix::process::setpriority_process(None, ANALYSIS_NICE) {
                    warn!(error = %e, "cannot lower the motion analysis priority");
                }
                loop {
                    let worker = Worker {
                        camera,
                        config: config.clone(),
                        settings: settings_rx.clone(),
                        decoders: decoders.clone(),
                        status: status.clone(),
                        spans: spans.clone(),
                        clock: clock.clone(),
                    };
                    let feed_now = feed.subscribe(camera);
                    let stop_now = stop_rx.clone();
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        worker.run(feed_now, stop_now, &runtime);
                    }));
                    if *stop_rx.borrow() {
                        return;
                    }
                    let why = match outcome {
                        Ok(()) => "its frame feed ended".to_owned(),
                        Err(p) => panic_message(&*p),
                    };
                    error!(camera = %camera, why, "motion analysis died; restarting");
                    status.error(format!("analysis stopped ({why}); restarting"));
                    let mut stop_wait = stop_rx.clone();
                    let stopped = runtime.block_on(async {
                        tokio::select! {
                            _ = stop_wait.wait_for(|s| *s) => true,
                            () = tokio::time::sleep(RESTART_DELAY) => false,
                        }
                    });
                    if stopped {
                        return;
                    }
                }
            })?;
        info!(camera = %camera, "motion analysis started");
        Ok(Running {
            stop,
            settings: settings_tx,
            thread,
        })
    }

    /// The analysis status of a camera.
    pub fn status(&self, camera: CameraId) -> MotionStatus {
        self.statuses.get(camera, self.store.clock().realtime())
    }

    /// Stops every camera's analysis, writes what it found, and ends the index writer.
    pub fn shutdown(&self) {
        let running: Vec<Running> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &running {
            let _ = r.stop.send(true);
        }
        for r in running {
            let _ = r.thread.join();
        }
        drop(self.spans.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .map_or_else(|| "a panic".to_owned(), |m| format!("panic: {m}"))
}

/// The index writer: gathers the spans of every camera and stores them in one transaction per
/// [`FLUSH_INTERVAL`]; ends (after a last write) when every sender is gone.
fn write_index(store: &Store, rx: &mpsc::Receiver<(CameraId, MotionSpan)>) {
    let mut batch: Vec<(CameraId, MotionSpan)> = Vec::new();
    let mut last = Instant::now();
    loop {
        let wait = FLUSH_INTERVAL.saturating_sub(last.elapsed());
        let ended = match rx.recv_timeout(wait) {
            Ok(item) => {
                batch.push(item);
                false
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        if (ended || last.elapsed() >= FLUSH_INTERVAL) && !batch.is_empty() {
            match store.append_motion(&batch) {
                Ok(stored) => {
                    let dropped = stored.iter().filter(|s| !**s).count();
                    if dropped > 0 {
                        tracing::debug!(dropped, "motion spans without recorded footage");
                    }
                }
                Err(e) => {
                    error!(error = %e, spans = batch.len(), "writing the motion index failed")
                }
            }
            batch.clear();
        }
        if last.elapsed() >= FLUSH_INTERVAL {
            last = Instant::now();
        }
        if ended {
            return;
        }
    }
}
