//! `kvc push`, `kvc pull` and `kvc remote` against a real S3 server on
//! 127.0.0.1 that the tests start themselves (s3s-fs in this process:
//! `tests/support/s3server.rs`): SigV4, multipart uploads, conditional
//! creates and completions as S3 does them. Fixtures are byte-level
//! (`tests/common`); the kvc under test is the binary, a separate process,
//! so a push can be killed mid-upload.

mod common;
#[path = "support/s3server.rs"]
mod s3server;

use common::{chat, mainline, Ckpt, TestEnv, NOW};
use s3server::S3Server;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const BUCKET: &str = "kvc-test";
const REMOTE: &str = "s3://kvc-test/fleet";

/// Two cache directories (`env.cache`, `b`) and a server with a bucket.
struct Fleet {
    env: TestEnv,
    b: PathBuf,
    server: S3Server,
    _s3: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let env = TestEnv::new();
        let b = env.root.path().join("b");
        std::fs::create_dir(&b).unwrap();
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o700)).unwrap();
        let s3 = tempfile::tempdir().unwrap();
        let server = S3Server::start(s3.path(), 0).unwrap();
        server.create_bucket(BUCKET).unwrap();
        Fleet {
            env,
            b,
            server,
            _s3: s3,
        }
    }

    /// `kvc` with the server's environment and `KVC_REMOTE`.
    fn kvc(&self) -> assert_cmd::Command {
        let mut c = self.env.kvc();
        for (k, v) in self.server.env() {
            c.env(k, v);
        }
        c.env("KVC_REMOTE", REMOTE);
        c
    }

    /// Run `kvc ARGS --json`: its JSON and exit code.
    fn json(&self, args: &[&str]) -> (Value, i32) {
        let out = self.kvc().args(args).arg("--json").output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "kvc {args:?} (exit {code}): {e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (v, code)
    }

    fn push_all(&self) -> (Value, i32) {
        let dir = self.env.cache.to_str().unwrap().to_string();
        self.json(&["push", "--all", "-d", &dir])
    }

    fn pull_all(&self) -> (Value, i32) {
        let dir = self.b.to_str().unwrap().to_string();
        self.json(&["pull", "--all", "-d", &dir])
    }

    /// The object's file on the server's disk.
    fn object_file(&self, ns: &str, key: &str) -> PathBuf {
        self.server
            .root
            .join(BUCKET)
            .join("fleet")
            .join(ns)
            .join(format!("{key}.kv"))
    }

    /// A std `Command` for kvc with the same environment, to spawn and kill.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"));
        c.env_clear()
            .env("HOME", self.env.root.path().join("home"))
            .env("KVC_REMOTE", REMOTE)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in self.server.env() {
            c.env(k, v);
        }
        c.spawn().unwrap()
    }
}

fn actions(v: &Value) -> Vec<String> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// A checkpoint big enough for a multipart upload (8 MiB parts: two),
/// with a GLM-5.2 body, which `kvc verify` takes as opaque.
fn big(text: &str) -> Ckpt {
    Ckpt::new(chat(text))
        .mainline()
        .model(2)
        .opaque_payload((11 << 20) + 123)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".kvc")
        .collect();
    v.sort();
    v
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_caches_share_checkpoints_byte_identical_and_verifying() {
    let f = Fleet::new();
    let small = mainline(chat("what is a KV cache?"));
    let large = big("summarise this long document");
    f.env.add(&small);
    f.env.add(&large);
    let (v, code) = f.push_all();
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(actions(&v), ["pushed", "pushed"]);
    assert_eq!(v["counts"]["pushed"], 2);
    // One object per checkpoint, under its model.
    assert!(f.object_file("flash", &small.key()).is_file());
    assert!(f.object_file("glm-5.2", &large.key()).is_file());
    let (v, code) = f.pull_all();
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["counts"]["installed"], 2);
    for c in [&small, &large] {
        let got = f.b.join(c.file_name());
        assert_eq!(std::fs::read(&got).unwrap(), c.bytes());
        assert_eq!(
            std::fs::metadata(&got).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(common::verify_errors(&f.b), Vec::<String>::new());
    // Again: nothing to send, nothing to fetch.
    let (v, _) = f.push_all();
    assert_eq!(actions(&v), ["present", "present"]);
    assert_eq!(v["bytes_sent"], 0);
    let (v, _) = f.pull_all();
    assert_eq!(actions(&v), ["present", "present"]);
    // Journals: what left a, what arrived in b.
    let (log, _) = f.json(&["log", f.b.to_str().unwrap()]);
    let ops: Vec<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["pull", "pull"]);
    let (log, _) = f.json(&["log", f.env.cache.to_str().unwrap()]);
    assert_eq!(log["records"].as_array().unwrap().len(), 2);
}

