//! Per-mount media factories: shared, live, non-seekable media, with the replay clip
//! hooked up to each new media's `appsrc`.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use rtsp::prelude::*;

use crate::clip::Clip;
use crate::pipelines;
use crate::replay::Feeder;

/// Media factory role granted to authenticated users.
pub(crate) const USER_ROLE: &str = "user";

/// A mount's media factory. Media is shared by all clients of the mount, live (never
/// seekable: a client's `Range: npt=0-` cannot rewind the others), stays playing while
/// clients come and go, and is released when the last client leaves or disconnects
/// (the next client gets a fresh pipeline, as a camera that stops streaming when
/// nobody watches).
pub(crate) fn make_factory(
    launch: &str,
    clip: Option<Arc<Clip>>,
    scene: Option<LiveSceneConfig>,
    with_auth: bool,
) -> rtsp::RTSPMediaFactory {
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(launch);
    factory.set_shared(true);
    // Keep the pipeline running after DESCRIBE and between clients of a shared media.
    factory.set_suspend_mode(rtsp::RTSPSuspendMode::None);
    // A client that vanishes without TEARDOWN (SIGKILL) must not keep the media alive.
    factory.set_stop_on_disconnect(true);
    // Live sources: no need to push EOS through before shutting down.
    factory.set_eos_shutdown(false);
    if with_auth {
        factory.add_role_from_structure(
            &gst::Structure::builder(USER_ROLE)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS.as_str(), true)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT.as_str(), true)
                .build(),
        );
    }
    if let Some(clip) = clip {
        factory.connect_media_configure(move |_, media| configure_replay(media, &clip));
    } else if let Some(scene) = scene {
        factory.connect_media_configure(move |_, media| configure_scene(media, &scene));
    }
    factory
}

/// What a live mount needs to draw its scene.
#[derive(Debug, Clone)]
pub(crate) struct LiveSceneConfig {
    pub spec: crate::scene::SceneSpec,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// Hooks a new live media's scene `appsrc` up to a wall-clock-locked scene.
fn configure_scene(media: &rtsp::RTSPMedia, scene: &LiveSceneConfig) {
    let src = media
        .element()
        .downcast::<gst::Bin>()
        .ok()
        .and_then(|bin| bin.by_name(pipelines::SCENE_SRC_NAME))
        .and_then(|element| element.downcast::<gst_app::AppSrc>().ok());
    let Some(src) = src else {
        tracing::error!(
            "scene media has no appsrc named {}",
            pipelines::SCENE_SRC_NAME
        );
        return;
    };
    let mut feeder =
        crate::scene::LiveScene::new(scene.spec.clone(), scene.width, scene.height, scene.fps);
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| feeder.feed(src))
            .build(),
    );
}

/// Hooks a new replay media's `appsrc` up to the shared clip.
fn configure_replay(media: &rtsp::RTSPMedia, clip: &Arc<Clip>) {
    let src = media
        .element()
        .downcast::<gst::Bin>()
        .ok()
        .and_then(|bin| bin.by_name(pipelines::REPLAY_SRC_NAME))
        .and_then(|element| element.downcast::<gst_app::AppSrc>().ok());
    let Some(src) = src else {
        tracing::error!(
            "replay media has no appsrc named {}",
            pipelines::REPLAY_SRC_NAME
        );
        return;
    };
    src.set_caps(Some(&clip.caps));
    let mut feeder = Feeder::new(Arc::clone(clip));
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| feeder.feed(src))
            .build(),
    );
    tracing::debug!("replay media configured");
}
