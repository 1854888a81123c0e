//! The data directory's lock: at most one process records into a data directory. `nvr serve`
//! (and `nvr demo`, through it) takes an exclusive `flock` on `DATA_DIR/lock` before recovery
//! and holds it for its whole life; a second one would otherwise "recover" (truncate and seal)
//! the first one's open segments under it. Commands that only read or add rows the server
//! picks up (check, export, camera list and add) do not take it and run beside the server.
//!
//! The lock is the kernel's, tied to the open file: it goes with the process, however it ends
//! (`kill -9` included), so there is never a stale lock to clean up. The file itself stays and
//! holds the pid of the last holder, for the message a refused process prints.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Result, StorageError};

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "lock";

/// Longest pid text read back from the lock file (a pid has at most 7 digits on Linux; the
/// rest is margin), so a tampered file cannot make us read much.
const MAX_PID_TEXT: u64 = 32;

/// The exclusive lock of a data directory, held until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    /// Kept open: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of data directory `dir` without waiting, and writes our pid into the
    /// lock file. Fails with [`StorageError::Locked`], naming the holder's pid, if another
    /// process holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        // Not truncated on open: until we hold the lock, the file is the holder's.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(StorageError::io(&path))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(StorageError::Locked {
                    dir: dir.to_owned(),
                    holder_pid: read_pid(&mut file),
                });
            }
            Err(e) => {
                return Err(StorageError::Io {
                    path,
                    source: e.into(),
                });
            }
        }
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(StorageError::io(&path))?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid the holder wrote into the lock file, if it is there and readable.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(MAX_PID_TEXT).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first");
        let mode = std::fs::metadata(first.path())
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        // flock locks belong to the open file, so a second open in this process conflicts
        // just as another process would.
        let e = DataDirLock::acquire(dir.path()).expect_err("second");
        assert!(
            matches!(e, StorageError::Locked { holder_pid: Some(p), .. } if p == std::process::id()),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the first is dropped");
    }
}
