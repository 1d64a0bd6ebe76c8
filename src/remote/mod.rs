//! Remotes: checkpoints shared across machines through S3-compatible
//! object storage (`kvc push`, `kvc pull`, `kvc remote ls|rm|gc`).
//!
//! # Layout
//!
//! A remote is `s3://bucket/prefix`. Each checkpoint is one object:
//!
//! ```text
//! <prefix>/<namespace>/<key>.kv      the file, byte for byte
//!                                     + user metadata `x-amz-meta-kvc`: its Record
//! ```
//!
//! The namespace is the model for dialects that number models as mainline
//! does (`flash`, `pro`, `glm-5.2`, …, `model-<id>` for an unnamed id), else
//! the dialect (`d20` for hanzo-engine): one text prefilled under two
//! models is two checkpoints with one key. The object name is the key,
//! the content's identity (the SHA-1 of the text, or a ds4-agent session's
//! SHA-1(title ‖ created)): nothing in it changes when a hit rewrites the
//! header, so every host that saved one prompt names it alike, and a host
//! uploads only what no object names yet.
//!
//! # The record: object metadata, not a sidecar
//!
//! Each object carries its [`Record`] (BLAKE3 of the whole file and of its
//! text, payload and trailers, the size, the header summary, the title,
//! who pushed it and when) as S3 user metadata, one ASCII JSON value of at
//! most 1800 bytes (S3 allows 2 KiB). A sidecar object was the
//! alternative; metadata wins because it is atomic with the bytes: a
//! single PUT, or a CompleteMultipartUpload, publishes data and record
//! together, so no listing ever sees one without the other, a conditional
//! create covers both, and `remote rm` and `gc` delete one object. The
//! price: the record must be known when the upload starts, so `push` reads
//! a large file twice (a first pass checks and hashes it, the second
//! uploads it and checks that the bytes did not change), and a listing
//! costs a HEAD per object (made 16 at a time).
//!
//! # Integrity
//!
//! `push` sends only files that pass the checks `kvc export` makes
//! (dialect, envelope, name identity, `crate::bundle`'s stream checks),
//! and `--exclude-text` patterns before a byte leaves. `pull` trusts
//! nothing the remote says: an object is streamed into a temp file in the
//! cache under its lock and becomes visible under its name only after its
//! size, both digests and header agree with its record, its record with
//! its name and namespace, and its bytes pass the same stream checks as an
//! import (temp, fsync, rename, 0600, through the write session).
//!
//! # Concurrency
//!
//! Two hosts pushing one checkpoint: a small file is a conditional create
//! (`If-None-Match: *`); a multipart upload completes with the same
//! condition, sent by kvc itself since object_store completes
//! unconditionally. The second host learns the object exists and reports
//! it present. An interrupted multipart upload leaves its parts on the
//! server and its id in `<cache>/.kvc/uploads/`; the next push of that file
//! resumes it, and `kvc remote gc` aborts the ones nobody resumed.
//!
//! # Runtime
//!
//! object_store is async. Each [`Remote`] owns a current-thread tokio
//! runtime, created when it connects and used only inside this module:
//! every public function here is synchronous, like the rest of kvc.

mod listing;
pub mod pull;
pub mod push;
mod record;
mod resume;
mod s3;
mod textfilter;
pub mod trim;

pub use listing::{Listing, RemoteCheckpoint, RemoteObject, StrayObject};
pub use record::Record;
pub use textfilter::TextFilter;

use crate::error::{Error, Result};
use crate::format::checkpoint::Key;
use crate::format::dialect::DialectId;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// The environment variable naming the remote when `--remote` is not given.
pub const REMOTE_ENV: &str = "KVC_REMOTE";

/// `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    prefix: String,
}

