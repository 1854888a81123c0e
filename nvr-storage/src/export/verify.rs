//! `nvr verify BUNDLE.zip`: checks an export offline, with nothing but the bundle and the keys
//! the verifier pinned. The signature of the manifest, the SHA-256 of every file, each recorded
//! segment re-derived from the MP4's bytes against the hash computed at ingest, the hash chain
//! from those segments to a head the recorder signed, and that the bundle holds nothing
//! unlisted: that shows the bundle intact. It shows it comes from the recorder only if the key
//! that signed it is pinned (the bundle carries its own public key, so anyone's recorder can
//! make a bundle that is intact): the [`Verdict`].

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use bytes::Bytes;
use nvr_core::{Stream, VideoCodec, VideoParams};
use ring::digest;
use serde_json::Value;

use super::FORMATS;
use super::zipcheck::check_zip;
use crate::integrity::{ChainLink, canonical_json, chain_head_message, chain_next};
use crate::segment::format::{FLAG_KEY, RECORD_FRAME, RECORD_PARAMS, RecordHeader, encode_params};
use crate::signing::{Fingerprint, TrustedKeys, parse_public_key_pem, verify};
use crate::{frame_index, frame_timing};

/// What a verification concludes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Intact, every signature valid, and signed by a pinned key: it comes from the recorder.
    Authentic,
    /// Intact and validly signed, but by a key that was not pinned: its origin is not
    /// established (anyone can make a recorder and sign a bundle with its key).
    Unpinned,
    /// Altered, incomplete, or signed by another key than the pinned ones.
    Invalid,
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// What was checked and found right, in order.
    pub passed: Vec<String>,
    /// The first failure stops the checks that depend on it; all independent failures are kept.
    pub failures: Vec<String>,
    pub recorder_id: Option<String>,
    /// The key that signed the manifest.
    pub key_fingerprint: Option<Fingerprint>,
    /// Whether that key is one of the pinned keys.
    pub pinned: bool,
}

impl VerifyReport {
    /// Nothing altered or missing, and every signature valid (whoever's key made them).
    pub fn intact(&self) -> bool {
        self.failures.is_empty() && !self.passed.is_empty()
    }

    pub fn verdict(&self) -> Verdict {
        match (self.intact(), self.pinned) {
            (false, _) => Verdict::Invalid,
            (true, true) => Verdict::Authentic,
            (true, false) => Verdict::Unpinned,
        }
    }
}

fn unhex32(v: &Value) -> Option<[u8; 32]> {
    let b = hex::decode(v.as_str()?).ok()?;
    <[u8; 32]>::try_from(b.as_slice()).ok()
}

fn unb64(v: &Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str()?)
        .ok()
}

/// Verifies the bundle at `path` against the keys in `pins` (none: the verdict is at best
/// [`Verdict::Unpinned`]). A bundle signed by a key other than the pinned ones is invalid.
pub fn verify_bundle(path: &Path, pins: &TrustedKeys) -> VerifyReport {
    let mut r = VerifyReport::default();
    if let Err(e) = run(path, &mut r) {
        r.failures.push(e);
    }
    if let Some(fp) = r.key_fingerprint {
        r.pinned = pins.contains(&fp);
        if !r.pinned && !pins.is_empty() {
            let pinned: Vec<String> = pins.keys().iter().map(Fingerprint::to_string).collect();
            r.failures.insert(
                0,
                format!(
                    "signed by key {fp}, which is not a pinned key (pinned: {}); if the recorder's \
                     key was rotated, pin the key it had when the bundle was made (`nvr key \
                     show` on the recorder lists every key)",
                    pinned.join(", ")
                ),
            );
        }
    }
    r
}

fn read_entry(zip: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<Vec<u8>, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|_| format!("{name} is missing from the bundle"))?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)
        .map_err(|e| format!("{name} cannot be read (corrupt): {e}"))?;
    Ok(v)
}

