//! `kvc evict`: the eviction scenarios an engine must get right, budget
//! arithmetic on real file sizes, and safety next to a live engine.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use kvc::evict::{self, EvictOptions, EvictResult, Fate, Hooks, Victim, MAX_REPLANS};

/// Plan, then apply the plan in a write session of its own: what `kvc
/// evict` does.
fn run(
    dir: &std::path::Path,
    opts: &EvictOptions,
    hooks: &mut dyn Hooks,
) -> kvc::Result<EvictResult> {
    let plan = evict::plan_dir(dir, opts)?;
    let mut session = kvc::session::Session::new(kvc::session::SessionOptions::new("test"))?;
    evict::apply(&mut session, plan, hooks)
}
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
        // These tests weigh the order and the population; the limit on
        // what one run deletes is tests/operator.rs's.
        .args(["--yes", "--json", "--now", &NOW.to_string()])
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
    assert_eq!(r["victims"][0]["outcome"], "removed");
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
        .args(["evict", "--dry-run", "--yes", "--budget", "1B"])
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
        .args(["--yes", "--budget", "1B", "--older-than", "1s"])
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
    assert!(
        err.contains("4096MiB (ds4's --kv-disk-space-mb unit) is 4.00 GiB"),
        "{err}"
    );
    env.kvc().arg("evict").arg(&env.cache).assert().code(2);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let env = TestEnv::with_sample("ds4");
    env.kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["-q", "--yes", "--budget", "50KiB"])
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
    let r = run(&env.cache, &options(budget), &mut engine).unwrap();
    assert_eq!(engine.touched, [a.key()]);
    assert!(
        matches!(&r.handled[0].fate, Fate::Touched { change } if change.contains("hits 0 -> 1"))
    );
    assert_eq!(r.handled[1].victim.name(), b.key());
    assert_eq!(r.handled[1].fate, Fate::Removed { unsynced: None });
    assert_eq!(r.passes, 2);
    assert!(r.budget_met() && !r.gave_up);
    assert!(pa.exists() && !pb.exists() && pc.exists());
    // The touched file is as the engine left it.
    let bytes = fs::read(&pa).unwrap();
    assert_eq!(&bytes[12..16], &1u32.to_le_bytes());
    // Only the deletion is journaled.
    let j = kvc::session::journal::read(&env.cache).unwrap();
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
    let r = run(&env.cache, &options(0), &mut engine).unwrap();
    assert!(r.gave_up);
    assert_eq!(r.passes, MAX_REPLANS + 1);
    assert_eq!(r.freed_bytes(), 0);
    assert!(paths.iter().all(|p| p.exists()));
    assert!(kvc::session::journal::read(&env.cache)
        .unwrap()
        .records
        .is_empty());
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
    let r = run(&env.cache, &options(0), &mut Consumer).unwrap();
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
    let r = run(&env.cache, &options(0), &mut Corrupter).unwrap();
    assert!(matches!(
        r.handled[0].fate,
        Fate::Invalid {
            code: kvc::code::Code::BadMagic,
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

    // Oldest first (-r): in the order they were evicted.
    let log = env.json(&["log", "-r", env.cache.to_str().unwrap(), "--json"]);
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

// ---------------------------------------------------------------------------
// The engine's population (FORMAT.md §7, "What the budget counts") and the
// engine's order, checked against the engines' code (doc/FORMAT.md §10).

/// The budget total of ds4 mainline, written out here from
/// `kv_cache_refresh` and `ds4_kvstore_read_entry_file` (ds4_kvstore.c at
/// b030961): a name of 40 hex digits and `.kv` (either case), a header
/// with magic `KVC`, version 1, byte 20 = 2, tokens != 0, quant 2 or 4,
/// and a file (stat follows links) at least 52 + text + payload long.
fn ds4_mainline_total(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() != 43
            || !name.ends_with(".kv")
            || !name[..40].bytes().all(|b| b.is_ascii_hexdigit())
        {
            continue;
        }
        let Ok(meta) = fs::metadata(e.path()) else {
            continue;
        };
        let Ok(b) = fs::read(e.path()) else {
            continue;
        };
        if b.len() < 52 {
            continue;
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64;
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        if &b[..3] != b"KVC" || b[3] != 1 || b[20] != 2 {
            continue;
        }
        if u32_at(8) == 0 || !(b[4] == 2 || b[4] == 4) {
            continue;
        }
        let need = 52u64
            .checked_add(u32_at(48))
            .and_then(|n| n.checked_add(u64_at(40)));
        if need.is_none_or(|n| meta.len() < n) {
            continue;
        }
        total += meta.len();
    }
    total
}

/// The budget total of hanzo-engine, written out here from `scan_entries`
/// (disk_kv_cache.rs, c8bcee7d5): every entry whose `Path::extension()` is
/// `kv` and whose stem is UTF-8, at the size `DirEntry::metadata` gives
/// (links and directories at their own size).
fn hanzo_total(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("kv")
            || p.file_stem().and_then(|s| s.to_str()).is_none()
        {
            continue;
        }
        total += e.metadata().unwrap().len();
    }
    total
}

/// Bytes of every entry of the cache but kvc's own `.kvc/`.
fn disk_total(env: &TestEnv) -> u64 {
    fs::read_dir(&env.cache)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != ".kvc")
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                0
            } else {
                m.len()
            }
        })
        .sum()
}

