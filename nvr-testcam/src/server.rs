//! The running camera, [`TestCam`]: a GStreamer RTSP server on its own GLib main loop
//! thread, one shared media factory per mount and one per mount's sub-stream, optional
//! Basic/Digest authentication.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use glib::translate::IntoGlib;
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use rtsp::gst_rtsp::RTSPAuthMethod;
use rtsp::prelude::*;
use rtsp::{gio, glib};

use crate::clip;
use crate::mount::make_factory;
use crate::{Mode, TestCamConfig, TestCamError, elements, pipelines};

/// How long `Drop` waits for client connections to finish closing.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `Drop` checks whether all clients are gone.
const CLOSE_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// What a mount's path gets for its sub-stream: `/cam1` and `/cam1_sub`.
pub const SUB_SUFFIX: &str = "_sub";

/// Upper bound on the event dispatches run after teardown.
const DRAIN_ITERATIONS: usize = 1000;

/// A running test camera. Dropping it closes every client connection, stops all media
/// pipelines and frees the listening port.
pub struct TestCam {
    port: u16,
    listen: SocketAddr,
    urls: Vec<String>,
    sub_urls: Vec<String>,
    context: glib::MainContext,
    stop: Arc<AtomicBool>,
    server: rtsp::RTSPServer,
    listener: glib::Source,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for TestCam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCam")
            .field("listen", &self.listen)
            .field("urls", &self.urls)
            .field("sub_urls", &self.sub_urls)
            .finish_non_exhaustive()
    }
}

impl TestCam {
    /// Validates `config`, encodes the replay clip (replay mode), binds the port and
    /// starts serving. Returns once clients can connect.
    pub fn start(config: &TestCamConfig) -> Result<TestCam, TestCamError> {
        config.validate()?;
        gst::init().map_err(|e| TestCamError::GstInit(e.to_string()))?;
        let audio = elements::check(config)?;

        let media = |config: &TestCamConfig,
                     audio: Option<elements::AudioElements>|
         -> Result<_, TestCamError> {
            Ok(match config.mode {
                Mode::Replay => (
                    pipelines::replay_media(config, audio),
                    Some(Arc::new(clip::encode(config)?)),
                ),
                Mode::Live => (pipelines::live_media(config, audio), None),
            })
        };
        let (launch, clip) = media(config, audio)?;
        tracing::debug!(%launch, "mount pipeline");
        // The sub-stream: its own clip (encoded once too) and pipelines, no audio.
        let sub = config.sub_stream().map(|c| media(&c, None)).transpose()?;

        let server = rtsp::RTSPServer::new();
        server.set_address(&config.listen.ip().to_string());
        server.set_service(&config.listen.port().to_string());
        let mounts = server
            .mount_points()
            .ok_or_else(|| TestCamError::Gst("RTSP server has no mount points".into()))?;
        let with_auth = if let Some((user, pass)) = config.credentials() {
            server.set_auth(Some(&make_auth(user, pass)));
            true
        } else {
            false
        };
        // A live scene is drawn per stream at the stream's size (replay clips carry theirs).
        let live_scene = |c: &TestCamConfig| {
            c.scene_spec().filter(|_| c.mode == Mode::Live).map(|spec| {
                crate::mount::LiveSceneConfig {
                    spec,
                    width: c.width,
                    height: c.height,
                    fps: c.fps,
                }
            })
        };
        let scene = live_scene(config);
        let sub_scene = config.sub_stream().and_then(|c| live_scene(&c));
        for n in 1..=config.mounts {
            let factory = make_factory(&launch, clip.clone(), scene.clone(), with_auth);
            mounts.add_factory(&format!("/cam{n}"), factory);
            if let Some((launch, clip)) = &sub {
                let factory = make_factory(launch, clip.clone(), sub_scene.clone(), with_auth);
                mounts.add_factory(&format!("/cam{n}{SUB_SUFFIX}"), factory);
            }
        }

        // Binds and listens now, so the error (e.g. "Address already in use") is
        // reported here. GLib binds with SO_REUSEADDR, so a restart on the same port
        // works right after the previous process died, despite TIME_WAIT connections.
        let listener = server
            .create_source(None::<&gio::Cancellable>)
            .map_err(|e| TestCamError::Bind {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        let port = u16::try_from(server.bound_port()).map_err(|_| TestCamError::Bind {
            addr: config.listen,
            reason: "the server reports no bound port".into(),
        })?;
        let context = glib::MainContext::new();
        listener.attach(Some(&context));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let context = context.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("testcam-rtsp".into())
                .spawn(move || run_main_loop(&context, &stop))
                .map_err(TestCamError::Io)?
        };

        let listen = SocketAddr::new(config.listen.ip(), port);
        let host = url_host(config.listen.ip());
        let urls = (1..=config.mounts)
            .map(|n| format!("rtsp://{host}:{port}/cam{n}"))
            .collect();
        let sub_urls = if sub.is_some() {
            (1..=config.mounts)
                .map(|n| format!("rtsp://{host}:{port}/cam{n}{SUB_SUFFIX}"))
                .collect()
        } else {
            Vec::new()
        };
        tracing::info!(
            %listen,
            mounts = config.mounts,
            codec = %config.codec,
            mode = %config.mode,
            "testcam listening"
        );
        Ok(TestCam {
            port,
            listen,
            urls,
            sub_urls,
            context,
            stop,
            server,
            listener,
            thread: Some(thread),
        })
    }

    /// The TCP port the server listens on (the real one when `--listen` used port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on, with the real port.
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    /// One URL per mount, `rtsp://127.0.0.1:PORT/cam1` ..., without credentials.
    pub fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// The sub-stream URL of each mount, `rtsp://127.0.0.1:PORT/cam1_sub` ... (empty with
    /// `--no-sub`).
    pub fn sub_urls(&self) -> Vec<String> {
        self.sub_urls.clone()
    }
}

impl Drop for TestCam {
    fn drop(&mut self) {
        let server = self.server.clone();
        let listener = self.listener.clone();
        let stop = Arc::clone(&self.stop);
        let context = self.context.clone();
        // Tear down on the main loop's own thread, where the clients live.
        self.context.invoke(move || {
            // Closes the listening socket.
            listener.destroy();
            // Closes every connection the same way a client hanging up does: the
            // client's sessions end, their transports leave the media streams and the
            // pipelines stop. Removing sessions from the session pool instead frees
            // clients while their transports still stream to them, which aborts inside
            // gst-rtsp-server 1.22 ("'data_seq' should not be NULL").
            server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            let wait = glib::timeout_source_new(
                CLOSE_POLL_INTERVAL,
                Some("testcam-close"),
                glib::Priority::DEFAULT,
                move || {
                    let open = server.client_filter(None).len();
                    if open == 0 || Instant::now() > deadline {
                        if open > 0 {
                            tracing::warn!(open, "clients still open at shutdown");
                        }
                        stop.store(true, Ordering::Release);
                        glib::ControlFlow::Break
                    } else {
                        glib::ControlFlow::Continue
                    }
                },
            );
            wait.attach(Some(&context));
        });
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the RTSP main loop thread panicked");
        }
        tracing::debug!(listen = %self.listen, "testcam stopped");
    }
}

