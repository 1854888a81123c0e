//! What cameras occupy and keep, per stream: storage use and effective retention, and the
//! confirmation a retention change needs when it would delete footage now.

use nvr_core::{CameraId, Stream, Time90k};
use nvr_storage::retention::{self, RetentionPolicy};
use nvr_storage::{CameraRetention, CameraRow};
use serde_json::json;

use crate::App;
use crate::error::{AppError, AppResult};

/// What one stream of a camera occupies and keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraStorage {
    pub bytes: u64,
    pub oldest_90k: Option<i64>,
    pub newest_90k: Option<i64>,
    /// Effective limits (`None` = no limit).
    pub retention: RetentionPolicy,
    /// Bytes over the quota retention may not delete because holds protect them.
    pub held_over_quota_bytes: u64,
}

impl App {
    /// What a camera's `stream` occupies and keeps.
    pub fn stream_storage(&self, c: &CameraRow, stream: Stream) -> AppResult<CameraStorage> {
        let db = &self.store;
        let key = c.id.stream(stream);
        let (bytes, oldest_90k, _) = db.stream_usage(key)?;
        let newest_90k = db.last_segment_end(key)?;
        let retention = RetentionPolicy::for_stream(c, stream, self.cameras.default_retention);
        let held = db.holds(true)?.iter().any(|h| h.camera_id == c.id);
        let held_over_quota_bytes = match retention.max_bytes {
            Some(m) if held && bytes > m => bytes - m,
            _ => 0,
        };
        Ok(CameraStorage {
            bytes,
            oldest_90k,
            newest_90k,
            retention,
            held_over_quota_bytes,
        })
    }

    /// What a camera's main stream occupies and keeps.
    pub fn camera_storage(&self, c: &CameraRow) -> AppResult<CameraStorage> {
        self.stream_storage(c, Stream::Main)
    }

    /// Refuses (409, `retention_deletes`) retention changes that would delete footage now,
    /// unless `confirmed`: `changes` are the streams' new overrides, `row` the camera before.
    pub(super) fn confirm_retention(
        &self,
        row: &CameraRow,
        changes: &[(Stream, CameraRetention)],
        confirmed: bool,
    ) -> AppResult<()> {
        let mut after = row.clone();
        let now = self.clock.realtime();
        let (mut segments, mut bytes) = (0, 0);
        let mut new_oldest = None;
        let mut per_stream = serde_json::Map::new();
        for &(stream, r) in changes {
            after.set_retention(stream, r);
            let policy =
                RetentionPolicy::for_stream(&after, stream, self.cameras.default_retention);
            let p = retention::preview(&self.store, row.id.stream(stream), policy, now)?;
            if p.bytes == 0 {
                continue;
            }
            segments += p.segments;
            bytes += p.bytes;
            let oldest = p.new_oldest_90k.map(|t| Time90k(t).to_rfc3339());
            new_oldest = new_oldest.or(oldest.clone());
            per_stream.insert(
                stream.as_str().into(),
                json!({"segments": p.segments, "bytes": p.bytes, "new_oldest": oldest}),
            );
        }
        if bytes == 0 || confirmed {
            return Ok(());
        }
        Err(AppError::precondition(format!(
            "these limits delete {segments} segments ({bytes} bytes) of camera {:?} now; send \
             \"confirm_delete\": true to apply them",
            row.name
        ))
        .with_detail("retention_deletes")
        .with_fields(json!({
            "would_delete_segments": segments,
            "would_delete_bytes": bytes,
            "new_oldest": new_oldest,
            "streams": per_stream,
        })))
    }

    /// Applies the limits of `streams` of camera `id` now (a confirmed change deletes at once,
    /// not at the next pass).
    pub(super) async fn enforce_retention(
        &self,
        id: CameraId,
        streams: &[Stream],
    ) -> AppResult<()> {
        let row = self.blocking(|| self.camera(id))?;
        for &stream in streams {
            let store = self.store.clone();
            let policy = RetentionPolicy::for_stream(&row, stream, self.cameras.default_retention);
            let now = self.clock.realtime();
            let key = id.stream(stream);
            tokio::task::spawn_blocking(move || retention::enforce(&store, key, policy, now))
                .await??;
        }
        Ok(())
    }
}
