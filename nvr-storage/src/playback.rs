//! Reading recordings back, one stream of a camera at a time: the runs in a time range, and a
//! virtual MP4 of any range built from the index (sealed segments plus the readable part of the
//! one being written), decrypting only the chunks a byte range touches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use nvr_core::{CameraId, SegmentId, StreamKey, Time90k};

use crate::db::{SEGMENT_FLAG_RECOVERED, SegmentRow};
use crate::error::IndexContext;
use crate::error::{Result, StorageError};
use crate::frame_index::{self, FrameInfo};
use crate::mp4::{Mp4Request, ReadError, SampleEntry, SampleReader, SegmentPart, VirtualMp4};
use crate::segment::crypto::ChunkKind;
use crate::segment::file::{PlaintextReader, SegmentReader, sha256};
use crate::store::Store;

/// An uninterrupted stretch of recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: SegmentId,
    pub start: Time90k,
    pub end: Time90k,
    pub frames: u64,
    pub video_bytes: u64,
    pub segments: u64,
    /// The run is still being recorded (its last segment is open).
    pub recording: bool,
    pub rfc6381_codec: String,
    pub width: u16,
    pub height: u16,
}

/// One segment on the timeline (what [`runs`] adds up).
struct TimelineSegment {
    id: SegmentId,
    run_id: SegmentId,
    video_params_id: i64,
    start_90k: i64,
    end_90k: i64,
    frames: u64,
    video_bytes: u64,
}

/// One segment as playback sees it: sealed from the index, or the open one from memory.
struct PlaySegment {
    id: SegmentId,
    start_90k: i64,
    end_90k: i64,
    media_duration_90k: i64,
    video_params_id: i64,
    frames: Arc<[FrameInfo]>,
    /// Final chunk (index, kind); `None` for the open segment.
    final_chunk: Option<ChunkKind>,
    content_tag: [u8; 32],
}

fn open_segment_for(store: &Store, stream: StreamKey) -> Option<PlaySegment> {
    let view = store.open_segment(stream)?;
    let v = view.read().unwrap_or_else(|p| p.into_inner());
    let frames = v.readable_frames();
    if frames.is_empty() {
        return None;
    }
    let media: i64 = frames.iter().map(|f| i64::from(f.duration_90k)).sum();
    let mut tag_input = v.segment_id.0.to_be_bytes().to_vec();
    tag_input.extend_from_slice(&(frames.len() as u64).to_be_bytes());
    if frames.iter().any(|f| f.composition_offset_90k != 0) {
        // With B-frames the newest frames' decode times can still move while their count
        // stays (a later frame sorts in before them, see `frame_timing`): name them too.
        for f in frames {
            tag_input.extend_from_slice(&f.duration_90k.to_be_bytes());
            tag_input.extend_from_slice(&f.composition_offset_90k.to_be_bytes());
        }
    }
    Some(PlaySegment {
        id: v.segment_id,
        start_90k: v.start_90k,
        end_90k: v.start_90k + media,
        media_duration_90k: media,
        video_params_id: v.video_params_id,
        frames: frames.into(),
        final_chunk: None,
        content_tag: sha256(&tag_input),
    })
}

fn sealed_segment(row: &SegmentRow, frame_index: &[u8]) -> Result<PlaySegment> {
    let frames: Arc<[FrameInfo]> = frame_index::decode(frame_index)
        .map_err(|e| StorageError::Corrupt {
            camera: row.camera_id,
            segment: row.id,
            detail: format!("frame index: {e}"),
        })?
        .into();
    let mut tag_input = row.id.0.to_be_bytes().to_vec();
    tag_input.extend_from_slice(&row.sha256.unwrap_or([0; 32]));
    Ok(PlaySegment {
        id: row.id,
        start_90k: row.start_90k,
        end_90k: row.end_90k,
        media_duration_90k: row.media_duration_90k,
        video_params_id: row.video_params_id,
        frames,
        final_chunk: Some(if row.flags & SEGMENT_FLAG_RECOVERED != 0 {
            ChunkKind::RecoveredFinal
        } else {
            ChunkKind::Final
        }),
        content_tag: sha256(&tag_input),
    })
}

