//! `kvc ls`, `kvc show`, `kvc cat` through the real binary.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::symlink;

fn now_arg() -> String {
    NOW.to_string()
}

fn ls_json(env: &TestEnv, extra: &[&str]) -> Value {
    let dir = env.cache.to_str().unwrap().to_string();
    let now = now_arg();
    let mut args = vec!["ls", "--json", "--now", &now, &dir];
    args.extend_from_slice(extra);
    env.json(&args)
}

fn checkpoints(v: &Value) -> &Vec<Value> {
    v["dirs"][0]["checkpoints"].as_array().unwrap()
}

fn by_key<'a>(v: &'a Value, key: &str) -> &'a Value {
    checkpoints(v)
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("no checkpoint {key} in {v:#}"))
}

#[test]
fn every_header_field_of_a_byte_built_checkpoint_is_reported() {
    let env = TestEnv::new();
    let mut c = Ckpt::new(chat("Every field")).tokens(777, 40000);
    c.quant_bits = 4;
    c.reason = REASON_SHUTDOWN;
    c.ext_flags = 0b1000_0110;
    c.model_id = 9;
    c.payload_abi = 3;
    c.hits = 5;
    c.created = CREATED - 100;
    c.last_used = CREATED + 50;
    let path = env.add(&c);
    let v = ls_json(&env, &[]);
    let j = by_key(&v, &c.key());
    assert_eq!(j["file"], c.file_name());
    assert_eq!(j["size"], fs::metadata(&path).unwrap().len());
    assert_eq!(j["reason"], "shutdown");
    assert_eq!(j["reason_code"], 4);
    assert_eq!(j["quant_bits"], 4);
    assert_eq!(j["tokens"], 777);
    assert_eq!(j["hits"], 5);
    assert_eq!(j["ctx_size"], 40000);
    assert_eq!(j["model_id"], 9);
    assert_eq!(j["payload_abi"], 3);
    assert_eq!(j["ext_flags"], 0b1000_0110);
    assert_eq!(
        j["flags"],
        serde_json::json!(["responses-visible", "thinking-visible", "bit7"])
    );
    assert_eq!(j["created"], CREATED - 100);
    assert_eq!(j["last_used"], CREATED + 50);
    assert_eq!(j["payload_bytes"], c.payload.len());
    assert_eq!(j["text_bytes"], c.text.len());
    assert_eq!(j["title"], "Every field");
    // Version 1 with payload ABI 3: a DGX Spark fork (FORMAT.md §9), whose
    // model numbers are its own.
    assert_eq!(j["dialect"], "D5");
    assert_eq!(j["model"], Value::Null);
    // Nothing in the directory names an engine, so it is read as mainline
    // ds4's, whose reader skips payload ABI 3: never loaded, never scored,
    // never ranked.
    assert_eq!(v["dirs"][0]["engine"]["how"], "default");
    assert_eq!(j["loadable"], false);
    assert_eq!(j["not_loaded"], "payload ABI 3");
    assert_eq!(j["evict_rank"], Value::Null);
    assert_eq!(j["score"], Value::Null);
    assert_eq!(j["warnings"][0]["code"], "unknown-flags");
}

#[test]
fn unknown_reasons_are_kept_as_numbers() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("odd reason")).reason(9);
    env.add(&c);
    let v = ls_json(&env, &[]);
    let j = by_key(&v, &c.key());
    assert_eq!(j["reason"], "unknown-9");
    assert_eq!(j["reason_code"], 9);
    assert_eq!(j["warnings"][0]["code"], "unknown-reason");
}

