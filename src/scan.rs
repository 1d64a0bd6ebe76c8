//! Sorting a cache directory into checkpoints (each with its dialect and
//! whether the directory's engine loads it), invalid checkpoints, foreign
//! files, temp files of every writer, and strays (FORMAT.md §2, §9).
//!
//! A scan only reads: no header is touched, nothing is created. Symlinks
//! are never followed, and a file that vanishes between `readdir` and
//! `open` (an engine evicted or consumed it) is simply not there.

use crate::code::Code;
use crate::error::{Error, Result};
use crate::format::checkpoint::{CheckpointFile, Defect, Key, OpenError};
use crate::format::checkpoint::{KV_EXT, SYSPROMPT_FILE};
use crate::format::dialect::{
    self, Detected, DialectId, Engine, EngineChoice, Evidence, NotLoaded, Support,
};
use crate::format::identity;
use crate::format::trailer::{self, SessionTitle};
use crate::format::Header;
use crate::text;
use rayon::prelude::*;
use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use crate::session::STATE_DIR;

/// A file's identity (`st_dev`, `st_ino`) when it was read: the write
/// session acts on its name only while it is still this inode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(m: &fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

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
    pub(crate) fn certain_pid(&self) -> Option<u32> {
        self.pid.filter(|_| self.pid_certain)
    }
}

/// What a directory entry's name says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NameKind {
    Checkpoint(Key),
    Temp(TempKind),
    /// `<key>.ckpt`: the companion of a tail-indexed fork file (D14/D15),
    /// which belongs to its `<key>.kv`.
    Companion(Key),
    State,
    Other,
}

/// `.ckpt`, the companion suffix of the tail-indexed dialects.
pub(crate) const COMPANION_EXT: &str = ".ckpt";

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
pub(crate) fn classify_name(name: &str) -> NameKind {
    if name == STATE_DIR {
        return NameKind::State;
    }
    if let Some(key) = Key::from_file_name(name) {
        return NameKind::Checkpoint(key);
    }
    if let Some(stem) = name.strip_suffix(COMPANION_EXT) {
        if let Some(k) = Key::from_hex(stem) {
            return NameKind::Companion(k);
        }
    }
    match temp_kind(name) {
        Some(kind) => NameKind::Temp(kind),
        None => NameKind::Other,
    }
}

/// The directory a scan read, shared by all of its checkpoints: a record
/// keeps its file's name (often not even that, see [`Checkpoint::file`]),
/// not a path of its own, and re-reads its file relative to this
/// directory's descriptor (no walk of the directory's path per file).
#[derive(Debug)]
pub struct ScanDir {
    path: PathBuf,
    /// What a path in it displays as before the file name: the directory
    /// as `Path::display` shows it and a separator (unless it ends in one,
    /// as `Path::join` adds none then; empty for no directory). Made once:
    /// a listing writes it into every row.
    prefix: Box<str>,
    /// `None` for a record made without a scan (one file, a dry run).
    fd: Option<rustix::fd::OwnedFd>,
}

impl ScanDir {
    fn new(path: PathBuf, fd: Option<rustix::fd::OwnedFd>) -> Arc<ScanDir> {
        let mut prefix = path.display().to_string();
        let raw = path.as_os_str().as_encoded_bytes();
        if !raw.is_empty() && !raw.ends_with(b"/") {
            prefix.push('/');
        }
        Arc::new(ScanDir {
            path,
            prefix: prefix.into_boxed_str(),
            fd,
        })
    }

    /// The directory of `path` (`""` for a bare name, as `Path::parent`
    /// gives it), without a descriptor.
    fn of_file(path: &Path) -> Arc<ScanDir> {
        ScanDir::new(
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            None,
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `name` in it to read, never following a link nor blocking on
    /// a FIFO.
    fn open(&self, name: &str) -> io::Result<File> {
        match &self.fd {
            Some(fd) => crate::sys::open_read_at(fd, name),
            None => open_nofollow(&self.path.join(name)),
        }
    }
}

/// A file that reads as a checkpoint: a compact record (about 190 bytes
/// plus the title when it was read; 850 bytes and five allocations before
/// issue 16), so that a scan of 100,000 checkpoints holds 19 MB.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub key: Key,
    /// The name on disk when it is not the key's own (`<key>.kv` in lower
    /// case, `sysprompt.kv`): an upper-case name. See [`Checkpoint::file`].
    name: Option<Box<str>>,
    /// Where it is: see [`Checkpoint::path`].
    dir: Arc<ScanDir>,
    /// Size at scan time.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    pub header: Header,
    pub text_len: u32,
    /// The title of its text (FORMAT.md §4), when the scan was asked to
    /// read texts. The text itself is streamed, never held.
    pub text_title: Option<Box<[u8]>>,
    /// Its dialect (FORMAT.md §9).
    pub dialect: DialectId,
    /// The bytes could be D1 or D20: the directory's engine decided.
    pub assumed: bool,
    /// ext bit 3's session title (FORMAT.md §5b), when the scan read texts.
    pub session_title: Option<Box<SessionTitle>>,
    /// Whether the directory's engine loads it, counts it against its
    /// budget and may evict it (FORMAT.md §7), and if not, why.
    pub loadable: std::result::Result<(), NotLoaded>,
    /// Position in the directory listing: engines break ties in `readdir`
    /// order.
    pub order: u32,
    /// The inode read (zeros for one known only by its header).
    pub id: FileId,
    /// The key its content says, when the scan read the text and that is
    /// not its name (`key-mismatch`). Such a file is still a checkpoint:
    /// the engine's reader judges the header, so it counts, ranks and
    /// evicts it like any other (and never hits it); `kvc ls` flags it and
    /// `kvc verify` reports the error.
    pub content_key: Option<Box<Key>>,
}

/// A checkpoint's file name, written without allocating (see
/// [`Checkpoint::file_name`]).
pub struct FileName<'a>(&'a Checkpoint);

