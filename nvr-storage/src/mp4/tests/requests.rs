//! Request tests: validation, the last-frame duration rule, the ETag, a one-hour request, and a
//! 30-hour, 5 GB request that needs 64-bit boxes (co64, mdat largesize, v1 headers).

use std::collections::HashSet;

use super::*;

/// Two segments of 20 small frames each, key frames every 10, 3000 ticks each.
fn small_segments() -> Vec<FakeSegment> {
    (0..2u64)
        .map(|s| {
            let samples: Vec<Sample> = (0..20)
                .map(|i| Sample {
                    data: vec![s as u8 * 20 + i as u8; 100 + i].into(),
                    is_key: i % 10 == 0,
                    duration_90k: 3000,
                    composition_offset_90k: 0,
                })
                .collect();
            FakeSegment::new(s + 1, &samples)
        })
        .collect()
}

fn small_request() -> Mp4Request {
    let segs = small_segments();
    request(
        vec![
            fake_entry(b"avc1", 640, 480, &[1, 2]),
            fake_entry(b"hvc1", 1920, 1080, &[3, 4]),
        ],
        vec![segs[0].whole(0), segs[1].whole(1)],
    )
}

/// Replaces frame `i` of `part` (a copy of its frames).
fn edit_frame(part: &mut SegmentPart, i: usize, f: impl FnOnce(&mut FrameInfo)) {
    let mut frames = part.frames.to_vec();
    f(&mut frames[i]);
    part.frames = frames.into();
}

fn build_err(f: impl FnOnce(&mut Mp4Request)) -> Mp4Error {
    let mut req = small_request();
    f(&mut req);
    VirtualMp4::build(req).unwrap_err()
}

#[test]
fn invalid_requests_are_rejected() {
    VirtualMp4::build(small_request()).unwrap();
    use Mp4Error as E;
    macro_rules! rejects {
        ($edit:expr, $pat:pat) => {
            let e = build_err($edit);
            assert!(matches!(e, $pat), "got {e:?}");
        };
    }
    rejects!(|r| r.entries.clear(), E::NoSampleEntries);
    rejects!(|r| r.parts.clear(), E::NoParts);
    rejects!(
        |r| r.entries[1].box_bytes.truncate(85),
        E::InvalidSampleEntry { idx: 1, .. }
    );
    rejects!(
        |r| {
            let mut b = r.entries[0].box_bytes.to_vec();
            b.push(0); // size field no longer matches
            r.entries[0].box_bytes = b.into();
        },
        E::InvalidSampleEntry { idx: 0, .. }
    );
    rejects!(
        |r| r.entries[0] = fake_entry(b"mp4v", 1, 1, &[]),
        E::InvalidSampleEntry { idx: 0, .. }
    );
    rejects!(
        |r| r.parts[1].sample_entry_idx = 2,
        E::SampleEntryOutOfRange {
            part: 1,
            segment_id: 2,
            sample_entry_idx: 2,
            entries: 2
        }
    );
    rejects!(
        |r| r.parts[0].frame_range = 3..3,
        E::BadFrameRange { part: 0, .. }
    );
    rejects!(
        |r| r.parts[1].frame_range = 5..21,
        E::BadFrameRange { part: 1, .. }
    );
    #[allow(clippy::reversed_empty_ranges)]
    {
        rejects!(
            |r| r.parts[1].frame_range = 5..3,
            E::BadFrameRange { part: 1, .. }
        );
    }
    rejects!(
        |r| r.parts[0].frame_range = 1..20,
        E::FirstFrameNotKey {
            segment_id: 1,
            frame: 1
        }
    );
    rejects!(
        |r| edit_frame(&mut r.parts[1], 4, |f| f.duration_90k = 0),
        E::ZeroDuration {
            segment_id: 2,
            frame: 4
        }
    );
    // The last frame of a part that is not the last part needs a duration.
    rejects!(
        |r| edit_frame(&mut r.parts[0], 19, |f| f.duration_90k = 0),
        E::ZeroDuration {
            segment_id: 1,
            frame: 19
        }
    );
    rejects!(
        |r| edit_frame(&mut r.parts[0], 7, |f| f.size_bytes = 0),
        E::ZeroSize {
            segment_id: 1,
            frame: 7
        }
    );
    rejects!(
        |r| edit_frame(&mut r.parts[1], 2, |f| f.data_offset = u64::MAX - 10),
        E::FrameOffsetOverflow {
            segment_id: 2,
            frame: 2
        }
    );
    rejects!(
        |r| r.start_trim_90k = 40 * 3000,
        E::TrimTooLong {
            start_trim_90k: 120_000,
            media_duration_90k: 120_000
        }
    );
    rejects!(|r| r.duration_90k = Some(0), E::ZeroRequestedDuration);

    // Accepted: a later part starting on a non-key frame; a trim just before the end.
    let mut req = small_request();
    req.parts[1].frame_range = 3..20;
    req.start_trim_90k = 37 * 3000 - 1;
    VirtualMp4::build(req).unwrap();
}

