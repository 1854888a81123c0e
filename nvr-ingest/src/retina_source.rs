//! The real camera source: RTSP over TCP with the `retina` crate. The only module that names
//! retina.
//!
//! Timestamps: retina is told to reject RTP timestamps that jump forward more than
//! [`MAX_TIMESTAMP_JUMP_SECS`] or go backward more than [`MAX_REORDER_SECS`]; such a jump ends
//! the session, and the supervisor's reconnect starts a new run, instead of corrupting the
//! current one. Going back less is a camera with B-frames: frames come in decode order, each
//! stamped with its presentation time (our retina's `allow_reordered_timestamps_secs`,
//! `vendor/README.md`); the frames keep those times (`VideoFrame::media_time_90k`) and storage
//! derives decode times from them (`nvr_storage::frame_timing`). Wraparound of the 32-bit RTP
//! timestamp is not a jump (retina extends timestamps to 64 bits).
//!
//! Hostile or broken cameras (see `tests/hostile_rtsp.rs`), and what this module does about
//! them:
//! * **Frames come from retina's `Demuxed`, with bounds we added to retina** (our patched copy
//!   in `vendor/retina`, see `vendor/README.md`). `Demuxed` depacketizes straight from the
//!   connection's read buffer (no copy per packet), which keeps every byte of a frame in
//!   assembly pinned there: upstream, a camera that starts a fragmented NAL unit and never ends
//!   it grew the recorder by the full link rate until the 10 s stall watchdog fired (580 MiB at
//!   48 MiB/s in the test). Our retina ends the session once the read buffer would hold more
//!   than 8 MiB, and refuses RTP packets of another payload type than the SDP gave the
//!   stream instead of depacketizing them as video. One RTSP message is at most 1 MiB (upstream
//!   buffered it whole, whatever its `Content-Length` or header length).
//! * **Panics inside retina are contained.** retina 0.4.21 panics on some malformed input (an
//!   `m=` line with an empty format list unwraps `None` in its SDP parser); in a camera's task
//!   that silently killed the camera's supervisor, leaving the camera "connecting" forever. Every
//!   poll of retina runs under `catch_unwind`; a panic becomes a `protocol` error of this session
//!   and the supervisor reconnects as for any other error. See [`contain`].
//! * **Error messages are tidied**: first line only, camera-supplied text cut to a readable
//!   length, and the common failures said in plain words (see [`classify`]).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use nvr_core::frame::is_random_access;
use nvr_core::{Clock, HostKind, VideoCodec, VideoFrame, VideoParams};
use retina::client::{
    Credentials, InitialTimestampPolicy, PlayOptions, SessionOptions, SetupOptions, TeardownPolicy,
    Transport,
};
use retina::codec::{CodecItem, ParametersRef};

use crate::egress::{EgressPolicy, same_destination};
use crate::error::{CameraErrorKind, IngestError};
use crate::source::{
    AudioCell, AudioOffer, CameraClockCell, CameraClockSample, CameraSource, ConnectTarget,
    Session, SessionInfo, SourceFrame,
};

/// Largest forward jump of RTP timestamps accepted within a session: 10 s, the stall timeout.
pub const MAX_TIMESTAMP_JUMP_SECS: u32 = 10;

/// Furthest RTP timestamps may go back (B-frames) within a session: storage's reorder window.
pub const MAX_REORDER_SECS: u32 = (nvr_storage::frame_timing::MAX_REORDER_90K / 90_000) as u32;

/// Largest RTSP message accepted from a camera (`SessionOptions::max_message_bytes`): real
/// responses are a few KiB and interleaved data at most 64 KiB; a hostile camera's 1 TiB
/// `Content-Length` or endless header line ends the session instead of filling memory.
pub const MAX_RTSP_MESSAGE_BYTES: usize = 1 << 20;

/// Most a camera connection's read buffer may hold (`SessionOptions::max_held_bytes`): the
/// frame being assembled pins it, so a frame that never ends would grow it without limit.
/// Twice a large 4K key frame.
pub const MAX_HELD_READ_BYTES: usize = 8 << 20;

/// Longest error message taken from retina (whose messages quote what the camera sent).
const MAX_MESSAGE_CHARS: usize = 300;

/// Connects to cameras with retina, only where the egress policy allows.
#[derive(Debug)]
pub struct RetinaSource {
    clock: Arc<dyn Clock>,
    egress: Arc<EgressPolicy>,
    /// Each connection is read at most this often (zero: per packet); see
    /// `SessionOptions::read_interval` in `vendor/retina`.
    read_interval: Duration,
}

