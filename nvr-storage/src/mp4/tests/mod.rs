//! Tests of the virtual MP4 builder, and the helpers they share: fake segments, in-memory
//! readers, and a minimal ISO BMFF box parser used to inspect what was built.
//!
//! - `media.rs`: real H.264/H.265 made by ffmpeg, checked with ffprobe/ffmpeg.
//! - `bframes.rs`: the same with B-frames: `ctts`, the edit list's shift, `trun` offsets.
//! - `ranges.rs`: byte ranges, read coalescing, reader errors.
//! - `requests.rs`: validation, ETag, a one-hour request, 64-bit offsets.
//! - `extras.rs`: an export's time track and ONVIF metadata, seen by ffprobe, ffmpeg and a
//!   box dump.

#![allow(clippy::unwrap_used)]

mod bframes;
mod extras;
mod media;
mod ranges;
mod requests;

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes};

use super::{
    FrameInfo, Mp4Error, Mp4Request, ReadError, SampleEntry, SampleReader, SegmentPart, VirtualMp4,
};

/// Length of the dummy record header written before every frame of a fake segment.
pub const RECORD_HEADER_LEN: usize = 16;

/// Byte used for the dummy record headers; chosen so header bytes leaking into the output are
/// easy to spot (and distinct from the pattern of synthetic frames).
pub const RECORD_HEADER_BYTE: u8 = 0xEE;

/// One frame to put into a fake segment.
#[derive(Clone, Debug)]
pub struct Sample {
    pub data: Bytes,
    pub is_key: bool,
    pub duration_90k: u32,
    /// Presentation minus decode time (B-frames); 0 for frames presented in decode order.
    pub composition_offset_90k: i32,
}

/// A fake segment: plaintext with a 16-byte header before each frame, and its index.
#[derive(Clone, Debug)]
pub struct FakeSegment {
    pub id: u64,
    pub plaintext: Bytes,
    pub frames: Arc<[FrameInfo]>,
}

impl FakeSegment {
    pub fn new(id: u64, samples: &[Sample]) -> Self {
        let mut plaintext = Vec::new();
        let mut frames = Vec::with_capacity(samples.len());
        for s in samples {
            plaintext.put_bytes(RECORD_HEADER_BYTE, RECORD_HEADER_LEN);
            frames.push(FrameInfo {
                duration_90k: s.duration_90k,
                size_bytes: u32::try_from(s.data.len()).unwrap(),
                is_key: s.is_key,
                data_offset: plaintext.len() as u64,
                composition_offset_90k: s.composition_offset_90k,
            });
            plaintext.extend_from_slice(&s.data);
        }
        FakeSegment {
            id,
            plaintext: Bytes::from(plaintext),
            frames: frames.into(),
        }
    }

    /// A content tag derived from the segment's bytes and index.
    pub fn content_tag(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.id.to_be_bytes());
        ctx.update(&self.plaintext);
        for f in self.frames.iter() {
            ctx.update(&f.data_offset.to_be_bytes());
            ctx.update(&f.size_bytes.to_be_bytes());
            ctx.update(&f.duration_90k.to_be_bytes());
            ctx.update(&[u8::from(f.is_key)]);
        }
        ctx.finish().as_ref().try_into().unwrap()
    }

    pub fn part(&self, sample_entry_idx: usize, frame_range: Range<usize>) -> SegmentPart {
        SegmentPart {
            segment_id: self.id,
            sample_entry_idx,
            frames: Arc::clone(&self.frames),
            frame_range,
            content_tag: self.content_tag(),
        }
    }

    pub fn whole(&self, sample_entry_idx: usize) -> SegmentPart {
        self.part(sample_entry_idx, 0..self.frames.len())
    }

    /// The payload of frame `i`, as the index describes it.
    pub fn frame_bytes(&self, i: usize) -> &[u8] {
        let f = self.frames[i];
        let start = usize::try_from(f.data_offset).unwrap();
        &self.plaintext[start..start + usize::try_from(f.size_bytes).unwrap()]
    }
}

/// The mdat payload the request should produce, computed straight from the segments.
pub fn expected_mdat(segments: &[FakeSegment], parts: &[SegmentPart]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let seg = segments.iter().find(|s| s.id == p.segment_id).unwrap();
        for i in p.frame_range.clone() {
            out.extend_from_slice(seg.frame_bytes(i));
        }
    }
    out
}

/// A [`SampleReader`] over in-memory segments that records every call.
#[derive(Debug, Default)]
pub struct MemReader {
    segments: HashMap<u64, Bytes>,
    /// (segment_id, plaintext_offset, len) of every read.
    pub calls: Mutex<Vec<(u64, u64, usize)>>,
}

impl MemReader {
    pub fn new(segments: &[FakeSegment]) -> Arc<Self> {
        Arc::new(MemReader {
            segments: segments
                .iter()
                .map(|s| (s.id, s.plaintext.clone()))
                .collect(),
            calls: Mutex::default(),
        })
    }