/// Segments of `stream` overlapping `[start, end)`, oldest first, with their frames, including
/// the open one. One query for all sealed segments, frame indexes included.
fn segments_in(
    store: &Store,
    stream: StreamKey,
    start: Time90k,
    end: Time90k,
) -> Result<Vec<PlaySegment>> {
    let rows = store
        .db()
        .sealed_segments_with_index(stream, start.0, end.0)
        .context(|| format!("reading the segments of {stream} to play (segments)"))?;
    let mut out = Vec::with_capacity(rows.len() + 1);
    for (row, index) in &rows {
        out.push(sealed_segment(row, index)?);
    }
    if let Some(open) = open_segment_for(store, stream)
        && open.start_90k < end.0
        && open.end_90k > start.0
        && !out.iter().any(|s| s.id == open.id)
    {
        out.push(open);
    }
    Ok(out)
}

/// The runs of `stream` that overlap `[start, end)`, each reported whole within the range's
/// segments. Frames and bytes count the overlapping segments.
pub fn runs(
    store: &Store,
    stream: StreamKey,
    start: Time90k,
    end: Time90k,
) -> Result<Vec<RunSummary>> {
    // One query over the columns the timeline needs (none after the frame index blob), plus
    // the open segment from memory.
    let rows = store
        .db()
        .sealed_segment_summaries(stream, start.0, end.0)
        .context(|| format!("listing the recordings of {stream} (segments)"))?;
    let open = store.open_segment(stream).map(|view| {
        let v = view.read().unwrap_or_else(|p| p.into_inner());
        let frames = v.readable_frames();
        let media: i64 = frames.iter().map(|f| i64::from(f.duration_90k)).sum();
        TimelineSegment {
            id: v.segment_id,
            run_id: v.run_id,
            video_params_id: v.video_params_id,
            start_90k: v.start_90k,
            end_90k: v.start_90k + media,
            frames: frames.len() as u64,
            video_bytes: frames.iter().map(|f| u64::from(f.size_bytes)).sum(),
        }
    });
    let open_id = open.as_ref().map(|o| o.id);
    let mut segs: Vec<TimelineSegment> = rows
        .iter()
        .map(|r| TimelineSegment {
            id: r.id,
            run_id: r.run_id,
            video_params_id: r.video_params_id,
            start_90k: r.start_90k,
            end_90k: r.end_90k,
            frames: r.frames.max(0) as u64,
            video_bytes: r.video_bytes.max(0) as u64,
        })
        .collect();
    if let Some(o) = open
        && o.frames > 0
        && o.start_90k < end.0
        && o.end_90k > start.0
        && !segs.iter().any(|s| s.id == o.id)
    {
        segs.push(o);
    }
    let mut out: Vec<RunSummary> = Vec::new();
    let mut params_cache: HashMap<i64, (String, u16, u16)> = HashMap::new();
    for s in segs {
        let recording = Some(s.id) == open_id;
        match out.last_mut() {
            Some(r) if r.run_id == s.run_id => {
                r.end = r.end.max(Time90k(s.end_90k));
                r.frames += s.frames;
                r.video_bytes += s.video_bytes;
                r.segments += 1;
                r.recording |= recording;
            }
            _ => {
                let (codec, w, h) = match params_cache.get(&s.video_params_id) {
                    Some(p) => p.clone(),
                    None => {
                        let p = store.db().video_params(s.video_params_id).context(|| {
                            format!(
                                "reading video parameters {} (video_params)",
                                s.video_params_id
                            )
                        })?;
                        let v = (p.rfc6381_codec, p.width, p.height);
                        params_cache.insert(s.video_params_id, v.clone());
                        v
                    }
                };
                out.push(RunSummary {
                    run_id: s.run_id,
                    start: Time90k(s.start_90k),
                    end: Time90k(s.end_90k),
                    frames: s.frames,
                    video_bytes: s.video_bytes,
                    segments: 1,
                    recording,
                    rfc6381_codec: codec,
                    width: w,
                    height: h,
                });
            }
        }
    }
    Ok(out)
}

