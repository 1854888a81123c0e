//! Users and roles through the HTTP API: first-run setup, user administration, own password.

use super::*;

#[tokio::test]
async fn first_run_setup_creates_one_admin_only() {
    let env = env_with(false).await;
    assert_eq!(
        send(&env, get("/api/setup", None)).await.json()["needed"],
        true
    );
    let body = json!({"username": "boss", "password": "long enough pw"});
    let r = send(&env, json_req("POST", "/api/setup", body.clone(), None)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.json()["role"], "admin");
    assert!(r.headers.contains_key(header::SET_COOKIE));
    assert_eq!(
        send(&env, get("/api/setup", None)).await.json()["needed"],
        false
    );
    let again = json!({"username": "intruder", "password": "long enough pw"});
    assert_eq!(
        send(&env, json_req("POST", "/api/setup", again, None))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(env.state.store.user_count().expect("count"), 1);
}

#[tokio::test]
async fn admins_manage_users_and_guards_cannot() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    let guard = login(&env, "guard").await;
    assert_eq!(
        send(&env, get("/api/users", Some(&guard))).await.status,
        StatusCode::FORBIDDEN
    );
    let new = json!({"username": "night", "password": "password123", "role": "guard"});
    assert_eq!(
        send(
            &env,
            json_req("POST", "/api/users", new.clone(), Some(&guard))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let r = send(
        &env,
        json_req("POST", "/api/users", new.clone(), Some(&admin)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let id = r.json()["id"].as_i64().expect("id");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("argon2"),
        "hash leaked"
    );
    assert_eq!(
        send(&env, json_req("POST", "/api/users", new, Some(&admin)))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let short = json!({"username": "x", "password": "short", "role": "guard"});
    assert_eq!(
        send(&env, json_req("POST", "/api/users", short, Some(&admin)))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Promote, then disable: the disabled user's sessions end.
    let night = login(&env, "night").await;
    let r = send(
        &env,
        json_req(
            "PATCH",
            &format!("/api/users/{id}"),
            json!({"role": "evidence"}),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(r.json()["role"], "evidence");
    // A role change ends the user's sessions (and its streams); it logs in again.
    assert_eq!(
        send(&env, get("/api/me", Some(&night))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let night = login(&env, "night").await;
    assert_eq!(
        send(&env, get("/api/me", Some(&night))).await.json()["role"],
        "evidence"
    );
    send(
        &env,
        json_req(
            "PATCH",
            &format!("/api/users/{id}"),
            json!({"disabled": true}),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(
        send(&env, get("/api/me", Some(&night))).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The last admin can neither be demoted nor delete itself.
    let admin_id = env
        .state
        .store
        .user_by_name("admin")
        .expect("db")
        .expect("admin")
        .id
        .0;
    let r = send(
        &env,
        json_req(
            "PATCH",
            &format!("/api/users/{admin_id}"),
            json!({"role": "guard"}),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json());
    let r = send(
        &env,
        Request::builder()
            .method("DELETE")
            .uri(format!("/api/users/{admin_id}"))
            .header(header::COOKIE, &admin.cookie)
            .header("x-csrf-token", &admin.csrf)
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(
        &env,
        Request::builder()
            .method("DELETE")
            .uri(format!("/api/users/{id}"))
            .header(header::COOKIE, &admin.cookie)
            .header("x-csrf-token", &admin.csrf)
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn own_password_change_needs_the_current_one() {
    let env = env().await;
    let g = login(&env, "guard").await;
    let wrong = json!({"current": "nope", "new": "new password 1"});
    assert_eq!(
        send(&env, json_req("POST", "/api/me/password", wrong, Some(&g)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let right = json!({"current": "password123", "new": "new password 1"});
    assert_eq!(
        send(&env, json_req("POST", "/api/me/password", right, Some(&g)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let old = json_req(
        "POST",
        "/api/login",
        json!({"username": "guard", "password": "password123"}),
        None,
    );
    assert_eq!(send(&env, old).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn setup_beyond_loopback_needs_the_console_code_once() {
    let env = env_with_options(
        false,
        nvr_app::AppOptions {
            setup_code_required: true,
            ..Default::default()
        },
    )
    .await;
    let state = send(&env, get("/api/setup", None)).await.json();
    assert_eq!(state["needed"], true);
    assert_eq!(state["code_required"], true);
    for code in [None, Some("AAAA-BBBB-CCCC"), Some("")] {
        let mut body = json!({"username": "boss", "password": "long enough pw"});
        if let Some(c) = code {
            body["setup_code"] = json!(c);
        }
        let r = send(&env, json_req("POST", "/api/setup", body, None)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{code:?}: {:?}", r.json());
        assert_eq!(r.json()["kind"], "setup_code");
    }
    assert_eq!(env.state.store.user_count().expect("count"), 0);
    // The code the console shows (`nvr serve` prints this), typed loosely.
    let code = env.state.app.setup_code().expect("code").expect("pending");
    assert_eq!(
        env.state.app.setup_code().expect("code"),
        Some(code.clone()),
        "stable"
    );
    let typed = code.to_lowercase().replace('-', " ");
    let body = json!({"username": "boss", "password": "long enough pw", "setup_code": typed});
    let r = send(&env, json_req("POST", "/api/setup", body.clone(), None)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    // One time only: the code is gone with the first account.
    assert_eq!(env.state.app.setup_code().expect("code"), None);
    assert_eq!(
        env.state
            .store
            .db_for_tests()
            .setup_code_sealed()
            .expect("db"),
        None
    );
    let mut again = body;
    again["username"] = json!("intruder");
    assert_eq!(
        send(&env, json_req("POST", "/api/setup", again, None))
            .await
            .status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn usernames_are_bounded_and_reserved_names_refused() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    for name in ["system", "Export", "cli:root", &"x".repeat(65), "a\nb"] {
        let body = json!({"username": name, "password": "long enough pw", "role": "guard"});
        let r = send(&env, json_req("POST", "/api/users", body, Some(&admin))).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{name:?}: {:?}",
            r.json()
        );
    }
    // A megabyte-long username at login: refused before any work, never logged or audited raw.
    let huge = "u".repeat(60_000);
    let r = send(
        &env,
        json_req(
            "POST",
            "/api/login",
            json!({"username": huge, "password": "x"}),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    env.state.store.flush_audit();
    let audit = env
        .state
        .store
        .audit_entries(&nvr_storage::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .expect("audit");
    assert!(
        audit
            .iter()
            .all(|e| e.actor.len() <= 64 && e.object.len() <= 80)
    );
}

/// A user who loops `POST /api/me/password` while an admin disables them must not undo the
/// disable (the old handler wrote back a row read before two Argon2 runs).
#[tokio::test]
async fn a_password_change_loop_cannot_undo_a_disable() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    let id = env
        .state
        .store
        .user_by_name("guard")
        .expect("db")
        .expect("guard")
        .id
        .0;
    for round in 0..6u64 {
        let r = send(
            &env,
            json_req(
                "PATCH",
                &format!("/api/users/{id}"),
                json!({"disabled": false, "password": "password123"}),
                Some(&admin),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        let g = login(&env, "guard").await;
        let looping = async {
            let mut current = "password123".to_owned();
            for i in 0..8 {
                let new = format!("loop password {round}-{i}");
                let body = json!({"current": current, "new": new});
                let r = send(&env, json_req("POST", "/api/me/password", body, Some(&g))).await;
                if r.status != StatusCode::NO_CONTENT {
                    break;
                }
                current = new;
            }
        };
        let disable = async {
            // Land the disable at a different point of the loop each round.
            tokio::time::sleep(Duration::from_millis(40 * round)).await;
            let r = send(
                &env,
                json_req(
                    "PATCH",
                    &format!("/api/users/{id}"),
                    json!({"disabled": true}),
                    Some(&admin),
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        };
        tokio::join!(looping, disable);
        let row = env
            .state
            .store
            .user(nvr_core::UserId(id))
            .expect("db")
            .expect("user");
        assert!(row.disabled, "round {round}: the disable was undone");
        assert_eq!(
            send(&env, get("/api/me", Some(&g))).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}
