//! Issue 13, operator experience: one argument convention, findings that
//! help, one model of a checkpoint, safe destructive defaults, output
//! people read, and completions. Every test runs the real binary.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

fn now() -> String {
    NOW.to_string()
}

/// A cache of healthy checkpoints, one with a tool-id map whose DSML block
/// is in its text, in a directory named so that nothing finds it unless
/// it is given.
fn small_cache() -> (TestEnv, Vec<Ckpt>) {
    let env = TestEnv::new();
    let dsml = b"<tool>search</tool>";
    let mut text = chat("with a tool");
    text.extend_from_slice(dsml);
    let cps = vec![
        Ckpt::new(chat("first")).mainline().hits(2, NOW - 600),
        Ckpt::new(chat("second")).mainline().hits(0, NOW - 7200),
        Ckpt::new(text)
            .mainline()
            .with_tool_map(&[(b"call_1", dsml)]),
    ];
    for c in &cps {
        env.add(c);
    }
    (env, cps)
}

/// Run `kvc ARGS` with the directory in place of `{}`: once as the
/// positional DIR, once as `--dir DIR`; both must succeed (or fail)
/// alike and print the same.
fn same_both_ways(env: &TestEnv, args: &[&str], ok: bool) {
    let dir = env.cache_str();
    let run = |as_flag: bool| {
        let mut cmd = env.kvc();
        for a in args {
            if *a == "{}" {
                if as_flag {
                    cmd.args(["--dir", &dir]);
                } else {
                    cmd.arg(&dir);
                }
            } else {
                cmd.arg(a);
            }
        }
        cmd.output().unwrap()
    };
    let positional = run(false);
    let flag = run(true);
    assert_eq!(
        positional.status.success(),
        ok,
        "kvc {args:?} (DIR): {}",
        String::from_utf8_lossy(&positional.stderr)
    );
    assert_eq!(
        positional.status.code(),
        flag.status.code(),
        "kvc {args:?}: {}",
        String::from_utf8_lossy(&flag.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&positional.stdout),
        String::from_utf8_lossy(&flag.stdout),
        "kvc {args:?}"
    );
    assert!(
        !positional.stdout.is_empty(),
        "kvc {args:?} printed nothing"
    );
}

// --- 1. One argument convention ---