impl RetinaSource {
    pub fn new(clock: Arc<dyn Clock>, egress: Arc<EgressPolicy>) -> Self {
        install_panic_filter();
        RetinaSource {
            clock,
            egress,
            read_interval: Duration::ZERO,
        }
    }

    /// Reads each camera connection at most every `interval`, in one read of all that waits.
    pub fn with_read_interval(mut self, interval: Duration) -> Self {
        self.read_interval = interval;
        self
    }
}

/// `url` with its host replaced by `ip`, so retina connects to the address we checked and never
/// looks a name up itself.
fn with_ip_host(url: &url::Url, ip: std::net::IpAddr) -> Result<url::Url, IngestError> {
    let mut u = url.clone();
    let host = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    u.set_host(Some(&host))
        .map_err(|e| IngestError::new(CameraErrorKind::Policy, format!("camera URL: {e}")))?;
    Ok(u)
}

/// Camera-supplied text made fit for a status line: control characters replaced, cut to
/// [`MAX_MESSAGE_CHARS`].
fn tidy(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if s.chars().count() > MAX_MESSAGE_CHARS {
        out.push_str("...");
    }
    out
}

/// Classifies a retina error for the camera status.
fn classify(e: &retina::Error) -> IngestError {
    let text = e.to_string();
    // retina's messages carry a multi-line context; the first line says what happened.
    let first = text.lines().next().unwrap_or("");
    let kind = match e.status_code() {
        Some(401 | 403) => CameraErrorKind::Auth,
        Some(404) => CameraErrorKind::NoVideo,
        Some(_) => CameraErrorKind::Protocol,
        None if first.starts_with("Unable to connect") || first.starts_with("Error reading") => {
            CameraErrorKind::Unreachable
        }
        None => CameraErrorKind::Protocol,
    };
    // An SDP without any usable media section is a camera that offers no video (retina
    // reports it as a failed DESCRIBE).
    let kind = if first.contains("No parseable streams") {
        CameraErrorKind::NoVideo
    } else {
        kind
    };
    let message = match kind {
        CameraErrorKind::Auth => format!("authentication failed: {first}"),
        _ => {
            let plain = plain_words(first);
            // retina's depacketizer errors are the ones that name the packet's SSRC.
            if text.contains("\nssrc: ") && plain == first {
                format!("the camera sent an invalid video stream: {first}")
            } else {
                plain
            }
        }
    };
    IngestError::new(kind, tidy(&message))
}

/// retina's first line for the failures hostile or broken cameras cause, said plainly; anything
/// else unchanged.
fn plain_words(first: &str) -> String {
    if let Some(rest) = first.strip_prefix("RTSP framing error: ") {
        // Our patched retina's bounds on one message and on what a session holds
        // (vendor/README.md).
        if rest.contains("message-too-large") {
            return "the camera sent an RTSP message larger than 1 MiB (refused, not buffered)"
                .to_owned();
        }
        if rest.contains("held-too-large") {
            return "the camera sent over 8 MiB without completing a frame (a frame that never \
                    ends?); dropped the session"
                .to_owned();
        }
        // "Invalid RTSP message: byte 29156: request-line > method; buffered:"
        let rest = rest.trim_end_matches("; buffered:").trim_end_matches(':');
        return format!("the camera sent data that is not RTSP ({rest})");
    }
    if let Some((_, rest)) = first.split_once(": clock_rate=") {
        // "200 response to PLAY CSeq=3: clock_rate=4294967295 rejected because ..."
        return format!("the camera's stream has an unusable clock rate: {rest}");
    }
    if first.starts_with("RTP payload type") {
        return format!("the camera sent {first}; refusing to decode it as video");
    }
    if first.starts_with("Timestamp jumped") {
        return format!("the camera's RTP timestamps jumped; a new run starts: {first}");
    }
    if first.starts_with("corrupt RTP header") {
        // "corrupt RTP header while expecting seq=Some(Seq { .. }): \"too short\""
        let reason = first
            .rsplit_once(": ")
            .map_or(first, |(_, r)| r)
            .trim_matches('"');
        return format!("the camera sent a corrupt RTP packet: {reason}");
    }
    if first.contains("response to DESCRIBE") {
        // "200 response to DESCRIBE CSeq=1: Unable to parse SDP: ..."
        let reason = first.split_once(": ").map_or(first, |(_, r)| r);
        return format!("the camera's stream description (SDP) is unusable: {reason}");
    }
    first.to_owned()
}

