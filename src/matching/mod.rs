//! `kvc match`: which checkpoint ds4 mainline loads for a prompt, and why
//! every other checkpoint of the directory loses.
//!
//! kvc reproduces the engine's code, not a paraphrase of it (FORMAT.md §7
//! "Lookup" and "Lookup details", §10). The code is ds4 mainline at
//! **b030961** (2026-08-05), `ds4_kvstore.c`:
//!
//! - `kv_cache_refresh` (468-483), run by every lookup: the population is
//!   the `<40 hex>.kv` names (`ds4_kvstore_sha_hex_name`, 330-338; upper-case
//!   hex is lower-cased) whose header `ds4_kvstore_read_entry_file` accepts:
//!   version 1, payload ABI 2, quant 2 or 4, tokens ≠ 0, file long enough.
//!   Anything else is skipped silently; `sysprompt.kv` never passes the name
//!   filter. kvc takes that verdict from [`Engine::Ds4`]'s reader whatever
//!   engine the directory's files point to.
//! - `ds4_kvstore_find_text_prefix` (1190-1213): `prompt_bytes =
//!   strlen(prompt_text)` (a C string), then for each entry in directory
//!   order, skip it when, in this order: its text is longer than the
//!   prompt; `(int)e->tokens < min_tokens`; `e->model_id != model_id`;
//!   `(uint32_t)ctx_size < e->ctx_size`; with `--kv-cache-reject-different-quant`,
//!   other quant bits. Then a cheap pre-filter against the best so far
//!   (shorter text, or the same length and no more tokens: skipped before
//!   hashing), then `SHA-1(prompt[0..text_bytes])` against the lower-cased
//!   **file name**: equal makes it the best. So the longest text wins, ties
//!   go to more tokens, then to the first in directory order.
//! - `ds4_kvstore_try_load_text` (1215-1340), on the one chosen entry: the
//!   header again, the model id, the length, then the stored text: its
//!   SHA-1 must be the name ("cached text hash mismatch") and it must be
//!   the prompt's prefix ("cached text prefix mismatch"). Any failure is
//!   logged and the lookup returns 0: **a miss, with no fallback** to a
//!   shorter candidate, and nothing is deleted.
//!
//! What kvc adds, for the explanation, is labelled as its own: whether a
//! file the filters removed would have been a prefix (its name compared
//! with the same prompt hashes), how many bytes each stored text shares
//! with the prompt and where it diverges, and which checkpoint the engine
//! would have loaded had its pick not failed the text check.
//!
//! Cost: the prompt is hashed once, front to back, with the SHA-1 state
//! cloned and finalized at each distinct text length ([`PrefixHashes`]),
//! never re-hashed per candidate. A stored text is read only as far as its
//! explanation needs (to its first byte that differs from the prompt,
//! through a bounded buffer); a file whose name already says it is a
//! prefix is not read at all, except the engine's pick, whose text the
//! engine checks too. Whether the pick's payload then loads (layout, DSV4
//! version, trailing bytes) is beyond the lookup: `kvc verify` judges
//! payloads.

mod diagnosis;
mod read;
mod verdict;

pub use diagnosis::{thousands, Diagnosis, Skipped};
pub use read::{Divergence, Location};
pub use verdict::{Difference, KeyKind, NotLoadable, Tie, Verdict};

use crate::error::{Error, Result};
use crate::format::checkpoint::{hex, Key};
use crate::format::dialect::{DialectId, Engine, EngineChoice};
use crate::format::Header;
use crate::scan::{self, Scan, ScanOptions};
use diagnosis::diagnose;
use rayon::prelude::*;
use read::{compare, cut, foreign_text_len, Compared, Markers, EXCERPT_BYTES};
use serde::Serialize;
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Whose lookup this is, for output, `--help` and docs.
pub const PROVENANCE: &str = "ds4 mainline b030961 (2026-08-05), ds4_kvstore.c: \
ds4_kvstore_find_text_prefix, then ds4_kvstore_try_load_text";

/// `KV_CACHE_DEFAULT_MIN_TOKENS` (ds4_kvstore.c:33), ds4-server's
/// `--kv-cache-min-tokens`.
pub const DEFAULT_MIN_TOKENS: i32 = 512;
/// ds4-server's `--ctx` default (`.ctx_size = 32768`, ds4_server.c:12805).
pub const DEFAULT_CTX: u32 = 32768;
/// DeepSeek V4 Flash, the model id of every file written before 04f151d.
pub const DEFAULT_MODEL_ID: u8 = 0;
/// The prompt is read whole, as the engine holds it; a rendered prompt of
/// ds4's largest context is a few MiB, so more than this is not a prompt.
pub const MAX_PROMPT_BYTES: u64 = 1 << 30;

