//! `kvc verify`: every check FORMAT.md allows on every file of a cache
//! directory, so that a green result can be trusted (CI, or after copying a
//! cache between machines).
//!
//! Each problem is a [`Finding`] with a stable code. The envelope defects
//! come from [`Defect`], the header warnings from [`header_warnings`]; this
//! module adds what needs the text, the trailer, the payload or the
//! directory entry to see.
//!
//! Every rule comes from the row of the file's dialect (FORMAT.md §9,
//! [`crate::format::dialect::DIALECTS`]), and a directory's files are read
//! with the directory's engine, decided exactly as a scan decides it
//! ([`crate::scan::scan_dir`]): a pre-ABI ds4 file (D1) and a hanzo-engine
//! spill (D20) can have identical headers, and only the directory (or
//! `--engine`) tells them apart. A file of a dialect kvc does not read is a
//! `foreign` warning and nothing more.
//!
//! Reading is bounded whatever the file says: every length is checked
//! against `fstat` before use, the text and the payload are streamed through
//! one fixed buffer per worker ([`READ_BUF`]), and only the trailer (the
//! tool-id map, which must be decoded whole) is held in memory.
//!
//! Checking never modifies anything. Moving the files with errors out of
//! the cache (`--quarantine`) is a write, and lives with the other writes:
//! [`crate::session::quarantine`].

use crate::code::{Code, Uses};
use crate::error::{Error, Result};
use crate::finding::{header_warnings, Finding, Severity};
use crate::format::checkpoint::{hex, CheckpointFile, Defect, Key, OpenError, KEY_HEX_LEN};
use crate::format::dialect::{
    self, DialectId, Engine, EngineChoice, EngineHow, Evidence, Identity, NotLoaded, PayloadRule,
    Trailers,
};
use crate::format::dsv4::{self, Dsv4Header};
use crate::format::trailer::{self, SessionTitle, TitleError};
use crate::format::{Header, PREFIX_LEN, TEXT_OFFSET};
use crate::gc::{TempJudge, Verdict};
use crate::scan::{self, classify_name, NameKind, ScanOptions, TempKind};
use crate::search;
use crate::session::Judged;
use crate::text::sanitize_line;
use rayon::prelude::*;
use serde::Serialize;
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Size of the one read buffer each worker streams through. Small enough
/// to stay in a core's L2 cache, so the kernel's copy out of the page cache
/// and the token/logit scan both hit cache: measured on 3 GiB of payloads,
/// 256 KiB ran `--deep` about 30% faster than 1 MiB (and faster than `cat`,
/// which uses 128 KiB). Large enough that syscall cost is noise. Memory
/// stays at threads × 256 KiB whatever the files.
pub const READ_BUF: usize = 256 << 10;

/// A temp file older than this whose writer is gone is reported as stale:
/// a real save of even a multi-GiB checkpoint finishes in minutes.
pub(crate) const DEFAULT_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Group and other read bits: a checkpoint holds a verbatim prompt.
const FILE_READ_BY_OTHERS: u32 = 0o044;
/// Group and other search bits of a directory: without them nobody else
/// reaches the files in it, whatever their modes.
const GROUP_SEARCH: u32 = 0o010;
const OTHER_SEARCH: u32 = 0o001;
/// Group and other read or search bits: listing the directory reveals keys
/// (the SHA-1 of a known prompt tells whether it was cached), searching it
/// reaches the files.
const DIR_OPEN_TO_OTHERS: u32 = 0o055;

/// How many missing DSML blocks a `trailer-dsml-missing` message names.
const MAX_NAMED_IDS: usize = 3;

/// What a verification run checks.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Also stream every payload (of the sample) through the checks.
    pub deep: bool,
    /// Percentage of checkpoints, in (0, 100], that `deep` reads whole;
    /// chosen by a hash of the key, so the same files every run.
    pub sample_percent: f64,
    /// Age from which a temp file of a dead writer is stale.
    pub temp_age: Duration,
    /// Report stray names too.
    pub all: bool,
    /// Unix seconds: the clock for `future-timestamp` and `stale-temp`.
    pub now: u64,
    /// `--engine`: the engine that reads the directories, instead of the
    /// one their files point to.
    pub engine: Option<crate::format::Engine>,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            deep: false,
            sample_percent: 100.0,
            temp_age: DEFAULT_TEMP_AGE,
            all: false,
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            engine: None,
        }
    }
}

/// Is the checkpoint named `name` in the deep-check sample? A hash of the
/// name, not a random draw, so reruns and other machines pick the same
/// files (restic's `--read-data-subset` does the same).
pub(crate) fn in_sample(name: &str, percent: f64) -> bool {
    if percent >= 100.0 {
        return true;
    }
    let h = blake3::hash(name.as_bytes());
    let v = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
    (v as f64) < percent / 100.0 * 2f64.powi(64)
}

/// Receives progress from a run; called from several threads at once.
pub trait Progress: Sync {
    /// Once, before checking starts: entries to check, and the bytes the
    /// deep reads will cover (0 without `deep`).
    fn start(&self, _files: u64, _deep_bytes: u64) {}
    /// Payload bytes just read by a deep check.
    fn read(&self, _bytes: u64) {}
    /// One entry done.
    fn file_done(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What an entry of a cache directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A checkpoint name (or a file given on the command line).
    Checkpoint,
    /// A writer's temp file.
    Temp,
    /// A name no engine reads.
    Stray,
}

/// The findings for one entry.
#[derive(Clone, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub kind: EntryKind,
    /// The key the name denotes; `None` for temp files, strays, and files
    /// given by a path whose name is not a key.
    pub key: Option<Key>,
    pub size: u64,
    /// Errors first, then warnings, each in the order checked.
    pub findings: Vec<Finding>,
    /// Bytes read from this file.
    pub bytes_read: u64,
    /// The payload was read whole (`--deep` and in the sample).
    pub deep: bool,
    /// The header, when the file had one that decoded.
    pub header: Option<Header>,
    /// The file's dialect (FORMAT.md §9), once identified: a row kvc
    /// reads, or, when `foreign`, a row it only recognises.
    pub dialect: Option<DialectId>,
    /// A file of a dialect kvc does not read (`dialect` is `None` when no
    /// row describes it).
    pub foreign: bool,
    /// The bytes could be D1 or D20: the directory's engine decided.
    pub assumed: bool,
    /// The version of a DSV4 payload kvc judged (V4 Flash or PRO).
    pub dsv4_version: Option<u32>,
    /// Why the engine that reads the directory never loads this file
    /// (FORMAT.md §7), when it does not.
    pub not_loaded: Option<NotLoaded>,
    /// The file as it was checked (inode, size, mtime): quarantine moves
    /// it only while it is still exactly that.
    pub judged: Option<Judged>,
    /// Its permission bits, when it could be stat'ed.
    pub mode: Option<u32>,
    /// Findings of the codes the run allows (`--allow`): kept apart, they
    /// count neither as errors nor as warnings.
    pub allowed: Vec<Finding>,
}