/// A playable view of a time range.
pub struct View {
    pub mp4: VirtualMp4,
    pub reader: Arc<dyn SampleReader>,
    /// Wall time of the first presented frame and the end of the last.
    pub start: Time90k,
    pub end: Time90k,
    /// The segments in the MP4, in order, and which of their frames it holds.
    pub segments: Vec<ViewedSegment>,
    /// Frames presented (inside the requested range, after the edit list).
    pub frames_presented: u64,
    /// Wall time of the first frame in the MP4 (the key frame at or before `start`).
    pub first_frame_wall: Time90k,
    /// Media time the edit list skips before presentation starts.
    pub trim_90k: u64,
    /// What `mp4` was built from, for [`View::with_extras`].
    request: Mp4Request,
}

/// One segment's part of a view.
#[derive(Clone, Debug)]
pub struct ViewedSegment {
    pub id: SegmentId,
    pub video_params_id: i64,
    pub frames: Arc<[FrameInfo]>,
    pub frame_range: std::ops::Range<usize>,
    /// The segment's wall-clock span and media duration (all its frames): a media offset `m`
    /// within the segment was recorded at `start + m * (end - start) / media_duration`.
    pub wall_start_90k: i64,
    pub wall_end_90k: i64,
    pub media_duration_90k: i64,
}

/// A stretch of a view's presentation timeline (the MP4 as players show it, after the edit
/// list; gaps skipped) and the wall-clock times it shows, linear in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallSpan {
    pub presentation_start_90k: u64,
    pub presentation_end_90k: u64,
    pub wall_start_90k: i64,
    pub wall_end_90k: i64,
}

impl View {
    /// The same view as an export's MP4: with its time track and ONVIF metadata.
    pub fn with_extras(mut self, extras: crate::mp4::extras::Extras) -> Result<View> {
        let mut req = self.request.clone();
        req.extras = Some(Arc::new(extras));
        self.mp4 = VirtualMp4::build(req.clone())
            .map_err(|e| StorageError::Format(format!("building the exported MP4: {e}")))?;
        self.request = req;
        Ok(self)
    }

    /// Where each segment's frames sit on the presentation timeline and when they were
    /// recorded: one span per segment with presented frames, in order. The first span starts
    /// at presentation 0 at exactly [`View::start`].
    pub fn wall_spans(&self) -> Vec<WallSpan> {
        let trim = self.trim_90k;
        let duration = self.mp4.duration_90k();
        let mut spans = Vec::with_capacity(self.segments.len());
        let mut media = 0u64; // media time of the part's first frame
        for s in &self.segments {
            let before: i64 = s.frames[..s.frame_range.start]
                .iter()
                .map(|f| i64::from(f.duration_90k))
                .sum();
            let len: u64 = s.frames[s.frame_range.clone()]
                .iter()
                .map(|f| u64::from(f.duration_90k))
                .sum();
            let wall_at = |m: u64| {
                let within = before + (m - media) as i64;
                let wall = i128::from(s.wall_end_90k - s.wall_start_90k);
                if s.media_duration_90k <= 0 {
                    s.wall_start_90k
                } else {
                    s.wall_start_90k
                        + (i128::from(within) * wall / i128::from(s.media_duration_90k)) as i64
                }
            };
            let from = media.max(trim);
            let to = (media + len).min(trim + duration);
            if to > from {
                spans.push(WallSpan {
                    presentation_start_90k: from - trim,
                    presentation_end_90k: to - trim,
                    wall_start_90k: wall_at(from),
                    wall_end_90k: wall_at(to),
                });
            }
            media += len;
        }
        if let Some(first) = spans.first_mut() {
            first.wall_start_90k = self.start.0;
        }
        spans
    }
}

