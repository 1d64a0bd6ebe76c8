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
use rayon::prelude::*;
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

/// No node: a root's parent, a leaf's first child, a last sibling's next.
const NONE: u32 = u32::MAX;

/// One checkpoint in the forest, index-aligned with the scan's
/// checkpoints. Compact (36 bytes, the title kept in [`Forest`]): a tree
/// of 100,000 checkpoints is held beside the scan.
#[derive(Clone, Debug)]
pub struct Node {
    parent: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
    /// The chain (tree) it belongs to, an index into [`Forest::chains`].
    pub chain: u32,
    pub depth: u32,
    rank: u32,
    /// Its title in [`Forest`]'s title bytes: start and length.
    title_at: u32,
    title_len: u16,
    pub link: Link,
    /// The text could not be read (the file vanished or changed since the
    /// scan): it stands alone.
    pub unread: bool,
    /// The engine's ranking marks it a superseded waypoint.
    pub superseded: bool,
}

impl Node {
    /// Index of the parent node.
    pub fn parent(&self) -> Option<usize> {
        (self.parent != NONE).then_some(self.parent as usize)
    }

    /// Another stored checkpoint extends or repeats its text: every prompt
    /// it serves starts with a text that is stored longer too.
    pub fn covered(&self) -> bool {
        self.first_child != NONE
    }

    /// The last of its parent's children (or a root).
    pub fn is_last_child(&self) -> bool {
        self.next_sibling == NONE
    }

    /// Its eviction rank under the engine's policy (1 = first victim).
    pub fn rank(&self) -> Option<usize> {
        (self.rank != NONE).then_some(self.rank as usize)
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
    /// Index-aligned with the scan's checkpoints.
    pub nodes: Vec<Node>,
    /// Every title's raw bytes, one after another (sanitize before showing).
    titles: Vec<u8>,
    /// Largest first (bytes, then the root's name).
    pub chains: Vec<Chain>,
    /// Node indices, chain by chain, each chain depth first (children by
    /// text length, then name).
    pub preorder: Vec<usize>,
}

impl Forest {
    /// A node's title, raw (sanitize before showing).
    pub fn title(&self, i: usize) -> Option<&[u8]> {
        let n = &self.nodes[i];
        (n.title_len > 0)
            .then(|| &self.titles[n.title_at as usize..n.title_at as usize + n.title_len as usize])
    }

    /// A node's children, by text length then name.
    pub fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let mut next = self.nodes[i].first_child;
        std::iter::from_fn(move || {
            (next != NONE).then(|| {
                let c = next as usize;
                next = self.nodes[c].next_sibling;
                c
            })
        })
    }
}

/// What one streaming read of a text gives.
struct Read {
    full: Sha1Digest,
    at_boundary: Sha1Digest,
    title: Option<Vec<u8>>,
    /// Needles (shorter texts) the text extends, shortest first.
    found: Vec<usize>,
}

fn accept_all(_: usize) -> bool {
    true
}

/// One text being read through a matcher over the shorter texts already
/// indexed: what it extends, its SHA-1, its digest at
/// [`prefix::boundary`] (for its own needle), and its title from the
/// first [`TITLE_PREFIX`] bytes.
struct Feed<'a> {
    m: prefix::Matcher<'a, fn(usize) -> bool>,
    b: u64,
    at_boundary: Option<Sha1Digest>,
    head: Vec<u8>,
    titles: bool,
}

