//! Evidence end to end: an export of two minutes across a segment boundary from a real test
//! camera plays, matches the index frame for frame, and verifies offline; tampering is caught;
//! the audit log is tamper-evident.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;

/// Extracts one entry of a zip bundle.
fn entry(zip: &std::path::Path, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).expect("open")).expect("zip");
    let mut v = Vec::new();
    z.by_name(name)
        .expect("entry")
        .read_to_end(&mut v)
        .expect("read");
    v
}

#[test]
fn two_minute_export_across_a_segment_boundary_plays_and_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_cam, mut rec) =
        recorder_with_camera(&["--width", "640", "--height", "360", "--fps", "15"]);
    let (code, out) = nvr(
        &[
            "user",
            "add",
            "--data-dir",
            rec.d(),
            "--username",
            "ev",
            "--role",
            "evidence",
            "--password-stdin",
        ],
        Some("evidence-password"),
    );
    assert_eq!(code, 0, "{out}");
    rec.serve(&["--segment-duration-secs", "30"]);
    let admin = rec.client();
    let run = wait_for(Duration::from_secs(300), "2.5 minutes of recording", || {
        admin.runs(1).into_iter().find(|r| {
            secs_between(
                r["start"].as_str().unwrap_or(""),
                r["end"].as_str().unwrap_or(""),
            ) >= 150.0
        })
    });
    let start_s = parse_rfc3339(run["start"].as_str().expect("start"));
    // 2 minutes starting 10.5 s in: between key frames, across at least three 30 s segments.
    let start = rfc3339_ms(start_s + 10.5);
    let end = rfc3339_ms(start_s + 130.5);

    let ev = Client::login(&rec.base, "ev", "evidence-password");
    let r = ev.post(
        "/api/exports",
        serde_json::json!({"cameras": [1], "start": start, "end": end, "case": "2026/0042", "reason": "fight at the gate"}),
    );
    assert_eq!(r.status, 202, "{:?}", r.body.map(String::from_utf8));
    let id = r.json()["id"].as_i64().expect("id");
    let done = wait_for(Duration::from_secs(120), "the export to finish", || {
        let e = ev.get(&format!("/api/exports/{id}"), &[]).json();
        (e["state"] != "running").then_some(e)
    });
    assert_eq!(done["state"], "ready", "{done}");
    let bundle = ev.get(&format!("/api/exports/{id}/bundle.zip"), &[]);
    assert_eq!(bundle.status, 200);
    let zip_path = tmp.path().join("export.zip");
    std::fs::write(&zip_path, bundle.body.expect("bundle")).expect("write");

    // Verified against the recorder's key, pinned as its administrator reads it.
    let key = rec.key_fingerprint();
    let verify = |bundle: &std::path::Path| {
        nvr(
            &[
                "verify",
                "--expect-key",
                &key,
                bundle.to_str().expect("utf8"),
            ],
            None,
        )
    };
    let (code, out) = verify(&zip_path);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("VALID") && out.contains("matches the hash recorded at ingest"),
        "{out}"
    );

    // The MP4 plays, shows exactly the index's frames of the range, and covers two minutes.
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry(&zip_path, "manifest.json")).expect("json");
    let cam_m = &manifest["cameras"][0];
    assert!(
        cam_m["segments"].as_array().map(Vec::len) >= Some(4),
        "{cam_m}"
    );
    let mp4 = tmp.path().join("camera-1.mp4");
    std::fs::write(&mp4, entry(&zip_path, "camera-1.mp4")).expect("write");
    let p = ffprobe(&mp4).expect("ffprobe reads the exported MP4");
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 640, 360));
    assert_eq!(
        Some(p.frames),
        cam_m["frames_presented"].as_u64(),
        "ffprobe and the index agree"
    );
    assert!(
        (p.frames as i64 - 1800).abs() <= 36,
        "{} frames for 120 s at 15 fps",
        p.frames
    );
    assert_eq!(manifest["case"], "2026/0042");
    assert_eq!(manifest["operator"], "ev");

    // The time of the recording, in the file: ffprobe lists the timed-text track, and its first
    // cue, at 0 s, is the requested start; the ONVIF export boxes name the camera and operator.
    let (streams, first) = time_track(&mp4);
    assert!(
        streams.contains(&("subtitle".to_owned(), "mov_text".to_owned())),
        "{streams:?}"
    );
    let want = format!("{} UTC", start.trim_end_matches('Z').replacen('T', " ", 1));
    assert_eq!(first, (0.0, want));
    let raw = entry(&zip_path, "camera-1.mp4");
    let has = |s: &[u8]| raw.windows(s.len()).any(|w| w == s);
    assert!(has(b"suep") && has(b"cstb") && has(b"ev\0"));
    assert_eq!(manifest["format"], "nvr-export/2");
    assert!(manifest["recorder_clock"]["synchronized"].is_boolean());
    // The test camera (GStreamer's RTSP server) sends RTCP sender reports with the wall time of
    // this machine's clock: the camera's offset is measured, and small.
    let clock = &manifest["cameras"][0]["camera_clock"];
    assert_eq!(clock["source"], "rtcp_sender_report", "{clock}");
    let offset_ms = clock["offset_ms"].as_f64().expect("offset");
    assert!(offset_ms.abs() < 2_000.0, "{clock}");

    // The same range exported from the command line verifies too.
    let cli_zip = tmp.path().join("cli.zip");
    let (code, out) = nvr(
        &[
            "export",
            "--data-dir",
            rec.d(),
            "--camera",
            "cam",
            "--start",
            &start,
            "--end",
            &end,
            "--out",
            cli_zip.to_str().expect("utf8"),
            "--case",
            "../../etc",
            "--reason",
            "court order",
            "--working-copy",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify(&cli_zip);
    assert_eq!(code, 0, "{out}");

    // The working copy: H.264 with every presented frame, the time drawn into the bottom band
    // (which then differs from the original's) and the rest of the picture the original's.
    let cli_manifest: serde_json::Value =
        serde_json::from_slice(&entry(&cli_zip, "manifest.json")).expect("manifest");
    let wc = &cli_manifest["cameras"][0]["working_copy"];
    assert_eq!(wc["file"], "camera-1-working.mp4", "{wc}");
    let working = tmp.path().join("working.mp4");
    std::fs::write(&working, entry(&cli_zip, "camera-1-working.mp4")).expect("write");
    let w = ffprobe(&working).expect("ffprobe reads the working copy");
    assert_eq!((w.codec.as_str(), w.width, w.height), ("h264", 640, 360));
    assert!(
        (w.frames as i64 - p.frames as i64).abs() <= 18,
        "{} frames in the working copy, {} presented",
        w.frames,
        p.frames
    );
    let (top, bottom) = picture_difference(&mp4, &working, 5.0);
    assert!(
        bottom > 3.0 * top.max(1.0),
        "top {top}, bottom band {bottom}"
    );
    let (code, _) = nvr(
        &[
            "export",
            "--data-dir",
            rec.d(),
            "--camera",
            "cam",
            "--start",
            &start,
            "--end",
            &end,
            "--out",
            cli_zip.to_str().expect("utf8"),
        ],
        None,
    );
    assert_ne!(code, 0, "an existing bundle is never overwritten");

    // One flipped byte inside the video: verify exits 1 and names the file.
    let mut raw = std::fs::read(&zip_path).expect("read");
    let mid = raw.len() / 2;
    raw[mid] ^= 0x10;
    let bad = tmp.path().join("bad.zip");
    std::fs::write(&bad, &raw).expect("write");
    let (code, out) = verify(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("INVALID") && out.contains("camera-1.mp4"),
        "{out}"
    );

    // The export and the download are in the audit log.
    let audit = admin
        .get("/api/audit?object=camera:1&action=export", &[])
        .json();
    assert!(
        audit
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["actor"] == "ev")),
        "{audit}"
    );
}

