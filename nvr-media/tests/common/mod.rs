//! Test support shared by the integration tests: real H.264/H.265 clips encoded with GStreamer
//! at test time and wrapped exactly as retina would store them, an independent H.264 decoder
//! check, a JPEG size parser, and helpers that turn hangs into failures.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a different subset

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use nvr_core::{VideoCodec, VideoParams};
use nvr_media::{MAX_QUEUED_INPUT, TranscodedFrame, Transcoder};

/// Frame rate of the generated clips.
pub const FPS: u32 = 15;
/// 90 kHz ticks per frame at [`FPS`].
pub const TICKS_PER_FRAME: i64 = 90_000 / FPS as i64;
/// Frames between key frames in the generated clips (one second).
pub const KEYINT: u32 = 15;
/// Frames in the shared clips: three GOPs, three seconds.
pub const CLIP_FRAMES: u32 = 45;

/// Encoded access units plus the parameters the recorder would store for them.
#[derive(Debug, Clone)]
pub struct Clip {
    pub params: VideoParams,
    /// Access units in MP4 framing (4-byte length-prefixed NAL units).
    pub frames: Vec<Bytes>,
    /// Whether each access unit is a key frame (from the parser's flags).
    pub keys: Vec<bool>,
    /// Each access unit's presentation time from the first's, 90 kHz: increasing without
    /// B-frames; with them, going back within each GOP (the access units are in decode order).
    pub pts_90k: Vec<i64>,
}

/// Runs `f` on a thread and fails the test if it takes longer than `secs`.
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(e) => panic!("{what} did not finish within {secs} s: {e}"),
    }
}

/// Builds a VisualSampleEntry box the way retina's `mp4_sample_entry().build()` does.
pub fn sample_entry(
    fourcc: &[u8; 4],
    config_fourcc: &[u8; 4],
    record: &[u8],
    w: u16,
    h: u16,
) -> Bytes {
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_be_bytes()); // reserved
    body.extend_from_slice(&1u32.to_be_bytes()); // reserved + data_reference_index = 1
    body.extend_from_slice(&[0; 16]);
    body.extend_from_slice(&w.to_be_bytes());
    body.extend_from_slice(&h.to_be_bytes());
    body.extend_from_slice(&[0x00, 0x48, 0x00, 0x00, 0x00, 0x48, 0x00, 0x00]); // 72 dpi
    body.extend_from_slice(&[0, 0, 0, 0, 0x00, 0x01]); // reserved, frame count 1
    body.extend_from_slice(&[0; 32]); // compressorname
    body.extend_from_slice(&[0x00, 0x18, 0xff, 0xff]); // depth, pre_defined
    body.extend_from_slice(&((record.len() + 8) as u32).to_be_bytes());
    body.extend_from_slice(config_fourcc);
    body.extend_from_slice(record);
    let mut entry = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    entry.extend_from_slice(fourcc);
    entry.extend_from_slice(&body);
    Bytes::from(entry)
}

/// Encodes `frames` pictures of a moving test pattern at `width`x`height`, [`FPS`] fps, with a
/// key frame every `keyint` frames and no B-frames.
pub fn encode(codec: VideoCodec, width: u16, height: u16, frames: u32, keyint: u32) -> Clip {
    encode_pattern(codec, width, height, frames, keyint, "ball")
}

/// [`encode`] with another `videotestsrc` pattern (with its properties, e.g.
/// `smpte horizontal-speed=4`).
pub fn encode_pattern(
    codec: VideoCodec,
    width: u16,
    height: u16,
    frames: u32,
    keyint: u32,
    pattern: &str,
) -> Clip {
    encode_with(codec, width, height, frames, keyint, pattern, 0)
}

/// [`encode_pattern`] with up to `bframes` consecutive B-frames (closed GOPs).
pub fn encode_with(
    codec: VideoCodec,
    width: u16,
    height: u16,
    frames: u32,
    keyint: u32,
    pattern: &str,
    bframes: u32,
) -> Clip {
    gst::init().unwrap();
    let raw = format!(
        "videotestsrc num-buffers={frames} pattern={pattern} ! \
         video/x-raw,format=I420,width={width},height={height},framerate={FPS}/1"
    );
    let launch = match codec {
        VideoCodec::H264 => format!(
            "{raw} ! x264enc key-int-max={keyint} bframes={bframes} speed-preset=ultrafast ! h264parse ! \
             video/x-h264,stream-format=avc,alignment=au ! appsink name=sink sync=false wait-on-eos=false"
        ),
        VideoCodec::H265 => format!(
            "{raw} ! x265enc key-int-max={keyint} speed-preset=ultrafast \
             option-string=bframes={bframes}:open-gop=0 ! \
             h265parse ! video/x-h265,stream-format=hvc1,alignment=au ! \
             appsink name=sink sync=false wait-on-eos=false"
        ),
    };
    let pipeline = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("encoding finishes within 60 s");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("encoding failed: {} {:?}", e.error(), e.debug());
    }
    let mut out = Vec::new();
    let mut keys = Vec::new();
    let mut pts_ns = Vec::new();
    let mut codec_data = None;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::ZERO) {
        if codec_data.is_none() {
            let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
            let buf = s.get::<gst::Buffer>("codec_data").unwrap();
            codec_data = Some(buf.map_readable().unwrap().to_vec());
        }
        let buffer = sample.buffer().unwrap();
        keys.push(!buffer.flags().contains(gst::BufferFlags::DELTA_UNIT));
        pts_ns.push(i128::from(buffer.pts().unwrap().nseconds()));
        out.push(Bytes::copy_from_slice(&buffer.map_readable().unwrap()));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(out.len(), frames as usize, "encoder output count");
    let record = codec_data.expect("codec_data in caps");
    let (fourcc, config, rfc6381) = match codec {
        VideoCodec::H264 => (
            b"avc1",
            b"avcC",
            format!("avc1.{:02X}{:02X}{:02X}", record[1], record[2], record[3]),
        ),
        VideoCodec::H265 => (b"hvc1", b"hvcC", "hvc1.1.6.L60.B0".to_string()),
    };
    Clip {
        params: VideoParams {
            codec,
            rfc6381_codec: rfc6381,
            width,
            height,
            sample_entry: sample_entry(fourcc, config, &record, width, height),
        },
        frames: out,
        keys,
        pts_90k: pts_ns
            .iter()
            .map(|p| ((p - pts_ns[0]) * 90_000 + 500_000_000).div_euclid(1_000_000_000) as i64)
            .collect(),
    }
}

