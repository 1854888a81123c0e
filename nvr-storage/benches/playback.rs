//! Reading recordings back from a real data directory holding one hour (62 minutes) of one
//! 1080p camera at 30 fps and ~4 Mbit/s, recorded through `CameraWriter` (encrypted one-minute
//! segments, SQLite index): ~1.9 GB of segment files.
//!
//! - `view_1h/first_byte`: `view.mp4` time to first byte for a 1-hour range: the index query,
//!   frame index decoding, the `moov` and the first piece, as the HTTP handler does before the
//!   response starts (`playback::view` + `pieces().next()`).
//! - `view_1h/seek_first_byte`: the same for a Range request starting 30 minutes in (the first
//!   piece is then frame bytes: one chunk read and decrypted).
//! - `export_10min/*`: `export::write_bundle` of a 10-minute range (10 whole segments, ~300 MB)
//!   into a file, against `cat` of the same 10 segment files into a file in the same directory. Both
//!   report throughput in bytes of those segment files, so the ratio of the rates is the ratio
//!   of the times. Everything is in the page cache (warm), as right after recording.
//!
//! Recording the fixture takes ~20-60 s before the measurements start.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nvr_core::{
    CameraId, CameraUrl, Duration90k, SimulatedClock, Time90k, VideoCodec, VideoFrame, VideoParams,
};
use nvr_storage::export::{ExportRequest, write_bundle};
use nvr_storage::mp4::test_support::fake_avc1;
use nvr_storage::playback::view;
use nvr_storage::store::{CameraEdit, Store};
use nvr_storage::writer::{CameraWriter, WriterConfig};

/// 30 fps.
const FRAME_90K: i64 = 3000;
/// Key frame every 2 s.
const GOP: i64 = 60;
const MINUTES: i64 = 62;
/// 2026-11-29T12:00:00Z in 90 kHz units.
const T0: i64 = 1_795_953_600 * 90_000;

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    camera: CameraId,
}

/// ~4 Mbit/s at 30 fps: 90 kB key frames, ~15.4 kB others (average ~16.6 kB).
fn frame_size(n: i64) -> usize {
    if n % GOP == 0 {
        90_000
    } else {
        14_000 + (n * 7919 % 3000) as usize
    }
}

fn record() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = SimulatedClock::new(Time90k(T0));
    Store::init(dir.path(), &clock).expect("init");
    let store = Store::open(dir.path(), Arc::new(clock.clone())).expect("open");
    let url = CameraUrl::parse("rtsp://127.0.0.1:8554/cam1").expect("url");
    let camera = store
        .add_camera(&CameraEdit::new("cam1", &url), |_| {
            nvr_storage::AuditNote::new(0, "bench", "camera_add", "camera", serde_json::json!({}))
        })
        .expect("camera");
    let params = Arc::new(VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.640028".into(),
        width: 1920,
        height: 1080,
        sample_entry: Bytes::from(fake_avc1(1920, 1080)),
    });
    // Frame bytes are slices of one random-looking buffer (content does not matter here).
    let pool: Bytes = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut w = CameraWriter::new(
        store.clone(),
        camera.main(),
        WriterConfig {
            segment_duration: Duration90k::from_secs(60),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .expect("writer");
    let t = std::time::Instant::now();
    let frames = MINUTES * 60 * 30;
    for n in 0..frames {
        let size = frame_size(n);
        let at = (n as usize * 131) % (pool.len() - size);
        w.write(
            &params,
            &VideoFrame {
                media_time_90k: n * FRAME_90K,
                received: Time90k(T0 + n * FRAME_90K),
                is_key: n % GOP == 0,
                data: pool.slice(at..at + size),
            },
        )
        .expect("write");
        clock.advance(Duration90k(FRAME_90K));
    }
    w.end_run().expect("end run");
    eprintln!(
        "recorded {MINUTES} minutes ({frames} frames) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Fixture { dir, store, camera }
}

fn playback(c: &mut Criterion) {
    let f = record();
    let start = Time90k(T0 + 30 * 90_000 + 1234);
    let end = Time90k(start.0 + 3600 * 90_000);
    let mut g = c.benchmark_group("view_1h");
    g.bench_function("first_byte", |b| {
        b.iter(|| {
            let v = view(&f.store, f.camera.main(), start, end).expect("view");
            let first = v
                .mp4
                .pieces(0..v.mp4.len(), v.reader.clone())
                .next()
                .expect("piece")
                .expect("read");
            black_box(first.len())
        })
    });
    g.bench_function("seek_first_byte", |b| {
        b.iter(|| {
            let v = view(&f.store, f.camera.main(), start, end).expect("view");
            let mdat = v.mp4.mdat_payload_range();
            let mid = mdat.start + (mdat.end - mdat.start) / 2;
            let first = v
                .mp4
                .pieces(mid..v.mp4.len(), v.reader.clone())
                .next()
                .expect("piece")
                .expect("read");
            black_box(first.len())
        })
    });
    g.finish();

    // Ten whole segments: from the start of the 11th to the start of the 21st.
    let rows = f.store.db_for_tests().all_segments().expect("segments");
    let (s, e) = (&rows[10], &rows[20]);
    let files: Vec<PathBuf> = rows[10..20]
        .iter()
        .map(|r| f.store.segment_path(f.camera, r.id))
        .collect();
    let bytes: u64 = rows[10..20].iter().map(|r| r.file_bytes as u64).sum();
    let req = ExportRequest {
        cameras: vec![f.camera],
        start: Time90k(s.start_90k),
        end: Time90k(e.start_90k),
        case_ref: "bench".into(),
        reason: "benchmark".into(),
        operator: "bench".into(),
        export_id: None,
        working_copy: None,
    };
    let out = f.dir.path().join("export.zip");
    let cat_out = f.dir.path().join("cat.out");
    let mut g = c.benchmark_group("export_10min");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("cat_segment_files", |b| {
        b.iter(|| {
            let status = Command::new("sh")
                .arg("-c")
                .arg(r#"out="$1"; shift; cat "$@" > "$out""#)
                .arg("sh")
                .arg(&cat_out)
                .args(&files)
                .status()
                .expect("cat");
            assert!(status.success());
        })
    });
    g.bench_function("write_bundle", |b| {
        b.iter(|| {
            let file = std::fs::File::create(&out).expect("create");
            let summary = write_bundle(&f.store, &req, file, &mut |_, _| {}).expect("export");
            black_box(summary.bytes)
        })
    });
    g.finish();
}

criterion_group!(benches, playback);
criterion_main!(benches);
