//! Virtual MP4 builder: the public API that turns indexed H.264/H.265 frames into a progressive `.mp4`.
//!
//! A [`VirtualMp4`] is built on request from an index ([`Mp4Request`]): the small header
//! (`ftyp` + `moov` + the `mdat` box header) is rendered once in [`VirtualMp4::build`], and the
//! `mdat` payload (the frames' bytes) is produced lazily, for any byte range, by
//! [`VirtualMp4::pieces`] through a caller-supplied [`SampleReader`]. Nothing is written to disk
//! and nothing is re-encoded, so an HTTP handler can answer `Range` requests from the object.
//!
//! Typical use in an HTTP handler:
//!
//! ```text
//! let mp4 = VirtualMp4::build(request)?;          // a few ms even for an hour of video
//! // headers: Content-Length / Content-Range from mp4.len(), ETag from mp4.etag()
//! let pieces = mp4.pieces(range, reader.clone());  // owned ('static + Send): move it to a blocking thread
//! for piece in pieces { body_sender.send(piece?)?; }
//! ```
//!
//! Module layout:
//! - `mod.rs` (this file): public types, [`VirtualMp4`], [`Mp4Error`].
//! - `layout.rs`: request validation and the per-part plan (mdat offsets, durations, edit list).
//! - `boxes.rs`: serialisation of `ftyp`, `moov` and the `mdat` header (box layout table there).
//! - `pieces.rs`: the byte-range iterator and read coalescing.
//! - `etag.rs`: the strong ETag.
//! - `fragment.rs`, `live_timing.rs`: live fMP4 fragments and their decode times.

#![deny(unsafe_code)]

mod boxes;
mod etag;
pub mod extras;
pub mod fragment;
mod layout;
pub mod live_timing;
mod pieces;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

pub use pieces::{MAX_COALESCED_GAP_BYTES, MAX_COALESCED_READ_BYTES, Pieces};

/// The media (and movie) timescale of every file built here: 90 kHz, the RTP video clock, so
/// frame durations from the index are used as they are.
pub const TIMESCALE_90K: u32 = 90_000;

/// A complete ISO BMFF `VisualSampleEntry` box (`avc1`/`avc3`/`hvc1`/`hev1` with its
/// `avcC`/`hvcC` child), as produced by the `retina` crate's
/// `VideoParameters::mp4_sample_entry().build()`, plus the display size for `tkhd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleEntry {
    /// The whole box, header included; copied verbatim into `stsd`.
    pub box_bytes: Bytes,
    /// Display width in pixels.
    pub width: u16,
    /// Display height in pixels.
    pub height: u16,
}

pub use crate::frame_index::FrameInfo;

/// A run of frames of one segment to include, in decode order. Frames presented out of decode
/// order (B-frames) carry composition offsets, written to `ctts` (see `layout.rs`).
#[derive(Clone)]
pub struct SegmentPart {
    /// Passed back to [`SampleReader::read`].
    pub segment_id: u64,
    /// Index into [`Mp4Request::entries`] describing these frames.
    pub sample_entry_idx: usize,
    /// All frames of the segment (shared with the index cache; not copied).
    pub frames: Arc<[FrameInfo]>,
    /// The frames of `frames` to include; must be non-empty.
    pub frame_range: Range<usize>,
    /// Identity of the segment's content (e.g. its SHA-256, or a hash of its id, frame index and
    /// bytes). It feeds the ETag in place of the frames: it MUST change whenever `frames` or the
    /// segment's bytes change.
    pub content_tag: [u8; 32],
}

impl fmt::Debug for SegmentPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The frame list can hold thousands of entries; print its length only.
        f.debug_struct("SegmentPart")
            .field("segment_id", &self.segment_id)
            .field("sample_entry_idx", &self.sample_entry_idx)
            .field("frames_len", &self.frames.len())
            .field("frame_range", &self.frame_range)
            .field("content_tag", &etag::hex(&self.content_tag))
            .finish()
    }
}

