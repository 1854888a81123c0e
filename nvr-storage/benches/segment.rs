//! Segment seal and open throughput against a plain memcpy of the same bytes.
//!
//! - `chunk/*`: one 64 KiB chunk: memcpy, AES-256-GCM seal in place, authenticate + decrypt.
//! - `segment/*`: 1 MiB of ~17 KiB frames (a 4 Mbit/s camera's frame size): memcpy of the
//!   frames, `SegmentWriter` appending them as records (copy into the chunk buffer, SHA-256 of
//!   the plaintext, seal, one `write` per chunk to a file in the temp dir), and
//!   `PlaintextReader` reading the same frames back (pread + authenticate + decrypt).
//!
//! Criterion runs on one thread, so bytes per second here are per core.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nvr_storage::keys::{Keyring, MasterKey};
use nvr_storage::segment::crypto::{ChunkKind, SegmentKey};
use nvr_storage::segment::file::{PlaintextReader, SegmentReader, SegmentWriter, TrailerFields};
use nvr_storage::segment::format::{
    CHUNK_PLAINTEXT_LEN, RECORD_FRAME, RecordHeader, SALT_LEN, SegmentHeader,
};

/// Average frame of the load benchmark's camera: 4 Mbit/s at 30 fps is ~16.7 kB.
const FRAME_BYTES: usize = 17_000;
/// Bytes of frames per `segment/*` iteration.
const SEGMENT_BYTES: usize = 1 << 20;

fn chunk(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Bytes(CHUNK_PLAINTEXT_LEN as u64));
    let src: Vec<u8> = (0..CHUNK_PLAINTEXT_LEN).map(|i| (i * 31) as u8).collect();
    let aad = [3u8; 32];
    let k = SegmentKey::derive(&[7; 32], &[9; SALT_LEN], 1, 1);
    g.bench_function("memcpy_64KiB", |b| {
        let mut dst = vec![0u8; CHUNK_PLAINTEXT_LEN];
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.bench_function("seal_64KiB", |b| {
        let mut buf = Vec::with_capacity(CHUNK_PLAINTEXT_LEN + 16);
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&src);
            k.seal_chunk(0, ChunkKind::Inner, &aad, &mut buf);
            black_box(&buf);
        })
    });
    let mut sealed = src.clone();
    k.seal_chunk(0, ChunkKind::Inner, &aad, &mut sealed);
    g.bench_function("open_64KiB", |b| {
        let mut buf = sealed.clone();
        b.iter_batched_ref(
            || (),
            |_| {
                buf.copy_from_slice(&sealed);
                let n = k
                    .open_chunk(0, ChunkKind::Inner, &aad, &mut buf)
                    .expect("authentic");
                black_box(n);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn frames() -> Vec<Bytes> {
    let f: Vec<u8> = (0..FRAME_BYTES).map(|i| (i * 7) as u8).collect();
    let f = Bytes::from(f);
    (0..SEGMENT_BYTES / FRAME_BYTES)
        .map(|_| f.clone())
        .collect()
}

fn frame_header(len: usize, i: usize) -> RecordHeader {
    RecordHeader {
        kind: RECORD_FRAME,
        flags: 0,
        size_bytes: len as u32,
        media_offset_90k: i as i64 * 3000,
    }
}

fn segment(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    // A real keyring, so the read benchmark opens files the way playback does.
    let master = MasterKey::create(&dir.path().join("master.key")).expect("master key");
    std::fs::create_dir(dir.path().join("keys")).expect("keys dir");
    let keyring = Keyring::new(dir.path().join("keys"), master);
    let epoch_key = keyring.create_epoch(1, 1).expect("epoch");
    let key = |id: i64| SegmentKey::derive(&epoch_key, &[9; SALT_LEN], 1, id);
    let frames = frames();
    let total: usize = frames.iter().map(Bytes::len).sum();
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("memcpy_1MiB_of_frames", |b| {
        let mut dst = Vec::with_capacity(total);
        b.iter(|| {
            dst.clear();
            for f in &frames {
                dst.extend_from_slice(black_box(f));
            }
            black_box(&dst);
        })
    });
    let header = |id: i64| SegmentHeader {
        camera_id: 1,
        segment_id: id,
        epoch_id: 1,
        salt: [9; SALT_LEN],
        start_90k: 0,
    };
    let mut n = 0i64;
    g.bench_function("write_1MiB_of_frames", |b| {
        b.iter_batched(
            || {
                n += 1;
                let path = dir.path().join(format!("w{n}.seg"));
                let _ = std::fs::remove_file(dir.path().join(format!("w{}.seg", n - 1)));
                SegmentWriter::create(&path, &header(n), key(n)).expect("create")
            },
            |mut w| {
                for (i, f) in frames.iter().enumerate() {
                    w.append_record(frame_header(f.len(), i), f)
                        .expect("append");
                }
                // Whole chunks only: the trailer and fsync belong to closing, once a minute.
                black_box(w.chunks_written());
                w
            },
            BatchSize::PerIteration,
        )
    });

    // A sealed segment holding the frames, read back frame by frame.
    let path = dir.path().join("r.seg");
    let id = 1_000_000;
    let mut w = SegmentWriter::create(&path, &header(id), key(id)).expect("create");
    let mut offsets = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        offsets.push((
            w.append_record(frame_header(f.len(), i), f)
                .expect("append"),
            f.len(),
        ));
    }
    let finished = w
        .finish(TrailerFields {
            frame_count: frames.len() as u64,
            media_duration_90k: 3000 * frames.len() as i64,
            wall_start_90k: 0,
            wall_end_90k: 1,
        })
        .expect("finish");
    black_box(finished);
    g.bench_function("read_1MiB_of_frames", |b| {
        b.iter(|| {
            let reader = SegmentReader::open(&path, &keyring, 1, id).expect("open");
            let last = reader.chunks_on_disk() - 1;
            let r = PlaintextReader::new(reader, Some((last, ChunkKind::Final)));
            let mut sum = 0usize;
            for &(off, len) in &offsets {
                sum += r.read(off, len).expect("read").len();
            }
            black_box(sum);
        })
    });
    g.finish();
}

criterion_group!(benches, chunk, segment);
criterion_main!(benches);
