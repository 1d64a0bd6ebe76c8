//! `kvc trailer`: listing, exporting and rewriting tool-id map trailers,
//! the byte invariants of a rewrite, and its crash safety.
//!
//! Expected files are built byte by byte with `common::Ckpt`; what ds4
//! would see is checked through the library's reader and a hand-written
//! parse of FORMAT.md §5.

mod common;

use common::*;
use kvc::format::checkpoint::CheckpointFile;
use kvc::format::dialect::Engine;
use kvc::format::trailer::{ToolMap, ToolMapEntry};
use kvc::trailer::rewrite::{self, Applied, Edit, Method, Step};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// ds4 sample (EXPECTED.md): a continued checkpoint with a one-entry map.
const DS4_MAP: &str = "2b5d6e1745e9bb7d85cf5c654ffe558f2481c785";
const DS4_MAP_ID: &str = "call_5f2a9c7e01";
/// The cold checkpoint, no map.
const DS4_PLAIN: &str = "d78becaf80c3dd16ecec443553e5305b2557acb3";
/// Ext bit 1 set (responses-visible), no map.
const DS4_RESPONSES: &str = "f6cc2ba7048df41f6708b6e71326b6e07b61527a";
/// broken sample: bit 0 set, trailer is garbage.
const BROKEN_GARBAGE: &str = "0191b4b1408315524d06410019015517869ca16a";
/// broken sample: valid map whose DSML block is not in the text.
const BROKEN_MISSING: &str = "c8cac2ea4ed31c966fdd7d7d9e28f462b4a05b1f";

/// Set by `kill_at_every_step` when it re-executes this test binary as
/// the crash driver (`crash_driver` below): the trailer command's words
/// (separated by U+001F), then the step to be killed at. The release
/// binary knows nothing of it.
const DRIVER_ENV: &str = "KVC_TEST_CRASH_DRIVER";

// ---------------------------------------------------------------------------
// Reading files the test's own way
// ---------------------------------------------------------------------------

/// A file cut at the offsets of FORMAT.md §3.
struct Parts {
    header: [u8; 48],
    /// text_len, text and payload.
    body: Vec<u8>,
    /// Everything after the payload.
    after: Vec<u8>,
}

fn parts(b: &[u8]) -> Parts {
    let text_len = u32::from_le_bytes(b[48..52].try_into().unwrap()) as usize;
    let payload = u64::from_le_bytes(b[40..48].try_into().unwrap()) as usize;
    let end = 52 + text_len + payload;
    Parts {
        header: b[..48].try_into().unwrap(),
        body: b[48..end].to_vec(),
        after: b[end..].to_vec(),
    }
}

fn bit0(b: &[u8]) -> bool {
    b[6] & 1 != 0
}

/// Header bytes other than ext bit 0, text and payload are identical.
fn assert_same_but_trailer(before: &[u8], after: &[u8]) {
    let (a, b) = (parts(before), parts(after));
    let (mut ha, mut hb) = (a.header, b.header);
    ha[6] &= !1;
    hb[6] &= !1;
    assert_eq!(ha, hb, "header changed beyond ext bit 0");
    assert!(a.body == b.body, "text or payload changed");
}

/// Byte equality that reports where, not a dump of two files.
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes, expected {}; first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A KTM section parsed by hand (FORMAT.md §5); panics when malformed.
fn parse_ktm(b: &[u8]) -> Entries {
    assert_eq!(&b[..4], b"KTM\x01");
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let count = u32_at(4);
    let mut off = 8;
    let mut out = Vec::new();
    for _ in 0..count {
        let (il, dl) = (u32_at(off), u32_at(off + 4));
        off += 8;
        out.push((
            b[off..off + il].to_vec(),
            b[off + il..off + il + dl].to_vec(),
        ));
        off += il + dl;
    }
    assert_eq!(off, b.len(), "bytes after the section");
    out
}

/// What a ds4 reader gets from the file, checked as `kvc verify` checks it:
/// the envelope through the library, and with bit 0 set exactly one
/// well-formed section (the `bad-trailer` error otherwise). Panics on
/// anything verify would call an error.
#[derive(Debug, PartialEq)]
enum Seen {
    NoMap,
    Map(Entries),
}

fn ds4_sees(path: &Path) -> Seen {
    let cf = CheckpointFile::open(path).expect("envelope must check out");
    if !cf.header.ext_flags.has_tool_map() {
        return Seen::NoMap;
    }
    // The bytes after the payload, read the test's own way.
    let after = fs::read(path).unwrap()[cf.payload_end() as usize..].to_vec();
    let map = ToolMap::decode(&after).expect("bit 0 set: the section must be whole");
    assert_eq!(
        parse_ktm(&after),
        map.entries
            .iter()
            .map(|e| (e.id.clone(), e.dsml.clone()))
            .collect::<Entries>()
    );
    Seen::Map(parse_ktm(&after))
}

/// What ds4 gets from a file's bytes; `None` when bit 0 is set over bytes
/// that are not one section (a deliberately broken "before" file).
fn seen_in(bytes: &[u8]) -> Option<Seen> {
    if !bit0(bytes) {
        return Some(Seen::NoMap);
    }
    let map = ToolMap::decode(&parts(bytes).after).ok()?;
    Some(Seen::Map(
        map.entries.into_iter().map(|e| (e.id, e.dsml)).collect(),
    ))
}

// ---------------------------------------------------------------------------
// Building checkpoints and maps
// ---------------------------------------------------------------------------

/// A DSML block as ds4 renders one tool call.
fn dsml(name: &str, arg: &str) -> Vec<u8> {
    format!(
        "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"{name}\">{arg}</｜DSML｜invoke>\n</｜DSML｜tool_calls>"
    )
    .into_bytes()
}

/// A chat text containing the given DSML blocks.
fn text_with(blocks: &[&[u8]]) -> Vec<u8> {
    let mut t = chat("Run the tools.");
    for b in blocks {
        t.extend_from_slice(b);
        t.extend_from_slice("<｜end▁of▁sentence｜>".as_bytes());
    }
    t
}

/// The same checkpoint with another map (an empty one: no section, bit 0
/// clear), built from scratch.
fn with_map(base: &Ckpt, entries: &[(&[u8], &[u8])]) -> Ckpt {
    let mut c = base.clone();
    c.trailer.clear();
    c.ext_flags &= !1;
    if entries.is_empty() {
        c
    } else {
        c.with_tool_map(entries)
    }
}

fn map_json(entries: &[(&[u8], &[u8])]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|(id, d)| {
                json!({"id": String::from_utf8(id.to_vec()).unwrap(),
                       "dsml": String::from_utf8(d.to_vec()).unwrap()})
            })
            .collect(),
    )
}

fn write_json(env: &TestEnv, name: &str, v: &Value) -> PathBuf {
    let p = env.root.path().join(name);
    fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
    p
}

fn file(env: &TestEnv, key: &str) -> PathBuf {
    env.cache.join(format!("{key}.kv"))
}

