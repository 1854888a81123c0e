//! The `motion.entries` blob: the seconds with motion of one analysed stretch, compactly.
//!
//! ```text
//! varint version (1)
//! per second with motion, in increasing order:
//!   varint (gap << 1 | raw)   gap = second - previous second - 1 (the first entry's previous
//!                             second is the row's base second - 1)
//!   u8     score              1..=255 motion; 0 = the picture changed as a whole (lighting,
//!                             a moved camera): recalibrated, not motion, no cells
//!   u16 LE rows               bit r set: row r of the grid follows
//!   u16 LE per set bit        raw: the row's cells; else XORed with the previous motion
//!                             entry's row (consecutive seconds of a scene are alike)
//! ```
//!
//! A second of a still scene costs nothing; a busy one 4 bytes plus 2 per grid row that changed
//! since the second before (36 bytes at most).

use super::{CellMask, GRID, MotionSecond};

/// The version this code writes.
pub const FORMAT_VERSION: u64 = 1;

/// Why a blob cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("the motion entries end in the middle of an entry")]
    Truncated,
    #[error("motion entries of unknown version {0}")]
    Version(u64),
    #[error("motion entry gap out of range")]
    Gap,
    #[error("a scene change entry carries cells")]
    SceneChangeWithCells,
    #[error("a motion entry without any cell")]
    EmptyMotion,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes `seconds` (increasing, each at or after `base_second`) after `base_second`.
///
/// Panics in debug builds if the seconds are not increasing; the encoder's callers sort them.
pub fn encode(base_second: i64, seconds: &[MotionSecond]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + seconds.len() * 8);
    put_varint(&mut out, FORMAT_VERSION);
    let mut prev_second = base_second - 1;
    let mut prev_cells = CellMask::EMPTY;
    for s in seconds {
        debug_assert!(s.second > prev_second, "seconds must increase");
        let gap = u64::try_from(s.second - prev_second - 1).unwrap_or(0);
        let xor = s.cells.xor(&prev_cells);
        let raw = s.score == 0 || xor.nonempty_rows() > s.cells.nonempty_rows();
        let rows = if raw { s.cells } else { xor };
        put_varint(&mut out, gap << 1 | u64::from(raw));
        out.push(s.score);
        let bits = rows.row_bits();
        out.extend_from_slice(&bits.to_le_bytes());
        for r in 0..GRID {
            if bits & (1 << r) != 0 {
                out.extend_from_slice(&rows.0[r].to_le_bytes());
            }
        }
        if s.score != 0 {
            prev_cells = s.cells;
        }
        prev_second = s.second;
    }
    out
}

/// Reads the entries of a blob one by one, without allocating.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    prev_second: i64,
    prev_cells: CellMask,
}

impl<'a> Decoder<'a> {
    /// Starts reading `data`, whose row's base second is `base_second`.
    pub fn new(data: &'a [u8], base_second: i64) -> Result<Self, FormatError> {
        let mut d = Decoder {
            data,
            pos: 0,
            prev_second: base_second - 1,
            prev_cells: CellMask::EMPTY,
        };
        let version = d.varint()?;
        if version != FORMAT_VERSION {
            return Err(FormatError::Version(version));
        }
        Ok(d)
    }

    fn varint(&mut self) -> Result<u64, FormatError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.data.get(self.pos).ok_or(FormatError::Truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(FormatError::Gap)
    }

