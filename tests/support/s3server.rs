//! A real S3 server for tests, the benchmark and the README walkthrough:
//! `s3s-fs` (S3 over a directory, SigV4 checked) in this process, on its
//! own thread and runtime, on 127.0.0.1 at a port the OS picks. Nothing to
//! install, no child process to leak. Dev-only: included by
//! `tests/remote.rs`, `examples/s3-server.rs` and `bench/compare.rs`,
//! never by the kvc binary.
//!
//! s3s-fs 0.14 implements multipart uploads, `If-None-Match` on PUT and on
//! CompleteMultipartUpload, and AbortMultipartUpload, but answers 501 to
//! ListMultipartUploads: [`Tracked`] adds it (and counts parts, and can
//! hold parts back, for the tests that interrupt a push).
#![allow(dead_code)]

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub const KEY_ID: &str = "kvc-test-key";
pub const SECRET: &str = "kvc-test-secret";
pub const REGION: &str = "us-east-1";

/// What the tests ask of the server: hold requests back, to interrupt a
/// push or to let another land first.
#[derive(Default)]
pub struct Faults {
    /// UploadPart requests served.
    pub parts_received: AtomicUsize,
    /// While set, hold the first PutObject of a `.kv` object, and the
    /// parts numbered `hold_parts_from` (1-based) and above of the first
    /// multipart upload created.
    pub holding: AtomicBool,
    pub hold_parts_from: AtomicU32,
    /// Requests being held now.
    pub held: AtomicUsize,
    first_put: AtomicBool,
    first_upload: Mutex<Option<String>>,
}

impl Faults {
    /// Wait while `holding` is set.
    async fn hold(&self) {
        self.held.fetch_add(1, Ordering::SeqCst);
        while self.holding.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}

/// s3s-fs plus a table of open multipart uploads (create → complete or
/// abort) to answer ListMultipartUploads, with real `Initiated` times.
pub struct Tracked {
    inner: s3s_fs::FileSystem,
    /// (bucket, key, upload id, initiated)
    uploads: Mutex<Vec<(String, String, String, SystemTime)>>,
    faults: Arc<Faults>,
}

impl Tracked {
    fn forget(&self, upload_id: &str) {
        self.uploads.lock().unwrap().retain(|u| u.2 != upload_id);
    }
}

/// Forwards the operations s3s-fs implements, in async_trait's desugared
/// form (a macro inside an `#[async_trait]` impl is not rewritten by it).
macro_rules! delegate {
    ($($m:ident: $i:ident => $o:ident,)*) => {$(
        fn $m<'life0, 'async_trait>(
            &'life0 self,
            req: S3Request<$i>,
        ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = S3Result<S3Response<$o>>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            self.inner.$m(req)
        }
    )*};
}

#[async_trait::async_trait]
impl S3 for Tracked {
    delegate! {
        create_bucket: CreateBucketInput => CreateBucketOutput,
        copy_object: CopyObjectInput => CopyObjectOutput,
        delete_bucket: DeleteBucketInput => DeleteBucketOutput,
        delete_object: DeleteObjectInput => DeleteObjectOutput,
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
        get_object: GetObjectInput => GetObjectOutput,
        head_bucket: HeadBucketInput => HeadBucketOutput,
        head_object: HeadObjectInput => HeadObjectOutput,
        list_buckets: ListBucketsInput => ListBucketsOutput,
        list_objects: ListObjectsInput => ListObjectsOutput,
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
        list_parts: ListPartsInput => ListPartsOutput,
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let f = &self.faults;
        if f.holding.load(Ordering::SeqCst)
            && req.input.key.ends_with(".kv")
            && !f.first_put.swap(true, Ordering::SeqCst)
        {
            f.hold().await;
        }
        self.inner.put_object(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let f = &self.faults;
        let first = f.first_upload.lock().unwrap().clone();
        let from = f.hold_parts_from.load(Ordering::SeqCst);
        if f.holding.load(Ordering::SeqCst)
            && first.as_deref() == Some(req.input.upload_id.as_str())
            && from != 0
            && req.input.part_number >= from as i32
        {
            f.hold().await;
        }
        let r = self.inner.upload_part(req).await;
        if r.is_ok() {
            self.faults.parts_received.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let resp = self.inner.create_multipart_upload(req).await?;
        if let Some(id) = &resp.output.upload_id {
            self.faults
                .first_upload
                .lock()
                .unwrap()
                .get_or_insert_with(|| id.clone());
            let now = SystemTime::now();
            self.uploads
                .lock()
                .unwrap()
                .push((bucket, key, id.clone(), now));
        }
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        let resp = self.inner.complete_multipart_upload(req).await?;
        self.forget(&id);
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = req.input.upload_id.clone();
        let resp = self.inner.abort_multipart_upload(req).await?;
        self.forget(&id);
        Ok(resp)
    }

    /// Every matching upload in one page.
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let mut uploads: Vec<MultipartUpload> = self
            .uploads
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.0 == input.bucket && u.1.starts_with(&prefix))
            .map(|u| MultipartUpload {
                key: Some(u.1.clone()),
                upload_id: Some(u.2.clone()),
                initiated: Some(Timestamp::from(u.3)),
                ..Default::default()
            })
            .collect();
        uploads.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}

/// A running server. Dropping it stops it.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    /// Where the objects are: `<root>/<bucket>/<key>`.
    pub root: PathBuf,
    pub faults: Arc<Faults>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3Server {
    /// Serve `root` (which must exist) on 127.0.0.1, port `port` (0: any).
    pub fn start(root: &Path, port: u16) -> std::io::Result<S3Server> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder as ConnBuilder;

        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let faults = Arc::new(Faults::default());
        let tracked = Tracked {
            inner: fs,
            uploads: Mutex::new(Vec::new()),
            faults: faults.clone(),
        };
        let mut b = s3s::service::S3ServiceBuilder::new(tracked);
        b.set_auth(s3s::auth::SimpleAuth::from_single(KEY_ID, SECRET));
        let service = b.build();
        // Bound here, before the thread starts: no race for the port.
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let http = ConnBuilder::new(TokioExecutor::new());
                loop {
                    tokio::select! {
                        r = listener.accept() => {
                            let Ok((sock, _)) = r else { continue };
                            let conn = http
                                .serve_connection(TokioIo::new(sock), service.clone())
                                .into_owned();
                            tokio::spawn(async move { let _ = conn.await; });
                        }
                        _ = &mut stop_rx => break,
                    }
                }
            });
        });
        Ok(S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            root: root.to_path_buf(),
            faults,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// A bucket is a directory of the root.
    pub fn create_bucket(&self, name: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(name))
    }

    /// The environment a kvc process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", REGION.into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
