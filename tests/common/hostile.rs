//! A hostile RTSP camera for the end-to-end tests: a small hand-written RTSP server (OPTIONS,
//! DESCRIBE, SETUP, PLAY over one TCP connection, RTP interleaved on channels 0-1) that can
//! stream valid H.264 or misbehave in one of several ways ([`Mode`]).
//!
//! The valid video is real: a short clip is encoded once per test process with GStreamer's
//! x264enc (`gst-launch-1.0`), split into NAL units and access units, and packetized here as
//! single-NAL and FU-A RTP packets (RFC 6184) with 90 kHz timestamps and the marker bit on the
//! last packet of each access unit. The clip is looped with increasing timestamps.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The dynamic payload type announced in the SDP.
pub const PAYLOAD_TYPE: u8 = 96;
/// Frames per second of the clip.
pub const FPS: u32 = 15;
const TICKS_PER_FRAME: u32 = 90_000 / FPS;
/// Largest RTP payload for the valid stream; bigger NAL units are sent as FU-A fragments.
const MAX_PAYLOAD: usize = 1400;
const SSRC: u32 = 0x4e56_5221;
/// How fast the flooding modes send (bytes per second): fast enough that a recorder which
/// buffers without bound grows by hundreds of MiB within the 10 s stall timeout, slow enough
/// not to starve the other scenarios running beside it on two cores.
pub const FLOOD_BYTES_PER_SEC: usize = 48 << 20;
/// The size of each access unit in [`Mode::HugeFrames`]: ~8 MiB, just under retina's bound on
/// its read buffer (8 MiB), which holds the frame in assembly together with its RTP and
/// interleaved headers, the start of the next packet and a 4 KiB read reserve; 256 KiB less
/// leaves room for those, so every frame is accepted.
pub const HUGE_ACCESS_UNIT_BYTES: usize = (8 << 20) - (256 << 10);
/// The RTP payload size in [`Mode::HugeFrames`]: near the most one interleaved frame carries
/// (65535 bytes less the 12-byte RTP header), so an access unit is ~130 packets, not ~6000.
const HUGE_MAX_PAYLOAD: usize = 65_000;

/// How the camera misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A well-behaved camera: valid H.264, forever.
    Normal,
    /// DESCRIBE answers `application/sdp` whose body is binary garbage.
    GarbageSdp,
    /// A valid SDP without any `m=` line.
    NoMediaSdp,
    /// An `m=video` line with an empty format list (`m=video 0 RTP/AVP ` then spaces).
    EmptyFormatSdp,
    /// An `a=fmtp` line with absurd values: ~100 KiB of `sprop-parameter-sets` garbage, an
    /// unknown packetization mode and a malformed profile-level-id; then valid video (with its
    /// parameter sets in band).
    AbsurdFmtp,
    /// An `a=rtpmap` with an absurd clock rate (H264/4294967295).
    AbsurdClockRate,
    /// Valid video, then audio-like packets with payload type 0 (PCMU) on the video channel.
    WrongPayloadType,
    /// Valid video, then one FU-A fragmented NAL unit that never ends: fragments of ~64 KiB
    /// with the same timestamp, consecutive sequence numbers, no end bit, no marker, forever.
    EndlessFragment,
    /// Valid video, then a lie about a size, a different one on each connection in turn: a
    /// STAP-A NAL unit length beyond the packet, an RTP header-extension length beyond the
    /// packet, an interleaved frame whose 16-bit length swallows the frames after it.
    HugeLengths,
    /// Valid video whose RTP timestamps (and sequence numbers) start just below 2^32 (2^16)
    /// and wrap after ~3 s: legal, must keep recording. Its parameter sets are only in the
    /// SDP (`sprop-parameter-sets`), not in band, as with many cameras.
    TimestampWrap,
    /// Valid video for ~3 s, then the RTP timestamps go back by 5 s (and carry on from there).
    BackwardJump,
    /// Valid video for ~3 s, then the RTP timestamps jump forward by 60 s.
    ForwardJump,
    /// Valid video with packets on unknown interleaved channels mixed in, then bytes that are
    /// neither RTSP nor `$`-framed data.
    InterleavedGarbage,
    /// Valid H.264 whose access units are each [`HUGE_ACCESS_UNIT_BYTES`] (~8 MiB, the most
    /// retina assembles): a frame of the clip followed by a filler-data NAL unit (type 12)
    /// making up the rest, as FU-A fragments, sent as fast as the socket takes them. The RTP
    /// timestamps follow the wall clock, so the media time stays true at any rate.
    HugeFrames,
    /// Valid video beside a G.711 (PCMA) audio stream in the SDP, and a PLAY answer whose
    /// RTP-Info names only the video (`rtptime` missing for the audio, as some cameras do);
    /// no audio is sent.
    AudioWithoutRtptime,
    /// Valid video beside an AAC audio stream whose every packet is malformed (an AU-headers
    /// length far beyond the packet), sent with each frame on the audio's channel.
    GarbageAudio,
    /// Valid video, then an RTSP message that never ends: a `Content-Length` of 1 TiB (even
    /// connections) or a header line without end (odd connections), sent forever.
    EndlessRtspMessage,
}

