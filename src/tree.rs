//! The prefix forest of a cache directory: which checkpoint's text extends
//! which, each checkpoint under its longest stored proper prefix.
//!
//! Computed with [`crate::prefix`]'s streaming prefix hashes, never by
//! holding texts: texts are read shortest first, each once, through a
//! [`prefix::Matcher`] over the shorter ones already indexed, which also
//! gives the text's own SHA-1 and boundary digest for its needle. The work
//! is O(total text) plus one SHA-1 finalization per boundary where a
//! shorter text of the same model ends, and one per stored length met
//! there. Memory: a few dozen bytes per checkpoint, plus its title.
//!
//! The relation is the texts' own, by their SHA-1 (not by file names, as
//! ds4's lookup is): a mislabelled file still takes its place. Only texts
//! of the same model id are related (ds4 never loads one model's
//! checkpoint for another). An empty text is nobody's prefix here, as it
//! is never superseded in ds4 (FORMAT.md §8): it stands alone. Equal texts
//! (possible under other names: `sysprompt.kv`, an agent session named by
//! its identity, an upper-case name) hang under the first of them by name,
//! marked `equal`.

use crate::format::Engine;
use crate::policy::{Policy, PolicyFrom, Standing};
use crate::prefix::{self, Index, Needle, Sha1Digest};
use crate::scan::{self, Checkpoint, Scan, ScanOptions};
use crate::text;
use std::collections::HashMap;
use std::path::Path;

/// Bytes of each text kept to find its title in (the first user turn:
/// ds4 cuts titles at 70 bytes, and the turn starts after the system
/// prompt).
pub const TITLE_PREFIX: usize = 16 << 10;

/// How a node hangs under its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// A root: no stored text is a proper prefix of its text.
    Root,
    /// Its parent's text is the longest stored proper prefix of its own.
    Prefix,
    /// Its text equals its parent's.
    Equal,
}

/// One checkpoint in the forest.
#[derive(Clone, Debug)]
pub struct Node {
    /// Index into the scan's checkpoints.
    pub checkpoint: usize,
    /// Index of the parent node (nodes are index-aligned with the scan's
    /// checkpoints).
    pub parent: Option<usize>,
    pub link: Link,
    pub depth: u32,
    pub children: Vec<usize>,
    /// The chain (tree) it belongs to, an index into [`Forest::chains`].
    pub chain: usize,
    /// Raw title bytes (sanitize before showing).
    pub title: Option<Vec<u8>>,
    /// The text could not be read (the file vanished or changed since the
    /// scan): it stands alone.
    pub unread: bool,
    /// The engine's ranking: a superseded waypoint, its eviction rank.
    pub superseded: bool,
    pub rank: Option<usize>,
}

impl Node {
    /// Another stored checkpoint extends or repeats its text: every prompt
    /// it serves starts with a text that is stored longer too.
    pub fn covered(&self) -> bool {
        !self.children.is_empty()
    }
}

/// One tree of the forest.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Chain {
    /// The root node.
    pub root: usize,
    pub nodes: u64,
    pub bytes: u64,
    /// Deepest level below the root (0 for a lone checkpoint).
    pub depth: u32,
    pub leaves: u64,
    /// Checkpoints of the chain whose text another of the chain extends or
    /// repeats (they hold no prefix of their own), and their bytes.
    pub covered: u64,
    pub covered_bytes: u64,
}

/// The forest of one directory.
#[derive(Clone, Debug)]
pub struct Forest {
    pub nodes: Vec<Node>,
    /// Largest first (bytes, then the root's name).
    pub chains: Vec<Chain>,
    /// Node indices, chain by chain, each chain depth first (children by
    /// text length, then name).
    pub preorder: Vec<usize>,
}

/// What one streaming read of a text gives.
struct Read {
    full: Sha1Digest,
    at_boundary: Sha1Digest,
    title: Option<Vec<u8>>,
    /// Needles (shorter texts) the text extends, shortest first.
    found: Vec<usize>,
}

/// Stream a checkpoint's text once through a matcher over the shorter
/// texts already indexed: what it extends, its SHA-1, its digest at
/// [`prefix::boundary`] (for its own needle), and its title from the
/// first [`TITLE_PREFIX`] bytes. `None` when the text cannot be read as
/// scanned.
fn read_text(c: &Checkpoint, index: &Index, titles: bool) -> Option<Read> {
    let len = c.text_len as u64;
    let b = if len > 0 { prefix::boundary(len) } else { 0 };
    let mut m = index.matcher(c.header.model_id, len, |_| true);
    let mut at_boundary = (b == 0).then(|| m.digest());
    let mut head = Vec::new();
    let ok = prefix::stream_text(c, len, &mut |mut d: &[u8]| {
        if titles && head.len() < TITLE_PREFIX {
            let n = (TITLE_PREFIX - head.len()).min(d.len());
            head.extend_from_slice(&d[..n]);
        }
        let pos = m.position();
        if at_boundary.is_none() && pos + d.len() as u64 >= b {
            let n = (b - pos) as usize;
            m.update(&d[..n]);
            at_boundary = Some(m.digest());
            d = &d[n..];
        }
        m.update(d);
    });
    if !ok {
        return None;
    }
    let full = m.digest();
    Some(Read {
        full,
        at_boundary: at_boundary.unwrap_or(full),
        title: titles.then(|| text::title(&head)).flatten(),
        found: m.finish(),
    })
}

