//! What a cache directory holds and what it is worth, on one screen (as
//! `ccache -s` or `docker system df` show theirs): checkpoints and bytes
//! by reason, dialect, model, age and size; how much was ever hit; what
//! each of kvc's commands would free.
//!
//! Read only. Every "reclaimable" figure is computed by the read-only
//! planning function of the command it names, so it is what that command
//! frees, by construction: [`evict::plan`] for `--include-unloadable`,
//! [`gc::plan_dir`] for stale temp files, and the engine's own ranking
//! ([`policy::standings`], as `kvc ls` shows it) for superseded waypoints,
//! which `kvc rm` removes by key.

use crate::error::Result;
use crate::evict::{self, EvictOptions};
use crate::format::dialect::EngineChoice;
use crate::format::{self, Engine};
use crate::gc::{self, GcOptions};
use crate::policy::{Policy, PolicyFrom, RankOptions, Standing};
use crate::scan::{self, Checkpoint, Scan, ScanOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// Count and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }

    pub fn merge(&mut self, o: Tally) {
        self.count += o.count;
        self.bytes += o.bytes;
    }
}

/// One row of a breakdown: a stable label and its tally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub label: String,
    pub count: u64,
    pub bytes: u64,
}

/// Age of the last use (`last_used`, else `created`): upper bounds in
/// seconds and labels. `unknown` when both are 0.
pub const AGE_BUCKETS: [(u64, &str); 5] = [
    (HOUR, "lt-1h"),
    (DAY, "1h-1d"),
    (7 * DAY, "1d-7d"),
    (30 * DAY, "7d-30d"),
    (u64::MAX, "ge-30d"),
];

/// File size: upper bounds in bytes and labels.
pub const SIZE_BUCKETS: [(u64, &str); 5] = [
    (1 << 20, "lt-1mib"),
    (16 << 20, "1mib-16mib"),
    (128 << 20, "16mib-128mib"),
    (1 << 30, "128mib-1gib"),
    (u64::MAX, "ge-1gib"),
];

fn bucket(table: &[(u64, &'static str)], v: u64) -> &'static str {
    table
        .iter()
        .find(|(upper, _)| v < *upper)
        .map_or(table[table.len() - 1].1, |b| b.1)
}

/// The age bucket of a checkpoint at `now` (a use in the future counts as
/// the most recent).
pub fn age_bucket(c: &Checkpoint, now: u64) -> &'static str {
    match c.header.used_time() {
        0 => "unknown",
        t => bucket(&AGE_BUCKETS, now.saturating_sub(t)),
    }
}

pub fn size_bucket(bytes: u64) -> &'static str {
    bucket(&SIZE_BUCKETS, bytes)
}

/// How much of the cache was ever read back: by the last hit (the header's
/// `last_used` when `hits > 0`; a hit rewrites it). Disjoint buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HitSpread {
    /// `hits = 0`: written and never loaded.
    pub never: Tally,
    /// Last hit less than a day ago.
    pub within_1d: Tally,
    /// Last hit one to seven days ago.
    pub within_1d_7d: Tally,
    /// Last hit more than seven days ago.
    pub before_7d: Tally,
}

/// What one of kvc's commands would free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReclaimKind {
    /// Checkpoints the directory's engine never loads, counts or evicts:
    /// `kvc evict --include-unloadable`.
    Unloadable,
    /// `continued` waypoints a longer stored checkpoint supersedes (ds4
    /// policy; kvc's reading at rest): `kvc rm` of their keys.
    Superseded,
    /// Temp files of dead writers: `kvc gc`.
    StaleTemps,
}

impl ReclaimKind {
    pub fn name(self) -> &'static str {
        match self {
            ReclaimKind::Unloadable => "unloadable",
            ReclaimKind::Superseded => "superseded",
            ReclaimKind::StaleTemps => "stale-temps",
        }
    }

    /// The command that frees it, for people.
    pub fn command(self) -> &'static str {
        match self {
            ReclaimKind::Unloadable => "kvc evict --include-unloadable DIR",
            ReclaimKind::Superseded => {
                "kvc rm --dir DIR KEY... (the keys `kvc ls --json DIR` marks superseded)"
            }
            ReclaimKind::StaleTemps => "kvc gc DIR",
        }
    }
}

