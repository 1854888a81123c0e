//! GStreamer launch descriptions: the start-up clip encoder and the per-mount RTSP media.

use crate::elements::{AudioElements, CodecElements};
use crate::{AudioCodec, Codec, TestCamConfig};

/// RTP payload type of the video stream (`pay0`): the first dynamic payload type.
pub(crate) const VIDEO_PAYLOAD_TYPE: u8 = 96;
/// RTP payload type of an AAC stream (`pay1`): the next dynamic payload type. G.711 uses
/// its static payload types (PCMA 8, PCMU 0), as cameras do.
pub(crate) const AAC_PAYLOAD_TYPE: u8 = 97;
/// AAC bit rate in bit/s; plenty for a mono sine.
const AAC_BITRATE_BPS: u32 = 64_000;
/// Samples per AAC audio buffer: one AAC frame (1024 samples, 21.3 ms at 48 kHz), so the
/// encoder gets whole frames and the source wakes up ~47 times a second, not 100.
const AAC_SAMPLES_PER_BUFFER: u32 = 1024;
/// Samples per G.711 buffer: 20 ms at 8 kHz, the usual packet time of G.711 cameras.
const G711_SAMPLES_PER_BUFFER: u32 = 160;
/// How far the SMPTE pattern moves each frame, in pixels, so every frame differs and
/// P-frames carry real motion.
const PATTERN_SPEED_PX: u32 = 4;

/// Element name of the `appsink` in [`clip_encoder`].
pub(crate) const CLIP_SINK_NAME: &str = "sink";
/// Element name of the `appsrc` in [`replay_media`].
pub(crate) const REPLAY_SRC_NAME: &str = "src";
/// Element name of the `appsrc` that draws a scene (`--scene`).
pub(crate) const SCENE_SRC_NAME: &str = "scene";

/// Raw test video: a moving SMPTE pattern with the running time burnt in (when
/// `timeoverlay` is installed).
fn raw_video(config: &TestCamConfig, live: bool, num_buffers: Option<u32>) -> String {
    if config.scene_spec().is_some() {
        // Pictures drawn in Rust (scene.rs), paced to the clock when live.
        return format!(
            "appsrc name={SCENE_SRC_NAME} is-live={live} format=time stream-type=stream \
             caps=video/x-raw,format=I420,width={w},height={h},framerate={fps}/1,\
             pixel-aspect-ratio=1/1{sync}",
            w = config.width,
            h = config.height,
            fps = config.fps,
            sync = if live { " ! clocksync" } else { "" },
        );
    }
    let num_buffers = num_buffers.map_or(String::new(), |n| format!(" num-buffers={n}"));
    let overlay = if crate::elements::available("timeoverlay") {
        " ! timeoverlay"
    } else {
        tracing::warn!("timeoverlay (Debian package gstreamer1.0-x) is missing; no clock overlay");
        ""
    };
    format!(
        "videotestsrc is-live={live} pattern=smpte horizontal-speed={PATTERN_SPEED_PX}{num_buffers} \
         ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1,pixel-aspect-ratio=1/1\
         {overlay}",
        w = config.width,
        h = config.height,
        fps = config.fps,
    )
}

/// The encoder: `--bframes` B-frames (none by default), key frames exactly every `keyint`
/// frames (scene-cut detection off), closed GOP with IDR key frames unless `--open-gop` (x265
/// CRA). `tune=zerolatency` turns B-frames off, but the options after it turn them back on;
/// x265 then needs a lookahead longer than the B-frame run. The parser and payloader stay as
/// they are: access units in decode order, byte-stream, each stamped with its presentation
/// time (the RTP timestamp).
fn encoder(config: &TestCamConfig) -> String {
    let keyint = config.keyint();
    let bitrate = config.bitrate_kbps;
    // A scene's pictures must reach the recorder when they are drawn (tests compare wall
    // times): one encoder thread, so frame threading adds no frames of delay.
    let threads = if config.scene_spec().is_some() {
        " threads=1"
    } else {
        ""
    };
    let bframes = config.bframes;
    match config.codec {
        // superfast keeps start-up encoding of 1080p clips to a few seconds on 2 cores.
        // zerolatency would split frames into one slice per thread; rtph264pay's
        // config-interval=-1 then puts SPS/PPS before every IDR *slice*, which makes
        // clients see two frames per key frame. One slice per frame, like most cameras.
        Codec::H264 => format!(
            "x264enc tune=zerolatency sliced-threads=false speed-preset=superfast \
             bframes={bframes} key-int-max={keyint} bitrate={bitrate} \
             option-string=scenecut=0{threads}"
        ),
        Codec::H265 => format!(
            "x265enc tune=zerolatency speed-preset=superfast key-int-max={keyint} \
             bitrate={bitrate} log-level=error \
             option-string=\"bframes={bframes}{lookahead}:scenecut=0:open-gop={open_gop}\"",
            lookahead = if bframes > 0 {
                format!(":rc-lookahead={}", bframes + 1)
            } else {
                String::new()
            },
            open_gop = u8::from(config.open_gop),
        ),
    }
}

