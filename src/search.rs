//! Which of many byte strings (the DSML blocks of a tool-id map) occur in a
//! text, in time linear in the text and memory fixed whatever the file
//! says.
//!
//! The obvious way, one substring search per entry, costs entries × text:
//! 400,000 entries (ds4's limit) absent from a 4 MiB text kept `verify`
//! busy for minutes. Here the needles go into an Aho–Corasick automaton
//! (the `aho-corasick` crate, the multi-pattern matcher ripgrep's own
//! literal search is built on) and the text is read once past it, so every
//! needle is looked for in the same pass.
//!
//! Bounds, all from constants rather than from the file:
//!
//! - a needle longer than the text cannot occur in it and is never read;
//! - needles are loaded into automata of at most `BATCH_BYTES` of
//!   patterns (an automaton costs some 25 bytes per pattern byte): more
//!   needles cost more passes over the text, not more memory;
//! - a needle longer than `BATCH_BYTES` is looked for alone with a
//!   Rabin–Karp rolling hash over the text, reading both from the file
//!   through small buffers: O(text) time, O(1) memory, whatever its
//!   length (a sparse 512 MiB DSML block over a sparse 512 MiB text).
//!
//! Identical needles are looked for once. A needle that keeps matching
//! after it was found makes the automaton be rebuilt without it once its
//! wasted matches cost as much as a rebuild, so a text full of one found
//! needle does not turn every position into a report.

use crate::format::dialect::Probe;
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::collections::HashMap;
use std::io;

/// Pattern bytes per automaton.
pub(crate) const BATCH_BYTES: u64 = 1 << 20;

/// Bytes of text read per step.
const TEXT_CHUNK: usize = 64 << 10;

/// The needles looked for.
pub trait Needles {
    fn count(&self) -> usize;
    fn len_of(&self, i: usize) -> u64;
    /// Fill `buf` with the bytes of needle `i` from its offset `off`.
    fn read(&self, i: usize, off: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// Needles held in memory.
impl Needles for Vec<&[u8]> {
    fn count(&self) -> usize {
        self.len()
    }
    fn len_of(&self, i: usize) -> u64 {
        self[i].len() as u64
    }
    fn read(&self, i: usize, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let off = off as usize;
        buf.copy_from_slice(&self[i][off..off + buf.len()]);
        Ok(())
    }
}

/// Needles that are ranges `(offset, length)` of a file (a tool-id map's
/// DSML blocks, never loaded whole).
pub struct InFile<'a> {
    pub probe: &'a dyn Probe,
    pub ranges: Vec<(u64, u64)>,
}

impl Needles for InFile<'_> {
    fn count(&self) -> usize {
        self.ranges.len()
    }
    fn len_of(&self, i: usize) -> u64 {
        self.ranges[i].1
    }
    fn read(&self, i: usize, off: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.probe.read_at(self.ranges[i].0 + off, buf) {
            Ok(())
        } else {
            Err(unreadable())
        }
    }
}

fn unreadable() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "could not be read whole (it shrank, or a read failed)",
    )
}

/// The text searched: `len` bytes at `at` of a file.
#[derive(Clone, Copy)]
pub struct Text<'a> {
    pub probe: &'a dyn Probe,
    pub at: u64,
    pub len: u64,
}

impl Text<'_> {
    fn read(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.probe.read_at(self.at + off, buf) {
            Ok(())
        } else {
            Err(unreadable())
        }
    }
}

/// How the search went: for each needle, whether it occurs in the text,
/// and how many passes over the text it took (for tests and measurements).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub found: Vec<bool>,
    pub passes: usize,
    /// Bytes read: needles and text, each pass counted.
    pub bytes_read: u64,
}