fn kept(v: &Value) -> Vec<(String, String, bool)> {
    v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["file"].as_str().unwrap().to_string(),
                k["why"].as_str().unwrap().to_string(),
                k["counted"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `kvc evict --dry-run` as a person sees it.
fn human_plan(env: &TestEnv, args: &[&str]) -> String {
    let out = env
        .kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["--dry-run", "--yes", "--now", &NOW.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1));
    String::from_utf8(out.stdout).unwrap()
}

/// A mainline directory holding every kind of file the engine does not
/// count beside the ones it does.
struct Mixed {
    /// Counted and evictable.
    evictable: Vec<Ckpt>,
    /// Counted, protected as an agent save.
    agent: Ckpt,
    abi0: Ckpt,
    quant3: Ckpt,
    zero: Ckpt,
    /// D8 with a header mainline's reader accepts: counted, never deleted.
    lz4: Ckpt,
    truncated: Ckpt,
}

fn mixed_mainline(env: &TestEnv) -> Mixed {
    let m = |t: &str, used: u64| Ckpt::new(chat(t)).hits(0, used).mainline();
    let cold = m("cold", NOW - 500);
    let cont = m("continued", NOW - 400).reason(REASON_CONTINUED);
    let mut glm = m("another model", NOW - 300).opaque_payload(3000);
    glm.model_id = 2;
    let mut upper = m("upper-case name", NOW - 100);
    upper.name = Some(format!("{}.kv", upper.key().to_uppercase()));
    let agent = m("an agent session", NOW - 200).reason(REASON_AGENT_SESSION);
    let abi0 = Ckpt::new(chat("written before 2026-05-26")).hits(0, NOW - 900);
    let mut quant3 = m("quant three", NOW - 800);
    quant3.quant_bits = 3;
    let mut zero = m("zero tokens", NOW - 700);
    zero.tokens = 0;
    let mut sysprompt = m("the system prompt", NOW - 600).reason(REASON_AGENT_SYSTEM);
    sysprompt.name = Some("sysprompt.kv".into());
    let lz4 = lz4_v1(chat("compressed")).hits(0, NOW - 650);
    let mut truncated = m("truncated", NOW - 50);
    truncated.payload_bytes = Some(truncated.payload.len() as u64 + 100);
    let evictable = vec![cold, cont, glm, upper];
    for c in evictable
        .iter()
        .chain([&agent, &abi0, &quant3, &zero, &sysprompt, &lz4, &truncated])
    {
        env.add(c);
    }
    // Names ds4 never reads.
    let mut stray = m("under another name", NOW - 10);
    stray.name = Some("notes.kv".into());
    env.add(&stray);
    env.add_raw(&format!("{}.kv.tmp.999999999", abi0.key()), &[7u8; 5000]);
    Mixed {
        evictable,
        agent,
        abi0,
        quant3,
        zero,
        lz4,
        truncated,
    }
}

#[test]
fn the_budget_total_is_the_engines_own() {
    let env = TestEnv::new();
    let f = mixed_mainline(&env);
    let p = plan(&env, &["--budget", "1B"]);
    assert_eq!(p["engine"]["engine"], "ds4");
    // The engine's own total, computed from its C; and by hand, from the
    // files it counts: any model, agent sessions, an upper-case name, and
    // the LZ4 file whose header passes its reader.
    let engine_total = ds4_mainline_total(&env.cache);
    let by_hand: u64 = f
        .evictable
        .iter()
        .chain([&f.agent, &f.lz4])
        .map(|c| size_of(&env.cache.join(c.file_name())))
        .sum();
    assert_eq!(engine_total, by_hand);
    assert_eq!(p["counted_bytes"], engine_total);
    assert_eq!(p["counted"], 6);
    // The disk holds more, and says so.
    assert_eq!(p["total_bytes"], disk_total(&env));
    assert!(p["total_bytes"].as_u64().unwrap() > engine_total);
    // Every counted file kvc may delete goes; nothing else.
    let want: Vec<String> = f.evictable.iter().map(|c| c.key()).collect();
    assert_eq!(sorted(victims(&p)), sorted(want));
    // Left: the agent session (protected) and the LZ4 file (foreign),
    // both in the engine's total: the budget cannot be met.
    assert_eq!(p["protected"], 1);
    assert_eq!(p["budget_met"], false);
    assert_eq!(
        p["counted_bytes_after"],
        size_of(&env.cache.join(f.agent.file_name())) + size_of(&env.cache.join(f.lz4.file_name()))
    );
    let mut k = kept(&p);
    k.sort();
    let mut want = vec![
        (f.abi0.file_name(), "not-loaded".into(), false),
        (f.quant3.file_name(), "not-loaded".into(), false),
        (f.zero.file_name(), "invalid".into(), false),
        ("sysprompt.kv".into(), "not-counted-name".into(), false),
        (f.lz4.file_name(), "foreign".into(), true),
        (f.truncated.file_name(), "invalid".into(), false),
    ];
    want.sort();
    assert_eq!(k, want);
}

#[test]
fn abi0_files_in_a_mainline_dir_are_kept_without_the_flag_and_deleted_with_it() {
    let env = TestEnv::new();
    let a = Ckpt::new(chat("mainline one")).hits(0, NOW - 20).mainline();
    let b = Ckpt::new(chat("mainline two")).hits(0, NOW - 10).mainline();
    let old = Ckpt::new(chat("from before the ABI byte")).hits(3, NOW - 5);
    let (pa, pb, pold) = (env.add(&a), env.add(&b), env.add(&old));

    let p = plan(&env, &["--budget", "1B"]);
    assert_eq!(sorted(victims(&p)), sorted(vec![a.key(), b.key()]));
    assert_eq!(p["counted_bytes"], size_of(&pa) + size_of(&pb));
    assert_eq!(p["never_loaded"]["count"], 1);
    assert_eq!(p["never_loaded"]["bytes"], size_of(&pold));
    assert_eq!(p["kept"][0]["detail"], "with payload ABI 0 (never loaded)");
    assert_eq!(p["kept"][0]["deletable_on_request"], true);
    let text = human_plan(&env, &["--budget", "1B"]);
    assert!(
        text.contains("kept: 1 file,")
            && text.contains(
                "that ds4 mainline (since 2026-05-26) never counts or evicts: 1 with payload ABI 0"
            )
            && text.contains("--include-unloadable deletes it"),
        "{text}"
    );

    let (r, code) = evict(&env, &["--budget", "1B"]);
    assert_eq!(code, 0);
    assert_eq!(r["counted_bytes_after"], 0);
    assert!(!pa.exists() && !pb.exists() && pold.exists());

    // Asked for, it goes: the flag alone is a criterion. (The engine has
    // saved again meanwhile: a directory of ABI-0 files alone would read
    // as ds4 up to 2026-05-25's, which loads them.)
    let c = Ckpt::new(chat("mainline three")).mainline();
    let pc = env.add(&c);
    let (r, code) = evict(&env, &["--include-unloadable"]);
    assert_eq!(code, 0);
    assert_eq!(r["policy"], "ds4");
    assert_eq!(victims(&r), [old.key()]);
    assert!(pc.exists());
    assert_eq!(r["victims"][0]["why"], serde_json::json!(["unloadable"]));
    assert!(!pold.exists());
    let j = kvc::session::journal::read(&env.cache).unwrap();
    assert_eq!(j.records.last().unwrap().why, "unloadable");
}

#[test]
fn quant_3_and_zero_token_files_are_never_planned() {
    let env = TestEnv::new();
    let good = Ckpt::new(chat("a good one")).mainline();
    let mut q3 = Ckpt::new(chat("quant three")).mainline();
    q3.quant_bits = 3;
    let mut zero = Ckpt::new(chat("zero tokens")).mainline();
    zero.tokens = 0;
    let (pg, pq, pz) = (env.add(&good), env.add(&q3), env.add(&zero));
    let p = plan(&env, &["--budget", "1B", "--older-than", "1s"]);
    assert_eq!(victims(&p), [good.key()]);
    assert_eq!(p["counted_bytes"], size_of(&pg));
    let details: Vec<&str> = p["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        sorted(details.iter().map(|s| s.to_string()).collect()),
        ["invalid (zero-tokens)", "with quant_bits 3 (never loaded)"]
    );
    // On request the readable one goes; the one kvc cannot read as a
    // checkpoint never does.
    let (r, code) = evict(&env, &["--budget", "1B", "--include-unloadable"]);
    assert_eq!(code, 0);
    assert_eq!(victims(&r), [good.key(), q3.key()]);
    assert!(!pg.exists() && !pq.exists() && pz.exists());
}

#[test]
fn sysprompt_kv_is_never_counted() {
    // ds4-agent's directory as the agent writes it today: ds4's budget
    // counts the sessions (40-hex names), never sysprompt.kv.
    let env = TestEnv::with_sample("agent-current");
    let p = plan(&env, &["--budget", "1B", "--include-agent"]);
    assert_eq!(p["engine"]["engine"], "ds4");
    assert_eq!(p["counted_bytes"], ds4_mainline_total(&env.cache));
    assert_eq!(p["counted"], 3);
    assert_eq!(victims(&p).len(), 3);
    assert_eq!(
        kept(&p),
        [(
            "sysprompt.kv".to_string(),
            "not-counted-name".to_string(),
            false
        )]
    );
    assert!(!victims(&p).contains(&"sysprompt".to_string()));
}

#[test]
fn the_policy_is_the_directory_engines_and_is_said() {
    for (sample, engine, policy, source) in [
        (
            "mainline",
            "ds4",
            "ds4",
            "ds4 mainline since ec6a82a (2026-05-26)",
        ),
        ("ds4", "ds4-classic", "ds4-classic", "ds4 up to 2026-05-25"),
        (
            "hanzo",
            "hanzo",
            "lru",
            "hanzo-engine (disk_kv_cache.rs, c8bcee7d5)",
        ),
    ] {
        let env = TestEnv::with_sample(sample);
        let p = plan(&env, &["--budget", "1B"]);
        assert_eq!(p["engine"]["engine"], engine, "{sample}");
        assert_eq!(p["engine"]["how"], "inferred", "{sample}");
        assert_eq!(p["policy"], policy, "{sample}");
        assert_eq!(p["policy_from"], "engine", "{sample}");
        assert!(p["policy_source"]
            .as_str()
            .unwrap()
            .contains(source.split(' ').next().unwrap()));
        let text = human_plan(&env, &["--budget", "1B"]);
        assert!(
            text.contains(&format!("policy {policy} (the engine's): {source}")),
            "{sample}: {text}"
        );
        assert!(
            text.contains(&format!("engine: {engine} (inferred: ")),
            "{text}"
        );
        // Given, it is said to be given.
        let p = plan(&env, &["--budget", "1B", "--policy", "ds4-classic"]);
        assert_eq!(
            (&p["policy"], &p["policy_from"]),
            (&"ds4-classic".into(), &"--policy".into())
        );
    }
}

#[test]
fn a_budget_of_0_is_refused_in_one_line() {
    let env = TestEnv::with_sample("ds4");
    let before = env.snapshot();
    for args in [
        vec!["evict", "--budget", "0B"],
        vec!["evict", "--budget", "0MiB"],
        vec!["import", "-", "--budget", "0GiB"],
    ] {
        let out = env.kvc().args(&args).arg("--dir").arg(&env.cache).output();
        let out = match args[0] {
            "evict" => env.kvc().args(&args).arg(&env.cache).output().unwrap(),
            _ => out.unwrap(),
        };
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap();
        assert!(
            first.contains("a budget of 0 is refused")
                && first.contains("--kv-disk-space-mb 0 as its default of 4096 MiB"),
            "{err}"
        );
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn an_empty_text_waypoint_is_never_superseded() {
    // ds4: `if (e->text_bytes == 0 …) return false`. The empty text is a
    // prefix of every text, and its name, SHA-1 of nothing, is the hash
    // of every text's empty prefix.
    let env = TestEnv::new();
    let text = chat("extend me");
    let mut longer = text.clone();
    longer.extend_from_slice(b" and more");
    let empty = Ckpt::new(Vec::new())
        .reason(REASON_CONTINUED)
        .hits(0, NOW - 100)
        .mainline();
    let waypoint = Ckpt::new(text)
        .reason(REASON_CONTINUED)
        .hits(0, NOW - 100)
        .mainline();
    let head = Ckpt::new(longer).hits(0, NOW - 100).mainline();
    let pe = env.add(&empty);
    for c in [&waypoint, &head] {
        env.add(c);
    }
    let p = plan(&env, &["--budget", "1B"]);
    let of = |key: &str| {
        p["victims"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(of(&waypoint.key())["superseded"], true);
    assert_eq!(of(&empty.key())["superseded"], false);
    // Its score is the plain one: ((0 + 1) × 600) / size, no factor.
    assert_eq!(
        of(&empty.key())["score"].as_f64().unwrap(),
        600.0 / size_of(&pe) as f64
    );
    assert_eq!(p["superseded_at_rest"], true);
    let text = human_plan(&env, &["--budget", "1B"]);
    assert!(text.contains("kvc's extension"), "{text}");
}

#[test]
fn superseded_is_decided_by_the_file_name_as_ds4_decides_it() {
    let env = TestEnv::new();
    let long = chat("a conversation long enough for several waypoints");
    let named = |t: Vec<u8>, name_of: &[u8]| {
        let mut c = Ckpt::new(t)
            .reason(REASON_CONTINUED)
            .hits(0, NOW - 100)
            .mainline();
        c.name = Some(format!("{}.kv", sha1_hex(name_of)));
        c
    };
    // A true byte prefix under a name that is not its hash: ds4 compares
    // the longer text's prefix hash with the name, so it is not superseded.
    let misnamed = named(long[..20].to_vec(), b"something else");
    // Other bytes, named by the hash of the longer text's prefix of the
    // same length: ds4 calls it superseded.
    let aliased = named(vec![b'?'; 30], &long[..30]);
    // A true prefix, but written for a smaller context than the longer one:
    // the longer one cannot load wherever it can.
    let mut narrow = named(long[..40].to_vec(), &long[..40]);
    narrow.ctx_size = 16384;
    // A true prefix of another quant: superseded unless ds4-server runs
    // with --kv-cache-reject-different-quant.
    let mut q4 = named(long[..50].to_vec(), &long[..50]);
    q4.quant_bits = 4;
    let head = Ckpt::new(long.clone()).hits(0, NOW - 100).mainline();
    for c in [&misnamed, &aliased, &narrow, &q4, &head] {
        env.add(c);
    }
    let sup = |args: &[&str]| {
        let mut a = vec!["--budget", "1B"];
        a.extend_from_slice(args);
        let p = plan(&env, &a);
        [&misnamed, &aliased, &narrow, &q4]
            .iter()
            .map(|c| {
                let file = c.file_name();
                p["victims"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["file"] == file.as_str())
                    .unwrap()["superseded"]
                    .as_bool()
                    .unwrap()
            })
            .collect::<Vec<bool>>()
    };
    assert_eq!(sup(&[]), [false, true, false, true]);
    assert_eq!(
        sup(&["--reject-different-quant"]),
        [false, true, false, false]
    );
    // Under ds4-classic nothing is superseded.
    assert_eq!(sup(&["--policy", "ds4-classic"]), [false; 4]);
}

#[test]
fn exact_ties_follow_the_engines_arithmetic() {
    // Two files of one size S. A: 4 hits one half-life ago (eff = 2
    // exactly), t tokens; B: no hits, 3t tokens. ds4 computes
    // ((eff + 1) × tokens) / size: both (3t) / S, an exact tie, which goes
    // to the smaller raw last_used: A. Computed as tokens / size × (eff + 1)
    // A would come out one ulp above B, and B would go first.
    let env = TestEnv::new();
    let mut a = Ckpt::new(chat("tie A"))
        .opaque_payload(4000)
        .reason(REASON_COLD)
        .hits(4, NOW - H)
        .mainline();
    let mut b = Ckpt::new(chat("tie B"))
        .opaque_payload(4000)
        .reason(REASON_COLD)
        .hits(0, NOW - 60)
        .mainline();
    let size = a.bytes().len() as f64;
    assert_eq!(a.bytes().len(), b.bytes().len());
    let t = (1..100_000u32)
        .find(|&t| (t as f64 / size) * 3.0 > (3.0 * t as f64) / size)
        .expect("a token count where the two orders differ");
    a.tokens = t;
    b.tokens = 3 * t;
    env.add(&a);
    env.add(&b);
    for policy in ["ds4", "ds4-classic"] {
        let p = plan(&env, &["--policy", policy, "--budget", "1B"]);
        assert_eq!(victims(&p), [a.key(), b.key()], "{policy}");
        let s = |i: usize| p["victims"][i]["score"].as_f64().unwrap();
        assert_eq!(s(0), s(1), "{policy}: an exact tie");
    }
}

#[test]
fn exact_ties_go_to_readdir_order() {
    let env = TestEnv::new();
    let cps: Vec<Ckpt> = (0..6)
        .map(|i| {
            Ckpt::new(chat(&format!("tie {i}")))
                .hits(1, NOW - 500)
                .mainline()
        })
        .collect();
    for c in &cps {
        env.add(c);
    }
    let order: Vec<String> = env
        .readdir_names()
        .into_iter()
        .filter_map(|n| n.strip_suffix(".kv").map(str::to_string))
        .collect();
    assert_eq!(order.len(), 6);
    for policy in ["ds4", "ds4-classic"] {
        let p = plan(&env, &["--policy", policy, "--budget", "1B"]);
        assert_eq!(victims(&p), order, "{policy}");
    }
}

/// A hanzo-engine spill of `mib` MiB (a sparse payload), last used at
/// `last_used`.
fn big_spill(env: &TestEnv, seed: u32, last_used: u64, mib: u64) -> (Ckpt, std::path::PathBuf) {
    let c = hanzo_spill(&[seed, seed + 1, seed + 2], last_used);
    let p = env.add_sparse(&c, mib << 20);
    (c, p)
}

#[test]
fn hanzo_lru_counts_every_kv_entry_and_deletes_what_it_identified() {
    let env = TestEnv::new();
    let spills: Vec<(Ckpt, _)> = (0..5)
        .map(|i| big_spill(&env, 100 * i, NOW - 1000 + 100 * i as u64, 24))
        .collect();
    // An unreadable header: hanzo-engine reads its last_used as 0, so it
    // goes first of all.
    let bad = env.add_raw(&format!("{}.kv", "ab".repeat(20)), b"no header here at all");
    // Any *.kv name counts: a spill under another name, used between the
    // second and third spills.
    let mut foo = hanzo_spill(&[7, 7, 7], NOW - 1000 + 150);
    foo.name = Some("foo.kv".into());
    let pfoo = env.add(&foo);
    // A directory and a link named *.kv count at their own size; hanzo
    // cannot remove the directory, kvc removes neither.
    let dir = env.add_dir("bar.kv");
    let link = env.add_symlink("link.kv", &spills[0].1);
    // A FIFO is counted too (at size 0); kvc deletes only regular files.
    let fifo = env.cache.join("pipe.kv");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    // Names hanzo-engine does not count: no extension, another case, a temp.
    env.add_raw(".kv", b"hidden");
    env.add_raw("UPPER.KV", b"shouting");
    env.add_raw(&format!("{}.4242-0.kv.tmp", spills[0].0.key()), b"partial");

    let p = plan(&env, &["--budget", "1B"]);
    assert_eq!(p["engine"]["engine"], "hanzo");
    assert_eq!(p["policy"], "lru");
    assert_eq!(p["budget"], 1);
    assert_eq!(p["budget_applied"], 64 << 20);
    assert_eq!(p["counted_bytes"], hanzo_total(&env.cache));
    assert_eq!(p["counted"], 10);
    // The disk holds all that and more (the names hanzo does not count).
    assert!(p["total_bytes"].as_u64() > p["counted_bytes"].as_u64());
    // Oldest first until the total is within 64 MiB: three spills; the
    // rest are kept, and still counted.
    let key = |i: usize| spills[i].0.key();
    assert_eq!(victims(&p), [key(0), key(1), key(2)]);
    let mut k = kept(&p);
    k.sort();
    assert_eq!(
        k,
        [
            (format!("{}.kv", "ab".repeat(20)), "invalid".into(), true),
            ("bar.kv".into(), "directory".into(), true),
            ("foo.kv".into(), "stray".into(), true),
            ("link.kv".into(), "symlink".into(), true),
            ("pipe.kv".into(), "stray".into(), true),
        ]
    );
    let text = human_plan(&env, &["--budget", "1B"]);
    assert!(
        text.contains("budget 1 B raised to 64 MiB: hanzo-engine never budgets below 64 MiB")
            && text.contains("hanzo-engine's own pass would delete"),
        "{text}"
    );

    // Asked for, what hanzo-engine would delete goes, in its order: the
    // unreadable header first, foo.kv between the second and third spills.
    let (r, code) = evict(&env, &["--budget", "1B", "--include-unloadable"]);
    assert_eq!(code, 0);
    assert_eq!(
        victims(&r),
        [
            "ab".repeat(20),
            key(0),
            key(1),
            "foo.kv".to_string(),
            key(2)
        ]
    );
    assert_eq!(r["victims"][3]["kind"], "stray");
    assert_eq!(r["budget_met"], true);
    assert!(!bad.exists() && !pfoo.exists());
    assert!(dir.is_dir() && fs::symlink_metadata(&link).is_ok());
    assert!(fs::symlink_metadata(&fifo).is_ok());
    assert!(spills[3].1.exists() && spills[4].1.exists());
    assert!(env.cache.join(".kv").exists() && env.cache.join("UPPER.KV").exists());
    assert_eq!(r["counted_bytes_after"], hanzo_total(&env.cache));
}

#[test]
fn hanzo_lru_ties_go_to_readdir_order() {
    let env = TestEnv::new();
    let spills: Vec<Ckpt> = (0..4)
        .map(|i| big_spill(&env, 10 * i, NOW - 300, 30).0)
        .collect();
    let order: Vec<String> = env
        .readdir_names()
        .into_iter()
        .filter_map(|n| n.strip_suffix(".kv").map(str::to_string))
        .collect();
    assert_eq!(order.len(), spills.len());
    // 120 MiB down to 64 MiB: two go, the first two in readdir order.
    let p = plan(&env, &["--budget", "64MiB"]);
    assert_eq!(victims(&p), order[..2]);
}

#[test]
fn four_thousand_chained_waypoints_are_found_without_holding_texts() {
    // Each text extends the last by one byte: every pair is a prefix pair,
    // and comparing pairs is O(n² · L). The streamed index settles each
    // waypoint once (src/prefix.rs). No time is asserted: a quadratic
    // regression shows as a test that takes minutes.
    let env = TestEnv::new();
    let base = chat("one long conversation");
    let n = 4000;
    let mut text = base.clone();
    let mut keys = Vec::new();
    for i in 0..n {
        text.push(b"abcdefghij"[i % 10]);
        let c = Ckpt::new(text.clone())
            .opaque_payload(16)
            .reason(REASON_CONTINUED)
            .mainline();
        env.add(&c);
        keys.push(c.key());
    }
    let opts = EvictOptions {
        now: NOW,
        budget: Some(1),
        ..EvictOptions::default()
    };
    let p = evict::plan_dir(&env.cache, &opts).unwrap();
    assert_eq!(p.policy, Policy::Ds4);
    assert_eq!(p.victims.len(), n);
    let sup: Vec<&str> = p
        .victims
        .iter()
        .filter(|v| v.superseded)
        .map(|v| v.file.as_str())
        .collect();
    assert_eq!(sup.len(), n - 1);
    let last = format!("{}.kv", keys[n - 1]);
    assert!(!sup.contains(&last.as_str()));
}
