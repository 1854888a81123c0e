//! Live fan-out cost per viewer: one camera frame (~17 kB, a 4 Mbit/s 30 fps camera) published
//! to a `LiveHub` with V viewers, each of which receives it from the hub's ring and builds the
//! `moof`+`mdat` fragment it would send on its WebSocket (what `nvr-web`'s live view does per
//! frame, minus the socket write).
//!
//! `fanout/publish/V` measures one frame for V = 0, 1, 4, 16, 64 viewers; the cost per viewer is
//! the slope between V values (printed at the end as ns per viewer-frame, and CPU share per
//! viewer at 30 fps).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nvr_core::{Time90k, VideoCodec, VideoFrame, VideoParams};
use nvr_ingest::live::LiveHub;
use nvr_ingest::source::SourceFrame;
use nvr_storage::mp4::fragment::{FragmentSample, FragmentWriter};

const FRAME_BYTES: usize = 17_000;
/// Key frame every 60 frames (2 s at 30 fps), as the load benchmark's camera.
const GOP: i64 = 60;

fn frame(n: i64, params: &Arc<VideoParams>, data: &Bytes) -> SourceFrame {
    SourceFrame {
        params: params.clone(),
        frame: VideoFrame {
            media_time_90k: n * 3000,
            received: Time90k(n * 3000),
            is_key: n % GOP == 0,
            data: data.clone(),
        },
    }
}

fn fanout(c: &mut Criterion) {
    let params = Arc::new(VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.640028".into(),
        width: 1920,
        height: 1080,
        sample_entry: Bytes::from_static(b"entry"),
    });
    let data = Bytes::from(vec![0x55u8; FRAME_BYTES]);
    let mut g = c.benchmark_group("fanout");
    let mut per_frame = Vec::new();
    for viewers in [0usize, 1, 4, 16, 64] {
        let hub = LiveHub::default();
        let mut rxs: Vec<_> = (0..viewers)
            .map(|_| (hub.subscribe().1, FragmentWriter::new()))
            .collect();
        let mut n = 0i64;
        let mut step = || {
            let f = frame(n, &params, &data);
            n += 1;
            hub.publish(&f);
            for (rx, w) in &mut rxs {
                let f = rx.try_recv().expect("frame");
                let frag = w
                    .fragment(
                        f.frame.media_time_90k as u64,
                        &[FragmentSample {
                            duration_90k: 3000,
                            is_key: f.frame.is_key,
                            data: f.frame.data.clone(),
                            composition_offset_90k: 0,
                        }],
                    )
                    .expect("fragment");
                black_box(frag.len());
            }
        };
        g.bench_with_input(BenchmarkId::new("publish", viewers), &viewers, |b, _| {
            b.iter(&mut step)
        });
        // A plain timing for the summary below (criterion keeps its estimates to itself).
        let iters = 20_000;
        let t = Instant::now();
        for _ in 0..iters {
            step();
        }
        per_frame.push((viewers, t.elapsed().as_nanos() as f64 / iters as f64));
    }
    g.finish();
    if let (Some(&(v0, t0)), Some(&(v1, t1))) = (per_frame.first(), per_frame.last()) {
        let per_viewer = (t1 - t0) / (v1 - v0) as f64;
        eprintln!(
            "fan-out: {t0:.0} ns per frame with no viewer, {per_viewer:.0} ns per viewer-frame \
             ({:.1} us of CPU per second per viewer at 30 fps)",
            per_viewer * 30.0 / 1e3
        );
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
