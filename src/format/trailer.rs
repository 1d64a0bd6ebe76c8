//! The tool-id map trailer (FORMAT.md §5): maps API tool-call ids to the
//! exact DSML block the model sampled, so a restarted ds4-server can replay
//! past tool calls byte for byte.

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
}