/// The live settings of the engine the prompt is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Live {
    /// `ds4_engine_model_id`: 0 V4 Flash, 1 V4 PRO, 2 GLM-5.2.
    pub model_id: u8,
    /// The live session context (`--ctx`).
    pub ctx: u32,
    /// `--kv-cache-min-tokens`, an `int` in ds4.
    pub min_tokens: i32,
    /// The live routed-expert quant bits (2 or 4); only compared with
    /// `reject_different_quant`.
    pub quant_bits: Option<u8>,
    /// `--kv-cache-reject-different-quant`: the quant filter applies (with
    /// `quant_bits` known; without it there is nothing to compare).
    pub reject_different_quant: bool,
}

impl Default for Live {
    /// ds4-server's defaults: model 0, ctx 32768, min tokens 512, quant 2
    /// and 4 both accepted.
    fn default() -> Live {
        Live {
            model_id: DEFAULT_MODEL_ID,
            ctx: DEFAULT_CTX,
            min_tokens: DEFAULT_MIN_TOKENS,
            quant_bits: None,
            reject_different_quant: false,
        }
    }
}

/// The rendered prompt, as ds4 reads it: a C string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    bytes: Vec<u8>,
    read_bytes: u64,
    nul_at: Option<u64>,
}

impl Prompt {
    /// The prompt from the bytes read; everything from the first NUL on is
    /// dropped (`strlen`, ds4_kvstore.c:1193).
    pub fn new(mut raw: Vec<u8>) -> Prompt {
        let read_bytes = raw.len() as u64;
        let nul_at = memchr::memchr(0, &raw);
        if let Some(n) = nul_at {
            raw.truncate(n);
        }
        Prompt {
            bytes: raw,
            read_bytes,
            nul_at: nul_at.map(|n| n as u64),
        }
    }

    /// Read a whole prompt (at most [`MAX_PROMPT_BYTES`]); `name` names the
    /// source in errors.
    pub fn read(r: &mut dyn Read, name: &Path) -> Result<Prompt> {
        Prompt::read_capped(r, name, MAX_PROMPT_BYTES)
    }

    fn read_capped(r: &mut dyn Read, name: &Path, cap: u64) -> Result<Prompt> {
        let mut raw = Vec::new();
        r.take(cap + 1)
            .read_to_end(&mut raw)
            .map_err(|e| Error::io(name, e))?;
        if raw.len() as u64 > cap {
            return Err(Error::invalid(
                name,
                format!("more than {cap} bytes: not a rendered prompt (kvc match reads it whole)"),
            ));
        }
        Ok(Prompt::new(raw))
    }

    /// Read a prompt file.
    pub fn from_file(path: &Path) -> Result<Prompt> {
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        Prompt::read(&mut f, path)
    }

    /// The bytes the engine looks up: up to the first NUL.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `strlen` of the prompt.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes read, NUL and what follows it included.
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes
    }

    /// Offset of the first NUL byte, where ds4 stops reading.
    pub fn nul_at(&self) -> Option<u64> {
        self.nul_at
    }
}

/// SHA-1 of the prompt's first `n` bytes, for every `n` asked, from one
/// pass over the prompt: the lengths are sorted, the prompt is fed to one
/// hasher up to each in turn, and the state is cloned and finalized there.
#[derive(Clone, Debug)]
pub struct PrefixHashes {
    lens: Vec<u64>,
    /// Lower-case hex, as a key is written.
    hex: Vec<String>,
    hashed: u64,
}

impl PrefixHashes {
    /// Lengths beyond the prompt are ignored.
    pub fn compute(prompt: &[u8], lens: impl IntoIterator<Item = u64>) -> PrefixHashes {
        let mut lens: Vec<u64> = lens
            .into_iter()
            .filter(|&n| n <= prompt.len() as u64)
            .collect();
        lens.sort_unstable();
        lens.dedup();
        let mut h = Sha1::new();
        let mut pos = 0usize;
        let mut out = Vec::with_capacity(lens.len());
        for &n in &lens {
            let n = n as usize;
            h.update(&prompt[pos..n]);
            pos = n;
            let d: [u8; 20] = h.clone().finalize().into();
            out.push(hex(&d));
        }
        PrefixHashes {
            lens,
            hex: out,
            hashed: pos as u64,
        }
    }

