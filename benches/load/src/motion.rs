//! `nvr-loadbench motion`: what motion analysis costs per camera, against the decode-only floor
//! measured in the same run: `ffmpeg -threads 1` decoding the same streams to null at the same
//! analysis rate (every picture must be decoded whatever the rate; what any motion detector pays).
//!
//! Against one `nvr testcam` in replay mode showing a scene with a moving object (a sub-stream:
//! 640x360 by default), three phases one after the other:
//! - `record`: `nvr serve` recording every camera, analysis off (`[motion] enabled = false`);
//! - `analyse`: the same with analysis on; its CPU is also split by thread: the analysis
//!   threads (`motion-ID`) and their decoders' GStreamer threads (`mID:src`);
//! - `ffmpeg`: one `ffmpeg -threads 1 -i URL -vf fps=F -f null -` per stream.
//!
//! Analysis per camera = (analyse - record) / N, and the thread split; both against ffmpeg / N.
//! At the end of `analyse` the recorder's counters must show every frame received written, and
//! the analysis' counters how many pictures it analysed and skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::procs::{self, Proc};
use crate::{http, procstat};

const PASSWORD: &str = "loadbench-password-0123456789";
/// How long every stream gets to start delivering.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between two ffmpeg starts (the test camera can refuse clients opening at one instant).
const FFMPEG_STAGGER: Duration = Duration::from_millis(100);

const USAGE: &str = "\
usage: nvr-loadbench motion [--cameras 8] [--width 640] [--height 360] [--fps 15]
                            [--analysis-fps 5] [--bitrate-kbps 500] [--warmup 20] [--window 60]
                            [--nvr PATH] [--ffmpeg PATH]";

struct Opts {
    nvr: PathBuf,
    ffmpeg: PathBuf,
    cameras: usize,
    width: u32,
    height: u32,
    fps: u32,
    analysis_fps: u32,
    bitrate_kbps: u32,
    warmup: Duration,
    window: Duration,
    work: PathBuf,
}

fn parse(args: Vec<String>, root: &Path) -> Result<Opts> {
    let mut o = Opts {
        nvr: root.join("target/release/nvr"),
        ffmpeg: PathBuf::from("/usr/bin/ffmpeg"),
        cameras: 8,
        width: 640,
        height: 360,
        fps: 15,
        analysis_fps: 5,
        bitrate_kbps: 500,
        warmup: Duration::from_secs(20),
        window: Duration::from_secs(60),
        work: std::env::temp_dir().join(format!("nvr-motionbench-{}", std::process::id())),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| anyhow!("{a} needs a value\n{USAGE}"))?;
        let num = || v.parse::<u64>().map_err(|e| anyhow!("{a}: {e}"));
        match a.as_str() {
            "--cameras" => o.cameras = num()? as usize,
            "--width" => o.width = num()? as u32,
            "--height" => o.height = num()? as u32,
            "--fps" => o.fps = num()? as u32,
            "--analysis-fps" => o.analysis_fps = num()? as u32,
            "--bitrate-kbps" => o.bitrate_kbps = num()? as u32,
            "--warmup" => o.warmup = Duration::from_secs(num()?),
            "--window" => o.window = Duration::from_secs(num()?),
            "--nvr" => o.nvr = PathBuf::from(&v),
            "--ffmpeg" => o.ffmpeg = PathBuf::from(&v),
            _ => bail!("unknown option {a}\n{USAGE}"),
        }
    }
    Ok(o)
}

/// CPU seconds of a phase's processes over the window, and of chosen threads of the first.
#[derive(Debug, Default)]
struct Cpu {
    total: f64,
    analysis_threads: f64,
    window: f64,
}

/// CPU seconds of the threads of `pid` that analyse: `motion-ID` and the decoders' `mID:src`.
fn analysis_threads(pid: u32) -> f64 {
    let motion = procstat::threads_cpu_secs(pid, "motion-").unwrap_or(0.0);
    let decoders: f64 = (1..=9)
        .map(|d| procstat::threads_cpu_secs(pid, &format!("m{d}")).unwrap_or(0.0))
        .sum();
    motion + decoders
}

