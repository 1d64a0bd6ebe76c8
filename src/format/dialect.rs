//! Dialects: the variants of the KVC envelope that engines write, as data
//! (FORMAT.md §9), and the engines that read them (§7).
//!
//! Every rule kvc applies to a file comes from the row of [`DIALECTS`] the
//! file was identified as: which name identity it has, which trailers it
//! may carry, how its payload is judged, whether its quant byte and ext bits
//! mean anything. A file that matches no row is `Detected::Unknown` and is
//! only ever reported as `foreign`: kvc judges, deletes, moves or rewrites
//! only what it has positively identified.
//!
//! Two dialects can have identical headers: a pre-ABI ds4 file (D1) and a
//! hanzo-engine spill (D20). `detect` says so (`Detected::Ds4OrHanzo`);
//! the directory's other files, or `--engine`, decide (`infer_engine`),
//! and the output says which was assumed.

use super::header::{Header, Reason, MAGIC};
use super::Key;
use serde::Serialize;
use sha1::{Digest, Sha1};
use std::fmt;

/// Stable names of the dialects of FORMAT.md §9, for tests, docs and JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum DialectId {
    D1,
    D3,
    D4,
    D5,
    D6,
    D8,
    D11,
    D13,
    D14,
    D15,
    D16,
    D17,
    D20,
}

impl DialectId {
    /// Every id, in table order.
    pub const ALL: [DialectId; 13] = [
        DialectId::D1,
        DialectId::D3,
        DialectId::D4,
        DialectId::D5,
        DialectId::D6,
        DialectId::D8,
        DialectId::D11,
        DialectId::D13,
        DialectId::D14,
        DialectId::D15,
        DialectId::D16,
        DialectId::D17,
        DialectId::D20,
    ];

    pub fn spec(self) -> &'static Dialect {
        DIALECTS
            .iter()
            .find(|d| d.id == self)
            .expect("every id has a row")
    }

    pub fn as_str(self) -> &'static str {
        self.spec().code
    }
}

impl fmt::Display for DialectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of a dialect kvc reads, and so how much it may judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// Envelope, name, trailers and payload: every rule of FORMAT.md §3–§8.
    Full,
    /// Envelope, name and trailers; the payload is opaque (its length is
    /// still checked against the file).
    Envelope,
    /// Recognised, not read: a `foreign` warning says what was seen;
    /// nothing is judged, deleted, moved or rewritten.
    Foreign,
    /// Not a KVC file at all (another store's file under a `.kv` name).
    NotKvc,
}

/// What a file's name says about its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identity {
    /// `<key>.kv`, key = SHA-1 of the text; ds4-agent sessions with ext
    /// bit 3 are named SHA-1(title ‖ created as u64 LE) instead, and
    /// `sysprompt.kv` has a fixed name (FORMAT.md §2).
    Ds4,
    /// Key = SHA-1 of the text, whatever the ext bits say (hanzo-engine
    /// gives them no meaning).
    TextSha1,
    /// The name is not a hash of anything kvc reads.
    Unhashed,
}

/// What may follow the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trailers {
    /// ext bit 0: the tool-id map (§5); ext bit 3: the session title (§5b).
    Ds4,
    /// None: hanzo-engine writes no trailers, so bytes after the payload
    /// mean a clobbered header (a hit wrote an old header over a replaced
    /// file, FORMAT.md §7).
    NoneAllowed,
    /// Not read.
    Unread,
}

/// How the payload is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadRule {
    /// A DSV4 body (FORMAT.md §6), judged when the model id is 0 (V4 Flash)
    /// or 1 (V4 PRO) and the DSV4 version is 1 or 2; any other payload
    /// (GLM-5.2, other models, not DSV4) is opaque.
    Dsv4,
    /// Never judged beyond its length.
    Opaque,
    /// LZ4 chunk framing (D8): `u64 uncompressed_total, u32 chunk_count`,
    /// then per chunk `u32 raw_len, u32 comp_len, bytes`; the framing must
    /// add up to `payload_bytes`.
    Lz4Chunks,
    /// Not read.
    Unread,
}

