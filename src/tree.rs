//! The prefix forest of a cache directory: which checkpoint's text extends
//! which, each checkpoint under its longest stored proper prefix.
//!
//! Computed with [`crate::prefix`]'s streaming prefix hashes, never by
//! holding texts: each text is streamed twice, once to hash it (its SHA-1,
//! and its digest at its boundary), once through a [`prefix::Matcher`]
//! against every shorter text, so the work is O(total text) plus one SHA-1
//! finalization per boundary where some text of the same model ends
//! nearby. Memory: a few dozen bytes per checkpoint, plus its title.
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
use sha1::{Digest, Sha1};
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
struct Hashed {
    full: Sha1Digest,
    at_boundary: Sha1Digest,
    title: Option<Vec<u8>>,
}

/// Stream a checkpoint's text once: its SHA-1, its digest at
/// [`prefix::boundary`], and its title from the first [`TITLE_PREFIX`]
/// bytes. `None` when the text cannot be read as scanned.
fn hash_text(c: &Checkpoint, titles: bool) -> Option<Hashed> {
    let len = c.text_len as u64;
    let b = if len > 0 { prefix::boundary(len) } else { 0 };
    let mut sha = Sha1::new();
    let mut at_boundary = None;
    let mut pos = 0u64;
    let mut head = Vec::new();
    let ok = prefix::stream_text(c, len, &mut |mut d: &[u8]| {
        if titles && head.len() < TITLE_PREFIX {
            let n = (TITLE_PREFIX - head.len()).min(d.len());
            head.extend_from_slice(&d[..n]);
        }
        if at_boundary.is_none() && pos + d.len() as u64 >= b {
            let n = (b - pos) as usize;
            sha.update(&d[..n]);
            at_boundary = Some(sha.clone().finalize().into());
            pos += n as u64;
            d = &d[n..];
        }
        sha.update(d);
        pos += d.len() as u64;
    });
    if !ok {
        return None;
    }
    let at_boundary = at_boundary.unwrap_or_else(|| sha.clone().finalize().into());
    Some(Hashed {
        full: sha.finalize().into(),
        at_boundary,
        title: titles.then(|| text::title(&head)).flatten(),
    })
}

/// Below this many checkpoints texts are streamed on the calling thread.
const PARALLEL_MIN: usize = 64;

/// Build the forest of a scan. `standings` (index-aligned with the scan's
/// checkpoints) give each node its superseded mark and rank.
pub fn forest(scan: &Scan, standings: &[Standing], titles: bool) -> Forest {
    let cps = &scan.checkpoints;
    let n = cps.len();
    let hash_one = |c: &Checkpoint| hash_text(c, titles);
    let hashed: Vec<Option<Hashed>> = if n >= PARALLEL_MIN {
        cps.par_iter().map(hash_one).collect()
    } else {
        cps.iter().map(hash_one).collect()
    };
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            checkpoint: i,
            parent: None,
            link: Link::Root,
            depth: 0,
            children: Vec::new(),
            chain: 0,
            title: None,
            unread: hashed[i].is_none(),
            superseded: standings.get(i).is_some_and(|s| s.superseded),
            rank: standings.get(i).and_then(|s| s.rank),
        })
        .collect();
    // Equal texts: the first by name represents them; the rest hang under it.
    let mut index = Index::new();
    let mut of_needle = Vec::new();
    let mut first: HashMap<(u8, u32, Sha1Digest), usize> = HashMap::new();
    let mut streamed = Vec::new();
    for (i, h) in hashed.iter().enumerate() {
        let Some(h) = h else { continue };
        let c = &cps[i];
        if c.text_len == 0 {
            continue;
        }
        match first.entry((c.header.model_id, c.text_len, h.full)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                nodes[i].parent = Some(*e.get());
                nodes[i].link = Link::Equal;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
                index.insert(Needle {
                    group: c.header.model_id,
                    len: c.text_len as u64,
                    at_boundary: h.at_boundary,
                    name: h.full,
                });
                of_needle.push(i);
                streamed.push(i);
            }
        }
    }
    // Each representative under its longest stored proper prefix.
    let parent_of = |&i: &usize| {
        let c = &cps[i];
        let (group, len) = (c.header.model_id, c.text_len as u64);
        let mut m = index.matcher(group, len, |_| true);
        let ok = prefix::stream_text(c, index.needed(group, len), &mut |d| m.update(d));
        let found = m.finish();
        (
            i,
            ok.then(|| found.last().map(|&id| of_needle[id])).flatten(),
        )
    };
    let parents: Vec<(usize, Option<usize>)> = if streamed.len() >= PARALLEL_MIN {
        streamed.par_iter().map(parent_of).collect()
    } else {
        streamed.iter().map(parent_of).collect()
    };
    for (i, p) in parents {
        if let Some(p) = p {
            nodes[i].parent = Some(p);
            nodes[i].link = Link::Prefix;
        }
    }
    for (i, h) in hashed.into_iter().enumerate() {
        nodes[i].title = h.and_then(|h| h.title);
    }
    for i in 0..n {
        if let Some(p) = nodes[i].parent {
            nodes[p].children.push(i);
        }
    }
    let order_key = |&i: &usize| (cps[i].text_len, cps[i].file.clone());
    for node in nodes.iter_mut() {
        node.children.sort_by_key(order_key);
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
