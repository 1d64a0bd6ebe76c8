//! Arbitrary bytes as a bundle (`kvc import`): a dry run, then a real
//! import into a fresh directory. Nothing may panic or allocate past
//! libFuzzer's malloc limit; a dry run creates nothing; and whatever the
//! importer installs is a checkpoint that verifies (envelope, text SHA-1 =
//! name), whose bytes are in the input verbatim, with no temp file left.
#![no_main]

use kvc::bundle::{self, Action, ImportOptions, NoProgress, OnConflict};
use kvc::format::checkpoint::Key;
use kvc::session::journal::JOURNAL_FILE;
use kvc::session::LOCK_FILE;
use kvc::scan::{self, Loaded, ScanOptions, STATE_DIR};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::fs;

fn options(dry_run: bool) -> ImportOptions {
    ImportOptions {
        on_conflict: OnConflict::Skip,
        reset_stats: false,
        now: 1_763_710_000,
        dry_run,
        source: "fuzz".into(),
        budget: None,
        include_agent: false,
        engine: None,
    }
}

fn appears_in(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    // A fresh target per input: installs must not accumulate.
    let root = tempfile::tempdir().expect("temp dir");
    let target = root.path().join("cache");

    let dry = bundle::import(data, &target, &options(true), &mut NoProgress);
    assert!(!target.exists(), "a dry run created the target");
    let real = bundle::import(data, &target, &options(false), &mut NoProgress);

    if let (Ok(d), Ok(r)) = (&dry, &real) {
        // In an empty target the dry run predicts every action.
        let actions = |r: &bundle::ImportReport| {
            r.entries
                .iter()
                .map(|e| (e.entry.clone(), e.action))
                .collect::<Vec<_>>()
        };
        assert_eq!(actions(d), actions(r));
        assert_eq!(d.truncated, r.truncated);
    }
    if dry.is_err() || real.is_err() {
        // Not a tar stream at all: nothing was created.
        assert!(dry.is_err() && real.is_err(), "{dry:?} / {real:?}");
        assert!(!target.exists());
        return;
    }
    let report = real.unwrap();
    let mut installed = BTreeSet::new();
    for e in &report.entries {
        // A fresh target has nothing to skip, replace or find present.
        assert!(
            matches!(e.action, Action::Installed | Action::Rejected),
            "{e:?}"
        );
        if e.action == Action::Installed {
            let key = e.key.as_deref().expect("an installed entry has a key");
            let name = if key == "sysprompt" {
                "sysprompt.kv".to_string()
            } else {
                format!("{key}.kv")
            };
            assert!(installed.insert(name), "installed twice: {e:?}");
        }
    }
    assert_eq!(report.count(Action::Installed), installed.len());

    let mut on_disk = BTreeSet::new();
    for entry in fs::read_dir(&target).expect("the target exists after a tar stream") {
        let entry = entry.unwrap();
        let name = entry
            .file_name()
            .into_string()
            .expect("kvc writes UTF-8 names");
        if name == STATE_DIR {
            for f in fs::read_dir(entry.path()).unwrap() {
                let f = f.unwrap().file_name().into_string().unwrap();
                assert!(
                    f == LOCK_FILE || f == JOURNAL_FILE,
                    "unexpected {STATE_DIR}/{f}"
                );
            }
            continue;
        }
        let key =
            Key::from_file_name(&name).unwrap_or_else(|| panic!("not a checkpoint name: {name}"));
        assert_eq!(name, key.file_name(), "not the canonical name");
        let bytes = fs::read(entry.path()).unwrap();
        assert!(appears_in(data, &bytes), "{name}: bytes not in the input");
        match scan::load(&entry.path(), key, ScanOptions { read_text: true }) {
            Loaded::Checkpoint(c) => assert_eq!(c.size, bytes.len() as u64),
            other => panic!("{name} was installed but does not verify: {other:?}"),
        }
        on_disk.insert(name);
    }
    assert_eq!(on_disk, installed);
    assert_eq!(
        report.bytes_written(),
        on_disk
            .iter()
            .map(|n| fs::metadata(target.join(n)).unwrap().len())
            .sum::<u64>()
    );
});
