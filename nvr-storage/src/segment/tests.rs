//! Property tests of the segment format: round trip, truncation anywhere, flipped bits, and
//! chunks moved between positions, segments and cameras.

use proptest::prelude::*;
use std::path::Path;

use super::crypto::SegmentKey;
use super::file::{SegmentReader, SegmentWriter, TrailerFields};
use super::format::*;
use super::scan::scan;
use crate::keys::{Keyring, MasterKey};
use nvr_core::{VideoCodec, VideoParams};

struct Fixture {
    _dir: tempfile::TempDir,
    keyring: Keyring,
    root: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let master = MasterKey::create(&root.join("master.key")).expect("master");
    let keyring = Keyring::new(root.clone(), master);
    keyring.create_epoch(1, 7).expect("epoch");
    keyring.create_epoch(2, 8).expect("epoch");
    Fixture {
        _dir: dir,
        keyring,
        root,
    }
}

fn params() -> VideoParams {
    VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: "avc1.64001f".into(),
        width: 1280,
        height: 720,
        sample_entry: bytes::Bytes::from_static(b"fake sample entry with sps"),
    }
}

/// Writes a segment with frames of the given sizes; returns the frames' payloads.
fn write_segment(
    f: &Fixture,
    path: &Path,
    camera: i64,
    segment: i64,
    epoch: i64,
    sizes: &[usize],
) -> Vec<Vec<u8>> {
    let header = SegmentHeader {
        camera_id: camera,
        segment_id: segment,
        epoch_id: epoch,
        salt: [segment as u8; 16],
        start_90k: 1000,
    };
    let ek = f.keyring.epoch_key(epoch, camera).expect("epoch key");
    let key = SegmentKey::derive(&ek, &header.salt, camera, segment);
    let mut w = SegmentWriter::create(path, &header, key).expect("create");
    let p = encode_params(&params());
    w.append_record(
        RecordHeader {
            kind: RECORD_PARAMS,
            flags: 0,
            size_bytes: p.len() as u32,
            media_offset_90k: 0,
        },
        &p,
    )
    .expect("params");
    let mut payloads = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..size).map(|b| (b as u8) ^ (i as u8)).collect();
        w.append_record(
            RecordHeader {
                kind: RECORD_FRAME,
                flags: if i == 0 { FLAG_KEY } else { 0 },
                size_bytes: size as u32,
                media_offset_90k: i as i64 * 3000,
            },
            &payload,
        )
        .expect("frame");
        payloads.push(payload);
    }
    w.finish(TrailerFields {
        frame_count: sizes.len() as u64,
        media_duration_90k: sizes.len() as i64 * 3000,
        wall_start_90k: 1000,
        wall_end_90k: 1000 + sizes.len() as i64 * 3000,
    })
    .expect("finish");
    payloads
}

fn scan_problem(f: &Fixture, path: &Path, camera: i64, segment: i64) -> Option<String> {
    match SegmentReader::open(path, &f.keyring, camera, segment) {
        Err(e) => Some(e.to_string()),
        Ok(r) => scan(&r).sealed_problem(),
    }
}

#[test]
fn round_trip_recovers_every_frame() {
    let f = fixture();
    let path = f.root.join("a.seg");
    let sizes = [70_000, 10, 65_536 - 32, 1, 200_000, 3];
    let payloads = write_segment(&f, &path, 7, 1, 1, &sizes);
    let r = SegmentReader::open(&path, &f.keyring, 7, 1).expect("open");
    let s = scan(&r);
    assert_eq!(s.sealed_problem(), None);
    assert_eq!(s.params, Some(params()));
    assert_eq!(s.frames.len(), sizes.len());
    let last = r.chunks_on_disk() - 1;
    let pr = super::file::PlaintextReader::new(r, Some((last, super::crypto::ChunkKind::Final)));
    for (frame, payload) in s.frames.iter().zip(&payloads) {
        let got = pr
            .read(frame.payload_offset, frame.size_bytes as usize)
            .expect("read");
        assert_eq!(&got[..], &payload[..]);
    }
}

/// A read spanning several chunks (one `pread`, decrypted in place) returns the same bytes as
/// reads inside single chunks, and fails if any chunk it covers was altered.
#[test]
fn reads_across_chunks_match_and_authenticate_every_chunk() {
    use super::crypto::ChunkKind;
    use super::file::PlaintextReader;
    let f = fixture();
    let path = f.root.join("a.seg");
    let payloads = write_segment(&f, &path, 7, 1, 1, &[250_000, 40_000]);
    let open = |p: &Path| {
        let r = SegmentReader::open(p, &f.keyring, 7, 1).expect("open");
        let last = r.chunks_on_disk() - 1;
        PlaintextReader::new(r, Some((last, ChunkKind::Final)))
    };
    let pr = open(&path);
    let frames = scan(&SegmentReader::open(&path, &f.keyring, 7, 1).expect("open")).frames;
    // Frame 0 spans chunks 0..=3; frame 1 ends in the final chunk.
    let whole = pr
        .read(frames[0].payload_offset, 250_000)
        .expect("multi-chunk read");
    assert_eq!(&whole[..], &payloads[0][..]);
    let tail = pr
        .read(frames[1].payload_offset, 40_000)
        .expect("read into the final chunk");
    assert_eq!(&tail[..], &payloads[1][..]);
    for i in 0..250_000 / 65_536 {
        let at = i * 65_536 + 1000;
        let off = frames[0].payload_offset + at as u64;
        let piece = pr.read(off, 10).expect("single-chunk read");
        assert_eq!(&piece[..], &payloads[0][at..at + 10]);
    }
    // Flip one byte inside chunk 2: a read covering chunks 1..=3 must fail.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[HEADER_LEN + 2 * CHUNK_CIPHERTEXT_LEN + 77] ^= 4;
    let bad = f.root.join("bad.seg");
    std::fs::write(&bad, &bytes).expect("write");
    let pr = open(&bad);
    assert!(pr.read(70_000, 150_000).is_err());
    assert!(pr.read(70_000, 50_000).is_ok(), "chunk 1 alone is intact");
}

