//! HTTP side of authentication: the session cookie (HttpOnly, SameSite=Strict, `Secure` over
//! TLS), the CSRF header every non-GET request must carry, the middleware that puts the
//! current user on every request but login, and the login/logout/me routes. The rules
//! (throttling, password checks, sessions) live in `nvr_app::accounts`.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nvr_app::accounts::{LoginOutcome, SESSION_LIFETIME_SECS};
use nvr_app::{Actor, SessionUser};
use nvr_core::Role;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "nvr_session";
/// Header carrying the CSRF token on non-GET requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated user of a request.
pub type CurrentUser = SessionUser;

/// The actor of a request's user.
pub fn actor(user: &CurrentUser) -> Actor {
    Actor::User(user.clone())
}

fn session_cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// Middleware for every route but login: resolves the session cookie to a user, refuses
/// requests without one (401), and checks the CSRF token on every non-GET/HEAD request (403).
pub async fn require_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match authenticate(&state, req.headers(), req.method()).await {
        Ok(user) => {
            let (method, path) = (req.method().clone(), req.uri().path().to_owned());
            let username = user.username.clone();
            req.extensions_mut().insert(user);
            let resp = next.run(req).await;
            if resp.status() == axum::http::StatusCode::FORBIDDEN {
                // Every refused attempt is on record, whatever the route.
                state.store.audit(
                    &username,
                    "denied",
                    &format!("route:{path}"),
                    serde_json::json!({"method": method.as_str()}),
                );
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// Resolves the session on a blocking thread (off the async workers: a query, even on a reader
/// connection, must not hold a worker that the live fan-out needs).
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult<CurrentUser> {
    let token =
        session_cookie_value(headers).ok_or_else(|| ApiError::unauthenticated("not logged in"))?;
    let csrf = (!matches!(*method, Method::GET | Method::HEAD)).then(|| {
        headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    });
    let app = state.app.clone();
    Ok(tokio::task::spawn_blocking(move || app.authenticate(&token, csrf.as_deref())).await??)
}

#[derive(Deserialize)]
pub struct LoginRequest {
    pub(crate) username: String,
    pub(crate) password: String,
    /// First-run setup only: the code `nvr serve` printed on the console.
    #[serde(default)]
    pub(crate) setup_code: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &nvr_core::loggable_username(&self.username))
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
pub struct LoginResponse {
    username: String,
    role: Role,
    csrf_token: String,
}

/// The client's address (its connection's peer).
pub fn client_ip(connect: Option<&axum::Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    connect
        .map(|c| c.0.0.ip())
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// `POST /api/login`.
pub async fn login(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let ip = client_ip(connect.as_ref());
    let outcome = state.app.login(ip, &req.username, req.password).await?;
    session_response(&state, outcome)
}

/// The response that starts a session: the cookie, and the CSRF token in the body.
pub fn session_response(state: &AppState, outcome: LoginOutcome) -> ApiResult<Response> {
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_LIFETIME_SECS}{}",
        outcome.token,
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let mut resp = Json(LoginResponse {
        username: outcome.user.username,
        role: outcome.user.role,
        csrf_token: outcome.user.csrf_token,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(resp)
}

/// `POST /api/logout`: ends the session and its streams.
pub async fn logout(
    State(state): State<AppState>,
    axum::Extension(user): axum::Extension<CurrentUser>,
) -> ApiResult<Response> {
    crate::blocking(&state, move |s| Ok(s.app.logout(&user)?)).await?;
    let mut resp = axum::http::StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("nvr_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

/// `GET /api/me`: who is logged in, and the CSRF token (for a reloaded page).
pub async fn me(axum::Extension(user): axum::Extension<CurrentUser>) -> Json<LoginResponse> {
    Json(LoginResponse {
        username: user.username,
        role: user.role,
        csrf_token: user.csrf_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; nvr_session=abc; b=2"),
        );
        assert_eq!(session_cookie_value(&h), Some("abc".into()));
        assert_eq!(session_cookie_value(&HeaderMap::new()), None);
    }
}
