//! Helpers of the end-to-end tests: the real `nvr` binary as test camera and recorder, an HTTP
//! client that logs in like the UI, and `ffprobe` to check what we serve.

#![allow(dead_code)] // Each test file uses a different subset.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod hostile;
pub mod lan;

pub const NVR: &str = env!("CARGO_BIN_EXE_nvr");
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

/// Runs `nvr ARGS` to completion with optional stdin; returns (exit code, stdout + stderr).
pub fn nvr(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(NVR);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn nvr");
    if let Some(s) = stdin {
        use std::io::Write;
        let mut i = child.stdin.take().expect("stdin");
        writeln!(i, "{s}").expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait nvr");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub stdout_lines: std::sync::mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `nvr ARGS`, logging stderr to `log`.
    pub fn start(args: &[&str], log: &Path) -> Proc {
        Self::start_program(NVR, args, log)
    }

    /// Starts `program ARGS` (e.g. `strace ... nvr serve`), logging stderr to `log`.
    pub fn start_program(program: &str, args: &[&str], log: &Path) -> Proc {
        Self::start_program_env(program, args, &[], log)
    }

    /// Like [`Proc::start_program`], with extra environment variables.
    pub fn start_program_env(
        program: &str,
        args: &[&str],
        env: &[(String, String)],
        log: &Path,
    ) -> Proc {
        let log = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn nvr");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            stdout_lines: rx,
        }
    }

    /// Waits for a stdout line satisfying `f`; panics after `timeout`.
    pub fn wait_line(&self, timeout: Duration, mut f: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(l) if f(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!("no matching output line within {timeout:?}"),
            }
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful path.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running `nvr testcam`.
pub struct TestCam {
    pub proc: Proc,
    pub urls: Vec<String>,
    /// Each mount's sub-stream (`/camN_sub`), unless started with `--no-sub`.
    pub sub_urls: Vec<String>,
    pub port: u16,
}

impl TestCam {
    pub fn start(extra: &[&str], log: &Path) -> TestCam {
        Self::start_on("127.0.0.1:0", extra, log)
    }

    pub fn start_on(listen: &str, extra: &[&str], log: &Path) -> TestCam {
        let mut args = vec!["testcam", "--listen", listen];
        args.extend_from_slice(extra);
        let proc = Proc::start(&args, log);
        let mut urls = Vec::new();
        let mut sub_urls = Vec::new();
        proc.wait_line(Duration::from_secs(120), |l| {
            if l.starts_with("rtsp://") {
                urls.push(l.to_owned());
            }
            if let Some(sub) = l.strip_prefix("sub ") {
                sub_urls.push(sub.to_owned());
            }
            l == "testcam ready"
        });
        let port = urls[0]
            .trim_start_matches("rtsp://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in URL");
        TestCam {
            proc,
            urls,
            sub_urls,
            port,
        }
    }
}

/// A test camera started with `testcam_args` (its log beside the recorder's) and a recorder
/// with its first mount added as `cam` (probed first, as `camera add` does).
pub fn recorder_with_camera(testcam_args: &[&str]) -> (TestCam, Recorder) {
    let rec = Recorder::new();
    let cam = TestCam::start(testcam_args, &rec.tmp.path().join("cam.log"));
    let (code, out) = rec.add_camera("cam", &cam.urls[0], None, false);
    assert_eq!(code, 0, "{out}");
    (cam, rec)
}

/// A data directory with an admin, and a way to run `nvr serve` on it.
pub struct Recorder {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    /// What `nvr init` printed.
    pub init_output: String,
    pub server: Option<Proc>,
    pub base: String,
    serve_args: Vec<String>,
    /// Environment variables of `nvr serve` (test seams such as a slow seal).
    pub serve_env: Vec<(String, String)>,
}

impl Recorder {
    pub fn new() -> Recorder {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        Self::with_dirs(tmp, dir)
    }

    /// A recorder whose data directory is `dir` (which must not exist yet), e.g. on a file
    /// system the test mounted; logs go to a temporary directory of its own.
    pub fn new_in(dir: PathBuf) -> Recorder {
        Self::with_dirs(tempfile::tempdir().expect("tempdir"), dir)
    }

    fn with_dirs(tmp: tempfile::TempDir, dir: PathBuf) -> Recorder {
        let d = dir.to_str().expect("utf8");
        let (code, init_output) = nvr(&["init", "--data-dir", d], None);
        assert_eq!(code, 0, "{init_output}");
        let (code, out) = nvr(
            &[
                "user",
                "add",
                "--data-dir",
                d,
                "--username",
                "admin",
                "--role",
                "admin",
                "--password-stdin",
            ],
            Some(ADMIN_PASSWORD),
        );
        assert_eq!(code, 0, "{out}");
        Recorder {
            tmp,
            dir,
            init_output,
            server: None,
            base: String::new(),
            serve_args: Vec::new(),
            serve_env: Vec::new(),
        }
    }

    pub fn d(&self) -> &str {
        self.dir.to_str().expect("utf8")
    }

    /// `nvr camera add` (with `--skip-probe` and a password when given).
    pub fn add_camera(
        &self,
        name: &str,
        url: &str,
        creds: Option<(&str, &str)>,
        skip_probe: bool,
    ) -> (i32, String) {
        let mut args = vec![
            "camera",
            "add",
            "--data-dir",
            self.d(),
            "--name",
            name,
            "--url",
            url,
        ];
        if let Some((u, _)) = creds {
            args.extend(["--username", u, "--password-stdin"]);
        }
        if skip_probe {
            args.push("--skip-probe");
        }
        nvr(&args, creds.map(|(_, p)| p))
    }

    /// Starts `nvr serve` with extra flags and waits until it listens. `self.base` becomes
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn serve(&mut self, extra: &[&str]) {
        self.serve_args = extra.iter().map(|s| s.to_string()).collect();
        self.start_server();
    }

    /// Like [`Recorder::serve`], under `strace -f -e trace=connect` writing to `trace`; returns
    /// the strace process (kill the recorder, its child, to end it).
    pub fn serve_traced(&mut self, trace: &Path, extra: &[&str]) -> u32 {
        let log = self.tmp.path().join("serve-traced.log");
        let mut args = vec![
            "-f",
            "-qq",
            "-e",
            "trace=connect",
            "-o",
            trace.to_str().expect("utf8"),
            NVR,
            "serve",
            "--data-dir",
            self.d(),
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let proc = Proc::start_program("strace", &args, &log);
        let line = proc.wait_line(Duration::from_secs(60), |l| {
            l.starts_with("nvr serving on ")
        });
        self.base = line
            .trim_start_matches("nvr serving on ")
            .trim_end_matches('/')
            .to_owned();
        let pid = proc.child.id();
        self.server = Some(proc);
        pid
    }

    fn start_server(&mut self) {
        let log = self.tmp.path().join(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        ));
        let mut args = vec!["serve", "--data-dir", self.d(), "--listen", "127.0.0.1:0"];
        args.extend(self.serve_args.iter().map(String::as_str));
        let proc = Proc::start_program_env(NVR, &args, &self.serve_env, &log);
        let line = proc.wait_line(Duration::from_secs(60), |l| {
            l.starts_with("nvr serving on ")
        });
        self.base = line
            .trim_start_matches("nvr serving on ")
            .trim_end_matches('/')
            .to_owned();
        self.server = Some(proc);
    }

    /// Starts `nvr serve` as `wrapper... nvr serve --data-dir D ARGS` (e.g. under `prlimit` or
    /// `ip netns exec`; `args` must give `--listen`) and waits until it listens. `self.base`
    /// becomes the printed URL, with an unspecified address replaced by `base_host`.
    pub fn serve_wrapped(&mut self, wrapper: &[&str], args: &[&str], base_host: &str) {
        let log = self.tmp.path().join(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        ));
        let (program, pre) = match wrapper.split_first() {
            Some((p, rest)) => (*p, rest.to_vec()),
            None => (NVR, Vec::new()),
        };
        let mut all: Vec<&str> = pre;
        if !wrapper.is_empty() {
            all.push(NVR);
        }
        all.extend(["serve", "--data-dir", self.d()]);
        all.extend_from_slice(args);
        let proc = Proc::start_program(program, &all, &log);
        let line = proc.wait_line(Duration::from_secs(60), |l| {
            l.starts_with("nvr serving on ")
        });
        let url = line
            .trim_start_matches("nvr serving on ")
            .trim_end_matches('/')
            .to_owned();
        self.base = url.replace("[::]", base_host).replace("0.0.0.0", base_host);
        self.server = Some(proc);
    }

    pub fn restart(&mut self) {
        self.start_server();
    }

    pub fn kill9(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill9();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.terminate();
        }
    }

    pub fn check(&self) -> (i32, String) {
        nvr(&["check", "--data-dir", self.d()], None)
    }

    /// The current signing key's fingerprint, as `nvr key show` prints it.
    pub fn key_fingerprint(&self) -> String {
        let (code, out) = nvr(&["key", "show", "--data-dir", self.d()], None);
        assert_eq!(code, 0, "{out}");
        fingerprint_after(&out, "current signing key: ")
    }

    pub fn client(&self) -> Client {
        Client::login(&self.base, "admin", ADMIN_PASSWORD)
    }
}

