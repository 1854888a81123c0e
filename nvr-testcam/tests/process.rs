//! Tests of the `nvr-testcam` process (the `run` entry point): the stdout protocol,
//! clean exit on SIGTERM/SIGINT, restart on the same port right after SIGKILL, and
//! errors for bad options.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_nvr-testcam");

/// Small-camera flags, listening on `port`.
fn args(port: u16) -> Vec<String> {
    [
        format!("--listen=127.0.0.1:{port}"),
        "--mounts=2".into(),
        "--width=320".into(),
        "--height=240".into(),
        "--fps=10".into(),
        "--keyint-frames=5".into(),
        "--replay-secs=1".into(),
    ]
    .into()
}

/// A camera process; killed and reaped on drop so a failing test leaves nothing behind.
struct Cam {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Cam {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns the camera and reads stdout up to `testcam ready`; returns the lines.
fn spawn(port: u16) -> (Cam, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args(port))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut cam = Cam { child, stdout };
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            cam.stdout.read_line(&mut line).unwrap(),
            0,
            "EOF after {lines:?}"
        );
        let line = line.trim_end().to_owned();
        let ready = line == "testcam ready";
        lines.push(line);
        if ready {
            return (cam, lines);
        }
    }
}

/// Sends a signal by name with kill(1) (no unsafe code needed).
fn signal(cam: &Cam, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), cam.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Checks the exact status lines and returns the port.
fn check_lines(lines: &[String]) -> u16 {
    assert_eq!(lines.len(), 6, "{lines:?}");
    let port: u16 = lines[0]
        .strip_prefix("testcam listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad first line: {lines:?}"));
    assert_eq!(lines[1], format!("rtsp://127.0.0.1:{port}/cam1"));
    assert_eq!(lines[2], format!("rtsp://127.0.0.1:{port}/cam2"));
    assert_eq!(lines[3], format!("sub rtsp://127.0.0.1:{port}/cam1_sub"));
    assert_eq!(lines[4], format!("sub rtsp://127.0.0.1:{port}/cam2_sub"));
    port
}

#[test]
fn prints_urls_and_exits_cleanly_on_sigterm_and_sigint() {
    for sig in ["TERM", "INT"] {
        let (mut cam, lines) = spawn(0);
        let port = check_lines(&lines);
        let streams = ffprobe_streams(&format!("rtsp://127.0.0.1:{port}/cam2")).unwrap();
        assert_eq!(stream(&streams, "video")["codec_name"], "h264");
        signal(&cam, sig);
        let status = cam.child.wait().unwrap();
        assert!(status.success(), "SIG{sig}: {status}");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut cam.stdout, &mut rest).unwrap();
        assert_eq!(rest, "", "nothing else on stdout");
    }
}

#[test]
fn restarts_on_the_same_port_right_after_sigkill() {
    let (mut cam, lines) = spawn(0);
    let port = check_lines(&lines);
    // A client connection in progress when the camera dies.
    let streams = ffprobe_streams(&format!("rtsp://127.0.0.1:{port}/cam1")).unwrap();
    assert_eq!(stream(&streams, "video")["codec_name"], "h264");
    let _reader = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    cam.child.kill().unwrap();
    cam.child.wait().unwrap();

    let (mut cam, lines) = spawn(port);
    assert_eq!(check_lines(&lines), port);
    let streams = ffprobe_streams(&format!("rtsp://127.0.0.1:{port}/cam1")).unwrap();
    assert_eq!(stream(&streams, "video")["codec_name"], "h264");
    signal(&cam, "TERM");
    assert!(cam.child.wait().unwrap().success());
}

#[test]
fn bad_options_fail_with_a_clear_message() {
    for (flags, expected) in [
        (vec!["--mounts=0"], "--mounts"),
        (vec!["--fps=500"], "--fps"),
        (vec!["--open-gop"], "--open-gop"),
        (vec!["--codec=vp8"], "--codec"),
        (vec!["--username=admin"], "--password"),
    ] {
        let out = run(Command::new(BIN).args(&flags).env("RUST_LOG", "off"));
        assert!(!out.status.success(), "{flags:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{flags:?}");
    }
}
