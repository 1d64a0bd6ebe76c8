//! Arbitrary bytes as a DSV4 payload header and count arrays (FORMAT.md
//! §6): decoding, the offsets, `exact_size` and `load_problems` never panic
//! or overflow, whatever the 13 fields and counts say.
#![no_main]

use kvc::format::dsv4::{Dsv4Header, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(h) = Dsv4Header::decode(data) else {
        return;
    };
    assert!(h.token_ids_offset() <= h.logits_offset());
    assert!(h.logits_offset() <= h.counts_offset());
    let rest = &data[HEADER_LEN..];
    // The counts as the header places them, when the input has them.
    if let Some((comp, index)) = h.parse_counts(rest) {
        assert_eq!(comp.len() as u32, h.layers);
        if let Some(size) = h.exact_size(kvc::format::dsv4::Schedule::Flash, &comp, &index) {
            assert!(size >= h.counts_offset() + h.counts_len());
        }
        let _ = h.load_problems(&comp, &index);
    }
    // And counts of any length: a short array must not index out of bounds.
    let words: Vec<u32> = rest
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let (comp, index) = words.split_at(words.len() / 2);
    let _ = h.exact_size(kvc::format::dsv4::Schedule::Flash, comp, index);
    let _ = h.load_problems(comp, index);
});
