//! What `nvr verify` reads in an exported MP4's header (everything before the video samples)
//! besides hashing it: the time track's first cue and the ONVIF `cstb` start times, compared
//! with what the signed manifest says (`mp4`, written by `timeline::mp4_json`). The file's
//! SHA-256 already proves the header unaltered; this proves the header says what the manifest
//! says, so a player showing the subtitle time and an examiner reading the manifest agree.
//! Bounds: the header is at most the bytes before the video (already read), and every offset
//! and count is checked against it.

use serde_json::Value;

/// A box: its type and body range within the buffer.
pub(super) struct Bx {
    pub(super) kind: [u8; 4],
    pub(super) body: std::ops::Range<usize>,
}

pub(super) fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}
pub(super) fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

/// The boxes laid end to end in `d[range]` (the last one may run past the end: the video's
/// mdat, whose payload is not in `d`).
pub(super) fn boxes(d: &[u8], range: std::ops::Range<usize>) -> Vec<Bx> {
    let mut out = Vec::new();
    let mut at = range.start;
    while at + 8 <= range.end {
        let Some(size) = u32_at(d, at) else { break };
        let mut kind = [0u8; 4];
        kind.copy_from_slice(&d[at + 4..at + 8]);
        let (header, len) = match size {
            1 => match u64_at(d, at + 8) {
                Some(l) => (16, usize::try_from(l).unwrap_or(usize::MAX)),
                None => break,
            },
            0 => (8, range.end - at),
            n => (8, n as usize),
        };
        if len < header {
            break;
        }
        let end = at.saturating_add(len).min(range.end);
        out.push(Bx {
            kind,
            body: (at + header).min(end)..end,
        });
        at = at.saturating_add(len);
    }
    out
}

pub(super) fn child<'a>(list: &'a [Bx], kind: &[u8; 4]) -> Option<&'a Bx> {
    list.iter().find(|b| &b.kind == kind)
}

/// `cstb` entries: track id, start in 100 ns since 1601.
type Starts = Vec<(u32, u64)>;

/// The first cue of the tx3g track, and the `cstb` entries.
fn read(head: &[u8]) -> Result<(Option<String>, Starts), String> {
    let top = boxes(head, 0..head.len());
    let mut starts = Vec::new();
    if let Some(meta) = child(&top, b"meta") {
        // A full box: its children follow version and flags.
        let kids = boxes(head, meta.body.start + 4..meta.body.end);
        if let Some(cstb) = child(&kids, b"cstb") {
            let b = &head[cstb.body.clone()];
            let n = u32_at(b, 0).ok_or("cstb is truncated")? as usize;
            if b.len() != 4 + n.saturating_mul(12) {
                return Err("cstb's size disagrees with its entry count".into());
            }
            for i in 0..n {
                starts.push((
                    u32_at(b, 4 + 12 * i).ok_or("cstb")?,
                    u64_at(b, 8 + 12 * i).ok_or("cstb")?,
                ));
            }
        }
    }
    let mut cue = None;
    let moov = child(&top, b"moov").ok_or("no moov box")?;
    for trak in boxes(head, moov.body.clone())
        .iter()
        .filter(|b| &b.kind == b"trak")
    {
        let path = [b"mdia", b"minf", b"stbl"];
        let mut level = boxes(head, trak.body.clone());
        for p in path {
            let Some(b) = child(&level, p) else {
                level = Vec::new();
                break;
            };
            level = boxes(head, b.body.clone());
        }
        let Some(stsd) = child(&level, b"stsd") else {
            continue;
        };
        // stsd: version/flags, entry_count, then the first entry's size and type.
        if head.get(stsd.body.start + 12..stsd.body.start + 16) != Some(b"tx3g") {
            continue;
        }
        let co64 = child(&level, b"co64").ok_or("the time track has no co64")?;
        let at = u64_at(head, co64.body.start + 8).ok_or("co64 is truncated")?;
        let at = usize::try_from(at).map_err(|e| e.to_string())?;
        let len = usize::from(u16::from_be_bytes(
            head.get(at..at + 2)
                .ok_or("the time track's first sample is outside the header")?
                .try_into()
                .map_err(|_| "cue")?,
        ));
        let text = head
            .get(at + 2..at + 2 + len)
            .ok_or("the time track's first sample is outside the header")?;
        cue = Some(String::from_utf8(text.to_vec()).map_err(|_| "the first cue is not UTF-8")?);
    }
    Ok((cue, starts))
}

/// Compares the header of camera `c`'s MP4 with the manifest; returns what it confirmed.
/// Bundles of format 1 (no `mp4` in the manifest) have nothing to compare.
pub fn check_header(name: &str, head: &[u8], c: &Value) -> Result<Option<String>, String> {
    let want = &c["mp4"];
    if want.is_null() {
        return Ok(None);
    }
    let (cue, starts) = read(head).map_err(|e| format!("{name}: {e}"))?;
    let first = want["time_track"]["first_cue"].as_str();
    if cue.as_deref() != first {
        return Err(format!(
            "{name}: the time track starts at {cue:?}, the manifest says {first:?}"
        ));
    }
    let listed: Starts = want["onvif_cstb"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some((
                        u32::try_from(e["track_id"].as_u64()?).ok()?,
                        e["start_100ns_since_1601"].as_u64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if starts != listed {
        return Err(format!(
            "{name}: the ONVIF start times (cstb) differ from the manifest's"
        ));
    }
    Ok(Some(format!(
        "{name}: the time track starts at {} and the ONVIF start times match the manifest",
        first.unwrap_or("?")
    )))
}
