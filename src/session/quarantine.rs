//! `kvc verify --quarantine DIR`: moving the files with errors out of the
//! cache, never deleting one.
//!
//! [`plan`] (read-only) decides which files go where; [`apply`] moves them
//! under the lock of each source directory, each only while it is still
//! exactly the file verify checked (inode, size, mtime), re-checked
//! immediately before each step that acts on its name:
//!
//! - same file system: a hard link into the quarantine directory (which
//!   fails rather than replace a file there), a check that the link is the
//!   inode judged (else it is undone), then the unlink of the original;
//! - across file systems: a copy under a temp name in the quarantine
//!   directory, fsynced, checked for length, renamed into place without
//!   replacing anything, and only then the original is removed, if it is
//!   still the inode judged. A kill at any point leaves the original in the
//!   cache and at most a temp file beside the quarantine: never a partial
//!   copy under the final name.
//!
//! Each moved file gets a `<name>.why` (JSON, written before the move) and
//! a `quarantine` record in its source directory's journal.

use super::journal::{Op, Record};
use super::{parent_dir, Changed, Judged, Removal, Session};
use crate::code::Code;
use crate::error::{Error, Result};
use crate::finding::{Finding, Severity};
use crate::format::{Header, Key};
use crate::fsutil::{create_private_dir_all, AtomicFile};
use crate::sys::{self, Dir, Meta, Open};
use crate::verify::VerifyReport;
use serde::Serialize;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Suffix of the file recording why a file was quarantined.
pub(crate) const WHY_SUFFIX: &str = ".why";
/// Tries at a free name in the quarantine directory before giving up.
const MAX_NAME_TRIES: u32 = 1000;

/// One file to move.
#[derive(Clone, Debug)]
pub struct Item {
    /// Index into the report's files.
    pub index: usize,
    pub path: PathBuf,
    /// The directory it is in (its lock and journal are there).
    pub dir: PathBuf,
    pub name: String,
    /// `None`: not a regular file verify could read; never moved.
    pub judged: Option<Judged>,
    pub key: Option<Key>,
    pub size: u64,
    pub header: Option<Header>,
    pub findings: Vec<Finding>,
}

/// What `--quarantine` would do.
#[derive(Clone, Debug)]
pub struct QuarantinePlan {
    pub dest: PathBuf,
    pub items: Vec<Item>,
}

impl QuarantinePlan {
    /// The source directories, whose locks `apply` takes.
    pub fn dirs(&self) -> Vec<&Path> {
        let mut d: Vec<&Path> = self.items.iter().map(|i| i.dir.as_path()).collect();
        d.sort();
        d.dedup();
        d
    }
}

/// Every file of `report` with at least one error, bound for `dest`.
/// Reads only. Refuses a `dest` that is one of the cache directories.
pub fn plan(report: &VerifyReport, dest: &Path) -> Result<QuarantinePlan> {
    let dest_real = dest.canonicalize().ok();
    let mut items = Vec::new();
    for (index, f) in report.files.iter().enumerate() {
        if f.errors() == 0 {
            continue;
        }
        let dir = parent_dir(&f.path).to_path_buf();
        if dest_real.is_some() && dir.canonicalize().ok() == dest_real {
            return Err(Error::Usage(format!(
                "quarantine directory {} is the cache directory itself",
                dest.display()
            )));
        }
        items.push(Item {
            index,
            name: f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: f.path.clone(),
            dir,
            judged: f.judged,
            key: f.key.clone(),
            size: f.size,
            header: f.header.clone(),
            findings: f.findings.clone(),
        });
    }
    Ok(QuarantinePlan {
        dest: dest.to_path_buf(),
        items,
    })
}

