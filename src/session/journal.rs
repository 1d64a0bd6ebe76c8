//! The operation journal: one record per file kvc deleted, installed,
//! moved or rewrote, appended to `<dir>/.kvc/journal` by the write session
//! that did it.
//!
//! Framing: one record per line, `<crc32 as 8 hex digits> <json>\n`, the CRC
//! taken over the JSON bytes. A line without its newline or whose CRC does
//! not match (power lost mid-append, a torn sector) is skipped on read and
//! counted, never fatal, as in a CRC-framed append log. The text framing
//! keeps the journal readable with `grep` and `tail`.
//!
//! Every string field is sanitized when the record is framed: a key can be
//! a file name (a temp file's name is whatever its writer chose), and the
//! journal is read by people and by `kvc log`. Reading is bounded: only a
//! regular file, opened without following a link, and at most
//! `MAX_READ` bytes of it (the newest).

use super::lock::{open_state, open_state_file};
use crate::error::{Error, Result};
use crate::format::Header;
use crate::policy::Policy;
use crate::sys::{Dir, Open};
use crate::text::sanitize_line;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use super::lock::STATE_DIR;

pub const JOURNAL_FILE: &str = "journal";

/// What `kvc log` reads of a journal at most: the newest 16 MiB, some
/// 60,000 records (a cron evicting every ten minutes writes a few a run).
/// Beyond that the oldest records are skipped, and the report says how many
/// bytes were. A journal is rotated by moving it away (`mv .kvc/journal
/// .kvc/journal.1`): kvc starts a new one.
pub(crate) const MAX_READ: u64 = 16 << 20;

/// What kvc did, as the journal names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Evict,
    Rm,
    Gc,
    Quarantine,
    Import,
    Replace,
    TrailerSet,
    TrailerPrune,
    TrailerStrip,
    /// `kvc pull` installed a checkpoint from a remote (a replacement is
    /// `Replace`, as for an import).
    Pull,
    /// `kvc push` uploaded a checkpoint to a remote: the cache is
    /// unchanged; the record says what left the machine.
    Push,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Evict,
        Op::Rm,
        Op::Gc,
        Op::Quarantine,
        Op::Import,
        Op::Replace,
        Op::TrailerSet,
        Op::TrailerPrune,
        Op::TrailerStrip,
        Op::Pull,
        Op::Push,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Evict => "evict",
            Op::Rm => "rm",
            Op::Gc => "gc",
            Op::Quarantine => "quarantine",
            Op::Import => "import",
            Op::Replace => "replace",
            Op::TrailerSet => "trailer-set",
            Op::TrailerPrune => "trailer-prune",
            Op::TrailerStrip => "trailer-strip",
            Op::Pull => "pull",
            Op::Push => "push",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Does a record of this op take its bytes out of the cache (`kvc log`
    /// counts them as freed)? An import adds bytes; a rewrite changes a
    /// trailer in place.
    pub fn frees(self) -> bool {
        matches!(self, Op::Evict | Op::Rm | Op::Gc | Op::Quarantine)
    }
}

/// One journal record. New fields must be optional so old journals read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix seconds, from the session's clock (`--now` when given).
    pub time: u64,
    /// [`Op::name`]: `evict`, `rm`, `gc`, `import`, `replace`, `trailer-set`, …
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

impl Record {
    /// The one constructor of a record kvc writes: `name` is the key or,
    /// for a file without one, its name (untrusted: sanitized when the
    /// record is written, as every field is).
    pub fn new(time: u64, op: Op, name: &str, bytes: u64, why: impl Into<String>) -> Record {
        Record {
            time,
            op: op.name().into(),
            key: name.into(),
            bytes,
            tokens: 0,
            hits: 0,
            reason: String::new(),
            score: None,
            policy: None,
            why: why.into(),
        }
    }

    /// Tokens, hits and reason from the checkpoint's header, when it had
    /// one.
    pub(crate) fn with_header(mut self, h: Option<&Header>) -> Record {
        if let Some(h) = h {
            self.tokens = h.tokens;
            self.hits = h.hits;
            self.reason = h.reason.name().into_owned();
        }
        self
    }

    /// The score the eviction order gave it, and the policy.
    pub(crate) fn with_score(mut self, score: Option<f64>, policy: Policy) -> Record {
        self.score = score;
        self.policy = Some(policy.name().into());
        self
    }

