//! Rewriting the tool-id map trailer (FORMAT.md §5) of a checkpoint:
//! reading its state, checking a map against ds4's loader, pruning stale
//! entries, and replacing or removing the section crash-safely.
//!
//! # What a rewrite keeps
//!
//! Header bytes other than ext bit 0, the text and the payload stay
//! byte-identical: the header is never re-encoded from decoded fields, only
//! its flag byte is written (in place) or the bytes on disk are copied with
//! that bit changed (temp file), so the model id (byte 7), the payload ABI
//! (byte 20), bytes 21–23 and any reason survive as they are. Bit 0 is set
//! exactly when a non-empty map follows the payload; an empty map is
//! written as no section at all.
//!
//! Only files with ds4's tool-id map are rewritten (`tool_map_rule`): not
//! a ds4-agent session (ext bit 3: its trailer is its title), not a file of
//! a dialect without ds4's trailers (hanzo-engine), not a foreign one.
//!
//! # Crash safety
//!
//! A checkpoint is hundreds of MiB, so a rewrite must not copy it when it
//! can avoid it. Three ways, chosen by [`Method`]:
//!
//! * **clone** (`FICLONE`, where the filesystem shares extents: btrfs, XFS,
//!   bcachefs, …): clone the file into `<name>.tmp.<pid>`, rewrite the
//!   clone's trailer and header, fsync it, then swap it in with
//!   `renameat2(RENAME_EXCHANGE)` and fsync the directory. The name points at
//!   the old inode or at the new one, never at anything else, so a crash
//!   leaves exactly the old file or exactly the new one, and an engine that
//!   opened the old file keeps reading a consistent old file.
//! * **copy**: the same with a byte copy of header, text and payload
//!   (`copy_file_range`) when there is no reflink. Strict old-or-new on any
//!   filesystem, at the price of a full copy and twice the space meanwhile.
//! * **in place**: an order of writes and fsyncs in which every state the
//!   disk can hold is a file ds4 accepts. It rests on two facts: ds4 ignores
//!   whatever follows the payload while bit 0 is clear, and the flag lives
//!   in one byte of the 48-byte header at offset 0, which is rewritten with
//!   a one-byte `pwrite` (it cannot tear, and it cannot clobber the hits or
//!   last-used fields an engine may have just updated):
//!
//!   1. if bit 0 is set: clear it, fsync. From here ds4 sees no map, and the
//!      bytes after the payload may change freely;
//!   2. truncate to the end of the payload, write the new section, fsync;
//!   3. if the new map is not empty: set bit 0, fsync.
//!
//!   The fsyncs order the steps on disk: without the first, the truncation
//!   (metadata, journaled) could reach the disk before the cleared flag
//!   (data) and leave a flag without its section; without the second, the
//!   flag could reach the disk before the section it announces.
//!
//!   Adding a map to a file without one is strictly old-or-new (until step 3
//!   ds4 ignores the new bytes), and so is stripping as far as ds4 can tell
//!   (after step 1 it sees no map; the old bytes linger until step 2, which
//!   `kvc verify` reports as the `trailing-bytes` warning). *Replacing* a
//!   non-empty map by another one cannot be strict in place: the only
//!   atomic switch is bit 0, and the bytes after the payload cannot change
//!   while it announces them, so every path passes through "bit 0 clear":
//!   a valid checkpoint without its tool map. A crash in that window (two
//!   fsyncs long) costs ds4 the exact replay of past tool calls, not the
//!   checkpoint. Re-running `set` completes the rewrite; an interrupted
//!   `prune` cannot be completed (the map it pruned is no longer active:
//!   `kvc trailer ls` shows the stray bytes).
//!
//! `Method::Auto` keeps the strict guarantee everywhere and copies only as
//! the last resort: it clones where the filesystem can; otherwise it
//! rewrites in place when that is strict (`RewritePlan::in_place_is_strict`:
//! adding a map where there was none, removing one), and copies when it is
//! not (replacing a non-empty map by another).
//!
//! # Engines working next to kvc
//!
//! The engines do not take kvc's lock. Before each header write the prefix
//! is read again, and the rewrite stops if the layout (magic, version, text
//! and payload length) changed. The temp-file methods carry over a header
//! the engine updated meanwhile and swap only if the name still points at
//! the file that was read; a file deleted or replaced by an engine during
//! the rewrite is left alone ([`Applied::Vanished`]). What kvc cannot
//! prevent: an engine that loaded the checkpoint *before* the rewrite and
//! later writes the header it loaded back on a hit — hanzo-engine re-opens
//! the file by path and writes its whole loaded header (FORMAT.md §7) —
//! restores the old bit 0 in place, or lands on the swapped-in file. (ds4
//! mainline re-reads the header before writing a hit back: only its hit
//! count is stale.) `kvc verify` reports a flag without its section and
//! `kvc trailer strip` repairs it.

use crate::error::{Error, Result};
use crate::format::checkpoint::{CheckpointFile, Key};
use crate::format::dialect::{self, DialectId, Engine, Trailers};
use crate::format::trailer::{
    self as ktm, EntryUse, ToolMap, ToolMapEntry, TrailerError, MAX_COUNT, MAX_DSML_LEN, MAX_ID_LEN,
};
use crate::format::{ExtFlags, Header, HEADER_LEN, PREFIX_LEN};
use crate::fsutil::AtomicFile;
use crate::search;
use crate::sys::{reflink, unsupported, Dir, Meta, Open};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Offset of the ext flag byte in the header (FORMAT.md §3).
const EXT_FLAGS_OFFSET: u64 = 6;

/// Bytes copied per `copy_file_range` call: large enough to be cheap, small
/// enough that a signal is noticed between calls.
const COPY_CHUNK: u64 = 64 << 20;
/// Buffer of the read/write copy used where `copy_file_range` is refused.
const COPY_BUFFER: usize = 1 << 20;

// ---------------------------------------------------------------------------
// The state of a file's trailer
// ---------------------------------------------------------------------------

/// A well-formed map, as a walk over it counted it (its entries are not
/// held).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSummary {
    pub entries: usize,
    /// Bytes of the section.
    pub bytes: u64,
}

/// What follows the payload, read as ds4 would, entry header by entry
/// header (never held whole: a sparse 1.5 GiB trailer costs a few reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrailerState {
    /// Bit 0 clear and nothing after the payload.
    None,
    /// Bit 0 set and exactly one well-formed section.
    Map(MapSummary),
    /// Bit 0 clear but bytes after the payload, which ds4 ignores: what an
    /// interrupted in-place rewrite leaves, or another writer's leftovers.
    /// `entries`: how many they hold, if they form one section.
    Stray { bytes: u64, entries: Option<usize> },
    /// Bit 0 set but the bytes after the payload are not one well-formed
    /// section (`kvc verify`: `bad-trailer`).
    Broken { bytes: u64, error: TrailerError },
}

