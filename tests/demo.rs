//! `nvr demo`, as `make demo` runs it: test cameras and a recorder come up, and the printed URL
//! and login work.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn demo_prints_a_working_url_and_login_and_records_four_cameras() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("demo-data");
    let args = [
        "demo",
        "--data-dir",
        data.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
        "--camera-listen",
        "127.0.0.1:0",
    ];
    let proc = Proc::start(&args, &tmp.path().join("demo.log"));
    let url_line = proc.wait_line(Duration::from_secs(180), |l| {
        l.trim_start().starts_with("Open")
    });
    let login_line = proc.wait_line(Duration::from_secs(5), |l| {
        l.trim_start().starts_with("Login")
    });
    let base = url_line
        .split_whitespace()
        .nth(1)
        .expect("url")
        .trim_end_matches('/')
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let mut login = login_line.split_whitespace().skip(1);
    let (user, slash, password) = (
        login.next().expect("user"),
        login.next(),
        login.next().expect("pw"),
    );
    assert_eq!(slash, Some("/"));
    let c = Client::login(&base, user, password);
    let cams = wait_for(Duration::from_secs(60), "four recording cameras", || {
        let cams = c.cameras();
        let n = cams
            .as_array()
            .map(|a| a.iter().filter(|c| c["status"] == "recording").count())
            .unwrap_or(0);
        (n == 4).then_some(cams)
    });
    assert_eq!(cams.as_array().map(Vec::len), Some(4));
    // The UI page is served, with nothing from elsewhere.
    let page = c.get("/", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .is_some_and(|v| v.contains("default-src 'self'"))
    );
    drop(proc);
    // The login is kept for the next run, readable only by its owner.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("demo-login.txt"))
            .expect("login file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}
