//! Multipart uploads for the S3 sink: objects of at least
//! [`S3Options::multipart_threshold`](super::s3::S3Options::multipart_threshold) bytes go
//! up in parts of [`S3Options::part_size`](super::s3::S3Options::part_size), each with its
//! SHA-256 checksum, [`PARTS_AT_ONCE`] at a time, and the upload is completed with `If-None-Match: *`, so an object
//! already under the key (HTTP 412) leaves it untouched. An upload that does not complete
//! is aborted (best effort). Every request is retried like the sink's single puts.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};

use futures_util::StreamExt;

use super::s3::{already_present_is_done, attempt_error, sha256_b64, AttemptError, S3Sink};
use super::{Pieces, PutOutcome};
use crate::aws::retry::error_chain;
use crate::encode::EncodedFile;
use bytes::Bytes;

/// Parts of one upload sent at once.
const PARTS_AT_ONCE: usize = 4;

impl S3Sink {
    /// Stores `file` under `key` (the full key) as a multipart upload, aborting the
    /// upload when it does not complete.
    pub(super) async fn put_multipart(
        &self,
        key: &str,
        file: &EncodedFile,
    ) -> Result<PutOutcome, AttemptError> {
        let upload_id = self
            .create_upload(key, file.content_type, file.content_encoding)
            .await?;
        let result = self.upload_parts(key, file, &upload_id).await;
        if !matches!(result, Ok(PutOutcome::Written)) {
            self.abort_upload(key, &upload_id).await;
        }
        already_present_is_done(result)
    }

    /// Stores the body arriving as `pieces` under `key` (the full key), replacing any
    /// object there: one `PutObject` when it ends within the first part, otherwise a
    /// multipart upload whose parts go up as they fill ([`PARTS_AT_ONCE`] at a time),
    /// aborted when it does not complete.
    pub(super) async fn put_streamed(
        &self,
        key: &str,
        content_type: &'static str,
        pieces: &mut Pieces,
    ) -> Result<(), AttemptError> {
        let part_size = self.options.part_size.max(1);
        let mut first = Part::default();
        let ended = first.fill(pieces, part_size).await?;
        if ended {
            let file = EncodedFile {
                key: key.to_string(),
                body: first.take(),
                content_type,
                content_encoding: None,
                records: 0,
            };
            return self.put_single(key, &file, None).await.map(|_| ());
        }
        let upload_id = self.create_upload(key, content_type, None).await?;
        let result = self
            .stream_parts(key, &upload_id, first, pieces, part_size)
            .await;
        if result.is_err() {
            self.abort_upload(key, &upload_id).await;
        }
        result
    }

    /// The parts of a streamed body: the first (full) one, then the rest as they fill;
    /// then the upload is completed, replacing any object under the key.
    async fn stream_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Part,
        pieces: &mut Pieces,
        part_size: usize,
    ) -> Result<(), AttemptError> {
        let mut in_flight = futures_util::stream::FuturesOrdered::new();
        let mut done = Vec::new();
        let mut part = first;
        let mut number = 0;
        loop {
            let ended = part.fill(pieces, part_size).await?;
            if part.len > 0 {
                if in_flight.len() == PARTS_AT_ONCE {
                    if let Some(uploaded) = in_flight.next().await {
                        done.push(uploaded?);
                    }
                }
                in_flight.push_back(self.upload_part(key, upload_id, number, part.take()));
                number += 1;
            }
            if ended {
                break;
            }
        }
        while let Some(uploaded) = in_flight.next().await {
            done.push(uploaded?);
        }
        self.complete_upload(key, upload_id, done, false).await
    }

    /// Starts a multipart upload with SHA-256 checksums; its upload ID.
    async fn create_upload(
        &self,
        key: &str,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
    ) -> Result<String, AttemptError> {
        self.with_retries("CreateMultipartUpload", || {
            let mut req = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .content_type(content_type)
                .set_content_encoding(content_encoding.map(str::to_string));
            if let Some(kms) = &self.options.kms_key_id {
                req = req
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(kms);
            }
            async move {
                let out = req.send().await.map_err(attempt_error)?;
                out.upload_id.ok_or_else(|| {
                    AttemptError::permanent("CreateMultipartUpload returned no upload ID")
                })
            }
        })
        .await
    }

    /// Aborts an upload, best effort: an upload left behind holds storage until a
    /// lifecycle rule (AbortIncompleteMultipartUpload) removes it.
    async fn abort_upload(&self, key: &str, upload_id: &str) {
        if let Err(e) = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(key, upload_id, error = %error_chain(&e), "aborting a multipart upload failed");
        }
    }

    /// Completes an upload from its parts, in order: only where no object is under the
    /// key when `create_only`, otherwise replacing it.
    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        create_only: bool,
    ) -> Result<(), AttemptError> {
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.with_retries("CompleteMultipartUpload", || {
            let mut req = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(upload.clone());
            if create_only {
                req = req.if_none_match("*");
            }
            async move { req.send().await.map(|_| ()).map_err(attempt_error) }
        })
        .await
    }

    /// Uploads the parts, each with its SHA-256, and completes the upload on condition
    /// that no object is under the key yet.
    async fn upload_parts(
        &self,
        key: &str,
        file: &EncodedFile,
        upload_id: &str,
    ) -> Result<PutOutcome, AttemptError> {
        let body = file.body.clone();
        let part_size = self.options.part_size.max(1);
        let starts: Vec<usize> = (0..body.len()).step_by(part_size).collect();
        let parts = futures_util::stream::iter(starts.into_iter().enumerate())
            .map(|(i, start)| {
                let chunk = body.slice(start..(start + part_size).min(body.len()));
                self.upload_part(key, upload_id, i, chunk)
            })
            .buffered(PARTS_AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        self.complete_upload(key, upload_id, parts, true).await?;
        Ok(PutOutcome::Written)
    }

    /// Uploads part `i` (numbered from 1 for S3) with its SHA-256 checksum.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        i: usize,
        chunk: Bytes,
    ) -> Result<CompletedPart, AttemptError> {
        let number = i32::try_from(i + 1).map_err(|_| AttemptError::permanent("too many parts"))?;
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
                    // Vouched for by its SHA-256 checksum, which S3 verifies.
                    let out = req
                        .customize()
                        .disable_payload_signing()
                        .send()
                        .await
                        .map_err(attempt_error)?;
                    Ok(out.e_tag)
                }
            })
            .await?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(e_tag)
            .checksum_sha256(checksum)
            .build())
    }
}

/// The pieces of a streamed body gathered for one part.
#[derive(Default)]
struct Part {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Part {
    /// Receives pieces until the part holds at least `size` bytes or the body ends;
    /// whether it ended. A body whose writer stopped before its end is an error.
    async fn fill(&mut self, pieces: &mut Pieces, size: usize) -> Result<bool, AttemptError> {
        while self.len < size {
            match pieces.recv().await {
                Some(Some(piece)) => {
                    self.len += piece.len();
                    self.pieces.push(piece);
                }
                Some(None) => return Ok(true),
                None => return Err(AttemptError::permanent(super::BODY_STOPPED)),
            }
        }
        Ok(false)
    }

    /// The part's bytes (copied only when it came in more than one piece), leaving it
    /// empty.
    fn take(&mut self) -> Bytes {
        self.len = 0;
        let mut pieces = std::mem::take(&mut self.pieces);
        if pieces.len() == 1 {
            return pieces.pop().unwrap_or_default();
        }
        let mut joined = Vec::with_capacity(pieces.iter().map(Bytes::len).sum());
        for piece in pieces {
            joined.extend_from_slice(&piece);
        }
        joined.into()
    }
}