impl TrailerState {
    /// Read the state of an open checkpoint whose envelope checked out.
    pub fn read(cf: &CheckpointFile) -> io::Result<TrailerState> {
        Self::read_with(cf, cf.header.ext_flags)
    }

    /// The state with `flags` as the flag byte (the one on disk now).
    fn read_with(cf: &CheckpointFile, flags: ExtFlags) -> io::Result<TrailerState> {
        let (at, end) = (cf.payload_end(), cf.size);
        let bytes = end.saturating_sub(at);
        let walked = match ktm::walk(cf, at, end, &mut |_| {}) {
            Err(ktm::WalkError::Unreadable) => {
                return Err(io::Error::other("the trailer could not be read"))
            }
            Err(ktm::WalkError::Bad(e)) => Err(e),
            Ok(n) => Ok(n as usize),
        };
        Ok(match (flags.has_tool_map(), bytes == 0) {
            (false, true) => TrailerState::None,
            (false, false) => TrailerState::Stray {
                bytes,
                entries: walked.ok(),
            },
            (true, _) => match walked {
                Ok(entries) => TrailerState::Map(MapSummary { entries, bytes }),
                Err(error) => TrailerState::Broken { bytes, error },
            },
        })
    }

    /// `none`, `map`, `stray`, `broken`: the stable JSON name.
    pub fn name(&self) -> &'static str {
        match self {
            TrailerState::None => "none",
            TrailerState::Map(_) => "map",
            TrailerState::Stray { .. } => "stray",
            TrailerState::Broken { .. } => "broken",
        }
    }
}

/// The map ds4 loads from this file, held in memory for a command that
/// shows or prunes it: `Ok(None)` without one (bit 0 clear, or nothing
/// after the payload). Refuses a map larger than `ktm::MAX_HELD_MAP`
/// before reading it, and a broken one.
pub fn read_active_map(cf: &CheckpointFile) -> Result<Option<ToolMap>> {
    if !cf.header.ext_flags.has_tool_map() {
        return Ok(None);
    }
    match ktm::read_map(cf, cf.payload_end(), cf.size, ktm::MAX_HELD_MAP) {
        Ok(m) => Ok(Some(m)),
        Err(ktm::ReadMapError::TooLarge(t)) => Err(Error::invalid(&cf.path, t.to_string())),
        Err(ktm::ReadMapError::Walk(ktm::WalkError::Bad(e))) => Err(Error::invalid(
            &cf.path,
            format!(
                "ext bit 0 is set but the {} bytes after the payload are not a tool-id map ({e}); `kvc trailer strip` removes them",
                cf.trailer_len()
            ),
        )),
        Err(ktm::ReadMapError::Walk(ktm::WalkError::Unreadable)) => Err(Error::invalid(
            &cf.path,
            "the tool-id map could not be read",
        )),
    }
}

/// Which of `map`'s DSML blocks occur in the file's text: one pass of
/// [`search::occurring`] over the text, read from the file.
pub fn in_text(cf: &CheckpointFile, map: &ToolMap) -> io::Result<Vec<bool>> {
    let needles: Vec<&[u8]> = map.entries.iter().map(|e| e.dsml.as_slice()).collect();
    let text = search::Text {
        probe: cf,
        at: crate::format::TEXT_OFFSET,
        len: cf.text_len as u64,
    };
    Ok(search::occurring(text, &needles)?.found)
}

// ---------------------------------------------------------------------------
// Checking and pruning maps
// ---------------------------------------------------------------------------

/// One reason a map is not what ds4 would store. `index` counts from 0;
/// messages count from 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("{count} entries; ds4 loads at most {MAX_COUNT}")]
    TooMany { count: usize },
    #[error("entry {} (id {id}): id is {len} bytes; ds4 accepts 1 to {MAX_ID_LEN}", .index + 1)]
    IdLen {
        index: usize,
        id: String,
        len: usize,
    },
    #[error("entry {} (id {id}): DSML is {len} bytes; ds4 accepts 1 to {MAX_DSML_LEN}", .index + 1)]
    DsmlLen {
        index: usize,
        id: String,
        len: usize,
    },
    #[error("entry {} (id {id}): the id repeats entry {} (ds4 would use only the last of them)", .index + 1, .first + 1)]
    DuplicateId {
        index: usize,
        first: usize,
        id: String,
    },
    #[error("entry {} (id {id}): its {field} has a NUL byte at byte {at}; ds4 reads ids and DSML blocks as C strings and would cut it there", .index + 1)]
    Nul {
        index: usize,
        id: String,
        field: &'static str,
        at: usize,
    },
    #[error("entry {} (id {id}): its DSML block does not occur in the text", .index + 1)]
    NotInText { index: usize, id: String },
}

/// An id as messages show it: quoted and sanitized (ids are untrusted).
fn shown_id(id: &[u8]) -> String {
    format!("\"{}\"", crate::text::sanitize_line(id))
}

/// Everything about `map` that ds4's loader would refuse or read other than
/// it is written: lengths outside its limits, too many entries, NUL bytes
/// (ds4 reads ids and DSML blocks as C strings: a NUL cuts them, and an
/// entry that starts with one is dropped), repeated ids (only the last is
/// used). Independent of any text.
pub(crate) fn check_limits(map: &ToolMap) -> Vec<EntryProblem> {
    let mut out = Vec::new();
    if map.entries.len() > MAX_COUNT as usize {
        out.push(EntryProblem::TooMany {
            count: map.entries.len(),
        });
    }
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for (index, e) in map.entries.iter().enumerate() {
        if e.id.is_empty() || e.id.len() > MAX_ID_LEN {
            out.push(EntryProblem::IdLen {
                index,
                id: shown_id(&e.id),
                len: e.id.len(),
            });
        }
        if e.dsml.is_empty() || e.dsml.len() > MAX_DSML_LEN {
            out.push(EntryProblem::DsmlLen {
                index,
                id: shown_id(&e.id),
                len: e.dsml.len(),
            });
        }
        for (field, bytes) in [("id", &e.id), ("DSML", &e.dsml)] {
            if let Some(at) = memchr::memchr(0, bytes) {
                out.push(EntryProblem::Nul {
                    index,
                    id: shown_id(&e.id),
                    field,
                    at,
                });
            }
        }
        if let Some(&first) = seen.get(e.id.as_slice()) {
            out.push(EntryProblem::DuplicateId {
                index,
                first,
                id: shown_id(&e.id),
            });
        } else {
            seen.insert(&e.id, index);
        }
    }
    out
}

