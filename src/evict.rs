//! Keeping a cache directory within a budget next to a running engine:
//! planning which checkpoints go (one sort, O(n log n)), then deleting them
//! one by one under kvc's directory lock, re-reading each header first.
//!
//! The engines do not know kvc's lock. What keeps kvc safe beside a live
//! ds4-server is the re-check: an engine that hits a checkpoint rewrites its
//! header (`hits + 1`, `last_used = now`, FORMAT.md §7), so a victim whose
//! header changed since planning was just used; kvc skips it and plans
//! again from a fresh scan rather than delete what the engine is using.

use crate::error::Result;
use crate::format::checkpoint::Key;
use crate::format::Header;
use crate::fsutil::remove_durably;
use crate::journal::{self, Record};
use crate::lock::DirLock;
use crate::policy::{self, Policy};
use crate::scan::{self, Checkpoint, Loaded, Scan, ScanOptions, STATE_DIR};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Plans made again after a victim was touched, before kvc stops and
/// reports. An engine under load touches a few checkpoints a minute; one
/// that touches every victim kvc picks, pass after pass, is busier than a
/// cron job should fight with, and the next run will try again.
pub const MAX_REPLANS: usize = 3;

/// What to evict.
#[derive(Clone, Debug, Default)]
pub struct EvictOptions {
    pub policy: Policy,
    /// Unix seconds the scores and ages are evaluated at.
    pub now: u64,
    /// Evict until the valid checkpoints take at most this many bytes.
    pub budget: Option<u64>,
    /// Also evict every checkpoint unused for longer than this (seconds).
    pub older_than: Option<u64>,
    /// Keys never evicted.
    pub protect: BTreeSet<Key>,
    /// Evict ds4-agent's explicit saves too (normally never).
    pub include_agent: bool,
}

impl EvictOptions {
    /// Checkpoints eviction never picks: agent saves (unless asked) and the
    /// `--protect`ed keys.
    pub fn is_protected(&self, c: &Checkpoint) -> bool {
        (!self.include_agent && c.is_agent_save()) || self.protect.contains(&c.key)
    }

    /// `last_used` (or `created`) before this is "unused for too long".
    pub fn age_cutoff(&self) -> Option<u64> {
        self.older_than.map(|d| self.now.saturating_sub(d))
    }
}

/// Why a checkpoint was chosen. Both can hold: unused for too long, and
/// the directory still over budget when the walk reached it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Why {
    /// Still over budget at this point of the eviction order (age victims
    /// counted as gone already).
    pub budget: bool,
    /// Unused for longer than `--older-than`.
    pub age: bool,
}

impl Why {
    /// `["budget"]`, `["age"]` or `["budget", "age"]`.
    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::with_capacity(2);
        if self.budget {
            v.push("budget");
        }
        if self.age {
            v.push("age");
        }
        v
    }

    /// The journal's `why`: `budget`, `age` or `budget,age`.
    pub fn joined(self) -> String {
        self.names().join(",")
    }
}

impl Serialize for Why {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let names = self.names();
        let mut seq = s.serialize_seq(Some(names.len()))?;
        for n in names {
            seq.serialize_element(n)?;
        }
        seq.end()
    }
}

/// One checkpoint the plan deletes, as it was when planned.
#[derive(Clone, Debug, PartialEq)]
pub struct Victim {
    pub key: Key,
    /// Name on disk.
    pub file: String,
    pub path: PathBuf,
    pub size: u64,
    /// The header at planning time; deletion re-reads and compares it.
    pub header: Header,
    pub score: Option<f64>,
    pub superseded: bool,
    pub why: Why,
}

impl Victim {
    fn of(c: &Checkpoint, r: &policy::Ranked, why: Why) -> Victim {
        Victim {
            key: c.key.clone(),
            file: c.file.clone(),
            path: c.path.clone(),
            size: c.size,
            header: c.header.clone(),
            score: r.score,
            superseded: r.superseded,
            why,
        }
    }
}

/// What eviction would do to one directory.
#[derive(Clone, Debug)]
pub struct Plan {
    pub dir: PathBuf,
    pub options: EvictOptions,
    /// Valid checkpoints found, and their bytes (what a budget counts;
    /// temp files, invalid files and strays are not in it).
    pub checkpoints: usize,
    pub checkpoint_bytes: u64,
    /// Checkpoints the options protect, and their bytes.
    pub protected: usize,
    pub protected_bytes: u64,
    /// In eviction order, first victim first.
    pub victims: Vec<Victim>,
}

