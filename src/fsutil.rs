//! Crash-safe writing. A half-written result must never become visible
//! under a checkpoint name: write a temp file, fsync it, rename it into
//! place, fsync the directory. Files hold verbatim prompts, so everything
//! kvc creates is private (0600 files, 0700 directories).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Mode of every file kvc creates: owner read/write only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory kvc creates, as the engines create theirs.
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` and missing parents with mode 0700.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// fsync a directory, making renames and unlinks in it durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The temp name kvc uses for `final_name`: ds4's own convention
/// (`<name>.tmp.<pid>`, FORMAT.md §2), so the engines ignore it and
/// `kvc gc` recognises it as a writer's temp file with a pid to check.
pub fn temp_name_for(final_name: &str) -> String {
    format!("{final_name}.tmp.{}", std::process::id())
}

/// A file being written that becomes visible under its final name only
/// by [`commit`](AtomicFile::commit). Dropped uncommitted, it removes its
/// temp file.
#[derive(Debug)]
pub struct AtomicFile {
    dir: PathBuf,
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Create `<dir>/<final_name>.tmp.<pid>` (0600, must not exist).
    pub fn create(dir: &Path, final_name: &str) -> io::Result<AtomicFile> {
        let tmp = dir.join(temp_name_for(final_name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        Ok(AtomicFile {
            dir: dir.to_path_buf(),
            tmp,
            dest: dir.join(final_name),
            file: Some(file),
        })
    }

    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("not yet committed")
    }

    /// fsync, rename over the final name, fsync the directory. A failure
    /// before the rename removes the temp, as dropping would.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let file = self.file.take().expect("commit once");
        let renamed = file.sync_all().and_then(|()| {
            drop(file);
            fs::rename(&self.tmp, &self.dest)
        });
        if let Err(e) = renamed {
            let _ = fs::remove_file(&self.tmp);
            return Err(e);
        }
        fsync_dir(&self.dir)?;
        Ok(self.dest.clone())
    }
}

impl AtomicFile {
    /// Like [`commit`](AtomicFile::commit), but never replaces a file that
    /// exists under the final name: fails with `AlreadyExists` and removes
    /// the temp. For installs that must not overwrite a checkpoint an engine
    /// saved meanwhile. `link()` fails atomically when the name is taken;
    /// where the file system has no hard links, a check-then-rename is the
    /// best that remains.
    pub fn commit_new(mut self) -> io::Result<PathBuf> {
        let file = self.file.take().expect("commit once");
        let linked = file.sync_all().and_then(|()| {
            drop(file);
            match fs::hard_link(&self.tmp, &self.dest) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
                Err(_) => Ok(false),
            }
        });
        let result = match linked {
            Ok(true) => fs::remove_file(&self.tmp),
            Ok(false) => match fs::symlink_metadata(&self.dest) {
                Ok(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(&self.tmp, &self.dest),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let _ = fs::remove_file(&self.tmp);
            return Err(e);
        }
        fsync_dir(&self.dir)?;
        Ok(self.dest.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Remove a file and make the removal durable. A file already gone is fine:
/// an engine may have consumed it first.
pub fn remove_durably(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            // A bare name (`<key>.kv`) has the empty path as its parent,
            // which cannot be opened: its directory is the current one.
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            fsync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// What a bundle pipe is asked to hold. Linux pipes hold 64 KiB by
/// default, so in `kvc export -o - | kvc import -` (or `| ssh`) writer and
/// reader take turns every 64 KiB, a wake-up each time. On a virtual
/// machine whose other CPU is idle each wake-up is an expensive
/// inter-processor interrupt: measured, a 2 GiB export into `cat` took
/// 3.0 s through a 64 KiB pipe and 1.1 s through a 1 MiB one (bench case
/// export-one-2g). 1 MiB is the kernel's default limit for unprivileged
/// processes (`/proc/sys/fs/pipe-max-size`).
pub const PIPE_BUFFER: usize = 1 << 20;

/// If `fd` is a pipe, ask the kernel to let it hold [`PIPE_BUFFER`] bytes.
/// Best effort: a refusal (a lower limit, the per-user pipe quota) leaves
/// the pipe as it was, which costs only speed. Never shrinks a pipe. The
/// bytes that go through are the same either way.
pub fn grow_pipe(fd: std::os::fd::BorrowedFd<'_>) {
    crate::sys::grow_pipe(fd, PIPE_BUFFER);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};

    fn pipe_size(fd: &OwnedFd) -> usize {
        crate::sys::pipe_size(fd.as_fd()).unwrap()
    }

    #[test]
    fn regression_a_commit_that_fails_removes_its_temp() {
        let d = tempfile::tempdir().unwrap();
        let mut f = AtomicFile::create(d.path(), "out").unwrap();
        f.write_all(b"bundle").unwrap();
        // A non-empty directory took the final name: the rename fails.
        fs::create_dir(d.path().join("out")).unwrap();
        fs::write(d.path().join("out/x"), b"").unwrap();
        let tmp = f.temp_path().to_path_buf();
        assert!(f.commit().is_err());
        assert!(!tmp.exists(), "temp left behind: {}", tmp.display());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn grow_pipe_grows_a_pipe_up_to_the_limit_and_ignores_files() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let before = pipe_size(&w);
        grow_pipe(w.as_fd());
        let after = pipe_size(&r);
        let limit: usize = fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        assert!(after >= before, "{before} -> {after}");
        if limit >= PIPE_BUFFER && before < PIPE_BUFFER {
            // Root may exceed the limit anyway; everyone may reach it
            // unless the per-user pipe quota is spent, rare in a test.
            assert_eq!(after, PIPE_BUFFER);
        }
        // A regular file is left alone (and nothing panics).
        let f = tempfile::tempfile().unwrap();
        grow_pipe(f.as_fd());
        assert_eq!(f.metadata().unwrap().len(), 0);
    }
}
