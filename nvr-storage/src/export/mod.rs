//! Evidence export: a zip bundle (stored, not compressed) that a court can check offline.
//!
//! ```text
//! README.txt          the signing key's fingerprint, how to get the genuine one out of band,
//!                     and how to verify by hand (sha256sum, openssl) and with `nvr verify`
//! camera-<id>.mp4     lossless remux of every whole segment of the camera's main stream
//!                     overlapping the range; an edit list presents exactly the requested range
//! camera-<id>-sub.mp4 the same of the camera's sub-stream, when it was recorded in the range
//!                     (its own segments and hash chain)
//! player.html         a self-contained player and checker (see `assets/player.html`)
//! audit.json          the audit entries about the exported cameras
//! recorder.pub.pem    the Ed25519 public key that signed the manifest
//! SHA256SUMS          `sha256sum -c` input for every file above
//! manifest.json       canonical JSON: one entry per exported stream of each camera (`stream`:
//!                     main or sub), requested and actual range, gaps, segments with their
//!                     ingest-time hashes and chain links, the signed chain head they lead
//!                     to (with the key that signed it), file hashes, operator, case,
//!                     reason, times, recorder id, key fingerprint, the recorder's clock
//!                     status, each stream's timeline (MP4 position to wall-clock time)
//! manifest.sig        Ed25519 signature of manifest.json (64 raw bytes)
//! ```
//! Whole segments are exported so that `nvr verify` can rebuild each segment's plaintext from
//! the MP4's frames and the manifest's frame index and compare it with the SHA-256 computed when
//! the segment was recorded, chained, and signed within minutes: proof that the video bytes are
//! the ones the camera sent, not only the ones exported. File names inside the bundle come only
//! from camera ids and stream names, never from user input.

mod audit;
pub mod clock;
pub mod files;
mod mp4check;
mod timeline;
pub mod verify;
mod working;
mod zipcheck;

pub use files::{WrittenBundle, write_verified_bundle};

#[cfg(test)]
mod hygiene_tests;
#[cfg(test)]
mod tests;

use std::io::{Seek, Write};
use std::sync::Arc;

use base64::Engine;
use nvr_core::{CameraId, SegmentId, Stream, StreamKey, Time90k};
use ring::digest;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

use crate::db::ChainHeadRow;
use crate::error::IndexContext;
use crate::error::{Result, StorageError};
use crate::frame_index;
use crate::integrity::canonical_json;
use crate::playback::{ViewOptions, view_with};
use crate::signing::Fingerprint;
use crate::store::Store;

/// Identifies the bundle layout. 2 added the time track and ONVIF metadata in the MP4s,
/// player.html, the timeline and the clocks in the manifest, and sub-streams (`stream` in each
/// camera entry; absent in format 1, where every entry is a main stream).
pub const FORMAT: &str = "nvr-export/2";
/// Every layout `nvr verify` reads: this one and the one before.
pub const FORMATS: [&str; 2] = ["nvr-export/1", FORMAT];

/// The bundle's player (`player.html`): plain HTML, CSS and JavaScript in one file, compiled in.
pub const PLAYER_HTML: &str = include_str!("../../assets/player.html");
/// The longest range one export may cover.
pub const MAX_EXPORT_SECS: i64 = 24 * 3600;

/// What to export and why.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub cameras: Vec<CameraId>,
    pub start: Time90k,
    pub end: Time90k,
    pub case_ref: String,
    pub reason: String,
    /// Who exports: a username or `cli:<user>`.
    pub operator: String,
    /// The export's id in the index, once recorded: its own audit entries go in the bundle.
    pub export_id: Option<i64>,
    /// Also write each camera's working copy (the time burnt into the picture) with this.
    pub working_copy: Option<WorkingCopyMaker>,
}

/// Makes a working copy: `(exported MP4, output path)`, the output re-encoded with the
/// recording time (the MP4's time track) in the picture. Storage does no decoding itself: the
/// application layer passes one built on GStreamer (`nvr_media::burn_in_time`).
/// `(input, output) -> Ok or why not`.
pub type MakeWorkingCopy =
    dyn Fn(&std::path::Path, &std::path::Path) -> std::result::Result<(), String> + Send + Sync;