/// What became of one file.
#[derive(Debug)]
pub enum Quarantined {
    /// Moved: hard-linked into place and unlinked (same file system), or
    /// copied, fsynced, renamed into place and the original removed
    /// (`copied`). `unsynced`: the source directory's fsync failed after
    /// the unlink (moved, not durable yet).
    Moved {
        to: PathBuf,
        copied: bool,
        unsynced: Option<String>,
    },
    /// Left where it is, and why (it changed or vanished since it was
    /// checked, or it is not a regular file).
    LeftInPlace { why: String },
    /// Moving failed; the file is still in the cache.
    Failed { error: Error },
}

impl Quarantined {
    pub fn code(&self) -> Code {
        match self {
            Quarantined::Moved { .. } => Code::Quarantined,
            Quarantined::LeftInPlace { .. } => Code::LeftInPlace,
            Quarantined::Failed { .. } => Code::Failed,
        }
    }
}

/// The points of a move, in order, for tests that act as an engine or
/// kill kvc between two of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The `.why` file is written; nothing moved yet.
    WhyWritten,
    /// Across file systems: half of the copy is in the temp file.
    CopyHalf,
    /// Across file systems: the copy is whole and fsynced under its temp
    /// name.
    CopySynced,
    /// The file is in the quarantine directory under its final name; the
    /// original is still in the cache.
    Placed,
    /// The original is gone from the cache.
    Removed,
}

/// Calls into the caller while `apply` runs.
pub trait Hooks {
    fn step(&mut self, _item: &Item, _step: Step) {}
}

/// No callbacks.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// The JSON written next to each quarantined file as `<name>.why`.
#[derive(Serialize)]
struct WhyFile<'a> {
    /// The path it was moved from.
    from: String,
    key: Option<&'a str>,
    size: u64,
    /// Unix seconds.
    quarantined_at: u64,
    findings: &'a [Finding],
}

/// Move the plan's files (see the module documentation). Returns one
/// result per item, as `(index into the report's files, result)`. Fails as
/// a whole only when `dest` or a lock cannot be set up.
pub fn apply(
    session: &mut Session,
    plan: &QuarantinePlan,
    hooks: &mut dyn Hooks,
) -> Result<Vec<(usize, Quarantined)>> {
    if plan.items.is_empty() {
        return Ok(Vec::new());
    }
    let dest_path = &plan.dest;
    create_private_dir_all(dest_path).map_err(|e| Error::io(dest_path, e))?;
    let dest = Dir::open(dest_path).map_err(|e| Error::io(dest_path, e))?;
    let dest_meta = dest.meta().map_err(|e| Error::io(dest_path, e))?;
    session.lock(&plan.dirs())?;
    for d in plan.dirs() {
        let m = session.dir(d)?.meta().map_err(|e| Error::io(d, e))?;
        if m.same_file(&dest_meta) {
            return Err(Error::Usage(format!(
                "quarantine directory {} is the cache directory itself",
                dest_path.display()
            )));
        }
    }
    let mut out = Vec::with_capacity(plan.items.len());
    let mut journal_broken = false;
    for item in &plan.items {
        // Every move is recorded; once the journal cannot be written, stop
        // moving rather than move files without a trace.
        if journal_broken {
            out.push((
                item.index,
                Quarantined::LeftInPlace {
                    why: "not attempted: the journal could not be written".into(),
                },
            ));
            continue;
        }
        let mut result = move_one(session, item, &dest, hooks);
        if let Quarantined::Moved { to, .. } = &result {
            let rec = journal_record(item, to, session.now());
            if let Err(e) = session.journal(&item.dir, &[rec]) {
                journal_broken = true;
                result = Quarantined::Failed {
                    error: Error::invalid(
                        &item.path,
                        format!("moved to {}, but not journaled: {e}", to.display()),
                    ),
                };
            }
        }
        out.push((item.index, result));
    }
    Ok(out)
}

