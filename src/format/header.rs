//! The fixed 48-byte header of a `.kv` checkpoint (FORMAT.md §3).
//!
//! Decoding never fails on field *values*: every byte pattern of 48 bytes
//! decodes to a [`Header`], and the caller decides which values it accepts
//! (see [`Header::check`]). That keeps `show` able to display a header that
//! `verify` rejects.

use std::borrow::Cow;
use std::fmt;

/// `KVC` at offset 0.
pub const MAGIC: [u8; 3] = *b"KVC";
/// The envelope version of every ds4 dialect and of hanzo-engine. Forks
/// that changed the envelope write 2 (FORMAT.md §9: D8, D13, D14/D15).
pub(crate) const VERSION: u8 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 48;
/// Header plus the `u32 text_len` that follows it: the least a listing reads.
pub const PREFIX_LEN: usize = HEADER_LEN + 4;
/// Offset of the text in the file.
pub const TEXT_OFFSET: u64 = PREFIX_LEN as u64;

/// Named offsets of the fixed header (FORMAT.md §3). [`LAYOUT`] is the same
/// table with widths and meanings; `decode` and `encode` use only these.
pub mod off {
    pub const MAGIC: usize = 0;
    pub(crate) const VERSION: usize = 3;
    pub(crate) const QUANT_BITS: usize = 4;
    pub const REASON: usize = 5;
    pub(crate) const EXT_FLAGS: usize = 6;
    pub(crate) const MODEL_ID: usize = 7;
    pub const TOKENS: usize = 8;
    pub const HITS: usize = 12;
    pub(crate) const CTX_SIZE: usize = 16;
    pub(crate) const PAYLOAD_ABI: usize = 20;
    pub(crate) const RESERVED: usize = 21;
    pub const CREATED: usize = 24;
    pub(crate) const LAST_USED: usize = 32;
    pub(crate) const PAYLOAD_BYTES: usize = 40;
    pub const TEXT_LEN: usize = 48;
}

/// One field of the fixed header.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub len: usize,
    pub meaning: &'static str,
}

/// The header, field by field, as FORMAT.md §3 gives it: for tools that
/// read the library, and checked against [`Header::decode`] and
/// [`Header::encode`] by the tests below (each field's bytes decode into
/// one field, and the fields tile the 52-byte prefix).
pub const LAYOUT: [Field; 15] = [
    Field {
        name: "magic",
        offset: off::MAGIC,
        len: 3,
        meaning: "`KVC`",
    },
    Field {
        name: "version",
        offset: off::VERSION,
        len: 1,
        meaning: "envelope version: 1 (forks: 2)",
    },
    Field {
        name: "quant_bits",
        offset: off::QUANT_BITS,
        len: 1,
        meaning: "routed-expert quant bits: ds4 2 or 4, hanzo-engine 0",
    },
    Field {
        name: "reason",
        offset: off::REASON,
        len: 1,
        meaning: "why it was written",
    },
    Field {
        name: "ext_flags",
        offset: off::EXT_FLAGS,
        len: 1,
        meaning: "bit 0 tool-id map, 1 responses-visible, 2 thinking-visible, 3 session title",
    },
    Field {
        name: "model_id",
        offset: off::MODEL_ID,
        len: 1,
        meaning: "mainline since 2026-05-25: 0 flash, 1 pro, 2 glm-5.2, 3 laguna, 4 qwen3.8",
    },
    Field {
        name: "tokens",
        offset: off::TOKENS,
        len: 4,
        meaning: "checkpoint token count",
    },
    Field {
        name: "hits",
        offset: off::HITS,
        len: 4,
        meaning: "times loaded",
    },
    Field {
        name: "ctx_size",
        offset: off::CTX_SIZE,
        len: 4,
        meaning: "context size it was written for",
    },
    Field {
        name: "payload_abi",
        offset: off::PAYLOAD_ABI,
        len: 1,
        meaning: "mainline since 2026-05-26: 2 (required by its reader)",
    },
    Field {
        name: "reserved",
        offset: off::RESERVED,
        len: 3,
        meaning: "0 in mainline; forks: codec, chunk size, fingerprint",
    },
    Field {
        name: "created",
        offset: off::CREATED,
        len: 8,
        meaning: "Unix seconds",
    },
    Field {
        name: "last_used",
        offset: off::LAST_USED,
        len: 8,
        meaning: "Unix seconds",
    },
    Field {
        name: "payload_bytes",
        offset: off::PAYLOAD_BYTES,
        len: 8,
        meaning: "payload length (0 for a stripped agent session)",
    },
    Field {
        name: "text_len",
        offset: off::TEXT_LEN,
        len: 4,
        meaning: "length of the text that follows",
    },
];