/// Build the forest of a scan. `standings` (index-aligned with the scan's
/// checkpoints) give each node its superseded mark and rank.
///
/// Texts are read shortest first, each once: every proper prefix of a
/// text is shorter, so it is indexed by the time the text is streamed.
/// (One pass, on one thread; two passes in parallel, hashing every text
/// twice, measured slower on two cores.)
pub fn forest(scan: &Scan, standings: &[Standing], titles: bool) -> Forest {
    let cps = &scan.checkpoints;
    let n = cps.len();
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            checkpoint: i,
            parent: None,
            link: Link::Root,
            depth: 0,
            children: Vec::new(),
            chain: 0,
            title: None,
            unread: false,
            superseded: standings.get(i).is_some_and(|s| s.superseded),
            rank: standings.get(i).and_then(|s| s.rank),
        })
        .collect();
    // Shortest first; equal lengths by name (the scan's order).
    let mut by_len: Vec<usize> = (0..n).collect();
    by_len.sort_by_key(|&i| (cps[i].text_len, i));
    let mut index = Index::new();
    let mut of_needle: Vec<usize> = Vec::new();
    // Equal texts: the first by name represents them; the rest hang under it.
    let mut first: HashMap<(u8, u32, Sha1Digest), usize> = HashMap::new();
    // Needles of the length being read go in once it is done: a text
    // extends only strictly shorter ones.
    let mut waiting: Vec<(usize, Needle)> = Vec::new();
    let mut current = None;
    for &i in &by_len {
        let c = &cps[i];
        if current != Some(c.text_len) {
            for (i, needle) in waiting.drain(..) {
                index.insert(needle);
                of_needle.push(i);
            }
            current = Some(c.text_len);
        }
        let Some(r) = read_text(c, &index, titles) else {
            nodes[i].unread = true;
            continue;
        };
        nodes[i].title = r.title;
        if c.text_len == 0 {
            continue;
        }
        match first.entry((c.header.model_id, c.text_len, r.full)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                nodes[i].parent = Some(*e.get());
                nodes[i].link = Link::Equal;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
                if let Some(&id) = r.found.last() {
                    nodes[i].parent = Some(of_needle[id]);
                    nodes[i].link = Link::Prefix;
                }
                waiting.push((
                    i,
                    Needle {
                        group: c.header.model_id,
                        len: c.text_len as u64,
                        at_boundary: r.at_boundary,
                        name: r.full,
                    },
                ));
            }
        }
    }
    for i in 0..n {
        if let Some(p) = nodes[i].parent {
            nodes[p].children.push(i);
        }
    }
    for node in nodes.iter_mut() {
        node.children.sort_by(|&a, &b| {
            (cps[a].text_len, &cps[a].file).cmp(&(cps[b].text_len, &cps[b].file))
        });
    }
    // Chains, depth first from each root.
    let mut roots: Vec<usize> = (0..n).filter(|&i| nodes[i].parent.is_none()).collect();
    let mut chains = Vec::with_capacity(roots.len());
    let mut orders = Vec::with_capacity(roots.len());
    roots.sort_by(|a, b| cps[*a].file.cmp(&cps[*b].file));
    for &root in &roots {
        let mut chain = Chain {
            root,
            ..Chain::default()
        };
        let mut order = Vec::new();
        let mut stack = vec![(root, 0u32)];
        while let Some((i, depth)) = stack.pop() {
            let node = &mut nodes[i];
            node.depth = depth;
            node.chain = chains.len();
            order.push(i);
            let size = cps[i].size;
            chain.nodes += 1;
            chain.bytes += size;
            chain.depth = chain.depth.max(depth);
            if node.covered() {
                chain.covered += 1;
                chain.covered_bytes += size;
            } else {
                chain.leaves += 1;
            }
            stack.extend(node.children.iter().rev().map(|&c| (c, depth + 1)));
        }
        chains.push(chain);
        orders.push(order);
    }
    // Largest chains first.
    let mut by_size: Vec<usize> = (0..chains.len()).collect();
    by_size.sort_by(|&a, &b| {
        chains[b]
            .bytes
            .cmp(&chains[a].bytes)
            .then_with(|| cps[chains[a].root].file.cmp(&cps[chains[b].root].file))
    });
    let mut renumber = vec![0; chains.len()];
    for (new, &old) in by_size.iter().enumerate() {
        renumber[old] = new;
    }
    for node in nodes.iter_mut() {
        node.chain = renumber[node.chain];
    }
    let preorder = by_size.iter().flat_map(|&c| orders[c].clone()).collect();
    let chains = by_size.iter().map(|&c| chains[c].clone()).collect();
    Forest {
        nodes,
        chains,
        preorder,
    }
}

