//! The recorder's configuration file (`nvr.toml`): what it means and its defaults. Parsing the
//! file from disk happens in the binary; this module only defines and checks the values.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration. Every section and field is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where segments, keys and the index live.
    pub data_dir: Option<PathBuf>,
    pub http: HttpConfig,
    pub recording: RecordingConfig,
    pub retention: RetentionConfig,
    pub cameras: CameraPolicy,
    pub evidence: EvidenceConfig,
    pub motion: MotionConfig,
    pub log: LogConfig,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the web UI and API. Loopback by default: a LAN address must be chosen.
    pub listen: SocketAddr,
    /// When to serve HTTPS.
    pub tls: TlsMode,
    /// Host names (and addresses) clients may use to reach this server, besides the listen
    /// address, this machine's own names and addresses, and (on loopback) `localhost`. A
    /// request naming any other host in `Host` is refused, which stops DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Open connections at most, from every client together. The effective cap is also at most
    /// half the open-file limit, so cameras and segment files always find descriptors.
    pub max_connections: u32,
    /// Open connections at most from one client address (one /64 for IPv6). A browser opens
    /// about 6 HTTP connections plus one per live tile.
    pub max_connections_per_client: u32,
}

/// When the web server speaks HTTPS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// HTTPS whenever listening beyond loopback; plain HTTP on loopback.
    #[default]
    Auto,
    /// Always HTTPS.
    On,
    /// Never HTTPS, even on the LAN (insecure: passwords and video cross the network in clear).
    Off,
}

impl TlsMode {
    /// Whether to serve HTTPS on `listen`.
    pub fn enabled_for(self, listen: SocketAddr) -> bool {
        match self {
            TlsMode::Auto => !listen.ip().is_loopback(),
            TlsMode::On => true,
            TlsMode::Off => false,
        }
    }
}

/// Longest `recording.read_interval_ms` accepted: a fifth of the 0.5 s live latency target.
pub const MAX_READ_INTERVAL_MS: u32 = 100;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// A segment is closed at the first key frame after this many seconds.
    pub segment_duration_secs: u32,
    /// Open segments are fsynced at least this often, bounding what a power cut can lose.
    pub fsync_interval_secs: u32,
    /// Each camera connection is read at most this often: what arrives meanwhile waits in the
    /// kernel and is taken in one read, instead of a wake-up and a read per packet. Adds up to
    /// this much to live latency. 0 reads every packet as it arrives.
    pub read_interval_ms: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Default per-camera byte quota; the oldest segments go first. 0 means no byte limit.
    pub max_bytes_per_camera: u64,
    /// Default maximum age of footage in days; 0 means no age limit.
    pub max_age_days: u32,
    /// How often retention runs, in seconds.
    pub interval_secs: u32,
    /// Space kept free on the data directory's file system: below it the oldest unheld footage
    /// of any camera is deleted, whatever the quotas say (checked every few seconds); below a
    /// quarter of it cameras stop writing ("stalled by disk") until space returns, so the index
    /// and what is already recorded never meet a full disk. 0 turns both off.
    pub min_free_bytes: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CameraPolicy {
    /// Whether cameras may be given by host name (resolved through the system's resolver).
    /// Off by default: zero egress means no DNS unless the administrator asks for it.
    pub allow_host_names: bool,
}

/// Evidence exports and holds.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Export bundles made through the web UI are deleted this many days after they were made:
    /// a bundle is a plaintext copy of footage that retention would otherwise have shredded.
    /// 0 = keep them until deleted by hand.
    pub export_keep_days: u32,
    /// Exports one user may have running at once.
    pub max_running_exports_per_user: u32,
    /// Footage one user may keep under evidence holds (their own holds and running exports),
    /// as a percentage of the data disk's size: holds are exempt from retention and crowd out
    /// new recording. 0 = no limit.
    pub max_held_percent_per_user: u32,
}

/// Motion analysis: an index that makes footage findable; it never decides what is recorded.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    /// Analyse cameras at all (each camera can also be switched off on its own).
    pub enabled: bool,
    /// Pictures analysed per second of a stream that is decoded in full.
    pub fps: u32,
    /// Which pictures are decoded.
    pub decode: MotionDecode,
    /// In `auto` mode, streams of at most this many pixels per picture (a sub-stream) are
    /// decoded in full; larger ones (a main stream) at their key frames only.
    pub full_decode_max_pixels: u32,
}

