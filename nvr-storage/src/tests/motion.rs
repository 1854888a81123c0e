//! The motion index on a real data directory: live spans land in the segments they cover and
//! continue their rows, searches by region, scene changes and coverage, reindexing replaces
//! rows, retention and camera deletion take the rows with their segments, and `nvr check`
//! names rows that do not fit their segments.

use nvr_core::{Clock, SegmentId};

use super::*;
use crate::motion::{
    CellMask, MotionQuery, MotionSecond, MotionSpan, ReindexedSegment, TICKS_PER_SEC, search,
};

/// Records `secs` seconds at 10 fps in segments of `segment_secs`, then seals them.
fn record(e: &Env, secs: i64, segment_secs: i64) -> Vec<crate::db::SegmentRow> {
    let mut w = writer(e, segment_secs);
    let p = params(1280);
    for n in 0..secs * FPS {
        w.write(&p, &frame(n)).expect("write");
        e.clock.advance(Duration90k(FRAME_90K));
    }
    w.end_run().expect("end");
    e.store.db().all_segments().expect("rows")
}

fn cells(r: usize, c: usize) -> CellMask {
    let mut m = CellMask::EMPTY;
    m.set(r, c);
    m
}

fn motion(second: i64, r: usize, c: usize, score: u8) -> MotionSecond {
    MotionSecond {
        second,
        cells: cells(r, c),
        score,
    }
}

fn base_second() -> i64 {
    T0 / TICKS_PER_SEC
}

/// A span of whole seconds `[from, to)` after the recording's start, with `seconds`.
fn span(from: i64, to: i64, seconds: Vec<MotionSecond>) -> MotionSpan {
    MotionSpan {
        start_90k: T0 + from * TICKS_PER_SEC,
        end_90k: T0 + to * TICKS_PER_SEC,
        frames: ((to - from) * 5) as u32,
        skipped: 0,
        seconds,
    }
}

fn query(e: &Env, region: Option<CellMask>) -> crate::motion::MotionResult {
    search(
        &e.store,
        &MotionQuery {
            camera: e.camera,
            start: Time90k(T0),
            end: Time90k(T0 + 60 * TICKS_PER_SEC),
            region,
            buckets: 60,
        },
    )
    .expect("search")
}