#[derive(Clone)]
pub struct WorkingCopyMaker(pub Arc<MakeWorkingCopy>);

impl std::fmt::Debug for WorkingCopyMaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkingCopyMaker")
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    pub bytes: u64,
    pub files: Vec<(String, [u8; 32], u64)>,
    /// Frames presented per exported stream (what a player shows of the requested range).
    pub frames_presented: Vec<(StreamKey, u64)>,
    /// The key that signed the bundle.
    pub key_fingerprint: Fingerprint,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A writer that hashes and counts what passes through it.
struct Hashing<'a, W: Write> {
    inner: &'a mut W,
    sha: digest::Context,
    bytes: u64,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn zip_err(e: zip::result::ZipError) -> StorageError {
    StorageError::Format(format!("writing the bundle: {e}"))
}

fn io_err(e: std::io::Error) -> StorageError {
    StorageError::Io {
        path: "export bundle".into(),
        source: e,
    }
}

/// Checks an export request against the limits; returns a clear error.
pub fn validate(req: &ExportRequest) -> Result<()> {
    if req.cameras.is_empty() {
        return Err(StorageError::InvalidArgument(
            "an export needs at least one camera".into(),
        ));
    }
    if req.end <= req.start {
        return Err(StorageError::InvalidArgument(
            "the export range is empty".into(),
        ));
    }
    if (req.end - req.start).0 > MAX_EXPORT_SECS * 90_000 {
        return Err(StorageError::InvalidArgument(
            "an export covers at most 24 hours".into(),
        ));
    }
    for (what, v) in [("case reference", &req.case_ref), ("reason", &req.reason)] {
        if v.chars().count() > 1000 || v.chars().any(|c| c.is_control() && c != '\n') {
            return Err(StorageError::InvalidArgument(format!(
                "the {what} must be at most 1000 characters without control characters"
            )));
        }
    }
    if req.reason.trim().is_empty() {
        return Err(StorageError::InvalidArgument(
            "an export needs a reason".into(),
        ));
    }
    Ok(())
}

