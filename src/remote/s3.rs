//! The S3 store: configuration from the environment, the rules kvc adds to
//! it, and the two requests object_store does not offer (listing multipart
//! uploads; completing one only if the object does not exist), made with
//! object_store's own signer and HTTP client: no second S3 library.
//!
//! Rules on top of `AmazonS3Builder::from_env`:
//!
//! - **Credentials** must come from the environment: keys
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
//!   web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), ECS or
//!   EKS container credentials, or `AWS_SKIP_SIGNATURE=true` for a public
//!   bucket. Without any, object_store would ask the EC2 instance metadata
//!   service at 169.254.169.254 and, off EC2, fail only after its retries;
//!   kvc says so in one line instead, and uses the instance role only when
//!   asked (`AWS_EC2_METADATA_DISABLED=false`, or `AWS_METADATA_ENDPOINT`).
//!   Profiles in `~/.aws/` are not read (object_store does not).
//! - **Plain HTTP** only to an endpoint on this host (127.0.0.0/8, ::1,
//!   `localhost`), or when allowed (`--allow-http`, `AWS_ALLOW_HTTP=true`):
//!   requests carry prompts.
//! - **Timeouts and retries** suited to large transfers: a request may take
//!   an hour as long as bytes keep coming (60 s without any fails it), and
//!   a failed one is retried 4 times within 2 minutes, so a wrong endpoint
//!   fails in seconds, not in object_store's 3 minutes.

use super::{ConnectOptions, RemoteUrl};
use crate::error::{Error, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{HttpClient, HttpConnector as _, HttpRequestBody, ReqwestConnector};
use object_store::multipart::PartId;
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, SignedUrlOptions, Signer as _};
use object_store::{ClientConfigKey, ClientOptions, RetryConfig};
use std::time::Duration;

const CONNECT_TIMEOUT: &str = "10s";
const READ_TIMEOUT: &str = "60s";
const REQUEST_TIMEOUT: &str = "1h";
const MAX_RETRIES: usize = 4;
const RETRY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long kvc's own presigned requests stay valid.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// Where the credentials will come from, or `None`.
pub(crate) fn credential_source(env: &dyn Fn(&str) -> Option<String>) -> Option<&'static str> {
    let set = |k: &str| env(k).is_some();
    let yes = |k: &str| env(k).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if set("AWS_ACCESS_KEY_ID") || set("AWS_SECRET_ACCESS_KEY") {
        Some("keys")
    } else if set("AWS_WEB_IDENTITY_TOKEN_FILE") && set("AWS_ROLE_ARN") {
        Some("web identity")
    } else if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || (set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            && set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
    {
        Some("container")
    } else if yes("AWS_SKIP_SIGNATURE") {
        Some("anonymous")
    } else if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("false"))
        || set("AWS_METADATA_ENDPOINT")
    {
        Some("instance metadata")
    } else {
        None
    }
}

/// The endpoint the environment names, if any (`AWS_ENDPOINT_URL_S3` wins,
/// as in the AWS CLI).
pub(crate) fn endpoint(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| env(k))
}

/// Whether an endpoint URL's host is this machine.
pub(crate) fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether plain HTTP is to be allowed: `Ok(false)` for HTTPS (or no
/// endpoint: AWS itself), `Ok(true)` for an HTTP endpoint that may be used,
/// `Err` (the message) for one that may not.
pub(crate) fn http_allowed(
    endpoint: Option<&str>,
    allow_flag: bool,
    env_allows: bool,
) -> std::result::Result<bool, String> {
    let Some(ep) = endpoint else {
        return Ok(false);
    };
    if !ep
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return Ok(false);
    }
    if is_loopback(ep) || allow_flag || env_allows {
        return Ok(true);
    }
    Err(format!(
        "endpoint {ep} is plain HTTP to another host: credentials and prompts would cross the network unencrypted; use https://, or pass --allow-http"
    ))
}

