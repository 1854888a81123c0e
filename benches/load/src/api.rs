//! The API latency phase (`--systems api`): how long the requests a control room makes all the
//! time take while N cameras record, against the same client on an idle server: the session
//! check (`GET /api/me`), the camera list, and a camera's timeline (`/recordings` over the last
//! hour). Three scenarios, one after the other: an idle server (no camera), N cameras recording
//! normally, and N cameras recording with every segment seal held 200 ms longer (the
//! `NVR_FAULT_SLOW_SEAL_MS` seam: a spinning disk's fsync, holding the index's writer). Segments
//! are 10 s long here so seals come often. The client paces itself at [`REQUESTS_PER_SEC`], one
//! connection per request, and reports p50, p99 and max per request kind.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::procs::Proc;
use crate::{
    BENCH_PASSWORD, CONNECT_TIMEOUT, Opts, api_counters, http, prepare_data_dir, start_testcam,
};

/// The client's pace: what a few control-room stations ask for.
pub(crate) const REQUESTS_PER_SEC: u32 = 20;
/// The slow-seal scenario's extra hold of the writer per seal.
const SLOW_SEAL_MS: u64 = 200;
/// Segment length in this phase: seals every 10 s per camera.
const SEGMENT_SECS: &str = "10";

/// Latency of one request kind in one scenario.
#[derive(Debug, Clone)]
pub(crate) struct Latency {
    pub(crate) scenario: String,
    pub(crate) request: &'static str,
    pub(crate) count: usize,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn start(
    o: &Opts,
    dir: &Path,
    log: &Path,
    slow_seal: bool,
) -> Result<(Proc, std::net::SocketAddr)> {
    let mut cmd = Command::new(&o.nvr);
    cmd.args(["serve", "--data-dir"]).arg(dir).args([
        "--listen",
        "127.0.0.1:0",
        "--segment-duration-secs",
        SEGMENT_SECS,
    ]);
    if slow_seal {
        cmd.env("NVR_FAULT_SLOW_SEAL_MS", SLOW_SEAL_MS.to_string());
    }
    let mut serve = Proc::spawn("nvr serve", cmd, log, false)?;
    let addr = serve.wait_line(Duration::from_secs(60), |l| {
        l.strip_prefix("nvr serving on http://")
            .and_then(|r| r.trim_end_matches('/').parse().ok())
    })?;
    Ok((serve, addr))
}

/// Paces requests for `window` and returns each kind's latencies.
fn measure(api: &http::Api, window: Duration, scenario: &str) -> Result<Vec<Latency>> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let iso = |ms: i64| -> String {
        let secs = ms.div_euclid(1000);
        let t = time_of(secs);
        format!("{t}Z")
    };
    let timeline = format!(
        "/api/cameras/1/recordings?start={}&end={}",
        iso(now_ms - 3_600_000),
        iso(now_ms + 3_600_000)
    );
    let kinds: [(&'static str, &str); 3] = [
        ("session check", "/api/me"),
        ("camera list", "/api/cameras"),
        ("timeline", timeline.as_str()),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    let period = Duration::from_secs(1) / REQUESTS_PER_SEC;
    let end = Instant::now() + window;
    let mut i = 0usize;
    let mut next = Instant::now();
    while Instant::now() < end {
        let (_, path) = kinds[i % kinds.len()];
        let t = Instant::now();
        let r = http::request(api.addr, "GET", path, &[("Cookie", api.cookie())], None)?;
        let took = t.elapsed();
        // The timeline of an idle server has no camera 1: 404 is its answer, timed all the same.
        if r.status != 200 && r.status != 404 {
            bail!("{scenario}: GET {path}: HTTP {}", r.status);
        }
        times[i % kinds.len()].push(took);
        i += 1;
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(kinds
        .iter()
        .zip(times)
        .map(|((request, _), mut v)| {
            v.sort();
            Latency {
                scenario: scenario.to_owned(),
                request,
                count: v.len(),
                p50: percentile(&v, 50),
                p99: percentile(&v, 99),
                max: *v.last().unwrap_or(&Duration::ZERO),
            }
        })
        .collect())
}

/// `YYYY-MM-DDTHH:MM:SS` of Unix seconds (civil from days, no crate needed).
pub(crate) fn time_of(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// The three scenarios for `n` cameras.
pub(crate) fn run_api(o: &Opts, n: usize) -> Result<Vec<Latency>> {
    let mut out = Vec::new();
    // An idle server: the client's own floor.
    let dir = o.work_dir.join("api-idle");
    prepare_data_dir(o, &dir, &[])?;
    let (mut serve, addr) = start(o, &dir, &o.work_dir.join("api-idle.log"), false)?;
    let api = http::Api::login(addr, "bench", BENCH_PASSWORD)?;
    out.extend(measure(&api, o.window, "idle server")?);
    serve.stop(Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);

    for slow in [false, true] {
        let tag = if slow { "slow-seals" } else { "normal" };
        let log = o.work_dir.join(format!("api-{tag}-{n}.log"));
        let tc = start_testcam(o, n, &log)?;
        let dir = o.work_dir.join(format!("api-{tag}-{n}"));
        prepare_data_dir(o, &dir, &tc.urls)?;
        let (mut serve, addr) = start(o, &dir, &log, slow)?;
        let api = http::Api::login(addr, "bench", BENCH_PASSWORD)?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        while api_counters(&api)?.3 < n {
            if Instant::now() > deadline {
                bail!("{tag}: not every camera delivers frames");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        std::thread::sleep(o.warmup);
        let scenario = if slow {
            format!("{n} cameras, seals held {SLOW_SEAL_MS} ms")
        } else {
            format!("{n} cameras recording")
        };
        out.extend(measure(&api, o.window, &scenario)?);
        serve.stop(Duration::from_secs(120));
        drop(tc);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time() {
        assert_eq!(time_of(0), "1970-01-01T00:00:00");
        assert_eq!(time_of(1_796_601_600), "2026-12-07T00:00:00");
    }
}
