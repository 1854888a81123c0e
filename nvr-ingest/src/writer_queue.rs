//! The queue from a camera's network task to its writer thread, bounded in frames and in
//! bytes: when either bound is reached the network task waits, so it stops reading the
//! camera's socket and TCP pushes back on the camera, instead of the recorder buffering.
//!
//! The byte bound is a semaphore of bytes: the sender takes a frame's size before queueing it,
//! and the permit travels with the frame, so the writer gives the bytes back when it drops the
//! frame after writing it (or dropping it on a full disk).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::supervisor::WriterMsg;

/// Frames queued between a camera's network task and its writer: about 8 s at 30 fps, enough
/// to ride out an fsync or a busy SQLite moment without pushing back on the camera.
pub const WRITER_QUEUE_FRAMES: usize = 256;

/// Bytes of frames queued between a camera's network task and its writer. 32 MiB holds the
/// [`WRITER_QUEUE_FRAMES`] of a camera up to ~30 Mbit/s at 30 fps (256 frames of 131 KB: 4K at
/// a high bitrate), so for real cameras the frame bound comes first; it is 4 s of a 64 Mbit/s
/// stream. Without it, frames of up to 8 MiB (the most retina assembles) made the queue hold
/// up to 2 GiB per camera. (The writer empties its queue every 250 ms, so this also caps one
/// camera at 128 MiB/s: sixteen times that 64 Mbit/s stream.)
pub const WRITER_QUEUE_BYTES: usize = 32 << 20;

/// The writer thread is gone (it stopped or failed): nothing more can be recorded.
#[derive(Debug, thiserror::Error)]
#[error("the camera's writer thread stopped")]
pub struct WriterGone;

/// A message in the queue, with the bytes it holds of the queue's budget (given back when
/// this is dropped).
#[derive(Debug)]
pub struct Queued {
    pub msg: WriterMsg,
    /// The frame's bytes of the budget: the writer drops this once the frame is written.
    pub budget: Option<OwnedSemaphorePermit>,
}

/// The network task's end of the queue.
#[derive(Debug, Clone)]
pub struct WriterSender {
    tx: mpsc::Sender<Queued>,
    budget: Arc<Semaphore>,
    max_bytes: u32,
}

/// The writer thread's end of the queue.
#[derive(Debug)]
pub struct WriterReceiver {
    rx: mpsc::Receiver<Queued>,
}

