//! Testing a camera before it is added: connect, wait for the first frames, and report codec,
//! resolution and frame rate, or exactly why not (auth, unreachable, no video).

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use crate::error::{CameraErrorKind, IngestError};
use crate::source::{AudioOffer, CameraSource, ConnectTarget};

/// What a successful probe learned.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeResult {
    /// `h264` or `h265`.
    pub codec: String,
    pub rfc6381_codec: String,
    pub width: u16,
    pub height: u16,
    /// Measured from the frames received, or announced in the SDP.
    pub fps: Option<f64>,
    pub has_audio: bool,
    /// The audio the recorder would record (codec set) or the camera's other audio; null
    /// without audio.
    pub audio: Option<AudioOffer>,
    /// Whether a key frame arrived within the probe.
    pub saw_key_frame: bool,
}

/// Frames to look at: enough to measure the frame rate.
const PROBE_FRAMES: usize = 8;

/// Connects to `target` and reads a few frames, giving up after `timeout`.
pub async fn probe(
    source: &dyn CameraSource,
    target: &ConnectTarget,
    timeout: Duration,
) -> Result<ProbeResult, IngestError> {
    let work = async {
        let mut session = source.connect(target).await?;
        let mut first = None;
        // The earliest and latest media times: with B-frames the frames' times go back and
        // forth, and n frames span n - 1 frame intervals from the earliest to the latest.
        let mut span: Option<(i64, i64)> = None;
        let mut n = 0usize;
        let mut saw_key = false;
        while let Some(item) = session.frames.next().await {
            let f = item?;
            saw_key |= f.frame.is_key;
            if first.is_none() {
                first = Some(f.clone());
            }
            let t = f.frame.media_time_90k;
            span = Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            n += 1;
            if n >= PROBE_FRAMES {
                break;
            }
        }
        let first = first.ok_or_else(|| {
            IngestError::new(CameraErrorKind::NoVideo, "the camera sent no video frame")
        })?;
        let measured = match span {
            Some((lo, hi)) if n > 1 && hi > lo => {
                Some((n - 1) as f64 * 90_000.0 / (hi - lo) as f64)
            }
            _ => None,
        };
        Ok(ProbeResult {
            codec: first.params.codec.name().to_owned(),
            rfc6381_codec: first.params.rfc6381_codec.clone(),
            width: first.params.width,
            height: first.params.height,
            fps: measured.or(session.info.announced_fps.map(f64::from)),
            has_audio: session.info.has_audio,
            audio: session.info.audio.clone(),
            saw_key_frame: saw_key,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(IngestError::new(
            CameraErrorKind::Unreachable,
            format!("no video within {} s", timeout.as_secs()),
        )),
    }
}
