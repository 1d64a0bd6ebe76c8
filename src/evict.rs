//! Keeping a cache directory within a budget next to a running engine,
//! the way the engine itself would: planning over exactly the population
//! the engine's budget counts (FORMAT.md §7, "What the budget counts") in
//! the engine's order (one sort, O(n log n)), then deleting the victims one
//! by one under kvc's directory lock, re-reading each first.
//!
//! The engines do not know kvc's lock. What keeps kvc safe beside a live
//! ds4-server is the re-check: an engine that hits a checkpoint rewrites its
//! header (`hits + 1`, `last_used = now`, FORMAT.md §7), so a victim whose
//! header changed since planning was just used; kvc skips it and plans
//! again from a fresh scan rather than delete what the engine is using.
//!
//! kvc deletes only what it has positively identified. What the engine
//! never counts (ds4: another payload ABI, quant or envelope version, zero
//! tokens, `sysprompt.kv`, anything kvc cannot read) is reported apart and
//! deleted only on request (`include_unloadable`); foreign files, links and
//! directories never.

use crate::code::Code;
use crate::error::Result;
use crate::format::checkpoint::Key;
use crate::format::dialect::{EngineChoice, NotLoaded};
use crate::format::{Engine, Header, HEADER_LEN, MAGIC, VERSION};
use crate::guard::{Deletion, Limit};
use crate::policy::{self, OrderKey, Policy, PolicyFrom, RankOptions};
use crate::scan::{self, Checkpoint, FileId, Loaded, Scan, ScanOptions};
use crate::session::journal::{Op, Record};
use crate::session::{Judged, Removal, Session};
use crate::sys::{Meta, Open};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Plans made again after a victim was touched, before kvc stops and
/// reports. An engine under load touches a few checkpoints a minute; one
/// that touches every victim kvc picks, pass after pass, is busier than a
/// cron job should fight with, and the next run will try again.
pub const MAX_REPLANS: usize = 3;

/// What to evict.
#[derive(Clone, Debug, Default)]
pub struct EvictOptions {
    /// The eviction order; `None`: the policy of the directory's engine
    /// ([`Policy::for_engine`]).
    pub policy: Option<Policy>,
    /// The engine that reads the directory (`--engine`), instead of the one
    /// its files point to: it decides the population.
    pub engine: Option<Engine>,
    /// Unix seconds the scores and ages are evaluated at.
    pub now: u64,
    /// Evict until what the engine's budget counts takes at most this many
    /// bytes.
    pub budget: Option<u64>,
    /// Apply the policy's smallest budget as its engine does: hanzo-engine
    /// never budgets below 64 MiB, so under `lru` a smaller budget is raised
    /// to it (`kvc evict` does; `import --budget` applies its budget as
    /// given).
    pub engine_minimum: bool,
    /// Also evict every checkpoint unused for longer than this (seconds).
    pub older_than: Option<u64>,
    /// Keys never evicted.
    pub protect: BTreeSet<Key>,
    /// Evict ds4-agent's explicit saves too (normally never).
    pub include_agent: bool,
    /// Also delete what the engine counts or loads not, or what kvc cannot
    /// read: under ds4, the checkpoints it never loads (another payload
    /// ABI, quant or envelope version; `sysprompt.kv` with
    /// `include_agent`); under hanzo-engine, the `*.kv` entries it counts
    /// that are not readable checkpoints (it would delete them itself).
    /// Never foreign files, links or directories.
    pub include_unloadable: bool,
    /// ds4-server's `--kv-cache-reject-different-quant`: a waypoint is
    /// superseded only by a checkpoint of the same quant bits.
    pub reject_different_quant: bool,
    /// How much one run may delete ([`crate::guard`]): [`apply`] refuses a
    /// plan over it, deleting nothing, and a re-plan after a touched
    /// victim deletes no more than what is left of it.
    pub limit: Option<Limit>,
}

impl EvictOptions {
    /// Checkpoints eviction never picks: agent saves (unless asked) and the
    /// `--protect`ed keys.
    pub(crate) fn is_protected(&self, c: &Checkpoint) -> bool {
        (!self.include_agent && c.is_agent_save()) || self.protect.contains(&c.key)
    }

    /// `last_used` (or `created`) before this is "unused for too long".
    pub(crate) fn age_cutoff(&self) -> Option<u64> {
        self.older_than.map(|d| self.now.saturating_sub(d))
    }
}

/// Why a victim was chosen. `budget` and `age` can both hold: unused for
/// too long, and the directory still over budget when the walk reached it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Why {
    /// Still over budget at this point of the eviction order (age victims
    /// counted as gone already).
    pub budget: bool,
    /// Unused for longer than `--older-than`.
    pub age: bool,
    /// A checkpoint the engine never loads, deleted on request
    /// (`--include-unloadable`).
    pub unloadable: bool,
}

impl Why {
    /// `["budget"]`, `["age"]`, `["budget", "age"]` or `["unloadable"]`.
    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::with_capacity(2);
        if self.budget {
            v.push("budget");
        }
        if self.age {
            v.push("age");
        }
        if self.unloadable {
            v.push("unloadable");
        }
        v
    }

    /// The journal's `why`: `budget`, `age`, `budget,age` or `unloadable`.
    pub(crate) fn joined(self) -> String {
        self.names().join(",")
    }

    fn any(self) -> bool {
        self.budget || self.age || self.unloadable
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

/// What a directory entry of the plan is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A checkpoint kvc reads (index into the scan's checkpoints).
    Checkpoint(usize),
    /// A checkpoint name kvc cannot read as a checkpoint (a `Defect` code).
    Invalid { code: Code },
    /// A file of a dialect kvc does not fully read (FORMAT.md §9).
    Foreign { what: String },
    /// A `*.kv` name that is not a checkpoint name (`foo.kv`): hanzo-engine
    /// counts it.
    Stray,
    /// A directory named `*.kv`.
    Directory,
    /// A symbolic link (kvc never follows one).
    Symlink,
}