/// Writes the bundle for `req` to `out`. `progress(done, total)` is called as bytes are written.
/// Blocking; reads the segments as it goes (never the whole clip in memory).
pub fn write_bundle<W: Write + Seek>(
    store: &Arc<Store>,
    req: &ExportRequest,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExportSummary> {
    validate(req)?;
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut zip = zip::ZipWriter::new(out);
    let mut files: Vec<(String, [u8; 32], u64)> = Vec::new();
    fn add<W: Write + Seek>(
        zip: &mut zip::ZipWriter<W>,
        files: &mut Vec<(String, [u8; 32], u64)>,
        opts: SimpleFileOptions,
        name: &str,
        data: &[u8],
    ) -> Result<()> {
        zip.start_file(name, opts).map_err(zip_err)?;
        zip.write_all(data).map_err(io_err)?;
        let mut sha = [0u8; 32];
        sha.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
        files.push((name.to_owned(), sha, data.len() as u64));
        Ok(())
    }

    // Plan every camera first, so progress knows the total and errors come before writing.
    let view_opts = ViewOptions {
        whole_segments: true,
        sealed_only: true,
    };
    let recorder_id = store.recorder_id()?;
    let exported_at = store.clock().realtime();
    // Every recorded stream of each camera: a camera needs footage of one of them.
    let mut views = Vec::new();
    for &camera in &req.cameras {
        let row = store
            .db()
            .camera(camera)
            .context(|| format!("reading camera {camera} (cameras, streams)"))?
            .ok_or_else(|| StorageError::NotFound(format!("camera {camera}")))?;
        let mut found = false;
        for stream in Stream::ALL.into_iter().filter(|&s| row.has_stream_row(s)) {
            let view = match view_with(store, camera.stream(stream), req.start, req.end, view_opts)
            {
                Ok(view) => view,
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            found = true;
            // The video as it was recorded, plus the time track and the ONVIF metadata.
            let spans = view.wall_spans();
            let extras = timeline::extras(
                &spans,
                &timeline::Source {
                    recorder_id: &recorder_id,
                    exported_at,
                    operator: &req.operator,
                    camera_name: &row.name,
                    camera_url: row.stream_url(stream).unwrap_or_default(),
                    first_frame: view.first_frame_wall,
                    presented_start: view.start,
                },
            );
            let mp4_json = timeline::mp4_json(&extras);
            let view = view.with_extras(extras)?;
            views.push((row.clone(), stream, view, spans, mp4_json));
        }
        if !found {
            return Err(StorageError::NotFound(format!(
                "sealed recordings of camera {:?} between {} and {}",
                row.name, req.start, req.end
            )));
        }
    }
    let total: u64 = views.iter().map(|(_, _, v, _, _)| v.mp4.len()).sum();
    let mut done = 0u64;
    progress(done, total);

    // One key signs the whole bundle, even if the recorder's key is rotated meanwhile.
    let key = store.signing_key();
    add(
        &mut zip,
        &mut files,
        opts,
        "README.txt",
        readme(&key.fingerprint()).as_bytes(),
    )?;
    add(
        &mut zip,
        &mut files,
        opts,
        "player.html",
        PLAYER_HTML.as_bytes(),
    )?;
    let mut cameras_json = Vec::new();
    let mut frames_presented = Vec::new();
    for (row, stream, view, spans, mp4_json) in &views {
        let name = match stream {
            Stream::Main => format!("camera-{}.mp4", row.id),
            s => format!("camera-{}-{s}.mp4", row.id),
        };
        zip.start_file(name.as_str(), opts).map_err(zip_err)?;
        let mut h = Hashing {
            inner: &mut zip,
            sha: digest::Context::new(&digest::SHA256),
            bytes: 0,
        };
        for piece in view.mp4.pieces(0..view.mp4.len(), view.reader.clone()) {
            let piece =
                piece.map_err(|e| StorageError::Format(format!("camera {}: {e}", row.id)))?;
            h.write_all(&piece).map_err(io_err)?;
            done += piece.len() as u64;
            progress(done, total);
        }
        let (sha, bytes) = {
            let mut a = [0u8; 32];
            a.copy_from_slice(h.sha.finish().as_ref());
            (a, h.bytes)
        };
        files.push((name.clone(), sha, bytes));
        frames_presented.push((row.id.stream(*stream), view.frames_presented));
        let mut c = camera_manifest(
            store,
            row,
            *stream,
            view,
            &ManifestFile {
                name: &name,
                sha256: &sha,
                bytes,
            },
            req,
        )?;
        c["timeline"] = timeline::timeline_json(spans);
        c["mp4"] = mp4_json.clone();
        c["camera_clock"] = clock::camera_clock_json(
            store
                .db()
                .stream_clock(row.id.stream(*stream))
                .context(|| format!("reading the camera clock of camera {} (streams)", row.id))?,
        );
        if let (Some(maker), Stream::Main) = (&req.working_copy, stream) {
            let name = format!("camera-{}-working.mp4", row.id);
            let (sha, bytes, json) =
                working::add_working_copy(store, &mut zip, opts, maker, &name, view)?;
            files.push((name, sha, bytes));
            c["working_copy"] = json;
        }
        cameras_json.push(c);
    }

    let audit = audit::audit_json(store, &req.cameras, req.export_id, req.start, req.end)?;
    add(&mut zip, &mut files, opts, "audit.json", &audit)?;
    add(
        &mut zip,
        &mut files,
        opts,
        "recorder.pub.pem",
        key.public_key_pem().as_bytes(),
    )?;
    let sums: String = files
        .iter()
        .map(|(n, s, _)| format!("{}  {n}\n", hex::encode(s)))
        .collect();
    add(&mut zip, &mut files, opts, "SHA256SUMS", sums.as_bytes())?;

    let manifest = json!({
        "format": FORMAT,
        "software": {"name": "nvr", "version": env!("CARGO_PKG_VERSION")},
        "recorder_id": recorder_id,
        "key_fingerprint_sha256": key.fingerprint().to_string(),
        "exported_at": exported_at.to_rfc3339(),
        "export_id": req.export_id,
        "recorder_clock": clock::recorder_clock_json(clock::kernel_clock()),
        "operator": req.operator,
        "case": req.case_ref,
        "reason": req.reason,
        "requested": {"start": req.start.to_rfc3339(), "end": req.end.to_rfc3339(),
                      "start_90k": req.start.0, "end_90k": req.end.0},
        "cameras": cameras_json,
        "files": files.iter().map(|(n, s, b)| json!({"name": n, "sha256": hex::encode(s), "bytes": b})).collect::<Vec<_>>(),
    });
    let manifest = canonical_json(&manifest);
    add(&mut zip, &mut files, opts, "manifest.json", &manifest)?;
    let sig = key.sign(&manifest);
    zip.start_file("manifest.sig", opts).map_err(zip_err)?;
    zip.write_all(&sig).map_err(io_err)?;
    zip.finish().map_err(zip_err)?;
    progress(total, total);
    Ok(ExportSummary {
        bytes: total,
        files,
        frames_presented,
        key_fingerprint: key.fingerprint(),
    })
}

/// A file written into the bundle.
struct ManifestFile<'a> {
    name: &'a str,
    sha256: &'a [u8; 32],
    bytes: u64,
}

/// The manifest entry of one stream of a camera.
fn camera_manifest(
    store: &Arc<Store>,
    row: &crate::db::CameraRow,
    stream: Stream,
    view: &crate::playback::View,
    file: &ManifestFile<'_>,
    req: &ExportRequest,
) -> Result<Value> {
    let mut params_ids: Vec<i64> = Vec::new();
    let mut params_json = Vec::new();
    let mut segments = Vec::new();
    let mut gaps = Vec::new();
    let mut prev_end: Option<i64> = None;
    let mut last_id = SegmentId(0);
    let mut frames_in_file = 0u64;
    for vs in &view.segments {
        let seg = store
            .db()
            .segment(vs.id)
            .context(|| format!("reading segment {} (segments)", vs.id))?
            .ok_or_else(|| StorageError::NotFound(format!("segment {}", vs.id)))?;
        let (Some(seg_sha), Some(chain), Some(prev_chain)) =
            (seg.sha256, seg.chain_sha256, seg.prev_chain_sha256)
        else {
            return Err(StorageError::InvalidArgument(format!(
                "segment {} was recorded before the hash chain existed and cannot be exported with proof",
                seg.id
            )));
        };
        let p = match params_ids.iter().position(|&p| p == vs.video_params_id) {
            Some(i) => i,
            None => {
                let vp = store.db().video_params(vs.video_params_id).context(|| {
                    format!(
                        "reading video parameters {} (video_params)",
                        vs.video_params_id
                    )
                })?;
                params_json.push(json!({
                    "codec": vp.codec.name(),
                    "rfc6381_codec": vp.rfc6381_codec,
                    "width": vp.width,
                    "height": vp.height,
                    "sample_entry": b64(&vp.sample_entry),
                }));
                params_ids.push(vs.video_params_id);
                params_ids.len() - 1
            }
        };
        if let Some(pe) = prev_end
            && seg.start_90k > pe
        {
            gaps.push(json!({"start": Time90k(pe).to_rfc3339(), "end": Time90k(seg.start_90k).to_rfc3339()}));
        }
        prev_end = Some(seg.end_90k);
        last_id = seg.id;
        frames_in_file += vs.frame_range.len() as u64;
        let first_record = vs.frames.first().map_or(0, |f| f.data_offset - 16);
        segments.push(json!({
            "id": seg.id.0,
            "start": Time90k(seg.start_90k).to_rfc3339(),
            "end": Time90k(seg.end_90k).to_rfc3339(),
            "start_90k": seg.start_90k,
            "end_90k": seg.end_90k,
            "frames": seg.frames,
            "video_params": p,
            "frame_index": b64(&frame_index::encode(first_record, &vs.frames)),
            "sha256": hex::encode(seg_sha),
            "prev_segment_id": seg.prev_segment_id.map(|s| s.0),
            "prev_chain_sha256": hex::encode(prev_chain),
            "chain_sha256": hex::encode(chain),
        }));
    }
    let (head, links) = attestation(store, row.id.stream(stream), last_id)?;
    // The key that signed the head: the bundle's own, or one used before a rotation.
    let keys = store.signing_key_history()?;
    let head_key = head
        .signing_key_id
        .and_then(|id| keys.iter().find(|k| k.id == id))
        .or(keys.first())
        .ok_or_else(|| StorageError::Key(format!("chain head {} names no known key", head.id)))?;
    Ok(json!({
        "id": row.id.0,
        "stream": stream.as_str(),
        "name": row.name,
        "url": row.stream_url(stream),
        "file": file.name,
        "file_sha256": hex::encode(file.sha256),
        "file_bytes": file.bytes,
        "mdat_offset": view.mp4.mdat_payload_range().start,
        "actual": {"start": view.start.to_rfc3339(), "end": view.end.to_rfc3339()},
        "frames_in_file": frames_in_file,
        "frames_presented": view.frames_presented,
        "note": "The file holds every whole segment overlapping the requested range, so each segment's ingest-time hash can be re-derived; an edit list makes players show only the requested range. A start between key frames begins decoding at the key frame before it.",
        "requested_in_file": {"start": req.start.to_rfc3339(), "end": req.end.to_rfc3339()},
        "gaps": gaps,
        "video_params": params_json,
        "segments": segments,
        "chain_head": {
            "segment_id": head.segment_id.0,
            "chain_sha256": hex::encode(head.chain_sha256),
            "signed_at": Time90k(head.signed_90k).to_rfc3339(),
            "signed_90k": head.signed_90k,
            "signature": hex::encode(&head.signature),
            // The manifest's signature vouches for this key: it is the manifest's own key, or
            // one the recorder used before a rotation.
            "key_fingerprint": head_key.fingerprint().to_string(),
            "public_key": hex::encode(head_key.public_key),
        },
        "chain_links": links,
    }))
}

/// The earliest signed chain head of `stream` at or after `last` whose links back to `last` all
/// still exist, with those links; or a head signed now at `last` itself.
fn attestation(
    store: &Arc<Store>,
    stream: StreamKey,
    last: SegmentId,
) -> Result<(ChainHeadRow, Vec<Value>)> {
    store.sign_chain_head(stream)?;
    if let Some(head) = store
        .db()
        .first_chain_head_at_or_after(stream, last)
        .context(|| format!("reading the chain head after segment {last} (chain_heads)"))?
    {
        let rows = store
            .db()
            .chain_rows(stream, SegmentId(last.0 + 1), head.segment_id)
            .context(|| {
                format!("reading the hash chain of {stream} after segment {last} (segments)")
            })?;
        let mut prev = last;
        let mut ok = true;
        for r in &rows {
            ok &= r.prev_segment_id == Some(prev) && r.chain_sha256.is_some();
            prev = r.id;
        }
        if ok && prev == head.segment_id {
            let links = rows
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id.0, "start_90k": r.start_90k, "end_90k": r.end_90k,
                        "frames": r.frames, "sha256": hex::encode(r.sha256),
                    })
                })
                .collect();
            return Ok((head, links));
        }
    }
    // The segments between were deleted (held footage outlived its successors): attest now.
    let seg = store
        .db()
        .segment(last)
        .context(|| format!("reading segment {last} (segments)"))?
        .ok_or_else(|| StorageError::NotFound(format!("segment {last}")))?;
    let chain = seg
        .chain_sha256
        .ok_or_else(|| StorageError::InvalidArgument(format!("segment {last} has no chain")))?;
    let now = store.clock().realtime().0;
    let key = store.signing_key();
    let sig = key.sign(&crate::integrity::chain_head_message(
        stream.stream,
        stream.camera.0,
        last.0,
        &chain,
        now,
    ));
    let id = store
        .db()
        .insert_chain_head(stream, last, &chain, now, &sig, key.id())
        .context(|| {
            format!("signing the chain head of {stream} at segment {last} (chain_heads)")
        })?;
    Ok((
        ChainHeadRow {
            id,
            camera_id: stream.camera,
            stream: stream.stream,
            segment_id: last,
            chain_sha256: chain,
            signed_90k: now,
            signature: sig.to_vec(),
            signing_key_id: Some(key.id()),
        },
        Vec::new(),
    ))
}

