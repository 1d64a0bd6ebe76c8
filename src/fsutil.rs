//! Crash-safe writing. A half-written result must never become visible
//! under a checkpoint name: write a temp file, fsync it, rename it into
//! place, fsync the directory. Files hold verbatim prompts, so everything
//! kvc creates is private (0600 files, 0700 directories).

use crate::sys::{Dir, Open};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Mode of every file kvc creates: owner read/write only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory kvc creates, as the engines create theirs.
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` and missing parents with mode 0700.
pub(crate) fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// The temp name kvc tries first for `final_name`: ds4's own convention
/// (`<name>.tmp.<pid>`, FORMAT.md §2), so the engines ignore it and
/// `kvc gc` recognises it as a writer's temp file with a pid to check.
pub(crate) fn temp_name_for(final_name: &str) -> String {
    format!("{final_name}.tmp.{}", std::process::id())
}

/// Attempts at a free random temp name: each collides with probability
/// 1 in 56 billion.
const TEMP_TRIES: usize = 16;

/// `<name>.tmp.XXXXXX`: six random characters from mkstemp's alphabet, at
/// least one a letter (so no one reads them as a pid), for when
/// `<name>.tmp.<pid>` is taken: by a temp a previous process with the same
/// pid left behind (pids are reused), or by a writer in another pid
/// namespace sharing the directory. `kvc gc` judges such a name as it
/// judges ds4-agent's mkstemp temps: by age and by whether any process
/// holds it open.
fn random_temp_name(final_name: &str) -> io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; 6];
    crate::sys::random_bytes(&mut raw)?;
    let mut suffix: Vec<u8> = raw.iter().map(|b| ALPHABET[*b as usize % 62]).collect();
    if suffix.iter().all(u8::is_ascii_digit) {
        suffix[0] = ALPHABET[raw[0] as usize % 52];
    }
    Ok(format!(
        "{final_name}.tmp.{}",
        String::from_utf8(suffix).expect("ASCII")
    ))
}

/// A file being written that becomes visible under its final name only
/// by [`commit`](AtomicFile::commit). Dropped uncommitted, it removes its
/// temp file. Created and renamed relative to the directory's descriptor.
#[derive(Debug)]
pub struct AtomicFile {
    dir: Dir,
    tmp: OsString,
    dest: OsString,
    file: Option<File>,
}

impl AtomicFile {
    /// Create a temp file for `final_name` in `dir` (0600, `O_EXCL`):
    /// `<final_name>.tmp.<pid>`, or a random name when that one is taken,
    /// so a stale leftover can never make the write fail.
    pub(crate) fn create_in(dir: &Dir, final_name: &str) -> io::Result<AtomicFile> {
        let dir = dir.try_clone()?;
        let mut name = temp_name_for(final_name);
        let mut tries = 0;
        let file = loop {
            match dir.open_file(OsStr::new(&name), Open::CreateNew) {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < TEMP_TRIES => {
                    tries += 1;
                    name = random_temp_name(final_name)?;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(AtomicFile {
            dir,
            tmp: name.into(),
            dest: final_name.into(),
            file: Some(file),
        })
    }

    /// `create_in` the directory at `dir`.
    pub fn create(dir: &Path, final_name: &str) -> io::Result<AtomicFile> {
        Self::create_in(&Dir::open(dir)?, final_name)
    }

    pub(crate) fn temp_path(&self) -> PathBuf {
        self.dir.path().join(&self.tmp)
    }

    /// The temp file's name in its directory.
    pub(crate) fn temp_name(&self) -> &OsStr {
        &self.tmp
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("not yet committed")
    }

    fn dest_path(&self) -> PathBuf {
        self.dir.path().join(&self.dest)
    }

    /// fsync, rename over the final name, fsync the directory. A failure
    /// before the rename removes the temp, as dropping would.
    pub fn commit(self) -> io::Result<PathBuf> {
        let dir = self.dir.try_clone()?;
        let path = self.commit_unsynced()?;
        dir.sync()?;
        Ok(path)
    }

    /// [`commit`](AtomicFile::commit) without the directory's fsync: the
    /// file is durable before its name points to it, the name itself only
    /// once the caller fsyncs the directory (`import` does once for many
    /// files, before it reports them).
    pub(crate) fn commit_unsynced(mut self) -> io::Result<PathBuf> {
        let file = self.file.take().expect("commit once");
        let renamed = file.sync_all().and_then(|()| {
            drop(file);
            self.dir.rename(&self.tmp, &self.dest)
        });
        if let Err(e) = renamed {
            let _ = self.dir.unlink(&self.tmp);
            return Err(e);
        }
        Ok(self.dest_path())
    }

    /// Like [`commit`](AtomicFile::commit), but never replaces a file that
    /// exists under the final name: fails with `AlreadyExists` and removes
    /// the temp. For installs that must not overwrite a checkpoint an engine
    /// saved meanwhile. `link()` fails atomically when the name is taken;
    /// where the file system has no hard links, `RENAME_NOREPLACE` does the
    /// same, and only where neither exists is a check-then-rename left.
    pub(crate) fn commit_new(self) -> io::Result<PathBuf> {
        let dir = self.dir.try_clone()?;
        let path = self.commit_new_unsynced()?;
        dir.sync()?;
        Ok(path)
    }

    /// [`commit_new`](AtomicFile::commit_new) without the directory's
    /// fsync (see [`commit_unsynced`](AtomicFile::commit_unsynced)).
    pub(crate) fn commit_new_unsynced(mut self) -> io::Result<PathBuf> {
        let file = self.file.take().expect("commit once");
        let result = file.sync_all().and_then(|()| {
            drop(file);
            match self.dir.link(&self.tmp, &self.dir, &self.dest) {
                Ok(()) => return self.dir.unlink(&self.tmp),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
                Err(_) => {}
            }
            match self.dir.rename_new(&self.tmp, &self.dir, &self.dest) {
                Err(e) if crate::sys::unsupported(&e) => match self.dir.stat(&self.dest) {
                    Ok(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.dir.rename(&self.tmp, &self.dest)
                    }
                    Err(e) => Err(e),
                },
                other => other,
            }
        });
        if let Err(e) = result {
            let _ = self.dir.unlink(&self.tmp);
            return Err(e);
        }
        Ok(self.dest_path())
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
            let _ = self.dir.unlink(&self.tmp);
        }
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
pub(crate) const PIPE_BUFFER: usize = 1 << 20;

/// If `fd` is a pipe, ask the kernel to let it hold `PIPE_BUFFER` bytes.
/// Best effort: a refusal (a lower limit, the per-user pipe quota) leaves
/// the pipe as it was, which costs only speed. Never shrinks a pipe. The
/// bytes that go through are the same either way.
pub fn grow_pipe(fd: std::os::fd::BorrowedFd<'_>) {
    crate::sys::grow_pipe(fd, PIPE_BUFFER);
}

/// Replace `path` with `bytes`, atomically (a temp file beside it, fsync,
/// rename, fsync of the directory), with permission bits `mode`: a reader
/// sees the old file or the new one, never half of one. For kvc's own
/// outputs beside a cache (reports, metrics files), not for checkpoints.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut f = AtomicFile::create(crate::session::parent_dir(path), name)?;
    f.write_all(bytes)?;
    f.file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.commit()?;
    Ok(())
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
        let tmp = f.temp_path();
        assert!(f.commit().is_err());
        assert!(!tmp.exists(), "temp left behind: {}", tmp.display());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn regression_a_stale_temp_of_the_same_pid_does_not_stop_a_write() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(temp_name_for("out"));
        fs::write(&stale, b"left by a previous process with our pid").unwrap();
        let mut f = AtomicFile::create(d.path(), "out").unwrap();
        let tmp = f.temp_path();
        assert_ne!(tmp, stale);
        let suffix = tmp
            .to_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(suffix.len(), 6);
        assert!(!suffix.bytes().all(|b| b.is_ascii_digit()), "{suffix}");
        f.write_all(b"new").unwrap();
        f.commit_new().unwrap();
        assert_eq!(fs::read(d.path().join("out")).unwrap(), b"new");
        // The stale file is not ours to remove.
        assert!(stale.exists());
        assert!(!tmp.exists());
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
