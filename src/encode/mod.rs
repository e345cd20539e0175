//! Encode: a [`Batch`] of one partition becomes one object, gzip JSON lines or Parquet,
//! under a deterministic name: the same records always give the same name and bytes,
//! different record sets never share a name.

pub mod jsonl;
pub mod parquet;

use sha2::{Digest, Sha256};

use crate::model::key::{DataKey, ObjectKey};

use crate::buffer::Batch;
use crate::model::hex::hex_digest;
use crate::model::ChangeRecord;
use crate::model::Format;
use crate::schema::TableSchema;

/// Errors while encoding a batch.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Arrow refused the columns.
    #[error("building Arrow columns for {partition}: {source}")]
    Arrow {
        /// The partition being encoded.
        partition: String,
        /// Arrow's error.
        source: arrow::error::ArrowError,
    },
    /// The Parquet writer failed.
    #[error("writing Parquet for {partition}: {source}")]
    Parquet {
        /// The partition being encoded.
        partition: String,
        /// The Parquet writer's error.
        source: ::parquet::errors::ParquetError,
    },
    /// Compression failed.
    #[error("compressing {partition}: {source}")]
    Io {
        /// The partition being encoded.
        partition: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An empty batch has no file.
    #[error("empty batch for {0}")]
    Empty(String),
}

/// One encoded object, ready for a sink.
#[derive(Debug, Clone)]
pub struct EncodedFile {
    /// Key relative to the destination root, e.g.
    /// `orders/year=2026/month=01/day=01/<first>-<last>-<digest>.parquet`.
    pub key: String,
    /// The object's bytes.
    pub body: bytes::Bytes,
    /// `Content-Type` to store.
    pub content_type: &'static str,
    /// `Content-Encoding` to store, if any.
    pub content_encoding: Option<&'static str>,
    /// How many records the object holds.
    pub records: usize,
}

/// Encodes a batch in the given format under its deterministic name. With the table's
/// `schema`, Parquet files also carry its typed columns and `type_errors` (gzip JSON
/// lines stay lossless-only).
pub fn encode_batch(
    batch: &Batch,
    format: Format,
    schema: Option<&TableSchema>,
) -> Result<EncodedFile, EncodeError> {
    let partition = batch.key.path();
    let (first, last) = match (batch.records.first(), batch.records.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(EncodeError::Empty(partition)),
    };
    let body = match format {
        Format::Parquet => parquet::encode(&batch.records, schema).map_err(|e| e.at(&partition))?,
        Format::JsonlGz => jsonl::encode(&batch.records).map_err(|source| EncodeError::Io {
            partition: partition.clone(),
            source,
        })?,
    };
    let key = DataKey {
        table: batch.key.table.clone(),
        date: batch.key.date,
        first_sequence: first.sequence_number.clone(),
        last_sequence: last.sequence_number.clone(),
        digest: record_set_digest(&batch.records),
        format,
    }
    .key();
    Ok(EncodedFile {
        key,
        body: body.into(),
        content_type: format.content_type(),
        content_encoding: format.content_encoding(),
        records: batch.records.len(),
    })
}

/// The `_rejected/` object for gzip JSON lines of rejected records, named by a digest of
/// its content under the processing date's partition.
pub fn rejected_file(
    lines: &[u8],
    records: usize,
    processing_date: chrono::NaiveDate,
) -> std::io::Result<EncodedFile> {
    Ok(EncodedFile {
        key: ObjectKey::Rejected {
            date: processing_date,
            digest: hex_digest(Sha256::digest(lines).as_slice()),
        }
        .key(),
        body: jsonl::gzip(lines)?.into(),
        content_type: Format::JsonlGz.content_type(),
        content_encoding: Format::JsonlGz.content_encoding(),
        records,
    })
}

/// 16 hex digits of SHA-256 over the record set, in order: each record's event ID,
/// sequence number and record text. This is the part of an object name that tells
/// record sets apart.
pub fn record_set_digest(records: &[ChangeRecord]) -> String {
    let mut h = Sha256::new();
    for r in records {
        for part in [
            r.event_id.as_str(),
            r.sequence_number.as_str(),
            r.record.as_str(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    hex_digest(h.finalize().as_slice())
}
