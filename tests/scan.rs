//! `kvc::scan::scan_dir` on directories large enough for its parallel path:
//! the result must be what loading each file alone (`scan::load`, which
//! stats the path first) gives, sorted, with links never followed and
//! non-files never read.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use kvc::format::checkpoint::Key;
use kvc::policy;
use kvc::scan::{self, Loaded, ScanOptions};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;

/// Comfortably above the threshold where a scan goes parallel.
const MANY: usize = 150;

fn populate(env: &TestEnv) {
    for i in 0..MANY {
        let mut c =
            Ckpt::new(chat(&format!("question number {i}"))).hits(i as u32 % 7, CREATED + i as u64);
        if i % 3 == 0 {
            c = c.reason(REASON_CONTINUED);
        }
        env.add(&c);
    }
    // Upper-case hex names are checkpoints too (ds4 lower-cases them).
    let upper = Ckpt::new(chat("upper case name"));
    env.add_raw(
        &format!("{}.kv", upper.key().to_uppercase()),
        &upper.bytes(),
    );
    // Broken ones among them.
    let mut lying = Ckpt::new(chat("claims too much text"));
    lying.text_len = Some(0xFFFF_FFF0);
    env.add(&lying);
    env.add_raw(&Ckpt::new(b"empty".to_vec()).file_name(), b"");
    // A link named as a checkpoint, pointing at a healthy one: not followed.
    let target = Ckpt::new(chat("link target"));
    let target_path = env.add(&target);
    std::os::unix::fs::symlink(
        &target_path,
        env.cache.join(format!("{}.kv", "ab".repeat(20))),
    )
    .unwrap();
    // A directory and a FIFO named as checkpoints: never opened as files.
    fs::create_dir(env.cache.join(format!("{}.kv", "cd".repeat(20)))).unwrap();
    let fifo = env.cache.join(format!("{}.kv", "ef".repeat(20)));
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Temp files and strays are sorted out by name.
    env.add_raw(&format!("{}.kv.tmp.4242", "12".repeat(20)), b"partial");
    env.add_raw("notes.txt", b"hello");
}

#[test]
fn parallel_scan_matches_loading_each_file_alone() {
    let env = TestEnv::new();
    populate(&env);
    for read_text in [false, true] {
        let opts = ScanOptions {
            read_text,
            engine: None,
        };
        let s = scan::scan_dir(&env.cache, opts).unwrap();

        let mut names: Vec<String> = fs::read_dir(&env.cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| Key::from_file_name(n).is_some())
            .collect();
        names.sort();
        let (mut want_ok, mut want_bad) = (Vec::new(), Vec::new());
        for n in &names {
            let key = Key::from_file_name(n).unwrap();
            match scan::load(&env.cache.join(n), key, opts) {
                Loaded::Checkpoint(c) => want_ok.push((
                    c.file().into_owned(),
                    c.size,
                    c.mode,
                    c.header.clone(),
                    c.text_title.clone(),
                )),
                Loaded::Invalid(i) => want_bad.push((i.file, i.code, i.size)),
                Loaded::Foreign(f) => panic!("{n} read as foreign: {}", f.what),
                Loaded::Vanished => panic!("{n} vanished"),
            }
        }
        let got_ok: Vec<_> = s
            .checkpoints
            .iter()
            .map(|c| {
                (
                    c.file().into_owned(),
                    c.size,
                    c.mode,
                    c.header.clone(),
                    c.text_title.clone(),
                )
            })
            .collect();
        let got_bad: Vec<_> = s
            .invalid
            .iter()
            .map(|i| (i.file.clone(), i.code, i.size))
            .collect();
        assert_eq!(got_ok, want_ok, "read_text {read_text}");
        assert_eq!(got_bad, want_bad, "read_text {read_text}");

        assert_eq!(
            s.checkpoints.len(),
            MANY + 2,
            "150 chats, the upper-case one, the link target"
        );
        let codes: Vec<&str> = s.invalid.iter().map(|i| i.code.name()).collect();
        for code in ["symlink", "not-a-file", "text-length", "empty"] {
            assert!(codes.contains(&code), "{code} missing from {codes:?}");
        }
        assert_eq!(
            s.invalid
                .iter()
                .filter(|i| i.code.name() == "not-a-file")
                .count(),
            2
        );
        assert_eq!(s.temp_files.len(), 1);
        assert_eq!(s.strays.len(), 1);
        assert!(s.checkpoints.windows(2).all(|w| w[0].file() < w[1].file()));
    }
}

