//! An S3 sink on aws-sdk-s3: each object is stored with a SHA-256 checksum that S3
//! verifies (the payload itself is not signed again: `UNSIGNED-PAYLOAD`) and
//! `If-None-Match: *`, so an object already under its key (HTTP 412) is
//! reported as [`PutOutcome::AlreadyPresent`] and never replaced. Large objects go up as
//! a multipart upload (`sink/multipart.rs`).
//!
//! The SDK's own retries are off: [`S3Sink::put`] retries throttling (503 SlowDown),
//! 5xx answers, timeouts and connection failures itself, with exponential backoff and
//! full jitter, bounded by a [`RetryPolicy`] and classified by
//! [`crate::aws::retry::classify`]. Callers with a deadline (the Lambda function) cancel
//! the put when time runs out; see [`crate::pipeline::Archiver::set_deadline`].

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{Expect, ObjectSink, Pieces, Published, PutOutcome, SinkError};
use crate::aws::retry::{classify, describe_sdk_error, jitter_unit, RetryClass, RetryPolicy};
use crate::encode::EncodedFile;

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

/// The default part size of multipart uploads.
pub const DEFAULT_PART_SIZE: usize = 16 * 1024 * 1024;

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            multipart_threshold: 64 * 1024 * 1024,
            part_size: DEFAULT_PART_SIZE,
            kms_key_id: None,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

/// A failed attempt: its class and a message naming what happened.
#[derive(Debug)]
pub(super) struct AttemptError {
    /// Whether another attempt is worthwhile.
    pub(super) class: RetryClass,
    /// The conditional write found an object under the key (HTTP 412): done, and
    /// [`RetryClass::Permanent`].
    pub(super) already_present: bool,
    /// What happened.
    pub(super) message: String,
}

impl AttemptError {
    /// A failure that no retry can help, found before or after a request.
    pub(super) fn permanent(message: impl Into<String>) -> Self {
        AttemptError {
            class: RetryClass::Permanent,
            already_present: false,
            message: message.into(),
        }
    }
}

/// Classifies a failed S3 request.
pub(super) fn attempt_error<E>(err: SdkError<E, HttpResponse>) -> AttemptError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (failure, message) = describe_sdk_error(&err);
    AttemptError {
        class: classify(failure),
        already_present: failure.is_precondition_failed(),
        message,
    }
}

/// A conditional write that found an object under its key is done: the object holds
/// the same records.
pub(super) fn already_present_is_done(
    result: Result<PutOutcome, AttemptError>,
) -> Result<PutOutcome, AttemptError> {
    match result {
        Err(e) if e.already_present => Ok(PutOutcome::AlreadyPresent),
        other => other,
    }
}

