//! Password hashing and verification (Argon2id) on a small, fixed pool of threads with a short,
//! bounded queue.
//!
//! Each Argon2id run with the default parameters fills 19 MiB and takes tens of milliseconds of
//! one core. Run on tokio's blocking pool, 300 concurrent login attempts grew the server by
//! ~1 GiB and took both cores from recording. Here at most [`PasswordPool::workers`] runs
//! happen at once, each worker reuses one memory buffer for every run (so memory is bounded by
//! workers x 19 MiB, allocated once), and at most `queue` jobs wait: a job that finds the queue
//! full is refused at once ([`Busy`]) instead of growing a queue.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// The pool is busy: try again shortly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the password verifier is busy; try again in a moment")]
pub struct Busy;

/// The largest Argon2 memory a stored hash may ask for (KiB). Our hashes use 19 MiB; a stored
/// hash asking for more (edited by hand) is refused rather than allocating what it says.
const MAX_M_COST_KIB: u32 = 64 * 1024;

/// Salt bytes of new hashes (RFC 9106 recommends 16).
const SALT_LEN: usize = 16;

enum Job {
    Verify {
        password: String,
        phc: String,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    Hash {
        password: String,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
}

/// Runs Argon2id jobs on `workers` dedicated threads.
pub struct PasswordPool {
    tx: SyncSender<Job>,
    workers: usize,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPool")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl PasswordPool {
    /// Starts `workers` threads (at least 1) taking jobs from a queue of `queue` places.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password worker thread");
            }
        }
        PasswordPool { tx, workers }
    }

    /// The default pool: one worker per core up to two (a login is rare; recording needs the
    /// cores), and room for 16 waiting jobs (about half a second of waiting): more than the
    /// throttle lets several attacking addresses have in flight (2 each), so a real user's
    /// login still finds a place.
    pub fn default_sized() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores.min(2), 16)
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Whether `password` matches the PHC string `phc`; false for any malformed hash.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, Busy> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Verify {
            password,
            phc,
            reply,
        })?;
        rx.await.map_err(|_| Busy)
    }

    /// A new Argon2id PHC string for `password`, with a random salt.
    pub async fn hash(&self, password: String) -> Result<Result<String, String>, Busy> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        rx.await.map_err(|_| Busy)
    }

    /// [`Self::hash`] for callers outside an async runtime (the CLI).
    pub fn hash_blocking(&self, password: String) -> Result<Result<String, String>, Busy> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        rx.blocking_recv().map_err(|_| Busy)
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    // One buffer for every run of this worker, sized by the largest run so far.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        match job {
            Job::Verify {
                password,
                phc,
                reply,
            } => {
                let ok = verify_with(&mut memory, &password, &phc).unwrap_or(false);
                let _ = reply.send(ok);
            }
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_with(&mut memory, &password));
            }
        }
    }
}

fn argon2id(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn ensure_blocks(memory: &mut Vec<Block>, params: &Params) {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
}

/// Hashes with the default parameters (m = 19 MiB, t = 2, p = 1) as a PHC string.
fn hash_with(memory: &mut Vec<Block>, password: &str) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    nvr_storage::keys::random_bytes(&mut salt).map_err(|e| e.to_string())?;
    let params = Params::default();
    ensure_blocks(memory, &params);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id(params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut memory[..])
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Verifies against an Argon2id PHC string; `None` when the string is not one we can check.
fn verify_with(memory: &mut Vec<Block>, password: &str, phc: &str) -> Option<bool> {
    let hash = argon2::PasswordHash::new(phc).ok()?;
    if hash.algorithm.as_str() != "argon2id" {
        return None;
    }
    let params = Params::try_from(&hash).ok()?;
    if params.m_cost() > MAX_M_COST_KIB {
        return None;
    }
    let mut salt_buf = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt_buf).ok()?;
    let expected = hash.hash?;
    let mut out = vec![0u8; expected.len()];
    ensure_blocks(memory, &params);
    argon2id(params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
        .ok()?;
    // Constant time in where the two differ.
    let diff = out
        .iter()
        .zip(expected.as_bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    Some(diff == 0 && out.len() == expected.len())
}

/// An Argon2id hash of a random password, verified against when a username is unknown, so the
/// time a login takes does not tell whether the account exists.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Kx2eQ9Vx4H5hF6m4P0cYw0XkJ7wQyYbqQ6mXxG5b3c";

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_argon2_crate() {
        let pool = PasswordPool::new(1, 4);
        let phc = pool
            .hash("correct horse".into())
            .await
            .expect("not busy")
            .expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            pool.verify("correct horse".into(), phc.clone())
                .await
                .expect("v")
        );
        assert!(
            !pool
                .verify("wrong horse".into(), phc.clone())
                .await
                .expect("v")
        );
        // The argon2 crate's own verifier agrees, so hashes from before this pool still work.
        let parsed = argon2::PasswordHash::new(&phc).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let older = {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
            Argon2::default()
                .hash_password(b"old password", &salt)
                .expect("hash")
                .to_string()
        };
        assert!(pool.verify("old password".into(), older).await.expect("v"));
        assert!(
            !pool
                .verify("x".into(), "not a hash".into())
                .await
                .expect("v")
        );
        assert!(!pool.verify("x".into(), DUMMY_HASH.into()).await.expect("v"));
        assert!(
            argon2::PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash must parse"
        );
    }

    #[test]
    fn absurd_memory_costs_are_refused_not_allocated() {
        let mut memory = Vec::new();
        let phc = "$argon2id$v=19$m=4000000,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$0Kx2eQ9Vx4H5hF6m4P0cYw0XkJ7wQyYbqQ6mXxG5b3c";
        assert_eq!(verify_with(&mut memory, "x", phc), None);
        assert!(memory.is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        // One worker, one queue place: of many jobs submitted at once, most are refused rather
        // than queued.
        let pool = Arc::new(PasswordPool::new(1, 1));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                pool.verify("x".into(), DUMMY_HASH.into()).await
            }));
        }
        let mut busy = 0;
        for t in tasks {
            if t.await.expect("task") == Err(Busy) {
                busy += 1;
            }
        }
        assert!(busy >= 15, "{busy} of 20 refused");
    }
}
