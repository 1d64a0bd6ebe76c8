//! `kvc man DIR`: the man pages, generated from the one clap definition by
//! the same call that generates `man/` (so the installed pages are the
//! checked-in ones). Each page is renamed into place from a staging
//! directory beside it: a concurrent `man` reads a whole page, old or new.
//! Mode 0644: documentation is for everyone, unlike a cache.

use crate::cli::{Cli, ManArgs};
use crate::Outcome;
use anyhow::Result;
use clap::CommandFactory;
use std::fs;
use std::os::unix::fs::PermissionsExt;

pub fn run(args: ManArgs) -> Result<Outcome> {
    let dir = &args.dir;
    fs::create_dir_all(dir).map_err(|e| kvc::Error::io(dir, e))?;
    let staging = dir.join(format!(".kvc-man-{}", std::process::id()));
    let result = (|| -> Result<usize> {
        fs::create_dir(&staging).map_err(|e| kvc::Error::io(&staging, e))?;
        clap_mangen::generate_to(Cli::command(), &staging)
            .map_err(|e| kvc::Error::io(&staging, e))?;
        let mut n = 0;
        for e in fs::read_dir(&staging).map_err(|e| kvc::Error::io(&staging, e))? {
            let e = e.map_err(|e| kvc::Error::io(&staging, e))?;
            let from = e.path();
            let to = dir.join(e.file_name());
            let f = fs::File::open(&from).map_err(|e| kvc::Error::io(&from, e))?;
            f.set_permissions(fs::Permissions::from_mode(0o644))
                .map_err(|e| kvc::Error::io(&from, e))?;
            f.sync_all().map_err(|e| kvc::Error::io(&from, e))?;
            fs::rename(&from, &to).map_err(|e| kvc::Error::io(&to, e))?;
            n += 1;
        }
        Ok(n)
    })();
    let _ = fs::remove_dir_all(&staging);
    let n = result?;
    eprintln!("kvc: wrote {n} man pages to {}", dir.display());
    Ok(Outcome::Clean)
}
