//! The writer thread of one recorded stream of a camera: takes frames from the stream's queue in
//! batches and hands them to storage, and stalls (drops frames, keeps what is committed) while
//! the disk is full.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nvr_core::StreamKey;
use nvr_storage::store::Store;
use nvr_storage::writer::{CameraWriter, WriteOutcome};
use tracing::{error, info, warn};

use crate::status::StatusCell;
use crate::supervisor::WriterMsg;
use crate::writer_queue::{Queued, WriterReceiver};

/// How long a camera's writer lets frames accumulate in its queue between two batches: 250 ms
/// (7-8 frames at 30 fps, about two 64 KiB chunks at 4 Mbit/s). The writer wakes 4 times a
/// second instead of once per frame, and its network task sends without waking it (the
/// receiver is not waiting): on a 2-core VM each wake-up cost ~20 us of CPU, 30 times a second
/// per camera. Frames reach the file at most this much later; the queue holds them meanwhile
/// (a `kill -9` loses what is queued, as it did before, plus the unsealed chunk).
const WRITER_BATCH_INTERVAL: Duration = Duration::from_millis(250);

/// After a write failed because the disk is full, how long the writer waits before trying
/// again (doubling while writes keep failing, up to [`DISK_FULL_RETRY_MAX`]).
const DISK_FULL_RETRY: Duration = Duration::from_secs(2);
const DISK_FULL_RETRY_MAX: Duration = Duration::from_secs(60);

/// Decides, before each batch, whether a camera may write: the disk-full stall.
///
/// The writer stalls when the data directory's file system has less than `floor_bytes`
/// available (a quarter of the free-space target that retention keeps, so retention had its
/// chance first and the open segment can still be sealed), or when a write failed with
/// ENOSPC/EDQUOT. While stalled, frames are dropped and counted; everything already committed
/// stays. It resumes on its own once twice the floor is available again (the gap keeps it
/// from flapping at the threshold) and, after a failed write, no sooner than a retry delay
/// that starts at [`DISK_FULL_RETRY`] and doubles while writes keep failing (a disk full of
/// inodes, or a quota, looks free to `statvfs`).
#[derive(Debug)]
pub(crate) struct DiskGate {
    floor_bytes: u64,
    stalled: bool,
    retry_at: Option<Instant>,
    retry_delay: Duration,
}

impl DiskGate {
    /// `min_free_bytes` is the free-space target of retention (0: no target).
    pub(crate) fn new(min_free_bytes: u64) -> Self {
        DiskGate {
            floor_bytes: min_free_bytes / 4,
            stalled: false,
            retry_at: None,
            retry_delay: DISK_FULL_RETRY,
        }
    }

    pub(crate) fn stalled(&self) -> bool {
        self.stalled
    }

    /// Re-evaluates the stall from the file system's free space `available_bytes` (None if
    /// unknown) at `now`. Returns whether frames may be written.
    pub(crate) fn update(&mut self, available_bytes: Option<u64>, now: Instant) -> bool {
        if let Some(t) = self.retry_at {
            if now < t {
                return false;
            }
            self.retry_at = None;
        }
        match available_bytes {
            // Nothing tells us otherwise: try again (a failed write stalls us again, and the
            // retry delay keeps that from spinning).
            _ if self.floor_bytes == 0 => self.stalled = false,
            None => self.stalled = false,
            Some(a) if self.stalled => self.stalled = a < self.floor_bytes.saturating_mul(2),
            Some(a) => self.stalled = a < self.floor_bytes,
        }
        !self.stalled
    }

    /// A write failed because the disk is full.
    pub(crate) fn on_disk_full(&mut self, now: Instant) {
        self.stalled = true;
        self.retry_at = Some(now + self.retry_delay);
        self.retry_delay = (self.retry_delay * 2).min(DISK_FULL_RETRY_MAX);
    }

    /// A frame was written: the next failure starts the retry delay afresh.
    pub(crate) fn on_written(&mut self) {
        self.retry_delay = DISK_FULL_RETRY;
    }
}

/// The writer thread of one camera: writes until the channel closes, in batches (see
/// [`WRITER_BATCH_INTERVAL`]), checking the disk before each batch (see [`DiskGate`]).
pub(crate) fn writer_loop(
    camera: StreamKey,
    mut writer: CameraWriter,
    mut rx: WriterReceiver,
    status: Arc<StatusCell>,
    store: Arc<Store>,
    min_free_bytes: u64,
) {
    let mut gate = DiskGate::new(min_free_bytes);
    // Block only while the queue is empty (an idle camera costs nothing); otherwise drain it.
    while let Some(first) = rx.blocking_recv() {
        let was_stalled = gate.stalled();
        let available = (min_free_bytes > 0)
            .then(|| store.disk_space().ok().map(|s| s.available_bytes))
            .flatten();
        let may_write = gate.update(available, Instant::now());
        if may_write && was_stalled {
            info!(camera = %camera, available_bytes = available,
                "disk space is back: recording resumes");
            status.set_disk_stalled(false);
        } else if !may_write && !was_stalled {
            stall(camera, &mut writer, &status, available);
        }
        let mut queued = Some(first);
        while let Some(Queued { msg: m, budget }) = queued {
            if gate.stalled() {
                drop_while_stalled(camera, &mut writer, &status, m);
            } else {
                match handle(camera, &mut writer, &status, m) {
                    Handled::DiskFull => {
                        gate.on_disk_full(Instant::now());
                        stall(camera, &mut writer, &status, available);
                    }
                    Handled::Written => gate.on_written(),
                    Handled::Other => {}
                }
            }
            // The frame is written (or dropped): its bytes may be queued again, and the
            // network task, if it waited for them, reads on.
            drop(budget);
            queued = rx.try_recv();
        }
        std::thread::sleep(WRITER_BATCH_INTERVAL);
    }
    if let Err(e) = writer.end_run() {
        error!(camera = %camera, error = %e, "closing the last segment failed");
    }
}

