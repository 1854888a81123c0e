//! Signing keys over time: the first key recorded, rotation (audited, the old private key gone,
//! a second process picking the new key up), rotations interrupted at each step, and keys that
//! appear in signing.key behind the recorder's back.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

const CREATED_90K: i64 = 1_000 * 90_000;
const NOW_90K: i64 = 5_000 * 90_000;

fn data_dir() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::create(&dir.path().join("index.db"), &[1; 16], CREATED_90K).expect("db");
    (dir, db)
}

fn file_key(dir: &Path, name: &str) -> [u8; 32] {
    RecorderKey::load(&dir.join(name))
        .expect("key file")
        .public_key()
}

fn audit_actions(db: &Database, action: &str) -> Vec<serde_json::Value> {
    db.audit_details(action)
        .expect("audit")
        .iter()
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect()
}

#[test]
fn the_first_key_is_recorded_from_the_directory_s_creation() {
    let (dir, db) = data_dir();
    let keys = SigningKeys::open(dir.path(), &db, NOW_90K).expect("open");
    let active = keys.active(&db, NOW_90K);
    let history = db.signing_keys().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, active.id());
    assert_eq!(
        history[0].public_key,
        file_key(dir.path(), SIGNING_KEY_FILE)
    );
    assert_eq!(
        (history[0].first_used_90k, history[0].retired_90k),
        (CREATED_90K, None)
    );
    // Opening again changes nothing.
    let again = SigningKeys::open(dir.path(), &db, NOW_90K + 1).expect("reopen");
    assert_eq!(again.active(&db, NOW_90K).id(), active.id());
    assert_eq!(db.signing_keys().expect("history"), history);
}

#[test]
fn rotation_retires_the_old_key_on_record_and_another_process_signs_with_the_new_one() {
    let (dir, db) = data_dir();
    let rotating = SigningKeys::open(dir.path(), &db, NOW_90K).expect("open");
    // A second process (the running server) that loaded the key before the rotation.
    let server = SigningKeys::open(dir.path(), &db, NOW_90K).expect("open");
    let old = server.active(&db, NOW_90K);

    let r = rotating
        .rotate(&db, NOW_90K + 90_000, "cli:root")
        .expect("rotate");
    assert_eq!(r.retired.public_key, old.public_key());
    assert_eq!(r.retired.retired_90k, Some(NOW_90K + 90_000));
    assert_eq!(
        (r.current.first_used_90k, r.current.retired_90k),
        (NOW_90K + 90_000, None)
    );
    assert_ne!(r.current.public_key, old.public_key());
    // The new key is in signing.key (0600), the old private key is gone, nothing is left over.
    assert_eq!(file_key(dir.path(), SIGNING_KEY_FILE), r.current.public_key);
    let mode = fs::metadata(dir.path().join(SIGNING_KEY_FILE))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!dir.path().join(NEW_SIGNING_KEY_FILE).exists());
    let audit = audit_actions(&db, SIGNING_KEY_ROTATE_ACTION);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["retired"], old.fingerprint().to_string());
    assert_eq!(audit[0]["current"], r.current.fingerprint().to_string());

    // The rotating process and the server both sign with the new key now.
    assert_eq!(rotating.active(&db, NOW_90K).id(), r.current.id);
    let picked_up = server.active(&db, NOW_90K);
    assert_eq!(picked_up.id(), r.current.id);
    assert_eq!(picked_up.public_key(), r.current.public_key);
    // Both keys stay in the history, in order, one current.
    let history = db.signing_keys().expect("history");
    assert_eq!(history, vec![r.retired.clone(), r.current.clone()]);

    // A second rotation keeps all three.
    let r2 = server
        .rotate(&db, NOW_90K + 2 * 90_000, "admin")
        .expect("rotate again");
    assert_eq!(r2.retired.id, r.current.id);
    assert_eq!(db.signing_keys().expect("history").len(), 3);
}

