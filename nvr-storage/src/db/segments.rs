//! Queries of the `segments` and `video_params` tables for recording and reading back, the
//! epoch each new segment uses, and the stream's chain head its seal extends (retention's
//! queries are in `retention.rs`).

use rusqlite::{OptionalExtension, Row, named_params};

use super::Database;
use crate::error::{Result, StorageError};
use crate::integrity::{CHAIN_START, ChainLink, chain_next};
use nvr_core::{CameraId, SegmentId, Stream, StreamKey, VideoCodec, VideoParams};

/// Segment flag: the segment was closed by crash recovery.
pub const SEGMENT_FLAG_RECOVERED: i64 = 1;
/// Segment flag: the run ended at this segment because the wall clock jumped.
pub const SEGMENT_FLAG_CLOCK_JUMP: i64 = 2;

/// The camera's live epoch of a day: a shredded one is never used again.
const SELECT_LIVE_EPOCH: &str =
    "SELECT id FROM epochs WHERE camera_id = :camera_id AND day = :day AND shredded = 0";
const INSERT_EPOCH: &str = "INSERT INTO epochs (camera_id, day) VALUES (:camera_id, :day)";
const SELECT_PARAMS_BY_SHA: &str = "SELECT id FROM video_params WHERE sha256 = :sha256";
const INSERT_PARAMS: &str = "
    INSERT INTO video_params (codec, rfc6381_codec, width, height, sample_entry, sha256)
    VALUES (:codec, :rfc6381_codec, :width, :height, :sample_entry, :sha256)";
const SELECT_PARAMS: &str = "
    SELECT codec, rfc6381_codec, width, height, sample_entry FROM video_params WHERE id = :id";
const INSERT_OPEN_SEGMENT: &str = "
    INSERT INTO segments (camera_id, stream, run_id, epoch_id, video_params_id, state, start_90k,
                          end_90k, media_duration_90k, frames, key_frames, video_bytes,
                          file_bytes)
    VALUES (:camera_id, :stream, COALESCE(:run_id, 0), :epoch_id, :video_params_id, 0,
            :start_90k, :start_90k, 0, 0, 0, 0, 0)";
const SET_OWN_RUN: &str = "UPDATE segments SET run_id = id WHERE id = :id AND run_id = 0";
const SEAL_SEGMENT: &str = "
    UPDATE segments
    SET state = 1, start_90k = :start_90k, end_90k = :end_90k,
        media_duration_90k = :media_duration_90k, frames = :frames, key_frames = :key_frames,
        video_bytes = :video_bytes, file_bytes = :file_bytes, sha256 = :sha256,
        frame_index = :frame_index, flags = flags | :flags,
        prev_segment_id = :prev_segment_id, prev_chain_sha256 = :prev_chain,
        chain_sha256 = :chain
    WHERE id = :id AND state = 0";
const SELECT_SEGMENT_STREAM: &str =
    "SELECT camera_id, stream FROM segments WHERE id = :id AND state = 0";
const SELECT_STREAM_CHAIN: &str = "
    SELECT chain_segment_id, chain_sha256 FROM streams
    WHERE camera_id = :camera_id AND stream = :stream";
/// Moves the stream's chain head (its row exists for any stream that records; should one be
/// missing, it is made, without a URL, rather than the chain lost).
const UPDATE_STREAM_CHAIN: &str = "
    INSERT INTO streams (camera_id, stream, url, chain_segment_id, chain_sha256)
    VALUES (:camera_id, :stream, NULL, :segment_id, :chain)
    ON CONFLICT (camera_id, stream) DO UPDATE
    SET chain_segment_id = excluded.chain_segment_id, chain_sha256 = excluded.chain_sha256";
const SEGMENT_COLUMNS: &str = "
    id, camera_id, run_id, epoch_id, video_params_id, state, start_90k, end_90k,
    media_duration_90k, frames, key_frames, video_bytes, file_bytes, sha256, flags,
    prev_chain_sha256, chain_sha256, prev_segment_id, stream";
const SELECT_FRAME_INDEX: &str = "SELECT frame_index FROM segments WHERE id = :id";
const SELECT_LAST_END: &str =
    "SELECT MAX(end_90k) FROM segments WHERE camera_id = :camera_id AND stream = :stream";
