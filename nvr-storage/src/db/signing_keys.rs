//! Queries of the `signing_keys` table: every Ed25519 key the recorder has signed with, with
//! the dates it was in use, and the one change to it (a new current key, with its audit entry).

use rusqlite::{OptionalExtension, Row, named_params};

use super::{AuditNote, Database};
use crate::error::{Result, StorageError};
use crate::signing::Fingerprint;

/// Audit action of `nvr key rotate`.
pub const SIGNING_KEY_ROTATE_ACTION: &str = "signing_key_rotate";
/// Audit action of a key found in signing.key that the index did not know as current (the file
/// was replaced behind the recorder's back, or lost and made anew).
pub const SIGNING_KEY_ADOPT_ACTION: &str = "signing_key_adopt";

const SELECT_KEYS: &str = "
    SELECT id, public_key, first_used_90k, retired_90k FROM signing_keys ORDER BY id";
const SELECT_CURRENT_KEY: &str = "
    SELECT id, public_key, first_used_90k, retired_90k FROM signing_keys
    WHERE retired_90k IS NULL";
const SELECT_KEY_BY_PUBLIC: &str = "
    SELECT id, public_key, first_used_90k, retired_90k FROM signing_keys
    WHERE public_key = :public_key";
const COUNT_KEYS: &str = "SELECT COUNT(*) FROM signing_keys";
const SELECT_CREATED: &str = "SELECT created_90k FROM meta WHERE id = 1";
const RETIRE_CURRENT_KEY: &str =
    "UPDATE signing_keys SET retired_90k = :at_90k WHERE retired_90k IS NULL";
const INSERT_KEY: &str = "
    INSERT INTO signing_keys (public_key, first_used_90k) VALUES (:public_key, :first_used_90k)";
/// Heads signed before the table existed were signed by the first key it records.
const ASSIGN_UNNAMED_HEADS: &str =
    "UPDATE chain_heads SET signing_key_id = :key_id WHERE signing_key_id IS NULL";

/// One key the recorder has used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub id: i64,
    pub public_key: [u8; 32],
    pub first_used_90k: i64,
    /// `None` for the current key.
    pub retired_90k: Option<i64>,
}

impl SigningKeyRow {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key)
    }

    pub fn is_current(&self) -> bool {
        self.retired_90k.is_none()
    }
}

/// What [`Database::make_signing_key_current`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChange {
    /// The key already was the current one: nothing changed.
    AlreadyCurrent(SigningKeyRow),
    /// The first key the table records (a new data directory, or one from before the table).
    First(SigningKeyRow),
    /// `retired` was the current key until now; `current` is.
    Replaced {
        retired: SigningKeyRow,
        current: SigningKeyRow,
    },
}

