//! The write session (issue 12): kvc's own state never leads it outside
//! the cache, locks are one per directory and say who holds them, a name
//! is unlinked or moved only while it is the inode judged, and journals
//! and outputs stay sanitized. Each test reproduces a hole an adversarial
//! review found, through the real binary or the library.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use kvc::session::quarantine::{self, Quarantined, Step};
use kvc::session::{Session, SessionOptions};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

fn session() -> Session {
    Session::new(SessionOptions::new("test")).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every name in `dir`, recursively, with its bytes: to prove nothing was
/// written there.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        if m.is_dir() {
            out.extend(tree(&e.path()));
        } else {
            out.push((e.path(), fs::read(e.path()).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_symlinked_state_directory_is_refused_and_nothing_is_written_outside() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("kept"));
    env.add(&c);
    let outside = env.root.path().join("outside");
    fs::create_dir(&outside).unwrap();
    symlink(&outside, env.cache.join(".kvc")).unwrap();
    let out = env
        .kvc()
        .args(["rm", &c.key(), "--dir", env.cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(
        tree(&outside).is_empty(),
        "written outside: {:?}",
        tree(&outside)
    );
    assert!(
        env.cache.join(c.file_name()).exists(),
        "removed without a lock"
    );
}

#[test]
fn a_symlinked_lock_or_journal_is_refused_before_anything_changes() {
    for name in ["lock", "journal"] {
        let env = TestEnv::new();
        let c = Ckpt::new(chat("kept"));
        env.add(&c);
        let state = env.cache.join(".kvc");
        fs::create_dir(&state).unwrap();
        let victim = env.root.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        symlink(&victim, state.join(name)).unwrap();
        let out = env
            .kvc()
            .args(["rm", &c.key(), "--dir", env.cache.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is a symbolic link"),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read(&victim).unwrap(), b"precious", "{name}");
        assert!(env.cache.join(c.file_name()).exists(), "{name}");
    }
    // A FIFO named journal: refused, never opened for writing.
    let env = TestEnv::new();
    let c = Ckpt::new(chat("kept"));
    env.add(&c);
    let state = env.cache.join(".kvc");
    fs::create_dir(&state).unwrap();
    let fifo = std::ffi::CString::new(state.join("journal").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let out = env
        .kvc()
        .args(["rm", &c.key(), "--dir", env.cache.to_str().unwrap()])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    assert!(env.cache.join(c.file_name()).exists());
}

#[test]
fn two_spellings_of_one_directory_are_one_lock() {
    let env = TestEnv::new();
    let a = Ckpt::new(chat("a"));
    let b = Ckpt::new(chat("b"));
    env.add(&a);
    env.add(&b);
    let pa = format!("cache/{}", a.file_name());
    let pb = format!("./cache/{}", b.file_name());
    let out = env
        .kvc()
        .args(["rm", &pa, &pb])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!env.cache.join(a.file_name()).exists());
    assert!(!env.cache.join(b.file_name()).exists());
    // verify --quarantine deadlocked on the same two spellings.
    let mut x = Ckpt::new(chat("broken x"));
    x.tokens = 0;
    let mut y = Ckpt::new(chat("broken y"));
    y.tokens = 0;
    env.add(&x);
    env.add(&y);
    let q = env.root.path().join("q");
    let out = env
        .kvc()
        .arg("verify")
        .arg(format!("cache/{}", x.file_name()))
        .arg(format!("./cache/{}", y.file_name()))
        .arg("--quarantine")
        .arg(&q)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(q.join(x.file_name()).exists() && q.join(y.file_name()).exists());
}

#[test]
fn a_waiting_writer_says_who_holds_the_lock_and_gives_up_with_status_3() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("busy"));
    env.add(&c);
    let mut holder = session();
    holder.lock(&[&env.cache]).unwrap();
    let t0 = Instant::now();
    let out = env
        .kvc()
        .args([
            "rm",
            &c.key(),
            "--dir",
            env.cache.to_str().unwrap(),
            "--wait",
            "2s",
        ])
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("held by pid {} (kvc test", std::process::id())),
        "{err}"
    );
    assert_eq!(err.matches("waiting for the lock").count(), 1, "{err}");
    assert!(err.contains("gave up after waiting 2s"), "{err}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15));
    assert!(env.cache.join(c.file_name()).exists());
    // Released, the same command goes through.
    drop(holder);
    let out = env
        .kvc()
        .args(["rm", &c.key(), "--dir", env.cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The exit status is documented.
    let help = env.kvc().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let words: Vec<&str> = help.split_whitespace().collect();
    assert!(
        words
            .join(" ")
            .contains("3 a writing command gave up waiting"),
        "{help}"
    );
}

#[test]
fn a_temp_files_name_reaches_the_journal_sanitized() {
    let env = TestEnv::new();
    // A dead writer's temp file whose name carries a terminal escape.
    let name = "\u{1b}]0;owned\u{7}\u{202e}.kv.tmp.4194305";
    let p = env.add_raw(name, b"partial save");
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = env
        .kvc()
        .args(["gc", env.cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!p.exists());
    let raw = fs::read(env.cache.join(".kvc/journal")).unwrap();
    assert!(
        !raw.contains(&0x1b) && !raw.contains(&0x07),
        "raw control bytes"
    );
    let j = kvc::session::journal::read(&env.cache).unwrap();
    assert_eq!(j.records[0].key, "\\e]0;owned\\x07\\u{202e}.kv.tmp.4194305");
}

#[test]
fn now_is_the_journals_clock_too() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("timed"));
    env.add(&c);
    let out = env
        .kvc()
        .args([
            "rm",
            &c.key(),
            "--dir",
            env.cache.to_str().unwrap(),
            "--now",
            "1234567",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let j = kvc::session::journal::read(&env.cache).unwrap();
    assert_eq!(j.records[0].time, 1234567);
}

#[test]
fn log_counts_only_what_left_the_cache_as_freed() {
    let src = TestEnv::new();
    let a = Ckpt::new(chat("imported"));
    src.add(&a);
    let bundle = src.export_to("b.tar", &["--all"]);
    let env = TestEnv::new();
    let out = env
        .kvc()
        .arg("import")
        .arg(&bundle)
        .args(["--dir", env.cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let b = Ckpt::new(chat("removed"));
    env.add(&b);
    let out = env
        .kvc()
        .args(["rm", &b.key(), "--dir", env.cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = env.json(&["log", "--json", env.cache.to_str().unwrap()]);
    assert_eq!(v["freed_bytes"], b.bytes().len() as u64);
    assert_eq!(v["totals"]["import"]["records"], 1);
    assert_eq!(v["totals"]["import"]["bytes"], a.bytes().len() as u64);
    assert_eq!(v["totals"]["rm"]["records"], 1);
}

/// A FIFO named like a checkpoint, with a writer waiting for a reader:
/// if verify opened it, the writer's open would return.
#[test]
fn verify_reports_a_fifo_without_opening_it() {
    let env = TestEnv::new();
    let name = format!("{}.kv", sha1_hex(b"fifo"));
    let path = env.cache.join(&name);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let p = path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Blocks until someone opens the FIFO to read.
        let f = fs::OpenOptions::new().write(true).open(&p);
        let _ = tx.send(f.is_ok());
    });
    std::thread::sleep(Duration::from_millis(100));
    for args in [
        vec![
            "verify".to_string(),
            "--json".into(),
            env.cache.to_str().unwrap().into(),
        ],
        vec![
            "verify".to_string(),
            "--json".into(),
            path.to_str().unwrap().into(),
        ],
    ] {
        let out = env.kvc().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let f = &v["files"][0];
        assert_eq!(f["findings"][0]["code"], "not-a-file");
        assert!(
            f["findings"][0]["message"]
                .as_str()
                .unwrap()
                .contains("FIFO"),
            "{f}"
        );
        assert!(rx.try_recv().is_err(), "verify opened the FIFO: {args:?}");
    }
    // Release the writer.
    let _ = fs::File::open(&path);
    assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
}

fn broken(env: &TestEnv, what: &str) -> (Ckpt, PathBuf) {
    let mut c = Ckpt::new(chat(what));
    c.tokens = 0;
    let p = env.add(&c);
    (c, p)
}

fn report_of(path: &Path) -> kvc::verify::VerifyReport {
    kvc::verify::verify_paths(
        &[path.to_path_buf()],
        &kvc::verify::VerifyOptions::default(),
        &kvc::verify::NoProgress,
    )
    .unwrap()
}

/// Replace `path` with new bytes under the same name, as an engine's save
/// does (a new inode renamed into place).
fn engine_saves(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("kv.tmp.1");
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn quarantine_leaves_a_file_an_engine_renamed_into_place_after_the_check() {
    let env = TestEnv::new();
    let (c, p) = broken(&env, "replaced");
    let report = report_of(&p);
    let q = env.root.path().join("q");
    let plan = quarantine::plan(&report, &q).unwrap();
    // The engine saves the key again, healthy, after verify judged it.
    let healthy = Ckpt::new(chat("replaced")).bytes();
    engine_saves(&p, &healthy);
    let mut s = session();
    let r = quarantine::apply(&mut s, &plan, &mut quarantine::NoHooks).unwrap();
    assert!(
        matches!(&r[0].1, Quarantined::LeftInPlace { why } if why.contains("changed since it was checked")),
        "{r:?}"
    );
    assert_eq!(fs::read(&p).unwrap(), healthy);
    assert!(!q.join(c.file_name()).exists());
    assert!(kvc::session::journal::read(&env.cache)
        .unwrap()
        .records
        .is_empty());
}

/// A directory on another file system than the cache, when this host has
/// one (tmpfs at /dev/shm).
fn other_file_system(than: &Path) -> Option<tempfile::TempDir> {
    let d = tempfile::tempdir_in("/dev/shm").ok()?;
    let dev = |p: &Path| fs::metadata(p).unwrap().dev();
    (dev(d.path()) != dev(than)).then_some(d)
}

#[test]
fn a_copy_across_file_systems_is_never_partial_under_its_final_name() {
    let env = TestEnv::new();
    let Some(other) = other_file_system(&env.cache) else {
        eprintln!("skipped: no second file system at /dev/shm");
        return;
    };
    let (c, p) = broken(&env, "moved across");
    let q = other.path().join("q");
    let report = report_of(&p);
    let plan = quarantine::plan(&report, &q).unwrap();
    struct Watch {
        dest: PathBuf,
        steps: Vec<(Step, bool, usize)>,
    }
    impl quarantine::Hooks for Watch {
        fn step(&mut self, item: &quarantine::Item, step: Step) {
            let final_there = self.dest.join(&item.name).exists();
            let temps = fs::read_dir(&self.dest)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .contains(".tmp.")
                })
                .count();
            self.steps.push((step, final_there, temps));
        }
    }
    let mut w = Watch {
        dest: q.clone(),
        steps: Vec::new(),
    };
    let mut s = session();
    let r = quarantine::apply(&mut s, &plan, &mut w).unwrap();
    assert!(
        matches!(&r[0].1, Quarantined::Moved { copied: true, .. }),
        "{r:?}"
    );
    let seen: Vec<(Step, bool, usize)> = w.steps;
    assert_eq!(
        seen,
        [
            (Step::WhyWritten, false, 0),
            // Half copied: under a temp name only.
            (Step::CopyHalf, false, 1),
            (Step::CopySynced, false, 1),
            (Step::Placed, true, 0),
            (Step::Removed, true, 0),
        ]
    );
    assert!(!p.exists());
    assert_eq!(fs::read(q.join(c.file_name())).unwrap(), c.bytes());
    let j = kvc::session::journal::read(&env.cache).unwrap();
    assert_eq!(j.records[0].op, "quarantine");
}

#[test]
fn a_source_replaced_during_a_cross_file_system_copy_stays_in_the_cache() {
    let env = TestEnv::new();
    let Some(other) = other_file_system(&env.cache) else {
        eprintln!("skipped: no second file system at /dev/shm");
        return;
    };
    let (_, p) = broken(&env, "replaced mid-copy");
    let q = other.path().join("q");
    let plan = quarantine::plan(&report_of(&p), &q).unwrap();
    let healthy = Ckpt::new(chat("replaced mid-copy")).bytes();
    struct Saver(PathBuf, Vec<u8>);
    impl quarantine::Hooks for Saver {
        fn step(&mut self, _: &quarantine::Item, step: Step) {
            if step == Step::Placed {
                engine_saves(&self.0, &self.1);
            }
        }
    }
    let mut s = session();
    let r = quarantine::apply(&mut s, &plan, &mut Saver(p.clone(), healthy.clone())).unwrap();
    assert!(
        matches!(&r[0].1, Quarantined::LeftInPlace { why } if why.contains("changed while it was being copied")),
        "{r:?}"
    );
    // The engine's new file was not deleted.
    assert_eq!(fs::read(&p).unwrap(), healthy);
}

#[test]
fn evict_deletes_only_the_inode_it_planned() {
    let env = TestEnv::new();
    let old = Ckpt::new(chat("victim")).mainline();
    let p = env.add(&old);
    let keep = Ckpt::new(chat("survivor")).mainline().hits(9, NOW);
    env.add(&keep);
    let opts = kvc::evict::EvictOptions {
        now: NOW,
        budget: Some(1),
        ..Default::default()
    };
    let plan = kvc::evict::plan_dir(&env.cache, &opts).unwrap();
    assert_eq!(plan.victims.len(), 2);
    // The engine saves the first victim again, byte for byte the same
    // header: a new inode under the planned name.
    struct Resave(PathBuf, bool);
    impl kvc::evict::Hooks for Resave {
        fn before_delete(&mut self, v: &kvc::evict::Victim) {
            if !self.1 && v.path == self.0 {
                self.1 = true;
                let bytes = fs::read(&self.0).unwrap();
                engine_saves(&self.0, &bytes);
            }
        }
    }
    let first = plan.victims[0].path.clone();
    let mut s = session();
    let r = kvc::evict::apply(&mut s, plan, &mut Resave(first.clone(), false)).unwrap();
    assert!(
        matches!(&r.handled[0].fate, kvc::evict::Fate::Touched { change } if change.contains("replaced by another file")),
        "{:?}",
        r.handled[0].fate
    );
    // Planned again: the new file is judged, and goes.
    let _ = p;
    assert!(r.passes >= 2);
}

#[test]
fn an_in_place_rewrite_never_changes_a_hard_linked_copy() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("linked")).with_tool_map(&[(b"x", b"y")]);
    let p = env.add(&c);
    let backup = env.root.path().join("backup.kv");
    fs::hard_link(&p, &backup).unwrap();
    let out = env
        .kvc()
        .args(["trailer", "strip", "--method", "in-place"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("hard links"), "{}", stderr(&out));
    assert_eq!(fs::read(&p).unwrap(), c.bytes());
    // auto copies it: the name gets the new bytes, the backup keeps the old.
    let out = env
        .kvc()
        .args(["trailer", "strip", "--json"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["files"][0]["note"]
        .as_str()
        .unwrap()
        .contains("2 hard links"));
    assert_eq!(fs::read(&backup).unwrap(), c.bytes());
    assert_ne!(fs::read(&p).unwrap(), c.bytes());
    assert_eq!(fs::metadata(&backup).unwrap().nlink(), 1);
}

fn bundle_of(cs: &[&Ckpt]) -> Vec<u8> {
    let src = TestEnv::new();
    for c in cs {
        src.add(c);
    }
    fs::read(src.export_to("b.tar", &["--all"])).unwrap()
}

fn import_opts() -> kvc::bundle::ImportOptions {
    kvc::bundle::ImportOptions {
        on_conflict: kvc::bundle::OnConflict::Skip,
        reset_stats: false,
        now: NOW,
        dry_run: false,
        source: "test".into(),
        budget: None,
        include_agent: false,
        engine: None,
    }
}

#[test]
fn a_stale_temp_of_a_previous_process_with_our_pid_does_not_stop_an_import() {
    let c = Ckpt::new(chat("imported anyway"));
    let tar = bundle_of(&[&c]);
    let env = TestEnv::new();
    // What a killed kvc with the same pid left behind (pids are reused).
    let stale = env
        .cache
        .join(format!("{}.tmp.{}", c.file_name(), std::process::id()));
    fs::write(&stale, b"half a checkpoint").unwrap();
    let r = kvc::bundle::import(
        &tar[..],
        &env.cache,
        &import_opts(),
        &mut kvc::bundle::NoProgress,
    )
    .unwrap();
    assert_eq!(r.count(kvc::bundle::Action::Installed), 1, "{r:?}");
    assert_eq!(fs::read(env.cache.join(c.file_name())).unwrap(), c.bytes());
    assert_eq!(fs::read(&stale).unwrap(), b"half a checkpoint");
}

/// A tar entry named like a checkpoint whose first bytes are no
/// checkpoint: rejected before a byte of it reaches the target.
#[test]
fn an_entry_that_is_no_checkpoint_is_never_written() {
    let good = Ckpt::new(chat("good"));
    let tar = bundle_of(&[&good]);
    // Put 4 MiB of zeros in front, named as a checkpoint, with a record.
    let key = sha1_hex(b"zeros");
    let mut h = tar::Header::new_ustar();
    h.set_path(format!("{key}.kv")).unwrap();
    h.set_size(4 << 20);
    h.set_mode(0o600);
    h.set_cksum();
    let mut stream = h.as_bytes().to_vec();
    stream.resize(stream.len() + (4 << 20), 0);
    stream.extend_from_slice(&tar);
    let env = TestEnv::new();
    struct Watch {
        dir: PathBuf,
        zeros: String,
        current: String,
        temps_seen: usize,
        zero_bytes_seen: u64,
    }
    impl kvc::bundle::Progress for Watch {
        fn entry(&mut self, name: &str) {
            self.current = name.to_string();
        }
        fn advance(&mut self, bytes: u64) {
            if self.current != self.zeros {
                return;
            }
            self.zero_bytes_seen += bytes;
            self.temps_seen += fs::read_dir(&self.dir)
                .map(|d| {
                    d.filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .contains(".tmp.")
                    })
                    .count()
                })
                .unwrap_or(0);
        }
    }
    let mut w = Watch {
        dir: env.cache.clone(),
        zeros: format!("{key}.kv"),
        current: String::new(),
        temps_seen: 0,
        zero_bytes_seen: 0,
    };
    let r = kvc::bundle::import(&stream[..], &env.cache, &import_opts(), &mut w).unwrap();
    let zero = r
        .entries
        .iter()
        .find(|e| e.entry.starts_with(&key))
        .unwrap();
    assert_eq!(zero.action, kvc::bundle::Action::Rejected);
    let msg = zero.message.as_deref().unwrap();
    assert!(msg.contains("skipped, not written"), "{msg}");
    // No temp while it went by, and its 4 MiB were skipped, not streamed
    // through the checks; the good entry after it is installed.
    assert_eq!(w.temps_seen, 0);
    assert_eq!(w.zero_bytes_seen, 0);
    assert_eq!(r.count(kvc::bundle::Action::Installed), 1);
    assert!(!env.cache.join(format!("{key}.kv")).exists());
}

/// The kill hook is gone from the binary, and nothing else that waits on
/// a FIFO remains in reach of a cache: `rm` of a FIFO named as a
/// checkpoint says what it is and leaves it.
#[test]
fn rm_refuses_what_is_not_a_regular_file() {
    let env = TestEnv::new();
    let name = format!("{}.kv", sha1_hex(b"fifo rm"));
    let path = env.cache.join(&name);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let out = env
        .kvc()
        .args(["rm", &name, "--dir", env.cache.to_str().unwrap()])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(path.exists());
}

#[test]
fn rm_removes_only_the_inode_it_resolved() {
    let env = TestEnv::new();
    let c = Ckpt::new(chat("re-saved"));
    let p = env.add(&c);
    let targets = kvc::rm::plan(
        Some(env.cache.as_path()),
        || -> kvc::Result<PathBuf> { unreachable!() },
        &[c.key()],
        false,
    )
    .unwrap();
    struct Resave(PathBuf);
    impl kvc::rm::Hooks for Resave {
        fn before_remove(&mut self, _: &kvc::rm::Target) {
            let bytes = fs::read(&self.0).unwrap();
            engine_saves(&self.0, &bytes);
        }
    }
    let mut s = session();
    let fates = kvc::rm::apply(&mut s, &targets, &mut Resave(p.clone())).unwrap();
    assert!(
        matches!(&fates[0], kvc::rm::RmFate::Changed(_)),
        "{fates:?}"
    );
    assert!(p.exists());
    assert!(kvc::session::journal::read(&env.cache)
        .unwrap()
        .records
        .is_empty());
}

#[test]
fn gc_keeps_a_temp_written_to_after_it_was_judged_stale() {
    let env = TestEnv::new();
    let p = env.add_raw(&format!("{}.kv.tmp.4194305", sha1_hex(b"t")), b"partial");
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let opts = kvc::gc::GcOptions {
        temp_age: Duration::from_secs(3600),
        now: std::time::SystemTime::now(),
    };
    let plan = kvc::gc::plan_dir(&env.cache, &opts).unwrap();
    assert_eq!(plan.stale().count(), 1);
    // A writer appends to it after the look; its mtime stays old (a copy
    // tool preserving times, say), so only the size tells.
    struct Writer(PathBuf, std::time::SystemTime);
    impl kvc::gc::Hooks for Writer {
        fn before_remove(&mut self, _: &kvc::gc::Temp) {
            let mut f = fs::OpenOptions::new().append(true).open(&self.0).unwrap();
            std::io::Write::write_all(&mut f, b" and more").unwrap();
            f.set_modified(self.1).unwrap();
        }
    }
    let mut s = session();
    let r = kvc::gc::apply(&mut s, plan, &opts, &mut Writer(p.clone(), old)).unwrap();
    assert!(
        matches!(r.handled[0].1, kvc::gc::GcFate::Kept(_)),
        "{:?}",
        r.handled[0].1
    );
    assert!(p.exists());
}

#[test]
fn import_waits_for_the_lock_as_long_as_it_is_told() {
    let c = Ckpt::new(chat("waiting to be imported"));
    let tar = bundle_of(&[&c]);
    let env = TestEnv::new();
    let bundle = env.root.path().join("b.tar");
    fs::write(&bundle, tar).unwrap();
    let mut holder = session();
    holder.lock(&[&env.cache]).unwrap();
    let out = env
        .kvc()
        .arg("import")
        .arg(&bundle)
        .args(["--dir", env.cache.to_str().unwrap(), "--wait", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!env.cache.join(c.file_name()).exists());
}

/// A lock file or journal that is a hard link to a file elsewhere (on the
/// same file system) would have kvc truncate or append to that file.
#[test]
fn a_hard_linked_lock_or_journal_is_refused() {
    for name in ["lock", "journal"] {
        let env = TestEnv::new();
        let c = Ckpt::new(chat("kept"));
        env.add(&c);
        let state = env.cache.join(".kvc");
        fs::create_dir(&state).unwrap();
        let victim = env.root.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        fs::hard_link(&victim, state.join(name)).unwrap();
        let out = env
            .kvc()
            .args(["rm", &c.key(), "--dir", env.cache.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("hard links"), "{}", stderr(&out));
        assert_eq!(fs::read(&victim).unwrap(), b"precious", "{name}");
        assert!(env.cache.join(c.file_name()).exists(), "{name}");
    }
}
