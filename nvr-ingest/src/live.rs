//! Live fan-out: every frame a camera sends is published to any number of viewers through a
//! ring bounded in frames and in bytes, plus a cache of the current GOP so a new viewer starts
//! at once from the last key frame. Publishing never blocks: a viewer that falls behind loses
//! frames (and skips to the next key frame), never the recorder, and the frames it holds back
//! from being freed are bounded ([`LIVE_QUEUE_BYTES`]), whatever size the camera's frames are.
//!
//! The ring keeps a frame only while some viewer has yet to read it: with no viewer, or viewers
//! that keep up, it holds nothing. Its API is that of the tokio `broadcast` channel it replaced
//! (`subscribe`, `recv`, `try_recv`, the same error types), whose ring kept up to 128 frames
//! alive whatever their size (128 hostile 8 MiB frames: 1 GiB per camera).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::source::SourceFrame;

/// What a viewer's receiver returns instead of a frame: the errors of tokio's broadcast
/// channel, which this hub replaced, so viewers match on them unchanged. `Lagged(n)`: `n`
/// frames were dropped before this viewer read them (it resumes at the oldest frame still
/// kept, and should skip to the next key frame); `Closed`: the hub is gone.
pub use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Frames kept per camera for viewers: about 4 s at 30 fps. A viewer further behind than this
/// is told it lagged and resumes at the next key frame.
pub const LIVE_QUEUE_FRAMES: usize = 128;

/// Bytes of frames kept per camera for viewers that have not read them yet. 16 MiB holds the
/// [`LIVE_QUEUE_FRAMES`] of a camera up to ~30 Mbit/s at 30 fps (128 frames of 131 KB: 4K at a
/// high bitrate), so for real cameras the frame bound comes first; a hostile camera's frames of
/// up to 8 MiB (the most retina assembles) are kept 2 at a time instead of 128. A single frame
/// larger than this is kept alone (it cannot arrive: it would be over retina's bound).
pub const LIVE_QUEUE_BYTES: usize = 16 << 20;

/// The GOP cache stops growing beyond this many bytes (a camera with very long key frame
/// intervals); new viewers then wait for the next key frame instead.
const MAX_GOP_CACHE_BYTES: usize = 2 << 20;

/// One camera's live frames.
#[derive(Debug)]
pub struct LiveHub {
    shared: Arc<Shared>,
}

/// What the hub and its receivers share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bumped after every publish (and when the hub goes away): wakes waiting receivers.
    tick: watch::Sender<()>,
}

#[derive(Debug, Default)]
struct State {
    ring: Ring,
    /// Frames from the last key frame on; empty when unknown or too large.
    gop: Gop,
    /// The hub was dropped: receivers end once they have read what is left.
    closed: bool,
}

/// The frames some receiver has yet to read, oldest first, numbered by publish order.
#[derive(Debug, Default)]
struct Ring {
    slots: VecDeque<Slot>,
    /// The number of the next frame published; the first slot's is `next_seq - slots.len()`.
    next_seq: u64,
    /// Sum of the frames' sizes in `slots`.
    size_bytes: usize,
    receivers: usize,
}

#[derive(Debug)]
struct Slot {
    frame: SourceFrame,
    /// Receivers (subscribed before it was published) that have yet to read this frame. Each
    /// receiver reads in order, so when a slot's count is 0 so is every older slot's: the ring
    /// drops slots from the front as their count reaches 0.
    unread: usize,
}

impl Ring {
    fn first_seq(&self) -> u64 {
        self.next_seq - self.slots.len() as u64
    }

    fn push(&mut self, frame: SourceFrame) {
        self.size_bytes += frame.frame.data.len();
        self.slots.push_back(Slot {
            frame,
            unread: self.receivers,
        });
        self.next_seq += 1;
        // The oldest frames go first, those a stalled viewer has not read included (it will be
        // told it lagged); the newest frame stays even alone over the byte bound.
        while self.slots.len() > 1
            && (self.slots.len() > LIVE_QUEUE_FRAMES || self.size_bytes > LIVE_QUEUE_BYTES)
        {
            self.pop_first();
        }
        self.drop_read();
    }

    fn pop_first(&mut self) {
        if let Some(s) = self.slots.pop_front() {
            self.size_bytes -= s.frame.frame.data.len();
        }
    }

