//! A stranger on the LAN with no account, tried from outside the process: thousands of
//! connections that send nothing, HTTP/2 prefaces and TLS handshakes that stop half-way, a web
//! page reaching the recorder through DNS rebinding, a first-run setup claimed from the LAN.
//! Throughout, a well-behaved client gets its answers and recording is not disturbed. Also:
//! what an admin's changes end (a disabled user's live view), and what evidence a change may
//! never destroy (held footage, retention 0).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::lan::*;
use common::*;
use serde_json::{Value, json};

/// What the server promises: the first request's head within 10 s of the accept (TLS
/// handshake included), else the connection is closed (`nvr-web/src/server.rs`).
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts per flood (the figure).
const FLOOD_CONNECTIONS: usize = 5000;

/// What one flood did, seen from the attacker's side.
#[derive(Default)]
struct FloodReport {
    attempted: usize,
    /// Connections the server took (open for more than [`ADMITTED_AFTER`]) and when it closed
    /// each, seconds after connecting.
    admitted_closed_after_secs: Vec<f64>,
    /// Connections closed at once (over a connection cap, possibly after waiting in the
    /// kernel's accept queue) or refused.
    refused: usize,
    /// Admitted connections still open when the attacker gave up waiting.
    never_closed: usize,
}

impl std::fmt::Debug for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let closed = &self.admitted_closed_after_secs;
        write!(
            f,
            "{} attempted, {} closed at once, {} held by the server and closed after {:.1}-{:.1} s, \
             {} never closed",
            self.attempted,
            self.refused,
            closed.len(),
            closed.iter().copied().fold(f64::INFINITY, f64::min),
            closed.iter().copied().fold(0.0, f64::max),
            self.never_closed
        )
    }
}

/// A connection the server closed within this time was refused at accept (it may have waited
/// in the kernel's accept queue while the server worked through the flood); later, it had
/// been admitted.
const ADMITTED_AFTER: Duration = Duration::from_secs(3);

/// Opens `total` connections to `target` from this process (one address), runs `start` on
/// each (sends a first byte, a preface, half a handshake, or nothing), keeps them all open and
/// never sends anything more; then watches which the server closes, and when.
fn flood(
    target: SocketAddr,
    total: usize,
    start: &dyn Fn(TcpStream) -> Option<TcpStream>,
) -> FloodReport {
    let mut report = FloodReport {
        attempted: total,
        ..Default::default()
    };
    let mut open: Vec<(TcpStream, Instant)> = Vec::new();
    let sweep = |open: &mut Vec<(TcpStream, Instant)>, report: &mut FloodReport| {
        let mut buf = [0u8; 4096];
        open.retain_mut(|(s, at)| {
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break record_close(report, *at),
                    Ok(_) => continue, // Server data (TLS tickets, HTTP/2 settings): still open.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                    Err(_) => break record_close(report, *at),
                }
            }
        });
    };
    for i in 0..total {
        match connect_from(None, target, Duration::from_secs(5)) {
            Ok(s) => {
                let at = Instant::now();
                match start(s) {
                    Some(s) => {
                        s.set_nonblocking(true).expect("nonblocking");
                        open.push((s, at));
                    }
                    None => report.refused += 1,
                }
            }
            Err(_) => report.refused += 1,
        }
        if i % 100 == 99 {
            sweep(&mut open, &mut report);
        }
    }
    let last_connect = Instant::now();
    while !open.is_empty() && last_connect.elapsed() < FIRST_REQUEST_TIMEOUT * 3 {
        std::thread::sleep(Duration::from_millis(200));
        sweep(&mut open, &mut report);
    }
    report.never_closed = open.len();
    report
}

/// Records a connection the server closed; false (drop it from the open list).
fn record_close(report: &mut FloodReport, at: Instant) -> bool {
    let secs = at.elapsed().as_secs_f64();
    if secs > ADMITTED_AFTER.as_secs_f64() {
        report.admitted_closed_after_secs.push(secs);
    } else {
        report.refused += 1;
    }
    false
}

fn tls_client(ca_pem: &[u8], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.expect("CA PEM")).expect("CA");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// A client that behaves: logs in and lists the cameras every 300 ms, each time on a new
/// connection, from another address than the attacker's, until told to stop.
struct GoodClient {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Result<u16, String>>>,
}

