//! `kvc trailer set/prune/strip`: rewriting the tool-id map trailers
//! (FORMAT.md §5) of checkpoints, as a write like every other.
//!
//! [`plan`] (read-only: it is `--dry-run`) reads each file and works out
//! what the edit does to it; [`apply`] takes the lock of every directory
//! involved at once, in path order, then for each file reads it again
//! under the lock, plans again (an engine may have written it since), and
//! rewrites it crash-safely ([`rewrite`]), journaling each rewrite once it
//! is durable. A file that fails is reported on its own and the others
//! are still done.
//!
//! The crash tests drive [`apply`] through [`Hooks::step`], which is
//! called between every two writes of a rewrite: the release binary
//! carries no test hook.

pub mod json;
pub mod rewrite;

use crate::code::Code;
use crate::error::{Error, Result};
use crate::format::checkpoint::{self, Key};
use crate::format::dialect::Engine;
use crate::resolve;
use crate::scan::{self, ScanOptions};
use crate::session::journal::{self as journal, Record};
use crate::session::{parent_dir, Session};
use crate::text::sanitize_line;
use rewrite::{Applied, Edit, Method, Step, TrailerState, Used};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Which trailer command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Set,
    Prune,
    Strip,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Prune => "prune",
            Op::Strip => "strip",
        }
    }

    /// The journal's op.
    pub(crate) fn journal_op(self) -> journal::Op {
        match self {
            Op::Set => journal::Op::TrailerSet,
            Op::Prune => journal::Op::TrailerPrune,
            Op::Strip => journal::Op::TrailerStrip,
        }
    }
}

