//! One camera stream's life: connect, pass frames to its live viewers and (when it is
//! recorded) its writer, and on any failure wait and connect again, forever, until told to
//! stop. Each stream of a camera (main, sub) has its own supervisor, session and backoff.
//!
//! * Backoff: 1 s after a failure, doubling up to 30 s, reset once a session delivers frames.
//!   Each wait is drawn from [0.75, 1] of the current backoff, so cameras that failed together
//!   (a switch reboot) do not reconnect in lockstep, and no wait exceeds 30 s.
//! * Stall watchdog: a session that delivers no frame for 10 s is dropped and reconnected.
//! * Each session is a run: the writer is told when it ends, and the next session starts a new
//!   run, so a gap in the recordings shows exactly where the camera was away.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nvr_core::{Clock, Duration90k, StreamKey, Time90k};
use ring::rand::SecureRandom;
use tokio::sync::watch;
use tracing::{Instrument, info, warn};

use crate::error::{CameraErrorKind, IngestError};
use crate::source::{CameraSource, ConnectTarget, SourceFrame};
use crate::status::{CameraState, StatusCell};
use crate::writer_queue::WriterSender;

/// Timing of the supervisor.
#[derive(Clone, Copy, Debug)]
pub struct SupervisorConfig {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// No frame for this long means the session is dead.
    pub stall_timeout: Duration,
    /// Connecting (DESCRIBE, SETUP, PLAY) must finish within this.
    pub connect_timeout: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// What the supervisor sends to its camera's writer thread.
#[derive(Debug)]
pub enum WriterMsg {
    Frame(SourceFrame),
    /// The session ended: close the open segment; the next frame starts a new run.
    EndRun,
    /// The camera's clock against the recorder's, to keep with the stream (at most once a
    /// [`CAMERA_CLOCK_KEEP_INTERVAL`]).
    CameraClock(crate::source::CameraClockSample),
}

/// How often a stream's camera clock offset is written to the index while reports arrive.
pub const CAMERA_CLOCK_KEEP_INTERVAL: Duration90k = Duration90k(60 * 90_000);

/// Everything one camera stream's supervisor needs.
pub struct Supervised {
    pub camera: StreamKey,
    pub name: String,
    pub target: ConnectTarget,
    pub source: Arc<dyn CameraSource>,
    /// The stream's writer queue (bounded in frames and bytes: sending waits when full), or
    /// `None` for a stream pulled for live view only.
    pub writer: Option<WriterSender>,
    pub status: Arc<StatusCell>,
    /// Live viewers of this camera.
    pub live: Arc<crate::live::LiveHub>,
    pub clock: Arc<dyn Clock>,
    pub config: SupervisorConfig,
    pub stop: watch::Receiver<bool>,
}

impl std::fmt::Debug for Supervised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervised")
            .field("camera", &self.camera)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A wait in [0.75, 1] x `backoff`.
fn jittered(backoff: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = match ring::rand::SystemRandom::new().fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    };
    backoff.mul_f64(0.75 + 0.25 * r)
}

