//! The `nvr` binary: command-line parsing and wiring of the crates into a recorder.

mod cli;
mod commands;
mod config;
mod demo;
mod doctor;
mod keys;
mod logging;
mod motion;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: "what we did: why it failed".
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
