//! The `kvc` binary: parses the command line, runs one subcommand, and maps
//! the outcome to the exit code contract: 0 success, 1 the command ran and
//! found problems, 2 usage or I/O error (clap itself exits 2 on bad usage),
//! and 3, an addition to that contract: a writing command gave up waiting
//! for another kvc's lock (`--wait`), so that cron can tell "busy" from
//! "broken".

#![deny(clippy::undocumented_unsafe_blocks)]

mod cli;
mod cmd;
mod config;
mod output;

use clap::Parser;
use std::io;
use std::process::ExitCode;

/// What a subcommand reports back to `main`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Clean,
    /// Exit 1: the command ran and found problems.
    Problems,
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) => {
            // `kvc ls | head` closing the pipe early is not an error.
            if e.chain()
                .filter_map(|c| c.downcast_ref::<io::Error>())
                .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("kvc: {e:#}");
            let busy = e
                .chain()
                .filter_map(|c| c.downcast_ref::<kvc::Error>())
                .any(|k| matches!(k, kvc::Error::LockTimeout { .. }));
            ExitCode::from(if busy { 3 } else { 2 })
        }
    }
}