    /// The key (hex SHA-1) of the prompt's first `len` bytes, if computed.
    pub fn key(&self, len: u64) -> Option<&str> {
        let i = self.lens.binary_search(&len).ok()?;
        Some(&self.hex[i])
    }

    /// Prompt bytes fed to the hasher: the longest length asked, never
    /// more (one pass).
    pub fn hashed_bytes(&self) -> u64 {
        self.hashed
    }
}

/// One file with a checkpoint name, and what the lookup makes of it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name on disk (may be upper-case hex).
    pub file: String,
    pub path: PathBuf,
    /// `None` for an invalid file whose name is not a checkpoint key.
    pub key: Option<Key>,
    /// Position in the directory listing: the lookup's order.
    pub order: u32,
    pub size: u64,
    pub dialect: Option<DialectId>,
    /// `None` for an invalid file.
    pub header: Option<Header>,
    pub text_len: Option<u32>,
    pub key_kind: Option<KeyKind>,
    pub verdict: Verdict,
    /// Whether the name is the SHA-1 of the prompt's first `text_len`
    /// bytes: the lookup's prefix test, applied by kvc to every file whose
    /// text is no longer than the prompt (for the explanation: the engine
    /// hashes only the ones past its filters). `None` otherwise.
    pub full_prefix: Option<bool>,
    /// Bytes from the start that the stored text shares with the prompt;
    /// for a file whose name says it is a prefix and whose text was not
    /// read, its text length. `None` when unknown (no text).
    pub shared_prefix: Option<u64>,
    /// Where the stored text first differs from the prompt, when it was
    /// read and does.
    pub divergence: Option<Divergence>,
}

impl Entry {
    /// The short key for sentences: 12 hex digits, `sysprompt`, or the name.
    pub fn short(&self) -> &str {
        match &self.key {
            Some(k) => k.short(),
            None => &self.file,
        }
    }

    fn text_bytes(&self) -> u64 {
        self.text_len.unwrap_or(0) as u64
    }
}

/// The engine's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The engine loads `entries[chosen]` and prefills the rest of the
    /// prompt, which starts with `prefill_head`.
    Hit {
        chosen: usize,
        prefill_head: Vec<u8>,
    },
    /// A full prefill. `pick` is the file the lookup chose whose load then
    /// failed (its verdict says why); `fallback` is what the engine would
    /// have loaded without it (kvc's extra information: ds4 does not fall
    /// back).
    Miss {
        pick: Option<usize>,
        fallback: Option<usize>,
    },
}

/// The whole answer for one directory and prompt.
#[derive(Clone, Debug)]
pub struct MatchResult {
    pub dir: PathBuf,
    /// The engine the directory's files point to. The lookup is mainline's
    /// whatever this says; see [`MatchResult::engine_note`].
    pub engine: EngineChoice,
    pub live: Live,
    pub prompt_bytes: u64,
    pub prompt_read_bytes: u64,
    pub nul_at: Option<u64>,
    /// Every file with a checkpoint name (`.kv`), in name order.
    pub entries: Vec<Entry>,
    pub outcome: Outcome,
    pub diagnosis: Diagnosis,
    /// Prompt bytes hashed (one pass: at most the prompt).
    pub hashed_bytes: u64,
}

impl MatchResult {
    pub fn is_hit(&self) -> bool {
        matches!(self.outcome, Outcome::Hit { .. })
    }

    /// The chosen entry, on a hit.
    pub fn chosen(&self) -> Option<&Entry> {
        match self.outcome {
            Outcome::Hit { chosen, .. } => Some(&self.entries[chosen]),
            Outcome::Miss { .. } => None,
        }
    }

    /// What to say when the directory is not mainline ds4's.
    pub fn engine_note(&self) -> Option<&'static str> {
        match self.engine.engine {
            Engine::Ds4 if self.engine.mixed => Some(
                "the directory also holds hanzo-engine files; kvc match applies ds4 mainline's lookup to every file",
            ),
            Engine::Ds4 => None,
            Engine::Ds4Classic => Some(
                "the directory's files are ds4's from before 2026-05-26 (payload ABI 0); kvc match applies today's mainline lookup, whose reader skips them",
            ),
            Engine::Hanzo => Some(
                "the directory looks like hanzo-engine's; kvc match reproduces ds4 mainline's lookup only (hanzo-engine's prefix cache restores spills keyed by token ids at startup and looks nothing up by prompt text), applied here as ds4 would",
            ),
        }
    }
}