fn measure(o: &Opts, pids: &[u32]) -> Result<Cpu> {
    std::thread::sleep(o.warmup);
    let cpu = |pids: &[u32]| -> Result<f64> {
        pids.iter()
            .map(|&p| procstat::cpu_secs(p))
            .sum::<Result<f64>>()
    };
    let (c0, a0, t0) = (cpu(pids)?, analysis_threads(pids[0]), Instant::now());
    std::thread::sleep(o.window);
    Ok(Cpu {
        total: cpu(pids)? - c0,
        analysis_threads: analysis_threads(pids[0]) - a0,
        window: t0.elapsed().as_secs_f64(),
    })
}

fn start_testcam(o: &Opts) -> Result<(Proc, Vec<String>)> {
    let mut cmd = Command::new(&o.nvr);
    cmd.args(["testcam", "--listen", "127.0.0.1:0", "--mounts"])
        .arg(o.cameras.to_string())
        .args([
            "--width",
            &o.width.to_string(),
            "--height",
            &o.height.to_string(),
        ])
        .args([
            "--fps",
            &o.fps.to_string(),
            "--bitrate-kbps",
            &o.bitrate_kbps.to_string(),
        ])
        // Something moves most of the time: a busy scene.
        .args([
            "--scene",
            "moving",
            "--scene-period-secs",
            "30",
            "--scene-events",
            "2-28",
        ]);
    let mut p = Proc::spawn("nvr testcam", cmd, &o.work.join("testcam.log"), false)?;
    let mut urls = Vec::new();
    p.wait_line(Duration::from_secs(180), |l| {
        if l.starts_with("rtsp://") {
            urls.push(l.trim().to_owned());
        }
        (l.trim() == "testcam ready").then_some(())
    })?;
    Ok((p, urls))
}

