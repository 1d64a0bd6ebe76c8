//! The fixed 48-byte header of a `.kv` checkpoint (FORMAT.md §3).
//!
//! Decoding never fails on field *values*: every byte pattern of 48 bytes
//! decodes to a [`Header`], and the caller decides which values it accepts
//! (see [`Header::check`]). That keeps `show` able to display a header that
//! `verify` rejects.

use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// `KVC` at offset 0.
pub const MAGIC: [u8; 3] = *b"KVC";
/// The only envelope version any engine writes.
pub const VERSION: u8 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 48;
/// Header plus the `u32 text_len` that follows it: the least a listing reads.
pub const PREFIX_LEN: usize = HEADER_LEN + 4;
/// Offset of the text in the file.
pub const TEXT_OFFSET: u64 = PREFIX_LEN as u64;

/// Why the engine wrote a checkpoint (header offset 5).
///
/// Values above 6 are kept as numbers: ds4 reads them as "unknown", but a
/// fork may have given them a meaning, so kvc shows the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason(pub u8);

impl Reason {
    pub const UNKNOWN: Reason = Reason(0);
    pub const COLD: Reason = Reason(1);
    pub const CONTINUED: Reason = Reason(2);
    pub const EVICT: Reason = Reason(3);
    pub const SHUTDOWN: Reason = Reason(4);
    pub const AGENT_SYSTEM: Reason = Reason(5);
    pub const AGENT_SESSION: Reason = Reason(6);

    const NAMES: [&'static str; 7] = [
        "unknown",
        "cold",
        "continued",
        "evict",
        "shutdown",
        "agent-system",
        "agent-session",
    ];

    /// The name of a known reason, `None` above 6.
    pub fn known_name(self) -> Option<&'static str> {
        Self::NAMES.get(self.0 as usize).copied()
    }

    /// `cold`, `continued`, … or `unknown-N` for a value ds4 does not define.
    pub fn name(self) -> Cow<'static, str> {
        match self.known_name() {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("unknown-{}", self.0)),
        }
    }

    /// Parse a reason name as `name()` prints it (or a plain number).
    pub fn from_name(s: &str) -> Option<Reason> {
        if let Some(i) = Self::NAMES.iter().position(|n| *n == s) {
            return Some(Reason(i as u8));
        }
        let num = s.strip_prefix("unknown-").unwrap_or(s);
        num.parse().ok().map(Reason)
    }

    /// Explicit saves of ds4-agent: the user asked for them, so eviction
    /// leaves them alone unless told otherwise.
    pub fn is_agent(self) -> bool {
        self == Self::AGENT_SYSTEM || self == Self::AGENT_SESSION
    }

    /// The forks' "anchor" reasons, whose score is doubled (FORMAT.md §8).
    pub fn is_anchor(self) -> bool {
        self == Self::COLD || self == Self::EVICT || self == Self::SHUTDOWN
    }

    /// All names, for help texts and completions.
    pub fn all_names() -> &'static [&'static str] {
        &Self::NAMES
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The ext flag byte (header offset 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExtFlags(pub u8);

impl ExtFlags {
    /// A tool-id map trailer follows the payload (FORMAT.md §5).
    pub const TOOL_MAP: u8 = 1 << 0;
    /// The text is the responses-visible transcript.
    pub const RESPONSES_VISIBLE: u8 = 1 << 1;
    /// The text is the thinking-visible transcript.
    pub const THINKING_VISIBLE: u8 = 1 << 2;
    /// Every bit with a meaning; the rest are reported as unknown.
    pub const KNOWN: u8 = Self::TOOL_MAP | Self::RESPONSES_VISIBLE | Self::THINKING_VISIBLE;

    pub fn has_tool_map(self) -> bool {
        self.0 & Self::TOOL_MAP != 0
    }

    /// Bits no engine defines.
    pub fn unknown_bits(self) -> u8 {
        self.0 & !Self::KNOWN
    }

    /// `tool-map`, `responses-visible`, `thinking-visible`, then `bit3` … for
    /// unknown bits, in bit order.
    pub fn names(self) -> Vec<String> {
        (0..8)
            .filter(|b| self.0 & (1 << b) != 0)
            .map(|b| match b {
                0 => "tool-map".to_string(),
                1 => "responses-visible".to_string(),
                2 => "thinking-visible".to_string(),
                _ => format!("bit{b}"),
            })
            .collect()
    }
}

/// Every field of the fixed header, decoded but not judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub magic: [u8; 3],
    pub version: u8,
    pub quant_bits: u8,
    pub reason: Reason,
    pub ext_flags: ExtFlags,
    pub model_id: u8,
    pub tokens: u32,
    pub hits: u32,
    pub ctx_size: u32,
    pub payload_abi: u8,
    pub reserved: [u8; 3],
    pub created: u64,
    pub last_used: u64,
    pub payload_bytes: u64,
}

/// What makes a header unreadable as a checkpoint envelope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("bad magic {0:02x?} (expected \"KVC\")")]
    BadMagic([u8; 3]),
    #[error("unsupported version {0} (only version 1 exists)")]
    BadVersion(u8),
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl Header {
    /// Decode the 48 header bytes. Never fails: see [`Header::check`].
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            magic: [b[0], b[1], b[2]],
            version: b[3],
            quant_bits: b[4],
            reason: Reason(b[5]),
            ext_flags: ExtFlags(b[6]),
            model_id: b[7],
            tokens: u32_at(b, 8),
            hits: u32_at(b, 12),
            ctx_size: u32_at(b, 16),
            payload_abi: b[20],
            reserved: [b[21], b[22], b[23]],
            created: u64_at(b, 24),
            last_used: u64_at(b, 32),
            payload_bytes: u64_at(b, 40),
        }
    }

    /// Encode back to bytes; `decode(encode(h)) == h` for every header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..3].copy_from_slice(&self.magic);
        b[3] = self.version;
        b[4] = self.quant_bits;
        b[5] = self.reason.0;
        b[6] = self.ext_flags.0;
        b[7] = self.model_id;
        b[8..12].copy_from_slice(&self.tokens.to_le_bytes());
        b[12..16].copy_from_slice(&self.hits.to_le_bytes());
        b[16..20].copy_from_slice(&self.ctx_size.to_le_bytes());
        b[20] = self.payload_abi;
        b[21..24].copy_from_slice(&self.reserved);
        b[24..32].copy_from_slice(&self.created.to_le_bytes());
        b[32..40].copy_from_slice(&self.last_used.to_le_bytes());
        b[40..48].copy_from_slice(&self.payload_bytes.to_le_bytes());
        b
    }

    /// The envelope checks every engine makes before anything else.
    pub fn check(&self) -> Result<(), HeaderError> {
        if self.magic != MAGIC {
            return Err(HeaderError::BadMagic(self.magic));
        }
        if self.version != VERSION {
            return Err(HeaderError::BadVersion(self.version));
        }
        Ok(())
    }

    /// The time the eviction score decays from: `last_used`, or `created`
    /// for a checkpoint never used (FORMAT.md §8).
    pub fn used_time(&self) -> u64 {
        if self.last_used != 0 {
            self.last_used
        } else {
            self.created
        }
    }
}

