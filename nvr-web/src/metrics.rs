//! `GET /metrics`: camera state and counters in the Prometheus text format, for a collector on
//! this machine or the LAN (it needs a session like every other route). A camera's main stream
//! is its series without a `stream` label; its sub-stream's have `stream="sub"`.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiResult;

/// Escapes a label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    // The cameras and their bytes come from the index: off the async workers.
    let cameras = crate::blocking(&state, |s| {
        let cameras = s.app.cameras()?;
        let bytes = cameras
            .iter()
            .map(|c| s.app.camera_bytes(c.id))
            .collect::<Result<Vec<u64>, _>>()?;
        Ok(cameras.into_iter().zip(bytes).collect::<Vec<_>>())
    })
    .await?;
    let mut out = String::new();
    type Getter = fn(&nvr_ingest::CameraStatus) -> f64;
    let series: [(&str, &str, &str, Getter); 10] = [
        (
            "nvr_camera_up",
            "gauge",
            "1 while the camera is recording",
            |s| {
                f64::from(u8::from(
                    s.state == nvr_ingest::status::CameraState::Recording,
                ))
            },
        ),
        (
            "nvr_camera_frames_received_total",
            "counter",
            "frames received from the camera",
            |s| s.frames_received as f64,
        ),
        (
            "nvr_camera_frames_written_total",
            "counter",
            "frames written to storage",
            |s| s.frames_written as f64,
        ),
        (
            "nvr_camera_frames_skipped_total",
            "counter",
            "frames dropped before a key frame",
            |s| s.frames_skipped as f64,
        ),
        (
            "nvr_camera_frames_dropped_disk_total",
            "counter",
            "frames not recorded because the disk was full",
            |s| s.frames_dropped_disk as f64,
        ),
        (
            "nvr_camera_disk_stalled",
            "gauge",
            "1 while recording is stalled because the disk is full",
            |s| f64::from(u8::from(s.disk_stalled)),
        ),
        (
            "nvr_camera_video_bytes_received_total",
            "counter",
            "video bytes received",
            |s| s.video_bytes_received as f64,
        ),
        (
            "nvr_camera_connects_total",
            "counter",
            "sessions that delivered video",
            |s| s.connects as f64,
        ),
        (
            "nvr_camera_failures_total",
            "counter",
            "failed or ended sessions",
            |s| s.failures as f64,
        ),
        (
            "nvr_camera_fps",
            "gauge",
            "frames per second over the last few seconds",
            |s| s.fps,
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (c, _) in &cameras {
            if let Some(s) = state.recorder.status(c.id) {
                let _ = writeln!(
                    out,
                    "{name}{{camera=\"{}\",name=\"{}\"}} {}",
                    c.id,
                    label(&c.name),
                    get(&s)
                );
            }
            // The sub-stream's series carry `stream="sub"` (the main stream's are as before).
            if let Some(s) = state.recorder.stream_status(c.id.sub())
                && c.sub_url.is_some()
            {
                let _ = writeln!(
                    out,
                    "{name}{{camera=\"{}\",name=\"{}\",stream=\"sub\"}} {}",
                    c.id,
                    label(&c.name),
                    get(&s)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP nvr_camera_storage_bytes bytes of recordings on disk\n# TYPE nvr_camera_storage_bytes gauge"
    );
    for (c, bytes) in &cameras {
        let _ = writeln!(
            out,
            "nvr_camera_storage_bytes{{camera=\"{}\",name=\"{}\"}} {bytes}",
            c.id,
            label(&c.name)
        );
    }
    let _ = writeln!(
        out,
        "# HELP nvr_live_viewers open live views\n# TYPE nvr_live_viewers gauge"
    );
    for (c, _) in &cameras {
        let n: usize = nvr_core::Stream::ALL
            .into_iter()
            .map(|s| state.recorder.live(c.id.stream(s)).viewers())
            .sum();
        let _ = writeln!(
            out,
            "nvr_live_viewers{{camera=\"{}\",name=\"{}\"}} {n}",
            c.id,
            label(&c.name)
        );
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
