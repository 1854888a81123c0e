//! Export bundles: a valid bundle verifies, and any altered byte, edited manifest or foreign
//! signature is named by `verify_bundle`; only a pinned key makes a bundle authentic, and key
//! rotation leaves old bundles and old chain heads verifiable.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use nvr_core::Time90k;

use super::verify::{Verdict, verify_bundle};
use super::{ExportRequest, write_bundle};
use crate::signing::{Fingerprint, RecorderKey, TrustedKeys};
use crate::tests::{T0, env, frame, params, writer};

fn export(
    e: &crate::tests::Env,
    path: &Path,
    start: Time90k,
    end: Time90k,
) -> super::ExportSummary {
    let f = std::fs::File::create(path).expect("create");
    write_bundle(
        &e.store,
        &ExportRequest {
            cameras: vec![e.camera],
            start,
            end,
            case_ref: "../../etc/passwd /abs\\x".into(),
            reason: "incident at the gate".into(),
            operator: "ev".into(),
            export_id: None,
            working_copy: None,
        },
        f,
        &mut |_, _| {},
    )
    .expect("export")
}

/// Rewrites `src` into `dst` with `edit` applied to the named entry (CRCs stay valid).
fn rewrite(src: &Path, dst: &Path, name: &str, edit: impl Fn(&mut Vec<u8>)) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).expect("open")).expect("zip");
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).expect("create"));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).expect("entry");
        let n = f.name().expect("name").into_owned();
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read");
        if n == name {
            edit(&mut data);
        }
        zout.start_file(n.as_str(), opts).expect("start");
        zout.write_all(&data).expect("write");
    }
    zout.finish().expect("finish");
}

/// The store's current key, pinned.
fn pinned(e: &crate::tests::Env) -> TrustedKeys {
    std::iter::once(e.store.signing_key().fingerprint()).collect()
}

fn record(e: &crate::tests::Env, n: i64) {
    let mut w = writer(e, 2);
    let p = params(1280);
    for i in 0..n {
        w.write(&p, &frame(i)).expect("write");
    }
    w.end_run().expect("end");
}

#[test]
fn a_bundle_verifies_and_any_alteration_is_named() {
    let e = env();
    record(&e, 70); // 7 s in 2 s segments
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.zip");
    // From the middle of the first segment to the middle of the third: a segment boundary inside.
    let start = Time90k(T0 + 90 * 20 + 90_000);
    let end = Time90k(T0 + 90 * 20 + 5 * 90_000);
    let s = export(&e, &good, start, end);
    assert_eq!(s.frames_presented, vec![(e.camera.main(), 40)]);
    let pins = pinned(&e);
    let r = verify_bundle(&good, &pins);
    assert_eq!(r.verdict(), Verdict::Authentic, "{:?}", r.failures);
    assert!(
        r.passed
            .iter()
            .any(|l| l.contains("matches the hash recorded at ingest")),
        "{:?}",
        r.passed
    );
    assert!(
        r.passed.iter().any(|l| l.contains("chain to a head")),
        "{:?}",
        r.passed
    );

    // The case reference, hostile as it is, only lives inside manifest.json.
    let mut names: Vec<String> = zip::ZipArchive::new(std::fs::File::open(&good).expect("open"))
        .expect("zip")
        .file_names()
        .map(|n| n.expect("name").into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "README.txt",
            "SHA256SUMS",
            "audit.json",
            "camera-1.mp4",
            "manifest.json",
            "manifest.sig",
            "player.html",
            "recorder.pub.pem"
        ]
    );

    for name in [
        "camera-1.mp4",
        "player.html",
        "README.txt",
        "audit.json",
        "recorder.pub.pem",
        "SHA256SUMS",
        "manifest.json",
        "manifest.sig",
    ] {
        let bad = dir.path().join("bad.zip");
        rewrite(&good, &bad, name, |d| {
            let i = d.len() / 2;
            d[i] ^= 0x01;
        });
        let r = verify_bundle(&bad, &pins);
        assert_eq!(
            r.verdict(),
            Verdict::Invalid,
            "flipping a byte of {name} went unnoticed"
        );
        let why = r.failures.join("; ");
        let named = why.contains(name)
            || (name == "manifest.json" && why.contains("manifest"))
            || (name == "recorder.pub.pem" && why.contains("key"));
        assert!(named, "{name}: {why}");
    }
    // A raw byte flip in the zip file itself (inside the video) is caught too.
    let mut raw = std::fs::read(&good).expect("read");
    let at = raw.len() / 2;
    raw[at] ^= 0x80;
    let bad = dir.path().join("raw.zip");
    std::fs::write(&bad, &raw).expect("write");
    assert_eq!(verify_bundle(&bad, &pins).verdict(), Verdict::Invalid);

    // Editing the manifest (even re-serializing it) breaks the signature.
    let bad = dir.path().join("edited.zip");
    rewrite(&good, &bad, "manifest.json", |d| {
        let s = String::from_utf8(d.clone())
            .expect("utf8")
            .replace("incident at the gate", "nothing happened");
        *d = s.into_bytes();
    });
    let r = verify_bundle(&bad, &pins);
    assert!(
        r.failures
            .iter()
            .any(|f| f.contains("manifest.sig does not match")),
        "{:?}",
        r.failures
    );

    // Another bundle's signature does not fit this manifest.
    let other = dir.path().join("other.zip");
    export(&e, &other, Time90k(start.0 + 90_000), end);
    let mut sig = Vec::new();
    zip::ZipArchive::new(std::fs::File::open(&other).expect("open"))
        .expect("zip")
        .by_name("manifest.sig")
        .expect("sig")
        .read_to_end(&mut sig)
        .expect("read");
    let bad = dir.path().join("swapped.zip");
    rewrite(&good, &bad, "manifest.sig", |d| *d = sig.clone());
    let r = verify_bundle(&bad, &pins);
    assert!(
        r.failures.iter().any(|f| f.contains("manifest.sig")),
        "{:?}",
        r.failures
    );
}

