//! Every system call kvc makes beyond what `std` offers, in one module:
//! which processes run and which files they hold open (to tell whether a
//! writer's temp file belongs to a save in progress), and the calls that
//! keep kvc's writes inside the cache directory it was given: operations
//! relative to an open directory descriptor (`openat`, `fstatat`,
//! `unlinkat`, `linkat`, `renameat2`), never following a symbolic link, and
//! the extent-sharing and copying calls of the trailer rewrites.
//!
//! The calls go through `rustix`, which wraps each one safely, so kvc
//! itself has one `unsafe` block here, for the one call rustix lacks
//! (`sync_file_range`, import's writeback hint; the crate denies
//! undocumented ones: `clippy::undocumented_unsafe_blocks` in `lib.rs`).
//!
//! The process checks err on the side of "yes, maybe": a wrong "no" lets
//! `kvc gc` delete a file an engine is about to rename into place.

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Is process `pid` alive on this host? A pid we may not signal (EPERM)
/// exists, so it counts as alive: never touch a temp file whose writer
/// might still be writing it.
pub fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// This process's effective uid.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

// ---------------------------------------------------------------------------
// Files

/// What `fstat`/`fstatat` says of a file, for the identity checks that
/// guard every unlink and move: kvc acts on a name only while it is still
/// the inode that was judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    pub nlink: u64,
    pub uid: u32,
    pub kind: Kind,
}

/// The type of a file, from its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device node: kvc never opens one to read it.
    Other,
}

impl Kind {
    fn of_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

impl Meta {
    // `st_nlink` is a u64 on x86_64 and a u32 on aarch64.
    #[allow(clippy::unnecessary_cast)]
    fn of_stat(st: &rustix::fs::Stat) -> Meta {
        Meta {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size.max(0) as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
            nlink: st.st_nlink as u64,
            uid: st.st_uid,
            kind: Kind::of_mode(st.st_mode),
        }
    }

    /// From `std`'s metadata (a `lstat` or an `fstat` already made).
    pub fn of(m: &Metadata) -> Meta {
        Meta {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            nlink: m.nlink(),
            uid: m.uid(),
            kind: Kind::of_mode(m.mode()),
        }
    }

    /// `fstat` of an open file.
    pub(crate) fn of_file(f: &impl AsFd) -> io::Result<Meta> {
        Ok(Meta::of_stat(&rustix::fs::fstat(f)?))
    }

    /// The same inode.
    pub(crate) fn same_file(&self, other: &Meta) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// How `Dir::open_file` opens a file in a directory. Every open adds
/// `O_NOFOLLOW` (a link in a cache must never lead kvc out of it),
/// `O_NONBLOCK` (a FIFO someone named like kvc's state must not hang it)
/// and `O_CLOEXEC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    Read,
    ReadWrite,
    /// Read-write, created with mode 0600 if missing.
    Create,
    /// Read-write, appending, created with mode 0600 if missing.
    Append,
    /// A new file, mode 0600; fails if the name exists.
    CreateNew,
}

/// An open directory: every operation kvc does in a cache goes through its
/// descriptor, relative to it, so a directory renamed or replaced by a
/// symbolic link while kvc works cannot redirect what it writes or
/// deletes.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    /// The path it was opened by, for messages.
    path: PathBuf,
}

fn name_ok(name: &OsStr) -> io::Result<()> {
    // One component: no `/`, not empty, not `.` or `..`.
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain file name",
        ));
    }
    Ok(())
}