/// Entries whose DSML block does not occur in the text (`in_text`, from
/// [`in_text`]). ds4 only stores entries whose block is in the text: one
/// that is not can never be replayed against this checkpoint.
pub fn not_in_text(map: &ToolMap, in_text: &[bool]) -> Vec<EntryProblem> {
    map.entries
        .iter()
        .zip(in_text)
        .enumerate()
        .filter(|(_, (_, found))| !**found)
        .map(|(index, (e, _))| EntryProblem::NotInText {
            index,
            id: shown_id(&e.id),
        })
        .collect()
}

/// Why `prune` dropped an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// Its DSML block does not occur in the text.
    NotInText,
    /// A later entry has the same id: ds4 uses the last one, never this.
    DuplicateId,
    /// Its id or DSML block starts with a NUL byte: ds4 drops it.
    NulStart,
}

impl DropReason {
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::NotInText => "not in the text",
            DropReason::DuplicateId => {
                "duplicate id, shadowed by a later entry (ds4 uses the last)"
            }
            DropReason::NulStart => "its id or DSML starts with a NUL byte (ds4 drops it)",
        }
    }
}

/// An entry `prune` dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Position in the map before pruning, from 0.
    pub index: usize,
    pub entry: ToolMapEntry,
    pub reason: DropReason,
}

/// Drop what ds4 never uses or should not have (FORMAT.md §5, read as
/// ds4 reads a map: ids and DSML blocks are C strings, the last entry of an
/// id wins): entries shadowed by a later entry with the same id, entries
/// whose id or DSML starts with a NUL byte (ds4 drops them), and entries
/// whose DSML block does not occur in the text (ds4 only stores blocks
/// that do; such an entry can never be replayed against this checkpoint).
///
/// Prune only removes: every id resolves, after it, to the entry ds4 used
/// before it, or — when that entry was stale — to nothing. A shadowed entry
/// is never promoted in place of a stale last one.
pub fn prune(map: &ToolMap, in_text: &[bool]) -> (ToolMap, Vec<Dropped>) {
    let mut kept = ToolMap::default();
    let mut dropped = Vec::new();
    for (index, ((e, used), &found)) in map.entries.iter().zip(map.uses()).zip(in_text).enumerate()
    {
        let reason = match used {
            EntryUse::Dropped(_) => Some(DropReason::NulStart),
            EntryUse::Shadowed { .. } => Some(DropReason::DuplicateId),
            EntryUse::Used if !found => Some(DropReason::NotInText),
            EntryUse::Used => None,
        };
        match reason {
            Some(reason) => dropped.push(Dropped {
                index,
                entry: e.clone(),
                reason,
            }),
            None => kept.entries.push(e.clone()),
        }
    }
    (kept, dropped)
}

// ---------------------------------------------------------------------------
// Which files have a tool-id map
// ---------------------------------------------------------------------------

/// Why trailer commands leave a file alone: the tool-id map is ds4's
/// (FORMAT.md §5), so kvc reads and rewrites it only in a file of a dialect
/// whose ext bits mean what ds4 says, and only where bit 3 does not say the
/// bytes after the payload are something else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotToolMap {
    /// A dialect kvc does not read (FORMAT.md §9): what was recognised.
    #[error("foreign dialect {0}: kvc reads no tool-id map in it and rewrites nothing")]
    Foreign(String),
    /// ext bit 3: a ds4-agent session, whose trailer is its title (§5b).
    #[error("a ds4-agent session (ext bit 3): what follows its payload is its session title, not a tool-id map; trailer commands leave it alone")]
    SessionTitle,
    /// ext bits 0 and 3 together (`trailer-conflict`).
    #[error("ext bits 0 and 3 are both set (trailer-conflict): no engine writes both, and kvc does not guess which trailer follows the payload; left alone")]
    Conflict,
    /// A dialect without ds4's trailers (D20, hanzo-engine).
    #[error("{0}: hanzo-engine gives the ext bits no meaning and writes no trailers; trailer commands leave it alone")]
    NoTrailers(String),
}

/// Whether a file of `dialect` with header `h` has ds4's tool-id map
/// trailer for kvc to read and rewrite (see [`NotToolMap`]).
pub(crate) fn tool_map_rule(dialect: DialectId, h: &Header) -> std::result::Result<(), NotToolMap> {
    let spec = dialect.spec();
    if matches!(
        spec.support,
        dialect::Support::Foreign | dialect::Support::NotKvc
    ) {
        return Err(NotToolMap::Foreign(format!("{dialect}, {}", spec.writer)));
    }
    if spec.trailers != Trailers::Ds4 || !spec.ext_bits {
        return Err(NotToolMap::NoTrailers(format!(
            "a {} file ({dialect})",
            spec.writer
        )));
    }
    if ktm::trailer_conflict(h) {
        return Err(NotToolMap::Conflict);
    }
    if h.ext_flags.has_session_title() {
        return Err(NotToolMap::SessionTitle);
    }
    Ok(())
}

/// The dialect of an open checkpoint, as `engine` (the engine that reads
/// its directory) resolves a pre-ABI ds4 / hanzo-engine look-alike, when it
/// has ds4's tool-id map trailer; otherwise why not.
pub fn tool_map_dialect(
    cf: &CheckpointFile,
    engine: Engine,
) -> std::result::Result<DialectId, NotToolMap> {
    let key = cf
        .path
        .file_name()
        .and_then(|n| Key::from_file_name(&n.to_string_lossy()));
    let detected = dialect::detect(&cf.header, cf.text_len, key.as_ref(), cf);
    let Some(d) = detected
        .resolve(engine)
        .filter(|_| !dialect::is_foreign(&detected))
    else {
        return Err(NotToolMap::Foreign(dialect::describe_foreign(
            &detected,
            &cf.header,
            cf,
            cf.payload_offset(),
        )));
    };
    tool_map_rule(d, &cf.header)?;
    Ok(d)
}

// ---------------------------------------------------------------------------
// Planning a rewrite
// ---------------------------------------------------------------------------

/// What to do to a file's trailer.
#[derive(Clone, Copy, Debug)]
pub enum Edit<'a> {
    /// Replace the map (an empty map removes it). The map must pass
    /// `check_limits`; `allow_missing` stores entries whose DSML block is
    /// not in the text.
    Set {
        map: &'a ToolMap,
        allow_missing: bool,
    },
    /// Drop stale entries and repeated ids ([`prune`]).
    Prune,
    /// Remove the map, whatever state it is in, and any stray bytes.
    Strip,
}

