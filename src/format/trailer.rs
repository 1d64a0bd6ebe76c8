//! The trailers that may follow a payload: the tool-id map (FORMAT.md §5,
//! ext bit 0, ds4-server), which maps API tool-call ids to the exact DSML
//! block the model sampled so a restarted server can replay past tool calls
//! byte for byte; and the session title (§5b, ext bit 3, ds4-agent since
//! bfe070a 2026-05-24), which names an agent session.

use super::dialect::Probe;
use super::header::Header;
use super::Key;
use sha1::{Digest, Sha1};

/// `KTM` at the start of the section.
pub const MAGIC: [u8; 3] = *b"KTM";
pub(crate) const VERSION: u8 = 1;
/// magic, version, u32 count.
pub(crate) const SECTION_HEADER_LEN: usize = 8;
/// Per entry: u32 id_len, u32 dsml_len.
pub(crate) const ENTRY_HEADER_LEN: usize = 8;

/// ds4's loader limits: ids of 1..=256 bytes, DSML blocks of 1 byte to
/// 512 MiB, at most 4 × max ids entries (max ids defaults to 100000).
pub(crate) const MAX_ID_LEN: usize = 256;
pub(crate) const MAX_DSML_LEN: usize = 512 << 20;
pub(crate) const DEFAULT_MAX_IDS: u32 = 100_000;
pub(crate) const MAX_COUNT: u32 = 4 * DEFAULT_MAX_IDS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolMapEntry {
    pub id: Vec<u8>,
    pub dsml: Vec<u8>,
}

/// A decoded map, in stored order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolMap {
    pub entries: Vec<ToolMapEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrailerError {
    #[error("trailer section is {0} bytes, shorter than its 8-byte header")]
    Short(usize),
    #[error("trailer magic is {0:02x?}, not \"KTM\"")]
    BadMagic([u8; 3]),
    #[error("trailer version {0} is not 1")]
    BadVersion(u8),
    #[error("trailer claims {0} entries, above ds4's limit of {MAX_COUNT}")]
    TooMany(u32),
    #[error("trailer entry {index}: id length {len} outside 1..={MAX_ID_LEN}")]
    IdLen { index: u32, len: u32 },
    #[error("trailer entry {index}: DSML length {len} outside 1..={MAX_DSML_LEN}")]
    DsmlLen { index: u32, len: u32 },
    #[error("trailer entry {index} runs past the end of the file")]
    Truncated { index: u32 },
    #[error("{0} unexpected bytes after the trailer section")]
    TrailingBytes(usize),
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

impl ToolMap {
    /// Decode a whole trailer region (everything after the payload).
    ///
    /// Strict: the region must be exactly one well-formed section within
    /// ds4's limits. Lengths are checked against the bytes present before any
    /// allocation, so hostile counts cost nothing.
    pub fn decode(b: &[u8]) -> Result<ToolMap, TrailerError> {
        if b.len() < SECTION_HEADER_LEN {
            return Err(TrailerError::Short(b.len()));
        }
        let magic = [b[0], b[1], b[2]];
        if magic != MAGIC {
            return Err(TrailerError::BadMagic(magic));
        }
        if b[3] != VERSION {
            return Err(TrailerError::BadVersion(b[3]));
        }
        let count = u32_at(b, 4).expect("length checked");
        if count > MAX_COUNT {
            return Err(TrailerError::TooMany(count));
        }
        // Each entry needs at least 8 + 1 + 1 bytes: bound the allocation by
        // what the input could possibly hold.
        let room = (b.len() - SECTION_HEADER_LEN) / (ENTRY_HEADER_LEN + 2);
        let mut entries = Vec::with_capacity((count as usize).min(room));
        let mut off = SECTION_HEADER_LEN;
        for index in 0..count {
            let (Some(id_len), Some(dsml_len)) = (u32_at(b, off), u32_at(b, off + 4)) else {
                return Err(TrailerError::Truncated { index });
            };
            if id_len == 0 || id_len as usize > MAX_ID_LEN {
                return Err(TrailerError::IdLen { index, len: id_len });
            }
            if dsml_len == 0 || dsml_len as usize > MAX_DSML_LEN {
                return Err(TrailerError::DsmlLen {
                    index,
                    len: dsml_len,
                });
            }
            off += ENTRY_HEADER_LEN;
            let id_end = off + id_len as usize;
            let dsml_end = id_end + dsml_len as usize;
            if dsml_end > b.len() {
                return Err(TrailerError::Truncated { index });
            }
            entries.push(ToolMapEntry {
                id: b[off..id_end].to_vec(),
                dsml: b[id_end..dsml_end].to_vec(),
            });
            off = dsml_end;
        }
        if off != b.len() {
            return Err(TrailerError::TrailingBytes(b.len() - off));
        }
        Ok(ToolMap { entries })
    }

    /// The section bytes, as ds4 writes them.
    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self
            .entries
            .iter()
            .map(|e| ENTRY_HEADER_LEN + e.id.len() + e.dsml.len())
            .sum();
        let mut out = Vec::with_capacity(SECTION_HEADER_LEN + body);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&(e.id.len() as u32).to_le_bytes());
            out.extend_from_slice(&(e.dsml.len() as u32).to_le_bytes());
            out.extend_from_slice(&e.id);
            out.extend_from_slice(&e.dsml);
        }
        out
    }
}

