//! Decode times for frames that arrive in decode order carrying presentation times, as a
//! camera with B-frames sends them (RTP timestamps are presentation times).
//!
//! A segment stores each frame's presentation time (its record's media offset); the index and
//! the MP4s need a decode time that increases from frame to frame, and the offset from it to
//! the presentation time (`ctts` / `trun` composition offsets). Within a segment:
//!
//! ```text
//! pts[i]  presentation offset of the i-th frame in decode order (from the segment's first)
//! s[i]    the i-th smallest of all pts of the segment (the sorted presentation times)
//! dts[i] = s[i]                      decode time: increasing, as pts are distinct
//! duration[i] = s[i + 1] - s[i]      the last one: the segment's end - s[n - 1]
//! composition_offset[i] = pts[i] - s[i]   (signed; 0 for every frame without reordering)
//! ```
//!
//! So the durations are the gaps between presentation times (their sum is the presented
//! span), a stream without reordering gets exactly the durations it always had and zero
//! offsets, and a reordered frame's presentation time is `dts + offset`, exactly what the
//! camera sent. A frame's timing depends only on the frames of its segment, so recovery and
//! `nvr check` derive it again from the file alone. Until the segment ends, the newest frames'
//! decode times may still move as later frames sort in before them; their presentation times
//! never do.

use std::fmt;

/// Furthest a frame's presentation time may lie before the newest one seen in its segment: 2 s
/// covers the reordering of any B-frame structure (a few frames; 16 at most in H.264/H.265)
/// down to 8 fps, while a camera whose clock went back further is a broken stream, not
/// reordering.
pub const MAX_REORDER_90K: i64 = 2 * 90_000;

/// Duration assumed for a segment's last frame when nothing tells it: 1/30 s.
pub const FALLBACK_FRAME_DURATION_90K: u32 = 3000;

/// Why a frame cannot follow the frames before it in its segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimingError {
    /// Another frame of the segment has the same presentation time.
    Duplicate { pts_90k: i64 },
    /// The presentation time lies more than [`MAX_REORDER_90K`] before the newest.
    TooFarBack { pts_90k: i64, newest_90k: i64 },
}

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimingError::Duplicate { pts_90k } => {
                write!(f, "two frames have media time {pts_90k}")
            }
            TimingError::TooFarBack {
                pts_90k,
                newest_90k,
            } => write!(
                f,
                "frame media time {pts_90k} is more than {MAX_REORDER_90K} before the newest \
                 frame's {newest_90k}"
            ),
        }
    }
}

impl std::error::Error for TimingError {}

/// The presentation times of one segment's frames so far, in decode order and sorted.
#[derive(Clone, Debug, Default)]
pub struct SegmentTiming {
    /// Presentation offsets, in decode order.
    pts_90k: Vec<i64>,
    /// The same, ascending.
    sorted_90k: Vec<i64>,
}

impl SegmentTiming {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames so far.
    pub fn len(&self) -> usize {
        self.pts_90k.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pts_90k.is_empty()
    }

    /// Adds the next frame in decode order. Returns the first decode index whose duration or
    /// composition offset changed (the frames from there on need publishing again); the new
    /// frame's own duration is unknown until the next frame or the segment's end.
    pub fn push(&mut self, pts_90k: i64) -> Result<usize, TimingError> {
        let at = self.check(pts_90k)?;
        self.sorted_90k.insert(at, pts_90k);
        self.pts_90k.push(pts_90k);
        // Durations change from the frame before the insertion point, offsets from it.
        Ok(at.saturating_sub(1))
    }

    /// Whether a frame presented at `pts_90k` may come next (see [`Self::push`]); returns
    /// where it sorts in.
    pub fn check(&self, pts_90k: i64) -> Result<usize, TimingError> {
        if let Some(&newest) = self.sorted_90k.last()
            && pts_90k < newest - MAX_REORDER_90K
        {
            return Err(TimingError::TooFarBack {
                pts_90k,
                newest_90k: newest,
            });
        }
        // Reordering reaches back a few frames: search from the end.
        let at = self.sorted_90k.len()
            - self
                .sorted_90k
                .iter()
                .rev()
                .take_while(|&&p| p >= pts_90k)
                .count();
        if self.sorted_90k.get(at) == Some(&pts_90k) {
            return Err(TimingError::Duplicate { pts_90k });
        }
        Ok(at)
    }

    /// Frame `i`'s duration, once the frame after it is known.
    pub fn duration_90k(&self, i: usize) -> Option<u32> {
        let next = *self.sorted_90k.get(i + 1)?;
        // Distinct and sorted: positive; and small (ingest ends a session whose timestamps
        // jump forward more than 10 s).
        u32::try_from(next - self.sorted_90k[i]).ok()
    }

    /// Frame `i`'s presentation time minus its decode time.
    pub fn composition_offset_90k(&self, i: usize) -> i32 {
        let d = self.pts_90k[i] - self.sorted_90k[i];
        // A few times the reorder window at most (see `check`).
        i32::try_from(d).unwrap_or(if d < 0 { i32::MIN } else { i32::MAX })
    }

    /// The earliest presentation time (the decode time of the first frame; 0 unless frames
    /// after the first key frame are presented before it).
    pub fn first_90k(&self) -> i64 {
        self.sorted_90k.first().copied().unwrap_or(0)
    }

    /// The latest presentation time.
    pub fn last_90k(&self) -> i64 {
        self.sorted_90k.last().copied().unwrap_or(0)
    }

