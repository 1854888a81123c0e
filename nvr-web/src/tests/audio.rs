//! Audio recording per camera through the HTTP API: off unless asked for, switched only by
//! admins, every switch in the audit log, and bad input refused without a change.

use super::*;

/// The `camera_add` and `camera_change` entries' details, oldest first.
fn audit_details(env: &Env, action: &str) -> Vec<Value> {
    let mut entries = env
        .state
        .store
        .audit_entries(&nvr_storage::AuditFilter {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        })
        .expect("audit");
    entries.reverse();
    entries
        .iter()
        .map(|e| serde_json::from_str(&e.detail).expect("json"))
        .collect()
}

#[tokio::test]
async fn audio_is_off_until_an_admin_switches_it_on_and_each_switch_is_audited() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    let add = |body: Value| {
        let env = &env;
        let admin = &admin;
        async move { send(env, json_req("POST", "/api/cameras", body, Some(admin))).await }
    };
    // Off by default; on when the admin asks for it at once.
    let r = add(json!({"name": "gate", "url": "rtsp://10.0.0.1/", "skip_probe": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["record_audio"], false);
    let gate = r.json()["id"].as_i64().expect("id");
    let r = add(
        json!({"name": "till", "url": "rtsp://10.0.0.2/", "skip_probe": true,
                       "record_audio": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["record_audio"], true);
    let added = audit_details(&env, "camera_add");
    assert_eq!(
        added
            .iter()
            .map(|d| d["record_audio"].clone())
            .collect::<Vec<_>>(),
        [json!(false), json!(true)]
    );

    // Guards and evidence users see the setting but cannot change it.
    let uri = format!("/api/cameras/{gate}");
    for user in ["guard", "ev"] {
        let l = login(&env, user).await;
        let r = send(
            &env,
            json_req("PATCH", &uri, json!({"record_audio": true}), Some(&l)),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}");
        let list = send(&env, get("/api/cameras", Some(&l))).await;
        assert_eq!(list.status, StatusCode::OK);
        let audio: Vec<Value> = list
            .json()
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["record_audio"].clone())
            .collect();
        assert_eq!(audio, [json!(false), json!(true)], "{user}");
    }
    // Not a boolean: refused, nothing changed, nothing logged.
    let r = send(
        &env,
        json_req("PATCH", &uri, json!({"record_audio": "yes"}), Some(&admin)),
    )
    .await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    // A reason without a switch, or one too long or with control characters: 400, nothing
    // changed, nothing logged.
    for body in [
        json!({"audio_reason": "no switch"}),
        json!({"record_audio": false, "audio_reason": "already off"}),
        json!({"record_audio": true, "audio_reason": "x".repeat(501)}),
        json!({"record_audio": true, "audio_reason": "bell\u{7}"}),
    ] {
        let r = send(&env, json_req("PATCH", &uri, body.clone(), Some(&admin))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
    }
    assert!(audit_details(&env, "camera_change").is_empty());
    let row = env
        .state
        .store
        .camera(CameraId(gate))
        .expect("db")
        .expect("row");
    assert!(!row.record_audio);

    // The admin switches it on, then off; each switch is its own entry, saying so.
    let reason = "Disputes at the gate intercom; DPIA 2026-14";
    for on in [true, false] {
        let body = if on {
            json!({"record_audio": true, "audio_reason": format!("  {reason}\n")})
        } else {
            json!({"record_audio": false})
        };
        let r = send(&env, json_req("PATCH", &uri, body, Some(&admin))).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.json()["record_audio"], on);
        let row = env
            .state
            .store
            .camera(CameraId(gate))
            .expect("db")
            .expect("row");
        assert_eq!(row.record_audio, on);
    }
    // A change of something else keeps the setting and does not claim to switch it.
    let r = send(
        &env,
        json_req("PATCH", &uri, json!({"name": "front gate"}), Some(&admin)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["record_audio"], false);
    let changes = audit_details(&env, "camera_change");
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(
        changes
            .iter()
            .map(|d| (
                d["record_audio"].clone(),
                d["record_audio_changed"].clone(),
                d["audio_reason"].clone()
            ))
            .collect::<Vec<_>>(),
        [
            (json!(true), json!(true), json!(reason)),
            (json!(false), json!(true), Value::Null),
            (json!(false), Value::Null, Value::Null),
        ]
    );
}
