//! The `kvc` binary: parses the command line, runs one subcommand, and maps
//! the outcome to the exit code contract: 0 success, 1 the command ran and
//! found problems, 2 usage or I/O error (clap itself exits 2 on bad usage),
//! and two additions to that contract, so that cron can tell "busy" and
//! "refused" from "broken": 3, a writing command gave up waiting for
//! another kvc's lock (`--wait`); 4, a deleting command refused its plan
//! (over `--max-delete` or `kvc evict`'s own limit, or not confirmed at
//! the prompt) and deleted nothing.

#![deny(clippy::undocumented_unsafe_blocks)]

mod cli;
mod cmd;
mod config;
mod confirm;
mod output;

use clap::{CommandFactory, Parser};
use std::io;
use std::process::ExitCode;

/// What a subcommand reports back to `main`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Clean,
    /// Exit 1: the command ran and found problems.
    Problems,
    /// Exit 4: a dry run whose plan a real run would refuse (the reason
    /// is on stderr).
    Refused,
}

fn main() -> ExitCode {
    // `COMPLETE=bash kvc -- kvc show 3fa2`: clap's completion protocol
    // (the script `kvc completions --dynamic bash` registers). Answers and
    // exits when $COMPLETE is set; otherwise does nothing.
    clap_complete::CompleteEnv::with_factory(cli::Cli::command).complete();
    let cli = cli::Cli::parse();
    output::set_color(cli.color);
    match cmd::run(cli) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Ok(Outcome::Refused) => ExitCode::from(4),
        Err(e) => {
            // `kvc ls | head` closing the pipe early is not an error.
            if e.chain()
                .filter_map(|c| c.downcast_ref::<io::Error>())
                .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("kvc: {e:#}");
            let lib = || e.chain().filter_map(|c| c.downcast_ref::<kvc::Error>());
            let busy = lib().any(|k| matches!(k, kvc::Error::LockTimeout { .. }));
            let refused = lib().any(|k| matches!(k, kvc::Error::OverLimit { .. }))
                || e.chain().any(|c| c.is::<confirm::Declined>());
            ExitCode::from(match (busy, refused) {
                (true, _) => 3,
                (_, true) => 4,
                _ => 2,
            })
        }
    }
}
