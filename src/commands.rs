//! The subcommands other than `serve` and `demo`: init, user add, camera add/list, check,
//! testcam.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use nvr_core::{Clock, SystemClock};
use nvr_ingest::probe::probe;
use nvr_ingest::retina_source::RetinaSource;
use nvr_ingest::source::ConnectTarget;
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
            let id = hex::encode(&store.db().data_dir_uuid()?[..4]);
            let tls = nvr_storage::tls::ensure(&dir, &id, &nvr_storage::tls::machine_sans())
                .context("making the local certificate authority")?;
            println!("initialized data directory {}", dir.display());
            println!(
                "local CA for HTTPS: {} (SHA-256 {})",
                nvr_storage::tls::tls_dir(&dir).join("ca.pem").display(),
                tls.ca_fingerprint_sha256
            );
            println!(
                "next: nvr user add --data-dir {} --username admin --role admin --password-stdin",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Add(a)) => {
            let (_, dir) = config::resolve(&a.dir)?;
            let store = open(&dir)?;
            let password = read_secret_line()?;
            add_user(&store, &a.username, a.role, &password)?;
            println!("added user {} with role {}", a.username, a.role);
            Ok(ExitCode::SUCCESS)
        }
        Command::Camera(CameraCommand::Add(a)) => {
            let (cfg, dir) = config::resolve(&a.dir)?;
            let store = open(&dir)?;
            let url = nvr_web::cameras::checked_url(&a.url, cfg.cameras.allow_host_names)
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let password = if a.password_stdin {
                Some(read_secret_line()?)
            } else {
                None
            };
            nvr_core::validate_camera_name(&a.name).map_err(anyhow::Error::msg)?;
            if store.db().camera_by_name(&a.name)?.is_some() {
                bail!("a camera named {:?} exists already", a.name);
            }
            if !a.skip_probe {
                let target = ConnectTarget {
                    url: url.clone(),
                    username: a.username.clone(),
                    password: password.clone(),
                };
                let rt = tokio::runtime::Runtime::new()?;
                let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
                let egress = nvr_ingest::egress::EgressPolicy::new(cfg.cameras.allow_host_names);
                let _allow = egress.allow_probe(&url);
                let result = rt.block_on(probe(
                    &RetinaSource::new(clock, egress.clone()),
                    &target,
                    nvr_web::cameras::PROBE_TIMEOUT,
                ));
                match result {
                    Ok(p) => println!(
                        "camera answers: {} {}x{}{}",
                        p.codec,
                        p.width,
                        p.height,
                        p.fps.map(|f| format!(" at {f:.1} fps")).unwrap_or_default()
                    ),
                    Err(e) => bail!(
                        "testing camera {} failed ({:?}): {}; nothing was added (use --skip-probe to add it anyway)",
                        url,
                        e.kind,
                        e.message
                    ),
                }
            }
            let id = store.add_camera(&a.name, &url, a.username.as_deref(), password.as_deref())?;
            println!("added camera {} ({}) with id {id}", a.name, url);
            Ok(ExitCode::SUCCESS)
        }
        Command::Camera(CameraCommand::List(a)) => {
            let (_, dir) = config::resolve(&a.dir)?;
            let store = open(&dir)?;
            for c in store.db().cameras()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    c.id,
                    c.name,
                    c.url,
                    if c.enabled { "enabled" } else { "disabled" }
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
                "checked {} segments ({} open), {} chunks, {} frames: {} problem(s)",
                report.segments_checked,
                report.open_segments,
                report.chunks_authenticated,
                report.frames,
                report.problems.len()
            );
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Export(a) => export(a),
        Command::Doctor(a) => {
            let (_, dir) = config::resolve(&a.dir)?;
            crate::doctor::doctor(&dir)
        }
        Command::Verify(a) => {
            let report = nvr_storage::export::verify::verify_bundle(&a.bundle);
            let mut failures = report.failures.clone();
            if let (Some(want), Some(got)) = (&a.expect_key, &report.key_fingerprint)
                && !want.eq_ignore_ascii_case(got)
            {
                failures.push(format!("signed by key {got}, not the expected {want}"));
            }
            for line in &report.passed {
                println!("OK    {line}");
            }
            for f in &failures {
                println!("FAIL  {f}");
            }
            println!(
                "recorder {}, key {}",
                report.recorder_id.as_deref().unwrap_or("?"),
                report.key_fingerprint.as_deref().unwrap_or("?")
            );
            if failures.is_empty() && report.valid() {
                println!("VALID: {}", a.bundle.display());
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "INVALID: {}: {}",
                    a.bundle.display(),
                    failures.first().map_or("nothing checked", String::as_str)
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Testcam(a) => {
            nvr_testcam::run(&a.config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(a) => crate::serve::serve(a),
        Command::Demo(a) => crate::demo::demo(a),
    }
}

/// `nvr export`: writes a bundle, holding the range against retention meanwhile.
fn export(a: crate::cli::ExportArgs) -> anyhow::Result<ExitCode> {
    let (_, dir) = config::resolve(&a.dir)?;
    let store = open(&dir)?;
    let mut cameras = Vec::new();
    for c in &a.camera {
        let row = match c.parse::<i64>() {
            Ok(id) => store.db().camera(nvr_core::CameraId(id))?,
            Err(_) => store.db().camera_by_name(c)?,
        };
        cameras.push(row.with_context(|| format!("no camera {c:?}"))?.id);
    }
    let parse = |what: &str, v: &str| {
        nvr_core::Time90k::parse_rfc3339(v).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let req = nvr_storage::export::ExportRequest {
        cameras: cameras.clone(),
        start: parse("start", &a.start)?,
        end: parse("end", &a.end)?,
        case_ref: a.case.clone(),
        reason: a.reason.clone(),
        operator: format!("cli:{user}"),
    };
    nvr_storage::export::validate(&req)?;
    let file = std::fs::File::create_new(&a.out)
        .with_context(|| format!("creating {} (it must not exist)", a.out.display()))?;
    let now = SystemClock::new().realtime().0;
    let mut holds = Vec::new();
    for c in &cameras {
        store.audit(
            &req.operator,
            "export",
            &format!("camera:{c}"),
            serde_json::json!({"start": req.start.to_rfc3339(), "end": req.end.to_rfc3339(),
                               "case": req.case_ref, "reason": req.reason, "out": a.out.display().to_string()}),
        );
        holds.push(store.db().insert_hold(
            *c,
            req.start.0,
            req.end.0,
            &req.case_ref,
            "command-line export in progress",
            nvr_web::evidence::EXPORT_HOLD_OWNER,
            now,
        )?);
    }
    let result = nvr_storage::export::write_bundle(&store, &req, file, &mut |_, _| {});
    for h in holds {
        let _ = store
            .db()
            .release_hold(h, nvr_web::evidence::EXPORT_HOLD_OWNER, now);
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&a.out);
            return Err(e).context("exporting");
        }
    };
    for (name, sha, bytes) in &summary.files {
        println!("{}  {name}  ({bytes} bytes)", hex::encode(sha));
    }
    for (camera, frames) in &summary.frames_presented {
        println!("camera {camera}: {frames} frames in the requested range");
    }
    println!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn open(dir: &std::path::Path) -> anyhow::Result<Arc<Store>> {
    Store::open(dir, Arc::new(SystemClock::new()))
        .with_context(|| format!("opening data directory {}", dir.display()))
}

/// Hashes and stores a new user.
pub fn add_user(
    store: &Store,
    username: &str,
    role: nvr_core::Role,
    password: &str,
) -> anyhow::Result<()> {
    if username.is_empty() || username.len() > 64 || username.chars().any(char::is_control) {
        bail!("username must be 1 to 64 characters without control characters");
    }
    nvr_web::auth::check_password_policy(password).map_err(anyhow::Error::msg)?;
    let hash = nvr_web::auth::hash_password(password).map_err(anyhow::Error::msg)?;
    store
        .db()
        .insert_user(username, role, &hash, SystemClock::new().realtime().0)?;
    Ok(())
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
