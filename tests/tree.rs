//! `kvc tree`: the prefix forest on chains, forks, equal texts, empty
//! texts and texts across the 256-byte index boundaries, as JSON, a table
//! and Graphviz DOT.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

fn tree(env: &TestEnv, extra: &[&str]) -> Value {
    let now = NOW.to_string();
    let mut args = vec!["tree", "--json", "--now", &now];
    args.extend_from_slice(extra);
    let cache = env.cache_str();
    args.push(&cache);
    env.json(&args)
}

/// key → (parent key, link, depth) of every node.
fn parents(v: &Value) -> BTreeMap<String, (Option<String>, String, u64)> {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["key"].as_str().unwrap().to_string(),
                (
                    n["parent"].as_str().map(str::to_string),
                    n["link"].as_str().unwrap().to_string(),
                    n["depth"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn extend(c: &Ckpt, more: &[u8]) -> Vec<u8> {
    let mut t = c.text.clone();
    t.extend_from_slice(more);
    t
}

fn node<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == key)
        .unwrap_or_else(|| panic!("no node {key}"))
}

#[test]
fn a_chain_hangs_each_text_under_its_longest_stored_prefix() {
    let env = TestEnv::new();
    let a = Ckpt::new(chat("start")).reason(REASON_COLD).mainline();
    // Across the 256-byte boundaries: 300 more bytes, then 700.
    let b = Ckpt::new(extend(&a, &[b'x'; 300]))
        .reason(REASON_CONTINUED)
        .mainline();
    let c = Ckpt::new(extend(&b, &[b'y'; 700]))
        .reason(REASON_CONTINUED)
        .mainline();
    let d = Ckpt::new(extend(&c, b"!")).reason(REASON_EVICT).mainline();
    for x in [&a, &b, &c, &d] {
        env.add(x);
    }
    let v = tree(&env, &[]);
    let p = parents(&v);
    assert_eq!(p[&a.key()], (None, "root".into(), 0));
    assert_eq!(p[&b.key()], (Some(a.key()), "prefix".into(), 1));
    assert_eq!(p[&c.key()], (Some(b.key()), "prefix".into(), 2));
    assert_eq!(p[&d.key()], (Some(c.key()), "prefix".into(), 3));
    let chains = v["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 1);
    let size = |c: &Ckpt| c.bytes().len() as u64;
    assert_eq!(chains[0]["root"], a.key());
    assert_eq!(chains[0]["checkpoints"], 4);
    assert_eq!(chains[0]["depth"], 3);
    assert_eq!(chains[0]["leaves"], 1);
    assert_eq!(chains[0]["covered"], 3);
    assert_eq!(chains[0]["covered_bytes"], size(&a) + size(&b) + size(&c));
    assert_eq!(v["covered_bytes"], chains[0]["covered_bytes"]);
    // Marks per node: b and c are continued waypoints a longer one
    // supersedes (ds4's test at rest).
    assert_eq!(node(&v, &b.key())["superseded"], true);
    assert_eq!(node(&v, &c.key())["superseded"], true);
    assert_eq!(node(&v, &a.key())["superseded"], false);
    assert_eq!(node(&v, &d.key())["covered"], false);
    assert_eq!(node(&v, &a.key())["title"], "start");
    assert_eq!(node(&v, &d.key())["tokens"], 600);
    assert_eq!(node(&v, &d.key())["reason"], "evict");
    // Depth first: the order of the chain.
    let keys: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [a.key(), b.key(), c.key(), d.key()]);
}

#[test]
fn forks_models_and_lone_checkpoints() {
    let env = TestEnv::new();
    let a = Ckpt::new(chat("fork point")).mainline();
    let left = Ckpt::new(extend(&a, b" left")).mainline();
    let right = Ckpt::new(extend(&a, b" right, longer")).mainline();
    let right2 = Ckpt::new(extend(&right, b" and on")).mainline();
    // The same prefix under another model: unrelated.
    let mut other = Ckpt::new(extend(&a, b" pro")).mainline();
    other.model_id = 1;
    let lone = Ckpt::new(chat("nothing in common")).mainline();
    for x in [&a, &left, &right, &right2, &other, &lone] {
        env.add(x);
    }
    let v = tree(&env, &[]);
    let p = parents(&v);
    assert_eq!(p[&left.key()].0, Some(a.key()));
    assert_eq!(p[&right.key()].0, Some(a.key()));
    assert_eq!(p[&right2.key()].0, Some(right.key()));
    assert_eq!(p[&other.key()].0, None);
    assert_eq!(p[&lone.key()].0, None);
    let chains = v["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 3);
    // Largest chain first.
    assert_eq!(chains[0]["root"], a.key());
    assert_eq!(chains[0]["checkpoints"], 4);
    assert_eq!(chains[0]["leaves"], 2);
    assert_eq!(chains[0]["covered"], 2);
    // Children in text-length order.
    let keys: Vec<&str> = v["nodes"].as_array().unwrap()[..4]
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [a.key(), left.key(), right.key(), right2.key()]);
}

#[test]
fn equal_texts_and_empty_texts() {
    let env = TestEnv::new();
    let text = chat("the same words");
    let a = Ckpt::new(text.clone()).mainline();
    // sysprompt.kv is named by no hash: it can hold any text, this one too.
    let mut same = Ckpt::new(text.clone())
        .reason(REASON_AGENT_SYSTEM)
        .mainline();
    same.name = Some("sysprompt.kv".into());
    let longer = Ckpt::new(extend(&a, b" more")).mainline();
    // Empty texts: nobody's prefix, nobody's child.
    let empty = Ckpt::new(Vec::new()).mainline();
    let mut empty2 = Ckpt::new(Vec::new()).mainline();
    empty2.model_id = 1;
    empty2.name = Some(format!("{}.kv", "e".repeat(40)));
    for x in [&a, &same, &longer, &empty, &empty2] {
        env.add(x);
    }
    let v = tree(&env, &[]);
    let p = parents(&v);
    assert_eq!(p[&a.key()], (None, "root".into(), 0));
    assert_eq!(p["sysprompt"], (Some(a.key()), "equal".into(), 1));
    assert_eq!(p[&longer.key()], (Some(a.key()), "prefix".into(), 1));
    assert_eq!(p[&empty.key()], (None, "root".into(), 0));
    assert_eq!(p[&"e".repeat(40)], (None, "root".into(), 0));
    assert_eq!(node(&v, &a.key())["covered"], true);
    assert_eq!(node(&v, "sysprompt")["covered"], false);
    let chain = &v["chains"][0];
    assert_eq!(chain["checkpoints"], 3);
    assert_eq!(chain["covered_bytes"], a.bytes().len() as u64);
    // The table marks the equal text.
    let now = NOW.to_string();
    let out = String::from_utf8(env.stdout(&["tree", "--now", &now, &env.cache_str()])).unwrap();
    assert!(
        out.contains("└─ sysprompt") || out.contains("├─ sysprompt"),
        "{out}"
    );
    assert!(
        out.contains("5 checkpoints in 3 chains (1 of more than one)"),
        "{out}"
    );
}

#[test]
fn every_checkpoint_is_a_node() {
    let env = TestEnv::with_sample("ds4");
    let v = tree(&env, &["--no-title"]);
    let ls = env.json(&["ls", "--json", "--no-title", &env.cache_str()]);
    assert_eq!(
        v["nodes"].as_array().unwrap().len(),
        ls["dirs"][0]["checkpoints"].as_array().unwrap().len()
    );
    assert!(v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["title"].is_null()));
    let total: u64 = v["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(total, ls["dirs"][0]["checkpoint_bytes"].as_u64().unwrap());
}

#[test]
fn dot_output_and_titles_are_sanitized() {
    let env = TestEnv::new();
    let a = Ckpt::new(chat("evil \x1b[31mred\x1b[0m \"quoted\" \\ back")).mainline();
    let b = Ckpt::new(extend(&a, b" next")).mainline();
    env.add(&a);
    env.add(&b);
    let now = NOW.to_string();
    let dot =
        String::from_utf8(env.stdout(&["tree", "--dot", "--now", &now, &env.cache_str()])).unwrap();
    assert!(dot.starts_with("digraph kvc {"), "{dot}");
    assert!(
        dot.contains(&format!("\"{}\" -> \"{}\";", a.key(), b.key())),
        "{dot}"
    );
    assert!(!dot.contains('\x1b'), "{dot}");
    // Quotes inside a label are escaped: every line has an even number of
    // unescaped quotes.
    for line in dot.lines() {
        let bare = line.replace("\\\\", "").replace("\\\"", "");
        assert_eq!(bare.matches('"').count() % 2, 0, "{line}");
    }
    for json in [true, false] {
        let mut args = vec!["tree", "--now", &now];
        if json {
            args.push("--json");
        }
        let cache = env.cache_str();
        args.push(&cache);
        let out = String::from_utf8(env.stdout(&args)).unwrap();
        assert!(!out.contains('\x1b'), "{out}");
        assert!(out.contains("\\e[31mred"), "{out}");
    }
    env.kvc()
        .args(["tree", "--dot", "--json"])
        .arg(&env.cache)
        .assert()
        .code(2);
}

#[test]
fn a_deep_chain_is_indented_only_so_far() {
    let env = TestEnv::new();
    let mut c = Ckpt::new(chat("deep")).mainline();
    env.add(&c);
    for i in 0..40 {
        c = Ckpt::new(extend(&c, format!(" {i}").as_bytes())).mainline();
        env.add(&c);
    }
    let v = tree(&env, &[]);
    assert_eq!(v["chains"][0]["depth"], 40);
    let now = NOW.to_string();
    let out = String::from_utf8(env.stdout(&["tree", "--now", &now, &env.cache_str()])).unwrap();
    assert!(out.contains("[40] "), "{out}");
    let widest = out.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest < 200, "{widest}");
}