impl GoodClient {
    fn start(base: String, ca_pem: Vec<u8>) -> GoodClient {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let ca = ureq::tls::Certificate::from_pem(&ca_pem).expect("CA PEM");
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(15)))
                .max_idle_connections(0)
                .tls_config(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
                        .build(),
                )
                .build()
                .into();
            let c = Client::login_with(agent, &base, "admin", ADMIN_PASSWORD);
            let mut results = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    c.get("/api/cameras", &[]).status
                }))
                .map_err(|_| "request failed".to_owned());
                results.push(r);
                std::thread::sleep(Duration::from_millis(300));
            }
            results
        });
        GoodClient { stop, thread }
    }

    fn finish(self) -> Vec<Result<u16, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("good client")
    }
}

/// Four cameras recording, a server limited to 1,024 open files, three floods of 5,000
/// connections from one address: idle TCP, a completed TLS handshake with the HTTP/2 preface
/// and nothing after, and TLS handshakes that stop half-way. A client on another address gets
/// every answer; each flood's admitted connections are closed by the first-request deadline;
/// every camera records one unbroken run with every received frame written.
#[test]
fn connection_floods_leave_the_server_answering_and_recording() {
    let fds = raise_fd_limit();
    let total = FLOOD_CONNECTIONS.min(usize::try_from(fds).unwrap_or(usize::MAX) - 256);
    let mut rec = Recorder::new();
    let cam = TestCam::start(
        &[
            "--mounts", "4", "--width", "320", "--height", "240", "--fps", "15",
        ],
        &rec.tmp.path().join("cam.log"),
    );
    for (i, url) in cam.urls.iter().enumerate() {
        let (code, out) = rec.add_camera(&format!("cam{i}"), url, None, true);
        assert_eq!(code, 0, "{out}");
    }
    // Every interface (so the good client can come from ::1 while the attacker is 127.0.0.1),
    // HTTPS, and the usual soft limit of a systemd service: 1,024 open files.
    rec.serve_wrapped(
        &["prlimit", "--nofile=1024:1024"],
        &["--listen", "[::]:0", "--tls"],
        "[::1]",
    );
    let port: u16 = rec
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let ca_pem = std::fs::read(rec.dir.join("tls/ca.pem")).expect("CA");
    let c = Client::login_with(agent_trusting(&ca_pem), &rec.base, "admin", ADMIN_PASSWORD);
    for id in 1..=4 {
        wait_for(Duration::from_secs(60), "all cameras recording", || {
            (c.get(&format!("/api/cameras/{id}"), &[]).json()["status"] == "recording")
                .then_some(())
        });
    }
    let good = GoodClient::start(rec.base.clone(), ca_pem.clone());

    let idle = flood(target, total, &|s| Some(s));
    let h2 = {
        let cfg = tls_client(&ca_pem, &[b"h2"]);
        flood(target, total, &move |s| {
            let conn = rustls::ClientConnection::new(
                cfg.clone(),
                rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"),
            )
            .ok()?;
            let mut tls = rustls::StreamOwned::new(conn, s);
            // The handshake completes on the first write; then the preface, then silence.
            tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").ok()?;
            tls.flush().ok()?;
            Some(tls.sock)
        })
    };
    let half_tls = flood(target, total, &|mut s| {
        // A TLS record header announcing a ClientHello, and the first bytes of it.
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
            .ok()?;
        Some(s)
    });
    let answers = good.finish();

    let summary = format!(
        "idle: {idle:?}\nh2 preface: {h2:?}\nhalf TLS: {half_tls:?}\ngood client: {} requests, {} failed",
        answers.len(),
        answers.iter().filter(|r| r != &&Ok(200)).count()
    );
    eprintln!("{summary}");
    for (what, r) in [
        ("idle", &idle),
        ("h2 preface", &h2),
        ("half TLS", &half_tls),
    ] {
        assert_eq!(
            r.never_closed, 0,
            "{what}: connections left open\n{summary}"
        );
        // The deadline is 10 s; the sweep and a loaded machine add a little.
        let latest = r
            .admitted_closed_after_secs
            .iter()
            .copied()
            .fold(0.0, f64::max);
        assert!(
            latest < FIRST_REQUEST_TIMEOUT.as_secs_f64() + 5.0,
            "{what}: an idle connection lived {latest:.1} s\n{summary}"
        );
        // The per-client cap (64) held the attacker to a few of its connections at once.
        assert!(
            r.admitted_closed_after_secs.len() < r.attempted / 4,
            "{what}: the server kept too many\n{summary}"
        );
    }
    assert!(answers.len() >= 20, "{summary}");
    assert!(
        answers.iter().all(|r| r == &Ok(200)),
        "the well-behaved client was refused\n{summary}"
    );
    // Recording went on: one run per camera, every received frame written but those in flight.
    for id in 1..=4 {
        let cam = c.get(&format!("/api/cameras/{id}"), &[]).json();
        let d = &cam["status_detail"];
        let (received, written) = (
            d["frames_received"].as_u64().expect("received"),
            d["frames_written"].as_u64().expect("written"),
        );
        assert!(received > 300, "camera {id}: {d}");
        assert!(written + 30 >= received, "camera {id}: {d}");
        assert_eq!(c.runs(id).len(), 1, "camera {id} was interrupted: {d}");
        assert_eq!(d["failures"], 0, "camera {id}: {d}");
    }
    assert!(rec.server.as_mut().expect("server").is_running());
}