fn journal_record(item: &Item, to: &Path, now: u64) -> Record {
    let mut codes: Vec<&str> = item
        .findings
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| x.code.name())
        .collect();
    codes.dedup();
    let name = item
        .key
        .as_ref()
        .map_or(item.name.clone(), |k| k.to_string());
    Record::new(
        now,
        Op::Quarantine,
        &name,
        item.size,
        format!("verify: {}; moved to {}", codes.join(", "), to.display()),
    )
    .with_header(item.header.as_ref())
}

/// `name`, or `name.1`, `.2`, … when taken in `dest` (by an earlier run),
/// its `.why` name free too.
fn free_name(dest: &Dir, name: &str) -> Option<(OsString, OsString)> {
    (0..MAX_NAME_TRIES).find_map(|n| {
        let candidate = if n == 0 {
            name.to_string()
        } else {
            format!("{name}.{n}")
        };
        let why = format!("{candidate}{WHY_SUFFIX}");
        let taken =
            dest.stat(OsStr::new(&candidate)).is_ok() || dest.stat(OsStr::new(&why)).is_ok();
        (!taken).then(|| (candidate.into(), why.into()))
    })
}

fn left(why: impl Into<String>) -> Quarantined {
    Quarantined::LeftInPlace { why: why.into() }
}

fn changed(c: &Changed) -> Quarantined {
    left(format!(
        "changed since it was checked ({c}; an engine rewrote it?); run verify again"
    ))
}

fn move_one(session: &mut Session, item: &Item, dest: &Dir, hooks: &mut dyn Hooks) -> Quarantined {
    let Some(judged) = item.judged else {
        return left("not a regular file that kvc could read; move it by hand");
    };
    let src = match session.dir(&item.dir) {
        Ok(d) => d,
        Err(error) => return Quarantined::Failed { error },
    };
    let name = OsStr::new(&item.name);
    match src.stat(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return left("vanished since it was checked")
        }
        Err(e) => {
            return Quarantined::Failed {
                error: Error::io(&item.path, e),
            }
        }
        Ok(m) => {
            if let Err(c) = judged.matches(&m) {
                return changed(&c);
            }
        }
    }
    let Some((to_name, why_name)) = free_name(dest, &item.name) else {
        return Quarantined::Failed {
            error: Error::invalid(dest.path(), "no free name left for the quarantined file"),
        };
    };
    let to = dest.path().join(&to_name);
    // The reason is written first: a crash then leaves a reason without a
    // file, never a quarantined file without its reason.
    let why = WhyFile {
        from: item.path.display().to_string(),
        key: item.key.as_ref().map(|k| k.as_str()),
        size: item.size,
        quarantined_at: session.now(),
        findings: &item.findings,
    };
    let why_str = why_name.to_string_lossy().into_owned();
    let written = AtomicFile::create_in(dest, &why_str).and_then(|mut w| {
        serde_json::to_writer_pretty(&mut w, &why)?;
        w.write_all(b"\n")?;
        w.commit_new()
    });
    if let Err(e) = written {
        return Quarantined::Failed {
            error: Error::io(&dest.path().join(&why_name), e),
        };
    }
    hooks.step(item, Step::WhyWritten);
    let placed = place(src, name, &judged, dest, &to_name, item, hooks);
    let copied = match placed {
        Ok(Placed::Linked) => false,
        Ok(Placed::Copied) => true,
        Ok(Placed::Left(q)) => {
            // Our own reason file, for a move that did not happen.
            let _ = dest.unlink(&why_name);
            return q;
        }
        Err(e) => {
            let _ = dest.unlink(&why_name);
            return Quarantined::Failed {
                error: Error::io(&item.path, e),
            };
        }
    };
    hooks.step(item, Step::Placed);
    // The original goes only while it is still the inode judged.
    match session.remove(&item.dir, &item.name, &judged) {
        Ok(Removal::Removed { unsynced }) => {
            hooks.step(item, Step::Removed);
            Quarantined::Moved {
                to,
                copied,
                unsynced,
            }
        }
        // Someone removed it meanwhile: what was checked is in quarantine.
        Ok(Removal::Vanished) => Quarantined::Moved {
            to,
            copied,
            unsynced: None,
        },
        Ok(Removal::Changed(c)) if !copied => {
            // A link is the judged inode itself: it is out of the cache,
            // and the file now under its old name is someone else's.
            let _ = c;
            Quarantined::Moved {
                to,
                copied,
                unsynced: None,
            }
        }
        Ok(Removal::Changed(c)) => left(format!(
            "changed while it was being copied ({c}); the copy of the file as checked is {}, the file in the cache was left as it is",
            to.display()
        )),
        Ok(Removal::Failed(e)) => Quarantined::Failed {
            error: Error::invalid(
                &item.path,
                format!("placed at {}, but the original could not be removed: {e}", to.display()),
            ),
        },
        Err(error) => Quarantined::Failed { error },
    }
}

