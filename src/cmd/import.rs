//! `kvc import`: install the checkpoints of a bundle (format and checks in
//! `kvc::bundle`).

use super::export::Bar;
use crate::cli::ImportArgs;
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use comfy_table::Cell;
use kvc::bundle::{self, Action, BudgetOptions, ImportOptions, ImportReport, Progress};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Write};
use std::os::fd::AsFd;

/// Entries per action (`counts` in the JSON).
#[derive(Serialize)]
pub(crate) struct Counts {
    installed: usize,
    replaced: usize,
    present: usize,
    skipped: usize,
    rejected: usize,
}

impl Counts {
    /// The entries of each outcome, counted by `count` (an import's or a
    /// pull's report: both install through the same session).
    pub(crate) fn of(count: impl Fn(Action) -> usize) -> Counts {
        Counts {
            installed: count(Action::Installed),
            replaced: count(Action::Replaced),
            present: count(Action::Present),
            skipped: count(Action::Skipped),
            rejected: count(Action::Rejected),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} installed, {} replaced, {} present, {} skipped, {} rejected",
            self.installed, self.replaced, self.present, self.skipped, self.rejected
        )
    }
}

#[derive(Serialize)]
struct ImportView {
    dir: String,
    /// The bundle file, or `-` for standard input.
    source: String,
    #[serde(flatten)]
    report: ImportReport,
    counts: Counts,
    /// Bytes written into the directory (installed and replaced).
    bytes_written: u64,
}

/// An outcome as a table shows it (`would …` in a dry run).
pub(crate) fn action_word(a: Action, dry_run: bool) -> &'static str {
    match (a, dry_run) {
        (Action::Installed, false) => "installed",
        (Action::Installed, true) => "would install",
        (Action::Replaced, false) => "replaced",
        (Action::Replaced, true) => "would replace",
        (Action::Present, _) => "present",
        (Action::Skipped, false) => "skipped",
        (Action::Skipped, true) => "would skip",
        (Action::Rejected, _) => "rejected",
    }
}

impl Report for ImportView {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.report;
        let mut t = output::table(&["ACTION", "ENTRY", "SIZE", "NOTE"]);
        for e in &r.entries {
            t.add_row(vec![
                Cell::new(action_word(e.action, r.dry_run)),
                Cell::new(&e.entry),
                Cell::new(e.size.map(output::size).unwrap_or_default()),
                Cell::new(e.message.as_deref().unwrap_or("")),
            ]);
        }
        align_right(&mut t, &[2]);
        if !r.entries.is_empty() {
            output::write_table(out, &t)?;
        }
        let c = &self.counts;
        if r.dry_run {
            write!(out, "dry run, nothing written: ")?;
        }
        writeln!(
            out,
            "{c}; {} {} {}",
            output::size(self.bytes_written),
            if r.dry_run {
                "would be written to"
            } else {
                "written to"
            },
            self.dir
        )?;
        if r.truncated {
            writeln!(
                out,
                "the bundle was cut off or broken: entries after the cut were not seen"
            )?;
        }
        if let Some(b) = &r.budget {
            write_budget(out, b, r.dry_run)?;
            for e in &b.evicted {
                writeln!(
                    out,
                    "  evict {} {} ({})",
                    e.key,
                    output::size(e.size),
                    e.reason
                )?;
            }
            if !b.met {
                writeln!(
                    out,
                    "budget not met: the imported checkpoints and agent saves alone exceed it"
                )?;
            }
        }
        Ok(())
    }
}

/// The `--budget` line of an import's or a pull's report.
pub(crate) fn write_budget(
    out: &mut dyn Write,
    b: &bundle::BudgetOutcome,
    dry_run: bool,
) -> io::Result<()> {
    let freed: u64 = b.evicted.iter().map(|e| e.size).sum();
    writeln!(
        out,
        "budget {} ({}): {} {} checkpoint{} ({}); {} of checkpoints {}",
        output::size(b.budget),
        b.policy,
        if dry_run { "would evict" } else { "evicted" },
        b.evicted.len(),
        if b.evicted.len() == 1 { "" } else { "s" },
        output::size(freed),
        output::size(b.bytes_after),
        if dry_run { "after" } else { "now" },
    )
}

/// `--policy`, else the policy of the engine that reads the target
/// directory, as `kvc evict` chooses it (`kvc import` and `kvc pull`).
pub(crate) fn budget_policy(
    dir: &std::path::Path,
    args: crate::cli::PolicyArgs,
) -> Result<kvc::Policy> {
    if let Some(p) = args.policy() {
        return Ok(p);
    }
    let engine = match args.engine.engine() {
        Some(e) => e,
        None if dir.is_dir() => {
            kvc::scan_dir(dir, kvc::ScanOptions::default())?
                .engine
                .engine
        }
        None => kvc::format::Engine::Ds4,
    };
    Ok(kvc::Policy::for_engine(engine))
}

pub fn run(args: ImportArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.get())?;
    let now = config::now_or_clock(args.policy.now)?;
    let from_stdin = args.source.as_os_str() == "-";
    let opts = ImportOptions {
        on_conflict: args.on_conflict.into(),
        reset_stats: args.reset_stats,
        now,
        dry_run: args.dry_run.dry_run,
        source: if from_stdin {
            "standard input".into()
        } else {
            args.source.display().to_string()
        },
        budget: match args.budget {
            Some(bytes) => Some(BudgetOptions {
                bytes,
                policy: budget_policy(&dir, args.policy)?,
            }),
            None => None,
        },
        include_agent: args.include_agent,
        engine: args.policy.engine.engine(),
    };
    let mut bar = Bar::new("import");
    let input = if from_stdin {
        if io::stdin().is_terminal() {
            bail!("standard input is a terminal: pipe a bundle in (kvc export ... -o - | kvc import -)");
        }
        bar.begin(None);
        let fd = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("standard input")?;
        kvc::fsutil::grow_pipe(fd.as_fd());
        File::from(fd)
    } else {
        let f = File::open(&args.source)
            .with_context(|| format!("{}: cannot open", args.source.display()))?;
        bar.begin(f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()));
        f
    };
    let reader = BufReader::with_capacity(bundle::CHUNK, input);
    // The plan is read-only; the dry run reads the stream with no session,
    // a real run applies the plan in one.
    let plan = bundle::install::plan(&dir, &opts)?;
    let report = if opts.dry_run {
        bundle::install::dry_run(&plan, reader, &mut bar)?
    } else {
        let mut session = config::session("import", Some(now), args.wait.wait)?;
        bundle::install::apply(&mut session, &plan, reader, &mut bar)?
    };
    let problems = report.has_problems();
    let view = ImportView {
        dir: dir.display().to_string(),
        source: args.source.display().to_string(),
        counts: Counts::of(|a| report.count(a)),
        bytes_written: report.bytes_written(),
        report,
    };
    output::emit(&view, args.output.json)?;
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}
