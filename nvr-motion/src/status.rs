//! What each camera's analysis is doing, for the camera's status in the API and the live
//! grid's motion marks: its state, how it decodes, pictures analysed and skipped, the last
//! error, and whether it sees motion now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use nvr_core::{CameraId, Time90k};
use serde::Serialize;

/// How long after the last picture with motion a camera still "sees motion now": the live
/// grid polls about every second.
const MOTION_NOW_90K: i64 = 2 * 90_000;
/// How long after skipping pictures a camera is shown as behind.
const BEHIND_90K: i64 = 30 * 90_000;

/// The state of a camera's analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MotionState {
    /// Analysis is switched off (for this camera or for the recorder).
    Off,
    /// Waiting for the camera's first key frame.
    Starting,
    Analysing,
    /// Skipping pictures to keep up (the index has gaps; recording is not affected).
    Behind,
    /// The decoder failed; analysis resumes at a later key frame.
    Error,
}

/// A snapshot of a camera's analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MotionStatus {
    pub state: MotionState,
    /// `all` (every picture decoded, `fps` analysed) or `key_frames`; null before the first.
    pub decode: Option<&'static str>,
    pub fps: u32,
    pub frames_analysed: u64,
    /// Pictures not analysed because the analysis was behind (or the decoder had failed).
    pub frames_skipped: u64,
    pub last_error: Option<String>,
    /// Motion was seen in the last 2 s.
    pub motion_now: bool,
    /// When motion was last seen (RFC 3339 in the API).
    #[serde(skip)]
    pub last_motion: Option<Time90k>,
}

impl MotionStatus {
    pub fn off() -> MotionStatus {
        MotionStatus {
            state: MotionState::Off,
            decode: None,
            fps: 0,
            frames_analysed: 0,
            frames_skipped: 0,
            last_error: None,
            motion_now: false,
            last_motion: None,
        }
    }
}

#[derive(Debug)]
struct Inner {
    status: MotionStatus,
    last_skip: Option<Time90k>,
    last_picture: Option<Time90k>,
}

/// One camera's live analysis status, updated by its worker.
#[derive(Debug)]
pub struct StatusCell(Mutex<Inner>);

impl StatusCell {
    pub fn new(fps: u32) -> StatusCell {
        StatusCell(Mutex::new(Inner {
            status: MotionStatus {
                state: MotionState::Starting,
                fps,
                ..MotionStatus::off()
            },
            last_skip: None,
            last_picture: None,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status as of `now`.
    pub fn get(&self, now: Time90k) -> MotionStatus {
        let i = self.lock();
        let mut s = i.status.clone();
        s.motion_now = s.last_motion.is_some_and(|t| now.0 - t.0 < MOTION_NOW_90K);
        if s.state == MotionState::Analysing
            && i.last_skip.is_some_and(|t| now.0 - t.0 < BEHIND_90K)
        {
            s.state = MotionState::Behind;
        }
        s
    }

    pub fn set_decode(&self, decode: &'static str) {
        self.lock().status.decode = Some(decode);
    }

    /// A picture was analysed at wall time `at`; `motion` if it showed motion.
    pub fn analysed(&self, at: Time90k, motion: bool) {
        let mut i = self.lock();
        i.status.frames_analysed += 1;
        i.status.state = MotionState::Analysing;
        i.last_picture = Some(at);
        if motion {
            i.status.last_motion = Some(at);
        }
    }

    /// `n` pictures were skipped at `now`.
    pub fn skipped(&self, n: u64, now: Time90k) {
        let mut i = self.lock();
        i.status.frames_skipped += n;
        i.last_skip = Some(now);
    }

    pub fn error(&self, message: String) {
        let mut i = self.lock();
        i.status.state = MotionState::Error;
        i.status.last_error = Some(message);
    }
}

/// Status cells of every camera analysed.
#[derive(Debug, Default, Clone)]
pub struct StatusBoard(Arc<Mutex<HashMap<CameraId, Arc<StatusCell>>>>);

impl StatusBoard {
    pub fn insert(&self, camera: CameraId, cell: Arc<StatusCell>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(camera, cell);
    }

    pub fn remove(&self, camera: CameraId) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&camera);
    }

    /// The camera's status; [`MotionState::Off`] when it is not analysed.
    pub fn get(&self, camera: CameraId, now: Time90k) -> MotionStatus {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&camera)
            .map_or_else(MotionStatus::off, |c| c.get(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motion_now_and_behind_fade() {
        let c = StatusCell::new(5);
        assert_eq!(c.get(Time90k(0)).state, MotionState::Starting);
        c.analysed(Time90k(1000), true);
        assert!(c.get(Time90k(2000)).motion_now);
        assert!(!c.get(Time90k(1000 + MOTION_NOW_90K)).motion_now);
        c.skipped(3, Time90k(5000));
        let s = c.get(Time90k(6000));
        assert_eq!((s.state, s.frames_skipped), (MotionState::Behind, 3));
        assert_eq!(
            c.get(Time90k(5000 + BEHIND_90K)).state,
            MotionState::Analysing
        );
    }
}
