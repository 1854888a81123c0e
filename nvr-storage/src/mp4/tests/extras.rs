//! An export's additions to the MP4: ffprobe lists the time track next to the video, ffmpeg
//! reads its cues (the first one at 0 s), the video still decodes with its bytes unchanged,
//! and a box dump written here (independent of the writer) finds `suep` and `cstb` in the
//! file-level `meta` with the values given.

use std::process::Command;
use std::sync::Arc;

use super::media::{assert_decodes, h264, split};
use super::*;
use crate::mp4::extras::{ExportInfo, Extras, TextCue, TrackSource, filetime_100ns};

/// 2026-11-29T22:10:00Z in 90 kHz ticks.
const T: i64 = 1_795_990_200 * 90_000;

fn extras() -> Extras {
    Extras {
        time_cues: (0..6u64)
            .map(|s| TextCue {
                start_90k: s * 90_000,
                text: format!("2026-11-29 22:10:0{s}.000 UTC"),
            })
            .collect(),
        export_info: Some(ExportInfo {
            unit_name: "nvr recorder 1234".into(),
            unit_url: String::new(),
            export_time_unix_secs: 1_796_000_000,
            operator: "officer".into(),
            tracks: vec![
                TrackSource {
                    track_id: 1,
                    name: "Front door".into(),
                    url: "rtsp://10.0.0.5/stream1".into(),
                    media_origin_unix_90k: T - 45_000,
                },
                TrackSource {
                    track_id: 2,
                    name: "time".into(),
                    url: String::new(),
                    media_origin_unix_90k: T,
                },
            ],
        }),
    }
}

/// A NUL-terminated string at `*at`.
fn cstr(d: &[u8], at: &mut usize) -> String {
    let end = d[*at..].iter().position(|&b| b == 0).unwrap() + *at;
    let s = String::from_utf8(d[*at..end].to_vec()).unwrap();
    *at = end + 1;
    s
}

/// `suep` and `cstb` decoded as ONVIF Export File Format 26.06 defines them.
#[derive(Debug, PartialEq, Eq)]
struct Eff {
    version: u8,
    unit: (String, String, String),
    time_since_1904: u64,
    operator: String,
    sources: Vec<(u16, String, String, String, String)>,
    starts: Vec<(u32, u64)>,
}

fn dump_eff(d: &[u8]) -> Eff {
    let meta = find(d, &[b"meta"]).expect("a file-level meta box");
    // meta is a full box: its children follow 4 bytes of version and flags.
    let kids = parse_boxes(d, meta.body.start + 4..meta.body.end);
    let names: Vec<[u8; 4]> = kids.iter().map(|b| b.fourcc).collect();
    assert_eq!(names, [*b"hdlr", *b"suep", *b"cstb"]);
    let suep = &d[kids[1].body.clone()];
    let mut at = 4; // version and flags
    let unit = (
        cstr(suep, &mut at),
        cstr(suep, &mut at),
        cstr(suep, &mut at),
    );
    let time_since_1904 = be_u64(suep, at);
    at += 8;
    let operator = cstr(suep, &mut at);
    let n = be_u32(suep, at);
    at += 4;
    let mut sources = Vec::new();
    for _ in 0..n {
        let id = u16::from_be_bytes([suep[at], suep[at + 1]]);
        at += 2;
        sources.push((
            id,
            cstr(suep, &mut at),
            cstr(suep, &mut at),
            cstr(suep, &mut at),
            cstr(suep, &mut at),
        ));
    }
    assert_eq!(at, suep.len(), "suep has nothing after its entries");
    let cstb = &d[kids[2].body.clone()];
    let n = be_u32(cstb, 0) as usize;
    assert_eq!(cstb.len(), 4 + 12 * n);
    let starts = (0..n)
        .map(|i| (be_u32(cstb, 4 + 12 * i), be_u64(cstb, 8 + 12 * i)))
        .collect();
    Eff {
        version: suep[0],
        unit,
        time_since_1904,
        operator,
        sources,
        starts,
    }
}

