//! Who asks for an operation: a user of the web API (with the role of their session), or the
//! command line (which holds the data directory itself, so it may do anything an admin may).
//! The actor names the entry in the audit log and answers the role checks.

use nvr_core::{ErrorKind, Role, UserId};

use crate::error::{AppError, AppResult};

/// A logged-in user, as their session shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    /// SHA-256 of the session id (the id itself is only in the client's cookie).
    pub session_sha256: [u8; 32],
    pub expires_90k: i64,
}

/// The one asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    User(SessionUser),
    /// `nvr` run on the recorder by this operating-system user.
    Cli {
        os_user: String,
    },
}

impl Actor {
    /// The command line, as the user running it.
    pub fn cli() -> Actor {
        Actor::Cli {
            os_user: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        }
    }

    /// The name written into the audit log: a username, or `cli:<os user>` (a name no account
    /// can have: usernames cannot contain ':').
    pub fn audit_name(&self) -> String {
        match self {
            Actor::User(u) => u.username.clone(),
            Actor::Cli { os_user } => format!("cli:{os_user}"),
        }
    }

    fn role(&self) -> Role {
        match self {
            Actor::User(u) => u.role,
            Actor::Cli { .. } => Role::Admin,
        }
    }

    fn refuse(&self, needs: &str) -> AppError {
        let (name, role) = (self.audit_name(), self.role());
        AppError::new(
            ErrorKind::PermissionDenied,
            format!("this needs the {needs} role; {name} has role {role}"),
        )
    }

    /// Refuses unless the actor may administer (cameras, users, settings).
    pub fn require_admin(&self) -> AppResult<()> {
        if self.role().can_administer() {
            Ok(())
        } else {
            Err(self.refuse("admin"))
        }
    }

    /// Refuses unless the actor may export and hold evidence.
    pub fn require_evidence(&self) -> AppResult<()> {
        if self.role().can_export() {
            Ok(())
        } else {
            Err(self.refuse("evidence or admin"))
        }
    }

    /// The user id, for a web user.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User(u) => Some(u.id),
            Actor::Cli { .. } => None,
        }
    }
}
