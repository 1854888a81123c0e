//! Time in an exported MP4: the wall-clock cues of its text track, the ONVIF Export File Format
//! metadata (`suep`, `cstb`), and the manifest's `timeline` that lets a player (the bundle's
//! `player.html`) turn any position in the MP4 into the wall-clock time it was recorded.
//!
//! A cue starts at the first presented frame (showing exactly the requested start, or the
//! first recorded frame after it) and then at every whole second of wall-clock time, and at
//! each segment's start (gaps are skipped in the MP4, so the time jumps there).

use nvr_core::Time90k;
use serde_json::{Value, json};

use crate::mp4::extras::{ExportInfo, Extras, TEXT_TRACK_ID, TextCue, TrackSource};
use crate::playback::WallSpan;

/// The video track's ID in every MP4 built here.
const VIDEO_TRACK_ID: u16 = 1;
/// One second in 90 kHz ticks.
const SECOND_90K: i64 = 90_000;

/// How a cue shows a time: `2026-11-29 22:10:00.000 UTC`.
pub fn cue_text(t: Time90k) -> String {
    let s = t.to_rfc3339(); // 2026-11-29T22:10:00.000Z
    format!("{} UTC", s.trim_end_matches('Z').replacen('T', " ", 1))
}

/// Cues for `spans`: one at each span's start and one at each whole wall-clock second within.
pub fn time_cues(spans: &[WallSpan]) -> Vec<TextCue> {
    let mut cues: Vec<TextCue> = Vec::new();
    let push = |p: u64, wall: i64, cues: &mut Vec<TextCue>| {
        if cues.last().is_none_or(|c| c.start_90k < p) {
            cues.push(TextCue {
                start_90k: p,
                text: cue_text(Time90k(wall)),
            });
        }
    };
    for s in spans {
        push(s.presentation_start_90k, s.wall_start_90k, &mut cues);
        let wall_len = s.wall_end_90k - s.wall_start_90k;
        let p_len = (s.presentation_end_90k - s.presentation_start_90k) as i64;
        if wall_len <= 0 {
            continue;
        }
        let mut second = s.wall_start_90k.div_euclid(SECOND_90K) * SECOND_90K + SECOND_90K;
        while second < s.wall_end_90k {
            // Presentation time of that wall instant, linear within the span.
            let p = s.presentation_start_90k as i64
                + ((i128::from(second - s.wall_start_90k) * i128::from(p_len))
                    / i128::from(wall_len)) as i64;
            if p as u64 >= s.presentation_end_90k {
                break;
            }
            push(p as u64, second, &mut cues);
            second += SECOND_90K;
        }
    }
    cues
}

/// The manifest's `timeline` of one camera (see the module comment).
pub fn timeline_json(spans: &[WallSpan]) -> Value {
    Value::Array(
        spans
            .iter()
            .map(|s| {
                json!({
                    "presentation_start_90k": s.presentation_start_90k,
                    "presentation_end_90k": s.presentation_end_90k,
                    "wall_start_90k": s.wall_start_90k,
                    "wall_end_90k": s.wall_end_90k,
                    "wall_start": Time90k(s.wall_start_90k).to_rfc3339(),
                    "wall_end": Time90k(s.wall_end_90k).to_rfc3339(),
                })
            })
            .collect(),
    )
}

/// What one camera's MP4 says about where it comes from.
#[derive(Clone, Debug)]
pub struct Source<'a> {
    pub recorder_id: &'a str,
    pub exported_at: Time90k,
    pub operator: &'a str,
    pub camera_name: &'a str,
    pub camera_url: &'a str,
    /// Wall-clock time of the MP4's first frame (the video's media time 0).
    pub first_frame: Time90k,
    /// Wall-clock time of the first presented frame (the text track's time 0).
    pub presented_start: Time90k,
}

/// The additions for one camera's MP4.
pub fn extras(spans: &[WallSpan], src: &Source<'_>) -> Extras {
    Extras {
        time_cues: time_cues(spans),
        export_info: Some(ExportInfo {
            unit_name: format!("nvr recorder {}", src.recorder_id),
            unit_url: String::new(),
            export_time_unix_secs: src.exported_at.unix_secs(),
            operator: src.operator.to_owned(),
            tracks: vec![
                TrackSource {
                    track_id: VIDEO_TRACK_ID,
                    name: src.camera_name.to_owned(),
                    url: src.camera_url.to_owned(),
                    media_origin_unix_90k: src.first_frame.0,
                },
                TrackSource {
                    track_id: TEXT_TRACK_ID as u16, // 2
                    name: "recording time (UTC), from the recorder's clock".to_owned(),
                    url: String::new(),
                    media_origin_unix_90k: src.presented_start.0,
                },
            ],
        }),
    }
}

/// The manifest's description of what the MP4 carries besides the video.
pub fn mp4_json(extras: &Extras) -> Value {
    let tracks = extras
        .export_info
        .as_ref()
        .map(|i| i.tracks.as_slice())
        .unwrap_or_default();
    json!({
        "video_track_id": VIDEO_TRACK_ID,
        "time_track": {
            "track_id": TEXT_TRACK_ID,
            "format": "tx3g",
            "cues": extras.time_cues.len(),
            "first_cue": extras.time_cues.first().map(|c| c.text.clone()),
        },
        "onvif_cstb": tracks.iter().map(|t| json!({
            "track_id": t.track_id,
            "start": Time90k(t.media_origin_unix_90k).to_rfc3339(),
            "start_100ns_since_1601": crate::mp4::extras::filetime_100ns(t.media_origin_unix_90k),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: i64 = 1_795_959_900 * 90_000; // a whole second

    #[test]
    fn cues_start_at_the_first_frame_then_follow_whole_seconds_and_segments() {
        let spans = [
            // 2.5 s from T + 0.25 s, then a gap, then 1 s from T + 10 s.
            WallSpan {
                presentation_start_90k: 0,
                presentation_end_90k: 225_000,
                wall_start_90k: T + 22_500,
                wall_end_90k: T + 247_500,
            },
            WallSpan {
                presentation_start_90k: 225_000,
                presentation_end_90k: 315_000,
                wall_start_90k: T + 900_000,
                wall_end_90k: T + 990_000,
            },
        ];
        let cues = time_cues(&spans);
        let got: Vec<(u64, &str)> = cues
            .iter()
            .map(|c| (c.start_90k, c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "2026-11-29 13:45:00.250 UTC"),
                (67_500, "2026-11-29 13:45:01.000 UTC"),
                (157_500, "2026-11-29 13:45:02.000 UTC"),
                (225_000, "2026-11-29 13:45:10.000 UTC"),
            ]
        );
        assert_eq!(cue_text(Time90k(T)), "2026-11-29 13:45:00.000 UTC");
    }
}
