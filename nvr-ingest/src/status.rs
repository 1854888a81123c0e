//! What each camera's streams are doing right now, for the API, the UI and `/metrics`: state,
//! last error, counters, and rates measured over a short window, per stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use nvr_core::{Duration90k, StreamKey, Time90k};
use serde::Serialize;

use crate::error::{CameraErrorKind, IngestError};

/// How long the fps and bitrate window is: 5 s, long enough to smooth over a GOP.
const RATE_WINDOW_90K: i64 = 5 * 90_000;

/// The state of a camera's recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Starting,
    Connecting,
    Recording,
    /// The last session failed; waiting to retry.
    Reconnecting,
    Disabled,
}

/// A snapshot of a camera's status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraStatus {
    pub state: CameraState,
    /// Since when the camera is in this state (RFC 3339 in the API).
    #[serde(skip)]
    pub since: Time90k,
    pub last_error: Option<String>,
    pub last_error_kind: Option<CameraErrorKind>,
    pub connects: u64,
    pub failures: u64,
    pub frames_received: u64,
    pub frames_written: u64,
    pub frames_skipped: u64,
    /// Frames received while the disk was full (not recorded).
    pub frames_dropped_disk: u64,
    /// Recording is stalled because the disk is full and retention cannot free space.
    pub disk_stalled: bool,
    pub video_bytes_received: u64,
    pub fps: f64,
    pub bitrate_bps: f64,
    pub codec: Option<String>,
    pub width: Option<u16>,
    pub height: Option<u16>,
    /// The camera's clock minus the recorder's, in milliseconds, from its latest RTCP sender
    /// report (null until one arrived; cameras that send none stay null).
    pub camera_clock_offset_ms: Option<f64>,
    /// The audio taken from the camera (`aac`, `pcma`, `pcmu`): null unless its audio
    /// recording is switched on and the camera sends one of these.
    pub audio_codec: Option<String>,
    /// Audio frames and bytes received (not yet stored: see ARCHITECTURE.md, Known limits).
    pub audio_frames_received: u64,
    pub audio_bytes_received: u64,
    /// Audio frames over the size bound, dropped.
    pub audio_frames_oversized: u64,
    /// Malformed audio packets, dropped (the video goes on).
    pub audio_packets_refused: u64,
}

impl CameraStatus {
    fn new(now: Time90k) -> Self {
        CameraStatus {
            state: CameraState::Starting,
            since: now,
            last_error: None,
            last_error_kind: None,
            connects: 0,
            failures: 0,
            frames_received: 0,
            frames_written: 0,
            frames_skipped: 0,
            frames_dropped_disk: 0,
            disk_stalled: false,
            video_bytes_received: 0,
            fps: 0.0,
            bitrate_bps: 0.0,
            codec: None,
            width: None,
            height: None,
            camera_clock_offset_ms: None,
            audio_codec: None,
            audio_frames_received: 0,
            audio_bytes_received: 0,
            audio_frames_oversized: 0,
            audio_packets_refused: 0,
        }
    }
}

#[derive(Debug)]
struct Window {
    start: Duration90k,
    frames: u64,
    bytes: u64,
}

/// One camera's live status, updated by its supervisor and writer.
#[derive(Debug)]
pub struct StatusCell {
    status: RwLock<CameraStatus>,
    window: Mutex<Window>,
}

impl StatusCell {
    pub fn new(now: Time90k) -> Self {
        StatusCell {
            status: RwLock::new(CameraStatus::new(now)),
            window: Mutex::new(Window {
                start: Duration90k::ZERO,
                frames: 0,
                bytes: 0,
            }),
        }
    }

