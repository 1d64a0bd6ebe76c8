//! `kvc evict`: the eviction scenarios an engine must get right, budget
//! arithmetic on real file sizes, and safety next to a live engine.

mod common;

use common::*;
use kvc::evict::{self, EvictOptions, Fate, Hooks, Victim, MAX_REPLANS};
use kvc::Policy;
use serde_json::Value;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

const H: u64 = 21_600;

/// Run `kvc evict <cache> args…` and return its JSON and exit code (0 or 1).
fn evict(env: &TestEnv, args: &[&str]) -> (Value, i32) {
    let out = env
        .kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["--json", "--now", &NOW.to_string()])
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "kvc evict {args:?} exited {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), code)
}

fn plan(env: &TestEnv, args: &[&str]) -> Value {
    let mut a = vec!["--dry-run"];
    a.extend_from_slice(args);
    evict(env, &a).0
}

fn victims(v: &Value) -> Vec<String> {
    v["victims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect()
}

fn size_of(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

fn budget(bytes: u64) -> String {
    format!("{bytes}B")
}

/// Two chat texts of the same length, so sizes differ only where meant.
fn texts() -> (Vec<u8>, Vec<u8>) {
    (chat("question A"), chat("question B"))
}

#[test]
fn fresher_denser_snapshot_is_kept_over_a_sparser_one() {
    let env = TestEnv::new();
    let (ta, tb) = texts();
    // Dense: 2048 tokens in a DSV4 payload. Sparse: 600 tokens in a big
    // opaque payload. The dense one was also used more recently.
    let dense = Ckpt::new(ta).tokens(2048, 32768).hits(1, NOW - 60);
    let sparse = Ckpt::new(tb).opaque_payload(64 * 1024).hits(1, NOW - 3 * H);
    let dense_path = env.add(&dense);
    env.add(&sparse);
    // (LRU, hanzo-engine's, never budgets below 64 MiB: its own tests use
    // files of that size.)
    for policy in ["ds4", "ds4-classic"] {
        let p = plan(
            &env,
            &[
                "--policy",
                policy,
                "--budget",
                &budget(size_of(&dense_path)),
            ],
        );
        assert_eq!(victims(&p), [sparse.key()], "{policy}");
        assert_eq!(p["budget_met"], true);
    }
    let (r, code) = evict(&env, &["--budget", &budget(size_of(&dense_path))]);
    assert_eq!(code, 0);
    assert_eq!(r["victims"][0]["outcome"], "deleted");
    assert!(dense_path.exists());
    assert!(!env.cache.join(sparse.file_name()).exists());
}

#[test]
fn many_hits_decayed_over_fourteen_half_lives_lose_to_a_fresh_entry() {
    let (ta, tb) = texts();
    let fresh = Ckpt::new(tb).hits(1, NOW - 60);
    let b = |env: &TestEnv| budget(size_of(&env.cache.join(fresh.file_name())));

    // 100 hits, last used 14 half-lives ago: 100 / 2^14 < 0.01, so none.
    let env = TestEnv::new();
    let decayed = Ckpt::new(ta.clone()).hits(100, NOW - 14 * H);
    env.add(&decayed);
    env.add(&fresh);
    for policy in ["ds4", "ds4-classic"] {
        let p = plan(&env, &["--policy", policy, "--budget", &b(&env)]);
        assert_eq!(victims(&p), [decayed.key()], "{policy}");
        let s = p["victims"][0]["score"].as_f64().unwrap();
        let density = 600.0 / size_of(&env.cache.join(decayed.file_name())) as f64;
        // cold is an anchor under ds4: ×2, and no hits left at all.
        let anchor = if policy == "ds4" { 2.0 } else { 1.0 };
        assert!((s - anchor * density).abs() < 1e-12, "{policy}: {s}");
    }

    // The same 100 hits one half-life ago still count: the fresh one goes.
    let env = TestEnv::new();
    let recent = Ckpt::new(ta).hits(100, NOW - H);
    env.add(&recent);
    env.add(&fresh);
    let p = plan(&env, &["--budget", &b(&env)]);
    assert_eq!(victims(&p), [fresh.key()]);
}

#[test]
fn equal_decayed_scores_are_broken_by_age() {
    // Whichever of the two is older goes first, whatever the keys say.
    for older_is_a in [true, false] {
        let env = TestEnv::new();
        let (ta, tb) = texts();
        let (ua, ub) = if older_is_a {
            (NOW - 7200, NOW - 3600)
        } else {
            (NOW - 3600, NOW - 7200)
        };
        let a = Ckpt::new(ta).hits(0, ua);
        let b = Ckpt::new(tb).hits(0, ub);
        let pa = env.add(&a);
        env.add(&b);
        let p = plan(&env, &["--budget", &budget(size_of(&pa))]);
        let scores: Vec<f64> = p["victims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["score"].as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), 1);
        let older = if older_is_a { a.key() } else { b.key() };
        assert_eq!(victims(&p), [older]);
        // And the scores really are equal: compare with budget 0.
        let all = plan(&env, &["--budget", "1B"]);
        let s: Vec<f64> = all["victims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["score"].as_f64().unwrap())
            .collect();
        assert_eq!(s[0], s[1]);
    }
}

#[test]
fn a_cold_512_token_entry_goes_before_an_aligned_2048_token_continued_one() {
    let env = TestEnv::new();
    let (ta, tb) = texts();
    let cold = Ckpt::new(ta).tokens(512, 32768).reason(REASON_COLD);
    let cont = Ckpt::new(tb).tokens(2048, 32768).reason(REASON_CONTINUED);
    let pc = env.add(&cold);
    let pn = env.add(&cont);
    // The fixture is what the scenario says: even doubled as an anchor,
    // the short cold checkpoint keeps fewer tokens per byte.
    assert!(2.0 * 512.0 / (size_of(&pc) as f64) < 2048.0 / size_of(&pn) as f64);
    let p = plan(&env, &["--budget", &budget(size_of(&pn))]);
    assert_eq!(victims(&p), [cold.key()]);
    assert_eq!(p["victims"][0]["reason"], "cold");
}

#[test]
fn ds4_doubles_anchors_and_shrinks_superseded_waypoints() {
    let env = TestEnv::new();
    let base = chat("Walk me through the build system.");
    let mut longer = base.clone();
    longer.extend_from_slice(b"The build uses cargo.<\xef\xbd\x9cUser\xef\xbd\x9c>and tests?");
    // A continued waypoint whose text a longer continued checkpoint extends.
    // Mainline files (D3): the directory is ds4 mainline's, whose policy
    // is the default.
    let waypoint = Ckpt::new(base)
        .reason(REASON_CONTINUED)
        .hits(0, NOW - 600)
        .mainline();
    let head = Ckpt::new(longer)
        .tokens(1200, 32768)
        .reason(REASON_CONTINUED)
        .hits(0, NOW - 600)
        .mainline();
    // Same size and use; one an anchor (cold), one not (unknown); the
    // anchor is older, so without anchors it would go first.
    let (ta, tb) = texts();
    let anchor = Ckpt::new(ta)
        .reason(REASON_COLD)
        .hits(0, NOW - 5000)
        .mainline();
    let plain = Ckpt::new(tb)
        .reason(REASON_UNKNOWN)
        .hits(0, NOW - 4000)
        .mainline();
    for c in [&waypoint, &head, &anchor, &plain] {
        env.add(c);
    }
    let pos = |p: &Value, key: &str| victims(p).iter().position(|k| k == key).unwrap();
    let superseded = |p: &Value, key: &str| {
        p["victims"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == key)
            .unwrap()["superseded"]
            .as_bool()
            .unwrap()
    };

    let ds4 = plan(&env, &["--budget", "1B"]);
    assert_eq!(
        (&ds4["policy"], &ds4["policy_from"]),
        (&"ds4".into(), &"engine".into())
    );
    assert_eq!(victims(&ds4).len(), 4);
    assert_eq!(victims(&ds4)[0], waypoint.key());
    assert!(superseded(&ds4, &waypoint.key()));
    assert!(!superseded(&ds4, &head.key()));
    assert!(pos(&ds4, &plain.key()) < pos(&ds4, &anchor.key()));

    let classic = plan(&env, &["--policy", "ds4-classic", "--budget", "1B"]);
    assert!(!superseded(&classic, &waypoint.key()));
    // Equal scores without anchors: the older (the cold one) goes first.
    assert!(pos(&classic, &anchor.key()) < pos(&classic, &plain.key()));
}

#[test]
fn lru_evicts_in_pure_age_order() {
    let env = TestEnv::new();
    // Densities, hits and reasons all over the place; only age counts.
    let cps = [
        Ckpt::new(chat("one"))
            .tokens(2048, 32768)
            .hits(50, NOW - 100),
        Ckpt::new(chat("two"))
            .opaque_payload(30_000)
            .hits(0, NOW - 50),
        Ckpt::new(chat("three"))
            .reason(REASON_SHUTDOWN)
            .hits(9, NOW - 400),
        Ckpt::new(chat("four"))
            .reason(REASON_CONTINUED)
            .hits(1, NOW - 200),
        // Never used: its creation time counts.
        Ckpt::new(chat("five")).hits(0, 0),
    ];
    for c in &cps {
        env.add(c);
    }
    // hanzo-engine's 64 MiB floor keeps these small files within any
    // budget: --older-than makes every one a victim, in the walk's order.
    let p = plan(
        &env,
        &["--policy", "lru", "--budget", "1B", "--older-than", "1s"],
    );
    assert_eq!(p["budget_applied"], 64 << 20);
    let mut by_age: Vec<&Ckpt> = cps.iter().collect();
    by_age.sort_by_key(|c| {
        if c.last_used != 0 {
            c.last_used
        } else {
            c.created
        }
    });
    let expected: Vec<String> = by_age.iter().map(|c| c.key()).collect();
    assert_eq!(victims(&p), expected);
    assert!(p["victims"][0]["score"].is_null());
}

#[test]
fn budget_counts_real_checkpoint_sizes_only() {
    let env = TestEnv::new();
    let cps = [
        Ckpt::new(chat("alpha")).hits(0, NOW - 400),
        Ckpt::new(chat("beta"))
            .tokens(1024, 32768)
            .hits(0, NOW - 300),
        Ckpt::new(chat("gamma"))
            .opaque_payload(5000)
            .hits(0, NOW - 200),
        Ckpt::new(chat("delta")).hits(0, NOW - 100),
    ];
    let paths: Vec<_> = cps.iter().map(|c| env.add(c)).collect();
    // Neither counted nor deleted: a stale temp file of a dead writer, an
    // invalid checkpoint, a stray.
    let temp = env.add_raw(
        &format!("{}.kv.tmp.999999999", cps[0].key()),
        &vec![7u8; 50_000],
    );
    let mut bad = Ckpt::new(chat("truncated"));
    bad.payload_bytes = Some(bad.payload.len() as u64 + 100);
    let invalid = env.add(&bad);
    let stray = env.add_raw("notes.txt", b"mine");

    let total: u64 = paths.iter().map(|p| size_of(p)).sum();
    let p = plan(&env, &["--budget", &budget(total)]);
    assert_eq!(p["counted_bytes"], total);
    assert_eq!(p["counted"], 4);
    assert!(victims(&p).is_empty());

    // The policy's order, from a plan that takes everything.
    let order = victims(&plan(&env, &["--budget", "1B"]));
    assert_eq!(order.len(), 4);
    let path_of = |k: &str| env.cache.join(format!("{k}.kv"));
    let sizes: Vec<u64> = order.iter().map(|k| size_of(&path_of(k))).collect();

    let p = plan(&env, &["--budget", &budget(total - 1)]);
    assert_eq!(victims(&p), order[..1]);
    assert_eq!(p["freed_bytes"], sizes[0]);

    // Exactly two fit the budget: the third victim would be one too many.
    let b = total - sizes[0] - sizes[1];
    let (r, code) = evict(&env, &["--budget", &budget(b)]);
    assert_eq!(code, 0);
    assert_eq!(victims(&r), order[..2]);
    assert_eq!(r["freed_bytes"], sizes[0] + sizes[1]);
    assert!(!path_of(&order[0]).exists() && !path_of(&order[1]).exists());
    let left: u64 = order[2..].iter().map(|k| size_of(&path_of(k))).sum();
    assert_eq!(left, b);
    assert_eq!(r["counted_bytes_after"], left);
    assert!(temp.exists() && invalid.exists() && stray.exists());

    // A budget of 1 byte takes every checkpoint and still nothing else.
    let (r, code) = evict(&env, &["--budget", "1B"]);
    assert_eq!(code, 0);
    assert_eq!(r["counted_bytes_after"], 0);
    assert!(temp.exists() && invalid.exists() && stray.exists());
    assert_eq!(fs::read(&temp).unwrap().len(), 50_000);
}

#[test]
fn dry_run_changes_nothing_not_even_kvc_state() {
    let env = TestEnv::with_sample("ds4");
    let before = env.snapshot();
    let p = plan(&env, &["--budget", "1KiB", "--older-than", "1h"]);
    assert_eq!(p["dry_run"], true);
    assert_eq!(victims(&p).len(), 4);
    assert!(p["victims"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["outcome"] == "planned"));
    env.kvc()
        .args(["evict", "--dry-run", "--budget", "1B"])
        .arg(&env.cache)
        .assert()
        .success();
    assert_eq!(env.snapshot(), before);
    assert!(!env.cache.join(".kvc").exists());

    // With kvc state present, a dry run touches neither lock nor journal.
    evict(&env, &["--budget", "60KiB"]);
    let before = env.snapshot();
    plan(&env, &["--budget", "1B"]);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn nothing_to_evict_creates_no_state() {
    let env = TestEnv::with_sample("ds4");
    let before = env.snapshot();
    let (r, code) = evict(&env, &["--budget", "1GiB"]);
    assert_eq!(code, 0);
    assert!(victims(&r).is_empty());
    assert_eq!(env.snapshot(), before);
}

#[test]
fn agent_saves_are_untouched_unless_included() {
    let env = TestEnv::with_sample("agent");
    let ds4 = Ckpt::new(chat("server side")).hits(0, NOW - 10);
    env.add(&ds4);
    let agent_files = [
        "sysprompt.kv",
        "4e71ee3108ac1b701ce713c401c5b39ad1c645d9.kv",
    ];
    let out = env
        .kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["--budget", "1B", "--older-than", "1s"])
        .output()
        .unwrap();
    // The budget cannot be met: exit 1, said on stderr.
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--include-agent"), "{err}");
    for f in agent_files {
        assert!(env.cache.join(f).exists(), "{f}");
    }
    assert!(!env.cache.join(ds4.file_name()).exists());

    // --protect by prefix keeps a checkpoint too.
    let kept = Ckpt::new(chat("keep me")).hits(0, NOW - 10);
    env.add(&kept);
    let (r, _) = evict(
        &env,
        &[
            "--budget",
            "1B",
            "--include-agent",
            "--protect",
            &kept.key()[..6],
        ],
    );
    assert_eq!(r["protected"], 1);
    assert!(env.cache.join(kept.file_name()).exists());
    // The session went; sysprompt.kv, which ds4's budget never counts, is
    // kept apart, and goes only when asked for as well.
    assert!(!env.cache.join(agent_files[1]).exists());
    assert!(env.cache.join(agent_files[0]).exists());
    let apart: Vec<&str> = r["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["why"].as_str().unwrap())
        .collect();
    assert_eq!(apart, ["not-counted-name"]);
    let (r, _) = evict(
        &env,
        &[
            "--include-unloadable",
            "--include-agent",
            "--protect",
            &kept.key()[..6],
        ],
    );
    assert_eq!(victims(&r), ["sysprompt"]);
    assert_eq!(r["victims"][0]["why"], serde_json::json!(["unloadable"]));
    assert!(!env.cache.join(agent_files[0]).exists());
}

#[test]
fn older_than_evicts_stale_checkpoints_budget_or_not() {
    let env = TestEnv::new();
    let old = Ckpt::new(chat("old")).hits(5, NOW - 31 * 86_400);
    let young = Ckpt::new(chat("young")).hits(0, NOW - 86_400);
    env.add(&old);
    env.add(&young);
    let (r, code) = evict(&env, &["--older-than", "30d"]);
    assert_eq!(code, 0);
    assert_eq!(victims(&r), [old.key()]);
    assert_eq!(r["victims"][0]["why"], serde_json::json!(["age"]));
    assert!(env.cache.join(young.file_name()).exists());
}

#[test]
fn sizes_need_units_and_a_criterion_is_required() {
    let env = TestEnv::with_sample("ds4");
    let before = env.snapshot();
    let out = env
        .kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["--budget", "4096"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("counts MiB"), "{err}");
    env.kvc().arg("evict").arg(&env.cache).assert().code(2);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let env = TestEnv::with_sample("ds4");
    env.kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["-q", "--budget", "50KiB"])
        .assert()
        .success()
        .stdout("")
        .stderr("");
}

/// Acts as the engine: rewrites the header of victims just before kvc
/// deletes them, as a ds4 hit does (hits + 1, last_used = now).
struct Engine {
    touch: usize,
    touched: Vec<String>,
}

fn hit(path: &Path, hits: u32, now: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&(hits + 1).to_le_bytes(), 12).unwrap();
    f.write_all_at(&now.to_le_bytes(), 32).unwrap();
}

impl Hooks for Engine {
    fn before_delete(&mut self, v: &Victim) {
        if self.touch > 0 {
            self.touch -= 1;
            hit(&v.path, v.header.as_ref().unwrap().hits, NOW + 1);
            self.touched.push(v.name());
        }
    }
}

fn options(budget: u64) -> EvictOptions {
    EvictOptions {
        policy: Some(Policy::Ds4),
        now: NOW,
        budget: Some(budget),
        ..EvictOptions::default()
    }
}

#[test]
fn a_header_changed_between_plan_and_delete_is_skipped_and_replanned() {
    let env = TestEnv::new();
    let a = Ckpt::new(chat("first victim")).hits(0, NOW - 3000);
    let b = Ckpt::new(chat("second one")).hits(0, NOW - 2000);
    let c = Ckpt::new(chat("keeper"))
        .tokens(2048, 32768)
        .hits(0, NOW - 1000);
    let (pa, pb, pc) = (env.add(&a), env.add(&b), env.add(&c));
    let mut engine = Engine {
        touch: 1,
        touched: Vec::new(),
    };
    // Room for one of a and b, besides c.
    let budget = size_of(&pa) + size_of(&pc);
    let r = evict::run(&env.cache, &options(budget), &mut engine).unwrap();
    assert_eq!(engine.touched, [a.key()]);
    assert!(
        matches!(&r.handled[0].fate, Fate::Touched { change } if change.contains("hits 0 -> 1"))
    );
    assert_eq!(r.handled[1].victim.name(), b.key());
    assert_eq!(r.handled[1].fate, Fate::Deleted);
    assert_eq!(r.passes, 2);
    assert!(r.budget_met() && !r.gave_up);
    assert!(pa.exists() && !pb.exists() && pc.exists());
    // The touched file is as the engine left it.
    let bytes = fs::read(&pa).unwrap();
    assert_eq!(&bytes[12..16], &1u32.to_le_bytes());
    // Only the deletion is journaled.
    let j = kvc::journal::read(&env.cache).unwrap();
    let keys: Vec<_> = j.records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, [b.key()]);
}

#[test]
fn an_engine_touching_every_victim_makes_evict_give_up_without_deleting() {
    let env = TestEnv::new();
    let paths: Vec<_> = ["x", "y", "z"]
        .iter()
        .map(|t| env.add(&Ckpt::new(chat(t)).hits(0, NOW - 100)))
        .collect();
    let mut engine = Engine {
        touch: usize::MAX,
        touched: Vec::new(),
    };
    let r = evict::run(&env.cache, &options(0), &mut engine).unwrap();
    assert!(r.gave_up);
    assert_eq!(r.passes, MAX_REPLANS + 1);
    assert_eq!(r.freed_bytes(), 0);
    assert!(paths.iter().all(|p| p.exists()));
    assert!(kvc::journal::read(&env.cache).unwrap().records.is_empty());
}

#[test]
fn a_victim_that_vanished_is_not_an_error() {
    struct Consumer;
    impl Hooks for Consumer {
        fn before_delete(&mut self, v: &Victim) {
            fs::remove_file(&v.path).unwrap();
        }
    }
    let env = TestEnv::with_sample("ds4");
    let r = evict::run(&env.cache, &options(0), &mut Consumer).unwrap();
    assert_eq!(r.handled.len(), 4);
    assert!(r.handled.iter().all(|h| h.fate == Fate::Vanished));
    assert!(r.budget_met());
    assert_eq!(r.freed_bytes(), 0);
}

#[test]
fn a_victim_turned_corrupt_is_reported_never_deleted() {
    struct Corrupter;
    impl Hooks for Corrupter {
        fn before_delete(&mut self, v: &Victim) {
            let f = OpenOptions::new().write(true).open(&v.path).unwrap();
            f.write_all_at(b"XYZ", 0).unwrap();
        }
    }
    let env = TestEnv::new();
    let a = env.add(&Ckpt::new(chat("soon corrupt")));
    let r = evict::run(&env.cache, &options(0), &mut Corrupter).unwrap();
    assert!(matches!(
        r.handled[0].fate,
        Fate::Invalid {
            code: "bad-magic",
            ..
        }
    ));
    assert!(a.exists());
    // The re-plan sees no valid checkpoint left: budget met, nothing more.
    assert!(r.budget_met());
}

#[test]
fn journal_records_survive_a_torn_tail() {
    let env = TestEnv::new();
    let cps: Vec<Ckpt> = (0..4)
        .map(|i| Ckpt::new(chat(&format!("entry {i}"))).hits(0, NOW - 1000 + i))
        .collect();
    let sizes: Vec<u64> = cps.iter().map(|c| size_of(&env.add(c))).collect();
    let (_, code) = evict(
        &env,
        &[
            "--policy",
            "ds4-classic",
            "--budget",
            &budget(sizes[1] + sizes[2] + sizes[3]),
        ],
    );
    assert_eq!(code, 0);
    // Power lost mid-append: half a record, no newline.
    let journal = env.cache.join(".kvc/journal");
    let mut bytes = fs::read(&journal).unwrap();
    bytes.extend_from_slice(b"1a2b3c4d {\"time\":17637");
    fs::write(&journal, &bytes).unwrap();
    let (_, code) = evict(
        &env,
        &["--policy", "ds4-classic", "--budget", &budget(sizes[3])],
    );
    assert_eq!(code, 0);

    let log = env.json(&["log", env.cache.to_str().unwrap(), "--json"]);
    let keys: Vec<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = cps[..3].iter().map(|c| c.key()).collect();
    assert_eq!(keys, expected);
    assert_eq!(log["damaged"], 1);
    let r0 = &log["records"][0];
    assert_eq!(r0["op"], "evict");
    assert_eq!(r0["bytes"], sizes[0]);
    assert_eq!(r0["tokens"], 600);
    assert_eq!(r0["reason"], "cold");
    assert_eq!(r0["policy"], "ds4-classic");
    assert_eq!(r0["why"], "budget");

    let out = env.kvc().arg("log").arg(&env.cache).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 records"), "{text}");
    assert!(text.contains("1 damaged record skipped"), "{text}");
}
