//! Queries of the `users` and `sessions` tables. Every change to an account is one transaction
//! with its audit entry, writes only the columns it changes (two admins, or an admin and the
//! user, cannot undo each other's change with a stale read), and ends the sessions it must.

use rusqlite::{OptionalExtension, Transaction, named_params};

use super::{AuditNote, Database};
use crate::error::{Result, StorageError};
use nvr_core::{Role, UserId};

const INSERT_USER: &str = "
    INSERT INTO users (username, role, password_hash, created_90k)
    VALUES (:username, :role, :password_hash, :created_90k)";
const SELECT_USER_BY_NAME: &str = "
    SELECT id, username, role, password_hash, disabled, created_90k FROM users
    WHERE username = :username";
const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";
const SELECT_USERS: &str = "
    SELECT id, username, role, password_hash, disabled, created_90k FROM users ORDER BY id";
const SELECT_USER: &str = "
    SELECT id, username, role, password_hash, disabled, created_90k FROM users WHERE id = :id";
const UPDATE_USER_ROLE: &str = "UPDATE users SET role = :role WHERE id = :id";
const UPDATE_USER_DISABLED: &str = "UPDATE users SET disabled = :disabled WHERE id = :id";
const UPDATE_USER_PASSWORD: &str = "UPDATE users SET password_hash = :password_hash WHERE id = :id";
/// A user's own password change: only if the hash is still the one the current password was
/// checked against and the account is still enabled.
const UPDATE_OWN_PASSWORD: &str = "
    UPDATE users SET password_hash = :new_hash
    WHERE id = :id AND password_hash = :old_hash AND disabled = 0";
const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = :id";
const DELETE_OTHER_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id = :id AND id_sha256 != :keep";
const DELETE_USER: &str = "DELETE FROM users WHERE id = :id";
const COUNT_ACTIVE_ADMINS: &str =
    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0";
const INSERT_SESSION: &str = "
    INSERT INTO sessions (id_sha256, user_id, csrf_token, created_90k, expires_90k)
    VALUES (:id_sha256, :user_id, :csrf_token, :created_90k, :expires_90k)";
const SELECT_SESSION: &str = "
    SELECT u.id, u.username, u.role, u.password_hash, u.disabled, u.created_90k, s.csrf_token,
           s.expires_90k
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.id_sha256 = :id_sha256 AND s.expires_90k > :now_90k AND u.disabled = 0";
const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_sha256 = :id_sha256";
const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_90k <= :now_90k";

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created_90k: i64,
}

/// A live session and its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub user: UserRow,
    pub csrf_token: String,
    pub expires_90k: i64,
}

/// What an administrator changes about an account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new Argon2id PHC string.
    pub password_hash: Option<String>,
}

/// A session to create.
#[derive(Clone, Copy, Debug)]
pub struct NewSession<'a> {
    pub id_sha256: &'a [u8; 32],
    pub user: UserId,
    pub csrf_token: &'a str,
    pub created_90k: i64,
    pub expires_90k: i64,
}

fn role_of(s: String) -> rusqlite::Result<Role> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn user_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: UserId(r.get(0)?),
        username: r.get(1)?,
        role: role_of(r.get(2)?)?,
        password_hash: r.get(3)?,
        disabled: r.get(4)?,
        created_90k: r.get(5)?,
    })
}

fn user_in(tx: &Transaction<'_>, id: UserId) -> Result<UserRow> {
    tx.prepare_cached(SELECT_USER)?
        .query_row(named_params! {":id": id.0}, user_of)
        .optional()?
        .ok_or_else(|| StorageError::NotFound(format!("user {id}")))
}

