//! Recording one stream of a camera: turns the frames of each RTSP session into sealed segments
//! and index rows. Synchronous and blocking by design: it runs on its own thread per stream, so
//! a slow disk delays only that stream's writer, never the network tasks or the web server.
//!
//! Lifecycle: `write` frames of a session (a *run*); `end_run` when the session ends. Within a
//! run a new segment starts at the first key frame after the configured duration, or at once
//! when the video parameters change (the frame that brings them, if a key frame, opens the new
//! segment, so nothing is lost). Frames before the first key frame of a run cannot be decoded
//! and are counted as skipped.
//!
//! Durability: each segment's row is inserted (state open, in the same transaction as finding or
//! creating the epoch it uses, whose key file is then written) before its file is created; chunks
//! reach the file as they fill; the file is fsynced every `fsync_interval`; closing writes the
//! trailer, fsyncs file and directory, then seals the row in one transaction. If that
//! transaction fails (SQLite on a full disk), the finished segment is queued and sealed, in
//! order, before the next one; a restart's recovery seals it from its file in any case.

use std::sync::{Arc, RwLock};

use nvr_core::wall::{SegmentWall, WallMapper};
use nvr_core::{CameraId, Duration90k, SegmentId, StreamKey, Time90k, VideoFrame, VideoParams};

use crate::db::{NewOpenSegment, SEGMENT_FLAG_CLOCK_JUMP, SealedSegment};
use crate::error::{IndexContext, Result, StorageError};
use crate::frame_index::{self, FrameInfo};
use crate::frame_timing::{MAX_REORDER_90K, SegmentTiming};
use crate::keys;
use crate::recovery;
use crate::segment::crypto::{KEY_LEN, SegmentKey};
use crate::segment::file::{SegmentWriter, TrailerFields, sha256};
use crate::segment::format::{
    FLAG_KEY, RECORD_FRAME, RECORD_PARAMS, RecordHeader, SALT_LEN, SegmentHeader, encode_params,
};
use crate::store::{OpenSegmentState, OpenSegmentView, Store};

/// How long the writer waits before retrying seals the index refused (each attempt may wait
/// for SQLite's busy timeout, so not on every frame).
const SEAL_RETRY_INTERVAL: Duration90k = Duration90k(2 * 90_000);

/// Most seals kept for retrying; beyond it the oldest is left to the next start's recovery,
/// which seals open rows from their files.
const MAX_PENDING_SEALS: usize = 64;

/// Duration assumed for the last frame of a run, whose successor never came, when there is no
/// previous frame to copy it from: 1/30 s.
pub use crate::frame_timing::FALLBACK_FRAME_DURATION_90K;

/// Writer settings.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    pub segment_duration: Duration90k,
    pub fsync_interval: Duration90k,
}

/// What happened to a frame given to [`CameraWriter::write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// Dropped: the run has no key frame yet (or the parameters changed on a non-key frame).
    SkippedUntilKeyFrame,
}

/// Counters for status and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub frames_written: u64,
    pub frames_skipped: u64,
    pub segments_sealed: u64,
    pub video_bytes_written: u64,
}

struct OpenSegment {
    id: SegmentId,
    run_id: SegmentId,
    file: SegmentWriter,
    params: Arc<VideoParams>,
    /// Session media time of the first frame.
    media_start_90k: i64,
    /// The frames' presentation offsets (from the first frame), which give their durations
    /// and composition offsets (see `frame_timing`).
    timing: SegmentTiming,
    frames: Vec<FrameInfo>,
    first_record_offset: u64,
    key_frames: i64,
    video_bytes: i64,
    start_estimate: Time90k,
    view: OpenSegmentView,
    last_sync: Duration90k,
    chunks_published: u64,
}

/// A segment whose file is finished but whose index row is not sealed yet: what
/// [`SealedSegment`] borrows, owned.
struct PendingSeal {
    id: SegmentId,
    start_90k: i64,
    end_90k: i64,
    media_duration_90k: i64,
    frames: i64,
    key_frames: i64,
    video_bytes: i64,
    file_bytes: i64,
    sha256: [u8; 32],
    frame_index: Vec<u8>,
    flags: i64,
}

impl PendingSeal {
    fn sealed(&self) -> SealedSegment<'_> {
        SealedSegment {
            id: self.id,
            start_90k: self.start_90k,
            end_90k: self.end_90k,
            media_duration_90k: self.media_duration_90k,
            frames: self.frames,
            key_frames: self.key_frames,
            video_bytes: self.video_bytes,
            file_bytes: self.file_bytes,
            sha256: &self.sha256,
            frame_index: &self.frame_index,
            flags: self.flags,
        }
    }
}

