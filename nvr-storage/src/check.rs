//! `nvr check`: authenticates every chunk of every segment and compares each file with its
//! index row (frame list, hash, sizes, times, parameters); lists files the index does not know
//! and SQLite's own complaints; follows the hash chain of each camera's streams (main and sub
//! each have theirs), and names every segment that a chain link, a stream's chain head or a
//! signed head still refers to but that is gone from the index without a retention (or camera
//! deletion) record in the audit log: footage removed behind the recorder's back, oldest, newest
//! or in between. Safe to run while the server
//! records: segments being written are checked up to their last sealed chunk.

use std::collections::{BTreeMap, HashMap, HashSet};

use nvr_core::{CameraId, SegmentId, Stream, StreamKey};

use crate::db::{
    CAMERA_DELETE_ACTION, RETENTION_DELETE_ACTION, SEGMENT_FLAG_RECOVERED, SegmentRow,
};
use crate::error::IndexContext;
use crate::error::Result;
use crate::frame_index;
use crate::integrity::{CHAIN_START, ChainLink, chain_head_message, chain_next};
use crate::recovery::{camera_dirs, frames_with_durations};
use crate::segment::crypto::ChunkKind;
use crate::segment::file::SegmentReader;
use crate::segment::scan::scan;
use crate::store::Store;

/// One thing wrong, named precisely enough to find the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckProblem {
    pub camera: Option<CameraId>,
    pub segment: Option<SegmentId>,
    pub message: String,
}

impl std::fmt::Display for CheckProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.camera, self.segment) {
            (Some(c), Some(s)) => write!(f, "camera {c} segment {s}: {}", self.message),
            (Some(c), None) => write!(f, "camera {c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The outcome of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub segments_checked: u64,
    pub open_segments: u64,
    pub chunks_authenticated: u64,
    pub frames: u64,
    /// Rows of the motion index checked against their segments.
    pub motion_rows: u64,
    pub problems: Vec<CheckProblem>,
}

/// Checks the whole data directory.
pub fn check(store: &Store) -> Result<CheckReport> {
    store.flush_audit();
    let mut report = CheckReport::default();
    for msg in store
        .db()
        .integrity_check()
        .context(|| "checking the index's integrity".to_owned())?
    {
        report.problems.push(CheckProblem {
            camera: None,
            segment: None,
            message: format!("index database: {msg}"),
        });
    }
    let rows = store
        .db()
        .all_segments()
        .context(|| "listing segments (segments)".to_owned())?;
    let mut known: HashSet<(CameraId, SegmentId)> =
        rows.iter().map(|r| (r.camera_id, r.id)).collect();
    for (seg, cam) in store
        .db()
        .garbage()
        .context(|| "listing garbage (garbage)".to_owned())?
    {
        known.insert((cam, seg));
    }
    for row in &rows {
        let mut problem = check_segment(store, row, &mut report);
        if problem.is_some() {
            // The server may have sealed or deleted the segment while we read it: look again.
            match store
                .db()
                .segment(row.id)
                .context(|| format!("reading segment {} (segments)", row.id))?
            {
                None => problem = None,
                Some(now) if now != *row => problem = check_segment(store, &now, &mut report),
                Some(_) => {}
            }
        }
        if let Some(message) = problem {
            report.problems.push(CheckProblem {
                camera: Some(row.camera_id),
                segment: Some(row.id),
                message,
            });
        }
    }
    check_chains(store, &mut report)?;
    crate::motion::check::check_motion(store, &rows, &mut report)?;
    for (id, message) in store
        .db()
        .audit_verify()
        .context(|| "verifying the audit chain (audit_log)".to_owned())?
    {
        report.problems.push(CheckProblem {
            camera: None,
            segment: None,
            message: format!("audit log: {message} (entry {id})"),
        });
    }
    for camera in camera_dirs(store)? {
        let dir = store.camera_dir(camera);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let seg = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<i64>().ok())
                .map(SegmentId);
            match seg {
                Some(s) if known.contains(&(camera, s)) => {}
                Some(s)
                    if store
                        .db()
                        .segment(s)
                        .context(|| format!("reading segment {s} (segments)"))?
                        .is_some() => {}
                _ => report.problems.push(CheckProblem {
                    camera: Some(camera),
                    segment: seg,
                    message: format!(
                        "file {} is not in the index (no segment row names it)",
                        entry.path().display()
                    ),
                }),
            }
        }
    }
    Ok(report)
}