fn insert_user_in(
    tx: &Transaction<'_>,
    username: &str,
    role: Role,
    password_hash: &str,
    created_90k: i64,
) -> Result<UserId> {
    let r = tx.prepare_cached(INSERT_USER)?.execute(named_params! {
        ":username": username,
        ":role": role.as_str(),
        ":password_hash": password_hash,
        ":created_90k": created_90k,
    });
    match r {
        Ok(_) => Ok(UserId(tx.last_insert_rowid())),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StorageError::AlreadyExists(format!("user {username:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses to commit a state without an enabled admin.
fn require_an_admin(tx: &Transaction<'_>) -> Result<()> {
    let admins: i64 = tx.query_row(COUNT_ACTIVE_ADMINS, [], |r| r.get(0))?;
    if admins == 0 {
        return Err(StorageError::InvalidArgument(
            "this would leave no enabled admin".into(),
        ));
    }
    Ok(())
}

impl Database {
    /// Creates an account and its audit entry.
    pub fn insert_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        created_90k: i64,
        audit: AuditNote,
    ) -> Result<UserId> {
        self.audited(|tx| {
            let id = insert_user_in(tx, username, role, password_hash, created_90k)?;
            Ok((id, audit))
        })
    }

    /// Creates the first account, only if there is none yet (atomically), and forgets the
    /// first-run setup code.
    pub fn insert_first_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        created_90k: i64,
        audit: AuditNote,
    ) -> Result<UserId> {
        self.audited(|tx| {
            let n: i64 = tx.query_row(COUNT_USERS, [], |r| r.get(0))?;
            if n > 0 {
                return Err(StorageError::AlreadyExists(
                    "a user (setup is done already)".into(),
                ));
            }
            let id = insert_user_in(tx, username, role, password_hash, created_90k)?;
            tx.execute(super::meta::CLEAR_SETUP_CODE, [])?;
            Ok((id, audit))
        })
    }

    pub fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(SELECT_USER_BY_NAME)?
            .query_row(named_params! {":username": username}, user_of)
            .optional()?)
    }

    /// Every user, oldest first.
    pub fn users(&self) -> Result<Vec<UserRow>> {
        let conn = self.read();
        let rows = conn
            .prepare_cached(SELECT_USERS)?
            .query_map([], user_of)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(SELECT_USER)?
            .query_row(named_params! {":id": id.0}, user_of)
            .optional()?)
    }

    /// Applies an administrator's change to an account, with the audit entry `audit` makes
    /// from the account as it is afterwards. Only the given columns are written. Any change of
    /// role, password or the disabled flag ends the account's sessions (its streams follow).
    /// Refuses to leave no enabled admin.
    pub fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        audit: impl FnOnce(&UserRow) -> AuditNote,
    ) -> Result<UserRow> {
        self.audited(|tx| {
            let before = user_in(tx, id)?;
            if let Some(role) = change.role {
                tx.prepare_cached(UPDATE_USER_ROLE)?
                    .execute(named_params! {":id": id.0, ":role": role.as_str()})?;
            }
            if let Some(disabled) = change.disabled {
                tx.prepare_cached(UPDATE_USER_DISABLED)?
                    .execute(named_params! {":id": id.0, ":disabled": disabled})?;
            }
            if let Some(hash) = &change.password_hash {
                tx.prepare_cached(UPDATE_USER_PASSWORD)?
                    .execute(named_params! {":id": id.0, ":password_hash": hash})?;
            }
            require_an_admin(tx)?;
            let after = user_in(tx, id)?;
            if after.role != before.role
                || after.disabled != before.disabled
                || after.password_hash != before.password_hash
            {
                tx.prepare_cached(DELETE_USER_SESSIONS)?
                    .execute(named_params! {":id": id.0})?;
            }
            let note = audit(&after);
            Ok((after, note))
        })
    }

    /// A user's own password change: replaces `old_hash` (the hash the current password was
    /// verified against) with `new_hash`, only if it is still the stored one and the account
    /// is enabled; ends the user's other sessions. A concurrent change makes it `Conflict`.
    pub fn change_own_password(
        &self,
        id: UserId,
        old_hash: &str,
        new_hash: &str,
        keep_session: &[u8; 32],
        audit: AuditNote,
    ) -> Result<()> {
        self.audited(|tx| {
            let n = tx
                .prepare_cached(UPDATE_OWN_PASSWORD)?
                .execute(named_params! {
                    ":id": id.0, ":old_hash": old_hash, ":new_hash": new_hash,
                })?;
            if n == 0 {
                return Err(StorageError::Conflict(
                    "the account changed meanwhile (disabled, or its password changed); \
                     log in again"
                        .into(),
                ));
            }
            tx.prepare_cached(DELETE_OTHER_SESSIONS)?
                .execute(named_params! {":id": id.0, ":keep": &keep_session[..]})?;
            Ok(((), audit))
        })
    }

    /// Deletes an account and its sessions; refuses to delete the last enabled admin. `audit`
    /// makes the entry from the account as it was.
    pub fn delete_user(
        &self,
        id: UserId,
        audit: impl FnOnce(&UserRow) -> AuditNote,
    ) -> Result<UserRow> {
        self.audited(|tx| {
            let before = user_in(tx, id)?;
            tx.execute(DELETE_USER_SESSIONS, named_params! {":id": id.0})?;
            tx.execute(DELETE_USER, named_params! {":id": id.0})?;
            require_an_admin(tx)?;
            let note = audit(&before);
            Ok((before, note))
        })
    }

    pub fn user_count(&self) -> Result<u64> {
        let conn = self.read();
        let n: i64 = conn
            .prepare_cached(COUNT_USERS)?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Creates a session with its audit entry (a login), and drops expired sessions.
    pub fn insert_session(&self, s: &NewSession<'_>, audit: AuditNote) -> Result<()> {
        self.audited(|tx| {
            tx.prepare_cached(DELETE_EXPIRED_SESSIONS)?
                .execute(named_params! {":now_90k": s.created_90k})?;
            tx.prepare_cached(INSERT_SESSION)?.execute(named_params! {
                ":id_sha256": &s.id_sha256[..],
                ":user_id": s.user.0,
                ":csrf_token": s.csrf_token,
                ":created_90k": s.created_90k,
                ":expires_90k": s.expires_90k,
            })?;
            Ok(((), audit))
        })
    }

    /// The unexpired session with this id hash, if its user is enabled.
    pub fn session(&self, id_sha256: &[u8; 32], now_90k: i64) -> Result<Option<SessionRow>> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(SELECT_SESSION)?
            .query_row(
                named_params! {":id_sha256": &id_sha256[..], ":now_90k": now_90k},
                |r| {
                    Ok(SessionRow {
                        user: user_of(r)?,
                        csrf_token: r.get(6)?,
                        expires_90k: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// Ends a session with its audit entry (a logout).
    pub fn delete_session(&self, id_sha256: &[u8; 32], audit: AuditNote) -> Result<()> {
        self.audited(|tx| {
            tx.prepare_cached(DELETE_SESSION)?
                .execute(named_params! {":id_sha256": &id_sha256[..]})?;
            Ok(((), audit))
        })
    }
}
