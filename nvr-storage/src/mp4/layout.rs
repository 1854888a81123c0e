//! Request validation and the per-part plan: mdat offsets, sample counts, durations,
//! composition offsets, edit list.
//!
//! One pass over the request's frames validates them and accumulates per-part totals; no
//! per-frame allocation. The plan keeps the request's `Arc<[FrameInfo]>`s (no copy), and each
//! part's cumulative mdat offset so [`super::Pieces`] can binary-search the part holding a
//! byte position and then walk at most one part's frames.

use std::ops::Range;
use std::sync::Arc;

use super::{FrameInfo, Mp4Error, Mp4Request};

/// The sample entry box types accepted in `stsd` (AVC and HEVC, parameter sets out-of-band
/// (`avc1`, `hvc1`) or also in-band (`avc3`, `hev1`)).
pub(super) const SAMPLE_ENTRY_TYPES: [&[u8; 4]; 4] = [b"avc1", b"avc3", b"hvc1", b"hev1"];

/// Smallest valid `VisualSampleEntry`: 8-byte box header + 8 bytes of `SampleEntry` fields
/// (6 reserved + data_reference_index) + 70 bytes of `VisualSampleEntry` fields
/// (ISO/IEC 14496-12 section 12.1.3.2), before any child box.
const MIN_VISUAL_SAMPLE_ENTRY_LEN: usize = 8 + 8 + 70;

/// One [`super::SegmentPart`] as laid out in the file: one `stsc` chunk.
#[derive(Debug)]
pub(super) struct PartPlan {
    pub segment_id: u64,
    pub sample_entry_idx: usize,
    pub frames: Arc<[FrameInfo]>,
    pub frame_range: Range<usize>,
    /// Offset of this part's first byte within the mdat payload.
    pub mdat_start: u64,
    /// Sum of this part's frame sizes.
    pub mdat_len: u64,
}

impl PartPlan {
    /// The frames this part contributes, in order.
    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames[self.frame_range.clone()]
    }
}

/// An edit list with a single entry: play media time `media_time_90k..media_time_90k +
/// duration_90k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Edit {
    pub media_time_90k: u64,
    pub duration_90k: u64,
}

/// The validated layout of a request.
#[derive(Debug)]
pub(super) struct Plan {
    pub parts: Box<[PartPlan]>,
    /// Total number of samples; fits in `u32` (the `stsz`/`stss` sample number width).
    pub frame_count: u64,
    /// Sum of all sample durations, with the last one fixed up (see `last_duration_90k`).
    pub media_duration_90k: u64,
    /// Duration written for the final sample: its own if non-zero, else the previous sample's,
    /// else 1 tick.
    pub last_duration_90k: u32,
    /// Added to every frame's composition offset so none is negative (`ctts` version 0, read
    /// by every player): the most any frame is presented before its decode time. The edit
    /// list starts that much later, so presentation is unchanged. 0 without B-frames.
    pub composition_shift_90k: u32,
    /// Some frame is presented out of decode order: a `ctts` box is written.
    pub composition_offsets: bool,
    /// `Some` when the trim, duration limit or composition shift require an `edts`/`elst` box.
    pub edit: Option<Edit>,
    /// Duration after the edit list (`mvhd`/`tkhd` duration).
    pub presentation_duration_90k: u64,
    /// Sum of all sample sizes.
    pub mdat_payload_len: u64,
}