/// Can group or other read a file of mode `file` in a directory of mode
/// `dir` (`None`: not known)? Reading needs the file's read bit and the
/// directory's search bit for the same class: a 0644 file in a 0700
/// directory is closed to everyone else (ds4-server writes exactly that).
/// The directories above are not judged.
pub fn readable_by_others(file: u32, dir: Option<u32>) -> bool {
    match dir {
        None => file & FILE_READ_BY_OTHERS != 0,
        Some(d) => {
            (file & 0o040 != 0 && d & GROUP_SEARCH != 0)
                || (file & 0o004 != 0 && d & OTHER_SEARCH != 0)
        }
    }
}

impl FileReport {
    /// A report without its path yet: the caller moves the path it holds
    /// in (one path allocation per file, not two).
    fn new(kind: EntryKind, key: Option<Key>) -> FileReport {
        FileReport {
            path: PathBuf::new(),
            kind,
            key,
            size: 0,
            findings: Vec::new(),
            bytes_read: 0,
            deep: false,
            header: None,
            dialect: None,
            foreign: false,
            assumed: false,
            dsv4_version: None,
            not_loaded: None,
            judged: None,
            mode: None,
            allowed: Vec::new(),
        }
    }

    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    /// Not a usable checkpoint, as a scan judges one: an error whose code
    /// a scan also gives (`Uses::INVALID`: empty, truncated, zero tokens,
    /// a symlink, …), allowed or not.
    pub fn is_invalid(&self) -> bool {
        self.findings
            .iter()
            .chain(&self.allowed)
            .any(|f| f.severity == Severity::Error && f.code.uses().contains(Uses::INVALID))
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    fn defect(&mut self, d: Defect) {
        self.findings.push(Finding::error(d.code(), d.to_string()));
    }

    fn unreadable(&mut self, e: io::Error) {
        self.findings
            .push(Finding::error(Code::Unreadable, e.to_string()));
    }
}

/// Findings about a directory given as an argument: its own mode, the
/// engines and payload versions its files mix, and what its engine never
/// loads.
#[derive(Clone, Debug)]
pub struct DirReport {
    pub dir: PathBuf,
    /// The directory's permission bits.
    pub mode: u32,
    pub findings: Vec<Finding>,
    /// Findings of the codes the run allows (`--allow`).
    pub allowed: Vec<Finding>,
    /// The engine whose rules judged the files, and how it was decided.
    pub engine: EngineChoice,
    /// Checkpoints whose bytes could be D1 or D20, read by `engine`'s rule.
    pub assumed: usize,
    /// Checkpoints without errors that `engine` never loads, counts or
    /// evicts (FORMAT.md §7): they stay on disk until removed by hand.
    pub unloadable: Unloadable,
}

/// Healthy checkpoints an engine never loads, with their bytes, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Unloadable {
    pub files: usize,
    pub bytes: u64,
    /// `(why, files, bytes)` per reason (`payload ABI 0`, `quant_bits 3`,
    /// …), in the order first met.
    pub why: Vec<(String, usize, u64)>,
}

impl Unloadable {
    fn add(&mut self, why: &NotLoaded, bytes: u64) {
        let why = why.to_string();
        self.files += 1;
        self.bytes += bytes;
        match self.why.iter_mut().find(|w| w.0 == why) {
            Some(w) => {
                w.1 += 1;
                w.2 += bytes;
            }
            None => self.why.push((why, 1, bytes)),
        }
    }
}

/// Everything one run found, in argument order, entries of a directory
/// sorted by name.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub dirs: Vec<DirReport>,
    pub files: Vec<FileReport>,
}

impl VerifyReport {
    /// Set apart the findings of the `allowed` codes (`kvc verify --allow`):
    /// they no longer count as errors or warnings, for the exit status,
    /// `--strict` and `--quarantine` alike.
    pub fn allow(&mut self, allowed: &[Code]) {
        if allowed.is_empty() {
            return;
        }
        let split = |findings: &mut Vec<Finding>, into: &mut Vec<Finding>| {
            let (a, keep): (Vec<Finding>, Vec<Finding>) =
                findings.drain(..).partition(|f| allowed.contains(&f.code));
            *findings = keep;
            into.extend(a);
        };
        for d in &mut self.dirs {
            split(&mut d.findings, &mut d.allowed);
        }
        for f in &mut self.files {
            split(&mut f.findings, &mut f.allowed);
        }
    }

    /// Findings set apart by [`allow`](Self::allow).
    pub fn allowed(&self) -> usize {
        self.dirs.iter().map(|d| d.allowed.len()).sum::<usize>()
            + self.files.iter().map(|f| f.allowed.len()).sum::<usize>()
    }

    fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.dirs
            .iter()
            .flat_map(|d| &d.findings)
            .chain(self.files.iter().flat_map(|f| &f.findings))
    }

    pub fn errors(&self) -> usize {
        self.all_findings()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.all_findings()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }

    pub fn bytes_read(&self) -> u64 {
        self.files.iter().map(|f| f.bytes_read).sum()
    }

    /// Entries that read as checkpoints, as a scan (`kvc ls`, `evict`,
    /// `stats`) counts them: checkpoint names that are neither foreign nor
    /// invalid ([`FileReport::is_invalid`]). A checkpoint with other
    /// errors (a bad trailer, a payload mismatch, a key mismatch) is still
    /// one: the engine counts it.
    pub fn checkpoints(&self) -> usize {
        self.checkpoint_entries()
            .filter(|f| !f.foreign && !f.is_invalid())
            .count()
    }

    /// Checkpoint names that are not usable checkpoints, as a scan lists
    /// them under `invalid`.
    pub fn invalid(&self) -> usize {
        self.checkpoint_entries()
            .filter(|f| !f.foreign && f.is_invalid())
            .count()
    }

    /// Files of dialects kvc does not read.
    pub fn foreign(&self) -> usize {
        self.checkpoint_entries().filter(|f| f.foreign).count()
    }

    fn checkpoint_entries(&self) -> impl Iterator<Item = &FileReport> {
        self.files
            .iter()
            .filter(|f| f.kind == EntryKind::Checkpoint)
    }

    pub fn deep_checked(&self) -> usize {
        self.files.iter().filter(|f| f.deep).count()
    }

    pub fn files_with_errors(&self) -> usize {
        self.files.iter().filter(|f| f.errors() > 0).count()
    }

    /// Healthy checkpoints of the directories that their engine never
    /// loads, all directories together.
    pub fn unloadable(&self) -> (usize, u64) {
        self.dirs.iter().fold((0, 0), |(n, b), d| {
            (n + d.unloadable.files, b + d.unloadable.bytes)
        })
    }
}

/// One entry to check (88 bytes and its path, which moves into its
/// report).
#[derive(Clone, Debug)]
struct Entry {
    path: PathBuf,
    what: What,
    /// Named on the command line: follow a symlink there, as the user did.
    explicit: bool,
    /// The directory argument it was found in (index into the report's
    /// `dirs`).
    dir: Option<u32>,
    /// The engine that reads its directory (index into the run's
    /// contexts); `None`: the file alone tells (and `--engine`).
    ctx: Option<u32>,
}

