//! `kvc push`: upload what the remote lacks.
//!
//! Per checkpoint selected (as `kvc export` selects: keys, `--all`,
//! filters):
//!
//! 1. Present? One LIST per namespace says which keys the remote has; a
//!    key it has is not read, let alone sent (`present`).
//! 2. First pass, read-only: the file is streamed once through the checks
//!    `kvc export` makes (dialect, envelope, name identity), BLAKE3 (whole
//!    and after the header), the title and `--exclude-text`. A file that
//!    fails is `rejected`, one whose text matches is `excluded`: nothing of
//!    either is sent. This pass yields the record.
//! 3. Upload, with the record as metadata: up to 8 MiB, one conditional
//!    PUT of the bytes the first pass kept; above, a multipart upload of
//!    8 MiB parts (larger beyond 78 GiB, S3's 10,000-part limit), two in
//!    flight and one being read: about 24 MiB of file data in memory,
//!    whatever the file's size. The parts are read again from the same
//!    descriptor; the header goes as the first pass read it (a hit may
//!    rewrite it in place meanwhile), the rest is hashed again and must
//!    match, or the upload is aborted (`rejected`: it changed). The
//!    completion is conditional: another host's copy that landed first
//!    wins, and this one reports `present`.
//!
//! An upload that fails half-way is left open, its state in
//! `.kvc/uploads/` ([`super::resume`]): the next push resumes it from the
//! first part the remote lacks.

use super::record::{Record, META_NAME, RECORD_VERSION};
use super::resume::{self, UploadState};
use super::s3::Completed;
use super::textfilter::TextFilter;
use super::{namespace, pushed_by, Remote};
use crate::bundle::check::StreamCheck;
use crate::bundle::{self, LeftForeign, Progress, Selected, Selection, CHUNK};
use crate::code::Code;
use crate::error::Result;
use crate::format::checkpoint::{hex, Key};
use crate::format::dialect::Engine;
use crate::format::{HEADER_LEN, PREFIX_LEN, TEXT_OFFSET};
use crate::scan::{open_nofollow, Checkpoint};
use crate::session::journal::{Op, Record as JournalRecord};
use crate::session::Session;
use crate::text::{sanitize_line, TitleScanner};
use futures_util::future::{select, Either};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use object_store::multipart::PartId;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, PutMode, PutMultipartOptions, PutOptions, PutPayload};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes per part: S3 wants at least 5 MiB (but the last); 8 MiB keeps
/// memory low and requests few.
pub const PART_SIZE: u64 = 8 << 20;
/// Parts in flight at once (plus one being read).
pub const PART_CONCURRENCY: usize = 2;
/// S3's limit on parts per upload.
const MAX_PARTS: u64 = 10_000;

/// The part size for a file of `size` bytes: [`PART_SIZE`], or larger in
/// whole MiB so that the parts stay within S3's 10,000.
pub fn part_size_for(size: u64) -> u64 {
    let need = size.div_ceil(MAX_PARTS);
    PART_SIZE.max(need.div_ceil(1 << 20) << 20)
}

/// What to push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    pub selection: Selection,
    /// `--exclude-text`: checkpoints whose text matches are not sent.
    pub exclude_text: Option<TextFilter>,
    /// Unix seconds: the record's `pushed_at`, the journal's time, and
    /// the clock of `--used-within`.
    pub now: u64,
    /// `--engine`: the engine that reads the cache directory.
    pub engine: Option<Engine>,
}

/// What happened to one checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PushAction {
    Pushed,
    Present,
    Excluded,
    Rejected,
    Failed,
    /// `--dry-run`: would be pushed.
    Planned,
}

