//! `kvc import`: reading a bundle and installing the checkpoints that
//! verify, through the write session (the lock, the journal, the clock).

use super::check::{Checked, StreamCheck};
use super::ustar::{classify_entry, read_full, type_problem, EntryName};
use super::*;
use crate::error::{Error, Result};
use crate::evict;
use crate::format::checkpoint::{self, Defect, Key};
use crate::format::dialect::{self, Engine, EngineChoice};
use crate::format::{Header, HEADER_LEN, PREFIX_LEN};
use crate::fsutil::{create_private_dir_all, AtomicFile, FILE_MODE};
use crate::policy::Policy;
use crate::scan::{self, classify_name, open_nofollow, Checkpoint, NameKind, ScanOptions};
use crate::session::journal::{Op, Record};
use crate::session::{Judged, Removal, Session, SessionOptions};
use crate::sys::{Dir, Meta};
use crate::text::sanitize_line;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// What to do when the target already has a checkpoint with the same key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Keep the existing file.
    #[default]
    Skip,
    /// Overwrite it.
    Replace,
    /// Keep whichever was used last (`last_used`; ties keep the existing).
    Newer,
}

/// The `--budget` pass run after an import (kvc evict's planner and executor).
#[derive(Clone, Copy, Debug)]
pub struct BudgetOptions {
    pub bytes: u64,
    pub policy: Policy,
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub on_conflict: OnConflict,
    /// Zero hits and set last_used to `now` in the installed copies.
    pub reset_stats: bool,
    /// Unix seconds: the clock for `reset_stats`, journal and budget.
    pub now: u64,
    /// Read and verify everything, write nothing.
    pub dry_run: bool,
    /// Where the bundle came from, for error messages and the journal.
    pub source: String,
    pub budget: Option<BudgetOptions>,
    /// Also replace ds4-agent's explicit saves (`sysprompt.kv`, reasons
    /// agent-system and agent-session) on a conflict, as `kvc rm` and
    /// `kvc evict` need it to delete them.
    pub include_agent: bool,
    /// `--engine`: the engine that reads the target directory, instead of
    /// the one its files point to.
    pub engine: Option<Engine>,
}

/// What happened to one entry of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// New in the target.
    Installed,
    /// Overwrote a different copy.
    Replaced,
    /// The same bytes were already there.
    Present,
    /// A different copy is there and was kept (`--on-conflict`).
    Skipped,
    Rejected,
}

