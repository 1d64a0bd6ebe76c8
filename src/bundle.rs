//! Bundles: checkpoints moved between machines as one integrity-checked
//! tar stream (`kvc export`, `kvc import`).
//!
//! # Layout
//!
//! A bundle is a plain POSIX ustar stream that GNU tar lists and extracts:
//!
//! ```text
//! <key>.kv                      the checkpoint, byte for byte
//! <key>.kv.kvc-meta.json        its digest record (EntryRecord)
//! <key2>.kv
//! <key2>.kv.kvc-meta.json
//! ...
//! MANIFEST.json                 kvc version, export time, every entry
//! ```
//!
//! Why the digest record *follows* each file instead of preceding it: the
//! BLAKE3 digest is known only after the last byte was read, and export
//! must not read a file twice (a pipe cannot be rewound, and a 2 GiB file
//! read twice costs twice). So export streams each file once, through the
//! hasher, straight into the tar entry, then writes the record. Import
//! streams each file into a hidden temp file while hashing it, and renames
//! it into place only after the record that follows has confirmed digest
//! and size, and the bytes parsed as a checkpoint of a dialect kvc reads
//! whose content gives it its name (the text's SHA-1, or a ds4-agent
//! session's identity: [`identity::expected_key`], the scan's own rule).
//! Nothing becomes visible under a checkpoint name before every byte of it
//! was checked. Foreign dialects are neither exported nor installed: kvc
//! cannot verify them.
//!
//! The manifest comes last for the same reason, and doubles as the end
//! marker: a stream that ends without it was cut off.
//!
//! # Hostile input
//!
//! Import reads tar headers raw (no GNU long-name or pax processing: those
//! would let a header make the tar reader buffer an unbounded name, and our
//! bundles never need them) and accepts only regular files with a plain
//! checkpoint name at the top level, plus its own record names. It never
//! unpacks with the tar crate: it writes each file itself, under a name it
//! built from the validated key, inside the target directory.

use crate::error::{Error, Result};
use crate::evict;
use crate::format::checkpoint::{self, Defect, Key};
use crate::format::dialect::{
    self, Detected, DialectId, Engine, EngineChoice, Lz4Framing, Lz4Walk, Probe,
};
use crate::format::identity;
use crate::format::trailer::{SessionTitle, TitleError, TitleReader};
use crate::format::{Header, HEADER_LEN, PREFIX_LEN};
use crate::fsutil::{create_private_dir_all, remove_durably, AtomicFile, FILE_MODE};
use crate::journal::{self, Record};
use crate::lock::DirLock;
use crate::policy::Policy;
use crate::resolve;
use crate::scan::{self, classify_name, open_nofollow, Checkpoint, NameKind, ScanOptions};
use crate::text::sanitize_line;
use crate::Reason;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Version of the bundle layout and record schema. Import refuses records
/// of a newer version rather than guess at them.
pub const BUNDLE_VERSION: u32 = 1;
/// Suffix of the digest record that follows each checkpoint entry.
pub const META_SUFFIX: &str = ".kvc-meta.json";
/// The last entry of a bundle.
pub const MANIFEST_NAME: &str = "MANIFEST.json";
/// Bytes moved per read: large enough that syscalls and hashing run in big
/// steps (BLAKE3 vectorises across 1 KiB chunks), small enough that memory
/// stays constant whatever the file sizes.
pub const CHUNK: usize = 256 * 1024;
/// Output buffer, for the small writes (tar headers, records, padding).
/// No larger than a read chunk, so that `BufWriter` passes each whole
/// chunk of file data straight to the output instead of copying it in
/// (measured: a fifth less CPU for an export into a pipe than with 1 MiB).
const OUT_BUFFER: usize = CHUNK;
/// tar's block: every entry's data is padded with zeros to a multiple.
const TAR_BLOCK: u64 = 512;
/// A digest record is a few hundred bytes; anything much larger is not one,
/// and is not read into memory.
pub const MAX_META_LEN: u64 = 64 * 1024;
/// The manifest holds one record per entry (~500 bytes): 64 MiB is over
/// 100 000 checkpoints, and bounds what a hostile stream can make us hold.
pub const MAX_MANIFEST_LEN: u64 = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Records

/// The header fields worth seeing without opening the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderSummary {
    pub reason: String,
    pub reason_code: u8,
    pub quant_bits: u8,
    pub tokens: u32,
    pub hits: u32,
    pub ctx_size: u32,
    pub model_id: u8,
    pub payload_abi: u8,
    pub ext_flags: u8,
    pub created: u64,
    pub last_used: u64,
    pub payload_bytes: u64,
    pub text_bytes: u32,
}

impl HeaderSummary {
    pub fn of(h: &Header, text_len: u32) -> HeaderSummary {
        HeaderSummary {
            reason: h.reason.name().into_owned(),
            reason_code: h.reason.0,
            quant_bits: h.quant_bits,
            tokens: h.tokens,
            hits: h.hits,
            ctx_size: h.ctx_size,
            model_id: h.model_id,
            payload_abi: h.payload_abi,
            ext_flags: h.ext_flags.0,
            created: h.created,
            last_used: h.last_used,
            payload_bytes: h.payload_bytes,
            text_bytes: text_len,
        }
    }
}

/// Whether an entry's bytes may be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryStatus {
    Ok,
    /// The file changed, shrank or failed to read while it was streamed:
    /// the bytes in the bundle are not a consistent copy. Import rejects it.
    Excluded,
}

/// The digest record written after each checkpoint entry (and repeated in
/// the manifest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub bundle: u32,
    /// The tar entry this record is about (`<key>.kv` or `sysprompt.kv`).
    pub file: String,
    pub key: String,
    /// Bytes of the tar entry.
    pub size: u64,
    /// BLAKE3 of the entry's bytes, hex.
    pub blake3: String,
    pub status: EntryStatus,
    /// Why an `excluded` entry is not a consistent copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(default)]
    pub header: Option<HeaderSummary>,
    /// The file's dialect (FORMAT.md §9: `D1`, `D3`, …) as the exporting
    /// directory's engine read it. Informational: import judges the bytes
    /// itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
}

/// A selected checkpoint that is not in the bundle at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub file: String,
    pub key: String,
    pub problem: String,
}

/// The last entry of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub bundle: u32,
    pub kvc_version: String,
    /// Unix seconds.
    pub exported_at: u64,
    /// Every checkpoint entry of the stream, in stream order.
    pub entries: Vec<EntryRecord>,
    /// Selected checkpoints that are not in the stream (vanished, or taken
    /// back out because they changed while being read).
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
}

/// Long work reports its progress here; the library never draws anything.
pub trait Progress {
    /// `total` bytes expected, when known.
    fn begin(&mut self, _total: Option<u64>) {}
    /// An entry starts.
    fn entry(&mut self, _name: &str) {}
    /// `bytes` more were moved.
    fn advance(&mut self, _bytes: u64) {}
    /// Something the user should read before the work goes on (one line;
    /// it is also in the report).
    fn warn(&mut self, _message: &str) {}
    fn finish(&mut self) {}
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

// ---------------------------------------------------------------------------
// One pass over a checkpoint's bytes

/// Bytes at the start of a file that a dialect check may read: the 52-byte
/// prefix, and D13's longer header up to its text (length at 72, text at 76).
const HEAD_LEN: usize = 80;

/// The part of `[from, to)` that a buffer at `off` of `len` bytes covers, as
/// a range of that buffer.
fn overlap(off: u64, len: usize, from: u64, to: u64) -> Option<std::ops::Range<usize>> {
    let end = off.saturating_add(len as u64);
    let (a, b) = (off.max(from), end.min(to));
    (a < b).then(|| (a - off) as usize..(b - off) as usize)
}

/// SHA-1 of a fixed range of a stream.
struct RangeSha1 {
    at: u64,
    len: u64,
    sha: Sha1,
    fed: u64,
}

impl RangeSha1 {
    fn new(at: u64, len: u64) -> RangeSha1 {
        RangeSha1 {
            at,
            len,
            sha: Sha1::new(),
            fed: 0,
        }
    }

    fn feed(&mut self, off: u64, buf: &[u8]) {
        if let Some(r) = overlap(off, buf.len(), self.at, self.at.saturating_add(self.len)) {
            self.fed += r.len() as u64;
            self.sha.update(&buf[r]);
        }
    }

