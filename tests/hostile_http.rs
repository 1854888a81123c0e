//! Hostile HTTP: oversized headers and bodies are refused, slow clients are dropped, path
//! traversal finds nothing, malformed requests get 4xx, and none of it slows recording.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Sends raw bytes and returns what the server answered (possibly nothing).
fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may close before reading everything (e.g. oversized headers): ignore that.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn hostile_requests_are_bounded_refused_and_do_not_disturb_recording() {
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    rec.serve(&[]);
    let c = rec.client();
    let addr = rec.base.trim_start_matches("http://").to_owned();
    wait_for(Duration::from_secs(30), "recording", || {
        (c.cameras()[0]["status"] == "recording").then_some(())
    });

    // A load of bad requests from several clients at once, for a while.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for t in 0..4 {
        let (addr, stop) = (addr.clone(), stop.clone());
        load.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let req: Vec<u8> = match (n + t) % 5 {
                    0 => format!("GET /api/cameras/{n}/recordings?start=x&end=y HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes(),
                    1 => format!("POST /api/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{{\"user\":1").into_bytes(),
                    2 => b"\x16\x03\x01\x00\xa5garbage\r\n\r\n".to_vec(),
                    3 => format!("GET /../../../../etc/passwd HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes(),
                    _ => format!("GET /api/cameras/1/view.mp4?start=2026-01-01T00:00:00Z&end=2027-01-01T00:00:00Z HTTP/1.1\r\nHost: {addr}\r\nCookie: nvr_session={n}\r\nConnection: close\r\n\r\n").into_bytes(),
                };
                let r = raw(&addr, &req);
                assert!(!r.contains("root:x:0:0"), "a file leaked");
                assert!(!r.starts_with("HTTP/1.1 2"), "a bad request succeeded: {r}");
                n += 1;
            }
            n
        }));
    }
    let before = c.cameras()[0]["status_detail"].clone();

    // Oversized headers: refused (431) or the connection closed, never served.
    let big = format!(
        "GET /api/setup HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let r = raw(&addr, big.as_bytes());
    assert!(
        status_of(&r) == 431 || r.is_empty(),
        "oversized headers: {}",
        &r[..r.len().min(200)]
    );
    // Oversized body: 413.
    let body = "x".repeat(1 << 20);
    let req = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(status_of(&raw(&addr, req.as_bytes())), 413);
    // Path traversal, raw and encoded, in asset and API paths.
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/app.js/..%2f..%2f..%2fetc%2fpasswd",
        "/js/../../../../etc/passwd",
        "/api/exports/..%2F..%2Fetc%2Fpasswd/bundle.zip",
        "/api/cameras/1/..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = c.get(path, &[]);
        assert!((400..500).contains(&r.status), "{path}: {}", r.status);
        assert!(
            !String::from_utf8_lossy(&r.body.unwrap_or_default()).contains("root:"),
            "{path}"
        );
    }
    // A slow client (headers never finished) is dropped, not kept forever.
    let mut slow = TcpStream::connect(&addr).expect("connect");
    slow.write_all(format!("GET /api/setup HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .expect("write");
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
        "the slow client got an answer: {}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        started.elapsed() < Duration::from_secs(59),
        "the slow client was never dropped"
    );

    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: u64 = load
        .into_iter()
        .map(|t| t.join().expect("load thread"))
        .sum();
    assert!(sent > 100, "only {sent} bad requests were sent");

    // Recording went on: one run, and every received frame was written (but those in flight).
    let after = c.cameras()[0]["status_detail"].clone();
    let (received, written) = (
        after["frames_received"].as_u64().expect("r"),
        after["frames_written"].as_u64().expect("w"),
    );
    assert!(
        received > before["frames_received"].as_u64().expect("r") + 100,
        "{before} -> {after}"
    );
    assert!(
        written + 30 >= received,
        "{received} received, {written} written"
    );
    assert_eq!(c.runs(1).len(), 1, "recording was interrupted");
    assert_eq!(after["failures"], 0, "{after}");
}