/// The engines whose reading of a directory kvc reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// ds4 mainline since e8e8779 (2026-05-26): ds4-server and ds4-agent.
    Ds4,
    /// ds4 up to 2026-05-25 (before the payload ABI byte).
    Ds4Classic,
    /// hanzo-engine's disk KV spill (`disk_kv_cache.rs`).
    Hanzo,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Ds4 => "ds4",
            Engine::Ds4Classic => "ds4-classic",
            Engine::Hanzo => "hanzo",
        }
    }

    pub fn from_name(s: &str) -> Option<Engine> {
        match s {
            "ds4" => Some(Engine::Ds4),
            "ds4-classic" => Some(Engine::Ds4Classic),
            "hanzo" | "hanzo-engine" => Some(Engine::Hanzo),
            _ => None,
        }
    }

    pub fn reader(self) -> &'static Reader {
        READERS
            .iter()
            .find(|r| r.engine == self)
            .expect("every engine has a reader")
    }

    /// Who the engine is, with the version its behaviour is taken from.
    pub fn describe(self) -> &'static str {
        self.reader().describe
    }

    /// A few words for a sentence: "ds4 mainline", "hanzo-engine".
    pub fn describe_short(self) -> &'static str {
        match self {
            Engine::Ds4 => "ds4 mainline (since 2026-05-26)",
            Engine::Ds4Classic => "ds4 up to 2026-05-25",
            Engine::Hanzo => "hanzo-engine",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of FORMAT.md §9.
#[derive(Debug)]
pub struct Dialect {
    pub id: DialectId,
    /// `D1`, `D3`, …
    pub code: &'static str,
    /// Who writes it, with the version (provenance).
    pub writer: &'static str,
    /// How kvc tells it from the others (FORMAT.md §9, "detect by").
    pub detect: &'static str,
    pub support: Support,
    pub identity: Identity,
    pub trailers: Trailers,
    pub payload: PayloadRule,
    /// Whether the quant byte means anything to its readers (hanzo-engine
    /// never reads it).
    pub quant_read: bool,
    /// Whether ext bits 0–3 mean what ds4 says (hanzo-engine gives them no
    /// meaning: a bit 0 its caller set is not a tool map).
    pub ext_bits: bool,
    /// Whether `tokens = 0` is a valid file (hanzo-engine writes it).
    pub zero_tokens_valid: bool,
    /// Whether reason 7 means pulsar's "sys-prefix".
    pub reason7: bool,
    /// Whether model ids have mainline's names.
    pub mainline_models: bool,
    /// Whether bytes 21–23 are a weights fingerprint to show (D11).
    pub fingerprint: bool,
    /// The engine whose reader loads it, when kvc reproduces that reader.
    pub engine: Option<Engine>,
    /// The modes its writer creates, for permission findings.
    pub modes: &'static str,
}

/// ds4_kvstore.c (directories, `mkdir` 0700 per missing component; server
/// files by `fopen("wb")`, 0666 & ~umask) and ds4_agent.c (sessions by
/// `mkstemp`, 0600) at mainline b030961.
const DS4_MODES: &str =
    "ds4 creates its cache directory 0700; inside it ds4-server writes files 0644 under umask 022, ds4-agent 0600";
const FORK_MODES: &str = "the writer's modes are not known to kvc";

/// The dialects of FORMAT.md §9, one row each: every per-dialect rule of
/// kvc is read from here.
pub static DIALECTS: [Dialect; 13] = [
    Dialect {
        id: DialectId::D1,
        code: "D1",
        writer: "ds4 before the payload ABI byte (e8e8779, 2026-05-26); ds4-agent",
        detect: "version 1, payload ABI 0, bytes 21-23 zero (a hanzo-engine file can look the same)",
        support: Support::Full,
        identity: Identity::Ds4,
        trailers: Trailers::Ds4,
        payload: PayloadRule::Dsv4,
        quant_read: true,
        ext_bits: true,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: true,
        fingerprint: false,
        engine: Some(Engine::Ds4Classic),
        modes: DS4_MODES,
    },
    Dialect {
        id: DialectId::D3,
        code: "D3",
        writer: "ds4 mainline since e8e8779 (2026-05-26) and the forks that follow it",
        detect: "version 1, payload ABI 2, bytes 21-23 zero",
        support: Support::Full,
        identity: Identity::Ds4,
        trailers: Trailers::Ds4,
        payload: PayloadRule::Dsv4,
        quant_read: true,
        ext_bits: true,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: true,
        fingerprint: false,
        engine: Some(Engine::Ds4),
        modes: DS4_MODES,
    },
    Dialect {
        id: DialectId::D4,
        code: "D4",
        writer: "pulsar (a C++ fork of ds4)",
        detect: "D3 bytes with reason 7 (sys-prefix)",
        support: Support::Full,
        identity: Identity::Ds4,
        trailers: Trailers::Ds4,
        payload: PayloadRule::Dsv4,
        quant_read: true,
        ext_bits: true,
        zero_tokens_valid: false,
        reason7: true,
        mainline_models: true,
        fingerprint: false,
        engine: Some(Engine::Ds4),
        modes: DS4_MODES,
    },
    Dialect {
        id: DialectId::D5,
        code: "D5",
        writer: "a DGX Spark fork of ds4 (payload ABI 3)",
        detect: "version 1, payload ABI 3",
        support: Support::Envelope,
        identity: Identity::Ds4,
        trailers: Trailers::Ds4,
        payload: PayloadRule::Opaque,
        quant_read: true,
        ext_bits: true,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D6,
        code: "D6",
        writer: "a DGX Spark fork of ds4 (payload ABI 4)",
        detect: "version 1, payload ABI 4",
        support: Support::Envelope,
        identity: Identity::Ds4,
        trailers: Trailers::Ds4,
        payload: PayloadRule::Opaque,
        quant_read: true,
        ext_bits: true,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D8,
        code: "D8",
        writer: "the LZ4-compressed payload fork (open PR)",
        detect: "version 2 (or 1 with byte 21 set), byte 21 = codec 1 (LZ4), byte 22 = log2(chunk), SHA-1 of the text at 52 is the name",
        support: Support::Foreign,
        identity: Identity::TextSha1,
        trailers: Trailers::Unread,
        payload: PayloadRule::Lz4Chunks,
        quant_read: false,
        ext_bits: false,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D11,
        code: "D11",
        writer: "the weights-fingerprint proposal (mainline dialect with a 24-bit fingerprint)",
        detect: "D3 with bytes 21-23 a 24-bit fingerprint (not zero) and no LZ4 framing",
        support: Support::Full,
        identity: Identity::Ds4,
        trailers: Trailers::Ds4,
        payload: PayloadRule::Dsv4,
        quant_read: true,
        ext_bits: true,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: true,
        fingerprint: true,
        engine: Some(Engine::Ds4),
        modes: DS4_MODES,
    },
    Dialect {
        id: DialectId::D13,
        code: "D13",
        writer: "a fork with a 72-byte header",
        detect: "version 2, payload ABI 2, byte 69 is 0 or 1, bytes 70-71 zero, SHA-1 of the text at 76 is the name",
        support: Support::Foreign,
        identity: Identity::Unhashed,
        trailers: Trailers::Unread,
        payload: PayloadRule::Unread,
        quant_read: false,
        ext_bits: false,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D14,
        code: "D14",
        writer: "a fork with tail-indexed growing files (TAIL)",
        detect: "version 2, payload ABI 3, the u64 at 40 points at a `TAIL` block",
        support: Support::Foreign,
        identity: Identity::Unhashed,
        trailers: Trailers::Unread,
        payload: PayloadRule::Unread,
        quant_read: false,
        ext_bits: false,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D15,
        code: "D15",
        writer: "a fork with tail-indexed growing files (TAL2, pictures in ext bit 4)",
        detect: "version 2, payload ABI 3, the u64 at 40 points at a `TAL2` block",
        support: Support::Foreign,
        identity: Identity::Unhashed,
        trailers: Trailers::Unread,
        payload: PayloadRule::Unread,
        quant_read: false,
        ext_bits: false,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D16,
        code: "D16",
        writer: "a block-chain store (`DS4CHN01`, `.kvs`/`.kvt` files)",
        detect: "magic `DS4CHN01`",
        support: Support::NotKvc,
        identity: Identity::Unhashed,
        trailers: Trailers::Unread,
        payload: PayloadRule::Unread,
        quant_read: false,
        ext_bits: false,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D17,
        code: "D17",
        writer: "a block store (`KVB4`, `.kvb` files)",
        detect: "magic `KVB4`",
        support: Support::NotKvc,
        identity: Identity::Unhashed,
        trailers: Trailers::Unread,
        payload: PayloadRule::Unread,
        quant_read: false,
        ext_bits: false,
        zero_tokens_valid: false,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: None,
        modes: FORK_MODES,
    },
    Dialect {
        id: DialectId::D20,
        code: "D20",
        writer: "hanzo-engine disk KV spill (disk_kv_cache.rs)",
        detect: "version 1, payload ABI 0 (a pre-ABI ds4 file can look the same: the directory or --engine decides)",
        support: Support::Envelope,
        identity: Identity::TextSha1,
        trailers: Trailers::NoneAllowed,
        payload: PayloadRule::Opaque,
        quant_read: false,
        ext_bits: false,
        zero_tokens_valid: true,
        reason7: false,
        mainline_models: false,
        fingerprint: false,
        engine: Some(Engine::Hanzo),
        modes: "hanzo-engine creates 0755 directories and 0644 files under umask 022",
    },
];

/// An engine's reader: which files it loads, counts against its budget and
/// may evict (FORMAT.md §7, "What the budget counts"). Readers decide by
/// header bytes, not by dialect: mainline's reader loads a file of any
/// dialect whose bytes pass it (ds4_kvstore.c `ds4_kvstore_read_header` and
/// `read_entry_file` at b030961), model id and reason included.
#[derive(Debug)]
pub struct Reader {
    pub engine: Engine,
    /// One line with provenance, for output and `--help`.
    pub describe: &'static str,
    /// The payload ABI byte it requires; `None` = not read.
    pub abi: Option<u8>,
    /// Quant bits it accepts; empty = not read.
    pub quants: &'static [u8],
    /// Whether it accepts `tokens = 0`.
    pub zero_tokens: bool,
    /// Every `*.kv` name it can stat counts, valid or not, whatever the
    /// stem (hanzo-engine's LRU); otherwise only `<40 hex>.kv` names whose
    /// header passes (ds4: `sysprompt.kv` never passes its name filter).
    pub every_kv_name: bool,
}

/// ds4's quant bits (FORMAT.md §3): its reader skips every other value.
pub(crate) const DS4_QUANTS: [u8; 2] = [2, 4];

/// Mainline's payload ABI (byte 20), since e8e8779.
pub(crate) const MAINLINE_ABI: u8 = 2;

pub(crate) static READERS: [Reader; 3] = [
    Reader {
        engine: Engine::Ds4,
        describe: "ds4 mainline since e8e8779 (2026-05-26): its reader loads version 1, payload ABI 2, quant 2 or 4, tokens > 0",
        abi: Some(MAINLINE_ABI),
        quants: &DS4_QUANTS,
        zero_tokens: false,
        every_kv_name: false,
    },
    Reader {
        engine: Engine::Ds4Classic,
        describe: "ds4 up to 2026-05-25 (before e8e8779): its reader loads version 1, quant 2 or 4, tokens > 0, any byte 20",
        abi: None,
        quants: &DS4_QUANTS,
        zero_tokens: false,
        every_kv_name: false,
    },
    Reader {
        engine: Engine::Hanzo,
        describe: "hanzo-engine disk KV spill (disk_kv_cache.rs, c8bcee7d5): LRU over every *.kv it can stat",
        abi: None,
        quants: &[],
        zero_tokens: true,
        every_kv_name: true,
    },
];

impl Support {
    /// What kvc does with a file of this support level, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Support::Full => "read fully: envelope, name, trailers, payload",
            Support::Envelope => "envelope, name and trailers; payload opaque",
            Support::Foreign => {
                "`foreign` warning naming what was recognised; never judged, moved or deleted"
            }
            Support::NotKvc => "another store's file: a stray of a known kind",
        }
    }
}

