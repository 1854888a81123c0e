//! Feeds the shared replay clip into a mount's `appsrc`, looping forever with strictly
//! increasing decode timestamps (`dts = n × frame duration`). Without B-frames `pts = dts`;
//! with them each frame is presented in the slot the encoder gave it within the clip, every
//! frame a few slots later than decoded (the deepest reordering), so `pts >= dts`.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::clip::Clip;

/// If the pipeline clock is this far past the next frame's timestamp, the frame slots
/// jump forward to "now" instead of bursting out every missed frame to catch up. This
/// happens once per media: GStreamer's RTSP server holds the first frame between
/// DESCRIBE and the first PLAY. Smaller lags (a busy machine) are caught up normally.
const MAX_LAG: gst::ClockTime = gst::ClockTime::from_mseconds(500);

/// The per-media state of a replay stream: which access unit comes next and in which
/// frame slot (slot `n` has `pts = n × 1 s / fps`).
#[derive(Debug)]
pub(crate) struct Feeder {
    clip: Arc<Clip>,
    next_frame: usize,
    next_slot: u64,
    /// How many slots after its decode slot a frame presented in order is presented: the
    /// most any B-frame of the clip is presented before its decode slot (0 without them).
    presentation_delay: u64,
}

impl Feeder {
    /// A feeder that starts at the clip's first (key) frame, in slot 0.
    pub fn new(clip: Arc<Clip>) -> Self {
        let presentation_delay = clip
            .reorder_slots
            .iter()
            .map(|&d| d.min(0).unsigned_abs())
            .max()
            .unwrap_or(0);
        Self {
            clip,
            next_frame: 0,
            next_slot: 0,
            presentation_delay,
        }
    }