impl fmt::Display for FileName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.name, &self.0.key) {
            (Some(n), _) => f.write_str(n),
            (None, Key::Hash(h)) => {
                f.write_str(h)?;
                f.write_str(KV_EXT)
            }
            (None, Key::Sysprompt) => f.write_str(SYSPROMPT_FILE),
        }
    }
}

/// A checkpoint's path as `Path::display` shows `path()`, written without
/// building the path (see [`Checkpoint::display_path`]).
pub struct DisplayPath<'a>(&'a Checkpoint);

impl fmt::Display for DisplayPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.dir_prefix())?;
        write!(f, "{}", self.0.file_name())
    }
}

impl Checkpoint {
    /// ds4-agent's explicit saves: `sysprompt.kv` and the agent reasons.
    /// Eviction leaves them alone unless told otherwise.
    pub fn is_agent_save(&self) -> bool {
        self.key == Key::Sysprompt || self.header.reason.is_agent()
    }

    /// The title a listing shows: an agent session's own title trailer
    /// (ds4-agent's `/list` shows it), else the first user turn of the
    /// text (FORMAT.md §4), when the scan read it. Raw bytes.
    pub fn title(&self) -> Option<&[u8]> {
        if let Some(t) = &self.session_title {
            return Some(&t.head);
        }
        self.text_title.as_deref()
    }

    /// The name on disk (may be upper-case hex). Allocates for the common
    /// lower-case name, which is not stored: see [`file_name`](Self::file_name)
    /// to write it.
    pub fn file(&self) -> Cow<'_, str> {
        match (&self.name, &self.key) {
            (Some(n), _) => Cow::Borrowed(n),
            (None, Key::Sysprompt) => Cow::Borrowed(SYSPROMPT_FILE),
            (None, k) => Cow::Owned(k.file_name()),
        }
    }

    /// The name on disk, to display or write.
    pub fn file_name(&self) -> FileName<'_> {
        FileName(self)
    }

    /// Order by name on disk, as a scan lists checkpoints, without
    /// building the names.
    pub fn cmp_file(&self, other: &Checkpoint) -> std::cmp::Ordering {
        match (&self.name, &other.name, &self.key, &other.key) {
            (None, None, Key::Hash(a), Key::Hash(b)) => a.cmp(b),
            _ => self.file().cmp(&other.file()),
        }
    }

    /// Whether its name on disk is `name`, without building the name.
    pub fn is_named(&self, name: &str) -> bool {
        match &self.name {
            Some(n) => **n == *name,
            None => self.key.is_file_name(name),
        }
    }

    /// The directory it was read in.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// What [`display_path`](Self::display_path) shows before the name:
    /// the directory as `Path::display` shows it and a separator (none
    /// when it ends in one, as `Path::join` adds none; empty for a bare
    /// name).
    pub fn dir_prefix(&self) -> &str {
        &self.dir.prefix
    }

    /// The name on disk when it is not the key's own (`None`: the name is
    /// `<key>.kv` in lower case, or `sysprompt.kv`).
    pub fn stored_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Its path: the directory it was read in, and its name.
    pub fn path(&self) -> PathBuf {
        self.dir.path.join(&*self.file())
    }

    /// Its path, to display or write, as `path().display()` shows it.
    pub fn display_path(&self) -> DisplayPath<'_> {
        DisplayPath(self)
    }

    /// Place the record at `path` (another directory or name): what a
    /// caller does that copies a checkpoint somewhere else.
    pub fn set_path(&mut self, path: &Path) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.name = (!self.key.is_file_name(&name)).then(|| name.into_boxed_str());
        self.dir = ScanDir::of_file(path);
    }

    /// Open its file to read, relative to the scanned directory's
    /// descriptor; never follows a link nor blocks on a FIFO.
    pub(crate) fn open(&self) -> io::Result<File> {
        self.dir.open(&self.file())
    }

    /// Whether the directory's engine loads it.
    pub fn is_loadable(&self) -> bool {
        self.loadable.is_ok()
    }

    /// Whether the engine's budget counts it, and so its eviction may pick
    /// it (FORMAT.md §7, "What the budget counts"): it loads it, and the
    /// name passes the engine's filter (`sysprompt.kv` does not, for ds4).
    pub fn is_counted(&self, engine: Engine) -> bool {
        self.is_loadable() && engine.reader().counts_name(&self.key)
    }

    /// A checkpoint known only by its header (one a dry run would install):
    /// its dialect from the header bytes alone, resolved by `engine`.
    pub fn from_header(
        key: Key,
        path: PathBuf,
        size: u64,
        mode: u32,
        header: Header,
        text_len: u32,
        engine: Engine,
    ) -> Checkpoint {
        let detected = dialect::detect(&header, text_len, Some(&key), &dialect::InMemory(&[]));
        let loadable = engine.reader().accepts(&header);
        let mut c = Checkpoint {
            name: None,
            dir: ScanDir::of_file(&path),
            key,
            size,
            mode,
            text_len,
            text_title: None,
            dialect: detected.resolve(engine).unwrap_or(DialectId::D3),
            assumed: matches!(detected, Detected::Ds4OrHanzo { hanzo_only: false }),
            session_title: None,
            loadable,
            order: u32::MAX,
            id: FileId::default(),
            content_key: None,
            header,
        };
        c.set_path(&path);
        c
    }
}