impl KeyChange {
    /// The key now current.
    pub fn current(&self) -> &SigningKeyRow {
        match self {
            KeyChange::AlreadyCurrent(k) | KeyChange::First(k) => k,
            KeyChange::Replaced { current, .. } => current,
        }
    }
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<SigningKeyRow> {
    let pk: Vec<u8> = r.get(1)?;
    let mut public_key = [0u8; 32];
    if pk.len() == 32 {
        public_key.copy_from_slice(&pk);
    }
    Ok(SigningKeyRow {
        id: r.get(0)?,
        public_key,
        first_used_90k: r.get(2)?,
        retired_90k: r.get(3)?,
    })
}

impl Database {
    /// Every key the recorder has signed with, oldest first.
    pub fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_KEYS)?
            .query_map([], key_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The current key, once one is recorded.
    pub fn current_signing_key(&self) -> Result<Option<SigningKeyRow>> {
        Ok(self
            .lock()
            .prepare_cached(SELECT_CURRENT_KEY)?
            .query_row([], key_row)
            .optional()?)
    }

    /// Records `public_key` as the current key, in one transaction: nothing if it already is;
    /// the first key (used since the data directory was created, and the signer of every head
    /// that names no key) if none is recorded; else the current key is retired at `at_90k`,
    /// the new one used from then, and the entry `audit(retired, new)` appended. A key that
    /// was retired is never current again (its private half was meant to be gone).
    pub fn make_signing_key_current(
        &self,
        public_key: &[u8; 32],
        at_90k: i64,
        audit: impl FnOnce(&SigningKeyRow, &SigningKeyRow) -> AuditNote,
    ) -> Result<KeyChange> {
        self.audited_many(|tx| {
            let current = tx
                .prepare_cached(SELECT_CURRENT_KEY)?
                .query_row([], key_row)
                .optional()?;
            if let Some(c) = current.as_ref().filter(|c| c.public_key == *public_key) {
                return Ok((KeyChange::AlreadyCurrent(c.clone()), Vec::new()));
            }
            let known = tx
                .prepare_cached(SELECT_KEY_BY_PUBLIC)?
                .query_row(named_params! {":public_key": &public_key[..]}, key_row)
                .optional()?;
            if let Some(k) = known {
                return Err(StorageError::Key(format!(
                    "signing key {} was retired at {}; it must not sign again",
                    k.fingerprint(),
                    nvr_core::Time90k(k.retired_90k.unwrap_or(0)).to_rfc3339()
                )));
            }
            let first = tx.query_row(COUNT_KEYS, [], |r| r.get::<_, i64>(0))? == 0;
            let first_used_90k = if first {
                tx.query_row(SELECT_CREATED, [], |r| r.get(0))?
            } else {
                at_90k
            };
            tx.prepare_cached(RETIRE_CURRENT_KEY)?
                .execute(named_params! {":at_90k": at_90k})?;
            tx.prepare_cached(INSERT_KEY)?.execute(named_params! {
                ":public_key": &public_key[..],
                ":first_used_90k": first_used_90k,
            })?;
            let new = SigningKeyRow {
                id: tx.last_insert_rowid(),
                public_key: *public_key,
                first_used_90k,
                retired_90k: None,
            };
            if first {
                tx.prepare_cached(ASSIGN_UNNAMED_HEADS)?
                    .execute(named_params! {":key_id": new.id})?;
                return Ok((KeyChange::First(new), Vec::new()));
            }
            match current {
                Some(mut retired) => {
                    retired.retired_90k = Some(at_90k);
                    let note = audit(&retired, &new);
                    Ok((
                        KeyChange::Replaced {
                            retired,
                            current: new,
                        },
                        vec![note],
                    ))
                }
                // Keys recorded but none current: only a hand-edited table gets here.
                None => Ok((KeyChange::First(new), Vec::new())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(retired: &SigningKeyRow, new: &SigningKeyRow) -> AuditNote {
        AuditNote::new(
            0,
            "test",
            SIGNING_KEY_ROTATE_ACTION,
            format!("signing_key:{}", new.id),
            serde_json::json!({"retired": retired.fingerprint().to_string()}),
        )
    }

    #[test]
    fn first_key_then_a_replacement_then_no_way_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(&dir.path().join("x.db"), &[1; 16], 77).expect("db");
        db.lock()
            .execute(
                "INSERT INTO chain_heads (camera_id, segment_id, chain_sha256, signed_90k, \
                 signature) VALUES (1, 1, zeroblob(32), 5, x'01')",
                [],
            )
            .expect("a head from before the table");
        let first = db
            .make_signing_key_current(&[1; 32], 1000, note)
            .expect("first");
        let KeyChange::First(k1) = &first else {
            panic!("{first:?}")
        };
        assert_eq!((k1.first_used_90k, k1.retired_90k), (77, None));
        assert_eq!(
            db.chain_heads().expect("heads")[0].signing_key_id,
            Some(k1.id)
        );
        assert_eq!(
            db.make_signing_key_current(&[1; 32], 2000, note)
                .expect("again"),
            KeyChange::AlreadyCurrent(k1.clone())
        );
        let audit_before = db
            .audit_details(SIGNING_KEY_ROTATE_ACTION)
            .expect("a")
            .len();
        assert_eq!(audit_before, 0);
        let change = db
            .make_signing_key_current(&[2; 32], 3000, note)
            .expect("rotate");
        let KeyChange::Replaced { retired, current } = &change else {
            panic!("{change:?}")
        };
        assert_eq!(retired.retired_90k, Some(3000));
        assert_eq!((current.first_used_90k, current.retired_90k), (3000, None));
        assert_eq!(
            db.audit_details(SIGNING_KEY_ROTATE_ACTION)
                .expect("a")
                .len(),
            1,
            "the rotation is on record"
        );
        assert_eq!(db.current_signing_key().expect("c"), Some(current.clone()));
        let e = db
            .make_signing_key_current(&[1; 32], 4000, note)
            .expect_err("a retired key");
        assert!(e.to_string().contains("was retired"), "{e}");
        let all = db.signing_keys().expect("all");
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().filter(|k| k.is_current()).count(), 1);
        // The index refuses a second current key even without this code.
        let conn = db.lock();
        assert!(
            conn.execute(
                "INSERT INTO signing_keys (public_key, first_used_90k) VALUES (zeroblob(32), 1)",
                []
            )
            .is_err()
        );
    }
}
