//! Scenes with known motion, for testing motion analysis: a still textured picture on which,
//! during known events of each period, a dark box moves along a known path (`moving`), the
//! whole picture brightens at once (`flash`), or nothing happens but sensor noise (`noise`,
//! all the time). Pictures are drawn in Rust and fed to the encoder through an `appsrc`.
//!
//! In live mode the scene is locked to the wall clock: a period starts at every multiple of
//! `--scene-period-secs` since the Unix epoch, so a test knows in wall time when each event
//! happens without talking to the camera. In replay mode the clip is one period, looped from
//! whenever the first client connected.

use std::time::{SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// What the picture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Scene {
    /// The moving SMPTE test pattern (the default; no scene control).
    #[default]
    Pattern,
    /// Still, but for a dark box moving along [`MOVING_PATH`] during each event.
    Moving,
    /// Still, but 70 levels brighter during each event (sudden changes at its start and end).
    Flash,
    /// Still, with per-pixel noise in every picture and nothing moving.
    Noise,
}

/// Where the moving box travels, in picture coordinates `(x0, y0, x1, y1)`: the lower left
/// quarter's band. A region that misses it sees no motion.
pub const MOVING_PATH: (f64, f64, f64, f64) = (0.05, 0.6, 0.45, 0.8);

/// How much brighter the picture is during a flash, in luma levels.
pub const FLASH_LEVELS: u8 = 70;

/// Amplitude of the noise scene's per-pixel noise: uniform in +-this many levels (a dark
/// scene's sensor noise at high gain, before the camera's own denoising).
pub const NOISE_LEVELS: i32 = 12;

/// A scene with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneSpec {
    pub scene: Scene,
    pub period_secs: u32,
    /// `[start, end)` seconds into each period.
    pub events: Vec<(f64, f64)>,
}

/// Parses `a-b,c-d` (seconds, decimals allowed) into events inside `0..=period`.
pub fn parse_events(s: &str, period_secs: u32) -> Result<Vec<(f64, f64)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not START-END"))?;
        let (a, b): (f64, f64) = (
            a.trim()
                .parse()
                .map_err(|_| format!("{a:?} is not a number"))?,
            b.trim()
                .parse()
                .map_err(|_| format!("{b:?} is not a number"))?,
        );
        if !(0.0 <= a && a < b && b <= f64::from(period_secs)) {
            return Err(format!("{part:?} is not within 0..={period_secs} s"));
        }
        out.push((a, b));
    }
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    if out.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err("events overlap".into());
    }
    Ok(out)
}

/// The still background's luma at (x, y): 8x8 blocks of 60..=159, textured so an encoder
/// spends bits on it and a detector has edges to be fooled by.
fn background(x: u32, y: u32) -> u8 {
    (60 + (x / 8 * 17 + y / 8 * 29) % 100) as u8
}

/// Draws the I420 picture of `spec` at `t` seconds into its period; `frame` seeds the noise.
pub fn draw(spec: &SceneSpec, width: u32, height: u32, t: f64, frame: u64) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let luma_len = w * h;
    let mut out = vec![128u8; luma_len + 2 * (w.div_ceil(2) * h.div_ceil(2))];
    let event = spec.events.iter().find(|(a, b)| (*a..*b).contains(&t));
    let flash = spec.scene == Scene::Flash && event.is_some();
    for y in 0..h {
        for x in 0..w {
            let v = background(x as u32, y as u32);
            out[y * w + x] = if flash {
                v.saturating_add(FLASH_LEVELS)
            } else {
                v
            };
        }
    }
    if spec.scene == Scene::Moving
        && let Some(&(a, b)) = event
    {
        let (x0, y0, x1, y1) = MOVING_PATH;
        let bw = (width / 8).max(2) as f64;
        let bh = (f64::from(height) * (y1 - y0)) as usize;
        // Left to right across the path over the event, then back if it lasts long: the
        // box moves by at least a box width every second.
        let span = f64::from(width) * (x1 - x0) - bw;
        let progress = ((t - a) / (b - a).max(0.1) * 2.0).fract();
        let left = f64::from(width) * x0 + span * progress;
        let top = (f64::from(height) * y0) as usize;
        for y in top..(top + bh).min(h) {
            for x in (left as usize)..((left + bw) as usize).min(w) {
                out[y * w + x] = 20;
            }
        }
    }
    if spec.scene == Scene::Noise {
        let mut seed = frame.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for p in &mut out[..luma_len] {
            // xorshift64: cheap, deterministic per frame.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (seed % (2 * NOISE_LEVELS as u64 + 1)) as i32 - NOISE_LEVELS;
            *p = (i32::from(*p) + n).clamp(0, 255) as u8;
        }
    }
    out
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Feeds a live mount's scene `appsrc`: frame slots `n / fps`, each drawn for the wall time at
/// which it will play.
#[derive(Debug)]
pub(crate) struct LiveScene {
    spec: SceneSpec,
    width: u32,
    height: u32,
    fps: u32,
    next_slot: u64,
}

