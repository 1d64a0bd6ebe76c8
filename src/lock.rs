//! kvc's own lock on a cache directory, so two kvc writers (cron evict, an
//! import, a trailer rewrite) never interleave. The engines do not know it;
//! kvc stays safe next to them by re-checking files before acting.

use crate::error::{Error, Result};
use crate::fsutil::{create_private_dir_all, FILE_MODE};
use crate::scan::STATE_DIR;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "lock";

/// Held until dropped (the OS releases it if kvc dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

fn open_lock_file(dir: &Path) -> Result<(File, PathBuf)> {
    let state = dir.join(STATE_DIR);
    let path = state.join(LOCK_FILE);
    let mut attempts = 0;
    loop {
        create_private_dir_all(&state).map_err(|e| Error::io(&state, e))?;
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            // `kvc gc` removed an empty `.kvc/` between the two calls.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < MAX_LOCK_ATTEMPTS => {
                attempts += 1;
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
}

/// Attempts at taking the lock before giving up: each retry means another
/// kvc removed the lock file (`kvc gc` clearing empty state) while we waited,
/// which cannot happen more than a few times in a row.
const MAX_LOCK_ATTEMPTS: usize = 16;

/// Is the file we locked still the one at `path`? `kvc gc` removes an empty
/// `.kvc/` (lock file included) while holding the lock; a process that was
/// waiting on the removed file would otherwise believe it holds the lock
/// while a newcomer locks the new file.
fn still_linked(file: &File, path: &Path) -> Result<bool> {
    let ours = file.metadata().map_err(|e| Error::io(path, e))?;
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(m.dev() == ours.dev() && m.ino() == ours.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn retry_error(dir: &Path) -> Error {
    Error::invalid(
        &dir.join(STATE_DIR).join(LOCK_FILE),
        "lock file keeps being replaced; is another program removing it?",
    )
}

impl DirLock {
    /// Take the exclusive lock, waiting for another kvc writer to finish.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        for _ in 0..MAX_LOCK_ATTEMPTS {
            let (file, path) = open_lock_file(dir)?;
            file.lock().map_err(|e| Error::io(&path, e))?;
            if still_linked(&file, &path)? {
                return Ok(DirLock { _file: file, path });
            }
        }
        Err(retry_error(dir))
    }

    /// Take the lock if it is free; `Ok(None)` when another kvc holds it.
    pub fn try_acquire(dir: &Path) -> Result<Option<DirLock>> {
        for _ in 0..MAX_LOCK_ATTEMPTS {
            let (file, path) = open_lock_file(dir)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            if still_linked(&file, &path)? {
                return Ok(Some(DirLock { _file: file, path }));
            }
        }
        Err(retry_error(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_waiter_on_a_removed_lock_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let (tx, rx) = mpsc::channel();
        let d = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let lock = DirLock::acquire(&d).unwrap();
            tx.send(()).unwrap();
            // Hold it until the main thread has checked.
            std::thread::sleep(Duration::from_millis(300));
            drop(lock);
        });
        // Let the waiter block on the old file, then do what `kvc gc` does.
        std::thread::sleep(Duration::from_millis(100));
        std::fs::remove_file(&first.path).unwrap();
        std::fs::remove_dir(dir.path().join(STATE_DIR)).unwrap();
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // The waiter holds the lock on the file now linked: nobody else can.
        assert!(dir.path().join(STATE_DIR).join(LOCK_FILE).exists());
        assert!(DirLock::try_acquire(dir.path()).unwrap().is_none());
        waiter.join().unwrap();
        assert!(DirLock::try_acquire(dir.path()).unwrap().is_some());
    }
}
