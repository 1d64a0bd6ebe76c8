//! Sorting a cache directory into checkpoints, invalid checkpoints, temp
//! files of both writers, and strays (FORMAT.md §2).
//!
//! A scan only reads: no header is touched, nothing is created. Symlinks
//! are never followed, and a file that vanishes between `readdir` and
//! `open` (an engine evicted or consumed it) is simply not there.

use crate::error::{Error, Result};
use crate::format::checkpoint::{CheckpointFile, Defect, Key, OpenError};
use crate::format::{Header, HEADER_LEN, PREFIX_LEN};
use crate::text;
use rayon::prelude::*;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
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

/// Below this many checkpoint-named files a scan loads them on the calling
/// thread: starting rayon's pool costs about as much as loading a few dozen
/// files (open, pread, fstat, close), and small directories are the common
/// case for `show` and tests.
const PARALLEL_MIN_FILES: usize = 64;

/// Read one file with a checkpoint name as a scan would.
pub fn load(path: &Path, key: Key, opts: ScanOptions) -> Loaded {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_type = match fs::symlink_metadata(path) {
        Ok(m) => m.file_type(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Vanished,
        Err(e) => return invalid(path, file_name, 0, "unreadable", e.to_string()),
    };
    load_typed(path.to_path_buf(), file_name, key, opts, file_type)
}

fn invalid(path: &Path, file: String, size: u64, code: &'static str, error: String) -> Loaded {
    Loaded::Invalid(Invalid {
        file,
        path: path.to_path_buf(),
        size,
        code,
        error,
    })
}

const SYMLINK_ERROR: &str = "is a symbolic link; kvc does not follow links";
const NOT_A_FILE_ERROR: &str = "is not a regular file";

/// [`load`] once the entry's type is known without following links (from
/// `lstat`, or free from `readdir`'s `d_type` during a scan). The type is
/// checked again on the open descriptor, so a file swapped for a link or a
/// FIFO after the listing is still never followed or read as a checkpoint.
fn load_typed(
    path: PathBuf,
    file_name: String,
    key: Key,
    opts: ScanOptions,
    file_type: fs::FileType,
) -> Loaded {
    if file_type.is_symlink() {
        return invalid(&path, file_name, 0, "symlink", SYMLINK_ERROR.into());
    }
    if !file_type.is_file() {
        return invalid(&path, file_name, 0, "not-a-file", NOT_A_FILE_ERROR.into());
    }
    let file = match open_nofollow(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Vanished,
        // O_NOFOLLOW fails with ELOOP on a link that replaced the file.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return invalid(&path, file_name, 0, "symlink", SYMLINK_ERROR.into())
        }
        Err(e) => {
            // Rare path (permissions): report the size as a listing would.
            let size = fs::symlink_metadata(&path).map_or(0, |m| m.len());
            return invalid(&path, file_name, size, "unreadable", e.to_string());
        }
    };
    // One fstat gives the size every length is checked against, and the mode.
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return invalid(&path, file_name, 0, "unreadable", e.to_string()),
    };
    if !meta.is_file() {
        return invalid(&path, file_name, 0, "not-a-file", NOT_A_FILE_ERROR.into());
    }
    let mode = meta.mode() & 0o7777;
    let cf = match CheckpointFile::from_file_sized(&path, file, meta.len()) {
        Ok(cf) => cf,
        Err(OpenError::Defect(d)) => {
            return invalid(&path, file_name, meta.len(), d.code(), d.to_string())
        }
        Err(OpenError::Io(e)) => {
            return invalid(&path, file_name, meta.len(), "unreadable", e.to_string())
        }
    };
    let size = cf.size;
    if let Err(d) = cf.check_envelope() {
        return invalid(&path, file_name, size, d.code(), d.to_string());
    }
    if cf.header.tokens == 0 {
        let d = Defect::ZeroTokens;
        return invalid(&path, file_name, size, d.code(), d.to_string());
    }
    let text = if opts.read_text {
        match cf.read_text() {
            Ok(t) => Some(t),
            Err(e) => return invalid(&path, file_name, size, "unreadable", e.to_string()),
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
            return invalid(&path, file_name, size, d.code(), d.to_string());
        }
    }
    let CheckpointFile {
        header, text_len, ..
    } = cf;
    Loaded::Checkpoint(Checkpoint {
        key,
        file: file_name,
        path,
        size,
        mode,
        header,
        text_len,
        text,
    })
}

