//! `nvr-loadbench`: how much CPU and memory recording N cameras costs, against `ffmpeg -c copy`
//! and against a bare retina client that only counts frames (the depacketization floor).
//!
//! For each N it runs, one after the other in the same invocation (and `--rounds` times,
//! alternating), three phases against a fresh `nvr testcam` (replay mode, 1920x1080, 30 fps,
//! ~4 Mbit/s H.264):
//! - `nvr`: `nvr serve` recording all N cameras into a fresh data directory;
//! - `ffmpeg`: one `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60` per
//!   stream into a temporary directory (skipped with a note when ffmpeg is absent);
//! - `floor`: this program's `floor` subcommand, a retina-only frame counter, as its own process.
//!
//! Each phase waits until every stream delivers, warms up, then measures a window: CPU seconds
//! (user + system, from /proc) per stream-minute, resident memory (mean of 1 s samples and the
//! peak), and frames per second per stream. The recorder's run is then closed (the test camera
//! stops, the server is stopped with SIGTERM) and its frames received are compared with the
//! frames written, by its own counters and by the index. Ratios nvr/ffmpeg and nvr/floor come
//! from the same round. See BENCHMARKS.md.

mod api;
mod floor;
mod http;
mod motion;
mod procs;
mod procstat;
mod report;
mod soak;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rustix::process::Signal;

use crate::procs::Proc;
use crate::report::{FrameCheck, PhaseResult, Report, mib, parse_check};

/// Password of the benchmark's API user (a throwaway data directory).
const BENCH_PASSWORD: &str = "loadbench-password-0123456789";

/// Pause between two ffmpeg starts: the test camera can refuse clients that open mounts at the
/// same instant ("Out-of-order packet").
const FFMPEG_STAGGER: Duration = Duration::from_millis(100);

/// How long every stream gets to start delivering before a phase fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
struct Opts {
    nvr: PathBuf,
    ffmpeg: PathBuf,
    cameras: Vec<usize>,
    warmup: Duration,
    window: Duration,
    rounds: usize,
    work_dir: PathBuf,
    systems: Vec<System>,
    out: Option<PathBuf>,
    width: u32,
    height: u32,
    fps: u32,
    bitrate_kbps: u32,
    /// `--soak-minutes`: run the soak (`soak.rs`) instead of the phases.
    soak_minutes: Option<u64>,
    /// `--motion on|off`: the recorder's motion analysis (off by default here: ffmpeg and the
    /// floor decode nothing, and `nvr-loadbench motion` measures analysis on its own).
    motion: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Nvr,
    /// The recorder reading every packet as it arrives (`recording.read_interval_ms = 0`): the
    /// receive path before batched reads, measured beside it in the same run.
    NvrPerPacket,
    Ffmpeg,
    Floor,
    /// The API latency phase (`api.rs`): not a recorder to compare, a client's view of one.
    Api,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Nvr => "nvr",
            System::NvrPerPacket => "nvr-per-packet",
            System::Ffmpeg => "ffmpeg",
            System::Floor => "floor",
            System::Api => "api",
        }
    }
}

