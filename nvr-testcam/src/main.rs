//! The standalone `nvr-testcam` binary: the same as `nvr testcam`, for scripts and tests
//! that want a camera process without the whole NVR.

use std::process::ExitCode;

use clap::Parser;
use nvr_testcam::TestCamConfig;

/// A real RTSP test camera on GStreamer's RTSP server.
#[derive(Debug, Parser)]
#[command(name = "nvr-testcam", version)]
struct Cli {
    #[command(flatten)]
    config: TestCamConfig,
}

fn main() -> ExitCode {
    // Logs go to stderr (RUST_LOG, default "info"); stdout carries only the status lines.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match nvr_testcam::run(&cli.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nvr-testcam: {err}");
            ExitCode::FAILURE
        }
    }
}
