//! Playback routes: the runs of a camera's stream (`stream=main|sub`, main by default) in a
//! range, and `view.mp4`, an MP4 built on request from the index with HTTP Range and ETag
//! support, streamed from a blocking thread that decrypts only the chunks the requested bytes
//! touch.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use nvr_storage::playback;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::streaming::{body_stream, send_blocking, until_session_ends};
use crate::streams::{self, Use};
use crate::time_range::RangeQuery;

#[derive(Debug, Serialize)]
pub struct RunJson {
    pub start: String,
    pub end: String,
    pub frames: u64,
    pub bytes: u64,
    pub segments: u64,
    pub recording: bool,
    pub codec: String,
    pub width: u16,
    pub height: u16,
}

#[derive(Debug, Serialize)]
pub struct RecordingsJson {
    pub runs: Vec<RunJson>,
}

/// Query of `recordings`.
#[derive(Debug, Deserialize)]
pub struct RecordingsQuery {
    pub start: Option<String>,
    pub end: Option<String>,
    /// `main` (default) or `sub`.
    pub stream: Option<String>,
}

/// `GET /api/cameras/{id}/recordings?start=&end=[&stream=]`.
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<RecordingsQuery>,
) -> ApiResult<Json<RecordingsJson>> {
    let range = RangeQuery {
        start: q.start,
        end: q.end,
    }
    .parse()?;
    let (_, camera) = streams::resolve(&state, id, q.stream.as_deref(), Use::Recordings).await?;
    let store = state.store.clone();
    let runs =
        tokio::task::spawn_blocking(move || playback::runs(&store, camera, range.start, range.end))
            .await??;
    Ok(Json(RecordingsJson {
        runs: runs
            .into_iter()
            .map(|r| RunJson {
                start: r.start.to_rfc3339(),
                end: r.end.to_rfc3339(),
                frames: r.frames,
                bytes: r.video_bytes,
                segments: r.segments,
                recording: r.recording,
                codec: r.rfc6381_codec,
                width: r.width,
                height: r.height,
            })
            .collect(),
    }))
}

/// A parsed `Range` header against a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// No usable range: send everything.
    Full,
    Partial(Range<u64>),
    Unsatisfiable,
}

/// Parses a single-range `bytes=` header. Multiple ranges are answered with the whole body,
/// which RFC 9110 allows.
fn parse_range(value: &str, len: u64) -> RangeSpec {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        match b.parse::<u64>() {
            Ok(0) | Err(_) => return RangeSpec::Unsatisfiable,
            Ok(n) => len.saturating_sub(n)..len,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeSpec::Full;
        };
        let end = if b.is_empty() {
            len
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.saturating_add(1).min(len),
                _ => return RangeSpec::Full,
            }
        };
        start..end
    };
    if range.start >= len || range.is_empty() {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Partial(range)
    }
}

/// Query of `view.mp4`.
#[derive(Debug, Deserialize)]
pub struct ViewQuery {
    pub start: Option<String>,
    pub end: Option<String>,
    /// `h264`: transcode for a browser that cannot decode the recording's codec.
    pub transcode: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `main` (default) or `sub`.
    pub stream: Option<String>,
}

