//! B-frames: real H.264/H.265 clips with 2 B-frames (made by ffmpeg), indexed as the recorder
//! indexes them (`frame_timing`: decode times from the sorted presentation times, composition
//! offsets), built into a virtual MP4 and into live fragments, and read back: the `ctts` box
//! and the edit list by hand, the presentation times by ffprobe (exactly the source's), and
//! every frame decoded by ffmpeg.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::media::*;
use super::ranges::check_boundary_ranges;
use super::*;

fn h264_b() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| clip(Codec::H264, 320, 240, 2))
}

fn h265_b() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| clip(Codec::H265, 320, 240, 2))
}

/// The presentation times the clip's index stands for, from its first frame's.
fn clip_presentation_times(clip: &Clip) -> Vec<i64> {
    crate::frame_timing::presentation_offsets(
        clip.samples
            .iter()
            .map(|s| (s.duration_90k, s.composition_offset_90k)),
    )
}

/// `pts` of every packet, in file (decode) order, and of every decoded frame, by ffprobe.
fn ffprobe_times(path: &Path) -> (Vec<i64>, Vec<i64>) {
    let ints = |what: &str, key: &str| -> Vec<i64> {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                what,
                "-show_entries",
            ])
            .arg(format!("{key}=pts"))
            .args(["-of", "csv=p=0"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            // "pts", or "pts,<side data>" (x264's SEI on the first frame).
            .filter_map(|l| l.split(',').next()?.trim().parse().ok())
            .collect()
    };
    (
        ints("-show_packets", "packet"),
        ints("-show_frames", "frame"),
    )
}

fn check_b_frames_play(clip: &Clip, codec_name: &str) {
    assert!(
        clip.samples.iter().any(|s| s.composition_offset_90k < 0),
        "the clip has B-frames"
    );
    // Segments start at key frames, as the recorder cuts them.
    let segments = split(&clip.samples, 1, &[30, 60], false);
    let parts = segments.iter().map(|s| s.whole(0)).collect();
    let dir = tempfile::tempdir().unwrap();
    let (mp4, data, path) = build_and_write(
        request(vec![clip.entry.clone()], parts),
        &segments,
        dir.path(),
    );
    assert_eq!(mp4.frame_count(), CLIP_FRAMES as u64);
    assert_eq!(mp4.duration_90k(), 6 * 90_000);

    // ctts v0: each offset plus the shift (the most a frame is presented before its decode
    // time), and an edit list starting that much later.
    let shift = -clip
        .samples
        .iter()
        .map(|s| s.composition_offset_90k)
        .min()
        .unwrap();
    let ctts = stbl_box(&data, b"ctts").expect("ctts");
    assert_eq!(be_u32(ctts, 0), 0, "version 0, flags 0");
    let offsets: Vec<i64> = table_u32(ctts, 2)
        .iter()
        .flat_map(|r| std::iter::repeat_n(i64::from(r[1]), r[0] as usize))
        .collect();
    let want: Vec<i64> = clip
        .samples
        .iter()
        .map(|s| i64::from(s.composition_offset_90k + shift))
        .collect();
    assert_eq!(offsets, want);
    let elst = find(&data, &[b"moov", b"trak", b"edts", b"elst"]).expect("elst");
    let e = &data[elst.body];
    assert_eq!(i64::from(be_u32(e, 12)), i64::from(shift), "media_time");
    assert_eq!(u64::from(be_u32(e, 8)), 6 * 90_000, "segment_duration");

    // The presentation times are the source's, read back from our file.
    assert_eq!(
        presentation_times_90k(&data, CLIP_FRAMES),
        clip_presentation_times(clip)
    );
    let (packets, frames) = ffprobe_times(&path);
    assert_eq!(packets.len(), CLIP_FRAMES);
    assert!(packets.windows(2).any(|w| w[1] < w[0]), "reordered packets");
    assert_eq!(frames.len(), CLIP_FRAMES, "{frames:?}");
    assert!(
        frames.windows(2).all(|w| w[1] > w[0]),
        "presented in order: {frames:?}"
    );
    let p = probe(&path);
    assert_eq!(p.codec_name, codec_name);
    assert_eq!(p.nb_read_frames, CLIP_FRAMES as u64);
    assert_secs(p.format_duration_secs, 6.0, "format duration");
    assert_decodes(&path);
    check_boundary_ranges(&mp4, MemReader::new(&segments), &data);

    // A trim between key frames: the edit list presents from there on.
    let mut req = request(
        vec![clip.entry.clone()],
        segments.iter().map(|s| s.whole(0)).collect(),
    );
    req.start_trim_90k = 108_000;
    let (mp4, data, path) = build_and_write(req, &segments, dir.path());
    assert_eq!(mp4.duration_90k(), 6 * 90_000 - 108_000);
    let elst = find(&data, &[b"moov", b"trak", b"edts", b"elst"]).expect("elst");
    assert_eq!(
        i64::from(be_u32(&data[elst.body], 12)),
        108_000 + i64::from(shift)
    );
    assert_secs(probe(&path).format_duration_secs, 4.8, "format duration");
    assert_decodes(&path);
}

#[test]
fn h264_b_frames_play_in_order() {
    check_b_frames_play(h264_b(), "h264");
}

#[test]
fn h265_b_frames_play_in_order() {
    check_b_frames_play(h265_b(), "hevc");
}

/// Live fragments: `trun` version 1 with signed composition offsets, and the fragmented file
/// decodes frame by frame.
#[test]
fn b_frame_fragments_carry_signed_offsets_and_play() {
    use crate::mp4::fragment::{FragmentSample, FragmentWriter};
    let clip = h264_b();
    let b = clip
        .samples
        .iter()
        .find(|s| s.composition_offset_90k < 0)
        .unwrap();
    let frag = FragmentWriter::new()
        .fragment(
            0,
            &[FragmentSample {
                duration_90k: b.duration_90k,
                is_key: b.is_key,
                data: b.data.clone(),
                composition_offset_90k: b.composition_offset_90k,
            }],
        )
        .unwrap();
    let trun = find(&frag, &[b"moof", b"traf", b"trun"]).expect("trun");
    let t = &frag[trun.body];
    // version 1; flags: data offset, duration, size, flags, composition offset.
    assert_eq!(be_u32(t, 0), 0x0100_0f01);
    // sample_count, data_offset, then duration, size, flags, offset.
    assert_eq!(be_u32(t, 4), 1);
    assert_eq!(be_u32(t, 12), b.duration_90k);
    assert_eq!(be_u32(t, 24) as i32, b.composition_offset_90k);
    // Without offsets, the version 0 fragment as before B-frames.
    let plain = FragmentWriter::new()
        .fragment(
            0,
            &[FragmentSample {
                duration_90k: 3000,
                is_key: true,
                data: b.data.clone(),
                composition_offset_90k: 0,
            }],
        )
        .unwrap();
    let trun = find(&plain, &[b"moof", b"traf", b"trun"]).expect("trun");
    assert_eq!(be_u32(&plain[trun.body], 0), 0x0000_0701);

    check_fragments_play(clip, "h264");
    check_fragments_play(h265_b(), "hevc");
}
