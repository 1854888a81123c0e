//! When the transcoder forces the H.264 encoder to emit a key frame: at most every
//! [`MAX_KEY_INTERVAL_NS`] of presentation time, and at an input key frame once at least
//! [`MIN_KEY_INTERVAL_NS`] has passed, so output GOPs follow the camera's without doubling the
//! key-frame rate of cameras with very short GOPs. Pure bookkeeping on nanosecond timestamps.

use std::collections::VecDeque;

/// Longest allowed output GOP: a viewer joining waits at most this long for a key frame.
pub(crate) const MAX_KEY_INTERVAL_NS: u64 = 2_000_000_000;
/// Shortest output GOP that an input key frame may start.
pub(crate) const MIN_KEY_INTERVAL_NS: u64 = 1_000_000_000;
/// Input key frames remembered while they travel through the decoder; more than a few cannot
/// be in flight (the input queue is bounded), so this only guards against unbounded growth if
/// the decoder silently drops pictures.
const MAX_PENDING_INPUT_KEYS: usize = 64;

/// The key-frame schedule of one transcoder.
#[derive(Debug, Default)]
pub(crate) struct KeyPlan {
    /// Timestamps of input key frames not yet reached by the encoder's input, oldest first.
    input_keys: VecDeque<u64>,
    /// Timestamp of the last output key frame (forced or chosen by the encoder).
    last_key: Option<u64>,
}

impl KeyPlan {
    /// Notes that an input key frame with timestamp `pts` entered the pipeline.
    pub(crate) fn input_key(&mut self, pts: u64) {
        if self.input_keys.len() == MAX_PENDING_INPUT_KEYS {
            self.input_keys.pop_front();
        }
        self.input_keys.push_back(pts);
    }

    /// Called for each decoded picture with timestamp `pts` just before the encoder sees it;
    /// returns whether the encoder must make it a key frame.
    pub(crate) fn should_force(&mut self, pts: u64) -> bool {
        let mut at_input_key = false;
        while self.input_keys.front().is_some_and(|&k| k <= pts) {
            self.input_keys.pop_front();
            at_input_key = true;
        }
        let Some(last) = self.last_key else {
            // The encoder always starts with a key frame.
            self.last_key = Some(pts);
            return false;
        };
        let since = pts.saturating_sub(last);
        let force = since >= MAX_KEY_INTERVAL_NS || (at_input_key && since >= MIN_KEY_INTERVAL_NS);
        if force {
            self.last_key = Some(pts);
        }
        force
    }

    /// Notes that the encoder produced a key frame with timestamp `pts` (forced or its own).
    pub(crate) fn output_key(&mut self, pts: u64) {
        if self.last_key.is_none_or(|last| pts > last) {
            self.last_key = Some(pts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Runs `frames` pictures at `frame_ms` with input key frames every `gop` pictures and
    /// returns the indices of the forced or initial key frames.
    fn schedule(frames: u64, frame_ms: u64, gop: u64) -> Vec<u64> {
        let mut plan = KeyPlan::default();
        let mut keys = vec![];
        for i in 0..frames {
            let pts = i * frame_ms * MS;
            if i % gop == 0 {
                plan.input_key(pts);
            }
            let forced = plan.should_force(pts);
            if i == 0 {
                // The first picture only records the encoder's own initial key frame.
                assert!(!forced);
                keys.push(i);
            } else if forced {
                keys.push(i);
            }
        }
        keys
    }

    #[test]
    fn long_input_gop_gets_a_key_every_two_seconds() {
        // 15 fps, input key every 10 s: output keys at 0, 2, 4, 6, 8 s and at the input key.
        assert_eq!(
            schedule(160, 1000 / 15 + 1, 150),
            vec![0, 30, 60, 90, 120, 150]
        );
    }

    #[test]
    fn input_keys_every_second_are_followed() {
        assert_eq!(schedule(46, 1000 / 15 + 1, 15), vec![0, 15, 30, 45]);
    }

    #[test]
    fn very_short_input_gops_are_thinned() {
        // Input key every 5 frames at 15 fps (1/3 s): one output key per second at most.
        assert_eq!(schedule(46, 1000 / 15 + 1, 5), vec![0, 15, 30, 45]);
    }

    #[test]
    fn encoder_chosen_key_frames_restart_the_clock() {
        let mut plan = KeyPlan::default();
        assert!(!plan.should_force(0));
        plan.output_key(1500 * MS);
        assert!(!plan.should_force(3000 * MS));
        assert!(plan.should_force(3500 * MS));
        // An older output key does not move the clock back.
        plan.output_key(100 * MS);
        assert!(!plan.should_force(4000 * MS));
    }

    #[test]
    fn pending_input_keys_are_bounded() {
        let mut plan = KeyPlan::default();
        for i in 0..1000 {
            plan.input_key(i);
        }
        assert_eq!(plan.input_keys.len(), MAX_PENDING_INPUT_KEYS);
    }
}