impl<'a> Feed<'a> {
    fn new(c: &Checkpoint, index: &'a Index, titles: bool) -> Feed<'a> {
        let len = c.text_len as u64;
        let b = if len > 0 { prefix::boundary(len) } else { 0 };
        let m = index.matcher(c.header.model_id, len, accept_all as fn(usize) -> bool);
        Feed {
            at_boundary: (b == 0).then(|| m.digest()),
            m,
            b,
            head: Vec::new(),
            titles,
        }
    }

    fn feed(&mut self, mut d: &[u8]) {
        if self.titles && self.head.len() < TITLE_PREFIX {
            let n = (TITLE_PREFIX - self.head.len()).min(d.len());
            self.head.extend_from_slice(&d[..n]);
        }
        let pos = self.m.position();
        if self.at_boundary.is_none() && pos + d.len() as u64 >= self.b {
            let n = (self.b - pos) as usize;
            self.m.update(&d[..n]);
            self.at_boundary = Some(self.m.digest());
            d = &d[n..];
        }
        self.m.update(d);
    }

    fn finish(self) -> Read {
        let full = self.m.digest();
        Read {
            full,
            at_boundary: self.at_boundary.unwrap_or(full),
            title: self.titles.then(|| text::title(&self.head)).flatten(),
            found: self.m.finish(),
        }
    }
}

/// Hang every text under its longest stored proper prefix (or its equal),
/// reading the texts in `by_len` order through `source`, which feeds a
/// text's bytes and says whether it read whole.
///
/// Texts of one length extend only shorter ones, all indexed by the time
/// that length is reached: they are read in parallel, a batch at a time
/// (memory stays at a batch's results), then linked in `by_len` order, so
/// the forest does not depend on the threads.
fn link(
    cps: &[Checkpoint],
    by_len: &[usize],
    titles: bool,
    nodes: &mut [Node],
    title_bytes: &mut Vec<u8>,
    source: &(dyn for<'x> Fn(usize, &mut Feed<'x>) -> bool + Sync),
) {
    let mut index = Index::new();
    let mut l = Linker {
        nodes,
        title_bytes,
        of_needle: Vec::new(),
        first: HashMap::new(),
        waiting: Vec::new(),
    };
    for same_len in by_len.chunk_by(|&a, &b| cps[a].text_len == cps[b].text_len) {
        for (i, needle) in l.waiting.drain(..) {
            index.insert(needle);
            l.of_needle.push(i as u32);
        }
        l.first.clear();
        for batch in same_len.chunks(LINK_BATCH) {
            let reads: Vec<Option<Read>> = batch
                .par_iter()
                .map(|&i| {
                    let mut feed = Feed::new(&cps[i], &index, titles);
                    source(i, &mut feed).then(|| feed.finish())
                })
                .collect();
            for (&i, r) in batch.iter().zip(reads) {
                l.link(&cps[i], i, r);
            }
        }
    }
}

/// Texts of one length read at once by [`link`].
const LINK_BATCH: usize = 1024;

/// What [`link`] builds and keeps from one length to the next.
struct Linker<'a> {
    nodes: &'a mut [Node],
    title_bytes: &'a mut Vec<u8>,
    /// The text of each needle in the index, by needle id.
    of_needle: Vec<u32>,
    /// Equal texts (same model, same length, same SHA-1): the first by
    /// name represents them; the rest hang under it. Only texts of the
    /// length being read can be equal, so the map holds one length at a
    /// time.
    first: HashMap<(u8, Sha1Digest), u32>,
    /// Needles of the length being read go in once it is done: a text
    /// extends only strictly shorter ones.
    waiting: Vec<(usize, Needle)>,
}

impl Linker<'_> {
    /// Link text `i` (`c`), read as `r` (`None`: not read whole).
    fn link(&mut self, c: &Checkpoint, i: usize, r: Option<Read>) {
        let nodes = &mut *self.nodes;
        let Some(r) = r else {
            nodes[i].unread = true;
            return;
        };
        if let Some(t) = r.title {
            let len = t.len().min(u16::MAX as usize);
            nodes[i].title_at = self.title_bytes.len() as u32;
            nodes[i].title_len = len as u16;
            self.title_bytes.extend_from_slice(&t[..len]);
        }
        if c.text_len == 0 {
            return;
        }
        let parent = match self.first.entry((c.header.model_id, r.full)) {
            std::collections::hash_map::Entry::Occupied(e) => Some((*e.get(), Link::Equal)),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i as u32);
                self.waiting.push((
                    i,
                    Needle {
                        group: c.header.model_id,
                        len: c.text_len as u64,
                        at_boundary: r.at_boundary,
                        name: r.full,
                    },
                ));
                r.found.last().map(|&id| (self.of_needle[id], Link::Prefix))
            }
        };
        // Children are appended in reading order: by text length, then
        // name, the order they are shown in.
        if let Some((p, link)) = parent {
            nodes[i].parent = p;
            nodes[i].link = link;
            let p = p as usize;
            match nodes[p].last_child {
                NONE => nodes[p].first_child = i as u32,
                last => nodes[last as usize].next_sibling = i as u32,
            }
            nodes[p].last_child = i as u32;
        }
    }
}

/// Build the forest of a scan. `standings` (index-aligned with the scan's
/// checkpoints) give each node its superseded mark and rank.
///
/// Texts are read shortest first, each once: every proper prefix of a
/// text is shorter, so it is indexed by the time the text is streamed.
/// Texts of the same length are read in parallel (see [`link`]). Tried
/// before and dropped: reading ahead on a second thread (a bounded
/// channel of 64 KiB pieces) cost more CPU in hand-offs than it saved
/// (2.2-2.6 s against 1.6-1.7 s at 100,000), and two passes in parallel
/// hash every text twice.
pub fn forest(scan: &Scan, standings: &[Standing], titles: bool) -> Forest {
    build(scan, nodes_of(standings, scan.checkpoints.len()), titles)
}

