//! One camera's live analysis, on its own thread: frames from the camera's live fan-out (the
//! recorder never waits for it: a slow reader lags and skips to the next key frame), placed in
//! wall time like the writer places them, decoded (every picture of a small stream, key frames
//! of a large one), sampled, analysed, folded into seconds and handed to the index writer
//! every few seconds.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nvr_core::config::{MotionConfig, MotionDecode};
use nvr_core::{CameraId, Clock, Time90k, VideoParams};
use nvr_ingest::live::{LiveReceiver, RecvError, TryRecvError};
use nvr_ingest::source::SourceFrame;
use nvr_media::{LumaImage, MediaError};
use nvr_storage::motion::{MotionSpan, TICKS_PER_SEC};
use tokio::sync::watch;

use crate::accumulate::{Accumulator, Sampler, detector_step_90k};
use crate::decoder::{Decoder, DecoderFactory};
use crate::detector::{Detector, Outcome};
use crate::settings::MotionSettings;
use crate::status::StatusCell;

/// How often the seconds analysed are handed to the index writer.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// A session's media time jumping forward by more than this (or back) is a new session.
const SESSION_JUMP_90K: i64 = 10 * TICKS_PER_SEC;
/// How long a finished decoder may take to give its last pictures.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// After this many decoder failures within [`FAILURE_WINDOW`], analysis pauses for
/// [`FAILURE_PAUSE`] (a camera sending undecodable video must not cost a decoder per GOP).
const MAX_FAILURES: usize = 3;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
const FAILURE_PAUSE: Duration = Duration::from_secs(30);

/// The largest access unit analysis decodes: a 4K key frame is 1-3 MiB, a sub-stream's frames
/// tens of KiB; larger ones are skipped (counted as skipped pictures) up to the next key frame.
pub const MAX_ANALYSED_FRAME_BYTES: usize = 4 << 20;

/// Whether a stream is analysed at its key frames only.
pub fn key_frames_only(config: &MotionConfig, params: &VideoParams) -> bool {
    match config.decode {
        MotionDecode::All => false,
        MotionDecode::KeyFrames => true,
        MotionDecode::Auto => {
            u32::from(params.width) * u32::from(params.height) > config.full_decode_max_pixels
        }
    }
}

/// Places a session's frames in wall time: media time plus the smallest (arrival - media)
/// offset seen so far, the writer's estimate of where the run starts.
#[derive(Debug, Default)]
struct WallMap {
    offset_90k: Option<i64>,
    last_media_90k: Option<i64>,
}

impl WallMap {
    /// Whether `media` continues the session.
    fn continues(&self, media_90k: i64) -> bool {
        self.last_media_90k
            .is_none_or(|m| media_90k > m && media_90k - m <= SESSION_JUMP_90K)
    }

    fn wall(&mut self, media_90k: i64, received: Time90k) -> i64 {
        let off = received.0.saturating_sub(media_90k);
        let off = *self
            .offset_90k
            .insert(self.offset_90k.map_or(off, |o| o.min(off)));
        self.last_media_90k = Some(media_90k);
        media_90k.saturating_add(off)
    }
}

/// The decoder of the current session.
struct Chain {
    params: Arc<VideoParams>,
    decoder: Box<dyn Decoder>,
    key_only: bool,
    last_pts: i64,
}

/// What one camera's analysis needs.
pub struct Worker {
    pub camera: CameraId,
    pub config: MotionConfig,
    pub settings: watch::Receiver<MotionSettings>,
    pub decoders: DecoderFactory,
    pub status: Arc<StatusCell>,
    pub spans: mpsc::Sender<(CameraId, MotionSpan)>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("camera", &self.camera)
            .finish_non_exhaustive()
    }
}

/// What the worker waits for next.
enum Next {
    Frame(Result<SourceFrame, RecvError>),
    Tick,
    Stop,
}

/// The analysis state of a worker between frames.
struct State {
    w: Worker,
    chain: Option<Chain>,
    detector: Option<(u32, u32, Detector)>,
    settings: MotionSettings,
    sampler: Sampler,
    acc: Accumulator,
    wall: WallMap,
    need_key: bool,
    last_key_wall: Option<i64>,
    key_interval_90k: i64,
    last_analysed: Option<i64>,
    failures: Vec<Instant>,
    paused_until: Option<Instant>,
}

