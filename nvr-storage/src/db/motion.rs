//! Queries of the `motion` and `motion_settings` tables: appending what the live analysis
//! found to the rows of the segments it falls in, replacing a segment's rows after a reindex,
//! reading rows for searches and checks, and each camera's analysis settings.

use rusqlite::{OptionalExtension, Transaction, named_params};

use super::segments::MAX_SEGMENT_SPAN_90K;
use super::{AuditNote, Database, audit};
use crate::error::{Result, StorageError};
use crate::motion::write::{merge_seconds, summary};
use crate::motion::{CellMask, MotionSpan, ReindexedSegment, format, second_of};
use nvr_core::{CameraId, SegmentId};

/// Segments of a camera's main stream a span may fall in: the open one (its end is not known
/// yet) and sealed ones overlapping `[start, end)`. The index belongs to the main stream's
/// footage (what is kept, held and exported), whichever stream was analysed.
const SELECT_SPAN_SEGMENTS: &str = "
    SELECT id, start_90k, CASE WHEN state = 0 THEN NULL ELSE end_90k END FROM segments
    WHERE camera_id = :camera_id AND stream = 0 AND start_90k < :end_90k AND start_90k > :min_start
      AND (state = 0 OR end_90k > :start_90k)
    ORDER BY start_90k, id";
const SELECT_LAST_SEGMENT_ROW: &str = "
    SELECT id, start_90k, end_90k, entries FROM motion
    WHERE segment_id = :segment_id ORDER BY end_90k DESC LIMIT 1";
const INSERT_MOTION: &str = "
    INSERT INTO motion (camera_id, segment_id, start_90k, end_90k, frames, skipped, cells, peak,
                        scene_changes, entries)
    VALUES (:camera_id, :segment_id, :start_90k, :end_90k, :frames, :skipped, :cells, :peak,
            :scene_changes, :entries)";
const EXTEND_MOTION: &str = "
    UPDATE motion
    SET end_90k = MAX(end_90k, :end_90k), frames = frames + :frames, skipped = skipped + :skipped,
        cells = :cells, peak = :peak, scene_changes = :scene_changes, entries = :entries
    WHERE id = :id";
const DELETE_SEGMENT_MOTION: &str = "DELETE FROM motion WHERE segment_id = :segment_id";
const SELECT_ROWS_OUTSIDE: &str = "
    SELECT id, camera_id, start_90k, end_90k, entries FROM motion
    WHERE segment_id = :segment_id AND (start_90k < :start_90k OR end_90k > :end_90k)";
const DELETE_MOTION_ROW: &str = "DELETE FROM motion WHERE id = :id";
const CLIP_MOTION_ROW: &str = "
    UPDATE motion
    SET start_90k = :start_90k, end_90k = :end_90k, cells = :cells, peak = :peak,
        scene_changes = :scene_changes, entries = :entries
    WHERE id = :id";
const SELECT_SEGMENT_OF_CAMERA: &str =
    "SELECT 1 FROM segments WHERE id = :segment_id AND camera_id = :camera_id AND stream = 0";
/// Rows of a camera overlapping `[start, end)`; the start bound lets SQLite use the
/// (camera_id, start_90k) index, since a row lies within one segment.
const SELECT_ROWS_OVERLAPPING: &str = "
    SELECT id, segment_id, start_90k, end_90k, frames, skipped, cells, peak, entries,
           scene_changes
    FROM motion
    WHERE camera_id = :camera_id AND start_90k < :end_90k AND start_90k > :min_start
      AND end_90k > :start_90k
    ORDER BY start_90k, id";
const SELECT_ALL_ROWS: &str = "
    SELECT m.id, m.segment_id, m.start_90k, m.end_90k, m.frames, m.skipped, m.cells, m.peak,
           m.entries, m.scene_changes, m.camera_id
    FROM motion m ORDER BY m.camera_id, m.start_90k, m.id";