#[test]
fn an_upload_killed_half_way_is_resumed_by_the_next_push() {
    let f = Fleet::new();
    let c = big("a long prefill worth sharing");
    f.env.add(&c);
    let size = c.bytes().len() as u64;
    // Hold the second part: the first arrives, the process dies.
    f.server.faults.hold_parts_from.store(2, Ordering::SeqCst);
    f.server.faults.holding.store(true, Ordering::SeqCst);
    let dir = f.env.cache.to_str().unwrap().to_string();
    let mut child = f.spawn(&["push", "--all", "-d", &dir]);
    wait_for("the first part, and the second held", || {
        f.server.faults.parts_received.load(Ordering::SeqCst) >= 1
            && f.server.faults.held.load(Ordering::SeqCst) >= 1
    });
    // The state is saved after the part: give it the moment it takes.
    wait_for("the upload state", || {
        std::fs::read_dir(f.env.cache.join(".kvc/uploads"))
            .map(|d| {
                // The state itself, not a temp on its way to replace it.
                d.flatten().any(|e| {
                    e.file_name().to_string_lossy().ends_with(".json")
                        && std::fs::read_to_string(e.path())
                            .is_ok_and(|s| s.contains("\"parts\":[\""))
                })
            })
            .unwrap_or(false)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    f.server.faults.holding.store(false, Ordering::SeqCst);
    assert!(!f.object_file("glm-5.2", &c.key()).exists());
    let (v, code) = f.push_all();
    assert_eq!(code, 0, "{v:#}");
    let e = &v["entries"][0];
    assert_eq!(e["action"], "pushed", "{v:#}");
    assert_eq!(e["resumed_parts"], 1, "{v:#}");
    assert_eq!(e["bytes_sent"].as_u64().unwrap(), size - (8 << 20));
    assert!(!f.env.cache.join(".kvc/uploads").exists());
    let (v, code) = f.pull_all();
    assert_eq!((code, actions(&v)), (0, vec!["installed".to_string()]));
    assert_eq!(std::fs::read(f.b.join(c.file_name())).unwrap(), c.bytes());
}

#[test]
fn gc_aborts_an_abandoned_upload_and_the_next_push_starts_over() {
    let f = Fleet::new();
    let c = big("abandoned");
    f.env.add(&c);
    f.server.faults.hold_parts_from.store(2, Ordering::SeqCst);
    f.server.faults.holding.store(true, Ordering::SeqCst);
    let dir = f.env.cache.to_str().unwrap().to_string();
    let mut child = f.spawn(&["push", "--all", "-d", &dir]);
    wait_for("a part held", || {
        f.server.faults.held.load(Ordering::SeqCst) >= 1
            && f.server.faults.parts_received.load(Ordering::SeqCst) >= 1
    });
    child.kill().unwrap();
    child.wait().unwrap();
    f.server.faults.holding.store(false, Ordering::SeqCst);
    // A day old by --now: stale.
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2 * 86_400)
        .to_string();
    let (v, code) = f.json(&["remote", "gc", "--dry-run", "--now", &later]);
    assert_eq!(code, 0);
    assert_eq!(v["uploads"][0]["action"], "planned", "{v:#}");
    let (v, _) = f.json(&["remote", "gc", "--now", &later]);
    assert_eq!(v["aborted"], 1, "{v:#}");
    let (v, _) = f.json(&["remote", "gc", "--now", &later]);
    assert_eq!(v["uploads"].as_array().unwrap().len(), 0);
    // The state names an upload the remote forgot: a fresh upload.
    let (v, code) = f.push_all();
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["entries"][0]["action"], "pushed");
    assert_eq!(
        v["entries"][0]["bytes_sent"].as_u64().unwrap(),
        c.bytes().len() as u64
    );
}

