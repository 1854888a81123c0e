//! The recorder's application layer: the operations people ask for (log in, manage accounts
//! and cameras, export and hold evidence), with their rules, role checks and audit entries in
//! one place, called the same way by the web API (`nvr-web`) and the command line (`nvr`).
//!
//! Invariant: every operation validates its input once, here; every change and its audit entry
//! are one SQLite transaction (in `nvr-storage`); front ends keep only their own concerns
//! (HTTP status codes, cookies and streaming; argument parsing and printing).

pub mod accounts;
pub mod actor;
pub mod cameras;
pub mod error;
pub mod evidence;
pub mod motion;
pub mod passwords;
pub mod throttle;

use std::sync::Arc;

use nvr_core::Clock;
use nvr_core::config::EvidenceConfig;
use nvr_ingest::Recorder;
use nvr_ingest::egress::EgressPolicy;
use nvr_ingest::source::CameraSource;
use nvr_storage::retention::RetentionPolicy;
use nvr_storage::store::Store;

pub use actor::{Actor, SessionUser};
pub use error::{AppError, AppResult};

/// What the camera operations need: where probes connect through, what they may reach, and
/// the running recorder to tell about changes (none for the CLI).
#[derive(Clone)]
pub struct CameraContext {
    pub source: Arc<dyn CameraSource>,
    pub egress: Arc<EgressPolicy>,
    pub default_retention: RetentionPolicy,
    pub recorder: Option<Arc<Recorder>>,
    /// The running motion analysis, told about camera and settings changes (none for the CLI).
    pub motion: Option<Arc<nvr_motion::MotionService>>,
}

impl std::fmt::Debug for CameraContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraContext")
            .field("default_retention", &self.default_retention)
            .field("recorder", &self.recorder.is_some())
            .field("motion", &self.motion.is_some())
            .finish_non_exhaustive()
    }
}

impl CameraContext {
    /// The running recorder's source, egress policy and defaults.
    pub fn of_recorder(recorder: &Arc<Recorder>) -> Self {
        CameraContext {
            source: recorder.source().clone(),
            egress: recorder.egress().clone(),
            default_retention: recorder.default_retention(),
            recorder: Some(recorder.clone()),
            motion: None,
        }
    }

    /// The same, with the running motion analysis.
    pub fn with_motion(mut self, motion: Arc<nvr_motion::MotionService>) -> Self {
        self.motion = Some(motion);
        self
    }
}

/// Settings of the application layer.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// First-run setup must present the code printed on the console (the server listens
    /// beyond loopback, where anyone on the LAN could claim an unset recorder first).
    pub setup_code_required: bool,
    pub evidence: EvidenceConfig,
    /// How motion analysis decodes (reindexing uses it too).
    pub motion: nvr_core::config::MotionConfig,
}

/// The application: shared by every request of the web server, or made once by a CLI command.
pub struct App {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    passwords: passwords::PasswordPool,
    throttle: throttle::LoginThrottle,
    /// Bumped whenever sessions may have ended; streams re-check theirs.
    sessions: tokio::sync::watch::Sender<u64>,
    setup_code_required: bool,
    cameras: CameraContext,
    evidence: EvidenceConfig,
    motion: nvr_core::config::MotionConfig,
    exports: Arc<evidence::ExportProgress>,
    export_slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.store)
            .field("cameras", &self.cameras)
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn new(store: Arc<Store>, cameras: CameraContext, options: AppOptions) -> Arc<App> {
        let (sessions, _) = tokio::sync::watch::channel(0);
        Arc::new(App {
            clock: store.clock().clone(),
            store,
            passwords: passwords::PasswordPool::default_sized(),
            throttle: throttle::LoginThrottle::default(),
            sessions,
            setup_code_required: options.setup_code_required,
            cameras,
            evidence: options.evidence,
            motion: options.motion,
            exports: Arc::default(),
            export_slots: Arc::new(tokio::sync::Semaphore::new(evidence::EXPORT_SLOTS)),
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The running recorder, if this is the server.
    pub fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.cameras.recorder.as_ref()
    }

    /// Runs `op` (storage work inside one of this layer's async operations, which often borrows
    /// from them) so it does not hold an async worker (the front end runs this layer's
    /// synchronous operations on blocking threads itself): on a multi-threaded runtime the worker
    /// hands its other tasks to a new one first (`block_in_place`); on a current-thread
    /// runtime (tests) or outside one (the CLI) it runs in place.
    pub(crate) fn blocking<T>(&self, op: impl FnOnce() -> T) -> T {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(op)
            }
            _ => op(),
        }
    }
}
