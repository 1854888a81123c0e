//! The web UI's static files, compiled into the binary: no file is read at run time and nothing
//! is fetched from anywhere else.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// (path, content type, bytes) of every embedded asset. `/` is the single page (index.html);
/// the UI routes with `#/...` fragments, so no other HTML path exists.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../ui/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/app.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../ui/app.css"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_bytes!("../ui/favicon.svg"),
    ),
    (
        "/icons.svg",
        "image/svg+xml",
        include_bytes!("../ui/icons.svg"),
    ),
    (
        "/js/api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/api.js"),
    ),
    (
        "/js/util.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/util.js"),
    ),
    (
        "/js/login.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/login.js"),
    ),
    (
        "/js/live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/live.js"),
    ),
    (
        "/js/live-player.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/live-player.js"),
    ),
    (
        "/js/camera.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/camera.js"),
    ),
    (
        "/js/timeline.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/timeline.js"),
    ),
    (
        "/js/runs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/runs.js"),
    ),
    (
        "/js/digital-zoom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/digital-zoom.js"),
    ),
    (
        "/js/thumbs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/thumbs.js"),
    ),
    (
        "/js/recorded-player.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/recorded-player.js"),
    ),
    (
        "/js/cameras-admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/cameras-admin.js"),
    ),
    (
        "/js/users-admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/users-admin.js"),
    ),
    (
        "/js/status.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/status.js"),
    ),
    (
        "/js/range-select.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/range-select.js"),
    ),
    (
        "/js/range-bar.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/range-bar.js"),
    ),
    (
        "/js/evidence-marks.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/evidence-marks.js"),
    ),
    (
        "/js/evidence-dialogs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/evidence-dialogs.js"),
    ),
    (
        "/js/evidence.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/evidence.js"),
    ),
    (
        "/js/audit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/audit.js"),
    ),
    (
        "/js/motion.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/js/motion.js"),
    ),
];

fn serve(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for &(path, ct, body) in ASSETS {
        r = r.route(path, get(move || async move { serve(ct, body) }));
    }
    r
}