    pub fn take_calls(&self) -> Vec<(u64, u64, usize)> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl SampleReader for MemReader {
    fn read(&self, segment_id: u64, offset: u64, len: usize) -> Result<Bytes, ReadError> {
        self.calls.lock().unwrap().push((segment_id, offset, len));
        let seg = self
            .segments
            .get(&segment_id)
            .ok_or_else(|| format!("no segment {segment_id}"))?;
        let start = usize::try_from(offset)?;
        let end = start.checked_add(len).ok_or("overflow")?;
        if end > seg.len() {
            return Err(format!("read {start}..{end} beyond segment of {}", seg.len()).into());
        }
        Ok(seg.slice(start..end))
    }
}

/// A reader whose segments are infinite deterministic byte patterns (no storage), for files
/// too large to hold in memory.
#[derive(Debug)]
pub struct PatternReader;

impl PatternReader {
    pub fn byte(segment_id: u64, offset: u64) -> u8 {
        // Any cheap mixing function that differs between segments and neighbouring offsets.
        ((offset.wrapping_mul(0x9E37_79B9) >> 11) ^ offset ^ segment_id.wrapping_mul(151)) as u8
    }
}

impl SampleReader for PatternReader {
    fn read(&self, segment_id: u64, offset: u64, len: usize) -> Result<Bytes, ReadError> {
        Ok((offset..offset + len as u64)
            .map(|o| PatternReader::byte(segment_id, o))
            .collect::<Vec<u8>>()
            .into())
    }
}

/// Concatenates `mp4.pieces(range)`; checks that no piece is empty.
pub fn collect(
    mp4: &VirtualMp4,
    range: Range<u64>,
    reader: Arc<dyn SampleReader>,
) -> Result<Vec<u8>, Mp4Error> {
    let mut out = Vec::new();
    for piece in mp4.pieces(range, reader) {
        let piece = piece?;
        assert!(!piece.is_empty(), "empty piece");
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

/// A syntactically plausible `VisualSampleEntry` box of type `fourcc` whose codec
/// configuration child (`avcC`/`hvcC`) holds `config` (not decodable: for non-ffmpeg tests).
pub fn fake_entry(fourcc: &[u8; 4], width: u16, height: u16, config: &[u8]) -> SampleEntry {
    let mut b = Vec::new();
    b.put_u32(0);
    b.put_slice(fourcc);
    b.put_bytes(0, 6); // reserved
    b.put_u16(1); // data_reference_index
    b.put_bytes(0, 16); // pre_defined, reserved, pre_defined[3]
    b.put_u16(width);
    b.put_u16(height);
    b.put_u32(0x0048_0000); // horizresolution 72 dpi
    b.put_u32(0x0048_0000); // vertresolution 72 dpi
    b.put_u32(0); // reserved
    b.put_u16(1); // frame_count
    b.put_bytes(0, 32); // compressorname
    b.put_u16(0x0018); // depth
    b.put_i16(-1); // pre_defined
    let child: &[u8; 4] = if fourcc.starts_with(b"avc") {
        b"avcC"
    } else {
        b"hvcC"
    };
    b.put_u32(u32::try_from(8 + config.len()).unwrap());
    b.put_slice(child);
    b.put_slice(config);
    let len = u32::try_from(b.len()).unwrap();
    b[..4].copy_from_slice(&len.to_be_bytes());
    SampleEntry {
        box_bytes: b.into(),
        width,
        height,
    }
}

/// A request over `parts` with no trim and a fixed creation time.
pub fn request(entries: Vec<SampleEntry>, parts: Vec<SegmentPart>) -> Mp4Request {
    Mp4Request {
        entries,
        parts,
        start_trim_90k: 0,
        duration_90k: None,
        creation_time_unix_secs: 1_700_000_000,
        extras: None,
    }
}

// ---- ffmpeg tools. ----

/// Fails (never skips) when a tool of ffmpeg is missing.
pub fn require_tool(name: &str) {
    match Command::new(name).arg("-version").output() {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "`{name}` is required by the mp4 tests but could not be run: install ffmpeg \
             (e.g. `apt-get install ffmpeg`), which provides both ffmpeg and ffprobe"
        ),
    }
}

/// The value of `"key": value` in ffprobe's JSON (the first occurrence in `json`).
pub fn json_value<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\": ");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in ffprobe output {json}"))
        + pat.len();
    let rest = &json[at..];
    if let Some(s) = rest.strip_prefix('"') {
        &s[..s.find('"').unwrap()]
    } else {
        rest[..rest.find([',', '\n', '}']).unwrap()].trim()
    }
}