/// How to check a bundle by hand; `fingerprint` is the key that signed it.
fn readme(fingerprint: &Fingerprint) -> String {
    README.replace("{FINGERPRINT}", &fingerprint.to_string())
}

/// The text of README.txt, `{FINGERPRINT}` standing for the signing key's fingerprint.
const README: &str = "\
Evidence export of an nvr network video recorder
================================================

This archive holds video exported from the recorder, unchanged (no re-encoding), with the
information needed to check it without the recorder and without a network.

It is signed by the key with the fingerprint

    {FINGERPRINT}

A valid signature only shows that nothing changed since that key signed it. Anyone can make a
recorder with a key of their own, so the bundle comes from the recorder only if that key is
the recorder's: see step 3.

Files
  camera-<id>.mp4    the video of each camera, as the camera sent it (plays in VLC, ffplay,
                     most players); the recording time (UTC) is a subtitle track that players
                     show over the picture (in VLC: Subtitle > Sub Track)
  camera-<id>-sub.mp4  the camera's low-resolution second stream, when it was recorded
  player.html        a player and checker that needs nothing but a web browser (see 0.)
  manifest.json      what was exported, by whom, why, the SHA-256 of every file, when each
                     part of each video was recorded, and the recorder's clock
  manifest.sig       the recorder's Ed25519 signature of manifest.json
  recorder.pub.pem   the public key that signed manifest.json
  SHA256SUMS         the SHA-256 of every file, for sha256sum
  audit.json         the recorder's audit log entries about this export and this footage

