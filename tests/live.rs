//! Live view end to end: the recorder's WebSocket serves fMP4 that ffprobe decodes, built from
//! the frames it records, and refuses foreign origins.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

fn ws_request(
    rec: &Recorder,
    c: &Client,
    path: &str,
    origin: &str,
) -> tungstenite::handshake::client::Request {
    let host = rec.base.trim_start_matches("http://").to_owned();
    let mut req = format!("ws://{host}{path}")
        .into_client_request()
        .expect("request");
    let h = req.headers_mut();
    h.insert("Cookie", c.cookie_header().parse().expect("hv"));
    h.insert("Origin", origin.parse().expect("hv"));
    req
}

#[test]
fn live_view_streams_decodable_fmp4() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cam = TestCam::start(
        &["--width", "640", "--height", "360", "--fps", "15"],
        &tmp.path().join("cam.log"),
    );
    let mut rec = Recorder::new();
    assert_eq!(rec.add_camera("cam", &cam.urls[0], None, false).0, 0);
    rec.serve(&[]);
    let c = rec.client();
    let origin = rec.base.clone();
    let (mut ws, _) = tungstenite::connect(ws_request(
        &rec,
        &c,
        "/api/cameras/1/live?codecs=h264",
        &origin,
    ))
    .expect("websocket");
    let mut file = Vec::new();
    let mut init_json = None;
    let mut fragments = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while fragments < 45 {
        assert!(
            Instant::now() < deadline,
            "only {fragments} fragments in time"
        );
        match ws.read().expect("read") {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                if v["type"] == "init" {
                    assert!(init_json.is_none(), "one init for one session: {v}");
                    init_json = Some(v);
                }
            }
            Message::Binary(b) => {
                if &b[4..8] == b"ftyp" {
                    assert!(file.is_empty(), "init segment first");
                } else {
                    assert_eq!(&b[4..8], b"moof");
                    fragments += 1;
                }
                file.extend_from_slice(&b);
            }
            _ => {}
        }
    }
    let init = init_json.expect("an init message");
    assert!(
        init["mime"]
            .as_str()
            .unwrap_or("")
            .starts_with("video/mp4; codecs=\"avc1."),
        "{init}"
    );
    assert_eq!(
        (init["width"].as_u64(), init["height"].as_u64()),
        (Some(640), Some(360))
    );
    let path = tmp.path().join("live.mp4");
    std::fs::write(&path, &file).expect("write");
    let p = ffprobe(&path).expect("ffprobe reads the live stream");
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 640, 360));
    assert_eq!(p.frames, 45);

    // A page on another origin cannot open the socket with the user's cookie.
    let err = tungstenite::connect(ws_request(
        &rec,
        &c,
        "/api/cameras/1/live",
        "http://evil.example",
    ))
    .expect_err("foreign origin");
    match err {
        tungstenite::Error::Http(r) => assert_eq!(r.status(), 403),
        e => panic!("unexpected error {e}"),
    }
    // Recording went on undisturbed while we watched: nothing but frames in flight unwritten.
    let d = &c.cameras()[0]["status_detail"];
    let (received, written) = (
        d["frames_received"].as_u64().expect("r"),
        d["frames_written"].as_u64().expect("w"),
    );
    assert!(
        written + 30 >= received && written > 45,
        "{received} received, {written} written"
    );
    let m = c.get("/metrics", &[]);
    let text = String::from_utf8(m.body.expect("metrics")).expect("utf8");
    assert!(text.contains("nvr_camera_up{camera=\"1\",name=\"cam\"} 1"), "{text}");
    assert!(text.contains("nvr_camera_frames_received_total{camera=\"1\""), "{text}");
}