const SELECT_SETTINGS: &str = "SELECT camera_id, enabled, sensitivity, mask FROM motion_settings WHERE camera_id = :camera_id";
const SELECT_ALL_SETTINGS: &str =
    "SELECT camera_id, enabled, sensitivity, mask FROM motion_settings ORDER BY camera_id";
const UPSERT_SETTINGS: &str = "
    INSERT INTO motion_settings (camera_id, enabled, sensitivity, mask)
    VALUES (:camera_id, :enabled, :sensitivity, :mask)
    ON CONFLICT (camera_id) DO UPDATE
    SET enabled = excluded.enabled, sensitivity = excluded.sensitivity, mask = excluded.mask";

/// How far apart the end of a segment's last row and the start of a new span may be for the
/// span to continue that row: spans the analysis marks as continuous start exactly where the
/// previous ended, so this only absorbs rounding.
const JOIN_TOLERANCE_90K: i64 = 90_000 / 10;
/// How far a span may start before its first segment and still be all of it: the writer and
/// the analysis place frames in wall time apart by jitter.
const START_JITTER_90K: i64 = 90_000;

/// One row of the motion index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MotionRow {
    pub id: i64,
    pub camera_id: CameraId,
    pub segment_id: SegmentId,
    pub start_90k: i64,
    pub end_90k: i64,
    pub frames: i64,
    pub skipped: i64,
    /// The stored union of the entries' cells (`None`: no motion, or not 32 bytes).
    pub cells: Option<CellMask>,
    /// The stored `cells` column had a value that is not a 32-byte mask.
    pub cells_malformed: bool,
    pub peak: i64,
    pub scene_changes: i64,
    pub entries: Vec<u8>,
}

/// A camera's analysis settings as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MotionSettingsRow {
    pub camera_id: CameraId,
    pub enabled: bool,
    pub sensitivity: u8,
    pub mask: Option<CellMask>,
}

fn row_from(r: &rusqlite::Row<'_>, camera: CameraId) -> rusqlite::Result<MotionRow> {
    let cells: Option<Vec<u8>> = r.get(6)?;
    let parsed = cells.as_deref().map(CellMask::from_bytes);
    Ok(MotionRow {
        id: r.get(0)?,
        camera_id: camera,
        segment_id: SegmentId(r.get(1)?),
        start_90k: r.get(2)?,
        end_90k: r.get(3)?,
        frames: r.get(4)?,
        skipped: r.get(5)?,
        cells: parsed.flatten(),
        cells_malformed: matches!(parsed, Some(None)),
        peak: r.get(7)?,
        entries: r.get(8)?,
        scene_changes: r.get(9)?,
    })
}

fn settings_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<MotionSettingsRow> {
    let mask: Option<Vec<u8>> = r.get(3)?;
    Ok(MotionSettingsRow {
        camera_id: CameraId(r.get(0)?),
        enabled: r.get::<_, i64>(1)? != 0,
        sensitivity: u8::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
        mask: mask.as_deref().and_then(CellMask::from_bytes),
    })
}

fn corrupt(camera: CameraId, segment: SegmentId, e: format::FormatError) -> StorageError {
    StorageError::Corrupt {
        camera,
        segment,
        detail: format!("motion index: {e}"),
    }
}

/// Inserts a new row for `span` in `segment`.
fn insert_row(
    tx: &Transaction<'_>,
    camera: CameraId,
    segment: SegmentId,
    span: &MotionSpan,
) -> Result<()> {
    let (cells, peak, scene_changes) = summary(&span.seconds);
    let entries = format::encode(second_of(span.start_90k), &span.seconds);
    tx.prepare_cached(INSERT_MOTION)?.execute(named_params! {
        ":camera_id": camera.0,
        ":segment_id": segment.0,
        ":start_90k": span.start_90k,
        ":end_90k": span.end_90k,
        ":frames": span.frames,
        ":skipped": span.skipped,
        ":cells": cells.map(|c| c.to_bytes().to_vec()),
        ":peak": peak,
        ":scene_changes": scene_changes,
        ":entries": entries,
    })?;
    Ok(())
}

