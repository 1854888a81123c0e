//! Evidence export: a zip bundle (stored, not compressed) that a court can check offline.
//!
//! ```text
//! README.txt          how to verify by hand (sha256sum, openssl) and with `nvr verify`
//! camera-<id>.mp4     lossless remux of every whole segment of the camera's main stream
//!                     overlapping the range; an edit list presents exactly the requested range
//! camera-<id>-sub.mp4 the same of the camera's sub-stream, when it was recorded in the range
//!                     (its own segments and hash chain)
//! audit.json          the audit entries about the exported cameras
//! recorder.pub.pem    the recorder's Ed25519 public key
//! SHA256SUMS          `sha256sum -c` input for every file above
//! manifest.json       canonical JSON: one entry per exported stream of each camera (`stream`:
//!                     main or sub), requested and actual range, gaps, segments with their
//!                     ingest-time hashes and chain links, the signed chain head they lead
//!                     to, file hashes, operator, case, reason, times, recorder id, key
//! manifest.sig        Ed25519 signature of manifest.json (64 raw bytes)
//! ```
//! Whole segments are exported so that `nvr verify` can rebuild each segment's plaintext from
//! the MP4's frames and the manifest's frame index and compare it with the SHA-256 computed when
//! the segment was recorded, chained, and signed within minutes: proof that the video bytes are
//! the ones the camera sent, not only the ones exported. File names inside the bundle come only
//! from camera ids and stream names, never from user input. A bundle with a sub-stream is
//! format 2 ([`FORMAT_WITH_SUB`]), so a verifier that predates sub-streams refuses it by name
//! instead of failing its chain; one without is format 1 as before.

pub mod files;
pub mod verify;

pub use files::{WrittenBundle, write_verified_bundle};

#[cfg(test)]
mod tests;

use std::io::{Seek, Write};
use std::sync::Arc;

use base64::Engine;
use nvr_core::{CameraId, SegmentId, Stream, StreamKey, Time90k};
use ring::digest;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

use crate::db::{AuditFilter, ChainHeadRow};
use crate::error::{Result, StorageError};
use crate::frame_index;
use crate::integrity::canonical_json;
use crate::playback::{ViewOptions, view_with};
use crate::store::Store;

/// Identifies the bundle layout; `nvr verify` refuses others.
pub const FORMAT: &str = "nvr-export/1";
/// The layout of a bundle that holds a sub-stream: as [`FORMAT`], with `stream` in each camera
/// entry.
pub const FORMAT_WITH_SUB: &str = "nvr-export/2";
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
}

