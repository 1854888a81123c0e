//! The recorder with a camera's two streams, against a fake camera that answers by URL: a
//! supervisor per stream, a writer only for recorded streams, a live hub per stream, the
//! egress allowlist holding both addresses, and a stream restarted when its recording changes.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use nvr_core::{
    CameraId, CameraUrl, Duration90k, Stream, SystemClock, VideoCodec, VideoFrame, VideoParams,
};
use nvr_ingest::egress::EgressPolicy;
use nvr_ingest::source::{CameraSource, ConnectTarget, Session, SessionInfo, SourceFrame};
use nvr_ingest::supervisor::SupervisorConfig;
use nvr_ingest::{IngestError, Recorder, RecorderConfig};
use nvr_storage::AuditNote;
use nvr_storage::retention::RetentionPolicy;
use nvr_storage::store::{CameraEdit, Store};
use nvr_storage::writer::WriterConfig;

/// Each session sends 40 frames at once (key frame every 10), 640 wide on a URL that says
/// `sub`, else 1920, then stays open without sending more.
struct ByUrlSource;

impl CameraSource for ByUrlSource {
    fn connect(
        &self,
        target: &ConnectTarget,
    ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>> {
        let width = if target.url.as_str().contains("sub") {
            640
        } else {
            1920
        };
        Box::pin(async move {
            let params = Arc::new(VideoParams {
                codec: VideoCodec::H264,
                rfc6381_codec: "avc1.64001f".into(),
                width,
                height: width / 16 * 9,
                sample_entry: Bytes::from(format!("entry {width}")),
            });
            let now = SystemClock::new();
            let t0 = nvr_core::Clock::realtime(&now);
            let frames = (0..40).map(move |i: i64| {
                Ok(SourceFrame {
                    params: params.clone(),
                    frame: VideoFrame {
                        media_time_90k: i * 6000,
                        received: t0 + Duration90k(i * 6000),
                        is_key: i % 10 == 0,
                        data: Bytes::from(vec![i as u8; 500]),
                    },
                })
            });
            Ok(Session {
                info: SessionInfo::default(),
                frames: Box::pin(futures::stream::iter(frames).chain(futures::stream::pending())),
                camera_clock: Default::default(),
                audio: Default::default(),
            })
        })
    }
}

fn note() -> AuditNote {
    AuditNote::new(0, "test", "test", "test", serde_json::json!({}))
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn set_record_sub(store: &Store, camera: CameraId, record_sub: bool) {
    let row = store.camera(camera).unwrap().unwrap();
    let url = CameraUrl::parse(&row.url).unwrap();
    let sub_url = row.sub_url.as_deref().map(|u| CameraUrl::parse(u).unwrap());
    store
        .update_camera(
            camera,
            &CameraEdit {
                sub_url: sub_url.as_ref(),
                record_sub,
                record_audio: row.record_audio,
                ..CameraEdit::new(&row.name, &url)
            },
            &[],
            note(),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stream_has_its_supervisor_and_only_recorded_ones_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SystemClock::new());
    Store::init(dir.path(), clock.as_ref()).unwrap();
    let store = Store::open(dir.path(), clock).unwrap();
    let (main, sub) = (
        CameraUrl::parse("rtsp://10.0.0.1/main").unwrap(),
        CameraUrl::parse("rtsp://10.0.0.1:8554/sub").unwrap(),
    );
    let camera = store
        .add_camera(
            &CameraEdit {
                sub_url: Some(&sub),
                record_sub: false,
                ..CameraEdit::new("gate", &main)
            },
            |_| note(),
        )
        .unwrap();
    let egress = EgressPolicy::new(false);
    let recorder = Recorder::start(
        store.clone(),
        Arc::new(ByUrlSource),
        egress.clone(),
        RecorderConfig {
            writer: WriterConfig {
                segment_duration: Duration90k::from_secs(60),
                fsync_interval: Duration90k::from_secs(5),
            },
            supervisor: SupervisorConfig::default(),
            default_retention: RetentionPolicy::default(),
            retention_interval: Duration::from_secs(3600),
            min_free_bytes: 0,
        },
    );
    recorder.reconcile().unwrap();
    // Both addresses may be connected to.
    egress.check(&main).unwrap();
    egress.check(&sub).unwrap();
    let status = |s: Stream| recorder.stream_status(camera.stream(s));
    wait_until("both streams receive", || {
        [Stream::Main, Stream::Sub]
            .iter()
            .all(|&s| status(s).is_some_and(|st| st.frames_received == 40))
    })
    .await;
    wait_until("the main stream is written", || {
        status(Stream::Main).is_some_and(|s| s.frames_written == 40)
    })
    .await;
    assert_eq!(status(Stream::Sub).unwrap().frames_written, 0, "live only");
    assert_eq!(status(Stream::Sub).unwrap().width, Some(640));
    let key = recorder.live(camera.sub()).last_key_frame().unwrap();
    assert_eq!(key.params.width, 640, "the sub-stream's live hub");
    assert_eq!(
        recorder
            .live(camera.main())
            .last_key_frame()
            .unwrap()
            .params
            .width,
        1920
    );

    // Recording the sub-stream restarts it (once its old supervisor stopped) with a writer.
    set_record_sub(&store, camera, true);
    recorder.reconcile().unwrap();
    wait_until("the sub-stream restarts with a writer", || {
        recorder.reconcile().unwrap();
        status(Stream::Sub).is_some_and(|s| s.frames_written == 40)
    })
    .await;
    recorder.shutdown().await;
    let rows = store.db_for_tests().all_segments().unwrap();
    let frames = |s: Stream| -> i64 {
        rows.iter()
            .filter(|r| r.stream == s)
            .map(|r| r.frames)
            .sum()
    };
    assert_eq!((frames(Stream::Main), frames(Stream::Sub)), (40, 40));
    assert!(rows.iter().all(|r| r.sealed), "shutdown seals both streams");
}
