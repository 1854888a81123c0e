//! Live view over WebSocket: fMP4 (an init segment, then one fragment per frame) built from the
//! frames the recorder already receives of one stream of a camera (`stream=main|sub`: grid
//! tiles watch the sub-stream), without transcoding when the browser can decode the camera's
//! codec, and through a per-viewer H.264 transcoder (only while it watches) when not. Each
//! viewer has its own task reading the stream's broadcast; a slow viewer skips to the next key
//! frame and never slows recording or other viewers.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use nvr_core::{StreamKey, VideoCodec, VideoParams};
use nvr_ingest::source::SourceFrame;
use nvr_storage::mp4::SampleEntry;
use nvr_storage::mp4::fragment::{FragmentSample, FragmentWriter, init_segment};
use nvr_storage::mp4::live_timing::LiveTiming;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::streams::{self, Use};

/// Without a frame for this long, the viewer is told the camera's state (the UI shows
/// "reconnecting" with the reason).
const STATUS_AFTER: Duration = Duration::from_secs(3);

/// Duration assumed for a frame before the next one tells: 1/15 s.
const DEFAULT_FRAME_DURATION_90K: u32 = 6000;

#[derive(Debug, Clone, Deserialize)]
pub struct LiveQuery {
    /// What the browser can decode: a comma-separated list of `h264`, `h265`.
    pub codecs: Option<String>,
    /// `main` (default) or `sub`: a grid tile plays the camera's sub-stream.
    pub stream: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Refuses a cross-site WebSocket: a browser sends `Origin`, which must name this host.
pub fn check_origin(headers: &HeaderMap) -> ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser: no ambient cookie to abuse.
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "cross-origin WebSocket refused (Origin {origin:?}, Host {host:?})"
        )))
    }
}

/// `GET /api/cameras/{id}/live` (WebSocket).
pub async fn live(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // The origin is checked before anything else, including whether this is an upgrade.
    check_origin(&headers)?;
    let (_, camera) = streams::resolve(&state, id, q.stream.as_deref(), Use::Live).await?;
    let ws = ws.map_err(|e| ApiError::bad_request(format!("not a WebSocket request: {e}")))?;
    let accepts: Vec<String> = q
        .codecs
        .as_deref()
        .unwrap_or("h264")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    tracing::info!(camera = %camera, user = %user.username, "live view");
    let mut detail = json!({"codecs": accepts});
    if let Some(s) = streams::audit_field(camera) {
        detail["stream"] = s.into();
    }
    state.store.audit(
        &user.username,
        "live_view",
        &format!("camera:{}", camera.camera),
        detail,
    );
    Ok(ws.on_upgrade(move |socket| async move {
        let session = state.app.session_watch(&user);
        let viewer = Viewer {
            state,
            camera,
            accepts_h265: accepts.iter().any(|c| c == "h265" || c == "hevc"),
            box_size: (q.width, q.height),
        };
        viewer.run(socket, session).await;
    }))
}

struct Viewer {
    state: AppState,
    camera: StreamKey,
    accepts_h265: bool,
    /// The tile's size, for transcoding.
    box_size: (Option<u32>, Option<u32>),
}

