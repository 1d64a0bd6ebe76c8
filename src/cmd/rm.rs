//! `kvc rm KEY...`: remove named checkpoints (`kvc::rm`).

use crate::cli::RmArgs;
use crate::config;
use crate::confirm::{self, LimitView};
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{bail, Result};
use comfy_table::Cell;
use kvc::code::Code;
use kvc::guard::Deletion;
use kvc::rm::{self, RmFate, Target};
use kvc::text::sanitize_line;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct TargetView {
    key: String,
    file: String,
    path: String,
    size: u64,
    /// Header fields, null when the file has no readable header.
    reason: Option<String>,
    tokens: Option<u32>,
    hits: Option<u32>,
    /// Defect code when the file is not a valid checkpoint.
    invalid: Option<Code>,
    /// `planned` (dry run), `removed`, `vanished`, `failed`.
    outcome: Code,
    detail: Option<String>,
}

impl TargetView {
    fn new(t: &Target, fate: Option<&RmFate>) -> TargetView {
        TargetView {
            key: t.key.to_string(),
            file: sanitize_line(t.file.as_bytes()),
            path: sanitize_line(t.path.as_os_str().as_encoded_bytes()),
            size: t.size,
            reason: t.header.as_ref().map(|h| h.reason.name().into_owned()),
            tokens: t.header.as_ref().map(|h| h.tokens),
            hits: t.header.as_ref().map(|h| h.hits),
            invalid: t.invalid.as_ref().map(|(code, _)| *code),
            outcome: fate.map_or(Code::Planned, RmFate::code),
            detail: match fate {
                Some(RmFate::Failed(e)) => Some(e.clone()),
                Some(RmFate::Changed(c)) => Some(format!(
                    "{c} since it was resolved; left alone, run the command again"
                )),
                Some(RmFate::Removed { unsynced: Some(e) }) => Some(format!(
                    "removed, but not durable yet: the directory's fsync failed ({e})"
                )),
                _ => None,
            },
        }
    }
}

#[derive(Serialize)]
struct RmReport {
    dry_run: bool,
    checkpoints: Vec<TargetView>,
    /// Bytes removed, or that would be.
    freed_bytes: u64,
    /// `--max-delete`, the share of the directories the files are, and
    /// whether that is within it; `null` without `--max-delete`.
    limit: Option<LimitView>,
}

/// What removing `targets` deletes, against the bytes of their
/// directories (each counted once).
fn deletion(targets: &[Target]) -> Result<Deletion> {
    let mut dirs: Vec<&std::path::Path> = targets.iter().map(|t| t.dir.as_path()).collect();
    dirs.sort();
    dirs.dedup();
    let mut base = 0;
    for d in dirs {
        base += kvc::guard::dir_bytes(d)?;
    }
    Ok(Deletion {
        files: targets.len(),
        bytes: targets.iter().map(|t| t.size).sum(),
        base,
    })
}

impl Report for RmReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut t = output::table(&["OUTCOME", "KEY", "REASON", "TOKENS", "SIZE", "NOTE"]);
        for c in &self.checkpoints {
            let note = match (&c.detail, c.invalid) {
                (Some(d), _) => d.clone(),
                (None, Some(code)) => format!("invalid: {code}"),
                (None, None) => String::new(),
            };
            t.add_row([
                Cell::new(if self.dry_run {
                    "would remove"
                } else {
                    c.outcome.name()
                }),
                Cell::new(output::short_key(&c.key)),
                Cell::new(c.reason.as_deref().unwrap_or("-")),
                Cell::new(c.tokens.map_or("-".into(), |n| n.to_string())),
                Cell::new(output::size(c.size)),
                Cell::new(note),
            ]);
        }
        align_right(&mut t, &[3, 4]);
        output::write_table(out, &t)?;
        let n = if self.dry_run {
            self.checkpoints.len()
        } else {
            self.checkpoints
                .iter()
                .filter(|c| c.outcome == Code::Removed)
                .count()
        };
        writeln!(
            out,
            "{} {n} {}, {}",
            if self.dry_run {
                "would remove"
            } else {
                "removed"
            },
            if n == 1 { "file" } else { "files" },
            output::size(self.freed_bytes)
        )
    }
}

pub fn run(args: RmArgs) -> Result<Outcome> {
    // Paths need no cache directory; keys do (asked for only then).
    let (keys, dir) = config::keys_and_dir(args.keys, args.dir.dir, false)?;
    let targets = rm::plan(
        dir.as_deref(),
        config::default_dir,
        &keys,
        args.agent.include_agent,
    )?;
    let limit = confirm::limit(&args.write, None);
    let d = deletion(&targets)?;
    // The directory a share is of: the one directory, or the first.
    let dir = targets
        .first()
        .map_or_else(|| ".".into(), |t| t.dir.clone());
    let over = d.check(&dir, limit);
    if !args.write.dry_run.dry_run {
        d.check(&dir, limit)?;
        confirm::confirm("rm", &dir, &d, &args.write)?;
    }
    let (views, freed) = if args.write.dry_run.dry_run {
        let views: Vec<_> = targets.iter().map(|t| TargetView::new(t, None)).collect();
        (views, targets.iter().map(|t| t.size).sum())
    } else {
        let mut session = config::session("rm", args.clock.now, args.write.wait.wait)?;
        let fates = rm::apply(&mut session, &targets, &mut rm::NoHooks)?;
        let freed = targets
            .iter()
            .zip(&fates)
            .filter(|(_, f)| f.is_removed())
            .map(|(t, _)| t.size)
            .sum();
        let views = targets
            .iter()
            .zip(&fates)
            .map(|(t, f)| TargetView::new(t, Some(f)))
            .collect();
        (views, freed)
    };
    let report = RmReport {
        dry_run: args.write.dry_run.dry_run,
        checkpoints: views,
        freed_bytes: freed,
        limit: LimitView::new(limit, &d),
    };
    if !args.write.quiet {
        output::emit(&report, args.output.json)?;
    }
    let unsynced = output::report_unsynced(
        report
            .checkpoints
            .iter()
            .filter(|c| c.outcome == Code::Removed)
            .filter_map(|c| Some((c.path.as_str(), c.detail.as_deref()?))),
    );
    let failed = output::report_removal_failures(
        report
            .checkpoints
            .iter()
            .filter(|c| matches!(c.outcome, Code::Failed | Code::Changed))
            .map(|c| (c.path.as_str(), c.detail.as_deref())),
    );
    if failed > 0 {
        bail!("{failed} of {} files not removed", report.checkpoints.len());
    }
    if let (true, Err(e)) = (args.write.dry_run.dry_run, over) {
        eprintln!("kvc: {e} (a real run would stop here)");
        return Ok(Outcome::Refused);
    }
    Ok(if unsynced > 0 {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}
