//! Queries of the `audit` table: appending entries to the hash chain, listing them, and
//! verifying the chain (deleted or edited rows are named by id).

use rusqlite::{OptionalExtension, named_params};

use super::Database;
use crate::error::Result;
use crate::integrity::{AuditFields, audit_hash};

const SELECT_LAST: &str = "SELECT id, sha256 FROM audit ORDER BY id DESC LIMIT 1";
const SELECT_SEQ: &str = "SELECT seq FROM sqlite_sequence WHERE name = 'audit'";
const INSERT_AUDIT: &str = "
    INSERT INTO audit (id, time_90k, actor, action, object, detail, prev_sha256, sha256)
    VALUES (:id, :time_90k, :actor, :action, :object, :detail, :prev_sha256, :sha256)";
const SELECT_ALL: &str = "
    SELECT id, time_90k, actor, action, object, detail, prev_sha256, sha256 FROM audit
    ORDER BY id";
const SELECT_FILTERED: &str = "
    SELECT id, time_90k, actor, action, object, detail, prev_sha256, sha256 FROM audit
    WHERE (:actor IS NULL OR actor = :actor)
      AND (:action IS NULL OR action = :action)
      AND (:object IS NULL OR object = :object OR object LIKE :object_prefix)
      AND (:since IS NULL OR time_90k >= :since)
      AND (:until IS NULL OR time_90k < :until)
      AND (:before_id IS NULL OR id < :before_id)
    ORDER BY id DESC LIMIT :limit";

/// The action of retention's deletions; the detail lists the segment ids deleted under
/// `segments` (`nvr check` accounts for them).
pub const RETENTION_DELETE_ACTION: &str = "retention_delete";

/// The action of a camera's deletion; like retention's, the detail lists the segment ids that
/// went with it under `segments`.
pub const CAMERA_DELETE_ACTION: &str = "camera_delete";

/// One audit entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub time_90k: i64,
    pub actor: String,
    pub action: String,
    pub object: String,
    /// Canonical JSON (sorted keys, no whitespace).
    pub detail: String,
    pub prev_sha256: Vec<u8>,
    pub sha256: Vec<u8>,
}

/// An audit entry to append, usually in the same transaction as the change it records (so a
/// crash keeps both or neither).
#[derive(Clone, Debug, PartialEq)]
pub struct AuditNote {
    pub time_90k: i64,
    /// A username, `cli:<os user>`, or `system`.
    pub actor: String,
    pub action: String,
    /// e.g. `camera:3`, `user:alice`.
    pub object: String,
    pub detail: serde_json::Value,
}

impl AuditNote {
    pub fn new(
        time_90k: i64,
        actor: impl Into<String>,
        action: impl Into<String>,
        object: impl Into<String>,
        detail: serde_json::Value,
    ) -> Self {
        AuditNote {
            time_90k,
            actor: actor.into(),
            action: action.into(),
            object: object.into(),
            detail,
        }
    }
}

/// Appends `note` to the chain inside the caller's transaction (or on a connection that holds
/// the lock); the caller commits.
pub(crate) fn append_in(conn: &rusqlite::Connection, note: &AuditNote) -> Result<i64> {
    let detail = serde_json::to_string(&note.detail).unwrap_or_else(|_| "{}".into());
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(SELECT_LAST)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let seq: Option<i64> = conn
        .prepare_cached(SELECT_SEQ)?
        .query_row([], |r| r.get(0))
        .optional()?;
    // The next id continues the sequence even if the newest rows were deleted, so a deletion
    // stays visible as a gap.
    let id = seq.unwrap_or(0).max(last.as_ref().map_or(0, |l| l.0)) + 1;
    let prev = last.map_or([0u8; 32], |l| to32(&l.1));
    let sha = audit_hash(
        &prev,
        &AuditFields {
            id,
            time_90k: note.time_90k,
            actor: &note.actor,
            action: &note.action,
            object: &note.object,
            detail: &detail,
        },
    );
    conn.prepare_cached(INSERT_AUDIT)?.execute(named_params! {
        ":id": id,
        ":time_90k": note.time_90k,
        ":actor": note.actor,
        ":action": note.action,
        ":object": note.object,
        ":detail": detail,
        ":prev_sha256": &prev[..],
        ":sha256": &sha[..],
    })?;
    Ok(id)
}

/// Which entries to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// An exact object ("camera:3"), or a kind ("camera") matching every object of it.
    pub object: Option<String>,
    pub since_90k: Option<i64>,
    pub until_90k: Option<i64>,
    /// For paging: only entries older than this id.
    pub before_id: Option<i64>,
    pub limit: u32,
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        time_90k: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        object: r.get(4)?,
        detail: r.get(5)?,
        prev_sha256: r.get(6)?,
        sha256: r.get(7)?,
    })
}

fn to32(v: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    if v.len() == 32 {
        a.copy_from_slice(v);
    }
    a
}

