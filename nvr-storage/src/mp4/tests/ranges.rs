//! Byte-range tests: every range equals the slice of the whole file, reads are coalesced as
//! documented, and reader failures surface as errors.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::super::{MAX_COALESCED_GAP_BYTES, MAX_COALESCED_READ_BYTES};
use super::*;

/// Deterministic pseudo-random numbers (a 64-bit LCG; constants from Knuth's MMIX).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Synthetic frames: key every 10th, sizes 1..=40_000 bytes, plus one 1.5 MiB frame (larger
/// than a coalesced read); the bytes of each frame are a pattern that identifies it.
fn synthetic_samples(n: usize, seed: u64) -> Vec<Sample> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let len = if i == n / 2 {
                3 << 19
            } else {
                1 + (rng.next() % 40_000) as usize
            };
            let tag = rng.next() as u8;
            Sample {
                data: (0..len)
                    .map(|j| tag ^ (j as u8))
                    .collect::<Vec<u8>>()
                    .into(),
                is_key: i % 10 == 0,
                duration_90k: 3000 + (i % 3) as u32,
                composition_offset_90k: 0,
            }
        })
        .collect()
}

/// A file over three synthetic segments (two parts from the middle one) and its expected bytes.
struct Fixture {
    segments: Vec<FakeSegment>,
    mp4: VirtualMp4,
    whole: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let segments: Vec<FakeSegment> = (0..3)
            .map(|i| FakeSegment::new(100 + i, &synthetic_samples(60, i)))
            .collect();
        let parts = vec![
            segments[0].whole(0),
            segments[1].part(1, 10..30),
            segments[1].part(1, 30..45),
            segments[2].part(0, 0..59),
        ];
        let entries = vec![
            fake_entry(b"avc1", 1920, 1080, &[1, 2, 3]),
            fake_entry(b"avc1", 1280, 720, &[4, 5, 6, 7]),
        ];
        let payload = expected_mdat(&segments, &parts);
        let mp4 = VirtualMp4::build(request(entries, parts)).unwrap();
        let whole = collect(&mp4, 0..mp4.len(), MemReader::new(&segments)).unwrap();
        let payload_start = usize::try_from(mp4.mdat_payload_range().start).unwrap();
        assert!(whole[payload_start..] == payload[..], "mdat payload");
        // No record header leaked into the output.
        assert!(
            !whole
                .windows(RECORD_HEADER_LEN)
                .any(|w| w.iter().all(|&b| b == RECORD_HEADER_BYTE))
        );
        Fixture {
            segments,
            mp4,
            whole,
        }
    })
}

/// Positions where something starts or ends: every box (and box body) boundary of the header,
/// and every frame boundary of the mdat.
fn boundaries(mp4: &VirtualMp4, whole: &[u8]) -> Vec<u64> {
    let mut b = vec![0, mp4.len()];
    for bx in all_boxes(whole) {
        b.extend([bx.range.start, bx.range.end, bx.body.start].map(|x| x as u64));
    }
    let sizes = stsz_sizes(stbl_box(whole, b"stsz").unwrap());
    let mut pos = mp4.mdat_payload_range().start;
    for s in sizes {
        b.push(pos);
        pos += u64::from(s);
    }
    assert_eq!(pos, mp4.len());
    b.sort_unstable();
    b.dedup();
    b
}

/// Checks ranges at and around every boundary, and 1-byte ranges over the header and the first
/// frames, against slices of `whole`.
pub(super) fn check_boundary_ranges(mp4: &VirtualMp4, reader: Arc<MemReader>, whole: &[u8]) {
    let len = mp4.len();
    let check = |r: Range<u64>| {
        let got = collect(mp4, r.clone(), reader.clone()).unwrap();
        let want = &whole[r.start as usize..r.end as usize];
        assert!(got == want, "range {r:?} differs");
    };
    let bounds = boundaries(mp4, whole);
    for (i, &b) in bounds.iter().enumerate() {
        let lo = b.saturating_sub(1);
        let hi = (b + 1).min(len);
        check(lo..hi);
        check(b..hi);
        check(lo..b);
        if let Some(&next) = bounds.get(i + 1) {
            check(b..next); // exactly one box or frame (or header part)
            check(lo..(next + 1).min(len));
        }
        if let Some(&after) = bounds.get(i + 3) {
            check(b + 1..after - 1); // starts and ends inside, crosses several
        }
    }
    check(0..len);
    check(0..mp4.mdat_payload_range().start);
    check(mp4.mdat_payload_range());
    for start in 0..(mp4.mdat_payload_range().start + 200).min(len) {
        check(start..start + 1);
    }
    check(len - 1..len);
    check(len..len);
}

