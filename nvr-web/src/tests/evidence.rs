//! Evidence through the HTTP API: role checks on exports and holds, holds, audit of changes.

use super::*;

#[tokio::test]
async fn guards_get_403_on_exports_and_holds_and_the_attempt_is_audited() {
    let env = env().await;
    let g = login(&env, "guard").await;
    let url = CameraUrl::parse("rtsp://10.0.0.1/").expect("url");
    env.state
        .store
        .add_camera("c", &url, None, None)
        .expect("camera");
    let body = json!({"cameras": [1], "start": "2026-11-29T10:00:00Z", "end": "2026-11-29T10:02:00Z", "case": "c-1", "reason": "r"});
    assert_eq!(
        send(&env, json_req("POST", "/api/exports", body, Some(&g)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let hold = json!({"camera": 1, "start": "2026-11-29T10:00:00Z", "end": "2026-11-29T10:02:00Z", "reason": "r"});
    assert_eq!(
        send(&env, json_req("POST", "/api/holds", hold, Some(&g)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&env, get("/api/holds", Some(&g))).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&env, get("/api/audit", Some(&g))).await.status,
        StatusCode::FORBIDDEN
    );

    let ev = login(&env, "ev").await;
    let audit = send(&env, get("/api/audit?action=denied", Some(&ev)))
        .await
        .json();
    let denied: Vec<(String, String)> = audit
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or("").to_owned(),
                e["object"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for route in ["route:/api/exports", "route:/api/holds", "route:/api/audit"] {
        assert!(
            denied.contains(&("guard".to_owned(), route.to_owned())),
            "{route}: {denied:?}"
        );
    }
}

#[tokio::test]
async fn evidence_users_hold_and_release_ranges() {
    let env = env().await;
    let ev = login(&env, "ev").await;
    let url = CameraUrl::parse("rtsp://10.0.0.1/").expect("url");
    env.state
        .store
        .add_camera("c", &url, None, None)
        .expect("camera");
    let bad = json!({"camera": 1, "start": "2026-11-29T10:02:00Z", "end": "2026-11-29T10:00:00Z", "reason": "r"});
    assert_eq!(
        send(&env, json_req("POST", "/api/holds", bad, Some(&ev)))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let body = json!({"camera": 1, "start": "2026-11-29T10:00:00Z", "end": "2026-11-29T10:02:00Z", "case": "2026/117", "reason": "theft"});
    let r = send(&env, json_req("POST", "/api/holds", body, Some(&ev))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let id = r.json()["id"].as_i64().expect("id");
    assert_eq!(
        send(&env, get("/api/holds", Some(&ev)))
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let r = send(
        &env,
        json_req(
            "POST",
            &format!("/api/holds/{id}/release"),
            json!({}),
            Some(&ev),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&env, get("/api/holds", Some(&ev)))
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        send(&env, get("/api/holds?all=true", Some(&ev)))
            .await
            .json()[0]["released_by"],
        "ev"
    );
    let audit = send(&env, get("/api/audit?object=camera:1", Some(&ev)))
        .await
        .json();
    let actions: Vec<&str> = audit
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["hold_release", "hold"]);
}

#[tokio::test]
async fn user_and_camera_changes_are_audited_and_holds_over_quota_are_flagged() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    let new = json!({"username": "night", "password": "password123", "role": "guard"});
    let id = send(&env, json_req("POST", "/api/users", new, Some(&admin)))
        .await
        .json()["id"]
        .as_i64()
        .expect("id");
    send(
        &env,
        json_req(
            "PATCH",
            &format!("/api/users/{id}"),
            json!({"role": "evidence"}),
            Some(&admin),
        ),
    )
    .await;
    let body = json!({"name": "door", "url": "rtsp://10.0.0.1/", "skip_probe": true});
    assert_eq!(
        send(&env, json_req("POST", "/api/cameras", body, Some(&admin)))
            .await
            .status,
        StatusCode::CREATED
    );
    let audit = send(&env, get("/api/audit?actor=admin", Some(&admin)))
        .await
        .json();
    let actions: Vec<&str> = audit
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["user_add", "user_change", "camera_add", "login"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }

    // A 1-byte quota and a hold: the camera's recordings are over quota and cannot be deleted.
    let cam = CameraId(1);
    env.state
        .store
        .db()
        .set_camera_retention(cam, Some(1), None)
        .expect("quota");
    record(
        &env.state.store,
        cam,
        Time90k::parse_rfc3339("2026-11-29T10:00:00Z").expect("t"),
        20,
    );
    let c = send(&env, get("/api/cameras/1", Some(&admin))).await.json();
    assert_eq!(
        c["retention"]["held_over_quota_bytes"], 0,
        "no hold, nothing flagged"
    );
    env.state
        .store
        .db()
        .insert_hold(cam, 0, i64::MAX, "case", "reason", "admin", 0)
        .expect("hold");
    let c = send(&env, get("/api/cameras/1", Some(&admin))).await.json();
    assert!(
        c["retention"]["held_over_quota_bytes"].as_u64() > Some(0),
        "{c}"
    );
}