const USAGE: &str = "\
usage: nvr-loadbench [--cameras 1,8,16,32,64] [--warmup SECS] [--window SECS] [--rounds R]
                     [--systems nvr,nvr-per-packet,ffmpeg,floor,api] [--nvr PATH] [--ffmpeg PATH] [--work-dir DIR]
                     [--no-build] [--out FILE.md]
                     [--width 1920] [--height 1080] [--fps 30] [--bitrate-kbps 4000]
                     [--motion off|on]   (the recorder's motion analysis; off by default)
                     [--soak-minutes M]  (instead of the phases: the recorder alone for M
                                          minutes, playback every 30 s, RSS every 30 s)
       nvr-loadbench floor URL...      (internal: the retina-only frame counter)
       nvr-loadbench motion [...]      (motion analysis vs ffmpeg decoding; see motion.rs)

Builds target/release/nvr first (cargo build --release --bin nvr) unless --no-build or --nvr.";

fn parse_args() -> Result<Option<Opts>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("floor") {
        floor::main(args.split_off(1))?;
        return Ok(None);
    }
    if args.first().map(String::as_str) == Some("motion") {
        motion::main(args.split_off(1), &workspace_root())?;
        return Ok(None);
    }
    let root = workspace_root();
    let mut o = Opts {
        nvr: root.join("target/release/nvr"),
        ffmpeg: PathBuf::from("/usr/bin/ffmpeg"),
        cameras: vec![1, 8, 16, 32, 64],
        warmup: Duration::from_secs(15),
        window: Duration::from_secs(60),
        rounds: 1,
        // One directory per invocation: each removes its own at the end, so two benches run
        // back to back (or overlapping) never delete each other's data directories.
        work_dir: std::env::temp_dir().join(format!("nvr-loadbench-{}", std::process::id())),
        systems: vec![System::Nvr, System::Ffmpeg, System::Floor],
        out: None,
        width: 1920,
        height: 1080,
        fps: 30,
        bitrate_kbps: 4000,
        soak_minutes: None,
        motion: false,
    };
    let mut build = true;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| anyhow!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--cameras" => {
                o.cameras = val()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()?
            }
            "--warmup" => o.warmup = Duration::from_secs(val()?.parse()?),
            "--window" => o.window = Duration::from_secs(val()?.parse()?),
            "--rounds" => o.rounds = val()?.parse()?,
            "--systems" => {
                o.systems = val()?
                    .split(',')
                    .map(|s| match s.trim() {
                        "nvr" => Ok(System::Nvr),
                        "nvr-per-packet" => Ok(System::NvrPerPacket),
                        "ffmpeg" => Ok(System::Ffmpeg),
                        "floor" => Ok(System::Floor),
                        "api" => Ok(System::Api),
                        other => Err(anyhow!("unknown system {other:?}")),
                    })
                    .collect::<Result<_>>()?
            }
            "--nvr" => {
                o.nvr = PathBuf::from(val()?);
                build = false;
            }
            "--ffmpeg" => o.ffmpeg = PathBuf::from(val()?),
            "--work-dir" => o.work_dir = PathBuf::from(val()?),
            "--no-build" => build = false,
            "--out" => o.out = Some(PathBuf::from(val()?)),
            "--width" => o.width = val()?.parse()?,
            "--height" => o.height = val()?.parse()?,
            "--fps" => o.fps = val()?.parse()?,
            "--bitrate-kbps" => o.bitrate_kbps = val()?.parse()?,
            "--soak-minutes" => o.soak_minutes = Some(val()?.parse()?),
            "--motion" => {
                o.motion = match val()?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => bail!("--motion {other:?}: on or off"),
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if o.cameras.is_empty() || o.cameras.contains(&0) || o.rounds == 0 {
        bail!("--cameras needs positive counts and --rounds at least 1");
    }
    if build {
        eprintln!("building the release binary: cargo build --release --bin nvr");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "nvr"])
            .current_dir(&root)
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build --release --bin nvr failed");
        }
    }
    if !o.nvr.exists() {
        bail!(
            "{} does not exist (build it or pass --nvr)",
            o.nvr.display()
        );
    }
    Ok(Some(o))
}

