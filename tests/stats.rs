//! `kvc stats`: totals that agree with `kvc ls`, reclaimable figures equal
//! to what the matching command frees on a copy, a Prometheus textfile a
//! parser accepts, and ds4-server's log lines of every kind.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn stats_json(env: &TestEnv, extra: &[&str]) -> Value {
    let mut args = vec!["stats", "--json"];
    args.extend_from_slice(extra);
    let cache = env.cache_str();
    args.push(&cache);
    env.json(&args)
}

fn now_arg() -> String {
    NOW.to_string()
}

fn tally(v: &Value) -> (u64, u64) {
    (v["count"].as_u64().unwrap(), v["bytes"].as_u64().unwrap())
}

fn rows(v: &Value) -> BTreeMap<String, (u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                (r["count"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()),
            )
        })
        .filter(|(_, (n, _))| *n > 0)
        .collect()
}

#[test]
fn totals_equal_the_sums_of_ls_json() {
    let env = TestEnv::new();
    mixed_cache(&env);
    let now = now_arg();
    let ls = env.json(&["ls", "--json", "--now", &now, &env.cache_str()]);
    let st = stats_json(&env, &["--now", &now]);
    let d = &ls["dirs"][0];
    let s = &st["dirs"][0];
    let cps = d["checkpoints"].as_array().unwrap();
    let sum = |f: &dyn Fn(&Value) -> bool| {
        cps.iter()
            .filter(|c| f(c))
            .fold((0, 0), |(n, b), c| (n + 1, b + c["size"].as_u64().unwrap()))
    };
    assert_eq!(tally(&s["checkpoints"]), sum(&|_| true));
    assert_eq!(tally(&s["loadable"]), sum(&|c| c["loadable"] == true));
    assert_eq!(tally(&s["never_loaded"]), sum(&|c| c["loadable"] == false));
    assert_eq!(
        s["never_loaded"]["bytes"], d["never_loaded"]["bytes"],
        "as ls totals it"
    );
    assert_eq!(tally(&s["agent_saves"]), sum(&|c| c["agent_save"] == true));
    assert_eq!(s["total_bytes"], d["total_bytes"]);
    assert_eq!(s["foreign"]["bytes"], d["foreign_bytes"]);
    assert_eq!(s["checkpoints"]["bytes"], d["checkpoint_bytes"]);
    let group = |key: &str| {
        let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for c in cps {
            let label = match &c[key] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let e = m.entry(label).or_default();
            e.0 += 1;
            e.1 += c["size"].as_u64().unwrap();
        }
        m
    };
    assert_eq!(rows(&s["by_reason"]), group("reason"));
    assert_eq!(rows(&s["by_dialect"]), group("dialect"));
    // Every mixed-cache checkpoint is D3/D1 with mainline's model 0.
    assert_eq!(
        rows(&s["by_model"]),
        BTreeMap::from([("flash".into(), sum(&|_| true))])
    );
    // Buckets partition the checkpoints.
    for key in ["by_age", "by_size"] {
        let t = rows(&s[key])
            .values()
            .fold((0, 0), |(n, b), (x, y)| (n + x, b + y));
        assert_eq!(t, sum(&|_| true), "{key}");
    }
    let h = &s["hits"];
    let spread: Vec<(u64, u64)> = ["never", "within_1d", "within_1d_7d", "before_7d"]
        .iter()
        .map(|k| tally(&h[k]))
        .collect();
    assert_eq!(spread[0], sum(&|c| c["hits"] == 0));
    // cold one: hit 10 minutes ago; shutdown one: 10 days ago.
    assert_eq!(spread[1].0, 1);
    assert_eq!(spread[3].0, 1);
    let all = spread.iter().fold((0, 0), |(n, b), (x, y)| (n + x, b + y));
    assert_eq!(all, sum(&|_| true));
    // Superseded as ls marks it.
    let sup = s["reclaimable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "superseded")
        .unwrap();
    assert_eq!(tally(sup), sum(&|c| c["superseded"] == true));
    assert_eq!(sup["count"], 1);
}

fn reclaim(v: &Value, kind: &str) -> (u64, u64) {
    let r = v["dirs"][0]["reclaimable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"));
    tally(r)
}