impl Plan {
    pub fn new(req: &Mp4Request) -> Result<Plan, Mp4Error> {
        if req.entries.is_empty() {
            return Err(Mp4Error::NoSampleEntries);
        }
        for (idx, e) in req.entries.iter().enumerate() {
            validate_sample_entry(&e.box_bytes)
                .map_err(|reason| Mp4Error::InvalidSampleEntry { idx, reason })?;
        }
        if req.parts.is_empty() {
            return Err(Mp4Error::NoParts);
        }

        let last_part = req.parts.len() - 1;
        let mut parts = Vec::with_capacity(req.parts.len());
        let mut frame_count: u64 = 0;
        let mut media_duration_90k: u64 = 0;
        let mut mdat_payload_len: u64 = 0;
        // Duration of the sample before the current one (for the last-frame fix-up).
        let mut prev_duration_90k: u32 = 0;
        let mut last_duration_90k: u32 = 0;
        let mut min_offset_90k: i32 = 0;
        let mut composition_offsets = false;
        for (part_idx, p) in req.parts.iter().enumerate() {
            let segment_id = p.segment_id;
            if p.sample_entry_idx >= req.entries.len() {
                return Err(Mp4Error::SampleEntryOutOfRange {
                    part: part_idx,
                    segment_id,
                    sample_entry_idx: p.sample_entry_idx,
                    entries: req.entries.len(),
                });
            }
            let r = p.frame_range.clone();
            if r.start >= r.end || r.end > p.frames.len() {
                return Err(Mp4Error::BadFrameRange {
                    part: part_idx,
                    segment_id,
                    frame_range: r,
                    frames_len: p.frames.len(),
                });
            }
            if part_idx == 0 && !p.frames[r.start].is_key {
                return Err(Mp4Error::FirstFrameNotKey {
                    segment_id,
                    frame: r.start,
                });
            }
            let last_frame = r.end - 1;
            let mut part_len: u64 = 0;
            let mut part_duration: u64 = 0;
            for (frame, f) in p.frames[r.clone()].iter().enumerate() {
                let frame = r.start + frame;
                if f.size_bytes == 0 {
                    return Err(Mp4Error::ZeroSize { segment_id, frame });
                }
                if f.data_offset.checked_add(u64::from(f.size_bytes)).is_none() {
                    return Err(Mp4Error::FrameOffsetOverflow { segment_id, frame });
                }
                let is_last = part_idx == last_part && frame == last_frame;
                let mut d = f.duration_90k;
                if is_last {
                    if d == 0 {
                        d = if prev_duration_90k > 0 {
                            prev_duration_90k
                        } else {
                            1
                        };
                    }
                    last_duration_90k = d;
                } else if d == 0 {
                    return Err(Mp4Error::ZeroDuration { segment_id, frame });
                }
                prev_duration_90k = d;
                min_offset_90k = min_offset_90k.min(f.composition_offset_90k);
                composition_offsets |= f.composition_offset_90k != 0;
                part_len += u64::from(f.size_bytes);
                part_duration += u64::from(d);
            }
            parts.push(PartPlan {
                segment_id,
                sample_entry_idx: p.sample_entry_idx,
                frames: Arc::clone(&p.frames),
                frame_range: r.clone(),
                mdat_start: mdat_payload_len,
                mdat_len: part_len,
            });
            frame_count += r.len() as u64;
            mdat_payload_len = mdat_payload_len
                .checked_add(part_len)
                .ok_or(Mp4Error::TooLarge { what: "mdat" })?;
            media_duration_90k =
                media_duration_90k
                    .checked_add(part_duration)
                    .ok_or(Mp4Error::TooLarge {
                        what: "media duration",
                    })?;
        }
        if frame_count > u64::from(u32::MAX) {
            return Err(Mp4Error::TooLarge {
                what: "frame count",
            });
        }

        let composition_shift_90k = min_offset_90k.unsigned_abs();
        let (edit, presentation_duration_90k) = edit_list(
            req.start_trim_90k,
            req.duration_90k,
            media_duration_90k,
            composition_shift_90k,
        )?;
        Ok(Plan {
            parts: parts.into_boxed_slice(),
            frame_count,
            media_duration_90k,
            last_duration_90k,
            composition_shift_90k,
            composition_offsets,
            edit,
            presentation_duration_90k,
            mdat_payload_len,
        })
    }

