//! Audio recording per camera from the command line: off unless `nvr camera add
//! --record-audio` or `nvr camera change --record-audio true` asks for it, shown by `nvr
//! camera list` and the API, and every switch in the audit log under the CLI's name.

mod common;

use common::*;
use std::time::Duration;

use serde_json::Value;

/// `nvr camera add --record-audio` of camera `name` at `url` into data directory `d`.
fn add_with_sound(d: &str, name: &str, url: &str) -> (i32, String) {
    nvr(
        &[
            "camera",
            "add",
            "--data-dir",
            d,
            "--name",
            name,
            "--url",
            url,
            "--record-audio",
        ],
        None,
    )
}

/// `nvr camera list`'s line of the camera named `name`.
fn list_line(rec: &Recorder, name: &str) -> String {
    let (code, out) = nvr(&["camera", "list", "--data-dir", rec.d()], None);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .find(|l| l.split('\t').nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .to_owned()
}

#[test]
fn audio_is_recorded_only_where_the_cli_switched_it_on_and_each_switch_is_audited() {
    let mut rec = Recorder::new();
    // Nothing listens on port 1: the cameras are added without a probe.
    let d = rec.d().to_owned();
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "camera",
            "add",
            "--data-dir",
            &d,
            "--skip-probe",
            "--name",
            name,
            "--url",
        ];
        let url = format!("rtsp://127.0.0.1:1/{name}");
        args.push(&url);
        args.extend_from_slice(extra);
        nvr(&args, None)
    };
    let (code, out) = add(
        "till",
        &["--record-audio", "--audio-reason", "Till disputes (DPIA 7)"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audio recorded"), "{out}");
    let (code, out) = add("yard", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("audio"), "{out}");
    assert!(list_line(&rec, "till").ends_with("\taudio"));
    assert!(!list_line(&rec, "yard").contains("audio"));

    // A change that names nothing, an unknown camera or a value that is not a boolean: an
    // error, nothing changed.
    let change = |args: &[&str]| {
        let mut all = vec!["camera", "change", "--data-dir", &d];
        all.extend_from_slice(args);
        nvr(&all, None)
    };
    for bad in [
        &["--camera", "yard"][..],
        &["--camera", "gate", "--record-audio", "true"],
        &["--camera", "yard", "--record-audio", "yes"],
    ] {
        let (code, out) = change(bad);
        assert_ne!(code, 0, "{bad:?}: {out}");
    }
    assert!(!list_line(&rec, "yard").contains("audio"));

    let (code, out) = change(&["--camera", "yard", "--record-audio", "true"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audio recorded"), "{out}");
    let (code, out) = change(&["--camera", "1", "--record-audio", "false"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audio not recorded"), "{out}");
    assert!(list_line(&rec, "yard").ends_with("\taudio"));
    assert!(!list_line(&rec, "till").contains("audio"));

    // The API says the same, and the log has every choice, by the CLI.
    rec.serve(&[]);
    let client = Client::login(&rec.base, "admin", ADMIN_PASSWORD);
    let cameras = client.cameras();
    let audio: Vec<(Value, Value)> = cameras
        .as_array()
        .expect("list")
        .iter()
        .map(|c| (c["name"].clone(), c["record_audio"].clone()))
        .collect();
    assert_eq!(
        audio,
        [("till".into(), false.into()), ("yard".into(), true.into())]
    );
    let entries = |action: &str| -> Vec<Value> {
        let r = client.get(&format!("/api/audit?action={action}"), &[]);
        assert_eq!(r.status, 200);
        let mut list = r.json().as_array().expect("entries").clone();
        list.reverse();
        list
    };
    let detail = |e: &Value| -> Value {
        match &e["detail"] {
            Value::String(s) => serde_json::from_str(s).expect("json"),
            d => d.clone(),
        }
    };
    let added = entries("camera_add");
    assert_eq!(added.len(), 2);
    assert_eq!(detail(&added[0])["record_audio"], true);
    assert_eq!(detail(&added[0])["audio_reason"], "Till disputes (DPIA 7)");
    assert_eq!(detail(&added[1])["record_audio"], false);
    let changed = entries("camera_change");
    assert_eq!(changed.len(), 2, "{changed:?}");
    for (e, (object, on)) in changed
        .iter()
        .zip([("camera:2", true), ("camera:1", false)])
    {
        assert!(
            e["actor"].as_str().expect("actor").starts_with("cli:"),
            "{e}"
        );
        assert_eq!(e["object"], object);
        assert_eq!(detail(e)["record_audio"], on);
        assert_eq!(detail(e)["record_audio_changed"], true);
    }
}

#[test]
fn adding_a_camera_says_what_sound_it_sends_and_records_none_unless_asked() {
    let rec = Recorder::new();
    let mut seen = Vec::new();
    for (codec, expected) in [
        ("aac", "; audio AAC, 48 kHz, mono"),
        ("pcma", "; audio G.711 A-law (PCMA), 8 kHz, mono"),
        ("pcmu", "; audio G.711 µ-law (PCMU), 8 kHz, mono"),
    ] {
        let cam = TestCam::start(
            &[
                "--width", "320", "--height", "240", "--fps", "10", "--no-sub", "--audio", codec,
            ],
            &rec.tmp.path().join(format!("testcam-{codec}.log")),
        );
        let (code, out) = rec.add_camera(codec, &cam.urls[0], None, false);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("camera answers: h264 320x240") && l.ends_with(expected)),
            "{codec}: {out}"
        );
        assert!(!out.contains("audio recorded"), "{out}");
        seen.push(list_line(&rec, codec));
    }
    // A camera without sound says none.
    let cam = TestCam::start(
        &["--width", "320", "--height", "240", "--no-sub"],
        &rec.tmp.path().join("testcam-silent.log"),
    );
    let (code, out) = rec.add_camera("silent", &cam.urls[0], None, false);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("audio"), "{out}");
    assert!(seen.iter().all(|l| !l.contains("audio")), "{seen:?}");
}

/// The camera named `name` as the API lists it.
fn camera(client: &Client, name: &str) -> Value {
    client
        .cameras()
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no camera {name}"))
        .clone()
}

#[test]
fn the_recorder_takes_a_cameras_sound_only_while_its_recording_is_switched_on() {
    let mut rec = Recorder::new();
    let start = |codec: &str| {
        TestCam::start(
            &[
                "--width", "320", "--height", "240", "--fps", "10", "--no-sub", "--audio", codec,
            ],
            &rec.tmp.path().join(format!("testcam-{codec}.log")),
        )
    };
    let (pcma, aac) = (start("pcma"), start("aac"));
    let d = rec.d().to_owned();
    let (code, out) = add_with_sound(&d, "till", &pcma.urls[0]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = rec.add_camera("yard", &aac.urls[0], None, false);
    assert_eq!(code, 0, "{out}");
    rec.serve(&[]);
    let client = Client::login(&rec.base, "admin", ADMIN_PASSWORD);
    let detail = |name: &str| camera(&client, name)["status_detail"].clone();
    let wait_audio = |name: &str, codec: &str, min_frames: u64| {
        wait_for(
            Duration::from_secs(90),
            &format!("{codec} audio of {name}"),
            || {
                let s = detail(name);
                (s["audio_codec"] == codec
                    && s["audio_frames_received"].as_u64().unwrap_or(0) >= min_frames)
                    .then_some(s)
            },
        )
    };

    // G.711 arrives as the camera sends it: 20 ms packets of 160 bytes, 50 a second.
    let till = wait_audio("till", "pcma", 100);
    let frames = till["audio_frames_received"].as_u64().expect("frames");
    assert_eq!(
        till["audio_bytes_received"].as_u64(),
        Some(frames * 160),
        "{till}"
    );
    assert_eq!(till["audio_frames_oversized"], 0);
    // The camera without sound recording sends sound too, and none of it is taken.
    let yard = wait_for(Duration::from_secs(60), "yard's video", || {
        let s = detail("yard");
        (s["frames_received"].as_u64().unwrap_or(0) >= 20).then_some(s)
    });
    assert_eq!(yard["audio_codec"], Value::Null, "{yard}");
    assert_eq!(yard["audio_frames_received"], 0, "{yard}");

    // Switched on through the API, the camera is reconnected and its AAC taken; switched off,
    // the next session takes none.
    let id = camera(&client, "yard")["id"].as_i64().expect("id");
    let r = client.post_method(
        "PATCH",
        &format!("/api/cameras/{id}"),
        serde_json::json!({"record_audio": true}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let yard = wait_audio("yard", "aac", 50);
    assert_eq!(yard["audio_frames_oversized"], 0);
    let id = camera(&client, "till")["id"].as_i64().expect("id");
    let r = client.post_method(
        "PATCH",
        &format!("/api/cameras/{id}"),
        serde_json::json!({"record_audio": false}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let before = wait_for(
        Duration::from_secs(60),
        "till reconnected without audio",
        || {
            let s = detail("till");
            (s["audio_codec"].is_null() && s["state"] == "recording").then_some(s)
        },
    );
    // Video goes on; the audio count does not move.
    let after = wait_for(
        Duration::from_secs(60),
        "till's video after the switch",
        || {
            let s = detail("till");
            (s["frames_received"].as_u64() > before["frames_received"].as_u64().map(|f| f + 20))
                .then_some(s)
        },
    );
    assert_eq!(
        after["audio_frames_received"],
        before["audio_frames_received"]
    );
}

#[test]
fn a_camera_whose_play_answer_omits_the_audio_rtptime_still_records_video_with_sound_on() {
    use common::hostile::{HostileCamera, Mode};
    let mut rec = Recorder::new();
    let camera = HostileCamera::start(Mode::AudioWithoutRtptime);
    let d = rec.d().to_owned();
    let (code, out) = add_with_sound(&d, "gate", &camera.url);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("; audio G.711 A-law (PCMA), 8 kHz, mono"),
        "{out}"
    );
    rec.serve(&[]);
    let client = Client::login(&rec.base, "admin", ADMIN_PASSWORD);
    // Both streams are set up; without RTP-Info for the audio each starts at its first
    // packet instead of the PLAY being refused, so video goes on.
    let s = wait_for(
        Duration::from_secs(60),
        "gate's video with audio set up",
        || {
            let s = camera_detail(&client, "gate");
            (s["audio_codec"] == "pcma" && s["frames_received"].as_u64().unwrap_or(0) >= 30)
                .then_some(s)
        },
    );
    assert_eq!(s["state"], "recording", "{s}");
    assert_eq!(s["failures"], 0, "{s}");
}

fn camera_detail(client: &Client, name: &str) -> Value {
    camera(client, name)["status_detail"].clone()
}

#[test]
fn malformed_audio_is_dropped_and_counted_while_the_video_records_on() {
    use common::hostile::{HostileCamera, Mode};
    let mut rec = Recorder::new();
    let camera = HostileCamera::start(Mode::GarbageAudio);
    let d = rec.d().to_owned();
    let (code, out) = add_with_sound(&d, "gate", &camera.url);
    assert_eq!(code, 0, "{out}");
    rec.serve(&[]);
    let client = Client::login(&rec.base, "admin", ADMIN_PASSWORD);
    let s = wait_for(
        Duration::from_secs(60),
        "gate's video beside refused audio",
        || {
            let s = camera_detail(&client, "gate");
            (s["audio_packets_refused"].as_u64().unwrap_or(0) >= 30
                && s["frames_received"].as_u64().unwrap_or(0) >= 30)
                .then_some(s)
        },
    );
    assert_eq!(s["audio_codec"], "aac", "{s}");
    assert_eq!(s["audio_frames_received"], 0, "{s}");
    assert_eq!(s["failures"], 0, "one session throughout: {s}");
    assert_eq!(
        camera.plays(),
        2,
        "the probe's PLAY and the recorder's, no reconnection"
    );
}
