//! kvc's own lock on a cache directory, so two kvc writers (cron evict, an
//! import, a trailer rewrite) never interleave. The engines do not know it;
//! kvc stays safe next to them by re-checking files before acting.

use crate::error::{Error, Result};
use crate::fsutil::{create_private_dir_all, FILE_MODE};
use crate::scan::STATE_DIR;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
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
    create_private_dir_all(&state).map_err(|e| Error::io(&state, e))?;
    let path = state.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    Ok((file, path))
}

impl DirLock {
    /// Take the exclusive lock, waiting for another kvc writer to finish.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let (file, path) = open_lock_file(dir)?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(DirLock { _file: file, path })
    }

    /// Take the lock if it is free; `Ok(None)` when another kvc holds it.
    pub fn try_acquire(dir: &Path) -> Result<Option<DirLock>> {
        let (file, path) = open_lock_file(dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DirLock { _file: file, path })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}
