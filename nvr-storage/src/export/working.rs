//! Working copies in a bundle: on request, each camera's main-stream MP4 re-encoded with the
//! recording time (its time track) drawn into the picture, as `camera-<id>-working.mp4`,
//! hashed and listed in the manifest like every file, and marked as a working copy: the
//! original beside it stays the evidence, and `nvr verify` only checks the copy's hash.
//! Storage never decodes: the maker comes from the application layer.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

use super::WorkingCopyMaker;
use super::files::PART_SUFFIX;
use super::mp4check::{boxes, child, u32_at, u64_at};
use crate::error::{Result, StorageError};
use crate::playback::View;
use crate::store::Store;

/// What the manifest says of every working copy.
const NOTE: &str = "a working copy for viewing: the video re-encoded (H.264) with the \
    recording time (UTC, from the recorder's clock) drawn into the picture; it is not the \
    evidence and is not checked against the recording (its hash only shows it is the copy made \
    at export). The evidence is the camera's original MP4 named in `file`.";

/// Removes its files when dropped, whatever happened.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// Makes camera `camera`'s working copy of `view` with `maker` and adds it to `zip` as `name`;
/// returns its SHA-256 and size, and the manifest's description of it.
pub(super) fn add_working_copy<W: Write + Seek>(
    store: &Arc<Store>,
    zip: &mut zip::ZipWriter<W>,
    opts: SimpleFileOptions,
    maker: &WorkingCopyMaker,
    name: &str,
    view: &View,
) -> Result<([u8; 32], u64, Value)> {
    let dir = store.exports_dir()?;
    let tag = format!("{}-{}", std::process::id(), unique());
    let input = dir.join(format!(".working-{tag}.in{PART_SUFFIX}"));
    let output = dir.join(format!(".working-{tag}.out{PART_SUFFIX}"));
    let _cleanup = TempFiles(vec![input.clone(), output.clone()]);
    write_view(view, &input)?;
    movie_duration_as_media(&input)?;
    (maker.0)(&input, &output)
        .map_err(|e| StorageError::Format(format!("making the working copy {name}: {e}")))?;
    zip.start_file(name, opts)
        .map_err(|e| StorageError::Format(format!("zip: {e}")))?;
    let mut file = File::open(&output).map_err(StorageError::io(&output))?;
    let mut sha = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(StorageError::io(&output))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        zip.write_all(&buf[..n])
            .map_err(|e| StorageError::Format(format!("zip: {e}")))?;
        bytes += n as u64;
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(sha.finish().as_ref());
    let manifest = json!({
        "file": name,
        "file_sha256": hex::encode(digest),
        "file_bytes": bytes,
        "note": NOTE,
    });
    Ok((digest, bytes, manifest))
}

/// Writes the view's MP4 (the evidence, as exported) to `path`, readable by the owner only.
fn write_view(view: &View, path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(StorageError::io(path))?;
    for piece in view.mp4.pieces(0..view.mp4.len(), view.reader.clone()) {
        let piece = piece.map_err(|e| StorageError::Format(format!("working copy input: {e}")))?;
        f.write_all(&piece).map_err(StorageError::io(path))?;
    }
    f.flush().map_err(StorageError::io(path))
}

/// Sets the copy's movie duration (`mvhd`) to its longest track's media duration (`mdhd`).
///
/// An exported MP4 holds whole segments and an edit list that presents the requested range, so
/// the movie's duration is (as ISO BMFF says) the presented length, shorter than the media.
/// GStreamer 1.22's `qtdemux` stops a track at the movie duration counted in media time, not
/// after the edit: a range starting 10 s into the file would lose its last 10 s. This changes
/// only the working copy's input, never the evidence.
fn movie_duration_as_media(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(StorageError::io(path))?;
    let len = f.metadata().map_err(StorageError::io(path))?.len();
    let bad = |what: &str| StorageError::Format(format!("working copy input: {what}"));
    // The top-level `moov` box.
    let mut pos = 0u64;
    let (moov_at, moov_len) = loop {
        if pos + 8 > len {
            return Err(bad("no moov box"));
        }
        let mut h = [0u8; 16];
        f.seek(SeekFrom::Start(pos))
            .map_err(StorageError::io(path))?;
        f.read_exact(&mut h[..8]).map_err(StorageError::io(path))?;
        let mut size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        let mut header = 8;
        if size == 1 {
            f.read_exact(&mut h[8..16])
                .map_err(StorageError::io(path))?;
            size = u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
            header = 16;
        }
        if size < header || pos + size > len {
            return Err(bad("a box runs past the end"));
        }
        if &h[4..8] == b"moov" {
            break (pos + header, size - header);
        }
        pos += size;
    };
    if moov_len > MAX_MOOV_BYTES {
        return Err(bad("moov too large"));
    }
    let mut moov = vec![0u8; moov_len as usize];
    f.seek(SeekFrom::Start(moov_at))
        .map_err(StorageError::io(path))?;
    f.read_exact(&mut moov).map_err(StorageError::io(path))?;
    let top = boxes(&moov, 0..moov.len());
    let mvhd = child(&top, b"mvhd")
        .map(|b| b.body.clone())
        .ok_or_else(|| bad("no mvhd"))?;
    let (movie_scale, _) = scale_and_duration(&moov[mvhd.clone()]).ok_or_else(|| bad("mvhd"))?;
    let mut longest_secs = 0f64;
    for trak in top.iter().filter(|b| &b.kind == b"trak") {
        let media = child(&boxes(&moov, trak.body.clone()), b"mdia")
            .and_then(|mdia| {
                child(&boxes(&moov, mdia.body.clone()), b"mdhd").map(|b| b.body.clone())
            })
            .and_then(|mdhd| scale_and_duration(&moov[mdhd]));
        if let Some((scale, duration)) = media
            && scale > 0
        {
            longest_secs = longest_secs.max(duration as f64 / f64::from(scale));
        }
    }
    let duration = (longest_secs * f64::from(movie_scale)).ceil() as u64;
    // The duration field: after version/flags and the two times (4 or 8 bytes each) and the
    // timescale.
    let (offset, bytes): (usize, Vec<u8>) = if moov[mvhd.start] == 1 {
        (4 + 16 + 4, duration.to_be_bytes().to_vec())
    } else {
        let d = u32::try_from(duration).map_err(|_| bad("duration beyond 32 bits"))?;
        (4 + 8 + 4, d.to_be_bytes().to_vec())
    };
    f.seek(SeekFrom::Start(moov_at + (mvhd.start + offset) as u64))
        .map_err(StorageError::io(path))?;
    f.write_all(&bytes).map_err(StorageError::io(path))
}

/// The largest `moov` a working copy reads (a day of 30 fps video indexes in a few MiB).
const MAX_MOOV_BYTES: u64 = 256 << 20;

/// (timescale, duration) of an `mvhd` or `mdhd` body.
fn scale_and_duration(body: &[u8]) -> Option<(u32, u64)> {
    if *body.first()? == 1 {
        Some((u32_at(body, 20)?, u64_at(body, 24)?))
    } else {
        Some((u32_at(body, 12)?, u64::from(u32_at(body, 16)?)))
    }
}

/// A number unique within this process.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
