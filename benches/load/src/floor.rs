//! The depacketization floor: a bare retina client per stream that only counts video frames.
//! It runs as its own process (`nvr-loadbench floor URL...`) so its CPU and memory are measured
//! exactly like the recorder's and ffmpeg's, with the same runtime shape as `nvr serve` (a
//! default multi-thread tokio runtime) and the same retina options as the recorder (TCP,
//! `TeardownPolicy::Never`, timestamps enforced with a 10 s maximum jump).
//!
//! Protocol with the parent on stdout: `connected I` as each stream delivers its first frame,
//! `frames TOTAL` every 500 ms, and `final TOTAL` when stdin closes (then it exits).

use std::io::BufRead;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use retina::client::{PlayOptions, SessionOptions, SetupOptions, TeardownPolicy, Transport};
use retina::codec::CodecItem;

/// Same as the recorder's `MAX_TIMESTAMP_JUMP_SECS`.
const MAX_TIMESTAMP_JUMP_SECS: u32 = 10;
/// Same as the recorder's `MAX_REORDER_SECS` (B-frames).
const MAX_REORDER_SECS: u32 = 2;

/// Pause between two streams' connects: the test camera can refuse clients that open mounts at
/// the same instant.
const STAGGER: Duration = Duration::from_millis(50);

async fn session(url: &url::Url, frames: &AtomicU64, first: &mut bool, i: usize) -> Result<()> {
    let options = SessionOptions::default()
        .user_agent("nvr-loadbench-floor".into())
        .teardown(TeardownPolicy::Never);
    let mut session = retina::client::Session::describe(url.clone(), options).await?;
    let video_i = session
        .streams()
        .iter()
        .position(|s| s.media() == "video")
        .ok_or_else(|| anyhow::anyhow!("{url}: no video stream"))?;
    session
        .setup(
            video_i,
            SetupOptions::default().transport(Transport::Tcp(Default::default())),
        )
        .await?;
    let max_jump = NonZeroU32::new(MAX_TIMESTAMP_JUMP_SECS).unwrap_or(NonZeroU32::MIN);
    let max_reorder = NonZeroU32::new(MAX_REORDER_SECS).unwrap_or(NonZeroU32::MIN);
    // The recorder's timestamp policy, B-frames' reordering included.
    let mut demuxed = session
        .play(
            PlayOptions::default()
                .enforce_timestamps_with_max_jump_secs(max_jump)
                .allow_reordered_timestamps_secs(max_reorder),
        )
        .await?
        .demuxed()?;
    while let Some(item) = demuxed.next().await {
        if let CodecItem::VideoFrame(f) = item? {
            // Take the frame's bytes as the recorder does, then drop them.
            let data = f.into_data();
            std::hint::black_box(&data);
            frames.fetch_add(1, Ordering::Relaxed);
            if *first {
                *first = false;
                println!("connected {i}");
            }
        }
    }
    anyhow::bail!("{url}: the camera closed the session")
}

/// Entry point of the `floor` subcommand.
pub fn main(urls: Vec<String>) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let frames = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        for (i, u) in urls.iter().enumerate() {
            let url = url::Url::parse(u)?;
            let frames = frames.clone();
            tokio::spawn(async move {
                let mut first = true;
                loop {
                    if let Err(e) = session(&url, &frames, &mut first, i).await {
                        eprintln!("floor stream {i}: {e}; reconnecting in 1 s");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            tokio::time::sleep(STAGGER).await;
        }
        let f2 = frames.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                println!("frames {}", f2.load(Ordering::Relaxed));
            }
        });
        // Run until the parent closes stdin.
        tokio::task::spawn_blocking(|| {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                if line.is_err() {
                    break;
                }
            }
        })
        .await?;
        println!("final {}", frames.load(Ordering::Relaxed));
        anyhow::Ok(())
    })?;
    // Do not wait for the sessions' tasks.
    rt.shutdown_background();
    Ok(())
}
