//! Requests never wait behind a segment's seal: with every seal holding the index's writer for
//! 200 ms longer (the `NVR_FAULT_SLOW_SEAL_MS` seam, as a spinning disk's fsync would) and eight
//! cameras sealing a segment every second, so the writer is busy all the time, the session
//! check, the camera list and a timeline query are answered from the read-only connections
//! without waiting for it. A request that queued behind a seal would take 200 ms or more; the
//! bound below (p99 under 150 ms) can only be met by not queueing (measured: a few ms).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// How long each seal is made to hold the writer.
const SLOW_SEAL_MS: u64 = 200;

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[test]
fn session_checks_camera_lists_and_timelines_do_not_wait_behind_slow_seals() {
    let mut rec = Recorder::new();
    let cam = TestCam::start(
        &[
            "--mounts", "8", "--width", "320", "--height", "240", "--fps", "10",
        ],
        &rec.tmp.path().join("cam.log"),
    );
    for (i, url) in cam.urls.iter().enumerate() {
        let (code, out) = rec.add_camera(&format!("cam{i}"), url, None, true);
        assert_eq!(code, 0, "{out}");
    }
    rec.serve_env = vec![(
        "NVR_FAULT_SLOW_SEAL_MS".to_owned(),
        SLOW_SEAL_MS.to_string(),
    )];
    rec.serve(&["--segment-duration-secs", "1"]);
    let c = rec.client();
    // Wait until the cameras seal segments (slowly): the writer is busy from now on.
    wait_for(
        Duration::from_secs(90),
        "sealed segments on every camera",
        || {
            (1..=8)
                .all(|id| {
                    c.runs(id)
                        .iter()
                        .map(|r| r["segments"].as_u64().unwrap_or(0))
                        .sum::<u64>()
                        >= 3
                })
                .then_some(())
        },
    );
    let (start, end) = recent_range();
    let timeline = format!("/api/cameras/1/recordings?start={start}&end={end}");
    let mut times: Vec<(&str, Vec<Duration>)> = vec![
        ("session check (GET /api/me)", Vec::new()),
        ("camera list", Vec::new()),
        ("timeline", Vec::new()),
    ];
    for _ in 0..150 {
        for (i, path) in ["/api/me", "/api/cameras", timeline.as_str()]
            .iter()
            .enumerate()
        {
            let t = Instant::now();
            let r = c.get(path, &[]);
            times[i].1.push(t.elapsed());
            assert_eq!(r.status, 200, "{path}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let report: Vec<String> = times
        .iter()
        .map(|(what, v)| format!("{what}: p99 {:?}, max {:?}", p99(v.clone()), v.iter().max()))
        .collect();
    eprintln!("with {SLOW_SEAL_MS} ms seals: {}", report.join("; "));
    // The seam was on: the server said so.
    assert!(
        serve_logs(rec.tmp.path()).contains("NVR_FAULT_SLOW_SEAL_MS is set"),
        "the slow-seal seam was not active"
    );
    for (what, v) in &times {
        assert!(
            p99(v.clone()) < Duration::from_millis(150),
            "{what} waited behind the seals: {}",
            report.join("; ")
        );
    }
}