    /// `(at, len, digest)` when every byte of the range passed.
    fn finish(self) -> Option<(u64, u64, [u8; 20])> {
        (self.fed == self.len).then(|| (self.at, self.len, self.sha.finalize().into()))
    }
}

/// Four bytes at a fixed offset of a stream (D14/D15's tail magic).
struct Window {
    at: u64,
    buf: [u8; 4],
    got: usize,
}

impl Window {
    fn feed(&mut self, off: u64, buf: &[u8]) {
        if let Some(r) = overlap(off, buf.len(), self.at, self.at.saturating_add(4)) {
            let into = (off + r.start as u64 - self.at) as usize;
            self.got += r.len();
            self.buf[into..into + r.len()].copy_from_slice(&buf[r]);
        }
    }
}

/// The D8 chunk-framing walk ([`dialect::Lz4Walk`]), fed from a stream.
struct Lz4Feed {
    at: u64,
    len: u64,
    walk: Lz4Walk,
    /// The record being gathered across buffers.
    rec: Vec<u8>,
}

impl Lz4Feed {
    fn feed(&mut self, off: u64, buf: &[u8]) {
        while let Some((rel, n)) = self.walk.need() {
            let base = self.at.saturating_add(rel);
            let from = base.saturating_add(self.rec.len() as u64);
            let Some(r) = overlap(off, buf.len(), from, base.saturating_add(n as u64)) else {
                return;
            };
            self.rec.extend_from_slice(&buf[r]);
            if self.rec.len() < n {
                return;
            }
            let rec = std::mem::take(&mut self.rec);
            self.walk.supply(&rec);
        }
    }
}

/// What a dialect check or a name check may need from a file, gathered as
/// its bytes pass: set up once the prefix is known.
struct Regions {
    text: RangeSha1,
    /// D13's text, after its 72-byte header.
    d13_text: Option<RangeSha1>,
    tail: Window,
    lz4: Option<Lz4Feed>,
    title: Option<TitleReader>,
}

impl Regions {
    /// From the first bytes of a file (at least the 52-byte prefix).
    fn new(head: &[u8]) -> Regions {
        let h = Header::decode(head[..HEADER_LEN].try_into().expect("48"));
        let text_len = u32::from_le_bytes(head[HEADER_LEN..PREFIX_LEN].try_into().expect("4"));
        let d13_text = (h.version == 2 && head.len() >= 76).then(|| {
            let len = u32::from_le_bytes(head[72..76].try_into().expect("4"));
            RangeSha1::new(76, len as u64)
        });
        let payload_at = crate::format::TEXT_OFFSET + text_len as u64;
        Regions {
            text: RangeSha1::new(crate::format::TEXT_OFFSET, text_len as u64),
            d13_text,
            tail: Window {
                at: h.payload_bytes,
                buf: [0; 4],
                got: 0,
            },
            lz4: (h.reserved[0] == dialect::CODEC_LZ4).then(|| Lz4Feed {
                at: payload_at,
                len: h.payload_bytes,
                walk: Lz4Walk::new(h.payload_bytes),
                rec: Vec::new(),
            }),
            title: h
                .ext_flags
                .has_session_title()
                .then(|| TitleReader::new(checkpoint::payload_end(&h, text_len), h.created)),
        }
    }

    fn feed(&mut self, off: u64, buf: &[u8]) {
        self.text.feed(off, buf);
        if let Some(d) = self.d13_text.as_mut() {
            d.feed(off, buf);
        }
        self.tail.feed(off, buf);
        if let Some(l) = self.lz4.as_mut() {
            l.feed(off, buf);
        }
        if let Some(t) = self.title.as_mut() {
            t.feed(off, buf);
        }
    }
}

/// What [`dialect::detect`] may read of a file, as a stream captured it:
/// the first [`HEAD_LEN`] bytes, the tail magic, the SHA-1 of the text
/// ranges and the chunk-framing walk. Anything else reads as missing.
#[derive(Clone, Debug)]
struct Streamed {
    size: u64,
    head: Vec<u8>,
    tail: Option<(u64, [u8; 4])>,
    sha1s: Vec<(u64, u64, [u8; 20])>,
    lz4: Option<(u64, u64, std::result::Result<Lz4Framing, String>)>,
}

impl Probe for Streamed {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> bool {
        let end = off.saturating_add(buf.len() as u64);
        if end <= self.head.len() as u64 {
            buf.copy_from_slice(&self.head[off as usize..end as usize]);
            return true;
        }
        match self.tail {
            Some((at, t)) if off >= at && end <= at + 4 => {
                buf.copy_from_slice(&t[(off - at) as usize..(end - at) as usize]);
                true
            }
            _ => false,
        }
    }
    fn sha1_at(&self, off: u64, len: u64) -> Option<[u8; 20]> {
        self.sha1s
            .iter()
            .find(|(a, l, _)| (*a, *l) == (off, len))
            .map(|s| s.2)
    }
    fn lz4_framing(&self, at: u64, len: u64) -> std::result::Result<Lz4Framing, String> {
        match &self.lz4 {
            Some((a, l, r)) if (*a, *l) == (at, len) => r.clone(),
            _ => Err("the chunk framing was not read".into()),
        }
    }
}

/// What one pass over a checkpoint's bytes learns: the BLAKE3 digest of the
/// whole file, and what its dialect and name checks need (the prefix, the
/// SHA-1 of the text, a session title, a few bytes and walks for the fork
/// dialects). Both export and import feed every byte through it exactly
/// once, so neither side reads anything twice and nothing is held in memory
/// but a few small buffers.
struct StreamCheck {
    blake3: blake3::Hasher,
    head: [u8; HEAD_LEN],
    seen: u64,
    regions: Option<Regions>,
}

/// The result of a [`StreamCheck`].
#[derive(Clone, Debug)]
struct Checked {
    blake3: String,
    size: u64,
    /// Header and text_len, when the 52-byte prefix was there.
    prefix: Option<(Header, u32)>,
    /// SHA-1 key of the text, when the whole text was there.
    text_key: Option<Key>,
    /// The session title, when ext bit 3 is set.
    title: Option<std::result::Result<SessionTitle, TitleError>>,
    probe: Streamed,
}

impl StreamCheck {
    fn new() -> StreamCheck {
        StreamCheck {
            blake3: blake3::Hasher::new(),
            head: [0; HEAD_LEN],
            seen: 0,
            regions: None,
        }
    }

    fn update(&mut self, buf: &[u8]) {
        self.blake3.update(buf);
        let start = self.seen;
        let end = start + buf.len() as u64;
        let hl = HEAD_LEN as u64;
        if start < hl {
            let n = (hl - start).min(buf.len() as u64) as usize;
            self.head[start as usize..start as usize + n].copy_from_slice(&buf[..n]);
        }
        self.seen = end;
        match self.regions.as_mut() {
            Some(r) => r.feed(start, buf),
            None if end >= hl => {
                // The head is complete: set up, replay it, then the rest.
                let mut r = Regions::new(&self.head);
                r.feed(0, &self.head);
                r.feed(hl, &buf[(hl - start) as usize..]);
                self.regions = Some(r);
            }
            None => {}
        }
    }

    fn finish(self) -> Checked {
        let have = (self.seen as usize).min(HEAD_LEN);
        let head = self.head[..have].to_vec();
        let regions = match self.regions {
            Some(r) => Some(r),
            None if have >= PREFIX_LEN => {
                let mut r = Regions::new(&head);
                r.feed(0, &head);
                Some(r)
            }
            None => None,
        };
        let prefix = (have >= PREFIX_LEN).then(|| {
            let h = Header::decode(head[..HEADER_LEN].try_into().expect("48"));
            let tl = u32::from_le_bytes(head[HEADER_LEN..PREFIX_LEN].try_into().expect("4"));
            (h, tl)
        });
        let mut probe = Streamed {
            size: self.seen,
            head,
            tail: None,
            sha1s: Vec::new(),
            lz4: None,
        };
        let (mut text_key, mut title) = (None, None);
        if let Some(r) = regions {
            if let Some(t) = r.text.finish() {
                text_key = Some(Key::from_digest(&t.2));
                probe.sha1s.push(t);
            }
            probe.sha1s.extend(r.d13_text.and_then(RangeSha1::finish));
            probe.tail = (r.tail.got == 4).then_some((r.tail.at, r.tail.buf));
            probe.lz4 = r.lz4.map(|l| (l.at, l.len, l.walk.result()));
            title = r.title.map(|t| t.finish(self.seen));
        }
        Checked {
            blake3: self.blake3.finalize().to_hex().to_string(),
            size: self.seen,
            prefix,
            text_key,
            title,
            probe,
        }
    }
}

/// Why a file's bytes are not a checkpoint that may be exported or
/// installed under its name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    /// The checks a scan makes: envelope, zero tokens.
    Defect(Defect),
    /// The name is not what the content says (`key-mismatch`).
    Name { rule: &'static str, actual: Key },
    /// ext bit 3 over a session title that cannot be read: the name cannot
    /// be checked.
    Title(TitleError),
    /// A dialect kvc does not read (FORMAT.md §9): what was recognised.
    Foreign(String),
}

impl Problem {
    /// The message, with `verb` ("install", "export") for a foreign file.
    fn describe(&self, verb: &str) -> String {
        match self {
            Problem::Defect(d) => format!("not a valid checkpoint: {d}"),
            Problem::Name { rule, actual } => format!(
                "not a valid checkpoint (key-mismatch): its {rule} is {actual}, not the file name"
            ),
            Problem::Title(e) => {
                format!("not a valid checkpoint: {e}; its name (the session identity) cannot be checked")
            }
            Problem::Foreign(what) => {
                format!("foreign dialect {what}: kvc does not {verb} files it cannot verify")
            }
        }
    }
}

impl Checked {
    /// The dialect of these bytes under the name `key` (`resolve` decides
    /// between a pre-ABI ds4 file and a hanzo-engine file, whose headers
    /// can be identical: the directory's engine does), or why they are not a checkpoint a scan of a
    /// directory would list under that name: a dialect kvc does not read,
    /// the envelope, zero tokens (where the dialect does not allow them),
    /// and the name the dialect's identity rule gives the content
    /// ([`identity::expected_key`], the rule the scan applies).
    fn verdict(
        &self,
        key: &Key,
        resolve: impl FnOnce(&Detected) -> Option<DialectId>,
    ) -> std::result::Result<DialectId, Problem> {
        let Some((h, tl)) = &self.prefix else {
            return Err(Problem::Defect(if self.size == 0 {
                Defect::Empty
            } else {
                Defect::ShortHeader { size: self.size }
            }));
        };
        let detected = dialect::detect(h, *tl, Some(key), &self.probe);
        if let Detected::NotKvc = detected {
            return Err(Problem::Defect(Defect::Header(
                crate::format::HeaderError::BadMagic(h.magic),
            )));
        }
        if dialect::is_foreign(&detected) {
            let payload_at = crate::format::TEXT_OFFSET + *tl as u64;
            return Err(Problem::Foreign(dialect::describe_foreign(
                &detected,
                h,
                &self.probe,
                payload_at,
            )));
        }
        let dialect = resolve(&detected).expect("a dialect kvc reads is known");
        checkpoint::check_envelope(h, *tl, self.size).map_err(Problem::Defect)?;
        if h.tokens == 0 && !dialect.spec().zero_tokens_valid {
            return Err(Problem::Defect(Defect::ZeroTokens));
        }
        match identity::expected_key(dialect, h, key, self.text_key.as_ref(), self.title.as_ref()) {
            Ok(Some(want)) if want != *key => Err(Problem::Name {
                rule: identity::describe_rule(dialect, h),
                actual: want,
            }),
            Ok(_) => Ok(dialect),
            Err(e) => Err(Problem::Title(e)),
        }
    }