/// Scan `dir` (52 bytes a file; texts only as the explanation needs) and
/// answer for `prompt` under `live`. Fails only when the directory cannot
/// be read.
pub fn match_dir(dir: &Path, prompt: &Prompt, live: &Live) -> Result<MatchResult> {
    let scan = scan::scan_dir(dir, ScanOptions::headers(None))?;
    Ok(lookup(&scan, prompt, live))
}

/// A file in the making: its verdict is decided in steps.
struct Work {
    entry: Entry,
    /// Decided before the prefix test (reader, filters), or by it.
    verdict: Option<Verdict>,
    /// In mainline's population and past every filter.
    eligible: bool,
    /// A foreign dialect in the population (its payload is not mainline's).
    foreign: bool,
}

impl Work {
    fn new(entry: Entry, verdict: Option<Verdict>, foreign: bool) -> Work {
        Work {
            eligible: verdict.is_none(),
            verdict,
            entry,
            foreign,
        }
    }
}

/// The filters of `ds4_kvstore_find_text_prefix`, in its order: the first
/// that removes the file.
fn filter(h: &Header, text_len: u32, prompt_bytes: u64, live: &Live) -> Option<Verdict> {
    if text_len as u64 > prompt_bytes {
        return Some(Verdict::TextLongerThanPrompt {
            text_bytes: text_len,
            prompt_bytes,
        });
    }
    // `(int)e->tokens < kc->opt.min_tokens`
    if (h.tokens as i32) < live.min_tokens {
        return Some(Verdict::TokensBelowMin {
            tokens: h.tokens,
            min_tokens: live.min_tokens,
        });
    }
    if h.model_id != live.model_id {
        return Some(Verdict::OtherModel {
            model_id: h.model_id,
            live: live.model_id,
        });
    }
    if live.ctx < h.ctx_size {
        return Some(Verdict::CtxLargerThanLive {
            ctx: h.ctx_size,
            live: live.ctx,
        });
    }
    if let (true, Some(q)) = (live.reject_different_quant, live.quant_bits) {
        if h.quant_bits != q {
            return Some(Verdict::OtherQuant {
                quant_bits: h.quant_bits,
                live: q,
            });
        }
    }
    None
}

/// One candidate of the lookup's loop: directory order, text length,
/// tokens, and whether its name is the prompt prefix's hash.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    order: u32,
    text_len: u32,
    tokens: u32,
    matches: bool,
}

/// The order of preference `pick` amounts to among matching candidates:
/// the longest text, then the most tokens, then the first listed.
fn fallback_rank(c: &Candidate) -> (std::cmp::Reverse<u32>, std::cmp::Reverse<u32>, u32) {
    (
        std::cmp::Reverse(c.text_len),
        std::cmp::Reverse(c.tokens),
        c.order,
    )
}

/// The loop of `ds4_kvstore_find_text_prefix` over candidates past the
/// filters: in directory order, the pre-filter against the best so far,
/// then the name test. Returns the index of the best.
fn pick(cands: &[Candidate]) -> Option<usize> {
    let mut idx: Vec<usize> = (0..cands.len()).collect();
    idx.sort_by_key(|&i| cands[i].order);
    let mut best: Option<usize> = None;
    for i in idx {
        let e = &cands[i];
        if let Some(b) = best {
            let b = &cands[b];
            if e.text_len < b.text_len {
                continue;
            }
            if e.text_len == b.text_len && e.tokens <= b.tokens {
                continue;
            }
        }
        if e.matches {
            best = Some(i);
        }
    }
    best
}