#[derive(Clone, Debug)]
enum What {
    Checkpoint { key: Option<Key>, deep: bool },
    Temp(TempKind),
    Stray,
}

impl Entry {
    fn new(path: PathBuf, name: &str, opts: &VerifyOptions, explicit: bool) -> Option<Entry> {
        let what = match classify_name(name) {
            NameKind::State => return None,
            NameKind::Checkpoint(key) => What::Checkpoint {
                deep: opts.deep && in_sample(key.as_str(), opts.sample_percent),
                key: Some(key),
            },
            NameKind::Temp(kind) => What::Temp(kind),
            // A file the user named is checked as a checkpoint whatever its
            // name; in a directory, other names are strays.
            NameKind::Other if explicit => What::Checkpoint {
                key: None,
                deep: opts.deep && in_sample(name, opts.sample_percent),
            },
            // `<key>.ckpt` belongs to its `<key>.kv` (D14/D15): checked
            // with it, a stray only when the `.kv` is gone.
            NameKind::Companion(key) if path.with_file_name(key.file_name()).exists() => {
                return None
            }
            NameKind::Other | NameKind::Companion(_) if opts.all => What::Stray,
            NameKind::Other | NameKind::Companion(_) => return None,
        };
        Some(Entry {
            path,
            what,
            explicit,
            dir: None,
            ctx: None,
        })
    }
}

/// The modes the writers of `engine`'s dialects create, from the dialect
/// table (the first row that engine reads): what a permission finding
/// about its directory may say.
fn engine_modes(engine: Engine) -> &'static str {
    dialect::DIALECTS
        .iter()
        .find(|d| d.engine == Some(engine))
        .map_or("", |d| d.modes)
}

/// Check a directory's own mode, and whether both engines wrote into it.
fn check_dir(dir: &Path, meta: &Metadata, choice: &EngineChoice) -> DirReport {
    let mut findings = Vec::new();
    let mode = meta.mode() & 0o7777;
    // Its own mode is judged with its files' (`Tally::finish`): one
    // finding per directory, however many files it lets others read.
    if choice.mixed {
        findings.push(Finding::warning(
            Code::MixedEngines,
            format!(
                "files of both ds4 and hanzo-engine: hanzo-engine evicts every *.kv by age and zeroes bytes 7 and 20-23 of a ds4 file it loads (mainline never loads it again), some forks delete what they cannot parse; read as {} (--engine decides)",
                choice.describe()
            ),
        ));
    }
    DirReport {
        dir: dir.to_path_buf(),
        mode,
        findings,
        allowed: Vec::new(),
        engine: choice.clone(),
        assumed: 0,
        unloadable: Unloadable::default(),
    }
}

/// The engines of the directories a run reads, each decided once, exactly
/// as a scan decides it ([`scan::scan_dir`]: only the 52-byte prefixes are
/// read), and shared by every file in it.
#[derive(Default)]
struct Contexts {
    choices: Vec<EngineChoice>,
    /// Directory -> its choice; `None` when it could not be scanned.
    by_dir: HashMap<PathBuf, Option<usize>>,
}

impl Contexts {
    /// The engine of a directory argument. `--engine` is honoured by the
    /// scan, which still says whether both engines left files in it.
    fn of_dir(&mut self, dir: &Path, opts: &VerifyOptions) -> Result<usize> {
        if let Some(Some(i)) = self.by_dir.get(dir) {
            return Ok(*i);
        }
        let i = self.push(dir, scan_engine(dir, opts)?);
        Ok(i)
    }

    /// The engine of the directory a single file sits in, when it sits in
    /// a cache directory: a checkpoint name (`<key>.kv`, `sysprompt.kv`)
    /// says it does, and then its directory's other files decide as they
    /// would for the directory. `None` (the file alone, with `--engine`)
    /// for any other name, when `--engine` was given, or when the
    /// directory cannot be listed.
    fn of_file(&mut self, path: &Path, opts: &VerifyOptions) -> Option<usize> {
        if opts.engine.is_some() {
            return None;
        }
        Key::from_file_name(&path.file_name()?.to_string_lossy())?;
        let dir = crate::session::parent_dir(path).to_path_buf();
        if let Some(i) = self.by_dir.get(&dir) {
            return *i;
        }
        match scan_engine(&dir, opts) {
            Ok(choice) => Some(self.push(&dir, choice)),
            Err(_) => {
                self.by_dir.insert(dir, None);
                None
            }
        }
    }

    fn push(&mut self, dir: &Path, choice: EngineChoice) -> usize {
        self.choices.push(choice);
        let i = self.choices.len() - 1;
        self.by_dir.insert(dir.to_path_buf(), Some(i));
        i
    }

    fn get(&self, i: Option<usize>) -> Option<&EngineChoice> {
        i.map(|i| &self.choices[i])
    }
}

fn scan_engine(dir: &Path, opts: &VerifyOptions) -> Result<EngineChoice> {
    let scan = scan::scan_dir(dir, ScanOptions::headers(opts.engine))?;
    Ok(scan.engine)
}

/// What the files of one directory add up to.
#[derive(Default)]
struct Tally {
    v1: usize,
    v2: usize,
    assumed: usize,
    unloadable: Unloadable,
    /// Checkpoint files group or other can read through the directory,
    /// by mode.
    readable: std::collections::BTreeMap<u32, usize>,
}

impl Tally {
    fn add(&mut self, r: &FileReport, dir_mode: u32) {
        if let (EntryKind::Checkpoint, Some(mode)) = (r.kind, r.mode) {
            if readable_by_others(mode, Some(dir_mode)) {
                *self.readable.entry(mode).or_insert(0) += 1;
            }
        }
        self.assumed += usize::from(r.assumed);
        match r.dsv4_version {
            Some(dsv4::VERSION_1) => self.v1 += 1,
            Some(dsv4::VERSION_2) => self.v2 += 1,
            _ => {}
        }
        if let (Some(why), 0, false) = (&r.not_loaded, r.errors(), r.foreign) {
            self.unloadable.add(why, r.size);
        }
    }

