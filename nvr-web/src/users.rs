//! User routes: administration (admin only), first-run setup, and changing one's own password.
//! The rules live in `nvr_app::accounts`; this module maps them to HTTP.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use nvr_app::accounts::SetupState;
use nvr_core::{Role, UserId};
use nvr_storage::UserRow;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{CurrentUser, LoginRequest, actor, client_ip, session_response};
use crate::error::ApiResult;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserJson {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created: String,
}

fn user_json(u: UserRow) -> UserJson {
    UserJson {
        id: u.id,
        username: u.username,
        role: u.role,
        disabled: u.disabled,
        created: nvr_core::Time90k(u.created_90k).to_rfc3339(),
    }
}

#[derive(Deserialize)]
pub struct NewUser {
    username: String,
    password: String,
    role: Role,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &nvr_core::loggable_username(&self.username))
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// `GET /api/users`.
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<Json<Vec<UserJson>>> {
    let users = crate::blocking(&state, move |s| Ok(s.app.users(&actor(&user))?)).await?;
    Ok(Json(users.into_iter().map(user_json).collect()))
}

/// `POST /api/users`.
pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<UserJson>)> {
    let row = state
        .app
        .add_user(&actor(&user), &req.username, req.role, req.password)
        .await?;
    Ok((StatusCode::CREATED, Json(user_json(row))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    role: Option<Role>,
    password: Option<String>,
    disabled: Option<bool>,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChange")
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// `PATCH /api/users/{id}`: role, password, disabled. Any of them ends the user's sessions
/// and streams.
pub async fn change(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Json(req): Json<UserChange>,
) -> ApiResult<Json<UserJson>> {
    let row = state
        .app
        .change_user(
            &actor(&user),
            UserId(id),
            req.role,
            req.disabled,
            req.password,
        )
        .await?;
    Ok(Json(user_json(row)))
}

/// `DELETE /api/users/{id}` (not oneself, not the last admin).
pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    crate::blocking(&state, move |s| {
        Ok(s.app.delete_user(&actor(&user), UserId(id))?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current: String,
    new: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}

/// `POST /api/me/password`: needs the current password (throttled like a login); ends the
/// user's other sessions.
pub async fn change_own_password(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(req): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let ip = client_ip(connect.as_ref());
    state
        .app
        .change_own_password(&user, ip, req.current, req.new)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/setup` (no session): whether the first admin must still be created, and whether
/// that needs the code printed on the recorder's console.
pub async fn setup_state(State(state): State<AppState>) -> ApiResult<Json<SetupState>> {
    Ok(Json(
        crate::blocking(&state, |s| Ok(s.app.setup_state()?)).await?,
    ))
}

/// `POST /api/setup` (no session, only while no user exists): creates the first admin and
/// logs it in. Beyond loopback it needs `setup_code`.
pub async fn setup(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let ip = client_ip(connect.as_ref());
    let outcome = state
        .app
        .setup(ip, &req.username, req.password, req.setup_code.as_deref())
        .await?;
    session_response(&state, outcome)
}
