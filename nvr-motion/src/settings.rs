//! A camera's motion settings (on or off, sensitivity 1-10, cells to ignore) and what they
//! mean for the detector: the threshold, the minimum blob area, the background's time constant
//! and the global-change guard. The defaults follow Frigate's, which are tuned on many real
//! cameras (threshold 30 levels, contour area 10 px on a ~100 px high picture, background
//! alpha 0.01 at 5 fps, 80% of the picture changing = lightning or a day/night switch).

use nvr_storage::MotionSettingsRow;
use nvr_storage::motion::CellMask;

/// Sensitivity when the camera has none set: the threshold of 30 levels.
pub const DEFAULT_SENSITIVITY: u8 = 5;
/// The range of sensitivities.
pub const SENSITIVITY_RANGE: std::ops::RangeInclusive<u8> = 1..=10;

/// The background's time constant: a change that stays (a parked car, a shadow) stops
/// counting as motion after about two of these. Frigate's alpha 0.01 per picture at 5 fps is
/// a time constant of 20 s.
pub const BACKGROUND_TIME_CONSTANT_SECS: u32 = 20;

/// A change that stays (see [`PERSISTENT_CHANGE_SECS`]) joins the background with this time
/// constant: ~170 levels fall under the threshold in two of them.
pub const FAST_TIME_CONSTANT_SECS: u32 = 1;
/// After the background starts (or starts again) nothing counts as motion for this long, and
/// the background becomes each pixel's median over its pictures: what passed through meanwhile
/// (a person walking by as analysis starts), or stood in the first picture and left, leaves no
/// ghost if it covered a pixel for under half of it. (Following the first pictures quickly
/// instead kept part of whatever passed, a ghost that lasted as long as things kept crossing
/// it.)
pub const CALIBRATION_SECS: u32 = 6;

/// A pixel that has differed from the background for this long is a change that stays (a
/// parked car, a door left open, where something stood when analysis started): it joins the
/// background at [`FAST_TIME_CONSTANT_SECS`], so the moment it changed is motion and the hour
/// after is not.
pub const PERSISTENT_CHANGE_SECS: u32 = 5;

/// Percent of the picture (outside the mask) that may change at once before the change counts
/// as a scene change (lighting, infrared switch, a camera that moved) rather than motion.
pub const GLOBAL_CHANGE_PERCENT: u8 = 80;

/// The picture height analysed: the decoded picture is shrunk by an integer factor to at
/// least this (Frigate analyses ~100 px high). 360 -> 90, 720 -> 90, 1080 -> 90, 576 -> 96.
pub const ANALYSIS_HEIGHT: u32 = 90;

/// Luma threshold (levels of 255) per sensitivity 1..=10: 4 levels a step around
/// Frigate's 30 at the default.
const THRESHOLDS: [u8; 10] = [46, 42, 38, 34, 30, 26, 22, 18, 14, 10];

/// Minimum blob area per sensitivity, in millionths of the picture: Frigate's 10 px of
/// contour area on a 177x100 picture is ~600 millionths; the least sensitive setting asks for
/// blobs four times larger, the most sensitive a sixth.
const MIN_AREA_PPM: [u32; 10] = [2400, 1700, 1200, 850, 600, 450, 330, 240, 160, 100];

/// Never fewer changed pixels than this make a blob: one or two pixels are always noise.
const MIN_AREA_FLOOR_PX: u16 = 3;

/// A camera's settings as the analysis uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MotionSettings {
    pub enabled: bool,
    /// 1 (least sensitive) ..= 10.
    pub sensitivity: u8,
    /// Cells never analysed (a tree in the wind, a busy road beyond the fence).
    pub mask: CellMask,
}

impl Default for MotionSettings {
    fn default() -> Self {
        MotionSettings {
            enabled: true,
            sensitivity: DEFAULT_SENSITIVITY,
            mask: CellMask::EMPTY,
        }
    }
}

impl From<&MotionSettingsRow> for MotionSettings {
    fn from(r: &MotionSettingsRow) -> Self {
        MotionSettings {
            enabled: r.enabled,
            sensitivity: r
                .sensitivity
                .clamp(*SENSITIVITY_RANGE.start(), *SENSITIVITY_RANGE.end()),
            mask: r.mask.unwrap_or(CellMask::EMPTY),
        }
    }
}

/// The detector's parameters for one picture size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorParams {
    /// Luma difference from the background that marks a pixel changed.
    pub threshold: u8,
    /// Changed pixels a blob needs to count.
    pub min_area_px: u16,
    pub time_constant_secs: u32,
    pub fast_time_constant_secs: u32,
    pub calibration_secs: u32,
    pub persistent_change_secs: u32,
    pub global_percent: u8,
    pub mask: CellMask,
}

impl MotionSettings {
    /// What the detector uses on pictures of `width` x `height` (after shrinking).
    pub fn detector_params(&self, width: u32, height: u32) -> DetectorParams {
        let i = usize::from(
            self.sensitivity
                .clamp(*SENSITIVITY_RANGE.start(), *SENSITIVITY_RANGE.end())
                - 1,
        );
        let pixels = u64::from(width) * u64::from(height);
        let min_area = (pixels * u64::from(MIN_AREA_PPM[i])).div_ceil(1_000_000);
        DetectorParams {
            threshold: THRESHOLDS[i],
            min_area_px: u16::try_from(min_area)
                .unwrap_or(u16::MAX)
                .max(MIN_AREA_FLOOR_PX),
            time_constant_secs: BACKGROUND_TIME_CONSTANT_SECS,
            fast_time_constant_secs: FAST_TIME_CONSTANT_SECS,
            calibration_secs: CALIBRATION_SECS,
            persistent_change_secs: PERSISTENT_CHANGE_SECS,
            global_percent: GLOBAL_CHANGE_PERCENT,
            mask: self.mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_frigates() {
        let p = MotionSettings::default().detector_params(160, 90);
        assert_eq!(p.threshold, 30);
        // 600 millionths of 14,400 pixels.
        assert_eq!(p.min_area_px, 9);
        let most = MotionSettings {
            sensitivity: 10,
            ..MotionSettings::default()
        };
        assert_eq!(most.detector_params(160, 90).min_area_px, 3);
        let least = MotionSettings {
            sensitivity: 1,
            ..MotionSettings::default()
        };
        assert_eq!(least.detector_params(160, 90).min_area_px, 35);
        assert!(THRESHOLDS.windows(2).all(|w| w[0] > w[1]));
        assert!(MIN_AREA_PPM.windows(2).all(|w| w[0] > w[1]));
    }
}