    fn summary(&self) -> Option<HeaderSummary> {
        self.prefix
            .as_ref()
            .map(|(h, tl)| HeaderSummary::of(h, *tl))
    }
}

// ---------------------------------------------------------------------------
// Selection

/// Which checkpoints of a directory `kvc export` takes.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Keys, unique key prefixes (4+ hex digits) or `sysprompt`.
    pub keys: Vec<String>,
    pub all: bool,
    /// Keep only these reasons (any of them); empty = every reason.
    pub reasons: Vec<Reason>,
    pub min_tokens: Option<u32>,
    /// Keep only checkpoints used (or, never used, created) this recently.
    pub used_within: Option<Duration>,
    pub quant: Option<u8>,
}

impl Selection {
    fn has_filter(&self) -> bool {
        !self.reasons.is_empty()
            || self.min_tokens.is_some()
            || self.used_within.is_some()
            || self.quant.is_some()
    }

    fn keeps(&self, c: &Checkpoint, now: u64) -> bool {
        let h = &c.header;
        (self.reasons.is_empty() || self.reasons.contains(&h.reason))
            && self.min_tokens.is_none_or(|m| h.tokens >= m)
            && self.quant.is_none_or(|q| h.quant_bits == q)
            && self
                .used_within
                .is_none_or(|d| h.used_time() >= now.saturating_sub(d.as_secs()))
    }
}

/// What a selection found.
#[derive(Debug, Default)]
pub struct Selected {
    /// Sorted by key.
    pub checkpoints: Vec<Checkpoint>,
    /// Files named by a key argument that are not usable checkpoints.
    pub invalid: Vec<scan::Invalid>,
    /// Files of dialects kvc does not read (FORMAT.md §9) that the
    /// selection met: named by a key argument, or in the directory when
    /// the selection is `--all` or filters. Never exported: kvc cannot
    /// verify them, and import would refuse them.
    pub foreign: Vec<LeftForeign>,
}

/// A foreign file a selection met and left out.
#[derive(Clone, Debug, Serialize)]
pub struct LeftForeign {
    pub file: String,
    /// The §9 id, or `foreign` for a dialect no row describes.
    pub dialect: String,
    /// What was recognised.
    pub what: String,
    /// A KEY argument named it (an error), rather than `--all` or a filter
    /// meeting it (a note).
    pub named: bool,
}

impl LeftForeign {
    fn of(f: &scan::Foreign, named: bool) -> LeftForeign {
        LeftForeign {
            file: f.file.clone(),
            dialect: f.dialect.map_or("foreign", |d| d.as_str()).to_string(),
            what: f.what.clone(),
            named,
        }
    }
}