fn journal(env: &TestEnv) -> Vec<kvc::session::journal::Record> {
    kvc::session::journal::read(&env.cache).unwrap().records
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Checkpoint files only (a rewrite may create `.kvc/`).
fn checkpoint_bytes(env: &TestEnv) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(&env.cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// ls and export
// ---------------------------------------------------------------------------

#[test]
fn ls_lists_the_fixture_map_and_says_when_there_is_none() {
    let env = TestEnv::with_sample("ds4");
    let bytes = fs::read(file(&env, DS4_MAP)).unwrap();
    let want = parse_ktm(&parts(&bytes).after);
    let v = env.json(&[
        "trailer",
        "ls",
        "-d",
        env.cache.to_str().unwrap(),
        "2b5d",
        "--json",
    ]);
    assert_eq!(v["state"], "map");
    assert_eq!(v["flag"], true);
    assert_eq!(v["key"], DS4_MAP);
    assert_eq!(v["trailer_bytes"], parts(&bytes).after.len());
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), want.len());
    assert_eq!(entries[0]["id"], DS4_MAP_ID);
    assert_eq!(entries[0]["dsml_bytes"], want[0].1.len());
    assert_eq!(entries[0]["in_text"], true);
    assert!(entries[0]["preview"]
        .as_str()
        .unwrap()
        .starts_with("<｜DSML｜tool_calls>"));

    let out = env
        .kvc()
        .args(["trailer", "ls", "-d", env.cache.to_str().unwrap(), DS4_MAP])
        .output()
        .unwrap();
    let human = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(
        human.contains(DS4_MAP_ID) && human.contains("yes"),
        "{human}"
    );

    let v = env.json(&[
        "trailer",
        "ls",
        "-d",
        env.cache.to_str().unwrap(),
        "d78b",
        "--json",
    ]);
    assert_eq!(v["state"], "none");
    assert_eq!(v["entries"].as_array().unwrap().len(), 0);
}

#[test]
fn ls_marks_entries_missing_from_the_text_and_duplicates() {
    let env = TestEnv::with_sample("broken");
    let v = env.json(&[
        "trailer",
        "ls",
        "-d",
        env.cache.to_str().unwrap(),
        "c8ca",
        "--json",
    ]);
    assert_eq!(v["entries"][0]["in_text"], false);

    let (a, b) = (dsml("a", "1"), dsml("b", "2"));
    let c = Ckpt::new(text_with(&[&a, &b])).with_tool_map(&[(b"x", &a), (b"x", &b)]);
    let p = env.add(&c);
    let v = env.json(&["trailer", "ls", p.to_str().unwrap(), "--json"]);
    // ds4 uses the last entry of an id: the first is shadowed by it.
    let ds4: Vec<_> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["ds4"].clone(), e["shadowed_by"].clone()))
        .collect();
    assert_eq!(
        ds4,
        [(json!("shadowed"), json!(2)), (json!("used"), Value::Null)]
    );
}