impl EntryKind {
    /// `checkpoint`, `invalid`, `foreign`, `stray`, `directory`, `symlink`.
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::Checkpoint(_) => "checkpoint",
            EntryKind::Invalid { .. } => "invalid",
            EntryKind::Foreign { .. } => "foreign",
            EntryKind::Stray => "stray",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
        }
    }
}

/// What `lstat` said of an entry kvc may delete without a header to
/// compare: deletion re-checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
}

impl Stat {
    fn of(m: &fs::Metadata) -> Stat {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    fn judged(&self) -> Judged {
        Judged {
            dev: self.dev,
            ino: self.ino,
            size: Some(self.size),
            mtime: Some(self.mtime),
        }
    }
}

/// One directory entry the plan weighs: in the engine's population, or a
/// checkpoint name kept apart. About 80 bytes: a checkpoint's name, path
/// and key stay in the scan (copying them was 50 MB of a 100,000-checkpoint
/// plan's 85 MB peak).
#[derive(Clone, Debug)]
struct Entry {
    /// `None` for a checkpoint (`EntryKind::Checkpoint`: the scan has its
    /// name, path and key).
    named: Option<Box<Named>>,
    size: u64,
    order: u32,
    kind: EntryKind,
    /// The engine's budget counts it (FORMAT.md §7).
    counted: bool,
    /// The `last_used` the engine orders it by: the header's, or 0 for an
    /// unreadable one (hanzo-engine's `scan_entries`).
    last_used: u64,
    /// `lstat` saw a regular file: only such an entry that is not a
    /// readable checkpoint may be deleted (on request).
    regular: bool,
    /// The inode a readable checkpoint was read from.
    id: FileId,
}

/// What an entry that is not a checkpoint of the scan carries itself.
#[derive(Clone, Debug)]
struct Named {
    file: String,
    path: PathBuf,
    key: Option<Key>,
    /// For an entry that is not a readable checkpoint, what `lstat` saw.
    stat: Option<Stat>,
}

impl Entry {
    fn named(file: &str, path: &Path, key: Option<Key>, stat: Option<Stat>) -> Option<Box<Named>> {
        Some(Box::new(Named {
            file: file.to_string(),
            path: path.to_path_buf(),
            key,
            stat,
        }))
    }

    fn checkpoint<'a>(&self, scan: &'a Scan) -> Option<&'a Checkpoint> {
        match self.kind {
            EntryKind::Checkpoint(i) => Some(&scan.checkpoints[i]),
            _ => None,
        }
    }

    /// Its name on disk.
    fn file<'a>(&'a self, scan: &'a Scan) -> std::borrow::Cow<'a, str> {
        match (&self.named, self.checkpoint(scan)) {
            (Some(n), _) => n.file.as_str().into(),
            (None, Some(c)) => c.file(),
            (None, None) => unreachable!("an entry is named or a checkpoint"),
        }
    }

    fn path(&self, scan: &Scan) -> PathBuf {
        match (&self.named, self.checkpoint(scan)) {
            (Some(n), _) => n.path.clone(),
            (None, Some(c)) => c.path(),
            (None, None) => unreachable!("an entry is named or a checkpoint"),
        }
    }

    fn key<'a>(&'a self, scan: &'a Scan) -> Option<&'a Key> {
        match (&self.named, self.checkpoint(scan)) {
            (Some(n), _) => n.key.as_ref(),
            (None, c) => c.map(|c| &c.key),
        }
    }

    fn stat(&self) -> Option<Stat> {
        self.named.as_ref().and_then(|n| n.stat)
    }
}

/// Why kvc leaves an entry alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// A checkpoint the engine never loads (ds4: another payload ABI,
    /// quant or envelope version, zero tokens): `--include-unloadable`
    /// deletes it.
    NotLoaded(NotLoaded),
    /// ds4-agent's `sysprompt.kv`: the agent loads it by its fixed path,
    /// and ds4's budget never counts it (its name is not 40 hex digits).
    NotCountedName,
    /// Not a readable checkpoint (the `Defect` code): evict never deletes
    /// it under ds4; under hanzo-engine, which counts and would delete it,
    /// only with `--include-unloadable`.
    Invalid { code: Code },
    /// A foreign file: never deleted by evict (`kvc rm` deletes one when
    /// named).
    Foreign { what: String },
    /// A `*.kv` name that is not a checkpoint name (hanzo-engine counts it
    /// and would delete it): only with `--include-unloadable`.
    Stray,
    /// A directory named `*.kv`: hanzo-engine counts it, fails to remove
    /// it and goes on without subtracting its size; kvc keeps it too.
    Directory,
    /// A symbolic link: kvc never acts on one (hanzo-engine would remove
    /// the link; ds4 follows it and counts its target).
    Symlink,
}