/// A rewrite worked out from one reading of the file; nothing written yet.
#[derive(Clone, Debug)]
pub struct RewritePlan {
    pub path: PathBuf,
    pub before: TrailerState,
    /// The map after the rewrite; empty means no section and bit 0 clear.
    pub after: ToolMap,
    /// Entries `prune` drops.
    pub dropped: Vec<Dropped>,
    /// Entries a `Set` with `allow_missing` stores although their DSML
    /// block is not in the text.
    pub missing: Vec<EntryProblem>,
    /// Does the file change at all?
    pub changes: bool,
    /// Bytes after the payload as read (never held), and the section they
    /// will be.
    current_len: u64,
    section: Vec<u8>,
    /// The bytes after the payload change (not only bit 0).
    body_changes: bool,
    /// Size and layout as read, to notice another writer before writing.
    size: u64,
    prefix: [u8; PREFIX_LEN],
}

impl RewritePlan {
    /// Size of the file the plan was made from (what a copy copies, and
    /// what a progress bar counts).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Size of the file after the rewrite.
    pub(crate) fn size_after(&self) -> u64 {
        self.size - self.current_len + self.section.len() as u64
    }

    /// Bytes after the payload before and after the rewrite.
    pub fn trailer_bytes(&self) -> (u64, u64) {
        (self.current_len, self.section.len() as u64)
    }

    /// Would an in-place rewrite show ds4 only the old or the new map at
    /// every instant? Not when a non-empty map is replaced by another one:
    /// then bit 0 must be cleared while the section changes (module
    /// documentation), and ds4 would see no map meanwhile.
    pub(crate) fn in_place_is_strict(&self) -> bool {
        let replaces_a_map = matches!(&self.before, TrailerState::Map(m) if m.entries > 0)
            && !self.section.is_empty()
            && self.body_changes;
        !replaces_a_map
    }
}

fn read_prefix(file: &File) -> io::Result<[u8; PREFIX_LEN]> {
    let mut p = [0u8; PREFIX_LEN];
    file.read_exact_at(&mut p, 0)?;
    Ok(p)
}

/// Work out what `edit` does to the checkpoint `cf` (opened with
/// [`open_checkpoint`] or [`CheckpointFile::open`]), in a directory read by
/// `engine` ([`tool_map_dialect`]). Refusals are [`Error::Invalid`] naming
/// the file.
pub fn plan(cf: &CheckpointFile, edit: Edit<'_>, engine: Engine) -> Result<RewritePlan> {
    let path = &cf.path;
    let io_err = |e| Error::io(path, e);
    tool_map_dialect(cf, engine).map_err(|e| Error::invalid(path, e.to_string()))?;
    let unknown = cf.header.ext_flags.unknown_bits();
    if unknown != 0 {
        // Unassigned bits may announce trailer sections of their own after
        // the tool map (FORMAT.md §3: sections in ext-bit order); rewriting
        // the bytes after the payload would destroy them.
        return Err(Error::invalid(
            path,
            format!(
                "ext flags 0x{:02x} have unassigned bits 0x{unknown:02x} whose trailer sections kvc does not know; not rewriting",
                cf.header.ext_flags.0
            ),
        ));
    }
    let prefix = read_prefix(cf.file()).map_err(io_err)?;
    if !same_layout(&prefix, &cf_prefix(cf)) {
        return Err(changed(path));
    }
    let current_len = cf.trailer_len();
    // The flags as on disk now (an engine may have rewritten the header
    // since `cf` was opened): `before`, `changes` and `apply` all go by them.
    let flags = ExtFlags(prefix[EXT_FLAGS_OFFSET as usize]);
    let before = TrailerState::read_with(cf, flags).map_err(io_err)?;
    let mut dropped = Vec::new();
    let mut missing = Vec::new();
    let after = match edit {
        Edit::Set { map, allow_missing } => {
            if let Some(p) = check_limits(map).into_iter().next() {
                return Err(Error::invalid(path, p.to_string()));
            }
            let found = in_text(cf, map).map_err(io_err)?;
            missing = not_in_text(map, &found);
            if !allow_missing && !missing.is_empty() {
                let more = match missing.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                return Err(Error::invalid(
                    path,
                    format!(
                        "{}{more}; ds4 only stores blocks that are in the text (--allow-missing stores them anyway)",
                        missing[0]
                    ),
                ));
            }
            map.clone()
        }
        Edit::Prune => {
            match &before {
                TrailerState::Map(_) => {
                    let map = match ktm::read_map(cf, cf.payload_end(), cf.size, ktm::MAX_HELD_MAP)
                    {
                        Ok(m) => m,
                        Err(ktm::ReadMapError::TooLarge(t)) => {
                            return Err(Error::invalid(path, t.to_string()))
                        }
                        Err(ktm::ReadMapError::Walk(_)) => return Err(changed(path)),
                    };
                    let found = in_text(cf, &map).map_err(io_err)?;
                    let (kept, d) = prune(&map, &found);
                    dropped = d;
                    kept
                }
                TrailerState::Broken { error, .. } => {
                    return Err(Error::invalid(
                        path,
                        format!(
                        "tool-id map trailer is broken ({error}); `kvc trailer strip` removes it"
                    ),
                    ))
                }
                // No active map: nothing to prune. Stray bytes are strip's business.
                TrailerState::None | TrailerState::Stray { .. } => {
                    return Ok(RewritePlan {
                        path: path.clone(),
                        after: ToolMap::default(),
                        changes: false,
                        section: Vec::new(),
                        current_len,
                        body_changes: false,
                        before,
                        dropped,
                        missing,
                        size: cf.size,
                        prefix,
                    })
                }
            }
        }
        Edit::Strip => ToolMap::default(),
    };
    let section = if after.entries.is_empty() {
        Vec::new()
    } else {
        after.encode()
    };
    let body_changes = !trailer_is(cf, &section).map_err(io_err)?;
    let changes = body_changes || flags.has_tool_map() == section.is_empty();
    Ok(RewritePlan {
        path: path.clone(),
        before,
        after,
        dropped,
        missing,
        changes,
        current_len,
        body_changes,
        section,
        size: cf.size,
        prefix,
    })
}

/// Are the bytes after the payload exactly `section`? Compared through a
/// small buffer, never read whole.
fn trailer_is(cf: &CheckpointFile, section: &[u8]) -> io::Result<bool> {
    if cf.trailer_len() != section.len() as u64 {
        return Ok(false);
    }
    let mut buf = vec![0u8; (64 << 10).min(section.len())];
    let at = cf.payload_end();
    for (i, want) in section.chunks(buf.len().max(1)).enumerate() {
        let got = &mut buf[..want.len()];
        cf.file().read_exact_at(got, at + (i * (64 << 10)) as u64)?;
        if got != want {
            return Ok(false);
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------
// Applying a plan
// ---------------------------------------------------------------------------

/// How to rewrite (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Clone where the filesystem can; else in place where that is strict
    /// (`RewritePlan::in_place_is_strict`), copy where it is not.
    Auto,
    /// In place, ordered writes and fsyncs.
    InPlace,
    /// Reflink clone and swap; fails where the filesystem cannot clone.
    Clone,
    /// Clone where the filesystem can, else a full copy; then swap.
    Copy,
}

/// The method a rewrite actually used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Used {
    InPlace,
    Clone,
    Copy,
}

impl Used {
    pub fn name(self) -> &'static str {
        match self {
            Used::InPlace => "in-place",
            Used::Clone => "clone",
            Used::Copy => "copy",
        }
    }
}

