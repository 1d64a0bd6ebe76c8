//! push, pull and trim against object_store's in-memory backend: every
//! rule that does not need S3 itself (the integration tests,
//! `tests/remote.rs`, run a real S3 server on 127.0.0.1).

use super::pull::{self, PullOptions};
use super::push::{self, PushAction, PushOptions};
use super::record::META_NAME;
use super::trim::{self, GcOptions};
use super::*;
use crate::bundle::{Action, NoProgress, OnConflict, Selection};
use crate::code::Code;
use crate::session::{Session, SessionOptions};
use object_store::memory::InMemory;
use object_store::{Attribute, Attributes, ObjectStoreExt as _, PutOptions, PutPayload};
use sha1::{Digest, Sha1};
use std::path::Path;

const NOW: u64 = 1_800_000_000;

/// A ds4 mainline checkpoint (dialect D3), byte by byte.
fn ckpt(text: &[u8], payload_len: usize, hits: u32, last_used: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"KVC");
    b.extend_from_slice(&[1, 2, 1, 0, 0]); // version, quant, reason cold, ext, model flash
    b.extend_from_slice(&600u32.to_le_bytes());
    b.extend_from_slice(&hits.to_le_bytes());
    b.extend_from_slice(&32768u32.to_le_bytes());
    b.extend_from_slice(&[2, 0, 0, 0]); // payload ABI 2
    b.extend_from_slice(&(NOW - 1000).to_le_bytes());
    b.extend_from_slice(&last_used.to_le_bytes());
    b.extend_from_slice(&(payload_len as u64).to_le_bytes());
    b.extend_from_slice(&(text.len() as u32).to_le_bytes());
    b.extend_from_slice(text);
    b.extend((0..payload_len).map(|i| (i * 7 % 251) as u8));
    b
}

fn key_of(text: &[u8]) -> String {
    Sha1::digest(text)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

struct Env {
    _tmp: tempfile::TempDir,
    a: std::path::PathBuf,
    b: std::path::PathBuf,
    store: Arc<InMemory>,
    remote: Remote,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let store = Arc::new(InMemory::new());
    let url = RemoteUrl::parse("s3://fleet-kv/prod").unwrap();
    let remote = Remote::with_store(&url, store.clone(), false).unwrap();
    Env {
        _tmp: tmp,
        a,
        b,
        store,
        remote,
    }
}

fn add(dir: &Path, text: &[u8], bytes: &[u8]) -> String {
    let key = key_of(text);
    std::fs::write(dir.join(format!("{key}.kv")), bytes).unwrap();
    key
}

fn push_opts(keys: &[&str], all: bool) -> PushOptions {
    PushOptions {
        selection: Selection {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            all,
            ..Selection::default()
        },
        exclude_text: None,
        now: NOW,
        engine: None,
    }
}

fn session(op: &'static str) -> Session {
    Session::new(SessionOptions {
        now: Some(NOW),
        ..SessionOptions::new(op)
    })
    .unwrap()
}

fn push(e: &Env, opts: &PushOptions) -> push::PushReport {
    let plan = push::plan(&e.a, opts).unwrap();
    push::apply(&mut session("push"), &e.remote, &plan, &mut NoProgress).unwrap()
}

fn pull_opts(all: bool) -> PullOptions {
    PullOptions {
        all,
        now: NOW,
        ..PullOptions::default()
    }
}

fn pull(e: &Env, opts: &PullOptions) -> pull::PullReport {
    let plan = pull::plan(&e.remote, &e.b, opts).unwrap();
    pull::apply(&mut session("pull"), &e.remote, &plan, &mut NoProgress).unwrap()
}

fn object(_: &Env, key: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("prod/flash/{key}.kv"))
}

