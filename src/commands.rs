//! The subcommands other than `serve` and `demo`: argument handling and printing around the
//! application layer (`nvr-app`) and storage: init, user add, camera add/list, check, export,
//! doctor, testcam (verify and key: `keys.rs`).

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use nvr_app::{Actor, App};
use nvr_core::config::Config;
use nvr_core::{Clock, SystemClock};
use nvr_ingest::retina_source::RetinaSource;
use nvr_storage::store::Store;

use crate::cli::{CameraCommand, Cli, Command, UserCommand};
use crate::config;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(a) => {
            let (_, dir) = config::resolve(&a.dir)?;
            Store::init(&dir, &SystemClock::new())
                .with_context(|| format!("initializing {}", dir.display()))?;
            let store = open(&dir)?;
            let id = short_recorder_id(&store)?;
            let tls = nvr_storage::tls::ensure(&dir, &id, &nvr_storage::tls::machine_sans())
                .context("making the local certificate authority")?;
            println!("initialized data directory {}", dir.display());
            println!(
                "evidence signing key: {} (whoever verifies exported bundles pins it; `nvr key \
                 show` prints it again)",
                store.signing_key().fingerprint()
            );
            println!(
                "local CA for HTTPS: {} (SHA-256 {})",
                nvr_storage::tls::tls_dir(&dir).join("ca.pem").display(),
                tls.ca_fingerprint_sha256
            );
            // On the console only: whoever reads it is at the recorder.
            if let Some(code) = store.setup_code(nvr_app::accounts::new_setup_code)? {
                println!(
                    "first-run setup code: {code} (the web UI asks for it when the recorder \
                     serves the LAN and has no user yet; `nvr serve` prints it again)"
                );
            }
            println!(
                "next: nvr user add --data-dir {} --username admin --role admin --password-stdin",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Add(a)) => {
            let (cfg, dir) = config::resolve(&a.dir)?;
            let app = offline_app(&cfg, &dir)?;
            let password = read_secret_line()?;
            app.add_user_blocking(&Actor::cli(), &a.username, a.role, password)
                .map_err(app_error)?;
            println!("added user {} with role {}", a.username, a.role);
            Ok(ExitCode::SUCCESS)
        }
        Command::Camera(CameraCommand::Add(a)) => {
            let (cfg, dir) = config::resolve(&a.dir)?;
            let app = offline_app(&cfg, &dir)?;
            let password = if a.password_stdin {
                Some(read_secret_line()?)
            } else {
                None
            };
            let new = nvr_app::cameras::NewCamera {
                name: a.name.clone(),
                url: a.url.clone(),
                sub_url: a.sub_url.clone(),
                record_sub: Some(!a.no_record_sub),
                username: a.username.clone(),
                password,
                skip_probe: a.skip_probe,
                record_audio: a.record_audio,
                audio_reason: a.audio_reason.clone(),
            };
            let rt = tokio::runtime::Runtime::new()?;
            let (row, probed) = rt
                .block_on(app.add_camera(&Actor::cli(), &new))
                .map_err(|e| match e.kind {
                    nvr_core::ErrorKind::Unavailable => anyhow::anyhow!(
                        "testing camera {} failed ({}): {}; nothing was added (use --skip-probe \
                         to add it anyway)",
                        a.url,
                        e.detail.as_deref().unwrap_or("error"),
                        e.message
                    ),
                    _ => app_error(e),
                })?;
            if let Some(t) = probed {
                let says = |p: &nvr_ingest::probe::ProbeResult| {
                    format!(
                        "{} {}x{}{}{}",
                        p.codec,
                        p.width,
                        p.height,
                        p.fps.map(|f| format!(" at {f:.1} fps")).unwrap_or_default(),
                        p.audio
                            .as_ref()
                            .map(|a| format!(
                                "; audio {}{}",
                                a.describe(),
                                if a.codec.is_none() {
                                    " (cannot be recorded)"
                                } else {
                                    ""
                                }
                            ))
                            .unwrap_or_default()
                    )
                };
                println!("camera answers: {}", says(&t.main));
                if let Some(Ok(sub)) = &t.sub {
                    println!("sub-stream answers: {}", says(sub));
                }
            }
            println!("added camera {} ({}) with id {}", row.name, row.url, row.id);
            if let Some(sub) = &row.sub_url {
                let recorded = if row.record_sub {
                    "recorded"
                } else {
                    "live view only"
                };
                println!("sub-stream {sub} ({recorded})");
            }
            if row.record_audio {
                println!("audio recorded");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Camera(CameraCommand::Change(a)) => {
            let (cfg, dir) = config::resolve(&a.dir)?;
            let app = offline_app(&cfg, &dir)?;
            let row = app.camera_named(&a.camera).map_err(app_error)?;
            if a.record_audio.is_none() && a.enabled.is_none() {
                anyhow::bail!("nothing to change: give --record-audio or --enabled");
            }
            let change = nvr_app::cameras::CameraChange {
                record_audio: a.record_audio,
                audio_reason: a.audio_reason.clone(),
                enabled: a.enabled,
                ..Default::default()
            };
            let rt = tokio::runtime::Runtime::new()?;
            let row = rt
                .block_on(app.change_camera(&Actor::cli(), row.id, &change))
                .map_err(app_error)?;
            println!(
                "camera {} ({}): {}, audio {}",
                row.name,
                row.id,
                if row.enabled { "enabled" } else { "disabled" },
                if row.record_audio {
                    "recorded"
                } else {
                    "not recorded"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Camera(CameraCommand::List(a)) => {
            let (_, dir) = config::resolve(&a.dir)?;
            let store = open(&dir)?;
            for c in store.cameras()? {
                println!(
                    "{}\t{}\t{}\t{}{}{}",
                    c.id,
                    c.name,
                    c.url,
                    if c.enabled { "enabled" } else { "disabled" },
                    c.sub_url
                        .as_deref()
                        .map(|s| format!("\tsub {s}"))
                        .unwrap_or_default(),
                    if c.record_audio { "\taudio" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(a) => {
            let (_, dir) = config::resolve(&a.dir)?;
            let store = open(&dir)?;
            let report = nvr_storage::check::check(&store)?;
            for p in &report.problems {
                println!("PROBLEM {p}");
            }
            println!(
                "checked {} segments ({} open), {} chunks, {} frames, {} motion rows: {} problem(s)",
                report.segments_checked,
                report.open_segments,
                report.chunks_authenticated,
                report.frames,
                report.motion_rows,
                report.problems.len()
            );
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Export(a) => export(a),
        Command::Motion(c) => crate::motion::run(c),
        Command::Doctor(a) => {
            let (_, dir) = config::resolve(&a.dir)?;
            crate::doctor::doctor(&dir)
        }
        Command::Verify(a) => crate::keys::verify(&a),
        Command::Key(k) => crate::keys::key(k),
        Command::Testcam(a) => {
            nvr_testcam::run(&a.config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(a) => crate::serve::serve(a),
        Command::Demo(a) => crate::demo::demo(a),
    }
}

/// `nvr export`: writes a bundle through the same lifecycle as the web's exports (limits,
/// holds, audit, the bundle verified before it gets its name).
fn export(a: crate::cli::ExportArgs) -> anyhow::Result<ExitCode> {
    let (cfg, dir) = config::resolve(&a.dir)?;
    let app = offline_app(&cfg, &dir)?;
    let mut cameras = Vec::new();
    for c in &a.camera {
        cameras.push(app.camera_named(c).map_err(app_error)?.id);
    }
    let parse = |what: &str, v: &str| {
        nvr_core::Time90k::parse_rfc3339(v).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
    };
    let order = nvr_app::evidence::ExportOrder {
        cameras,
        start: parse("start", &a.start)?,
        end: parse("end", &a.end)?,
        case_ref: a.case.clone(),
        reason: a.reason.clone(),
        working_copy: a.working_copy,
    };
    let written = app
        .export_to_file(&Actor::cli(), &order, &a.out)
        .map_err(app_error)
        .context("exporting")?;
    for (name, sha, bytes) in &written.summary.files {
        println!("{}  {name}  ({bytes} bytes)", hex::encode(sha));
    }
    for (camera, frames) in &written.summary.frames_presented {
        println!("camera {camera}: {frames} frames in the requested range");
    }
    println!("wrote {} (verified)", a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// The application layer for a command run beside (or without) the server: probes go through
/// a retina source limited to the camera being added.
pub(crate) fn offline_app(cfg: &Config, dir: &std::path::Path) -> anyhow::Result<Arc<App>> {
    let store = open(dir)?;
    let clock: Arc<dyn Clock> = store.clock().clone();
    let egress = nvr_ingest::egress::EgressPolicy::new(cfg.cameras.allow_host_names);
    Ok(App::new(
        store,
        nvr_app::CameraContext {
            source: Arc::new(RetinaSource::new(clock, egress.clone())),
            egress,
            default_retention: crate::serve::recorder_config(cfg).default_retention,
            recorder: None,
            motion: None,
        },
        nvr_app::AppOptions {
            setup_code_required: false,
            evidence: cfg.evidence.clone(),
            motion: cfg.motion.clone(),
        },
    ))
}

/// An application error as the CLI reports it.
pub(crate) fn app_error(e: nvr_app::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message)
}

pub fn open(dir: &std::path::Path) -> anyhow::Result<Arc<Store>> {
    Store::open(dir, Arc::new(SystemClock::new()))
        .with_context(|| format!("opening data directory {}", dir.display()))
}

/// Reads one line from standard input, without its line ending.
fn read_secret_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(line)
}

/// The first 8 hex digits of the data directory's id: names its certificate authority.
pub fn short_recorder_id(store: &Store) -> anyhow::Result<String> {
    let id = store.recorder_id()?;
    Ok(id.chars().take(8).collect())
}
