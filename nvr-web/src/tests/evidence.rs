//! Evidence through the HTTP API: role checks on exports and holds, holds, audit of changes.

use super::*;

#[tokio::test]
async fn guards_get_403_on_exports_and_holds_and_the_attempt_is_audited() {
    let env = env().await;
    let g = login(&env, "guard").await;
    add_camera(&env, "c");
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
    add_camera(&env, "c");
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
    let r = send(
        &env,
        json_req(
            "PATCH",
            "/api/cameras/1",
            json!({"retain_max_bytes": 1}),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
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
        .insert_hold(
            &nvr_storage::NewHold {
                camera: cam,
                start_90k: 0,
                end_90k: i64::MAX,
                case_ref: "case",
                reason: "reason",
                created_by: "admin",
                created_90k: 0,
            },
            |_| note(),
        )
        .expect("hold");
    let c = send(&env, get("/api/cameras/1", Some(&admin))).await.json();
    assert!(
        c["retention"]["held_over_quota_bytes"].as_u64() > Some(0),
        "{c}"
    );
}

/// Deleting a camera whose footage is under an evidence hold: 409 naming the hold, and nothing
/// is deleted or stopped; released, the camera goes with one audited transaction.
#[tokio::test]
async fn a_camera_with_held_footage_cannot_be_deleted() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    let add = json!({"name": "gate", "url": "rtsp://10.0.0.1/", "skip_probe": true});
    let r = send(&env, json_req("POST", "/api/cameras", add, Some(&admin))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let cam = CameraId(1);
    let t0 = env.state.clock.realtime() - Duration90k::from_secs(600);
    record(&env.state.store, cam, t0, 30);
    let segments_before = env
        .state
        .store
        .db_for_tests()
        .all_segments()
        .expect("rows")
        .len();
    assert!(segments_before > 1);
    let hold = json!({"camera": 1, "start": t0.to_rfc3339(),
                      "end": (t0 + Duration90k::from_secs(60)).to_rfc3339(),
                      "case": "c-9", "reason": "assault"});
    let r = send(&env, json_req("POST", "/api/holds", hold, Some(&admin))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let hold_id = r.json()["id"].as_i64().expect("id");

    let del = Request::builder()
        .method("DELETE")
        .uri("/api/cameras/1?delete_recordings=true")
        .header(header::COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .body(Body::empty())
        .expect("req");
    let r = send(&env, del).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json());
    assert_eq!(r.json()["kind"], "held");
    assert_eq!(r.json()["holds"], json!([hold_id]));
    // Nothing went: the camera, every segment and file, and it is still enabled.
    let row = env.state.store.camera(cam).expect("db").expect("camera");
    assert!(row.enabled);
    assert_eq!(
        env.state
            .store
            .db_for_tests()
            .all_segments()
            .expect("rows")
            .len(),
        segments_before
    );
    for s in env.state.store.db_for_tests().all_segments().expect("rows") {
        assert!(env.state.store.segment_path(cam, s.id).exists());
    }
    assert_eq!(env.state.store.holds(true).expect("holds")[0].id, hold_id);

    let r = send(
        &env,
        json_req(
            "POST",
            &format!("/api/holds/{hold_id}/release"),
            json!({}),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let del = Request::builder()
        .method("DELETE")
        .uri("/api/cameras/1?delete_recordings=true")
        .header(header::COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .body(Body::empty())
        .expect("req");
    assert_eq!(send(&env, del).await.status, StatusCode::NO_CONTENT);
    assert!(env.state.store.camera(cam).expect("db").is_none());
    assert!(
        env.state
            .store
            .db_for_tests()
            .all_segments()
            .expect("rows")
            .is_empty()
    );
    assert!(!env.state.store.camera_dir(cam).exists());
    let entries = env
        .state
        .store
        .audit_entries(&nvr_storage::AuditFilter {
            action: Some("camera_delete".into()),
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    assert_eq!(entries.len(), 1);
    let detail: Value = serde_json::from_str(&entries[0].detail).expect("json");
    assert_eq!(
        detail["segments"].as_array().map(Vec::len),
        Some(segments_before)
    );
    assert!(
        nvr_storage::check::check(&env.state.store)
            .expect("check")
            .problems
            .is_empty()
    );
}