/// `GET /api/cameras/{id}/view.mp4?start=&end=[&stream=][&transcode=h264&width=&height=]`.
pub async fn view_mp4(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Query(q): Query<ViewQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let range = RangeQuery {
        start: q.start.clone(),
        end: q.end.clone(),
    }
    .parse()?;
    let (_, camera) = streams::resolve(&state, id, q.stream.as_deref(), Use::Recordings).await?;
    // Every request that reads footage is on record, whatever its Range (a player's requests
    // of one viewing each get an entry, with the bytes they asked for).
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| r.chars().take(100).collect::<String>());
    let mut detail = serde_json::json!({
        "start": range.start.to_rfc3339(),
        "end": range.end.to_rfc3339(),
        "transcode": q.transcode,
        "range": range_header,
    });
    if let Some(s) = streams::audit_field(camera) {
        detail["stream"] = s.into();
    }
    state.store.audit(
        &user.username,
        "playback",
        &format!("camera:{}", camera.camera),
        detail,
    );
    match q.transcode.as_deref() {
        None => {}
        Some("h264") => {
            return crate::media::transcoded_view(
                state,
                &user,
                camera,
                range.start,
                range.end,
                q.width,
                q.height,
            )
            .await;
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "transcode={other:?}: only h264 is offered"
            )));
        }
    }
    let store = state.store.clone();
    let view =
        tokio::task::spawn_blocking(move || playback::view(&store, camera, range.start, range.end))
            .await??;
    let len = view.mp4.len();
    let etag = view.mp4.etag().to_owned();
    let header_value =
        |s: &str| HeaderValue::from_str(s).map_err(|e| ApiError::internal(e.to_string()));

    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && inm.split(',').any(|t| t.trim() == etag || t.trim() == "*")
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, header_value(&etag)?);
        return Ok(r);
    }
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let spec = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_ok => parse_range(r, len),
        _ => RangeSpec::Full,
    };
    let (status, body_range) = match spec {
        RangeSpec::Full => (StatusCode::OK, 0..len),
        RangeSpec::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
        RangeSpec::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{len}"))?,
            );
            return Ok(r);
        }
    };

    // Produce the bytes on a blocking thread (file reads and decryption), handing them to the
    // body through a small channel so a slow client holds back at most a few pieces.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let mut pieces = view.mp4.pieces(body_range.clone(), view.reader.clone());
    // Read the first piece now, so a failure to read the very first bytes is a proper 500.
    let first = tokio::task::spawn_blocking(move || {
        let first = pieces.next();
        (first, pieces)
    })
    .await?;
    let (first, mut pieces) = first;
    let first = match first {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            return Err(ApiError::new(
                nvr_core::ErrorKind::DataLoss,
                format!("reading recording: {e}"),
            ));
        }
        None => None,
    };
    let camera_id = camera.to_string();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        if let Some(b) = first
            && !send_blocking(&handle, &tx, Ok(b))
        {
            return;
        }
        for piece in pieces.by_ref() {
            let item = piece.map_err(|e| {
                tracing::error!(camera = %camera_id, error = %e, "aborting view.mp4: stored video failed to read");
                std::io::Error::other(e.to_string())
            });
            let failed = item.is_err();
            if !send_blocking(&handle, &tx, item) || failed {
                return;
            }
        }
    });
    let stream = until_session_ends(&state, &user, body_stream(rx));
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, header_value(&etag)?);
    // Footage must not land in a control-room browser's cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_LENGTH,
        header_value(&(body_range.end - body_range.start).to_string())?,
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!(
                "bytes {}-{}/{len}",
                body_range.start,
                body_range.end - 1
            ))?,
        );
    }
    h.insert("x-recording-start", header_value(&view.start.to_rfc3339())?);
    h.insert("x-recording-end", header_value(&view.end.to_rfc3339())?);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any Range header, against any length: no panic, and a partial range is in bounds.
        #[test]
        fn range_headers_never_panic(value in ".{0,40}", len in 0u64..1_000_000) {
            if let RangeSpec::Partial(r) = parse_range(&value, len) {
                prop_assert!(r.start < r.end && r.end <= len);
            }
        }

        #[test]
        fn numeric_ranges_stay_in_bounds(a in 0u64..2_000_000, b in 0u64..2_000_000, len in 1u64..1_000_000) {
            if let RangeSpec::Partial(r) = parse_range(&format!("bytes={a}-{b}"), len) {
                prop_assert!(r.start == a && r.end <= len && r.end > r.start);
            }
        }
    }

    #[test]
    fn range_header_forms() {
        assert_eq!(parse_range("bytes=0-99", 1000), RangeSpec::Partial(0..100));
        assert_eq!(
            parse_range("bytes=500-", 1000),
            RangeSpec::Partial(500..1000)
        );
        assert_eq!(
            parse_range("bytes=-100", 1000),
            RangeSpec::Partial(900..1000)
        );
        assert_eq!(
            parse_range("bytes=900-5000", 1000),
            RangeSpec::Partial(900..1000)
        );
        assert_eq!(parse_range("bytes=1000-", 1000), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), RangeSpec::Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), RangeSpec::Full);
        assert_eq!(parse_range("items=0-1", 1000), RangeSpec::Full);
        assert_eq!(parse_range("bytes=x-1", 1000), RangeSpec::Full);
    }
}
