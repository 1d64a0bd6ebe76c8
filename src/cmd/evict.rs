//! `kvc evict`: keep a cache within a budget, from cron, beside a live
//! engine. Planning and deletion are `kvc::evict`; this module turns the
//! flags into options and the result into one report.

use crate::cli::EvictArgs;
use crate::config;
use crate::confirm::{self, LimitView};
use crate::output::{self, Report};
use crate::Outcome;
use anyhow::{bail, Result};
use indicatif::ProgressBar;
use kvc::code::Code;
use kvc::evict::{self, EvictOptions, EvictPlan, EvictResult, Fate, Hooks, Victim, Why};
use kvc::format::dialect::EngineChoice;
use kvc::text::sanitize_line;
use kvc::Key;
use kvc::Policy;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

#[derive(Serialize)]
struct VictimView {
    /// The key, or the file name of a `*.kv` name that is not a checkpoint
    /// name (as the journal names it).
    key: String,
    file: String,
    /// `checkpoint`; under hanzo-engine with `--include-unloadable` also
    /// `invalid` or `stray`.
    kind: &'static str,
    /// Header fields; `null` for an entry that is not a readable checkpoint.
    reason: Option<String>,
    tokens: Option<u32>,
    hits: Option<u32>,
    size: u64,
    created: Option<u64>,
    last_used: Option<u64>,
    score: Option<f64>,
    superseded: bool,
    why: Why,
    /// The title (first user turn, or a ds4-agent session's own), read
    /// from the file when the plan was made; null for an entry that is not
    /// a readable checkpoint, or one a later pass picked.
    title: Option<String>,
    /// `planned` (dry run), `removed`, `vanished`, `touched`, `invalid`, `failed`.
    outcome: Code,
    /// Why a victim was not deleted, for people.
    detail: Option<String>,
    /// `Header::used_time`, for the USED column.
    #[serde(skip)]
    used: Option<u64>,
    /// Removed, but the directory's fsync failed afterwards.
    #[serde(skip)]
    unsynced: bool,
}

impl VictimView {
    fn is_problem(&self) -> bool {
        matches!(self.outcome, Code::Invalid | Code::Failed) || self.unsynced
    }

    fn new(v: &Victim, fate: Option<&Fate>, titles: &Titles) -> VictimView {
        let h = v.header.as_ref();
        VictimView {
            key: sanitize_line(v.name().as_bytes()),
            file: sanitize_line(v.file.as_bytes()),
            kind: v.kind.name(),
            reason: h.map(|h| h.reason.name().into_owned()),
            tokens: h.map(|h| h.tokens),
            hits: h.map(|h| h.hits),
            size: v.size,
            created: h.map(|h| h.created),
            last_used: h.map(|h| h.last_used),
            score: v.score,
            superseded: v.superseded,
            why: v.why,
            title: titles.get(&v.file).cloned(),
            outcome: fate.map_or(Code::Planned, Fate::code),
            detail: fate.map(Fate::detail).filter(|d| !d.is_empty()),
            used: h.map(|h| h.used_time()),
            unsynced: matches!(fate, Some(Fate::Removed { unsynced: Some(_) })),
        }
    }
}

/// The titles of a plan's victims, by file name: read before they are
/// deleted (the plan reads no texts; a listing of victims is short).
type Titles = std::collections::HashMap<String, String>;

fn titles(plan: &EvictPlan) -> Titles {
    plan.victims
        .iter()
        .filter_map(|v| {
            let key = v.key.clone()?;
            let opts = kvc::ScanOptions::texts(Some(plan.engine.engine));
            match kvc::scan::load(&v.path, key, opts) {
                kvc::scan::Loaded::Checkpoint(c) => {
                    Some((v.file.clone(), sanitize_line(c.title()?)))
                }
                _ => None,
            }
        })
        .collect()
}

/// An entry left alone, and why (`kept` in the JSON).
#[derive(Serialize)]
struct KeptView {
    file: String,
    size: u64,
    /// The engine's budget counts it.
    counted: bool,
    /// `not-loaded`, `not-counted-name`, `invalid`, `foreign`, `stray`,
    /// `directory`, `symlink`.
    why: Code,
    /// `payload ABI 0`, `sysprompt.kv`, `invalid: truncated`, …
    detail: String,
    /// `--include-unloadable` deletes it.
    deletable_on_request: bool,
}

