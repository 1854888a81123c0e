//! HTTP tests through `router(...).oneshot(...)`: no socket, a real store in a temporary
//! directory, and a fake camera source that answers as told (harness in `harness.rs`).

mod harness;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use nvr_core::{CameraId, CameraUrl, Duration90k, Time90k};
use serde_json::{Value, json};

use harness::*;

#[tokio::test]
async fn every_api_route_but_login_needs_a_session() {
    let env = env().await;
    let routes = [
        ("GET", "/api/me".to_owned()),
        ("POST", "/api/logout".to_owned()),
        ("GET", "/api/cameras".to_owned()),
        ("POST", "/api/cameras".to_owned()),
        ("POST", "/api/cameras/test".to_owned()),
        ("GET", "/api/cameras/1".to_owned()),
        ("PATCH", "/api/cameras/1".to_owned()),
        ("DELETE", "/api/cameras/1".to_owned()),
        ("GET", "/api/cameras/1/live".to_owned()),
        ("GET", "/api/cameras/1/snapshot.jpg".to_owned()),
        ("GET", "/api/users".to_owned()),
        ("POST", "/api/users".to_owned()),
        ("PATCH", "/api/users/1".to_owned()),
        ("DELETE", "/api/users/1".to_owned()),
        ("POST", "/api/me/password".to_owned()),
        ("GET", "/api/status".to_owned()),
        ("GET", "/metrics".to_owned()),
        ("GET", "/api/exports".to_owned()),
        ("POST", "/api/exports".to_owned()),
        ("GET", "/api/exports/1".to_owned()),
        ("GET", "/api/exports/1/bundle.zip".to_owned()),
        ("GET", "/api/holds".to_owned()),
        ("POST", "/api/holds".to_owned()),
        ("POST", "/api/holds/1/release".to_owned()),
        ("GET", "/api/audit".to_owned()),
        ("GET", format!("/api/cameras/1/recordings?{DAY}")),
        ("GET", format!("/api/cameras/1/view.mp4?{DAY}")),
        ("GET", format!("/api/cameras/1/motion?{DAY}")),
        ("GET", "/api/cameras/1/motion/settings".to_owned()),
        ("PATCH", "/api/cameras/1/motion/settings".to_owned()),
        ("GET", "/api/motion/live".to_owned()),
    ];
    for (method, uri) in routes {
        let r = send(
            &env,
            json_req(method, &uri, json!({"url": "rtsp://10.0.0.1/"}), None),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    // A forged cookie is no better.
    let forged = Login {
        cookie: "nvr_session=00".into(),
        csrf: "x".into(),
    };
    assert_eq!(
        send(&env, get("/api/cameras", Some(&forged))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn login_logout_and_csrf() {
    let env = env().await;
    let bad = send(
        &env,
        json_req(
            "POST",
            "/api/login",
            json!({"username": "admin", "password": "nope"}),
            None,
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let unknown = send(
        &env,
        json_req(
            "POST",
            "/api/login",
            json!({"username": "who", "password": "nope"}),
            None,
        ),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad.json()["error"],
        unknown.json()["error"],
        "same answer for unknown users"
    );

    let l = login(&env, "admin").await;
    assert_eq!(
        send(&env, get("/api/me", Some(&l))).await.json()["role"],
        "admin"
    );
    // A POST without the CSRF token is refused even with a valid cookie.
    let no_csrf = Request::builder()
        .method("POST")
        .uri("/api/logout")
        .header(header::COOKIE, &l.cookie)
        .body(Body::empty())
        .expect("req");
    assert_eq!(send(&env, no_csrf).await.status, StatusCode::FORBIDDEN);
    let wrong_csrf = Login {
        cookie: l.cookie.clone(),
        csrf: "0".repeat(64),
    };
    assert_eq!(
        send(
            &env,
            json_req("POST", "/api/logout", json!({}), Some(&wrong_csrf))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&env, json_req("POST", "/api/logout", json!({}), Some(&l)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&env, get("/api/me", Some(&l))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn eleventh_failed_login_is_throttled() {
    let env = env().await;
    for i in 0..10 {
        let r = send(
            &env,
            json_req(
                "POST",
                "/api/login",
                json!({"username": "admin", "password": "bad"}),
                None,
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = send(
        &env,
        json_req(
            "POST",
            "/api/login",
            json!({"username": "admin", "password": "password123"}),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn guards_cannot_add_or_test_cameras() {
    let env = env().await;
    for user in ["guard", "ev"] {
        let l = login(&env, user).await;
        let body = json!({"name": "x", "url": "rtsp://10.0.0.1/", "skip_probe": true});
        assert_eq!(
            send(
                &env,
                json_req("POST", "/api/cameras", body.clone(), Some(&l))
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&env, json_req("POST", "/api/cameras/test", body, Some(&l)))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&env, get("/api/cameras", Some(&l))).await.status,
            StatusCode::OK
        );
    }
    assert!(env.state.store.cameras().expect("cameras").is_empty());
}

#[tokio::test]
async fn bad_camera_input_gets_a_clear_4xx_and_writes_nothing() {
    let env = env().await;
    let l = login(&env, "admin").await;
    let cases = [
        (
            json!({"name": "a", "url": "http://10.0.0.1/"}),
            StatusCode::BAD_REQUEST,
            "scheme",
        ),
        (
            json!({"name": "a", "url": "rtsp://admin:pw@10.0.0.1/"}),
            StatusCode::BAD_REQUEST,
            "username or password",
        ),
        (
            json!({"name": "a", "url": "rtsp://cam.example/"}),
            StatusCode::BAD_REQUEST,
            "resolving names is disabled",
        ),
        (
            json!({"name": "a", "url": "not a url"}),
            StatusCode::BAD_REQUEST,
            "not a valid URL",
        ),
        (
            json!({"name": "a/b", "url": "rtsp://10.0.0.1/"}),
            StatusCode::BAD_REQUEST,
            "camera name",
        ),
        (
            json!({"url": "rtsp://10.0.0.1/"}),
            StatusCode::BAD_REQUEST,
            "camera name must be 1 to 64 characters",
        ),
        (
            json!({"name": "a", "url": "rtsp://10.0.0.1/", "password": "x"}),
            StatusCode::BAD_REQUEST,
            "needs a username",
        ),
        // The fake source says the camera cannot be reached.
        (
            json!({"name": "a", "url": "rtsp://10.0.0.1/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "fake camera failure",
        ),
    ];
    for (body, status, needle) in cases {
        let r = send(
            &env,
            json_req("POST", "/api/cameras", body.clone(), Some(&l)),
        )
        .await;
        assert_eq!(r.status, status, "{body}: {:?}", r.json());
        let msg = r.json()["error"].as_str().unwrap_or("").to_owned();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let unreachable = send(
        &env,
        json_req(
            "POST",
            "/api/cameras",
            json!({"name": "a", "url": "rtsp://10.0.0.1/"}),
            Some(&l),
        ),
    )
    .await;
    assert_eq!(unreachable.json()["kind"], "unreachable");
    // Malformed JSON is a 4xx too.
    let r = send(
        &env,
        Request::builder()
            .method("POST")
            .uri("/api/cameras")
            .header(header::COOKIE, &l.cookie)
            .header("x-csrf-token", &l.csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{nope"))
            .expect("req"),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(env.state.store.cameras().expect("cameras").is_empty());

    // skip_probe adds it; a second one with the same name conflicts.
    let body = json!({"name": "a", "url": "rtsp://10.0.0.1/", "username": "u", "password": "s3cret-pw", "skip_probe": true});
    let r = send(
        &env,
        json_req("POST", "/api/cameras", body.clone(), Some(&l)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    assert_eq!(
        send(&env, json_req("POST", "/api/cameras", body, Some(&l)))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let list = send(&env, get("/api/cameras", Some(&l))).await;
    assert!(
        !String::from_utf8_lossy(&list.body).contains("s3cret-pw"),
        "password returned"
    );
    assert_eq!(list.json()[0]["has_password"], true);
}

#[tokio::test]
async fn malformed_time_ranges_and_ids_get_4xx() {
    let env = env().await;
    let l = login(&env, "guard").await;
    add_camera(&env, "c");
    for q in [
        "start=2026-11-29T00:00:00Z&end=2026-11-29T00:00:00Z",
        "start=2026-11-29T00:00:00Z&end=2026-11-30T00:00:01Z",
        "start=2026-11-29T01:00:00Z&end=2026-11-29T00:00:00Z",
        "start=yesterday&end=2026-11-29T00:00:00Z",
        "end=2026-11-29T00:00:00Z",
        "",
    ] {
        for route in ["recordings", "view.mp4"] {
            let r = send(&env, get(&format!("/api/cameras/1/{route}?{q}"), Some(&l))).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{route}?{q}");
        }
    }
    assert_eq!(
        send(
            &env,
            get(&format!("/api/cameras/99/recordings?{DAY}"), Some(&l))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        send(
            &env,
            get(&format!("/api/cameras/x/recordings?{DAY}"), Some(&l))
        )
        .await
        .status
        .is_client_error()
    );
    assert_eq!(
        send(
            &env,
            get(&format!("/api/cameras/1/view.mp4?{DAY}"), Some(&l))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn responses_carry_the_security_headers() {
    let env = env().await;
    for uri in ["/", "/app.js", "/api/cameras", "/nope"] {
        let r = send(&env, get(uri, None)).await;
        let csp = r.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        for part in [
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{uri}: {csp}");
        }
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let page = send(&env, get("/", None)).await;
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external reference in the page"
    );
}

#[tokio::test]
async fn view_mp4_supports_ranges_and_etags() {
    let env = env().await;
    let l = login(&env, "guard").await;
    let cam = add_camera(&env, "c");
    let t0 = Time90k::parse_rfc3339("2026-11-29T10:00:00Z").expect("t0");
    record(&env.state.store, cam, t0, 100);

    let rec = send(
        &env,
        get(&format!("/api/cameras/{}/recordings?{DAY}", cam), Some(&l)),
    )
    .await;
    let runs = rec.json()["runs"].clone();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    assert_eq!(runs[0]["frames"], 100);
    assert_eq!(runs[0]["start"], "2026-11-29T10:00:00.000Z");
    assert_eq!(runs[0]["end"], "2026-11-29T10:00:10.000Z");

    let uri = format!("/api/cameras/{cam}/view.mp4?{DAY}");
    let full = send(&env, get(&uri, Some(&l))).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.headers[header::CONTENT_TYPE], "video/mp4");
    let etag = full.headers[header::ETAG]
        .to_str()
        .expect("etag")
        .to_owned();
    let len = full.body.len();
    assert!(len > 300_000, "{len}");
    let (a, b) = (len / 3, len / 3 + 100_000);
    let mut req = get(&uri, Some(&l));
    req.headers_mut().insert(
        header::RANGE,
        format!("bytes={a}-{}", b - 1).parse().expect("hv"),
    );
    let part = send(&env, req).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers[header::CONTENT_RANGE],
        format!("bytes {a}-{}/{len}", b - 1).as_str()
    );
    assert_eq!(&part.body[..], &full.body[a..b]);
    let mut req = get(&uri, Some(&l));
    req.headers_mut()
        .insert(header::RANGE, format!("bytes={len}-").parse().expect("hv"));
    assert_eq!(
        send(&env, req).await.status,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    let mut req = get(&uri, Some(&l));
    req.headers_mut()
        .insert(header::IF_NONE_MATCH, etag.parse().expect("hv"));
    assert_eq!(send(&env, req).await.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_websocket_from_a_foreign_origin_is_refused() {
    let env = env().await;
    let l = login(&env, "guard").await;
    add_camera(&env, "c");
    let mut req = get("/api/cameras/1/live?codecs=h264", Some(&l));
    let h = req.headers_mut();
    h.insert(header::HOST, "127.0.0.1:8080".parse().expect("hv"));
    h.insert(header::ORIGIN, "http://evil.example".parse().expect("hv"));
    h.insert(header::CONNECTION, "upgrade".parse().expect("hv"));
    h.insert(header::UPGRADE, "websocket".parse().expect("hv"));
    h.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().expect("hv"));
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        "dGhlIHNhbXBsZSBub25jZQ==".parse().expect("hv"),
    );
    let r = send(&env, req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&r.body).contains("cross-origin"));
    // Without a session there is no WebSocket at all.
    assert_eq!(
        send(&env, get("/api/cameras/1/live", None)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn cameras_can_be_edited_and_removed_with_confirmation() {
    let env = env().await;
    let l = login(&env, "admin").await;
    let g = login(&env, "guard").await;
    let add = json!({"name": "door", "url": "rtsp://10.0.0.1/", "username": "u", "password": "pw-one", "skip_probe": true});
    assert_eq!(
        send(&env, json_req("POST", "/api/cameras", add, Some(&l)))
            .await
            .status,
        StatusCode::CREATED
    );
    let cam = CameraId(1);
    let t0 = Time90k::parse_rfc3339("2026-11-29T10:00:00Z").expect("t0");
    record(&env.state.store, cam, t0, 30);

    let patch = json!({"name": "front door", "retain_max_age_days": 7, "password": "pw-two"});
    assert_eq!(
        send(
            &env,
            json_req("PATCH", "/api/cameras/1", patch.clone(), Some(&g))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // Seven days delete the recordings of 2026-11-29 now: the change must be confirmed, and
    // nothing changes until it is.
    let r = send(
        &env,
        json_req("PATCH", "/api/cameras/1", patch.clone(), Some(&l)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json());
    assert_eq!(r.json()["kind"], "retention_deletes");
    assert!(r.json()["would_delete_bytes"].as_u64() > Some(0));
    assert_eq!(
        env.state.store.camera(cam).expect("db").expect("cam").name,
        "door"
    );
    let mut confirmed = patch;
    confirmed["confirm_delete"] = json!(true);
    let r = send(
        &env,
        json_req("PATCH", "/api/cameras/1", confirmed, Some(&l)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.json()["name"], "front door");
    assert_eq!(r.json()["retention"]["max_age_days"], 7);
    assert_eq!(r.json()["username"], "u");
    // Retention ran at once (the recorder's pass): what is kept is within the new limit.
    assert!(
        r.json()["storage"]["oldest"].is_null()
            || r.json()["storage"]["oldest"] != "2026-11-29T10:00:00.000Z",
        "{}",
        r.json()
    );
    assert_eq!(
        env.state.store.camera_password(cam).expect("pw"),
        Some("pw-two".into())
    );
    let bad = json!({"url": "http://10.0.0.1/"});
    assert_eq!(
        send(&env, json_req("PATCH", "/api/cameras/1", bad, Some(&l)))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Recent footage, inside the new limit, for the deletion below.
    record(
        &env.state.store,
        cam,
        env.state.clock.realtime() - Duration90k::from_secs(3600),
        30,
    );
    let del = |q: &str| {
        Request::builder()
            .method("DELETE")
            .uri(format!("/api/cameras/1{q}"))
            .header(header::COOKIE, &l.cookie)
            .header("x-csrf-token", &l.csrf)
            .body(Body::empty())
            .expect("req")
    };
    assert_eq!(
        send(&env, del("")).await.status,
        StatusCode::CONFLICT,
        "recordings need confirming"
    );
    assert!(env.state.store.camera_dir(cam).exists());
    assert_eq!(
        send(&env, del("?delete_recordings=true")).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(env.state.store.cameras().expect("cameras").is_empty());
    assert!(!env.state.store.camera_dir(cam).exists());
    assert_eq!(
        send(&env, get("/api/cameras/1", Some(&l))).await.status,
        StatusCode::NOT_FOUND
    );
}

mod audio;
mod evidence;
mod motion;
mod seals;
mod streams;
mod users;
