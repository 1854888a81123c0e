//! Checks that the GStreamer elements a configuration needs are installed, naming the
//! Debian package that provides a missing one.

use crate::{AudioCodec, Codec, Mode, TestCamConfig, TestCamError};

/// The Debian (bookworm) package that ships `element`.
fn debian_package(element: &str) -> &'static str {
    match element {
        "clocksync" => "libgstreamer1.0-0",
        "appsrc" | "appsink" | "videotestsrc" | "audiotestsrc" | "audioconvert" => {
            "gstreamer1.0-plugins-base"
        }
        "timeoverlay" => "gstreamer1.0-x",
        "rtpbin" | "rtph264pay" | "rtph265pay" | "rtpmp4gpay" | "rtppcmapay" | "rtppcmupay"
        | "alawenc" | "mulawenc" => "gstreamer1.0-plugins-good",
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "x265enc" | "h264parse" | "h265parse" | "voaacenc" => "gstreamer1.0-plugins-bad",
        "avenc_aac" => "gstreamer1.0-libav",
        _ => "(unknown)",
    }
}

/// Whether the element factory `name` is registered.
pub(crate) fn available(name: &str) -> bool {
    gstreamer::ElementFactory::find(name).is_some()
}

/// Fails with [`TestCamError::MissingElement`] if `element` is not installed.
fn require(element: &'static str) -> Result<(), TestCamError> {
    if available(element) {
        Ok(())
    } else {
        Err(TestCamError::MissingElement {
            element,
            package: debian_package(element),
        })
    }
}

/// Encoder, parser and payloader element names of a codec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodecElements {
    /// Encoder factory name (`x264enc` / `x265enc`).
    pub encoder: &'static str,
    /// Parser factory name (`h264parse` / `h265parse`).
    pub parser: &'static str,
    /// RTP payloader factory name (`rtph264pay` / `rtph265pay`).
    pub payloader: &'static str,
    /// Media type of the encoded stream (`video/x-h264` / `video/x-h265`).
    pub media_type: &'static str,
}

impl CodecElements {
    /// The elements used for `codec`.
    pub fn of(codec: Codec) -> Self {
        match codec {
            Codec::H264 => Self {
                encoder: "x264enc",
                parser: "h264parse",
                payloader: "rtph264pay",
                media_type: "video/x-h264",
            },
            Codec::H265 => Self {
                encoder: "x265enc",
                parser: "h265parse",
                payloader: "rtph265pay",
                media_type: "video/x-h265",
            },
        }
    }
}

/// The AAC encoder to use: `avenc_aac` (gstreamer1.0-libav) or else `voaacenc`
/// (gstreamer1.0-plugins-bad).
pub(crate) fn aac_encoder() -> Result<&'static str, TestCamError> {
    ["avenc_aac", "voaacenc"]
        .into_iter()
        .find(|name| available(name))
        .ok_or(TestCamError::MissingElement {
            element: "avenc_aac",
            package: "gstreamer1.0-libav (or gstreamer1.0-plugins-bad for voaacenc)",
        })
}

/// Encoder and payloader element names of the audio branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioElements {
    /// The codec they make.
    pub codec: AudioCodec,
    /// Encoder factory name (`avenc_aac` / `voaacenc`, `alawenc`, `mulawenc`).
    pub encoder: &'static str,
    /// RTP payloader factory name (`rtpmp4gpay`, `rtppcmapay`, `rtppcmupay`).
    pub payloader: &'static str,
}

impl AudioElements {
    /// The elements used for `codec`; AAC's encoder is the one installed.
    pub fn of(codec: AudioCodec) -> Result<Self, TestCamError> {
        let (encoder, payloader) = match codec {
            AudioCodec::Aac => (aac_encoder()?, "rtpmp4gpay"),
            AudioCodec::Pcma => ("alawenc", "rtppcmapay"),
            AudioCodec::Pcmu => ("mulawenc", "rtppcmupay"),
        };
        Ok(Self {
            codec,
            encoder,
            payloader,
        })
    }
}

/// Checks every element `config` needs. `timeoverlay` is optional and not checked.
/// Returns the audio elements to use when `--audio` is set.
pub(crate) fn check(config: &TestCamConfig) -> Result<Option<AudioElements>, TestCamError> {
    let codec = CodecElements::of(config.codec);
    for element in [
        "rtpbin",
        "videotestsrc",
        codec.encoder,
        codec.parser,
        codec.payloader,
    ] {
        require(element)?;
    }
    if config.mode == Mode::Replay {
        for element in ["appsrc", "appsink", "clocksync"] {
            require(element)?;
        }
    }
    let Some(codec) = config.audio else {
        return Ok(None);
    };
    let audio = AudioElements::of(codec)?;
    for element in [
        "audiotestsrc",
        "audioconvert",
        audio.encoder,
        audio.payloader,
    ] {
        require(element)?;
    }
    Ok(Some(audio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_element_names_its_package() {
        gstreamer::init().expect("GStreamer initialises");
        require("x264enc").expect("x264enc is installed on the test machine");
        let message = require("nosuchelement")
            .expect_err("no such element")
            .to_string();
        assert!(message.contains("`nosuchelement`"), "{message}");
        assert_eq!(debian_package("x264enc"), "gstreamer1.0-plugins-ugly");
        assert_eq!(debian_package("avenc_aac"), "gstreamer1.0-libav");
        assert_eq!(debian_package("alawenc"), "gstreamer1.0-plugins-good");
    }
}
