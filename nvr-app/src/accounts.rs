//! Accounts and sessions: logging in (throttled, verified on the bounded password pool),
//! checking a session, logging out, first-run setup (with a one-time code beyond loopback),
//! user administration, and changing one's own password. Every change is one transaction with
//! its audit entry, and every change that ends sessions also ends the streams of those
//! sessions (see [`SessionWatch`]).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use nvr_core::{
    Duration90k, ErrorKind, Role, UserId, check_password_policy, loggable_username,
    validate_new_username, validate_username,
};
use nvr_storage::{NewSession, UserChange, UserRow};
use serde_json::json;

use crate::App;
use crate::actor::{Actor, SessionUser};
use crate::error::{AppError, AppResult};
use crate::passwords::DUMMY_HASH;
use crate::throttle::Attempt;

/// Sessions last a control-room shift and then some: 12 hours.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;

/// How often a stream re-checks its session even without news (a change made by another
/// process, e.g. the CLI, sends none).
const SESSION_RECHECK: Duration = Duration::from_secs(30);

/// A new session: the token goes into the client's cookie (only its SHA-256 is stored).
#[derive(Debug)]
pub struct LoginOutcome {
    pub token: String,
    pub user: SessionUser,
}

pub(crate) fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn random_token() -> AppResult<String> {
    let mut b = [0u8; 32];
    nvr_storage::keys::random_bytes(&mut b)?;
    Ok(hex::encode(b))
}

/// Compares two strings in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Letters and digits of setup codes: no 0/O, 1/I/L, so it can be read off a console.
const SETUP_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A new random setup code: 12 symbols of 31 (~59 bits) as `XXXX-XXXX-XXXX`. Guessing is also
/// throttled like a password.
pub fn new_setup_code() -> String {
    let mut raw = [0u8; 12];
    if nvr_storage::keys::random_bytes(&mut raw).is_err() {
        // No randomness: a code nobody can guess is one nobody can type.
        return String::new();
    }
    let symbols: String = raw
        .iter()
        .map(|b| SETUP_CODE_ALPHABET[usize::from(*b) % SETUP_CODE_ALPHABET.len()] as char)
        .collect();
    format!("{}-{}-{}", &symbols[..4], &symbols[4..8], &symbols[8..])
}