/// Runs `ffprobe -v error <options> -show_streams -show_format -of json path`; fails on any
/// error message.
pub fn ffprobe_json(path: &Path, options: &[&str]) -> String {
    require_tool("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(options)
        .args(["-show_streams", "-show_format", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffprobe: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Splits ffprobe's JSON into its (single-stream) streams section and its format section.
pub fn split_ffprobe_json(json: &str) -> (&str, &str) {
    let format_at = json.find("\"format\"").expect("no format section");
    let (streams, format) = json.split_at(format_at);
    assert_eq!(
        streams.matches("\"codec_type\"").count(),
        1,
        "one stream: {json}"
    );
    (streams, format)
}

// ---- A minimal ISO BMFF parser, independent of the writer. ----

/// One box found in a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxRef {
    pub fourcc: [u8; 4],
    /// Range of the whole box, header included.
    pub range: Range<usize>,
    /// Range of the body (after the 8- or 16-byte header).
    pub body: Range<usize>,
}

/// Boxes that contain only boxes (that this test code descends into).
const CONTAINERS: [&[u8; 4]; 7] = [
    b"moov", b"trak", b"edts", b"mdia", b"minf", b"dinf", b"stbl",
];

pub fn be_u32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(d[at..at + 4].try_into().unwrap())
}

pub fn be_u64(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().unwrap())
}

/// The boxes laid end to end in `d[range]`; a box may extend past the end of `d` (an mdat
/// whose payload is not in `d`), in which case its range is cut to `d`.
pub fn parse_boxes(d: &[u8], range: Range<usize>) -> Vec<BoxRef> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos + 8 <= range.end {
        let size32 = be_u32(d, pos);
        let fourcc: [u8; 4] = d[pos + 4..pos + 8].try_into().unwrap();
        let (header, size) = match size32 {
            0 => (8, (range.end - pos) as u64),
            1 => (16, be_u64(d, pos + 8)),
            s => (8, u64::from(s)),
        };
        assert!(size >= header as u64, "box {fourcc:?} too small");
        let end = pos.saturating_add(usize::try_from(size).unwrap());
        out.push(BoxRef {
            fourcc,
            range: pos..end.min(range.end),
            body: pos + header..end.min(range.end),
        });
        pos = end;
    }
    out
}

/// Every box of `d` (recursively through [`CONTAINERS`]), in file order.
pub fn all_boxes(d: &[u8]) -> Vec<BoxRef> {
    fn walk(d: &[u8], range: Range<usize>, out: &mut Vec<BoxRef>) {
        for b in parse_boxes(d, range) {
            out.push(b.clone());
            if CONTAINERS.contains(&&b.fourcc) {
                walk(d, b.body.clone(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(d, 0..d.len(), &mut out);
    out
}

/// The first box at `path` (e.g. `["moov", "trak", "tkhd"]`).
pub fn find(d: &[u8], path: &[&[u8; 4]]) -> Option<BoxRef> {
    let mut range = 0..d.len();
    let mut found = None;
    for name in path {
        let b = parse_boxes(d, range)
            .into_iter()
            .find(|b| &b.fourcc == *name)?;
        range = b.body.clone();
        found = Some(b);
    }
    found
}

/// Body of the sample table box `name` of the first track.
pub fn stbl_box<'a>(d: &'a [u8], name: &[u8; 4]) -> Option<&'a [u8]> {
    let b = find(d, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", name])?;
    Some(&d[b.body])
}

/// Entries of a full-box table laid out as version/flags, entry_count, then fixed-size
/// entries of `n` u32s each.
pub fn table_u32(body: &[u8], n: usize) -> Vec<Vec<u32>> {
    let count = be_u32(body, 4) as usize;
    assert_eq!(body.len(), 8 + count * n * 4, "table length");
    (0..count)
        .map(|i| (0..n).map(|j| be_u32(body, 8 + (i * n + j) * 4)).collect())
        .collect()
}

/// Sample sizes from `stsz` (which must use a per-sample table).
pub fn stsz_sizes(body: &[u8]) -> Vec<u32> {
    assert_eq!(be_u32(body, 4), 0, "sample_size");
    let count = be_u32(body, 8) as usize;
    assert_eq!(body.len(), 12 + count * 4, "stsz length");
    (0..count).map(|i| be_u32(body, 12 + i * 4)).collect()
}

/// Chunk offsets from `stco` or `co64`.
pub fn chunk_offsets(d: &[u8]) -> Vec<u64> {
    if let Some(b) = stbl_box(d, b"stco") {
        return table_u32(b, 1).iter().map(|e| u64::from(e[0])).collect();
    }
    let b = stbl_box(d, b"co64").expect("no stco or co64");
    let count = be_u32(b, 4) as usize;
    assert_eq!(b.len(), 8 + count * 8);
    (0..count).map(|i| be_u64(b, 8 + i * 8)).collect()
}

/// The sample entries of `stsd`, as whole boxes.
pub fn stsd_entries(d: &[u8]) -> Vec<Vec<u8>> {
    let body = stbl_box(d, b"stsd").expect("no stsd");
    let count = be_u32(body, 4) as usize;
    let entries = parse_boxes(body, 8..body.len());
    assert_eq!(entries.len(), count, "stsd entry_count");
    entries
        .iter()
        .map(|b| body[b.range.clone()].to_vec())
        .collect()
}
