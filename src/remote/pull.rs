//! `kvc pull`: download checkpoints into a cache, trusting nothing the
//! remote says.
//!
//! The plan lists the remote (one LIST; a HEAD per object in scope for its
//! record) and picks: KEYs (full keys or unique prefixes, in every
//! namespace unless `--model` narrows), `--all`, filters, or `--match
//! PROMPT`: the checkpoint ds4 mainline's lookup would choose among the
//! remote's if they were local ([`crate::matching::pick_by_name`]).
//!
//! Applying it, under the cache's lock (the write session), each pick is
//! decided against the cache first, as an import decides: the same text,
//! payload and trailers already there (the content digest: hit counts may
//! differ) is `present` and not downloaded; another copy is kept or
//! replaced per `--on-conflict`. A download streams into a temp file in
//! the cache (0600) while it is hashed and checked, and is renamed into
//! place (after an fsync) only when: the object's record is the one the
//! plan listed; its size, BLAKE3 of the whole and of everything after the
//! header, and its header, agree with the record; and its bytes pass the
//! checks an import makes (dialect, envelope, the name its content gives
//! it). Anything else is `rejected` and its temp removed. `--budget` then
//! evicts as `kvc import --budget` does, never what was just pulled.

use super::listing::RemoteCheckpoint;
use super::record::{Record, META_NAME};
use super::Remote;
use crate::bundle::check::StreamCheck;
use crate::bundle::{
    Action, BudgetOptions, BudgetOutcome, Evicted, OnConflict, Progress, Selection,
};
use crate::error::{Error, Result};
use crate::evict;
use crate::format::checkpoint::{CheckpointFile, Key};
use crate::format::dialect::{Engine, EngineChoice};
use crate::format::HEADER_LEN;
use crate::fsutil::{create_private_dir_all, AtomicFile};
use crate::matching::{Live, Prompt};
use crate::scan::{self, open_nofollow, Checkpoint, Scan, ScanOptions};
use crate::session::journal::{Op, Record as JournalRecord};
use crate::session::{Judged, Session};
use crate::sys::{Dir, Meta};
use futures_util::StreamExt as _;
use object_store::{Attribute, GetOptions};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// What to pull and how.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Keys or unique key prefixes (4+ hex digits), `sysprompt`.
    pub keys: Vec<String>,
    pub all: bool,
    /// `--match`: the prompt and the live engine settings.
    pub prompt: Option<(Prompt, Live)>,
    /// Filters, as `kvc export` takes them.
    pub filters: Selection,
    /// Only this namespace (`--model`).
    pub namespace: Option<String>,
    pub on_conflict: OnConflict,
    pub include_agent: bool,
    /// Zero hits and set last_used to `now` in the installed copies.
    pub reset_stats: bool,
    pub budget: Option<BudgetOptions>,
    /// `--engine`: the engine that reads the target directory.
    pub engine: Option<Engine>,
    /// Unix seconds.
    pub now: u64,
}

