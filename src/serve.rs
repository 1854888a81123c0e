//! `nvr serve`: lock and recover the data directory, start recording every enabled camera, and
//! serve the web UI and API until SIGINT/SIGTERM, then seal every open segment before exiting.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nvr_core::config::Config;
use nvr_core::{Clock, Duration90k, SystemClock};
use nvr_ingest::retina_source::RetinaSource;
use nvr_ingest::supervisor::SupervisorConfig;
use nvr_ingest::{Recorder, RecorderConfig};
use nvr_storage::retention::RetentionPolicy;
use nvr_storage::store::Store;
use nvr_storage::writer::WriterConfig;
use tracing::{info, warn};

use crate::cli::ServeArgs;
use crate::config;

/// How often the camera list is re-read, so `nvr camera add` reaches a running server.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// How often expired export bundles are looked for (they expire after days).
const EXPORT_EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);

pub fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let (mut cfg, dir) = config::resolve(&a.dir)?;
    if let Some(l) = a.listen {
        cfg.http.listen = l;
    }
    if a.tls {
        cfg.http.tls = nvr_core::config::TlsMode::On;
    }
    if a.insecure_http {
        cfg.http.tls = nvr_core::config::TlsMode::Off;
    }
    if let Some(s) = a.segment_duration_secs {
        cfg.recording.segment_duration_secs = s;
    }
    if let Some(b) = a.retain_max_bytes {
        cfg.retention.max_bytes_per_camera = b;
    }
    if let Some(i) = a.retention_interval_secs {
        cfg.retention.interval_secs = i;
    }
    if let Some(b) = a.min_free_bytes {
        cfg.retention.min_free_bytes = b;
    }
    cfg.validate()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(cfg, dir, None))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the recorder until SIGINT or SIGTERM. `ready` receives the bound address.
pub async fn run(
    cfg: Config,
    dir: std::path::PathBuf,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let store = Store::open(&dir, clock.clone())
        .with_context(|| format!("opening data directory {}", dir.display()))?;
    // Held until this function returns, after the recorder sealed its segments: recovery of a
    // second server would otherwise cut this one's open segments.
    let _lock = nvr_storage::lock::DataDirLock::acquire(&dir)?;
    let s2 = store.clone();
    let report = tokio::task::spawn_blocking(move || nvr_storage::recovery::recover(&s2))
        .await?
        .context("recovering open segments")?;
    info!(
        recovered = report.recovered.len(),
        removed_empty = report.removed_empty.len(),
        garbage = report.garbage_unlinked,
        "data directory ready"
    );
    let egress = nvr_ingest::egress::EgressPolicy::new(cfg.cameras.allow_host_names);
    let recorder = Recorder::start(
        store.clone(),
        Arc::new(
            RetinaSource::new(clock.clone(), egress.clone())
                .with_read_interval(Duration::from_millis(cfg.recording.read_interval_ms.into())),
        ),
        egress,
        recorder_config(&cfg),
    );
    recorder.reconcile()?;
    let motion = start_motion(&store, &recorder, &cfg)?;
    let mut cameras = nvr_app::CameraContext::of_recorder(&recorder);
    if let Some(m) = &motion {
        cameras = cameras.with_motion(m.clone());
    }
    let app = nvr_app::App::new(
        store.clone(),
        cameras,
        nvr_app::AppOptions {
            // Beyond loopback anyone on the LAN could claim an unset recorder first.
            setup_code_required: !cfg.http.listen.ip().is_loopback(),
            evidence: cfg.evidence.clone(),
            motion: cfg.motion.clone(),
        },
    );
    app.recover_exports()
        .map_err(|e| anyhow::anyhow!("cleaning up interrupted exports: {e}"))?;

    let use_tls = cfg.http.tls.enabled_for(cfg.http.listen);
    let tls = if use_tls {
        let material = tls_material(&store, cfg.http.listen).await?;
        let config =
            nvr_web::tls::server_config(&material.server_cert_pem, &material.server_key_pem)
                .map_err(anyhow::Error::msg)?;
        info!(ca_fingerprint_sha256 = %material.ca_fingerprint_sha256, "serving HTTPS; install DATA_DIR/tls/ca.pem on clients");
        Some((material, config))
    } else {
        None
    };
    let state = nvr_web::AppState {
        app: app.clone(),
        store: store.clone(),
        recorder: recorder.clone(),
        clock: clock.clone(),
        secure_cookies: tls.is_some(),
        server: nvr_web::status::ServerInfo {
            started: clock.realtime(),
            tls: tls.as_ref().map(|(m, _)| nvr_web::status::TlsInfo {
                ca_pem: m.ca_pem.clone(),
                ca_fingerprint_sha256: m.ca_fingerprint_sha256.clone(),
            }),
        },
        media: Default::default(),
    };
    if let Err(e) = nvr_media::init() {
        warn!(error = %e, "GStreamer is unavailable: snapshots and transcoding will fail");
    }
    if app
        .setup_state()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .needed
    {
        if cfg.http.listen.ip().is_loopback() {
            warn!("no user exists yet: the first visitor of the web UI creates the admin account");
        } else {
            // On the console only (never in the log): whoever reads it is at the recorder.
            let code = app
                .setup_code()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .unwrap_or_default();
            warn!(
                "no user exists yet: creating the admin account in the web UI needs the setup code printed on this console"
            );
            println!("first-run setup code: {code}");
        }
    }
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.http.listen))?;
    let addr = listener.local_addr()?;
    if tls.is_none() && !addr.ip().is_loopback() {
        warn!(%addr, "serving plain HTTP beyond loopback (--insecure-http): passwords and video cross the network unencrypted");
    }
    info!(%addr, tls = tls.is_some(), "serving the web UI and API");
    println!(
        "nvr serving on {}://{addr}/",
        if tls.is_some() { "https" } else { "http" }
    );
    let pid_file = dir.join(crate::doctor::PID_FILE);
    if let Err(e) = std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
        warn!(error = %e, "cannot write {}: nvr doctor will not find the recorder", pid_file.display());
    }
    if let Some(r) = ready {
        let _ = r.send(addr);
    }

    let reconciler = {
        let recorder = recorder.clone();
        let motion = motion.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RECONCILE_INTERVAL).await;
                if let Err(e) = recorder.reconcile() {
                    warn!(error = %e, "re-reading the camera list failed");
                }
                if let Some(m) = &motion
                    && let Err(e) = m.reconcile()
                {
                    warn!(error = %e, "updating motion analysis failed");
                }
            }
        })
    };
    let expirer = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                let app = app.clone();
                match tokio::task::spawn_blocking(move || app.expire_exports()).await {
                    Ok(Err(e)) => warn!(error = %e, "deleting expired export bundles failed"),
                    Err(e) => warn!(error = %e, "the export expiry task failed"),
                    Ok(Ok(_)) => {}
                }
                tokio::time::sleep(EXPORT_EXPIRY_INTERVAL).await;
            }
        })
    };
    let (max_connections, open_file_limit) =
        nvr_web::server::connection_budget(cfg.http.max_connections as usize);
    info!(max_connections, open_file_limit, "connection limits");
    let mut hosts = nvr_storage::tls::machine_sans();
    hosts.push(addr.ip().to_string());
    hosts.extend(cfg.http.allowed_hosts.iter().cloned());
    let options = nvr_web::server::ServeOptions {
        max_connections,
        max_connections_per_client: cfg.http.max_connections_per_client as usize,
        hosts: nvr_web::server::HostAllowlist::new(hosts),
    };
    let router = nvr_web::router(state);
    nvr_web::server::serve(
        listener,
        router,
        tls.map(|(_, c)| c),
        options,
        shutdown_signal(),
    )
    .await;
    reconciler.abort();
    expirer.abort();
    if let Some(m) = motion {
        // First, so the last seconds analysed are stored with the segments still open.
        info!("shutting down: storing the last motion analysed");
        let _ = tokio::task::spawn_blocking(move || m.shutdown()).await;
    }
    info!("shutting down: sealing open segments");
    recorder.shutdown().await;
    let _ = std::fs::remove_file(&pid_file);
    info!("stopped");
    Ok(())
}

