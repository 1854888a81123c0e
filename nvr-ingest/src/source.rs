//! The seam between cameras and the rest of ingest: a [`CameraSource`] connects to a camera and
//! yields frames. The real one is `retina_source::RetinaSource`; tests use scripted fakes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use futures::Stream;
use nvr_core::{CameraUrl, Time90k, VideoFrame, VideoParams};

use crate::error::IngestError;

/// Where and how to connect. `Debug` never prints the password.
#[derive(Clone)]
pub struct ConnectTarget {
    pub url: CameraUrl,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Also take the camera's audio stream (AAC or G.711), when it has one: only for a camera
    /// whose audio an admin switched on. Otherwise the recorder never sets up its audio.
    pub audio: bool,
}

impl std::fmt::Debug for ConnectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectTarget")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("audio", &self.audio)
            .finish()
    }
}

/// One frame from a camera with the parameters it was encoded with.
#[derive(Clone, Debug)]
pub struct SourceFrame {
    pub params: Arc<VideoParams>,
    pub frame: VideoFrame,
}

/// A connected session: frames until the camera stops or fails.
pub type FrameStream = Pin<Box<dyn Stream<Item = Result<SourceFrame, IngestError>> + Send>>;

/// What a camera offers, learned while connecting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionInfo {
    /// Encoding name of the video stream, e.g. `h264`.
    pub video_encoding: String,
    /// Frame rate announced in the SDP, if any.
    pub announced_fps: Option<f32>,
    /// The camera also offers an audio stream.
    pub has_audio: bool,
    /// The audio stream the recorder would take: the first one it can record (AAC, G.711),
    /// else the first offered.
    pub audio: Option<AudioOffer>,
    /// The recorder set that audio stream up (asked to, and its codec is recordable).
    pub audio_taken: bool,
}

/// An audio stream a camera offers, as its SDP describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AudioOffer {
    /// The RTP encoding name, lowercase (`mpeg4-generic` for AAC, `pcma`, `pcmu`, ...).
    pub encoding: String,
    /// `aac`, `pcma` or `pcmu` when the recorder can record it; `None` for other codecs.
    pub codec: Option<&'static str>,
    /// The RTP clock rate: the sample rate (8000 for G.711).
    pub clock_rate_hz: u32,
    /// Channels (1 when the SDP does not say).
    pub channels: u16,
}

impl AudioOffer {
    /// Describes an offered stream; `codec` is set for what the recorder can record.
    pub fn new(encoding: &str, clock_rate_hz: u32, channels: Option<u16>) -> Self {
        let encoding = encoding.to_ascii_lowercase();
        let codec = match encoding.as_str() {
            "mpeg4-generic" => Some("aac"),
            "pcma" => Some("pcma"),
            "pcmu" => Some("pcmu"),
            _ => None,
        };
        AudioOffer {
            encoding,
            codec,
            clock_rate_hz,
            channels: channels.unwrap_or(1),
        }
    }

    /// What a person reads: "AAC, 48 kHz, mono", "G.711 A-law (PCMA), 8 kHz, mono".
    pub fn describe(&self) -> String {
        let name = match self.codec {
            Some("aac") => "AAC".to_owned(),
            Some("pcma") => "G.711 A-law (PCMA)".to_owned(),
            Some("pcmu") => "G.711 µ-law (PCMU)".to_owned(),
            _ => self.encoding.to_ascii_uppercase(),
        };
        let channels = match self.channels {
            1 => "mono".to_owned(),
            2 => "stereo".to_owned(),
            n => format!("{n} channels"),
        };
        let khz = f64::from(self.clock_rate_hz) / 1000.0;
        format!("{name}, {khz} kHz, {channels}")
    }
}

/// A connected camera.
pub struct Session {
    pub info: SessionInfo,
    pub frames: FrameStream,
    /// The camera's clock against the recorder's, from its RTCP sender reports (if it sends
    /// them); set by the source while frames flow.
    pub camera_clock: Arc<CameraClockCell>,
    /// What arrives of the camera's audio, when it was set up (`ConnectTarget::audio`).
    pub audio: Arc<AudioCell>,
}

