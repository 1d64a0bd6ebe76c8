//! `kvc completions SHELL`: the completion script, generated from the one
//! clap definition (the same one `completions/` is generated from).

use crate::cli::{Cli, CompletionsArgs};
use crate::Outcome;
use anyhow::Result;
use clap::CommandFactory;
use std::io::{self, Write};

pub fn run(args: CompletionsArgs) -> Result<Outcome> {
    let mut out = io::stdout().lock();
    clap_complete::generate(args.shell, &mut Cli::command(), "kvc", &mut out);
    out.flush()?;
    Ok(Outcome::Clean)
}