impl RemoteUrl {
    /// Parse `s3://bucket[/prefix]`. The bucket follows S3's naming rules;
    /// the prefix is plain path segments (no `.` or `..`, no empty ones).
    pub fn parse(s: &str) -> Result<RemoteUrl> {
        let bad = |why: &str| Error::Usage(format!("remote {s:?}: {why}"));
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL (s3://bucket/prefix)"))?;
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(bad(
                "the bucket must be 3-63 characters of a-z, 0-9, '-' and '.'",
            ));
        }
        for seg in prefix.split('/').filter(|_| !prefix.is_empty()) {
            if seg.is_empty() || seg == "." || seg == ".." || seg.bytes().any(|b| b < 0x20) {
                return Err(bad("the prefix must be plain path segments"));
            }
        }
        Ok(RemoteUrl {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key prefix every object of this remote has (`prefix/`, or empty).
    pub(crate) fn key_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    /// The object of checkpoint `key` in namespace `ns`.
    pub(crate) fn object(&self, ns: &str, key: &Key) -> ObjectPath {
        ObjectPath::from(format!("{}{ns}/{}", self.key_prefix(), key.file_name()))
    }

    /// `s3://bucket/prefix/ns`, as listings show a namespace.
    pub fn namespace_url(&self, ns: &str) -> String {
        format!("{self}/{ns}")
    }

    /// `s3://bucket/<object>`.
    pub fn object_url(&self, object: &ObjectPath) -> String {
        format!("s3://{}/{object}", self.bucket)
    }

    /// The URL as a path, for errors that name it (`kvc::Error` names paths).
    pub(crate) fn shown(&self) -> PathBuf {
        PathBuf::from(self.to_string())
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The namespace a checkpoint is stored under: its model for dialects that
/// number models as mainline does, else its dialect.
pub fn namespace(dialect: DialectId, model_id: u8) -> String {
    if dialect.spec().mainline_models {
        match crate::format::model_name(model_id) {
            Some(name) => name.to_string(),
            None => format!("model-{model_id}"),
        }
    } else {
        dialect.as_str().to_ascii_lowercase()
    }
}

/// A namespace as kvc writes them (the first path segment under the
/// prefix): anything else in a listing is not kvc's.
pub fn valid_namespace(ns: &str) -> bool {
    (1..=32).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !ns.starts_with('.')
}

/// The namespace a user names (`--model`): a model name or number
/// (`flash`, `1`) is its model's namespace; anything else must be one as
/// kvc writes them (`d20`).
pub fn parse_namespace(s: &str) -> Result<String> {
    if let Some(id) = crate::format::model_from_name(s) {
        return Ok(match crate::format::model_name(id) {
            Some(name) => name.to_string(),
            None => format!("model-{id}"),
        });
    }
    if valid_namespace(s) {
        Ok(s.to_string())
    } else {
        Err(Error::Usage(format!(
            "{s:?} is not a model or a namespace (flash, pro, glm-5.2, model-7, d20, …)"
        )))
    }
}

/// How to reach a remote.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectOptions {
    /// Refuse every write (`--read-only`): push, remote rm and gc fail
    /// before they send anything.
    pub read_only: bool,
    /// Allow a plain-HTTP endpoint that is not on this host
    /// (`--allow-http`); loopback endpoints are allowed without it.
    pub allow_http: bool,
}

/// A connected remote: its store, and the runtime its calls run on.
pub struct Remote {
    url: RemoteUrl,
    store: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    /// What only S3 offers through kvc's own requests: listing multipart
    /// uploads, completing one conditionally. `None` for in-memory stores.
    s3: Option<s3::Extra>,
    read_only: bool,
    rt: tokio::runtime::Runtime,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// A CLI does one thing at a time: a current-thread runtime is enough (the
/// part uploads of one file run concurrently on it as futures). I/O and
/// timers are needed by the HTTP client.
fn runtime(url: &RemoteUrl) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(&url.shown(), e))
}

impl Remote {
    /// Connect to an S3 remote with the credentials, region and endpoint of
    /// the standard AWS environment (what object_store's
    /// `AmazonS3Builder::from_env` reads; see [`s3`](self) for the rules
    /// kvc adds: no silent fallback to the instance metadata service, plain
    /// HTTP only to this host or when allowed). Sends nothing yet.
    pub fn connect(url: &RemoteUrl, opts: &ConnectOptions) -> Result<Remote> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (store, extra) = s3::build(url, opts, &env)?;
        let store = Arc::new(store);
        Ok(Remote {
            url: url.clone(),
            store: store.clone(),
            multipart: store,
            s3: Some(extra),
            read_only: opts.read_only,
            rt: runtime(url)?,
        })
    }

    /// A remote over any store that also takes multipart uploads by id
    /// (object_store's `InMemory`: the unit tests, and tools). Without S3,
    /// multipart uploads cannot be listed, and a multipart completion is
    /// conditional only as far as a HEAD just before it goes.
    pub fn with_store<S>(url: &RemoteUrl, store: Arc<S>, read_only: bool) -> Result<Remote>
    where
        S: ObjectStore + MultipartStore,
    {
        Ok(Remote {
            url: url.clone(),
            store: store.clone(),
            multipart: store,
            s3: None,
            read_only,
            rt: runtime(url)?,
        })
    }

    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Fail unless writes are allowed.
    pub(crate) fn writable(&self, what: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::invalid(
                &self.url.shown(),
                format!("the remote is read-only here (--read-only or KVC_REMOTE_READ_ONLY): {what} refused"),
            ));
        }
        Ok(())
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// An error about the remote as a whole, one line.
    pub(crate) fn error(&self, what: &str, e: impl fmt::Display) -> Error {
        Error::invalid(
            &self.url.shown(),
            format!("{what}: {}", one_line(&e.to_string())),
        )
    }
}

/// object_store's errors quote HTTP bodies and chains over several lines:
/// one line, sanitized (a hostile server chooses those bytes).
pub(crate) fn one_line(s: &str) -> String {
    let joined: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    crate::text::sanitize_line(joined.join(" ").as_bytes())
}

/// Who pushes: `user@host`, from `$USER` (or `$LOGNAME`) and the kernel's
/// host name; ASCII only.
pub(crate) fn pushed_by() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid{}", rustix::process::getuid().as_raw()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "unknown-host".to_string()
    } else {
        host
    };
    let who = format!("{user}@{host}");
    who.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let u = RemoteUrl::parse("s3://kv-fleet/caches/prod/").unwrap();
        assert_eq!(u.bucket(), "kv-fleet");
        assert_eq!(u.prefix(), "caches/prod");
        assert_eq!(u.to_string(), "s3://kv-fleet/caches/prod");
        let k = Key::from_hex(&"ab".repeat(20)).unwrap();
        assert_eq!(
            u.object("flash", &k).as_ref(),
            format!("caches/prod/flash/{}.kv", "ab".repeat(20))
        );
        let root = RemoteUrl::parse("s3://kv-fleet").unwrap();
        assert_eq!(root.to_string(), "s3://kv-fleet");
        assert_eq!(
            root.object("pro", &Key::Sysprompt).as_ref(),
            "pro/sysprompt.kv"
        );
        for bad in [
            "kv-fleet/x",
            "http://kv-fleet",
            "s3://Kv",
            "s3://ab",
            "s3://kv-fleet/a//b",
            "s3://kv-fleet/../x",
            "s3://-kv",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces_are_models_or_dialects() {
        assert_eq!(namespace(DialectId::D3, 0), "flash");
        assert_eq!(namespace(DialectId::D3, 2), "glm-5.2");
        assert_eq!(namespace(DialectId::D3, 77), "model-77");
        assert_eq!(namespace(DialectId::D20, 0), "d20");
        for ns in ["flash", "glm-5.2", "model-77", "d20"] {
            assert!(valid_namespace(ns), "{ns}");
        }
        for ns in ["", ".x", "Flash", "a/b", &"x".repeat(33)] {
            assert!(!valid_namespace(ns), "{ns}");
        }
    }
}
