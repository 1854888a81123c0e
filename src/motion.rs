//! `nvr motion reindex`: argument handling and the progress bar around the application
//! layer's reindex.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use nvr_app::Actor;
use nvr_core::Time90k;

use crate::cli::{MotionCommand, MotionReindexArgs};
use crate::commands::{app_error, offline_app};
use crate::config;

/// Width of the progress bar, in characters.
const BAR_WIDTH: u64 = 30;

pub fn run(command: MotionCommand) -> anyhow::Result<ExitCode> {
    match command {
        MotionCommand::Reindex(a) => reindex(&a),
    }
}

fn reindex(a: &MotionReindexArgs) -> anyhow::Result<ExitCode> {
    let (cfg, dir) = config::resolve(&a.dir)?;
    let app = offline_app(&cfg, &dir)?;
    let row = app.camera_named(&a.camera).map_err(app_error)?;
    let time = |v: &str, what: &str| {
        Time90k::parse_rfc3339(v).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
    };
    let (start, end) = (time(&a.start, "start")?, time(&a.end, "end")?);
    let tty = std::io::stderr().is_terminal();
    let mut last_drawn = None;
    let mut progress = |done: u64, total: u64| {
        // On a terminal a bar redrawn in place; otherwise a line per tenth (logs stay short).
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if !tty && last_drawn == Some(tenth) {
            return;
        }
        last_drawn = Some(tenth);
        let filled = (done * BAR_WIDTH).checked_div(total).unwrap_or(BAR_WIDTH);
        let bar: String = (0..BAR_WIDTH)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r[{bar}] {done}/{total} segments")
        } else {
            writeln!(err, "[{bar}] {done}/{total} segments")
        };
        let _ = err.flush();
    };
    let out = app
        .reindex_motion(&Actor::cli(), row.id, start, end, &mut progress)
        .map_err(app_error)?;
    if tty {
        eprintln!();
    }
    println!(
        "reindexed {} segments of camera {} ({} frames analysed, {} seconds with motion){}",
        out.segments,
        row.name,
        out.frames_analysed,
        out.seconds_with_motion,
        if out.segments_failed > 0 {
            format!("; {} segments could not be decoded", out.segments_failed)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
