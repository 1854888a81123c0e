//! The harness of the HTTP tests: a router over a real store in a temporary directory with a
//! fake camera source, requests through `oneshot` (no socket), logins, and synthetic footage.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use nvr_core::{
    CameraId, Clock, Duration90k, Role, SystemClock, Time90k, VideoCodec, VideoFrame, VideoParams,
};
use nvr_ingest::source::{CameraSource, ConnectTarget, Session};
use nvr_ingest::supervisor::SupervisorConfig;
use nvr_ingest::{CameraErrorKind, IngestError, Recorder, RecorderConfig};
use nvr_storage::retention::RetentionPolicy;
use nvr_storage::store::Store;
use nvr_storage::writer::{CameraWriter, WriterConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{AppState, router};

/// A camera source that always fails the way it is told.
pub(super) struct FailingSource(CameraErrorKind);

impl CameraSource for FailingSource {
    fn connect(
        &self,
        _target: &ConnectTarget,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>> {
        let kind = self.0;
        Box::pin(async move { Err(IngestError::new(kind, "fake camera failure")) })
    }
}

pub(super) struct Env {
    pub(super) _dir: tempfile::TempDir,
    pub(super) state: AppState,
}

pub(super) async fn env() -> Env {
    env_with(true).await
}

pub(super) async fn env_with(users: bool) -> Env {
    env_with_options(users, nvr_app::AppOptions::default()).await
}

pub(super) async fn env_with_options(users: bool, options: nvr_app::AppOptions) -> Env {
    env_with_source(
        users,
        options,
        Arc::new(FailingSource(CameraErrorKind::Unreachable)),
    )
    .await
}

/// An environment whose cameras (and camera tests) connect through `source`.
pub(super) async fn env_with_source(
    users: bool,
    options: nvr_app::AppOptions,
    source: Arc<dyn CameraSource>,
) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    Store::init(dir.path(), clock.as_ref()).expect("init");
    let store = Store::open(dir.path(), clock.clone()).expect("open");
    let users: &[(&str, Role)] = if users {
        &[
            ("admin", Role::Admin),
            ("guard", Role::Guard),
            ("ev", Role::Evidence),
        ]
    } else {
        &[]
    };
    let recorder = Recorder::start(
        store.clone(),
        source,
        nvr_ingest::egress::EgressPolicy::new(false),
        RecorderConfig {
            writer: WriterConfig {
                segment_duration: Duration90k::from_secs(60),
                fsync_interval: Duration90k::from_secs(5),
            },
            supervisor: SupervisorConfig {
                backoff_min: Duration::from_secs(60),
                ..Default::default()
            },
            default_retention: RetentionPolicy::default(),
            retention_interval: Duration::from_secs(3600),
            min_free_bytes: 0,
        },
    );
    let app = nvr_app::App::new(
        store.clone(),
        nvr_app::CameraContext::of_recorder(&recorder),
        options,
    );
    for &(user, role) in users {
        app.add_user(&nvr_app::Actor::cli(), user, role, "password123".into())
            .await
            .expect("user");
    }
    Env {
        _dir: dir,
        state: AppState {
            app,
            store,
            recorder,
            clock,
            secure_cookies: false,
            server: crate::status::ServerInfo {
                started: Time90k(0),
                tls: None,
            },
            media: Default::default(),
        },
    }
}

pub(super) struct Resp {
    pub(super) status: StatusCode,
    pub(super) headers: axum::http::HeaderMap,
    pub(super) body: Bytes,
}

impl Resp {
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub(super) async fn send(env: &Env, req: Request<Body>) -> Resp {
    let r = router(env.state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = r.status();
    let headers = r.headers().clone();
    let body = r
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// A logged-in client: its cookie and CSRF token.
pub(super) struct Login {
    pub(super) cookie: String,
    pub(super) csrf: String,
}

pub(super) async fn login(env: &Env, user: &str) -> Login {
    let r = send(
        env,
        json_req(
            "POST",
            "/api/login",
            json!({"username": user, "password": "password123"}),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cookie = r.headers[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    Login {
        cookie: cookie.split(';').next().expect("pair").to_owned(),
        csrf: r.json()["csrf_token"].as_str().expect("csrf").to_owned(),
    }
}

pub(super) fn json_req(
    method: &str,
    uri: &str,
    body: Value,
    login: Option<&Login>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(l) = login {
        b = b
            .header(header::COOKIE, &l.cookie)
            .header("x-csrf-token", &l.csrf);
    }
    b.body(Body::from(body.to_string())).expect("request")
}

pub(super) fn get(uri: &str, login: Option<&Login>) -> Request<Body> {
    let mut b = Request::builder().uri(uri);
    if let Some(l) = login {
        b = b.header(header::COOKIE, &l.cookie);
    }
    b.body(Body::empty()).expect("request")
}

/// An audit entry for setup steps whose entry the test does not look at.
/// Adds camera `name` at `rtsp://10.0.0.1/` straight to the store (no probe, no HTTP).
pub(super) fn add_camera(env: &Env, name: &str) -> CameraId {
    let url = nvr_core::CameraUrl::parse("rtsp://10.0.0.1/").expect("url");
    env.state
        .store
        .add_camera(&nvr_storage::store::CameraEdit::new(name, &url), |_| note())
        .expect("camera")
}

pub(super) fn note() -> nvr_storage::AuditNote {
    nvr_storage::AuditNote::new(0, "test", "test", "test", json!({}))
}

pub(super) const DAY: &str = "start=2026-11-29T00:00:00Z&end=2026-11-30T00:00:00Z";

/// Writes `n` synthetic frames (10 fps) for camera `camera` starting at `t0`.
pub(super) fn record(store: &Arc<Store>, camera: CameraId, t0: Time90k, n: i64) {
    let p = Arc::new(VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.64001f".into(),
        width: 640,
        height: 480,
        sample_entry: Bytes::from(nvr_storage::mp4::test_support::fake_avc1(640, 480)),
    });
    let mut w = CameraWriter::new(
        store.clone(),
        camera.main(),
        WriterConfig {
            segment_duration: Duration90k::from_secs(2),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .expect("writer");
    for i in 0..n {
        let data: Vec<u8> = (0..(3000 + (i % 7) * 1000))
            .map(|b| (b ^ i) as u8)
            .collect();
        w.write(
            &p,
            &VideoFrame {
                media_time_90k: i * 9000,
                received: t0 + Duration90k(i * 9000),
                is_key: i % 10 == 0,
                data: Bytes::from(data),
            },
        )
        .expect("write");
    }
    w.end_run().expect("end");
}
