//! One module per subcommand; each turns its clap arguments into library
//! calls and one report for `output`.

pub mod cat;
pub mod ls;
pub mod show;
pub mod trailer;

use crate::cli::{Cli, Command};
use crate::Outcome;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Show(args) => show::run(args),
        Command::Cat(args) => cat::run(args),
        Command::Trailer(cmd) => trailer::run(cmd),
    }
}
