//! The `stream=main|sub` query parameter of the media routes (`recordings`, `view.mp4`,
//! `snapshot.jpg`, `live`): which stream of a camera to read, main by default. Another value is
//! 400; a camera without that stream is 404.

use nvr_core::{CameraId, Stream, StreamKey};
use nvr_storage::CameraRow;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// What a route does with the stream: read its recordings (a sub-stream removed from its camera
/// still has them) or watch it live (it must be configured now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Recordings,
    Live,
}

/// Parses `stream=`: absent is main.
pub fn parse(value: Option<&str>) -> ApiResult<Stream> {
    match value {
        None => Ok(Stream::Main),
        Some(v) => Stream::parse(v)
            .ok_or_else(|| ApiError::bad_request(format!("stream={v:?}: use main or sub"))),
    }
}

/// The camera `id` and its stream named by `value`, or 404 (no such camera, or no such stream
/// of it for `what`), or 400 (not a stream name).
pub async fn resolve(
    state: &AppState,
    id: i64,
    value: Option<&str>,
    what: Use,
) -> ApiResult<(CameraRow, StreamKey)> {
    let stream = parse(value)?;
    let camera = CameraId(id);
    let row = crate::blocking(state, move |s| Ok(s.app.camera(camera)?)).await?;
    let has = match what {
        Use::Recordings => row.has_stream_row(stream),
        Use::Live => row.stream_url(stream).is_some(),
    };
    if !has {
        return Err(ApiError::not_found(format!(
            "camera {camera} has no {stream} stream"
        )));
    }
    Ok((row, camera.stream(stream)))
}

/// The audit detail's `stream` field: only for a sub-stream (main entries look as before).
pub fn audit_field(key: StreamKey) -> Option<&'static str> {
    (key.stream != Stream::Main).then(|| key.stream.as_str())
}
