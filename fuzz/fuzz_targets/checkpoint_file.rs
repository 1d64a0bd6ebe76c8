//! Arbitrary bytes as a `.kv` file: open it checked and unchecked, read
//! every part, and load it as a scan would. Nothing may panic or allocate
//! past libFuzzer's malloc limit, and what is accepted must agree with the
//! file (FORMAT.md §3).
#![no_main]

use kvc::format::checkpoint::{CheckpointFile, Key};
use kvc::scan::{self, Loaded, ScanOptions};
use kvc::format::trailer::ToolMap;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// One directory for the whole run; each input overwrites the same file.
static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let path = dir.path().join("sysprompt.kv");
    std::fs::write(&path, data).expect("write the input");
    let size = data.len() as u64;

    if let Ok(cf) = CheckpointFile::open_unchecked(&path) {
        assert_eq!(cf.size, size);
        if let Ok(t) = cf.read_text() {
            assert_eq!(t.len() as u64, cf.text_len as u64);
            assert!(52 + t.len() as u64 <= size);
        }
        if let Some(t) = data.get(cf.payload_end() as usize..) {
            let walked = kvc::format::trailer::walk(&cf, cf.payload_end(), size, &mut |_| {});
            match ToolMap::decode(t) {
                Ok(m) => {
                    assert_eq!(m.encode(), t, "an accepted trailer re-encodes to its bytes");
                    assert_eq!(walked, Ok(m.entries.len() as u32), "walk and decode agree");
                }
                Err(e) => assert_eq!(walked, Err(kvc::format::trailer::WalkError::Bad(e))),
            }
        }
        if let Ok(Some(l)) = cf.read_dsv4() {
            if let Some((comp, index)) = &l.counts {
                assert!(cf.payload_offset() + l.header.counts_offset() + l.header.counts_len() <= size);
                let _ = l.exact_size(kvc::format::dsv4::Schedule::Flash);
                let _ = l.header.load_problems(comp, index);
            }
        }
        if cf.check_envelope().is_ok() {
            assert!(52 + cf.text_len as u64 + cf.header.payload_bytes <= size);
        }
    } else {
        assert!(data.len() < 52);
    }
    for read_text in [false, true] {
        match scan::load(&path, Key::Sysprompt, ScanOptions { read_text, engine: None }) {
            Loaded::Checkpoint(c) => {
                assert_eq!(c.size, size);
                assert!(c.header.tokens != 0);
                assert!(52 + c.text_len as u64 + c.header.payload_bytes <= size);
                // Texts are streamed, never held; a title is read only with them.
                assert!(read_text || c.text_title.is_none());
            }
            Loaded::Invalid(i) => assert!(i.size <= size),
            Loaded::Vanished => panic!("the file is there"),
        }
    }
});
