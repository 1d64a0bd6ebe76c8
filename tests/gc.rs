//! `kvc gc`: temp files go only when stale and orphaned (no running pid in
//! the name, no process holding them open); kvc's own state goes only when
//! it holds nothing.

mod common;

use common::*;
use serde_json::Value;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

/// A pid that surely names no process: a child we started and reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A pid of a ds4-server temp name that is surely dead, and surely a pid:
/// above Linux's PID_MAX_LIMIT (2^22), and not six digits. A reaped
/// child's pid can have six digits where pid_max is large, and then the
/// name may be a ds4-agent mkstemp name: gc would judge it by its holders.
const DEAD_SERVER_PID: u32 = 99_999_999;

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
        stale_ds4: env.add_raw(&format!("{key}.kv.tmp.{DEAD_SERVER_PID}"), &[1u8; 3000]),
        stale_hanzo: env.add_raw(&format!("{key}.{dead}-3.kv.tmp"), &[2u8; 500]),
        fresh_dead: env.add_raw(&format!("{key}.kv.tmp.{}", DEAD_SERVER_PID - 1), &[3u8; 10]),
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
        .args(["--yes", "--budget", "1B"])
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
        .args(["--yes", "--budget", "50KiB"])
        .assert()
        .success();
    assert!(state.join("journal").exists());
    let r = env.json(&["gc", env.cache.to_str().unwrap(), "--json"]);
    assert_eq!(r["removed_state"], false);
    assert!(state.join("journal").exists());
}

/// A process that holds up to three files open (on its stdin, stdout and
/// stderr, set before it is exec'd, so they are open when `spawn` returns)
/// until dropped. It writes nothing to them.
struct Holder(Child);

impl Holder {
    fn hold(paths: &[&Path]) -> Holder {
        let open = |i: usize| {
            paths
                .get(i)
                .map_or(Stdio::null(), |p| Stdio::from(File::open(p).unwrap()))
        };
        // The Command, and with it this process's copy of each file, is
        // dropped at the end of the statement: only the child holds them.
        let child = Command::new("sleep")
            .arg("60")
            .stdin(open(0))
            .stdout(open(1))
            .stderr(open(2))
            .spawn()
            .unwrap();
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Can this run see every process that may be writing a file owned by
/// `owner`? Root can; another user cannot read the descriptors of its own
/// non-dumpable processes (ssh-agent makes itself one), and then gc must
/// keep temp files without a certain pid. Read from /proc here, apart from
/// kvc, so the tests below know which outcome is right.
fn sees_every_writer(owner: u32) -> bool {
    let me = File::open("/proc/self/status").is_ok();
    assert!(me, "these tests need Linux's /proc");
    let mut all = true;
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        match fs::read_dir(e.path().join("fd")) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                let status = fs::read_to_string(e.path().join("status")).unwrap_or_default();
                let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"));
                if uids.is_none_or(|u| u.split_whitespace().any(|id| id == owner.to_string())) {
                    all = false;
                }
            }
            _ => {}
        }
    }
    all
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

/// The JSON object gc reported for `path`.
fn entry(report: &Value, path: &Path) -> Value {
    let n = name_of(path);
    report["temp_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == n)
        .unwrap_or_else(|| panic!("gc did not list {n}: {report}"))
        .clone()
}

fn gc_json(env: &TestEnv, extra: &[&str]) -> Value {
    let mut args = vec!["gc", env.cache.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    env.json(&args)
}

/// The files `kvc verify` calls `stale-temp`.
fn verify_stale(env: &TestEnv) -> Vec<String> {
    let out = env
        .kvc()
        .args(["verify", "--json"])
        .arg(&env.cache)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut stale: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["code"] == "stale-temp")
        })
        .map(|f| {
            let p = f["file"].as_str().unwrap();
            p.rsplit('/').next().unwrap().to_string()
        })
        .collect();
    stale.sort();
    stale
}

/// A pid of six digits, like an all-digit mkstemp suffix, that names no
/// process.
fn dead_six_digit_pid() -> u32 {
    (100_000..=999_999u32)
        .rev()
        .find(|p| !Path::new("/proc").join(p.to_string()).exists())
        .unwrap()
}

