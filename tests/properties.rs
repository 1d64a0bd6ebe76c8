//! Property tests of every parser kvc runs on untrusted bytes: whatever the
//! bytes, no panic, no allocation beyond a small multiple of the input,
//! and either a value whose fields agree with the bytes or an error.
//!
//! The allocation bound is measured, not assumed: this test binary installs
//! a counting global allocator, and each library call is run inside
//! [`measured`], which reports the largest single allocation and the total
//! allocated by the calling thread during the call.
//!
//! The same entry points are fuzzed by the cargo-fuzz targets in `fuzz/`
//! (doc/DESIGN.md, "Fuzzing and property tests"); these run in the normal `cargo test`, bounded to a
//! few seconds.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::{chat, sha1_hex, Ckpt, CREATED, NOW, REASON_AGENT_SYSTEM};
use kvc::bundle::{self, Action, ImportOptions, ImportReport, NoProgress, OnConflict, StreamOut};
use kvc::format::checkpoint::{CheckpointFile, Key};
use kvc::format::dsv4::{self, Dsv4Header};
use kvc::format::trailer::{ToolMap, ToolMapEntry};
use kvc::format::{ExtFlags, Header, Reason, HEADER_LEN, PREFIX_LEN};
use kvc::scan::{self, Loaded, ScanOptions};
use kvc::session::journal::{self, Record, JOURNAL_FILE};
use kvc::session::{Session, SessionOptions, LOCK_FILE};
use proptest::collection::vec;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------
// Counting allocator

/// An allocation this large during a measured call is a hostile length
/// trusted: it is refused (the process aborts with a message) rather than
/// attempted, so a regression cannot take the machine's memory with it.
const HARD_CAP: usize = 256 << 20;

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

/// Record an allocation of `size` bytes; false when it must be refused.
fn note(size: usize) -> bool {
    TRACKING
        .try_with(|t| {
            if !t.get() {
                return true;
            }
            LARGEST.with(|l| l.set(l.get().max(size)));
            TOTAL.with(|s| s.set(s.get().saturating_add(size)));
            if size > HARD_CAP {
                let msg =
                    b"properties: refusing an allocation above HARD_CAP during a measured call\n";
                // SAFETY: writing a static buffer to stderr; no allocation.
                unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
                return false;
            }
            true
        })
        .unwrap_or(true)
}

// SAFETY: forwards to the system allocator; the bookkeeping allocates
// nothing and never unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if note(l.size()) {
            System.alloc(l)
        } else {
            std::ptr::null_mut()
        }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if note(l.size()) {
            System.alloc_zeroed(l)
        } else {
            std::ptr::null_mut()
        }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if note(new) {
            System.realloc(p, l, new)
        } else {
            std::ptr::null_mut()
        }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What a measured call allocated on this thread.
#[derive(Debug, Clone, Copy)]
struct Allocs {
    largest: usize,
    total: usize,
}

fn measured<R>(f: impl FnOnce() -> R) -> (R, Allocs) {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    TRACKING.with(|t| t.set(true));
    let r = f();
    TRACKING.with(|t| t.set(false));
    let a = Allocs {
        largest: LARGEST.with(|l| l.get()),
        total: TOTAL.with(|t| t.get()),
    };
    (r, a)
}

/// Fixed costs unrelated to the input: paths, error messages, a few
/// small vectors.
const SLACK: usize = 16 << 10;

fn assert_bounded(a: Allocs, input: usize, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        a.largest <= input + SLACK,
        "{what}: largest allocation {} for {input} input bytes",
        a.largest
    );
    prop_assert!(
        a.total <= 8 * input + 4 * SLACK,
        "{what}: {} bytes allocated in all for {input} input bytes",
        a.total
    );
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are minimized and reported; nothing is written into the
        // source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Strategies: arbitrary bytes, and bytes shaped like the format so that
// cases get past the magic checks into the length arithmetic.

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// A u32 that is often small, sometimes at an edge, sometimes anything.
fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..64,
        1 => Just(u32::MAX),
        1 => (u32::MAX - 64)..=u32::MAX,
        1 => any::<u32>(),
    ]
}

/// A DSV4 payload: the magic, 12 fields biased to small values, then
/// arbitrary bytes (where the token ids, logits and counts would be).
fn dsv4_payload() -> impl Strategy<Value = Vec<u8>> {
    (vec(interesting_u32(), 12), vec(any::<u8>(), 0..256)).prop_map(|(fields, rest)| {
        let mut p = le32(dsv4::MAGIC).to_vec();
        for f in fields {
            p.extend_from_slice(&le32(f));
        }
        p.extend(rest);
        p
    })
}

fn tool_map_entries() -> impl Strategy<Value = Vec<ToolMapEntry>> {
    vec(
        (vec(any::<u8>(), 1..24), vec(any::<u8>(), 1..48))
            .prop_map(|(id, dsml)| ToolMapEntry { id, dsml }),
        0..5,
    )
}

/// A `KTM` section assembled from FORMAT.md §5 (not with `ToolMap::encode`).
fn ktm_section(entries: &[ToolMapEntry]) -> Vec<u8> {
    let mut b = b"KTM\x01".to_vec();
    b.extend_from_slice(&le32(entries.len() as u32));
    for e in entries {
        b.extend_from_slice(&le32(e.id.len() as u32));
        b.extend_from_slice(&le32(e.dsml.len() as u32));
        b.extend_from_slice(&e.id);
        b.extend_from_slice(&e.dsml);
    }
    b
}

/// How a length field relates to the bytes actually present.
#[derive(Clone, Debug)]
enum LenField {
    Exact,
    Delta(i64),
    Any(u64),
}

fn len_field() -> impl Strategy<Value = LenField> {
    prop_oneof![
        3 => Just(LenField::Exact),
        2 => (-80i64..80).prop_map(LenField::Delta),
        1 => any::<u64>().prop_map(LenField::Any),
        1 => Just(LenField::Any(u64::MAX)),
    ]
}

fn apply(f: &LenField, exact: u64) -> u64 {
    match f {
        LenField::Exact => exact,
        LenField::Delta(d) => exact.saturating_add_signed(*d),
        LenField::Any(v) => *v,
    }
}

