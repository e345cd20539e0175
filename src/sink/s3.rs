//! An S3 sink on aws-sdk-s3: each object is stored with a SHA-256 checksum that S3
//! verifies and `If-None-Match: *`, so an object already under its key (HTTP 412) is
//! reported as [`PutOutcome::AlreadyPresent`] and never replaced. Large objects go up as
//! a multipart upload with per-part checksums, made conditional on completion.
//!
//! The SDK's own retries are off: [`S3Sink::put`] retries throttling (503 SlowDown),
//! 5xx answers, timeouts and connection failures itself, with exponential backoff and
//! full jitter, bounded by [`RetryPolicy`]. Callers with a deadline (the Lambda function)
//! cancel the put when time runs out; see [`crate::pipeline::Archiver::set_deadline`].

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{ObjectSink, PutOutcome, SinkError};
use crate::encode::EncodedFile;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts per request, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry (upper bound of the jittered delay).
    pub base_delay: Duration,
    /// Largest backoff between attempts.
    pub max_delay: Duration,
    /// No retry starts after this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the backoff before retry number `retry` (0 for the first
    /// retry): `base_delay · 2^retry`, capped at `max_delay`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// The jittered backoff ("full jitter"): a point in `[0, backoff_cap]` chosen by
    /// `unit`, a number in `[0, 1)`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        self.backoff_cap(retry).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// How the S3 sink stores objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// Objects of at least this many bytes go up as a multipart upload.
    pub multipart_threshold: usize,
    /// Part size of multipart uploads (S3's minimum is 5 MiB, except the last part).
    pub part_size: usize,
    /// SSE-KMS key ID, ARN or alias; `None` leaves the bucket's default encryption.
    pub kms_key_id: Option<String>,
    /// Retries of each request.
    pub retry: RetryPolicy,
    /// Longest a single request attempt may take.
    pub attempt_timeout: Duration,
}

impl S3Options {
    /// How the sink's client is built: the SDK's retries off (the sink retries with
    /// [`S3Options::retry`]), and the per-attempt timeout.
    pub fn client_options(&self) -> crate::aws::ClientOptions {
        crate::aws::ClientOptions {
            retries: crate::aws::SdkRetries::Off,
            attempt_timeout: Some(self.attempt_timeout),
        }
    }
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
            kms_key_id: None,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

/// What went wrong with one request attempt, reduced to what decides a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// S3 answered with an HTTP status and maybe an error code.
    Http {
        /// HTTP status code.
        status: u16,
        /// S3 error code (`SlowDown`, `PreconditionFailed`, ...), when present.
        code: Option<&'a str>,
    },
    /// The attempt timed out (connecting, reading, or the attempt as a whole).
    Timeout,
    /// The connection failed: refused, reset, or closed before a full response.
    Connection,
    /// The request could not be built or signed, or the client is misconfigured.
    Local,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// The conditional write found an object under the key: done, nothing to retry.
    AlreadyPresent,
    /// S3 asked to slow down (503 SlowDown, 429, throttling codes): back off, retry.
    Throttled,
    /// A 5xx answer, a timeout or a connection failure: back off, retry.
    Transient,
    /// Retrying cannot help (access denied, no such bucket, bad request, ...).
    Permanent,
}

impl RetryClass {
    /// Is another attempt worthwhile?
    pub fn is_retryable(self) -> bool {
        matches!(self, RetryClass::Throttled | RetryClass::Transient)
    }
}

