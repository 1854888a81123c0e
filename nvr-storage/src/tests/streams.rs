//! A camera's two streams: each recorded apart (runs, segments, chain, retention), played back
//! apart, checked by `nvr check`, and exported with its own file and chain.

use std::io::Read;

use nvr_core::{CameraUrl, Duration90k, Stream, StreamKey, Time90k};

use super::*;
use crate::db::{CameraUpdate, RETENTION_DELETE_ACTION};
use crate::export::verify::{Verdict, verify_bundle};
use crate::export::{ExportRequest, write_bundle};

/// An environment whose camera also has a sub-stream.
fn env_with_sub() -> Env {
    let e = env();
    set_sub_url(&e, Some("rtsp://127.0.0.1:8554/cam1_sub"));
    e
}

/// Gives the camera a sub-stream URL, or removes it.
fn set_sub_url(e: &Env, url: Option<&str>) {
    let url = url.map(|u| CameraUrl::parse(u).expect("url"));
    let row = e.store.db().camera(e.camera).expect("camera").expect("row");
    let sealed = e.store.db().camera_password_sealed(e.camera).expect("pw");
    e.store
        .db()
        .update_camera(
            e.camera,
            &CameraUpdate {
                name: &row.name,
                url: &row.url,
                username: row.username.as_deref(),
                password_sealed: sealed.as_deref(),
                enabled: true,
                sub_url: url.as_ref().map(CameraUrl::as_str),
                record_sub: true,
                record_audio: row.record_audio,
            },
            &[],
            note(),
        )
        .expect("change the sub-stream");
}