/// Checks one segment; returns the first problem found.
fn check_segment(store: &Store, row: &SegmentRow, report: &mut CheckReport) -> Option<String> {
    let path = store.segment_path(row.camera_id, row.id);
    if !path.exists() {
        if !row.sealed && row.frames == 0 {
            // Just inserted; the file is being created.
            return None;
        }
        return Some(format!(
            "file {} is missing: the index row remains but its footage is gone",
            path.display()
        ));
    }
    let reader = match SegmentReader::open(&path, store.keyring(), row.camera_id.0, row.id.0) {
        Ok(r) => r,
        Err(e) => return Some(e.to_string()),
    };
    let s = scan(&reader);
    report.segments_checked += 1;
    report.chunks_authenticated += s.inner_chunks + u64::from(s.trailer.is_some());
    report.frames += s.frames.len() as u64;
    if !row.sealed {
        report.open_segments += 1;
        return s.problem.clone();
    }
    if let Some(p) = s.sealed_problem() {
        return Some(p);
    }
    let Some((trailer, kind)) = &s.trailer else {
        return Some("no trailer".into());
    };
    let recovered_flag = row.flags & SEGMENT_FLAG_RECOVERED != 0;
    if (*kind == ChunkKind::RecoveredFinal) != recovered_flag {
        return Some("final chunk kind disagrees with the index's recovered flag".into());
    }
    if reader.file_len() != row.file_bytes as u64 {
        return Some(format!(
            "file is {} bytes, index says {}",
            reader.file_len(),
            row.file_bytes
        ));
    }
    if row.sha256 != Some(trailer.sha256) {
        return Some("plaintext SHA-256 differs from the index".into());
    }
    if (
        trailer.wall_start_90k,
        trailer.wall_end_90k,
        trailer.media_duration_90k,
    ) != (row.start_90k, row.end_90k, row.media_duration_90k)
    {
        return Some("times in the trailer differ from the index".into());
    }
    match store.db().video_params(row.video_params_id) {
        Ok(p) if Some(&p) == s.params.as_ref() => {}
        Ok(_) => return Some("video parameters in the file differ from the index".into()),
        Err(e) => return Some(e.to_string()),
    }
    let indexed = match store
        .db()
        .frame_index(row.id)
        .map(|b| frame_index::decode(&b))
    {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Some(format!("frame index: {e}")),
        Err(e) => return Some(e.to_string()),
    };
    let (from_file, _) = frames_with_durations(&s, Some(trailer.media_duration_90k));
    if indexed != from_file {
        return Some(format!(
            "frame index ({} frames) differs from the file's records ({} frames)",
            indexed.len(),
            from_file.len()
        ));
    }
    let video_bytes: i64 = from_file.iter().map(|f| i64::from(f.size_bytes)).sum();
    let key_frames = from_file.iter().filter(|f| f.is_key).count() as i64;
    if (row.frames, row.key_frames, row.video_bytes)
        != (from_file.len() as i64, key_frames, video_bytes)
    {
        return Some("frame, key frame or byte counts differ from the index".into());
    }
    None
}

