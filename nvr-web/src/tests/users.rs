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
    assert_eq!(env.state.store.db().user_count().expect("count"), 1);
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
        .db()
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
