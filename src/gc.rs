//! Removing what crashed writers left behind: temp files whose writer is
//! gone (FORMAT.md §2 — no engine ever removes one, and a ds4-server killed
//! mid-save leaves hundreds of MiB), and kvc's own state when it holds
//! nothing worth keeping.
//!
//! A temp file goes only when it is stale (not modified for `--temp-age`)
//! and no live writer is known: the pid in its name, when it has one, is not
//! running, and no process on this host holds the file open. No one sign is
//! enough: a slow save of a huge checkpoint keeps an old mtime for minutes;
//! ds4-agent's mkstemp names and hanzo-engine's `<key>.kv.tmp` carry no pid,
//! so only the writer's open descriptor shows the save in progress; and a
//! pid can be reused by an unrelated process (then the file is kept — the
//! safe mistake). When kvc cannot see every process that may hold a file
//! open (no `/proc`, or processes closed to it), a temp file without a
//! certain pid is kept, and the plan says why.

use crate::code::Code;
use crate::error::Result;
use crate::scan::{self, TempFile, TempKind};
use crate::session::journal::{Op, Record};
use crate::session::{Judged, Removal, Session};
use crate::sys::{pid_alive, Holding, Meta, OpenFiles, Unseen};
use serde::Serialize;
use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The journal's `why` for a removed temp file.
pub(crate) const WHY_STALE_TEMP: &str = "stale temp";

#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// Temp files modified less than this long ago are kept.
    pub temp_age: Duration,
    /// The clock the ages are measured against.
    pub now: SystemTime,
}

/// What gc makes of one temp file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Old, and no live writer is known: removed.
    Stale,
    /// The pid in its name is running: a save may be in progress. Also for
    /// a pid that may be mkstemp's random digits (`TempKind::pid_certain`):
    /// keeping a file by mistake is the safe mistake.
    WriterAlive,
    /// Modified within `--temp-age` (or in the future, or without a time).
    Recent,
    /// Not a regular file; gc removes files only.
    NotAFile,
    /// A process on this host holds it open: a save may be in progress
    /// (the only sign of one for a name without a pid).
    HeldOpen,
    /// No certain pid in its name, and kvc could not see every process that
    /// may hold it open (`Temp::unseen` says why).
    HoldersUnknown,
}

impl Verdict {
    /// Its stable code ([`Code`]).
    pub fn code(self) -> Code {
        match self {
            Verdict::Stale => Code::Stale,
            Verdict::WriterAlive => Code::WriterAlive,
            Verdict::Recent => Code::Recent,
            Verdict::NotAFile => Code::NotAFile,
            Verdict::HeldOpen => Code::HeldOpen,
            Verdict::HoldersUnknown => Code::HoldersUnknown,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Stale => "stale, no live writer",
            Verdict::WriterAlive => "the pid in its name is running",
            Verdict::Recent => "modified recently",
            Verdict::NotAFile => "not a regular file",
            Verdict::HeldOpen => "a process holds it open",
            Verdict::HoldersUnknown => {
                "no certain pid in its name, and kvc cannot see every process that may hold it open"
            }
        }
    }
}

/// A temp file's verdict, and what led to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Judgement {
    pub verdict: Verdict,
    /// Time since the last modification, when known and in the past.
    pub age: Option<Duration>,
    /// Why the holders are unknown, for [`Verdict::HoldersUnknown`].
    pub unseen: Option<Unseen>,
}

/// The judgement on temp files that `gc` and `verify`'s `stale-temp` share.
/// It walks `/proc` at most once, the first time a file's holders matter
/// (old, and no live pid), however many temp files there are.
#[derive(Debug)]
pub(crate) struct TempJudge {
    temp_age: Duration,
    now: SystemTime,
    open_files: OnceLock<OpenFiles>,
}

impl TempJudge {
    pub fn new(temp_age: Duration, now: SystemTime) -> TempJudge {
        TempJudge {
            temp_age,
            now,
            open_files: OnceLock::new(),
        }
    }

    /// Judge by `open_files` instead of walking `/proc`.
    #[cfg(test)]
    pub(crate) fn with_open_files(
        temp_age: Duration,
        now: SystemTime,
        open_files: OpenFiles,
    ) -> TempJudge {
        TempJudge {
            temp_age,
            now,
            open_files: OnceLock::from(open_files),
        }
    }

