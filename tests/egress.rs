//! Zero egress, proven: every connect() the recorder makes while cameras record and a client
//! uses live view, playback and export goes to a configured camera, and a camera that points
//! its stream at another host is refused without any connection to that host.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tungstenite::client::IntoClientRequest;

/// One connect() from an strace log: family and, for IP sockets, address and port.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Connect {
    Ip(String, u16),
    Unix(String),
    Other(String),
}

fn parse_connects(trace: &str) -> Vec<Connect> {
    let mut out = Vec::new();
    for line in trace.lines().filter(|l| l.contains("connect(")) {
        let field = |key: &str| -> Option<String> {
            let at = line.find(key)? + key.len();
            let rest = &line[at..];
            let end = rest.find(['"', ')'])?;
            Some(rest[..end].to_owned())
        };
        if line.contains("sa_family=AF_INET6") {
            let port = field("sin6_port=htons(")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let addr = line
                .split("inet_pton(AF_INET6, \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("?")
                .to_owned();
            out.push(Connect::Ip(addr, port));
        } else if line.contains("sa_family=AF_INET") {
            let port = field("sin_port=htons(")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let addr = field("sin_addr=inet_addr(\"").unwrap_or_else(|| "?".into());
            out.push(Connect::Ip(addr, port));
        } else if line.contains("sa_family=AF_UNIX") {
            out.push(Connect::Unix(field("sun_path=\"").unwrap_or_default()));
        } else {
            out.push(Connect::Other(line.to_owned()));
        }
    }
    out
}

#[test]
fn every_connect_goes_to_a_camera_while_live_playback_and_export_are_used() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let args = ["--width", "640", "--height", "360", "--fps", "15"];
    let cam_a = TestCam::start(&args, &tmp.path().join("a.log"));
    let cam_b = TestCam::start(&args, &tmp.path().join("b.log"));
    let mut rec = Recorder::new();
    assert_eq!(rec.add_camera("a", &cam_a.urls[0], None, false).0, 0);
    assert_eq!(rec.add_camera("b", &cam_b.urls[0], None, false).0, 0);
    let trace = tmp.path().join("connect.trace");
    let strace_pid = rec.serve_traced(&trace, &["--segment-duration-secs", "10"]);
    let c = rec.client();
    let host = rec.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut exported = false;
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(65) || !exported {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the exercise took too long"
        );
        rounds += 1;
        for id in [1, 2] {
            // Live view for a few fragments.
            let mut req = format!("ws://{host}/api/cameras/{id}/live?codecs=h264")
                .into_client_request()
                .expect("request");
            req.headers_mut()
                .insert("Cookie", c.cookie_header().parse().expect("hv"));
            let (mut ws, _) = tungstenite::connect(req).expect("websocket");
            let mut frames = 0;
            while frames < 10 {
                if let tungstenite::Message::Binary(_) = ws.read().expect("read") {
                    frames += 1;
                }
            }
            drop(ws);
            // Playback of what is recorded so far, and a snapshot.
            if let Some(run) = c.runs(id).first() {
                let (s, e) = (
                    run["start"].as_str().expect("s"),
                    run["end"].as_str().expect("e"),
                );
                let r = c.get(
                    &format!("/api/cameras/{id}/view.mp4?start={s}&end={e}"),
                    &[],
                );
                assert_eq!(r.status, 200);
                let r = c.get(&format!("/api/cameras/{id}/snapshot.jpg"), &[]);
                assert_eq!(r.status, 200);
            }
        }
        // Once 20 s are sealed, export them (both cameras) and download the bundle.
        if !exported
            && let Some(run) = c.runs(1).first().cloned()
            && secs_between(
                run["start"].as_str().unwrap_or(""),
                run["end"].as_str().unwrap_or(""),
            ) > 25.0
        {
            let s = parse_rfc3339(run["start"].as_str().expect("s"));
            let body = serde_json::json!({"cameras": [1, 2], "start": rfc3339(s as i64 + 1),
                "end": rfc3339(s as i64 + 15), "reason": "egress test"});
            let r = c.post("/api/exports", body);
            assert_eq!(r.status, 202, "{:?}", r.body.map(String::from_utf8));
            let id = r.json()["id"].as_i64().expect("id");
            let done = wait_for(Duration::from_secs(60), "the export", || {
                let e = c.get(&format!("/api/exports/{id}"), &[]).json();
                (e["state"] != "running").then_some(e)
            });
            assert_eq!(done["state"], "ready", "{done}");
            assert_eq!(
                c.get(&format!("/api/exports/{id}/bundle.zip"), &[]).status,
                200
            );
            exported = true;
        }
        let _ = c.get("/api/status", &[]);
        let _ = c.get("/metrics", &[]);
        std::thread::sleep(Duration::from_secs(2));
    }
    // Stop the recorder (strace's child) so the trace is complete.
    let children =
        std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children"))
            .expect("children of strace");
    let nvr_pid = children
        .split_whitespace()
        .next()
        .expect("the traced nvr")
        .to_owned();
    std::process::Command::new("kill")
        .args(["-TERM", &nvr_pid])
        .status()
        .expect("kill");
    if let Some(mut p) = rec.server.take() {
        let _ = p.child.wait();
    }

    let trace = std::fs::read_to_string(&trace).expect("trace");
    let connects = parse_connects(&trace);
    let cameras: BTreeSet<(String, u16)> = [cam_a.port, cam_b.port]
        .iter()
        .map(|&p| ("127.0.0.1".to_owned(), p))
        .collect();
    assert!(
        !connects.is_empty(),
        "strace saw no connect() at all:\n{trace}"
    );
    let mut seen = BTreeSet::new();
    for c in &connects {
        match c {
            Connect::Ip(addr, port) => {
                assert_ne!(*port, 53, "a DNS query: {c:?}");
                assert!(
                    cameras.contains(&(addr.clone(), *port)),
                    "connect() to {addr}:{port}, which is not a camera (rounds: {rounds})"
                );
                seen.insert((addr.clone(), *port));
            }
            other => panic!("unexpected connect(): {other:?}"),
        }
    }
    assert_eq!(
        seen, cameras,
        "both cameras were connected to, and nothing else"
    );
}

