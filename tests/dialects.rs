//! One test per row of FORMAT.md §9, through the real binary: what `ls`,
//! `show` and `verify` make of each dialect, and that kvc judges only what
//! it has identified. Files are built byte by byte in tests/common.

mod common;

use common::dialects::*;
use common::*;
use serde_json::Value;

fn ls(env: &TestEnv, extra: &[&str]) -> Value {
    let dir = env.cache.to_str().unwrap().to_string();
    let now = NOW.to_string();
    let mut args = vec!["ls", "--json", "--now", &now];
    args.extend_from_slice(extra);
    args.push(&dir);
    env.json(&args)
}

fn dir0(v: &Value) -> &Value {
    &v["dirs"][0]
}

fn checkpoint<'a>(v: &'a Value, key: &str) -> &'a Value {
    dir0(v)["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("no checkpoint {key} in {v:#}"))
}

fn foreign<'a>(v: &'a Value, file_prefix: &str) -> &'a Value {
    dir0(v)["foreign"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"].as_str().unwrap().starts_with(file_prefix))
        .unwrap_or_else(|| panic!("no foreign {file_prefix} in {v:#}"))
}

/// `kvc verify --json DIR`: every finding as `(code, severity)`, and the
/// exit code.
fn verify(env: &TestEnv, extra: &[&str]) -> (i32, Vec<(String, String)>) {
    let dir = env.cache.to_str().unwrap().to_string();
    let mut args = vec!["verify", "--json"];
    args.extend_from_slice(extra);
    args.push(&dir);
    let out = env.kvc().args(&args).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found = Vec::new();
    for f in v["files"].as_array().unwrap() {
        for x in f["findings"].as_array().unwrap() {
            found.push((
                x["code"].as_str().unwrap().to_string(),
                x["severity"].as_str().unwrap().to_string(),
            ));
        }
    }
    (out.status.code().unwrap(), found)
}

fn errors(found: &[(String, String)]) -> Vec<&str> {
    found
        .iter()
        .filter(|(_, s)| s == "error")
        .map(|(c, _)| c.as_str())
        .collect()
}

#[test]
fn d1_pre_abi_ds4_is_read_fully_and_never_loaded_by_mainline() {
    let env = TestEnv::new();
    let old = Ckpt::new(chat("written before the ABI byte"));
    let new = Ckpt::new(chat("written by mainline")).mainline();
    env.add(&old);
    env.add(&new);
    let v = ls(&env, &[]);
    assert_eq!(dir0(&v)["engine"]["engine"], "ds4");
    let d1 = checkpoint(&v, &old.key());
    assert_eq!(d1["dialect"], "D1");
    assert_eq!(d1["loadable"], false);
    assert_eq!(d1["not_loaded"], "payload ABI 0");
    assert_eq!(d1["evict_rank"], Value::Null);
    assert_eq!(
        dir0(&v)["never_loaded"]["bytes"],
        std::fs::metadata(env.cache.join(old.file_name()))
            .unwrap()
            .len()
    );
    // Read fully: a DSV4 v1 body is judged, and is healthy.
    let (code, found) = verify(&env, &[]);
    assert!(errors(&found).is_empty(), "{found:?}");
    assert_eq!(code, 0);
    // Alone, an old cache is read as ds4 up to 2026-05-25's, which loads it.
    let alone = TestEnv::new();
    alone.add(&old);
    let v = ls(&alone, &[]);
    assert_eq!(dir0(&v)["engine"]["engine"], "ds4-classic");
    assert_eq!(checkpoint(&v, &old.key())["loadable"], true);
    assert_eq!(checkpoint(&v, &old.key())["evict_rank"], 1);
}

#[test]
fn d3_mainline_with_dsv4_v2_and_model_names() {
    let env = TestEnv::new();
    let mut pro = Ckpt::new(chat("a PRO checkpoint")).mainline();
    pro.model_id = 1;
    let flash = Ckpt::new(chat("a Flash checkpoint")).mainline();
    env.add(&flash);
    let v = ls(&env, &[]);
    let c = checkpoint(&v, &flash.key());
    assert_eq!(c["dialect"], "D3");
    assert_eq!(c["model"], "flash");
    assert_eq!(c["loadable"], true);
    assert_eq!(dir0(&v)["policy"], "ds4");
    assert_eq!(dir0(&v)["policy_from"], "engine");
    let (code, found) = verify(&env, &["--deep"]);
    assert_eq!(code, 0, "{found:?}");
    // The show view names the model for a model id mainline defines.
    let show = env.json(&[
        "show",
        "--json",
        "--dir",
        env.cache.to_str().unwrap(),
        &flash.key(),
    ]);
    assert_eq!(show["dialect"], "D3");
    assert_eq!(show["payload"]["kind"], "dsv4");
    assert_eq!(show["payload"]["dsv4"]["version"], 2);
    assert_eq!(pro.model_id, 1);
}

