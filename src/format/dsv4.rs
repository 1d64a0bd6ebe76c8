//! The DSV4 payload of ds4 and its forks (FORMAT.md §6).
//!
//! The payload's length is exactly determined by its 13-field header and its
//! two count arrays, which sit after the token ids and the logits (ds4.c
//! at b030961 refuses a payload with bytes left over: "KV checkpoint has
//! trailing payload bytes"). Only V4 Flash and V4 PRO bodies are judged:
//! GLM-5.2 writes the DSV4 magic and a version-2 header over a body of its
//! own, and payloads without the magic (newer fork ABIs, hanzo-engine) are
//! opaque to kvc.

use super::dialect::{DialectId, PayloadRule};
use serde::Serialize;

/// "DSV4" as bytes, read as a little-endian u32.
pub const MAGIC: u32 = 0x3456_5344;
/// ds4 before e8e8779 (2026-05-26) wrote version 1; mainline since writes
/// 2 and its loader refuses 1 (the body is the same: the bump marks a
/// runtime-state incompatibility).
pub(crate) const VERSION_1: u32 = 1;
pub(crate) const VERSION_2: u32 = 2;
/// 13 u32 fields.
pub const HEADER_LEN: usize = 13 * 4;
/// Layers below this index have their own ratio (0 on Flash, 128 on PRO).
const FIRST_SCHEDULED_LAYER: u32 = 2;
/// Even layers from 2 on compress 4:1 and carry an indexer; odd ones 128:1.
const RATIO_EVEN: u64 = 4;
const RATIO_ODD: u64 = 128;
const F32: u64 = 4;

/// The per-layer compression schedule (`ds4_expected_layer_compress_ratio`,
/// ds4.c at b030961): layers 0 and 1 are uncompressed on V4 Flash (43
/// layers) and 128:1 on V4 PRO (61 layers); from layer 2 on both compress
/// even layers 4:1 (with an indexer) and odd ones 128:1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    Flash,
    Pro,
}

impl Schedule {
    /// The schedule of a mainline model id: 0 V4 Flash, 1 V4 PRO. Other
    /// models' bodies are not DSV4 bodies kvc can judge.
    pub(crate) fn for_model(model_id: u8) -> Option<Schedule> {
        match model_id {
            0 => Some(Schedule::Flash),
            1 => Some(Schedule::Pro),
            _ => None,
        }
    }
}

/// Whether kvc judges the DSV4 body of a file of `dialect` and model
/// `model_id` whose payload header says `version` (FORMAT.md §6): only a
/// V4 Flash or PRO body of version 1 or 2 in a dialect whose payload is
/// DSV4. `Err` says why the payload is opaque instead.
pub fn judged(dialect: DialectId, model_id: u8, version: u32) -> Result<Schedule, String> {
    if dialect.spec().payload != PayloadRule::Dsv4 {
        return Err(format!("dialect {dialect} payloads are opaque"));
    }
    let Some(schedule) = Schedule::for_model(model_id) else {
        let name = super::header::model_name(model_id).unwrap_or("an unknown model");
        return Err(format!(
            "model {model_id} ({name}) writes its own body after the DSV4 header"
        ));
    };
    if version != VERSION_1 && version != VERSION_2 {
        return Err(format!("DSV4 version {version} is not one kvc reads"));
    }
    Ok(schedule)
}

/// The DSV4 version a dialect's writer puts in its payloads: mainline's
/// readers refuse the other one.
pub(crate) fn expected_version(dialect: DialectId) -> Option<u32> {
    match dialect {
        DialectId::D1 => Some(VERSION_1),
        DialectId::D3 | DialectId::D4 | DialectId::D11 => Some(VERSION_2),
        _ => None,
    }
}

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
pub(crate) fn compression_ratio(schedule: Schedule, il: u32) -> u64 {
    if il < FIRST_SCHEDULED_LAYER {
        match schedule {
            Schedule::Flash => 0,
            Schedule::Pro => RATIO_ODD,
        }
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
    pub fn exact_size(&self, schedule: Schedule, n_comp: &[u32], n_index: &[u32]) -> Option<u64> {
        let hd = self.head_dim as u64;
        let ihd = self.indexer_head_dim as u64;
        let mut size = self.counts_offset().checked_add(self.counts_len())?;
        for il in 0..self.layers {
            let r = compression_ratio(schedule, il);
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
