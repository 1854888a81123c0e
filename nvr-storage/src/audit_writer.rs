//! The audit entries that record a read or an attempt (a playback request, a live view, a
//! refused request, a failed login), appended by one thread of their own in the order they were
//! made, so the request that made one never waits for the index's writer connection (which a
//! segment's seal holds through its fsync: 10-100 ms on a spinning disk). Changes record their
//! entries in their own transaction instead (`Database::audited`).
//!
//! The queue is bounded ([`QUEUE_ENTRIES`]; a full queue makes the caller wait, it never grows).
//! [`AuditWriter::flush`] waits until everything queued before it is written: readers of the
//! audit log call it first, so they see every entry made before they asked. Dropping the writer
//! writes what is queued and ends the thread. A crash loses at most what is queued, which on a
//! healthy disk is written within a millisecond.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::db::{AuditNote, Database};

/// Entries that may wait to be written: a few seconds of the busiest recorder's reads, held
/// while a slow disk catches up.
pub const QUEUE_ENTRIES: usize = 4096;

enum Message {
    Entry(AuditNote),
    /// Answered once everything sent before it is written.
    Flush(SyncSender<()>),
}

/// The thread that appends queued audit entries.
pub(crate) struct AuditWriter {
    tx: Mutex<Option<SyncSender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

impl AuditWriter {
    pub(crate) fn start(db: Arc<Database>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE_ENTRIES);
        let thread = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || run(&db, &rx))?;
        Ok(AuditWriter {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn sender(&self) -> Option<SyncSender<Message>> {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues `note` (waits only while the queue is full).
    pub(crate) fn append(&self, note: AuditNote) {
        match self.sender() {
            Some(tx) if tx.send(Message::Entry(note.clone())).is_ok() => {}
            _ => tracing::error!(action = %note.action, object = %note.object,
                "the audit thread is gone: entry not written"),
        }
    }

    /// Waits until every entry queued before this call is written.
    pub(crate) fn flush(&self) {
        let Some(tx) = self.sender() else { return };
        let (done_tx, done_rx) = sync_channel(1);
        if tx.send(Message::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has written what is queued.
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn run(db: &Database, rx: &Receiver<Message>) {
    while let Ok(m) = rx.recv() {
        match m {
            Message::Entry(n) => {
                if let Err(e) =
                    db.audit_append(n.time_90k, &n.actor, &n.action, &n.object, &n.detail)
                {
                    tracing::error!(error = %e, action = %n.action, object = %n.object,
                        "writing the audit log failed");
                }
            }
            Message::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_written_in_order_and_flush_waits_for_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Database::create(&dir.path().join("x.db"), &[1; 16], 0).expect("db"));
        let w = AuditWriter::start(db.clone()).expect("start");
        for i in 0..500 {
            w.append(AuditNote::new(
                i,
                "alice",
                "playback",
                "camera:1",
                json!({"i": i}),
            ));
        }
        w.flush();
        let all = db
            .audit_list(&crate::db::AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .expect("list");
        assert_eq!(all.len(), 500, "flush saw every entry queued before it");
        assert_eq!(
            all[0].detail, r#"{"i":499}"#,
            "newest first, in the order made"
        );
        assert_eq!(db.audit_verify().expect("verify"), vec![]);
        // Dropping writes what is still queued.
        for i in 500..600 {
            w.append(AuditNote::new(
                i,
                "alice",
                "playback",
                "camera:1",
                json!({}),
            ));
        }
        drop(w);
        let n = db
            .audit_list(&crate::db::AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .expect("list")
            .len();
        assert_eq!(n, 600);
    }
}