/// A per-viewer transcoder: frames are pushed from the viewer's task (never blocking) and
/// pulled on a blocking thread that forwards them here.
struct Transcoding {
    transcoder: Arc<nvr_media::Transcoder>,
    output: tokio::sync::mpsc::Receiver<nvr_media::TranscodedFrame>,
    fmp4: crate::media::FragmentedOutput,
    input_params: Arc<VideoParams>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Per-socket stream state: what the browser's SourceBuffer has been told.
struct Stream {
    params: Option<Arc<VideoParams>>,
    writer: FragmentWriter,
    /// Decode time that maps to decode time 0 of the current init segment.
    origin_90k: i64,
    /// Decode times and composition offsets (B-frames) from the frames' media times.
    timing: LiveTiming,
    need_key: bool,
}

impl Viewer {
    /// Streams until the socket closes or `session` ends (logout, expiry, account changed).
    async fn run(self, socket: WebSocket, mut session: nvr_app::accounts::SessionWatch) {
        let (mut tx, mut rx_ws) = socket.split();
        let app = self.state.app.clone();
        let session_ended = async move { session.ended(&app).await };
        tokio::pin!(session_ended);
        let hub = self.state.recorder.live(self.camera);
        let (gop, mut rx) = hub.subscribe();
        let mut s = Stream {
            params: None,
            writer: FragmentWriter::new(),
            origin_90k: 0,
            timing: LiveTiming::new(DEFAULT_FRAME_DURATION_90K),
            need_key: true,
        };
        let mut tc: Option<Transcoding> = None;
        for f in gop {
            if self.handle(&mut tx, &mut s, &mut tc, &f).await.is_err() {
                return;
            }
        }
        loop {
            let transcoded = async {
                match tc.as_mut() {
                    Some(t) => t.output.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                out = transcoded => {
                    let Some(t) = tc.as_mut() else { continue };
                    let Some(frame) = out else {
                        return; // The transcoder failed; the viewer reconnects.
                    };
                    if Self::send_transcoded(&mut tx, t, frame).await.is_err() {
                        return;
                    }
                }
                r = rx.recv() => match r {
                    Ok(f) => {
                        if self.handle(&mut tx, &mut s, &mut tc, &f).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(camera = %self.camera, skipped = n, "live viewer lagged");
                        s.need_key = true;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = &mut session_ended => {
                    let msg = json!({"type": "error", "error": "your session ended; log in again"});
                    let _ = tx.send(Message::Text(msg.to_string().into())).await;
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                }
                _ = tokio::time::sleep(STATUS_AFTER) => {
                    if self.send_status(&mut tx).await.is_err() {
                        return;
                    }
                }
                m = rx_ws.next() => match m {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {} // The client has nothing to say; pings are answered by axum.
                },
            }
        }
    }

    async fn send_status<S>(&self, tx: &mut S) -> Result<(), ()>
    where
        S: SinkExt<Message> + Unpin,
    {
        let status = self.state.recorder.stream_status(self.camera);
        let msg = json!({
            "type": "status",
            "state": status.as_ref().map(|s| s.state),
            "error": status.as_ref().and_then(|s| s.last_error.clone()),
        });
        tx.send(Message::Text(msg.to_string().into()))
            .await
            .map_err(|_| ())
    }

    /// Sends a frame as is, or through a transcoder when the browser cannot decode it.
    async fn handle<S>(
        &self,
        tx: &mut S,
        s: &mut Stream,
        tc: &mut Option<Transcoding>,
        f: &SourceFrame,
    ) -> Result<(), ()>
    where
        S: SinkExt<Message> + Unpin,
    {
        let needs_transcode = f.params.codec == VideoCodec::H265 && !self.accepts_h265;
        if !needs_transcode {
            *tc = None;
            return self.send_frame(tx, s, f).await;
        }
        if tc.as_ref().is_some_and(|t| {
            !Arc::ptr_eq(&t.input_params, &f.params) && *t.input_params != *f.params
        }) {
            *tc = None; // New camera parameters: a new transcoder.
        }
        if tc.is_none() {
            if !f.frame.is_key {
                return Ok(());
            }
            *tc = Some(self.start_transcoder(tx, &f.params).await?);
        }
        if let Some(t) = tc.as_ref() {
            // Never blocks: a transcoder that falls behind drops to the next key frame.
            let _ = t
                .transcoder
                .push(f.frame.data.clone(), f.frame.media_time_90k, f.frame.is_key);
        }
        Ok(())
    }

    async fn start_transcoder<S>(
        &self,
        tx: &mut S,
        params: &Arc<VideoParams>,
    ) -> Result<Transcoding, ()>
    where
        S: SinkExt<Message> + Unpin,
    {
        let refuse = |why: String| json!({"type": "error", "error": why}).to_string();
        let Ok(permit) = self.state.media.transcode.clone().try_acquire_owned() else {
            let _ = tx
                .send(Message::Text(
                    refuse("too many transcoded viewers; try again later".into()).into(),
                ))
                .await;
            return Err(());
        };
        let opts = crate::media::transcode_options(self.box_size.0, self.box_size.1);
        let transcoder = match nvr_media::Transcoder::new(params, &opts) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                let _ = tx
                    .send(Message::Text(
                        refuse(format!("cannot transcode: {e}")).into(),
                    ))
                    .await;
                return Err(());
            }
        };
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(16);
        let puller = transcoder.clone();
        tokio::task::spawn_blocking(move || {
            loop {
                match puller.pull(Duration::from_millis(200)) {
                    Ok(Some(f)) => {
                        if out_tx.blocking_send(f).is_err() {
                            return;
                        }
                    }
                    Ok(None) if out_tx.is_closed() => return,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "live transcoder failed");
                        return;
                    }
                }
            }
        });
        Ok(Transcoding {
            transcoder,
            output: out_rx,
            fmp4: crate::media::FragmentedOutput::default(),
            input_params: params.clone(),
            _permit: permit,
        })
    }

