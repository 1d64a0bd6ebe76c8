//! What kvc asks the system about other processes, in one module: is a pid
//! running, and which files do processes hold open. Both decide whether a
//! writer's temp file belongs to a save in progress (FORMAT.md §2), so they
//! err on the side of "yes, maybe": a wrong "no" lets `kvc gc` delete a file
//! an engine is about to rename into place.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Is process `pid` alive on this host? A pid we may not signal (EPERM)
/// exists, so it counts as alive: never touch a temp file whose writer
/// might still be writing it.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This process's effective uid.
fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Why [`OpenFiles`] cannot tell whether a file is held open.
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
pub enum Holding {
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
pub struct OpenFiles {
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
mod tests {
    use super::*;
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