#[test]
fn d4_pulsar_reason_seven_is_sys_prefix() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("pulsar's system prefix"))
        .mainline()
        .reason(7);
    env.add(&c);
    let v = ls(&env, &[]);
    let j = checkpoint(&v, &c.key());
    assert_eq!(j["dialect"], "D4");
    assert_eq!(j["reason"], "sys-prefix");
    assert_eq!(j["warnings"], Value::Array(vec![]));
    // The same reason on a pre-ABI file is no dialect's: a warning.
    let old = TestEnv::new();
    let o = Ckpt::new(chat("reason seven, old file")).reason(7);
    old.add(&o);
    let v = ls(&old, &[]);
    assert_eq!(
        checkpoint(&v, &o.key())["warnings"][0]["code"],
        "unknown-reason"
    );
}

#[test]
fn d5_d6_dgx_spark_forks_have_opaque_payloads() {
    for (abi, id) in [(3u8, "D5"), (4u8, "D6")] {
        let env = TestEnv::new();
        let mut c = Ckpt::new(chat("a DGX Spark fork")).opaque_payload(333);
        c.payload_abi = abi;
        env.add(&c);
        let v = ls(&env, &[]);
        assert_eq!(checkpoint(&v, &c.key())["dialect"], id);
        let (code, found) = verify(&env, &["--deep"]);
        assert!(errors(&found).is_empty(), "{id}: {found:?}");
        assert_eq!(code, 0);
        // Envelope still judged: a renamed file is caught.
        let bad = TestEnv::new();
        let mut renamed = c.clone();
        renamed.name = Some(format!("{}.kv", sha1_hex(b"another text")));
        bad.add(&renamed);
        let (code, found) = verify(&bad, &[]);
        assert_eq!(errors(&found), ["key-mismatch"], "{id}");
        assert_eq!(code, 1);
    }
}

#[test]
fn d8_lz4_payloads_are_foreign_and_left_alone() {
    let env = TestEnv::new();
    let (name, bytes) = d8(&chat("compressed payload"), 2, 2);
    env.add_raw(&name, &bytes);
    // Version 1 with the codec byte set is the same dialect.
    let (name1, bytes1) = d8(&chat("compressed, version 1"), 1, 2);
    env.add_raw(&name1, &bytes1);
    let v = ls(&env, &[]);
    assert_eq!(foreign(&v, &name[..8])["dialect"], "D8");
    assert_eq!(foreign(&v, &name1[..8])["dialect"], "D8");
    assert!(foreign(&v, &name[..8])["what"]
        .as_str()
        .unwrap()
        .contains("LZ4"));
    let (code, found) = verify(&env, &[]);
    assert_eq!(code, 0);
    assert!(found.iter().all(|(c, s)| c == "foreign" && s == "warning"));
    assert_eq!(found.len(), 2);
    // The same bytes under another name are no D8 file: still foreign,
    // never an error.
    let renamed = TestEnv::new();
    renamed.add_raw(&format!("{}.kv", sha1_hex(b"x")), &bytes);
    let (code, found) = verify(&renamed, &[]);
    assert_eq!((code, errors(&found).len()), (0, 0), "{found:?}");
}

#[test]
fn d11_fingerprint_is_read_as_mainline_and_shown() {
    let env = TestEnv::new();
    let mut c = Ckpt::new(chat("fingerprinted weights")).mainline();
    c.reserved = [0xab, 0xcd, 0xef];
    env.add(&c);
    let v = ls(&env, &[]);
    let j = checkpoint(&v, &c.key());
    assert_eq!(j["dialect"], "D11");
    assert_eq!(j["fingerprint"], "abcdef");
    assert_eq!(j["loadable"], true);
    let (code, found) = verify(&env, &["--deep"]);
    assert_eq!(code, 0, "{found:?}");
}

#[test]
fn d13_seventy_two_byte_header_is_foreign() {
    let env = TestEnv::new();
    let (name, bytes) = d13(&chat("a 72-byte header"));
    env.add_raw(&name, &bytes);
    let v = ls(&env, &[]);
    assert_eq!(foreign(&v, &name[..8])["dialect"], "D13");
    let (code, found) = verify(&env, &[]);
    assert_eq!(code, 0);
    assert_eq!(found, [("foreign".to_string(), "warning".to_string())]);
}

