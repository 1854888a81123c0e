//! The web UI's static files, compiled into the binary: no file is read at run time and nothing
//! is fetched from anywhere else.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// (path, content type, bytes) of every embedded asset.
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
