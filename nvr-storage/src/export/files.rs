//! Writing a bundle to a file the way a court would want it (checked before it is offered),
//! and the bundles kept in the data directory for the web UI:
//!
//! ```text
//! DATA_DIR/exports/            (0700)
//!   <export id>.zip            a finished, self-verified bundle (0600)
//!   <export id>.zip.part       a bundle being written; never offered, removed at start
//!   .working-*.part            a working copy's input and output while it is made (see
//!                              `working.rs`); removed when done, or at start
//! ```
//! A bundle is a plaintext copy of footage: it is deleted when it expires, and a `.part` left by
//! a crash is removed at the next start.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ExportRequest, ExportSummary, write_bundle};
use crate::error::{Result, StorageError};
use crate::keys::sync_dir;
use crate::store::Store;

const EXPORTS_DIR: &str = "exports";
pub(super) const PART_SUFFIX: &str = ".part";

/// A bundle written and verified.
#[derive(Clone, Debug)]
pub struct WrittenBundle {
    pub bytes: u64,
    pub sha256: [u8; 32],
    pub summary: ExportSummary,
}

fn part_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(PART_SUFFIX);
    PathBuf::from(p)
}

/// Size and SHA-256 of a file, read in pieces (bundles can be gigabytes).
fn file_sha256(path: &Path) -> Result<(u64, [u8; 32])> {
    let mut f = File::open(path).map_err(StorageError::io(path))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(StorageError::io(path))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        total += n as u64;
    }
    let mut a = [0u8; 32];
    a.copy_from_slice(ctx.finish().as_ref());
    Ok((total, a))
}

/// Writes the bundle for `req` to `out` (which must not exist): first to `out.part` (0600),
/// fsynced, then checked the way `nvr verify` checks it, and only then given its name (without
/// ever replacing a file). On any failure nothing is left at `out` or `out.part`.
pub fn write_verified_bundle(
    store: &Arc<Store>,
    req: &ExportRequest,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<WrittenBundle> {
    if out.exists() {
        return Err(StorageError::AlreadyExists(format!("{}", out.display())));
    }
    let part = part_path(out);
    let result = (|| -> Result<WrittenBundle> {
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(&part)
            .map_err(StorageError::io(&part))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let summary = write_bundle(store, req, &mut w, progress)?;
        w.flush().map_err(StorageError::io(&part))?;
        let file = w
            .into_inner()
            .map_err(|e| StorageError::io(&part)(e.into_error()))?;
        file.sync_all().map_err(StorageError::io(&part))?;
        // The recorder checks its own bundle the way a court would before offering it, with
        // the key it signed it with pinned.
        let own: crate::signing::TrustedKeys = std::iter::once(summary.key_fingerprint).collect();
        // The bundle's own hash (for the export's record) is taken on a second thread while it
        // is verified: both read the file just written at the same time, so one read from disk
        // (or the page cache) serves both, on both cores.
        let (report, hashed) = std::thread::scope(|s| {
            let hashing = s.spawn(|| file_sha256(&part));
            let report = super::verify::verify_bundle(&part, &own);
            (report, hashing.join())
        });
        if report.verdict() != super::verify::Verdict::Authentic {
            return Err(StorageError::Format(format!(
                "the bundle failed its own verification: {}",
                report.failures.join("; ")
            )));
        }
        let (bytes, sha256) =
            hashed.map_err(|_| StorageError::Format("hashing the bundle panicked".into()))??;
        // A hard link fails if `out` appeared meanwhile: never replace someone's file.
        fs::hard_link(&part, out).map_err(StorageError::io(out))?;
        fs::remove_file(&part).map_err(StorageError::io(&part))?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync_dir(dir)?;
        }
        Ok(WrittenBundle {
            bytes,
            sha256,
            summary,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

impl Store {
    /// DATA_DIR/exports, created (0700) if missing.
    pub(super) fn exports_dir(&self) -> Result<PathBuf> {
        let dir = self.dir().join(EXPORTS_DIR);
        if !dir.exists() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(StorageError::io(&dir))?;
            sync_dir(self.dir())?;
        }
        Ok(dir)
    }

    fn export_bundle_path(&self, id: i64) -> Result<PathBuf> {
        Ok(self.exports_dir()?.join(format!("{id}.zip")))
    }

    /// Writes export `id`'s bundle into the data directory (see [`write_verified_bundle`]).
    pub fn write_export_bundle(
        self: &Arc<Self>,
        id: i64,
        req: &ExportRequest,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<WrittenBundle> {
        let path = self.export_bundle_path(id)?;
        write_verified_bundle(self, req, &path, progress)
    }

    /// Opens export `id`'s bundle for download.
    pub fn open_export_bundle(&self, id: i64) -> Result<File> {
        let path = self.export_bundle_path(id)?;
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StorageError::NotFound(format!("bundle of export {id}"))
            }
            _ => StorageError::Io { path, source: e },
        })
    }

    /// Deletes export `id`'s bundle file (gone already is fine).
    pub fn delete_export_bundle(&self, id: i64) -> Result<()> {
        let path = self.export_bundle_path(id)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir().join(EXPORTS_DIR)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Io { path, source: e }),
        }
    }

    /// Removes the `.part` files of exports a stop interrupted; returns how many.
    pub fn remove_partial_exports(&self) -> Result<usize> {
        let dir = self.dir().join(EXPORTS_DIR);
        if !dir.exists() {
            return Ok(0);
        }
        let mut n = 0;
        for entry in fs::read_dir(&dir).map_err(StorageError::io(&dir))? {
            let path = entry.map_err(StorageError::io(&dir))?.path();
            if path
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.ends_with(PART_SUFFIX))
            {
                fs::remove_file(&path).map_err(StorageError::io(&path))?;
                n += 1;
            }
        }
        if n > 0 {
            sync_dir(&dir)?;
        }
        Ok(n)
    }
}
