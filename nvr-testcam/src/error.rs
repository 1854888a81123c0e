//! The crate's error type, [`TestCamError`].

use std::net::SocketAddr;

/// Everything that can go wrong while starting or running a test camera.
#[derive(Debug, thiserror::Error)]
pub enum TestCamError {
    /// A command-line option has an unusable value.
    #[error("invalid option --{option}: {reason}")]
    InvalidOption {
        /// The option's long name, without the leading dashes.
        option: &'static str,
        /// Why the value was rejected.
        reason: String,
    },

    /// GStreamer itself could not be initialised.
    #[error("cannot initialise GStreamer: {0}")]
    GstInit(String),

    /// A GStreamer element the configuration needs is not installed.
    #[error("GStreamer element `{element}` is not installed; install the Debian package {package}")]
    MissingElement {
        /// The element's factory name, e.g. `x264enc`.
        element: &'static str,
        /// The Debian package(s) that provide it.
        package: &'static str,
    },

    /// The RTSP server could not bind or listen on the requested address.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address from `--listen`.
        addr: SocketAddr,
        /// The operating system's or GLib's explanation.
        reason: String,
    },

    /// Encoding the in-memory replay clip at start-up failed.
    #[error("cannot encode the replay clip: {0}")]
    Encode(String),

    /// Any other GStreamer or GLib failure (building a pipeline, a thread).
    #[error("GStreamer error: {0}")]
    Gst(String),

    /// Writing the status lines of [`crate::run`] or installing the signal handlers failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
