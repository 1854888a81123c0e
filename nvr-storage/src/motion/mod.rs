//! The motion index: per camera, one entry per second with motion (a 16x16 cell mask and a
//! score), stored per segment so footage and its index are deleted together; writing what the
//! analysis (crate `nvr-motion`, which this crate never depends on) found, searching it by
//! region, and checking it against the segments. The index never decides what is recorded.

pub(crate) mod check;
pub mod format;
mod search;
pub(crate) mod write;

pub use search::{MAX_BUCKETS, MotionInterval, MotionQuery, MotionResult, search};
pub use write::{MotionSpan, ReindexedSegment};

/// Cells per side of the motion grid.
pub const GRID: usize = 16;

/// 90 kHz ticks per second.
pub const TICKS_PER_SEC: i64 = 90_000;

/// A set of cells of the 16x16 grid: row `r` (0 at the top) is `.0[r]`, bit `c` (0 at the
/// left) is cell (r, c).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CellMask(pub [u16; GRID]);

impl CellMask {
    pub const EMPTY: CellMask = CellMask([0; GRID]);
    pub const FULL: CellMask = CellMask([u16::MAX; GRID]);

    pub fn set(&mut self, row: usize, col: usize) {
        self.0[row] |= 1 << col;
    }

    pub fn get(&self, row: usize, col: usize) -> bool {
        self.0[row] & (1 << col) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&r| r == 0)
    }

    pub fn count(&self) -> u32 {
        self.0.iter().map(|r| r.count_ones()).sum()
    }

    /// Bit `r` set for every row with a cell.
    pub fn row_bits(&self) -> u16 {
        let mut bits = 0;
        for (r, &row) in self.0.iter().enumerate() {
            if row != 0 {
                bits |= 1 << r;
            }
        }
        bits
    }

    pub fn nonempty_rows(&self) -> u32 {
        self.row_bits().count_ones()
    }

    pub fn union(&self, other: &CellMask) -> CellMask {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        out
    }

    pub fn xor(&self, other: &CellMask) -> CellMask {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a ^= b;
        }
        out
    }

    /// The cells in neither `other`.
    pub fn without(&self, other: &CellMask) -> CellMask {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
        out
    }

    #[inline]
    pub fn intersects(&self, other: &CellMask) -> bool {
        self.0.iter().zip(other.0).any(|(a, b)| a & b != 0)
    }

    /// The 32-byte form stored in the index (each row little-endian).
    pub fn to_bytes(&self) -> [u8; 2 * GRID] {
        let mut out = [0; 2 * GRID];
        for (r, row) in self.0.iter().enumerate() {
            out[2 * r..2 * r + 2].copy_from_slice(&row.to_le_bytes());
        }
        out
    }

    /// Reads the stored form; `None` unless exactly 32 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<CellMask> {
        if b.len() != 2 * GRID {
            return None;
        }
        let mut m = CellMask::EMPTY;
        for r in 0..GRID {
            m.0[r] = u16::from_le_bytes([b[2 * r], b[2 * r + 1]]);
        }
        Some(m)
    }

    /// The cells a region of the picture touches: `x0, y0, x1, y1` in 0..=1 picture
    /// coordinates (0, 0 the top left), `x0 < x1`, `y0 < y1`. A cell counts when the region
    /// covers any of it. `None` if the region is not a proper rectangle inside the picture.
    pub fn from_region(x0: f64, y0: f64, x1: f64, y1: f64) -> Option<CellMask> {
        let ok = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !(ok(x0) && ok(y0) && ok(x1) && ok(y1)) || x0 >= x1 || y0 >= y1 {
            return None;
        }
        let grid = GRID as f64;
        // First and last cell touched: a region ending exactly on a cell boundary does not
        // touch the next cell.
        let first = |v: f64| ((v * grid).floor() as usize).min(GRID - 1);
        let last = |v: f64| (((v * grid).ceil() as usize).max(1) - 1).min(GRID - 1);
        let (c0, c1, r0, r1) = (first(x0), last(x1), first(y0), last(y1));
        let mut cols: u16 = 0;
        for c in c0..=c1 {
            cols |= 1 << c;
        }
        let mut m = CellMask::EMPTY;
        for r in r0..=r1 {
            m.0[r] = cols;
        }
        Some(m)
    }
}

