//! The tar grammar of a bundle: the plain POSIX ustar entries export
//! writes, and the only ones import accepts (regular files with a plain
//! top-level name kvc itself writes; headers read raw, with no GNU
//! long-name or pax processing).

use super::*;
use crate::format::checkpoint::Key;
use crate::fsutil::FILE_MODE;
use std::io::{self, Read, Write};

/// tar's block: every entry's data is padded with zeros to a multiple.
pub(super) const TAR_BLOCK: u64 = 512;

/// A ustar header for one of our entries: no owner names (they would leak
/// the exporting account), mode 0600 (the files hold prompts).
pub(super) fn tar_header(name: &str, size: u64, mtime: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(FILE_MODE);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

pub(super) fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    mtime: u64,
) -> io::Result<()> {
    b.append(&tar_header(name, bytes.len() as u64, mtime)?, bytes)
}

/// What an entry's name makes it.
pub(super) enum EntryName {
    Data(Key),
    /// The record of the data entry with this name.
    Meta(String),
    Manifest,
    Bad(String),
}

/// Only plain names at the top level: no `/` at all (so no absolute path,
/// no `..` component, no nesting), and only names kvc itself writes.
pub(super) fn classify_entry(raw: &[u8]) -> EntryName {
    if raw.first() == Some(&b'/') {
        return EntryName::Bad("absolute path; only plain file names are accepted".into());
    }
    if raw.split(|&b| b == b'/').any(|c| c == b"..") {
        return EntryName::Bad(
            "path with a `..` component; only plain file names are accepted".into(),
        );
    }
    if raw.contains(&b'/') {
        return EntryName::Bad("nested path; only top-level file names are accepted".into());
    }
    let Ok(name) = std::str::from_utf8(raw) else {
        return EntryName::Bad("not a checkpoint name".into());
    };
    if name == MANIFEST_NAME {
        return EntryName::Manifest;
    }
    if let Some(data) = name.strip_suffix(META_SUFFIX) {
        if Key::from_file_name(data).is_some() {
            return EntryName::Meta(data.to_string());
        }
    }
    match Key::from_file_name(name) {
        Some(k) => EntryName::Data(k),
        None => EntryName::Bad("not a checkpoint name (<40 hex digits>.kv or sysprompt.kv)".into()),
    }
}

pub(super) fn type_problem(t: tar::EntryType) -> Option<&'static str> {
    use tar::EntryType as T;
    Some(match t {
        T::Regular => return None,
        T::Symlink => "symbolic link; only regular files are imported",
        T::Link => "hard link; only regular files are imported",
        T::Char => "character device; only regular files are imported",
        T::Block => "block device; only regular files are imported",
        T::Directory => "directory; only top-level regular files are imported",
        T::Fifo => "FIFO; only regular files are imported",
        _ => "unsupported entry type; only regular files are imported",
    })
}

/// Read exactly `buf.len()` bytes of an entry; `Ok(n < len)` on a cut.
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_plain_top_level_checkpoint_names() {
        let k = "d78becaf80c3dd16ecec443553e5305b2557acb3";
        assert!(matches!(
            classify_entry(format!("{k}.kv").as_bytes()),
            EntryName::Data(_)
        ));
        assert!(matches!(
            classify_entry(b"sysprompt.kv"),
            EntryName::Data(Key::Sysprompt)
        ));
        assert!(matches!(
            classify_entry(format!("{k}.kv{META_SUFFIX}").as_bytes()),
            EntryName::Meta(n) if n == format!("{k}.kv")
        ));
        assert!(matches!(
            classify_entry(b"MANIFEST.json"),
            EntryName::Manifest
        ));
        for bad in [
            format!("/{k}.kv"),
            format!("../{k}.kv"),
            format!("a/../{k}.kv"),
            format!("sub/{k}.kv"),
            format!("./{k}.kv"),
            "notes.txt".into(),
            "..".into(),
            format!("{k}.kv.tmp.1"),
        ] {
            assert!(
                matches!(classify_entry(bad.as_bytes()), EntryName::Bad(_)),
                "{bad}"
            );
        }
        assert!(matches!(classify_entry(b"\xff.kv"), EntryName::Bad(_)));
    }
}