    pub fn get(&self) -> CameraStatus {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut CameraStatus)) {
        f(&mut self.status.write().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn set_state(&self, state: CameraState, now: Time90k) {
        self.update(|s| {
            if s.state != state {
                s.state = state;
                s.since = now;
            }
            if state == CameraState::Recording {
                s.connects += 1;
            }
        });
    }

    pub fn set_error(&self, e: &IngestError, now: Time90k) {
        self.update(|s| {
            s.last_error = Some(e.message.clone());
            s.last_error_kind = Some(e.kind);
            s.failures += 1;
            if s.state != CameraState::Reconnecting {
                s.state = CameraState::Reconnecting;
                s.since = now;
            }
            s.fps = 0.0;
            s.bitrate_bps = 0.0;
        });
    }

    /// Counts a received frame and refreshes the rates once per window.
    pub fn on_frame(&self, bytes: usize, monotonic: Duration90k, params: &nvr_core::VideoParams) {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        w.frames += 1;
        w.bytes += bytes as u64;
        let elapsed = monotonic - w.start;
        let rates = if elapsed.0 >= RATE_WINDOW_90K {
            let secs = elapsed.as_secs_f64();
            let r = (w.frames as f64 / secs, w.bytes as f64 * 8.0 / secs);
            *w = Window {
                start: monotonic,
                frames: 0,
                bytes: 0,
            };
            Some(r)
        } else {
            None
        };
        drop(w);
        self.update(|s| {
            s.frames_received += 1;
            s.video_bytes_received += bytes as u64;
            if let Some((fps, bps)) = rates {
                s.fps = fps;
                s.bitrate_bps = bps;
            }
            if s.codec.as_deref() != Some(params.rfc6381_codec.as_str()) {
                s.codec = Some(params.rfc6381_codec.clone());
            }
            s.width = Some(params.width);
            s.height = Some(params.height);
        });
    }

    pub fn reset_window(&self, monotonic: Duration90k) {
        *self.window.lock().unwrap_or_else(|p| p.into_inner()) = Window {
            start: monotonic,
            frames: 0,
            bytes: 0,
        };
    }

    pub fn on_written(&self, written: bool) {
        self.update(|s| {
            if written {
                s.frames_written += 1;
            } else {
                s.frames_skipped += 1;
            }
        });
    }

    pub fn on_dropped_disk_full(&self) {
        self.update(|s| s.frames_dropped_disk += 1);
    }

    pub fn set_disk_stalled(&self, stalled: bool) {
        self.update(|s| s.disk_stalled = stalled);
    }

    pub fn set_camera_clock(&self, sample: crate::source::CameraClockSample) {
        self.update(|s| s.camera_clock_offset_ms = Some(sample.offset_90k as f64 / 90.0));
    }

    /// The audio codec of the session just connected (`None`: no audio taken).
    pub fn set_audio_codec(&self, codec: Option<&str>) {
        self.update(|s| s.audio_codec = codec.map(str::to_owned));
    }

    /// The audio counts: those of earlier sessions (`base`) plus the current one's.
    pub fn set_audio_counts(
        &self,
        base: crate::source::AudioCounts,
        session: crate::source::AudioCounts,
    ) {
        self.update(|s| {
            s.audio_frames_received = base.frames + session.frames;
            s.audio_bytes_received = base.bytes + session.bytes;
            s.audio_frames_oversized = base.oversized + session.oversized;
            s.audio_packets_refused = base.refused + session.refused;
        });
    }

    pub fn set_storage_error(&self, message: String) {
        self.update(|s| {
            s.last_error = Some(message);
            s.last_error_kind = Some(CameraErrorKind::Storage);
        });
    }
}

/// Status cells of every stream of every camera.
#[derive(Debug, Default, Clone)]
pub struct StatusBoard(Arc<RwLock<HashMap<StreamKey, Arc<StatusCell>>>>);

impl StatusBoard {
    pub fn cell(&self, camera: StreamKey, now: Time90k) -> Arc<StatusCell> {
        if let Some(c) = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&camera)
        {
            return c.clone();
        }
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(camera)
            .or_insert_with(|| Arc::new(StatusCell::new(now)))
            .clone()
    }

    pub fn get(&self, camera: StreamKey) -> Option<CameraStatus> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&camera)
            .map(|c| c.get())
    }

    pub fn remove(&self, camera: StreamKey) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&camera);
    }
}
