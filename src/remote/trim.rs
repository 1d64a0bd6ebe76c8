//! `kvc remote rm` and `kvc remote gc`: deleting from a remote.
//!
//! `rm` deletes the objects KEYs name (full keys or unique prefixes; in
//! every namespace unless `--model` narrows). `gc` trims a shared store as
//! `ccache --trim-dir` trims a shared cache directory: by age (older than
//! `--max-age`) and by size (oldest first until `--max-size`), where an
//! object's age is its last sign of use the remote has: the later of its
//! push and the `last_used` its header recorded. Only objects with a
//! checkpoint name in a namespace are candidates; anything else under the
//! prefix is another tool's and is never deleted. `gc` also aborts
//! multipart uploads older than `--uploads-older-than` (default one day)
//! that nobody resumed: an interrupted push's parts cost storage until
//! then. On AWS, a bucket lifecycle rule (`AbortIncompleteMultipartUpload`)
//! does the same server-side.

use super::listing::{Listing, RemoteCheckpoint};
use super::s3::PendingUpload;
use super::Remote;
use crate::code::Code;
use crate::error::{Error, Result};
use crate::format::checkpoint::Key;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt as _;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// One object or upload a trim acts on.
#[derive(Clone, Debug, Serialize)]
pub struct TrimEntry {
    /// The checkpoint key, for an object; for an upload, its object's.
    pub key: String,
    pub namespace: String,
    /// `s3://bucket/…`
    pub object: String,
    pub size: u64,
    /// Unix seconds: the age it was judged by (for an upload: initiated).
    pub last_seen: Option<u64>,
    /// `planned` (dry run), `removed`, `aborted`, `vanished`, `failed`.
    pub action: Code,
    /// Why it was chosen (`requested`, `age`, `size`, `stale upload`), or
    /// why it failed.
    pub why: String,
    #[serde(skip)]
    location: ObjectPath,
    #[serde(skip)]
    upload_id: Option<String>,
}

/// What `remote rm` or `remote gc` did or would do.
#[derive(Clone, Debug, Serialize)]
pub struct TrimReport {
    pub remote: String,
    pub dry_run: bool,
    pub objects: Vec<TrimEntry>,
    pub uploads: Vec<TrimEntry>,
    /// Bytes of the checkpoint objects before and after (gc).
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Objects under the prefix that are not kvc's: left alone.
    pub strays: usize,
    /// Said when multipart uploads could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploads_note: Option<String>,
}

impl TrimReport {
    pub fn count(&self, c: Code) -> usize {
        self.objects
            .iter()
            .chain(&self.uploads)
            .filter(|e| e.action == c)
            .count()
    }

    pub fn bytes_removed(&self) -> u64 {
        self.objects
            .iter()
            .filter(|e| matches!(e.action, Code::Removed | Code::Planned))
            .map(|e| e.size)
            .sum()
    }

    /// Exit 1: something could not be deleted or aborted.
    pub fn has_problems(&self) -> bool {
        self.count(Code::Failed) > 0
    }
}

/// A planned deletion: run it with [`apply`], or show it (the dry run).
#[derive(Debug)]
pub struct TrimPlan {
    pub report: TrimReport,
}

fn object_entry(remote: &Remote, c: &RemoteCheckpoint, why: &str, last_seen: bool) -> TrimEntry {
    TrimEntry {
        key: c.object.key.to_string(),
        namespace: c.object.namespace.clone(),
        object: remote.url.object_url(&c.object.location),
        size: c.object.size,
        last_seen: last_seen.then(|| c.last_seen()),
        action: Code::Planned,
        why: why.into(),
        location: c.object.location.clone(),
        upload_id: None,
    }
}

/// `remote rm KEY…`: the objects the keys name.
pub fn plan_rm(remote: &Remote, keys: &[String], namespace: Option<&str>) -> Result<TrimPlan> {
    remote.writable("remote rm")?;
    let (objects, strays) = remote.block_on(remote.list_objects(namespace))?;
    let shown = remote.url.shown();
    let mut wanted: BTreeSet<Key> = BTreeSet::new();
    for k in keys {
        let r = crate::resolve::resolve_key_among(&shown, objects.iter().map(|o| (&o.key, "")), k)?;
        wanted.insert(r.key);
    }
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let victims: Vec<TrimEntry> = objects
        .into_iter()
        .filter(|o| wanted.contains(&o.key))
        .map(|o| {
            let c = RemoteCheckpoint {
                object: o,
                record: Err(String::new()),
            };
            object_entry(remote, &c, "requested", false)
        })
        .collect();
    let removed: u64 = victims.iter().map(|v| v.size).sum();
    Ok(TrimPlan {
        report: TrimReport {
            remote: remote.url.to_string(),
            dry_run: true,
            objects: victims,
            uploads: Vec::new(),
            bytes_before: total,
            bytes_after: total - removed,
            strays: strays.len(),
            uploads_note: None,
        },
    })
}

/// What `remote gc` trims.
#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// Delete checkpoints not seen in use for longer than this.
    pub max_age: Option<Duration>,
    /// Then delete the oldest until the checkpoints take at most this.
    pub max_size: Option<u64>,
    /// Abort multipart uploads initiated longer ago than this.
    pub upload_age: Duration,
    /// Unix seconds.
    pub now: u64,
}