fn run(path: &Path, r: &mut VerifyReport) -> Result<(), String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // The structure first: every size used below is then known to fit in the file.
    let entries = check_zip(&mut file)?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip bundle: {e}"))?;
    let manifest_bytes = read_entry(&mut zip, "manifest.json")?;
    let sig = read_entry(&mut zip, "manifest.sig")?;
    let pem = read_entry(&mut zip, "recorder.pub.pem")?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("manifest.json is not valid JSON: {e}"))?;
    if !FORMATS.iter().any(|f| manifest["format"] == *f) {
        return Err(format!(
            "manifest.json: unknown format {}",
            manifest["format"]
        ));
    }
    // Format 1 predates sub-streams: its entries are main streams.
    let with_sub = manifest["format"] != FORMATS[0];
    let key = std::str::from_utf8(&pem)
        .ok()
        .and_then(parse_public_key_pem)
        .ok_or("recorder.pub.pem is not an Ed25519 public key")?;
    let fp = Fingerprint::of(&key);
    r.key_fingerprint = Some(fp);
    r.recorder_id = manifest["recorder_id"].as_str().map(str::to_owned);
    // Compared as fingerprints: bundles made before the grouped format carried plain hex.
    let named = manifest["key_fingerprint_sha256"]
        .as_str()
        .and_then(|s| Fingerprint::parse(s).ok());
    if named != Some(fp) {
        return Err("recorder.pub.pem is not the key named in manifest.json".into());
    }
    if !verify(&key, &manifest_bytes, &sig) {
        return Err(
            "manifest.sig does not match manifest.json: the manifest was edited, or the signature \
             belongs to another bundle or key"
                .into(),
        );
    }
    if canonical_json(&manifest) != manifest_bytes {
        return Err("manifest.json is not in canonical form".into());
    }
    r.passed.push(format!("manifest.json signed by key {fp}"));

    // Files: every listed file with its hash, and nothing unlisted.
    let listed: Vec<(String, [u8; 32])> = manifest["files"]
        .as_array()
        .ok_or("manifest.json lists no files")?
        .iter()
        .map(|f| {
            Ok((
                f["name"]
                    .as_str()
                    .ok_or("a file without a name")?
                    .to_owned(),
                unhex32(&f["sha256"]).ok_or("a file without a SHA-256")?,
            ))
        })
        .collect::<Result<_, &str>>()?;
    let names: BTreeSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    let in_zip: Vec<String> = zip
        .file_names()
        .map(|n| {
            n.map(|n| n.into_owned())
                .unwrap_or_else(|_| "<unreadable name>".into())
        })
        .collect();
    for n in in_zip {
        if !names.contains(n.as_str()) && n != "manifest.json" && n != "manifest.sig" {
            r.failures
                .push(format!("{n} is in the bundle but not in the manifest"));
        }
    }
    let cameras = manifest["cameras"].as_array().cloned().unwrap_or_default();
    for (name, want) in &listed {
        let camera = cameras
            .iter()
            .find(|c| c["file"].as_str() == Some(name.as_str()));
        let size_bytes = entries
            .iter()
            .find(|e| &e.name == name)
            .map_or(0, |e| e.size_bytes);
        match check_file(&mut zip, name, want, camera, size_bytes) {
            Ok(mut lines) => r.passed.append(&mut lines),
            Err(e) => r.failures.push(e),
        }
    }
    // SHA256SUMS must agree with the manifest (it is what a human checks with sha256sum).
    if let Ok(sums) = read_entry(&mut zip, "SHA256SUMS") {
        let text = String::from_utf8_lossy(&sums);
        for (name, want) in &listed {
            if name != "SHA256SUMS" && !text.contains(&format!("{}  {name}", hex::encode(want))) {
                r.failures.push(format!(
                    "SHA256SUMS disagrees with manifest.json about {name}"
                ));
            }
        }
    }
    for c in &cameras {
        match entry_stream(c, with_sub).and_then(|stream| check_chain(&key, stream, c)) {
            Ok(line) => r.passed.push(line),
            Err(e) => r.failures.push(e),
        }
    }
    Ok(())
}

