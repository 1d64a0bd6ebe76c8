//! `kvc evict`: keep a cache within a budget, from cron, beside a live
//! engine. Planning and deletion are `kvc::evict`; this module turns the
//! flags into options and the result into one report.

use crate::cli::EvictArgs;
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{bail, Result};
use comfy_table::Cell;
use indicatif::{ProgressBar, ProgressStyle};
use kvc::evict::{self, EvictOptions, EvictResult, Fate, Hooks, Plan, Victim, Why};
use kvc::text::sanitize_line;
use kvc::Key;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};
use std::path::Path;

#[derive(Serialize)]
struct VictimView {
    key: String,
    file: String,
    reason: String,
    tokens: u32,
    hits: u32,
    size: u64,
    created: u64,
    last_used: u64,
    score: Option<f64>,
    superseded: bool,
    why: Why,
    /// `planned` (dry run), `deleted`, `vanished`, `touched`, `invalid`, `failed`.
    outcome: &'static str,
    /// Why a victim was not deleted, for people.
    detail: Option<String>,
    /// `Header::used_time`, for the USED column.
    #[serde(skip)]
    used: u64,
}

impl VictimView {
    fn is_problem(&self) -> bool {
        matches!(self.outcome, "invalid" | "failed")
    }

    fn new(v: &Victim, fate: Option<&Fate>) -> VictimView {
        VictimView {
            key: v.key.to_string(),
            file: sanitize_line(v.file.as_bytes()),
            reason: v.header.reason.name().into_owned(),
            tokens: v.header.tokens,
            hits: v.header.hits,
            size: v.size,
            created: v.header.created,
            last_used: v.header.last_used,
            score: v.score,
            superseded: v.superseded,
            why: v.why,
            outcome: fate.map_or("planned", Fate::code),
            detail: fate.map(Fate::detail).filter(|d| !d.is_empty()),
            used: v.header.used_time(),
        }
    }
}

/// The plan (`--dry-run`) or what was done: one schema (README.md).
#[derive(Serialize)]
struct EvictReport {
    dir: String,
    dry_run: bool,
    policy: &'static str,
    now: u64,
    budget: Option<u64>,
    /// `--older-than` in seconds.
    older_than: Option<u64>,
    /// Valid checkpoints before, and their bytes.
    checkpoints: usize,
    checkpoint_bytes: u64,
    /// Checkpoints never picked (agent saves, `--protect`), and their bytes.
    protected: usize,
    protected_bytes: u64,
    /// In order: planned victims, or every victim handled with its outcome.
    victims: Vec<VictimView>,
    /// Bytes the plan frees, or bytes deleted.
    freed_bytes: u64,
    checkpoints_after: usize,
    checkpoint_bytes_after: u64,
    budget_met: bool,
    /// Plans carried out (more than 1 when the engine touched a victim).
    passes: usize,
    /// Stopped after too many re-plans.
    gave_up: bool,
}

impl EvictReport {
    fn header(plan: &Plan, dry_run: bool) -> EvictReport {
        let o = &plan.options;
        EvictReport {
            dir: plan.dir.display().to_string(),
            dry_run,
            policy: o.policy.name(),
            now: o.now,
            budget: o.budget,
            older_than: o.older_than,
            checkpoints: plan.checkpoints,
            checkpoint_bytes: plan.checkpoint_bytes,
            protected: plan.protected,
            protected_bytes: plan.protected_bytes,
            victims: Vec::new(),
            freed_bytes: 0,
            checkpoints_after: plan.checkpoints,
            checkpoint_bytes_after: plan.checkpoint_bytes,
            budget_met: plan.budget_met(),
            passes: 1,
            gave_up: false,
        }
    }

    fn of_plan(plan: &Plan) -> EvictReport {
        EvictReport {
            victims: plan
                .victims
                .iter()
                .map(|v| VictimView::new(v, None))
                .collect(),
            freed_bytes: plan.bytes_to_free(),
            checkpoints_after: plan.checkpoints - plan.victims.len(),
            checkpoint_bytes_after: plan.bytes_after(),
            ..EvictReport::header(plan, true)
        }
    }

    fn of_result(r: &EvictResult) -> EvictReport {
        EvictReport {
            victims: r
                .handled
                .iter()
                .map(|h| VictimView::new(&h.victim, Some(&h.fate)))
                .collect(),
            freed_bytes: r.freed_bytes(),
            checkpoints_after: r.checkpoints_after,
            checkpoint_bytes_after: r.bytes_after,
            protected: r.protected,
            protected_bytes: r.protected_bytes,
            budget_met: r.budget_met(),
            passes: r.passes,
            gave_up: r.gave_up,
            ..EvictReport::header(&r.first_plan, false)
        }
    }