struct Run {
    mapper: WallMapper,
    /// The run's id once its first segment exists; `None` after a clock jump ends the run.
    run_id: Option<SegmentId>,
    open: Option<OpenSegment>,
    /// The latest media (presentation) time of the run.
    newest_media_90k: Option<i64>,
}

/// Records the frames of one stream of a camera.
pub struct CameraWriter {
    store: Arc<Store>,
    stream: StreamKey,
    config: WriterConfig,
    run: Option<Run>,
    /// End of the newest segment of this stream, so a new one never overlaps it.
    last_end_90k: Option<i64>,
    /// Finished segments whose rows could not be sealed yet, oldest first; sealed in this order
    /// (the stream's hash chain follows sealing order) before any later segment.
    pending_seals: Vec<PendingSeal>,
    /// When to retry `pending_seals` from `write` (monotonic).
    seal_retry_at: Duration90k,
    /// The last seal failure, until the writer thread takes it (see [`Self::take_seal_error`]).
    seal_error: Option<StorageError>,
    stats: WriterStats,
}

impl std::fmt::Debug for CameraWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraWriter")
            .field("stream", &self.stream)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl CameraWriter {
    pub fn new(store: Arc<Store>, stream: StreamKey, config: WriterConfig) -> Result<Self> {
        let last_end_90k = store
            .db()
            .last_segment_end(stream)
            .context(|| format!("reading the last segment end of {stream} (segments)"))?;
        Ok(CameraWriter {
            store,
            stream,
            config,
            run: None,
            last_end_90k,
            pending_seals: Vec::new(),
            seal_retry_at: Duration90k(0),
            seal_error: None,
            stats: WriterStats::default(),
        })
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Writes one frame of the current run (starting a run if none is open).
    pub fn write(&mut self, params: &Arc<VideoParams>, frame: &VideoFrame) -> Result<WriteOutcome> {
        if !self.pending_seals.is_empty() && self.store.clock().monotonic() >= self.seal_retry_at {
            self.seal_pending();
        }
        let mut run = self.run.take().unwrap_or_else(|| Run {
            mapper: WallMapper::new(),
            run_id: None,
            open: None,
            newest_media_90k: None,
        });
        let r = self.write_in_run(&mut run, params, frame);
        self.run = Some(run);
        r
    }

    fn write_in_run(
        &mut self,
        run: &mut Run,
        params: &Arc<VideoParams>,
        frame: &VideoFrame,
    ) -> Result<WriteOutcome> {
        // Media times are presentation times: a B-frame's lies a little before the newest,
        // never further back than reordering goes, and never on it.
        if let Some(newest) = run.newest_media_90k
            && (frame.media_time_90k == newest || frame.media_time_90k < newest - MAX_REORDER_90K)
        {
            return Err(StorageError::InvalidArgument(format!(
                "camera {}: frame media time {} does not follow the newest frame's {newest}",
                self.stream, frame.media_time_90k
            )));
        }
        let rotate = match &run.open {
            None => true,
            Some(o) => {
                *o.params != **params
                    || (frame.is_key
                        && frame.media_time_90k - o.media_start_90k
                            >= self.config.segment_duration.0)
            }
        };
        if rotate {
            if let Some(o) = run.open.take() {
                self.close(run, o, Some(frame.media_time_90k), None)?;
            }
            if !frame.is_key {
                self.stats.frames_skipped += 1;
                return Ok(WriteOutcome::SkippedUntilKeyFrame);
            }
            run.mapper.observe(frame.media_time_90k, frame.received);
            let o = self.open(run, params, frame)?;
            run.open = Some(o);
        } else {
            run.mapper.observe(frame.media_time_90k, frame.received);
        }
        let Some(o) = run.open.as_mut() else {
            unreachable!("a segment was opened above");
        };
        self.append_frame(o, frame)?;
        run.newest_media_90k = Some(
            run.newest_media_90k
                .map_or(frame.media_time_90k, |n| n.max(frame.media_time_90k)),
        );
        Ok(WriteOutcome::Written)
    }

    fn open(
        &mut self,
        run: &mut Run,
        params: &Arc<VideoParams>,
        frame: &VideoFrame,
    ) -> Result<OpenSegment> {
        let store = &self.store;
        let db = store.db();
        let params_record = encode_params(params);
        let params_id = db
            .upsert_video_params(params, &sha256(&params_record))
            .context(|| {
                format!(
                    "recording the video parameters of {} (video_params)",
                    self.stream
                )
            })?;
        let estimate = run
            .mapper
            .estimate(frame.media_time_90k)
            .unwrap_or(frame.received);
        let start = match self.last_end_90k {
            Some(end) if end > estimate.0 => Time90k(end),
            _ => estimate,
        };
        // The row and the epoch it uses, in one transaction: from here retention cannot shred
        // the epoch, so its key (made or loaded next, before the file) stays.
        let new = db
            .insert_open_segment(
                self.stream,
                run.run_id,
                &frame.received.utc_day(),
                params_id,
                start.0,
            )
            .context(|| {
                format!(
                    "opening a segment of camera {} (segments, epochs)",
                    self.stream
                )
            })?;
        let (id, epoch_id) = (new.id, new.epoch_id);
        let create = || -> Result<SegmentWriter> {
            let epoch_key = epoch_key_for(store, self.stream.camera, new)?;
            let mut salt = [0u8; SALT_LEN];
            keys::random_bytes(&mut salt)?;
            let header = SegmentHeader {
                camera_id: self.stream.camera.0,
                segment_id: id.0,
                epoch_id,
                salt,
                start_90k: start.0,
            };
            store.ensure_camera_dir(self.stream.camera)?;
            let path = store.segment_path(self.stream.camera, id);
            let key = SegmentKey::derive(&epoch_key, &salt, self.stream.camera.0, id.0);
            let mut file = SegmentWriter::create(&path, &header, key)?;
            file.append_record(
                RecordHeader {
                    kind: RECORD_PARAMS,
                    flags: 0,
                    size_bytes: params_record.len() as u32,
                    media_offset_90k: 0,
                },
                &params_record,
            )?;
            Ok(file)
        };
        let file = match create() {
            Ok(f) => f,
            Err(e) => {
                // No segment was started (a full disk, typically): drop its row and any file
                // begun, rather than leave an open row for the next start's recovery. An epoch
                // left without a key file gets one at its next use, or is shredded when over.
                if db.delete_segments(self.stream.camera, &[id]).is_ok() {
                    let _ = recovery::collect_garbage(store);
                }
                return Err(e);
            }
        };
        let run_id = *run.run_id.get_or_insert(id);
        let first_record_offset = file.records_end();
        let view = Arc::new(RwLock::new(OpenSegmentState {
            segment_id: id,
            run_id,
            video_params_id: params_id,
            params: params.clone(),
            start_90k: start.0,
            frames: Vec::new(),
            sealed_plaintext_len: 0,
            video_bytes: 0,
            file_bytes: 0,
        }));
        store.set_open_segment(self.stream, Some(view.clone()));
        tracing::debug!(camera = %self.stream, segment = %id, run = %run_id, "segment opened");
        Ok(OpenSegment {
            id,
            run_id,
            file,
            params: params.clone(),
            media_start_90k: frame.media_time_90k,
            timing: SegmentTiming::new(),
            frames: Vec::new(),
            first_record_offset,
            key_frames: 0,
            video_bytes: 0,
            start_estimate: start,
            view,
            last_sync: store.clock().monotonic(),
            chunks_published: 0,
        })
    }

    fn append_frame(&mut self, o: &mut OpenSegment, frame: &VideoFrame) -> Result<()> {
        let offset = frame.media_time_90k - o.media_start_90k;
        let size = u32::try_from(frame.data.len()).map_err(|_| {
            StorageError::InvalidArgument(format!("frame of {} bytes", frame.data.len()))
        })?;
        o.timing
            .check(offset)
            .map_err(|e| StorageError::InvalidArgument(format!("camera {}: {e}", self.stream)))?;
        let data_offset = o.file.append_record(
            RecordHeader {
                kind: RECORD_FRAME,
                flags: if frame.is_key { FLAG_KEY } else { 0 },
                size_bytes: size,
                media_offset_90k: offset,
            },
            &frame.data,
        )?;
        // Checked above: cannot fail. Frames from `changed` on have new timing (with B-frames
        // a frame can sort in before earlier ones; otherwise only the previous frame's
        // duration, now known, changes).
        let changed = o
            .timing
            .push(offset)
            .map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        o.frames.push(FrameInfo {
            duration_90k: 0,
            size_bytes: size,
            is_key: frame.is_key,
            data_offset,
            composition_offset_90k: 0,
        });
        for (i, f) in o.frames.iter_mut().enumerate().skip(changed) {
            f.duration_90k = o.timing.duration_90k(i).unwrap_or(0);
            f.composition_offset_90k = o.timing.composition_offset_90k(i);
        }
        o.key_frames += i64::from(frame.is_key);
        o.video_bytes += i64::from(size);
        self.stats.frames_written += 1;
        self.stats.video_bytes_written += u64::from(size);

        // Publish to readers: the previous frame's duration is now known, and maybe new chunks.
        {
            let mut v = o.view.write().unwrap_or_else(|p| p.into_inner());
            // Readers see every frame but the newest (its duration is unknown yet).
            let known = o.frames.len() - 1;
            v.frames.truncate(changed.min(known));
            let from = v.frames.len();
            v.frames.extend_from_slice(&o.frames[from..known]);
            v.video_bytes = o.video_bytes as u64;
            if o.file.chunks_written() != o.chunks_published {
                v.sealed_plaintext_len = o.file.sealed_plaintext_len();
                v.file_bytes = crate::segment::format::chunk_file_offset(o.file.chunks_written());
            }
        }
        if o.file.chunks_written() != o.chunks_published {
            o.chunks_published = o.file.chunks_written();
            let now = self.store.clock().monotonic();
            if now - o.last_sync >= self.config.fsync_interval {
                o.file.sync()?;
                o.last_sync = now;
            }
        }
        Ok(())
    }

    /// Closes `o`, whose latest frame ends at session media time `end_media_90k` (the next
    /// segment's first frame), or when unknown (the run ended) after the duration of the frame
    /// before it.
    fn close(
        &mut self,
        run: &mut Run,
        mut o: OpenSegment,
        end_media_90k: Option<i64>,
        extra_flags: Option<i64>,
    ) -> Result<()> {
        // A camera whose next key frame is not presented after every frame before it (not a
        // valid stream) gets the last frame's duration copied rather than a made-up one.
        let end = end_media_90k
            .map(|e| e - o.media_start_90k)
            .filter(|&e| e > o.timing.last_90k());
        if let Some(last) = o.frames.last_mut() {
            last.duration_90k = o.timing.last_duration_90k(end);
        }
        // The presented span: from the earliest frame (the first, unless an open GOP's
        // leading pictures come before it) to the end.
        let media_duration: i64 = o.frames.iter().map(|f| i64::from(f.duration_90k)).sum();
        let media_first = o.media_start_90k + o.timing.first_90k();
        let wall = run
            .mapper
            .close_segment(media_first, media_first + media_duration)
            .unwrap_or(SegmentWall {
                start: o.start_estimate,
                end: o.start_estimate + Duration90k(media_duration),
                clock_jump: false,
            });
        // Never overlap the previous segment (a clock stepped back): slide forward.
        let (start, end) = match self.last_end_90k {
            Some(prev_end) if prev_end > wall.start.0 => {
                (prev_end, prev_end + (wall.end.0 - wall.start.0).max(1))
            }
            _ => (wall.start.0, wall.end.0.max(wall.start.0 + 1)),
        };
        let mut flags = extra_flags.unwrap_or(0);
        if wall.clock_jump {
            flags |= SEGMENT_FLAG_CLOCK_JUMP;
            tracing::warn!(camera = %self.stream, segment = %o.id,
                "wall clock jumped during recording; a new run starts");
            run.run_id = None;
        }
        let frame_count = o.frames.len() as u64;
        let id = o.id;
        let finished = o.file.finish(TrailerFields {
            frame_count,
            media_duration_90k: media_duration,
            wall_start_90k: start,
            wall_end_90k: end,
        });
        self.store.set_open_segment(self.stream, None);
        let finished = match finished {
            Ok(f) => f,
            Err(e) => {
                // Recovery seals the segment now, which must not overtake older queued seals
                // (the hash chain follows sealing order): with any queued, the next start's
                // recovery seals it instead.
                self.seal_pending();
                if !self.pending_seals.is_empty() {
                    tracing::error!(camera = %self.stream, segment = %id, error = %e,
                        "closing segment failed; the next start recovers it");
                    return Err(e);
                }
                tracing::error!(camera = %self.stream, segment = %id, error = %e,
                    "closing segment failed; recovering it from its sealed chunks");
                recovery::recover_one(&self.store, id)?;
                self.last_end_90k =
                    self.store.db().last_segment_end(self.stream).context(|| {
                        format!("reading the last segment end of {} (segments)", self.stream)
                    })?;
                return Err(e);
            }
        };
        keys::sync_dir(&self.store.camera_dir(self.stream.camera))?;
        self.pending_seals.push(PendingSeal {
            id,
            start_90k: start,
            end_90k: end,
            media_duration_90k: media_duration,
            frames: frame_count as i64,
            key_frames: o.key_frames,
            video_bytes: o.video_bytes,
            file_bytes: finished.file_bytes as i64,
            sha256: finished.sha256,
            frame_index: frame_index::encode(o.first_record_offset, &o.frames),
            flags,
        });
        self.last_end_90k = Some(end);
        if self.pending_seals.len() > MAX_PENDING_SEALS {
            let oldest = self.pending_seals.remove(0);
            tracing::error!(camera = %self.stream, segment = %oldest.id,
                "too many segments wait for the index; this one is left to the next start's \
                 recovery");
        }
        self.seal_pending();
        tracing::debug!(camera = %self.stream, segment = %id, run = %o.run_id, frames = frame_count,
            "segment closed");
        Ok(())
    }

    /// Seals the queued segments, oldest first, stopping at the first that fails (it and the
    /// rest stay queued, retried after [`SEAL_RETRY_INTERVAL`] or at the next segment). The
    /// footage is safe meanwhile: the files are finished and fsynced; only playback waits for
    /// the rows. A failure is kept for [`Self::take_seal_error`].
    fn seal_pending(&mut self) {
        while let Some(p) = self.pending_seals.first() {
            let sealed = self.store.db().seal_segment(&p.sealed()).context(|| {
                format!(
                    "sealing segment {} of camera {} (segments, streams, motion)",
                    p.id, self.stream
                )
            });
            match sealed {
                Ok(()) => self.stats.segments_sealed += 1,
                // The row is gone (or sealed by someone else): nothing left to retry.
                Err(e @ StorageError::NotFound(_)) => {
                    tracing::error!(camera = %self.stream, segment = %p.id, error = %e,
                        "sealing a segment failed for good; the next start's check reports it");
                }
                Err(e) => {
                    tracing::error!(camera = %self.stream, segment = %p.id, error = %e,
                        queued = self.pending_seals.len(),
                        "sealing a segment in the index failed; its file is complete, will retry");
                    self.seal_retry_at = self.store.clock().monotonic() + SEAL_RETRY_INTERVAL;
                    self.seal_error = Some(e);
                    return;
                }
            }
            self.pending_seals.remove(0);
        }
    }

    /// The last failure to seal a segment in the index, if any since the last call: frames go
    /// on being written (the segment's file is complete and its seal is retried), but the
    /// caller should say so, and stall if it means the disk is full.
    pub fn take_seal_error(&mut self) -> Option<StorageError> {
        self.seal_error.take()
    }

    /// Keeps the camera's clock offset (camera minus recorder, 90 kHz) measured at `measured`
    /// with the stream, for exports.
    pub fn note_camera_clock(&self, offset_90k: i64, measured: Time90k) -> Result<()> {
        self.store
            .db()
            .set_stream_clock(self.stream, offset_90k, measured.0)
    }

    /// Ends the current run (the session is over): closes its segment. The last frame's
    /// duration is unknown and copied from the frame before it.
    pub fn end_run(&mut self) -> Result<()> {
        if !self.pending_seals.is_empty() {
            self.seal_pending();
        }
        let Some(mut run) = self.run.take() else {
            return Ok(());
        };
        let Some(o) = run.open.take() else {
            return Ok(());
        };
        self.close(&mut run, o, None, None)
    }
}

impl Drop for CameraWriter {
    fn drop(&mut self) {
        if let Err(e) = self.end_run() {
            tracing::error!(camera = %self.stream, error = %e, "closing the last segment failed");
        }
    }
}

/// The key of the epoch `new` uses: a new epoch's key file is made now, durably (file and
/// directory fsynced), before any segment file is written under it; so is the key file of an
/// epoch whose first segment failed before its key was written. Otherwise it is read (cached).
pub(crate) fn epoch_key_for(
    store: &Store,
    camera: CameraId,
    new: NewOpenSegment,
) -> Result<Arc<[u8; KEY_LEN]>> {
    let keyring = store.keyring();
    if new.epoch_created || !keyring.epoch_path(new.epoch_id).exists() {
        keyring.create_epoch(new.epoch_id, camera.0)
    } else {
        keyring.epoch_key(new.epoch_id, camera.0)
    }
}