/// How a view is cut.
#[derive(Clone, Copy, Debug, Default)]
pub struct ViewOptions {
    /// Include every frame of each segment that overlaps the range (an edit list still presents
    /// only the range): exports do this so each segment's ingest-time hash can be re-derived.
    pub whole_segments: bool,
    /// Leave out the segment being written (it has no hash yet).
    pub sealed_only: bool,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("len", &self.mp4.len())
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Wall time of the start of frame `i` of `s` (media offsets scaled to the wall span).
fn frame_wall_start(s: &PlaySegment, media_offset_90k: i64) -> i64 {
    if s.media_duration_90k <= 0 {
        return s.start_90k;
    }
    let wall = i128::from(s.end_90k - s.start_90k);
    s.start_90k + (i128::from(media_offset_90k) * wall / i128::from(s.media_duration_90k)) as i64
}

/// The media offset within `s` that maps to wall time `wall_90k` (inverse of
/// [`frame_wall_start`]).
fn wall_to_media(s: &PlaySegment, wall_90k: i64) -> i64 {
    let wall = s.end_90k - s.start_90k;
    if wall <= 0 {
        return 0;
    }
    (i128::from(wall_90k - s.start_90k) * i128::from(s.media_duration_90k) / i128::from(wall))
        as i64
}

/// Builds an MP4 of `stream` over `[start, end)`. It starts at the key frame at or before
/// `start`, with an edit list that hides the frames before `start`; gaps between runs are
/// skipped (the MP4 is continuous; the recordings API tells where the gaps are).
pub fn view(store: &Arc<Store>, stream: StreamKey, start: Time90k, end: Time90k) -> Result<View> {
    view_with(store, stream, start, end, ViewOptions::default())
}

/// [`view`] with options.
pub fn view_with(
    store: &Arc<Store>,
    stream: StreamKey,
    start: Time90k,
    end: Time90k,
    opts: ViewOptions,
) -> Result<View> {
    let camera = stream.camera;
    let mut segs = segments_in(store, stream, start, end)?;
    if opts.sealed_only {
        segs.retain(|s| s.final_chunk.is_some());
    }
    let mut viewed = Vec::new();
    let mut entries: Vec<SampleEntry> = Vec::new();
    let mut entry_of: HashMap<i64, usize> = HashMap::new();
    let mut parts = Vec::new();
    let mut reader_segs = HashMap::new();
    let mut trim_90k = 0u64;
    let mut first_wall = None;
    let mut first_frame_wall = start;
    let mut last_wall_end = start.0;
    let mut presented_90k: i64 = 0;
    for s in &segs {
        // Per-frame media offsets within this segment.
        let mut offsets = Vec::with_capacity(s.frames.len());
        let mut acc = 0i64;
        for f in s.frames.iter() {
            offsets.push(acc);
            acc += i64::from(f.duration_90k);
        }
        // Offsets are decode times, which are presentation times in sorted order (see
        // `frame_timing`); a frame is presented at its offset plus its composition offset.
        let wall_start_of = |i: usize| frame_wall_start(s, offsets[i]);
        let wall_end_of =
            |i: usize| frame_wall_start(s, offsets[i] + i64::from(s.frames[i].duration_90k));
        let presented_wall = |i: usize| {
            frame_wall_start(
                s,
                offsets[i] + i64::from(s.frames[i].composition_offset_90k),
            )
        };
        // First frame ending after `start`, then back to its key frame.
        let lo = (0..s.frames.len())
            .find(|&i| wall_end_of(i) > start.0)
            .unwrap_or(s.frames.len());
        // Up to the last frame presented before `end` (with B-frames, a frame decoded after
        // ones presented later).
        let hi = (0..s.frames.len())
            .rposition(|i| presented_wall(i) < end.0)
            .map_or(0, |i| i + 1);
        if lo >= hi {
            continue;
        }
        let (lo, hi) = if opts.whole_segments {
            (0, s.frames.len())
        } else {
            (lo, hi)
        };
        let mut lo = lo;
        if parts.is_empty() {
            while lo > 0 && !s.frames[lo].is_key {
                lo -= 1;
            }
            if !s.frames[lo].is_key {
                continue;
            }
            let key_wall = wall_start_of(lo);
            if start.0 > key_wall {
                // The trim is in media time: map `start` onto the segment's media timeline
                // (wall and media spans differ by up to 500 ppm) and measure from the key frame.
                let media_at_start = wall_to_media(s, start.0);
                trim_90k = u64::try_from(media_at_start - offsets[lo]).unwrap_or(0);
            }
            first_wall = Some(key_wall.max(start.0));
            first_frame_wall = Time90k(key_wall);
        }
        let seg_presented_start = wall_start_of(lo).max(start.0);
        let seg_presented_end = wall_end_of(hi - 1).min(end.0);
        presented_90k += (seg_presented_end - seg_presented_start).max(0);
        last_wall_end = seg_presented_end;
        let idx = match entry_of.get(&s.video_params_id) {
            Some(&i) => i,
            None => {
                let p = store.db().video_params(s.video_params_id).context(|| {
                    format!(
                        "reading video parameters {} (video_params)",
                        s.video_params_id
                    )
                })?;
                entries.push(SampleEntry {
                    box_bytes: p.sample_entry.clone(),
                    width: p.width,
                    height: p.height,
                });
                entry_of.insert(s.video_params_id, entries.len() - 1);
                entries.len() - 1
            }
        };
        parts.push(SegmentPart {
            segment_id: s.id.0 as u64,
            sample_entry_idx: idx,
            frames: s.frames.clone(),
            frame_range: lo..hi,
            content_tag: s.content_tag,
        });
        reader_segs.insert(s.id.0 as u64, (camera, s.final_chunk));
        viewed.push(ViewedSegment {
            id: s.id,
            video_params_id: s.video_params_id,
            frames: s.frames.clone(),
            frame_range: lo..hi,
            wall_start_90k: s.start_90k,
            wall_end_90k: s.end_90k,
            media_duration_90k: s.media_duration_90k,
        });
    }
    let Some(first_wall) = first_wall else {
        return Err(StorageError::NotFound(format!(
            "recordings of camera {stream} between {start} and {end}"
        )));
    };
    let request = Mp4Request {
        entries,
        parts,
        start_trim_90k: trim_90k,
        duration_90k: Some(presented_90k.max(1) as u64),
        creation_time_unix_secs: Time90k(first_wall).unix_secs(),
        extras: None,
    };
    let mp4 = VirtualMp4::build(request.clone())
        .map_err(|e| StorageError::Format(format!("building MP4: {e}")))?;
    let frames_presented = presented_frames(&viewed, trim_90k, mp4.duration_90k());
    Ok(View {
        mp4,
        reader: Arc::new(StoreSampleReader {
            store: store.clone(),
            segments: reader_segs,
            readers: Mutex::new(HashMap::new()),
        }),
        start: Time90k(first_wall),
        end: Time90k(last_wall_end),
        frames_presented,
        first_frame_wall,
        trim_90k,
        request,
        segments: viewed,
    })
}

/// Frames a player presents: those whose presentation time (decode time plus composition
/// offset), on the MP4's media timeline, lies in `[trim, trim + duration)` (how ffmpeg applies
/// an edit list).
fn presented_frames(segments: &[ViewedSegment], trim_90k: u64, duration_90k: u64) -> u64 {
    let mut t = 0i64;
    let mut n = 0;
    let (from, to) = (trim_90k as i64, (trim_90k + duration_90k) as i64);
    for s in segments {
        for f in &s.frames[s.frame_range.clone()] {
            let presented = t + i64::from(f.composition_offset_90k);
            if presented >= from && presented < to {
                n += 1;
            }
            t += i64::from(f.duration_90k);
        }
    }
    n
}

/// Reads frame bytes for an MP4 from segment files, opening each file once.
struct StoreSampleReader {
    store: Arc<Store>,
    segments: HashMap<u64, (CameraId, Option<ChunkKind>)>,
    readers: Mutex<HashMap<u64, Arc<PlaintextReader>>>,
}

impl StoreSampleReader {
    fn reader(&self, segment_id: u64) -> Result<Arc<PlaintextReader>> {
        if let Some(r) = self
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&segment_id)
        {
            return Ok(r.clone());
        }
        let &(camera, final_kind) = self
            .segments
            .get(&segment_id)
            .ok_or_else(|| StorageError::NotFound(format!("segment {segment_id} in this view")))?;
        let id = SegmentId(segment_id as i64);
        let path = self.store.segment_path(camera, id);
        let r = SegmentReader::open(&path, self.store.keyring(), camera.0, id.0)?;
        let final_chunk = final_kind.map(|k| (r.chunks_on_disk().saturating_sub(1), k));
        let pr = Arc::new(PlaintextReader::new(r, final_chunk));
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(segment_id, pr.clone());
        Ok(pr)
    }
}

