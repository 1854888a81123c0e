//! Options of the test camera ([`TestCamConfig`], [`Codec`], [`Mode`]) and their validation.

use std::fmt;
use std::net::SocketAddr;

use crate::TestCamError;
use crate::scene::{Scene, SceneSpec, parse_events};

/// Largest number of mounts one camera serves.
pub const MAX_MOUNTS: u32 = 256;
/// Highest frame rate accepted.
pub const MAX_FPS: u32 = 120;
/// Smallest accepted width or height: x264/x265 need at least one 16×16 macroblock.
pub const MIN_DIMENSION: u32 = 16;
/// Largest accepted width or height (8K UHD is 7680×4320).
pub const MAX_DIMENSION: u32 = 7680;
/// Highest bit rate accepted; x265enc's `bitrate` property tops out at 100 Mbit/s.
pub const MAX_BITRATE_KBPS: u32 = 100_000;
/// Longest accepted key frame interval, in frames.
pub const MAX_KEYINT_FRAMES: u32 = 1200;
/// Longest accepted replay clip. The clip is held in memory: bitrate × length.
pub const MAX_REPLAY_SECS: u32 = 300;
/// Most consecutive B-frames: x264's and x265's limit.
pub const MAX_BFRAMES: u32 = 16;

/// Video codec of the camera's main stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Codec {
    /// H.264 / AVC, encoded with x264.
    #[default]
    H264,
    /// H.265 / HEVC, encoded with x265.
    H265,
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::H264 => "h264",
            Self::H265 => "h265",
        })
    }
}

/// Audio codec of the camera's main stream (`--audio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioCodec {
    /// AAC-LC, 48 kHz mono, RTP `mpeg4-generic` (RFC 3640) on dynamic payload type 97.
    Aac,
    /// G.711 A-law, 8 kHz mono, RTP `PCMA` on static payload type 8.
    Pcma,
    /// G.711 µ-law, 8 kHz mono, RTP `PCMU` on static payload type 0.
    Pcmu,
}

impl AudioCodec {
    /// Sample rate in Hz (also the RTP clock rate).
    pub fn sample_rate_hz(self) -> u32 {
        match self {
            Self::Aac => 48_000,
            Self::Pcma | Self::Pcmu => 8_000,
        }
    }
}

impl fmt::Display for AudioCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Aac => "aac",
            Self::Pcma => "pcma",
            Self::Pcmu => "pcmu",
        })
    }
}

/// How the video is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Encode a short clip once at start-up and loop it forever on every mount
    /// (cheap: no per-mount encoding).
    #[default]
    Replay,
    /// Run a live `videotestsrc` and encoder per mount (costly, but never repeats).
    Live,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Replay => "replay",
            Self::Live => "live",
        })
    }
}

