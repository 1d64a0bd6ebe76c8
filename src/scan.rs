//! Sorting a cache directory into checkpoints, invalid checkpoints, temp
//! files of both writers, and strays (FORMAT.md §2).
//!
//! A scan only reads: no header is touched, nothing is created. Symlinks
//! are never followed, and a file that vanishes between `readdir` and
//! `open` (an engine evicted or consumed it) is simply not there.

use crate::checkpoint::{CheckpointFile, Defect, Key, OpenError};
use crate::error::{Error, Result};
use crate::format::Header;
use crate::text;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// kvc's own hidden state inside a cache directory (journal, lock). The
/// engines ignore every name that is not theirs (FORMAT.md §2).
pub const STATE_DIR: &str = ".kvc";

/// Which engine left a temporary file behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TempWriter {
    /// `<key>.kv.tmp.<pid>` — ds4, and kvc's own writes.
    Ds4,
    /// `<key>.<pid>-<seq>.kv.tmp` — hanzo-engine.
    Hanzo,
}

/// What a directory entry's name says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameKind {
    Checkpoint(Key),
    Temp { pid: u32, writer: TempWriter },
    State,
    Other,
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Classify a file name without touching the file.
pub fn classify_name(name: &str) -> NameKind {
    if name == STATE_DIR {
        return NameKind::State;
    }
    if let Some(key) = Key::from_file_name(name) {
        return NameKind::Checkpoint(key);
    }
    if let Some((stem, pid)) = name.rsplit_once(".kv.tmp.") {
        if let (false, Some(pid)) = (stem.is_empty(), digits(pid)) {
            return NameKind::Temp {
                pid,
                writer: TempWriter::Ds4,
            };
        }
    }
    if let Some(rest) = name.strip_suffix(".kv.tmp") {
        if let Some((stem, pid_seq)) = rest.rsplit_once('.') {
            if let Some((pid, seq)) = pid_seq.split_once('-') {
                if let (false, Some(pid), Some(_)) = (stem.is_empty(), digits(pid), digits(seq)) {
                    return NameKind::Temp {
                        pid,
                        writer: TempWriter::Hanzo,
                    };
                }
            }
        }
    }
    NameKind::Other
}

/// A file that reads as a checkpoint.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub key: Key,
    /// The name on disk (may be upper-case hex).
    pub file: String,
    pub path: PathBuf,
    /// Size at scan time.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    pub header: Header,
    pub text_len: u32,
    /// The text, when the scan was asked to read it.
    pub text: Option<Vec<u8>>,
}

impl Checkpoint {
    /// ds4-agent's explicit saves: `sysprompt.kv` and the agent reasons.
    /// Eviction leaves them alone unless told otherwise.
    pub fn is_agent_save(&self) -> bool {
        self.key == Key::Sysprompt || self.header.reason.is_agent()
    }

    /// The session title (FORMAT.md §4) as raw bytes, when the text was read.
    pub fn title(&self) -> Option<Vec<u8>> {
        self.text.as_deref().and_then(text::title)
    }
}

/// A file with a checkpoint name that is not a usable checkpoint.
#[derive(Clone, Debug)]
pub struct Invalid {
    pub file: String,
    pub path: PathBuf,
    pub size: u64,
    /// Stable code: a [`Defect::code`], `symlink`, `not-a-file` or `unreadable`.
    pub code: &'static str,
    pub error: String,
}

/// A temporary file of a writer (a save in progress, or a crashed one).
#[derive(Clone, Debug)]
pub struct TempFile {
    pub file: String,
    pub path: PathBuf,
    pub pid: u32,
    pub writer: TempWriter,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// A name no engine reads.
#[derive(Clone, Debug)]
pub struct Stray {
    pub file: String,
    pub path: PathBuf,
    pub size: u64,
    pub is_dir: bool,
}

/// Everything a scan found in one directory, each list sorted by name.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub dir: PathBuf,
    pub checkpoints: Vec<Checkpoint>,
    pub invalid: Vec<Invalid>,
    pub temp_files: Vec<TempFile>,
    pub strays: Vec<Stray>,
}

impl Scan {
    /// Bytes of the valid checkpoints: what an engine's budget counts.
    pub fn checkpoint_bytes(&self) -> u64 {
        self.checkpoints.iter().map(|c| c.size).sum()
    }

    /// Bytes of every entry the scan saw (checkpoints, invalid, temp, stray).
    pub fn total_bytes(&self) -> u64 {
        self.checkpoint_bytes()
            + self.invalid.iter().map(|c| c.size).sum::<u64>()
            + self.temp_files.iter().map(|c| c.size).sum::<u64>()
            + self.strays.iter().map(|c| c.size).sum::<u64>()
    }
}

/// What a scan reads beyond each file's 52-byte prefix.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanOptions {
    /// Read every text: for titles, and to check the name is the text's SHA-1.
    pub read_text: bool,
}