#[test]
fn export_of_an_unknown_camera_or_empty_range_fails_clearly() {
    let e = env();
    record(&e, 20);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = std::fs::File::create(dir.path().join("x.zip")).expect("create");
    let req = ExportRequest {
        cameras: vec![e.camera],
        start: Time90k(T0 + 3600 * 90_000),
        end: Time90k(T0 + 3700 * 90_000),
        case_ref: "c".into(),
        reason: "r".into(),
        operator: "ev".into(),
        export_id: None,
        working_copy: None,
    };
    let err = write_bundle(&e.store, &req, f, &mut |_, _| {}).expect_err("empty range");
    assert!(err.to_string().contains("sealed recordings"), "{err}");
    let mut nul = req.clone();
    nul.case_ref = "case\0../x".into();
    let f = std::fs::File::create(dir.path().join("y.zip")).expect("create");
    let err = write_bundle(&e.store, &nul, f, &mut |_, _| {}).expect_err("NUL");
    assert!(err.to_string().contains("control characters"), "{err}");
    let _ = Arc::strong_count(&e.store);
}

/// Reads one entry of a bundle.
fn entry(zip: &Path, name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    zip::ZipArchive::new(std::fs::File::open(zip).expect("open"))
        .expect("zip")
        .by_name(name)
        .expect(name)
        .read_to_end(&mut v)
        .expect("read");
    v
}

/// Makes `dst` from `src` the way a forger with a key of their own would: their public key in
/// recorder.pub.pem, the manifest naming it (with the hashes that changed) and re-signed. Every
/// check but the pin still passes.
fn resign(src: &Path, dst: &Path, key: &RecorderKey) {
    let sha = |d: &[u8]| hex::encode(ring::digest::digest(&ring::digest::SHA256, d));
    let pem = key.public_key_pem();
    let old_pem = entry(src, "recorder.pub.pem");
    let sums = String::from_utf8(entry(src, "SHA256SUMS"))
        .expect("utf8")
        .replace(&sha(&old_pem), &sha(pem.as_bytes()));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&entry(src, "manifest.json")).expect("json");
    manifest["key_fingerprint_sha256"] = key.fingerprint().to_string().into();
    for f in manifest["files"].as_array_mut().expect("files") {
        let data = match f["name"].as_str() {
            Some("recorder.pub.pem") => pem.as_bytes(),
            Some("SHA256SUMS") => sums.as_bytes(),
            _ => continue,
        };
        f["sha256"] = sha(data).into();
        f["bytes"] = data.len().into();
    }
    let manifest = crate::integrity::canonical_json(&manifest);
    let sig = key.sign(&manifest);
    let step = dst.with_extension("step1.zip");
    rewrite(src, &step, "recorder.pub.pem", |d| {
        *d = pem.as_bytes().to_vec()
    });
    let step2 = dst.with_extension("step2.zip");
    rewrite(&step, &step2, "SHA256SUMS", |d| {
        *d = sums.as_bytes().to_vec()
    });
    let step3 = dst.with_extension("step3.zip");
    rewrite(&step2, &step3, "manifest.json", |d| *d = manifest.clone());
    rewrite(&step3, dst, "manifest.sig", |d| *d = sig.to_vec());
}

