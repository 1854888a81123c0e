//! Tests of the storage crate as a whole: writer, runs, views, crash recovery, retention and
//! check, on a real temporary data directory with a simulated clock.

use std::sync::Arc;

use bytes::Bytes;
use nvr_core::{
    CameraId, CameraUrl, Clock, Duration90k, SimulatedClock, Time90k, VideoCodec, VideoFrame,
    VideoParams,
};

use crate::check::check;
use crate::playback::{runs, view};
use crate::recovery::recover;
use crate::retention::{
    FreeSpaceOutcome, RetentionPolicy, delete_oldest_unheld, enforce, enforce_free_space,
};
use crate::segment::format::{CHUNK_CIPHERTEXT_LEN, HEADER_LEN};
use crate::store::{CameraEdit, Store};
use crate::writer::{CameraWriter, WriteOutcome, WriterConfig};

mod bframes;
mod epochs;
mod missing_footage;
mod motion;
mod retention;
mod streams;
mod write_faults;

const FPS: i64 = 10;
const FRAME_90K: i64 = 90_000 / FPS;
pub(crate) const T0: i64 = 1_795_959_900 * 90_000;

pub(crate) struct Env {
    _dir: tempfile::TempDir,
    pub(crate) store: Arc<Store>,
    pub(crate) clock: SimulatedClock,
    pub(crate) camera: CameraId,
}

/// An audit entry for changes whose entry the test does not look at.
pub(crate) fn note() -> crate::db::AuditNote {
    crate::db::AuditNote::new(0, "test", "test", "test", serde_json::json!({}))
}

pub(crate) fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = SimulatedClock::new(Time90k(T0));
    Store::init(dir.path(), &clock).expect("init");
    let store = Store::open(dir.path(), Arc::new(clock.clone())).expect("open");
    let url = CameraUrl::parse("rtsp://127.0.0.1:8554/cam1").expect("url");
    let camera = store
        .add_camera(
            &CameraEdit {
                username: Some("user"),
                password: Some("pw"),
                ..CameraEdit::new("cam1", &url)
            },
            |_| note(),
        )
        .expect("camera");
    Env {
        _dir: dir,
        store,
        clock,
        camera,
    }
}

pub(crate) fn params(width: u16) -> Arc<VideoParams> {
    Arc::new(VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.64001f".into(),
        width,
        height: 720,
        // A real avc1 sample entry is not needed here: nothing decodes these frames.
        sample_entry: Bytes::from(crate::mp4::test_support::fake_avc1(width, 720)),
    })
}

/// Frame `n` of a session: key every 10 frames, 5-20 kB, content derived from `n`.
pub(crate) fn frame(n: i64) -> VideoFrame {
    let size = 5_000 + ((n * 7919) % 15_000) as usize;
    let data: Vec<u8> = (0..size).map(|i| (i as i64 ^ n) as u8).collect();
    VideoFrame {
        media_time_90k: n * FRAME_90K,
        received: Time90k(T0 + n * FRAME_90K + 90 * 20),
        is_key: n % 10 == 0,
        data: Bytes::from(data),
    }
}

