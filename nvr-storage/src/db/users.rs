//! Queries of the `users` and `sessions` tables.

use rusqlite::{OptionalExtension, named_params};

use super::Database;
use crate::error::{Result, StorageError};
use nvr_core::{Role, UserId};

const INSERT_USER: &str = "
    INSERT INTO users (username, role, password_hash, created_90k)
    VALUES (:username, :role, :password_hash, :created_90k)";
const SELECT_USER_BY_NAME: &str = "
    SELECT id, username, role, password_hash, disabled FROM users WHERE username = :username";
const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";
const INSERT_SESSION: &str = "
    INSERT INTO sessions (id_sha256, user_id, csrf_token, created_90k, expires_90k)
    VALUES (:id_sha256, :user_id, :csrf_token, :created_90k, :expires_90k)";
const SELECT_SESSION: &str = "
    SELECT u.id, u.username, u.role, u.password_hash, u.disabled, s.csrf_token, s.expires_90k
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
}

/// A live session and its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub user: UserRow,
    pub csrf_token: String,
    pub expires_90k: i64,
}

fn role_of(s: String) -> rusqlite::Result<Role> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Database {
    pub fn insert_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        created_90k: i64,
    ) -> Result<UserId> {
        let conn = self.lock();
        let r = conn.prepare_cached(INSERT_USER)?.execute(named_params! {
            ":username": username,
            ":role": role.as_str(),
            ":password_hash": password_hash,
            ":created_90k": created_90k,
        });
        match r {
            Ok(_) => Ok(UserId(conn.last_insert_rowid())),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StorageError::AlreadyExists(format!("user {username:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached(SELECT_USER_BY_NAME)?
            .query_row(named_params! {":username": username}, |r| {
                Ok(UserRow {
                    id: UserId(r.get(0)?),
                    username: r.get(1)?,
                    role: role_of(r.get(2)?)?,
                    password_hash: r.get(3)?,
                    disabled: r.get(4)?,
                })
            })
            .optional()?)
    }

    pub fn user_count(&self) -> Result<u64> {
        let conn = self.lock();
        let n: i64 = conn
            .prepare_cached(COUNT_USERS)?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    pub fn insert_session(
        &self,
        id_sha256: &[u8; 32],
        user: UserId,
        csrf_token: &str,
        created_90k: i64,
        expires_90k: i64,
    ) -> Result<()> {
        self.lock()
            .prepare_cached(INSERT_SESSION)?
            .execute(named_params! {
                ":id_sha256": &id_sha256[..],
                ":user_id": user.0,
                ":csrf_token": csrf_token,
                ":created_90k": created_90k,
                ":expires_90k": expires_90k,
            })?;
        Ok(())
    }

    /// The unexpired session with this id hash, if its user is enabled.
    pub fn session(&self, id_sha256: &[u8; 32], now_90k: i64) -> Result<Option<SessionRow>> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached(SELECT_SESSION)?
            .query_row(
                named_params! {":id_sha256": &id_sha256[..], ":now_90k": now_90k},
                |r| {
                    Ok(SessionRow {
                        user: UserRow {
                            id: UserId(r.get(0)?),
                            username: r.get(1)?,
                            role: role_of(r.get(2)?)?,
                            password_hash: r.get(3)?,
                            disabled: r.get(4)?,
                        },
                        csrf_token: r.get(5)?,
                        expires_90k: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn delete_session(&self, id_sha256: &[u8; 32]) -> Result<()> {
        self.lock()
            .prepare_cached(DELETE_SESSION)?
            .execute(named_params! {":id_sha256": &id_sha256[..]})?;
        Ok(())
    }

    pub fn delete_expired_sessions(&self, now_90k: i64) -> Result<u64> {
        let n = self
            .lock()
            .prepare_cached(DELETE_EXPIRED_SESSIONS)?
            .execute(named_params! {":now_90k": now_90k})?;
        Ok(n as u64)
    }
}
