//! The blocking `nvr testcam` entry point, [`run`]: start, print the status lines, serve
//! until SIGINT or SIGTERM.

use std::io::{self, Write};
use std::sync::mpsc;

use crate::{TestCam, TestCamConfig, TestCamError};

/// Starts a camera, prints its status lines to stdout and serves until SIGINT or
/// SIGTERM, then stops cleanly and returns `Ok(())`.
///
/// Stdout gets exactly these lines, each flushed as it is written:
///
/// ```text
/// testcam listening on 127.0.0.1:8554
/// rtsp://127.0.0.1:8554/cam1
/// ...
/// sub rtsp://127.0.0.1:8554/cam1_sub
/// ...
/// testcam ready
/// ```
///
/// Scripts wait for `testcam ready` and take the main streams' URLs from the lines starting
/// with `rtsp://`, in mount order, and the sub-streams' (none with `--no-sub`) from those
/// starting with `sub `. Logs go through `tracing`, never to stdout.
pub fn run(config: &TestCamConfig) -> Result<(), TestCamError> {
    let cam = TestCam::start(config)?;
    // Handlers are installed before "ready", so a signal sent right after it counts.
    let signals = spawn_signal_waiter()?;

    let mut out = io::stdout().lock();
    let mut line = |text: &str| -> io::Result<()> {
        writeln!(out, "{text}")?;
        out.flush()
    };
    line(&format!("testcam listening on {}", cam.local_addr()))?;
    for url in cam.urls() {
        line(&url)?;
    }
    if let Some(spec) = config.scene_spec() {
        // What a test needs to know when the scene's events happen.
        line(&format!(
            "testcam scene {:?} period {} s events {} ({})",
            spec.scene,
            spec.period_secs,
            config.scene_events,
            if config.mode == crate::Mode::Live {
                "periods start at multiples of the period since the Unix epoch"
            } else {
                "the clip loops from when the first client connected"
            }
        ))?;
    }
    for url in cam.sub_urls() {
        line(&format!("sub {url}"))?;
    }
    line("testcam ready")?;

    match signals.recv() {
        Ok(signal) => tracing::info!(signal, "stopping testcam"),
        Err(mpsc::RecvError) => tracing::warn!("signal watcher ended; stopping testcam"),
    }
    drop(cam);
    Ok(())
}

/// Starts a thread that waits for SIGINT or SIGTERM and reports which one arrived.
/// Returns once the handlers are installed. A separate thread with its own small tokio
/// runtime keeps this usable from inside a caller's async runtime.
fn spawn_signal_waiter() -> Result<mpsc::Receiver<&'static str>, TestCamError> {
    let (armed_tx, armed_rx) = mpsc::channel::<io::Result<()>>();
    let (signal_tx, signal_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("testcam-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = armed_tx.send(Err(err));
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let handlers = signal(SignalKind::interrupt())
                    .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
                let (mut int, mut term) = match handlers {
                    Ok(handlers) => handlers,
                    Err(err) => {
                        let _ = armed_tx.send(Err(err));
                        return;
                    }
                };
                let _ = armed_tx.send(Ok(()));
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                // The receiver is gone only if `run` already returned.
                let _ = signal_tx.send(name);
            });
        })?;
    match armed_rx.recv() {
        Ok(result) => result?,
        Err(mpsc::RecvError) => {
            return Err(TestCamError::Io(io::Error::other(
                "the signal thread ended before installing handlers",
            )));
        }
    }
    Ok(signal_rx)
}