#[test]
fn no_plaintext_in_file() {
    let f = fixture();
    let path = f.root.join("a.seg");
    write_segment(&f, &path, 7, 1, 1, &[5000, 5000]);
    let bytes = std::fs::read(&path).expect("read");
    assert!(!bytes.windows(10).any(|w| w == b"fake sampl"));
}

#[test]
fn truncation_at_every_chunk_boundary_and_inside_chunks_is_detected() {
    let f = fixture();
    let path = f.root.join("a.seg");
    write_segment(&f, &path, 7, 1, 1, &[100_000, 100_000, 50_000]);
    let full = std::fs::read(&path).expect("read");
    let mut cuts: Vec<usize> = (0..=4)
        .map(|i| HEADER_LEN + i * CHUNK_CIPHERTEXT_LEN)
        .filter(|&c| c < full.len())
        .collect();
    cuts.extend([
        0,
        1,
        HEADER_LEN - 1,
        HEADER_LEN + 1,
        HEADER_LEN + 70_000,
        full.len() - 1,
    ]);
    for cut in cuts {
        let p = f.root.join(format!("cut{cut}.seg"));
        std::fs::write(&p, &full[..cut]).expect("write");
        assert!(
            scan_problem(&f, &p, 7, 1).is_some(),
            "truncation at {cut} of {} went unnoticed",
            full.len()
        );
    }
}

#[test]
fn chunks_swapped_or_moved_between_segments_are_rejected() {
    let f = fixture();
    let a = f.root.join("a.seg");
    let b = f.root.join("b.seg");
    let c = f.root.join("c.seg");
    write_segment(&f, &a, 7, 1, 1, &[200_000]);
    write_segment(&f, &b, 7, 2, 1, &[200_000]);
    write_segment(&f, &c, 8, 1, 2, &[200_000]);
    let fa = std::fs::read(&a).expect("a");
    let fb = std::fs::read(&b).expect("b");
    let fc = std::fs::read(&c).expect("c");
    let chunk = |f: &[u8], i: usize| {
        let s = HEADER_LEN + i * CHUNK_CIPHERTEXT_LEN;
        f[s..s + CHUNK_CIPHERTEXT_LEN].to_vec()
    };
    let splice = |base: &[u8], i: usize, with: &[u8]| {
        let mut v = base.to_vec();
        let s = HEADER_LEN + i * CHUNK_CIPHERTEXT_LEN;
        v[s..s + CHUNK_CIPHERTEXT_LEN].copy_from_slice(with);
        v
    };
    let cases = [
        ("swap 0 and 1", {
            let v = splice(&fa, 0, &chunk(&fa, 1));
            splice(&v, 1, &chunk(&fa, 0))
        }),
        ("chunk from another segment", splice(&fa, 1, &chunk(&fb, 1))),
        ("chunk from another camera", splice(&fa, 1, &chunk(&fc, 1))),
        ("header from another segment", {
            let mut v = fa.clone();
            v[..HEADER_LEN].copy_from_slice(&fb[..HEADER_LEN]);
            v
        }),
    ];
    for (name, bytes) in cases {
        let p = f.root.join("spliced.seg");
        std::fs::write(&p, &bytes).expect("write");
        assert!(
            scan_problem(&f, &p, 7, 1).is_some(),
            "{name} went unnoticed"
        );
    }
    // A whole file renamed to another segment's name is refused by its header.
    assert!(scan_problem(&f, &b, 7, 1).is_some());
    assert_eq!(scan_problem(&f, &a, 7, 1), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_flipped_bit_is_detected(pos_frac in 0.0f64..1.0, bit in 0u8..8) {
        let f = fixture();
        let path = f.root.join("a.seg");
        write_segment(&f, &path, 7, 1, 1, &[30_000, 70_000, 1_000]);
        let mut bytes = std::fs::read(&path).expect("read");
        let pos = ((bytes.len() as f64) * pos_frac) as usize % bytes.len();
        bytes[pos] ^= 1 << bit;
        std::fs::write(&path, &bytes).expect("write");
        prop_assert!(scan_problem(&f, &path, 7, 1).is_some(), "flip at byte {} bit {}", pos, bit);
    }

    #[test]
    fn random_frame_sizes_round_trip(sizes in proptest::collection::vec(1usize..150_000, 1..12)) {
        let f = fixture();
        let path = f.root.join("a.seg");
        let payloads = write_segment(&f, &path, 7, 1, 1, &sizes);
        let r = SegmentReader::open(&path, &f.keyring, 7, 1).expect("open");
        let s = scan(&r);
        prop_assert_eq!(s.sealed_problem(), None);
        let sizes_back: Vec<usize> = s.frames.iter().map(|fr| fr.size_bytes as usize).collect();
        prop_assert_eq!(sizes_back, sizes);
        let last = r.chunks_on_disk() - 1;
        let pr = super::file::PlaintextReader::new(r, Some((last, super::crypto::ChunkKind::Final)));
        for (frame, payload) in s.frames.iter().zip(&payloads) {
            let got = pr.read(frame.payload_offset, frame.size_bytes as usize).expect("read");
            prop_assert_eq!(&got[..], &payload[..]);
        }
    }
}