impl PullOptions {
    fn selects_anything(&self) -> bool {
        !self.keys.is_empty()
            || self.all
            || self.prompt.is_some()
            || self.filters.has_filter()
            || self.namespace.is_some()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PullEntry {
    pub key: String,
    pub namespace: String,
    /// `s3://bucket/prefix/<namespace>/<key>.kv`.
    pub object: String,
    /// `installed`, `replaced`, `present`, `skipped`, `rejected`; with
    /// `--dry-run`, what would be done.
    pub action: Action,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What `--match` found.
#[derive(Clone, Debug, Serialize)]
pub struct MatchInfo {
    pub prompt_bytes: u64,
    pub live: Live,
    /// The key the lookup picks, or none: a miss (a full prefill).
    pub chosen: Option<String>,
    pub candidates: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct PullReport {
    #[serde(skip)]
    pub dir: PathBuf,
    pub remote: String,
    pub dry_run: bool,
    pub on_conflict: OnConflict,
    pub entries: Vec<PullEntry>,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchInfo>,
    pub budget: Option<BudgetOutcome>,
    /// The engine whose reading of the target kvc applied.
    pub engine: String,
    /// Lines the user should read (replacing next to hanzo-engine).
    pub warnings: Vec<String>,
}

impl PullReport {
    pub fn count(&self, a: Action) -> usize {
        self.entries.iter().filter(|e| e.action == a).count()
    }

    pub fn bytes_written(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.action, Action::Installed | Action::Replaced))
            .map(|e| e.size)
            .sum()
    }

    /// Exit 1: something was rejected, `--match` found nothing, or the
    /// budget could not be met.
    pub fn has_problems(&self) -> bool {
        self.count(Action::Rejected) > 0
            || self.matched.as_ref().is_some_and(|m| m.chosen.is_none())
            || self.budget.as_ref().is_some_and(|b| !b.met)
    }
}

/// A checkpoint on the remote to bring in.
#[derive(Clone, Debug)]
pub struct Pick {
    pub remote: RemoteCheckpoint,
}

/// What a pull will consider, decided from the remote (read-only).
#[derive(Debug)]
pub struct PullPlan {
    pub dir: PathBuf,
    pub options: PullOptions,
    pub picks: Vec<Pick>,
    pub matched: Option<MatchInfo>,
}

/// A checkpoint as a scan would list it, from its record.
fn as_checkpoint(c: &RemoteCheckpoint, r: &Record, order: u32, engine: Engine) -> Checkpoint {
    let mut cp = Checkpoint::from_header(
        c.object.key.clone(),
        PathBuf::from(c.object.location.to_string()),
        c.object.size,
        0o600,
        r.header().expect("decode checked it"),
        r.header.text_bytes,
        engine,
    );
    cp.order = order;
    cp
}

/// List the remote and pick what to pull.
pub fn plan(remote: &Remote, dir: &Path, options: &PullOptions) -> Result<PullPlan> {
    if !options.selects_anything() {
        return Err(Error::Usage(
            "nothing selected: give KEYs, --all, --match PROMPT, --model, or a filter (--reason, --min-tokens, --used-within, --quant)".into(),
        ));
    }
    let url = remote.url.clone();
    let (objects, _) = remote.block_on(remote.list_objects(options.namespace.as_deref()))?;
    // KEYs resolve among the names listed (one LIST for any number of
    // keys); only what they name costs a HEAD.
    let objects = if options.keys.is_empty() {
        objects
    } else {
        let shown = url.shown();
        let mut wanted = BTreeSet::new();
        for k in &options.keys {
            let r =
                crate::resolve::resolve_key_among(&shown, objects.iter().map(|o| (&o.key, "")), k)?;
            wanted.insert(r.key);
        }
        objects
            .into_iter()
            .filter(|o| wanted.contains(&o.key))
            .collect()
    };
    let listed = remote.block_on(remote.records_of(objects))?;
    let engine = options.engine.unwrap_or(Engine::Ds4);
    let now = options.now;
    let mut picks: Vec<Pick> = Vec::new();
    for (i, c) in listed.iter().enumerate() {
        let keep = match c.record() {
            Some(r) => options
                .filters
                .keeps(&as_checkpoint(c, r, i as u32, engine), now),
            // A named object with a bad record is reported (rejected).
            None => !options.keys.is_empty() || options.all,
        };
        if keep {
            picks.push(Pick { remote: c.clone() });
        }
    }
    let mut matched = None;
    if let Some((prompt, live)) = &options.prompt {
        let mut scan = Scan {
            dir: url.shown(),
            engine: EngineChoice::given(Engine::Ds4),
            ..Scan::default()
        };
        for (i, p) in picks.iter().enumerate() {
            if let Some(r) = p.remote.record() {
                scan.checkpoints
                    .push(as_checkpoint(&p.remote, r, i as u32, Engine::Ds4));
            }
        }
        let chosen = crate::matching::pick_by_name(&scan, prompt, live);
        matched = Some(MatchInfo {
            prompt_bytes: prompt.len(),
            live: *live,
            chosen: chosen.map(|i| picks[i as usize].remote.object.key.to_string()),
            candidates: scan.checkpoints.len(),
        });
        picks = match chosen {
            Some(i) => vec![picks.swap_remove(i as usize)],
            None => Vec::new(),
        };
    }
    Ok(PullPlan {
        dir: dir.to_path_buf(),
        options: options.clone(),
        picks,
        matched,
    })
}

/// What to do with one pick, decided from the target before any byte is
/// fetched.
#[derive(Debug)]
enum Decision {
    Install,
    /// Overwrite the copy named `old`, while it is still the inode judged.
    Replace {
        old: String,
        judged: Judged,
    },
    /// Nothing to fetch: `Present` or `Skipped`, with a note.
    Keep(Action, String),
    Reject(String),
}

/// BLAKE3 of everything after the header of the regular file `name` in the
/// target (or at `dir/name` in a dry run).
fn local_content_digest(target: Option<&Dir>, dir: &Path, name: &str) -> Option<String> {
    let mut f = match target {
        Some(d) => d.open_file(OsStr::new(name), crate::sys::Open::Read).ok()?,
        None => open_nofollow(&dir.join(name)).ok()?,
    };
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; crate::bundle::CHUNK];
    let mut skip = HEADER_LEN;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return (skip == 0).then(|| h.finalize().to_hex().to_string()),
            Ok(n) => {
                let from = skip.min(n);
                skip -= from;
                h.update(&buf[from..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Checkpoint names on disk by key (ds4 accepts upper-case hex names).
fn names_on_disk(dir: &Path) -> HashMap<Key, String> {
    let mut out = HashMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let scan::NameKind::Checkpoint(k) = scan::classify_name(&name) {
                if name == k.file_name() || !out.contains_key(&k) {
                    out.insert(k, name);
                }
            }
        }
    }
    out
}

fn decide(
    dir: &Path,
    target: Option<&Dir>,
    on_disk: &HashMap<Key, String>,
    key: &Key,
    r: &Record,
    opts: &PullOptions,
) -> Result<Decision> {
    let name = on_disk.get(key).cloned().unwrap_or_else(|| key.file_name());
    let meta = match target {
        Some(d) => d.stat(OsStr::new(&name)),
        None => std::fs::symlink_metadata(dir.join(&name)).map(|m| Meta::of(&m)),
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Decision::Install),
        Err(e) => return Err(Error::io(&dir.join(&name), e)),
    };
    if meta.kind != crate::sys::Kind::File {
        return Ok(Decision::Reject(format!(
            "{name} exists in the target and is not a regular file; left alone"
        )));
    }
    if local_content_digest(target, dir, &name).as_deref() == Some(r.content_blake3.as_str()) {
        return Ok(Decision::Keep(
            Action::Present,
            "the same text, payload and trailers are already there".into(),
        ));
    }
    let kept = |note: &str| Ok(Decision::Keep(Action::Skipped, note.to_string()));
    if opts.on_conflict == OnConflict::Skip {
        return kept("a different copy exists; kept (--on-conflict replace or newer to overwrite)");
    }
    let existing = CheckpointFile::open_named(&dir.join(&name), false);
    let agent = *key == Key::Sysprompt
        || existing
            .as_ref()
            .is_ok_and(|cf| cf.header.reason.is_agent());
    if agent && !opts.include_agent {
        return kept(
            "the existing copy is an explicit ds4-agent save; kept (--include-agent to replace it)",
        );
    }
    let replace = Decision::Replace {
        old: name,
        judged: Judged::inode(&meta),
    };
    match opts.on_conflict {
        OnConflict::Skip => unreachable!("handled above"),
        OnConflict::Replace => Ok(replace),
        OnConflict::Newer => match existing {
            Ok(cf) if r.header.last_used > cf.header.last_used => Ok(replace),
            Ok(cf) => kept(&format!(
                "the existing copy was used later or at the same time (last_used {} >= {}); kept",
                cf.header.last_used, r.header.last_used
            )),
            Err(e) => kept(&format!(
                "the existing copy is unreadable ({e}); kept (--on-conflict replace to overwrite)"
            )),
        },
    }
}

/// The engine that reads the target.
fn target_engine(dir: &Path, given: Option<Engine>) -> Result<EngineChoice> {
    Ok(match given {
        Some(e) => EngineChoice::given(e),
        None if dir.is_dir() => scan::scan_dir(dir, ScanOptions::default())?.engine,
        None => EngineChoice::given(Engine::Ds4),
    })
}

fn entry(p: &Pick, remote: &Remote, action: Action, message: Option<String>) -> PullEntry {
    let o = &p.remote.object;
    PullEntry {
        key: o.key.to_string(),
        namespace: o.namespace.clone(),
        object: remote.url.object_url(&o.location),
        action,
        size: o.size,
        message,
    }
}

/// What would be pulled: every decision, nothing fetched or written.
pub fn dry_run(remote: &Remote, plan: &PullPlan) -> Result<PullReport> {
    let engine = target_engine(&plan.dir, plan.options.engine)?;
    let on_disk = names_on_disk(&plan.dir);
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut incoming: Vec<Checkpoint> = Vec::new();
    for p in &plan.picks {
        let Some(r) = p.remote.record() else {
            entries.push(bad_record(p, remote));
            continue;
        };
        let d = decide(
            &plan.dir,
            None,
            &on_disk,
            &p.remote.object.key,
            r,
            &plan.options,
        )?;
        if matches!(d, Decision::Replace { .. }) && warnings.is_empty() {
            warnings.extend(hanzo_warning(&plan.dir, &engine));
        }
        let (action, msg) = match d {
            Decision::Install => (Action::Installed, None),
            Decision::Replace { .. } => (Action::Replaced, None),
            Decision::Keep(a, m) => (a, Some(m)),
            Decision::Reject(m) => (Action::Rejected, Some(m)),
        };
        if matches!(
            action,
            Action::Installed | Action::Replaced | Action::Present
        ) {
            incoming.push(as_checkpoint(&p.remote, r, 0, engine.engine));
        }
        entries.push(entry(p, remote, action, msg));
    }
    let budget = match plan.options.budget {
        Some(b) => Some(budget_preview(&plan.dir, &plan.options, b, incoming)?),
        None => None,
    };
    Ok(PullReport {
        dir: plan.dir.clone(),
        remote: remote.url.to_string(),
        dry_run: true,
        on_conflict: plan.options.on_conflict,
        entries,
        matched: plan.matched.clone(),
        budget,
        engine: engine.describe(),
        warnings,
    })
}

/// Before the first replacement in a directory hanzo-engine reads, as
/// import warns: on a hit it re-opens the file by path and writes back the
/// header it loaded, onto the new file (FORMAT.md §7).
fn hanzo_warning(dir: &Path, engine: &EngineChoice) -> Option<String> {
    (engine.engine == Engine::Hanzo || engine.mixed).then(|| {
        format!(
            "{}: engine {}; replacing checkpoints next to a running hanzo-engine is unsafe: on a hit it re-opens the file by path and writes back the header it loaded, onto the new file (stop it first, or use --on-conflict skip)",
            dir.display(),
            engine.describe()
        )
    })
}

fn bad_record(p: &Pick, remote: &Remote) -> PullEntry {
    let why = p.remote.record.clone().err().unwrap_or_default();
    entry(
        p,
        remote,
        Action::Rejected,
        Some(format!("bad-record: {why}; not fetched")),
    )
}

/// Pull under the session's lock on the target (created 0700 if missing).
pub fn apply(
    session: &mut Session,
    remote: &Remote,
    plan: &PullPlan,
    progress: &mut dyn Progress,
) -> Result<PullReport> {
    let dir = plan.dir.as_path();
    let opts = &plan.options;
    create_private_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    session.lock(&[dir])?;
    let target = session
        .dir(dir)?
        .try_clone()
        .map_err(|e| Error::io(dir, e))?;
    let engine = target_engine(dir, opts.engine)?;
    let mut on_disk = names_on_disk(dir);
    progress.begin(Some(plan.picks.iter().map(|p| p.remote.object.size).sum()));
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut pulled: BTreeSet<Key> = BTreeSet::new();
    for p in &plan.picks {
        let key = &p.remote.object.key;
        let Some(r) = p.remote.record() else {
            progress.advance(p.remote.object.size);
            entries.push(bad_record(p, remote));
            continue;
        };
        let d = decide(dir, Some(&target), &on_disk, key, r, opts)?;
        if matches!(d, Decision::Replace { .. }) && warnings.is_empty() {
            if let Some(w) = hanzo_warning(dir, &engine) {
                progress.warn(&w);
                warnings.push(w);
            }
        }
        let (action, msg) = match d {
            Decision::Keep(a, m) => {
                progress.advance(p.remote.object.size);
                (a, Some(m))
            }
            Decision::Reject(m) => {
                progress.advance(p.remote.object.size);
                (Action::Rejected, Some(m))
            }
            d => {
                progress.entry(&key.file_name());
                let got =
                    remote.block_on(remote.fetch(&target, p, r, opts, engine.engine, progress));
                match got {
                    Err(why) => (Action::Rejected, Some(why)),
                    Ok(temp) => commit(session, dir, &target, p, r, d, temp, remote)?,
                }
            }
        };
        if matches!(
            action,
            Action::Installed | Action::Replaced | Action::Present
        ) {
            pulled.insert(key.clone());
            on_disk.insert(key.clone(), key.file_name());
        }
        entries.push(entry(p, remote, action, msg));
    }
    progress.finish();
    let budget = match opts.budget {
        Some(b) => Some(budget_apply(session, dir, opts, b, pulled)?),
        None => None,
    };
    Ok(PullReport {
        dir: plan.dir.clone(),
        remote: remote.url.to_string(),
        dry_run: false,
        on_conflict: opts.on_conflict,
        entries,
        matched: plan.matched.clone(),
        budget,
        engine: engine.describe(),
        warnings,
    })
}

/// Put a verified temp file in place, as decided, and journal it.
#[allow(clippy::too_many_arguments)]
fn commit(
    session: &mut Session,
    dir: &Path,
    target: &Dir,
    p: &Pick,
    r: &Record,
    d: Decision,
    temp: AtomicFile,
    remote: &Remote,
) -> Result<(Action, Option<String>)> {
    let key = &p.remote.object.key;
    let name = key.file_name();
    let (action, committed) = match &d {
        Decision::Install => (Action::Installed, temp.commit_new()),
        Decision::Replace { old, judged } => {
            if *old == name {
                if let Ok(m) = target.stat(OsStr::new(&name)) {
                    if judged.matches(&m).is_err() {
                        return Ok((
                            Action::Skipped,
                            Some("the copy in the target changed while pulling (an engine saved it again?); kept".into()),
                        ));
                    }
                }
            }
            (Action::Replaced, temp.commit())
        }
        _ => unreachable!("only installs and replacements fetch"),
    };
    match committed {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Ok((
                Action::Skipped,
                Some("a copy appeared in the target while pulling; kept".into()),
            ))
        }
        Err(e) => return Err(Error::io(&dir.join(&name), e)),
    }
    if let Decision::Replace { old, judged } = &d {
        // An upper-case name for the same key would shadow ours.
        if *old != name {
            if let crate::session::Removal::Failed(e) = session.remove(dir, old, judged)? {
                return Err(Error::io(&dir.join(old), e));
            }
        }
    }
    let op = if action == Action::Replaced {
        Op::Replace
    } else {
        Op::Pull
    };
    let rec = JournalRecord::new(
        session.now(),
        op,
        &key.to_string(),
        r.size,
        format!(
            "pull from {}",
            remote.url.object_url(&p.remote.object.location)
        ),
    )
    .with_header(r.header().as_ref());
    session.journal(dir, &[rec])?;
    Ok((action, None))
}

impl Remote {
    /// Download one object into a temp file in the target, checking every
    /// byte against its record; the temp, verified, or why not (the temp
    /// is then gone).
    async fn fetch(
        &self,
        target: &Dir,
        p: &Pick,
        r: &Record,
        opts: &PullOptions,
        engine: Engine,
        progress: &mut dyn Progress,
    ) -> std::result::Result<AtomicFile, String> {
        let o = &p.remote.object;
        // What the record already rules out is not downloaded: a hostile
        // record the size of a disk that is no checkpoint costs nothing.
        let h = r.header().expect("decode checked it");
        if h.version == crate::format::VERSION {
            crate::format::checkpoint::check_envelope(&h, r.header.text_bytes, r.size).map_err(
                |d| format!("not a valid checkpoint by its own record: {d}; not fetched"),
            )?;
        }
        let got = self
            .store
            .get_opts(&o.location, GetOptions::default())
            .await
            .map_err(|e| format!("download failed: {}", super::one_line(&e.to_string())))?;
        // The record delivered with the bytes must be the one listed.
        let now = got
            .attributes
            .get(&Attribute::Metadata(META_NAME.into()))
            .map(|v| Record::decode(v));
        if now.as_ref().and_then(|r| r.as_ref().ok()) != Some(r) {
            return Err(
                "the object changed on the remote since it was listed; not installed (pull again)"
                    .into(),
            );
        }
        let name = o.key.file_name();
        let mut temp = AtomicFile::create_in(target, &name)
            .map_err(|e| format!("cannot create its temp file in the target: {e}"))?;
        let mut check = StreamCheck::new();
        let mut content = blake3::Hasher::new();
        let mut header = [0u8; HEADER_LEN];
        let mut reset = r.header().filter(|_| opts.reset_stats).map(|mut h| {
            h.hits = 0;
            h.last_used = opts.now;
            h.encode()
        });
        let mut off: u64 = 0;
        let mut stream = got.into_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| {
                format!(
                    "download broke after {off} bytes: {}",
                    super::one_line(&e.to_string())
                )
            })?;
            let end = off + piece.len() as u64;
            if end > r.size {
                return Err(format!(
                    "the object is longer than its record says ({} bytes); not installed",
                    r.size
                ));
            }
            check.update(&piece);
            let head_end = (HEADER_LEN as u64).min(end);
            if off < head_end {
                let (a, b) = (off as usize, head_end as usize);
                header[a..b].copy_from_slice(&piece[..b - a]);
                // The header is known after 48 bytes: stop there when it
                // is not the record's.
                if b == HEADER_LEN && Some(header) != r.header_bytes() {
                    return Err(
                        "its header is not the one its record describes; not installed".into(),
                    );
                }
            }
            let from = (HEADER_LEN as u64)
                .saturating_sub(off)
                .min(piece.len() as u64) as usize;
            content.update(&piece[from..]);
            let written = match reset.as_mut() {
                Some(h) if off < HEADER_LEN as u64 => {
                    let mut first = piece.to_vec();
                    let n = from;
                    first[..n].copy_from_slice(&h[off as usize..off as usize + n]);
                    temp.write_all(&first)
                }
                _ => temp.write_all(&piece),
            };
            written
                .map_err(|e| format!("could not be written to the target: {e}; not installed"))?;
            off = end;
            progress.advance(piece.len() as u64);
        }
        let checked = check.finish();
        let problem = if off != r.size {
            Some(format!(
                "the object has {off} bytes, its record says {}",
                r.size
            ))
        } else if checked.blake3 != r.blake3 {
            Some("BLAKE3 digest mismatch: the object is not the bytes that were pushed".into())
        } else if content.finalize().to_hex().as_str() != r.content_blake3 {
            Some("content digest mismatch: the object is not the checkpoint that was pushed".into())
        } else if Some(header) != r.header_bytes() {
            Some("its header is not the one its record describes".into())
        } else {
            checked
                .verdict(&o.key, |d| d.resolve(engine))
                .err()
                .map(|p| p.describe("install"))
        };
        match problem {
            Some(p) => Err(p),
            None => Ok(temp),
        }
    }
}

