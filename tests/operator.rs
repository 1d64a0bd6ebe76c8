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
            "evict",
            "-n",
            "--json",
            "--budget",
            "20KiB",
            "--max-delete",
            "100%",
            "--now",
            &n,
            "{}",
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
        "--max-delete",
        "100%",
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

// --- 2. Findings that help ---

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn verify(env: &TestEnv, args: &[&str]) -> (i32, Value) {
    let out = env
        .kvc()
        .args(["verify", "--json", "--now", &now()])
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

fn codes(v: &Value, what: &str) -> Vec<String> {
    v["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["files"].as_array().unwrap())
        .flat_map(|f| f[what].as_array().unwrap())
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn permissions_are_judged_per_directory_once() {
    let (env, cps) = small_cache();
    let dir = env.cache_str();
    // ds4-server writes 0644 files into its 0700 directory: nobody else
    // can reach them, so nothing to report, even with --strict.
    for c in &cps {
        set_mode(&env.cache.join(c.file_name()), 0o644);
    }
    let (code, v) = verify(&env, &["--strict", &dir]);
    assert_eq!(code, 0, "{v:#}");
    assert!(codes(&v, "findings").is_empty(), "{v:#}");
    let show = env.json(&["show", "--json", &cps[0].key()[..8], &dir]);
    assert!(show["findings"].as_array().unwrap().is_empty(), "{show:#}");
    // Opened to others: one finding, the directory's, with the count.
    set_mode(&env.cache.join(cps[2].file_name()), 0o600);
    set_mode(&env.cache, 0o755);
    let (code, v) = verify(&env, &[&dir]);
    assert_eq!(code, 0);
    assert_eq!(codes(&v, "findings"), ["world-readable"], "{v:#}");
    let msg = v["dirs"][0]["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("read 2 checkpoint files in it (mode 0644 ×2)"),
        "{msg}"
    );
    // The table says it once too.
    let out = env.kvc().args(["verify", &dir]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("world-readable").count(), 1, "{text}");
    // A file named alone is judged with its own directory.
    let one = env.cache.join(cps[0].file_name());
    let (_, v) = verify(&env, &[one.to_str().unwrap()]);
    assert_eq!(codes(&v, "findings"), ["world-readable"]);
    set_mode(&env.cache, 0o700);
    let (_, v) = verify(&env, &[one.to_str().unwrap()]);
    assert!(codes(&v, "findings").is_empty(), "{v:#}");
}

#[test]
fn allow_sets_codes_apart_for_the_exit_status_strict_and_quarantine() {
    let (env, cps) = small_cache();
    let dir = env.cache_str();
    // An error (a name that is not its text's SHA-1) and a warning (a
    // directory open to others).
    let mut wrong = Ckpt::new(chat("mislabelled")).mainline();
    wrong.name = Some(format!("{}.kv", "ab".repeat(20)));
    env.add(&wrong);
    set_mode(&env.cache, 0o755);
    let _ = cps;
    assert_eq!(verify(&env, &[&dir]).0, 1);
    let (code, v) = verify(&env, &["--allow", "key-mismatch", &dir]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["summary"]["errors"], 0);
    assert_eq!(v["summary"]["allowed"], 1);
    assert_eq!(codes(&v, "allowed"), ["key-mismatch"]);
    assert_eq!(
        verify(&env, &["--allow", "key-mismatch", "--strict", &dir]).0,
        1
    );
    let (code, v) = verify(
        &env,
        &[
            "--strict",
            "--allow",
            "key-mismatch",
            "--allow",
            "world-readable",
            &dir,
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert!(v["summary"]["ok"].as_bool().unwrap());
    // The table leaves them out and says how many.
    let out = env
        .kvc()
        .args(["verify", "--allow", "key-mismatch", &dir])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("error[key-mismatch]"), "{text}");
    assert!(
        text.contains("1 finding not counted (--allow key-mismatch)"),
        "{text}"
    );
    // Allowed errors are not quarantined.
    let q = env.root.path().join("q");
    let (code, v) = verify(
        &env,
        &[
            "--allow",
            "key-mismatch",
            "--quarantine",
            q.to_str().unwrap(),
            &dir,
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(v["summary"]["quarantined"], 0);
    assert!(env.cache.join(wrong.file_name()).exists());
    // Codes are checked against the registry: findings only.
    for bad in ["nonsense", "removed"] {
        let out = env
            .kvc()
            .args(["verify", "--allow", bad, &dir])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("is not a finding code") && err.contains("world-readable"),
            "{err}"
        );
    }
}

#[test]
fn show_refuses_a_file_that_is_no_checkpoint_in_one_line_and_fails_on_errors() {
    let env = TestEnv::new();
    let zeros = env.add_raw(&format!("{}.kv", "0".repeat(40)), &[0u8; 5000]);
    let out = env.kvc().arg("show").arg(&zeros).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a kvc checkpoint"), "{err}");
    // A checkpoint with an error is shown, and show exits 1.
    let mut c = Ckpt::new(chat("cut short")).mainline();
    c.payload.truncate(100);
    c.payload_bytes = Some(Ckpt::new(chat("cut short")).mainline().payload.len() as u64);
    let p = env.add(&c);
    let out = env.kvc().arg("show").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("truncated")
            || String::from_utf8_lossy(&out.stdout).contains("cut short")
    );
    // An OS error is said once, on one line.
    let out = env
        .kvc()
        .args(["show", "./nothing-here.kv"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

// --- 3. One model of a checkpoint ---

#[test]
fn ls_evict_stats_and_verify_count_the_same_checkpoints() {
    let env = TestEnv::new();
    let m = mixed_cache(&env);
    // A name that is not its text's SHA-1: the engine counts it (its
    // reader reads the header), so every command calls it a checkpoint.
    let mut wrong = Ckpt::new(chat("mislabelled")).mainline();
    wrong.name = Some(format!("{}.kv", "cd".repeat(20)));
    env.add(&wrong);
    // A zero-token file: invalid for ds4, everywhere.
    env.add(&Ckpt::new(chat("no tokens")).mainline().tokens(0, 32768));
    let dir = env.cache_str();
    let n = now();
    let ls = env.json(&["ls", "--json", "--now", &n, &dir]);
    let ls_quick = env.json(&["ls", "--json", "--no-title", "--now", &n, &dir]);
    let stats = env.json(&["stats", "--json", "--now", &n, &dir]);
    let plan = env.json(&[
        "evict", "-n", "--json", "--now", &n, "--budget", "1TiB", &dir,
    ]);
    let (_, verify) = verify(&env, &[&dir]);
    let count = |v: &Value, field: &str| v["dirs"][0][field].as_array().unwrap().len();
    let cps = count(&ls, "checkpoints");
    let invalid = count(&ls, "invalid");
    let foreign = count(&ls, "foreign");
    assert_eq!(cps, m.counted.len() + m.unloadable.len() + 5, "{ls:#}");
    assert_eq!(invalid, 2, "{ls:#}");
    assert_eq!(foreign, 1);
    assert_eq!(count(&ls_quick, "checkpoints"), cps, "ls --no-title");
    assert_eq!(count(&ls_quick, "invalid"), invalid, "ls --no-title");
    let s = &stats["dirs"][0];
    assert_eq!(s["checkpoints"]["count"], cps);
    assert_eq!(s["invalid"]["count"], invalid);
    assert_eq!(s["foreign"]["count"], foreign);
    assert_eq!(
        verify["summary"]["checkpoints"], cps,
        "{:#}",
        verify["summary"]
    );
    assert_eq!(verify["summary"]["invalid"], invalid);
    assert_eq!(verify["summary"]["foreign"], foreign);
    // What evict counts is what stats calls counted: the checkpoints ls
    // ranks (the mislabelled file included, agent saves protected), and
    // the foreign LZ4 file, whose header mainline's reader accepts.
    let ranked = ls["dirs"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["loadable"] == true && c["key"] != "sysprompt")
        .count();
    assert_eq!(plan["counted"], ranked + 1, "{:#}", plan["kept"]);
    assert_eq!(s["counted"]["count"], plan["counted"]);
    assert_eq!(s["counted"]["bytes"], plan["counted_bytes"]);
    let kept_invalid = plan["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["why"] == "invalid")
        .count();
    assert_eq!(kept_invalid, invalid);
    // ls flags the mislabelled one and says why; verify calls it an error.
    let row = ls["dirs"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["file"] == wrong.file_name().as_str())
        .unwrap();
    assert_eq!(row["content_key"], wrong.key());
    assert!(row["loadable"].as_bool().unwrap());
    let table = String::from_utf8(env.stdout(&["ls", "--now", &n, &dir])).unwrap();
    assert!(
        table.contains(&format!(
            "error: {}: SHA-1 of the text is {}",
            wrong.file_name(),
            wrong.key()
        )),
        "{table}"
    );
    assert!(codes(&verify, "findings").contains(&"key-mismatch".to_string()));
}

#[test]
fn under_hanzo_engine_stats_counts_what_evict_counts() {
    let env = TestEnv::new();
    env.add(&hanzo_spill(&[1, 2, 3], NOW - 100));
    env.add(&hanzo_spill(&[4, 5], NOW - 50));
    // hanzo-engine counts every *.kv it can stat, readable or not.
    env.add_raw(&format!("{}.kv", sha1_hex(b"cut")), b"KVC\x01short");
    env.add_raw("notes.kv", b"not a checkpoint name");
    let dir = env.cache_str();
    let n = now();
    let stats = env.json(&["stats", "--json", "--now", &n, &dir]);
    let plan = env.json(&[
        "evict", "-n", "--json", "--now", &n, "--budget", "1TiB", &dir,
    ]);
    assert_eq!(plan["engine"]["engine"], "hanzo");
    assert_eq!(plan["counted"], 4, "{plan:#}");
    assert_eq!(stats["dirs"][0]["counted"]["count"], plan["counted"]);
    assert_eq!(stats["dirs"][0]["counted"]["bytes"], plan["counted_bytes"]);
}

#[test]
fn log_is_newest_first_and_filters_by_op_key_time_and_count() {
    let (env, cps) = small_cache();
    let dir = env.cache_str();
    // Three runs at three times: rm one, import it back, rm another.
    let bundle = env.export_to("one.tar", &[&cps[0].key()[..8], "--now", &now()]);
    let t = |s: u64| (NOW + s).to_string();
    env.stdout(&["rm", "-q", "--now", &t(10), &cps[0].key()[..8], &dir]);
    env.stdout(&["import", "--now", &t(20), bundle.to_str().unwrap(), &dir]);
    env.stdout(&["rm", "-q", "--now", &t(30), &cps[1].key()[..8], &dir]);
    let log = |extra: &[&str]| -> Value {
        let mut args = vec!["log", "--json", "--now", "1763720000"];
        args.extend_from_slice(extra);
        args.push(&dir);
        env.json(&args)
    };
    let keys = |v: &Value| -> Vec<(String, String)> {
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["op"].as_str().unwrap().into(),
                    r["key"].as_str().unwrap()[..8].into(),
                )
            })
            .collect()
    };
    let k0 = cps[0].key()[..8].to_string();
    let k1 = cps[1].key()[..8].to_string();
    let all = log(&[]);
    assert_eq!(
        keys(&all),
        [
            ("rm".into(), k1.clone()),
            ("import".into(), k0.clone()),
            ("rm".into(), k0.clone())
        ]
    );
    assert_eq!(all["order"], "newest-first");
    // Freed counts deletions only; the totals are per op.
    let size = |c: &Ckpt| c.bytes().len() as u64;
    assert_eq!(all["freed_bytes"], size(&cps[0]) + size(&cps[1]));
    assert_eq!(all["totals"]["import"]["records"], 1);
    assert_eq!(all["totals"]["rm"]["records"], 2);
    assert_eq!(keys(&log(&["-r"]))[0], ("rm".into(), k0.clone()));
    assert_eq!(
        keys(&log(&["--op", "import"])),
        [("import".into(), k0.clone())]
    );
    assert_eq!(keys(&log(&["--op", "import", "--op", "rm"])).len(), 3);
    assert_eq!(keys(&log(&["--key", &k0.to_uppercase()])).len(), 2);
    let newest = log(&["--limit", "1"]);
    assert_eq!(keys(&newest), [("rm".into(), k1.clone())]);
    assert_eq!(newest["matched"], 3);
    assert_eq!(newest["totals"]["rm"]["records"], 1);
    assert!(newest["totals"].get("import").is_none());
    // --since: a duration back from --now, or a date and time (UTC).
    assert_eq!(keys(&log(&["--since", "9985s"])).len(), 2);
    assert_eq!(
        keys(&log(&["--since", "2025-11-21T07:27:00"])).len(),
        2,
        "{:#}",
        log(&[])
    );
    assert_eq!(keys(&log(&["--since", "2030-01-01"])).len(), 0);
    let out = env
        .kvc()
        .args(["log", "--op", "delete", &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one of evict, rm, gc"));
    // The table says when the newest were cut from more.
    let text =
        String::from_utf8(env.stdout(&["log", "-n", "2", "--now", "1763720000", &dir])).unwrap();
    assert!(
        text.contains("2 records (the newest of 3 matching)"),
        "{text}"
    );
}

// --- 4. Safe destructive defaults ---

/// Ten checkpoints of one size, oldest first by last use.
fn ten(env: &TestEnv) -> Vec<Ckpt> {
    let cps: Vec<Ckpt> = (0..10)
        .map(|i| {
            Ckpt::new(chat(&format!("conversation number {i}")))
                .mainline()
                .hits(0, NOW - 10_000 + i * 100)
        })
        .collect();
    for c in &cps {
        env.add(c);
    }
    cps
}

fn stderr_line(out: &std::process::Output) -> String {
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn a_mistyped_budget_deletes_nothing_and_exits_4() {
    let env = TestEnv::new();
    ten(&env);
    let dir = env.cache_str();
    let n = now();
    let before = env.snapshot();
    // 1KiB where 100KiB was meant: every checkpoint would go.
    let out = env
        .kvc()
        .args(["evict", "--budget", "1KiB", "--now", &n, &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty());
    let err = stderr_line(&out);
    assert!(err.contains("refusing to delete 10 files"), "{err}");
    assert!(err.contains("(100% of "), "{err}");
    assert!(err.contains("needs --max-delete or --yes"), "{err}");
    assert!(err.contains("nothing was deleted"), "{err}");
    assert_eq!(env.snapshot(), before);
    assert!(!env.cache.join(".kvc").exists(), "no lock taken");
    // The dry run shows the plan and exits as the real run would.
    let out = env
        .kvc()
        .args([
            "evict", "-n", "--json", "--budget", "1KiB", "--now", &n, &dir,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["victims"].as_array().unwrap().len(), 10);
    assert_eq!(v["limit"]["max"], "50%");
    assert_eq!(v["limit"]["default"], true);
    assert_eq!(v["limit"]["within"], false);
    assert!(stderr_line(&out).contains("a real run would stop here"));
    // An explicit limit: a count, a size, a share.
    for (limit, words) in [
        ("3", "over --max-delete 3 files"),
        ("20KiB", "over --max-delete 20 KiB"),
        ("25%", "over --max-delete 25%"),
    ] {
        let out = env
            .kvc()
            .args(["evict", "--budget", "1KiB", "--max-delete", limit, &dir])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{limit}");
        assert!(stderr_line(&out).contains(words), "{limit}");
    }
    assert_eq!(env.snapshot(), before);
    // --yes lifts evict's own limit, not an explicit one.
    let out = env
        .kvc()
        .args([
            "evict",
            "--yes",
            "--max-delete",
            "3",
            "--budget",
            "1KiB",
            &dir,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // Within the default limit, without a terminal (cron): deleted, no
    // question asked.
    let each = env.cache_bytes() / 10;
    let budget = format!("{}B", 6 * each + each / 2);
    let v = env.json(&["evict", "--json", "--budget", &budget, "--now", &n, &dir]);
    assert_eq!(v["victims"].as_array().unwrap().len(), 4, "{v:#}");
    assert_eq!(v["limit"]["within"], true);
    let v = env.json(&[
        "evict", "--json", "--yes", "--budget", "1KiB", "--now", &n, &dir,
    ]);
    assert_eq!(v["victims"].as_array().unwrap().len(), 6);
    assert_eq!(v["limit"], Value::Null);
}

#[test]
fn rm_and_gc_take_max_delete() {
    let env = TestEnv::new();
    let cps = ten(&env);
    let dir = env.cache_str();
    let keys: Vec<String> = cps[..3].iter().map(|c| c.key()[..8].to_string()).collect();
    let before = env.snapshot();
    let out = env
        .kvc()
        .args(["rm", "--max-delete", "2"])
        .args(&keys)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr_line(&out).contains("refusing to delete 3 files"));
    assert_eq!(env.snapshot(), before);
    // Within it: removed, and the JSON says so.
    let mut args = vec!["rm", "--json", "--max-delete", "30%"];
    args.extend(keys.iter().map(String::as_str));
    args.push(&dir);
    let v = env.json(&args);
    assert_eq!(
        v["freed_bytes"],
        cps[..3].iter().map(|c| c.bytes().len() as u64).sum::<u64>()
    );
    assert_eq!(v["limit"]["within"], true);
    // gc: stale temp files of dead writers.
    let key = sha1_hex(b"a save");
    let stale = env.add_raw(&format!("{key}.kv.tmp.{DEAD_PID}"), &[7u8; 4000]);
    age_file(&stale, std::time::Duration::from_secs(7200));
    let out = env
        .kvc()
        .args(["gc", "--max-delete", "0", &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr_line(&out).contains("over --max-delete 0 files"));
    assert!(stale.exists());
    let out = env
        .kvc()
        .args(["gc", "-n", "--max-delete", "1KiB", &dir])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "a dry run exits as the real run would"
    );
    env.stdout(&["gc", "-q", "--max-delete", "1", &dir]);
    assert!(!stale.exists());
    // A limit that is none of the three is a usage error.
    let out = env
        .kvc()
        .args(["gc", "--max-delete", "lots", &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Run `kvc ARGS` with a pseudo-terminal (util-linux `script`) as its
/// standard input, output and error, typing `answer`. `None` when
/// `script` is not installed.
fn on_a_terminal(args: &str, answer: &str) -> Option<std::process::Output> {
    on_a_terminal_with(args, answer, &[("TERM", "dumb")])
}

/// [`on_a_terminal`] with these environment variables (and PATH only).
fn on_a_terminal_with(
    args: &str,
    answer: &str,
    vars: &[(&str, &str)],
) -> Option<std::process::Output> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    use std::io::Write;
    let kvc = assert_cmd::cargo::cargo_bin("kvc");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("{} {args}", kvc.display()), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn on_a_terminal_a_large_share_asks_first() {
    let env = TestEnv::new();
    ten(&env);
    let dir = env.cache_str();
    let each = env.cache_bytes() / 10;
    // Four of ten: within evict's limit, more than the 10% that asks.
    let args = format!(
        "evict --now {} --budget {}B {dir}",
        NOW,
        6 * each + each / 2
    );
    let Some(out) = on_a_terminal(&args, "n\n") else {
        return;
    };
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("kvc evict: delete 4 files, "), "{shown}");
    assert!(shown.contains("[y/N]"), "{shown}");
    assert!(
        shown.contains("not confirmed; nothing was deleted"),
        "{shown}"
    );
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(env.readdir_names().len(), 10);
    let out = on_a_terminal(&args, "y\n").unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        env.readdir_names()
            .iter()
            .filter(|n| n.ends_with(".kv"))
            .count(),
        6
    );
    // --yes: no question. A small share: no question either.
    let args = format!(
        "evict --yes --now {} --budget {}B {dir}",
        NOW,
        4 * each + each / 2
    );
    let out = on_a_terminal(&args, "").unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("[y/N]"));
    let keys: Vec<String> = env
        .readdir_names()
        .into_iter()
        .filter(|n| n.ends_with(".kv"))
        .collect();
    let one = &keys[0][..8];
    let out = on_a_terminal(&format!("rm {one} {dir}"), "").unwrap();
    // One of four files is 25%: asked, and an empty answer is no.
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kvc rm: delete 1 file"));
}

// --- 5. Output people read ---

#[test]
fn tables_show_one_relative_time_long_rfc3339_json_seconds() {
    let (env, cps) = small_cache();
    let dir = env.cache_str();
    let n = now();
    // A temp file of a dead writer, 2 hours and 17 minutes old.
    let key = sha1_hex(b"a save");
    let stale = env.add_raw(&format!("{key}.kv.tmp.{DEAD_PID}"), &[7u8; 100]);
    age_file(
        &stale,
        std::time::Duration::from_secs(2 * 3600 + 17 * 60 + 42),
    );
    let gc = String::from_utf8(env.stdout(&["gc", "-n", &dir])).unwrap();
    assert!(gc.contains(" 2h ago "), "{gc}");
    assert!(!gc.contains("17m") && !gc.contains("2h 17m"), "{gc}");
    let v = env.json(&["verify", "--json", &dir]);
    let msg = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["findings"].as_array().unwrap())
        .find(|f| f["code"] == "stale-temp")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("last written 2h ago"), "{msg}");
    // The journal: ages in the table, RFC 3339 with -l, seconds in JSON.
    env.stdout(&[
        "rm",
        "-q",
        "--now",
        &(NOW - 3 * 86_400).to_string(),
        &cps[0].key()[..8],
        &dir,
    ]);
    let table = String::from_utf8(env.stdout(&["log", "--now", &n, &dir])).unwrap();
    assert!(table.contains("3d ago"), "{table}");
    let long = String::from_utf8(env.stdout(&["log", "-l", "--now", &n, &dir])).unwrap();
    assert!(long.contains("2025-11-18T07:26:40Z"), "{long}");
    let v = env.json(&["log", "--json", &dir]);
    assert_eq!(v["records"][0]["time"], NOW - 3 * 86_400);
    let ls = String::from_utf8(env.stdout(&["ls", "--now", &n, &dir])).unwrap();
    assert!(ls.contains(" 2h ago "), "{ls}");
    let ls = String::from_utf8(env.stdout(&["ls", "-l", "--now", &n, &dir])).unwrap();
    assert!(ls.contains("2025-11-21T05:26:40Z"), "{ls}");
}

#[test]
fn progress_is_drawn_on_a_terminal_only_with_percent_rate_and_eta() {
    let (env, _) = small_cache();
    let dir = env.cache_str();
    // (TERM=dumb would draw no bar: it cannot move the cursor.)
    let xterm = [("TERM", "xterm")];
    let Some(out) = on_a_terminal_with(&format!("verify --deep {dir}"), "", &xterm) else {
        return;
    };
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("verify ["), "{shown}");
    assert!(shown.contains("% ") && shown.contains("/s ETA "), "{shown}");
    // Not on a pipe.
    let out = env.kvc().args(["verify", "--deep", &dir]).output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A trailer rewrite by copy advances one bar by bytes.
    let out = on_a_terminal_with(
        &format!("trailer strip --all --method copy {dir}"),
        "",
        &xterm,
    )
    .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        shown.contains("strip [") && shown.contains("ETA"),
        "{shown}"
    );
}

#[test]
fn severities_are_coloured_on_a_terminal_unless_no_color() {
    let env = TestEnv::new();
    let mut wrong = Ckpt::new(chat("mislabelled")).mainline();
    wrong.name = Some(format!("{}.kv", "ab".repeat(20)));
    env.add(&wrong);
    let dir = env.cache_str();
    let red = "\x1b[1;31merror[key-mismatch]\x1b[0m";
    let Some(out) = on_a_terminal_with(&format!("verify {dir}"), "", &[("TERM", "xterm")]) else {
        return;
    };
    assert!(String::from_utf8_lossy(&out.stdout).contains(red));
    let out = on_a_terminal_with(
        &format!("verify {dir}"),
        "",
        &[("TERM", "xterm"), ("NO_COLOR", "1")],
    )
    .unwrap();
    assert!(
        !out.stdout.contains(&0x1b),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = on_a_terminal_with(
        &format!("verify --color never {dir}"),
        "",
        &[("TERM", "xterm")],
    )
    .unwrap();
    assert!(!out.stdout.contains(&0x1b));
    // A pipe: none, unless --color always.
    let out = env.kvc().args(["verify", &dir]).output().unwrap();
    assert!(!out.stdout.contains(&0x1b));
    let out = env
        .kvc()
        .args(["verify", "--color", "always", &dir])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(red));
    let out = env
        .kvc()
        .args(["ls", "--color", "always", &dir])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\x1b[1;31merror:\x1b[0m"));
}

#[test]
fn the_evict_plan_shows_titles_fitted_to_the_width() {
    let env = TestEnv::new();
    ten(&env);
    let dir = env.cache_str();
    let args = [
        "evict",
        "-n",
        "--yes",
        "--budget",
        "1KiB",
        "--now",
        &now(),
        &dir,
    ];
    let whole = String::from_utf8(env.stdout(&args)).unwrap();
    assert!(whole.contains("TITLE"), "{whole}");
    assert!(whole.contains("conversation number 0"), "{whole}");
    let out = env.kvc().args(args).env("COLUMNS", "70").output().unwrap();
    let narrow = String::from_utf8(out.stdout).unwrap();
    for line in narrow.lines().filter(|l| l.starts_with(' ')) {
        assert!(unicode_width(line) <= 70, "{line:?}");
    }
    assert!(narrow.contains('…'), "{narrow}");
    let v = env.json(&["evict", "-n", "--yes", "--json", "--budget", "1KiB", &dir]);
    assert!(v["victims"][0]["title"]
        .as_str()
        .unwrap()
        .starts_with("conversation number"));
}

fn unicode_width(s: &str) -> usize {
    s.chars().count()
}

#[test]
fn trailer_rewrites_end_with_a_summary_line() {
    let (env, _) = small_cache();
    let dir = env.cache_str();
    let dry = String::from_utf8(env.stdout(&["trailer", "strip", "-n", "--all", &dir])).unwrap();
    assert_eq!(
        dry.lines().last().unwrap(),
        "strip: 1 would be rewritten (dry run: nothing was written)",
        "{dry}"
    );
    let done =
        String::from_utf8(env.stdout(&["trailer", "strip", "--all", "--method", "copy", &dir]))
            .unwrap();
    assert_eq!(
        done.lines().last().unwrap(),
        "strip: 1 rewritten (1 copy)",
        "{done}"
    );
    let again = String::from_utf8(env.stdout(&["trailer", "strip", "--all", &dir])).unwrap();
    assert!(
        again
            .lines()
            .last()
            .unwrap()
            .starts_with("strip: 0 rewritten"),
        "{again}"
    );
}

// --- 7. Man pages and --help carry the code tables and the JSON pointers ---

#[test]
fn help_and_man_pages_carry_code_tables_and_json_pointers() {
    use kvc::code::{Code, Uses};
    let env = TestEnv::new();
    let help = |args: &[&str]| String::from_utf8(env.stdout(args)).unwrap();
    let verify = help(&["verify", "--help"]);
    for c in Code::used_as(Uses::FINDING) {
        assert!(
            verify.contains(&format!("{} ({}): ", c.name(), c.severity())),
            "verify --help lacks {c}"
        );
    }
    assert!(verify.contains("JSON (--json)") && verify.contains("doc/GUIDE.md"));
    // -h stays short.
    assert!(!help(&["verify", "-h"]).contains("payload-size"));
    let man = env.root.path().join("man1");
    env.kvc().arg("man").arg(&man).assert().success();
    // roff writes a hyphen as `\-`.
    let page = |name: &str| {
        fs::read_to_string(man.join(name))
            .unwrap()
            .replace("\\-", "-")
    };
    let verify_man = page("kvc-verify.1");
    for c in Code::used_as(Uses::FINDING) {
        assert!(verify_man.contains(c.name()), "man kvc-verify lacks {c}");
    }
    for (page_name, codes, json) in [
        (
            "kvc-ls.1",
            Code::used_as(Uses::INVALID).collect::<Vec<_>>(),
            "kvc ls --json",
        ),
        (
            "kvc-evict.1",
            Code::used_as(Uses::KEPT).collect(),
            "kvc evict --json",
        ),
        (
            "kvc-gc.1",
            Code::used_as(Uses::VERDICT).collect(),
            "kvc gc --json",
        ),
        (
            "kvc-import.1",
            vec![Code::Installed, Code::Rejected],
            "Import JSON",
        ),
        (
            "kvc-trailer-strip.1",
            vec![Code::Rewritten, Code::Unchanged],
            "JSON",
        ),
    ] {
        let text = page(page_name);
        for c in codes {
            assert!(text.contains(c.name()), "{page_name} lacks {c}");
        }
        assert!(text.contains(json), "{page_name} lacks {json}");
    }
    // The exit status 4 is in the top page and evict's.
    assert!(page("kvc.1").contains("4 a deleting command"));
    assert!(page("kvc-evict.1").contains("4 refused"));
}

// --- 8. Completions ---

/// clap's completion protocol, as the registered bash function calls it:
/// `COMPLETE=bash kvc -- WORDS`, the index of the word completed in
/// `_CLAP_COMPLETE_INDEX`; one candidate a line.
fn complete(env: &TestEnv, words: &[&str], vars: &[(&str, &str)]) -> Vec<String> {
    complete_at(env, words, words.len() - 1, vars)
}

/// [`complete`] of the word at `at`.
fn complete_at(env: &TestEnv, words: &[&str], at: usize, vars: &[(&str, &str)]) -> Vec<String> {
    let index = at.to_string();
    let out = env
        .kvc()
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", &index)
        .envs(vars.iter().copied())
        .arg("--")
        .args(words)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn keys_and_sizes_complete_dynamically() {
    let (env, cps) = small_cache();
    let dir = env.cache_str();
    let key = cps[1].key();
    let prefix = &key[..4];
    // The key in the directory --dir names, whichever side of the word.
    assert_eq!(
        complete_at(&env, &["kvc", "show", prefix, "--dir", &dir], 2, &[]),
        [key.as_str()]
    );
    assert_eq!(
        complete(
            &env,
            &["kvc", "rm", "-d", &dir, &prefix.to_uppercase()],
            &[]
        ),
        [key.as_str()]
    );
    // Else in $KVC_DIR.
    let all = complete(&env, &["kvc", "cat", ""], &[("KVC_DIR", &dir)]);
    for c in &cps {
        assert!(all.contains(&c.key()), "{all:?}");
    }
    assert_eq!(
        complete(
            &env,
            &["kvc", "evict", "--protect", prefix],
            &[("KVC_DIR", &dir)]
        ),
        [key.as_str()]
    );
    assert_eq!(
        complete(
            &env,
            &["kvc", "trailer", "strip", prefix],
            &[("KVC_DIR", &dir)]
        ),
        [key.as_str()]
    );
    // Nothing when there is no directory to look in.
    assert!(complete(&env, &["kvc", "show", prefix], &[]).is_empty());
    // A number typed for a size completes to its units; a limit also to a
    // share and a count.
    let sizes = complete(&env, &["kvc", "evict", "--budget", "40"], &[]);
    assert!(
        sizes.contains(&"40GiB".to_string()) && sizes.contains(&"40GB".to_string()),
        "{sizes:?}"
    );
    assert!(!sizes.contains(&"40".to_string()));
    let limits = complete(&env, &["kvc", "rm", "--max-delete", "25"], &[]);
    assert!(
        limits.contains(&"25%".to_string()) && limits.contains(&"25".to_string()),
        "{limits:?}"
    );
    // `kvc completions SHELL` is the static script; --dynamic registers
    // the callback.
    let stat = String::from_utf8(env.stdout(&["completions", "bash"])).unwrap();
    assert!(!stat.contains("COMPLETE="));
    let dynamic = String::from_utf8(env.stdout(&["completions", "--dynamic", "bash"])).unwrap();
    assert!(
        dynamic.contains("COMPLETE=\"bash\"") && dynamic.contains("complete -o nospace"),
        "{dynamic}"
    );
    let fish = String::from_utf8(env.stdout(&["completions", "--dynamic", "fish"])).unwrap();
    assert!(fish.contains("COMPLETE=fish"), "{fish}");
}