impl Action {
    /// Its stable code ([`crate::code::Code`]; the JSON's `action`).
    pub fn code(self) -> crate::code::Code {
        use crate::code::Code;
        match self {
            Action::Installed => Code::Installed,
            Action::Replaced => Code::Replaced,
            Action::Present => Code::Present,
            Action::Skipped => Code::Skipped,
            Action::Rejected => Code::Rejected,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EntryOutcome {
    /// The entry name as it appears in the stream (sanitized: it is
    /// untrusted), or `(stream)` for a problem of the stream itself.
    pub entry: String,
    pub key: Option<String>,
    pub action: Action,
    pub size: Option<u64>,
    /// Why, for anything but a plain install (sanitized: it can quote the
    /// stream).
    pub message: Option<String>,
}

/// What the manifest said, when the stream had one.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestInfo {
    pub kvc_version: String,
    pub exported_at: u64,
    pub entries: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Evicted {
    pub key: String,
    pub file: String,
    pub size: u64,
    pub reason: String,
    pub score: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BudgetOutcome {
    pub budget: u64,
    pub policy: String,
    /// Bytes of valid checkpoints before and after the pass.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub evicted: Vec<Evicted>,
    /// False when what is protected (the imported checkpoints, agent
    /// saves) alone exceeds the budget.
    pub met: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// Not serialized: a path need not be UTF-8; callers show it.
    #[serde(skip)]
    pub dir: PathBuf,
    pub dry_run: bool,
    pub on_conflict: OnConflict,
    /// Every entry, in stream order, plus one `(stream)` row when the
    /// stream was cut off or unreadable past some point.
    pub entries: Vec<EntryOutcome>,
    /// The stream ended early (no manifest) or broke mid-way. Every
    /// complete, verified entry before the cut was still installed.
    pub truncated: bool,
    pub manifest: Option<ManifestInfo>,
    pub budget: Option<BudgetOutcome>,
    /// The engine whose reading of the target kvc applied, and why
    /// (`ds4 (inferred: …)`).
    pub engine: String,
    /// Lines the user should read (e.g. replacing files next to a running
    /// hanzo-engine).
    pub warnings: Vec<String>,
    /// Rejected entries beyond the first [`MAX_LISTED_REJECTIONS`], counted
    /// but not listed: a stream of a million junk entries costs a counter,
    /// not a million rows.
    pub rejected_unlisted: usize,
}

/// Rejected entries listed one by one in a report; the rest are counted.
pub const MAX_LISTED_REJECTIONS: usize = 1000;

impl ImportReport {
    pub fn count(&self, a: Action) -> usize {
        let listed = self.entries.iter().filter(|e| e.action == a).count();
        if a == Action::Rejected {
            listed + self.rejected_unlisted
        } else {
            listed
        }
    }

    /// Bytes written into the target (installed and replaced).
    pub fn bytes_written(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.action, Action::Installed | Action::Replaced))
            .filter_map(|e| e.size)
            .sum()
    }

    /// Exit 1: an entry was rejected, the stream was cut, or the budget
    /// could not be met.
    pub fn has_problems(&self) -> bool {
        self.count(Action::Rejected) > 0
            || self.truncated
            || self.budget.as_ref().is_some_and(|b| !b.met)
    }
}

/// What import will do with a data entry, decided from the target before
/// any byte of it is written.
#[derive(Clone, Debug)]
enum Decision {
    Install,
    /// Overwrite the existing copy named `old` (its name on disk), as it
    /// was judged: replaced only while it is still that inode.
    Replace {
        old: String,
        judged: Judged,
    },
    /// Keep the existing copy (named `old`): report `present` if the bytes
    /// are identical, else `skipped` with this note.
    Keep {
        old: String,
        note: String,
    },
    /// Cannot install (the name is taken by something that is not a file).
    Refuse(String),
}

/// A data entry streamed and hashed, waiting for its record.
struct Pending {
    shown: String,
    name: String,
    key: Key,
    check: Checked,
    plan: Decision,
    temp: Option<AtomicFile>,
    mtime: u64,
}

enum Flow {
    Next,
    /// The stream broke: stop reading it.
    Stop,
}

struct Importer<'a> {
    dir: &'a Path,
    opts: &'a ImportOptions,
    /// The write session (`None` in a dry run, which writes nothing).
    session: Option<&'a mut Session>,
    /// The target's descriptor, once locked: temps and commits go through
    /// it.
    target: Option<Dir>,
    /// The engine that reads the target, decided from the directory as it
    /// was before the first entry (or `--engine`).
    engine: EngineChoice,
    warnings: Vec<String>,
    /// The hanzo-engine warning was given.
    warned_replace: bool,
    /// Checkpoint names on disk, by key (ds4 accepts upper-case hex names).
    on_disk: HashMap<Key, String>,
    /// Every checkpoint name met in the stream, to tell duplicates and what
    /// a manifest lists that never came: 20 bytes a name (plus the table's
    /// overhead), the one cost per entry that import keeps.
    seen: SeenKeys,
    pending: Option<Pending>,
    entries: Vec<EntryOutcome>,
    /// Rejections in `entries`, and those only counted.
    rejected_listed: usize,
    rejected_unlisted: usize,
    /// Keys installed, replaced or already present: the budget protects them
    /// (kept only with `--budget`).
    imported: HashMap<Key, (u64, Option<(Header, u32)>)>,
    manifest_seen: bool,
    manifest: Option<ManifestInfo>,
    /// What the manifest lists that the stream did not carry (the first
    /// [`MAX_LISTED_REJECTIONS`], and how many more).
    missing: (Vec<String>, usize),
    truncated: bool,
    /// An extension header made the next entry (or, global, all of them)
    /// mean something else to other tar readers: reject it.
    taint_next: bool,
    taint_all: bool,
    /// A data entry rejected before it was read (a duplicate): its record,
    /// next in the stream, goes with it silently.
    drop_record_of: Option<Key>,
    buf: Vec<u8>,
    /// Writes the files being installed, once the first one is.
    writer: Option<Writer>,
    /// Files were renamed into place since the directory's last fsync.
    unsynced_names: bool,
    /// Journal records of those files, written once their names are
    /// durable (`settle`).
    unsettled: Vec<Record>,
}

/// Writeback of a file being installed is started every this many bytes
/// (see `sys::start_writeback`).
const WRITEBACK_STEP: u64 = 8 << 20;

/// Installed files whose names are made durable and journaled together
/// (`Importer::settle`): one directory fsync and one journal append per
/// this many, instead of one each per file.
const SETTLE_EVERY: usize = 256;

/// Buffers of [`CHUNK`] bytes in flight between the reading thread and
/// the writing one: 1 MiB, enough that neither waits on the other's
/// single system call.
pub(crate) const WRITE_AHEAD: usize = 4;

/// What the reading thread asks of the writing one.
enum Job {
    /// Write the chunks that follow into this temp file.
    Begin(AtomicFile),
    /// The next bytes of the current file: `buf[..len]`.
    Chunk(Vec<u8>, usize),
    /// The current file is complete: hand it back, with the first write
    /// error if there was one.
    End,
}

/// A second thread that writes the entries being installed, while the
/// importing thread reads the stream and hashes it: reading (a copy from
/// the page cache or a pipe), BLAKE3 and SHA-1 on one core, writing (a
/// copy into the page cache, block allocation) on the other. Profile of
/// an import of 2 GiB on one thread: writes 53 %, reads 21 %, hashing
/// 14 %, fsync 9 % of CPU. Every 8 MiB written it also starts the file's
/// writeback, so the disk works while the entry still streams and the
/// fsync before the rename has little left to wait for.
struct Writer {
    jobs: std::sync::mpsc::SyncSender<Job>,
    done: std::sync::mpsc::Receiver<(AtomicFile, io::Result<()>)>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    /// Buffers made so far (at most [`WRITE_AHEAD`]).
    made: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn spawn() -> io::Result<Writer> {
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job>(WRITE_AHEAD);
        let (done_tx, done) = std::sync::mpsc::channel();
        let (free_tx, free) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kvc-import-writer".into())
            .spawn(move || {
                let mut cur: Option<(AtomicFile, io::Result<()>, u64)> = None;
                for job in job_rx {
                    match job {
                        Job::Begin(t) => cur = Some((t, Ok(()), 0)),
                        Job::Chunk(buf, len) => {
                            if let Some((t, res @ Ok(()), written)) = cur.as_mut() {
                                match t.write_all(&buf[..len]) {
                                    Ok(()) => {
                                        let before = *written;
                                        *written += len as u64;
                                        if *written / WRITEBACK_STEP > before / WRITEBACK_STEP {
                                            let start =
                                                (*written / WRITEBACK_STEP - 1) * WRITEBACK_STEP;
                                            crate::sys::start_writeback(
                                                t.file(),
                                                start,
                                                WRITEBACK_STEP,
                                            );
                                        }
                                    }
                                    Err(e) => *res = Err(e),
                                }
                            }
                            let _ = free_tx.send(buf);
                        }
                        Job::End => {
                            if let Some((t, res, _)) = cur.take() {
                                let _ = done_tx.send((t, res));
                            }
                        }
                    }
                }
            })?;
        Ok(Writer {
            jobs,
            done,
            free,
            made: 0,
            thread: Some(thread),
        })
    }

    /// A buffer to read the next chunk into: a new one while fewer than
    /// [`WRITE_AHEAD`] exist, else one the writer is done with.
    fn buffer(&mut self) -> Vec<u8> {
        if self.made < WRITE_AHEAD {
            self.made += 1;
            return vec![0u8; CHUNK];
        }
        self.free.recv().unwrap_or_else(|_| vec![0u8; CHUNK])
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| io::Error::other("the import's writing thread stopped"))
    }

    /// The current file back once everything sent is written, with the
    /// first write error.
    fn end(&mut self) -> io::Result<AtomicFile> {
        self.send(Job::End)?;
        let (t, res) = self
            .done
            .recv()
            .map_err(|_| io::Error::other("the import's writing thread stopped"))?;
        res.map(|()| t)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread; a file it still holds is
        // dropped there, which removes its temp.
        let (jobs, _) = std::sync::mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.jobs, jobs));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The names of the checkpoints met in a stream, as SHA-1 digests.