impl Mode {
    fn streams(self) -> bool {
        !matches!(
            self,
            Mode::GarbageSdp | Mode::NoMediaSdp | Mode::EmptyFormatSdp | Mode::AbsurdClockRate
        )
    }
}

/// A running hostile camera; stops accepting and streaming when dropped.
pub struct HostileCamera {
    pub mode: Mode,
    pub port: u16,
    pub url: String,
    connections: Arc<AtomicUsize>,
    plays: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl HostileCamera {
    pub fn start(mode: Mode) -> HostileCamera {
        if mode.streams() {
            clip(); // Encode before the first client arrives.
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let plays = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, p, s) = (connections.clone(), plays.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let n = c.fetch_add(1, Ordering::SeqCst);
                        let (p, s) = (p.clone(), s.clone());
                        std::thread::spawn(move || {
                            let _ = conn.set_nonblocking(false);
                            let _ = serve(conn, mode, port, n, &p, &s);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HostileCamera {
            mode,
            port,
            url: format!("rtsp://127.0.0.1:{port}/cam"),
            connections,
            plays,
            stop,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// PLAY requests answered so far (sessions that started streaming).
    pub fn plays(&self) -> usize {
        self.plays.load(Ordering::SeqCst)
    }
}

impl Drop for HostileCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The test clip: parameter sets and access units (each a list of NAL units without start
/// codes).
pub struct Clip {
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    pub access_units: Vec<Vec<Vec<u8>>>,
}

/// Encodes the clip once per process: 2 s of 640x360 at 15 fps, a key frame every second,
/// SPS/PPS before every key frame, no B-frames.
pub fn clip() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clip.h264");
        let out = std::process::Command::new("gst-launch-1.0")
            .args([
                "-q",
                "videotestsrc",
                "num-buffers=30",
                "pattern=ball",
                "!",
                "video/x-raw,format=I420,width=640,height=360,framerate=15/1",
                "!",
                "x264enc",
                "key-int-max=15",
                "bframes=0",
                "threads=1",
                "speed-preset=ultrafast",
                "bitrate=1500",
                "!",
                "video/x-h264,profile=main",
                "!",
                "h264parse",
                "config-interval=-1",
                "!",
                "video/x-h264,stream-format=byte-stream,alignment=au",
                "!",
                "filesink",
            ])
            .arg(format!("location={}", path.display()))
            .output()
            .expect("gst-launch-1.0 (Debian packages gstreamer1.0-tools, -plugins-ugly)");
        assert!(
            out.status.success(),
            "gst-launch-1.0 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stream = std::fs::read(&path).expect("clip");
        let clip = split_access_units(&split_annex_b(&stream));
        assert!(
            clip.access_units.len() >= 30 && !clip.sps.is_empty() && !clip.pps.is_empty(),
            "{} access units",
            clip.access_units.len()
        );
        clip
    })
}

/// NAL units of an Annex B byte stream (start codes removed).
fn split_annex_b(s: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new(); // (start of the start code, start of the NAL)
    let mut i = 0;
    while i + 3 <= s.len() {
        if s[i] == 0 && s[i + 1] == 0 && s[i + 2] == 1 {
            let code = if i > 0 && s[i - 1] == 0 { i - 1 } else { i };
            starts.push((code, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &(_, nal_start)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(s.len(), |&(code, _)| code);
        let mut nal = &s[nal_start..end];
        while let [rest @ .., 0] = nal {
            nal = rest; // trailing_zero_8bits
        }
        if !nal.is_empty() {
            nals.push(nal.to_vec());
        }
    }
    nals
}

/// Groups NAL units into access units: a VCL NAL unit whose first_mb_in_slice is 0 (the first
/// bit of the slice header, ue(v) = "1") starts a new picture, as does any non-VCL NAL unit
/// that follows a picture. Access unit delimiters are dropped.
fn split_access_units(nals: &[Vec<u8>]) -> Clip {
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    let mut aus: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    let mut cur_has_vcl = false;
    for nal in nals {
        let t = nal[0] & 0x1f;
        let vcl = (1..=5).contains(&t);
        let starts_picture = vcl && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        if cur_has_vcl && (!vcl || starts_picture) {
            aus.push(std::mem::take(&mut cur));
            cur_has_vcl = false;
        }
        match t {
            7 if sps.is_empty() => sps = nal.clone(),
            8 if pps.is_empty() => pps = nal.clone(),
            _ => {}
        }
        if t == 9 {
            continue;
        }
        cur.push(nal.clone());
        cur_has_vcl |= vcl;
    }
    if cur_has_vcl {
        aus.push(cur);
    }
    Clip {
        sps,
        pps,
        access_units: aus,
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A deterministic pseudo-random byte source (xorshift), for garbage.
struct Noise(u64);

impl Noise {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 24) as u8
            })
            .collect()
    }
}

fn sdp(mode: Mode, port: u16) -> Vec<u8> {
    let head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile camera\r\nt=0 0\r\na=control:*\r\n";
    let clip_fmtp = || {
        let c = clip();
        format!(
            "packetization-mode=1;profile-level-id={:02X}{:02X}{:02X};sprop-parameter-sets={},{}",
            c.sps[1],
            c.sps[2],
            c.sps[3],
            base64(&c.sps),
            base64(&c.pps)
        )
    };
    let video = |fmt: &str, fmtp: &str| {
        format!(
            "m=video 0 RTP/AVP {fmt}\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 {fmtp}\r\n\
             a=framerate:15\r\na=control:rtsp://127.0.0.1:{port}/cam/trackID=0\r\n"
        )
    };
    match mode {
        Mode::GarbageSdp => {
            let mut g = b"v=0\r\n\x00\xff\x01garbage".to_vec();
            g.extend(Noise(7).bytes(4000));
            g
        }
        Mode::NoMediaSdp => format!("{head}a=tool:hostile\r\n").into_bytes(),
        Mode::EmptyFormatSdp => format!(
            "{head}m=video 0 RTP/AVP   \r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n"
        )
        .into_bytes(),
        Mode::AbsurdFmtp => {
            let junk = base64(&Noise(11).bytes(36 * 1024));
            format!(
                "{head}{}",
                video(
                    "96",
                    &format!(
                        "packetization-mode=7;profile-level-id=zzzzzzzzzzzz;\
                         sprop-parameter-sets={junk},{junk},,;max-mbps=99999999999999999999"
                    )
                )
            )
            .into_bytes()
        }
        Mode::AudioWithoutRtptime => format!(
            "{head}{}m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n\
             a=control:rtsp://127.0.0.1:{port}/cam/trackID=1\r\n",
            video("96", &clip_fmtp())
        )
        .into_bytes(),
        Mode::GarbageAudio => format!(
            "{head}{}m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/1\r\n\
             a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;\
             indexlength=3;indexdeltalength=3;config=1188\r\n\
             a=control:rtsp://127.0.0.1:{port}/cam/trackID=1\r\n",
            video("96", &clip_fmtp())
        )
        .into_bytes(),
        Mode::AbsurdClockRate => format!("{head}{}", video("96", "packetization-mode=1"))
            .replace("H264/90000", "H264/4294967295")
            .into_bytes(),
        _ => format!("{head}{}", video("96", &clip_fmtp())).into_bytes(),
    }
}

/// One RTSP request: method, CSeq, and the whole head.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            if head.is_empty() {
                continue;
            }
            break;
        }
        head.push(line);
    }
    let method = head.first()?.split(' ').next()?.to_owned();
    let value = |name: &str| {
        head.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let cseq = value("CSeq").unwrap_or_else(|| "0".into());
    let len: usize = value("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some((method, cseq))
}

const SESSION: &str = "5eC0a7e1";

fn serve(
    conn: TcpStream,
    mode: Mode,
    port: u16,
    n: usize,
    plays: &AtomicUsize,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    let (seq0, ts0) = match mode {
        Mode::TimestampWrap => (65_500u16, u32::MAX - 3 * 90_000 + 1),
        _ => (1000 + 7 * n as u16, 10_000 + 123_456 * n as u32),
    };
    let control = format!("rtsp://127.0.0.1:{port}/cam/trackID=0");
    // Each SETUP gets the next pair of interleaved channels (the video's is 0-1).
    let mut setups = 0u8;
    loop {
        let Some((method, cseq)) = read_request(&mut reader) else {
            return Ok(());
        };
        let resp = match method.as_str() {
            "OPTIONS" => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\
                 Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n\r\n"
            )
            .into_bytes(),
            "DESCRIBE" => {
                let body = sdp(mode, port);
                let mut r = format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: rtsp://127.0.0.1:{port}/cam/\r\n\
                     Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend(body);
                r
            }
            "SETUP" => {
                let channel = 2 * setups;
                setups += 1;
                format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\
                     Transport: RTP/AVP/TCP;unicast;interleaved={channel}-{};ssrc={SSRC:08X}\r\n\
                     Session: {SESSION};timeout=60\r\n\r\n",
                    channel + 1
                )
                .into_bytes()
            }
            "PLAY" => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: {SESSION}\r\nRange: npt=0.000-\r\n\
                 RTP-Info: url={control};seq={seq0};rtptime={ts0}\r\n\r\n"
            )
            .into_bytes(),
            _ => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: {SESSION}\r\n\r\n")
                .into_bytes(),
        };
        w.write_all(&resp)?;
        if method == "PLAY" {
            break;
        }
    }
    plays.fetch_add(1, Ordering::SeqCst);
    // From here on the client may still send requests (keepalives): answer them from a reader
    // thread; every write goes through the mutex so responses never split an RTP frame.
    let w = Arc::new(Mutex::new(w));
    let w2 = w.clone();
    std::thread::spawn(move || {
        while let Some((_, cseq)) = read_request(&mut reader) {
            let resp = format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: {SESSION}\r\n\r\n");
            if w2.lock().map(|mut w| w.write_all(resp.as_bytes())).is_err() {
                return;
            }
        }
    });
    Streamer {
        w,
        stop: stop.clone(),
        conn: n,
        in_band_parameters: mode != Mode::TimestampWrap,
        seq: seq0,
        ts0,
        frame: 0,
        started: Instant::now(),
    }
    .run(mode)
}

/// Writes RTP over interleaved TCP, paced at the clip's frame rate.
struct Streamer {
    w: Arc<Mutex<TcpStream>>,
    stop: Arc<AtomicBool>,
    /// Which connection this is (0 for the first).
    conn: usize,
    /// Whether SPS and PPS are sent in band (before each key frame) too.
    in_band_parameters: bool,
    seq: u16,
    ts0: u32,
    /// Frames sent so far (the next frame's index).
    frame: u32,
    started: Instant,
}

fn interleaved(channel: u8, packet: &[u8]) -> Vec<u8> {
    let mut out = vec![b'$', channel];
    out.extend((packet.len() as u16).to_be_bytes());
    out.extend_from_slice(packet);
    out
}

fn rtp_header(pt: u8, mark: bool, seq: u16, ts: u32) -> Vec<u8> {
    let mut h = vec![0x80, pt | if mark { 0x80 } else { 0 }];
    h.extend(seq.to_be_bytes());
    h.extend(ts.to_be_bytes());
    h.extend(SSRC.to_be_bytes());
    h
}

/// RTP packets of one access unit: single NAL unit packets, or FU-A fragments for NAL units
/// above `max_payload` bytes; the marker bit on the last.
fn packetize(au: &[Vec<u8>], pt: u8, ts: u32, seq: &mut u16, max_payload: usize) -> Vec<Vec<u8>> {
    let mut payloads = Vec::new();
    for nal in au {
        if nal.len() <= max_payload {
            payloads.push(nal.clone());
            continue;
        }
        let (hdr, body) = (nal[0], &nal[1..]);
        let chunks: Vec<&[u8]> = body.chunks(max_payload - 2).collect();
        for (i, c) in chunks.iter().enumerate() {
            let mut fu_header = hdr & 0x1f;
            if i == 0 {
                fu_header |= 0x80;
            }
            if i + 1 == chunks.len() {
                fu_header |= 0x40;
            }
            let mut p = vec![(hdr & 0xe0) | 28, fu_header];
            p.extend_from_slice(c);
            payloads.push(p);
        }
    }
    let n = payloads.len();
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut pkt = rtp_header(pt, i + 1 == n, *seq, ts);
            *seq = seq.wrapping_add(1);
            pkt.extend(p);
            pkt
        })
        .collect()
}

