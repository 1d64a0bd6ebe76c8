//! Removing what crashed writers left behind: temp files whose writer is
//! gone (FORMAT.md §2 — no engine ever removes one, and a ds4-server killed
//! mid-save leaves hundreds of MiB), and kvc's own state when it holds
//! nothing worth keeping.
//!
//! A temp file goes only when it is both stale (not modified for a while)
//! and orphaned (its pid is not running here). Either alone is not enough:
//! a slow save of a huge checkpoint keeps an old mtime for minutes, and a
//! pid can be reused by an unrelated process (then the file is kept — the
//! safe mistake).

use crate::error::{Error, Result};
use crate::fsutil::{fsync_dir, remove_durably};
use crate::journal::{self, Record};
use crate::lock::{DirLock, LOCK_FILE};
use crate::scan::{self, TempFile, STATE_DIR};
use crate::sys::pid_alive;
use serde::Serialize;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `--temp-age` default: a save writes at disk speed, so a temp file not
/// modified for an hour belongs to no save in progress.
pub const DEFAULT_TEMP_AGE: Duration = Duration::from_secs(3600);

/// The journal's `why` for a removed temp file.
pub const WHY_STALE_TEMP: &str = "stale temp";

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
    /// Old and orphaned: removed.
    Stale,
    /// Its writer's pid is running: a save may be in progress.
    WriterAlive,
    /// Modified within `--temp-age` (or in the future, or without a time).
    Recent,
    /// Not a regular file; gc removes files only.
    NotAFile,
}

impl Verdict {
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Stale => "stale, writer not running",
            Verdict::WriterAlive => "writer is running",
            Verdict::Recent => "modified recently",
            Verdict::NotAFile => "not a regular file",
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
}

/// Look at a temp file afresh: `None` when it is gone.
fn judge(t: &TempFile, opts: &GcOptions) -> Option<Temp> {
    let meta = fs::symlink_metadata(&t.path).ok()?;
    let age = meta
        .modified()
        .ok()
        .and_then(|m| opts.now.duration_since(m).ok());
    let verdict = if !meta.is_file() {
        Verdict::NotAFile
    } else if pid_alive(t.pid) {
        Verdict::WriterAlive
    } else if age.is_none_or(|a| a < opts.temp_age) {
        Verdict::Recent
    } else {
        Verdict::Stale
    };
    Some(Temp {
        file: TempFile {
            size: meta.len(),
            modified: meta.modified().ok(),
            ..t.clone()
        },
        age,
        verdict,
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

/// Does `.kvc/` exist as a directory holding only the lock file (or
/// nothing)? A journal, or any entry kvc does not know, keeps it.
fn state_is_empty(dir: &Path) -> Result<bool> {
    let state = dir.join(STATE_DIR);
    match fs::symlink_metadata(&state) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&state, e)),
    }
    for e in fs::read_dir(&state).map_err(|e| Error::io(&state, e))? {
        let e = e.map_err(|e| Error::io(&state, e))?;
        if e.file_name() != LOCK_FILE {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Look, change nothing: the `--dry-run`.
pub fn plan_dir(dir: &Path, opts: &GcOptions) -> Result<GcPlan> {
    Ok(GcPlan {
        dir: dir.to_path_buf(),
        temps: scan::temp_files(dir)?
            .iter()
            .filter_map(|t| judge(t, opts))
            .collect(),
        empty_state: state_is_empty(dir)?,
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
    Failed(String),
}

impl GcFate {
    pub fn code(&self) -> &'static str {
        match self {
            GcFate::Removed => "removed",
            GcFate::Vanished => "vanished",
            GcFate::Kept(_) => "kept",
            GcFate::Failed(_) => "failed",
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
            .filter(|(_, f)| *f == GcFate::Removed)
            .map(|(t, _)| t.file.size)
            .sum()
    }
}

fn record(t: &Temp) -> Record {
    Record {
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        op: "gc".into(),
        key: t.file.file.clone(),
        bytes: t.file.size,
        tokens: 0,
        hits: 0,
        reason: String::new(),
        score: None,
        policy: None,
        why: WHY_STALE_TEMP.into(),
    }
}

/// Remove `.kvc/` while holding its lock: unlink the lock file, then the
/// directory. A kvc waiting on the old lock file notices it is no longer
/// linked and starts over (see `DirLock::acquire`).
fn remove_state(dir: &Path, lock: DirLock) -> Result<bool> {
    let state = dir.join(STATE_DIR);
    if !state_is_empty(dir)? {
        return Ok(false);
    }
    match fs::remove_file(&lock.path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&lock.path, e)),
    }
    let removed = match fs::remove_dir(&state) {
        Ok(()) => true,
        // Someone created state meanwhile: keep it.
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(&state, e)),
    };
    drop(lock);
    if removed {
        fsync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(removed)
}

/// Remove stale orphaned temp files (each re-checked under the lock and
/// journaled) and empty kvc state. With nothing to do, nothing is touched
/// and no lock is taken.
pub fn run(dir: &Path, opts: &GcOptions) -> Result<GcResult> {
    let plan = plan_dir(dir, opts)?;
    let mut result = GcResult {
        plan,
        handled: Vec::new(),
        removed_state: false,
    };
    if result.plan.stale().next().is_none() && !result.plan.empty_state {
        return Ok(result);
    }
    let lock = DirLock::acquire(dir)?;
    for t in result.plan.stale() {
        let fate = match judge(&t.file, opts) {
            None => GcFate::Vanished,
            Some(now) if now.verdict != Verdict::Stale => GcFate::Kept(now.verdict),
            Some(now) => match remove_durably(&now.file.path) {
                Ok(true) => {
                    journal::append(dir, &[record(&now)])?;
                    GcFate::Removed
                }
                Ok(false) => GcFate::Vanished,
                Err(e) => GcFate::Failed(e.to_string()),
            },
        };
        result.handled.push((t.clone(), fate));
    }
    // Removes the state `acquire` just created, too, when nothing was
    // journaled: a gc with nothing to remove leaves no trace.
    result.removed_state = remove_state(dir, lock)?;
    Ok(result)
}