/// Counts of a session's audio, kept by the source and published by the supervisor.
#[derive(Debug, Default)]
pub struct AudioCell {
    frames: AtomicU64,
    bytes: AtomicU64,
    /// Frames over the size bound, dropped.
    oversized: AtomicU64,
    /// Packets the audio depacketizer refused (malformed), dropped.
    refused: AtomicU64,
}

/// A snapshot of an [`AudioCell`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AudioCounts {
    pub frames: u64,
    pub bytes: u64,
    pub oversized: u64,
    pub refused: u64,
}

impl AudioCell {
    /// Counts an audio frame of `size_bytes` that was taken.
    pub fn frame(&self, size_bytes: usize) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size_bytes as u64, Ordering::Relaxed);
    }

    /// Counts an audio frame dropped for its size.
    pub fn oversized(&self) {
        self.oversized.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an audio packet the depacketizer refused.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> AudioCounts {
        AudioCounts {
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            oversized: self.oversized.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// One comparison of a camera's clock with the recorder's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CameraClockSample {
    /// Camera time minus recorder time (90 kHz): positive when the camera is ahead. Taken when
    /// an RTCP sender report arrived, from the wall time it carries (NTP format) against the
    /// recorder's clock at arrival, so it includes the network's delay (milliseconds on a LAN).
    pub offset_90k: i64,
    /// When it was measured (recorder time).
    pub measured: Time90k,
}

/// The latest [`CameraClockSample`] of a session, shared between the source that reads the
/// camera's reports and the supervisor that publishes them.
#[derive(Debug, Default)]
pub struct CameraClockCell {
    offset_90k: AtomicI64,
    /// 0 until the first sample.
    measured_90k: AtomicI64,
}

impl CameraClockCell {
    pub fn set(&self, sample: CameraClockSample) {
        self.offset_90k.store(sample.offset_90k, Ordering::Relaxed);
        self.measured_90k
            .store(sample.measured.0, Ordering::Release);
    }

    /// The latest sample, if any. (A sample read while the next is stored may pair the newer
    /// offset with the older time: both are within a report's interval of each other.)
    pub fn get(&self) -> Option<CameraClockSample> {
        let measured = self.measured_90k.load(Ordering::Acquire);
        (measured != 0).then(|| CameraClockSample {
            offset_90k: self.offset_90k.load(Ordering::Relaxed),
            measured: Time90k(measured),
        })
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Something that can connect to cameras.
pub trait CameraSource: Send + Sync + 'static {
    fn connect(
        &self,
        target: &ConnectTarget,
    ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_offers_name_what_can_be_recorded() {
        let aac = AudioOffer::new("MPEG4-GENERIC", 48_000, Some(1));
        assert_eq!(
            (aac.encoding.as_str(), aac.codec),
            ("mpeg4-generic", Some("aac"))
        );
        assert_eq!(aac.describe(), "AAC, 48 kHz, mono");
        let pcma = AudioOffer::new("pcma", 8_000, None);
        assert_eq!((pcma.codec, pcma.channels), (Some("pcma"), 1));
        assert_eq!(pcma.describe(), "G.711 A-law (PCMA), 8 kHz, mono");
        assert_eq!(
            AudioOffer::new("PCMU", 8_000, Some(1)).describe(),
            "G.711 µ-law (PCMU), 8 kHz, mono"
        );
        let opus = AudioOffer::new("opus", 48_000, Some(2));
        assert_eq!(opus.codec, None);
        assert_eq!(opus.describe(), "OPUS, 48 kHz, stereo");
        assert_eq!(
            AudioOffer::new("mpeg4-generic", 44_100, Some(6)).describe(),
            "AAC, 44.1 kHz, 6 channels"
        );
    }
}