impl Keep {
    /// Stable code: `not-loaded`, `not-counted-name`, `invalid`, `foreign`,
    /// `stray`, `directory`, `symlink` ([`Code`]).
    pub fn code(&self) -> Code {
        match self {
            Keep::NotLoaded(_) => Code::NotLoaded,
            Keep::NotCountedName => Code::NotCountedName,
            Keep::Invalid { .. } => Code::Invalid,
            Keep::Foreign { .. } => Code::Foreign,
            Keep::Stray => Code::Stray,
            Keep::Directory => Code::Directory,
            Keep::Symlink => Code::Symlink,
        }
    }

    /// A few words, to follow a count: `with payload ABI 0 (never
    /// loaded)`, `sysprompt.kv (…)`, `invalid (truncated)`.
    pub fn detail(&self) -> String {
        match self {
            Keep::NotLoaded(n) => format!("with {n} (never loaded)"),
            Keep::NotCountedName => "sysprompt.kv (ds4-agent loads it by its name)".into(),
            Keep::Invalid { code } => format!("invalid ({code})"),
            Keep::Foreign { .. } => "foreign".into(),
            Keep::Stray => "*.kv name that is not a checkpoint name".into(),
            Keep::Directory => "directory".into(),
            Keep::Symlink => "symbolic link".into(),
        }
    }
}

/// An entry the plan leaves alone, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub file: String,
    pub size: u64,
    /// The engine's budget counts it (it is in the total the budget is
    /// compared with, and the engine's own pass could delete it).
    pub counted: bool,
    pub why: Keep,
    /// `--include-unloadable` would delete it.
    pub deletable_on_request: bool,
}

/// One entry the plan deletes, as it was when planned.
#[derive(Clone, Debug, PartialEq)]
pub struct Victim {
    /// `None` for a `*.kv` name that is not a checkpoint name.
    pub key: Option<Key>,
    /// Name on disk.
    pub file: String,
    pub path: PathBuf,
    pub size: u64,
    /// The header at planning time; deletion re-reads and compares it.
    /// `None` for an entry that is not a readable checkpoint (deleted under
    /// hanzo-engine with `--include-unloadable`), whose `lstat` is compared
    /// instead.
    pub header: Option<Header>,
    pub(crate) stat: Option<Stat>,
    /// The inode a checkpoint victim was read from: it is deleted only
    /// while its name is still that inode.
    pub id: FileId,
    pub kind: EntryKind,
    /// In the engine's population: deleting it lowers the counted total.
    pub counted: bool,
    pub score: Option<f64>,
    pub superseded: bool,
    pub why: Why,
}

impl Victim {
    /// The key, or the file name when there is none (as the journal names
    /// temp files).
    pub fn name(&self) -> String {
        self.key
            .as_ref()
            .map_or_else(|| self.file.clone(), |k| k.to_string())
    }

    /// The header's reason name, empty without a header.
    pub(crate) fn reason_name(&self) -> String {
        self.header
            .as_ref()
            .map_or_else(String::new, |h| h.reason.name().into_owned())
    }
}

/// What eviction would do to one directory.
#[derive(Clone, Debug)]
pub struct EvictPlan {
    pub dir: PathBuf,
    pub options: EvictOptions,
    /// The engine whose population and order apply, and how it was decided.
    pub engine: EngineChoice,
    pub policy: Policy,
    pub policy_from: PolicyFrom,
    /// The budget the plan applies: the one given, or under `lru` with
    /// `engine_minimum` at least hanzo-engine's 64 MiB.
    pub budget: Option<u64>,
    /// Entries the engine's budget counts, and their bytes: the engine's
    /// own total, the one the budget is compared with.
    pub counted: usize,
    pub counted_bytes: u64,
    /// Counted entries the options protect, and their bytes.
    pub protected: usize,
    pub protected_bytes: u64,
    /// Entries left alone that are not protected by the options: what the
    /// engine does not count, and what it counts but kvc will not delete.
    pub kept: Vec<Kept>,
    /// Readable checkpoints the engine never loads, and their bytes (as
    /// `kvc ls` reports them).
    pub never_loaded: (usize, u64),
    /// Bytes of foreign files and their companions.
    pub foreign_bytes: u64,
    /// Bytes of every entry of the directory (checkpoints, invalid,
    /// foreign, temp, stray): what the disk holds.
    pub total_bytes: u64,
    /// Some waypoint is superseded at rest (kvc's extension of ds4's test:
    /// output says so).
    pub superseded_at_rest: bool,
    /// In eviction order, first victim first (victims the engine does not
    /// count, deleted on request, last).
    pub victims: Vec<Victim>,
}

impl EvictPlan {
    pub fn bytes_to_free(&self) -> u64 {
        self.victims.iter().map(|v| v.size).sum()
    }

    /// Counted bytes left once the plan is carried out.
    pub fn bytes_after(&self) -> u64 {
        let counted_gone: u64 = self
            .victims
            .iter()
            .filter(|v| v.counted)
            .map(|v| v.size)
            .sum();
        self.counted_bytes - counted_gone
    }

    /// Counted entries left once the plan is carried out.
    pub fn counted_after(&self) -> usize {
        self.counted - self.victims.iter().filter(|v| v.counted).count()
    }

    /// Whether the plan brings the directory within the budget (true
    /// without one). False when what is protected or kept alone exceeds it.
    pub fn budget_met(&self) -> bool {
        self.budget.is_none_or(|b| self.bytes_after() <= b)
    }

    /// What the plan deletes, against the bytes of the whole directory:
    /// what `--max-delete` weighs.
    pub fn deletion(&self) -> Deletion {
        Deletion {
            files: self.victims.len(),
            bytes: self.bytes_to_free(),
            base: self.total_bytes,
        }
    }