impl Database {
    /// Appends an entry on its own, linking it to the previous one. `detail` is serialized
    /// canonically. Changes that have an entry append it with the change instead.
    pub fn audit_append(
        &self,
        time_90k: i64,
        actor: &str,
        action: &str,
        object: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let note = AuditNote::new(time_90k, actor, action, object, detail.clone());
        self.audited(|_| Ok(((), note)))
    }

    /// Entries matching `f`, newest first.
    pub fn audit_list(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let conn = self.read();
        let prefix = f.object.as_ref().map(|o| format!("{o}:%"));
        let rows = conn
            .prepare_cached(SELECT_FILTERED)?
            .query_map(
                named_params! {
                    ":actor": f.actor,
                    ":action": f.action,
                    ":object": f.object,
                    ":object_prefix": prefix,
                    ":since": f.since_90k,
                    ":until": f.until_90k,
                    ":before_id": f.before_id,
                    ":limit": f.limit.clamp(1, 10_000),
                },
                entry,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The `detail` of every entry with `action`, oldest first (no limit).
    pub fn audit_details(&self, action: &str) -> Result<Vec<String>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached("SELECT detail FROM audit WHERE action = :action ORDER BY id")?
            .query_map(named_params! {":action": action}, |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Checks the whole chain; returns (entry id, problem) for every break.
    pub fn audit_verify(&self) -> Result<Vec<(i64, String)>> {
        let conn = self.lock();
        let rows: Vec<AuditEntry> = conn
            .prepare(SELECT_ALL)?
            .query_map([], entry)?
            .collect::<rusqlite::Result<_>>()?;
        let seq: Option<i64> = conn
            .prepare(SELECT_SEQ)?
            .query_row([], |r| r.get(0))
            .optional()?;
        drop(conn);
        let mut problems = Vec::new();
        let mut prev_id = 0i64;
        let mut prev_sha = [0u8; 32];
        for e in &rows {
            if e.id != prev_id + 1 {
                let missing = if e.id == prev_id + 2 {
                    format!("audit entry {} is missing (deleted)", prev_id + 1)
                } else {
                    format!(
                        "audit entries {} to {} are missing (deleted)",
                        prev_id + 1,
                        e.id - 1
                    )
                };
                problems.push((prev_id + 1, missing));
            } else if e.prev_sha256 != prev_sha {
                problems.push((
                    e.id,
                    format!("audit entry {} does not follow entry {prev_id}", e.id),
                ));
            }
            let expected = audit_hash(
                &to32(&e.prev_sha256),
                &AuditFields {
                    id: e.id,
                    time_90k: e.time_90k,
                    actor: &e.actor,
                    action: &e.action,
                    object: &e.object,
                    detail: &e.detail,
                },
            );
            if e.sha256 != expected {
                problems.push((e.id, format!("audit entry {} was altered", e.id)));
            }
            prev_id = e.id;
            prev_sha = to32(&e.sha256);
        }
        if let Some(seq) = seq
            && seq > prev_id
        {
            problems.push((
                prev_id + 1,
                format!(
                    "audit entries {} to {seq} are missing (deleted)",
                    prev_id + 1
                ),
            ));
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db_with_entries(n: i64) -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(&dir.path().join("x.db"), &[1; 16], 0).expect("db");
        for i in 0..n {
            db.audit_append(i, "alice", "login", "user:alice", &json!({"b": 1, "a": i}))
                .expect("append");
        }
        (dir, db)
    }

    #[test]
    fn intact_chain_verifies_and_detail_is_canonical() {
        let (_d, db) = db_with_entries(5);
        assert_eq!(db.audit_verify().expect("verify"), vec![]);
        let all = db
            .audit_list(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].id, 5, "newest first");
        assert_eq!(all[4].detail, r#"{"a":0,"b":1}"#);
        let f = AuditFilter {
            object: Some("user".into()),
            limit: 2,
            ..Default::default()
        };
        assert_eq!(db.audit_list(&f).expect("list").len(), 2);
    }

    #[test]
    fn deleted_and_edited_rows_are_named() {
        let (_d, db) = db_with_entries(6);
        db.lock()
            .execute("DELETE FROM audit WHERE id = 3", [])
            .expect("delete");
        db.lock()
            .execute("UPDATE audit SET actor = 'mallory' WHERE id = 5", [])
            .expect("edit");
        let p = db.audit_verify().expect("verify");
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, 3);
        assert!(p[0].1.contains("entry 3 is missing"), "{p:?}");
        assert_eq!(p[1].0, 5);
        assert!(p[1].1.contains("altered"));
    }

    #[test]
    fn deleting_the_newest_row_is_noticed() {
        let (_d, db) = db_with_entries(4);
        db.lock()
            .execute("DELETE FROM audit WHERE id = 4", [])
            .expect("delete");
        let p = db.audit_verify().expect("verify");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].1.contains("4 to 4") || p[0].1.contains("entries 4"),
            "{p:?}"
        );
        // New entries continue after the gap, which stays visible.
        db.audit_append(9, "bob", "login", "user:bob", &json!({}))
            .expect("append");
        assert!(
            db.audit_verify()
                .expect("verify")
                .iter()
                .any(|(id, _)| *id == 4)
        );
    }
}