pub(crate) fn writer(e: &Env, segment_secs: i64) -> CameraWriter {
    CameraWriter::new(
        e.store.clone(),
        e.camera.main(),
        WriterConfig {
            segment_duration: Duration90k::from_secs(segment_secs),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .expect("writer")
}

/// The ids of every segment row, oldest first.
fn segment_ids(e: &Env) -> Vec<nvr_core::SegmentId> {
    let rows = e.store.db().all_segments().expect("rows");
    rows.iter().map(|r| r.id).collect()
}

fn whole_day() -> (Time90k, Time90k) {
    (
        Time90k(T0 - 3600 * 90_000),
        Time90k(T0 + 24 * 3600 * 90_000),
    )
}

/// Reads a whole view into memory.
fn read_view(e: &Env, start: Time90k, end: Time90k) -> Result<Vec<u8>, String> {
    let v = view(&e.store, e.camera.main(), start, end).map_err(|err| err.to_string())?;
    let mut out = Vec::new();
    for p in v.mp4.pieces(0..v.mp4.len(), v.reader.clone()) {
        out.extend_from_slice(&p.map_err(|err| format!("{err:#}"))?);
    }
    Ok(out)
}

#[test]
fn segments_rotate_at_key_frames_and_form_one_run() {
    let e = env();
    let mut w = writer(&e, 3);
    let p = params(1280);
    for n in 0..100 {
        assert_eq!(
            w.write(&p, &frame(n)).expect("write"),
            WriteOutcome::Written
        );
        e.clock.advance(Duration90k(FRAME_90K));
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    // 100 frames at 10 fps = 10 s; 3 s segments rotating at key frames (every 1 s) -> 4 segments.
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert!(rows.iter().all(|r| r.sealed && r.run_id == rows[0].id));
    assert_eq!(rows.iter().map(|r| r.frames).sum::<i64>(), 100);
    for pair in rows.windows(2) {
        assert_eq!(pair[0].end_90k, pair[1].start_90k, "runs are contiguous");
    }
    let (s, en) = whole_day();
    let r = runs(&e.store, e.camera.main(), s, en).expect("runs");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].frames, 100);
    assert_eq!(r[0].segments, 4);
    // The run starts at the fastest frame's estimate: receive time minus the 20 ms delay.
    assert_eq!(r[0].start, Time90k(T0 + 90 * 20));
    assert_eq!(r[0].end.0 - r[0].start.0, 100 * FRAME_90K);
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn a_seal_the_index_refuses_is_retried_in_order_and_loses_nothing() {
    let e = env();
    let mut w = writer(&e, 1);
    let p = params(1280);
    // The index refuses to seal (as SQLite does on a full disk) while segments keep closing.
    e.store
        .db()
        .lock()
        .execute_batch(
            "CREATE TRIGGER refuse_seal BEFORE UPDATE OF sha256 ON segments
             BEGIN SELECT RAISE(FAIL, 'simulated: database or disk is full'); END;",
        )
        .expect("trigger");
    for n in 0..35 {
        assert_eq!(
            w.write(&p, &frame(n)).expect("write"),
            WriteOutcome::Written
        );
        e.clock.advance(Duration90k(FRAME_90K));
    }
    let rows = e.store.db().all_segments().expect("rows");
    assert_eq!(rows.len(), 4, "three closed, one open: {rows:#?}");
    assert!(rows.iter().all(|r| !r.sealed), "nothing could be sealed");
    assert_eq!(w.stats().segments_sealed, 0);
    // The index works again: the next frame seals the three, oldest first, then the run ends.
    e.store
        .db()
        .lock()
        .execute_batch("DROP TRIGGER refuse_seal")
        .expect("drop trigger");
    assert!(
        w.take_seal_error().is_some(),
        "the writer thread is told (to show it, or stall on a full disk)"
    );
    // Retries wait SEAL_RETRY_INTERVAL (each may block on SQLite's busy timeout).
    e.clock.advance(Duration90k::from_secs(2));
    w.write(&p, &frame(35)).expect("write");
    assert_eq!(
        w.stats().segments_sealed,
        3,
        "the three, at the first frame after the wait"
    );
    assert!(w.take_seal_error().is_none());
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    assert!(rows.iter().all(|r| r.sealed), "{rows:#?}");
    assert_eq!(rows.iter().map(|r| r.frames).sum::<i64>(), 36);
    assert_eq!(w.stats().segments_sealed, 4);
    let (s, en) = whole_day();
    let mp4 = read_view(&e, s, en).expect("view");
    let expected: Vec<u8> = (0..36).flat_map(|n| frame(n).data.to_vec()).collect();
    let mdat_at = mp4.windows(4).position(|w| w == b"mdat").expect("mdat box");
    assert_eq!(&mp4[mdat_at + 4..], &expected[..]);
    // The hash chain followed the segments' order: check verifies it link by link.
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn view_contains_exactly_the_recorded_frames() {
    let e = env();
    let mut w = writer(&e, 3);
    let p = params(1280);
    for n in 0..50 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let (s, en) = whole_day();
    let mp4 = read_view(&e, s, en).expect("view");
    let expected: Vec<u8> = (0..50).flat_map(|n| frame(n).data.to_vec()).collect();
    let mdat_at = mp4.windows(4).position(|w| w == b"mdat").expect("mdat box");
    assert_eq!(&mp4[mdat_at + 4..], &expected[..]);
    // A range starting between key frames begins at the key frame before it.
    let start = Time90k(T0 + 90 * 20 + 25 * FRAME_90K);
    let v = view(
        &e.store,
        e.camera.main(),
        start,
        Time90k(start.0 + 10 * FRAME_90K),
    )
    .expect("view");
    assert_eq!(v.mp4.frame_count(), 15, "frames 20..35");
}

#[test]
fn parameter_change_starts_a_new_segment_without_losing_frames() {
    let e = env();
    let mut w = writer(&e, 60);
    for n in 0..30 {
        let p = if n < 20 { params(1280) } else { params(640) };
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].frames, rows[1].frames), (20, 10));
    assert_ne!(rows[0].video_params_id, rows[1].video_params_id);
    assert_eq!(rows[0].run_id, rows[1].run_id);
    let (s, en) = whole_day();
    let v = view(&e.store, e.camera.main(), s, en).expect("view");
    assert_eq!(v.mp4.frame_count(), 30);
}

#[test]
fn frames_before_the_first_key_frame_are_skipped_and_time_goes_back_only_as_b_frames_do() {
    let e = env();
    let mut w = writer(&e, 60);
    let p = params(1280);
    assert_eq!(
        w.write(&p, &frame(5)).expect("w"),
        WriteOutcome::SkippedUntilKeyFrame
    );
    assert_eq!(w.write(&p, &frame(10)).expect("w"), WriteOutcome::Written);
    assert!(w.write(&p, &frame(10)).is_err(), "same media time twice");
    assert_eq!(w.write(&p, &frame(12)).expect("w"), WriteOutcome::Written);
    assert_eq!(
        w.write(&p, &frame(11)).expect("a little back: a B-frame"),
        WriteOutcome::Written
    );
    assert!(w.write(&p, &frame(11)).is_err(), "same media time twice");
    assert_eq!(w.write(&p, &frame(40)).expect("w"), WriteOutcome::Written);
    assert!(
        w.write(&p, &frame(19)).is_err(),
        "2.1 s back is a broken clock, not reordering"
    );
    assert_eq!(w.stats().frames_skipped, 1);
}

#[test]
fn open_segment_is_playable_before_it_is_sealed() {
    let e = env();
    let mut w = writer(&e, 60);
    let p = params(1280);
    for n in 0..40 {
        w.write(&p, &frame(n)).expect("write");
    }
    let (s, en) = whole_day();
    let r = runs(&e.store, e.camera.main(), s, en).expect("runs");
    assert_eq!(r.len(), 1);
    assert!(r[0].recording);
    // ~500 kB written: several sealed chunks hold most frames; the newest are still in memory.
    assert!(r[0].frames > 20 && r[0].frames < 40, "{}", r[0].frames);
    let mp4 = read_view(&e, s, en).expect("view of the open segment");
    let n = r[0].frames as i64;
    let expected: Vec<u8> = (0..n).flat_map(|i| frame(i).data.to_vec()).collect();
    assert!(mp4.ends_with(&expected));
    drop(w);
}

#[test]
fn crash_loses_at_most_the_unsealed_chunk_and_recovery_is_clean() {
    let e = env();
    let mut w = writer(&e, 60);
    let p = params(1280);
    for n in 0..45 {
        w.write(&p, &frame(n)).expect("write");
    }
    let sealed_len = e
        .store
        .open_segment(e.camera.main())
        .expect("open")
        .read()
        .expect("lock")
        .sealed_plaintext_len;
    // Simulate kill -9: the writer never closes anything.
    std::mem::forget(w);
    let clock = Arc::new(e.clock.clone());
    let store = Store::open(e.store.dir(), clock).expect("reopen");
    let report = recover(&store).expect("recover");
    assert_eq!(report.recovered.len(), 1, "{report:?}");
    let kept = report.recovered[0].1;
    // Every frame whose bytes were in a sealed chunk is kept.
    let mut end = 0u64;
    let mut in_sealed = 0;
    for n in 0..45 {
        end += 16 + frame(n).data.len() as u64;
        if end + 150 <= sealed_len {
            in_sealed += 1;
        }
    }
    assert!(
        kept >= in_sealed && kept < 45,
        "kept {kept}, sealed held {in_sealed}"
    );
    assert_eq!(check(&store).expect("check").problems, vec![]);
    // Recovery is idempotent.
    assert_eq!(recover(&store).expect("again").recovered.len(), 0);
    // Recording resumes in a new run after the recovered one.
    let mut w = CameraWriter::new(
        store.clone(),
        e.camera.main(),
        WriterConfig {
            segment_duration: Duration90k::from_secs(60),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .expect("writer");
    for n in 100..120 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let (s, en) = whole_day();
    assert_eq!(runs(&store, e.camera.main(), s, en).expect("runs").len(), 2);
    assert_eq!(check(&store).expect("check").problems, vec![]);
}

#[test]
fn tampering_is_named_by_check_and_fails_playback() {
    let e = env();
    let mut w = writer(&e, 2);
    let p = params(1280);
    for n in 0..60 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    let victim = &rows[1];
    let path = e.store.segment_path(e.camera, victim.id);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[HEADER_LEN + CHUNK_CIPHERTEXT_LEN / 2] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let report = check(&e.store).expect("check");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].segment, Some(victim.id));
    let (s, en) = whole_day();
    let err = read_view(&e, s, en).expect_err("tampered video must not be served");
    assert!(err.contains("authentication"), "{err}");
    // The untouched first segment still plays.
    let first = read_view(&e, Time90k(rows[0].start_90k), Time90k(rows[0].end_90k));
    assert!(first.is_ok(), "{first:?}");
}

#[test]
fn camera_password_is_sealed_in_the_index() {
    let e = env();
    assert_eq!(
        e.store.camera_password(e.camera).expect("pw"),
        Some("pw".into())
    );
    let db = std::fs::read(e.store.db().path()).expect("db");
    assert!(!db.windows(2).any(|w| w == b"pw"), "password in clear");
}

#[test]
fn orphan_and_missing_files_are_reported() {
    let e = env();
    let mut w = writer(&e, 1);
    let p = params(1280);
    for n in 0..25 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    std::fs::remove_file(e.store.segment_path(e.camera, rows[0].id)).expect("rm");
    std::fs::write(e.store.camera_dir(e.camera).join("999.seg"), b"junk").expect("orphan");
    let report = check(&e.store).expect("check");
    let text: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text[0].contains("missing") && text[0].contains(&format!("segment {}", rows[0].id)));
    assert!(text[1].contains("not in the index"));
}

