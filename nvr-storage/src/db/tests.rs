//! Tests of the index schema and migrations.

use super::*;

/// The schema as SQLite stores it, normalized, for comparison.
fn schema_of(conn: &Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .expect("prepare");
    stmt.query_map([], |r| {
        let sql: Option<String> = r.get(2)?;
        // Comments and whitespace differ between schema.sql and the migrations; compare tokens.
        let normalized = sql
            .unwrap_or_default()
            .lines()
            .map(|l| l.split("--").next().unwrap_or("").trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok((r.get(0)?, r.get(1)?, normalized))
    })
    .expect("query")
    .collect::<std::result::Result<_, _>>()
    .expect("rows")
}

#[test]
fn upgraded_equals_fresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = Database::create(&dir.path().join("fresh.db"), &[1; 16], 0).expect("fresh");

    // Build a version-1 database the way an old release would have, with data in it.
    let old_path = dir.path().join("old.db");
    {
        let conn = Connection::open(&old_path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("v1");
        conn.execute(
            INSERT_META,
            named_params! {":uuid": &[2u8; 16][..], ":created_90k": 5},
        )
        .expect("meta");
        conn.execute(
            "INSERT INTO cameras (name, url, created_90k) VALUES ('old cam', 'rtsp://10.0.0.1/', 7)",
            [],
        )
        .expect("camera");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
    }
    let upgraded = Database::open(&old_path).expect("upgrade");

    assert_eq!(user_version(&upgraded.lock()).expect("v"), SCHEMA_VERSION);
    assert_eq!(schema_of(&upgraded.lock()), schema_of(&fresh.lock()));
    let name: String = upgraded
        .lock()
        .query_row("SELECT name FROM cameras", [], |r| r.get(0))
        .expect("kept data");
    assert_eq!(name, "old cam");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.db");
    drop(Database::create(&path, &[1; 16], 0).expect("create"));
    Connection::open(&path)
        .expect("open")
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("bump");
    let e = Database::open(&path).expect_err("must refuse");
    assert!(matches!(e, StorageError::SchemaTooNew { .. }), "{e}");
}

#[test]
fn create_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.db");
    drop(Database::create(&path, &[1; 16], 0).expect("create"));
    assert!(Database::create(&path, &[1; 16], 0).is_err());
    assert!(Database::open(&path).is_ok());
    assert!(Database::open(&dir.path().join("missing.db")).is_err());
}