impl LiveScene {
    pub fn new(spec: SceneSpec, width: u32, height: u32, fps: u32) -> Self {
        LiveScene {
            spec,
            width,
            height,
            fps: fps.max(1),
            next_slot: 0,
        }
    }

    fn slot_pts(&self, slot: u64) -> gst::ClockTime {
        gst::ClockTime::from_nseconds(slot * 1_000_000_000 / u64::from(self.fps))
    }

    /// The `need-data` handler: draws and pushes one picture.
    pub fn feed(&mut self, src: &gst_app::AppSrc) {
        let now = src.current_running_time();
        let mut slot = self.next_slot;
        if let Some(now) = now
            && now > self.slot_pts(slot) + gst::ClockTime::from_mseconds(500)
        {
            // Held before PLAY, or a stall: jump to now rather than burst.
            slot = now.nseconds() * u64::from(self.fps) / 1_000_000_000 + 1;
        }
        let pts = self.slot_pts(slot);
        // The wall time at which this picture plays (clocksync releases it at `pts`).
        let ahead = now.map_or(0.0, |n| (pts.nseconds() as f64 - n.nseconds() as f64) / 1e9);
        let wall = unix_now() + ahead;
        let period = f64::from(self.spec.period_secs.max(1));
        let data = draw(
            &self.spec,
            self.width,
            self.height,
            wall.rem_euclid(period),
            slot,
        );
        let mut buffer = gst::Buffer::from_mut_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(pts);
            b.set_duration(self.slot_pts(slot + 1) - pts);
        }
        self.next_slot = slot + 1;
        if let Err(err) = src.push_buffer(buffer) {
            tracing::debug!(?err, "scene appsrc refused a picture");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(scene: Scene) -> SceneSpec {
        SceneSpec {
            scene,
            period_secs: 20,
            events: vec![(5.0, 9.0)],
        }
    }

    fn luma(img: &[u8], w: u32, x: f64, y: f64, h: u32) -> u8 {
        img[(y * f64::from(h)) as usize * w as usize + (x * f64::from(w)) as usize]
    }

    #[test]
    fn events_parse_and_are_checked() {
        assert_eq!(
            parse_events("8-14, 2-3.5", 30),
            Ok(vec![(2.0, 3.5), (8.0, 14.0)])
        );
        for bad in ["8", "3-2", "0-31", "1-5,4-6", "a-b"] {
            assert!(parse_events(bad, 30).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_box_moves_only_during_events_and_only_on_its_path() {
        let s = spec(Scene::Moving);
        let (w, h) = (320, 180);
        let still = draw(&s, w, h, 1.0, 0);
        assert_eq!(still, draw(&s, w, h, 12.0, 5), "still outside events");
        let a = draw(&s, w, h, 6.0, 0);
        let b = draw(&s, w, h, 7.0, 0);
        assert_ne!(a, b, "it moves");
        for img in [&a, &b] {
            for (i, (&p, &q)) in img.iter().zip(&still).enumerate().take((w * h) as usize) {
                if p != q {
                    let (x, y) = (
                        (i as u32 % w) as f64 / f64::from(w),
                        (i as u32 / w) as f64 / f64::from(h),
                    );
                    let (x0, y0, x1, y1) = MOVING_PATH;
                    assert!(
                        x >= x0 - 0.01 && x <= x1 && y >= y0 - 0.01 && y <= y1,
                        "{x},{y}"
                    );
                }
            }
        }
    }

    #[test]
    fn flashes_brighten_everything_and_noise_is_noise() {
        let (w, h) = (160, 90);
        let f = spec(Scene::Flash);
        let dark = draw(&f, w, h, 1.0, 0);
        let bright = draw(&f, w, h, 6.0, 0);
        assert_eq!(
            luma(&bright, w, 0.5, 0.5, h),
            luma(&dark, w, 0.5, 0.5, h) + FLASH_LEVELS
        );
        let n = spec(Scene::Noise);
        assert_ne!(draw(&n, w, h, 1.0, 1), draw(&n, w, h, 1.0, 2));
        assert_eq!(
            draw(&n, w, h, 1.0, 1),
            draw(&n, w, h, 1.0, 1),
            "deterministic"
        );
    }
}
