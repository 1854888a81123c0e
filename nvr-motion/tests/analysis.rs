//! Motion analysis end to end inside the process: a scene whose only motion is a box crossing
//! during known seconds, recorded by the real writer and analysed live from a live fan-out,
//! is found by a search (and not by a region away from the box); reindexing the footage twice
//! gives the same index; and a decoder that fails or panics never costs a recorded frame.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{FPS, encode, note, picture, store};
use nvr_core::config::{MotionConfig, MotionDecode};
use nvr_core::{CameraId, Duration90k, Time90k, VideoFrame};
use nvr_ingest::live::{LiveHub, LiveReceiver};
use nvr_ingest::source::{CameraSource, ConnectTarget, Session, SessionInfo, SourceFrame};
use nvr_ingest::supervisor::SupervisorConfig;
use nvr_ingest::{IngestError, Recorder, RecorderConfig};
use nvr_media::MediaError;
use nvr_motion::reindex::{ReindexRequest, reindex};
use nvr_motion::{
    Decoder, DecoderFactory, FrameFeed, MotionService, MotionState, gstreamer_decoders,
};
use nvr_storage::motion::{CellMask, MotionQuery, search};
use nvr_storage::retention::RetentionPolicy;
use nvr_storage::writer::{CameraWriter, WriterConfig};

/// A whole second, so scene seconds are wall seconds.
const T0: i64 = 1_800_000_000 * 90_000;
const FRAME_90K: i64 = 90_000 / FPS as i64;
/// The box moves during frames 100..160 and 220..250: seconds 10-16 and 22-25.
const MOVING: [std::ops::Range<u32>; 2] = [100..160, 220..250];
const FRAMES: u32 = 300;

fn config() -> MotionConfig {
    MotionConfig {
        decode: MotionDecode::All,
        ..MotionConfig::default()
    }
}

fn draw(i: u32) -> Vec<u8> {
    MOVING
        .iter()
        .find(|r| r.contains(&i))
        .map_or_else(|| picture(i, &(0..0)), |r| picture(i, r))
}

struct HubFeed(Arc<LiveHub>);

impl FrameFeed for HubFeed {
    fn subscribe(&self, _camera: CameraId) -> (Vec<SourceFrame>, LiveReceiver) {
        self.0.subscribe()
    }
}

/// (start, end) seconds after T0 of each interval found.
fn found(
    store: &nvr_storage::store::Store,
    camera: CameraId,
    region: Option<CellMask>,
) -> Vec<(f64, f64)> {
    let r = search(
        store,
        &MotionQuery {
            camera,
            start: Time90k(T0),
            end: Time90k(T0 + 40 * 90_000),
            region,
            buckets: 0,
        },
    )
    .unwrap();
    r.intervals
        .iter()
        .map(|i| {
            (
                (i.start.0 - T0) as f64 / 90_000.0,
                (i.end.0 - T0) as f64 / 90_000.0,
            )
        })
        .collect()
}

fn assert_known(found: &[(f64, f64)]) {
    let want = [(10.0, 16.0), (22.0, 25.0)];
    assert_eq!(found.len(), want.len(), "{found:?}");
    for ((s, e), (ws, we)) in found.iter().zip(want) {
        assert!((s - ws).abs() <= 1.0 && (e - we).abs() <= 1.0, "{found:?}");
    }
}