/// Checkpoints the directory's engine never loads, counts or evicts (as in
/// `kvc ls --json`).
#[derive(Serialize)]
struct NeverLoaded {
    count: usize,
    bytes: u64,
}

/// The plan (`--dry-run`) or what was done: one schema (doc/GUIDE.md, `kvc evict --json`).
#[derive(Serialize)]
struct EvictReport {
    dir: String,
    dry_run: bool,
    /// The engine whose population and order apply, and how it was chosen.
    engine: EngineChoice,
    policy: &'static str,
    /// `--policy`, or `engine` when it is the engine's own.
    policy_from: &'static str,
    /// What the policy reproduces, with the engine version.
    policy_source: &'static str,
    now: u64,
    /// `--budget` as given.
    budget: Option<u64>,
    /// The budget applied: hanzo-engine's 64 MiB under `lru` when the one
    /// given is smaller.
    budget_applied: Option<u64>,
    /// `--older-than` in seconds.
    older_than: Option<u64>,
    include_unloadable: bool,
    include_agent: bool,
    /// Entries the engine's budget counts, and their bytes before: the
    /// engine's own total, the one the budget is compared with.
    counted: usize,
    counted_bytes: u64,
    /// Counted entries never picked (agent saves, `--protect`), and their bytes.
    protected: usize,
    protected_bytes: u64,
    /// Entries left alone: what the engine never counts, and what it
    /// counts but kvc does not delete.
    kept: Vec<KeptView>,
    kept_bytes: u64,
    never_loaded: NeverLoaded,
    /// Bytes of foreign files and their companions.
    foreign_bytes: u64,
    /// Bytes of every entry of the directory.
    total_bytes: u64,
    /// Superseded waypoints were found at rest (kvc's extension of ds4's test).
    superseded_at_rest: bool,
    /// In order: planned victims, or every victim handled with its outcome.
    victims: Vec<VictimView>,
    /// Bytes the plan frees, or bytes deleted.
    freed_bytes: u64,
    counted_after: usize,
    counted_bytes_after: u64,
    budget_met: bool,
    /// Plans carried out (more than 1 when the engine touched a victim).
    passes: usize,
    /// Stopped after too many re-plans.
    gave_up: bool,
    /// The limit applied (`--max-delete`, else evict's own 50% unless
    /// `--yes`), the plan's share of the directory, and whether it is
    /// within; `null` with `--yes` and no `--max-delete`.
    limit: Option<LimitView>,
    /// A re-plan was cut to stay within the limit.
    limited: bool,
    /// The engine, in a few words, for sentences.
    #[serde(skip)]
    engine_words: &'static str,
    #[serde(skip)]
    policy_min: Option<u64>,
}

impl EvictReport {
    fn header(plan: &EvictPlan, dry_run: bool) -> EvictReport {
        let o = &plan.options;
        EvictReport {
            dir: plan.dir.display().to_string(),
            dry_run,
            engine: plan.engine.clone(),
            policy: plan.policy.name(),
            policy_from: plan.policy_from.name(),
            policy_source: plan.policy.describe(),
            now: o.now,
            budget: o.budget,
            budget_applied: plan.budget,
            older_than: o.older_than,
            include_unloadable: o.include_unloadable,
            include_agent: o.include_agent,
            counted: plan.counted,
            counted_bytes: plan.counted_bytes,
            protected: plan.protected,
            protected_bytes: plan.protected_bytes,
            kept: plan
                .kept
                .iter()
                .map(|k| KeptView {
                    file: sanitize_line(k.file.as_bytes()),
                    size: k.size,
                    counted: k.counted,
                    why: k.why.code(),
                    detail: sanitize_line(k.why.detail().as_bytes()),
                    deletable_on_request: k.deletable_on_request,
                })
                .collect(),
            kept_bytes: plan.kept.iter().map(|k| k.size).sum(),
            never_loaded: NeverLoaded {
                count: plan.never_loaded.0,
                bytes: plan.never_loaded.1,
            },
            foreign_bytes: plan.foreign_bytes,
            total_bytes: plan.total_bytes,
            superseded_at_rest: plan.superseded_at_rest,
            victims: Vec::new(),
            freed_bytes: 0,
            counted_after: plan.counted,
            counted_bytes_after: plan.counted_bytes,
            budget_met: plan.budget_met(),
            passes: 1,
            gave_up: false,
            limit: None,
            limited: false,
            engine_words: plan.engine.engine.describe_short(),
            policy_min: plan.policy.min_budget(),
        }
    }

