//! Arbitrary bytes as a tool-id map trailer (FORMAT.md §5): decoding never
//! panics, and what it accepts encodes back to the same bytes.
#![no_main]

use kvc::format::trailer::ToolMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ToolMap::decode(data) {
        assert_eq!(m.encode(), data);
    }
});