/// Which needles occur in `text` (see the module documentation). An empty
/// needle occurs nowhere (as `memmem` finds nothing for it).
pub fn occurring(text: Text<'_>, needles: &dyn Needles) -> io::Result<Found> {
    let n = needles.count();
    let mut out = Found {
        found: vec![false; n],
        passes: 0,
        bytes_read: 0,
    };
    let mut small = Vec::new();
    let mut big = Vec::new();
    for i in 0..n {
        let len = needles.len_of(i);
        if len == 0 || len > text.len {
            continue;
        }
        if len > BATCH_BYTES {
            big.push(i);
        } else {
            small.push(i);
        }
    }
    // Automata over batches of at most BATCH_BYTES of distinct patterns.
    let mut batch: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    let mut bytes = 0u64;
    for (k, &i) in small.iter().enumerate() {
        let mut pattern = vec![0u8; needles.len_of(i) as usize];
        needles.read(i, 0, &mut pattern)?;
        bytes += pattern.len() as u64;
        out.bytes_read += pattern.len() as u64;
        batch.entry(pattern).or_default().push(i);
        if bytes >= BATCH_BYTES || k + 1 == small.len() {
            out.bytes_read += search_batch(text, std::mem::take(&mut batch), &mut out.found)?;
            out.passes += 1;
            bytes = 0;
        }
    }
    // Each long needle alone, with identical ones (same length and
    // fingerprint, then confirmed) looked for once.
    let mut done: Vec<(u64, u64, usize)> = Vec::new();
    for &i in &big {
        let len = needles.len_of(i);
        let fp = fingerprint(needles, i)?;
        if let Some(&(_, _, j)) = done
            .iter()
            .find(|&&(l, f, j)| l == len && f == fp && same_needle(needles, i, j).unwrap_or(false))
        {
            out.found[i] = out.found[j];
            continue;
        }
        out.found[i] = rabin_karp(text, needles, i)?;
        out.passes += 1;
        out.bytes_read += text.len + 2 * len;
        done.push((len, fp, i));
    }
    Ok(out)
}

/// One pass of one automaton over the text, in chunks that carry the last
/// `longest - 1` bytes over, so a match across two reads is seen. Returns
/// the bytes of text read (less than the text when every pattern was found
/// early).
fn search_batch(
    text: Text<'_>,
    batch: HashMap<Vec<u8>, Vec<usize>>,
    found: &mut [bool],
) -> io::Result<u64> {
    let mut patterns: Vec<(Vec<u8>, Vec<usize>)> = batch.into_iter().collect();
    let build = |patterns: &[(Vec<u8>, Vec<usize>)]| {
        AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::NoncontiguousNFA))
            .match_kind(MatchKind::Standard)
            .build(patterns.iter().map(|p| &p.0))
            .map_err(io::Error::other)
    };
    let mut ac = build(&patterns)?;
    let mut active_bytes: usize = patterns.iter().map(|p| p.0.len()).sum();
    let mut longest = patterns.iter().map(|p| p.0.len()).max().unwrap_or(1);
    let mut window: Vec<u8> = Vec::with_capacity(TEXT_CHUNK + longest);
    let mut buf = vec![0u8; TEXT_CHUNK];
    let mut pos = 0u64;
    let mut hit = vec![false; patterns.len()];
    let mut wasted = 0usize;
    while pos < text.len && !patterns.is_empty() {
        let n = (text.len - pos).min(TEXT_CHUNK as u64) as usize;
        text.read(pos, &mut buf[..n])?;
        pos += n as u64;
        window.extend_from_slice(&buf[..n]);
        let mut start = 0;
        loop {
            let mut rebuild_at = None;
            for m in ac.find_overlapping_iter(&window[start..]) {
                let p = m.pattern().as_usize();
                if !hit[p] {
                    hit[p] = true;
                    for &i in &patterns[p].1 {
                        found[i] = true;
                    }
                    continue;
                }
                // A found needle that keeps matching: rebuild without the
                // found ones once that costs no more than the matches
                // wasted, and scan on from where it stopped.
                wasted += 1;
                if wasted > active_bytes.max(TEXT_CHUNK) {
                    rebuild_at = Some(start + m.end());
                    break;
                }
            }
            let Some(end) = rebuild_at else { break };
            let kept: Vec<_> = patterns
                .into_iter()
                .zip(&hit)
                .filter(|(_, h)| !**h)
                .map(|(p, _)| p)
                .collect();
            patterns = kept;
            hit = vec![false; patterns.len()];
            wasted = 0;
            if patterns.is_empty() {
                return Ok(pos);
            }
            ac = build(&patterns)?;
            active_bytes = patterns.iter().map(|p| p.0.len()).sum();
            // Every match ending at `end` or later starts at or after
            // `end - longest` (of the patterns before the rebuild).
            start = end.saturating_sub(longest);
            longest = patterns.iter().map(|p| p.0.len()).max().unwrap_or(1);
        }
        let keep = (longest - 1).min(window.len());
        window.drain(..window.len() - keep);
        // Every pattern found: the rest of the text cannot change anything.
        if hit.iter().all(|h| *h) {
            break;
        }
    }
    Ok(pos)
}

