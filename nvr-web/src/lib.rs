//! The HTTP API and the embedded web UI. [`router`] builds the whole application from an
//! [`AppState`], so tests drive it with `oneshot` and no socket.
//!
//! Invariant: every `/api` route except login and first-run setup passes through
//! [`auth::require_session`] (401 without a session, 403 on a non-GET without the CSRF token);
//! role checks happen in the handlers, server-side. Static UI assets carry no data and are
//! public so the login page can load. Every response carries a strict Content-Security-Policy.

pub mod assets;
pub mod auth;
pub mod cameras;
pub mod error;
pub mod evidence;
pub mod live;
pub mod media;
pub mod metrics;
pub mod motion;
pub mod recordings;
pub mod server;
pub mod status;
pub mod streaming;
pub mod streams;
pub mod time_range;
pub mod tls;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use nvr_app::App;
use nvr_core::Clock;
use nvr_ingest::Recorder;
use nvr_storage::store::Store;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Shared state of every request.
#[derive(Clone)]
pub struct AppState {
    /// The application layer: every operation with rules (accounts, cameras, evidence).
    pub app: Arc<App>,
    pub store: Arc<Store>,
    pub recorder: Arc<Recorder>,
    pub clock: Arc<dyn Clock>,
    /// Mark cookies `Secure` (when served over TLS).
    pub secure_cookies: bool,
    pub server: status::ServerInfo,
    /// The budget of on-demand decoding and transcoding.
    pub media: Arc<media::MediaSlots>,
}

/// Runs `op` with the request's state on a blocking thread. Every handler's work that reads or
/// changes the index (through `nvr-app` or `Store`) goes through here or another blocking
/// thread, never on an async worker: a query waits for a read-only connection, a change for
/// the writer, which a segment's seal holds through its fsync, and the async workers carry
/// every live view and download meanwhile.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    op: impl FnOnce(&AppState) -> error::ApiResult<T> + Send + 'static,
) -> error::ApiResult<T> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || op(&state)).await?
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The Content-Security-Policy of every response: nothing but our own origin, no plugins, no
/// framing, no `<base>` tricks. `blob:` media is for players that feed video through MSE.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// API request bodies are small JSON documents; 64 KiB is far above any legitimate one.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// No handler may take longer than this to produce its response headers (streamed bodies such
/// as view.mp4 keep flowing after it); a client that trickles its body gets 408.
const HANDLER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Builds the application.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/api/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route("/api/me/password", post(users::change_own_password))
        .route("/api/users", get(users::list).post(users::add))
        .route("/api/status", get(status::status))
        .route("/api/exports", get(evidence::list).post(evidence::create))
        .route("/api/exports/{id}", get(evidence::get))
        .route("/api/exports/{id}/bundle.zip", get(evidence::download))
        .route(
            "/api/holds",
            get(evidence::holds).post(evidence::create_hold),
        )
        .route("/api/holds/{id}/release", post(evidence::release_hold))
        .route("/api/audit", get(evidence::audit))
        .route("/metrics", get(metrics::metrics))
        .route(
            "/api/users/{id}",
            axum::routing::patch(users::change).delete(users::delete),
        )
        .route("/api/cameras", get(cameras::list).post(cameras::add))
        .route("/api/cameras/test", post(cameras::test))
        .route(
            "/api/cameras/{id}",
            get(cameras::get)
                .patch(cameras::change)
                .delete(cameras::delete),
        )
        .route("/api/cameras/{id}/recordings", get(recordings::list))
        .route("/api/cameras/{id}/view.mp4", get(recordings::view_mp4))
        .route("/api/cameras/{id}/live", get(live::live))
        .route("/api/cameras/{id}/snapshot.jpg", get(media::snapshot))
        .route("/api/cameras/{id}/motion", get(motion::search))
        .route(
            "/api/cameras/{id}/motion/settings",
            get(motion::settings).patch(motion::change_settings),
        )
        .route("/api/motion/live", get(motion::live))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_session,
        ));
    let public = Router::new()
        .route("/api/login", post(auth::login))
        .route("/api/setup", get(users::setup_state).post(users::setup))
        .route("/api/tls/ca.pem", get(status::ca_pem))
        .merge(assets::routes());
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Router::new()
        .merge(protected)
        .merge(public)
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            HANDLER_TIMEOUT,
        ))
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // The path only: query strings are not secret here, but keep spans short.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests;
