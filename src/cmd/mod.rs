//! One module per subcommand; each turns its clap arguments into library
//! calls and one report for `output`.

pub mod ls;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::Outcome;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Show(_) | Command::Cat(_) | Command::GenerateDocs { .. } => {
            anyhow::bail!("not built yet")
        }
    }
}