/// Starts motion analysis of the recording cameras, unless the configuration turns it off.
fn start_motion(
    store: &Arc<Store>,
    recorder: &Arc<Recorder>,
    cfg: &Config,
) -> anyhow::Result<Option<Arc<nvr_motion::MotionService>>> {
    if !cfg.motion.enabled {
        info!("motion analysis is off ([motion] enabled = false)");
        return Ok(None);
    }
    let service = nvr_motion::MotionService::start(
        store.clone(),
        recorder.clone(),
        cfg.motion.clone(),
        nvr_motion::gstreamer_decoders(),
    )
    .context("starting motion analysis")?;
    service.reconcile()?;
    Ok(Some(service))
}

/// The CA and a server certificate covering this machine and the listen address.
pub async fn tls_material(
    store: &Arc<Store>,
    listen: SocketAddr,
) -> anyhow::Result<nvr_storage::tls::TlsMaterial> {
    let mut sans = nvr_storage::tls::machine_sans();
    if !listen.ip().is_unspecified() {
        sans.push(listen.ip().to_string());
    }
    let id = crate::commands::short_recorder_id(store)?;
    let dir = store.dir().to_owned();
    tokio::task::spawn_blocking(move || nvr_storage::tls::ensure(&dir, &id, &sans))
        .await?
        .context("preparing the TLS certificate")
}

pub fn recorder_config(cfg: &Config) -> RecorderConfig {
    let r = &cfg.retention;
    RecorderConfig {
        writer: WriterConfig {
            segment_duration: Duration90k::from_secs(i64::from(
                cfg.recording.segment_duration_secs,
            )),
            fsync_interval: Duration90k::from_secs(i64::from(cfg.recording.fsync_interval_secs)),
        },
        supervisor: SupervisorConfig::default(),
        default_retention: RetentionPolicy {
            max_bytes: (r.max_bytes_per_camera > 0).then_some(r.max_bytes_per_camera),
            max_age: (r.max_age_days > 0)
                .then(|| Duration90k::from_secs(i64::from(r.max_age_days) * 86_400)),
        },
        retention_interval: Duration::from_secs(u64::from(r.interval_secs)),
        min_free_bytes: r.min_free_bytes,
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    info!("signal received");
}