    /// Judge a temp file from its name and its `lstat`.
    pub fn judge(&self, kind: &TempKind, meta: &Metadata) -> Judgement {
        let age = meta
            .modified()
            .ok()
            .and_then(|m| self.now.duration_since(m).ok());
        let verdict = |verdict| Judgement {
            verdict,
            age,
            unseen: None,
        };
        if !meta.is_file() {
            return verdict(Verdict::NotAFile);
        }
        // Any pid, certain or not: a running one may be the writer.
        if kind.pid.is_some_and(pid_alive) {
            return verdict(Verdict::WriterAlive);
        }
        if age.is_none_or(|a| a < self.temp_age) {
            return verdict(Verdict::Recent);
        }
        match self.open_files.get_or_init(OpenFiles::scan).holding(meta) {
            Holding::Open => verdict(Verdict::HeldOpen),
            Holding::NotOpen => verdict(Verdict::Stale),
            // The writer named in the file is dead: that is what gc always
            // went by, and what a name with a pid lets it know.
            Holding::Unknown(_) if kind.certain_pid().is_some() => verdict(Verdict::Stale),
            // A dead "pid" that may be mkstemp's digits, or no pid: nothing
            // but the holders could tell, and they cannot be seen.
            Holding::Unknown(unseen) => Judgement {
                unseen: Some(unseen),
                ..verdict(Verdict::HoldersUnknown)
            },
        }
    }
}

/// One temp file and the verdict on it.
#[derive(Clone, Debug)]
pub struct Temp {
    pub file: TempFile,
    /// Time since the last modification, when known and in the past.
    pub age: Option<Duration>,
    pub verdict: Verdict,
    /// Why the holders are unknown, for [`Verdict::HoldersUnknown`].
    pub unseen: Option<Unseen>,
    /// What `lstat` said when it was judged: it is removed only while it
    /// is still exactly that file.
    pub meta: Meta,
}

/// Look at a temp file afresh: `None` when it is gone.
fn look(t: &TempFile, judge: &TempJudge) -> Option<Temp> {
    let meta = fs::symlink_metadata(&t.path).ok()?;
    let j = judge.judge(&t.kind, &meta);
    Some(Temp {
        file: TempFile {
            size: meta.len(),
            modified: meta.modified().ok(),
            ..t.clone()
        },
        age: j.age,
        verdict: j.verdict,
        unseen: j.unseen,
        meta: Meta::of(&meta),
    })
}

/// What gc would do to one directory.
#[derive(Clone, Debug)]
pub struct GcPlan {
    pub dir: PathBuf,
    /// Every temp file, with its verdict, sorted by name.
    pub temps: Vec<Temp>,
    /// `.kvc/` exists and holds nothing but (at most) the lock file: no
    /// journal, nothing to keep.
    pub empty_state: bool,
}

impl GcPlan {
    pub fn stale(&self) -> impl Iterator<Item = &Temp> {
        self.temps.iter().filter(|t| t.verdict == Verdict::Stale)
    }

    pub fn bytes_to_free(&self) -> u64 {
        self.stale().map(|t| t.file.size).sum()
    }
}

/// Look, change nothing: the `--dry-run`.
pub fn plan_dir(dir: &Path, opts: &GcOptions) -> Result<GcPlan> {
    let judge = TempJudge::new(opts.temp_age, opts.now);
    Ok(GcPlan {
        dir: dir.to_path_buf(),
        temps: scan::temp_files(dir)?
            .iter()
            .filter_map(|t| look(t, &judge))
            .collect(),
        empty_state: crate::session::lock_state_is_empty(dir)?,
    })
}

/// What became of one stale temp file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GcFate {
    Removed,
    /// Gone before gc got to it.
    Vanished,
    /// No longer stale when re-checked under the lock.
    Kept(Verdict),
    /// Removed; the directory's fsync failed afterwards (not durable yet).
    RemovedUnsynced(String),
    Failed(String),
}

impl GcFate {
    pub fn code(&self) -> Code {
        match self {
            GcFate::Removed | GcFate::RemovedUnsynced(_) => Code::Removed,
            GcFate::Vanished => Code::Vanished,
            GcFate::Kept(_) => Code::Kept,
            GcFate::Failed(_) => Code::Failed,
        }
    }
}

#[derive(Clone, Debug)]
pub struct GcResult {
    pub plan: GcPlan,
    /// Each stale temp file of the plan and what became of it.
    pub handled: Vec<(Temp, GcFate)>,
    /// `.kvc/` was removed.
    pub removed_state: bool,
}

impl GcResult {
    pub fn freed_bytes(&self) -> u64 {
        self.handled
            .iter()
            .filter(|(_, f)| matches!(f, GcFate::Removed | GcFate::RemovedUnsynced(_)))
            .map(|(t, _)| t.file.size)
            .sum()
    }
}

fn record(now: u64, t: &Temp) -> Record {
    // The name is the temp file's own: untrusted, sanitized when written.
    Record::new(now, Op::Gc, &t.file.file, t.file.size, WHY_STALE_TEMP)
}