/// Optional audio branch (a 440 Hz sine, mono), payloaded as `pay1`.
fn audio_branch(audio: Option<AudioElements>) -> String {
    let Some(audio) = audio else {
        return String::new();
    };
    let (samples, encoder, payloader) = match audio.codec {
        AudioCodec::Aac => (
            AAC_SAMPLES_PER_BUFFER,
            format!("{} bitrate={AAC_BITRATE_BPS}", audio.encoder),
            format!("{} name=pay1 pt={AAC_PAYLOAD_TYPE}", audio.payloader),
        ),
        // The G.711 payloaders' default payload types are the static ones (8, 0).
        AudioCodec::Pcma | AudioCodec::Pcmu => (
            G711_SAMPLES_PER_BUFFER,
            audio.encoder.to_owned(),
            format!("{} name=pay1", audio.payloader),
        ),
    };
    format!(
        " audiotestsrc is-live=true wave=sine freq=440 volume=0.3 samplesperbuffer={samples} \
         ! audio/x-raw,rate={rate},channels=1 ! audioconvert ! {encoder} ! {payloader}",
        rate = audio.codec.sample_rate_hz(),
    )
}

/// The one-shot pipeline that encodes the replay clip of `frames` frames into an
/// `appsink` as byte-stream access units, parameter sets in front of every key frame.
pub(crate) fn clip_encoder(config: &TestCamConfig, frames: u32) -> String {
    let codec = CodecElements::of(config.codec);
    format!(
        "{raw} ! {encoder} ! {parser} config-interval=-1 \
         ! {media_type},stream-format=byte-stream,alignment=au \
         ! appsink name={CLIP_SINK_NAME} sync=false",
        raw = raw_video(config, false, Some(frames)),
        encoder = encoder(config),
        parser = codec.parser,
        media_type = codec.media_type,
    )
}

/// A replay mount: the shared clip is pushed into `appsrc` (live, not seekable),
/// `clocksync` paces it to the pipeline clock, the payloader re-sends parameter sets
/// with every key frame.
pub(crate) fn replay_media(config: &TestCamConfig, audio: Option<AudioElements>) -> String {
    let codec = CodecElements::of(config.codec);
    format!(
        "( appsrc name={REPLAY_SRC_NAME} is-live=true format=time stream-type=stream \
         ! clocksync ! {parser} ! {pay} name=pay0 pt={VIDEO_PAYLOAD_TYPE} config-interval=-1\
         {audio} )",
        parser = codec.parser,
        pay = codec.payloader,
        audio = audio_branch(audio),
    )
}

/// A live mount: its own test source and encoder.
pub(crate) fn live_media(config: &TestCamConfig, audio: Option<AudioElements>) -> String {
    let codec = CodecElements::of(config.codec);
    format!(
        "( {raw} ! {encoder} ! {parser} ! {pay} name=pay0 pt={VIDEO_PAYLOAD_TYPE} \
         config-interval=-1{audio} )",
        raw = raw_video(config, true, None),
        encoder = encoder(config),
        parser = codec.parser,
        pay = codec.payloader,
        audio = audio_branch(audio),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_lines_parse() {
        gstreamer::init().expect("GStreamer initialises");
        let config = TestCamConfig {
            codec: Codec::H265,
            open_gop: true,
            ..TestCamConfig::default()
        };
        let enc = clip_encoder(&config, 30);
        assert!(enc.contains("open-gop=1"), "{enc}");
        let bframes = TestCamConfig {
            bframes: 2,
            ..config.clone()
        };
        let enc_b = clip_encoder(&bframes, 30);
        assert!(enc_b.contains("bframes=2:rc-lookahead=3:"), "{enc_b}");
        for launch in [
            enc,
            enc_b,
            live_media(
                &TestCamConfig {
                    bframes: 3,
                    ..TestCamConfig::default()
                },
                None,
            ),
            replay_media(
                &config,
                Some(AudioElements::of(AudioCodec::Aac).expect("AAC")),
            ),
            live_media(
                &TestCamConfig::default(),
                Some(AudioElements::of(AudioCodec::Pcma).expect("PCMA")),
            ),
            live_media(
                &TestCamConfig::default(),
                Some(AudioElements::of(AudioCodec::Pcmu).expect("PCMU")),
            ),
        ] {
            gstreamer::parse::launch(&launch).unwrap_or_else(|e| panic!("{launch}: {e}"));
        }
    }
}