/// One entry of a tool-id map as [`walk`] meets it: its id (at most 256
/// bytes, held), and where its DSML block is (not read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryAt {
    pub index: u32,
    pub id: Vec<u8>,
    pub dsml_len: u32,
    /// Offset of the DSML block in the file.
    pub dsml_at: u64,
}

/// Why [`walk`] stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The bytes are not one well-formed section ([`ToolMap::decode`]'s
    /// error for the same bytes).
    Bad(TrailerError),
    /// The file could not be read.
    Unreadable,
}

/// Bytes read ahead by [`walk`]: entry headers and ids are read through
/// one buffer of this size, DSML blocks are skipped.
const WALK_BUFFER: usize = 64 << 10;

/// Sequential reads through a buffer, skipping forward cheaply.
struct Ahead<'a> {
    probe: &'a dyn Probe,
    buf: Vec<u8>,
    /// File offset of `buf[0]`, and how many bytes of `buf` are valid.
    at: u64,
    have: usize,
}

impl<'a> Ahead<'a> {
    fn new(probe: &'a dyn Probe) -> Ahead<'a> {
        Ahead {
            probe,
            buf: Vec::new(),
            at: 0,
            have: 0,
        }
    }

    /// `n` bytes at `off`, all below `end`; `Ok(None)` when they are not.
    fn get(&mut self, off: u64, n: usize, end: u64) -> Result<Option<&[u8]>, WalkError> {
        if off.checked_add(n as u64).is_none_or(|e| e > end) {
            return Ok(None);
        }
        let inside = off >= self.at && off + n as u64 <= self.at + self.have as u64;
        if !inside {
            let want = (n.max(WALK_BUFFER) as u64).min(end - off) as usize;
            self.buf.resize(want, 0);
            if !self.probe.read_at(off, &mut self.buf[..want]) {
                return Err(WalkError::Unreadable);
            }
            self.at = off;
            self.have = want;
        }
        let from = (off - self.at) as usize;
        Ok(Some(&self.buf[from..from + n]))
    }
}

/// Walk the tool-id map section in `[at, end)` of a file, entry by entry,
/// checking it exactly as [`ToolMap::decode`] checks the same bytes, and
/// hand each entry to `f`. Holds at most one buffer (`WALK_BUFFER`) and
/// one id, whatever the section claims: the DSML blocks are skipped, not
/// read (a sparse 1.5 GiB trailer costs a few reads). Returns the number of
/// entries.
pub fn walk(
    probe: &dyn Probe,
    at: u64,
    end: u64,
    f: &mut dyn FnMut(&EntryAt),
) -> Result<u32, WalkError> {
    let bad = |e| Err(WalkError::Bad(e));
    let len = end.saturating_sub(at);
    if len < SECTION_HEADER_LEN as u64 {
        return bad(TrailerError::Short(len as usize));
    }
    let mut r = Ahead::new(probe);
    let head = r
        .get(at, SECTION_HEADER_LEN, end)?
        .expect("length checked")
        .to_vec();
    let magic = [head[0], head[1], head[2]];
    if magic != MAGIC {
        return bad(TrailerError::BadMagic(magic));
    }
    if head[3] != VERSION {
        return bad(TrailerError::BadVersion(head[3]));
    }
    let count = u32_at(&head, 4).expect("length checked");
    if count > MAX_COUNT {
        return bad(TrailerError::TooMany(count));
    }
    let mut off = at + SECTION_HEADER_LEN as u64;
    let mut entry = EntryAt {
        index: 0,
        id: Vec::new(),
        dsml_len: 0,
        dsml_at: 0,
    };
    for index in 0..count {
        let Some(h) = r.get(off, ENTRY_HEADER_LEN, end)? else {
            return bad(TrailerError::Truncated { index });
        };
        let (id_len, dsml_len) = (
            u32_at(h, 0).expect("8 bytes"),
            u32_at(h, 4).expect("8 bytes"),
        );
        if id_len == 0 || id_len as usize > MAX_ID_LEN {
            return bad(TrailerError::IdLen { index, len: id_len });
        }
        if dsml_len == 0 || dsml_len as usize > MAX_DSML_LEN {
            return bad(TrailerError::DsmlLen {
                index,
                len: dsml_len,
            });
        }
        off += ENTRY_HEADER_LEN as u64;
        let dsml_at = off + id_len as u64;
        let dsml_end = dsml_at + dsml_len as u64;
        if dsml_end > end {
            return bad(TrailerError::Truncated { index });
        }
        let id = r
            .get(off, id_len as usize, end)?
            .expect("within the section");
        entry.index = index;
        entry.id.clear();
        entry.id.extend_from_slice(id);
        entry.dsml_len = dsml_len;
        entry.dsml_at = dsml_at;
        f(&entry);
        off = dsml_end;
    }
    if off != end {
        return bad(TrailerError::TrailingBytes((end - off) as usize));
    }
    Ok(count)
}

/// A tool-id map larger than a command that must hold it (to list, export
/// or prune it) holds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {len}-byte tool-id map is larger than kvc holds in memory to list, export or prune it ({max} bytes); `kvc verify` checks it and `kvc trailer strip` removes it without reading it whole")]
pub(crate) struct TooLarge {
    pub len: u64,
    pub max: u64,
}

/// What [`read_map`] refuses or fails on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadMapError {
    TooLarge(TooLarge),
    Walk(WalkError),
}

