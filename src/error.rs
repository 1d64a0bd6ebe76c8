//! The library's error type. The library never prints and never exits:
//! every failure comes back as one of these, and its `Display` is the one
//! line the binary shows (always naming the file or directory concerned).

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS error is part of the one line and deliberately not a
    /// `source`: an error chain (`{:#}`) would print its text twice.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: io::Error },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("no checkpoint with key {key:?} in {}", dir.display())]
    KeyNotFound { key: String, dir: PathBuf },
    #[error("key prefix {prefix:?} is ambiguous in {}: {}", dir.display(), candidates.join(", "))]
    AmbiguousKey {
        prefix: String,
        dir: PathBuf,
        candidates: Vec<String>,
    },
    #[error("{key:?} is not a key: give at least 4 hex digits of one, `sysprompt`, or a path to a .kv file")]
    BadKey { key: String },
    #[error("{0}")]
    Usage(String),
    /// Another kvc held the directory's lock for longer than `--wait`.
    /// The binary exits with its own status for it (3), so cron can tell
    /// "kvc was busy" from "kvc failed".
    #[error("{}: gave up after waiting {} for kvc's lock on this directory, held by {holder}; --wait sets how long to wait", dir.display(), humantime::format_duration(*waited))]
    LockTimeout {
        dir: PathBuf,
        holder: String,
        waited: std::time::Duration,
    },
    /// A deleting command's plan is over its limit (`--max-delete`, or
    /// `kvc evict`'s own): nothing was deleted. The binary exits with its
    /// own status for it (4).
    #[error("{}: refusing to delete {would}: {}; nothing was deleted", dir.display(), if *default { format!("more than {limit} of the directory in one run, which needs --max-delete or --yes (is the budget what was meant?)") } else { format!("over --max-delete {limit}") })]
    OverLimit {
        dir: PathBuf,
        /// What the plan would delete, in words.
        would: String,
        /// The limit, in words.
        limit: String,
        /// The command's own limit, not `--max-delete`.
        default: bool,
    },
}

impl Error {
    pub fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            err: source,
        }
    }

    pub fn invalid(path: &Path, message: impl Into<String>) -> Error {
        Error::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