impl Plan {
    pub fn bytes_to_free(&self) -> u64 {
        self.victims.iter().map(|v| v.size).sum()
    }

    /// Bytes of valid checkpoints left once the plan is carried out.
    pub fn bytes_after(&self) -> u64 {
        self.checkpoint_bytes - self.bytes_to_free()
    }

    /// Whether the plan brings the directory within the budget (true
    /// without one). False when protected checkpoints alone exceed it.
    pub fn budget_met(&self) -> bool {
        self.options.budget.is_none_or(|b| self.bytes_after() <= b)
    }
}

/// Plan over a scan. Without texts in the scan, the `ds4` policy sees no
/// superseded waypoints: use [`plan_dir`], or call
/// [`policy::load_needed_texts`] first.
pub fn plan(scan: &Scan, opts: &EvictOptions) -> Plan {
    plan_excluding(scan, opts, &BTreeSet::new())
}

/// Plan, also leaving out `exclude` (checkpoints that could not be
/// deleted in an earlier pass: they still count, but are not picked again).
fn plan_excluding(scan: &Scan, opts: &EvictOptions, exclude: &BTreeSet<Key>) -> Plan {
    let cps = &scan.checkpoints;
    let keep = |c: &Checkpoint| opts.is_protected(c) || exclude.contains(&c.key);
    let cutoff = opts.age_cutoff();
    let is_old = |c: &Checkpoint| cutoff.is_some_and(|t| c.header.used_time() < t);
    let total = scan.checkpoint_bytes();
    // Age victims go whatever the budget says, so they count as gone before
    // the budget walk starts: the budget then takes no more than it needs.
    let age_bytes: u64 = cps
        .iter()
        .filter(|c| !keep(c) && is_old(c))
        .map(|c| c.size)
        .sum();
    let mut remaining = total - age_bytes;
    let mut victims = Vec::new();
    if opts.budget.is_some() || cutoff.is_some() {
        for r in policy::eviction_order(opts.policy, cps, opts.now) {
            let c = &cps[r.index];
            if keep(c) {
                continue;
            }
            let why = Why {
                budget: opts.budget.is_some_and(|b| remaining > b),
                age: is_old(c),
            };
            if why.budget && !why.age {
                remaining -= c.size;
            }
            if why.budget || why.age {
                victims.push(Victim::of(c, &r, why));
            } else if cutoff.is_none() {
                // Within budget, and the remaining total only falls.
                break;
            }
        }
    }
    let (protected, protected_bytes) = cps
        .iter()
        .filter(|c| opts.is_protected(c))
        .fold((0, 0), |(n, b), c| (n + 1, b + c.size));
    Plan {
        dir: scan.dir.clone(),
        options: opts.clone(),
        checkpoints: cps.len(),
        checkpoint_bytes: total,
        protected,
        protected_bytes,
        victims,
    }
}

/// Scan `dir` (headers only, plus the texts the policy needs) and plan.
/// Reads only: no lock, no `.kvc/`, nothing touched. This is `--dry-run`.
pub fn plan_dir(dir: &Path, opts: &EvictOptions) -> Result<Plan> {
    plan_dir_excluding(dir, opts, &BTreeSet::new())
}

fn plan_dir_excluding(dir: &Path, opts: &EvictOptions, exclude: &BTreeSet<Key>) -> Result<Plan> {
    let mut scan = scan::scan_dir(dir, ScanOptions::default())?;
    policy::load_needed_texts(opts.policy, &mut scan.checkpoints);
    Ok(plan_excluding(&scan, opts, exclude))
}

/// What happened to one victim.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    /// Removed, durably, and journaled.
    Deleted,
    /// Already gone (an engine evicted or consumed it): not an error.
    Vanished,
    /// Its header changed since planning: the engine just used it. Left
    /// alone; the directory is planned again.
    Touched { change: String },
    /// No longer reads as a checkpoint. Left alone (a corrupt file is
    /// reported, never silently deleted); the directory is planned again.
    Invalid { code: &'static str, error: String },
    /// Removing it failed; it is not picked again in this run.
    Failed { error: String },
}

impl Fate {
    /// Whether the file is gone from the directory.
    pub fn is_gone(&self) -> bool {
        matches!(self, Fate::Deleted | Fate::Vanished)
    }