#[test]
fn boundary_ranges_match_whole_file() {
    let f = fixture();
    check_boundary_ranges(&f.mp4, MemReader::new(&f.segments), &f.whole);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_ranges_match_whole_file(a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let f = fixture();
        let len = f.whole.len() + 1; // positions 0..=len
        let (x, y) = (a.index(len), b.index(len));
        let r = x.min(y) as u64..x.max(y) as u64;
        let got = collect(&f.mp4, r.clone(), MemReader::new(&f.segments)).unwrap();
        prop_assert!(got == f.whole[x.min(y)..x.max(y)], "range {:?}", r);
    }

    #[test]
    fn short_ranges_match_whole_file(a in any::<prop::sample::Index>(), n in 1usize..70_000) {
        let f = fixture();
        let start = a.index(f.whole.len());
        let end = (start + n).min(f.whole.len());
        let got = collect(&f.mp4, start as u64..end as u64, MemReader::new(&f.segments)).unwrap();
        prop_assert!(got == f.whole[start..end]);
    }
}

#[test]
fn out_of_bounds_ranges_are_errors() {
    let f = fixture();
    let reader = MemReader::new(&f.segments);
    let len = f.mp4.len();
    #[allow(clippy::reversed_empty_ranges)]
    for r in [0..len + 1, len + 1..len + 2, 10..5] {
        let mut it = f.mp4.pieces(r.clone(), reader.clone());
        assert!(
            matches!(it.next(), Some(Err(Mp4Error::RangeOutOfBounds { .. }))),
            "{r:?}"
        );
        assert!(it.next().is_none());
    }
    assert!(f.mp4.pieces(7..7, reader).next().is_none());
}

/// 300 frames of 10,000 bytes: each read spans as many whole frames (with their 16-byte
/// headers in between) as fit in 1 MiB.
#[test]
fn reads_are_coalesced_up_to_the_cap() {
    let samples: Vec<Sample> = (0..300)
        .map(|i| Sample {
            data: vec![i as u8; 10_000].into(),
            is_key: i == 0,
            duration_90k: 3000,
            composition_offset_90k: 0,
        })
        .collect();
    let seg = FakeSegment::new(1, &samples);
    let entry = fake_entry(b"avc1", 640, 480, &[1]);
    let mp4 = VirtualMp4::build(request(vec![entry], vec![seg.whole(0)])).unwrap();
    let reader = MemReader::new(std::slice::from_ref(&seg));
    let data = collect(&mp4, mp4.mdat_payload_range(), reader.clone()).unwrap();
    assert_eq!(
        data,
        expected_mdat(std::slice::from_ref(&seg), &[seg.whole(0)])
    );
    // k frames span (k - 1) * (10_000 + 16) + 10_000 bytes <= 1 MiB  =>  k = 104.
    let stride = 10_000 + RECORD_HEADER_LEN as u64;
    let k = (MAX_COALESCED_READ_BYTES - 10_000) / stride + 1;
    assert_eq!(k, 104);
    let span = |frames: u64| ((frames - 1) * stride + 10_000) as usize;
    let expected = vec![
        (1, seg.frames[0].data_offset, span(k)),
        (1, seg.frames[104].data_offset, span(k)),
        (1, seg.frames[208].data_offset, span(300 - 2 * k)),
    ];
    assert_eq!(reader.take_calls(), expected);

    // A range starting and ending mid-frame reads only what it needs.
    let start = mp4.mdat_payload_range().start + 5 * 10_000 + 123;
    let got = collect(&mp4, start..start + 20_000, reader.clone()).unwrap();
    assert_eq!(got.len(), 20_000);
    let calls = reader.take_calls();
    assert_eq!(
        calls,
        [(
            1,
            seg.frames[5].data_offset + 123,
            20_000 + 2 * RECORD_HEADER_LEN
        )]
    );
}

