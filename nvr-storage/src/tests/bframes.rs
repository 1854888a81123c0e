//! B-frames through the writer: frames written in decode order with presentation times going
//! back within each GOP keep those times in the segment records, get decode times and
//! composition offsets in the index (version 2), come out of view.mp4 with `ctts` presenting
//! each frame at its own time (sealed, open and recovered segments alike), and check clean.

use super::*;
use crate::frame_index;
use crate::frame_timing::presentation_offsets;

/// Presentation order within a GOP of 10 frames: I0 P3 B1 B2 P6 B4 B5 P9 B7 B8, as x264 sends
/// 2 B-frames with closed GOPs.
const PATTERN: [i64; 10] = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8];

/// The frame presented in slot `presented(n)`, decoded n-th.
fn presented(n: i64) -> i64 {
    n - n % 10 + PATTERN[(n % 10) as usize]
}

/// Frame `n` in decode order, stamped with its presentation time.
fn bframe(n: i64) -> VideoFrame {
    let mut f = frame(n);
    f.media_time_90k = presented(n) * FRAME_90K;
    f
}

/// The body of the first box named `name` in `head` (the MP4 before its video samples).
fn box_body<'a>(head: &'a [u8], name: &[u8; 4]) -> Option<&'a [u8]> {
    let at = head.windows(4).position(|w| w == name)?;
    let size = u32::from_be_bytes(head[at - 4..at].try_into().ok()?) as usize;
    head.get(at + 4..at - 4 + size)
}

fn u32_at(b: &[u8], at: usize) -> i64 {
    i64::from(u32::from_be_bytes(
        b[at..at + 4].try_into().expect("4 bytes"),
    ))
}

/// Run-length table (`stts`, `ctts`) expanded to one value per sample.
fn per_sample(body: &[u8]) -> Vec<i64> {
    let n = u32_at(body, 4) as usize;
    (0..n)
        .flat_map(|i| {
            let (count, value) = (u32_at(body, 8 + 8 * i), u32_at(body, 12 + 8 * i));
            std::iter::repeat_n(value, count as usize)
        })
        .collect()
}

/// Each sample's presentation time in a view of the whole recording: decode time (`stts`)
/// plus composition offset (`ctts`), minus where the edit list starts.
fn presentation_times(e: &Env) -> Vec<i64> {
    let (s, en) = whole_day();
    let v = view(&e.store, e.camera.main(), s, en).expect("view");
    let bytes = read_view(e, s, en).expect("read");
    let head = &bytes[..v.mp4.mdat_payload_range().start as usize];
    let durations = per_sample(box_body(head, b"stts").expect("stts"));
    let offsets = per_sample(box_body(head, b"ctts").expect("ctts: composition offsets"));
    assert_eq!(box_body(head, b"ctts").expect("ctts")[0], 0, "version 0");
    let elst = box_body(head, b"elst").expect("an edit list");
    let media_time = u32_at(elst, 12);
    assert_eq!(durations.len(), offsets.len());
    let mut decode = 0;
    durations
        .iter()
        .zip(&offsets)
        .map(|(d, o)| {
            let t = decode + o - media_time;
            decode += d;
            t
        })
        .collect()
}