    /// Bytes of the kept entries that the engine counts, and of those it
    /// does not.
    pub fn kept_bytes(&self) -> (u64, u64) {
        self.kept.iter().fold((0, 0), |(c, n), k| {
            if k.counted {
                (c + k.size, n)
            } else {
                (c, n + k.size)
            }
        })
    }
}

/// hanzo-engine counts an entry whose `Path::extension()` is `kv` and whose
/// stem is UTF-8 (disk_kv_cache.rs `scan_entries`, c8bcee7d5).
pub(crate) fn hanzo_counts(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("kv")
        && path.file_stem().and_then(|s| s.to_str()).is_some()
}

/// Whether the engine's budget counts a foreign file. ds4's reader decides
/// by header bytes alone: a version-1, ABI-2 LZ4 file passes it, and its
/// budget counts it; hanzo-engine counts every `*.kv` name.
fn foreign_counted(f: &scan::Foreign, engine: Engine) -> bool {
    if engine.reader().every_kv_name {
        hanzo_counts(&f.path)
    } else {
        f.loadable.is_ok() && engine.reader().counts_name(&f.key)
    }
}

/// The entries the engine's budget counts that are not readable
/// checkpoints, and their bytes as the engine sees them: a foreign file
/// ds4's reader accepts, and under hanzo-engine every `*.kv` entry (invalid
/// ones, and names that are not checkpoint names). With the counted
/// checkpoints, exactly [`EvictPlan::counted`]: `kvc stats` reports the same
/// population `kvc evict` weighs.
pub fn counted_apart(scan: &Scan, engine: Engine) -> (usize, u64) {
    let every_kv = engine.reader().every_kv_name;
    let mut n = 0;
    let mut bytes = 0;
    for f in scan.foreign.iter().filter(|f| foreign_counted(f, engine)) {
        n += 1;
        bytes += f.size;
    }
    if every_kv {
        let own = |p: &Path, scanned: u64| fs::symlink_metadata(p).map_or(scanned, |m| m.len());
        for i in scan.invalid.iter().filter(|i| hanzo_counts(&i.path)) {
            n += 1;
            bytes += own(&i.path, i.size);
        }
        for s in scan.strays.iter().filter(|s| hanzo_counts(&s.path)) {
            n += 1;
            bytes += own(&s.path, s.size);
        }
    }
    (n, bytes)
}

/// The `last_used` hanzo-engine reads from an entry's first 48 bytes:
/// magic `KVC` and version 1, else 0 (`KvcHeader::read` failing). Links
/// are not followed (kvc never deletes one, so where it sorts changes
/// nothing).
fn raw_last_used(path: &Path) -> u64 {
    let Ok(f) = scan::open_nofollow(path) else {
        return 0;
    };
    let mut h = [0u8; HEADER_LEN];
    if f.read_exact_at(&mut h, 0).is_err() || h[..3] != MAGIC || h[3] != VERSION {
        return 0;
    }
    u64::from_le_bytes(h[32..40].try_into().expect("8 bytes"))
}

/// The entries of a scan the plan weighs, in the engine's terms, and the
/// bytes they hold beyond what the scan counted (a scan counts links and
/// directories as 0 bytes; hanzo-engine counts them at their own size).
fn entries(scan: &Scan, engine: Engine) -> (Vec<Entry>, u64) {
    let mut more = 0;
    let every_kv = engine.reader().every_kv_name;
    let lstat = |p: &Path| fs::symlink_metadata(p).ok();
    let mut out = Vec::new();
    for (i, c) in scan.checkpoints.iter().enumerate() {
        out.push(Entry {
            named: None,
            size: c.size,
            order: c.order,
            kind: EntryKind::Checkpoint(i),
            counted: c.is_counted(engine),
            last_used: c.header.last_used,
            regular: true,
            id: c.id,
        });
    }
    for f in &scan.foreign {
        let readable = f.header.magic == MAGIC && f.header.version == VERSION;
        out.push(Entry {
            named: Entry::named(&f.file, &f.path, Some(f.key.clone()), None),
            size: f.size,
            order: f.order,
            kind: EntryKind::Foreign {
                what: f.what.clone(),
            },
            counted: foreign_counted(f, engine),
            last_used: if readable { f.header.last_used } else { 0 },
            regular: true,
            id: f.id,
        });
    }
    for i in &scan.invalid {
        let meta = lstat(&i.path);
        let size = meta.as_ref().map_or(i.size, |m| m.len());
        more += size.saturating_sub(i.size);
        let kind = match &meta {
            Some(m) if m.file_type().is_symlink() => EntryKind::Symlink,
            Some(m) if m.is_dir() => EntryKind::Directory,
            _ => EntryKind::Invalid { code: i.code },
        };
        out.push(Entry {
            named: Entry::named(
                &i.file,
                &i.path,
                Key::from_file_name(&i.file),
                meta.as_ref().map(Stat::of),
            ),
            // Their own size, as hanzo-engine's `DirEntry::metadata` sees it.
            size,
            order: i.order,
            // ds4's reader rejects every envelope kvc rejects; it follows a
            // link, which kvc does not (the totals then differ by the size
            // of the link's target).
            counted: every_kv && hanzo_counts(&i.path),
            last_used: if kind == (EntryKind::Invalid { code: i.code }) {
                raw_last_used(&i.path)
            } else {
                0
            },
            regular: meta.as_ref().is_some_and(|m| m.is_file()),
            kind,
            id: FileId::default(),
        });
    }
    if every_kv {
        for s in scan.strays.iter().filter(|s| hanzo_counts(&s.path)) {
            let meta = lstat(&s.path);
            let size = meta.as_ref().map_or(s.size, |m| m.len());
            more += size.saturating_sub(s.size);
            let kind = if s.is_symlink {
                EntryKind::Symlink
            } else if s.is_dir {
                EntryKind::Directory
            } else {
                EntryKind::Stray
            };
            out.push(Entry {
                named: Entry::named(&s.file, &s.path, None, meta.as_ref().map(Stat::of)),
                size,
                order: s.order,
                last_used: if kind == EntryKind::Stray {
                    raw_last_used(&s.path)
                } else {
                    0
                },
                regular: meta.as_ref().is_some_and(|m| m.is_file()),
                kind,
                counted: true,
                id: FileId::default(),
            });
        }
    }
    (out, more)
}