/// Runs until `stop` becomes true. Never returns an error: failures are the camera's status.
///
/// The camera's span (id and name in every log line) is entered around connecting and
/// logging only, not while frames flow: entering a span on every poll of the session (each
/// socket read) cost about 1% of the recorder's CPU.
pub async fn supervise(mut s: Supervised) {
    let span = tracing::info_span!("camera", id = %s.camera, name = %s.name);
    let mut backoff = s.config.backoff_min;
    loop {
        if *s.stop.borrow() {
            break;
        }
        s.status
            .set_state(CameraState::Connecting, s.clock.realtime());
        let connect = tokio::time::timeout(s.config.connect_timeout, s.source.connect(&s.target))
            .instrument(span.clone());
        let result = tokio::select! {
            r = connect => r,
            _ = s.stop.changed() => break,
        };
        let error = match result {
            Err(_) => IngestError::new(
                CameraErrorKind::Unreachable,
                format!("no answer within {} s", s.config.connect_timeout.as_secs()),
            ),
            Ok(Err(e)) => e,
            Ok(Ok(session)) => {
                span.in_scope(|| info!(encoding = %session.info.video_encoding, "connected"));
                s.status
                    .set_state(CameraState::Recording, s.clock.realtime());
                s.status.reset_window(s.clock.monotonic());
                s.status.set_audio_codec(
                    session
                        .info
                        .audio
                        .as_ref()
                        .filter(|_| session.info.audio_taken)
                        .and_then(|a| a.codec),
                );
                let (error, got_frames, stopped) = run_session(
                    &mut s,
                    session.frames,
                    &session.camera_clock,
                    &session.audio,
                )
                .await;
                // Close the run whatever happened; the writer outlives us if stopping.
                if let Some(w) = &s.writer {
                    let _ = w.send(WriterMsg::EndRun).await;
                }
                s.live.reset();
                if stopped {
                    break;
                }
                if got_frames {
                    backoff = s.config.backoff_min;
                }
                error
            }
        };
        span.in_scope(|| {
            warn!(kind = ?error.kind, error = %error.message, retry_in_ms = backoff.as_millis() as u64,
                "camera session failed")
        });
        s.status.set_error(&error, s.clock.realtime());
        let wait = jittered(backoff);
        backoff = (backoff * 2).min(s.config.backoff_max);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = s.stop.changed() => break,
        }
    }
    s.status
        .set_state(CameraState::Disabled, s.clock.realtime());
    span.in_scope(|| info!("camera supervisor stopped"));
}