    async fn send_transcoded<S>(
        tx: &mut S,
        t: &mut Transcoding,
        f: nvr_media::TranscodedFrame,
    ) -> Result<(), ()>
    where
        S: SinkExt<Message> + Unpin,
    {
        for out in t.fmp4.push(&t.transcoder, f) {
            match out {
                crate::media::FragmentOut::Init { params, segment } => {
                    let msg = json!({
                        "type": "init",
                        "mime": format!("video/mp4; codecs=\"{}\"", params.rfc6381_codec),
                        "width": params.width,
                        "height": params.height,
                        "transcoded": true,
                    });
                    tx.send(Message::Text(msg.to_string().into()))
                        .await
                        .map_err(|_| ())?;
                    tx.send(Message::Binary(segment)).await.map_err(|_| ())?;
                }
                crate::media::FragmentOut::Fragment(b) => {
                    tx.send(Message::Binary(b)).await.map_err(|_| ())?;
                }
            }
        }
        Ok(())
    }

    async fn send_frame<S>(&self, tx: &mut S, s: &mut Stream, f: &SourceFrame) -> Result<(), ()>
    where
        S: SinkExt<Message> + Unpin,
    {
        let t = s.timing.next(f.frame.media_time_90k, f.frame.is_key);
        if t.restarted {
            // A new camera session restarted its clock: start over with a new init.
            s.params = None;
            s.need_key = true;
        }
        if s.need_key && !f.frame.is_key {
            return Ok(());
        }
        let params_changed = s
            .params
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, &f.params) && **p != *f.params);
        if params_changed {
            let entry = SampleEntry {
                box_bytes: f.params.sample_entry.clone(),
                width: f.params.width,
                height: f.params.height,
            };
            let Ok(init) = init_segment(&entry) else {
                return Err(());
            };
            let msg = json!({
                "type": "init",
                "mime": format!("video/mp4; codecs=\"{}\"", f.params.rfc6381_codec),
                "width": f.params.width,
                "height": f.params.height,
                "transcoded": false,
            });
            tx.send(Message::Text(msg.to_string().into()))
                .await
                .map_err(|_| ())?;
            tx.send(Message::Binary(init)).await.map_err(|_| ())?;
            s.params = Some(f.params.clone());
            s.writer = FragmentWriter::new();
            s.origin_90k = t.decode_90k;
        }
        s.need_key = false;
        let decode_time = u64::try_from(t.decode_90k - s.origin_90k).unwrap_or(0);
        let frag = s
            .writer
            .fragment(
                decode_time,
                &[FragmentSample {
                    duration_90k: t.duration_90k,
                    is_key: f.frame.is_key,
                    data: f.frame.data.clone(),
                    composition_offset_90k: t.composition_offset_90k,
                }],
            )
            .map_err(|_| ())?;
        tx.send(Message::Binary(frag)).await.map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn origins() {
        assert!(check_origin(&headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080")).is_ok());
        assert!(check_origin(&headers(Some("https://nvr.lan:8443"), "nvr.lan:8443")).is_ok());
        assert!(check_origin(&headers(None, "127.0.0.1:8080")).is_ok());
        assert!(check_origin(&headers(Some("http://evil.example"), "127.0.0.1:8080")).is_err());
        assert!(check_origin(&headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080")).is_err());
        assert!(check_origin(&headers(Some("null"), "127.0.0.1:8080")).is_err());
    }
}
