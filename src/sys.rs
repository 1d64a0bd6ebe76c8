//! What kvc asks the system about other processes, in one module: is a pid
//! running. It decides whether a writer's temp file belongs to a save in
//! progress (FORMAT.md §2), so it errs on the side of "yes, maybe": a wrong
//! "no" lets `kvc gc` delete a file an engine is about to rename into place.

use std::io;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }
}