/// Everything needed to build one virtual MP4.
#[derive(Clone, Debug)]
pub struct Mp4Request {
    /// Sample entries, all written to `stsd` in this order.
    pub entries: Vec<SampleEntry>,
    /// The frames, in order. The first frame of the first part must be a key frame.
    pub parts: Vec<SegmentPart>,
    /// Presentation time (90 kHz, from the first frame's decode time) to skip at the start of
    /// the first part, via an edit list, when the requested start lies between key frames.
    /// Must be less than the total media duration.
    pub start_trim_90k: u64,
    /// Presentation duration (90 kHz) to keep after the trim, via the edit list; `None` = to
    /// the end. Longer than what is available is clamped; `Some(0)` is an error.
    pub duration_90k: Option<u64>,
    /// Written to `mvhd`/`tkhd`/`mdhd` creation and modification times.
    pub creation_time_unix_secs: i64,
    /// What an export adds (time track, ONVIF metadata); `None` for playback.
    pub extras: Option<Arc<extras::Extras>>,
}

/// The error a [`SampleReader`] returns; wrapped into [`Mp4Error::Read`] with its context.
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// Where sample bytes come from: the caller decrypts them. Called from a blocking context
/// (from [`Pieces::next`]).
pub trait SampleReader: Send + Sync {
    /// Returns exactly `len` bytes of segment `segment_id`'s plaintext starting at
    /// `plaintext_offset`. Returning a different length yields [`Mp4Error::ShortRead`].
    fn read(&self, segment_id: u64, plaintext_offset: u64, len: usize) -> Result<Bytes, ReadError>;
}

/// Errors from building a [`VirtualMp4`] or reading its bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Mp4Error {
    #[error("the request has no sample entries")]
    NoSampleEntries,
    #[error("the request has no segment parts")]
    NoParts,
    #[error("sample entry {idx} is invalid: {reason}")]
    InvalidSampleEntry { idx: usize, reason: &'static str },
    #[error(
        "part {part} (segment {segment_id}) refers to sample entry {sample_entry_idx}, but there are only {entries}"
    )]
    SampleEntryOutOfRange {
        part: usize,
        segment_id: u64,
        sample_entry_idx: usize,
        entries: usize,
    },
    #[error(
        "part {part} (segment {segment_id}) has frame range {frame_range:?}, which is empty or not within its {frames_len} frames"
    )]
    BadFrameRange {
        part: usize,
        segment_id: u64,
        frame_range: Range<usize>,
        frames_len: usize,
    },
    #[error("the first frame (segment {segment_id}, frame {frame}) is not a key frame")]
    FirstFrameNotKey { segment_id: u64, frame: usize },
    #[error("segment {segment_id} frame {frame} has zero duration and is not the last frame")]
    ZeroDuration { segment_id: u64, frame: usize },
    #[error("segment {segment_id} frame {frame} has zero size")]
    ZeroSize { segment_id: u64, frame: usize },
    #[error("segment {segment_id} frame {frame}: data_offset + size_bytes overflows u64")]
    FrameOffsetOverflow { segment_id: u64, frame: usize },
    #[error("start trim {start_trim_90k} is not less than the media duration {media_duration_90k}")]
    TrimTooLong {
        start_trim_90k: u64,
        media_duration_90k: u64,
    },
    #[error("the requested duration is zero")]
    ZeroRequestedDuration,
    #[error("{what} is too large for the MP4 format")]
    TooLarge { what: &'static str },
    #[error("byte range {start}..{end} is not within 0..{len}")]
    RangeOutOfBounds { start: u64, end: u64, len: u64 },
    #[error(
        "reading {len} bytes at plaintext offset {plaintext_offset} of segment {segment_id} failed: {source}"
    )]
    Read {
        segment_id: u64,
        plaintext_offset: u64,
        len: usize,
        #[source]
        source: ReadError,
    },
    #[error(
        "reader returned {actual} bytes instead of {expected} at plaintext offset {plaintext_offset} of segment {segment_id}"
    )]
    ShortRead {
        segment_id: u64,
        plaintext_offset: u64,
        expected: usize,
        actual: usize,
    },
    #[error("the export additions are invalid: {reason}")]
    InvalidExtras { reason: &'static str },
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// A built virtual MP4. Immutable; `Clone` is cheap (one `Arc`), so it can be cached and shared.
#[derive(Clone)]
pub struct VirtualMp4 {
    inner: Arc<Inner>,
}

/// The shared state behind a [`VirtualMp4`]; [`Pieces`] holds an `Arc` of it.
struct Inner {
    /// `ftyp` + `moov` + `mdat` header; the mdat payload starts at `head.len()`.
    head: Bytes,
    plan: layout::Plan,
    len: u64,
    etag: String,
}

impl fmt::Debug for VirtualMp4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualMp4")
            .field("len", &self.inner.len)
            .field("head_len", &self.inner.head.len())
            .field("parts", &self.inner.plan.parts.len())
            .field("frame_count", &self.inner.plan.frame_count)
            .field("duration_90k", &self.inner.plan.presentation_duration_90k)
            .field("etag", &self.inner.etag)
            .finish()
    }
}

