//! Runtime configuration derived from the command line and the environment,
//! kept apart from clap parsing (as fd does) so commands see plain values.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub use kvc::resolve::{AGENT_DIR, DIR_ENV};

/// The cache directory when none is given: `$KVC_DIR`, else
/// `~/.ds4/kvcache` when it exists.
pub fn default_dir() -> Result<PathBuf> {
    match kvc::resolve::default_dir() {
        Some(d) => Ok(d),
        None => bail!(
            "no cache directory given: give DIR (or -d DIR), or set ${DIR_ENV} (~/{AGENT_DIR} does not exist)"
        ),
    }
}

/// The directory given, else the default.
pub fn dir_or_default(dir: Option<PathBuf>) -> Result<PathBuf> {
    match dir {
        Some(d) => Ok(d),
        None => default_dir(),
    }
}

/// `kvc rm KEY... [DIR]` and the other commands whose KEYs may be
/// followed by the cache directory: a last argument that names a
/// directory (and is not a bare key-like name, which `--dir` would have
/// to disambiguate) is the cache directory, as `--dir` is. It may be the
/// only argument when `keys_optional` (`--all`, export's filters).
/// Returns the keys left and the directory, if any.
pub fn keys_and_dir(
    mut keys: Vec<String>,
    dir: Option<PathBuf>,
    keys_optional: bool,
) -> Result<(Vec<String>, Option<PathBuf>)> {
    let min = if keys_optional { 1 } else { 2 };
    let last_is_dir = keys.len() >= min
        && keys.last().is_some_and(|k| {
            let key_like = !k.contains('/') && kvc::resolve::is_key_like(k);
            !key_like && std::fs::metadata(k).is_ok_and(|m| m.is_dir())
        });
    if !last_is_dir {
        return Ok((keys, dir));
    }
    let d = PathBuf::from(keys.pop().expect("a last argument"));
    if let Some(flag) = &dir {
        bail!(
            "two cache directories given: {} and --dir {}",
            d.display(),
            flag.display()
        );
    }
    Ok((keys, Some(d)))
}

/// The write session of a command (`kvc::session`): its clock, how long
/// it waits for another kvc's lock, and the one line it prints on stderr
/// when a lock keeps it waiting.
pub fn session(
    op: &'static str,
    now: Option<u64>,
    wait: std::time::Duration,
) -> Result<kvc::session::Session> {
    let mut s = kvc::session::Session::new(kvc::session::SessionOptions { op, now, wait })?;
    s.on_wait(Box::new(move |dir, holder| {
        let who = holder.map_or_else(|| "another kvc".to_string(), |h| h.describe());
        eprintln!(
            "kvc: {}: waiting for the lock, held by {who} (giving up after {})",
            kvc::text::sanitize_line(dir.as_os_str().as_encoded_bytes()),
            humantime::format_duration(wait)
        );
    }));
    Ok(s)
}

/// `--now` if given, else the clock.
pub fn now_or_clock(now: Option<u64>) -> Result<u64> {
    match now {
        Some(n) => Ok(n),
        None => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("system clock is before 1970")?
            .as_secs()),
    }
}
