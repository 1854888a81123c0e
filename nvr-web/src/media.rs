//! Decoded media, made on demand with GStreamer (nvr-media) and never on the recording path:
//! JPEG snapshots (timeline thumbnails, "now"), and H.264 transcoding for browsers that cannot
//! decode a camera's H.265, for live view and for playback.
//!
//! Decoding costs CPU the recorder needs, so it is bounded: at most [`DECODE_SLOTS`] snapshots
//! decode at once (others wait their turn) and at most [`TRANSCODE_SLOTS`] viewers are
//! transcoded at once (others are told so).

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use nvr_core::{ErrorKind, StreamKey, Time90k, VideoParams};
use nvr_media::{TranscodeOptions, Transcoder};
use nvr_storage::mp4::SampleEntry;
use nvr_storage::mp4::fragment::{FragmentSample, FragmentWriter, init_segment};
use nvr_storage::playback;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::streaming::{body_stream, send_blocking, until_session_ends};
use crate::streams::{self, Use};

/// Snapshots decoded at once: each takes 50-200 ms of one core.
pub const DECODE_SLOTS: usize = 2;
/// Transcoded viewers at once: each takes about 10% of a core at 640x360.
pub const TRANSCODE_SLOTS: usize = 4;
/// Largest snapshot or transcode width accepted (4K).
const MAX_WIDTH: u32 = 3840;

/// The decoding budget shared by every request.
#[derive(Debug)]
pub struct MediaSlots {
    pub decode: Semaphore,
    pub transcode: Arc<Semaphore>,
}

impl Default for MediaSlots {
    fn default() -> Self {
        MediaSlots {
            decode: Semaphore::new(DECODE_SLOTS),
            transcode: Arc::new(Semaphore::new(TRANSCODE_SLOTS)),
        }
    }
}

fn media_error(e: nvr_media::MediaError) -> ApiError {
    match e {
        nvr_media::MediaError::MissingElement { .. } | nvr_media::MediaError::GstInit(_) => {
            ApiError::internal(e.to_string())
        }
        e => ApiError::new(ErrorKind::DataLoss, format!("decoding failed: {e}")),
    }
}

#[derive(Debug, Deserialize)]
pub struct SnapshotQuery {
    pub at: Option<String>,
    pub width: Option<u32>,
    /// `main` (default) or `sub` (a small picture decodes much faster: thumbnails).
    pub stream: Option<String>,
}

/// `GET /api/cameras/{id}/snapshot.jpg?at=&width=&stream=`: the key frame of the stream at or
/// before `at` (the latest live key frame without `at`), as a JPEG at most `width` wide.
pub async fn snapshot(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<SnapshotQuery>,
) -> ApiResult<Response> {
    let what = if q.at.is_some() {
        Use::Recordings
    } else {
        Use::Live
    };
    let (_, camera) = streams::resolve(&state, id, q.stream.as_deref(), what).await?;
    let width = q.width.map(|w| w.clamp(16, MAX_WIDTH));
    let (params, data, time) = match &q.at {
        Some(at) => {
            let at = Time90k::parse_rfc3339(at)
                .map_err(|e| ApiError::bad_request(format!("at: {e}")))?;
            // A picture of the past is recorded footage: on record, like playback.
            let mut detail = serde_json::json!({"at": at.to_rfc3339()});
            if let Some(s) = streams::audit_field(camera) {
                detail["stream"] = s.into();
            }
            state.store.audit(
                &user.username,
                "snapshot",
                &format!("camera:{}", camera.camera),
                detail,
            );
            let store = state.store.clone();
            let k = tokio::task::spawn_blocking(move || playback::key_frame_at(&store, camera, at))
                .await??;
            (k.params, k.data, Some(k.time))
        }
        None => {
            let f = state
                .recorder
                .live(camera)
                .last_key_frame()
                .ok_or_else(|| ApiError::not_found("no live picture yet"))?;
            ((*f.params).clone(), f.frame.data, None)
        }
    };
    let _slot = state
        .media
        .decode
        .acquire()
        .await
        .map_err(|_| ApiError::internal("decoder closed"))?;
    let jpeg =
        tokio::task::spawn_blocking(move || nvr_media::snapshot_jpeg(&params, &[data], width, 80))
            .await?
            .map_err(media_error)?;
    let mut r = jpeg.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    // Footage must not land in a control-room browser's cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(t) = time
        && let Ok(v) = HeaderValue::from_str(&t.to_rfc3339())
    {
        h.insert("x-frame-time", v);
    }
    Ok(r)
}

/// Output size and bitrate for a viewer's box: fit `width`x`height` (default 640x360), and about
/// 0.1 bit per pixel per frame at 15 fps, between 300 kbit/s and 4 Mbit/s.
pub fn transcode_options(width: Option<u32>, height: Option<u32>) -> TranscodeOptions {
    let w = width.unwrap_or(640).clamp(64, MAX_WIDTH);
    let h = height.unwrap_or(360).clamp(64, 2160);
    let kbps = (u64::from(w) * u64::from(h) * 15 / 10 / 1000).clamp(300, 4000) as u32;
    TranscodeOptions {
        max_width: w,
        max_height: h,
        bitrate_kbps: kbps,
    }
}

/// Builds fMP4 from transcoder output: an init segment once the encoder's parameters are known,
/// then one fragment per frame (the duration of a frame is known when the next one comes, so
/// each fragment is emitted one frame late; the last one gets the previous duration).
#[derive(Debug)]
pub struct FragmentedOutput {
    params: Option<VideoParams>,
    writer: FragmentWriter,
    pending: Option<nvr_media::TranscodedFrame>,
    origin_pts: i64,
    last_duration: u32,
}

