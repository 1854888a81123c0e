//! Motion analysis end to end: the real binary records three test cameras whose scenes are
//! locked to the wall clock (a box moving during known seconds, a sudden brightness change,
//! sensor noise only), and the motion API finds every known interval within a second, nothing
//! on the noise, the flash as a scene change rather than motion, and nothing in a region the
//! box never crosses. A camera with a sub-stream is analysed on it. Reindexing the footage with `nvr motion reindex` finds the same, and
//! `nvr check` validates the index against the segments. (That analysis never costs a
//! recorded frame, even when its decoder fails or panics, is shown in nvr-motion's tests.)

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Client, Recorder, TestCam, nvr, parse_rfc3339, rfc3339, wait_for};
use serde_json::Value;

/// The scenes' period and events (seconds into each period).
const PERIOD: i64 = 20;
const MOVING_EVENTS: &str = "5-9,13-15";
const FLASH_EVENTS: &str = "7-12";
/// When in a period to start the recorder so that analysis calibrates while a box moves (5-9
/// and 13-15: starting at 3.5 or 11.5 s).
const CALIBRATION_OVERLAPS_AT: f64 = 3.5;
/// Analysis writes what it found every 5 s; give it that and a margin.
const INDEX_DELAY: i64 = 8;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn camera(scene: &str, events: &str, log: &std::path::Path) -> TestCam {
    camera_sized(scene, events, (640, 360), log)
}

/// A camera whose main stream is `size`; its sub-stream (`/cam1_sub`) is 640x360.
fn camera_sized(scene: &str, events: &str, size: (u32, u32), log: &std::path::Path) -> TestCam {
    let (width, height) = (size.0.to_string(), size.1.to_string());
    TestCam::start(
        &[
            "--mode",
            "live",
            "--width",
            &width,
            "--height",
            &height,
            "--fps",
            "10",
            "--keyint-frames",
            "10",
            "--bitrate-kbps",
            "600",
            "--scene",
            scene,
            "--scene-period-secs",
            &PERIOD.to_string(),
            "--scene-events",
            events,
        ],
        log,
    )
}

/// (start, end) seconds after `p0` of each interval the API finds in `[p0, p0 + PERIOD)`.
fn intervals(c: &Client, camera: i64, p0: i64, region: Option<&str>) -> (Vec<(f64, f64)>, Value) {
    let region = region.map_or(String::new(), |r| format!("&region={r}"));
    let r = c.get(
        &format!(
            "/api/cameras/{camera}/motion?start={}&end={}{region}",
            rfc3339(p0),
            rfc3339(p0 + PERIOD)
        ),
        &[],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = r.json();
    let found = body["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| {
            let s = parse_rfc3339(i["start"].as_str().expect("start")) - p0 as f64;
            let e = parse_rfc3339(i["end"].as_str().expect("end")) - p0 as f64;
            (s, e)
        })
        .collect();
    (found, body)
}

/// `found` matches `want` to a second; on failure the message holds the camera's analysis
/// status (pictures analysed and skipped), which says whether the analysis was behind.
fn assert_within_a_second(c: &Client, camera: i64, found: &[(f64, f64)], want: &[(f64, f64)]) {
    let close = found.len() == want.len()
        && found
            .iter()
            .zip(want)
            .all(|((s, e), (ws, we))| (s - ws).abs() <= 1.0 && (e - we).abs() <= 1.0);
    if !close {
        let status = c
            .cameras()
            .as_array()
            .and_then(|cams| cams.iter().find(|x| x["id"] == camera).cloned())
            .map(|x| x["motion"].clone());
        panic!("camera {camera}: found {found:?}, want {want:?}; analysis {status:?}");
    }
}