/// The most bytes of tool-id map a command holds to list, export or prune
/// it. ds4 allows 512 MiB DSML blocks, but writes blocks of a few KiB;
/// 256 MiB is thousands of times a real map, and what a listing of it
/// could still show.
pub(crate) const MAX_HELD_MAP: u64 = 256 << 20;

/// The whole map in `[at, end)`, held in memory, when the section is at
/// most `max` bytes (checked before anything is read).
pub(crate) fn read_map(
    probe: &dyn Probe,
    at: u64,
    end: u64,
    max: u64,
) -> Result<ToolMap, ReadMapError> {
    let len = end.saturating_sub(at);
    if len > max {
        return Err(ReadMapError::TooLarge(TooLarge { len, max }));
    }
    let mut entries = Vec::new();
    let mut unreadable = false;
    walk(probe, at, end, &mut |e| {
        let mut dsml = vec![0u8; e.dsml_len as usize];
        if !probe.read_at(e.dsml_at, &mut dsml) {
            unreadable = true;
        }
        entries.push(ToolMapEntry {
            id: e.id.clone(),
            dsml,
        });
    })
    .map_err(ReadMapError::Walk)?;
    if unreadable {
        return Err(ReadMapError::Walk(WalkError::Unreadable));
    }
    Ok(ToolMap { entries })
}