/// One second with motion (or a scene change) of one camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MotionSecond {
    /// The second, counted from the Unix epoch: the entry covers `[second, second + 1)`.
    pub second: i64,
    /// The cells where motion was seen in any picture analysed in that second.
    pub cells: CellMask,
    /// How much moved: see [`score_from_fraction`]; 0 marks a scene change (the picture
    /// changed as a whole: lighting, infrared switch, a camera that moved), which is not
    /// motion and has no cells.
    pub score: u8,
}

/// The score of a picture whose moving parts cover `fraction` (0..=1) of it: `255 * sqrt(f)`
/// rounded up, at least 1, so small objects keep resolution (a person far away, 0.5% of the
/// picture, scores 19; a quarter of the picture, 128).
pub fn score_from_fraction(fraction: f64) -> u8 {
    let f = fraction.clamp(0.0, 1.0);
    ((255.0 * f.sqrt()).ceil() as u8).max(1)
}

/// The share of the picture that a score stands for (the inverse of
/// [`score_from_fraction`], to the score's resolution).
pub fn fraction_from_score(score: u8) -> f64 {
    let s = f64::from(score) / 255.0;
    s * s
}

/// The second of a 90 kHz wall time (floor).
pub fn second_of(t_90k: i64) -> i64 {
    t_90k.div_euclid(TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_cover_the_cells_they_touch() {
        let all = CellMask::from_region(0.0, 0.0, 1.0, 1.0).expect("whole picture");
        assert_eq!(all, CellMask::FULL);
        let left_top = CellMask::from_region(0.0, 0.0, 0.5, 0.25).expect("quarter");
        assert_eq!(left_top.count(), 8 * 4);
        assert!(left_top.get(3, 7) && !left_top.get(4, 7) && !left_top.get(3, 8));
        let tiny = CellMask::from_region(0.51, 0.51, 0.52, 0.52).expect("tiny");
        assert_eq!(tiny.count(), 1);
        assert!(tiny.get(8, 8));
        for bad in [
            (0.5, 0.0, 0.5, 1.0),
            (0.0, 0.0, 1.1, 1.0),
            (-0.1, 0.0, 1.0, 1.0),
            (0.0, f64::NAN, 1.0, 1.0),
            (0.6, 0.0, 0.5, 1.0),
        ] {
            assert_eq!(
                CellMask::from_region(bad.0, bad.1, bad.2, bad.3),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn masks_round_trip_their_bytes() {
        let mut m = CellMask::EMPTY;
        m.set(0, 0);
        m.set(15, 15);
        m.set(7, 3);
        assert_eq!(CellMask::from_bytes(&m.to_bytes()), Some(m));
        assert_eq!(CellMask::from_bytes(&[0; 31]), None);
        assert_eq!(m.count(), 3);
        assert_eq!(m.row_bits(), 1 | 1 << 7 | 1 << 15);
        assert!(m.intersects(&CellMask::FULL) && !m.intersects(&CellMask::EMPTY));
        assert!(m.without(&m).is_empty());
    }

    #[test]
    fn scores_keep_small_objects_visible() {
        assert_eq!(score_from_fraction(0.0), 1);
        assert_eq!(score_from_fraction(0.005), 19);
        assert_eq!(score_from_fraction(0.25), 128);
        assert_eq!(score_from_fraction(1.0), 255);
        for s in 1..=255u8 {
            assert_eq!(score_from_fraction(fraction_from_score(s)), s, "{s}");
        }
        assert_eq!(second_of(-1), -1);
        assert_eq!(second_of(90_000 * 5 + 89_999), 5);
    }
}