#[test]
fn sample_dialects_ds4_fork_hanzo_agent() {
    let ds4 = TestEnv::with_sample("ds4");
    let v = ls_json(&ds4, &[]);
    let d = &v["dirs"][0];
    assert_eq!(checkpoints(&v).len(), 4);
    assert_eq!(d["temp_files"][0]["pid"], 31337);
    assert_eq!(d["temp_files"][0]["writer"], "ds4-server");
    assert_eq!(d["strays"][0]["file"], "notes.txt");
    let cold = by_key(&v, "d78becaf80c3dd16ecec443553e5305b2557acb3");
    assert_eq!(cold["reason"], "cold");
    assert_eq!(cold["tokens"], 600);
    assert_eq!(cold["hits"], 3);
    assert_eq!(cold["quant_bits"], 2);
    assert_eq!(cold["ctx_size"], 32768);
    assert_eq!(
        cold["title"],
        "List the files in this repository and explain the layout."
    );
    let cont = by_key(&v, "2b5d6e1745e9bb7d85cf5c654ffe558f2481c785");
    assert_eq!(cont["flags"], serde_json::json!(["tool-map"]));
    // The longer continued checkpoint supersedes nothing; the cold one is
    // not a waypoint.
    assert_eq!(cont["superseded"], false);
    assert_eq!(cold["superseded"], false);
    let f6 = by_key(&v, "f6cc2ba7048df41f6708b6e71326b6e07b61527a");
    assert_eq!(f6["reason"], "evict");
    assert_eq!(f6["quant_bits"], 4);
    assert_eq!(f6["hits"], 12);
    assert_eq!(f6["flags"], serde_json::json!(["responses-visible"]));
    assert_eq!(
        by_key(&v, "8fd9c129ce976dcde5d42064046ab172462964ca")["reason"],
        "shutdown"
    );

    let fork = TestEnv::with_sample("fork");
    let v = ls_json(&fork, &[]);
    for c in checkpoints(&v) {
        assert_eq!(c["model_id"], 3);
        assert_eq!(c["payload_abi"], 2);
        // Payload ABI 2: mainline's dialect, with mainline's number 3.
        assert_eq!(c["dialect"], "D3");
        assert_eq!(c["model"], "laguna");
        assert_eq!(c["superseded"], false);
    }

    let hanzo = TestEnv::with_sample("hanzo");
    let v = ls_json(&hanzo, &[]);
    let ids = by_key(&v, "481583f7811c5d9e3146817c42d0643f73b0b13b");
    assert_eq!(ids["quant_bits"], 0);
    assert_eq!(ids["ctx_size"], 0);
    assert_eq!(ids["reason"], "evict");
    assert_eq!(ids["dialect"], "D20");
    assert_eq!(v["dirs"][0]["engine"]["engine"], "hanzo");
    assert_eq!(v["dirs"][0]["policy"], "lru");
    assert_eq!(ids["text_bytes"], 40);
    assert_eq!(ids["title"], Value::Null);
    assert_eq!(v["dirs"][0]["temp_files"][0]["writer"], "hanzo");
    assert_eq!(v["dirs"][0]["temp_files"][0]["pid"], 4242);

    let agent = TestEnv::with_sample("agent");
    let v = ls_json(&agent, &[]);
    let sys = by_key(&v, "sysprompt");
    assert_eq!(sys["reason"], "agent-system");
    assert_eq!(sys["agent_save"], true);
    assert_eq!(sys["evict_rank"], Value::Null);
    let session = checkpoints(&v)
        .iter()
        .find(|c| c["reason"] == "agent-session")
        .unwrap();
    assert_eq!(session["title"], "Refactor the parser into its own module.");
    assert_eq!(session["evict_rank"], Value::Null);
}

