//! Live fan-out: every frame a camera sends is published to any number of viewers through a
//! bounded broadcast channel, plus a cache of the current GOP so a new viewer starts at once
//! from the last key frame. Publishing never blocks: a viewer that falls behind loses frames
//! (and skips to the next key frame), never the recorder.

use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::source::SourceFrame;

/// Frames buffered per camera for viewers: about 4 s at 30 fps. A viewer further behind than
/// this is told it lagged and resumes at the next key frame.
const LIVE_QUEUE_FRAMES: usize = 128;

/// The GOP cache stops growing beyond this many bytes (a camera with very long key frame
/// intervals); new viewers then wait for the next key frame instead.
const MAX_GOP_CACHE_BYTES: usize = 2 << 20;

/// One camera's live frames.
#[derive(Debug)]
pub struct LiveHub {
    tx: broadcast::Sender<SourceFrame>,
    /// Frames from the last key frame on; empty when unknown or too large.
    gop: Mutex<Gop>,
}

#[derive(Debug, Default)]
struct Gop {
    frames: Vec<SourceFrame>,
    bytes: usize,
    /// The cache overflowed: wait for the next key frame.
    overflowed: bool,
}

impl Default for LiveHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(LIVE_QUEUE_FRAMES);
        LiveHub {
            tx,
            gop: Mutex::new(Gop::default()),
        }
    }
}

impl LiveHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Gop> {
        self.gop.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a frame to every viewer (called by the camera's supervisor).
    pub fn publish(&self, f: &SourceFrame) {
        let mut gop = self.lock();
        if f.frame.is_key {
            gop.frames.clear();
            gop.bytes = 0;
            gop.overflowed = false;
        }
        if !gop.overflowed {
            gop.bytes += f.frame.data.len();
            if gop.bytes > MAX_GOP_CACHE_BYTES {
                gop.frames = Vec::new();
                gop.overflowed = true;
            } else if !gop.frames.is_empty() || f.frame.is_key {
                gop.frames.push(f.clone());
            }
        }
        // Sending fails only when nobody listens, which is fine.
        let _ = self.tx.send(f.clone());
    }

    /// Forgets the cached GOP (the session ended: its frames must not start a new viewer).
    pub fn reset(&self) {
        let mut gop = self.lock();
        *gop = Gop::default();
    }

    /// The current GOP (starting with a key frame, possibly empty) and a receiver of every
    /// frame published after it: together, a gap-free stream.
    pub fn subscribe(&self) -> (Vec<SourceFrame>, broadcast::Receiver<SourceFrame>) {
        let gop = self.lock();
        (gop.frames.clone(), self.tx.subscribe())
    }

    /// The most recent key frame, for snapshots of "now".
    pub fn last_key_frame(&self) -> Option<SourceFrame> {
        self.lock().frames.first().cloned()
    }

    pub fn viewers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nvr_core::{Time90k, VideoCodec, VideoFrame, VideoParams};
    use std::sync::Arc;

    fn frame(n: i64, key: bool, size: usize) -> SourceFrame {
        SourceFrame {
            params: Arc::new(VideoParams {
                codec: VideoCodec::H264,
                rfc6381_codec: "avc1.64001f".into(),
                width: 320,
                height: 240,
                sample_entry: bytes::Bytes::new(),
            }),
            frame: VideoFrame {
                media_time_90k: n * 3000,
                received: Time90k(n),
                is_key: key,
                data: bytes::Bytes::from(vec![0u8; size]),
            },
        }
    }

    #[test]
    fn new_viewers_start_at_the_last_key_frame_without_gaps() {
        let hub = LiveHub::default();
        hub.publish(&frame(0, false, 10)); // before any key frame: not cached
        hub.publish(&frame(1, true, 10));
        hub.publish(&frame(2, false, 10));
        let (gop, mut rx) = hub.subscribe();
        hub.publish(&frame(3, false, 10));
        let times: Vec<i64> = gop.iter().map(|f| f.frame.media_time_90k).collect();
        assert_eq!(times, vec![3000, 6000]);
        assert_eq!(rx.try_recv().expect("next").frame.media_time_90k, 9000);
        assert_eq!(
            hub.last_key_frame().map(|f| f.frame.media_time_90k),
            Some(3000)
        );
    }

    #[test]
    fn slow_viewers_lag_instead_of_blocking() {
        let hub = LiveHub::default();
        let (_, mut rx) = hub.subscribe();
        for n in 0..(LIVE_QUEUE_FRAMES as i64 + 10) {
            hub.publish(&frame(n, n % 30 == 0, 10));
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    #[test]
    fn oversized_gops_are_not_cached() {
        let hub = LiveHub::default();
        hub.publish(&frame(0, true, MAX_GOP_CACHE_BYTES / 2));
        hub.publish(&frame(1, false, MAX_GOP_CACHE_BYTES));
        assert!(hub.subscribe().0.is_empty());
        hub.publish(&frame(2, true, 10));
        assert_eq!(hub.subscribe().0.len(), 1);
    }
}