/// A file with a checkpoint name that is not a usable checkpoint.
#[derive(Clone, Debug)]
pub struct Invalid {
    pub file: String,
    pub path: PathBuf,
    pub size: u64,
    /// Stable code: a [`Defect::code`], `symlink`, `not-a-file` or `unreadable`.
    pub code: Code,
    pub error: String,
    /// Position in the directory listing.
    pub order: u32,
}

/// A checkpoint-named file of a dialect kvc does not fully read (FORMAT.md
/// §9): counted in sizes, reported as `foreign`, never judged, deleted,
/// moved or rewritten on kvc's own initiative.
#[derive(Clone, Debug)]
pub struct Foreign {
    pub file: String,
    pub path: PathBuf,
    pub key: Key,
    pub size: u64,
    /// The known dialect, or `None` for one no row describes.
    pub dialect: Option<DialectId>,
    pub header: Header,
    /// What was recognised, in words.
    pub what: String,
    /// `<key>.ckpt` companions that belong to it, with their sizes.
    pub companions: Vec<(String, u64)>,
    /// Whether the directory's engine's reader would still load it (a
    /// version-1, ABI-2 LZ4 file passes mainline's header checks).
    pub loadable: std::result::Result<(), NotLoaded>,
    /// Position in the directory listing.
    pub order: u32,
    /// The inode read.
    pub id: FileId,
}

impl Foreign {
    /// Bytes of the file and its companions.
    pub fn total_size(&self) -> u64 {
        self.size + self.companions.iter().map(|c| c.1).sum::<u64>()
    }
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
    /// A symbolic link (its own size: nothing is followed).
    pub is_symlink: bool,
    /// Another store's file kvc recognises (FORMAT.md §9: D16 `DS4CHN01`
    /// block chains, D17 `KVB4` blocks): a stray of a known kind.
    pub known: Option<DialectId>,
    /// Position in the directory listing.
    pub order: u32,
}

/// The block stores of FORMAT.md §9 name their files `.kvs`/`.kvt` (D16)
/// and `.kvb` (D17). Their magic is read (8 bytes, never following a
/// link) only for those names, so a listing pays nothing for other strays.
fn block_store_kind(name: &str, path: &Path) -> Option<DialectId> {
    let ext = Path::new(name).extension()?.to_str()?;
    if !matches!(ext, "kvs" | "kvt" | "kvb") {
        return None;
    }
    let file = open_nofollow(path).ok()?;
    let mut head = [0u8; 8];
    let n = std::os::unix::fs::FileExt::read_at(&file, &mut head, 0).ok()?;
    if n == 8 && head == dialect::CHAIN_MAGIC {
        Some(DialectId::D16)
    } else if n >= 4 && head[..4] == dialect::KVB4_MAGIC {
        Some(DialectId::D17)
    } else {
        None
    }
}

/// Everything a scan found in one directory, each list sorted by name.
#[derive(Clone, Debug)]
pub struct Scan {
    pub dir: PathBuf,
    /// The engine whose rules apply, and how it was decided.
    pub engine: EngineChoice,
    pub checkpoints: Vec<Checkpoint>,
    pub invalid: Vec<Invalid>,
    /// Files of dialects kvc does not fully read.
    pub foreign: Vec<Foreign>,
    pub temp_files: Vec<TempFile>,
    pub strays: Vec<Stray>,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan {
            dir: PathBuf::new(),
            engine: dialect::infer_engine(&Evidence::default(), None),
            checkpoints: Vec::new(),
            invalid: Vec::new(),
            foreign: Vec::new(),
            temp_files: Vec::new(),
            strays: Vec::new(),
        }
    }
}

impl Scan {
    /// The engine's ranking of the checkpoints (index-aligned with them),
    /// as `kvc ls` shows it: the engine ranks what its budget counts (not
    /// what it never loads, nor `sysprompt.kv`); eviction never picks an
    /// agent save, so it gets a score but no rank.
    pub fn standings(&self, opts: &crate::policy::RankOptions) -> Vec<crate::policy::Standing> {
        let engine = self.engine.engine;
        crate::policy::standings(
            opts,
            &self.checkpoints,
            |c| c.is_counted(engine),
            |c| c.is_agent_save(),
        )
    }

    /// Bytes of the readable checkpoints, whether the engine loads them or
    /// not.
    pub fn checkpoint_bytes(&self) -> u64 {
        self.checkpoints.iter().map(|c| c.size).sum()
    }

    /// Bytes of the checkpoints the directory's engine loads and counts.
    pub fn loadable_bytes(&self) -> u64 {
        self.checkpoints
            .iter()
            .filter(|c| c.is_loadable())
            .map(|c| c.size)
            .sum()
    }