/// Options of `kvc tree`.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    pub engine: Option<Engine>,
    pub policy: Option<Policy>,
    pub now: u64,
    pub reject_different_quant: bool,
    pub titles: bool,
}

/// Scan `dir` (headers only), rank it as `kvc ls` does, and build its forest.
pub fn dir_forest(
    dir: &Path,
    opts: &TreeOptions,
) -> crate::Result<(Scan, (Policy, PolicyFrom), Forest)> {
    let scan = scan::scan_dir(
        dir,
        ScanOptions {
            read_text: false,
            engine: opts.engine,
        },
    )?;
    let policy = PolicyFrom::resolve(opts.policy, scan.engine.engine);
    let st = crate::stats::standings(&scan, policy.0, opts.now, opts.reject_different_quant);
    let f = forest(&scan, &st, opts.titles);
    Ok((scan, policy, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn checkpoint(i: usize, model: u8, text: Vec<u8>) -> Checkpoint {
        let key = crate::Key::Hash(format!("{i:040x}"));
        let mut c = Checkpoint::from_header(
            key.clone(),
            key.file_name().into(),
            100 + text.len() as u64,
            0o600,
            crate::Header {
                magic: *b"KVC",
                version: 1,
                quant_bits: 2,
                reason: crate::Reason::COLD,
                ext_flags: crate::ExtFlags(0),
                model_id: model,
                tokens: 10,
                hits: 0,
                ctx_size: 4096,
                payload_abi: 2,
                reserved: [0; 3],
                created: 1,
                last_used: 1,
                payload_bytes: 0,
            },
            text.len() as u32,
            Engine::Ds4,
        );
        c.text = Some(text);
        c
    }

    /// The forest by every pair compared: the parent is the longest
    /// strictly shorter non-empty text of the same model that is a prefix;
    /// an equal text hangs under the first one (by position).
    fn naive(cps: &[Checkpoint]) -> Vec<(Option<usize>, Link)> {
        let t = |i: usize| cps[i].text.as_deref().unwrap();
        (0..cps.len())
            .map(|i| {
                if t(i).is_empty() {
                    return (None, Link::Root);
                }
                let same = |j: usize| cps[j].header.model_id == cps[i].header.model_id;
                if let Some(j) = (0..i).find(|&j| same(j) && t(j) == t(i)) {
                    return (Some(j), Link::Equal);
                }
                let best = (0..cps.len())
                    .filter(|&j| same(j) && !t(j).is_empty() && t(j).len() < t(i).len())
                    .filter(|&j| t(i).starts_with(t(j)))
                    .max_by_key(|&j| (t(j).len(), std::cmp::Reverse(j)));
                // Of equal texts, the first represents them.
                let best = best.map(|j| (0..=j).find(|&k| same(k) && t(k) == t(j)).unwrap());
                match best {
                    Some(j) => (Some(j), Link::Prefix),
                    None => (None, Link::Root),
                }
            })
            .collect()
    }

    #[test]
    fn the_forest_agrees_with_every_pair_compared() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut linked = 0;
        for round in 0..300 {
            let n = 1 + rng.below(20) as usize;
            let mut texts: Vec<(u8, Vec<u8>)> = Vec::new();
            for _ in 0..n {
                let model = rng.below(2) as u8;
                let text = match (rng.below(6), texts.is_empty()) {
                    (0, _) => Vec::new(),
                    (1..=3, false) => {
                        let base = texts[rng.below(texts.len() as u64) as usize].1.clone();
                        let mut t = base;
                        match rng.below(4) {
                            0 => t.truncate(rng.below(t.len() as u64 + 1) as usize),
                            1 => {}
                            _ => {
                                let extra = [1, 2, 255, 256, 257, 600][rng.below(6) as usize];
                                t.extend((0..extra).map(|_| b"ab"[rng.below(2) as usize]));
                            }
                        }
                        t
                    }
                    _ => {
                        let len = [1, 255, 256, 257, 512, 513, 700][rng.below(7) as usize];
                        (0..len).map(|_| b"ab"[rng.below(2) as usize]).collect()
                    }
                };
                texts.push((model, text));
            }
            let cps: Vec<Checkpoint> = texts
                .into_iter()
                .enumerate()
                .map(|(i, (m, t))| checkpoint(i, m, t))
                .collect();
            let scan = Scan {
                checkpoints: cps,
                ..Scan::default()
            };
            let f = forest(&scan, &[], false);
            let got: Vec<(Option<usize>, Link)> =
                f.nodes.iter().map(|n| (n.parent, n.link)).collect();
            let want = naive(&scan.checkpoints);
            assert_eq!(got, want, "round {round}");
            linked += want.iter().filter(|w| w.0.is_some()).count();
            // Chains partition the nodes.
            assert_eq!(f.preorder.len(), scan.checkpoints.len());
            let total: u64 = f.chains.iter().map(|c| c.nodes).sum();
            assert_eq!(total as usize, scan.checkpoints.len());
        }
        assert!(linked > 300, "{linked}");
    }
}