/// Classifies a failed attempt.
pub fn classify(failure: Failure<'_>) -> RetryClass {
    match failure {
        Failure::Http { status: 412, .. }
        | Failure::Http {
            code: Some("PreconditionFailed"),
            ..
        } => RetryClass::AlreadyPresent,
        Failure::Http {
            code:
                Some(
                    "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException",
                ),
            ..
        }
        | Failure::Http { status: 429, .. } => RetryClass::Throttled,
        Failure::Http {
            code:
                Some(
                    "RequestTimeout"
                    | "RequestTimeTooSkewed"
                    | "InternalError"
                    | "ConditionalRequestConflict"
                    | "OperationAborted",
                ),
            ..
        } => RetryClass::Transient,
        Failure::Http { status, .. } if status >= 500 => RetryClass::Transient,
        Failure::Http { .. } => RetryClass::Permanent,
        Failure::Timeout | Failure::Connection => RetryClass::Transient,
        Failure::Local => RetryClass::Permanent,
    }
}

/// A failed attempt: its class and a message naming what happened.
#[derive(Debug)]
struct AttemptError {
    class: RetryClass,
    message: String,
}

fn attempt_error<E>(err: SdkError<E, HttpResponse>) -> AttemptError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (failure, message) = describe_sdk_error(&err);
    AttemptError {
        class: classify(failure),
        message,
    }
}

/// What went wrong with one AWS SDK request attempt (any service), reduced to what
/// decides a retry, and a message naming it. Shared by every caller that retries with
/// its own policy (this sink, restore's batch writes).
pub fn describe_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> (Failure<'_>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code();
            let msg = format!(
                "HTTP {status} {}: {}",
                code.unwrap_or("(no code)"),
                se.err().message().unwrap_or("")
            );
            (Failure::Http { status, code }, msg)
        }
        SdkError::TimeoutError(_) => (Failure::Timeout, "request timed out".to_string()),
        SdkError::DispatchFailure(d) => {
            let failure = if d.is_timeout() {
                Failure::Timeout
            } else if d.is_user() {
                Failure::Local
            } else {
                Failure::Connection
            };
            let detail = d
                .as_connector_error()
                .map_or_else(|| format!("{d:?}"), |c| error_chain(c));
            (failure, format!("request not sent: {detail}"))
        }
        SdkError::ResponseError(r) => (
            Failure::Connection,
            format!("reading the response failed: {r:?}"),
        ),
        SdkError::ConstructionFailure(_) => (
            Failure::Local,
            format!("request could not be built: {}", error_chain(err)),
        ),
        _ => (Failure::Local, error_chain(err)),
    }
}

/// An error and its sources, `: `-joined.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// A number in `[0, 1)` for backoff jitter, from the clock and a counter (no crypto
/// needed, only spread between concurrent writers).
pub fn jitter_unit(salt: u64) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    // splitmix64
    let mut z = nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Writes objects to an S3 bucket under a key prefix.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    options: S3Options,
}

