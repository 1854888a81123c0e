//! Maps a camera's media time (RTP timestamps) to wall-clock time, without drift and without
//! letting network jitter or a stepped local clock bend the recorded durations.
//!
//! Frame durations always come from the camera's RTP timestamps: they are what the encoder meant.
//! Where those frames sit in wall time is estimated from when they arrived:
//!
//! * The first segment of a run starts at `min over its frames of (received - media_time) +
//!   media_start`: the frame that crossed the network fastest gives the best estimate of the
//!   camera-to-local offset (arrival is never earlier than capture).
//! * Later segments of the same run start exactly where the previous one ended (no gaps, no
//!   overlaps), and each segment's wall duration is its media duration nudged toward the local
//!   clock's estimate by at most [`MAX_NUDGE_PPM`]. A camera whose oscillator is off by 100 ppm
//!   therefore never drifts away from local time, while no segment's wall duration differs
//!   from its media duration by more than 0.05 %, which no viewer can see.
//! * When the local estimate is further than [`CLOCK_JUMP_THRESHOLD_90K`] away from where the run
//!   would put it, the local clock was stepped (or the camera's clock was): the run ends there and
//!   the next segment starts a new run at the new estimate. The caller records the jump.

use crate::time::{Duration90k, Time90k};

/// The most a segment's wall duration may differ from its media duration: 500 ppm, i.e. 30 ms
/// over a 60 s segment. Cheap camera oscillators are within ~100 ppm; 500 ppm corrects that
/// quickly while keeping playback speed indistinguishable from real time.
pub const MAX_NUDGE_PPM: i64 = 500;

/// How far the local estimate may stray from the run before we call it a clock jump: 5 s, far
/// above network jitter (frames older than the 10 s stall watchdog never arrive) and far below
/// the size of a human or NTP clock step worth recording.
pub const CLOCK_JUMP_THRESHOLD_90K: i64 = 5 * 90_000;

/// The wall-clock placement of one closed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentWall {
    pub start: Time90k,
    pub end: Time90k,
    /// The local clock disagreed with the run by more than the jump threshold: this segment
    /// ends its run and the next segment starts a new one.
    pub clock_jump: bool,
}

/// Wall-time mapping state of one RTSP session (one run of contiguous recording).
#[derive(Clone, Debug, Default)]
pub struct WallMapper {
    /// min(received - media_time) over the frames of the segment being written.
    segment_min_offset_90k: Option<i64>,
    /// (media time, wall time) of the end of the last closed segment of this run.
    committed_end: Option<(i64, Time90k)>,
}