#[test]
fn hash_chain_survives_retention_and_exposes_row_edits_and_silent_deletes() {
    let e = env();
    let mut w = writer(&e, 1);
    let p = params(1280);
    for n in 0..80 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    let rows = e.store.db().all_segments().expect("rows");
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.chain_sha256.is_some()));
    assert_eq!(rows[1].prev_segment_id, Some(rows[0].id));
    assert_eq!(rows[1].prev_chain_sha256, rows[0].chain_sha256);
    let head = e
        .store
        .sign_chain_head(e.camera.main())
        .expect("sign")
        .expect("head");
    assert_eq!(head.segment_id, rows[7].id);

    // Retention removes the two oldest: recorded in the audit log, so the chain stays valid.
    let quota = rows[2..].iter().map(|r| r.file_bytes as u64).sum();
    enforce(
        &e.store,
        e.camera.main(),
        RetentionPolicy {
            max_bytes: Some(quota),
            max_age: None,
        },
        e.clock.realtime(),
    )
    .expect("retention");
    assert_eq!(check(&e.store).expect("check").problems, vec![]);

    // Deleting a row behind the recorder's back: the next segment's link still names it.
    e.store
        .db()
        .lock()
        .execute("DELETE FROM segments WHERE id = ?1", [rows[4].id.0])
        .expect("delete");
    std::fs::remove_file(e.store.segment_path(e.camera, rows[4].id)).expect("rm");
    // Editing a row's times breaks its own link.
    e.store
        .db()
        .lock()
        .execute(
            "UPDATE segments SET end_90k = end_90k + 90000 WHERE id = ?1",
            [rows[6].id.0],
        )
        .expect("edit");
    let problems = check(&e.store).expect("check").problems;
    let named: Vec<_> = problems.iter().filter_map(|p| p.segment).collect();
    assert!(named.contains(&rows[4].id), "{problems:?}");
    assert!(named.contains(&rows[6].id), "{problems:?}");
}

