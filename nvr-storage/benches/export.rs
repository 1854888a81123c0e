//! The evidence export as an operator waits for it: one hour of four 1080p cameras at 30 fps
//! and ~4 Mbit/s (62 minutes recorded per camera through `CameraWriter`: encrypted one-minute
//! segments, SQLite index; ~7.6 GB of segment files), exported with
//! `export::write_verified_bundle`: the bundle written (decrypted, hashed, zipped with the
//! time tracks and the player), fsynced, then checked the way `nvr verify` checks it (every
//! file's SHA-256, every segment rebuilt from the MP4 and compared with its ingest-time hash,
//! the chain and signatures) and hashed once more for the export's record, before it gets its
//! name. The target: under 60 s on the 2-core machine.
//!
//! - `export_1h_4cameras/write_verified_bundle`: that, from the page cache (warm, as right
//!   after recording; the bundle is ~7.5 GB, so ~15 GB of page cache).
//!
//! The recordings (~7.6 GB) go to the temporary directory (`TMPDIR`; `/dev/shm` keeps them in
//! memory, which is what a warm page cache gives anyway), the bundle (~7.5 GB, written and
//! fsynced for real) to `NVR_BENCH_EXPORT_DIR` (default: beside the recordings). Recording the
//! fixture takes a few minutes before the measurement starts.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nvr_core::{
    CameraId, CameraUrl, Duration90k, SimulatedClock, Time90k, VideoCodec, VideoFrame, VideoParams,
};
use nvr_storage::export::{ExportRequest, write_verified_bundle};
use nvr_storage::mp4::test_support::fake_avc1;
use nvr_storage::store::{CameraEdit, Store};
use nvr_storage::writer::{CameraWriter, WriterConfig};

/// 30 fps.
const FRAME_90K: i64 = 3000;
/// Key frame every 2 s.
const GOP: i64 = 60;
const MINUTES: i64 = 62;
const CAMERAS: usize = 4;
/// 2026-11-29T12:00:00Z in 90 kHz units.
const T0: i64 = 1_795_953_600 * 90_000;

/// ~4 Mbit/s at 30 fps: 90 kB key frames, ~15.4 kB others (average ~16.6 kB).
fn frame_size(n: i64) -> usize {
    if n % GOP == 0 {
        90_000
    } else {
        14_000 + (n * 7919 % 3000) as usize
    }
}

fn record() -> (tempfile::TempDir, Arc<Store>, Vec<CameraId>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = SimulatedClock::new(Time90k(T0));
    Store::init(dir.path(), &clock).expect("init");
    let store = Store::open(dir.path(), Arc::new(clock.clone())).expect("open");
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
    let t = std::time::Instant::now();
    let mut cameras = Vec::new();
    let mut writers = Vec::new();
    for i in 1..=CAMERAS {
        let url = CameraUrl::parse(&format!("rtsp://127.0.0.1:8554/cam{i}")).expect("url");
        let name = format!("cam{i}");
        let camera = store
            .add_camera(&CameraEdit::new(&name, &url), |_| {
                nvr_storage::AuditNote::new(
                    0,
                    "bench",
                    "camera_add",
                    "camera",
                    serde_json::json!({}),
                )
            })
            .expect("camera");
        cameras.push(camera);
        writers.push(
            CameraWriter::new(
                store.clone(),
                camera.main(),
                WriterConfig {
                    segment_duration: Duration90k::from_secs(60),
                    fsync_interval: Duration90k::from_secs(5),
                },
            )
            .expect("writer"),
        );
    }
    // The cameras record side by side, frame by frame, as the recorder's threads would.
    let frames = MINUTES * 60 * 30;
    for n in 0..frames {
        let size = frame_size(n);
        for (i, w) in writers.iter_mut().enumerate() {
            let at = (n as usize * 131 + i * 977) % (pool.len() - size);
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
        }
        clock.advance(Duration90k(FRAME_90K));
    }
    for w in &mut writers {
        w.end_run().expect("end run");
    }
    eprintln!(
        "recorded {CAMERAS} cameras x {MINUTES} minutes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    (dir, store, cameras)
}

fn export(c: &mut Criterion) {
    let (dir, store, cameras) = record();
    let start = Time90k(T0 + 30 * 90_000 + 1234);
    let req = ExportRequest {
        cameras,
        start,
        end: Time90k(start.0 + 3600 * 90_000),
        case_ref: "bench".into(),
        reason: "benchmark".into(),
        operator: "bench".into(),
        export_id: None,
        working_copy: None,
    };
    let out_dir = std::env::var_os("NVR_BENCH_EXPORT_DIR")
        .map(|d| tempfile::tempdir_in(d).expect("NVR_BENCH_EXPORT_DIR"));
    let out = out_dir
        .as_ref()
        .map_or(dir.path(), |d| d.path())
        .join("export.zip");
    let mut g = c.benchmark_group("export_1h_4cameras");
    // Bytes of the bundle written (about the footage's size).
    let t = std::time::Instant::now();
    let probe = write_verified_bundle(&store, &req, &out, &mut |_, _| {}).expect("export");
    eprintln!(
        "first export: {} bytes in {:.1} s",
        probe.bytes,
        t.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&out).expect("remove");
    g.throughput(Throughput::Bytes(probe.bytes));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(300));
    g.bench_function("write_verified_bundle", |b| {
        b.iter(|| {
            let w = write_verified_bundle(&store, &req, &out, &mut |_, _| {}).expect("export");
            std::fs::remove_file(&out).expect("remove");
            black_box(w.bytes)
        })
    });
    g.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);
