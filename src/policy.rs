//! The engines' eviction orders (FORMAT.md §7, §8), each named for the
//! engine version it reproduces, and the superseded test at rest.
//!
//! Everything takes `now` from the caller, so a listing, a plan and a test
//! computed at the same `now` agree exactly. The arithmetic is the engines'
//! own, in their order: IEEE doubles decide exact ties, so the order of
//! operations is part of the policy.

use crate::format::{Engine, Reason};
use crate::prefix::{self, Index, Needle};
use crate::scan::Checkpoint;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

/// Hit counts halve every 6 hours of disuse
/// (`DS4_KVSTORE_HIT_HALF_LIFE_SECONDS`, ds4 since d0357ec, 2026-05-15).
pub(crate) const HALF_LIFE_SECS: f64 = 21_600.0;
/// Decayed hits below this count as none (`KV_CACHE_MIN_EFFECTIVE_HITS`):
/// an entry unused for days has no usefulness left, only density.
pub(crate) const EFFECTIVE_HITS_FLOOR: f64 = 0.01;
/// ds4 mainline since ec6a82a (2026-05-26) doubles the score of cold, evict
/// and shutdown checkpoints (`KV_CACHE_ANCHOR_REASON_SCORE_FACTOR`): they
/// are the starting points conversations come back to.
pub(crate) const ANCHOR_FACTOR: f64 = 2.0;
/// ds4 mainline since ec6a82a: a superseded `continued` checkpoint keeps
/// between 5% and 50% of its score, more the more it is still used
/// (`KV_CACHE_CONTINUED_PREFIX_MIN_FACTOR`, `…_HIT_FACTOR`).
pub(crate) const SUPERSEDED_BASE: f64 = 0.05;
pub(crate) const SUPERSEDED_USE_WEIGHT: f64 = 0.45;
/// hanzo-engine never budgets below 64 MiB (`MIN_BUDGET_BYTES`,
/// disk_kv_cache.rs, c8bcee7d5).
pub(crate) const HANZO_MIN_BUDGET: u64 = 64 << 20;
/// Which engine's eviction order to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// ds4 mainline since ec6a82a (2026-05-26): the classic score, ×2 for
    /// anchors, × (0.05 + 0.45·h) for superseded `continued` waypoints.
    Ds4,
    /// ds4 up to 2026-05-25: `((eff + 1) × tokens) / size`.
    Ds4Classic,
    /// hanzo-engine: oldest `last_used` first, unreadable headers first of
    /// all, ties in readdir order; never a budget below 64 MiB.
    Lru,
}

impl Policy {
    pub(crate) const NAMES: [&'static str; 3] = ["ds4", "ds4-classic", "lru"];

    pub fn name(self) -> &'static str {
        match self {
            Policy::Ds4 => "ds4",
            Policy::Ds4Classic => "ds4-classic",
            Policy::Lru => "lru",
        }
    }

    /// What the policy reproduces, with the engine version it is taken
    /// from: for output, `--help` and docs.
    pub fn describe(self) -> &'static str {
        match self {
            Policy::Ds4 => {
                "ds4 mainline since ec6a82a (2026-05-26; ds4_kvstore.c at b030961): \
                 ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, \
                 superseded continued waypoints × (0.05 + 0.45·h); ties to the older \
                 last_used, then readdir order"
            }
            Policy::Ds4Classic => {
                "ds4 up to 2026-05-25 (ds4_kvstore.c at 8d57664): ((hits decayed + 1) × \
                 tokens) / size; ties to the older last_used, then readdir order"
            }
            Policy::Lru => {
                "hanzo-engine (disk_kv_cache.rs evict_to_budget, c8bcee7d5): oldest \
                 last_used first, unreadable headers first of all, ties in readdir order, \
                 never a budget below 64 MiB"
            }
        }
    }

    /// The engine version it reproduces, in a few words.
    pub fn source(self) -> &'static str {
        match self {
            Policy::Ds4 => "ds4 mainline since ec6a82a (2026-05-26)",
            Policy::Ds4Classic => "ds4 up to 2026-05-25",
            Policy::Lru => "hanzo-engine (disk_kv_cache.rs, c8bcee7d5)",
        }
    }

    /// Whether the policy computes a score at all (LRU orders by age only).
    pub(crate) fn has_score(self) -> bool {
        self != Policy::Lru
    }

    /// Whether the policy needs to know which checkpoints are superseded.
    pub(crate) fn needs_superseded(self) -> bool {
        self == Policy::Ds4
    }

    /// The smallest budget the engine applies: hanzo-engine's 64 MiB.
    pub fn min_budget(self) -> Option<u64> {
        (self == Policy::Lru).then_some(HANZO_MIN_BUDGET)
    }

    /// The policy of the engine that reads a directory: what `--policy`
    /// defaults to.
    pub fn for_engine(engine: Engine) -> Policy {
        match engine {
            Engine::Ds4 => Policy::Ds4,
            Engine::Ds4Classic => Policy::Ds4Classic,
            Engine::Hanzo => Policy::Lru,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ds4" => Ok(Policy::Ds4),
            "ds4-classic" => Ok(Policy::Ds4Classic),
            "lru" => Ok(Policy::Lru),
            _ => Err(format!(
                "unknown policy {s:?} (one of {})",
                Policy::NAMES.join(", ")
            )),
        }
    }
}

