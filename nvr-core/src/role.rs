//! User roles and what each may do. The web layer asks these questions on every request; the
//! answers live here so that the CLI, the API and the tests agree.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's role. Each role includes the rights of the ones below it:
/// guard (live and playback) < evidence (+ export and holds) < admin (+ cameras, users, settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guard,
    Evidence,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guard => "guard",
            Role::Evidence => "evidence",
            Role::Admin => "admin",
        }
    }

    /// Live view and playback.
    pub fn can_view(self) -> bool {
        true
    }

    /// Exports and evidence holds.
    pub fn can_export(self) -> bool {
        self >= Role::Evidence
    }

    /// Adding, changing and removing cameras, users and settings.
    pub fn can_administer(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, evidence or guard")]
pub struct RoleParseError(pub String);

impl FromStr for Role {
    type Err = RoleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "guard" => Ok(Role::Guard),
            "evidence" => Ok(Role::Evidence),
            "admin" => Ok(Role::Admin),
            _ => Err(RoleParseError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_are_nested() {
        assert!(!Role::Guard.can_export() && !Role::Guard.can_administer());
        assert!(Role::Evidence.can_export() && !Role::Evidence.can_administer());
        assert!(Role::Admin.can_export() && Role::Admin.can_administer());
        assert_eq!("evidence".parse::<Role>(), Ok(Role::Evidence));
        assert!("root".parse::<Role>().is_err());
    }
}