#[derive(Default)]
struct SeenKeys {
    hashes: HashSet<[u8; 20]>,
    sysprompt: bool,
}

impl SeenKeys {
    /// Add `key`; false when it was there already.
    fn insert(&mut self, key: &Key) -> bool {
        match crate::prefix::key_digest(key) {
            Some(d) => self.hashes.insert(d),
            None => !std::mem::replace(&mut self.sysprompt, true),
        }
    }

    fn contains(&self, key: &Key) -> bool {
        match crate::prefix::key_digest(key) {
            Some(d) => self.hashes.contains(&d),
            None => self.sysprompt,
        }
    }
}

/// BLAKE3 of the regular file `name` in `dir` (or at `dir/name` in a dry
/// run), hex; `None` when it cannot be read whole.
fn file_blake3(target: Option<&Dir>, dir: &Path, name: &str, buf: &mut [u8]) -> Option<String> {
    let mut f = match target {
        Some(d) => d
            .open_file(std::ffi::OsStr::new(name), crate::sys::Open::Read)
            .ok()?,
        None => open_nofollow(&dir.join(name)).ok()?,
    };
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut h = blake3::Hasher::new();
    loop {
        match f.read(buf) {
            Ok(0) => return Some(h.finalize().to_hex().to_string()),
            Ok(n) => {
                h.update(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

impl Importer<'_> {
    fn open_target(&mut self) -> Result<()> {
        if let Some(session) = self.session.as_deref_mut() {
            create_private_dir_all(self.dir).map_err(|e| Error::io(self.dir, e))?;
            session.lock(&[self.dir])?;
            self.target = Some(
                session
                    .dir(self.dir)?
                    .try_clone()
                    .map_err(|e| Error::io(self.dir, e))?,
            );
        }
        self.on_disk = names_on_disk(self.dir)?;
        // Which engine reads the target decides what a pre-ABI ds4 file
        // and a hanzo-engine file (identical headers) are, as a scan of
        // the directory will after the import.
        self.engine = match self.opts.engine {
            Some(e) => EngineChoice::given(e),
            None if self.dir.is_dir() => scan::scan_dir(self.dir, ScanOptions::default())?.engine,
            None => dialect::infer_engine(&dialect::Evidence::default(), None),
        };
        Ok(())
    }

    /// Before the first replacement in a directory hanzo-engine reads: a
    /// hanzo-engine hit re-opens the file by path and writes the whole
    /// 48-byte header it loaded back (FORMAT.md §7): if kvc replaced the
    /// file in between, the old header lands on the new file.
    /// A directory where hanzo-engine also left files (`mixed`) gets the
    /// warning too.
    fn warn_replace(&mut self, progress: &mut dyn Progress) {
        let hanzo = self.engine.engine == Engine::Hanzo;
        if !(hanzo || self.engine.mixed) || self.warned_replace {
            return;
        }
        self.warned_replace = true;
        let who = if hanzo {
            format!("read by {}", self.engine.describe())
        } else {
            format!(
                "hanzo-engine left files here too (engine {})",
                self.engine.describe()
            )
        };
        let line = format!(
            "{}: {who}; replacing checkpoints next to a running hanzo-engine is unsafe: on a hit it re-opens the file by path and writes back the header it loaded, onto the new file (stop it first, or use --on-conflict skip)",
            self.dir.display(),
        );
        progress.warn(&line);
        self.warnings.push(line);
    }

    fn outcome(
        &mut self,
        entry: &str,
        key: Option<&Key>,
        action: Action,
        size: Option<u64>,
        message: Option<String>,
    ) {
        if action == Action::Rejected {
            if self.rejected_listed >= MAX_LISTED_REJECTIONS {
                self.rejected_unlisted += 1;
                return;
            }
            self.rejected_listed += 1;
        }
        self.entries.push(EntryOutcome {
            entry: entry.to_string(),
            key: key.map(|k| k.to_string()),
            action,
            size,
            // Messages quote untrusted bytes: tar's errors quote header
            // fields and names, serde's an unknown value of a record.
            message: message.map(|m| sanitize_line(m.as_bytes())),
        });
    }

    fn reject(
        &mut self,
        entry: &str,
        key: Option<&Key>,
        size: Option<u64>,
        msg: impl Into<String>,
    ) {
        self.outcome(entry, key, Action::Rejected, size, Some(msg.into()));
    }

    fn stream_cut(&mut self, entry: &str, msg: String) {
        self.truncated = true;
        self.reject(entry, None, None, msg);
    }

    /// The pending data entry did not get its record.
    fn flush_pending(&mut self, why: &str) {
        if let Some(p) = self.pending.take() {
            let size = p.check.size;
            self.reject(&p.shown, Some(&p.key), Some(size), why);
            // Dropping p.temp removes the temp file.
        }
    }

    fn decide(&self, key: &Key, incoming: Option<&Header>) -> Result<Decision> {
        let name = self
            .on_disk
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.file_name());
        let path = self.dir.join(&name);
        let meta = match &self.target {
            Some(d) => d.stat(std::ffi::OsStr::new(&name)),
            None => fs::symlink_metadata(&path).map(|m| Meta::of(&m)),
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Decision::Install),
            Err(e) => return Err(Error::io(&path, e)),
        };
        if meta.kind != crate::sys::Kind::File {
            return Ok(Decision::Refuse(format!(
                "{name} exists in the target and is not a regular file; left alone"
            )));
        }
        let old = name.clone();
        if self.opts.on_conflict == OnConflict::Skip {
            return Ok(Decision::Keep {
                old,
                note: "a different copy exists; kept (--on-conflict replace or newer to overwrite)"
                    .into(),
            });
        }
        // Never through a link, never blocking, only a regular file.
        let existing = checkpoint::CheckpointFile::open_named(&path, false);
        // ds4-agent's explicit saves are replaced only when asked, as rm
        // and evict delete them only when asked.
        let agent_save = *key == Key::Sysprompt
            || existing
                .as_ref()
                .is_ok_and(|cf| cf.header.reason.is_agent());
        if agent_save && !self.opts.include_agent {
            return Ok(Decision::Keep {
                old,
                note: "the existing copy is an explicit ds4-agent save; kept (--include-agent to replace it)"
                    .into(),
            });
        }
        Ok(match self.opts.on_conflict {
            OnConflict::Skip => unreachable!("handled above"),
            OnConflict::Replace => Decision::Replace {
                old,
                judged: Judged::inode(&meta),
            },
            OnConflict::Newer => {
                match (existing, incoming) {
                    (Ok(cf), Some(h)) if h.last_used > cf.header.last_used => Decision::Replace {
                        old,
                        judged: Judged::inode(&meta),
                    },
                    (Ok(cf), _) => Decision::Keep {
                        old,
                        note: format!(
                            "the existing copy was used later or at the same time (last_used {} >= {}); kept",
                            cf.header.last_used,
                            incoming.map_or(0, |h| h.last_used)
                        ),
                    },
                    (Err(e), _) => Decision::Keep {
                        old,
                        note: format!(
                            "the existing copy is unreadable ({e}); kept (--on-conflict replace to overwrite)"
                        ),
                    },
                }
            }
        })
    }

    /// Stream a data entry into a temp file (when it may be installed),
    /// hashing and parsing on the way.
    fn receive<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        shown: String,
        key: Key,
        progress: &mut dyn Progress,
    ) -> Result<Flow> {
        let size = entry.size();
        let mtime = entry.header().mtime().unwrap_or(0);
        let name = key.file_name();
        progress.entry(&name);
        let mut buf = std::mem::take(&mut self.buf);
        let plen = (PREFIX_LEN as u64).min(size) as usize;
        let got = match read_full(entry, &mut buf[..plen]) {
            Ok(n) => n,
            Err(e) => {
                self.buf = buf;
                self.stream_cut(&shown, format!("stream unreadable inside this entry: {e}"));
                return Ok(Flow::Stop);
            }
        };
        if got < plen {
            self.buf = buf;
            self.stream_cut(
                &shown,
                format!("truncated stream: ended inside this entry ({got} of {size} bytes)"),
            );
            return Ok(Flow::Stop);
        }
        // What the first bytes already rule out is never written: a
        // hostile entry the size of the disk that is no checkpoint at all
        // costs reading it past, not the disk.
        if let Some(why) = not_a_checkpoint(&buf[..plen], size) {
            self.buf = buf;
            self.drop_record_of = Some(key.clone());
            self.reject(
                &shown,
                Some(&key),
                Some(size),
                format!(
                    "not a valid checkpoint: {why}; its {size} bytes were skipped, not written"
                ),
            );
            return Ok(Flow::Next);
        }
        let incoming =
            (plen == PREFIX_LEN).then(|| Header::decode(buf[..HEADER_LEN].try_into().expect("48")));
        let plan = self.decide(&key, incoming.as_ref())?;
        let writes = matches!(plan, Decision::Install | Decision::Replace { .. });
        let mut temp = match (&self.target, writes) {
            (Some(target), true) => match AtomicFile::create_in(target, &name) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.buf = buf;
                    self.drop_record_of = Some(key.clone());
                    self.reject(
                        &shown,
                        Some(&key),
                        Some(size),
                        format!("cannot create its temp file in the target: {e}; not installed"),
                    );
                    return Ok(Flow::Next);
                }
            },
            _ => None,
        };
        let mut check = StreamCheck::new();
        check.update(&buf[..plen]);
        progress.advance(plen as u64);
        // An entry to install streams through the writing thread: this one
        // reads and hashes the next chunk while that one writes the last.
        let mut writer = match temp.take() {
            Some(t) => {
                if self.writer.is_none() {
                    self.writer = Some(Writer::spawn().map_err(|e| Error::io(self.dir, e))?);
                }
                let w = self.writer.as_mut().expect("spawned");
                if let (true, Some(mut h)) = (self.opts.reset_stats, incoming.clone()) {
                    h.hits = 0;
                    h.last_used = self.opts.now;
                    buf[..HEADER_LEN].copy_from_slice(&h.encode());
                }
                let mut first = w.buffer();
                first[..plen].copy_from_slice(&buf[..plen]);
                w.send(Job::Begin(t))
                    .and_then(|()| w.send(Job::Chunk(first, plen)))
                    .map_err(|e| Error::io(self.dir, e))?;
                Some(w)
            }
            None => None,
        };
        let mut done = plen as u64;
        // The buffer read into next, kept over an interrupted read.
        let mut spare: Option<Vec<u8>> = None;
        while done < size {
            let mut chunk = match (spare.take(), writer.as_mut()) {
                (Some(c), _) => c,
                (None, Some(w)) => w.buffer(),
                (None, None) => std::mem::take(&mut buf),
            };
            let want = (chunk.len() as u64).min(size - done) as usize;
            let read = entry.read(&mut chunk[..want]);
            let n = match read {
                Ok(n) if n > 0 => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    spare = Some(chunk);
                    continue;
                }
                failed => {
                    if let Some(w) = writer.as_mut() {
                        // Its temp is removed as it drops.
                        let _ = w.end();
                    } else {
                        buf = chunk;
                    }
                    self.buf = buf;
                    let msg = match failed {
                        Err(e) => format!("stream unreadable inside this entry: {e}"),
                        _ => format!(
                            "truncated stream: ended inside this entry ({done} of {size} bytes)"
                        ),
                    };
                    self.stream_cut(&shown, msg);
                    return Ok(Flow::Stop);
                }
            };
            check.update(&chunk[..n]);
            match writer.as_mut() {
                Some(w) => w
                    .send(Job::Chunk(chunk, n))
                    .map_err(|e| Error::io(self.dir, e))?,
                None => buf = chunk,
            }
            done += n as u64;
            progress.advance(n as u64);
        }
        self.buf = buf;
        let temp = match writer.map(Writer::end) {
            Some(Ok(t)) => Some(t),
            // Dropped by the writer: what was written is removed.
            Some(Err(e)) => return Ok(self.unwritable(&shown, &key, size, e)),
            None => None,
        };
        self.pending = Some(Pending {
            shown,
            name,
            key,
            check: check.finish(),
            plan,
            temp,
            mtime,
        });
        Ok(Flow::Next)
    }

    /// An entry that could not be written to its temp file (the disk is
    /// full, say): rejected alone, its temp removed; the stream goes on.
    fn unwritable(&mut self, shown: &str, key: &Key, size: u64, e: io::Error) -> Flow {
        self.drop_record_of = Some(key.clone());
        self.reject(
            shown,
            Some(key),
            Some(size),
            format!("could not be written to the target: {e}; not installed (the rest of the bundle goes on)"),
        );
        Flow::Next
    }

    /// The record for the pending entry arrived: verify, then install.
    fn complete(&mut self, p: Pending, record: &[u8], progress: &mut dyn Progress) -> Result<()> {
        let Pending {
            shown,
            name,
            key,
            check,
            plan,
            mut temp,
            mtime,
        } = p;
        let size = Some(check.size);
        let rec: EntryRecord = match serde_json::from_slice(record) {
            Ok(r) => r,
            Err(e) => {
                self.reject(
                    &shown,
                    Some(&key),
                    size,
                    format!("its digest record is unreadable: {e}"),
                );
                return Ok(());
            }
        };
        let problem = if rec.bundle > BUNDLE_VERSION {
            Some(format!(
                "bundle format {} is newer than this kvc reads ({BUNDLE_VERSION})",
                rec.bundle
            ))
        } else if Key::from_file_name(&rec.file).as_ref() != Some(&key) {
            Some(format!(
                "its digest record is about {:?}, not this entry",
                sanitize_line(rec.file.as_bytes())
            ))
        } else if rec.status == EntryStatus::Excluded {
            Some(format!(
                "excluded by the exporter: {}",
                sanitize_line(
                    rec.problem
                        .as_deref()
                        .unwrap_or("no reason given")
                        .as_bytes()
                )
            ))
        } else if rec.size != check.size {
            Some(format!(
                "size mismatch: the record says {} bytes, the entry has {}",
                rec.size, check.size
            ))
        } else if !rec.blake3.eq_ignore_ascii_case(&check.blake3) {
            Some("BLAKE3 digest mismatch: the bytes were corrupted after export".into())
        } else {
            let engine = self.engine.engine;
            check
                .verdict(&key, |d| d.resolve(engine))
                .err()
                .map(|p| p.describe("install"))
        };
        if let Some(problem) = problem {
            self.reject(&shown, Some(&key), size, problem);
            return Ok(());
        }
        let target = self.target.as_ref();
        let dir = self.dir;
        let identical = |old: &str, buf: &mut [u8]| {
            file_blake3(target, dir, old, buf).is_some_and(|d| d == check.blake3)
        };
        let mut buf = std::mem::take(&mut self.buf);
        let (action, note) = match &plan {
            Decision::Refuse(msg) => (Action::Rejected, Some(msg.clone())),
            Decision::Keep { old, note } => {
                if identical(old, &mut buf) {
                    (
                        Action::Present,
                        Some("identical copy already present".into()),
                    )
                } else {
                    (Action::Skipped, Some(note.clone()))
                }
            }
            Decision::Install => (Action::Installed, None),
            Decision::Replace { old, .. } => {
                if identical(old, &mut buf) {
                    (
                        Action::Present,
                        Some("identical copy already present".into()),
                    )
                } else {
                    (Action::Replaced, None)
                }
            }
        };
        self.buf = buf;
        if action == Action::Replaced {
            self.warn_replace(progress);
        }
        let (action, note) = match (action, temp.take()) {
            (Action::Installed | Action::Replaced, Some(mut t)) => {
                // Keep the exporter's mtime, as tar would. The header is
                // untrusted: a time the clock type cannot hold (base-256
                // fields reach 2^64-1 s) leaves the file its own mtime.
                if let Some(when) = UNIX_EPOCH.checked_add(Duration::from_secs(mtime)) {
                    t.file()
                        .set_modified(when)
                        .map_err(|e| Error::io(&t.temp_path(), e))?;
                }
                let dest = self.dir.join(&name);
                // Replace only the copy that was judged: an engine may have
                // saved this key again meanwhile.
                if let Decision::Replace { old, judged } = &plan {
                    if *old == name {
                        let now = self
                            .target
                            .as_ref()
                            .map(|d| d.stat(std::ffi::OsStr::new(&name)));
                        if let Some(Ok(m)) = now {
                            if judged.matches(&m).is_err() {
                                self.outcome(
                                    &shown,
                                    Some(&key),
                                    Action::Skipped,
                                    size,
                                    Some("the copy in the target changed while importing (an engine saved it again?); kept".into()),
                                );
                                return Ok(());
                            }
                        }
                    }
                }
                // Durable before its name points to it; the name itself is
                // made durable with the others, before any is reported
                // (`settle`).
                let committed = if action == Action::Installed {
                    t.commit_new_unsynced()
                } else {
                    t.commit_unsynced()
                };
                self.unsynced_names = true;
                match committed {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        self.outcome(
                            &shown,
                            Some(&key),
                            Action::Skipped,
                            size,
                            Some("a copy appeared in the target while importing; kept".into()),
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(Error::io(&dest, e)),
                }
                if let Decision::Replace { old, judged } = &plan {
                    // An upper-case name for the same key would shadow ours.
                    if *old != name {
                        let session = self.session.as_deref_mut().expect("writes have a session");
                        if let Removal::Failed(e) = session.remove(self.dir, old, judged)? {
                            return Err(Error::io(&self.dir.join(old), e));
                        }
                    }
                }
                self.journal(action, &key, &check)?;
                if self.unsettled.len() >= SETTLE_EVERY {
                    self.settle()?;
                }
                (action, note)
            }
            (a, _) => (a, note),
        };
        if matches!(
            action,
            Action::Installed | Action::Replaced | Action::Present
        ) {
            let mut prefix = check.prefix.clone();
            if let (true, Some((h, _))) = (
                self.opts.reset_stats && action != Action::Present,
                prefix.as_mut(),
            ) {
                h.hits = 0;
                h.last_used = self.opts.now;
            }
            if self.opts.budget.is_some() {
                self.imported.insert(key.clone(), (check.size, prefix));
            }
            self.on_disk.insert(key.clone(), name);
        }
        self.outcome(&shown, Some(&key), action, size, note);
        Ok(())
    }

    fn journal(&mut self, action: Action, key: &Key, check: &Checked) -> Result<()> {
        let op = if action == Action::Replaced {
            Op::Replace
        } else {
            Op::Import
        };
        let mut header = check.prefix.as_ref().map(|(h, _)| h.clone());
        if let (true, Some(h)) = (self.opts.reset_stats, header.as_mut()) {
            h.hits = 0;
        }
        let session = self.session.as_deref_mut().expect("writes have a session");
        let rec = Record::new(
            session.now(),
            op,
            &key.to_string(),
            check.size,
            format!("import from {}", self.opts.source),
        )
        .with_header(header.as_ref());
        self.unsettled.push(rec);
        Ok(())
    }

    /// Make the names of the files installed so far durable (one fsync of
    /// the directory), then journal them (one append): per file, only the
    /// file's own fsync is left. A record is written only once its file's
    /// name is durable, so a crash can lose records, never invent one.
    /// Importing 10,000 small checkpoints (strace -c): 30,000 fsyncs with
    /// the directory and the journal synced per file, 10,080 settled every
    /// [`SETTLE_EVERY`].
    fn settle(&mut self) -> Result<()> {
        if std::mem::take(&mut self.unsynced_names) {
            if let Some(d) = &self.target {
                d.sync().map_err(|e| Error::io(self.dir, e))?;
            }
        }
        if !self.unsettled.is_empty() {
            let records = std::mem::take(&mut self.unsettled);
            let session = self.session.as_deref_mut().expect("writes have a session");
            session.journal(self.dir, &records)?;
        }
        Ok(())
    }

    /// Read a small entry whole, refusing one larger than `max`.
    ///
    /// The buffer grows with the bytes that arrive, not with the size the
    /// header claims: a few hundred bytes of hostile stream must not cost
    /// `max` (64 MiB for the manifest) of memory.
    fn read_small<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, Flow> {
        let size = entry.size();
        if size > max {
            return Ok(None);
        }
        let mut v = Vec::new();
        match entry.take(size).read_to_end(&mut v) {
            Ok(n) if n as u64 == size => Ok(Some(v)),
            Ok(n) => {
                self.stream_cut(
                    shown,
                    format!("truncated stream: ended inside this entry ({n} of {size} bytes)"),
                );
                Err(Flow::Stop)
            }
            Err(e) => {
                self.stream_cut(shown, format!("stream unreadable inside this entry: {e}"));
                Err(Flow::Stop)
            }
        }
    }

    fn handle<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        progress: &mut dyn Progress,
    ) -> Result<Flow> {
        let ty = entry.header().entry_type();
        let raw = entry.path_bytes().into_owned();
        let shown = sanitize_line(&raw);
        let size = entry.size();
        let kind = classify_entry(&raw);
        let tainted = self.taint_all || std::mem::take(&mut self.taint_next);
        let drop_record_of = self.drop_record_of.take();
        let is_pending_record = !tainted
            && ty == tar::EntryType::Regular
            && matches!((&kind, &self.pending), (EntryName::Meta(n), Some(p)) if *n == p.name
                || Key::from_file_name(n).as_ref() == Some(&p.key));
        if !is_pending_record {
            self.flush_pending("no digest record follows it; not installed");
        }
        if ty.is_pax_local_extensions() || ty.is_gnu_longname() || ty.is_gnu_longlink() {
            self.taint_next = true;
            self.reject(
                &shown,
                None,
                Some(size),
                "pax/GNU extension header: kvc bundles use plain ustar headers; the entry it describes is rejected too",
            );
            return Ok(Flow::Next);
        }
        if ty.is_pax_global_extensions() {
            self.taint_all = true;
            self.reject(
                &shown,
                None,
                Some(size),
                "pax global header: it changes how every later entry reads; all of them are rejected",
            );
            return Ok(Flow::Next);
        }
        if tainted {
            self.reject(
                &shown,
                None,
                Some(size),
                "follows a pax/GNU extension header; rejected",
            );
            return Ok(Flow::Next);
        }
        if self.manifest_seen {
            self.reject(
                &shown,
                None,
                Some(size),
                "comes after MANIFEST.json, the end of the bundle",
            );
            return Ok(Flow::Next);
        }
        if let Some(p) = type_problem(ty) {
            self.reject(&shown, None, Some(size), p);
            return Ok(Flow::Next);
        }
        match kind {
            EntryName::Bad(msg) => {
                self.reject(&shown, None, Some(size), msg);
                Ok(Flow::Next)
            }
            EntryName::Data(key) => {
                if !self.seen.insert(&key) {
                    self.drop_record_of = Some(key.clone());
                    self.reject(
                        &shown,
                        Some(&key),
                        Some(size),
                        format!(
                            "duplicate entry: {} appeared earlier in this bundle",
                            key.file_name()
                        ),
                    );
                    return Ok(Flow::Next);
                }
                self.receive(&mut entry, shown, key, progress)
            }
            EntryName::Meta(of) => {
                let Some(p) = self.pending.take() else {
                    let of = Key::from_file_name(&of);
                    if of.is_none() || of != drop_record_of {
                        self.reject(
                            &shown,
                            None,
                            Some(size),
                            "digest record without its checkpoint entry",
                        );
                    }
                    return Ok(Flow::Next);
                };
                match self.read_small(&mut entry, &shown, MAX_META_LEN) {
                    Ok(Some(bytes)) => self.complete(p, &bytes, progress)?,
                    Ok(None) => {
                        let (s, k) = (p.shown.clone(), p.key.clone());
                        self.reject(
                            &s,
                            Some(&k),
                            Some(p.check.size),
                            "its digest record is too large to be one",
                        );
                    }
                    Err(flow) => {
                        let (s, k) = (p.shown.clone(), p.key.clone());
                        self.reject(
                            &s,
                            Some(&k),
                            Some(p.check.size),
                            "stream ended inside its digest record",
                        );
                        return Ok(flow);
                    }
                }
                Ok(Flow::Next)
            }
            EntryName::Manifest => {
                self.manifest_seen = true;
                if size > MAX_MANIFEST_LEN {
                    self.reject(&shown, None, Some(size), "manifest too large; not read");
                    return Ok(Flow::Next);
                }
                // Streamed: one entry record at a time is checked against
                // the names seen, never the whole manifest held.
                let seen = &self.seen;
                let mut missing: (Vec<String>, usize) = (Vec::new(), 0);
                let mut on_entry = |e: EntryRecord| {
                    if e.status != EntryStatus::Ok
                        || Key::from_file_name(&e.file).is_some_and(|k| seen.contains(&k))
                    {
                        return;
                    }
                    if missing.0.len() < MAX_LISTED_REJECTIONS {
                        missing.0.push(sanitize_line(e.file.as_bytes()));
                    } else {
                        missing.1 += 1;
                    }
                };
                let mut reader = Bounded::new(io::Read::by_ref(&mut entry).take(size));
                let parsed = super::read_manifest(&mut reader, &mut on_entry);
                if reader.short {
                    let n = reader.read;
                    self.stream_cut(
                        &shown,
                        format!("truncated stream: ended inside this entry ({n} of {size} bytes)"),
                    );
                    return Ok(Flow::Stop);
                }
                match parsed {
                    Ok(head) => {
                        self.manifest = Some(ManifestInfo {
                            // From the stream: untrusted, like the entry names.
                            kvc_version: sanitize_line(head.kvc_version.as_bytes()),
                            exported_at: head.exported_at,
                            entries: head.entries,
                        });
                        self.missing = missing;
                    }
                    Err(e) => self.reject(
                        &shown,
                        None,
                        Some(size),
                        format!("unreadable manifest: {e}"),
                    ),
                }
                Ok(Flow::Next)
            }
        }
    }

    /// After the stream: what is missing.
    fn finish_stream(&mut self) {
        if self.truncated {
            self.flush_pending("the stream broke before its digest record; not installed");
            return;
        }
        if self.pending.is_some() {
            self.truncated = true;
            self.flush_pending("truncated stream: ended before its digest record; not installed");
        }
        if !self.manifest_seen {
            if !self.truncated {
                self.stream_cut(
                    "(stream)",
                    "truncated stream: ended without MANIFEST.json (cut off, or not a kvc bundle); \
                     the complete entries before the cut were processed"
                        .into(),
                );
            }
            return;
        }
        if self.manifest.is_some() {
            let (listed, more) = std::mem::take(&mut self.missing);
            for f in listed {
                self.reject(
                    &f,
                    None,
                    None,
                    "listed in MANIFEST.json but missing from the stream",
                );
            }
            self.rejected_unlisted += more;
        }
    }
}