    fn of_plan(plan: &EvictPlan, titles: &Titles) -> EvictReport {
        EvictReport {
            victims: plan
                .victims
                .iter()
                .map(|v| VictimView::new(v, None, titles))
                .collect(),
            freed_bytes: plan.bytes_to_free(),
            counted_after: plan.counted_after(),
            counted_bytes_after: plan.bytes_after(),
            ..EvictReport::header(plan, true)
        }
    }

    fn of_result(r: &EvictResult, titles: &Titles) -> EvictReport {
        EvictReport {
            victims: r
                .handled
                .iter()
                .map(|h| VictimView::new(&h.victim, Some(&h.fate), titles))
                .collect(),
            freed_bytes: r.freed_bytes(),
            counted_after: r.counted_after,
            counted_bytes_after: r.bytes_after,
            protected: r.protected,
            protected_bytes: r.protected_bytes,
            budget_met: r.budget_met(),
            passes: r.passes,
            gave_up: r.gave_up,
            limited: r.limited,
            ..EvictReport::header(&r.first_plan, false)
        }
    }

    /// Bytes of kept entries the engine counts: kvc will not delete them,
    /// but the budget has to hold them.
    fn kept_counted_bytes(&self) -> u64 {
        self.kept.iter().filter(|k| k.counted).map(|k| k.size).sum()
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
        if self.limited {
            out.push(format!(
                "stopped at the limit ({}): the engine used checkpoints picked, and the next plan wanted more than the limit left",
                self.limit.as_ref().map_or("", |l| l.max.as_str())
            ));
        }
        if !self.budget_met {
            if let Some(b) = self.budget_applied {
                let mut held = Vec::new();
                if self.protected > 0 {
                    held.push(format!(
                        "{} in {} (see --include-agent, --protect)",
                        output::size(self.protected_bytes),
                        plural(
                            self.protected,
                            "protected checkpoint",
                            "protected checkpoints"
                        )
                    ));
                }
                let kept = self.kept_counted_bytes();
                if kept > 0 {
                    held.push(format!(
                        "{} in files kvc keeps that the engine counts",
                        output::size(kept)
                    ));
                }
                let of_which = if held.is_empty() {
                    String::new()
                } else {
                    format!(", of which {}", held.join(" and "))
                };
                out.push(format!(
                    "budget {} not met: {} counted left{of_which}",
                    output::size(b),
                    output::size(self.counted_bytes_after),
                ));
            }
        }
        for v in &self.victims {
            if v.is_problem() {
                out.push(format!(
                    "{}: {}",
                    v.file,
                    v.detail.as_deref().unwrap_or(v.outcome.name())
                ));
            }
        }
        out
    }