/// The lookup over a scanned directory: every file's verdict, the
/// engine's answer and the diagnosis. Reads texts as described in the
/// module documentation; never writes.
pub fn lookup(scan: &Scan, prompt: &Prompt, live: &Live) -> MatchResult {
    let p = prompt.bytes();
    let markers = Markers::of(p);
    let mut work = population(scan, prompt.len(), live);
    let hashed_bytes = mark_full_prefixes(&mut work, p);
    let outcome = select(&mut work, p, &markers);
    read_shared(&mut work, p, &markers);
    let entries: Vec<Entry> = work
        .into_iter()
        .map(|w| Entry {
            verdict: w.verdict.expect("every file has a verdict"),
            ..w.entry
        })
        .collect();
    let diagnosis = diagnose(&entries, &outcome, prompt, &markers);
    MatchResult {
        dir: scan.dir.clone(),
        engine: scan.engine.clone(),
        live: *live,
        prompt_bytes: prompt.len(),
        prompt_read_bytes: prompt.read_bytes(),
        nul_at: prompt.nul_at(),
        entries,
        outcome,
        diagnosis,
        hashed_bytes,
    }
}

/// The lookup's pick among checkpoints known by their headers and names
/// alone (`kvc pull --match`: a remote's, whose texts are not on this
/// machine): mainline's population, its filters, then its loop by name,
/// exactly as [`lookup`] runs them. The text check `try_load_text` makes
/// on the pick is left to whoever fetches it (a pull verifies that the
/// text gives the name). Returns the [`Checkpoint::order`](crate::Checkpoint)
/// of the pick.
pub fn pick_by_name(scan: &Scan, prompt: &Prompt, live: &Live) -> Option<u32> {
    let mut work = population(scan, prompt.len(), live);
    mark_full_prefixes(&mut work, prompt.bytes());
    let cands: Vec<(usize, Candidate)> = work
        .iter()
        .enumerate()
        .filter(|(_, w)| w.eligible)
        .filter_map(|(i, w)| {
            Some((
                i,
                Candidate {
                    order: w.entry.order,
                    text_len: w.entry.text_len?,
                    tokens: w.entry.header.as_ref()?.tokens,
                    matches: w.entry.full_prefix == Some(true),
                },
            ))
        })
        .collect();
    let only: Vec<Candidate> = cands.iter().map(|c| c.1).collect();
    pick(&only).map(|j| work[cands[j].0].entry.order)
}

fn blank_entry(file: &str, path: &Path, key: Option<Key>, order: u32, size: u64) -> Entry {
    Entry {
        file: file.to_string(),
        path: path.to_path_buf(),
        key,
        order,
        size,
        dialect: None,
        header: None,
        text_len: None,
        key_kind: None,
        verdict: Verdict::Chosen,
        full_prefix: None,
        shared_prefix: None,
        divergence: None,
    }
}

/// Every file with a checkpoint name, in name order, with the verdicts
/// decided before the prefix test: `kv_cache_refresh`'s name filter and
/// reader (mainline's, whatever the directory's engine), then the lookup's
/// filters in their order.
fn population(scan: &Scan, prompt_bytes: u64, live: &Live) -> Vec<Work> {
    let reader = Engine::Ds4.reader();
    let mut work: Vec<Work> = Vec::new();
    for c in &scan.checkpoints {
        let mut e = blank_entry(&c.file(), &c.path(), Some(c.key.clone()), c.order, c.size);
        e.dialect = Some(c.dialect);
        e.header = Some(c.header.clone());
        e.text_len = Some(c.text_len);
        e.key_kind = Some(KeyKind::of(&c.key, &c.header, Some(c.dialect)));
        let verdict = match (&c.key, reader.accepts(&c.header)) {
            (Key::Sysprompt, _) => Some(Verdict::NotLoadable(NotLoadable::FixedName)),
            (_, Err(n)) => Some(Verdict::NotLoadable(NotLoadable::Reader(n))),
            _ => filter(&c.header, c.text_len, prompt_bytes, live),
        };
        work.push(Work::new(e, verdict, false));
    }
    // A foreign file is in the population when its header passes the
    // reader all the same (a version-1, ABI-2 D8 file does): the lookup
    // reads only the header and the text at 52.
    for f in &scan.foreign {
        let mut e = blank_entry(&f.file, &f.path, Some(f.key.clone()), f.order, f.size);
        e.dialect = f.dialect;
        e.header = Some(f.header.clone());
        e.key_kind = Some(KeyKind::of(&f.key, &f.header, f.dialect));
        let foreign = |why: String| {
            Some(Verdict::NotLoadable(NotLoadable::Foreign {
                what: f.what.clone(),
                why,
            }))
        };
        let verdict = match (&f.key, reader.accepts(&f.header)) {
            (Key::Sysprompt, _) => Some(Verdict::NotLoadable(NotLoadable::FixedName)),
            (_, Err(n)) => foreign(format!("mainline's reader skips it: {n}")),
            (Key::Hash(_), Ok(())) => match foreign_text_len(&f.path, &f.header, f.size) {
                Some(tl) => {
                    e.text_len = Some(tl);
                    filter(&f.header, tl, prompt_bytes, live)
                }
                None => foreign(
                    "its header passes mainline's reader, but the file is shorter than header, text and payload"
                        .into(),
                ),
            },
        };
        work.push(Work::new(e, verdict, true));
    }
    for i in &scan.invalid {
        let e = blank_entry(
            &i.file,
            &i.path,
            Key::from_file_name(&i.file),
            i.order,
            i.size,
        );
        let verdict = Verdict::NotLoadable(NotLoadable::Invalid {
            code: i.code.name(),
            error: i.error.clone(),
        });
        work.push(Work::new(e, Some(verdict), false));
    }
    work.sort_by(|a, b| a.entry.file.cmp(&b.entry.file));
    work
}