impl Dir {
    /// Open the directory at `path` (a path the user gave: followed as
    /// typed).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory `name` inside this one, never through a symbolic
    /// link (`ELOOP`, or `ENOTDIR` for anything that is not a directory).
    pub(crate) fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        name_ok(name)?;
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: self.path.join(name),
        })
    }

    /// Create the directory `name` (mode `mode`); an existing entry of that
    /// name is left as it is (`Ok(false)`), whatever it is: the caller opens
    /// it with [`open_dir`](Dir::open_dir), which refuses anything but a
    /// directory.
    pub fn create_dir(&self, name: &OsStr, mode: u32) -> io::Result<bool> {
        name_ok(name)?;
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Open the file `name` in this directory (see [`Open`]); never
    /// follows a symbolic link.
    pub(crate) fn open_file(&self, name: &OsStr, how: Open) -> io::Result<File> {
        name_ok(name)?;
        let base = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let flags = match how {
            Open::Read => OFlags::RDONLY,
            Open::ReadWrite => OFlags::RDWR,
            Open::Create => OFlags::RDWR | OFlags::CREATE,
            Open::Append => OFlags::RDWR | OFlags::APPEND | OFlags::CREATE,
            Open::CreateNew => OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
        };
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            base | flags,
            Mode::from_raw_mode(crate::fsutil::FILE_MODE),
        )?;
        Ok(File::from(fd))
    }

    /// `lstat` of `name` in this directory.
    pub fn stat(&self, name: &OsStr) -> io::Result<Meta> {
        name_ok(name)?;
        let st = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(Meta::of_stat(&st))
    }

    /// `fstat` of the directory itself.
    pub fn meta(&self) -> io::Result<Meta> {
        Meta::of_file(&self.fd)
    }

    /// Remove the file `name`.
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Remove the empty directory `name`.
    pub(crate) fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    /// A new name `to_name` in `to` for the file `name` (a hard link);
    /// fails with `AlreadyExists` when the new name is taken.
    pub fn link(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        name_ok(to_name)?;
        Ok(rustix::fs::linkat(
            &self.fd,
            name,
            &to.fd,
            to_name,
            AtFlags::empty(),
        )?)
    }

    /// Rename `name` to `to_name` in `to`, failing with `AlreadyExists`
    /// rather than replacing a file there (`RENAME_NOREPLACE`).
    pub(crate) fn rename_new(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        name_ok(to_name)?;
        Ok(rustix::fs::renameat_with(
            &self.fd,
            name,
            &to.fd,
            to_name,
            RenameFlags::NOREPLACE,
        )?)
    }

    /// Rename `name` over `to_name` in this directory (replacing it).
    pub fn rename(&self, name: &OsStr, to_name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        name_ok(to_name)?;
        Ok(rustix::fs::renameat(&self.fd, name, &self.fd, to_name)?)
    }

    /// Swap the names `a` and `b` atomically (`RENAME_EXCHANGE`).
    pub(crate) fn exchange(&self, a: &OsStr, b: &OsStr) -> io::Result<()> {
        name_ok(a)?;
        name_ok(b)?;
        Ok(rustix::fs::renameat_with(
            &self.fd,
            a,
            &self.fd,
            b,
            RenameFlags::EXCHANGE,
        )?)
    }

    /// fsync the directory: makes the creations, renames and unlinks in it
    /// durable.
    pub fn sync(&self) -> io::Result<()> {
        #[cfg(test)]
        if tests::FAIL_DIR_SYNC.with(|f| f.replace(false)) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// The names in this directory (not `.` and `..`), from a fresh
    /// listing of the descriptor.
    pub fn names(&self) -> io::Result<Vec<std::ffi::OsString>> {
        let fd = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second descriptor of the same directory (`dup`).
    pub(crate) fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Open `path` to read: never blocking on a FIFO (`O_NONBLOCK`, which
/// changes nothing for a regular file), and without following a symbolic
/// link unless `follow` (a path the user typed is followed as typed; a
/// name found in a cache never is). Callers check the type of what they
/// opened with `fstat` before reading.
pub(crate) fn open_read(path: &Path, follow: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

/// [`open_read`] of `name` relative to the directory `dir`, never following
/// a link: what a scan does per file. Relative to a descriptor the kernel
/// looks up one component instead of walking the directory's path again
/// (`path_openat`/`link_path_walk` were a tenth of a listing's profile).
pub(crate) fn open_read_at(dir: &impl AsFd, name: &str) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// `lstat` of `name` relative to the directory `dir`.
pub(crate) fn lstat_at(dir: &impl AsFd, name: &OsStr) -> io::Result<rustix::fs::Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// Open the directory `path` for reading its entries and for opening
/// files relative to it.
pub(crate) fn open_dir_fd(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// [`open_read`] read-write (a trailer rewritten in place).
pub(crate) fn open_read_write(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// The error `O_NOFOLLOW` gives on a symbolic link.
pub(crate) fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// The error `O_DIRECTORY` gives on something that is not a directory
/// (with `O_NOFOLLOW`, also on a link to one).
pub fn is_not_a_directory(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTDIR)
}

/// The error of a move across file systems.
pub(crate) fn is_cross_device(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EXDEV)
}

/// The error of an operation not permitted (`chown` by a non-root user).
pub(crate) fn is_not_permitted(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EPERM)
}

/// Take an exclusive `flock` on `file` if it is free: `Ok(false)` when
/// another descriptor holds it.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Random bytes from the kernel, for temp names no earlier process can
/// have left behind.
pub(crate) fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        filled +=
            rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    Ok(())
}

/// Tell the kernel `len` bytes at `off` are read once, front to back, so
/// readahead ramps up at once. Only a hint: failure changes nothing.
pub(crate) fn advise_sequential(file: &File, off: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        off,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::Sequential,
    );
}

/// Start writing `len` bytes at `off` of `file` back to the disk, without
/// waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): the disk works on a
/// file while the rest of it is still being written, and the `fsync` that
/// makes it durable before its rename has little left to wait for. Only a
/// hint: durability still comes from `fsync`, and failure changes nothing.
pub(crate) fn start_writeback(file: &File, off: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (libc::off64_t::try_from(off), libc::off64_t::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range reads no memory of ours: it takes the
    // descriptor of a file this function borrows (open for the whole
    // call), two integers and flags; its only effect is to queue writeback
    // of that file's dirty pages. rustix has no wrapper for it.
    let _ =
        unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Is this error a filesystem saying "I can't do that operation" (as
/// opposed to a real failure)?
pub(crate) fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::ENOTTY | libc::EINVAL | libc::EXDEV | libc::ENOSYS)
    )
}

/// Share `src`'s extents with the empty `dst` (`FICLONE`). `Ok(false)`
/// where the filesystem cannot.
pub(crate) fn reflink(dst: &File, src: &File) -> io::Result<bool> {
    match rustix::fs::ioctl_ficlone(dst, src) {
        Ok(()) => Ok(true),
        Err(e) => {
            let e = io::Error::from(e);
            if unsupported(&e) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// `copy_file_range` of up to `len` bytes from `src` at `off` to the same
/// offset of `dst`. `Ok(None)` where the kernel or filesystem refuses it
/// (the caller copies through a buffer); `Ok(Some(0))` at the end of `src`.
pub(crate) fn copy_range(
    src: &File,
    dst: &File,
    off: u64,
    len: usize,
) -> io::Result<Option<usize>> {
    let (mut off_in, mut off_out) = (off, off);
    loop {
        match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), len) {
            Ok(n) => return Ok(Some(n)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                let e = io::Error::from(e);
                return if unsupported(&e) { Ok(None) } else { Err(e) };
            }
        }
    }
}

/// If `fd` is a pipe, ask the kernel to let it hold `want` bytes. Best
/// effort: a refusal (a lower limit, the per-user pipe quota) leaves the
/// pipe as it was. Never shrinks a pipe.
pub fn grow_pipe(fd: BorrowedFd<'_>, want: usize) {
    if Meta::of_file(&fd).map_or(true, |m| m.kind != Kind::Other) {
        return;
    }
    if let Ok(now) = rustix::pipe::fcntl_getpipe_size(fd) {
        if now < want {
            let _ = rustix::pipe::fcntl_setpipe_size(fd, want);
        }
    }
}

/// The size the kernel gives a pipe now.
#[cfg(test)]
pub(crate) fn pipe_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_getpipe_size(fd)?)
}

