//! Puts a camera's audio on its video's media timeline, so the two stay in sync however long a
//! run lasts: audio RTP timestamps (at the codec's clock rate) become 90 kHz media times of the
//! video's clock, converted from the run's first audio timestamp each time (never by adding up
//! rounded packet durations), offset once by how the two streams' clocks relate.
//!
//! How the offset is found: a camera stamps audio and video with two RTP clocks that start at
//! random values. Each packet's `received - media time` is the streams' offset plus its network
//! delay, and the smallest over many packets is the offset plus the fastest delay, which is
//! near the true one for both streams (the same estimator that places a run in wall time, see
//! `wall.rs`). [`AudioAligner`] takes both minimums over the first [`ALIGN_WINDOW_90K`] of the
//! audio and then fixes the offset for the rest of the run: a moving offset would move audio
//! samples against the pictures. The camera's one oscillator drives both clocks, so an error
//! of its rate (ppm) stretches both alike and never shifts one against the other; the wall
//! mapping of the run (which nudges segments by up to 500 ppm) then places both together.

use crate::time::Time90k;

/// How long, in audio media time (90 kHz), the aligner watches both streams before fixing the
/// offset: 2 s, about 100 audio packets and 30 video frames, enough for one of each to cross a
/// LAN with no queueing delay.
pub const ALIGN_WINDOW_90K: i64 = 2 * 90_000;

/// Converts a count of audio clock ticks (`ticks` at `rate_hz`) to 90 kHz, rounded to the
/// nearest tick. Exact for any run length: the caller passes ticks since the run's start.
pub fn ticks_to_90k(ticks: i64, rate_hz: u32) -> i64 {
    if rate_hz == 0 {
        return 0;
    }
    let rate = i128::from(rate_hz);
    let scaled = i128::from(ticks) * 90_000;
    // Round half away from zero.
    let rounded = if scaled >= 0 {
        (scaled + rate / 2) / rate
    } else {
        (scaled - rate / 2) / rate
    };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

/// One run's alignment of audio to video: feed it the video frames' and audio packets' arrival
/// (`observe_*`), and ask where each audio packet sits on the video's media timeline
/// ([`AudioAligner::media_time_90k`]).
#[derive(Clone, Debug)]
pub struct AudioAligner {
    rate_hz: u32,
    /// The run's first audio RTP timestamp (extended, at `rate_hz`).
    first_audio_ticks: Option<i64>,
    /// min(received - video media time) so far.
    video_min_offset_90k: Option<i64>,
    /// min(received - audio media time since its first packet) so far.
    audio_min_offset_90k: Option<i64>,
    /// Where the audio's first packet sits on the video's timeline, once fixed.
    fixed_start_90k: Option<i64>,
}

impl AudioAligner {
    /// An aligner for audio whose RTP clock runs at `rate_hz` (8000 for G.711, the sample rate
    /// for AAC).
    pub fn new(rate_hz: u32) -> Self {
        Self {
            rate_hz,
            first_audio_ticks: None,
            video_min_offset_90k: None,
            audio_min_offset_90k: None,
            fixed_start_90k: None,
        }
    }

    /// The audio clock rate in Hz.
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Notes a video frame's media time (90 kHz, the recorder's timeline) and arrival.
    pub fn observe_video(&mut self, media_time_90k: i64, received: Time90k) {
        let offset = received.0.saturating_sub(media_time_90k);
        self.video_min_offset_90k =
            Some(self.video_min_offset_90k.map_or(offset, |m| m.min(offset)));
    }

    /// Notes an audio packet's RTP timestamp (extended, at the audio rate) and arrival, and
    /// returns where it sits on the video's media timeline, or `None` while no video frame has
    /// been seen (audio before the first picture has nothing to be in sync with).
    pub fn observe_audio(&mut self, rtp_ticks: i64, received: Time90k) -> Option<i64> {
        let first = *self.first_audio_ticks.get_or_insert(rtp_ticks);
        let since_first_90k = ticks_to_90k(rtp_ticks.saturating_sub(first), self.rate_hz);
        if self.fixed_start_90k.is_none() {
            let offset = received.0.saturating_sub(since_first_90k);
            self.audio_min_offset_90k =
                Some(self.audio_min_offset_90k.map_or(offset, |m| m.min(offset)));
            if since_first_90k >= ALIGN_WINDOW_90K {
                self.fixed_start_90k = self.start_estimate_90k();
            }
        }
        self.media_time_90k(rtp_ticks)
    }

    /// Where the audio packet stamped `rtp_ticks` sits on the video's media timeline: the
    /// first packet's place (fixed after the alignment window, the best estimate before it)
    /// plus the exact conversion of the ticks since it.
    pub fn media_time_90k(&self, rtp_ticks: i64) -> Option<i64> {
        let first = self.first_audio_ticks?;
        let start = self.fixed_start_90k.or_else(|| self.start_estimate_90k())?;
        Some(start.saturating_add(ticks_to_90k(rtp_ticks.saturating_sub(first), self.rate_hz)))
    }

    /// Whether the offset is fixed for the rest of the run.
    pub fn is_fixed(&self) -> bool {
        self.fixed_start_90k.is_some()
    }

    /// The first audio packet's place on the video timeline: the audio's offset minus the
    /// video's (both plus their fastest network delay, which cancel).
    fn start_estimate_90k(&self) -> Option<i64> {
        Some(
            self.audio_min_offset_90k?
                .saturating_sub(self.video_min_offset_90k?),
        )
    }
}

#[cfg(test)]
mod tests;
