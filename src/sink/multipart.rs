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
use super::PutOutcome;
use crate::aws::retry::error_chain;
use crate::encode::EncodedFile;

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
                    out.upload_id.ok_or_else(|| {
                        AttemptError::permanent("CreateMultipartUpload returned no upload ID")
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
        already_present_is_done(result)
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

    /// Uploads part `i` (numbered from 1 for S3) with its SHA-256 checksum.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        i: usize,
        chunk: bytes::Bytes,
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
