//! The byte-range iterator: header slices, then frame bytes fetched by coalesced reads.
//!
//! Reads are coalesced because every [`SampleReader::read`] decrypts whole 64 KiB chunks:
//! starting at the frame that holds the current position, one read covers that frame and the
//! following frames of the same part while
//! - each next frame starts at or after the end of the previous one (plaintext order) and at
//!   most [`MAX_COALESCED_GAP_BYTES`] after it (the record headers between frames are small),
//! - the span stays within [`MAX_COALESCED_READ_BYTES`] (a single larger frame is read alone),
//! - the frames are still inside the requested range (a range ending mid-frame reads only the
//!   needed prefix of that frame; one starting mid-frame skips the unneeded prefix).
//!
//! The frames of one read (or the parts of them inside the range) are then moved together over
//! the record headers between them, in the read's own buffer when the reader handed it over
//! unshared, and yielded as one piece: one piece per read (up to 1 MiB) rather than one per
//! frame, so a consumer makes one `write` per read, not one per frame (an export's file writes,
//! an HTTP body's chunks). A read holding a single frame is yielded as it is. Header bytes are
//! slices of the prebuilt header.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::{Inner, Mp4Error, SampleReader};

/// Upper bound on the plaintext span of one coalesced read (1 MiB), unless a single frame is
/// larger. Bounds the memory held per response and the latency of the first piece.
pub const MAX_COALESCED_READ_BYTES: u64 = 1 << 20;

/// Largest gap (64 KiB, one decryption chunk) between two frames' bytes that a coalesced read
/// spans; a larger gap (unrelated data) starts a new read instead of decrypting it.
pub const MAX_COALESCED_GAP_BYTES: u64 = 64 << 10;

/// Iterator over the bytes of a byte range of a [`super::VirtualMp4`]; see
/// [`super::VirtualMp4::pieces`]. Owns its state (`'static + Send`).
pub struct Pieces {
    mp4: Arc<Inner>,
    reader: Arc<dyn SampleReader>,
    /// Next file position to yield.
    pos: u64,
    /// End of the requested range (exclusive).
    end: u64,
    /// Position within the mdat payload, once `pos` is there.
    cursor: Option<Cursor>,
    /// Error to yield first (an invalid range).
    pending_error: Option<Mp4Error>,
    /// Set after the last item (the end or an error).
    done: bool,
}

/// Identifies the frame holding the current mdat position.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    /// Index into the plan's parts.
    part: usize,
    /// Index into that part's `frames` (within its `frame_range`).
    frame: usize,
    /// Offset of that frame's first byte within the mdat payload.
    frame_start: u64,
}

