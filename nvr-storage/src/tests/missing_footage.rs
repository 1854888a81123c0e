//! `nvr check` names footage that disappeared outside retention: segments a chain link, the
//! camera's chain head or a signed head still name, gone from the index with no retention or
//! camera-deletion record. Retention (quota, age, free space) and recovery's removal of empty
//! open rows stay clean.

use nvr_core::{Clock, SegmentId};

use super::{env, frame, params, writer};
use crate::check::check;
use crate::db::CAMERA_DELETE_ACTION;
use crate::recovery::recover;
use crate::retention::{FreeSpaceOutcome, RetentionPolicy, delete_oldest_unheld, enforce};
use crate::segment::file::sha256;
use crate::segment::format::encode_params;

/// Deletes a segment's row and file behind the recorder's back.
fn delete_by_hand(e: &super::Env, id: SegmentId) {
    e.store
        .db()
        .lock()
        .execute("DELETE FROM segments WHERE id = ?1", [id.0])
        .expect("delete row");
    std::fs::remove_file(e.store.segment_path(e.camera, id)).expect("delete file");
}

#[test]
fn footage_deleted_by_hand_is_named_and_retention_and_recovery_are_not() {
    let e = env();
    let p = params(1280);
    let mut w = writer(&e, 1);
    for n in 0..120 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    e.store.sign_chain_head(e.camera.main()).expect("sign");

    // Retention by quota deletes the two oldest, free space the next one: on record, clean.
    let rows = e.store.db().all_segments().expect("rows");
    assert_eq!(rows.len(), 12, "{rows:?}");
    let quota = rows[2..].iter().map(|r| r.file_bytes as u64).sum();
    let policy = RetentionPolicy {
        max_bytes: Some(quota),
        max_age: None,
    };
    let out = enforce(&e.store, e.camera.main(), policy, e.clock.realtime()).expect("retention");
    assert_eq!(out.deleted, vec![rows[0].id, rows[1].id]);
    let mut freed = FreeSpaceOutcome::default();
    delete_oldest_unheld(&e.store, 1, &mut freed).expect("free space");
    assert_eq!(freed.deleted, vec![rows[2].id]);
    // A crash left an open row without a file: recovery removes it (it never joined the chain).
    let params_id = e
        .store
        .db()
        .upsert_video_params(&p, &sha256(&encode_params(&p)))
        .expect("params");
    let day = e.clock.realtime().utc_day();
    let empty = e
        .store
        .db()
        .insert_open_segment(e.camera.main(), None, &day, params_id, rows[11].end_90k)
        .expect("open row");
    assert_eq!(
        recover(&e.store).expect("recover").removed_empty,
        vec![empty.id]
    );
    assert_eq!(check(&e.store).expect("check").problems, vec![]);

    // By hand: the oldest left, one in the middle, and the newest (the chain head, signed).
    let (oldest, middle, newest) = (rows[3].id, rows[6].id, rows[11].id);
    for id in [oldest, middle, newest] {
        delete_by_hand(&e, id);
    }
    let problems = check(&e.store).expect("check").problems;
    let named: Vec<_> = problems.iter().map(|p| (p.camera, p.segment)).collect();
    assert_eq!(
        named,
        vec![
            (Some(e.camera), Some(oldest)),
            (Some(e.camera), Some(middle)),
            (Some(e.camera), Some(newest)),
        ],
        "{problems:#?}"
    );
    for p in &problems {
        assert!(
            p.message.contains("footage missing") && p.message.contains("file is gone too"),
            "{p}"
        );
    }
    assert!(
        problems[0]
            .message
            .contains(&format!("segment {}", rows[4].id))
    );
    assert!(problems[2].message.contains("the camera's chain head"));
    assert!(problems[2].message.contains("signed chain head"));

    // A camera deletion on record (another camera's rows would go the same way) accounts for
    // the segments it lists.
    e.store
        .db()
        .audit_append(
            0,
            "admin",
            CAMERA_DELETE_ACTION,
            "camera:9",
            &serde_json::json!({"segments": [middle.0]}),
        )
        .expect("audit");
    let left: Vec<_> = check(&e.store)
        .expect("check")
        .problems
        .into_iter()
        .map(|p| p.segment)
        .collect();
    assert_eq!(left, vec![Some(oldest), Some(newest)]);
}

#[test]
fn a_row_without_its_file_and_a_file_without_its_row_are_named() {
    let e = env();
    let p = params(1280);
    let mut w = writer(&e, 1);
    for n in 0..50 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    // The file of one goes, the row of another (the file stays).
    std::fs::remove_file(e.store.segment_path(e.camera, rows[1].id)).expect("rm");
    e.store
        .db()
        .lock()
        .execute("DELETE FROM segments WHERE id = ?1", [rows[3].id.0])
        .expect("delete row");
    let problems = check(&e.store).expect("check").problems;
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(text.len(), 3, "{text:#?}");
    let about = |id: SegmentId| {
        text.iter()
            .filter(|t| t.starts_with(&format!("camera {} segment {id}: ", e.camera)))
            .cloned()
            .collect::<Vec<_>>()
    };
    let missing_file = about(rows[1].id);
    assert_eq!(missing_file.len(), 1, "{text:#?}");
    assert!(
        missing_file[0].contains("is missing: the index row remains"),
        "{missing_file:?}"
    );
    let missing_row = about(rows[3].id);
    assert_eq!(missing_row.len(), 2, "{text:#?}");
    assert!(
        missing_row
            .iter()
            .any(|t| t.contains("footage missing") && t.contains("file is still there")),
        "{missing_row:?}"
    );
    assert!(
        missing_row
            .iter()
            .any(|t| t.contains("is not in the index")),
        "{missing_row:?}"
    );
}