/// A web page whose host name resolves to the recorder (DNS rebinding) sends its own name in
/// `Host`: refused. A recorder serving the LAN without any account wants the console's setup
/// code, once.
#[test]
fn foreign_hosts_are_refused_and_lan_setup_needs_the_console_code() {
    let mut rec = Recorder::new();
    rec.serve(&[]);
    let addr: SocketAddr = rec
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let mut s = connect_from(None, addr, Duration::from_secs(10)).expect("connect");
    let r = request(&mut s, "GET", "/", "evil.example:8080", &[], None).expect("response");
    assert_eq!(r.status, 421, "{:?}", String::from_utf8_lossy(&r.body));
    let mut s = connect_from(None, addr, Duration::from_secs(10)).expect("connect");
    let body = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let r = request(
        &mut s,
        "POST",
        "/api/login",
        "rebind.attacker.example",
        &[],
        Some(body.as_bytes()),
    )
    .expect("response");
    assert_eq!(r.status, 421);
    assert!(r.cookie().is_none(), "no session for a foreign host");
    for host in [addr.to_string(), format!("localhost:{}", addr.port())] {
        let mut s = connect_from(None, addr, Duration::from_secs(10)).expect("connect");
        let r = request(&mut s, "GET", "/api/setup", &host, &[], None).expect("response");
        assert_eq!(r.status, 200, "{host}");
    }

    // A fresh data directory served beyond loopback.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fresh");
    let d = dir.to_str().expect("utf8");
    let (code, out) = nvr(&["init", "--data-dir", d], None);
    assert_eq!(code, 0, "{out}");
    let init_code = out
        .lines()
        .find_map(|l| l.strip_prefix("first-run setup code: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("nvr init prints the setup code")
        .to_owned();
    let log = tmp.path().join("serve.log");
    let server = Proc::start(
        &[
            "serve",
            "--data-dir",
            d,
            "--listen",
            "0.0.0.0:0",
            "--insecure-http",
        ],
        &log,
    );
    let mut code = None;
    let line = server.wait_line(Duration::from_secs(60), |l| {
        if let Some(c) = l.strip_prefix("first-run setup code: ") {
            code = Some(c.trim().to_owned());
        }
        l.starts_with("nvr serving on ")
    });
    let code = code.expect("the setup code on the console");
    assert_eq!(code, init_code, "init and serve print the same code");
    let port: u16 = line
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let fresh = SocketAddr::from(([127, 0, 0, 1], port));
    let setup = |body: Value| {
        request_from(
            None,
            fresh,
            "POST",
            "/api/setup",
            &[],
            Some(body.to_string().as_bytes()),
            Duration::from_secs(30),
        )
        .expect("setup")
    };
    let state = request_from(
        None,
        fresh,
        "GET",
        "/api/setup",
        &[],
        None,
        Duration::from_secs(10),
    )
    .expect("state")
    .json();
    assert_eq!(state, json!({"needed": true, "code_required": true}));
    let without = setup(json!({"username": "mallory", "password": "long enough pw"}));
    assert_eq!(without.status, 403, "{:?}", without.json());
    let wrong = setup(
        json!({"username": "mallory", "password": "long enough pw", "setup_code": "AAAA-BBBB-CCCC"}),
    );
    assert_eq!(wrong.status, 403);
    let right =
        setup(json!({"username": "chief", "password": "long enough pw", "setup_code": code}));
    assert_eq!(right.status, 200, "{:?}", right.json());
    assert_eq!(right.json()["role"], "admin");
    let again =
        setup(json!({"username": "mallory", "password": "long enough pw", "setup_code": code}));
    assert_eq!(again.status, 409, "the code is good once");
    // The code went to the console only, never to the log.
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(!logged.contains(&code), "the setup code was logged");
    drop(server);
}

/// A guard watching live is disabled, demoted, deleted, logged out or has their password
/// reset: the stream ends (within 5 s; measured, it takes milliseconds). A password-change loop
/// racing a disable never undoes it.
#[test]
fn ended_sessions_end_live_views_and_password_loops_cannot_undo_a_disable() {
    use tungstenite::Message;
    use tungstenite::client::IntoClientRequest;
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    rec.serve(&[]);
    let admin = rec.client();
    wait_for(Duration::from_secs(30), "recording", || {
        (admin.cameras()[0]["status"] == "recording").then_some(())
    });
    let host = rec.base.trim_start_matches("http://").to_owned();
    let add = admin.post(
        "/api/users",
        json!({"username": "night", "password": "night-shift-pw", "role": "guard"}),
    );
    assert_eq!(add.status, 201, "{:?}", add.body.map(String::from_utf8));
    let night_id = add.json()["id"].as_i64().expect("id");
    let patch = |body: Value| {
        let r = admin.post_method("PATCH", &format!("/api/users/{night_id}"), body);
        assert_eq!(r.status, 200, "{:?}", r.body.map(String::from_utf8));
    };

    // Opens the live view as `c` and returns the socket once video flows.
    let watch = |c: &Client| {
        let mut req = format!("ws://{host}/api/cameras/1/live?codecs=h264")
            .into_client_request()
            .expect("request");
        req.headers_mut()
            .insert("Cookie", c.cookie_header().parse().expect("cookie"));
        req.headers_mut()
            .insert("Origin", rec.base.parse().expect("origin"));
        let (mut ws, _) = tungstenite::connect(req).expect("websocket");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
        }
        loop {
            if let Message::Binary(_) = ws.read().expect("video") {
                return ws;
            }
        }
    };
    // Reads until the server ends the stream; returns how long that took.
    let until_closed = |ws: &mut tungstenite::WebSocket<_>, since: Instant| -> Duration {
        loop {
            match ws.read() {
                Ok(Message::Close(_)) | Err(_) => return since.elapsed(),
                Ok(_) => assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "the stream went on"
                ),
            }
        }
    };

    let mut took = Vec::new();
    for action in ["disable", "demote", "password reset", "logout", "delete"] {
        if action == "demote" {
            patch(json!({"role": "evidence"}));
        }
        let night = Client::login(&rec.base, "night", "night-shift-pw");
        let mut ws = watch(&night);
        let t = Instant::now();
        match action {
            "disable" => patch(json!({"disabled": true})),
            "demote" => patch(json!({"role": "guard"})),
            "password reset" => patch(json!({"password": "night-shift-pw"})),
            "logout" => assert_eq!(night.post("/api/logout", json!({})).status, 204),
            _ => {
                let r = admin.post_method("DELETE", &format!("/api/users/{night_id}"), json!({}));
                assert_eq!(r.status, 204);
            }
        }
        let d = until_closed(&mut ws, t);
        took.push((action, d));
        if action == "disable" {
            patch(json!({"disabled": false}));
        }
    }
    eprintln!("stream ended after: {took:?}");
    for (action, d) in &took {
        assert!(
            *d < Duration::from_secs(5),
            "{action}: the live view lasted {d:?}"
        );
    }

    // A password-change loop racing a disable, many times: the disable always wins.
    let add = admin.post(
        "/api/users",
        json!({"username": "looper", "password": "looper-pw-0", "role": "guard"}),
    );
    assert_eq!(add.status, 201);
    let id = add.json()["id"].as_i64().expect("id");
    for round in 0..10u64 {
        let r = admin.post_method(
            "PATCH",
            &format!("/api/users/{id}"),
            json!({"disabled": false, "password": "looper-pw-0"}),
        );
        assert_eq!(r.status, 200);
        let looper = Client::login(&rec.base, "looper", "looper-pw-0");
        let looping = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let mut current = "looper-pw-0".to_owned();
                let mut changed = 0;
                for i in 1..=8 {
                    let new = format!("looper-pw-{round}-{i}");
                    let r =
                        looper.post("/api/me/password", json!({"current": current, "new": new}));
                    if r.status != 204 {
                        break;
                    }
                    current = new;
                    changed += 1;
                }
                changed
            });
            std::thread::sleep(Duration::from_millis(50 * round));
            let r = admin.post_method(
                "PATCH",
                &format!("/api/users/{id}"),
                json!({"disabled": true}),
            );
            assert_eq!(r.status, 200);
            h.join().expect("loop")
        });
        let users = admin.get("/api/users", &[]).json();
        let row = users
            .as_array()
            .and_then(|a| a.iter().find(|u| u["id"] == id).cloned())
            .expect("user");
        assert_eq!(
            row["disabled"], true,
            "round {round}: the disable was undone after {looping} changes"
        );
    }
}