    /// Stable code: `deleted`, `vanished`, `touched`, `invalid`, `failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Fate::Deleted => "deleted",
            Fate::Vanished => "vanished",
            Fate::Touched { .. } => "touched",
            Fate::Invalid { .. } => "invalid",
            Fate::Failed { .. } => "failed",
        }
    }

    /// One line for a person, empty for the plain outcomes.
    pub fn detail(&self) -> String {
        match self {
            Fate::Deleted | Fate::Vanished => String::new(),
            Fate::Touched { change } => format!("touched by the engine since planning ({change})"),
            Fate::Invalid { code, error } => {
                format!("no longer a valid checkpoint ({code}: {error})")
            }
            Fate::Failed { error } => format!("cannot remove: {error}"),
        }
    }
}

/// One victim and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Handled {
    pub victim: Victim,
    pub fate: Fate,
}

/// Calls into the caller while eviction runs: progress display, and tests
/// that act as the engine between planning and deletion.
pub trait Hooks {
    /// A plan was made under the lock (once per pass).
    fn planned(&mut self, _plan: &Plan) {}
    /// Just before `victim` is re-read and, if unchanged, deleted.
    fn before_delete(&mut self, _victim: &Victim) {}
    /// After `victim` was dealt with.
    fn handled(&mut self, _victim: &Victim, _fate: &Fate) {}
}

/// No callbacks.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// What an eviction run did.
#[derive(Clone, Debug)]
pub struct EvictResult {
    /// The first plan made under the lock (or the empty plan that needed
    /// no lock).
    pub first_plan: Plan,
    /// Every victim handled, in order, over all passes.
    pub handled: Vec<Handled>,
    /// Plans made and carried out (1 + re-plans).
    pub passes: usize,
    /// Stopped after [`MAX_REPLANS`] re-plans with victims left undone.
    pub gave_up: bool,
    /// Valid checkpoint bytes and count left at the end.
    pub checkpoints_after: usize,
    pub bytes_after: u64,
    /// Protected checkpoints at the end.
    pub protected: usize,
    pub protected_bytes: u64,
}

impl EvictResult {
    pub fn deleted(&self) -> impl Iterator<Item = &Handled> {
        self.handled.iter().filter(|h| h.fate == Fate::Deleted)
    }

    /// Bytes this run removed (not counting files that vanished on their own).
    pub fn freed_bytes(&self) -> u64 {
        self.deleted().map(|h| h.victim.size).sum()
    }

