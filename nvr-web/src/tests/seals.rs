//! Requests never wait behind a segment's seal: while a seal holds the index's writer (the
//! seal hook of `Database::set_seal_hook`, blocked until the test lets it go, as an fsync that
//! takes forever would), the session check, the camera list and the other reads a page makes
//! are answered, and so are motion search, settings and playback of what is already sealed. No clock is involved: the seal
//! provably has not finished when the answers arrive, and a request that queued behind the
//! writer would never arrive (the deadlines only turn such a hang into a failure).

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::http::StatusCode;
use nvr_core::Time90k;

use super::harness::*;

/// How long a request or the seal's start may take before the test fails rather than hangs.
const HANG_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_checks_and_camera_lists_answer_while_a_seal_holds_the_writer() {
    let env = env().await;
    let l = login(&env, "ev").await;
    let cam = add_camera(&env, "c");

    // The first seal goes through (so there is footage to play); every later one says it
    // started, then waits for a release (or for the sender to go).
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = Mutex::new((0u32, entered_tx, release_rx));
    env.state
        .store
        .db_for_tests()
        .set_seal_hook(Some(Arc::new(move || {
            let mut g = gate.lock().expect("gate");
            g.0 += 1;
            if g.0 > 1 {
                let _ = g.1.send(());
                let _ = g.2.recv();
            }
        })));
    let store = env.state.store.clone();
    let t0 = Time90k::parse_rfc3339("2026-11-29T10:00:00Z").expect("time");
    // 5 s of frames in 2 s segments: seals at the first key frames after 2 s and 4 s.
    let writer = std::thread::spawn(move || record(&store, cam, t0, 50));
    tokio::task::spawn_blocking(move || entered_rx.recv_timeout(HANG_DEADLINE))
        .await
        .expect("join")
        .expect("a seal started");

    for uri in [
        "/api/me".to_owned(),
        "/api/cameras".to_owned(),
        format!("/api/cameras/{cam}"),
        format!("/api/cameras/{cam}/recordings?{DAY}"),
        "/api/holds".to_owned(),
        format!("/api/cameras/{cam}/motion/settings"),
        format!("/api/cameras/{cam}/motion?{DAY}"),
        "/api/setup".to_owned(),
        // The first segment, sealed: its row and frame index are read for the MP4.
        format!("/api/cameras/{cam}/view.mp4?start=2026-11-29T10:00:00Z&end=2026-11-29T10:00:02Z"),
    ] {
        let r = tokio::time::timeout(HANG_DEADLINE, send(&env, get(&uri, Some(&l))))
            .await
            .unwrap_or_else(|_| panic!("{uri} waited behind the seal"));
        assert_eq!(r.status, StatusCode::OK, "{uri}: {:?}", r.json());
        if uri == "/api/cameras" {
            assert_eq!(r.json()[0]["name"], "c");
        }
    }
    // The answers came while the seal was still holding the writer.
    assert!(!writer.is_finished(), "the seal ended before the requests");

    drop(release_tx);
    writer.join().expect("writer");
    env.state.store.db_for_tests().set_seal_hook(None);
    assert_eq!(
        send(
            &env,
            get(&format!("/api/cameras/{cam}/recordings?{DAY}"), Some(&l))
        )
        .await
        .json()["runs"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the run is readable once the seal is let go"
    );
}