#[test]
fn reads_split_at_big_frames_gaps_and_parts() {
    // Frame 2 is larger than the cap; frame 5 starts far after frame 4; frame 7's bytes come
    // before frame 6's in the plaintext.
    let mut samples: Vec<Sample> = (0..10)
        .map(|i| Sample {
            data: vec![i as u8 + 1; 1000].into(),
            is_key: i == 0,
            duration_90k: 3000,
            composition_offset_90k: 0,
        })
        .collect();
    samples[2].data = vec![3; (MAX_COALESCED_READ_BYTES + 5) as usize].into();
    let mut seg = FakeSegment::new(7, &samples);
    let mut frames = seg.frames.to_vec();
    let gap = MAX_COALESCED_GAP_BYTES + 1;
    let mut plaintext = seg.plaintext.to_vec();
    // Insert `gap` bytes before frame 5's header.
    let cut = (frames[5].data_offset as usize) - RECORD_HEADER_LEN;
    plaintext.splice(cut..cut, std::iter::repeat_n(0u8, gap as usize));
    for f in &mut frames[5..] {
        f.data_offset += gap;
    }
    frames.swap(6, 7); // swap the index entries of frames 6 and 7 (same sizes)
    seg.plaintext = plaintext.into();
    seg.frames = frames.into();
    let parts = vec![seg.part(0, 0..8), seg.part(0, 8..10)];
    let entry = fake_entry(b"avc1", 640, 480, &[1]);
    let mp4 = VirtualMp4::build(request(vec![entry], parts.clone())).unwrap();
    let reader = MemReader::new(std::slice::from_ref(&seg));
    let data = collect(&mp4, mp4.mdat_payload_range(), reader.clone()).unwrap();
    assert!(data == expected_mdat(std::slice::from_ref(&seg), &parts));
    let first_frames: Vec<u64> = reader
        .take_calls()
        .iter()
        .map(|&(_, off, _)| {
            seg.frames
                .iter()
                .position(|f| f.data_offset == off)
                .unwrap() as u64
        })
        .collect();
    // Reads start at: 0 (frames 0-1), 2 (alone: too big), 3 (3-4), 5 (after the gap; 5-6),
    // 7 (before 6 in the plaintext), 8 (a new part).
    assert_eq!(first_frames, [0, 2, 3, 5, 7, 8]);
}

/// Fails every read of one segment.
#[derive(Debug)]
struct FailingReader {
    inner: Arc<MemReader>,
    fail_segment: u64,
}

impl SampleReader for FailingReader {
    fn read(&self, segment_id: u64, offset: u64, len: usize) -> Result<Bytes, ReadError> {
        if segment_id == self.fail_segment {
            return Err("chunk authentication failed".into());
        }
        self.inner.read(segment_id, offset, len)
    }
}

/// Returns one byte too few.
#[derive(Debug)]
struct ShortReader(Arc<MemReader>);

impl SampleReader for ShortReader {
    fn read(&self, segment_id: u64, offset: u64, len: usize) -> Result<Bytes, ReadError> {
        let b = self.0.read(segment_id, offset, len)?;
        Ok(b.slice(..b.len() - 1))
    }
}

#[test]
fn reader_errors_surface_as_errors() {
    let f = fixture();
    let failing = Arc::new(FailingReader {
        inner: MemReader::new(&f.segments),
        fail_segment: 101,
    });
    let mut ok = Vec::new();
    let mut it = f.mp4.pieces(0..f.mp4.len(), failing.clone());
    let err = loop {
        match it.next().expect("ended without an error") {
            Ok(piece) => ok.extend_from_slice(&piece),
            Err(e) => break e,
        }
    };
    match &err {
        Mp4Error::Read {
            segment_id, source, ..
        } => {
            assert_eq!(*segment_id, 101);
            assert_eq!(source.to_string(), "chunk authentication failed");
        }
        e => panic!("unexpected error {e:?}"),
    }
    assert!(it.next().is_none(), "iterator ends after an error");
    // Everything before the error was right, and stopped where segment 101 starts.
    let seg101 = f.mp4.mdat_payload_range().start
        + f.segments[0]
            .frames
            .iter()
            .map(|f| u64::from(f.size_bytes))
            .sum::<u64>();
    assert_eq!(ok.len() as u64, seg101);
    assert!(ok == f.whole[..ok.len()]);

    // A range that does not touch segment 101 is fine.
    let got = collect(&f.mp4, 0..seg101, failing).unwrap();
    assert!(got == f.whole[..seg101 as usize]);

    let short = Arc::new(ShortReader(MemReader::new(&f.segments)));
    let start = f.mp4.mdat_payload_range().start;
    let res = collect(&f.mp4, start..start + 10, short);
    assert!(
        matches!(
            res,
            Err(Mp4Error::ShortRead {
                expected: 10,
                actual: 9,
                segment_id: 100,
                ..
            })
        ),
        "{res:?}"
    );
}
