//! `nvr demo`: a working recorder in one command. Starts test cameras on loopback, creates the
//! data directory and an admin login on first run (the password is kept in
//! DATA_DIR/demo-login.txt, mode 0600, so later runs print the same login), adds the cameras
//! with their sub-streams, and serves the UI on 127.0.0.1.

use std::process::ExitCode;

use anyhow::Context;
use nvr_app::Actor;
use nvr_core::config::Config;
use nvr_core::{Role, SystemClock};
use nvr_storage::store::Store;

use crate::cli::DemoArgs;
use crate::commands::{app_error, offline_app};

const DEMO_USER: &str = "admin";
const LOGIN_FILE: &str = "demo-login.txt";

pub fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = a.data_dir.clone();
    if !dir.join("index.db").exists() {
        Store::init(&dir, &SystemClock::new())
            .with_context(|| format!("initializing {}", dir.display()))?;
    }
    let app = offline_app(&Config::default(), &dir)?;
    let login_path = dir.join(LOGIN_FILE);
    let password = match std::fs::read_to_string(&login_path) {
        Ok(p) => p.trim().to_owned(),
        Err(_) => {
            let mut b = [0u8; 9];
            nvr_storage::keys::random_bytes(&mut b)?;
            let p = hex::encode(b);
            app.add_user_blocking(&Actor::cli(), DEMO_USER, Role::Admin, p.clone())
                .map_err(app_error)?;
            nvr_storage::keys::write_secret_file(&login_path, p.as_bytes())?;
            p
        }
    };

    let cam_cfg = nvr_testcam::TestCamConfig {
        listen: a.camera_listen,
        mounts: a.cameras,
        ..Default::default()
    };
    let testcam = nvr_testcam::TestCam::start(&cam_cfg).context("starting the test cameras")?;
    let rt = tokio::runtime::Runtime::new()?;
    let sub_urls = testcam.sub_urls();
    let existing = app.cameras().map_err(app_error)?;
    for (i, url) in testcam.urls().iter().enumerate() {
        let name = format!("Test camera {}", i + 1);
        if !existing.iter().any(|c| c.name == name) {
            let new = nvr_app::cameras::NewCamera {
                name,
                url: url.clone(),
                sub_url: sub_urls.get(i).cloned(),
                skip_probe: true,
                ..Default::default()
            };
            rt.block_on(app.add_camera(&Actor::cli(), &new))
                .map_err(app_error)?;
        }
    }
    drop(app);

    let cfg = Config {
        http: nvr_core::config::HttpConfig {
            listen: a.listen,
            ..Default::default()
        },
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let banner = async move {
        if let Ok(addr) = rx.await {
            println!();
            println!("  NVR demo is recording {} test cameras.", a.cameras);
            println!("  Open   http://{addr}/");
            println!("  Login  {DEMO_USER} / {password}");
            println!(
                "  Data   {}  (Ctrl-C stops; footage is kept)",
                dir.display()
            );
            println!();
        }
    };
    rt.block_on(async {
        tokio::spawn(banner);
        crate::serve::run(cfg, a.data_dir.clone(), Some(tx)).await
    })?;
    drop(testcam);
    Ok(ExitCode::SUCCESS)
}