/// The dialect and engine tables of the user guide, generated from
/// [`DIALECTS`] and `READERS` so the documentation cannot drift from the
/// rules kvc applies (`tests/docs.rs` checks `doc/GUIDE.md`).
pub fn markdown_tables() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    out.push_str("| id | written by | told apart by | what kvc does | name | loaded by |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for d in &DIALECTS {
        let name = match d.identity {
            Identity::Ds4 => "SHA-1 of the text; agent sessions with ext bit 3: SHA-1(title ‖ created); `sysprompt.kv` fixed",
            Identity::TextSha1 => "SHA-1 of the text",
            Identity::Unhashed => "not a hash kvc checks",
        };
        let engine = d.engine.map_or("no engine kvc reproduces", |e| e.name());
        let does = match (d.support, d.trailers) {
            (Support::Envelope, Trailers::NoneAllowed) => {
                "envelope and name; payload opaque; no trailers (bytes after the payload mean a clobbered header)"
            }
            (s, _) => s.describe(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {does} | {name} | {engine} |",
            d.code, d.writer, d.detect,
        );
    }
    out.push_str("\n| engine | its reader loads | budget counts | policy |\n");
    out.push_str("|---|---|---|---|\n");
    for r in &READERS {
        let counts = if r.every_kv_name {
            "every `*.kv` name it can stat, valid or not"
        } else {
            "`<40 hex>.kv` names it loads (not `sysprompt.kv`)"
        };
        let policy = match r.engine {
            Engine::Ds4 => "`ds4`: ec6a82a (2026-05-26), anchors ×2, superseded waypoints",
            Engine::Ds4Classic => "`ds4-classic`: score = (decayed hits + 1) × tokens / size",
            Engine::Hanzo => {
                "`lru`: oldest last_used first, unreadable headers first, at least 64 MiB"
            }
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {counts} | {policy} |",
            r.engine, r.describe
        );
    }
    out
}

/// Why an engine's reader does not load a file that kvc reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "why")]
pub enum NotLoaded {
    /// Another envelope version (forks' version 2).
    Version {
        version: u8,
    },
    /// Another payload ABI: e.g. 0 (written before 2026-05-26) under
    /// mainline.
    Abi {
        abi: u8,
    },
    Quant {
        quant_bits: u8,
    },
    ZeroTokens,
}

impl fmt::Display for NotLoaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotLoaded::Version { version } => write!(f, "envelope version {version}"),
            NotLoaded::Abi { abi } => write!(f, "payload ABI {abi}"),
            NotLoaded::Quant { quant_bits } => write!(f, "quant_bits {quant_bits}"),
            NotLoaded::ZeroTokens => f.write_str("0 tokens"),
        }
    }
}