#[test]
fn check_names_an_edited_or_deleted_audit_entry() {
    let e = env();
    for i in 0..4 {
        e.store.audit(
            "alice",
            "login",
            "user:alice",
            serde_json::json!({ "n": i }),
        );
    }
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
    e.store
        .db()
        .lock()
        .execute("UPDATE audit SET actor = 'mallory' WHERE id = 2", [])
        .expect("edit");
    let p = check(&e.store).expect("check").problems;
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].message.contains("audit entry 2 was altered"), "{p:?}");
}

#[test]
fn wall_clock_steps_start_new_runs_without_overlap_and_are_flagged() {
    use crate::db::SEGMENT_FLAG_CLOCK_JUMP;
    let e = env();
    let mut w = writer(&e, 2);
    let p = params(1280);
    // 20 s of frames; the wall clock steps back an hour at 8 s and forward ten years at 14 s.
    let back = -3600 * 90_000;
    let forward = 10 * 365 * 86_400 * 90_000;
    for n in 0..200 {
        let mut f = frame(n);
        if n >= 80 {
            f.received += Duration90k(back);
        }
        if n >= 140 {
            f.received += Duration90k(forward);
        }
        w.write(&p, &f).expect("write");
    }
    w.end_run().expect("end");
    let mut rows = e.store.db().all_segments().expect("rows");
    rows.sort_by_key(|r| r.id);
    // Never overlapping, in the order they were recorded.
    for pair in rows.windows(2) {
        assert!(
            pair[0].end_90k <= pair[1].start_90k,
            "{:?} overlaps {:?}",
            pair[0],
            pair[1]
        );
    }
    let runs: std::collections::BTreeSet<_> = rows.iter().map(|r| r.run_id).collect();
    assert_eq!(runs.len(), 3, "one run per clock: {rows:#?}");
    let flagged = rows
        .iter()
        .filter(|r| r.flags & SEGMENT_FLAG_CLOCK_JUMP != 0)
        .count();
    assert_eq!(
        flagged, 2,
        "each jump is flagged on the segment that ends its run"
    );
    assert_eq!(
        rows.iter().map(|r| r.frames).sum::<i64>(),
        200,
        "no frame lost"
    );
    // The segments after the forward jump sit ten years later.
    assert!(rows.last().expect("last").start_90k > T0 + forward / 2);
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn segment_files_the_index_forgot_never_have_their_ids_reused() {
    let e = env();
    let mut w = writer(&e, 1);
    let p = params(1280);
    for n in 0..30 {
        w.write(&p, &frame(n)).expect("write");
    }
    w.end_run().expect("end");
    drop(w);
    let rows = e.store.db().all_segments().expect("rows");
    let last = rows.iter().map(|r| r.id).max().expect("segments");
    // As if the index's last writes were lost: the newest rows, their sequence and the stream's
    // chain head (written in the same transactions) go back to the third-newest segment.
    let keep = &rows[rows.len() - 3];
    e.store
        .db()
        .lock()
        .execute_batch(&format!(
            "DELETE FROM segments WHERE id > {k};
             UPDATE sqlite_sequence SET seq = {k} WHERE name = 'segments';
             UPDATE streams SET chain_segment_id = {k}, chain_sha256 = X'{c}'
             WHERE stream = 0;",
            k = keep.id.0,
            c = hex::encode(keep.chain_sha256.expect("chain")),
        ))
        .expect("roll back");
    let report = recover(&e.store).expect("recover");
    assert_eq!(report.recovered.len(), 0);
    let mut w = writer(&e, 1);
    for n in 100..130 {
        w.write(&p, &frame(n)).expect("write after recovery");
    }
    w.end_run().expect("end");
    let new_ids = segment_ids(&e);
    assert!(
        new_ids.iter().filter(|&&id| id > last).count() >= 2,
        "{new_ids:?}"
    );
    // The two forgotten files are reported, by name.
    let problems = check(&e.store).expect("check").problems;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .all(|p| p.message.contains("not in the index")),
        "{problems:?}"
    );
}
