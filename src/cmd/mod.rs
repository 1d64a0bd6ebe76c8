//! One module per subcommand; each turns its clap arguments into library
//! calls and one report for `output`.

pub mod cat;
pub mod completions;
pub mod evict;
pub mod export;
pub mod gc;
pub mod import;
pub mod log;
pub mod ls;
pub mod man;
pub mod r#match;
pub mod pull;
pub mod push;
pub mod remote;
pub mod report;
pub mod rm;
pub mod show;
pub mod stats;
pub mod trailer;
pub mod tree;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::Outcome;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Show(args) => show::run(args),
        Command::Cat(args) => cat::run(args),
        Command::Trailer(cmd) => trailer::run(cmd),
        Command::Evict(args) => evict::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Tree(args) => tree::run(args),
        Command::Report(args) => report::run(args),
        Command::Log(args) => log::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Match(args) => r#match::run(args),
        Command::Push(args) => push::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Remote(cmd) => remote::run(cmd),
    }
}
