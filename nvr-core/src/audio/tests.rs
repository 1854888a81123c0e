//! The audio aligner: exact conversion of ticks, and a simulated 24-hour run of a camera whose
//! clock is 500 ppm off, in which audio and video stay within 100 ms of each other.

use super::*;
use crate::wall::WallMapper;

#[test]
fn ticks_convert_exactly_from_the_start_of_the_run() {
    assert_eq!(ticks_to_90k(8_000, 8_000), 90_000);
    assert_eq!(ticks_to_90k(160, 8_000), 1_800);
    assert_eq!(ticks_to_90k(1_024, 48_000), 1_920);
    // 1024 samples at 44.1 kHz are 2089.796 ticks: rounded once, not per packet.
    assert_eq!(ticks_to_90k(1_024, 44_100), 2_090);
    assert_eq!(ticks_to_90k(1_024 * 1_000_000, 44_100), 2_089_795_918);
    assert_eq!(ticks_to_90k(-8_000, 8_000), -90_000);
    assert_eq!(ticks_to_90k(5, 0), 0);
}

#[test]
fn no_audio_place_before_video_and_the_offset_is_fixed_after_the_window() {
    let mut a = AudioAligner::new(8_000);
    assert_eq!(a.observe_audio(1_000, Time90k(500_000)), None);
    a.observe_video(0, Time90k(400_000));
    // Audio arrived 100_000 ticks after the video's start: it sits there.
    assert_eq!(a.media_time_90k(1_000), Some(100_000));
    assert!(!a.is_fixed());
    // A faster packet within the window improves the estimate...
    assert_eq!(
        a.observe_audio(1_160, Time90k(500_000 + 1_800 - 900)),
        Some(100_000 - 900 + 1_800)
    );
    // ... and once 2 s of audio went by, nothing moves it.
    a.observe_audio(1_000 + 16_000, Time90k(500_000 + 180_000));
    assert!(a.is_fixed());
    let fixed = a.media_time_90k(1_000);
    a.observe_video(180_000, Time90k(400_000 + 180_000 - 5_000));
    a.observe_audio(1_000 + 16_160, Time90k(500_000 + 181_800 - 50_000));
    assert_eq!(a.media_time_90k(1_000), fixed);
}

/// A deterministic network delay in 90 kHz ticks: mostly 5-50 ms, one packet in 40 crossing
/// with 1 ms (a LAN with some queueing).
struct Jitter(u64);

impl Jitter {
    fn next_90k(&mut self) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = (self.0 >> 33) as i64;
        if r % 40 == 0 { 90 } else { 450 + r % 4_050 }
    }
}

/// A closed segment: media span and wall span.
#[derive(Clone, Copy, Debug)]
struct Placed {
    media: (i64, i64),
    wall: (i64, i64),
}

/// Where media time `m` of the run lies in wall time: inside its segment, in proportion.
fn wall_of(segments: &[Placed], m: i64) -> i64 {
    let s = segments
        .iter()
        .find(|s| s.media.0 <= m && m < s.media.1)
        .unwrap_or_else(|| panic!("media time {m} is in no segment"));
    let (ms, me) = s.media;
    let (ws, we) = s.wall;
    let frac = i128::from(m - ms) * i128::from(we - ws) / i128::from(me - ms);
    ws + frac as i64
}

/// What a simulated run found: the largest A/V offset seen at the hourly checks (ms), and the
/// offset at the end (ms).
struct RunResult {
    max_offset_ms: f64,
    end_offset_ms: f64,
}

