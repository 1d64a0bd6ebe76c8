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
pub const VERSION: u8 = 1;
/// magic, version, u32 count.
pub const SECTION_HEADER_LEN: usize = 8;
/// Per entry: u32 id_len, u32 dsml_len.
pub const ENTRY_HEADER_LEN: usize = 8;

/// ds4's loader limits: ids of 1..=256 bytes, DSML blocks of 1 byte to
/// 512 MiB, at most 4 × max ids entries (max ids defaults to 100000).
pub const MAX_ID_LEN: usize = 256;
pub const MAX_DSML_LEN: usize = 512 << 20;
pub const DEFAULT_MAX_IDS: u32 = 100_000;
pub const MAX_COUNT: u32 = 4 * DEFAULT_MAX_IDS;

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

/// ext bits 0 and 3 together: no engine writes both (the server writes tool
/// maps, the agent titles), so such a file is reported, never guessed at.
pub fn trailer_conflict(h: &Header) -> bool {
    h.ext_flags.has_tool_map() && h.ext_flags.has_session_title()
}

/// Bytes of a session title kept for display; the rest is only hashed. The
/// agent's titles are one line; a longer claim costs reading, not memory.
pub const TITLE_KEEP: usize = 1024;

/// A session-title trailer (FORMAT.md §5b) as ds4-agent reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTitle {
    /// `title_len` as stored.
    pub len: u32,
    /// The first [`TITLE_KEEP`] bytes of the title.
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

/// Read the session title at `payload_end`, as ds4-agent does (it seeks to
/// `52 + text_len + payload_bytes`). The agent caps `title_len` by the bytes
/// left, so a claim past the end reads as a shorter title and the identity
/// no longer matches: kvc reports it as cut short instead.
pub fn read_session_title(
    probe: &dyn Probe,
    payload_end: u64,
    created: u64,
) -> Result<SessionTitle, TitleError> {
    let left = probe.size().saturating_sub(payload_end);
    let mut len = [0u8; 4];
    if left < 4 {
        return Err(TitleError::Short(left));
    }
    if !probe.read_at(payload_end, &mut len) {
        return Err(TitleError::Unreadable);
    }
    let len = u32::from_le_bytes(len);
    let body = left - 4;
    if len as u64 > body {
        return Err(TitleError::Truncated { len, left: body });
    }
    let mut head = vec![0u8; (len as usize).min(TITLE_KEEP)];
    if !probe.read_at(payload_end + 4, &mut head) {
        return Err(TitleError::Unreadable);
    }
    // The agent hashes the title as a C string (`strlen`, ds4_agent.c
    // agent_session_identity_sha at b030961): a NUL ends it.
    let mut h = Sha1::new();
    let mut buf = [0u8; 16 << 10];
    let mut pos = 0u64;
    while pos < len as u64 {
        let n = (len as u64 - pos).min(buf.len() as u64) as usize;
        if !probe.read_at(payload_end + 4 + pos, &mut buf[..n]) {
            return Err(TitleError::Unreadable);
        }
        match memchr::memchr(0, &buf[..n]) {
            Some(nul) => {
                h.update(&buf[..nul]);
                break;
            }
            None => h.update(&buf[..n]),
        }
        pos += n as u64;
    }
    h.update(created.to_le_bytes());
    Ok(SessionTitle {
        len,
        head,
        identity: Key::from_digest(&h.finalize().into()),
        trailing: body - len as u64,
    })
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
}