/// How the policy in use was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFrom {
    /// `--policy`.
    Given,
    /// The policy of the directory's engine ([`Policy::for_engine`]).
    Engine,
}

impl PolicyFrom {
    /// `--policy` or `engine`, as JSON says it.
    pub fn name(self) -> &'static str {
        match self {
            PolicyFrom::Given => "--policy",
            PolicyFrom::Engine => "engine",
        }
    }

    /// `given`, or the engine's policy: the policy and how it was chosen.
    pub fn resolve(given: Option<Policy>, engine: Engine) -> (Policy, PolicyFrom) {
        match given {
            Some(p) => (p, PolicyFrom::Given),
            None => (Policy::for_engine(engine), PolicyFrom::Engine),
        }
    }
}

/// `hits × 2^(-(now - used) / H)`, as ds4 computes it: full hits when
/// `now <= used` (a clock step back must not reward anything), none when
/// the checkpoint was never used, none below the floor.
pub fn effective_hits(hits: u32, used: u64, now: u64) -> f64 {
    let mut eff = hits as f64;
    if used == 0 {
        eff = 0.0;
    } else if now > used {
        let elapsed = (now - used) as f64;
        eff *= (-elapsed / HALF_LIFE_SECS).exp2();
        if eff < EFFECTIVE_HITS_FLOOR {
            eff = 0.0;
        }
    }
    eff
}

/// What the score of one checkpoint depends on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreInput {
    pub tokens: u32,
    pub hits: u32,
    /// `last_used`, or `created` when never used.
    pub used: u64,
    pub file_size: u64,
    pub reason: Reason,
    pub superseded: bool,
}

impl ScoreInput {
    pub fn of(c: &Checkpoint, superseded: bool) -> ScoreInput {
        ScoreInput {
            tokens: c.header.tokens,
            hits: c.header.hits,
            used: c.header.used_time(),
            file_size: c.size,
            reason: c.header.reason,
            superseded,
        }
    }
}

/// The reason as ds4's reader keeps it: values above 6 (agent-session)
/// become 0, unknown (`ds4_kvstore_read_header`).
fn ds4_reason(r: Reason) -> Reason {
    if r.0 <= Reason::AGENT_SESSION.0 {
        r
    } else {
        Reason(0)
    }
}

/// The score under `policy` (lower = evicted first); `None` under LRU.
///
/// `ds4_kvstore_entry_eviction_score` (ds4_kvstore.c at b030961), operation
/// for operation: `((eff + 1) × tokens) / size`, then × 2 for an anchor,
/// then × the superseded factor, computed first. ds4-classic (8d57664) is
/// the first step alone.
pub fn score(policy: Policy, s: &ScoreInput, now: u64) -> Option<f64> {
    if !policy.has_score() {
        return None;
    }
    if s.file_size == 0 {
        return Some(0.0);
    }
    let eff = effective_hits(s.hits, s.used, now);
    let mut score = (eff + 1.0) * s.tokens as f64 / s.file_size as f64;
    if policy == Policy::Ds4 {
        let reason = ds4_reason(s.reason);
        if reason.is_anchor() {
            score *= ANCHOR_FACTOR;
        }
        if reason == Reason::CONTINUED && s.superseded {
            let h = if eff > 0.0 { eff / (eff + 1.0) } else { 0.0 };
            score *= SUPERSEDED_BASE + SUPERSEDED_USE_WEIGHT * h;
        }
    }
    Some(score)
}

/// Whether a checkpoint can play the engine's "incoming" role at rest: a
/// ds4-server save, named by its text. A ds4-agent session with ext bit 3
/// is named by its identity, so ds4 never compares a prompt with it.
fn named_by_text(c: &Checkpoint) -> bool {
    !(c.dialect.spec().identity == crate::format::dialect::Identity::Ds4
        && c.header.ext_flags.has_session_title())
}