/// Why kvc keeps an entry whatever the options say, if it does, and
/// whether `--include-unloadable` lifts that.
fn keep_why(e: &Entry, scan: &Scan, engine: Engine) -> Option<(Keep, bool)> {
    match &e.kind {
        EntryKind::Checkpoint(i) => {
            let c = &scan.checkpoints[*i];
            match (&c.loadable, e.counted) {
                (_, true) => None,
                (Err(n), false) => Some((Keep::NotLoaded(n.clone()), true)),
                (Ok(()), false) => {
                    debug_assert!(!engine.reader().counts_name(&c.key));
                    Some((Keep::NotCountedName, true))
                }
            }
        }
        // Only hanzo-engine counts these; it would delete them (a regular
        // file: a FIFO or a socket kvc leaves alone).
        EntryKind::Invalid { code } => {
            Some((Keep::Invalid { code: *code }, e.counted && e.regular))
        }
        EntryKind::Stray => Some((Keep::Stray, e.counted && e.regular)),
        EntryKind::Foreign { what } => Some((Keep::Foreign { what: what.clone() }, false)),
        EntryKind::Directory => Some((Keep::Directory, false)),
        EntryKind::Symlink => Some((Keep::Symlink, false)),
    }
}

/// Plan over a scan, with the scan's engine. The `ds4` policy streams the
/// texts of the waypoints and of the checkpoints that may supersede them
/// from the files (or from the scan, when it read them).
pub fn plan(scan: &Scan, opts: &EvictOptions) -> EvictPlan {
    plan_excluding(scan, opts, &BTreeSet::new())
}

/// One entry's place in the order.
struct Slot {
    entry: usize,
    score: Option<f64>,
    superseded: bool,
}

