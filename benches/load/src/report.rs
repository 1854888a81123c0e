//! What one phase of the load bench measured, and the Markdown report of all of them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::{Opts, System};

pub(crate) fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub(crate) struct PhaseResult {
    pub(crate) system: System,
    pub(crate) n: usize,
    pub(crate) window_secs: f64,
    /// CPU seconds of the system under test during the window, and the system (kernel) part.
    pub(crate) cpu_secs: f64,
    pub(crate) sys_secs: f64,
    /// The part of `cpu_secs` spent by the recorder's writer threads (0 for other systems).
    pub(crate) writer_cpu_secs: f64,
    /// CPU seconds of the test camera during the window (context).
    pub(crate) testcam_cpu_secs: f64,
    /// CPU seconds the whole machine was busy during the window (context: other load).
    pub(crate) machine_busy_secs: f64,
    /// Read- and write-like system calls during the window (`/proc/PID/io`).
    pub(crate) io_syscalls: u64,
    /// Context switches of the system's threads during the window (its wake-ups).
    pub(crate) context_switches: u64,
    /// Mean and max of the 1 s RSS samples during the window, and the peak (VmHWM, summed
    /// over processes) at its end.
    pub(crate) rss_mean: u64,
    pub(crate) rss_max_sample: u64,
    pub(crate) rss_hwm: u64,
    /// Frames received during the window, if the system reports them.
    pub(crate) window_frames: Option<u64>,
    pub(crate) frames: Option<FrameCheck>,
    pub(crate) notes: Vec<String>,
}

impl PhaseResult {
    pub(crate) fn cpu_per_stream_minute(&self) -> f64 {
        self.cpu_secs / self.window_secs * 60.0 / self.n as f64
    }

    /// Read/write system calls per second per stream.
    pub(crate) fn syscalls_per_stream_sec(&self) -> f64 {
        self.io_syscalls as f64 / self.window_secs / self.n as f64
    }

    /// Context switches per second per stream.
    pub(crate) fn switches_per_stream_sec(&self) -> f64 {
        self.context_switches as f64 / self.window_secs / self.n as f64
    }

    /// CPU microseconds per frame received, if the system reports frames.
    pub(crate) fn cpu_us_per_frame(&self) -> Option<f64> {
        self.window_frames
            .filter(|&f| f > 0)
            .map(|f| self.cpu_secs * 1e6 / f as f64)
    }

    pub(crate) fn core_pct(&self) -> f64 {
        self.cpu_secs / self.window_secs * 100.0
    }

    pub(crate) fn fps_per_stream(&self) -> Option<f64> {
        self.window_frames
            .map(|f| f as f64 / self.window_secs / self.n as f64)
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "{} N={}: {:.3} CPU-s per stream-minute ({:.1}% of a core), {} fps/stream, {:.0} read/write syscalls/s/stream, {:.0} context switches/s/stream, RSS {:.1} MiB (peak {:.1}), testcam {:.0}% core, machine busy {:.0}%",
            self.system.name(),
            self.n,
            self.cpu_per_stream_minute(),
            self.core_pct(),
            self.fps_per_stream()
                .map_or("-".into(), |f| format!("{f:.2}")),
            self.syscalls_per_stream_sec(),
            self.switches_per_stream_sec(),
            mib(self.rss_mean),
            mib(self.rss_hwm.max(self.rss_max_sample)),
            self.testcam_cpu_secs / self.window_secs * 100.0,
            self.machine_busy_secs / self.window_secs * 100.0,
        )
    }
}

/// The recorder's frame accounting once its run is closed.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameCheck {
    /// From the server's counters (GET /api/cameras) after the camera stopped.
    pub(crate) received: u64,
    pub(crate) written: u64,
    pub(crate) skipped: u64,
    /// Frames in the index after the server exited (from `nvr check`).
    pub(crate) in_index: u64,
    pub(crate) open_segments: u64,
    /// `nvr check` passed (it also gives `in_index` and `open_segments`).
    pub(crate) check_ok: Option<bool>,
}

impl FrameCheck {
    pub(crate) fn lost(&self) -> i64 {
        self.received as i64 - self.skipped as i64 - self.in_index as i64
    }
}

