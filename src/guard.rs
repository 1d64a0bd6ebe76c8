//! How much one run of a deleting command may remove (`--max-delete`).
//!
//! A mistyped budget (`1GiB` for `100GiB`) is a valid budget: only its
//! scale gives it away. So the commands that delete (`evict`, `rm`, `gc`)
//! weigh their plan against a limit before anything is removed, and a
//! plan over it deletes nothing: the run fails with [`Error::OverLimit`],
//! which the binary turns into its own exit status (4), so that cron can
//! tell "refused" from "broken" and from "found problems".
//!
//! A limit is a share of the directory (`25%`: of every byte the
//! directory's entries hold, as `kvc ls` totals them), a size (`10GiB`),
//! or a number of files (`100`).

use crate::error::{Error, Result};
use crate::size;
use std::fmt;
use std::fs;
use std::path::Path;

/// `--max-delete`: at most this much, in one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxDelete {
    /// A share, in percent (0 to 100), of the directory's bytes.
    Percent(f64),
    /// Bytes.
    Bytes(u64),
    /// Files.
    Files(u64),
}

impl MaxDelete {
    /// `25%`, `10GiB` (any size `kvc::size` reads), or `100` (files).
    pub fn parse(s: &str) -> std::result::Result<MaxDelete, String> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => Ok(MaxDelete::Percent(v)),
                _ => Err(format!("{s:?}: a share is 0% to 100%")),
            };
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse::<u64>()
                .map(MaxDelete::Files)
                .map_err(|_| format!("{s:?}: too many files"));
        }
        size::parse_size(t).map(MaxDelete::Bytes).map_err(|_| {
            format!(
                "{s:?}: expected a share (25%), a size (10GiB, 500MB) or a number of files (100)"
            )
        })
    }

    /// Whether deleting `files` files of `bytes` bytes, from directories
    /// holding `base` bytes, stays within the limit.
    pub fn allows(&self, d: &Deletion) -> bool {
        match *self {
            MaxDelete::Percent(p) => d.bytes as f64 <= d.base as f64 * p / 100.0,
            MaxDelete::Bytes(b) => d.bytes <= b,
            MaxDelete::Files(n) => d.files as u64 <= n,
        }
    }
}

impl fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDelete::Percent(p) => write!(f, "{p}%"),
            MaxDelete::Bytes(b) => f.write_str(&size::human(*b)),
            MaxDelete::Files(1) => f.write_str("1 file"),
            MaxDelete::Files(n) => write!(f, "{n} files"),
        }
    }
}

/// What a run would delete, and the bytes of the directories it deletes
/// from (every entry, as `kvc ls` totals them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deletion {
    pub files: usize,
    pub bytes: u64,
    pub base: u64,
}

impl Deletion {
    /// `bytes` as a share of `base`, in percent.
    pub fn percent(&self) -> f64 {
        if self.base == 0 {
            if self.bytes == 0 {
                0.0
            } else {
                100.0
            }
        } else {
            self.bytes as f64 * 100.0 / self.base as f64
        }
    }

    /// `185 files, 168 GiB (60% of 281 GiB)`.
    pub fn describe(&self) -> String {
        format!(
            "{} {}, {} ({:.0}% of {})",
            self.files,
            if self.files == 1 { "file" } else { "files" },
            size::human(self.bytes),
            self.percent(),
            size::human(self.base),
        )
    }

    /// `Err(Error::OverLimit)` when `limit` does not allow this deletion.
    pub fn check(&self, dir: &Path, limit: Option<Limit>) -> Result<()> {
        match limit {
            Some(l) if !l.max.allows(self) => Err(Error::OverLimit {
                dir: dir.to_path_buf(),
                would: self.describe(),
                limit: l.max.to_string(),
                default: l.default,
            }),
            _ => Ok(()),
        }
    }
}

/// The limit a run applies, and whether it is the command's own (no
/// `--max-delete` was given: `kvc evict`'s default) or the user's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub max: MaxDelete,
    pub default: bool,
}

/// Bytes of every entry of `dir` (links and directories at their own
/// size), kvc's own state left out: the base of a `--max-delete` share for
/// `rm` and `gc`, as `kvc ls` totals a directory.
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if e.file_name() == crate::session::journal::STATE_DIR {
            continue;
        }
        if let Ok(m) = fs::symlink_metadata(e.path()) {
            total += m.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_shares_sizes_or_counts() {
        assert_eq!(MaxDelete::parse("25%"), Ok(MaxDelete::Percent(25.0)));
        assert_eq!(MaxDelete::parse("10GiB"), Ok(MaxDelete::Bytes(10 << 30)));
        assert_eq!(MaxDelete::parse("100"), Ok(MaxDelete::Files(100)));
        assert!(MaxDelete::parse("150%").is_err());
        assert!(MaxDelete::parse("lots").is_err());
        let d = Deletion {
            files: 3,
            bytes: 50,
            base: 100,
        };
        assert!(MaxDelete::Percent(50.0).allows(&d));
        assert!(!MaxDelete::Percent(49.0).allows(&d));
        assert!(!MaxDelete::Files(2).allows(&d));
        assert!(MaxDelete::Bytes(50).allows(&d));
    }
}
