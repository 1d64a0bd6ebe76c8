//! The guard of the commands that delete (`evict`, `rm`, `gc`): the limit
//! a run applies (`--max-delete`, else the command's own), and on a
//! terminal a question before a large share of a directory goes.
//!
//! Both stop a run before anything is deleted, with exit status 4: cron
//! (no terminal, so never a question) tells "refused" from "failed" (2)
//! and from "ran and found problems" (1).

use crate::cli::WriteArgs;
use anyhow::Result;
use kvc::guard::{Deletion, Limit, MaxDelete};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;

/// What `kvc evict` deletes at most without `--max-delete` or `--yes`: a
/// mistyped budget (`1GiB` for `100GiB`) would empty most of a cache.
pub const EVICT_DEFAULT: MaxDelete = MaxDelete::Percent(50.0);

/// On a terminal, a run deleting more than this share of a directory (in
/// percent of its bytes) asks first.
pub const CONFIRM_PERCENT: f64 = 10.0;

/// The answer at the prompt was not yes: nothing was deleted (exit 4).
#[derive(Debug)]
pub struct Declined {
    pub dir: String,
}

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: not confirmed; nothing was deleted", self.dir)
    }
}

impl std::error::Error for Declined {}

/// The limit of a run: `--max-delete`, else the command's own `default`
/// unless `--yes`.
pub fn limit(args: &WriteArgs, default: Option<MaxDelete>) -> Option<Limit> {
    match (args.max_delete, default) {
        (Some(max), _) => Some(Limit {
            max,
            default: false,
        }),
        (None, Some(max)) if !args.yes => Some(Limit { max, default: true }),
        _ => None,
    }
}

/// Before a real run deletes `d` from `dir`: on a terminal (standard input
/// and standard error both), unless `--yes` or the share is small, ask.
/// Anything but `y` or `yes` declines.
pub fn confirm(command: &str, dir: &Path, d: &Deletion, args: &WriteArgs) -> Result<()> {
    if args.yes
        || args.dry_run.dry_run
        || d.files == 0
        || d.percent() <= CONFIRM_PERCENT
        || !io::stdin().is_terminal()
        || !io::stderr().is_terminal()
    {
        return Ok(());
    }
    let shown = kvc::text::sanitize_line(dir.as_os_str().as_encoded_bytes());
    let mut err = io::stderr().lock();
    write!(
        err,
        "kvc {command}: delete {} in {shown}? [y/N] ",
        d.describe()
    )?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Declined { dir: shown }.into()),
    }
}

/// The `limit` object of a deleting command's JSON: the limit applied,
/// whose it is, and whether the plan is within it.
#[derive(serde::Serialize)]
pub struct LimitView {
    /// `50%`, `10 GiB`, `100 files`.
    pub max: String,
    /// The command's own limit (`kvc evict`'s 50%), not `--max-delete`.
    pub default: bool,
    /// The plan's share of the directory's bytes, in percent.
    pub percent: f64,
    pub within: bool,
}

impl LimitView {
    pub fn new(limit: Option<Limit>, d: &Deletion) -> Option<LimitView> {
        limit.map(|l| LimitView {
            max: l.max.to_string(),
            default: l.default,
            percent: (d.percent() * 100.0).round() / 100.0,
            within: l.max.allows(d),
        })
    }
}