/// Footage under an evidence hold stops a camera's deletion (409, nothing deleted); released,
/// the camera goes, audited, and `nvr check` stays clean. Retention 0 keeps everything, whether
/// it comes from the command line, the configuration file or the API.
#[test]
fn held_footage_stops_camera_deletion_and_retention_zero_keeps_everything() {
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    let config = rec.tmp.path().join("nvr.toml");
    std::fs::write(
        &config,
        "[retention]\nmax_bytes_per_camera = 0\nmax_age_days = 0\ninterval_secs = 1\n",
    )
    .expect("config");
    rec.serve(&[
        "--config",
        config.to_str().expect("utf8"),
        "--retain-max-bytes",
        "0",
        "--segment-duration-secs",
        "2",
    ]);
    let c = rec.client();
    let segments = |c: &Client| -> usize {
        c.runs(1)
            .iter()
            .map(|r| r["segments"].as_u64().unwrap_or(0) as usize)
            .sum()
    };
    wait_for(Duration::from_secs(60), "a few segments", || {
        (segments(&c) >= 4).then_some(())
    });
    // 0 through the API: nothing to confirm, nothing deleted.
    let r = c.post_method(
        "PATCH",
        "/api/cameras/1",
        json!({"retain_max_bytes": 0, "retain_max_age_days": 0}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body.map(String::from_utf8));
    assert_eq!(r.json()["retention"]["max_bytes"], Value::Null);
    assert_eq!(r.json()["retention"]["max_age_days"], Value::Null);
    let before = segments(&c);
    // Several retention passes (every second) later, everything is still there.
    std::thread::sleep(Duration::from_secs(5));
    let after = segments(&c);
    assert!(
        after >= before,
        "retention 0 deleted footage: {before} -> {after}"
    );
    let runs = c.runs(1);
    assert_eq!(runs.len(), 1);

    // A hold over the first seconds.
    let start = runs[0]["start"].as_str().expect("start").to_owned();
    let end = rfc3339(parse_rfc3339(&start) as i64 + 3);
    let r = c.post(
        "/api/holds",
        json!({"camera": 1, "start": start, "end": end, "case": "c-1", "reason": "fight"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body.map(String::from_utf8));
    let hold = r.json()["id"].as_i64().expect("hold id");
    let files_before = files_under(&rec.dir.join("segments")).len();
    let r = c.post_method("DELETE", "/api/cameras/1?delete_recordings=true", json!({}));
    assert_eq!(r.status, 409, "{:?}", r.body.map(String::from_utf8));
    assert_eq!(r.json()["kind"], "held");
    assert_eq!(r.json()["holds"], json!([hold]));
    assert!(files_under(&rec.dir.join("segments")).len() >= files_before);
    let cam = c.get("/api/cameras/1", &[]);
    assert_eq!(cam.status, 200);
    assert_eq!(cam.json()["enabled"], true, "still recording");

    assert_eq!(
        c.post(&format!("/api/holds/{hold}/release"), json!({}))
            .status,
        204
    );
    let r = c.post_method("DELETE", "/api/cameras/1?delete_recordings=true", json!({}));
    assert_eq!(r.status, 204, "{:?}", r.body.map(String::from_utf8));
    assert_eq!(c.get("/api/cameras/1", &[]).status, 404);
    let audit = c.get("/api/audit?action=camera_delete", &[]).json();
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    assert!(
        audit[0]["detail"]["segments"].as_array().map(Vec::len) >= Some(4),
        "{audit}"
    );
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
    assert!(files_under(&rec.dir.join("segments")).is_empty());
}
