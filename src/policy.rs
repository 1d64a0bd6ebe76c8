//! The eviction score of FORMAT.md §8 and the eviction order it implies.
//!
//! Everything takes `now` from the caller, so a listing, a plan and a test
//! computed at the same `now` agree exactly.

use crate::format::Reason;
use crate::scan::Checkpoint;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Hit counts halve every 6 hours of disuse.
pub const HALF_LIFE_SECS: f64 = 21_600.0;
/// Decayed hits below this count as none: an entry unused for days has no
/// usefulness left, only density.
pub const EFFECTIVE_HITS_FLOOR: f64 = 0.01;
/// The forks double the score of cold, evict and shutdown checkpoints:
/// they are the starting points conversations come back to.
pub const ANCHOR_FACTOR: f64 = 2.0;
/// A superseded `continued` checkpoint keeps between 5% and 50% of its
/// score, more the more it is still used: a longer checkpoint already covers
/// its prefix.
pub const SUPERSEDED_BASE: f64 = 0.05;
pub const SUPERSEDED_USE_WEIGHT: f64 = 0.45;

/// Which engine's eviction order to follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The ds4 forks' score: classic plus anchors and superseded waypoints.
    #[default]
    Ds4,
    /// Upstream ds4-server's score.
    Ds4Classic,
    /// hanzo-engine: oldest `last_used` first.
    Lru,
}

impl Policy {
    pub const NAMES: [&'static str; 3] = ["ds4", "ds4-classic", "lru"];

    pub fn name(self) -> &'static str {
        match self {
            Policy::Ds4 => "ds4",
            Policy::Ds4Classic => "ds4-classic",
            Policy::Lru => "lru",
        }
    }

    /// Whether the policy computes a score at all (LRU orders by age only).
    pub fn has_score(self) -> bool {
        self != Policy::Lru
    }

    /// Whether the policy needs to know which checkpoints are superseded,
    /// which takes the texts.
    pub fn needs_texts(self) -> bool {
        self == Policy::Ds4
    }
}