#[test]
fn a_rotation_cut_after_its_commit_is_finished_by_the_next_load() {
    let (dir, db) = data_dir();
    let keys = SigningKeys::open(dir.path(), &db, NOW_90K).expect("open");
    let old = keys.active(&db, NOW_90K);
    // Steps 1 and 2 of a rotation, then the process died before the rename.
    let pkcs8 = generate_pkcs8().expect("key");
    let new = RecorderKey::from_pkcs8(&pkcs8).expect("parse");
    write_secret_file(&dir.path().join(NEW_SIGNING_KEY_FILE), &pkcs8).expect("write");
    db.make_signing_key_current(&new.public_key(), NOW_90K + 1, |_, current| {
        AuditNote::new(
            NOW_90K,
            "admin",
            SIGNING_KEY_ROTATE_ACTION,
            format!("signing_key:{}", current.id),
            serde_json::json!({}),
        )
    })
    .expect("commit");
    assert_eq!(file_key(dir.path(), SIGNING_KEY_FILE), old.public_key());

    let reopened = SigningKeys::open(dir.path(), &db, NOW_90K + 2).expect("reopen");
    assert_eq!(reopened.active(&db, NOW_90K).public_key(), new.public_key());
    assert_eq!(file_key(dir.path(), SIGNING_KEY_FILE), new.public_key());
    assert!(!dir.path().join(NEW_SIGNING_KEY_FILE).exists());
    // Nothing was adopted: the index already knew the key.
    assert!(audit_actions(&db, SIGNING_KEY_ADOPT_ACTION).is_empty());
    // The process that had loaded the old key picks the new one up the same way.
    assert_eq!(keys.active(&db, NOW_90K).public_key(), new.public_key());
}

#[test]
fn a_rotation_cut_before_its_commit_changes_nothing_and_the_next_one_works() {
    let (dir, db) = data_dir();
    let keys = SigningKeys::open(dir.path(), &db, NOW_90K).expect("open");
    let old = keys.active(&db, NOW_90K);
    // Step 1 only (or half of it): a key file that never became current.
    fs::write(dir.path().join(NEW_SIGNING_KEY_FILE), b"half a key").expect("write");
    let reopened = SigningKeys::open(dir.path(), &db, NOW_90K).expect("reopen");
    assert_eq!(reopened.active(&db, NOW_90K).public_key(), old.public_key());
    write_secret_file(
        &dir.path().join("other.key"),
        &generate_pkcs8().expect("key"),
    )
    .expect("write");
    fs::rename(
        dir.path().join("other.key"),
        dir.path().join(NEW_SIGNING_KEY_FILE),
    )
    .expect("rename");
    let reopened = SigningKeys::open(dir.path(), &db, NOW_90K).expect("reopen");
    assert_eq!(reopened.active(&db, NOW_90K).public_key(), old.public_key());
    assert_eq!(db.signing_keys().expect("history").len(), 1);

    let r = reopened.rotate(&db, NOW_90K + 1, "admin").expect("rotate");
    assert_eq!(r.retired.public_key, old.public_key());
    assert_eq!(file_key(dir.path(), SIGNING_KEY_FILE), r.current.public_key);
}

#[test]
fn one_rotation_at_a_time() {
    let (dir, db) = data_dir();
    let keys = SigningKeys::open(dir.path(), &db, NOW_90K).expect("open");
    let held = RotationLock::acquire(dir.path()).expect("lock");
    let e = keys
        .rotate(&db, NOW_90K, "admin")
        .expect_err("another rotation runs");
    assert!(matches!(e, StorageError::Conflict(_)), "{e}");
    assert_eq!(db.signing_keys().expect("history").len(), 1);
    drop(held);
    keys.rotate(&db, NOW_90K, "admin").expect("rotate");
}

#[test]
fn a_key_swapped_in_behind_the_recorder_s_back_is_on_record_and_a_retired_one_is_refused() {
    let (dir, db) = data_dir();
    let keys = SigningKeys::open(dir.path(), &db, NOW_90K).expect("open");
    let original = keys.active(&db, NOW_90K);
    let key_path = dir.path().join(SIGNING_KEY_FILE);
    let original_pkcs8 = fs::read(&key_path).expect("read");

    fs::remove_file(&key_path).expect("rm");
    write_secret_file(&key_path, &generate_pkcs8().expect("key")).expect("write");
    let swapped = file_key(dir.path(), SIGNING_KEY_FILE);
    let reopened = SigningKeys::open(dir.path(), &db, NOW_90K + 7).expect("reopen");
    assert_eq!(reopened.active(&db, NOW_90K).public_key(), swapped);
    let audit = audit_actions(&db, SIGNING_KEY_ADOPT_ACTION);
    assert_eq!(audit.len(), 1, "the swap is on record");
    assert_eq!(audit[0]["retired"], original.fingerprint().to_string());
    let history = db.signing_keys().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].retired_90k, Some(NOW_90K + 7));

    // The retired key put back: its private half should not exist any more; refused.
    fs::remove_file(&key_path).expect("rm");
    write_secret_file(&key_path, &original_pkcs8).expect("write");
    let e = SigningKeys::open(dir.path(), &db, NOW_90K).expect_err("a retired key");
    assert!(e.to_string().contains("was retired"), "{e}");
}
