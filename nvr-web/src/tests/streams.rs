//! A camera's sub-stream through the HTTP API: `sub_url` in and out, both streams tested and
//! probed, each stream's recordings, `view.mp4` and snapshots by `stream=`, and `stream=`
//! refused (400) or not found (404) when it names nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use nvr_storage::store::Store;

use nvr_core::{Stream, StreamKey, VideoCodec, VideoFrame, VideoParams};
use nvr_ingest::source::{CameraSource, ConnectTarget, Session, SessionInfo, SourceFrame};
use nvr_ingest::{CameraErrorKind, IngestError};
use nvr_storage::writer::{CameraWriter, WriterConfig};

use super::*;

/// A camera whose streams answer by URL: a path with `bad` is unreachable; any other sends a
/// few frames, 640x360 when its path says `sub`, else 1920x1080.
struct ByUrlSource;

fn params_for(width: u16, height: u16) -> Arc<VideoParams> {
    Arc::new(VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.64001f".into(),
        width,
        height,
        sample_entry: Bytes::from(nvr_storage::mp4::test_support::fake_avc1(width, height)),
    })
}

impl CameraSource for ByUrlSource {
    fn connect(
        &self,
        target: &ConnectTarget,
    ) -> Pin<Box<dyn Future<Output = Result<Session, IngestError>> + Send + '_>> {
        let url = target.url.as_str().to_owned();
        Box::pin(async move {
            if url.contains("bad") {
                return Err(IngestError::new(
                    CameraErrorKind::Unreachable,
                    "fake camera failure",
                ));
            }
            let p = if url.contains("sub") {
                params_for(640, 360)
            } else {
                params_for(1920, 1080)
            };
            let frames = (0..10).map(move |i: i64| {
                Ok(SourceFrame {
                    params: p.clone(),
                    frame: VideoFrame {
                        media_time_90k: i * 6000,
                        received: Time90k(i * 6000),
                        is_key: i % 5 == 0,
                        data: Bytes::from_static(b"\0\0\0\x01\x65"),
                    },
                })
            });
            Ok(Session {
                info: SessionInfo::default(),
                frames: Box::pin(futures::stream::iter(frames)),
                camera_clock: Default::default(),
                audio: Default::default(),
            })
        })
    }
}