impl S3Sink {
    /// A sink writing to `bucket` under `prefix` (empty or ending in `/`) with a
    /// ready-made client.
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        options: S3Options,
    ) -> Self {
        S3Sink {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            options,
        }
    }

    /// A client from the default AWS configuration chain for these options (see
    /// [`S3Options::client_options`]), built by [`crate::aws::s3`].
    pub async fn client_from_env(options: &S3Options) -> aws_sdk_s3::Client {
        crate::aws::s3(
            &crate::aws::shared_config().await,
            &options.client_options(),
        )
    }

    /// The sink's options.
    pub fn options(&self) -> &S3Options {
        &self.options
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs `attempt` until it succeeds, is classified as not retryable, or the retry
    /// policy is used up. `what` names the request in messages.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, AttemptError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AttemptError>>,
    {
        let policy = self.options.retry;
        let start = Instant::now();
        let mut retry = 0u32;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if !e.class.is_retryable() => return Err(e),
                Err(e) => {
                    let delay = policy.backoff(retry, jitter_unit(u64::from(retry)));
                    if retry + 1 >= policy.max_attempts
                        || start.elapsed() + delay >= policy.max_elapsed
                    {
                        return Err(AttemptError {
                            class: e.class,
                            message: format!(
                                "{} (gave up after {} attempts in {:.1}s)",
                                e.message,
                                retry + 1,
                                start.elapsed().as_secs_f64()
                            ),
                        });
                    }
                    tracing::warn!(
                        request = what,
                        attempt = retry + 1,
                        class = ?e.class,
                        error = %e.message,
                        backoff_ms = delay.as_millis() as u64,
                        "S3 request failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
            }
        }
    }

    /// One `PutObject`: conditional on no object under the key unless `replace`.
    async fn put_single(
        &self,
        key: &str,
        file: &EncodedFile,
        replace: bool,
    ) -> Result<PutOutcome, AttemptError> {
        let checksum = sha256_b64(&file.body);
        let body = bytes::Bytes::from(file.body.clone());
        let result = self
            .with_retries("PutObject", || {
                let mut req = self
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_if_none_match((!replace).then(|| "*".to_string()))
                    .checksum_sha256(&checksum)
                    .content_type(file.content_type)
                    .set_content_encoding(file.content_encoding.map(str::to_string))
                    .body(ByteStream::from(body.clone()));
                if let Some(kms) = &self.options.kms_key_id {
                    req = req
                        .server_side_encryption(ServerSideEncryption::AwsKms)
                        .ssekms_key_id(kms);
                }
                async move {
                    match req.send().await {
                        Ok(_) => Ok(PutOutcome::Written),
                        Err(e) => Err(attempt_error(e)),
                    }
                }
            })
            .await;
        match result {
            Err(e) if e.class == RetryClass::AlreadyPresent => Ok(PutOutcome::AlreadyPresent),
            other => other,
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        file: &EncodedFile,
    ) -> Result<PutOutcome, AttemptError> {
        let upload_id = self
            .with_retries("CreateMultipartUpload", || {
                let mut req = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .content_type(file.content_type)
                    .set_content_encoding(file.content_encoding.map(str::to_string));
                if let Some(kms) = &self.options.kms_key_id {
                    req = req
                        .server_side_encryption(ServerSideEncryption::AwsKms)
                        .ssekms_key_id(kms);
                }
                async move {
                    let out = req.send().await.map_err(attempt_error)?;
                    out.upload_id.ok_or_else(|| AttemptError {
                        class: RetryClass::Permanent,
                        message: "CreateMultipartUpload returned no upload ID".to_string(),
                    })
                }
            })
            .await?;
        let result = self.upload_parts(key, file, &upload_id).await;
        if !matches!(result, Ok(PutOutcome::Written)) {
            // Best effort: an upload left behind holds storage until a lifecycle rule
            // (AbortIncompleteMultipartUpload) removes it.
            if let Err(e) = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::warn!(key, upload_id, error = %error_chain(&e), "aborting a multipart upload failed");
            }
        }
        match result {
            Err(e) if e.class == RetryClass::AlreadyPresent => Ok(PutOutcome::AlreadyPresent),
            other => other,
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        file: &EncodedFile,
        upload_id: &str,
    ) -> Result<PutOutcome, AttemptError> {
        let body = bytes::Bytes::from(file.body.clone());
        let part_size = self.options.part_size.max(1);
        let mut parts = Vec::new();
        for (i, start) in (0..body.len()).step_by(part_size).enumerate() {
            let chunk = body.slice(start..(start + part_size).min(body.len()));
            let number = i32::try_from(i + 1).map_err(|_| AttemptError {
                class: RetryClass::Permanent,
                message: "too many parts".to_string(),
            })?;
            let checksum = sha256_b64(&chunk);
            let e_tag = self
                .with_retries("UploadPart", || {
                    let req = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .checksum_sha256(&checksum)
                        .body(ByteStream::from(chunk.clone()));
                    async move {
                        let out = req.send().await.map_err(attempt_error)?;
                        Ok(out.e_tag)
                    }
                })
                .await?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(e_tag)
                    .checksum_sha256(checksum)
                    .build(),
            );
        }
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.with_retries("CompleteMultipartUpload", || {
            let req = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .if_none_match("*")
                .multipart_upload(upload.clone());
            async move {
                req.send().await.map_err(attempt_error)?;
                Ok(PutOutcome::Written)
            }
        })
        .await
    }
}

