//! `nvr check` notices footage that disappeared outside retention: a real camera records short
//! segments, then the oldest, a middle and the newest sealed segment lose their row and file by
//! hand, and check names each one. A data directory whose gaps all come from retention (and a
//! crash's recovery) checks clean.

mod common;

use std::time::Duration;

use common::*;

/// Sealed segments, oldest first: (camera id, segment id).
fn sealed_segments(rec: &Recorder) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(rec.dir.join("index.db")).expect("index");
    let mut stmt = conn
        .prepare("SELECT camera_id, id FROM segments WHERE state = 1 ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Segment ids the audit log says retention deleted.
fn deleted_by_retention(rec: &Recorder) -> Vec<i64> {
    let conn = rusqlite::Connection::open(rec.dir.join("index.db")).expect("index");
    let mut stmt = conn
        .prepare("SELECT detail FROM audit WHERE action = 'retention_delete' ORDER BY id")
        .expect("prepare");
    let details: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    details
        .iter()
        .flat_map(|d| {
            let v: serde_json::Value = serde_json::from_str(d).expect("detail");
            v["segments"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| i.as_i64())
        })
        .collect()
}

#[test]
fn check_names_each_segment_deleted_by_hand() {
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    rec.serve(&["--segment-duration-secs", "2"]);
    wait_for(Duration::from_secs(180), "six sealed segments", || {
        (sealed_segments(&rec).len() >= 6).then_some(())
    });
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "clean before anything is deleted: {out}");

    let segments = sealed_segments(&rec);
    let n = segments.len();
    // Not neighbours, so each has a remaining successor (or is the chain head).
    let victims = [segments[0], segments[n / 2], segments[n - 1]];
    let conn = rusqlite::Connection::open(rec.dir.join("index.db")).expect("index");
    for (camera, id) in victims {
        conn.execute("DELETE FROM segments WHERE id = ?1", [id])
            .expect("delete row");
        std::fs::remove_file(rec.dir.join(format!("segments/{camera}/{id}.seg")))
            .expect("delete file");
    }
    drop(conn);

    let (code, out) = rec.check();
    assert_eq!(code, 1, "{out}");
    for (camera, id) in victims {
        let prefix = format!("PROBLEM camera {camera} segment {id}: footage missing");
        assert!(
            out.lines().any(|l| l.starts_with(&prefix)),
            "segment {id} is not named: {out}"
        );
    }
    let problems = out.lines().filter(|l| l.starts_with("PROBLEM")).count();
    assert_eq!(problems, victims.len(), "{out}");
}

#[test]
fn retention_deletes_and_crash_recovery_check_clean() {
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    let serve_args = [
        "--segment-duration-secs",
        "2",
        // A few segments' worth: retention deletes the oldest all along.
        "--retain-max-bytes",
        "300000",
        "--retention-interval-secs",
        "1",
    ];
    rec.serve(&serve_args);
    wait_for(
        Duration::from_secs(180),
        "retention to delete three segments",
        || (deleted_by_retention(&rec).len() >= 3).then_some(()),
    );
    // Clean while recording, too.
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");

    // A crash, then a start that recovers the open segment; retention goes on.
    rec.kill9();
    let before = deleted_by_retention(&rec).len();
    rec.restart();
    wait_for(
        Duration::from_secs(180),
        "retention to delete more after the restart",
        || (deleted_by_retention(&rec).len() >= before + 2).then_some(()),
    );
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
    // The check had gaps to account for: the oldest segments are gone.
    let left = sealed_segments(&rec);
    assert!(!left.is_empty());
    let deleted = deleted_by_retention(&rec);
    assert!(deleted.contains(&1), "{deleted:?}");
}
