//! One module per subcommand; each turns its clap arguments into library
//! calls and one report for `output`.

pub mod export;
pub mod import;
pub mod ls;

use crate::cli::{Cli, Command};
use crate::Outcome;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Show(_) | Command::Cat(_) | Command::GenerateDocs { .. } => {
            anyhow::bail!("not built yet")
        }
    }
}