/// Bytes shaped like a checkpoint: KVC header with arbitrary fields, text,
/// a DSV4 or opaque payload, maybe a trailer (valid or not), with the two
/// length fields exact, a little off, or anything; then a few byte flips.
fn shaped_checkpoint() -> impl Strategy<Value = Vec<u8>> {
    let header = (vec(any::<u8>(), HEADER_LEN), any::<bool>(), any::<bool>());
    let body = (
        vec(any::<u8>(), 0..200),
        prop_oneof![dsv4_payload(), vec(any::<u8>(), 0..200)],
        prop_oneof![
            Just(Vec::new()),
            tool_map_entries().prop_map(|e| ktm_section(&e)),
            vec(any::<u8>(), 0..40),
        ],
    );
    let lens = (len_field(), len_field());
    let flips = vec((any::<prop::sample::Index>(), any::<u8>()), 0..3);
    (header, body, lens, flips).prop_map(
        |((mut h, keep_magic, tool_flag), (text, payload, trailer), (tl, pl), flips)| {
            if keep_magic {
                h[..4].copy_from_slice(b"KVC\x01");
            }
            if tool_flag {
                h[6] |= ExtFlags::TOOL_MAP;
            }
            let text_len = apply(&tl, text.len() as u64) as u32;
            let payload_bytes = apply(&pl, payload.len() as u64);
            h[40..48].copy_from_slice(&payload_bytes.to_le_bytes());
            let mut b = h;
            b.extend_from_slice(&le32(text_len));
            b.extend(text);
            b.extend(payload);
            b.extend(trailer);
            for (i, v) in flips {
                let i = i.index(b.len());
                b[i] = v;
            }
            b
        },
    )
}

fn checkpoint_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..120),
        4 => shaped_checkpoint(),
    ]
}

// ---------------------------------------------------------------------------
// Checkpoint files

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Everything kvc reads from one file, checked against the bytes.
fn check_file(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let size = bytes.len() as u64;
    let (r, a) = measured(|| CheckpointFile::open_unchecked(path));
    assert_bounded(a, bytes.len(), "open_unchecked")?;
    let cf = match r {
        Err(_) => {
            prop_assert!(
                bytes.len() < PREFIX_LEN,
                "open_unchecked refused a {size}-byte file"
            );
            return Ok(());
        }
        Ok(cf) => cf,
    };
    prop_assert!(bytes.len() >= PREFIX_LEN);
    prop_assert_eq!(cf.size, size);
    prop_assert_eq!(
        &cf.header,
        &Header::decode(bytes[..HEADER_LEN].try_into().unwrap())
    );
    prop_assert_eq!(
        cf.text_len,
        u32::from_le_bytes(bytes[48..52].try_into().unwrap())
    );
    let text_end = 52 + cf.text_len as u64;

    // The parts, read from a file whose envelope was NOT checked (as `show`
    // reads a broken file): every read stays within the file.
    let (text, a) = measured(|| cf.read_text());
    assert_bounded(a, bytes.len(), "read_text")?;
    match text {
        Ok(t) => {
            prop_assert!(text_end <= size);
            prop_assert_eq!(&t[..], &bytes[52..text_end as usize]);
        }
        Err(_) => prop_assert!(text_end > size),
    }
    let trailer: &[u8] = bytes.get(cf.payload_end() as usize..).unwrap_or_default();
    prop_assert_eq!(trailer.len() as u64, cf.trailer_len());
    // Walked entry by entry from the file: the same verdict as decoding the
    // bytes, in memory bounded by them.
    let (walked, a) =
        measured(|| kvc::format::trailer::walk(&cf, cf.payload_end(), size, &mut |_| {}));
    assert_bounded(a, bytes.len(), "trailer::walk")?;
    let (map, a) = measured(|| ToolMap::decode(trailer));
    assert_bounded(a, trailer.len(), "ToolMap::decode")?;
    match &map {
        Ok(m) => {
            prop_assert_eq!(m.encode(), trailer);
            prop_assert_eq!(walked, Ok(m.entries.len() as u32));
        }
        Err(e) if cf.payload_end() <= size => {
            prop_assert_eq!(walked, Err(kvc::format::trailer::WalkError::Bad(e.clone())));
        }
        Err(_) => {}
    }
    let (layout, a) = measured(|| cf.read_dsv4());
    assert_bounded(a, bytes.len(), "read_dsv4")?;
    if let Ok(Some(l)) = layout {
        let pay = cf.payload_offset();
        let h = &l.header;
        prop_assert_eq!(h.magic, dsv4::MAGIC);
        prop_assert!(pay + dsv4::HEADER_LEN as u64 <= size);
        prop_assert_eq!(h, &Dsv4Header::decode(&bytes[pay as usize..]).unwrap());
        if let Some((comp, index)) = &l.counts {
            prop_assert_eq!(comp.len() as u32, h.layers);
            prop_assert_eq!(index.len() as u32, h.layers);
            prop_assert!(pay + h.counts_offset() + h.counts_len() <= size);
            let _ = l.exact_size(kvc::format::dsv4::Schedule::Flash);
            let _ = h.load_problems(comp, index);
        }
    }

    // The checked envelope agrees with the arithmetic of FORMAT.md §3.
    let payload_bytes = u64_at(bytes, 40);
    let fits = 52u128 + cf.text_len as u128 + payload_bytes as u128 <= size as u128;
    let envelope_ok = &bytes[..4] == b"KVC\x01" && fits;
    prop_assert_eq!(cf.check_envelope().is_ok(), envelope_ok);
    let (opened, a) = measured(|| CheckpointFile::open(path));
    assert_bounded(a, bytes.len(), "open")?;
    prop_assert_eq!(opened.is_ok(), envelope_ok);
    if let Ok(cf) = opened {
        prop_assert!(52 + cf.text_len as u64 + cf.header.payload_bytes <= cf.size);
        prop_assert_eq!(cf.payload_end() + cf.trailer_len(), cf.size);
    }
    Ok(())
}