impl SampleReader for StoreSampleReader {
    fn read(&self, segment_id: u64, plaintext_offset: u64, len: usize) -> Result<Bytes, ReadError> {
        let r = self.reader(segment_id).map_err(Box::new)?;
        r.read(plaintext_offset, len)
            .map_err(|e| Box::new(e) as ReadError)
    }
}

/// A key frame read back from storage, for snapshots.
#[derive(Clone, Debug)]
pub struct StoredKeyFrame {
    pub params: nvr_core::VideoParams,
    pub data: Bytes,
    /// Wall time the frame was recorded at.
    pub time: Time90k,
}

/// The key frame of `stream` at or before `at`, within the segment recorded at `at` (segments
/// start with a key frame, so there always is one).
pub fn key_frame_at(store: &Arc<Store>, stream: StreamKey, at: Time90k) -> Result<StoredKeyFrame> {
    let camera = stream.camera;
    let segs = segments_in(store, stream, at, Time90k(at.0 + 1))?;
    let not_found = || StorageError::NotFound(format!("a recording of camera {stream} at {at}"));
    let s = segs
        .iter()
        .rev()
        .find(|s| s.start_90k <= at.0)
        .ok_or_else(not_found)?;
    let mut media = 0i64;
    let mut chosen = None;
    for f in s.frames.iter() {
        if frame_wall_start(s, media) > at.0 {
            break;
        }
        if f.is_key {
            chosen = Some((*f, media));
        }
        media += i64::from(f.duration_90k);
    }
    let (f, media) = chosen.ok_or_else(not_found)?;
    let reader = StoreSampleReader {
        store: store.clone(),
        segments: [(s.id.0 as u64, (camera, s.final_chunk))]
            .into_iter()
            .collect(),
        readers: Mutex::new(HashMap::new()),
    };
    let data = reader
        .reader(s.id.0 as u64)?
        .read(f.data_offset, f.size_bytes as usize)?;
    Ok(StoredKeyFrame {
        params: store.db().video_params(s.video_params_id).context(|| {
            format!(
                "reading video parameters {} (video_params)",
                s.video_params_id
            )
        })?,
        data,
        time: Time90k(frame_wall_start(s, media)),
    })
}

