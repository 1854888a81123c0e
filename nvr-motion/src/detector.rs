//! The motion detector: an adaptive background of a small luma picture, the pixels that
//! differ from it by more than a threshold, joined into blobs (a 3x3 dilation links pixels
//! one apart), blobs under a minimum area dropped, and the cells of the 16x16 grid that the
//! remaining blobs touch. A picture where most pixels changed at once (lightning, an infrared
//! day/night switch, a camera that moved) recalibrates the background instead of counting as
//! motion. The background starts as each pixel's median over the first seconds (no motion is
//! reported meanwhile), and a change that stays (a parked car) joins it within seconds, so
//! neither what passes as analysis starts nor what stays leaves a ghost.
//!
//! Everything is integer arithmetic on the picture's bytes, so the same pictures always give
//! the same results (re-indexing footage reproduces its index).

use nvr_media::LumaImage;
use nvr_storage::motion::{CellMask, GRID, score_from_fraction};

use crate::settings::DetectorParams;

/// Fixed-point scale of the background: 8 fractional bits, so slow adaptation (a few levels
/// over many pictures) is not lost to rounding.
const BG_SHIFT: u32 = 8;
/// Fixed-point scale of the adaptation rate: 1.0 = 1 << 16.
const ALPHA_ONE: i64 = 1 << 16;
/// While calibrating, a picture is kept for the median at most this often (5 per second) ...
const CALIBRATION_SAMPLE_90K: i64 = 18_000;
/// ... and at most this many (a 6 s calibration at 5 per second, and the first picture):
/// about 450 KiB of pictures ~90 px high while a camera calibrates, freed when it ends.
const MAX_CALIBRATION_SAMPLES: usize = 31;

/// What one picture showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The background is starting (the first pictures, or after a change of size): nothing
    /// counts as motion yet.
    Started,
    /// Nothing moved (noise and blobs under the minimum area do not count).
    Still,
    /// Motion in these cells; `score` as stored in the index (1..=255).
    Motion { cells: CellMask, score: u8 },
    /// Most of the picture changed at once: the background was reset to this picture.
    SceneChange,
}

/// The detector of one camera: its background and its settings.
#[derive(Debug)]
pub struct Detector {
    params: DetectorParams,
    width: usize,
    height: usize,
    /// The background, `<< BG_SHIFT`.
    background: Vec<i32>,
    /// The grid cell of each pixel (`row * 16 + col`), and whether the mask ignores it.
    cell_of: Vec<u8>,
    ignored: Vec<bool>,
    considered: usize,
    /// Calibration time left, 90 kHz.
    calibrating_90k: i64,
    /// The pictures kept while calibrating, one after the other; time since the last kept.
    calibration: Vec<u8>,
    since_sample_90k: i64,
    /// How long each pixel has differed from the background without a break, 90 kHz.
    streak_90k: Vec<i64>,
    // Scratch buffers reused from picture to picture.
    changed: Vec<bool>,
    dilated: Vec<bool>,
    label: Vec<u32>,
    stack: Vec<usize>,
}

impl Detector {
    pub fn new(params: DetectorParams) -> Detector {
        Detector {
            params,
            width: 0,
            height: 0,
            background: Vec::new(),
            cell_of: Vec::new(),
            ignored: Vec::new(),
            considered: 0,
            calibrating_90k: 0,
            calibration: Vec::new(),
            since_sample_90k: 0,
            streak_90k: Vec::new(),
            changed: Vec::new(),
            dilated: Vec::new(),
            label: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// Forgets the background: the next picture starts again (a new session, a gap).
    pub fn reset(&mut self) {
        self.background.clear();
    }

    fn start(&mut self, img: &LumaImage) {
        let (w, h) = (img.width as usize, img.height as usize);
        self.width = w;
        self.height = h;
        self.background = img
            .pixels
            .iter()
            .map(|&p| i32::from(p) << BG_SHIFT)
            .collect();
        self.cell_of = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                ((y * GRID / h) * GRID + x * GRID / w) as u8
            })
            .collect();
        self.ignored = self
            .cell_of
            .iter()
            .map(|&c| {
                self.params
                    .mask
                    .get(usize::from(c) / GRID, usize::from(c) % GRID)
            })
            .collect();
        self.considered = self.ignored.iter().filter(|&&i| !i).count();
        self.changed = vec![false; w * h];
        self.dilated = vec![false; w * h];
        self.label = vec![0; w * h];
        self.streak_90k = vec![0; w * h];
        self.calibrating_90k = i64::from(self.params.calibration_secs) * 90_000;
        self.calibration = img.pixels.clone();
        self.since_sample_90k = 0;
    }