/// Below this many checkpoints texts are streamed on the calling thread:
/// starting rayon's pool would cost more than it saves.
const PARALLEL_MIN: usize = 64;

/// Which checkpoints are superseded `continued` waypoints, by ds4
/// mainline's test (`kv_cache_incoming_supersedes_continued`, ds4_kvstore.c
/// at b030961, since ec6a82a): the waypoint's reason is continued, its text
/// is not empty and strictly shorter than the longer one's, the model ids
/// are equal, the quant bits too when `reject_different_quant` (ds4-server's
/// `--kv-cache-reject-different-quant`), the longer one's ctx is not larger,
/// and the SHA-1 of the longer text's prefix of the waypoint's length is
/// the waypoint's **file name**.
///
/// ds4 applies this only against the checkpoint it is about to save. kvc's
/// reading at rest, where every longer stored checkpoint plays that role,
/// is kvc's own extension (FORMAT.md §8): output that shows it says so.
/// Only the checkpoints `counted` admits (the engine's population) take
/// part, on either side.
///
/// The texts are streamed (from memory when the scan read them), never
/// held: see `crate::prefix`. A file that vanished or changed since the
/// scan takes no part.
pub fn superseded(
    cps: &[Checkpoint],
    counted: impl Fn(&Checkpoint) -> bool + Sync,
    reject_different_quant: bool,
) -> Vec<bool> {
    let mut out = vec![false; cps.len()];
    let waypoints: Vec<usize> = (0..cps.len())
        .filter(|&i| {
            let c = &cps[i];
            ds4_reason(c.header.reason) == Reason::CONTINUED
                && c.text_len > 0
                && counted(c)
                && prefix::key_digest(&c.key).is_some()
        })
        .collect();
    if waypoints.is_empty() {
        return out;
    }
    let parallel = cps.len() >= PARALLEL_MIN;
    // One streaming read of each waypoint's text up to its boundary.
    let digest = |&i: &usize| {
        let c = &cps[i];
        let b = prefix::boundary(c.text_len as u64);
        let mut sha = <sha1::Sha1 as sha1::Digest>::new();
        let ok = prefix::stream_text(c, b, &mut |d| sha1::Digest::update(&mut sha, d));
        ok.then(|| (i, sha1::Digest::finalize(sha).into()))
    };
    let digests: Vec<(usize, prefix::Sha1Digest)> = if parallel {
        waypoints.par_iter().filter_map(digest).collect()
    } else {
        waypoints.iter().filter_map(digest).collect()
    };
    let mut index = Index::new();
    let mut of_needle = Vec::with_capacity(digests.len());
    for (i, at_boundary) in digests {
        let c = &cps[i];
        index.insert(Needle {
            group: c.header.model_id,
            len: c.text_len as u64,
            at_boundary,
            name: prefix::key_digest(&c.key).expect("filtered"),
        });
        of_needle.push(i);
    }
    // Only a text longer than some waypoint of its model can supersede.
    let mut shortest = std::collections::HashMap::new();
    for &i in &of_needle {
        let c = &cps[i];
        let e = shortest.entry(c.header.model_id).or_insert(u32::MAX);
        *e = (*e).min(c.text_len);
    }
    let mut longer: Vec<usize> = (0..cps.len())
        .filter(|&i| {
            let c = &cps[i];
            shortest
                .get(&c.header.model_id)
                .is_some_and(|&s| c.text_len > s)
                && counted(c)
                && named_by_text(c)
        })
        .collect();
    // Longest first: it settles the most waypoints, and a settled one costs
    // no hashing later.
    longer.sort_by_key(|&i| std::cmp::Reverse(cps[i].text_len));
    let done: Vec<AtomicBool> = of_needle.iter().map(|_| AtomicBool::new(false)).collect();
    let stream = |&i: &usize| {
        let s = &cps[i];
        let group = s.header.model_id;
        let len = s.text_len as u64;
        let accept = |id: usize| {
            let w = &cps[of_needle[id]];
            !done[id].load(AtomicOrdering::Relaxed)
                && s.header.ctx_size <= w.header.ctx_size
                && (!reject_different_quant || s.header.quant_bits == w.header.quant_bits)
        };
        let mut m = index.matcher(group, len, accept);
        if prefix::stream_text(s, index.needed(group, len), &mut |d| m.update(d)) {
            for id in m.finish() {
                done[id].store(true, AtomicOrdering::Relaxed);
            }
        }
    };
    if parallel {
        longer.par_iter().for_each(stream);
    } else {
        longer.iter().for_each(stream);
    }
    for (id, &i) in of_needle.iter().enumerate() {
        out[i] = done[id].load(AtomicOrdering::Relaxed);
    }
    out
}