#[test]
fn the_time_track_and_onvif_metadata_are_seen_and_the_video_is_unchanged() {
    let clip = h264();
    let segments = split(&clip.samples, 10, &[45], false);
    let parts: Vec<SegmentPart> = segments.iter().map(|s| s.whole(0)).collect();
    let plain = request(vec![clip.entry.clone()], parts.clone());
    let mut with = plain.clone();
    with.extras = Some(Arc::new(extras()));
    let bare = VirtualMp4::build(plain).unwrap();
    let mp4 = VirtualMp4::build(with).unwrap();
    let data = collect(&mp4, 0..mp4.len(), MemReader::new(&segments)).unwrap();
    let bare_data = collect(&bare, 0..bare.len(), MemReader::new(&segments)).unwrap();
    // The video's bytes are the camera's, wherever the payload now starts.
    let payload = |m: &VirtualMp4, d: &[u8]| {
        let r = m.mdat_payload_range();
        d[r.start as usize..r.end as usize].to_vec()
    };
    assert!(payload(&mp4, &data) == payload(&bare, &bare_data));
    let top: Vec<[u8; 4]> = parse_boxes(&data, 0..data.len())
        .iter()
        .map(|b| b.fourcc)
        .collect();
    assert_eq!(top, [*b"ftyp", *b"meta", *b"moov", *b"mdat", *b"mdat"]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.mp4");
    std::fs::write(&path, &data).unwrap();
    assert_decodes(&path);
    // ffprobe lists both tracks: the video and the time as a subtitle track.
    let json = ffprobe_json(&path, &[]);
    assert_eq!(json.matches("\"codec_type\"").count(), 2, "{json}");
    assert!(json.contains("\"codec_name\": \"h264\""), "{json}");
    assert!(json.contains("\"codec_name\": \"mov_text\""), "{json}");
    assert!(json.contains("\"codec_type\": \"subtitle\""), "{json}");
    // Its cues, as a player shows them.
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-map", "0:s:0", "-f", "srt", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the style ffmpeg renders as <font> tags.
    let mut srt = String::from_utf8_lossy(&out.stdout).replace("</font>", "");
    while let Some(at) = srt.find("<font") {
        let end = at + srt[at..].find('>').unwrap();
        srt.replace_range(at..=end, "");
    }
    assert!(
        srt.starts_with("1\n00:00:00,000 --> 00:00:01,000\n2026-11-29 22:10:00.000 UTC\n"),
        "{srt}"
    );
    assert_eq!(srt.matches(" --> ").count(), 6, "{srt}");
    assert!(srt.contains("00:00:05,000 --> 00:00:06,000\n2026-11-29 22:10:05.000 UTC"));

    // The ONVIF boxes, dumped.
    let eff = dump_eff(&data);
    assert_eq!(
        eff,
        Eff {
            version: 1,
            unit: ("nvr recorder 1234".into(), String::new(), String::new()),
            // 66 years of which 17 leap years from 1904 to 1970.
            time_since_1904: 1_796_000_000 + 2_082_844_800,
            operator: "officer".into(),
            sources: vec![
                (
                    1,
                    "Front door".into(),
                    "rtsp://10.0.0.5/stream1".into(),
                    String::new(),
                    String::new()
                ),
                (
                    2,
                    "time".into(),
                    String::new(),
                    String::new(),
                    String::new()
                ),
            ],
            starts: vec![(1, filetime_100ns(T - 45_000)), (2, filetime_100ns(T)),],
        }
    );
    // 100 ns since 1601-01-01: 2026-11-29T22:10:00Z computed independently.
    assert_eq!(
        filetime_100ns(T),
        (1_795_990_200 + 11_644_473_600) * 10_000_000
    );
    assert_eq!(filetime_100ns(T - 45_000), filetime_100ns(T) - 5_000_000);
}

#[test]
fn cues_must_start_at_zero_and_increase() {
    let clip = h264();
    let segments = split(&clip.samples, 10, &[], false);
    let mut req = request(vec![clip.entry.clone()], vec![segments[0].whole(0)]);
    for bad in [vec![5, 90_000], vec![0, 0], vec![0, 6 * 90_000]] {
        req.extras = Some(Arc::new(Extras {
            time_cues: bad
                .iter()
                .map(|&s| TextCue {
                    start_90k: s,
                    text: "t".into(),
                })
                .collect(),
            export_info: None,
        }));
        assert!(
            matches!(
                VirtualMp4::build(req.clone()),
                Err(Mp4Error::InvalidExtras { .. })
            ),
            "{bad:?}"
        );
    }
}