/// The store, and what kvc sends past object_store.
pub(crate) fn build(
    url: &RemoteUrl,
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AmazonS3, Extra)> {
    let shown = url.shown();
    let endpoint = endpoint(env);
    let env_allows = env("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let allow_http = http_allowed(endpoint.as_deref(), opts.allow_http, env_allows)
        .map_err(|m| Error::invalid(&shown, m))?;
    if credential_source(env).is_none() {
        return Err(Error::invalid(
            &shown,
            "no AWS credentials in the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or container credentials; on EC2, \
             AWS_EC2_METADATA_DISABLED=false uses the instance role); profiles in ~/.aws are not read",
        ));
    }
    let mut b = AmazonS3Builder::from_env().with_bucket_name(url.bucket());
    if let Some(ep) = &endpoint {
        b = b.with_endpoint(ep);
    }
    if allow_http {
        b = b.with_allow_http(true);
    }
    let defaults = [
        (
            "AWS_CONNECT_TIMEOUT",
            ClientConfigKey::ConnectTimeout,
            CONNECT_TIMEOUT,
        ),
        (
            "AWS_READ_TIMEOUT",
            ClientConfigKey::ReadTimeout,
            READ_TIMEOUT,
        ),
        ("AWS_TIMEOUT", ClientConfigKey::Timeout, REQUEST_TIMEOUT),
    ];
    let mut client = ClientOptions::new().with_allow_http(allow_http);
    for (var, key, value) in defaults {
        let value = env(var).unwrap_or_else(|| value.to_string());
        b = b.with_config(AmazonS3ConfigKey::Client(key), value.clone());
        client = client.with_config(key, value);
    }
    b = b.with_retry(RetryConfig {
        max_retries: MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
        ..Default::default()
    });
    let s3 = b
        .build()
        .map_err(|e| Error::invalid(&shown, super::one_line(&e.to_string())))?;
    let http = ReqwestConnector::default()
        .connect(&client)
        .map_err(|e| Error::invalid(&shown, super::one_line(&e.to_string())))?;
    Ok((
        s3.clone(),
        Extra {
            s3,
            http,
            retries: MAX_RETRIES,
        },
    ))
}

/// An incomplete multipart upload on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    /// The object key it will complete.
    pub key: String,
    pub upload_id: String,
    /// Unix seconds, when the server says.
    pub initiated: Option<u64>,
}

/// How a conditional completion ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Completed {
    Created,
    /// The object existed: nothing was written, the upload is still open.
    Exists,
}