/// Why the first bytes of an entry named as a checkpoint show it is none,
/// before any of it is written: fewer than the 52-byte prefix, no `KVC`
/// magic, or a version-1 envelope whose text and payload do not fit in the
/// entry's size (the tar header gives it up front). Other versions are
/// left to the full check: a fork's file is `foreign`, not invalid.
fn not_a_checkpoint(head: &[u8], size: u64) -> Option<String> {
    if head.len() < PREFIX_LEN {
        let d = if size == 0 {
            Defect::Empty
        } else {
            Defect::ShortHeader { size }
        };
        return Some(d.to_string());
    }
    let h = Header::decode(head[..HEADER_LEN].try_into().expect("48"));
    let tl = u32::from_le_bytes(head[HEADER_LEN..PREFIX_LEN].try_into().expect("4"));
    if h.magic != crate::format::MAGIC {
        return Some(Defect::Header(crate::format::HeaderError::BadMagic(h.magic)).to_string());
    }
    if h.version == crate::format::VERSION {
        if let Err(d) = checkpoint::check_envelope(&h, tl, size) {
            return Some(d.to_string());
        }
    }
    None
}

/// A reader that counts what it read, notes an end before the bytes it
/// was promised (`take` gives them), and fails on a JSON string longer than
/// [`MAX_MANIFEST_STRING`]: what JSON parsing holds at once is then bounded
/// whatever the manifest's size (a hostile one may be a single 64 MiB
/// string).
struct Bounded<R> {
    inner: R,
    read: u64,
    short: bool,
    in_string: bool,
    escaped: bool,
    run: usize,
}