/// One reclaimable figure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reclaim {
    pub kind: ReclaimKind,
    pub count: u64,
    pub bytes: u64,
    /// The command that frees exactly these bytes.
    pub command: &'static str,
}

/// Where a budget came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum BudgetSource {
    /// `--budget`.
    Given,
    /// The engine's own `KV disk cache DIR (budget=N MiB, …)` log line.
    Log { day: Option<String> },
}

/// The budget, and the engine's usage against it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetUse {
    pub budget: u64,
    pub source: BudgetSource,
    /// What the engine's budget counts (`kvc evict`'s `counted_bytes`).
    pub counted_bytes: u64,
    /// counted / budget.
    pub usage: f64,
    /// Bytes above the budget (0 when within).
    pub over_by: u64,
    /// What `kvc evict --budget` would delete to meet it.
    pub evict: Tally,
    /// Whether that would meet it (not when what it keeps exceeds it).
    pub budget_met: bool,
}

/// Options of a stats run.
#[derive(Clone, Debug)]
pub struct StatsOptions {
    pub engine: Option<Engine>,
    pub policy: Option<Policy>,
    /// Unix seconds ages and scores are evaluated at.
    pub now: u64,
    /// The budget to compare with, and where it came from.
    pub budget: Option<(u64, BudgetSource)>,
    /// `kvc gc --temp-age`.
    pub temp_age: Duration,
    /// ds4-server's `--kv-cache-reject-different-quant`.
    pub reject_different_quant: bool,
}

/// Everything `kvc stats` says about one directory.
#[derive(Clone, Debug, Serialize)]
pub struct DirStats {
    #[serde(serialize_with = "path_display")]
    pub dir: PathBuf,
    pub engine: EngineChoice,
    /// The policy that ranks it (its engine's unless `--policy`).
    #[serde(serialize_with = "policy_name")]
    pub policy: Policy,
    /// `--policy`, or `engine`.
    #[serde(serialize_with = "policy_from_name")]
    pub policy_from: PolicyFrom,
    pub now: u64,
    /// Readable checkpoints (the rows of `kvc ls`).
    pub checkpoints: Tally,
    /// Those the engine loads.
    pub loadable: Tally,
    /// What its budget counts, as `kvc evict` counts it: the counted
    /// checkpoints, and the entries kvc keeps although the engine counts
    /// them (a foreign file ds4's reader accepts; under hanzo-engine every
    /// `*.kv` entry). The same figure as `kvc evict`'s `counted`.
    pub counted: Tally,
    /// Those it never loads, counts or evicts.
    pub never_loaded: Tally,
    /// ds4-agent's explicit saves (never evicted without `--include-agent`).
    pub agent_saves: Tally,
    pub invalid: Tally,
    /// Files of dialects kvc does not fully read, with companions: kept
    /// apart, never reclaimable by kvc.
    pub foreign: Tally,
    pub temp_files: Tally,
    pub strays: Tally,
    /// Bytes of every entry (as `kvc ls`'s `total_bytes`).
    pub total_bytes: u64,
    pub by_reason: Vec<Row>,
    pub by_dialect: Vec<Row>,
    pub by_model: Vec<Row>,
    pub by_age: Vec<Row>,
    pub by_size: Vec<Row>,
    pub hits: HitSpread,
    pub reclaimable: Vec<Reclaim>,
    /// Some waypoint is superseded at rest (kvc's extension of ds4's test).
    pub superseded_at_rest: bool,
    pub budget: Option<BudgetUse>,
}

fn path_display<S: serde::Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.display().to_string())
}