#[test]
fn only_a_pinned_key_makes_a_bundle_authentic() {
    let e = env();
    record(&e, 50);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.zip");
    export(&e, &good, Time90k(T0), Time90k(T0 + 4 * 90_000));
    let genuine = e.store.signing_key().fingerprint();

    // No pin: intact, origin not established.
    let r = verify_bundle(&good, &TrustedKeys::new());
    assert_eq!(r.verdict(), Verdict::Unpinned, "{:?}", r.failures);
    assert_eq!(r.key_fingerprint, Some(genuine));
    assert!(!r.pinned);
    // The genuine pin, in any spelling.
    let spelled = Fingerprint::parse(&hex::encode(genuine.sha256()).to_uppercase()).expect("fp");
    let r = verify_bundle(&good, &std::iter::once(spelled).collect());
    assert_eq!(r.verdict(), Verdict::Authentic, "{:?}", r.failures);
    // Another key pinned: invalid, and the failure says which key signed it.
    let other = Fingerprint::of(&[9; 32]);
    let r = verify_bundle(&good, &std::iter::once(other).collect());
    assert_eq!(r.verdict(), Verdict::Invalid);
    assert!(
        r.failures[0].contains(&genuine.to_string()) && r.failures[0].contains("not a pinned key"),
        "{:?}",
        r.failures
    );
    // One of several pins is enough.
    let r = verify_bundle(&good, &[other, genuine].into_iter().collect());
    assert_eq!(r.verdict(), Verdict::Authentic, "{:?}", r.failures);

    // Re-signed with a forger's key: intact, unpinned without a pin, invalid with the genuine one.
    let forger_dir = tempfile::tempdir().expect("tempdir");
    let forger = RecorderKey::load_or_create(forger_dir.path()).expect("key");
    let forged = dir.path().join("forged.zip");
    resign(&good, &forged, &forger);
    let r = verify_bundle(&forged, &TrustedKeys::new());
    assert_eq!(r.verdict(), Verdict::Unpinned, "{:?}", r.failures);
    assert_eq!(r.key_fingerprint, Some(forger.fingerprint()));
    let r = verify_bundle(&forged, &std::iter::once(genuine).collect());
    assert_eq!(r.verdict(), Verdict::Invalid);
    assert!(
        r.failures[0].contains(&forger.fingerprint().to_string()),
        "{:?}",
        r.failures
    );
}