impl Worker {
    /// Runs until `stop` is set or the feed ends (blocking; on the worker's own thread). The
    /// feed is the camera's current GOP and a receiver of what follows.
    pub fn run(
        self,
        feed: (Vec<SourceFrame>, LiveReceiver),
        mut stop: watch::Receiver<bool>,
        runtime: &tokio::runtime::Handle,
    ) {
        let (gop, mut rx) = feed;
        let settings = *self.settings.borrow();
        let mut s = State {
            sampler: Sampler::new(self.config.fps),
            w: self,
            chain: None,
            detector: None,
            settings,
            acc: Accumulator::default(),
            wall: WallMap::default(),
            need_key: true,
            last_key_wall: None,
            key_interval_90k: 2 * TICKS_PER_SEC,
            last_analysed: None,
            failures: Vec::new(),
            paused_until: None,
        };
        for f in gop {
            s.on_frame(f);
        }
        let mut last_flush = Instant::now();
        // One timer for the whole run (registering one per frame costs more than the frame).
        let mut tick = {
            let _runtime = runtime.enter();
            Box::pin(tokio::time::sleep(FLUSH_INTERVAL))
        };
        while !*stop.borrow() {
            // Frames already there are taken without waiting (no wake-up, no timer).
            let next = match rx.try_recv() {
                Ok(f) => Next::Frame(Ok(f)),
                Err(TryRecvError::Lagged(n)) => Next::Frame(Err(RecvError::Lagged(n))),
                Err(TryRecvError::Closed) => Next::Frame(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => runtime.block_on(async {
                    tokio::select! {
                        biased;
                        _ = stop.changed() => Next::Stop,
                        r = rx.recv() => Next::Frame(r),
                        () = &mut tick => Next::Tick,
                    }
                }),
            };
            match next {
                Next::Stop | Next::Frame(Err(RecvError::Closed)) => break,
                Next::Frame(Ok(f)) => s.on_frame(f),
                Next::Frame(Err(RecvError::Lagged(n))) => s.on_lag(n),
                Next::Tick => tick
                    .as_mut()
                    .reset(tokio::time::Instant::now() + FLUSH_INTERVAL),
            }
            s.pull_ready(Duration::ZERO);
            if last_flush.elapsed() >= FLUSH_INTERVAL {
                s.flush(false);
                last_flush = Instant::now();
            }
        }
        s.end_chain();
        s.flush(true);
    }
}

impl State {
    fn now(&self) -> Time90k {
        self.w.clock.realtime()
    }

