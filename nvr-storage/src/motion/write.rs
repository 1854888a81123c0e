//! What the analysis hands to storage ([`MotionSpan`], [`ReindexedSegment`]) and the pure
//! helpers that fold seconds into a row: merging two lists of seconds and a row's summary.

use nvr_core::SegmentId;

use super::{CellMask, MotionSecond};

/// A stretch of one camera's footage that was analysed without a break, with what was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MotionSpan {
    /// The wall time analysed, 90 kHz; `[start, end)`. A span that continues the camera's
    /// previous one starts exactly where it ended.
    pub start_90k: i64,
    pub end_90k: i64,
    /// Pictures analysed, and pictures left out because the analysis was behind.
    pub frames: u32,
    pub skipped: u32,
    /// The seconds with motion or a scene change, increasing, within the span.
    pub seconds: Vec<MotionSecond>,
}

/// One segment analysed afresh from storage (`nvr motion reindex`): its rows are replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReindexedSegment {
    pub segment: SegmentId,
    pub span: MotionSpan,
}

/// Merges two increasing lists of seconds: a second in both gets the union of the cells and
/// the higher score (motion outranks a scene change of the same second).
pub(crate) fn merge_seconds(a: &[MotionSecond], b: &[MotionSecond]) -> Vec<MotionSecond> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.second == y.second => {
                i += 1;
                j += 1;
                if x.score == 0 || y.score == 0 {
                    if x.score >= y.score { *x } else { *y }
                } else {
                    MotionSecond {
                        second: x.second,
                        cells: x.cells.union(&y.cells),
                        score: x.score.max(y.score),
                    }
                }
            }
            (Some(x), Some(y)) if x.second < y.second => {
                i += 1;
                *x
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                j += 1;
                *y
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// A row's summary of its seconds: the union of their cells (`None` when no motion), the
/// highest score and how many are scene changes.
pub(crate) fn summary(seconds: &[MotionSecond]) -> (Option<CellMask>, u8, u32) {
    let mut cells = CellMask::EMPTY;
    let mut peak = 0;
    let mut scene_changes = 0;
    for s in seconds {
        cells = cells.union(&s.cells);
        peak = peak.max(s.score);
        scene_changes += u32::from(s.score == 0);
    }
    ((!cells.is_empty()).then_some(cells), peak, scene_changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(second: i64, score: u8, cell: Option<(usize, usize)>) -> MotionSecond {
        let mut cells = CellMask::EMPTY;
        if let Some((r, c)) = cell {
            cells.set(r, c);
        }
        MotionSecond {
            second,
            cells,
            score,
        }
    }

    #[test]
    fn merging_unites_equal_seconds() {
        let a = [s(1, 5, Some((0, 0))), s(3, 0, None), s(4, 9, Some((1, 1)))];
        let b = [
            s(2, 7, Some((2, 2))),
            s(3, 4, Some((3, 3))),
            s(4, 2, Some((0, 0))),
        ];
        let m = merge_seconds(&a, &b);
        let mut four = CellMask::EMPTY;
        four.set(1, 1);
        four.set(0, 0);
        assert_eq!(
            m,
            vec![
                a[0],
                b[0],
                b[1],
                MotionSecond {
                    second: 4,
                    cells: four,
                    score: 9
                }
            ]
        );
        assert_eq!(merge_seconds(&a, &[]), a.to_vec());
        let (cells, peak, changes) = summary(&m);
        assert_eq!((cells.map(|c| c.count()), peak, changes), (Some(4), 9, 0));
        assert_eq!(summary(&[s(5, 0, None)]), (None, 0, 1));
    }
}
