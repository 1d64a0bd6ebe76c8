//! Sorting a cache directory into checkpoints, invalid checkpoints, temp
//! files of every writer, and strays (FORMAT.md §2).
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

/// Which engine left a temporary file behind (FORMAT.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TempWriter {
    /// `<key>.kv.tmp.<pid>`: ds4-server, every version since d997b56
    /// (ds4_kvstore.c:1054-1058 at mainline b030961:
    /// `kv_buf_printf(&tmpb, "%s.tmp.%ld", path, (long)getpid())`), and
    /// kvc's own writes (`fsutil::temp_name_for`).
    Ds4Server,
    /// `<name>.kv.tmp.XXXXXX`: ds4-agent, every version since 599e49d
    /// (2026-05-19), for sessions and `sysprompt.kv` alike: `mkstemp` on
    /// `<path>.tmp.XXXXXX` (ds4_agent.c:4366-4371 to save, 5757-5761 for
    /// `/strip` since 4a855d8, at b030961): six random characters, no pid.
    Ds4Agent,
    /// hanzo-engine: `<key>.<pid>-<seq>.kv.tmp` since 170f6248b (2026-05-29;
    /// disk_kv_cache.rs:183-184,
    /// `path.with_extension(format!("{}-{}.kv.tmp", std::process::id(), seq))`).
    /// `<key>.kv.tmp` comes from the 5d09e62f3 scaffold, and
    /// `<key>.<pid>.kv.tmp` (FORMAT.md §9, D20) from no version of
    /// disk_kv_cache.rs we found; both are still its: hanzo-engine deletes
    /// every `*.kv.tmp` at start (`sweep_partial`), whoever wrote it.
    Hanzo,
}

impl TempWriter {
    pub fn name(self) -> &'static str {
        match self {
            TempWriter::Ds4Server => "ds4-server",
            TempWriter::Ds4Agent => "ds4-agent",
            TempWriter::Hanzo => "hanzo-engine",
        }
    }
}

/// What a temp file's name says about its writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TempKind {
    /// The likeliest writer: for an ambiguous name (see `pid_certain`),
    /// ds4-server.
    pub writer: TempWriter,
    /// The number in the name that is, or may be, the writer's pid.
    pub pid: Option<u32>,
    /// `pid` is surely a pid. Not so for `<name>.kv.tmp.123456`: six digits
    /// are also a ds4-agent mkstemp suffix that happens to be all digits
    /// (1 in 57,000 of them), and then a dead "pid" says nothing about the
    /// writer. A running one is still respected, to be safe.
    pub pid_certain: bool,
}

impl TempKind {
    /// The pid whose death means the writer is gone.
    pub fn certain_pid(&self) -> Option<u32> {
        self.pid.filter(|_| self.pid_certain)
    }
}

/// What a directory entry's name says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameKind {
    Checkpoint(Key),
    Temp(TempKind),
    State,
    Other,
}

