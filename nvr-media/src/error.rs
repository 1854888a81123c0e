//! The crate's error type, [`MediaError`], and the Debian package behind each GStreamer element.

/// Everything that can go wrong while decoding, snapshotting or transcoding.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer itself could not be initialised.
    #[error("cannot initialise GStreamer: {0}")]
    GstInit(String),

    /// A GStreamer element this crate needs is not installed.
    #[error("GStreamer element `{element}` is not installed; install the Debian package {package}")]
    MissingElement {
        /// The element's factory name, e.g. `avdec_h265`.
        element: &'static str,
        /// The Debian (bookworm) package that provides it.
        package: &'static str,
    },

    /// `VideoParams::sample_entry` is not a usable `avc1`/`avc3`/`hvc1`/`hev1` box.
    #[error("malformed video sample entry: {0}")]
    InvalidSampleEntry(String),

    /// The caller passed something unusable (no frames, a first frame that is not a key frame,
    /// timestamps going backwards, impossible options, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The decoder consumed the input without producing a single picture (corrupt data).
    #[error(
        "the decoder produced no picture from {frames} frame(s); the data is corrupt or truncated"
    )]
    NoPicture {
        /// How many access units were fed to the decoder.
        frames: usize,
    },

    /// A GStreamer pipeline reported an error, or could not be built or started.
    #[error("GStreamer pipeline error: {0}")]
    Pipeline(String),

    /// A blocking operation did not finish in time.
    #[error("{what} did not finish within {secs} s")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The limit that was exceeded, in seconds.
        secs: u64,
    },

    /// [`crate::Transcoder::push`] dropped the frame because the pipeline is behind: its input
    /// queue is full, or an earlier frame was dropped and this one is not a key frame (decoding
    /// can only resume at a key frame). Nothing is queued; the stream continues cleanly at the
    /// next key frame that fits.
    #[error("frame dropped: the transcoder is behind or waiting for a key frame ({queued} queued)")]
    Backlogged {
        /// Input frames waiting in the pipeline's input queue when this one was dropped.
        queued: usize,
    },

    /// [`crate::Transcoder::push`] was called after [`crate::Transcoder::finish`].
    #[error("transcoder input already finished")]
    Finished,
}

impl MediaError {
    /// What kind of failure this is: the machine's (GStreamer missing or failing, a timeout) is
    /// internal; undecodable data is data loss (what callers decode is stored or received
    /// video); unusable arguments are the caller's; a dropped frame is throttling.
    pub fn kind(&self) -> nvr_core::ErrorKind {
        use nvr_core::ErrorKind;
        match self {
            MediaError::GstInit(_)
            | MediaError::MissingElement { .. }
            | MediaError::Pipeline(_)
            | MediaError::Timeout { .. }
            | MediaError::Finished => ErrorKind::Internal,
            MediaError::InvalidSampleEntry(_) | MediaError::NoPicture { .. } => ErrorKind::DataLoss,
            MediaError::InvalidInput(_) => ErrorKind::InvalidArgument,
            MediaError::Backlogged { .. } => ErrorKind::Throttled,
        }
    }

    /// Whether this error only reports a frame [`crate::Transcoder::push`] dropped (the
    /// transcoder is fine; keep pushing).
    pub fn is_frame_dropped(&self) -> bool {
        matches!(self, MediaError::Backlogged { .. })
    }
}

/// The Debian (bookworm) package that ships the GStreamer element `element`.
pub(crate) fn debian_package(element: &str) -> &'static str {
    match element {
        "appsrc" | "appsink" | "videoconvert" | "videoscale" | "capsfilter" => {
            "gstreamer1.0-plugins-base"
        }
        "jpegenc" | "jpegdec" => "gstreamer1.0-plugins-good",
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "h264parse" | "h265parse" => "gstreamer1.0-plugins-bad",
        "avdec_h264" | "avdec_h265" => "gstreamer1.0-libav",
        _ => "(unknown package)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_element_message_names_element_and_package() {
        let e = MediaError::MissingElement {
            element: "avdec_h265",
            package: debian_package("avdec_h265"),
        };
        let msg = e.to_string();
        assert!(msg.contains("`avdec_h265`"), "{msg}");
        assert!(msg.contains("gstreamer1.0-libav"), "{msg}");
        assert_eq!(debian_package("x264enc"), "gstreamer1.0-plugins-ugly");
        assert_eq!(debian_package("h265parse"), "gstreamer1.0-plugins-bad");
    }
}