#[test]
fn ls_and_export_refuse_a_broken_trailer_naming_the_file() {
    let env = TestEnv::with_sample("broken");
    for cmd in ["ls", "export"] {
        let out = env
            .kvc()
            .args([
                "trailer",
                cmd,
                "-d",
                env.cache.to_str().unwrap(),
                BROKEN_GARBAGE,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(BROKEN_GARBAGE) && err.contains("KTM"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn files_with_a_broken_envelope_are_reported_never_rewritten() {
    let env = TestEnv::with_sample("broken");
    let dir = env.cache.to_str().unwrap().to_string();
    let before = env.snapshot();
    // Truncated payload, 4 GiB text claim, empty file.
    for (key, problem) in [
        ("2b37", "payload cut short"),
        ("a76c", "runs past the end"),
        ("da39", "empty file"),
    ] {
        for args in [
            vec!["ls", key],
            vec!["export", key],
            vec!["strip", key, "-n"],
        ] {
            let out = env
                .kvc()
                .arg("trailer")
                .args(&args)
                .args(["-d", &dir])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = stderr_of(&out);
            assert!(
                err.lines().next().unwrap().contains(problem),
                "{args:?}: {err}"
            );
            assert!(err.contains(&dir), "{args:?}: {err}");
        }
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn ls_never_prints_hostile_ids_or_dsml_raw() {
    let env = TestEnv::new();
    let evil = b"\x1b]0;pwned\x07\n<\xc2\x9b2J\xe2\x80\xae>".to_vec();
    let c = Ckpt::new(text_with(&[&evil])).with_tool_map(&[(b"id\x1b[31m", &evil)]);
    let p = env.add(&c);
    for args in [vec!["trailer", "ls"], vec!["trailer", "ls", "--json"]] {
        let mut a = args.clone();
        a.push(p.to_str().unwrap());
        let out = env.kvc().args(&a).output().unwrap();
        assert!(out.status.success());
        let s = String::from_utf8(out.stdout).unwrap();
        assert!(!s.contains('\x1b') && !s.contains('\u{9b}') && !s.contains('\u{202e}'));
        assert!(!s.contains('\x07'));
    }
}

#[test]
fn export_writes_the_exact_map_and_set_takes_it_back_byte_for_byte() {
    let env = TestEnv::with_sample("ds4");
    let path = file(&env, DS4_MAP);
    let original = fs::read(&path).unwrap();
    let out = env
        .kvc()
        .args([
            "trailer",
            "export",
            "-d",
            env.cache.to_str().unwrap(),
            "2b5d",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = parse_ktm(&parts(&original).after);
    assert_eq!(v.as_array().unwrap().len(), want.len());
    assert_eq!(v[0]["id"].as_str().unwrap().as_bytes(), &want[0].0[..]);
    assert_eq!(v[0]["dsml"].as_str().unwrap().as_bytes(), &want[0].1[..]);
    let exported = env.root.path().join("map.json");
    fs::write(&exported, &out.stdout).unwrap();

    env.kvc()
        .args(["trailer", "strip", path.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(ds4_sees(&path), Seen::NoMap);
    env.kvc()
        .args(["trailer", "set", path.to_str().unwrap(), "--from"])
        .arg(&exported)
        .assert()
        .success();
    assert_bytes(&fs::read(&path).unwrap(), &original, "file");

    // A file without a map exports an empty array.
    let v = env.json(&[
        "trailer",
        "export",
        "-d",
        env.cache.to_str().unwrap(),
        DS4_PLAIN,
    ]);
    assert_eq!(v, json!([]));
}

#[test]
fn export_keeps_non_utf8_bytes_as_hex_and_escapes_terminal_controls() {
    let env = TestEnv::new();
    let bad = b"<call \xff\xfe>".to_vec();
    let c1 = "<call \u{9b}2J \u{202e}>".as_bytes().to_vec();
    let base = Ckpt::new(text_with(&[&bad, &c1]));
    let c = with_map(&base, &[(b"id\xc3", &bad), (b"c1", &c1)]);
    let p = env.add(&c);
    let out = env
        .kvc()
        .args(["trailer", "export", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let raw = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        !raw.contains('\u{9b}') && !raw.contains('\u{202e}'),
        "{raw}"
    );
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v[0]["id_hex"], "6964c3");
    assert!(v[0].get("id").is_none());
    assert_eq!(v[0]["dsml_hex"], "3c63616c6c20fffe3e");
    assert_eq!(v[1]["dsml"].as_str().unwrap().as_bytes(), &c1[..]);

    // Round trip: strip, then set from the export.
    let exported = env.root.path().join("m.json");
    fs::write(&exported, &out.stdout).unwrap();
    env.kvc()
        .args(["trailer", "strip", p.to_str().unwrap()])
        .assert()
        .success();
    env.kvc()
        .args(["trailer", "set", p.to_str().unwrap(), "--from"])
        .arg(&exported)
        .assert()
        .success();
    assert_bytes(&fs::read(&p).unwrap(), &c.bytes(), "file");
}

// ---------------------------------------------------------------------------
// set
// ---------------------------------------------------------------------------

#[test]
fn set_adds_replaces_and_clears_maps_keeping_everything_else() {
    let env = TestEnv::new();
    let (a, b) = (dsml("read", "x"), dsml("write", "y"));
    let base = Ckpt::new(text_with(&[&a, &b])).hits(7, CREATED + 50);
    let p = env.add(&base);
    let key = base.key();
    let dir = env.cache.to_str().unwrap().to_string();

    let one: &[(&[u8], &[u8])] = &[(b"call_a", &a)];
    let two: &[(&[u8], &[u8])] = &[(b"call_b", &b), (b"call_a", &a)];
    for (entries, json_name) in [(one, "one.json"), (two, "two.json"), (&[][..], "none.json")] {
        let before = fs::read(&p).unwrap();
        let src = write_json(&env, json_name, &map_json(entries));
        env.kvc()
            .args(["trailer", "set", "-d", &dir, &key[..8], "--from"])
            .arg(&src)
            .assert()
            .success();
        let now = fs::read(&p).unwrap();
        assert_same_but_trailer(&before, &now);
        assert_eq!(now, with_map(&base, entries).bytes());
        assert_eq!(bit0(&now), !entries.is_empty());
    }
    let ops: Vec<_> = journal(&env)
        .into_iter()
        .map(|r| (r.op, r.key, r.why))
        .collect();
    assert_eq!(ops.len(), 3);
    assert!(ops
        .iter()
        .all(|(op, k, _)| op == "trailer-set" && *k == key));
    assert_eq!(ops[0].2, "1 entry set (was no map)");
    assert_eq!(ops[1].2, "2 entries set (was 1 entry)");
    assert_eq!(ops[2].2, "0 entries set (was 2 entries)");
}

#[test]
fn set_reads_standard_input_and_several_keys() {
    let env = TestEnv::new();
    let a = dsml("read", "shared");
    let c1 = Ckpt::new(text_with(&[&a]));
    let c2 = Ckpt::new(text_with(&[&a, &dsml("other", "z")]));
    let (p1, p2) = (env.add(&c1), env.add(&c2));
    let entries: &[(&[u8], &[u8])] = &[(b"call_1", &a)];
    env.kvc()
        .args([
            "trailer",
            "set",
            p1.to_str().unwrap(),
            p2.to_str().unwrap(),
            "--from",
            "-",
        ])
        .write_stdin(serde_json::to_vec(&map_json(entries)).unwrap())
        .assert()
        .success();
    assert_bytes(
        &fs::read(&p1).unwrap(),
        &with_map(&c1, entries).bytes(),
        "file",
    );
    assert_bytes(
        &fs::read(&p2).unwrap(),
        &with_map(&c2, entries).bytes(),
        "file",
    );
    assert_eq!(journal(&env).len(), 2);
}

#[test]
fn set_refuses_maps_ds4_would_not_load() {
    let env = TestEnv::new();
    let a = dsml("read", "x");
    let base = Ckpt::new(text_with(&[&a]));
    let p = env.add(&base);
    let a_str = String::from_utf8(a.clone()).unwrap();
    let long_id = "i".repeat(257);
    let cases: Vec<(Value, &str)> = vec![
        (json!([{"id": "", "dsml": a_str}]), "id is 0 bytes"),
        (json!([{"id": long_id, "dsml": a_str}]), "id is 257 bytes"),
        (json!([{"id": "x", "dsml": ""}]), "DSML is 0 bytes"),
        (
            json!([{"id": "x", "dsml": a_str}, {"id": "x", "dsml": a_str}]),
            "repeats entry 1",
        ),
        (json!([{"dsml": a_str}]), "`id` (or `id_hex`) is missing"),
        (
            json!([{"id": "x", "id_hex": "78", "dsml": a_str}]),
            "not both",
        ),
        (json!([{"id": "x", "dsml_hex": "abc"}]), "hex digits"),
        (
            json!([{"id": "x", "dsml": a_str, "extra": 1}]),
            "unknown field",
        ),
        (json!({"id": "x"}), "not a tool-id map"),
    ];
    let before = env.snapshot();
    for (i, (v, msg)) in cases.iter().enumerate() {
        let src = write_json(&env, &format!("bad{i}.json"), v);
        let out = env
            .kvc()
            .args(["trailer", "set", p.to_str().unwrap(), "--from"])
            .arg(&src)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "case {i}");
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "case {i}: {err}");
        assert!(err.contains(msg), "case {i}: {err}");
        assert!(err.contains(&format!("bad{i}.json")), "case {i}: {err}");
    }
    assert_eq!(env.snapshot(), before, "a refused map changed something");
}

#[test]
fn set_refuses_dsml_missing_from_the_text_unless_allowed() {
    let env = TestEnv::new();
    let (a, gone) = (dsml("read", "x"), dsml("never", "said"));
    let base = Ckpt::new(text_with(&[&a]));
    let p = env.add(&base);
    let entries: &[(&[u8], &[u8])] = &[(b"ok", &a), (b"stale", &gone)];
    let src = write_json(&env, "m.json", &map_json(entries));
    let before = env.snapshot();
    let out = env
        .kvc()
        .args(["trailer", "set", p.to_str().unwrap(), "--from"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains("\"stale\"") && err.contains("--allow-missing"),
        "{err}"
    );
    assert!(err.contains(p.to_str().unwrap()), "{err}");
    // Only the lock directory may have appeared: the file is untouched.
    assert_bytes(&fs::read(&p).unwrap(), &base.bytes(), "file");
    let after = env.snapshot();
    assert_eq!(
        after
            .keys()
            .filter(|k| !k.starts_with(env.cache.join(".kvc")))
            .count(),
        before.len()
    );

    env.kvc()
        .args([
            "trailer",
            "set",
            p.to_str().unwrap(),
            "--allow-missing",
            "--from",
        ])
        .arg(&src)
        .assert()
        .success();
    assert_bytes(
        &fs::read(&p).unwrap(),
        &with_map(&base, entries).bytes(),
        "file",
    );
    assert!(journal(&env)[0].why.contains("1 not in the text"));
}

// ---------------------------------------------------------------------------
// prune and strip
// ---------------------------------------------------------------------------

#[test]
fn prune_drops_stale_entries_and_duplicate_ids() {
    let env = TestEnv::new();
    let (a, b, c, gone) = (
        dsml("a", "1"),
        dsml("b", "2"),
        dsml("c", "3"),
        dsml("x", "0"),
    );
    let base = Ckpt::new(text_with(&[&a, &b, &c]));
    let start: &[(&[u8], &[u8])] = &[
        (b"id_a", &a),
        (b"id_gone", &gone),
        (b"id_a", &b),
        (b"id_c", &c),
    ];
    let p = env.add(&with_map(&base, start));
    let out = env
        .kvc()
        .args(["trailer", "prune", p.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &v["files"][0];
    assert_eq!(f["result"], "rewritten");
    assert_eq!(f["entries_before"], 4);
    assert_eq!(f["entries_after"], 2);
    // ds4 uses the last entry of an id: the first `id_a` is shadowed.
    assert_eq!(f["dropped"][0]["index"], 1);
    assert_eq!(f["dropped"][0]["reason"], "duplicate-id");
    assert_eq!(f["dropped"][1]["id"], "id_gone");
    assert_eq!(f["dropped"][1]["reason"], "not-in-text");
    let kept: &[(&[u8], &[u8])] = &[(b"id_a", &b), (b"id_c", &c)];
    assert_bytes(
        &fs::read(&p).unwrap(),
        &with_map(&base, kept).bytes(),
        "file",
    );
    let j = journal(&env);
    assert_eq!(j[0].op, "trailer-prune");
    assert_eq!(
        j[0].why,
        "2 entries dropped: 1 not in the text, 1 duplicate id"
    );

    // Nothing left to drop: unchanged, no journal record.
    env.kvc()
        .args(["trailer", "prune", p.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(journal(&env).len(), 1);
}

#[test]
fn prune_to_an_empty_map_is_a_strip_and_all_leaves_good_maps_alone() {
    let env = TestEnv::with_sample("broken");
    // --all also meets the garbage trailer: refused (exit 2), others done.
    let before = fs::read(file(&env, BROKEN_MISSING)).unwrap();
    let out = env
        .kvc()
        .args([
            "trailer",
            "prune",
            "--all",
            "-d",
            env.cache.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains(BROKEN_GARBAGE) && err.contains("kvc trailer strip"),
        "{err}"
    );
    let after = fs::read(file(&env, BROKEN_MISSING)).unwrap();
    assert_same_but_trailer(&before, &after);
    assert!(!bit0(&after));
    assert!(
        parts(&after).after.is_empty(),
        "an empty map leaves no section"
    );
    assert_eq!(ds4_sees(&file(&env, BROKEN_MISSING)), Seen::NoMap);

    let env = TestEnv::with_sample("ds4");
    let files = checkpoint_bytes(&env);
    env.kvc()
        .args([
            "trailer",
            "prune",
            "--all",
            "-d",
            env.cache.to_str().unwrap(),
        ])
        .assert()
        .success();
    assert_eq!(checkpoint_bytes(&env), files);
    assert!(journal(&env).is_empty());
}

#[test]
fn strip_removes_maps_broken_trailers_and_stray_bytes() {
    let env = TestEnv::with_sample("broken");
    let stray_base = Ckpt::new(chat("stray bytes after a clear bit 0"));
    let mut stray = stray_base.clone();
    stray.trailer = tool_map(&[(b"old", b"<secret>")]);
    let stray_path = env.add(&stray);
    let targets = [
        file(&env, BROKEN_GARBAGE),
        file(&env, BROKEN_MISSING),
        stray_path.clone(),
    ];
    let before: Vec<Vec<u8>> = targets.iter().map(|p| fs::read(p).unwrap()).collect();
    let out = env
        .kvc()
        .args([
            "trailer",
            "strip",
            "--all",
            "-d",
            env.cache.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
    for (p, b) in targets.iter().zip(&before) {
        let now = fs::read(p).unwrap();
        assert_same_but_trailer(b, &now);
        assert!(
            !bit0(&now) && parts(&now).after.is_empty(),
            "{}",
            p.display()
        );
        assert_eq!(ds4_sees(p), Seen::NoMap);
    }
    assert_bytes(&fs::read(&stray_path).unwrap(), &stray_base.bytes(), "file");
    let mut whys: Vec<_> = journal(&env).into_iter().map(|r| (r.op, r.why)).collect();
    whys.sort();
    assert!(whys.iter().all(|(op, _)| op == "trailer-strip"));
    assert!(whys
        .iter()
        .any(|(_, w)| w.starts_with("broken trailer removed")));
    assert!(whys
        .iter()
        .any(|(_, w)| w.contains("stray bytes after the payload removed")));
    assert!(whys.iter().any(|(_, w)| w == "map of 1 entry removed"));

    // Nothing left: --all finds nothing.
    let out = env
        .kvc()
        .args([
            "trailer",
            "strip",
            "--all",
            "-d",
            env.cache.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to strip"));
}

#[test]
fn rewrites_keep_header_text_and_payload_of_the_fixtures_with_every_method() {
    for method in ["in-place", "copy", "auto"] {
        let env = TestEnv::with_sample("ds4");
        let dir = env.cache.to_str().unwrap().to_string();
        let map_file = file(&env, DS4_MAP);
        let original = fs::read(&map_file).unwrap();
        let exported = env.root.path().join("m.json");
        let out = env
            .kvc()
            .args(["trailer", "export", "-d", &dir, DS4_MAP])
            .output()
            .unwrap();
        fs::write(&exported, &out.stdout).unwrap();

        // strip, prune (nothing to drop), set back: each keeps the rest.
        for args in [
            vec!["strip", DS4_MAP],
            vec!["prune", DS4_MAP],
            vec!["set", DS4_MAP, "--from", exported.to_str().unwrap()],
        ] {
            let before = fs::read(&map_file).unwrap();
            env.kvc()
                .arg("trailer")
                .args(&args)
                .args(["-d", &dir, "--method", method])
                .assert()
                .success();
            assert_same_but_trailer(&before, &fs::read(&map_file).unwrap());
        }
        assert_bytes(&fs::read(&map_file).unwrap(), &original, method);

        // A map onto the file with ext bit 1: bit 1 and everything else stay.
        let resp = file(&env, DS4_RESPONSES);
        let before = fs::read(&resp).unwrap();
        env.kvc()
            .args([
                "trailer",
                "set",
                "-d",
                &dir,
                DS4_RESPONSES,
                "--allow-missing",
            ])
            .args(["--method", method, "--from"])
            .arg(&exported)
            .assert()
            .success();
        let now = fs::read(&resp).unwrap();
        assert_same_but_trailer(&before, &now);
        assert_eq!(now[6], before[6] | 1);
        assert_eq!(parts(&now).after, parts(&original).after);
        env.kvc()
            .args([
                "trailer",
                "strip",
                "-d",
                &dir,
                DS4_RESPONSES,
                "--method",
                method,
            ])
            .assert()
            .success();
        assert_bytes(&fs::read(&resp).unwrap(), &before, method);
        // No temp file left behind.
        let names: Vec<String> = fs::read_dir(&env.cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains(".tmp.") && !n.ends_with(".31337")),
            "{names:?}"
        );
    }
}

#[test]
fn the_temp_file_methods_keep_the_file_mode() {
    let env = TestEnv::with_sample("ds4");
    let p = file(&env, DS4_MAP);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    env.kvc()
        .args(["trailer", "strip", p.to_str().unwrap(), "--method", "copy"])
        .assert()
        .success();
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o640
    );
}

#[test]
fn clone_method_works_or_says_the_filesystem_cannot() {
    let env = TestEnv::with_sample("ds4");
    let p = file(&env, DS4_MAP);
    let before = fs::read(&p).unwrap();
    let out = env
        .kvc()
        .args([
            "trailer",
            "strip",
            p.to_str().unwrap(),
            "--method",
            "clone",
            "--json",
        ])
        .output()
        .unwrap();
    let now = fs::read(&p).unwrap();
    if out.status.success() {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["files"][0]["method"], "clone");
        assert_same_but_trailer(&before, &now);
        assert!(!bit0(&now));
    } else {
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr_of(&out).contains("cannot clone"),
            "{}",
            stderr_of(&out)
        );
        assert_eq!(now, before);
        let temps = fs::read_dir(&env.cache)
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                let n = n.to_string_lossy();
                n.starts_with(DS4_MAP) && n.contains(".tmp.")
            })
            .count();
        assert_eq!(temps, 0);
    }
}

#[test]
fn dry_runs_change_nothing_and_create_no_state() {
    let env = TestEnv::with_sample("broken");
    let dir = env.cache.to_str().unwrap().to_string();
    let src = write_json(&env, "m.json", &json!([]));
    let before = env.snapshot();
    for args in [
        vec!["strip", "--all", "-n"],
        vec!["prune", BROKEN_MISSING, "--dry-run"],
        vec![
            "set",
            BROKEN_MISSING,
            "--from",
            src.to_str().unwrap(),
            "--dry-run",
        ],
    ] {
        let out = env
            .kvc()
            .arg("trailer")
            .args(&args)
            .args(["-d", &dir, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["dry_run"], true);
        assert!(v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["result"] == "would-rewrite"));
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.cache.join(".kvc").exists());
}

#[test]
fn refuses_unknown_ext_bits_and_symlinks() {
    let env = TestEnv::new();
    let mut c = Ckpt::new(chat("unknown bit")).with_tool_map(&[(b"x", b"y")]);
    c.ext_flags |= 0x10;
    let p = env.add(&c);
    let out = env
        .kvc()
        .args(["trailer", "strip", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("unassigned bits 0x10"),
        "{}",
        stderr_of(&out)
    );
    assert_bytes(&fs::read(&p).unwrap(), &c.bytes(), "file");

    let real = env.add(&Ckpt::new(chat("target")).with_tool_map(&[(b"x", b"y")]));
    let link = env.root.path().join("link.kv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = env
        .kvc()
        .args(["trailer", "strip", link.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("symbolic link"),
        "{}",
        stderr_of(&out)
    );
    assert!(bit0(&fs::read(&real).unwrap()));
}

#[test]
fn rewrites_wait_for_the_kvc_lock() {
    let env = TestEnv::with_sample("ds4");
    let p = file(&env, DS4_MAP);
    let mut lock = kvc::session::Session::new(kvc::session::SessionOptions::new("test")).unwrap();
    lock.lock(&[&env.cache]).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"))
        .env_clear()
        .args(["trailer", "strip", p.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "did not wait for the lock"
    );
    assert!(bit0(&fs::read(&p).unwrap()));
    drop(lock);
    assert!(child.wait().unwrap().success());
    assert!(!bit0(&fs::read(&p).unwrap()));
}

// ---------------------------------------------------------------------------
// Engines working next to a rewrite (library API, hook between the writes)
// ---------------------------------------------------------------------------

/// Write `hits` and `last_used` into the header as an engine's hit does.
fn engine_hit(path: &Path, hits: u32, last_used: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&hits.to_le_bytes(), 12).unwrap();
    f.write_all_at(&last_used.to_le_bytes(), 32).unwrap();
}

#[test]
fn a_hit_counted_during_a_rewrite_is_kept() {
    for (method, at) in [
        (Method::InPlace, Step::SectionSynced),
        (Method::Copy, Step::TempSynced),
    ] {
        let env = TestEnv::new();
        let (a, b) = (dsml("a", "1"), dsml("b", "2"));
        let base = Ckpt::new(text_with(&[&a, &b]));
        let p = env.add(&with_map(&base, &[(b"a", &a)]));
        let new_map = ToolMap {
            entries: vec![ToolMapEntry {
                id: b"b".to_vec(),
                dsml: b.clone(),
            }],
        };
        let cf = rewrite::open_checkpoint(&p, method.writes_in_place())
            .unwrap()
            .unwrap();
        let plan = rewrite::plan(
            &cf,
            Edit::Set {
                map: &new_map,
                allow_missing: false,
            },
            Engine::Ds4,
        )
        .unwrap();
        // A hit between planning and writing is no reason to stop…
        engine_hit(&p, 50, CREATED + 500);
        // …and one between two writes is kept too.
        let hook_path = p.clone();
        let mut hook = move |s: Step| {
            if s == at {
                engine_hit(&hook_path, 99, CREATED + 999);
            }
        };
        let applied = rewrite::apply(&cf, &plan, method, &mut hook).unwrap();
        assert!(matches!(applied, Applied::Rewritten { .. }), "{method:?}");
        let mut want = with_map(&base, &[(b"b", &b)]);
        want.hits = 99;
        want.last_used = CREATED + 999;
        assert_bytes(
            &fs::read(&p).unwrap(),
            &want.bytes(),
            &format!("{method:?}"),
        );
    }
}

#[test]
fn a_file_removed_during_a_rewrite_is_not_resurrected() {
    for (method, at) in [
        (Method::InPlace, Step::FlagCleared),
        (Method::Copy, Step::TempSynced),
    ] {
        let env = TestEnv::new();
        let p = env.add(&Ckpt::new(chat("consumed")).with_tool_map(&[(b"x", b"y")]));
        let cf = rewrite::open_checkpoint(&p, method.writes_in_place())
            .unwrap()
            .unwrap();
        let plan = rewrite::plan(&cf, Edit::Strip, Engine::Ds4).unwrap();
        let hook_path = p.clone();
        let mut hook = move |s: Step| {
            if s == at {
                fs::remove_file(&hook_path).unwrap();
            }
        };
        let applied = rewrite::apply(&cf, &plan, method, &mut hook).unwrap();
        assert_eq!(applied, Applied::Vanished, "{method:?}");
        assert_eq!(fs::read_dir(&env.cache).unwrap().count(), 0, "{method:?}");
    }
}

#[test]
fn a_layout_change_during_a_rewrite_stops_it_between_valid_states() {
    let env = TestEnv::new();
    let (a, b) = (dsml("a", "1"), dsml("b", "2"));
    let base = Ckpt::new(text_with(&[&a, &b]));
    let p = env.add(&with_map(&base, &[(b"a", &a)]));
    let cf = rewrite::open_checkpoint(&p, true).unwrap().unwrap();
    let map = ToolMap {
        entries: vec![ToolMapEntry {
            id: b"b".to_vec(),
            dsml: b.clone(),
        }],
    };
    let plan = rewrite::plan(
        &cf,
        Edit::Set {
            map: &map,
            allow_missing: false,
        },
        Engine::Ds4,
    )
    .unwrap();
    let hook_path = p.clone();
    // Another writer changes text_len after the new section is written.
    let mut hook = move |s: Step| {
        if s == Step::SectionSynced {
            let f = fs::OpenOptions::new().write(true).open(&hook_path).unwrap();
            f.write_all_at(&1u32.to_le_bytes(), 48).unwrap();
        }
    };
    let err = rewrite::apply(&cf, &plan, Method::InPlace, &mut hook).unwrap_err();
    assert!(
        err.to_string().contains("changed while kvc was rewriting"),
        "{err}"
    );
    assert!(
        !bit0(&fs::read(&p).unwrap()),
        "bit 0 must not be set over a changed file"
    );
}

// ---------------------------------------------------------------------------
// Crash safety: kill -9 at every step, and at random instants
// ---------------------------------------------------------------------------

/// Run the trailer command `words` (`set --allow-missing --from F PATH
/// METHOD`, `prune PATH METHOD`, `strip PATH METHOD`) through the library
/// in a process of its own (this test binary, re-executed as the crash
/// driver) that kills itself with SIGKILL at the `kill_at`-th step between
/// two writes.
fn driver(words: &[String], kill_at: usize) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_driver", "--nocapture", "--test-threads=1"])
        .env(
            DRIVER_ENV,
            format!("{}\u{1f}{kill_at}", words.join("\u{1f}")),
        )
        .output()
        .unwrap()
}

/// Not a test of its own: when re-executed with [`DRIVER_ENV`], run one
/// trailer command as `kvc trailer` would, through `kvc::trailer::plan`
/// and `apply`, whose hooks are called between every two writes, and kill
/// this process at the step asked for: a real `kill -9`, with no
/// destructor run. Without the variable it does nothing.
#[test]
fn crash_driver() {
    let Ok(spec) = std::env::var(DRIVER_ENV) else {
        return;
    };
    let mut words: Vec<&str> = spec.split('\u{1f}').collect();
    let kill_at: usize = words.pop().unwrap().parse().unwrap();
    let method = match words.pop().unwrap() {
        "in-place" => Method::InPlace,
        "copy" => Method::Copy,
        "clone" => Method::Clone,
        _ => Method::Auto,
    };
    let path = words.pop().unwrap().to_string();
    let map;
    let (op, edit) = match words[0] {
        "set" => {
            let from = words[words.iter().position(|w| *w == "--from").unwrap() + 1];
            map = kvc::trailer::json::parse_map(&fs::read(from).unwrap()).unwrap();
            let edit = Edit::Set {
                map: &map,
                allow_missing: words.contains(&"--allow-missing"),
            };
            (kvc::trailer::Op::Set, edit)
        }
        "prune" => (kvc::trailer::Op::Prune, Edit::Prune),
        _ => (kvc::trailer::Op::Strip, Edit::Strip),
    };
    struct Killer {
        steps: usize,
        at: usize,
    }
    impl kvc::trailer::Hooks for Killer {
        fn step(&mut self, _path: &Path, _step: Step) {
            self.steps += 1;
            if self.steps == self.at {
                let me = rustix::process::getpid();
                rustix::process::kill_process(me, rustix::process::Signal::KILL).unwrap();
            }
        }
    }
    let targets = kvc::trailer::targets_of_keys(&[path], None, || -> kvc::Result<PathBuf> {
        unreachable!("a path")
    })
    .unwrap();
    let plan = kvc::trailer::plan(targets, op, edit);
    let mut session =
        kvc::session::Session::new(kvc::session::SessionOptions::new("trailer")).unwrap();
    let mut hooks = Killer {
        steps: 0,
        at: kill_at,
    };
    for (_, r) in kvc::trailer::apply(&mut session, plan, method, &mut hooks).unwrap() {
        r.unwrap();
    }
}

/// The release binary carries no test hook (issue 12): the crash tests
/// drive the library instead.
#[test]
fn the_binary_has_no_test_hook() {
    let bin = fs::read(assert_cmd::cargo::cargo_bin("kvc")).unwrap();
    for needle in [b"KVC_TEST_KILL_AT_STEP".as_slice(), DRIVER_ENV.as_bytes()] {
        assert!(
            !bin.windows(needle.len()).any(|w| w == needle),
            "the kvc binary mentions {}",
            String::from_utf8_lossy(needle)
        );
    }
}

/// One rewrite to crash: the file before and after, and the command.
struct Transition {
    name: &'static str,
    /// The checkpoint's file name.
    file: String,
    before: Vec<u8>,
    after: Vec<u8>,
    args: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Killed {
    /// Exactly the old file.
    Old,
    /// Exactly the new file.
    New,
    /// In place only: bit 0 clear, and after the payload the old section,
    /// nothing, or a prefix of the new section. ds4 ignores those bytes and
    /// loads the checkpoint without a map (`kvc verify`: at most the
    /// `trailing-bytes` warning, no error).
    Between,
}

/// After a kill: the file is the old one untouched, or it verifies without
/// errors (envelope through the library; with bit 0 set, exactly one whole
/// section) with the original header (but bit 0), text and payload, and is
/// the new file or — unless `strict_bytes` — a `Between` state.
fn check_after_kill(path: &Path, before: &[u8], after: &[u8], strict_bytes: bool) -> Killed {
    let now = fs::read(path).unwrap();
    if now == before {
        // Untouched: verify says what it said before (one transition
        // starts from a broken trailer on purpose).
        return Killed::Old;
    }
    assert_same_but_trailer(before, &now);
    let errors = verify_errors(path);
    assert!(errors.is_empty(), "kvc verify after a kill: {errors:?}");
    let seen = ds4_sees(path);
    if now == after {
        return Killed::New;
    }
    assert!(!strict_bytes, "neither the old nor the new file");
    assert!(
        !bit0(&now),
        "bit 0 set over bytes that are not the new section"
    );
    assert_eq!(seen, Seen::NoMap);
    let tail = parts(&now).after;
    assert!(
        parts(before).after.starts_with(&tail) || parts(after).after.starts_with(&tail),
        "bytes after the payload are neither the old section nor a prefix of the new"
    );
    Killed::Between
}

/// Remove the temp files killed copies left (`<name>.tmp.<pid>`, dead pid),
/// after checking nothing else appeared.
fn clean_temps(env: &TestEnv, name: &str) -> usize {
    let mut n = 0;
    for e in fs::read_dir(&env.cache).unwrap() {
        let e = e.unwrap();
        let f = e.file_name().to_string_lossy().into_owned();
        if f == name || f == ".kvc" {
            continue;
        }
        let pid = f
            .strip_prefix(&format!("{name}.tmp."))
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("unexpected file {f}"));
        assert!(!kvc::sys::pid_alive(pid) || pid == std::process::id());
        fs::remove_file(e.path()).unwrap();
        n += 1;
    }
    n
}

/// Kill the rewrite at its 1st, 2nd, … step until it runs to the end;
/// after each kill check the file, then run the command again and check
/// that it completes the rewrite. Returns the number of kills.
///
/// What each method promises after a kill:
/// * `copy`: byte for byte the old or the new file;
/// * `auto`: ds4 sees the old or the new map (in place only where that is
///   strict, a copy otherwise), and a replaced map is byte-exact;
/// * `in-place`: replacing a non-empty map may also leave it without a
///   map (valid); re-running `set` completes, re-running `prune` cannot.
fn kill_at_every_step(env: &TestEnv, t: &Transition, method: &str) -> usize {
    let path = env.cache.join(&t.file);
    let replaces = bit0(&t.before) && bit0(&t.after) && seen_in(&t.before).is_some();
    let strict_bytes = method == "copy" || (method == "auto" && replaces);
    let strict_view = method != "in-place" || !replaces;
    let views = [seen_in(&t.before), seen_in(&t.after)];
    for k in 1..100 {
        fs::write(&path, &t.before).unwrap();
        let mut words = t.args.clone();
        words.push(path.to_str().unwrap().to_string());
        words.push(method.to_string());
        let out = driver(&words, k);
        if out.status.success() {
            assert!(
                fs::read(&path).unwrap() == t.after,
                "{} {method}: not the new file",
                t.name
            );
            return k - 1;
        }
        let what = format!("{} {method} killed at step {k}", t.name);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "{what}: {}",
            stderr_of(&out)
        );
        let state = check_after_kill(&path, &t.before, &t.after, strict_bytes);
        if strict_view && state == Killed::Between {
            let seen = Some(ds4_sees(&path));
            assert!(
                views.contains(&seen),
                "{what}: ds4 sees neither the old nor the new map"
            );
        }
        clean_temps(env, &t.file);
        let out = env
            .kvc()
            .arg("trailer")
            .args(&t.args)
            .arg(&path)
            .args(["--method", method])
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}, rerun: {}", stderr_of(&out));
        let now = fs::read(&path).unwrap();
        if method == "in-place" && t.args[0] == "prune" && state == Killed::Between {
            // The pruned map is gone with the flag; the file stays valid.
            assert_eq!(ds4_sees(&path), Seen::NoMap, "{what}");
        } else {
            assert!(
                now == t.after,
                "{what}: the rerun did not complete the rewrite"
            );
        }
    }
    panic!("{} {method}: never ran to the end", t.name);
}

fn transitions(env: &TestEnv) -> Vec<Transition> {
    let (a, b, c) = (dsml("a", "first"), dsml("b", "second"), dsml("c", "third"));
    let base = Ckpt::new(text_with(&[&a, &b, &c])).hits(4, CREATED + 10);
    let m_a: &[(&[u8], &[u8])] = &[(b"call_a", &a), (b"call_b", &b)];
    let m_b: &[(&[u8], &[u8])] = &[(b"call_c", &c)];
    let stale: &[(&[u8], &[u8])] = &[(b"call_a", &a), (b"gone", b"<gone/>"), (b"call_a", &b)];
    let json_a = write_json(env, "a.json", &map_json(m_a));
    let json_b = write_json(env, "b.json", &map_json(m_b));
    let set = |p: &Path| {
        vec![
            "set".to_string(),
            "--allow-missing".to_string(),
            "--from".to_string(),
            p.to_str().unwrap().to_string(),
        ]
    };
    let mut garbage = with_map(&base, m_a);
    garbage.trailer = b"JUNKJUNKJUNK".to_vec();
    vec![
        Transition {
            file: base.file_name(),
            name: "add",
            before: base.bytes(),
            after: with_map(&base, m_a).bytes(),
            args: set(&json_a),
        },
        Transition {
            file: base.file_name(),
            name: "replace",
            before: with_map(&base, m_a).bytes(),
            after: with_map(&base, m_b).bytes(),
            args: set(&json_b),
        },
        Transition {
            file: base.file_name(),
            name: "prune",
            before: with_map(&base, stale).bytes(),
            // ds4 uses the last entry of an id: prune keeps that one.
            after: with_map(&base, &[(b"call_a", &b)]).bytes(),
            args: vec!["prune".into()],
        },
        Transition {
            file: base.file_name(),
            name: "strip",
            before: with_map(&base, m_a).bytes(),
            after: base.bytes(),
            args: vec!["strip".into()],
        },
        Transition {
            file: base.file_name(),
            name: "strip-broken",
            before: garbage.bytes(),
            after: base.bytes(),
            args: vec!["strip".into()],
        },
    ]
}

#[test]
fn killed_at_every_step_the_file_is_old_or_new_and_valid() {
    let env = TestEnv::new();
    for t in transitions(&env) {
        // Each point between two writes was hit: Begin, then the steps.
        let in_place = kill_at_every_step(&env, &t, "in-place");
        assert!(in_place >= 3, "{}: {in_place} kills in place", t.name);
        let copy = kill_at_every_step(&env, &t, "copy");
        assert!(copy >= 7, "{}: {copy} kills copying", t.name);
        let auto = kill_at_every_step(&env, &t, "auto");
        assert!(auto >= 3, "{}: {auto} kills with auto", t.name);
    }
}

/// A tiny deterministic generator for kill delays (xorshift64).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Rewrite back and forth between two maps in child kvc processes and
/// SIGKILL each after a random delay, checking the file after every kill.
fn kill_at_random(env: &TestEnv, method: &str, budget: Duration) -> (usize, usize) {
    let (a, b) = (dsml("a", "one"), dsml("b", "two"));
    let base = Ckpt::new(text_with(&[&a, &b]));
    let m_a: &[(&[u8], &[u8])] = &[(b"call_a", &a), (b"call_b", &b)];
    let m_b: &[(&[u8], &[u8])] = &[(b"call_b", &b)];
    let (file_a, file_b) = (with_map(&base, m_a).bytes(), with_map(&base, m_b).bytes());
    let json = [
        write_json(env, "ra.json", &map_json(m_a)),
        write_json(env, "rb.json", &map_json(m_b)),
    ];
    let path = env.add(&with_map(&base, m_a));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let run = |i: usize| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"))
            .env_clear()
            .args(["trailer", "set", "--method", method, "--from"])
            .arg(&json[(i + 1) % 2])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long one rewrite takes here (the fastest of three, since a busy
    // machine makes single runs slow): delays spread over half of that, so
    // most children die mid-run.
    let span = (0..3)
        .map(|_| {
            let t0 = Instant::now();
            assert!(run(0).wait().unwrap().success());
            t0.elapsed().as_micros() as u64
        })
        .min()
        .unwrap()
        / 2;
    let span = span.max(500);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let (mut kills, mut between) = (0, 0);
    let start = Instant::now();
    let mut i = 1;
    while start.elapsed() < budget && i < 400 {
        let mut child = run(i);
        std::thread::sleep(Duration::from_micros(next(&mut rng) % span));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(libc::SIGKILL) {
            kills += 1;
        }
        if check_after_kill(&path, &file_a, &file_b, method != "in-place") == Killed::Between {
            between += 1;
        }
        clean_temps(env, &name);
        i += 1;
    }
    (kills, between)
}

#[test]
fn killed_at_random_instants_the_file_is_old_or_new_and_valid() {
    let env = TestEnv::new();
    let (k1, b1) = kill_at_random(&env, "in-place", Duration::from_millis(1500));
    let env = TestEnv::new();
    // `auto` replaces a map by a clone or a copy: byte-exact old or new.
    let (k2, _) = kill_at_random(&env, "auto", Duration::from_millis(1000));
    eprintln!("random kills: in place {k1} ({b1} between), auto {k2}");
    assert!(k1 > 0 && k2 > 0, "no run was killed");
}

// ---------------------------------------------------------------------------
// Files without ds4's tool-id map; maps as ds4 reads them; unowned bytes
// ---------------------------------------------------------------------------

/// agent-current sample: titled sessions (ext bit 3), the stripped one.
const AGENT_TITLED: &str = "a4a86ba87ffc343b57b0cb9f0a31d923db88c0ba";
const AGENT_STRIPPED: &str = "c4c35a204aa7895f4a815d3cc7f8b4b0ebdfb237";
/// mainline sample: the continued checkpoint with a map (`call_r1`).
const MAINLINE_MAP: &str = "3b41d5827c3a6ab13b81ecc88418839d0173b38e";

/// Copy the files of another sample into `env`'s cache.
fn add_sample(env: &TestEnv, name: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), env.cache.join(e.file_name())).unwrap();
    }
}

#[test]
fn all_skips_agent_sessions_with_a_note_and_rewrites_the_rest() {
    let env = TestEnv::with_sample("agent-current");
    add_sample(&env, "mainline");
    let sessions = [file(&env, AGENT_TITLED), file(&env, AGENT_STRIPPED)];
    let before: Vec<Vec<u8>> = sessions.iter().map(|p| fs::read(p).unwrap()).collect();
    let dir = env.cache.to_str().unwrap().to_string();
    let out = env
        .kvc()
        .args(["trailer", "strip", "--all", "-d", &dir, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let done: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(done, [MAINLINE_MAP], "{v:#}");
    assert_eq!(v["files"][0]["result"], "rewritten");
    let skipped: Vec<(&str, &str)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap(), s["why"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped.len(), 2, "{v:#}");
    for ((key, why), want) in skipped.iter().zip([AGENT_TITLED, AGENT_STRIPPED]) {
        assert_eq!(*key, want);
        assert!(why.contains("ds4-agent session (ext bit 3)"), "{why}");
    }
    for (p, b) in sessions.iter().zip(&before) {
        assert_bytes(&fs::read(p).unwrap(), b, "a session's title");
    }
    assert_eq!(ds4_sees(&file(&env, MAINLINE_MAP)), Seen::NoMap);

    // The human report says so, one line each.
    let out = env
        .kvc()
        .args(["trailer", "strip", "--all", "-d", &dir, "-n"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("skipped: a ds4-agent session").count(),
        2,
        "{text}"
    );
}

#[test]
fn a_named_file_without_ds4s_map_gets_one_line_and_is_left_alone() {
    let env = TestEnv::with_sample("agent-current");
    let dir = env.cache.to_str().unwrap().to_string();
    let map = write_json(&env, "m.json", &json!([]));
    // Both trailer bits: no engine writes that.
    let mut both = Ckpt::new(chat("two trailers?")).mainline().titled(b"Both");
    both.ext_flags |= 1;
    env.add(&both);
    let both_key = both.file_name().trim_end_matches(".kv").to_string();
    let before = checkpoint_bytes(&env);
    for (key, want) in [
        (AGENT_TITLED, "ds4-agent session (ext bit 3)"),
        (AGENT_STRIPPED, "ds4-agent session (ext bit 3)"),
        (both_key.as_str(), "trailer-conflict"),
    ] {
        for args in [
            vec!["ls", key],
            vec!["export", key],
            vec!["strip", key],
            vec!["prune", key],
            vec!["set", key, "--from", map.to_str().unwrap()],
        ] {
            let out = env
                .kvc()
                .arg("trailer")
                .args(&args)
                .args(["-d", &dir])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = stderr_of(&out);
            assert!(
                err.lines().next().unwrap().contains(want),
                "{args:?}: {err}"
            );
            assert!(err.contains(key), "names the file: {err}");
        }
    }
    assert!(checkpoint_bytes(&env) == before, "a file changed");

    // hanzo-engine gives ext bit 0 no meaning: a bit its caller set over
    // bytes that look like a map is still not one.
    let env = TestEnv::with_sample("hanzo");
    let mut spill = Ckpt::new(b"\x01\x00\x00\x00\x02\x00\x00\x00".to_vec())
        .opaque_payload(40)
        .with_tool_map(&[(b"x", b"\x01")]);
    spill.quant_bits = 0;
    spill.ctx_size = 0;
    spill.reason = REASON_EVICT;
    let p = env.add(&spill);
    let before = checkpoint_bytes(&env);
    let out = env
        .kvc()
        .args(["trailer", "ls", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("hanzo-engine"),
        "{}",
        stderr_of(&out)
    );
    let dir = env.cache.to_str().unwrap().to_string();
    let v = env.json(&["trailer", "strip", "--all", "-d", &dir, "--json"]);
    assert!(v["files"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(v["skipped"][0]["key"], spill.key());
    assert!(v["skipped"][0]["why"].as_str().unwrap().contains("D20"));
    assert!(checkpoint_bytes(&env) == before, "a file changed");

    // A foreign dialect is named as such, not as a broken file.
    let env = TestEnv::with_sample("foreign");
    let dir = env.cache.to_str().unwrap().to_string();
    for key in ["13be", "f00f", "8a25"] {
        let out = env
            .kvc()
            .args(["trailer", "strip", key, "-d", &dir])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr_of(&out).contains("foreign dialect"),
            "{key}: {}",
            stderr_of(&out)
        );
    }
}

#[test]
fn duplicate_ids_show_and_keep_the_last_entry_as_ds4_does() {
    let env = TestEnv::new();
    let (a, b, c) = (dsml("a", "1"), dsml("b", "2"), dsml("c", "3"));
    let base = Ckpt::new(text_with(&[&a, &b, &c]));
    let entries: &[(&[u8], &[u8])] = &[
        (b"call_x", &a),
        (b"call_y", &c),
        (b"call_x", &b),
        (b"\0late", &c),
        (b"call_z\0tail", &c),
    ];
    let p = env.add(&with_map(&base, entries));
    let path = p.to_str().unwrap();
    let v = env.json(&["trailer", "ls", path, "--json"]);
    let ds4: Vec<(Value, Value)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["ds4"].clone(), e["shadowed_by"].clone()))
        .collect();
    assert_eq!(
        ds4,
        [
            (json!("shadowed"), json!(3)),
            (json!("used"), Value::Null),
            (json!("used"), Value::Null),
            (json!("dropped"), Value::Null),
            (json!("used"), Value::Null),
        ]
    );
    assert!(v["entries"][3]["note"].as_str().unwrap().contains("NUL"));
    assert!(v["entries"][4]["note"]
        .as_str()
        .unwrap()
        .contains("first 6 of 11 bytes"));
    let out = env.kvc().args(["trailer", "ls", path]).output().unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("shadowed by #3"), "{human}");
    assert!(
        human.contains("1 entry shadowed by a later entry"),
        "{human}"
    );

    let v = env.json(&["trailer", "export", path]);
    assert_eq!(v[0]["shadowed_by"], 3);
    assert!(v[1].get("shadowed_by").is_none());
    assert!(v[3]["dropped_by_ds4"].as_str().unwrap().contains("NUL"));

    // Prune keeps what ds4 uses: the last `call_x`.
    let v = env.json(&["trailer", "prune", path, "--json"]);
    let dropped: Vec<(Value, Value)> = v["files"][0]["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["index"].clone(), d["reason"].clone()))
        .collect();
    assert_eq!(
        dropped,
        [
            (json!(1), json!("duplicate-id")),
            (json!(4), json!("nul-start"))
        ]
    );
    let kept: &[(&[u8], &[u8])] = &[(b"call_y", &c), (b"call_x", &b), (b"call_z\0tail", &c)];
    assert_bytes(
        &fs::read(&p).unwrap(),
        &with_map(&base, kept).bytes(),
        "file",
    );
}

#[test]
fn set_refuses_nul_bytes_that_ds4_would_cut() {
    let env = TestEnv::new();
    let a = dsml("read", "x");
    let p = env.add(&Ckpt::new(text_with(&[&a])));
    let a_hex: String = a.iter().map(|x| format!("{x:02x}")).collect();
    let before = env.snapshot();
    for (i, (v, what)) in [
        (
            json!([{"id_hex": "63616c6c00", "dsml_hex": a_hex}]),
            "its id has a NUL byte at byte 4",
        ),
        (
            json!([{"id": "call", "dsml_hex": format!("{a_hex}00")}]),
            "its DSML has a NUL byte",
        ),
        (
            json!([{"id": "call\u{0}x", "dsml_hex": a_hex}]),
            "its id has a NUL byte at byte 4",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let src = write_json(&env, &format!("nul{i}.json"), &v);
        let out = env
            .kvc()
            .args(["trailer", "set", p.to_str().unwrap(), "--from"])
            .arg(&src)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "case {i}");
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(what) && err.contains("C strings"),
            "case {i}: {err}"
        );
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn every_rewrite_method_keeps_the_bytes_it_does_not_own() {
    // Model id 2, payload ABI 2, bytes 21-23 = AB CD EF (D11), reason 7,
    // ext bit 1: only bit 0 and the bytes after the payload may change.
    let (a, b) = (dsml("a", "1"), dsml("b", "2"));
    let mut base = Ckpt::new(text_with(&[&a, &b])).with_unowned_bytes();
    base.ext_flags = 0x02;
    base.hits = 3;
    let m1: &[(&[u8], &[u8])] = &[(b"x", &a), (b"x", &b)];
    let m2: &[(&[u8], &[u8])] = &[(b"y", &b)];
    let pruned: &[(&[u8], &[u8])] = &[(b"x", &b)];
    let json2 = |env: &TestEnv| write_json(env, "m2.json", &map_json(m2));
    for method in ["in-place", "copy", "auto", "clone"] {
        let env = TestEnv::new();
        let p = env.add(&with_map(&base, m1));
        let path = p.to_str().unwrap().to_string();
        let j = json2(&env);
        type Map<'a> = &'a [(&'a [u8], &'a [u8])];
        let steps: Vec<(Vec<String>, Map)> = vec![
            (vec!["prune".into()], pruned),
            (
                vec!["set".into(), "--from".into(), j.to_str().unwrap().into()],
                m2,
            ),
            (vec!["strip".into()], &[]),
            (
                vec!["set".into(), "--from".into(), j.to_str().unwrap().into()],
                m2,
            ),
        ];
        for (args, after) in steps {
            let before = fs::read(&p).unwrap();
            let out = env
                .kvc()
                .arg("trailer")
                .args(&args)
                .args([path.as_str(), "--method", method])
                .output()
                .unwrap();
            if method == "clone" && !out.status.success() {
                assert!(
                    stderr_of(&out).contains("cannot clone"),
                    "{}",
                    stderr_of(&out)
                );
                break;
            }
            assert!(
                out.status.success(),
                "{method} {args:?}: {}",
                stderr_of(&out)
            );
            let now = fs::read(&p).unwrap();
            assert_same_but_trailer(&before, &now);
            assert_eq!(
                (now[5], now[7], &now[20..24]),
                (7, 2, &[2, 0xAB, 0xCD, 0xEF][..]),
                "{method} {args:?}"
            );
            assert_eq!(now[6] & !1, 0x02, "{method} {args:?}: ext bits");
            assert_bytes(&now, &with_map(&base, after).bytes(), method);
        }
    }
    // Unknown ext bits may announce sections after the map: every
    // rewriting command refuses, and the file stays as it was.
    let env = TestEnv::new();
    let mut odd = with_map(&base, m1);
    odd.ext_flags |= 0x40;
    let p = env.add(&odd);
    let j = json2(&env);
    for args in [
        vec!["strip"],
        vec!["prune"],
        vec!["set", "--from", j.to_str().unwrap()],
    ] {
        let out = env
            .kvc()
            .arg("trailer")
            .args(&args)
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_of(&out).contains("unassigned bits 0x40"),
            "{}",
            stderr_of(&out)
        );
    }
    assert_bytes(&fs::read(&p).unwrap(), &odd.bytes(), "unknown bits");
}