    /// Duration of the last frame when the segment ends at presentation offset `end_90k`:
    /// `end - latest`, at least 1 tick; with no end known, the duration of the frame before it
    /// (1/30 s for a single frame).
    pub fn last_duration_90k(&self, end_90k: Option<i64>) -> u32 {
        match end_90k {
            Some(end) => u32::try_from((end - self.last_90k()).max(1)).unwrap_or(u32::MAX),
            None => self
                .len()
                .checked_sub(2)
                .and_then(|i| self.duration_90k(i))
                .unwrap_or(FALLBACK_FRAME_DURATION_90K),
        }
    }

    /// Every frame's (duration, composition offset) in decode order, the last frame's duration
    /// from [`Self::last_duration_90k`].
    pub fn finish(&self, end_90k: Option<i64>) -> Vec<(u32, i32)> {
        let last = self.last_duration_90k(end_90k);
        (0..self.len())
            .map(|i| {
                (
                    self.duration_90k(i).unwrap_or(last),
                    self.composition_offset_90k(i),
                )
            })
            .collect()
    }
}

/// Each frame's presentation offset from the first frame's, from the durations and
/// composition offsets of an index: the inverse of [`SegmentTiming`] (what the segment's
/// records hold).
pub fn presentation_offsets(timing: impl IntoIterator<Item = (u32, i32)>) -> Vec<i64> {
    let mut out = Vec::new();
    let mut decode = 0i64;
    let mut first_offset = None;
    for (duration, offset) in timing {
        let first = *first_offset.get_or_insert(offset);
        out.push(decode + i64::from(offset) - i64::from(first));
        decode += i64::from(duration);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// I0 P3 B1 B2 P6 B4 B5 at 3000 ticks a frame, as x264 sends 2 B-frames.
    const B2: [i64; 7] = [0, 9000, 3000, 6000, 18000, 12000, 15000];

    fn timing(pts: &[i64]) -> SegmentTiming {
        let mut t = SegmentTiming::new();
        for &p in pts {
            t.push(p).expect("valid");
        }
        t
    }

    #[test]
    fn b_frames_get_increasing_decode_times_and_exact_presentation() {
        let t = timing(&B2);
        let got = t.finish(Some(21000));
        assert_eq!(
            got,
            [
                (3000, 0),
                (3000, 6000),
                (3000, -3000),
                (3000, -3000),
                (3000, 6000),
                (3000, -3000),
                (3000, -3000)
            ]
        );
        assert_eq!(presentation_offsets(got), B2);
    }

    #[test]
    fn without_reordering_durations_are_the_gaps_and_offsets_zero() {
        let t = timing(&[0, 3000, 6100, 9000]);
        assert_eq!(
            t.finish(Some(12000)),
            [(3000, 0), (3100, 0), (2900, 0), (3000, 0)]
        );
        // No end known: the last frame copies the one before.
        assert_eq!(t.finish(None)[3], (2900, 0));
        assert_eq!(
            timing(&[0]).finish(None),
            [(FALLBACK_FRAME_DURATION_90K, 0)]
        );
    }

    #[test]
    fn push_reports_where_timing_changed() {
        let mut t = SegmentTiming::new();
        assert_eq!(t.push(0), Ok(0));
        assert_eq!(t.push(9000), Ok(0));
        assert_eq!(t.push(3000), Ok(0));
        assert_eq!(t.push(6000), Ok(1));
        assert_eq!(t.push(18000), Ok(3));
        assert_eq!(t.push(12000), Ok(3));
    }

    #[test]
    fn duplicates_and_far_jumps_back_are_refused() {
        let mut t = timing(&[0, 9000, 3000]);
        assert_eq!(t.push(3000), Err(TimingError::Duplicate { pts_90k: 3000 }));
        assert_eq!(t.push(9000), Err(TimingError::Duplicate { pts_90k: 9000 }));
        let mut t = timing(&[0, 200_000]);
        assert!(matches!(
            t.push(10_000),
            Err(TimingError::TooFarBack { .. })
        ));
        // Leading pictures of an open GOP: before the first frame, within the window.
        let t = timing(&[0, -6000, -3000, 9000]);
        assert_eq!(t.first_90k(), -6000);
        assert_eq!(
            presentation_offsets(t.finish(Some(12000))),
            [0, -6000, -3000, 9000]
        );
    }

    proptest! {
        /// Any shuffle within small windows: decode times increase, durations add up to the
        /// presented span, and the presentation times come back exactly.
        #[test]
        fn round_trip(rotations in proptest::collection::vec(0usize..4, 1..60)) {
            // Blocks of 4 frames, each presented in a rotated order (the first stays first).
            let mut pts = vec![0i64];
            for (b, r) in rotations.iter().enumerate() {
                let mut block: Vec<i64> = (0..4).map(|i| (1 + 4 * b as i64 + i) * 3000).collect();
                block.rotate_left(*r);
                pts.extend(block);
            }
            let t = timing(&pts);
            let end = t.last_90k() + 3000;
            let got = t.finish(Some(end));
            prop_assert!(got.iter().all(|&(d, _)| d > 0));
            let total: i64 = got.iter().map(|&(d, _)| i64::from(d)).sum();
            prop_assert_eq!(total, end - t.first_90k());
            let back = presentation_offsets(got);
            let rel: Vec<i64> = pts.iter().map(|p| p - pts[0]).collect();
            prop_assert_eq!(back, rel);
        }
    }
}