/// What an order depends on besides the checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankOptions {
    pub policy: Policy,
    /// Unix seconds the scores are evaluated at.
    pub now: u64,
    /// ds4-server's `--kv-cache-reject-different-quant`: a waypoint is
    /// superseded only by a checkpoint of the same quant bits.
    pub reject_different_quant: bool,
}

/// One checkpoint's place in the eviction order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ranked {
    /// Index into the slice given to [`eviction_order`].
    pub index: usize,
    pub score: Option<f64>,
    pub superseded: bool,
}

/// Where an entry stands in an engine's eviction loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OrderKey {
    /// Its score; `None` under LRU, and for an entry without a readable
    /// header (hanzo-engine reads its last_used as 0: it goes first).
    pub score: Option<f64>,
    /// The raw header `last_used` (0 when never used, or unreadable).
    pub last_used: u64,
    /// Its position in `readdir` order.
    pub order: u32,
}

/// How two entries compare in the engines' loops. ds4 takes the lowest
/// score, on a tie the smaller raw `last_used`, then the earlier in readdir
/// order (`ds4_kvstore_evict`, ds4_kvstore.c at b030961 and 8d57664: a
/// strict `<` over the entries in readdir order, the victim removed with
/// `memmove`, which keeps the order of the rest); hanzo-engine sorts by
/// `last_used`, stably over readdir order (`evict_to_budget`). Sorting by
/// this gives the engines' sequence of victims. `scored`: the policy has a
/// score, and entries without one go first.
pub(crate) fn engine_cmp(a: &OrderKey, b: &OrderKey, scored: bool) -> Ordering {
    let by_score = if scored {
        match (a.score, b.score) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    } else {
        Ordering::Equal
    };
    by_score
        .then(a.last_used.cmp(&b.last_used))
        .then(a.order.cmp(&b.order))
}

/// The order in which the engine evicts the checkpoints `counted` admits
/// (its population, FORMAT.md §7), first victim first. One sort,
/// O(n log n), after the superseded test (linear in the texts streamed).
pub(crate) fn eviction_order(
    opts: &RankOptions,
    cps: &[Checkpoint],
    counted: impl Fn(&Checkpoint) -> bool + Sync,
) -> Vec<Ranked> {
    let sup = if opts.policy.needs_superseded() {
        superseded(cps, &counted, opts.reject_different_quant)
    } else {
        vec![false; cps.len()]
    };
    let mut ranked: Vec<Ranked> = cps
        .iter()
        .enumerate()
        .filter(|(_, c)| counted(c))
        .map(|(i, c)| Ranked {
            index: i,
            score: score(opts.policy, &ScoreInput::of(c, sup[i]), opts.now),
            superseded: sup[i],
        })
        .collect();
    let key = |r: &Ranked| OrderKey {
        score: r.score,
        last_used: cps[r.index].header.last_used,
        order: cps[r.index].order,
    };
    let scored = opts.policy.has_score();
    ranked.sort_by(|a, b| engine_cmp(&key(a), &key(b), scored));
    ranked
}

/// A checkpoint's standing under a policy, aligned with the slice ranked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// `None` under LRU and for checkpoints the engine does not count.
    pub score: Option<f64>,
    pub superseded: bool,
    /// 1 = evicted first; `None` for checkpoints the engine does not count
    /// and for those `protected` excludes.
    pub rank: Option<usize>,
}

