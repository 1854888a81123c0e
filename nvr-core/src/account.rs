//! The rules for user accounts that every front end shares: what a username may be (and which
//! names are reserved for the recorder's own actors in the audit log), the password policy,
//! and how a name that failed those rules may appear in a log line.

/// Longest username, in characters (not bytes).
pub const MAX_USERNAME_CHARS: usize = 64;

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password, in bytes: far above any passphrase, and it bounds what Argon2 reads.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The actor of the audit entries the recorder writes by itself (retention, recovery).
pub const SYSTEM_ACTOR: &str = "system";

/// The owner of the holds that protect a running export's range (released when it ends, or at
/// the next start if the server stopped meanwhile). Not a possible username, so no user can
/// release such a hold by hand.
pub const EXPORT_HOLD_OWNER: &str = "export";

/// Actor names the recorder writes into the audit log itself: a user with one of these names
/// could pass for retention, an export or the command line. Compared case-insensitively.
pub const RESERVED_ACTOR_NAMES: &[&str] = &["system", "export", "recorder", "retention", "cli"];

/// Why a username or password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRuleError {
    #[error(
        "username must be 1 to {MAX_USERNAME_CHARS} characters, without control characters, ':' \
         or surrounding spaces"
    )]
    BadUsername,
    #[error("username {0:?} is reserved for the recorder's own entries in the audit log")]
    ReservedUsername(String),
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
}

/// Checks that `name` has the shape of a username: 1 to 64 characters, no control characters,
/// no `:` (the audit log's actor names use `cli:<user>`), no surrounding white space. This is
/// all a login checks before any other work; [`validate_new_username`] adds the reserved names.
pub fn validate_username(name: &str) -> Result<(), AccountRuleError> {
    let chars = name.chars().count();
    if chars == 0
        || chars > MAX_USERNAME_CHARS
        || name.chars().any(|c| c.is_control() || c == ':')
        || name.trim() != name
    {
        return Err(AccountRuleError::BadUsername);
    }
    Ok(())
}

/// Checks a username for a new account: [`validate_username`], and not a reserved actor name.
pub fn validate_new_username(name: &str) -> Result<(), AccountRuleError> {
    validate_username(name)?;
    if RESERVED_ACTOR_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(AccountRuleError::ReservedUsername(name.to_owned()));
    }
    Ok(())
}

/// Checks a new password against the policy.
pub fn check_password_policy(password: &str) -> Result<(), AccountRuleError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountRuleError::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountRuleError::PasswordTooShort);
    }
    Ok(())
}

/// How a username someone typed may appear in a log line or the audit log: as is when it is a
/// valid username, else only its length (a refused name could be megabytes, or carry control
/// characters that forge log lines).
pub fn loggable_username(name: &str) -> String {
    if validate_username(name).is_ok() {
        name.to_owned()
    } else {
        format!("<invalid username of {} bytes>", name.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(validate_username("alice").is_ok());
        assert!(
            validate_username(&"é".repeat(64)).is_ok(),
            "characters, not bytes"
        );
        for bad in [
            "",
            " alice",
            "alice ",
            "a\nb",
            "cli:root",
            &"a".repeat(65),
            &"é".repeat(65),
        ] {
            assert_eq!(
                validate_username(bad),
                Err(AccountRuleError::BadUsername),
                "{bad:?}"
            );
        }
        for reserved in ["system", "Export", "SYSTEM", "cli"] {
            assert!(validate_username(reserved).is_ok());
            assert!(
                matches!(
                    validate_new_username(reserved),
                    Err(AccountRuleError::ReservedUsername(_))
                ),
                "{reserved}"
            );
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password_policy("12345678").is_ok());
        assert_eq!(
            check_password_policy("1234567"),
            Err(AccountRuleError::PasswordTooShort)
        );
        assert_eq!(
            check_password_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(AccountRuleError::PasswordTooLong)
        );
    }

    #[test]
    fn invalid_names_are_not_logged_raw() {
        assert_eq!(loggable_username("bob"), "bob");
        let long = "x".repeat(100_000);
        assert_eq!(
            loggable_username(&long),
            "<invalid username of 100000 bytes>"
        );
        assert!(!loggable_username("a\r\nFAKE LOG LINE").contains('\n'));
    }
}