/// The S3 requests object_store lacks, presigned by object_store (SigV4
/// query authentication, so they carry its credentials, region and
/// endpoint) and sent with object_store's HTTP client.
pub(crate) struct Extra {
    s3: AmazonS3,
    http: HttpClient,
    retries: usize,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<XmlUpload>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlUpload {
    key: String,
    upload_id: String,
    #[serde(default)]
    initiated: String,
}

/// At most this many pages of uploads (1000 each on S3) are read.
const MAX_UPLOAD_PAGES: usize = 100;
/// A response body kvc reads whole: a listing page or a completion.
const MAX_BODY: usize = 16 << 20;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `2026-11-30T15:28:51.000Z` as Unix seconds.
fn parse_rfc3339(s: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z').split('.').next()?)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

impl Extra {
    /// Send `req` (built anew per attempt), retrying connection errors,
    /// 5xx and 409 (S3's "conditional request conflict": try again).
    async fn send(
        &self,
        what: &str,
        mut req: impl FnMut() -> std::result::Result<object_store::client::HttpRequest, String>,
    ) -> std::result::Result<(http::StatusCode, bytes::Bytes), String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = |why: String| -> std::result::Result<(), String> {
                if attempt > self.retries {
                    Err(format!("{what}: {why} (after {attempt} attempts)"))
                } else {
                    Ok(())
                }
            };
            match self.http.execute(req()?).await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp
                        .into_body()
                        .bytes()
                        .await
                        .map_err(|e| format!("{what}: reading the response: {e}"))?;
                    if body.len() > MAX_BODY {
                        return Err(format!("{what}: a response of {} bytes", body.len()));
                    }
                    if status.is_server_error() || status == http::StatusCode::CONFLICT {
                        retry(format!("HTTP {status}"))?;
                    } else {
                        return Ok((status, body));
                    }
                }
                Err(e) => retry(e.to_string())?,
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
        }
    }

    /// ListMultipartUploads under `prefix`, every page.
    pub(crate) async fn list_uploads(
        &self,
        prefix: &str,
    ) -> std::result::Result<Vec<PendingUpload>, String> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _ in 0..MAX_UPLOAD_PAGES {
            let mut q: Vec<(&str, &str)> = vec![("uploads", ""), ("prefix", prefix)];
            if let Some((k, u)) = &markers {
                q.push(("key-marker", k));
                q.push(("upload-id-marker", u));
            }
            let url = self
                .s3
                .signed_url_opts(
                    Method::GET,
                    &ObjectPath::default(),
                    SIGNED_FOR,
                    &SignedUrlOptions::default().with_query(q),
                )
                .await
                .map_err(|e| e.to_string())?;
            let (status, body) = self
                .send("ListMultipartUploads", || {
                    http::Request::get(url.as_str())
                        .body(HttpRequestBody::empty())
                        .map_err(|e| e.to_string())
                })
                .await?;
            let text = String::from_utf8_lossy(&body);
            if !status.is_success() {
                return Err(format!(
                    "ListMultipartUploads: HTTP {status}: {}",
                    super::one_line(&text)
                ));
            }
            let r: ListMultipartUploadsResult = quick_xml::de::from_str(&text)
                .map_err(|e| format!("ListMultipartUploads: unreadable answer: {e}"))?;
            out.extend(r.uploads.into_iter().map(|u| PendingUpload {
                initiated: parse_rfc3339(&u.initiated),
                key: u.key,
                upload_id: u.upload_id,
            }));
            match (r.is_truncated, r.next_key_marker, r.next_upload_id_marker) {
                (true, Some(k), Some(u)) => markers = Some((k, u)),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// CompleteMultipartUpload with `If-None-Match: *`: the object is
    /// created only if no object has its name (S3 since 2024, MinIO, Ceph
    /// RGW, s3s). object_store always completes unconditionally.
    pub(crate) async fn complete_create(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        parts: &[PartId],
    ) -> std::result::Result<Completed, String> {
        let mut body = String::from(
            r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
        );
        for (i, p) in parts.iter().enumerate() {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                xml_escape(&p.content_id)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let url = self
            .s3
            .signed_url_opts(
                Method::POST,
                path,
                SIGNED_FOR,
                &SignedUrlOptions::default()
                    .with_query([("uploadId", upload_id)])
                    .with_signed_header(
                        http::header::IF_NONE_MATCH,
                        http::HeaderValue::from_static("*"),
                    ),
            )
            .await
            .map_err(|e| e.to_string())?;
        let (status, answer) = self
            .send("CompleteMultipartUpload", || {
                http::Request::post(url.as_str())
                    .header(http::header::IF_NONE_MATCH, "*")
                    .header(http::header::CONTENT_TYPE, "application/xml")
                    .header(http::header::CONTENT_LENGTH, body.len())
                    .body(HttpRequestBody::from(body.clone()))
                    .map_err(|e| e.to_string())
            })
            .await?;
        let text = String::from_utf8_lossy(&answer);
        if status == http::StatusCode::PRECONDITION_FAILED {
            return Ok(Completed::Exists);
        }
        // S3 may answer 200 and put an error in the body.
        if !status.is_success() || text.contains("<Error>") {
            if text.contains("PreconditionFailed") {
                return Ok(Completed::Exists);
            }
            return Err(format!(
                "CompleteMultipartUpload: HTTP {status}: {}",
                super::one_line(&text)
            ));
        }
        Ok(Completed::Created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn credentials_come_from_the_environment_or_not_at_all() {
        assert_eq!(credential_source(&env_of(&[])), None);
        assert_eq!(
            credential_source(&env_of(&[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "b")
            ])),
            Some("keys")
        );
        assert_eq!(
            credential_source(&env_of(&[("AWS_ROLE_ARN", "r")])),
            None,
            "a role without a token file is nothing"
        );
        assert_eq!(
            credential_source(&env_of(&[("AWS_EC2_METADATA_DISABLED", "true")])),
            None
        );
        assert_eq!(
            credential_source(&env_of(&[("AWS_EC2_METADATA_DISABLED", "false")])),
            Some("instance metadata")
        );
        assert_eq!(
            credential_source(&env_of(&[("AWS_SKIP_SIGNATURE", "true")])),
            Some("anonymous")
        );
    }

    #[test]
    fn plain_http_only_to_this_host_unless_allowed() {
        for ep in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
            "http://127.9.9.9",
            "HTTP://LOCALHOST",
        ] {
            assert_eq!(http_allowed(Some(ep), false, false), Ok(true), "{ep}");
        }
        assert_eq!(
            http_allowed(Some("https://s3.example"), false, false),
            Ok(false)
        );
        assert_eq!(http_allowed(None, false, false), Ok(false));
        for ep in [
            "http://10.0.0.5:9000",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://user@10.1.1.1",
        ] {
            let e = http_allowed(Some(ep), false, false).unwrap_err();
            assert!(e.contains("--allow-http"), "{e}");
            assert_eq!(http_allowed(Some(ep), true, false), Ok(true));
            assert_eq!(http_allowed(Some(ep), false, true), Ok(true));
        }
    }

    #[test]
    fn upload_times_parse() {
        assert_eq!(
            parse_rfc3339("2026-11-30T15:28:51.000Z"),
            Some(1_796_052_531)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