/// Choose what `remote gc` deletes and aborts (read-only).
pub fn plan_gc(remote: &Remote, namespace: Option<&str>, opts: &GcOptions) -> Result<TrimPlan> {
    remote.writable("remote gc")?;
    let trims = opts.max_age.is_some() || opts.max_size.is_some();
    let listing = if trims {
        remote.listing(namespace)?
    } else {
        let (objects, strays) = remote.block_on(remote.list_objects(namespace))?;
        Listing {
            checkpoints: objects
                .into_iter()
                .map(|object| RemoteCheckpoint {
                    object,
                    record: Err(String::new()),
                })
                .collect(),
            strays,
        }
    };
    let total: u64 = listing.checkpoints.iter().map(|c| c.object.size).sum();
    let mut victims: Vec<TrimEntry> = Vec::new();
    let mut left: Vec<&RemoteCheckpoint> = Vec::new();
    for c in &listing.checkpoints {
        let too_old = opts
            .max_age
            .is_some_and(|a| c.last_seen() < opts.now.saturating_sub(a.as_secs()));
        if too_old {
            let days = opts.now.saturating_sub(c.last_seen()) / 86_400;
            victims.push(object_entry(
                remote,
                c,
                &format!("age: unused for {days}d"),
                true,
            ));
        } else {
            left.push(c);
        }
    }
    let mut after = total - victims.iter().map(|v| v.size).sum::<u64>();
    if let Some(max) = opts.max_size {
        // Oldest first; ties by namespace and key, for a stable order.
        left.sort_by(|a, b| {
            (a.last_seen(), &a.object.namespace, &a.object.key).cmp(&(
                b.last_seen(),
                &b.object.namespace,
                &b.object.key,
            ))
        });
        for c in left {
            if after <= max {
                break;
            }
            after -= c.object.size;
            victims.push(object_entry(remote, c, "size", true));
        }
    }
    let (uploads, uploads_note) = match &remote.s3 {
        Some(s3) => {
            let found = remote
                .block_on(s3.list_uploads(&remote.url.key_prefix()))
                .map_err(|m| remote.error("listing multipart uploads", m))?;
            let cutoff = opts.now.saturating_sub(opts.upload_age.as_secs());
            let stale = found
                .into_iter()
                .filter(|u| u.initiated.is_some_and(|t| t < cutoff))
                .filter_map(|u| upload_entry(remote, u))
                .collect();
            (stale, None)
        }
        None => (
            Vec::new(),
            Some("this store cannot list multipart uploads; none were aborted".into()),
        ),
    };
    Ok(TrimPlan {
        report: TrimReport {
            remote: remote.url.to_string(),
            dry_run: true,
            objects: victims,
            uploads,
            bytes_before: total,
            bytes_after: after,
            strays: listing.strays.len(),
            uploads_note,
        },
    })
}

/// An upload of an object with a kvc name, as a trim entry; `None` for
/// another tool's.
fn upload_entry(remote: &Remote, u: PendingUpload) -> Option<TrimEntry> {
    let rel = u.key.strip_prefix(remote.url.key_prefix().as_str())?;
    let (ns, file) = rel.split_once('/')?;
    let key = Key::from_file_name(file).filter(|k| k.file_name() == file)?;
    if !super::valid_namespace(ns) {
        return None;
    }
    let location = ObjectPath::from(u.key.as_str());
    Some(TrimEntry {
        key: key.to_string(),
        namespace: ns.to_string(),
        object: remote.url.object_url(&location),
        size: 0,
        last_seen: u.initiated,
        action: Code::Planned,
        why: "stale upload: nobody resumed it".into(),
        location,
        upload_id: Some(u.upload_id),
    })
}

/// Delete and abort what `plan` lists.
pub fn apply(remote: &Remote, plan: TrimPlan) -> Result<TrimReport> {
    remote.writable("deleting from the remote")?;
    let mut report = plan.report;
    report.dry_run = false;
    remote.block_on(async {
        for e in report.objects.iter_mut() {
            // S3 answers a DELETE of a missing object with success: ask.
            match remote.store.head(&e.location).await {
                Err(object_store::Error::NotFound { .. }) => {
                    e.action = Code::Vanished;
                    continue;
                }
                Err(err) => {
                    e.action = Code::Failed;
                    e.why = super::one_line(&err.to_string());
                    continue;
                }
                Ok(_) => {}
            }
            match remote.store.delete(&e.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => e.action = Code::Removed,
                Err(err) => {
                    e.action = Code::Failed;
                    e.why = super::one_line(&err.to_string());
                }
            }
        }
        for e in report.uploads.iter_mut() {
            let id = e.upload_id.clone().expect("uploads have ids");
            match remote.multipart.abort_multipart(&e.location, &id).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => e.action = Code::Aborted,
                Err(err) => {
                    e.action = Code::Failed;
                    e.why = super::one_line(&err.to_string());
                }
            }
        }
    });
    let removed: u64 = report
        .objects
        .iter()
        .filter(|e| e.action == Code::Removed)
        .map(|e| e.size)
        .sum();
    let vanished: u64 = report
        .objects
        .iter()
        .filter(|e| e.action == Code::Vanished)
        .map(|e| e.size)
        .sum();
    report.bytes_after = report.bytes_before - removed - vanished;
    Ok(report)
}

/// Refuse a gc that would do nothing but list (kept for the CLI's checks).
pub fn check_gc(opts: &GcOptions) -> Result<()> {
    if opts.max_size == Some(0) {
        return Err(Error::Usage(
            "--max-size 0 would delete every checkpoint: use `kvc remote rm` to delete by name"
                .into(),
        ));
    }
    Ok(())
}