    pub fn budget_met(&self) -> bool {
        self.first_plan
            .options
            .budget
            .is_none_or(|b| self.bytes_after <= b)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What changed in a header, for the report: `hits 3 -> 4, last_used …`.
fn describe_change(was: &Victim, now: &Checkpoint) -> Option<String> {
    let (a, b) = (&was.header, &now.header);
    let mut parts = Vec::new();
    if a.hits != b.hits {
        parts.push(format!("hits {} -> {}", a.hits, b.hits));
    }
    if a.last_used != b.last_used {
        parts.push(format!("last_used {} -> {}", a.last_used, b.last_used));
    }
    if was.size != now.size {
        parts.push(format!("size {} -> {}", was.size, now.size));
    }
    if parts.is_empty() && a != b {
        parts.push("header rewritten".into());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The journal record of one eviction.
pub fn record(op: &str, v: &Victim, policy: Policy, why: String) -> Record {
    Record {
        time: unix_now(),
        op: op.into(),
        key: v.key.to_string(),
        bytes: v.size,
        tokens: v.header.tokens,
        hits: v.header.hits,
        reason: v.header.reason.name().into_owned(),
        score: v.score,
        policy: Some(policy.name().into()),
        why,
    }
}

/// Re-read the victim and delete it if it is as planned.
fn delete_victim(dir: &Path, v: &Victim, opts: &EvictOptions) -> Result<Fate> {
    let c = match scan::load(&v.path, v.key.clone(), ScanOptions::default()) {
        Loaded::Vanished => return Ok(Fate::Vanished),
        Loaded::Invalid(i) => {
            return Ok(Fate::Invalid {
                code: i.code,
                error: i.error,
            })
        }
        // Rewritten by a fork since the plan: no longer what was judged.
        Loaded::Foreign(f) => {
            return Ok(Fate::Invalid {
                code: "foreign",
                error: f.what,
            })
        }
        Loaded::Checkpoint(c) => c,
    };
    if let Some(change) = describe_change(v, &c) {
        return Ok(Fate::Touched { change });
    }
    // The window between this check and the unlink is a few system calls;
    // an engine hit inside it loses a checkpoint its own budget pass could
    // equally have evicted, and the engine holds the file open while loading.
    match remove_durably(&v.path) {
        Ok(true) => {
            journal::append(dir, &[record("evict", v, opts.policy, v.why.joined())])?;
            Ok(Fate::Deleted)
        }
        Ok(false) => Ok(Fate::Vanished),
        Err(e) => Ok(Fate::Failed {
            error: e.to_string(),
        }),
    }
}

/// Plan and evict, under kvc's lock on `dir`.
///
/// A directory that needs nothing evicted is left exactly as it was: the
/// lock (and with it `.kvc/`) is only taken once there is work. Each
/// deletion is journaled; if the journal cannot be written, eviction stops
/// with that error, so at most the one deletion just made goes unrecorded.
pub fn run(dir: &Path, opts: &EvictOptions, hooks: &mut dyn Hooks) -> Result<EvictResult> {
    let state_exists = fs::symlink_metadata(dir.join(STATE_DIR)).is_ok_and(|m| m.is_dir());
    let mut lock = if state_exists {
        Some(DirLock::acquire(dir)?)
    } else {
        None
    };
    let mut plan = plan_dir(dir, opts)?;
    if lock.is_none() && !plan.victims.is_empty() {
        lock = Some(DirLock::acquire(dir)?);
        // Another kvc may have evicted between that plan and the lock.
        plan = plan_dir(dir, opts)?;
    }
    let result = execute(dir, opts, hooks, plan);
    drop(lock);
    result
}

/// Plan and evict in `dir` for a caller that already holds its lock (an
/// import's `--budget` pass: taking the lock again from the same process
/// would wait for itself, since flock locks conflict between descriptors).
pub fn run_locked(
    dir: &Path,
    opts: &EvictOptions,
    hooks: &mut dyn Hooks,
    _held: &DirLock,
) -> Result<EvictResult> {
    let plan = plan_dir(dir, opts)?;
    execute(dir, opts, hooks, plan)
}

/// Carry out `plan`, re-planning after touched victims (lock held).
fn execute(
    dir: &Path,
    opts: &EvictOptions,
    hooks: &mut dyn Hooks,
    mut plan: Plan,
) -> Result<EvictResult> {
    let mut result = EvictResult {
        first_plan: plan.clone(),
        handled: Vec::new(),
        passes: 0,
        gave_up: false,
        checkpoints_after: plan.checkpoints,
        bytes_after: plan.checkpoint_bytes,
        protected: plan.protected,
        protected_bytes: plan.protected_bytes,
    };
    let mut exclude = BTreeSet::new();
    loop {
        result.passes += 1;
        hooks.planned(&plan);
        let (mut gone, mut gone_bytes) = (0, 0);
        let mut replan = false;
        for v in &plan.victims {
            hooks.before_delete(v);
            let fate = delete_victim(dir, v, opts)?;
            hooks.handled(v, &fate);
            if fate.is_gone() {
                gone += 1;
                gone_bytes += v.size;
            } else {
                if matches!(fate, Fate::Failed { .. }) {
                    exclude.insert(v.key.clone());
                }
                replan = true;
            }
            result.handled.push(Handled {
                victim: v.clone(),
                fate,
            });
            if replan {
                break;
            }
        }
        result.checkpoints_after = plan.checkpoints - gone;
        result.bytes_after = plan.checkpoint_bytes - gone_bytes;
        result.protected = plan.protected;
        result.protected_bytes = plan.protected_bytes;
        if !replan {
            break;
        }
        if result.passes > MAX_REPLANS {
            result.gave_up = true;
            break;
        }
        plan = plan_dir_excluding(dir, opts, &exclude)?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ExtFlags, Reason};

    const NOW: u64 = 1_000_000;

    fn cp(n: u8, size: u64, tokens: u32, used: u64, reason: Reason) -> Checkpoint {
        let key = Key::Hash(format!("{n:02x}").repeat(20));
        Checkpoint::from_header(
            key.clone(),
            PathBuf::from(key.file_name()),
            size,
            0o600,
            Header {
                magic: *b"KVC",
                version: 1,
                quant_bits: 2,
                reason,
                ext_flags: ExtFlags(0),
                model_id: 0,
                tokens,
                hits: 0,
                ctx_size: 4096,
                payload_abi: 0,
                reserved: [0; 3],
                created: used,
                last_used: used,
                payload_bytes: size - 60,
            },
            8,
            crate::format::Engine::Ds4Classic,
        )
    }

    fn scan(cps: Vec<Checkpoint>) -> Scan {
        Scan {
            dir: PathBuf::from("."),
            checkpoints: cps,
            ..Scan::default()
        }
    }

    fn opts(budget: Option<u64>, older_than: Option<u64>) -> EvictOptions {
        EvictOptions {
            policy: Policy::Lru,
            now: NOW,
            budget,
            older_than,
            ..EvictOptions::default()
        }
    }

    fn keys(p: &Plan) -> Vec<(u8, Vec<&'static str>)> {
        p.victims
            .iter()
            .map(|v| {
                (
                    u8::from_str_radix(&v.key.as_str()[..2], 16).unwrap(),
                    v.why.names(),
                )
            })
            .collect()
    }

    #[test]
    fn budget_takes_victims_in_order_until_the_total_fits() {
        let s = scan(vec![
            cp(1, 100, 10, NOW - 30, Reason::COLD),
            cp(2, 100, 10, NOW - 20, Reason::COLD),
            cp(3, 100, 10, NOW - 10, Reason::COLD),
        ]);
        let p = plan(&s, &opts(Some(200), None));
        assert_eq!(keys(&p), [(1, vec!["budget"])]);
        assert_eq!(p.bytes_after(), 200);
        assert!(p.budget_met());
        let p = plan(&s, &opts(Some(199), None));
        assert_eq!(keys(&p).len(), 2);
        assert_eq!(p.bytes_to_free(), 200);
        assert!(plan(&s, &opts(Some(300), None)).victims.is_empty());
        assert!(plan(&s, &opts(None, None)).victims.is_empty());
    }

    #[test]
    fn age_victims_count_before_the_budget_walk_and_both_reasons_show() {
        // Under LRU the oldest is also the first in order, so age and
        // budget can both pick it.
        let s = scan(vec![
            cp(1, 100, 10, NOW - 500, Reason::COLD),
            cp(2, 100, 10, NOW - 20, Reason::COLD),
            cp(3, 100, 10, NOW - 10, Reason::COLD),
        ]);
        // Budget 250: once the age victim (1) is gone, 200 fit: the budget
        // needs nothing, not even 1.
        let p = plan(&s, &opts(Some(250), Some(100)));
        assert_eq!(keys(&p), [(1, vec!["age"])]);
        // Budget 150: still over after the age victim, so the budget would
        // have taken 1 as well, and takes 2.
        let p = plan(&s, &opts(Some(150), Some(100)));
        assert_eq!(keys(&p), [(1, vec!["budget", "age"]), (2, vec!["budget"])]);
        // No budget: age alone.
        let p = plan(&s, &opts(None, Some(15)));
        assert_eq!(keys(&p), [(1, vec!["age"]), (2, vec!["age"])]);
    }

    #[test]
    fn an_age_victim_late_in_the_order_spares_an_earlier_budget_victim() {
        // Under ds4-classic, 1 (sparse, fresh) comes before 2 (dense, old);
        // 2 goes for age, which alone brings the total within budget.
        let mut o = opts(Some(150), Some(100));
        o.policy = Policy::Ds4Classic;
        let s = scan(vec![
            cp(1, 100, 1, NOW, Reason::COLD),
            cp(2, 100, 90, NOW - 1000, Reason::COLD),
        ]);
        let p = plan(&s, &o);
        assert_eq!(keys(&p), [(2, vec!["age"])]);
        assert!(p.budget_met());
    }

    #[test]
    fn protected_checkpoints_are_skipped_and_counted() {
        let mut s = scan(vec![
            cp(1, 100, 10, NOW - 30, Reason::AGENT_SESSION),
            cp(2, 100, 10, NOW - 20, Reason::COLD),
            cp(3, 100, 10, NOW - 10, Reason::COLD),
        ]);
        s.checkpoints[2].key = Key::Sysprompt;
        let mut o = opts(Some(0), None);
        o.protect.insert(s.checkpoints[1].key.clone());
        let p = plan(&s, &o);
        assert!(p.victims.is_empty());
        assert_eq!((p.protected, p.protected_bytes), (3, 300));
        assert!(!p.budget_met());
        o.include_agent = true;
        let p = plan(&s, &o);
        assert_eq!(p.victims.len(), 2);
        assert_eq!(p.protected, 1);
    }

    #[test]
    fn why_serializes_as_a_list() {
        let w = Why {
            budget: true,
            age: true,
        };
        assert_eq!(serde_json::to_string(&w).unwrap(), r#"["budget","age"]"#);
        assert_eq!(w.joined(), "budget,age");
    }
}