fn policy_name<S: serde::Serializer>(p: &Policy, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

fn policy_from_name<S: serde::Serializer>(
    p: &PolicyFrom,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

fn rows(m: BTreeMap<impl Ord, (String, Tally)>) -> Vec<Row> {
    m.into_values()
        .map(|(label, t)| Row {
            label,
            count: t.count,
            bytes: t.bytes,
        })
        .collect()
}

fn fixed_rows(labels: &[&'static str], m: &BTreeMap<&'static str, Tally>) -> Vec<Row> {
    labels
        .iter()
        .map(|l| {
            let t = m.get(l).copied().unwrap_or_default();
            Row {
                label: l.to_string(),
                count: t.count,
                bytes: t.bytes,
            }
        })
        .collect()
}

/// The model a checkpoint names, as a label: mainline's name where its
/// dialect follows mainline's numbering, else the number.
pub fn model_label(c: &Checkpoint) -> String {
    let id = c.header.model_id;
    c.dialect
        .spec()
        .mainline_models
        .then(|| format::model_name(id))
        .flatten()
        .map_or_else(|| id.to_string(), str::to_string)
}

/// Stats of a scanned directory whose ranking is `standings` (aligned with
/// `scan.checkpoints`). Runs the read-only plans of evict and gc.
pub fn of_scan(
    scan: &Scan,
    standings: &[Standing],
    policy: (Policy, PolicyFrom),
    opts: &StatsOptions,
) -> Result<DirStats> {
    let now = opts.now;
    let engine = scan.engine.engine;
    let mut s = DirStats {
        dir: scan.dir.clone(),
        engine: scan.engine.clone(),
        policy: policy.0,
        policy_from: policy.1,
        now,
        checkpoints: Tally::default(),
        loadable: Tally::default(),
        counted: Tally::default(),
        never_loaded: Tally::default(),
        agent_saves: Tally::default(),
        invalid: Tally::default(),
        foreign: Tally::default(),
        temp_files: Tally::default(),
        strays: Tally::default(),
        total_bytes: scan.total_bytes(),
        by_reason: Vec::new(),
        by_dialect: Vec::new(),
        by_model: Vec::new(),
        by_age: Vec::new(),
        by_size: Vec::new(),
        hits: HitSpread::default(),
        reclaimable: Vec::new(),
        superseded_at_rest: standings.iter().any(|s| s.superseded),
        budget: None,
    };
    let mut reasons = BTreeMap::new();
    let mut dialects = BTreeMap::new();
    let mut models = BTreeMap::new();
    let mut ages: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut sizes: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut superseded = Tally::default();
    let (apart, apart_bytes) = evict::counted_apart(scan, engine);
    s.counted.count += apart as u64;
    s.counted.bytes += apart_bytes;
    for (c, st) in scan.checkpoints.iter().zip(standings) {
        let b = c.size;
        s.checkpoints.add(b);
        if c.is_loadable() {
            s.loadable.add(b);
        } else {
            s.never_loaded.add(b);
        }
        if c.is_counted(engine) {
            s.counted.add(b);
        }
        if c.is_agent_save() {
            s.agent_saves.add(b);
        }
        let r = c.header.reason;
        reasons
            .entry(r.0)
            .or_insert_with(|| (r.name().into_owned(), Tally::default()))
            .1
            .add(b);
        dialects
            .entry(c.dialect)
            .or_insert_with(|| (c.dialect.as_str().to_string(), Tally::default()))
            .1
            .add(b);
        let label = model_label(c);
        models
            .entry(label.clone())
            .or_insert_with(|| (label, Tally::default()))
            .1
            .add(b);
        ages.entry(age_bucket(c, now)).or_default().add(b);
        sizes.entry(size_bucket(b)).or_default().add(b);
        let h = &c.header;
        let spread = &mut s.hits;
        if h.hits == 0 {
            spread.never.add(b)
        } else {
            let age = now.saturating_sub(h.last_used);
            match age {
                a if a < DAY => spread.within_1d.add(b),
                a if a < 7 * DAY => spread.within_1d_7d.add(b),
                _ => spread.before_7d.add(b),
            }
        }
        if st.superseded && !c.is_agent_save() {
            superseded.add(b);
        }
    }
    for i in &scan.invalid {
        s.invalid.add(i.size);
    }
    for f in &scan.foreign {
        s.foreign.add(f.total_size());
    }
    for t in &scan.temp_files {
        s.temp_files.add(t.size);
    }
    for x in &scan.strays {
        s.strays.add(x.size);
    }
    s.by_reason = rows(reasons);
    s.by_dialect = rows(dialects);
    s.by_model = rows(models);
    let mut age_labels: Vec<&'static str> = AGE_BUCKETS.iter().map(|b| b.1).collect();
    if ages.contains_key("unknown") {
        age_labels.push("unknown");
    }
    s.by_age = fixed_rows(&age_labels, &ages);
    let size_labels: Vec<&'static str> = SIZE_BUCKETS.iter().map(|b| b.1).collect();
    s.by_size = fixed_rows(&size_labels, &sizes);

    // What `kvc evict --include-unloadable` deletes: its own plan. With no
    // budget and no age the plan's victims are the unloadable entries
    // alone, whatever the policy, so the cheapest policy (no text read)
    // is asked for. The plan can pick only what the engine does not count
    // (or, under hanzo-engine, a `*.kv` entry it counts but kvc cannot
    // read): when there is none, it is not run, which saves a copy of
    // every entry's name and path (about 25 MB at 100,000 checkpoints).
    let base = EvictOptions {
        engine: opts.engine,
        now,
        reject_different_quant: opts.reject_different_quant,
        engine_minimum: true,
        ..EvictOptions::default()
    };
    let every_kv = engine.reader().every_kv_name;
    let may_pick = scan.checkpoints.iter().any(|c| !c.is_counted(engine))
        || (every_kv
            && (!scan.invalid.is_empty()
                || scan.strays.iter().any(|x| evict::hanzo_counts(&x.path))));
    let mut freed = Tally::default();
    if may_pick {
        let unloadable = evict::plan(
            scan,
            &EvictOptions {
                policy: Some(Policy::Lru),
                include_unloadable: true,
                ..base.clone()
            },
        );
        for v in &unloadable.victims {
            freed.add(v.size);
        }
    }
    // What `kvc gc` removes: its own plan, which lists the directory again
    // (only when the scan saw a temp file at all).
    let mut stale = Tally::default();
    if !scan.temp_files.is_empty() {
        let gc_plan = gc::plan_dir(
            &scan.dir,
            &GcOptions {
                temp_age: opts.temp_age,
                now: UNIX_EPOCH + Duration::from_secs(now),
            },
        )?;
        for t in gc_plan.stale() {
            stale.add(t.file.size);
        }
    }
    for (kind, t) in [
        (ReclaimKind::Unloadable, freed),
        (ReclaimKind::Superseded, superseded),
        (ReclaimKind::StaleTemps, stale),
    ] {
        s.reclaimable.push(Reclaim {
            kind,
            count: t.count,
            bytes: t.bytes,
            command: kind.command(),
        });
    }
    if let Some((budget, source)) = &opts.budget {
        let plan = evict::plan(
            scan,
            &EvictOptions {
                policy: opts.policy,
                budget: Some(*budget),
                ..base
            },
        );
        let mut ev = Tally::default();
        for v in &plan.victims {
            ev.add(v.size);
        }
        let applied = plan.budget.unwrap_or(*budget);
        s.budget = Some(BudgetUse {
            budget: applied,
            source: source.clone(),
            counted_bytes: plan.counted_bytes,
            usage: plan.counted_bytes as f64 / applied as f64,
            over_by: plan.counted_bytes.saturating_sub(applied),
            evict: ev,
            budget_met: plan.budget_met(),
        });
    }
    Ok(s)
}

/// Scan `dir` (headers only; texts are streamed where the policy needs
/// them) and compute its stats.
pub fn dir_stats(dir: &Path, opts: &StatsOptions) -> Result<DirStats> {
    let scan = scan::scan_dir(dir, ScanOptions::headers(opts.engine))?;
    let policy = PolicyFrom::resolve(opts.policy, scan.engine.engine);
    let st = scan.standings(&RankOptions {
        policy: policy.0,
        now: opts.now,
        reject_different_quant: opts.reject_different_quant,
    });
    of_scan(&scan, &st, policy, opts)
}
