//! User administration (admin only), first-run setup (creates the first admin while no user
//! exists), and changing one's own password.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use nvr_core::{ErrorKind, Role, UserId};
use nvr_storage::db::UserRow;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{CurrentUser, check_password_policy, hash_password, verify_password};
use crate::error::{ApiError, ApiResult};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserJson {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created: String,
}

fn user_json(u: UserRow, created_90k: i64) -> UserJson {
    UserJson {
        id: u.id,
        username: u.username,
        role: u.role,
        disabled: u.disabled,
        created: nvr_core::Time90k(created_90k).to_rfc3339(),
    }
}

/// Checks a username: 1 to 64 characters, no control characters, no surrounding spaces.
pub fn check_username(name: &str) -> ApiResult<()> {
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(char::is_control)
        || name.trim() != name
    {
        return Err(ApiError::bad_request(
            "username must be 1 to 64 characters, without control characters or surrounding spaces",
        ));
    }
    Ok(())
}

async fn hashed(password: String) -> ApiResult<String> {
    check_password_policy(&password).map_err(ApiError::bad_request)?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await?
        .map_err(ApiError::internal)
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
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// `GET /api/users`.
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<Json<Vec<UserJson>>> {
    user.require_admin()?;
    let users = state.store.db().users()?;
    Ok(Json(
        users.into_iter().map(|(u, c)| user_json(u, c)).collect(),
    ))
}

/// `POST /api/users`.
pub async fn add(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<UserJson>)> {
    user.require_admin()?;
    check_username(&req.username)?;
    let hash = hashed(req.password).await?;
    let now = state.clock.realtime().0;
    let id = state
        .store
        .db()
        .insert_user(&req.username, req.role, &hash, now)?;
    tracing::info!(user = %req.username, role = %req.role, by = %user.username, "user added");
    state.store.audit(
        &user.username,
        "user_add",
        &format!("user:{}", req.username),
        serde_json::json!({"role": req.role}),
    );
    let row = state
        .store
        .db()
        .user(id)?
        .ok_or_else(|| ApiError::internal("user vanished after insert"))?;
    Ok((StatusCode::CREATED, Json(user_json(row, now))))
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

/// `PATCH /api/users/{id}`: role, password, disabled. Changing a password or disabling a user
/// ends its sessions.
pub async fn change(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Json(req): Json<UserChange>,
) -> ApiResult<Json<UserJson>> {
    user.require_admin()?;
    let db = state.store.db();
    let mut row = db
        .user(UserId(id))?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    if let Some(r) = req.role {
        row.role = r;
    }
    if let Some(d) = req.disabled {
        row.disabled = d;
    }
    let password_changed = req.password.is_some();
    if let Some(p) = req.password {
        row.password_hash = hashed(p).await?;
    }
    db.update_user(&row)?;
    tracing::info!(user = %row.username, by = %user.username, "user changed");
    state.store.audit(
        &user.username,
        "user_change",
        &format!("user:{}", row.username),
        serde_json::json!({"role": row.role, "disabled": row.disabled,
                           "password_changed": password_changed}),
    );
    let created = db
        .users()?
        .into_iter()
        .find(|(u, _)| u.id == row.id)
        .map_or(0, |(_, c)| c);
    Ok(Json(user_json(row, created)))
}

/// `DELETE /api/users/{id}` (not oneself, not the last admin).
pub async fn delete(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    if user.id == UserId(id) {
        return Err(ApiError::bad_request("you cannot delete yourself"));
    }
    state.store.db().delete_user(UserId(id))?;
    tracing::info!(user = id, by = %user.username, "user deleted");
    state.store.audit(
        &user.username,
        "user_delete",
        &format!("user:{id}"),
        serde_json::json!({}),
    );
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

/// `POST /api/me/password`: needs the current password; ends the user's other sessions.
pub async fn change_own_password(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let db = state.store.db();
    let mut row = db
        .user(user.id)?
        .ok_or_else(|| ApiError::unauthenticated("user no longer exists"))?;
    let phc = row.password_hash.clone();
    let current = req.current;
    let ok = tokio::task::spawn_blocking(move || verify_password(&current, &phc)).await?;
    if !ok {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    row.password_hash = hashed(req.new).await?;
    db.update_user(&row)?;
    state.store.audit(
        &user.username,
        "password_change",
        &format!("user:{}", user.username),
        serde_json::json!({}),
    );
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
pub struct SetupState {
    needed: bool,
}

/// `GET /api/setup` (no session): whether the first admin must still be created.
pub async fn setup_state(State(state): State<AppState>) -> ApiResult<Json<SetupState>> {
    Ok(Json(SetupState {
        needed: state.store.db().user_count()? == 0,
    }))
}

/// `POST /api/setup` (no session, only while no user exists): creates the first admin and
/// logs it in.
pub async fn setup(
    State(state): State<AppState>,
    Json(req): Json<crate::auth::LoginRequest>,
) -> ApiResult<Response> {
    let (username, password) = req.into_parts();
    check_username(&username)?;
    if state.store.db().user_count()? > 0 {
        return Err(ApiError::new(
            ErrorKind::AlreadyExists,
            "setup is done already: log in",
        ));
    }
    let hash = hashed(password).await?;
    let id = state.store.db().insert_first_user(
        &username,
        Role::Admin,
        &hash,
        state.clock.realtime().0,
    )?;
    tracing::info!(user = %username, "first admin created");
    state.store.audit(
        &username,
        "setup",
        &format!("user:{username}"),
        serde_json::json!({"role": "admin"}),
    );
    crate::auth::start_session(&state, id, &username, Role::Admin)
}
