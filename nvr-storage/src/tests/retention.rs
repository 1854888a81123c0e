//! Retention on a real data directory: oldest first, never the open segment, by age with epoch
//! shredding, evidence holds (also placed while a pass runs), and the free-space rule across
//! cameras.

use nvr_core::{Clock, Duration90k, Time90k};

use super::*;
use crate::db::NewHold;

#[test]
fn retention_deletes_oldest_first_and_never_the_open_segment() {
    let e = env();
    let mut w = writer(&e, 1);
    let p = params(1280);
    for n in 0..100 {
        w.write(&p, &frame(n)).expect("write");
    }
    let rows = e.store.db().all_segments().expect("rows");
    let open = rows.iter().find(|r| !r.sealed).expect("an open segment").id;
    let sealed: Vec<_> = rows.iter().filter(|r| r.sealed).collect();
    let quota = sealed
        .iter()
        .rev()
        .take(3)
        .map(|r| r.file_bytes as u64)
        .sum::<u64>();
    let out = enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy {
            max_bytes: Some(quota),
            max_age: None,
        },
        e.clock.realtime(),
    )
    .expect("retention");
    let remaining = e.store.db().all_segments().expect("rows");
    assert!(remaining.iter().any(|r| r.id == open));
    let deleted_ids: Vec<_> = out.deleted.clone();
    let expected_oldest: Vec<_> = sealed
        .iter()
        .take(deleted_ids.len())
        .map(|r| r.id)
        .collect();
    assert_eq!(deleted_ids, expected_oldest, "oldest first");
    for id in &deleted_ids {
        assert!(!e.store.segment_path(e.camera, *id).exists());
    }
    // A zero quota deletes every sealed segment but still not the open one.
    enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy {
            max_bytes: Some(0),
            max_age: None,
        },
        e.clock.realtime(),
    )
    .expect("retention");
    let remaining = e.store.db().all_segments().expect("rows");
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].id, open);
    drop(w);
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn retention_by_age_and_epoch_shredding() {
    let e = env();
    let mut w = writer(&e, 1);
    let p = params(1280);
    for n in 0..30 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let epoch_key = e.store.keyring().epoch_path(1);
    assert!(epoch_key.exists());
    // Two days later with a one-day limit: everything goes and the day's key is shredded.
    let later = Time90k(T0 + 2 * 86_400 * 90_000);
    let out = enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy {
            max_bytes: None,
            max_age: Some(Duration90k::from_secs(86_400)),
        },
        later,
    )
    .expect("retention");
    assert_eq!(out.deleted.len(), 3);
    assert_eq!(out.shredded_epochs, vec![1]);
    assert!(!epoch_key.exists());
}

#[test]
fn a_held_range_survives_a_retention_pass_that_deletes_everything_around_it() {
    let e = env();
    let mut w = writer(&e, 1);
    let p = params(1280);
    for n in 0..60 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    let held = &rows[2];
    e.store
        .db()
        .insert_hold(
            &NewHold {
                camera: e.camera,
                start_90k: held.start_90k + 10,
                end_90k: held.end_90k - 10,
                case_ref: "case 7",
                reason: "assault",
                created_by: "ev",
                created_90k: 0,
            },
            |_| note(),
        )
        .expect("hold");
    let out = enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy {
            max_bytes: Some(0),
            max_age: None,
        },
        e.clock.realtime(),
    )
    .expect("retention");
    let remaining = e.store.db().all_segments().expect("rows");
    assert_eq!(
        remaining.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![held.id]
    );
    assert_eq!(out.deleted.len(), rows.len() - 1);
    assert!(out.held_over_quota_bytes > 0, "holds crowd out recording");
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
    // Once released, the held segment goes too.
    let hold = e.store.db().holds(true).expect("holds")[0].id;
    e.store
        .db()
        .release_hold(hold, "ev", 1, None)
        .expect("release");
    enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy {
            max_bytes: Some(0),
            max_age: None,
        },
        e.clock.realtime(),
    )
    .expect("retention");
    assert!(e.store.db().all_segments().expect("rows").is_empty());
}

