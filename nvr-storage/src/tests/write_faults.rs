//! A chunk write that fails must never lead to a chunk sealed twice under one AES-GCM nonce
//! (which would decrypt it and put plaintext video on disk): every chunk position of a segment
//! is failed in turn, cleanly and after a partial write, the writer is driven on as the camera's
//! writer thread drives it, and every segment file is searched for the frames' plaintext.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use nvr_core::{Time90k, VideoFrame, VideoParams};

use super::{Env, FRAME_90K, T0, env, params, writer};
use crate::check::check;
use crate::db::SEGMENT_FLAG_RECOVERED;
use crate::segment::fault::{self, ChunkWriteFault};
use crate::segment::format::{
    CHUNK_CIPHERTEXT_LEN, CHUNK_PLAINTEXT_LEN, HEADER_LEN, RECORD_HEADER_LEN, encode_params,
};
use crate::writer::CameraWriter;

/// Frames of the test segment: 40 of 10 000 bytes is a little over six 64 KiB chunks.
const FRAMES: i64 = 40;
const FRAME_BYTES: usize = 10_000;
/// Bytes a plaintext fragment must have to count as found: one AES block, so any chunk (or
/// half chunk, or tag-sized piece) of video written unencrypted is found.
const WINDOW: usize = 16;

/// Frame `n`: a readable marker, then bytes from a generator seeded by `n`, so every 16-byte
/// window of every frame is distinct and cannot occur in ciphertext by chance.
fn distinctive_frame(n: i64) -> VideoFrame {
    let mut data = format!("PLAINTEXT VIDEO FRAME {n:04} ").into_bytes();
    // xorshift64*, seeded per frame (any odd constant keeps the seed nonzero).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ ((n as u64) << 1 | 1);
    while data.len() < FRAME_BYTES {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        data.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    data.truncate(FRAME_BYTES);
    VideoFrame {
        media_time_90k: n * FRAME_90K,
        received: Time90k(T0 + n * FRAME_90K),
        is_key: n % 10 == 0,
        data: Bytes::from(data),
    }
}

/// Every 16-byte window of every frame's payload.
fn plaintext_windows() -> HashSet<[u8; WINDOW]> {
    let mut set = HashSet::new();
    for n in 0..FRAMES {
        let f = distinctive_frame(n);
        for w in f.data.windows(WINDOW) {
            set.insert(<[u8; WINDOW]>::try_from(w).expect("window"));
        }
    }
    set
}

/// Every file of the camera's segment directory that holds a window of frame plaintext.
fn files_with_plaintext(e: &Env, windows: &HashSet<[u8; WINDOW]>) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(e.store.camera_dir(e.camera)) else {
        return found;
    };
    for entry in rd.flatten() {
        let bytes = std::fs::read(entry.path()).expect("read segment file");
        if let Some(at) = bytes
            .windows(WINDOW)
            .position(|w| windows.contains(&<[u8; WINDOW]>::try_from(w).expect("window")))
        {
            found.push(format!("{} at byte {at}", entry.path().display()));
        }
    }
    found
}

/// Writes every frame as the camera's writer thread does: a failed frame ends the run (which
/// closes, and if need be recovers, the segment) and recording goes on with the next frames.
/// Returns how many frames the failure ended the first run at, if a write failed.
fn record_like_the_writer_thread(w: &mut CameraWriter, p: &Arc<VideoParams>) -> Option<i64> {
    let mut failed_at = None;
    for n in 0..FRAMES {
        if w.write(p, &distinctive_frame(n)).is_err() {
            failed_at.get_or_insert(n);
            // The writer thread ends the run after a failed frame; its error is only logged.
            let _ = w.end_run();
        }
    }
    let _ = w.end_run();
    failed_at
}

/// Frames of the first segment whose records lie entirely in its first `chunks` chunks: what
/// recovery can keep when chunk `chunks` never reached the file intact.
fn frames_in_first_chunks(p: &VideoParams, chunks: u64) -> i64 {
    let authenticated = chunks * CHUNK_PLAINTEXT_LEN as u64;
    let mut end = (RECORD_HEADER_LEN + encode_params(p).len()) as u64;
    let mut kept = 0;
    for _ in 0..FRAMES {
        end += (RECORD_HEADER_LEN + FRAME_BYTES) as u64;
        if end > authenticated {
            break;
        }
        kept += 1;
    }
    kept
}

#[test]
fn a_failed_chunk_write_never_puts_plaintext_on_disk_nor_loses_data_silently() {
    let windows = plaintext_windows();
    let p = params(1280);

    // Without a fault: one segment of several chunks, no plaintext anywhere.
    let chunks = {
        let e = env();
        let mut w = writer(&e, 600);
        assert_eq!(record_like_the_writer_thread(&mut w, &p), None);
        drop(w);
        let rows = e.store.db().all_segments().expect("rows");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(files_with_plaintext(&e, &windows), Vec::<String>::new());
        (rows[0].file_bytes as u64 - HEADER_LEN as u64).div_ceil(CHUNK_CIPHERTEXT_LEN as u64)
    };
    assert!(chunks >= 6, "the segment spans {chunks} chunks");

    // Fail each chunk's write in turn: cleanly, and after half the chunk reached the file.
    for chunk in 0..chunks {
        for partial in [false, true] {
            let case = format!("chunk {chunk} of {chunks}, partial write: {partial}");
            let e = env();
            let mut w = writer(&e, 600);
            fault::inject(Some(ChunkWriteFault { chunk, partial }));
            let failed_at = record_like_the_writer_thread(&mut w, &p);
            drop(w);
            assert!(!fault::pending(), "{case}: the fault never fired");
            fault::inject(None);

            let leaks = files_with_plaintext(&e, &windows);
            assert_eq!(leaks, Vec::<String>::new(), "{case}: plaintext on disk");

            // The damaged segment was recovered at once to its last authenticated chunk (or
            // removed, if not even the parameters were authenticated): check finds nothing
            // missing, because no authenticated data was lost.
            let rows = e.store.db().all_segments().expect("rows");
            assert!(rows.iter().all(|r| r.sealed), "{case}: {rows:?}");
            let kept = frames_in_first_chunks(&p, chunk);
            let first = rows.first().expect("a segment");
            if chunk == 0 {
                assert_ne!(first.id.0, 1, "{case}: the empty segment stays: {rows:?}");
            } else {
                assert_eq!(first.id.0, 1, "{case}: {rows:?}");
                assert_eq!(first.frames, kept, "{case}: {first:?}");
                assert_ne!(first.flags & SEGMENT_FLAG_RECOVERED, 0, "{case}: {first:?}");
            }
            let report = check(&e.store).expect("check");
            assert_eq!(report.problems, vec![], "{case}");
            // Recording went on from the next key frame after the failed one (frames before a
            // key frame cannot be decoded and are skipped), in a new segment.
            let resumed = failed_at.map_or(0, |n| FRAMES - (n / 10 + 1) * 10);
            let total: i64 = rows.iter().map(|r| r.frames).sum();
            assert_eq!(total, kept + resumed, "{case}: {rows:?}");
        }
    }
}
