//! End to end: cameras that send B-frames (`nvr testcam --bframes 2`, H.264 and H.265; frames in
//! decode order, RTP timestamps going back within each group of pictures) are recorded across
//! several segments; `view.mp4` of a range starting between key frames holds the expected
//! frames, ffprobe sees the packets reordered (decode times increasing, presentation times
//! not) and the decoded frames' presentation times increasing, ffmpeg decodes it without an
//! error; transcoded to H.264 it keeps every frame, in order; the live WebSocket carries
//! composition offsets; an export verifies with
//! `nvr verify` and its MP4 decodes; `nvr check` is clean.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

const FPS: f64 = 15.0;

/// ffprobe's JSON for `path`'s video stream with `what` (`-show_packets`, `-show_frames`).
fn ffprobe_json(path: &Path, what: &str) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", what, "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

fn ints(list: &Value, key: &str, field: &str) -> Vec<i64> {
    list[key]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v[field].as_i64())
        .collect()
}

/// What ffprobe and ffmpeg make of an MP4 of B-frame video: its decoded frame count, after
/// checking packets and frames are in the right order and the whole file decodes cleanly.
fn check_reordered_mp4(path: &Path, codec: &str) -> u64 {
    let p = ffprobe(path).expect("ffprobe reads the MP4");
    assert_eq!(p.codec, codec);
    let packets = ffprobe_json(path, "-show_packets");
    let dts = ints(&packets, "packets", "dts");
    let pts = ints(&packets, "packets", "pts");
    assert_eq!(dts.len(), pts.len(), "every packet has both times");
    assert!(
        dts.windows(2).all(|w| w[1] > w[0]),
        "decode times increase: {dts:?}"
    );
    assert!(
        pts.windows(2).any(|w| w[1] < w[0]),
        "presentation order differs from decode order (B-frames kept): {pts:?}"
    );
    assert!(
        pts.iter().zip(&dts).all(|(p, d)| p >= d),
        "no frame presented before it is decoded"
    );
    let mut sorted = pts.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), pts.len(), "presentation times are distinct");
    let frames = ffprobe_json(path, "-show_frames");
    let shown = ints(&frames, "frames", "pts");
    assert!(
        shown.windows(2).all(|w| w[1] > w[0]),
        "decoded frames' presentation times increase: {shown:?}"
    );
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg failed");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "ffmpeg decodes without an error"
    );
    p.frames
}

/// Camera 1's first run of at least `secs`, once there is one.
fn wait_run(c: &Client, secs: f64) -> Value {
    wait_for(
        Duration::from_secs(secs as u64 + 120),
        "a long enough run",
        || {
            c.runs(1).into_iter().find(|r| {
                secs_between(
                    r["start"].as_str().unwrap_or(""),
                    r["end"].as_str().unwrap_or(""),
                ) >= secs
            })
        },
    )
}

/// Reads live fragments until one carries composition offsets (`trun` flag 0x800, version 1
/// for signed offsets); returns how many fragments that took.
fn live_has_composition_offsets(rec: &Recorder, c: &Client) -> usize {
    let host = rec.base.trim_start_matches("http://").to_owned();
    let mut req = format!("ws://{host}/api/cameras/1/live?codecs=h264,h265")
        .into_client_request()
        .expect("request");
    let h = req.headers_mut();
    h.insert("Cookie", c.cookie_header().parse().expect("hv"));
    h.insert("Origin", rec.base.parse().expect("hv"));
    let (mut ws, _) = tungstenite::connect(req).expect("websocket");
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 1..=60 {
        assert!(Instant::now() < deadline, "fragments in time");
        let b = loop {
            match ws.read().expect("read") {
                Message::Binary(b) if &b[4..8] == b"moof" => break b,
                _ => {}
            }
        };
        let trun = find_box(&b, b"trun").expect("a trun");
        let (version, flags) = (trun[0], u32::from_be_bytes([0, trun[1], trun[2], trun[3]]));
        if flags & 0x800 != 0 {
            assert_eq!(version, 1, "signed offsets");
            return n;
        }
    }
    panic!("no live fragment with composition offsets in 60 frames of a B-frame camera");
}