    fn on_frame(&mut self, f: SourceFrame) {
        if self.w.settings.has_changed().unwrap_or(false) {
            self.settings = *self.w.settings.borrow_and_update();
            self.detector = None;
        }
        let media = f.frame.media_time_90k;
        let same_params = self.chain.as_ref().is_none_or(|c| *c.params == *f.params);
        if !self.wall.continues(media) || !same_params {
            // A new session (or new parameters): what was analysed before ends here.
            self.end_chain();
            self.wall = WallMap::default();
            if let Some((_, _, d)) = &mut self.detector {
                d.reset();
            }
            self.need_key = true;
        }
        let wall = self.wall.wall(media, f.frame.received);
        if f.frame.is_key {
            if let Some(prev) = self.last_key_wall.filter(|&p| wall > p) {
                self.key_interval_90k = wall - prev;
            }
            self.last_key_wall = Some(wall);
        }
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                self.skip(1);
                return;
            }
            self.paused_until = None;
        }
        let key_only = key_frames_only(&self.w.config, &f.params);
        if key_only && !f.frame.is_key {
            return;
        }
        if self.need_key && !f.frame.is_key {
            self.skip(1);
            return;
        }
        if f.frame.data.len() > MAX_ANALYSED_FRAME_BYTES {
            // No camera's picture worth analysing is this large; a hostile one's must not
            // reach a decoder (its memory grows with the bitstream).
            self.need_key = true;
            self.skip(1);
            return;
        }
        if self.chain.is_none() {
            let name = format!("m{}", self.w.camera);
            match (self.w.decoders)(&f.params, &name) {
                Ok(decoder) => {
                    self.w
                        .status
                        .set_decode(if key_only { "key_frames" } else { "all" });
                    self.chain = Some(Chain {
                        params: f.params.clone(),
                        decoder,
                        key_only,
                        last_pts: i64::MIN,
                    });
                }
                Err(e) => return self.failed(&e),
            }
        }
        let Some(chain) = &mut self.chain else { return };
        let pts = wall.max(chain.last_pts.saturating_add(1));
        match chain.decoder.push(f.frame.data, pts, f.frame.is_key) {
            Ok(()) => {
                chain.last_pts = pts;
                self.need_key = false;
            }
            Err(e) if e.is_frame_dropped() => {
                // The decoder is behind: skip to the next key frame.
                self.need_key = true;
                self.skip(1);
            }
            Err(e) => self.failed(&e),
        }
    }

    fn on_lag(&mut self, n: u64) {
        self.need_key = true;
        self.skip(n);
    }

    fn skip(&mut self, n: u64) {
        let now = self.now();
        self.w.status.skipped(n, now);
        self.acc.skipped(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// The decoder failed: drop it, start again at a later key frame (pausing if it keeps
    /// failing), and say so in the status.
    fn failed(&mut self, e: &MediaError) {
        tracing::warn!(camera = %self.w.camera, error = %e, "motion analysis: decoder failed");
        self.w.status.error(e.to_string());
        self.chain = None;
        self.need_key = true;
        if let Some((_, _, d)) = &mut self.detector {
            d.reset();
        }
        self.acc.end_span();
        let now = Instant::now();
        self.failures
            .retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        self.failures.push(now);
        if self.failures.len() >= MAX_FAILURES {
            self.paused_until = Some(now + FAILURE_PAUSE);
            self.failures.clear();
        }
    }

    /// Analyses every picture the decoder has ready, waiting at most `wait` for each.
    fn pull_ready(&mut self, wait: Duration) {
        loop {
            let Some(chain) = &mut self.chain else { return };
            let key_only = chain.key_only;
            let sampler = &mut self.sampler;
            let mut want = |pts: i64| key_only || sampler.want(pts);
            match chain.decoder.pull(wait, &mut want) {
                Ok(Some((pts, Some(img)))) => self.analyse(pts, &img, key_only),
                Ok(Some((_, None))) => {}
                Ok(None) => return,
                Err(e) => return self.failed(&e),
            }
        }
    }

    fn analyse(&mut self, wall: i64, img: &LumaImage, key_only: bool) {
        let settings = self.settings;
        let detector = match &mut self.detector {
            Some((w, h, d)) if *w == img.width && *h == img.height => d,
            _ => {
                let d = Detector::new(settings.detector_params(img.width, img.height));
                &mut self.detector.insert((img.width, img.height, d)).2
            }
        };
        let interval = if key_only {
            self.key_interval_90k
        } else {
            self.sampler.period_90k()
        };
        let dt = self
            .last_analysed
            .map_or(0, |t| detector_step_90k(wall - t, interval));
        let outcome = detector.analyse(img, dt);
        self.last_analysed = Some(wall);
        self.acc.add(wall, interval, outcome);
        self.w
            .status
            .analysed(Time90k(wall), matches!(outcome, Outcome::Motion { .. }));
    }

    /// Finishes the current decoder, analysing what it still holds.
    fn end_chain(&mut self) {
        if let Some(chain) = &mut self.chain
            && chain.decoder.finish().is_ok()
        {
            let deadline = Instant::now() + DRAIN_LIMIT;
            while self.chain.as_ref().is_some_and(|c| !c.decoder.is_drained())
                && Instant::now() < deadline
            {
                self.pull_ready(Duration::from_millis(50));
            }
        }
        self.chain = None;
        self.acc.end_span();
    }

    /// Hands the spans ready to the index writer (`all`: the open one too).
    fn flush(&mut self, all: bool) {
        let spans = if all {
            self.acc.take_all()
        } else {
            self.acc.take()
        };
        for span in spans {
            if self.w.spans.send((self.w.camera, span)).is_err() {
                return;
            }
        }
    }
}