    /// Keeps `img` for the calibration's median if it comes long enough after the last kept.
    /// What a gap had beyond the sampling period carries over (at most one period), so
    /// pictures that come at an uneven pace are kept at its average rate, not every other one.
    fn calibrate(&mut self, img: &LumaImage, dt_90k: i64) {
        self.since_sample_90k += dt_90k.max(0);
        let kept = self.calibration.len() / img.pixels.len().max(1);
        if self.since_sample_90k >= CALIBRATION_SAMPLE_90K && kept < MAX_CALIBRATION_SAMPLES {
            self.calibration.extend_from_slice(&img.pixels);
            self.since_sample_90k =
                (self.since_sample_90k - CALIBRATION_SAMPLE_90K).min(CALIBRATION_SAMPLE_90K - 1);
        }
    }

    /// Ends calibration: the background is each pixel's median over the pictures kept (the
    /// rounded mean of the middle two of an even number, so neither dark nor bright wins a
    /// tie), so whatever covered a pixel for under half of the calibration (someone walking
    /// through) is not part of it.
    fn finish_calibration(&mut self) {
        let n = self.background.len();
        let kept = self.calibration.len() / n.max(1);
        let mut values = [0u8; MAX_CALIBRATION_SAMPLES];
        for (i, b) in self.background.iter_mut().enumerate() {
            for (k, v) in values[..kept].iter_mut().enumerate() {
                *v = self.calibration[k * n + i];
            }
            values[..kept].sort_unstable();
            let (lo, hi) = (values[(kept.max(1) - 1) / 2], values[kept / 2]);
            *b = ((i32::from(lo) + i32::from(hi) + 1) / 2) << BG_SHIFT;
        }
        self.calibration = Vec::new();
    }

    /// The fixed-point rate at which the background moves `dt_90k` toward a picture, with a
    /// time constant of `tau_secs`. (A gap of hours is clamped before the product overflows.)
    fn alpha(dt_90k: i64, tau_secs: u32) -> i64 {
        (dt_90k.clamp(0, 1 << 40) * ALPHA_ONE / (i64::from(tau_secs) * 90_000).max(1))
            .clamp(1, ALPHA_ONE)
    }

    /// Moves the background toward `img`: at `fast` for pixels whose change has lasted, else
    /// at `slow`.
    fn follow(&mut self, img: &LumaImage, slow: i64, fast: i64) {
        let persistent = i64::from(self.params.persistent_change_secs) * 90_000;
        for ((b, &p), &streak) in self
            .background
            .iter_mut()
            .zip(&img.pixels)
            .zip(&self.streak_90k)
        {
            let target = i32::from(p) << BG_SHIFT;
            let a = if streak >= persistent { fast } else { slow };
            *b += ((i64::from(target - *b) * a) >> 16) as i32;
        }
    }

    /// Analyses one picture, `dt_90k` after the previous one analysed (which sets how far the
    /// background moves toward it).
    pub fn analyse(&mut self, img: &LumaImage, dt_90k: i64) -> Outcome {
        let n = img.pixels.len();
        if self.background.len() != n
            || self.width != img.width as usize
            || n != img.width as usize * img.height as usize
        {
            self.start(img);
            return Outcome::Started;
        }
        if self.calibrating_90k > 0 {
            self.calibrating_90k -= dt_90k.max(1);
            self.calibrate(img, dt_90k);
            if self.calibrating_90k <= 0 {
                self.finish_calibration();
            }
            return Outcome::Started;
        }
        let slow = Self::alpha(dt_90k, self.params.time_constant_secs);
        let fast = Self::alpha(dt_90k, self.params.fast_time_constant_secs);
        // 1. Changed pixels: differing from the background by at least the threshold; how long
        // each has been changing.
        let threshold = i32::from(self.params.threshold) << BG_SHIFT;
        let mut changed_count = 0usize;
        for i in 0..n {
            let d = (i32::from(img.pixels[i]) << BG_SHIFT) - self.background[i];
            let c = !self.ignored[i] && d.abs() >= threshold;
            self.changed[i] = c;
            self.streak_90k[i] = if c {
                self.streak_90k[i].saturating_add(dt_90k.max(0))
            } else {
                0
            };
            changed_count += usize::from(c);
        }
        // 2. The global guard: most of the picture changing at once is not motion.
        if self.considered > 0
            && changed_count * 100 > self.considered * usize::from(self.params.global_percent)
        {
            for (b, &p) in self.background.iter_mut().zip(&img.pixels) {
                *b = i32::from(p) << BG_SHIFT;
            }
            self.streak_90k.iter_mut().for_each(|s| *s = 0);
            return Outcome::SceneChange;
        }
        let outcome = if changed_count < usize::from(self.params.min_area_px) {
            // No blob can be large enough.
            Outcome::Still
        } else {
            self.blobs()
        };
        // 3. The background moves toward this picture at a rate set by the time constant.
        self.follow(img, slow, fast);
        outcome
    }