fn normalized_code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl App {
    /// Counts an attempt with the throttle and waits for its turn.
    async fn throttled(&self, client: IpAddr, username: &str) -> AppResult<Attempt> {
        let attempt = self
            .throttle
            .begin(client, username, Instant::now())
            .map_err(|r| AppError::throttled(r.message, r.retry_after))?;
        tokio::time::sleep_until(attempt.run_at.into()).await;
        Ok(attempt)
    }

    /// Verifies a password on the pool; busy is a 429 with a short retry.
    async fn verify_password(&self, password: String, phc: String) -> AppResult<bool> {
        self.passwords
            .verify(password, phc)
            .await
            .map_err(|b| AppError::throttled(b.to_string(), Duration::from_secs(1)))
    }

    async fn hash_password(&self, password: String) -> AppResult<String> {
        check_password_policy(&password)?;
        self.passwords
            .hash(password)
            .await
            .map_err(|b| AppError::throttled(b.to_string(), Duration::from_secs(1)))?
            .map_err(AppError::internal)
    }

    /// `POST /api/login`: checks the name's shape first (no work for a malformed one), counts
    /// the attempt, verifies on the pool (against a dummy hash for unknown names, so timing
    /// tells nothing), and on success opens a session.
    pub async fn login(
        &self,
        client: IpAddr,
        username: &str,
        password: String,
    ) -> AppResult<LoginOutcome> {
        if validate_username(username).is_err() {
            tracing::warn!(username = %loggable_username(username), client = %client,
                "refused login with a malformed username");
            return Err(AppError::unauthenticated("invalid username or password"));
        }
        let attempt = self.throttled(client, username).await?;
        let user = self.blocking(|| self.store.user_by_name(username))?;
        let phc = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
        let ok = self.verify_password(password, phc).await?;
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            _ => {
                attempt.failed();
                tracing::warn!(username = %username, client = %client, "failed login");
                self.store.audit(
                    username,
                    "login_failed",
                    &format!("user:{username}"),
                    json!({"client": client.to_string()}),
                );
                return Err(AppError::unauthenticated("invalid username or password"));
            }
        };
        attempt.succeeded();
        tracing::info!(username = %user.username, client = %client, "login");
        self.blocking(|| self.open_session(&user, "login", json!({"client": client.to_string()})))
    }

    fn open_session(
        &self,
        user: &UserRow,
        action: &str,
        detail: serde_json::Value,
    ) -> AppResult<LoginOutcome> {
        let token = random_token()?;
        let csrf_token = random_token()?;
        let now = self.clock.realtime();
        let expires = now + Duration90k::from_secs(SESSION_LIFETIME_SECS);
        let session_sha256 = sha256(token.as_bytes());
        self.store.insert_session(
            &NewSession {
                id_sha256: &session_sha256,
                user: user.id,
                csrf_token: &csrf_token,
                created_90k: now.0,
                expires_90k: expires.0,
            },
            self.note(
                &user.username,
                action,
                format!("user:{}", user.username),
                detail,
            ),
        )?;
        Ok(LoginOutcome {
            token,
            user: SessionUser {
                id: user.id,
                username: user.username.clone(),
                role: user.role,
                csrf_token,
                session_sha256,
                expires_90k: expires.0,
            },
        })
    }

    /// The user of a session token; `csrf` must match for requests that change something.
    pub fn authenticate(&self, token: &str, csrf: Option<&str>) -> AppResult<SessionUser> {
        let hash = sha256(token.as_bytes());
        let now = self.clock.realtime();
        let session = self
            .store
            .session(&hash, now.0)?
            .ok_or_else(|| AppError::unauthenticated("session expired or unknown; log in again"))?;
        if let Some(sent) = csrf
            && !constant_time_eq(sent, &session.csrf_token)
        {
            return Err(AppError::forbidden(
                "missing or wrong X-CSRF-Token header (it is returned by POST /api/login)",
            ));
        }
        Ok(SessionUser {
            id: session.user.id,
            username: session.user.username,
            role: session.user.role,
            csrf_token: session.csrf_token,
            session_sha256: hash,
            expires_90k: session.expires_90k,
        })
    }

    /// Ends the session (and its streams).
    pub fn logout(&self, user: &SessionUser) -> AppResult<()> {
        self.store.delete_session(
            &user.session_sha256,
            self.note(
                &user.username,
                "logout",
                format!("user:{}", user.username),
                json!({}),
            ),
        )?;
        self.sessions_changed();
        Ok(())
    }

    /// Every account (admin).
    pub fn users(&self, actor: &Actor) -> AppResult<Vec<UserRow>> {
        actor.require_admin()?;
        Ok(self.store.users()?)
    }

    /// Adds an account (admin; the CLI too). Hashes on the pool.
    pub async fn add_user(
        &self,
        actor: &Actor,
        username: &str,
        role: Role,
        password: String,
    ) -> AppResult<UserRow> {
        actor.require_admin()?;
        validate_new_username(username)?;
        let hash = self.hash_password(password).await?;
        self.blocking(|| self.insert_user(actor, username, role, &hash))
    }

    /// [`Self::add_user`] outside an async runtime (the CLI).
    pub fn add_user_blocking(
        &self,
        actor: &Actor,
        username: &str,
        role: Role,
        password: String,
    ) -> AppResult<UserRow> {
        actor.require_admin()?;
        validate_new_username(username)?;
        check_password_policy(&password)?;
        let hash = self
            .passwords
            .hash_blocking(password)
            .map_err(|b| AppError::throttled(b.to_string(), Duration::from_secs(1)))?
            .map_err(AppError::internal)?;
        self.insert_user(actor, username, role, &hash)
    }

    fn insert_user(
        &self,
        actor: &Actor,
        username: &str,
        role: Role,
        hash: &str,
    ) -> AppResult<UserRow> {
        let now = self.clock.realtime().0;
        let id = self.store.insert_user(
            username,
            role,
            hash,
            now,
            self.note(
                &actor.audit_name(),
                "user_add",
                format!("user:{username}"),
                json!({"role": role}),
            ),
        )?;
        tracing::info!(user = %username, role = %role, by = %actor.audit_name(), "user added");
        self.store
            .user(id)?
            .ok_or_else(|| AppError::internal("user vanished after insert"))
    }

    /// Changes an account (admin): only the given fields are written, in one transaction with
    /// the audit entry; a change of role, password or the disabled flag ends the account's
    /// sessions and streams.
    pub async fn change_user(
        &self,
        actor: &Actor,
        id: UserId,
        role: Option<Role>,
        disabled: Option<bool>,
        password: Option<String>,
    ) -> AppResult<UserRow> {
        actor.require_admin()?;
        let password_hash = match password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let password_changed = password_hash.is_some();
        let by = actor.audit_name();
        let row = self.blocking(|| {
            self.store.change_user(
                id,
                &UserChange {
                    role,
                    disabled,
                    password_hash,
                },
                |u| {
                    self.note(
                        &by,
                        "user_change",
                        format!("user:{}", u.username),
                        json!({"role": u.role, "disabled": u.disabled,
                           "password_changed": password_changed}),
                    )
                },
            )
        })?;
        self.sessions_changed();
        tracing::info!(user = %row.username, by = %by, "user changed");
        Ok(row)
    }

    /// Deletes an account (admin; not oneself, not the last admin); its sessions and streams
    /// end.
    pub fn delete_user(&self, actor: &Actor, id: UserId) -> AppResult<()> {
        actor.require_admin()?;
        if actor.user_id() == Some(id) {
            return Err(AppError::invalid("you cannot delete yourself"));
        }
        let by = actor.audit_name();
        let row = self.store.delete_user(id, |u| {
            self.note(
                &by,
                "user_delete",
                format!("user:{}", u.username),
                json!({}),
            )
        })?;
        self.sessions_changed();
        tracing::info!(user = %row.username, by = %by, "user deleted");
        Ok(())
    }

    /// A user's own password change: the current password is checked like a login (throttled,
    /// on the pool); the new hash replaces exactly the one checked against, so a concurrent
    /// change by an admin (disable, demotion, reset) is never undone. Other sessions end.
    pub async fn change_own_password(
        &self,
        user: &SessionUser,
        client: IpAddr,
        current: String,
        new: String,
    ) -> AppResult<()> {
        check_password_policy(&new)?;
        let row = self
            .blocking(|| self.store.user(user.id))?
            .ok_or_else(|| AppError::unauthenticated("user no longer exists"))?;
        let attempt = self.throttled(client, &user.username).await?;
        if !self
            .verify_password(current, row.password_hash.clone())
            .await?
        {
            attempt.failed();
            return Err(AppError::forbidden("the current password is wrong"));
        }
        attempt.succeeded();
        let new_hash = self.hash_password(new).await?;
        self.blocking(|| {
            self.store.change_own_password(
                user.id,
                &row.password_hash,
                &new_hash,
                &user.session_sha256,
                self.note(
                    &user.username,
                    "password_change",
                    format!("user:{}", user.username),
                    json!({}),
                ),
            )
        })?;
        self.sessions_changed();
        Ok(())
    }

    /// Whether the first account must still be created, and whether that needs the code.
    pub fn setup_state(&self) -> AppResult<SetupState> {
        let needed = self.store.user_count()? == 0;
        Ok(SetupState {
            needed,
            code_required: needed && self.setup_code_required,
        })
    }

    /// The setup code to print on the console while setup is pending (made and stored if
    /// there is none yet); `None` once an account exists.
    pub fn setup_code(&self) -> AppResult<Option<String>> {
        Ok(self.store.setup_code(new_setup_code)?)
    }

    /// `POST /api/setup`: creates the first admin, only while no account exists, and (when the
    /// server listens beyond loopback) only with the one-time code printed on the console.
    /// Wrong codes are throttled like passwords.
    pub async fn setup(
        &self,
        client: IpAddr,
        username: &str,
        password: String,
        code: Option<&str>,
    ) -> AppResult<LoginOutcome> {
        validate_new_username(username)?;
        check_password_policy(&password)?;
        if self.blocking(|| self.store.user_count())? > 0 {
            return Err(AppError::new(
                ErrorKind::AlreadyExists,
                "setup is done already: log in",
            ));
        }
        if self.setup_code_required {
            let attempt = self.throttled(client, "setup").await?;
            let expected = self.blocking(|| self.setup_code())?.unwrap_or_default();
            let given = normalized_code(code.unwrap_or(""));
            if expected.is_empty() || !constant_time_eq(&given, &normalized_code(&expected)) {
                attempt.failed();
                tracing::warn!(client = %client, "first-run setup with a wrong code");
                return Err(AppError::forbidden(
                    "first-run setup needs the setup code that `nvr serve` printed on the \
                     recorder's console",
                )
                .with_detail("setup_code"));
            }
            attempt.succeeded();
        }
        let hash = self.hash_password(password).await?;
        self.blocking(|| {
            let id = self.store.insert_first_user(
                username,
                Role::Admin,
                &hash,
                self.clock.realtime().0,
                self.note(
                    username,
                    "setup",
                    format!("user:{username}"),
                    json!({"role": "admin", "client": client.to_string()}),
                ),
            )?;
            tracing::info!(user = %username, "first admin created");
            let row = self
                .store
                .user(id)?
                .ok_or_else(|| AppError::internal("user vanished after insert"))?;
            self.open_session(&row, "login", json!({"client": client.to_string()}))
        })
    }

    /// Tells every stream to re-check its session (an account or session changed).
    fn sessions_changed(&self) {
        self.sessions.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A watch that ends when `user`'s session does: logout, expiry, or a change of the
    /// account (disabled, deleted, role or password changed).
    pub fn session_watch(&self, user: &SessionUser) -> SessionWatch {
        SessionWatch {
            rx: self.sessions.subscribe(),
            user: user.clone(),
        }
    }

    /// Whether `user`'s session is still what it was (same account, role, enabled, unexpired).
    pub fn session_still_valid(&self, user: &SessionUser) -> bool {
        let now = self.clock.realtime().0;
        match self.store.session(&user.session_sha256, now) {
            Ok(Some(s)) => s.user.id == user.id && s.user.role == user.role,
            Ok(None) => false,
            // Cannot tell (the index is busy or failing): keep the stream; the next news or
            // re-check decides.
            Err(_) => true,
        }
    }
}

