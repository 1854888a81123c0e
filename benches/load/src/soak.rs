//! The soak mode (`--soak-minutes M`): the recorder records N test cameras for M minutes while
//! a client asks for a 20 s `view.mp4` every 30 s (cameras in turn), and its memory, open
//! descriptors and threads are sampled every 30 s. The report lists the samples and the RSS
//! slope from minute 10 to the end (least squares, MiB per minute): a recorder whose memory
//! is bounded shows a slope near zero there, one that creeps shows where.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::procstat;
use crate::report::mib;
use crate::{BENCH_PASSWORD, CONNECT_TIMEOUT, Opts, http};

/// How often memory is sampled and a recording is played.
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
/// Length of each played range, ending this long before the request.
const VIEW_SECS: i64 = 20;
const VIEW_ENDS_BEFORE_SECS: i64 = 30;
/// The slope is fitted from this minute on (start-up caches and buffers fill before it).
const SLOPE_FROM_MINUTE: f64 = 10.0;

/// One sample of the recorder's process.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) minute: f64,
    pub(crate) rss_bytes: u64,
    pub(crate) fds: usize,
    pub(crate) threads: usize,
    pub(crate) views_ok: usize,
    pub(crate) views_failed: usize,
}

/// Runs the soak for `n` cameras and returns the report's Markdown section.
pub(crate) fn run(o: &Opts, n: usize, minutes: u64) -> Result<String> {
    let log = o.work_dir.join(format!("soak-{n}.log"));
    let mut tc = crate::start_testcam(o, n, &log)?;
    let dir = o.work_dir.join(format!("soak-data-{n}"));
    crate::prepare_data_dir(o, &dir, &tc.urls)?;
    let config = crate::serve_config(o, crate::System::Nvr)?;
    let (mut serve, addr) = crate::start_serve(o, &dir, &log, Some(&config))?;
    let api = http::Api::login(addr, "bench", BENCH_PASSWORD)?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while crate::api_counters(&api)?.3 < n {
        if Instant::now() > deadline {
            bail!("not every camera delivers frames");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let pid = serve.pid();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(minutes * 60);
    let mut samples = Vec::new();
    let (mut views_ok, mut views_failed) = (0, 0);
    let mut i = 0usize;
    while Instant::now() < end {
        std::thread::sleep(SAMPLE_EVERY);
        // A playback of a recent range, cameras in turn (ids 1..=n).
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let start = crate::api::time_of(now_s - VIEW_ENDS_BEFORE_SECS - VIEW_SECS);
        let stop = crate::api::time_of(now_s - VIEW_ENDS_BEFORE_SECS);
        let path = format!(
            "/api/cameras/{}/view.mp4?start={start}Z&end={stop}Z",
            i % n + 1
        );
        i += 1;
        match http::request(addr, "GET", &path, &[("Cookie", api.cookie())], None) {
            Ok(r) if r.status == 200 && !r.body.is_empty() => views_ok += 1,
            _ => views_failed += 1,
        }
        let (rss, _) = procstat::rss_bytes(pid)?;
        let s = Sample {
            minute: t0.elapsed().as_secs_f64() / 60.0,
            rss_bytes: rss,
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count(),
            threads: std::fs::read_dir(format!("/proc/{pid}/task"))?.count(),
            views_ok,
            views_failed,
        };
        eprintln!(
            "   soak N={n} minute {:.1}: RSS {:.1} MiB, {} fds, {} threads, views {} ok {} failed",
            s.minute,
            mib(s.rss_bytes),
            s.fds,
            s.threads,
            s.views_ok,
            s.views_failed
        );
        samples.push(s);
    }
    let (received, written, skipped, _) = crate::api_counters(&api)?;
    tc.proc.stop(Duration::from_secs(30));
    serve.stop(Duration::from_secs(30));
    Ok(section(n, minutes, &samples, (received, written, skipped)))
}

/// Least-squares slope of (x, y) points, or None with fewer than two distinct x.
pub(crate) fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

fn section(n: usize, minutes: u64, samples: &[Sample], frames: (u64, u64, u64)) -> String {
    let mut t = format!(
        "\nSoak, N={n}, {minutes} min, a 20 s view.mp4 every 30 s; frames received {}, written {}, skipped {}:\n\n\
         | minute | RSS MiB | open fds | threads | views ok | views failed |\n|---|---|---|---|---|---|\n",
        frames.0, frames.1, frames.2
    );
    for s in samples {
        t.push_str(&format!(
            "| {:.1} | {:.1} | {} | {} | {} | {} |\n",
            s.minute,
            mib(s.rss_bytes),
            s.fds,
            s.threads,
            s.views_ok,
            s.views_failed
        ));
    }
    let late: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.minute >= SLOPE_FROM_MINUTE)
        .map(|s| (s.minute, mib(s.rss_bytes)))
        .collect();
    match (slope(&late), late.first(), late.last()) {
        (Some(k), Some(a), Some(b)) => t.push_str(&format!(
            "\nRSS from minute {SLOPE_FROM_MINUTE:.0} to the end: {:.1} -> {:.1} MiB ({:+.1}%), slope {k:+.3} MiB/min.\n",
            a.1,
            b.1,
            (b.1 - a.1) / a.1 * 100.0
        )),
        _ => t.push_str(&format!(
            "\n(too short for a slope from minute {SLOPE_FROM_MINUTE:.0})\n"
        )),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_fits_a_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 0.5 * i as f64)).collect();
        assert!((slope(&pts).expect("slope") - 0.5).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 2.0)]), None);
        assert_eq!(slope(&[(1.0, 2.0), (1.0, 3.0)]), None);
    }
}
