//! GStreamer launch descriptions: the start-up clip encoder and the per-mount RTSP media.

use crate::elements::CodecElements;
use crate::{Codec, TestCamConfig};

/// RTP payload type of the video stream (`pay0`): the first dynamic payload type.
pub(crate) const VIDEO_PAYLOAD_TYPE: u8 = 96;
/// RTP payload type of the audio stream (`pay1`): the next dynamic payload type.
pub(crate) const AUDIO_PAYLOAD_TYPE: u8 = 97;
/// Audio sample rate in Hz.
const AUDIO_RATE_HZ: u32 = 48_000;
/// AAC bit rate in bit/s; plenty for a mono sine.
const AUDIO_BITRATE_BPS: u32 = 64_000;
/// Samples per audio buffer: one AAC frame (1024 samples, 21.3 ms at 48 kHz), so the
/// encoder gets whole frames and the source wakes up ~47 times a second, not 100.
const AUDIO_SAMPLES_PER_BUFFER: u32 = 1024;
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

/// Optional AAC branch, payloaded as `pay1`.
fn audio_branch(aac_encoder: Option<&str>) -> String {
    aac_encoder.map_or(String::new(), |aac| {
        format!(
            " audiotestsrc is-live=true wave=sine freq=440 volume=0.3 \
             samplesperbuffer={AUDIO_SAMPLES_PER_BUFFER} \
             ! audio/x-raw,rate={AUDIO_RATE_HZ},channels=1 ! audioconvert \
             ! {aac} bitrate={AUDIO_BITRATE_BPS} \
             ! rtpmp4gpay name=pay1 pt={AUDIO_PAYLOAD_TYPE}"
        )
    })
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
pub(crate) fn replay_media(config: &TestCamConfig, aac_encoder: Option<&str>) -> String {
    let codec = CodecElements::of(config.codec);
    format!(
        "( appsrc name={REPLAY_SRC_NAME} is-live=true format=time stream-type=stream \
         ! clocksync ! {parser} ! {pay} name=pay0 pt={VIDEO_PAYLOAD_TYPE} config-interval=-1\
         {audio} )",
        parser = codec.parser,
        pay = codec.payloader,
        audio = audio_branch(aac_encoder),
    )
}

/// A live mount: its own test source and encoder.
pub(crate) fn live_media(config: &TestCamConfig, aac_encoder: Option<&str>) -> String {
    let codec = CodecElements::of(config.codec);
    format!(
        "( {raw} ! {encoder} ! {parser} ! {pay} name=pay0 pt={VIDEO_PAYLOAD_TYPE} \
         config-interval=-1{audio} )",
        raw = raw_video(config, true, None),
        encoder = encoder(config),
        parser = codec.parser,
        pay = codec.payloader,
        audio = audio_branch(aac_encoder),
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
            replay_media(&config, Some("avenc_aac")),
            live_media(&TestCamConfig::default(), None),
        ] {
            gstreamer::parse::launch(&launch).unwrap_or_else(|e| panic!("{launch}: {e}"));
        }
    }
}
