//! The command line: every subcommand and flag, with the help text users see.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nvr_core::Role;
use nvr_core::config::LogFormat;
use nvr_storage::signing::Fingerprint;

/// On-premises network video recorder that talks only to its own cameras.
#[derive(Debug, Parser)]
#[command(name = "nvr", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr (default: `[log] format` of the config file, else text).
    #[arg(long = "log-format", global = true, value_enum)]
    pub log_format_arg: Option<LogFormatArg>,
    #[arg(skip = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

/// Where the data directory is.
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// Data directory (segments, keys, index). Also from NVR_DATA_DIR or the config file.
    #[arg(long, env = "NVR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (TOML); see config/nvr.example.toml.
    #[arg(long, env = "NVR_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new data directory: master key, index, directories (all private to the user).
    Init(InitArgs),
    /// Manage users of the web UI and API.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage cameras.
    #[command(subcommand)]
    Camera(CameraCommand),
    /// Record every enabled camera and serve the web UI and API.
    Serve(ServeArgs),
    /// Authenticate every stored chunk and compare files with the index; exit 1 on any problem.
    Check(CheckArgs),
    /// Export recordings as a signed evidence bundle (zip) that `nvr verify` checks offline.
    Export(ExportArgs),
    /// The motion index: reindex recorded footage.
    #[command(subcommand)]
    Motion(MotionCommand),
    /// Check an evidence bundle offline: file hashes, each segment against the hash recorded at
    /// ingest, the hash chain and the signatures, and that a pinned key signed it. Exit 0 only
    /// if it is intact and signed by a key given with --expect-key or --trusted-keys; 3 if it is
    /// intact but its key is not pinned (its origin is not established); 1 if it is altered,
    /// incomplete, or signed by another key than the pinned ones.
    Verify(VerifyArgs),
    /// The recorder's evidence signing key: show its fingerprint (and every key it has used),
    /// or rotate it.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show what the running recorder is connected to against what it may connect to: listening
    /// sockets, the camera allowlist, the sandbox, and any connection not to a camera (exit 1).
    Doctor(DoctorArgs),
    /// Run a test camera: a real RTSP server (GStreamer) on 127.0.0.1.
    Testcam(TestcamArgs),
    /// Start 4 test cameras and a recorder on 127.0.0.1 with a data directory ./demo-data,
    /// and print the URL and login.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (one line).
    Add(UserAddArgs),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Login name.
    #[arg(long)]
    pub username: String,
    /// guard (live and playback), evidence (+ export and holds) or admin (+ cameras, users).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// Read the password from standard input (required: passwords never go on a command line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: nvr_core::role::RoleParseError| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum CameraCommand {
    /// Add a camera by RTSP URL. The camera is tested first unless --skip-probe is given; a
    /// running server starts recording it within seconds.
    Add(CameraAddArgs),
    /// List cameras (never their passwords).
    List(CameraListArgs),
    /// Change a camera's settings (what is given); a running server applies it within seconds.
    Change(CameraChangeArgs),
}

#[derive(Debug, Args)]
pub struct CameraAddArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Short unique name.
    #[arg(long)]
    pub name: String,
    /// The main stream: rtsp://host[:port]/path, without credentials.
    #[arg(long)]
    pub url: String,
    /// The camera's low-resolution sub-stream (grid tiles, fast playback, thumbnails), with the
    /// same credentials as the main stream.
    #[arg(long)]
    pub sub_url: Option<String>,
    /// Pull the sub-stream for live view only, without recording it.
    #[arg(long, requires = "sub_url")]
    pub no_record_sub: bool,
    /// RTSP username (of both streams).
    #[arg(long)]
    pub username: Option<String>,
    /// Read the RTSP password from standard input (one line).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Add the camera without testing it (it will be retried until it answers).
    #[arg(long)]
    pub skip_probe: bool,
    /// Record the camera's audio (AAC or G.711) beside its video. Off unless given:
    /// recording sound needs a stated justification. The choice is audited.
    #[arg(long)]
    pub record_audio: bool,
    /// Why the camera's sound is recorded (kept in the audit log).
    #[arg(long, requires = "record_audio")]
    pub audio_reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct CameraChangeArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Camera name or id.
    #[arg(long)]
    pub camera: String,
    /// Record the camera's audio (true) or not (false); audited.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub record_audio: Option<bool>,
    /// Why sound recording is switched on or off (kept in the audit log).
    #[arg(long, requires = "record_audio")]
    pub audio_reason: Option<String>,
    /// Record the camera (true) or stop recording and live view (false).
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Args)]
pub struct CameraListArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Address for the web UI and API (default 127.0.0.1:8080; a LAN address must be chosen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS even on loopback (it is automatic on any other address).
    #[arg(long, conflicts_with = "insecure_http")]
    pub tls: bool,
    /// Serve plain HTTP even beyond loopback: passwords and video cross the network in clear.
    #[arg(long)]
    pub insecure_http: bool,
    /// Close segments at the first key frame after this many seconds (default 60).
    #[arg(long)]
    pub segment_duration_secs: Option<u32>,
    /// Per-camera byte quota for retention (default: none).
    #[arg(long)]
    pub retain_max_bytes: Option<u64>,
    /// How often retention runs, in seconds (default 60).
    #[arg(long)]
    pub retention_interval_secs: Option<u32>,
    /// Space kept free on the data directory's disk, in bytes (default 1 GiB; 0 = off).
    #[arg(long)]
    pub min_free_bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Camera name or id; repeat for several cameras.
    #[arg(long, required = true)]
    pub camera: Vec<String>,
    /// Start of the range (RFC 3339, e.g. 2026-11-29T22:10:00Z).
    #[arg(long)]
    pub start: String,
    /// End of the range (RFC 3339); at most 24 hours after the start.
    #[arg(long)]
    pub end: String,
    /// Where to write the bundle; must not exist.
    #[arg(long)]
    pub out: PathBuf,
    /// Case reference recorded in the manifest.
    #[arg(long, default_value = "")]
    pub case: String,
    /// Why the footage is exported, recorded in the manifest and the audit log.
    #[arg(long, default_value = "command-line export")]
    pub reason: String,
    /// Add each camera's working copy: its video re-encoded (H.264) with the recording time in
    /// the picture, for viewing; the original stays the evidence. Slow: a re-encode.
    #[arg(long)]
    pub working_copy: bool,
}