/// The longest string a manifest may hold: its strings are keys, names,
/// digests and one-line problems.
const MAX_MANIFEST_STRING: usize = 64 << 10;

impl<R: Read> Bounded<R> {
    fn new(inner: R) -> Bounded<R> {
        Bounded {
            inner,
            read: 0,
            short: false,
            in_string: false,
            escaped: false,
            run: 0,
        }
    }
}

impl<R: Read> Read for Bounded<io::Take<R>> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want_more = self.inner.limit() > 0;
        let n = self.inner.read(buf)?;
        if n == 0 && want_more && !buf.is_empty() {
            self.short = true;
        }
        self.read += n as u64;
        for &b in &buf[..n] {
            if self.in_string {
                self.run += 1;
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                if self.run > MAX_MANIFEST_STRING {
                    return Err(io::Error::other(format!(
                        "a string longer than {MAX_MANIFEST_STRING} bytes"
                    )));
                }
            } else if b == b'"' {
                self.in_string = true;
                self.run = 0;
            }
        }
        Ok(n)
    }
}

/// Checkpoint names in `dir` by key; empty when `dir` does not exist yet.
fn names_on_disk(dir: &Path) -> Result<HashMap<Key, String>> {
    let mut out = HashMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let NameKind::Checkpoint(k) = classify_name(&name) {
            // Prefer the canonical lower-case name when both exist.
            if name == k.file_name() || !out.contains_key(&k) {
                out.insert(k, name);
            }
        }
    }
    Ok(out)
}

