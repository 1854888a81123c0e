//! Segment files on disk: the writer that seals 64 KiB chunks as records arrive, and the reader
//! that authenticates and decrypts chunks and plaintext ranges.
//!
//! Writer contract: records go to an in-memory chunk buffer; each time it holds 64 KiB the chunk
//! is sealed and written with one `write` call, so the file only ever grows by whole chunks and
//! a `kill -9` loses at most the unsealed buffer. Durability against power loss comes from
//! [`SegmentWriter::sync`], which the caller invokes on a cadence, and from [`SegmentWriter::finish`].
//! A failed write poisons the writer: no chunk is ever sealed twice under one nonce.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use ring::digest;

use super::crypto::{ChunkKind, SegmentKey};
use super::format::*;
use crate::error::{Result, StorageError};
use crate::keys::Keyring;

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// What [`SegmentWriter::finish`] reports about the closed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedSegment {
    pub file_bytes: u64,
    pub records_end: u64,
    pub sha256: [u8; 32],
}

/// Trailer fields the writer cannot know by itself.
#[derive(Clone, Copy, Debug)]
pub struct TrailerFields {
    pub frame_count: u64,
    pub media_duration_90k: i64,
    pub wall_start_90k: i64,
    pub wall_end_90k: i64,
}

/// Appends records to a new segment file.
pub struct SegmentWriter {
    path: PathBuf,
    file: File,
    key: SegmentKey,
    aad: [u8; 32],
    /// Plaintext of the chunk being filled; sealed in place when full.
    buf: Vec<u8>,
    chunks_written: u64,
    records_end: u64,
    sha: digest::Context,
    /// Set while a chunk is sealed but not yet written, and for good after a failed write: the
    /// file's tail is unknown and the sealed chunk must never be sealed again, so nothing more
    /// may be appended, padded or sealed.
    failed: bool,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.path)
            .field("chunks_written", &self.chunks_written)
            .field("records_end", &self.records_end)
            .finish_non_exhaustive()
    }
}

