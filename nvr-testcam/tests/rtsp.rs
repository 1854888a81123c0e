//! End-to-end tests of `TestCam` against real RTSP clients (ffprobe, ffmpeg, retina and
//! raw requests).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use nvr_testcam::{AudioCodec, Codec, Mode, TestCam, TestCamConfig, TestCamError};
use retina::client::Credentials;

#[test]
fn h264_replay_has_right_codec_size_and_rate() {
    let cam = TestCam::start(&TestCamConfig {
        mounts: 2,
        ..small_config(Codec::H264)
    })
    .unwrap();
    let port = cam.port();
    assert_eq!(
        cam.urls(),
        [
            format!("rtsp://127.0.0.1:{port}/cam1"),
            format!("rtsp://127.0.0.1:{port}/cam2")
        ]
    );
    for url in cam.urls() {
        let streams = ffprobe_streams(&url).unwrap();
        let video = stream(&streams, "video");
        assert_eq!(video["codec_name"], "h264", "{video}");
        assert_eq!(video["width"], 320);
        assert_eq!(video["height"], 240);
        assert_eq!(video["r_frame_rate"], "10/1");
        assert_eq!(streams["streams"].as_array().unwrap().len(), 1, "no audio");
    }
}

#[test]
fn each_mount_serves_a_smaller_sub_stream() {
    let cam = TestCam::start(&TestCamConfig {
        mounts: 2,
        sub_width: 160,
        sub_height: 90,
        mode: Mode::Live,
        ..small_config(Codec::H264)
    })
    .unwrap();
    let port = cam.port();
    assert_eq!(
        cam.sub_urls(),
        [
            format!("rtsp://127.0.0.1:{port}/cam1_sub"),
            format!("rtsp://127.0.0.1:{port}/cam2_sub")
        ]
    );
    for url in cam.sub_urls() {
        let streams = ffprobe_streams(&url).unwrap();
        let video = stream(&streams, "video");
        assert_eq!(video["codec_name"], "h264", "{video}");
        assert_eq!(
            (video["width"].clone(), video["height"].clone()),
            (160.into(), 90.into())
        );
        assert_eq!(video["r_frame_rate"], "10/1");
    }
    drop(cam);
    // Replay mode encodes the sub-stream's clip once as well; --no-sub serves none.
    let cam = TestCam::start(&small_config(Codec::H264)).unwrap();
    let streams = ffprobe_streams(&cam.sub_urls()[0]).unwrap();
    assert_eq!(stream(&streams, "video")["width"], 640);
    drop(cam);
    let cam = TestCam::start(&TestCamConfig {
        no_sub: true,
        ..small_config(Codec::H264)
    })
    .unwrap();
    assert!(cam.sub_urls().is_empty());
}

#[test]
fn h265_replay_with_audio_has_hevc_and_aac() {
    let cam = TestCam::start(&TestCamConfig {
        audio: Some(AudioCodec::Aac),
        width: 352,
        height: 288,
        ..small_config(Codec::H265)
    })
    .unwrap();
    let streams = ffprobe_streams(&cam.urls()[0]).unwrap();
    let video = stream(&streams, "video");
    assert_eq!(video["codec_name"], "hevc", "{video}");
    assert_eq!(video["width"], 352);
    assert_eq!(video["height"], 288);
    assert_eq!(video["r_frame_rate"], "10/1");
    let audio = stream(&streams, "audio");
    assert_eq!(audio["codec_name"], "aac", "{audio}");
    assert_eq!(audio["sample_rate"], "48000");
}

#[test]
fn g711_audio_is_pcma_or_pcmu_at_8_khz() {
    for (codec, name) in [
        (AudioCodec::Pcma, "pcm_alaw"),
        (AudioCodec::Pcmu, "pcm_mulaw"),
    ] {
        let cam = TestCam::start(&TestCamConfig {
            audio: Some(codec),
            no_sub: true,
            ..small_config(Codec::H264)
        })
        .unwrap();
        let streams = ffprobe_streams(&cam.urls()[0]).unwrap();
        assert_eq!(stream(&streams, "video")["codec_name"], "h264");
        let audio = stream(&streams, "audio");
        assert_eq!(audio["codec_name"], name, "{audio}");
        assert_eq!(audio["sample_rate"], "8000", "{audio}");
        assert_eq!(audio["channels"], 1, "{audio}");
    }
}

#[test]
fn live_mode_serves_h264() {
    let cam = TestCam::start(&TestCamConfig {
        mode: Mode::Live,
        ..small_config(Codec::H264)
    })
    .unwrap();
    let streams = ffprobe_streams(&cam.urls()[0]).unwrap();
    let video = stream(&streams, "video");
    assert_eq!(video["codec_name"], "h264", "{video}");
    assert_eq!(video["width"], 320);
    assert_eq!(video["r_frame_rate"], "10/1");
}