impl Reader {
    /// Whether this reader loads a file with header `h` whose envelope kvc
    /// found whole. hanzo-engine counts every `*.kv` name, so for it this
    /// is always `Ok`.
    pub fn accepts(&self, h: &Header) -> Result<(), NotLoaded> {
        if self.every_kv_name {
            return Ok(());
        }
        if h.version != super::header::VERSION {
            return Err(NotLoaded::Version { version: h.version });
        }
        if let Some(abi) = self.abi {
            if h.payload_abi != abi {
                return Err(NotLoaded::Abi { abi: h.payload_abi });
            }
        }
        if !self.quants.is_empty() && !self.quants.contains(&h.quant_bits) {
            return Err(NotLoaded::Quant {
                quant_bits: h.quant_bits,
            });
        }
        if h.tokens == 0 && !self.zero_tokens {
            return Err(NotLoaded::ZeroTokens);
        }
        Ok(())
    }

    /// Whether the engine's budget counts (and its eviction may delete) a
    /// file it loads, by name: ds4-server's name filter wants 40 hex digits
    /// (`ds4_kvstore_sha_hex_name`), so ds4-agent's `sysprompt.kv`, which
    /// the agent loads by its fixed path, is never counted.
    pub(crate) fn counts_name(&self, key: &Key) -> bool {
        self.every_kv_name || *key != Key::Sysprompt
    }
}

/// Bytes a dialect check may need beyond the 52-byte prefix. Reads are
/// bounded by [`Probe::size`], which comes from `fstat`, never from the
/// content.
pub trait Probe {
    /// The file's size.
    fn size(&self) -> u64;
    /// Fill `buf` from `off`; false when that runs past the end or fails.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> bool;
    /// Feed `len` bytes at `off` to `h`, streamed through a small buffer;
    /// false when they are not all there.
    fn update_sha1(&self, h: &mut Sha1, off: u64, len: u64) -> bool {
        if off.checked_add(len).is_none_or(|end| end > self.size()) {
            return false;
        }
        let mut buf = [0u8; 16 << 10];
        let mut pos = 0;
        while pos < len {
            let n = (len - pos).min(buf.len() as u64) as usize;
            if !self.read_at(off + pos, &mut buf[..n]) {
                return false;
            }
            h.update(&buf[..n]);
            pos += n as u64;
        }
        true
    }
    /// SHA-1 of `len` bytes at `off`.
    fn sha1_at(&self, off: u64, len: u64) -> Option<[u8; 20]> {
        let mut h = Sha1::new();
        self.update_sha1(&mut h, off, len)
            .then(|| h.finalize().into())
    }
    /// The D8 chunk framing of the `len`-byte payload at `at` (a stream
    /// that walked it as the bytes passed answers from that walk).
    fn lz4_framing(&self, at: u64, len: u64) -> Result<Lz4Framing, String> {
        lz4_framing(self, at, len)
    }
}

/// A whole file already in memory (a bundle entry, a test).
pub(crate) struct InMemory<'a>(pub &'a [u8]);

impl Probe for InMemory<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> bool {
        let Ok(off) = usize::try_from(off) else {
            return false;
        };
        match self.0.get(off..off.saturating_add(buf.len())) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
}

/// What [`detect`] made of a file's first bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    Known(DialectId),
    /// Version 1, payload ABI 0, bytes 21–23 zero: a pre-ABI ds4 file (D1)
    /// or a hanzo-engine spill (D20). `hanzo_only` is set when a field
    /// holds a value ds4 never writes (quant 0, ctx 0).
    Ds4OrHanzo {
        hanzo_only: bool,
    },
    /// Starts with `KVC` but matches no row: reported as `foreign` with
    /// what was recognised, never judged.
    Unknown {
        version: u8,
        abi: u8,
        what: String,
    },
    /// Not a KVC file and no other known store's either.
    NotKvc,
}

impl Detected {
    /// The dialect once the directory's engine is known.
    pub fn resolve(&self, engine: Engine) -> Option<DialectId> {
        match self {
            Detected::Known(d) => Some(*d),
            Detected::Ds4OrHanzo { hanzo_only } => {
                if engine == Engine::Hanzo || *hanzo_only {
                    Some(DialectId::D20)
                } else {
                    Some(DialectId::D1)
                }
            }
            Detected::Unknown { .. } | Detected::NotKvc => None,
        }
    }

    /// The dialect under a directory's engine choice. An engine the user
    /// gave (`--engine`) decides every D1/D20 look-alike, even one with a
    /// field only hanzo-engine writes: the user says who reads the
    /// directory. An inferred engine leaves such a file D20, as
    /// [`resolve`](Self::resolve) does.
    pub(crate) fn resolve_in(&self, choice: &EngineChoice) -> Option<DialectId> {
        match (self, &choice.how) {
            (Detected::Ds4OrHanzo { .. }, EngineHow::Given) => Some(match choice.engine {
                Engine::Hanzo => DialectId::D20,
                Engine::Ds4 | Engine::Ds4Classic => DialectId::D1,
            }),
            _ => self.resolve(choice.engine),
        }
    }

    /// Whether [`resolve_in`](Self::resolve_in) took the dialect from the
    /// directory's engine rather than from the bytes.
    pub(crate) fn assumed_in(&self, choice: &EngineChoice) -> bool {
        match self {
            Detected::Ds4OrHanzo { hanzo_only: false } => true,
            Detected::Ds4OrHanzo { hanzo_only: true } => {
                self.resolve_in(choice) != Some(DialectId::D20)
            }
            _ => false,
        }
    }
}

/// LZ4, the one codec of D8 (byte 21).
pub(crate) const CODEC_LZ4: u8 = 1;
/// log2 of D8's chunk size: the fork writes 4 KiB to 16 MiB chunks; a
/// value outside is not its framing.
const D8_CHUNK_LOG2: std::ops::RangeInclusive<u8> = 9..=30;
/// Tail block magics of D14 and D15.
pub(crate) const TAIL_MAGIC: [u8; 4] = *b"TAIL";
pub(crate) const TAL2_MAGIC: [u8; 4] = *b"TAL2";
/// Magics of the block stores (D16, D17) at offset 0.
pub(crate) const CHAIN_MAGIC: [u8; 8] = *b"DS4CHN01";
pub(crate) const KVB4_MAGIC: [u8; 4] = *b"KVB4";
/// D13's longer header: text_len at 72, text at 76.
const D13_TEXT_LEN_AT: u64 = 72;
const D13_TEXT_AT: u64 = 76;

fn name_matches(key: Option<&Key>, digest: Option<[u8; 20]>) -> bool {
    match (key, digest) {
        (Some(k), Some(d)) => *k == Key::from_digest(&d),
        _ => false,
    }
}