#[test]
fn broken_files_are_invalid_with_a_reason_and_never_fail_ls() {
    let env = TestEnv::with_sample("broken");
    let v = ls_json(&env, &[]);
    let invalid = v["dirs"][0]["invalid"].as_array().unwrap();
    let code = |file: &str| {
        invalid
            .iter()
            .find(|i| i["file"].as_str().unwrap().starts_with(file))
            .unwrap_or_else(|| panic!("{file} not invalid: {invalid:#?}"))["code"]
            .clone()
    };
    assert_eq!(code("47b5906b"), "bad-magic");
    // Revision 2 of FORMAT.md: version 2 is a fork envelope. One that
    // matches no known version-2 dialect is foreign, never corrupt.
    let foreign = v["dirs"][0]["foreign"].as_array().unwrap();
    assert_eq!(foreign.len(), 1);
    assert!(foreign[0]["file"].as_str().unwrap().starts_with("c0b096f7"));
    assert_eq!(foreign[0]["version"], 2);
    assert_eq!(code("2b372283"), "truncated");
    assert_eq!(code("a76c338c"), "text-length");
    assert_eq!(code("da39a3ee"), "empty");
    assert_eq!(code("be102741"), "zero-tokens");
    assert_eq!(invalid.len(), 5);
    // A name that is not its text's SHA-1 is a checkpoint the engine
    // counts, flagged (as evict and stats count it), not invalid.
    let wrong = by_key(&v, "de360656b2b6dab0b87eb45fb04d54c8cc152dbe");
    assert_eq!(
        wrong["content_key"],
        "5362278f80db16812f497b98c44045573d0bc0cb"
    );
    assert_eq!(wrong["loadable"], true);
    for i in invalid {
        assert!(!i["error"].as_str().unwrap().is_empty());
    }
    // quant 3 is listed, flagged with a warning; the other defects need
    // `kvc verify` (trailer, payload, modes).
    let q3 = by_key(&v, "fd659e3cce46f4ff29702c0ac8cae092e7342da6");
    assert_eq!(q3["warnings"][0]["code"], "bad-quant");
    assert_eq!(checkpoints(&v).len(), 8);

    env.kvc()
        .args(["ls", "--now", &now_arg()])
        .arg(&env.cache)
        .assert()
        .success()
        .stdout(predicate::str::contains("5 invalid"))
        .stdout(predicate::str::contains("1 with errors, 1 with warnings"))
        .stdout(predicate::str::contains("hint: run `kvc verify"));
}

#[test]
fn no_escape_byte_from_a_text_reaches_the_table() {
    let env = TestEnv::with_sample("broken");
    let evil = Ckpt::new(chat("\x1b]0;pwned\x07 \x1b[2J\u{9b}31m \u{202e}evil"));
    env.add(&evil);
    for args in [vec!["ls"], vec!["ls", "--json"], vec!["ls", "-l"]] {
        let out = env.kvc().args(&args).arg(&env.cache).output().unwrap();
        assert!(out.status.success());
        assert!(!out.stdout.contains(&0x1b), "ESC in {args:?}");
        assert!(!out.stdout.contains(&0x07), "BEL in {args:?}");
        let s = String::from_utf8(out.stdout).unwrap();
        assert!(!s.contains('\u{9b}') && !s.contains('\u{202e}'));
    }
    let out = env.kvc().args(["ls"]).arg(&env.cache).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("\\e]0;pwned\\x07"), "{s}");
    for args in [vec!["show", "--text"], vec!["show", "--text", "--json"]] {
        let out = env
            .kvc()
            .args(&args)
            .arg(env.cache.join(evil.file_name()))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(!out.stdout.contains(&0x1b));
    }
}