    /// Drops the frames every receiver has read.
    fn drop_read(&mut self) {
        while self.slots.front().is_some_and(|s| s.unread == 0) {
            self.pop_first();
        }
    }
}

#[derive(Debug, Default)]
struct Gop {
    frames: Vec<SourceFrame>,
    size_bytes: usize,
    /// The cache overflowed: wait for the next key frame.
    overflowed: bool,
}

impl Gop {
    fn push(&mut self, f: &SourceFrame) {
        if f.frame.is_key {
            self.frames.clear();
            self.size_bytes = 0;
            self.overflowed = false;
        }
        if !self.overflowed {
            self.size_bytes += f.frame.data.len();
            if self.size_bytes > MAX_GOP_CACHE_BYTES {
                self.frames = Vec::new();
                self.overflowed = true;
            } else if !self.frames.is_empty() || f.frame.is_key {
                self.frames.push(f.clone());
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        let (tick, _) = watch::channel(());
        LiveHub {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                tick,
            }),
        }
    }
}

impl Drop for LiveHub {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.tick.send_replace(());
    }
}

impl LiveHub {
    /// Publishes a frame to every viewer (called by the camera's supervisor). Never blocks
    /// beyond a short lock; frames nobody has read are dropped when the ring is full.
    pub fn publish(&self, f: &SourceFrame) {
        let has_receivers = {
            let mut state = self.shared.lock();
            state.gop.push(f);
            // Without receivers nothing is kept (the next viewer starts from the GOP), and
            // nobody needs waking.
            let has_receivers = state.ring.receivers > 0;
            if has_receivers {
                state.ring.push(f.clone());
            }
            has_receivers
        };
        if has_receivers {
            self.shared.tick.send_replace(());
        }
    }

    /// Forgets the cached GOP (the session ended: its frames must not start a new viewer).
    pub fn reset(&self) {
        self.shared.lock().gop = Gop::default();
    }

    /// The current GOP (starting with a key frame, possibly empty) and a receiver of every
    /// frame published after it: together, a gap-free stream (unless the receiver lags).
    pub fn subscribe(&self) -> (Vec<SourceFrame>, LiveReceiver) {
        let mut state = self.shared.lock();
        state.ring.receivers += 1;
        let rx = LiveReceiver {
            shared: self.shared.clone(),
            next_seq: state.ring.next_seq,
            tick: self.shared.tick.subscribe(),
        };
        (state.gop.frames.clone(), rx)
    }

    /// The most recent key frame, for snapshots of "now".
    pub fn last_key_frame(&self) -> Option<SourceFrame> {
        self.shared.lock().gop.frames.first().cloned()
    }

    /// Receivers alive (viewers watching).
    pub fn viewers(&self) -> usize {
        self.shared.lock().ring.receivers
    }

    /// Bytes of frames kept for receivers that have yet to read them (at most
    /// [`LIVE_QUEUE_BYTES`], or one frame larger than that).
    pub fn retained_bytes(&self) -> usize {
        self.shared.lock().ring.size_bytes
    }
}

/// One viewer's place in a camera's live frames (from [`LiveHub::subscribe`]).
#[derive(Debug)]
pub struct LiveReceiver {
    shared: Arc<Shared>,
    /// The number of the next frame this receiver reads.
    next_seq: u64,
    tick: watch::Receiver<()>,
}

impl LiveReceiver {
    /// The next frame if one is there: in publish order; `Lagged(n)` once if `n` frames were
    /// dropped before this receiver read them (the next call returns the oldest frame kept).
    pub fn try_recv(&mut self) -> Result<SourceFrame, TryRecvError> {
        let mut state = self.shared.lock();
        let closed = state.closed;
        let ring = &mut state.ring;
        let first = ring.first_seq();
        if self.next_seq < first {
            let skipped = first - self.next_seq;
            self.next_seq = first;
            return Err(TryRecvError::Lagged(skipped));
        }
        // `next_seq` is at most `ring.next_seq`, so the index fits (it is at most the length).
        let Some(slot) = ring.slots.get_mut((self.next_seq - first) as usize) else {
            return Err(if closed {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            });
        };
        debug_assert!(slot.unread > 0, "a receiver reads only slots that count it");
        slot.unread = slot.unread.saturating_sub(1);
        let frame = slot.frame.clone();
        self.next_seq += 1;
        ring.drop_read();
        Ok(frame)
    }

