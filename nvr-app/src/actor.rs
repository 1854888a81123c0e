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

/// The account named `uid` in a passwd(5) file's text.
fn account_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid_field = fields.nth(1)?;
        (uid_field.parse::<u32>().ok()? == uid && !name.is_empty()).then(|| name.to_owned())
    })
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
    /// The command line, as the operating-system account running it: the name of the process's
    /// real uid in `/etc/passwd` (not `$USER`, which a service or a cron job may not set and
    /// anyone can set), `uid<N>` when the account has no entry, and who ran `sudo` when it was.
    pub fn cli() -> Actor {
        let uid = rustix::process::getuid().as_raw();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let mut os_user = account_name(&passwd, uid).unwrap_or_else(|| format!("uid{uid}"));
        if let Ok(by) = std::env::var("SUDO_USER")
            && uid == 0
            && !by.is_empty()
            && by != os_user
        {
            os_user = format!("{os_user}(sudo:{by})");
        }
        Actor::Cli { os_user }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_found_by_uid_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # a comment\n\
                      broken line\n\
                      nvr:x:998:998::/var/lib/nvr:/usr/sbin/nologin\n\
                      alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n";
        assert_eq!(account_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(account_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(account_name(passwd, 998).as_deref(), Some("nvr"));
        assert_eq!(account_name(passwd, 1001), None);
        assert_eq!(account_name("", 0), None);
    }

    #[test]
    fn the_command_line_is_named_after_its_real_account() {
        // The tests run as some account of this machine: never "unknown", never empty.
        let name = Actor::cli().audit_name();
        assert!(name.starts_with("cli:") && name.len() > 4, "{name}");
        assert!(!name.contains("unknown"), "{name}");
    }
}
