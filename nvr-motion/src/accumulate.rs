//! From analysed pictures to index spans: which decoded pictures are analysed (at most `fps`
//! per second of wall time), and the per-second folding of their outcomes (union of cells,
//! highest score) into a [`MotionSpan`] of uninterrupted analysis, cut at whole seconds when
//! written out and broken where the analysis was interrupted.

use nvr_storage::motion::{CellMask, MotionSecond, MotionSpan, TICKS_PER_SEC, second_of};

use crate::detector::Outcome;

/// Picks the pictures to analyse: the first of each `1/fps` slot of wall time, so the choice
/// depends only on timestamps (the same footage always gives the same pictures).
#[derive(Clone, Debug)]
pub struct Sampler {
    period_90k: i64,
    last_slot: Option<i64>,
}

impl Sampler {
    /// Every picture when `fps` is 0.
    pub fn new(fps: u32) -> Sampler {
        Sampler {
            period_90k: if fps == 0 {
                1
            } else {
                TICKS_PER_SEC / i64::from(fps)
            },
            last_slot: None,
        }
    }

    /// The time between analysed pictures.
    pub fn period_90k(&self) -> i64 {
        self.period_90k
    }

    pub fn want(&mut self, wall_90k: i64) -> bool {
        let slot = wall_90k.div_euclid(self.period_90k);
        if self.last_slot.is_some_and(|s| slot <= s) {
            return false;
        }
        self.last_slot = Some(slot);
        true
    }
}

/// A span being built.
#[derive(Clone, Debug)]
struct Open {
    start_90k: i64,
    frames: u32,
    skipped: u32,
    seconds: Vec<MotionSecond>,
    /// The second of the last analysed picture, with what it showed so far (score 0 and no
    /// cells: nothing, or only a scene change if `scene_change`).
    current: i64,
    current_cells: CellMask,
    current_score: u8,
    scene_change: bool,
    last_wall_90k: i64,
    interval_90k: i64,
}

impl Open {
    /// Moves the current second into `seconds` if it showed anything.
    fn close_current(&mut self) {
        if self.current_score > 0 {
            self.seconds.push(MotionSecond {
                second: self.current,
                cells: self.current_cells,
                score: self.current_score,
            });
        } else if self.scene_change {
            self.seconds.push(MotionSecond {
                second: self.current,
                cells: CellMask::EMPTY,
                score: 0,
            });
        }
        self.current_cells = CellMask::EMPTY;
        self.current_score = 0;
        self.scene_change = false;
    }
}

/// Folds analysed pictures into spans.
#[derive(Clone, Debug, Default)]
pub struct Accumulator {
    open: Option<Open>,
    /// Spans already ended (by a break) and not yet taken.
    ended: Vec<MotionSpan>,
}

/// A picture further than this many expected intervals after the previous one analysed
/// means pictures were missed (the analysis was behind, the camera stalled): the span ends.
const BREAK_INTERVALS: i64 = 3;
/// ... and never closer than this, whatever the interval (decoding jitter).
const MIN_BREAK_90K: i64 = TICKS_PER_SEC;

/// The most time after the previous picture analysed that a picture may come and still
/// continue its span (and stand for the time since it in the detector).
fn break_limit_90k(interval_90k: i64) -> i64 {
    (interval_90k * BREAK_INTERVALS).max(MIN_BREAK_90K)
}

/// How much time a picture analysed `since_last_90k` after the previous one stands for in the
/// detector (how far the background moves toward it, how long a change seen in both has
/// lasted): that time, or after a gap (the analysis was behind, the camera stalled) only the
/// expected `interval_90k`. Nothing was seen during a gap, so a box seen on both sides of one
/// must not count as a change that stayed: it would join the background at once and leave a
/// ghost, motion where nothing moves, for seconds after it went.
pub fn detector_step_90k(since_last_90k: i64, interval_90k: i64) -> i64 {
    if since_last_90k > break_limit_90k(interval_90k) {
        interval_90k
    } else {
        since_last_90k
    }
}

impl Accumulator {
    /// Adds a picture analysed at `wall_90k`, expected about `interval_90k` after the one
    /// before (the analysis period, or the key frame interval).
    pub fn add(&mut self, wall_90k: i64, interval_90k: i64, outcome: Outcome) {
        let second = second_of(wall_90k);
        if let Some(o) = &self.open
            && (wall_90k <= o.last_wall_90k
                || wall_90k - o.last_wall_90k > break_limit_90k(interval_90k))
        {
            self.end_span();
        }
        let o = self.open.get_or_insert_with(|| Open {
            start_90k: wall_90k,
            frames: 0,
            skipped: 0,
            seconds: Vec::new(),
            current: second,
            current_cells: CellMask::EMPTY,
            current_score: 0,
            scene_change: false,
            last_wall_90k: wall_90k,
            interval_90k,
        });
        if second != o.current {
            o.close_current();
            o.current = second;
        }
        o.frames += 1;
        o.last_wall_90k = wall_90k;
        o.interval_90k = interval_90k;
        match outcome {
            Outcome::Motion { cells, score } => {
                o.current_cells = o.current_cells.union(&cells);
                o.current_score = o.current_score.max(score);
            }
            Outcome::SceneChange => o.scene_change = true,
            Outcome::Started | Outcome::Still => {}
        }
    }

