//! Key pinning end to end: `nvr verify` exits 0 only for a bundle signed by a pinned key (3 for
//! an intact bundle signed by a key nobody pinned, 1 for an altered one or another key than
//! the pinned); a bundle re-signed with a second recorder's key is caught by the pin; the
//! fingerprint is one string in `nvr init`, `nvr key show`, `/api/status` and the bundle; and
//! after `nvr key rotate` old bundles and old chain heads still verify while new exports are
//! signed by the new key.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::*;
use nvr_storage::signing::RecorderKey;

/// Extracts one entry of a zip bundle.
fn entry(zip: &Path, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).expect("open")).expect("zip");
    let mut v = Vec::new();
    z.by_name(name)
        .expect("entry")
        .read_to_end(&mut v)
        .expect("read");
    v
}

/// Copies the bundle `src` to `dst` with some entries replaced.
fn replace_entries(src: &Path, dst: &Path, new: &[(&str, Vec<u8>)]) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).expect("open")).expect("zip");
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).expect("create"));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).expect("entry");
        let name = f.name().expect("name").into_owned();
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read");
        if let Some((_, d)) = new.iter().find(|(n, _)| *n == name) {
            data = d.clone();
        }
        zout.start_file(name.as_str(), opts).expect("start");
        zout.write_all(&data).expect("write");
    }
    zout.finish().expect("finish");
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// What a forger with a recorder of their own does: the bundle `src` re-signed with the key of
/// data directory `other` (recorder.pub.pem replaced, the manifest naming that key, the file
/// hashes that changed updated, manifest.sig made anew), written to `dst`.
fn resign_with(src: &Path, dst: &Path, other: &Path) {
    let key = RecorderKey::load(&other.join("signing.key")).expect("the other recorder's key");
    let pem = key.public_key_pem().into_bytes();
    let sums = String::from_utf8(entry(src, "SHA256SUMS"))
        .expect("utf8")
        .replace(
            &sha256_hex(&entry(src, "recorder.pub.pem")),
            &sha256_hex(&pem),
        )
        .into_bytes();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&entry(src, "manifest.json")).expect("json");
    manifest["key_fingerprint_sha256"] = key.fingerprint().to_string().into();
    for f in manifest["files"].as_array_mut().expect("files") {
        let data = match f["name"].as_str() {
            Some("recorder.pub.pem") => &pem,
            Some("SHA256SUMS") => &sums,
            _ => continue,
        };
        f["sha256"] = sha256_hex(data).into();
        f["bytes"] = data.len().into();
    }
    let manifest = nvr_storage::integrity::canonical_json(&manifest);
    let sig = key.sign(&manifest).to_vec();
    replace_entries(
        src,
        dst,
        &[
            ("recorder.pub.pem", pem),
            ("SHA256SUMS", sums),
            ("manifest.json", manifest),
            ("manifest.sig", sig),
        ],
    );
}

/// Serves `rec` with short segments and waits for 12 s of recording; returns its first 4 s.
fn record_a_little(rec: &mut Recorder) -> (String, String) {
    rec.serve(&["--segment-duration-secs", "2"]);
    let admin = rec.client();
    let run = wait_for(Duration::from_secs(120), "12 s of recording", || {
        admin.runs(1).into_iter().find(|r| {
            secs_between(
                r["start"].as_str().unwrap_or(""),
                r["end"].as_str().unwrap_or(""),
            ) >= 12.0
        })
    });
    let start = parse_rfc3339(run["start"].as_str().expect("start")).ceil() as i64;
    (rfc3339(start), rfc3339(start + 4))
}

/// `nvr export` of camera `cam` over `range` into `out`.
fn export(rec: &Recorder, range: &(String, String), out: &Path) {
    let (code, text) = nvr(
        &[
            "export",
            "--data-dir",
            rec.d(),
            "--camera",
            "cam",
            "--start",
            &range.0,
            "--end",
            &range.1,
            "--out",
            out.to_str().expect("utf8"),
        ],
        None,
    );
    assert_eq!(code, 0, "{text}");
}