fn record_b_frames(codec: &str, ffprobe_codec: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cam = TestCam::start(
        &[
            "--codec",
            codec,
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "15",
            "--bframes",
            "2",
            "--no-sub",
        ],
        &tmp.path().join("cam.log"),
    );
    let mut rec = Recorder::new();
    let (code, out) = rec.add_camera("cam", &cam.urls[0], None, false);
    assert_eq!(code, 0, "{out}");
    // Short segments: the range below spans several, each starting at a key frame.
    rec.serve(&["--segment-duration-secs", "4"]);
    let c = rec.client();
    let run = wait_run(&c, 22.0);

    // 15 s from a time between key frames (the edit list trims to it).
    let from = parse_rfc3339(run["start"].as_str().expect("start")) + 3.3;
    let (start, end) = (
        rfc3339(from.floor() as i64),
        rfc3339(from.floor() as i64 + 15),
    );
    let r = c.get(
        &format!("/api/cameras/1/view.mp4?start={start}&end={end}"),
        &[],
    );
    assert_eq!(r.status, 200);
    let body = r.body.expect("complete body");
    let path = rec.tmp.path().join("view.mp4");
    std::fs::write(&path, &body).expect("write");
    assert!(find_box(&body, b"ctts").is_some(), "composition offsets");
    let frames = check_reordered_mp4(&path, ffprobe_codec);
    let expected = FPS * 15.0;
    assert!(
        (frames as f64 - expected).abs() <= 0.02 * expected,
        "{codec}: {frames} frames for 15 s at 15 fps"
    );

    // Transcoded to H.264 for a browser without the codec (or without B-frame support):
    // every frame of the view, from its key frame on, once, presented in order.
    let samples = ints(&ffprobe_json(&path, "-show_packets"), "packets", "pts").len() as u64;
    let r = c.get(
        &format!("/api/cameras/1/view.mp4?start={start}&end={end}&transcode=h264"),
        &[],
    );
    assert_eq!(r.status, 200);
    let transcoded = rec.tmp.path().join("transcoded.mp4");
    std::fs::write(&transcoded, r.body.expect("body")).expect("write");
    let p = ffprobe(&transcoded).expect("ffprobe reads the transcoded stream");
    assert_eq!((p.codec.as_str(), p.frames), ("h264", samples), "{codec}");
    let shown = ints(&ffprobe_json(&transcoded, "-show_frames"), "frames", "pts");
    assert!(shown.windows(2).all(|w| w[1] > w[0]), "{codec}: {shown:?}");

    assert!(live_has_composition_offsets(&rec, &c) <= 60);

    let zip = rec.tmp.path().join("bframes.zip");
    let zip_s = zip.to_str().expect("utf8");
    let (code, out) = nvr(
        &[
            "export",
            "--data-dir",
            rec.d(),
            "--camera",
            "cam",
            "--start",
            &start,
            "--end",
            &end,
            "--out",
            zip_s,
            "--reason",
            "b-frames",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let key = rec.key_fingerprint();
    let (code, out) = nvr(&["verify", "--expect-key", &key, zip_s], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("matches the hash recorded at ingest"), "{out}");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).expect("zip")).expect("zip");
    let mut exported = Vec::new();
    archive
        .by_name("camera-1.mp4")
        .expect("the camera's MP4")
        .read_to_end(&mut exported)
        .expect("read");
    let exported_path = rec.tmp.path().join("exported.mp4");
    std::fs::write(&exported_path, &exported).expect("write");
    let exported_frames = check_reordered_mp4(&exported_path, ffprobe_codec);
    assert!(
        (exported_frames as f64 - expected).abs() <= 0.02 * expected,
        "{codec}: the export presents {exported_frames} frames for 15 s"
    );

    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn h264_b_frames_are_recorded_played_and_exported_in_order() {
    record_b_frames("h264", "h264");
}

#[test]
fn h265_b_frames_are_recorded_played_and_exported_in_order() {
    record_b_frames("h265", "hevc");
}