/// What applying a plan did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The file under the checkpoint name is the new one, durably.
    /// `linked`: the hard links the file had; more than 1, and it was
    /// written as a new file so that the others keep the old bytes.
    Rewritten { used: Used, size: u64, linked: u64 },
    /// The plan changed nothing; nothing was written.
    Unchanged,
    /// An engine deleted or replaced the file while kvc worked; the file now
    /// under that name (if any) was not touched.
    Vanished,
}

/// The points between the writes of a rewrite, in order, reported to the
/// caller's hook. Tests kill kvc at each of them; nothing else should need
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Checked, about to write; nothing changed yet.
    Begin,
    /// In place: bit 0 cleared and synced.
    FlagCleared,
    /// In place: truncated to the end of the payload.
    Truncated,
    /// In place: half of the new section written.
    SectionHalf,
    /// In place: the new section written and synced.
    SectionSynced,
    /// In place: bit 0 set and synced.
    FlagSet,
    /// Temp file created, empty.
    TempCreated,
    /// Copy: half of header, text and payload copied.
    TempHalf,
    /// Temp file holds header, text and payload (cloned or copied).
    TempFilled,
    /// Temp file's trailer replaced.
    TempTrailer,
    /// Temp file's header written, the file synced.
    TempSynced,
    /// Temp file swapped in under the checkpoint name.
    Swapped,
    /// The old file removed (after an exchange) and the directory synced.
    OldRemoved,
    /// Done; the result is durable.
    Done,
}

impl Method {
    /// Does this method (possibly) write the checkpoint file itself, so that
    /// it must be opened read-write?
    pub fn writes_in_place(self) -> bool {
        matches!(self, Method::Auto | Method::InPlace)
    }
}

/// Open a checkpoint to read or rewrite its trailer: no symlink followed,
/// a regular file, envelope checked. `write` opens it read-write (see
/// [`Method::writes_in_place`]). `Ok(None)` when the file is gone (an
/// engine removed it).
pub fn open_checkpoint(path: &Path, write: bool) -> Result<Option<CheckpointFile>> {
    let opened = if write {
        crate::sys::open_read_write(path)
    } else {
        crate::sys::open_read(path, false)
    };
    checkpoint_from(path, opened)
}

/// [`open_checkpoint`] of `path`'s file name in the open directory `dir`
/// (the write session's descriptor of the directory `path` is in): the
/// name is resolved relative to it, never through a link; `path` names it
/// in messages.
pub(crate) fn open_checkpoint_in(
    dir: &Dir,
    path: &Path,
    write: bool,
) -> Result<Option<CheckpointFile>> {
    let how = if write { Open::ReadWrite } else { Open::Read };
    checkpoint_from(path, dir.open_file(name_of(path)?, how))
}

fn checkpoint_from(path: &Path, opened: io::Result<File>) -> Result<Option<CheckpointFile>> {
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if crate::sys::is_symlink_error(&e) => {
            return Err(Error::invalid(
                path,
                "is a symbolic link; kvc rewrites only the file itself",
            ))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid(path, "is not a regular file"));
    }
    let cf = CheckpointFile::from_file(path, file).map_err(|e| match e {
        crate::format::checkpoint::OpenError::Io(e) => Error::io(path, e),
        crate::format::checkpoint::OpenError::Defect(d) => Error::invalid(path, d.to_string()),
    })?;
    // A fork's file is foreign, not broken: say so before its envelope
    // (another header version, say) is judged by ds4's rules.
    let key = path
        .file_name()
        .and_then(|n| Key::from_file_name(&n.to_string_lossy()));
    let detected = dialect::detect(&cf.header, cf.text_len, key.as_ref(), &cf);
    if dialect::is_foreign(&detected) {
        let what = dialect::describe_foreign(&detected, &cf.header, &cf, cf.payload_offset());
        return Err(Error::invalid(path, NotToolMap::Foreign(what).to_string()));
    }
    cf.check_envelope()
        .map_err(|d| Error::invalid(path, d.to_string()))?;
    Ok(Some(cf))
}

/// Apply `plan` to `cf` (the file it was made from, opened by
/// [`open_checkpoint`] with the same `method`). The caller holds the
/// directory lock. `hook` is called at every [`Step`].
pub fn apply(
    cf: &CheckpointFile,
    plan: &RewritePlan,
    method: Method,
    hook: &mut dyn FnMut(Step),
) -> Result<Applied> {
    let dir = crate::session::parent_dir(&cf.path);
    let dir = Dir::open(dir).map_err(|e| Error::io(dir, e))?;
    apply_in(&dir, cf, plan, method, hook, &mut |_| {})
}

/// [`apply`] with every name resolved relative to `dir`, the open
/// directory `cf` was found in (the write session's descriptor).
/// `copied` hears of every chunk a copy writes (progress).
pub(crate) fn apply_in(
    dir: &Dir,
    cf: &CheckpointFile,
    plan: &RewritePlan,
    method: Method,
    hook: &mut dyn FnMut(Step),
    copied: &mut dyn FnMut(u64),
) -> Result<Applied> {
    if !plan.changes {
        return Ok(Applied::Unchanged);
    }
    let path = &cf.path;
    let io_err = |e| Error::io(path, e);
    // The plan must still describe the file: same size, same layout, same
    // flags (another kvc is excluded by the lock, an engine is not).
    let meta = cf.file().metadata().map_err(io_err)?;
    let size = meta.len();
    let header = current_header(cf, plan)?;
    if size != plan.size
        || header[EXT_FLAGS_OFFSET as usize] != plan.prefix[EXT_FLAGS_OFFSET as usize]
    {
        return Err(changed(path));
    }
    // A file with other hard links (a `cp -al` backup, a snapshot made
    // with links) shares its inode with them: writing it in place would
    // rewrite every copy. Such a file is written as a new file under this
    // name (clone or copy, then swap), or not at all.
    let linked = meta.nlink();
    if linked > 1 && method == Method::InPlace {
        return Err(Error::invalid(
            path,
            format!(
                "has {linked} hard links (a `cp -al` backup?): rewriting it in place would change every copy; use --method copy (or auto, which copies such a file) to write a new file for this name only"
            ),
        ));
    }
    hook(Step::Begin);
    let applied = match method {
        Method::InPlace => in_place(dir, cf, plan, hook)?,
        Method::Auto if linked > 1 => via_temp(dir, cf, plan, TempKind::CloneOrCopy, hook, copied)?
            .expect("copying needs no filesystem support"),
        Method::Auto => {
            let kind = if plan.in_place_is_strict() {
                TempKind::CloneOnly
            } else {
                TempKind::CloneOrCopy
            };
            match via_temp(dir, cf, plan, kind, hook, copied)? {
                Some(a) => a,
                None => in_place(dir, cf, plan, hook)?,
            }
        }
        Method::Clone => via_temp(dir, cf, plan, TempKind::CloneOnly, hook, copied)?.ok_or_else(|| {
            Error::invalid(
                path,
                "this filesystem cannot clone files (reflink); use --method copy or --method in-place",
            )
        })?,
        Method::Copy => via_temp(dir, cf, plan, TempKind::CloneOrCopy, hook, copied)?
            .expect("copying needs no filesystem support"),
    };
    let applied = match applied {
        Applied::Rewritten { used, size, .. } => {
            hook(Step::Done);
            Applied::Rewritten { used, size, linked }
        }
        other => other,
    };
    Ok(applied)
}