/// What a scan makes of the file: a checkpoint whose fields agree with the
/// bytes, or an invalid entry with a known code.
fn check_load(path: &Path, bytes: &[u8], key: Key) -> Result<(), TestCaseError> {
    for read_text in [false, true] {
        let opts = ScanOptions {
            read_text,
            engine: None,
        };
        let (l, a) = measured(|| scan::load(path, key.clone(), opts));
        assert_bounded(a, bytes.len(), "scan::load")?;
        match l {
            Loaded::Checkpoint(c) => {
                prop_assert_eq!(c.size, bytes.len() as u64);
                prop_assert_eq!(&bytes[..4], b"KVC\x01");
                // hanzo-engine (D20) writes 0 tokens; no ds4 dialect does.
                prop_assert!(c.header.tokens != 0 || c.dialect == kvc::format::DialectId::D20);
                prop_assert!(52 + c.text_len as u64 + c.header.payload_bytes <= c.size);
                // An agent session (ext bit 3) is named by its identity,
                // everything else by its text.
                let identity_named = c.header.ext_flags.has_session_title()
                    && c.dialect.spec().identity == kvc::format::dialect::Identity::Ds4;
                // Reading texts, the scan checked the name against the
                // text it streamed (and held none of it).
                if let (true, Key::Hash(h), false) = (read_text, &key, identity_named) {
                    let t = &bytes[52..52 + c.text_len as usize];
                    prop_assert_eq!(sha1_hex(t), h.to_string());
                }
                prop_assert!(read_text || c.text_title.is_none());
            }
            // Anything that starts with KVC and no known dialect: left alone.
            Loaded::Foreign(f) => {
                prop_assert_eq!(&bytes[..3], b"KVC");
                prop_assert_eq!(f.size, bytes.len() as u64);
            }
            Loaded::Invalid(i) => {
                let known = [
                    "empty",
                    "short-header",
                    "bad-magic",
                    "bad-version",
                    "text-length",
                    "truncated",
                    "zero-tokens",
                    "key-mismatch",
                ];
                prop_assert!(known.contains(&i.code.name()), "unexpected code {}", i.code);
                prop_assert!(i.size <= bytes.len() as u64);
            }
            Loaded::Vanished => prop_assert!(false, "the file is there"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_as_a_checkpoint_file(bytes in checkpoint_bytes()) {
        let dir = tempfile::tempdir().unwrap();
        // Named after its text when the text is there, so it can pass the
        // key check; otherwise after something else, so it fails it.
        let text_end = bytes.get(48..52).map(|b| 52 + u32::from_le_bytes(b.try_into().unwrap()) as usize);
        let key = match text_end {
            Some(end) if end <= bytes.len() => sha1_hex(&bytes[52..end]),
            _ => sha1_hex(&bytes),
        };
        let path = dir.path().join(format!("{key}.kv"));
        fs::write(&path, &bytes).unwrap();
        check_file(&path, &bytes)?;
        check_load(&path, &bytes, Key::from_hex(&key).unwrap())?;
        let sys = dir.path().join("sysprompt.kv");
        fs::rename(&path, &sys).unwrap();
        check_load(&sys, &bytes, Key::Sysprompt)?;
    }

    // -----------------------------------------------------------------------
    // Trailers

    #[test]
    fn any_bytes_as_a_trailer(bytes in prop_oneof![
        vec(any::<u8>(), 0..200),
        (tool_map_entries(), vec((any::<prop::sample::Index>(), any::<u8>()), 0..3)).prop_map(|(e, flips)| {
            let mut b = ktm_section(&e);
            for (i, v) in flips {
                let i = i.index(b.len());
                b[i] = v;
            }
            b
        }),
    ]) {
        let (r, a) = measured(|| ToolMap::decode(&bytes));
        assert_bounded(a, bytes.len(), "ToolMap::decode")?;
        if let Ok(m) = r {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn tool_maps_round_trip(entries in tool_map_entries()) {
        let raw = ktm_section(&entries);
        let m = ToolMap::decode(&raw).unwrap();
        prop_assert_eq!(&m.entries, &entries);
        prop_assert_eq!(m.encode(), raw);
    }

    // -----------------------------------------------------------------------
    // DSV4 payload headers

    #[test]
    fn any_bytes_as_a_dsv4_payload(
        bytes in prop_oneof![vec(any::<u8>(), 0..120), dsv4_payload()],
        comp in vec(interesting_u32(), 0..8),
        index in vec(interesting_u32(), 0..8),
    ) {
        let (h, a) = measured(|| Dsv4Header::decode(&bytes));
        assert_bounded(a, bytes.len(), "Dsv4Header::decode")?;
        let Some(h) = h else {
            prop_assert!(bytes.len() < dsv4::HEADER_LEN || bytes[..4] != dsv4::MAGIC.to_le_bytes()[..]);
            return Ok(());
        };
        // Offsets are u64 sums of u32 products: they cannot overflow.
        prop_assert!(h.token_ids_offset() <= h.logits_offset());
        prop_assert!(h.logits_offset() <= h.counts_offset());
        let (size, a) = measured(|| h.exact_size(kvc::format::dsv4::Schedule::Flash, &comp, &index));
        prop_assert!(a.total <= SLACK);
        if let Some(size) = size {
            prop_assert!(size >= h.counts_offset() + h.counts_len());
        }
        let _ = h.load_problems(&comp, &index);
        // Counts parsed from exactly the bytes the header says they take.
        let counts = &bytes[dsv4::HEADER_LEN..];
        let (parsed, a) = measured(|| h.parse_counts(counts));
        assert_bounded(a, 2 * counts.len(), "parse_counts")?;
        match parsed {
            Some((c, i)) => {
                prop_assert_eq!(counts.len() as u64, h.counts_len());
                prop_assert_eq!(c.len(), i.len());
                let _ = h.exact_size(kvc::format::dsv4::Schedule::Pro, &c, &i);
            }
            None => prop_assert!(counts.len() as u64 != h.counts_len()),
        }
    }

    // -----------------------------------------------------------------------
    // Journal

    #[test]
    fn any_bytes_as_a_journal(bytes in prop_oneof![
        vec(any::<u8>(), 0..300),
        vec(prop_oneof![
            "[0-9a-f]{8} \\{[ -~]{0,40}\\}".prop_map(String::into_bytes),
            vec(any::<u8>(), 0..30),
        ], 0..6).prop_map(|lines| lines.join(&b'\n')),
    ]) {
        let (r, a) = measured(|| journal::parse(&bytes));
        assert_bounded(a, bytes.len(), "journal::parse")?;
        let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        prop_assert!(r.records.len() + r.damaged <= lines);
    }

    // -----------------------------------------------------------------------
    // Headers

    #[test]
    fn header_bytes_round_trip(raw in prop::array::uniform32(any::<u8>()), tail in prop::array::uniform16(any::<u8>())) {
        let mut b = [0u8; HEADER_LEN];
        b[..32].copy_from_slice(&raw);
        b[32..].copy_from_slice(&tail);
        prop_assert_eq!(Header::decode(&b).encode(), b);
    }

    #[test]
    fn headers_round_trip(
        small in prop::array::uniform8(any::<u8>()),
        (tokens, hits, ctx_size) in (any::<u32>(), any::<u32>(), any::<u32>()),
        (created, last_used, payload_bytes) in (any::<u64>(), any::<u64>(), any::<u64>()),
        magic in prop::array::uniform3(any::<u8>()),
        reserved in prop::array::uniform3(any::<u8>()),
    ) {
        let h = Header {
            magic,
            version: small[0],
            quant_bits: small[1],
            reason: Reason(small[2]),
            ext_flags: ExtFlags(small[3]),
            model_id: small[4],
            tokens,
            hits,
            ctx_size,
            payload_abi: small[5],
            reserved,
            created,
            last_used,
            payload_bytes,
        };
        prop_assert_eq!(Header::decode(&h.encode()), h);
    }
}

/// Found by `any_bytes_as_a_checkpoint_file`: a file opened unchecked
/// (as `show` opens a broken one) whose header claims a huge payload and
/// whose DSV4 header claims 2^32-1 layers made `read_dsv4` allocate
/// 32 GiB for the count arrays, because `read_payload_at` bounded reads by
/// the claimed payload length only, not by the file.
#[test]
fn regression_read_dsv4_of_an_unchecked_file_allocates_within_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut payload = le32(dsv4::MAGIC).to_vec();
    for f in [1, 100, 256, 8, 4, 64, 10, u32::MAX, 8, 4, 16, 4] {
        payload.extend_from_slice(&le32(f));
    }
    let mut c = common::Ckpt::new(common::chat("huge layer count"));
    c.payload = payload;
    c.payload_bytes = Some(u64::MAX / 2);
    let path = dir.path().join(c.file_name());
    fs::write(&path, c.bytes()).unwrap();
    let len = c.bytes().len();

    let cf = CheckpointFile::open_unchecked(&path).unwrap();
    assert!(cf.check_envelope().is_err(), "the envelope is a lie");
    let (layout, a) = measured(|| cf.read_dsv4());
    assert!(a.largest <= len, "largest allocation {}", a.largest);
    let layout = layout.unwrap().expect("the DSV4 header is in the file");
    assert_eq!(layout.header.layers, u32::MAX);
    assert!(
        layout.counts.is_none(),
        "the count arrays are not in the file"
    );
    assert!(layout
        .exact_size(kvc::format::dsv4::Schedule::Flash)
        .is_none());
    let (r, a) = measured(|| cf.read_payload_at(0, 1 << 40));
    assert!(a.largest <= len);
    assert!(r.is_err());
}

/// Found by `journal_records_round_trip`: without serde_json's
/// `float_roundtrip` feature a score such as 1.2103474178632041e275 came
/// back from the journal as 1.210347417863204e275.
#[test]
fn regression_journal_scores_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Record {
        time: 1,
        op: "evict".into(),
        key: "k".into(),
        bytes: 2,
        tokens: 3,
        hits: 4,
        reason: "cold".into(),
        score: Some(1.2103474178632041e275),
        policy: Some("ds4".into()),
        why: "budget".into(),
    };
    append(dir.path(), std::slice::from_ref(&rec));
    assert_eq!(journal::read(dir.path()).unwrap().records, [rec]);
}

/// Append records to `dir`'s journal through a write session, as every
/// command does.
fn append(dir: &Path, records: &[Record]) {
    let mut s = Session::new(SessionOptions::new("test")).unwrap();
    s.lock(&[dir]).unwrap();
    s.journal(dir, records).unwrap();
}

/// A record as the journal stores it: every string sanitized.
fn sanitized(r: &Record) -> Record {
    let s = |t: &str| kvc::text::sanitize_line(t.as_bytes());
    Record {
        op: s(&r.op),
        key: s(&r.key),
        reason: s(&r.reason),
        policy: r.policy.as_deref().map(s),
        why: s(&r.why),
        ..r.clone()
    }
}

fn record() -> impl Strategy<Value = Record> {
    (
        (
            any::<u64>(),
            "\\PC{0,12}",
            "[ -~\\n\\t]{0,40}",
            any::<u64>(),
        ),
        (any::<u32>(), any::<u32>(), "\\PC{0,12}"),
        (
            prop::option::of(prop::num::f64::NORMAL | prop::num::f64::ZERO),
            prop::option::of("[a-z0-9-]{0,12}"),
            "\\PC{0,20}",
        ),
    )
        .prop_map(
            |((time, op, key, bytes), (tokens, hits, reason), (score, policy, why))| Record {
                time,
                op,
                key,
                bytes,
                tokens,
                hits,
                reason,
                score,
                policy,
                why,
            },
        )
}

proptest! {
    // Each case appends with an fsync: fewer cases keep the suite fast.
    #![proptest_config(config(48))]

    #[test]
    fn journal_records_round_trip(records in vec(record(), 1..4), torn in vec(any::<u8>(), 0..20)) {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &records);
        // A torn tail (a crash mid-append) costs one damaged line, nothing else.
        let path = journal::journal_path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let torn: Vec<u8> = torn.into_iter().filter(|&b| b != b'\n').collect();
        bytes.extend_from_slice(&torn);
        let read = journal::parse(&bytes);
        let want: Vec<Record> = records.iter().map(sanitized).collect();
        prop_assert_eq!(&read.records, &want);
        prop_assert_eq!(read.damaged, usize::from(!torn.is_empty()));
    }
}

// ---------------------------------------------------------------------------
// Bundles (`kvc import`)
//
// Two properties of `bundle::import`, each run as a dry run and then for
// real into a fresh directory:
//
// - Arbitrary bytes, and tar streams shaped like a bundle (ustar headers
//   written here by hand around checkpoint-shaped files, digest records
//   honest or lying in one field, a manifest or garbage; type, size and
//   mtime fields exact, a little off, or anything; then byte flips, with
//   the header checksums maybe re-sealed): no panic, allocation bounded by
//   the input, and either an error with nothing created, or a report that
//   agrees with the directory, whose every file is a checkpoint that
//   verifies and whose bytes are in the input verbatim.
// - Real bundles written by `bundle::export` from byte-built checkpoints,
//   then damaged one way (a byte flipped, the stream cut, a 512-byte block
//   inserted): whatever is installed is byte-identical to the exported
//   checkpoint, damage to a checkpoint's bytes is always caught (the
//   BLAKE3 digest), and every entry complete before the damage is still
//   installed.

/// What every import allocates whatever its input: the buffers it
/// streams entries through (its own, and those in flight to its writing
/// thread).
const IMPORT_FIXED: usize = bundle::IMPORT_FIXED;

/// Import holds one small entry (a digest record, the manifest) at a time,
/// in a vector that grows as its bytes arrive: by doubling, so up to twice
/// the input in one piece.
fn assert_import_bounded(a: Allocs, input: usize, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        a.largest <= 2 * input + SLACK + bundle::CHUNK,
        "{what}: largest allocation {} for {input} input bytes",
        a.largest
    );
    prop_assert!(
        a.total <= 8 * input + 4 * SLACK + IMPORT_FIXED,
        "{what}: {} bytes allocated in all for {input} input bytes",
        a.total
    );
    Ok(())
}

// Tar streams, written from the POSIX ustar layout (not with the tar
// crate), so that every field can lie.

const BLOCK: usize = 512;

/// A numeric header field: octal digits and a NUL when the value fits,
/// else GNU's base-256 form (high bit set, big-endian binary), which lets
/// a header carry any u64.
fn tar_number(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    if v < 1u64 << (3 * digits) {
        field[..digits].copy_from_slice(format!("{v:0digits$o}").as_bytes());
        field[digits] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let at = field.len() - 8;
        field[at..].copy_from_slice(&v.to_be_bytes());
    }
}

/// Set a header block's checksum: the sum of its bytes, the checksum field
/// counted as spaces.
fn seal(h: &mut [u8]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn ustar_header(name: &[u8], size: u64, mtime: u64, typeflag: u8) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    tar_number(&mut h[100..108], 0o600);
    tar_number(&mut h[108..116], 0);
    tar_number(&mut h[116..124], 0);
    tar_number(&mut h[124..136], size);
    tar_number(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    seal(&mut h);
    h
}

/// Re-seal every block that looks like a ustar header, so that damage to
/// a header's fields gets past the checksum into the importer.
fn reseal_headers(b: &mut [u8]) {
    for block in b.chunks_exact_mut(BLOCK) {
        if &block[257..262] == b"ustar" {
            seal(block);
        }
    }
}

/// How a tar entry's header frames its content.
#[derive(Clone, Debug)]
struct Framing {
    typeflag: u8,
    size: LenField,
    mtime: u64,
}

fn framing() -> impl Strategy<Value = Framing> {
    (
        prop_oneof![
            30 => Just(b'0'),
            1 => Just(0u8),
            1 => prop::sample::select(b"125LKxgS7".to_vec()),
            1 => any::<u8>(),
        ],
        prop_oneof![
            30 => Just(LenField::Exact),
            1 => (-600i64..600).prop_map(LenField::Delta),
            // Up to twice the largest manifest import reads.
            1 => (0u64..(1 << 27)).prop_map(LenField::Any),
            1 => any::<u64>().prop_map(LenField::Any),
        ],
        // Past 2^33 the field takes the base-256 form.
        prop_oneof![6 => 0u64..(1 << 33), 1 => any::<u64>()],
    )
        .prop_map(|(typeflag, size, mtime)| Framing {
            typeflag,
            size,
            mtime,
        })
}

fn append_entry(b: &mut Vec<u8>, name: &[u8], content: &[u8], f: &Framing) {
    let size = apply(&f.size, content.len() as u64);
    b.extend(ustar_header(name, size, f.mtime, f.typeflag));
    b.extend_from_slice(content);
    b.resize(b.len().next_multiple_of(BLOCK), 0);
}

/// A digest record as doc/DESIGN.md documents it (built with `json!`, not the
/// library's `EntryRecord`), honest about `bytes` under the name `file`.
fn record_value(file: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "bundle": 1,
        "file": file,
        "key": file.strip_suffix(".kv").unwrap_or(file).to_ascii_lowercase(),
        "size": bytes.len(),
        "blake3": blake3::hash(bytes).to_hex().to_string(),
        "status": "ok",
        "header": null,
    })
}