/// A frame of a stored segment, for analysis: where it lies in wall time and in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredFrameInfo {
    /// Wall time of the frame's start, as playback places it.
    pub wall_90k: i64,
    pub is_key: bool,
    data_offset: u64,
    size_bytes: u32,
}

/// The frames of one sealed segment read back in order (`nvr motion reindex`): their wall
/// times from the index, their bytes from the file on request.
pub struct SegmentFrames {
    pub params: nvr_core::VideoParams,
    pub frames: Vec<StoredFrameInfo>,
    segment: SegmentId,
    reader: StoreSampleReader,
}

impl std::fmt::Debug for SegmentFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentFrames")
            .field("segment", &self.segment)
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl SegmentFrames {
    /// The bytes of frame `i` (an access unit as recorded).
    pub fn read(&self, i: usize) -> Result<Bytes> {
        let f = self.frames.get(i).ok_or_else(|| {
            StorageError::NotFound(format!("frame {i} of segment {}", self.segment))
        })?;
        self.reader
            .reader(self.segment.0 as u64)?
            .read(f.data_offset, f.size_bytes as usize)
    }
}

/// The frames of the sealed segment `row` (with its frame index blob), for reading back.
pub fn segment_frames(
    store: &Arc<Store>,
    row: &SegmentRow,
    frame_index: &[u8],
) -> Result<SegmentFrames> {
    let s = sealed_segment(row, frame_index)?;
    let mut media = 0i64;
    let frames = s
        .frames
        .iter()
        .map(|f| {
            let info = StoredFrameInfo {
                wall_90k: frame_wall_start(&s, media),
                is_key: f.is_key,
                data_offset: f.data_offset,
                size_bytes: f.size_bytes,
            };
            media += i64::from(f.duration_90k);
            info
        })
        .collect();
    Ok(SegmentFrames {
        params: store.db().video_params(s.video_params_id).context(|| {
            format!(
                "reading video parameters {} (video_params)",
                s.video_params_id
            )
        })?,
        frames,
        segment: s.id,
        reader: StoreSampleReader {
            store: store.clone(),
            segments: [(s.id.0 as u64, (row.camera_id, s.final_chunk))]
                .into_iter()
                .collect(),
            readers: Mutex::new(HashMap::new()),
        },
    })
}