impl SegmentWriter {
    /// Creates the file (mode 0600, must not exist) and writes its header.
    pub fn create(path: &Path, header: &SegmentHeader, key: SegmentKey) -> Result<Self> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(StorageError::io(path))?;
        let hb = header.encode();
        file.write_all(&hb).map_err(StorageError::io(path))?;
        Ok(SegmentWriter {
            path: path.to_owned(),
            file,
            key,
            aad: sha256(&hb),
            buf: Vec::with_capacity(CHUNK_CIPHERTEXT_LEN),
            chunks_written: 0,
            records_end: 0,
            sha: digest::Context::new(&digest::SHA256),
            failed: false,
        })
    }

    /// Appends one record; returns the plaintext offset of its payload.
    pub fn append_record(&mut self, header: RecordHeader, payload: &[u8]) -> Result<u64> {
        if payload.len() != header.size_bytes as usize {
            return Err(StorageError::InvalidArgument(format!(
                "record header says {} bytes, payload has {}",
                header.size_bytes,
                payload.len()
            )));
        }
        let hb = header.encode();
        self.append_plain(&hb)?;
        self.append_plain(payload)?;
        let payload_offset = self.records_end + RECORD_HEADER_LEN as u64;
        self.records_end = payload_offset + payload.len() as u64;
        Ok(payload_offset)
    }

    /// Refuses any further work once a write failed (see [`Self::write_chunk`]).
    fn check_not_failed(&self) -> Result<()> {
        if self.failed {
            return Err(StorageError::Format(format!(
                "{}: an earlier write failed; the segment must be recovered",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn append_plain(&mut self, mut data: &[u8]) -> Result<()> {
        self.check_not_failed()?;
        self.sha.update(data);
        while !data.is_empty() {
            let room = CHUNK_PLAINTEXT_LEN - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == CHUNK_PLAINTEXT_LEN {
                self.write_chunk(ChunkKind::Inner)?;
            }
        }
        Ok(())
    }

    /// Seals `buf` in place as chunk `chunks_written` and appends it to the file.
    ///
    /// Sealing uses the nonce (chunk index, kind), so a chunk must be sealed at most once: a
    /// second seal under the same nonce XORs the same keystream again, turning ciphertext back
    /// into plaintext. The writer is therefore poisoned from the moment it seals until the write
    /// succeeds: after a failed (or partial) write, or a panic in between, `failed` stays set,
    /// the sealed bytes are dropped, and every path that could seal again ([`Self::append_record`],
    /// [`Self::finish`], this) refuses. Recovery then closes the file at its last authenticated
    /// chunk, under its own nonce flag.
    fn write_chunk(&mut self, kind: ChunkKind) -> Result<()> {
        self.check_not_failed()?;
        self.failed = true;
        self.key
            .seal_chunk(self.chunks_written, kind, &self.aad, &mut self.buf);
        if let Err(e) = self.write_sealed() {
            self.buf.clear();
            return Err(StorageError::Io {
                path: self.path.clone(),
                source: e,
            });
        }
        self.failed = false;
        self.chunks_written += 1;
        self.buf.clear();
        Ok(())
    }

    /// Writes the sealed chunk in `buf` at the end of the file (in tests, through the fault
    /// seam, which may fail it after a prefix).
    fn write_sealed(&mut self) -> std::io::Result<()> {
        #[cfg(any(test, feature = "test-support"))]
        if let Some((prefix_bytes, e)) = super::fault::take(self.chunks_written, self.buf.len()) {
            self.file.write_all(&self.buf[..prefix_bytes])?;
            return Err(e);
        }
        self.file.write_all(&self.buf)
    }

    /// Plaintext bytes that are sealed in the file (readable by others); the rest is in memory.
    pub fn sealed_plaintext_len(&self) -> u64 {
        self.chunks_written * CHUNK_PLAINTEXT_LEN as u64
    }

    pub fn chunks_written(&self) -> u64 {
        self.chunks_written
    }

    /// Plaintext bytes appended so far (sealed or not).
    pub fn records_end(&self) -> u64 {
        self.records_end
    }

    /// Makes everything sealed so far durable.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(StorageError::io(&self.path))
    }

    /// Writes the trailer in the final chunk and fsyncs the file. Refuses (before sealing
    /// anything) if an earlier write failed.
    pub fn finish(mut self, t: TrailerFields) -> Result<FinishedSegment> {
        self.check_not_failed()?;
        let sha: [u8; 32] = {
            let d = self.sha.clone().finish();
            let mut a = [0u8; 32];
            a.copy_from_slice(d.as_ref());
            a
        };
        let trailer = Trailer {
            records_end: self.records_end,
            frame_count: t.frame_count,
            media_duration_90k: t.media_duration_90k,
            wall_start_90k: t.wall_start_90k,
            wall_end_90k: t.wall_end_90k,
            flags: 0,
            sha256: sha,
        };
        if self.buf.len() + TRAILER_LEN > CHUNK_PLAINTEXT_LEN {
            // No room for the trailer: pad this chunk (readers stop at records_end) and put the
            // trailer alone in the final chunk.
            self.buf.resize(CHUNK_PLAINTEXT_LEN, 0);
            self.write_chunk(ChunkKind::Inner)?;
        }
        self.buf.extend_from_slice(&trailer.encode());
        let last_len = (self.buf.len() + TAG_LEN) as u64;
        self.write_chunk(ChunkKind::Final)?;
        self.sync()?;
        Ok(FinishedSegment {
            file_bytes: chunk_file_offset(self.chunks_written - 1) + last_len,
            records_end: self.records_end,
            sha256: sha,
        })
    }
}

/// Reads and authenticates chunks of an existing segment file.
pub struct SegmentReader {
    path: PathBuf,
    file: File,
    key: SegmentKey,
    aad: [u8; 32],
    header: SegmentHeader,
    file_len: u64,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("file_len", &self.file_len)
            .finish_non_exhaustive()
    }
}

impl SegmentReader {
    /// Opens a segment file, checking that its header names the expected camera and segment and
    /// deriving its key. Chunks are authenticated as they are read.
    pub fn open(path: &Path, keyring: &Keyring, camera_id: i64, segment_id: i64) -> Result<Self> {
        let file = File::open(path).map_err(StorageError::io(path))?;
        let file_len = file.metadata().map_err(StorageError::io(path))?.len();
        let mut hb = [0u8; HEADER_LEN];
        let corrupt = |detail: String| StorageError::Corrupt {
            camera: nvr_core::CameraId(camera_id),
            segment: nvr_core::SegmentId(segment_id),
            detail,
        };
        file.read_exact_at(&mut hb, 0)
            .map_err(|e| corrupt(format!("cannot read header: {e}")))?;
        let header = SegmentHeader::decode(&hb).map_err(corrupt)?;
        if header.camera_id != camera_id || header.segment_id != segment_id {
            return Err(corrupt(format!(
                "file header names camera {} segment {}: the file was moved or replaced",
                header.camera_id, header.segment_id
            )));
        }
        let epoch_key = keyring.epoch_key(header.epoch_id, camera_id)?;
        let key = SegmentKey::derive(&epoch_key, &header.salt, camera_id, segment_id);
        Ok(SegmentReader {
            path: path.to_owned(),
            file,
            key,
            aad: sha256(&hb),
            header,
            file_len,
        })
    }

    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Number of chunks with at least one byte in the file (the last may be partial).
    pub fn chunks_on_disk(&self) -> u64 {
        let body = self.file_len.saturating_sub(HEADER_LEN as u64);
        body.div_ceil(CHUNK_CIPHERTEXT_LEN as u64)
    }

    /// Bytes of chunk `i` present in the file.
    pub fn chunk_len_on_disk(&self, i: u64) -> usize {
        let start = chunk_file_offset(i);
        self.file_len
            .saturating_sub(start)
            .min(CHUNK_CIPHERTEXT_LEN as u64) as usize
    }

    fn corrupt(&self, detail: String) -> StorageError {
        StorageError::Corrupt {
            camera: nvr_core::CameraId(self.header.camera_id),
            segment: nvr_core::SegmentId(self.header.segment_id),
            detail,
        }
    }

    /// Reads chunk `i` and authenticates it as `kind`; returns its plaintext.
    pub fn read_chunk(&self, i: u64, kind: ChunkKind) -> Result<Vec<u8>> {
        let len = self.chunk_len_on_disk(i);
        if len < TAG_LEN || (kind == ChunkKind::Inner && len != CHUNK_CIPHERTEXT_LEN) {
            return Err(self.corrupt(format!("chunk {i} is truncated ({len} bytes on disk)")));
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, chunk_file_offset(i))
            .map_err(StorageError::io(&self.path))?;
        self.open_buf(i, kind, buf)
    }

    fn open_buf(&self, i: u64, kind: ChunkKind, mut buf: Vec<u8>) -> Result<Vec<u8>> {
        match self.key.open_chunk(i, kind, &self.aad, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(_) => Err(self.auth_failed(i, kind)),
        }
    }

    fn auth_failed(&self, i: u64, kind: ChunkKind) -> StorageError {
        self.corrupt(format!(
            "chunk {i} failed authentication as {} chunk (altered, truncated, reordered, \
             or from another segment)",
            match kind {
                ChunkKind::Inner => "an inner",
                ChunkKind::Final | ChunkKind::RecoveredFinal => "the final",
            }
        ))
    }

    /// Reads chunks `first..=last` with one `pread` and authenticates each, `final_chunk`
    /// (index, kind) as the final one and every other as an inner chunk. Returns their
    /// plaintexts back to back: each chunk is decrypted in place while being moved over the
    /// tags before it (`open_chunk_within`), so a long read costs one syscall, one buffer and
    /// no copy besides the decryption.
    pub fn read_chunks(
        &self,
        first: u64,
        last: u64,
        final_chunk: Option<(u64, ChunkKind)>,
    ) -> Result<Vec<u8>> {
        let kind_of = |i: u64| match final_chunk {
            Some((f, kind)) if f == i => kind,
            _ => ChunkKind::Inner,
        };
        for i in [first, last] {
            let len = self.chunk_len_on_disk(i);
            if len < TAG_LEN || (kind_of(i) == ChunkKind::Inner && len != CHUNK_CIPHERTEXT_LEN) {
                return Err(self.corrupt(format!("chunk {i} is truncated ({len} bytes on disk)")));
            }
        }
        let whole = usize::try_from(last - first).map_err(|_| {
            StorageError::InvalidArgument(format!("read of chunks {first}..={last}"))
        })?;
        let last_len = self.chunk_len_on_disk(last);
        let mut buf = vec![0u8; whole * CHUNK_CIPHERTEXT_LEN + last_len];
        self.file
            .read_exact_at(&mut buf, chunk_file_offset(first))
            .map_err(StorageError::io(&self.path))?;
        let mut plain_len = 0;
        for (k, i) in (first..=last).enumerate() {
            let kind = kind_of(i);
            if i != last && kind != ChunkKind::Inner {
                // A chunk before the last of the read cannot be the final chunk.
                return Err(self.auth_failed(i, ChunkKind::Inner));
            }
            let src = k * CHUNK_CIPHERTEXT_LEN;
            let end = src
                + if i == last {
                    last_len
                } else {
                    CHUNK_CIPHERTEXT_LEN
                };
            let dst = k * CHUNK_PLAINTEXT_LEN;
            let n = self
                .key
                .open_chunk_within(i, kind, &self.aad, &mut buf[dst..end], src - dst)
                .map_err(|_| self.auth_failed(i, kind))?;
            plain_len = dst + n;
        }
        buf.truncate(plain_len);
        Ok(buf)
    }

    /// Reads chunk `i` as the final chunk, accepting either a normal or a recovery-written one.
    pub fn read_final_chunk(&self, i: u64) -> Result<(Vec<u8>, ChunkKind)> {
        let len = self.chunk_len_on_disk(i);
        if len < TAG_LEN + TRAILER_LEN {
            return Err(self.corrupt(format!(
                "final chunk {i} is truncated ({len} bytes on disk)"
            )));
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, chunk_file_offset(i))
            .map_err(StorageError::io(&self.path))?;
        let mut copy = buf.clone();
        if let Ok(n) = self
            .key
            .open_chunk(i, ChunkKind::Final, &self.aad, &mut copy)
        {
            copy.truncate(n);
            return Ok((copy, ChunkKind::Final));
        }
        self.open_buf(i, ChunkKind::RecoveredFinal, buf)
            .map(|p| (p, ChunkKind::RecoveredFinal))
    }

    /// Seals `plaintext` as chunk `i` of kind `kind` and writes it at its place, truncating the
    /// file after it. Used only by crash recovery.
    pub(crate) fn rewrite_tail(
        &mut self,
        i: u64,
        kind: ChunkKind,
        plaintext: &[u8],
    ) -> Result<u64> {
        let mut buf = plaintext.to_vec();
        self.key.seal_chunk(i, kind, &self.aad, &mut buf);
        let f = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(StorageError::io(&self.path))?;
        let at = chunk_file_offset(i);
        f.set_len(at).map_err(StorageError::io(&self.path))?;
        f.write_all_at(&buf, at)
            .map_err(StorageError::io(&self.path))?;
        f.sync_all().map_err(StorageError::io(&self.path))?;
        self.file_len = at + buf.len() as u64;
        Ok(self.file_len)
    }
}

/// Serves plaintext byte ranges of one segment, decrypting only the chunks a range touches and
/// keeping the most recent chunk for the next read (reads of consecutive frames share chunks).
#[derive(Debug)]
pub struct PlaintextReader {
    reader: SegmentReader,
    /// Index and kind of the final chunk; `None` while the segment is still being written (then
    /// every readable chunk is an inner chunk).
    final_chunk: Option<(u64, ChunkKind)>,
    cache: Mutex<Option<(u64, Bytes)>>,
}

impl PlaintextReader {
    pub fn new(reader: SegmentReader, final_chunk: Option<(u64, ChunkKind)>) -> Self {
        PlaintextReader {
            reader,
            final_chunk,
            cache: Mutex::new(None),
        }
    }

    fn chunk(&self, i: u64) -> Result<Bytes> {
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((ci, b)) = cache.as_ref()
                && *ci == i
            {
                return Ok(b.clone());
            }
        }
        let plain = match self.final_chunk {
            Some((f, kind)) if f == i => self.reader.read_chunk(i, kind)?,
            _ => self.reader.read_chunk(i, ChunkKind::Inner)?,
        };
        let b = Bytes::from(plain);
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((i, b.clone()));
        Ok(b)
    }

    /// Returns exactly `len` plaintext bytes starting at `offset`.
    pub fn read(&self, offset: u64, len: usize) -> Result<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let chunk_len = CHUNK_PLAINTEXT_LEN as u64;
        let first = offset / chunk_len;
        let last = (offset + len as u64 - 1) / chunk_len;
        let short = || {
            self.reader.corrupt(format!(
                "plaintext range {offset}+{len} extends past the end of the segment"
            ))
        };
        if first == last {
            let c = self.chunk(first)?;
            let start = (offset - first * chunk_len) as usize;
            if start + len > c.len() {
                return Err(short());
            }
            return Ok(c.slice(start..start + len));
        }
        let start = (offset - first * chunk_len) as usize;
        if last == first + 1 {
            // Two chunks (a frame across a boundary, as frame-by-frame readers meet every few
            // frames): through the cache, so each chunk is decrypted once and the second stays
            // cached for the frames after it.
            let (a, b) = (self.chunk(first)?, self.chunk(last)?);
            let tail = start + len - a.len().max(start);
            if start > a.len() || a.len() != CHUNK_PLAINTEXT_LEN || tail > b.len() {
                return Err(short());
            }
            let mut out = Vec::with_capacity(len);
            out.extend_from_slice(&a[start..]);
            out.extend_from_slice(&b[..tail]);
            return Ok(Bytes::from(out));
        }
        // Several chunks: one read, decrypted in place (no per-chunk buffers or copies).
        let plain = self.reader.read_chunks(first, last, self.final_chunk)?;
        if start + len > plain.len() {
            return Err(short());
        }
        // Keep a copy of the last chunk (64 KiB, not the whole read) for the next read.
        let last_start = ((last - first) * chunk_len) as usize;
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((last, Bytes::copy_from_slice(&plain[last_start..])));
        let mut b = Bytes::from(plain);
        if start > 0 || b.len() > len {
            b = b.slice(start..start + len);
        }
        Ok(b)
    }
}
