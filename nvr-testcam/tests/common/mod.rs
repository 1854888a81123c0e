//! Helpers shared by the integration tests: small camera configs and real RTSP clients
//! (ffprobe/ffmpeg processes, retina, and a raw RTSP request for auth checks).

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use futures::StreamExt;
use nvr_testcam::{Codec, TestCamConfig};
use retina::client::{Credentials, PlayOptions, SessionOptions, SetupOptions, Transport};
use retina::codec::CodecItem;

/// How long any single client operation may take before the test gives up.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A small, fast camera on a free port: 320×240, 10 fps, key frame every 5 frames,
/// a 1 s replay clip (2 GOPs).
pub fn small_config(codec: Codec) -> TestCamConfig {
    TestCamConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        codec,
        width: 320,
        height: 240,
        fps: 10,
        bitrate_kbps: 300,
        keyint_frames: 5,
        replay_secs: 1,
        ..TestCamConfig::default()
    }
}

/// Runs a command, failing the test if it cannot be spawned.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `ffprobe -show_streams` as parsed JSON.
pub fn ffprobe_streams(url: &str) -> Result<serde_json::Value, String> {
    let out = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-timeout",
        "15000000",
        "-rtsp_transport",
        "tcp",
        "-show_streams",
        "-of",
        "json",
        url,
    ]));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// The stream of `ffprobe_streams` output with the given codec type.
pub fn stream<'a>(streams: &'a serde_json::Value, codec_type: &str) -> &'a serde_json::Value {
    streams["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["codec_type"] == codec_type))
        .unwrap_or_else(|| panic!("no {codec_type} stream in {streams}"))
}

/// Copies `secs` seconds of the video elementary stream (Annex B) via ffmpeg.
pub fn ffmpeg_elementary_stream(url: &str, format: &str, secs: u32) -> Vec<u8> {
    let out = run(Command::new("ffmpeg").args([
        "-v",
        "error",
        "-timeout",
        "15000000",
        "-rtsp_transport",
        "tcp",
        "-i",
        url,
        "-t",
        &secs.to_string(),
        "-map",
        "0:v",
        "-c",
        "copy",
        "-f",
        format,
        "-",
    ]));
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// NAL unit types (H.265 numbering) found after start codes in an Annex B stream.
pub fn h265_nal_types(annex_b: &[u8]) -> Vec<u8> {
    annex_b
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| (w[3] >> 1) & 0x3f)
        .collect()
}

/// One video frame as a retina client saw it.
#[derive(Debug, Clone)]
pub struct SeenFrame {
    /// RTP timestamp, extended to 64 bits (wraparound-free).
    pub timestamp: i64,
    /// Whether the frame is a random access point.
    pub key: bool,
}

/// Reads `count` video frames with retina over TCP interleaved.
pub async fn retina_frames(
    url: &str,
    creds: Option<Credentials>,
    count: usize,
) -> Result<Vec<SeenFrame>, String> {
    tokio::time::timeout(CLIENT_TIMEOUT, retina_frames_inner(url, creds, count))
        .await
        .map_err(|_| format!("timed out reading {count} frames from {url}"))?
}

async fn retina_frames_inner(
    url: &str,
    creds: Option<Credentials>,
    count: usize,
) -> Result<Vec<SeenFrame>, String> {
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let mut session =
        retina::client::Session::describe(url, SessionOptions::default().creds(creds))
            .await
            .map_err(|e| e.to_string())?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video")
        .ok_or("no video stream")?;
    session
        .setup(
            video,
            SetupOptions::default().transport(Transport::Tcp(Default::default())),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| e.to_string())?
        .demuxed()
        .map_err(|e| e.to_string())?;
    let mut frames = Vec::with_capacity(count);
    while frames.len() < count {
        match demuxed.next().await {
            Some(Ok(CodecItem::VideoFrame(f))) => frames.push(SeenFrame {
                timestamp: f.timestamp().timestamp(),
                key: f.is_random_access_point(),
            }),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("stream ended".into()),
        }
    }
    Ok(frames)
}

/// Asserts RTP timestamps strictly increase.
pub fn assert_increasing(frames: &[SeenFrame]) {
    for pair in frames.windows(2) {
        assert!(
            pair[1].timestamp > pair[0].timestamp,
            "timestamp went from {} to {}: {frames:?}",
            pair[0].timestamp,
            pair[1].timestamp
        );
    }
}

/// A raw RTSP connection, for checking authentication byte by byte.
pub struct RawRtsp {
    stream: TcpStream,
    cseq: u32,
}

impl RawRtsp {
    /// Connects to the host and port of `url`.
    pub fn connect(url: &str) -> Self {
        let parsed = url::Url::parse(url).unwrap();
        let stream =
            TcpStream::connect((parsed.host_str().unwrap(), parsed.port().unwrap())).unwrap();
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        Self { stream, cseq: 0 }
    }

    /// Sends a DESCRIBE with `extra_headers` (each ending in CRLF) and returns the
    /// response head (status line and headers).
    pub fn describe(&mut self, url: &str, extra_headers: &str) -> String {
        self.cseq += 1;
        write!(
            self.stream,
            "DESCRIBE {url} RTSP/1.0\r\nCSeq: {}\r\nAccept: application/sdp\r\n{extra_headers}\r\n",
            self.cseq
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.stream.read(&mut byte).unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        String::from_utf8_lossy(&head).into_owned()
    }
}

/// Sends one raw DESCRIBE on a new connection; returns the response head.
pub fn raw_describe(url: &str, extra_headers: &str) -> String {
    RawRtsp::connect(url).describe(url, extra_headers)
}

/// Answers the Digest challenge of a 401 response on the same connection (RFC 2617
/// without qop, as GStreamer offers it); returns the response head.
pub fn raw_digest_describe(url: &str, user: &str, pass: &str) -> String {
    let md5 = |s: String| {
        gstreamer::glib::compute_checksum_for_string(gstreamer::glib::ChecksumType::Md5, s)
            .unwrap()
            .to_string()
    };
    let mut conn = RawRtsp::connect(url);
    let challenge = conn.describe(url, "");
    assert_eq!(status(&challenge), 401, "{challenge}");
    let digest = challenge
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate: Digest "))
        .unwrap_or_else(|| panic!("no Digest challenge: {challenge}"));
    let param = |name: &str| {
        let start = digest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        digest[start..].split('"').next().unwrap().to_owned()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let ha1 = md5(format!("{user}:{realm}:{pass}"));
    let ha2 = md5(format!("DESCRIBE:{url}"));
    let response = md5(format!("{ha1}:{nonce}:{ha2}"));
    conn.describe(
        url,
        &format!(
            "Authorization: Digest username=\"{user}\", realm=\"{realm}\", \
             nonce=\"{nonce}\", uri=\"{url}\", response=\"{response}\"\r\n"
        ),
    )
}

/// The status code of a raw RTSP response.
pub fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an RTSP response: {response:?}"))
}