/// What was written.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    pub bytes: u64,
    pub files: Vec<(String, [u8; 32], u64)>,
    /// Frames presented per exported stream (what a player shows of the requested range).
    pub frames_presented: Vec<(StreamKey, u64)>,
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
    // Every recorded stream of each camera: a camera needs footage of one of them.
    let mut views = Vec::new();
    for &camera in &req.cameras {
        let row = store
            .db()
            .camera(camera)?
            .ok_or_else(|| StorageError::NotFound(format!("camera {camera}")))?;
        let mut found = false;
        for stream in Stream::ALL.into_iter().filter(|&s| row.has_stream_row(s)) {
            match view_with(store, camera.stream(stream), req.start, req.end, view_opts) {
                Ok(view) => {
                    views.push((row.clone(), stream, view));
                    found = true;
                }
                Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !found {
            return Err(StorageError::NotFound(format!(
                "sealed recordings of camera {:?} between {} and {}",
                row.name, req.start, req.end
            )));
        }
    }
    let total: u64 = views.iter().map(|(_, _, v)| v.mp4.len()).sum();
    let mut done = 0u64;
    progress(done, total);

    add(&mut zip, &mut files, opts, "README.txt", README.as_bytes())?;
    let mut cameras_json = Vec::new();
    let mut frames_presented = Vec::new();
    for (row, stream, view) in &views {
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
        cameras_json.push(camera_manifest(
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
        )?);
    }
    let with_sub = views.iter().any(|(_, s, _)| *s != Stream::Main);

    let audit = audit_json(store, &req.cameras)?;
    add(&mut zip, &mut files, opts, "audit.json", &audit)?;
    let key = store.signing_key();
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
        "format": if with_sub { FORMAT_WITH_SUB } else { FORMAT },
        "software": {"name": "nvr", "version": env!("CARGO_PKG_VERSION")},
        "recorder_id": store.recorder_id()?,
        "key_fingerprint_sha256": key.fingerprint(),
        "exported_at": store.clock().realtime().to_rfc3339(),
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
            .segment(vs.id)?
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
                let vp = store.db().video_params(vs.video_params_id)?;
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
    if let Some(head) = store.db().first_chain_head_at_or_after(stream, last)? {
        let rows = store
            .db()
            .chain_rows(stream, SegmentId(last.0 + 1), head.segment_id)?;
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
        .segment(last)?
        .ok_or_else(|| StorageError::NotFound(format!("segment {last}")))?;
    let chain = seg
        .chain_sha256
        .ok_or_else(|| StorageError::InvalidArgument(format!("segment {last} has no chain")))?;
    let now = store.clock().realtime().0;
    let sig = store
        .signing_key()
        .sign(&crate::integrity::chain_head_message(
            stream.stream,
            stream.camera.0,
            last.0,
            &chain,
            now,
        ));
    let id = store
        .db()
        .insert_chain_head(stream, last, &chain, now, &sig)?;
    Ok((
        ChainHeadRow {
            id,
            camera_id: stream.camera,
            stream: stream.stream,
            segment_id: last,
            chain_sha256: chain,
            signed_90k: now,
            signature: sig.to_vec(),
        },
        Vec::new(),
    ))
}

/// The audit entries about the exported cameras (retention bookkeeping left out), oldest first.
fn audit_json(store: &Arc<Store>, cameras: &[CameraId]) -> Result<Vec<u8>> {
    let mut entries = Vec::new();
    for c in cameras {
        let f = AuditFilter {
            object: Some(format!("camera:{c}")),
            limit: 10_000,
            ..Default::default()
        };
        for e in store.db().audit_list(&f)? {
            if e.action == crate::db::RETENTION_DELETE_ACTION {
                continue;
            }
            entries.push(json!({
                "id": e.id, "time": Time90k(e.time_90k).to_rfc3339(), "actor": e.actor,
                "action": e.action, "object": e.object,
                "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
                "prev_sha256": hex::encode(&e.prev_sha256), "sha256": hex::encode(&e.sha256),
            }));
        }
    }
    entries.sort_by_key(|e| e["id"].as_i64());
    Ok(canonical_json(&Value::Array(entries)))
}

/// How to check a bundle by hand.
const README: &str = "\
Evidence export of an nvr network video recorder
================================================

This archive holds video exported from the recorder, unchanged (no re-encoding), with the
information needed to check it without the recorder and without a network.

Files
  camera-<id>.mp4    the video of each camera (plays in VLC, ffplay, most players)
  camera-<id>-sub.mp4  the camera's low-resolution second stream, when it was recorded
  manifest.json      what was exported, by whom, why, and the SHA-256 of every file
  manifest.sig       the recorder's Ed25519 signature of manifest.json
  recorder.pub.pem   the recorder's public key
  SHA256SUMS         the SHA-256 of every file, for sha256sum
  audit.json         the recorder's audit log entries about these cameras

1. Check that no file was altered (any Linux or macOS shell):
     sha256sum -c SHA256SUMS
   Every line must say OK. The same hashes are listed in manifest.json under \"files\".

2. Check the signature of the manifest (OpenSSL 3 or later):
     openssl pkeyutl -verify -pubin -inkey recorder.pub.pem -rawin \\
         -in manifest.json -sigfile manifest.sig
   It must print \"Signature Verified Successfully\".

3. Check that the key is the recorder's: compare the key fingerprint in manifest.json
   (\"key_fingerprint_sha256\", the SHA-256 of the raw 32-byte public key) with the one the
   recorder's operator publishes (the status page of the recorder shows it).

4. With the nvr program (no data directory or network needed), all of the above and more:
     nvr verify this-file.zip
   It also rebuilds each recorded segment from the video in the MP4 and checks it against the
   SHA-256 the recorder computed while recording, and follows the recorder's hash chain to a
   head it signed shortly after recording: proof that the video is what the camera sent.

Times in manifest.json are UTC (RFC 3339). Each MP4 holds whole recorded segments around the
requested range; an edit list makes players show only the requested range. \"gaps\" lists times
within the range when the camera was not recorded.
";
