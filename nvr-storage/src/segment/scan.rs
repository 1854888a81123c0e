//! Authenticating a whole segment file and rebuilding its frame list from the records, used by
//! crash recovery (the file alone is enough to re-index it) and by `nvr check`.

use ring::digest;

use super::crypto::ChunkKind;
use super::file::SegmentReader;
use super::format::*;
use crate::frame_timing::SegmentTiming;
use nvr_core::VideoParams;

/// One frame record found in the plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedFrame {
    pub media_offset_90k: i64,
    pub size_bytes: u32,
    pub is_key: bool,
    /// Plaintext offset of the frame's payload.
    pub payload_offset: u64,
}

/// The result of scanning a file.
#[derive(Debug)]
pub struct Scan {
    pub params: Option<VideoParams>,
    pub frames: Vec<ScannedFrame>,
    /// The frames' presentation times, which give their decode timing.
    pub timing: SegmentTiming,
    /// Plaintext offset just past the last whole record.
    pub records_end: u64,
    /// SHA-256 of `plaintext[0..records_end]`.
    pub sha256: [u8; 32],
    /// Inner chunks that authenticated, from the start of the file.
    pub inner_chunks: u64,
    /// The trailer and the kind of final chunk that carried it, when the file has one.
    pub trailer: Option<(Trailer, ChunkKind)>,
    /// Why the scan stopped before the end of the file, if it did.
    pub problem: Option<String>,
    /// A record was cut off by the end of the authenticated data (normal after a crash).
    pub incomplete_record: bool,
}

/// Incremental record parser over plaintext delivered in pieces of any size.
struct RecordParser {
    pos: u64,
    hdr: [u8; RECORD_HEADER_LEN],
    hdr_have: usize,
    /// The record whose payload is being consumed, and how much of it remains.
    current: Option<(RecordHeader, u64)>,
    params_buf: Vec<u8>,
    sha: digest::Context,
    /// Hash state and position at the end of the last whole record.
    boundary_sha: digest::Context,
    boundary: u64,
    frames: Vec<ScannedFrame>,
    timing: SegmentTiming,
    params: Option<VideoParams>,
    error: Option<String>,
}

/// Params payloads are a few hundred bytes; anything above this is garbage, not parameters.
const MAX_PARAMS_PAYLOAD: u32 = 1 << 20;