enum Placed {
    Linked,
    Copied,
    Left(Quarantined),
}

/// Put the judged file under `to_name` in `dest`, the original still in
/// place.
fn place(
    src: &Dir,
    name: &OsStr,
    judged: &Judged,
    dest: &Dir,
    to_name: &OsStr,
    item: &Item,
    hooks: &mut dyn Hooks,
) -> io::Result<Placed> {
    match src.link(name, dest, to_name) {
        Ok(()) => {
            // The name may have been swapped between the check and the
            // link: the link must be the inode judged, or it is undone.
            let m = dest.stat(to_name)?;
            if let Err(c) = judged.matches(&m) {
                dest.unlink(to_name)?;
                return Ok(Placed::Left(changed(&c)));
            }
            dest.sync()?;
            Ok(Placed::Linked)
        }
        Err(e) if sys::is_cross_device(&e) => copy(src, name, judged, dest, to_name, item, hooks),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Ok(Placed::Left(left("vanished since it was checked")))
        }
        // No hard links here: a rename that never replaces.
        Err(_) => {
            let m = src.stat(name)?;
            if let Err(c) = judged.matches(&m) {
                return Ok(Placed::Left(changed(&c)));
            }
            match src.rename_new(name, dest, to_name) {
                Ok(()) => {
                    dest.sync()?;
                    src.sync()?;
                    Ok(Placed::Linked)
                }
                Err(e) if sys::is_cross_device(&e) => {
                    copy(src, name, judged, dest, to_name, item, hooks)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// The cross-file-system half of a move: copy under a temp name, fsync,
/// check, rename into place without replacing anything.
fn copy(
    src: &Dir,
    name: &OsStr,
    judged: &Judged,
    dest: &Dir,
    to_name: &OsStr,
    item: &Item,
    hooks: &mut dyn Hooks,
) -> io::Result<Placed> {
    let mut from = match src.open_file(name, Open::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Placed::Left(left("vanished since it was checked")))
        }
        Err(e) => return Err(e),
    };
    if let Err(c) = judged.matches(&Meta::of_file(&from)?) {
        return Ok(Placed::Left(changed(&c)));
    }
    let want = judged.size.unwrap_or(0);
    let mut tmp = AtomicFile::create_in(dest, &to_name.to_string_lossy())?;
    let half = want / 2;
    let n1 = io::copy(&mut io::Read::take(&mut from, half), tmp.file())?;
    hooks.step(item, Step::CopyHalf);
    let n2 = io::copy(&mut from, tmp.file())?;
    let n = n1 + n2;
    if n != want {
        // Dropping `tmp` removes our partial copy; the original stays.
        return Err(io::Error::other(format!(
            "copied {n} bytes of a {want}-byte file; original kept"
        )));
    }
    tmp.file().sync_all()?;
    hooks.step(item, Step::CopySynced);
    // Changed while being copied: the copy is not of the file checked.
    if let Err(c) = judged.matches(&Meta::of_file(&from)?) {
        return Ok(Placed::Left(changed(&c)));
    }
    tmp.commit_new()?;
    Ok(Placed::Copied)
}
