//! Measures the live-view transcoder: push-to-pull latency per frame and CPU cost of
//! transcoding a 1280x720 15 fps H.265 stream to 640x360 H.264 in real time (and, for
//! reference, the time of a thumbnail and a full-size snapshot of the same stream).
//!
//! `cargo run -p nvr-media --release --example transcode_latency [seconds] [pattern]`
//! (default 20 s of `videotestsrc pattern=smpte horizontal-speed=4`, a scrolling colour-bar
//! picture; `snow`, white noise, is the worst case).
//! Results are logged with `tracing` at info level.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nvr_core::VideoCodec;
use nvr_core::frame::is_random_access;
use nvr_media::{TranscodeOptions, Transcoder};

/// Input size and rate being measured.
const WIDTH: u16 = 1280;
const HEIGHT: u16 = 720;
/// Frames of input encoded up front and looped: 10 s, whole GOPs of 1 s.
const CLIP_FRAMES: u32 = 150;
/// Linux's USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on every mainstream
/// architecture).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time of this process so far, from /proc/self/stat fields 14 and 15.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name (field 2) may contain spaces; fields after it are space-separated.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // `after` starts at field 3, so fields 14/15 are at indices 11/12.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    Duration::from_secs_f64(ticks / CLOCK_TICKS_PER_SEC)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let seconds: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(20);
    let pattern = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "smpte horizontal-speed=4".into());
    let started = Instant::now();
    let clip = common::encode_pattern(
        VideoCodec::H265,
        WIDTH,
        HEIGHT,
        CLIP_FRAMES,
        common::KEYINT,
        &pattern,
    );
    tracing::info!(
        frames = clip.frames.len(),
        pattern,
        kbit_per_s = clip.frames.iter().map(|f| f.len()).sum::<usize>() as f64 * 8.0
            / (f64::from(CLIP_FRAMES) / f64::from(common::FPS))
            / 1000.0,
        secs = started.elapsed().as_secs_f64(),
        "input clip encoded"
    );

    // Snapshot costs on the same input, for reference.
    for (what, frames, max_width) in [
        ("thumbnail of a key frame", 1, Some(160)),
        (
            "full-size snapshot after a whole GOP",
            common::KEYINT as usize,
            None,
        ),
    ] {
        let at = Instant::now();
        let jpeg =
            nvr_media::snapshot_jpeg(&clip.params, &clip.frames[..frames], max_width, 80).unwrap();
        tracing::info!(
            what,
            ms = format!("{:.0}", at.elapsed().as_secs_f64() * 1000.0),
            bytes = jpeg.len(),
            "snapshot"
        );
    }

    let options = TranscodeOptions {
        max_width: 640,
        max_height: 360,
        bitrate_kbps: 800,
    };
    let t = Arc::new(Transcoder::new(&clip.params, &options).unwrap());
    let pushed_at: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let total = (seconds * common::FPS) as usize;

    let puller = {
        let t = Arc::clone(&t);
        let pushed_at = Arc::clone(&pushed_at);
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut keys = 0;
            let mut bytes = 0;
            let mut first_key_nals = None;
            while !t.is_drained() {
                let Some(f) = t.pull(Duration::from_millis(200)).unwrap() else {
                    continue;
                };
                let now = Instant::now();
                if let Some(at) = pushed_at.lock().unwrap().remove(&f.pts_90k) {
                    latencies.push(now.duration_since(at).as_secs_f64() * 1000.0);
                }
                if f.is_key {
                    keys += 1;
                    assert!(is_random_access(VideoCodec::H264, &f.data));
                    if first_key_nals.is_none() {
                        first_key_nals = Some(nal_types(&f.data));
                    }
                }
                bytes += f.data.len();
            }
            (latencies, keys, bytes, first_key_nals)
        })
    };

    let cpu_before = cpu_time();
    let wall_before = Instant::now();
    let frame_interval = Duration::from_secs(1) / common::FPS;
    for i in 0..total {
        let due = wall_before + frame_interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let j = i % clip.frames.len();
        let pts = common::pts(0, i);
        pushed_at.lock().unwrap().insert(pts, Instant::now());
        if let Err(e) = t.push(clip.frames[j].clone(), pts, clip.keys[j]) {
            tracing::warn!(i, error = %e, "push failed");
        }
    }
    t.finish().unwrap();
    let (mut latencies, keys, bytes, first_key_nals) = puller.join().unwrap();
    let wall = wall_before.elapsed();
    let cpu = cpu_time() - cpu_before;

    latencies.sort_by(f64::total_cmp);
    let params = t.output_params().unwrap();
    tracing::info!(
        codec = %params.rfc6381_codec,
        width = params.width,
        height = params.height,
        first_key_nal_types = ?first_key_nals,
        "output"
    );
    tracing::info!(
        pushed = total,
        out = latencies.len(),
        dropped = t.dropped_frames(),
        key_frames = keys,
        kbit_per_s = (bytes * 8) as f64 / wall.as_secs_f64() / 1000.0,
        "frames"
    );
    tracing::info!(
        min_ms = format!("{:.1}", latencies[0]),
        p50_ms = format!("{:.1}", percentile(&latencies, 0.5)),
        p95_ms = format!("{:.1}", percentile(&latencies, 0.95)),
        p99_ms = format!("{:.1}", percentile(&latencies, 0.99)),
        max_ms = format!("{:.1}", latencies[latencies.len() - 1]),
        "push-to-pull latency"
    );
    tracing::info!(
        cpu_s = format!("{:.2}", cpu.as_secs_f64()),
        wall_s = format!("{:.2}", wall.as_secs_f64()),
        percent_of_one_core = format!("{:.0}", cpu.as_secs_f64() / wall.as_secs_f64() * 100.0),
        ms_cpu_per_frame = format!("{:.1}", cpu.as_secs_f64() * 1000.0 / total as f64),
        "CPU"
    );
}

/// NAL unit types of an H.264 access unit in MP4 framing.
fn nal_types(mut data: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 || len > rest.len() {
            break;
        }
        types.push(rest[0] & 0x1f);
        data = &rest[len..];
    }
    types
}
