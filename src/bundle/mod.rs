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
//! session's identity: `identity::expected_key`, the scan's own rule).
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
//!
//! # Layout of the code
//!
//! - this module: the records a bundle carries, and [`Progress`];
//! - `check`: the one pass over a checkpoint's bytes that both sides make
//!   (BLAKE3 of the whole, and what the dialect and name checks need);
//! - `ustar`: the tar grammar kvc writes and accepts (ustar headers, plain
//!   names, entry types);
//! - [`export`](mod@export): selecting checkpoints and writing a bundle;
//! - [`install`]: reading a bundle and installing what verifies, through
//!   the write session.

pub(crate) mod check;
pub mod export;
pub mod install;
mod ustar;

pub use export::{
    export, select, BundleWrite, Excluded, ExportReport, LeftForeign, Selected, Selection,
    StreamOut,
};
pub use install::{
    import, Action, BudgetOptions, BudgetOutcome, EntryOutcome, Evicted, ImportOptions,
    ImportReport, ManifestInfo, OnConflict,
};

use crate::format::Header;
use serde::{Deserialize, Serialize};

/// Version of the bundle layout and record schema. Import refuses records
/// of a newer version rather than guess at them.
pub(crate) const BUNDLE_VERSION: u32 = 1;
/// Suffix of the digest record that follows each checkpoint entry.
pub(crate) const META_SUFFIX: &str = ".kvc-meta.json";
/// The last entry of a bundle.
pub(crate) const MANIFEST_NAME: &str = "MANIFEST.json";
/// Bytes moved per read: large enough that syscalls and hashing run in big
/// steps (BLAKE3 vectorises across 1 KiB chunks), small enough that memory
/// stays constant whatever the file sizes.
pub const CHUNK: usize = 256 * 1024;

/// What an import allocates whatever its input: its own [`CHUNK`] buffer
/// and the buffers in flight to its writing thread.
pub const IMPORT_FIXED: usize = CHUNK * (1 + install::WRITE_AHEAD);
/// A digest record is a few hundred bytes; anything much larger is not one,
/// and is not read into memory.
pub(crate) const MAX_META_LEN: u64 = 64 * 1024;
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

/// What a manifest says besides its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ManifestHead {
    pub(crate) bundle: u32,
    pub(crate) kvc_version: String,
    pub(crate) exported_at: u64,
    /// How many entry records it lists.
    pub(crate) entries: usize,
}

/// Read a [`Manifest`] from `r`, handing each entry record to `on_entry`
/// as it is parsed instead of collecting them: import checks a manifest of
/// any length in constant memory. The same fields are required as by
/// [`Manifest`]'s own deserializer; unknown ones are skipped.
pub(crate) fn read_manifest(
    r: impl std::io::Read,
    on_entry: &mut dyn FnMut(EntryRecord),
) -> serde_json::Result<ManifestHead> {
    use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Entries<'a>(&'a mut dyn FnMut(EntryRecord));
    impl<'de> DeserializeSeed<'de> for Entries<'_> {
        type Value = usize;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Entries<'_> {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of entry records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while let Some(e) = seq.next_element::<EntryRecord>()? {
                (self.0)(e);
                n += 1;
            }
            Ok(n)
        }
    }

    struct Head<'a>(&'a mut dyn FnMut(EntryRecord));
    impl<'de> Visitor<'de> for Head<'_> {
        type Value = ManifestHead;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a kvc bundle manifest")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ManifestHead, A::Error> {
            let (mut bundle, mut version, mut at, mut entries) = (None, None, None, None);
            while let Some(k) = map.next_key::<String>()? {
                match k.as_str() {
                    "bundle" => bundle = Some(map.next_value()?),
                    "kvc_version" => version = Some(map.next_value()?),
                    "exported_at" => at = Some(map.next_value()?),
                    "entries" => entries = Some(map.next_value_seed(Entries(&mut *self.0))?),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            let missing = |f: &'static str| A::Error::missing_field(f);
            Ok(ManifestHead {
                bundle: bundle.ok_or_else(|| missing("bundle"))?,
                kvc_version: version.ok_or_else(|| missing("kvc_version"))?,
                exported_at: at.ok_or_else(|| missing("exported_at"))?,
                entries: entries.ok_or_else(|| missing("entries"))?,
            })
        }
    }

    let mut de = serde_json::Deserializer::from_reader(r);
    let head = serde::Deserializer::deserialize_map(&mut de, Head(on_entry))?;
    de.end()?;
    Ok(head)
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