/// Entries of the cache before and after a command on a copy: the files
/// it removed and their bytes.
fn freed(copy: &TestEnv, f: impl FnOnce(&TestEnv)) -> (u64, u64) {
    let names = |env: &TestEnv| -> BTreeMap<String, u64> {
        fs::read_dir(&env.cache)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != ".kvc")
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect()
    };
    let before = names(copy);
    let bytes_before = copy.cache_bytes();
    f(copy);
    let after = names(copy);
    let gone = before.keys().filter(|k| !after.contains_key(*k)).count() as u64;
    assert_eq!(bytes_before - copy.cache_bytes(), {
        before
            .iter()
            .filter(|(k, _)| !after.contains_key(*k))
            .map(|(_, b)| b)
            .sum::<u64>()
    });
    (gone, bytes_before - copy.cache_bytes())
}

#[test]
fn each_reclaimable_figure_is_what_its_command_frees_on_a_copy() {
    let env = TestEnv::new();
    let m = mixed_cache(&env);
    // gc judges temp files by the clock: no --now here.
    let v = stats_json(&env, &[]);

    let unloadable = reclaim(&v, "unloadable");
    assert_eq!(unloadable.0, m.unloadable.len() as u64);
    let copy = env.copy();
    let got = freed(&copy, |c| {
        c.stdout(&[
            "evict",
            "--yes",
            "--include-unloadable",
            "-q",
            &c.cache_str(),
        ]);
    });
    assert_eq!(got, unloadable, "evict --include-unloadable");

    let stale = reclaim(&v, "stale-temps");
    assert_eq!(stale, (1, 3000));
    let copy = env.copy();
    let got = freed(&copy, |c| {
        c.stdout(&["gc", "-q", &c.cache_str()]);
    });
    assert_eq!(got, stale, "gc");
    assert!(m.fresh_temp.exists());

    let superseded = reclaim(&v, "superseded");
    let copy = env.copy();
    let ls = copy.json(&["ls", "--json", "--no-title", &copy.cache_str()]);
    let keys: Vec<String> = ls["dirs"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["superseded"] == true)
        .map(|c| c["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, [m.waypoint.key()]);
    let got = freed(&copy, |c| {
        let mut args = vec!["rm", "-q", "--dir"];
        let cache = c.cache_str();
        args.push(&cache);
        args.extend(keys.iter().map(String::as_str));
        c.stdout(&args);
    });
    assert_eq!(got, superseded, "rm of the superseded waypoints");

    // Foreign files: shown, never reclaimable, and no command above took them.
    let d = &v["dirs"][0];
    assert_eq!(d["foreign"]["count"], 1);
    for kind in ["unloadable", "superseded", "stale-temps"] {
        let _ = reclaim(&v, kind);
    }
    let kinds: Vec<&str> = d["reclaimable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unloadable", "superseded", "stale-temps"]);
    let copy = env.copy();
    copy.stdout(&[
        "evict",
        "--yes",
        "--include-unloadable",
        "-q",
        &copy.cache_str(),
    ]);
    copy.stdout(&["gc", "-q", &copy.cache_str()]);
    assert!(copy.cache.join(&m.foreign).exists());
}

#[test]
fn the_budget_and_what_evict_would_delete_to_meet_it() {
    let env = TestEnv::new();
    mixed_cache(&env);
    let now = now_arg();
    let v = stats_json(&env, &["--now", &now, "--budget", "60KiB"]);
    let b = &v["dirs"][0]["budget"];
    assert_eq!(b["budget"], 60 * 1024);
    assert_eq!(b["source"]["from"], "given");
    let plan = env.json(&[
        "evict",
        "--dry-run",
        "--yes",
        "--json",
        "--now",
        &now,
        "--budget",
        "60KiB",
        &env.cache_str(),
    ]);
    assert_eq!(b["counted_bytes"], plan["counted_bytes"]);
    assert_eq!(b["evict"]["bytes"], plan["freed_bytes"]);
    assert_eq!(
        b["evict"]["count"].as_u64().unwrap(),
        plan["victims"].as_array().unwrap().len() as u64
    );
    assert!(b["evict"]["count"].as_u64().unwrap() > 0);
    assert_eq!(b["budget_met"], plan["budget_met"]);
    let usage = b["usage"].as_f64().unwrap();
    let counted = b["counted_bytes"].as_f64().unwrap();
    assert!((usage - counted / (60.0 * 1024.0)).abs() < 1e-12);
    // The real command, on a copy, frees the same.
    let copy = env.copy();
    let got = freed(&copy, |c| {
        c.stdout(&[
            "evict",
            "-q",
            "--yes",
            "--now",
            &now,
            "--budget",
            "60KiB",
            &c.cache_str(),
        ]);
    });
    assert_eq!(got.1, b["evict"]["bytes"].as_u64().unwrap());
    // Without --budget or a log, no budget.
    let v = stats_json(&env, &["--now", &now]);
    assert_eq!(v["dirs"][0]["budget"], Value::Null);
}

#[test]
fn the_budget_the_engine_logged_for_the_directory() {
    let env = TestEnv::new();
    mixed_cache(&env);
    let log = env.root.path().join("server.log");
    let other = env.root.path().join("elsewhere");
    fs::write(
        &log,
        format!(
            "{}{}\n{}{}\n",
            ds4log::stamp(8, 1, "09:00:00"),
            ds4log::opened(&env.cache_str(), 1),
            ds4log::stamp(8, 2, "09:00:00"),
            ds4log::opened(other.to_str().unwrap(), 7),
        ),
    )
    .unwrap();
    let v = stats_json(&env, &["--now", &now_arg(), "--log", log.to_str().unwrap()]);
    let b = &v["dirs"][0]["budget"];
    assert_eq!(b["budget"], 1 << 20);
    assert_eq!(b["source"]["from"], "log");
    assert_eq!(v["log"]["budgets"].as_array().unwrap().len(), 2);
    // --budget wins.
    let v = stats_json(
        &env,
        &[
            "--now",
            &now_arg(),
            "--log",
            log.to_str().unwrap(),
            "--budget",
            "2MiB",
        ],
    );
    assert_eq!(v["dirs"][0]["budget"]["source"]["from"], "given");
}

#[test]
fn stats_changes_nothing() {
    let env = TestEnv::new();
    mixed_cache(&env);
    let before = env.snapshot();
    let log = env.root.path().join("l.log");
    fs::write(&log, ds4log::skips().join("\n")).unwrap();
    for extra in [
        &["--json"][..],
        &[][..],
        &["--prometheus"][..],
        &["--budget", "1KiB", "--log", log.to_str().unwrap()][..],
    ] {
        let mut args = vec!["stats"];
        args.extend_from_slice(extra);
        let cache = env.cache_str();
        args.push(&cache);
        env.stdout(&args);
    }
    assert_eq!(before, env.snapshot());
    assert!(!env.cache.join(".kvc").exists());
}

// --- Prometheus text exposition format ---

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A strict parser of the text exposition format (0.0.4), as promtool
/// checks it: `# HELP name text`, `# TYPE name gauge|counter|…` before the
/// family's samples, each family once and contiguous; metric and label
/// names `[a-zA-Z_:][a-zA-Z0-9_:]*` (labels without `:`); label values in
/// double quotes with `\\`, `\"`, `\n` escapes only; a float value.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    fn name_ok(s: &str, colon: bool) -> bool {
        let mut it = s.chars();
        let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        it.next().is_some_and(first_ok)
            && it.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut out = Vec::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: BTreeMap<String, ()> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut finished: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            if !name_ok(name, true) {
                return Err(err("bad metric name"));
            }
            if current.as_deref() != Some(name) {
                if finished.contains(&name.to_string()) {
                    return Err(err("family seen twice"));
                }
                if let Some(c) = current.take() {
                    finished.push(c);
                }
                current = Some(name.to_string());
            }
            match kw {
                "HELP" => {
                    if helped.insert(name.into(), ()).is_some() {
                        return Err(err("HELP twice"));
                    }
                }
                "TYPE" => {
                    let t = parts.next().unwrap_or("");
                    if !["gauge", "counter", "untyped", "summary", "histogram"].contains(&t) {
                        return Err(err("bad type"));
                    }
                    if typed.insert(name.into(), t.into()).is_some() {
                        return Err(err("TYPE twice"));
                    }
                    if out.iter().any(|s: &Sample| s.0 == name) {
                        return Err(err("TYPE after samples"));
                    }
                }
                _ => return Err(err("unknown comment")),
            }
            continue;
        }
        if line.is_empty() {
            return Err(err("empty line"));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !name_ok(name, true) {
            return Err(err("bad metric name"));
        }
        if current.as_deref() != Some(name) {
            return Err(err("sample outside its family"));
        }
        if typed.get(name).map(String::as_str) != Some("gauge") {
            return Err(err("no TYPE gauge before the sample"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find('=').ok_or_else(|| err("label without ="))?;
                let lname = &r[..eq];
                if !name_ok(lname, false) || lname.starts_with("__") {
                    return Err(err("bad label name"));
                }
                r = &r[eq + 1..];
                let Some(body) = r.strip_prefix('"') else {
                    return Err(err("label value not quoted"));
                };
                let mut value = String::new();
                let mut chars = body.char_indices();
                let end = loop {
                    match chars.next() {
                        None => return Err(err("unterminated label value")),
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            _ => return Err(err("bad escape")),
                        },
                        Some((_, '\n')) => return Err(err("raw newline")),
                        Some((_, c)) => value.push(c),
                    }
                };
                if labels.insert(lname.to_string(), value).is_some() {
                    return Err(err("label twice"));
                }
                r = &body[end + 1..];
                if let Some(after) = r.strip_prefix(',') {
                    r = after;
                } else if !r.starts_with('}') {
                    return Err(err("expected , or }"));
                }
            }
            rest = r;
        }
        let Some(value) = rest.strip_prefix(' ') else {
            return Err(err("no space before the value"));
        };
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| err("bad value"))?,
        };
        if out.iter().any(|s: &Sample| s.0 == name && s.1 == labels) {
            return Err(err("duplicate series"));
        }
        out.push((name.to_string(), labels, v));
    }
    Ok(out)
}