    /// The checkpoints the engine will never load, count or evict (other
    /// payload ABI, quant, zero tokens), with their bytes.
    pub fn never_loaded(&self) -> (usize, u64) {
        let dead = self.checkpoints.iter().filter(|c| !c.is_loadable());
        dead.fold((0, 0), |(n, b), c| (n + 1, b + c.size))
    }

    /// Bytes of foreign files and their companions.
    pub fn foreign_bytes(&self) -> u64 {
        self.foreign.iter().map(Foreign::total_size).sum()
    }

    /// Bytes of every entry the scan saw (checkpoints, invalid, foreign,
    /// temp, stray).
    pub fn total_bytes(&self) -> u64 {
        self.checkpoint_bytes()
            + self.invalid.iter().map(|c| c.size).sum::<u64>()
            + self.foreign_bytes()
            + self.temp_files.iter().map(|c| c.size).sum::<u64>()
            + self.strays.iter().map(|c| c.size).sum::<u64>()
    }

    /// The dialects present, with counts, in id order.
    pub fn dialects(&self) -> Vec<(DialectId, usize)> {
        let mut m = std::collections::BTreeMap::new();
        for c in &self.checkpoints {
            *m.entry(c.dialect).or_insert(0) += 1;
        }
        for f in &self.foreign {
            if let Some(d) = f.dialect {
                *m.entry(d).or_insert(0) += 1;
            }
        }
        m.into_iter().collect()
    }
}

/// What a scan reads beyond each file's 52-byte prefix, and which engine's
/// rules apply.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanOptions {
    /// Read every text (and agent session titles): for titles, and to check
    /// the name against the text's SHA-1 or the session identity.
    pub read_text: bool,
    /// `--engine`: the engine that reads the directory, instead of the one
    /// its files point to.
    pub engine: Option<Engine>,
}

impl ScanOptions {
    /// Headers only (52 bytes a file), under `engine` or the one the
    /// files point to: what every command that needs no title or name
    /// check scans with.
    pub fn headers(engine: Option<Engine>) -> ScanOptions {
        ScanOptions {
            read_text: false,
            engine,
        }
    }

    /// Every text too (titles, the name checked against the content).
    pub fn texts(engine: Option<Engine>) -> ScanOptions {
        ScanOptions {
            read_text: true,
            engine,
        }
    }
}

/// Open without following a symlink and without blocking on a FIFO someone
/// named `<key>.kv`.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    crate::sys::open_read(path, false)
}

/// The result of loading one checkpoint-named file.
#[derive(Debug)]
pub enum Loaded {
    Checkpoint(Box<Checkpoint>),
    Invalid(Invalid),
    Foreign(Box<Foreign>),
    /// Gone between listing and opening: not an error.
    Vanished,
}

/// Below this many checkpoint-named files a scan loads them on the calling
/// thread: starting rayon's pool costs about as much as loading a few dozen
/// files (open, pread, fstat, close), and small directories are the common
/// case for `show` and tests.
pub(crate) const PARALLEL_MIN_FILES: usize = 64;

/// What `readdir` (or `lstat`) said a checkpoint-named entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryType {
    File,
    Symlink,
    Other,
}

impl EntryType {
    fn of(t: fs::FileType) -> EntryType {
        if t.is_symlink() {
            EntryType::Symlink
        } else if t.is_file() {
            EntryType::File
        } else {
            EntryType::Other
        }
    }

    fn of_mode(mode: u32) -> EntryType {
        match rustix::fs::FileType::from_raw_mode(mode) {
            rustix::fs::FileType::RegularFile => EntryType::File,
            rustix::fs::FileType::Symlink => EntryType::Symlink,
            _ => EntryType::Other,
        }
    }
}

/// A checkpoint-named entry waiting to be loaded: the key, the name only
/// when it is not the key's own (64 bytes an entry).
struct Pending {
    key: Key,
    name: Option<Box<str>>,
    kind: EntryType,
    order: u32,
}

/// `<40 hex>.kv` or `sysprompt.kv`: the longest name a record does not
/// store.
const CANONICAL_NAME_MAX: usize = crate::format::checkpoint::KEY_HEX_LEN + KV_EXT.len();

/// The file name of (`key`, stored `name`), on `buf` when it is the key's
/// own: no allocation per file to open it.
fn name_in<'a>(
    key: &Key,
    name: &'a Option<Box<str>>,
    buf: &'a mut [u8; CANONICAL_NAME_MAX],
) -> &'a str {
    match (name, key) {
        (Some(n), _) => n,
        (None, Key::Sysprompt) => SYSPROMPT_FILE,
        (None, Key::Hash(h)) => {
            buf[..h.len()].copy_from_slice(h.as_bytes());
            buf[h.len()..].copy_from_slice(KV_EXT.as_bytes());
            std::str::from_utf8(&buf[..]).expect("hex digits and .kv are ASCII")
        }
    }
}

/// The name to store for `name`: none when it is `key`'s own.
fn stored_name(key: &Key, name: &str) -> Option<Box<str>> {
    (!key.is_file_name(name)).then(|| name.into())
}

impl Pending {
    /// It is no usable checkpoint: `code`, `error`.
    fn invalid(&self, dir: &ScanDir, size: u64, code: Code, error: String) -> Raw {
        let mut buf = [0u8; CANONICAL_NAME_MAX];
        let name = name_in(&self.key, &self.name, &mut buf);
        Raw::Done(Loaded::Invalid(invalid_entry(
            &dir.path.join(name),
            name.to_string(),
            size,
            code,
            error,
            self.order,
        )))
    }