#[test]
fn d14_d15_tail_indexed_files_are_foreign_with_their_companions() {
    let env = TestEnv::new();
    let (n14, b14) = tail_indexed(b"TAIL", b"fourteen");
    let (n15, b15) = tail_indexed(b"TAL2", b"fifteen");
    env.add_raw(&n14, &b14);
    env.add_raw(&n15, &b15);
    let companion = n14.replace(".kv", ".ckpt");
    env.add_raw(&companion, b"CKPT\0\0\0\0");
    let v = ls(&env, &[]);
    let f14 = foreign(&v, &n14[..8]);
    assert_eq!(f14["dialect"], "D14");
    assert_eq!(f14["companions"], serde_json::json!([companion]));
    assert_eq!(f14["size"], (b14.len() + 8) as u64);
    assert_eq!(foreign(&v, &n15[..8])["dialect"], "D15");
    // The companion belongs to its .kv: not a stray.
    assert_eq!(dir0(&v)["strays"], serde_json::json!([]));
    let (code, found) = verify(&env, &["--all"]);
    assert_eq!(code, 0, "{found:?}");
    assert!(found.iter().all(|(c, _)| c == "foreign"), "{found:?}");
}

#[test]
fn d16_d17_block_stores_are_strays_of_a_known_kind() {
    let env = TestEnv::new();
    env.add_raw("0001.kvs", &d16_chain());
    env.add_raw("0001.kvb", &d17_block());
    env.add_raw("0002.kvs", b"not a chain");
    let v = ls(&env, &[]);
    let strays = dir0(&v)["strays"].as_array().unwrap();
    let known = |f: &str| strays.iter().find(|s| s["file"] == f).unwrap()["known"].clone();
    assert_eq!(known("0001.kvs"), "D16");
    assert_eq!(known("0001.kvb"), "D17");
    assert_eq!(known("0002.kvs"), Value::Null);
    // Under a checkpoint name, another store's file is foreign, not corrupt.
    let named = TestEnv::new();
    named.add_raw(&format!("{}.kv", sha1_hex(b"chain")), &d16_chain());
    let v = ls(&named, &[]);
    assert_eq!(dir0(&v)["foreign"][0]["dialect"], "D16");
    let (code, found) = verify(&named, &[]);
    assert_eq!((code, errors(&found).len()), (0, 0), "{found:?}");
}

#[test]
fn d20_hanzo_spills_are_read_as_hanzo_reads_them() {
    let env = TestEnv::new();
    let spill = d20(&[1, 2, 3, 4, 5]);
    let mut empty = d20(&[]);
    empty.text = b"no tokens yet".to_vec();
    env.add(&spill);
    env.add(&empty);
    let v = ls(&env, &[]);
    assert_eq!(dir0(&v)["engine"]["engine"], "hanzo");
    assert_eq!(dir0(&v)["policy"], "lru");
    let s = checkpoint(&v, &spill.key());
    assert_eq!(s["dialect"], "D20");
    // hanzo-engine never reads the quant byte: no bad-quant noise.
    assert_eq!(s["warnings"], Value::Array(vec![]));
    // tokens = 0 is a valid hanzo file.
    assert_eq!(checkpoint(&v, &empty.key())["tokens"], 0);
    let (code, found) = verify(&env, &[]);
    assert!(errors(&found).is_empty(), "{found:?}");
    assert_eq!(code, 0);
    // Told the directory is ds4's, the same bytes are D1: zero tokens is
    // then an error and quant 0 a warning.
    let v = ls(&env, &["--engine", "ds4-classic"]);
    assert_eq!(dir0(&v)["engine"]["how"], "given");
    let as_ds4 = checkpoint(&v, &spill.key());
    assert_eq!(as_ds4["dialect"], "D1");
    assert_eq!(as_ds4["warnings"][0]["code"], "bad-quant");
    assert_eq!(dir0(&v)["invalid"][0]["code"], "zero-tokens");
}

#[test]
fn unknown_versions_and_abis_are_foreign() {
    let env = TestEnv::new();
    let mut v9 = Ckpt::new(chat("version nine"));
    v9.version = 9;
    let mut abi7 = Ckpt::new(chat("payload ABI seven"));
    abi7.payload_abi = 7;
    env.add(&v9);
    env.add(&abi7);
    let v = ls(&env, &[]);
    assert_eq!(foreign(&v, &v9.key()[..8])["dialect"], Value::Null);
    assert_eq!(foreign(&v, &v9.key()[..8])["version"], 9);
    assert_eq!(foreign(&v, &abi7.key()[..8])["payload_abi"], 7);
    assert_eq!(dir0(&v)["checkpoints"], serde_json::json!([]));
    let (code, found) = verify(&env, &[]);
    assert_eq!(code, 0);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|(c, s)| c == "foreign" && s == "warning"));
}

#[test]
fn shared_samples_of_todays_engines_verify_clean() {
    for sample in ["mainline", "agent-current", "foreign"] {
        let env = TestEnv::with_sample(sample);
        for deep in [&[][..], &["--deep"][..]] {
            let (code, found) = verify(&env, deep);
            assert!(errors(&found).is_empty(), "{sample} {deep:?}: {found:?}");
            assert_eq!(code, 0, "{sample}");
        }
    }
}