0. Without installing anything: unpack this archive into a folder, open player.html in a
   web browser (Chromium, Chrome, Edge or Firefox; no network is used) and choose that
   folder. It checks every file against the manifest and the manifest's signature (steps 1
   and 2 below), shows the signing key's fingerprint to compare (step 3), and plays the
   cameras together with the recording time over each picture and the gaps on a timeline.
   A browser without Ed25519 signatures says so: then use steps 1 to 4.

1. Check that no file was altered (any Linux or macOS shell):
     sha256sum -c SHA256SUMS
   Every line must say OK. The same hashes are listed in manifest.json under \"files\".

2. Check the signature of the manifest (OpenSSL 3 or later):
     openssl pkeyutl -verify -pubin -inkey recorder.pub.pem -rawin \\
         -in manifest.json -sigfile manifest.sig
   It must print \"Signature Verified Successfully\".

3. Check that the key is the recorder's. Do not take the fingerprint from this archive: ask
   the recorder's administrator for it, through a channel you trust (in person, a phone call
   to a number you know, a signed letter). The administrator reads it on the Status page of
   the recorder's web interface (\"Evidence signing key\") or with `nvr key show` on the
   recorder; if the recorder's key was changed since (`nvr key rotate`), both list every key it
   has used, with the dates it was in use. Compare it character by character with the
   fingerprint above (also in manifest.json, \"key_fingerprint_sha256\"). It is the SHA-256 of
   the raw 32-byte public key, so it can also be computed from recorder.pub.pem:
     openssl pkey -pubin -in recorder.pub.pem -outform DER | tail -c 32 | sha256sum
   (the same 64 hex digits, without the SHA256: prefix and the dashes).

4. With the nvr program (no data directory or network needed), all of the above and more:
     nvr verify --expect-key {FINGERPRINT} this-file.zip
   giving the fingerprint the administrator told you (or --trusted-keys FILE with one
   fingerprint per line). It exits 0 only if the bundle is intact and signed by that key; 3 if
   it is intact but signed by a key you did not pin (its origin is not established); 1 if it
   is not intact or signed by another key than the one you pinned. It also rebuilds each
   recorded segment from the video in the MP4 and checks it against the SHA-256 the recorder
   computed while recording, and follows the recorder's hash chain to a head it signed shortly
   after recording: proof that the video is what the camera sent.

Times in manifest.json are UTC (RFC 3339), as the recorder's clock kept them; \"recorder_clock\"
says whether that clock was synchronised when the bundle was made. Each MP4 holds whole
recorded segments around the requested range; an edit list makes players show only the
requested range. \"gaps\" lists times within the range when the camera was not recorded (the
MP4 skips them: its subtitle time jumps there). Each MP4 also carries the ONVIF Export File
Format's 'suep' and 'cstb' boxes: the exporting unit, operator, camera name and address, and
the absolute start time of each track.
";
