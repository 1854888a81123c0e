//! Which audit entries a bundle carries (`audit.json`): what happened to the exported cameras'
//! footage of the exported range, and this export itself; never another case's reference or
//! reason (a bundle goes to a court, a defence, an insurer: other investigations are none of
//! their business).
//!
//! An entry about an exported camera (`object` = `camera:<id>`) is kept when:
//! - it is this export's own (`export` whose detail names this export's id);
//! - it reads footage of the range: `playback` whose `start`..`end` overlaps it, `snapshot`
//!   whose `at` is inside it;
//! - it configured the camera before the range ended (`camera_add`, `camera_change`: the name
//!   and address the footage was recorded under);
//! - anything else about the camera (a live view, a future action) made during the range.
//!
//! Never: other exports, holds and their releases (they carry other cases' references and
//! reasons), downloads and expiries of bundles (`export:<id>` objects), and retention's
//! bookkeeping. Each entry keeps its hash and its predecessor's, so each can still be checked
//! against the recorder's log; the chain between kept entries has gaps by design.

use nvr_core::{CameraId, Time90k};
use serde_json::{Value, json};

use crate::db::{AuditEntry, AuditFilter, RETENTION_DELETE_ACTION};
use crate::error::IndexContext;
use crate::error::Result;
use crate::integrity::canonical_json;
use crate::store::Store;

/// Entries examined per camera, newest first.
const MAX_ENTRIES_PER_CAMERA: u32 = 10_000;

/// Actions that belong to other cases and are never carried.
const OTHER_CASES: [&str; 3] = ["hold", "hold_release", "export_download"];

/// Whether `e` belongs in the bundle of export `export_id` over `[start, end)`.
pub fn relevant(e: &AuditEntry, export_id: Option<i64>, start: Time90k, end: Time90k) -> bool {
    let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
    let time = |k: &str| {
        detail[k]
            .as_str()
            .and_then(|s| Time90k::parse_rfc3339(s).ok())
    };
    match e.action.as_str() {
        "export" => export_id.is_some() && detail["export"].as_i64() == export_id,
        a if a == RETENTION_DELETE_ACTION || OTHER_CASES.contains(&a) => false,
        "playback" => match (time("start"), time("end")) {
            (Some(s), Some(t)) => s < end && t > start,
            _ => false,
        },
        "snapshot" => time("at").is_some_and(|at| at >= start && at < end),
        "camera_add" | "camera_change" => e.time_90k < end.0,
        _ => e.time_90k >= start.0 && e.time_90k < end.0,
    }
}

/// `audit.json`: the relevant entries about `cameras`, oldest first, canonical JSON.
pub fn audit_json(
    store: &Store,
    cameras: &[CameraId],
    export_id: Option<i64>,
    start: Time90k,
    end: Time90k,
) -> Result<Vec<u8>> {
    // Every entry of Store::audit made before the export (its own included) is in the list.
    store.flush_audit();
    let mut entries = Vec::new();
    for c in cameras {
        let f = AuditFilter {
            object: Some(format!("camera:{c}")),
            limit: MAX_ENTRIES_PER_CAMERA,
            ..Default::default()
        };
        for e in store
            .db()
            .audit_list(&f)
            .context(|| "reading the audit log for the bundle (audit_log)".to_owned())?
        {
            if !relevant(&e, export_id, start, end) {
                continue;
            }
            entries.push(json!({
                "id": e.id, "time": Time90k(e.time_90k).to_rfc3339(), "actor": e.actor,
                "action": e.action, "object": e.object,
                "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
                "prev_sha256": hex::encode(&e.prev_sha256), "sha256": hex::encode(&e.sha256),
            }));
        }
    }
    entries.sort_by_key(|e| e["id"].as_i64());
    Ok(canonical_json(&Value::Array(entries)))
}