#[test]
fn after_a_rotation_old_bundles_old_heads_and_new_exports_all_verify() {
    let e = env();
    let mut w = writer(&e, 2);
    let p = params(1280);
    for i in 0..50 {
        w.write(&p, &frame(i)).expect("write");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let old_bundle = dir.path().join("old.zip");
    let range = (Time90k(T0), Time90k(T0 + 3 * 90_000));
    export(&e, &old_bundle, range.0, range.1);
    let old_key = e.store.signing_key().fingerprint();

    let r = e.store.rotate_signing_key("cli:test").expect("rotate");
    let new_key = r.current.fingerprint();
    assert_eq!(r.retired.fingerprint(), old_key);
    assert_eq!(e.store.signing_key().fingerprint(), new_key);
    let history = e.store.signing_key_history().expect("history");
    assert_eq!(
        history.iter().map(|k| k.fingerprint()).collect::<Vec<_>>(),
        vec![old_key, new_key]
    );

    // The old bundle still verifies with the old pin (and only with it).
    let pin = |k: Fingerprint| -> TrustedKeys { std::iter::once(k).collect() };
    let v = verify_bundle(&old_bundle, &pin(old_key));
    assert_eq!(v.verdict(), Verdict::Authentic, "{:?}", v.failures);
    assert_eq!(
        verify_bundle(&old_bundle, &pin(new_key)).verdict(),
        Verdict::Invalid
    );

    // The same range again: signed by the new key, its chain head by the old one.
    let again = dir.path().join("again.zip");
    let s = export(&e, &again, range.0, range.1);
    assert_eq!(s.key_fingerprint, new_key);
    let v = verify_bundle(&again, &pin(new_key));
    assert_eq!(v.verdict(), Verdict::Authentic, "{:?}", v.failures);
    assert!(
        v.passed
            .iter()
            .any(|l| l.contains(&format!("earlier key {old_key}"))),
        "{:?}",
        v.passed
    );

    // Later footage: its head is signed by the new key.
    for i in 50..100 {
        w.write(&p, &frame(i)).expect("write");
    }
    w.end_run().expect("end");
    let new_bundle = dir.path().join("new.zip");
    export(
        &e,
        &new_bundle,
        Time90k(T0 + 6 * 90_000),
        Time90k(T0 + 9 * 90_000),
    );
    let v = verify_bundle(&new_bundle, &pin(new_key));
    assert_eq!(v.verdict(), Verdict::Authentic, "{:?}", v.failures);
    assert!(
        !v.passed.iter().any(|l| l.contains("earlier key")),
        "{:?}",
        v.passed
    );

    // `nvr check` checks each head with the key that signed it.
    let heads = e.store.db().chain_heads().expect("heads");
    let ids: std::collections::BTreeSet<i64> =
        heads.iter().filter_map(|h| h.signing_key_id).collect();
    assert_eq!(ids.len(), 2, "heads of both keys: {heads:?}");
    assert_eq!(
        crate::check::check(&e.store).expect("check").problems,
        vec![]
    );
    // A head said to be signed by the other key fails: the key per head is what is checked.
    let first = &heads[0];
    let other = history
        .iter()
        .find(|k| Some(k.id) != first.signing_key_id)
        .expect("other key");
    e.store
        .db()
        .lock()
        .execute(
            "UPDATE chain_heads SET signing_key_id = ?1 WHERE id = ?2",
            [other.id, first.id],
        )
        .expect("update");
    let problems = crate::check::check(&e.store).expect("check").problems;
    assert!(
        problems.iter().any(|p| p
            .message
            .contains(&format!("signed chain head {}: bad signature", first.id))),
        "{problems:?}"
    );
}

#[test]
fn bundles_made_before_grouped_fingerprints_and_head_keys_still_verify() {
    let e = env();
    record(&e, 50);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.zip");
    export(&e, &good, Time90k(T0), Time90k(T0 + 4 * 90_000));
    // The manifest as the previous release wrote it: the fingerprint in plain hex, chain heads
    // without their key (the manifest's key signed them), signed by the recorder's key.
    let key = e.store.signing_key();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&entry(&good, "manifest.json")).expect("json");
    manifest["key_fingerprint_sha256"] = hex::encode(key.fingerprint().sha256()).into();
    for c in manifest["cameras"].as_array_mut().expect("cameras") {
        let head = c["chain_head"].as_object_mut().expect("head");
        head.remove("key_fingerprint").expect("named");
        head.remove("public_key").expect("named");
    }
    let manifest = crate::integrity::canonical_json(&manifest);
    let sig = key.sign(&manifest);
    let step = dir.path().join("step.zip");
    rewrite(&good, &step, "manifest.json", |d| *d = manifest.clone());
    let old = dir.path().join("old.zip");
    rewrite(&step, &old, "manifest.sig", |d| *d = sig.to_vec());
    let r = verify_bundle(&old, &pinned(&e));
    assert_eq!(r.verdict(), Verdict::Authentic, "{:?}", r.failures);
    assert!(
        r.passed.iter().any(|l| l.contains("chain to a head")),
        "{:?}",
        r.passed
    );
}

#[test]
fn the_readme_and_the_manifest_name_the_key_in_the_one_format() {
    let e = env();
    record(&e, 50);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.zip");
    export(&e, &good, Time90k(T0), Time90k(T0 + 4 * 90_000));
    let key: Fingerprint = e.store.signing_key().fingerprint();
    let readme = String::from_utf8(entry(&good, "README.txt")).expect("utf8");
    assert!(readme.contains(&key.to_string()), "{readme}");
    assert!(readme.contains("nvr key show"), "{readme}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry(&good, "manifest.json")).expect("json");
    assert_eq!(manifest["key_fingerprint_sha256"], key.to_string());
}