/// Plan, also leaving out `exclude` (entries that could not be deleted in
/// an earlier pass: they still count, but are not picked again).
fn plan_excluding(scan: &Scan, opts: &EvictOptions, exclude: &BTreeSet<String>) -> EvictPlan {
    let engine = scan.engine.engine;
    let (policy, policy_from) = PolicyFrom::resolve(opts.policy, engine);
    let budget = opts.budget.map(|b| match policy.min_budget() {
        Some(min) if opts.engine_minimum => b.max(min),
        _ => b,
    });
    let (entries, unlisted_bytes) = entries(scan, engine);
    let keep: Vec<Option<(Keep, bool)>> =
        entries.iter().map(|e| keep_why(e, scan, engine)).collect();
    let by_options = |e: &Entry| match &e.kind {
        EntryKind::Checkpoint(i) => opts.is_protected(&scan.checkpoints[*i]),
        _ => e.key(scan).is_some_and(|k| opts.protect.contains(k)),
    };
    let deletable = |i: usize| match &keep[i] {
        None => true,
        Some((_, on_request)) => *on_request && opts.include_unloadable,
    };
    let cutoff = opts.age_cutoff();
    let used = |e: &Entry| match &e.kind {
        EntryKind::Checkpoint(i) => scan.checkpoints[*i].header.used_time(),
        _ => e.last_used,
    };
    let is_old = |e: &Entry| cutoff.is_some_and(|t| used(e) < t);

    // The engine's order over its population: the checkpoints by the
    // policy, entries without a readable header first (hanzo-engine reads
    // their last_used as 0; no ds4 population has any).
    let cps = &scan.checkpoints;
    let ranks = policy::eviction_order(
        &RankOptions {
            policy,
            now: opts.now,
            reject_different_quant: opts.reject_different_quant,
        },
        cps,
        |c| c.is_counted(engine),
    );
    let mut at_checkpoint = vec![usize::MAX; cps.len()];
    for (i, e) in entries.iter().enumerate() {
        if let EntryKind::Checkpoint(c) = e.kind {
            at_checkpoint[c] = i;
        }
    }
    let mut slots: Vec<Slot> = ranks
        .iter()
        .map(|r| Slot {
            entry: at_checkpoint[r.index],
            score: r.score,
            superseded: r.superseded,
        })
        .collect();
    slots.extend(
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.counted && !matches!(e.kind, EntryKind::Checkpoint(_)))
            .map(|(i, _)| Slot {
                entry: i,
                score: None,
                superseded: false,
            }),
    );
    let key = |s: &Slot| OrderKey {
        score: s.score,
        last_used: entries[s.entry].last_used,
        order: entries[s.entry].order,
    };
    let scored = policy.has_score();
    slots.sort_by(|a, b| policy::engine_cmp(&key(a), &key(b), scored));

    let victim = |e: &Entry, slot: Option<&Slot>, why: Why| Victim {
        key: e.key(scan).cloned(),
        file: e.file(scan).into_owned(),
        path: e.path(scan),
        size: e.size,
        header: match &e.kind {
            EntryKind::Checkpoint(i) => Some(cps[*i].header.clone()),
            _ => None,
        },
        stat: e.stat(),
        id: e.id,
        kind: e.kind.clone(),
        counted: e.counted,
        score: slot.and_then(|s| s.score),
        superseded: slot.is_some_and(|s| s.superseded),
        why,
    };
    let counted_bytes: u64 = entries.iter().filter(|e| e.counted).map(|e| e.size).sum();
    let candidate = |i: usize| {
        deletable(i)
            && !by_options(&entries[i])
            && (exclude.is_empty() || !exclude.contains(&*entries[i].file(scan)))
    };
    // Age victims go whatever the budget says, so they count as gone before
    // the budget walk starts: the budget then takes no more than it needs.
    let age_bytes: u64 = slots
        .iter()
        .filter(|s| candidate(s.entry) && is_old(&entries[s.entry]))
        .map(|s| entries[s.entry].size)
        .sum();
    let mut remaining = counted_bytes - age_bytes;
    let mut victims = Vec::new();
    // Entries picked, by index (each is one name of the directory).
    let mut picked = vec![false; entries.len()];
    if budget.is_some() || cutoff.is_some() {
        for s in &slots {
            let e = &entries[s.entry];
            if !candidate(s.entry) {
                // Kept, and still counted: the walk goes on without
                // subtracting it, as hanzo-engine does for an entry it
                // fails to remove.
                continue;
            }
            let why = Why {
                budget: budget.is_some_and(|b| remaining > b),
                age: is_old(e),
                unloadable: false,
            };
            if why.budget && !why.age {
                remaining -= e.size;
            }
            if why.any() {
                picked[s.entry] = true;
                victims.push(victim(e, Some(s), why));
            } else if cutoff.is_none() {
                // Within budget, and the remaining total only falls.
                break;
            }
        }
    }
    // On request, what the engine never counts and kvc can identify.
    if opts.include_unloadable {
        for (i, e) in entries.iter().enumerate() {
            if !e.counted && candidate(i) {
                let why = Why {
                    unloadable: true,
                    ..Why::default()
                };
                picked[i] = true;
                victims.push(victim(e, None, why));
            }
        }
    }
    let (mut n_protected, mut protected_bytes) = (0, 0);
    let mut kept = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if picked[i] {
            continue;
        }
        let keep_it = |why: &Keep, on_request: bool| Kept {
            file: e.file(scan).into_owned(),
            size: e.size,
            counted: e.counted,
            why: why.clone(),
            deletable_on_request: on_request,
        };
        match &keep[i] {
            // A counted checkpoint.
            None if by_options(e) => {
                n_protected += 1;
                protected_bytes += e.size;
            }
            None => {}
            Some((why, on_request)) if !deletable(i) => kept.push(keep_it(why, *on_request)),
            // Deletable on request, and requested, but protected.
            Some(_) if by_options(e) && e.counted => {
                n_protected += 1;
                protected_bytes += e.size;
            }
            Some((why, on_request)) if by_options(e) => kept.push(keep_it(why, *on_request)),
            // Deletable, and not needed by the budget.
            Some(_) => {}
        }
    }
    EvictPlan {
        dir: scan.dir.clone(),
        options: opts.clone(),
        engine: scan.engine.clone(),
        policy,
        policy_from,
        budget,
        counted: entries.iter().filter(|e| e.counted).count(),
        counted_bytes,
        protected: n_protected,
        protected_bytes,
        kept,
        never_loaded: scan.never_loaded(),
        foreign_bytes: scan.foreign_bytes(),
        total_bytes: scan.total_bytes() + unlisted_bytes,
        superseded_at_rest: ranks.iter().any(|r| r.superseded),
        victims,
    }
}

/// Scan `dir` (headers only) and plan. Reads only: no lock, no `.kvc/`,
/// nothing touched. This is `--dry-run`.
pub fn plan_dir(dir: &Path, opts: &EvictOptions) -> Result<EvictPlan> {
    plan_dir_excluding(dir, opts, &BTreeSet::new())
}

fn plan_dir_excluding(
    dir: &Path,
    opts: &EvictOptions,
    exclude: &BTreeSet<String>,
) -> Result<EvictPlan> {
    let scan = scan::scan_dir(dir, ScanOptions::headers(opts.engine))?;
    Ok(plan_excluding(&scan, opts, exclude))
}

/// What happened to one victim.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    /// Removed and journaled. `unsynced`: the directory's fsync failed
    /// after the unlink, so the removal may not survive a crash yet.
    Removed { unsynced: Option<String> },
    /// Already gone (an engine evicted or consumed it): not an error.
    Vanished,
    /// Its header changed since planning: the engine just used it. Left
    /// alone; the directory is planned again.
    Touched { change: String },
    /// No longer reads as a checkpoint. Left alone (a corrupt file is
    /// reported, never silently deleted); the directory is planned again.
    Invalid { code: Code, error: String },
    /// Removing it failed; it is not picked again in this run.
    Failed { error: String },
}

impl Fate {
    /// Whether the file is gone from the directory.
    pub(crate) fn is_gone(&self) -> bool {
        matches!(self, Fate::Removed { .. } | Fate::Vanished)
    }