/// Identify the dialect of a file whose 48 header bytes decoded to `h`.
/// `key` is the key its name carries, if any; `probe` reads the few more
/// bytes some rows need (a payload's first bytes, a tail block's magic, the
/// SHA-1 of a text at another offset). D3 and D1/D20 files, the common case,
/// need no read beyond the header.
pub(crate) fn detect(h: &Header, text_len: u32, key: Option<&Key>, probe: &dyn Probe) -> Detected {
    if h.magic != MAGIC {
        let mut head = [0u8; 8];
        if probe.read_at(0, &mut head) && head == CHAIN_MAGIC {
            return Detected::Known(DialectId::D16);
        }
        if probe.read_at(0, &mut head[..4]) && head[..4] == KVB4_MAGIC {
            return Detected::Known(DialectId::D17);
        }
        return Detected::NotKvc;
    }
    let payload_at = super::header::TEXT_OFFSET + text_len as u64;
    match h.version {
        1 => {
            if h.reserved[0] != 0 && is_d8(h, payload_at, key, probe) {
                return Detected::Known(DialectId::D8);
            }
            match h.payload_abi {
                0 if h.reserved == [0; 3] => Detected::Ds4OrHanzo {
                    // ds4 writes quant 2 or 4 and its live context; hanzo's
                    // prefix-cache spills write quant 0 and ctx 0.
                    hanzo_only: h.quant_bits == 0 || h.ctx_size == 0,
                },
                2 if h.reserved == [0; 3] && h.reason == Reason::SYS_PREFIX => {
                    Detected::Known(DialectId::D4)
                }
                2 if h.reserved == [0; 3] => Detected::Known(DialectId::D3),
                2 => Detected::Known(DialectId::D11),
                3 => Detected::Known(DialectId::D5),
                4 => Detected::Known(DialectId::D6),
                abi => Detected::Unknown {
                    version: 1,
                    abi,
                    what: if abi == 0 {
                        format!(
                            "payload ABI 0 with bytes 21-23 set ({:02x?}), which neither ds4 nor hanzo-engine writes",
                            h.reserved
                        )
                    } else {
                        format!("payload ABI {abi}, which no known dialect uses")
                    },
                },
            }
        }
        2 => {
            if h.payload_abi == 3 {
                let mut magic = [0u8; 4];
                if probe.read_at(h.payload_bytes, &mut magic) {
                    if magic == TAIL_MAGIC {
                        return Detected::Known(DialectId::D14);
                    }
                    if magic == TAL2_MAGIC {
                        return Detected::Known(DialectId::D15);
                    }
                }
            }
            if is_d8(h, payload_at, key, probe) {
                return Detected::Known(DialectId::D8);
            }
            if h.payload_abi == 2 && is_d13(key, probe) {
                return Detected::Known(DialectId::D13);
            }
            Detected::Unknown {
                version: 2,
                abi: h.payload_abi,
                what: "no codec byte, tail block or 72-byte header of a known version-2 dialect"
                    .to_string(),
            }
        }
        v => Detected::Unknown {
            version: v,
            abi: h.payload_abi,
            what: format!("header version {v}, which no known engine writes"),
        },
    }
}

/// D8: codec LZ4 in byte 21, a plausible chunk size in byte 22, the text at
/// 52 hashing to the name, and chunk framing that adds up exactly.
fn is_d8(h: &Header, payload_at: u64, key: Option<&Key>, probe: &dyn Probe) -> bool {
    h.reserved[0] == CODEC_LZ4
        && D8_CHUNK_LOG2.contains(&h.reserved[1])
        && name_matches(
            key,
            probe.sha1_at(
                super::header::TEXT_OFFSET,
                payload_at - super::header::TEXT_OFFSET,
            ),
        )
        && probe.lz4_framing(payload_at, h.payload_bytes).is_ok()
}

/// D13: a 72-byte header whose text (length at 72) hashes to the name.
fn is_d13(key: Option<&Key>, probe: &dyn Probe) -> bool {
    let mut b = [0u8; 7];
    if !probe.read_at(69, &mut b) {
        return false;
    }
    if b[0] > 1 || b[1] != 0 || b[2] != 0 {
        return false;
    }
    let text_len = u32::from_le_bytes(b[3..7].try_into().expect("4 bytes")) as u64;
    debug_assert_eq!(69 + 3, D13_TEXT_LEN_AT);
    name_matches(key, probe.sha1_at(D13_TEXT_AT, text_len))
}

/// The chunk framing of a D8 payload: what was found, or why it does not
/// add up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lz4Framing {
    pub uncompressed_total: u64,
    pub chunks: u32,
}

/// The walk of a D8 chunk framing, as a state machine that asks for the
/// bytes it needs ([`need`](Self::need)) and is given them
/// ([`supply`](Self::supply)): the same walk serves a file read at random
/// ([`lz4_framing`]) and a stream that passes each byte once (a bundle's
/// import, which cannot seek). Offsets are relative to the payload.
///
/// The walk is bounded by the payload: each record takes at least 8 bytes,
/// so a hostile chunk count costs no more than the payload's own size.
#[derive(Clone, Debug)]
pub(crate) struct Lz4Walk {
    len: u64,
    total: u64,
    chunks: u32,
    /// The next chunk record to read.
    i: u32,
    /// Where it starts.
    pos: u64,
    raw_sum: u64,
    head_done: bool,
    result: Option<Result<Lz4Framing, String>>,
}

/// The framing's head: `u64 uncompressed_total, u32 chunk_count`.
const LZ4_HEAD: usize = 12;
/// A chunk record's head: `u32 raw_len, u32 comp_len`.
const LZ4_RECORD: usize = 8;

impl Lz4Walk {
    /// A walk over a payload of `len` bytes.
    pub fn new(len: u64) -> Lz4Walk {
        let mut w = Lz4Walk {
            len,
            total: 0,
            chunks: 0,
            i: 0,
            pos: 0,
            raw_sum: 0,
            head_done: false,
            result: None,
        };
        if len < LZ4_HEAD as u64 {
            w.missing();
        }
        w
    }

    /// The bytes the walk needs next, `(offset, length)`; `None` once it
    /// is decided.
    pub fn need(&self) -> Option<(u64, usize)> {
        match (&self.result, self.head_done) {
            (Some(_), _) => None,
            (None, false) => Some((0, LZ4_HEAD)),
            (None, true) => Some((self.pos, LZ4_RECORD)),
        }
    }

