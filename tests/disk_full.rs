//! A full disk end to end: the data directory on a small tmpfs (mounted by the test, as root,
//! and unmounted after). Recording fills it, retention frees space and recording goes on; with
//! everything held, cameras stall by disk, the UI keeps serving and no committed footage is
//! lost; once the holds are released, recording resumes on its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A tmpfs mounted for the test's lifetime (unmounted on drop, even when the test fails).
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> TmpfsMount {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and must run as root (CI and `make test` do): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TmpfsMount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn available_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

fn statuses(c: &Client) -> Vec<Value> {
    c.cameras().as_array().expect("camera list").clone()
}

fn frames_written(c: &Client) -> u64 {
    statuses(c)
        .iter()
        .filter_map(|c| c["status_detail"]["frames_written"].as_u64())
        .sum()
}

/// Frames of every run the index holds that is not being recorded, per camera.
fn sealed_frames(c: &Client, cameras: usize) -> Vec<u64> {
    (1..=cameras as i64)
        .map(|id| {
            c.runs(id)
                .iter()
                .filter(|r| r["recording"] != true)
                .filter_map(|r| r["frames"].as_u64())
                .sum()
        })
        .collect()
}

fn disk_free_deletions(c: &Client) -> usize {
    let r = c.get("/api/audit?action=retention_delete&limit=5000", &[]);
    assert_eq!(r.status, 200);
    r.json()
        .as_array()
        .expect("audit list")
        .iter()
        .filter(|e| e["detail"]["reason"] == "disk_free")
        .count()
}

/// Two test cameras at 8 Mbit/s (a tmpfs fills in seconds) added to a recorder whose data
/// directory is `data`.
fn two_cameras(data: &Path) -> (TestCam, Recorder) {
    let rec = Recorder::new_in(data.to_path_buf());
    let cam = TestCam::start(
        &[
            "--mounts",
            "2",
            "--width",
            "1280",
            "--height",
            "720",
            "--bitrate-kbps",
            "8000",
        ],
        &rec.tmp.path().join("cam.log"),
    );
    for (i, url) in cam.urls.iter().enumerate() {
        assert_eq!(
            rec.add_camera(&format!("cam{}", i + 1), url, None, true).0,
            0
        );
    }
    (cam, rec)
}

/// Waits until every camera's status is `status`.
fn wait_all(c: &Client, status: &str, timeout: Duration) {
    wait_for(timeout, &format!("every camera {status}"), || {
        statuses(c)
            .iter()
            .all(|s| s["status"] == status)
            .then_some(())
    });
}

/// Waits until the cameras have written 60 more frames than now.
fn wait_recording_goes_on(c: &Client) {
    let written = frames_written(c);
    wait_for(Duration::from_secs(30), "frames written", || {
        (frames_written(c) > written + 60).then_some(())
    });
}

#[test]
fn a_full_disk_frees_space_then_stalls_keeps_footage_and_resumes() {
    const MIN_FREE_BYTES: u64 = 16 << 20;
    let mount = TmpfsMount::new("48M");
    let data: PathBuf = mount.path().join("data");
    let (_cam, mut rec) = two_cameras(&data);
    // Phase B holds everything on purpose: lift the per-user bound on held footage (25% of
    // the disk by default), which would otherwise refuse those holds.
    let config = rec.tmp.path().join("nvr.toml");
    std::fs::write(&config, "[evidence]\nmax_held_percent_per_user = 0\n").expect("config");
    rec.serve(&[
        "--config",
        config.to_str().expect("utf8"),
        "--segment-duration-secs",
        "2",
        "--retention-interval-secs",
        "1",
        "--min-free-bytes",
        &MIN_FREE_BYTES.to_string(),
    ]);
    let c = rec.client();
    let started = Instant::now();

    // Phase A: the disk fills; retention deletes the oldest footage and recording goes on.
    let mut lowest_free = u64::MAX;
    wait_for(
        Duration::from_secs(240),
        "retention to free space 3 times",
        || {
            lowest_free = lowest_free.min(available_bytes(&data));
            for s in statuses(&c) {
                assert_ne!(
                    s["status"], "stalled_disk",
                    "stalled with deletable footage"
                );
            }
            (disk_free_deletions(&c) >= 3).then_some(())
        },
    );
    wait_recording_goes_on(&c);
    let phase_a = started.elapsed();
    println!(
        "disk full, phase A: {:.0} s to fill 48 MiB and free space 3 times; lowest free {:.1} MiB",
        phase_a.as_secs_f64(),
        lowest_free as f64 / 1_048_576.0
    );

    // Phase B: everything held. Retention cannot free space: the cameras stall by disk.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut holds = Vec::new();
    for id in 1..=2 {
        let r = c.post(
            "/api/holds",
            json!({"camera": id, "start": rfc3339(now - 3600), "end": rfc3339(now + 3600),
                   "case": "DISK-1", "reason": "disk full test"}),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        holds.push(r.json()["id"].as_i64().expect("hold id"));
    }
    wait_all(&c, "stalled_disk", Duration::from_secs(120));
    let stalled_at = Instant::now();
    let kept = sealed_frames(&c, 2);
    let dropped_before: u64 = statuses(&c)
        .iter()
        .filter_map(|s| s["status_detail"]["frames_dropped_disk"].as_u64())
        .sum();
    std::thread::sleep(Duration::from_secs(5));
    // The UI keeps serving, and says why nothing is recorded.
    assert_eq!(c.get("/", &[]).status, 200);
    assert_eq!(c.get("/api/status", &[]).status, 200);
    let metrics = c.get("/metrics", &[]);
    let metrics =
        String::from_utf8_lossy(metrics.body.as_ref().expect("metrics body")).into_owned();
    assert!(
        metrics.contains("nvr_camera_disk_stalled{camera=\"1\",name=\"cam1\"} 1"),
        "{metrics}"
    );
    let dropped: u64 = statuses(&c)
        .iter()
        .filter_map(|s| s["status_detail"]["frames_dropped_disk"].as_u64())
        .sum();
    assert!(dropped > dropped_before, "frames are dropped while stalled");
    assert_eq!(
        sealed_frames(&c, 2),
        kept,
        "footage recorded before the stall is all still there"
    );
    let free_stalled = available_bytes(&data);
    assert!(free_stalled > 0, "the stall keeps a margin on the disk");
    println!(
        "disk full, phase B: stalled with {:.1} MiB free, {} frames dropped in {:.0} s, {} sealed frames kept",
        free_stalled as f64 / 1_048_576.0,
        dropped,
        stalled_at.elapsed().as_secs_f64(),
        kept.iter().sum::<u64>()
    );

    // Phase C: the holds are released; retention frees space and recording resumes by itself.
    for id in &holds {
        let r = c.post(&format!("/api/holds/{id}/release"), json!({}));
        assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    }
    let released = Instant::now();
    wait_all(&c, "recording", Duration::from_secs(60));
    wait_recording_goes_on(&c);
    println!(
        "disk full, phase C: recording again {:.1} s after the holds were released",
        released.elapsed().as_secs_f64()
    );
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "nvr check after the full disk:\n{out}");
}

/// Without a free-space target the disk really fills: writes fail with ENOSPC. The cameras
/// stall by disk, the UI keeps serving, `nvr check` stays clean, and once someone frees space
/// (here: deletes a file that shares the disk) recording resumes by itself.
#[test]
fn writes_that_hit_enospc_stall_and_resume_when_space_is_freed() {
    let mount = TmpfsMount::new("40M");
    let filler = mount.path().join("other-files");
    std::fs::write(&filler, vec![1u8; 12 << 20]).expect("filler");
    let data: PathBuf = mount.path().join("data");
    let (_cam, mut rec) = two_cameras(&data);
    rec.serve(&["--segment-duration-secs", "2", "--min-free-bytes", "0"]);
    let c = rec.client();
    let started = Instant::now();
    wait_all(&c, "stalled_disk", Duration::from_secs(240));
    let free = available_bytes(&data);
    println!(
        "ENOSPC: full after {:.0} s ({} bytes free)",
        started.elapsed().as_secs_f64(),
        free
    );
    assert_eq!(c.get("/", &[]).status, 200);
    assert_eq!(c.get("/api/status", &[]).status, 200);
    let kept = sealed_frames(&c, 2);
    assert!(
        kept.iter().all(|&f| f > 0),
        "footage was recorded: {kept:?}"
    );

    std::fs::remove_file(&filler).expect("free space");
    let freed = Instant::now();
    wait_all(&c, "recording", Duration::from_secs(60));
    wait_recording_goes_on(&c);
    println!(
        "ENOSPC: recording again {:.1} s after 12 MiB were freed",
        freed.elapsed().as_secs_f64()
    );
    let after = sealed_frames(&c, 2);
    for (k, (a, b)) in kept.iter().zip(&after).enumerate() {
        assert!(
            b >= a,
            "camera {}: sealed footage shrank from {a} to {b} frames",
            k + 1
        );
    }
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "nvr check after ENOSPC:\n{out}");
}