#[tokio::test]
async fn replay_loops_with_increasing_timestamps_and_regular_key_frames() {
    let config = small_config(Codec::H264);
    let cam = TestCam::start(&config).unwrap();
    // The clip is 10 frames; 25 frames cross two loop boundaries.
    let frames = retina_frames(&cam.urls()[0], None, 25).await.unwrap();
    assert_increasing(&frames);
    let first_key = frames.iter().position(|f| f.key).expect("a key frame");
    assert_eq!(first_key, 0, "a fresh media starts with a key frame");
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame.key, i % 5 == 0, "frame {i}: {frames:?}");
    }
    // 90 kHz clock at 10 fps: 9000 ticks per frame once caught up (the first frame of a
    // new media may wait for PLAY, so skip it).
    let steady = frames[1..]
        .windows(2)
        .filter(|p| p[1].timestamp - p[0].timestamp == 9000)
        .count();
    assert!(steady > 0, "{frames:?}");
}

#[tokio::test]
async fn second_client_does_not_rewind_the_first() {
    let cam = TestCam::start(&small_config(Codec::H264)).unwrap();
    let url = cam.urls()[0].clone();
    // Client A reads 4 s (40 frames) while B (retina) and C (ffprobe) join with
    // `Range: npt=0.000-`; on a seekable shared media that seek rewinds A.
    let a = tokio::spawn({
        let url = url.clone();
        async move { retina_frames(&url, None, 40).await }
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let b = retina_frames(&url, None, 5).await.unwrap();
    assert_increasing(&b);
    let probe = tokio::task::spawn_blocking({
        let url = url.clone();
        move || ffprobe_streams(&url)
    });
    probe.await.unwrap().unwrap();
    let a = a.await.unwrap().unwrap();
    assert_increasing(&a);
    // Every frame of A advanced by about one frame duration: no backward jump and no
    // duplicate burst from a restarted clip.
    let rewinds = a
        .windows(2)
        .filter(|p| p[1].timestamp - p[0].timestamp < 9000 / 2)
        .count();
    assert_eq!(rewinds, 0, "{a:?}");
}

#[tokio::test]
async fn clients_joining_a_running_mount_get_consistent_rtp_info() {
    let cam = TestCam::start(&small_config(Codec::H264)).unwrap();
    let url = cam.urls()[0].clone();
    let keeper = tokio::spawn({
        let url = url.clone();
        async move { retina_frames(&url, None, 60).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // retina checks the first packet against the PLAY response's RTP-Info sequence
    // number and fails on an older one; each joiner must start cleanly.
    for joiner in 0..8 {
        let frames = retina_frames(&url, None, 2)
            .await
            .unwrap_or_else(|e| panic!("joiner {joiner}: {e}"));
        assert_increasing(&frames);
    }
    keeper.abort();
}

#[tokio::test]
async fn media_keeps_serving_after_clients_leave() {
    let cam = TestCam::start(&small_config(Codec::H264)).unwrap();
    let url = cam.urls()[0].clone();
    // B starts the media; A joins the running media and leaves while B is still
    // reading: B must keep receiving from the shared media.
    let b = tokio::spawn({
        let url = url.clone();
        async move { retina_frames(&url, None, 25).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = retina_frames(&url, None, 3).await.unwrap();
    assert_increasing(&a);
    let b = b.await.unwrap().unwrap();
    assert_increasing(&b);
    // Everyone has left: a later client gets a fresh, working media.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = retina_frames(&url, None, 8).await.unwrap();
    assert_increasing(&c);
    assert!(c.iter().any(|f| f.key));
}

#[tokio::test]
async fn auth_rejects_missing_or_wrong_credentials() {
    let cam = TestCam::start(&TestCamConfig {
        username: Some("admin".into()),
        password: Some("s3cret".into()),
        ..small_config(Codec::H264)
    })
    .unwrap();
    let url = cam.urls()[0].clone();

    // No credentials: 401 offering both Basic and Digest.
    let response = tokio::task::spawn_blocking({
        let url = url.clone();
        move || raw_describe(&url, "")
    })
    .await
    .unwrap();
    assert_eq!(status(&response), 401, "{response}");
    assert!(response.contains("Basic realm="), "{response}");
    assert!(response.contains("Digest realm="), "{response}");

    // Basic, right and wrong.
    let right = gstreamer::glib::base64_encode(b"admin:s3cret");
    let wrong = gstreamer::glib::base64_encode(b"admin:nope");
    for (token, expected) in [(right, 200), (wrong, 401)] {
        let header = format!("Authorization: Basic {token}\r\n");
        let url = url.clone();
        let response = tokio::task::spawn_blocking(move || raw_describe(&url, &header))
            .await
            .unwrap();
        assert_eq!(status(&response), expected, "{response}");
    }

    // Digest by hand, right and wrong.
    for (password, expected) in [("s3cret", 200), ("nope", 401)] {
        let url = url.clone();
        let response =
            tokio::task::spawn_blocking(move || raw_digest_describe(&url, "admin", password))
                .await
                .unwrap();
        assert_eq!(status(&response), expected, "{response}");
    }

    // retina (it prefers Digest when offered), right, wrong and none.
    let creds = |password: &str| {
        Some(Credentials {
            username: "admin".into(),
            password: password.into(),
        })
    };
    let frames = retina_frames(&url, creds("s3cret"), 3).await.unwrap();
    assert_eq!(frames.len(), 3);
    let err = retina_frames(&url, creds("nope"), 3).await.unwrap_err();
    assert!(err.contains("401"), "{err}");
    let err = retina_frames(&url, None, 3).await.unwrap_err();
    assert!(err.contains("401"), "{err}");

    // ffprobe with credentials in the URL.
    let port = cam.port();
    let probe = tokio::task::spawn_blocking(move || {
        (
            ffprobe_streams(&format!("rtsp://admin:s3cret@127.0.0.1:{port}/cam1")),
            ffprobe_streams(&format!("rtsp://admin:nope@127.0.0.1:{port}/cam1")),
        )
    });
    let (good, bad) = probe.await.unwrap();
    assert_eq!(stream(&good.unwrap(), "video")["codec_name"], "h264");
    let bad = bad.unwrap_err();
    assert!(bad.contains("401"), "{bad}");
}

#[test]
fn h265_open_gop_uses_cra_key_frames_only() {
    let cam = TestCam::start(&TestCamConfig {
        open_gop: true,
        ..small_config(Codec::H265)
    })
    .unwrap();
    let types = h265_nal_types(&ffmpeg_elementary_stream(&cam.urls()[0], "hevc", 2));
    let cra = types.iter().filter(|&&t| t == 21).count();
    assert!(cra >= 2, "CRA key frames expected: {types:?}");
    assert!(
        !types.iter().any(|t| (19..=20).contains(t)),
        "no IDR expected: {types:?}"
    );
}

#[test]
fn h265_closed_gop_uses_idr_key_frames() {
    let cam = TestCam::start(&small_config(Codec::H265)).unwrap();
    let types = h265_nal_types(&ffmpeg_elementary_stream(&cam.urls()[0], "hevc", 2));
    assert!(
        types.iter().filter(|t| (19..=20).contains(*t)).count() >= 2,
        "{types:?}"
    );
    assert!(!types.contains(&21), "no CRA expected: {types:?}");
}

#[test]
fn restart_on_same_port_right_after_drop() {
    let first = TestCam::start(&small_config(Codec::H264)).unwrap();
    let port = first.port();
    // A client leaves connections in TIME_WAIT on the server side.
    ffprobe_streams(&first.urls()[0]).unwrap();

    // The port is taken while the first camera runs.
    let same_port = TestCamConfig {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        ..small_config(Codec::H264)
    };
    match TestCam::start(&same_port) {
        Err(TestCamError::Bind { addr, reason }) => {
            assert_eq!(addr.port(), port);
            assert!(!reason.is_empty());
        }
        other => panic!("expected a bind error, got {other:?}"),
    }

    drop(first);
    let second = TestCam::start(&same_port).unwrap();
    assert_eq!(second.port(), port);
    let streams = ffprobe_streams(&second.urls()[0]).unwrap();
    assert_eq!(stream(&streams, "video")["codec_name"], "h264");
}

#[test]
fn bad_options_are_rejected_before_binding() {
    for config in [
        TestCamConfig {
            mounts: 0,
            ..small_config(Codec::H264)
        },
        TestCamConfig {
            width: 321,
            ..small_config(Codec::H264)
        },
        TestCamConfig {
            open_gop: true,
            ..small_config(Codec::H264)
        },
        TestCamConfig {
            username: Some("admin".into()),
            ..small_config(Codec::H264)
        },
    ] {
        let err = TestCam::start(&config).unwrap_err();
        assert!(
            matches!(err, TestCamError::InvalidOption { .. }),
            "{config:?}: {err}"
        );
        assert!(err.to_string().starts_with("invalid option --"), "{err}");
    }
}
