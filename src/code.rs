//! Every stable code kvc reports, in one place: the findings of `kvc
//! verify`, the reasons `kvc ls` and a scan give for a checkpoint name that
//! is not a usable checkpoint, and what the writing commands did to each
//! file. Each code has one name, one severity and one meaning; JSON
//! carries the name, and the documentation's code tables are generated
//! from [`Code::ALL`] (`tests/docs.rs` checks doc/GUIDE.md against it).
//!
//! One name per thing: a checkpoint name that is a symbolic link is
//! `symlink` wherever kvc reports it, a file that was unlinked is
//! `removed` whichever command unlinked it.

use serde::{Serialize, Serializer};
use std::fmt;

/// How much a code matters: an error fails `kvc verify` (exit 1), a
/// warning only with `--strict`; `info` is an outcome that is not a
/// problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a code appears: a set of uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uses(u8);

impl Uses {
    /// A `kvc verify` finding.
    pub const FINDING: Uses = Uses(1);
    /// A reason a scan (`kvc ls`, `evict`, `rm`, `export`) gives for a
    /// checkpoint name that is not a usable checkpoint.
    pub const INVALID: Uses = Uses(2);
    /// What a writing command did, or would do, to one file.
    pub const OUTCOME: Uses = Uses(4);
    /// Why `kvc gc` keeps or removes a temp file.
    pub const VERDICT: Uses = Uses(8);
    /// Why `kvc evict` leaves an entry alone.
    pub const KEPT: Uses = Uses(16);

    pub const fn and(self, other: Uses) -> Uses {
        Uses(self.0 | other.0)
    }

    pub fn contains(self, other: Uses) -> bool {
        self.0 & other.0 == other.0
    }
}

macro_rules! codes {
    ($($variant:ident = $name:literal, $uses:expr, $severity:ident, $meaning:literal;)*) => {
        /// A stable code (see the module documentation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The name JSON and tables show.
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            pub fn uses(self) -> Uses {
                match self {
                    $(Code::$variant => $uses,)*
                }
            }

            pub fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }

            /// What it means, one Markdown sentence or two.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)*
                }
            }
        }
    };
}

const F: Uses = Uses::FINDING;
const I: Uses = Uses::INVALID;
const FI: Uses = Uses::FINDING.and(Uses::INVALID);
const FIK: Uses = Uses::FINDING.and(Uses::INVALID).and(Uses::KEPT);
const FIV: Uses = Uses::FINDING.and(Uses::INVALID).and(Uses::VERDICT);
const FK: Uses = Uses::FINDING.and(Uses::KEPT);
const O: Uses = Uses::OUTCOME;
const OK: Uses = Uses::OUTCOME.and(Uses::KEPT);
const V: Uses = Uses::VERDICT;
const K: Uses = Uses::KEPT;