#[test]
fn deleting_or_editing_an_audit_row_makes_check_fail_naming_it() {
    let mut rec = Recorder::new();
    rec.serve(&[]);
    for _ in 0..3 {
        let c = rec.client();
        drop(c);
    }
    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
    let db = rusqlite::Connection::open(rec.dir.join("index.db")).expect("db");
    db.execute("DELETE FROM audit WHERE id = 2", [])
        .expect("delete");
    db.execute("UPDATE audit SET detail = '{}' WHERE id = 3", [])
        .expect("edit");
    drop(db);
    let (code, out) = rec.check();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit entry 2 is missing"), "{out}");
    assert!(out.contains("audit entry 3 was altered"), "{out}");
}

/// ffprobe's (type, codec) of every stream of `mp4`, and the time and text of the first packet of
/// its first subtitle stream (a tx3g sample: a 16-bit length, then the text).
fn time_track(mp4: &std::path::Path) -> (Vec<(String, String)>, (f64, String)) {
    let run = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-of", "json"])
            .args(args)
            .arg(mp4)
            .output()
            .expect("ffprobe");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let streams = run(&["-show_streams"])["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or("").to_owned();
            (f("codec_type"), f("codec_name"))
        })
        .collect();
    let packets = run(&["-select_streams", "s:0", "-show_packets", "-show_data"]);
    let p = &packets["packets"][0];
    // "00000000: 001b 3230 3236 ...  ..2026": the hex columns of each line of the dump.
    let mut bytes = Vec::new();
    for line in p["data"].as_str().expect("data").lines() {
        let Some((_, rest)) = line.split_once(": ") else {
            continue;
        };
        let hex: String = rest
            .chars()
            .take(39)
            .filter(|c| !c.is_whitespace())
            .collect();
        bytes.extend(hex::decode(hex).expect("hex"));
    }
    let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    let text = String::from_utf8(bytes[2..2 + len].to_vec()).expect("utf8");
    let pts: f64 = p["pts_time"].as_str().expect("pts").parse().expect("f64");
    (streams, (pts, text))
}

/// Unix seconds (fractional) as RFC 3339 with milliseconds.
/// Mean absolute luma difference between two videos' pictures at `at_secs` (scaled to
/// 160x90): in the top two thirds and in the bottom band (where a working copy draws the time).
fn picture_difference(a: &std::path::Path, b: &std::path::Path, at_secs: f64) -> (f64, f64) {
    let gray = |p: &std::path::Path| -> Vec<u8> {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-ss", &at_secs.to_string(), "-i"])
            .arg(p)
            .args([
                "-frames:v",
                "1",
                "-vf",
                "scale=160:90",
                "-pix_fmt",
                "gray",
                "-f",
                "rawvideo",
                "-",
            ])
            .output()
            .expect("ffmpeg");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), 160 * 90);
        out.stdout
    };
    let (x, y) = (gray(a), gray(b));
    let mean = |rows: std::ops::Range<usize>| {
        let n = rows.len() * 160;
        let sum: u64 = rows
            .flat_map(|r| (0..160).map(move |c| r * 160 + c))
            .map(|i| u64::from(x[i].abs_diff(y[i])))
            .sum();
        sum as f64 / n as f64
    };
    (mean(0..60), mean(76..88))
}

fn rfc3339_ms(secs: f64) -> String {
    let whole = secs.floor() as i64;
    let ms = ((secs - whole as f64) * 1000.0).round() as i64;
    rfc3339(whole).replace('Z', &format!(".{ms:03}Z"))
}