fn stts_of(mp4: &VirtualMp4) -> Vec<Vec<u32>> {
    let head = collect(
        mp4,
        0..mp4.mdat_payload_range().start,
        Arc::new(PatternReader),
    )
    .unwrap();
    table_u32(stbl_box(&head, b"stts").unwrap(), 2)
}

#[test]
fn last_frame_without_duration_gets_the_previous_one() {
    let mut req = small_request();
    edit_frame(&mut req.parts[1], 18, |f| f.duration_90k = 2000);
    edit_frame(&mut req.parts[1], 19, |f| f.duration_90k = 0);
    let mp4 = VirtualMp4::build(req).unwrap();
    assert_eq!(stts_of(&mp4), [[38, 3000], [2, 2000]]);
    assert_eq!(mp4.media_duration_90k(), 38 * 3000 + 2 * 2000);
    assert_eq!(mp4.duration_90k(), mp4.media_duration_90k());

    // The previous frame may be in the previous part.
    let mut req = small_request();
    req.parts[1].frame_range = 19..20;
    edit_frame(&mut req.parts[1], 19, |f| f.duration_90k = 0);
    edit_frame(&mut req.parts[0], 19, |f| f.duration_90k = 1234);
    let mp4 = VirtualMp4::build(req).unwrap();
    assert_eq!(stts_of(&mp4), [[19, 3000], [2, 1234]]);

    // A lone frame without a duration lasts 1 tick.
    let mut req = small_request();
    req.parts.truncate(1);
    req.parts[0].frame_range = 0..1;
    edit_frame(&mut req.parts[0], 0, |f| f.duration_90k = 0);
    let mp4 = VirtualMp4::build(req).unwrap();
    assert_eq!(stts_of(&mp4), [[1, 1]]);
    assert_eq!((mp4.duration_90k(), mp4.frame_count()), (1, 1));
}

#[test]
fn etag_changes_with_every_input_and_only_then() {
    let base = VirtualMp4::build(small_request()).unwrap();
    let tag = base.etag().to_owned();
    assert!(
        tag.len() == 66 && tag.starts_with('"') && tag.ends_with('"'),
        "{tag}"
    );
    // Same inputs, rebuilt from scratch (new Arcs): same ETag.
    assert_eq!(VirtualMp4::build(small_request()).unwrap().etag(), tag);
    assert_eq!(base.clone().etag(), tag);

    type Edit = Box<dyn Fn(&mut Mp4Request)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "entry bytes",
            Box::new(|r| r.entries[0] = fake_entry(b"avc1", 640, 480, &[1, 3])),
        ),
        (
            "entry type",
            Box::new(|r| r.entries[0] = fake_entry(b"avc3", 640, 480, &[1, 2])),
        ),
        ("entry width", Box::new(|r| r.entries[1].width += 1)),
        ("entry height", Box::new(|r| r.entries[1].height -= 1)),
        (
            "extra entry",
            Box::new(|r| r.entries.push(fake_entry(b"hev1", 8, 8, &[]))),
        ),
        (
            "entry order",
            Box::new(|r| {
                r.entries.swap(0, 1);
                r.parts[0].sample_entry_idx = 1;
                r.parts[1].sample_entry_idx = 0;
            }),
        ),
        ("segment id", Box::new(|r| r.parts[0].segment_id = 99)),
        (
            "sample entry idx",
            Box::new(|r| r.parts[1].sample_entry_idx = 0),
        ),
        ("range end", Box::new(|r| r.parts[0].frame_range.end = 19)),
        (
            "range start",
            Box::new(|r| r.parts[1].frame_range.start = 1),
        ),
        ("content tag", Box::new(|r| r.parts[1].content_tag[31] ^= 1)),
        ("part order", Box::new(|r| r.parts.swap(0, 1))),
        (
            "part removed",
            Box::new(|r| {
                r.parts.pop();
            }),
        ),
        (
            "part repeated",
            Box::new(|r| r.parts.push(r.parts[1].clone())),
        ),
        ("trim", Box::new(|r| r.start_trim_90k = 1)),
        ("duration", Box::new(|r| r.duration_90k = Some(40 * 3000))),
        (
            "shorter duration",
            Box::new(|r| r.duration_90k = Some(40 * 3000 - 1)),
        ),
        (
            "creation time",
            Box::new(|r| r.creation_time_unix_secs += 1),
        ),
    ];
    let mut seen = HashSet::from([tag.clone()]);
    for (what, edit) in &edits {
        let mut req = small_request();
        edit(&mut req);
        let mp4 = VirtualMp4::build(req).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            seen.insert(mp4.etag().to_owned()),
            "ETag unchanged by {what}"
        );
    }
}