#[derive(Debug, Subcommand)]
pub enum MotionCommand {
    /// Analyse recorded footage (e.g. recorded before motion analysis existed, or after a
    /// change of sensitivity) and replace its motion index. Runs beside the server.
    Reindex(MotionReindexArgs),
}

#[derive(Debug, Args)]
pub struct MotionReindexArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Camera name or id.
    #[arg(long)]
    pub camera: String,
    /// Start of the range (RFC 3339); every segment overlapping the range is reindexed whole.
    #[arg(long)]
    pub start: String,
    /// End of the range (RFC 3339); at most a year after the start.
    #[arg(long)]
    pub end: String,
}

#[derive(Debug, Args)]
#[command(after_long_help = VERIFY_HELP)]
pub struct VerifyArgs {
    /// The bundle (zip) to check.
    pub bundle: PathBuf,
    /// The fingerprint of the recorder's signing key, as its administrator gives it to you
    /// (Status page of the recorder, or `nvr key show` on it), e.g. SHA256:3f2a-9b01-...;
    /// case, the prefix and separators do not matter. Repeat it to trust several keys (e.g.
    /// the keys before and after a rotation).
    #[arg(long, value_name = "FINGERPRINT", value_parser = parse_fingerprint)]
    pub expect_key: Vec<Fingerprint>,
    /// A file of trusted keys: one fingerprint per line (`#` starts a comment), or Ed25519
    /// public keys in PEM. Repeatable; combines with --expect-key.
    #[arg(long, value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
}

/// What `nvr verify --help` adds after the flags.
const VERIFY_HELP: &str = "\
A bundle carries its own public key, so a valid signature only shows that nothing changed since
that key signed it: anyone can make a recorder and sign a bundle. Pin the recorder's key to
establish where the bundle comes from: ask the recorder's administrator for its fingerprint
through a channel you trust, compare it character by character, and pass it with --expect-key
(or in a --trusted-keys file).

Exit status:
  0  intact, every signature valid, and signed by a pinned key
  3  intact and validly signed, but by a key you did not pin: origin not established
  1  altered, incomplete, or signed by another key than the pinned ones
  2  the check could not run (bad arguments, unreadable key file)";

fn parse_fingerprint(s: &str) -> Result<Fingerprint, String> {
    Fingerprint::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the fingerprint of the current signing key, and every key the recorder has
    /// signed with, with the dates each was in use.
    Show(KeyShowArgs),
    /// Sign with a new key from now on. Bundles signed before stay verifiable with the old
    /// fingerprint, and chain heads the old key signed still check (its public key is kept;
    /// its private key is deleted). A running server signs with the new key from its next
    /// export or chain head, without a restart. Audited.
    Rotate(KeyRotateArgs),
}

#[derive(Debug, Args)]
pub struct KeyShowArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct KeyRotateArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct TestcamArgs {
    #[command(flatten)]
    pub config: nvr_testcam::TestCamConfig,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data directory of the demo.
    #[arg(long, default_value = "demo-data")]
    pub data_dir: PathBuf,
    /// Address for the web UI.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the built-in test cameras.
    #[arg(long, default_value = "127.0.0.1:8554")]
    pub camera_listen: SocketAddr,
    /// Number of test cameras.
    #[arg(long, default_value_t = 4)]
    pub cameras: u32,
}

impl Command {
    /// The data-directory and config arguments of the commands that take them.
    pub fn data_dir_arg(&self) -> Option<&DataDirArg> {
        match self {
            Command::Init(a) => Some(&a.dir),
            Command::User(UserCommand::Add(a)) => Some(&a.dir),
            Command::Camera(CameraCommand::Add(a)) => Some(&a.dir),
            Command::Camera(CameraCommand::List(a)) => Some(&a.dir),
            Command::Camera(CameraCommand::Change(a)) => Some(&a.dir),
            Command::Serve(a) => Some(&a.dir),
            Command::Check(a) => Some(&a.dir),
            Command::Export(a) => Some(&a.dir),
            Command::Doctor(a) => Some(&a.dir),
            Command::Key(KeyCommand::Show(a)) => Some(&a.dir),
            Command::Key(KeyCommand::Rotate(a)) => Some(&a.dir),
            Command::Motion(MotionCommand::Reindex(a)) => Some(&a.dir),
            Command::Verify(_) | Command::Testcam(_) | Command::Demo(_) => None,
        }
    }
}

impl Cli {
    /// Resolves derived fields after parsing.
    pub fn parse() -> Self {
        let mut cli = <Self as Parser>::parse();
        cli.log_format = match cli.log_format_arg {
            Some(LogFormatArg::Text) => LogFormat::Text,
            Some(LogFormatArg::Json) => LogFormat::Json,
            // The config file's `[log] format`, when the command reads one and it parses (a
            // broken file is reported by the command itself).
            None => cli
                .command
                .data_dir_arg()
                .and_then(|d| crate::config::load(d.config.as_deref()).ok())
                .map(|c| c.log.format)
                .unwrap_or_default(),
        };
        cli
    }
}