impl Default for FragmentedOutput {
    fn default() -> Self {
        FragmentedOutput {
            params: None,
            writer: FragmentWriter::new(),
            pending: None,
            origin_pts: 0,
            last_duration: 6000,
        }
    }
}

/// What [`FragmentedOutput`] produces.
#[derive(Debug)]
pub enum FragmentOut {
    Init { params: VideoParams, segment: Bytes },
    Fragment(Bytes),
}

impl FragmentedOutput {
    /// Feeds one output frame; returns what is ready to send.
    pub fn push(&mut self, t: &Transcoder, f: nvr_media::TranscodedFrame) -> Vec<FragmentOut> {
        let mut out = Vec::new();
        if self.params.is_none() {
            let Some(p) = t.output_params() else {
                return out;
            };
            let entry = SampleEntry {
                box_bytes: p.sample_entry.clone(),
                width: p.width,
                height: p.height,
            };
            if let Ok(segment) = init_segment(&entry) {
                out.push(FragmentOut::Init {
                    params: p.clone(),
                    segment,
                });
                self.params = Some(p);
                self.origin_pts = f.pts_90k;
            } else {
                return out;
            }
        }
        if let Some(prev) = self.pending.take() {
            let d = u32::try_from(f.pts_90k - prev.pts_90k)
                .unwrap_or(self.last_duration)
                .max(1);
            self.last_duration = d;
            if let Some(b) = self.fragment(&prev, d) {
                out.push(FragmentOut::Fragment(b));
            }
        }
        self.pending = Some(f);
        out
    }

    /// Emits the last frame.
    pub fn finish(&mut self) -> Option<Bytes> {
        let f = self.pending.take()?;
        let d = self.last_duration;
        self.fragment(&f, d)
    }

    fn fragment(&mut self, f: &nvr_media::TranscodedFrame, duration: u32) -> Option<Bytes> {
        let decode_time = u64::try_from(f.pts_90k - self.origin_pts).unwrap_or(0);
        self.writer
            .fragment(
                decode_time,
                &[FragmentSample {
                    duration_90k: duration,
                    is_key: f.is_key,
                    data: f.data.clone(),
                    // x264 without B-frames: presented in decode order.
                    composition_offset_90k: 0,
                }],
            )
            .ok()
    }
}

/// `view.mp4?...&transcode=h264`: the range transcoded to H.264 as a fragmented MP4 stream,
/// for a browser without HEVC. No Range: seeking is a new request at the new time. The stream
/// starts at the key frame at or before `start` (its wall time is in `x-recording-start`).
pub async fn transcoded_view(
    state: AppState,
    user: &CurrentUser,
    camera: StreamKey,
    start: Time90k,
    end: Time90k,
    width: Option<u32>,
    height: Option<u32>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let view =
        tokio::task::spawn_blocking(move || playback::view(&store, camera, start, end)).await??;
    let first = view
        .segments
        .first()
        .ok_or_else(|| ApiError::not_found("no recordings in this range"))?;
    let params_id = first.video_params_id;
    let params = crate::blocking(&state, move |s| Ok(s.app.video_params(params_id)?)).await?;
    let permit = state
        .media
        .transcode
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError(nvr_app::AppError::throttled(
                "too many transcoded streams right now",
                Duration::from_secs(5),
            ))
        })?;
    let transcoder =
        Transcoder::new(&params, &transcode_options(width, height)).map_err(media_error)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let reader = view.reader.clone();
    let segments = view.segments.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // Held until this thread ends: a client that stops reading frees it within the
        // producer's send timeout.
        let _permit = permit;
        let mut out = FragmentedOutput::default();
        let send = |out: Vec<FragmentOut>| -> bool {
            out.into_iter().all(|o| {
                let b = match o {
                    FragmentOut::Init { segment, .. } => segment,
                    FragmentOut::Fragment(b) => b,
                };
                send_blocking(&handle, &tx, Ok(b))
            })
        };
        let drain = |t: &Transcoder, out: &mut FragmentedOutput, wait: Duration| -> bool {
            while let Ok(Some(f)) = t.pull(wait) {
                if !send(out.push(t, f)) {
                    return false;
                }
            }
            true
        };
        let mut pts = 0i64;
        for s in &segments {
            for f in &s.frames[s.frame_range.clone()] {
                let data = match reader.read(s.id.0 as u64, f.data_offset, f.size_bytes as usize) {
                    Ok(d) => d,
                    Err(e) => {
                        send_blocking(&handle, &tx, Err(std::io::Error::other(e.to_string())));
                        return;
                    }
                };
                // Playback must not drop frames: wait for room in the transcoder's queue.
                while transcoder.queued_input() >= nvr_media::MAX_QUEUED_INPUT {
                    if !drain(&transcoder, &mut out, Duration::from_millis(50)) {
                        return;
                    }
                }
                // The presentation time: decode time plus the composition offset (B-frames).
                let presented = pts + i64::from(f.composition_offset_90k);
                if transcoder.push(data, presented, f.is_key).is_err() {
                    // A dropped frame restarts at the next key frame; go on.
                }
                pts += i64::from(f.duration_90k);
                if !drain(&transcoder, &mut out, Duration::ZERO) {
                    return;
                }
            }
        }
        let _ = transcoder.finish();
        while !transcoder.is_drained() {
            match transcoder.pull(Duration::from_secs(5)) {
                Ok(Some(f)) => {
                    if !send(out.push(&transcoder, f)) {
                        return;
                    }
                }
                _ => break,
            }
        }
        if let Some(b) = out.finish() {
            send_blocking(&handle, &tx, Ok(b));
        }
    });
    let stream = until_session_ends(&state, user, body_stream(rx));
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&view.first_frame_wall.to_rfc3339()) {
        h.insert("x-recording-start", v);
    }
    Ok(resp)
}