    fn finish(self, d: &mut DirReport) {
        d.assumed = self.assumed;
        d.unloadable = self.unloadable;
        if let Some(f) = permission_finding(d.mode, &self.readable, d.engine.engine) {
            d.findings.insert(0, f);
        }
        if self.v1 > 0 && self.v2 > 0 {
            d.findings.push(Finding::warning(
                Code::MixedPayloadVersions,
                format!(
                    "{} with DSV4 payload version 1 and {} with version 2: ds4 mainline (since e8e8779, 2026-05-26) loads only version 2 and ds4 before it only version 1, so whichever runs can load only part of this cache",
                    plural(self.v1, "checkpoint", "checkpoints"),
                    self.v2
                ),
            ));
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one `world-readable` finding of a directory of mode `dir_mode`:
/// its own mode when group or other can list or search it, and how many
/// of its checkpoint files they can read through it, by mode. `None` when
/// the directory keeps everyone else out (a 0644 file in a 0700 directory
/// is fine).
fn permission_finding(
    dir_mode: u32,
    readable: &std::collections::BTreeMap<u32, usize>,
    engine: Engine,
) -> Option<Finding> {
    if dir_mode & DIR_OPEN_TO_OTHERS == 0 {
        return None;
    }
    let mut msg = format!(
        "directory mode {dir_mode:04o}: group or other can list it or reach the prompts in it"
    );
    let files: usize = readable.values().sum();
    if files > 0 {
        let modes: Vec<String> = readable
            .iter()
            .map(|(m, n)| format!("{m:04o} ×{n}"))
            .collect();
        msg.push_str(&format!(
            ", and read {} in it (mode {})",
            plural(files, "checkpoint file", "checkpoint files"),
            modes.join(", ")
        ));
    }
    msg.push_str(&format!(
        " ({}; chmod 700 the directory)",
        engine_modes(engine)
    ));
    Some(Finding::warning(Code::WorldReadable, msg))
}

/// Verify directories and single files. Fails only when an argument cannot
/// be read at all (missing, or a directory that cannot be listed); every
/// problem with a file is a finding.
///
/// Each directory's engine is decided first, from its files' headers as a
/// scan decides it (or `opts.engine`); a file named on its own gets the
/// engine of the cache directory it sits in.
pub fn verify_paths(
    paths: &[PathBuf],
    opts: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut ctxs = Contexts::default();
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            let ctx = ctxs.of_dir(p, opts)?;
            let dir = report.dirs.len();
            let start = entries.len();
            for de in fs::read_dir(p).map_err(|e| Error::io(p, e))? {
                let de = de.map_err(|e| Error::io(p, e))?;
                let name = de.file_name();
                // The path at its exact length: `DirEntry::path` grows it
                // twice by doubling (160 bytes held for an 84-byte path:
                // 7.6 MB at 100,000 files, each kept in its report).
                let mut path = PathBuf::with_capacity(p.as_os_str().len() + 1 + name.len());
                path.push(p);
                path.push(&name);
                if let Some(mut e) = Entry::new(path, &name.to_string_lossy(), opts, false) {
                    e.dir = u32::try_from(dir).ok();
                    e.ctx = u32::try_from(ctx).ok();
                    entries.push(e);
                }
            }
            // Name order (as the names read, lossily), without a second
            // copy of each name to sort by.
            let name = |e: &Entry| e.path.file_name().map(|n| n.to_string_lossy().into_owned());
            entries[start..].sort_by(|a, b| {
                let (x, y) = (a.path.file_name(), b.path.file_name());
                match (x.and_then(|x| x.to_str()), y.and_then(|y| y.to_str())) {
                    (Some(x), Some(y)) => x.cmp(y),
                    _ => name(a).cmp(&name(b)),
                }
            });
            report.dirs.push(check_dir(p, &meta, &ctxs.choices[ctx]));
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(mut e) = Entry::new(p.clone(), &name, opts, true) {
                e.ctx = ctxs.of_file(p, opts).and_then(|c| u32::try_from(c).ok());
                entries.push(e);
            }
        }
    }
    let deep_bytes: u64 = entries
        .iter()
        .filter(|e| matches!(e.what, What::Checkpoint { deep: true, .. }))
        .filter_map(|e| fs::symlink_metadata(&e.path).ok())
        .map(|m| m.len())
        .sum();
    progress.start(entries.len() as u64, deep_bytes);
    // One judge for the run: it walks /proc once, if a temp file needs it.
    let temps = TempJudge::new(opts.temp_age, UNIX_EPOCH + Duration::from_secs(opts.now));
    let dir_of: Vec<Option<u32>> = entries.iter().map(|e| e.dir).collect();
    // The entries move into the checks: each path becomes its report's.
    let checked: Vec<Option<FileReport>> = entries
        .into_par_iter()
        .map_init(
            || vec![0u8; READ_BUF],
            |buf, e| {
                let ctx = ctxs.get(e.ctx.map(|c| c as usize));
                let r = check_entry(e, ctx, opts, &temps, buf, progress);
                progress.file_done();
                r
            },
        )
        .collect();
    let mut tallies: Vec<Tally> = report.dirs.iter().map(|_| Tally::default()).collect();
    for (d, r) in dir_of.iter().zip(&checked) {
        if let (Some(d), Some(r)) = (d, r) {
            let d = *d as usize;
            tallies[d].add(r, report.dirs[d].mode);
        }
    }
    for (t, d) in tallies.into_iter().zip(&mut report.dirs) {
        t.finish(d);
    }
    // In place: `filter_map` reuses the vector, where `flatten` (clippy's
    // suggestion) grew a second one: 30 MB more at 100,000 files.
    #[allow(clippy::filter_map_identity)]
    let files = checked.into_iter().filter_map(|r| r).collect();
    report.files = files;
    Ok(report)
}

/// Check one checkpoint file (any name; a `<key>.kv` or `sysprompt.kv`
/// name gets the key check, and the engine of the directory it sits in).
/// `None` when the file does not exist.
pub fn check_file(path: &Path, opts: &VerifyOptions) -> Option<FileReport> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = Key::from_file_name(&name);
    let deep = opts.deep
        && in_sample(
            key.as_ref().map_or(&name, |k| k.as_str()),
            opts.sample_percent,
        );
    let mut ctxs = Contexts::default();
    let ctx = ctxs.of_file(path, opts);
    let mut buf = vec![0u8; READ_BUF];
    let c = Check {
        deep,
        follow: true,
        ctx: ctxs.get(ctx),
        opts,
        in_dir: false,
        path,
    };
    let mut r = check_checkpoint(path, key, &c, &mut buf, &NoProgress)?;
    r.path = path.to_path_buf();
    Some(r)
}

fn check_entry(
    e: Entry,
    ctx: Option<&EngineChoice>,
    opts: &VerifyOptions,
    temps: &TempJudge,
    buf: &mut [u8],
    progress: &dyn Progress,
) -> Option<FileReport> {
    let mut r = match e.what {
        What::Checkpoint { key, deep } => {
            let c = Check {
                deep,
                follow: e.explicit,
                ctx,
                opts,
                in_dir: e.dir.is_some(),
                path: &e.path,
            };
            check_checkpoint(&e.path, key, &c, buf, progress)
        }
        What::Temp(kind) => check_temp(&e.path, &kind, temps),
        What::Stray => check_stray(&e.path),
    }?;
    r.path = e.path;
    Some(r)
}