/// A digest record honest, or lying in one way; or none at all.
#[derive(Clone, Debug)]
enum RecordLie {
    Honest,
    Version,
    File,
    Size(i64),
    Digest,
    Excluded,
    Garbage(Vec<u8>),
    Missing,
}

fn record_lie() -> impl Strategy<Value = RecordLie> {
    prop_oneof![
        16 => Just(RecordLie::Honest),
        1 => Just(RecordLie::Version),
        1 => Just(RecordLie::File),
        1 => prop_oneof![-100i64..0, 1i64..100].prop_map(RecordLie::Size),
        1 => Just(RecordLie::Digest),
        1 => Just(RecordLie::Excluded),
        1 => vec(any::<u8>(), 0..80).prop_map(RecordLie::Garbage),
        1 => Just(RecordLie::Missing),
    ]
}

fn digest_record(file: &str, bytes: &[u8], lie: &RecordLie) -> Vec<u8> {
    let mut r = record_value(file, bytes);
    match lie {
        RecordLie::Honest | RecordLie::Missing => {}
        RecordLie::Version => r["bundle"] = 2.into(),
        RecordLie::File => r["file"] = format!("{}.kv", "0".repeat(40)).into(),
        RecordLie::Size(d) => r["size"] = (bytes.len() as u64).saturating_add_signed(*d).into(),
        RecordLie::Digest => r["blake3"] = blake3::hash(b"other").to_hex().to_string().into(),
        RecordLie::Excluded => {
            r["status"] = "excluded".into();
            r["problem"] = "file changed while being exported".into();
        }
        RecordLie::Garbage(g) => return g.clone(),
    }
    serde_json::to_vec_pretty(&r).unwrap()
}

