//! `kvc rm KEY...` and `kvc log`.

mod common;

use common::*;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

fn records(env: &TestEnv, extra: &[&str]) -> serde_json::Value {
    // Oldest first (-r): the order the tests wrote them in.
    let mut args = vec!["log", "-r", env.cache.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    env.json(&args)
}

#[test]
fn rm_removes_by_prefix_full_key_and_path_and_journals_it() {
    let env = TestEnv::with_sample("ds4");
    let cold = env
        .cache
        .join("d78becaf80c3dd16ecec443553e5305b2557acb3.kv");
    let evict = env
        .cache
        .join("f6cc2ba7048df41f6708b6e71326b6e07b61527a.kv");
    let shutdown = env
        .cache
        .join("8fd9c129ce976dcde5d42064046ab172462964ca.kv");
    let size = fs::metadata(&cold).unwrap().len();
    let r = env.json(&[
        "rm",
        "--dir",
        env.cache.to_str().unwrap(),
        "--json",
        "d78b",
        "f6cc2ba7048df41f6708b6e71326b6e07b61527a",
        shutdown.to_str().unwrap(),
        // Named twice: removed once.
        "d78becaf",
    ]);
    assert_eq!(r["checkpoints"].as_array().unwrap().len(), 3);
    assert!(r["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["outcome"] == "removed"));
    assert!(!cold.exists() && !evict.exists() && !shutdown.exists());
    let log = records(&env, &[]);
    let r0 = &log["records"][0];
    assert_eq!(r0["op"], "rm");
    assert_eq!(r0["key"], "d78becaf80c3dd16ecec443553e5305b2557acb3");
    assert_eq!(r0["bytes"], size);
    assert_eq!(r0["reason"], "cold");
    assert_eq!(r0["hits"], 3);
    assert_eq!(r0["why"], "requested");
    assert_eq!(log["records"].as_array().unwrap().len(), 3);
}

#[test]
fn rm_dry_run_changes_nothing() {
    let env = TestEnv::with_sample("ds4");
    let before = env.snapshot();
    let r = env.json(&[
        "rm",
        "-d",
        env.cache.to_str().unwrap(),
        "--dry-run",
        "--json",
        "2b5d",
    ]);
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["checkpoints"][0]["outcome"], "planned");
    assert_eq!(r["checkpoints"][0]["reason"], "continued");
    assert_eq!(env.snapshot(), before);
    assert!(!env.cache.join(".kvc").exists());
}

#[test]
fn rm_resolves_every_key_before_removing_any() {
    let env = TestEnv::with_sample("ds4");
    let before = env.snapshot();
    let out = env
        .kvc()
        .args(["rm", "-d", env.cache.to_str().unwrap(), "d78b", "0000aaaa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0000aaaa"), "{err}");
    assert_eq!(env.snapshot(), before);
    // Not a checkpoint name: refused, even as a path.
    let notes = env.cache.join("notes.txt");
    let out = env
        .kvc()
        .args(["rm", notes.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a checkpoint name"), "{err}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn rm_needs_include_agent_for_agent_saves() {
    let env = TestEnv::with_sample("agent");
    let before = env.snapshot();
    for key in ["sysprompt", "4e71"] {
        let out = env
            .kvc()
            .args(["rm", "-d", env.cache.to_str().unwrap(), key])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--include-agent"));
    }
    assert_eq!(env.snapshot(), before);
    env.kvc()
        .args([
            "rm",
            "-q",
            "--include-agent",
            "-d",
            env.cache.to_str().unwrap(),
            "sysprompt",
            "4e71",
        ])
        .assert()
        .success()
        .stdout("");
    assert!(!env.cache.join("sysprompt.kv").exists());
}

#[test]
fn rm_removes_a_corrupt_file_only_when_named_and_says_so() {
    let env = TestEnv::new();
    let mut bad = Ckpt::new(chat("cut short"));
    bad.payload_bytes = Some(bad.payload.len() as u64 + 100);
    let p = env.add(&bad);
    // evict leaves it alone...
    env.kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["--yes", "--budget", "1B"])
        .assert()
        .success();
    assert!(p.exists());
    // ...rm removes it when asked by name.
    let r = env.json(&[
        "rm",
        "-d",
        env.cache.to_str().unwrap(),
        "--json",
        &bad.key()[..8],
    ]);
    assert_eq!(r["checkpoints"][0]["invalid"], "truncated");
    assert!(!p.exists());
    let log = records(&env, &[]);
    assert_eq!(log["records"][0]["why"], "requested (invalid: truncated)");
}

/// One journal line framed by hand: `<crc32 hex> <json>\n`.
fn journal_line(json: &str) -> String {
    format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()))
}

#[test]
fn log_since_filters_and_damaged_lines_are_counted() {
    let env = TestEnv::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rec = |time: u64, key: &str| {
        journal_line(&format!(
            r#"{{"time":{time},"op":"evict","key":"{key}","bytes":10,"tokens":5,"hits":1,"reason":"cold","score":0.5,"policy":"ds4","why":"budget"}}"#
        ))
    };
    let mut j = String::new();
    j += &rec(now - 3 * 86_400, "old");
    // A record whose checksum fails (flipped digit in the JSON).
    j += &rec(now - 2 * 86_400, "corrupt").replace("\"bytes\":10", "\"bytes\":11");
    j += &rec(now - 3600, "recent");
    // A key with an escape sequence: shown escaped, never raw.
    j += &rec(now - 60, "evil\\u001b[2J");
    fs::create_dir(env.cache.join(".kvc")).unwrap();
    fs::write(env.cache.join(".kvc/journal"), j).unwrap();

    let all = records(&env, &[]);
    assert_eq!(all["records"].as_array().unwrap().len(), 3);
    assert_eq!(all["damaged"], 1);
    let recent = records(&env, &["--since", "1d"]);
    let keys: Vec<_> = recent["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["recent", "evil\\e[2J"]);

    let out = env.kvc().arg("log").arg(&env.cache).output().unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.contains(&0x1b));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 damaged record skipped"), "{text}");

    // A directory without a journal has an empty log; no directory is an error.
    let empty = TestEnv::new();
    let r = records(&empty, &[]);
    assert_eq!(r["records"].as_array().unwrap().len(), 0);
    assert!(!empty.cache.join(".kvc").exists());
    empty
        .kvc()
        .args(["log", "/nonexistent/kvc-dir"])
        .assert()
        .code(2);
}

#[test]
fn regression_rm_of_a_bare_file_name_in_the_current_directory_removes_and_journals_it() {
    // `kvc rm <key>.kv` run inside the cache: the path has an empty parent.
    // The unlink succeeded, then syncing the directory "" failed, so the file
    // was gone but reported as failed (exit 2) and never journaled.
    let env = TestEnv::with_sample("ds4");
    let name = "d78becaf80c3dd16ecec443553e5305b2557acb3.kv";
    let out = env
        .kvc()
        .current_dir(&env.cache)
        .args(["rm", "--json", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["checkpoints"][0]["outcome"], "removed");
    assert!(!env.cache.join(name).exists());
    let log = records(&env, &[]);
    assert_eq!(log["records"].as_array().unwrap().len(), 1);
    assert_eq!(log["records"][0]["key"], &name[..40]);
}

#[test]
fn regression_rm_of_a_bare_file_name_with_dir_removes_it_in_that_dir() {
    // `kvc rm <key>.kv --dir CACHE` removed ./<key>.kv of the current
    // directory instead: --dir wins for a bare name.
    let env = TestEnv::with_sample("ds4");
    let name = "d78becaf80c3dd16ecec443553e5305b2557acb3.kv";
    let decoy = env.root.path().join(name);
    fs::copy(env.cache.join(name), &decoy).unwrap();
    let out = env
        .kvc()
        .args(["rm", "--json", "--dir", env.cache.to_str().unwrap(), name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !env.cache.join(name).exists(),
        "the cache's copy is removed"
    );
    assert!(decoy.exists(), "the current directory's file is untouched");
}