    fn u16(&mut self) -> Result<u16, FormatError> {
        let b = self
            .data
            .get(self.pos..self.pos + 2)
            .ok_or(FormatError::Truncated)?;
        self.pos += 2;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// The next entry, `None` at the end.
    #[inline]
    pub fn next_entry(&mut self) -> Result<Option<MotionSecond>, FormatError> {
        if self.pos == self.data.len() {
            return Ok(None);
        }
        let head = self.varint()?;
        let raw = head & 1 == 1;
        let gap = i64::try_from(head >> 1).map_err(|_| FormatError::Gap)?;
        let score = *self.data.get(self.pos).ok_or(FormatError::Truncated)?;
        self.pos += 1;
        let bits = self.u16()?;
        let mut cells = if raw {
            CellMask::EMPTY
        } else {
            self.prev_cells
        };
        for r in 0..GRID {
            if bits & (1 << r) != 0 {
                cells.0[r] ^= self.u16()?;
            }
        }
        let second = self
            .prev_second
            .checked_add(gap)
            .and_then(|s| s.checked_add(1))
            .ok_or(FormatError::Gap)?;
        if score == 0 && !cells.is_empty() {
            return Err(FormatError::SceneChangeWithCells);
        }
        if score != 0 {
            if cells.is_empty() {
                return Err(FormatError::EmptyMotion);
            }
            self.prev_cells = cells;
        }
        self.prev_second = second;
        Ok(Some(MotionSecond {
            second,
            cells,
            score,
        }))
    }
}

/// Decodes a whole blob.
pub fn decode(data: &[u8], base_second: i64) -> Result<Vec<MotionSecond>, FormatError> {
    let mut d = Decoder::new(data, base_second)?;
    let mut out = Vec::new();
    while let Some(e) = d.next_entry()? {
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn second(second: i64, score: u8, cells: &[(usize, usize)]) -> MotionSecond {
        let mut m = CellMask::EMPTY;
        for &(r, c) in cells {
            m.set(r, c);
        }
        MotionSecond {
            second,
            cells: m,
            score,
        }
    }

    #[test]
    fn round_trip_and_sizes() {
        let entries = vec![
            second(100, 7, &[(3, 4), (3, 5)]),
            second(101, 9, &[(3, 5), (3, 6)]),
            second(102, 9, &[(3, 5), (3, 6)]),
            second(110, 0, &[]),
            second(200, 255, &[(0, 0), (15, 15)]),
        ];
        let blob = encode(100, &entries);
        assert_eq!(decode(&blob, 100).expect("decodes"), entries);
        // Version, then 6 + 6 + 4 (unchanged cells: no row) + 4 + 9 bytes (a gap of 89 s
        // takes a 2-byte varint; two raw rows beat three changed ones).
        assert_eq!(blob.len(), 1 + 6 + 6 + 4 + 4 + 9, "{blob:?}");
        assert_eq!(decode(&encode(5, &[]), 5).expect("empty"), vec![]);
    }

    #[test]
    fn bad_blobs_are_errors() {
        let blob = encode(0, &[second(3, 1, &[(1, 1)])]);
        for cut in 2..blob.len() {
            assert_eq!(
                decode(&blob[..cut], 0),
                Err(FormatError::Truncated),
                "{cut}"
            );
        }
        assert_eq!(decode(&[2], 0), Err(FormatError::Version(2)));
        assert_eq!(decode(&[], 0), Err(FormatError::Truncated));
        // A scene change with cells, a motion entry without.
        assert_eq!(
            decode(&[1, 1, 0, 1, 0, 1, 0], 0),
            Err(FormatError::SceneChangeWithCells)
        );
        assert_eq!(decode(&[1, 1, 5, 0, 0], 0), Err(FormatError::EmptyMotion));
    }

    fn arb_second() -> impl Strategy<Value = (i64, u8, [u16; 16])> {
        (1i64..5000, any::<u8>(), any::<[u16; 16]>())
    }

    proptest! {
        #[test]
        fn any_entries_round_trip(items in proptest::collection::vec(arb_second(), 0..50), base in -10_000i64..10_000) {
            let mut s = base;
            let entries: Vec<MotionSecond> = items
                .into_iter()
                .map(|(gap, score, rows)| {
                    s += gap - 1;
                    let mut cells = CellMask(rows);
                    if cells.is_empty() { cells.set(0, 0); }
                    let e = if score == 0 {
                        MotionSecond { second: s, cells: CellMask::EMPTY, score }
                    } else {
                        MotionSecond { second: s, cells, score }
                    };
                    s += 1;
                    e
                })
                .collect();
            let blob = encode(base, &entries);
            prop_assert_eq!(decode(&blob, base).expect("decodes"), entries);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&data, 0);
        }
    }
}