    /// Problems worth an exit status of 1, one line each.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.gave_up {
            out.push(format!(
                "stopped after {} plans: the engine kept using the checkpoints picked; run again later",
                self.passes
            ));
        }
        if !self.budget_met {
            if let Some(b) = self.budget {
                out.push(format!(
                    "budget {} not met: {} left, {} of it in {} protected checkpoints{}",
                    output::size(b),
                    output::size(self.checkpoint_bytes_after),
                    output::size(self.protected_bytes),
                    self.protected,
                    if self.protected > 0 {
                        " (see --include-agent, --protect)"
                    } else {
                        ""
                    }
                ));
            }
        }
        for v in &self.victims {
            if v.is_problem() {
                out.push(format!(
                    "{}: {}",
                    v.file,
                    v.detail.as_deref().unwrap_or(v.outcome)
                ));
            }
        }
        out
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Report for EvictReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut criteria = vec![format!("policy {}", self.policy)];
        if let Some(b) = self.budget {
            criteria.push(format!("budget {}", output::size(b)));
        }
        if let Some(d) = self.older_than {
            criteria.push(format!(
                "older than {}",
                humantime::format_duration(std::time::Duration::from_secs(d))
            ));
        }
        writeln!(
            out,
            "{}{} ({}): {}, {}",
            if self.dry_run { "plan for " } else { "" },
            self.dir,
            criteria.join(", "),
            plural(self.checkpoints, "checkpoint", "checkpoints"),
            output::size(self.checkpoint_bytes)
        )?;
        if !self.victims.is_empty() {
            let mut header = Vec::new();
            if !self.dry_run {
                header.push("OUTCOME");
            }
            header.extend([
                "KEY", "REASON", "TOKENS", "SIZE", "HITS", "USED", "SCORE", "WHY",
            ]);
            let mut t = output::table(&header);
            for v in &self.victims {
                let mut row = Vec::new();
                if !self.dry_run {
                    row.push(Cell::new(v.outcome));
                }
                row.extend([
                    Cell::new(output::short_key(&v.key)),
                    Cell::new(&v.reason),
                    Cell::new(v.tokens),
                    Cell::new(output::size(v.size)),
                    Cell::new(v.hits),
                    Cell::new(output::ago(v.used, self.now)),
                    Cell::new(output::score(v.score)),
                    Cell::new(v.why.names().join(",")),
                ]);
                t.add_row(row);
            }
            let shift = usize::from(!self.dry_run);
            align_right(&mut t, &[2 + shift, 3 + shift, 4 + shift]);
            output::write_table(out, &t)?;
            // Invalid and failed victims are problems, reported on stderr.
            for v in self
                .victims
                .iter()
                .filter(|v| v.detail.is_some() && !v.is_problem())
            {
                writeln!(
                    out,
                    "{}: {}",
                    v.file,
                    v.detail.as_deref().unwrap_or_default()
                )?;
            }
        }
        if self.dry_run {
            if self.victims.is_empty() {
                writeln!(out, "nothing to evict")?;
            } else {
                writeln!(
                    out,
                    "would free {} in {}, leaving {}",
                    output::size(self.freed_bytes),
                    plural(self.victims.len(), "checkpoint", "checkpoints"),
                    output::size(self.checkpoint_bytes_after)
                )?;
            }
        } else {
            let deleted = self
                .victims
                .iter()
                .filter(|v| v.outcome == "deleted")
                .count();
            writeln!(
                out,
                "freed {} in {}; {} left in {}",
                output::size(self.freed_bytes),
                plural(deleted, "checkpoint", "checkpoints"),
                output::size(self.checkpoint_bytes_after),
                plural(self.checkpoints_after, "checkpoint", "checkpoints"),
            )?;
        }
        Ok(())
    }
}

/// A progress bar over the deletions, on stderr, only for a person.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(show: bool) -> Progress {
        Progress {
            bar: (show && io::stderr().is_terminal()).then(ProgressBar::hidden),
        }
    }
}

impl Hooks for Progress {
    fn planned(&mut self, plan: &Plan) {
        if let Some(bar) = &mut self.bar {
            // A re-plan starts a fresh bar in place of the last one.
            bar.finish_and_clear();
            *bar = ProgressBar::new(plan.victims.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("evicting {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        }
    }
    fn handled(&mut self, v: &Victim, _fate: &Fate) {
        if let Some(bar) = &self.bar {
            bar.set_message(v.key.short().to_string());
            bar.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `--protect KEY`: the same KEY rules as `show`.
fn protected_keys(dir: &Path, args: &[String]) -> Result<BTreeSet<Key>> {
    let mut keys = BTreeSet::new();
    for arg in args {
        let path = kvc::resolve::resolve(dir, arg)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match Key::from_file_name(&name) {
            Some(k) => keys.insert(k),
            None => bail!(
                "--protect {arg}: {} is not a checkpoint name",
                path.display()
            ),
        };
    }
    Ok(keys)
}

pub fn run(args: EvictArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.clone())?;
    let opts = EvictOptions {
        policy: args.policy.policy().unwrap_or_default(),
        now: config::now_or_clock(args.policy.now)?,
        budget: args.budget,
        older_than: args.older_than.map(|d| d.as_secs()),
        protect: protected_keys(&dir, &args.protect)?,
        include_agent: args.agent.include_agent,
    };
    let report = if args.write.dry_run.dry_run {
        EvictReport::of_plan(&evict::plan_dir(&dir, &opts)?)
    } else {
        let mut progress = Progress::new(!args.write.quiet && !args.output.json);
        EvictReport::of_result(&evict::run(&dir, &opts, &mut progress)?)
    };
    let problems = report.problems();
    if !args.write.quiet {
        output::emit(&report, args.output.json)?;
    }
    for p in &problems {
        eprintln!("kvc: {p}");
    }
    Ok(if problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}