/// The text of a checkpoint a scan listed without reading it, or `None`
/// when the file vanished, shrank, or no longer has the envelope and
/// `text_len` the scan saw (it was replaced: its text is not this
/// checkpoint's). One open, one read of prefix and text together, one
/// close; the length read is the one the scan checked against the size.
pub fn reread_text(c: &Checkpoint) -> Option<Vec<u8>> {
    let file = open_nofollow(&c.path).ok()?;
    let mut buf = vec![0u8; PREFIX_LEN + c.text_len as usize];
    file.read_exact_at(&mut buf, 0).ok()?;
    let header = Header::decode(buf[..HEADER_LEN].try_into().expect("48 bytes"));
    let text_len = u32::from_le_bytes(buf[HEADER_LEN..PREFIX_LEN].try_into().expect("4 bytes"));
    if header.check().is_err() || text_len != c.text_len {
        return None;
    }
    buf.drain(..PREFIX_LEN);
    Some(buf)
}

/// A checkpoint-named entry waiting to be loaded.
struct Pending {
    name: String,
    path: PathBuf,
    key: Key,
    file_type: fs::FileType,
}

/// Scan one directory. Fails only when the directory itself cannot be read.
///
/// `readdir` is sequential; loading the checkpoint-named files (the open,
/// read, fstat and close that dominate a listing) runs on rayon's pool for
/// large directories. The result does not depend on that: every list is
/// sorted by name at the end.
pub fn scan_dir(dir: &Path, opts: ScanOptions) -> Result<Scan> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut scan = Scan {
        dir: dir.to_path_buf(),
        ..Scan::default()
    };
    let mut pending = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match classify_name(&name) {
            NameKind::State => {}
            NameKind::Checkpoint(key) => {
                // d_type from readdir: no lstat per file. std falls back to
                // lstat itself on file systems that leave d_type unknown.
                let file_type = match entry.file_type() {
                    Ok(t) => t,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        scan.invalid.push(Invalid {
                            file: name,
                            path: entry.path(),
                            size: 0,
                            code: "unreadable",
                            error: e.to_string(),
                        });
                        continue;
                    }
                };
                pending.push(Pending {
                    name,
                    path: entry.path(),
                    key,
                    file_type,
                });
            }
            NameKind::Temp { pid, writer } => {
                scan.temp_files
                    .extend(temp_file(name, entry.path(), pid, writer));
            }
            NameKind::Other => {
                let path = entry.path();
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
    // Sort the small pending entries rather than the loaded checkpoints:
    // loading keeps the order, so the checkpoints come out sorted.
    pending.sort_by(|a, b| a.name.cmp(&b.name));
    let load_one = |p: Pending| load_typed(p.path, p.name, p.key, opts, p.file_type);
    let loaded: Vec<Loaded> = if pending.len() >= PARALLEL_MIN_FILES {
        pending.into_par_iter().map(load_one).collect()
    } else {
        pending.into_iter().map(load_one).collect()
    };
    scan.checkpoints.reserve(loaded.len());
    for l in loaded {
        match l {
            Loaded::Checkpoint(c) => scan.checkpoints.push(c),
            Loaded::Invalid(i) => scan.invalid.push(i),
            Loaded::Vanished => {}
        }
    }
    debug_assert!(scan.checkpoints.is_sorted_by(|a, b| a.file <= b.file));
    scan.invalid.sort_by(|a, b| a.file.cmp(&b.file));
    scan.temp_files.sort_by(|a, b| a.file.cmp(&b.file));
    scan.strays.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(scan)
}

/// A temp file as a listing sees it; `None` when it vanished.
fn temp_file(name: String, path: PathBuf, pid: u32, writer: TempWriter) -> Option<TempFile> {
    let meta = fs::symlink_metadata(&path).ok()?;
    Some(TempFile {
        file: name,
        path,
        pid,
        writer,
        size: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Only the temp files of `dir`, sorted by name, as [`scan_dir`] lists
/// them: for `kvc gc`, which has no use for the checkpoints and should not
/// open every one of them in a large cache.
pub fn temp_files(dir: &Path) -> Result<Vec<TempFile>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let NameKind::Temp { pid, writer } = classify_name(&name) {
            out.extend(temp_file(name, entry.path(), pid, writer));
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
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
}
