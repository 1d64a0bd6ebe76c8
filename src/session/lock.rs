//! kvc's own lock on a cache directory, so two kvc writers (cron evict, an
//! import, a trailer rewrite) never interleave. The engines do not know it;
//! kvc stays safe next to them by re-checking files before acting.
//!
//! The state lives in `<dir>/.kvc/`, opened relative to the cache
//! directory's descriptor without following a symbolic link at any step:
//! a `.kvc` or `.kvc/lock` that is a link, a FIFO or anything but a plain
//! directory and a plain file is refused, so nothing anyone puts in a cache
//! makes kvc create or write a file outside it.
//!
//! A waiter does not wait silently: the lock file records its holder (pid,
//! operation, start time), and after [`WAIT_NOTICE`] the session tells the
//! caller once who holds it. After `--wait`, it gives up with
//! [`Error::LockTimeout`].

use crate::error::{Error, Result};
use crate::fsutil::DIR_MODE;
use crate::sys::{self, Dir, Kind, Meta, Open};
use crate::text::sanitize_line;
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// kvc's own hidden state inside a cache directory (journal, lock). The
/// engines ignore every name that is not theirs (FORMAT.md §2).
pub const STATE_DIR: &str = ".kvc";
pub const LOCK_FILE: &str = "lock";

/// How long a writer waits for the lock before it says, once, who holds it.
pub const WAIT_NOTICE: Duration = Duration::from_secs(1);

/// Attempts at taking the lock before giving up: each retry means another
/// kvc removed the lock file (`kvc gc` clearing empty state) while we
/// waited, which cannot happen more than a few times in a row.
const MAX_LOCK_ATTEMPTS: usize = 16;

/// The holder record is one short JSON line; more is not a record.
const MAX_HOLDER_LEN: usize = 4096;

/// Who holds a lock, as its holder wrote it into the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// The kvc command (`evict`, `import`, …).
    pub op: String,
    /// Unix seconds, from the holder's clock (never `--now`: a waiter
    /// compares it with the real time).
    pub since: u64,
}

