//! Child processes of the benchmark: started with their output captured line by line, stopped
//! by signal, and never left behind (a `Proc` that is dropped while running is killed).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rustix::process::{Pid, Signal, kill_process};

/// A running child whose stdout lines arrive on a channel.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Child,
    pub lines: mpsc::Receiver<String>,
    pub stdin: Option<ChildStdin>,
}

impl Proc {
    /// Starts `cmd` with stdout captured (lines on [`Proc::lines`]) and stderr appended to
    /// `log`. With `keep_stdin`, the child's stdin is a pipe the caller can close.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, keep_stdin: bool) -> Result<Proc> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .stdin(if keep_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: no stdout"))?;
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.to_owned(),
            child,
            lines: rx,
            stdin,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line for which `f` returns `Some`, up to `timeout`.
    pub fn wait_line<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = f(&line) {
                        return Ok(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("{}: timed out waiting for its output", self.name)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!(
                        "{}: exited ({:?}) before printing what was expected",
                        self.name,
                        self.child.try_wait().ok().flatten()
                    )
                }
            }
        }
    }

    /// Sends `sig`; ignores a child that already exited.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, sig);
        }
    }

    /// Closes the child's stdin (the floor client exits on it).
    pub fn close_stdin(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.flush();
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the child to exit; kills it after that. Returns its exit
    /// status if it exited by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return None,
            }
        }
        eprintln!("{} did not exit within {timeout:?}: killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// SIGTERM, then wait; true if it exited with success.
    pub fn stop(&mut self, timeout: Duration) -> bool {
        self.signal(Signal::TERM);
        self.wait(timeout).is_some_and(|s| s.success())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a command to completion with optional stdin text; fails on a non-zero exit.
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Result<String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    if let (Some(text), Some(mut s)) = (stdin, child.stdin.take()) {
        s.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
