//! Output picture sizes: fitting a picture into a bounding box with its aspect ratio kept and
//! even dimensions (4:2:0 chroma subsampling needs both to be even).

/// Rounds `x` to the nearest even number, at least 2 and at most `limit` rounded down to even.
fn even_within(x: u64, limit: u64) -> u32 {
    let rounded = x.div_ceil(2) * 2;
    let limit = limit / 2 * 2;
    let v = rounded.min(limit).max(2);
    // `limit` comes from a u32, so this never saturates.
    u32::try_from(v).unwrap_or(u32::MAX - 1)
}

/// Fits `width` x `height` into `max_width` x `max_height` keeping the aspect ratio, never
/// upscaling, and returns even dimensions (the input rounded to even if it already fits).
///
/// Returns `None` if any argument is below 2 (no even picture fits).
pub(crate) fn fit_even(
    width: u32,
    height: u32,
    max_width: u32,
    max_height: u32,
) -> Option<(u32, u32)> {
    if width < 2 || height < 2 || max_width < 2 || max_height < 2 {
        return None;
    }
    let (w, h) = (u64::from(width), u64::from(height));
    let (mw, mh) = (
        u64::from(max_width.min(width)),
        u64::from(max_height.min(height)),
    );
    // Try the width as the limiting side, else the height. Products of two u32 fit in u64.
    let h_for_mw = (h * mw + w / 2) / w;
    if h_for_mw <= mh {
        Some((even_within(mw, mw), even_within(h_for_mw, mh)))
    } else {
        let w_for_mh = (w * mh + h / 2) / h;
        Some((even_within(w_for_mh, mw), even_within(mh, mh)))
    }
}

/// The size of a snapshot: unchanged if no `max_width` is given or the picture is already at
/// most that wide, else scaled down to fit `max_width` with even dimensions.
pub(crate) fn snapshot_size(width: u32, height: u32, max_width: Option<u32>) -> (u32, u32) {
    match max_width {
        Some(max) if width > max => {
            fit_even(width, height, max, u32::MAX).unwrap_or((width, height))
        }
        _ => (width, height),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_boxes() {
        assert_eq!(fit_even(1280, 720, 640, 360), Some((640, 360)));
        assert_eq!(fit_even(1280, 720, 640, 640), Some((640, 360)));
        assert_eq!(fit_even(1280, 720, 1000, 360), Some((640, 360)));
        assert_eq!(fit_even(320, 240, 160, 160), Some((160, 120)));
        assert_eq!(fit_even(1920, 1080, 640, 480), Some((640, 360)));
        // 2592x1944 (4:3) into 853x480: height-limited, 640x480.
        assert_eq!(fit_even(2592, 1944, 853, 480), Some((640, 480)));
        // Never upscales; odd sizes round to even.
        assert_eq!(fit_even(320, 240, 4000, 4000), Some((320, 240)));
        assert_eq!(fit_even(321, 241, 4000, 4000), Some((320, 240)));
        // An odd box limit is not exceeded.
        assert_eq!(fit_even(1000, 1000, 333, 333), Some((332, 332)));
        // Extreme aspect ratios keep at least 2 pixels.
        assert_eq!(fit_even(4000, 2, 100, 100), Some((100, 2)));
        assert_eq!(fit_even(0, 240, 160, 160), None);
        assert_eq!(fit_even(320, 240, 1, 160), None);
    }

    #[test]
    fn fitted_sizes_are_even_bounded_and_keep_aspect() {
        for (w, h) in [
            (1920, 1080),
            (704, 576),
            (2560, 1440),
            (352, 288),
            (1280, 960),
            (3840, 2160),
        ] {
            for (mw, mh) in [(640, 360), (320, 320), (1280, 720), (160, 90), (999, 555)] {
                let (ow, oh) = fit_even(w, h, mw, mh).expect("fits");
                assert!(
                    ow % 2 == 0 && oh % 2 == 0,
                    "{w}x{h} in {mw}x{mh}: {ow}x{oh}"
                );
                assert!(ow <= mw && oh <= mh, "{w}x{h} in {mw}x{mh}: {ow}x{oh}");
                let in_ratio = f64::from(w) / f64::from(h);
                let out_ratio = f64::from(ow) / f64::from(oh);
                assert!(
                    (in_ratio / out_ratio - 1.0).abs() < 0.03,
                    "{w}x{h} in {mw}x{mh}: {ow}x{oh}"
                );
            }
        }
    }

    #[test]
    fn snapshot_sizes() {
        assert_eq!(snapshot_size(320, 240, None), (320, 240));
        assert_eq!(snapshot_size(320, 240, Some(320)), (320, 240));
        assert_eq!(snapshot_size(321, 241, Some(400)), (321, 241));
        assert_eq!(snapshot_size(320, 240, Some(160)), (160, 120));
        assert_eq!(snapshot_size(1920, 1080, Some(241)), (240, 136));
    }
}
