//! `kvc export` / `kvc import`: bundles through the real binary, hostile
//! streams crafted here with raw tar headers, and the library API where a
//! race has to be staged.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, UNIX_EPOCH};

fn blake3_hex(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

/// Run kvc, returning exit code, stdout and stderr.
fn run(env: &TestEnv, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = env.kvc().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kvc import FILE --dir DIR --json ...` → (exit code, report).
fn import(env: &TestEnv, bundle: &Path, dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "import",
        bundle.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(env, &args);
    let v: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("import output is not JSON ({e}); stderr: {err}"));
    (code, v)
}

/// Entries of the report with this action, as (entry, message).
fn with_action(v: &Value, action: &str) -> Vec<(String, String)> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| {
            (
                e["entry"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// No temp file of any writer in `dir`.
fn assert_no_temp(dir: &Path) {
    for n in names_in(dir) {
        assert!(!n.contains(".tmp"), "temp file left behind: {n}");
    }
}

/// Three different healthy checkpoints, one of them an agent's sysprompt.
fn sample_set() -> Vec<Ckpt> {
    let mut sys = Ckpt::new(b"You are the agent.".to_vec()).reason(REASON_AGENT_SYSTEM);
    sys.name = Some("sysprompt.kv".into());
    vec![
        Ckpt::new(chat("first question")).hits(3, CREATED + 50),
        Ckpt::new(chat("second, with a tool"))
            .reason(REASON_CONTINUED)
            .with_tool_map(&[(b"call_1", b"<tool_calls>")]),
        Ckpt::new(b"\x01\x02\x03\x04".to_vec()).opaque_payload(70_000),
        sys,
    ]
}

// ---------------------------------------------------------------------------
// Crafting bundles by hand

/// A tar stream assembled header by header, so any name and type can be
/// written (the tar crate's path setters refuse `..` and absolute paths).
struct Craft(tar::Builder<Vec<u8>>);

impl Craft {
    fn new() -> Craft {
        Craft(tar::Builder::new(Vec::new()))
    }

    fn raw(&mut self, name: &[u8], ty: tar::EntryType, data: &[u8], link: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            u.name = [0; 100];
            u.name[..name.len()].copy_from_slice(name);
            u.linkname = [0; 100];
            u.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(CREATED);
        h.set_entry_type(ty);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name.as_bytes(), tar::EntryType::Regular, data, b"")
    }

    /// A digest record as export writes it, with every field settable.
    fn record_json(&mut self, name: &str, rec: Value) -> &mut Self {
        let bytes = serde_json::to_vec(&rec).unwrap();
        self.file(&format!("{name}.kvc-meta.json"), &bytes)
    }

    fn record(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let key = name.trim_end_matches(".kv").to_string();
        self.record_json(
            name,
            json!({"bundle": 1, "file": name, "key": key, "size": data.len(),
                   "blake3": blake3_hex(data), "status": "ok"}),
        )
    }

    fn pair(&mut self, c: &Ckpt) -> &mut Self {
        let (name, data) = (c.file_name(), c.bytes());
        self.file(&name, &data).record(&name, &data)
    }

    fn manifest(&mut self) -> &mut Self {
        let m = json!({"bundle": 1, "kvc_version": "test", "exported_at": CREATED, "entries": []});
        self.file("MANIFEST.json", &serde_json::to_vec(&m).unwrap())
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

// ---------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_is_byte_identical_and_gnu_tar_lists_the_bundle() {
    let env = TestEnv::new();
    let set = sample_set();
    for c in &set {
        env.add(c);
    }
    env.add_raw("notes.txt", b"not a checkpoint");
    let before = env.snapshot();
    let bundle = env.export_to("b.tar", &["--all"]);
    assert_eq!(env.snapshot(), before, "export must not modify the cache");
    assert!(
        !env.cache.join(".kvc").exists(),
        "export must not create .kvc/"
    );
    assert_eq!(
        fs::metadata(&bundle).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_no_temp(env.root.path());

    let target = env.root.path().join("new/target");
    let (code, v) = import(&env, &bundle, &target, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["counts"]["installed"], set.len());
    assert_eq!(v["truncated"], false);
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for c in &set {
        let p = target.join(c.file_name());
        assert_eq!(fs::read(&p).unwrap(), c.bytes(), "{}", c.file_name());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut expected: BTreeSet<String> = set.iter().map(|c| c.file_name()).collect();
    expected.insert(".kvc".into());
    assert_eq!(names_in(&target), expected);

    let journal = fs::read_to_string(target.join(".kvc/journal")).unwrap();
    assert_eq!(journal.matches("\"op\":\"import\"").count(), set.len());

    // GNU tar reads the same stream.
    match StdCommand::new("tar").arg("-tf").arg(&bundle).output() {
        Ok(out) if out.status.success() => {
            let listed: Vec<String> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from)
                .collect();
            let mut want: Vec<String> = Vec::new();
            let mut sorted: Vec<&Ckpt> = set.iter().collect();
            sorted.sort_by_key(|c| {
                if c.file_name() == "sysprompt.kv" {
                    "sysprompt".to_string()
                } else {
                    c.key()
                }
            });
            for c in sorted {
                want.push(c.file_name());
                want.push(format!("{}.kvc-meta.json", c.file_name()));
            }
            want.push("MANIFEST.json".into());
            assert_eq!(listed, want);
        }
        Ok(out) => panic!("tar -tf failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => eprintln!("GNU tar not installed: listing not checked"),
    }
}

fn kvc_std(env: &TestEnv) -> StdCommand {
    let mut c = StdCommand::new(assert_cmd::cargo::cargo_bin("kvc"));
    c.env_clear()
        .env("HOME", env.root.path().join("home"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(env.root.path());
    c
}

#[test]
fn export_piped_into_import_in_another_process() {
    let env = TestEnv::new();
    let set = sample_set();
    for c in &set {
        env.add(c);
    }
    let target = env.root.path().join("piped");
    let mut exp = kvc_std(&env)
        .args(["export", "--all", "-o", "-", "--json", "--dir"])
        .arg(&env.cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let imp = kvc_std(&env)
        .args(["import", "-", "--json", "--dir"])
        .arg(&target)
        .stdin(exp.stdout.take().unwrap())
        .output()
        .unwrap();
    let exp = exp.wait_with_output().unwrap();
    assert!(exp.status.success());
    assert!(
        imp.status.success(),
        "{}",
        String::from_utf8_lossy(&imp.stderr)
    );
    // With the bundle on stdout, export's report goes to stderr.
    let report: Value = serde_json::from_slice(&exp.stderr).unwrap();
    assert_eq!(report["entries"].as_array().unwrap().len(), set.len());
    assert_eq!(report["output"], "-");
    let v: Value = serde_json::from_slice(&imp.stdout).unwrap();
    assert_eq!(v["counts"]["installed"], set.len());
    for c in &set {
        assert_eq!(fs::read(target.join(c.file_name())).unwrap(), c.bytes());
    }
}

#[test]
fn export_to_a_reader_that_goes_away_fails() {
    let env = TestEnv::new();
    env.add(&Ckpt::new(chat("big")).opaque_payload(4 << 20));
    let mut exp = kvc_std(&env)
        .args(["export", "--all", "-o", "-", "--dir"])
        .arg(&env.cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 512];
    std::io::Read::read_exact(exp.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(exp.stdout.take());
    let out = exp.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("closed before the bundle was complete"),
        "{err}"
    );
}

#[test]
fn export_selects_by_key_prefix_and_filters() {
    let env = TestEnv::new();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let a = Ckpt::new(chat("alpha")).hits(1, now - 60);
    let b = Ckpt::new(chat("beta"))
        .tokens(1000, 32768)
        .reason(REASON_CONTINUED);
    let mut c = Ckpt::new(chat("gamma")).hits(2, now - 10 * 86_400);
    c.quant_bits = 4;
    for x in [&a, &b, &c] {
        env.add(x);
    }
    let keys = |args: &[&str]| -> BTreeSet<String> {
        let mut full = vec!["export", "-o", "-", "--json", "--dir"];
        full.push(env.cache.to_str().unwrap());
        full.extend_from_slice(args);
        let out = env.kvc().args(&full).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stderr).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_string())
            .collect()
    };
    let set = |xs: &[&Ckpt]| xs.iter().map(|c| c.key()).collect::<BTreeSet<_>>();
    assert_eq!(keys(&[&a.key()[..6], &b.key()]), set(&[&a, &b]));
    assert_eq!(keys(&["--all", "--reason", "continued"]), set(&[&b]));
    assert_eq!(keys(&["--reason", "cold"]), set(&[&a, &c]));
    assert_eq!(keys(&["--min-tokens", "800"]), set(&[&b]));
    assert_eq!(keys(&["--quant", "4"]), set(&[&c]));
    assert_eq!(keys(&["--used-within", "2d"]), set(&[&a]));
    assert_eq!(keys(&[&a.key()[..6], "--quant", "4"]), set(&[]));

    // Nothing selected at all is a usage error, not an empty bundle.
    let (code, _, err) = run(
        &env,
        &[
            "export",
            "-o",
            "x.tar",
            "--dir",
            env.cache.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("nothing selected"), "{err}");
    assert!(!env.root.path().join("x.tar").exists());
}

#[test]
fn export_keys_naming_an_invalid_file_or_nothing() {
    let env = TestEnv::new();
    let good = Ckpt::new(chat("good"));
    let cut = Ckpt::new(chat("cut short"));
    env.add(&good);
    let bytes = cut.bytes();
    env.add_raw(&cut.file_name(), &bytes[..bytes.len() - 10]);
    let dir = env.cache.to_str().unwrap();
    // A key of an invalid file: reported, not exported, exit 1.
    let out = env
        .kvc()
        .args([
            "export",
            "-o",
            "-",
            "--json",
            "--dir",
            dir,
            &good.key()[..8],
        ])
        .arg(&cut.key()[..8])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(v["entries"][0]["key"], good.key());
    assert_eq!(v["invalid"][0]["file"], cut.file_name());
    assert_eq!(v["invalid"][0]["code"], "truncated");
    // A key of nothing: a usage error naming it, no bundle.
    let (code, _, err) = run(&env, &["export", "-o", "x.tar", "--dir", dir, "0000"]);
    assert_eq!(code, 2);
    assert!(err.contains("\"0000\""), "{err}");
    assert!(!env.root.path().join("x.tar").exists());
}

// ---------------------------------------------------------------------------
// Hostile entries

/// Import `bundle` into `env.cache`; a valid checkpoint follows every
/// hostile entry and must still be installed.
fn import_hostile(env: &TestEnv, hostile: impl FnOnce(&mut Craft)) -> (i32, Value, Ckpt) {
    let good = Ckpt::new(chat("the good one"));
    let mut cr = Craft::new();
    hostile(&mut cr);
    cr.pair(&good).manifest();
    let path = env.root.path().join("hostile.tar");
    fs::write(&path, cr.finish()).unwrap();
    let (code, v) = import(env, &path, &env.cache, &[]);
    assert_eq!(
        fs::read(env.cache.join(good.file_name())).unwrap(),
        good.bytes()
    );
    assert_no_temp(&env.cache);
    (code, v, good)
}

#[test]
fn hostile_paths_and_types_are_rejected_and_nothing_lands_outside() {
    let victim = Ckpt::new(chat("payload of the attack"));
    let name = victim.file_name();
    let data = victim.bytes();
    // (case, entry name, type, link target, expected message)
    type Case<'a> = (&'a str, Vec<u8>, tar::EntryType, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "absolute",
            Vec::new(),
            tar::EntryType::Regular,
            Vec::new(),
            "absolute path",
        ),
        (
            "dotdot",
            format!("../{name}").into_bytes(),
            tar::EntryType::Regular,
            Vec::new(),
            "`..`",
        ),
        (
            "nested",
            format!("sub/{name}").into_bytes(),
            tar::EntryType::Regular,
            Vec::new(),
            "nested path",
        ),
        (
            "symlink",
            name.clone().into_bytes(),
            tar::EntryType::Symlink,
            b"/etc/passwd".to_vec(),
            "symbolic link",
        ),
        (
            "hardlink",
            name.clone().into_bytes(),
            tar::EntryType::Link,
            b"../outside/x".to_vec(),
            "hard link",
        ),
        (
            "chardev",
            name.clone().into_bytes(),
            tar::EntryType::Char,
            Vec::new(),
            "character device",
        ),
        (
            "blockdev",
            name.clone().into_bytes(),
            tar::EntryType::Block,
            Vec::new(),
            "block device",
        ),
        (
            "fifo",
            name.clone().into_bytes(),
            tar::EntryType::Fifo,
            Vec::new(),
            "FIFO",
        ),
        (
            "dir",
            b"sub".to_vec(),
            tar::EntryType::Directory,
            Vec::new(),
            "directory",
        ),
        (
            "stray",
            b"notes.txt".to_vec(),
            tar::EntryType::Regular,
            Vec::new(),
            "not a checkpoint name",
        ),
    ];
    for (what, raw_name, ty, link, expect) in cases {
        let env = TestEnv::new();
        let outside = env.root.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let raw_name = if what == "absolute" {
            format!("{}/{name}", outside.display()).into_bytes()
        } else {
            raw_name
        };
        let payload = if ty == tar::EntryType::Regular {
            data.clone()
        } else {
            Vec::new()
        };
        let (code, v, good) = import_hostile(&env, |cr| {
            cr.raw(&raw_name, ty, &payload, &link);
        });
        assert_eq!(code, 1, "{what}: {v:#}");
        let rejected = with_action(&v, "rejected");
        assert_eq!(rejected.len(), 1, "{what}: {v:#}");
        assert!(rejected[0].1.contains(expect), "{what}: {:?}", rejected[0]);
        // Nothing outside the target, nothing but the good file inside.
        assert!(names_in(&outside).is_empty(), "{what}: wrote outside");
        assert!(
            !env.root.path().join(&name).exists(),
            "{what}: wrote into the parent"
        );
        let mut want = BTreeSet::from([".kvc".to_string(), good.file_name()]);
        assert_eq!(names_in(&env.cache), want, "{what}");
        want.clear();
    }
}

#[test]
fn duplicate_names_keep_the_first_copy() {
    let env = TestEnv::new();
    let first = Ckpt::new(chat("dup")).hits(1, CREATED + 1);
    let second = Ckpt::new(chat("dup")).hits(9, CREATED + 9);
    let (code, v, _) = import_hostile(&env, |cr| {
        cr.pair(&first).pair(&second);
    });
    assert_eq!(code, 1);
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert!(rejected[0].1.contains("duplicate"), "{rejected:?}");
    assert_eq!(
        fs::read(env.cache.join(first.file_name())).unwrap(),
        first.bytes()
    );
}

#[test]
fn a_name_that_is_not_the_texts_sha1_is_rejected() {
    let env = TestEnv::new();
    let mut liar = Ckpt::new(chat("real text"));
    let wrong = format!("{}.kv", sha1_hex(b"some other text"));
    liar.name = Some(wrong.clone());
    let (code, v, _) = import_hostile(&env, |cr| {
        cr.pair(&liar);
    });
    assert_eq!(code, 1);
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert!(rejected[0].1.contains("SHA-1"), "{rejected:?}");
    assert!(!env.cache.join(&wrong).exists());
}

#[test]
fn digest_size_and_status_of_the_record_are_enforced() {
    let c = Ckpt::new(chat("checked"));
    let (name, data) = (c.file_name(), c.bytes());
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "digest",
            json!({"bundle": 1, "file": name, "key": c.key(), "size": data.len(),
                   "blake3": blake3_hex(b"something else"), "status": "ok"}),
            "BLAKE3 digest mismatch",
        ),
        (
            "size",
            json!({"bundle": 1, "file": name, "key": c.key(), "size": data.len() + 1,
                   "blake3": blake3_hex(&data), "status": "ok"}),
            "size mismatch",
        ),
        (
            "excluded",
            json!({"bundle": 1, "file": name, "key": c.key(), "size": data.len(),
                   "blake3": blake3_hex(&data), "status": "excluded", "problem": "file changed"}),
            "excluded by the exporter",
        ),
        (
            "future",
            json!({"bundle": 99, "file": name, "key": c.key(), "size": data.len(),
                   "blake3": blake3_hex(&data), "status": "ok"}),
            "newer than this kvc",
        ),
    ];
    for (what, rec, expect) in cases {
        let env = TestEnv::new();
        let (code, v, _) = import_hostile(&env, |cr| {
            cr.file(&name, &data).record_json(&name, rec);
        });
        assert_eq!(code, 1, "{what}");
        let rejected = with_action(&v, "rejected");
        assert_eq!(rejected.len(), 1, "{what}: {v:#}");
        assert!(rejected[0].1.contains(expect), "{what}: {rejected:?}");
        assert!(!env.cache.join(&name).exists(), "{what}: installed anyway");
    }
}

#[test]
fn an_entry_without_its_record_is_not_installed() {
    let env = TestEnv::new();
    let lone = Ckpt::new(chat("no record"));
    let (code, v, _) = import_hostile(&env, |cr| {
        cr.file(&lone.file_name(), &lone.bytes());
    });
    assert_eq!(code, 1);
    let rejected = with_action(&v, "rejected");
    assert!(rejected[0].1.contains("no digest record"), "{rejected:?}");
    assert!(!env.cache.join(lone.file_name()).exists());
}

#[test]
fn extension_headers_are_rejected_with_the_entry_they_describe() {
    let env = TestEnv::new();
    let hidden = Ckpt::new(chat("behind a long name"));
    let (code, v, _) = import_hostile(&env, |cr| {
        // A GNU long-name header would rename the next entry for GNU tar.
        cr.raw(
            b"././@LongLink",
            tar::EntryType::GNULongName,
            b"../../evil.kv\0",
            b"",
        );
        cr.pair(&hidden);
    });
    assert_eq!(code, 1);
    let rejected = with_action(&v, "rejected");
    assert!(rejected[0].1.contains("extension header"), "{rejected:?}");
    assert!(rejected[1].1.contains("follows"), "{rejected:?}");
    assert!(!env.cache.join(hidden.file_name()).exists());
    assert!(!env.root.path().join("evil.kv").exists());
}

#[test]
fn a_corrupted_payload_byte_is_caught_by_the_digest() {
    let env = TestEnv::new();
    let set = sample_set();
    for c in &set {
        env.add(c);
    }
    let bundle = env.export_to("b.tar", &["--all"]);
    let mut bytes = fs::read(&bundle).unwrap();
    // The first entry's data starts after its 512-byte header; flip a byte
    // deep in the payload (tar headers carry checksums, data does not).
    let first = {
        let mut s: Vec<&Ckpt> = set
            .iter()
            .filter(|c| c.file_name() != "sysprompt.kv")
            .collect();
        s.sort_by_key(|c| c.key());
        s[0].clone()
    };
    let at = 512 + first.bytes().len() - 100;
    bytes[at] ^= 0x40;
    fs::write(&bundle, &bytes).unwrap();
    let target = env.root.path().join("t");
    let (code, v) = import(&env, &bundle, &target, &[]);
    assert_eq!(code, 1);
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert_eq!(rejected[0].0, first.file_name());
    assert!(rejected[0].1.contains("BLAKE3"), "{rejected:?}");
    assert!(!target.join(first.file_name()).exists());
    assert_eq!(v["counts"]["installed"], set.len() - 1);
    assert_no_temp(&target);
}

#[test]
fn input_that_is_not_a_tar_stream_exits_2_and_creates_nothing() {
    let env = TestEnv::new();
    let target = env.root.path().join("never");
    for (name, bytes) in [
        (
            "garbage",
            b"this is certainly not a tar archive, just some text\n".repeat(20),
        ),
        ("empty", Vec::new()),
    ] {
        let p = env.root.path().join(name);
        fs::write(&p, bytes).unwrap();
        let (code, _, err) = run(
            &env,
            &[
                "import",
                p.to_str().unwrap(),
                "--dir",
                target.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: error must name the input: {err}"
        );
        assert!(!target.exists(), "{name}: target created");
    }
}

/// A 512-byte tar header block whose name and checksum field carry
/// terminal escapes: the tar reader's error about it quotes both.
fn escape_laden_header() -> Vec<u8> {
    let mut block = vec![0u8; 512];
    let name = b"\x1b]0;pwned\x07\x1b[31mevil.kv";
    block[..name.len()].copy_from_slice(name);
    // The checksum field (148..156) is not octal: "\e[2J".
    block[148..152].copy_from_slice(b"\x1b[2J");
    block
}

fn assert_no_raw_controls(what: &str, s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: raw control characters reached the output: {s:?}"
    );
}

#[test]
fn regression_untrusted_text_in_stream_errors_is_sanitized() {
    // As the first block: import fails (exit 2), and the one line on
    // stderr quotes the header sanitized.
    let env = TestEnv::new();
    let target = env.root.path().join("t");
    let p = env.root.path().join("evil.tar");
    fs::write(&p, escape_laden_header().repeat(3)).unwrap();
    let (code, _, err) = run(
        &env,
        &[
            "import",
            p.to_str().unwrap(),
            "--dir",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a tar stream"), "{err}");
    assert!(err.contains("\\e[2J"), "the field is shown, escaped: {err}");
    assert_no_raw_controls("stderr", &err);
    assert!(!target.exists());

    // After a good entry: the `(stream)` row of the report, in JSON and in
    // the table.
    let good = Ckpt::new(chat("before the bad block"));
    let mut cr = Craft::new();
    cr.pair(&good);
    let mut bytes = cr.finish();
    bytes.truncate(bytes.len() - 1024); // the end-of-archive blocks
    bytes.extend(escape_laden_header());
    bytes.extend(vec![0u8; 1024]);
    fs::write(&p, &bytes).unwrap();
    let (code, v) = import(&env, &p, &env.cache, &["--dry-run"]);
    assert_eq!(code, 1);
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert!(rejected[0].1.contains("\\e[2J"), "{rejected:?}");
    assert_no_raw_controls("JSON message", &rejected[0].1);
    let (code, out, err) = run(
        &env,
        &[
            "import",
            p.to_str().unwrap(),
            "--dir",
            env.cache.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_no_raw_controls("table", &String::from_utf8_lossy(&out));
}

#[test]
fn regression_untrusted_text_in_a_record_error_is_sanitized() {
    // serde quotes an unknown enum variant as it is.
    let env = TestEnv::new();
    let c = Ckpt::new(chat("its record lies"));
    let (name, data) = (c.file_name(), c.bytes());
    let rec = json!({"bundle": 1, "file": name, "key": c.key(), "size": data.len(),
                     "blake3": blake3_hex(&data), "status": "\u{1b}[2J\u{7}"});
    let (code, v, _) = import_hostile(&env, |cr| {
        cr.file(&name, &data).record_json(&name, rec);
    });
    assert_eq!(code, 1);
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert!(
        rejected[0].1.contains("digest record is unreadable"),
        "{rejected:?}"
    );
    assert!(rejected[0].1.contains("\\e[2J\\x07"), "{rejected:?}");
    assert_no_raw_controls("JSON message", &rejected[0].1);
    assert!(!env.cache.join(&name).exists());
}

#[test]
fn regression_the_manifest_version_is_sanitized() {
    // serde_json escapes only C0 controls: a C1 CSI or a bidi override
    // would reach the terminal through --json as it is.
    let env = TestEnv::new();
    let good = Ckpt::new(chat("behind a hostile manifest"));
    let mut cr = Craft::new();
    cr.pair(&good);
    let m = json!({"bundle": 1, "kvc_version": "1.0\u{9b}2J\u{202e}x\u{1b}",
                   "exported_at": CREATED, "entries": []});
    cr.file("MANIFEST.json", &serde_json::to_vec(&m).unwrap());
    let p = env.root.path().join("b.tar");
    fs::write(&p, cr.finish()).unwrap();
    let (code, v) = import(&env, &p, &env.cache, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["manifest"]["kvc_version"], "1.0\\x9b2J\\u{202e}x\\e");
}

// ---------------------------------------------------------------------------
// Cut-off bundles

#[test]
fn a_bundle_cut_off_midway_installs_what_came_before_the_cut() {
    let env = TestEnv::new();
    let set: Vec<Ckpt> = (0..3)
        .map(|i| Ckpt::new(chat(&format!("entry {i}"))).opaque_payload(5000 + i * 1000))
        .collect();
    for c in &set {
        env.add(c);
    }
    let bundle = env.export_to("b.tar", &["--all"]);
    let full = fs::read(&bundle).unwrap();
    let mut order: Vec<&Ckpt> = set.iter().collect();
    order.sort_by_key(|c| c.key());
    // Offsets: header, data padded to 512, record header + record.
    let mut ends = Vec::new();
    let mut a = tar::Archive::new(&full[..]);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        ends.push((
            e.path().unwrap().display().to_string(),
            e.raw_file_position(),
            e.size(),
        ));
    }
    let data_start_of_second = ends[2].1 as usize; // entries: kv, meta, kv, ...
    assert_eq!(ends[2].0, order[1].file_name());

    // Cut inside the second checkpoint's data.
    let cut = env.root.path().join("cut.tar");
    fs::write(&cut, &full[..data_start_of_second + 700]).unwrap();
    let target = env.root.path().join("t1");
    let (code, v) = import(&env, &cut, &target, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["truncated"], true);
    assert_eq!(
        fs::read(target.join(order[0].file_name())).unwrap(),
        order[0].bytes()
    );
    assert!(!target.join(order[1].file_name()).exists());
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert!(rejected[0].1.contains("truncated"), "{rejected:?}");
    assert_no_temp(&target);

    // Cut right before MANIFEST.json: every entry verified, end marker missing.
    let manifest_header = (ends.last().unwrap().1 - 512) as usize;
    fs::write(&cut, &full[..manifest_header]).unwrap();
    let target = env.root.path().join("t2");
    let (code, v) = import(&env, &cut, &target, &[]);
    assert_eq!(code, 1);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["counts"]["installed"], 3);
    assert!(with_action(&v, "rejected")[0].1.contains("MANIFEST.json"));
}

/// An entry the target cannot take (here: larger than the file size limit,
/// as a full disk would refuse it) is rejected on its own, its temp file
/// removed, and the entries around it are installed: the writing thread
/// reports the failure back at the end of the entry.
#[test]
fn an_entry_that_cannot_be_written_is_rejected_alone() {
    let env = TestEnv::new();
    let small = Ckpt::new(chat("a small one"));
    let big = Ckpt::new(chat("a big one")).opaque_payload(3 << 20);
    let other = Ckpt::new(chat("another small one"));
    for c in [&small, &big, &other] {
        env.add(c);
    }
    let bundle = env.export_to("b.tar", &["--all"]);
    let target = env.root.path().join("limited");
    // Writes past 1 MiB fail with EFBIG (SIGXFSZ ignored), in the target
    // only: the bundle is read, stdout is a pipe.
    let out = StdCommand::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("kvc"))
        .args(["import", "--json", "--dir"])
        .arg(&target)
        .arg(&bundle)
        .env_clear()
        .env("HOME", env.root.path().join("home"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(env.root.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert_eq!(rejected[0].0, big.file_name());
    assert!(
        rejected[0].1.contains("could not be written"),
        "{rejected:?}"
    );
    assert_eq!(v["counts"]["installed"], 2, "{v:#}");
    for c in [&small, &other] {
        assert_eq!(fs::read(target.join(c.file_name())).unwrap(), c.bytes());
    }
    assert!(!target.join(big.file_name()).exists());
    assert_no_temp(&target);
}

// ---------------------------------------------------------------------------
// Conflicts, stats, dry runs

#[test]
fn conflicts_skip_replace_newer_and_identical() {
    let bundle_copy = Ckpt::new(chat("contested")).hits(2, CREATED + 200);
    let older_local = Ckpt::new(chat("contested")).hits(7, CREATED + 100);
    let newer_local = Ckpt::new(chat("contested")).hits(1, CREATED + 900);
    let make_bundle = |env: &TestEnv| {
        let mut cr = Craft::new();
        cr.pair(&bundle_copy).manifest();
        let p = env.root.path().join("b.tar");
        fs::write(&p, cr.finish()).unwrap();
        p
    };
    let name = bundle_copy.file_name();
    // (local copy, --on-conflict, expected action, bytes afterwards, journal op)
    let cases: Vec<(&Ckpt, &str, &str, &Ckpt, Option<&str>)> = vec![
        (&older_local, "skip", "skipped", &older_local, None),
        (
            &older_local,
            "replace",
            "replaced",
            &bundle_copy,
            Some("replace"),
        ),
        (
            &older_local,
            "newer",
            "replaced",
            &bundle_copy,
            Some("replace"),
        ),
        (&newer_local, "newer", "skipped", &newer_local, None),
        (&bundle_copy, "skip", "present", &bundle_copy, None),
        (&bundle_copy, "replace", "present", &bundle_copy, None),
    ];
    for (local, mode, action, after, op) in cases {
        let env = TestEnv::new();
        env.add(local);
        let b = make_bundle(&env);
        let (code, v) = import(&env, &b, &env.cache, &["--on-conflict", mode]);
        assert_eq!(code, 0, "{mode}: {v:#}");
        assert_eq!(v["entries"][0]["action"], action, "{mode}: {v:#}");
        assert_eq!(
            fs::read(env.cache.join(&name)).unwrap(),
            after.bytes(),
            "{mode}"
        );
        let journal = fs::read_to_string(env.cache.join(".kvc/journal")).unwrap_or_default();
        match op {
            Some(op) => assert!(
                journal.contains(&format!("\"op\":\"{op}\"")),
                "{mode}: {journal}"
            ),
            None => assert!(journal.is_empty(), "{mode}: {journal}"),
        }
        assert_no_temp(&env.cache);
    }
}

#[test]
fn reset_stats_zeroes_hits_and_stamps_last_used() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("used a lot")).hits(42, CREATED + 500);
    let mut cr = Craft::new();
    cr.pair(&c).manifest();
    let b = env.root.path().join("b.tar");
    fs::write(&b, cr.finish()).unwrap();
    let now = CREATED + 10_000;
    let (code, _) = import(
        &env,
        &b,
        &env.cache,
        &["--reset-stats", "--now", &now.to_string()],
    );
    assert_eq!(code, 0);
    let got = fs::read(env.cache.join(c.file_name())).unwrap();
    let mut want = c.clone();
    want.hits = 0;
    want.last_used = now;
    assert_eq!(got, want.bytes());
}

#[test]
fn dry_run_writes_nothing() {
    let env = TestEnv::new();
    let existing = Ckpt::new(chat("already here")).hits(1, CREATED + 1);
    env.add(&existing);
    let incoming = Ckpt::new(chat("new one"));
    let mut cr = Craft::new();
    cr.pair(&incoming)
        .pair(&Ckpt::new(chat("already here")).hits(5, CREATED + 5))
        .manifest();
    let b = env.root.path().join("b.tar");
    fs::write(&b, cr.finish()).unwrap();
    let before = env.snapshot();
    let (code, v) = import(
        &env,
        &b,
        &env.cache,
        &["--dry-run", "--on-conflict", "replace"],
    );
    assert_eq!(code, 0);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["counts"]["installed"], 1);
    assert_eq!(v["counts"]["replaced"], 1);
    assert_eq!(env.snapshot(), before);
    // A missing target is not created either.
    let missing = env.root.path().join("missing");
    let (code, _) = import(&env, &b, &missing, &["--dry-run"]);
    assert_eq!(code, 0);
    assert!(!missing.exists());
}

// ---------------------------------------------------------------------------
// --budget

/// Checkpoints of one size: the same text length, the same payload.
fn sized(tag: char, last_used: u64) -> Ckpt {
    Ckpt::new(chat(&tag.to_string().repeat(8)))
        .opaque_payload(20_000)
        .hits(1, last_used)
}

#[test]
fn budget_after_import_evicts_in_policy_order_and_protects_the_imported() {
    let env = TestEnv::new();
    let old_a = sized('a', CREATED + 10);
    let mid_b = sized('b', CREATED + 20);
    let new_c = sized('c', CREATED + 30);
    let mut agent = sized('s', CREATED + 1).reason(REASON_AGENT_SESSION);
    agent.hits = 0;
    for c in [&old_a, &mid_b, &new_c, &agent] {
        env.add(c);
    }
    // Imported copies are the least recently used of all: LRU would take
    // them first if they were not protected.
    let x = sized('x', CREATED + 2);
    let y = sized('y', CREATED + 3);
    let mut cr = Craft::new();
    cr.pair(&x).pair(&y).manifest();
    let b = env.root.path().join("b.tar");
    fs::write(&b, cr.finish()).unwrap();
    let size = x.bytes().len() as u64;
    // Room for four files: x, y, the agent save and one more.
    let budget = format!("{}B", (4 * size + size / 2));

    // A dry run plans the same evictions and performs none.
    let before = env.snapshot();
    let (code, v) = import(
        &env,
        &b,
        &env.cache,
        &["--budget", &budget, "--policy", "lru", "--dry-run"],
    );
    assert_eq!(code, 0, "{v:#}");
    let planned: Vec<&str> = v["budget"]["evicted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(planned, [old_a.key(), mid_b.key()]);
    assert_eq!(env.snapshot(), before);

    let (code, v) = import(
        &env,
        &b,
        &env.cache,
        &["--budget", &budget, "--policy", "lru"],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["budget"]["met"], true);
    let left = names_in(&env.cache);
    for kept in [&x, &y, &agent, &new_c] {
        assert!(left.contains(&kept.file_name()), "{} evicted", kept.key());
    }
    for gone in [&old_a, &mid_b] {
        assert!(!left.contains(&gone.file_name()), "{} kept", gone.key());
    }
    let journal = fs::read_to_string(env.cache.join(".kvc/journal")).unwrap();
    assert_eq!(journal.matches("\"op\":\"evict\"").count(), 2);
    assert_eq!(journal.matches("\"why\":\"budget\"").count(), 2);
}

#[test]
fn a_budget_the_imported_alone_exceed_is_reported_unmet() {
    let env = TestEnv::new();
    let local = sized('l', CREATED + 50);
    env.add(&local);
    let x = sized('x', CREATED + 2);
    let mut cr = Craft::new();
    cr.pair(&x).manifest();
    let b = env.root.path().join("b.tar");
    fs::write(&b, cr.finish()).unwrap();
    let (code, v) = import(&env, &b, &env.cache, &["--budget", "1K"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["budget"]["met"], false);
    assert!(
        env.cache.join(x.file_name()).exists(),
        "the imported one is protected"
    );
    assert!(!env.cache.join(local.file_name()).exists());
}

// ---------------------------------------------------------------------------
// Files that change while they are exported (library API: the progress
// callback runs between reads, which is where an engine would strike)

/// Runs `f` once, after the first read of the entry named `target`.
struct Strike<F: FnMut()> {
    target: String,
    armed: bool,
    f: Option<F>,
}

impl<F: FnMut()> kvc::bundle::Progress for Strike<F> {
    fn entry(&mut self, name: &str) {
        self.armed = name == self.target;
    }
    fn advance(&mut self, _bytes: u64) {
        if self.armed {
            if let Some(mut f) = self.f.take() {
                f();
            }
        }
    }
}

fn set_old_mtime(p: &Path) {
    let f = fs::OpenOptions::new().write(true).open(p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(CREATED))
        .unwrap();
}

#[test]
fn a_file_that_shrinks_or_is_rewritten_mid_export_is_excluded() {
    use kvc::bundle::{self, Selection, StreamOut};
    // Larger than one read chunk, so the strike lands between reads.
    let big = Ckpt::new(chat("big and hot")).opaque_payload(3 * bundle::CHUNK);
    let calm = Ckpt::new(chat("calm"));
    type Hit = Box<dyn Fn(&Path)>;
    let strikes: Vec<(&str, Hit)> = vec![
        (
            "shrinks",
            Box::new(|p: &Path| {
                let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(1000).unwrap();
            }),
        ),
        (
            "header rewritten (a hit)",
            Box::new(|p: &Path| {
                let mut f = fs::OpenOptions::new().write(true).open(p).unwrap();
                f.write_all(b"KVC").unwrap();
            }),
        ),
    ];
    for (what, strike) in strikes {
        for to_file in [true, false] {
            let env = TestEnv::new();
            let big_path = env.add(&big);
            env.add(&calm);
            set_old_mtime(&big_path);
            let sel = Selection {
                all: true,
                ..Selection::default()
            };
            let selected = bundle::select(&env.cache, &sel, NOW).unwrap();
            let mut progress = Strike {
                target: big.file_name(),
                armed: false,
                f: Some(|| strike(&big_path)),
            };
            let (report, bytes) = if to_file {
                let out = kvc::fsutil::AtomicFile::create(env.root.path(), "b.tar").unwrap();
                let (r, out) = bundle::export(
                    &selected.checkpoints,
                    out,
                    Path::new("b.tar"),
                    NOW,
                    &mut progress,
                )
                .unwrap();
                let p = out.commit().unwrap();
                (r, fs::read(p).unwrap())
            } else {
                let (r, out) = bundle::export(
                    &selected.checkpoints,
                    StreamOut(Vec::new()),
                    Path::new("-"),
                    NOW,
                    &mut progress,
                )
                .unwrap();
                (r, out.0)
            };
            assert_eq!(report.excluded.len(), 1, "{what}: {report:?}");
            assert_eq!(report.excluded[0].key, big.key());
            assert_eq!(report.excluded[0].in_bundle, !to_file, "{what}");
            assert_eq!(report.entries.len(), 1);
            // A file output took the entry back: GNU-tar-visible content
            // holds no trace of it.
            let mut names = Vec::new();
            let mut a = tar::Archive::new(&bytes[..]);
            for e in a.entries().unwrap() {
                names.push(e.unwrap().path().unwrap().display().to_string());
            }
            assert_eq!(
                names.contains(&big.file_name()),
                !to_file,
                "{what}: {names:?}"
            );
            // Whatever is in the stream, import never installs it.
            let target = env.root.path().join("t");
            let opts = bundle::ImportOptions {
                on_conflict: bundle::OnConflict::Skip,
                reset_stats: false,
                now: NOW,
                dry_run: false,
                source: "test".into(),
                budget: None,
                include_agent: false,
                engine: None,
            };
            let r = bundle::import(&bytes[..], &target, &opts, &mut bundle::NoProgress).unwrap();
            assert!(!target.join(big.file_name()).exists(), "{what}");
            assert!(target.join(calm.file_name()).exists(), "{what}");
            assert_eq!(r.has_problems(), !to_file, "{what}: {r:?}");
            assert_no_temp(&target);
        }
    }
}

#[test]
fn a_file_that_vanishes_before_its_turn_is_reported_not_fatal() {
    use kvc::bundle::{self, Selection, StreamOut};
    let env = TestEnv::new();
    let gone = env.add(&Ckpt::new(chat("evicted meanwhile")));
    env.add(&Ckpt::new(chat("stays")));
    let sel = Selection {
        all: true,
        ..Selection::default()
    };
    let selected = bundle::select(&env.cache, &sel, NOW).unwrap();
    fs::remove_file(&gone).unwrap();
    let (r, _) = bundle::export(
        &selected.checkpoints,
        StreamOut(Vec::new()),
        Path::new("-"),
        NOW,
        &mut bundle::NoProgress,
    )
    .unwrap();
    assert_eq!(r.vanished.len(), 1);
    assert_eq!(r.entries.len(), 1);
    assert!(r.excluded.is_empty());
}

/// `-o` into something that is not a regular file writes into it, as tar
/// does: renaming a temp file over `/dev/null` would replace the device
/// node with a regular file (as root, that breaks the machine).
#[test]
fn export_into_a_device_a_fifo_or_a_symlink_keeps_what_is_there() {
    use std::os::unix::fs::FileTypeExt;
    let env = TestEnv::new();
    env.add(&Ckpt::new(chat("to a device")));
    let export = |out: &Path| {
        env.kvc()
            .args(["export", "--all", "--dir"])
            .arg(&env.cache)
            .arg("-o")
            .arg(out)
            .assert()
            .success();
    };

    // A private copy of /dev/null (char device 1:3); creating one needs root.
    let null = env.root.path().join("null");
    let c_path = std::ffi::CString::new(null.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    let made = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if made == 0 {
        export(&null);
        assert!(fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device());
    } else {
        eprintln!("skipped the device node: mknod needs root");
    }

    // A FIFO with a reader: the bundle arrives through it, whole.
    let fifo = env.root.path().join("fifo");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(&fifo).unwrap())
    };
    export(&fifo);
    let got = reader.join().unwrap();
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(
        got.len() > 1024 && got.len() % 512 == 0,
        "{} bytes",
        got.len()
    );

    // A symlink to a regular file: the file gets the bundle, the link stays.
    let target = env.root.path().join("real.tar");
    fs::write(&target, b"old").unwrap();
    let link = env.root.path().join("link.tar");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    export(&link);
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // Same bundle but for the export time in its manifest.
    let written = fs::read(&target).unwrap();
    assert_eq!(written.len(), got.len());
    assert_eq!(written[..512], got[..512]);
}

// ---------------------------------------------------------------------------
// Dialects, agent sessions, and bytes kvc does not own

/// Files of a shared sample directory, by name.
fn sample_files(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".kv"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A bundle crafted from (name, bytes) pairs, each with a valid record.
fn craft_bundle(env: &TestEnv, name: &str, files: &[(String, Vec<u8>)]) -> std::path::PathBuf {
    let mut cr = Craft::new();
    for (n, b) in files {
        cr.file(n, b).record(n, b);
    }
    cr.manifest();
    let p = env.root.path().join(name);
    fs::write(&p, cr.finish()).unwrap();
    p
}

#[test]
fn todays_agent_sessions_round_trip_byte_identical() {
    // Titled sessions (named by their identity), a /strip'ped one
    // (payload_bytes 0), a legacy one and sysprompt.kv (EXPECTED.md).
    let env = TestEnv::with_sample("agent-current");
    let files = sample_files("agent-current");
    assert_eq!(files.len(), 4);
    let bundle = env.root.path().join("agent.tar");
    let (code, out, err) = run(
        &env,
        &[
            "export",
            "--all",
            "--json",
            "-o",
            bundle.to_str().unwrap(),
            "-d",
            env.cache.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_slice(&out).unwrap();
    let exported: Vec<(&str, &str)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["file"].as_str().unwrap(), e["dialect"].as_str().unwrap()))
        .collect();
    assert_eq!(exported.len(), 4, "{v:#}");
    assert!(exported.iter().all(|(_, d)| *d == "D3"), "{exported:?}");
    assert!(v["excluded"].as_array().unwrap().is_empty(), "{v:#}");

    let target = env.root.path().join("elsewhere");
    let (code, v) = import(&env, &bundle, &target, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["counts"]["installed"], 4, "{v:#}");
    for (name, bytes) in &files {
        assert_eq!(&fs::read(target.join(name)).unwrap(), bytes, "{name}");
    }
    // And a scan of the target lists them as the checkpoints they are.
    let ls = env.json(&["ls", target.to_str().unwrap(), "--json"]);
    let d = &ls["dirs"][0];
    assert_eq!(d["checkpoints"].as_array().unwrap().len(), 4, "{ls:#}");
    assert!(d["invalid"].as_array().unwrap().is_empty(), "{ls:#}");
}

#[test]
fn a_session_is_checked_by_its_identity_not_its_text() {
    let env = TestEnv::new();
    let good = Ckpt::new(chat("plan the release"))
        .mainline()
        .titled(b"Release plan");
    // The name a session without bit 3 would have: right for the text,
    // wrong for a session (the old rule would have taken it).
    let mut by_text = good.clone();
    by_text.name = Some(format!("{}.kv", good.key()));
    // The title changed after it was named.
    let mut retitled = good.clone();
    retitled.trailer = title_trailer(b"Release plan (edited)");
    retitled.name = Some(format!("{}.kv", sha1_hex(b"retitled")));
    let mut renamed = retitled.clone();
    renamed.name = good.name.clone();
    let stripped = Ckpt::new(chat("stripped one"))
        .mainline()
        .stripped()
        .titled(b"Stripped");
    let b = craft_bundle(
        &env,
        "s.tar",
        &[
            (by_text.file_name(), by_text.bytes()),
            (stripped.file_name(), stripped.bytes()),
        ],
    );
    let (code, v) = import(&env, &b, &env.cache, &[]);
    assert_eq!(code, 1, "{v:#}");
    let rejected = with_action(&v, "rejected");
    assert_eq!(rejected.len(), 1, "{v:#}");
    assert_eq!(rejected[0].0, by_text.file_name());
    assert!(
        rejected[0].1.contains("key-mismatch")
            && rejected[0].1.contains("session identity")
            && rejected[0]
                .1
                .contains(&session_identity(b"Release plan", CREATED)),
        "{rejected:?}"
    );
    assert!(!env.cache.join(by_text.file_name()).exists());
    assert_eq!(
        fs::read(env.cache.join(stripped.file_name())).unwrap(),
        stripped.bytes()
    );

    // A title that no longer gives the name is caught as well.
    let env = TestEnv::new();
    let b = craft_bundle(&env, "r.tar", &[(renamed.file_name(), renamed.bytes())]);
    let (code, v) = import(&env, &b, &env.cache, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert!(with_action(&v, "rejected")[0].1.contains("key-mismatch"));
    // A title cut short cannot name anything.
    let mut cut = good.clone();
    cut.trailer.truncate(cut.trailer.len() - 3);
    let b = craft_bundle(&env, "c.tar", &[(cut.file_name(), cut.bytes())]);
    let (code, v) = import(&env, &b, &env.cache, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert!(
        with_action(&v, "rejected")[0].1.contains("session title"),
        "{v:#}"
    );
    assert!(names_in(&env.cache).iter().all(|n| !n.ends_with(".kv")));
    // And the same session under its own name goes in.
    let b = craft_bundle(&env, "g.tar", &[(good.file_name(), good.bytes())]);
    let (code, v) = import(&env, &b, &env.cache, &[]);
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn foreign_files_are_not_exported_or_installed_as_checkpoints() {
    let env = TestEnv::with_sample("foreign");
    let healthy = Ckpt::new(chat("the one checkpoint here")).mainline();
    env.add(&healthy);
    let dir = env.cache.to_str().unwrap().to_string();
    let bundle = env.root.path().join("f.tar");
    let out = bundle.to_str().unwrap().to_string();
    // --all: the foreign files are left out with a note, not an error.
    let (code, stdout, err) = run(&env, &["export", "--all", "--json", "-o", &out, "-d", &dir]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{v:#}");
    let foreign: Vec<(&str, bool)> = v["foreign"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["dialect"].as_str().unwrap(),
                f["named"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        foreign,
        [("D8", false), ("foreign", false), ("D14", false)],
        "{v:#}"
    );
    let names: Vec<String> = tar::Archive::new(fs::File::open(&bundle).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .filter(|n| n.ends_with(".kv"))
        .collect();
    assert_eq!(names, [healthy.file_name()]);
    // Named: an error (exit 1), still not exported.
    let (code, _, err) = run(&env, &["export", "13be", "-o", &out, "-d", &dir]);
    assert_eq!(code, 1);
    assert!(err.is_empty(), "{err}");
    let (_, stdout, _) = run(&env, &["export", "13be", "-o", &out, "-d", &dir]);
    let human = String::from_utf8(stdout).unwrap();
    assert!(
        human.contains("foreign: 13be316d") && human.contains("D8"),
        "{human}"
    );

    // A bundle made by hand with them: each refused, with its dialect.
    let target = env.root.path().join("t");
    let mut files = sample_files("foreign");
    files.push((healthy.file_name(), healthy.bytes()));
    let b = craft_bundle(&env, "hand.tar", &files);
    for dry in [true, false] {
        let extra: &[&str] = if dry { &["--dry-run"] } else { &[] };
        let (code, v) = import(&env, &b, &target, extra);
        assert_eq!(code, 1, "{v:#}");
        let rejected = with_action(&v, "rejected");
        assert_eq!(rejected.len(), 3, "{v:#}");
        for (entry, want) in [
            ("13be316d", "foreign dialect D8"),
            ("8a25ce0b", "foreign dialect version 9"),
            ("f00f5dac", "foreign dialect D14"),
        ] {
            let (_, msg) = rejected.iter().find(|(e, _)| e.starts_with(entry)).unwrap();
            assert!(msg.contains(want) && msg.contains("cannot verify"), "{msg}");
        }
    }
    assert_eq!(
        names_in(&target),
        [".kvc".to_string(), healthy.file_name()].into()
    );
}

#[test]
fn import_keeps_every_byte_it_does_not_own() {
    // Model id 2, payload ABI 2 with bytes 21-23 set, reason 7, ext bits
    // kvc gives no meaning (0x20, 0x40) beside bit 1, and bytes after the
    // payload that are no trailer: only hits and last_used may change,
    // and only with --reset-stats.
    let mut c = Ckpt::new(chat("a fork's checkpoint")).with_unowned_bytes();
    c.ext_flags = 0x62;
    c.hits = 9;
    c.last_used = CREATED + 77;
    c.trailer = b"\x00unknown region\xff".to_vec();
    // A DGX Spark fork's ABI 4 (D6), model 7, byte 22 set.
    let mut spark = Ckpt::new(chat("a spark checkpoint")).opaque_payload(64);
    spark.payload_abi = 4;
    spark.model_id = 7;
    spark.reserved = [0, 0x11, 0];
    let set = [c, spark];
    let now = CREATED + 5000;
    for reset in [false, true] {
        let env = TestEnv::new();
        let files: Vec<_> = set.iter().map(|c| (c.file_name(), c.bytes())).collect();
        let b = craft_bundle(&env, "u.tar", &files);
        let extra: Vec<String> = if reset {
            vec!["--reset-stats".into(), "--now".into(), now.to_string()]
        } else {
            Vec::new()
        };
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (code, v) = import(&env, &b, &env.cache, &extra);
        assert_eq!(code, 0, "{v:#}");
        for c in &set {
            let got = fs::read(env.cache.join(c.file_name())).unwrap();
            let want = if reset {
                with_stats(&c.bytes(), 0, now)
            } else {
                c.bytes()
            };
            assert_eq!(got, want, "{} reset {reset}", c.file_name());
            assert_eq!(
                (got[7], &got[20..24]),
                (
                    c.model_id,
                    &[c.payload_abi, c.reserved[0], c.reserved[1], c.reserved[2]][..]
                )
            );
        }
    }
}

#[test]
fn agent_saves_are_replaced_only_with_include_agent() {
    // issue 13: `--on-conflict newer` replaced sysprompt.kv.
    let mut local = Ckpt::new(b"You are the agent.".to_vec()).reason(REASON_AGENT_SYSTEM);
    local.name = Some("sysprompt.kv".into());
    local.last_used = CREATED + 10;
    let mut newer = local.clone();
    newer.text = b"You are the agent, newer.".to_vec();
    newer.last_used = CREATED + 900;
    let session_local = Ckpt::new(chat("a session")).mainline().titled(b"A session");
    let mut session_newer = session_local.clone();
    session_newer.last_used = CREATED + 900;
    session_newer.hits = 4;
    for mode in ["newer", "replace"] {
        for include in [false, true] {
            let env = TestEnv::new();
            env.add(&local);
            env.add(&session_local);
            let b = craft_bundle(
                &env,
                "a.tar",
                &[
                    (newer.file_name(), newer.bytes()),
                    (session_newer.file_name(), session_newer.bytes()),
                ],
            );
            let mut extra = vec!["--on-conflict", mode];
            if include {
                extra.push("--include-agent");
            }
            let (code, v) = import(&env, &b, &env.cache, &extra);
            assert_eq!(code, 0, "{v:#}");
            let (action, after_sys, after_session) = if include {
                ("replaced", &newer, &session_newer)
            } else {
                ("skipped", &local, &session_local)
            };
            for e in v["entries"].as_array().unwrap() {
                assert_eq!(e["action"], action, "{mode} {include}: {v:#}");
                if !include {
                    assert!(
                        e["message"].as_str().unwrap().contains("--include-agent"),
                        "{e}"
                    );
                }
            }
            assert_eq!(
                fs::read(env.cache.join("sysprompt.kv")).unwrap(),
                after_sys.bytes()
            );
            assert_eq!(
                fs::read(env.cache.join(session_local.file_name())).unwrap(),
                after_session.bytes()
            );
        }
    }
}

#[test]
fn replacing_next_to_hanzo_engine_warns_first() {
    // hanzo-engine re-opens a file by path on a hit and writes back the
    // whole header it loaded: onto a replaced file (FORMAT.md §7).
    let hanzo = TestEnv::with_sample("hanzo");
    let files = sample_files("hanzo");
    let mut changed = files.clone();
    for (_, b) in changed.iter_mut() {
        b[12] = b[12].wrapping_add(1); // another hit count: a different copy
    }
    let b = craft_bundle(&hanzo, "h.tar", &changed);
    let dir = hanzo.cache.to_str().unwrap().to_string();
    let bs = b.to_str().unwrap().to_string();
    let (code, out, err) = run(&hanzo, &["import", &bs, "-d", &dir, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "no replacement, no warning: {err}");
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(v["engine"].as_str().unwrap().starts_with("hanzo"), "{v:#}");
    for dry in [true, false] {
        let mut args = vec!["import", &bs, "-d", &dir, "--on-conflict", "replace"];
        if dry {
            args.push("--dry-run");
        }
        let (code, _, err) = run(&hanzo, &args);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one warning line: {err}");
        assert!(
            lines[0].starts_with("kvc: warning:")
                && lines[0].contains("hanzo-engine")
                && lines[0].contains("header"),
            "{err}"
        );
    }
    for (name, bytes) in &changed {
        assert_eq!(&fs::read(hanzo.cache.join(name)).unwrap(), bytes);
    }
    // A ds4 directory: no warning.
    let ds4 = TestEnv::with_sample("mainline");
    let files = sample_files("mainline");
    let mut changed = files.clone();
    for (_, b) in changed.iter_mut() {
        b[12] = b[12].wrapping_add(1);
    }
    let b = craft_bundle(&ds4, "m.tar", &changed);
    let (code, _, err) = run(
        &ds4,
        &[
            "import",
            b.to_str().unwrap(),
            "-d",
            ds4.cache.to_str().unwrap(),
            "--on-conflict",
            "replace",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    // A ds4 directory where hanzo-engine left a temp file: warned too.
    ds4.add_raw(&format!("{}.4242-0.kv.tmp", "a".repeat(40)), b"partial");
    for (_, b) in changed.iter_mut() {
        b[12] = b[12].wrapping_add(1);
    }
    let b = craft_bundle(&ds4, "m2.tar", &changed);
    let (code, _, err) = run(
        &ds4,
        &[
            "import",
            b.to_str().unwrap(),
            "-d",
            ds4.cache.to_str().unwrap(),
            "--on-conflict",
            "replace",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("hanzo-engine left files here too"), "{err}");
}

#[test]
fn every_dialect_kvc_reads_round_trips_with_its_name_in_the_record() {
    let env = TestEnv::new();
    let d1 = Ckpt::new(chat("before the ABI byte"));
    let d3 = Ckpt::new(chat("mainline")).mainline();
    let d4 = Ckpt::new(chat("pulsar's sys-prefix")).mainline().reason(7);
    let mut d5 = Ckpt::new(chat("spark three")).opaque_payload(90);
    d5.payload_abi = 3;
    let mut d6 = Ckpt::new(chat("spark four")).opaque_payload(90);
    d6.payload_abi = 4;
    let mut d11 = Ckpt::new(chat("fingerprinted")).mainline();
    d11.reserved = [0x12, 0x34, 0x56];
    // hanzo-engine's prefix spill: quant 0, ctx 0, token ids as text,
    // zero tokens allowed, ext bit 3 meaningless (so the text names it).
    let mut d20 = Ckpt::new(vec![1, 0, 0, 0, 2, 0, 0, 0]).opaque_payload(33);
    d20.quant_bits = 0;
    d20.ctx_size = 0;
    d20.tokens = 0;
    d20.reason = REASON_EVICT;
    d20.ext_flags = 8;
    let all = [
        (&d1, "D1"),
        (&d3, "D3"),
        (&d4, "D4"),
        (&d5, "D5"),
        (&d6, "D6"),
        (&d11, "D11"),
        (&d20, "D20"),
    ];
    for (c, _) in &all {
        env.add(c);
    }
    let bundle = env.root.path().join("d.tar");
    let (code, out, err) = run(
        &env,
        &[
            "export",
            "--all",
            "--json",
            "-o",
            bundle.to_str().unwrap(),
            "-d",
            env.cache.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_slice(&out).unwrap();
    for (c, want) in &all {
        let rec = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["file"] == c.file_name())
            .unwrap_or_else(|| panic!("{want} not exported: {v:#}"));
        assert_eq!(rec["dialect"], *want);
    }
    // The target infers ds4 from nothing, yet the spill's quant 0 and
    // ctx 0 say hanzo-engine: each file is installed as what it is.
    let target = env.root.path().join("t");
    let (code, v) = import(&env, &bundle, &target, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["counts"]["installed"], all.len(), "{v:#}");
    for (c, _) in &all {
        assert_eq!(fs::read(target.join(c.file_name())).unwrap(), c.bytes());
    }
}

/// The human report ends in one line counting each outcome (the line
/// `kvc pull` shares): a first import installs everything, a second finds
/// it all present, a dry run says so; `--budget` adds its own line.
#[test]
fn import_counts_each_outcome_in_its_summary_line() {
    let env = TestEnv::new();
    let set = sample_set();
    for c in &set {
        env.add(c);
    }
    let bundle = env.export_to("b.tar", &["--all"]);
    let target = env.root.path().join("target");
    let human = |extra: &[&str]| {
        let mut args = vec![
            "import",
            bundle.to_str().unwrap(),
            "--dir",
            target.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&env, &args);
        assert_eq!(code, 0, "{err}");
        String::from_utf8(out).unwrap()
    };
    let n = set.len();
    let dry = human(&["--dry-run"]);
    assert!(
        dry.contains(&format!(
            "dry run, nothing written: {n} installed, 0 replaced, 0 present, 0 skipped, 0 rejected; "
        )),
        "{dry}"
    );
    let first = human(&[]);
    assert!(
        first.contains(&format!(
            "{n} installed, 0 replaced, 0 present, 0 skipped, 0 rejected; "
        )),
        "{first}"
    );
    let again = human(&[]);
    assert!(
        again.contains(&format!(
            "0 installed, 0 replaced, {n} present, 0 skipped, 0 rejected; "
        )),
        "{again}"
    );
    // --budget adds its line (the one `kvc pull --budget` writes too).
    let budget = human(&["--dry-run", "--budget", "1GiB"]);
    assert!(
        budget.contains("budget 1 GiB (") && budget.contains("would evict 0 checkpoints (0 B); "),
        "{budget}"
    );
}

/// Installed files are settled (directory fsync, then their journal
/// records) in groups of 256: an import of more than one group journals
/// every installed file once, in stream order, the last partial group
/// included.
#[test]
fn every_installed_file_is_journaled_across_settle_groups() {
    let env = TestEnv::new();
    let set: Vec<Ckpt> = (0..300)
        .map(|i| Ckpt::new(chat(&format!("conversation {i}"))))
        .collect();
    for c in &set {
        env.add(c);
    }
    let bundle = env.export_to("b.tar", &["--all"]);
    let target = env.root.path().join("target");
    let (code, v) = import(&env, &bundle, &target, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["counts"]["installed"], set.len());
    let log = env.json(&["log", "-r", target.to_str().unwrap(), "--json"]);
    let records = log["records"].as_array().unwrap();
    let keys: Vec<&str> = records.iter().map(|r| r["key"].as_str().unwrap()).collect();
    let mut want: Vec<String> = set.iter().map(|c| c.key()).collect();
    want.sort();
    assert_eq!(keys, want, "one record per installed file, in stream order");
    assert!(records.iter().all(|r| r["op"] == "import"), "{log:#}");
    assert_eq!(log["damaged"], 0);
}
