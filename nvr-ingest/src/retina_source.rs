//! The real camera source: RTSP over TCP with the `retina` crate. The only module that names
//! retina.
//!
//! Timestamps: retina is told to reject RTP timestamps that go backward or jump forward more
//! than [`MAX_TIMESTAMP_JUMP_SECS`]; such a jump ends the session, and the supervisor's
//! reconnect starts a new run, instead of corrupting the current one.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use nvr_core::frame::is_random_access;
use nvr_core::{Clock, HostKind, VideoCodec, VideoFrame, VideoParams};
use retina::client::{
    Credentials, PlayOptions, SessionOptions, SetupOptions, TeardownPolicy, Transport,
};
use retina::codec::{CodecItem, ParametersRef};

use crate::egress::{EgressPolicy, same_destination};
use crate::error::{CameraErrorKind, IngestError};
use crate::source::{CameraSource, ConnectTarget, Session, SessionInfo, SourceFrame};

/// Largest forward jump of RTP timestamps accepted within a session: 10 s, the stall timeout.
pub const MAX_TIMESTAMP_JUMP_SECS: u32 = 10;

/// Connects to cameras with retina, only where the egress policy allows.
#[derive(Debug)]
pub struct RetinaSource {
    clock: Arc<dyn Clock>,
    egress: Arc<EgressPolicy>,
}

impl RetinaSource {
    pub fn new(clock: Arc<dyn Clock>, egress: Arc<EgressPolicy>) -> Self {
        RetinaSource { clock, egress }
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

/// Classifies a retina error for the camera status.
fn classify(e: &retina::Error) -> IngestError {
    let text = e.to_string();
    // retina's messages carry a multi-line context; the first line says what happened.
    let first = text.lines().next().unwrap_or("").to_owned();
    let kind = match e.status_code() {
        Some(401 | 403) => CameraErrorKind::Auth,
        Some(404) => CameraErrorKind::NoVideo,
        Some(_) => CameraErrorKind::Protocol,
        None if first.starts_with("Unable to connect") || first.starts_with("Error reading") => {
            CameraErrorKind::Unreachable
        }
        None => CameraErrorKind::Protocol,
    };
    let message = match kind {
        CameraErrorKind::Auth => format!("authentication failed: {first}"),
        _ => first,
    };
    IngestError::new(kind, message)
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

impl CameraSource for RetinaSource {
    fn connect(
        &self,
        target: &ConnectTarget,
    ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>> {
        let target = target.clone();
        Box::pin(async move {
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
                .teardown(TeardownPolicy::Never);
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
                        format!(
                            "the camera offers no H.264 or H.265 video stream (offered: {})",
                            if offered.is_empty() {
                                "nothing".into()
                            } else {
                                offered.join(", ")
                            }
                        ),
                    )
                })?;
            let info = SessionInfo {
                video_encoding: codec.name().to_owned(),
                announced_fps: streams[video_i].framerate(),
                has_audio,
            };
            session
                .setup(
                    video_i,
                    SetupOptions::default().transport(Transport::Tcp(Default::default())),
                )
                .await
                .map_err(|e| classify(&e))?;
            let max_jump = NonZeroU32::new(MAX_TIMESTAMP_JUMP_SECS).unwrap_or(NonZeroU32::MIN);
            let playing = session
                .play(PlayOptions::default().enforce_timestamps_with_max_jump_secs(max_jump))
                .await
                .map_err(|e| classify(&e))?;
            let demuxed = playing.demuxed().map_err(|e| classify(&e))?;
            let clock = self.clock.clone();
            let state = (demuxed, None::<Arc<VideoParams>>, clock);
            let frames = futures::stream::unfold(
                state,
                move |(mut demuxed, mut params, clock)| async move {
                    loop {
                        let item = match demuxed.next().await {
                            None => return None,
                            Some(Err(e)) => {
                                return Some((Err(classify(&e)), (demuxed, params, clock)));
                            }
                            Some(Ok(item)) => item,
                        };
                        let CodecItem::VideoFrame(f) = item else {
                            continue;
                        };
                        if f.stream_id() != video_i {
                            continue;
                        }
                        if f.has_new_parameters() || params.is_none() {
                            let p = match demuxed.streams()[video_i].parameters() {
                                Some(ParametersRef::Video(v)) => video_params(codec, v),
                                _ => Err(IngestError::new(
                                    CameraErrorKind::Protocol,
                                    "video frame without video parameters",
                                )),
                            };
                            match p {
                                Ok(p) => params = Some(Arc::new(p)),
                                Err(e) => return Some((Err(e), (demuxed, params, clock))),
                            }
                        }
                        let Some(p) = params.clone() else { continue };
                        let ts = f.timestamp();
                        let rate = i64::from(ts.clock_rate().get());
                        let media_time_90k = if rate == 90_000 {
                            ts.elapsed()
                        } else {
                            (i128::from(ts.elapsed()) * 90_000 / i128::from(rate)) as i64
                        };
                        let is_key =
                            f.is_random_access_point() || is_random_access(codec, f.data());
                        let frame = VideoFrame {
                            media_time_90k,
                            received: clock.realtime(),
                            is_key,
                            data: f.into_data().into(),
                        };
                        return Some((
                            Ok(SourceFrame { params: p, frame }),
                            (demuxed, params, clock),
                        ));
                    }
                },
            );
            Ok(Session {
                info,
                frames: Box::pin(frames),
            })
        })
    }
}
