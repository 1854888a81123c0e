//! Indexing footage recorded before analysis existed (or again, after a change of settings):
//! `nvr motion reindex`. Reads the sealed segments of a range back from storage, run by run,
//! with the same decoding, sampling and detector as the live analysis, and replaces each
//! segment's rows. Everything depends only on the stored frames and the settings, so indexing
//! the same footage twice gives the same rows.

use std::sync::Arc;
use std::time::Duration;

use nvr_core::config::MotionConfig;
use nvr_core::{CameraId, Time90k};
use nvr_storage::motion::{MotionSecond, MotionSpan, ReindexedSegment, TICKS_PER_SEC};
use nvr_storage::playback::segment_frames;
use nvr_storage::store::Store;
use nvr_storage::{AuditNote, SegmentRow};

use crate::accumulate::{Accumulator, Sampler, detector_step_90k};
use crate::decoder::{Decoder, DecoderFactory};
use crate::detector::Detector;
use crate::error::MotionError;
use crate::settings::MotionSettings;
use crate::worker::key_frames_only;

/// Segments replaced per transaction: progress survives an interruption, and the database
/// lock is never held for long while the server records.
const BATCH_SEGMENTS: usize = 16;
/// How long to wait for the decoder to take a frame or give a picture before giving up on
/// a segment.
const DECODE_STALL: Duration = Duration::from_secs(10);

/// What to reindex.
#[derive(Clone, Debug)]
pub struct ReindexRequest {
    pub camera: CameraId,
    pub start: Time90k,
    pub end: Time90k,
    /// Who asked, for the audit log.
    pub actor: String,
    pub settings: MotionSettings,
    pub config: MotionConfig,
}

/// What a reindex did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReindexOutcome {
    pub segments: u64,
    /// Segments left without an index because their video could not be decoded.
    pub segments_failed: u64,
    pub frames_analysed: u64,
    pub seconds_with_motion: u64,
}

/// One segment's analysis in progress.
struct SegmentWork {
    row: SegmentRow,
    acc: Accumulator,
}

/// Runs of contiguous segments: background continuity holds within one.
fn runs(segments: Vec<SegmentRow>) -> Vec<Vec<SegmentRow>> {
    let mut out: Vec<Vec<SegmentRow>> = Vec::new();
    for s in segments {
        match out.last_mut() {
            Some(run)
                if run.last().is_some_and(|p| {
                    p.run_id == s.run_id
                        && p.end_90k == s.start_90k
                        && p.video_params_id == s.video_params_id
                }) =>
            {
                run.push(s);
            }
            _ => out.push(vec![s]),
        }
    }
    out
}

/// Folds a segment's spans (more than one if pictures were missing) into its row: the whole
/// segment's time, every second once.
fn segment_span(row: &SegmentRow, spans: Vec<MotionSpan>) -> MotionSpan {
    let mut seconds: Vec<MotionSecond> = spans.iter().flat_map(|s| s.seconds.clone()).collect();
    seconds.sort_by_key(|s| s.second);
    let mut merged: Vec<MotionSecond> = Vec::with_capacity(seconds.len());
    for s in seconds {
        match merged.last_mut() {
            Some(m) if m.second == s.second => {
                if s.score != 0 && m.score != 0 {
                    m.cells = m.cells.union(&s.cells);
                    m.score = m.score.max(s.score);
                } else if s.score > m.score {
                    *m = s;
                }
            }
            _ => merged.push(s),
        }
    }
    MotionSpan {
        start_90k: row.start_90k,
        end_90k: row.end_90k,
        frames: spans.iter().map(|s| s.frames).sum(),
        skipped: spans.iter().map(|s| s.skipped).sum(),
        seconds: merged,
    }
}