impl Holder {
    /// `pid 4242 (kvc import, for 3m 12s)`; the fields are sanitized, the
    /// lock file being writable by whoever can write the cache.
    pub fn describe(&self) -> String {
        let now = unix_now();
        format!(
            "pid {} (kvc {}, for {})",
            self.pid,
            sanitize_line(self.op.as_bytes()),
            crate::text::span(now.saturating_sub(self.since))
        )
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A directory of kvc's, held locked.
#[derive(Debug)]
pub(crate) struct Held {
    /// The canonical path it was locked by.
    pub(crate) path: PathBuf,
    /// The cache directory: every operation in it goes through this.
    pub(crate) dir: Dir,
    /// `.kvc/`, opened without following a link.
    pub(crate) state: Dir,
    /// Held with `flock` until dropped (the OS releases it if kvc dies).
    lock: File,
    /// `.kvc/journal`, opened on the first record.
    pub(crate) journal: Option<File>,
}

/// An error about one of kvc's own state files: a link, a FIFO, anything
/// but what kvc creates is refused, and the message says so.
fn refuse(path: &Path, what: &str) -> Error {
    Error::invalid(
        path,
        format!(
            "{what}; kvc keeps its state only in a plain directory and plain files inside the cache, and will not follow or write through anything else (remove it)"
        ),
    )
}

/// Open (creating it if missing) kvc's state directory in `dir`.
pub(crate) fn open_state(dir: &Dir, create: bool) -> Result<Option<Dir>> {
    let path = dir.path().join(STATE_DIR);
    let name = OsStr::new(STATE_DIR);
    if create {
        dir.create_dir(name, DIR_MODE)
            .map_err(|e| Error::io(&path, e))?;
    }
    match dir.open_dir(name) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok(None),
        // O_DIRECTORY | O_NOFOLLOW fails with ENOTDIR on a link to a
        // directory, ELOOP on others: say which it is.
        Err(e) if sys::is_symlink_error(&e) || sys::is_not_a_directory(&e) => {
            match dir.stat(name) {
                Ok(m) if m.kind == Kind::Symlink => Err(refuse(&path, "is a symbolic link")),
                _ => Err(refuse(&path, "is not a directory")),
            }
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Open one of kvc's state files (`lock`, `journal`) in `state` and check
/// it is a regular file; `Ok(None)` when it does not exist and `how` does
/// not create it.
pub(crate) fn open_state_file(state: &Dir, name: &str, how: Open) -> Result<Option<File>> {
    let path = state.path().join(name);
    // The type first: a FIFO or a device node is refused without being
    // opened.
    match state.stat(OsStr::new(name)) {
        Ok(m) if m.kind == Kind::Symlink => return Err(refuse(&path, "is a symbolic link")),
        Ok(m) if m.kind != Kind::File => return Err(refuse(&path, "is not a regular file")),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if matches!(how, Open::Read | Open::ReadWrite) {
                return Ok(None);
            }
        }
        Err(e) => return Err(Error::io(&path, e)),
    }
    let file = match state.open_file(OsStr::new(name), how) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && matches!(how, Open::Read) => {
            return Ok(None)
        }
        Err(e) if sys::is_symlink_error(&e) => return Err(refuse(&path, "is a symbolic link")),
        Err(e) => return Err(Error::io(&path, e)),
    };
    // Replaced between the stat and the open.
    let m = Meta::of_file(&file).map_err(|e| Error::io(&path, e))?;
    if m.kind != Kind::File {
        return Err(refuse(&path, "is not a regular file"));
    }
    // A hard link is another name of some other file (anywhere on the same
    // file system): kvc truncates its lock file and appends to its journal,
    // and would do it to that file. kvc never makes a second link to them.
    if m.nlink > 1 {
        return Err(refuse(
            &path,
            &format!("has {} hard links (it is also another file)", m.nlink),
        ));
    }
    Ok(Some(file))
}

/// The holder a lock file records, if it reads as one.
fn read_holder(lock: &File) -> Option<Holder> {
    let mut buf = vec![0u8; MAX_HOLDER_LEN];
    let n = lock.read_at(&mut buf, 0).ok()?;
    let line = buf[..n].split(|&b| b == b'\n').next()?;
    serde_json::from_slice(line).ok()
}

fn write_holder(lock: &File, holder: &Holder) -> io::Result<()> {
    let mut line = serde_json::to_vec(holder).expect("a holder serializes");
    line.push(b'\n');
    lock.set_len(0)?;
    lock.write_all_at(&line, 0)
}

/// Is the lock file we hold still the one linked at `.kvc/lock` in the
/// directory? `kvc gc` removes an empty `.kvc/` (lock file included) while
/// holding the lock; a process that waited on the removed file would
/// otherwise believe it holds the lock while a newcomer locks the new file.
fn still_linked(dir: &Dir, state: &Dir, lock: &File) -> io::Result<bool> {
    let ours = Meta::of_file(lock)?;
    let state_meta = state.meta()?;
    let linked = |r: io::Result<Meta>, want: &Meta| match r {
        Ok(m) => Ok(m.same_file(want)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    };
    Ok(linked(dir.stat(OsStr::new(STATE_DIR)), &state_meta)?
        && linked(state.stat(OsStr::new(LOCK_FILE)), &ours)?)
}

/// How a session waits for a lock.
pub(crate) struct Waiting<'a> {
    pub(crate) op: &'a str,
    /// Give up after this long.
    pub(crate) wait: Duration,
    /// Told once, after [`WAIT_NOTICE`], who holds the lock.
    pub(crate) notice: &'a mut dyn FnMut(&Path, Option<&Holder>),
}

/// Take the exclusive lock of the directory at `path` (canonical), waiting
/// as `w` says.
pub(crate) fn acquire(path: &Path, w: &mut Waiting<'_>) -> Result<Held> {
    let dir = Dir::open(path).map_err(|e| Error::io(path, e))?;
    let started = Instant::now();
    let mut told = false;
    for _ in 0..MAX_LOCK_ATTEMPTS {
        let state = open_state(&dir, true)?.expect("created");
        let lock_path = state.path().join(LOCK_FILE);
        let lock = open_state_file(&state, LOCK_FILE, Open::Create)?.expect("created");
        let mut pause = Duration::from_millis(10);
        loop {
            if sys::try_lock(&lock).map_err(|e| Error::io(&lock_path, e))? {
                break;
            }
            let waited = started.elapsed();
            if waited >= w.wait {
                let holder =
                    read_holder(&lock).map_or_else(|| "another kvc".to_string(), |h| h.describe());
                return Err(Error::LockTimeout {
                    dir: path.to_path_buf(),
                    holder,
                    waited: Duration::from_secs(waited.as_secs()),
                });
            }
            if !told && waited >= WAIT_NOTICE {
                told = true;
                (w.notice)(path, read_holder(&lock).as_ref());
            }
            // Poll rather than block in flock: a blocked flock cannot time
            // out. A cron job can afford a tenth of a second of latency.
            std::thread::sleep(pause.min(w.wait.saturating_sub(waited)));
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        if still_linked(&dir, &state, &lock).map_err(|e| Error::io(&lock_path, e))? {
            let holder = Holder {
                pid: std::process::id(),
                op: w.op.to_string(),
                since: unix_now(),
            };
            // Informational: a failure to record it costs the waiters only
            // the name of the holder.
            let _ = write_holder(&lock, &holder);
            // A journal that is not a plain file is refused now, before
            // anything is changed, not after a deletion it cannot record.
            let journal = match state.stat(OsStr::new(super::journal::JOURNAL_FILE)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                _ => Some(super::journal::open_for_append(&state)?),
            };
            return Ok(Held {
                path: path.to_path_buf(),
                dir,
                state,
                lock,
                journal,
            });
        }
    }
    Err(Error::invalid(
        &path.join(STATE_DIR).join(LOCK_FILE),
        "lock file keeps being replaced; is another program removing it?",
    ))
}

impl Held {
    /// Remove `.kvc/` if it holds nothing but the lock file (no journal,
    /// nothing kvc does not know), while holding the lock: unlink the lock
    /// file, then the directory. A kvc waiting on the old lock file notices
    /// it is no longer linked and starts over. Consumes the lock.
    pub(crate) fn remove_state_if_empty(self) -> Result<bool> {
        let state_path = self.state.path().to_path_buf();
        let names = self.state.names().map_err(|e| Error::io(&state_path, e))?;
        if names.iter().any(|n| n != LOCK_FILE) {
            return Ok(false);
        }
        match self.state.unlink(OsStr::new(LOCK_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&state_path.join(LOCK_FILE), e)),
        }
        let removed = match self.dir.remove_dir(OsStr::new(STATE_DIR)) {
            Ok(()) => true,
            // Someone created state meanwhile: keep it.
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(&state_path, e)),
        };
        let Held { dir, lock, .. } = self;
        drop(lock);
        if removed {
            dir.sync().map_err(|e| Error::io(dir.path(), e))?;
        }
        Ok(removed)
    }
}

/// Does `.kvc/` exist as a directory holding only the lock file (or
/// nothing)? A journal, or any entry kvc does not know, keeps it. Reads
/// only; a `.kvc` that is not a plain directory is not empty state.
pub(crate) fn state_is_empty(dir: &Path) -> Result<bool> {
    let d = Dir::open(dir).map_err(|e| Error::io(dir, e))?;
    let state = match d.open_dir(OsStr::new(STATE_DIR)) {
        Ok(s) => s,
        Err(_) => return Ok(false),
    };
    let names = state.names().map_err(|e| Error::io(state.path(), e))?;
    Ok(names.iter().all(|n| n == LOCK_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn waiting<'a>(notice: &'a mut dyn FnMut(&Path, Option<&Holder>)) -> Waiting<'a> {
        Waiting {
            op: "test",
            wait: Duration::from_secs(30),
            notice,
        }
    }

    #[test]
    fn a_waiter_on_a_removed_lock_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap();
        let mut quiet = |_: &Path, _: Option<&Holder>| {};
        let first = acquire(&path, &mut waiting(&mut quiet)).unwrap();
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let mut quiet = |_: &Path, _: Option<&Holder>| {};
            let lock = acquire(&p, &mut waiting(&mut quiet)).unwrap();
            tx.send(()).unwrap();
            // Hold it until the main thread has checked.
            std::thread::sleep(Duration::from_millis(300));
            drop(lock);
        });
        // Let the waiter wait on the old file, then do what `kvc gc` does.
        std::thread::sleep(Duration::from_millis(100));
        assert!(first.remove_state_if_empty().unwrap());
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // The waiter holds the lock on the file now linked: nobody else can.
        assert!(path.join(STATE_DIR).join(LOCK_FILE).exists());
        let mut quiet = |_: &Path, _: Option<&Holder>| {};
        let busy = acquire(
            &path,
            &mut Waiting {
                op: "test",
                wait: Duration::ZERO,
                notice: &mut quiet,
            },
        );
        assert!(matches!(busy, Err(Error::LockTimeout { .. })), "{busy:?}");
        waiter.join().unwrap();
        assert!(acquire(&path, &mut waiting(&mut quiet)).is_ok());
    }
}