/// The bytes of an id or DSML block that ds4 reads: it uses both as C
/// strings (`strcmp`, `strlen`), so a NUL byte ends them.
pub(crate) fn c_string(b: &[u8]) -> &[u8] {
    match memchr::memchr(0, b) {
        Some(n) => &b[..n],
        None => b,
    }
}

/// Which field of an entry starts with a NUL byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NulField {
    Id,
    Dsml,
}

/// What ds4 makes of one entry of a map it loads (ds4_server.c at
/// b030961: `kv_tool_map_load_from_pos`, `tool_memory_put_source`,
/// `tool_memory_put_locked`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryUse {
    /// The entry ds4 uses for its id.
    Used,
    /// A later entry has the same id (as a C string) and replaces this one
    /// when ds4 loads the map: the last entry of an id wins. `by` is the
    /// index (from 0) of that last entry.
    Shadowed { by: usize },
    /// Its id or DSML block starts with a NUL byte: an empty C string,
    /// which ds4 drops (it still counts it as loaded; it shadows nothing).
    Dropped(NulField),
}

impl ToolMap {
    /// What ds4 makes of each entry, in stored order.
    pub fn uses(&self) -> Vec<EntryUse> {
        let mut last: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
        let dropped = |e: &ToolMapEntry| {
            if c_string(&e.id).is_empty() {
                Some(NulField::Id)
            } else if c_string(&e.dsml).is_empty() {
                Some(NulField::Dsml)
            } else {
                None
            }
        };
        for (i, e) in self.entries.iter().enumerate() {
            if dropped(e).is_none() {
                last.insert(c_string(&e.id), i);
            }
        }
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| match dropped(e) {
                Some(f) => EntryUse::Dropped(f),
                None => match last[c_string(&e.id)] {
                    by if by == i => EntryUse::Used,
                    by => EntryUse::Shadowed { by },
                },
            })
            .collect()
    }
}

/// ext bits 0 and 3 together: no engine writes both (the server writes tool
/// maps, the agent titles), so such a file is reported, never guessed at.
pub(crate) fn trailer_conflict(h: &Header) -> bool {
    h.ext_flags.has_tool_map() && h.ext_flags.has_session_title()
}

/// Bytes of a session title kept for display; the rest is only hashed. The
/// agent's titles are one line; a longer claim costs reading, not memory.
pub(crate) const TITLE_KEEP: usize = 1024;

/// A session-title trailer (FORMAT.md §5b) as ds4-agent reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTitle {
    /// `title_len` as stored.
    pub len: u32,
    /// The first `TITLE_KEEP` bytes of the title.
    pub head: Vec<u8>,
    /// The identity the title gives the session: SHA-1(title ‖ created as
    /// u64 little-endian), the name ds4-agent saves it under.
    pub identity: Key,
    /// Bytes after the title; the agent writes none.
    pub trailing: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TitleError {
    #[error("ext bit 3 says a session title follows the payload, but only {0} bytes do (a title needs at least 4)")]
    Short(u64),
    #[error("session title claims {len} bytes, only {left} follow its length (cut short)")]
    Truncated { len: u32, left: u64 },
    #[error("the session title could not be read")]
    Unreadable,
}

/// Reads a session-title trailer (FORMAT.md §5b) from bytes fed in file
/// order: by [`read_session_title`] from an open file, and by a stream that
/// passes every byte of a file once (a bundle's export and import). Bytes
/// outside the trailer are ignored, so a stream can feed it everything.
#[derive(Clone, Debug)]
pub(crate) struct TitleReader {
    /// Where the title's length field starts: the end of the payload.
    at: u64,
    created: u64,
    len: [u8; 4],
    head: Vec<u8>,
    sha: Sha1,
    /// Still hashing: no NUL met yet.
    hashing: bool,
}