/// The name a checkpoint entry goes under.
#[derive(Clone, Copy, Debug)]
enum CkptName {
    /// The SHA-1 of its text (of all its bytes when the text is not there).
    Key,
    /// The same in upper case, as ds4 accepts.
    UpperKey,
    Sysprompt,
}

fn checkpoint_name(bytes: &[u8], how: CkptName) -> String {
    let text_end = bytes
        .get(48..52)
        .map(|b| 52 + u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let key = match text_end {
        Some(end) if end <= bytes.len() => sha1_hex(&bytes[52..end]),
        _ => sha1_hex(bytes),
    };
    match how {
        CkptName::Key => format!("{key}.kv"),
        CkptName::UpperKey => format!("{}.kv", key.to_ascii_uppercase()),
        CkptName::Sysprompt => "sysprompt.kv".into(),
    }
}

/// What one stretch of a shaped bundle holds.
#[derive(Clone, Debug)]
enum Part {
    /// A checkpoint-shaped file under a checkpoint name, and its record.
    Checkpoint {
        bytes: Vec<u8>,
        name: CkptName,
        record: RecordLie,
        framing: Framing,
        record_framing: Framing,
    },
    /// MANIFEST.json: listing the checkpoints so far, or garbage.
    Manifest {
        garbage: Option<Vec<u8>>,
        framing: Framing,
    },
    /// Any name (hostile ones among them), any content.
    Other {
        name: Vec<u8>,
        content: Vec<u8>,
        framing: Framing,
    },
}

fn part() -> impl Strategy<Value = Part> {
    let checkpoint = prop_oneof![
        // Healthy, byte-built (tests/common): these get installed.
        2 => (vec(any::<u8>(), 0..48), 0usize..1200)
            .prop_map(|(text, n)| Ckpt::new(text).opaque_payload(n).bytes()),
        1 => shaped_checkpoint(),
    ];
    let name = prop_oneof![
        6 => Just(CkptName::Key),
        1 => Just(CkptName::UpperKey),
        1 => Just(CkptName::Sysprompt),
    ];
    let other_name = prop_oneof![
        vec(any::<u8>(), 0..110),
        "[0-9a-f]{40}\\.kv(\\.kvc-meta\\.json)?".prop_map(String::into_bytes),
        prop::sample::select(vec![
            &b"MANIFEST.json"[..],
            b"sysprompt.kv",
            b"sysprompt.kv.kvc-meta.json",
            b"../escape.kv",
            b"/etc/passwd",
            b"sub/dir.kv",
            b"notes.txt",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop_oneof![
        6 => (checkpoint, name, record_lie(), framing(), framing()).prop_map(
            |(bytes, name, record, framing, record_framing)| Part::Checkpoint {
                bytes,
                name,
                record,
                framing,
                record_framing,
            }
        ),
        1 => (prop::option::of(vec(any::<u8>(), 0..100)), framing())
            .prop_map(|(garbage, framing)| Part::Manifest { garbage, framing }),
        1 => (other_name, vec(any::<u8>(), 0..700), framing()).prop_map(
            |(name, content, framing)| Part::Other {
                name,
                content,
                framing,
            }
        ),
    ]
}

fn shaped_bundle() -> impl Strategy<Value = Vec<u8>> {
    let end = prop_oneof![
        3 => Just(vec![0u8; 2 * BLOCK]),
        1 => Just(Vec::new()),
        1 => vec(any::<u8>(), 0..600),
    ];
    let flips = vec((any::<prop::sample::Index>(), any::<u8>()), 0..3);
    (vec(part(), 0..5), end, flips, any::<bool>()).prop_map(|(parts, end, flips, reseal)| {
        let mut b = Vec::new();
        let mut listed = Vec::new();
        for p in parts {
            match p {
                Part::Checkpoint {
                    bytes,
                    name,
                    record,
                    framing,
                    record_framing,
                } => {
                    let file = checkpoint_name(&bytes, name);
                    append_entry(&mut b, file.as_bytes(), &bytes, &framing);
                    if !matches!(record, RecordLie::Missing) {
                        let rec = digest_record(&file, &bytes, &record);
                        let rec_name = format!("{file}.kvc-meta.json");
                        append_entry(&mut b, rec_name.as_bytes(), &rec, &record_framing);
                    }
                    listed.push(record_value(&file, &bytes));
                }
                Part::Manifest { garbage, framing } => {
                    let m = garbage.unwrap_or_else(|| {
                        serde_json::to_vec_pretty(&serde_json::json!({
                            "bundle": 1,
                            "kvc_version": "0.0.0",
                            "exported_at": NOW,
                            "entries": listed,
                            "left_out": [],
                        }))
                        .unwrap()
                    });
                    append_entry(&mut b, b"MANIFEST.json", &m, &framing);
                }
                Part::Other {
                    name,
                    content,
                    framing,
                } => append_entry(&mut b, &name, &content, &framing),
            }
        }
        b.extend(end);
        for (i, v) in flips {
            if !b.is_empty() {
                let i = i.index(b.len());
                b[i] = v;
            }
        }
        if reseal {
            reseal_headers(&mut b);
        }
        b
    })
}

// Running an import and checking what it left.

fn import_options(dry_run: bool) -> ImportOptions {
    ImportOptions {
        on_conflict: OnConflict::Skip,
        reset_stats: false,
        now: NOW,
        dry_run,
        source: "property".into(),
        budget: None,
        include_agent: false,
        engine: None,
    }
}

/// What an import into a fresh directory made of some bytes.
struct Imported {
    /// `None`: the import returned an error.
    report: Option<ImportReport>,
    /// The checkpoint files in the directory afterwards, by name.
    files: BTreeMap<String, Vec<u8>>,
}

fn occurs_in(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The files in an import's target, each checked: a canonical checkpoint
/// name, mode 0600, bytes that occur verbatim in the input, and a
/// checkpoint that verifies (the envelope of FORMAT.md §3, tokens, text
/// SHA-1 = name). Nothing else may be there but kvc's state directory
/// (no temp file).
fn checkpoints_in(target: &Path, input: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, TestCaseError> {
    let mut files = BTreeMap::new();
    if !target.exists() {
        return Ok(files);
    }
    for e in fs::read_dir(target).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name == scan::STATE_DIR {
            for f in fs::read_dir(e.path()).unwrap() {
                let f = f.unwrap().file_name().into_string().unwrap();
                prop_assert!(f == LOCK_FILE || f == JOURNAL_FILE, "unexpected .kvc/{}", f);
            }
            continue;
        }
        let hash = name
            .strip_suffix(".kv")
            .filter(|s| s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        prop_assert!(
            hash.is_some() || name == "sysprompt.kv",
            "not a checkpoint name: {}",
            name
        );
        let meta = e.metadata().unwrap();
        prop_assert!(meta.is_file());
        prop_assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let bytes = fs::read(e.path()).unwrap();
        prop_assert!(occurs_in(input, &bytes), "{}: bytes not in the input", name);
        prop_assert!(
            bytes.len() >= PREFIX_LEN && &bytes[..4] == b"KVC\x01",
            "{}",
            name
        );
        prop_assert!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()) != 0);
        let text_len = u32::from_le_bytes(bytes[48..52].try_into().unwrap()) as usize;
        prop_assert!(
            52u128 + text_len as u128 + u64_at(&bytes, 40) as u128 <= bytes.len() as u128,
            "{}: the envelope does not fit",
            name
        );
        if let Some(h) = hash {
            prop_assert_eq!(sha1_hex(&bytes[52..52 + text_len]), h);
        }
        prop_assert!(CheckpointFile::open(&e.path()).is_ok());
        files.insert(name, bytes);
    }
    Ok(files)
}

/// A report of an import into an empty directory agrees with what it left.
fn report_agrees(r: &ImportReport, files: &BTreeMap<String, Vec<u8>>) -> Result<(), TestCaseError> {
    let mut installed = BTreeMap::new();
    for e in &r.entries {
        // Nothing to skip, replace or find present in an empty directory.
        prop_assert!(
            matches!(e.action, Action::Installed | Action::Rejected),
            "{:?}",
            e
        );
        if e.action == Action::Rejected {
            prop_assert!(e.message.is_some(), "a rejection says why: {:?}", e);
        } else {
            let key = e.key.as_deref().unwrap();
            let name = if key == "sysprompt" {
                "sysprompt.kv".to_string()
            } else {
                format!("{key}.kv")
            };
            prop_assert!(installed.insert(name, e.size).is_none(), "twice: {:?}", e);
        }
    }
    prop_assert_eq!(installed.len(), files.len());
    for (name, size) in &installed {
        let bytes = files.get(name);
        prop_assert!(bytes.is_some(), "{} reported installed, not there", name);
        prop_assert_eq!(*size, bytes.map(|b| b.len() as u64));
    }
    let on_disk: u64 = files.values().map(|b| b.len() as u64).sum();
    prop_assert_eq!(r.bytes_written(), on_disk);
    prop_assert_eq!(
        r.has_problems(),
        r.truncated || r.count(Action::Rejected) > 0
    );
    Ok(())
}

/// What an import does, as (entry, key, action).
fn actions(r: &ImportReport) -> Vec<(String, Option<String>, Action)> {
    r.entries
        .iter()
        .map(|e| (e.entry.clone(), e.key.clone(), e.action))
        .collect()
}

/// A dry run, then an import, of `input` into a fresh directory, with the
/// checks that hold whatever the bytes.
fn import_fresh(input: &[u8]) -> Result<Imported, TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("cache");
    let (dry, a) =
        measured(|| bundle::import(input, &target, &import_options(true), &mut NoProgress));
    assert_import_bounded(a, input.len(), "import --dry-run")?;
    prop_assert!(!target.exists(), "a dry run created the target");
    let (real, a) =
        measured(|| bundle::import(input, &target, &import_options(false), &mut NoProgress));
    assert_import_bounded(a, input.len(), "import")?;
    let files = checkpoints_in(&target, input)?;
    match (&dry, &real) {
        (Ok(d), Ok(r)) => {
            // In an empty directory the dry run predicts every action.
            prop_assert_eq!(actions(d), actions(r));
            prop_assert_eq!(d.truncated, r.truncated);
            report_agrees(r, &files)?;
        }
        // Not a tar stream at all: nothing was created.
        (Err(_), Err(_)) => prop_assert!(!target.exists()),
        _ => prop_assert!(
            false,
            "the dry run and the import disagree: {:?} / {:?}",
            dry,
            real
        ),
    }
    Ok(Imported {
        report: real.ok(),
        files,
    })
}

// Real bundles, and damage to them.

/// A bundle written by `bundle::export`, and where its entries lie.
struct Exported {
    bytes: Vec<u8>,
    /// Checkpoint file name → the bytes exported.
    originals: BTreeMap<String, Vec<u8>>,
    /// The checkpoint entries, in stream order.
    spans: Vec<Span>,
    /// End of MANIFEST.json's data, and of its last block.
    manifest_end: usize,
    manifest_block_end: usize,
}

struct Span {
    name: String,
    /// The checkpoint's bytes in the stream.
    data: Range<usize>,
    /// End of its digest record's data: import has all it needs here.
    record_end: usize,
}

/// The entries of a tar stream written by export: names and data ranges,
/// read from the ustar fields.
fn tar_entries(b: &[u8]) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + BLOCK <= b.len() && b[at..at + BLOCK].iter().any(|&x| x != 0) {
        let h = &b[at..at + BLOCK];
        let name_len = h[..100].iter().position(|&x| x == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_len].to_vec()).unwrap();
        let size = std::str::from_utf8(&h[124..136]).unwrap();
        let size = usize::from_str_radix(size.trim_matches(['\0', ' ']), 8).unwrap();
        let data = at + BLOCK..at + BLOCK + size;
        at = data.end.next_multiple_of(BLOCK);
        out.push((name, data));
    }
    out
}

fn export_set(set: &[Ckpt]) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let mut originals = BTreeMap::new();
    for c in set {
        fs::write(dir.path().join(c.file_name()), c.bytes()).unwrap();
        originals.insert(c.file_name(), c.bytes());
    }
    let scan = kvc::scan_dir(dir.path(), ScanOptions::default()).unwrap();
    assert_eq!(scan.checkpoints.len(), set.len(), "healthy fixtures");
    let (report, out) = bundle::export(
        &scan.checkpoints,
        StreamOut(Vec::new()),
        Path::new("-"),
        NOW,
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(report.entries.len(), set.len());
    let bytes = out.0;
    let entries = tar_entries(&bytes);
    let mut spans = Vec::new();
    for (i, (name, data)) in entries.iter().enumerate() {
        if name.ends_with(".kv") {
            let (record, rec) = &entries[i + 1];
            assert_eq!(*record, format!("{name}.kvc-meta.json"));
            assert_eq!(&bytes[data.clone()], &originals[name][..]);
            spans.push(Span {
                name: name.clone(),
                data: data.clone(),
                record_end: rec.end,
            });
        }
    }
    assert_eq!(spans.len(), set.len());
    let (last, manifest) = entries.last().unwrap();
    assert_eq!(last, "MANIFEST.json");
    Exported {
        manifest_end: manifest.end,
        manifest_block_end: manifest.end.next_multiple_of(BLOCK),
        bytes,
        originals,
        spans,
    }
}

/// A bundle of one checkpoint and one of four (a tool-id map trailer, an
/// agent's sysprompt among them), exported once per test run.
fn exported_bundles() -> &'static [Exported] {
    static BUNDLES: OnceLock<Vec<Exported>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        let mut sysprompt = Ckpt::new(b"You are an agent.".to_vec())
            .reason(REASON_AGENT_SYSTEM)
            .opaque_payload(200);
        sysprompt.name = Some("sysprompt.kv".into());
        let sets = [
            vec![Ckpt::new(chat("a single entry")).opaque_payload(900)],
            vec![
                Ckpt::new(chat("alpha")).opaque_payload(300),
                Ckpt::new(chat("beta")).opaque_payload(1500),
                Ckpt::new(chat("tools"))
                    .opaque_payload(40)
                    .with_tool_map(&[(b"call_1", b"<dsml>x</dsml>")]),
                sysprompt,
            ],
        ];
        sets.iter().map(|s| export_set(s)).collect()
    })
}