    /// File-name order, as `ls` sorts: two lower-case names compare as
    /// their keys (same length, same suffix); anything else by its name.
    fn cmp_name(&self, other: &Pending) -> std::cmp::Ordering {
        match (&self.name, &other.name, &self.key, &other.key) {
            (None, None, Key::Hash(a), Key::Hash(b)) => a.cmp(b),
            _ => {
                let (mut a, mut b) = ([0; CANONICAL_NAME_MAX], [0; CANONICAL_NAME_MAX]);
                name_in(&self.key, &self.name, &mut a).cmp(name_in(&other.key, &other.name, &mut b))
            }
        }
    }
}

/// Read one file with a checkpoint name as a scan would, with the rules of
/// `engine` (for a single file there is no directory to infer it from: the
/// caller passes the directory's, or `None` for kvc's default reading).
pub fn load(path: &Path, key: Key, opts: ScanOptions) -> Loaded {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = match fs::symlink_metadata(path) {
        Ok(m) => EntryType::of(m.file_type()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Vanished,
        Err(e) => return invalid(path, file_name, 0, Code::Unreadable, e.to_string()),
    };
    let dir = ScanDir::of_file(path);
    let p = Pending {
        name: stored_name(&key, &file_name),
        key,
        kind,
        order: 0,
    };
    let raw = load_typed(&dir, p, opts);
    finish_one(raw, opts)
}

/// The engine one file implies on its own, and the file judged by it.
fn finish_one(raw: Raw, opts: ScanOptions) -> Loaded {
    let mut ev = Evidence::default();
    if let Raw::Checkpoint(r) = &raw {
        ev.add(&r.detected());
    }
    let engine = dialect::infer_engine(&ev, opts.engine);
    match raw.finish(&engine) {
        Finished::Checkpoint(c) => Loaded::Checkpoint(Box::new(c)),
        Finished::Other(l) => l,
    }
}

fn invalid(path: &Path, file: String, size: u64, code: Code, error: String) -> Loaded {
    Loaded::Invalid(invalid_entry(path, file, size, code, error, 0))
}

fn invalid_entry(
    path: &Path,
    file: String,
    size: u64,
    code: Code,
    error: String,
    order: u32,
) -> Invalid {
    Invalid {
        file,
        path: path.to_path_buf(),
        size,
        code,
        error,
        order,
    }
}

const SYMLINK_ERROR: &str = "is a symbolic link; kvc does not follow links";
const NOT_A_FILE_ERROR: &str = "is not a regular file";

/// A loaded file before the directory's engine is known: a D1/D20
/// look-alike is resolved, and the rules that depend on the dialect (zero
/// tokens, the name's identity) are applied, in [`Raw::finish`].
#[derive(Debug)]
enum Raw {
    Checkpoint(RawCheckpoint),
    Done(Loaded),
}

/// A checkpoint before its engine is known: the record itself (loaded in
/// place, no box) and what the dialect's rules said of it for each
/// dialect it may turn out to be, decided while the file was open (so the
/// text's hash and the title need not be kept until then).
#[derive(Debug)]
struct RawCheckpoint {
    cp: Checkpoint,
    /// `Some(hanzo_only)` for a D1/D20 look-alike, whose dialect the
    /// engine decides; `cp.dialect` is then D1. Else `cp.dialect` is the
    /// dialect the bytes name.
    lookalike: Option<bool>,
    /// Why it is not a usable checkpoint as `cp.dialect`, and (look-alikes)
    /// as D20; else the key its content says when that is not its name.
    judged: [Judged; 2],
}

impl RawCheckpoint {
    fn detected(&self) -> Detected {
        match self.lookalike {
            Some(hanzo_only) => Detected::Ds4OrHanzo { hanzo_only },
            None => Detected::Known(self.cp.dialect),
        }
    }
}

/// What finishing a loaded file gives: a checkpoint inline (a scan keeps
/// it in its list without a box), or anything else.
enum Finished {
    Checkpoint(Checkpoint),
    Other(Loaded),
}

impl Raw {
    fn finish(self, engine: &EngineChoice) -> Finished {
        let r = match self {
            Raw::Done(l) => return Finished::Other(l),
            Raw::Checkpoint(r) => r,
        };
        let detected = r.detected();
        let RawCheckpoint {
            mut cp,
            lookalike,
            judged,
        } = r;
        let dialect = detected
            .resolve_in(engine)
            .expect("only known dialects are checkpoints");
        let [as_named, as_d20] = judged;
        let judged = if lookalike.is_some() && dialect == DialectId::D20 {
            as_d20
        } else {
            as_named
        };
        if let Err(d) = judged {
            let file = cp.file().into_owned();
            return Finished::Other(Loaded::Invalid(invalid_entry(
                &cp.path(),
                file,
                cp.size,
                d.code(),
                d.to_string(),
                cp.order,
            )));
        }
        // A name that is not what the content says leaves the file in the
        // engine's population (its reader judges the header alone): every
        // command sees the same checkpoints whether it read the texts or
        // not, and the mismatch is a flag on it.
        cp.content_key = judged.ok().flatten();
        cp.dialect = dialect;
        cp.assumed = detected.assumed_in(engine);
        cp.loadable = engine.engine.reader().accepts(&cp.header);
        Finished::Checkpoint(cp)
    }
}

/// How one candidate dialect judges a file: `Err` when it is not a
/// usable checkpoint, else the key its content says when that is not its
/// name.
type Judged = std::result::Result<Option<Box<Key>>, Box<Defect>>;

/// The rules that depend on the dialect, for one candidate: zero tokens
/// (checked first, as the engines do) makes it invalid; a name that is
/// not the content's key is a flag (a broken title is verify's to report;
/// the name cannot be checked then).
fn judge(
    dialect: DialectId,
    cp: &Checkpoint,
    text_key: Option<&Key>,
    title: Option<&std::result::Result<SessionTitle, trailer::TitleError>>,
) -> Judged {
    if cp.header.tokens == 0 && !dialect.spec().zero_tokens_valid {
        return Err(Box::new(Defect::ZeroTokens));
    }
    match identity::expected_key(dialect, &cp.header, &cp.key, text_key, title) {
        Ok(Some(expected)) if expected != cp.key => Ok(Some(Box::new(expected))),
        _ => Ok(None),
    }
}

/// Load a file whose type is known without following links (from `lstat`,
/// or free from `readdir`'s `d_type` during a scan). The type is checked
/// again on the open descriptor, so a file swapped for a link or a FIFO
/// after the listing is still never followed or read as a checkpoint.
fn load_typed(dir: &Arc<ScanDir>, p: Pending, opts: ScanOptions) -> Raw {
    let mut buf = [0u8; CANONICAL_NAME_MAX];
    let name = name_in(&p.key, &p.name, &mut buf);
    let done = |size: u64, code: Code, error: String| p.invalid(dir, size, code, error);
    match p.kind {
        EntryType::Symlink => return done(0, Code::Symlink, SYMLINK_ERROR.into()),
        EntryType::Other => return done(0, Code::NotAFile, NOT_A_FILE_ERROR.into()),
        EntryType::File => {}
    }
    let file = match dir.open(name) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Raw::Done(Loaded::Vanished),
        // O_NOFOLLOW fails with ELOOP on a link that replaced the file.
        Err(e) if crate::sys::is_symlink_error(&e) => {
            return done(0, Code::Symlink, SYMLINK_ERROR.into())
        }
        Err(e) => {
            // Rare path (permissions): report the size as a listing would.
            let size = fs::symlink_metadata(dir.path.join(name)).map_or(0, |m| m.len());
            return done(size, Code::Unreadable, e.to_string());
        }
    };
    load_opened(dir, p, opts, file)
}