#[test]
fn freeing_disk_space_deletes_the_oldest_unheld_footage_of_any_camera() {
    let e = env();
    let url = CameraUrl::parse("rtsp://127.0.0.1:8554/cam2").expect("url");
    let cam2 = e
        .store
        .add_camera(&CameraEdit::new("cam2", &url), |_| note())
        .expect("cam2");
    let p = params(1280);
    let mut w1 = writer(&e, 1);
    for n in 0..50 {
        w1.write(&p, &frame(n)).expect("write");
    }
    w1.end_run().expect("end");
    // The second camera starts 2 s later, so the two cameras' segments interleave in time.
    let mut w2 = CameraWriter::new(
        e.store.clone(),
        cam2.main(),
        WriterConfig {
            segment_duration: Duration90k::from_secs(1),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .expect("writer 2");
    for n in 20..70 {
        w2.write(&p, &frame(n)).expect("write");
    }
    w2.end_run().expect("end");
    let mut rows = e.store.db().all_segments().expect("rows");
    rows.sort_by_key(|r| (r.start_90k, r.id.0));
    let held = &rows[0];
    e.store
        .db()
        .insert_hold(
            &NewHold {
                camera: held.camera_id,
                start_90k: held.start_90k,
                end_90k: held.end_90k,
                case_ref: "case 9",
                reason: "theft",
                created_by: "ev",
                created_90k: 0,
            },
            |_| note(),
        )
        .expect("hold");
    let unheld: Vec<_> = rows[1..].iter().collect();
    // Ask for a little more than the four oldest unheld files: five go.
    let needed = unheld[..4].iter().map(|r| r.file_bytes as u64).sum::<u64>() + 1;
    let mut out = FreeSpaceOutcome::default();
    delete_oldest_unheld(&e.store, needed, &mut out).expect("free");
    let expected: Vec<_> = unheld[..5].iter().map(|r| r.id).collect();
    assert_eq!(
        out.deleted, expected,
        "globally oldest first, the held one skipped"
    );
    assert!(
        unheld[..5].iter().any(|r| r.camera_id == cam2)
            && unheld[..5].iter().any(|r| r.camera_id == e.camera),
        "both cameras give up footage"
    );
    assert_eq!(out.short_bytes, 0);
    for r in &unheld[..5] {
        assert!(!e.store.segment_path(r.camera_id, r.id).exists());
    }
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
    // Asking for more than exists deletes everything but the held segment and says how much
    // could not be found.
    let mut out = FreeSpaceOutcome::default();
    delete_oldest_unheld(&e.store, u64::MAX / 2, &mut out).expect("free");
    assert!(out.short_bytes > 0);
    let remaining = e.store.db().all_segments().expect("rows");
    assert_eq!(
        remaining.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![held.id]
    );
    let audit = e
        .store
        .db()
        .audit_list(&crate::db::AuditFilter {
            action: Some("retention_delete".into()),
            limit: 100,
            ..Default::default()
        })
        .expect("audit");
    assert!(audit.len() >= 2, "one entry per camera and pass: {audit:?}");
    assert!(
        audit.iter().all(|a| a.detail.contains("disk_free")),
        "{audit:?}"
    );
    // With the target met, the pass deletes nothing.
    assert_eq!(
        enforce_free_space(&e.store, 0).expect("noop").deleted,
        vec![]
    );
}

/// A hold placed after retention chose its candidates (an export starting, an officer's hold)
/// still protects its range: the delete itself checks for holds.
#[test]
fn a_hold_placed_after_candidates_were_chosen_still_protects_its_segment() {
    let e = env();
    let p = params(1280);
    let mut w = writer(&e, 1);
    for n in 0..40 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    let chosen: Vec<_> = rows.iter().map(|r| (r.id, r.file_bytes as u64)).collect();
    let held = &rows[1];
    e.store
        .db()
        .insert_hold(
            &NewHold {
                camera: e.camera,
                start_90k: held.start_90k,
                end_90k: held.end_90k,
                case_ref: "c",
                reason: "r",
                created_by: "ev",
                created_90k: 0,
            },
            |_| note(),
        )
        .expect("hold");
    let (deleted, bytes) = e
        .store
        .db()
        .delete_unheld_segments(&crate::db::RetentionDelete {
            stream: e.camera.main(),
            segments: &chosen,
            time_90k: T0,
            reason: None,
        })
        .expect("delete");
    assert_eq!(deleted.len(), chosen.len() - 1);
    assert!(!deleted.contains(&held.id));
    let expected_bytes: u64 = rows
        .iter()
        .filter(|r| r.id != held.id)
        .map(|r| r.file_bytes as u64)
        .sum();
    assert_eq!(bytes, expected_bytes);
    // The audit entry, written with the delete, names exactly what went.
    let details = e
        .store
        .db()
        .audit_details("retention_delete")
        .expect("audit");
    let ids: Vec<i64> = deleted.iter().map(|s| s.0).collect();
    assert_eq!(
        details,
        vec![serde_json::json!({"bytes": expected_bytes, "segments": ids}).to_string()]
    );
    // Garbage is listed for the deleted rows only; collecting it keeps the held file.
    crate::recovery::collect_garbage(&e.store).expect("gc");
    assert!(e.store.segment_path(e.camera, held.id).exists());
    let left = segment_ids(&e);
    assert_eq!(left, vec![held.id]);
}