    /// Waits for the next frame; like [`LiveReceiver::try_recv`] otherwise. Cancel-safe: a
    /// frame is taken only when this returns it (so it can be a branch of `select!`).
    pub async fn recv(&mut self) -> Result<SourceFrame, RecvError> {
        loop {
            match self.try_recv() {
                Ok(f) => return Ok(f),
                Err(TryRecvError::Lagged(n)) => return Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            // Returns at once if a publish came after the last wake-up (the watch remembers
            // which version this receiver saw), so none is missed between the two calls.
            if self.tick.changed().await.is_err() {
                return Err(RecvError::Closed);
            }
        }
    }
}

impl Drop for LiveReceiver {
    /// Releases the frames this receiver had yet to read.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let ring = &mut state.ring;
        let unread_from = self.next_seq.saturating_sub(ring.first_seq()) as usize;
        for slot in ring.slots.iter_mut().skip(unread_from) {
            slot.unread = slot.unread.saturating_sub(1);
        }
        ring.receivers -= 1;
        ring.drop_read();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nvr_core::{Time90k, VideoCodec, VideoFrame, VideoParams};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn frame_with(n: i64, key: bool, data: bytes::Bytes) -> SourceFrame {
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
                data,
            },
        }
    }

    fn frame(n: i64, key: bool, size: usize) -> SourceFrame {
        frame_with(n, key, bytes::Bytes::from(vec![0u8; size]))
    }

    fn n_of(f: &SourceFrame) -> i64 {
        f.frame.media_time_90k / 3000
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
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        assert_eq!(
            hub.last_key_frame().map(|f| f.frame.media_time_90k),
            Some(3000)
        );
    }

    #[test]
    fn slow_viewers_lag_instead_of_blocking() {
        let hub = LiveHub::default();
        let (_, mut rx) = hub.subscribe();
        let published = LIVE_QUEUE_FRAMES as i64 + 10;
        for n in 0..published {
            hub.publish(&frame(n, n % 30 == 0, 10));
        }
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Lagged(10))));
        // Then the oldest frame kept, and the rest in order.
        for n in 10..published {
            assert_eq!(n_of(&rx.try_recv().expect("kept frame")), n);
        }
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_stalled_viewer_of_huge_frames_holds_at_most_the_byte_bound() {
        let hub = LiveHub::default();
        let (_, mut stalled) = hub.subscribe();
        // Frames of 5 MiB (one buffer shared by all: the hub counts what each frame holds).
        let huge = bytes::Bytes::from(vec![0u8; 5 << 20]);
        let per_frame = huge.len();
        for n in 0..200 {
            hub.publish(&frame_with(n, n % 15 == 0, huge.clone()));
            let kept = hub.retained_bytes();
            assert!(
                kept <= LIVE_QUEUE_BYTES,
                "{kept} bytes kept after frame {n}"
            );
        }
        let kept_frames = LIVE_QUEUE_BYTES / per_frame;
        assert_eq!(hub.retained_bytes(), kept_frames * per_frame);
        // The viewer is told what it missed, then gets the newest frames in order.
        match stalled.try_recv() {
            Err(TryRecvError::Lagged(n)) => assert_eq!(n, 200 - kept_frames as u64),
            other => panic!("expected a lag, got {other:?}"),
        }
        for n in (200 - kept_frames as i64)..200 {
            assert_eq!(n_of(&stalled.try_recv().expect("kept frame")), n);
        }
        assert_eq!(hub.retained_bytes(), 0, "read by every viewer: released");
        // A frame over the whole bound is kept alone, and still delivered.
        hub.publish(&frame(200, true, LIVE_QUEUE_BYTES + 1));
        hub.publish(&frame(201, false, LIVE_QUEUE_BYTES + 1));
        assert_eq!(hub.retained_bytes(), LIVE_QUEUE_BYTES + 1);
        assert!(matches!(stalled.try_recv(), Err(TryRecvError::Lagged(1))));
        assert_eq!(n_of(&stalled.try_recv().expect("big frame")), 201);
        // A viewer that leaves releases what it had not read.
        hub.publish(&frame(202, false, 1000));
        assert_eq!(hub.retained_bytes(), 1000);
        drop(stalled);
        assert_eq!((hub.retained_bytes(), hub.viewers()), (0, 0));
        hub.publish(&frame(203, false, 1000));
        assert_eq!(hub.retained_bytes(), 0, "nothing kept without viewers");
    }

    #[test]
    fn a_stalled_viewer_does_not_hold_back_one_that_keeps_up() {
        let hub = LiveHub::default();
        let (_, mut stalled) = hub.subscribe();
        let (_, mut reader) = hub.subscribe();
        assert_eq!(hub.viewers(), 2);
        let data = bytes::Bytes::from(vec![0u8; 100_000]);
        for n in 0..1000 {
            hub.publish(&frame_with(n, n % 30 == 0, data.clone()));
            assert_eq!(n_of(&reader.try_recv().expect("frame")), n);
            assert!(hub.retained_bytes() <= LIVE_QUEUE_BYTES);
        }
        assert!(matches!(stalled.try_recv(), Err(TryRecvError::Lagged(_))));
    }

    /// A viewer that keeps up sees every frame, in order, woken by each publish; frames every
    /// viewer has read are released at once.
    #[tokio::test]
    async fn a_viewer_that_keeps_up_sees_every_frame_in_order() {
        const FRAMES: i64 = 2000;
        const BURST: i64 = 50;
        let hub = Arc::new(LiveHub::default());
        let (_, mut rx) = hub.subscribe();
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = seen.clone();
        let viewer = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < FRAMES as usize {
                match rx.recv().await {
                    Ok(f) => got.push(n_of(&f)),
                    Err(e) => panic!("after {} frames: {e:?}", got.len()),
                }
                seen2.store(got.len() as u64, Ordering::SeqCst);
            }
            got
        });
        for burst in 0..FRAMES / BURST {
            for n in burst * BURST..(burst + 1) * BURST {
                hub.publish(&frame(n, n % 30 == 0, 1000));
            }
            // Bursts well under the ring's bounds, each read before the next is published.
            while seen.load(Ordering::SeqCst) < ((burst + 1) * BURST) as u64 {
                tokio::task::yield_now().await;
            }
        }
        let got = viewer.await.expect("viewer");
        assert_eq!(got, (0..FRAMES).collect::<Vec<_>>());
        assert_eq!(hub.retained_bytes(), 0);
    }

    /// What a viewer does on `Lagged` (nvr-web's live view): skip to the next key frame. After
    /// the lag it shows a key frame first and then every frame in order.
    #[test]
    fn a_lagging_viewer_resumes_at_the_next_key_frame() {
        let hub = LiveHub::default();
        let (_, mut rx) = hub.subscribe();
        let mut shown = Vec::new();
        let mut need_key = true;
        let mut lags = 0;
        let mut read = |rx: &mut LiveReceiver, shown: &mut Vec<i64>| loop {
            match rx.try_recv() {
                Ok(f) if need_key && !f.frame.is_key => {}
                Ok(f) => {
                    need_key = false;
                    shown.push(n_of(&f));
                }
                Err(TryRecvError::Lagged(_)) => {
                    lags += 1;
                    need_key = true;
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Closed) => panic!("closed"),
            }
        };
        // Key frames every 30; the viewer reads after frame 40, then stalls for 3 GOPs of
        // 2 MiB frames (over the byte bound), then reads again as frames come.
        for n in 0..40 {
            hub.publish(&frame(n, n % 30 == 0, 1000));
        }
        read(&mut rx, &mut shown);
        assert_eq!(shown, (0..40).collect::<Vec<_>>());
        for n in 40..130 {
            hub.publish(&frame(n, n % 30 == 0, 2 << 20));
        }
        read(&mut rx, &mut shown);
        // Kept: the last 8 of those (16 MiB), after key frame 120; nothing is shown until 150.
        for n in 130..160 {
            hub.publish(&frame(n, n % 30 == 0, 1000));
            read(&mut rx, &mut shown);
        }
        assert_eq!(lags, 1);
        assert_eq!(shown[..40], (0..40).collect::<Vec<_>>());
        assert_eq!(
            shown[40..],
            (150..160).collect::<Vec<_>>(),
            "from key frame 150 on"
        );
    }

    #[tokio::test]
    async fn receivers_end_when_the_hub_is_gone() {
        let hub = LiveHub::default();
        let (_, mut rx) = hub.subscribe();
        hub.publish(&frame(0, true, 10));
        drop(hub);
        assert_eq!(n_of(&rx.recv().await.expect("kept frame")), 0);
        assert!(matches!(rx.recv().await, Err(RecvError::Closed)));
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
