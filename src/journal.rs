//! The operation journal: one record per file kvc deleted, installed or
//! rewrote, appended to `<dir>/.kvc/journal`.
//!
//! Framing: one record per line, `<crc32 as 8 hex digits> <json>\n`, the CRC
//! taken over the JSON bytes. A line without its newline or whose CRC does
//! not match (power lost mid-append, a torn sector) is skipped on read and
//! counted, never fatal, as in a CRC-framed append log. The text framing
//! keeps the journal readable with `grep` and `tail`.

use crate::error::{Error, Result};
use crate::fsutil::{create_private_dir_all, FILE_MODE};
use crate::scan::STATE_DIR;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const JOURNAL_FILE: &str = "journal";

/// One journal record. New fields must be optional so old journals read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix seconds.
    pub time: u64,
    /// `evict`, `rm`, `gc`, `import`, `replace`, `trailer-set`, …
    pub op: String,
    /// The checkpoint key, or the file name for temp files.
    pub key: String,
    pub bytes: u64,
    #[serde(default)]
    pub tokens: u32,
    #[serde(default)]
    pub hits: u32,
    /// Reason name of the checkpoint's header.
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub policy: Option<String>,
    /// Why kvc did it: `budget`, `age`, `requested`, `stale temp`, …
    pub why: String,
}

pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR).join(JOURNAL_FILE)
}

fn frame(rec: &Record) -> Vec<u8> {
    let json = serde_json::to_vec(rec).expect("records serialize");
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

/// Append records durably (one write, then fsync). If the journal ends in a
/// torn record, a newline is written first so the new records stay whole.
/// Callers hold the directory lock.
pub fn append(dir: &Path, records: &[Record]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let path = journal_path(dir);
    let state = path.parent().expect("journal has a parent");
    create_private_dir_all(state).map_err(|e| Error::io(state, e))?;
    let io = |e| Error::io(&path, e);
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut buf = Vec::new();
    if len > 0 {
        let mut last = [0u8; 1];
        f.read_exact_at(&mut last, len - 1).map_err(io)?;
        if last[0] != b'\n' {
            buf.push(b'\n');
        }
    }
    for r in records {
        buf.extend_from_slice(&frame(r));
    }
    f.write_all(&buf).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// What reading a journal found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JournalRead {
    pub records: Vec<Record>,
    /// Lines skipped: torn or failing their checksum.
    pub damaged: usize,
}

/// Parse journal bytes.
pub fn parse(bytes: &[u8]) -> JournalRead {
    let mut out = JournalRead::default();
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_last = lines.peek().is_none();
        if line.is_empty() {
            continue;
        }
        // The last piece has no newline: a torn append.
        if is_last {
            out.damaged += 1;
            break;
        }
        match parse_line(line) {
            Some(r) => out.records.push(r),
            None => out.damaged += 1,
        }
    }
    out
}

fn parse_line(line: &[u8]) -> Option<Record> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    if line[8] != b' ' {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// Read the journal of `dir`; a directory without one has an empty journal.
pub fn read(dir: &Path) -> Result<JournalRead> {
    let path = journal_path(dir);
    match fs::read(&path) {
        Ok(b) => Ok(parse(&b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(JournalRead::default()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str) -> Record {
        Record {
            time: 1,
            op: "evict".into(),
            key: key.into(),
            bytes: 10,
            tokens: 2,
            hits: 0,
            reason: "cold".into(),
            score: Some(0.5),
            policy: Some("ds4".into()),
            why: "budget".into(),
        }
    }

    #[test]
    fn torn_tail_and_bad_checksums_are_skipped_not_fatal() {
        let mut b = frame(&rec("a"));
        let mut bad = frame(&rec("b"));
        bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
        b.extend_from_slice(&bad);
        b.extend_from_slice(&frame(&rec("c")));
        let torn = frame(&rec("d"));
        b.extend_from_slice(&torn[..torn.len() / 2]);
        let r = parse(&b);
        let keys: Vec<_> = r.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(r.damaged, 2);
    }

    #[test]
    fn append_after_a_torn_tail_keeps_new_records_whole() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &[rec("a")]).unwrap();
        let p = journal_path(dir.path());
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"0000dead {\"time\":").unwrap();
        append(dir.path(), &[rec("b")]).unwrap();
        let r = read(dir.path()).unwrap();
        let keys: Vec<_> = r.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(r.damaged, 1);
    }
}
