//! Dropping a `Transcoder` mid-stream neither hangs nor leaks threads. Its own test binary
//! (one test, so one process) so the thread count is not disturbed by other tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{clip, pts, within};
use nvr_core::VideoCodec;
use nvr_media::{TranscodeOptions, Transcoder};

/// Threads of this process, from `/proc/self/task`.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Creates a transcoder, feeds it and drops it without finishing. `iteration` varies the
/// state at drop time: right after creation, mid-decode, and with the streaming thread blocked
/// on a full output queue (nobody pulls).
fn create_push_drop(iteration: usize) {
    let clip = clip(VideoCodec::H265);
    let opts = TranscodeOptions {
        max_width: 160,
        max_height: 120,
        bitrate_kbps: 200,
    };
    let t = Transcoder::new(&clip.params, &opts).unwrap();
    let frames = match iteration % 3 {
        0 => 0,
        1 => 4,
        _ => clip.frames.len(),
    };
    for i in 0..frames {
        // Drops are expected when pushing a whole clip without pulling.
        let _ = t.push(clip.frames[i].clone(), pts(0, i), clip.keys[i]);
    }
    if iteration % 3 == 1 {
        let _ = t.pull(Duration::from_millis(50)).unwrap();
    }
    if iteration % 3 == 2 {
        // Give the pipeline time to fill the output queue and block.
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(t);
}

#[test]
fn dropping_mid_stream_does_not_hang_or_leak_threads() {
    let _ = clip(VideoCodec::H265); // encode the input before counting threads
    // Warm up: GStreamer's thread pool and plugin loading keep a few threads for reuse.
    for i in 0..3 {
        within(30, "warm-up create/push/drop", move || create_push_drop(i));
    }
    let baseline = thread_count();
    for i in 0..20 {
        within(30, "create/push/drop", move || create_push_drop(i));
    }
    // Each transcoder runs at least one streaming thread plus decoder and encoder workers, so a
    // leak shows up as 20+ threads; allow a few idle pool threads that may still be exiting.
    const SLACK: usize = 4;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = thread_count();
        if now <= baseline + SLACK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{now} threads after 20 transcoders, {baseline} before"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
