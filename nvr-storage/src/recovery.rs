//! Crash recovery, run when the server starts (and by a writer whose segment failed mid-way):
//! every segment left open is cut back to its last authenticated chunk, closed with a trailer,
//! and indexed from the records it holds, so a `kill -9` loses at most the one unsealed chunk.
//! Files listed as garbage are unlinked, and so are key files of epochs marked shredded.
//!
//! Recovery never re-encrypts data: the authenticated inner chunks stay as they are and a new
//! final chunk holding only the trailer is appended after them, under the recovery-only nonce
//! flag (see `segment::crypto`). It is deterministic, so a crash during recovery is harmless.

use nvr_core::{CameraId, SegmentId};

use crate::db::{SEGMENT_FLAG_RECOVERED, SealedSegment, SegmentRow};
use crate::error::IndexContext;
use crate::error::{Result, StorageError};
use crate::frame_index::{self, FrameInfo};
use crate::keys;
use crate::segment::crypto::ChunkKind;
use crate::segment::file::SegmentReader;
use crate::segment::format::{RECORD_HEADER_LEN, TRAILER_FLAG_RECOVERED, Trailer, encode_params};
use crate::segment::scan::{Scan, scan};
use crate::store::Store;

/// What recovery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments closed and indexed: (segment, frames kept).
    pub recovered: Vec<(SegmentId, u64)>,
    /// Open segments with no whole frame, removed.
    pub removed_empty: Vec<SegmentId>,
    /// Files of deleted segments unlinked.
    pub garbage_unlinked: u64,
    /// Key files of epochs marked shredded, left by a stop between marking and unlinking.
    pub keys_shredded: u64,
}

/// Recovers every open segment and collects garbage. Call before any writer starts.
pub fn recover(store: &Store) -> Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    // Files the index lost track of (a truncated WAL) must never share an id with a new
    // segment: keep the id sequence above every file on disk. `nvr check` lists such files.
    let max_file_id = max_segment_file_id(store)?;
    if store
        .db()
        .ensure_segment_ids_above(max_file_id)
        .context(|| format!("moving segment ids above {max_file_id} (sqlite_sequence)"))?
    {
        tracing::warn!(
            max_file_id,
            "segment files newer than the index exist (lost index writes?); \
            new segments will use higher ids; `nvr check` lists the files"
        );
    }
    for row in store
        .db()
        .open_segments()
        .context(|| "listing open segments (segments)".to_owned())?
    {
        match recover_row(store, &row)? {
            Some(frames) => report.recovered.push((row.id, frames)),
            None => report.removed_empty.push(row.id),
        }
    }
    report.garbage_unlinked = collect_garbage(store)?;
    report.keys_shredded = shred_leftover_keys(store)?;
    Ok(report)
}

/// Unlinks the key files of epochs the index marks shredded: retention marks an epoch first
/// and unlinks its key after, so a stop in between leaves the file. Returns how many went.
fn shred_leftover_keys(store: &Store) -> Result<u64> {
    let shredded: std::collections::HashSet<i64> = store
        .db()
        .shredded_epochs()
        .context(|| "listing shredded epochs (epochs)".to_owned())?
        .into_iter()
        .collect();
    let mut n = 0;
    for id in store.keyring().epoch_file_ids()? {
        if shredded.contains(&id) {
            store.keyring().shred(id)?;
            tracing::info!(epoch = id, "removed the key file of a shredded epoch");
            n += 1;
        }
    }
    Ok(n)
}

/// Recovers one open segment by id (used by a writer whose file write failed).
pub fn recover_one(store: &Store, id: SegmentId) -> Result<()> {
    if let Some(row) = store
        .db()
        .segment(id)
        .context(|| format!("reading segment {id} (segments)"))?
        && !row.sealed
    {
        recover_row(store, &row)?;
    }
    Ok(())
}

/// Unlinks the files of segments deleted from the index.
pub fn collect_garbage(store: &Store) -> Result<u64> {
    let mut n = 0;
    let mut dirs = std::collections::BTreeSet::new();
    // Only the rows read here are cleared below: another thread may list more meanwhile (its
    // files are not unlinked yet, so their rows must stay).
    let garbage = store
        .db()
        .garbage()
        .context(|| "listing garbage (garbage)".to_owned())?;
    for &(segment, camera) in &garbage {
        let path = store.segment_path(camera, segment);
        match std::fs::remove_file(&path) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::Io { path, source: e }),
        }
        dirs.insert(camera);
    }
    for camera in &dirs {
        let dir = store.camera_dir(*camera);
        if dir.exists() {
            keys::sync_dir(&dir)?;
        }
    }
    for (segment, _) in garbage {
        store
            .db()
            .remove_garbage(segment)
            .context(|| format!("removing segment {segment} from the garbage list (garbage)"))?;
    }
    Ok(n)
}

fn remove(store: &Store, row: &SegmentRow) -> Result<()> {
    store
        .db()
        .delete_segments(row.camera_id, &[row.id])
        .context(|| {
            format!(
                "deleting segment {} of camera {} (segments)",
                row.id, row.camera_id
            )
        })?;
    collect_garbage(store)?;
    Ok(())
}

