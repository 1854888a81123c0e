//! What a hostile camera may cost in memory, end to end: a camera sending valid H.264 in ~8 MiB
//! access units as fast as the socket takes them (`Mode::HugeFrames`) is recorded by
//! `nvr serve` while a live viewer opens its WebSocket and then never reads. The recorder must
//! record the camera (backpressure, not buffering, when the disk or the viewer is slower than
//! the camera) and its resident memory must stay within [`RSS_BOUND_KIB`] of what it was
//! before; ARCHITECTURE.md ("Memory bounds") adds up what it may hold. The test records what
//! the camera sends (~7 GB at this machine's rate) into a temporary data directory that
//! retention keeps to about 2 GB, removed at the end.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::hostile::{HUGE_ACCESS_UNIT_BYTES, HostileCamera, Mode};
use common::*;
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;

/// How long the camera floods at least: at the ~280 MB/s this machine records such a camera,
/// the 3 GiB the recorder's queues could hold before their byte bounds filled in ~12 s.
const HOSTILE_SECS: u64 = 25;

/// Frames the camera must have delivered before we stop (polled with a generous deadline): 64
/// frames of ~8 MiB are 500 MiB through the recorder, several times the bound, so a recorder
/// that kept what it received could not pass.
const MIN_FRAMES: u64 = 64;

/// How much the recorder's resident memory, and its peak, may exceed what it was before the
/// camera was added. What one camera of 8 MiB frames may hold (ARCHITECTURE.md, "Memory
/// bounds") is ~70 MiB: retina's read buffer (8 MiB, 12 MiB while it doubles), the frame the
/// network task holds (8 MiB), the writer queue (32 MiB), the live ring (16 MiB), the GOP cache
/// (2 MiB); the stalled viewer's task adds the frame it is sending, its fMP4 fragment and the
/// WebSocket's write buffer (~24 MiB). Twice those ~96 MiB, because malloc keeps freed 8 MiB
/// blocks in its per-thread arenas for reuse (measured: +118 to +129 MiB, flat over 60 s).
/// Before the bounds: +3.1 GiB within 25 s (1 GiB in the live ring for the stalled viewer,
/// 2 GiB in the writer queue).
const RSS_BOUND_KIB: u64 = 192 * 1024;

/// Frames received but not yet written, skipped or dropped may be at most this many: the
/// writer queue's 32 MiB hold 4 frames of ~8 MiB (the writer's frame in hand among them), and
/// the network task holds one more waiting for room; one more for the two counters being
/// updated apart. (256, the queue's frame bound, before it had a byte bound.)
const MAX_IN_FLIGHT_FRAMES: u64 = 6;

// The numbers above are for frames of ~8 MiB.
const _: () = assert!(HUGE_ACCESS_UNIT_BYTES > 7 << 20);

fn camera(c: &Client, id: i64) -> Value {
    c.cameras()
        .as_array()
        .and_then(|a| a.iter().find(|cam| cam["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

fn detail_u64(cam: &Value, field: &str) -> u64 {
    cam["status_detail"][field].as_u64().unwrap_or(0)
}

/// Frames the camera's status counts as received but not yet accounted for by the writer.
fn in_flight(cam: &Value) -> u64 {
    let done = detail_u64(cam, "frames_written")
        + detail_u64(cam, "frames_skipped")
        + detail_u64(cam, "frames_dropped_disk");
    detail_u64(cam, "frames_received").saturating_sub(done)
}

#[test]
fn huge_frames_and_a_stalled_viewer_cost_a_bounded_amount_of_memory() {
    let mut rec = Recorder::new();
    // Short segments and a 1 GB quota applied every second keep the disk this test fills to
    // about 2 GB (the camera sends ~280 MB/s).
    rec.serve(&[
        "--segment-duration-secs",
        "2",
        "--retain-max-bytes",
        "1000000000",
        "--retention-interval-secs",
        "1",
    ]);
    let c = rec.client();
    let pid = rec.server.as_ref().expect("server").child.id();
    let hostile = HostileCamera::start(Mode::HugeFrames);
    // Let the fresh server's memory settle (no assertion depends on how long this is).
    std::thread::sleep(Duration::from_secs(2));
    let rss_before_kib = proc_status_kib(pid, "VmRSS");
    reset_peak(pid);

    let r = c.post(
        "/api/cameras",
        json!({"name": "huge", "url": hostile.url, "skip_probe": true}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body.map(String::from_utf8));
    let id = r.json()["id"].as_i64().expect("id");

    // A viewer that opens the live socket and never reads it: once the socket's buffers are
    // full, its task on the server waits on every send.
    let host = rec.base.trim_start_matches("http://").to_owned();
    let mut req = format!("ws://{host}/api/cameras/{id}/live?codecs=h264")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Cookie", c.cookie_header().parse().expect("cookie"));
    req.headers_mut()
        .insert("Origin", rec.base.parse().expect("origin"));
    let (stalled_viewer, _) = tungstenite::connect(req).expect("websocket");

    let started = Instant::now();
    let mut max_rss_kib = 0;
    let mut max_in_flight = 0;
    let cam = loop {
        max_rss_kib = max_rss_kib.max(proc_status_kib(pid, "VmRSS"));
        let cam = camera(&c, id);
        max_in_flight = max_in_flight.max(in_flight(&cam));
        let received = detail_u64(&cam, "frames_received");
        if started.elapsed() >= Duration::from_secs(HOSTILE_SECS) && received >= MIN_FRAMES {
            break cam;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {received} huge frames received in 300 s: {cam}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let peak_kib = proc_status_kib(pid, "VmHWM");
    let secs = started.elapsed().as_secs_f64();
    let received_mib = detail_u64(&cam, "video_bytes_received") as f64 / f64::from(1 << 20);
    let summary = format!(
        "{secs:.0} s: {} frames ({received_mib:.0} MiB) received, {} written; RSS {rss_before_kib} \
         KiB before, max {max_rss_kib} KiB (+{} KiB), peak {peak_kib} KiB (+{} KiB); at most \
         {max_in_flight} frames in flight; camera {}",
        detail_u64(&cam, "frames_received"),
        detail_u64(&cam, "frames_written"),
        max_rss_kib.saturating_sub(rss_before_kib),
        peak_kib.saturating_sub(rss_before_kib),
        cam["status_detail"]
    );
    eprintln!("{summary}");
    assert!(
        rec.server.as_mut().expect("server").is_running(),
        "the recorder died: {summary}"
    );
    // Recorded: the camera's frames reached the disk, and the writer was never further behind
    // than its queue's byte bound allows.
    assert!(
        detail_u64(&cam, "frames_written") >= MIN_FRAMES / 2,
        "{summary}"
    );
    assert!(max_in_flight <= MAX_IN_FLIGHT_FRAMES, "{summary}");
    assert!(
        max_rss_kib <= rss_before_kib + RSS_BOUND_KIB && peak_kib <= rss_before_kib + RSS_BOUND_KIB,
        "memory grew by more than {RSS_BOUND_KIB} KiB: {summary}"
    );
    drop(stalled_viewer);
    drop(hostile);
    rec.stop();
    let log = serve_logs(rec.tmp.path());
    assert!(!log.contains("panicked"), "the recorder panicked:\n{log}");
}