/// The workspace root: two levels above this crate's manifest.
fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> Result<()> {
    let Some(o) = parse_args()? else {
        return Ok(());
    };
    let _ = std::fs::remove_dir_all(&o.work_dir);
    std::fs::create_dir_all(&o.work_dir)?;
    let mut report = Report::new(&o);
    report.line(&format!("machine: {}", procstat::cpu_description()));
    report.line(&format!(
        "the recorder's motion analysis: {} (`--motion`; `nvr-loadbench motion` measures it)",
        if o.motion { "on" } else { "off" }
    ));
    report.line(
        "r/w syscalls: `syscr`+`syscw` of /proc/PID/io (read, readv, write, pwrite...; recv/send \
         are not counted there, so ffmpeg's recvfrom reads are missing from its figure)",
    );
    report.line(&format!(
        "load average before start: {:.2}",
        procstat::loadavg()
    ));
    let base = measure_base(&o).context("measuring the idle recorder")?;
    report.line(&format!(
        "idle `nvr serve` with no camera (the fixed base): RSS {:.1} MiB",
        mib(base)
    ));
    if let Some(minutes) = o.soak_minutes {
        for &n in &o.cameras {
            eprintln!("== soak N={n}, {minutes} min");
            match soak::run(&o, n, minutes) {
                Ok(section) => report.line(&section),
                Err(e) => report.line(&format!("soak N={n}: FAILED: {e:#}")),
            }
        }
        return report.finish();
    }
    for &n in &o.cameras {
        for round in 0..o.rounds {
            // Alternate the order between rounds so a trend in the machine's load does not
            // always favour the same system.
            let mut order: Vec<System> = o
                .systems
                .iter()
                .copied()
                .filter(|s| *s != System::Api)
                .collect();
            if round % 2 == 1 {
                order.reverse();
            }
            if o.systems.contains(&System::Api) {
                eprintln!("== N={n} round {} api", round + 1);
                match api::run_api(&o, n) {
                    Ok(lat) => report.add_api(n, round + 1, &lat),
                    Err(e) => report.line(&format!("N={n} api: FAILED: {e:#}")),
                }
            }
            let mut results = Vec::new();
            for sys in order {
                eprintln!("== N={n} round {} {}", round + 1, sys.name());
                let r = match sys {
                    System::Nvr => run_nvr(&o, n, System::Nvr),
                    System::NvrPerPacket => run_nvr(&o, n, System::NvrPerPacket),
                    System::Ffmpeg if !o.ffmpeg.exists() => {
                        report.line(&format!(
                            "N={n}: ffmpeg skipped: {} not found",
                            o.ffmpeg.display()
                        ));
                        continue;
                    }
                    System::Ffmpeg => run_ffmpeg(&o, n),
                    System::Floor => run_floor(&o, n),
                    System::Api => continue,
                };
                match r {
                    Ok(r) => {
                        eprintln!("   {}", r.summary());
                        results.push(r);
                    }
                    Err(e) => {
                        report.line(&format!("N={n} {}: FAILED: {e:#}", sys.name()));
                    }
                }
            }
            report.add_round(n, round + 1, base, results);
        }
    }
    report.finish()?;
    let _ = std::fs::remove_dir_all(&o.work_dir);
    Ok(())
}

