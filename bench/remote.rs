//! The remote cases' machinery: a local S3 server (s3s-fs, in the
//! benchmark's own process: its memory is not kvc's) and the reference,
//! raw object_store transfers as `aws s3 cp` makes them, run by this same
//! executable (`--raw-put`, `--raw-get`) so that they are measured as
//! separate processes like kvc.
//!
//! The raw put is a multipart upload with kvc's part size and concurrency
//! (8 MiB, two in flight); the raw get streams each object to a file and
//! fsyncs it, as kvc pull does. Neither checks anything: the difference is
//! the price of kvc's checks (a first pass over the file, BLAKE3, the
//! dialect and name checks, the conditional completion).

#[path = "../tests/support/s3server.rs"]
mod s3server;

use bytes::BytesMut;
use futures_util::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt as _;

pub const RAW_PUT: &str = "--raw-put";
pub const RAW_GET: &str = "--raw-get";
/// The bucket every remote case uses; its directory is `<root>/kvc-bench`.
pub const BUCKET: &str = "kvc-bench";

const PART: usize = 8 << 20;
const CONCURRENCY: usize = 2;

pub use s3server::S3Server;

/// Start a server on `root` (created) and point the AWS environment of
/// every command the benchmark spawns at it.
pub fn start_server(root: &Path) -> std::io::Result<S3Server> {
    std::fs::create_dir_all(root.join(BUCKET))?;
    let server = S3Server::start(root, 0)?;
    for (k, v) in server.env() {
        std::env::set_var(k, v);
    }
    Ok(server)
}

/// `s3://bucket/prefix` as (bucket, prefix).
fn split(url: &str) -> (String, String) {
    let rest = url.strip_prefix("s3://").expect("an s3:// URL");
    let (b, p) = rest.split_once('/').unwrap_or((rest, ""));
    (b.to_string(), p.trim_end_matches('/').to_string())
}

fn store(bucket: &str) -> object_store::aws::AmazonS3 {
    AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_allow_http(true)
        .build()
        .expect("an S3 store from the environment")
}

/// `--raw-put URL DIR`: every `*.kv` of DIR to URL/<name>.
/// `--raw-get URL DIR`: every object under URL into DIR (created), fsynced.
pub fn raw_main(flag: &str, args: &[std::ffi::OsString]) -> ! {
    let [url, dir] = args else {
        eprintln!("usage: {flag} s3://bucket/prefix DIR");
        std::process::exit(2);
    };
    let (bucket, prefix) = split(&url.to_string_lossy());
    let dir = PathBuf::from(dir);
    let s3 = store(&bucket);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async {
        if flag == RAW_PUT {
            put_dir(&s3, &prefix, &dir).await
        } else {
            get_prefix(&s3, &prefix, &dir).await
        }
    });
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{flag}: {e}");
            std::process::exit(1)
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

async fn put_dir(s3: &dyn ObjectStore, prefix: &str, dir: &Path) -> Res {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".kv"))
        .collect();
    names.sort();
    for name in names {
        let mut f = tokio::fs::File::open(dir.join(&name)).await?;
        let dest = ObjectPath::from(format!("{prefix}/{name}"));
        let upload = s3.put_multipart(&dest).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        loop {
            w.wait_for_capacity(CONCURRENCY).await?;
            let mut buf = BytesMut::with_capacity(PART);
            while buf.len() < PART {
                if f.read_buf(&mut buf).await? == 0 {
                    break;
                }
            }
            let eof = buf.len() < PART;
            if !buf.is_empty() {
                w.put(buf.freeze());
            }
            if eof {
                break;
            }
        }
        w.finish().await?;
    }
    Ok(())
}

async fn get_prefix(s3: &dyn ObjectStore, prefix: &str, dir: &Path) -> Res {
    std::fs::create_dir_all(dir)?;
    let objects: Vec<_> = s3
        .list(Some(&ObjectPath::from(prefix)))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    for o in objects {
        let name = o.location.filename().unwrap_or("object").to_string();
        let mut out = std::fs::File::create(dir.join(name))?;
        let mut stream = s3.get(&o.location).await?.into_stream();
        while let Some(piece) = stream.next().await {
            out.write_all(&piece?)?;
        }
        out.sync_all()?;
    }
    Ok(())
}
