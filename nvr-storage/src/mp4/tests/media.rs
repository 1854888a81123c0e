//! Real-media tests: H.264/H.265 clips made by ffmpeg at test time, split into fake segments,
//! re-muxed by the builder and checked with ffprobe and ffmpeg. Nothing is skipped: without
//! ffmpeg/ffprobe these tests fail and say to install ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;

use super::ranges::check_boundary_ranges;
use super::*;

/// Frames per second of the generated clips.
pub(super) const FPS: u32 = 15;
/// 90 kHz ticks per frame at [`FPS`].
pub(super) const FRAME_DURATION_90K: u32 = 90_000 / FPS;
/// Frames per clip: 6 seconds.
pub(super) const CLIP_FRAMES: usize = 90;
/// Key frame interval: one a second.
pub(super) const GOP: usize = 15;

#[derive(Clone, Copy, Debug)]
pub(super) enum Codec {
    H264,
    H265,
}

/// An encoded clip: its sample entry (taken from ffmpeg's `stsd`) and its samples.
#[derive(Debug)]
pub(super) struct Clip {
    pub(super) entry: SampleEntry,
    pub(super) samples: Vec<Sample>,
}

/// A clip of `bframes` consecutive B-frames at most (0: none), closed GOPs.
pub(super) fn clip(codec: Codec, width: u16, height: u16, bframes: u32) -> Clip {
    require_tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.mp4");
    let source = format!("testsrc2=size={width}x{height}:rate={FPS}");
    let frames = CLIP_FRAMES.to_string();
    let gop = GOP.to_string();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", &source])
        .args(["-frames:v", &frames, "-pix_fmt", "yuv420p"])
        .args(["-bf", &bframes.to_string()]);
    match codec {
        Codec::H264 => cmd
            .args(["-c:v", "libx264", "-g", &gop, "-keyint_min", &gop])
            .args(["-sc_threshold", "0", "-flags", "+cgop"]),
        Codec::H265 => cmd
            .args(["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params"])
            .arg(format!(
                "keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes={bframes}:open-gop=0:\
                 log-level=error"
            )),
    };
    let out = cmd.arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg failed to make a {codec:?} clip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clip = parse_clip(&std::fs::read(&path).unwrap());
    assert_eq!(
        clip.samples.len(),
        CLIP_FRAMES,
        "{codec:?} clip frame count"
    );
    let keys: Vec<usize> = (0..CLIP_FRAMES)
        .filter(|&i| clip.samples[i].is_key)
        .collect();
    let expected_keys: Vec<usize> = (0..CLIP_FRAMES).step_by(GOP).collect();
    assert_eq!(keys, expected_keys, "{codec:?} clip key frames");
    clip
}

/// Extracts the sample entry and samples of the first track of an MP4 file, each sample with
/// the duration and composition offset the recorder's index would give it (`frame_timing`,
/// from the presentation times ffmpeg wrote: decode time plus `ctts`).
fn parse_clip(d: &[u8]) -> Clip {
    let entries = stsd_entries(d);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    // VisualSampleEntry: width and height follow the 8-byte header, 8 bytes of SampleEntry
    // fields and 16 bytes of pre_defined/reserved.
    let width = u16::from_be_bytes([e[32], e[33]]);
    let height = u16::from_be_bytes([e[34], e[35]]);
    let sizes = stsz_sizes(stbl_box(d, b"stsz").unwrap());
    let stsc = table_u32(stbl_box(d, b"stsc").unwrap(), 3);
    let keys: Option<Vec<u32>> =
        stbl_box(d, b"stss").map(|b| table_u32(b, 1).iter().map(|e| e[0]).collect());
    let mut samples = Vec::new();
    for (chunk, off) in (1u32..).zip(chunk_offsets(d)) {
        let per_chunk = stsc.iter().rev().find(|e| e[0] <= chunk).unwrap()[1];
        let mut pos = usize::try_from(off).unwrap();
        for _ in 0..per_chunk {
            let n = samples.len();
            let size = sizes[n] as usize;
            samples.push(Sample {
                data: Bytes::copy_from_slice(&d[pos..pos + size]),
                is_key: keys
                    .as_ref()
                    .is_none_or(|k| k.contains(&(u32::try_from(n).unwrap() + 1))),
                duration_90k: FRAME_DURATION_90K,
                composition_offset_90k: 0,
            });
            pos += size;
        }
    }
    assert_eq!(samples.len(), sizes.len());
    let mut timing = crate::frame_timing::SegmentTiming::new();
    for pts in presentation_times_90k(d, samples.len()) {
        timing.push(pts).unwrap();
    }
    let end = timing.last_90k() + i64::from(FRAME_DURATION_90K);
    for (s, (duration, offset)) in samples.iter_mut().zip(timing.finish(Some(end))) {
        s.duration_90k = duration;
        s.composition_offset_90k = offset;
    }
    Clip {
        entry: SampleEntry {
            box_bytes: Bytes::copy_from_slice(e),
            width,
            height,
        },
        samples,
    }
}