/// The `n` nodes before linking, with their ranks and superseded marks.
fn nodes_of(standings: &[Standing], n: usize) -> Vec<Node> {
    (0..n)
        .map(|i| Node {
            parent: NONE,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            chain: 0,
            depth: 0,
            rank: standings
                .get(i)
                .and_then(|s| s.rank)
                .map_or(NONE, |r| u32::try_from(r).unwrap_or(NONE - 1)),
            title_at: 0,
            title_len: 0,
            link: Link::Root,
            unread: false,
            superseded: standings.get(i).is_some_and(|s| s.superseded),
        })
        .collect()
}

fn build(scan: &Scan, mut nodes: Vec<Node>, titles: bool) -> Forest {
    let cps = &scan.checkpoints;
    let n = cps.len();
    let mut title_bytes = Vec::new();
    // Shortest first; equal lengths by name (the scan's order).
    let mut by_len: Vec<usize> = (0..n).collect();
    by_len.sort_by_key(|&i| (cps[i].text_len, i));
    link(
        cps,
        &by_len,
        titles,
        &mut nodes,
        &mut title_bytes,
        &|i, feed| prefix::stream_text(&cps[i], cps[i].text_len as u64, &mut |d| feed.feed(d)),
    );
    // Chains, depth first from each root.
    let mut roots: Vec<usize> = (0..n).filter(|&i| nodes[i].parent == NONE).collect();
    let mut chains = Vec::with_capacity(roots.len());
    let mut orders = Vec::with_capacity(roots.len());
    roots.sort_by(|a, b| cps[*a].cmp_file(&cps[*b]));
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
            node.chain = chains.len() as u32;
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
            let at = stack.len();
            let mut c = node.first_child;
            while c != NONE {
                stack.push((c as usize, depth + 1));
                c = nodes[c as usize].next_sibling;
            }
            stack[at..].reverse();
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
            .then_with(|| cps[chains[a].root].cmp_file(&cps[chains[b].root]))
    });
    let mut renumber = vec![0; chains.len()];
    for (new, &old) in by_size.iter().enumerate() {
        renumber[old] = new;
    }
    for node in nodes.iter_mut() {
        node.chain = renumber[node.chain as usize] as u32;
    }
    let mut preorder = Vec::with_capacity(n);
    for &c in &by_size {
        preorder.append(&mut orders[c]);
    }
    let chains = by_size.iter().map(|&c| chains[c].clone()).collect();
    Forest {
        nodes,
        titles: title_bytes,
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
    let scan = scan::scan_dir(dir, ScanOptions::headers(opts.engine))?;
    let policy = PolicyFrom::resolve(opts.policy, scan.engine.engine);
    let st = scan.standings(&crate::policy::RankOptions {
        policy: policy.0,
        now: opts.now,
        reject_different_quant: opts.reject_different_quant,
    });
    // The standings live on in the nodes: dropped before the texts are
    // read, when the index grows (4 MB at 100,000).
    let nodes = nodes_of(&st, scan.checkpoints.len());
    drop(st);
    let f = build(&scan, nodes, opts.titles);
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

    /// A checkpoint written to `dir` (the forest streams texts from the
    /// files, as it does in a real directory).
    fn checkpoint(dir: &std::path::Path, i: usize, model: u8, text: &[u8]) -> Checkpoint {
        let key = crate::Key::from_hex(&format!("{i:040x}")).unwrap();
        let c = Checkpoint::from_header(
            key.clone(),
            dir.join(key.file_name()),
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
        let mut bytes = c.header.encode().to_vec();
        bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
        bytes.extend_from_slice(text);
        std::fs::write(c.path(), bytes).unwrap();
        c
    }

    /// The forest by every pair compared: the parent is the longest
    /// strictly shorter non-empty text of the same model that is a prefix;
    /// an equal text hangs under the first one (by position).
    fn naive(cps: &[Checkpoint], texts: &[Vec<u8>]) -> Vec<(Option<usize>, Link)> {
        let t = |i: usize| texts[i].as_slice();
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
            let n = if round % 10 == 0 {
                60 + rng.below(80) as usize
            } else {
                1 + rng.below(20) as usize
            };
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
            let dir = tempfile::tempdir().unwrap();
            let cps: Vec<Checkpoint> = texts
                .iter()
                .enumerate()
                .map(|(i, (m, t))| checkpoint(dir.path(), i, *m, t))
                .collect();
            let texts: Vec<Vec<u8>> = texts.into_iter().map(|(_, t)| t).collect();
            let scan = Scan {
                checkpoints: cps,
                ..Scan::default()
            };
            let f = forest(&scan, &[], false);
            let got: Vec<(Option<usize>, Link)> =
                f.nodes.iter().map(|n| (n.parent(), n.link)).collect();
            let want = naive(&scan.checkpoints, &texts);
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