impl Policy {
    /// The policy of the engine that reads a directory: what `--policy`
    /// defaults to.
    pub fn for_engine(engine: crate::format::Engine) -> Policy {
        match engine {
            crate::format::Engine::Ds4 => Policy::Ds4,
            crate::format::Engine::Ds4Classic => Policy::Ds4Classic,
            crate::format::Engine::Hanzo => Policy::Lru,
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

/// `hits × 2^(-(now - used) / H)`, with ds4's edge cases: full hits when
/// `now <= used` (a clock step back must not reward anything), none when the
/// checkpoint was never used, and none below the floor.
pub fn effective_hits(hits: u32, used: u64, now: u64) -> f64 {
    if used == 0 {
        return 0.0;
    }
    let eff = if now <= used {
        hits as f64
    } else {
        hits as f64 * (-((now - used) as f64) / HALF_LIFE_SECS).exp2()
    };
    if eff < EFFECTIVE_HITS_FLOOR {
        0.0
    } else {
        eff
    }
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

/// The score under `policy` (lower = evicted first); `None` under LRU.
pub fn score(policy: Policy, s: &ScoreInput, now: u64) -> Option<f64> {
    if !policy.has_score() {
        return None;
    }
    let eff = effective_hits(s.hits, s.used, now);
    // An empty file is never a valid checkpoint; guard the division anyway.
    let density = s.tokens as f64 / s.file_size.max(1) as f64;
    let mut score = (eff + 1.0) * density;
    if policy == Policy::Ds4 {
        if s.reason.is_anchor() {
            score *= ANCHOR_FACTOR;
        }
        if s.reason == Reason::CONTINUED && s.superseded {
            let h = eff / (eff + 1.0);
            score *= SUPERSEDED_BASE + SUPERSEDED_USE_WEIGHT * h;
        }
    }
    Some(score)
}

/// Which checkpoints are superseded `continued` waypoints: the text is a
/// strict prefix of the text of a longer checkpoint with the same model id
/// whose `ctx_size` is not larger (FORMAT.md §8). Checkpoints whose text was
/// not read neither are nor supersede.
///
/// Sorting the texts puts every extension of a text right after it, so each
/// candidate looks only at the run of texts that start with its own.
pub fn superseded(cps: &[Checkpoint]) -> Vec<bool> {
    let mut out = vec![false; cps.len()];
    if !cps.iter().any(|c| c.header.reason == Reason::CONTINUED) {
        return out;
    }
    let mut order: Vec<usize> = (0..cps.len()).filter(|&i| cps[i].text.is_some()).collect();
    let text = |i: usize| cps[i].text.as_deref().expect("filtered");
    order.sort_by(|&a, &b| {
        (cps[a].header.model_id, text(a)).cmp(&(cps[b].header.model_id, text(b)))
    });
    for (pos, &i) in order.iter().enumerate() {
        let c = &cps[i];
        if c.header.reason != Reason::CONTINUED {
            continue;
        }
        let t = text(i);
        out[i] = order[pos + 1..]
            .iter()
            .take_while(|&&j| cps[j].header.model_id == c.header.model_id && text(j).starts_with(t))
            .any(|&j| text(j).len() > t.len() && cps[j].header.ctx_size <= c.header.ctx_size);
    }
    out
}

/// One checkpoint's place in the eviction order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Index into the slice given to [`eviction_order`].
    pub index: usize,
    pub score: Option<f64>,
    pub superseded: bool,
}

/// The order in which `policy` evicts `cps`, first victim first: ascending
/// score, ties to the older `last_used` (as ds4 does), then by key so the
/// order is total. LRU: oldest `last_used` first (a never-used 0 first of
/// all, as the engines compare the raw field). One sort, O(n log n).
pub fn eviction_order(policy: Policy, cps: &[Checkpoint], now: u64) -> Vec<Ranked> {
    let sup = if policy.needs_texts() {
        superseded(cps)
    } else {
        vec![false; cps.len()]
    };
    let mut ranked: Vec<Ranked> = cps
        .iter()
        .enumerate()
        .map(|(i, c)| Ranked {
            index: i,
            score: score(policy, &ScoreInput::of(c, sup[i]), now),
            superseded: sup[i],
        })
        .collect();
    ranked.sort_by(|a, b| {
        let (ca, cb) = (&cps[a.index], &cps[b.index]);
        let by_score = match (a.score, b.score) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => Ordering::Equal,
        };
        by_score
            // FORMAT.md §7/§8: ties (and LRU) go by the raw `last_used`,
            // as the engines compare it; a never-used 0 is the oldest.
            .then(ca.header.last_used.cmp(&cb.header.last_used))
            .then(ca.key.cmp(&cb.key))
    });
    ranked
}

/// A checkpoint's standing under a policy, aligned with the slice ranked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    pub score: Option<f64>,
    pub superseded: bool,
    /// 1 = evicted first; `None` for checkpoints `protected` excludes.
    pub rank: Option<usize>,
}

/// Rank every checkpoint (index-aligned with `cps`); the `protected` ones
/// keep their score but get no rank, since eviction never picks them.
pub fn standings(
    policy: Policy,
    cps: &[Checkpoint],
    now: u64,
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
    for r in eviction_order(policy, cps, now) {
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

/// Read the texts `policy` needs that a scan without texts skipped: those
/// of `continued` checkpoints and of every longer checkpoint of the same
/// model that could supersede one. A file that vanished or changed size
/// meanwhile keeps no text (it neither is nor supersedes).
pub fn load_needed_texts(policy: Policy, cps: &mut [Checkpoint]) {
    if !policy.needs_texts() {
        return;
    }
    let mut shortest: std::collections::HashMap<u8, u32> = std::collections::HashMap::new();
    for c in cps.iter().filter(|c| c.header.reason == Reason::CONTINUED) {
        let e = shortest.entry(c.header.model_id).or_insert(u32::MAX);
        *e = (*e).min(c.text_len);
    }
    let needed = |c: &Checkpoint| {
        c.text.is_none()
            && shortest
                .get(&c.header.model_id)
                .is_some_and(|&min| c.text_len >= min)
    };
    let load = |c: &mut Checkpoint| c.text = crate::scan::reread_text(c);
    // Each read is an open, a pread and a close: in a large directory
    // that is most of a listing's time, so spread it over rayon's pool.
    if cps.len() >= PARALLEL_MIN_TEXTS {
        cps.par_iter_mut().filter(|c| needed(c)).for_each(load);
    } else {
        cps.iter_mut().filter(|c| needed(c)).for_each(load);
    }
}

/// Below this many checkpoints texts are read on the calling thread:
/// starting rayon's pool would cost more than it saves.
const PARALLEL_MIN_TEXTS: usize = 64;

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
        let key = crate::Key::Hash(format!("{n:02x}").repeat(20));
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

    #[test]
    fn ties_and_lru_go_by_the_raw_last_used() {
        // Same score (no hits, same size and tokens). b was never used
        // (last_used 0) but created after a was last used: the engines
        // compare last_used itself, so b goes first.
        let a = checkpoint(0xaa, 100, 500);
        let b = checkpoint(0xbb, 900, 0);
        let cps = [a, b];
        for policy in [Policy::Ds4Classic, Policy::Lru] {
            let order: Vec<usize> = eviction_order(policy, &cps, 10_000)
                .iter()
                .map(|r| r.index)
                .collect();
            assert_eq!(order, [1, 0], "{policy}");
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
    }

    #[test]
    fn ds4_doubles_anchors_and_shrinks_superseded_waypoints() {
        let now = 1_000_000;
        let cold = score(Policy::Ds4, &input(1000, 0, now, 1000, 1), now).unwrap();
        assert_eq!(cold, 2.0);
        let mut w = input(1000, 1, now, 1000, 2);
        w.superseded = true;
        // eff 1 → h 0.5 → factor 0.275; (1 + 1) × 1 × 0.275.
        let got = score(Policy::Ds4, &w, now).unwrap();
        assert!((got - 0.55).abs() < 1e-12, "{got}");
        w.hits = 0;
        assert!((score(Policy::Ds4, &w, now).unwrap() - 0.05).abs() < 1e-12);
    }
}
