//! Motion index searches (`GET /api/cameras/{id}/motion`, i.e. `motion::search`) of one camera
//! over a synthetic index of one-minute segments, and the index's size per camera-day.
//!
//! The busy scene has motion every second of the day: three objects of 3x3 cells crossing the
//! picture at different speeds in the lower 13 rows of the grid (the top rows never see any),
//! scores varying. The still scene has no motion at all (its rows only record what was
//! analysed). The year is of a scene busy 12 hours a day (daytime) and still at night.
//! Sizes are measured as the growth of the database file over the same segments without an
//! index, so they include SQLite's row and index overhead.
//!
//! Building the indexes takes a few minutes before the measurements start.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use nvr_core::{CameraId, CameraUrl, SegmentId, SimulatedClock, Time90k, VideoCodec, VideoParams};
use nvr_storage::motion::{
    CellMask, MotionQuery, MotionSecond, MotionSpan, ReindexedSegment, search,
};
use nvr_storage::mp4::test_support::fake_avc1;
use nvr_storage::store::{CameraEdit, Store};
use nvr_storage::{AuditNote, SealedSegment};

const SEGMENT_SECS: i64 = 60;
const DAY_SECS: i64 = 86_400;
/// 2026-11-29T00:00:00Z, in seconds.
const T0_SECS: i64 = 1_795_910_400;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scene {
    Busy,
    Still,
    /// Busy from 06:00 to 18:00, still at night.
    Daytime,
}

/// The busy scene's second `s`: three 3x3-cell objects, each moving a cell every second or
/// two, in rows 3..=15.
fn busy_second(s: i64) -> MotionSecond {
    let mut cells = CellMask::EMPTY;
    for k in 0..3i64 {
        let col = ((s * (k + 1) / 2 + 5 * k) % 14) as usize;
        let row = (3 + 4 * k + ((s / 11 + k) % 3)) as usize;
        for r in row..(row + 3).min(16) {
            for c in col..col + 3 {
                cells.set(r, c);
            }
        }
    }
    MotionSecond {
        second: s,
        cells,
        score: (20 + (s * 7919) % 130) as u8,
    }
}

