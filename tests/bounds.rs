//! Every bound from the file system, not from the content (issue 12): the
//! memory and time kvc spends on a file depend on constants, never on the
//! lengths the file claims or on how many entries it holds. Each case is
//! the bounded form of one an adversarial review reproduced, run through
//! the real binary with its peak RSS measured (`wait4`), with ceilings
//! fixed here that the unbounded code it replaced exceeds many times over.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Set when this test binary is re-executed as the RSS probe
/// (`rss_probe`): a JSON `[argv, cwd, home, out, err, result]`.
const PROBE_ENV: &str = "KVC_TEST_RSS_PROBE";

/// Run `kvc ARGS` (in `env`, as `kvc_command` does) to its end; its output
/// and its peak resident set size in KiB.
///
/// The peak comes from `wait4`'s accounting of that one child. Linux counts
/// in it what the child's address space held before `exec`, and a spawned
/// child shares its parent's until then: measured from this test process,
/// which holds fixtures of hundreds of MiB, every child would look that
/// big. So a fresh copy of this test binary (small) spawns kvc and
/// measures it (`rss_probe`).
fn run_measured(env: &TestEnv, args: &[&str]) -> (std::process::Output, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (out, err, result) = (
        tmp.path().join("out"),
        tmp.path().join("err"),
        tmp.path().join("result"),
    );
    let spec = serde_json::json!([
        args,
        env.root.path(),
        env.root.path().join("home"),
        out,
        err,
        result,
    ]);
    let probe = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rss_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, spec.to_string())
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let r: Vec<i64> = serde_json::from_slice(&fs::read(&result).unwrap()).unwrap();
    use std::os::unix::process::ExitStatusExt;
    let output = std::process::Output {
        status: std::process::ExitStatus::from_raw(r[0] as i32),
        stdout: fs::read(&out).unwrap(),
        stderr: fs::read(&err).unwrap(),
    };
    (output, r[1] as u64)
}

/// Not a test of its own: with [`PROBE_ENV`] set, run kvc as asked and
/// write its wait status and peak RSS (KiB). Without it, nothing.
#[test]
fn rss_probe() {
    let Ok(spec) = std::env::var(PROBE_ENV) else {
        return;
    };
    let (args, cwd, home, out, err, result): (Vec<String>, String, String, String, String, String) =
        serde_json::from_str(&spec).unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"))
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(cwd)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(out).unwrap())
        .stderr(fs::File::create(err).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain data the kernel fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose pid we hold, and writes only
    // into the two locals it is given; the `Child` is not waited for
    // afterwards.
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, child.id() as libc::pid_t, "wait4 failed");
    std::mem::forget(child);
    fs::write(
        result,
        serde_json::json!([status, usage.ru_maxrss]).to_string(),
    )
    .unwrap();
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Peak RSS any of these runs may reach, KiB. A debug kvc listing a small
/// directory peaks at about 10 MiB; the cases below would take 144 MiB to
/// 1.5 GiB if a file's bytes were held.
const RSS_CEILING_KIB: u64 = 64 * 1024;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A checkpoint with ext bit 0 whose tool-id map is three 512 MiB DSML
/// blocks left as holes: a 1.5 GiB trailer that takes no disk. ds4 accepts
/// DSML blocks up to 512 MiB (FORMAT.md §5).
fn sparse_trailer(env: &TestEnv) -> (std::path::PathBuf, u64) {
    let mut c = Ckpt::new(chat("a sparse trailer"));
    c.ext_flags = 1;
    let head = c.bytes();
    let path = env.add(&c);
    let dsml = 512u32 << 20;
    let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut at = head.len() as u64;
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut section = b"KTM\x01".to_vec();
    section.extend_from_slice(&3u32.to_le_bytes());
    f.write_all(&section).unwrap();
    at += section.len() as u64;
    for i in 0..3u8 {
        f.seek(SeekFrom::Start(at)).unwrap();
        let mut e = 1u32.to_le_bytes().to_vec();
        e.extend_from_slice(&dsml.to_le_bytes());
        e.push(b'a' + i);
        f.write_all(&e).unwrap();
        at += e.len() as u64 + dsml as u64;
    }
    f.set_len(at).unwrap();
    (path, at - head.len() as u64)
}