/// The bytes of a text read per call while streaming it.
const TEXT_CHUNK: usize = 64 << 10;

thread_local! {
    /// Each loading thread's text buffer: one allocation per thread, not
    /// one per file.
    static TEXT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What streaming a text gives: its SHA-1 (the key check) and its title;
/// the text itself is never held (a listing of three 512 MiB texts costs
/// one 64 KiB buffer).
fn stream_text_of(cf: &CheckpointFile) -> io::Result<(Key, Option<Vec<u8>>)> {
    use sha1::Digest;
    let len = cf.text_len as u64;
    if crate::format::TEXT_OFFSET + len > cf.size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            Defect::TextLength {
                text_len: cf.text_len,
                size: cf.size,
            },
        ));
    }
    let mut sha = sha1::Sha1::new();
    let mut title = text::TitleScanner::new();
    TEXT_BUF.with_borrow_mut(|buf| {
        let want = TEXT_CHUNK.min(len as usize);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let mut pos = 0u64;
        while pos < len {
            let n = (len - pos).min(TEXT_CHUNK as u64) as usize;
            std::os::unix::fs::FileExt::read_exact_at(
                cf.file(),
                &mut buf[..n],
                crate::format::TEXT_OFFSET + pos,
            )?;
            sha.update(&buf[..n]);
            title.feed(&buf[..n]);
            pos += n as u64;
        }
        Ok::<_, io::Error>(())
    })?;
    Ok((Key::from_digest(&sha.finalize().into()), title.finish()))
}

/// Load a checkpoint-named file from a descriptor opened without following
/// a link: its type and size from `fstat`, then the checks a scan makes.
/// For the write session, which re-reads a file through the directory's
/// descriptor before acting on it.
pub(crate) fn load_open(path: &Path, key: Key, file: File, opts: ScanOptions) -> Loaded {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let p = Pending {
        name: stored_name(&key, &file_name),
        key,
        kind: EntryType::File,
        order: 0,
    };
    let raw = load_opened(&ScanDir::of_file(path), p, opts, file);
    finish_one(raw, opts)
}