/// Which pictures motion analysis decodes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MotionDecode {
    /// Every picture of small streams, key frames of large ones (see
    /// `full_decode_max_pixels`).
    #[default]
    Auto,
    /// Every picture (analysed at `fps`): the most precise, the most CPU.
    All,
    /// Key frames only: one picture per GOP, the least CPU.
    KeyFrames,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: TlsMode::Auto,
            allowed_hosts: Vec::new(),
            // 50 viewing stations of ~20 connections each.
            max_connections: 1024,
            // A control-room station with a 16-tile grid, playback and the admin pages open in
            // a few tabs.
            max_connections_per_client: 64,
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            // About a minute: short enough that retention frees space in small steps and a
            // damaged file costs little, long enough that the index stays small (1,440 rows
            // per camera per day).
            segment_duration_secs: 60,
            // A power cut loses at most this much of what the page cache held.
            fsync_interval_secs: 5,
            // 50 reads a second per camera, ~1/25 of the packets a 4 Mbit/s stream sends; far
            // below the 0.5 s live target.
            read_interval_ms: 20,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_bytes_per_camera: 0,
            max_age_days: 30,
            interval_secs: 60,
            // Room for a few minutes of 64 cameras at 8 Mbit/s; small next to any recording disk.
            min_free_bytes: 1 << 30,
        }
    }
}

impl Default for MotionConfig {
    fn default() -> Self {
        MotionConfig {
            enabled: true,
            // What Frigate analyses its detect stream at: enough to place motion within a
            // second, a fifth of a 25 fps stream's pictures.
            fps: 5,
            decode: MotionDecode::Auto,
            // 640x480: a sub-stream (640x360, 704x576 is larger but close) decodes in full for
            // about 1% of a core; a 1080p main stream would cost 5-10x that per camera.
            full_decode_max_pixels: 640 * 480,
        }
    }
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            export_keep_days: 30,
            max_running_exports_per_user: 2,
            max_held_percent_per_user: 25,
        }
    }
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let seg = self.recording.segment_duration_secs;
        if !(1..=3600).contains(&seg) {
            return Err(ConfigError(format!(
                "recording.segment_duration_secs = {seg}: must be 1..=3600"
            )));
        }
        if self.recording.fsync_interval_secs == 0 {
            return Err(ConfigError(
                "recording.fsync_interval_secs must be > 0".into(),
            ));
        }
        if self.recording.read_interval_ms > MAX_READ_INTERVAL_MS {
            return Err(ConfigError(format!(
                "recording.read_interval_ms = {}: must be 0..={MAX_READ_INTERVAL_MS} (it adds to \
                 live latency)",
                self.recording.read_interval_ms
            )));
        }
        if self.retention.interval_secs == 0 {
            return Err(ConfigError("retention.interval_secs must be > 0".into()));
        }
        if self.http.max_connections == 0 || self.http.max_connections_per_client == 0 {
            return Err(ConfigError(
                "http.max_connections and http.max_connections_per_client must be > 0".into(),
            ));
        }
        if self.evidence.max_held_percent_per_user > 100 {
            return Err(ConfigError(
                "evidence.max_held_percent_per_user must be 0..=100".into(),
            ));
        }
        if !(1..=30).contains(&self.motion.fps) {
            return Err(ConfigError(format!(
                "motion.fps = {}: must be 1..=30",
                self.motion.fps
            )));
        }
        if self.evidence.max_running_exports_per_user == 0 {
            return Err(ConfigError(
                "evidence.max_running_exports_per_user must be > 0".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_no_dns() {
        let c = Config::default();
        assert!(c.http.listen.ip().is_loopback());
        assert!(!c.cameras.allow_host_names);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn tls_is_automatic_beyond_loopback() {
        let lan: SocketAddr = "192.168.1.5:8443".parse().expect("addr");
        let lo: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert!(TlsMode::Auto.enabled_for(lan) && !TlsMode::Auto.enabled_for(lo));
        assert!(TlsMode::On.enabled_for(lo) && !TlsMode::Off.enabled_for(lan));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut c = Config::default();
        c.recording.segment_duration_secs = 0;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.recording.read_interval_ms = MAX_READ_INTERVAL_MS + 1;
        assert!(c.validate().is_err());
        c.recording.read_interval_ms = 0;
        assert_eq!(c.validate(), Ok(()));
    }
}