/// A data directory with the cameras, and `nvr serve` on it with analysis on or off.
fn serve(o: &Opts, urls: &[String], motion: bool) -> Result<(Proc, http::Api)> {
    let dir = o.work.join(format!("data-{motion}"));
    let d = dir.to_str().ok_or_else(|| anyhow!("non-UTF-8 work dir"))?;
    let nvr = |args: &[&str]| {
        let mut c = Command::new(&o.nvr);
        c.args(args);
        c
    };
    procs::run(nvr(&["init", "--data-dir", d]), None)?;
    procs::run(
        nvr(&[
            "user",
            "add",
            "--data-dir",
            d,
            "--username",
            "bench",
            "--role",
            "admin",
            "--password-stdin",
        ]),
        Some(&format!("{PASSWORD}\n")),
    )?;
    for (i, u) in urls.iter().enumerate() {
        let name = format!("cam{}", i + 1);
        procs::run(
            nvr(&[
                "camera",
                "add",
                "--data-dir",
                d,
                "--name",
                &name,
                "--url",
                u,
                "--skip-probe",
            ]),
            None,
        )?;
    }
    let config = o.work.join(format!("motion-{motion}.toml"));
    std::fs::write(
        &config,
        format!("[motion]\nenabled = {motion}\nfps = {}\n", o.analysis_fps),
    )?;
    let mut cmd = nvr(&[
        "serve",
        "--data-dir",
        d,
        "--listen",
        "127.0.0.1:0",
        "--config",
    ]);
    cmd.arg(&config);
    let mut p = Proc::spawn(
        "nvr serve",
        cmd,
        &o.work.join(format!("serve-{motion}.log")),
        false,
    )?;
    let addr: std::net::SocketAddr = p.wait_line(Duration::from_secs(60), |l| {
        l.strip_prefix("nvr serving on http://")
            .and_then(|r| r.trim_end_matches('/').parse().ok())
    })?;
    let api = http::Api::login(addr, "bench", PASSWORD)?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while counters(&api)?.connected < urls.len() {
        if Instant::now() > deadline {
            bail!("not every camera delivers frames");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok((p, api))
}

#[derive(Debug, Default)]
struct Counters {
    received: u64,
    written: u64,
    analysed: u64,
    skipped: u64,
    connected: usize,
}

fn counters(api: &http::Api) -> Result<Counters> {
    let cams = api.get_json("/api/cameras")?;
    let mut c = Counters::default();
    for cam in cams
        .as_array()
        .ok_or_else(|| anyhow!("cameras is not a list"))?
    {
        let d = &cam["status_detail"];
        let get = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
        c.received += get(d, "frames_received");
        c.written += get(d, "frames_written");
        c.analysed += get(&cam["motion"], "frames_analysed");
        c.skipped += get(&cam["motion"], "frames_skipped");
        c.connected += usize::from(get(d, "frames_received") > 0);
    }
    Ok(c)
}

pub(crate) fn main(args: Vec<String>, root: &Path) -> Result<()> {
    let o = parse(args, root)?;
    std::fs::create_dir_all(&o.work)?;
    let n = o.cameras as f64;
    let (mut cam, urls) = start_testcam(&o)?;
    if urls.len() != o.cameras {
        bail!(
            "the test camera printed {} URLs for {} mounts",
            urls.len(),
            o.cameras
        );
    }
    eprintln!("phase record: {} cameras, analysis off", o.cameras);
    let (mut p, _api) = serve(&o, &urls, false)?;
    let record = measure(&o, &[p.pid()])?;
    p.stop(Duration::from_secs(60));

    eprintln!("phase ffmpeg: decoding to null at {} fps", o.analysis_fps);
    let mut ffmpegs = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let mut c = Command::new(&o.ffmpeg);
        c.args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-threads",
            "1",
            "-rtsp_transport",
            "tcp",
            "-i",
            u,
        ])
        .args(["-vf", &format!("fps={}", o.analysis_fps), "-f", "null", "-"]);
        ffmpegs.push(Proc::spawn(
            &format!("ffmpeg {i}"),
            c,
            &o.work.join("ffmpeg.log"),
            false,
        )?);
        std::thread::sleep(FFMPEG_STAGGER);
    }
    let pids: Vec<u32> = ffmpegs.iter().map(Proc::pid).collect();
    let ffmpeg = measure(&o, &pids)?;
    for mut f in ffmpegs {
        f.stop(Duration::from_secs(10));
    }

    eprintln!("phase analyse: analysis on at {} fps", o.analysis_fps);
    let (mut p, api) = serve(&o, &urls, true)?;
    let before = counters(&api)?;
    let analyse = measure(&o, &[p.pid()])?;
    let after = counters(&api)?;
    // Frame accounting: the cameras stop, the writers drain, the server seals and stops, and
    // the index must hold every frame the server received.
    cam.stop(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let last = counters(&api)?;
    p.stop(Duration::from_secs(60));
    let check = procs::run(
        {
            let mut c = Command::new(&o.nvr);
            c.args(["check", "--data-dir"])
                .arg(o.work.join("data-true"));
            c
        },
        None,
    )?;
    let indexed = crate::report::parse_check(&check).map(|(frames, _)| frames);

    let pct = |secs: f64, window: f64| 100.0 * secs / window / n;
    let rec = pct(record.total, record.window);
    let all = pct(analyse.total, analyse.window);
    let by_diff = all - rec;
    let by_threads = pct(analyse.analysis_threads, analyse.window);
    let floor = pct(ffmpeg.total, ffmpeg.window);
    println!(
        "\n{} cameras, {}x{} at {} fps, {} kbit/s, analysed at {} fps; {} s windows; {}\n",
        o.cameras,
        o.width,
        o.height,
        o.fps,
        o.bitrate_kbps,
        o.analysis_fps,
        o.window.as_secs(),
        procstat::cpu_description()
    );
    println!("| per camera, % of one core | value | x ffmpeg decode floor |");
    println!("|---|---|---|");
    println!("| recording only (analysis off) | {rec:.2} | |");
    println!("| recording + analysis | {all:.2} | |");
    println!(
        "| analysis (difference) | {by_diff:.2} | {:.2} |",
        by_diff / floor
    );
    println!(
        "| analysis threads (motion-*, decoders) | {by_threads:.2} | {:.2} |",
        by_threads / floor
    );
    println!(
        "| ffmpeg -threads 1 decode to null at {} fps | {floor:.2} | 1.00 |",
        o.analysis_fps
    );
    println!(
        "\nanalyse phase: pictures analysed in the window {}, skipped {}; frames received {}, \
         written {}, in the index after the stop {} (nvr check: {})",
        after.analysed - before.analysed,
        after.skipped - before.skipped,
        last.received,
        last.written,
        indexed.map_or_else(|| "?".to_owned(), |f| f.to_string()),
        check.lines().last().unwrap_or("").trim(),
    );
    let _ = std::fs::remove_dir_all(&o.work);
    Ok(())
}