/// The dialect a header looks like it was written by. A guess from field
/// values (FORMAT.md §1, §3), shown to help the reader, never used to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// ds4-server / ds4-agent: model id and payload ABI reserved (0).
    Ds4,
    /// A ds4 fork: model id or payload ABI set.
    Fork,
    /// hanzo-engine: quant bits 0 and ctx 0.
    Hanzo,
}

impl Header {
    pub fn dialect(&self) -> Dialect {
        if self.model_id != 0 || self.payload_abi != 0 {
            Dialect::Fork
        } else if self.quant_bits == 0 && self.ctx_size == 0 {
            Dialect::Hanzo
        } else {
            Dialect::Ds4
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Ds4 => "ds4",
            Dialect::Fork => "ds4-fork",
            Dialect::Hanzo => "hanzo-engine",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_places_fields_at_their_offsets() {
        let mut raw = [0u8; HEADER_LEN];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = i as u8 ^ 0x5a;
        }
        let h = Header::decode(&raw);
        assert_eq!(h.encode(), raw);
        assert_eq!(h.tokens, u32::from_le_bytes(raw[8..12].try_into().unwrap()));
        assert_eq!(
            h.payload_bytes,
            u64::from_le_bytes(raw[40..48].try_into().unwrap())
        );
    }

    #[test]
    fn reason_names_and_unknown_values() {
        assert_eq!(Reason(2).name(), "continued");
        assert_eq!(Reason(9).name(), "unknown-9");
        assert_eq!(Reason::from_name("agent-session"), Some(Reason(6)));
        assert_eq!(Reason::from_name("unknown-9"), Some(Reason(9)));
        assert_eq!(Reason::from_name("nope"), None);
    }

    #[test]
    fn ext_flag_names_keep_unknown_bits() {
        assert_eq!(
            ExtFlags(0b1000_0101).names(),
            ["tool-map", "thinking-visible", "bit7"]
        );
        assert_eq!(ExtFlags(0b1000_0101).unknown_bits(), 0b1000_0000);
    }
}