fn load_opened(dir: &Arc<ScanDir>, p: Pending, opts: ScanOptions, file: File) -> Raw {
    let order = p.order;
    let done = |size: u64, code: Code, error: String| p.invalid(dir, size, code, error);
    // One fstat gives the size every length is checked against, the mode
    // and the inode.
    let st = match rustix::fs::fstat(&file) {
        Ok(st) => st,
        Err(e) => return done(0, Code::Unreadable, io::Error::from(e).to_string()),
    };
    if EntryType::of_mode(st.st_mode) != EntryType::File {
        return done(0, Code::NotAFile, NOT_A_FILE_ERROR.into());
    }
    let id = FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    };
    let mode = st.st_mode & 0o7777;
    let size = st.st_size.max(0) as u64;
    let cf = match CheckpointFile::from_file_owned(PathBuf::new(), file, size) {
        Ok(cf) => cf,
        Err(OpenError::Defect(d)) => return done(size, d.code(), d.to_string()),
        Err(OpenError::Io(e)) => return done(size, Code::Unreadable, e.to_string()),
    };
    let size = cf.size;
    let detected = dialect::detect(&cf.header, cf.text_len, Some(&p.key), &cf);
    let foreign_dialect = match &detected {
        Detected::NotKvc => {
            let d = Defect::Header(crate::format::HeaderError::BadMagic(cf.header.magic));
            return done(size, d.code(), d.to_string());
        }
        Detected::Unknown { .. } => Some(None),
        Detected::Known(d) if matches!(d.spec().support, Support::Foreign | Support::NotKvc) => {
            Some(Some(*d))
        }
        _ => None,
    };
    if let Some(dialect) = foreign_dialect {
        let what = dialect::describe_foreign(&detected, &cf.header, &cf, cf.payload_offset());
        let mut buf = [0u8; CANONICAL_NAME_MAX];
        let name = name_in(&p.key, &p.name, &mut buf);
        return Raw::Done(Loaded::Foreign(Box::new(Foreign {
            file: name.to_string(),
            path: dir.path.join(name),
            key: p.key,
            size,
            dialect,
            header: cf.header.clone(),
            what,
            companions: Vec::new(),
            loadable: Ok(()),
            order,
            id,
        })));
    }
    if let Err(d) = cf.check_envelope() {
        return done(size, d.code(), d.to_string());
    }
    let (text_title, text_key) = if opts.read_text {
        match stream_text_of(&cf) {
            Ok((k, t)) => (t, Some(k)),
            Err(e) => return done(size, Code::Unreadable, e.to_string()),
        }
    } else {
        (None, None)
    };
    let title = (opts.read_text && cf.header.ext_flags.has_session_title())
        .then(|| trailer::read_session_title(&cf, cf.payload_end(), cf.header.created));
    let CheckpointFile {
        header, text_len, ..
    } = cf;
    let (dialect, lookalike) = match detected {
        Detected::Known(d) => (d, None),
        Detected::Ds4OrHanzo { hanzo_only } => (DialectId::D1, Some(hanzo_only)),
        Detected::Unknown { .. } | Detected::NotKvc => unreachable!("returned above"),
    };
    let mut cp = Checkpoint {
        key: p.key,
        name: p.name,
        dir: Arc::clone(dir),
        size,
        mode,
        header,
        text_len,
        text_title: text_title.map(Vec::into_boxed_slice),
        dialect,
        assumed: false,
        session_title: None,
        loadable: Ok(()),
        order,
        id,
        content_key: None,
    };
    let judged = [
        judge(dialect, &cp, text_key.as_ref(), title.as_ref()),
        match lookalike {
            Some(_) => judge(DialectId::D20, &cp, text_key.as_ref(), title.as_ref()),
            None => Ok(None),
        },
    ];
    cp.session_title = title.and_then(|t| t.ok()).map(Box::new);
    Raw::Checkpoint(RawCheckpoint {
        cp,
        lookalike,
        judged,
    })
}