/// Streams one file, checking its SHA-256 and, for a camera's MP4, rebuilding each segment.
fn check_file(
    zip: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
    want: &[u8; 32],
    camera: Option<&Value>,
    size_bytes: u64,
) -> Result<Vec<String>, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|_| format!("{name} is listed in the manifest but missing from the bundle"))?;
    let mut whole = digest::Context::new(&digest::SHA256);
    let mut stream = TeeReader {
        inner: &mut f,
        sha: &mut whole,
    };
    let mut lines = Vec::new();
    if let Some(c) = camera {
        let head_len = c["mdat_offset"]
            .as_u64()
            .ok_or(format!("{name}: no mdat offset"))?;
        if head_len > size_bytes {
            return Err(format!("{name}: the mdat offset lies beyond the file"));
        }
        // Everything before the video's samples: bounded by the file's size (checked above).
        let mut head = vec![0u8; head_len as usize];
        stream
            .read_exact(&mut head)
            .map_err(|e| format!("{name} is truncated or corrupt: {e}"))?;
        if let Some(line) = super::mp4check::check_header(name, &head, c)? {
            lines.push(line);
        }
        let params = c["video_params"].as_array().cloned().unwrap_or_default();
        for s in c["segments"].as_array().cloned().unwrap_or_default() {
            let id = s["id"].as_i64().unwrap_or(-1);
            let p = params
                .get(s["video_params"].as_u64().unwrap_or(u64::MAX) as usize)
                .ok_or(format!(
                    "{name}: segment {id} names unknown video parameters"
                ))?;
            rebuild_segment(&mut stream, p, &s, size_bytes)
                .map_err(|e| format!("{name}: segment {id}: {e}"))?;
            lines.push(format!(
                "{name}: segment {id} matches the hash recorded at ingest"
            ));
        }
    }
    std::io::copy(&mut stream, &mut std::io::sink())
        .map_err(|e| format!("{name} is corrupt: {e}"))?;
    let got = whole.finish();
    if got.as_ref() != want {
        return Err(format!(
            "{name}: SHA-256 differs from the manifest (the file was altered)"
        ));
    }
    lines.push(format!("{name}: SHA-256 matches"));
    Ok(lines)
}

/// Hashes everything read through it.
struct TeeReader<'a, R: Read> {
    inner: &'a mut R,
    sha: &'a mut digest::Context,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// Rebuilds a segment's plaintext records from its parameters, its frame index and the frame
/// bytes that follow in the MP4, and compares their SHA-256 with the one recorded at ingest.
/// `file_bytes` (the MP4's size) bounds every frame: a frame index naming larger frames is
/// refused before anything is allocated for them.
fn rebuild_segment(
    stream: &mut impl Read,
    p: &Value,
    s: &Value,
    file_bytes: u64,
) -> Result<(), String> {
    let codec = match p["codec"].as_str() {
        Some("h264") => VideoCodec::H264,
        Some("h265") => VideoCodec::H265,
        other => return Err(format!("unknown codec {other:?}")),
    };
    let params = VideoParams {
        codec,
        rfc6381_codec: p["rfc6381_codec"].as_str().unwrap_or("").to_owned(),
        width: p["width"].as_u64().unwrap_or(0) as u16,
        height: p["height"].as_u64().unwrap_or(0) as u16,
        sample_entry: Bytes::from(unb64(&p["sample_entry"]).ok_or("bad sample entry")?),
    };
    let params_record = encode_params(&params);
    let frames = frame_index::decode(&unb64(&s["frame_index"]).ok_or("bad frame index")?)?;
    if frames.first().map(|f| f.data_offset) != Some(16 + params_record.len() as u64 + 16) {
        return Err("frame index does not follow the parameters record".into());
    }
    let want = unhex32(&s["sha256"]).ok_or("no segment hash")?;
    let mut sha = digest::Context::new(&digest::SHA256);
    let header = RecordHeader {
        kind: RECORD_PARAMS,
        flags: 0,
        size_bytes: params_record.len() as u32,
        media_offset_90k: 0,
    };
    sha.update(&header.encode());
    sha.update(&params_record);
    // The records hold presentation times: decode times plus composition offsets (B-frames).
    let offsets = frame_timing::presentation_offsets(
        frames
            .iter()
            .map(|f| (f.duration_90k, f.composition_offset_90k)),
    );
    let mut buf = Vec::new();
    for (f, offset) in frames.iter().zip(offsets) {
        let h = RecordHeader {
            kind: RECORD_FRAME,
            flags: if f.is_key { FLAG_KEY } else { 0 },
            size_bytes: f.size_bytes,
            media_offset_90k: offset,
        };
        sha.update(&h.encode());
        if u64::from(f.size_bytes) > file_bytes {
            return Err(format!(
                "the frame index names a {}-byte frame in a {file_bytes}-byte file",
                f.size_bytes
            ));
        }
        buf.resize(f.size_bytes as usize, 0);
        stream
            .read_exact(&mut buf)
            .map_err(|e| format!("video ends early: {e}"))?;
        sha.update(&buf);
    }
    if sha.finish().as_ref() != want {
        return Err("the video differs from what was recorded (hash mismatch)".into());
    }
    Ok(())
}