/// Reindexes `req`'s range: every sealed segment overlapping it, whole. `progress` is told
/// (segments done, segments in all) as it goes. Blocking.
pub fn reindex(
    store: &Arc<Store>,
    req: &ReindexRequest,
    decoders: &DecoderFactory,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReindexOutcome, MotionError> {
    // The main stream's: the index belongs to its segments (see `db/motion.rs`).
    let segments =
        store.sealed_stream_segments_overlapping(req.camera.main(), req.start.0, req.end.0)?;
    let total = segments.len() as u64;
    let mut out = ReindexOutcome::default();
    let mut note = Some(AuditNote::new(
        store.clock().realtime().0,
        req.actor.clone(),
        "motion_reindex",
        format!("camera:{}", req.camera),
        serde_json::json!({
            "start": req.start.to_rfc3339(),
            "end": req.end.to_rfc3339(),
            "segments": total,
            "sensitivity": req.settings.sensitivity,
        }),
    ));
    let mut batch: Vec<ReindexedSegment> = Vec::new();
    let mut done = 0u64;
    progress(0, total);
    for run in runs(segments) {
        let results = reindex_run(store, req, decoders, run)?;
        for (row, span, ok) in results {
            done += 1;
            if !ok {
                out.segments_failed += 1;
                continue;
            }
            out.segments += 1;
            out.frames_analysed += u64::from(span.frames);
            out.seconds_with_motion += span.seconds.iter().filter(|s| s.score > 0).count() as u64;
            batch.push(ReindexedSegment {
                segment: row.id,
                span,
            });
            if batch.len() >= BATCH_SEGMENTS {
                store.replace_motion(req.camera, &batch, note.take().as_ref())?;
                batch.clear();
            }
        }
        progress(done, total);
    }
    if !batch.is_empty() || note.is_some() {
        store.replace_motion(req.camera, &batch, note.take().as_ref())?;
    }
    Ok(out)
}

/// Analyses one run; returns each segment with its span and whether it could be decoded.
fn reindex_run(
    store: &Arc<Store>,
    req: &ReindexRequest,
    decoders: &DecoderFactory,
    run: Vec<SegmentRow>,
) -> Result<Vec<(SegmentRow, MotionSpan, bool)>, MotionError> {
    let mut out = Vec::with_capacity(run.len());
    let mut work: std::collections::VecDeque<SegmentWork> = run
        .into_iter()
        .map(|row| SegmentWork {
            row,
            acc: Accumulator::default(),
        })
        .collect();
    let mut sampler = Sampler::new(req.config.fps);
    let mut detector: Option<(u32, u32, Detector)> = None;
    let mut last_analysed: Option<i64> = None;
    let mut decoder: Option<Box<dyn Decoder>> = None;
    let mut key_only = false;
    let mut key_interval = 2 * TICKS_PER_SEC;
    let mut failed = false;
    let mut last_pts = i64::MIN;
    let name = format!("r{}", req.camera);
    let mut pending: Vec<SegmentRow> = work.iter().map(|w| w.row.clone()).collect();
    pending.reverse();

    // Pictures come out of the decoder after their frames went in: each is folded into the
    // segment whose time holds it; a segment is finished once a later one's picture arrives.
    let mut analyse = |wall: i64,
                       img: &nvr_media::LumaImage,
                       key_only: bool,
                       key_interval: i64,
                       work: &mut std::collections::VecDeque<SegmentWork>,
                       out: &mut Vec<(SegmentRow, MotionSpan, bool)>| {
        while work.len() > 1 && work.get(1).is_some_and(|w| wall >= w.row.start_90k) {
            if let Some(mut w) = work.pop_front() {
                let span = segment_span(&w.row, w.acc.take_all());
                let ok = span.frames > 0;
                out.push((w.row, span, ok));
            }
        }
        let Some(w) = work.front_mut() else { return };
        let d = match &mut detector {
            Some((dw, dh, d)) if *dw == img.width && *dh == img.height => d,
            _ => {
                let d = Detector::new(req.settings.detector_params(img.width, img.height));
                &mut detector.insert((img.width, img.height, d)).2
            }
        };
        let interval = if key_only {
            key_interval
        } else {
            sampler_period(req)
        };
        let dt = last_analysed.map_or(0, |t| detector_step_90k(wall - t, interval));
        let outcome = d.analyse(img, dt);
        last_analysed = Some(wall);
        w.acc.add(wall, interval, outcome);
    };

    while let Some(row) = pending.pop() {
        let blob = store.frame_index(row.id)?;
        let frames = segment_frames(store, &row, &blob)?;
        if failed {
            // The previous segment could not be decoded: start afresh at this one's first
            // (key) frame.
            decoder = None;
            failed = false;
        }
        if decoder.is_none() {
            key_only = key_frames_only(&req.config, &frames.params);
            match decoders(&frames.params, &name) {
                Ok(d) => decoder = Some(d),
                Err(e) => {
                    tracing::warn!(segment = %row.id, error = %e, "reindex: no decoder");
                    failed = true;
                }
            }
        }
        let mut last_key: Option<i64> = None;
        for (i, f) in frames.frames.iter().enumerate() {
            if failed {
                break;
            }
            if f.is_key {
                if let Some(k) = last_key.filter(|&k| f.wall_90k > k) {
                    key_interval = f.wall_90k - k;
                }
                last_key = Some(f.wall_90k);
            }
            if key_only && !f.is_key {
                continue;
            }
            let Some(d) = decoder.as_mut() else { break };
            let data = frames.read(i)?;
            let pts = f.wall_90k.max(last_pts.saturating_add(1));
            last_pts = pts;
            let deadline = std::time::Instant::now() + DECODE_STALL;
            loop {
                match d.push(data.clone(), pts, f.is_key) {
                    Ok(()) => break,
                    Err(e) if e.is_frame_dropped() && std::time::Instant::now() < deadline => {
                        // Lossless here: wait for room, taking the pictures ready.
                        match d.pull(Duration::from_millis(20), &mut |p| {
                            key_only || sampler.want(p)
                        }) {
                            Ok(Some((p, Some(img)))) => {
                                analyse(p, &img, key_only, key_interval, &mut work, &mut out);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(segment = %row.id, error = %e, "reindex: decoding failed");
                                failed = true;
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(segment = %row.id, error = %e, "reindex: decoding failed");
                        failed = true;
                        break;
                    }
                }
            }
            while !failed {
                match d.pull(Duration::ZERO, &mut |p| key_only || sampler.want(p)) {
                    Ok(Some((p, Some(img)))) => {
                        analyse(p, &img, key_only, key_interval, &mut work, &mut out);
                    }
                    Ok(Some((_, None))) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(segment = %row.id, error = %e, "reindex: decoding failed");
                        failed = true;
                    }
                }
            }
        }
    }
    if let Some(d) = decoder.as_mut().filter(|_| !failed)
        && d.finish().is_ok()
    {
        let deadline = std::time::Instant::now() + DECODE_STALL;
        while !d.is_drained() && std::time::Instant::now() < deadline {
            match d.pull(Duration::from_millis(50), &mut |p| {
                key_only || sampler.want(p)
            }) {
                Ok(Some((p, Some(img)))) => {
                    analyse(p, &img, key_only, key_interval, &mut work, &mut out);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    for mut w in work {
        let span = segment_span(&w.row, w.acc.take_all());
        let ok = span.frames > 0;
        out.push((w.row, span, ok));
    }
    Ok(out)
}

fn sampler_period(req: &ReindexRequest) -> i64 {
    Sampler::new(req.config.fps).period_90k()
}