/// Inserts a sealed row directly (synthetic indexes for benchmarks; feature `test-support`).
#[cfg(feature = "test-support")]
const INSERT_SYNTHETIC_SEGMENT: &str = "
    INSERT INTO segments (camera_id, stream, run_id, epoch_id, video_params_id, state, start_90k,
                          end_90k, media_duration_90k, frames, key_frames, video_bytes,
                          file_bytes, sha256, frame_index, flags)
    VALUES (:camera_id, 0, COALESCE(:run_id, 0), :epoch_id, :video_params_id, 1, :start_90k,
            :end_90k, :media_duration_90k, :frames, :key_frames, :video_bytes, :file_bytes,
            :sha256, :frame_index, :flags)";

/// What the timeline needs of a sealed segment: only columns stored before `frame_index` in the
/// row, so SQLite never walks the blob's overflow pages (a one-minute index is ~9 KiB: two or
/// three overflow pages per row, read one by one to reach any column after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub id: SegmentId,
    pub run_id: SegmentId,
    pub video_params_id: i64,
    pub start_90k: i64,
    pub end_90k: i64,
    pub frames: i64,
    pub video_bytes: i64,
}

/// A segment row (without its frame index blob).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: SegmentId,
    pub camera_id: CameraId,
    /// The camera's stream it belongs to.
    pub stream: Stream,
    pub run_id: SegmentId,
    pub epoch_id: i64,
    pub video_params_id: i64,
    /// False while the segment is being written (or was left open by a crash).
    pub sealed: bool,
    pub start_90k: i64,
    pub end_90k: i64,
    pub media_duration_90k: i64,
    pub frames: i64,
    pub key_frames: i64,
    pub video_bytes: i64,
    pub file_bytes: i64,
    pub sha256: Option<[u8; 32]>,
    pub flags: i64,
    /// The hash chain link (NULL while open): the previous sealed segment of the stream and
    /// its chain value, and this segment's.
    pub prev_segment_id: Option<SegmentId>,
    pub prev_chain_sha256: Option<[u8; 32]>,
    pub chain_sha256: Option<[u8; 32]>,
}

/// Everything that becomes known when a segment is closed.
#[derive(Clone, Debug)]
pub struct SealedSegment<'a> {
    pub id: SegmentId,
    pub start_90k: i64,
    pub end_90k: i64,
    pub media_duration_90k: i64,
    pub frames: i64,
    pub key_frames: i64,
    pub video_bytes: i64,
    pub file_bytes: i64,
    pub sha256: &'a [u8; 32],
    pub frame_index: &'a [u8],
    pub flags: i64,
}

/// The row [`Database::insert_open_segment`] inserted, and the epoch it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOpenSegment {
    pub id: SegmentId,
    pub epoch_id: i64,
    /// The epoch is new: its key file must be made (and fsynced) before the segment's file.
    pub epoch_created: bool,
}

/// The camera's live epoch of `day` within `tx`, inserted if there is none: (id, created).
fn live_epoch(tx: &rusqlite::Transaction<'_>, camera: CameraId, day: &str) -> Result<(i64, bool)> {
    let args = named_params! {":camera_id": camera.0, ":day": day};
    if let Some(id) = tx
        .prepare_cached(SELECT_LIVE_EPOCH)?
        .query_row(args, |r| r.get(0))
        .optional()?
    {
        return Ok((id, false));
    }
    tx.prepare_cached(INSERT_EPOCH)?.execute(args)?;
    Ok((tx.last_insert_rowid(), true))
}

fn hash32(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
}

fn segment_from_row(r: &Row<'_>) -> rusqlite::Result<SegmentRow> {
    let sha: Option<Vec<u8>> = r.get(13)?;
    Ok(SegmentRow {
        id: SegmentId(r.get(0)?),
        camera_id: CameraId(r.get(1)?),
        run_id: SegmentId(r.get(2)?),
        epoch_id: r.get(3)?,
        video_params_id: r.get(4)?,
        sealed: r.get::<_, i64>(5)? == 1,
        start_90k: r.get(6)?,
        end_90k: r.get(7)?,
        media_duration_90k: r.get(8)?,
        frames: r.get(9)?,
        key_frames: r.get(10)?,
        video_bytes: r.get(11)?,
        file_bytes: r.get(12)?,
        sha256: hash32(sha),
        flags: r.get(14)?,
        prev_chain_sha256: hash32(r.get(15)?),
        chain_sha256: hash32(r.get(16)?),
        prev_segment_id: r.get::<_, Option<i64>>(17)?.map(SegmentId),
        stream: stream_of(r.get(18)?)?,
    })
}

/// The stream a stored number names; an unknown one (written by a newer version) fails the
/// query rather than being taken for another stream.
pub(crate) fn stream_of(index: i64) -> rusqlite::Result<Stream> {
    Stream::from_index(index).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            18,
            rusqlite::types::Type::Integer,
            format!("unknown stream {index}").into(),
        )
    })
}