/// Writes `n` synthetic frames (10 fps) of `width` for `stream` starting at `t0`.
fn record_stream(store: &Arc<Store>, stream: StreamKey, width: u16, t0: Time90k, n: i64) {
    let p = params_for(width, width / 16 * 9);
    let mut w = CameraWriter::new(
        store.clone(),
        stream,
        WriterConfig {
            segment_duration: Duration90k::from_secs(2),
            fsync_interval: Duration90k::from_secs(5),
        },
    )
    .expect("writer");
    for i in 0..n {
        let data: Vec<u8> = (0..(1000 + usize::from(width) * 2))
            .map(|b| (b as i64 ^ i) as u8)
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

fn add_main_only(env: &Env) -> CameraId {
    let url = CameraUrl::parse("rtsp://10.0.0.1/main").expect("url");
    env.state
        .store
        .add_camera(&nvr_storage::store::CameraEdit::new("c", &url), |_| note())
        .expect("camera")
}

#[tokio::test]
async fn stream_must_name_a_stream_the_camera_has() {
    let env = env().await;
    let l = login(&env, "guard").await;
    let cam = add_main_only(&env);
    record_stream(
        &env.state.store,
        cam.main(),
        1280,
        Time90k::parse_rfc3339("2026-11-29T10:00:00Z").expect("t0"),
        30,
    );
    let routes = [
        format!("/api/cameras/{cam}/recordings?{DAY}"),
        format!("/api/cameras/{cam}/view.mp4?{DAY}"),
        format!("/api/cameras/{cam}/snapshot.jpg?at=2026-11-29T10:00:01Z"),
        format!("/api/cameras/{cam}/snapshot.jpg?width=100"),
        format!("/api/cameras/{cam}/live?codecs=h264"),
    ];
    for route in &routes {
        for (stream, want) in [
            ("sub", StatusCode::NOT_FOUND),
            ("SUB", StatusCode::BAD_REQUEST),
            ("", StatusCode::BAD_REQUEST),
            ("third", StatusCode::BAD_REQUEST),
        ] {
            let r = send(&env, get(&format!("{route}&stream={stream}"), Some(&l))).await;
            assert_eq!(r.status, want, "{route}&stream={stream}: {:?}", r.body);
        }
    }
    // `stream=main` is what no `stream` means.
    let main = send(&env, get(&routes[0], Some(&l))).await;
    let explicit = send(&env, get(&format!("{}&stream=main", routes[0]), Some(&l))).await;
    assert_eq!(main.status, StatusCode::OK);
    assert_eq!(main.body, explicit.body);
}

#[tokio::test]
async fn each_stream_has_its_own_recordings_and_view() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    let r = send(
        &env,
        json_req(
            "POST",
            "/api/cameras",
            json!({"name": "gate", "url": "rtsp://10.0.0.1/main",
                   "sub_url": "rtsp://10.0.0.1/sub", "skip_probe": true}),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let c = r.json();
    assert_eq!(c["sub_url"], "rtsp://10.0.0.1/sub");
    assert_eq!(c["record_sub"], true);
    assert_eq!(c["streams"]["main"]["url"], "rtsp://10.0.0.1/main");
    assert_eq!(c["streams"]["sub"]["url"], "rtsp://10.0.0.1/sub");
    assert_eq!(c["streams"]["sub"]["recorded"], true);
    let cam = CameraId(c["id"].as_i64().expect("id"));
    // Stop the (unreachable) camera so the writers below are the only ones.
    env.state.recorder.stop_camera(cam).await;
    let t0 = Time90k::parse_rfc3339("2026-11-29T10:00:00Z").expect("t0");
    record_stream(&env.state.store, cam.main(), 1920, t0, 40);
    record_stream(&env.state.store, cam.sub(), 640, t0, 60);

    let l = login(&env, "guard").await;
    let runs = |stream: &'static str| {
        let uri = format!("/api/cameras/{cam}/recordings?{DAY}&stream={stream}");
        let l = &l;
        let env = &env;
        async move { send(env, get(&uri, Some(l))).await.json()["runs"].clone() }
    };
    let (main, sub) = (runs("main").await, runs("sub").await);
    assert_eq!(
        (main[0]["frames"].clone(), main[0]["width"].clone()),
        (json!(40), json!(1920))
    );
    assert_eq!(
        (sub[0]["frames"].clone(), sub[0]["width"].clone()),
        (json!(60), json!(640))
    );

    let view = |stream: &'static str| {
        let uri = format!("/api/cameras/{cam}/view.mp4?{DAY}&stream={stream}");
        let l = &l;
        let env = &env;
        async move { send(env, get(&uri, Some(l))).await }
    };
    let (vm, vs) = (view("main").await, view("sub").await);
    assert_eq!((vm.status, vs.status), (StatusCode::OK, StatusCode::OK));
    assert_ne!(vm.headers[header::ETAG], vs.headers[header::ETAG]);
    assert!(
        vs.body.len() < vm.body.len(),
        "the sub-stream's frames are smaller"
    );
    // The playback of the sub-stream is on record as such.
    // Read audits are written by the audit thread: wait for it.
    env.state.store.flush_audit();
    let audit = env
        .state
        .store
        .audit_entries(&nvr_storage::AuditFilter {
            action: Some("playback".into()),
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    let streams: Vec<Value> = audit
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.detail).expect("json")["stream"].clone())
        .collect();
    assert_eq!(streams, [json!("sub"), Value::Null], "newest first");
}

#[tokio::test]
async fn testing_and_adding_a_camera_probe_both_streams() {
    let env = env_with_source(true, nvr_app::AppOptions::default(), Arc::new(ByUrlSource)).await;
    let admin = login(&env, "admin").await;
    let test = |body: Value| {
        let env = &env;
        let admin = &admin;
        async move {
            send(
                env,
                json_req("POST", "/api/cameras/test", body, Some(admin)),
            )
            .await
        }
    };
    // Both answer: the main stream's result where it always was, the sub-stream's beside it.
    let r = test(json!({"url": "rtsp://10.0.0.2/main", "sub_url": "rtsp://10.0.0.2/sub"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let j = r.json();
    assert_eq!(
        (j["width"].clone(), j["height"].clone()),
        (json!(1920), json!(1080))
    );
    assert_eq!(
        (j["sub"]["width"].clone(), j["sub"]["height"].clone()),
        (json!(640), json!(360))
    );
    // Without a sub-stream the answer is what it was.
    let r = test(json!({"url": "rtsp://10.0.0.2/main"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("sub").is_none());
    // A failing sub-stream is reported beside a working main stream.
    let r = test(json!({"url": "rtsp://10.0.0.2/main", "sub_url": "rtsp://10.0.0.2/bad"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"]["kind"], "unreachable");
    // A failing main stream is the error, with the sub-stream's result.
    let r = test(json!({"url": "rtsp://10.0.0.2/bad", "sub_url": "rtsp://10.0.0.2/sub"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["kind"], "unreachable");
    assert_eq!(r.json()["sub"]["width"], 640);
    // The sub-stream URL is checked like the main one's, and must be another one.
    for sub in [
        "http://10.0.0.2/sub",
        "rtsp://u:p@10.0.0.2/sub",
        "rtsp://10.0.0.2/main",
    ] {
        let r = test(json!({"url": "rtsp://10.0.0.2/main", "sub_url": sub})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{sub}: {:?}", r.body);
    }

    // Adding probes both: a sub-stream that fails stores nothing.
    let add = |body: Value| {
        let env = &env;
        let admin = &admin;
        async move { send(env, json_req("POST", "/api/cameras", body, Some(admin))).await }
    };
    let r = add(json!({"name": "x", "url": "rtsp://10.0.0.2/main",
                       "sub_url": "rtsp://10.0.0.2/bad"}))
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .expect("error")
            .starts_with("sub-stream: ")
    );
    assert!(env.state.store.cameras().expect("cameras").is_empty());
    let r = add(json!({"name": "x", "url": "rtsp://10.0.0.2/main",
                       "sub_url": "rtsp://10.0.0.2/sub", "record_sub": false}))
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["record_sub"], false);
    assert_eq!(r.json()["streams"]["sub"]["recorded"], false);
}

#[tokio::test]
async fn the_sub_stream_can_be_changed_and_removed() {
    let env = env().await;
    let admin = login(&env, "admin").await;
    let cam = add_main_only(&env);
    let patch = |body: Value| {
        let env = &env;
        let admin = &admin;
        let uri = format!("/api/cameras/{cam}");
        async move { send(env, json_req("PATCH", &uri, body, Some(admin))).await }
    };
    // Retention of a sub-stream the camera does not have.
    let r = patch(json!({"sub_retain_max_bytes": 1000})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = patch(json!({"sub_url": "rtsp://10.0.0.1/main"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = patch(json!({"sub_url": "rtsp://10.0.0.1/sub", "sub_retain_max_age_days": 90})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["sub_url"], "rtsp://10.0.0.1/sub");
    assert_eq!(r.json()["streams"]["sub"]["retention"]["max_age_days"], 90);
    let row = env.state.store.camera(cam).expect("db").expect("row");
    assert_eq!(row.sub_retain_max_age_secs, Some(90 * 86_400));
    assert_eq!(
        row.retain_max_age_secs, None,
        "the main stream's limits are its own"
    );
    // Removing it keeps what it recorded (and its row), and ends its live view.
    let r = patch(json!({"sub_url": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["sub_url"], Value::Null);
    assert_eq!(r.json()["streams"]["sub"]["url"], Value::Null);
    let l = login(&env, "guard").await;
    let live = send(
        &env,
        get(&format!("/api/cameras/{cam}/live?stream=sub"), Some(&l)),
    )
    .await;
    assert_eq!(live.status, StatusCode::NOT_FOUND);
    let rec = send(
        &env,
        get(
            &format!("/api/cameras/{cam}/recordings?{DAY}&stream=sub"),
            Some(&l),
        ),
    )
    .await;
    assert_eq!(rec.status, StatusCode::OK);
    let audit = env
        .state
        .store
        .audit_entries(&nvr_storage::AuditFilter {
            action: Some("camera_change".into()),
            limit: 10,
            ..Default::default()
        })
        .expect("audit");
    let first: Value = serde_json::from_str(&audit[1].detail).expect("json");
    assert_eq!(first["sub_url"], "rtsp://10.0.0.1/sub");
    assert_eq!(first["sub_retain_max_age_secs"], 90 * 86_400);
    assert_eq!(Stream::Sub.as_str(), "sub");
}