/// Rank every checkpoint (index-aligned with `cps`): those `counted` admits
/// get their score; the `protected` ones among them get no rank, since
/// eviction never picks them.
pub fn standings(
    opts: &RankOptions,
    cps: &[Checkpoint],
    counted: impl Fn(&Checkpoint) -> bool + Sync,
    protected: impl Fn(&Checkpoint) -> bool,
) -> Vec<Standing> {
    let mut out = vec![
        Standing {
            score: None,
            superseded: false,
            rank: None,
        };
        cps.len()
    ];
    let mut next = 1;
    for r in eviction_order(opts, cps, counted) {
        let rank = if protected(&cps[r.index]) {
            None
        } else {
            next += 1;
            Some(next - 1)
        };
        out[r.index] = Standing {
            score: r.score,
            superseded: r.superseded,
            rank,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(tokens: u32, hits: u32, used: u64, size: u64, reason: u8) -> ScoreInput {
        ScoreInput {
            tokens,
            hits,
            used,
            file_size: size,
            reason: Reason(reason),
            superseded: false,
        }
    }

    fn checkpoint(n: u8, created: u64, last_used: u64) -> Checkpoint {
        let key = crate::Key::from_hex(&format!("{n:02x}").repeat(20)).unwrap();
        Checkpoint::from_header(
            key.clone(),
            key.file_name().into(),
            1000,
            0o600,
            crate::Header {
                magic: *b"KVC",
                version: 1,
                quant_bits: 2,
                reason: Reason::COLD,
                ext_flags: crate::ExtFlags(0),
                model_id: 0,
                tokens: 100,
                hits: 0,
                ctx_size: 4096,
                payload_abi: 0,
                reserved: [0; 3],
                created,
                last_used,
                payload_bytes: 900,
            },
            10,
            crate::format::Engine::Ds4Classic,
        )
    }

    /// A checkpoint named by its text's SHA-1, its header and text in a
    /// file of their own (texts are streamed from files, never held).
    fn with_text(text: &[u8], reason: Reason, ctx: u32) -> Checkpoint {
        static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let mut c = checkpoint(0, 1, 1);
        c.key = crate::Key::of_text(text);
        c.text_len = text.len() as u32;
        c.header.reason = reason;
        c.header.ctx_size = ctx;
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.set_path(&dir.path().join(format!("{n}.kv")));
        let mut bytes = c.header.encode().to_vec();
        bytes.extend_from_slice(&c.text_len.to_le_bytes());
        bytes.extend_from_slice(text);
        std::fs::write(c.path(), bytes).unwrap();
        c
    }

    /// A copy of `c` in a file of its own, its header as changed.
    fn synced(c: &Checkpoint) -> Checkpoint {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut out = c.clone();
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        out.set_path(&c.path().with_file_name(format!("synced-{n}.kv")));
        let mut bytes = std::fs::read(c.path()).unwrap();
        bytes[..crate::format::HEADER_LEN].copy_from_slice(&out.header.encode());
        std::fs::write(out.path(), bytes).unwrap();
        out
    }

    fn opts(policy: Policy) -> RankOptions {
        RankOptions {
            policy,
            now: 10_000,
            reject_different_quant: false,
        }
    }

    fn order(policy: Policy, cps: &[Checkpoint]) -> Vec<usize> {
        eviction_order(&opts(policy), cps, |_| true)
            .iter()
            .map(|r| r.index)
            .collect()
    }

    #[test]
    fn ties_and_lru_go_by_the_raw_last_used_then_readdir_order() {
        // Same score (no hits, same size and tokens). b was never used
        // (last_used 0) but created after a was last used: the engines
        // compare last_used itself, so b goes first.
        let a = checkpoint(0xaa, 100, 500);
        let b = checkpoint(0xbb, 900, 0);
        let cps = [a.clone(), b];
        for policy in [Policy::Ds4Classic, Policy::Lru] {
            assert_eq!(order(policy, &cps), [1, 0], "{policy}");
        }
        // Equal last_used: readdir order, whatever the keys say.
        let mut first = checkpoint(0xff, 100, 500);
        first.order = 3;
        let mut second = a;
        second.order = 7;
        let cps = [second, first];
        for policy in [Policy::Ds4, Policy::Ds4Classic, Policy::Lru] {
            assert_eq!(order(policy, &cps), [1, 0], "{policy}");
        }
    }

    #[test]
    fn hits_halve_every_half_life_and_vanish_below_the_floor() {
        let now = 1_000_000;
        assert_eq!(effective_hits(8, now, now), 8.0);
        assert_eq!(effective_hits(8, now - 21_600, now), 4.0);
        assert_eq!(effective_hits(8, now + 50, now), 8.0);
        assert_eq!(effective_hits(8, 0, now), 0.0);
        // 100 hits over 14 half-lives: 100 / 16384 < 0.01.
        assert_eq!(effective_hits(100, now - 14 * 21_600, now), 0.0);
    }

    #[test]
    fn classic_score_is_density_weighted_by_use() {
        let now = 1_000_000;
        let s = score(Policy::Ds4Classic, &input(1000, 1, now, 2000, 2), now).unwrap();
        assert_eq!(s, 1.0);
        assert_eq!(score(Policy::Lru, &input(1000, 1, now, 2000, 2), now), None);
        assert_eq!(
            score(Policy::Ds4, &input(1000, 1, now, 0, 2), now),
            Some(0.0)
        );
    }

    #[test]
    fn the_score_multiplies_before_it_divides() {
        // eff + 1 = 3, tokens 1, size 10: (3 × 1) / 10 is the double
        // nearest 0.3; 3 × (1 / 10) is one ulp above it.
        let now = 1_000_000;
        let s = score(Policy::Ds4Classic, &input(1, 2, now, 10, 1), now).unwrap();
        assert_eq!(s, 3.0 / 10.0);
        assert_ne!(s, 3.0 * (1.0 / 10.0));
    }

    #[test]
    fn ds4_doubles_anchors_and_shrinks_superseded_waypoints() {
        let now = 1_000_000;
        let cold = score(Policy::Ds4, &input(1000, 0, now, 1000, 1), now).unwrap();
        assert_eq!(cold, 2.0);
        // Reasons above 6 are unknown to ds4's reader: no anchor, even for
        // pulsar's 7.
        let sys = score(Policy::Ds4, &input(1000, 0, now, 1000, 7), now).unwrap();
        assert_eq!(sys, 1.0);
        let mut w = input(1000, 1, now, 1000, 2);
        w.superseded = true;
        // eff 1 → h 0.5 → factor 0.05 + 0.45 × 0.5; (1 + 1) × 1000 / 1000 × it.
        let got = score(Policy::Ds4, &w, now).unwrap();
        assert_eq!(got, 2.0 * (0.05 + 0.45 * 0.5));
        w.hits = 0;
        assert_eq!(score(Policy::Ds4, &w, now).unwrap(), 0.05);
        // The factor applies to continued waypoints only.
        let mut cold = input(1000, 0, now, 1000, 1);
        cold.superseded = true;
        assert_eq!(score(Policy::Ds4, &cold, now).unwrap(), 2.0);
    }

    #[test]
    fn superseded_is_ds4s_test_applied_at_rest() {
        let base = b"<User>hello".to_vec();
        let mut longer = base.clone();
        longer.extend_from_slice(b" and more");
        let w = with_text(&base, Reason::CONTINUED, 8192);
        let l = with_text(&longer, Reason::COLD, 8192);
        let sup = |cps: &[Checkpoint], reject| superseded(cps, |_| true, reject);
        assert_eq!(sup(&[w.clone(), l.clone()], false), [true, false]);
        // Only a continued waypoint.
        let mut cold = w.clone();
        cold.header.reason = Reason::COLD;
        assert_eq!(sup(&[synced(&cold), l.clone()], false), [false, false]);
        // The longer one must be loadable wherever the waypoint is.
        let mut wide = l.clone();
        wide.header.ctx_size = 16384;
        assert_eq!(sup(&[w.clone(), synced(&wide)], false), [false, false]);
        // Same model; same quant only when asked.
        let mut other_model = l.clone();
        other_model.header.model_id = 1;
        assert_eq!(
            sup(&[w.clone(), synced(&other_model)], false),
            [false, false]
        );
        let mut q4 = l.clone();
        q4.header.quant_bits = 4;
        let q4 = synced(&q4);
        assert_eq!(sup(&[w.clone(), q4.clone()], false), [true, false]);
        assert_eq!(sup(&[w.clone(), q4], true), [false, false]);
        // Only what the engine counts takes part.
        assert_eq!(
            superseded(&[w.clone(), l.clone()], |c| c.key != l.key, false),
            [false, false]
        );
        // The name decides, as in ds4: a waypoint named by another text is
        // not found.
        let mut misnamed = w.clone();
        misnamed.key = crate::Key::of_text(b"something else");
        assert_eq!(sup(&[misnamed, l.clone()], false), [false, false]);
        // A session named by its identity never plays the incoming role.
        let mut session = l;
        session.header.ext_flags = crate::ExtFlags(crate::ExtFlags::SESSION_TITLE);
        assert_eq!(sup(&[w, synced(&session)], false), [false, false]);
    }

    #[test]
    fn an_empty_waypoint_is_never_superseded() {
        // ds4: `if (e->text_bytes == 0 …) return false`. The empty text is
        // a prefix of everything, and its name is SHA-1 of nothing.
        let empty = with_text(b"", Reason::CONTINUED, 8192);
        let any = with_text(b"anything", Reason::CONTINUED, 8192);
        assert_eq!(superseded(&[empty, any], |_| true, false), [false, false]);
    }
}