fn check_temp(path: &Path, kind: &TempKind, temps: &TempJudge) -> Option<FileReport> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        other => other,
    };
    let mut r = FileReport::new(EntryKind::Temp, None);
    let meta = match meta {
        Ok(m) => m,
        Err(e) => {
            r.unreadable(e);
            return Some(r);
        }
    };
    r.size = meta.len();
    // Exactly what `kvc gc` would remove.
    let j = temps.judge(kind, &meta);
    if j.verdict == Verdict::Stale {
        let writer = match (kind.pid, kind.pid_certain) {
            (Some(pid), true) => format!("temp file of pid {pid}, which is not running,"),
            (Some(pid), false) => format!(
                "temp file ending in {pid} (a {} pid, not running, or a ds4-agent mkstemp suffix), held open by no process,",
                kind.writer.name()
            ),
            (None, _) => format!(
                "{} temp file (no pid in its name), held open by no process,",
                kind.writer.name()
            ),
        };
        let age = j.age.unwrap_or_default().as_secs();
        r.push(Finding::warning(
            Code::StaleTemp,
            format!(
                "{writer} last written {} ago: a save that never finished (safe to remove)",
                crate::text::span(age)
            ),
        ));
    }
    Some(r)
}

fn check_stray(path: &Path) -> Option<FileReport> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        other => other,
    };
    let mut r = FileReport::new(EntryKind::Stray, None);
    let what = match &meta {
        Ok(m) if m.is_dir() => "a directory",
        Ok(m) if m.file_type().is_symlink() => "a symbolic link",
        _ => "a file",
    };
    r.size = meta
        .as_ref()
        .map_or(0, |m| if m.is_file() { m.len() } else { 0 });
    r.push(Finding::warning(
        Code::Stray,
        format!("{what} no engine reads (not a checkpoint or temp file name)"),
    ));
    Some(r)
}

/// The finding for a checkpoint name that is a symbolic link in a cache
/// directory.
fn symlink_finding() -> Finding {
    Finding::error(
        Code::Symlink,
        "is a symbolic link; kvc does not follow links in a cache directory (ds4 would load its target)",
    )
}

/// The finding for something that is not a regular file, from its `lstat`
/// (or `fstat`); `None` for a regular file.
fn not_a_file(m: &Metadata) -> Option<Finding> {
    let t = m.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_symlink() {
        return Some(symlink_finding());
    }
    let what = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device node"
    } else {
        "not a regular file"
    };
    Some(Finding::error(
        Code::NotAFile,
        format!("is {what}; no engine can load it"),
    ))
}

/// How one checkpoint is checked.
struct Check<'a> {
    /// Read the payload whole.
    deep: bool,
    /// Named on the command line: follow a symlink there, as the user did.
    follow: bool,
    /// The engine of its directory; `None`: the file alone (and
    /// `--engine`) decides.
    ctx: Option<&'a EngineChoice>,
    opts: &'a VerifyOptions,
    /// Its permissions are judged with its directory's, once for the
    /// directory (an entry of a directory argument), rather than alone.
    in_dir: bool,
    /// The file (a report's path is set after its checks).
    path: &'a Path,
}

/// All checks of one checkpoint-named file.
fn check_checkpoint(
    path: &Path,
    key: Option<Key>,
    c: &Check,
    buf: &mut [u8],
    progress: &dyn Progress,
) -> Option<FileReport> {
    let mut r = FileReport::new(EntryKind::Checkpoint, key);
    // The type first, from `lstat` (or `stat` for a path the user named,
    // followed as typed), so that a device node, a FIFO or a directory
    // with a checkpoint name is reported without ever being opened:
    // opening a device can have effects of its own (a tape rewinds).
    let before = if c.follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    };
    let before = match before {
        Ok(m) => m,
        // Evicted or consumed by an engine since the listing: not there.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            r.unreadable(e);
            return Some(r);
        }
    };
    if let Some(f) = not_a_file(&before) {
        r.push(f);
        return Some(r);
    }
    let file = match crate::sys::open_read(path, c.follow) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        // Replaced by a link since the `lstat`.
        Err(e) if crate::sys::is_symlink_error(&e) && !c.follow => {
            r.push(symlink_finding());
            return Some(r);
        }
        Err(e) => {
            r.unreadable(e);
            return Some(r);
        }
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => {
            r.unreadable(e);
            return Some(r);
        }
    };
    // Replaced between the `lstat` and the open by something that is not
    // a regular file (it was opened, but not a byte is read from it).
    if let Some(f) = not_a_file(&meta) {
        r.push(f);
        return Some(r);
    }
    r.size = meta.len();
    r.judged = Some(Judged::exactly(&crate::sys::Meta::of(&meta)));
    let mode = meta.mode() & 0o7777;
    match CheckpointFile::from_file(path, file) {
        Ok(cf) => check_contents(&mut r, &cf, mode, c, buf, progress),
        Err(OpenError::Defect(d)) => {
            check_mode(&mut r, c, mode, None);
            r.defect(d)
        }
        Err(OpenError::Io(e)) => {
            check_mode(&mut r, c, mode, None);
            r.unreadable(e)
        }
    }
    // Errors first; the sort is stable, so each group stays in check order.
    r.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Some(r)
}

/// Record a checkpoint's mode. A file of a directory argument is judged
/// with its directory, once for the directory (`Tally`); a file named alone
/// gets `world-readable` when its own directory lets group or other read
/// it, worded with the modes its dialect's writer creates (FORMAT.md §1)
/// when the dialect is known.
fn check_mode(r: &mut FileReport, c: &Check, mode: u32, writer_modes: Option<&str>) {
    r.mode = Some(mode);
    if c.in_dir {
        return;
    }
    let dir_mode = fs::metadata(crate::session::parent_dir(c.path))
        .ok()
        .map(|m| m.mode() & 0o7777);
    if !readable_by_others(mode, dir_mode) {
        return;
    }
    let through = dir_mode.map_or_else(String::new, |d| {
        format!(" through its directory (mode {d:04o})")
    });
    let msg = match writer_modes {
        Some(m) => format!(
            "mode {mode:04o}: group or other can read this verbatim prompt{through} ({m}; chmod 600, or chmod 700 the directory)"
        ),
        None => format!(
            "mode {mode:04o}: group or other can read this verbatim prompt{through} (chmod 600, or chmod 700 the directory)"
        ),
    };
    r.push(Finding::warning(Code::WorldReadable, msg));
}

/// What a checkpoint's name must be (FORMAT.md §2).
enum NameRule {
    /// The SHA-1 of the text.
    Text,
    /// A ds4-agent session's identity, SHA-1(title ‖ created as u64 LE).
    Identity(Key),
    /// Nothing to compare: the dialect's names hash nothing kvc reads, or
    /// the title that makes the name could not be read (reported on its
    /// own), or the trailers are ambiguous.
    Unchecked,
}

