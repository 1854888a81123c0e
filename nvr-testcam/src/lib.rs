//! `nvr-testcam`: a real RTSP camera built on GStreamer's RTSP server, for end-to-end
//! tests, `make demo` and load benchmarks.
//!
//! Each of `--mounts` paths `/cam1 .. /camN` serves H.264 or H.265 video (and optionally
//! AAC, G.711 A-law or µ-law audio) as a shared, live, non-seekable media, and `/cam1_sub .. /camN_sub` the same
//! picture smaller (`--sub-width`, `--sub-height`, default 640x360, at `--sub-bitrate-kbps`;
//! none with `--no-sub`), like a real camera's sub-stream. In the default **replay** mode a
//! short clip per stream is encoded once at start-up and every mount loops it from memory,
//! paced to the clock, so a mount costs almost no CPU; **live** mode encodes per mount.
//!
//! Pipelines (H.265 uses `x265enc`/`h265parse`/`rtph265pay`):
//!
//! ```text
//! clip (once): videotestsrc pattern=smpte horizontal-speed=4 num-buffers=N ! timeoverlay
//!              ! x264enc tune=zerolatency sliced-threads=false bframes=0 key-int-max=K
//!              ! h264parse config-interval=-1 ! byte-stream,au ! appsink
//! replay:      appsrc is-live=true format=time stream-type=stream ! clocksync
//!              ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1
//! live:        videotestsrc is-live=true ... ! x264enc ... ! h264parse ! rtph264pay name=pay0
//! --audio aac: audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=1
//!              ! audioconvert ! avenc_aac ! rtpmp4gpay name=pay1 pt=97
//! --audio pcma: audiotestsrc ... ! audio/x-raw,rate=8000,channels=1 ! audioconvert
//!              ! alawenc ! rtppcmapay name=pay1 pt=8   (pcmu: mulawenc, rtppcmupay, pt=0)
//! ```
//!
//! ```no_run
//! use nvr_testcam::{TestCam, TestCamConfig};
//!
//! let config = TestCamConfig {
//!     listen: "127.0.0.1:0".parse()?,
//!     width: 320,
//!     height: 240,
//!     ..TestCamConfig::default()
//! };
//! let cam = TestCam::start(&config)?;
//! println!("{}", cam.urls()[0]); // rtsp://127.0.0.1:PORT/cam1
//! drop(cam); // stops the server and frees the port
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clip;
mod config;
mod elements;
mod error;
mod mount;
mod pipelines;
mod replay;
mod run;
pub mod scene;
mod server;

pub use config::{
    AudioCodec, Codec, MAX_BITRATE_KBPS, MAX_DIMENSION, MAX_FPS, MAX_KEYINT_FRAMES, MAX_MOUNTS,
    MAX_REPLAY_SECS, MIN_DIMENSION, Mode, TestCamConfig,
};
pub use error::TestCamError;
pub use run::run;
pub use server::{SUB_SUFFIX, TestCam};