#[test]
fn titles_fold_white_space_and_cut_at_70_bytes() {
    let env = TestEnv::new();
    let long = Ckpt::new(chat(&format!("  many\n\n  words {}", "x".repeat(100))));
    env.add(&long);
    let v = ls_json(&env, &[]);
    let t = by_key(&v, &long.key())["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(t.starts_with("many words xxx"));
    assert_eq!(t.len(), 73);
    assert!(t.ends_with("..."));
}

#[test]
fn no_title_reads_no_text() {
    let env = TestEnv::new();
    // A file whose name is not its text's SHA-1: only reading the text
    // can tell, so only without `--no-title` is it flagged; a checkpoint
    // both ways (the engine counts it either way).
    let mut c = Ckpt::new(chat("mislabelled"));
    c.name = Some(format!("{}.kv", "ab".repeat(20)));
    env.add(&c);
    let with = ls_json(&env, &[]);
    assert_eq!(checkpoints(&with).len(), 1);
    assert_eq!(checkpoints(&with)[0]["content_key"], c.key());
    let without = ls_json(&env, &["--no-title"]);
    assert_eq!(checkpoints(&without).len(), 1);
    assert_eq!(checkpoints(&without)[0]["title"], Value::Null);
    assert_eq!(checkpoints(&without)[0]["content_key"], Value::Null);
}

#[test]
fn ranks_follow_the_policy_and_sort_options() {
    let env = TestEnv::new();
    // Same size and tokens; hits decide under ds4-classic.
    let a = Ckpt::new(chat("aaaa")).hits(0, NOW - 10);
    let b = Ckpt::new(chat("bbbb")).hits(4, NOW - 10);
    let c = Ckpt::new(chat("cccc")).hits(1, NOW - 5000);
    for x in [&a, &b, &c] {
        env.add(x);
    }
    let v = ls_json(&env, &["--policy", "ds4-classic"]);
    let keys: Vec<_> = checkpoints(&v).iter().map(|c| c["key"].clone()).collect();
    assert_eq!(keys, [a.key(), c.key(), b.key()]);
    let ranks: Vec<_> = checkpoints(&v)
        .iter()
        .map(|c| c["evict_rank"].clone())
        .collect();
    assert_eq!(ranks, [1, 2, 3]);
    let v = ls_json(&env, &["--policy", "lru"]);
    assert_eq!(by_key(&v, &c.key())["evict_rank"], 1);
    assert_eq!(by_key(&v, &c.key())["score"], Value::Null);
    let v = ls_json(&env, &["--sort", "hits"]);
    assert_eq!(checkpoints(&v)[0]["key"], b.key());
    let v = ls_json(&env, &["--sort", "hits", "--reverse"]);
    assert_eq!(checkpoints(&v)[0]["key"], a.key());
}

#[test]
fn superseded_waypoints_are_marked_under_ds4() {
    let env = TestEnv::new();
    let short = Ckpt::new(chat("step")).reason(REASON_CONTINUED).mainline();
    let mut longer_text = short.text.clone();
    longer_text.extend_from_slice(b" and more turns");
    let long = Ckpt::new(longer_text)
        .reason(REASON_CONTINUED)
        .tokens(900, 32768)
        .mainline();
    env.add(&short);
    env.add(&long);
    for extra in [&[][..], &["--no-title"][..]] {
        let v = ls_json(&env, extra);
        assert_eq!(by_key(&v, &short.key())["superseded"], true, "{extra:?}");
        assert_eq!(by_key(&v, &long.key())["superseded"], false);
    }
    let v = ls_json(&env, &["--policy", "ds4-classic"]);
    assert_eq!(by_key(&v, &short.key())["superseded"], false);
}

#[test]
fn several_dirs_then_a_grand_total() {
    let a = TestEnv::with_sample("ds4");
    let b = TestEnv::with_sample("fork");
    let out = a
        .kvc()
        .args(["ls", "--json"])
        .arg(&a.cache)
        .arg(&b.cache)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dirs = v["dirs"].as_array().unwrap();
    assert_eq!(dirs.len(), 2);
    let sum: u64 = dirs
        .iter()
        .map(|d| d["total_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(v["total_bytes"], sum);
    a.kvc()
        .arg("ls")
        .arg(&a.cache)
        .arg(&b.cache)
        .assert()
        .success()
        .stdout(predicate::str::contains("total: "));
}

#[test]
fn default_dir_comes_from_env_then_agent_home() {
    let env = TestEnv::with_sample("fork");
    env.kvc()
        .args(["ls", "--json"])
        .env("KVC_DIR", &env.cache)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2a2dd34c0910f0c4de85b28934d4d5ebe16f0660",
        ));
    env.kvc()
        .arg("ls")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no cache directory given"));
    let agent = env.root.path().join("home/.ds4/kvcache");
    fs::create_dir_all(&agent).unwrap();
    fs::copy(
        env!("CARGO_MANIFEST_DIR").to_string() + "/tests/fixtures/agent/sysprompt.kv",
        agent.join("sysprompt.kv"),
    )
    .unwrap();
    env.kvc()
        .args(["ls", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"sysprompt\""));
}

#[test]
fn missing_dir_is_one_line_and_exit_2() {
    let env = TestEnv::new();
    let out = env
        .kvc()
        .args(["ls", "/nonexistent/kvc-dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/kvc-dir"));
}

#[test]
fn symlinks_are_not_followed_and_upper_case_names_are_read() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("linked"));
    let real = env.root.path().join("elsewhere.kv");
    fs::write(&real, c.bytes()).unwrap();
    symlink(&real, env.cache.join(c.file_name())).unwrap();
    let mut upper = Ckpt::new(chat("upper"));
    upper.name = Some(format!("{}.kv", upper.key().to_uppercase()));
    env.add(&upper);
    let v = ls_json(&env, &[]);
    assert_eq!(v["dirs"][0]["invalid"][0]["code"], "symlink");
    assert_eq!(checkpoints(&v).len(), 1);
    assert_eq!(checkpoints(&v)[0]["key"], upper.key());
}

