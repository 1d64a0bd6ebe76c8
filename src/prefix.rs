//! Which stored text is a prefix of which, found by streaming SHA-1 over
//! each text once and holding only hashes (never the texts).
//!
//! ds4 decides "the prompt extends this checkpoint" by hashing the prompt's
//! first `text_len` bytes and comparing the digest with the checkpoint's
//! **file name** (FORMAT.md §7, §8; `ds4_kvstore_find_text_prefix` and
//! `kv_cache_incoming_supersedes_continued` in ds4_kvstore.c at mainline
//! b030961). Doing that for every (longer text, shorter checkpoint) pair
//! costs O(n² · L); holding the texts to compare them costs their size in
//! memory. This module does neither:
//!
//! - Each *needle* (a text to be found as a prefix: ds4's stored
//!   checkpoint) is indexed by its group (ds4: the model id), its boundary
//!   `B` = the largest multiple of [`STRIDE`] below its length, and the
//!   SHA-1 of its first `B` bytes. Under that key the index keeps the
//!   distinct lengths in `(B, B + STRIDE]`, each with the names to match.
//! - A longer text is streamed once through SHA-1 by a [`Matcher`]. At every
//!   boundary where its group has needles it finalizes a copy of the running
//!   state and looks the digest up; where it matches, it finalizes a copy at
//!   each listed length `L` below its own length and compares the digest with
//!   the names there.
//!
//! A match is exactly ds4's test (SHA-1 of the longer text's prefix of the
//! needle's length = the needle's name) whenever a needle's name is the
//! SHA-1 of its own text, as every ds4-server checkpoint's is: then its
//! boundary digest is also the longer text's. A needle whose name is not its
//! text's hash (a mislabelled file) may be missed, never falsely matched.
//!
//! Cost: every byte of every streamed text is hashed once; each boundary
//! with needles costs one extra finalization (one SHA-1 block), and each
//! length visited one more. Memory: a few dozen bytes per needle.

use crate::format::{Header, HEADER_LEN, PREFIX_LEN, TEXT_OFFSET};
use crate::scan::Checkpoint;
use sha1::{Digest, Sha1};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;

/// Needles are indexed at multiples of this many bytes of their text.
pub(crate) const STRIDE: u64 = 256;

/// A SHA-1 digest.
pub(crate) type Sha1Digest = [u8; 20];

/// The boundary of a text of `len > 0` bytes: the largest multiple of
/// [`STRIDE`] strictly below `len`, so that `len` lies in
/// `(boundary, boundary + STRIDE]`.
pub fn boundary(len: u64) -> u64 {
    debug_assert!(len > 0);
    (len.saturating_sub(1) / STRIDE) * STRIDE
}

/// A text to be found as a prefix of longer ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Needle {
    /// Only texts of the same group are compared (ds4: the model id).
    pub group: u8,
    /// Its length in bytes; never 0 (ds4 never supersedes an empty text).
    pub len: u64,
    /// SHA-1 of its first [`boundary`]`(len)` bytes.
    pub at_boundary: Sha1Digest,
    /// What a longer text's prefix of `len` bytes must hash to: ds4's file
    /// name.
    pub name: Sha1Digest,
}

/// A needle as the index keeps it (28 bytes): its length, its name, and
/// the next needle of its node.
#[derive(Debug)]
struct Entry {
    len: u32,
    name: Sha1Digest,
    /// The next needle of the same node, by length (equal lengths in
    /// insertion order); [`END`] for the last.
    next: u32,
}

/// No next needle.
const END: u32 = u32::MAX;

/// What a node is keyed by: (group, boundary, digest at the boundary).
/// Boundaries lie below a text's length, a `u32`.
type NodeKey = (u8, u32, Sha1Digest);

