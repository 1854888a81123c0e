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
const SELECT_USERS: &str = "
    SELECT id, username, role, password_hash, disabled, created_90k FROM users ORDER BY id";
const SELECT_USER: &str = "
    SELECT id, username, role, password_hash, disabled FROM users WHERE id = :id";
const UPDATE_USER: &str = "
    UPDATE users SET role = :role, password_hash = :password_hash, disabled = :disabled
    WHERE id = :id";
const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = :id";
const DELETE_USER: &str = "DELETE FROM users WHERE id = :id";
const COUNT_ACTIVE_ADMINS: &str =
    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0";
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

    /// Every user with its creation time.
    pub fn users(&self) -> Result<Vec<(UserRow, i64)>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_USERS)?
            .query_map([], |r| {
                Ok((
                    UserRow {
                        id: UserId(r.get(0)?),
                        username: r.get(1)?,
                        role: role_of(r.get(2)?)?,
                        password_hash: r.get(3)?,
                        disabled: r.get(4)?,
                    },
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        let conn = self.lock();
        Ok(conn
            .prepare_cached(SELECT_USER)?
            .query_row(named_params! {":id": id.0}, |r| {
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

    /// Writes a user's role, password hash and disabled flag. When the user is disabled or its
    /// password changes, its sessions end. Refuses to leave no enabled admin.
    pub fn update_user(&self, u: &UserRow) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let before: Option<(String, i64)> = tx
            .query_row(
                "SELECT password_hash, disabled FROM users WHERE id = :id",
                named_params! {":id": u.id.0},
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((old_hash, _)) = before else {
            return Err(StorageError::NotFound(format!("user {}", u.id)));
        };
        tx.execute(
            UPDATE_USER,
            named_params! {
                ":id": u.id.0,
                ":role": u.role.as_str(),
                ":password_hash": u.password_hash,
                ":disabled": u.disabled,
            },
        )?;
        let admins: i64 = tx.query_row(COUNT_ACTIVE_ADMINS, [], |r| r.get(0))?;
        if admins == 0 {
            return Err(StorageError::InvalidArgument(
                "this would leave no enabled admin".into(),
            ));
        }
        if u.disabled || old_hash != u.password_hash {
            tx.execute(DELETE_USER_SESSIONS, named_params! {":id": u.id.0})?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a user and its sessions; refuses to delete the last enabled admin.
    pub fn delete_user(&self, id: UserId) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(DELETE_USER_SESSIONS, named_params! {":id": id.0})?;
        let n = tx.execute(DELETE_USER, named_params! {":id": id.0})?;
        if n == 0 {
            return Err(StorageError::NotFound(format!("user {id}")));
        }
        let admins: i64 = tx.query_row(COUNT_ACTIVE_ADMINS, [], |r| r.get(0))?;
        if admins == 0 {
            return Err(StorageError::InvalidArgument(
                "this would leave no enabled admin".into(),
            ));
        }
        tx.commit()?;
        Ok(())
    }

    /// Inserts the first user, only if there is none yet (atomically).
    pub fn insert_first_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        created_90k: i64,
    ) -> Result<UserId> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n: i64 = tx.query_row(COUNT_USERS, [], |r| r.get(0))?;
        if n > 0 {
            return Err(StorageError::AlreadyExists(
                "a user (setup is done already)".into(),
            ));
        }
        tx.execute(
            INSERT_USER,
            named_params! {
                ":username": username,
                ":role": role.as_str(),
                ":password_hash": password_hash,
                ":created_90k": created_90k,
            },
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(UserId(id))
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
