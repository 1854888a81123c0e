//! Building the MP4 index (`moov`) for a 1-hour range: 60 one-minute segments of a 30 fps
//! camera (108,000 frames, key frame every 2 s, ~17 kB frames).
//!
//! - `moov/1h_build`: `VirtualMp4::build` from frame lists already in memory.
//! - `moov/1h_from_index_blobs`: decoding the 60 segments' frame index blobs (as stored in
//!   SQLite) and then building: everything `view.mp4` does between the SQL query and the first
//!   byte.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use nvr_storage::frame_index::{self, FrameInfo};
use nvr_storage::mp4::test_support::fake_avc1;
use nvr_storage::mp4::{Mp4Request, SampleEntry, SegmentPart, VirtualMp4};

const SEGMENTS: usize = 60;
const FRAMES_PER_SEGMENT: usize = 1800;
/// 30 fps in 90 kHz ticks.
const FRAME_90K: u32 = 3000;
/// Offset of the first frame record: after the parameters record.
const FIRST_RECORD: u64 = 16 + 120;

fn segment_frames(seed: usize) -> Vec<FrameInfo> {
    let mut off = FIRST_RECORD;
    (0..FRAMES_PER_SEGMENT)
        .map(|i| {
            let key = i % 60 == 0;
            let size = if key {
                90_000
            } else {
                15_000 + ((i * 7919 + seed) % 4000) as u32
            };
            let f = FrameInfo {
                duration_90k: FRAME_90K,
                size_bytes: size,
                is_key: key,
                data_offset: off + 16,
                composition_offset_90k: 0,
            };
            off += 16 + u64::from(size);
            f
        })
        .collect()
}

fn request(segments: &[Arc<[FrameInfo]>]) -> Mp4Request {
    Mp4Request {
        entries: vec![SampleEntry {
            box_bytes: Bytes::from(fake_avc1(1920, 1080)),
            width: 1920,
            height: 1080,
        }],
        parts: segments
            .iter()
            .enumerate()
            .map(|(i, f)| SegmentPart {
                segment_id: i as u64 + 1,
                sample_entry_idx: 0,
                frames: f.clone(),
                frame_range: 0..f.len(),
                content_tag: [i as u8; 32],
            })
            .collect(),
        start_trim_90k: 1234,
        duration_90k: Some(3600 * 90_000),
        creation_time_unix_secs: 1_795_959_900,
        extras: None,
    }
}

fn moov(c: &mut Criterion) {
    let segments: Vec<Arc<[FrameInfo]>> = (0..SEGMENTS).map(|s| segment_frames(s).into()).collect();
    let blobs: Vec<Vec<u8>> = segments
        .iter()
        .map(|f| frame_index::encode(FIRST_RECORD, f))
        .collect();
    let mut g = c.benchmark_group("moov");
    g.bench_function("1h_build", |b| {
        b.iter(|| {
            let mp4 = VirtualMp4::build(request(&segments)).expect("build");
            black_box(mp4.len());
        })
    });
    g.bench_function("1h_from_index_blobs", |b| {
        b.iter(|| {
            let segs: Vec<Arc<[FrameInfo]>> = blobs
                .iter()
                .map(|b| frame_index::decode(b).expect("decode").into())
                .collect();
            let mp4 = VirtualMp4::build(request(&segs)).expect("build");
            black_box(mp4.len());
        })
    });
    g.finish();
}

criterion_group!(benches, moov);
criterion_main!(benches);
