//! The write session: the one path through which kvc changes a cache.
//!
//! Every command that writes (`evict`, `gc`, `rm`, `verify --quarantine`,
//! `import`, `trailer set/prune/strip`) works in two steps: a `plan`
//! (read-only: it *is* `--dry-run`) and an `apply(&mut Session, plan,
//! hooks)` that returns typed outcomes. The session owns what they share:
//!
//! - **the locks**: each directory is named by its canonical path, so
//!   `cache/a.kv ./cache/b.kv` is one directory and one lock; several are
//!   taken in path order, so two kvc processes cannot deadlock; a waiter
//!   says who holds the lock after a second and gives up after `--wait`
//!   (`lock`). Everything in a locked directory is then done relative to
//!   its descriptor.
//! - **the journal**: one constructor ([`journal::Record::new`]), every
//!   field sanitized, appended durably ([`journal`]).
//! - **the clock**: `--now` when given, for the journal too.
//! - **the identity checks**: a name is unlinked or moved only while it is
//!   still the inode that was judged ([`Judged`], [`Session::remove`]),
//!   re-checked with `fstatat` on the directory's descriptor immediately
//!   before the system call that acts on it.
//!
//! The engines take no lock and fsync nothing (ds4 and hanzo-engine
//! serialize only inside their own process): kvc cannot exclude them, only
//! re-check what it judged. The window that remains between the last
//! `fstatat` and the `unlinkat` is a few system calls long; there is no
//! "unlink this inode" call to close it.

pub mod journal;
mod lock;
pub mod quarantine;

pub use lock::{Holder, LOCK_FILE, STATE_DIR, WAIT_NOTICE};

/// Does `.kvc/` of `dir` exist as a plain directory holding nothing but
/// the lock file? (`kvc gc` removes such state.) Reads only.
pub(crate) fn lock_state_is_empty(dir: &Path) -> Result<bool> {
    lock::state_is_empty(dir)
}

use crate::error::{Error, Result};
use crate::sys::{Dir, Kind, Meta};
use journal::Record;
use lock::Held;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `--wait`'s default: long enough for an import of a large bundle to
/// finish before the next cron run gives up, short enough that runs do not
/// pile up behind a stalled one (cron's usual interval is 10 minutes).
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// How a session is opened.
pub struct SessionOptions {
    /// The command, recorded as the lock's holder (`evict`, `import`, …).
    pub op: &'static str,
    /// Unix seconds to use as the time (`--now`); `None`: the clock.
    pub now: Option<u64>,
    /// How long to wait for another kvc's lock (`--wait`).
    pub wait: Duration,
}

impl SessionOptions {
    pub fn new(op: &'static str) -> SessionOptions {
        SessionOptions {
            op,
            now: None,
            wait: DEFAULT_WAIT,
        }
    }
}

/// Told once per directory, after [`WAIT_NOTICE`] of waiting, who holds
/// its lock (the holder is `None` when its record cannot be read).
pub(crate) type WaitNotice = Box<dyn FnMut(&Path, Option<&Holder>)>;

/// See the module documentation.
pub struct Session {
    op: &'static str,
    now: u64,
    wait: Duration,
    notice: WaitNotice,
    /// Locked directories, sorted by canonical path.
    held: Vec<Held>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("op", &self.op)
            .field("now", &self.now)
            .field(
                "held",
                &self.held.iter().map(|h| &h.path).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The clock: `now` when given, else the system's, in Unix seconds.
pub fn clock(now: Option<u64>) -> Result<u64> {
    match now {
        Some(n) => Ok(n),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| Error::Usage("the system clock is before 1970".into())),
    }
}

/// A directory's canonical path (symbolic links in the path the user typed
/// resolved): the name its lock is known by.
pub(crate) fn canonical_dir(dir: &Path) -> Result<PathBuf> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    dir.canonicalize().map_err(|e| Error::io(dir, e))
}

