//! Turning what a user typed (`3fa2`, a full key, `sysprompt`, or a path)
//! into a checkpoint file.

use crate::error::{Error, Result};
use crate::format::checkpoint::{Key, KEY_HEX_LEN, SYSPROMPT_KEY};
use crate::scan::{classify_name, NameKind};
use std::fs;
use std::path::{Path, PathBuf};

/// The shortest prefix accepted: shorter ones match too much by accident.
pub const MIN_PREFIX_LEN: usize = 4;

/// Does the argument name a file rather than a key? Anything with a path
/// separator or a `.kv` ending is a path.
pub fn looks_like_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".kv")
}

/// Resolve `arg` to a file: a path is taken as it is (it must exist); a key
/// or unique key prefix is looked up in `dir`.
pub fn resolve(dir: &Path, arg: &str) -> Result<PathBuf> {
    if looks_like_path(arg) {
        let p = PathBuf::from(arg);
        return match fs::symlink_metadata(&p) {
            Ok(_) => Ok(p),
            Err(e) => Err(Error::io(&p, e)),
        };
    }
    Ok(dir.join(resolve_key(dir, arg)?.file_name_on_disk))
}

/// A key found in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub key: Key,
    /// The actual name (ds4 accepts upper-case hex names).
    pub file_name_on_disk: String,
}

/// Find the one checkpoint in `dir` whose key is `arg` or starts with it.
pub fn resolve_key(dir: &Path, arg: &str) -> Result<Resolved> {
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
pub fn resolve_key_among<'a>(
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
