//! Decode times for live fMP4, where each frame is sent the moment it arrives: unlike a stored
//! segment's (`frame_timing`, which sorts all of a segment's presentation times), no later
//! frame can be waited for.
//!
//! A frame's decode time is the (D + 1)-th latest presentation time seen so far, D being the
//! reorder depth learned so far (how many frames, at most, came before a frame and are
//! presented after it), and never less than the previous decode time plus one tick. Without
//! B-frames D stays 0 and the decode time is the frame's own presentation time, as before B-frame
//! support. With B-frames the first reordered frames find D too small: their decode times step
//! by one tick and their composition offsets are negative (`trun` version 1 carries signed
//! ones) until the next anchor frame, after which every offset is the usual non-negative one.
//! Presentation times (decode time plus offset) are always the camera's.
//!
//! A frame presented more than [`MAX_REORDER_90K`] before the latest, one presented at the
//! same time as a recent one, or a key frame presented before an earlier-decoded frame (which
//! no valid stream has) means the camera started a new session: the timing starts over.

use crate::frame_timing::MAX_REORDER_90K;

/// Deepest reordering followed: H.264 and H.265 allow at most 16 frames.
pub const MAX_REORDER_DEPTH: usize = 16;

/// One frame's place in the fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveFrameTiming {
    /// Increasing from frame to frame (same timeline as the presentation times).
    pub decode_90k: i64,
    /// Presentation time minus decode time.
    pub composition_offset_90k: i32,
    /// The frame's duration as best known now (the next frame's is not).
    pub duration_90k: u32,
    /// This frame starts a new session: the viewer needs a new initialization segment.
    pub restarted: bool,
}

/// Causal decode timing of one live stream.
#[derive(Clone, Debug)]
pub struct LiveTiming {
    /// The latest presentation times seen, descending, at most `MAX_REORDER_DEPTH + 1`.
    latest_90k: Vec<i64>,
    /// The reorder depth learned so far.
    depth: usize,
    last_pts_90k: Option<i64>,
    last_decode_90k: Option<i64>,
    default_duration_90k: u32,
    duration_90k: u32,
}

impl LiveTiming {
    /// `default_duration_90k` stands for the first frame's duration.
    pub fn new(default_duration_90k: u32) -> Self {
        LiveTiming {
            latest_90k: Vec::with_capacity(MAX_REORDER_DEPTH + 1),
            depth: 0,
            last_pts_90k: None,
            last_decode_90k: None,
            default_duration_90k,
            duration_90k: default_duration_90k,
        }
    }

    /// Times the next frame, presented at `pts_90k` (its media time).
    pub fn next(&mut self, pts_90k: i64, is_key: bool) -> LiveFrameTiming {
        let restarted = self.is_new_session(pts_90k, is_key);
        if restarted {
            *self = LiveTiming::new(self.default_duration_90k);
        }
        let rank = self.latest_90k.partition_point(|&p| p > pts_90k);
        self.latest_90k.insert(rank, pts_90k);
        self.latest_90k.truncate(MAX_REORDER_DEPTH + 1);
        self.depth = self.depth.max(rank.min(MAX_REORDER_DEPTH));
        let candidate = self.latest_90k[self.depth.min(self.latest_90k.len() - 1)];
        let decode_90k = self
            .last_decode_90k
            .map_or(candidate, |l| candidate.max(l + 1));
        if self.depth == 0 {
            // In decode order: the gap since the previous frame, as without B-frames.
            if let Some(d) = self
                .last_pts_90k
                .and_then(|last| u32::try_from(pts_90k - last).ok())
            {
                self.duration_90k = d.max(1);
            }
        } else if let Some(d) = self
            .latest_90k
            .windows(2)
            .filter_map(|w| u32::try_from(w[0] - w[1]).ok())
            .min()
        {
            // Reordered: the frame interval, the smallest gap between presentation times.
            self.duration_90k = d.max(1);
        }
        self.last_pts_90k = Some(pts_90k);
        self.last_decode_90k = Some(decode_90k);
        let offset = pts_90k - decode_90k;
        LiveFrameTiming {
            decode_90k,
            composition_offset_90k: i32::try_from(offset).unwrap_or(if offset < 0 {
                i32::MIN
            } else {
                i32::MAX
            }),
            duration_90k: self.duration_90k,
            restarted,
        }
    }

    fn is_new_session(&self, pts_90k: i64, is_key: bool) -> bool {
        let Some(&newest) = self.latest_90k.first() else {
            return false;
        };
        self.latest_90k.contains(&pts_90k)
            || (pts_90k < newest && (is_key || pts_90k < newest - MAX_REORDER_90K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(frames: &[(i64, bool)]) -> Vec<LiveFrameTiming> {
        let mut t = LiveTiming::new(6000);
        frames.iter().map(|&(p, k)| t.next(p, k)).collect()
    }

    #[test]
    fn in_order_frames_keep_their_times() {
        let got = run(&[(0, true), (3000, false), (6100, false), (9000, false)]);
        let times: Vec<(i64, i32, u32)> = got
            .iter()
            .map(|t| (t.decode_90k, t.composition_offset_90k, t.duration_90k))
            .collect();
        assert_eq!(
            times,
            [
                (0, 0, 6000),
                (3000, 0, 3000),
                (6100, 0, 3100),
                (9000, 0, 2900)
            ]
        );
        assert!(got.iter().all(|t| !t.restarted));
    }

    #[test]
    fn b_frames_present_exactly_and_settle_to_non_negative_offsets() {
        // x265's pyramid: I0 P3 B2 b1 P6 B5 b4 P9 B8 b7 ..., 3000 ticks a frame.
        let mut frames = vec![(0, true)];
        for g in 0..5i64 {
            let base = 3 * g * 3000;
            frames.extend([
                (base + 9000, false),
                (base + 6000, false),
                (base + 3000, false),
            ]);
        }
        let got = run(&frames);
        for (t, &(pts, _)) in got.iter().zip(&frames) {
            assert_eq!(t.decode_90k + i64::from(t.composition_offset_90k), pts);
            assert!(!t.restarted);
        }
        assert!(got.windows(2).all(|w| w[1].decode_90k > w[0].decode_90k));
        // After the first anchor frames, no offset is negative and durations are one frame.
        assert!(
            got[7..].iter().all(|t| t.composition_offset_90k >= 0),
            "{got:?}"
        );
        assert!(got[2..].iter().all(|t| t.duration_90k == 3000), "{got:?}");
    }

    #[test]
    fn a_new_session_starts_over() {
        let mut t = LiveTiming::new(6000);
        for i in 0..100 {
            t.next(i * 3000, i % 30 == 0);
        }
        // A key frame before the latest frame, a frame far back, a repeated time.
        for (pts, key) in [
            (3000, true),
            (297_000 - MAX_REORDER_90K - 1, false),
            (297_000, false),
        ] {
            let mut u = t.clone();
            let r = u.next(pts, key);
            assert!(r.restarted, "{pts}");
            assert_eq!((r.decode_90k, r.composition_offset_90k), (pts, 0));
        }
        // A B-frame a little back is no new session.
        assert!(!t.next(294_000 - 1500, false).restarted);
    }
}