impl SegmentRow {
    /// The camera's stream this segment belongs to.
    pub fn key(&self) -> StreamKey {
        StreamKey::new(self.camera_id, self.stream)
    }
}

impl Database {
    /// Returns the camera's live epoch of a UTC day, creating the row if needed, for synthetic
    /// indexes (feature `test-support`). Recording uses [`Self::insert_open_segment`], which
    /// does this in the same transaction as inserting the segment that uses the epoch.
    #[cfg(feature = "test-support")]
    pub fn get_or_create_epoch(&self, camera: CameraId, day: &str) -> Result<(i64, bool)> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let epoch = live_epoch(&tx, camera, day)?;
        tx.commit()?;
        Ok(epoch)
    }

    /// Returns the id of these video parameters, inserting them if new.
    pub fn upsert_video_params(&self, p: &VideoParams, sha256: &[u8; 32]) -> Result<i64> {
        let conn = self.lock();
        if let Some(id) = conn
            .prepare_cached(SELECT_PARAMS_BY_SHA)?
            .query_row(named_params! {":sha256": &sha256[..]}, |r| r.get(0))
            .optional()?
        {
            return Ok(id);
        }
        conn.prepare_cached(INSERT_PARAMS)?.execute(named_params! {
            ":codec": p.codec.name(),
            ":rfc6381_codec": p.rfc6381_codec,
            ":width": p.width,
            ":height": p.height,
            ":sample_entry": &p.sample_entry[..],
            ":sha256": &sha256[..],
        })?;
        Ok(conn.last_insert_rowid())
    }

    pub fn video_params(&self, id: i64) -> Result<VideoParams> {
        let conn = self.read();
        let (codec, rfc6381_codec, width, height, entry): (String, String, u16, u16, Vec<u8>) =
            conn.prepare_cached(SELECT_PARAMS)?
                .query_row(named_params! {":id": id}, |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?
                .ok_or_else(|| StorageError::NotFound(format!("video parameters {id}")))?;
        let codec = match codec.as_str() {
            "h264" => VideoCodec::H264,
            "h265" => VideoCodec::H265,
            other => {
                return Err(StorageError::Format(format!(
                    "unknown codec {other:?} in index"
                )));
            }
        };
        Ok(VideoParams {
            codec,
            rfc6381_codec,
            width,
            height,
            sample_entry: bytes::Bytes::from(entry),
        })
    }

    /// Inserts the row of a segment of `stream` about to be written, in the camera's live epoch
    /// of UTC day `day` (a new epoch if it has none, or only a shredded one; a camera's streams
    /// share its epochs), in one transaction. `run_id` is the run it continues, or `None` to
    /// start a new run (the segment's own id).
    ///
    /// Once this commits, retention cannot shred the epoch: its shredding statement re-checks
    /// that no segment uses it. The caller makes (or loads) the epoch's key file before it
    /// writes the segment file; see [`NewOpenSegment::epoch_created`].
    pub fn insert_open_segment(
        &self,
        stream: StreamKey,
        run_id: Option<SegmentId>,
        day: &str,
        video_params_id: i64,
        start_90k: i64,
    ) -> Result<NewOpenSegment> {
        let mut conn = self.lock();
        // Immediate: take the write lock before reading the epoch, so the read cannot go stale
        // before the insert (another process's retention shredding it meanwhile).
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (epoch_id, epoch_created) = live_epoch(&tx, stream.camera, day)?;
        tx.prepare_cached(INSERT_OPEN_SEGMENT)?
            .execute(named_params! {
                ":camera_id": stream.camera.0,
                ":stream": stream.stream.index(),
                ":run_id": run_id.map(|r| r.0),
                ":epoch_id": epoch_id,
                ":video_params_id": video_params_id,
                ":start_90k": start_90k,
            })?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached(SET_OWN_RUN)?
            .execute(named_params! {":id": id})?;
        tx.commit()?;
        Ok(NewOpenSegment {
            id: SegmentId(id),
            epoch_id,
            epoch_created,
        })
    }

    /// Records a closed segment: its times, counts, hash and frame index, and extends its
    /// stream's hash chain with it, in one transaction.
    pub fn seal_segment(&self, s: &SealedSegment<'_>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let (camera_id, stream): (i64, i64) = tx
            .prepare_cached(SELECT_SEGMENT_STREAM)?
            .query_row(named_params! {":id": s.id.0}, |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .ok_or_else(|| StorageError::NotFound(format!("open segment {}", s.id)))?;
        let (prev_id, prev): (Option<i64>, Option<Vec<u8>>) = tx
            .prepare_cached(SELECT_STREAM_CHAIN)?
            .query_row(
                named_params! {":camera_id": camera_id, ":stream": stream},
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((None, None));
        let prev = hash32(prev).unwrap_or(CHAIN_START);
        let chain = chain_next(
            &prev,
            &ChainLink {
                stream: stream_of(stream)?,
                segment_id: s.id.0,
                camera_id,
                start_90k: s.start_90k,
                end_90k: s.end_90k,
                frames: s.frames,
                sha256: *s.sha256,
            },
        );
        let n = tx.prepare_cached(SEAL_SEGMENT)?.execute(named_params! {
            ":id": s.id.0,
            ":start_90k": s.start_90k,
            ":end_90k": s.end_90k,
            ":media_duration_90k": s.media_duration_90k,
            ":frames": s.frames,
            ":key_frames": s.key_frames,
            ":video_bytes": s.video_bytes,
            ":file_bytes": s.file_bytes,
            ":sha256": &s.sha256[..],
            ":frame_index": s.frame_index,
            ":flags": s.flags,
            ":prev_segment_id": prev_id,
            ":prev_chain": &prev[..],
            ":chain": &chain[..],
        })?;
        if n != 1 {
            return Err(StorageError::NotFound(format!("open segment {}", s.id)));
        }
        tx.prepare_cached(UPDATE_STREAM_CHAIN)?
            .execute(named_params! {
                ":camera_id": camera_id,
                ":stream": stream,
                ":segment_id": s.id.0,
                ":chain": &chain[..],
            })?;
        super::motion::clip_segment_motion(&tx, s.id, s.start_90k, s.end_90k)?;
        if let Some(d) = self.slow_seal() {
            // The test seam: a commit as slow as a spinning disk's fsync, holding the writer.
            std::thread::sleep(d);
        }
        self.run_seal_hook();
        tx.commit()?;
        Ok(())
    }

    pub fn segment(&self, id: SegmentId) -> Result<Option<SegmentRow>> {
        let conn = self.read();
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = :id");
        Ok(conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":id": id.0}, segment_from_row)
            .optional()?)
    }

    /// Inserts sealed rows without files in one transaction, for benchmarks of queries over
    /// large indexes (feature `test-support`; never in the server). Each item is (camera,
    /// epoch id, video parameters id, row); `SealedSegment::id` is ignored. Each camera's rows
    /// form one run, started by its first row; no hash chain is written.
    #[cfg(feature = "test-support")]
    pub fn insert_synthetic_segments(
        &self,
        rows: &[(CameraId, i64, i64, SealedSegment<'_>)],
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut runs: std::collections::HashMap<CameraId, i64> = Default::default();
        {
            let mut insert = tx.prepare_cached(INSERT_SYNTHETIC_SEGMENT)?;
            let mut own_run = tx.prepare_cached(SET_OWN_RUN)?;
            for (camera, epoch_id, params_id, s) in rows {
                let run_id = runs.get(camera).copied();
                insert.execute(named_params! {
                    ":camera_id": camera.0,
                    ":run_id": run_id,
                    ":epoch_id": epoch_id,
                    ":video_params_id": params_id,
                    ":start_90k": s.start_90k,
                    ":end_90k": s.end_90k,
                    ":media_duration_90k": s.media_duration_90k,
                    ":frames": s.frames,
                    ":key_frames": s.key_frames,
                    ":video_bytes": s.video_bytes,
                    ":file_bytes": s.file_bytes,
                    ":sha256": &s.sha256[..],
                    ":frame_index": s.frame_index,
                    ":flags": s.flags,
                })?;
                if run_id.is_none() {
                    let id = tx.last_insert_rowid();
                    own_run.execute(named_params! {":id": id})?;
                    runs.insert(*camera, id);
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every segment, sealed or open, ordered by camera and start.
    pub fn all_segments(&self) -> Result<Vec<SegmentRow>> {
        let conn = self.lock();
        let sql =
            format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY camera_id, start_90k, id");
        let rows = conn
            .prepare_cached(&sql)?
            .query_map([], segment_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Segments left open (being written, or by a crash).
    pub fn open_segments(&self) -> Result<Vec<SegmentRow>> {
        let conn = self.lock();
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE state = 0 ORDER BY id");
        let rows = conn
            .prepare_cached(&sql)?
            .query_map([], segment_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Runs `SELECT {columns} FROM segments` over the sealed segments of `stream` overlapping
    /// `[start, end)`, by start time, mapping each row with `map`.
    fn query_sealed_overlapping<T>(
        &self,
        columns: &str,
        stream: StreamKey,
        start_90k: i64,
        end_90k: i64,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let conn = self.read();
        // The start bound lets SQLite use the (camera_id, stream, start_90k) index: no segment
        // is longer than MAX_SEGMENT_SPAN_90K, so one starting earlier than that cannot overlap.
        let sql = format!(
            "SELECT {columns} FROM segments
             WHERE camera_id = :camera_id AND stream = :stream AND state = 1
               AND start_90k < :end_90k AND start_90k > :min_start AND end_90k > :start_90k
             ORDER BY start_90k, id"
        );
        let rows = conn
            .prepare_cached(&sql)?
            .query_map(
                named_params! {
                    ":camera_id": stream.camera.0,
                    ":stream": stream.stream.index(),
                    ":start_90k": start_90k,
                    ":end_90k": end_90k,
                    ":min_start": start_90k.saturating_sub(MAX_SEGMENT_SPAN_90K),
                },
                map,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Sealed segments of `stream` overlapping `[start, end)`, by start time.
    pub fn sealed_stream_segments_overlapping(
        &self,
        stream: StreamKey,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<SegmentRow>> {
        self.query_sealed_overlapping(
            SEGMENT_COLUMNS,
            stream,
            start_90k,
            end_90k,
            segment_from_row,
        )
    }

    /// Sealed segments of any stream of `camera` overlapping `[start, end)`, by start time
    /// (each stream's through the index; a camera has two at most).
    pub fn sealed_segments_overlapping(
        &self,
        camera: CameraId,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<SegmentRow>> {
        let mut rows = Vec::new();
        for stream in Stream::ALL {
            rows.extend(self.sealed_stream_segments_overlapping(
                camera.stream(stream),
                start_90k,
                end_90k,
            )?);
        }
        rows.sort_by_key(|r| (r.start_90k, r.id));
        Ok(rows)
    }

    /// [`SegmentSummary`]s of the sealed segments of `stream` overlapping `[start, end)`, by
    /// start time: the timeline's one query (none of the columns after the frame index blob).
    pub(crate) fn sealed_segment_summaries(
        &self,
        stream: StreamKey,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<SegmentSummary>> {
        self.query_sealed_overlapping(
            "id, run_id, video_params_id, start_90k, end_90k, frames, video_bytes",
            stream,
            start_90k,
            end_90k,
            |r| {
                Ok(SegmentSummary {
                    id: SegmentId(r.get(0)?),
                    run_id: SegmentId(r.get(1)?),
                    video_params_id: r.get(2)?,
                    start_90k: r.get(3)?,
                    end_90k: r.get(4)?,
                    frames: r.get(5)?,
                    video_bytes: r.get(6)?,
                })
            },
        )
    }

    /// Sealed segments of `stream` overlapping `[start, end)`, by start time, each with its
    /// frame index blob: one query for a whole view instead of one more per segment.
    pub fn sealed_segments_with_index(
        &self,
        stream: StreamKey,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<(SegmentRow, Vec<u8>)>> {
        self.query_sealed_overlapping(
            &format!("{SEGMENT_COLUMNS}, frame_index"),
            stream,
            start_90k,
            end_90k,
            |r| {
                let blob: Option<Vec<u8>> = r.get(19)?;
                Ok((segment_from_row(r)?, blob.unwrap_or_default()))
            },
        )
    }

    pub fn frame_index(&self, id: SegmentId) -> Result<Vec<u8>> {
        let conn = self.read();
        conn.prepare_cached(SELECT_FRAME_INDEX)?
            .query_row(named_params! {":id": id.0}, |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()?
            .flatten()
            .ok_or_else(|| StorageError::NotFound(format!("frame index of segment {id}")))
    }

    /// The latest end time of any segment of `stream`.
    pub fn last_segment_end(&self, stream: StreamKey) -> Result<Option<i64>> {
        let conn = self.read();
        Ok(conn.prepare_cached(SELECT_LAST_END)?.query_row(
            named_params! {":camera_id": stream.camera.0, ":stream": stream.stream.index()},
            |r| r.get(0),
        )?)
    }
}

/// The longest wall span a segment may have: rotation happens at the first key frame after the
/// configured duration (at most an hour), and a camera sending key frames less than every 10
/// minutes is broken; 2 hours leaves margin. Used to bound range queries on the start index.
pub const MAX_SEGMENT_SPAN_90K: i64 = 2 * 3600 * 90_000;