/// One way of damaging a bundle.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR one byte (anywhere, or one of a checkpoint's) with a non-zero
    /// value, then maybe re-seal the header checksums, so that damage to a
    /// header's fields is read as such.
    Flip {
        at: prop::sample::Index,
        in_checkpoint: bool,
        xor: u8,
        reseal: bool,
    },
    /// Cut the stream short.
    Truncate { at: prop::sample::Index },
    /// Insert 512 bytes, at a block boundary or anywhere: a copy of one of
    /// the bundle's own blocks (a header, a record, data), or arbitrary.
    Insert {
        at: prop::sample::Index,
        aligned: bool,
        block: Block,
    },
}

#[derive(Clone, Debug)]
enum Block {
    Copy(prop::sample::Index),
    Bytes(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>;
    prop_oneof![
        (index(), any::<bool>(), 1u8..=255, any::<bool>()).prop_map(
            |(at, in_checkpoint, xor, reseal)| Mutation::Flip {
                at,
                in_checkpoint,
                xor,
                reseal
            }
        ),
        index().prop_map(|at| Mutation::Truncate { at }),
        (
            index(),
            any::<bool>(),
            prop_oneof![
                index().prop_map(Block::Copy),
                vec(any::<u8>(), BLOCK).prop_map(Block::Bytes),
            ]
        )
            .prop_map(|(at, aligned, block)| Mutation::Insert { at, aligned, block }),
    ]
}

/// The damaged bundle, and the offset of its first damaged byte.
fn mutate(ex: &Exported, m: &Mutation) -> (Vec<u8>, usize) {
    let b = &ex.bytes;
    let mut out = b.to_vec();
    match m {
        Mutation::Flip {
            at,
            in_checkpoint,
            xor,
            reseal,
        } => {
            let at = if *in_checkpoint {
                let mut i = at.index(ex.spans.iter().map(|s| s.data.len()).sum());
                let s = ex.spans.iter().find(|s| {
                    let inside = i < s.data.len();
                    if !inside {
                        i -= s.data.len();
                    }
                    inside
                });
                s.unwrap().data.start + i
            } else {
                at.index(b.len())
            };
            out[at] ^= xor;
            if *reseal {
                reseal_headers(&mut out);
            }
            (out, at)
        }
        Mutation::Truncate { at } => {
            let at = at.index(b.len());
            out.truncate(at);
            (out, at)
        }
        Mutation::Insert { at, aligned, block } => {
            let mut at = at.index(b.len() + 1);
            if *aligned {
                at -= at % BLOCK;
            }
            let block = match block {
                Block::Copy(i) => {
                    let i = i.index(b.len() / BLOCK) * BLOCK;
                    b[i..i + BLOCK].to_vec()
                }
                Block::Bytes(v) => v.clone(),
            };
            out.splice(at..at, block);
            (out, at)
        }
    }
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn any_bytes_as_a_bundle(input in prop_oneof![
        1 => vec(any::<u8>(), 0..1024),
        4 => shaped_bundle(),
    ]) {
        import_fresh(&input)?;
    }
}

proptest! {
    // Each case installs a few files with fsyncs: fewer cases keep the
    // suite fast.
    #![proptest_config(config(96))]

    #[test]
    fn damaged_bundles_never_install_damaged_bytes(
        which in 0..exported_bundles().len(),
        m in mutation(),
    ) {
        let ex = &exported_bundles()[which];
        let (input, at) = mutate(ex, &m);
        let got = import_fresh(&input)?;
        for (name, bytes) in &got.files {
            prop_assert!(
                ex.originals.get(name) == Some(bytes),
                "{} installed with bytes other than the exported ones",
                name
            );
        }
        // Entries complete before the damage were processed and installed.
        for s in &ex.spans {
            if s.record_end <= at {
                prop_assert!(
                    got.files.contains_key(&s.name),
                    "{} was complete before the damage at {} but is not installed",
                    s.name,
                    at
                );
            }
        }
        match &m {
            Mutation::Flip { .. } => {
                if let Some(s) = ex.spans.iter().find(|s| s.data.contains(&at)) {
                    // The digest catches any change to a checkpoint's bytes.
                    prop_assert!(!got.files.contains_key(&s.name), "damaged {} installed", s.name);
                    let key = s.name.strip_suffix(".kv").unwrap();
                    let r = got.report.as_ref().expect("the stream starts with a sound header");
                    prop_assert!(
                        r.entries
                            .iter()
                            .any(|e| e.key.as_deref() == Some(key) && e.action == Action::Rejected),
                        "damage in {} not reported: {:?}",
                        s.name,
                        r.entries
                    );
                }
            }
            Mutation::Truncate { .. } => {
                for s in &ex.spans {
                    if s.record_end > at {
                        prop_assert!(!got.files.contains_key(&s.name), "{} installed from a cut stream", s.name);
                    }
                }
                if at < ex.manifest_end {
                    prop_assert!(
                        got.report.as_ref().is_none_or(|r| r.truncated),
                        "cut at {} of {} bytes, not reported as truncated",
                        at,
                        ex.bytes.len()
                    );
                }
                if at >= ex.manifest_block_end {
                    // Only end-of-archive zeros are missing: everything
                    // was installed. A stream that ends at a block boundary
                    // or after one whole zero block ends there; a torn
                    // first zero block is a torn stream.
                    let r = got.report.as_ref().expect("the stream is sound up to here");
                    prop_assert_eq!(got.files.len(), ex.originals.len());
                    let torn = at % BLOCK != 0 && at < ex.manifest_block_end + BLOCK;
                    prop_assert_eq!(r.truncated, torn, "cut at {}", at);
                }
            }
            Mutation::Insert { .. } => {}
        }
    }
}

#[test]
fn exported_bundles_import_whole() {
    for ex in exported_bundles() {
        let got = import_fresh(&ex.bytes).unwrap();
        let r = got.report.unwrap();
        assert!(!r.has_problems(), "{r:?}");
        assert_eq!(got.files, ex.originals);
    }
}

/// The shaped bundles reach both outcomes: without installs the property
/// on them would hold vacuously.
#[test]
fn shaped_bundles_reach_install_and_reject() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = shaped_bundle();
    let (mut installed, mut rejected) = (0, 0);
    for _ in 0..64 {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("cache");
        if let Ok(r) = bundle::import(&input[..], &target, &import_options(true), &mut NoProgress) {
            installed += r.count(Action::Installed);
            rejected += r.count(Action::Rejected);
        }
    }
    assert!(installed >= 10, "{installed} installs in 64 shaped bundles");
    assert!(rejected >= 10, "{rejected} rejections in 64 shaped bundles");
}