/// Open without following a symlink and without blocking on a FIFO someone
/// named `<key>.kv`.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// The result of loading one checkpoint-named file.
#[derive(Debug)]
pub enum Loaded {
    Checkpoint(Checkpoint),
    Invalid(Invalid),
    /// Gone between listing and opening: not an error.
    Vanished,
}

/// Read one file with a checkpoint name as a scan would.
pub fn load(path: &Path, key: Key, opts: ScanOptions) -> Loaded {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let invalid = |size: u64, code: &'static str, error: String| {
        Loaded::Invalid(Invalid {
            file: file_name.clone(),
            path: path.to_path_buf(),
            size,
            code,
            error,
        })
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Vanished,
        Err(e) => return invalid(0, "unreadable", e.to_string()),
    };
    if meta.file_type().is_symlink() {
        return invalid(
            0,
            "symlink",
            "is a symbolic link; kvc does not follow links".into(),
        );
    }
    if !meta.is_file() {
        return invalid(0, "not-a-file", "is not a regular file".into());
    }
    let file = match open_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Vanished,
        Err(e) => return invalid(meta.len(), "unreadable", e.to_string()),
    };
    let mode = file.metadata().map(|m| m.mode() & 0o7777).unwrap_or(0);
    let cf = match CheckpointFile::from_file(path, file) {
        Ok(cf) => cf,
        Err(OpenError::Defect(d)) => return invalid(meta.len(), d.code(), d.to_string()),
        Err(OpenError::Io(e)) => return invalid(meta.len(), "unreadable", e.to_string()),
    };
    let size = cf.size;
    if let Err(d) = cf.check_envelope() {
        return invalid(size, d.code(), d.to_string());
    }
    if cf.header.tokens == 0 {
        let d = Defect::ZeroTokens;
        return invalid(size, d.code(), d.to_string());
    }
    let text = if opts.read_text {
        match cf.read_text() {
            Ok(t) => Some(t),
            Err(e) => return invalid(size, "unreadable", e.to_string()),
        }
    } else {
        None
    };
    if let (Some(t), Key::Hash(_)) = (&text, &key) {
        let actual = Key::of_text(t);
        if actual != key {
            let d = Defect::KeyMismatch {
                actual: actual.to_string(),
            };
            return invalid(size, d.code(), d.to_string());
        }
    }
    Loaded::Checkpoint(Checkpoint {
        key,
        file: file_name,
        path: path.to_path_buf(),
        size,
        mode,
        header: cf.header,
        text_len: cf.text_len,
        text,
    })
}

/// Scan one directory. Fails only when the directory itself cannot be read.
pub fn scan_dir(dir: &Path, opts: ScanOptions) -> Result<Scan> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut scan = Scan {
        dir: dir.to_path_buf(),
        ..Scan::default()
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        match classify_name(&name) {
            NameKind::State => {}
            NameKind::Checkpoint(key) => match load(&path, key, opts) {
                Loaded::Checkpoint(c) => scan.checkpoints.push(c),
                Loaded::Invalid(i) => scan.invalid.push(i),
                Loaded::Vanished => {}
            },
            NameKind::Temp { pid, writer } => {
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                scan.temp_files.push(TempFile {
                    file: name,
                    path,
                    pid,
                    writer,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
            NameKind::Other => {
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                scan.strays.push(Stray {
                    file: name,
                    path,
                    size: if meta.is_file() { meta.len() } else { 0 },
                    is_dir: meta.is_dir(),
                });
            }
        }
    }
    scan.checkpoints.sort_by(|a, b| a.file.cmp(&b.file));
    scan.invalid.sort_by(|a, b| a.file.cmp(&b.file));
    scan.temp_files.sort_by(|a, b| a.file.cmp(&b.file));
    scan.strays.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(scan)
}

/// Is process `pid` alive on this host? A pid we may not signal (EPERM)
/// exists, so it counts as alive: never touch a temp file whose writer
/// might still be writing it.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_both_writers_temp_files() {
        assert_eq!(
            classify_name("3c315f4983362eb6cdb04a6f46ed11650aa7135f.kv.tmp.31337"),
            NameKind::Temp {
                pid: 31337,
                writer: TempWriter::Ds4
            }
        );
        assert_eq!(
            classify_name("4d1f6e78cbf9da0f2c6b8f93e536990ab10864a3.4242-0.kv.tmp"),
            NameKind::Temp {
                pid: 4242,
                writer: TempWriter::Hanzo
            }
        );
        assert_eq!(classify_name("x.kv.tmp.12a"), NameKind::Other);
        assert_eq!(classify_name(".kv.tmp.12"), NameKind::Other);
        assert_eq!(classify_name(".kvc"), NameKind::State);
        assert_eq!(classify_name("notes.txt"), NameKind::Other);
    }

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }
}