#[async_trait]
impl ObjectSink for S3Sink {
    async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError> {
        let key = self.full_key(&file.key);
        let result = if file.body.len() >= self.options.multipart_threshold {
            self.put_multipart(&key, file).await
        } else {
            self.put_single(&key, file, false).await
        };
        result.map_err(|e| SinkError {
            location: self.location(&file.key),
            message: e.message,
        })
    }

    async fn replace(&self, file: &EncodedFile) -> Result<(), SinkError> {
        self.put_single(&self.full_key(&file.key), file, true)
            .await
            .map(|_| ())
            .map_err(|e| SinkError {
                location: self.location(&file.key),
                message: e.message,
            })
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        let full = self.full_key(key);
        self.with_retries("DeleteObject", || {
            let req = self.client.delete_object().bucket(&self.bucket).key(&full);
            async move { req.send().await.map(|_| ()).map_err(attempt_error) }
        })
        .await
        .map_err(|e| SinkError {
            location: self.location(key),
            message: e.message,
        })
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let http = |status, code| classify(Failure::Http { status, code });
        assert_eq!(
            http(412, Some("PreconditionFailed")),
            RetryClass::AlreadyPresent
        );
        assert_eq!(http(412, None), RetryClass::AlreadyPresent);
        assert_eq!(http(503, Some("SlowDown")), RetryClass::Throttled);
        assert_eq!(http(429, None), RetryClass::Throttled);
        assert_eq!(
            http(400, Some("ThrottlingException")),
            RetryClass::Throttled
        );
        assert_eq!(http(500, Some("InternalError")), RetryClass::Transient);
        assert_eq!(http(502, None), RetryClass::Transient);
        assert_eq!(http(503, Some("ServiceUnavailable")), RetryClass::Transient);
        assert_eq!(http(400, Some("RequestTimeout")), RetryClass::Transient);
        assert_eq!(
            http(409, Some("ConditionalRequestConflict")),
            RetryClass::Transient
        );
        assert_eq!(http(403, Some("AccessDenied")), RetryClass::Permanent);
        assert_eq!(http(404, Some("NoSuchBucket")), RetryClass::Permanent);
        assert_eq!(http(400, Some("BadDigest")), RetryClass::Permanent);
        assert_eq!(classify(Failure::Timeout), RetryClass::Transient);
        assert_eq!(classify(Failure::Connection), RetryClass::Transient);
        assert_eq!(classify(Failure::Local), RetryClass::Permanent);
        assert!(RetryClass::Throttled.is_retryable());
        assert!(RetryClass::Transient.is_retryable());
        assert!(!RetryClass::Permanent.is_retryable());
        assert!(!RetryClass::AlreadyPresent.is_retryable());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        };
        assert_eq!(p.backoff_cap(0), Duration::from_millis(100));
        assert_eq!(p.backoff_cap(1), Duration::from_millis(200));
        assert_eq!(p.backoff_cap(3), Duration::from_millis(800));
        assert_eq!(p.backoff_cap(5), Duration::from_secs(2));
        assert_eq!(p.backoff_cap(1000), Duration::from_secs(2));
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(400));
        assert!(p.backoff(3, 0.999) < Duration::from_millis(800));
        for salt in 0..100 {
            let u = jitter_unit(salt);
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}

/// Against a real s3s-fs whose URL is in `DDB_ARCHIVER_TEST_S3`, with a bucket
/// `sink-test` and credentials in the usual environment variables; run by
/// scripts/test.d/30-s3-lambda.sh.
#[cfg(test)]
mod server_tests {
    use super::*;
    use aws_sdk_s3::types::ChecksumMode;

    const BUCKET: &str = "sink-test";