    /// Every sample's duration in order, with the final sample's fixed up.
    pub fn sample_durations(&self) -> impl Iterator<Item = u32> + '_ {
        let last = self.frame_count.saturating_sub(1);
        self.parts
            .iter()
            .flat_map(PartPlan::frames)
            .zip(0u64..)
            .map(move |(f, i)| {
                if i == last {
                    self.last_duration_90k
                } else {
                    f.duration_90k
                }
            })
    }

    /// Every sample's composition offset in order, shifted to be non-negative (`ctts`).
    pub fn sample_composition_offsets(&self) -> impl Iterator<Item = u32> + '_ {
        let shift = i64::from(self.composition_shift_90k);
        self.parts
            .iter()
            .flat_map(PartPlan::frames)
            // Non-negative and below 2^32 by the choice of the shift.
            .map(move |f| (i64::from(f.composition_offset_90k) + shift) as u32)
    }
}

/// Decides the edit list: returns it (if one is needed) and the presentation duration. The
/// trim is on the presentation timeline (a frame at its decode time plus its composition
/// offset); the composition shift moves the edit's start by as much.
fn edit_list(
    start_trim_90k: u64,
    duration_90k: Option<u64>,
    media_duration_90k: u64,
    composition_shift_90k: u32,
) -> Result<(Option<Edit>, u64), Mp4Error> {
    if start_trim_90k >= media_duration_90k {
        return Err(Mp4Error::TrimTooLong {
            start_trim_90k,
            media_duration_90k,
        });
    }
    let available = media_duration_90k - start_trim_90k;
    let presentation = match duration_90k {
        Some(0) => return Err(Mp4Error::ZeroRequestedDuration),
        Some(d) => d.min(available),
        None => available,
    };
    let edit = (presentation != media_duration_90k || composition_shift_90k != 0).then_some(Edit {
        media_time_90k: start_trim_90k + u64::from(composition_shift_90k),
        duration_90k: presentation,
    });
    Ok((edit, presentation))
}

/// Checks the parts of a sample entry box that this module relies on.
fn validate_sample_entry(b: &[u8]) -> Result<(), &'static str> {
    if b.len() < MIN_VISUAL_SAMPLE_ENTRY_LEN {
        return Err("shorter than a VisualSampleEntry");
    }
    let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if usize::try_from(size).ok() != Some(b.len()) {
        return Err("box size field does not match its length");
    }
    if !SAMPLE_ENTRY_TYPES.iter().any(|t| &b[4..8] == *t) {
        return Err("box type is not avc1, avc3, hvc1 or hev1");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn edit_list_cases() {
        assert_eq!(edit_list(0, None, 100, 0).unwrap(), (None, 100));
        assert_eq!(edit_list(0, Some(100), 100, 0).unwrap(), (None, 100));
        assert_eq!(edit_list(0, Some(500), 100, 0).unwrap(), (None, 100));
        let e = |m, d| {
            Some(Edit {
                media_time_90k: m,
                duration_90k: d,
            })
        };
        assert_eq!(edit_list(10, None, 100, 0).unwrap(), (e(10, 90), 90));
        assert_eq!(edit_list(10, Some(50), 100, 0).unwrap(), (e(10, 50), 50));
        assert_eq!(edit_list(10, Some(95), 100, 0).unwrap(), (e(10, 90), 90));
        assert_eq!(edit_list(0, Some(40), 100, 0).unwrap(), (e(0, 40), 40));
        // B-frames: the edit starts later by the shift, even with nothing trimmed.
        assert_eq!(edit_list(0, None, 100, 6).unwrap(), (e(6, 100), 100));
        assert_eq!(edit_list(10, Some(50), 100, 6).unwrap(), (e(16, 50), 50));
        assert!(matches!(
            edit_list(100, None, 100, 0),
            Err(Mp4Error::TrimTooLong { .. })
        ));
        assert!(matches!(
            edit_list(0, Some(0), 100, 0),
            Err(Mp4Error::ZeroRequestedDuration)
        ));
    }
}
