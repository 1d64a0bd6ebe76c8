//! What an interrupted multipart upload leaves for the next push to
//! resume: `<cache>/.kvc/uploads/<name>.json`, one file per upload, 0600,
//! written temp-then-rename after each part.
//!
//! S3 keeps the uploaded parts until the upload is completed or aborted,
//! but it cannot say whose they are: another host pushing the same key has
//! an upload of its own, of bytes that may differ in their header. So the
//! upload id, the parts done and what the upload is of (the digests, the
//! header the first part carries, the record it was created with) are
//! kept beside the cache that pushed. A push resumes only an upload of the
//! same bytes; anything else (the file changed, the remote forgot the
//! upload, the state is unreadable) starts a new one. The state is a
//! convenience: losing it costs a fresh upload, never a wrong object,
//! because the remote's record and a pull's checks do not depend on it.
//! It lives beside the journal, outside the lock: a push reads the cache
//! and holds its lock only to journal.

use crate::fsutil::{AtomicFile, DIR_MODE};
use crate::session::STATE_DIR;
use crate::sys::{Dir, Open};
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::Path;

const UPLOADS_DIR: &str = "uploads";
/// A state file is a few KiB (a part id is an ETag); more is not one.
const MAX_STATE_LEN: u64 = 4 << 20;

/// One multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadState {
    /// The remote URL and the object the upload completes.
    pub remote: String,
    pub object: String,
    pub upload_id: String,
    pub part_size: u64,
    pub size: u64,
    pub blake3: String,
    pub content_blake3: String,
    /// The header the first part carries (hex).
    pub raw_header: String,
    /// Part ids (ETags) of the parts done, in order from the first.
    pub parts: Vec<String>,
    /// Unix seconds.
    pub started: u64,
}

/// The file name of the state of `object` on `remote`.
fn state_name(remote: &str, object: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(remote.as_bytes());
    h.update(b"\0");
    h.update(object.as_bytes());
    format!("{}.json", &h.finalize().to_hex()[..32])
}

/// `.kvc/uploads/` of `cache`, created (0700) when asked; never through a
/// symbolic link.
fn uploads_dir(cache: &Path, create: bool) -> io::Result<Option<Dir>> {
    let d = Dir::open(cache)?;
    if create {
        d.create_dir(OsStr::new(STATE_DIR), DIR_MODE)?;
    }
    let state = match d.open_dir(OsStr::new(STATE_DIR)) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if create {
        state.create_dir(OsStr::new(UPLOADS_DIR), DIR_MODE)?;
    }
    match state.open_dir(OsStr::new(UPLOADS_DIR)) {
        Ok(u) => Ok(Some(u)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The state of an upload of `object`, if one was left and reads.
pub(crate) fn load(cache: &Path, remote: &str, object: &str) -> Option<UploadState> {
    let dir = uploads_dir(cache, false).ok()??;
    let f = dir
        .open_file(OsStr::new(&state_name(remote, object)), Open::Read)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(MAX_STATE_LEN).read_to_end(&mut bytes).ok()?;
    let s: UploadState = serde_json::from_slice(&bytes).ok()?;
    (s.remote == remote && s.object == object).then_some(s)
}

/// Write the state (temp, fsync, rename).
pub(crate) fn save(cache: &Path, s: &UploadState) -> io::Result<()> {
    let dir = uploads_dir(cache, true)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let mut f = AtomicFile::create_in(&dir, &state_name(&s.remote, &s.object))?;
    f.write_all(&serde_json::to_vec(s).expect("serializes"))?;
    f.commit().map(|_| ())
}

/// Forget the upload of `object` (done, aborted, or not resumable), and
/// `uploads/` itself once empty.
pub(crate) fn remove(cache: &Path, remote: &str, object: &str) {
    let Ok(Some(dir)) = uploads_dir(cache, false) else {
        return;
    };
    let _ = dir.unlink(OsStr::new(&state_name(remote, object)));
    if dir.names().is_ok_and(|n| n.is_empty()) {
        if let Ok(d) = Dir::open(cache) {
            if let Ok(state) = d.open_dir(OsStr::new(STATE_DIR)) {
                let _ = state.remove_dir(OsStr::new(UPLOADS_DIR));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_survives_and_goes() {
        let d = tempfile::tempdir().unwrap();
        let s = UploadState {
            remote: "s3://b-1/p".into(),
            object: "p/flash/x.kv".into(),
            upload_id: "id".into(),
            part_size: 8 << 20,
            size: 100 << 20,
            blake3: "a".repeat(64),
            content_blake3: "b".repeat(64),
            raw_header: "00".repeat(48),
            parts: vec!["\"e1\"".into()],
            started: 5,
        };
        assert_eq!(load(d.path(), &s.remote, &s.object), None);
        save(d.path(), &s).unwrap();
        assert_eq!(load(d.path(), &s.remote, &s.object), Some(s.clone()));
        assert_eq!(load(d.path(), "s3://b-1/q", &s.object), None);
        let meta = std::fs::metadata(d.path().join(".kvc/uploads")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        remove(d.path(), &s.remote, &s.object);
        assert_eq!(load(d.path(), &s.remote, &s.object), None);
        assert!(!d.path().join(".kvc/uploads").exists());
        assert!(d.path().join(".kvc").is_dir());
    }
}