/// Body of the server thread: dispatches the server's events until `stop` is set, then
/// runs whatever teardown work is still pending.
fn run_main_loop(context: &glib::MainContext, stop: &AtomicBool) {
    let result = context.with_thread_default(|| {
        while !stop.load(Ordering::Acquire) {
            context.iteration(true);
        }
        // Bounded, in case some source stays ready forever.
        for _ in 0..DRAIN_ITERATIONS {
            if !context.iteration(false) {
                break;
            }
        }
    });
    if let Err(err) = result {
        tracing::error!(%err, "cannot run the RTSP main loop");
    }
}

/// The host part of the URLs: a wildcard address is reached through loopback.
fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) if v6.is_unspecified() => format!("[{}]", Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Authentication accepting `user`/`pass` with Basic or Digest; everyone else gets 401.
fn make_auth(user: &str, pass: &str) -> rtsp::RTSPAuth {
    let auth = rtsp::RTSPAuth::new();
    // The C API takes a bit mask of methods, which the Rust binding models as an enum;
    // combine the raw values to offer both Basic and Digest (the default is Basic only).
    let methods = RTSPAuthMethod::Basic.into_glib() | RTSPAuthMethod::Digest.into_glib();
    auth.set_supported_methods(RTSPAuthMethod::__Unknown(methods));
    let token = rtsp::RTSPToken::builder()
        .field(
            rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(),
            crate::mount::USER_ROLE,
        )
        .build();
    auth.add_basic(&rtsp::RTSPAuth::make_basic(user, pass), &token);
    auth.add_digest(user, pass, &token);
    auth
}