fn has_motion(scene: Scene, s: i64) -> bool {
    match scene {
        Scene::Busy => true,
        Scene::Still => false,
        Scene::Daytime => (6 * 3600..18 * 3600).contains(&s.rem_euclid(DAY_SECS)),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    camera: CameraId,
}

/// The size of the index database in `dir` (after the store closed, which checkpoints its
/// write-ahead log into it).
fn db_bytes(dir: &std::path::Path) -> u64 {
    ["index.db", "index.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn note() -> AuditNote {
    AuditNote::new(0, "bench", "bench", "bench", serde_json::json!({}))
}

/// `days` of one-minute segments of one camera, with a motion index of `scene` (or none).
fn build(days: i64, scene: Option<Scene>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = SimulatedClock::new(Time90k((T0_SECS + days * DAY_SECS) * 90_000));
    Store::init(dir.path(), &clock).expect("init");
    let store = Store::open(dir.path(), Arc::new(clock)).expect("open");
    let params = VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.64001e".into(),
        width: 640,
        height: 360,
        sample_entry: Bytes::from(fake_avc1(640, 360)),
    };
    let params_id = store
        .db_for_tests()
        .upsert_video_params(&params, &[1; 32])
        .expect("params");
    let url = CameraUrl::parse("rtsp://127.0.0.1:8554/cam1").expect("url");
    let camera = store
        .add_camera(&CameraEdit::new("cam1", &url), |_| note())
        .expect("camera");
    let sha = [5u8; 32];
    let blob = [1u8, 0];
    for day in 0..days {
        let day_start = T0_SECS + day * DAY_SECS;
        let epoch = store
            .db_for_tests()
            .get_or_create_epoch(camera, &Time90k(day_start * 90_000).utc_day())
            .expect("epoch")
            .0;
        let rows: Vec<_> = (0..DAY_SECS / SEGMENT_SECS)
            .map(|m| {
                let start = (day_start + m * SEGMENT_SECS) * 90_000;
                let end = start + SEGMENT_SECS * 90_000;
                (
                    camera,
                    epoch,
                    params_id,
                    SealedSegment {
                        id: SegmentId(0),
                        start_90k: start,
                        end_90k: end,
                        media_duration_90k: end - start,
                        frames: 900,
                        key_frames: 60,
                        video_bytes: 3_000_000,
                        file_bytes: 3_010_000,
                        sha256: &sha,
                        frame_index: &blob,
                        flags: 0,
                    },
                )
            })
            .collect();
        store
            .db_for_tests()
            .insert_synthetic_segments(&rows)
            .expect("segments");
        let Some(scene) = scene else { continue };
        let segments = store
            .sealed_segments_overlapping(
                camera,
                day_start * 90_000,
                (day_start + DAY_SECS) * 90_000,
            )
            .expect("segments");
        let index: Vec<ReindexedSegment> = segments
            .iter()
            .map(|s| {
                let first = s.start_90k / 90_000;
                ReindexedSegment {
                    segment: s.id,
                    span: MotionSpan {
                        start_90k: s.start_90k,
                        end_90k: s.end_90k,
                        frames: 300,
                        skipped: 0,
                        seconds: (first..first + SEGMENT_SECS)
                            .filter(|&x| has_motion(scene, x))
                            .map(busy_second)
                            .collect(),
                    },
                }
            })
            .collect();
        store.replace_motion(camera, &index, None).expect("motion");
    }
    Fixture { dir, store, camera }
}

fn query(f: &Fixture, days: i64, region: Option<CellMask>, buckets: usize) -> MotionQuery {
    MotionQuery {
        camera: f.camera,
        start: Time90k(T0_SECS * 90_000),
        end: Time90k((T0_SECS + days * DAY_SECS) * 90_000),
        region,
        buckets,
    }
}

/// Index bytes per camera-day of `scene`: the database's growth over the same segments alone.
fn bytes_per_day(scene: Scene, days: i64) -> f64 {
    let closed = |f: Fixture| {
        drop(f.store);
        db_bytes(f.dir.path())
    };
    let with = closed(build(days, Some(scene)));
    let without = closed(build(days, None));
    (with as f64 - without as f64) / days as f64
}

fn motion(c: &mut Criterion) {
    for (name, scene) in [("busy", Scene::Busy), ("still", Scene::Still)] {
        let b = bytes_per_day(scene, 7);
        eprintln!(
            "motion index, {name} scene: {:.0} bytes ({:.3} MB) per camera-day",
            b,
            b / 1e6
        );
    }
    let t = std::time::Instant::now();
    let month = build(30, Some(Scene::Busy));
    eprintln!("30 busy days indexed in {:.1} s", t.elapsed().as_secs_f64());
    // Where the objects pass, where they never do, and the whole picture with a strip.
    let lower_right = CellMask::from_region(0.75, 0.75, 1.0, 1.0);
    let top = CellMask::from_region(0.0, 0.0, 1.0, 0.125);
    let r = search(&month.store, &query(&month, 30, lower_right, 0)).expect("search");
    assert!(!r.intervals.is_empty());
    let r = search(&month.store, &query(&month, 30, top, 0)).expect("search");
    assert!(r.intervals.is_empty() && r.rows_decoded == 0);
    let mut g = c.benchmark_group("motion");
    g.sample_size(10);
    g.bench_function("search_30d_busy_region", |b| {
        b.iter(|| {
            black_box(search(&month.store, &query(&month, 30, lower_right, 0)).expect("search"))
        })
    });
    g.bench_function("search_30d_busy_whole_picture_1366_buckets", |b| {
        b.iter(|| black_box(search(&month.store, &query(&month, 30, None, 1366)).expect("search")))
    });
    g.bench_function("search_30d_busy_region_never_touched", |b| {
        b.iter(|| black_box(search(&month.store, &query(&month, 30, top, 0)).expect("search")))
    });
    drop(month);
    let t = std::time::Instant::now();
    let year = build(365, Some(Scene::Daytime));
    eprintln!(
        "365 days (busy 12 h a day) indexed in {:.1} s; database {:.0} MB",
        t.elapsed().as_secs_f64(),
        db_bytes(year.dir.path()) as f64 / 1e6
    );
    g.bench_function("search_365d_daytime_region", |b| {
        b.iter(|| {
            black_box(search(&year.store, &query(&year, 365, lower_right, 0)).expect("search"))
        })
    });
    g.finish();
}

criterion_group!(benches, motion);
criterion_main!(benches);