    /// Stable code: `removed`, `vanished`, `touched`, `invalid`, `failed`
    /// ([`Code`]; `removed` as `rm` and `gc` say it).
    pub fn code(&self) -> Code {
        match self {
            Fate::Removed { .. } => Code::Removed,
            Fate::Vanished => Code::Vanished,
            Fate::Touched { .. } => Code::Touched,
            Fate::Invalid { .. } => Code::Invalid,
            Fate::Failed { .. } => Code::Failed,
        }
    }

    /// One line for a person, empty for the plain outcomes.
    pub fn detail(&self) -> String {
        match self {
            Fate::Removed { unsynced: None } | Fate::Vanished => String::new(),
            Fate::Removed { unsynced: Some(e) } => {
                format!("removed, but not durable yet: the directory's fsync failed ({e})")
            }
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
    fn planned(&mut self, _plan: &EvictPlan) {}
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
    pub first_plan: EvictPlan,
    /// Every victim handled, in order, over all passes.
    pub handled: Vec<Handled>,
    /// Plans made and carried out (1 + re-plans).
    pub passes: usize,
    /// Stopped after [`MAX_REPLANS`] re-plans with victims left undone.
    pub gave_up: bool,
    /// A re-plan wanted more than the limit left (`EvictOptions::limit`):
    /// its victims were cut to fit.
    pub limited: bool,
    /// Counted entries and bytes left at the end (what the engine's budget
    /// counts).
    pub counted_after: usize,
    pub bytes_after: u64,
    /// Protected entries at the end.
    pub protected: usize,
    pub protected_bytes: u64,
}

impl EvictResult {
    pub fn deleted(&self) -> impl Iterator<Item = &Handled> {
        self.handled
            .iter()
            .filter(|h| matches!(h.fate, Fate::Removed { .. }))
    }

    /// Bytes this run removed (not counting files that vanished on their own).
    pub fn freed_bytes(&self) -> u64 {
        self.deleted().map(|h| h.victim.size).sum()
    }

    pub fn budget_met(&self) -> bool {
        self.first_plan.budget.is_none_or(|b| self.bytes_after <= b)
    }
}

/// What changed in a header, for the report: `hits 3 -> 4, last_used …`.
fn describe_change(was: &Header, size: u64, now: &Checkpoint) -> Option<String> {
    let (a, b) = (was, &now.header);
    let mut parts = Vec::new();
    if a.hits != b.hits {
        parts.push(format!("hits {} -> {}", a.hits, b.hits));
    }
    if a.last_used != b.last_used {
        parts.push(format!("last_used {} -> {}", a.last_used, b.last_used));
    }
    if size != now.size {
        parts.push(format!("size {} -> {}", size, now.size));
    }
    if parts.is_empty() && a != b {
        parts.push("header rewritten".into());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The journal record of one eviction.
pub(crate) fn record(now: u64, v: &Victim, policy: Policy) -> Record {
    Record::new(now, Op::Evict, &v.name(), v.size, v.why.joined())
        .with_header(v.header.as_ref())
        .with_score(v.score, policy)
}

/// Re-read the victim through the directory's descriptor and delete it if
/// it is still the file planned: the same inode, and for a checkpoint the
/// same header (an engine's hit rewrites it) and size.
fn delete_victim(session: &mut Session, dir: &Path, v: &Victim, policy: Policy) -> Result<Fate> {
    let judged = match (&v.header, &v.key, &v.stat) {
        (Some(header), Some(key), _) => {
            let f = match session.dir(dir)?.open_file(OsStr::new(&v.file), Open::Read) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Fate::Vanished),
                Err(e) => {
                    return Ok(Fate::Failed {
                        error: e.to_string(),
                    })
                }
            };
            let meta = match Meta::of_file(&f) {
                Ok(m) => m,
                Err(e) => {
                    return Ok(Fate::Failed {
                        error: e.to_string(),
                    })
                }
            };
            let judged = Judged {
                dev: v.id.dev,
                ino: v.id.ino,
                size: None,
                mtime: None,
            };
            if let Err(c) = judged.matches(&meta) {
                return Ok(Fate::Touched {
                    change: c.to_string(),
                });
            }
            let c = match scan::load_open(&v.path, key.clone(), f, ScanOptions::default()) {
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
                        code: Code::Foreign,
                        error: f.what,
                    })
                }
                Loaded::Checkpoint(c) => c,
            };
            if let Some(change) = describe_change(header, v.size, &c) {
                return Ok(Fate::Touched { change });
            }
            judged
        }
        // Not a readable checkpoint (hanzo-engine's population, on
        // request): still the same regular file, or left alone.
        (_, _, Some(stat)) => stat.judged(),
        _ => {
            return Ok(Fate::Failed {
                error: "nothing to compare it with; left alone".into(),
            })
        }
    };
    // The window between this check and the unlink is a few system calls;
    // an engine hit inside it loses a checkpoint its own budget pass could
    // equally have evicted, and the engine holds the file open while loading.
    match session.remove(dir, &v.file, &judged)? {
        Removal::Removed { unsynced } => {
            let rec = record(session.now(), v, policy);
            session.journal(dir, &[rec])?;
            Ok(Fate::Removed { unsynced })
        }
        Removal::Vanished => Ok(Fate::Vanished),
        Removal::Changed(c) => Ok(Fate::Touched {
            change: c.to_string(),
        }),
        Removal::Failed(e) => Ok(Fate::Failed {
            error: e.to_string(),
        }),
    }
}