#[test]
fn push_then_pull_is_byte_identical_small_and_multipart() {
    let e = env();
    let small = ckpt(b"<User>small", 1000, 3, NOW - 10);
    let big = ckpt(
        b"<User>big one",
        (push::PART_SIZE * 2 + 12345) as usize,
        0,
        NOW - 5,
    );
    let k1 = add(&e.a, b"<User>small", &small);
    let k2 = add(&e.a, b"<User>big one", &big);
    let r = push(&e, &push_opts(&[], true));
    assert_eq!(r.count(PushAction::Pushed), 2, "{:#?}", r.entries);
    assert_eq!(r.bytes_sent(), (small.len() + big.len()) as u64);
    // The record is on the object, and says what it is.
    let head = e.remote.listing(None).unwrap();
    assert_eq!(head.checkpoints.len(), 2);
    let rec = head.checkpoints[0].record().unwrap();
    assert_eq!(rec.pushed_at, NOW);
    // Again: everything is present, nothing is read or sent.
    let again = push(&e, &push_opts(&[], true));
    assert_eq!(again.count(PushAction::Present), 2);
    assert_eq!(again.bytes_sent(), 0);
    let got = pull(&e, &pull_opts(true));
    assert_eq!(got.count(Action::Installed), 2, "{:#?}", got.entries);
    for (k, bytes) in [(&k1, &small), (&k2, &big)] {
        let p = e.b.join(format!("{k}.kv"));
        assert_eq!(&std::fs::read(&p).unwrap(), bytes);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The journals say what happened: a push in a, pulls in b.
    let ja = crate::session::journal::read(&e.a).unwrap().records;
    assert_eq!(ja.iter().filter(|r| r.op == "push").count(), 2);
    let jb = crate::session::journal::read(&e.b).unwrap().records;
    assert_eq!(jb.iter().filter(|r| r.op == "pull").count(), 2);
    // Pulled again: present, nothing fetched.
    let again = pull(&e, &pull_opts(true));
    assert_eq!(again.count(Action::Present), 2);
}

#[test]
fn hit_counts_alone_do_not_make_another_checkpoint() {
    let e = env();
    let text = b"<User>shared prompt";
    add(&e.a, text, &ckpt(text, 500, 1, NOW - 100));
    push(&e, &push_opts(&[], true));
    // b has the same checkpoint, used more since.
    add(&e.b, text, &ckpt(text, 500, 9, NOW - 1));
    let r = pull(&e, &pull_opts(true));
    assert_eq!(r.count(Action::Present), 1, "{:#?}", r.entries);
}

#[test]
fn a_push_that_cannot_journal_says_so_and_keeps_its_report() {
    let e = env();
    add(&e.a, b"<User>j", &ckpt(b"<User>j", 100, 0, NOW));
    let mut holder = session("evict");
    holder.lock(&[&e.a]).unwrap();
    let mut impatient = Session::new(SessionOptions {
        now: Some(NOW),
        wait: std::time::Duration::ZERO,
        ..SessionOptions::new("push")
    })
    .unwrap();
    let plan = push::plan(&e.a, &push_opts(&[], true)).unwrap();
    let r = push::apply(&mut impatient, &e.remote, &plan, &mut NoProgress).unwrap();
    assert_eq!(r.count(PushAction::Pushed), 1);
    assert!(r.warnings[0].contains("not journaled"), "{:?}", r.warnings);
    assert!(r.has_problems());
}

#[test]
fn exclude_text_is_checked_before_anything_is_sent() {
    let e = env();
    let secret = b"<User>my password is hunter2";
    add(&e.a, secret, &ckpt(secret, 100, 0, NOW));
    add(&e.a, b"<User>fine", &ckpt(b"<User>fine", 100, 0, NOW));
    let mut opts = push_opts(&[], true);
    opts.exclude_text = Some(TextFilter::new(&["(?i)password".to_string()]).unwrap());
    let r = push(&e, &opts);
    assert_eq!(r.count(PushAction::Excluded), 1);
    assert_eq!(r.count(PushAction::Pushed), 1);
    assert!(!r.has_problems());
    assert_eq!(e.remote.listing(None).unwrap().checkpoints.len(), 1);
}

#[test]
fn a_file_that_is_not_what_its_name_says_is_not_pushed() {
    let e = env();
    let bytes = ckpt(b"<User>one", 100, 0, NOW);
    std::fs::write(e.a.join(format!("{}.kv", key_of(b"<User>two"))), &bytes).unwrap();
    let r = push(&e, &push_opts(&[], true));
    assert_eq!(r.count(PushAction::Rejected), 1, "{:#?}", r.entries);
    assert!(r.entries[0]
        .message
        .as_ref()
        .unwrap()
        .contains("key-mismatch"));
    assert!(r.has_problems());
    assert!(e.remote.listing(None).unwrap().checkpoints.is_empty());
}

/// Damage the object `key` (keeping its record): `f` edits its bytes.
fn tamper(e: &Env, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let path = object(e, key);
    e.remote.block_on(async {
        let got = e.store.get(&path).await.unwrap();
        let attrs = got.attributes.clone();
        let mut bytes = got.bytes().await.unwrap().to_vec();
        f(&mut bytes);
        let opts = PutOptions {
            attributes: attrs,
            ..Default::default()
        };
        e.store
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
            .unwrap();
    });
}

#[test]
fn damaged_or_hostile_objects_are_refused_and_leave_nothing() {
    let e = env();
    let text = b"<User>victim";
    let key = add(&e.a, text, &ckpt(text, 3000, 0, NOW));
    push(&e, &push_opts(&[], true));
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Damage)> = vec![
        ("BLAKE3", Box::new(|b: &mut Vec<u8>| b[2000] ^= 1)),
        // A hit count changed: refused once the 48 header bytes are in.
        (
            "its header is not the one",
            Box::new(|b: &mut Vec<u8>| b[12] ^= 1),
        ),
        ("its record says", Box::new(|b: &mut Vec<u8>| b.push(0))),
        (
            "its record says",
            Box::new(|b: &mut Vec<u8>| {
                b.pop();
            }),
        ),
    ];
    for (want, damage) in cases {
        let e2 = env();
        add(&e2.a, text, &ckpt(text, 3000, 0, NOW));
        push(&e2, &push_opts(&[], true));
        tamper(&e2, &key, damage);
        let plan = pull::plan(&e2.remote, &e2.b, &pull_opts(true)).unwrap();
        let r = pull::apply(&mut session("pull"), &e2.remote, &plan, &mut NoProgress).unwrap();
        let msg = r.entries[0].message.clone().unwrap_or_default();
        assert_eq!(r.entries[0].action, Action::Rejected, "{want}: {msg}");
        assert!(msg.contains(want), "{want}: {msg}");
        assert!(r.has_problems());
        // Nothing under the name, no temp left behind.
        let names: Vec<String> = std::fs::read_dir(&e2.b)
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".kvc")
            .collect();
        assert!(names.is_empty(), "{want}: {names:?}");
    }
    // A record moved to another namespace, or not kvc's at all.
    let rec = e.remote.listing(None).unwrap().checkpoints[0]
        .record()
        .unwrap()
        .encode();
    e.remote.block_on(async {
        let mut a = Attributes::new();
        a.insert(Attribute::Metadata(META_NAME.into()), rec.into());
        let bytes = e
            .store
            .get(&object(&e, &key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let opts = PutOptions {
            attributes: a,
            ..Default::default()
        };
        e.store
            .put_opts(
                &object_store::path::Path::from(format!("prod/pro/{key}.kv")),
                PutPayload::from(bytes.clone()),
                opts,
            )
            .await
            .unwrap();
        e.store
            .put(
                &object_store::path::Path::from(format!("prod/glm-5.2/{key}.kv")),
                PutPayload::from(bytes),
            )
            .await
            .unwrap();
    });
    let listing = e.remote.listing(None).unwrap();
    let bad: Vec<String> = listing
        .checkpoints
        .iter()
        .filter_map(|c| c.record.clone().err())
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad.iter().any(|m| m.contains("stored under pro")),
        "{bad:?}"
    );
    assert!(bad.iter().any(|m| m.contains("no kvc record")), "{bad:?}");
    let r = pull(&e, &pull_opts(true));
    assert_eq!(r.count(Action::Installed), 1);
    assert_eq!(r.count(Action::Rejected), 2);
}