/// The lookup's prefix test, by name, applied to every file whose text is
/// no longer than the prompt (the engine applies it only past its filters;
/// the rest is for the explanation): one pass over the prompt. Returns the
/// prompt bytes hashed.
fn mark_full_prefixes(work: &mut [Work], prompt: &[u8]) -> u64 {
    let hashes = PrefixHashes::compute(
        prompt,
        work.iter()
            .filter(|w| matches!(w.entry.key, Some(Key::Hash(_))))
            .filter_map(|w| w.entry.text_len.map(u64::from)),
    );
    for w in work.iter_mut() {
        let (Some(Key::Hash(k)), Some(tl)) = (&w.entry.key, w.entry.text_len) else {
            continue;
        };
        if tl as u64 <= prompt.len() as u64 {
            w.entry.full_prefix = Some(hashes.key(tl as u64) == Some(k.as_str()));
        }
    }
    hashes.hashed_bytes()
}

/// `try_load_text` on the pick: its stored text must be the prompt's
/// prefix. ds4 checks that the text's SHA-1 is the name, then that the
/// bytes match; the name is the SHA-1 of the prompt's prefix (that is
/// why it was picked), so comparing the bytes decides both. `None` when
/// it loads.
fn load_check(w: &mut Work, prompt: &[u8], markers: &Markers) -> Option<Verdict> {
    let tl = w.entry.text_len.expect("candidates have a text");
    match compare(&w.entry.path, tl, prompt, tl as u64, markers) {
        Ok((shared, None)) => {
            w.entry.shared_prefix = Some(shared);
            // A foreign pick's text matches, but mainline's payload loader
            // refuses what follows it.
            w.foreign.then(|| {
                Verdict::NotLoadable(NotLoadable::ForeignPayload {
                    dialect: w.entry.dialect.unwrap_or(DialectId::D8),
                })
            })
        }
        Ok((shared, Some(d))) => {
            w.entry.shared_prefix = Some(shared);
            let v = Verdict::TextMismatch { diverges_at: d.at };
            w.entry.divergence = Some(d);
            Some(v)
        }
        Err(e) => Some(Verdict::NotLoadable(NotLoadable::Unreadable {
            error: e.to_string(),
        })),
    }
}

