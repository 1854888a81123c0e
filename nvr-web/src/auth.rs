//! Authentication and authorization: password hashing (Argon2id), sessions (random ids in an
//! HttpOnly SameSite=Strict cookie, stored hashed), the CSRF token every non-GET request must
//! echo, login throttling per client address, and the middleware that puts the current user
//! on every request but login.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nvr_core::{Duration90k, ErrorKind, Role, UserId};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "nvr_session";
/// Header carrying the CSRF token on non-GET requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions last a control-room shift and then some: 12 hours.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;
/// At most this many failed logins per client address per window...
pub const LOGIN_FAILURES_ALLOWED: usize = 10;
/// ...of this length. Old failures fall out of the window, so nobody is locked out for good.
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Hashes a password with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    nvr_storage::keys::random_bytes(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC string; false on any mismatch or malformed hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a new password against the minimal policy.
pub fn check_password_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("password must be at least 8 characters".into());
    }
    if password.len() > 1024 {
        return Err("password must be at most 1024 bytes".into());
    }
    Ok(())
}

/// The authenticated user of a request.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    session_sha256: [u8; 32],
}

impl CurrentUser {
    /// Refuses the request unless the user may administer.
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.role.can_administer() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the admin role; {} has role {}",
                self.username, self.role
            )))
        }
    }

    /// Refuses the request unless the user may export and hold evidence.
    pub fn require_evidence(&self) -> ApiResult<()> {
        if self.role.can_export() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the evidence or admin role; {} has role {}",
                self.username, self.role
            )))
        }
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn random_token() -> ApiResult<String> {
    let mut b = [0u8; 32];
    nvr_storage::keys::random_bytes(&mut b)?;
    Ok(hex::encode(b))
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

/// Compares two strings in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Middleware for every route but login: resolves the session cookie to a user, refuses
/// requests without one (401), and checks the CSRF token on every non-GET/HEAD request (403).
pub async fn require_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match authenticate(&state, req.headers(), req.method()) {
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

fn authenticate(state: &AppState, headers: &HeaderMap, method: &Method) -> ApiResult<CurrentUser> {
    let token =
        session_cookie_value(headers).ok_or_else(|| ApiError::unauthenticated("not logged in"))?;
    let hash = sha256(token.as_bytes());
    let now = state.clock.realtime();
    let session = state
        .store
        .db()
        .session(&hash, now.0)?
        .ok_or_else(|| ApiError::unauthenticated("session expired or unknown; log in again"))?;
    if !matches!(*method, Method::GET | Method::HEAD) {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(sent, &session.csrf_token) {
            return Err(ApiError::forbidden(
                "missing or wrong X-CSRF-Token header (it is returned by POST /api/login)",
            ));
        }
    }
    Ok(CurrentUser {
        id: session.user.id,
        username: session.user.username,
        role: session.user.role,
        csrf_token: session.csrf_token,
        session_sha256: hash,
    })
}

/// Failed login attempts per client address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True if `ip` has used up its failures in the current window.
    pub fn is_throttled(&self, ip: IpAddr, now: Instant) -> bool {
        let mut m = self.lock();
        let Some(q) = m.get_mut(&ip) else {
            return false;
        };
        while q
            .front()
            .is_some_and(|&t| now.duration_since(t) >= LOGIN_FAILURE_WINDOW)
        {
            q.pop_front();
        }
        q.len() >= LOGIN_FAILURES_ALLOWED
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut m = self.lock();
        // Bound memory under a spray of addresses: forget addresses with no recent failure.
        if m.len() > 10_000 {
            m.retain(|_, q| {
                q.back()
                    .is_some_and(|&t| now.duration_since(t) < LOGIN_FAILURE_WINDOW)
            });
        }
        m.entry(ip).or_default().push_back(now);
    }
}

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

impl LoginRequest {
    pub fn into_parts(self) -> (String, String) {
        (self.username, self.password)
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Serialize)]
pub struct LoginResponse {
    username: String,
    role: Role,
    csrf_token: String,
}

fn client_ip(connect: Option<&axum::Extension<ConnectInfo<std::net::SocketAddr>>>) -> IpAddr {
    connect
        .map(|c| c.0.0.ip())
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// `POST /api/login`.
pub async fn login(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let ip = client_ip(connect.as_ref());
    if state.login_throttle.is_throttled(ip, Instant::now()) {
        return Err(ApiError::new(
            ErrorKind::ResourceExhausted,
            "too many failed logins from this address; wait a few minutes",
        ));
    }
    let user = state.store.db().user_by_name(&req.username)?;
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = req.password;
    // Verify even for unknown users (against a dummy hash) so timing does not reveal names.
    let ok = tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_password(&password, &phc),
        None => {
            verify_password(&password, DUMMY_HASH);
            false
        }
    })
    .await?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            state.login_throttle.record_failure(ip, Instant::now());
            tracing::warn!(username = %req.username, client = %ip, "failed login");
            state.store.audit(
                &req.username,
                "login_failed",
                &format!("user:{}", req.username),
                serde_json::json!({"client": ip.to_string()}),
            );
            return Err(ApiError::unauthenticated("invalid username or password"));
        }
    };
    tracing::info!(username = %user.username, client = %ip, "login");
    state.store.audit(
        &user.username,
        "login",
        &format!("user:{}", user.username),
        serde_json::json!({"client": ip.to_string()}),
    );
    start_session(&state, user.id, &user.username, user.role)
}

/// Creates a session for a user: the cookie on the response, the CSRF token in the body.
pub fn start_session(
    state: &AppState,
    id: UserId,
    username: &str,
    role: Role,
) -> ApiResult<Response> {
    let token = random_token()?;
    let csrf_token = random_token()?;
    let now = state.clock.realtime();
    let expires = now + Duration90k::from_secs(SESSION_LIFETIME_SECS);
    state.store.db().insert_session(
        &sha256(token.as_bytes()),
        id,
        &csrf_token,
        now.0,
        expires.0,
    )?;
    let _ = state.store.db().delete_expired_sessions(now.0);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_LIFETIME_SECS}{}",
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let mut resp = Json(LoginResponse {
        username: username.to_owned(),
        role,
        csrf_token,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(resp)
}

/// `POST /api/logout`.
pub async fn logout(
    State(state): State<AppState>,
    axum::Extension(user): axum::Extension<CurrentUser>,
) -> ApiResult<Response> {
    state.store.db().delete_session(&user.session_sha256)?;
    state.store.audit(
        &user.username,
        "logout",
        &format!("user:{}", user.username),
        serde_json::json!({}),
    );
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

/// Argon2id hash of a random password, verified against when the username is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Kx2eQ9Vx4H5hF6m4P0cYw0XkJ7wQyYbqQ6mXxG5b3c";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", DUMMY_HASH));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash must be a real one"
        );
    }

    #[test]
    fn throttle_allows_ten_failures_per_window_then_forgets() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "10.0.0.5".parse().expect("ip");
        let other: IpAddr = "10.0.0.6".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..LOGIN_FAILURES_ALLOWED {
            assert!(!t.is_throttled(ip, t0));
            t.record_failure(ip, t0);
        }
        assert!(t.is_throttled(ip, t0));
        assert!(!t.is_throttled(other, t0));
        assert!(!t.is_throttled(ip, t0 + LOGIN_FAILURE_WINDOW));
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; nvr_session=abc; b=2"),
        );
        assert_eq!(session_cookie_value(&h), Some("abc".into()));
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