fn changed(path: &Path) -> Error {
    Error::invalid(
        path,
        "changed while kvc was rewriting it (an engine wrote to it); stopped between two valid states, run the command again",
    )
}

/// Header bytes an engine rewrites in place on a hit (FORMAT.md §7): hits
/// (offset 12) and last_used (offset 32). Any other change means the file
/// is no longer the one planned for.
const HIT_FIELDS: [std::ops::Range<usize>; 2] = [12..16, 32..40];

/// Do two prefixes describe the same checkpoint layout? Equal except for
/// the fields a hit updates and ext bit 0 (which kvc itself flips).
fn same_layout(a: &[u8; PREFIX_LEN], b: &[u8; PREFIX_LEN]) -> bool {
    let flags = EXT_FLAGS_OFFSET as usize;
    (0..PREFIX_LEN).all(|i| {
        HIT_FIELDS.iter().any(|r| r.contains(&i))
            || if i == flags {
                (a[i] ^ b[i]) & !ExtFlags::TOOL_MAP == 0
            } else {
                a[i] == b[i]
            }
    })
}

/// The prefix `cf` was opened with.
fn cf_prefix(cf: &CheckpointFile) -> [u8; PREFIX_LEN] {
    let mut p = [0u8; PREFIX_LEN];
    p[..HEADER_LEN].copy_from_slice(&cf.header.encode());
    p[HEADER_LEN..].copy_from_slice(&cf.text_len.to_le_bytes());
    p
}

/// Re-read the prefix, check the layout is the one planned with, and return
/// the current 48 header bytes (with whatever hits or last-used an engine
/// wrote meanwhile: kvc keeps them).
fn current_header(cf: &CheckpointFile, plan: &RewritePlan) -> Result<[u8; HEADER_LEN]> {
    let p = read_prefix(cf.file()).map_err(|e| Error::io(&cf.path, e))?;
    if !same_layout(&p, &plan.prefix) {
        return Err(changed(&cf.path));
    }
    Ok(p[..HEADER_LEN].try_into().expect("48 bytes"))
}

fn with_bit0(flags: u8, set: bool) -> u8 {
    if set {
        flags | ExtFlags::TOOL_MAP
    } else {
        flags & !ExtFlags::TOOL_MAP
    }
}

/// Set or clear bit 0 of the file's current flag byte with a one-byte
/// write, then fsync.
fn write_bit0(cf: &CheckpointFile, plan: &RewritePlan, set: bool) -> Result<()> {
    let io_err = |e| Error::io(&cf.path, e);
    let header = current_header(cf, plan)?;
    let flags = with_bit0(header[EXT_FLAGS_OFFSET as usize], set);
    cf.file()
        .write_all_at(&[flags], EXT_FLAGS_OFFSET)
        .map_err(io_err)?;
    cf.file().sync_all().map_err(io_err)
}

/// The in-place order of the module documentation.
fn in_place(
    dir: &Dir,
    cf: &CheckpointFile,
    plan: &RewritePlan,
    hook: &mut dyn FnMut(Step),
) -> Result<Applied> {
    let io_err = |e| Error::io(&cf.path, e);
    let f = cf.file();
    let end = cf.payload_end();
    let want_bit = !plan.section.is_empty();
    // `apply` checked the flag byte on disk is the planned one.
    let bit_now = plan.prefix[EXT_FLAGS_OFFSET as usize] & ExtFlags::TOOL_MAP != 0;
    let body_changes = plan.body_changes;
    // 1. While bit 0 announces the bytes after the payload, they must not
    //    change: clear it first.
    if bit_now && (body_changes || !want_bit) {
        write_bit0(cf, plan, false)?;
        hook(Step::FlagCleared);
    }
    // 2. Replace the bytes after the payload; ds4 ignores them now.
    if body_changes {
        if plan.current_len > 0 {
            f.set_len(end).map_err(io_err)?;
            hook(Step::Truncated);
        }
        if want_bit {
            let (a, b) = plan.section.split_at(plan.section.len() / 2);
            f.write_all_at(a, end).map_err(io_err)?;
            hook(Step::SectionHalf);
            f.write_all_at(b, end + a.len() as u64).map_err(io_err)?;
        }
        f.sync_all().map_err(io_err)?;
        hook(Step::SectionSynced);
    }
    // 3. Announce the new section, now durable.
    if want_bit && (body_changes || !bit_now) {
        write_bit0(cf, plan, true)?;
        hook(Step::FlagSet);
    }
    if !same_file_at(dir, name_of(&cf.path)?, f).map_err(io_err)? {
        return Ok(Applied::Vanished);
    }
    Ok(Applied::Rewritten {
        used: Used::InPlace,
        size: plan.size_after(),
        linked: 1,
    })
}