/// The engine's pick and whether it loads; on a failure, what it would
/// have fallen back to (kvc's extra: the same rule without the files that
/// failed). Gives every file past the filters its verdict.
fn select(work: &mut [Work], prompt: &[u8], markers: &Markers) -> Outcome {
    let cands: Vec<(usize, Candidate)> = work
        .iter()
        .enumerate()
        .filter(|(_, w)| w.eligible)
        .map(|(i, w)| {
            let h = w
                .entry
                .header
                .as_ref()
                .expect("eligible files have a header");
            let c = Candidate {
                order: w.entry.order,
                text_len: w.entry.text_len.expect("eligible files have a text"),
                tokens: h.tokens,
                matches: w.entry.full_prefix == Some(true),
            };
            (i, c)
        })
        .collect();
    let only: Vec<Candidate> = cands.iter().map(|c| c.1).collect();
    let engine_pick = pick(&only).map(|j| cands[j].0);
    let mut loaded: Option<usize> = None;
    if let Some(b) = engine_pick {
        // Then, if the pick fails to load, kvc's extra: the same rule
        // without it, and so on. `pick`'s result is the first of this
        // order (longest, most tokens, first listed), so the chain walks
        // it once instead of repeating the engine's loop per failure.
        let mut chain: Vec<(usize, Candidate)> = cands
            .iter()
            .filter(|(i, c)| c.matches && *i != b)
            .copied()
            .collect();
        chain.sort_by_key(|(_, c)| fallback_rank(c));
        for i in std::iter::once(b).chain(chain.into_iter().map(|(i, _)| i)) {
            match load_check(&mut work[i], prompt, markers) {
                None => {
                    loaded = Some(i);
                    break;
                }
                Some(v) => work[i].verdict = Some(v),
            }
        }
    }
    let outcome = match (engine_pick, loaded) {
        (Some(p0), Some(l)) if p0 == l => {
            work[l].verdict = Some(Verdict::Chosen);
            let covered = work[l].entry.text_bytes() as usize;
            Outcome::Hit {
                chosen: l,
                prefill_head: cut(&prompt[covered..], EXCERPT_BYTES).to_vec(),
            }
        }
        (pick, fallback) => Outcome::Miss { pick, fallback },
    };
    let winner = engine_pick.map(|i| {
        let h = work[i]
            .entry
            .header
            .as_ref()
            .expect("candidates have a header");
        (work[i].entry.text_len.unwrap_or(0), h.tokens)
    });
    for &(i, c) in &cands {
        if work[i].verdict.is_some() {
            continue;
        }
        let v = match winner {
            Some((pick_bytes, pick_tokens)) if c.matches => {
                let tie = (c.text_len == pick_bytes).then_some(if c.tokens < pick_tokens {
                    Tie::FewerTokens
                } else {
                    Tie::LaterInDirectory
                });
                Verdict::ShorterPrefix {
                    text_bytes: c.text_len,
                    pick_bytes,
                    tie,
                }
            }
            _ => Verdict::NotAPrefix(Difference::Unknown),
        };
        work[i].verdict = Some(v);
    }
    outcome
}