/// Frames of a synthetic hour (or more): `segments` x `per_segment` frames of `size(i)` bytes
/// with 16-byte gaps, key every 30th, and `duration(i)` ticks (`i` counts from the start).
fn synthetic_parts(
    segments: u64,
    per_segment: usize,
    size: impl Fn(usize) -> u32,
    duration: impl Fn(usize) -> u32,
) -> Vec<SegmentPart> {
    (0..segments)
        .map(|s| {
            let mut offset = 0u64;
            let frames: Arc<[FrameInfo]> = (0..per_segment)
                .map(|j| {
                    let i = s as usize * per_segment + j;
                    offset += RECORD_HEADER_LEN as u64;
                    let f = FrameInfo {
                        duration_90k: duration(i),
                        size_bytes: size(i),
                        is_key: j % 30 == 0,
                        data_offset: offset,
                        composition_offset_90k: 0,
                    };
                    offset += u64::from(f.size_bytes);
                    f
                })
                .collect();
            SegmentPart {
                segment_id: 1000 + s,
                sample_entry_idx: 0,
                frames,
                frame_range: 0..per_segment,
                content_tag: [s as u8; 32],
            }
        })
        .collect()
}

/// The mdat bytes of `range` (file positions) for a [`PatternReader`], computed frame by frame.
fn pattern_bytes(parts: &[SegmentPart], payload_start: u64, range: Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = payload_start;
    for p in parts {
        for f in &p.frames[p.frame_range.clone()] {
            let end = pos + u64::from(f.size_bytes);
            for file_pos in pos.max(range.start)..end.min(range.end) {
                out.push(PatternReader::byte(
                    p.segment_id,
                    f.data_offset + file_pos - pos,
                ));
            }
            pos = end;
        }
    }
    out
}

/// Run-length (count, duration) pairs, computed independently of the writer.
fn runs(durations: impl Iterator<Item = u32>) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    for d in durations {
        match out.last_mut() {
            Some(last) if last[1] == d => last[0] += 1,
            _ => out.push(vec![1, d]),
        }
    }
    out
}

#[test]
fn one_hour_request_has_the_right_tables() {
    // 60 segments x 1800 frames = 108,000 frames, 30 fps; every 100th frame 1 tick longer.
    const FRAMES: usize = 108_000;
    let size = |i: usize| 1000 + (i * 7919 % 50_000) as u32;
    let duration = |i: usize| if i % 100 == 99 { 3001 } else { 3000 };
    let parts = synthetic_parts(60, 1800, size, duration);
    let mp4 = VirtualMp4::build(request(
        vec![fake_entry(b"avc1", 1920, 1080, &[9; 40])],
        parts.clone(),
    ))
    .unwrap();
    assert_eq!(mp4.frame_count(), FRAMES as u64);
    let media: u64 = (0..FRAMES).map(|i| u64::from(duration(i))).sum();
    assert_eq!(
        (mp4.media_duration_90k(), mp4.duration_90k()),
        (media, media)
    );
    let payload: u64 = (0..FRAMES).map(|i| u64::from(size(i))).sum();
    let payload_start = mp4.mdat_payload_range().start;
    assert_eq!(mp4.len(), payload_start + payload);

    let reader: Arc<dyn SampleReader> = Arc::new(PatternReader);
    let head = collect(&mp4, 0..payload_start, reader.clone()).unwrap();
    let top: Vec<[u8; 4]> = parse_boxes(&head, 0..head.len())
        .iter()
        .map(|b| b.fourcc)
        .collect();
    assert_eq!(top, [*b"ftyp", *b"moov", *b"mdat"]);
    let mdat = find(&head, &[b"mdat"]).unwrap();
    assert_eq!(mdat.body.start as u64, payload_start);
    assert_eq!(u64::from(be_u32(&head, mdat.range.start)), payload + 8);

    let stsz = stbl_box(&head, b"stsz").unwrap();
    assert_eq!(stsz.len(), 12 + 4 * FRAMES);
    assert!(stsz_sizes(stsz).iter().copied().eq((0..FRAMES).map(size)));
    let stss = table_u32(stbl_box(&head, b"stss").unwrap(), 1);
    assert_eq!(stss.len(), FRAMES / 30);
    assert!(
        stss.iter()
            .map(|e| e[0])
            .eq((1..=FRAMES as u32).step_by(30))
    );
    let stts = table_u32(stbl_box(&head, b"stts").unwrap(), 2);
    assert_eq!(stts, runs((0..FRAMES).map(duration)));
    assert_eq!(stts.len(), 2 * FRAMES / 100);
    let stsc = table_u32(stbl_box(&head, b"stsc").unwrap(), 3);
    assert_eq!(stsc, [[1, 1800, 1]]);
    assert!(stbl_box(&head, b"co64").is_none());
    let mut expected_offsets = Vec::new();
    let mut pos = payload_start;
    for s in 0..60 {
        expected_offsets.push(pos);
        pos += (s * 1800..(s + 1) * 1800)
            .map(|i| u64::from(size(i)))
            .sum::<u64>();
    }
    assert_eq!(chunk_offsets(&head), expected_offsets);
    // mvhd, tkhd, mdhd are version 0 (everything fits in 32 bits); tkhd has 1920x1080.
    for path in [
        &[b"moov", b"mvhd"][..],
        &[b"moov", b"trak", b"tkhd"],
        &[b"moov", b"trak", b"mdia", b"mdhd"],
    ] {
        assert_eq!(head[find(&head, path).unwrap().body.start], 0, "{path:?}");
    }
    let tkhd = &head[find(&head, &[b"moov", b"trak", b"tkhd"]).unwrap().body];
    assert_eq!(
        (be_u32(tkhd, 76), be_u32(tkhd, 80)),
        (1920 << 16, 1080 << 16)
    );
    assert!(find(&head, &[b"moov", b"trak", b"edts"]).is_none());

    // The tail of the file, across the last part boundary.
    let tail = mp4.len() - 200_000..mp4.len();
    let got = collect(&mp4, tail.clone(), reader).unwrap();
    assert!(got == pattern_bytes(&parts, payload_start, tail));
}