fn stream_writer(e: &Env, stream: StreamKey, segment_secs: i64) -> CameraWriter {
    CameraWriter::new(
        e.store.clone(),
        stream,
        WriterConfig {
            segment_duration: Duration90k::from_secs(segment_secs),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .expect("writer")
}

/// Records `n` frames on both streams at once (main 1280 wide, sub 640), 2 s segments.
fn record_both(e: &Env, n: i64) {
    let mut main = stream_writer(e, e.camera.main(), 2);
    let mut sub = stream_writer(e, e.camera.sub(), 2);
    let (pm, ps) = (params(1280), params(640));
    for i in 0..n {
        main.write(&pm, &frame(i)).expect("main");
        sub.write(&ps, &frame(i)).expect("sub");
    }
    main.end_run().expect("end main");
    sub.end_run().expect("end sub");
}

#[test]
fn two_streams_record_apart_with_their_own_runs_chains_and_views() {
    let e = env_with_sub();
    record_both(&e, 70);
    let rows = e.store.db().all_segments().expect("rows");
    let of = |s: Stream| rows.iter().filter(|r| r.stream == s).collect::<Vec<_>>();
    let (main, sub) = (of(Stream::Main), of(Stream::Sub));
    assert_eq!((main.len(), sub.len()), (4, 4), "{rows:#?}");
    // Each stream's runs and chain links stay within the stream.
    for rows in [&main, &sub] {
        assert!(rows.iter().all(|r| r.run_id == rows[0].id));
        for pair in rows.windows(2) {
            assert_eq!(pair[1].prev_segment_id, Some(pair[0].id));
            assert_eq!(pair[1].prev_chain_sha256, pair[0].chain_sha256);
        }
    }
    let db = e.store.db();
    assert_eq!(
        db.stream_chain_head(e.camera.main()).expect("head"),
        Some((main[3].id, main[3].chain_sha256.expect("chain")))
    );
    assert_eq!(
        db.stream_chain_head(e.camera.sub()).expect("head"),
        Some((sub[3].id, sub[3].chain_sha256.expect("chain")))
    );
    let (s, en) = whole_day();
    for (stream, width) in [(Stream::Main, 1280), (Stream::Sub, 640)] {
        let r = runs(&e.store, e.camera.stream(stream), s, en).expect("runs");
        assert_eq!(r.len(), 1, "{stream}");
        assert_eq!((r[0].frames, r[0].segments, r[0].width), (70, 4, width));
        let v = view(&e.store, e.camera.stream(stream), s, en).expect("view");
        let ids: Vec<_> = v.segments.iter().map(|s| s.id).collect();
        let want: Vec<_> = rows
            .iter()
            .filter(|r| r.stream == stream)
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, want, "{stream}: its own segments only");
    }
    for stream in Stream::ALL {
        e.store
            .sign_chain_head(e.camera.stream(stream))
            .expect("sign")
            .expect("a head");
    }
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
    // A sub-stream segment relabelled as main breaks its chain (the domains differ).
    db.lock()
        .execute(
            "UPDATE segments SET stream = 0 WHERE id = ?1",
            [sub[1].id.0],
        )
        .expect("relabel");
    let problems = check(&e.store).expect("check").problems;
    assert!(
        problems
            .iter()
            .any(|p| p.segment == Some(sub[1].id) && p.message.contains("hash chain")),
        "{problems:?}"
    );
}

#[test]
fn retention_of_one_stream_leaves_the_other() {
    let e = env_with_sub();
    record_both(&e, 70);
    let sub_bytes = e.store.db().stream_usage(e.camera.sub()).expect("usage").0;
    let main_before = e.store.db().stream_usage(e.camera.main()).expect("usage");
    // The sub-stream keeps at most half its bytes; the main stream has no limit.
    let policy = RetentionPolicy {
        max_bytes: Some(sub_bytes / 2),
        max_age: None,
    };
    let out = enforce(&e.store, e.camera.sub(), policy, Time90k(T0)).expect("retention");
    assert_eq!(out.deleted.len(), 2, "{out:?}");
    let rows = e.store.db().all_segments().expect("rows");
    assert!(
        out.deleted
            .iter()
            .all(|id| !rows.iter().any(|r| r.id == *id))
    );
    assert_eq!(
        e.store.db().stream_usage(e.camera.main()).expect("usage"),
        main_before,
        "the main stream is untouched"
    );
    let entries = e
        .store
        .db()
        .audit_list(&crate::db::AuditFilter {
            action: Some(RETENTION_DELETE_ACTION.into()),
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    assert_eq!(entries.len(), 1);
    let detail: serde_json::Value = serde_json::from_str(&entries[0].detail).expect("json");
    assert_eq!(detail["stream"], "sub");
    // The sub-stream's chain links name deleted segments, all on record.
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

#[test]
fn removing_the_sub_stream_keeps_its_recordings_and_chain() {
    let e = env_with_sub();
    record_both(&e, 30);
    let row = e.store.db().camera(e.camera).expect("camera").expect("row");
    assert_eq!(row.streams(), vec![Stream::Main, Stream::Sub]);
    set_sub_url(&e, None);
    let row = e.store.db().camera(e.camera).expect("camera").expect("row");
    assert_eq!((row.sub_url.as_deref(), row.has_sub_row), (None, true));
    assert_eq!(row.streams(), vec![Stream::Main]);
    assert!(!row.records(Stream::Sub));
    let (s, en) = whole_day();
    assert_eq!(
        runs(&e.store, e.camera.sub(), s, en).expect("runs")[0].frames,
        30
    );
    assert!(
        e.store
            .db()
            .stream_chain_head(e.camera.sub())
            .expect("head")
            .is_some()
    );
    assert_eq!(check(&e.store).expect("check").problems, vec![]);
}

fn export_to(e: &Env, path: &std::path::Path) -> crate::Result<crate::export::ExportSummary> {
    write_bundle(
        &e.store,
        &ExportRequest {
            cameras: vec![e.camera],
            start: Time90k(T0),
            end: Time90k(T0 + 5 * 90_000),
            case_ref: "c".into(),
            reason: "r".into(),
            operator: "ev".into(),
            export_id: None,
            working_copy: None,
        },
        std::fs::File::create(path).expect("create"),
        &mut |_, _| {},
    )
}

fn pinned(e: &Env) -> crate::signing::TrustedKeys {
    std::iter::once(e.store.signing_key().fingerprint()).collect()
}

fn zip_names(path: &std::path::Path) -> Vec<String> {
    let z = zip::ZipArchive::new(std::fs::File::open(path).expect("open")).expect("zip");
    z.file_names()
        .map(|n| n.expect("name").into_owned())
        .collect()
}

fn manifest(path: &std::path::Path) -> serde_json::Value {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).expect("open")).expect("zip");
    let mut s = String::new();
    z.by_name("manifest.json")
        .expect("manifest")
        .read_to_string(&mut s)
        .expect("read");
    serde_json::from_str(&s).expect("json")
}

#[test]
fn a_bundle_holds_each_recorded_stream_with_its_own_chain() {
    let e = env_with_sub();
    record_both(&e, 70);
    let dir = tempfile::tempdir().expect("tempdir");
    let both = dir.path().join("both.zip");
    let s = export_to(&e, &both).expect("export");
    assert_eq!(
        s.frames_presented.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![e.camera.main(), e.camera.sub()]
    );
    let names = zip_names(&both);
    assert!(names.contains(&"camera-1.mp4".to_owned()), "{names:?}");
    assert!(names.contains(&"camera-1-sub.mp4".to_owned()), "{names:?}");
    let m = manifest(&both);
    assert_eq!(m["format"], "nvr-export/2");
    let streams: Vec<_> = m["cameras"]
        .as_array()
        .expect("cameras")
        .iter()
        .map(|c| c["stream"].as_str().expect("stream").to_owned())
        .collect();
    assert_eq!(streams, ["main", "sub"]);
    let r = verify_bundle(&both, &pinned(&e));
    assert_eq!(r.verdict(), Verdict::Authentic, "{:?}", r.failures);
    assert!(
        r.passed.iter().any(|p| p.starts_with("camera 1 sub: ")),
        "{:?}",
        r.passed
    );

    // Without sub-stream footage in the range the bundle has main streams only.
    e.store
        .db()
        .lock()
        .execute_batch("DELETE FROM segments WHERE stream = 1")
        .expect("drop sub rows");
    let main_only = dir.path().join("main.zip");
    export_to(&e, &main_only).expect("export");
    assert_eq!(manifest(&main_only)["format"], "nvr-export/2");
    assert!(!zip_names(&main_only).iter().any(|n| n.contains("-sub")));
    assert_eq!(
        verify_bundle(&main_only, &pinned(&e)).verdict(),
        Verdict::Authentic
    );
}

#[test]
fn a_camera_with_only_sub_stream_footage_exports_it() {
    let e = env_with_sub();
    let mut sub = stream_writer(&e, e.camera.sub(), 2);
    let p = params(640);
    for i in 0..50 {
        sub.write(&p, &frame(i)).expect("sub");
    }
    sub.end_run().expect("end");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub.zip");
    export_to(&e, &path).expect("export");
    let names = zip_names(&path);
    assert!(names.contains(&"camera-1-sub.mp4".to_owned()), "{names:?}");
    assert!(!names.contains(&"camera-1.mp4".to_owned()), "{names:?}");
    assert_eq!(
        verify_bundle(&path, &pinned(&e)).verdict(),
        Verdict::Authentic
    );
}