/// Whether first-run setup is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SetupState {
    pub needed: bool,
    /// Setup must present the code `nvr serve` printed (the server listens beyond loopback).
    pub code_required: bool,
}

/// Resolves when a session ends; held by every long-lived stream (live WebSocket, playback,
/// transcoding, downloads) so revocation reaches them within a second or so.
#[derive(Debug)]
pub struct SessionWatch {
    rx: tokio::sync::watch::Receiver<u64>,
    user: SessionUser,
}

impl SessionWatch {
    /// Waits until the session has ended.
    pub async fn ended(&mut self, app: &App) {
        loop {
            let now = app.clock.realtime().0;
            let to_expiry = Duration::from_millis(
                u64::try_from((self.user.expires_90k - now).max(0) / 90).unwrap_or(u64::MAX),
            );
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        // The app is gone: so is the server.
                        return;
                    }
                }
                _ = tokio::time::sleep(to_expiry) => return,
                _ = tokio::time::sleep(SESSION_RECHECK) => {}
            }
            if !app.blocking(|| app.session_still_valid(&self.user)) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_codes_are_readable_and_compare_loosely() {
        let c = new_setup_code();
        assert_eq!(c.len(), 14, "{c}");
        assert!(
            c.chars()
                .all(|ch| ch == '-' || SETUP_CODE_ALPHABET.contains(&(ch as u8)))
        );
        assert_ne!(c, new_setup_code());
        assert_eq!(
            normalized_code(&c.to_lowercase().replace('-', " ")),
            normalized_code(&c)
        );
    }
}