/// Simulates `hours` of a camera whose one oscillator runs `ppm` fast (negative: slow),
/// sending 10 fps video and `samples_per_packet`-sample audio packets at `rate_hz`, each
/// packet delayed by [`Jitter`], recorded in 60 s segments placed by [`WallMapper`]. Audio
/// media times come from `place_audio` (the aligner, or a strawman). At each hour, the
/// video frame captured then and the audio sample captured at the same instant are placed in
/// wall time and compared.
fn simulate(
    hours: i64,
    ppm: i64,
    rate_hz: u32,
    samples_per_packet: i64,
    place_audio: &mut dyn FnMut(&mut AudioAligner, i64, i64, Time90k) -> Option<i64>,
) -> RunResult {
    const FRAME_90K: i64 = 9_000; // 10 fps, camera time.
    const SEGMENT_90K: i64 = 60 * 90_000;
    // Audio RTP timestamps start anywhere; the video's media time is its RTP timestamp minus
    // the run's first (what the recorder's timeline counts), so it starts at 0.
    let audio_rtp0 = 987_654_i64;
    let local_offset_90k = 1_000_000_000_000_i64; // recorder clock minus real time.
    // Real time (90 kHz) of camera time `c` (90 kHz): the camera counts (1 + ppm) fast.
    let real_of_camera =
        |c: i64| -> i64 { (i128::from(c) * 1_000_000 / i128::from(1_000_000 + ppm)) as i64 };
    let mut jitter = Jitter(42);
    let mut aligner = AudioAligner::new(rate_hz);
    let mut mapper = WallMapper::new();
    let mut segments: Vec<Placed> = Vec::new();
    let mut segment_start = 0_i64;
    // Audio packets are interleaved with the frames by capture time.
    let mut packet = 0_i64;
    let audio_camera_90k = |p: i64| ticks_to_90k(p * samples_per_packet, rate_hz);
    let end_camera_90k = hours * 3_600 * 90_000 + 2 * SEGMENT_90K;
    let mut frame = 0_i64;
    while frame * FRAME_90K < end_camera_90k {
        let c = frame * FRAME_90K;
        while audio_camera_90k(packet) <= c {
            let ac = audio_camera_90k(packet);
            let received = Time90k(real_of_camera(ac) + local_offset_90k + jitter.next_90k());
            let rtp = audio_rtp0 + packet * samples_per_packet;
            place_audio(&mut aligner, rtp, packet, received);
            packet += 1;
        }
        let media = c;
        let received = Time90k(real_of_camera(c) + local_offset_90k + jitter.next_90k());
        if media - segment_start >= SEGMENT_90K {
            let w = mapper.close_segment(segment_start, media).expect("frames");
            assert!(!w.clock_jump, "no clock jump in a steady run");
            segments.push(Placed {
                media: (segment_start, media),
                wall: (w.start.0, w.end.0),
            });
            segment_start = media;
        }
        mapper.observe(media, received);
        aligner.observe_video(media, received);
        frame += 1;
    }
    let mut offsets_ms = Vec::new();
    for hour in 0..=hours {
        // The first check is after the alignment window.
        let c = (hour * 3_600 * 90_000).max(10 * 90_000);
        let real = real_of_camera(c);
        // The audio sample the camera captured at that instant, on its audio clock.
        let camera_audio_90k = i128::from(real) * i128::from(1_000_000 + ppm) / 1_000_000;
        let sample = (camera_audio_90k * i128::from(rate_hz) / 90_000) as i64;
        let packet = sample / samples_per_packet;
        let within = ticks_to_90k(sample - packet * samples_per_packet, rate_hz);
        let audio_media = place_audio(
            &mut aligner,
            audio_rtp0 + packet * samples_per_packet,
            packet,
            Time90k(i64::MAX),
        )
        .expect("placed")
            + within;
        let offset_90k = wall_of(&segments, audio_media) - wall_of(&segments, c);
        offsets_ms.push(offset_90k as f64 / 90.0);
    }
    RunResult {
        max_offset_ms: offsets_ms.iter().fold(0.0_f64, |m, o| m.max(o.abs())),
        end_offset_ms: *offsets_ms.last().expect("checks"),
    }
}

/// The aligner as the recorder uses it: every packet observed, in arrival order; a check
/// (arrival `i64::MAX`) only asks where a timestamp sits.
fn aligner_places(a: &mut AudioAligner, rtp: i64, _packet: i64, received: Time90k) -> Option<i64> {
    if received.0 == i64::MAX {
        a.media_time_90k(rtp)
    } else {
        a.observe_audio(rtp, received)
    }
}

#[test]
fn audio_stays_in_sync_for_24_hours_with_the_camera_clock_500_ppm_off() {
    for (ppm, rate_hz, samples) in [
        (500, 8_000, 160),     // G.711, 20 ms packets, camera fast
        (-500, 8_000, 160),    // camera slow
        (500, 48_000, 1_024),  // AAC at 48 kHz
        (-500, 44_100, 1_024), // AAC at 44.1 kHz: 2089.8 ticks per frame
    ] {
        let r = simulate(24, ppm, rate_hz, samples, &mut aligner_places);
        println!(
            "{ppm} ppm, {rate_hz} Hz: A/V offset at 24 h {:.1} ms, largest hourly {:.1} ms",
            r.end_offset_ms, r.max_offset_ms
        );
        assert!(
            r.max_offset_ms < 100.0,
            "{ppm} ppm, {rate_hz} Hz: A/V offset reached {:.1} ms",
            r.max_offset_ms
        );
    }
}

#[test]
fn the_simulation_sees_drift_when_audio_adds_up_rounded_packet_durations() {
    // The strawman: each packet placed one rounded packet duration after the one before
    // (2090 ticks for 2089.8): 0.2 ticks a packet, 43 packets a second, 8 s a day.
    let mut strawman = |a: &mut AudioAligner, rtp: i64, packet: i64, received: Time90k| {
        if received.0 != i64::MAX {
            a.observe_audio(rtp, received);
        }
        let first = a.media_time_90k(rtp - packet * 1_024)?;
        Some(first + packet * ticks_to_90k(1_024, 44_100))
    };
    let r = simulate(24, 500, 44_100, 1_024, &mut strawman);
    println!("strawman: A/V offset at 24 h {:.1} ms", r.end_offset_ms);
    assert!(
        r.end_offset_ms.abs() > 1_000.0,
        "summing rounded durations drifts by seconds a day, yet the simulation saw {:.1} ms",
        r.end_offset_ms
    );
}