/// The directory a file path lies in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Session {
    pub fn new(opts: SessionOptions) -> Result<Session> {
        Ok(Session {
            op: opts.op,
            now: clock(opts.now)?,
            wait: opts.wait,
            notice: Box::new(|_, _| {}),
            held: Vec::new(),
        })
    }

    /// Call `notice` when a lock keeps the session waiting.
    pub fn on_wait(&mut self, notice: WaitNotice) {
        self.notice = notice;
    }

    /// The session's time, Unix seconds (`--now` when given).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Lock every directory of `dirs` (canonicalized and de-duplicated), in
    /// path order; those already held are kept. Callers lock everything
    /// they will need at once: locks taken later, out of order, could
    /// deadlock against another kvc.
    pub fn lock<P: AsRef<Path>>(&mut self, dirs: &[P]) -> Result<()> {
        let mut want = Vec::new();
        for d in dirs {
            let c = canonical_dir(d.as_ref())?;
            if !want.contains(&c) && self.find(&c).is_none() {
                want.push(c);
            }
        }
        want.sort();
        for path in want {
            let mut w = lock::Waiting {
                op: self.op,
                wait: self.wait,
                notice: &mut *self.notice,
            };
            let held = lock::acquire(&path, &mut w)?;
            let at = self.held.partition_point(|h| h.path < path);
            self.held.insert(at, held);
        }
        Ok(())
    }

    /// Whether the directory is locked by this session.
    pub fn holds(&self, dir: &Path) -> bool {
        canonical_dir(dir).is_ok_and(|c| self.find(&c).is_some())
    }

    fn find(&self, canonical: &Path) -> Option<usize> {
        self.held
            .binary_search_by(|h| h.path.as_path().cmp(canonical))
            .ok()
    }

    pub(crate) fn held(&self, dir: &Path) -> Result<&Held> {
        let c = canonical_dir(dir)?;
        match self.find(&c) {
            Some(i) => Ok(&self.held[i]),
            None => Err(not_locked(dir)),
        }
    }

    fn held_mut(&mut self, dir: &Path) -> Result<&mut Held> {
        let c = canonical_dir(dir)?;
        match self.find(&c) {
            Some(i) => Ok(&mut self.held[i]),
            None => Err(not_locked(dir)),
        }
    }

    /// The open descriptor of a locked directory.
    pub(crate) fn dir(&self, dir: &Path) -> Result<&Dir> {
        Ok(&self.held(dir)?.dir)
    }

    /// Append `records` durably to the journal of the locked directory
    /// `dir`.
    pub fn journal(&mut self, dir: &Path, records: &[Record]) -> Result<()> {
        let held = self.held_mut(dir)?;
        let path = held.state.path().join(journal::JOURNAL_FILE);
        if held.journal.is_none() {
            held.journal = Some(journal::open_for_append(&held.state)?);
        }
        let f = held.journal.as_mut().expect("just opened");
        journal::append_to(f, &path, records)
    }

    /// Remove `.kvc/` of the locked `dir` if it holds nothing but the lock
    /// file, and release the lock (`kvc gc`). Returns whether it was
    /// removed; the lock is released either way.
    pub(crate) fn remove_state_if_empty(&mut self, dir: &Path) -> Result<bool> {
        let c = canonical_dir(dir)?;
        let i = self.find(&c).ok_or_else(|| not_locked(dir))?;
        self.held.remove(i).remove_state_if_empty()
    }

    /// Release the lock of `dir` (nothing happens when it is not held).
    pub fn release(&mut self, dir: &Path) {
        if let Ok(c) = canonical_dir(dir) {
            if let Some(i) = self.find(&c) {
                self.held.remove(i);
            }
        }
    }

    /// Unlink `name` in the locked directory `dir` if it is still the
    /// inode `judged` describes (a caller that judged the contents re-reads
    /// them through `Session::dir` first). The directory is fsynced after
    /// the unlink; a failure there does not undo the removal and is
    /// reported as such ([`Removal::Removed`] with `unsynced`).
    pub fn remove(&mut self, dir: &Path, name: &str, judged: &Judged) -> Result<Removal> {
        let d = self.dir(dir)?;
        let n = OsStr::new(name);
        // Immediately before the unlink: is the name still that inode?
        match d.stat(n) {
            Ok(m) => {
                if let Err(c) = judged.matches(&m) {
                    return Ok(Removal::Changed(c));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Vanished),
            Err(e) => return Ok(Removal::Failed(e)),
        }
        match d.unlink(n) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Vanished),
            Err(e) => return Ok(Removal::Failed(e)),
        }
        Ok(Removal::Removed {
            unsynced: d.sync().err().map(|e| e.to_string()),
        })
    }
}