/// The part of `[from, to)` that a buffer at `off` of `len` bytes covers, as
/// a range of that buffer.
fn overlap(off: u64, len: usize, from: u64, to: u64) -> Option<std::ops::Range<usize>> {
    let end = off.saturating_add(len as u64);
    let (a, b) = (off.max(from), end.min(to));
    (a < b).then(|| (a - off) as usize..(b - off) as usize)
}

impl TitleReader {
    /// A reader for the title of a file whose payload ends at
    /// `payload_end`, created at `created` (header offset 24).
    pub fn new(payload_end: u64, created: u64) -> TitleReader {
        TitleReader {
            at: payload_end,
            created,
            len: [0; 4],
            head: Vec::new(),
            sha: Sha1::new(),
            hashing: true,
        }
    }

    fn title_len(&self) -> u64 {
        u32::from_le_bytes(self.len) as u64
    }

    /// Feed `buf`, the bytes at file offset `off`. Bytes arrive in file
    /// order, each once; the length field comes before the title, so the
    /// title's extent is known when its bytes arrive.
    pub fn feed(&mut self, off: u64, buf: &[u8]) {
        let len_end = self.at.saturating_add(4);
        if let Some(r) = overlap(off, buf.len(), self.at, len_end) {
            let into = (off + r.start as u64 - self.at) as usize;
            self.len[into..into + r.len()].copy_from_slice(&buf[r]);
        }
        let body_end = len_end.saturating_add(self.title_len());
        if let Some(r) = overlap(off, buf.len(), len_end, body_end) {
            let chunk = &buf[r];
            let keep = TITLE_KEEP.saturating_sub(self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..keep]);
            // The agent hashes the title as a C string (`strlen`, ds4_agent.c
            // agent_session_identity_sha at b030961): a NUL ends it.
            if self.hashing {
                match memchr::memchr(0, chunk) {
                    Some(nul) => {
                        self.sha.update(&chunk[..nul]);
                        self.hashing = false;
                    }
                    None => self.sha.update(chunk),
                }
            }
        }
    }

    /// Whether bytes past those fed so far can still change the result
    /// (the hash stops at a NUL, the kept head at [`TITLE_KEEP`]).
    fn wants_more(&self) -> bool {
        self.hashing || (self.head.len() as u64) < self.title_len().min(TITLE_KEEP as u64)
    }

    /// The title of a `size`-byte file all of whose bytes from the payload's
    /// end on were fed. The agent caps `title_len` by the bytes left, so a
    /// claim past the end reads as a shorter title and the identity no
    /// longer matches: kvc reports it as cut short instead.
    pub fn finish(self, size: u64) -> Result<SessionTitle, TitleError> {
        let left = size.saturating_sub(self.at);
        if left < 4 {
            return Err(TitleError::Short(left));
        }
        let len = u32::from_le_bytes(self.len);
        let body = left - 4;
        if len as u64 > body {
            return Err(TitleError::Truncated { len, left: body });
        }
        let mut h = self.sha;
        h.update(self.created.to_le_bytes());
        Ok(SessionTitle {
            len,
            head: self.head,
            identity: Key::from_digest(&h.finalize().into()),
            trailing: body - len as u64,
        })
    }
}

/// Read the session title at `payload_end`, as ds4-agent does (it seeks to
/// `52 + text_len + payload_bytes`). See `TitleReader::finish` for a
/// title that claims more bytes than the file has.
pub fn read_session_title(
    probe: &dyn Probe,
    payload_end: u64,
    created: u64,
) -> Result<SessionTitle, TitleError> {
    let size = probe.size();
    let mut r = TitleReader::new(payload_end, created);
    let left = size.saturating_sub(payload_end);
    if left < 4 {
        return r.finish(size);
    }
    let mut len = [0u8; 4];
    if !probe.read_at(payload_end, &mut len) {
        return Err(TitleError::Unreadable);
    }
    r.feed(payload_end, &len);
    let title_len = r.title_len();
    if title_len > left - 4 {
        return r.finish(size);
    }
    let mut buf = [0u8; 16 << 10];
    let mut pos = 0u64;
    while pos < title_len && r.wants_more() {
        let n = (title_len - pos).min(buf.len() as u64) as usize;
        if !probe.read_at(payload_end + 4 + pos, &mut buf[..n]) {
            return Err(TitleError::Unreadable);
        }
        r.feed(payload_end + 4 + pos, &buf[..n]);
        pos += n as u64;
    }
    r.finish(size)
}

