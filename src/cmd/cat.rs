//! `kvc cat`: the stored text, raw, for pipes (`kvc cat 3fa2 | less -R`
//! is the user's explicit choice). Raw prompt text can carry escape
//! sequences, so it never goes to a terminal unless `--force` says so.

use crate::cli::CatArgs;
use crate::config;
use anyhow::{bail, Context, Result};
use kvc::format::checkpoint::CheckpointFile;
use kvc::resolve;
use std::io::{self, IsTerminal, Write};

use crate::Outcome;

pub fn run(args: CatArgs) -> Result<Outcome> {
    let located = resolve::locate(&args.key, args.dir.get().as_deref(), config::default_dir)?;
    let path = located.path;
    let stdout = io::stdout();
    if stdout.is_terminal() && !args.force {
        bail!(
            "{}: refusing to write raw prompt text to a terminal (escape sequences in it would \
             drive the terminal); pipe it, pass --force, or use `kvc show --text` for a safe view",
            path.display()
        );
    }
    let cf = CheckpointFile::open_named(&path, !located.in_cache)
        .and_then(|cf| {
            cf.check_envelope()?;
            Ok(cf)
        })
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // Streamed: the text is never held, whatever its length.
    let mut out = stdout.lock();
    let mut write_err = None;
    let streamed = cf.stream_text(&mut |piece| {
        out.write_all(piece).inspect_err(|e| {
            write_err = Some(e.kind());
        })
    });
    match (streamed, write_err) {
        // A closed pipe (`kvc cat | head`) is the reader's choice.
        (Err(e), Some(_)) => return Err(e.into()),
        (Err(e), None) => return Err(e).with_context(|| path.display().to_string()),
        (Ok(()), _) => {}
    }
    out.flush()?;
    Ok(Outcome::Clean)
}