/// An HTTP client logged in like the UI: session cookie plus CSRF token.
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
    cookie: String,
    csrf: String,
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, or the error that cut it short.
    pub body: Result<Vec<u8>, String>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(self.body.as_ref().expect("body")).expect("json")
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// An agent that trusts only the given CA (PEM) for HTTPS.
pub fn agent_trusting(ca_pem: &[u8]) -> ureq::Agent {
    let ca = ureq::tls::Certificate::from_pem(ca_pem).expect("CA PEM");
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
                .build(),
        )
        .build()
        .into()
}

fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> HttpResponse {
    let mut r = r.expect("HTTP request");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 31)
        .read_to_vec()
        .map_err(|e| e.to_string());
    HttpResponse {
        status,
        headers,
        body,
    }
}

impl Client {
    pub fn login(base: &str, user: &str, password: &str) -> Client {
        Self::login_with(agent(), base, user, password)
    }

    pub fn login_with(agent: ureq::Agent, base: &str, user: &str, password: &str) -> Client {
        let r = finish(
            agent
                .post(format!("{base}/api/login"))
                .send_json(json!({"username": user, "password": password})),
        );
        assert_eq!(r.status, 200, "login: {:?}", r.body.map(String::from_utf8));
        let set_cookie = r.header("set-cookie").expect("cookie").to_owned();
        if base.starts_with("https://") {
            assert!(set_cookie.contains("; Secure"), "{set_cookie}");
        }
        let cookie = set_cookie.split(';').next().expect("pair").to_owned();
        let csrf = r.json()["csrf_token"].as_str().expect("csrf").to_owned();
        Client {
            base: base.to_owned(),
            agent,
            cookie,
            csrf,
        }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let mut req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        finish(req.call())
    }