/// Resolve a selection in `dir` (read-only: a scan of 52-byte prefixes).
/// Keys narrow the set, filters narrow it further; filters alone select
/// from every checkpoint. Neither keys, `all` nor a filter is an error.
pub fn select(dir: &Path, sel: &Selection, now: u64) -> Result<Selected> {
    if sel.keys.is_empty() && !sel.all && !sel.has_filter() {
        return Err(Error::Usage(
            "nothing selected: give KEYs, --all, or a filter (--reason, --min-tokens, --used-within, --quant)".into(),
        ));
    }
    let scan = scan::scan_dir(dir, ScanOptions::default())?;
    let mut out = Selected::default();
    let mut wanted: Option<HashSet<String>> = None;
    if !sel.keys.is_empty() {
        // Keys resolve among the names the scan listed: one listing for
        // any number of keys, and the same view of the directory.
        let invalid: Vec<(Key, &str)> = (scan.invalid.iter())
            .filter_map(|i| match classify_name(&i.file) {
                NameKind::Checkpoint(k) => Some((k, i.file.as_str())),
                _ => None,
            })
            .collect();
        let listed: Vec<(&Key, &str)> = (scan.checkpoints.iter())
            .map(|c| (&c.key, c.file.as_str()))
            .chain(invalid.iter().map(|(k, f)| (k, *f)))
            .chain(scan.foreign.iter().map(|f| (&f.key, f.file.as_str())))
            .collect();
        let mut names = HashSet::new();
        for k in &sel.keys {
            let r = resolve::resolve_key_among(dir, listed.iter().copied(), k)?;
            names.insert(r.file_name_on_disk);
        }
        for inv in &scan.invalid {
            if names.contains(&inv.file) {
                out.invalid.push(inv.clone());
            }
        }
        for f in &scan.foreign {
            if names.contains(&f.file) {
                out.foreign.push(LeftForeign::of(f, true));
            }
        }
        wanted = Some(names);
    } else {
        out.foreign = (scan.foreign.iter())
            .map(|f| LeftForeign::of(f, false))
            .collect();
    }
    let mut by_key: HashMap<Key, Checkpoint> = HashMap::new();
    for c in scan.checkpoints {
        if wanted.as_ref().is_some_and(|w| !w.contains(&c.file)) || !sel.keeps(&c, now) {
            continue;
        }
        // Two names for one key (upper- and lower-case hex) would make two
        // entries with one name: keep the canonical one.
        let canonical = c.file == c.key.file_name();
        match by_key.get(&c.key) {
            Some(prev) if prev.file == prev.key.file_name() || !canonical => {}
            _ => {
                by_key.insert(c.key.clone(), c);
            }
        }
    }
    out.checkpoints = by_key.into_values().collect();
    out.checkpoints.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

// ---------------------------------------------------------------------------
// Export

/// Where a bundle goes. A file kvc created itself can take back an entry
/// that turned out inconsistent; a pipe cannot.
pub trait BundleWrite: Write {
    /// Cut the output back to its first `len` bytes and continue writing
    /// there. `Ok(false)` when this output cannot.
    fn cut_back(&mut self, _len: u64) -> io::Result<bool> {
        Ok(false)
    }
}

/// A stream that cannot be rewound (standard output, a socket).
pub struct StreamOut<W: Write>(pub W);

impl<W: Write> Write for StreamOut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> BundleWrite for StreamOut<W> {}

/// `-o FILE`: a temp file kvc writes from its start, so cutting back is
/// truncating it.
impl BundleWrite for AtomicFile {
    fn cut_back(&mut self, len: u64) -> io::Result<bool> {
        let f = self.file();
        f.set_len(len)?;
        f.seek(SeekFrom::Start(len))?;
        Ok(true)
    }
}

/// Buffers the output and counts what went out, so an entry's start is
/// known if it has to be taken back.
struct Counted<W: BundleWrite> {
    inner: BufWriter<W>,
    pos: u64,
}

impl<W: BundleWrite> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: BundleWrite> Counted<W> {
    fn cut_back(&mut self, len: u64) -> io::Result<bool> {
        self.inner.flush()?;
        if self.inner.get_mut().cut_back(len)? {
            self.pos = len;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// A checkpoint the export could not put in the bundle as a consistent copy.
#[derive(Clone, Debug, Serialize)]
pub struct Excluded {
    pub file: String,
    pub key: String,
    pub problem: String,
    /// Its (inconsistent) bytes are in the stream, marked `excluded` so
    /// import rejects them: a pipe cannot take back what it already sent.
    /// `false`: it is not in the bundle at all.
    pub in_bundle: bool,
}

/// What an export did.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    pub exported_at: u64,
    /// Consistent copies in the bundle.
    pub entries: Vec<EntryRecord>,
    pub excluded: Vec<Excluded>,
    /// Gone between the scan and the export (an engine evicted or consumed
    /// them): not an error.
    pub vanished: Vec<String>,
    /// Bytes of the exported checkpoints.
    pub bytes: u64,
}

/// Reads a checkpoint for its tar entry: exactly the `size` bytes the tar
/// header promised, hashing them on the way. A file that comes up short
/// (it shrank, or a read failed) is padded with zeros so the stream stays
/// a valid tar, and the problem is recorded: the entry will be excluded.
struct SourceReader<'a> {
    file: &'a File,
    remaining: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` filled by the last refill.
    filled: usize,
    check: StreamCheck,
    problem: Option<String>,
    progress: &'a mut dyn Progress,
}

impl SourceReader<'_> {
    fn refill(&mut self) {
        let want = (self.buf.len() as u64).min(self.remaining) as usize;
        let mut n = 0;
        while self.problem.is_none() && n < want {
            match (&*self.file).read(&mut self.buf[n..want]) {
                Ok(0) => {
                    self.problem = Some(format!(
                        "file shrank while being exported ({} bytes short)",
                        self.remaining - n as u64
                    ))
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.problem = Some(format!("read failed while exporting: {e}")),
            }
        }
        // Padding keeps the length the tar header promised.
        self.buf[n..want].fill(0);
        self.check.update(&self.buf[..want]);
        self.progress.advance(want as u64);
        self.filled = want;
    }
}

impl SourceReader<'_> {
    /// The whole tar entry: `header` (the tar crate's), the `remaining`
    /// bytes it promises, then zeros to the next 512-byte block — exactly
    /// what `tar::Builder::append` writes. Not through `append` itself:
    /// its `io::copy` moves data in 8 KiB steps through a stack buffer
    /// into the output buffer, two extra copies of every byte; here each
    /// chunk goes from the read buffer to the output in one write (see
    /// [`OUT_BUFFER`]).
    fn write_entry<W: Write>(&mut self, header: &tar::Header, out: &mut W) -> io::Result<()> {
        out.write_all(header.as_bytes())?;
        let len = self.remaining;
        while self.remaining > 0 {
            self.refill();
            out.write_all(&self.buf[..self.filled])?;
            self.remaining -= self.filled as u64;
        }
        let pad = (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK;
        out.write_all(&[0u8; TAR_BLOCK as usize][..pad as usize])
    }
}

/// What identifies a file's content for change detection: an in-place
/// rewrite changes mtime, a replacement changes the inode.
fn identity(m: &fs::Metadata) -> (u64, u64, u64, i64, i64) {
    (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}

/// A ustar header for one of our entries: no owner names (they would leak
/// the exporting account), mode 0600 (the files hold prompts).
fn tar_header(name: &str, size: u64, mtime: u64) -> io::Result<tar::Header> {
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

fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    mtime: u64,
) -> io::Result<()> {
    b.append(&tar_header(name, bytes.len() as u64, mtime)?, bytes)
}

/// Write `cps` as a bundle to `out`. Each file is opened without following
/// links, read once (hashed on the way), and checked for change afterwards;
/// the cache is never written. Returns the report and the output, flushed
/// (commit it if it is a temp file). `out_name` names the output in errors.
pub fn export<W: BundleWrite>(
    cps: &[Checkpoint],
    out: W,
    out_name: &Path,
    exported_at: u64,
    progress: &mut dyn Progress,
) -> Result<(ExportReport, W)> {
    let oerr = |e| Error::io(out_name, e);
    let mut b = tar::Builder::new(Counted {
        inner: BufWriter::with_capacity(OUT_BUFFER, out),
        pos: 0,
    });
    let mut report = ExportReport {
        exported_at,
        entries: Vec::new(),
        excluded: Vec::new(),
        vanished: Vec::new(),
        bytes: 0,
    };
    let mut manifest = Manifest {
        bundle: BUNDLE_VERSION,
        kvc_version: env!("CARGO_PKG_VERSION").into(),
        exported_at,
        entries: Vec::new(),
        left_out: Vec::new(),
    };
    let mut buf = vec![0u8; CHUNK];
    progress.begin(Some(cps.iter().map(|c| c.size).sum()));
    for c in cps {
        let name = c.key.file_name();
        progress.entry(&name);
        let mut left_out = |problem: String, report: &mut ExportReport| {
            manifest.left_out.push(LeftOut {
                file: name.clone(),
                key: c.key.to_string(),
                problem: problem.clone(),
            });
            report.excluded.push(Excluded {
                file: name.clone(),
                key: c.key.to_string(),
                problem,
                in_bundle: false,
            });
        };
        let file = match open_nofollow(&c.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.vanished.push(name);
                continue;
            }
            Err(e) => {
                left_out(
                    format!("cannot open {}: {e}", c.path.display()),
                    &mut report,
                );
                continue;
            }
        };
        let before = file.metadata().map_err(|e| Error::io(&c.path, e))?;
        if !before.is_file() {
            left_out("not a regular file".into(), &mut report);
            continue;
        }
        let size = before.len();
        let mtime = before.mtime().max(0) as u64;
        let start = b.get_mut().pos;
        let mut src = SourceReader {
            file: &file,
            remaining: size,
            buf: std::mem::take(&mut buf),
            filled: 0,
            check: StreamCheck::new(),
            problem: None,
            progress: &mut *progress,
        };
        let header = tar_header(&name, size, mtime).map_err(oerr)?;
        src.write_entry(&header, b.get_mut()).map_err(oerr)?;
        buf = std::mem::take(&mut src.buf);
        let (check, read_problem) = (src.check.finish(), src.problem);
        let changed = match file.metadata() {
            Ok(after) if identity(&after) == identity(&before) => None,
            Ok(_) => Some("file changed while being exported".to_string()),
            Err(e) => Some(format!("cannot stat after reading: {e}")),
        };
        // The renamed-over case: the name now points at another file.
        let replaced = match fs::symlink_metadata(&c.path) {
            Ok(m) if (m.dev(), m.ino()) == (before.dev(), before.ino()) => None,
            Ok(_) => Some("file was replaced while being exported".to_string()),
            Err(_) => None, // deleted after we opened it: our copy is whole
        };
        // The scan resolved a pre-ABI ds4 / hanzo-engine look-alike by the
        // directory's engine: the same bytes resolve the same way here.
        let verdict = check.verdict(&c.key, |d| match d {
            Detected::Ds4OrHanzo { .. } if matches!(c.dialect, DialectId::D1 | DialectId::D20) => {
                Some(c.dialect)
            }
            d => d.resolve(Engine::Ds4),
        });
        let problem = read_problem
            .or(changed)
            .or(replaced)
            .or_else(|| verdict.as_ref().err().map(|p| p.describe("export")));
        let mut record = EntryRecord {
            bundle: BUNDLE_VERSION,
            file: name.clone(),
            key: c.key.to_string(),
            size,
            blake3: check.blake3.clone(),
            status: EntryStatus::Ok,
            problem: None,
            header: check.summary(),
            dialect: verdict.ok().map(|d| d.as_str().to_string()),
        };
        if let Some(problem) = problem {
            // A file output takes the entry back; a pipe has sent it, so it
            // goes on marked `excluded` and import will reject it.
            if b.get_mut().cut_back(start).map_err(oerr)? {
                left_out(problem, &mut report);
                continue;
            }
            record.status = EntryStatus::Excluded;
            record.problem = Some(problem.clone());
            report.excluded.push(Excluded {
                file: name.clone(),
                key: c.key.to_string(),
                problem,
                in_bundle: true,
            });
        } else {
            report.bytes += size;
            report.entries.push(record.clone());
        }
        let meta = serde_json::to_vec_pretty(&record).expect("records serialize");
        append_bytes(&mut b, &format!("{name}{META_SUFFIX}"), &meta, exported_at).map_err(oerr)?;
        manifest.entries.push(record);
    }
    let m = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    append_bytes(&mut b, MANIFEST_NAME, &m, exported_at).map_err(oerr)?;
    let counted = b.into_inner().map_err(oerr)?;
    let out = counted
        .inner
        .into_inner()
        .map_err(|e| oerr(e.into_error()))?;
    progress.finish();
    Ok((report, out))
}

// ---------------------------------------------------------------------------
// Import

/// What to do when the target already has a checkpoint with the same key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Keep the existing file.
    #[default]
    Skip,
    /// Overwrite it.
    Replace,
    /// Keep whichever was used last (`last_used`; ties keep the existing).
    Newer,
}

/// The `--budget` pass run after an import (kvc evict's planner and executor).
#[derive(Clone, Copy, Debug)]
pub struct BudgetOptions {
    pub bytes: u64,
    pub policy: Policy,
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub on_conflict: OnConflict,
    /// Zero hits and set last_used to `now` in the installed copies.
    pub reset_stats: bool,
    /// Unix seconds: the clock for `reset_stats`, journal and budget.
    pub now: u64,
    /// Read and verify everything, write nothing.
    pub dry_run: bool,
    /// Where the bundle came from, for error messages and the journal.
    pub source: String,
    pub budget: Option<BudgetOptions>,
    /// Also replace ds4-agent's explicit saves (`sysprompt.kv`, reasons
    /// agent-system and agent-session) on a conflict, as `kvc rm` and
    /// `kvc evict` need it to delete them.
    pub include_agent: bool,
    /// `--engine`: the engine that reads the target directory, instead of
    /// the one its files point to.
    pub engine: Option<Engine>,
}

/// What happened to one entry of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// New in the target.
    Installed,
    /// Overwrote a different copy.
    Replaced,
    /// The same bytes were already there.
    Present,
    /// A different copy is there and was kept (`--on-conflict`).
    Skipped,
    Rejected,
}

#[derive(Clone, Debug, Serialize)]
pub struct EntryOutcome {
    /// The entry name as it appears in the stream (sanitized: it is
    /// untrusted), or `(stream)` for a problem of the stream itself.
    pub entry: String,
    pub key: Option<String>,
    pub action: Action,
    pub size: Option<u64>,
    /// Why, for anything but a plain install (sanitized: it can quote the
    /// stream).
    pub message: Option<String>,
}

/// What the manifest said, when the stream had one.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestInfo {
    pub kvc_version: String,
    pub exported_at: u64,
    pub entries: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Evicted {
    pub key: String,
    pub file: String,
    pub size: u64,
    pub reason: String,
    pub score: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BudgetOutcome {
    pub budget: u64,
    pub policy: String,
    /// Bytes of valid checkpoints before and after the pass.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub evicted: Vec<Evicted>,
    /// False when what is protected (the imported checkpoints, agent
    /// saves) alone exceeds the budget.
    pub met: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// Not serialized: a path need not be UTF-8; callers show it.
    #[serde(skip)]
    pub dir: PathBuf,
    pub dry_run: bool,
    pub on_conflict: OnConflict,
    /// Every entry, in stream order, plus one `(stream)` row when the
    /// stream was cut off or unreadable past some point.
    pub entries: Vec<EntryOutcome>,
    /// The stream ended early (no manifest) or broke mid-way. Every
    /// complete, verified entry before the cut was still installed.
    pub truncated: bool,
    pub manifest: Option<ManifestInfo>,
    pub budget: Option<BudgetOutcome>,
    /// The engine whose reading of the target kvc applied, and why
    /// (`ds4 (inferred: …)`).
    pub engine: String,
    /// Lines the user should read (e.g. replacing files next to a running
    /// hanzo-engine).
    pub warnings: Vec<String>,
}

impl ImportReport {
    pub fn count(&self, a: Action) -> usize {
        self.entries.iter().filter(|e| e.action == a).count()
    }

    /// Bytes written into the target (installed and replaced).
    pub fn bytes_written(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.action, Action::Installed | Action::Replaced))
            .filter_map(|e| e.size)
            .sum()
    }

    /// Exit 1: an entry was rejected, the stream was cut, or the budget
    /// could not be met.
    pub fn has_problems(&self) -> bool {
        self.count(Action::Rejected) > 0
            || self.truncated
            || self.budget.as_ref().is_some_and(|b| !b.met)
    }
}

/// What an entry's name makes it.
enum EntryName {
    Data(Key),
    /// The record of the data entry with this name.
    Meta(String),
    Manifest,
    Bad(String),
}

/// Only plain names at the top level: no `/` at all (so no absolute path,
/// no `..` component, no nesting), and only names kvc itself writes.
fn classify_entry(raw: &[u8]) -> EntryName {
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

fn type_problem(t: tar::EntryType) -> Option<&'static str> {
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

/// What import will do with a data entry, decided from the target before
/// any byte of it is written.
#[derive(Clone, Debug)]
enum Plan {
    Install,
    /// Overwrite the existing copy named `old` (its name on disk).
    Replace {
        old: String,
    },
    /// Keep the existing copy (named `old`): report `present` if the bytes
    /// are identical, else `skipped` with this note.
    Keep {
        old: String,
        note: String,
    },
    /// Cannot install (the name is taken by something that is not a file).
    Refuse(String),
}

/// A data entry streamed and hashed, waiting for its record.
struct Pending {
    shown: String,
    name: String,
    key: Key,
    check: Checked,
    plan: Plan,
    temp: Option<AtomicFile>,
    mtime: u64,
}

enum Flow {
    Next,
    /// The stream broke: stop reading it.
    Stop,
}

struct Importer<'a> {
    dir: &'a Path,
    opts: &'a ImportOptions,
    /// The engine that reads the target, decided from the directory as it
    /// was before the first entry (or `--engine`).
    engine: EngineChoice,
    warnings: Vec<String>,
    /// The hanzo-engine warning was given.
    warned_replace: bool,
    /// Taken when the first entry arrives (never in a dry run).
    lock: Option<DirLock>,
    /// Checkpoint names on disk, by key (ds4 accepts upper-case hex names).
    on_disk: HashMap<Key, String>,
    seen: HashSet<Key>,
    pending: Option<Pending>,
    entries: Vec<EntryOutcome>,
    /// Keys installed, replaced or already present: the budget protects them.
    imported: HashMap<Key, (u64, Option<(Header, u32)>)>,
    manifest_seen: bool,
    manifest: Option<Manifest>,
    truncated: bool,
    /// An extension header made the next entry (or, global, all of them)
    /// mean something else to other tar readers: reject it.
    taint_next: bool,
    taint_all: bool,
    /// A data entry rejected before it was read (a duplicate): its record,
    /// next in the stream, goes with it silently.
    drop_record_of: Option<Key>,
    buf: Vec<u8>,
}

/// Read exactly `buf.len()` bytes of an entry; `Ok(n < len)` on a cut.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// BLAKE3 of a file, hex; `None` when it cannot be read whole.
fn file_blake3(path: &Path, buf: &mut [u8]) -> Option<String> {
    let mut f = open_nofollow(path).ok()?;
    let mut h = blake3::Hasher::new();
    loop {
        match f.read(buf) {
            Ok(0) => return Some(h.finalize().to_hex().to_string()),
            Ok(n) => {
                h.update(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

impl Importer<'_> {
    fn open_target(&mut self) -> Result<()> {
        if !self.opts.dry_run {
            create_private_dir_all(self.dir).map_err(|e| Error::io(self.dir, e))?;
            self.lock = Some(DirLock::acquire(self.dir)?);
        }
        self.on_disk = names_on_disk(self.dir)?;
        // Which engine reads the target decides what a pre-ABI ds4 file
        // and a hanzo-engine file (identical headers) are, as a scan of
        // the directory will after the import.
        self.engine = match self.opts.engine {
            Some(e) => EngineChoice::given(e),
            None if self.dir.is_dir() => scan::scan_dir(self.dir, ScanOptions::default())?.engine,
            None => dialect::infer_engine(&dialect::Evidence::default(), None),
        };
        Ok(())
    }

    /// Before the first replacement in a directory hanzo-engine reads: a
    /// hanzo-engine hit re-opens the file by path and writes the whole
    /// 48-byte header it loaded back (FORMAT.md §7): if kvc replaced the
    /// file in between, the old header lands on the new file.
    /// A directory where hanzo-engine also left files (`mixed`) gets the
    /// warning too.
    fn warn_replace(&mut self, progress: &mut dyn Progress) {
        let hanzo = self.engine.engine == Engine::Hanzo;
        if !(hanzo || self.engine.mixed) || self.warned_replace {
            return;
        }
        self.warned_replace = true;
        let who = if hanzo {
            format!("read by {}", self.engine.describe())
        } else {
            format!(
                "hanzo-engine left files here too (engine {})",
                self.engine.describe()
            )
        };
        let line = format!(
            "{}: {who}; replacing checkpoints next to a running hanzo-engine is unsafe: on a hit it re-opens the file by path and writes back the header it loaded, onto the new file (stop it first, or use --on-conflict skip)",
            self.dir.display(),
        );
        progress.warn(&line);
        self.warnings.push(line);
    }

    fn outcome(
        &mut self,
        entry: &str,
        key: Option<&Key>,
        action: Action,
        size: Option<u64>,
        message: Option<String>,
    ) {
        self.entries.push(EntryOutcome {
            entry: entry.to_string(),
            key: key.map(|k| k.to_string()),
            action,
            size,
            // Messages quote untrusted bytes: tar's errors quote header
            // fields and names, serde's an unknown value of a record.
            message: message.map(|m| sanitize_line(m.as_bytes())),
        });
    }

    fn reject(
        &mut self,
        entry: &str,
        key: Option<&Key>,
        size: Option<u64>,
        msg: impl Into<String>,
    ) {
        self.outcome(entry, key, Action::Rejected, size, Some(msg.into()));
    }

    fn stream_cut(&mut self, entry: &str, msg: String) {
        self.truncated = true;
        self.reject(entry, None, None, msg);
    }

    /// The pending data entry did not get its record.
    fn flush_pending(&mut self, why: &str) {
        if let Some(p) = self.pending.take() {
            let size = p.check.size;
            self.reject(&p.shown, Some(&p.key), Some(size), why);
            // Dropping p.temp removes the temp file.
        }
    }

    fn decide(&self, key: &Key, incoming: Option<&Header>) -> Result<Plan> {
        let name = self
            .on_disk
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.file_name());
        let path = self.dir.join(&name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Plan::Install),
            Err(e) => return Err(Error::io(&path, e)),
        };
        if !meta.is_file() {
            return Ok(Plan::Refuse(format!(
                "{name} exists in the target and is not a regular file; left alone"
            )));
        }
        let old = name.clone();
        if self.opts.on_conflict == OnConflict::Skip {
            return Ok(Plan::Keep {
                old,
                note: "a different copy exists; kept (--on-conflict replace or newer to overwrite)"
                    .into(),
            });
        }
        let existing = checkpoint::CheckpointFile::open_unchecked(&path);
        // ds4-agent's explicit saves are replaced only when asked, as rm
        // and evict delete them only when asked.
        let agent_save = *key == Key::Sysprompt
            || existing
                .as_ref()
                .is_ok_and(|cf| cf.header.reason.is_agent());
        if agent_save && !self.opts.include_agent {
            return Ok(Plan::Keep {
                old,
                note: "the existing copy is an explicit ds4-agent save; kept (--include-agent to replace it)"
                    .into(),
            });
        }
        Ok(match self.opts.on_conflict {
            OnConflict::Skip => unreachable!("handled above"),
            OnConflict::Replace => Plan::Replace { old },
            OnConflict::Newer => {
                match (existing, incoming) {
                    (Ok(cf), Some(h)) if h.last_used > cf.header.last_used => Plan::Replace { old },
                    (Ok(cf), _) => Plan::Keep {
                        old,
                        note: format!(
                            "the existing copy was used later or at the same time (last_used {} >= {}); kept",
                            cf.header.last_used,
                            incoming.map_or(0, |h| h.last_used)
                        ),
                    },
                    (Err(e), _) => Plan::Keep {
                        old,
                        note: format!(
                            "the existing copy is unreadable ({e}); kept (--on-conflict replace to overwrite)"
                        ),
                    },
                }
            }
        })
    }

    /// Stream a data entry into a temp file (when it may be installed),
    /// hashing and parsing on the way.
    fn receive<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        shown: String,
        key: Key,
        progress: &mut dyn Progress,
    ) -> Result<Flow> {
        let size = entry.size();
        let mtime = entry.header().mtime().unwrap_or(0);
        let name = key.file_name();
        progress.entry(&name);
        let mut buf = std::mem::take(&mut self.buf);
        let plen = (PREFIX_LEN as u64).min(size) as usize;
        let got = match read_full(entry, &mut buf[..plen]) {
            Ok(n) => n,
            Err(e) => {
                self.buf = buf;
                self.stream_cut(&shown, format!("stream unreadable inside this entry: {e}"));
                return Ok(Flow::Stop);
            }
        };
        if got < plen {
            self.buf = buf;
            self.stream_cut(
                &shown,
                format!("truncated stream: ended inside this entry ({got} of {size} bytes)"),
            );
            return Ok(Flow::Stop);
        }
        let incoming =
            (plen == PREFIX_LEN).then(|| Header::decode(buf[..HEADER_LEN].try_into().expect("48")));
        let plan = self.decide(&key, incoming.as_ref())?;
        let writes = matches!(plan, Plan::Install | Plan::Replace { .. });
        let mut temp = if writes && !self.opts.dry_run {
            let t = AtomicFile::create(self.dir, &name)
                .map_err(|e| Error::io(&self.dir.join(crate::fsutil::temp_name_for(&name)), e))?;
            Some(t)
        } else {
            None
        };
        let mut check = StreamCheck::new();
        check.update(&buf[..plen]);
        progress.advance(plen as u64);
        if let Some(t) = temp.as_mut() {
            if let (true, Some(mut h)) = (self.opts.reset_stats, incoming.clone()) {
                h.hits = 0;
                h.last_used = self.opts.now;
                buf[..HEADER_LEN].copy_from_slice(&h.encode());
            }
            t.write_all(&buf[..plen])
                .map_err(|e| Error::io(t.temp_path(), e))?;
        }
        let mut done = plen as u64;
        while done < size {
            let want = (buf.len() as u64).min(size - done) as usize;
            let n = match entry.read(&mut buf[..want]) {
                Ok(0) => {
                    self.buf = buf;
                    self.stream_cut(
                        &shown,
                        format!(
                            "truncated stream: ended inside this entry ({done} of {size} bytes)"
                        ),
                    );
                    return Ok(Flow::Stop);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf = buf;
                    self.stream_cut(&shown, format!("stream unreadable inside this entry: {e}"));
                    return Ok(Flow::Stop);
                }
            };
            check.update(&buf[..n]);
            if let Some(t) = temp.as_mut() {
                t.write_all(&buf[..n])
                    .map_err(|e| Error::io(t.temp_path(), e))?;
            }
            done += n as u64;
            progress.advance(n as u64);
        }
        self.buf = buf;
        self.pending = Some(Pending {
            shown,
            name,
            key,
            check: check.finish(),
            plan,
            temp,
            mtime,
        });
        Ok(Flow::Next)
    }

    /// The record for the pending entry arrived: verify, then install.
    fn complete(&mut self, p: Pending, record: &[u8], progress: &mut dyn Progress) -> Result<()> {
        let Pending {
            shown,
            name,
            key,
            check,
            plan,
            mut temp,
            mtime,
        } = p;
        let size = Some(check.size);
        let rec: EntryRecord = match serde_json::from_slice(record) {
            Ok(r) => r,
            Err(e) => {
                self.reject(
                    &shown,
                    Some(&key),
                    size,
                    format!("its digest record is unreadable: {e}"),
                );
                return Ok(());
            }
        };
        let problem = if rec.bundle > BUNDLE_VERSION {
            Some(format!(
                "bundle format {} is newer than this kvc reads ({BUNDLE_VERSION})",
                rec.bundle
            ))
        } else if Key::from_file_name(&rec.file).as_ref() != Some(&key) {
            Some(format!(
                "its digest record is about {:?}, not this entry",
                sanitize_line(rec.file.as_bytes())
            ))
        } else if rec.status == EntryStatus::Excluded {
            Some(format!(
                "excluded by the exporter: {}",
                sanitize_line(
                    rec.problem
                        .as_deref()
                        .unwrap_or("no reason given")
                        .as_bytes()
                )
            ))
        } else if rec.size != check.size {
            Some(format!(
                "size mismatch: the record says {} bytes, the entry has {}",
                rec.size, check.size
            ))
        } else if !rec.blake3.eq_ignore_ascii_case(&check.blake3) {
            Some("BLAKE3 digest mismatch: the bytes were corrupted after export".into())
        } else {
            let engine = self.engine.engine;
            check
                .verdict(&key, |d| d.resolve(engine))
                .err()
                .map(|p| p.describe("install"))
        };
        if let Some(problem) = problem {
            self.reject(&shown, Some(&key), size, problem);
            return Ok(());
        }
        let identical = |old: &str, buf: &mut [u8]| {
            let path = self.dir.join(old);
            fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == check.size)
                && file_blake3(&path, buf).is_some_and(|d| d == check.blake3)
        };
        let mut buf = std::mem::take(&mut self.buf);
        let (action, note) = match &plan {
            Plan::Refuse(msg) => (Action::Rejected, Some(msg.clone())),
            Plan::Keep { old, note } => {
                if identical(old, &mut buf) {
                    (
                        Action::Present,
                        Some("identical copy already present".into()),
                    )
                } else {
                    (Action::Skipped, Some(note.clone()))
                }
            }
            Plan::Install => (Action::Installed, None),
            Plan::Replace { old } => {
                if identical(old, &mut buf) {
                    (
                        Action::Present,
                        Some("identical copy already present".into()),
                    )
                } else {
                    (Action::Replaced, None)
                }
            }
        };
        self.buf = buf;
        if action == Action::Replaced {
            self.warn_replace(progress);
        }
        let (action, note) = match (action, temp.take()) {
            (Action::Installed | Action::Replaced, Some(mut t)) => {
                // Keep the exporter's mtime, as tar would. The header is
                // untrusted: a time the clock type cannot hold (base-256
                // fields reach 2^64-1 s) leaves the file its own mtime.
                if let Some(when) = UNIX_EPOCH.checked_add(Duration::from_secs(mtime)) {
                    t.file()
                        .set_modified(when)
                        .map_err(|e| Error::io(t.temp_path(), e))?;
                }
                let dest = self.dir.join(&name);
                let committed = if action == Action::Installed {
                    t.commit_new()
                } else {
                    t.commit()
                };
                match committed {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        self.outcome(
                            &shown,
                            Some(&key),
                            Action::Skipped,
                            size,
                            Some("a copy appeared in the target while importing; kept".into()),
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(Error::io(&dest, e)),
                }
                if let Plan::Replace { old } = &plan {
                    // An upper-case name for the same key would shadow ours.
                    if *old != name {
                        remove_durably(&self.dir.join(old))
                            .map_err(|e| Error::io(&self.dir.join(old), e))?;
                    }
                }
                self.journal(action, &key, &check)?;
                (action, note)
            }
            (a, _) => (a, note),
        };
        if matches!(
            action,
            Action::Installed | Action::Replaced | Action::Present
        ) {
            let mut prefix = check.prefix.clone();
            if let (true, Some((h, _))) = (
                self.opts.reset_stats && action != Action::Present,
                prefix.as_mut(),
            ) {
                h.hits = 0;
                h.last_used = self.opts.now;
            }
            self.imported.insert(key.clone(), (check.size, prefix));
            self.on_disk.insert(key.clone(), name);
        }
        self.outcome(&shown, Some(&key), action, size, note);
        Ok(())
    }

    fn journal(&self, action: Action, key: &Key, check: &Checked) -> Result<()> {
        let (tokens, hits, reason) = match &check.prefix {
            Some((h, _)) => (
                h.tokens,
                if self.opts.reset_stats { 0 } else { h.hits },
                h.reason.name().into_owned(),
            ),
            None => (0, 0, String::new()),
        };
        journal::append(
            self.dir,
            &[Record {
                time: self.opts.now,
                op: if action == Action::Replaced {
                    "replace"
                } else {
                    "import"
                }
                .into(),
                key: key.to_string(),
                bytes: check.size,
                tokens,
                hits,
                reason,
                score: None,
                policy: None,
                why: format!("import from {}", self.opts.source),
            }],
        )
    }

    /// Read a small entry whole, refusing one larger than `max`.
    ///
    /// The buffer grows with the bytes that arrive, not with the size the
    /// header claims: a few hundred bytes of hostile stream must not cost
    /// `max` (64 MiB for the manifest) of memory.
    fn read_small<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, Flow> {
        let size = entry.size();
        if size > max {
            return Ok(None);
        }
        let mut v = Vec::new();
        match entry.take(size).read_to_end(&mut v) {
            Ok(n) if n as u64 == size => Ok(Some(v)),
            Ok(n) => {
                self.stream_cut(
                    shown,
                    format!("truncated stream: ended inside this entry ({n} of {size} bytes)"),
                );
                Err(Flow::Stop)
            }
            Err(e) => {
                self.stream_cut(shown, format!("stream unreadable inside this entry: {e}"));
                Err(Flow::Stop)
            }
        }
    }

    fn handle<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        progress: &mut dyn Progress,
    ) -> Result<Flow> {
        let ty = entry.header().entry_type();
        let raw = entry.path_bytes().into_owned();
        let shown = sanitize_line(&raw);
        let size = entry.size();
        let kind = classify_entry(&raw);
        let tainted = self.taint_all || std::mem::take(&mut self.taint_next);
        let drop_record_of = self.drop_record_of.take();
        let is_pending_record = !tainted
            && ty == tar::EntryType::Regular
            && matches!((&kind, &self.pending), (EntryName::Meta(n), Some(p)) if *n == p.name
                || Key::from_file_name(n).as_ref() == Some(&p.key));
        if !is_pending_record {
            self.flush_pending("no digest record follows it; not installed");
        }
        if ty.is_pax_local_extensions() || ty.is_gnu_longname() || ty.is_gnu_longlink() {
            self.taint_next = true;
            self.reject(
                &shown,
                None,
                Some(size),
                "pax/GNU extension header: kvc bundles use plain ustar headers; the entry it describes is rejected too",
            );
            return Ok(Flow::Next);
        }
        if ty.is_pax_global_extensions() {
            self.taint_all = true;
            self.reject(
                &shown,
                None,
                Some(size),
                "pax global header: it changes how every later entry reads; all of them are rejected",
            );
            return Ok(Flow::Next);
        }
        if tainted {
            self.reject(
                &shown,
                None,
                Some(size),
                "follows a pax/GNU extension header; rejected",
            );
            return Ok(Flow::Next);
        }
        if self.manifest_seen {
            self.reject(
                &shown,
                None,
                Some(size),
                "comes after MANIFEST.json, the end of the bundle",
            );
            return Ok(Flow::Next);
        }
        if let Some(p) = type_problem(ty) {
            self.reject(&shown, None, Some(size), p);
            return Ok(Flow::Next);
        }
        match kind {
            EntryName::Bad(msg) => {
                self.reject(&shown, None, Some(size), msg);
                Ok(Flow::Next)
            }
            EntryName::Data(key) => {
                if !self.seen.insert(key.clone()) {
                    self.drop_record_of = Some(key.clone());
                    self.reject(
                        &shown,
                        Some(&key),
                        Some(size),
                        format!(
                            "duplicate entry: {} appeared earlier in this bundle",
                            key.file_name()
                        ),
                    );
                    return Ok(Flow::Next);
                }
                self.receive(&mut entry, shown, key, progress)
            }
            EntryName::Meta(of) => {
                let Some(p) = self.pending.take() else {
                    let of = Key::from_file_name(&of);
                    if of.is_none() || of != drop_record_of {
                        self.reject(
                            &shown,
                            None,
                            Some(size),
                            "digest record without its checkpoint entry",
                        );
                    }
                    return Ok(Flow::Next);
                };
                match self.read_small(&mut entry, &shown, MAX_META_LEN) {
                    Ok(Some(bytes)) => self.complete(p, &bytes, progress)?,
                    Ok(None) => {
                        let (s, k) = (p.shown.clone(), p.key.clone());
                        self.reject(
                            &s,
                            Some(&k),
                            Some(p.check.size),
                            "its digest record is too large to be one",
                        );
                    }
                    Err(flow) => {
                        let (s, k) = (p.shown.clone(), p.key.clone());
                        self.reject(
                            &s,
                            Some(&k),
                            Some(p.check.size),
                            "stream ended inside its digest record",
                        );
                        return Ok(flow);
                    }
                }
                Ok(Flow::Next)
            }
            EntryName::Manifest => {
                self.manifest_seen = true;
                match self.read_small(&mut entry, &shown, MAX_MANIFEST_LEN) {
                    Ok(Some(bytes)) => match serde_json::from_slice::<Manifest>(&bytes) {
                        Ok(m) => self.manifest = Some(m),
                        Err(e) => self.reject(
                            &shown,
                            None,
                            Some(size),
                            format!("unreadable manifest: {e}"),
                        ),
                    },
                    Ok(None) => {
                        self.reject(&shown, None, Some(size), "manifest too large; not read")
                    }
                    Err(flow) => return Ok(flow),
                }
                Ok(Flow::Next)
            }
        }
    }

    /// After the stream: what is missing.
    fn finish_stream(&mut self) {
        if self.truncated {
            self.flush_pending("the stream broke before its digest record; not installed");
            return;
        }
        if self.pending.is_some() {
            self.truncated = true;
            self.flush_pending("truncated stream: ended before its digest record; not installed");
        }
        if !self.manifest_seen {
            if !self.truncated {
                self.stream_cut(
                    "(stream)",
                    "truncated stream: ended without MANIFEST.json (cut off, or not a kvc bundle); \
                     the complete entries before the cut were processed"
                        .into(),
                );
            }
            return;
        }
        if let Some(m) = &self.manifest {
            let missing: Vec<String> = m
                .entries
                .iter()
                .filter(|e| e.status == EntryStatus::Ok)
                .filter(|e| Key::from_file_name(&e.file).is_none_or(|k| !self.seen.contains(&k)))
                .map(|e| sanitize_line(e.file.as_bytes()))
                .collect();
            for f in missing {
                self.reject(
                    &f,
                    None,
                    None,
                    "listed in MANIFEST.json but missing from the stream",
                );
            }
        }
    }
}

/// Checkpoint names in `dir` by key; empty when `dir` does not exist yet.
fn names_on_disk(dir: &Path) -> Result<HashMap<Key, String>> {
    let mut out = HashMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let NameKind::Checkpoint(k) = classify_name(&name) {
            // Prefer the canonical lower-case name when both exist.
            if name == k.file_name() || !out.contains_key(&k) {
                out.insert(k, name);
            }
        }
    }
    Ok(out)
}

/// Install the checkpoints of the bundle read from `src` into `dir`.
///
/// `Err` only when the stream is not a tar stream at all (nothing was
/// read) or the target cannot be written; everything about entries is in
/// the report. Takes the directory lock (not in a dry run, which creates
/// nothing: no directory, no `.kvc/`).
pub fn import<R: Read>(
    src: R,
    dir: &Path,
    opts: &ImportOptions,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    let source = Path::new(&opts.source);
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(Error::invalid(dir, "not a directory")),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(dir, e)),
    }
    let mut im = Importer {
        dir,
        opts,
        engine: EngineChoice::given(opts.engine.unwrap_or(Engine::Ds4)),
        warnings: Vec::new(),
        warned_replace: false,
        lock: None,
        on_disk: HashMap::new(),
        seen: HashSet::new(),
        pending: None,
        entries: Vec::new(),
        imported: HashMap::new(),
        manifest_seen: false,
        manifest: None,
        truncated: false,
        taint_next: false,
        taint_all: false,
        drop_record_of: None,
        buf: vec![0u8; CHUNK],
    };
    let mut archive = tar::Archive::new(src);
    // Raw headers: see the module documentation.
    let mut entries = archive
        .entries()
        .map_err(|e| Error::io(source, e))?
        .raw(true);
    let mut any = false;
    loop {
        match entries.next() {
            None => break,
            Some(Ok(entry)) => {
                if !any {
                    // The input is a tar stream: only now is the target
                    // created and locked, so garbage input leaves no trace.
                    im.open_target()?;
                }
                any = true;
                if let Flow::Stop = im.handle(entry, progress)? {
                    break;
                }
            }
            Some(Err(e)) => {
                if !any {
                    // tar's message quotes the header's bytes: sanitized.
                    let why = sanitize_line(e.to_string().as_bytes());
                    return Err(Error::invalid(source, format!("not a tar stream: {why}")));
                }
                im.stream_cut(
                    "(stream)",
                    format!("stream unreadable after the last complete entry: {e}"),
                );
                break;
            }
        }
    }
    if !any {
        return Err(Error::invalid(
            source,
            "empty stream: not a kvc bundle (no tar entries)",
        ));
    }
    im.finish_stream();
    progress.finish();
    let budget = match opts.budget {
        Some(b) => Some(budget_after_import(&im, b)?),
        None => None,
    };
    Ok(ImportReport {
        dir: dir.to_path_buf(),
        dry_run: opts.dry_run,
        on_conflict: opts.on_conflict,
        entries: im.entries,
        truncated: im.truncated,
        manifest: im.manifest.map(|m| ManifestInfo {
            // From the stream: untrusted, like the entry names.
            kvc_version: sanitize_line(m.kvc_version.as_bytes()),
            exported_at: m.exported_at,
            entries: m.entries.len(),
        }),
        budget,
        engine: im.engine.describe(),
        warnings: im.warnings,
    })
}

// ---------------------------------------------------------------------------
// Budget: kvc evict after the import

/// `import --budget`: evict down to the budget, never touching what was
/// just imported nor agent saves, in the order of `policy`.
///
/// It is `kvc evict --budget`'s own planner and executor (re-reading each
/// victim before deleting it, journaling each deletion), run under the
/// lock the import already holds, with the imported keys protected.
fn budget_after_import(im: &Importer<'_>, b: BudgetOptions) -> Result<BudgetOutcome> {
    let dir = im.dir;
    let protected: HashSet<Key> = im.imported.keys().cloned().collect();
    let opts = evict::EvictOptions {
        policy: Some(b.policy),
        now: im.opts.now,
        budget: Some(b.bytes),
        protect: protected.into_iter().collect(),
        ..evict::EvictOptions::default()
    };
    let evicted = |v: &evict::Victim| Evicted {
        key: v.name(),
        file: v.file.clone(),
        size: v.size,
        reason: v.reason_name(),
        score: v.score,
    };
    let outcome = |before: u64, after: u64, evicted: Vec<Evicted>| BudgetOutcome {
        budget: b.bytes,
        policy: b.policy.name().into(),
        bytes_before: before,
        bytes_after: after,
        evicted,
        met: after <= b.bytes,
    };
    match (&im.lock, im.opts.dry_run) {
        (Some(lock), false) => {
            let r = evict::run_locked(dir, &opts, &mut evict::NoHooks, lock)?;
            let gone = r.deleted().map(|h| evicted(&h.victim)).collect();
            Ok(outcome(r.first_plan.counted_bytes, r.bytes_after, gone))
        }
        _ => {
            // Nothing was written: evaluate the directory as the import
            // would have left it. (The imported texts are not kept, so they
            // do not supersede waypoints in this preview; they are
            // protected anyway.) A real run scans under the lock in
            // `run_locked` instead.
            let existing = if dir.is_dir() {
                scan::scan_dir(dir, ScanOptions::default())?
            } else {
                crate::scan::Scan::default()
            };
            let engine = existing.engine.clone();
            let mut cps = existing.checkpoints;
            // Every copy of an imported key (a replaced one, an upper-case
            // name) makes way for the imported one.
            cps.retain(|c| !im.imported.contains_key(&c.key));
            for (key, (size, prefix)) in &im.imported {
                if let Some((h, tl)) = prefix {
                    cps.push(Checkpoint::from_header(
                        key.clone(),
                        dir.join(key.file_name()),
                        *size,
                        FILE_MODE,
                        h.clone(),
                        *tl,
                        engine.engine,
                    ));
                }
            }
            let scan = crate::scan::Scan {
                dir: dir.to_path_buf(),
                engine,
                checkpoints: cps,
                ..crate::scan::Scan::default()
            };
            let plan = evict::plan(&scan, &opts);
            let gone = plan.victims.iter().map(evicted).collect();
            Ok(outcome(plan.counted_bytes, plan.bytes_after(), gone))
        }
    }
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

    #[test]
    fn stream_check_hashes_the_text_across_chunk_boundaries() {
        let text = b"hello world, this is the text";
        let mut file = Vec::new();
        let mut h = [0u8; HEADER_LEN];
        h[..3].copy_from_slice(b"KVC");
        h[3] = 1;
        h[4] = 2; // quant
        h[8] = 1; // tokens
        h[16] = 1; // ctx
        h[40] = 5; // payload_bytes
        file.extend_from_slice(&h);
        file.extend_from_slice(&(text.len() as u32).to_le_bytes());
        file.extend_from_slice(text);
        file.extend_from_slice(b"12345");
        for step in [1, 3, 7, 50, 1000] {
            let mut c = StreamCheck::new();
            for chunk in file.chunks(step) {
                c.update(chunk);
            }
            let done = c.finish();
            assert_eq!(done.text_key, Some(Key::of_text(text)), "step {step}");
            assert_eq!(done.blake3, blake3::hash(&file).to_hex().to_string());
            let verdict = |k: &Key| done.verdict(k, |d| d.resolve(Engine::Ds4));
            assert_eq!(verdict(&Key::of_text(text)), Ok(DialectId::D1));
            assert!(matches!(
                verdict(&Key::of_text(b"other")),
                Err(Problem::Name { .. })
            ));
        }
    }

    /// A file's bytes with a header, text, payload and trailer.
    fn file(
        header: impl FnOnce(&mut [u8; HEADER_LEN]),
        text: &[u8],
        payload: &[u8],
        after: &[u8],
    ) -> Vec<u8> {
        let mut h = [0u8; HEADER_LEN];
        h[..3].copy_from_slice(b"KVC");
        h[3] = 1;
        h[4] = 2;
        h[8] = 1; // tokens
        h[16] = 1; // ctx
        h[40..48].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        header(&mut h);
        let mut f = h.to_vec();
        f.extend_from_slice(&(text.len() as u32).to_le_bytes());
        f.extend_from_slice(text);
        f.extend_from_slice(payload);
        f.extend_from_slice(after);
        f
    }

    #[test]
    fn a_stream_tells_the_dialect_as_a_file_read_at_random_does() {
        use crate::format::dialect::InMemory;
        let text = b"some text";
        let key = Key::of_text(text);
        // D8: LZ4 codec in byte 21, chunks of 2^12, a framing that adds up.
        let mut lz4 = Vec::new();
        lz4.extend_from_slice(&7u64.to_le_bytes());
        lz4.extend_from_slice(&2u32.to_le_bytes());
        for (raw, comp) in [(3u32, 2u32), (4, 1)] {
            lz4.extend_from_slice(&raw.to_le_bytes());
            lz4.extend_from_slice(&comp.to_le_bytes());
            lz4.extend(std::iter::repeat_n(9u8, comp as usize));
        }
        let d8 = |v: u8| {
            file(
                |h| {
                    h[3] = v;
                    h[20] = 2;
                    h[21] = 1;
                    h[22] = 12;
                },
                text,
                &lz4,
                b"",
            )
        };
        // The same bytes 21-22 without the framing: a D11 fingerprint.
        let d11 = file(
            |h| {
                h[20] = 2;
                h[21] = 1;
                h[22] = 12;
            },
            text,
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
            b"",
        );
        // D14: version 2, ABI 3, the u64 at 40 points at `TAIL`.
        let mut d14 = file(|h| h[3] = 2, text, b"", b"");
        let tail_at = d14.len() as u64 + 5;
        d14[20] = 3;
        d14[40..48].copy_from_slice(&tail_at.to_le_bytes());
        d14.extend_from_slice(b"xxxxxTAILmore");
        // A titled session, its title cut by a NUL for the identity.
        let title = b"Plan\0junk";
        let mut after = (title.len() as u32).to_le_bytes().to_vec();
        after.extend_from_slice(title);
        let session = file(
            |h| {
                h[6] = 8;
                h[20] = 2;
                h[24] = 42;
            },
            text,
            b"pay",
            &after,
        );
        let identity = crate::format::trailer::session_identity(b"Plan", 42);
        for (f, name) in [
            (d8(1), &key),
            (d8(2), &key),
            (d11, &key),
            (d14, &key),
            (session.clone(), &identity),
            (session, &key),
        ] {
            let h = Header::decode(f[..HEADER_LEN].try_into().unwrap());
            let tl = u32::from_le_bytes(f[HEADER_LEN..PREFIX_LEN].try_into().unwrap());
            let want = dialect::detect(&h, tl, Some(name), &InMemory(&f));
            for step in [1, 5, 13, 64, 4096] {
                let mut c = StreamCheck::new();
                for chunk in f.chunks(step) {
                    c.update(chunk);
                }
                let done = c.finish();
                assert_eq!(
                    dialect::detect(&h, tl, Some(name), &done.probe),
                    want,
                    "step {step}"
                );
                let verdict = done.verdict(name, |d| d.resolve(Engine::Ds4));
                match &want {
                    Detected::Known(DialectId::D8 | DialectId::D14) => {
                        assert!(matches!(verdict, Err(Problem::Foreign(_))), "{verdict:?}")
                    }
                    Detected::Known(DialectId::D3) if name == &key => {
                        assert!(matches!(verdict, Err(Problem::Name { .. })), "{verdict:?}")
                    }
                    Detected::Known(d) => assert_eq!(verdict, Ok(*d)),
                    other => panic!("{other:?}"),
                }
            }
        }
    }
}