/// Each sample's presentation time from the first sample's, 90 kHz: decode time (`stts`)
/// plus composition offset (`ctts`, signed whatever its version), in the track's timescale.
pub(super) fn presentation_times_90k(d: &[u8], n: usize) -> Vec<i64> {
    let mdhd = find(d, &[b"moov", b"trak", b"mdia", b"mdhd"]).unwrap();
    let mdhd = &d[mdhd.body];
    let timescale = i64::from(be_u32(mdhd, if mdhd[0] == 1 { 20 } else { 12 }));
    let expand = |rows: Vec<Vec<u32>>| -> Vec<i64> {
        rows.iter()
            .flat_map(|r| std::iter::repeat_n(i64::from(r[1] as i32), r[0] as usize))
            .collect()
    };
    let deltas = expand(table_u32(stbl_box(d, b"stts").unwrap(), 2));
    let offsets = stbl_box(d, b"ctts").map_or(vec![0; n], |b| expand(table_u32(b, 2)));
    assert_eq!((deltas.len(), offsets.len()), (n, n));
    let mut decode = 0;
    let pts: Vec<i64> = deltas
        .iter()
        .zip(&offsets)
        .map(|(delta, offset)| {
            let t = decode + offset;
            decode += delta;
            t * 90_000 / timescale
        })
        .collect();
    pts.iter().map(|p| p - pts[0]).collect()
}

pub(super) fn h264() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| clip(Codec::H264, 320, 240, 0))
}

/// The sample entry of the generated 320x240 H.264 clip.
pub(super) fn h264_entry() -> SampleEntry {
    h264().entry.clone()
}

fn h264_small() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| clip(Codec::H264, 160, 120, 0))
}

fn h265() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| clip(Codec::H265, 320, 240, 0))
}

/// Splits `samples` into segments at `bounds` (ids from `first_id`). With `zero_last`, the last
/// frame's duration is 0, as for a segment still being recorded.
pub(super) fn split(
    samples: &[Sample],
    first_id: u64,
    bounds: &[usize],
    zero_last: bool,
) -> Vec<FakeSegment> {
    let mut samples = samples.to_vec();
    if zero_last {
        samples.last_mut().unwrap().duration_90k = 0;
    }
    let mut cuts = vec![0];
    cuts.extend_from_slice(bounds);
    cuts.push(samples.len());
    cuts.windows(2)
        .zip(first_id..)
        .map(|(w, id)| FakeSegment::new(id, &samples[w[0]..w[1]]))
        .collect()
}

/// What ffprobe says about a file's (only) stream and format.
#[derive(Debug)]
pub(super) struct Probe {
    pub(super) codec_name: String,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) nb_read_frames: u64,
    pub(super) stream_duration_secs: f64,
    pub(super) format_duration_secs: f64,
}

pub(super) fn probe(path: &Path) -> Probe {
    let json = ffprobe_json(path, &["-count_frames"]);
    let (streams, format) = split_ffprobe_json(&json);
    Probe {
        codec_name: json_value(streams, "codec_name").to_owned(),
        width: json_value(streams, "width").parse().unwrap(),
        height: json_value(streams, "height").parse().unwrap(),
        nb_read_frames: json_value(streams, "nb_read_frames").parse().unwrap(),
        stream_duration_secs: json_value(streams, "duration").parse().unwrap(),
        format_duration_secs: json_value(format, "duration").parse().unwrap(),
    }
}

/// Decodes every frame with ffmpeg; fails on any error message.
pub(super) fn assert_decodes(path: &Path) {
    require_tool("ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffmpeg decode: {stderr}"
    );
}

