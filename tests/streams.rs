//! End to end: a camera with a main stream (1080p) and a sub-stream (640x360) from
//! `nvr testcam`, added with `--sub-url`: both streams are recorded apart, each stream's
//! `view.mp4` holds the frames of its stream (counted by ffprobe), live view serves either,
//! `nvr check` checks both chains, and an export holds and verifies both.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

const FPS: f64 = 15.0;

/// The runs of camera 1's `stream` over the last hour.
fn runs(c: &Client, stream: &str) -> Vec<serde_json::Value> {
    let (s, e) = recent_range();
    let r = c.get(
        &format!("/api/cameras/1/recordings?start={s}&end={e}&stream={stream}"),
        &[],
    );
    assert_eq!(r.status, 200, "{stream}");
    r.json()["runs"].as_array().cloned().unwrap_or_default()
}

/// The first run of `stream` of at least `secs`, once there is one.
fn wait_run(c: &Client, stream: &str, secs: f64) -> serde_json::Value {
    wait_for(
        Duration::from_secs(secs as u64 + 120),
        "a long enough run",
        || {
            runs(c, stream).into_iter().find(|r| {
                secs_between(
                    r["start"].as_str().unwrap_or(""),
                    r["end"].as_str().unwrap_or(""),
                ) >= secs
            })
        },
    )
}

/// The first init message and media fragment of a live WebSocket.
fn live_init(rec: &Recorder, c: &Client, query: &str) -> (serde_json::Value, usize) {
    let host = rec.base.trim_start_matches("http://").to_owned();
    let mut req = format!("ws://{host}/api/cameras/1/live?{query}")
        .into_client_request()
        .expect("request");
    let h = req.headers_mut();
    h.insert("Cookie", c.cookie_header().parse().expect("hv"));
    h.insert("Origin", rec.base.parse().expect("hv"));
    let (mut ws, _) = tungstenite::connect(req).expect("websocket");
    let mut init = None;
    let mut fragment_bytes = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while fragment_bytes == 0 {
        assert!(Instant::now() < deadline, "no fragment in time");
        match ws.read().expect("read") {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                if v["type"] == "init" {
                    init = Some(v);
                }
            }
            Message::Binary(b) if &b[4..8] == b"moof" => fragment_bytes = b.len(),
            _ => {}
        }
    }
    (init.expect("init"), fragment_bytes)
}

#[test]
fn main_and_sub_stream_are_recorded_served_checked_and_exported() {
    let rec_tmp = tempfile::tempdir().expect("tempdir");
    let cam = TestCam::start(
        &[
            "--width",
            "1920",
            "--height",
            "1080",
            "--fps",
            "15",
            "--bitrate-kbps",
            "2500",
        ],
        &rec_tmp.path().join("cam.log"),
    );
    assert_eq!(cam.sub_urls.len(), 1, "the test camera serves a sub-stream");
    let mut rec = Recorder::new();
    let (code, out) = nvr(
        &[
            "camera",
            "add",
            "--data-dir",
            rec.d(),
            "--name",
            "gate",
            "--url",
            &cam.urls[0],
            "--sub-url",
            &cam.sub_urls[0],
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("camera answers: h264 1920x1080"), "{out}");
    assert!(out.contains("sub-stream answers: h264 640x360"), "{out}");
    rec.serve(&["--segment-duration-secs", "6"]);
    let c = rec.client();
    let camera = &c.cameras()[0];
    assert_eq!(camera["sub_url"], cam.sub_urls[0].as_str());

    // Both streams record; compare them over the same 15 s.
    let main = wait_run(&c, "main", 25.0);
    let sub = wait_run(&c, "sub", 25.0);
    let from = parse_rfc3339(main["start"].as_str().expect("s"))
        .max(parse_rfc3339(sub["start"].as_str().expect("s")))
        .ceil() as i64
        + 3;
    let (start, end) = (rfc3339(from), rfc3339(from + 15));
    let mut bytes = Vec::new();
    for (stream, width, height) in [("main", 1920, 1080), ("sub", 640, 360)] {
        let r = c.get(
            &format!("/api/cameras/1/view.mp4?start={start}&end={end}&stream={stream}"),
            &[],
        );
        assert_eq!(r.status, 200, "{stream}");
        let body = r.body.expect("complete body");
        let path = rec.tmp.path().join(format!("{stream}.mp4"));
        std::fs::write(&path, &body).expect("write");
        let p = ffprobe(&path).expect("ffprobe reads view.mp4");
        assert_eq!(
            (p.codec.as_str(), p.width, p.height),
            ("h264", width, height)
        );
        let expected = FPS * 15.0;
        assert!(
            (p.frames as f64 - expected).abs() <= 0.02 * expected,
            "{stream}: {} frames for 15 s at 15 fps",
            p.frames
        );
        bytes.push(body.len());
    }
    assert!(
        bytes[1] * 3 < bytes[0],
        "the sub-stream is much smaller: {bytes:?}"
    );
    // A stream that does not exist, and a name that is none.
    let (s, e) = recent_range();
    for (stream, status) in [("third", 400), ("Sub", 400)] {
        let r = c.get(
            &format!("/api/cameras/1/recordings?start={s}&end={e}&stream={stream}"),
            &[],
        );
        assert_eq!(r.status, status, "{stream}");
    }

    // Live view of either stream: the init says which size it is.
    let (init, _) = live_init(&rec, &c, "codecs=h264&stream=sub");
    assert_eq!(
        (init["width"].clone(), init["height"].clone()),
        (640.into(), 360.into())
    );
    let (init, _) = live_init(&rec, &c, "codecs=h264");
    assert_eq!(
        (init["width"].clone(), init["height"].clone()),
        (1920.into(), 1080.into())
    );
    // Each stream's status.
    let camera = &c.cameras()[0];
    for stream in ["main", "sub"] {
        assert_eq!(camera["streams"][stream]["status"], "recording", "{camera}");
    }

    // Exported: both streams, each with its own chain, verified offline.
    let zip = rec.tmp.path().join("both.zip");
    let (code, out) = nvr(
        &[
            "export",
            "--data-dir",
            rec.d(),
            "--camera",
            "gate",
            "--start",
            &start,
            "--end",
            &end,
            "--out",
            zip.to_str().expect("utf8"),
            "--reason",
            "both streams",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("camera-1.mp4") && out.contains("camera-1-sub.mp4"),
        "{out}"
    );
    let key = rec.key_fingerprint();
    let (code, out) = nvr(
        &["verify", zip.to_str().expect("utf8"), "--expect-key", &key],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("camera 1 sub: "), "{out}");

    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}