    /// `2 payload ABI 0, 1 sysprompt.kv`: kept entries by detail.
    fn kept_summary(kept: &[&KeptView]) -> String {
        let mut groups: Vec<(&str, usize)> = Vec::new();
        for k in kept {
            match groups.iter_mut().find(|(d, _)| *d == k.detail) {
                Some(g) => g.1 += 1,
                None => groups.push((&k.detail, 1)),
            }
        }
        groups
            .iter()
            .map(|(d, n)| format!("{n} {d}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn write_kept(&self, out: &mut dyn Write) -> io::Result<()> {
        let (counted, apart): (Vec<&KeptView>, Vec<&KeptView>) =
            self.kept.iter().partition(|k| k.counted);
        let hint = |group: &[&KeptView]| {
            let n = group.iter().filter(|k| k.deletable_on_request).count();
            let agent =
                if !self.include_agent && group.iter().any(|k| k.why == Code::NotCountedName) {
                    " (sysprompt.kv with --include-agent)"
                } else {
                    ""
                };
            if n == 0 || self.include_unloadable {
                String::new()
            } else if n == group.len() {
                let them = if n == 1 { "it" } else { "them" };
                format!("; --include-unloadable deletes {them}{agent}")
            } else {
                format!("; --include-unloadable deletes {n} of them{agent}")
            }
        };
        if !apart.is_empty() {
            writeln!(
                out,
                "kept: {}, {}, that {} never counts or evicts: {}{}",
                plural(apart.len(), "file", "files"),
                output::size(apart.iter().map(|k| k.size).sum()),
                self.engine_words,
                Self::kept_summary(&apart),
                hint(&apart),
            )?;
        }
        if !counted.is_empty() {
            writeln!(
                out,
                "kept although {} counts them: {}, {}: {}{}",
                self.engine_words,
                plural(counted.len(), "file", "files"),
                output::size(counted.iter().map(|k| k.size).sum()),
                Self::kept_summary(&counted),
                hint(&counted),
            )?;
            if self.engine.engine == kvc::format::Engine::Hanzo {
                writeln!(
                    out,
                    "note: hanzo-engine's own pass would delete the files among them that it can (not a directory); kvc deletes only what it identified, and foreign files and links never"
                )?;
            }
        }
        for k in &self.kept {
            if matches!(k.why, Code::Foreign | Code::Symlink | Code::Directory) {
                writeln!(out, "kept {}: {} ({})", k.why, k.file, k.detail)?;
            }
        }
        Ok(())
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Report for EvictReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut criteria = vec![format!("policy {}", self.policy)];
        if let (Some(given), Some(applied)) = (self.budget, self.budget_applied) {
            if applied != given {
                criteria.push(format!(
                    "budget {} raised to {}: hanzo-engine never budgets below {}",
                    output::size(given),
                    output::size(applied),
                    output::size(self.policy_min.unwrap_or(applied)),
                ));
            } else {
                criteria.push(format!("budget {}", output::size(given)));
            }
        }
        if let Some(d) = self.older_than {
            criteria.push(format!("older than {}", kvc::text::span(d)));
        }
        if self.include_unloadable {
            criteria.push("--include-unloadable".into());
        }
        writeln!(
            out,
            "{}{} ({}): {}, {} counted by {}",
            if self.dry_run { "plan for " } else { "" },
            self.dir,
            criteria.join(", "),
            plural(self.counted, "file", "files"),
            output::size(self.counted_bytes),
            self.engine_words,
        )?;
        let from = if self.policy_from == "engine" {
            "the engine's"
        } else {
            "--policy"
        };
        writeln!(
            out,
            "engine: {}; policy {} ({from}): {}",
            self.engine.describe(),
            self.policy,
            Policy::from_str(self.policy).map_or("", |p| p.source()),
        )?;
        if self.engine.mixed {
            writeln!(
                out,
                "warning: files of both ds4 and hanzo-engine in one directory: pass --engine to say which engine reads it"
            )?;
        }
        if !self.victims.is_empty() {
            let mut header = Vec::new();
            if !self.dry_run {
                header.push("OUTCOME");
            }
            header.extend([
                "KEY", "REASON", "TOKENS", "SIZE", "HITS", "USED", "SCORE", "WHY", "TITLE",
            ]);
            let dash = || "-".to_string();
            let row = |i: usize| -> Vec<String> {
                let v = &self.victims[i];
                let mut row = Vec::new();
                if !self.dry_run {
                    row.push(v.outcome.name().to_string());
                }
                let key = if v.kind == "checkpoint" || v.key.len() == 40 {
                    output::short_key(&v.key)
                } else {
                    v.key.clone()
                };
                row.extend([
                    key,
                    v.reason.clone().unwrap_or_else(|| format!("({})", v.kind)),
                    v.tokens.map_or_else(dash, |t| t.to_string()),
                    output::size(v.size),
                    v.hits.map_or_else(dash, |t| t.to_string()),
                    v.used.map_or_else(dash, |u| output::ago(u, self.now)),
                    output::score(v.score),
                    v.why.names().join(","),
                    v.title.clone().unwrap_or_default(),
                ]);
                row
            };
            // As `kvc ls`: the title shrinks first, then the columns a
            // glance needs least give way.
            let col = |name: &str| header.iter().position(|h| *h == name);
            let numeric: Vec<usize> = ["TOKENS", "SIZE", "HITS", "SCORE"]
                .iter()
                .filter_map(|n| col(n))
                .collect();
            let expendable: Vec<usize> = ["HITS", "TOKENS", "SCORE", "REASON"]
                .iter()
                .filter_map(|n| col(n))
                .collect();
            let shrink: Vec<usize> = col("TITLE").into_iter().collect();
            output::write_rows(
                out,
                &header,
                self.victims.len(),
                &row,
                &shrink,
                &expendable,
                &numeric,
            )?;
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
                    "would free {} in {}, leaving {} counted",
                    output::size(self.freed_bytes),
                    plural(self.victims.len(), "file", "files"),
                    output::size(self.counted_bytes_after)
                )?;
            }
        } else {
            let deleted = self
                .victims
                .iter()
                .filter(|v| v.outcome == Code::Removed)
                .count();
            writeln!(
                out,
                "freed {} in {}; {} counted left in {}",
                output::size(self.freed_bytes),
                plural(deleted, "file", "files"),
                output::size(self.counted_bytes_after),
                plural(self.counted_after, "file", "files"),
            )?;
        }
        self.write_kept(out)?;
        let apart = self.total_bytes.saturating_sub(self.counted_bytes);
        if apart > 0 {
            writeln!(
                out,
                "disk: {} in all before, {} of it not counted by the budget (kept files, temp files, other names)",
                output::size(self.total_bytes),
                output::size(apart),
            )?;
        }
        if self.superseded_at_rest {
            writeln!(
                out,
                "note: superseded waypoints (score × 0.05-0.5) are ds4's test applied at rest, every longer stored checkpoint in the role of the one ds4 is saving: kvc's extension (FORMAT.md §8)"
            )?;
        }
        Ok(())
    }
}