#[test]
fn keys_resolve_by_unique_prefix_and_ambiguity_lists_candidates() {
    let env = TestEnv::new();
    // Find two texts whose keys share a 4-digit prefix.
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0..)
        .find_map(|i| {
            let c = Ckpt::new(chat(&format!("prompt {i}")));
            let p = c.key()[..4].to_string();
            seen.insert(p.clone(), c.clone()).map(|old| (old, c))
        })
        .unwrap();
    env.add(&a);
    env.add(&b);
    let prefix = &a.key()[..4];
    env.kvc()
        .args(["show", prefix, "--dir"])
        .arg(&env.cache)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ambiguous"))
        .stderr(predicate::str::contains(a.key()))
        .stderr(predicate::str::contains(b.key()));
    let unique = &a.key()[..12];
    let out = env
        .kvc()
        .args(["show", "--json", unique, "--dir"])
        .arg(&env.cache)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key"], a.key());
    env.kvc()
        .args(["show", "ffffffffff", "--dir"])
        .arg(&env.cache)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no checkpoint with key"));
    env.kvc()
        .args(["show", "abc", "--dir"])
        .arg(&env.cache)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("at least 4 hex digits"));
    // Upper-case prefixes work like ds4's upper-case names.
    env.kvc()
        .args(["cat", &a.key()[..10].to_uppercase(), "--dir"])
        .arg(&env.cache)
        .assert()
        .success()
        .stdout(predicate::eq(a.text.clone()));
}

#[test]
fn show_reports_trailer_payload_and_inconsistencies() {
    let env = TestEnv::with_sample("ds4");
    let v = env.json(&[
        "show",
        "--json",
        "2b5d6e17",
        "--dir",
        env.cache.to_str().unwrap(),
    ]);
    assert_eq!(v["trailer"]["entries"][0]["id"], "call_5f2a9c7e01");
    assert_eq!(v["trailer"]["entries"][0]["in_text"], true);
    assert_eq!(v["payload"]["kind"], "dsv4");
    assert_eq!(v["payload"]["dsv4"]["tokens"], 2048);
    assert_eq!(v["payload"]["exact_size"], v["payload_bytes"]);
    assert_eq!(v["notes"], serde_json::json!([]));
    let opaque = env.json(&[
        "show",
        "--json",
        "8fd9",
        "--dir",
        env.cache.to_str().unwrap(),
    ]);
    assert_eq!(opaque["payload"]["kind"], "opaque");

    let broken = TestEnv::with_sample("broken");
    // Each broken file's defect appears as a finding with its verify code,
    // and its message as a note.
    // A file with errors is shown, and show exits 1 as verify would
    // (0 for warnings only).
    let shows = |file: &str, code: &str, words: &str| {
        let out = broken
            .kvc()
            .args(["show", "--json"])
            .arg(broken.cache.join(file))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let error = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "error");
        assert_eq!(out.status.code(), Some(i32::from(error)), "{file}");
        let found = v["findings"].as_array().unwrap();
        let f = found
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("{file}: no {code} in {found:#?}"));
        let message = f["message"].as_str().unwrap();
        assert!(message.contains(words), "{file}: {message}");
        assert!(v["notes"].as_array().unwrap().iter().any(|n| n == message));
    };
    shows(
        "4772db655bb7593f8c3b5b6652d2e0cee3a4720c.kv",
        "payload-mismatch",
        "500 tokens",
    );
    shows(
        "0191b4b1408315524d06410019015517869ca16a.kv",
        "bad-trailer",
        "not \"KTM\"",
    );
    shows(
        "c8cac2ea4ed31c966fdd7d7d9e28f462b4a05b1f.kv",
        "trailer-dsml-missing",
        "not in the text",
    );
    shows(
        "de360656b2b6dab0b87eb45fb04d54c8cc152dbe.kv",
        "key-mismatch",
        "not the file name",
    );
    shows(
        "a76c338c4038ceb0379a8d824fb1baeb910f70a5.kv",
        "text-length",
        "runs past the end",
    );
    broken
        .kvc()
        .arg("show")
        .arg(
            broken
                .cache
                .join("da39a3ee5e6b4b0d3255bfef95601890afd80709.kv"),
        )
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty file"));
    // Without the magic there is no table to show: one line, exit 2.
    let out = broken
        .kvc()
        .arg("show")
        .arg(
            broken
                .cache
                .join("47b5906baf7485e2fb31be89a5425e145ea6a137.kv"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a kvc checkpoint: bad magic"), "{err}");
}

#[test]
fn cat_writes_the_exact_text_bytes_to_a_pipe() {
    let env = TestEnv::new();
    let c = Ckpt::new(b"raw \x1b[31m bytes \xff\xfe".to_vec());
    env.add(&c);
    env.kvc()
        .args(["cat", &c.key()[..8], "--dir"])
        .arg(&env.cache)
        .assert()
        .success()
        .stdout(predicate::eq(c.text.clone()));
    env.kvc()
        .arg("cat")
        .arg(
            env.cache
                .join("0000000000000000000000000000000000000000.kv"),
        )
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "0000000000000000000000000000000000000000.kv",
        ));
}