/// Host a starts pushing and is held back at the server; host b pushes
/// the same checkpoint (other hit counts: other bytes) and finishes; a's
/// upload then completes only if nothing is there: it is not, so a
/// reports the checkpoint present and the object stays b's, consistent.
fn race(c_a: Ckpt, c_b: Ckpt, multipart: bool) {
    let f = Fleet::new();
    f.env.add(&c_a);
    std::fs::write(f.b.join(c_b.file_name()), c_b.bytes()).unwrap();
    if multipart {
        f.server.faults.hold_parts_from.store(2, Ordering::SeqCst);
    }
    f.server.faults.holding.store(true, Ordering::SeqCst);
    let a = f.env.cache.to_str().unwrap().to_string();
    let host_a = f.spawn(&["push", "--all", "-d", &a, "--json"]);
    wait_for("host a held", || {
        f.server.faults.held.load(Ordering::SeqCst) >= 1
    });
    let b = f.b.to_str().unwrap().to_string();
    let (vb, code) = f.json(&["push", "--all", "-d", &b]);
    assert_eq!(
        (code, actions(&vb)),
        (0, vec!["pushed".to_string()]),
        "{vb:#}"
    );
    f.server.faults.holding.store(false, Ordering::SeqCst);
    let out = host_a.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let va: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(actions(&va), ["present"], "{va:#}");
    assert!(va["entries"][0]["message"]
        .as_str()
        .unwrap()
        .contains("another host pushed it first"));
    let ns = if multipart { "glm-5.2" } else { "flash" };
    assert_eq!(
        std::fs::read(f.object_file(ns, &c_b.key())).unwrap(),
        c_b.bytes()
    );
    // And it pulls, verified, into a third cache.
    let c = f.env.root.path().join("c");
    let (v, code) = f.json(&["pull", "--all", "-d", c.to_str().unwrap()]);
    assert_eq!(
        (code, actions(&v)),
        (0, vec!["installed".to_string()]),
        "{v:#}"
    );
    assert_eq!(std::fs::read(c.join(c_b.file_name())).unwrap(), c_b.bytes());
}

#[test]
fn two_hosts_pushing_one_small_checkpoint_do_not_race() {
    let text = chat("the same system prompt on every host");
    race(
        mainline(text.clone()).hits(1, NOW),
        mainline(text).hits(7, NOW + 60),
        false,
    );
}

#[test]
fn two_hosts_pushing_one_large_checkpoint_do_not_race() {
    race(
        big("the same long document").hits(1, NOW),
        big("the same long document").hits(9, NOW + 60),
        true,
    );
}

#[test]
fn a_corrupted_object_is_refused_on_pull_and_leaves_nothing() {
    let f = Fleet::new();
    let c = mainline(chat("will be damaged on the server"));
    f.env.add(&c);
    f.push_all();
    let obj = f.object_file("flash", &c.key());
    let mut bytes = std::fs::read(&obj).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    std::fs::write(&obj, &bytes).unwrap();
    let (v, code) = f.pull_all();
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(actions(&v), ["rejected"]);
    assert!(v["entries"][0]["message"]
        .as_str()
        .unwrap()
        .contains("BLAKE3 digest mismatch"));
    assert_eq!(names(&f.b), Vec::<String>::new());
}

