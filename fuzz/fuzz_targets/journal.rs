//! Arbitrary bytes as kvc's journal (`.kvc/journal`, CRC-framed JSON
//! lines): parsing never panics, and every line is a record, damaged, or
//! the empty line between records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = kvc::session::journal::parse(data);
    let lines = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(r.records.len() + r.damaged <= lines);
});