/// Why `OpenFiles` cannot tell whether a file is held open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unseen {
    /// `/proc` could not be read: not Linux, or not mounted (a chroot).
    NoProc,
    /// The file belongs to another user, and only root can look at the
    /// descriptors of another user's processes (or even see them, with
    /// `hidepid`).
    OtherUser,
    /// This many processes that may have written the file could not be
    /// inspected (their descriptors are closed to us: a non-dumpable
    /// process such as ssh-agent, or a security module's policy).
    Processes(usize),
}

impl Unseen {
    pub fn describe(self) -> String {
        match self {
            Unseen::NoProc => {
                "/proc cannot be read here, so kvc cannot tell whether a process holds it open"
                    .into()
            }
            Unseen::OtherUser => {
                "it belongs to another user, whose open files only root can inspect".into()
            }
            Unseen::Processes(1) => "could not inspect 1 process that may hold it open".into(),
            Unseen::Processes(n) => {
                format!("could not inspect {n} processes that may hold it open")
            }
        }
    }
}

/// What [`OpenFiles`] knows about one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holding {
    /// A process holds it open.
    Open,
    /// Every process that could be writing it was inspected, and none
    /// holds it open.
    NotOpen,
    Unknown(Unseen),
}

/// A process whose descriptors could not be read.
#[derive(Clone, Debug)]
struct Uninspected {
    /// Real, effective, saved and file-system uid, when `status` was readable.
    uids: Option<[u32; 4]>,
}