#[test]
fn live_spans_fill_segments_and_searches_find_them_by_region() {
    let e = env();
    let segments = record(&e, 30, 10);
    assert!(segments.len() >= 3, "{segments:#?}");
    let b = base_second();
    // Motion at seconds 4-6 top left, 9-12 (across a segment boundary) bottom right, a scene
    // change at 20; flushed every 5 s as the live analysis does.
    let all = [
        motion(b + 4, 0, 0, 10),
        motion(b + 5, 0, 1, 20),
        motion(b + 6, 1, 1, 30),
        motion(b + 9, 15, 15, 40),
        motion(b + 10, 15, 14, 50),
        motion(b + 12, 14, 14, 60),
        MotionSecond {
            second: b + 20,
            cells: CellMask::EMPTY,
            score: 0,
        },
    ];
    for from in (0..30).step_by(5) {
        let part: Vec<_> = all
            .iter()
            .filter(|s| s.second >= b + from && s.second < b + from + 5)
            .copied()
            .collect();
        let stored = e
            .store
            .db()
            .append_motion(&[(e.camera, span(from, from + 5, part))])
            .expect("append");
        assert_eq!(stored, vec![true]);
    }
    // One row per segment: continuous spans extend the segment's row.
    let rows = e.store.db().all_motion_rows().expect("rows");
    let mut per_segment: Vec<SegmentId> = rows.iter().map(|r| r.segment_id).collect();
    per_segment.dedup();
    assert_eq!(per_segment.len(), rows.len(), "{rows:#?}");
    assert_eq!(rows.iter().map(|r| r.frames).sum::<i64>(), 150);

    let r = query(&e, None);
    let secs = |i: &crate::motion::MotionInterval| {
        (
            (i.start.0 - T0) / TICKS_PER_SEC,
            (i.end.0 - T0) / TICKS_PER_SEC,
            i.peak,
        )
    };
    assert_eq!(
        r.intervals.iter().map(secs).collect::<Vec<_>>(),
        vec![(4, 7, 30), (9, 13, 60)],
        "a 1 s gap (11) is merged"
    );
    assert_eq!(r.scene_changes, vec![Time90k(T0 + 20 * TICKS_PER_SEC)]);
    assert_eq!(r.buckets[5], 20);
    assert_eq!(r.buckets[20], 0, "a scene change is not motion");
    assert_eq!(r.not_indexed, vec![], "every recorded second was analysed");

    let top_left = CellMask::from_region(0.0, 0.0, 0.2, 0.2).expect("region");
    let r = query(&e, Some(top_left));
    assert_eq!(
        r.intervals.iter().map(secs).collect::<Vec<_>>(),
        vec![(4, 7, 30)]
    );
    let middle = CellMask::from_region(0.3, 0.3, 0.7, 0.7).expect("region");
    let r = query(&e, Some(middle));
    assert_eq!(r.intervals, vec![]);
    assert!(
        r.rows_decoded < r.rows_read,
        "rows without motion there are skipped"
    );
    assert_eq!(
        r.scene_changes.len(),
        1,
        "scene changes concern the whole picture"
    );
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn spans_without_recording_are_not_stored_and_gaps_are_reported() {
    let e = env();
    record(&e, 30, 10);
    let stored = e
        .store
        .db()
        .append_motion(&[(
            e.camera,
            MotionSpan {
                start_90k: T0 + 3600 * TICKS_PER_SEC,
                end_90k: T0 + 3601 * TICKS_PER_SEC,
                ..MotionSpan::default()
            },
        )])
        .expect("append");
    assert_eq!(stored, vec![false]);
    e.store
        .db()
        .append_motion(&[(e.camera, span(0, 10, vec![]))])
        .expect("append");
    let r = query(&e, None);
    let gaps: Vec<(i64, i64)> = r
        .not_indexed
        .iter()
        .map(|(s, en)| ((s.0 - T0) / TICKS_PER_SEC, (en.0 - T0) / TICKS_PER_SEC))
        .collect();
    assert_eq!(gaps, vec![(10, 30)]);
}

#[test]
fn reindexing_replaces_rows_and_retention_deletes_them_with_their_segments() {
    let e = env();
    let segments = record(&e, 30, 10);
    e.store
        .db()
        .append_motion(&[(
            e.camera,
            span(0, 30, vec![motion(base_second() + 2, 3, 3, 9)]),
        )])
        .expect("append");
    let first = &segments[0];
    let reindexed = ReindexedSegment {
        segment: first.id,
        span: MotionSpan {
            start_90k: first.start_90k,
            end_90k: first.end_90k,
            frames: 50,
            skipped: 0,
            seconds: vec![motion(base_second() + 3, 4, 4, 7)],
        },
    };
    let other = ReindexedSegment {
        segment: SegmentId(9999),
        span: reindexed.span.clone(),
    };
    let written = e
        .store
        .db()
        .replace_motion(e.camera, &[reindexed, other], Some(&note()))
        .expect("replace");
    assert_eq!(written, 1, "a segment that does not exist is left out");
    let rows = e
        .store
        .db()
        .motion_rows(e.camera, first.start_90k, first.end_90k)
        .expect("rows");
    let firsts: Vec<_> = rows.iter().filter(|r| r.segment_id == first.id).collect();
    assert_eq!(firsts.len(), 1);
    assert_eq!(firsts[0].frames, 50);
    assert_eq!(check(&e.store).expect("check").problems, vec![]);

    let before = e.store.db().all_motion_rows().expect("rows").len();
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
    assert!(!out.deleted.is_empty());
    let left = e.store.db().all_motion_rows().expect("rows");
    assert!(left.len() < before);
    for r in &left {
        assert!(
            !out.deleted.contains(&r.segment_id),
            "row {r:?} outlived its segment"
        );
    }
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn check_names_rows_that_do_not_fit_their_segments() {
    let e = env();
    let segments = record(&e, 20, 10);
    e.store
        .db()
        .append_motion(&[(
            e.camera,
            span(0, 20, vec![motion(base_second() + 2, 3, 3, 9)]),
        )])
        .expect("append");
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
    let rows = e.store.db().all_motion_rows().expect("rows");
    let row = rows[0].id;
    let with = |sql: String| -> Vec<String> {
        let conn = e.store.db().lock();
        conn.execute_batch("BEGIN").expect("begin");
        conn.execute(&sql, []).expect("tamper");
        drop(conn);
        let problems = check(&e.store).expect("check").problems;
        e.store
            .db()
            .lock()
            .execute_batch("ROLLBACK")
            .expect("rollback");
        problems.into_iter().map(|p| p.message).collect()
    };
    let p = with(format!(
        "UPDATE motion SET entries = x'0105' WHERE id = {row}"
    ));
    assert!(p.iter().any(|m| m.contains("motion row")), "{p:?}");
    let p = with(format!("UPDATE motion SET peak = 99 WHERE id = {row}"));
    assert!(p.iter().any(|m| m.contains("summary")), "{p:?}");
    let p = with(format!(
        "UPDATE motion SET start_90k = start_90k - 3600 * 90000 WHERE id = {row}"
    ));
    assert!(p.iter().any(|m| m.contains("outside its segment")), "{p:?}");
    let p = with(format!(
        "UPDATE motion SET segment_id = {} WHERE id = {row}",
        segments[1].id
    ));
    assert!(
        !p.is_empty(),
        "a row moved to another segment lies outside it"
    );
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn a_row_reaching_past_its_open_segment_is_clipped_when_it_is_sealed() {
    // Analysis reads the live fan-out, which goes on while the writer drops frames (a full
    // disk): its spans reach past the open segment's footage until the seal says where it ends.
    let e = env();
    let mut w = writer(&e, 60);
    let p = params(1280);
    for n in 0..4 * FPS {
        w.write(&p, &frame(n)).expect("write");
        e.clock.advance(Duration90k(FRAME_90K));
    }
    e.store
        .db()
        .append_motion(&[(
            e.camera,
            span(
                0,
                10,
                vec![
                    motion(base_second() + 1, 3, 3, 9),
                    motion(base_second() + 8, 4, 4, 20),
                ],
            ),
        )])
        .expect("append");
    w.end_run().expect("end");
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
    let rows = e.store.db().all_motion_rows().expect("rows");
    assert_eq!(rows.len(), 1);
    let seg = &e.store.db().all_segments().expect("segments")[0];
    assert_eq!(
        (rows[0].start_90k, rows[0].end_90k),
        (seg.start_90k, seg.end_90k)
    );
    // The second after the footage is gone: a search finds only the first.
    let r = query(&e, None);
    assert_eq!(r.intervals.len(), 1, "{:?}", r.intervals);
    assert!(r.intervals[0].end.0 <= seg.end_90k + TICKS_PER_SEC);
}

#[test]
fn deleting_a_camera_deletes_its_index_and_settings() {
    let e = env();
    record(&e, 10, 5);
    e.store
        .db()
        .append_motion(&[(
            e.camera,
            span(0, 10, vec![motion(base_second() + 1, 1, 1, 1)]),
        )])
        .expect("append");
    e.store
        .db()
        .set_motion_settings(
            &crate::db::MotionSettingsRow {
                camera_id: e.camera,
                enabled: true,
                sensitivity: 7,
                mask: Some(cells(2, 2)),
            },
            note(),
        )
        .expect("settings");
    assert_eq!(
        e.store
            .db()
            .motion_settings(e.camera)
            .expect("read")
            .map(|s| s.mask),
        Some(Some(cells(2, 2)))
    );
    e.store
        .db()
        .delete_camera(e.camera, |_| note())
        .expect("delete");
    assert_eq!(e.store.db().all_motion_rows().expect("rows"), vec![]);
    assert_eq!(
        e.store.db().all_motion_settings().expect("settings"),
        vec![]
    );
}