#[test]
fn every_command_takes_its_directory_as_dir_and_as_an_argument() {
    let (env, cps) = small_cache();
    let n = now();
    let key = &cps[0].key()[..8];
    let mapped = &cps[2].key()[..8];
    let prompt = env.root.path().join("prompt.txt");
    let mut p = cps[0].text.clone();
    p.extend_from_slice(b" and more");
    fs::write(&prompt, p).unwrap();
    let map = env.root.path().join("map.json");
    fs::write(
        &map,
        br#"[{"id": "call_2", "dsml": "<tool>search</tool>"}]"#,
    )
    .unwrap();
    let bundle = env.export_to("b.tar", &["--all", "--now", &n]);
    let prompt = prompt.to_str().unwrap();
    let map = map.to_str().unwrap();
    let bundle = bundle.to_str().unwrap();
    let out = env.root.path().join("out.tar");
    let out = out.to_str().unwrap();
    let report = env.root.path().join("r.html");
    let report = report.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["ls", "--json", "--now", &n, "{}"],
        vec!["verify", "--json", "--now", &n, "{}"],
        vec![
            "evict", "-n", "--json", "--budget", "20KiB", "--now", &n, "{}",
        ],
        vec!["gc", "-n", "--json", "--now", &n, "{}"],
        vec!["log", "--json", "--now", &n, "{}"],
        vec!["stats", "--json", "--now", &n, "{}"],
        vec!["tree", "--json", "--now", &n, "{}"],
        vec!["show", "--json", "--now", &n, key, "{}"],
        vec!["cat", key, "{}"],
        vec!["rm", "-n", "--json", key, "{}"],
        vec!["trailer", "ls", "--json", mapped, "{}"],
        vec!["trailer", "export", mapped, "{}"],
        vec![
            "trailer", "set", "-n", "--json", "--from", map, mapped, "{}",
        ],
        vec!["trailer", "prune", "-n", "--json", mapped, "{}"],
        vec!["trailer", "strip", "-n", "--json", "--all", "{}"],
        vec!["export", "--json", "--now", &n, "-o", out, key, "{}"],
        vec!["export", "--json", "--now", &n, "-o", out, "--all", "{}"],
        vec!["import", "-n", "--json", "--now", &n, bundle, "{}"],
        vec!["match", "--json", prompt, "{}"],
    ];
    for args in &runs {
        same_both_ways(&env, args, true);
    }
    // `report` writes a file and prints nothing.
    for as_flag in [false, true] {
        let mut cmd = env.kvc();
        cmd.args(["report", "--now", &n, "-o", report]);
        if as_flag {
            cmd.arg("--dir");
        }
        cmd.arg(&env.cache).assert().success();
        assert!(fs::read_to_string(report).unwrap().contains("<svg"));
    }
    // `match DIR` reads the prompt from standard input.
    let out = env
        .kvc()
        .args(["match", "--json"])
        .arg(&env.cache)
        .write_stdin(fs::read(prompt).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_directory_given_twice_is_an_error_and_none_is_explained() {
    let (env, cps) = small_cache();
    let dir = env.cache_str();
    let key = &cps[0].key()[..8];
    for args in [
        vec!["show", key, &dir, "--dir", &dir],
        vec!["evict", "--budget", "1G", &dir, "--dir", &dir],
        vec!["rm", "-n", key, &dir, "--dir", &dir],
    ] {
        let out = env.kvc().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // No DIR, no --dir, no $KVC_DIR, no ~/.ds4/kvcache: one line that
    // says what to give.
    let out = env.kvc().args(["ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no cache directory") && err.contains("KVC_DIR"),
        "{err}"
    );
}

/// A copy of `c` with other hits: the same name, the same text.
fn with_hits(c: &Ckpt, hits: u32) -> Ckpt {
    c.clone().hits(hits, NOW - 60)
}

#[test]
fn dir_wins_for_bare_key_like_names_in_every_command() {
    let (env, cps) = small_cache();
    let c = &cps[0];
    // The same file name in the current directory, with 9 hits.
    fs::write(env.root.path().join(c.file_name()), with_hits(c, 9).bytes()).unwrap();
    let name = c.file_name();
    let hits = |args: &[&str]| -> Value {
        let v = env.json(args);
        v["hits"].clone()
    };
    // Without a directory the name is the file in the current directory.
    assert_eq!(hits(&["show", "--json", &name]), 9);
    // With one, by --dir or as DIR, the directory's file.
    let dir = env.cache_str();
    assert_eq!(hits(&["show", "--json", &name, "--dir", &dir]), 2);
    assert_eq!(hits(&["show", "--json", &name, &dir]), 2);
    let rm = env.json(&["rm", "-n", "--json", &name, &dir]);
    assert_eq!(
        rm["checkpoints"][0]["path"],
        env.cache.join(&name).to_str().unwrap()
    );
    // evict --protect and export KEYs take the same names.
    let plan = env.json(&[
        "evict",
        "-n",
        "--json",
        "--now",
        &now(),
        "--budget",
        "14KiB",
        "--protect",
        &name,
        &dir,
    ]);
    let victims: Vec<&str> = plan["victims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    assert_eq!(victims.len(), 2, "{plan:#}");
    assert!(!victims.contains(&c.key().as_str()));
    let out = env.root.path().join("one.tar");
    let v = env.json(&[
        "export",
        "--json",
        "--now",
        &now(),
        "-o",
        out.to_str().unwrap(),
        &name,
        &dir,
    ]);
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(v["dir"], dir.as_str());
}

#[test]
fn export_takes_paths_and_keeps_to_one_directory() {
    let (env, cps) = small_cache();
    let path = env.cache.join(cps[1].file_name());
    let out = env.root.path().join("p.tar");
    // A path needs no directory: its own is the bundle's.
    let v = env.json(&[
        "export",
        "--json",
        "--now",
        &now(),
        "-o",
        out.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(v["entries"][0]["key"], cps[1].key());
    // A path outside the directory given is refused, with one line.
    let other = tempfile::tempdir().unwrap();
    let stray = other.path().join(cps[0].file_name());
    fs::write(&stray, cps[0].bytes()).unwrap();
    let o = env
        .kvc()
        .args([
            "export",
            "-o",
            out.to_str().unwrap(),
            "--dir",
            &env.cache_str(),
        ])
        .arg(&stray)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("one directory"), "{err}");
}

#[test]
fn help_says_one_thing_about_the_directory() {
    let env = TestEnv::new();
    for cmd in [
        "ls", "verify", "evict", "gc", "log", "stats", "tree", "report", "show", "cat", "import",
        "export", "rm", "match",
    ] {
        let out = env.kvc().args([cmd, "--help"]).output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("-d, --dir <DIR>"), "{cmd}: {help}");
        assert!(!help.contains("DIR or --dir"), "{cmd}");
    }
    let _ = Path::new("");
}