/// The files every process on this host holds open, from one pass over
/// `/proc/<pid>/fd` (Linux): build it once per run, then ask it about each
/// file, rather than walking `/proc` per file.
///
/// Files are compared by `(st_dev, st_ino)` from `stat` of each
/// `/proc/<pid>/fd/<n>` (which follows the descriptor to the open file
/// itself), not by the path `readlink` gives: that path is spelled from the
/// process's root and mount namespace, and goes stale when the file is
/// renamed.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenFiles {
    held: HashSet<(u64, u64)>,
    /// `/proc` was listed, and is a procfs that shows this process.
    listed: bool,
    uninspected: Vec<Uninspected>,
    euid: u32,
}

impl OpenFiles {
    /// Walk `/proc` now.
    pub fn scan() -> OpenFiles {
        OpenFiles::scan_proc(Path::new("/proc"))
    }

    /// Knows nothing: every file's holders are unknown.
    pub fn unknown() -> OpenFiles {
        OpenFiles {
            euid: euid(),
            ..OpenFiles::default()
        }
    }

    fn scan_proc(proc: &Path) -> OpenFiles {
        let mut out = OpenFiles::unknown();
        // An empty /proc directory (not mounted) or something that is not
        // Linux's procfs would list no process and so "prove" that nothing
        // is open: require our own descriptors to be visible first.
        if fs::read_dir(proc.join("self/fd")).is_err() {
            return out;
        }
        let Ok(entries) = fs::read_dir(proc) else {
            return out;
        };
        for entry in entries {
            // A listing cut short may have missed the one process that
            // matters: then nothing is known.
            let Ok(entry) = entry else {
                return OpenFiles::unknown();
            };
            let name = entry.file_name();
            if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
                continue;
            }
            let dir = entry.path();
            let fds = match fs::read_dir(dir.join("fd")) {
                Ok(fds) => fds,
                // Exited since /proc was listed: it holds nothing now.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => {
                    out.uninspected.push(Uninspected {
                        uids: status_uids(&dir),
                    });
                    continue;
                }
            };
            // Descriptors closed meanwhile fail to stat and are skipped:
            // they are no longer open. Threads share their process's table
            // (pthreads create them with CLONE_FILES).
            for fd in fds.flatten() {
                if let Ok(m) = fs::metadata(fd.path()) {
                    out.held.insert((m.dev(), m.ino()));
                }
            }
        }
        out.listed = true;
        out
    }

    /// Does any process hold the file `meta` describes open?
    ///
    /// A temp file's writer created it, so it runs as the file's owner
    /// (`open` gives a new file the creator's file-system uid). Processes of
    /// other users may hold it open too, to read it, but removing a file
    /// does not disturb a reader; only the writer's final `rename` fails.
    /// So the answer is known when the file was seen open, or when every
    /// process that runs as its owner could be inspected.
    pub fn holding(&self, meta: &Metadata) -> Holding {
        if !self.listed {
            return Holding::Unknown(Unseen::NoProc);
        }
        if self.held.contains(&(meta.dev(), meta.ino())) {
            return Holding::Open;
        }
        let owner = meta.uid();
        if self.euid != 0 && owner != self.euid {
            return Holding::Unknown(Unseen::OtherUser);
        }
        let n = self
            .uninspected
            .iter()
            .filter(|p| p.uids.is_none_or(|ids| ids.contains(&owner)))
            .count();
        if n > 0 {
            Holding::Unknown(Unseen::Processes(n))
        } else {
            Holding::NotOpen
        }
    }
}

