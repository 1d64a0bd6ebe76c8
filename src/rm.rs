//! Removing named checkpoints (`kvc rm KEY...`).
//!
//! Every argument is resolved before anything is removed, so a typo in the
//! third key removes nothing. A file that does not read as a checkpoint is
//! removed too when it is named explicitly: that is the one way kvc deletes
//! a corrupt file, and the journal says so. ds4-agent's explicit saves need
//! `include_agent`, as in eviction.

use crate::code::Code;
use crate::error::{Error, Result};
use crate::format::checkpoint::{CheckpointFile, Key};
use crate::format::Header;
use crate::resolve;
use crate::scan::{self, FileId, Loaded, ScanOptions};
use crate::session::journal::{Op, Record};
use crate::session::{Judged, Removal, Session};
use crate::sys::Meta;
use std::fs;
use std::path::{Path, PathBuf};

/// The journal's `why` for a removal the user asked for.
pub(crate) const WHY_REQUESTED: &str = "requested";

/// One file to remove.
#[derive(Clone, Debug)]
pub struct Target {
    /// What the user typed.
    pub arg: String,
    /// The directory holding it (where the lock and journal are).
    pub dir: PathBuf,
    pub path: PathBuf,
    /// Name on disk.
    pub file: String,
    pub key: Key,
    pub size: u64,
    /// The header, when the file has one to read (even if it is invalid).
    pub header: Option<Header>,
    /// `Some((code, message))` when the file is not a valid checkpoint.
    pub invalid: Option<(Code, String)>,
    /// The file as it was judged: it is removed only while its name is
    /// still this inode.
    pub judged: Judged,
}

impl Target {
    /// `sysprompt.kv`, or an agent reason in the header.
    pub fn is_agent_save(&self) -> bool {
        self.key == Key::Sysprompt || self.header.as_ref().is_some_and(|h| h.reason.is_agent())
    }
}

fn target(arg: &str, path: PathBuf) -> Result<Target> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(key) = Key::from_file_name(&file) else {
        return Err(Error::invalid(
            &path,
            "not a checkpoint name (<40 hex digits>.kv or sysprompt.kv); kvc rm removes checkpoints only",
        ));
    };
    let parent = crate::session::parent_dir(&path);
    // One name per directory: `cache` and `./cache` share one lock.
    let parent = crate::session::canonical_dir(parent)?;
    let lstat = |path: &Path| -> Result<Judged> {
        let m = fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
        Ok(Judged::inode(&Meta::of(&m)))
    };
    let (size, header, invalid, judged) =
        match scan::load(&path, key.clone(), ScanOptions::default()) {
            Loaded::Vanished => {
                return Err(Error::KeyNotFound {
                    key: arg.into(),
                    dir: parent,
                })
            }
            Loaded::Checkpoint(c) => (c.size, Some(c.header), None, judged_id(c.id)),
            // A fork's file: removed only because the user named it.
            Loaded::Foreign(f) => (
                f.size,
                Some(f.header),
                Some((Code::Foreign, f.what)),
                judged_id(f.id),
            ),
            Loaded::Invalid(i) if matches!(i.code, Code::Symlink | Code::NotAFile) => {
                return Err(Error::invalid(
                    &path,
                    format!("{}; kvc rm removes regular files only", i.error),
                ))
            }
            Loaded::Invalid(i) => {
                // Best effort: a truncated file still has a header to show.
                let header = CheckpointFile::open_named(&path, false)
                    .ok()
                    .map(|f| f.header)
                    .filter(|h| h.check().is_ok());
                (i.size, header, Some((i.code, i.error)), lstat(&path)?)
            }
        };
    Ok(Target {
        arg: arg.into(),
        dir: parent,
        path,
        file,
        key,
        size,
        header,
        invalid,
        judged,
    })
}

fn judged_id(id: FileId) -> Judged {
    Judged {
        dev: id.dev,
        ino: id.ino,
        size: None,
        mtime: None,
    }
}

