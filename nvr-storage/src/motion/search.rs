//! Searching the motion index: the moments of a camera with motion in a time range (in a
//! region of the picture when given), merged across short gaps, an intensity per bucket for
//! the timeline's strip, the scene changes, and what footage of the range is not indexed.
//!
//! Rows whose union of cells misses the region are skipped without decoding their entries;
//! rows of a still scene have no cells at all.

use nvr_core::{CameraId, Time90k};

use super::format::Decoder;
use super::{CellMask, TICKS_PER_SEC};
use crate::error::{Result, StorageError};
use crate::playback;
use crate::store::Store;

/// Seconds with motion closer than this are one interval: a person who stands still for a
/// moment is one event, not two.
pub const MERGE_GAP_SECS: i64 = 2;

/// The most buckets one search fills: wider than any screen's timeline.
pub const MAX_BUCKETS: usize = 4096;

/// Recorded stretches without an index shorter than this are not reported: analysis starts at
/// the first key frame it sees and spans meet segments to within a frame or two.
const MIN_NOT_INDEXED_90K: i64 = 5 * TICKS_PER_SEC;

/// The newest footage of a camera being recorded is indexed within a few seconds (the
/// analysis writes what it found every few seconds): so much of a recording run's end is not
/// reported as missing from the index.
const RECENT_GRACE_90K: i64 = 20 * TICKS_PER_SEC;

/// What to search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MotionQuery {
    pub camera: CameraId,
    pub start: Time90k,
    pub end: Time90k,
    /// Only motion in these cells counts; `None`: anywhere.
    pub region: Option<CellMask>,
    /// Split the range into this many equal buckets and report each one's highest score
    /// (0 = none); at most [`MAX_BUCKETS`].
    pub buckets: usize,
}

/// A stretch of time with motion: `[start, end)` on whole seconds, clipped to the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MotionInterval {
    pub start: Time90k,
    pub end: Time90k,
    /// The highest score of its seconds.
    pub peak: u8,
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MotionResult {
    pub intervals: Vec<MotionInterval>,
    /// Seconds where the picture changed as a whole (lighting, a camera that moved): not motion.
    pub scene_changes: Vec<Time90k>,
    /// The highest score per bucket (empty when no buckets were asked for).
    pub buckets: Vec<u8>,
    /// Recorded footage in the range that the index does not cover (yet), merged.
    pub not_indexed: Vec<(Time90k, Time90k)>,
    /// Index rows read and rows whose entries were decoded (the rest were skipped).
    pub rows_read: u64,
    pub rows_decoded: u64,
}

/// Builds intervals from seconds that arrive mostly in order.
#[derive(Debug, Default)]
struct IntervalBuilder {
    /// (first second, last second, peak) of each interval so far.
    done: Vec<(i64, i64, u8)>,
    current: Option<(i64, i64, u8)>,
}

impl IntervalBuilder {
    #[inline]
    fn add(&mut self, second: i64, score: u8) {
        if let Some((first, last, peak)) = &mut self.current
            && second >= *first - MERGE_GAP_SECS
            && second <= *last + MERGE_GAP_SECS
        {
            *first = (*first).min(second);
            *last = (*last).max(second);
            *peak = (*peak).max(score);
            return;
        }
        if let Some(c) = self.current.replace((second, second, score)) {
            self.done.push(c);
        }
    }

    /// The intervals, sorted and merged (overlapping rows can deliver seconds out of order).
    fn finish(mut self) -> Vec<(i64, i64, u8)> {
        self.done.extend(self.current.take());
        self.done.sort_unstable();
        let mut out: Vec<(i64, i64, u8)> = Vec::with_capacity(self.done.len());
        for (first, last, peak) in self.done {
            match out.last_mut() {
                Some(prev) if first <= prev.1 + MERGE_GAP_SECS => {
                    prev.1 = prev.1.max(last);
                    prev.2 = prev.2.max(peak);
                }
                _ => out.push((first, last, peak)),
            }
        }
        out
    }
}