/// Converts retina's parameters to ours.
fn video_params(
    codec: VideoCodec,
    p: &retina::codec::VideoParameters,
) -> Result<VideoParams, IngestError> {
    let (w, h) = p.pixel_dimensions();
    let sample_entry = p.mp4_sample_entry().build().map_err(|e| {
        IngestError::new(CameraErrorKind::Protocol, format!("video parameters: {e}"))
    })?;
    Ok(VideoParams {
        codec,
        rfc6381_codec: p.rfc6381_codec().to_owned(),
        width: u16::try_from(w).unwrap_or(u16::MAX),
        height: u16::try_from(h).unwrap_or(u16::MAX),
        sample_entry: sample_entry.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Panic containment
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Set while this thread runs retina code under [`contain`].
    static IN_RETINA: Cell<bool> = const { Cell::new(false) };
    /// Where the last contained panic happened, left by the panic hook for [`contain`].
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that stays silent about panics [`contain`] catches
/// (they are reported once, as the camera's error, without a backtrace) and hands every other
/// panic to the hook that was installed before.
fn install_panic_filter() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_RETINA.get() {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", crate_relative(l.file()), l.line()))
                    .unwrap_or_default();
                PANIC_AT.set(Some(at));
            } else {
                previous(info);
            }
        }));
    });
}

/// `.../registry/src/index.crates.io-.../retina-0.4.21/src/client/parse.rs` ->
/// `retina-0.4.21/src/client/parse.rs`.
fn crate_relative(file: &str) -> &str {
    match file.rfind("/src/") {
        Some(i) => file[..i].rfind('/').map_or(file, |j| &file[j + 1..]),
        None => file,
    }
}

/// Runs `f` (retina code) so that a panic in it becomes a `protocol` error instead of unwinding
/// through the camera's task. The caller must drop whatever `f` was working on if it fails:
/// its state is unknown.
fn contain<R>(f: impl FnOnce() -> R) -> Result<R, IngestError> {
    let was = IN_RETINA.replace(true);
    let r = std::panic::catch_unwind(AssertUnwindSafe(f));
    IN_RETINA.set(was);
    r.map_err(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        let at = PANIC_AT.take().unwrap_or_default();
        tracing::error!(panic = %what, at = %at,
            "the RTSP library failed on this camera's input (contained; the session is dropped)");
        IngestError::new(
            CameraErrorKind::Protocol,
            tidy(&format!(
                "the camera sent something the RTSP library cannot handle (internal error \
                 \"{what}\" at {at}); dropped the session"
            )),
        )
    })
}

/// A future or stream of retina work, polled under [`contain`]. After a panic it yields that
/// error (and, as a stream, ends), having dropped the inner value under [`contain`] too.
struct Contained<T: ?Sized> {
    inner: Option<Pin<Box<T>>>,
}

impl<T: ?Sized> Contained<T> {
    fn new(inner: Pin<Box<T>>) -> Self {
        Contained { inner: Some(inner) }
    }

    fn poll_with<R>(
        &mut self,
        f: impl FnOnce(Pin<&mut T>) -> Poll<R>,
    ) -> Option<Result<Poll<R>, IngestError>> {
        let inner = self.inner.as_mut()?;
        match contain(|| f(inner.as_mut())) {
            Ok(p) => Some(Ok(p)),
            Err(e) => {
                let dead = self.inner.take();
                let _ = contain(move || drop(dead));
                Some(Err(e))
            }
        }
    }
}

impl<T, V> Future for Contained<T>
where
    T: Future<Output = Result<V, IngestError>> + ?Sized,
{
    type Output = Result<V, IngestError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.poll_with(|f| f.poll(cx)) {
            Some(Ok(p)) => p,
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => Poll::Ready(Err(IngestError::new(
                CameraErrorKind::Protocol,
                "polled after failing",
            ))),
        }
    }
}

