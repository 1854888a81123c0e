//! `Store`'s typed operations on accounts and sessions: reads on the read-only connections, and
//! every change in one transaction with the audit entry it is given (`Database::audited`).

use nvr_core::{Role, UserId};

use super::Store;
use crate::db::{AuditNote, NewSession, SessionRow, UserChange, UserRow};
use crate::error::{IndexContext, Result};

impl Store {
    /// The account named `username`, if any.
    pub fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        self.db
            .user_by_name(username)
            .context(|| "reading an account by name (users)".to_owned())
    }

    /// The account `id`, if any.
    pub fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        self.db
            .user(id)
            .context(|| format!("reading account {id} (users)"))
    }

    /// Every account, oldest first.
    pub fn users(&self) -> Result<Vec<UserRow>> {
        self.db
            .users()
            .context(|| "listing accounts (users)".to_owned())
    }

    /// How many accounts exist (0: first-run setup is still open).
    pub fn user_count(&self) -> Result<u64> {
        self.db
            .user_count()
            .context(|| "counting accounts (users)".to_owned())
    }

    /// Adds an account, with its audit entry.
    pub fn insert_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        created_90k: i64,
        audit: AuditNote,
    ) -> Result<UserId> {
        self.db
            .insert_user(username, role, password_hash, created_90k, audit)
            .context(|| format!("adding account {username:?} (users, audit_log)"))
    }

    /// Adds the first account (first-run setup) if there is none yet, clearing the setup code,
    /// with its audit entry.
    pub fn insert_first_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        created_90k: i64,
        audit: AuditNote,
    ) -> Result<UserId> {
        self.db
            .insert_first_user(username, role, password_hash, created_90k, audit)
            .context(|| format!("adding the first account {username:?} (users, meta, audit_log)"))
    }

    /// Applies an administrator's change to an account, with the audit entry `audit` makes
    /// from the account before the change.
    pub fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        audit: impl FnOnce(&UserRow) -> AuditNote,
    ) -> Result<UserRow> {
        self.db
            .change_user(id, change, audit)
            .context(|| format!("changing account {id} (users, sessions, audit_log)"))
    }

    /// A user's own password change (only if `old_hash` is still current), ending their other
    /// sessions but `keep_session`, with its audit entry.
    pub fn change_own_password(
        &self,
        id: UserId,
        old_hash: &str,
        new_hash: &str,
        keep_session: &[u8; 32],
        audit: AuditNote,
    ) -> Result<()> {
        self.db
            .change_own_password(id, old_hash, new_hash, keep_session, audit)
            .context(|| {
                format!("changing the password of account {id} (users, sessions, audit_log)")
            })
    }

    /// Deletes an account with its sessions, with the audit entry `audit` makes from it.
    pub fn delete_user(
        &self,
        id: UserId,
        audit: impl FnOnce(&UserRow) -> AuditNote,
    ) -> Result<UserRow> {
        self.db
            .delete_user(id, audit)
            .context(|| format!("deleting account {id} (users, sessions, audit_log)"))
    }

    /// Starts a session (a login), with its audit entry.
    pub fn insert_session(&self, s: &NewSession<'_>, audit: AuditNote) -> Result<()> {
        self.db.insert_session(s, audit).context(|| {
            format!(
                "starting a session of account {} (sessions, audit_log)",
                s.user
            )
        })
    }

    /// The unexpired session whose id hashes to `id_sha256`, with its user: the session check
    /// of every request, on a read-only connection (never behind the writer).
    pub fn session(&self, id_sha256: &[u8; 32], now_90k: i64) -> Result<Option<SessionRow>> {
        self.db
            .session(id_sha256, now_90k)
            .context(|| "checking a session (sessions, users)".to_owned())
    }

    /// Ends a session (a logout), with its audit entry.
    pub fn delete_session(&self, id_sha256: &[u8; 32], audit: AuditNote) -> Result<()> {
        self.db
            .delete_session(id_sha256, audit)
            .context(|| "ending a session (sessions, audit_log)".to_owned())
    }
}
