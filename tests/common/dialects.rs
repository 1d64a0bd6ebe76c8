//! Byte builders for the dialects of FORMAT.md §9 that `Ckpt` cannot
//! express (a 72-byte header, a tail block, LZ4 framing, other stores),
//! written from the table, never with the library.

use super::{chat, sha1_hex, Ckpt, CREATED, REASON_COLD, REASON_EVICT};

/// Header bytes 0..48 with the given version, ABI and reserved bytes.
pub fn header48(
    version: u8,
    abi: u8,
    reserved: [u8; 3],
    tokens: u32,
    payload_or_tail: u64,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"KVC");
    b.push(version);
    b.push(2); // quant
    b.push(REASON_COLD);
    b.push(0); // ext
    b.push(0); // model
    b.extend_from_slice(&tokens.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // hits
    b.extend_from_slice(&32768u32.to_le_bytes());
    b.push(abi);
    b.extend_from_slice(&reserved);
    b.extend_from_slice(&CREATED.to_le_bytes());
    b.extend_from_slice(&CREATED.to_le_bytes());
    b.extend_from_slice(&payload_or_tail.to_le_bytes());
    assert_eq!(b.len(), 48);
    b
}

/// D8: version 2, codec LZ4 in byte 21, log2(chunk) 12 in byte 22; the
/// payload is `u64 total, u32 chunks` then `u32 raw, u32 comp, bytes`.
pub fn d8(text: &[u8], version: u8, abi: u8) -> (String, Vec<u8>) {
    let comp = b"compressed bytes, 40 of them, roughly!!";
    let mut payload = Vec::new();
    payload.extend_from_slice(&4096u64.to_le_bytes());
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&4096u32.to_le_bytes());
    payload.extend_from_slice(&(comp.len() as u32).to_le_bytes());
    payload.extend_from_slice(comp);
    let mut b = header48(version, abi, [1, 12, 0], 600, payload.len() as u64);
    b.extend_from_slice(&(text.len() as u32).to_le_bytes());
    b.extend_from_slice(text);
    b.extend_from_slice(&payload);
    (format!("{}.kv", sha1_hex(text)), b)
}

/// D13: version 2, ABI 2, a 72-byte header (conv_id, model fingerprint,
/// bucket, level, stale 0|1, two zero bytes), text_len at 72, text at 76.
pub fn d13(text: &[u8]) -> (String, Vec<u8>) {
    let payload = vec![7u8; 64];
    let mut b = header48(2, 2, [0; 3], 600, payload.len() as u64);
    b.extend_from_slice(&42u64.to_le_bytes()); // conv_id @48
    b.extend_from_slice(&0x1234_5678u64.to_le_bytes()); // model_fp @56
    b.extend_from_slice(&3u32.to_le_bytes()); // bucket @64
    b.push(1); // level @68
    b.push(0); // stale @69
    b.extend_from_slice(&[0, 0]); // @70-71
    assert_eq!(b.len(), 72);
    b.extend_from_slice(&(text.len() as u32).to_le_bytes());
    b.extend_from_slice(text);
    b.extend_from_slice(&payload);
    (format!("{}.kv", sha1_hex(text)), b)
}

/// D14 (`TAIL`) or D15 (`TAL2`): version 2, ABI 3, the u64 at 40 points
/// at the tail block; the name is not the text's hash.
pub fn tail_indexed(magic: &[u8; 4], name_seed: &[u8]) -> (String, Vec<u8>) {
    let tail_at = 112u64;
    let mut b = header48(2, 3, [0; 3], 600, tail_at);
    b.resize(tail_at as usize, 0);
    b.extend_from_slice(magic);
    b.extend_from_slice(&[0u8; 28]);
    b.extend_from_slice(&chat("a growing tail-indexed file"));
    (format!("{}.kv", sha1_hex(name_seed)), b)
}

/// D16: a block-chain store file.
pub fn d16_chain() -> Vec<u8> {
    let mut b = b"DS4CHN01".to_vec();
    b.extend_from_slice(&[0u8; 56]);
    b
}

/// D17: a `KVB4` block file.
pub fn d17_block() -> Vec<u8> {
    let mut b = b"KVB4".to_vec();
    b.extend_from_slice(&[0u8; 60]);
    b
}

/// D20: a hanzo-engine prefix-cache spill: quant 0, ctx 0, reason evict,
/// text = little-endian u32 token ids, payload `u8 1, u64 fingerprint,
/// u32 n_layers` then opaque bytes (engines' notes, hanzo prefix_cacher).
pub fn d20(tokens: &[u32]) -> Ckpt {
    let text: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    let mut payload = vec![1u8];
    payload.extend_from_slice(&0xfeed_f00du64.to_le_bytes());
    payload.extend_from_slice(&2u32.to_le_bytes());
    payload.extend_from_slice(&[0u8; 32]);
    let mut c = Ckpt::new(text);
    c.quant_bits = 0;
    c.ctx_size = 0;
    c.reason = REASON_EVICT;
    c.tokens = tokens.len() as u32;
    c.payload = payload;
    c
}