/// Why the engine wrote a checkpoint (header offset 5).
///
/// 0–6 are ds4's (reasons 5 and 6 since ds4-agent, 599e49d 2026-05-19);
/// 7 is pulsar's "sys-prefix" (dialect D4, FORMAT.md §9), which ds4 itself
/// reads as unknown. Values above 7 are kept as numbers: a fork may have
/// given them a meaning, so kvc shows the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason(pub u8);

impl Reason {
    pub(crate) const COLD: Reason = Reason(1);
    pub(crate) const CONTINUED: Reason = Reason(2);
    pub(crate) const EVICT: Reason = Reason(3);
    pub(crate) const SHUTDOWN: Reason = Reason(4);
    pub(crate) const AGENT_SYSTEM: Reason = Reason(5);
    pub(crate) const AGENT_SESSION: Reason = Reason(6);
    /// pulsar (a C++ fork of ds4): a system-prompt prefix checkpoint.
    pub(crate) const SYS_PREFIX: Reason = Reason(7);

    const NAMES: [&'static str; 8] = [
        "unknown",
        "cold",
        "continued",
        "evict",
        "shutdown",
        "agent-system",
        "agent-session",
        "sys-prefix",
    ];

    /// The highest reason ds4 itself defines; ds4 reads anything above as
    /// unknown.
    pub(crate) const DS4_MAX: u8 = 6;

    /// The name of a known reason, `None` above 7.
    pub(crate) fn known_name(self) -> Option<&'static str> {
        Self::NAMES.get(self.0 as usize).copied()
    }

    /// `cold`, `continued`, … or `unknown-N` for a value no engine defines.
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
    pub(crate) fn is_agent(self) -> bool {
        self == Self::AGENT_SYSTEM || self == Self::AGENT_SESSION
    }

    /// The forks' "anchor" reasons, whose score is doubled (FORMAT.md §8).
    pub(crate) fn is_anchor(self) -> bool {
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
    /// ds4-agent since bfe070a (2026-05-24): a session-title trailer follows
    /// the payload and the file is named by the session identity, not by
    /// its text (FORMAT.md §2, §5b).
    pub const SESSION_TITLE: u8 = 1 << 3;
    /// Every bit a ds4 dialect gives a meaning; the rest are reported as
    /// unknown.
    pub(crate) const KNOWN: u8 =
        Self::TOOL_MAP | Self::RESPONSES_VISIBLE | Self::THINKING_VISIBLE | Self::SESSION_TITLE;

    pub fn has_tool_map(self) -> bool {
        self.0 & Self::TOOL_MAP != 0
    }

    pub fn has_session_title(self) -> bool {
        self.0 & Self::SESSION_TITLE != 0
    }

    /// The text is a client-visible transcript (bit 1 or 2), not the token
    /// text: the lookup key of responses/thinking-visible checkpoints.
    pub fn visible_transcript(self) -> bool {
        self.0 & (Self::RESPONSES_VISIBLE | Self::THINKING_VISIBLE) != 0
    }

    /// Bits no engine defines.
    pub fn unknown_bits(self) -> u8 {
        self.0 & !Self::KNOWN
    }

    /// `tool-map`, `responses-visible`, `thinking-visible`, `session-title`,
    /// then `bit4` … for unknown bits, in bit order.
    pub fn names(self) -> Vec<String> {
        (0..8)
            .filter(|b| self.0 & (1 << b) != 0)
            .map(|b| match b {
                0 => "tool-map".to_string(),
                1 => "responses-visible".to_string(),
                2 => "thinking-visible".to_string(),
                3 => "session-title".to_string(),
                _ => format!("bit{b}"),
            })
            .collect()
    }
}

/// Model ids of ds4 mainline (header offset 7, since 04f151d 2026-05-25;
/// GLM-5.2 since 005afed 2026-07-18). Lookup, load and the same-name check
/// of mainline all require an exact match. Forks reuse the numbers for their
/// own models, so a name is shown only for dialects that follow mainline.
pub const MODEL_NAMES: [(u8, &str, &str); 5] = [
    (0, "flash", "DeepSeek V4 Flash"),
    (1, "pro", "DeepSeek V4 PRO"),
    (2, "glm-5.2", "GLM-5.2"),
    (3, "laguna", "Laguna S2.1 (a mainline branch)"),
    (4, "qwen3.8", "Qwen3.8 Flash Next (reported, not read)"),
];