/// Forwards frames until the session fails or we are stopped.
/// Returns (why it ended, whether any frame came, whether we were stopped).
///
/// Per frame this only stores the time of the frame: the stall watchdog is one timer armed for
/// the stall timeout and re-armed from the last frame's time when it fires, and the stop signal
/// is one future for the whole session. (A `timeout` around each `next()` and a new `changed()`
/// per frame registered and removed a timer and a waiter, under their locks, for every frame.)
/// The select polls frames first; a camera that floods frames still cannot starve the stop
/// signal, because the stream returns `Pending` whenever the socket has no complete frame and
/// tokio's cooperative budget (consumed by socket reads and channel sends) forces a `Pending`
/// after a bounded number of operations, and the select then polls the other branches.
async fn run_session(
    s: &mut Supervised,
    mut frames: crate::source::FrameStream,
    camera_clock: &crate::source::CameraClockCell,
    audio: &crate::source::AudioCell,
) -> (IngestError, bool, bool) {
    let mut got_frames = false;
    // Audio counts of earlier sessions, and the last published of this one.
    let audio_base = {
        let st = s.status.get();
        crate::source::AudioCounts {
            frames: st.audio_frames_received,
            bytes: st.audio_bytes_received,
            oversized: st.audio_frames_oversized,
            refused: st.audio_packets_refused,
        }
    };
    let mut audio_seen = crate::source::AudioCounts::default();
    // The camera clock sample last seen, and when one was last sent to be kept.
    let mut clock_seen = None;
    let mut clock_kept: Option<Time90k> = None;
    let stall_timeout = s.config.stall_timeout;
    let mut last_frame = tokio::time::Instant::now();
    let stall = tokio::time::sleep_until(last_frame + stall_timeout);
    tokio::pin!(stall);
    let stop = s.stop.changed();
    tokio::pin!(stop);
    loop {
        let item = tokio::select! {
            // Frames first: while one is ready, the watchdog and the stop signal are not even
            // polled (see above for why stop is still seen promptly).
            biased;
            r = frames.next() => r,
            _ = &mut stall => {
                let deadline = last_frame + stall_timeout;
                if tokio::time::Instant::now() < deadline {
                    stall.as_mut().reset(deadline);
                    continue;
                }
                return (
                    IngestError::new(
                        CameraErrorKind::Stalled,
                        format!("no frame for {} s", stall_timeout.as_secs()),
                    ),
                    got_frames,
                    false,
                );
            }
            _ = &mut stop => return (IngestError::new(CameraErrorKind::Protocol, "stopped"), got_frames, true),
        };
        match item {
            None => {
                return (
                    IngestError::new(
                        CameraErrorKind::Unreachable,
                        "the camera closed the session",
                    ),
                    got_frames,
                    false,
                );
            }
            Some(Err(e)) => return (e, got_frames, false),
            Some(Ok(f)) => {
                got_frames = true;
                last_frame = tokio::time::Instant::now();
                s.status
                    .on_frame(f.frame.data.len(), s.clock.monotonic(), &f.params);
                s.live.publish(&f);
                let counts = audio.counts();
                if counts != audio_seen {
                    audio_seen = counts;
                    s.status.set_audio_counts(audio_base, counts);
                }
                // A sender report came before this frame: publish it, and keep it (recorded
                // streams) now and then.
                let clock = camera_clock.get();
                let mut keep_clock = None;
                if clock != clock_seen
                    && let Some(sample) = clock
                {
                    clock_seen = clock;
                    s.status.set_camera_clock(sample);
                    if clock_kept.is_none_or(|t| sample.measured - t >= CAMERA_CLOCK_KEEP_INTERVAL)
                    {
                        clock_kept = Some(sample.measured);
                        keep_clock = Some(sample);
                    }
                }
                let Some(writer) = &s.writer else {
                    continue;
                };
                if let Some(sample) = keep_clock {
                    let _ = writer.send(WriterMsg::CameraClock(sample)).await;
                }
                if writer.send(WriterMsg::Frame(f)).await.is_err() {
                    return (
                        IngestError::new(CameraErrorKind::Storage, "the writer stopped"),
                        got_frames,
                        true,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Session, SessionInfo};
    use crate::writer_queue::{WriterReceiver, writer_queue};
    use nvr_core::{CameraUrl, SimulatedClock, Time90k, VideoCodec, VideoFrame, VideoParams};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What the fake camera does on each connect, in order; the last entry repeats.
    #[derive(Clone)]
    enum Script {
        Fail(CameraErrorKind),
        /// Sends this many frames, then ends the session.
        Frames(usize),
        /// Connects, sends one frame, then goes silent forever.
        Stall,
    }

    struct FakeSource {
        script: Mutex<Vec<Script>>,
        connects: AtomicUsize,
    }

    fn params() -> Arc<VideoParams> {
        Arc::new(VideoParams {
            codec: VideoCodec::H264,
            rfc6381_codec: "avc1.64001f".into(),
            width: 320,
            height: 240,
            sample_entry: bytes::Bytes::from_static(b"entry"),
        })
    }

    fn frames(n: usize, then_pending: bool) -> crate::source::FrameStream {
        let items = (0..n).map(|i| {
            Ok(SourceFrame {
                params: params(),
                frame: VideoFrame {
                    media_time_90k: i as i64 * 6000,
                    received: Time90k(i as i64 * 6000),
                    is_key: i % 15 == 0,
                    data: bytes::Bytes::from_static(b"\0\0\0\x01\x65"),
                },
            })
        });
        let s = futures::stream::iter(items);
        if then_pending {
            Box::pin(s.chain(futures::stream::pending()))
        } else {
            Box::pin(s)
        }
    }

    impl CameraSource for FakeSource {
        fn connect(
            &self,
            _t: &ConnectTarget,
        ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>> {
            let i = self.connects.fetch_add(1, Ordering::SeqCst);
            let script = self.script.lock().expect("lock");
            let step = script.get(i).or(script.last()).cloned().expect("script");
            Box::pin(async move {
                let info = SessionInfo::default();
                match step {
                    Script::Fail(kind) => Err(IngestError::new(kind, "scripted failure")),
                    Script::Frames(n) => Ok(Session {
                        info,
                        frames: frames(n, false),
                        camera_clock: Default::default(),
                        audio: Default::default(),
                    }),
                    Script::Stall => Ok(Session {
                        info,
                        frames: frames(1, true),
                        camera_clock: Default::default(),
                        audio: Default::default(),
                    }),
                }
            })
        }
    }

    struct Harness {
        source: Arc<FakeSource>,
        status: Arc<StatusCell>,
        rx: WriterReceiver,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(script: Vec<Script>) -> Harness {
        let source = Arc::new(FakeSource {
            script: Mutex::new(script),
            connects: AtomicUsize::new(0),
        });
        let clock = SimulatedClock::new(Time90k(0));
        let status = Arc::new(StatusCell::new(Time90k(0)));
        let (tx, rx) = writer_queue(1024, usize::MAX);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(Supervised {
            camera: nvr_core::CameraId(1).main(),
            name: "fake".into(),
            target: ConnectTarget {
                url: CameraUrl::parse("rtsp://127.0.0.1/x").expect("url"),
                username: Some("u".into()),
                password: Some("hunter2".into()),
                audio: false,
            },
            source: source.clone(),
            writer: Some(tx),
            status: status.clone(),
            live: Arc::new(crate::live::LiveHub::default()),
            clock: Arc::new(clock),
            config: SupervisorConfig::default(),
            stop: stop_rx,
        }));
        Harness {
            source,
            status,
            rx,
            stop,
            task,
        }
    }

    /// Drains the writer channel: (frames, end-of-run markers).
    fn drain(rx: &mut WriterReceiver) -> (usize, usize) {
        let (mut frames, mut ends) = (0, 0);
        while let Some(q) = rx.try_recv() {
            match q.msg {
                WriterMsg::Frame(_) => frames += 1,
                WriterMsg::EndRun => ends += 1,
                WriterMsg::CameraClock(_) => {}
            }
        }
        (frames, ends)
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_with_growing_backoff_and_reported() {
        let mut h = start(vec![
            Script::Fail(CameraErrorKind::Unreachable),
            Script::Fail(CameraErrorKind::Auth),
            Script::Frames(30),
            Script::Fail(CameraErrorKind::Unreachable),
        ]);
        // 1 s + 2 s of backoff (at most) bring the third attempt, which records 30 frames.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(h.source.connects.load(Ordering::SeqCst) >= 3);
        let (frames, ends) = drain(&mut h.rx);
        assert_eq!((frames, ends), (30, 1));
        let s = h.status.get();
        assert_eq!(s.frames_received, 30);
        assert!(s.failures >= 2);
        assert_eq!(s.connects, 1);
        // After a session with frames the backoff restarts at 1 s; failures then double it:
        // 1, 2, 4, 8, 16, 30, 30 ... so in 5 minutes there are at most ~15 attempts.
        tokio::time::sleep(Duration::from_secs(300)).await;
        let n = h.source.connects.load(Ordering::SeqCst);
        assert!((8..=20).contains(&n), "{n} connects in 5 minutes");
        assert_eq!(
            h.status.get().last_error_kind,
            Some(CameraErrorKind::Unreachable)
        );
        let _ = h.stop.send(true);
        h.task.await.expect("task");
        assert_eq!(h.status.get().state, CameraState::Disabled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_camera_is_dropped_after_the_stall_timeout() {
        let mut h = start(vec![Script::Stall]);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(h.source.connects.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            h.source.connects.load(Ordering::SeqCst),
            2,
            "reconnected after 10 s + backoff"
        );
        assert_eq!(
            h.status.get().last_error_kind,
            Some(CameraErrorKind::Stalled)
        );
        let (frames, ends) = drain(&mut h.rx);
        assert_eq!((frames, ends), (2, 1));
        let _ = h.stop.send(true);
        h.task.await.expect("task");
    }

    #[test]
    fn connect_target_debug_hides_the_password() {
        let t = ConnectTarget {
            url: CameraUrl::parse("rtsp://127.0.0.1/x").expect("url"),
            username: Some("u".into()),
            password: Some("hunter2".into()),
            audio: false,
        };
        let s = format!("{t:?}");
        assert!(!s.contains("hunter2") && s.contains("redacted"), "{s}");
    }

    #[test]
    fn jitter_stays_within_three_quarters_and_one() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(8));
            assert!(
                j >= Duration::from_secs(6) && j <= Duration::from_secs(8),
                "{j:?}"
            );
        }
    }
}