impl PushAction {
    pub fn code(self) -> Code {
        match self {
            PushAction::Pushed => Code::Pushed,
            PushAction::Present => Code::Present,
            PushAction::Excluded => Code::Excluded,
            PushAction::Rejected => Code::Rejected,
            PushAction::Failed => Code::Failed,
            PushAction::Planned => Code::Planned,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PushEntry {
    pub key: String,
    /// The file in the cache.
    pub file: String,
    /// `s3://bucket/prefix/<namespace>/<key>.kv`.
    pub object: String,
    pub namespace: String,
    pub action: PushAction,
    pub size: u64,
    /// Bytes uploaded by this run (a resumed upload sends only the rest).
    pub bytes_sent: u64,
    /// Parts of a resumed upload that were on the remote already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_parts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The pushed record's digests, when pushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    #[serde(skip)]
    header: Option<crate::format::Header>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    #[serde(skip)]
    pub dir: PathBuf,
    pub remote: String,
    pub dry_run: bool,
    pub exclude_text: Vec<String>,
    pub entries: Vec<PushEntry>,
    /// Files named by KEY that are not usable checkpoints (the binary
    /// shows them as `kvc ls` does).
    #[serde(skip)]
    pub invalid: Vec<crate::scan::Invalid>,
    /// Files of dialects kvc does not read: never pushed.
    pub foreign: Vec<LeftForeign>,
    /// Lines the user should read (the journal could not be written).
    pub warnings: Vec<String>,
}

impl PushReport {
    pub fn count(&self, a: PushAction) -> usize {
        self.entries.iter().filter(|e| e.action == a).count()
    }

    pub fn bytes_sent(&self) -> u64 {
        self.entries.iter().map(|e| e.bytes_sent).sum()
    }

    /// Exit 1: something selected was not pushed for a reason other than
    /// being there already or excluded on purpose.
    pub fn has_problems(&self) -> bool {
        self.count(PushAction::Rejected) > 0
            || self.count(PushAction::Failed) > 0
            || !self.invalid.is_empty()
            || self.foreign.iter().any(|f| f.named)
            || !self.warnings.is_empty()
    }
}

/// What a push will consider, decided from the cache (read-only).
#[derive(Debug)]
pub struct PushPlan {
    pub dir: PathBuf,
    pub selected: Selected,
    pub options: PushOptions,
}

/// Select checkpoints of `dir` as `kvc export` does.
pub fn plan(dir: &Path, options: &PushOptions) -> Result<PushPlan> {
    let selected = bundle::select(dir, &options.selection, options.now)?;
    Ok(PushPlan {
        dir: dir.to_path_buf(),
        selected,
        options: options.clone(),
    })
}

/// Everything but the uploads: which checkpoints are present, which
/// would be pushed, excluded or rejected (every file is read and checked).
pub fn dry_run(
    remote: &Remote,
    plan: &PushPlan,
    progress: &mut dyn Progress,
) -> Result<PushReport> {
    remote.writable("push")?;
    remote.block_on(run(remote, plan, true, progress))
}

/// Push, then journal what was pushed (`push` records) in the cache,
/// under its lock, taken only for that.
pub fn apply(
    session: &mut Session,
    remote: &Remote,
    plan: &PushPlan,
    progress: &mut dyn Progress,
) -> Result<PushReport> {
    remote.writable("push")?;
    let report = remote.block_on(run(remote, plan, false, progress))?;
    let records: Vec<JournalRecord> = report
        .entries
        .iter()
        .filter(|e| e.action == PushAction::Pushed)
        .map(|e| {
            JournalRecord::new(
                session.now(),
                Op::Push,
                &e.key,
                e.size,
                format!("push to {}", e.object),
            )
            .with_header(e.header.as_ref())
        })
        .collect();
    let mut report = report;
    if !records.is_empty() {
        // The uploads happened whatever becomes of the journal: a cache
        // that cannot be locked or written (a read-only mount, another
        // kvc holding the lock past --wait) is said in the report, not
        // lost with it.
        let journaled = session
            .lock(&[&plan.dir])
            .and_then(|()| session.journal(&plan.dir, &records));
        if let Err(e) = journaled {
            report
                .warnings
                .push(format!("pushed, but not journaled in the cache: {e}"));
        }
    }
    Ok(report)
}

/// A checkpoint read and checked, ready to upload.
struct Prepared {
    record: Record,
    header: [u8; HEADER_LEN],
    /// The whole file, when it is small enough for one PUT.
    bytes: Option<Vec<u8>>,
    /// The descriptor the first pass read: the second reads the same inode.
    file: Arc<File>,
}

/// Why a file is not pushed, from the first pass.
struct NotPushed(PushAction, String);

/// The first pass over `c`: checks, digests, title, `--exclude-text`.
fn prepare(
    c: &Checkpoint,
    engine: Engine,
    filter: Option<&TextFilter>,
    now: u64,
) -> std::result::Result<Prepared, NotPushed> {
    let reject = |m: String| NotPushed(PushAction::Rejected, m);
    let mut f = open_nofollow(&c.path()).map_err(|e| reject(format!("cannot open: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| reject(format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(reject("not a regular file".into()));
    }
    let size = meta.len();
    let mut keep = (size <= PART_SIZE).then(|| Vec::with_capacity(size as usize));
    let mut check = StreamCheck::new();
    let mut content = blake3::Hasher::new();
    let mut header = [0u8; HEADER_LEN];
    let mut prefix = [0u8; PREFIX_LEN];
    let mut text_end: Option<u64> = None;
    let mut scan = filter.map(|f| f.scanner());
    let mut title = TitleScanner::new();
    let mut buf = vec![0u8; CHUNK];
    let mut off: u64 = 0;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reject(format!("read error: {e}"))),
        };
        let piece = &buf[..n];
        check.update(piece);
        // Header, prefix and text, as far as this piece covers them.
        for (i, &b) in piece.iter().enumerate() {
            let at = off + i as u64;
            if at >= PREFIX_LEN as u64 {
                break;
            }
            prefix[at as usize] = b;
            if at < HEADER_LEN as u64 {
                header[at as usize] = b;
            }
        }
        let end = off + n as u64;
        if text_end.is_none() && end >= PREFIX_LEN as u64 {
            let tl = u32::from_le_bytes(prefix[HEADER_LEN..PREFIX_LEN].try_into().expect("4"));
            text_end = Some(TEXT_OFFSET + tl as u64);
        }
        if end > HEADER_LEN as u64 {
            let from = (HEADER_LEN as u64).saturating_sub(off) as usize;
            content.update(&piece[from..]);
        }
        if let Some(te) = text_end {
            let a = TEXT_OFFSET.max(off);
            let b = te.min(end);
            if a < b {
                let text = &piece[(a - off) as usize..(b - off) as usize];
                title.feed(text);
                if let Some(s) = scan.as_mut() {
                    s.feed(text);
                }
            }
        }
        if let Some(k) = keep.as_mut() {
            if k.len() + n > size as usize {
                return Err(reject("it grew while being read".into()));
            }
            k.extend_from_slice(piece);
        }
        off = end;
    }
    if off != size {
        return Err(reject(format!(
            "it changed size while being read ({size} bytes, then {off})"
        )));
    }
    let checked = check.finish();
    if let Some(s) = scan {
        match s.finish() {
            Ok(Some(p)) => {
                return Err(NotPushed(
                    PushAction::Excluded,
                    format!(
                        "its text matches --exclude-text {}",
                        sanitize_line(p.as_bytes())
                    ),
                ))
            }
            Ok(None) => {}
            Err(e) => {
                return Err(reject(format!(
                    "--exclude-text could not judge its text ({e}); not sent"
                )))
            }
        }
    }
    let dialect = checked
        .verdict(&c.key, |d| d.resolve(engine))
        .map_err(|p| reject(p.describe("push")))?;
    let summary = checked.summary().expect("a verdict needs the prefix");
    let title = match &checked.title {
        Some(Ok(t)) => Some(t.head.clone()),
        _ => title.finish(),
    }
    .map(|t| sanitize_line(&t));
    let record = Record {
        record: RECORD_VERSION,
        key: c.key.to_string(),
        size,
        blake3: checked.blake3.clone(),
        content_blake3: content.finalize().to_hex().to_string(),
        dialect: dialect.as_str().to_string(),
        raw_header: hex(&header),
        header: summary,
        title,
        pushed_by: pushed_by(),
        pushed_at: now,
        kvc_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(Prepared {
        record,
        header,
        bytes: keep,
        file: Arc::new(f),
    })
}

/// How an upload ended.
struct Uploaded {
    action: PushAction,
    sent: u64,
    resumed: Option<usize>,
    message: Option<String>,
}

impl Uploaded {
    fn of(action: PushAction, sent: u64, message: impl Into<Option<String>>) -> Uploaded {
        Uploaded {
            action,
            sent,
            resumed: None,
            message: message.into(),
        }
    }
}

const RACED: &str = "another host pushed it first (conditional create): kept theirs";

fn attributes(record: &Record) -> Attributes {
    let mut a = Attributes::new();
    a.insert(
        Attribute::Metadata(META_NAME.into()),
        record.encode().into(),
    );
    a
}

async fn run(
    remote: &Remote,
    plan: &PushPlan,
    dry_run: bool,
    progress: &mut dyn Progress,
) -> Result<PushReport> {
    let opts = &plan.options;
    let engine = match opts.engine {
        Some(e) => e,
        None => {
            crate::scan::scan_dir(&plan.dir, crate::ScanOptions::default())?
                .engine
                .engine
        }
    };
    let cps = &plan.selected.checkpoints;
    let ns_of = |c: &Checkpoint| namespace(c.dialect, c.header.model_id);
    // What the remote has, one LIST per namespace involved.
    let mut present: HashMap<(String, Key), u64> = HashMap::new();
    let namespaces: HashSet<String> = cps.iter().map(ns_of).collect();
    for ns in &namespaces {
        let (objects, _) = remote.list_objects(Some(ns)).await?;
        for o in objects {
            present.insert((o.namespace, o.key), o.size);
        }
    }
    let todo: u64 = cps
        .iter()
        .filter(|c| !present.contains_key(&(ns_of(c), c.key.clone())))
        .map(|c| c.size)
        .sum();
    progress.begin(Some(todo));
    let mut entries = Vec::new();
    for c in cps {
        let mut ns = ns_of(c);
        let name = c.key.file_name();
        progress.entry(&name);
        let mut entry = PushEntry {
            key: c.key.to_string(),
            file: c.file().into_owned(),
            object: remote.url.object_url(&remote.url.object(&ns, &c.key)),
            namespace: ns.clone(),
            action: PushAction::Present,
            size: c.size,
            bytes_sent: 0,
            resumed_parts: None,
            message: None,
            blake3: None,
            header: Some(c.header.clone()),
        };
        if let Some(&size) = present.get(&(ns.clone(), c.key.clone())) {
            if size != c.size {
                entry.message = Some(format!(
                    "the remote's copy has {size} bytes, this one {} (the same text; kept theirs)",
                    c.size
                ));
            }
            entries.push(entry);
            continue;
        }
        let prepared = match prepare(c, engine, opts.exclude_text.as_ref(), opts.now) {
            Ok(p) => p,
            Err(NotPushed(action, message)) => {
                progress.advance(c.size);
                entry.action = action;
                entry.message = Some(message);
                entries.push(entry);
                continue;
            }
        };
        // The bytes decide the namespace (the file may have changed since
        // the scan): look again when it moved.
        let h = crate::format::Header::decode(&prepared.header);
        let dialect = prepared.record.dialect_id().expect("from a verdict");
        if namespace(dialect, h.model_id) != ns {
            ns = namespace(dialect, h.model_id);
            entry.namespace = ns.clone();
            let object = remote.url.object(&ns, &c.key);
            entry.object = remote.url.object_url(&object);
            if let Ok(Some(_)) = remote.head_record(&object).await {
                entries.push(entry);
                continue;
            }
        }
        entry.size = prepared.record.size;
        entry.blake3 = Some(prepared.record.blake3.clone());
        entry.header = Some(h);
        if dry_run {
            progress.advance(c.size);
            entry.action = PushAction::Planned;
            entries.push(entry);
            continue;
        }
        let object = remote.url.object(&ns, &c.key);
        let up = remote.upload(&plan.dir, &object, prepared, progress).await;
        entry.action = up.action;
        entry.bytes_sent = up.sent;
        entry.resumed_parts = up.resumed;
        entry.message = up.message;
        entries.push(entry);
    }
    progress.finish();
    Ok(PushReport {
        dir: plan.dir.clone(),
        remote: remote.url.to_string(),
        dry_run,
        exclude_text: opts
            .exclude_text
            .as_ref()
            .map(|f| f.patterns().to_vec())
            .unwrap_or_default(),
        entries,
        invalid: plan.selected.invalid.clone(),
        foreign: plan.selected.foreign.clone(),
        warnings: Vec::new(),
    })
}

/// A part read from the file, and the content hasher fed with it.
struct ReadPart {
    bytes: Vec<u8>,
    content: blake3::Hasher,
}

/// Read part `idx` on tokio's blocking pool (the runtime's one thread
/// keeps the uploads moving), with the first pass's header in place of
/// the file's, and hash what follows the header. The buffer is allocated
/// here, on the runtime's thread, where the upload frees it: allocated on
/// the pool's thread, glibc kept each freed part in that thread's arena
/// (measured: 44 MiB peak RSS for a push instead of 36).
///
/// Only the content is hashed again: the header sent is the one the
/// record was made from, so equal content means an equal whole.
async fn read_part(
    file: Arc<File>,
    idx: u64,
    part_size: u64,
    size: u64,
    header: [u8; HEADER_LEN],
    mut content: blake3::Hasher,
) -> io::Result<ReadPart> {
    let off = idx * part_size;
    let len = part_size.min(size - off) as usize;
    let mut bytes = vec![0u8; len];
    tokio::task::spawn_blocking(move || {
        file.read_exact_at(&mut bytes, off)?;
        if idx == 0 {
            let n = HEADER_LEN.min(len);
            bytes[..n].copy_from_slice(&header[..n]);
            content.update(&bytes[n..]);
        } else {
            content.update(&bytes);
        }
        Ok(ReadPart { bytes, content })
    })
    .await
    .map_err(io::Error::other)?
}

impl Remote {
    /// Upload one prepared checkpoint to `object`.
    async fn upload(
        &self,
        cache: &Path,
        object: &ObjectPath,
        mut p: Prepared,
        progress: &mut dyn Progress,
    ) -> Uploaded {
        if let Some(mut bytes) = p.bytes.take() {
            let n = HEADER_LEN.min(bytes.len());
            bytes[..n].copy_from_slice(&p.header[..n]);
            let size = bytes.len() as u64;
            let opts = PutOptions {
                mode: PutMode::Create,
                attributes: attributes(&p.record),
                ..Default::default()
            };
            return match self
                .store
                .put_opts(object, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => {
                    progress.advance(size);
                    Uploaded::of(PushAction::Pushed, size, None)
                }
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Uploaded::of(PushAction::Present, 0, Some(RACED.into())),
                Err(e) => {
                    Uploaded::of(PushAction::Failed, 0, Some(super::one_line(&e.to_string())))
                }
            };
        }
        match self
            .multipart_upload(cache, object, &p, progress, true)
            .await
        {
            Err(Restart) => {
                // The remote forgot the upload the state named (aborted
                // by `remote gc`, or expired): once more, from scratch.
                resume::remove(cache, &self.url.to_string(), object.as_ref());
                match self
                    .multipart_upload(cache, object, &p, progress, false)
                    .await
                {
                    Ok(u) => u,
                    Err(Restart) => Uploaded::of(
                        PushAction::Failed,
                        0,
                        Some("the remote lost the multipart upload as it was made".into()),
                    ),
                }
            }
            Ok(u) => u,
        }
    }

    /// A multipart upload, resumed from its state when `resume` and one
    /// of the same bytes was left. `Err(Restart)` when the remote no
    /// longer has the upload the state named.
    async fn multipart_upload(
        &self,
        cache: &Path,
        object: &ObjectPath,
        p: &Prepared,
        progress: &mut dyn Progress,
        resume: bool,
    ) -> std::result::Result<Uploaded, Restart> {
        let url = self.url.to_string();
        let r = &p.record;
        let size = r.size;
        let part_size = part_size_for(size);
        let n_parts = size.div_ceil(part_size);
        let failed = |m: String| Ok(Uploaded::of(PushAction::Failed, 0, Some(m)));
        let previous = resume
            .then(|| resume::load(cache, &url, object.as_ref()))
            .flatten()
            .filter(|s| {
                s.size == size
                    && s.part_size == part_size
                    && s.content_blake3 == r.content_blake3
                    && s.parts.len() as u64 <= n_parts
            });
        // Resuming: the first part went with the header the upload began
        // with, and the record made then describes those bytes.
        let (state, header, resumed) = match previous {
            Some(s) => {
                let header = super::record::parse_header_hex(&s.raw_header).unwrap_or(p.header);
                let done = s.parts.len();
                (s, header, Some(done))
            }
            None => {
                let opts = PutMultipartOptions {
                    attributes: attributes(r),
                    ..Default::default()
                };
                let id = match self.multipart.create_multipart_opts(object, opts).await {
                    Ok(id) => id,
                    Err(e) => return failed(super::one_line(&e.to_string())),
                };
                let s = UploadState {
                    remote: url.clone(),
                    object: object.to_string(),
                    upload_id: id,
                    part_size,
                    size,
                    blake3: r.blake3.clone(),
                    content_blake3: r.content_blake3.clone(),
                    raw_header: r.raw_header.clone(),
                    parts: Vec::new(),
                    started: r.pushed_at,
                };
                // Best effort: without it the upload is not resumable,
                // nothing worse.
                let _ = resume::save(cache, &s);
                (s, p.header, None)
            }
        };
        let mut t = Tally {
            parts: (0..n_parts as usize)
                .map(|i| {
                    state.parts.get(i).map(|c| PartId {
                        content_id: c.clone(),
                    })
                })
                .collect(),
            state,
            sent: 0,
            error: None,
        };
        let mut content = blake3::Hasher::new();
        let mut inflight = FuturesUnordered::new();
        for idx in 0..n_parts {
            if t.error.is_some() {
                break;
            }
            let mut read = Box::pin(read_part(
                p.file.clone(),
                idx,
                part_size,
                size,
                header,
                content,
            ));
            // Read the next part while the ones in flight go on.
            let part = loop {
                if inflight.is_empty() {
                    break read.await;
                }
                match select(read, inflight.next()).await {
                    Either::Left((r, _)) => break r,
                    Either::Right((done, r)) => {
                        if let Some(done) = done {
                            t.done(done, cache, progress);
                        }
                        read = r;
                    }
                }
            };
            let part = match part {
                Ok(p) => p,
                Err(e) => {
                    // Drain, so the parts in flight are recorded.
                    while let Some(done) = inflight.next().await {
                        t.done(done, cache, progress);
                    }
                    return failed(format!(
                        "read error: {e}; run push again to resume the upload"
                    ));
                }
            };
            content = part.content;
            let i = idx as usize;
            if t.parts[i].is_some() {
                // On the remote already (resumed): hashed, not sent.
                progress.advance(part.bytes.len() as u64);
                continue;
            }
            while inflight.len() >= PART_CONCURRENCY {
                if let Some(done) = inflight.next().await {
                    t.done(done, cache, progress);
                }
            }
            let (mp, obj, id) = (
                self.multipart.clone(),
                object.clone(),
                t.state.upload_id.clone(),
            );
            let len = part.bytes.len() as u64;
            let payload = PutPayload::from(part.bytes);
            inflight.push(async move { (i, len, mp.put_part(&obj, &id, i, payload).await) });
        }
        while let Some(done) = inflight.next().await {
            t.done(done, cache, progress);
        }
        let Tally {
            parts,
            state,
            sent,
            error,
        } = t;
        if let Some(e) = error {
            if upload_gone(&e) && resumed.is_some() {
                return Err(Restart);
            }
            let have = state.parts.len();
            return Ok(Uploaded {
                action: PushAction::Failed,
                sent,
                resumed,
                message: Some(format!(
                    "{}; {have} of {n_parts} parts are on the remote: run push again to resume",
                    super::one_line(&e.to_string())
                )),
            });
        }
        if content.finalize().to_hex().as_str() != state.content_blake3 {
            let _ = self
                .multipart
                .abort_multipart(object, &state.upload_id)
                .await;
            resume::remove(cache, &url, object.as_ref());
            return Ok(Uploaded {
                action: PushAction::Rejected,
                sent,
                resumed,
                message: Some(
                    "it changed while being pushed (its bytes after the header differ from the first read); the upload was aborted: push again"
                        .into(),
                ),
            });
        }
        let parts: Vec<PartId> = parts
            .into_iter()
            .map(|p| p.expect("every part done"))
            .collect();
        let completed = match &self.s3 {
            Some(s3) => s3
                .complete_create(object, &state.upload_id, &parts)
                .await
                .map_err(|m| {
                    if m.contains("NoSuchUpload") {
                        None
                    } else {
                        Some(m)
                    }
                }),
            None => match self.head_record(object).await {
                Ok(Some(_)) => Ok(Completed::Exists),
                _ => self
                    .multipart
                    .complete_multipart(object, &state.upload_id, parts)
                    .await
                    .map(|_| Completed::Created)
                    .map_err(|e| (!upload_gone(&e)).then(|| e.to_string())),
            },
        };
        let outcome = match completed {
            Ok(Completed::Created) => Uploaded {
                action: PushAction::Pushed,
                sent,
                resumed,
                message: resumed
                    .map(|n| format!("resumed: {n} of {n_parts} parts were on the remote")),
            },
            Ok(Completed::Exists) => {
                let _ = self
                    .multipart
                    .abort_multipart(object, &state.upload_id)
                    .await;
                Uploaded {
                    action: PushAction::Present,
                    sent,
                    resumed,
                    message: Some(RACED.into()),
                }
            }
            Err(None) if resumed.is_some() => return Err(Restart),
            Err(None) => Uploaded {
                action: PushAction::Failed,
                sent,
                resumed,
                message: Some("the remote lost the multipart upload before it completed".into()),
            },
            Err(Some(m)) => {
                return Ok(Uploaded {
                    action: PushAction::Failed,
                    sent,
                    resumed,
                    message: Some(format!(
                        "{}; all {n_parts} parts are on the remote: run push again to complete",
                        super::one_line(&m)
                    )),
                })
            }
        };
        resume::remove(cache, &url, object.as_ref());
        Ok(outcome)
    }
}

/// The upload a resume state named is gone from the remote.
struct Restart;

/// Whether an error on a resumed upload says it does not exist (any
/// more): S3's `NoSuchUpload` (a 404), the 403 servers that cannot find
/// the id answer with (s3s), or the in-memory store's words for it. The
/// push then starts once more from scratch, which a real lack of
/// permission fails again.
fn upload_gone(e: &object_store::Error) -> bool {
    if matches!(
        e,
        object_store::Error::NotFound { .. } | object_store::Error::PermissionDenied { .. }
    ) {
        return true;
    }
    let s = e.to_string();
    s.contains("NoSuchUpload") || s.contains("MultipartUpload not found")
}

/// The parts of an upload as they complete.
struct Tally {
    parts: Vec<Option<PartId>>,
    state: UploadState,
    sent: u64,
    error: Option<object_store::Error>,
}

impl Tally {
    /// A part upload finished: note it, and save the state when the run of
    /// parts done from the first grew.
    fn done(
        &mut self,
        (idx, len, res): (usize, u64, object_store::Result<PartId>),
        cache: &Path,
        progress: &mut dyn Progress,
    ) {
        match res {
            Ok(id) => {
                self.parts[idx] = Some(id);
                self.sent += len;
                progress.advance(len);
                let run: Vec<String> = self
                    .parts
                    .iter()
                    .map_while(|p| p.as_ref().map(|p| p.content_id.clone()))
                    .collect();
                if run.len() > self.state.parts.len() {
                    self.state.parts = run;
                    // Best effort, as when the upload began.
                    let _ = resume::save(cache, &self.state);
                }
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3s_limits() {
        assert_eq!(part_size_for(0), PART_SIZE);
        assert_eq!(part_size_for(2 << 30), PART_SIZE);
        let big = 200u64 << 30;
        let ps = part_size_for(big);
        assert!(big.div_ceil(ps) <= MAX_PARTS && ps.is_multiple_of(1 << 20) && ps > PART_SIZE);
    }
}
