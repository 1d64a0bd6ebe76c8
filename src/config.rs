//! Runtime configuration derived from the command line and the environment,
//! kept apart from clap parsing (as fd does) so commands see plain values.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable naming the default cache directory.
pub const DIR_ENV: &str = "KVC_DIR";
/// ds4-agent's cache, the default when it exists.
pub const AGENT_DIR: &str = ".ds4/kvcache";

/// The cache directory when none is given: `$KVC_DIR`, else
/// `~/.ds4/kvcache` when it exists.
pub fn default_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(AGENT_DIR);
        if p.is_dir() {
            return Ok(p);
        }
    }
    bail!("no cache directory given: pass DIR or --dir, or set ${DIR_ENV} (~/{AGENT_DIR} does not exist)")
}

/// `--dir` if given, else the default.
pub fn dir_or_default(dir: Option<PathBuf>) -> Result<PathBuf> {
    match dir {
        Some(d) => Ok(d),
        None => default_dir(),
    }
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