/// Carry out a plan in the write session: a plan with no victim touches
/// nothing (no lock, no `.kvc/`); otherwise the lock of the plan's
/// directory is taken, the directory planned again under it (another kvc
/// may have evicted since), and the victims deleted one by one, each
/// re-read first and journaled after. If the journal cannot be written,
/// eviction stops with that error, so at most the one deletion just made
/// goes unrecorded.
///
/// An import's `--budget` pass calls this while its session already holds
/// the lock.
pub fn apply(session: &mut Session, plan: EvictPlan, hooks: &mut dyn Hooks) -> Result<EvictResult> {
    let dir = plan.dir.clone();
    let opts = plan.options.clone();
    let plan = if session.holds(&dir) {
        plan
    } else if plan.victims.is_empty() {
        return Ok(EvictResult::nothing(plan));
    } else {
        session.lock(&[&dir])?;
        plan_dir(&dir, &opts)?
    };
    // The plan carried out is the one made under the lock: it is the one
    // weighed, before anything is deleted.
    plan.deletion().check(&dir, opts.limit)?;
    execute(session, &dir, &opts, hooks, plan)
}

impl EvictResult {
    /// The result of a plan with nothing to do.
    fn nothing(plan: EvictPlan) -> EvictResult {
        EvictResult {
            counted_after: plan.counted,
            bytes_after: plan.counted_bytes,
            protected: plan.protected,
            protected_bytes: plan.protected_bytes,
            first_plan: plan,
            handled: Vec::new(),
            passes: 1,
            gave_up: false,
            limited: false,
        }
    }
}

/// Carry out `plan`, re-planning after touched victims (lock held).
fn execute(
    session: &mut Session,
    dir: &Path,
    opts: &EvictOptions,
    hooks: &mut dyn Hooks,
    mut plan: EvictPlan,
) -> Result<EvictResult> {
    let mut result = EvictResult::nothing(plan.clone());
    result.passes = 0;
    let mut exclude = BTreeSet::new();
    // What this run deleted so far, against the first plan's directory.
    let mut spent = Deletion {
        base: plan.total_bytes,
        ..Deletion::default()
    };
    loop {
        result.passes += 1;
        if let (Some(l), true) = (opts.limit, result.passes > 1) {
            let before = plan.victims.len();
            let mut d = spent;
            let fits = plan
                .victims
                .iter()
                .take_while(|v| {
                    d.files += 1;
                    d.bytes += v.size;
                    l.max.allows(&d)
                })
                .count();
            plan.victims.truncate(fits);
            result.limited |= fits < before;
        }
        hooks.planned(&plan);
        let (mut gone, mut gone_bytes) = (0, 0);
        let mut replan = false;
        for v in &plan.victims {
            hooks.before_delete(v);
            let fate = delete_victim(session, dir, v, plan.policy)?;
            hooks.handled(v, &fate);
            if matches!(fate, Fate::Removed { .. }) {
                spent.files += 1;
                spent.bytes += v.size;
            }
            if fate.is_gone() {
                if v.counted {
                    gone += 1;
                    gone_bytes += v.size;
                }
            } else {
                if matches!(fate, Fate::Failed { .. }) {
                    exclude.insert(v.file.clone());
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
        result.counted_after = plan.counted - gone;
        result.bytes_after = plan.counted_bytes - gone_bytes;
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
        let key = Key::from_hex(&format!("{n:02x}").repeat(20)).unwrap();
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
            engine: EngineChoice::given(Engine::Ds4Classic),
            checkpoints: cps,
            ..Scan::default()
        }
    }

    fn opts(budget: Option<u64>, older_than: Option<u64>) -> EvictOptions {
        EvictOptions {
            policy: Some(Policy::Lru),
            now: NOW,
            budget,
            older_than,
            ..EvictOptions::default()
        }
    }

    fn keys(p: &EvictPlan) -> Vec<(u8, Vec<&'static str>)> {
        p.victims
            .iter()
            .map(|v| {
                (
                    u8::from_str_radix(&v.name()[..2], 16).unwrap(),
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
        o.policy = Some(Policy::Ds4Classic);
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
        let mut o = opts(Some(0), None);
        o.protect.insert(s.checkpoints[1].key.clone());
        let p = plan(&s, &o);
        assert_eq!(keys(&p), [(3, vec!["budget"])]);
        assert_eq!((p.protected, p.protected_bytes), (2, 200));
        assert!(!p.budget_met());
        o.include_agent = true;
        let p = plan(&s, &o);
        assert_eq!(p.victims.len(), 2);
        assert_eq!(p.protected, 1);

        // ds4's budget never counts sysprompt.kv: kept apart, not
        // protected, and deleted only on request (and as an agent save).
        s.checkpoints[2].key = Key::Sysprompt;
        let p = plan(&s, &o);
        assert_eq!((p.counted, p.counted_bytes), (2, 200));
        assert_eq!(p.kept.len(), 1);
        assert_eq!(p.kept[0].why, Keep::NotCountedName);
        assert!(!p.kept[0].counted && p.kept[0].deletable_on_request);
        o.include_unloadable = true;
        let p = plan(&s, &o);
        assert!(p.kept.is_empty());
        let why: Vec<_> = p.victims.iter().map(|v| v.why.joined()).collect();
        assert_eq!(why, ["budget", "unloadable"]);
        assert!(!p.victims[1].counted);
    }

    #[test]
    fn why_serializes_as_a_list() {
        let w = Why {
            budget: true,
            age: true,
            unloadable: false,
        };
        assert_eq!(serde_json::to_string(&w).unwrap(), r#"["budget","age"]"#);
        assert_eq!(w.joined(), "budget,age");
    }
}