/// Resolve every argument (same rules as `kvc show`: key, unique prefix of
/// 4+ hex digits, `sysprompt`, or a path). Fails, before anything is
/// removed, on the first argument that names nothing, names something that
/// is not a checkpoint file, or names an agent save without `include_agent`.
/// The same file named twice is removed once.
/// Resolve every argument (`resolve::locate`: `dir` is `--dir`, asked
/// for first; `default_dir` only when a key needs a directory) and judge
/// each file, before anything is removed.
pub fn plan<E: From<Error>>(
    dir: Option<&Path>,
    default_dir: impl Fn() -> std::result::Result<PathBuf, E>,
    args: &[String],
    include_agent: bool,
) -> std::result::Result<Vec<Target>, E> {
    let mut out: Vec<Target> = Vec::new();
    for arg in args {
        let located = resolve::locate(arg, dir, &default_dir)?;
        let t = target(arg, located.path)?;
        if t.is_agent_save() && !include_agent {
            let what = t
                .header
                .as_ref()
                .map_or("sysprompt".into(), |h| h.reason.name().into_owned());
            return Err(Error::Usage(format!(
                "{}: an explicit ds4-agent save ({what}); pass --include-agent to remove it",
                t.path.display()
            ))
            .into());
        }
        if !out.iter().any(|o| o.dir == t.dir && o.file == t.file) {
            out.push(t);
        }
    }
    Ok(out)
}

/// What became of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RmFate {
    /// Removed and journaled. `unsynced`: the directory's fsync failed
    /// afterwards (removed, not durable yet).
    Removed {
        unsynced: Option<String>,
    },
    /// Gone before kvc got to it (an engine evicted or consumed it).
    Vanished,
    /// No longer the file that was judged (replaced by a new save): left
    /// alone.
    Changed(String),
    Failed(String),
}

impl RmFate {
    pub fn code(&self) -> Code {
        match self {
            RmFate::Removed { .. } => Code::Removed,
            RmFate::Vanished => Code::Vanished,
            RmFate::Changed(_) => Code::Changed,
            RmFate::Failed(_) => Code::Failed,
        }
    }

    pub fn is_removed(&self) -> bool {
        matches!(self, RmFate::Removed { .. })
    }
}

fn record(now: u64, t: &Target) -> Record {
    let why = match &t.invalid {
        Some((code, _)) => format!("{WHY_REQUESTED} (invalid: {code})"),
        None => WHY_REQUESTED.into(),
    };
    Record::new(now, Op::Rm, &t.key.to_string(), t.size, why).with_header(t.header.as_ref())
}

/// Calls into the caller while `apply` runs (tests act as an engine
/// between resolving and removing).
pub trait Hooks {
    /// Just before `target` is checked again and removed.
    fn before_remove(&mut self, _target: &Target) {}
}

/// No callbacks.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Remove the targets in the write session: the lock of every directory
/// involved is taken first (in path order), then each file is removed,
/// while its name is still the inode judged, and journaled.
pub fn apply(
    session: &mut Session,
    targets: &[Target],
    hooks: &mut dyn Hooks,
) -> Result<Vec<RmFate>> {
    let dirs: Vec<&Path> = targets.iter().map(|t| t.dir.as_path()).collect();
    session.lock(&dirs)?;
    let mut fates = Vec::with_capacity(targets.len());
    for t in targets {
        hooks.before_remove(t);
        let fate = match session.remove(&t.dir, &t.file, &t.judged)? {
            Removal::Removed { unsynced } => {
                let rec = record(session.now(), t);
                session.journal(&t.dir, &[rec])?;
                RmFate::Removed { unsynced }
            }
            Removal::Vanished => RmFate::Vanished,
            Removal::Changed(c) => RmFate::Changed(c.to_string()),
            Removal::Failed(e) => RmFate::Failed(e.to_string()),
        };
        fates.push(fate);
    }
    Ok(fates)
}