/// The checks past the 52-byte prefix, by the rules of the file's dialect.
fn check_contents(
    r: &mut FileReport,
    cf: &CheckpointFile,
    mode: u32,
    c: &Check,
    buf: &mut [u8],
    progress: &dyn Progress,
) {
    r.bytes_read += PREFIX_LEN as u64;
    let h = &cf.header;
    r.header = Some(h.clone());
    let detected = dialect::detect(h, cf.text_len, r.key.as_ref(), cf);
    let alone;
    let choice = match c.ctx {
        Some(choice) => choice,
        None => {
            let mut ev = Evidence::default();
            ev.add(&detected);
            alone = dialect::infer_engine(&ev, c.opts.engine);
            &alone
        }
    };
    // A dialect kvc does not read is reported for what it is and left
    // alone: judging it by another dialect's rules would call a healthy
    // file corrupt (FORMAT.md §9).
    if dialect::is_foreign(&detected) {
        r.foreign = true;
        if let dialect::Detected::Known(id) = detected {
            r.dialect = Some(id);
        }
        check_mode(r, c, mode, r.dialect.map(|d| d.spec().modes));
        let what = dialect::describe_foreign(&detected, h, cf, cf.payload_offset());
        r.push(Finding::warning(
            Code::Foreign,
            format!("{what}; kvc does not read this dialect and leaves it alone"),
        ));
        return;
    }
    // A wrong magic means no other field can be trusted.
    let Some(dialect) = h.check().ok().and(detected.resolve_in(choice)) else {
        check_mode(r, c, mode, None);
        if let Err(e) = h.check() {
            r.defect(e.into());
        }
        return;
    };
    let spec = dialect.spec();
    r.dialect = Some(dialect);
    r.assumed = detected.assumed_in(choice);
    r.not_loaded = choice.engine.reader().accepts(h).err();
    check_mode(r, c, mode, Some(spec.modes));
    r.findings.extend(header_warnings(h, spec, c.opts.now));
    if h.tokens == 0 && !spec.zero_tokens_valid {
        r.defect(Defect::ZeroTokens);
    }
    let truncated = match cf.check_envelope() {
        Ok(()) => false,
        // Without a text there is nothing more to check.
        Err(d @ Defect::TextLength { .. }) => {
            r.defect(d);
            return;
        }
        // The text is whole (its key can be checked), the payload and what
        // follows it are not.
        Err(d) => {
            r.defect(d);
            true
        }
    };
    // ext bit 3 makes a ds4-agent session's name its identity, read from
    // the title trailer (FORMAT.md §2, §5b); only where ext bits mean what
    // ds4 says.
    let titled = spec.trailers == Trailers::Ds4 && h.ext_flags.has_session_title();
    let mut name = match spec.identity {
        Identity::Unhashed => NameRule::Unchecked,
        Identity::Ds4 if titled => NameRule::Unchecked,
        Identity::Ds4 | Identity::TextSha1 => NameRule::Text,
    };
    // The map's entries as a walk met them: where each DSML block is,
    // never the blocks themselves.
    let mut tool_map: Vec<(u64, u64)> = Vec::new();
    if !truncated {
        match spec.trailers {
            Trailers::Ds4 if trailer::trailer_conflict(h) => {
                r.push(Finding::error(
                    Code::TrailerConflict,
                    "ext bits 0 (tool-id map, ds4-server) and 3 (session title, ds4-agent) are both set: no engine writes both, so which trailer follows the payload, and what the name must be, cannot be told; kvc does not guess",
                ));
                name = NameRule::Unchecked;
            }
            Trailers::Ds4 if titled => {
                if let Some(t) = check_title(r, cf) {
                    name = NameRule::Identity(t.identity);
                }
            }
            Trailers::Ds4 => match check_trailer(r, cf) {
                Ok(m) => tool_map = m,
                Err(e) => return r.unreadable(e),
            },
            Trailers::NoneAllowed => {
                let inferred = r.assumed && choice.how != EngineHow::Given;
                check_no_trailer(r, cf, inferred, choice);
            }
            Trailers::Unread => {}
        }
    }
    let digest = match hash_text(cf, buf) {
        Ok(x) => x,
        Err(e) => return r.unreadable(e),
    };
    r.bytes_read += cf.text_len as u64;
    if let Some(Key::Hash(want)) = &r.key {
        match name {
            NameRule::Text => {
                let actual = hex(&digest);
                debug_assert_eq!(actual.len(), KEY_HEX_LEN);
                if actual != want.as_str() {
                    r.defect(Defect::KeyMismatch { actual });
                }
            }
            NameRule::Identity(identity) => {
                if identity.as_str() != want.as_str() {
                    r.push(Finding::error(
                        Code::KeyMismatch,
                        format!(
                            "SHA-1 of the session title and created time is {identity}, not the file name (ds4-agent names a session with ext bit 3 by that identity)"
                        ),
                    ));
                }
            }
            NameRule::Unchecked => {}
        }
    }
    if !tool_map.is_empty() {
        // Every block looked for in one pass over the text (per batch of
        // patterns), not one search per entry.
        let needles = search::InFile {
            probe: cf,
            ranges: tool_map,
        };
        let text = search::Text {
            probe: cf,
            at: TEXT_OFFSET,
            len: cf.text_len as u64,
        };
        let found = match search::occurring(text, &needles) {
            Ok(f) => f,
            Err(e) => return r.unreadable(e),
        };
        r.bytes_read += found.bytes_read;
        let missing: Vec<usize> = (0..found.found.len())
            .filter(|&i| !found.found[i])
            .collect();
        if !missing.is_empty() {
            match dsml_missing(cf, &missing, found.found.len()) {
                Ok(f) => r.push(f),
                Err(e) => return r.unreadable(e),
            }
        }
    }
    if truncated {
        return;
    }
    // Only a dialect whose payload is DSV4 has its DSV4 header read, and
    // only a V4 Flash or PRO body of version 1 or 2 is judged
    // (dsv4::judged): GLM-5.2 and other models write their own body after
    // the same header, hanzo-engine's payload is opaque even when it
    // starts with `DSV4`.
    let mut judged: Option<Dsv4Header> = None;
    // Bytes of the file read, each counted once: a deep read covers the
    // DSV4 header and counts again.
    let mut layout_bytes = 0;
    if spec.payload == PayloadRule::Dsv4 {
        let layout = match cf.read_dsv4() {
            Ok(l) => l,
            Err(e) => return r.unreadable(e),
        };
        if let Some(l) = &layout {
            layout_bytes += dsv4::HEADER_LEN as u64;
            if l.counts.is_some() {
                layout_bytes += l.header.counts_len();
            }
            if let Ok(schedule) = dsv4::judged(dialect, h.model_id, l.header.version) {
                r.dsv4_version = Some(l.header.version);
                check_dsv4_layout(r, h, l, schedule);
                check_payload_version(r, dialect, l.header.version);
                judged = Some(l.header.clone());
            }
        }
    }
    if !c.deep {
        r.bytes_read += layout_bytes;
        return;
    }
    match read_payload(cf, judged.as_ref(), buf, progress) {
        Ok(p) => {
            r.bytes_read += cf.header.payload_bytes;
            r.deep = true;
            r.findings.extend(p);
        }
        Err(e) => {
            r.bytes_read += layout_bytes;
            r.unreadable(e);
        }
    }
}