#[test]
fn a_record_that_rules_itself_out_is_not_downloaded() {
    let e = env();
    let text = b"<User>liar";
    let key = add(&e.a, text, &ckpt(text, 100, 0, NOW));
    push(&e, &push_opts(&[], true));
    // The same object, its record claiming a payload far past its size.
    let listing = e.remote.listing(None).unwrap();
    let mut rec = listing.checkpoints[0].record().unwrap().clone();
    let mut h = rec.header_bytes().unwrap();
    h[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
    rec.raw_header = crate::format::checkpoint::hex(&h);
    e.remote.block_on(async {
        let bytes = e
            .store
            .get(&object(&e, &key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut a = Attributes::new();
        a.insert(Attribute::Metadata(META_NAME.into()), rec.encode().into());
        let opts = PutOptions {
            attributes: a,
            ..Default::default()
        };
        e.store
            .put_opts(&object(&e, &key), PutPayload::from(bytes), opts)
            .await
            .unwrap();
    });
    let r = pull(&e, &pull_opts(true));
    let msg = r.entries[0].message.clone().unwrap();
    assert_eq!(r.entries[0].action, Action::Rejected);
    assert!(
        msg.contains("by its own record") && msg.contains("not fetched"),
        "{msg}"
    );
}

#[test]
fn an_interrupted_multipart_upload_is_resumed() {
    let e = env();
    let text = b"<User>resumable";
    let bytes = ckpt(text, (push::PART_SIZE * 2 + 777) as usize, 0, NOW);
    let key = add(&e.a, text, &bytes);
    // What a push killed after its first part leaves: an open upload with
    // one part, and its state beside the cache.
    let plan = push::plan(&e.a, &push_opts(&[], true)).unwrap();
    let first = push::dry_run(&e.remote, &plan, &mut NoProgress).unwrap();
    assert_eq!(first.count(PushAction::Planned), 1);
    let path = object(&e, &key);
    let id = e.remote.block_on(async {
        use object_store::multipart::MultipartStore as _;
        let id = e.store.create_multipart(&path).await.unwrap();
        let part = e
            .store
            .put_part(
                &path,
                &id,
                0,
                PutPayload::from(bytes[..push::PART_SIZE as usize].to_vec()),
            )
            .await
            .unwrap();
        (id, part)
    });
    let content = blake3::hash(&bytes[48..]).to_hex().to_string();
    resume::save(
        &e.a,
        &resume::UploadState {
            remote: e.remote.url().to_string(),
            object: path.to_string(),
            upload_id: id.0.clone(),
            part_size: push::PART_SIZE,
            size: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
            content_blake3: content,
            raw_header: crate::format::checkpoint::hex(&bytes[..48]),
            parts: vec![id.1.content_id.clone()],
            started: NOW,
        },
    )
    .unwrap();
    let r = push(&e, &push_opts(&[], true));
    let entry = &r.entries[0];
    assert_eq!(entry.action, PushAction::Pushed, "{entry:#?}");
    assert_eq!(entry.resumed_parts, Some(1));
    assert_eq!(entry.bytes_sent, bytes.len() as u64 - push::PART_SIZE);
    assert!(resume::load(&e.a, &e.remote.url().to_string(), path.as_ref()).is_none());
    // The object is whole and byte-identical.
    let got = e
        .remote
        .block_on(async { e.store.get(&path).await.unwrap().bytes().await.unwrap() });
    assert_eq!(got.as_ref(), bytes.as_slice());
}

#[test]
fn a_state_for_an_upload_the_remote_forgot_starts_over() {
    // Killed after its first part, or before any part was recorded.
    for done in [vec!["\"gone\"".to_string()], vec![]] {
        let e = env();
        let text = b"<User>forgotten";
        let bytes = ckpt(text, (push::PART_SIZE + 5) as usize, 0, NOW);
        let key = add(&e.a, text, &bytes);
        let path = object(&e, &key);
        resume::save(
            &e.a,
            &resume::UploadState {
                remote: e.remote.url().to_string(),
                object: path.to_string(),
                upload_id: "999".into(),
                part_size: push::PART_SIZE,
                size: bytes.len() as u64,
                blake3: blake3::hash(&bytes).to_hex().to_string(),
                content_blake3: blake3::hash(&bytes[48..]).to_hex().to_string(),
                raw_header: crate::format::checkpoint::hex(&bytes[..48]),
                parts: done.clone(),
                started: NOW,
            },
        )
        .unwrap();
        let r = push(&e, &push_opts(&[], true));
        assert_eq!(
            r.entries[0].action,
            PushAction::Pushed,
            "{done:?}: {:#?}",
            r.entries
        );
        assert_eq!(r.entries[0].bytes_sent, bytes.len() as u64);
    }
}

#[test]
fn a_copy_that_lands_first_wins() {
    let e = env();
    let text = b"<User>race";
    let key = add(&e.a, text, &ckpt(text, 100, 0, NOW));
    let plan = push::plan(&e.a, &push_opts(&[], true)).unwrap();
    // Another host's copy arrives between the listing and the upload.
    let theirs = ckpt(text, 100, 7, NOW);
    e.remote.block_on(async {
        e.store
            .put(&object(&e, &key), PutPayload::from(theirs.clone()))
            .await
            .unwrap();
    });
    let r = push::apply(&mut session("push"), &e.remote, &plan, &mut NoProgress).unwrap();
    // The listing saw it already (present, not even read)...
    assert_eq!(r.entries[0].action, PushAction::Present);
    let got = e.remote.block_on(async {
        e.store
            .get(&object(&e, &key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    assert_eq!(got.as_ref(), theirs.as_slice());
}

#[test]
fn a_read_only_remote_refuses_every_write() {
    let e = env();
    add(&e.a, b"<User>x", &ckpt(b"<User>x", 100, 0, NOW));
    let ro = Remote::with_store(e.remote.url(), e.store.clone(), true).unwrap();
    let plan = push::plan(&e.a, &push_opts(&[], true)).unwrap();
    let err = push::apply(&mut session("push"), &ro, &plan, &mut NoProgress).unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(trim::plan_rm(&ro, &["abcd".into()], None).is_err());
    let gc = GcOptions {
        max_age: None,
        max_size: None,
        upload_age: std::time::Duration::from_secs(86_400),
        now: NOW,
    };
    assert!(trim::plan_gc(&ro, None, &gc).is_err());
    // Pulling is what a read-only host does.
    push(&e, &push_opts(&[], true));
    let plan = pull::plan(&ro, &e.b, &pull_opts(true)).unwrap();
    let r = pull::apply(&mut session("pull"), &ro, &plan, &mut NoProgress).unwrap();
    assert_eq!(r.count(Action::Installed), 1);
}

#[test]
fn pull_by_key_prefix_and_by_prompt() {
    let e = env();
    let sys = b"<User>system prompt of the fleet";
    let mut longer = sys.to_vec();
    longer.extend_from_slice(b"<Assistant>ok<User>and a question");
    let k_sys = add(&e.a, sys, &ckpt(sys, 100, 0, NOW));
    let k_long = add(&e.a, &longer, &ckpt(&longer, 100, 0, NOW));
    add(&e.a, b"<User>other", &ckpt(b"<User>other", 100, 0, NOW));
    push(&e, &push_opts(&[], true));
    let mut by_key = pull_opts(false);
    by_key.keys = vec![k_sys[..8].to_string()];
    let r = pull(&e, &by_key);
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].key, k_sys);
    // The prompt extends the longer text: mainline's lookup picks it.
    let mut prompt = longer.clone();
    prompt.extend_from_slice(b"<Assistant>");
    let mut by_prompt = pull_opts(false);
    by_prompt.prompt = Some((
        crate::matching::Prompt::new(prompt),
        crate::matching::Live {
            min_tokens: 0,
            ..crate::matching::Live::default()
        },
    ));
    let r = pull(&e, &by_prompt);
    assert_eq!(
        r.matched.as_ref().unwrap().chosen.as_deref(),
        Some(k_long.as_str())
    );
    assert_eq!(r.count(Action::Installed), 1, "{:#?}", r.entries);
    // A prompt nothing prefixes: a miss, nothing pulled, exit 1.
    by_prompt.prompt = Some((
        crate::matching::Prompt::new(b"<User>unrelated".to_vec()),
        crate::matching::Live::default(),
    ));
    let r = pull(&e, &by_prompt);
    assert!(r.entries.is_empty() && r.has_problems());
}

#[test]
fn conflicts_follow_on_conflict_and_budget_evicts_the_rest() {
    let e = env();
    let text = b"<User>conflict";
    add(&e.a, text, &ckpt(text, 400, 0, NOW - 10));
    push(&e, &push_opts(&[], true));
    // b has another copy of the key (another payload).
    let mut mine = ckpt(text, 400, 0, NOW - 500);
    let n = mine.len();
    mine[n - 1] ^= 0xff;
    let key = add(&e.b, text, &mine);
    let r = pull(&e, &pull_opts(true));
    assert_eq!(r.entries[0].action, Action::Skipped);
    let mut newer = pull_opts(true);
    newer.on_conflict = OnConflict::Newer;
    let r = pull(&e, &newer);
    assert_eq!(r.entries[0].action, Action::Replaced, "{:#?}", r.entries);
    assert_ne!(std::fs::read(e.b.join(format!("{key}.kv"))).unwrap(), mine);
    // --budget: an old checkpoint in b makes way, the pulled one stays.
    let old = b"<User>old and cold";
    let old_key = add(&e.b, old, &ckpt(old, 4000, 0, NOW - 900_000));
    add(&e.a, b"<User>fresh", &ckpt(b"<User>fresh", 400, 0, NOW));
    push(&e, &push_opts(&[], true));
    let mut budget = pull_opts(true);
    budget.budget = Some(crate::bundle::BudgetOptions {
        bytes: 2000,
        policy: crate::Policy::Ds4,
    });
    let r = pull(&e, &budget);
    let b = r.budget.unwrap();
    assert!(b.met, "{b:?}");
    assert!(b.evicted.iter().any(|v| v.key == old_key));
    assert!(!e.b.join(format!("{old_key}.kv")).exists());
}

#[test]
fn rm_and_gc_delete_by_name_age_and_size() {
    let e = env();
    // Times ahead of the real clock: InMemory stamps objects with it, and
    // an object's age is the later of that and its header's last use.
    let day = 86_400;
    for (i, used) in [
        NOW + 10 * day,
        NOW + 50 * day,
        NOW + 150 * day,
        NOW + 199 * day,
    ]
    .iter()
    .enumerate()
    {
        let text = format!("<User>checkpoint {i}");
        add(
            &e.a,
            text.as_bytes(),
            &ckpt(text.as_bytes(), 1000, 0, *used),
        );
    }
    push(&e, &push_opts(&[], true));
    let listing = e.remote.listing(None).unwrap();
    let total: u64 = listing.checkpoints.iter().map(|c| c.object.size).sum();
    let gc = GcOptions {
        max_age: Some(std::time::Duration::from_secs(100 * day)),
        max_size: Some(total / 2 - 1),
        upload_age: std::time::Duration::from_secs(day),
        now: NOW + 200 * day,
    };
    let plan = trim::plan_gc(&e.remote, None, &gc).unwrap();
    assert!(plan.report.uploads_note.is_some());
    let mut whys: Vec<&str> = plan.report.objects.iter().map(|o| o.why.as_str()).collect();
    whys.sort();
    assert_eq!(
        whys,
        ["age: unused for 150d", "age: unused for 190d", "size"]
    );
    let r = trim::apply(&e.remote, plan).unwrap();
    assert_eq!(r.count(Code::Removed), 3, "{:#?}", r.objects);
    assert!(r.bytes_after <= total / 2);
    let left = e.remote.listing(None).unwrap().checkpoints;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].record().unwrap().header.last_used, NOW + 199 * day);
    // rm by prefix.
    let k = left[0].object.key.to_string();
    let plan = trim::plan_rm(&e.remote, &[k[..6].to_string()], None).unwrap();
    assert_eq!(plan.report.objects.len(), 1);
    let r = trim::apply(&e.remote, plan).unwrap();
    assert_eq!(r.count(Code::Removed), 1);
    assert!(trim::plan_rm(&e.remote, std::slice::from_ref(&k), None).is_err());
}
