//! One module per subcommand; each turns its clap arguments into library
//! calls and one report for `output`.

pub mod ls;
pub mod trailer;

use crate::cli::{Cli, Command};
use crate::Outcome;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Trailer(cmd) => trailer::run(cmd),
        Command::Show(_) | Command::Cat(_) | Command::GenerateDocs { .. } => {
            anyhow::bail!("not built yet")
        }
    }
}
