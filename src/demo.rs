//! `nvr demo`: a working recorder in one command. Starts test cameras on loopback, creates the
//! data directory and an admin login on first run (the password is kept in
//! DATA_DIR/demo-login.txt, mode 0600, so later runs print the same login), adds the cameras,
//! and serves the UI on 127.0.0.1.

use std::process::ExitCode;

use anyhow::Context;
use nvr_core::config::Config;
use nvr_core::{CameraUrl, Role, SystemClock};
use nvr_storage::store::Store;

use crate::cli::DemoArgs;
use crate::commands::{add_user, open};

const DEMO_USER: &str = "admin";
const LOGIN_FILE: &str = "demo-login.txt";

pub fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = a.data_dir.clone();
    if !dir.join("index.db").exists() {
        Store::init(&dir, &SystemClock::new())
            .with_context(|| format!("initializing {}", dir.display()))?;
    }
    let store = open(&dir)?;
    let login_path = dir.join(LOGIN_FILE);
    let password = match std::fs::read_to_string(&login_path) {
        Ok(p) => p.trim().to_owned(),
        Err(_) => {
            let mut b = [0u8; 9];
            nvr_storage::keys::random_bytes(&mut b)?;
            let p = hex::encode(b);
            add_user(&store, DEMO_USER, Role::Admin, &p)?;
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
    for (i, url) in testcam.urls().iter().enumerate() {
        let name = format!("Test camera {}", i + 1);
        if store.db().camera_by_name(&name)?.is_none() {
            let url = CameraUrl::parse(url).map_err(anyhow::Error::msg)?;
            store.add_camera(&name, &url, None, None)?;
        }
    }
    drop(store);

    let cfg = Config {
        http: nvr_core::config::HttpConfig {
            listen: a.listen,
            ..Default::default()
        },
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new()?;
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