    async fn sink(options: S3Options) -> S3Sink {
        let endpoint = std::env::var("DDB_ARCHIVER_TEST_S3").expect("DDB_ARCHIVER_TEST_S3");
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let client = crate::aws::s3_at(&shared, &options.client_options(), Some(endpoint));
        S3Sink::new(client, BUCKET, "sink/", options)
    }

    fn body(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn file(key: &str, body: Vec<u8>) -> EncodedFile {
        EncodedFile {
            key: key.to_string(),
            body,
            content_type: "application/x-ndjson",
            content_encoding: Some("gzip"),
            records: 1,
        }
    }

    async fn get(sink: &S3Sink, key: &str) -> (Vec<u8>, Option<String>, Option<String>) {
        let out = sink
            .client
            .get_object()
            .bucket(BUCKET)
            .key(format!("sink/{key}"))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let ct = out.content_type.clone();
        let ce = out.content_encoding.clone();
        (out.body.collect().await.unwrap().to_vec(), ct, ce)
    }

    #[tokio::test]
    #[ignore = "needs s3s-fs: run by scripts/test.d/30-s3-lambda.sh"]
    async fn single_put_is_conditional_and_reads_back() {
        let sink = sink(S3Options::default()).await;
        let key = "t/year=2026/month=01/day=01/1-2-0123456789abcdef.json.gz";
        let data = body(100_000, 7);
        assert_eq!(
            sink.put(&file(key, data.clone())).await.unwrap(),
            PutOutcome::Written
        );
        let (got, ct, ce) = get(&sink, key).await;
        assert_eq!(got, data);
        assert_eq!(ct.as_deref(), Some("application/x-ndjson"));
        assert_eq!(ce.as_deref(), Some("gzip"));
        // Another body under the same key is refused (412) and the first one stays.
        assert_eq!(
            sink.put(&file(key, body(10, 8))).await.unwrap(),
            PutOutcome::AlreadyPresent
        );
        assert_eq!(get(&sink, key).await.0, data);
    }

    #[tokio::test]
    #[ignore = "needs s3s-fs: run by scripts/test.d/30-s3-lambda.sh"]
    async fn multipart_upload_is_conditional_and_reads_back() {
        let sink = sink(S3Options {
            multipart_threshold: 6 * 1024 * 1024,
            part_size: 5 * 1024 * 1024,
            ..S3Options::default()
        })
        .await;
        let key = "t/year=2026/month=01/day=02/3-4-0123456789abcdef.json.gz";
        let data = body(12 * 1024 * 1024 + 17, 9);
        assert_eq!(
            sink.put(&file(key, data.clone())).await.unwrap(),
            PutOutcome::Written
        );
        let (got, ct, _) = get(&sink, key).await;
        assert!(got == data, "multipart object differs from its input");
        assert_eq!(ct.as_deref(), Some("application/x-ndjson"));
        assert_eq!(
            sink.put(&file(key, body(7 * 1024 * 1024, 10)))
                .await
                .unwrap(),
            PutOutcome::AlreadyPresent
        );
        assert!(get(&sink, key).await.0 == data);
    }

    #[tokio::test]
    #[ignore = "needs s3s-fs: run by scripts/test.d/30-s3-lambda.sh"]
    async fn permanent_errors_are_not_retried_and_name_the_object() {
        let endpoint = std::env::var("DDB_ARCHIVER_TEST_S3").expect("DDB_ARCHIVER_TEST_S3");
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "sink-test",
                "not-the-secret",
                None,
                None,
                "test",
            ))
            .load()
            .await;
        let options = S3Options::default();
        let client = crate::aws::s3_at(&shared, &options.client_options(), Some(endpoint));
        let sink = S3Sink::new(client, BUCKET, "sink/", options);
        let started = Instant::now();
        let err = sink
            .put(&file("t/x.json.gz", body(10, 1)))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{err}");
        assert_eq!(err.location, "s3://sink-test/sink/t/x.json.gz");
        assert!(err.message.contains("HTTP 403"), "{err}");
    }
}