/// What an import will do, decided before a byte of the stream is read:
/// where, and how. Read-only.
#[derive(Clone, Debug)]
pub struct InstallPlan {
    pub dir: PathBuf,
    pub options: ImportOptions,
}

/// Check the target (a directory, or not there yet) and keep the options.
pub fn plan(dir: &Path, options: &ImportOptions) -> Result<InstallPlan> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(Error::invalid(dir, "not a directory")),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(dir, e)),
    }
    Ok(InstallPlan {
        dir: dir.to_path_buf(),
        options: options.clone(),
    })
}

/// The dry run: read and verify the whole stream, write nothing (no
/// directory, no `.kvc/`), and say what would have been done.
pub fn dry_run<R: Read>(
    plan: &InstallPlan,
    src: R,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    run(plan, src, None, progress)
}

/// Install the checkpoints of the bundle read from `src` in the write
/// session: the target's lock is taken when the first tar entry arrives
/// (so garbage input leaves no trace), each installed or replaced file is
/// journaled, and `--budget` evicts under the same lock.
///
/// `Err` only when the stream is not a tar stream at all (nothing was
/// read) or the target cannot be written; everything about entries is in
/// the report.
pub fn apply<R: Read>(
    session: &mut Session,
    plan: &InstallPlan,
    src: R,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    run(plan, src, Some(session), progress)
}