#[test]
fn superseded_waypoints_are_found_from_the_files_texts() {
    let env = TestEnv::new();
    // Conversations whose continued checkpoints are extended by later ones.
    let mut convs = Vec::new();
    for conv in 0..40 {
        let mut t = chat(&format!("conversation {conv}"));
        let mut turns = Vec::new();
        for turn in 0..3 {
            t.extend_from_slice(format!(" turn {turn} of {conv}").as_bytes());
            let reason = if turn < 2 {
                REASON_CONTINUED
            } else {
                REASON_EVICT
            };
            let c = Ckpt::new(t.clone()).reason(reason);
            env.add(&c);
            turns.push(c);
        }
        convs.push(turns);
    }
    let superseded = |read_text: bool| {
        let s = scan::scan_dir(
            &env.cache,
            ScanOptions {
                read_text,
                ..ScanOptions::default()
            },
        )
        .unwrap();
        // Titled from the texts when asked; no text is ever held.
        assert_eq!(
            s.checkpoints.iter().all(|c| c.text_title.is_none()),
            !read_text
        );
        let sup = policy::superseded(&s.checkpoints, |_| true, false);
        let keys: Vec<String> = s
            .checkpoints
            .iter()
            .zip(sup)
            .filter(|(_, x)| *x)
            .map(|(c, _)| c.key.to_string())
            .collect();
        (s, keys)
    };
    // The texts are streamed from the files, whether the scan read titles
    // or not: the same answer. The first two turns of each
    // conversation are superseded by the next.
    let (_, keys) = superseded(false);
    assert_eq!(keys.len(), 80);
    assert_eq!(superseded(true).1, keys);
    for turns in &convs {
        assert!(keys.contains(&turns[0].key()) && keys.contains(&turns[1].key()));
    }

    // A waypoint replaced since the scan (another text under its name)
    // is not superseded; a superseder that vanished supersedes nothing.
    let (s, _) = superseded(false);
    let mut other = Ckpt::new(b"a different and longer text than before, much longer".repeat(4));
    other.name = Some(convs[0][0].file_name());
    fs::write(env.cache.join(convs[0][0].file_name()), other.bytes()).unwrap();
    fs::remove_file(env.cache.join(convs[1][2].file_name())).unwrap();
    let sup = policy::superseded(&s.checkpoints, |_| true, false);
    let now: Vec<String> = s
        .checkpoints
        .iter()
        .zip(sup)
        .filter(|(_, x)| *x)
        .map(|(c, _)| c.key.to_string())
        .collect();
    assert_eq!(now.len(), 78);
    assert!(!now.contains(&convs[0][0].key()));
    assert!(!now.contains(&convs[1][1].key()));
    assert!(now.contains(&convs[1][0].key()));
}

#[test]
fn temp_files_alone_are_what_a_full_scan_lists() {
    let env = TestEnv::new();
    populate(&env);
    env.add_raw(
        "3c315f4983362eb6cdb04a6f46ed11650aa7135f.kv.tmp.31337",
        b"ds4",
    );
    env.add_raw(
        "4d1f6e78cbf9da0f2c6b8f93e536990ab10864a3.4242-0.kv.tmp",
        b"hanzo!",
    );
    env.add_raw("0000000000000000000000000000000000000000.kv.tmp.1", b"");
    let full = scan::scan_dir(&env.cache, ScanOptions::default()).unwrap();
    let alone = scan::temp_files(&env.cache).unwrap();
    let view = |t: &scan::TempFile| (t.file.clone(), t.path.clone(), t.kind, t.size);
    assert_eq!(full.temp_files.len(), 4); // populate adds one
    assert_eq!(
        alone.iter().map(view).collect::<Vec<_>>(),
        full.temp_files.iter().map(view).collect::<Vec<_>>()
    );
}