/// The identity name of an agent session: SHA-1(title ‖ created as u64
/// little-endian) (FORMAT.md §2, ds4-agent since bfe070a).
pub fn session_identity(title: &[u8], created: u64) -> Key {
    let title = title.split(|&b| b == 0).next().unwrap_or_default();
    let mut h = Sha1::new();
    h.update(title);
    h.update(created.to_le_bytes());
    Key::from_digest(&h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = b"KTM\x01".to_vec();
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (id, dsml) in entries {
            b.extend_from_slice(&(id.len() as u32).to_le_bytes());
            b.extend_from_slice(&(dsml.len() as u32).to_le_bytes());
            b.extend_from_slice(id);
            b.extend_from_slice(dsml);
        }
        b
    }

    #[test]
    fn a_walk_judges_every_section_as_decode_does() {
        use crate::format::dialect::InMemory;
        let good = section(&[(b"call_1", b"<tool_calls>x</tool_calls>"), (b"c2", b"y")]);
        let mut cases = vec![good.clone(), b"KTM".to_vec(), b"XYZ\x01\0\0\0\0".to_vec()];
        let mut v2 = good.clone();
        v2[3] = 2;
        cases.push(v2);
        let mut many = good.clone();
        many[4..8].copy_from_slice(&(MAX_COUNT + 1).to_le_bytes());
        cases.push(many);
        for cut in 0..good.len() {
            cases.push(good[..cut].to_vec());
        }
        let mut extra = good.clone();
        extra.push(0);
        cases.push(extra);
        let mut bad_id = good.clone();
        bad_id[8..12].copy_from_slice(&0u32.to_le_bytes());
        cases.push(bad_id);
        for b in &cases {
            // The section after 5 bytes of something else, as in a file.
            let mut file = b"xxxxx".to_vec();
            file.extend_from_slice(b);
            let mut ids = Vec::new();
            let walked = walk(&InMemory(&file), 5, file.len() as u64, &mut |e| {
                ids.push(e.id.clone())
            });
            match ToolMap::decode(b) {
                Ok(m) => {
                    assert_eq!(walked, Ok(m.entries.len() as u32));
                    let want: Vec<_> = m.entries.iter().map(|e| e.id.clone()).collect();
                    assert_eq!(ids, want);
                    let held = read_map(&InMemory(&file), 5, file.len() as u64, 1 << 20).unwrap();
                    assert_eq!(held, m);
                }
                Err(e) => assert_eq!(walked, Err(WalkError::Bad(e)), "{b:?}"),
            }
        }
        assert!(matches!(
            read_map(&InMemory(&good), 0, good.len() as u64, 10),
            Err(ReadMapError::TooLarge(_))
        ));
    }

    #[test]
    fn decodes_what_ds4_writes_and_encodes_it_back() {
        let raw = section(&[(b"call_1", b"<tool_calls>x</tool_calls>"), (b"c2", b"y")]);
        let map = ToolMap::decode(&raw).unwrap();
        assert_eq!(map.entries.len(), 2);
        assert_eq!(map.entries[1].id, b"c2");
        assert_eq!(map.encode(), raw);
    }

    #[test]
    fn rejects_malformed_sections_without_allocating_claims() {
        assert_eq!(ToolMap::decode(b"KTM"), Err(TrailerError::Short(3)));
        assert!(matches!(
            ToolMap::decode(b"XYZ\x01\0\0\0\0"),
            Err(TrailerError::BadMagic(_))
        ));
        let mut huge = b"KTM\x01".to_vec();
        huge.extend_from_slice(&MAX_COUNT.to_le_bytes());
        assert_eq!(
            ToolMap::decode(&huge),
            Err(TrailerError::Truncated { index: 0 })
        );
        let mut bad_id = section(&[(b"a", b"b")]);
        bad_id[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            ToolMap::decode(&bad_id),
            Err(TrailerError::IdLen { .. })
        ));
        let mut extra = section(&[(b"a", b"b")]);
        extra.push(0);
        assert_eq!(ToolMap::decode(&extra), Err(TrailerError::TrailingBytes(1)));
    }

    #[test]
    fn session_titles_as_the_agent_reads_them() {
        use crate::format::dialect::InMemory;
        let mut f = vec![7u8; 10];
        f.extend_from_slice(&5u32.to_le_bytes());
        f.extend_from_slice(b"Hello");
        let t = read_session_title(&InMemory(&f), 10, 42).unwrap();
        assert_eq!(t.head, b"Hello");
        assert_eq!(t.trailing, 0);
        assert_eq!(t.identity, session_identity(b"Hello", 42));
        let mut want = b"Hello".to_vec();
        want.extend_from_slice(&42u64.to_le_bytes());
        assert_eq!(t.identity, Key::of_text(&want));
        // A NUL ends the title for the identity, as strlen() does.
        assert_eq!(
            session_identity(b"Hel\0lo", 42),
            session_identity(b"Hel", 42)
        );
        f.truncate(f.len() - 1);
        assert_eq!(
            read_session_title(&InMemory(&f), 10, 42),
            Err(TitleError::Truncated { len: 5, left: 4 })
        );
        assert_eq!(
            read_session_title(&InMemory(&f[..12]), 10, 42),
            Err(TitleError::Short(2))
        );
    }

    #[test]
    fn a_title_fed_in_pieces_reads_as_one_read_from_the_file() {
        use crate::format::dialect::InMemory;
        let mut f = vec![7u8; 10];
        f.extend_from_slice(&9u32.to_le_bytes());
        f.extend_from_slice(b"Hi\0there!");
        f.extend_from_slice(b"xy");
        let want = read_session_title(&InMemory(&f), 10, 42).unwrap();
        assert_eq!(want.identity, session_identity(b"Hi", 42));
        assert_eq!((want.len, want.trailing), (9, 2));
        for step in [1, 2, 3, 5, 8, 100] {
            let mut r = TitleReader::new(10, 42);
            for (i, chunk) in f.chunks(step).enumerate() {
                r.feed((i * step) as u64, chunk);
            }
            assert_eq!(r.finish(f.len() as u64), Ok(want.clone()), "step {step}");
        }
        // Cut short: the same error whichever way it is read.
        let cut = &f[..16];
        let mut r = TitleReader::new(10, 42);
        r.feed(0, cut);
        assert_eq!(
            r.finish(cut.len() as u64),
            read_session_title(&InMemory(cut), 10, 42)
        );
    }

    #[test]
    fn ds4_reads_the_last_entry_of_an_id_and_drops_empty_c_strings() {
        let e = |id: &[u8], dsml: &[u8]| ToolMapEntry {
            id: id.to_vec(),
            dsml: dsml.to_vec(),
        };
        let map = ToolMap {
            entries: vec![
                e(b"a", b"1"),
                e(b"b", b"2"),
                e(b"a\0junk", b"3"),
                e(b"\0a", b"4"),
                e(b"b", b"\0"),
            ],
        };
        assert_eq!(
            map.uses(),
            [
                EntryUse::Shadowed { by: 2 },
                EntryUse::Used,
                EntryUse::Used,
                EntryUse::Dropped(NulField::Id),
                EntryUse::Dropped(NulField::Dsml),
            ]
        );
    }
}