/// The shared 320x240, [`CLIP_FRAMES`]-frame clip of `codec`, encoded once per test binary.
pub fn clip(codec: VideoCodec) -> &'static Clip {
    static H264: OnceLock<Clip> = OnceLock::new();
    static H265: OnceLock<Clip> = OnceLock::new();
    let cell = match codec {
        VideoCodec::H264 => &H264,
        VideoCodec::H265 => &H265,
    };
    cell.get_or_init(|| encode(codec, 320, 240, CLIP_FRAMES, KEYINT))
}

/// Decodes H.264 access units described by `params` with GStreamer's `avdec_h264` (not this
/// crate's code) and returns the number of pictures and their size.
pub fn decode_h264(params: &VideoParams, frames: &[Bytes]) -> (usize, u32, u32) {
    gst::init().unwrap();
    let config = nvr_media::parse_sample_entry(&params.sample_entry).unwrap();
    let caps = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .field(
            "codec_data",
            gst::Buffer::from_slice(config.record.to_vec()),
        )
        .build();
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time ! h264parse ! avdec_h264 output-corrupt=false discard-corrupted-frames=true ! appsink name=sink sync=false wait-on-eos=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.set_caps(Some(&caps));
    src.set_max_bytes(0);
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let size = Arc::new(Mutex::new((0usize, 0u32, 0u32)));
    let size_cb = Arc::clone(&size);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let s = sample.caps().unwrap().structure(0).unwrap();
                let mut size = size_cb.lock().unwrap();
                size.0 += 1;
                size.1 = s.get::<i32>("width").unwrap() as u32;
                size.2 = s.get::<i32>("height").unwrap() as u32;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    for f in frames {
        src.push_buffer(gst::Buffer::from_slice(f.clone())).unwrap();
    }
    src.end_of_stream().unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("decoding finishes within 30 s");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("decoding the output failed: {} {:?}", e.error(), e.debug());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    *size.lock().unwrap()
}

/// Width and height from a baseline/progressive JPEG's SOF marker; `None` if there is none.
pub fn jpeg_size(data: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2; // after SOI
    while i + 4 <= data.len() {
        if data[i] != 0xff {
            return None;
        }
        let marker = data[i + 1];
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        // SOF0..SOF3 (baseline, extended, progressive, lossless): P, Y(2), X(2).
        if (0xc0..=0xc3).contains(&marker) {
            let seg = data.get(i + 4..i + 9)?;
            let h = u16::from_be_bytes([seg[1], seg[2]]);
            let w = u16::from_be_bytes([seg[3], seg[4]]);
            return Some((u32::from(w), u32::from(h)));
        }
        i += 2 + len;
    }
    None
}

/// Checks SOI/EOI markers and returns the JPEG's size.
pub fn assert_jpeg(data: &[u8]) -> (u32, u32) {
    assert!(data.len() > 100, "JPEG of {} bytes", data.len());
    assert_eq!(&data[..2], &[0xff, 0xd8], "SOI");
    assert_eq!(&data[data.len() - 2..], &[0xff, 0xd9], "EOI");
    jpeg_size(data).expect("JPEG has a SOF marker")
}

/// The timestamp of frame `i` of a stream starting at `base`.
pub fn pts(base: i64, i: usize) -> i64 {
    base + i as i64 * TICKS_PER_FRAME
}

/// Pushes one frame after waiting (at most 30 s) until the input queue has room, so it is
/// never dropped for being behind.
pub fn push_paced(t: &Transcoder, frame: Bytes, pts: i64, key: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.queued_input() + 1 >= MAX_QUEUED_INPUT {
        assert!(Instant::now() < deadline, "input queue stuck at pts {pts}");
        std::thread::sleep(Duration::from_millis(2));
    }
    t.push(frame, pts, key).unwrap();
}

/// Pushes every frame of `clip` (at `base` plus its presentation time) without ever overrunning the input queue (waiting while it is
/// nearly full), finishes, and returns everything pulled by a concurrent puller thread.
pub fn transcode_all(t: &Arc<Transcoder>, clip: &Clip, base: i64) -> Vec<TranscodedFrame> {
    let puller = {
        let t = Arc::clone(t);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut out = Vec::new();
            while !t.is_drained() {
                assert!(Instant::now() < deadline, "output not drained within 60 s");
                if let Some(f) = t.pull(Duration::from_millis(100)).unwrap() {
                    out.push(f);
                }
            }
            out
        })
    };
    for ((frame, &key), &pts) in clip.frames.iter().zip(&clip.keys).zip(&clip.pts_90k) {
        push_paced(t, frame.clone(), base + pts, key);
    }
    t.finish().unwrap();
    puller.join().unwrap()
}