/// The four uids on the `Uid:` line of `/proc/<pid>/status`, which anyone
/// may read (unlike `fd/`).
fn status_uids(dir: &Path) -> Option<[u32; 4]> {
    let status = fs::read_to_string(dir.join("status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|s| s.parse::<u32>().ok());
    Some([ids.next()??, ids.next()??, ids.next()??, ids.next()??])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Makes the next [`Dir::sync`] on this thread fail with EIO: the
        /// one fault the unit tests inject (a disk that fails an fsync
        /// cannot be had on demand).
        pub(crate) static FAIL_DIR_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    use std::fs::File;

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }

    #[test]
    fn sees_a_file_this_process_holds_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        let file = File::create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        let open = OpenFiles::scan();
        assert!(open.listed, "this test needs Linux's /proc");
        assert_eq!(open.holding(&meta), Holding::Open);
        drop(file);
        let open = OpenFiles::scan();
        // Processes of other users may be hidden from a non-root test run;
        // the file is ours, so they do not matter.
        assert!(matches!(
            open.holding(&meta),
            Holding::NotOpen | Holding::Unknown(Unseen::Processes(_))
        ));
    }

    #[test]
    fn uninspected_processes_matter_only_when_they_run_as_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        let me = meta.uid();
        let with = |uninspected: Vec<Uninspected>| OpenFiles {
            held: HashSet::new(),
            listed: true,
            uninspected,
            euid: me,
        };
        assert_eq!(with(vec![]).holding(&meta), Holding::NotOpen);
        let other = if me == 1 { 2 } else { 1 };
        let stranger = Uninspected {
            uids: Some([other; 4]),
        };
        assert_eq!(with(vec![stranger]).holding(&meta), Holding::NotOpen);
        // A setuid program that kept our uid as its real uid may be ours.
        let setuid = Uninspected {
            uids: Some([me, other, other, other]),
        };
        let unknown_uid = Uninspected { uids: None };
        assert_eq!(
            with(vec![setuid, unknown_uid]).holding(&meta),
            Holding::Unknown(Unseen::Processes(2))
        );
        assert_eq!(
            OpenFiles::unknown().holding(&meta),
            Holding::Unknown(Unseen::NoProc)
        );
        // Not root, and the file is someone else's.
        let mut o = with(vec![]);
        o.euid = other;
        assert_eq!(o.holding(&meta), Holding::Unknown(Unseen::OtherUser));
    }

    #[test]
    fn a_proc_that_is_not_procfs_knows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("1")).unwrap();
        let open = OpenFiles::scan_proc(dir.path());
        let meta = fs::metadata(dir.path()).unwrap();
        assert_eq!(open.holding(&meta), Holding::Unknown(Unseen::NoProc));
    }

    #[test]
    fn reads_the_uid_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("status"),
            "Name:\tsleep\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t5\t5\t5\n",
        )
        .unwrap();
        assert_eq!(status_uids(dir.path()), Some([1000, 1001, 1002, 1003]));
        fs::write(dir.path().join("status"), "Uid:\t1000\n").unwrap();
        assert_eq!(status_uids(dir.path()), None);
    }
}
