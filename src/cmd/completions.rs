//! `kvc completions SHELL`: the completion script, generated from the one
//! clap definition (the same one `completions/` is generated from).
//! `--dynamic`: the registration script of clap's dynamic completion
//! instead, which calls kvc back (`COMPLETE=SHELL kvc -- WORDS`, answered
//! in `main`) to complete keys from the cache directory and sizes.

use crate::cli::{Cli, CompletionsArgs};
use crate::Outcome;
use anyhow::{anyhow, Result};
use clap::CommandFactory;
use std::io::{self, Write};

pub fn run(args: CompletionsArgs) -> Result<Outcome> {
    let mut out = io::stdout().lock();
    if args.dynamic {
        let name = args.shell.to_string();
        let shells = clap_complete::env::Shells::builtins();
        let shell = shells
            .completer(&name)
            .ok_or_else(|| anyhow!("no dynamic completion for {name}"))?;
        // The script calls back the kvc found on PATH when it runs, as it
        // would call any command.
        shell.write_registration("COMPLETE", "kvc", "kvc", "kvc", &mut out)?;
    } else {
        clap_complete::generate(args.shell, &mut Cli::command(), "kvc", &mut out);
    }
    out.flush()?;
    Ok(Outcome::Clean)
}
