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
use crate::fsutil::remove_durably;
use crate::journal::{self, Record};
use crate::lock::DirLock;
use crate::resolve;
use crate::scan::{self, Loaded, ScanOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The journal's `why` for a removal the user asked for.
pub const WHY_REQUESTED: &str = "requested";

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
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // One name per directory: `cache` and `./cache` must share one lock,
    // or a second flock on the same file would wait for ourselves.
    let parent = parent.canonicalize().map_err(|e| Error::io(parent, e))?;
    let (size, header, invalid) = match scan::load(&path, key.clone(), ScanOptions::default()) {
        Loaded::Vanished => {
            return Err(Error::KeyNotFound {
                key: arg.into(),
                dir: parent,
            })
        }
        Loaded::Checkpoint(c) => (c.size, Some(c.header), None),
        // A fork's file: removed only because the user named it.
        Loaded::Foreign(f) => (f.size, Some(f.header), Some((Code::Foreign, f.what))),
        Loaded::Invalid(i) if matches!(i.code, Code::Symlink | Code::NotAFile) => {
            return Err(Error::invalid(
                &path,
                format!("{}; kvc rm removes regular files only", i.error),
            ))
        }
        Loaded::Invalid(i) => {
            // Best effort: a truncated file still has a header to show.
            let header = CheckpointFile::open_unchecked(&path)
                .ok()
                .map(|f| f.header)
                .filter(|h| h.check().is_ok());
            (i.size, header, Some((i.code, i.error)))
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
    })
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
    Removed,
    /// Gone before kvc got to it (an engine evicted or consumed it).
    Vanished,
    Failed(String),
}

impl RmFate {
    pub fn code(&self) -> Code {
        match self {
            RmFate::Removed => Code::Removed,
            RmFate::Vanished => Code::Vanished,
            RmFate::Failed(_) => Code::Failed,
        }
    }
}

fn record(t: &Target) -> Record {
    let why = match &t.invalid {
        Some((code, _)) => format!("{WHY_REQUESTED} (invalid: {code})"),
        None => WHY_REQUESTED.into(),
    };
    Record {
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        op: "rm".into(),
        key: t.key.to_string(),
        bytes: t.size,
        tokens: t.header.as_ref().map_or(0, |h| h.tokens),
        hits: t.header.as_ref().map_or(0, |h| h.hits),
        reason: t
            .header
            .as_ref()
            .map_or(String::new(), |h| h.reason.name().into_owned()),
        score: None,
        policy: None,
        why,
    }
}

/// Remove the targets under the lock of each directory involved (taken in
/// path order, so two kvc processes cannot deadlock), journaling each.
pub fn run(targets: &[Target]) -> Result<Vec<RmFate>> {
    let mut locks = BTreeMap::new();
    let mut dirs: Vec<&PathBuf> = targets.iter().map(|t| &t.dir).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        locks.insert(d.clone(), DirLock::acquire(d)?);
    }
    let mut fates = Vec::with_capacity(targets.len());
    for t in targets {
        let fate = match remove_durably(&t.path) {
            Ok(true) => {
                journal::append(&t.dir, &[record(t)])?;
                RmFate::Removed
            }
            Ok(false) => RmFate::Vanished,
            Err(e) => RmFate::Failed(e.to_string()),
        };
        fates.push(fate);
    }
    drop(locks);
    Ok(fates)
}
