//! `nvr check` of the motion index against the segments: every row names a segment of its
//! camera and lies within it, its entries decode and stay inside the row, its stored summary
//! (cells, peak) matches the entries, and rows of one segment do not overlap.

use std::collections::HashMap;

use nvr_core::SegmentId;

use super::format::decode;
use super::write::summary;
use super::{CellMask, second_of};
use crate::check::{CheckProblem, CheckReport};
use crate::db::{MotionRow, SegmentRow};
use crate::error::IndexContext;
use crate::error::Result;
use crate::store::Store;

/// How far a row may reach past its segment's wall times: the live analysis places pictures
/// by when they arrived, independently of the writer's estimate, and the two differ by network
/// jitter (far under this).
const EDGE_TOLERANCE_90K: i64 = 2 * super::TICKS_PER_SEC;

/// Checks every motion row against `segments` (looked up again when a row names one that is
/// not among them: the server may have started it since they were read).
pub(crate) fn check_motion(
    store: &Store,
    segments: &[SegmentRow],
    report: &mut CheckReport,
) -> Result<()> {
    let mut by_id: HashMap<SegmentId, SegmentRow> =
        segments.iter().map(|s| (s.id, s.clone())).collect();
    let rows = store
        .db()
        .all_motion_rows()
        .context(|| "reading the motion index (motion)".to_owned())?;
    report.motion_rows = rows.len() as u64;
    let mut last_end: HashMap<SegmentId, (i64, i64)> = HashMap::new();
    for row in &rows {
        if !by_id.contains_key(&row.segment_id)
            && let Some(s) = store
                .db()
                .segment(row.segment_id)
                .context(|| format!("reading segment {} (segments)", row.segment_id))?
        {
            by_id.insert(s.id, s);
        }
        let problem = check_row(row, by_id.get(&row.segment_id)).or_else(|| {
            let prev = last_end.insert(row.segment_id, (row.id, row.end_90k));
            match prev {
                Some((id, end)) if row.start_90k < end - EDGE_TOLERANCE_90K => Some(format!(
                    "motion row {} overlaps motion row {id} of the same segment",
                    row.id
                )),
                _ => None,
            }
        });
        if let Some(message) = problem {
            report.problems.push(CheckProblem {
                camera: Some(row.camera_id),
                segment: Some(row.segment_id),
                message,
            });
        }
    }
    Ok(())
}

/// The first thing wrong with one row, given its segment.
fn check_row(row: &MotionRow, segment: Option<&SegmentRow>) -> Option<String> {
    let id = row.id;
    let Some(seg) = segment else {
        return Some(format!(
            "motion row {id} names a segment that is not in the index"
        ));
    };
    if seg.camera_id != row.camera_id {
        return Some(format!(
            "motion row {id} is of camera {} but its segment is of camera {}",
            row.camera_id, seg.camera_id
        ));
    }
    if row.end_90k <= row.start_90k || row.frames < 0 || row.skipped < 0 {
        return Some(format!(
            "motion row {id} has an empty range or negative counts"
        ));
    }
    let seg_end = if seg.sealed { seg.end_90k } else { i64::MAX };
    if row.start_90k < seg.start_90k - EDGE_TOLERANCE_90K
        || row.end_90k > seg_end.saturating_add(EDGE_TOLERANCE_90K)
    {
        return Some(format!(
            "motion row {id} covers {}..{}, outside its segment's {}..{}",
            row.start_90k, row.end_90k, seg.start_90k, seg.end_90k
        ));
    }
    let entries = match decode(&row.entries, second_of(row.start_90k)) {
        Ok(e) => e,
        Err(e) => return Some(format!("motion row {id}: {e}")),
    };
    let (first, last) = (second_of(row.start_90k), second_of(row.end_90k - 1));
    if let Some(e) = entries.iter().find(|e| e.second < first || e.second > last) {
        return Some(format!(
            "motion row {id} has an entry at second {} outside its range",
            e.second
        ));
    }
    if row.cells_malformed {
        return Some(format!("motion row {id}: its cell summary is not 32 bytes"));
    }
    let (cells, peak, changes) = summary(&entries);
    if cells != row.cells || i64::from(peak) != row.peak || i64::from(changes) != row.scene_changes
    {
        return Some(format!(
            "motion row {id}: its summary ({} cells, peak {}, {} scene changes) differs from its \
             entries ({} cells, peak {peak}, {changes} scene changes)",
            row.cells.as_ref().map_or(0, CellMask::count),
            row.peak,
            row.scene_changes,
            cells.as_ref().map_or(0, CellMask::count),
        ));
    }
    None
}