fn not_locked(dir: &Path) -> Error {
    Error::invalid(dir, "not locked by this kvc session (a bug in kvc)")
}

/// What kvc judged a file to be: its name is unlinked or moved only while
/// it is still this inode, with this size and modification time when they
/// were judged too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judged {
    pub dev: u64,
    pub ino: u64,
    /// Compared when `Some`: a temp file still being written grows, a
    /// checkpoint rewritten in place changes.
    pub size: Option<u64>,
    pub mtime: Option<(i64, i64)>,
}

impl Judged {
    /// The inode alone (its contents are compared by the caller's check).
    pub fn inode(m: &Meta) -> Judged {
        Judged {
            dev: m.dev,
            ino: m.ino,
            size: None,
            mtime: None,
        }
    }

    /// The inode, its size and its modification time.
    pub fn exactly(m: &Meta) -> Judged {
        Judged {
            dev: m.dev,
            ino: m.ino,
            size: Some(m.size),
            mtime: Some(m.mtime),
        }
    }

    /// Whether `m` is still the file judged, and if not, what changed.
    pub fn matches(&self, m: &Meta) -> std::result::Result<(), Changed> {
        if m.kind != Kind::File {
            return Err(Changed::Replaced(
                "replaced by something that is not a regular file".into(),
            ));
        }
        if (m.dev, m.ino) != (self.dev, self.ino) {
            return Err(Changed::Replaced(
                "replaced by another file under the same name (an engine saved it again?)".into(),
            ));
        }
        if let Some(size) = self.size.filter(|&s| s != m.size) {
            return Err(Changed::Modified(format!("size {size} -> {}", m.size)));
        }
        if self.mtime.is_some_and(|t| t != m.mtime) {
            return Err(Changed::Modified("modified since it was judged".into()));
        }
        Ok(())
    }
}

/// Why a file is no longer the one judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    /// Another inode, or not a regular file, under the name.
    Replaced(String),
    /// The same inode, changed (size, time, or header: the caller's check).
    Modified(String),
}

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Changed::Replaced(s) | Changed::Modified(s) => f.write_str(s),
        }
    }
}

/// What [`Session::remove`] did.
#[derive(Debug)]
pub enum Removal {
    /// Unlinked. `unsynced`: the directory's fsync failed afterwards, so
    /// the removal may not survive a crash yet (it is journaled all the
    /// same: it happened).
    Removed { unsynced: Option<String> },
    /// Gone already.
    Vanished,
    /// No longer the file judged: left alone.
    Changed(Changed),
    /// The unlink (or a check before it) failed: left as it was.
    Failed(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fsync_after_an_unlink_is_a_removal_not_yet_durable() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("victim");
        std::fs::write(&p, b"bytes").unwrap();
        let judged = Judged::exactly(&Meta::of(&std::fs::symlink_metadata(&p).unwrap()));
        let mut s = Session::new(SessionOptions::new("test")).unwrap();
        s.lock(&[d.path()]).unwrap();
        crate::sys::tests::FAIL_DIR_SYNC.with(|f| f.set(true));
        match s.remove(d.path(), "victim", &judged).unwrap() {
            Removal::Removed { unsynced: Some(e) } => assert!(e.contains("os error 5"), "{e}"),
            other => panic!("{other:?}"),
        }
        // It is gone all the same, and can be journaled.
        assert!(!p.exists());
        let rec = journal::Record::new(1, journal::Op::Rm, "victim", 5, "requested");
        s.journal(d.path(), &[rec]).unwrap();
        assert_eq!(journal::read(d.path()).unwrap().records.len(), 1);
    }

    #[test]
    fn a_name_no_longer_the_inode_judged_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"old").unwrap();
        let judged = Judged::inode(&Meta::of(&std::fs::symlink_metadata(&p).unwrap()));
        // Replaced by a new inode under the same name, as an engine saves.
        std::fs::write(d.path().join("t"), b"new").unwrap();
        std::fs::rename(d.path().join("t"), &p).unwrap();
        let mut s = Session::new(SessionOptions::new("test")).unwrap();
        s.lock(&[d.path()]).unwrap();
        assert!(matches!(
            s.remove(d.path(), "f", &judged).unwrap(),
            Removal::Changed(Changed::Replaced(_))
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }
}