    /// Give the walk exactly the bytes [`need`](Self::need) asked for.
    pub(crate) fn supply(&mut self, b: &[u8]) {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        if !self.head_done {
            self.total = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
            self.chunks = u32_at(8);
            self.pos = LZ4_HEAD as u64;
            self.head_done = true;
        } else {
            let (raw, comp) = (u32_at(0) as u64, u32_at(4) as u64);
            self.pos = self.pos.saturating_add(LZ4_RECORD as u64 + comp);
            self.raw_sum = self.raw_sum.saturating_add(raw);
            if self.pos > self.len {
                return self.past_end();
            }
            self.i += 1;
        }
        self.advance();
    }

    /// The bytes [`need`](Self::need) asked for are not there.
    pub fn missing(&mut self) {
        if self.head_done {
            self.past_end();
        } else {
            self.result = Some(Err(format!(
                "payload of {} bytes is shorter than the 12-byte chunk framing",
                self.len
            )));
        }
    }

    fn past_end(&mut self) {
        self.result = Some(Err(format!(
            "chunk {} of {} runs past the {}-byte payload",
            self.i, self.chunks, self.len
        )));
    }

    fn advance(&mut self) {
        if self.i < self.chunks {
            if self.pos.saturating_add(LZ4_RECORD as u64) > self.len {
                self.past_end();
            }
            return;
        }
        self.result = Some(if self.pos != self.len {
            Err(format!(
                "chunk framing ends at byte {} of the {}-byte payload",
                self.pos, self.len
            ))
        } else if self.raw_sum != self.total {
            Err(format!(
                "chunks hold {} uncompressed bytes, the framing says {}",
                self.raw_sum, self.total
            ))
        } else {
            Ok(Lz4Framing {
                uncompressed_total: self.total,
                chunks: self.chunks,
            })
        });
    }

    /// What the walk found; a walk not yet decided reports the bytes it
    /// still needed as missing.
    pub fn result(mut self) -> Result<Lz4Framing, String> {
        if self.result.is_none() {
            self.missing();
        }
        self.result.expect("decided")
    }
}

/// Walk the chunk records of a D8 payload at `at` of `len` bytes.
pub(crate) fn lz4_framing<P: Probe + ?Sized>(
    probe: &P,
    at: u64,
    len: u64,
) -> Result<Lz4Framing, String> {
    let mut w = Lz4Walk::new(len);
    let mut buf = [0u8; LZ4_HEAD];
    while let Some((off, n)) = w.need() {
        if probe.read_at(at + off, &mut buf[..n]) {
            w.supply(&buf[..n]);
        } else {
            w.missing();
        }
    }
    w.result()
}

/// Whether a detected file is one kvc only reports as `foreign`: a row it
/// does not read, or no row at all.
pub(crate) fn is_foreign(d: &Detected) -> bool {
    match d {
        Detected::Unknown { .. } => true,
        Detected::Known(id) => matches!(id.spec().support, Support::Foreign | Support::NotKvc),
        _ => false,
    }
}

/// One line on a foreign file: what was recognised (FORMAT.md §9).
pub(crate) fn describe_foreign(
    d: &Detected,
    h: &Header,
    probe: &dyn Probe,
    payload_at: u64,
) -> String {
    match d {
        Detected::Known(id) => {
            let detail = match id {
                DialectId::D8 => match probe.lz4_framing(payload_at, h.payload_bytes) {
                    Ok(f) => format!(
                        "LZ4 codec {}, chunks of 2^{} bytes, {} chunk(s) framing {} uncompressed bytes; not decompressed",
                        h.reserved[0], h.reserved[1], f.chunks, f.uncompressed_total
                    ),
                    Err(e) => e,
                },
                DialectId::D14 | DialectId::D15 => format!(
                    "version {}, payload ABI {}, tail block at byte {}",
                    h.version, h.payload_abi, h.payload_bytes
                ),
                DialectId::D13 => "version 2, payload ABI 2, 72-byte header".to_string(),
                DialectId::D16 | DialectId::D17 => "another store's file under a .kv name".to_string(),
                _ => format!("version {}, payload ABI {}", h.version, h.payload_abi),
            };
            format!("{id}, {}: {detail}", id.spec().writer)
        }
        Detected::Unknown { version, abi, what } => {
            format!("version {version}, payload ABI {abi}: {what}")
        }
        _ => String::new(),
    }
}

/// What a directory shows of the engines that write it: the input of
/// [`infer_engine`], gathered by a scan without reading any text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Evidence {
    /// Temp files named the way ds4-server or ds4-agent names them.
    pub ds4_temps: usize,
    /// Temp files named the way hanzo-engine names them.
    pub hanzo_temps: usize,
    /// `sysprompt.kv` (ds4-agent).
    pub sysprompt: bool,
    /// Files of mainline's dialects (payload ABI 2: D3, D4, D11).
    pub mainline: usize,
    /// D1/D20 look-alikes with a field only hanzo-engine writes.
    pub hanzo_only: usize,
    /// D1/D20 look-alikes with nothing that tells them apart.
    pub ambiguous: usize,
}

impl Evidence {
    /// Count one detected file.
    pub fn add(&mut self, d: &Detected) {
        match d {
            Detected::Known(DialectId::D3 | DialectId::D4 | DialectId::D11) => self.mainline += 1,
            Detected::Ds4OrHanzo { hanzo_only: true } => self.hanzo_only += 1,
            Detected::Ds4OrHanzo { hanzo_only: false } => self.ambiguous += 1,
            _ => {}
        }
    }
}

/// How the engine of a directory was decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "how", content = "from")]
pub enum EngineHow {
    /// `--engine`.
    Given,
    /// From the directory's files; the text says which.
    Inferred(String),
    /// Nothing in the directory tells: ds4 mainline, kvc's default.
    Default,
}

/// The engine whose rules kvc applies to a directory, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EngineChoice {
    pub engine: Engine,
    #[serde(flatten)]
    pub how: EngineHow,
    /// The directory holds files of both ds4 and hanzo-engine: worth a
    /// warning (hanzo-engine zeroes bytes 7 and 20–23 of a mainline file
    /// it touches; some forks delete what they cannot parse).
    pub mixed: bool,
}

impl EngineChoice {
    pub fn given(engine: Engine) -> EngineChoice {
        EngineChoice {
            engine,
            how: EngineHow::Given,
            mixed: false,
        }
    }