// ---------------------------------------------------------------------------
// Rabin–Karp, for a needle too long to hold

/// 2^61 − 1, a Mersenne prime: products of two residues fit in a u128.
const P: u64 = (1 << 61) - 1;

fn mul(a: u64, b: u64) -> u64 {
    let x = a as u128 * b as u128;
    let r = (x as u64 & P) + (x >> 61) as u64;
    if r >= P {
        r - P
    } else {
        r
    }
}

fn add(a: u64, b: u64) -> u64 {
    let r = a + b;
    if r >= P {
        r - P
    } else {
        r
    }
}

fn sub(a: u64, b: u64) -> u64 {
    if a >= b {
        a - b
    } else {
        a + P - b
    }
}

/// A base drawn per search, so no file can be built to make every window
/// collide with its needle (each collision costs a comparison).
fn random_base() -> u64 {
    let mut b = [0u8; 8];
    if crate::sys::random_bytes(&mut b).is_err() {
        // The kernel's randomness failing is no reason to fail a check.
        b = 0x9e37_79b9_7f4a_7c15u64.to_le_bytes();
    }
    (u64::from_le_bytes(b) % (P - 256)) + 256
}

/// Sequential reads of a byte range through a small buffer.
struct Reader<'a> {
    read: &'a dyn Fn(u64, &mut [u8]) -> io::Result<()>,
    len: u64,
    buf: Vec<u8>,
    at: u64,
    have: usize,
    next: usize,
}