impl<T, V> Stream for Contained<T>
where
    T: Stream<Item = Result<V, IngestError>> + ?Sized,
{
    type Item = Result<V, IngestError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.poll_with(|s| s.poll_next(cx)) {
            Some(Ok(p)) => p,
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => Poll::Ready(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frames from RTP packets
// ---------------------------------------------------------------------------------------------

/// One playing video stream: retina's frames, depacketized from its read buffer without a copy
/// (see the module docs for the bounds that make this safe).
struct VideoStream {
    demuxed: retina::client::Demuxed,
    video_i: usize,
    codec: VideoCodec,
    params: Option<Arc<VideoParams>>,
    clock: Arc<dyn Clock>,
    camera_clock: Arc<CameraClockCell>,
    /// The audio stream set up, if any, and its counts.
    audio_i: Option<usize>,
    audio: Arc<AudioCell>,
}

/// The largest audio frame taken: an AAC frame is at most 768 bytes per channel (6144 bits),
/// 8 channels are 6 KiB; G.711 sends 8 bytes a millisecond, so 64 KiB is 8 s of it. Larger
/// frames are dropped and counted, never ending the session (the video goes on).
pub const MAX_AUDIO_FRAME_BYTES: usize = 64 * 1024;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// An NTP timestamp (32.32 fixed point seconds since 1900) as 90 kHz since the Unix epoch;
/// `None` before 1970 (a camera whose clock was never set sends 0, or time since boot).
fn ntp_to_90k(ntp: u64) -> Option<i64> {
    let secs = (ntp >> 32).checked_sub(NTP_UNIX_OFFSET_SECS)?;
    let frac_90k = ((ntp & 0xFFFF_FFFF) * 90_000) >> 32;
    i64::try_from(secs * 90_000 + frac_90k).ok()
}

impl VideoStream {
    /// Keeps the camera's clock against ours from a sender report of the video stream.
    fn sender_report(&self, r: &retina::rtcp::ReceivedCompoundPacket) {
        for pkt in r.pkts() {
            if let Ok(Some(sr)) = pkt.as_sender_report()
                && let Some(camera_90k) = ntp_to_90k(sr.ntp_timestamp().0)
            {
                let now = self.clock.realtime();
                self.camera_clock.set(CameraClockSample {
                    offset_90k: camera_90k - now.0,
                    measured: now,
                });
            }
        }
    }

    /// The next frame; `None` when the camera closed the connection.
    async fn next_frame(&mut self) -> Option<Result<SourceFrame, IngestError>> {
        loop {
            match self.demuxed.next().await? {
                // The audio's depacketizer refused a packet: counted and dropped, so a camera
                // with broken sound still records its video.
                Err(e) if self.audio_i.is_some() && e.rtp_packet_stream_id() == self.audio_i => {
                    self.audio.refused();
                }
                Err(e) => return Some(Err(classify(&e))),
                Ok(CodecItem::VideoFrame(f)) if f.stream_id() == self.video_i => {
                    return Some(self.frame(f));
                }
                Ok(CodecItem::Rtcp(r)) if r.stream_id() == self.video_i => {
                    self.sender_report(&r);
                }
                Ok(CodecItem::AudioFrame(f)) if Some(f.stream_id()) == self.audio_i => {
                    if f.data().len() > MAX_AUDIO_FRAME_BYTES {
                        self.audio.oversized();
                    } else {
                        self.audio.frame(f.data().len());
                    }
                }
                Ok(_) => {}
            }
        }
    }

    fn frame(&mut self, f: retina::codec::VideoFrame) -> Result<SourceFrame, IngestError> {
        if f.has_new_parameters() || self.params.is_none() {
            let p = match self.demuxed.streams()[self.video_i].parameters() {
                Some(ParametersRef::Video(v)) => video_params(self.codec, v)?,
                _ => {
                    return Err(IngestError::new(
                        CameraErrorKind::Protocol,
                        "video frame without video parameters",
                    ));
                }
            };
            self.params = Some(Arc::new(p));
        }
        let Some(p) = self.params.clone() else {
            return Err(IngestError::new(
                CameraErrorKind::Protocol,
                "video frame without video parameters",
            ));
        };
        let ts = f.timestamp();
        let rate = i64::from(ts.clock_rate().get());
        let media_time_90k = if rate == 90_000 {
            ts.elapsed()
        } else {
            (i128::from(ts.elapsed()) * 90_000 / i128::from(rate)) as i64
        };
        let is_key = f.is_random_access_point() || is_random_access(self.codec, f.data());
        Ok(SourceFrame {
            params: p,
            frame: VideoFrame {
                media_time_90k,
                received: self.clock.realtime(),
                is_key,
                data: f.into_data().into(),
            },
        })
    }
}

impl CameraSource for RetinaSource {
    fn connect(
        &self,
        target: &ConnectTarget,
    ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>> {
        let target = target.clone();
        Box::pin(Contained::new(Box::pin(async move {
            // Checked against the camera list (and resolved, if a permitted name) first.
            let addr = self.egress.resolve(&target.url).await?;
            let connect_url = match target.url.host() {
                HostKind::Ip(_) => target.url.url().clone(),
                HostKind::Name(_) => with_ip_host(target.url.url(), addr.ip())?,
            };
            tracing::info!(camera = %target.url, address = %addr, "connecting to camera");
            let creds = target.username.clone().map(|username| Credentials {
                username,
                password: target.password.clone().unwrap_or_default(),
            });
            let options = SessionOptions::default()
                .creds(creds)
                .user_agent(format!("nvr/{}", env!("CARGO_PKG_VERSION")))
                // Over TCP, closing the connection ends the session; never open another
                // connection just to send TEARDOWN.
                .teardown(TeardownPolicy::Never)
                .read_interval(self.read_interval)
                // A hostile camera: bounded messages and buffer, and no RTP of a payload
                // type the SDP did not announce recorded as if it were the stream's.
                .max_message_bytes(MAX_RTSP_MESSAGE_BYTES)
                .max_held_bytes(MAX_HELD_READ_BYTES)
                .strict_payload_types(true);
            let mut session = retina::client::Session::describe(connect_url, options)
                .await
                .map_err(|e| classify(&e))?;
            let streams = session.streams();
            // A Content-Base or control URL naming another host would make later requests (or,
            // with other settings, connections) go elsewhere: refuse the camera instead.
            for s in streams {
                if let Some(control) = s.control()
                    && !same_destination(control, &target.url, addr.ip())
                {
                    return Err(IngestError::new(
                        CameraErrorKind::Policy,
                        format!(
                            "the camera points its stream at {control} (Content-Base or control \
                             URL on another host or port); refusing to follow it"
                        ),
                    ));
                }
            }
            let has_audio = streams.iter().any(|s| s.media() == "audio");
            let offers: Vec<AudioOffer> = streams
                .iter()
                .filter(|s| s.media() == "audio")
                .map(|s| {
                    AudioOffer::new(
                        s.encoding_name(),
                        s.clock_rate_hz(),
                        s.channels().map(|c| c.get()),
                    )
                })
                .collect();
            let audio = offers
                .iter()
                .find(|o| o.codec.is_some())
                .or(offers.first())
                .cloned();
            // The audio stream to take: only when asked (its recording is switched on), and
            // only a codec the recorder can record.
            let audio_i = if target.audio {
                streams.iter().position(|s| {
                    s.media() == "audio"
                        && AudioOffer::new(s.encoding_name(), s.clock_rate_hz(), None)
                            .codec
                            .is_some()
                })
            } else {
                None
            };
            let (video_i, codec) = streams
                .iter()
                .enumerate()
                .find_map(|(i, s)| {
                    if s.media() != "video" {
                        return None;
                    }
                    match s.encoding_name() {
                        "h264" => Some((i, VideoCodec::H264)),
                        "h265" => Some((i, VideoCodec::H265)),
                        _ => None,
                    }
                })
                .ok_or_else(|| {
                    let offered: Vec<String> = streams
                        .iter()
                        .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                        .collect();
                    IngestError::new(
                        CameraErrorKind::NoVideo,
                        tidy(&format!(
                            "the camera offers no H.264 or H.265 video stream (offered: {})",
                            if offered.is_empty() {
                                "nothing".into()
                            } else {
                                offered.join(", ")
                            }
                        )),
                    )
                })?;
            let info = SessionInfo {
                video_encoding: codec.name().to_owned(),
                announced_fps: streams[video_i].framerate(),
                has_audio,
                audio,
                audio_taken: audio_i.is_some(),
            };
            for i in std::iter::once(video_i).chain(audio_i) {
                session
                    .setup(
                        i,
                        SetupOptions::default().transport(Transport::Tcp(Default::default())),
                    )
                    .await
                    .map_err(|e| classify(&e))?;
            }
            let max_jump = NonZeroU32::new(MAX_TIMESTAMP_JUMP_SECS).unwrap_or(NonZeroU32::MIN);
            let max_reorder = NonZeroU32::new(MAX_REORDER_SECS).unwrap_or(NonZeroU32::MIN);
            let playing = session
                .play(
                    PlayOptions::default()
                        .enforce_timestamps_with_max_jump_secs(max_jump)
                        .allow_reordered_timestamps_secs(max_reorder)
                        // With audio set up too, retina's default demands RTP-Info `rtptime`
                        // for both streams and refuses PLAY without it, which would cost a
                        // camera that omits it its video: use it when every stream has it
                        // (their times then share the PLAY instant as origin), else start each
                        // stream at its first packet. A video-only session is unaffected.
                        .initial_timestamp(InitialTimestampPolicy::Permissive),
                )
                .await
                .map_err(|e| classify(&e))?;
            let demuxed = playing.demuxed().map_err(|e| classify(&e))?;
            let stream = VideoStream {
                demuxed,
                video_i,
                codec,
                params: None,
                clock: self.clock.clone(),
                camera_clock: Arc::default(),
                audio_i,
                audio: Arc::default(),
            };
            let camera_clock = stream.camera_clock.clone();
            let audio_cell = stream.audio.clone();
            let frames = futures::stream::unfold(stream, |mut s| async move {
                let item = s.next_frame().await?;
                Some((item, s))
            });
            Ok(Session {
                info,
                frames: Box::pin(Contained::new(Box::pin(frames))),
                camera_clock,
                audio: audio_cell,
            })
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_times_become_unix_90k_and_unset_clocks_none() {
        // 2026-12-07T00:00:00.5Z: 1_796_601_600 s after 1970, half a second.
        let ntp = ((1_796_601_600 + NTP_UNIX_OFFSET_SECS) << 32) | 0x8000_0000;
        assert_eq!(ntp_to_90k(ntp), Some(1_796_601_600 * 90_000 + 45_000));
        assert_eq!(ntp_to_90k(NTP_UNIX_OFFSET_SECS << 32), Some(0));
        // A camera whose clock was never set: zero, or seconds since it booted.
        assert_eq!(ntp_to_90k(0), None);
        assert_eq!(ntp_to_90k(3600 << 32), None);
    }

    #[test]
    fn contained_panics_become_protocol_errors() {
        install_panic_filter();
        let e = contain(|| -> u8 { panic!("boom") }).expect_err("contained");
        assert_eq!(e.kind, CameraErrorKind::Protocol);
        assert!(e.message.contains("boom"), "{e:?}");
        assert!(
            e.message.contains("nvr-ingest/src/retina_source.rs:"),
            "{e:?}"
        );
        assert_eq!(
            crate_relative(
                "/r/.cargo/registry/src/index.crates.io-1/retina-0.4.21/src/client/p.rs"
            ),
            "retina-0.4.21/src/client/p.rs"
        );
        assert_eq!(contain(|| 7).ok(), Some(7));
        assert!(!IN_RETINA.get());
    }

    #[test]
    fn contained_streams_end_after_a_panic() {
        let s = futures::stream::iter(0..3).map(|i: i32| {
            assert!(i < 1, "past the end");
            Ok::<_, IngestError>(i)
        });
        let mut c = Contained::new(Box::pin(s));
        let got = futures::executor::block_on(async {
            let mut got = Vec::new();
            while let Some(i) = c.next().await {
                got.push(i.map_err(|e| e.kind));
            }
            got
        });
        assert_eq!(got, [Ok(0), Err(CameraErrorKind::Protocol)]);
    }

    #[test]
    fn messages_are_tidied() {
        let long = "x\u{7}".repeat(400);
        let t = tidy(&long);
        assert!(t.chars().count() <= MAX_MESSAGE_CHARS + 3 && !t.contains('\u{7}'));
        assert_eq!(
            plain_words("RTSP framing error: Invalid RTSP message: byte 5: method; buffered:"),
            "the camera sent data that is not RTSP (Invalid RTSP message: byte 5: method)"
        );
        assert!(
            plain_words(
                "RTSP framing error: Invalid RTSP message: byte 70: response > message-too-large"
            )
            .contains("larger than 1 MiB")
        );
        assert_eq!(
            plain_words("200 response to PLAY CSeq=3: clock_rate=4294967295 rejected"),
            "the camera's stream has an unusable clock rate: 4294967295 rejected"
        );
        assert!(
            plain_words("RTP payload type 0 on a stream whose SDP announced payload type 96")
                .starts_with("the camera sent RTP payload type 0")
        );
        assert_eq!(
            plain_words(
                "corrupt RTP header while expecting seq=Some(Seq { next: 1 }): \"too short\""
            ),
            "the camera sent a corrupt RTP packet: too short"
        );
    }
}
