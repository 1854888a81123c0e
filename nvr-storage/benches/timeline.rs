//! The timeline query (`GET /api/cameras/{id}/recordings`, i.e. `playback::runs`) of one day for
//! one camera, in a synthetic index holding 30 days of 32 cameras recording one-minute
//! segments around the clock: 1,382,400 segment rows, inserted in recording order (cameras
//! interleaved, as a real recorder writes them).
//!
//! Every row of the queried day (all 32 cameras) carries a full-size frame index blob (1,800
//! frames, ~9 KiB, so rows spill onto overflow pages as real ones do); rows of the other days
//! carry a short blob to keep the file at ~0.7 GB instead of ~12 GB. The query only reaches
//! the queried day's rows through the (camera_id, start_90k) index, so the other days matter
//! only through the depth of the B-trees. No segment files exist: the query does not read them.
//!
//! Building the index takes a minute or two before the measurements start.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use nvr_core::{CameraId, CameraUrl, SimulatedClock, Time90k, VideoCodec, VideoParams};
use nvr_storage::SealedSegment;
use nvr_storage::frame_index::{self, FrameInfo};
use nvr_storage::mp4::test_support::fake_avc1;
use nvr_storage::playback::runs;
use nvr_storage::store::{CameraEdit, Store};

const DAYS: i64 = 30;
const CAMERAS: i64 = 32;
const SEGMENT_SECS: i64 = 60;
const DAY_90K: i64 = 86_400 * 90_000;
/// The queried day (in the middle of the 30) and camera.
const QUERY_DAY: i64 = 15;
const QUERY_CAMERA: i64 = 17;
/// 2026-11-29T00:00:00Z in 90 kHz units: the first day.
const T0: i64 = 1_795_910_400 * 90_000;

fn full_index() -> Vec<u8> {
    let mut off = 136u64;
    let frames: Vec<FrameInfo> = (0..1800)
        .map(|i| {
            let key = i % 60 == 0;
            let size = if key {
                90_000
            } else {
                15_000 + (i * 7919 % 4000) as u32
            };
            let f = FrameInfo {
                duration_90k: 3000,
                size_bytes: size,
                is_key: key,
                data_offset: off + 16,
                composition_offset_90k: 0,
            };
            off += 16 + u64::from(size);
            f
        })
        .collect();
    frame_index::encode(120, &frames)
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
}

fn build() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = SimulatedClock::new(Time90k(T0 + DAYS * DAY_90K));
    Store::init(dir.path(), &clock).expect("init");
    let store = Store::open(dir.path(), Arc::new(clock)).expect("open");
    let params = VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.640028".into(),
        width: 1920,
        height: 1080,
        sample_entry: Bytes::from(fake_avc1(1920, 1080)),
    };
    let params_id = store
        .db_for_tests()
        .upsert_video_params(&params, &[1; 32])
        .expect("params");
    let cameras: Vec<CameraId> = (1..=CAMERAS)
        .map(|c| {
            let url = CameraUrl::parse(&format!("rtsp://127.0.0.1:8554/cam{c}")).expect("url");
            store
                .add_camera(&CameraEdit::new(&format!("cam{c}"), &url), |_| {
                    nvr_storage::AuditNote::new(
                        0,
                        "bench",
                        "camera_add",
                        "camera",
                        serde_json::json!({}),
                    )
                })
                .expect("camera")
        })
        .collect();
    let full = full_index();
    let short = full[..64].to_vec();
    let sha = [5u8; 32];
    let t = std::time::Instant::now();
    for day in 0..DAYS {
        let day_start = T0 + day * DAY_90K;
        let day_name = Time90k(day_start).utc_day();
        let epochs: Vec<i64> = cameras
            .iter()
            .map(|&c| {
                store
                    .db_for_tests()
                    .get_or_create_epoch(c, &day_name)
                    .expect("epoch")
                    .0
            })
            .collect();
        let blob = if day == QUERY_DAY { &full } else { &short };
        let mut rows = Vec::with_capacity((CAMERAS * 1440) as usize);
        for minute in 0..(86_400 / SEGMENT_SECS) {
            for (ci, &camera) in cameras.iter().enumerate() {
                // Cameras do not rotate in lockstep: spread their boundaries over a second.
                let start = day_start + minute * SEGMENT_SECS * 90_000 + ci as i64 * 2_800;
                let end = start + SEGMENT_SECS * 90_000;
                rows.push((
                    camera,
                    epochs[ci],
                    params_id,
                    SealedSegment {
                        id: nvr_core::SegmentId(0),
                        start_90k: start,
                        end_90k: end,
                        media_duration_90k: end - start,
                        frames: 1800,
                        key_frames: 30,
                        video_bytes: 30_000_000,
                        file_bytes: 30_010_000,
                        sha256: &sha,
                        frame_index: blob,
                        flags: 0,
                    },
                ));
            }
        }
        store
            .db_for_tests()
            .insert_synthetic_segments(&rows)
            .expect("insert");
    }
    eprintln!(
        "synthetic index: {} segments in {:.1} s",
        DAYS * CAMERAS * 1440,
        t.elapsed().as_secs_f64()
    );
    Fixture { _dir: dir, store }
}

fn timeline(c: &mut Criterion) {
    let f = build();
    let camera = CameraId(QUERY_CAMERA);
    let start = Time90k(T0 + QUERY_DAY * DAY_90K);
    let end = Time90k(start.0 + DAY_90K);
    let r = runs(&f.store, camera.main(), start, end).expect("runs");
    assert_eq!(r.iter().map(|r| r.segments).sum::<u64>(), 1440 + 1);
    let mut g = c.benchmark_group("timeline");
    g.bench_function("one_day_one_camera_of_30d_x_32", |b| {
        b.iter(|| black_box(runs(&f.store, camera.main(), start, end).expect("runs")))
    });
    let hour_end = Time90k(start.0 + 3600 * 90_000);
    g.bench_function("one_hour_one_camera_of_30d_x_32", |b| {
        b.iter(|| black_box(runs(&f.store, camera.main(), start, hour_end).expect("runs")))
    });
    g.finish();
}

criterion_group!(benches, timeline);
criterion_main!(benches);
