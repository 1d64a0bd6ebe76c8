//! What a remote holds: its objects (one LIST, paginated), their records
//! (a HEAD each, 16 at a time), and the same as scans of cache
//! directories, one per namespace, for `remote ls` and `pull --match`.

use super::record::{Record, META_NAME};
use super::{namespace, valid_namespace, Remote, RemoteUrl};
use crate::code::Code;
use crate::error::Result;
use crate::format::checkpoint::Key;
use crate::format::dialect::{self, DialectId, Engine, EngineChoice, EngineHow, Evidence};
use crate::scan::{Checkpoint, Invalid, Scan, Stray};
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions, ObjectMeta};
use std::path::PathBuf;

/// HEAD requests in flight while listing records.
const HEAD_CONCURRENCY: usize = 16;

/// An object with a checkpoint's name in a namespace:
/// `<prefix>/<namespace>/<key>.kv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteObject {
    pub namespace: String,
    pub key: Key,
    pub location: ObjectPath,
    pub size: u64,
    /// Unix seconds: when it was pushed.
    pub last_modified: u64,
}

/// Anything else under the prefix: never kvc's to touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrayObject {
    /// Relative to the prefix.
    pub name: String,
    pub size: u64,
}

/// An object and its record, or why the record is not usable.
#[derive(Clone, Debug)]
pub struct RemoteCheckpoint {
    pub object: RemoteObject,
    pub record: std::result::Result<Record, String>,
}

impl RemoteCheckpoint {
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref().ok()
    }

    /// When the remote last saw it used: the later of its push and the
    /// last use its header recorded (what `remote gc` ages by).
    pub fn last_seen(&self) -> u64 {
        let used = self.record().map_or(0, |r| r.header.last_used);
        self.object.last_modified.max(used)
    }
}

/// A remote's checkpoints, sorted by namespace and key, and its other
/// objects.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub checkpoints: Vec<RemoteCheckpoint>,
    pub strays: Vec<StrayObject>,
}

/// Sort an object under the prefix into a checkpoint or a stray.
fn classify(url: &RemoteUrl, meta: &ObjectMeta) -> std::result::Result<RemoteObject, StrayObject> {
    let full = meta.location.as_ref();
    let rel = full
        .strip_prefix(url.key_prefix().as_str())
        .unwrap_or(full)
        .to_string();
    let stray = || StrayObject {
        name: crate::text::sanitize_line(rel.as_bytes()),
        size: meta.size,
    };
    let Some((ns, file)) = rel.split_once('/') else {
        return Err(stray());
    };
    let key = match Key::from_file_name(file) {
        // Only the canonical (lower-case) name: push writes no other.
        Some(k) if k.file_name() == file && valid_namespace(ns) => k,
        _ => return Err(stray()),
    };
    Ok(RemoteObject {
        namespace: ns.to_string(),
        key,
        location: meta.location.clone(),
        size: meta.size,
        last_modified: meta.last_modified.timestamp().max(0) as u64,
    })
}

/// Why a record cannot describe its object, if it cannot.
pub(crate) fn record_mismatch(obj: &RemoteObject, r: &Record) -> Option<String> {
    if r.key != obj.key.to_string() {
        return Some(format!("its record is about {}", r.key));
    }
    if r.size != obj.size {
        return Some(format!(
            "its record says {} bytes, the object has {}",
            r.size, obj.size
        ));
    }
    let Some(d) = r.dialect_id() else {
        return Some(format!(
            "its record names dialect {:?}, which kvc does not read",
            crate::text::sanitize_line(r.dialect.as_bytes())
        ));
    };
    let h = r.header().expect("decode checked it");
    let want = namespace(d, h.model_id);
    if want != obj.namespace {
        return Some(format!(
            "stored under {} but its record is of {want}",
            obj.namespace
        ));
    }
    None
}

