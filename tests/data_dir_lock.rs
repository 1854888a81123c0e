//! One recorder per data directory: a second `nvr serve` on a directory in use exits with an
//! error naming the directory and the running server's pid, before its recovery could cut the
//! first server's open segment; reading commands keep working beside the server.

mod common;

use std::time::Duration;

use common::*;

/// Size of a segment file's header plus one sealed chunk (see nvr-storage's segment format).
const HEADER_AND_ONE_CHUNK: u64 = 96 + 65_552;

/// The open segment: (camera id, segment id).
fn open_segment(rec: &Recorder) -> Option<(i64, i64)> {
    let conn = rusqlite::Connection::open(rec.dir.join("index.db")).expect("index");
    conn.query_row(
        "SELECT camera_id, id FROM segments WHERE state = 0",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

fn segment_len(rec: &Recorder, camera: i64, segment: i64) -> u64 {
    let path = rec.dir.join(format!("segments/{camera}/{segment}.seg"));
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_second_server_is_refused_and_the_first_keeps_its_open_segment() {
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    // Segments of five minutes: the one open now stays open for the whole test.
    rec.serve(&["--segment-duration-secs", "300"]);
    let first_pid = rec.server.as_ref().expect("server").child.id();
    let (camera, segment, len_before) = wait_for(
        Duration::from_secs(120),
        "an open segment with a sealed chunk on disk",
        || {
            let (camera, id) = open_segment(&rec)?;
            let len = segment_len(&rec, camera, id);
            (len >= HEADER_AND_ONE_CHUNK).then_some((camera, id, len))
        },
    );

    // Commands that read run beside the server.
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(1 open)"), "{out}");
    let (code, out) = nvr(&["camera", "list", "--data-dir", rec.d()], None);
    assert_eq!(code, 0, "{out}");

    // A second server on the same data directory is refused.
    let log = rec.tmp.path().join("second-serve.log");
    let mut second = Proc::start(
        &["serve", "--data-dir", rec.d(), "--listen", "127.0.0.1:0"],
        &log,
    );
    let status = wait_for(Duration::from_secs(60), "the second server to exit", || {
        second.child.try_wait().expect("try_wait")
    });
    let err = std::fs::read_to_string(&log).expect("log");
    assert!(!status.success(), "{status:?}: {err}");
    assert!(
        err.contains(&format!("data directory {} is in use", rec.d()))
            && err.contains(&format!("pid {first_pid}")),
        "{err}"
    );

    // The first server is unharmed: still recording into the same open segment.
    assert!(rec.server.as_mut().expect("server").is_running());
    assert_eq!(open_segment(&rec), Some((camera, segment)));
    wait_for(
        Duration::from_secs(60),
        "the open segment to keep growing",
        || (segment_len(&rec, camera, segment) > len_before).then_some(()),
    );
    rec.stop();

    // Sealed by its own server at shutdown, not cut short by another's recovery.
    let conn = rusqlite::Connection::open(rec.dir.join("index.db")).expect("index");
    let (state, flags, frames): (i64, i64, i64) = conn
        .query_row(
            "SELECT state, flags, frames FROM segments WHERE id = ?1",
            [segment],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("segment row");
    assert_eq!((state, flags & 1), (1, 0), "sealed, not recovered");
    assert!(frames > 0);
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}
