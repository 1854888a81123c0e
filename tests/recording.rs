//! End to end: the real `nvr` binary records a real RTSP test camera, and what it serves is
//! checked with ffprobe and by reading the data directory.

mod common;

use std::time::Duration;

use common::*;

/// A 640x360 test camera, added to a fresh recorder serving with `serve_args`.
fn small_camera_recorder(serve_args: &[&str]) -> (TestCam, Recorder, Client) {
    let (cam, mut rec) = recorder_with_camera(&["--width", "640", "--height", "360"]);
    rec.serve(serve_args);
    let c = rec.client();
    (cam, rec, c)
}

/// Waits until camera `id` has a run of at least `secs` seconds; returns it.
fn wait_run(c: &Client, id: i64, secs: f64) -> serde_json::Value {
    wait_for(
        Duration::from_secs(secs as u64 + 120),
        "a long enough run",
        || {
            c.runs(id).into_iter().find(|r| {
                secs_between(
                    r["start"].as_str().unwrap_or(""),
                    r["end"].as_str().unwrap_or(""),
                ) >= secs
            })
        },
    )
}

/// Downloads view.mp4 of `run` to a file and returns (path, bytes).
fn download_run(
    rec: &Recorder,
    c: &Client,
    id: i64,
    run: &serde_json::Value,
) -> (std::path::PathBuf, Vec<u8>) {
    let (s, e) = (
        run["start"].as_str().expect("start"),
        run["end"].as_str().expect("end"),
    );
    let r = c.get(
        &format!("/api/cameras/{id}/view.mp4?start={s}&end={e}"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    let body = r.body.expect("complete body");
    let path = rec.tmp.path().join(format!("view-{id}.mp4"));
    std::fs::write(&path, &body).expect("write mp4");
    (path, body)
}

fn record_and_check(codec: &str, extra: &[&str], ffprobe_codec: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        "--codec", codec, "--width", "1280", "--height", "720", "--fps", "15",
    ];
    args.extend_from_slice(extra);
    let cam = TestCam::start(&args, &tmp.path().join("cam.log"));
    let mut rec = Recorder::new();
    let (code, out) = rec.add_camera("cam", &cam.urls[0], None, false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1280x720"), "{out}");
    rec.serve(&[]);
    let c = rec.client();
    let run = wait_run(&c, 1, 20.0);
    let secs = secs_between(
        run["start"].as_str().expect("s"),
        run["end"].as_str().expect("e"),
    );
    let (path, body) = download_run(&rec, &c, 1, &run);
    let p = ffprobe(&path).expect("ffprobe reads view.mp4");
    assert_eq!(p.codec, ffprobe_codec);
    assert_eq!((p.width, p.height), (1280, 720));
    let expected = 15.0 * secs;
    assert!(
        (p.frames as f64 - expected).abs() <= 0.05 * expected,
        "{} frames decoded for {secs:.1} s at 15 fps",
        p.frames
    );
    assert_eq!(
        Some(p.frames),
        run["frames"].as_u64(),
        "the index and the MP4 agree"
    );

    // A Range request for the middle returns exactly those bytes of the full file.
    let (s, e) = (
        run["start"].as_str().expect("s"),
        run["end"].as_str().expect("e"),
    );
    let (a, b) = (body.len() / 2, body.len() / 2 + 300_000);
    let r = c.get(
        &format!("/api/cameras/1/view.mp4?start={s}&end={e}"),
        &[("Range", &format!("bytes={a}-{}", b - 1))],
    );
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {a}-{}/{}", b - 1, body.len()).as_str())
    );
    assert_eq!(r.body.expect("body"), &body[a..b]);
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn h264_camera_is_recorded_and_plays() {
    record_and_check("h264", &[], "h264");
}

#[test]
fn h265_open_gop_camera_is_recorded_and_plays() {
    // Open GOP: key frames are CRA pictures only, which retina does not flag as key frames.
    record_and_check("h265", &["--open-gop"], "hevc");
}

#[test]
fn no_plaintext_video_headers_on_disk() {
    let (_cam, mut rec, c) = small_camera_recorder(&["--segment-duration-secs", "2"]);
    let run = wait_run(&c, 1, 5.0);
    let (_, mp4) = download_run(&rec, &c, 1, &run);
    rec.stop();
    // The SPS, from the avcC box of the MP4 we served.
    let avcc = find_box(&mp4, b"avcC").expect("avcC");
    let sps_len = u16::from_be_bytes([avcc[6], avcc[7]]) as usize;
    let sps = &avcc[8..8 + sps_len];
    assert!(sps.len() >= 8, "SPS of {} bytes", sps.len());
    let mut in_index = false;
    for f in files_under(&rec.dir) {
        let bytes = std::fs::read(&f).expect("read");
        let found = bytes.windows(sps.len()).any(|w| w == sps);
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("index.db") {
            in_index |= found;
        } else {
            assert!(!found, "SPS in clear in {}", f.display());
        }
    }
    assert!(
        in_index,
        "the search must find the SPS where it is expected"
    );
}

#[test]
fn kill_9_loses_at_most_the_unsealed_chunk() {
    let (_cam, mut rec, c) = small_camera_recorder(&["--segment-duration-secs", "4"]);
    wait_run(&c, 1, 10.0);
    let written = c.cameras()[0]["status_detail"]["frames_written"]
        .as_u64()
        .expect("count");
    rec.kill9();

    rec.restart();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "check after kill -9 and restart: {out}");
    let c = rec.client();
    // Recording resumes as a new run.
    let runs = wait_for(Duration::from_secs(60), "a second run", || {
        let r = c.runs(1);
        (r.len() == 2 && r[1]["frames"].as_u64() > Some(15)).then_some(r)
    });
    let recovered = runs[0]["frames"].as_u64().expect("frames");
    // A 64 KiB chunk of this ~1 Mbit/s, 15 fps stream holds about 8 frames.
    assert!(
        recovered + 20 >= written,
        "{written} frames written before the kill, {recovered} recovered"
    );
    let (path, _) = download_run(&rec, &c, 1, &runs[0]);
    let p = ffprobe(&path).expect("the recovered run plays");
    assert_eq!(p.frames, recovered);
}

#[test]
fn tampered_segment_is_named_and_not_served() {
    let (_cam, mut rec, c) = small_camera_recorder(&["--segment-duration-secs", "2"]);
    let run = wait_run(&c, 1, 8.0);
    rec.stop();
    let mut segs: Vec<(i64, std::path::PathBuf)> = files_under(&rec.dir.join("segments"))
        .into_iter()
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let (victim_id, victim) = &segs[1];
    let mut bytes = std::fs::read(victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(victim, &bytes).expect("write");

    let (code, out) = rec.check();
    assert_ne!(code, 0, "{out}");
    assert!(out.contains(&format!("segment {victim_id}:")), "{out}");

    rec.restart();
    let c = rec.client();
    let (s, e) = (
        run["start"].as_str().expect("s"),
        run["end"].as_str().expect("e"),
    );
    let r = c.get(&format!("/api/cameras/1/view.mp4?start={s}&end={e}"), &[]);
    assert!(
        r.status >= 500 || r.body.is_err(),
        "altered video was served: status {}",
        r.status
    );
    // The segment before the damaged one still plays.
    let first_end = rfc3339(parse_rfc3339(s) as i64 + 1);
    let r = c.get(
        &format!("/api/cameras/1/view.mp4?start={s}&end={first_end}"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert!(r.body.is_ok());
}

#[test]
fn camera_outage_shows_as_a_gap_and_recording_resumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cam = TestCam::start(
        &["--width", "640", "--height", "360"],
        &tmp.path().join("cam.log"),
    );
    let port = cam.port;
    let mut rec = Recorder::new();
    assert_eq!(rec.add_camera("cam", &cam.urls[0], None, false).0, 0);
    rec.serve(&[]);
    let c = rec.client();
    wait_run(&c, 1, 4.0);
    cam.proc.kill9();
    std::thread::sleep(Duration::from_secs(10));
    let _cam = TestCam::start_on(
        &format!("127.0.0.1:{port}"),
        &["--width", "640", "--height", "360"],
        &tmp.path().join("cam2.log"),
    );
    // Backoff is capped at 30 s: the camera is back in less than that (plus connect time).
    wait_for(Duration::from_secs(40), "the camera to reconnect", || {
        let cams = c.cameras();
        let d = &cams[0]["status_detail"];
        (d["state"] == "recording" && d["connects"].as_u64() >= Some(2)).then_some(())
    });
    let runs = wait_for(Duration::from_secs(60), "a second run", || {
        let r = c.runs(1);
        (r.len() == 2 && r[1]["frames"].as_u64() > Some(15)).then_some(r)
    });
    let gap = secs_between(
        runs[0]["end"].as_str().expect("end"),
        runs[1]["start"].as_str().expect("start"),
    );
    assert!(gap >= 5.0, "the 10 s outage shows as a gap of {gap:.1} s");
    assert!(rec.server.as_mut().expect("server").is_running());
}

#[test]
fn wrong_camera_password_is_an_auth_error_in_status() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cam = TestCam::start(
        &[
            "--width",
            "320",
            "--height",
            "240",
            "--username",
            "viewer",
            "--password",
            "right-pw",
        ],
        &tmp.path().join("cam.log"),
    );
    let mut rec = Recorder::new();
    // Tested first, the wrong password is refused and nothing is added.
    let (code, out) = rec.add_camera("cam", &cam.urls[0], Some(("viewer", "wrong-pw")), false);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("(auth)") && out.contains("nothing was added"),
        "{out}"
    );
    // Added without the test, it records nothing and says why.
    assert_eq!(
        rec.add_camera("cam", &cam.urls[0], Some(("viewer", "wrong-pw")), true)
            .0,
        0
    );
    assert_eq!(
        rec.add_camera("good", &cam.urls[0], Some(("viewer", "right-pw")), false)
            .0,
        0
    );
    rec.serve(&[]);
    let c = rec.client();
    let status = wait_for(Duration::from_secs(30), "an auth error", || {
        let cams = c.cameras();
        let d = cams[0]["status_detail"].clone();
        (d["last_error_kind"] == "auth").then_some(d)
    });
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("authentication failed"),
        "{status}"
    );
    let listing = serde_json::to_string(&c.cameras()).expect("json");
    assert!(
        !listing.contains("wrong-pw") && !listing.contains("right-pw"),
        "{listing}"
    );
    // The other camera records regardless.
    wait_run(&c, 2, 3.0);
    assert!(rec.server.as_mut().expect("server").is_running());
}

#[test]
fn bad_camera_input_is_refused_with_clear_errors() {
    let rec = Recorder::new();
    for (url, needle) in [
        ("ftp://127.0.0.1/cam", "scheme"),
        ("rtsp://admin:secret@127.0.0.1/cam", "username or password"),
        ("rtsp://camera.example/cam", "resolving names is disabled"),
        ("rtsp://127.0.0.1:1/cam", "(unreachable)"),
        ("rtsp://0.0.0.0/cam", "cannot be a camera"),
        ("not a url", "not a valid URL"),
    ] {
        let (code, out) = rec.add_camera("cam", url, None, false);
        assert_ne!(code, 0, "{url}: {out}");
        assert!(out.contains(needle), "{url}: {out}");
        assert!(!out.contains("secret"), "a password was echoed: {out}");
    }
    let (code, out) = nvr(&["camera", "list", "--data-dir", rec.d()], None);
    assert_eq!((code, out.trim()), (0, ""), "nothing was written");
}
