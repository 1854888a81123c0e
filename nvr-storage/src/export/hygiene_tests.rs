//! What a bundle of format 2 carries and refuses: the player (self-contained, its script
//! pinned by its CSP), time in the MP4 and the manifest, only this export's audit entries,
//! and a verifier that refuses zips whose structure lies (duplicate names, headers that
//! disagree, sizes beyond the file). Bundles of format 1 (the previous release) still verify.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use nvr_core::Time90k;
use serde_json::{Value, json};

use super::verify::{Verdict, verify_bundle};
use super::{ExportRequest, PLAYER_HTML, write_bundle};
use crate::signing::{Fingerprint, TrustedKeys};
use crate::tests::{T0, env, frame, params, writer};

fn record(e: &crate::tests::Env, n: i64) {
    let mut w = writer(e, 2);
    let p = params(1280);
    for i in 0..n {
        w.write(&p, &frame(i)).expect("write");
    }
    w.end_run().expect("end");
}

fn export(e: &crate::tests::Env, path: &Path, start: Time90k, end: Time90k, id: Option<i64>) {
    let f = std::fs::File::create(path).expect("create");
    write_bundle(
        &e.store,
        &ExportRequest {
            cameras: vec![e.camera],
            start,
            end,
            case_ref: "2026/0042".into(),
            reason: "fight at the gate".into(),
            operator: "officer".into(),
            export_id: id,
            working_copy: None,
        },
        f,
        &mut |_, _| {},
    )
    .expect("export");
}

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

fn pinned(e: &crate::tests::Env) -> TrustedKeys {
    std::iter::once(e.store.signing_key().fingerprint()).collect()
}

#[test]
fn the_players_script_is_the_only_one_its_csp_allows_and_it_names_nothing_outside() {
    let script = PLAYER_HTML
        .split_once("<script>")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .expect("one inline script")
        .0;
    let hash = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        script.as_bytes(),
    ));
    let csp = format!("default-src 'none'; script-src 'sha256-{hash}';");
    assert!(
        PLAYER_HTML.contains(&csp),
        "player.html's CSP must allow exactly its script: {csp}"
    );
    assert_eq!(PLAYER_HTML.matches("<script").count(), 1);
    for never in [
        "http://",
        "https://",
        "fetch(",
        "XMLHttpRequest",
        "WebSocket",
        "innerHTML",
        "src=\"",
        "href=\"",
        "@import",
        "url(",
    ] {
        assert!(!PLAYER_HTML.contains(never), "player.html contains {never}");
    }
}