/// How much of the prompt each stored text shares: read each text not
/// read yet, as far as it agrees with the prompt, except where the name
/// already says it is a prefix (then it shares its whole length).
fn read_shared(work: &mut [Work], prompt: &[u8], markers: &Markers) {
    let todo: Vec<usize> = work
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.entry.text_len.is_some()
                && w.entry.shared_prefix.is_none()
                && w.entry.full_prefix != Some(true)
                && !matches!(
                    w.verdict,
                    Some(Verdict::NotLoadable(NotLoadable::Unreadable { .. }))
                )
        })
        .map(|(i, _)| i)
        .collect();
    let limit = prompt.len() as u64;
    let read_one = |&i: &usize| {
        let e = &work[i].entry;
        let tl = e.text_len.expect("filtered on");
        (i, compare(&e.path, tl, prompt, limit, markers))
    };
    // As a scan does: rayon's pool only where it pays for its start.
    let read: Vec<(usize, Compared)> = if todo.len() >= scan::PARALLEL_MIN_FILES {
        todo.par_iter().map(read_one).collect()
    } else {
        todo.iter().map(read_one).collect()
    };
    for (i, r) in read {
        let w = &mut work[i];
        let Ok((shared, d)) = r else { continue };
        w.entry.shared_prefix = Some(shared);
        if let Some(Verdict::NotAPrefix(diff)) = &mut w.verdict {
            *diff = match &d {
                Some(d) => Difference::At(d.at),
                None => Difference::NameOnly {
                    identity_named: w.entry.key_kind == Some(KeyKind::SessionIdentity),
                },
            };
        }
        w.entry.divergence = d;
    }
    for w in work.iter_mut() {
        if w.entry.full_prefix == Some(true) && w.entry.shared_prefix.is_none() {
            w.entry.shared_prefix = w.entry.text_len.map(u64::from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::HEADER_LEN;
    use std::io;

    #[test]
    fn prefix_hashes_are_the_prefixes_sha1_from_one_pass() {
        let prompt: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let lens = [0u64, 1, 63, 64, 65, 4096, 99_999, 100_000, 100_001, 64, 7];
        let h = PrefixHashes::compute(&prompt, lens);
        for n in lens {
            let want =
                (n <= prompt.len() as u64).then(|| hex(&Sha1::digest(&prompt[..n as usize])));
            assert_eq!(h.key(n).map(str::to_string), want, "length {n}");
        }
        // One pass: the prompt is fed up to the longest length, once.
        assert_eq!(h.hashed_bytes(), 100_000);
        let short = PrefixHashes::compute(&prompt, [10u64, 20]);
        assert_eq!(short.hashed_bytes(), 20);
    }

    #[test]
    fn a_prompt_is_a_c_string() {
        let p = Prompt::new(b"abc\0def\0".to_vec());
        assert_eq!(p.bytes(), b"abc");
        assert_eq!((p.len(), p.read_bytes(), p.nul_at()), (3, 8, Some(3)));
        let q = Prompt::new(b"plain".to_vec());
        assert_eq!((q.len(), q.nul_at()), (5, None));
    }

    #[test]
    fn a_prompt_larger_than_the_cap_is_refused() {
        let read = |n: u64| Prompt::read_capped(&mut io::repeat(b'x').take(n), Path::new("p"), 100);
        assert_eq!(read(100).unwrap().len(), 100);
        assert!(read(101).is_err());
    }

    fn cand(order: u32, text_len: u32, tokens: u32, matches: bool) -> Candidate {
        Candidate {
            order,
            text_len,
            tokens,
            matches,
        }
    }

    #[test]
    fn the_longest_prefix_wins_then_more_tokens_then_directory_order() {
        // Longest matching text wins, whatever the order.
        let c = [
            cand(0, 10, 900, true),
            cand(1, 20, 600, true),
            cand(2, 30, 600, false),
        ];
        assert_eq!(pick(&c), Some(1));
        // Equal length: more tokens wins, even when it comes later.
        let c = [cand(0, 20, 600, true), cand(1, 20, 700, true)];
        assert_eq!(pick(&c), Some(1));
        // Equal length and tokens: the first in directory order (not in
        // the slice's order).
        let c = [cand(5, 20, 600, true), cand(2, 20, 600, true)];
        assert_eq!(pick(&c), Some(1));
        // Nothing matches.
        assert_eq!(pick(&[cand(0, 20, 600, false)]), None);
    }

    #[test]
    fn the_engines_loop_picks_the_first_of_the_fallback_order() {
        // The literal loop (pre-filter, then the name) and the sorted order
        // the fallback chain walks agree on every small candidate set.
        let mut seed = 0x9e37_79b9u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..2000 {
            let n = 1 + next(6) as usize;
            let mut orders: Vec<u32> = (0..n as u32).collect();
            for i in (1..n).rev() {
                orders.swap(i, next(i as u64 + 1) as usize);
            }
            let cands: Vec<Candidate> = (0..n)
                .map(|i| {
                    cand(
                        orders[i],
                        next(3) as u32,
                        600 + next(2) as u32,
                        next(2) == 0,
                    )
                })
                .collect();
            let sorted = (0..n)
                .filter(|&i| cands[i].matches)
                .min_by_key(|&i| fallback_rank(&cands[i]));
            assert_eq!(pick(&cands), sorted, "{cands:?}");
        }
    }

    #[test]
    fn filters_apply_in_the_engines_order() {
        let mut h = Header::decode(&[0u8; HEADER_LEN]);
        h.tokens = 100;
        h.model_id = 1;
        h.ctx_size = 65536;
        h.quant_bits = 4;
        let live = Live {
            quant_bits: Some(2),
            reject_different_quant: true,
            ..Live::default()
        };
        // Fails all five: the text length is the first.
        assert_eq!(
            filter(&h, 50, 10, &live).unwrap().code(),
            "text-longer-than-prompt"
        );
        assert_eq!(filter(&h, 5, 10, &live).unwrap().code(), "tokens-below-min");
        h.tokens = 600;
        assert_eq!(filter(&h, 5, 10, &live).unwrap().code(), "other-model");
        h.model_id = 0;
        assert_eq!(
            filter(&h, 5, 10, &live).unwrap().code(),
            "ctx-larger-than-live"
        );
        h.ctx_size = 32768;
        assert_eq!(filter(&h, 5, 10, &live).unwrap().code(), "other-quant");
        h.quant_bits = 2;
        assert_eq!(filter(&h, 5, 10, &live), None);
        // `(int)tokens`: 2^31 and more are negative to ds4, below any min.
        h.tokens = 0x8000_0000;
        let zero = Live {
            min_tokens: 0,
            ..Live::default()
        };
        assert_eq!(filter(&h, 5, 10, &zero).unwrap().code(), "tokens-below-min");
    }
}