impl Streamer {
    fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("stopped"));
        }
        self.w
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .write_all(bytes)
    }

    /// Sends the next frame of the looped clip at its time, with RTP timestamp
    /// `ts0 + frame * 6000 + offset` (wrapping).
    fn next_frame(&mut self, pt: u8, offset: i64) -> std::io::Result<()> {
        let due = self.started + Duration::from_secs_f64(f64::from(self.frame) / f64::from(FPS));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let aus = &clip().access_units;
        let au = &aus[self.frame as usize % aus.len()];
        let ts = (i64::from(self.ts0) + i64::from(self.frame) * i64::from(TICKS_PER_FRAME) + offset)
            .rem_euclid(1 << 32) as u32;
        let au: Vec<Vec<u8>> = au
            .iter()
            .filter(|nal| self.in_band_parameters || !matches!(nal[0] & 0x1f, 7 | 8))
            .cloned()
            .collect();
        let mut bytes = Vec::new();
        for p in packetize(&au, pt, ts, &mut self.seq, MAX_PAYLOAD) {
            bytes.extend(interleaved(0, &p));
        }
        self.frame += 1;
        self.send(&bytes)
    }

    /// Sends the next frame of the looped clip grown to [`HUGE_ACCESS_UNIT_BYTES`] by a
    /// filler-data NAL unit, at once, with RTP timestamp `ts0 + ticks`.
    fn huge_frame(&mut self, ticks: u64) -> std::io::Result<()> {
        let aus = &clip().access_units;
        let mut au = aus[self.frame as usize % aus.len()].clone();
        let picture_bytes: usize = au.iter().map(Vec::len).sum();
        // Filler data (H.264 7.3.2.7): NAL header type 12 with nal_ref_idc 0, 0xff bytes, the
        // RBSP stop bit; it follows the picture, as 7.4.1.2.3 requires.
        let mut filler = vec![0xffu8; HUGE_ACCESS_UNIT_BYTES.saturating_sub(picture_bytes)];
        filler[0] = 12;
        if let Some(last) = filler.last_mut() {
            *last = 0x80;
        }
        au.push(filler);
        let ts = self.ts0.wrapping_add(ticks as u32);
        let mut bytes = Vec::with_capacity(HUGE_ACCESS_UNIT_BYTES + (64 << 10));
        for p in packetize(&au, PAYLOAD_TYPE, ts, &mut self.seq, HUGE_MAX_PAYLOAD) {
            bytes.extend(interleaved(0, &p));
        }
        self.frame += 1;
        self.send(&bytes)
    }

    /// Sends valid video for `secs` seconds.
    fn valid_for(&mut self, secs: u32) -> std::io::Result<()> {
        for _ in 0..secs * FPS {
            self.next_frame(PAYLOAD_TYPE, 0)?;
        }
        Ok(())
    }

    /// Sends `chunk()` repeatedly at [`FLOOD_BYTES_PER_SEC`], forever (until the peer leaves).
    fn flood(&mut self, mut chunk: impl FnMut(&mut Self) -> Vec<u8>) -> std::io::Result<()> {
        let start = Instant::now();
        let mut sent = 0usize;
        loop {
            let c = chunk(self);
            self.send(&c)?;
            sent += c.len();
            let due = start + Duration::from_secs_f64(sent as f64 / FLOOD_BYTES_PER_SEC as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }

    fn run(mut self, mode: Mode) -> std::io::Result<()> {
        match mode {
            Mode::Normal | Mode::TimestampWrap | Mode::AbsurdFmtp | Mode::AudioWithoutRtptime => {
                loop {
                    self.next_frame(PAYLOAD_TYPE, 0)?;
                }
            }
            Mode::BackwardJump | Mode::ForwardJump => {
                self.valid_for(3)?;
                let offset = if mode == Mode::BackwardJump {
                    -5 * 90_000
                } else {
                    60 * 90_000
                };
                loop {
                    self.next_frame(PAYLOAD_TYPE, offset)?;
                }
            }
            Mode::GarbageAudio => {
                let mut seq = 0u16;
                loop {
                    self.next_frame(PAYLOAD_TYPE, 0)?;
                    // AU-headers-length 65535 bits in a 6-byte payload.
                    let ts = self.frame.wrapping_mul(3200);
                    let mut pkt = rtp_header(97, true, seq, ts);
                    pkt.extend([0xff, 0xff, 0x01, 0x02, 0x03, 0x04]);
                    seq = seq.wrapping_add(1);
                    self.send(&interleaved(2, &pkt))?;
                }
            }
            Mode::WrongPayloadType => {
                self.valid_for(2)?;
                // PCMU (payload type 0): 20 ms of mu-law silence per packet, 8 kHz clock,
                // interleaved with the video on the video's channel.
                // Their timestamps follow the video's, so only the payload type is wrong.
                loop {
                    let ts = self.ts0.wrapping_add(self.frame * TICKS_PER_FRAME);
                    for _ in 0..3 {
                        let mut p = rtp_header(0, false, self.seq, ts);
                        self.seq = self.seq.wrapping_add(1);
                        p.extend([0xffu8; 160]);
                        self.send(&interleaved(0, &p))?;
                    }
                    self.next_frame(PAYLOAD_TYPE, 0)?;
                }
            }
            Mode::EndlessFragment => {
                self.valid_for(2)?;
                let ts = self.ts0.wrapping_add(self.frame * TICKS_PER_FRAME);
                let mut noise = Noise(3);
                let body = noise.bytes(65_535 - 12 - 2);
                let mut first = true;
                self.flood(|s| {
                    // An IDR slice fragment: FU indicator (NRI 3, type 28), FU header (type 5,
                    // start bit only on the first), never the end bit, never the marker.
                    let fu_header = if first { 0x80 | 5 } else { 5 };
                    first = false;
                    let mut p = rtp_header(PAYLOAD_TYPE, false, s.seq, ts);
                    s.seq = s.seq.wrapping_add(1);
                    p.extend([0x7c, fu_header]);
                    p.extend_from_slice(&body);
                    interleaved(0, &p)
                })
            }
            Mode::HugeLengths => {
                self.valid_for(2)?;
                let ts = self.ts0.wrapping_add(self.frame * TICKS_PER_FRAME);
                let mut p = rtp_header(PAYLOAD_TYPE, true, self.seq, ts);
                self.seq = self.seq.wrapping_add(1);
                // One lie per connection, in turn.
                match self.conn % 3 {
                    0 => {
                        // STAP-A whose first NAL unit claims 60000 bytes in a 40-byte packet.
                        p.extend([24, 0xea, 0x60, 0x65]);
                        p.extend([0u8; 24]);
                        self.send(&interleaved(0, &p))?;
                    }
                    1 => {
                        // An RTP header extension claiming 65535 32-bit words.
                        p[0] |= 0x10;
                        p.extend([0xbe, 0xde, 0xff, 0xff, 0x65, 0x88]);
                        self.send(&interleaved(0, &p))?;
                    }
                    _ => {
                        // A 65535-byte interleaved length followed by a 12-byte packet: it
                        // swallows the frames after it.
                        let mut b = vec![b'$', 0, 0xff, 0xff];
                        b.extend(p);
                        self.send(&b)?;
                    }
                }
                loop {
                    self.next_frame(PAYLOAD_TYPE, 0)?;
                }
            }
            Mode::HugeFrames => {
                let mut ticks = 0u64;
                loop {
                    // The wall clock's 90 kHz ticks, and at least one tick after the previous
                    // frame (the recorder refuses a frame that is not after the one before).
                    let now = (self.started.elapsed().as_secs_f64() * 90_000.0) as u64;
                    ticks = (ticks + 1).max(now);
                    self.huge_frame(ticks)?;
                }
            }
            Mode::InterleavedGarbage => {
                let mut noise = Noise(5);
                // Valid video with data on channels nobody set up (ignored by RTSP clients).
                for i in 0..2 * FPS {
                    if i % 3 == 0 {
                        let junk = noise.bytes(200 + (i as usize * 37) % 3000);
                        self.send(&interleaved(2 + (i % 200) as u8, &junk))?;
                    }
                    self.next_frame(PAYLOAD_TYPE, 0)?;
                }
                // Then bytes that are neither RTSP nor '$' framing, forever.
                self.flood(|_| {
                    let mut g = b"\x00\x17garbage \xff\xfe not RTSP\r\n\x01".to_vec();
                    g.extend(noise.bytes(16 * 1024));
                    g
                })
            }
            Mode::EndlessRtspMessage => {
                self.valid_for(2)?;
                let mut noise = Noise(9);
                if self.conn.is_multiple_of(2) {
                    self.send(
                        b"RTSP/1.0 200 OK\r\nCSeq: 999\r\nContent-Length: 1099511627776\r\n\r\n",
                    )?;
                    self.flood(|_| noise.bytes(64 * 1024))
                } else {
                    self.send(b"RTSP/1.0 200 OK\r\nCSeq: 999\r\nX-Endless: ")?;
                    self.flood(|_| vec![b'a'; 64 * 1024])
                }
            }
            Mode::GarbageSdp | Mode::NoMediaSdp | Mode::EmptyFormatSdp | Mode::AbsurdClockRate => {
                Ok(())
            }
        }
    }
}