#[test]
fn a_bundle_carries_the_player_time_and_clocks_and_only_this_exports_audit_entries() {
    let e = env();
    record(&e, 70); // 7 s in 2 s segments
    let cam = format!("camera:{}", e.camera);
    let at = |s: i64| T0 + s * 90_000;
    let db = e.store.db();
    // Another case's export and hold of the same footage: their references must not travel.
    db.audit_append(at(1), "other", "export", &cam, &json!({"export": 7, "case": "SECRET-CASE", "reason": "other reason", "start": "x", "end": "y"})).expect("a");
    db.audit_append(
        at(1),
        "other",
        "hold",
        &cam,
        &json!({"hold": 3, "case": "SECRET-HOLD", "reason": "r"}),
    )
    .expect("a");
    // This export's own entry.
    db.audit_append(
        at(6),
        "officer",
        "export",
        &cam,
        &json!({"export": 8, "case": "2026/0042"}),
    )
    .expect("a");
    // Playback of the range, and of other times; a snapshot inside and outside.
    let rfc = |s: i64| Time90k(at(s)).to_rfc3339();
    db.audit_append(
        at(8),
        "guard",
        "playback",
        &cam,
        &json!({"start": rfc(2), "end": rfc(3)}),
    )
    .expect("a");
    db.audit_append(
        at(8),
        "guard",
        "playback",
        &cam,
        &json!({"start": rfc(100), "end": rfc(200)}),
    )
    .expect("a");
    db.audit_append(at(8), "guard", "snapshot", &cam, &json!({"at": rfc(2)}))
        .expect("a");
    db.audit_append(at(8), "guard", "snapshot", &cam, &json!({"at": rfc(300)}))
        .expect("a");
    // Something about another camera.
    db.audit_append(
        at(2),
        "guard",
        "playback",
        "camera:99",
        &json!({"start": rfc(2), "end": rfc(3)}),
    )
    .expect("a");

    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.zip");
    let (start, end) = (Time90k(at(1) + 4500), Time90k(at(5)));
    export(&e, &good, start, end, Some(8));
    let r = verify_bundle(&good, &pinned(&e));
    assert_eq!(r.verdict(), Verdict::Authentic, "{:?}", r.failures);

    let audit: Vec<Value> = serde_json::from_slice(&entry(&good, "audit.json")).expect("json");
    let text = serde_json::to_string(&audit).expect("text");
    assert!(!text.contains("SECRET"), "{text}");
    let kinds: Vec<(String, String)> = audit
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or("").to_owned(),
                a["detail"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ["export", "playback", "snapshot"],
        "{kinds:?}"
    );
    assert!(kinds[0].1.contains("\"export\":8"));
    assert!(kinds[1].1.contains(&rfc(2)));

    // The player, byte for byte, listed and hashed like every file.
    assert_eq!(entry(&good, "player.html"), PLAYER_HTML.as_bytes());
    let manifest: Value = serde_json::from_slice(&entry(&good, "manifest.json")).expect("json");
    assert_eq!(manifest["format"], "nvr-export/2");
    assert!(
        manifest["files"]
            .as_array()
            .expect("files")
            .iter()
            .any(|f| f["name"] == "player.html")
    );
    assert_eq!(manifest["export_id"], 8);
    assert!(manifest["recorder_clock"]["synchronized"].is_boolean());
    let c = &manifest["cameras"][0];
    assert_eq!(c["camera_clock"]["offset_ms"], Value::Null);
    // The timeline starts at presentation 0 at the requested start and covers the range.
    let tl = c["timeline"].as_array().expect("timeline");
    assert_eq!(tl[0]["presentation_start_90k"], 0);
    assert_eq!(tl[0]["wall_start_90k"], start.0);
    assert_eq!(tl.last().expect("last")["wall_end_90k"], end.0);
    assert!(tl.len() >= 2, "the range crosses segments: {tl:?}");
    let first_cue = super::timeline::cue_text(start);
    assert_eq!(c["mp4"]["time_track"]["first_cue"], first_cue.as_str());
    assert_eq!(c["mp4"]["onvif_cstb"][1]["start"], start.to_rfc3339());
    // And the MP4 says the same.
    let mp4 = entry(&good, "camera-1.mp4");
    let find = |needle: &[u8]| mp4.windows(needle.len()).position(|w| w == needle);
    assert!(find(first_cue.as_bytes()).is_some());
    let suep = find(b"suep").expect("suep");
    assert!(find(b"cstb").expect("cstb") > suep);
    assert!(find(b"officer\0").expect("operator") > suep);
    assert!(find(b"rtsp://127.0.0.1:8554/cam1\0").expect("source url") > suep);
}

/// Patches every occurrence of `from` with `to` (same length) in the file.
fn patch_all(src: &Path, dst: &Path, from: &[u8], to: &[u8]) -> usize {
    let mut d = std::fs::read(src).expect("read");
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= d.len() {
        if &d[i..i + from.len()] == from {
            d[i..i + from.len()].copy_from_slice(to);
            n += 1;
        }
        i += 1;
    }
    std::fs::write(dst, &d).expect("write");
    n
}

#[test]
fn zips_whose_structure_lies_are_refused() {
    let e = env();
    record(&e, 30);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.zip");
    export(&e, &good, Time90k(T0), Time90k(T0 + 2 * 90_000), None);
    let pins = pinned(&e);
    assert_eq!(verify_bundle(&good, &pins).verdict(), Verdict::Authentic);
    let refused = |path: &Path, why: &str| {
        let r = verify_bundle(path, &pins);
        assert_eq!(r.verdict(), Verdict::Invalid, "{why}");
        assert!(
            r.failures.iter().any(|f| f.contains(why)),
            "{why}: {:?}",
            r.failures
        );
    };

    // Two entries named SHA256SUMS: audit.json renamed in its local and central headers (and
    // wherever else the name appears; the structure is refused before any of that is read).
    let dup = dir.path().join("dup.zip");
    // Names of equal length: SHA256SUMS and audit.json are both 10 bytes.
    let n = patch_all(&good, &dup, b"audit.json", b"SHA256SUMS");
    assert!(n >= 2, "local and central names: {n}");
    refused(&dup, "appears twice");

    // The local header names another file than the central directory.
    let mut d = std::fs::read(&good).expect("read");
    let at = d
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x50, 0x4b, 0x03, 0x04])
        .map(|(i, _)| i + 30)
        .find(|&i| &d[i..i + 10] == b"audit.json")
        .expect("local header");
    d[at] = b'A';
    let mismatch = dir.path().join("mismatch.zip");
    std::fs::write(&mismatch, &d).expect("write");
    refused(&mismatch, "disagrees with the central directory");

    // A central directory entry declaring more bytes than the file holds.
    let mut d = std::fs::read(&good).expect("read");
    let cd = d
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x50, 0x4b, 0x01, 0x02])
        .map(|(i, _)| i)
        .find(|&i| &d[i + 46..i + 56] == b"README.txt")
        .expect("central entry");
    let huge = (d.len() as u32 * 2).to_le_bytes();
    if d[cd + 20..cd + 24] == [0xff; 4] {
        // zip64: the sizes are in the extra field after the name.
        let extra = cd + 46 + 10;
        let at = extra + 4;
        d[at..at + 8].copy_from_slice(&u64::from(u32::from_le_bytes(huge)).to_le_bytes());
        d[at + 8..at + 16].copy_from_slice(&u64::from(u32::from_le_bytes(huge)).to_le_bytes());
    } else {
        d[cd + 20..cd + 24].copy_from_slice(&huge);
        d[cd + 24..cd + 28].copy_from_slice(&huge);
    }
    let oversize = dir.path().join("oversize.zip");
    std::fs::write(&oversize, &d).expect("write");
    refused(&oversize, "more than the file holds");

    // Not a zip at all, and an empty file.
    let junk = dir.path().join("junk.zip");
    std::fs::write(&junk, b"PK\x05\x06 not really").expect("write");
    refused(&junk, "not a zip");
}