    pub fn post(&self, path: &str, body: Value) -> HttpResponse {
        finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Cookie", &self.cookie)
                .header("X-CSRF-Token", &self.csrf)
                .send_json(body),
        )
    }

    /// A request with a JSON body and any method (PATCH, DELETE, ...).
    pub fn post_method(&self, method: &str, path: &str, body: Value) -> HttpResponse {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Cookie", &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .expect("request");
        finish(self.agent.run(req))
    }

    /// The `Cookie` header value of this session.
    pub fn cookie_header(&self) -> &str {
        &self.cookie
    }

    pub fn cameras(&self) -> Value {
        let r = self.get("/api/cameras", &[]);
        assert_eq!(r.status, 200);
        r.json()
    }

    /// Runs of camera `id` over the last `hours` hours and the next minute.
    pub fn runs(&self, id: i64) -> Vec<Value> {
        let (s, e) = recent_range();
        let r = self.get(
            &format!("/api/cameras/{id}/recordings?start={s}&end={e}"),
            &[],
        );
        assert_eq!(r.status, 200, "{:?}", r.body.map(String::from_utf8));
        r.json()["runs"].as_array().cloned().unwrap_or_default()
    }
}

/// RFC 3339 bounds covering the last 12 hours and the next minute.
pub fn recent_range() -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    (rfc3339(now - 12 * 3600), rfc3339(now + 60))
}

/// Formats Unix seconds as RFC 3339 UTC (no external crate: civil-from-days).
pub fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// The fingerprint that follows `label` on a line of `out` (up to the next blank).
pub fn fingerprint_after(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label:?} line in {out}"))
        .to_owned()
}

/// Polls `f` every 500 ms until it returns Some, or panics after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What ffprobe says about a video file's first video stream.
#[derive(Debug)]
pub struct Probe {
    pub codec: String,
    pub width: u64,
    pub height: u64,
    pub frames: u64,
}

pub fn ffprobe(path: &Path) -> Result<Probe, String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .map_err(|e| format!("running ffprobe (install ffmpeg): {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let s = &v["streams"][0];
    Ok(Probe {
        codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
        width: s["width"].as_u64().unwrap_or(0),
        height: s["height"].as_u64().unwrap_or(0),
        frames: s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

/// Wall seconds between two RFC 3339 times as the API gives them.
pub fn secs_between(start: &str, end: &str) -> f64 {
    parse_rfc3339(end) - parse_rfc3339(start)
}

/// Parses the API's `YYYY-MM-DDTHH:MM:SS.mmmZ` into Unix seconds.
pub fn parse_rfc3339(s: &str) -> f64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').expect("T");
    let mut d = date.split('-').map(|x| x.parse::<i64>().expect("date"));
    let (y, m, day) = (
        d.next().expect("y"),
        d.next().expect("m"),
        d.next().expect("d"),
    );
    let mut t = time.split(':');
    let (h, min) = (
        t.next().expect("h").parse::<f64>().expect("h"),
        t.next().expect("m").parse::<f64>().expect("m"),
    );
    let sec: f64 = t.next().expect("s").parse().expect("s");
    // days-from-civil
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + sec
}

/// One field of /proc/PID/status, in KiB (`VmRSS`: resident now, `VmHWM`: its peak).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Resets the process's peak resident size (VmHWM) to its current size, so the peak measured
/// later is the hostile period's; if the kernel refuses, the later peak includes start-up's,
/// which only makes the check stricter.
pub fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The text of every `nvr serve` log in `dir` (the recorder's temporary directory).
pub fn serve_logs(dir: &Path) -> String {
    let mut log = String::new();
    for f in files_under(dir) {
        if f.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("serve-") && n.ends_with(".log"))
        {
            log.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
        }
    }
    log
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Finds the first box named `name` anywhere in an MP4 (a naive scan for the fourcc).
pub fn find_box<'a>(mp4: &'a [u8], name: &[u8; 4]) -> Option<&'a [u8]> {
    let at = mp4.windows(4).position(|w| w == name)?;
    let size = u32::from_be_bytes(mp4[at - 4..at].try_into().ok()?) as usize;
    mp4.get(at + 4..at - 4 + size)
}