/// The short mainline name of a model id (`flash`, `pro`, …).
pub fn model_name(id: u8) -> Option<&'static str> {
    MODEL_NAMES.iter().find(|m| m.0 == id).map(|m| m.1)
}

/// Parse a model as `--model` takes it: a mainline name or a number.
pub fn model_from_name(s: &str) -> Option<u8> {
    MODEL_NAMES
        .iter()
        .find(|m| m.1.eq_ignore_ascii_case(s))
        .map(|m| m.0)
        .or_else(|| s.parse().ok())
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
        let u8_at = |o: usize| b[o];
        Header {
            magic: [b[off::MAGIC], b[off::MAGIC + 1], b[off::MAGIC + 2]],
            version: u8_at(off::VERSION),
            quant_bits: u8_at(off::QUANT_BITS),
            reason: Reason(u8_at(off::REASON)),
            ext_flags: ExtFlags(u8_at(off::EXT_FLAGS)),
            model_id: u8_at(off::MODEL_ID),
            tokens: u32_at(b, off::TOKENS),
            hits: u32_at(b, off::HITS),
            ctx_size: u32_at(b, off::CTX_SIZE),
            payload_abi: u8_at(off::PAYLOAD_ABI),
            reserved: [b[off::RESERVED], b[off::RESERVED + 1], b[off::RESERVED + 2]],
            created: u64_at(b, off::CREATED),
            last_used: u64_at(b, off::LAST_USED),
            payload_bytes: u64_at(b, off::PAYLOAD_BYTES),
        }
    }

    /// Encode back to bytes; `decode(encode(h)) == h` for every header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[off::MAGIC..off::MAGIC + 3].copy_from_slice(&self.magic);
        b[off::VERSION] = self.version;
        b[off::QUANT_BITS] = self.quant_bits;
        b[off::REASON] = self.reason.0;
        b[off::EXT_FLAGS] = self.ext_flags.0;
        b[off::MODEL_ID] = self.model_id;
        b[off::TOKENS..off::TOKENS + 4].copy_from_slice(&self.tokens.to_le_bytes());
        b[off::HITS..off::HITS + 4].copy_from_slice(&self.hits.to_le_bytes());
        b[off::CTX_SIZE..off::CTX_SIZE + 4].copy_from_slice(&self.ctx_size.to_le_bytes());
        b[off::PAYLOAD_ABI] = self.payload_abi;
        b[off::RESERVED..off::RESERVED + 3].copy_from_slice(&self.reserved);
        b[off::CREATED..off::CREATED + 8].copy_from_slice(&self.created.to_le_bytes());
        b[off::LAST_USED..off::LAST_USED + 8].copy_from_slice(&self.last_used.to_le_bytes());
        b[off::PAYLOAD_BYTES..off::PAYLOAD_BYTES + 8]
            .copy_from_slice(&self.payload_bytes.to_le_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_tiles_the_prefix_and_is_what_decode_reads() {
        let mut at = 0;
        for f in LAYOUT {
            assert_eq!(f.offset, at, "{} is not where the last field ended", f.name);
            at += f.len;
        }
        assert_eq!(at, PREFIX_LEN);
        let zero = Header::decode(&[0; HEADER_LEN]);
        for f in LAYOUT.iter().filter(|f| f.offset < HEADER_LEN) {
            let mut raw = [0u8; HEADER_LEN];
            raw[f.offset..f.offset + f.len].fill(0xab);
            let h = Header::decode(&raw);
            assert_ne!(h, zero, "{}: no field decodes its bytes", f.name);
            // Encoded back, the bytes are where the table says, and only
            // there: the field is one field of the struct.
            assert_eq!(h.encode(), raw, "{}", f.name);
        }
    }

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
        assert_eq!(Reason(7).name(), "sys-prefix");
        assert_eq!(Reason(9).name(), "unknown-9");
        assert_eq!(Reason::from_name("agent-session"), Some(Reason(6)));
        assert_eq!(Reason::from_name("unknown-9"), Some(Reason(9)));
        assert_eq!(Reason::from_name("nope"), None);
    }

    #[test]
    fn ext_flag_names_keep_unknown_bits() {
        assert_eq!(
            ExtFlags(0b1001_1101).names(),
            [
                "tool-map",
                "thinking-visible",
                "session-title",
                "bit4",
                "bit7"
            ]
        );
        assert_eq!(ExtFlags(0b1001_1101).unknown_bits(), 0b1001_0000);
    }
}