impl WallMapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes the arrival of a frame of the segment being written.
    pub fn observe(&mut self, media_time_90k: i64, received: Time90k) {
        let offset = received.0.saturating_sub(media_time_90k);
        self.segment_min_offset_90k = Some(match self.segment_min_offset_90k {
            Some(m) => m.min(offset),
            None => offset,
        });
    }

    /// The current best wall-time estimate of `media_time_90k` (used for a segment being written).
    pub fn estimate(&self, media_time_90k: i64) -> Option<Time90k> {
        if let Some((media, wall)) = self.committed_end {
            return Some(wall + Duration90k(media_time_90k - media));
        }
        self.segment_min_offset_90k
            .map(|off| Time90k(off.saturating_add(media_time_90k)))
    }

    /// Closes the segment spanning media times `[media_start, media_end)` and returns where it
    /// lies in wall time. Returns `None` if no frame of it was observed.
    pub fn close_segment(
        &mut self,
        media_start_90k: i64,
        media_end_90k: i64,
    ) -> Option<SegmentWall> {
        let offset = self.segment_min_offset_90k.take()?;
        let media_duration = media_end_90k.saturating_sub(media_start_90k).max(0);
        let local_end = offset.saturating_add(media_end_90k);
        let placed = match self.committed_end {
            None => {
                let start = Time90k(offset.saturating_add(media_start_90k));
                SegmentWall {
                    start,
                    end: start + Duration90k(media_duration),
                    clock_jump: false,
                }
            }
            Some((_, start)) => {
                let unadjusted_end = start.0.saturating_add(media_duration);
                let error = local_end.saturating_sub(unadjusted_end);
                if error.abs() > CLOCK_JUMP_THRESHOLD_90K {
                    SegmentWall {
                        start,
                        end: Time90k(unadjusted_end),
                        clock_jump: true,
                    }
                } else {
                    let max_nudge = media_duration.saturating_mul(MAX_NUDGE_PPM) / 1_000_000;
                    let nudge = error.clamp(-max_nudge, max_nudge);
                    SegmentWall {
                        start,
                        end: Time90k(unadjusted_end.saturating_add(nudge)),
                        clock_jump: false,
                    }
                }
            }
        };
        self.committed_end = if placed.clock_jump {
            None
        } else {
            Some((media_end_90k, placed.end))
        };
        Some(placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: i64 = 90_000;

    /// Simulates a camera whose clock runs at (1 + ppm/1e6) of local time, sending a frame every
    /// 1/15 s with a network delay from `delays_ms`, recorded as 60 s segments.
    fn simulate(ppm: i64, delays_ms: &[i64], segments: usize) -> (Vec<SegmentWall>, i64) {
        let mut m = WallMapper::new();
        let t0 = 1_000_000 * SEC;
        let frame_media = SEC / 15;
        let frames_per_seg = 15 * 60;
        let mut out = Vec::new();
        let mut frame = 0i64;
        let mut last_capture = 0;
        for _ in 0..segments {
            let media_start = frame * frame_media;
            for _ in 0..frames_per_seg {
                let media = frame * frame_media;
                // Local time at capture: media time scaled by the camera's rate error.
                let capture_local = t0 + media - media * ppm / 1_000_000;
                let delay = delays_ms[(frame as usize) % delays_ms.len()] * 90;
                m.observe(media, Time90k(capture_local + delay));
                last_capture = capture_local;
                frame += 1;
            }
            out.push(
                m.close_segment(media_start, frame * frame_media)
                    .expect("frames"),
            );
        }
        (out, last_capture + frame_media)
    }

    #[test]
    fn first_segment_uses_fastest_frame() {
        let (segs, _) = simulate(0, &[40, 5, 300, 12], 1);
        // The 5 ms frame gives the estimate: start is 5 ms after the true capture start.
        assert_eq!(segs[0].start.0, 1_000_000 * SEC + 5 * 90);
        assert!(!segs[0].clock_jump);
    }

    #[test]
    fn segments_are_contiguous_and_drift_is_corrected() {
        // 200 ppm fast camera over 2 hours: uncorrected this would drift 1.44 s.
        let (segs, true_end) = simulate(200, &[10, 20, 15], 120);
        for w in segs.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        let last = segs.last().expect("segments");
        let drift_ms = (last.end.0 - true_end).abs() / 90;
        assert!(drift_ms < 50, "drift {drift_ms} ms");
    }

    #[test]
    fn clock_step_is_detected_and_starts_new_run() {
        let mut m = WallMapper::new();
        let t0 = 5_000 * SEC;
        for i in 0..900 {
            m.observe(i * 6000, Time90k(t0 + i * 6000));
        }
        let a = m.close_segment(0, 900 * 6000).expect("a");
        assert!(!a.clock_jump);
        // Local clock stepped back one hour.
        for i in 900..1800 {
            m.observe(i * 6000, Time90k(t0 + i * 6000 - 3600 * SEC));
        }
        let b = m.close_segment(900 * 6000, 1800 * 6000).expect("b");
        assert!(b.clock_jump);
        assert_eq!(b.start, a.end);
        for i in 1800..2700 {
            m.observe(i * 6000, Time90k(t0 + i * 6000 - 3600 * SEC));
        }
        let c = m.close_segment(1800 * 6000, 2700 * 6000).expect("c");
        assert!(!c.clock_jump);
        assert_eq!(c.start.0, t0 + 1800 * 6000 - 3600 * SEC);
    }

    #[test]
    fn close_without_frames_is_none() {
        assert_eq!(WallMapper::new().close_segment(0, 10), None);
    }

    proptest! {
        #[test]
        fn nudge_never_exceeds_500_ppm(ppm in -2000i64..2000, delays in proptest::collection::vec(0i64..2000, 1..20)) {
            let (segs, _) = simulate(ppm, &delays, 5);
            for s in &segs[1..] {
                let wall = s.end.0 - s.start.0;
                let media = 60 * SEC;
                prop_assert!((wall - media).abs() <= media * MAX_NUDGE_PPM / 1_000_000);
            }
            for w in segs.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start);
            }
        }
    }
}