impl fmt::Debug for Pieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pieces")
            .field("pos", &self.pos)
            .field("end", &self.end)
            .field("cursor", &self.cursor)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Pieces {
    pub(super) fn new(mp4: Arc<Inner>, range: Range<u64>, reader: Arc<dyn SampleReader>) -> Self {
        let pending_error =
            (range.start > range.end || range.end > mp4.len).then(|| Mp4Error::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                len: mp4.len,
            });
        Pieces {
            mp4,
            reader,
            pos: range.start,
            end: range.end,
            cursor: None,
            pending_error,
            done: false,
        }
    }

    /// Finds the frame holding mdat payload offset `p` (< payload length): binary search over
    /// the parts' cumulative offsets, then a walk over one part's frame sizes.
    fn locate(&self, p: u64) -> Option<Cursor> {
        let parts = &self.mp4.plan.parts;
        let part = parts.partition_point(|pt| pt.mdat_start + pt.mdat_len <= p);
        let pt = parts.get(part)?;
        let mut frame_start = pt.mdat_start;
        for (i, f) in pt.frames().iter().enumerate() {
            let next = frame_start + u64::from(f.size_bytes);
            if p < next {
                return Some(Cursor {
                    part,
                    frame: pt.frame_range.start + i,
                    frame_start,
                });
            }
            frame_start = next;
        }
        None
    }

    /// Yields the next piece of the mdat payload (`self.pos` is inside it): the bytes of one
    /// coalesced read, frames back to back.
    fn next_mdat_piece(&mut self) -> Result<Bytes, Mp4Error> {
        let head_len = self.mp4.head.len() as u64;
        let payload_pos = self.pos - head_len;
        let cur = match self.cursor {
            Some(c) => c,
            None => self
                .locate(payload_pos)
                .ok_or(Mp4Error::Internal("mdat position not found"))?,
        };
        let (piece, next) = self.read_span(cur, payload_pos - cur.frame_start)?;
        self.pos += piece.len() as u64;
        self.cursor = next;
        Ok(piece)
    }

    /// Reads the plaintext for frame `cur.frame` from byte `within` on, plus as many following
    /// frames as the coalescing rules (module comment) allow, and returns their bytes back to
    /// back with the cursor of the frame after them.
    fn read_span(&self, cur: Cursor, within: u64) -> Result<(Bytes, Option<Cursor>), Mp4Error> {
        let part = &self.mp4.plan.parts[cur.part];
        let first = part.frames[cur.frame];
        let mut remaining = self.end - self.pos; // output bytes still wanted
        let start = first.data_offset + within;
        let take = (u64::from(first.size_bytes) - within).min(remaining);
        let mut span_end = start + take;
        remaining -= take;
        let mut end_frame = cur.frame + 1;
        // The last frame's share when the range ends inside it (`remaining` is then 0).
        let mut last_take = take;
        let mut next_start = cur.frame_start + u64::from(first.size_bytes);
        while remaining > 0 && end_frame < part.frame_range.end {
            let f = part.frames[end_frame];
            if f.data_offset < span_end || f.data_offset - span_end > MAX_COALESCED_GAP_BYTES {
                break;
            }
            let take = u64::from(f.size_bytes).min(remaining);
            let new_end = f.data_offset + take;
            if new_end - start > MAX_COALESCED_READ_BYTES {
                break;
            }
            span_end = new_end;
            remaining -= take;
            last_take = take;
            next_start += u64::from(f.size_bytes);
            end_frame += 1;
        }

        let len = usize::try_from(span_end - start).map_err(|_| Mp4Error::TooLarge {
            what: "frame for this platform's usize",
        })?;
        let segment_id = part.segment_id;
        let bytes = self
            .reader
            .read(segment_id, start, len)
            .map_err(|source| Mp4Error::Read {
                segment_id,
                plaintext_offset: start,
                len,
                source,
            })?;
        if bytes.len() != len {
            return Err(Mp4Error::ShortRead {
                segment_id,
                plaintext_offset: start,
                expected: len,
                actual: bytes.len(),
            });
        }
        let last_full = if end_frame - 1 == cur.frame {
            u64::from(first.size_bytes) - within
        } else {
            u64::from(part.frames[end_frame - 1].size_bytes)
        };
        let next = if last_take < last_full {
            None // the range ends inside the last frame
        } else if end_frame < part.frame_range.end {
            Some(Cursor {
                part: cur.part,
                frame: end_frame,
                frame_start: next_start,
            })
        } else {
            self.mp4.plan.parts.get(cur.part + 1).map(|next| Cursor {
                part: cur.part + 1,
                frame: next.frame_range.start,
                frame_start: next.mdat_start,
            })
        };
        if end_frame == cur.frame + 1 {
            return Ok((bytes, next)); // one frame: already contiguous
        }
        // Where each frame's bytes are within the read (all within `len`, a usize).
        let ranges = part.frames[cur.frame..end_frame]
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == 0 {
                    0..take as usize
                } else {
                    let from = (f.data_offset - start) as usize;
                    let n = if cur.frame + i == end_frame - 1 {
                        last_take
                    } else {
                        u64::from(f.size_bytes)
                    };
                    from..from + n as usize
                }
            });
        // Move the frames together over the record headers (and gaps) between them: in place
        // when the read's buffer is ours alone, else into a new buffer.
        let piece = match bytes.try_into_mut() {
            Ok(mut owned) => {
                let mut w = 0;
                for r in ranges {
                    let n = r.len();
                    owned.copy_within(r, w);
                    w += n;
                }
                owned.truncate(w);
                owned.freeze()
            }
            Err(shared) => {
                let mut out = Vec::with_capacity(len);
                for r in ranges {
                    out.extend_from_slice(&shared[r]);
                }
                Bytes::from(out)
            }
        };
        Ok((piece, next))
    }
}

impl Iterator for Pieces {
    type Item = Result<Bytes, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.pos >= self.end {
            self.done = true;
            return None;
        }
        let head_len = self.mp4.head.len() as u64;
        if self.pos < head_len {
            let end = self.end.min(head_len);
            // Both < head.len(), a usize.
            let piece = self.mp4.head.slice(self.pos as usize..end as usize);
            self.pos = end;
            return Some(Ok(piece));
        }
        match self.next_mdat_piece() {
            Ok(piece) => Some(Ok(piece)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for Pieces {}
