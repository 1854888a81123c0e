//! A change and its audit entry are one transaction, whichever front end makes it: a process
//! killed between the change and its entry (the `NVR_FAULT_ABORT_BEFORE_AUDIT` seam) leaves
//! neither, and a camera or user added by the CLI is on record exactly as one added through
//! the web API.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

/// Runs `nvr ARGS` with the abort seam set to `action`; returns whether it was killed.
fn killed_between_change_and_audit(action: &str, args: &[&str], stdin: Option<&str>) -> bool {
    let mut child = Command::new(NVR)
        .args(args)
        .env("NVR_FAULT_ABORT_BEFORE_AUDIT", action)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nvr");
    if let Some(s) = stdin {
        use std::io::Write;
        writeln!(child.stdin.take().expect("stdin"), "{s}").expect("stdin");
    }
    let status = child.wait().expect("wait");
    !status.success() && status.code().is_none()
}

/// (action, object, detail) of every audit entry with `action`, read from the index directly.
fn entries(rec: &Recorder, action: &str) -> Vec<(String, String, Value)> {
    let db = rusqlite::Connection::open(rec.dir.join("index.db")).expect("index");
    let mut stmt = db
        .prepare("SELECT actor, object, detail FROM audit WHERE action = ?1 ORDER BY id")
        .expect("prepare");
    stmt.query_map([action], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(Value::Null),
        ))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn count(rec: &Recorder, table: &str) -> i64 {
    let db = rusqlite::Connection::open(rec.dir.join("index.db")).expect("index");
    db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

#[test]
fn a_kill_between_change_and_audit_keeps_neither_and_cli_changes_are_audited_like_the_web() {
    let mut rec = Recorder::new();
    let (cameras, users) = (count(&rec, "cameras"), count(&rec, "users"));
    let add_camera = [
        "camera",
        "add",
        "--data-dir",
        rec.d(),
        "--name",
        "gate",
        "--url",
        "rtsp://10.9.9.9/gate",
        "--skip-probe",
    ];
    assert!(killed_between_change_and_audit(
        "camera_add",
        &add_camera,
        None
    ));
    let add_user = [
        "user",
        "add",
        "--data-dir",
        rec.d(),
        "--username",
        "night",
        "--role",
        "guard",
        "--password-stdin",
    ];
    assert!(killed_between_change_and_audit(
        "user_add",
        &add_user,
        Some("night-shift-pw")
    ));
    // Neither the change nor its entry.
    assert_eq!(count(&rec, "cameras"), cameras);
    assert_eq!(count(&rec, "users"), users);
    assert!(entries(&rec, "camera_add").is_empty());
    assert_eq!(
        entries(&rec, "user_add").len(),
        1,
        "only the harness's own admin"
    );
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");

    // Without the seam: both, through the CLI and through the web API, on record alike.
    let (code, out) = nvr(&add_camera, None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = nvr(&add_user, Some("night-shift-pw"));
    assert_eq!(code, 0, "{out}");
    rec.serve(&[]);
    let c = rec.client();
    let r = c.post(
        "/api/cameras",
        json!({"name": "door", "url": "rtsp://10.9.9.8/door", "skip_probe": true}),
    );
    assert_eq!(r.status, 201);
    let r = c.post(
        "/api/users",
        json!({"username": "day", "password": "day-shift-pw", "role": "guard"}),
    );
    assert_eq!(r.status, 201);
    rec.stop();
    let cams = entries(&rec, "camera_add");
    assert_eq!(cams.len(), 2, "{cams:?}");
    let (cli, web) = (&cams[0], &cams[1]);
    assert!(cli.0.starts_with("cli:"), "{cli:?}");
    assert_eq!(web.0, "admin");
    assert_eq!(cli.1, "camera:1");
    assert_eq!(web.1, "camera:2");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    assert_eq!(keys(&cli.2), keys(&web.2), "{cli:?} vs {web:?}");
    assert_eq!(cli.2["name"], "gate");
    let users = entries(&rec, "user_add");
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(users[1].1, "user:night");
    assert_eq!(users[2].1, "user:day");
    assert_eq!(keys(&users[1].2), keys(&users[2].2));
    let (code, out) = rec.check();
    assert_eq!(code, 0, "{out}");
}