/// Adds `span` to `segment`: to its last row when the span continues it, else as a new row.
fn append_to_segment(
    tx: &Transaction<'_>,
    camera: CameraId,
    segment: SegmentId,
    span: &MotionSpan,
) -> Result<()> {
    let last: Option<(i64, i64, i64, Vec<u8>)> = tx
        .prepare_cached(SELECT_LAST_SEGMENT_ROW)?
        .query_row(named_params! {":segment_id": segment.0}, |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((id, start, end, blob)) = last else {
        return insert_row(tx, camera, segment, span);
    };
    if (span.start_90k - end).abs() > JOIN_TOLERANCE_90K || span.start_90k < start {
        return insert_row(tx, camera, segment, span);
    }
    let base = second_of(start);
    let old = format::decode(&blob, base).map_err(|e| corrupt(camera, segment, e))?;
    // Seconds before the row's base cannot be stored in it (they would be negative gaps).
    let new: Vec<_> = span
        .seconds
        .iter()
        .filter(|s| s.second >= base)
        .copied()
        .collect();
    let merged = merge_seconds(&old, &new);
    let (cells, peak, scene_changes) = summary(&merged);
    tx.prepare_cached(EXTEND_MOTION)?.execute(named_params! {
        ":id": id,
        ":end_90k": span.end_90k,
        ":frames": span.frames,
        ":skipped": span.skipped,
        ":cells": cells.map(|c| c.to_bytes().to_vec()),
        ":peak": peak,
        ":scene_changes": scene_changes,
        ":entries": format::encode(base, &merged),
    })?;
    Ok(())
}

/// Clips the motion rows of `segment` to its footage, `[start_90k, end_90k)`, when it is sealed:
/// analysis reads the live fan-out, which goes on while the writer drops frames (a full disk)
/// or before a run's first segment exists, so a row of an open segment can reach past where
/// its footage ends. Seconds outside go (the frame counts stay: they say what was analysed).
pub(super) fn clip_segment_motion(
    tx: &Transaction<'_>,
    segment: SegmentId,
    start_90k: i64,
    end_90k: i64,
) -> Result<()> {
    let rows: Vec<(i64, i64, i64, i64, Vec<u8>)> = tx
        .prepare_cached(SELECT_ROWS_OUTSIDE)?
        .query_map(
            named_params! {":segment_id": segment.0, ":start_90k": start_90k, ":end_90k": end_90k},
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for (id, camera, row_start, row_end, blob) in rows {
        let (start, end) = (row_start.max(start_90k), row_end.min(end_90k));
        if end <= start {
            tx.prepare_cached(DELETE_MOTION_ROW)?
                .execute(named_params! {":id": id})?;
            continue;
        }
        let entries = format::decode(&blob, second_of(row_start))
            .map_err(|e| corrupt(CameraId(camera), segment, e))?;
        let (first, last) = (second_of(start), second_of(end - 1));
        let kept: Vec<_> = entries
            .into_iter()
            .filter(|e| (first..=last).contains(&e.second))
            .collect();
        let (cells, peak, scene_changes) = summary(&kept);
        tx.prepare_cached(CLIP_MOTION_ROW)?.execute(named_params! {
            ":id": id,
            ":start_90k": start,
            ":end_90k": end,
            ":cells": cells.map(|c| c.to_bytes().to_vec()),
            ":peak": peak,
            ":scene_changes": scene_changes,
            ":entries": format::encode(first, &kept),
        })?;
    }
    Ok(())
}

/// Splits `span` at the starts of `segments` (by start time, the first possibly starting after
/// the span does; each with its end when sealed): each piece goes to the segment it lies in
/// and ends where that segment's footage ends. What lies outside the footage is dropped: before
/// the first segment's start (beyond the jitter of the two time estimates; analysis may run
/// ahead of the writer, e.g. while a full disk drops frames), after a sealed segment's end,
/// and between segments. A second goes to the piece holding its start (the first piece also
/// takes the second holding its start).
fn split_span(
    span: &MotionSpan,
    segments: &[(SegmentId, i64, Option<i64>)],
) -> Vec<(SegmentId, MotionSpan)> {
    let duration = (span.end_90k - span.start_90k).max(1);
    let mut out = Vec::with_capacity(segments.len());
    let mut frames_left = span.frames;
    let mut skipped_left = span.skipped;
    for (i, &(id, seg_start, seg_end)) in segments.iter().enumerate() {
        let first = i == 0;
        let start = if first && seg_start - span.start_90k <= START_JITTER_90K {
            span.start_90k
        } else {
            seg_start.max(span.start_90k)
        };
        let mut end = segments
            .get(i + 1)
            .map_or(span.end_90k, |&(_, next, _)| next.min(span.end_90k));
        if let Some(seg_end) = seg_end {
            end = end.min(seg_end);
        }
        if end <= start {
            continue;
        }
        let last = i + 1 == segments.len();
        let share = |n: u32| -> u32 {
            let v = i128::from(n) * i128::from(end - start) / i128::from(duration);
            u32::try_from(v).unwrap_or(n)
        };
        let (frames, skipped) = if last {
            (frames_left, skipped_left)
        } else {
            (share(span.frames), share(span.skipped))
        };
        frames_left = frames_left.saturating_sub(frames);
        skipped_left = skipped_left.saturating_sub(skipped);
        let open_tail = last && seg_end.is_none();
        let seconds = span
            .seconds
            .iter()
            .filter(|s| {
                let t = (s.second * crate::motion::TICKS_PER_SEC).max(span.start_90k);
                let after_start = if first {
                    s.second >= second_of(start)
                } else {
                    t >= start
                };
                after_start && (open_tail || t < end)
            })
            .copied()
            .collect();
        out.push((
            id,
            MotionSpan {
                start_90k: start,
                end_90k: end,
                frames,
                skipped,
                seconds,
            },
        ));
    }
    out
}

impl Database {
    /// Adds spans the live analysis found (of any cameras) to the rows of the segments they
    /// fall in, all in one transaction (one commit for every camera's latest seconds). Returns,
    /// for each span, whether it was stored: a span no segment of its camera covers (footage
    /// not recorded, or deleted meanwhile) is not.
    pub fn append_motion(&self, spans: &[(CameraId, MotionSpan)]) -> Result<Vec<bool>> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut stored = Vec::with_capacity(spans.len());
        for (camera, span) in spans {
            if span.end_90k <= span.start_90k {
                stored.push(false);
                continue;
            }
            let segments: Vec<(SegmentId, i64, Option<i64>)> = tx
                .prepare_cached(SELECT_SPAN_SEGMENTS)?
                .query_map(
                    named_params! {
                        ":camera_id": camera.0,
                        ":start_90k": span.start_90k,
                        ":end_90k": span.end_90k,
                        ":min_start": span.start_90k.saturating_sub(MAX_SEGMENT_SPAN_90K),
                    },
                    |r| Ok((SegmentId(r.get(0)?), r.get(1)?, r.get(2)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            for (segment, piece) in split_span(span, &segments) {
                append_to_segment(&tx, *camera, segment, &piece)?;
            }
            stored.push(!segments.is_empty());
        }
        tx.commit()?;
        Ok(stored)
    }

    /// Replaces the rows of each segment with what a reindex found, in one transaction with
    /// `note` (the reindex's audit entry, with its first batch). Segments that are gone, or
    /// belong to another camera, are left out; returns how many were written.
    pub fn replace_motion(
        &self,
        camera: CameraId,
        segments: &[ReindexedSegment],
        note: Option<&AuditNote>,
    ) -> Result<usize> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut written = 0;
        for s in segments {
            let exists = tx
                .prepare_cached(SELECT_SEGMENT_OF_CAMERA)?
                .query_row(
                    named_params! {":segment_id": s.segment.0, ":camera_id": camera.0},
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !exists {
                continue;
            }
            tx.prepare_cached(DELETE_SEGMENT_MOTION)?
                .execute(named_params! {":segment_id": s.segment.0})?;
            insert_row(&tx, camera, s.segment, &s.span)?;
            written += 1;
        }
        if let Some(note) = note {
            audit::append_in(&tx, note)?;
        }
        tx.commit()?;
        Ok(written)
    }

    /// Calls `f` with every row of `camera` overlapping `[start, end)`, by start time, and the
    /// row's entries blob, without copying it. Stops at the first error `f` returns.
    pub fn for_each_motion_row(
        &self,
        camera: CameraId,
        start_90k: i64,
        end_90k: i64,
        mut f: impl FnMut(MotionRowRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(SELECT_ROWS_OVERLAPPING)?;
        let mut rows = stmt.query(named_params! {
            ":camera_id": camera.0,
            ":start_90k": start_90k,
            ":end_90k": end_90k,
            ":min_start": start_90k.saturating_sub(MAX_SEGMENT_SPAN_90K),
        })?;
        while let Some(r) = rows.next()? {
            let cells = match r.get_ref(6)? {
                rusqlite::types::ValueRef::Blob(b) => CellMask::from_bytes(b),
                _ => None,
            };
            let entries = match r.get_ref(8)? {
                rusqlite::types::ValueRef::Blob(b) => b,
                _ => &[],
            };
            f(MotionRowRef {
                segment_id: SegmentId(r.get(1)?),
                start_90k: r.get(2)?,
                end_90k: r.get(3)?,
                cells,
                scene_changes: r.get(9)?,
                entries,
            })?;
        }
        Ok(())
    }

    /// Rows of `camera` overlapping `[start, end)`, by start time, with their entries.
    #[cfg(test)]
    pub fn motion_rows(
        &self,
        camera: CameraId,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<MotionRow>> {
        let conn = self.read();
        let rows = conn
            .prepare_cached(SELECT_ROWS_OVERLAPPING)?
            .query_map(
                named_params! {
                    ":camera_id": camera.0,
                    ":start_90k": start_90k,
                    ":end_90k": end_90k,
                    ":min_start": start_90k.saturating_sub(MAX_SEGMENT_SPAN_90K),
                },
                |r| row_from(r, camera),
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Every row of the index, by camera and start (for `nvr check`).
    pub fn all_motion_rows(&self) -> Result<Vec<MotionRow>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_ALL_ROWS)?
            .query_map([], |r| row_from(r, CameraId(r.get(10)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The stored analysis settings of `camera`, if any.
    pub fn motion_settings(&self, camera: CameraId) -> Result<Option<MotionSettingsRow>> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(SELECT_SETTINGS)?
            .query_row(named_params! {":camera_id": camera.0}, settings_from)
            .optional()?)
    }

    /// The stored analysis settings of every camera that has some.
    pub fn all_motion_settings(&self) -> Result<Vec<MotionSettingsRow>> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(SELECT_ALL_SETTINGS)?
            .query_map([], settings_from)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Stores a camera's analysis settings with the audit entry of the change.
    pub fn set_motion_settings(&self, s: &MotionSettingsRow, note: AuditNote) -> Result<()> {
        self.audited(|tx| {
            tx.prepare_cached(UPSERT_SETTINGS)?.execute(named_params! {
                ":camera_id": s.camera_id.0,
                ":enabled": s.enabled,
                ":sensitivity": s.sensitivity,
                ":mask": s.mask.map(|m| m.to_bytes().to_vec()),
            })?;
            Ok(((), note))
        })
    }
}

/// A row of the index as a search reads it: the entries blob is borrowed from SQLite.
#[derive(Clone, Copy, Debug)]
pub struct MotionRowRef<'a> {
    pub segment_id: SegmentId,
    pub start_90k: i64,
    pub end_90k: i64,
    pub cells: Option<CellMask>,
    pub scene_changes: i64,
    pub entries: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::MotionSecond;

    fn sec(second: i64) -> MotionSecond {
        let mut cells = CellMask::EMPTY;
        cells.set(1, 2);
        MotionSecond {
            second,
            cells,
            score: 3,
        }
    }

    #[test]
    fn spans_split_at_segment_starts() {
        let span = MotionSpan {
            start_90k: 10 * 90_000,
            end_90k: 30 * 90_000,
            frames: 100,
            skipped: 10,
            seconds: vec![sec(10), sec(19), sec(20), sec(29)],
        };
        // The first segment starts a little after the span (estimates differ by jitter).
        let segs = [
            (SegmentId(1), 10 * 90_000 + 500, Some(20 * 90_000)),
            (SegmentId(2), 20 * 90_000, None),
        ];
        let pieces = split_span(&span, &segs);
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            (pieces[0].1.start_90k, pieces[0].1.end_90k),
            (10 * 90_000, 20 * 90_000)
        );
        assert_eq!(pieces[0].1.seconds, vec![sec(10), sec(19)]);
        assert_eq!(pieces[1].1.seconds, vec![sec(20), sec(29)]);
        assert_eq!(pieces[0].1.frames + pieces[1].1.frames, 100);
        assert_eq!(pieces[0].1.skipped + pieces[1].1.skipped, 10);
        assert_eq!(pieces[0].1.frames, 50);
    }

    #[test]
    fn spans_keep_nothing_long_before_the_first_segment() {
        let span = MotionSpan {
            start_90k: 10 * 90_000,
            end_90k: 30 * 90_000,
            frames: 100,
            skipped: 0,
            seconds: vec![sec(10), sec(14), sec(15), sec(29)],
        };
        // Footage only from 15.5 s (the writer was dropping frames before).
        let pieces = split_span(&span, &[(SegmentId(1), 15 * 90_000 + 45_000, None)]);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].1.start_90k, 15 * 90_000 + 45_000);
        assert_eq!(pieces[0].1.seconds, vec![sec(15), sec(29)]);
    }

    #[test]
    fn spans_keep_nothing_after_a_sealed_segment_or_between_segments() {
        let span = MotionSpan {
            start_90k: 10 * 90_000,
            end_90k: 30 * 90_000,
            frames: 100,
            skipped: 0,
            seconds: vec![sec(10), sec(12), sec(14), sec(21), sec(25), sec(29)],
        };
        // Footage 10-12.5 s (sealed), then nothing until 21 s (a full disk), then open.
        let pieces = split_span(
            &span,
            &[
                (SegmentId(1), 10 * 90_000, Some(12 * 90_000 + 45_000)),
                (SegmentId(2), 21 * 90_000, None),
            ],
        );
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            (pieces[0].1.start_90k, pieces[0].1.end_90k),
            (10 * 90_000, 12 * 90_000 + 45_000)
        );
        assert_eq!(pieces[0].1.seconds, vec![sec(10), sec(12)]);
        assert_eq!(pieces[1].1.start_90k, 21 * 90_000);
        assert_eq!(pieces[1].1.seconds, vec![sec(21), sec(25), sec(29)]);
        // A span wholly after a sealed segment's end goes nowhere.
        let late = MotionSpan {
            start_90k: 13 * 90_000,
            ..span.clone()
        };
        assert!(split_span(&late, &[(SegmentId(1), 10 * 90_000, Some(12 * 90_000))]).is_empty());
    }
}