/// `nvr verify EXTRA... BUNDLE`.
fn verify(bundle: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    args.push(bundle.to_str().expect("utf8"));
    nvr(&args, None)
}

#[test]
fn a_bundle_verifies_only_with_its_key_pinned_and_a_re_signed_one_fails_the_pin() {
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    let tmp = tempfile::tempdir().expect("tempdir");

    // One string everywhere: `nvr init`, `nvr key show`, the status API.
    let key = fingerprint_after(&rec.init_output, "evidence signing key: ");
    assert!(key.starts_with("SHA256:"), "{}", rec.init_output);
    assert_eq!(rec.key_fingerprint(), key);
    let range = record_a_little(&mut rec);
    let status = rec.client().get("/api/status", &[]).json();
    assert_eq!(status["signing_key_fingerprint"], key.as_str(), "{status}");
    assert_eq!(status["signing_keys"][0]["fingerprint"], key.as_str());
    assert_eq!(status["signing_keys"][0]["current"], true);

    let genuine = tmp.path().join("genuine.zip");
    export(&rec, &range, &genuine);
    // The bundle names the key the same way, and says how to get the genuine one.
    let readme = String::from_utf8(entry(&genuine, "README.txt")).expect("utf8");
    assert!(readme.contains(&key), "{readme}");
    assert!(
        readme.contains("Status page") && readme.contains("nvr key show"),
        "{readme}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry(&genuine, "manifest.json")).expect("json");
    assert_eq!(manifest["key_fingerprint_sha256"], key.as_str());

    // Without a pin: intact, origin not established, exit 3, and how to pin.
    let (code, out) = verify(&genuine, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&key) && out.contains("origin is not established"),
        "{out}"
    );
    assert!(out.contains(&format!("--expect-key {key}")), "{out}");
    assert!(!out.contains("VALID:"), "{out}");

    // Pinned: exit 0, in any spelling of the fingerprint, or from a trusted-keys file.
    let (code, out) = verify(&genuine, &["--expect-key", &key]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VALID"), "{out}");
    let plain = key
        .trim_start_matches("SHA256:")
        .replace('-', "")
        .to_uppercase();
    let (code, out) = verify(&genuine, &["--expect-key", &plain]);
    assert_eq!(code, 0, "{out}");
    let trusted = tmp.path().join("trusted-keys.txt");
    std::fs::write(
        &trusted,
        format!("# the recorder at the gate, read from its Status page\n{key}\n"),
    )
    .expect("write");
    let (code, out) = verify(
        &genuine,
        &["--trusted-keys", trusted.to_str().expect("utf8")],
    );
    assert_eq!(code, 0, "{out}");

    // A second recorder's key: the re-signed bundle is intact (exit 3 without a pin) and
    // fails the genuine pin (exit 1), whether given on the command line or in a file.
    let other = tmp.path().join("other-recorder");
    let (code, out) = nvr(&["init", "--data-dir", other.to_str().expect("utf8")], None);
    assert_eq!(code, 0, "{out}");
    let other_key = fingerprint_after(&out, "evidence signing key: ");
    assert_ne!(other_key, key);
    let forged = tmp.path().join("forged.zip");
    resign_with(&genuine, &forged, &other);
    let (code, out) = verify(&forged, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains(&other_key), "{out}");
    let (code, out) = verify(&forged, &["--expect-key", &key]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("INVALID") && out.contains(&other_key) && out.contains("not a pinned key"),
        "{out}"
    );
    let (code, out) = verify(
        &forged,
        &["--trusted-keys", trusted.to_str().expect("utf8")],
    );
    assert_eq!(code, 1, "{out}");

    // Tampered: exit 1, pinned or not.
    let mut raw = std::fs::read(&genuine).expect("read");
    let mid = raw.len() / 2;
    raw[mid] ^= 0x10;
    let tampered = tmp.path().join("tampered.zip");
    std::fs::write(&tampered, &raw).expect("write");
    let (code, out) = verify(&tampered, &["--expect-key", &key]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INVALID"), "{out}");
    let (code, out) = verify(&tampered, &[]);
    assert_eq!(code, 1, "{out}");

    // A malformed pin is refused before anything is checked.
    let (code, out) = verify(&genuine, &["--expect-key", "SHA256:not-a-key"]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn after_a_key_rotation_old_bundles_and_heads_verify_and_new_exports_use_the_new_key() {
    let (_cam, mut rec) = recorder_with_camera(&["--width", "320", "--height", "240"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let old_key = rec.key_fingerprint();
    let range = record_a_little(&mut rec);
    let old_bundle = tmp.path().join("old.zip");
    export(&rec, &range, &old_bundle);

    // Rotated while the server runs.
    let (code, out) = nvr(&["key", "rotate", "--data-dir", rec.d()], None);
    assert_eq!(code, 0, "{out}");
    let new_key = fingerprint_after(&out, "current signing key: ");
    assert_ne!(new_key, old_key);
    assert!(out.contains("nvr serve"), "{out}");
    assert_eq!(rec.key_fingerprint(), new_key);
    let (code, shown) = nvr(&["key", "show", "--data-dir", rec.d()], None);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains(&format!("{old_key}  in use from"))
            && shown.contains(&format!("{new_key}  in use since")),
        "{shown}"
    );

    // The running server lists both keys and signs with the new one.
    let admin = rec.client();
    let status = admin.get("/api/status", &[]).json();
    assert_eq!(
        status["signing_key_fingerprint"],
        new_key.as_str(),
        "{status}"
    );
    let keys = status["signing_keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{status}");
    assert_eq!(
        (&keys[0]["fingerprint"], &keys[0]["current"]),
        (&old_key.as_str().into(), &false.into())
    );
    assert!(keys[0]["retired"].is_string(), "{status}");
    assert_eq!(
        (&keys[1]["fingerprint"], &keys[1]["current"]),
        (&new_key.as_str().into(), &true.into())
    );
    let audit = admin
        .get("/api/audit?action=signing_key_rotate", &[])
        .json();
    assert_eq!(
        audit[0]["detail"]["current"],
        new_key.as_str(),
        "the rotation is audited: {audit}"
    );

    // The old bundle verifies with the old pin, not with the new one.
    let (code, out) = verify(&old_bundle, &["--expect-key", &old_key]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify(&old_bundle, &["--expect-key", &new_key]);
    assert_eq!(code, 1, "{out}");

    // A new export through the running server: signed by the new key. Its range is the old
    // bundle's, so its chain head was signed by the old key before the rotation.
    let r = admin.post(
        "/api/exports",
        serde_json::json!({"cameras": [1], "start": range.0, "end": range.1, "case": "", "reason": "rotation"}),
    );
    assert_eq!(r.status, 202, "{:?}", r.body.map(String::from_utf8));
    let id = r.json()["id"].as_i64().expect("id");
    let done = wait_for(Duration::from_secs(60), "the export to finish", || {
        let e = admin.get(&format!("/api/exports/{id}"), &[]).json();
        (e["state"] != "running").then_some(e)
    });
    assert_eq!(done["state"], "ready", "{done}");
    let new_bundle = tmp.path().join("new.zip");
    let body = admin.get(&format!("/api/exports/{id}/bundle.zip"), &[]);
    std::fs::write(&new_bundle, body.body.expect("bundle")).expect("write");
    let (code, out) = verify(&new_bundle, &["--expect-key", &new_key]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("earlier key {old_key}")), "{out}");
    let (code, out) = verify(&new_bundle, &["--expect-key", &old_key]);
    assert_eq!(code, 1, "{out}");
    // Both pins at once: either bundle.
    for b in [&old_bundle, &new_bundle] {
        let (code, out) = verify(b, &["--expect-key", &old_key, "--expect-key", &new_key]);
        assert_eq!(code, 0, "{out}");
    }

    // Chain heads signed by either key check.
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}