/// A pid as a writer prints it (`%ld`, Rust's `{}`): digits without a
/// leading zero, as no pid is 0. `000123` is therefore no pid, and can only
/// be mkstemp's.
fn pid_digits(s: &str) -> Option<u32> {
    if s.starts_with('0') || s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The length of mkstemp's random suffix: its template ends in `XXXXXX`.
const MKSTEMP_LEN: usize = 6;

/// mkstemp's alphabet is `[A-Za-z0-9]` in glibc and the BSDs/macOS; musl's
/// is a subset of it.
fn mkstemp_suffix(s: &str) -> bool {
    s.len() == MKSTEMP_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn temp_kind(name: &str) -> Option<TempKind> {
    let kind = |writer, pid, pid_certain| {
        Some(TempKind {
            writer,
            pid,
            pid_certain,
        })
    };
    // ds4: `<stem>.kv.tmp.<suffix>`
    if let Some((stem, suffix)) = name.rsplit_once(".kv.tmp.") {
        if stem.is_empty() {
            return None;
        }
        return match (pid_digits(suffix), mkstemp_suffix(suffix)) {
            (Some(pid), false) => kind(TempWriter::Ds4Server, Some(pid), true),
            (Some(pid), true) => kind(TempWriter::Ds4Server, Some(pid), false),
            (None, true) => kind(TempWriter::Ds4Agent, None, false),
            (None, false) => None,
        };
    }
    // hanzo-engine: `<stem>.kv.tmp`, `<stem>.<pid>.kv.tmp`, `<stem>.<pid>-<seq>.kv.tmp`
    let rest = name.strip_suffix(".kv.tmp")?;
    if rest.is_empty() {
        return None;
    }
    if let Some((stem, pid_seq)) = rest.rsplit_once('.') {
        let (pid, seq) = match pid_seq.split_once('-') {
            Some((pid, seq)) => (pid, Some(seq)),
            None => (pid_seq, None),
        };
        let seq_ok = seq.is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
        if let (false, Some(pid), true) = (stem.is_empty(), pid_digits(pid), seq_ok) {
            return kind(TempWriter::Hanzo, Some(pid), true);
        }
    }
    kind(TempWriter::Hanzo, None, false)
}

/// Classify a file name without touching the file.
pub fn classify_name(name: &str) -> NameKind {
    if name == STATE_DIR {
        return NameKind::State;
    }
    if let Some(key) = Key::from_file_name(name) {
        return NameKind::Checkpoint(key);
    }
    match temp_kind(name) {
        Some(kind) => NameKind::Temp(kind),
        None => NameKind::Other,
    }
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
    pub kind: TempKind,
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
            NameKind::Temp(kind) => {
                scan.temp_files.extend(temp_file(name, entry.path(), kind));
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
fn temp_file(name: String, path: PathBuf, kind: TempKind) -> Option<TempFile> {
    let meta = fs::symlink_metadata(&path).ok()?;
    Some(TempFile {
        file: name,
        path,
        kind,
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
        if let NameKind::Temp(kind) = classify_name(&name) {
            out.extend(temp_file(name, entry.path(), kind));
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(writer: TempWriter, pid: Option<u32>, pid_certain: bool) -> NameKind {
        NameKind::Temp(TempKind {
            writer,
            pid,
            pid_certain,
        })
    }

    const KEY: &str = "3c315f4983362eb6cdb04a6f46ed11650aa7135f";

    #[test]
    fn names_of_every_writers_temp_files() {
        use TempWriter::*;
        let cases = [
            // ds4-server: any number of digits but six is surely a pid.
            (
                format!("{KEY}.kv.tmp.31337"),
                temp(Ds4Server, Some(31337), true),
            ),
            (format!("{KEY}.kv.tmp.1"), temp(Ds4Server, Some(1), true)),
            (
                format!("{KEY}.kv.tmp.4194304"),
                temp(Ds4Server, Some(4194304), true),
            ),
            // ds4-agent: mkstemp's six characters, for sessions and sysprompt.kv.
            (format!("{KEY}.kv.tmp.Qx7aZ2"), temp(Ds4Agent, None, false)),
            (
                "sysprompt.kv.tmp.abcDEF".into(),
                temp(Ds4Agent, None, false),
            ),
            (format!("{KEY}.kv.tmp.ZZZZZZ"), temp(Ds4Agent, None, false)),
            // Six digits: a server pid, or an all-digit mkstemp suffix.
            (
                format!("{KEY}.kv.tmp.123456"),
                temp(Ds4Server, Some(123456), false),
            ),
            (
                "sysprompt.kv.tmp.987654".into(),
                temp(Ds4Server, Some(987654), false),
            ),
            // No pid starts with 0: only mkstemp writes that.
            (format!("{KEY}.kv.tmp.000123"), temp(Ds4Agent, None, false)),
            // hanzo-engine's three forms.
            (
                format!("{KEY}.4242-0.kv.tmp"),
                temp(Hanzo, Some(4242), true),
            ),
            (format!("{KEY}.4242.kv.tmp"), temp(Hanzo, Some(4242), true)),
            (format!("{KEY}.kv.tmp"), temp(Hanzo, None, false)),
            ("x.kv.tmp".into(), temp(Hanzo, None, false)),
            // Neither a pid nor a sequence number: the stem is all there is.
            (format!("{KEY}.42-x.kv.tmp"), temp(Hanzo, None, false)),
            (format!("{KEY}.042.kv.tmp"), temp(Hanzo, None, false)),
            // Strays.
            ("x.kv.tmp.12a".into(), NameKind::Other),
            ("x.kv.tmp.12345a7".into(), NameKind::Other),
            ("x.kv.tmp.Qx7a-2".into(), NameKind::Other),
            ("x.kv.tmp.0123".into(), NameKind::Other),
            ("x.kv.tmp.".into(), NameKind::Other),
            (".kv.tmp.12".into(), NameKind::Other),
            (".kv.tmp.Qx7aZ2".into(), NameKind::Other),
            (".kv.tmp".into(), NameKind::Other),
            ("x.kv.tmp.99999999999".into(), NameKind::Other),
            (format!("{KEY}.kv.part"), NameKind::Other),
            ("notes.txt".into(), NameKind::Other),
            (".kvc".into(), NameKind::State),
        ];
        for (name, want) in cases {
            assert_eq!(classify_name(&name), want, "{name}");
        }
    }

    #[test]
    fn only_a_certain_pid_is_certain() {
        let NameKind::Temp(k) = classify_name(&format!("{KEY}.kv.tmp.123456")) else {
            panic!("not a temp name");
        };
        assert_eq!((k.pid, k.certain_pid()), (Some(123456), None));
        let NameKind::Temp(k) = classify_name(&format!("{KEY}.kv.tmp.12345")) else {
            panic!("not a temp name");
        };
        assert_eq!(k.certain_pid(), Some(12345));
    }
}