    /// One line for output: `ds4 (inferred: 3 files with payload ABI 2)`.
    pub fn describe(&self) -> String {
        match &self.how {
            EngineHow::Given => format!("{} (--engine)", self.engine),
            EngineHow::Inferred(from) => format!("{} (inferred: {from})", self.engine),
            EngineHow::Default => {
                format!("{} (default: nothing in the directory tells)", self.engine)
            }
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Decide which engine reads a directory, from its files (or `given`).
///
/// Mainline's dialects (payload ABI 2) and ds4's temp names or
/// `sysprompt.kv` say ds4; hanzo-engine's temp names and fields ds4 never
/// writes (quant 0, ctx 0) say hanzo-engine. A directory of pre-ABI files
/// only was written by ds4 up to 2026-05-25. When both engines left
/// evidence, ds4 wins (its rules are the stricter reading) and the choice
/// is marked mixed; `--engine` settles it.
pub(crate) fn infer_engine(ev: &Evidence, given: Option<Engine>) -> EngineChoice {
    let hanzo = ev.hanzo_temps + ev.hanzo_only;
    let ds4 = ev.ds4_temps + ev.mainline + usize::from(ev.sysprompt);
    let mixed = hanzo > 0 && ds4 > 0;
    if let Some(engine) = given {
        return EngineChoice {
            engine,
            how: EngineHow::Given,
            mixed,
        };
    }
    let mut why = Vec::new();
    if ev.mainline > 0 {
        why.push(plural(
            ev.mainline,
            "file with payload ABI 2",
            "files with payload ABI 2",
        ));
    }
    if ev.ds4_temps > 0 {
        why.push(plural(ev.ds4_temps, "ds4 temp file", "ds4 temp files"));
    }
    if ev.sysprompt {
        why.push("ds4-agent's sysprompt.kv".to_string());
    }
    let hanzo_why = || {
        let mut w = Vec::new();
        if ev.hanzo_temps > 0 {
            w.push(plural(
                ev.hanzo_temps,
                "hanzo-engine temp file",
                "hanzo-engine temp files",
            ));
        }
        if ev.hanzo_only > 0 {
            w.push(plural(
                ev.hanzo_only,
                "file with quant 0 or ctx 0, which ds4 never writes",
                "files with quant 0 or ctx 0, which ds4 never writes",
            ));
        }
        w.join(", ")
    };
    if hanzo > 0 && ds4 == 0 {
        return EngineChoice {
            engine: Engine::Hanzo,
            how: EngineHow::Inferred(hanzo_why()),
            mixed,
        };
    }
    if ev.mainline > 0 || (ev.ambiguous == 0 && ds4 > 0) {
        if mixed {
            why.push(format!("but also {}", hanzo_why()));
        }
        return EngineChoice {
            engine: Engine::Ds4,
            how: EngineHow::Inferred(why.join(", ")),
            mixed,
        };
    }
    if ev.ambiguous > 0 {
        let mut from = vec![plural(
            ev.ambiguous,
            "file with payload ABI 0",
            "files with payload ABI 0",
        )];
        from.push("none with ABI 2".to_string());
        from.extend(why);
        if mixed {
            from.push(format!("but also {}", hanzo_why()));
        }
        return EngineChoice {
            engine: Engine::Ds4Classic,
            how: EngineHow::Inferred(from.join(", ")),
            mixed,
        };
    }
    EngineChoice {
        engine: Engine::Ds4,
        how: EngineHow::Default,
        mixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::header::{ExtFlags, HEADER_LEN};

    fn header(version: u8, abi: u8, reserved: [u8; 3]) -> Header {
        Header {
            magic: MAGIC,
            version,
            quant_bits: 2,
            reason: Reason::COLD,
            ext_flags: ExtFlags(0),
            model_id: 0,
            tokens: 600,
            hits: 0,
            ctx_size: 32768,
            payload_abi: abi,
            reserved,
            created: 1,
            last_used: 1,
            payload_bytes: 0,
        }
    }

    #[test]
    fn every_id_has_one_row_and_its_code() {
        for d in &DIALECTS {
            assert_eq!(d.id.spec().code, format!("{:?}", d.id));
        }
        let mut ids: Vec<_> = DIALECTS.iter().map(|d| d.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), DIALECTS.len());
    }

    #[test]
    fn header_only_rows() {
        let d = |h: &Header| detect(h, 0, None, &InMemory(&[]));
        assert_eq!(d(&header(1, 2, [0; 3])), Detected::Known(DialectId::D3));
        let mut pulsar = header(1, 2, [0; 3]);
        pulsar.reason = Reason::SYS_PREFIX;
        assert_eq!(d(&pulsar), Detected::Known(DialectId::D4));
        assert_eq!(d(&header(1, 2, [7, 8, 9])), Detected::Known(DialectId::D11));
        assert_eq!(d(&header(1, 3, [0; 3])), Detected::Known(DialectId::D5));
        assert_eq!(d(&header(1, 4, [0; 3])), Detected::Known(DialectId::D6));
        assert_eq!(
            d(&header(1, 0, [0; 3])),
            Detected::Ds4OrHanzo { hanzo_only: false }
        );
        let mut spill = header(1, 0, [0; 3]);
        spill.quant_bits = 0;
        assert_eq!(d(&spill), Detected::Ds4OrHanzo { hanzo_only: true });
        assert!(matches!(
            d(&header(9, 0, [0; 3])),
            Detected::Unknown { version: 9, .. }
        ));
        assert!(matches!(
            d(&header(2, 0, [0; 3])),
            Detected::Unknown { version: 2, .. }
        ));
        assert!(matches!(
            d(&header(1, 7, [0; 3])),
            Detected::Unknown { abi: 7, .. }
        ));
    }

    #[test]
    fn a_tail_block_makes_d14_and_d15() {
        let mut h = header(2, 3, [0; 3]);
        h.payload_bytes = 64;
        let mut file = vec![0u8; 80];
        file[64..68].copy_from_slice(b"TAIL");
        assert_eq!(
            detect(&h, 0, None, &InMemory(&file)),
            Detected::Known(DialectId::D14)
        );
        file[64..68].copy_from_slice(b"TAL2");
        assert_eq!(
            detect(&h, 0, None, &InMemory(&file)),
            Detected::Known(DialectId::D15)
        );
        file[64..68].copy_from_slice(b"NOPE");
        assert!(matches!(
            detect(&h, 0, None, &InMemory(&file)),
            Detected::Unknown { .. }
        ));
    }

    #[test]
    fn lz4_framing_must_add_up() {
        let mut p = Vec::new();
        p.extend_from_slice(&4096u64.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&4096u32.to_le_bytes());
        p.extend_from_slice(&5u32.to_le_bytes());
        p.extend_from_slice(b"abcde");
        let len = p.len() as u64;
        assert_eq!(
            lz4_framing(&InMemory(&p), 0, len),
            Ok(Lz4Framing {
                uncompressed_total: 4096,
                chunks: 1
            })
        );
        assert!(lz4_framing(&InMemory(&p), 0, len - 1).is_err());
        // A chunk count of 2^32 - 1 costs one failed record read.
        p[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(lz4_framing(&InMemory(&p), 0, len).is_err());
    }

    #[test]
    fn d8_needs_codec_framing_and_the_name() {
        let text = b"compressed";
        let mut payload = Vec::new();
        payload.extend_from_slice(&10u64.to_le_bytes());
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.extend_from_slice(&10u32.to_le_bytes());
        payload.extend_from_slice(&3u32.to_le_bytes());
        payload.extend_from_slice(b"xyz");
        let mut h = header(2, 2, [CODEC_LZ4, 12, 0]);
        h.payload_bytes = payload.len() as u64;
        let mut file = h.encode().to_vec();
        assert_eq!(file.len(), HEADER_LEN);
        file.extend_from_slice(&(text.len() as u32).to_le_bytes());
        file.extend_from_slice(text);
        file.extend_from_slice(&payload);
        let key = Key::of_text(text);
        assert_eq!(
            detect(&h, text.len() as u32, Some(&key), &InMemory(&file)),
            Detected::Known(DialectId::D8)
        );
        let other = Key::of_text(b"other");
        assert!(matches!(
            detect(&h, text.len() as u32, Some(&other), &InMemory(&file)),
            Detected::Unknown { .. }
        ));
    }

    #[test]
    fn engine_inference() {
        let ev = |f: fn(&mut Evidence)| {
            let mut e = Evidence::default();
            f(&mut e);
            infer_engine(&e, None)
        };
        assert_eq!(ev(|_| {}).engine, Engine::Ds4);
        assert_eq!(ev(|_| {}).how, EngineHow::Default);
        assert_eq!(ev(|e| e.mainline = 3).engine, Engine::Ds4);
        assert_eq!(ev(|e| e.ambiguous = 3).engine, Engine::Ds4Classic);
        assert_eq!(ev(|e| e.hanzo_only = 1).engine, Engine::Hanzo);
        assert_eq!(
            ev(|e| {
                e.ambiguous = 2;
                e.hanzo_temps = 1
            })
            .engine,
            Engine::Hanzo
        );
        let mixed = ev(|e| {
            e.mainline = 1;
            e.hanzo_temps = 1
        });
        assert_eq!(mixed.engine, Engine::Ds4);
        assert!(mixed.mixed);
        assert_eq!(
            infer_engine(&Evidence::default(), Some(Engine::Hanzo)).engine,
            Engine::Hanzo
        );
    }

    #[test]
    fn a_given_engine_decides_every_look_alike() {
        let spill = Detected::Ds4OrHanzo { hanzo_only: true };
        let plain = Detected::Ds4OrHanzo { hanzo_only: false };
        let inferred = |engine| EngineChoice {
            engine,
            how: EngineHow::Default,
            mixed: false,
        };
        let given = EngineChoice::given(Engine::Ds4Classic);
        assert_eq!(
            spill.resolve_in(&inferred(Engine::Ds4Classic)),
            Some(DialectId::D20)
        );
        assert!(!spill.assumed_in(&inferred(Engine::Ds4Classic)));
        assert_eq!(spill.resolve_in(&given), Some(DialectId::D1));
        assert!(spill.assumed_in(&given));
        assert_eq!(
            plain.resolve_in(&inferred(Engine::Hanzo)),
            Some(DialectId::D20)
        );
        assert!(plain.assumed_in(&given));
        let d3 = Detected::Known(DialectId::D3);
        assert_eq!(
            d3.resolve_in(&EngineChoice::given(Engine::Hanzo)),
            Some(DialectId::D3)
        );
        assert!(!d3.assumed_in(&given));
    }

    #[test]
    fn readers_keep_their_populations() {
        let mut h = header(1, 2, [0; 3]);
        let mainline = Engine::Ds4.reader();
        assert_eq!(mainline.accepts(&h), Ok(()));
        // Bytes 21-23 and the model id are not read.
        h.reserved = [1, 2, 3];
        h.model_id = 2;
        assert_eq!(mainline.accepts(&h), Ok(()));
        assert!(!mainline.counts_name(&Key::Sysprompt));
        assert!(mainline.counts_name(&Key::of_text(b"x")));
        h.payload_abi = 0;
        assert_eq!(mainline.accepts(&h), Err(NotLoaded::Abi { abi: 0 }));
        assert_eq!(Engine::Ds4Classic.reader().accepts(&h), Ok(()));
        h.quant_bits = 3;
        assert_eq!(
            Engine::Ds4Classic.reader().accepts(&h),
            Err(NotLoaded::Quant { quant_bits: 3 })
        );
        h.quant_bits = 0;
        h.tokens = 0;
        h.version = 9;
        assert_eq!(Engine::Hanzo.reader().accepts(&h), Ok(()));
        assert!(Engine::Hanzo.reader().counts_name(&Key::Sysprompt));
    }

    #[test]
    fn the_walk_fed_by_a_stream_agrees_with_the_walk_that_reads() {
        // Framings that add up, run past the payload, end early, or
        // disagree with their total, fed record by record as a stream.
        let mut good = Vec::new();
        good.extend_from_slice(&10u64.to_le_bytes());
        good.extend_from_slice(&2u32.to_le_bytes());
        for (raw, comp) in [(4u32, 3u32), (6, 2)] {
            good.extend_from_slice(&raw.to_le_bytes());
            good.extend_from_slice(&comp.to_le_bytes());
            good.extend(std::iter::repeat_n(0xaa, comp as usize));
        }
        let mut wrong_total = good.clone();
        wrong_total[0] = 11;
        let mut many = good.clone();
        many[8] = 200;
        for (p, len) in [
            (good.clone(), good.len() as u64),
            (good.clone(), good.len() as u64 + 3),
            (good.clone(), 20),
            (wrong_total, good.len() as u64),
            (many, good.len() as u64),
            (good[..5].to_vec(), 5),
        ] {
            let want = lz4_framing(&InMemory(&p), 0, len);
            let mut w = Lz4Walk::new(len);
            while let Some((off, n)) = w.need() {
                match p.get(off as usize..off as usize + n) {
                    Some(b) => w.supply(b),
                    None => w.missing(),
                }
            }
            assert_eq!(w.result(), want, "{p:?} in {len}");
        }
    }
}