/// A progress bar over the deletions (`output::progress_items`: on a
/// terminal only), only for a person.
struct Progress {
    show: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(show: bool) -> Progress {
        Progress { show, bar: None }
    }
}

impl Hooks for Progress {
    fn planned(&mut self, plan: &EvictPlan) {
        // A re-plan starts a fresh bar in place of the last one.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.show {
            self.bar = output::progress_items("evict", plan.victims.len() as u64);
        }
    }
    fn handled(&mut self, v: &Victim, _fate: &Fate) {
        if let Some(bar) = &self.bar {
            bar.set_message(
                v.key
                    .as_ref()
                    .map_or(v.file.as_str(), Key::short)
                    .to_string(),
            );
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
    let dir = config::dir_or_default(args.dir.get())?;
    let limit = confirm::limit(&args.write, Some(confirm::EVICT_DEFAULT));
    let opts = EvictOptions {
        policy: args.policy.policy(),
        engine: args.policy.engine.engine(),
        now: config::now_or_clock(args.policy.now)?,
        budget: args.budget,
        engine_minimum: true,
        older_than: args.older_than.map(|d| d.as_secs()),
        protect: protected_keys(&dir, &args.protect)?,
        include_agent: args.agent.include_agent,
        include_unloadable: args.include_unloadable,
        reject_different_quant: args.quant.reject_different_quant,
        limit,
    };
    // The plan is the dry run; applying it is the one write path.
    let plan = evict::plan_dir(&dir, &opts)?;
    let deletion = plan.deletion();
    let over = deletion.check(&dir, limit);
    let titles = if args.write.quiet {
        Titles::new()
    } else {
        titles(&plan)
    };
    let report = if args.write.dry_run.dry_run {
        let mut r = EvictReport::of_plan(&plan, &titles);
        r.limit = LimitView::new(limit, &deletion);
        r
    } else {
        // Nothing is deleted, and no lock taken, for a plan over the limit
        // or not confirmed (`apply` weighs the plan made under the lock
        // again).
        deletion.check(&dir, limit)?;
        confirm::confirm("evict", &dir, &deletion, &args.write)?;
        let mut session = config::session("evict", args.policy.now, args.write.wait.wait)?;
        let mut progress = Progress::new(!args.write.quiet && !args.output.json);
        let mut r =
            EvictReport::of_result(&evict::apply(&mut session, plan, &mut progress)?, &titles);
        r.limit = LimitView::new(limit, &deletion);
        r
    };
    let problems = report.problems();
    if !args.write.quiet {
        output::emit(&report, args.output.json)?;
    }
    for p in &problems {
        eprintln!("kvc: {p}");
    }
    // A dry run over the limit: the plan above, and what a real run does.
    if let (true, Err(e)) = (args.write.dry_run.dry_run, over) {
        eprintln!("kvc: {e} (a real run would stop here)");
        return Ok(Outcome::Refused);
    }
    Ok(if problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}