impl Remote {
    /// The record of the object at `path` from its metadata, or why there
    /// is none; `Ok(None)` when the object does not exist.
    pub(crate) async fn head_record(
        &self,
        path: &ObjectPath,
    ) -> std::result::Result<
        Option<(ObjectMeta, std::result::Result<Record, String>)>,
        object_store::Error,
    > {
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        match self.store.get_opts(path, opts).await {
            Ok(r) => {
                let record = match r.attributes.get(&Attribute::Metadata(META_NAME.into())) {
                    Some(v) => Record::decode(v),
                    None => Err("no kvc record (x-amz-meta-kvc): not pushed by kvc".into()),
                };
                Ok(Some((r.meta, record)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every object under the prefix (or one namespace of it), sorted.
    pub(crate) async fn list_objects(
        &self,
        ns: Option<&str>,
    ) -> Result<(Vec<RemoteObject>, Vec<StrayObject>)> {
        let prefix = match ns {
            Some(ns) => format!("{}{ns}", self.url.key_prefix()),
            None => self.url.prefix().to_string(),
        };
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let metas: Vec<ObjectMeta> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.error("listing the remote", e))?;
        let (mut objects, mut strays) = (Vec::new(), Vec::new());
        for m in &metas {
            match classify(&self.url, m) {
                Ok(o) => objects.push(o),
                Err(s) => strays.push(s),
            }
        }
        objects.sort_by(|a, b| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)));
        strays.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((objects, strays))
    }

    /// The records of `objects`, 16 HEAD requests at a time. An object
    /// gone meanwhile is left out.
    pub(crate) async fn records_of(
        &self,
        objects: Vec<RemoteObject>,
    ) -> Result<Vec<RemoteCheckpoint>> {
        let mut out: Vec<RemoteCheckpoint> = futures_util::stream::iter(objects)
            .map(|object| async move {
                let got = self.head_record(&object.location).await;
                (object, got)
            })
            .buffer_unordered(HEAD_CONCURRENCY)
            .filter_map(|(object, got)| async move {
                match got {
                    Ok(None) => None,
                    Ok(Some((_, record))) => {
                        let record = record.and_then(|r| match record_mismatch(&object, &r) {
                            Some(m) => Err(m),
                            None => Ok(r),
                        });
                        Some(Ok(RemoteCheckpoint { object, record }))
                    }
                    Err(e) => Some(Err(e)),
                }
            })
            .try_collect()
            .await
            .map_err(|e| self.error("reading object metadata", e))?;
        out.sort_by(|a, b| {
            (&a.object.namespace, &a.object.key).cmp(&(&b.object.namespace, &b.object.key))
        });
        Ok(out)
    }

    /// The remote's checkpoints with their records (or one namespace's).
    pub fn listing(&self, ns: Option<&str>) -> Result<Listing> {
        self.block_on(async {
            let (objects, strays) = self.list_objects(ns).await?;
            let checkpoints = self.records_of(objects).await?;
            Ok(Listing {
                checkpoints,
                strays,
            })
        })
    }
}

/// The engine that reads a namespace: `given`, else what its records'
/// dialects point to (as a scan infers it from a directory's files).
fn engine_of(records: &[&Record], given: Option<Engine>) -> EngineChoice {
    if let Some(e) = given {
        return EngineChoice::given(e);
    }
    let mut ev = Evidence::default();
    for r in records {
        match r.dialect_id() {
            Some(DialectId::D3 | DialectId::D4 | DialectId::D11) => ev.mainline += 1,
            Some(DialectId::D20) => ev.hanzo_only += 1,
            Some(DialectId::D1) => ev.ambiguous += 1,
            _ => {}
        }
        if r.key == "sysprompt" {
            ev.sysprompt = true;
        }
    }
    let mut choice = dialect::infer_engine(&ev, None);
    if let EngineHow::Inferred(why) = &choice.how {
        choice.how = EngineHow::Inferred(format!("the records of {why}"));
    }
    choice
}

impl Listing {
    /// The namespaces present, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .checkpoints
            .iter()
            .map(|c| c.object.namespace.clone())
            .collect();
        v.dedup();
        v
    }

    /// One scan per namespace, as if each were a cache directory holding
    /// the checkpoints its records describe (path: the object's URL, no
    /// text to read: titles come from the records), objects with an
    /// unusable record as `invalid` (`bad-record`). Strays go with the
    /// first namespace; with no namespace, one empty scan of the prefix
    /// itself holds them.
    pub fn scans(&self, url: &RemoteUrl, engine: Option<Engine>) -> Vec<(String, Scan)> {
        let mut out: Vec<(String, Scan)> = Vec::new();
        for ns in self.namespaces() {
            let members: Vec<&RemoteCheckpoint> = self
                .checkpoints
                .iter()
                .filter(|c| c.object.namespace == ns)
                .collect();
            let records: Vec<&Record> = members.iter().filter_map(|c| c.record()).collect();
            let choice = engine_of(&records, engine);
            let mut scan = Scan {
                dir: PathBuf::from(url.namespace_url(&ns)),
                engine: choice.clone(),
                ..Scan::default()
            };
            for (order, c) in members.iter().enumerate() {
                let path = PathBuf::from(url.object_url(&c.object.location));
                let file = c.object.key.file_name();
                match c.record() {
                    Some(r) => {
                        let h = r.header().expect("decode checked it");
                        let mut cp = Checkpoint::from_header(
                            c.object.key.clone(),
                            path,
                            c.object.size,
                            0o600,
                            h,
                            r.header.text_bytes,
                            choice.engine,
                        );
                        cp.order = order as u32;
                        cp.text_title = r.title.as_ref().map(|t| t.as_bytes().into());
                        scan.checkpoints.push(cp);
                    }
                    None => scan.invalid.push(Invalid {
                        file,
                        path,
                        size: c.object.size,
                        code: Code::BadRecord,
                        error: c.record.clone().err().unwrap_or_default(),
                        order: order as u32,
                    }),
                }
            }
            out.push((url.namespace_url(&ns), scan));
        }
        if out.is_empty() || !self.strays.is_empty() {
            if out.is_empty() {
                out.push((
                    url.to_string(),
                    Scan {
                        dir: PathBuf::from(url.to_string()),
                        ..Scan::default()
                    },
                ));
            }
            let first = &mut out[0].1;
            for (i, s) in self.strays.iter().enumerate() {
                first.strays.push(Stray {
                    file: s.name.clone(),
                    path: PathBuf::from(format!("{url}/{}", s.name)),
                    size: s.size,
                    is_dir: false,
                    is_symlink: false,
                    known: None,
                    order: i as u32,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            location: ObjectPath::from(path),
            last_modified: Default::default(),
            size,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn only_kvc_names_are_checkpoints() {
        let url = RemoteUrl::parse("s3://bucket-a/fleet").unwrap();
        let key = "ab".repeat(20);
        let ok = classify(&url, &meta(&format!("fleet/flash/{key}.kv"), 9)).unwrap();
        assert_eq!(ok.namespace, "flash");
        assert_eq!(ok.key.to_string(), key);
        assert!(classify(&url, &meta("fleet/flash/sysprompt.kv", 1)).is_ok());
        for stray in [
            format!("fleet/flash/{}.kv", key.to_uppercase()),
            format!("fleet/{key}.kv"),
            format!("fleet/Flash/{key}.kv"),
            format!("fleet/flash/x/{key}.kv"),
            "fleet/flash/notes.txt".into(),
        ] {
            assert!(classify(&url, &meta(&stray, 1)).is_err(), "{stray}");
        }
    }
}