#[test]
fn the_motion_api_finds_known_motion_and_nothing_else() {
    let mut rec = Recorder::new();
    let log = |n: &str| rec.tmp.path().join(format!("{n}.log"));
    let moving = camera("moving", MOVING_EVENTS, &log("moving"));
    let flash = camera("flash", FLASH_EVENTS, &log("flash"));
    let noise = camera("noise", "1-2", &log("noise"));
    for (name, cam) in [("moving", &moving), ("flash", &flash), ("noise", &noise)] {
        let (code, out) = rec.add_camera(name, &cam.urls[0], None, false);
        assert_eq!(code, 0, "{out}");
    }
    // A 1280x720 camera with a 640x360 sub-stream: analysis reads the sub-stream, every
    // sampled picture (its main stream alone would be analysed at key frames only).
    let hd = camera_sized("moving", MOVING_EVENTS, (1280, 720), &log("hd"));
    let (code, out) = nvr(
        &[
            "camera",
            "add",
            "--data-dir",
            rec.d(),
            "--name",
            "hd",
            "--url",
            &hd.urls[0],
            "--sub-url",
            &hd.sub_urls[0],
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    // Analysis starts (and calibrates its background) while the boxes move: what passes then
    // must leave no ghost in the period measured. (A recorder started at another moment once
    // saw motion for seconds where the box had been.)
    let into_period = now().rem_euclid(PERIOD as f64);
    let start_at = [
        CALIBRATION_OVERLAPS_AT,
        CALIBRATION_OVERLAPS_AT + 8.0,
        PERIOD as f64 + CALIBRATION_OVERLAPS_AT,
    ]
    .into_iter()
    .find(|&t| t >= into_period)
    .expect("a start");
    std::thread::sleep(Duration::from_secs_f64(start_at - into_period));
    rec.serve(&[]);
    let c = rec.client();
    let ids: Vec<i64> = {
        let cams = c.cameras();
        ["moving", "flash", "noise", "hd"]
            .iter()
            .map(|n| {
                cams.as_array()
                    .expect("cameras")
                    .iter()
                    .find(|x| x["name"] == *n)
                    .and_then(|x| x["id"].as_i64())
                    .expect("id")
            })
            .collect()
    };
    // The first whole period that starts after every camera records (and its analysis has
    // its background), then wait until it is over and indexed.
    wait_for(Duration::from_secs(60), "every camera analysing", || {
        let cams = c.cameras();
        cams.as_array()?
            .iter()
            .all(|x| x["motion"]["state"] == "analysing")
            .then_some(())
    });
    let p0 = ((now() as i64 + 2) / PERIOD + 1) * PERIOD;
    let ready_at = (p0 + PERIOD + INDEX_DELAY) as f64;
    std::thread::sleep(Duration::from_secs_f64((ready_at - now()).max(0.0)));

    let (found, body) = intervals(&c, ids[0], p0, None);
    assert_within_a_second(&c, ids[0], &found, &[(5.0, 9.0), (13.0, 15.0)]);
    assert_eq!(body["not_indexed"], serde_json::json!([]), "{body}");
    let peak = body["intervals"][0]["peak"].as_f64().expect("peak");
    assert!(
        peak > 0.005 && peak < 0.1,
        "a box of 2.5% of the picture: {peak}"
    );
    // The box only crosses the lower left: a region elsewhere sees nothing.
    for region in ["0.5,0,1,1", "0,0,1,0.5"] {
        let (found, _) = intervals(&c, ids[0], p0, Some(region));
        assert_eq!(found, vec![], "region {region}");
    }
    let (found, _) = intervals(&c, ids[0], p0, Some("0.1,0.6,0.4,0.8"));
    assert_within_a_second(&c, ids[0], &found, &[(5.0, 9.0), (13.0, 15.0)]);

    // The flash is a scene change at its start and end, not motion.
    let (found, body) = intervals(&c, ids[1], p0, None);
    assert_eq!(found, vec![], "{body}");
    let changes: Vec<f64> = body["scene_changes"]
        .as_array()
        .expect("scene changes")
        .iter()
        .map(|t| parse_rfc3339(t.as_str().expect("time")) - p0 as f64)
        .collect();
    for at in [7.0, 12.0] {
        assert!(
            changes.iter().any(|c| (c - at).abs() <= 1.0),
            "a scene change near {at} s: {changes:?}"
        );
    }
    // Sensor noise alone is never motion.
    let (found, body) = intervals(&c, ids[2], p0, None);
    assert_eq!(found, vec![], "{body}");
    assert_eq!(body["scene_changes"], serde_json::json!([]));

    // The camera with a sub-stream: analysed on it, every sampled picture, same findings.
    let hd_camera = c
        .cameras()
        .as_array()
        .expect("cameras")
        .iter()
        .find(|x| x["name"] == "hd")
        .cloned()
        .expect("hd");
    assert_eq!(hd_camera["motion"]["decode"], "all", "{hd_camera}");
    let (found, _) = intervals(&c, ids[3], p0, None);
    assert_within_a_second(&c, ids[3], &found, &[(5.0, 9.0), (13.0, 15.0)]);

    // Reindexing the period from storage, beside the running server, finds the same.
    let (code, out) = nvr(
        &[
            "motion",
            "reindex",
            "--data-dir",
            rec.d(),
            "--camera",
            "moving",
            "--start",
            &rfc3339(p0),
            "--end",
            &rfc3339(p0 + PERIOD),
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reindexed"), "{out}");
    let (found, _) = intervals(&c, ids[0], p0, None);
    assert_within_a_second(&c, ids[0], &found, &[(5.0, 9.0), (13.0, 15.0)]);
    let (found, _) = intervals(&c, ids[0], p0, Some("0.5,0,1,1"));
    assert_eq!(found, vec![]);

    rec.stop();
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" motion rows"), "{out}");
    let rows: u64 = out
        .split(" frames, ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("motion rows in the check report");
    assert!(rows > 0, "{out}");
    drop((moving, flash, noise, hd));
}