/// Returns the number of frames kept, or `None` if the segment was removed.
fn recover_row(store: &Store, row: &SegmentRow) -> Result<Option<u64>> {
    let path = store.segment_path(row.camera_id, row.id);
    if !path.exists() {
        // The crash came between inserting the row and creating the file.
        remove(store, row)?;
        tracing::info!(camera = %row.camera_id, segment = %row.id, "removed open segment without a file");
        return Ok(None);
    }
    let mut reader = match SegmentReader::open(&path, store.keyring(), row.camera_id.0, row.id.0) {
        Ok(r) => r,
        Err(StorageError::Corrupt { detail, .. }) if detail.contains("cannot read header") => {
            // The header itself was never completely written: nothing to keep.
            remove(store, row)?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let s = scan(&reader);
    if let Some(p) = &s.problem {
        tracing::warn!(camera = %row.camera_id, segment = %row.id, problem = %p,
            "recovery stops at the first damaged chunk; later chunks are dropped");
    }
    let Some(params) = s.params.as_ref() else {
        remove(store, row)?;
        return Ok(None);
    };
    if s.frames.is_empty() {
        remove(store, row)?;
        tracing::info!(camera = %row.camera_id, segment = %row.id, "removed open segment with no whole frame");
        return Ok(None);
    }
    let first_record_offset = s.frames[0].payload_offset - RECORD_HEADER_LEN as u64;
    let (frames, media_duration) =
        frames_with_durations(&s, s.trailer.as_ref().map(|(t, _)| t.media_duration_90k));
    let params_record = encode_params(params);
    let params_id = store
        .db()
        .upsert_video_params(params, &crate::segment::file::sha256(&params_record))
        .context(|| {
            format!(
                "recording the video parameters of segment {} (video_params)",
                row.id
            )
        })?;
    if params_id != row.video_params_id {
        return Err(StorageError::Corrupt {
            camera: row.camera_id,
            segment: row.id,
            detail: "video parameters in the file differ from the index".into(),
        });
    }

    let (trailer, file_bytes, flags) = match (&s.trailer, &s.problem) {
        // The segment was closed, but the crash came before its row was sealed.
        (Some((t, kind)), None) if s.sealed_problem().is_none() => {
            let flags = if *kind == ChunkKind::RecoveredFinal {
                SEGMENT_FLAG_RECOVERED
            } else {
                0
            };
            (t.clone(), reader.file_len(), flags)
        }
        _ => {
            let t = Trailer {
                records_end: s.records_end,
                frame_count: frames.len() as u64,
                media_duration_90k: media_duration,
                wall_start_90k: row.start_90k,
                wall_end_90k: row.start_90k + media_duration,
                flags: TRAILER_FLAG_RECOVERED,
                sha256: s.sha256,
            };
            let len =
                reader.rewrite_tail(s.inner_chunks, ChunkKind::RecoveredFinal, &t.encode())?;
            (t, len, SEGMENT_FLAG_RECOVERED)
        }
    };
    let video_bytes: i64 = frames.iter().map(|f| i64::from(f.size_bytes)).sum();
    let key_frames = frames.iter().filter(|f| f.is_key).count() as i64;
    let index = frame_index::encode(first_record_offset, &frames);
    store
        .db()
        .seal_segment(&SealedSegment {
            id: row.id,
            start_90k: trailer.wall_start_90k,
            end_90k: trailer.wall_end_90k,
            media_duration_90k: trailer.media_duration_90k,
            frames: frames.len() as i64,
            key_frames,
            video_bytes,
            file_bytes: file_bytes as i64,
            sha256: &trailer.sha256,
            frame_index: &index,
            flags,
        })
        .context(|| {
            format!(
                "sealing recovered segment {} of camera {} (segments)",
                row.id, row.camera_id
            )
        })?;
    tracing::info!(camera = %row.camera_id, segment = %row.id, frames = frames.len(),
        "recovered open segment");
    Ok(Some(frames.len() as u64))
}

/// Turns scanned frames (presentation offsets, in decode order) into indexed frames
/// (durations and composition offsets, see `frame_timing`). The last frame's duration ends the
/// segment `total` (its media duration) after its earliest frame when that is known, else
/// copies the one before.
pub(crate) fn frames_with_durations(scan: &Scan, total_90k: Option<i64>) -> (Vec<FrameInfo>, i64) {
    let timing = scan
        .timing
        .finish(total_90k.map(|t| scan.timing.first_90k() + t));
    let out: Vec<FrameInfo> = scan
        .frames
        .iter()
        .zip(timing)
        .map(|(f, (duration_90k, composition_offset_90k))| FrameInfo {
            duration_90k,
            size_bytes: f.size_bytes,
            is_key: f.is_key,
            data_offset: f.payload_offset,
            composition_offset_90k,
        })
        .collect();
    let total = out.iter().map(|f| i64::from(f.duration_90k)).sum();
    (out, total)
}

/// The highest segment id among the files on disk.
fn max_segment_file_id(store: &Store) -> Result<i64> {
    let mut max = 0;
    for camera in camera_dirs(store)? {
        let dir = store.camera_dir(camera);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if let Some(id) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<i64>().ok())
            {
                max = max.max(id);
            }
        }
    }
    Ok(max)
}

/// Camera ids that have segment directories on disk (for orphan detection).
pub(crate) fn camera_dirs(store: &Store) -> Result<Vec<CameraId>> {
    let root = store.segments_root();
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(StorageError::Io {
                path: root,
                source: e,
            });
        }
    };
    for entry in rd {
        let entry = entry.map_err(StorageError::io(&root))?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i64>().ok())
        {
            out.push(CameraId(id));
        }
    }
    out.sort();
    Ok(out)
}