/// The stream of a camera entry: `stream` (format 2), main when absent; a format 1 bundle has
/// main streams only.
fn entry_stream(c: &Value, with_sub: bool) -> Result<Stream, String> {
    let id = &c["id"];
    match c.get("stream") {
        None => Ok(Stream::Main),
        Some(Value::String(s)) => match Stream::parse(s) {
            Some(Stream::Main) => Ok(Stream::Main),
            Some(stream) if with_sub => Ok(stream),
            Some(_) => Err(format!(
                "camera {id}: a {s} stream in a bundle of format {}",
                FORMATS[0]
            )),
            None => Err(format!("camera {id}: unknown stream {s:?}")),
        },
        Some(other) => Err(format!("camera {id}: unknown stream {other}")),
    }
}

/// Follows the hash chain of one stream from the exported segments to the signed head.
fn check_chain(key: &[u8; 32], stream: Stream, c: &Value) -> Result<String, String> {
    let id = c["id"].as_i64().ok_or("a camera without an id")?;
    // How messages name it: "3", or "3 sub" for its sub-stream.
    let camera = match stream {
        Stream::Main => id.to_string(),
        s => format!("{id} {s}"),
    };
    let segments = c["segments"].as_array().cloned().unwrap_or_default();
    let first = segments
        .first()
        .ok_or(format!("camera {camera}: no segments"))?;
    let mut chain = unhex32(&first["prev_chain_sha256"]).ok_or("no previous chain value")?;
    let mut last_id = None;
    let link = |v: &Value| -> Option<ChainLink> {
        Some(ChainLink {
            stream,
            segment_id: v["id"].as_i64()?,
            camera_id: id,
            start_90k: v["start_90k"].as_i64()?,
            end_90k: v["end_90k"].as_i64()?,
            frames: v["frames"].as_i64()?,
            sha256: unhex32(&v["sha256"])?,
        })
    };
    for s in &segments {
        let l = link(s).ok_or(format!("camera {camera}: a malformed segment"))?;
        if let Some(prev) = last_id
            && s["prev_segment_id"].as_i64() != Some(prev)
        {
            return Err(format!(
                "camera {camera}: segment {} does not follow segment {prev}",
                l.segment_id
            ));
        }
        if unhex32(&s["prev_chain_sha256"]) != Some(chain) {
            return Err(format!(
                "camera {camera}: chain broken before segment {}",
                l.segment_id
            ));
        }
        chain = chain_next(&chain, &l);
        if unhex32(&s["chain_sha256"]) != Some(chain) {
            return Err(format!(
                "camera {camera}: segment {} does not match its chain value",
                l.segment_id
            ));
        }
        last_id = Some(l.segment_id);
    }
    for v in c["chain_links"].as_array().cloned().unwrap_or_default() {
        let l = link(&v).ok_or(format!("camera {camera}: a malformed chain link"))?;
        chain = chain_next(&chain, &l);
        last_id = Some(l.segment_id);
    }
    let head = &c["chain_head"];
    // The key that signed the head, which the manifest's signature vouches for: the manifest's
    // own, or one the recorder used before a rotation. Bundles from before key rotation name
    // none: the manifest's.
    let head_key = match head.get("public_key") {
        None => *key,
        Some(v) => {
            let pk = unhex32(v).ok_or(format!(
                "camera {camera}: the chain head's public key is malformed"
            ))?;
            let named = head["key_fingerprint"]
                .as_str()
                .and_then(|s| Fingerprint::parse(s).ok());
            if named != Some(Fingerprint::of(&pk)) {
                return Err(format!(
                    "camera {camera}: the chain head's key fingerprint does not match its key"
                ));
            }
            pk
        }
    };
    let head_id = head["segment_id"].as_i64();
    if head_id != last_id || unhex32(&head["chain_sha256"]) != Some(chain) {
        return Err(format!(
            "camera {camera}: the chain does not lead to the signed head"
        ));
    }
    let signed = head["signed_90k"].as_i64().ok_or("no signing time")?;
    let sig = hex::decode(head["signature"].as_str().unwrap_or("")).unwrap_or_default();
    let msg = chain_head_message(stream, id, head_id.unwrap_or(-1), &chain, signed);
    if !verify(&head_key, &msg, &sig) {
        return Err(format!(
            "camera {camera}: the chain head signature is invalid"
        ));
    }
    let by = if head_key == *key {
        String::new()
    } else {
        format!(
            " with its earlier key {} (named in the signed manifest)",
            Fingerprint::of(&head_key)
        )
    };
    Ok(format!(
        "camera {camera}: {} segments chain to a head the recorder signed at {}{by}",
        segments.len(),
        head["signed_at"].as_str().unwrap_or("?")
    ))
}