    /// Counts pictures that were not analysed because the analysis was behind.
    pub fn skipped(&mut self, n: u32) {
        if let Some(o) = &mut self.open {
            o.skipped = o.skipped.saturating_add(n);
        }
    }

    /// Ends the open span after its last picture (the analysis was interrupted).
    pub fn end_span(&mut self) {
        if let Some(mut o) = self.open.take() {
            o.close_current();
            let end = o.last_wall_90k + o.interval_90k.max(1);
            self.ended.push(MotionSpan {
                start_90k: o.start_90k,
                end_90k: end,
                frames: o.frames,
                skipped: o.skipped,
                seconds: o.seconds,
            });
        }
    }

    /// The spans ready to be written: those ended, and the whole seconds of the open span
    /// before the second being analysed (the open span then continues from there).
    pub fn take(&mut self) -> Vec<MotionSpan> {
        let mut out = std::mem::take(&mut self.ended);
        if let Some(o) = &mut self.open {
            let cut = o.current * TICKS_PER_SEC;
            if cut > o.start_90k {
                out.push(MotionSpan {
                    start_90k: o.start_90k,
                    end_90k: cut,
                    frames: std::mem::take(&mut o.frames),
                    skipped: std::mem::take(&mut o.skipped),
                    seconds: std::mem::take(&mut o.seconds),
                });
                o.start_90k = cut;
            }
        }
        out
    }

    /// Ends the open span and returns everything.
    pub fn take_all(&mut self) -> Vec<MotionSpan> {
        self.end_span();
        std::mem::take(&mut self.ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = TICKS_PER_SEC;
    const P: i64 = S / 5;

    fn motion(r: usize, c: usize, score: u8) -> Outcome {
        let mut cells = CellMask::EMPTY;
        cells.set(r, c);
        Outcome::Motion { cells, score }
    }

    #[test]
    fn the_sampler_takes_one_picture_per_slot() {
        let mut s = Sampler::new(5);
        // 15 fps input: pictures every 6000 ticks; slots of 18000.
        let taken: Vec<i64> = (0..15).map(|i| i * 6000).filter(|&t| s.want(t)).collect();
        assert_eq!(taken, vec![0, 18000, 36000, 54000, 72000]);
        assert!(!s.want(72_000), "never twice in a slot, nor backwards");
    }

    #[test]
    fn seconds_fold_and_spans_cut_at_whole_seconds() {
        let mut a = Accumulator::default();
        let t0 = 1000 * S + S / 2;
        a.add(t0, P, Outcome::Started);
        a.add(t0 + P, P, motion(1, 1, 10));
        a.add(t0 + 2 * P, P, motion(2, 2, 30)); // second 1000 ends at 1001.0
        a.add(t0 + 3 * P, P, Outcome::Still); // 1001.1
        a.add(t0 + 4 * P, P, Outcome::SceneChange); // 1001.3
        let spans = a.take();
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].start_90k, spans[0].end_90k), (t0, 1001 * S));
        assert_eq!(spans[0].frames, 5);
        assert_eq!(spans[0].seconds.len(), 1);
        assert_eq!(spans[0].seconds[0].second, 1000);
        assert_eq!(spans[0].seconds[0].score, 30);
        assert_eq!(spans[0].seconds[0].cells.count(), 2);
        // A long gap ends the span after its last picture; the next starts afresh.
        a.add(t0 + 20 * S, P, motion(0, 0, 5));
        let spans = a.take_all();
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].start_90k, spans[0].end_90k),
            (1001 * S, t0 + 4 * P + P)
        );
        assert_eq!(spans[0].seconds[0].score, 0, "the scene change is kept");
        assert_eq!(spans[1].start_90k, t0 + 20 * S);
        assert_eq!(spans[1].seconds[0].second, 1020);
    }

    #[test]
    fn a_gap_stands_for_one_interval_in_the_detector() {
        assert_eq!(detector_step_90k(P, P), P);
        assert_eq!(
            detector_step_90k(S, P),
            S,
            "jitter up to a second is time that passed"
        );
        assert_eq!(detector_step_90k(6 * S, P), P);
        // Key frames 2 s apart: 6 s is three intervals, still no gap; 7 s is one.
        assert_eq!(detector_step_90k(6 * S, 2 * S), 6 * S);
        assert_eq!(detector_step_90k(7 * S, 2 * S), 2 * S);
    }
}
