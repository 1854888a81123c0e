//! The web server as clients on the network see it: HTTPS with the local CA, and the status page.

mod common;

use common::*;

#[test]
fn https_answers_a_client_that_trusts_the_generated_ca() {
    let mut rec = Recorder::new();
    rec.serve(&["--tls"]);
    assert!(rec.base.starts_with("https://127.0.0.1:"), "{}", rec.base);
    let ca_pem = std::fs::read(rec.dir.join("tls/ca.pem")).expect("nvr init made a CA");

    let c = Client::login_with(agent_trusting(&ca_pem), &rec.base, "admin", ADMIN_PASSWORD);
    let status = c.get("/api/status", &[]);
    assert_eq!(status.status, 200);
    let s = status.json();
    assert_eq!(s["tls"]["enabled"], true);
    let fp = s["tls"]["ca_fingerprint_sha256"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    assert_eq!(fp.len(), 95, "{fp}");
    // The CA served for installation is the one on disk.
    let served = c.get("/api/tls/ca.pem", &[]);
    assert_eq!(served.body.expect("body"), ca_pem);

    // A client that does not trust the CA is refused by its own TLS stack.
    let untrusting: ureq::Agent = ureq::Agent::config_builder().build().into();
    let err = untrusting
        .get(format!("{}/api/setup", rec.base))
        .call()
        .expect_err("an unknown CA must not be trusted");
    assert!(
        err.to_string().to_lowercase().contains("certificate")
            || err.to_string().contains("UnknownIssuer"),
        "{err}"
    );
    // Plain HTTP to the HTTPS port gets nothing useful.
    let plain = rec.base.replace("https://", "http://");
    let r = ureq::Agent::config_builder()
        .build()
        .new_agent()
        .get(format!("{plain}/api/setup"))
        .call();
    assert!(r.is_err(), "plain HTTP must not be served on the TLS port");
}

#[test]
fn status_reports_disk_and_cameras_to_admins_only() {
    let mut rec = Recorder::new();
    let (code, out) = nvr(
        &[
            "user",
            "add",
            "--data-dir",
            rec.d(),
            "--username",
            "g",
            "--role",
            "guard",
            "--password-stdin",
        ],
        Some("guard-password"),
    );
    assert_eq!(code, 0, "{out}");
    rec.serve(&[]);
    let c = rec.client();
    let s = c.get("/api/status", &[]).json();
    assert!(s["disk"]["total_bytes"].as_u64() > Some(0));
    assert!(s["disk"]["free_bytes"].as_u64() > Some(0));
    assert_eq!(s["tls"]["enabled"], false);
    assert!(s["version"].as_str().is_some_and(|v| !v.is_empty()));
    let g = Client::login(&rec.base, "g", "guard-password");
    assert_eq!(g.get("/api/status", &[]).status, 403);
}