/// Merges `[start, end)` spans (sorted by start) that touch or overlap within `tolerance`.
fn merge_spans(mut spans: Vec<(i64, i64)>, tolerance: i64) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match out.last_mut() {
            Some(prev) if s <= prev.1 + tolerance => prev.1 = prev.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `recorded` minus `covered` (both merged and sorted), dropping pieces under `min`.
fn subtract(recorded: &[(i64, i64)], covered: &[(i64, i64)], min: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(rs, re) in recorded {
        let mut cursor = rs;
        while j < covered.len() && covered[j].1 <= cursor {
            j += 1;
        }
        let mut k = j;
        while cursor < re {
            match covered.get(k) {
                Some(&(cs, ce)) if cs < re => {
                    if cs > cursor {
                        out.push((cursor, cs));
                    }
                    cursor = cursor.max(ce);
                    k += 1;
                }
                _ => {
                    out.push((cursor, re));
                    cursor = re;
                }
            }
        }
    }
    out.retain(|&(s, e)| e - s >= min);
    out
}

/// Searches the motion index of one camera.
pub fn search(store: &Store, q: &MotionQuery) -> Result<MotionResult> {
    let (start, end) = (q.start.0, q.end.0);
    if end <= start {
        return Err(StorageError::InvalidArgument(format!(
            "empty motion search range: {} to {}",
            q.start, q.end
        )));
    }
    let n_buckets = q.buckets.min(MAX_BUCKETS);
    let mut buckets = vec![0u8; n_buckets];
    let span = i128::from(end - start);
    let bucket_of = |t: i64| -> usize {
        let i = i128::from(t.clamp(start, end - 1) - start) * n_buckets as i128 / span;
        i as usize
    };
    let region = q.region.unwrap_or(CellMask::FULL);
    let (first_second, last_second) = (
        start.div_euclid(TICKS_PER_SEC),
        (end - 1).div_euclid(TICKS_PER_SEC),
    );
    let mut intervals = IntervalBuilder::default();
    let mut scene_changes = Vec::new();
    let mut covered = Vec::new();
    let mut rows_read = 0;
    let mut rows_decoded = 0;
    store
        .db()
        .for_each_motion_row(q.camera, start, end, |row| {
            rows_read += 1;
            covered.push((row.start_90k, row.end_90k));
            // Rows without motion in the region are skipped unless they hold scene changes.
            let motion_here = row.cells.is_some_and(|c| c.intersects(&region));
            if !motion_here && row.scene_changes == 0 {
                return Ok(());
            }
            rows_decoded += 1;
            let mut d = Decoder::new(row.entries, row.start_90k.div_euclid(TICKS_PER_SEC))
                .map_err(|e| corrupt(q.camera, row.segment_id, e))?;
            while let Some(e) = d
                .next_entry()
                .map_err(|e| corrupt(q.camera, row.segment_id, e))?
            {
                if e.second < first_second || e.second > last_second {
                    continue;
                }
                if e.score == 0 {
                    scene_changes.push(e.second);
                    continue;
                }
                if !e.cells.intersects(&region) {
                    continue;
                }
                intervals.add(e.second, e.score);
                if n_buckets > 0 {
                    let t = e.second * TICKS_PER_SEC;
                    for b in &mut buckets[bucket_of(t)..=bucket_of(t + TICKS_PER_SEC - 1)] {
                        *b = (*b).max(e.score);
                    }
                }
            }
            Ok(())
        })?;
    scene_changes.sort_unstable();
    scene_changes.dedup();
    let intervals = intervals
        .finish()
        .into_iter()
        .map(|(first, last, peak)| MotionInterval {
            start: Time90k((first * TICKS_PER_SEC).max(start)),
            end: Time90k(((last + 1) * TICKS_PER_SEC).min(end)),
            peak,
        })
        .collect();
    let recorded: Vec<(i64, i64)> = playback::runs(store, q.camera.main(), q.start, q.end)?
        .into_iter()
        .filter_map(|r| {
            let e = if r.recording {
                r.end.0 - RECENT_GRACE_90K
            } else {
                r.end.0
            };
            let (s, e) = (r.start.0.max(start), e.min(end));
            (s < e).then_some((s, e))
        })
        .collect();
    let covered = merge_spans(covered, TICKS_PER_SEC);
    let not_indexed = subtract(&merge_spans(recorded, 0), &covered, MIN_NOT_INDEXED_90K)
        .into_iter()
        .map(|(s, e)| (Time90k(s), Time90k(e)))
        .collect();
    Ok(MotionResult {
        intervals,
        scene_changes: scene_changes
            .into_iter()
            .map(|s| Time90k((s * TICKS_PER_SEC).max(start)))
            .collect(),
        buckets,
        not_indexed,
        rows_read,
        rows_decoded,
    })
}

fn corrupt(
    camera: CameraId,
    segment: nvr_core::SegmentId,
    e: super::format::FormatError,
) -> StorageError {
    StorageError::Corrupt {
        camera,
        segment,
        detail: format!("motion index: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_merge_across_gaps_under_two_seconds() {
        let mut b = IntervalBuilder::default();
        for (s, score) in [(10, 1), (11, 5), (13, 2), (16, 9), (17, 1), (5, 3), (14, 4)] {
            b.add(s, score);
        }
        // 10, 11, 13, 14 (gap of 1 s) are one; 16 is 2 s after 14: also joined (gap 1 s
        // between [14, 15) and [16, 17)); 5 stands alone.
        assert_eq!(b.finish(), vec![(5, 5, 3), (10, 17, 9)]);
        let mut b = IntervalBuilder::default();
        for s in [1, 4] {
            b.add(s, 1);
        }
        assert_eq!(b.finish(), vec![(1, 1, 1), (4, 4, 1)], "a 2 s gap splits");
    }

    #[test]
    fn subtracting_coverage() {
        let rec = [(0, 100), (200, 300)];
        let cov = [(10, 20), (50, 250), (290, 400)];
        assert_eq!(subtract(&rec, &cov, 0), vec![(0, 10), (20, 50), (250, 290)]);
        assert_eq!(subtract(&rec, &cov, 15), vec![(20, 50), (250, 290)]);
        assert_eq!(subtract(&rec, &[], 0), rec.to_vec());
        assert_eq!(
            merge_spans(vec![(5, 7), (0, 3), (3, 4)], 0),
            vec![(0, 4), (5, 7)]
        );
    }
}