/// [`plan`], then [`dry_run`] when `opts.dry_run`, else [`apply`] in a
/// session of its own (the clock `opts.now`, the default `--wait`): for
/// tests and tools that import one bundle.
pub fn import<R: Read>(
    src: R,
    dir: &Path,
    opts: &ImportOptions,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    let p = plan(dir, opts)?;
    if opts.dry_run {
        dry_run(&p, src, progress)
    } else {
        let mut session = Session::new(SessionOptions {
            now: Some(opts.now),
            ..SessionOptions::new("import")
        })?;
        apply(&mut session, &p, src, progress)
    }
}

fn run<R: Read>(
    plan: &InstallPlan,
    src: R,
    session: Option<&mut Session>,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    let (dir, opts) = (plan.dir.as_path(), &plan.options);
    let source = Path::new(&opts.source);
    let dry_run = session.is_none();
    let mut im = Importer {
        dir,
        opts,
        session,
        target: None,
        engine: EngineChoice::given(opts.engine.unwrap_or(Engine::Ds4)),
        warnings: Vec::new(),
        warned_replace: false,
        on_disk: HashMap::new(),
        seen: SeenKeys::default(),
        pending: None,
        entries: Vec::new(),
        rejected_listed: 0,
        rejected_unlisted: 0,
        imported: HashMap::new(),
        manifest_seen: false,
        manifest: None,
        missing: (Vec::new(), 0),
        truncated: false,
        taint_next: false,
        taint_all: false,
        drop_record_of: None,
        buf: vec![0u8; CHUNK],
        writer: None,
        unsynced_names: false,
        unsettled: Vec::new(),
    };
    let streamed = stream(&mut im, src, source, progress);
    // What was installed before an error is made durable and journaled
    // all the same.
    let settled = im.settle();
    streamed?;
    settled?;
    im.finish_stream();
    progress.finish();
    let budget = match opts.budget {
        Some(b) => Some(budget_after_import(&mut im, b)?),
        None => None,
    };
    Ok(ImportReport {
        dir: dir.to_path_buf(),
        dry_run,
        on_conflict: opts.on_conflict,
        entries: im.entries,
        truncated: im.truncated,
        manifest: im.manifest,
        budget,
        engine: im.engine.describe(),
        warnings: im.warnings,
        rejected_unlisted: im.rejected_unlisted,
    })
}