/// Reads "checked S segments (O open), C chunks, F frames: P problem(s)": (F, O).
pub(crate) fn parse_check(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.starts_with("checked "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let open = words.get(3)?.trim_start_matches('(').parse().ok()?;
    let frames_at = words.iter().position(|w| w.starts_with("frames"))?;
    let frames = words.get(frames_at.checked_sub(1)?)?.parse().ok()?;
    Some((frames, open))
}

/// Collects results and prints them as Markdown tables.
pub(crate) struct Report {
    out: Option<PathBuf>,
    text: String,
    rows: Vec<(usize, usize, u64, Vec<PhaseResult>)>,
    window: Duration,
}

impl Report {
    pub(crate) fn new(o: &Opts) -> Self {
        Report {
            out: o.out.clone(),
            text: String::new(),
            rows: Vec::new(),
            window: o.window,
        }
    }

    pub(crate) fn line(&mut self, s: &str) {
        eprintln!("{s}");
        self.text.push_str(s);
        self.text.push_str("  \n");
    }

    pub(crate) fn add_round(
        &mut self,
        n: usize,
        round: usize,
        base: u64,
        results: Vec<PhaseResult>,
    ) {
        self.rows.push((n, round, base, results));
    }

    /// The API latency phase's table for `n` cameras.
    pub(crate) fn add_api(&mut self, n: usize, round: usize, lat: &[crate::api::Latency]) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut t = format!(
            "\nAPI latency, N={n} round {round} ({} requests/s, one connection each):\n\n\
             | scenario | request | count | p50 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|\n",
            crate::api::REQUESTS_PER_SEC
        );
        for l in lat {
            t.push_str(&format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} |\n",
                l.scenario,
                l.request,
                l.count,
                ms(l.p50),
                ms(l.p99),
                ms(l.max)
            ));
        }
        eprint!("{t}");
        self.text.push_str(&t);
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        if self.rows.is_empty() {
            // A soak (or nothing measured): only the lines added so far.
            return self.emit();
        }
        let mut t = String::new();
        t.push_str(&format!(
            "\nWindow {} s per phase. CPU = user+sys CPU-seconds per stream-minute; core % = share of one core for all N streams.\n\n",
            self.window.as_secs()
        ));
        t.push_str("| N | round | system | CPU s/stream-min | CPU us/frame | kernel share | core % | fps/stream | r/w syscalls/s/stream | ctx switches/s/stream | RSS steady MiB | RSS peak MiB | per-camera MiB above base | testcam core % | machine busy % |\n");
        t.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let mut ratios = String::from(
            "\n| N | round | nvr/ffmpeg CPU | nvr/floor CPU | nvr/per-packet CPU | nvr/per-packet syscalls | network side / floor | writers / floor | nvr core % | frames received | written (counter) | skipped | in index | lost | open segments | nvr check |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        let mut notes = String::new();
        for (n, round, base, results) in &self.rows {
            for r in results {
                let per_cam = if matches!(r.system, System::Nvr | System::NvrPerPacket) {
                    format!("{:.2}", (mib(r.rss_mean) - mib(*base)) / *n as f64)
                } else {
                    format!("({:.2} per stream)", mib(r.rss_mean) / *n as f64)
                };
                t.push_str(&format!(
                    "| {n} | {round} | {} | {:.3} | {} | {:.0}% | {:.1} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {per_cam} | {:.0} | {:.0} |\n",
                    r.system.name(),
                    r.cpu_per_stream_minute(),
                    r.cpu_us_per_frame().map_or("-".into(), |u| format!("{u:.1}")),
                    r.sys_secs / r.cpu_secs.max(1e-9) * 100.0,
                    r.core_pct(),
                    r.fps_per_stream().map_or("-".into(), |f| format!("{f:.2}")),
                    r.syscalls_per_stream_sec(),
                    r.switches_per_stream_sec(),
                    mib(r.rss_mean),
                    mib(r.rss_hwm.max(r.rss_max_sample)),
                    r.testcam_cpu_secs / r.window_secs * 100.0,
                    r.machine_busy_secs / r.window_secs * 100.0,
                ));
                for note in &r.notes {
                    notes.push_str(&format!(
                        "- N={n} round {round} {}: {note}\n",
                        r.system.name()
                    ));
                }
            }
            let find = |s: System| results.iter().find(|r| r.system == s);
            if let Some(nvr) = find(System::Nvr) {
                let ratio = |s: System| {
                    find(s).map_or("-".into(), |x| {
                        format!(
                            "{:.2}",
                            nvr.cpu_per_stream_minute() / x.cpu_per_stream_minute()
                        )
                    })
                };
                // The recorder's CPU split by thread, each part against the whole floor.
                let split = |part_secs: f64| {
                    find(System::Floor).map_or("-".into(), |x| {
                        format!(
                            "{:.2}",
                            part_secs / nvr.cpu_secs.max(1e-9) * nvr.cpu_per_stream_minute()
                                / x.cpu_per_stream_minute()
                        )
                    })
                };
                let per_packet = |of: fn(&PhaseResult) -> f64| {
                    find(System::NvrPerPacket)
                        .map_or("-".into(), |x| format!("{:.2}", of(nvr) / of(x).max(1e-9)))
                };
                let f = nvr.frames.clone().unwrap_or_default();
                ratios.push_str(&format!(
                    "| {n} | {round} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |\n",
                    ratio(System::Ffmpeg),
                    ratio(System::Floor),
                    per_packet(PhaseResult::cpu_per_stream_minute),
                    per_packet(PhaseResult::syscalls_per_stream_sec),
                    split(nvr.cpu_secs - nvr.writer_cpu_secs),
                    split(nvr.writer_cpu_secs),
                    nvr.core_pct(),
                    f.received,
                    f.written,
                    f.skipped,
                    f.in_index,
                    f.lost(),
                    f.open_segments,
                    match f.check_ok {
                        Some(true) => "ok",
                        Some(false) => "FAILED",
                        None => "-",
                    }
                ));
            }
        }
        self.text.push_str(&t);
        self.text.push_str(&ratios);
        if !notes.is_empty() {
            self.text.push_str("\nNotes:\n");
            self.text.push_str(&notes);
        }
        self.emit()
    }

    /// Prints the report, and writes it to `--out` if given.
    fn emit(&self) -> Result<()> {
        println!("{}", self.text);
        if let Some(p) = &self.out {
            std::fs::write(p, &self.text).with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_check_summary() {
        let out = "checked 12 segments (0 open), 170 chunks, 2410 frames: 0 problem(s)\n";
        assert_eq!(super::parse_check(out), Some((2410, 0)));
    }
}