#[test]
fn read_commands_change_no_byte_and_no_mtime() {
    let env = TestEnv::with_sample("broken");
    for s in ["ds4", "agent"] {
        let src = TestEnv::with_sample(s);
        for e in fs::read_dir(&src.cache).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), env.cache.join(e.file_name())).unwrap();
        }
    }
    let before = env.snapshot();
    let dir = env.cache.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["ls", dir],
        vec!["ls", "--json", "-l", dir],
        vec!["ls", "--no-title", dir],
        vec!["show", "--text", "2b5d", "--dir", dir],
        vec!["show", "--json", "sysprompt", "--dir", dir],
        vec!["cat", "d78b", "--dir", dir],
    ];
    for args in runs {
        env.kvc().args(&args).assert().success();
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.cache.join(".kvc").exists());
}

#[test]
fn cat_refuses_a_terminal_unless_forced() {
    // `script` (util-linux) runs kvc with a pseudo-terminal as stdout.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let env = TestEnv::new();
    let c = Ckpt::new(chat("secret \x1b[2J prompt"));
    env.add(&c);
    let kvc = assert_cmd::cargo::cargo_bin("kvc");
    let run = |force: &str| {
        let cmd = format!(
            "{} cat {} {force} --dir {}",
            kvc.display(),
            &c.key()[..8],
            env.cache.display()
        );
        std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap()
    };
    let refused = run("");
    assert_eq!(refused.status.code(), Some(2));
    let shown = String::from_utf8_lossy(&refused.stdout).to_string();
    assert!(
        shown.contains("refusing to write raw prompt text to a terminal"),
        "{shown}"
    );
    assert!(!refused.stdout.windows(4).any(|w| w == b"\x1b[2J"));
    let forced = run("--force");
    assert_eq!(forced.status.code(), Some(0));
    assert!(forced.stdout.windows(4).any(|w| w == b"\x1b[2J"));
}

