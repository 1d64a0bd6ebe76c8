//! The DSV4 payload of ds4 and its forks (FORMAT.md §6).
//!
//! The payload's length is exactly determined by its 13-field header and its
//! two count arrays, which sit after the token ids and the logits. Payloads
//! that do not start with the magic (newer fork ABIs, hanzo-engine) are
//! opaque to kvc.

use serde::Serialize;

/// "DSV4" as bytes, read as a little-endian u32.
pub const MAGIC: u32 = 0x3456_5344;
pub const VERSION: u32 = 1;
/// 13 u32 fields.
pub const HEADER_LEN: usize = 13 * 4;
/// Layers below this index are uncompressed (ratio 0).
const FIRST_COMPRESSED_LAYER: u32 = 2;
/// Even layers from 2 on compress 4:1 and carry an indexer; odd ones 128:1.
const RATIO_EVEN: u64 = 4;
const RATIO_ODD: u64 = 128;
const F32: u64 = 4;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dsv4Header {
    pub magic: u32,
    pub version: u32,
    pub ctx: u32,
    pub prefill_chunk: u32,
    pub raw_cap: u32,
    pub raw_window: u32,
    pub comp_cap: u32,
    pub tokens: u32,
    pub layers: u32,
    pub head_dim: u32,
    pub indexer_head_dim: u32,
    pub vocab: u32,
    pub raw_live: u32,
}

/// Compression ratio `r` of layer `il`.
pub fn compression_ratio(il: u32) -> u64 {
    if il < FIRST_COMPRESSED_LAYER {
        0
    } else if il.is_multiple_of(2) {
        RATIO_EVEN
    } else {
        RATIO_ODD
    }
}

impl Dsv4Header {
    /// Decode the first 52 payload bytes; `None` when there are fewer or the
    /// magic is not DSV4 (an opaque payload).
    pub fn decode(b: &[u8]) -> Option<Dsv4Header> {
        if b.len() < HEADER_LEN {
            return None;
        }
        let f = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        if f(0) != MAGIC {
            return None;
        }
        Some(Dsv4Header {
            magic: f(0),
            version: f(1),
            ctx: f(2),
            prefill_chunk: f(3),
            raw_cap: f(4),
            raw_window: f(5),
            comp_cap: f(6),
            tokens: f(7),
            layers: f(8),
            head_dim: f(9),
            indexer_head_dim: f(10),
            vocab: f(11),
            raw_live: f(12),
        })
    }

    /// Offset of the `u32[tokens]` token ids within the payload.
    pub fn token_ids_offset(&self) -> u64 {
        HEADER_LEN as u64
    }

    /// Offset of the `f32[vocab]` logits within the payload.
    pub fn logits_offset(&self) -> u64 {
        self.token_ids_offset() + self.tokens as u64 * 4
    }

    /// Offset of the `n_comp` then `n_index` count arrays within the payload.
    pub fn counts_offset(&self) -> u64 {
        self.logits_offset() + self.vocab as u64 * F32
    }

    /// Bytes of both count arrays.
    pub fn counts_len(&self) -> u64 {
        self.layers as u64 * 8
    }

    /// Split the count-array bytes into `n_comp` and `n_index`.
    pub fn parse_counts(&self, b: &[u8]) -> Option<(Vec<u32>, Vec<u32>)> {
        if b.len() as u64 != self.counts_len() {
            return None;
        }
        let all: Vec<u32> = b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let (comp, index) = all.split_at(self.layers as usize);
        Some((comp.to_vec(), index.to_vec()))
    }

    /// The exact payload size the layout implies, `None` on overflow.
    pub fn exact_size(&self, n_comp: &[u32], n_index: &[u32]) -> Option<u64> {
        let hd = self.head_dim as u64;
        let ihd = self.indexer_head_dim as u64;
        let mut size = self.counts_offset().checked_add(self.counts_len())?;
        for il in 0..self.layers {
            let r = compression_ratio(il);
            let c: u64 = if r == RATIO_EVEN { 2 } else { 1 };
            let mut floats = (self.raw_live as u64).checked_mul(hd)?;
            if r > 0 {
                let comp = *n_comp.get(il as usize)? as u64;
                let state = c.checked_mul(hd)?.checked_mul(c)?.checked_mul(r)?;
                floats = floats
                    .checked_add(comp.checked_mul(hd)?)?
                    .checked_add(state.checked_mul(2)?)?;
            }
            if r == RATIO_EVEN {
                let idx = *n_index.get(il as usize)? as u64;
                let state = c.checked_mul(ihd)?.checked_mul(c)?.checked_mul(r)?;
                floats = floats
                    .checked_add(idx.checked_mul(ihd)?)?
                    .checked_add(state.checked_mul(2)?)?;
            }
            size = size.checked_add(floats.checked_mul(F32)?)?;
        }
        Some(size)
    }

    /// ds4's load-time rejections that need only the header and counts.
    pub fn load_problems(&self, n_comp: &[u32], n_index: &[u32]) -> Vec<String> {
        let mut p = Vec::new();
        if self.version != VERSION {
            p.push(format!("DSV4 version {} is not {VERSION}", self.version));
        }
        if self.tokens >= self.ctx {
            p.push(format!(
                "DSV4 tokens {} not below its ctx {}",
                self.tokens, self.ctx
            ));
        }
        let want_live = self.tokens.min(self.raw_window);
        if self.raw_live != want_live {
            p.push(format!(
                "DSV4 raw_live {} is not min(tokens, raw_window) = {want_live}",
                self.raw_live
            ));
        }
        if self.raw_live > self.raw_cap {
            p.push(format!(
                "DSV4 raw_live {} above raw_cap {}",
                self.raw_live, self.raw_cap
            ));
        }
        for (name, counts) in [("n_comp", n_comp), ("n_index", n_index)] {
            if let Some((il, n)) = counts.iter().enumerate().find(|(_, &n)| n > self.comp_cap) {
                p.push(format!(
                    "DSV4 {name}[{il}] = {n} above comp_cap {}",
                    self.comp_cap
                ));
            }
        }
        p
    }
}