#[test]
fn read_only_hosts_may_pull_and_nothing_else() {
    let f = Fleet::new();
    f.env.add(&mainline(chat("read only")));
    let dir = f.env.cache.to_str().unwrap().to_string();
    for args in [
        vec!["push", "--all", "-d", &dir, "--read-only"],
        vec!["remote", "gc", "--read-only"],
        vec!["remote", "rm", "abcd", "--read-only"],
    ] {
        let out = f.kvc().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("read-only") && err.lines().count() == 1,
            "{err}"
        );
    }
    let out = f
        .kvc()
        .env("KVC_REMOTE_READ_ONLY", "1")
        .args(["push", "--all", "-d", &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(f
        .server
        .root
        .join(BUCKET)
        .read_dir()
        .unwrap()
        .next()
        .is_none());
    f.push_all();
    let b = f.b.to_str().unwrap().to_string();
    let out = f
        .kvc()
        .args(["pull", "--all", "-d", &b, "--read-only"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(names(&f.b).len(), 1);
    // The summary line import's report also ends with.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 installed, 0 replaced, 0 present, 0 skipped, 0 rejected; ")
            && stdout.contains(" from s3://"),
        "{stdout}"
    );
}

#[test]
fn missing_or_wrong_credentials_are_one_clear_line() {
    let f = Fleet::new();
    f.env.add(&mainline(chat("secret")));
    let dir = f.env.cache.to_str().unwrap().to_string();
    let out = f
        .env
        .kvc()
        .env("AWS_ENDPOINT_URL", &f.server.endpoint)
        .args(["push", "--all", "-d", &dir, "--remote", REMOTE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("kvc: s3://kvc-test/fleet: no AWS credentials"),
        "{err}"
    );
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    // A wrong secret: the server checks the signature.
    let out = f
        .kvc()
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .args(["push", "--all", "-d", &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    // No remote at all.
    let out = f.env.kvc().args(["remote", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KVC_REMOTE"));
}

#[test]
fn remote_ls_has_the_columns_and_json_of_ls() {
    let f = Fleet::new();
    let c = mainline(chat("list me")).hits(3, NOW);
    f.env.add(&c);
    f.push_all();
    let (local, _) = f.json(&[
        "ls",
        f.env.cache.to_str().unwrap(),
        "--now",
        &NOW.to_string(),
    ]);
    let (remote, code) = f.json(&["remote", "ls", "--now", &NOW.to_string()]);
    assert_eq!(code, 0);
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&local), keys(&remote));
    assert_eq!(keys(&local["dirs"][0]), keys(&remote["dirs"][0]));
    let (l, r) = (
        &local["dirs"][0]["checkpoints"][0],
        &remote["dirs"][0]["checkpoints"][0],
    );
    assert_eq!(keys(l), keys(r));
    for field in [
        "key", "size", "tokens", "hits", "reason", "dialect", "title", "score",
    ] {
        assert_eq!(l[field], r[field], "{field}");
    }
    assert_eq!(remote["dirs"][0]["dir"], format!("{REMOTE}/flash"));
    // The table: ls's header.
    let out = f.kvc().args(["remote", "ls"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap().contains("KEY") && text.contains("TITLE"),
        "{text}"
    );
    assert!(text.contains("list me"), "{text}");
    // An object that is not kvc's, and one without a record.
    std::fs::write(f.server.root.join(BUCKET).join("fleet/notes.txt"), b"x").unwrap();
    std::fs::create_dir_all(f.server.root.join(BUCKET).join("fleet/pro")).unwrap();
    std::fs::write(f.object_file("pro", &c.key()), c.bytes()).unwrap();
    let (v, _) = f.json(&["remote", "ls"]);
    let dirs = v["dirs"].as_array().unwrap();
    assert_eq!(dirs[0]["strays"][0]["file"], "notes.txt", "{v:#}");
    let pro = dirs
        .iter()
        .find(|d| d["dir"] == format!("{REMOTE}/pro"))
        .unwrap();
    assert_eq!(pro["invalid"][0]["code"], "bad-record", "{v:#}");
}

#[test]
fn pull_match_fetches_what_the_engine_would_load() {
    let f = Fleet::new();
    let system = chat("You are the fleet's assistant.");
    let mut turn = system.clone();
    turn.extend_from_slice("<｜User｜>and now a question".as_bytes());
    let short = mainline(system);
    let long = mainline(turn.clone());
    f.env.add(&short);
    f.env.add(&long);
    f.env.add(&mainline(chat("unrelated")));
    f.push_all();
    let mut prompt = turn;
    prompt.extend_from_slice("<｜Assistant｜>".as_bytes());
    let p = f.env.root.path().join("prompt.txt");
    std::fs::write(&p, &prompt).unwrap();
    let b = f.b.to_str().unwrap().to_string();
    let (v, code) = f.json(&["pull", "--match", p.to_str().unwrap(), "-d", &b]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["match"]["chosen"], long.key());
    assert_eq!(names(&f.b), [long.file_name()]);
    // kvc match, on the pulled cache, agrees: a hit.
    std::fs::write(&p, &prompt).unwrap();
    let out = f
        .kvc()
        .args(["match", "--dir", &b, p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A prompt nothing on the remote prefixes: a miss, exit 1.
    std::fs::write(&p, chat("never seen")).unwrap();
    let (v, code) = f.json(&["pull", "--match", p.to_str().unwrap(), "-d", &b]);
    assert_eq!(code, 1);
    assert_eq!(v["match"]["chosen"], Value::Null);
}

#[test]
fn exclude_text_keeps_matching_prompts_home() {
    let f = Fleet::new();
    let secret = mainline(chat("my api_key = sk-0123456789abcdef"));
    let fine = mainline(chat("what's the weather"));
    f.env.add(&secret);
    f.env.add(&fine);
    let dir = f.env.cache.to_str().unwrap().to_string();
    let (v, code) = f.json(&[
        "push",
        "--all",
        "-d",
        &dir,
        "--exclude-text",
        r"(?i)api[_-]?key\s*=\s*\S{8,}",
    ]);
    assert_eq!(code, 0, "{v:#}");
    let by_key = |k: &str| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == k)
            .unwrap()["action"]
            .clone()
    };
    assert_eq!(by_key(&secret.key()), "excluded");
    assert_eq!(by_key(&fine.key()), "pushed");
    assert!(!f.object_file("flash", &secret.key()).exists());
    let out = f
        .kvc()
        .args(["push", "--all", "-d", &dir, "--exclude-text", "("])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rm_and_gc_trim_the_remote() {
    let f = Fleet::new();
    let cs: Vec<Ckpt> = (0..3)
        .map(|i| mainline(chat(&format!("checkpoint {i}"))).hits(0, NOW - i * 40 * 86_400))
        .collect();
    for c in &cs {
        f.env.add(c);
    }
    f.push_all();
    let (v, code) = f.json(&["remote", "rm", &cs[0].key()[..8], "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(v["objects"][0]["action"], "planned");
    assert!(f.object_file("flash", &cs[0].key()).exists());
    let (v, _) = f.json(&["remote", "rm", &cs[0].key()]);
    assert_eq!(v["removed"], 1, "{v:#}");
    assert!(!f.object_file("flash", &cs[0].key()).exists());
    // Objects are pushed now: age by --now from well ahead.
    let ahead = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 100 * 86_400)
        .to_string();
    let (v, _) = f.json(&["remote", "gc", "--max-age", "30d", "--now", &ahead]);
    assert_eq!(v["removed"], 2, "{v:#}");
    let (v, _) = f.json(&["remote", "ls"]);
    assert_eq!(v["dirs"][0]["checkpoints"].as_array().unwrap().len(), 0);
}