/// A header may hold any u64: times past 9999-12-31 (where RFC 3339 and
/// humantime end) are shown as numbers, never a panic (exit 101).
#[test]
fn regression_timestamps_past_year_9999_do_not_panic() {
    let env = TestEnv::new();
    let far = 1_000_000_000_000u64;
    let c = Ckpt::new(chat("the far future")).hits(1, far);
    let mut c = c;
    c.created = far;
    env.add(&c);
    let dir = env.cache.to_str().unwrap();
    let out = env.kvc().args(["ls", "-l", dir]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1000000000000 (past year 9999)"));
    let out = env
        .kvc()
        .args(["show", "--dir", dir, &c.key()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // A journal record from the far future (a crafted or corrupt journal).
    let state = env.cache.join(".kvc");
    fs::create_dir(&state).unwrap();
    let json = format!(
        r#"{{"time":{far},"op":"rm","key":"{}","bytes":1,"why":"requested"}}"#,
        c.key()
    );
    let line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
    fs::write(state.join("journal"), line).unwrap();
    // The table shows ages; -l the absolute time.
    let out = env.kvc().args(["log", dir]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = env.kvc().args(["log", "-l", dir]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("past year 9999"));
}

/// `show` and `cat` found a key in the cache and opened it blindly: a FIFO
/// named `<key>.kv` hung them, a symlink led out of the cache.
#[test]
fn regression_show_and_cat_never_block_on_a_fifo_or_follow_a_link_in_the_cache() {
    let env = TestEnv::new();
    let outside = env.root.path().join("outside.kv");
    let c = Ckpt::new(chat("outside the cache"));
    fs::write(&outside, c.bytes()).unwrap();
    let linked = env.cache.join(c.file_name());
    symlink(&outside, &linked).unwrap();
    let fifo_key = sha1_hex(b"a fifo");
    let fifo = env.cache.join(format!("{fifo_key}.kv"));
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let dir = env.cache.to_str().unwrap();
    for (cmd, key) in [
        ("show", c.key()),
        ("cat", c.key()),
        ("show", fifo_key.clone()),
        ("cat", fifo_key.clone()),
    ] {
        let out = env
            .kvc()
            .args([cmd, "--dir", dir, &key])
            .timeout(std::time::Duration::from_secs(10))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd} {key}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("symbolic link") || err.contains("not a regular file"),
            "{cmd} {key}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // Typed as a path, the user's symlink is followed as they typed it.
    let out = env
        .kvc()
        .args(["cat", linked.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, c.text);
}

/// The OS error was printed twice ("No such file or directory (os error 2):
/// No such file or directory (os error 2)"): every error is one line, the
/// OS text once.
#[test]
fn regression_an_os_error_is_printed_once() {
    let env = TestEnv::new();
    let missing = env.root.path().join("missing");
    let out = env
        .kvc()
        .args(["ls", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
}

/// Rows were as wide as their content whatever the terminal (174 columns).
/// With a width (`$COLUMNS`, or the terminal's), titles give way first and
/// then the least useful columns; a pipe without one gets whole rows.
#[test]
fn tables_fit_the_width_titles_first() {
    let env = TestEnv::with_sample("mainline");
    let dir = env.cache.to_str().unwrap().to_string();
    let now = NOW.to_string();
    let run = |columns: Option<&str>| {
        let mut c = env.kvc();
        if let Some(w) = columns {
            c.env("COLUMNS", w);
        }
        let out = c.args(["ls", "--now", &now, &dir]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let whole = run(None);
    assert!(whole.contains("Which tests are flaky on main?"), "{whole}");
    for width in [80usize, 100, 120] {
        let out = run(Some(&width.to_string()));
        let table: Vec<&str> = out.lines().take_while(|l| l.starts_with(' ')).collect();
        assert!(table.len() > 1, "{out}");
        for line in &table {
            assert!(line.chars().count() <= width, "{width}: {line:?}");
        }
        assert!(
            table[0].contains("TITLE") && table[0].contains("RANK"),
            "{out}"
        );
        assert!(
            out.contains('…'),
            "{width}: titles are cut, not wrapped: {out}"
        );
    }
    // At 80 columns the context and quant columns give way; at 120 they fit.
    assert!(!run(Some("80")).lines().next().unwrap().contains("CTX"));
    assert!(run(Some("120")).lines().next().unwrap().contains("CTX"));
}

/// SCORE was printed as 4.621e-2 with no scale: now per MiB on disk, in
/// fixed notation with a k/M suffix (JSON keeps the raw score).
#[test]
fn scores_are_readable_per_mib() {
    let env = TestEnv::with_sample("mainline");
    let dir = env.cache.to_str().unwrap().to_string();
    let out = env
        .kvc()
        .args(["ls", "--now", &NOW.to_string(), &dir])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v = ls_json(&env, &[]);
    for c in checkpoints(&v) {
        let Some(raw) = c["score"].as_f64() else {
            continue;
        };
        let per_mib = raw * 1048576.0;
        let key = &c["key"].as_str().unwrap()[..12];
        let row = text.lines().find(|l| l.contains(key)).unwrap();
        assert!(!row.contains("e-"), "{row}");
        let shown = if per_mib >= 1000.0 {
            format!("{:.1}k", per_mib / 1000.0)
        } else {
            format!("{per_mib:.0}")
        };
        assert!(
            row.contains(&shown) || per_mib >= 100_000.0,
            "{row} lacks {shown}"
        );
    }
}

/// `kvc ls some.kv` said only "Not a directory": it lists that file,
/// ranked among its directory's checkpoints. `--dir` is accepted as DIR is,
/// and `-q` prints keys only, for pipes.
#[test]
fn ls_takes_a_file_dir_flag_and_quiet_keys() {
    let env = TestEnv::with_sample("mainline");
    let dir = env.cache.to_str().unwrap().to_string();
    let now = NOW.to_string();
    let all = ls_json(&env, &[]);
    let file = env
        .cache
        .join("9895f6413104de4c0115a6650c07f5232dd6ed22.kv");
    let one = env.json(&["ls", "--json", "--now", &now, file.to_str().unwrap()]);
    let rows = one["dirs"][0]["checkpoints"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], "9895f6413104de4c0115a6650c07f5232dd6ed22");
    // Its rank is its rank in the whole directory.
    assert_eq!(
        rows[0]["evict_rank"],
        by_key(&all, "9895f6413104de4c0115a6650c07f5232dd6ed22")["evict_rank"]
    );
    assert_eq!(
        one["dirs"][0]["checkpoint_bytes"],
        fs::metadata(&file).unwrap().len()
    );
    let flag = env.json(&["ls", "--json", "--now", &now, "--dir", &dir]);
    assert_eq!(
        flag["dirs"][0]["checkpoints"],
        all["dirs"][0]["checkpoints"]
    );
    let out = env
        .kvc()
        .args(["ls", "-q", "--now", &now, &dir])
        .output()
        .unwrap();
    let keys: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let want: Vec<String> = checkpoints(&all)
        .iter()
        .map(|c| c["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, want);
}

/// `show` says when a file is superseded, and why.
#[test]
fn show_explains_a_superseded_waypoint() {
    let env = TestEnv::new();
    let short = Ckpt::new(chat("step one"))
        .reason(REASON_CONTINUED)
        .mainline();
    let mut longer = short.text.clone();
    longer.extend_from_slice(b" and step two");
    let long = Ckpt::new(longer).reason(REASON_CONTINUED).mainline();
    env.add(&short);
    env.add(&long);
    let dir = env.cache.to_str().unwrap();
    let v = env.json(&[
        "show",
        "--json",
        "--now",
        &NOW.to_string(),
        "--dir",
        dir,
        &short.key(),
    ]);
    assert_eq!(v["superseded"], true);
    let note = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n.as_str().unwrap().starts_with("superseded waypoint"))
        .unwrap_or_else(|| panic!("{v:#}"));
    assert!(note.as_str().unwrap().contains("kvc's extension"));
    let v = env.json(&[
        "show",
        "--json",
        "--now",
        &NOW.to_string(),
        "--dir",
        dir,
        &long.key(),
    ]);
    assert_eq!(v["superseded"], false);
    assert!(!v["notes"].to_string().contains("superseded waypoint"));
}

/// Large listings are rendered in chunks (memory stays at one chunk of
/// rows); the columns must still line up as one table: widths come from all
/// rows, not from the chunk.
#[test]
fn a_listing_in_chunks_lines_up_as_one_table() {
    let env = TestEnv::new();
    let mut all: Vec<Ckpt> = (0..1500)
        .map(|i| Ckpt::new(chat(&format!("question {i:04}"))).opaque_payload(8))
        .collect();
    all.sort_by_key(|c| c.key());
    // The widest REASON belongs to the last row in key order only: laid
    // out per chunk, the first chunk's columns would be narrower.
    let last = all.pop().unwrap().reason(REASON_AGENT_SESSION);
    for c in all.iter().chain([&last]) {
        env.add(c);
    }
    let dir = env.cache.to_str().unwrap();
    let out = env
        .kvc()
        .args(["ls", "--sort", "key", "--now", &NOW.to_string(), dir])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = text.lines().take_while(|l| l.starts_with(' ')).collect();
    assert_eq!(table.len(), 1501);
    assert!(table[1500].contains("agent-session"));
    // Every row's TOKENS column (right-aligned) ends where the header's does.
    let end = table[0].find("TOKENS").unwrap() + "TOKENS".len();
    for line in &table[1..] {
        let at: Vec<char> = line.chars().collect();
        assert!(
            at[end - 1].is_ascii_digit() && at[end] == ' ',
            "misaligned: {line:?}"
        );
    }
}
