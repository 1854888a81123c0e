//! Test scenes: pictures drawn in Rust (a still textured background, a dark box moving
//! during known frames) encoded by x264 into H.264 access units in MP4 framing, as the
//! recorder stores them; and a data directory with a camera.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use nvr_core::{CameraId, CameraUrl, SystemClock, VideoCodec, VideoParams};
use nvr_storage::AuditNote;
use nvr_storage::store::Store;

pub const W: u32 = 320;
pub const H: u32 = 180;
pub const FPS: u32 = 10;

/// An encoded scene.
pub struct Scene {
    pub params: Arc<VideoParams>,
    /// (access unit, is key frame), one per picture at `FPS`.
    pub frames: Vec<(Bytes, bool)>,
}

/// The luma of picture `i` of a scene with a 40x40 dark box crossing the lower left quarter
/// during frames `moving` (absent otherwise).
pub fn picture(i: u32, moving: &std::ops::Range<u32>) -> Vec<u8> {
    let mut y: Vec<u8> = (0..W * H)
        .map(|p| {
            let (x, yy) = (p % W, p / W);
            (70 + (x / 8 * 17 + yy / 8 * 29) % 100) as u8
        })
        .collect();
    if moving.contains(&i) {
        let t = i - moving.start;
        let x0 = 10 + (t * 8) % (W / 2 - 60);
        let y0 = H / 2 + 20;
        for yy in y0..y0 + 40 {
            for x in x0..x0 + 40 {
                y[(yy * W + x) as usize] = 15;
            }
        }
    }
    y
}

/// Encodes `n` pictures of `draw` (luma; chroma grey) with a key frame every `keyint`.
pub fn encode(n: u32, keyint: u32, draw: impl Fn(u32) -> Vec<u8>) -> Scene {
    gst::init().unwrap();
    let launch = format!(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={keyint} \
           bitrate=600 option-string=scenecut=0 \
         ! h264parse ! video/x-h264,stream-format=avc,alignment=au \
         ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    let mut codec_data = None;
    let mut take = |timeout: gst::ClockTime, frames: &mut Vec<(Bytes, bool)>| {
        while let Some(s) = sink.try_pull_sample(timeout) {
            if codec_data.is_none() {
                let st = s.caps().unwrap().structure(0).unwrap().to_owned();
                let b = st.get::<gst::Buffer>("codec_data").unwrap();
                codec_data = Some(b.map_readable().unwrap().to_vec());
            }
            let b = s.buffer().unwrap();
            let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
            frames.push((Bytes::copy_from_slice(&b.map_readable().unwrap()), key));
            if frames.len() == n as usize {
                return;
            }
        }
    };
    for i in 0..n {
        let mut data = draw(i);
        data.resize((W * H * 3 / 2) as usize, 128);
        let mut buf = gst::Buffer::from_slice(data);
        let pts = gst::ClockTime::from_nseconds(u64::from(i) * 1_000_000_000 / u64::from(FPS));
        buf.get_mut().unwrap().set_pts(pts);
        src.push_buffer(buf).unwrap();
        take(gst::ClockTime::ZERO, &mut frames);
    }
    src.end_of_stream().unwrap();
    while frames.len() < n as usize {
        let before = frames.len();
        take(gst::ClockTime::from_seconds(5), &mut frames);
        assert!(
            frames.len() > before,
            "the encoder stalled at {before} of {n}"
        );
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let avcc = codec_data.unwrap();
    let params = VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: format!("avc1.{:02X}{:02X}{:02X}", avcc[1], avcc[2], avcc[3]),
        width: W as u16,
        height: H as u16,
        sample_entry: nvr_media::avc1_sample_entry(&avcc, W as u16, H as u16),
    };
    Scene {
        params: Arc::new(params),
        frames,
    }
}

pub fn note() -> AuditNote {
    AuditNote::new(0, "test", "test", "test", serde_json::json!({}))
}

/// A data directory with one camera.
pub fn store() -> (tempfile::TempDir, Arc<Store>, CameraId) {
    let dir = tempfile::tempdir().unwrap();
    let clock = SystemClock::new();
    Store::init(dir.path(), &clock).unwrap();
    let store = Store::open(dir.path(), Arc::new(clock)).unwrap();
    let url = CameraUrl::parse("rtsp://127.0.0.1:8554/cam1").unwrap();
    let camera = store
        .add_camera(&nvr_storage::store::CameraEdit::new("cam1", &url), |_| {
            note()
        })
        .unwrap();
    (dir, store, camera)
}