codes! {
    // Findings of `kvc verify`; those marked FI are also a scan's reasons.
    Empty = "empty", FI, Error, "the file has zero bytes";
    ShortHeader = "short-header", FI, Error, "shorter than the 52-byte header and text_len";
    BadMagic = "bad-magic", FI, Error, "does not start with `KVC`; nothing else in the header is checked";
    BadVersion = "bad-version", FI, Error, "an envelope version other than 1 that no dialect kvc knows (a fork's version 2 is `foreign`)";
    TextLength = "text-length", FI, Error, "text_len runs past the end of the file; the text cannot be checked";
    Truncated = "truncated", FI, Error, "file shorter than 52 + text_len + payload_bytes; the text and header are still checked, the payload and trailer are not";
    KeyMismatch = "key-mismatch", F, Error, "the file name is not what the content says: SHA-1 of the text, or for a ds4-agent session with ext bit 3 SHA-1(title ‖ created as u64 LE), the title up to its first NUL (names are compared case-insensitively, as ds4 does)";
    ZeroTokens = "zero-tokens", FI, Error, "header token count is 0 (ds4 skips the file); valid on hanzo-engine files (D20)";
    BadTrailer = "bad-trailer", F, Error, "ext bit 0 is set, but the bytes after the payload are not exactly one well-formed `KTM` section within ds4's limits (ids 1..=256 bytes, DSML 1 byte..=512 MiB, at most 400000 entries); read entry by entry, never held whole";
    BadTitle = "bad-title", F, Error, "ext bit 3 is set, but the session-title trailer (u32 length, title) is missing or runs past the end of the file: ds4-agent cannot load the session";
    TrailerConflict = "trailer-conflict", F, Error, "ext bits 0 (tool-id map, ds4-server) and 3 (session title, ds4-agent) both set: no engine writes both, so neither trailer nor name is checked";
    ClobberedHeader = "clobbered-header", F, Error, "a hanzo-engine file (D20) with bytes after its payload: hanzo writes no trailers, so its header was written back over another file";
    PayloadMismatch = "payload-mismatch", F, Error, "the DSV4 payload holds another token count than the KVC header (ds4 deletes such a file when it loads it)";
    PayloadCtx = "payload-ctx", F, Warning, "the DSV4 payload was written for another ctx than the header's ctx_size: ds4 writes both from the session's ctx, and still loads the file (its loader checks the payload's ctx only against the live one), but its lookup goes by the header's";
    PayloadSize = "payload-size", F, Error, "a DSV4 payload whose exact size (FORMAT.md §6, from its header and count arrays) is not payload_bytes, whose count arrays run past it, or that breaks ds4's load rules (version, tokens < ctx, raw_live = min(tokens, raw_window) ≤ raw_cap, every count ≤ comp_cap)";
    PayloadData = "payload-data", F, Error, "`--deep` only: a DSV4 token id not below vocab, or a logit that is NaN or infinite (count and first position given)";
    Symlink = "symlink", FIK, Error, "a checkpoint name that is a symbolic link: kvc never follows one in a cache directory (ds4 would load its target), and never deletes or moves one";
    NotAFile = "not-a-file", FIV, Error, "a checkpoint name that is a directory, a FIFO, a socket, a device node or another non-regular file; its type is read with `lstat` first, so it is never opened";
    BadRecord = "bad-record", I, Error, "`remote ls`: an object named as a checkpoint whose kvc record (`x-amz-meta-kvc`) is missing, unreadable or disagrees with the object (key, size, namespace); `pull` never installs one";
    Unreadable = "unreadable", FI, Error, "the file could not be opened or read (permissions, an I/O error, or it shrank while being read)";
    BadQuant = "bad-quant", F, Warning, "quant_bits is not 2 or 4, so ds4 skips the file; not judged on hanzo-engine files (D20), which never read it";
    UnknownReason = "unknown-reason", F, Warning, "reason above 6 (ds4 reads it as unknown; 7 is pulsar's sys-prefix in D4)";
    UnknownFlags = "unknown-flags", F, Warning, "ext_flags has bits no engine defines (4–7); not judged on hanzo-engine files";
    PayloadVersion = "payload-version", F, Warning, "a DSV4 payload version the dialect does not write: 1 in a payload-ABI-2 file (mainline refuses it on load) or 2 in an ABI-0 file (ds4 before 2026-05-26 refuses it); the body is judged all the same";
    TrailingBytes = "trailing-bytes", F, Warning, "bytes after the payload (or after a session title) that no ext bit announces; engines ignore them";
    TrailerDsmlMissing = "trailer-dsml-missing", F, Warning, "a tool-map entry whose DSML block does not occur in the text (ds4 never stores one); names up to 3 ids, sanitized. All entries are looked for in one pass over the text (Aho–Corasick)";
    FutureTimestamp = "future-timestamp", F, Warning, "created or last_used more than 5 minutes in the future";
    WorldReadable = "world-readable", F, Warning, "group or other can list or enter a cache directory (mode & 055): one finding per directory, with the count of checkpoint files they can read through it (a file's read bit counts only for a class the directory lets search it: a 0644 file in a 0700 directory is fine). A file named alone is judged with its own directory. The files are verbatim prompts";
    StaleTemp = "stale-temp", F, Warning, "a temp file of any writer (names under `kvc gc`) not modified for `--temp-age` (default `1h`; humantime: `30m`, `2h`, `1d`) with no live writer: the pid in its name, if any, is not running on this host and no process holds it open — exactly what `kvc gc` removes";
    Stray = "stray", FK, Warning, "a name that is not a checkpoint name: `kvc verify --all` reports the names no engine reads; `kvc evict` keeps the `*.kv` ones hanzo-engine counts unless `--include-unloadable`";
    Foreign = "foreign", FK, Warning, "a file of a dialect kvc does not fully read (FORMAT.md §9: a fork's version-2 envelope, LZ4 payloads, tail-indexed files, an unknown version or ABI): the message names what was recognised; it is never judged, quarantined or deleted";
    MixedEngines = "mixed-engines", F, Warning, "a directory (finding of the directory) holding files of both ds4 and hanzo-engine: hanzo evicts every `*.kv` by age and zeroes bytes 7 and 20–23 of ds4 files it loads; the message names the engine whose rules were applied";
    MixedPayloadVersions = "mixed-payload-versions", F, Warning, "a directory holding DSV4 payloads of version 1 and of version 2: ds4 mainline loads only version 2, ds4 before 2026-05-26 only version 1, so either loads only part of the cache";

    // What the writing commands did to one file.
    Planned = "planned", O, Info, "`--dry-run`: what the command would do; nothing was changed";
    Removed = "removed", O, Info, "unlinked (`rm`, `evict`, `gc`), after checking that the name was still the inode judged, and journaled. `note` says so when the directory's fsync failed afterwards: removed, but not durable yet";
    Vanished = "vanished", O, Info, "gone before kvc got to it (an engine evicted, consumed or replaced it): nothing done, not an error";
    Touched = "touched", O, Warning, "`evict`: the engine used the checkpoint since planning (its header changed); left alone, and the directory planned again";
    Changed = "changed", O, Warning, "no longer the file that was judged (another inode under the name, or its size or contents changed): left alone";
    Invalid = "invalid", OK, Error, "not a readable checkpoint (the code of its defect is given): `evict` never deletes one on its own (under hanzo-engine, which counts it, only with `--include-unloadable`), and leaves alone a victim that no longer reads as a checkpoint";
    Failed = "failed", O, Error, "the operation failed; the file is as it was (the reason is given)";
    Kept = "kept", O, Info, "`gc`: not removed (its verdict says why)";
    Quarantined = "quarantined", O, Info, "`verify --quarantine`: moved out of the cache (a hard link and an unlink, or across file systems a copy under a temp name, fsynced and renamed into place before the original goes), with its `<name>.why`";
    LeftInPlace = "left-in-place", O, Warning, "`verify --quarantine`: not moved (it changed or vanished since it was checked, or it is not a regular file)";
    Installed = "installed", O, Info, "`import`, `pull`: new in the target";
    Replaced = "replaced", O, Info, "`import`, `pull`: overwrote a different copy";
    Present = "present", O, Info, "`import`, `pull`: the same bytes (for `pull`, the same text, payload and trailers) were already there; `push`: the remote already has the checkpoint";
    Skipped = "skipped", O, Info, "`import`, `pull`: a different copy is there and was kept (`--on-conflict`)";
    Rejected = "rejected", O, Error, "`import`, `pull`: not installed; `push`: not uploaded (the reason is given)";
    Pushed = "pushed", O, Info, "`push`: uploaded, with its record, as a new object (a conditional create: never over another host's copy)";
    Excluded = "excluded", O, Info, "`push`: its text matches an `--exclude-text` pattern; nothing was sent";
    Aborted = "aborted", O, Info, "`remote gc`: an abandoned multipart upload was aborted (its parts deleted)";
    Rewritten = "rewritten", O, Info, "`trailer`: the trailer was rewritten, durably, and journaled";
    WouldRewrite = "would-rewrite", O, Info, "`trailer --dry-run`: the trailer would be rewritten";
    Unchanged = "unchanged", O, Info, "`trailer`: nothing to change";

    // Why `kvc gc` keeps or removes a temp file.
    Stale = "stale", V, Info, "old, and no live writer is known: removed";
    WriterAlive = "writer-alive", V, Info, "the pid in its name is running (or six digits that may be a ds4-agent mkstemp suffix name a running pid)";
    Recent = "recent", V, Info, "modified within `--temp-age` (or in the future, or without a time)";
    HeldOpen = "held-open", V, Info, "a process on this host holds it open: a save may be in progress";
    HoldersUnknown = "holders-unknown", V, Warning, "no certain pid in its name, and kvc could not see every process that may hold it open";

    // Why `kvc evict` leaves an entry alone (besides `invalid`, `foreign`,
    // `stray` and `symlink`).
    NotLoaded = "not-loaded", K, Info, "a checkpoint the engine never loads (another payload ABI, quant or envelope version, zero tokens): `--include-unloadable` deletes it";
    NotCountedName = "not-counted-name", K, Info, "ds4-agent's `sysprompt.kv`: the agent loads it by its fixed path, and ds4's budget never counts it";
    Directory = "directory", K, Info, "a directory named `*.kv`: hanzo-engine counts it and fails to remove it; kvc keeps it too";
}

impl Code {
    /// The code of `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// The codes with one of `uses`, in documentation order.
    pub fn used_as(uses: Uses) -> impl Iterator<Item = Code> {
        Code::ALL
            .iter()
            .copied()
            .filter(move |c| c.uses().0 & uses.0 != 0)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A Markdown table of the codes with one of `uses`: `| code | severity |
/// meaning |` for findings, `| code | meaning |` for the rest, as
/// doc/GUIDE.md shows them.
pub fn markdown_table(uses: Uses) -> String {
    let severity = uses == Uses::FINDING;
    let mut out = if severity {
        String::from("| code | severity | meaning |\n|---|---|---|\n")
    } else {
        String::from("| code | meaning |\n|---|---|\n")
    };
    for c in Code::used_as(uses) {
        if severity {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.name(),
                c.severity(),
                c.meaning()
            ));
        } else {
            out.push_str(&format!("| `{}` | {} |\n", c.name(), c.meaning()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_reads_back() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a name used twice");
        for c in Code::ALL {
            assert_eq!(Code::from_name(c.name()), Some(*c));
            assert!(!c.meaning().contains('\n') && !c.meaning().contains('|'));
        }
    }
}