/// Needles by (group, boundary, boundary digest): hashes only. About 60
/// bytes a needle: its entry, and its node's slot in the map (first and
/// last needle), where a node with a vector of lengths, each with a vector
/// of names, and a copy of every needle cost 190 (18 MB of `kvc tree`'s
/// 67 MB at 100,000 checkpoints).
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<Entry>,
    /// Each node's first and last needle (the list runs through `next`).
    nodes: HashMap<NodeKey, (u32, u32)>,
    /// (group, boundary) pairs that have a node: a matcher finalizes a
    /// digest only there.
    boundaries: HashSet<(u8, u64)>,
    /// The longest needle of each group: a matcher need not read further.
    longest: HashMap<u8, u64>,
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    /// Add a needle; its id is its position in insertion order.
    pub fn insert(&mut self, n: Needle) -> usize {
        assert!(n.len > 0, "an empty text is nobody's prefix here");
        let len = u32::try_from(n.len).expect("texts are shorter than 4 GiB (text_len is a u32)");
        let id = u32::try_from(self.entries.len()).expect("fewer than 4 billion needles");
        self.entries.push(Entry {
            len,
            name: n.name,
            next: END,
        });
        let b = boundary(n.len);
        self.boundaries.insert((n.group, b));
        let longest = self.longest.entry(n.group).or_insert(0);
        *longest = (*longest).max(n.len);
        let key = (n.group, b as u32, n.at_boundary);
        match self.nodes.get_mut(&key) {
            None => {
                self.nodes.insert(key, (id, id));
            }
            // Longest so far (tree inserts shortest first): append.
            Some((_, last)) if self.entries[*last as usize].len <= len => {
                self.entries[*last as usize].next = id;
                *last = id;
            }
            Some((first, _)) if self.entries[*first as usize].len > len => {
                self.entries[id as usize].next = *first;
                *first = id;
            }
            Some((first, _)) => {
                // After the last needle not longer than it.
                let mut at = *first;
                loop {
                    let next = self.entries[at as usize].next;
                    if next == END || self.entries[next as usize].len > len {
                        break;
                    }
                    at = next;
                }
                self.entries[id as usize].next = self.entries[at as usize].next;
                self.entries[at as usize].next = id;
            }
        }
        id as usize
    }

    /// The longest needle of `group`, 0 when it has none.
    pub fn longest(&self, group: u8) -> u64 {
        self.longest.get(&group).copied().unwrap_or(0)
    }

    /// How many bytes of a text of `len` bytes in `group` a matcher needs:
    /// up to the longest needle shorter than it.
    pub fn needed(&self, group: u8, len: u64) -> u64 {
        self.longest(group).min(len.saturating_sub(1))
    }

    /// A matcher for one text of `group` that is `len` bytes long: it
    /// reports the needles strictly shorter than `len` whose name is the
    /// SHA-1 of the text's prefix of their length, among those `accept`
    /// takes (asked before any hashing is spent on a length, so a caller can
    /// skip needles it has settled already).
    pub(crate) fn matcher<F: Fn(usize) -> bool>(
        &self,
        group: u8,
        len: u64,
        accept: F,
    ) -> Matcher<'_, F> {
        let mut m = Matcher {
            index: self,
            group,
            below: len,
            accept,
            sha: Sha1::new(),
            pos: 0,
            next: END,
            found: Vec::new(),
        };
        m.at_boundary();
        m
    }
}

/// Streams one text and collects the needles it extends (see [`Index::matcher`]).
pub(crate) struct Matcher<'a, F> {
    index: &'a Index,
    group: u8,
    /// Only needles strictly shorter than this (the text's own length).
    below: u64,
    accept: F,
    sha: Sha1,
    /// Bytes hashed so far.
    pos: u64,
    /// The next needle to reach of the node matched at the last boundary
    /// ([`END`]: none).
    next: u32,
    found: Vec<usize>,
}

impl<F: Fn(usize) -> bool> Matcher<'_, F> {
    /// At a boundary: look up the node of the prefix hashed so far.
    fn at_boundary(&mut self) {
        self.next = END;
        let b = self.pos;
        // Every length under this boundary is > b: none is below the text's
        // own length when b + 1 >= it.
        if b + 1 >= self.below || !self.index.boundaries.contains(&(self.group, b)) {
            return;
        }
        let digest: Sha1Digest = self.sha.clone().finalize().into();
        if let Some(&(first, _)) = self.index.nodes.get(&(self.group, b as u32, digest)) {
            self.next = first;
        }
    }

    /// The next length worth stopping at, skipping lengths no accepted
    /// needle has.
    fn next_len(&mut self) -> Option<u64> {
        let entries = &self.index.entries;
        while self.next != END {
            let len = entries[self.next as usize].len;
            if len as u64 >= self.below {
                self.next = END;
                return None;
            }
            let mut at = self.next;
            while at != END && entries[at as usize].len == len {
                if (self.accept)(at as usize) {
                    return Some(len as u64);
                }
                at = entries[at as usize].next;
            }
            self.next = at;
        }
        None
    }

    /// Hash the next bytes of the text.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let next_boundary = (self.pos / STRIDE + 1) * STRIDE;
            let stop = self
                .next_len()
                .map_or(next_boundary, |len| len.min(next_boundary));
            let n = (stop - self.pos).min(data.len() as u64) as usize;
            self.sha.update(&data[..n]);
            self.pos += n as u64;
            data = &data[n..];
            let entries = &self.index.entries;
            if self.next != END && entries[self.next as usize].len as u64 == self.pos {
                let digest: Sha1Digest = self.sha.clone().finalize().into();
                let len = entries[self.next as usize].len;
                let mut at = self.next;
                while at != END && entries[at as usize].len == len {
                    let e = &entries[at as usize];
                    if e.name == digest && (self.accept)(at as usize) {
                        self.found.push(at as usize);
                    }
                    at = e.next;
                }
                self.next = at;
            }
            if self.pos == next_boundary {
                self.at_boundary();
            }
        }
    }

    /// The SHA-1 of every byte given so far: a caller that streams a whole
    /// text through the matcher gets its digest (and, asked at the right
    /// moment, its digest at a boundary) without hashing it twice.
    pub fn digest(&self) -> Sha1Digest {
        self.sha.clone().finalize().into()
    }

    /// Bytes given so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The needles found, in the order their lengths were reached.
    pub fn finish(self) -> Vec<usize> {
        self.found
    }
}

