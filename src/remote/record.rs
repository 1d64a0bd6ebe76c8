//! The record each object carries as user metadata (`x-amz-meta-kvc`).

use crate::bundle::HeaderSummary;
use crate::format::checkpoint::Key;
use crate::format::dialect::DialectId;
use crate::format::{Header, HEADER_LEN};
use serde::{Deserialize, Serialize};

/// Version of the record schema. A record of a newer version is refused
/// rather than guessed at.
pub const RECORD_VERSION: u32 = 1;

/// The metadata name (`x-amz-meta-kvc` on S3).
pub(crate) const META_NAME: &str = "kvc";

/// S3 allows 2 KiB of user metadata per object, names included; a record
/// stays well inside it (a title is dropped before it would not).
pub(crate) const MAX_RECORD_LEN: usize = 1800;

/// What a remote knows about one checkpoint without reading it: written
/// by `push` from the bytes it uploads, checked by `pull` against the
/// bytes it downloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_VERSION`].
    pub record: u32,
    /// The checkpoint key (the object name without `.kv`).
    pub key: String,
    /// Bytes of the object.
    pub size: u64,
    /// BLAKE3 of the whole object, hex: the transfer is checked by it.
    pub blake3: String,
    /// BLAKE3 of everything after the 48-byte header (text, payload,
    /// trailers), hex: what two copies of one checkpoint share when only
    /// their hit counts differ.
    pub content_blake3: String,
    /// The dialect (FORMAT.md §9) the pushing host's engine read it as.
    pub dialect: String,
    /// The 48-byte header as pushed, hex: what a listing ranks and matches
    /// by, and what a pull must find at the start of the object.
    pub raw_header: String,
    /// The same header, decoded for people and `jq`.
    pub header: HeaderSummary,
    /// The listing title (a session title, or the text's first user turn),
    /// sanitized; dropped when it would make the record too long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `user@host` of the pusher.
    pub pushed_by: String,
    /// Unix seconds.
    pub pushed_at: u64,
    pub kvc_version: String,
}

/// 96 hex digits as the 48 bytes of a header.
pub(crate) fn parse_header_hex(hex: &str) -> Option<[u8; HEADER_LEN]> {
    let s = hex.as_bytes();
    if s.len() != 2 * HEADER_LEN {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; HEADER_LEN];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Record {
    /// The JSON value stored as metadata: ASCII only (HTTP header values
    /// are), every other character `\u`-escaped, within
    /// [`MAX_RECORD_LEN`] (the title gives way first).
    pub(crate) fn encode(&self) -> String {
        let json = ascii_json(self);
        if json.len() <= MAX_RECORD_LEN || self.title.is_none() {
            return json;
        }
        ascii_json(&Record {
            title: None,
            ..self.clone()
        })
    }

    /// Parse and check a record from a remote: untrusted. The checks here
    /// are about the record alone; the caller compares it with the object.
    pub(crate) fn decode(value: &str) -> Result<Record, String> {
        if value.len() > 2 * MAX_RECORD_LEN {
            return Err(format!("{} bytes: too long to be one", value.len()));
        }
        let r: Record = serde_json::from_str(value).map_err(|e| format!("unreadable: {e}"))?;
        if r.record > RECORD_VERSION {
            return Err(format!(
                "record version {} is newer than this kvc reads ({RECORD_VERSION})",
                r.record
            ));
        }
        if Key::from_file_name(&format!("{}.kv", r.key)).map(|k| k.to_string())
            != Some(r.key.clone())
        {
            return Err("its key is not a checkpoint key".into());
        }
        if !is_hex64(&r.blake3) || !is_hex64(&r.content_blake3) {
            return Err("its digests are not BLAKE3 hex".into());
        }
        if r.header_bytes().is_none() {
            return Err("its raw_header is not 48 bytes of hex".into());
        }
        Ok(r)
    }

    /// [`raw_header`](Self::raw_header) decoded, when it is 96 hex digits.
    pub fn header_bytes(&self) -> Option<[u8; HEADER_LEN]> {
        parse_header_hex(&self.raw_header)
    }

    /// The header the record describes.
    pub fn header(&self) -> Option<Header> {
        self.header_bytes().map(|b| Header::decode(&b))
    }

    /// The dialect the record names, if it is one kvc knows.
    pub fn dialect_id(&self) -> Option<DialectId> {
        DialectId::ALL
            .into_iter()
            .find(|d| d.as_str() == self.dialect)
    }
}

/// Compact JSON with every non-ASCII character escaped (`\uXXXX`, UTF-16
/// surrogate pairs beyond the BMP), as JSON allows: the value travels in
/// an HTTP header.
fn ascii_json<T: Serialize>(v: &T) -> String {
    let s = serde_json::to_string(v).expect("a record serializes");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Record {
        Record {
            record: RECORD_VERSION,
            key: "ab".repeat(20),
            size: 1234,
            blake3: "0".repeat(64),
            content_blake3: "1".repeat(64),
            dialect: "D3".into(),
            raw_header: "00".repeat(48),
            header: HeaderSummary {
                reason: "cold".into(),
                reason_code: 1,
                quant_bits: 2,
                tokens: 600,
                hits: 3,
                ctx_size: 32768,
                model_id: 0,
                payload_abi: 2,
                ext_flags: 0,
                created: 1,
                last_used: 2,
                payload_bytes: 1000,
                text_bytes: 100,
            },
            title: Some("Plan the trip — ünïcode 🚀".into()),
            pushed_by: "kv@gpu1".into(),
            pushed_at: 3,
            kvc_version: "0.1.0".into(),
        }
    }

    #[test]
    fn records_are_ascii_and_read_back() {
        let r = sample();
        let enc = r.encode();
        assert!(enc.is_ascii(), "{enc}");
        assert!(enc.contains("\\ud83d\\ude80"), "{enc}");
        assert_eq!(Record::decode(&enc).unwrap(), r);
    }

    #[test]
    fn a_long_title_gives_way() {
        let mut r = sample();
        r.title = Some("🚀".repeat(200));
        let enc = r.encode();
        assert!(enc.len() <= MAX_RECORD_LEN);
        assert_eq!(Record::decode(&enc).unwrap().title, None);
    }

    #[test]
    fn hostile_records_are_refused() {
        let mut r = sample();
        r.key = "../../etc/passwd".into();
        assert!(Record::decode(&r.encode()).is_err());
        let mut r = sample();
        r.record = 99;
        assert!(Record::decode(&r.encode()).unwrap_err().contains("newer"));
        let mut r = sample();
        r.blake3 = "XYZ".into();
        assert!(Record::decode(&r.encode()).is_err());
        assert!(Record::decode("{").is_err());
        assert!(Record::decode(&"x".repeat(10_000)).is_err());
        let mut r = sample();
        r.raw_header = "0".repeat(95);
        assert!(Record::decode(&r.encode()).is_err());
        let mut r = sample();
        r.key = "sysprompt".into();
        assert!(Record::decode(&r.encode()).is_ok());
    }
}