/// Checks the hash chain of sealed segments of every stream of every camera and every signed
/// chain head, and that every segment they name is still in the index or was deleted on the
/// record.
fn check_chains(store: &Store, report: &mut CheckReport) -> Result<()> {
    // Every key the recorder has used: a head is checked with the key that signed it, so
    // heads signed before a key rotation stay valid.
    let keys: HashMap<i64, [u8; 32]> = store
        .signing_key_history()?
        .into_iter()
        .map(|k| (k.id, k.public_key))
        .collect();
    let first_key = keys.keys().min().copied();
    // Read before the rows, to set aside at once the many segments retention deleted (signed
    // heads name old ones); read again after them if anything is left (see below).
    let mut accounted = deletions_on_record(store)?;
    let cameras = store
        .db()
        .cameras()
        .context(|| "listing cameras (cameras, streams)".to_owned())?;
    let mut chains: HashMap<(StreamKey, SegmentId), [u8; 32]> = HashMap::new();
    // Segments named by a chain link, a stream's chain head or a signed head but neither among
    // the rows read nor deleted on record: (camera, segment) -> what names it.
    let mut absent: BTreeMap<(CameraId, SegmentId), Vec<NamedBy>> = BTreeMap::new();
    let mut note_absent = |camera: CameraId, segment: SegmentId, by: NamedBy| {
        if !accounted.contains(&segment) {
            absent.entry((camera, segment)).or_default().push(by);
        }
    };
    let streams: Vec<StreamKey> = cameras
        .iter()
        .flat_map(|c| {
            Stream::ALL
                .into_iter()
                .filter(|&s| c.has_stream_row(s))
                .map(|s| c.id.stream(s))
        })
        .collect();
    for &key in &streams {
        let rows = store
            .db()
            .chain_rows(key, SegmentId(0), SegmentId(i64::MAX))
            .context(|| format!("reading the hash chain of {key} (segments)"))?;
        let by_id: HashMap<SegmentId, &crate::db::ChainRow> =
            rows.iter().map(|r| (r.id, r)).collect();
        let mut problem = |segment: SegmentId, message: String| {
            report.problems.push(CheckProblem {
                camera: Some(key.camera),
                segment: Some(segment),
                message,
            });
        };
        for r in &rows {
            let (Some(prev), Some(chain)) = (r.prev_chain_sha256, r.chain_sha256) else {
                continue; // Sealed before the chain existed.
            };
            chains.insert((key, r.id), chain);
            let expected = chain_next(
                &prev,
                &ChainLink {
                    stream: key.stream,
                    segment_id: r.id.0,
                    camera_id: key.camera.0,
                    start_90k: r.start_90k,
                    end_90k: r.end_90k,
                    frames: r.frames,
                    sha256: r.sha256,
                },
            );
            if expected != chain {
                problem(
                    r.id,
                    "hash chain: the segment's times, frame count or hash were altered".into(),
                );
            }
            match r.prev_segment_id {
                None if prev != CHAIN_START => {
                    problem(
                        r.id,
                        "hash chain: first link does not start the chain".into(),
                    );
                }
                None => {}
                Some(p) => match by_id.get(&p) {
                    Some(pr) if pr.chain_sha256.is_some_and(|c| c != prev) => {
                        problem(r.id, format!("hash chain: does not follow segment {p}"))
                    }
                    Some(_) => {}
                    None => note_absent(key.camera, p, NamedBy::Link(r.id)),
                },
            }
        }
        if let Some((head, _)) = store
            .db()
            .stream_chain_head(key)
            .context(|| format!("reading the chain head of {key} (chain_heads)"))?
            && !by_id.contains_key(&head)
        {
            note_absent(key.camera, head, NamedBy::StreamHead(key.stream));
        }
    }
    let camera_ids: HashSet<CameraId> = cameras.iter().map(|c| c.id).collect();
    for h in store
        .db()
        .chain_heads()
        .context(|| "listing chain heads (chain_heads)".to_owned())?
    {
        if !camera_ids.contains(&h.camera_id) {
            continue; // The camera was deleted, and its footage with it.
        }
        let msg = chain_head_message(
            h.stream,
            h.camera_id.0,
            h.segment_id.0,
            &h.chain_sha256,
            h.signed_90k,
        );
        let mut bad = |message: String| {
            report.problems.push(CheckProblem {
                camera: Some(h.camera_id),
                segment: Some(h.segment_id),
                message,
            });
        };
        let Some(key) = h.signing_key_id.or(first_key).and_then(|k| keys.get(&k)) else {
            bad(format!(
                "signed chain head {}: signed by key {}, which the recorder has no record of",
                h.id,
                h.signing_key_id
                    .map_or_else(|| "?".to_owned(), |k| k.to_string())
            ));
            continue;
        };
        if !crate::signing::verify(key, &msg, &h.signature) {
            bad(format!("signed chain head {}: bad signature", h.id));
        } else if let Some(c) = chains.get(&(h.key(), h.segment_id)) {
            if *c != h.chain_sha256 {
                bad(format!(
                    "signed chain head {} no longer matches the segment's chain",
                    h.id
                ));
            }
        } else {
            note_absent(h.camera_id, h.segment_id, NamedBy::SignedHead(h.id));
        }
    }
    if !absent.is_empty() {
        // Read again, after the rows: retention deletes rows and records them in one
        // transaction, so a segment missing from the rows above was deleted by then, and is
        // recorded by now.
        accounted = deletions_on_record(store)?;
    }
    for ((camera, segment), named_by) in absent {
        if accounted.contains(&segment) {
            continue;
        }
        // Sealed since the rows were read (the server records while we check).
        if store
            .db()
            .segment(segment)
            .context(|| format!("reading segment {segment} (segments)"))?
            .is_some_and(|r| r.camera_id == camera)
        {
            continue;
        }
        let file = if store.segment_path(camera, segment).exists() {
            "its file is still there"
        } else {
            "its file is gone too"
        };
        report.problems.push(CheckProblem {
            camera: Some(camera),
            segment: Some(segment),
            message: format!(
                "footage missing: the segment's index row was removed ({file}) without a \
                 retention or camera deletion on record; named by {}",
                named_by
                    .iter()
                    .map(NamedBy::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(())
}

/// What names a segment that should still be in the index.
#[derive(Clone, Copy, Debug)]
enum NamedBy {
    /// The hash chain link (`prev_segment_id`) of this remaining segment.
    Link(SegmentId),
    /// The chain head of the camera's stream.
    StreamHead(Stream),
    /// This signed chain head.
    SignedHead(i64),
}

impl std::fmt::Display for NamedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamedBy::Link(s) => write!(f, "segment {s}'s hash chain link"),
            NamedBy::StreamHead(Stream::Main) => f.write_str("the camera's chain head"),
            NamedBy::StreamHead(s) => write!(f, "the chain head of the camera's {s} stream"),
            NamedBy::SignedHead(id) => write!(f, "signed chain head {id}"),
        }
    }
}

/// Segment ids the audit log says were deleted on purpose: by retention (`retention_delete`,
/// quotas, age and free space) or with their camera (`camera_delete`); each lists its ids
/// under `segments`.
fn deletions_on_record(store: &Store) -> Result<HashSet<SegmentId>> {
    let mut out = HashSet::new();
    for action in [RETENTION_DELETE_ACTION, CAMERA_DELETE_ACTION] {
        for detail in store
            .db()
            .audit_details(action)
            .context(|| format!("reading {action} audit entries (audit_log)"))?
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&detail)
                && let Some(ids) = v["segments"].as_array()
            {
                out.extend(ids.iter().filter_map(|i| i.as_i64()).map(SegmentId));
            }
        }
    }
    Ok(out)
}
