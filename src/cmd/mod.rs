//! One module per subcommand; each turns its clap arguments into library
//! calls and one report for `output`.

pub mod evict;
pub mod gc;
pub mod log;
pub mod ls;
pub mod rm;

use crate::cli::{Cli, Command};
use crate::Outcome;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Evict(args) => evict::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Log(args) => log::run(args),
        Command::Show(_) | Command::Cat(_) | Command::GenerateDocs { .. } => {
            anyhow::bail!("not built yet")
        }
    }
}