#[test]
fn huge_request_uses_64_bit_boxes_and_ffprobe_reads_it() {
    // 108,000 frames of 50,000 bytes (5.4 GB) lasting 1 s each (30 hours).
    const FRAMES: u64 = 108_000;
    let parts = synthetic_parts(60, 1800, |_| 50_000, |_| 90_000);
    // A real H.264 sample entry, so that ffprobe accepts the stream.
    let mut req = request(vec![media::h264_entry()], parts.clone());
    req.start_trim_90k = 90_000; // skip one frame: the elst needs 64-bit durations
    let mp4 = VirtualMp4::build(req).unwrap();
    let payload = FRAMES * 50_000;
    let payload_start = mp4.mdat_payload_range().start;
    assert_eq!(mp4.len(), payload_start + payload);
    assert_eq!(mp4.duration_90k(), (FRAMES - 1) * 90_000);

    let reader: Arc<dyn SampleReader> = Arc::new(PatternReader);
    let head = collect(&mp4, 0..payload_start, reader.clone()).unwrap();
    let mdat = find(&head, &[b"mdat"]).unwrap();
    assert_eq!(be_u32(&head, mdat.range.start), 1, "largesize mdat");
    assert_eq!(be_u64(&head, mdat.range.start + 8), payload + 16);
    assert_eq!(mdat.body.start as u64, payload_start);
    assert!(stbl_box(&head, b"stco").is_none());
    let offsets = chunk_offsets(&head);
    assert!(
        offsets
            .iter()
            .copied()
            .eq((0..60).map(|s| payload_start + s * 1800 * 50_000))
    );
    for path in [
        &[b"moov", b"mvhd"][..],
        &[b"moov", b"trak", b"tkhd"],
        &[b"moov", b"trak", b"mdia", b"mdhd"],
        &[b"moov", b"trak", b"edts", b"elst"],
    ] {
        assert_eq!(
            head[find(&head, path).unwrap().body.start],
            1,
            "{path:?} version"
        );
    }
    let elst = &head[find(&head, &[b"moov", b"trak", b"edts", b"elst"])
        .unwrap()
        .body];
    assert_eq!(be_u64(elst, 8), (FRAMES - 1) * 90_000);
    assert_eq!(be_u64(elst, 16), 90_000);

    // Bytes across the 4 GiB mark and at the very end.
    for r in [
        (1 << 32) - 70_000..(1 << 32) + 70_000,
        mp4.len() - 10..mp4.len(),
    ] {
        let got = collect(&mp4, r.clone(), reader.clone()).unwrap();
        assert!(
            got == pattern_bytes(&parts, payload_start, r.clone()),
            "{r:?}"
        );
    }

    // ffprobe parses the header of a sparse copy; -nofind_stream_info keeps it from decoding
    // (the sparse payload is zeros).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.mp4");
    let file = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &file, &head).unwrap();
    file.set_len(mp4.len()).unwrap();
    let json = ffprobe_json(&path, &["-nofind_stream_info"]);
    let (streams, format) = split_ffprobe_json(&json);
    assert_eq!(json_value(streams, "nb_frames"), FRAMES.to_string());
    let secs: f64 = json_value(format, "duration").parse().unwrap();
    assert!((secs - (FRAMES - 1) as f64).abs() < 0.01, "duration {secs}");
    let size: u64 = json_value(format, "size").parse().unwrap();
    assert_eq!(size, mp4.len());
}