impl RecordParser {
    fn new() -> Self {
        let sha = digest::Context::new(&digest::SHA256);
        RecordParser {
            pos: 0,
            hdr: [0; RECORD_HEADER_LEN],
            hdr_have: 0,
            current: None,
            params_buf: Vec::new(),
            boundary_sha: sha.clone(),
            sha,
            boundary: 0,
            frames: Vec::new(),
            timing: SegmentTiming::new(),
            params: None,
            error: None,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.error.is_none() {
            match self.current {
                None => {
                    let n = (RECORD_HEADER_LEN - self.hdr_have).min(data.len());
                    self.hdr[self.hdr_have..self.hdr_have + n].copy_from_slice(&data[..n]);
                    self.sha.update(&data[..n]);
                    self.hdr_have += n;
                    self.pos += n as u64;
                    data = &data[n..];
                    if self.hdr_have == RECORD_HEADER_LEN {
                        self.hdr_have = 0;
                        self.start_record();
                    }
                }
                Some((h, remaining)) => {
                    let n = (remaining.min(data.len() as u64)) as usize;
                    if h.kind == RECORD_PARAMS {
                        self.params_buf.extend_from_slice(&data[..n]);
                    }
                    self.sha.update(&data[..n]);
                    self.pos += n as u64;
                    data = &data[n..];
                    let left = remaining - n as u64;
                    if left == 0 {
                        self.finish_record(h);
                    } else {
                        self.current = Some((h, left));
                    }
                }
            }
        }
    }

    fn start_record(&mut self) {
        let h = match RecordHeader::decode(&self.hdr) {
            Ok(h) => h,
            Err(e) => {
                self.error = Some(format!("record at plaintext offset {}: {e}", self.boundary));
                return;
            }
        };
        let first = self.params.is_none() && self.frames.is_empty();
        if first != (h.kind == RECORD_PARAMS) {
            self.error = Some(format!(
                "record at plaintext offset {}: the first record must be the video parameters, \
                 and only the first",
                self.boundary
            ));
            return;
        }
        if h.kind == RECORD_PARAMS && h.size_bytes > MAX_PARAMS_PAYLOAD {
            self.error = Some(format!("parameters record of {} bytes", h.size_bytes));
            return;
        }
        if h.size_bytes == 0 {
            self.finish_record(h);
        } else {
            self.current = Some((h, u64::from(h.size_bytes)));
        }
    }

    fn finish_record(&mut self, h: RecordHeader) {
        self.current = None;
        let payload_offset = self.boundary + RECORD_HEADER_LEN as u64;
        if h.kind == RECORD_PARAMS {
            match decode_params(&self.params_buf) {
                Ok(p) => self.params = Some(p),
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
            self.params_buf = Vec::new();
        } else {
            if self.frames.is_empty() && (!h.is_key() || h.media_offset_90k != 0) {
                self.error = Some("the first frame is not a key frame at media time 0".into());
                return;
            }
            // Media times are presentation times: B-frames go back a little, never further
            // than the reorder window, and no two frames share one.
            if let Err(e) = self.timing.push(h.media_offset_90k) {
                self.error = Some(format!("frame at plaintext offset {}: {e}", self.boundary));
                return;
            }
            self.frames.push(ScannedFrame {
                media_offset_90k: h.media_offset_90k,
                size_bytes: h.size_bytes,
                is_key: h.is_key(),
                payload_offset,
            });
        }
        self.boundary = self.pos;
        self.boundary_sha = self.sha.clone();
    }
}

/// Reads every chunk of the file, authenticating each, and parses the records.
///
/// The last chunk on disk is first tried as a final chunk; if it is one, its trailer bounds the
/// records. Otherwise (a segment still being written, or cut short by a crash) every chunk must
/// be a whole inner chunk and the scan stops at the first one that is not.
pub fn scan(reader: &SegmentReader) -> Scan {
    let n_on_disk = reader.chunks_on_disk();
    let mut trailer = None;
    let mut final_plain = None;
    if n_on_disk > 0
        && let Ok((plain, kind)) = reader.read_final_chunk(n_on_disk - 1)
        && plain.len() >= TRAILER_LEN
        && let Ok(t) = Trailer::decode(&plain[plain.len() - TRAILER_LEN..])
    {
        trailer = Some((t, kind));
        final_plain = Some(plain);
    }
    let limit = trailer.as_ref().map(|(t, _)| t.records_end);
    let n_inner = if trailer.is_some() {
        n_on_disk - 1
    } else {
        n_on_disk
    };
    let mut parser = RecordParser::new();
    let mut problem = None;
    let mut inner_chunks = 0;
    let feed_limited = |parser: &mut RecordParser, plain: &[u8]| {
        let take = match limit {
            Some(l) => (l.saturating_sub(parser.pos) as usize).min(plain.len()),
            None => plain.len(),
        };
        parser.feed(&plain[..take]);
    };
    for i in 0..n_inner {
        let plain = match reader.read_chunk(i, ChunkKind::Inner) {
            Ok(p) => p,
            Err(e) => {
                // A partial last chunk is normal for an open or crashed segment.
                let partial_tail = trailer.is_none()
                    && i + 1 == n_on_disk
                    && reader.chunk_len_on_disk(i) < CHUNK_CIPHERTEXT_LEN;
                if !partial_tail {
                    problem = Some(e.to_string());
                }
                break;
            }
        };
        inner_chunks += 1;
        feed_limited(&mut parser, &plain);
    }
    if problem.is_none()
        && let Some(plain) = &final_plain
    {
        feed_limited(&mut parser, &plain[..plain.len() - TRAILER_LEN]);
    }
    if problem.is_none()
        && let Some(e) = &parser.error
    {
        problem = Some(e.clone());
    }
    let incomplete_record = parser.current.is_some() || parser.hdr_have > 0;
    let sha256 = {
        let d = parser.boundary_sha.clone().finish();
        let mut a = [0u8; 32];
        a.copy_from_slice(d.as_ref());
        a
    };
    Scan {
        params: parser.params,
        frames: parser.frames,
        timing: parser.timing,
        records_end: parser.boundary,
        sha256,
        inner_chunks,
        trailer,
        problem,
        incomplete_record,
    }
}

impl Scan {
    /// Checks that a file with a trailer is internally consistent; returns the first problem.
    pub fn sealed_problem(&self) -> Option<String> {
        if let Some(p) = &self.problem {
            return Some(p.clone());
        }
        let Some((t, _)) = &self.trailer else {
            return Some("no final chunk: the file was truncated or never closed".into());
        };
        if self.records_end != t.records_end {
            return Some(format!(
                "records end at plaintext offset {} but the trailer says {}",
                self.records_end, t.records_end
            ));
        }
        if self.frames.len() as u64 != t.frame_count {
            return Some(format!(
                "{} frames in the file but the trailer says {}",
                self.frames.len(),
                t.frame_count
            ));
        }
        if self.sha256 != t.sha256 {
            return Some("plaintext SHA-256 differs from the trailer".into());
        }
        if self.params.is_none() {
            return Some("no video parameters record".into());
        }
        None
    }
}