    /// Start time of frame slot `slot`, computed without accumulating rounding errors.
    fn slot_pts(&self, slot: u64) -> gst::ClockTime {
        let ns = u128::from(slot) * 1_000_000_000 / u128::from(self.clip.fps.max(1));
        gst::ClockTime::from_nseconds(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The first slot starting at or after `time`.
    fn slot_at(&self, time: gst::ClockTime) -> u64 {
        let fps = u128::from(self.clip.fps.max(1));
        let slot = (u128::from(time.nseconds()) * fps).div_ceil(1_000_000_000);
        u64::try_from(slot).unwrap_or(u64::MAX)
    }

    /// The next access unit, stamped for the slot it plays in. `now` is the pipeline's
    /// current running time, if it has a clock.
    pub fn next_buffer(&mut self, now: Option<gst::ClockTime>) -> Option<gst::Buffer> {
        let template = self.clip.frames.get(self.next_frame)?;
        let mut slot = self.next_slot;
        if let Some(now) = now
            && now > self.slot_pts(slot) + MAX_LAG
        {
            let skip_to = self.slot_at(now);
            tracing::debug!(
                from = slot,
                to = skip_to,
                "replay fell behind; skipping ahead"
            );
            slot = skip_to;
        }
        let dts = self.slot_pts(slot);
        let reorder = self
            .clip
            .reorder_slots
            .get(self.next_frame)
            .copied()
            .unwrap_or(0);
        // Never before the decode slot: the delay is the most any frame is presented early.
        let presented_slot = (slot + self.presentation_delay).saturating_add_signed(reorder);
        let pts = self.slot_pts(presented_slot);
        // A shallow copy: the encoded bytes are shared, only the metadata is new.
        let mut buffer = template.copy();
        {
            let buffer = buffer.make_mut();
            buffer.set_pts(pts);
            buffer.set_dts(dts);
            buffer.set_duration(self.slot_pts(presented_slot + 1) - pts);
            buffer.set_offset(gst::ffi::GST_BUFFER_OFFSET_NONE);
            buffer.set_offset_end(gst::ffi::GST_BUFFER_OFFSET_NONE);
            buffer.unset_flags(gst::BufferFlags::DISCONT);
        }
        self.next_slot = slot + 1;
        self.next_frame = (self.next_frame + 1) % self.clip.frames.len();
        Some(buffer)
    }

    /// The `need-data` handler: pushes exactly one access unit.
    pub fn feed(&mut self, src: &gst_app::AppSrc) {
        let Some(buffer) = self.next_buffer(src.current_running_time()) else {
            return;
        };
        if let Err(err) = src.push_buffer(buffer) {
            // Flushing: the media is shutting down.
            tracing::debug!(?err, "appsrc refused a buffer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clip of 3 GOPs of 2 frames at 10 fps.
    fn clip() -> Arc<Clip> {
        gst::init().expect("GStreamer initialises");
        let frames: Vec<gst::Buffer> = (0..6)
            .map(|i| {
                let mut b = gst::Buffer::from_slice(vec![0u8, 0, 1, i]);
                if i % 2 == 1 {
                    b.make_mut().set_flags(gst::BufferFlags::DELTA_UNIT);
                }
                b
            })
            .collect();
        Arc::new(Clip {
            caps: gst::Caps::new_empty_simple("video/x-h264"),
            reorder_slots: vec![0; frames.len()],
            frames,
            fps: 10,
        })
    }

    #[test]
    fn b_frames_are_presented_in_their_slots_after_their_decode_time() {
        // I0 P3 B1 B2, looped: decode slots 0 1 2 3, presentation slots 0 3 1 2 (+ 1 delay).
        let base = clip();
        let clip = Arc::new(Clip {
            caps: base.caps.clone(),
            frames: base.frames[..4].to_vec(),
            reorder_slots: vec![0, 2, -1, -1],
            fps: 10,
        });
        let mut feeder = Feeder::new(clip);
        let ms = gst::ClockTime::from_mseconds;
        let mut got = Vec::new();
        for _ in 0..8 {
            let b = feeder.next_buffer(None).expect("clip is not empty");
            assert!(b.pts() >= b.dts(), "{b:?}");
            got.push((b.dts().expect("dts"), b.pts().expect("pts")));
        }
        let want: Vec<_> = [
            (0, 1),
            (1, 4),
            (2, 2),
            (3, 3),
            (4, 5),
            (5, 8),
            (6, 6),
            (7, 7),
        ]
        .iter()
        .map(|&(d, p)| (ms(100 * d), ms(100 * p)))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn timestamps_increase_across_loops() {
        let clip = clip();
        let mut feeder = Feeder::new(Arc::clone(&clip));
        let mut last = None;
        for n in 0..20u64 {
            let b = feeder.next_buffer(None).expect("clip is not empty");
            let pts = b.pts().expect("stamped");
            assert_eq!(pts, gst::ClockTime::from_mseconds(100 * n));
            assert_eq!(b.duration(), Some(gst::ClockTime::from_mseconds(100)));
            assert!(last.is_none_or(|l| pts > l));
            last = Some(pts);
            let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
            assert_eq!(key, n % 2 == 0, "frame {n}");
            let map = b.map_readable().expect("readable");
            assert_eq!(
                map[3],
                u8::try_from(n % 6).expect("small"),
                "loops over the clip"
            );
        }
        // The template buffers are untouched.
        assert_eq!(clip.frames[0].pts(), None);
    }

    #[test]
    fn skips_ahead_instead_of_bursting() {
        let mut feeder = Feeder::new(clip());
        let first = feeder.next_buffer(Some(gst::ClockTime::ZERO));
        assert_eq!(first.and_then(|b| b.pts()), Some(gst::ClockTime::ZERO));
        // A small lag is caught up frame by frame.
        let second = feeder.next_buffer(Some(gst::ClockTime::from_mseconds(300)));
        assert_eq!(
            second.and_then(|b| b.pts()),
            Some(gst::ClockTime::from_mseconds(100))
        );
        // A long stall jumps to the next slot after "now".
        let third = feeder.next_buffer(Some(gst::ClockTime::from_mseconds(2050)));
        assert_eq!(
            third.and_then(|b| b.pts()),
            Some(gst::ClockTime::from_mseconds(2100))
        );
        let fourth = feeder.next_buffer(None);
        assert_eq!(
            fourth.and_then(|b| b.pts()),
            Some(gst::ClockTime::from_mseconds(2200))
        );
    }
}
