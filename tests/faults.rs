//! Surviving faults end to end: kill -9 loops, a flapping camera, and corrupt files at start.
//! Each has a short variant that always runs; `NVR_LONG_TESTS=1` (`make test-long`) runs the
//! long one. Worst cases are printed (`cargo test -- --nocapture` shows them).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

fn long() -> bool {
    std::env::var("NVR_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// A small pseudo-random generator (xorshift), seeded from the clock: the test prints its seed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        println!("random seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn kill_9_loop_keeps_the_index_clean_and_loses_at_most_one_chunk() {
    let iterations = if long() { 50 } else { 5 };
    let tmp = tempfile::tempdir().expect("tempdir");
    let cam = TestCam::start(
        &[
            "--mounts", "4", "--width", "640", "--height", "360", "--fps", "15",
        ],
        &tmp.path().join("cam.log"),
    );
    let mut rec = Recorder::new();
    for (i, url) in cam.urls.iter().enumerate() {
        assert_eq!(
            rec.add_camera(&format!("cam{}", i + 1), url, None, false).0,
            0
        );
    }
    let mut rng = Rng::new();
    // Per camera: frames the killed lives of the server had written, and frames lost so far.
    let mut written_by_dead = [0u64; 4];
    let mut lost_so_far = [0i64; 4];
    let mut worst_lost = 0i64;
    rec.serve(&["--segment-duration-secs", "5"]);
    for i in 0..iterations {
        let c = rec.client();
        wait_for(Duration::from_secs(60), "4 cameras recording", || {
            let cams = c.cameras();
            (cams.as_array()?.iter().all(|c| c["status"] == "recording")).then_some(())
        });
        std::thread::sleep(Duration::from_millis(2000 + rng.below(6000)));
        let cams = c.cameras();
        for (k, dead) in written_by_dead.iter_mut().enumerate() {
            *dead += cams[k]["status_detail"]["frames_written"]
                .as_u64()
                .unwrap_or(0);
        }
        rec.kill9();
        rec.restart();
        let (code, out) = rec.check();
        assert_eq!(
            code, 0,
            "iteration {i}: check after kill -9 and restart:\n{out}"
        );
        let c = rec.client();
        for k in 0..4 {
            // What the index holds of the dead lives: every run but the one being recorded.
            let indexed: u64 = c
                .runs(k as i64 + 1)
                .iter()
                .filter(|r| r["recording"] != true)
                .filter_map(|r| r["frames"].as_u64())
                .sum();
            let lost = written_by_dead[k] as i64 - indexed as i64 - lost_so_far[k];
            lost_so_far[k] += lost;
            worst_lost = worst_lost.max(lost);
            // A 64 KiB chunk of this ~1 Mbit/s, 15 fps stream holds about 8 frames; one more second
            // covers the frames between the status read and the kill and those still queued.
            assert!(
                lost <= 8 + 15,
                "iteration {i}, camera {}: {lost} frames lost",
                k + 1
            );
        }
    }
    println!(
        "kill -9 loop: {iterations} iterations, worst loss {worst_lost} frames ({:.2} s at 15 fps)",
        worst_lost as f64 / 15.0
    );
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_flapping_camera_leaks_nothing_and_every_session_is_a_run() {
    let restarts = if long() { 200 } else { 20 };
    let tmp = tempfile::tempdir().expect("tempdir");
    let args = [
        "--width",
        "320",
        "--height",
        "240",
        "--fps",
        "15",
        "--keyint-frames",
        "15",
    ];
    let mut cam = TestCam::start(&args, &tmp.path().join("cam0.log"));
    let listen = format!("127.0.0.1:{}", cam.port);
    let mut rec = Recorder::new();
    assert_eq!(rec.add_camera("cam", &cam.urls[0], None, false).0, 0);
    rec.serve(&["--segment-duration-secs", "5"]);
    let pid = rec.server.as_ref().expect("server").child.id();
    let c = rec.client();
    let connects = |c: &Client| {
        c.cameras()[0]["status_detail"]["connects"]
            .as_u64()
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(30), "the first session", || {
        (connects(&c) >= 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let (fds_before, rss_before) = (fd_count(pid), proc_status(pid, "VmRSS:"));
    let mut rng = Rng::new();
    for i in 0..restarts {
        cam.proc.kill9();
        std::thread::sleep(Duration::from_millis(300 + rng.below(1500)));
        cam = TestCam::start_on(
            &listen,
            &args,
            &tmp.path().join(format!("cam{}.log", i + 1)),
        );
        // Up long enough for the recorder to come back (backoff) and record a key frame.
        let target = i + 2;
        wait_for(
            Duration::from_secs(60),
            "the camera to be reconnected",
            || (connects(&c) >= target).then_some(()),
        );
        std::thread::sleep(Duration::from_millis(1500 + rng.below(2500)));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (fds_after, rss_after) = (fd_count(pid), proc_status(pid, "VmRSS:"));
    println!(
        "flapping camera: {restarts} restarts; fds {fds_before} -> {fds_after}; RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(
        fds_after <= fds_before + 4,
        "file descriptors grew from {fds_before} to {fds_after}"
    );
    assert!(
        rss_after <= rss_before + 16 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    let status = c.cameras()[0]["status_detail"].clone();
    let n = status["connects"].as_u64().expect("connects");
    assert_eq!(n, restarts + 1, "{status}");
    // Every session is its own run in the index, and every reconnect is in the log.
    let runs = c.runs(1);
    assert_eq!(runs.len() as u64, n, "{} runs for {n} sessions", runs.len());
    let log = std::fs::read_to_string(
        std::fs::read_dir(rec.tmp.path())
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("serve-"))
            })
            .expect("the server log"),
    )
    .expect("log");
    let logged = log
        .lines()
        .filter(|l| l.contains("connected") && l.contains("encoding"))
        .count() as u64;
    assert_eq!(logged, n, "every reconnect is logged");
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn corrupt_files_at_start_are_reported_and_recording_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cam = TestCam::start(
        &["--width", "320", "--height", "240", "--mounts", "2"],
        &tmp.path().join("cam.log"),
    );
    // Another recorder's footage, to plant in this one.
    let mut other = Recorder::new();
    assert_eq!(other.add_camera("cam", &cam.urls[1], None, false).0, 0);
    other.serve(&["--segment-duration-secs", "2"]);
    let oc = other.client();
    wait_for(
        Duration::from_secs(60),
        "the other recorder's segments",
        || (oc.runs(1).first()?["segments"].as_u64()? >= 3).then_some(()),
    );
    other.stop();

    let mut rec = Recorder::new();
    assert_eq!(rec.add_camera("cam", &cam.urls[0], None, false).0, 0);
    rec.serve(&["--segment-duration-secs", "2"]);
    let c = rec.client();
    wait_for(Duration::from_secs(60), "6 segments", || {
        (c.runs(1).first()?["segments"].as_u64()? >= 6).then_some(())
    });
    // Kill it so the WAL is left behind, then damage the data directory.
    rec.kill9();
    let segs = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = files_under(&dir.join("segments/1"));
        v.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<i64>().ok())
        });
        v
    };
    let ours = segs(&rec.dir);
    let theirs = segs(&other.dir);
    let missing = &ours[1];
    let replaced = &ours[2];
    std::fs::remove_file(missing).expect("remove");
    std::fs::copy(&theirs[1], replaced).expect("plant a foreign segment");
    let wal = rec.dir.join("index.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    if wal_len > 5000 {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&wal)
            .expect("wal");
        f.set_len(wal_len - 3000).expect("truncate the WAL");
    }

    // The recorder starts, and records on.
    rec.restart();
    let c = rec.client();
    wait_for(
        Duration::from_secs(60),
        "recording after the damage",
        || {
            c.runs(1)
                .iter()
                .any(|r| r["recording"] == true && r["frames"].as_u64() > Some(10))
                .then_some(())
        },
    );
    // check names exactly what is wrong.
    let (code, out) = rec.check();
    assert_eq!(code, 1, "{out}");
    let id = |p: &std::path::Path| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        out.contains(&format!("segment {}: file", id(missing))) && out.contains("is missing"),
        "{out}"
    );
    assert!(out.contains(&format!("segment {}:", id(replaced))), "{out}");
    println!("check after damage:\n{out}");
}