/// A queue holding at most `max_frames` messages and `max_bytes` bytes of frame data (a frame
/// larger than `max_bytes` takes the whole budget: it waits for an empty queue and then is
/// queued alone).
pub fn writer_queue(max_frames: usize, max_bytes: usize) -> (WriterSender, WriterReceiver) {
    // Semaphores count permits in u32 per acquisition (and at most `MAX_PERMITS` in all).
    let max_bytes = u32::try_from(max_bytes.min(Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
    let (tx, rx) = mpsc::channel(max_frames);
    (
        WriterSender {
            tx,
            budget: Arc::new(Semaphore::new(max_bytes as usize)),
            max_bytes,
        },
        WriterReceiver { rx },
    )
}

impl WriterSender {
    /// Queues a message, waiting while the queue holds too many frames or bytes.
    pub async fn send(&self, msg: WriterMsg) -> Result<(), WriterGone> {
        let budget = match &msg {
            WriterMsg::Frame(f) => {
                let size = u32::try_from(f.frame.data.len()).unwrap_or(u32::MAX);
                let permit = self
                    .budget
                    .clone()
                    .acquire_many_owned(size.min(self.max_bytes))
                    .await
                    .map_err(|_| WriterGone)?;
                Some(permit)
            }
            WriterMsg::EndRun | WriterMsg::CameraClock(_) => None,
        };
        self.tx
            .send(Queued { msg, budget })
            .await
            .map_err(|_| WriterGone)
    }

    /// Bytes of the budget free now (for tests and diagnostics).
    pub fn available_bytes(&self) -> usize {
        self.budget.available_permits()
    }
}

impl WriterReceiver {
    /// Waits for the next message (on the writer thread: never inside the runtime); `None`
    /// once every sender is gone and the queue is empty.
    pub fn blocking_recv(&mut self) -> Option<Queued> {
        self.rx.blocking_recv()
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<Queued> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFrame;
    use futures::FutureExt;
    use nvr_core::{Time90k, VideoCodec, VideoFrame, VideoParams};

    fn frame(size: usize) -> WriterMsg {
        WriterMsg::Frame(SourceFrame {
            params: Arc::new(VideoParams {
                codec: VideoCodec::H264,
                rfc6381_codec: "avc1.64001f".into(),
                width: 320,
                height: 240,
                sample_entry: bytes::Bytes::new(),
            }),
            frame: VideoFrame {
                media_time_90k: 0,
                received: Time90k(0),
                is_key: true,
                data: bytes::Bytes::from(vec![0u8; size]),
            },
        })
    }

    fn size_of(q: &Queued) -> usize {
        match &q.msg {
            WriterMsg::Frame(f) => f.frame.data.len(),
            WriterMsg::EndRun | WriterMsg::CameraClock(_) => 0,
        }
    }

    #[tokio::test]
    async fn a_full_byte_budget_holds_the_sender_until_the_writer_is_done() {
        let (tx, mut rx) = writer_queue(256, 100);
        tx.send(frame(40)).await.expect("fits");
        tx.send(frame(40)).await.expect("fits");
        assert_eq!(tx.available_bytes(), 20);
        let mut third = Box::pin(tx.send(frame(40)));
        assert!(
            (&mut third).now_or_never().is_none(),
            "120 bytes over a budget of 100: waits"
        );
        // The writer takes a frame: while it writes it, the bytes are still held.
        let writing = rx.try_recv().expect("queued");
        assert_eq!(size_of(&writing), 40);
        assert!((&mut third).now_or_never().is_none(), "still being written");
        drop(writing);
        third.await.expect("room after the write");
        assert_eq!(tx.available_bytes(), 20);
        // Everything received is what was sent, in order.
        let sizes: Vec<usize> = std::iter::from_fn(|| rx.try_recv().map(|q| size_of(&q))).collect();
        assert_eq!(sizes, vec![40, 40]);
        assert_eq!(tx.available_bytes(), 100);
    }

    #[tokio::test]
    async fn a_frame_over_the_whole_budget_is_queued_alone() {
        let (tx, mut rx) = writer_queue(256, 100);
        tx.send(frame(10)).await.expect("fits");
        let mut big = Box::pin(tx.send(frame(500)));
        assert!(
            (&mut big).now_or_never().is_none(),
            "waits for an empty queue"
        );
        drop(rx.try_recv());
        big.await.expect("alone in the queue");
        assert_eq!(tx.available_bytes(), 0, "it took the whole budget");
        let mut small = Box::pin(tx.send(frame(1)));
        assert!((&mut small).now_or_never().is_none());
        // An end of run costs no bytes (only a place in the queue).
        tx.send(WriterMsg::EndRun)
            .now_or_never()
            .expect("no bytes needed")
            .expect("sent");
        drop(rx.try_recv());
        small.await.expect("after the big frame");
    }

    #[tokio::test]
    async fn the_frame_bound_still_holds() {
        let (tx, mut rx) = writer_queue(2, 1 << 20);
        tx.send(frame(1)).await.expect("fits");
        tx.send(frame(1)).await.expect("fits");
        let mut third = Box::pin(tx.send(frame(1)));
        assert!((&mut third).now_or_never().is_none(), "two frames queued");
        drop(rx.try_recv());
        third.await.expect("a place freed");
    }

    #[tokio::test]
    async fn a_stopped_writer_releases_a_waiting_sender() {
        let (tx, rx) = writer_queue(256, 100);
        tx.send(frame(100)).await.expect("fits");
        let mut waiting = Box::pin(tx.send(frame(1)));
        assert!((&mut waiting).now_or_never().is_none());
        // The writer thread ends: what it had queued is dropped, giving its bytes back, and
        // the sender learns the writer is gone instead of waiting forever.
        drop(rx);
        assert!(waiting.await.is_err());
        assert!(tx.send(frame(1)).await.is_err());
    }
}