/// A bundle written by the previous release (format 1: no player, no time track, no ONVIF
/// boxes, no timeline), kept as a file with the fingerprint of the key that signed it.
#[test]
fn a_bundle_of_the_previous_format_still_verifies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/export/testdata");
    let bundle = dir.join("format1.zip");
    let fp = std::fs::read_to_string(dir.join("format1.fingerprint")).expect("fingerprint");
    let pin: TrustedKeys = std::iter::once(Fingerprint::parse(fp.trim()).expect("fp")).collect();
    let r = verify_bundle(&bundle, &pin);
    assert_eq!(r.verdict(), Verdict::Authentic, "{:?}", r.failures);
    assert!(
        r.passed
            .iter()
            .any(|l| l.contains("matches the hash recorded at ingest")),
        "{:?}",
        r.passed
    );
    let manifest: Value = serde_json::from_slice(&entry(&bundle, "manifest.json")).expect("json");
    assert_eq!(manifest["format"], "nvr-export/1");
}

/// Rewrites `src` into `dst` with `edit` applied to the named entry.
fn rewrite(src: &Path, dst: &Path, name: &str, edit: impl Fn(&mut Vec<u8>)) {
    use std::io::Write;
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

#[test]
fn verify_reads_the_time_track_and_onvif_start_times_against_the_manifest() {
    let e = env();
    record(&e, 50);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.zip");
    let start = Time90k(T0 + 90_000 + 4_500);
    export(&e, &good, start, Time90k(T0 + 3 * 90_000), None);
    let r = verify_bundle(&good, &pinned(&e));
    let line = format!(
        "camera-1.mp4: the time track starts at {} and the ONVIF start times match",
        super::timeline::cue_text(start)
    );
    assert!(r.passed.iter().any(|l| l.contains(&line)), "{:?}", r.passed);

    // A manifest (signed by the recorder's key) that disagrees with the MP4's header.
    let key = e.store.signing_key();
    for (path, value) in [
        (
            "time_track",
            json!({"first_cue": "2000-01-01 00:00:00.000 UTC"}),
        ),
        ("onvif_cstb", json!([])),
    ] {
        let mut m: Value = serde_json::from_slice(&entry(&good, "manifest.json")).expect("json");
        let mp4 = &mut m["cameras"][0]["mp4"];
        if path == "time_track" {
            mp4["time_track"]["first_cue"] = value["first_cue"].clone();
        } else {
            mp4["onvif_cstb"] = value;
        }
        let m = crate::integrity::canonical_json(&m);
        let sig = key.sign(&m);
        let step = dir.path().join("step.zip");
        rewrite(&good, &step, "manifest.json", |d| *d = m.clone());
        let bad = dir.path().join("bad.zip");
        rewrite(&step, &bad, "manifest.sig", |d| *d = sig.to_vec());
        let r = verify_bundle(&bad, &pinned(&e));
        assert_eq!(r.verdict(), Verdict::Invalid, "{path}");
        assert!(
            r.failures.iter().any(|f| f.contains("camera-1.mp4: the")),
            "{path}: {:?}",
            r.failures
        );
    }
}