/// Samples CPU and memory of a set of processes over the measurement window.
fn measure(
    o: &Opts,
    pids: &[u32],
    testcam: u32,
    mut frames: impl FnMut() -> Option<u64>,
) -> Result<PhaseResult> {
    let cpu = |pids: &[u32]| -> Result<(f64, f64)> {
        let mut total = (0.0, 0.0);
        for &p in pids {
            let (u, s) = procstat::cpu_user_sys(p)?;
            total.0 += u + s;
            total.1 += s;
        }
        Ok(total)
    };
    let rss = |pids: &[u32]| -> Result<(u64, u64)> {
        let mut now = 0;
        let mut hwm = 0;
        for &p in pids {
            let (r, h) = procstat::rss_bytes(p)?;
            now += r;
            hwm += h;
        }
        Ok((now, hwm))
    };
    // The recorder's writer threads (named `writer-CAMERA`), to split its CPU into the network
    // side and writing; zero for the other systems, which have no such threads.
    let writers = |pids: &[u32]| -> Result<f64> {
        pids.iter()
            .map(|&p| procstat::threads_cpu_secs(p, "writer-"))
            .sum()
    };
    // System calls and wake-ups, summed over the processes.
    let calls = |pids: &[u32]| -> Result<(u64, u64)> {
        let mut total = (0, 0);
        for &p in pids {
            total.0 += procstat::io_syscalls(p)?;
            total.1 += procstat::context_switches(p)?;
        }
        Ok(total)
    };
    let f0 = frames();
    let s0 = calls(pids)?;
    let t0 = Instant::now();
    let w0 = writers(pids)?;
    let c0 = cpu(pids)?;
    let tc0 = procstat::cpu_secs(testcam)?;
    let m0 = procstat::machine_busy_secs();
    let mut samples = Vec::new();
    let end = t0 + o.window;
    loop {
        let next = Instant::now() + Duration::from_secs(1);
        if next > end {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
            break;
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        samples.push(rss(pids)?.0);
    }
    let c1 = cpu(pids)?;
    let s1 = calls(pids)?;
    let w1 = writers(pids)?;
    let tc1 = procstat::cpu_secs(testcam)?;
    let m1 = procstat::machine_busy_secs();
    let wall = t0.elapsed().as_secs_f64();
    let (last, hwm) = rss(pids)?;
    samples.push(last);
    let f1 = frames();
    Ok(PhaseResult {
        system: System::Nvr,
        n: 0,
        window_secs: wall,
        cpu_secs: c1.0 - c0.0,
        sys_secs: c1.1 - c0.1,
        writer_cpu_secs: w1 - w0,
        testcam_cpu_secs: tc1 - tc0,
        machine_busy_secs: m1 - m0,
        io_syscalls: s1.0.saturating_sub(s0.0),
        context_switches: s1.1.saturating_sub(s0.1),
        rss_mean: samples.iter().sum::<u64>() / samples.len() as u64,
        rss_max_sample: samples.iter().copied().max().unwrap_or(0),
        rss_hwm: hwm,
        window_frames: match (f0, f1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        frames: None,
        notes: Vec::new(),
    })
}

/// A running `nvr testcam` and its stream URLs.
struct Testcam {
    proc: Proc,
    urls: Vec<String>,
}

fn start_testcam(o: &Opts, n: usize, log: &Path) -> Result<Testcam> {
    let mut cmd = Command::new(&o.nvr);
    cmd.args(["testcam", "--listen", "127.0.0.1:0", "--mounts"])
        .arg(n.to_string())
        .args(["--width", &o.width.to_string()])
        .args(["--height", &o.height.to_string()])
        .args(["--fps", &o.fps.to_string()])
        .args(["--bitrate-kbps", &o.bitrate_kbps.to_string()]);
    let mut proc = Proc::spawn("nvr testcam", cmd, log, false)?;
    let mut urls = Vec::new();
    proc.wait_line(Duration::from_secs(120), |l| {
        if l.starts_with("rtsp://") {
            urls.push(l.trim().to_owned());
        }
        (l.trim() == "testcam ready").then_some(())
    })?;
    if urls.len() != n {
        bail!("testcam printed {} URLs for {n} mounts", urls.len());
    }
    Ok(Testcam { proc, urls })
}

fn nvr_cmd(o: &Opts, args: &[&str]) -> Command {
    let mut c = Command::new(&o.nvr);
    c.args(args);
    c
}

/// Creates a data directory with the benchmark user and `urls` as cameras.
fn prepare_data_dir(o: &Opts, dir: &Path, urls: &[String]) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let d = dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 work dir"))?;
    procs::run(nvr_cmd(o, &["init", "--data-dir", d]), None)?;
    procs::run(
        nvr_cmd(
            o,
            &[
                "user",
                "add",
                "--data-dir",
                d,
                "--username",
                "bench",
                "--role",
                "admin",
                "--password-stdin",
            ],
        ),
        Some(&format!("{BENCH_PASSWORD}\n")),
    )?;
    for (i, u) in urls.iter().enumerate() {
        let name = format!("cam{}", i + 1);
        procs::run(
            nvr_cmd(
                o,
                &[
                    "camera",
                    "add",
                    "--data-dir",
                    d,
                    "--name",
                    &name,
                    "--url",
                    u,
                    "--skip-probe",
                ],
            ),
            None,
        )?;
    }
    Ok(())
}

/// Starts `nvr serve` on `dir`; returns it and its API address.
fn start_serve(
    o: &Opts,
    dir: &Path,
    log: &Path,
    config: Option<&Path>,
) -> Result<(Proc, std::net::SocketAddr)> {
    let mut cmd = Command::new(&o.nvr);
    cmd.args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut serve = Proc::spawn("nvr serve", cmd, log, false)?;
    let addr: std::net::SocketAddr = serve.wait_line(Duration::from_secs(60), |l| {
        l.strip_prefix("nvr serving on http://")
            .and_then(|r| r.trim_end_matches('/').parse().ok())
    })?;
    Ok((serve, addr))
}

/// RSS of an idle `nvr serve` with no camera: the fixed base the per-camera cost sits on.
fn measure_base(o: &Opts) -> Result<u64> {
    let dir = o.work_dir.join("base");
    prepare_data_dir(o, &dir, &[])?;
    let (mut serve, addr) = start_serve(o, &dir, &o.work_dir.join("serve-base.log"), None)?;
    let api = http::Api::login(addr, "bench", BENCH_PASSWORD)?;
    api.get_json("/api/cameras")?;
    std::thread::sleep(Duration::from_secs(5));
    let (rss, _) = procstat::rss_bytes(serve.pid())?;
    serve.stop(Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rss)
}

/// Per-camera counters from the API: (received, written, skipped, connected cameras).
fn api_counters(api: &http::Api) -> Result<(u64, u64, u64, usize)> {
    let cams = api.get_json("/api/cameras")?;
    let list = cams
        .as_array()
        .ok_or_else(|| anyhow!("/api/cameras is not a list"))?;
    let (mut r, mut w, mut s, mut connected) = (0, 0, 0, 0);
    for c in list {
        let d = &c["status_detail"];
        let get = |k: &str| d[k].as_u64().unwrap_or(0);
        r += get("frames_received");
        w += get("frames_written");
        s += get("frames_skipped");
        connected += usize::from(get("frames_received") > 0);
    }
    Ok((r, w, s, connected))
}

/// The recorder's configuration file for `system`: motion analysis as `--motion` says, and
/// reads per packet for [`System::NvrPerPacket`] (the default interval otherwise).
fn serve_config(o: &Opts, system: System) -> Result<PathBuf> {
    let p = o.work_dir.join(format!("{}.toml", system.name()));
    let mut text = format!("[motion]\nenabled = {}\n", o.motion);
    if system == System::NvrPerPacket {
        text.push_str("[recording]\nread_interval_ms = 0\n");
    }
    std::fs::write(&p, text)?;
    Ok(p)
}

/// Runs the recorder (`system`: batched reads as configured by default, or per packet).
fn run_nvr(o: &Opts, n: usize, system: System) -> Result<PhaseResult> {
    let log = o.work_dir.join(format!("{}-{n}.log", system.name()));
    let mut tc = start_testcam(o, n, &log)?;
    let dir = o.work_dir.join(format!("nvr-data-{n}"));
    prepare_data_dir(o, &dir, &tc.urls)?;
    let config = serve_config(o, system)?;
    let (mut serve, addr) = start_serve(o, &dir, &log, Some(&config))?;
    let api = http::Api::login(addr, "bench", BENCH_PASSWORD)?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let (_, _, _, connected) = api_counters(&api)?;
        if connected == n {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {connected} of {n} cameras deliver frames");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(o.warmup);
    let spid = serve.pid();
    let mut r = measure(o, &[spid], tc.proc.pid(), || {
        api_counters(&api).ok().map(|c| c.0)
    })?;
    r.system = system;
    r.n = n;
    // Close the run: the camera goes away, every session ends, every segment is sealed.
    tc.proc.stop(Duration::from_secs(30));
    let mut check = FrameCheck::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stable = 0;
    let mut last = (0, 0, 0);
    while Instant::now() < deadline && stable < 2 {
        std::thread::sleep(Duration::from_secs(1));
        let (rcv, wr, sk, _) = api_counters(&api)?;
        if rcv == wr + sk && (rcv, wr, sk) == last {
            stable += 1;
        } else {
            stable = 0;
        }
        last = (rcv, wr, sk);
    }
    (check.received, check.written, check.skipped) = last;
    let (rss_now, hwm) = procstat::rss_bytes(spid)?;
    r.notes.push(format!(
        "RSS after the cameras stopped {:.1} MiB, peak {:.1} MiB",
        mib(rss_now),
        mib(hwm)
    ));
    if !serve.stop(Duration::from_secs(120)) {
        r.notes
            .push("nvr serve did not exit cleanly on SIGTERM".into());
    }
    // The index's view, through the binary under test (same schema version): every chunk is
    // authenticated and every file compared with its row.
    let d = dir.to_str().unwrap_or_default();
    match procs::run(nvr_cmd(o, &["check", "--data-dir", d]), None) {
        Ok(out) => {
            check.check_ok = Some(true);
            match parse_check(&out) {
                Some((frames, open)) => {
                    check.in_index = frames;
                    check.open_segments = open;
                }
                None => r
                    .notes
                    .push(format!("cannot read nvr check's summary: {out}")),
            }
        }
        Err(e) => {
            check.check_ok = Some(false);
            r.notes.push(format!("nvr check: {e:#}"));
        }
    }
    r.frames = Some(check);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(r)
}

fn run_ffmpeg(o: &Opts, n: usize) -> Result<PhaseResult> {
    let log = o.work_dir.join(format!("ffmpeg-{n}.log"));
    let tc = start_testcam(o, n, &log)?;
    let dir = o.work_dir.join(format!("ffmpeg-out-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut procs = Vec::new();
    for (i, u) in tc.urls.iter().enumerate() {
        let mut cmd = Command::new(&o.ffmpeg);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(["-rtsp_transport", "tcp", "-i", u])
            .args(["-c", "copy", "-f", "segment", "-segment_time", "60"])
            .args(["-reset_timestamps", "1"])
            .arg(dir.join(format!("cam{}-%03d.mp4", i + 1)));
        procs.push(Proc::spawn("ffmpeg", cmd, &log, false)?);
        std::thread::sleep(FFMPEG_STAGGER);
    }
    // Every ffmpeg has started writing its first segment.
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let started = (1..=n)
            .filter(|i| {
                std::fs::metadata(dir.join(format!("cam{i}-000.mp4"))).is_ok_and(|m| m.len() > 0)
            })
            .count();
        if started == n {
            break;
        }
        if procs.iter_mut().any(|p| !p.is_running()) {
            bail!("an ffmpeg exited early (see {})", log.display());
        }
        if Instant::now() > deadline {
            bail!("only {started} of {n} ffmpeg processes write output");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(o.warmup);
    let pids: Vec<u32> = procs.iter().map(Proc::pid).collect();
    let mut r = measure(o, &pids, tc.proc.pid(), || None)?;
    r.system = System::Ffmpeg;
    r.n = n;
    for p in &procs {
        p.signal(Signal::INT);
    }
    let mut clean = 0;
    for p in &mut procs {
        // ffmpeg exits with 255 after finishing its output on SIGINT.
        let st = p.wait(Duration::from_secs(30));
        clean += usize::from(st.is_some_and(|s| s.success() || s.code() == Some(255)));
    }
    if clean != n {
        r.notes
            .push(format!("{} of {n} ffmpeg exited uncleanly", n - clean));
    }
    drop(tc);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(r)
}

fn run_floor(o: &Opts, n: usize) -> Result<PhaseResult> {
    let log = o.work_dir.join(format!("floor-{n}.log"));
    let tc = start_testcam(o, n, &log)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("floor").args(&tc.urls);
    let mut child = Proc::spawn("floor client", cmd, &log, true)?;
    let mut connected = 0;
    let mut latest = 0u64;
    child.wait_line(CONNECT_TIMEOUT, |l| {
        if l.starts_with("connected ") {
            connected += 1;
        } else if let Some(v) = l.strip_prefix("frames ") {
            latest = v.parse().unwrap_or(latest);
        }
        (connected == n).then_some(())
    })?;
    std::thread::sleep(o.warmup);
    let pid = child.pid();
    let lines = std::cell::RefCell::new(&mut child);
    let mut r = measure(o, &[pid], tc.proc.pid(), || {
        // The newest count the child printed (it prints every 500 ms).
        let c = lines.borrow_mut();
        while let Ok(l) = c.lines.try_recv() {
            if let Some(v) = l.strip_prefix("frames ") {
                latest = v.parse().unwrap_or(latest);
            }
        }
        Some(latest)
    })?;
    r.system = System::Floor;
    r.n = n;
    child.close_stdin();
    let _ = child.wait_line(Duration::from_secs(10), |l| {
        l.strip_prefix("final ").map(|_| ())
    });
    child.wait(Duration::from_secs(10));
    drop(tc);
    Ok(r)
}