/// A DSV4 payload version the file's dialect does not write: mainline's
/// loader (ds4.c at b030961) refuses every version but 2, ds4 before
/// e8e8779 every version but 1. The body is the same either way (e8e8779
/// only bumped the constant), so it was judged all the same: a warning,
/// since which ds4 loads the file is what changes, not whether it is whole.
fn check_payload_version(r: &mut FileReport, dialect: DialectId, version: u32) {
    let Some(want) = dsv4::expected_version(dialect) else {
        return;
    };
    if version == want {
        return;
    }
    let msg = if want == dsv4::VERSION_2 {
        format!(
            "DSV4 payload version {version} in a {dialect} file (payload ABI 2): ds4 mainline writes version 2 and refuses any other on load (\"unsupported session payload version\"); the body has the same layout and was checked as such"
        )
    } else {
        format!(
            "DSV4 payload version {version} in a {dialect} file (payload ABI 0): ds4 before e8e8779 (2026-05-26) refuses any version but 1, and mainline never reads payload ABI 0 (hanzo-engine zeroes byte 20 of a mainline file it loads); the body has the same layout and was checked as such"
        )
    };
    r.push(Finding::warning(Code::PayloadVersion, msg));
}

/// The session-title trailer of a ds4-agent session (ext bit 3, FORMAT.md
/// §5b), read as the agent reads it. The title when it is whole.
fn check_title(r: &mut FileReport, cf: &CheckpointFile) -> Option<SessionTitle> {
    match trailer::read_session_title(cf, cf.payload_end(), cf.header.created) {
        Ok(t) => {
            r.bytes_read += 4 + t.len as u64;
            if t.trailing > 0 {
                r.push(Finding::warning(
                    Code::TrailingBytes,
                    format!(
                        "{} bytes after the session title; ds4-agent writes none and reads only the title",
                        t.trailing
                    ),
                ));
            }
            Some(t)
        }
        Err(TitleError::Unreadable) => {
            r.push(Finding::error(
                Code::Unreadable,
                TitleError::Unreadable.to_string(),
            ));
            None
        }
        Err(e) => {
            r.push(Finding::error(
                Code::BadTitle,
                format!("{e}: ds4-agent cannot read the session's identity, so it never loads it"),
            ));
            None
        }
    }
}

/// hanzo-engine writes no trailers (disk_kv_cache.rs at c8bcee7d5), so on
/// its files bytes after the payload mean a clobbered header: a hit
/// re-opens the file by path and writes back the whole header it read at
/// load, so a file replaced in between carries the old file's header,
/// `payload_bytes` included (FORMAT.md §7).
///
/// One exception keeps a healthy ds4 file from being called corrupt: when
/// only the directory made this file hanzo-engine's (its bytes could be a
/// pre-ABI ds4 file's) and its ext bits announce a ds4 trailer, which
/// hanzo-engine's writer never sets, the bytes may well be that trailer.
fn check_no_trailer(
    r: &mut FileReport,
    cf: &CheckpointFile,
    inferred: bool,
    choice: &EngineChoice,
) {
    let len = cf.trailer_len();
    if len == 0 {
        return;
    }
    let f = cf.header.ext_flags;
    if inferred && (f.has_tool_map() || f.has_session_title()) {
        r.push(Finding::warning(
            Code::TrailingBytes,
            format!(
                "{len} bytes after the payload, announced by ext bit {}, a ds4 trailer hanzo-engine never writes; read as hanzo-engine's because the directory is {}: with --engine ds4-classic the trailer is checked, and if hanzo-engine did write this file its header was clobbered",
                if f.has_tool_map() { 0 } else { 3 },
                choice.describe()
            ),
        ));
        return;
    }
    r.push(Finding::error(
        Code::ClobberedHeader,
        format!(
            "{len} bytes after the payload of a hanzo-engine file, which never has a trailer: its header was clobbered (a hanzo-engine hit writes back the whole header it read earlier, by path, so a file replaced in between carries another file's header and payload_bytes)"
        ),
    ));
}

/// Tool-map trailer checks (ext bit 0), or `trailing-bytes` when no flag
/// announces the bytes after the payload. The section is walked entry
/// header by entry header, never read whole (a sparse 1.5 GiB trailer
/// costs a few reads); returns where the DSML blocks of a valid map are,
/// for the check against the text.
fn check_trailer(r: &mut FileReport, cf: &CheckpointFile) -> io::Result<Vec<(u64, u64)>> {
    let len = cf.trailer_len();
    if !cf.header.ext_flags.has_tool_map() {
        if len > 0 {
            r.push(Finding::warning(
                Code::TrailingBytes,
                format!(
                    "{len} bytes after the payload, but neither ext bit 0 (tool-map trailer) nor 3 (session title) is set; engines ignore them"
                ),
            ));
        }
        return Ok(Vec::new());
    }
    let mut blocks = Vec::new();
    let mut read = trailer::SECTION_HEADER_LEN as u64;
    let walked = trailer::walk(cf, cf.payload_end(), cf.size, &mut |e| {
        read += (trailer::ENTRY_HEADER_LEN + e.id.len()) as u64;
        blocks.push((e.dsml_at, e.dsml_len as u64));
    });
    r.bytes_read += read.min(len);
    match walked {
        Ok(_) => Ok(blocks),
        Err(trailer::WalkError::Unreadable) => Err(io::Error::other(
            "the trailer could not be read (it shrank, or a read failed)",
        )),
        Err(trailer::WalkError::Bad(e)) => {
            r.push(Finding::error(
                Code::BadTrailer,
                format!("ext bit 0 says a tool-id map follows the payload, but {e}"),
            ));
            Ok(Vec::new())
        }
    }
}

/// `trailer-dsml-missing` for the entries `missing` (indices) of a map of
/// `total`, naming the first few by their ids (read again, and sanitized).
fn dsml_missing(cf: &CheckpointFile, missing: &[usize], total: usize) -> io::Result<Finding> {
    let mut ids = Vec::new();
    let named: Vec<usize> = missing.iter().copied().take(MAX_NAMED_IDS).collect();
    let walked = trailer::walk(cf, cf.payload_end(), cf.size, &mut |e| {
        if named.contains(&(e.index as usize)) {
            ids.push(sanitize_line(&e.id));
        }
    });
    if walked.is_err() {
        return Err(io::Error::other("the trailer changed while being read"));
    }
    let more = missing.len().saturating_sub(MAX_NAMED_IDS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Ok(Finding::warning(
        Code::TrailerDsmlMissing,
        format!(
            "{} of {total} tool-map entries name a DSML block that is not in the text ({}{more}); ds4 never stores such entries",
            missing.len(),
            ids.join(", "),
        ),
    ))
}

/// SHA-1 of the text, streamed through `buf`.
fn hash_text(cf: &CheckpointFile, buf: &mut [u8]) -> io::Result<Vec<u8>> {
    let len = cf.text_len as u64;
    let mut hasher = Sha1::new();
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(buf.len() as u64) as usize;
        read_exact(cf, &mut buf[..n], TEXT_OFFSET + pos)?;
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hasher.finalize().to_vec())
}

/// `read_exact_at`, where a short read means the file shrank under us.
fn read_exact(cf: &CheckpointFile, buf: &mut [u8], off: u64) -> io::Result<()> {
    cf.file().read_exact_at(buf, off).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                e.kind(),
                format!(
                    "file shrank while reading: {} bytes at offset {off} of a {}-byte file",
                    buf.len(),
                    cf.size
                ),
            )
        } else {
            e
        }
    })
}