/// Calls into the caller while `apply` runs (tests act as a writer
/// between the look and the removal).
pub trait Hooks {
    /// A temp file was looked at again under the lock and is still stale:
    /// called just before it is removed (if it is still the file that look
    /// saw).
    fn before_remove(&mut self, _temp: &Temp) {}
}

/// No callbacks.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Remove the plan's stale temp files (each re-checked under the lock,
/// removed only while it is still the file judged, and journaled) and
/// empty kvc state. With nothing to do, nothing is touched and no lock is
/// taken.
pub fn apply(
    session: &mut Session,
    plan: GcPlan,
    opts: &GcOptions,
    hooks: &mut dyn Hooks,
) -> Result<GcResult> {
    let dir = plan.dir.clone();
    let mut result = GcResult {
        plan,
        handled: Vec::new(),
        removed_state: false,
    };
    if result.plan.stale().next().is_none() && !result.plan.empty_state {
        return Ok(result);
    }
    session.lock(&[&dir])?;
    // A fresh look at /proc too (once, not per file): the lock may have
    // taken a while. What opens a temp file after this look is no writer
    // of it: each save makes a new one.
    let judge = TempJudge::new(opts.temp_age, opts.now);
    for t in result.plan.stale() {
        let fate = match look(&t.file, &judge) {
            None => GcFate::Vanished,
            Some(now) if now.verdict != Verdict::Stale => GcFate::Kept(now.verdict),
            Some(now) => {
                let judged = Judged::exactly(&now.meta);
                hooks.before_remove(&now);
                match session.remove(&dir, &now.file.file, &judged)? {
                    Removal::Removed { unsynced } => {
                        let rec = record(session.now(), &now);
                        session.journal(&dir, &[rec])?;
                        match unsynced {
                            None => GcFate::Removed,
                            Some(e) => GcFate::RemovedUnsynced(e),
                        }
                    }
                    Removal::Vanished => GcFate::Vanished,
                    // Written to since the look: a writer is at work.
                    Removal::Changed(_) => GcFate::Kept(Verdict::Recent),
                    Removal::Failed(e) => GcFate::Failed(e.to_string()),
                }
            }
        };
        result.handled.push((t.clone(), fate));
    }
    // Removes the state `lock` just created, too, when nothing was
    // journaled: a gc with nothing to remove leaves no trace.
    result.removed_state = session.remove_state_if_empty(&dir)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{classify_name, NameKind};
    use std::fs::File;

    const HOUR: Duration = Duration::from_secs(3600);

    /// Judge a temp file two hours old, with no /proc to look at.
    fn blind(kind: TempKind) -> Judgement {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("temp");
        let now = SystemTime::now();
        File::create(&path)
            .unwrap()
            .set_modified(now - 2 * HOUR)
            .unwrap();
        let judge = TempJudge::with_open_files(HOUR, now, OpenFiles::unknown());
        judge.judge(&kind, &fs::symlink_metadata(&path).unwrap())
    }

    fn kind(name: &str) -> TempKind {
        match classify_name(name) {
            NameKind::Temp(kind) => kind,
            _ => panic!("{name} is no temp name"),
        }
    }

    const KEY: &str = "3c315f4983362eb6cdb04a6f46ed11650aa7135f";
    /// Above the largest pid_max Linux allows (2^22): never running.
    const DEAD: u32 = 4_194_305;

    #[test]
    fn without_proc_only_a_certain_dead_pid_is_stale() {
        for name in [
            format!("{KEY}.kv.tmp.{DEAD}"),
            format!("{KEY}.{DEAD}-0.kv.tmp"),
        ] {
            assert_eq!(blind(kind(&name)).verdict, Verdict::Stale, "{name}");
        }
        // A dead six-digit "pid" may be mkstemp's digits: it proves nothing.
        let maybe = TempKind {
            pid: Some(DEAD),
            ..kind(&format!("{KEY}.kv.tmp.123456"))
        };
        for k in [
            maybe,
            kind(&format!("{KEY}.kv.tmp.Qx7aZ2")),
            kind(&format!("{KEY}.kv.tmp")),
        ] {
            let j = blind(k);
            assert_eq!(j.verdict, Verdict::HoldersUnknown, "{k:?}");
            assert_eq!(j.unseen, Some(Unseen::NoProc), "{k:?}");
        }
    }

    #[test]
    fn a_running_pid_keeps_even_an_uncertain_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let now = SystemTime::now();
        File::create(&path)
            .unwrap()
            .set_modified(now - 2 * HOUR)
            .unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        let judge = TempJudge::with_open_files(HOUR, now, OpenFiles::unknown());
        for pid_certain in [true, false] {
            let kind = TempKind {
                writer: crate::scan::TempWriter::Ds4Server,
                pid: Some(std::process::id()),
                pid_certain,
            };
            assert_eq!(judge.judge(&kind, &meta).verdict, Verdict::WriterAlive);
        }
    }
}