/// Read the tar stream entry by entry into `im`.
fn stream<R: Read>(
    im: &mut Importer<'_>,
    src: R,
    source: &Path,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut archive = tar::Archive::new(src);
    // Raw headers: see the module documentation.
    let mut entries = archive
        .entries()
        .map_err(|e| Error::io(source, e))?
        .raw(true);
    let mut any = false;
    loop {
        match entries.next() {
            None => break,
            Some(Ok(entry)) => {
                if !any {
                    // The input is a tar stream: only now is the target
                    // created and locked, so garbage input leaves no trace.
                    im.open_target()?;
                }
                any = true;
                if let Flow::Stop = im.handle(entry, progress)? {
                    break;
                }
            }
            Some(Err(e)) => {
                if !any {
                    // tar's message quotes the header's bytes: sanitized.
                    let why = sanitize_line(e.to_string().as_bytes());
                    return Err(Error::invalid(source, format!("not a tar stream: {why}")));
                }
                im.stream_cut(
                    "(stream)",
                    format!("stream unreadable after the last complete entry: {e}"),
                );
                break;
            }
        }
    }
    if !any {
        return Err(Error::invalid(
            source,
            "empty stream: not a kvc bundle (no tar entries)",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Budget: kvc evict after the import

/// `import --budget`: evict down to the budget, never touching what was
/// just imported nor agent saves, in the order of `policy`.
///
/// It is `kvc evict --budget`'s own planner and executor (re-reading each
/// victim before deleting it, journaling each deletion), run under the
/// lock the import already holds, with the imported keys protected.
fn budget_after_import(im: &mut Importer<'_>, b: BudgetOptions) -> Result<BudgetOutcome> {
    let dir = im.dir;
    let protected: HashSet<Key> = im.imported.keys().cloned().collect();
    let opts = evict::EvictOptions {
        policy: Some(b.policy),
        now: im.opts.now,
        budget: Some(b.bytes),
        protect: protected.into_iter().collect(),
        ..evict::EvictOptions::default()
    };
    let evicted = |v: &evict::Victim| Evicted {
        key: v.name(),
        file: v.file.clone(),
        size: v.size,
        reason: v.reason_name(),
        score: v.score,
    };
    let outcome = |before: u64, after: u64, evicted: Vec<Evicted>| BudgetOutcome {
        budget: b.bytes,
        policy: b.policy.name().into(),
        bytes_before: before,
        bytes_after: after,
        evicted,
        met: after <= b.bytes,
    };
    match im.session.as_deref_mut() {
        Some(session) if session.holds(dir) => {
            // Planned under the lock the import holds.
            let plan = evict::plan_dir(dir, &opts)?;
            let r = evict::apply(session, plan, &mut evict::NoHooks)?;
            let gone = r.deleted().map(|h| evicted(&h.victim)).collect();
            Ok(outcome(r.first_plan.counted_bytes, r.bytes_after, gone))
        }
        _ => {
            // Nothing was written: evaluate the directory as the import
            // would have left it. (The imported texts are not kept, so they
            // do not supersede waypoints in this preview; they are
            // protected anyway.) A real run plans under the lock instead.
            let existing = if dir.is_dir() {
                scan::scan_dir(dir, ScanOptions::default())?
            } else {
                crate::scan::Scan::default()
            };
            let engine = existing.engine.clone();
            let mut cps = existing.checkpoints;
            // Every copy of an imported key (a replaced one, an upper-case
            // name) makes way for the imported one.
            cps.retain(|c| !im.imported.contains_key(&c.key));
            for (key, (size, prefix)) in &im.imported {
                if let Some((h, tl)) = prefix {
                    cps.push(Checkpoint::from_header(
                        key.clone(),
                        dir.join(key.file_name()),
                        *size,
                        FILE_MODE,
                        h.clone(),
                        *tl,
                        engine.engine,
                    ));
                }
            }
            let scan = crate::scan::Scan {
                dir: dir.to_path_buf(),
                engine,
                checkpoints: cps,
                ..crate::scan::Scan::default()
            };
            let plan = evict::plan(&scan, &opts);
            let gone = plan.victims.iter().map(evicted).collect();
            Ok(outcome(plan.counted_bytes, plan.bytes_after(), gone))
        }
    }
}