/// Found by `any_bytes_as_a_bundle`: a checkpoint entry whose tar header
/// gives an mtime past what the system clock type holds (GNU's base-256
/// form lets the field say up to 2^64-1 seconds) made import panic with
/// "overflow when adding duration to instant" while installing it, after
/// every check had passed.
#[test]
fn regression_an_entry_mtime_beyond_the_clock_does_not_panic() {
    let c = Ckpt::new(chat("saved in the far future")).opaque_payload(100);
    let (name, bytes) = (c.file_name(), c.bytes());
    let exact = Framing {
        typeflag: b'0',
        size: LenField::Exact,
        mtime: CREATED,
    };
    for mtime in [u64::MAX, 1 << 63, i64::MAX as u64, 1 << 40] {
        let mut b = Vec::new();
        let framing = Framing {
            mtime,
            ..exact.clone()
        };
        append_entry(&mut b, name.as_bytes(), &bytes, &framing);
        let record = digest_record(&name, &bytes, &RecordLie::Honest);
        let record_name = format!("{name}.kvc-meta.json");
        append_entry(&mut b, record_name.as_bytes(), &record, &exact);
        let manifest = serde_json::json!({
            "bundle": 1,
            "kvc_version": "0.0.0",
            "exported_at": NOW,
            "entries": [record_value(&name, &bytes)],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        append_entry(&mut b, b"MANIFEST.json", &manifest, &exact);
        b.extend([0; 2 * BLOCK]);
        let got = import_fresh(&b).unwrap();
        let r = got.report.unwrap();
        assert!(!r.has_problems(), "mtime {mtime}: {r:?}");
        assert_eq!(got.files.get(&name), Some(&bytes), "mtime {mtime}");
    }
}

/// Found by `any_bytes_as_a_bundle`: a 2 KiB stream whose MANIFEST.json
/// header claimed 80 074 bytes (under the 64 MiB a manifest may have) made
/// import allocate the claimed size up front; claiming the full 64 MiB
/// cost 64 MiB. Small entries are now read into a buffer that grows with
/// the bytes that actually arrive.
#[test]
fn regression_a_short_stream_claiming_a_large_manifest_allocates_what_arrives() {
    for claimed in [80_074, bundle::MAX_MANIFEST_LEN] {
        let mut b = ustar_header(b"MANIFEST.json", claimed, CREATED, b'0');
        b.extend_from_slice(br#"{"bundle": 1, "entries": []}"#);
        b.resize(4 * BLOCK, 0);
        for dry_run in [true, false] {
            let root = tempfile::tempdir().unwrap();
            let target = root.path().join("cache");
            let (r, a) = measured(|| {
                bundle::import(&b[..], &target, &import_options(dry_run), &mut NoProgress)
            });
            assert!(
                a.largest <= IMPORT_FIXED + SLACK,
                "claimed {claimed}: largest allocation {}",
                a.largest
            );
            let r = r.unwrap();
            assert!(r.truncated, "{r:?}");
            assert!(r.manifest.is_none());
        }
    }
}
