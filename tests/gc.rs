//! `kvc gc`: temp files go only when stale and orphaned; kvc's own state
//! goes only when it holds nothing.

mod common;

use common::*;
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A pid that surely names no process: a child we started and reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn age(path: &Path, by: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - by)
        .unwrap();
}

const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

struct Temps {
    stale_ds4: std::path::PathBuf,
    stale_hanzo: std::path::PathBuf,
    fresh_dead: std::path::PathBuf,
    old_alive: std::path::PathBuf,
}

fn temps(env: &TestEnv) -> Temps {
    let dead = dead_pid();
    let me = std::process::id();
    let key = Ckpt::new(chat("being saved")).key();
    let t = Temps {
        stale_ds4: env.add_raw(&format!("{key}.kv.tmp.{dead}"), &[1u8; 3000]),
        stale_hanzo: env.add_raw(&format!("{key}.{dead}-3.kv.tmp"), &[2u8; 500]),
        fresh_dead: env.add_raw(&format!("{key}.kv.tmp.{}", dead_pid()), &[3u8; 10]),
        old_alive: env.add_raw(&format!("{key}.kv.tmp.{me}"), &[4u8; 10]),
    };
    age(&t.stale_ds4, TWO_HOURS);
    age(&t.stale_hanzo, TWO_HOURS);
    age(&t.old_alive, TWO_HOURS);
    t
}

#[test]
fn gc_removes_temp_files_only_when_stale_and_dead() {
    let env = TestEnv::new();
    let ckpt = env.add(&Ckpt::new(chat("a checkpoint")).hits(0, 1));
    let t = temps(&env);

    // evict never touches temp files, however stale.
    env.kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["--budget", "0B"])
        .assert()
        .success();
    assert!(!ckpt.exists());
    assert!(t.stale_ds4.exists() && t.stale_hanzo.exists());

    let r = env.json(&["gc", env.cache.to_str().unwrap(), "--json"]);
    assert_eq!(r["dry_run"], false);
    assert_eq!(r["freed_bytes"], 3500);
    assert!(!t.stale_ds4.exists());
    assert!(!t.stale_hanzo.exists());
    assert!(t.fresh_dead.exists(), "modified recently");
    assert!(t.old_alive.exists(), "writer alive");
    let verdict = |name: &Path| {
        let n = name.file_name().unwrap().to_str().unwrap();
        r["temp_files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"] == n)
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict(&t.fresh_dead), "recent");
    assert_eq!(verdict(&t.old_alive), "writer-alive");

    // Each removal is journaled.
    let log = env.json(&["log", env.cache.to_str().unwrap(), "--json"]);
    let gc: Vec<_> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["op"] == "gc")
        .map(|r| (r["key"].as_str().unwrap().to_string(), r["why"].clone()))
        .collect();
    assert_eq!(gc.len(), 2);
    assert!(gc.iter().all(|(_, why)| why == "stale temp"));
    assert!(gc
        .iter()
        .any(|(k, _)| k == t.stale_ds4.file_name().unwrap().to_str().unwrap()));
}

#[test]
fn temp_age_is_honoured() {
    let env = TestEnv::new();
    let t = temps(&env);
    env.kvc()
        .arg("gc")
        .arg(&env.cache)
        .args(["--temp-age", "3h"])
        .assert()
        .success();
    assert!(t.stale_ds4.exists() && t.stale_hanzo.exists());
    env.kvc()
        .arg("gc")
        .arg(&env.cache)
        .args(["--temp-age", "90m", "-q"])
        .assert()
        .success()
        .stdout("");
    assert!(!t.stale_ds4.exists() && !t.stale_hanzo.exists());
}

#[test]
fn gc_dry_run_changes_nothing() {
    let env = TestEnv::new();
    let t = temps(&env);
    fs::create_dir(env.cache.join(".kvc")).unwrap();
    fs::write(env.cache.join(".kvc/lock"), b"").unwrap();
    let before = env.snapshot();
    let r = env.json(&["gc", env.cache.to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(r["freed_bytes"], 3500);
    assert_eq!(r["empty_state"], true);
    let planned = r["temp_files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "planned")
        .count();
    assert_eq!(planned, 2);
    assert_eq!(env.snapshot(), before);
    assert!(t.stale_ds4.exists());
}

#[test]
fn gc_removes_empty_kvc_state_but_keeps_a_journal() {
    let env = TestEnv::with_sample("ds4");
    let state = env.cache.join(".kvc");

    // Nothing to do: nothing created.
    let before = env.snapshot();
    env.kvc().arg("gc").arg(&env.cache).assert().success();
    assert_eq!(env.snapshot(), before);

    // A lock file alone is empty state.
    fs::create_dir(&state).unwrap();
    fs::write(state.join("lock"), b"").unwrap();
    let r = env.json(&["gc", env.cache.to_str().unwrap(), "--json"]);
    assert_eq!(r["removed_state"], true);
    assert!(!state.exists());
    assert_eq!(env.snapshot(), before);

    // After an eviction the journal keeps the state.
    env.kvc()
        .arg("evict")
        .arg(&env.cache)
        .args(["--budget", "50KiB"])
        .assert()
        .success();
    assert!(state.join("journal").exists());
    let r = env.json(&["gc", env.cache.to_str().unwrap(), "--json"]);
    assert_eq!(r["removed_state"], false);
    assert!(state.join("journal").exists());
}
