//! Tests of the index schema and migrations.

use super::*;
use nvr_core::CameraId;

/// The schema as SQLite understands it: every table's columns (name, type, not null, default,
/// primary key) and foreign keys, and every index's SQL. Compared structurally, because a column
/// added by ALTER TABLE is stored as different SQL text than the same column in CREATE TABLE.
fn schema_of(conn: &Connection) -> Vec<String> {
    let objects: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<std::result::Result<_, _>>()
        .expect("rows");
    let mut out = Vec::new();
    for (kind, name, sql) in objects {
        if kind == "table" {
            let mut cols = conn
                .prepare(&format!("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{name}')"))
                .expect("table_info");
            for c in cols
                .query_map([], |r| {
                    Ok(format!(
                        "{name}.{}: {} notnull={} default={:?} pk={}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?
                    ))
                })
                .expect("columns")
            {
                out.push(c.expect("column"));
            }
            let mut fks = conn
                .prepare(&format!("SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list('{name}')"))
                .expect("fk");
            for f in fks
                .query_map([], |r| {
                    Ok(format!(
                        "{name}.{} -> {}({:?}) on delete {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?
                    ))
                })
                .expect("fks")
            {
                out.push(f.expect("fk"));
            }
            // Table constraints other than columns (CHECK, UNIQUE) live only in the SQL text:
            // compare the constraint clauses, normalized.
            let sql = sql.unwrap_or_default();
            for clause in ["CHECK", "UNIQUE ("] {
                for (i, _) in sql.match_indices(clause) {
                    let rest: String = sql[i..].chars().take_while(|&c| c != '\n').collect();
                    out.push(format!("{name} constraint {}", rest.trim_end_matches(',')));
                }
            }
        } else {
            out.push(format!("{kind} {name}: {}", sql.unwrap_or_default()));
        }
    }
    out.sort();
    out
}

#[test]
fn upgraded_equals_fresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = Database::create(&dir.path().join("fresh.db"), &[1; 16], 0).expect("fresh");

    // Build a version-1 database the way an old release would have, with data in it.
    let old_path = dir.path().join("old.db");
    {
        let conn = Connection::open(&old_path).expect("open");
        conn.execute_batch(MIGRATIONS[0].1).expect("v1");
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
        // Epoch 2 existed once (its key file may too): its id must never come back.
        conn.execute_batch(
            "INSERT INTO epochs (camera_id, day) VALUES (1, '2026-01-01'), (1, '2026-01-02');
             UPDATE epochs SET shredded = 1 WHERE id = 1;
             DELETE FROM epochs WHERE id = 2;",
        )
        .expect("epochs");
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
    // Migration 7 moved the camera's URL to its main stream.
    let camera = upgraded.camera(CameraId(1)).expect("camera").expect("row");
    assert_eq!(camera.url, "rtsp://10.0.0.1/");
    assert_eq!((camera.has_sub_row, camera.sub_url), (false, None));
    // Migration 10: a camera from before audio recording records no sound.
    assert!(!camera.record_audio);
    // Migration 4 rebuilt `epochs`: rows and the id sequence kept, and a shredded epoch's day
    // can have a new live epoch (but only one).
    let conn = upgraded.lock();
    let kept: (i64, String, i64) = conn
        .query_row("SELECT id, day, shredded FROM epochs", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("kept epoch");
    assert_eq!(kept, (1, "2026-01-01".to_owned(), 1));
    let insert = "INSERT INTO epochs (camera_id, day) VALUES (1, '2026-01-01')";
    conn.execute(insert, [])
        .expect("a live epoch beside the shredded one");
    assert_eq!(conn.last_insert_rowid(), 3, "epoch ids are never reused");
    assert!(conn.execute(insert, []).is_err(), "one live epoch per day");
}

#[test]
fn migrations_are_numbered_up_to_the_schema_version() {
    let numbers: Vec<i64> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(numbers.first(), Some(&1));
    assert_eq!(numbers.last(), Some(&SCHEMA_VERSION));
}

/// A database at version 5 (before the motion index, without the reserved steps 6 and 7)
/// upgrades straight to the current schema.
#[test]
fn version_5_upgrades_over_the_missing_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = Database::create(&dir.path().join("fresh.db"), &[1; 16], 0).expect("fresh");
    let path = dir.path().join("v5.db");
    {
        let conn = Connection::open(&path).expect("open");
        for (n, sql) in MIGRATIONS.iter().filter(|(n, _)| *n <= 5) {
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("step {n}: {e}"));
        }
        conn.execute(
            INSERT_META,
            named_params! {":uuid": &[2u8; 16][..], ":created_90k": 5},
        )
        .expect("meta");
        conn.pragma_update(None, "user_version", 5)
            .expect("version");
    }
    let upgraded = Database::open(&path).expect("upgrade");
    assert_eq!(user_version(&upgraded.lock()).expect("v"), SCHEMA_VERSION);
    assert_eq!(schema_of(&upgraded.lock()), schema_of(&fresh.lock()));
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

#[test]
fn schema_version_is_the_last_migration() {
    let numbers: Vec<i64> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(numbers.last(), Some(&SCHEMA_VERSION));
}

#[test]
fn migration_7_moves_each_cameras_url_retention_and_chain_head_to_its_main_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v5.db");
    {
        let conn = Connection::open(&path).expect("open");
        for (number, sql) in MIGRATIONS.iter().filter(|(n, _)| *n <= 5) {
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("v{number}: {e}"));
        }
        conn.execute(
            INSERT_META,
            named_params! {":uuid": &[2u8; 16][..], ":created_90k": 5},
        )
        .expect("meta");
        conn.execute_batch(
            "INSERT INTO cameras (name, url, created_90k, retain_max_bytes, retain_max_age_secs,
                                  chain_segment_id, chain_sha256)
             VALUES ('a', 'rtsp://10.0.0.1/a', 7, 1000, 86400, 3, X'0101010101010101010101010101010101010101010101010101010101010101'),
                    ('b', 'rtsp://10.0.0.2/b', 8, NULL, NULL, NULL, NULL);
             INSERT INTO chain_heads (camera_id, segment_id, chain_sha256, signed_90k, signature)
             VALUES (1, 3, X'0101010101010101010101010101010101010101010101010101010101010101', 9, X'00');",
        )
        .expect("v5 data");
        conn.pragma_update(None, "user_version", 5)
            .expect("version");
    }
    let db = Database::open(&path).expect("upgrade");
    let a = db.camera(CameraId(1)).expect("camera").expect("a");
    assert_eq!(a.url, "rtsp://10.0.0.1/a");
    assert_eq!(
        (a.retain_max_bytes, a.retain_max_age_secs),
        (Some(1000), Some(86_400))
    );
    assert_eq!(
        db.stream_chain_head(CameraId(1).main()).expect("head"),
        Some((nvr_core::SegmentId(3), [1; 32]))
    );
    assert_eq!(db.stream_chain_head(CameraId(1).sub()).expect("head"), None);
    let heads = db.chain_heads().expect("heads");
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0].key(), CameraId(1).main());
    let b = db.camera(CameraId(2)).expect("camera").expect("b");
    assert_eq!(
        (b.url.as_str(), b.retain_max_bytes),
        ("rtsp://10.0.0.2/b", None)
    );
    assert_eq!(
        db.stream_chain_head(CameraId(2).main()).expect("head"),
        None
    );
}