/// Scan one directory. Fails only when the directory itself cannot be read.
///
/// `readdir` is sequential; loading the checkpoint-named files (the open,
/// read, fstat and close that dominate a listing) runs on rayon's pool for
/// large directories. The result does not depend on that: every list is
/// sorted by name at the end, and each entry keeps its `readdir` position.
///
/// The directory's engine is decided from what the files show (or taken
/// from `opts.engine`) once they are all read; then a D1/D20 look-alike
/// gets its dialect and every checkpoint its place in or out of the
/// engine's population.
///
/// Memory: a 64-byte pending entry per checkpoint-named file, then one
/// loaded record each (about 200 bytes), which becomes the checkpoint in
/// place (the list of loaded records is reused for the checkpoints).
pub fn scan_dir(dir: &Path, opts: ScanOptions) -> Result<Scan> {
    let fd = crate::sys::open_dir_fd(dir).map_err(|e| Error::io(dir, e))?;
    let entries = rustix::fs::Dir::read_from(&fd).map_err(|e| Error::io(dir, e.into()))?;
    let handle = ScanDir::new(dir.to_path_buf(), Some(fd));
    let mut scan = Scan {
        dir: dir.to_path_buf(),
        ..Scan::default()
    };
    let mut ev = Evidence::default();
    let mut pending = Vec::new();
    let mut companions: Vec<(Key, String, u64)> = Vec::new();
    let mut order = 0u32;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e.into()))?;
        let raw_name = entry.file_name().to_bytes();
        if raw_name == b"." || raw_name == b".." {
            continue;
        }
        let this = order;
        order = order.saturating_add(1);
        let os_name = std::ffi::OsStr::from_bytes(raw_name);
        let name = os_name.to_string_lossy();
        match classify_name(&name) {
            NameKind::State => {}
            NameKind::Checkpoint(key) => {
                ev.sysprompt |= key == Key::Sysprompt;
                // d_type from readdir: no lstat per file, unless the file
                // system leaves d_type unknown.
                let kind = match entry.file_type() {
                    rustix::fs::FileType::RegularFile => EntryType::File,
                    rustix::fs::FileType::Symlink => EntryType::Symlink,
                    rustix::fs::FileType::Unknown => {
                        match crate::sys::lstat_at(&handle_fd(&handle), os_name) {
                            Ok(st) => EntryType::of_mode(st.st_mode),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(e) => {
                                scan.invalid.push(invalid_entry(
                                    &dir.join(os_name),
                                    name.into_owned(),
                                    0,
                                    Code::Unreadable,
                                    e.to_string(),
                                    this,
                                ));
                                continue;
                            }
                        }
                    }
                    _ => EntryType::Other,
                };
                pending.push(Pending {
                    name: stored_name(&key, &name),
                    key,
                    kind,
                    order: this,
                });
            }
            NameKind::Temp(kind) => {
                if kind.writer == TempWriter::Hanzo {
                    ev.hanzo_temps += 1;
                } else {
                    ev.ds4_temps += 1;
                }
                scan.temp_files
                    .extend(temp_file(name.into_owned(), dir.join(os_name), kind));
            }
            NameKind::Companion(key) => {
                let size = fs::symlink_metadata(dir.join(os_name)).map_or(0, |m| m.len());
                companions.push((key, name.into_owned(), size));
            }
            NameKind::Other => {
                let path = dir.join(os_name);
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                let known = meta
                    .is_file()
                    .then(|| block_store_kind(&name, &path))
                    .flatten();
                scan.strays.push(Stray {
                    file: name.into_owned(),
                    path,
                    // A symlink counts at its own size, as hanzo-engine's
                    // `DirEntry::metadata` sees it.
                    size: if meta.is_dir() { 0 } else { meta.len() },
                    is_dir: meta.is_dir(),
                    is_symlink: meta.file_type().is_symlink(),
                    known,
                    order: this,
                });
            }
        }
    }
    // Sort the small pending entries rather than the loaded checkpoints:
    // loading keeps the order, so the checkpoints come out sorted.
    pending.sort_unstable_by(Pending::cmp_name);
    let load_one = |p: Pending| load_typed(&handle, p, opts);
    let raws: Vec<Raw> = if pending.len() >= PARALLEL_MIN_FILES {
        pending.into_par_iter().map(load_one).collect()
    } else {
        pending.into_iter().map(load_one).collect()
    };
    for r in &raws {
        if let Raw::Checkpoint(c) = r {
            ev.add(&c.detected());
        }
    }
    scan.engine = dialect::infer_engine(&ev, opts.engine);
    let engine = scan.engine.clone();
    let (invalid, foreign) = (&mut scan.invalid, &mut scan.foreign);
    // Collected in place: the loaded records' allocation becomes the
    // checkpoints' (a `Raw` is at least as large, same alignment), so the
    // scan's peak is one record per file, not two.
    scan.checkpoints = raws
        .into_iter()
        .filter_map(|r| match r.finish(&engine) {
            Finished::Checkpoint(c) => Some(c),
            Finished::Other(Loaded::Invalid(i)) => {
                invalid.push(i);
                None
            }
            Finished::Other(Loaded::Foreign(mut f)) => {
                f.loadable = engine.engine.reader().accepts(&f.header);
                foreign.push(*f);
                None
            }
            Finished::Other(Loaded::Checkpoint(c)) => Some(*c),
            Finished::Other(Loaded::Vanished) => None,
        })
        .collect();
    // The reused allocation is sized for the larger loaded records: give
    // back the difference (an mremap in place: 2.4 MB at 100,000).
    scan.checkpoints.shrink_to_fit();
    for (key, name, size) in companions {
        match scan.foreign.iter_mut().find(|f| f.key == key) {
            Some(f) => f.companions.push((name, size)),
            None => {
                let path = dir.join(&name);
                scan.strays.push(Stray {
                    file: name,
                    path,
                    size,
                    is_dir: false,
                    is_symlink: false,
                    known: None,
                    order: u32::MAX,
                });
            }
        }
    }
    debug_assert!(scan.checkpoints.is_sorted_by(|a, b| a.file() <= b.file()));
    scan.invalid.sort_by(|a, b| a.file.cmp(&b.file));
    scan.temp_files.sort_by(|a, b| a.file.cmp(&b.file));
    scan.strays.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(scan)
}

/// The descriptor of a scan's own directory.
fn handle_fd(h: &ScanDir) -> rustix::fd::BorrowedFd<'_> {
    use rustix::fd::AsFd;
    h.fd.as_ref().expect("a scan opens its directory").as_fd()
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
    fn records_are_compact() {
        // Issue 16: a scan of 100,000 checkpoints holds one record each.
        eprintln!(
            "Checkpoint {} bytes, Raw {} bytes, Pending {} bytes",
            std::mem::size_of::<Checkpoint>(),
            std::mem::size_of::<Raw>(),
            std::mem::size_of::<Pending>()
        );
        assert!(std::mem::size_of::<Checkpoint>() <= 192);
        assert!(std::mem::size_of::<Pending>() <= 64);
        // The loaded records become the checkpoints in place.
        assert!(std::mem::size_of::<Raw>() >= std::mem::size_of::<Checkpoint>());
        assert_eq!(
            std::mem::align_of::<Raw>(),
            std::mem::align_of::<Checkpoint>()
        );
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