/// The base64 SHA-256 of `bytes`, as S3 takes it in `x-amz-checksum-sha256`.
pub(super) fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Writes objects to an S3 bucket under a key prefix.
#[derive(Debug, Clone)]
pub struct S3Sink {
    /// The client, with the SDK's retries off.
    pub(super) client: aws_sdk_s3::Client,
    /// The bucket.
    pub(super) bucket: String,
    /// Prepended to every key: empty or ending in `/`.
    prefix: String,
    /// How objects are stored.
    pub(super) options: S3Options,
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
    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
    ) -> Result<T, AttemptError>
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
                            message: format!(
                                "{} (gave up after {} attempts in {:.1}s)",
                                e.message,
                                retry + 1,
                                start.elapsed().as_secs_f64()
                            ),
                            ..e
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

    /// One `PutObject` under `condition`: `Some(Expect::Absent)` stores only where
    /// nothing is (`If-None-Match: *`), `Some(Expect::Tag(etag))` only over that
    /// version (`If-Match`), `None` unconditionally.
    pub(super) async fn put_single(
        &self,
        key: &str,
        file: &EncodedFile,
        condition: Option<&Expect>,
    ) -> Result<PutOutcome, AttemptError> {
        let checksum = sha256_b64(&file.body);
        let body = file.body.clone();
        self.with_retries("PutObject", || {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .checksum_sha256(&checksum)
                .content_type(file.content_type)
                .set_content_encoding(file.content_encoding.map(str::to_string))
                .body(ByteStream::from(body.clone()));
            req = match condition {
                Some(Expect::Absent) => req.if_none_match("*"),
                Some(Expect::Tag(etag)) => req.if_match(etag),
                None => req,
            };
            if let Some(kms) = &self.options.kms_key_id {
                req = req
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(kms);
            }
            async move {
                // The body's SHA-256 checksum, which S3 verifies, already vouches for it:
                // signing the payload too would hash every byte a second time.
                match req.customize().disable_payload_signing().send().await {
                    Ok(_) => Ok(PutOutcome::Written),
                    Err(e) => Err(attempt_error(e)),
                }
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
            already_present_is_done(self.put_single(&key, file, Some(&Expect::Absent)).await)
        };
        result.map_err(|e| SinkError {
            location: self.location(&file.key),
            message: e.message,
        })
    }

    async fn replace(&self, file: &EncodedFile) -> Result<(), SinkError> {
        self.put_single(&self.full_key(&file.key), file, None)
            .await
            .map(|_| ())
            .map_err(|e| SinkError {
                location: self.location(&file.key),
                message: e.message,
            })
    }

    async fn replace_streamed(
        &self,
        key: &str,
        content_type: &'static str,
        pieces: &mut Pieces,
    ) -> Result<(), SinkError> {
        self.put_streamed(&self.full_key(key), content_type, pieces)
            .await
            .map_err(|e| SinkError {
                location: self.location(key),
                message: e.message,
            })
    }

    async fn publish(&self, file: &EncodedFile, expect: &Expect) -> Result<Published, SinkError> {
        let result = self
            .put_single(&self.full_key(&file.key), file, Some(expect))
            .await;
        match result {
            Ok(_) => Ok(Published::Stored),
            // 412: the ETag differs or an object appeared; 409: a concurrent write of
            // the same key; 404 (If-Match on S3): the object was deleted.
            Err(e)
                if e.already_present
                    || ["ConditionalRequestConflict", "NoSuchKey", "NotFound"]
                        .iter()
                        .any(|code| e.message.contains(code)) =>
            {
                Ok(Published::Conflict(format!(
                    "{} changed since it was read: {}",
                    self.location(&file.key),
                    e.message
                )))
            }
            Err(e) => Err(SinkError {
                location: self.location(&file.key),
                message: e.message,
            }),
        }
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
            body: body.into(),
            content_type: "application/x-ndjson",
            content_encoding: Some("gzip"),
            records: 1,
        }
    }

    async fn get(sink: &S3Sink, key: &str) -> (Vec<u8>, Option<String>, Option<String>) {
        get_checked(sink, key, true).await
    }

    async fn get_checked(
        sink: &S3Sink,
        key: &str,
        checked: bool,
    ) -> (Vec<u8>, Option<String>, Option<String>) {
        use aws_sdk_s3::config::ResponseChecksumValidation;
        let validation = if checked {
            ResponseChecksumValidation::WhenSupported
        } else {
            ResponseChecksumValidation::WhenRequired
        };
        let out = sink
            .client
            .get_object()
            .bucket(BUCKET)
            .key(format!("sink/{key}"))
            .set_checksum_mode(checked.then_some(ChecksumMode::Enabled))
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().response_checksum_validation(validation),
            )
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
        // More parts than are sent at once: they must still be joined in order.
        let data = body(27 * 1024 * 1024 + 17, 9);
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

    /// Streams `data` in pieces of `piece` bytes (then the end, unless `stop_early`)
    /// to a streamed put of `key`.
    async fn stream(
        sink: &S3Sink,
        key: &str,
        data: &[u8],
        piece: usize,
        stop_early: bool,
    ) -> Result<(), SinkError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let pieces: Vec<bytes::Bytes> = data
            .chunks(piece)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let sender = tokio::spawn(async move {
            for p in pieces {
                if tx.send(Some(p)).await.is_err() {
                    return;
                }
            }
            if !stop_early {
                let _ = tx.send(None).await;
            }
        });
        let result = sink
            .replace_streamed(key, "application/x-test", &mut rx)
            .await;
        drop(rx);
        sender.await.unwrap();
        result
    }

    #[tokio::test]
    #[ignore = "needs s3s-fs: run by scripts/test.d/30-s3-lambda.sh"]
    async fn streamed_puts_replace_whole_in_parts_or_store_nothing() {
        let sink = sink(S3Options {
            part_size: 5 * 1024 * 1024,
            ..S3Options::default()
        })
        .await;
        let key = "c/year=2026/month=01/day=02/part-00000.parquet";
        // Within one part: a single put, replacing what was there.
        sink.put(&file(key, b"old".to_vec())).await.unwrap();
        let small = body(100_000, 3);
        stream(&sink, key, &small, 7_000, false).await.unwrap();
        assert!(get(&sink, key).await.0 == small);
        // Over several parts, each joined from pieces of another size, more parts than
        // are sent at once.
        let big = body(27 * 1024 * 1024 + 5, 4);
        stream(&sink, key, &big, 3 * 1024 * 1024 + 1, false)
            .await
            .unwrap();
        // Read back unchecked: s3s-fs 0.14 keeps the replaced object's whole-object
        // checksum when a multipart upload completes over it (S3 replaces it); the
        // bytes are compared here instead.
        let (got, ct, _) = get_checked(&sink, key, false).await;
        assert!(got == big, "streamed object differs from its input");
        assert_eq!(ct.as_deref(), Some("application/x-test"));
        // A writer that stops before the end stores nothing, within the first part or
        // after parts went up.
        for len in [1_000, 12 * 1024 * 1024] {
            let err = stream(&sink, key, &body(len, 5), 1024 * 1024, true)
                .await
                .unwrap_err();
            assert!(err.message.contains("stopped before its end"), "{err}");
            assert!(get_checked(&sink, key, false).await.0 == big);
        }
        // Onto no object, a streamed multipart object reads back with its checksum.
        let fresh = "c/year=2026/month=01/day=03/part-00000.parquet";
        stream(&sink, fresh, &big, 5 * 1024 * 1024, false)
            .await
            .unwrap();
        assert!(get(&sink, fresh).await.0 == big);
    }

    #[tokio::test]
    #[ignore = "needs s3s-fs: run by scripts/test.d/30-s3-lambda.sh"]
    async fn publishing_is_a_compare_and_swap_on_the_etag() {
        let sink = sink(S3Options::default()).await;
        let key = "m/year=2026/month=01/day=01/manifest.json";
        let etag = || async {
            sink.client
                .head_object()
                .bucket(BUCKET)
                .key(format!("sink/{key}"))
                .send()
                .await
                .unwrap()
                .e_tag()
                .unwrap()
                .to_string()
        };
        let first = file(key, b"{\"v\":1}".to_vec());
        assert_eq!(
            sink.publish(&first, &Expect::Absent).await.unwrap(),
            Published::Stored
        );
        // A second writer that saw no manifest loses.
        let second = file(key, b"{\"v\":2}".to_vec());
        assert!(matches!(
            sink.publish(&second, &Expect::Absent).await.unwrap(),
            Published::Conflict(_)
        ));
        let seen = etag().await;
        // A writer that read the first manifest wins once; the next one with the same
        // (now stale) ETag loses.
        assert_eq!(
            sink.publish(&second, &Expect::Tag(seen.clone()))
                .await
                .unwrap(),
            Published::Stored
        );
        let third = file(key, b"{\"v\":3}".to_vec());
        assert!(matches!(
            sink.publish(&third, &Expect::Tag(seen)).await.unwrap(),
            Published::Conflict(_)
        ));
        assert_eq!(get(&sink, key).await.0, b"{\"v\":2}");
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