impl VirtualMp4 {
    /// Validates `req` and renders the file's header.
    ///
    /// Checks: at least one sample entry and one part; every sample entry is a plausible
    /// `avc1`/`avc3`/`hvc1`/`hev1` box whose size field matches its length; every
    /// `sample_entry_idx` is in range; every `frame_range` is non-empty and within its frames;
    /// the first frame of the first part is a key frame; every frame has a non-zero size; every
    /// duration is non-zero except possibly that of the very last frame of the request;
    /// `start_trim_90k` is less than the media duration; `duration_90k` is not `Some(0)`.
    ///
    /// Last frame: a zero `duration_90k` on the request's last frame (the index does not know
    /// it yet, e.g. while the segment is being recorded) is replaced by the previous frame's
    /// duration, or by 1 tick if the request holds a single frame. A zero duration elsewhere,
    /// including the last frame of a part that is not the last, is an error.
    pub fn build(req: Mp4Request) -> Result<VirtualMp4, Mp4Error> {
        let plan = layout::Plan::new(&req)?;
        let no_extras = extras::Extras::default();
        let head = boxes::write_head(
            &req.entries,
            &plan,
            req.creation_time_unix_secs,
            req.extras.as_deref().unwrap_or(&no_extras),
        )?;
        let len = u64::try_from(head.len())
            .ok()
            .and_then(|h| h.checked_add(plan.mdat_payload_len))
            .ok_or(Mp4Error::TooLarge { what: "file" })?;
        let etag = etag::compute(&req);
        Ok(VirtualMp4 {
            inner: Arc::new(Inner {
                head,
                plan,
                len,
                etag,
            }),
        })
    }

    /// Total file size in bytes.
    pub fn len(&self) -> u64 {
        self.inner.len
    }

    /// Always false (a valid request has at least one non-empty frame); for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Strong ETag, quoted (e.g. `"3f1c…"`), from a SHA-256 over the request (see `etag.rs`).
    pub fn etag(&self) -> &str {
        &self.inner.etag
    }

    /// Number of samples in the file.
    pub fn frame_count(&self) -> u64 {
        self.inner.plan.frame_count
    }

    /// Presentation duration in 90 kHz units: after the edit list's trim and duration limit.
    pub fn duration_90k(&self) -> u64 {
        self.inner.plan.presentation_duration_90k
    }

    /// Sum of all sample durations in 90 kHz units (`mdhd` duration), before the edit list.
    pub fn media_duration_90k(&self) -> u64 {
        self.inner.plan.media_duration_90k
    }

    /// Byte range of the `mdat` payload (the frames' bytes) within the file; everything before
    /// it is the in-memory header.
    pub fn mdat_payload_range(&self) -> Range<u64> {
        self.inner.len - self.inner.plan.mdat_payload_len..self.inner.len
    }

    /// Yields the bytes of `range` in pieces, in order; their total length is exactly
    /// `range.end - range.start`. `range` must lie within `0..len()` (the caller clamps it);
    /// otherwise the iterator yields one [`Mp4Error::RangeOutOfBounds`].
    ///
    /// The iterator owns what it needs (`'static + Send`), so it can be moved to a blocking
    /// thread. Header bytes are slices of the prebuilt header; frame bytes come one coalesced
    /// read (up to 1 MiB of frames, back to back) per piece (see [`Pieces`]). After an `Err` the
    /// iterator ends.
    pub fn pieces(&self, range: Range<u64>, reader: Arc<dyn SampleReader>) -> Pieces {
        Pieces::new(Arc::clone(&self.inner), range, reader)
    }
}