    /// Every string sanitized: no control character, bidi control or line
    /// separator reaches the journal, whatever a file was called.
    fn sanitized(&self) -> Record {
        let s = |t: &str| sanitize_line(t.as_bytes());
        Record {
            op: s(&self.op),
            key: s(&self.key),
            reason: s(&self.reason),
            policy: self.policy.as_deref().map(s),
            why: s(&self.why),
            ..self.clone()
        }
    }
}

pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR).join(JOURNAL_FILE)
}

pub(crate) fn frame(rec: &Record) -> Vec<u8> {
    let json = serde_json::to_vec(&rec.sanitized()).expect("records serialize");
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

/// Open `.kvc/journal` of a locked directory for appending.
pub(crate) fn open_for_append(state: &Dir) -> Result<File> {
    Ok(open_state_file(state, JOURNAL_FILE, Open::Append)?.expect("created"))
}

/// Append records durably (one write, then fsync). If the journal ends in
/// a torn record, a newline is written first so the new records stay
/// whole. The caller holds the directory lock.
pub(crate) fn append_to(f: &mut File, path: &Path, records: &[Record]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let io = |e| Error::io(path, e);
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
    /// Bytes at the start of a journal larger than `MAX_READ` that were
    /// not read.
    pub skipped_bytes: u64,
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

/// Read the journal of `dir`; a directory without one has an empty
/// journal. Never follows a link, reads only a regular file (a FIFO or a
/// device named `journal` is refused without being opened), and at most
/// its newest `MAX_READ` bytes. Creates nothing.
pub fn read(dir: &Path) -> Result<JournalRead> {
    let d = Dir::open(dir).map_err(|e| Error::io(dir, e))?;
    let Some(state) = open_state(&d, false)? else {
        return Ok(JournalRead::default());
    };
    let path = state.path().join(JOURNAL_FILE);
    let Some(f) = open_state_file(&state, JOURNAL_FILE, Open::Read)? else {
        return Ok(JournalRead::default());
    };
    let io = |e| Error::io(&path, e);
    let size = f.metadata().map_err(io)?.len();
    let start = size.saturating_sub(MAX_READ);
    let mut bytes = vec![0u8; (size - start) as usize];
    let n = read_fully_at(&f, &mut bytes, start).map_err(io)?;
    // A journal that shrank while being read is read as far as it goes.
    bytes.truncate(n);
    let mut skipped = start;
    if start > 0 {
        // The first line read is cut: skip it, it is not damage.
        let cut = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |i| i + 1);
        bytes.drain(..cut);
        skipped += cut as u64;
    }
    let mut out = parse(&bytes);
    out.skipped_bytes = skipped;
    Ok(out)
}

fn read_fully_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
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

    fn rec(key: &str) -> Record {
        Record::new(1, Op::Evict, key, 10, "budget")
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
    fn every_string_is_sanitized_when_framed() {
        let r = Record::new(1, Op::Gc, "x.kv.tmp.\u{1b}[2J\u{202e}\n", 3, "why\u{2028}")
            .with_score(Some(1.0), Policy::Ds4);
        let back = parse(&frame(&r)).records.remove(0);
        assert_eq!(back.key, "x.kv.tmp.\\e[2J\\u{202e}\\n");
        assert_eq!(back.why, "why\\u{2028}");
        assert_eq!(back.policy.as_deref(), Some("ds4"));
    }

    #[test]
    fn a_large_journal_is_read_from_its_newest_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_DIR);
        std::fs::create_dir(&state).unwrap();
        let line = frame(&rec("k"));
        let n = (MAX_READ as usize / line.len()) + 10;
        let mut all = Vec::with_capacity(n * line.len());
        for _ in 0..n {
            all.extend_from_slice(&line);
        }
        std::fs::write(state.join(JOURNAL_FILE), &all).unwrap();
        let r = read(dir.path()).unwrap();
        assert_eq!(r.damaged, 0);
        assert!(r.skipped_bytes > 0 && r.skipped_bytes.is_multiple_of(line.len() as u64));
        assert_eq!(
            r.records.len() as u64 * line.len() as u64 + r.skipped_bytes,
            all.len() as u64
        );
    }
}
