//! What the kernel says a process costs: CPU time (user + system, whole thread group including
//! threads that already exited) from `/proc/PID/stat`, resident memory from
//! `/proc/PID/status` (`VmRSS` now, `VmHWM` the peak since start), read and write system calls
//! from `/proc/PID/io`, and context switches (wake-ups) of its threads.

use std::fs;

use anyhow::{Context, Result, anyhow};

/// CPU seconds (user + system) that process `pid` has used so far.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    cpu_user_sys(pid).map(|(u, s)| u + s)
}

/// CPU seconds (user, system) that process `pid` has used so far.
pub fn cpu_user_sys(pid: u32) -> Result<(f64, f64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    stat_user_sys(&stat).with_context(|| format!("/proc/{pid}/stat"))
}

/// CPU seconds (user + system) used so far by the live threads of `pid` whose name starts with
/// `prefix` (the recorder names its per-camera writer threads `writer-ID`). Threads that have
/// exited are not counted, unlike [`cpu_user_sys`]: use it for threads that live through the
/// window.
pub fn threads_cpu_secs(pid: u32, prefix: &str) -> Result<f64> {
    let mut total = 0.0;
    let tasks = fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("reading /proc/{pid}/task"))?;
    for task in tasks {
        let dir = task?.path();
        // A thread may exit between the listing and the read: skip it.
        let Ok(comm) = fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        total += stat_user_sys(&stat)
            .map(|(u, s)| u + s)
            .with_context(|| format!("{}/stat", dir.display()))?;
    }
    Ok(total)
}

/// Read-like and write-like system calls (`syscr` + `syscw` of `/proc/PID/io`: read, recv,
/// readv, write, send, ... of every thread, exited ones included) made by `pid` so far.
pub fn io_syscalls(pid: u32) -> Result<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io"))
        .with_context(|| format!("reading /proc/{pid}/io"))?;
    let field = |name: &str| -> Result<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/io"))?
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{name} in /proc/{pid}/io"))
    };
    Ok(field("syscr:")? + field("syscw:")?)
}

/// Context switches (voluntary + involuntary) of the live threads of `pid` so far: each
/// voluntary one is a thread going to sleep to be woken again, what batching saves.
pub fn context_switches(pid: u32) -> Result<u64> {
    let mut total = 0;
    let tasks = fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("reading /proc/{pid}/task"))?;
    for task in tasks {
        // A thread may exit between the listing and the read: skip it.
        let Ok(status) = fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        total += status
            .lines()
            .filter_map(|l| {
                l.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(total)
}

/// (user, system) CPU seconds from the text of a `stat` file.
fn stat_user_sys(stat: &str) -> Result<(f64, f64)> {
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("malformed stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so utime (field 14) is index 11, stime index 12.
    let utime: u64 = fields.get(11).ok_or_else(|| anyhow!("no utime"))?.parse()?;
    let stime: u64 = fields.get(12).ok_or_else(|| anyhow!("no stime"))?.parse()?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    Ok((utime as f64 / ticks, stime as f64 / ticks))
}

/// Resident memory of `pid`: (current `VmRSS`, peak `VmHWM`), in bytes.
pub fn rss_bytes(pid: u32) -> Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// The 1-minute load average, to show how busy the machine was during a window.
pub fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Total CPU seconds (all processes, all cores) the machine spent busy so far, from
/// `/proc/stat`: what the other processes on a shared machine took from the window.
pub fn machine_busy_secs() -> f64 {
    let Ok(s) = fs::read_to_string("/proc/stat") else {
        return f64::NAN;
    };
    let Some(line) = s.lines().next() else {
        return f64::NAN;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return f64::NAN;
    }
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    busy as f64 / rustix::param::clock_ticks_per_second() as f64
}

/// A CPU model line and whether the CPU has AES and SHA instructions, from `/proc/cpuinfo`.
pub fn cpu_description() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    let has = |f: &str| if flags.contains(&f) { "yes" } else { "no" };
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    format!(
        "{model}, {cores} cores, AES-NI {}, VAES {}, SHA-NI {}",
        has("aes"),
        has("vaes"),
        has("sha_ni")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_counted_by_name() {
        let pid = std::process::id();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let spinner = std::thread::Builder::new()
            .name("writer-test".into())
            .spawn(move || {
                // Burn CPU until told to stop: at least a few clock ticks' worth.
                let mut x = 0u64;
                while rx.try_recv().is_err() {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
            .expect("spawn");
        // Poll with a generous deadline (a bound, not a timing assertion).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut secs = 0.0;
        while secs < 0.05 && std::time::Instant::now() < deadline {
            secs = threads_cpu_secs(pid, "writer-").expect("threads");
        }
        assert!(secs >= 0.05, "the spinning thread's CPU is counted: {secs}");
        assert!(
            secs <= cpu_secs(pid).expect("process"),
            "a part of the whole"
        );
        assert_eq!(threads_cpu_secs(pid, "no-such-thread-").expect("none"), 0.0);
        // Reading a file is a read system call, and sleeping a context switch.
        let calls = io_syscalls(pid).expect("io");
        let switches = context_switches(pid).expect("switches");
        fs::read_to_string("/proc/self/stat").expect("read");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(io_syscalls(pid).expect("io") > calls);
        assert!(context_switches(pid).expect("switches") > switches);
        tx.send(()).expect("stop");
        spinner.join().expect("join");
    }
}