#[test]
fn a_sparse_1_5_gib_trailer_costs_a_few_reads_not_its_size() {
    let env = TestEnv::new();
    let (path, trailer) = sparse_trailer(&env);
    assert!(trailer > 3 * (512 << 20));
    let file = path.to_str().unwrap();

    let (out, rss) = run_measured(&env, &["verify", "--json", file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let codes: Vec<&str> = v["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // A valid map whose blocks, longer than the text, cannot be in it.
    assert_eq!(codes, ["trailer-dsml-missing"]);
    eprintln!("measured: verify of a 1.5 GiB sparse trailer: {rss} KiB peak");
    assert!(rss < RSS_CEILING_KIB, "verify: {rss} KiB");
    // Read: the prefix, the text, the DSV4 layout and the entry headers.
    let read = v["files"][0]["bytes_read"].as_u64().unwrap();
    assert!(read < 64 << 10, "verify read {read} bytes");

    // A command that must hold the map to show it says why it will not.
    let (out, rss) = run_measured(&env, &["trailer", "ls", file]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than kvc holds in memory"), "{err}");
    assert!(rss < RSS_CEILING_KIB, "trailer ls: {rss} KiB");

    // Stripping it reads none of it.
    let (out, rss) = run_measured(&env, &["trailer", "strip", file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(rss < RSS_CEILING_KIB, "trailer strip: {rss} KiB");
    let len = fs::metadata(&path).unwrap().len();
    assert!(len < 1 << 20, "the trailer is gone: {len} bytes left");
}

/// A tool-id map of ds4's maximum 400,000 entries, none of whose DSML
/// blocks is in a 4 MiB text: one search per entry took minutes; one
/// multi-pattern pass (per MiB of patterns) takes well under one.
#[test]
fn four_hundred_thousand_absent_entries_are_looked_for_in_a_few_passes() {
    let env = TestEnv::new();
    let mut text = chat("a long conversation");
    while text.len() < 4 << 20 {
        text.extend_from_slice(b" the model thought about it and answered, ");
    }
    let ids: Vec<Vec<u8>> = (0..400_000).map(|i| format!("c{i}").into_bytes()).collect();
    let blocks: Vec<Vec<u8>> = (0..400_000)
        .map(|i| format!("<｜DSML｜invoke name=\"tool_{i}\">").into_bytes())
        .collect();
    let entries: Vec<(&[u8], &[u8])> = ids
        .iter()
        .zip(&blocks)
        .map(|(i, b)| (i.as_slice(), b.as_slice()))
        .collect();
    let c = Ckpt::new(text.clone()).with_tool_map(&entries);
    let path = env.add(&c);
    let trailer = tool_map(&entries).len() as u64;
    let t0 = Instant::now();
    let (out, rss) = run_measured(&env, &["verify", "--json", path.to_str().unwrap()]);
    let took = t0.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let f = &v["files"][0];
    assert_eq!(f["findings"][0]["code"], "trailer-dsml-missing");
    let msg = f["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("400000 of 400000 tool-map entries"),
        "{msg}"
    );
    assert!(msg.contains("c0, c1, c2 and 399997 more"), "{msg}");
    // Every block read once; the text once to hash it and once per MiB of
    // patterns: far from one pass per entry.
    let read = f["bytes_read"].as_u64().unwrap();
    let passes = (read - trailer) / text.len() as u64;
    assert!(
        passes <= 1 + trailer / (1 << 20) + 1,
        "{passes} passes over the text"
    );
    eprintln!(
        "measured: 400,000 absent entries, 4 MiB text: {took:?}, {passes} passes, {rss} KiB peak"
    );
    assert!(took < Duration::from_secs(60), "verify took {took:?}");
    assert!(rss < 2 * RSS_CEILING_KIB, "verify: {rss} KiB");
}

/// `kvc ls` titles every checkpoint from its text and checks the name
/// against it, streaming: three 48 MiB texts cost a buffer, not 144 MiB.
#[test]
fn a_listing_holds_no_text() {
    let env = TestEnv::new();
    for i in 0..3u8 {
        let mut text = chat(&format!("conversation {i}"));
        text.resize(48 << 20, b' ');
        text.extend_from_slice(format!("{i}<｜Assistant｜>").as_bytes());
        let mut c = Ckpt::new(text).mainline();
        c.reason = REASON_CONTINUED;
        env.add(&c);
    }
    let dir = env.cache.to_str().unwrap().to_string();
    let (out, rss) = run_measured(&env, &["ls", "--json", "--now", &NOW.to_string(), &dir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let titles: Vec<&str> = v["dirs"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 3);
    assert!(
        titles.iter().all(|t| t.starts_with("conversation")),
        "{titles:?}"
    );
    eprintln!("measured: ls of three 48 MiB texts: {rss} KiB peak");
    assert!(rss < RSS_CEILING_KIB, "ls: {rss} KiB");
    // Eviction's superseded test streams them too.
    let (out, rss) = run_measured(
        &env,
        &[
            "evict",
            "--dry-run",
            "--yes",
            "--json",
            "--budget",
            "1GiB",
            "--now",
            &NOW.to_string(),
            &dir,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(rss < RSS_CEILING_KIB, "evict: {rss} KiB");
}

/// 4,000 checkpoints each one byte longer than the last, every one a
/// prefix of the next: comparing texts pairwise is O(n² · L) (over 20 s
/// before streaming prefix hashes); streaming each text once is linear.
#[test]
fn superseded_detection_over_4000_chained_files_is_linear() {
    let env = TestEnv::new();
    let base = chat("a chain");
    let n = 4000;
    let mut text = base.clone();
    text.extend((0..n).map(|i| b'a' + (i % 26) as u8));
    for len in base.len() + 1..=base.len() + n {
        let mut c = Ckpt::new(text[..len].to_vec()).mainline();
        c.reason = REASON_CONTINUED;
        c.payload = vec![0; 16];
        env.add(&c);
    }
    let dir = env.cache.to_str().unwrap().to_string();
    let t0 = Instant::now();
    let (out, rss) = run_measured(
        &env,
        &[
            "ls",
            "--json",
            "--no-title",
            "--now",
            &NOW.to_string(),
            &dir,
        ],
    );
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let sup = v["dirs"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["superseded"] == true)
        .count();
    // All but the longest.
    assert_eq!(sup, n - 1);
    eprintln!("measured: ls of 4,000 chained waypoints: {took:?}, {rss} KiB peak");
    assert!(took < Duration::from_secs(20), "ls took {took:?}");
    assert!(rss < RSS_CEILING_KIB, "ls: {rss} KiB");
}

#[test]
fn kvc_log_reads_only_a_regular_file() {
    let env = TestEnv::new();
    let state = env.cache.join(".kvc");
    fs::create_dir(&state).unwrap();
    let journal = state.join("journal");
    // A FIFO: opening it to read would wait for a writer forever.
    let c = std::ffi::CString::new(journal.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let t0 = Instant::now();
    let (out, _) = run_measured(&env, &["log", arg(&env.cache)]);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a regular file"), "{err}");
    // A link to /dev/zero (endless) is not followed.
    fs::remove_file(&journal).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &journal).unwrap();
    let (out, rss) = run_measured(&env, &["log", env.cache.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(rss < RSS_CEILING_KIB);
}

/// A ustar header, written by hand (POSIX.1-1988).
fn ustar(name: &str, size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], v: u64| {
        let s = format!("{v:0w$o}", w = field.len() - 1);
        field[..s.len()].copy_from_slice(s.as_bytes());
    };
    octal(&mut h[100..108], 0o600);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// A stream of 200,000 junk entries and a 60 MiB manifest of one string:
/// import keeps a counter, not a row per entry, and parses the manifest
/// without holding it.
#[test]
fn import_memory_does_not_grow_with_entries_or_the_manifest() {
    let env = TestEnv::new();
    let n = 200_000;
    let mut tar = Vec::with_capacity(n * 512 + (61 << 20));
    for i in 0..n {
        tar.extend_from_slice(&ustar(&format!("junk-{i}.txt"), 0));
    }
    let mut manifest = br#"{"bundle":1,"kvc_version":""#.to_vec();
    manifest.resize(manifest.len() + (60 << 20), b'x');
    manifest.extend_from_slice(br#"","exported_at":0,"entries":[]}"#);
    tar.extend_from_slice(&ustar("MANIFEST.json", manifest.len() as u64));
    tar.extend_from_slice(&manifest);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    let bundle = env.root.path().join("junk.tar");
    fs::write(&bundle, &tar).unwrap();
    drop(tar);
    let (out, rss) = run_measured(
        &env,
        &[
            "import",
            "--json",
            bundle.to_str().unwrap(),
            "--dir",
            env.cache.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["counts"]["rejected"], n + 1);
    assert_eq!(v["rejected_unlisted"], n + 1 - 1000);
    assert_eq!(v["entries"].as_array().unwrap().len(), 1000);
    eprintln!("measured: import of 200,000 junk entries and a 60 MiB manifest: {rss} KiB peak");
    assert!(rss < RSS_CEILING_KIB, "import: {rss} KiB");
}

/// `cat` streams the text to its output and `show` streams it to title
/// and hash it: neither holds a 64 MiB text (`show --text`, which asks to
/// print it, does).
#[test]
fn cat_and_show_stream_the_text() {
    let env = TestEnv::new();
    let mut text = chat("a very long one");
    text.resize(64 << 20, b'.');
    let c = Ckpt::new(text.clone());
    let p = env.add(&c);
    let file = arg(&p);
    let (out, rss) = run_measured(&env, &["cat", file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == text, "cat wrote other bytes");
    eprintln!("measured: cat of a 64 MiB text: {rss} KiB peak");
    assert!(rss < RSS_CEILING_KIB, "cat: {rss} KiB");
    let (out, rss) = run_measured(&env, &["show", "--json", file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["title"], "a very long one");
    assert!(rss < RSS_CEILING_KIB, "show: {rss} KiB");
}

/// A directory of `n` small checkpoints, distinct texts, one payload;
/// modes as ds4 leaves them (0700, 0600), so verify finds nothing.
fn many(dir: &Path, n: usize) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    let template = Ckpt::new(chat("template"));
    for i in 0..n {
        let mut c = template.clone();
        c.text = chat(&format!("conversation {i}"));
        let p = dir.join(c.file_name());
        fs::write(&p, c.bytes()).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Issue 16: what a command holds per checkpoint of a large cache is a
/// compact record (and the title when it shows it), not what the output
/// or the files hold. Measured as the slope of peak RSS between 2,500 and
/// 10,000 checkpoints (which cancels what any run costs; both above the
/// rows a table renders at once on two threads), against a
/// ceiling the records of before issue 16 exceeded (about 1,100 bytes a
/// checkpoint for `ls --json`, 1,400 for `evict`, 1,500 for `verify`).
#[test]
fn memory_per_checkpoint_is_a_compact_record() {
    let env = TestEnv::new();
    let (small, large) = (2_500usize, 10_000usize);
    let (a, b) = (env.root.path().join("a"), env.root.path().join("b"));
    many(&a, small);
    many(&b, large);
    let now = NOW.to_string();
    let cases: [&[&str]; 7] = [
        &["ls", "--json", "--now", &now],
        &["ls", "--now", &now],
        &["ls", "--json", "--no-title", "--now", &now],
        &[
            "evict",
            "--dry-run",
            "--json",
            "--budget",
            "1TiB",
            "--now",
            &now,
        ],
        &["verify", "--json", "--now", &now],
        &["stats", "--json", "--now", &now],
        &["tree", "--json", "--now", &now],
    ];
    for args in cases {
        let mut rss = [0u64; 2];
        for (i, dir) in [&a, &b].into_iter().enumerate() {
            let mut argv = args.to_vec();
            argv.push(arg(dir));
            let (out, peak) = run_measured(&env, &argv);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            rss[i] = peak;
        }
        let per = (rss[1].saturating_sub(rss[0]) * 1024) / (large - small) as u64;
        eprintln!(
            "measured: {args:?}: {} -> {} KiB, {per} bytes a checkpoint",
            rss[0], rss[1]
        );
        assert!(per <= 768, "{args:?}: {per} bytes a checkpoint");
    }
}
