//! Log setup: `tracing` to stderr as text or JSON, filtered by `RUST_LOG` (default `info`);
//! colours only when stderr is a terminal (a file or the journal gets plain text).
//! Nothing logs secrets: passwords are redacted in every `Debug` of the types that carry them.

use std::io::IsTerminal;

use nvr_core::config::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        // retina logs camera-supplied text (whole SDP attributes) at WARN on every attempt; our
        // own messages say what went wrong, so keep only its errors.
        .unwrap_or_else(|_| EnvFilter::new("info,retina=error,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