/// The needles that `text` (of `group`) extends: one call of a [`Matcher`].
#[cfg(test)]
pub(crate) fn extended_by(
    index: &Index,
    group: u8,
    text: &[u8],
    accept: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let len = text.len() as u64;
    let mut m = index.matcher(group, len, accept);
    m.update(&text[..index.needed(group, len) as usize]);
    m.finish()
}

/// The SHA-1 of a needle's text at its boundary, from the text itself.
#[cfg(test)]
pub(crate) fn boundary_digest(text: &[u8]) -> Sha1Digest {
    let b = boundary(text.len() as u64) as usize;
    Sha1::digest(&text[..b]).into()
}

/// The 20 bytes a 40-hex-digit key names.
pub(crate) fn key_digest(key: &crate::Key) -> Option<Sha1Digest> {
    match key {
        crate::Key::Hash(hex) => Some(hex.digest()),
        crate::Key::Sysprompt => None,
    }
}

/// Read buffer for streaming a text from its file.
const READ_CHUNK: usize = 64 << 10;

/// Feed the first `len` bytes of a checkpoint's text to `f`, streamed from
/// the file through a small buffer (a scan never holds texts). False when the file vanished, or no longer has the header and
/// `text_len` the scan saw (it was replaced: its text is not this
/// checkpoint's), or is shorter than its text; `f` may then have seen part
/// of the text.
pub fn stream_text(c: &Checkpoint, len: u64, f: &mut dyn FnMut(&[u8])) -> bool {
    let len = len.min(c.text_len as u64);
    let Ok(file) = c.open() else {
        return false;
    };
    let mut prefix = [0u8; PREFIX_LEN];
    if file.read_exact_at(&mut prefix, 0).is_err() {
        return false;
    }
    let header = Header::decode(prefix[..HEADER_LEN].try_into().expect("48 bytes"));
    let text_len = u32::from_le_bytes(prefix[HEADER_LEN..].try_into().expect("4 bytes"));
    if header != c.header || text_len != c.text_len {
        return false;
    }
    let mut buf = vec![0u8; READ_CHUNK.min(len as usize)];
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(buf.len() as u64) as usize;
        if file
            .read_exact_at(&mut buf[..n], TEXT_OFFSET + pos)
            .is_err()
        {
            return false;
        }
        f(&buf[..n]);
        pos += n as u64;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> Sha1Digest {
        Sha1::digest(b).into()
    }

    /// xorshift: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// One text of a random set: its group and ctx (a stand-in for any
    /// filter a caller applies through `accept`).
    #[derive(Clone, Debug)]
    struct T {
        group: u8,
        ctx: u32,
        text: Vec<u8>,
    }

    /// The reference: every pair, the engine's test verbatim (strictly
    /// shorter, same group, not empty, filter, SHA-1 of the prefix = name).
    fn naive(ts: &[T]) -> Vec<bool> {
        ts.iter()
            .map(|w| {
                !w.text.is_empty()
                    && ts.iter().any(|s| {
                        w.text.len() < s.text.len()
                            && w.group == s.group
                            && s.ctx <= w.ctx
                            && sha(&s.text[..w.text.len()]) == sha(&w.text)
                    })
            })
            .collect()
    }

    fn indexed(ts: &[T]) -> Vec<bool> {
        let mut index = Index::new();
        let mut ids = Vec::new();
        for (i, t) in ts.iter().enumerate() {
            if !t.text.is_empty() {
                let id = index.insert(Needle {
                    group: t.group,
                    len: t.text.len() as u64,
                    at_boundary: boundary_digest(&t.text),
                    name: sha(&t.text),
                });
                assert_eq!(id, ids.len());
                ids.push(i);
            }
        }
        let mut out = vec![false; ts.len()];
        for s in ts {
            let found = extended_by(&index, s.group, &s.text, |id| ts[ids[id]].ctx >= s.ctx);
            for id in found {
                out[ids[id]] = true;
            }
        }
        out
    }

    /// Random sets of texts built to meet every case: chains (each text
    /// extends an earlier one), forks (two extensions of one text), equal
    /// texts, empty texts, lengths on and around the 256-byte boundaries,
    /// two groups and a ctx filter.
    fn random_set(rng: &mut Rng) -> Vec<T> {
        let n = 1 + rng.below(24) as usize;
        let mut ts: Vec<T> = Vec::new();
        for _ in 0..n {
            let group = rng.below(2) as u8;
            let ctx = [4096, 8192, 32768][rng.below(3) as usize];
            let text = match (rng.below(6), ts.is_empty()) {
                (0, _) => Vec::new(),
                (1..=3, false) => {
                    // Extend, cut or copy an earlier text.
                    let base = &ts[rng.below(ts.len() as u64) as usize].text;
                    let mut t = base.clone();
                    match rng.below(4) {
                        0 => t.truncate(rng.below(t.len() as u64 + 1) as usize),
                        1 => {}
                        _ => {
                            let extra = [1, 2, 255, 256, 257, 300, 600][rng.below(7) as usize];
                            t.extend((0..extra).map(|_| b"ab"[rng.below(2) as usize]));
                        }
                    }
                    t
                }
                _ => {
                    let len = [1, 255, 256, 257, 511, 512, 513, 700][rng.below(8) as usize];
                    (0..len).map(|_| b"ab"[rng.below(2) as usize]).collect()
                }
            };
            ts.push(T { group, ctx, text });
        }
        ts
    }

    #[test]
    fn boundaries_leave_each_length_in_the_block_above() {
        assert_eq!(boundary(1), 0);
        assert_eq!(boundary(256), 0);
        assert_eq!(boundary(257), 256);
        assert_eq!(boundary(512), 256);
        assert_eq!(boundary(513), 512);
    }

    #[test]
    fn the_index_agrees_with_every_pair_compared() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut found = 0;
        for round in 0..400 {
            let ts = random_set(&mut rng);
            let want = naive(&ts);
            assert_eq!(indexed(&ts), want, "round {round}: {ts:?}");
            found += want.iter().filter(|&&x| x).count();
        }
        // The sets do exercise the positive case.
        assert!(found > 400, "{found}");
    }

    #[test]
    fn only_the_name_decides_and_equal_or_longer_texts_never_match() {
        let text = vec![b'x'; 700];
        let mut index = Index::new();
        let short = &text[..300];
        // Named by its text's hash, and a mislabelled one of the same text.
        let good = index.insert(Needle {
            group: 0,
            len: 300,
            at_boundary: boundary_digest(short),
            name: sha(short),
        });
        index.insert(Needle {
            group: 0,
            len: 300,
            at_boundary: boundary_digest(short),
            name: sha(b"another text"),
        });
        let full = index.insert(Needle {
            group: 0,
            len: 700,
            at_boundary: boundary_digest(&text),
            name: sha(&text),
        });
        assert_eq!(extended_by(&index, 0, &text, |_| true), [good]);
        assert_eq!(extended_by(&index, 1, &text, |_| true), Vec::<usize>::new());
        assert_eq!(
            extended_by(&index, 0, &text, |id| id != good),
            Vec::<usize>::new()
        );
        let mut longer = text.clone();
        longer.push(b'!');
        assert_eq!(extended_by(&index, 0, &longer, |_| true), [good, full]);
        // Streamed in odd pieces, the same.
        let mut m = index.matcher(0, longer.len() as u64, |_| true);
        for piece in longer.chunks(7) {
            m.update(piece);
        }
        assert_eq!(m.finish(), [good, full]);
        // A text streamed whole never matches a needle of its own length.
        let mut m = index.matcher(0, text.len() as u64, |_| true);
        m.update(&text);
        assert_eq!(m.finish(), [good]);
    }

    #[test]
    fn a_long_chain_is_linear_in_its_text() {
        // 4,000 texts, each one byte longer than the last: every pair is a
        // prefix pair. A caller that settles each needle once (as
        // policy::superseded does) visits each length once, however many
        // longer texts extend it.
        let n = 4000;
        let text: Vec<u8> = (0..n as u32 + 10).map(|i| (i % 251) as u8).collect();
        let mut index = Index::new();
        for len in 10..n + 10 {
            let t = &text[..len];
            index.insert(Needle {
                group: 0,
                len: len as u64,
                at_boundary: boundary_digest(t),
                name: sha(t),
            });
        }
        let done: Vec<std::cell::Cell<bool>> = (0..n).map(|_| Default::default()).collect();
        for len in (10..n + 10).rev() {
            for id in extended_by(&index, 0, &text[..len], |id| !done[id].get()) {
                done[id].set(true);
            }
        }
        assert_eq!(done.iter().filter(|d| d.get()).count(), n - 1);
        assert!(!done[n - 1].get());
    }

    #[test]
    fn key_digests_are_the_hex_of_the_name() {
        let k = crate::Key::of_text(b"abc");
        assert_eq!(key_digest(&k), Some(sha(b"abc")));
        assert_eq!(key_digest(&crate::Key::Sysprompt), None);
    }
}
