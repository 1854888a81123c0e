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
    let (_cam, mut rec) =
        recorder_with_camera(&["--width", "640", "--height", "360", "--fps", "15"]);
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
    let path = rec.tmp.path().join("live.mp4");
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
    // Recording went on undisturbed while we watched: every frame received so far reaches the
    // disk (the writer takes its queue every 250 ms, so it may trail by a few frames).
    let received = c.cameras()[0]["status_detail"]["frames_received"]
        .as_u64()
        .expect("frames_received");
    assert!(received > 45, "{received} received");
    wait_for(Duration::from_secs(30), "the writer to catch up", || {
        let written = c.cameras()[0]["status_detail"]["frames_written"].as_u64()?;
        (written >= received).then_some(())
    });
    let m = c.get("/metrics", &[]);
    let text = String::from_utf8(m.body.expect("metrics")).expect("utf8");
    assert!(
        text.contains("nvr_camera_up{camera=\"1\",name=\"cam\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("nvr_camera_frames_received_total{camera=\"1\""),
        "{text}"
    );
}

/// Reads WebSocket messages until `fragments` media fragments arrived; returns the init JSON
/// and the fMP4 bytes (init segment + fragments).
fn read_live(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    fragments: usize,
) -> (serde_json::Value, Vec<u8>) {
    let mut file = Vec::new();
    let mut init = None;
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while n < fragments {
        assert!(Instant::now() < deadline, "only {n} fragments in time");
        match ws.read().expect("read") {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                assert_ne!(v["type"], "error", "{v}");
                if v["type"] == "init" {
                    init = Some(v);
                }
            }
            Message::Binary(b) => {
                if &b[4..8] == b"moof" {
                    n += 1;
                }
                file.extend_from_slice(&b);
            }
            _ => {}
        }
    }
    (init.expect("an init message"), file)
}

#[test]
fn h265_camera_is_transcoded_for_browsers_without_hevc_live_and_recorded() {
    let (_cam, mut rec) = recorder_with_camera(&[
        "--codec", "h265", "--width", "640", "--height", "360", "--fps", "15",
    ]);
    rec.serve(&["--segment-duration-secs", "4"]);
    let c = rec.client();
    let origin = rec.base.clone();

    // Live, asking for H.264 only: the server transcodes to fit 320x180.
    let (mut ws, _) = tungstenite::connect(ws_request(
        &rec,
        &c,
        "/api/cameras/1/live?codecs=h264&width=320&height=180",
        &origin,
    ))
    .expect("websocket");
    let (init, file) = read_live(&mut ws, 30);
    assert_eq!(init["transcoded"], true, "{init}");
    assert!(
        init["mime"].as_str().unwrap_or("").contains("avc1."),
        "{init}"
    );
    let path = rec.tmp.path().join("live.mp4");
    std::fs::write(&path, &file).expect("write");
    let p = ffprobe(&path).expect("ffprobe");
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 320, 180));
    assert!(p.frames >= 29, "{p:?}");
    drop(ws);

    // The same camera asked with HEVC support is passed through untouched.
    let (mut ws, _) = tungstenite::connect(ws_request(
        &rec,
        &c,
        "/api/cameras/1/live?codecs=h264,h265",
        &origin,
    ))
    .expect("websocket");
    let (init, _) = read_live(&mut ws, 5);
    assert_eq!(init["transcoded"], false);
    assert!(
        init["mime"].as_str().unwrap_or("").contains("hvc1")
            || init["mime"].as_str().unwrap_or("").contains("hev1"),
        "{init}"
    );
    drop(ws);

    // Recorded: view.mp4 transcoded to H.264 streams fragmented MP4 that ffprobe decodes.
    let run = wait_for(Duration::from_secs(60), "5 s recorded", || {
        c.runs(1).into_iter().find(|r| {
            secs_between(
                r["start"].as_str().unwrap_or(""),
                r["end"].as_str().unwrap_or(""),
            ) >= 5.0
        })
    });
    let (s, e) = (
        run["start"].as_str().expect("s"),
        run["end"].as_str().expect("e"),
    );
    let r = c.get(
        &format!("/api/cameras/1/view.mp4?start={s}&end={e}&transcode=h264&width=640&height=360"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert!(r.header("x-recording-start").is_some());
    let path = rec.tmp.path().join("played.mp4");
    std::fs::write(&path, r.body.expect("body")).expect("write");
    let p = ffprobe(&path).expect("ffprobe");
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 640, 360));
    assert_eq!(
        Some(p.frames),
        run["frames"].as_u64(),
        "every recorded frame, transcoded"
    );

    // Snapshots: a recorded key frame and the live one, as JPEG.
    let mid = rfc3339(parse_rfc3339(s) as i64 + 2);
    for q in [format!("?at={mid}&width=160"), String::new()] {
        let r = c.get(&format!("/api/cameras/1/snapshot.jpg{q}"), &[]);
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        let jpeg = r.body.expect("jpeg");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "{q}");
    }
    let r = c.get("/api/cameras/1/snapshot.jpg?at=2001-01-01T00:00:00Z", &[]);
    assert_eq!(r.status, 404);
}