/// Options of a test camera; usable both as `nvr testcam` flags (via `#[command(flatten)]`)
/// and programmatically (start from [`TestCamConfig::default`]).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct TestCamConfig {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8554")]
    pub listen: SocketAddr,

    /// Number of mounts, served as /cam1 .. /camN (1..=256).
    #[arg(long, default_value_t = 1)]
    pub mounts: u32,

    /// Video codec.
    #[arg(long, value_enum, default_value_t = Codec::H264)]
    pub codec: Codec,

    /// Frame width in pixels (even, 16..=7680).
    #[arg(long, default_value_t = 1280)]
    pub width: u32,

    /// Frame height in pixels (even, 16..=7680).
    #[arg(long, default_value_t = 720)]
    pub height: u32,

    /// Frames per second (1..=120).
    #[arg(long, default_value_t = 15)]
    pub fps: u32,

    /// Target video bit rate in kbit/s (1..=100000).
    #[arg(long, default_value_t = 1000)]
    pub bitrate_kbps: u32,

    /// Key frame interval in frames; 0 means two seconds' worth (2 × fps).
    #[arg(long, default_value_t = 0)]
    pub keyint_frames: u32,

    /// Add an audio stream (a 440 Hz sine) as a second RTP stream: aac (48 kHz), pcma or
    /// pcmu (G.711, 8 kHz). `--audio` alone means aac.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "aac")]
    pub audio: Option<AudioCodec>,

    /// User name clients must present (Basic or Digest); requires --password.
    #[arg(long, requires = "password")]
    pub username: Option<String>,

    /// Password clients must present; requires --username.
    #[arg(long, requires = "username")]
    pub password: Option<String>,

    /// replay: loop a clip encoded once at start-up (cheap); live: encode per mount.
    #[arg(long, value_enum, default_value_t = Mode::Replay)]
    pub mode: Mode,

    /// Length of the replay clip in seconds (1..=300), rounded to whole key frame intervals.
    #[arg(long, default_value_t = 4)]
    pub replay_secs: u32,

    /// H.265 only: key frames are CRA pictures (x265 open GOP) instead of IDR pictures.
    #[arg(long)]
    pub open_gop: bool,

    /// A scene with known motion instead of the test pattern (for motion analysis): moving,
    /// flash or noise. In live mode it is locked to the wall clock (see --scene-period-secs).
    #[arg(long, value_enum, default_value_t = Scene::Pattern)]
    pub scene: Scene,

    /// The scene's period in seconds (2..=300): its events repeat every period, periods
    /// starting at every multiple of it since the Unix epoch (live mode). Replay mode loops a
    /// clip of one period.
    #[arg(long, default_value_t = 30)]
    pub scene_period_secs: u32,

    /// When the scene's events happen in each period: START-END seconds, comma-separated.
    #[arg(long, default_value = "8-14")]
    pub scene_events: String,

    /// Consecutive B-frames (0..=16): frames are sent in decode order, their RTP timestamps
    /// (presentation times) going back within each group of pictures, like cameras in
    /// "smart codec" modes.
    #[arg(long, default_value_t = 0)]
    pub bframes: u32,

    /// Width of the sub-stream each mount also serves as /camN_sub (even, 16..=7680): the
    /// same picture, smaller, like a real camera's second stream.
    #[arg(long, default_value_t = 640)]
    pub sub_width: u32,

    /// Height of the sub-stream (even, 16..=7680).
    #[arg(long, default_value_t = 360)]
    pub sub_height: u32,

    /// Target bit rate of the sub-stream in kbit/s (1..=100000).
    #[arg(long, default_value_t = 250)]
    pub sub_bitrate_kbps: u32,

    /// Serve no sub-stream mounts (only /camN).
    #[arg(long)]
    pub no_sub: bool,
}

impl Default for TestCamConfig {
    /// The same values as the command-line defaults.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8554)),
            mounts: 1,
            codec: Codec::H264,
            width: 1280,
            height: 720,
            fps: 15,
            bitrate_kbps: 1000,
            keyint_frames: 0,
            audio: None,
            username: None,
            password: None,
            mode: Mode::Replay,
            replay_secs: 4,
            open_gop: false,
            scene: Scene::Pattern,
            scene_period_secs: 30,
            scene_events: "8-14".into(),
            bframes: 0,
            sub_width: 640,
            sub_height: 360,
            sub_bitrate_kbps: 250,
            no_sub: false,
        }
    }
}

impl TestCamConfig {
    /// The key frame interval actually used: `keyint_frames`, or 2 × fps when that is 0.
    pub fn keyint(&self) -> u32 {
        if self.keyint_frames == 0 {
            self.fps.saturating_mul(2).max(1)
        } else {
            self.keyint_frames
        }
    }

    /// Number of frames in the replay clip: `replay_secs` rounded to whole key frame
    /// intervals, at least one.
    pub fn replay_frames(&self) -> u32 {
        let keyint = u64::from(self.keyint());
        let secs = if self.scene == Scene::Pattern {
            self.replay_secs
        } else {
            self.scene_period_secs
        };
        let wanted = u64::from(secs) * u64::from(self.fps);
        // Round to the nearest whole GOP, but never below one GOP.
        let gops = ((wanted + keyint / 2) / keyint).max(1);
        u32::try_from(gops * keyint).unwrap_or(u32::MAX)
    }

    /// The scene and its timing, unless the test pattern is shown.
    pub fn scene_spec(&self) -> Option<SceneSpec> {
        if self.scene == Scene::Pattern {
            return None;
        }
        Some(SceneSpec {
            scene: self.scene,
            period_secs: self.scene_period_secs,
            events: parse_events(&self.scene_events, self.scene_period_secs).unwrap_or_default(),
        })
    }

    /// The options of the sub-stream mounts (`/camN_sub`), unless `--no-sub`: these, at the
    /// sub-stream's size and bit rate, without audio.
    pub fn sub_stream(&self) -> Option<TestCamConfig> {
        (!self.no_sub).then(|| TestCamConfig {
            width: self.sub_width,
            height: self.sub_height,
            bitrate_kbps: self.sub_bitrate_kbps,
            audio: None,
            no_sub: true,
            ..self.clone()
        })
    }

