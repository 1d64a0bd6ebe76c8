//! Turning what a user typed (`3fa2`, a full key, `sysprompt`, or a path)
//! into a checkpoint file.

use crate::error::{Error, Result};
use crate::format::checkpoint::{Key, KEY_HEX_LEN, SYSPROMPT_KEY};
use crate::scan::{classify_name, NameKind};
use std::fs;
use std::path::{Path, PathBuf};

/// The shortest prefix accepted: shorter ones match too much by accident.
pub(crate) const MIN_PREFIX_LEN: usize = 4;

/// Environment variable naming the default cache directory.
pub const DIR_ENV: &str = "KVC_DIR";
/// ds4-agent's cache under `$HOME`, the default when it exists.
pub const AGENT_DIR: &str = ".ds4/kvcache";

/// The cache directory a command uses when none is given: `$KVC_DIR` when
/// set and not empty, else `~/.ds4/kvcache` when it is a directory. The
/// binary and its shell completion (which lists keys) share it.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let p = PathBuf::from(std::env::var_os("HOME")?).join(AGENT_DIR);
    p.is_dir().then_some(p)
}

/// Does `arg` read as a key argument (4 to 40 hex digits, or `sysprompt`)?
pub fn is_key_like(arg: &str) -> bool {
    parse_key_arg(arg).is_ok()
}

/// Where an argument led, and how the file may be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    /// Found in a cache directory by key or bare name: open it without
    /// following a symlink (a link in a cache must never lead kvc out of
    /// it). A path the user typed is followed as they typed it.
    pub in_cache: bool,
}

/// The one resolver of KEY arguments (every command that names
/// checkpoints): a path with a `/` is taken as typed; a bare file name
/// (`<key>.kv`, `sysprompt.kv`) is looked up in `dir` when one was given
/// (`--dir` wins), else as typed when it exists in the current directory,
/// else in the default directory; a key or unique key prefix (4+ hex
/// digits, `sysprompt`) is looked up in `dir`, else the default directory.
/// `default_dir` is asked only when needed, so a path needs no cache
/// directory.
pub fn locate<E: From<Error>>(
    arg: &str,
    dir: Option<&Path>,
    default_dir: impl FnOnce() -> std::result::Result<PathBuf, E>,
) -> std::result::Result<Located, E> {
    let exists = |p: &Path| -> std::result::Result<(), E> {
        fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
        Ok(())
    };
    if arg.contains('/') {
        let path = PathBuf::from(arg);
        exists(&path)?;
        return Ok(Located {
            path,
            in_cache: false,
        });
    }
    if arg.ends_with(".kv") {
        if dir.is_none() && Path::new(arg).symlink_metadata().is_ok() {
            return Ok(Located {
                path: PathBuf::from(arg),
                in_cache: false,
            });
        }
        let path = match dir {
            Some(d) => d.join(arg),
            None => default_dir()?.join(arg),
        };
        exists(&path)?;
        return Ok(Located {
            path,
            in_cache: true,
        });
    }
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => default_dir()?,
    };
    let found = resolve_key(&dir, arg)?;
    Ok(Located {
        path: dir.join(found.file_name_on_disk),
        in_cache: true,
    })
}

/// Resolve `arg` in `dir` (given, not a default): [`locate`] with `--dir`.
pub fn resolve(dir: &Path, arg: &str) -> Result<PathBuf> {
    locate(arg, Some(dir), || -> Result<PathBuf> {
        unreachable!("dir given")
    })
    .map(|l| l.path)
}

/// A key found in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub key: Key,
    /// The actual name (ds4 accepts upper-case hex names).
    pub file_name_on_disk: String,
}

/// Find the one checkpoint in `dir` whose key is `arg` or starts with it.
pub(crate) fn resolve_key(dir: &Path, arg: &str) -> Result<Resolved> {
    // A malformed argument is reported as such, before any I/O.
    parse_key_arg(arg)?;
    let mut listed = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let NameKind::Checkpoint(key) = classify_name(&name) {
            listed.push((key, name));
        }
    }
    resolve_key_among(dir, listed.iter().map(|(k, n)| (k, n.as_str())), arg)
}

/// [`resolve_key`] among the checkpoint names of `dir` already listed, with
/// their keys (as a scan has them): many keys cost one listing, not one
/// each. `dir` names the directory in errors.
pub(crate) fn resolve_key_among<'a>(
    dir: &Path,
    listed: impl IntoIterator<Item = (&'a Key, &'a str)>,
    arg: &str,
) -> Result<Resolved> {
    let (wanted, is_sysprompt) = parse_key_arg(arg)?;
    let mut found: Vec<Resolved> = Vec::new();
    for (key, name) in listed {
        let hit = match key {
            Key::Sysprompt => is_sysprompt,
            Key::Hash(h) => !is_sysprompt && h.starts_with(&wanted),
        };
        if hit {
            found.push(Resolved {
                key: key.clone(),
                file_name_on_disk: name.to_string(),
            });
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    // Two names for one key (upper- and lower-case hex) are still one key.
    found.dedup_by(|a, b| a.key == b.key);
    match found.len() {
        0 => Err(Error::KeyNotFound {
            key: arg.into(),
            dir: dir.to_path_buf(),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(Error::AmbiguousKey {
            prefix: arg.into(),
            dir: dir.to_path_buf(),
            candidates: found.into_iter().map(|r| r.key.to_string()).collect(),
        }),
    }
}

/// A key argument, lower-cased, and whether it is `sysprompt`; anything
/// else must be 4 to 40 hex digits.
fn parse_key_arg(arg: &str) -> Result<(String, bool)> {
    let wanted = arg.to_ascii_lowercase();
    let is_sysprompt = wanted == SYSPROMPT_KEY;
    if !is_sysprompt
        && (wanted.len() < MIN_PREFIX_LEN
            || wanted.len() > KEY_HEX_LEN
            || !wanted.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::BadKey { key: arg.into() });
    }
    Ok((wanted, is_sysprompt))
}