/// The key a file's name denotes, or the name itself, for showing.
pub fn key_of(path: &Path) -> String {
    let name = file_name(path);
    Key::from_file_name(&name)
        .map(|k| k.to_string())
        .unwrap_or_else(|| sanitize_line(name.as_bytes()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The engine that reads each directory (it decides whether a pre-ABI ds4
/// file is that or a hanzo-engine file): one scan per directory, taken
/// when first needed.
#[derive(Debug, Default)]
pub struct Engines(BTreeMap<PathBuf, Engine>);

impl Engines {
    pub fn of(&mut self, dir: &Path) -> Engine {
        let id = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        *self.0.entry(id).or_insert_with(|| {
            // A directory that cannot be listed leaves kvc's default reading.
            scan::scan_dir(dir, ScanOptions::default()).map_or(Engine::Ds4, |s| s.engine.engine)
        })
    }
}

/// A file `--all` leaves alone, and why (a note, not an error).
#[derive(Clone, Debug)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

/// The files a command works on.
#[derive(Debug, Default)]
pub struct Targets {
    pub paths: Vec<PathBuf>,
    /// What `--all` met and leaves alone: ds4-agent sessions, hanzo-engine
    /// files, foreign files.
    pub skipped: Vec<Skipped>,
    /// The engines of the directories read so far.
    pub engines: Engines,
}

/// Resolve every key (`resolve::locate`: `dir` is `--dir`; `default_dir`
/// only when a key needs a directory) before touching anything: a typo
/// stops the command before the first rewrite. The same file named twice
/// is rewritten once.
pub fn targets_of_keys<E: From<Error>>(
    keys: &[String],
    dir: Option<&Path>,
    default_dir: impl Fn() -> std::result::Result<PathBuf, E>,
) -> std::result::Result<Targets, E> {
    let mut seen = HashSet::new();
    let mut out = Targets::default();
    for k in keys {
        let p = resolve::locate(k, dir, &default_dir)?.path;
        let id = fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.insert(id) {
            out.paths.push(p);
        }
    }
    Ok(out)
}

/// `--all`: every checkpoint of `dir` with something for `op` to do, and
/// the files it leaves alone with why.
pub fn targets_all(dir: &Path, op: Op) -> Result<Targets> {
    let scan = scan::scan_dir(dir, ScanOptions::default())?;
    let mut out = Targets::default();
    let id = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    out.engines.0.insert(id, scan.engine.engine);
    for c in scan.checkpoints {
        // prune: bit 0 set (a map, or a broken one); strip: that, or bytes
        // after the payload.
        let wanted = c.header.ext_flags.has_tool_map()
            || op == Op::Strip && c.size > checkpoint::payload_end(&c.header, c.text_len);
        if !wanted {
            continue;
        }
        match rewrite::tool_map_rule(c.dialect, &c.header) {
            Ok(()) => out.paths.push(c.path()),
            Err(why) => out.skipped.push(Skipped {
                path: c.path(),
                why: why.to_string(),
            }),
        }
    }
    // A foreign file whose flag byte has bit 0 set would look like a
    // candidate to a reader of ds4's rules: say why it is left alone.
    for f in scan.foreign {
        if f.header.ext_flags.has_tool_map() {
            let why = rewrite::NotToolMap::Foreign(f.what.clone()).to_string();
            out.skipped.push(Skipped { path: f.path, why });
        }
    }
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// What became of one file, or would.
#[derive(Debug)]
pub struct FileResult {
    pub path: PathBuf,
    /// `rewritten`, `would-rewrite`, `unchanged`, `vanished`.
    pub code: Code,
    /// The plan made (under the lock, for a real run); `None` when the file
    /// vanished.
    pub plan: Option<rewrite::RewritePlan>,
    /// How it was written, when it was.
    pub used: Option<Used>,
    /// The journal's `why`, and the summary a person reads.
    pub why: String,
    /// Something worth saying about how it was written (a hard-linked file
    /// copied rather than rewritten in place).
    pub note: Option<String>,
}

/// What a trailer command would do: each target planned, or why it could
/// not be.
#[derive(Debug)]
pub struct TrailerPlan<'a> {
    pub op: Op,
    pub edit: Edit<'a>,
    pub files: Vec<(PathBuf, Result<FileResult>)>,
    pub skipped: Vec<Skipped>,
    engines: Engines,
}

/// Calls into the caller while `apply` runs.
pub trait Hooks {
    /// Between two writes of a rewrite of `path` (tests kill kvc here).
    fn step(&mut self, _path: &Path, _step: Step) {}
    /// One file dealt with (progress).
    fn file_done(&mut self, _path: &Path) {}
    /// `bytes` more of `path` copied into its new file (a rewrite by copy,
    /// which for a multi-GiB checkpoint takes a while): progress.
    fn copied(&mut self, _path: &Path, _bytes: u64) {}
}

/// No callbacks.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Plan `edit` on every target, reading only: the dry run.
pub fn plan<'a>(targets: Targets, op: Op, edit: Edit<'a>) -> TrailerPlan<'a> {
    let Targets {
        paths,
        skipped,
        mut engines,
    } = targets;
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let r = plan_one(&p, op, edit, false, &mut engines, Method::Auto);
        files.push((p, r));
    }
    TrailerPlan {
        op,
        edit,
        files,
        skipped,
        engines,
    }
}

fn plan_one(
    path: &Path,
    op: Op,
    edit: Edit<'_>,
    write: bool,
    engines: &mut Engines,
    method: Method,
) -> Result<FileResult> {
    let mut result = FileResult {
        path: path.to_path_buf(),
        code: Code::Vanished,
        plan: None,
        used: None,
        why: String::new(),
        note: None,
    };
    let Some(cf) = rewrite::open_checkpoint(path, write && method.writes_in_place())? else {
        return Ok(result);
    };
    let p = rewrite::plan(&cf, edit, engines.of(parent_dir(path)))?;
    result.why = why(op, &p);
    result.code = if p.changes {
        Code::WouldRewrite
    } else {
        if op == Op::Set {
            result.why = "the file already has this map".to_string();
        }
        Code::Unchanged
    };
    result.plan = Some(p);
    Ok(result)
}

/// Carry out `plan` in the write session (see the module documentation).
/// Returns one result per target, in order.
pub fn apply(
    session: &mut Session,
    plan: TrailerPlan<'_>,
    method: Method,
    hooks: &mut dyn Hooks,
) -> Result<Vec<(PathBuf, Result<FileResult>)>> {
    let TrailerPlan {
        op,
        edit,
        files,
        mut engines,
        ..
    } = plan;
    let dirs: Vec<&Path> = files
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(p, _)| parent_dir(p))
        .collect();
    session.lock(&dirs)?;
    let mut out = Vec::with_capacity(files.len());
    for (path, planned) in files {
        let r = match planned {
            Err(e) => Err(e),
            Ok(_) => apply_one(session, &path, op, edit, method, &mut engines, hooks),
        };
        hooks.file_done(&path);
        out.push((path, r));
    }
    Ok(out)
}

