//! Fault injection through the real binary: `kill -9` at random instants
//! during import and evict, and kvc running beside a live engine.
//!
//! Bounded to a few seconds each in `cargo test`; set
//! `KVC_FAULT_SECONDS=60` (say) for long runs.

mod common;

use common::engine::FakeEngine;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds each fault test runs for.
fn budget(default_ms: u64) -> Duration {
    std::env::var("KVC_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_millis(default_ms))
}

fn kvc_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("kvc")
}

fn spawn(args: &[&str]) -> Child {
    Command::new(kvc_bin())
        .env_clear()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// xorshift64: deterministic delays.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Every `.kv` file of `dir` with its bytes.
fn checkpoints(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".kv"))
        .map(|n| (n.clone(), fs::read(dir.join(&n)).unwrap()))
        .collect()
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

/// A cache of `n` checkpoints with payloads big enough that an import or
/// an eviction takes a while to carry out.
fn populate(env: &TestEnv, n: usize) -> Vec<Ckpt> {
    (0..n)
        .map(|i| {
            let c = Ckpt::new(chat(&format!("fault checkpoint {i}")))
                .hits(i as u32 % 5, CREATED + i as u64 * 60)
                .opaque_payload(96 * 1024);
            env.add(&c);
            c
        })
        .collect()
}

/// How long `args` takes here: the fastest of three runs (a loaded machine
/// makes single runs slow), after `reset` puts the input back each time.
fn calibrate(args: &[&str], reset: &dyn Fn()) -> u64 {
    (0..3)
        .map(|_| {
            reset();
            let t0 = Instant::now();
            let status = spawn(args).wait().unwrap();
            assert!(status.code().is_some_and(|c| c <= 1), "{args:?}: {status}");
            t0.elapsed().as_micros() as u64
        })
        .min()
        .unwrap()
        .max(1000)
}

fn kill_after(mut child: Child, micros: u64) -> bool {
    std::thread::sleep(Duration::from_micros(micros));
    let _ = child.kill();
    child.wait().unwrap().signal() == Some(libc::SIGKILL)
}

#[test]
fn import_killed_at_random_instants_installs_only_whole_verified_files() {
    let src = TestEnv::new();
    let sources = populate(&src, 24);
    let want: BTreeMap<String, Vec<u8>> =
        sources.iter().map(|c| (c.file_name(), c.bytes())).collect();
    let bundle = src.export_to("all.tar", &["--all"]);
    let dst = TestEnv::new();
    let target = dst.cache.to_str().unwrap().to_string();
    let args = ["import", bundle.to_str().unwrap(), "--dir", &target];
    let clear = || {
        for n in checkpoints(&dst.cache).keys() {
            fs::remove_file(dst.cache.join(n)).unwrap();
        }
    };
    let span = calibrate(&args, &clear);
    clear();
    let (mut rng, mut kills, start) = (0x2545_f491_4f6c_dd1du64, 0, Instant::now());
    let mut committed: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    while start.elapsed() < budget(2500) {
        if kill_after(spawn(&args), next(&mut rng) % span) {
            kills += 1;
        }
        let now = checkpoints(&dst.cache);
        // Whatever is visible is a whole file of the bundle, byte for byte.
        for (name, bytes) in &now {
            assert_eq!(Some(bytes), want.get(name), "{name} is not a bundle file");
        }
        // Nothing installed by an earlier (killed) import is lost.
        for name in committed.keys() {
            assert!(now.contains_key(name), "{name} was lost");
        }
        assert_eq!(verify_errors(&dst.cache), Vec::<String>::new());
        committed = now;
        if committed.len() == want.len() {
            clear();
            committed.clear();
        }
    }
    eprintln!("import: {kills} kills, calibrated run {span} µs");
    assert!(kills > 0, "no import was killed mid-run");
    // What the killed imports left behind is theirs (dead pids): gc
    // removes it, and the journal still reads.
    dst.kvc()
        .args(["gc", "--temp-age", "0s"])
        .arg(&dst.cache)
        .assert()
        .success();
    assert_eq!(temp_files(&dst.cache), Vec::<String>::new());
    dst.kvc()
        .args(["log", "--json"])
        .arg(&dst.cache)
        .assert()
        .success();
}

#[test]
fn evict_killed_at_random_instants_leaves_whole_files_or_none() {
    let env = TestEnv::new();
    let sources = populate(&env, 30);
    let want: BTreeMap<String, Vec<u8>> =
        sources.iter().map(|c| (c.file_name(), c.bytes())).collect();
    let dir = env.cache.to_str().unwrap().to_string();
    let args = ["evict", "--yes", "--budget", "1KiB", "-q", &dir];
    let refill = || {
        for c in &sources {
            let p = env.cache.join(c.file_name());
            if !p.exists() {
                env.add(c);
            }
        }
    };
    let span = calibrate(&args, &refill);
    let (mut rng, mut kills, start) = (0x9e37_79b9_7f4a_7c15u64, 0, Instant::now());
    while start.elapsed() < budget(2000) {
        refill();
        if kill_after(spawn(&args), next(&mut rng) % span) {
            kills += 1;
        }
        for (name, bytes) in checkpoints(&env.cache) {
            assert_eq!(Some(&bytes), want.get(&name), "{name} changed");
        }
        assert_eq!(verify_errors(&env.cache), Vec::<String>::new());
        assert_eq!(temp_files(&env.cache), Vec::<String>::new());
        // The journal may end in a torn record, never an unreadable one.
        env.kvc()
            .args(["log", "--json"])
            .arg(&env.cache)
            .assert()
            .success();
    }
    eprintln!("evict: {kills} kills, calibrated run {span} µs");
    assert!(kills > 0, "no evict was killed mid-run");
}

#[test]
fn evict_import_and_verify_beside_a_live_engine() {
    let env = TestEnv::new();
    populate(&env, 12);
    let src = TestEnv::new();
    populate(&src, 8);
    let bundle = src.export_to("b.tar", &["--all"]);
    let engine = FakeEngine::start(&env.cache, 7);
    let dir = env.cache.to_str().unwrap().to_string();
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < budget(2500) {
        for args in [
            vec!["evict", "--yes", "--budget", "600KiB", "--json", &dir],
            vec!["import", bundle.to_str().unwrap(), "--dir", &dir, "--json"],
            // Age 0: every temp file is old enough, so only the writer's
            // liveness protects the engine's saves in progress.
            vec!["gc", "--temp-age", "0s", "--json", &dir],
        ] {
            let out = Command::new(kvc_bin())
                .env_clear()
                .args(&args)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            // 0, or 1 for what kvc reports as skipped (a checkpoint the
            // engine touched; an import entry it saved first) — never an
            // error exit.
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "{args:?} failed: {err}"
            );
            let v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {err}"));
            if args[0] == "import" {
                for e in v["entries"].as_array().unwrap() {
                    assert_ne!(e["action"], "rejected", "import rejected {e}");
                }
            }
        }
        let errors = verify_errors(&env.cache);
        assert_eq!(errors, Vec::<String>::new());
        runs += 1;
    }
    let log = engine.stop();
    eprintln!("beside the engine: {runs} rounds, engine {log:?}");
    assert!(
        runs > 0 && log.saves > 0 && log.hits > 0,
        "{runs} runs, {log:?}"
    );
    assert_eq!(
        log.temp_stolen, 0,
        "kvc removed a temp file of a live writer"
    );
    assert_eq!(verify_errors(&env.cache), Vec::<String>::new());
}