/// Builds `req`, writes the whole file to `dir`, and checks its top-level layout and mdat.
pub(super) fn build_and_write(
    req: Mp4Request,
    segments: &[FakeSegment],
    dir: &Path,
) -> (VirtualMp4, Vec<u8>, PathBuf) {
    let expected_payload = expected_mdat(segments, &req.parts);
    let mp4 = VirtualMp4::build(req).unwrap();
    let data = collect(&mp4, 0..mp4.len(), MemReader::new(segments)).unwrap();
    assert_eq!(data.len() as u64, mp4.len());
    let top: Vec<[u8; 4]> = parse_boxes(&data, 0..data.len())
        .iter()
        .map(|b| b.fourcc)
        .collect();
    assert_eq!(
        top,
        [*b"ftyp", *b"moov", *b"mdat"],
        "moov must precede mdat"
    );
    let mdat = find(&data, &[b"mdat"]).unwrap();
    assert_eq!(mdat.body.start as u64, mp4.mdat_payload_range().start);
    assert!(data[mdat.body] == expected_payload[..], "mdat payload");
    let path = dir.join("out.mp4");
    std::fs::write(&path, &data).unwrap();
    (mp4, data, path)
}

pub(super) fn assert_secs(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 0.01,
        "{what}: {actual} s, expected {expected} s"
    );
}

fn check_plays(clip: &Clip, codec_name: &str) {
    // Three segments, cut off key frames (decoding continues across them); the index does not
    // know the last frame's duration yet.
    let segments = split(&clip.samples, 10, &[35, 62], true);
    let parts = segments.iter().map(|s| s.whole(0)).collect();
    let dir = tempfile::tempdir().unwrap();
    let (mp4, data, path) = build_and_write(
        request(vec![clip.entry.clone()], parts),
        &segments,
        dir.path(),
    );
    assert_eq!(mp4.frame_count(), CLIP_FRAMES as u64);
    // The last frame's zero duration became its predecessor's: one stts run.
    let stts = table_u32(stbl_box(&data, b"stts").unwrap(), 2);
    assert_eq!(stts, [[CLIP_FRAMES as u32, FRAME_DURATION_90K]]);
    assert_eq!(mp4.duration_90k(), 6 * 90_000);
    assert!(find(&data, &[b"moov", b"trak", b"edts"]).is_none());

    let p = probe(&path);
    assert_eq!(p.codec_name, codec_name);
    assert_eq!((p.width, p.height), (320, 240));
    assert_eq!(p.nb_read_frames, CLIP_FRAMES as u64);
    assert_secs(p.format_duration_secs, 6.0, "format duration");
    assert_decodes(&path);
    check_boundary_ranges(&mp4, MemReader::new(&segments), &data);
}

#[test]
fn h264_plays() {
    check_plays(h264(), "h264");
}

#[test]
fn h265_plays() {
    check_plays(h265(), "hevc");
}

