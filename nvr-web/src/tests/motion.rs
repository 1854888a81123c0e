//! Motion through the HTTP API: any role searches (and each search is audited like playback),
//! regions and ranges are checked, settings are the admin's, and the live marks answer.

use super::*;
use nvr_storage::motion::{CellMask, MotionSecond, MotionSpan};

const T0: i64 = 1_795_959_900 * 90_000;

fn rfc(t: i64) -> String {
    Time90k(t).to_rfc3339()
}

/// A camera with 20 s of recording whose index has motion at seconds 3-5 in the top left.
fn camera_with_motion(env: &Env) -> CameraId {
    let camera = add_camera(env, "m");
    record(&env.state.store, camera, Time90k(T0), 200);
    let mut cells = CellMask::EMPTY;
    cells.set(0, 0);
    let seconds = (3..6)
        .map(|s| MotionSecond {
            second: T0 / 90_000 + s,
            cells,
            score: 64,
        })
        .collect();
    env.state
        .store
        .append_motion(&[(
            camera,
            MotionSpan {
                start_90k: T0,
                end_90k: T0 + 20 * 90_000,
                frames: 100,
                skipped: 0,
                seconds,
            },
        )])
        .expect("index");
    camera
}

#[tokio::test]
async fn any_role_searches_by_region_and_each_search_is_on_record() {
    let env = env().await;
    let camera = camera_with_motion(&env);
    let g = login(&env, "guard").await;
    let range = format!("start={}&end={}", rfc(T0), rfc(T0 + 20 * 90_000));
    let r = send(
        &env,
        get(
            &format!("/api/cameras/{camera}/motion?{range}&buckets=20"),
            Some(&g),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(
        body["intervals"],
        json!([{"start": rfc(T0 + 3 * 90_000), "end": rfc(T0 + 6 * 90_000), "peak": 0.063}])
    );
    assert_eq!(body["buckets"].as_array().map(Vec::len), Some(20));
    assert_eq!(body["buckets"][4], json!(0.251));
    assert_eq!(body["not_indexed"], json!([]));
    let elsewhere = send(
        &env,
        get(
            &format!("/api/cameras/{camera}/motion?{range}&region=0.5,0.5,1,1"),
            Some(&g),
        ),
    )
    .await
    .json();
    assert_eq!(elsewhere["intervals"], json!([]));
    let a = login(&env, "admin").await;
    let audit = send(&env, get("/api/audit?action=motion_search", Some(&a)))
        .await
        .json();
    let entries = audit.as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["actor"], "guard");
    assert_eq!(entries[0]["object"], format!("camera:{camera}"));
    assert_eq!(entries[0]["detail"]["region"], json!([0.5, 0.5, 1.0, 1.0]));
}

#[tokio::test]
async fn bad_searches_are_400_and_unknown_cameras_404() {
    let env = env().await;
    let camera = camera_with_motion(&env);
    let g = login(&env, "guard").await;
    let ok = format!("start={}&end={}", rfc(T0), rfc(T0 + 90_000));
    for q in [
        format!("start={}", rfc(T0)),
        format!("start={}&end={}", rfc(T0), rfc(T0)),
        format!("start={}&end={}", rfc(T0), rfc(T0 + 32 * 86_400 * 90_000)),
        format!("{ok}&region=0,0,1"),
        format!("{ok}&region=0.5,0,0.2,1"),
        format!("{ok}&region=0,0,1,1.5"),
        format!("{ok}&buckets=100000"),
    ] {
        let r = send(
            &env,
            get(&format!("/api/cameras/{camera}/motion?{q}"), Some(&g)),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
    }
    let month = format!("start={}&end={}", rfc(T0), rfc(T0 + 31 * 86_400 * 90_000));
    let r = send(
        &env,
        get(&format!("/api/cameras/{camera}/motion?{month}"), Some(&g)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "31 days is allowed");
    let r = send(
        &env,
        get(&format!("/api/cameras/999/motion?{ok}"), Some(&g)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn settings_are_the_admins_and_are_audited() {
    let env = env().await;
    let camera = camera_with_motion(&env);
    let uri = format!("/api/cameras/{camera}/motion/settings");
    let g = login(&env, "guard").await;
    let body = send(&env, get(&uri, Some(&g))).await.json();
    assert_eq!(body["sensitivity"], 5);
    assert_eq!(body["enabled"], true);
    assert_eq!(
        body["status"]["state"], "off",
        "no analysis runs in this test server"
    );
    let change =
        json!({"sensitivity": 8, "mask": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]});
    let r = send(&env, json_req("PATCH", &uri, change.clone(), Some(&g))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let a = login(&env, "admin").await;
    for bad in [
        json!({"sensitivity": 0}),
        json!({"sensitivity": 11}),
        json!({"mask": [1, 2]}),
        json!({"x": 1}),
    ] {
        let r = send(&env, json_req("PATCH", &uri, bad.clone(), Some(&a))).await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
    }
    let r = send(&env, json_req("PATCH", &uri, change, Some(&a))).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = send(&env, get(&uri, Some(&g))).await.json();
    assert_eq!(body["sensitivity"], 8);
    assert_eq!(body["mask"][15], 3);
    let r = send(
        &env,
        json_req("PATCH", &uri, json!({"mask": null}), Some(&a)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(send(&env, get(&uri, Some(&g))).await.json()["mask"][15], 0);
    let audit = send(&env, get("/api/audit?action=motion_settings", Some(&a)))
        .await
        .json();
    assert_eq!(audit.as_array().map(Vec::len), Some(2));
    let live = send(&env, get("/api/motion/live", Some(&g))).await.json();
    assert_eq!(live[0]["camera"], camera.0);
    assert_eq!(live[0]["motion_now"], false);
}