/// Does `name` in `dir` (not followed) name the file open as `f`?
fn same_file_at(dir: &Dir, name: &OsStr, f: &File) -> io::Result<bool> {
    let ours = Meta::of_file(f)?;
    match dir.stat(name) {
        Ok(m) => Ok(m.same_file(&ours)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The file name of a checkpoint path.
fn name_of(path: &Path) -> Result<&OsStr> {
    path.file_name()
        .ok_or_else(|| Error::invalid(path, "has no file name"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TempKind {
    CloneOnly,
    CloneOrCopy,
}

/// Copy `src[from..to]` to the same offsets of `dst`, in the kernel where it
/// can (`copy_file_range`, which some filesystems turn into a reflink or a
/// server-side copy), else through a buffer.
fn copy_range(
    src: &File,
    dst: &File,
    from: u64,
    to: u64,
    copied: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let mut off = from;
    while off < to {
        let len = (to - off).min(COPY_CHUNK) as usize;
        match crate::sys::copy_range(src, dst, off, len)? {
            None => break,
            Some(0) => return Err(shrank()),
            Some(n) => {
                off += n as u64;
                copied(n as u64);
            }
        }
    }
    let mut buf = vec![0u8; COPY_BUFFER.min((to - off) as usize)];
    while off < to {
        let len = buf.len().min((to - off) as usize);
        let n = src.read_at(&mut buf[..len], off)?;
        if n == 0 {
            return Err(shrank());
        }
        dst.write_all_at(&buf[..n], off)?;
        off += n as u64;
        copied(n as u64);
    }
    Ok(())
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while it was being copied",
    )
}

/// Build the new file in `<name>.tmp.<pid>` and swap it in. `Ok(None)`
/// when `kind` is clone-only and the filesystem cannot clone (the temp file
/// is removed again).
fn via_temp(
    dir: &Dir,
    cf: &CheckpointFile,
    plan: &RewritePlan,
    kind: TempKind,
    hook: &mut dyn FnMut(Step),
    copied: &mut dyn FnMut(u64),
) -> Result<Option<Applied>> {
    let path = &cf.path;
    let io_err = |e| Error::io(path, e);
    let name = name_of(path)?;
    let dir_err = |e| Error::io(dir.path(), e);
    let mut tmp = AtomicFile::create_in(dir, &name.to_string_lossy()).map_err(dir_err)?;
    let tmp_path = tmp.temp_path();
    let tmp_name = tmp.temp_name().to_os_string();
    let tmp_err = |e| Error::io(&tmp_path, e);
    hook(Step::TempCreated);
    let end = cf.payload_end();
    let used = if reflink(tmp.file(), cf.file()).map_err(tmp_err)? {
        Used::Clone
    } else if kind == TempKind::CloneOrCopy {
        let half = end / 2;
        copy_range(cf.file(), tmp.file(), 0, half, copied).map_err(io_err)?;
        hook(Step::TempHalf);
        copy_range(cf.file(), tmp.file(), half, end, copied).map_err(io_err)?;
        Used::Copy
    } else {
        // Dropping `tmp` removes the temp file.
        return Ok(None);
    };
    hook(Step::TempFilled);
    let t = tmp.file();
    t.set_len(end).map_err(tmp_err)?;
    t.write_all_at(&plan.section, end).map_err(tmp_err)?;
    hook(Step::TempTrailer);
    let want_bit = !plan.section.is_empty();
    let mut header = current_header(cf, plan)?;
    header[EXT_FLAGS_OFFSET as usize] = with_bit0(header[EXT_FLAGS_OFFSET as usize], want_bit);
    t.write_all_at(&header, 0).map_err(tmp_err)?;
    // The rewritten checkpoint keeps the original's mode and, where kvc may
    // (as root), its owner: it is the same checkpoint.
    let meta = cf.file().metadata().map_err(io_err)?;
    t.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(tmp_err)?;
    let tmeta = t.metadata().map_err(tmp_err)?;
    if (tmeta.uid(), tmeta.gid()) != (meta.uid(), meta.gid()) {
        match std::os::unix::fs::fchown(&*t, Some(meta.uid()), Some(meta.gid())) {
            Err(e) if !crate::sys::is_not_permitted(&e) => return Err(tmp_err(e)),
            _ => {}
        }
    }
    t.sync_all().map_err(tmp_err)?;
    hook(Step::TempSynced);
    // An engine may have counted a hit while kvc copied: carry it over, so
    // the swap loses as little as possible.
    let mut again = current_header(cf, plan)?;
    again[EXT_FLAGS_OFFSET as usize] = with_bit0(again[EXT_FLAGS_OFFSET as usize], want_bit);
    if again != header {
        t.write_all_at(&again, 0).map_err(tmp_err)?;
        t.sync_all().map_err(tmp_err)?;
    }
    match dir.exchange(&tmp_name, name) {
        Ok(()) => {
            hook(Step::Swapped);
            // The temp name now holds what was under the checkpoint name.
            // If that is not the file kvc read, an engine replaced it
            // meanwhile: put the engine's file back, drop ours.
            let ours = same_file_at(dir, &tmp_name, cf.file()).map_err(tmp_err)?;
            if !ours {
                dir.exchange(&tmp_name, name).map_err(io_err)?;
                drop(tmp);
                dir.sync().map_err(dir_err)?;
                return Ok(Some(Applied::Vanished));
            }
            dir.unlink(&tmp_name).map_err(tmp_err)?;
            dir.sync().map_err(dir_err)?;
            // `tmp` would remove its (now absent) temp name on drop; the
            // name is this process's own, so nothing else can be there.
            drop(tmp);
            hook(Step::OldRemoved);
        }
        // The checkpoint is gone (evicted, consumed): do not resurrect it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(Applied::Vanished)),
        // No RENAME_EXCHANGE here (some network filesystems): check the name
        // still points at the file read, then rename over it. A file an
        // engine replaces in the instant between is overwritten.
        Err(e) if unsupported(&e) => {
            if !same_file_at(dir, name, cf.file()).map_err(io_err)? {
                return Ok(Some(Applied::Vanished));
            }
            tmp.commit().map_err(io_err)?;
            hook(Step::Swapped);
        }
        Err(e) => return Err(io_err(e)),
    }
    Ok(Some(Applied::Rewritten {
        used,
        size: plan.size_after(),
        linked: 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn entry(id: &[u8], dsml: &[u8]) -> ToolMapEntry {
        ToolMapEntry {
            id: id.to_vec(),
            dsml: dsml.to_vec(),
        }
    }

    #[test]
    fn prune_keeps_the_entry_ds4_uses_and_never_promotes_a_shadowed_one() {
        let map = ToolMap {
            entries: vec![
                entry(b"a", b"<gone>"),
                entry(b"a", b"<here>"),
                entry(b"b", b"<here>"),
                entry(b"b", b"<also>"),
                // The last `c` is stale: `c` ends unmapped, the earlier
                // (never used) entry is not promoted.
                entry(b"c", b"<here>"),
                entry(b"c", b"<gone>"),
                // ds4 drops an entry whose id starts with NUL; it shadows
                // nothing.
                entry(b"\0d", b"<here>"),
                // A NUL cuts the id: `e\0x` and `e\0y` are one id to ds4.
                entry(b"e\0x", b"<here>"),
                entry(b"e\0y", b"<also>"),
            ],
        };
        let text: &[u8] = b"xx<here>yy<also>";
        let found: Vec<bool> = map
            .entries
            .iter()
            .map(|e| text.windows(e.dsml.len()).any(|w| w == e.dsml))
            .collect();
        let (kept, dropped) = prune(&map, &found);
        assert_eq!(
            kept.entries,
            vec![
                entry(b"a", b"<here>"),
                entry(b"b", b"<also>"),
                entry(b"e\0y", b"<also>")
            ]
        );
        let why: Vec<_> = dropped.iter().map(|d| (d.index, d.reason)).collect();
        assert_eq!(
            why,
            [
                (0, DropReason::DuplicateId),
                (2, DropReason::DuplicateId),
                (4, DropReason::DuplicateId),
                (5, DropReason::NotInText),
                (6, DropReason::NulStart),
                (7, DropReason::DuplicateId),
            ]
        );
    }

    #[test]
    fn set_refuses_nul_bytes_in_ids_and_dsml() {
        let map = ToolMap {
            entries: vec![entry(b"a\0", b"x"), entry(b"b", b"\0x")],
        };
        let p = check_limits(&map);
        assert!(matches!(
            p[0],
            EntryProblem::Nul {
                index: 0,
                field: "id",
                at: 1,
                ..
            }
        ));
        assert!(matches!(
            p[1],
            EntryProblem::Nul {
                index: 1,
                field: "DSML",
                at: 0,
                ..
            }
        ));
        assert!(p[0].to_string().contains("C strings"), "{}", p[0]);
    }

    #[test]
    fn limits_are_ds4_loader_limits() {
        let map = ToolMap {
            entries: vec![
                entry(b"", b"x"),
                entry(&[b'i'; MAX_ID_LEN + 1], b"x"),
                entry(&[b'i'; MAX_ID_LEN], b""),
                entry(b"ok", b"x"),
                entry(b"ok", b"y"),
            ],
        };
        let p = check_limits(&map);
        assert!(matches!(
            p[0],
            EntryProblem::IdLen {
                index: 0,
                len: 0,
                ..
            }
        ));
        assert!(matches!(
            p[1],
            EntryProblem::IdLen {
                index: 1,
                len: 257,
                ..
            }
        ));
        assert!(matches!(
            p[2],
            EntryProblem::DsmlLen {
                index: 2,
                len: 0,
                ..
            }
        ));
        assert!(matches!(
            p[3],
            EntryProblem::DuplicateId {
                index: 4,
                first: 3,
                ..
            }
        ));
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[3].to_string(),
            "entry 5 (id \"ok\"): the id repeats entry 4 (ds4 would use only the last of them)"
        );
    }

    #[test]
    fn a_hit_or_a_flipped_bit0_keeps_the_layout_nothing_else_does() {
        let a = [7u8; PREFIX_LEN];
        let mut hit = a;
        hit[12] = 0;
        hit[39] = 0;
        hit[6] ^= ExtFlags::TOOL_MAP;
        assert!(same_layout(&a, &hit));
        for i in [0, 6, 8, 40, 47, 48, 51] {
            let mut other = a;
            other[i] ^= if i == 6 { 2 } else { 1 };
            assert!(!same_layout(&a, &other), "byte {i}");
        }
    }

    /// A checkpoint built byte by byte (FORMAT.md §3): text `abc`, a 4-byte
    /// opaque payload, bit 0 set over a one-entry map `a` -> `b`.
    fn flagged_file() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let mut b = Vec::new();
        b.extend_from_slice(b"KVC\x01\x02\x01\x01\x00"); // magic, version, quant, cold, ext, model
        b.extend_from_slice(&1u32.to_le_bytes()); // tokens
        b.extend_from_slice(&0u32.to_le_bytes()); // hits
        b.extend_from_slice(&4096u32.to_le_bytes()); // ctx_size
        b.extend_from_slice(&[0; 4]); // payload_abi, reserved
        b.extend_from_slice(&100u64.to_le_bytes()); // created
        b.extend_from_slice(&100u64.to_le_bytes()); // last_used
        b.extend_from_slice(&4u64.to_le_bytes()); // payload_bytes
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"abc");
        b.extend_from_slice(&[9; 4]);
        let section: &[u8] = b"KTM\x01\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00ab";
        b.extend_from_slice(section);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.kv");
        fs::write(&path, &b).unwrap();
        (dir, path, section.to_vec())
    }

    #[test]
    fn regression_plan_goes_by_the_flag_on_disk_not_the_one_opened_with() {
        // Bit 0 cleared on disk after the file was opened (an interrupted
        // rewrite by another writer): the section is stray, and setting the
        // same map must set the flag again, not report "unchanged".
        let (_dir, path, section) = flagged_file();
        let cf = open_checkpoint(&path, true).unwrap().unwrap();
        assert!(cf.header.ext_flags.has_tool_map());
        cf.file().write_all_at(&[0], EXT_FLAGS_OFFSET).unwrap();
        let map = ToolMap::decode(&section).unwrap();
        let edit = Edit::Set {
            map: &map,
            allow_missing: false,
        };
        let p = plan(&cf, edit, Engine::Ds4).unwrap();
        assert!(matches!(p.before, TrailerState::Stray { .. }));
        assert!(p.changes);
        let applied = apply(&cf, &p, Method::InPlace, &mut |_| {}).unwrap();
        assert!(matches!(applied, Applied::Rewritten { .. }));
        assert_eq!(fs::read(&path).unwrap()[EXT_FLAGS_OFFSET as usize], 1);
    }

    /// The state of a file whose payload is followed by `after`, with
    /// `flags` as its flag byte.
    fn state(flags: ExtFlags, after: &[u8]) -> TrailerState {
        let (_dir, path, _) = flagged_file();
        let mut b = fs::read(&path).unwrap();
        let end = b.len() - 18;
        b.truncate(end);
        b.extend_from_slice(after);
        fs::write(&path, &b).unwrap();
        let cf = CheckpointFile::open_unchecked(&path).unwrap();
        TrailerState::read_with(&cf, flags).unwrap()
    }

    #[test]
    fn states_follow_the_flag_and_the_bytes() {
        let sec = ToolMap {
            entries: vec![entry(b"a", b"b")],
        }
        .encode();
        let on = ExtFlags(1);
        let off = ExtFlags(0);
        assert_eq!(state(off, b""), TrailerState::None);
        assert_eq!(
            state(on, &sec),
            TrailerState::Map(MapSummary {
                entries: 1,
                bytes: 18
            })
        );
        assert_eq!(
            state(off, &sec),
            TrailerState::Stray {
                bytes: 18,
                entries: Some(1)
            }
        );
        assert!(matches!(
            state(on, b""),
            TrailerState::Broken { bytes: 0, .. }
        ));
        assert!(matches!(
            state(on, &sec[..10]),
            TrailerState::Broken { bytes: 10, .. }
        ));
    }
}
