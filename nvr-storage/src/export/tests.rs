//! Export bundles: a valid bundle verifies, and any altered byte, edited manifest or foreign
//! signature is named by `verify_bundle`.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use nvr_core::Time90k;

use super::verify::verify_bundle;
use super::{ExportRequest, write_bundle};
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
    let r = verify_bundle(&good);
    assert!(r.valid(), "{:?}", r.failures);
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
            "recorder.pub.pem"
        ]
    );

    for name in [
        "camera-1.mp4",
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
        let r = verify_bundle(&bad);
        assert!(!r.valid(), "flipping a byte of {name} went unnoticed");
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
    assert!(!verify_bundle(&bad).valid());

    // Editing the manifest (even re-serializing it) breaks the signature.
    let bad = dir.path().join("edited.zip");
    rewrite(&good, &bad, "manifest.json", |d| {
        let s = String::from_utf8(d.clone())
            .expect("utf8")
            .replace("incident at the gate", "nothing happened");
        *d = s.into_bytes();
    });
    let r = verify_bundle(&bad);
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
    let r = verify_bundle(&bad);
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