fn rows_without_ids(store: &nvr_storage::store::Store) -> Vec<nvr_storage::MotionRow> {
    let mut rows = store.db_for_tests().all_motion_rows().unwrap();
    for r in &mut rows {
        r.id = 0;
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_analysis_finds_the_moving_box_and_reindexing_reproduces_itself() {
    let scene = tokio::task::spawn_blocking(|| encode(FRAMES, FPS, draw))
        .await
        .unwrap();
    let (_dir, store, camera) = store();
    let hub = Arc::new(LiveHub::default());
    let service = MotionService::start(
        store.clone(),
        Arc::new(HubFeed(hub.clone())),
        config(),
        gstreamer_decoders(),
    )
    .unwrap();
    service.reconcile().unwrap();
    let mut writer = CameraWriter::new(
        store.clone(),
        camera.main(),
        WriterConfig {
            segment_duration: Duration90k::from_secs(10),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .unwrap();
    for (i, (data, key)) in scene.frames.iter().enumerate() {
        let frame = VideoFrame {
            media_time_90k: i as i64 * FRAME_90K,
            received: Time90k(T0 + i as i64 * FRAME_90K + 450),
            is_key: *key,
            data: data.clone(),
        };
        writer.write(&scene.params, &frame).unwrap();
        hub.publish(&SourceFrame {
            params: scene.params.clone(),
            frame,
        });
        // 10x real time: within what the analysis keeps up with on a busy machine.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.end_run().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = service.status(camera);
    // 5 of every 10 pictures are analysed: 150, less any skipped while behind.
    assert!(status.frames_analysed >= 120, "{status:?}");
    assert!(
        status.frames_analysed + status.frames_skipped >= 150,
        "{status:?}"
    );
    let s2 = service.clone();
    tokio::task::spawn_blocking(move || s2.shutdown())
        .await
        .unwrap();

    assert_known(&found(&store, camera, None));
    // The box stays in the lower left quarter.
    let upper = CellMask::from_region(0.0, 0.0, 1.0, 0.45).unwrap();
    let right = CellMask::from_region(0.55, 0.0, 1.0, 1.0).unwrap();
    assert_eq!(found(&store, camera, Some(upper)), vec![]);
    assert_eq!(found(&store, camera, Some(right)), vec![]);
    let lower_left = CellMask::from_region(0.0, 0.5, 0.5, 1.0).unwrap();
    assert_known(&found(&store, camera, Some(lower_left)));
    assert_eq!(nvr_storage::check::check(&store).unwrap().problems, vec![]);

    // Reindexing: the same footage gives the same rows, every time.
    let req = ReindexRequest {
        camera,
        start: Time90k(T0),
        end: Time90k(T0 + 40 * 90_000),
        actor: "test".into(),
        settings: Default::default(),
        config: config(),
    };
    let store2 = store.clone();
    let (first, second, seen) = tokio::task::spawn_blocking(move || {
        let decoders = gstreamer_decoders();
        let mut seen = Vec::new();
        let out = reindex(&store2, &req, &decoders, &mut |d, t| seen.push((d, t))).unwrap();
        let first = rows_without_ids(&store2);
        reindex(&store2, &req, &decoders, &mut |_, _| {}).unwrap();
        assert_eq!(out.segments, 3);
        assert!(out.seconds_with_motion >= 8, "{out:?}");
        (first, rows_without_ids(&store2), seen)
    })
    .await
    .unwrap();
    assert_eq!(first, second, "reindexing is deterministic");
    assert_eq!(seen.first(), Some(&(0, 3)));
    assert_eq!(seen.last(), Some(&(3, 3)));
    assert_known(&found(&store, camera, None));
    assert_eq!(found(&store, camera, Some(upper)), vec![]);
    assert_eq!(nvr_storage::check::check(&store).unwrap().problems, vec![]);
    let audit = store
        .audit_entries(&nvr_storage::AuditFilter {
            action: Some("motion_reindex".into()),
            actor: None,
            object: None,
            since_90k: None,
            until_90k: None,
            before_id: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(audit.len(), 2, "each reindex is on record");
}

/// A camera whose session sends the scene's frames paced, then nothing.
struct SceneSource(Vec<SourceFrame>);

impl CameraSource for SceneSource {
    fn connect(
        &self,
        _t: &ConnectTarget,
    ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>> {
        let frames = self.0.clone();
        Box::pin(async move {
            let stream = futures::stream::unfold(frames.into_iter(), |mut it| async move {
                tokio::time::sleep(Duration::from_millis(3)).await;
                it.next().map(|f| (Ok(f), it))
            });
            let frames: nvr_ingest::source::FrameStream = Box::pin(futures::StreamExt::chain(
                stream,
                futures::stream::pending(),
            ));
            Ok(Session {
                info: SessionInfo::default(),
                frames,
                camera_clock: Default::default(),
                audio: Default::default(),
            })
        })
    }
}

/// A decoder that takes two frames, then fails (`panics`: panics instead).
struct Broken {
    pushed: u32,
    panics: bool,
}

impl Decoder for Broken {
    fn push(&mut self, _data: bytes::Bytes, _pts: i64, _key: bool) -> Result<(), MediaError> {
        self.pushed += 1;
        if self.pushed > 2 {
            if self.panics {
                panic!("decoder blew up");
            }
            return Err(MediaError::Pipeline("undecodable".into()));
        }
        Ok(())
    }
    fn pull(
        &mut self,
        _wait: Duration,
        _want: &mut dyn FnMut(i64) -> bool,
    ) -> Result<Option<(i64, Option<nvr_media::LumaImage>)>, MediaError> {
        Ok(None)
    }
    fn finish(&mut self) -> Result<(), MediaError> {
        Ok(())
    }
    fn is_drained(&self) -> bool {
        true
    }
}

async fn record_with_broken_analysis(panics: bool) {
    let scene = tokio::task::spawn_blocking(|| encode(120, FPS, draw))
        .await
        .unwrap();
    let (_dir, store, camera) = store();
    let now = store.clock().realtime().0;
    let frames: Vec<SourceFrame> = scene
        .frames
        .iter()
        .enumerate()
        .map(|(i, (data, key))| SourceFrame {
            params: scene.params.clone(),
            frame: VideoFrame {
                media_time_90k: i as i64 * FRAME_90K,
                received: Time90k(now + i as i64 * FRAME_90K),
                is_key: *key,
                data: data.clone(),
            },
        })
        .collect();
    let n = frames.len() as u64;
    let recorder = Recorder::start(
        store.clone(),
        Arc::new(SceneSource(frames)),
        nvr_ingest::egress::EgressPolicy::new(false),
        RecorderConfig {
            writer: WriterConfig {
                segment_duration: Duration90k::from_secs(4),
                fsync_interval: Duration90k::from_secs(5),
            },
            supervisor: SupervisorConfig::default(),
            default_retention: RetentionPolicy::default(),
            retention_interval: Duration::from_secs(3600),
            min_free_bytes: 0,
        },
    );
    let broken: DecoderFactory = Arc::new(move |_params: &nvr_core::VideoParams, _name: &str| {
        Ok(Box::new(Broken { pushed: 0, panics }) as Box<dyn Decoder>)
    });
    let service = MotionService::start(store.clone(), recorder.clone(), config(), broken).unwrap();
    service.reconcile().unwrap();
    recorder.reconcile().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = recorder
            .status(camera)
            .map(|s| (s.frames_received, s.frames_written));
        if s == Some((n, n)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recording stalled at {s:?} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = service.status(camera);
    assert_eq!(status.state, MotionState::Error, "{status:?}");
    let error = status.last_error.unwrap_or_default();
    assert!(
        if panics {
            error.contains("decoder blew up")
        } else {
            error.contains("undecodable")
        },
        "{error}"
    );
    recorder.shutdown().await;
    let s2 = service.clone();
    tokio::task::spawn_blocking(move || s2.shutdown())
        .await
        .unwrap();
    let in_index: i64 = store
        .db_for_tests()
        .all_segments()
        .unwrap()
        .iter()
        .map(|s| s.frames)
        .sum();
    assert_eq!(in_index as u64, n, "every frame is recorded");
    let _ = note();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_decoder_never_costs_a_recorded_frame() {
    record_with_broken_analysis(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_analysis_never_costs_a_recorded_frame() {
    record_with_broken_analysis(true).await;
}