#[test]
fn partial_parts_play() {
    let clip = h264();
    let segments = split(&clip.samples, 1, &[35, 60], false);
    // Frames 15..35 (starting at a key frame), 35..45 (continuing), then a jump to the key
    // frame 60 and frames 60..90.
    let parts = vec![
        segments[0].part(0, 15..35),
        segments[1].part(0, 0..10),
        segments[2].part(0, 0..30),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (mp4, data, path) = build_and_write(
        request(vec![clip.entry.clone()], parts),
        &segments,
        dir.path(),
    );
    assert_eq!(mp4.frame_count(), 60);
    let stss = table_u32(stbl_box(&data, b"stss").unwrap(), 1);
    assert_eq!(stss, [[1], [16], [31], [46]]);
    let p = probe(&path);
    assert_eq!(p.nb_read_frames, 60);
    assert_secs(p.format_duration_secs, 4.0, "format duration");
    assert_decodes(&path);
}

#[test]
fn edit_list_trims_and_limits() {
    let clip = h264();
    let segments = split(&clip.samples, 1, &[45], false);
    let parts: Vec<SegmentPart> = segments.iter().map(|s| s.whole(0)).collect();
    // (start_trim_90k, duration_90k, expected seconds)
    let cases = [
        (90_000, Some(3 * 90_000), 3.0), // 1 s trim on a key frame, keep 3 s
        (108_000, None, 4.8),            // 1.2 s trim between key frames, keep the rest
        (0, Some(2 * 90_000), 2.0),      // no trim, keep 2 s
        (45_000, Some(100 * 90_000), 5.5), // too long a duration is clamped
    ];
    for (trim, duration, secs) in cases {
        let mut req = request(vec![clip.entry.clone()], parts.clone());
        req.start_trim_90k = trim;
        req.duration_90k = duration;
        let dir = tempfile::tempdir().unwrap();
        let (mp4, data, path) = build_and_write(req, &segments, dir.path());
        let kept_90k = (secs * 90_000.0) as u64;
        assert_eq!(mp4.duration_90k(), kept_90k);
        assert_eq!(mp4.media_duration_90k(), 6 * 90_000);
        let elst = find(&data, &[b"moov", b"trak", b"edts", b"elst"]).expect("elst");
        let e = &data[elst.body];
        // version 0, flags, entry_count 1, segment_duration, media_time, rate 1.0
        assert_eq!(e.len(), 20);
        assert_eq!(be_u32(e, 0), 0);
        assert_eq!(be_u32(e, 4), 1);
        assert_eq!(u64::from(be_u32(e, 8)), kept_90k);
        assert_eq!(u64::from(be_u32(e, 12)), trim);
        assert_eq!(be_u32(e, 16), 0x0001_0000);
        let p = probe(&path);
        assert_secs(p.format_duration_secs, secs, "format duration");
        assert_secs(p.stream_duration_secs, secs, "stream duration");
        assert_decodes(&path);
    }
}

#[test]
fn two_sample_entries_play() {
    let (big, small) = (h264(), h264_small());
    let segments = vec![
        FakeSegment::new(1, &big.samples[0..30]),
        FakeSegment::new(2, &small.samples[0..45]),
        FakeSegment::new(3, &big.samples[30..60]),
    ];
    let parts = vec![
        segments[0].whole(0),
        segments[1].whole(1),
        segments[2].whole(0),
    ];
    let entries = vec![big.entry.clone(), small.entry.clone()];
    let dir = tempfile::tempdir().unwrap();
    let (mp4, data, path) = build_and_write(request(entries.clone(), parts), &segments, dir.path());
    assert_eq!(mp4.frame_count(), 105);
    let stsd = stsd_entries(&data);
    assert_eq!(stsd.len(), 2);
    assert_eq!(stsd[0], entries[0].box_bytes);
    assert_eq!(stsd[1], entries[1].box_bytes);
    let stsc = table_u32(stbl_box(&data, b"stsc").unwrap(), 3);
    assert_eq!(stsc, [[1, 30, 1], [2, 45, 2], [3, 30, 1]]);
    let p = probe(&path);
    assert_eq!(p.codec_name, "h264");
    assert_eq!((p.width, p.height), (320, 240));
    assert_eq!(p.nb_read_frames, 105);
    assert_decodes(&path);
}

/// Live view: an init segment followed by one fragment per frame is a valid fragmented MP4
/// that ffprobe reads frame by frame and ffmpeg decodes without error.
pub(super) fn check_fragments_play(clip: &Clip, codec_name: &str) {
    use crate::mp4::fragment::{FragmentSample, FragmentWriter, init_segment};
    let dir = tempfile::tempdir().unwrap();
    let mut file = init_segment(&clip.entry).unwrap().to_vec();
    let mut w = FragmentWriter::new();
    let mut decode_time = 0u64;
    for s in &clip.samples {
        let frag = w
            .fragment(
                decode_time,
                &[FragmentSample {
                    duration_90k: s.duration_90k,
                    is_key: s.is_key,
                    data: s.data.clone(),
                    composition_offset_90k: s.composition_offset_90k,
                }],
            )
            .unwrap();
        file.extend_from_slice(&frag);
        decode_time += u64::from(s.duration_90k);
    }
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &file).unwrap();
    let p = probe(&path);
    assert_eq!(p.codec_name, codec_name);
    assert_eq!(
        (p.width, p.height),
        (u32::from(clip.entry.width), u32::from(clip.entry.height))
    );
    assert_eq!(p.nb_read_frames, clip.samples.len() as u64);
    assert_decodes(&path);
}

#[test]
fn h264_fragments_play() {
    check_fragments_play(h264(), "h264");
}

#[test]
fn h265_fragments_play() {
    check_fragments_play(h265(), "hevc");
}
