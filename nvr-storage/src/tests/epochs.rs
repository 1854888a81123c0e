//! Epoch keys and retention's shredding cannot race: a segment's row and the epoch it uses are
//! one transaction, shredding re-checks in the statement that marks an epoch, and a shredded
//! epoch is never used again. The writer's steps are called one by one, with retention run
//! between them in the orders that used to lose the key.

use nvr_core::{Duration90k, Time90k};

use super::{T0, env, frame, params, writer};
use crate::check::check;
use crate::recovery::{collect_garbage, recover};
use crate::retention::{RetentionPolicy, enforce};
use crate::segment::file::sha256;
use crate::segment::format::encode_params;
use crate::writer::epoch_key_for;

const DAY_90K: i64 = 86_400 * 90_000;

/// Deletes everything older than a day: with `now` two days on, all of it.
const ONE_DAY: RetentionPolicy = RetentionPolicy {
    max_bytes: None,
    max_age: Some(Duration90k(DAY_90K)),
};

#[test]
fn retention_between_a_segment_row_and_its_key_file_cannot_shred_the_key() {
    let e = env();
    let db = e.store.db();
    let p = params(1280);
    let params_id = db
        .upsert_video_params(&p, &sha256(&encode_params(&p)))
        .expect("params");
    let day = Time90k(T0).utc_day();
    // Retention runs just after midnight, while the writer opens a segment for a frame
    // received just before: the epoch's day is over.
    let after_midnight = Time90k(T0 + DAY_90K);

    // Writer, step 1: the segment row and its (new) epoch, in one transaction.
    let new = db
        .insert_open_segment(e.camera.main(), None, &day, params_id, T0)
        .expect("row");
    assert!(new.epoch_created);
    // Retention now: the epoch is in use, so it stays.
    let out = enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy::default(),
        after_midnight,
    )
    .expect("retention");
    assert_eq!(out.shredded_epochs, Vec::<i64>::new());
    // Writer, step 2: the key file, durable before the segment file is written.
    let key = epoch_key_for(&e.store, e.camera, new).expect("key");
    // Retention again, before the segment file exists: still in use.
    let out = enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy::default(),
        after_midnight,
    )
    .expect("retention");
    assert_eq!(out.shredded_epochs, Vec::<i64>::new());
    let path = e.store.keyring().epoch_path(new.epoch_id);
    assert!(path.exists(), "the key of segment {} was shredded", new.id);
    // The file holds that very key (read back without the cache).
    let reread = crate::keys::Keyring::new(
        path.parent().expect("keys dir").to_owned(),
        crate::keys::MasterKey::load(&e.store.dir().join("master.key")).expect("master"),
    );
    assert_eq!(
        reread.epoch_key(new.epoch_id, e.camera.0).expect("unwrap"),
        key
    );
}

#[test]
fn an_epoch_listed_for_shredding_and_then_used_is_not_shredded() {
    let e = env();
    let db = e.store.db();
    let p = params(1280);
    let params_id = db
        .upsert_video_params(&p, &sha256(&encode_params(&p)))
        .expect("params");
    let day = Time90k(T0).utc_day();
    let after_midnight = Time90k(T0 + DAY_90K).utc_day();
    // A segment that could not be started (its file failed) leaves its epoch without segments.
    let failed = db
        .insert_open_segment(e.camera.main(), None, &day, params_id, T0)
        .expect("row");
    epoch_key_for(&e.store, e.camera, failed).expect("key");
    db.delete_segments(e.camera, &[failed.id])
        .expect("drop row");
    collect_garbage(&e.store).expect("garbage");

    // Retention lists it (its day is over, nothing uses it) ...
    let listed = db.shreddable_epochs(&after_midnight).expect("list");
    assert_eq!(listed, vec![failed.epoch_id]);
    // ... a writer opens a segment in it before retention marks it ...
    let new = db
        .insert_open_segment(e.camera.main(), None, &day, params_id, T0)
        .expect("row");
    assert_eq!((new.epoch_id, new.epoch_created), (failed.epoch_id, false));
    // ... so marking it fails, and retention leaves the key alone.
    assert!(
        !db.mark_epoch_shredded(failed.epoch_id, &after_midnight)
            .expect("mark")
    );
    let out = enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy::default(),
        Time90k(T0 + DAY_90K),
    )
    .expect("retention");
    assert_eq!(out.shredded_epochs, Vec::<i64>::new());
    assert!(e.store.keyring().epoch_path(new.epoch_id).exists());
    epoch_key_for(&e.store, e.camera, new).expect("the key is there");
}

#[test]
fn a_shredded_epoch_is_never_used_again() {
    let e = env();
    let p = params(1280);
    let mut w = writer(&e, 60);
    for n in 0..20 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let first = e.store.db().all_segments().expect("rows")[0].epoch_id;
    // Two days on, the day's footage goes and its key is shredded.
    let later = Time90k(T0 + 2 * DAY_90K);
    let out = enforce(&e.store, e.camera.main(), ONE_DAY, later).expect("retention");
    assert_eq!(out.shredded_epochs, vec![first]);

    // The clock is stepped back: frames received on that day again need a new key.
    for n in 100..120 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let second = rows[0].epoch_id;
    assert_ne!(second, first, "the shredded epoch was used again");
    assert!(
        !e.store.keyring().epoch_path(first).exists(),
        "the shredded key came back"
    );
    assert!(e.store.keyring().epoch_path(second).exists());
    assert_eq!(check(&e.store).expect("check").problems, vec![]);

    // The new epoch is shredded in its turn once its footage is gone.
    let out = enforce(&e.store, e.camera.main(), ONE_DAY, later).expect("retention");
    assert_eq!(out.shredded_epochs, vec![second]);
    assert!(!e.store.keyring().epoch_path(second).exists());
}

#[test]
fn a_key_file_left_between_marking_and_unlinking_is_removed_at_start() {
    let e = env();
    let p = params(1280);
    let mut w = writer(&e, 60);
    for n in 0..20 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let row = e.store.db().all_segments().expect("rows")[0].clone();
    e.store
        .db()
        .delete_segments(e.camera, &[row.id])
        .expect("delete");
    collect_garbage(&e.store).expect("garbage");
    // Retention marked the epoch, then the process stopped before unlinking its key.
    let later = Time90k(T0 + 2 * DAY_90K).utc_day();
    assert!(
        e.store
            .db()
            .mark_epoch_shredded(row.epoch_id, &later)
            .expect("mark")
    );
    let path = e.store.keyring().epoch_path(row.epoch_id);
    assert!(path.exists());
    let report = recover(&e.store).expect("recover");
    assert_eq!(report.keys_shredded, 1);
    assert!(!path.exists());
}