#[test]
fn the_test_parser_refuses_what_promtool_refuses() {
    let ok = "# HELP a_b x\n# TYPE a_b gauge\na_b{dir=\"q\\\"\\\\\\n\"} 1.5\n";
    let s = parse_exposition(ok).unwrap();
    assert_eq!(s[0].1["dir"], "q\"\\\n");
    for bad in [
        "a 1\n",
        "# TYPE a gauge\na{x=\"1} 2\n",
        "# TYPE a gauge\na{x=\"\\t\"} 2\n",
        "# TYPE a gauge\na{1x=\"\"} 2\n",
        "# TYPE a gauge\na 1\na 2\n",
        "# TYPE a gauge\na x\n",
        "# TYPE a gauge\na 1",
        "# TYPE a gauge\n# TYPE b gauge\nb 1\n# TYPE a gauge\n",
        "# TYPE a gauge\na{x=\"1\"}2\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "{bad:?}");
    }
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.0 == name
                && labels
                    .iter()
                    .all(|(k, v)| s.1.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
        .2
}

#[test]
fn prometheus_output_parses_and_agrees_with_json() {
    let env = TestEnv::new();
    mixed_cache(&env);
    // A directory name that needs every label escape.
    let odd = env.root.path().join("ca\"che\\x\ny");
    fs::rename(&env.cache, &odd).unwrap();
    let dir = odd.to_str().unwrap().to_string();
    let log = env.root.path().join("l.log");
    fs::write(
        &log,
        [
            ds4log::stored(8192, "evict", "token-text", 20 << 20, 800.0),
            ds4log::evicted(8192, 0, 20 << 20, "/c/ab.kv"),
            ds4log::hit(600, 12.5, false, "/c/ab.kv"),
        ]
        .join("\n"),
    )
    .unwrap();
    let now = now_arg();
    let args = ["stats", "--now", &now, "--log", log.to_str().unwrap()];
    let text =
        String::from_utf8(env.stdout(&[&args[..], &["--prometheus", &dir]].concat())).unwrap();
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let v = env.json(&[&args[..], &["--json", &dir]].concat());
    let d = &v["dirs"][0];
    assert!(samples.iter().all(|s| s.0.starts_with("kvc_")));
    assert_eq!(
        value(&samples, "kvc_total_bytes", &[("dir", &dir)]),
        d["total_bytes"].as_f64().unwrap()
    );
    for r in d["by_reason"].as_array().unwrap() {
        let l = r["label"].as_str().unwrap();
        assert_eq!(
            value(
                &samples,
                "kvc_checkpoint_bytes",
                &[("dir", &dir), ("reason", l)]
            ),
            r["bytes"].as_f64().unwrap()
        );
    }
    for r in d["reclaimable"].as_array().unwrap() {
        let k = r["kind"].as_str().unwrap();
        assert_eq!(
            value(
                &samples,
                "kvc_reclaimable_bytes",
                &[("dir", &dir), ("kind", k)]
            ),
            r["bytes"].as_f64().unwrap()
        );
    }
    assert_eq!(
        value(&samples, "kvc_kept_apart_bytes", &[("kind", "foreign")]),
        d["foreign"]["bytes"].as_f64().unwrap()
    );
    // Entry kinds add up to the total.
    let sum: f64 = samples
        .iter()
        .filter(|s| s.0 == "kvc_entry_bytes")
        .map(|s| s.2)
        .sum();
    assert_eq!(sum, d["total_bytes"].as_f64().unwrap());
    assert_eq!(value(&samples, "kvc_log_hits", &[]), 1.0);
    assert_eq!(value(&samples, "kvc_log_evicted_unread", &[]), 1.0);
    assert_eq!(
        value(
            &samples,
            "kvc_log_stored_evicted_unread_bytes",
            &[("reason", "evict")]
        ),
        (20u64 << 20) as f64
    );

    // --prometheus-file: the same text, atomically, 0644, nothing printed.
    let path = env.root.path().join("kvc.prom");
    let out = env
        .kvc()
        .args(args)
        .arg("--prometheus-file")
        .arg(&path)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let names: Vec<String> = fs::read_dir(env.root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
    // --json and --prometheus exclude each other.
    env.kvc()
        .args(["stats", "--json", "--prometheus", &dir])
        .assert()
        .code(2);
}

// --- engine logs ---

fn log_stats(env: &TestEnv, lines: &[String], extra: &[&str]) -> Value {
    let path = env.root.path().join("server.log");
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let mut args = vec!["--now", "1786060800", "--log", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    stats_json(env, &args)["log"].clone()
}

#[test]
fn log_lines_of_every_kind_are_read() {
    let env = TestEnv::new();
    let key_a = "a".repeat(40);
    let key_b = "b".repeat(40);
    let path_a = format!("/var/cache/ds4/{key_a}.kv");
    let path_b = format!("/var/cache/ds4/{key_b}.kv");
    let d1 = ds4log::stamp(8, 1, "10:00:00");
    let d2 = ds4log::stamp(8, 2, "11:30:15");
    let mut lines = vec![
        format!("{d1}{}", ds4log::opened("/var/cache/ds4", 4096)),
        format!(
            "{d1}{}",
            ds4log::stored(8192, "cold", "token-text", 400 << 20, 850.0)
        ),
        format!(
            "{d1}{}",
            ds4log::stored(4096, "evict", "token-text", 200 << 20, 400.0)
        ),
        // A fork that logs the key: tied by it.
        format!(
            "{d1}{}",
            ds4log::stored(1000, "continued", &key_b, 50 << 20, 100.0)
        ),
        format!("{d1}{}", ds4log::hit(8192, 120.4, false, &path_a)),
        format!("{d1}{}", ds4log::hit_respproto(600, &path_a)),
        format!("{d2}{}", ds4log::hit(30000, 99.0, true, &path_a)),
        // Evicted unread: ties to the evict store by tokens and size.
        format!("{d2}{}", ds4log::evicted(4096, 0, 200 << 20, &path_a)),
        format!("{d2}{}", ds4log::evicted(1000, 2, 50 << 20, &path_b)),
        // Stored before the window we read: unmatched.
        format!("{d2}{}", ds4log::evicted(777, 0, 1 << 20, &path_a)),
        format!("{d2}{}", ds4log::load_failed(&path_a)),
        format!("{d2}{}", ds4log::discarded_corrupt(&path_a)),
        format!("{d2}{}", ds4log::discarded_prefill(&path_a)),
        format!("{d2}{}", ds4log::replaced(&path_b)),
        format!("{d2}{}", ds4log::live_miss()),
        // Not the cache's lines at all.
        format!("{d2}ds4-server: request 17 done in 3.2 s"),
        "random noise".into(),
    ];
    lines.extend(ds4log::skips().iter().map(|l| format!("{d2}{l}")));
    lines.extend(
        ds4log::store_failures(&path_a)
            .iter()
            .map(|l| format!("{d2}{l}")),
    );
    // Unknown and malformed kv-cache lines: counted, never guessed.
    lines.push(format!("{d2}ds4-server: kv cache frobnicated everything"));
    lines.push(format!(
        "{d2}ds4-server: kv cache stored tokens=abc reason=cold size=x MiB"
    ));
    lines.push(format!(
        "{d2}ds4-server: kv cache evicted reason=disk-cache-full tokens=5 hits=0 file=/x"
    ));
    let log = log_stats(&env, &lines, &[]);
    assert_eq!(log["lines"], lines.len());
    assert_eq!(log["unparsed"], 3, "{log:#}");
    assert_eq!(log["unparsed_samples"].as_array().unwrap().len(), 3);
    let t = &log["total"];
    assert_eq!(t["hits"], 3);
    assert_eq!(t["hits_consumed"], 1);
    assert!((t["hit_load_ms"].as_f64().unwrap() - (120.4 + 3.0 + 99.0)).abs() < 1e-9);
    assert_eq!(t["stored"]["cold"]["count"], 1);
    assert_eq!(t["stored"]["cold"]["bytes"], 400u64 << 20);
    assert!((t["stored"]["cold"]["save_ms"].as_f64().unwrap() - 850.0).abs() < 1e-9);
    assert_eq!(t["stored"]["evict"]["bytes"], 200u64 << 20);
    assert_eq!(t["written_bytes"], (650u64) << 20);
    assert_eq!(t["evicted"]["count"], 3);
    assert_eq!(t["evicted"]["hits"], 2);
    assert_eq!(t["evicted"]["unread"]["count"], 2);
    assert_eq!(t["evicted"]["unread"]["bytes"], (201u64) << 20);
    assert_eq!(t["evicted"]["by_hits"]["0"]["count"], 2);
    assert_eq!(t["evicted"]["by_hits"]["2-4"]["bytes"], 50u64 << 20);
    let skipped: BTreeMap<String, u64> = serde_json::from_value(t["skipped"].clone()).unwrap();
    assert_eq!(
        skipped,
        BTreeMap::from([
            ("live-moved".into(), 1),
            ("text-too-large".into(), 1),
            ("tool-map-overflow".into(), 1),
            ("staging-failed".into(), 1),
            ("over-budget-estimated".into(), 1),
            ("over-budget-final".into(), 1),
        ])
    );
    assert_eq!(t["load_failed"], 1);
    assert_eq!(t["discarded_corrupt"], 1);
    assert_eq!(t["discarded_prefill_failed"], 1);
    assert_eq!(t["store_failed"], 2);
    assert_eq!(t["replaced_incompatible"], 1);
    // Per day.
    assert_eq!(log["days"]["2026-08-01"]["hits"], 2);
    assert_eq!(log["days"]["2026-08-01"]["written_bytes"], (650u64) << 20);
    assert_eq!(log["days"]["2026-08-02"]["evicted"]["count"], 3);
    assert_eq!(log["first_day"], "2026-08-01");
    assert_eq!(log["last_day"], "2026-08-02");
    // Stores followed to their evictions.
    let f = &log["followed"];
    assert_eq!(f["evicted_unread"]["evict"]["count"], 1);
    assert_eq!(f["evicted_unread"]["evict"]["bytes"], 200u64 << 20);
    assert_eq!(f["evicted_after_hits"]["continued"]["count"], 1);
    assert_eq!(f["matched_by_key"], 1);
    assert_eq!(f["matched_by_shape"], 1);
    assert_eq!(f["unmatched_evictions"], 1);
    assert_eq!(f["not_evicted"], 1);
    assert_eq!(log["budgets"][0]["budget"], 4096u64 << 20);
}

#[test]
fn prefixes_colours_and_undated_lines() {
    let env = TestEnv::new();
    let hit = ds4log::hit(100, 1.0, false, "/c/x.kv");
    let lines = vec![
        // Before any time stamp: undated.
        hit.clone(),
        format!("2026-08-03T09:00:00.123+02:00 gpu1 ds4-server[42]: {hit}"),
        // No stamp of its own: the day of the line before.
        format!(
            "ds4-server: \x1b[33m{}\x1b[0m",
            &hit["ds4-server: ".len()..]
        ),
        format!("Aug  4 23:59:59 gpu1 ds4-server[42]: {hit}"),
        format!("[2026-08-05 00:00:01] {hit}"),
    ];
    let log = log_stats(&env, &lines, &[]);
    assert_eq!(log["unparsed"], 0, "{log:#}");
    assert_eq!(log["undated"], 1);
    assert_eq!(log["carried_day"], 1);
    let days: BTreeMap<String, Value> = serde_json::from_value(log["days"].clone()).unwrap();
    let hits: Vec<(String, u64)> = days
        .iter()
        .map(|(d, a)| (d.clone(), a["hits"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        hits,
        [
            ("2026-08-03".into(), 2),
            ("2026-08-04".into(), 1),
            ("2026-08-05".into(), 1),
            ("undated".into(), 1)
        ]
    );
    // A window: undated lines are outside it.
    let log = log_stats(
        &env,
        &lines,
        &["--since", "2026-08-04", "--until", "2026-08-04"],
    );
    assert_eq!(log["total"]["hits"], 1);
    assert_eq!(log["outside_window"], 4);
    let log = log_stats(&env, &lines, &["--since", "2026-08-04T23:59"]);
    assert_eq!(log["total"]["hits"], 2);
    // A bad bound is a usage error.
    let path = env.root.path().join("server.log");
    env.kvc()
        .args(["stats", "--since", "last tuesday", "--log"])
        .arg(&path)
        .arg(&env.cache)
        .assert()
        .code(2);
}

#[test]
fn logs_from_standard_input_and_several_files() {
    let env = TestEnv::new();
    let a = env.root.path().join("a.log");
    fs::write(&a, ds4log::hit(1, 1.0, false, "/x.kv") + "\n").unwrap();
    let out = env
        .kvc()
        .args(["stats", "--json", "--log", "-", "--log"])
        .arg(&a)
        .arg(&env.cache)
        .write_stdin(ds4log::hit(2, 2.0, false, "/y.kv") + "\n" + &ds4log::skips()[0] + "\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["log"]["total"]["hits"], 2);
    assert_eq!(v["log"]["lines"], 3);
    // The human screen shows the log section.
    let out = env
        .kvc()
        .args(["stats", "--log"])
        .arg(&a)
        .arg(&env.cache)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("engine log: 1 lines, 1 kv-cache lines"),
        "{text}"
    );
    assert!(text.contains("stored then evicted without a hit"), "{text}");
}

#[test]
fn escape_sequences_in_logs_and_names_never_reach_the_screen() {
    let env = TestEnv::new();
    env.add(&Ckpt::new(chat("x")).mainline());
    let lines = [
        "ds4-server: kv cache \x1b]0;owned\x07 weird \u{202e}line".to_string(),
        ds4log::opened("/tmp/\x1b[2Jevil", 5),
    ];
    let path = env.root.path().join("server.log");
    fs::write(&path, lines.join("\n")).unwrap();
    for json in [false, true] {
        let mut c = env.kvc();
        c.arg("stats").arg("--log").arg(&path).arg(&env.cache);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text}"
        );
    }
}

#[test]
fn several_directories_and_their_grand_total() {
    let a = TestEnv::new();
    a.add(&Ckpt::new(chat("one")).mainline());
    let b = TestEnv::new();
    b.add(&Ckpt::new(chat("two")).mainline());
    b.add(&Ckpt::new(chat("three")).mainline());
    let v = a.json(&["stats", "--json", &a.cache_str(), &b.cache_str()]);
    assert_eq!(v["dirs"].as_array().unwrap().len(), 2);
    assert_eq!(v["version"], 1);
    assert_eq!(v["totals"]["checkpoints"]["count"], 3);
    assert_eq!(
        v["totals"]["total_bytes"].as_u64().unwrap(),
        a.cache_bytes() + b.cache_bytes()
    );
}