#[test]
fn b_frames_are_indexed_served_and_checked_with_their_presentation_times() {
    let e = env();
    let mut w = writer(&e, 2);
    let p = params(1280);
    for n in 0..45 {
        assert_eq!(
            w.write(&p, &bframe(n)).expect("write"),
            WriteOutcome::Written
        );
    }
    // The open segment, readable before it is sealed: every frame at its own time.
    let before: Vec<i64> = presentation_times(&e);
    assert!(before.len() > 30, "{}", before.len());
    for (n, t) in before.iter().enumerate() {
        assert_eq!(
            *t,
            presented(n as i64) * FRAME_90K,
            "frame {n} of {before:?}"
        );
    }
    w.end_run().expect("end");

    let rows = e.store.db().all_segments().expect("rows");
    assert_eq!(rows.len(), 3, "2 s segments of 20 frames");
    for (row, first) in rows.iter().zip([0i64, 20, 40]) {
        let blob = e.store.db().frame_index(row.id).expect("index");
        assert_eq!(blob[0], 2, "version 2: composition offsets");
        let frames = frame_index::decode(&blob).expect("decode");
        // Whole GOPs present every slot once; the last segment ends mid-GOP (frames 40..44
        // present 40 41 42 43 46: the gap before 46 is a longer duration).
        if first < 40 {
            assert!(
                frames
                    .iter()
                    .all(|f| i64::from(f.duration_90k) == FRAME_90K)
            );
            assert_eq!(row.media_duration_90k, frames.len() as i64 * FRAME_90K);
        }
        let got = presentation_offsets(
            frames
                .iter()
                .map(|f| (f.duration_90k, f.composition_offset_90k)),
        );
        let want: Vec<i64> = (first..first + frames.len() as i64)
            .map(|n| (presented(n) - first) * FRAME_90K)
            .collect();
        assert_eq!(got, want, "segment from frame {first}");
    }
    assert_eq!(check(&e.store).expect("check").problems, vec![]);

    let times = presentation_times(&e);
    let want: Vec<i64> = (0..45).map(|n| presented(n) * FRAME_90K).collect();
    assert_eq!(times, want);

    // A second from the middle of a GOP: the edit list presents exactly its 10 frames.
    let first_wall = rows[0].start_90k;
    let from = Time90k(first_wall + 25 * FRAME_90K + FRAME_90K / 2);
    let v = view(
        &e.store,
        e.camera.main(),
        from,
        Time90k(from.0 + 10 * FRAME_90K),
    )
    .expect("view");
    assert_eq!(v.frames_presented, 10);
    assert!(v.mp4.frame_count() > 10, "decoding starts at the key frame");
}

#[test]
fn a_crash_mid_gop_recovers_b_frames_from_the_file() {
    let e = env();
    let mut w = writer(&e, 60);
    let p = params(1280);
    for n in 0..45 {
        w.write(&p, &bframe(n)).expect("write");
    }
    // kill -9: nothing is closed.
    std::mem::forget(w);
    let store = Store::open(e.store.dir(), Arc::new(e.clock.clone())).expect("reopen");
    let report = recover(&store).expect("recover");
    let kept = report.recovered[0].1 as i64;
    assert!(kept > 20 && kept < 45, "kept {kept}");
    let rows = store.db().all_segments().expect("rows");
    let frames =
        frame_index::decode(&store.db().frame_index(rows[0].id).expect("index")).expect("decode");
    let got = presentation_offsets(
        frames
            .iter()
            .map(|f| (f.duration_90k, f.composition_offset_90k)),
    );
    let want: Vec<i64> = (0..kept).map(|n| presented(n) * FRAME_90K).collect();
    assert_eq!(got, want);
    assert_eq!(check(&store).expect("check").problems, vec![]);
}

#[test]
fn the_open_segments_etag_names_its_b_frames_timing() {
    let e = env();
    let mut w = writer(&e, 60);
    let p = params(1280);
    for n in 0..45 {
        w.write(&p, &bframe(n)).expect("write");
    }
    let (s, en) = whole_day();
    let etag = || {
        let v = view(&e.store, e.camera.main(), s, en).expect("view");
        (v.mp4.etag().to_owned(), v.mp4.frame_count())
    };
    let (before, count) = etag();
    // The same readable frames over the same span, one decode time moved (its presentation
    // time kept), as a later frame sorting in before it does: another MP4, another ETag.
    {
        let open = e.store.open_segment(e.camera.main()).expect("open");
        let mut v = open.write().expect("lock");
        let n = v.readable_frames().len();
        v.frames[n - 3].duration_90k += 1;
        v.frames[n - 2].duration_90k -= 1;
        v.frames[n - 2].composition_offset_90k -= 1;
    }
    let (after, same_count) = etag();
    assert_eq!(count, same_count);
    assert_ne!(before, after);
    drop(w);
}