/// The checks that need the DSV4 header and count arrays: cheap positioned
/// reads, done in every mode.
fn check_dsv4_layout(
    r: &mut FileReport,
    h: &Header,
    l: &crate::format::checkpoint::Dsv4Layout,
    schedule: crate::format::dsv4::Schedule,
) {
    let d = &l.header;
    if d.tokens != h.tokens {
        r.push(Finding::error(
            Code::PayloadMismatch,
            format!(
                "DSV4 payload holds {} tokens, the header says {}",
                d.tokens, h.tokens
            ),
        ));
    }
    // ds4 writes both from the session's ctx, but loads the file anyway
    // when they differ: its lookup filters on the header's ctx_size and its
    // loader checks the payload's ctx only against the live context
    // (ds4.c, ds4_kvstore.c at b030961). Worth a word, not an error.
    if d.ctx != h.ctx_size {
        r.push(Finding::warning(
            Code::PayloadCtx,
            format!(
                "DSV4 payload was written for ctx {}, the header says ctx_size {}: ds4 still loads it, but looks it up by the header's",
                d.ctx, h.ctx_size
            ),
        ));
    }
    let pb = h.payload_bytes;
    let Some((n_comp, n_index)) = &l.counts else {
        r.push(Finding::error(
            Code::PayloadSize,
            format!(
                "DSV4 count arrays ({} layers at payload offset {}) run past the {pb}-byte payload",
                d.layers,
                d.counts_offset()
            ),
        ));
        return;
    };
    match l.exact_size(schedule) {
        Some(exact) if exact == pb => {}
        Some(exact) => r.push(Finding::error(
            Code::PayloadSize,
            format!("DSV4 layout and row counts make exactly {exact} bytes, payload_bytes is {pb}"),
        )),
        None => r.push(Finding::error(
            Code::PayloadSize,
            "DSV4 layout and row counts overflow a 64-bit size",
        )),
    }
    for p in d.load_problems(n_comp, n_index) {
        r.push(Finding::error(
            Code::PayloadSize,
            format!("{p} (ds4 refuses to load it)"),
        ));
    }
}

/// What a deep read found in the token ids and logits.
#[derive(Default)]
struct DataScan {
    bad_tokens: u64,
    first_bad_token: Option<(u64, u32)>,
    bad_logits: u64,
    first_bad_logit: Option<(u64, f32)>,
}

/// Stream the whole payload once through `buf`. Reads are at multiples of
/// `buf.len()` (a multiple of 4) from the payload start, and the token ids
/// and logits start at multiples of 4 too, so no u32 or f32 straddles two
/// reads.
fn read_payload(
    cf: &CheckpointFile,
    dsv4: Option<&Dsv4Header>,
    buf: &mut [u8],
    progress: &dyn Progress,
) -> io::Result<Vec<Finding>> {
    debug_assert_eq!(buf.len() % 4, 0);
    let start = cf.payload_offset();
    let len = cf.header.payload_bytes;
    crate::sys::advise_sequential(cf.file(), start, len);
    // Regions inside the payload only: a layout whose arrays run past it
    // was reported by the size check.
    let within = |a: u64, b: Option<u64>| b.filter(|&b| b <= len).map(|b| (a, b));
    let tokens = dsv4.and_then(|d| within(d.token_ids_offset(), Some(d.logits_offset())));
    let logits = dsv4.and_then(|d| within(d.logits_offset(), Some(d.counts_offset())));
    let vocab = dsv4.map_or(0, |d| d.vocab);
    let mut scan = DataScan::default();
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(buf.len() as u64) as usize;
        read_exact(cf, &mut buf[..n], start + pos)?;
        let chunk = &buf[..n];
        let end = pos + n as u64;
        if let Some((a, b)) = tokens {
            for (off, v) in words(chunk, pos, end, a, b) {
                if v >= vocab {
                    scan.bad_tokens += 1;
                    scan.first_bad_token.get_or_insert(((off - a) / 4, v));
                }
            }
        }
        if let Some((a, b)) = logits {
            for (off, v) in words(chunk, pos, end, a, b) {
                let f = f32::from_bits(v);
                if !f.is_finite() {
                    scan.bad_logits += 1;
                    scan.first_bad_logit.get_or_insert(((off - a) / 4, f));
                }
            }
        }
        progress.read(n as u64);
        pos = end;
    }
    let mut out = Vec::new();
    if let Some((i, v)) = scan.first_bad_token {
        out.push(Finding::error(
            Code::PayloadData,
            format!(
                "{} DSV4 token ids are not below vocab {vocab} (first: id {v} at position {i})",
                scan.bad_tokens
            ),
        ));
    }
    if let Some((i, f)) = scan.first_bad_logit {
        out.push(Finding::error(
            Code::PayloadData,
            format!(
                "{} DSV4 logits are not finite (first: {f} at index {i})",
                scan.bad_logits
            ),
        ));
    }
    Ok(out)
}

/// The little-endian u32s of `chunk` (payload bytes `pos..end`) that lie in
/// the payload range `a..b`, with their payload offsets.
fn words(
    chunk: &[u8],
    pos: u64,
    end: u64,
    a: u64,
    b: u64,
) -> impl Iterator<Item = (u64, u32)> + '_ {
    let lo = a.max(pos);
    let hi = b.min(end);
    let bytes = if lo < hi {
        &chunk[(lo - pos) as usize..(hi - pos) as usize]
    } else {
        &chunk[..0]
    };
    bytes.chunks_exact(4).enumerate().map(move |(i, w)| {
        (
            lo + 4 * i as u64,
            u32::from_le_bytes(w.try_into().expect("4 bytes")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_deterministic_and_roughly_proportional() {
        let names: Vec<String> = (0..4000).map(|i| format!("{i:040x}")).collect();
        let picked = |p: f64| names.iter().filter(|n| in_sample(n, p)).count();
        assert_eq!(picked(100.0), names.len());
        let quarter = picked(25.0);
        assert!((800..1200).contains(&quarter), "{quarter}");
        // A larger sample contains the smaller one: raising --sample only
        // adds files.
        assert!(names
            .iter()
            .filter(|n| in_sample(n, 10.0))
            .all(|n| in_sample(n, 50.0)));
        assert_eq!(picked(25.0), quarter);
    }

    #[test]
    fn words_cover_only_the_range_inside_the_chunk() {
        let chunk: Vec<u8> = (0u32..8).flat_map(|v| v.to_le_bytes()).collect();
        // Chunk holds payload bytes 16..48; range 24..40 is words 2..6.
        let got: Vec<(u64, u32)> = words(&chunk, 16, 48, 24, 40).collect();
        assert_eq!(got, [(24, 2), (28, 3), (32, 4), (36, 5)]);
        assert_eq!(words(&chunk, 16, 48, 0, 16).count(), 0);
        assert_eq!(words(&chunk, 16, 48, 40, 100).count(), 2);
    }
}