/// Enters the stall: seals the open segment (there is room: the floor is above zero) and says
/// so once.
fn stall(
    camera: StreamKey,
    writer: &mut CameraWriter,
    status: &StatusCell,
    available: Option<u64>,
) {
    warn!(camera = %camera, available_bytes = available,
        "the disk is full and retention cannot free space (held or open footage): \
         recording stalls until space returns; recorded footage is kept");
    status.set_disk_stalled(true);
    if let Err(e) = writer.end_run() {
        error!(camera = %camera, error = %e, "closing the run on a full disk failed");
    }
}

fn drop_while_stalled(
    camera: StreamKey,
    writer: &mut CameraWriter,
    status: &StatusCell,
    msg: WriterMsg,
) {
    match msg {
        WriterMsg::Frame(_) => status.on_dropped_disk_full(),
        WriterMsg::EndRun => {
            if let Err(e) = writer.end_run() {
                error!(camera = %camera, error = %e, "closing the run failed");
            }
        }
        WriterMsg::CameraClock(c) => keep_camera_clock(camera, writer, c),
    }
}

/// What writing one message came to.
enum Handled {
    Written,
    DiskFull,
    Other,
}

/// Writes one message.
fn handle(
    camera: StreamKey,
    writer: &mut CameraWriter,
    status: &StatusCell,
    msg: WriterMsg,
) -> Handled {
    let handled = write_one(camera, writer, status, msg);
    // A segment the index refused to seal: its file is complete and the writer retries the
    // seal, but a full disk must still stall the camera, and anything else be shown.
    match writer.take_seal_error() {
        Some(e) if e.is_disk_full() => Handled::DiskFull,
        Some(e) => {
            status.set_storage_error(format!(
                "sealing a segment in the index failed (its file is complete; retrying): {e}"
            ));
            handled
        }
        None => handled,
    }
}

fn write_one(
    camera: StreamKey,
    writer: &mut CameraWriter,
    status: &StatusCell,
    msg: WriterMsg,
) -> Handled {
    match msg {
        WriterMsg::Frame(f) => match writer.write(&f.params, &f.frame) {
            Ok(outcome) => {
                status.on_written(outcome == WriteOutcome::Written);
                if outcome == WriteOutcome::Written {
                    return Handled::Written;
                }
            }
            Err(e) => {
                let full = e.is_disk_full();
                if full {
                    status.on_dropped_disk_full();
                } else {
                    error!(camera = %camera, error = %e, "recording a frame failed; ending the run");
                    status.set_storage_error(e.to_string());
                }
                if let Err(e) = writer.end_run() {
                    error!(camera = %camera, error = %e, "closing the run failed");
                }
                if full {
                    return Handled::DiskFull;
                }
            }
        },
        WriterMsg::EndRun => {
            if let Err(e) = writer.end_run() {
                error!(camera = %camera, error = %e, "closing the run failed");
                status.set_storage_error(e.to_string());
                if e.is_disk_full() {
                    return Handled::DiskFull;
                }
            }
        }
        WriterMsg::CameraClock(c) => keep_camera_clock(camera, writer, c),
    }
    Handled::Other
}

/// Keeps the stream's latest camera clock offset in the index (for exports); a failure costs
/// only that figure.
fn keep_camera_clock(
    camera: StreamKey,
    writer: &CameraWriter,
    c: crate::source::CameraClockSample,
) {
    if let Err(e) = writer.note_camera_clock(c.offset_90k, c.measured) {
        warn!(camera = %camera, error = %e, "keeping the camera's clock offset failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_below_the_floor_and_resumes_above_twice_the_floor() {
        let t = Instant::now();
        let mut g = DiskGate::new(400);
        assert!(g.update(Some(150), t), "150 >= floor 100");
        assert!(!g.update(Some(99), t), "below the floor");
        assert!(
            !g.update(Some(150), t),
            "above the floor but under twice it: still stalled"
        );
        assert!(g.update(Some(200), t), "twice the floor: resumes");
        assert!(g.update(None, t), "unknown space: write");
        assert!(!g.update(Some(10), t));
        assert!(g.update(None, t), "unknown space: try writing again");
    }

    #[test]
    fn a_full_disk_write_stalls_until_the_retry_time_and_the_space_allow() {
        let t = Instant::now();
        let mut g = DiskGate::new(400);
        g.on_disk_full(t);
        assert!(
            !g.update(Some(1_000), t + Duration::from_secs(1)),
            "waits for the retry"
        );
        assert!(
            g.update(Some(1_000), t + DISK_FULL_RETRY),
            "space came back"
        );
        g.on_disk_full(t);
        assert!(
            !g.update(Some(150), t + DISK_FULL_RETRY),
            "still under twice the floor"
        );
        let mut no_floor = DiskGate::new(0);
        no_floor.on_disk_full(t);
        assert!(!no_floor.update(None, t));
        assert!(
            no_floor.update(None, t + DISK_FULL_RETRY),
            "without a floor: retries"
        );
        // Failing again doubles the wait; a written frame resets it.
        no_floor.on_disk_full(t);
        assert!(
            !no_floor.update(None, t + DISK_FULL_RETRY),
            "waits twice as long"
        );
        assert!(no_floor.update(None, t + DISK_FULL_RETRY * 2));
        no_floor.on_written();
        no_floor.on_disk_full(t);
        assert!(
            no_floor.update(None, t + DISK_FULL_RETRY),
            "reset by a write"
        );
    }
}
