//! `nvr check`: authenticates every chunk of every segment and compares each file with its
//! index row (frame list, hash, sizes, times, parameters); lists files the index does not know
//! and SQLite's own complaints. Safe to run while the server records: segments being written
//! are checked up to their last sealed chunk.

use std::collections::HashSet;

use nvr_core::{CameraId, SegmentId};

use crate::db::{SEGMENT_FLAG_RECOVERED, SegmentRow};
use crate::error::Result;
use crate::frame_index;
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
    pub problems: Vec<CheckProblem>,
}

/// Checks the whole data directory.
pub fn check(store: &Store) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    for msg in store.db().integrity_check()? {
        report.problems.push(CheckProblem {
            camera: None,
            segment: None,
            message: format!("index database: {msg}"),
        });
    }
    let rows = store.db().all_segments()?;
    let mut known: HashSet<(CameraId, SegmentId)> =
        rows.iter().map(|r| (r.camera_id, r.id)).collect();
    for (seg, cam) in store.db().garbage()? {
        known.insert((cam, seg));
    }
    for row in &rows {
        let mut problem = check_segment(store, row, &mut report);
        if problem.is_some() {
            // The server may have sealed or deleted the segment while we read it: look again.
            match store.db().segment(row.id)? {
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
                Some(s) if store.db().segment(s)?.is_some() => {}
                _ => report.problems.push(CheckProblem {
                    camera: Some(camera),
                    segment: seg,
                    message: format!("file {} is not in the index", entry.path().display()),
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
        return Some(format!("file {} is missing", path.display()));
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
    let (from_file, _) = frames_with_durations(&s.frames, Some(trailer.media_duration_90k));
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