    /// Joins changed pixels into blobs (a 3x3 dilation, then 4-connected: pixels up to one
    /// apart join), keeps blobs of at least the minimum area (counted in changed pixels), and
    /// returns the cells they touch.
    fn blobs(&mut self) -> Outcome {
        let (w, h) = (self.width, self.height);
        // The dilation is separable: a horizontal pass into `label` (as scratch), then a
        // vertical one into `dilated`.
        for y in 0..h {
            let row = &self.changed[y * w..(y + 1) * w];
            let out = &mut self.label[y * w..(y + 1) * w];
            for x in 0..w {
                let l = x > 0 && row[x - 1];
                let r = x + 1 < w && row[x + 1];
                out[x] = u32::from(l || row[x] || r);
            }
        }
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let up = y > 0 && self.label[i - w] != 0;
                let down = y + 1 < h && self.label[i + w] != 0;
                self.dilated[i] = up || self.label[i] != 0 || down;
            }
        }
        self.label.iter_mut().for_each(|l| *l = 0);
        let mut cells = CellMask::EMPTY;
        let mut moving_px = 0usize;
        let mut next_label = 0u32;
        for seed in 0..w * h {
            if !self.dilated[seed] || self.label[seed] != 0 {
                continue;
            }
            next_label += 1;
            let mut area = 0usize;
            let mut blob_cells = CellMask::EMPTY;
            self.stack.clear();
            self.stack.push(seed);
            self.label[seed] = next_label;
            while let Some(i) = self.stack.pop() {
                if self.changed[i] {
                    area += 1;
                    let c = usize::from(self.cell_of[i]);
                    blob_cells.set(c / GRID, c % GRID);
                }
                let (x, y) = (i % w, i / w);
                let mut visit = |j: usize| {
                    if self.dilated[j] && self.label[j] == 0 {
                        self.label[j] = next_label;
                        self.stack.push(j);
                    }
                };
                if x > 0 {
                    visit(i - 1);
                }
                if x + 1 < w {
                    visit(i + 1);
                }
                if y > 0 {
                    visit(i - w);
                }
                if y + 1 < h {
                    visit(i + w);
                }
            }
            if area >= usize::from(self.params.min_area_px) {
                moving_px += area;
                cells = cells.union(&blob_cells);
            }
        }
        if cells.is_empty() {
            Outcome::Still
        } else {
            let fraction = moving_px as f64 / self.considered.max(1) as f64;
            Outcome::Motion {
                cells,
                score: score_from_fraction(fraction),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{DEFAULT_SENSITIVITY, MotionSettings};

    const W: u32 = 160;
    const H: u32 = 90;
    /// 200 ms between pictures: 5 fps.
    const DT: i64 = 18_000;

    /// A textured still background (values 60..=180).
    fn background() -> Vec<u8> {
        (0..W * H)
            .map(|i| {
                let (x, y) = (i % W, i / W);
                (60 + (x * 7 + y * 13) % 120) as u8
            })
            .collect()
    }

    fn picture(mut f: impl FnMut(u32, u32, u8) -> u8) -> LumaImage {
        let bg = background();
        LumaImage {
            width: W,
            height: H,
            pixels: (0..W * H)
                .map(|i| f(i % W, i / W, bg[i as usize]))
                .collect(),
        }
    }

    /// A dark box `bw` x `bh` at (x0, y0).
    fn with_box(x0: u32, y0: u32, bw: u32, bh: u32) -> LumaImage {
        picture(|x, y, b| {
            if (x0..x0 + bw).contains(&x) && (y0..y0 + bh).contains(&y) {
                10
            } else {
                b
            }
        })
    }

    fn detector() -> Detector {
        Detector::new(MotionSettings::default().detector_params(W, H))
    }

    /// Starts `d` on `pic` and lets it calibrate (every picture of it is `Started`).
    fn calibrated(mut d: Detector, pic: &LumaImage) -> Detector {
        assert_eq!(d.analyse(pic, DT), Outcome::Started);
        let n = i64::from(crate::settings::CALIBRATION_SECS) * 90_000 / DT;
        for _ in 0..n {
            assert_eq!(d.analyse(pic, DT), Outcome::Started);
        }
        d
    }

    #[test]
    fn a_moving_box_is_motion_in_its_cells_and_stillness_is_still() {
        let mut d = calibrated(detector(), &picture(|_, _, b| b));
        assert_eq!(d.analyse(&picture(|_, _, b| b), DT), Outcome::Still);
        // A 10x10 box in the top left corner: cells (0..=1, 0) at 160x90 (cells of 10x5.6 px).
        match d.analyse(&with_box(0, 0, 10, 10), DT) {
            Outcome::Motion { cells, score } => {
                assert!(cells.get(0, 0) && cells.get(1, 0), "{cells:?}");
                assert!(!cells.get(0, 1) && !cells.get(2, 0), "{cells:?}");
                assert_eq!(score, score_from_fraction(100.0 / f64::from(W * H)));
            }
            other => panic!("{other:?}"),
        }
        // The box leaves: the background barely moved, so the picture is still again.
        assert_eq!(d.analyse(&picture(|_, _, b| b), DT), Outcome::Still);
    }

    #[test]
    fn small_blobs_and_noise_are_not_motion() {
        let mut d = calibrated(detector(), &picture(|_, _, b| b));
        // A 2x2 box: 4 pixels, under the default minimum area.
        assert_eq!(d.analyse(&with_box(50, 50, 2, 2), DT), Outcome::Still);
        // Noise of +-20 levels everywhere (deterministic pseudo-random).
        let mut seed = 12345u32;
        for _ in 0..20 {
            let noisy = picture(|_, _, b| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let n = ((seed >> 16) % 41) as i32 - 20;
                (i32::from(b) + n).clamp(0, 255) as u8
            });
            assert_eq!(d.analyse(&noisy, DT), Outcome::Still);
        }
    }

    #[test]
    fn a_sudden_global_change_recalibrates_instead_of_counting() {
        let mut d = calibrated(detector(), &picture(|_, _, b| b));
        let bright = picture(|_, _, b| b.saturating_add(70));
        assert_eq!(d.analyse(&bright, DT), Outcome::SceneChange);
        assert_eq!(d.analyse(&bright, DT), Outcome::Still, "recalibrated");
        // Motion on the new brightness is seen again.
        let boxed = picture(|x, y, b| {
            if x < 20 && y < 20 {
                0
            } else {
                b.saturating_add(70)
            }
        });
        assert!(matches!(d.analyse(&boxed, DT), Outcome::Motion { .. }));
    }

    #[test]
    fn masked_cells_are_ignored() {
        let mut settings = MotionSettings::default();
        for r in 0..4 {
            for c in 0..4 {
                settings.mask.set(r, c);
            }
        }
        let mut d = calibrated(
            Detector::new(settings.detector_params(W, H)),
            &picture(|_, _, b| b),
        );
        assert_eq!(d.analyse(&with_box(0, 0, 30, 20), DT), Outcome::Still);
        assert!(matches!(
            d.analyse(&with_box(100, 50, 20, 20), DT),
            Outcome::Motion { .. }
        ));
    }

    /// Pictures of `pic` until it is still; how many seconds that took.
    fn secs_until_still(d: &mut Detector, pic: &LumaImage) -> f64 {
        let mut still_after = None;
        for i in 0..2000 {
            if d.analyse(pic, DT) == Outcome::Still {
                still_after = Some(i);
                break;
            }
        }
        still_after.expect("absorbed") as f64 * DT as f64 / 90_000.0
    }

    #[test]
    fn something_that_stays_becomes_background_within_seconds() {
        let mut d = calibrated(detector(), &picture(|_, _, b| b));
        let parked = with_box(60, 30, 20, 20);
        // Motion while it is new, then it joins the background: after the persistent-change
        // delay, ~170 levels fall under 30 in ln(170/30) fast time constants.
        let secs = secs_until_still(&mut d, &parked);
        let persist = f64::from(crate::settings::PERSISTENT_CHANGE_SECS);
        let fast = f64::from(crate::settings::FAST_TIME_CONSTANT_SECS);
        assert!(secs >= persist && secs < persist + 3.0 * fast, "{secs} s");
    }

    /// Analysis starting while something passes through: once it has gone, no ghost stays
    /// where it was.
    #[test]
    fn what_was_there_when_analysis_started_leaves_no_ghost() {
        let passing = with_box(60, 30, 20, 20);
        let mut d = detector();
        assert_eq!(d.analyse(&passing, DT), Outcome::Started);
        let empty = picture(|_, _, b| b);
        let mut outcomes = Vec::new();
        for _ in 0..100 {
            outcomes.push(d.analyse(&empty, DT));
        }
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Started | Outcome::Still)),
            "{outcomes:?}"
        );
    }

    /// The analysis falls behind while a box passes and sees it on both sides of the gap, at
    /// the same place (it went back and forth): that is not a change that stayed, so once the
    /// box has gone nothing is left where it was.
    #[test]
    fn a_box_seen_across_a_gap_in_analysis_leaves_no_ghost() {
        use crate::accumulate::detector_step_90k;
        let empty = picture(|_, _, b| b);
        let mut d = calibrated(detector(), &empty);
        let passing = with_box(60, 30, 20, 20);
        assert!(matches!(d.analyse(&passing, DT), Outcome::Motion { .. }));
        let gap_90k = 6 * 90_000;
        assert!(matches!(
            d.analyse(&passing, detector_step_90k(gap_90k, DT)),
            Outcome::Motion { .. }
        ));
        for i in 0..50 {
            assert_eq!(d.analyse(&empty, DT), Outcome::Still, "picture {i} after");
        }
    }

    /// Analysis starting while a box goes back and forth through the picture (it covers each
    /// pixel of its path for a third of the calibration, twice): once calibrated, the empty
    /// picture is still; and the box passing again is motion.
    #[test]
    fn what_passes_while_analysis_calibrates_leaves_no_ghost() {
        let mut d = detector();
        let n = i64::from(crate::settings::CALIBRATION_SECS) * 90_000 / DT;
        let at = |i: i64| {
            // 10 px per picture from x=20 to x=100 and back, 2 s each way.
            let step = i % 20;
            let x = 20 + 10 * if step < 10 { step } else { 20 - step } as u32;
            with_box(x - 20, 30, 20, 20)
        };
        for i in 0..=n {
            assert_eq!(d.analyse(&at(i), DT), Outcome::Started, "picture {i}");
        }
        let empty = picture(|_, _, b| b);
        for i in 0..50 {
            assert_eq!(d.analyse(&empty, DT), Outcome::Still, "picture {i} after");
        }
        assert!(matches!(d.analyse(&at(3), DT), Outcome::Motion { .. }));
    }

    /// Pictures 0.25 s and 0.167 s apart in turn (a 12 fps camera sampled at 5 per second)
    /// are kept for the median at 5 per second, not at every other picture.
    #[test]
    fn calibration_keeps_pictures_at_its_rate_whatever_their_pace() {
        let empty = picture(|_, _, b| b);
        let mut d = detector();
        assert_eq!(d.analyse(&empty, DT), Outcome::Started);
        let mut elapsed_90k = 0;
        for i in 0.. {
            let dt = if i % 2 == 0 { 22_500 } else { 15_000 };
            if elapsed_90k + dt >= 5 * 90_000 {
                break;
            }
            elapsed_90k += dt;
            assert_eq!(d.analyse(&empty, dt), Outcome::Started);
        }
        let kept = d.calibration.len() / empty.pixels.len();
        // The first picture and one per 0.2 s of the ~5 s since.
        assert!((24..=26).contains(&kept), "{kept} pictures kept");
    }

    #[test]
    fn sensitivity_sets_the_threshold() {
        let faint = picture(|x, y, b| {
            if x < 20 && y < 20 {
                b.saturating_add(20)
            } else {
                b
            }
        });
        let seen = |s: u8| {
            let settings = MotionSettings {
                sensitivity: s,
                ..MotionSettings::default()
            };
            let mut d = calibrated(
                Detector::new(settings.detector_params(W, H)),
                &picture(|_, _, b| b),
            );
            matches!(d.analyse(&faint, DT), Outcome::Motion { .. })
        };
        assert!(
            !seen(DEFAULT_SENSITIVITY),
            "20 levels are under the default 30"
        );
        assert!(seen(10));
    }
}