impl<'a> Reader<'a> {
    fn new(read: &'a dyn Fn(u64, &mut [u8]) -> io::Result<()>, len: u64) -> Reader<'a> {
        Reader {
            read,
            len,
            buf: vec![0u8; TEXT_CHUNK],
            at: 0,
            have: 0,
            next: 0,
        }
    }

    fn byte(&mut self) -> io::Result<u8> {
        if self.next == self.have {
            self.at += self.have as u64;
            let n = (self.len - self.at).min(self.buf.len() as u64) as usize;
            (self.read)(self.at, &mut self.buf[..n])?;
            self.have = n;
            self.next = 0;
        }
        let b = self.buf[self.next];
        self.next += 1;
        Ok(b)
    }
}

/// A cheap fingerprint of a needle (its polynomial hash at a fixed base),
/// to tell long needles apart before comparing them.
fn fingerprint(needles: &dyn Needles, i: usize) -> io::Result<u64> {
    let len = needles.len_of(i);
    let read = |off: u64, buf: &mut [u8]| needles.read(i, off, buf);
    let mut r = Reader::new(&read, len);
    let mut h = 0u64;
    for _ in 0..len {
        h = add(mul(h, 1_000_003), r.byte()? as u64);
    }
    Ok(h)
}

fn same_needle(needles: &dyn Needles, a: usize, b: usize) -> io::Result<bool> {
    let len = needles.len_of(a);
    let (ra, rb) = (
        |off: u64, buf: &mut [u8]| needles.read(a, off, buf),
        |off: u64, buf: &mut [u8]| needles.read(b, off, buf),
    );
    let (mut x, mut y) = (Reader::new(&ra, len), Reader::new(&rb, len));
    for _ in 0..len {
        if x.byte()? != y.byte()? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Does needle `i` (longer than a batch) occur in `text`?
fn rabin_karp(text: Text<'_>, needles: &dyn Needles, i: usize) -> io::Result<bool> {
    let l = needles.len_of(i);
    let base = random_base();
    let read_needle = |off: u64, buf: &mut [u8]| needles.read(i, off, buf);
    let read_text = |off: u64, buf: &mut [u8]| text.read(off, buf);
    // Hash of the needle, and base^(l-1) to take the oldest byte out.
    let mut want = 0u64;
    let mut r = Reader::new(&read_needle, l);
    let mut top = 1u64;
    for k in 0..l {
        want = add(mul(want, base), r.byte()? as u64);
        if k + 1 < l {
            top = mul(top, base);
        }
    }
    let mut lead = Reader::new(&read_text, text.len);
    let mut lag = Reader::new(&read_text, text.len);
    let mut h = 0u64;
    for end in 0..text.len {
        if end >= l {
            h = sub(h, mul(lag.byte()? as u64, top));
        }
        h = add(mul(h, base), lead.byte()? as u64);
        if end + 1 >= l && h == want && window_is(text, needles, i, end + 1 - l)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Do the `len_of(i)` bytes of the text at `start` equal needle `i`?
fn window_is(text: Text<'_>, needles: &dyn Needles, i: usize, start: u64) -> io::Result<bool> {
    let l = needles.len_of(i);
    let mut a = vec![0u8; TEXT_CHUNK];
    let mut b = vec![0u8; TEXT_CHUNK];
    let mut off = 0;
    while off < l {
        let n = (l - off).min(TEXT_CHUNK as u64) as usize;
        text.read(start + off, &mut a[..n])?;
        needles.read(i, off, &mut b[..n])?;
        if a[..n] != b[..n] {
            return Ok(false);
        }
        off += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dialect::InMemory;

    fn search(text: &[u8], needles: &[&[u8]]) -> Vec<bool> {
        let t = Text {
            probe: &InMemory(text),
            at: 0,
            len: text.len() as u64,
        };
        occurring(t, &needles.to_vec()).unwrap().found
    }

    fn naive(text: &[u8], needles: &[&[u8]]) -> Vec<bool> {
        needles
            .iter()
            .map(|n| !n.is_empty() && text.windows(n.len()).any(|w| w == *n))
            .collect()
    }

    #[test]
    fn finds_what_a_substring_search_finds_across_chunk_boundaries() {
        let mut text = Vec::new();
        for i in 0..(3 * TEXT_CHUNK / 7) {
            text.extend_from_slice(format!("<{i}>").as_bytes());
        }
        let owned: Vec<Vec<u8>> = vec![
            b"<0>".to_vec(),
            format!("<{}>", TEXT_CHUNK / 7).into_bytes(),
            format!("<{}><{}>", TEXT_CHUNK / 7 - 1, TEXT_CHUNK / 7).into_bytes(),
            b"<nope>".to_vec(),
            Vec::new(),
            text[TEXT_CHUNK - 5..TEXT_CHUNK + 5].to_vec(),
            text.clone(),
            [text.clone(), b"!".to_vec()].concat(),
            b"<1>".to_vec(),
        ];
        let needles: Vec<&[u8]> = owned.iter().map(|v| v.as_slice()).collect();
        assert_eq!(search(&text, &needles), naive(&text, &needles));
    }

    #[test]
    fn a_found_needle_matching_everywhere_is_dropped_not_reported_forever() {
        let text = vec![b'a'; 3 * TEXT_CHUNK];
        let owned: Vec<Vec<u8>> = (1..200)
            .map(|n| vec![b'a'; n])
            .chain([b"ab".to_vec()])
            .collect();
        let needles: Vec<&[u8]> = owned.iter().map(|v| v.as_slice()).collect();
        assert_eq!(search(&text, &needles), naive(&text, &needles));
    }

    #[test]
    fn long_needles_are_matched_by_a_rolling_hash() {
        let l = BATCH_BYTES as usize + 10;
        let mut text = vec![0u8; l + 100];
        text[50..50 + l].fill(7);
        let inside = vec![7u8; l];
        let mut almost = inside.clone();
        almost[l - 1] = 8;
        let needles: Vec<&[u8]> = vec![&inside, &almost, &inside];
        let t = Text {
            probe: &InMemory(&text),
            at: 0,
            len: text.len() as u64,
        };
        let r = occurring(t, &needles).unwrap();
        assert_eq!(r.found, [true, false, true]);
        // The identical third needle costs no pass of its own.
        assert_eq!(r.passes, 2);
    }
}