    /// The credentials clients must present, if authentication is enabled.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match (&self.username, &self.password) {
            (Some(user), Some(pass)) => Some((user, pass)),
            _ => None,
        }
    }

    /// Checks every option; [`crate::TestCam::start`] calls this first.
    pub fn validate(&self) -> Result<(), TestCamError> {
        fn invalid(option: &'static str, reason: impl Into<String>) -> TestCamError {
            TestCamError::InvalidOption {
                option,
                reason: reason.into(),
            }
        }
        if !(1..=MAX_MOUNTS).contains(&self.mounts) {
            return Err(invalid(
                "mounts",
                format!("{} is not in 1..={MAX_MOUNTS}", self.mounts),
            ));
        }
        if !(1..=MAX_FPS).contains(&self.fps) {
            return Err(invalid(
                "fps",
                format!("{} is not in 1..={MAX_FPS}", self.fps),
            ));
        }
        for (option, value) in [
            ("width", self.width),
            ("height", self.height),
            ("sub-width", self.sub_width),
            ("sub-height", self.sub_height),
        ] {
            if !(MIN_DIMENSION..=MAX_DIMENSION).contains(&value) || value % 2 != 0 {
                return Err(invalid(
                    option,
                    format!("{value} is not an even number in {MIN_DIMENSION}..={MAX_DIMENSION}"),
                ));
            }
        }
        for (option, value) in [
            ("bitrate-kbps", self.bitrate_kbps),
            ("sub-bitrate-kbps", self.sub_bitrate_kbps),
        ] {
            if !(1..=MAX_BITRATE_KBPS).contains(&value) {
                return Err(invalid(
                    option,
                    format!("{value} is not in 1..={MAX_BITRATE_KBPS}"),
                ));
            }
        }
        if self.keyint_frames > MAX_KEYINT_FRAMES {
            return Err(invalid(
                "keyint-frames",
                format!(
                    "{} is not in 0..={MAX_KEYINT_FRAMES} (0 = 2 × fps)",
                    self.keyint_frames
                ),
            ));
        }
        if !(1..=MAX_REPLAY_SECS).contains(&self.replay_secs) {
            return Err(invalid(
                "replay-secs",
                format!("{} is not in 1..={MAX_REPLAY_SECS}", self.replay_secs),
            ));
        }
        if !(2..=MAX_REPLAY_SECS).contains(&self.scene_period_secs) {
            return Err(invalid(
                "scene-period-secs",
                format!("{} is not in 2..={MAX_REPLAY_SECS}", self.scene_period_secs),
            ));
        }
        parse_events(&self.scene_events, self.scene_period_secs)
            .map_err(|e| invalid("scene-events", e))?;
        if self.open_gop && self.codec != Codec::H265 {
            return Err(invalid("open-gop", "only supported with --codec h265"));
        }
        if self.bframes > MAX_BFRAMES {
            return Err(invalid(
                "bframes",
                format!("{} is not in 0..={MAX_BFRAMES}", self.bframes),
            ));
        }
        match (&self.username, &self.password) {
            (None, None) => {}
            (Some(_), None) => return Err(invalid("password", "--username needs --password")),
            (None, Some(_)) => return Err(invalid("username", "--password needs --username")),
            (Some(user), Some(pass)) => {
                // Basic auth joins "user:pass" and Digest quotes the user name, so
                // ':' and '"' in the user name, and control characters anywhere,
                // cannot be represented.
                if user.is_empty() {
                    return Err(invalid("username", "must not be empty"));
                }
                if user.contains([':', '"']) || user.chars().any(char::is_control) {
                    return Err(invalid(
                        "username",
                        "must not contain ':', '\"' or control characters",
                    ));
                }
                if pass.chars().any(char::is_control) {
                    return Err(invalid("password", "must not contain control characters"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: TestCamConfig,
    }

    fn parse(args: &[&str]) -> Result<TestCamConfig, clap::Error> {
        Cli::try_parse_from(std::iter::once("testcam").chain(args.iter().copied()))
            .map(|cli| cli.config)
    }

    #[test]
    fn clap_defaults_match_default_impl() {
        let parsed = parse(&[]).expect("no arguments parse");
        assert_eq!(parsed, TestCamConfig::default());
        parsed.validate().expect("defaults are valid");
    }

    #[test]
    fn parses_every_option() {
        let c = parse(&[
            "--listen=127.0.0.1:0",
            "--mounts=3",
            "--codec=h265",
            "--width=320",
            "--height=240",
            "--fps=10",
            "--bitrate-kbps=300",
            "--keyint-frames=5",
            "--audio",
            "--username=u",
            "--password=p",
            "--mode=live",
            "--replay-secs=2",
            "--open-gop",
            "--bframes=2",
            "--sub-width=160",
            "--sub-height=90",
            "--sub-bitrate-kbps=50",
        ])
        .expect("valid arguments parse");
        assert_eq!(c.listen.port(), 0);
        assert_eq!((c.mounts, c.codec, c.mode), (3, Codec::H265, Mode::Live));
        assert_eq!(
            (c.width, c.height, c.fps, c.bitrate_kbps),
            (320, 240, 10, 300)
        );
        assert_eq!(c.keyint(), 5);
        assert_eq!(c.audio, Some(AudioCodec::Aac), "--audio alone is AAC");
        assert!(c.open_gop);
        assert_eq!(c.bframes, 2);
        assert_eq!(c.credentials(), Some(("u", "p")));
        c.validate().expect("valid");
        let sub = c.sub_stream().expect("a sub-stream");
        assert_eq!((sub.width, sub.height, sub.bitrate_kbps), (160, 90, 50));
        assert_eq!(
            (sub.codec, sub.fps, sub.keyint(), sub.bframes),
            (c.codec, c.fps, c.keyint(), c.bframes)
        );
        assert!(sub.audio.is_none() && sub.sub_stream().is_none());
        for (arg, codec) in [
            ("--audio=aac", AudioCodec::Aac),
            ("--audio=pcma", AudioCodec::Pcma),
            ("--audio=pcmu", AudioCodec::Pcmu),
        ] {
            assert_eq!(parse(&[arg]).expect("parses").audio, Some(codec));
        }
        assert!(parse(&["--no-sub"]).expect("parses").sub_stream().is_none());
    }

    #[test]
    fn clap_rejects_username_without_password() {
        assert!(parse(&["--username=u"]).is_err());
        assert!(parse(&["--codec=vp9"]).is_err());
        assert!(parse(&["--audio=opus"]).is_err());
    }

    #[test]
    fn keyint_and_clip_length() {
        let mut c = TestCamConfig::default();
        assert_eq!(c.keyint(), 30, "2 × 15 fps");
        assert_eq!(c.replay_frames(), 60, "4 s at 15 fps = 2 GOPs");
        c.keyint_frames = 45;
        assert_eq!(c.replay_frames(), 45, "60 frames round to 1 GOP of 45");
        c.keyint_frames = 7;
        assert_eq!(c.replay_frames(), 63, "60 frames round to 9 GOPs of 7");
        c.keyint_frames = 1000;
        assert_eq!(c.replay_frames(), 1000, "at least one GOP");
    }

    #[test]
    fn rejects_bad_options() {
        type Tweak = fn(&mut TestCamConfig);
        let cases: [(&str, Tweak); 19] = [
            ("mounts", |c| c.mounts = 0),
            ("mounts", |c| c.mounts = 257),
            ("fps", |c| c.fps = 0),
            ("fps", |c| c.fps = 121),
            ("width", |c| c.width = 321),
            ("width", |c| c.width = 8),
            ("height", |c| c.height = 7682),
            ("bitrate-kbps", |c| c.bitrate_kbps = 0),
            ("sub-width", |c| c.sub_width = 641),
            ("sub-height", |c| c.sub_height = 0),
            ("sub-bitrate-kbps", |c| c.sub_bitrate_kbps = 0),
            ("keyint-frames", |c| c.keyint_frames = 5000),
            ("replay-secs", |c| c.replay_secs = 0),
            ("open-gop", |c| c.open_gop = true),
            ("bframes", |c| c.bframes = 17),
            ("password", |c| c.username = Some("u".into())),
            ("username", |c| c.password = Some("p".into())),
            ("username", |c| {
                c.username = Some("a:b".into());
                c.password = Some("p".into());
            }),
            ("username", |c| {
                c.username = Some(String::new());
                c.password = Some("p".into());
            }),
        ];
        for (expected, tweak) in cases {
            let mut c = TestCamConfig::default();
            tweak(&mut c);
            match c.validate() {
                Err(TestCamError::InvalidOption { option, reason }) => {
                    assert_eq!(option, expected, "{reason}");
                }
                other => panic!("{expected}: expected InvalidOption, got {other:?}"),
            }
        }
    }
}