fn evicted(v: &evict::Victim) -> Evicted {
    Evicted {
        key: v.name(),
        file: v.file.clone(),
        size: v.size,
        reason: v.reason_name(),
        score: v.score,
    }
}

fn budget_options(
    opts: &PullOptions,
    b: BudgetOptions,
    protect: BTreeSet<Key>,
) -> evict::EvictOptions {
    evict::EvictOptions {
        policy: Some(b.policy),
        engine: opts.engine,
        now: opts.now,
        budget: Some(b.bytes),
        protect,
        ..evict::EvictOptions::default()
    }
}

/// `--budget` after a pull: `kvc evict`'s planner and executor, under the
/// lock the pull holds, the pulled keys protected.
fn budget_apply(
    session: &mut Session,
    dir: &Path,
    opts: &PullOptions,
    b: BudgetOptions,
    pulled: BTreeSet<Key>,
) -> Result<BudgetOutcome> {
    let plan = evict::plan_dir(dir, &budget_options(opts, b, pulled))?;
    let r = evict::apply(session, plan, &mut evict::NoHooks)?;
    let gone = r.deleted().map(|h| evicted(&h.victim)).collect();
    Ok(BudgetOutcome {
        budget: b.bytes,
        policy: b.policy.name().into(),
        bytes_before: r.first_plan.counted_bytes,
        bytes_after: r.bytes_after,
        evicted: gone,
        met: r.bytes_after <= b.bytes,
    })
}

/// `--budget` in a dry run: the directory as the pull would leave it.
fn budget_preview(
    dir: &Path,
    opts: &PullOptions,
    b: BudgetOptions,
    incoming: Vec<Checkpoint>,
) -> Result<BudgetOutcome> {
    let mut scan = if dir.is_dir() {
        scan::scan_dir(dir, ScanOptions::default())?
    } else {
        Scan::default()
    };
    let keys: BTreeSet<Key> = incoming.iter().map(|c| c.key.clone()).collect();
    scan.checkpoints.retain(|c| !keys.contains(&c.key));
    for mut c in incoming {
        c.set_path(&dir.join(c.key.file_name()));
        scan.checkpoints.push(c);
    }
    scan.dir = dir.to_path_buf();
    let plan = evict::plan(&scan, &budget_options(opts, b, keys));
    Ok(BudgetOutcome {
        budget: b.bytes,
        policy: b.policy.name().into(),
        bytes_before: plan.counted_bytes,
        bytes_after: plan.bytes_after(),
        evicted: plan.victims.iter().map(evicted).collect(),
        met: plan.bytes_after() <= b.bytes,
    })
}