fn apply_one(
    session: &mut Session,
    path: &Path,
    op: Op,
    edit: Edit<'_>,
    method: Method,
    engines: &mut Engines,
    hooks: &mut dyn Hooks,
) -> Result<FileResult> {
    // Read (again) under the lock, through the locked directory's
    // descriptor: what is planned is what is on disk.
    let dir = session
        .dir(parent_dir(path))?
        .try_clone()
        .map_err(|e| Error::io(path, e))?;
    let Some(cf) = rewrite::open_checkpoint_in(&dir, path, method.writes_in_place())? else {
        return plan_one(path, op, edit, true, engines, method);
    };
    let p = rewrite::plan(&cf, edit, engines.of(parent_dir(path)))?;
    let mut result = FileResult {
        path: path.to_path_buf(),
        code: Code::Unchanged,
        why: why(op, &p),
        plan: None,
        used: None,
        note: None,
    };
    if !p.changes {
        if op == Op::Set {
            result.why = "the file already has this map".to_string();
        }
        result.plan = Some(p);
        return Ok(result);
    }
    let hooks = std::cell::RefCell::new(hooks);
    let mut hook = |s: Step| hooks.borrow_mut().step(path, s);
    let mut copied = |n: u64| hooks.borrow_mut().copied(path, n);
    let applied = rewrite::apply_in(&dir, &cf, &p, method, &mut hook, &mut copied)?;
    match applied {
        Applied::Unchanged => result.code = Code::Unchanged,
        Applied::Vanished => result.code = Code::Vanished,
        Applied::Rewritten { used, size, linked } => {
            result.code = Code::Rewritten;
            result.used = Some(used);
            if linked > 1 {
                result.note = Some(format!(
                    "the file has {linked} hard links (a `cp -al` backup?): written as a new file, so the other links keep the old bytes"
                ));
            }
            // The journal is appended once the file is durable: a crash in
            // between loses a record, never invents one.
            let rec = Record::new(
                session.now(),
                op.journal_op(),
                &key_of(path),
                size,
                result.why.clone(),
            )
            .with_header(Some(&cf.header));
            session.journal(parent_dir(path), &[rec])?;
        }
    }
    result.plan = Some(p);
    Ok(result)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The journal's `why`, and the summary a person reads.
pub fn why(op: Op, plan: &rewrite::RewritePlan) -> String {
    let (before_bytes, _) = plan.trailer_bytes();
    let was = match &plan.before {
        TrailerState::None => "no map".to_string(),
        TrailerState::Map(m) => plural(m.entries, "entry", "entries"),
        TrailerState::Stray { bytes, .. } => format!("{bytes} stray bytes"),
        TrailerState::Broken { .. } => "a broken trailer".to_string(),
    };
    match op {
        Op::Set => {
            let mut s = format!(
                "{} set (was {was})",
                plural(plan.after.entries.len(), "entry", "entries")
            );
            if !plan.missing.is_empty() {
                s.push_str(&format!(
                    "; {} not in the text (--allow-missing)",
                    plan.missing.len()
                ));
            }
            s
        }
        Op::Prune if plan.dropped.is_empty() => match &plan.before {
            TrailerState::Map(m) => format!(
                "nothing to drop, {} kept",
                plural(m.entries, "entry", "entries")
            ),
            _ => "no map".to_string(),
        },
        Op::Prune => {
            let count =
                |r: rewrite::DropReason| plan.dropped.iter().filter(|d| d.reason == r).count();
            let stale = count(rewrite::DropReason::NotInText);
            let dups = count(rewrite::DropReason::DuplicateId);
            let nul = count(rewrite::DropReason::NulStart);
            let mut parts = Vec::new();
            if stale > 0 {
                parts.push(format!("{stale} not in the text"));
            }
            if dups > 0 {
                parts.push(plural(dups, "duplicate id", "duplicate ids"));
            }
            if nul > 0 {
                parts.push(format!("{nul} starting with a NUL byte"));
            }
            let mut s = format!("{} dropped", plural(plan.dropped.len(), "entry", "entries"));
            if !parts.is_empty() {
                s.push_str(&format!(": {}", parts.join(", ")));
            }
            if plan.after.entries.is_empty() && !plan.dropped.is_empty() {
                s.push_str("; map removed");
            }
            s
        }
        Op::Strip => match &plan.before {
            TrailerState::Map(m) => {
                format!("map of {} removed", plural(m.entries, "entry", "entries"))
            }
            TrailerState::Broken { error, .. } => {
                format!("broken trailer removed ({before_bytes} bytes: {error})")
            }
            TrailerState::Stray { bytes, .. } => {
                format!("{bytes} stray bytes after the payload removed")
            }
            TrailerState::None => "no map".to_string(),
        },
    }
}