#[test]
fn gc_removes_stale_agent_temps_and_keeps_them_while_held_open() {
    let env = TestEnv::new();
    let key = Ckpt::new(chat("an agent session")).key();
    let agent = env.add_raw(&format!("{key}.kv.tmp.Qx7aZ2"), &[1u8; 700]);
    let sysprompt = env.add_raw("sysprompt.kv.tmp.aB3dE9", &[2u8; 300]);
    // Six digits of a dead pid: just as well mkstemp's digits.
    let maybe_pid = dead_six_digit_pid();
    let digits = env.add_raw(&format!("{key}.kv.tmp.{maybe_pid}"), &[3u8; 50]);
    // A dead certain pid does not outweigh a process holding the file.
    let server = env.add_raw(&format!("{key}.kv.tmp.{DEAD_SERVER_PID}"), &[4u8; 20]);
    let fresh = env.add_raw(&format!("{key}.kv.tmp.fReSh1"), &[5u8; 10]);
    for p in [&agent, &sysprompt, &digits, &server] {
        age(p, TWO_HOURS);
    }
    let all_seen = sees_every_writer(fs::metadata(&agent).unwrap().uid());

    let holder = Holder::hold(&[&agent, &digits, &server]);
    for dry_run in [true, false] {
        let r = gc_json(&env, if dry_run { &["--dry-run"] } else { &[] });
        for held in [&agent, &digits, &server] {
            let e = entry(&r, held);
            assert_eq!(e["verdict"], "held-open", "{e}");
            assert_eq!(e["outcome"], "kept", "{e}");
            assert!(held.exists());
        }
        let e = entry(&r, &sysprompt);
        if all_seen {
            assert_eq!(e["verdict"], "stale", "{e}");
            assert_eq!(e["outcome"], if dry_run { "planned" } else { "removed" });
        } else {
            assert_eq!(e["verdict"], "holders-unknown", "{e}");
            assert!(e["detail"].as_str().unwrap().contains("could not inspect"));
        }
        assert_eq!(entry(&r, &fresh)["verdict"], "recent");
    }
    assert_eq!(sysprompt.exists(), !all_seen);
    assert!(fresh.exists());
    // verify warns of exactly what gc would remove.
    assert_eq!(verify_stale(&env), Vec::<String>::new());

    let e = entry(&gc_json(&env, &["--dry-run"]), &agent);
    assert_eq!(
        (&e["writer"], &e["pid"], &e["pid_certain"]),
        (&"ds4-agent".into(), &Value::Null, &false.into())
    );
    let e = entry(&gc_json(&env, &["--dry-run"]), &digits);
    assert_eq!(
        (&e["writer"], &e["pid"], &e["pid_certain"]),
        (&"ds4-server".into(), &maybe_pid.into(), &false.into())
    );

    // The holder exits: nothing keeps them any more.
    drop(holder);
    if !all_seen {
        let r = gc_json(&env, &[]);
        assert_eq!(entry(&r, &agent)["verdict"], "holders-unknown");
        assert_eq!(entry(&r, &server)["verdict"], "stale");
        return;
    }
    let mut want = vec![name_of(&agent), name_of(&digits), name_of(&server)];
    want.sort();
    assert_eq!(verify_stale(&env), want);
    let r = gc_json(&env, &[]);
    for p in [&agent, &digits, &server] {
        let e = entry(&r, p);
        assert_eq!(
            (&e["verdict"], &e["outcome"]),
            (&"stale".into(), &"removed".into()),
            "{e}"
        );
        assert!(!p.exists(), "{}", p.display());
    }
    assert_eq!(r["freed_bytes"], 700 + 50 + 20);
    assert!(fresh.exists());
    assert_eq!(verify_stale(&env), Vec::<String>::new());
}

#[test]
fn gc_knows_hanzo_temps_with_and_without_a_pid() {
    let env = TestEnv::new();
    let key = Ckpt::new(chat("spilled")).key();
    let dead = dead_pid();
    let me = std::process::id();
    let seq: PathBuf = env.add_raw(&format!("{key}.{dead}-7.kv.tmp"), &[1u8; 100]);
    let pid = env.add_raw(&format!("{key}.{dead}.kv.tmp"), &[2u8; 10]);
    let bare = env.add_raw(&format!("{key}.kv.tmp"), &[3u8; 1]);
    let alive = env.add_raw(&format!("{key}.{me}-0.kv.tmp"), &[4u8; 1000]);
    for p in [&seq, &pid, &bare, &alive] {
        age(p, TWO_HOURS);
    }
    let all_seen = sees_every_writer(fs::metadata(&bare).unwrap().uid());
    let plan = gc_json(&env, &["--dry-run"]);
    for (p, want_pid, certain) in [
        (&seq, Value::from(dead), true),
        (&pid, Value::from(dead), true),
        (&bare, Value::Null, false),
        (&alive, Value::from(me), true),
    ] {
        let e = entry(&plan, p);
        assert_eq!(e["writer"], "hanzo", "{e}");
        assert_eq!(
            (&e["pid"], &e["pid_certain"]),
            (&want_pid, &certain.into()),
            "{e}"
        );
    }
    let r = gc_json(&env, &[]);
    assert_eq!(entry(&r, &alive)["verdict"], "writer-alive");
    assert!(alive.exists());
    for p in [&seq, &pid] {
        assert_eq!(entry(&r, p)["outcome"], "removed");
        assert!(!p.exists());
    }
    assert_eq!(bare.exists(), !all_seen);
    assert_eq!(
        entry(&r, &bare)["verdict"],
        if all_seen { "stale" } else { "holders-unknown" }
    );
}