/// A hostile RTSP server: answers DESCRIBE with a Content-Base on another loopback address.
fn hostile_camera(other_host_port: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let counted = counted.clone();
            std::thread::spawn(move || serve_hostile(conn, other_host_port, &counted));
        }
    });
    (port, requests)
}

fn serve_hostile(conn: TcpStream, other_port: u16, requests: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut w = conn;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push(line);
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let method = head
            .first()
            .and_then(|l| l.split(' ').next())
            .unwrap_or("")
            .to_owned();
        let cseq = head
            .iter()
            .find_map(|l| l.strip_prefix("CSeq:").map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| "1".into());
        let len: usize = head
            .iter()
            .find_map(|l| {
                l.strip_prefix("Content-Length:")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        let mut body = vec![0; len];
        let _ = reader.read_exact(&mut body);
        let resp = match method.as_str() {
            "OPTIONS" => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
            ),
            "DESCRIBE" => {
                let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\n\
                           m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                           a=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n";
                format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: rtsp://127.0.0.2:{other_port}/stream/\r\n\
                     Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                    sdp.len()
                )
            }
            _ => format!("RTSP/1.0 454 Session Not Found\r\nCSeq: {cseq}\r\n\r\n"),
        };
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn a_content_base_pointing_elsewhere_is_refused_and_never_connected_to() {
    // Whatever connects to 127.0.0.2 on this port is counted: there must be nothing.
    let elsewhere = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let other_port = elsewhere.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for _ in elsewhere.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (port, requests) = hostile_camera(other_port);
    let url = format!("rtsp://127.0.0.1:{port}/cam");

    let mut rec = Recorder::new();
    // Tested before adding: refused, with the reason.
    let (code, out) = rec.add_camera("hostile", &url, None, false);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("refusing to follow"), "{out}");
    // Added anyway, the recorder keeps refusing it and says why.
    assert_eq!(rec.add_camera("hostile", &url, None, true).0, 0);
    rec.serve(&[]);
    let c = rec.client();
    let status = wait_for(Duration::from_secs(30), "a policy error", || {
        let d = c.cameras()[0]["status_detail"].clone();
        (d["last_error_kind"] == "policy").then_some(d)
    });
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.2"),
        "{status}"
    );
    // The admin's Test button says the same.
    let r = c.post("/api/cameras/test", serde_json::json!({"url": url}));
    assert_eq!(r.status, 400, "{:?}", r.body.map(String::from_utf8));
    assert!(
        requests.load(Ordering::SeqCst) >= 2,
        "the hostile camera was asked"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a connection reached 127.0.0.2"
    );
}

#[test]
fn doctor_lists_sockets_allowlist_and_sandbox_and_finds_nothing_unexpected() {
    let (cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    let (code, out) = nvr(&["doctor", "--data-dir", rec.d()], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not running"), "{out}");
    rec.serve(&[]);
    let c = rec.client();
    wait_for(Duration::from_secs(30), "recording", || {
        (c.cameras()[0]["status"] == "recording").then_some(())
    });
    let (code, out) = nvr(&["doctor", "--data-dir", rec.d()], None);
    assert_eq!(code, 0, "{out}");
    let http = rec.base.trim_start_matches("http://");
    assert!(
        out.contains(&format!("tcp {http}  (loopback only)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("127.0.0.1:{}  (cam)", cam.port)),
        "{out}"
    );
    assert!(out.contains("connections to cameras: 1"), "{out}");
    assert!(out.contains("other outbound connections: 0"), "{out}");
    assert!(
        out.contains("NoNewPrivs") && out.contains("not running under systemd"),
        "{out}"
    );
    let audit = c.get("/api/audit?action=doctor", &[]).json();
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
}

#[test]
fn the_systemd_unit_denies_all_ip_traffic_but_what_is_allowed() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nvr.service");
    let text = std::fs::read_to_string(&unit).expect("unit");
    for needed in [
        "IPAddressDeny=any",
        "IPAddressAllow=localhost",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/nvr",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "DynamicUser=yes",
    ] {
        assert!(text.lines().any(|l| l.trim() == needed), "missing {needed}");
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let report = String::from_utf8_lossy(&out.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| l.split("exposure level for nvr.service: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("an exposure level");
    assert!(level <= 1.5, "exposure {level}:\n{report}");
}
