//! Pipeline: decode → route → buffer → encode → sink → report, driven the same way by
//! the CLI (one input at a time) and the Lambda function (one event per invocation).
//! Nothing is dropped: every record ends archived, rejected under `_rejected/`, or
//! named in the summary as part of an input or a file that failed.

use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};

use crate::buffer::{Batch, Buffer, Thresholds};
use crate::decode::{decode_input, DecodeOptions, Decoded, Rejected};
use crate::encode::{self, jsonl, EncodedFile, Format};
use crate::report::{FailedFile, FileReport, InputError, RejectedReport, Summary};
use crate::route::PartitionKey;
use crate::schema::SchemaSet;
use crate::settings::{Settings, SettingsError};
use crate::sink::ObjectSink;

/// Runs changes from inputs into a sink.
pub struct Archiver {
    format: Format,
    schemas: SchemaSet,
    thresholds: Thresholds,
    decode: DecodeOptions,
    sink: Arc<dyn ObjectSink>,
    buffer: Buffer,
    processing_date: NaiveDate,
    rejected_lines: Vec<u8>,
    rejected_pending: usize,
    summary: Summary,
}

impl Archiver {
    /// An archiver with validated settings, writing to `sink`; reads the schema files of
    /// `--schemas`.
    pub fn new(settings: &Settings, sink: Arc<dyn ObjectSink>) -> Result<Self, SettingsError> {
        let schemas = settings.schemas()?;
        Self::with_schemas(settings, sink, schemas)
    }

    /// Like [`Archiver::new`] with schemas already read (a long-lived process reads them
    /// once with [`Settings::schemas`] and clones them, cheaply, for each run).
    pub fn with_schemas(
        settings: &Settings,
        sink: Arc<dyn ObjectSink>,
        schemas: SchemaSet,
    ) -> Result<Self, SettingsError> {
        settings.validate()?;
        let thresholds = settings.thresholds()?;
        Ok(Archiver {
            format: settings.format,
            schemas,
            thresholds,
            decode: DecodeOptions {
                table: settings.table.clone(),
            },
            sink,
            buffer: Buffer::new(thresholds),
            processing_date: Utc::now().date_naive(),
            rejected_lines: Vec::new(),
            rejected_pending: 0,
            summary: Summary::default(),
        })
    }

    /// Decodes one input (one or more JSON documents) and archives its records, writing
    /// the files that become ready. An input that is not valid JSON or not an event is
    /// recorded in the summary and nothing from it is archived; returns whether the
    /// input was readable.
    pub async fn ingest(&mut self, bytes: &[u8], source: &str) -> bool {
        let decoded = match decode_input(bytes, source, &self.decode) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(source, error = %e, "input rejected");
                self.summary.input_errors.push(InputError {
                    source: source.to_string(),
                    error: e.to_string(),
                });
                return false;
            }
        };
        for d in decoded {
            self.summary.records += 1;
            match d {
                Decoded::Change(change) => {
                    let change = *change;
                    let Some(key) = PartitionKey::for_record(&change) else {
                        // Decoding bounds the time to years 1970-9999, so every change
                        // has a partition; keep it anyway if that ever changes.
                        self.reject(
                            source,
                            Rejected {
                                event_id: Some(change.event_id.clone()),
                                sequence_number: Some(change.sequence_number.clone()),
                                index: change.index,
                                error: crate::decode::RecordError::Invalid {
                                    field: "dynamodb.ApproximateCreationDateTime",
                                    reason: "no calendar day".to_string(),
                                },
                                raw: change.record,
                            },
                        )
                        .await;
                        continue;
                    };
                    for batch in self.buffer.push(key, change, Instant::now()) {
                        self.write_batch(batch).await;
                    }
                }
                Decoded::Rejected(r) => self.reject(source, *r).await,
            }
        }
        for batch in self.buffer.take_expired(Instant::now()) {
            self.write_batch(batch).await;
        }
        true
    }

    /// Writes every pending file and returns what the run did.
    pub async fn finish(mut self) -> Summary {
        for batch in self.buffer.drain() {
            self.write_batch(batch).await;
        }
        self.flush_rejected().await;
        self.summary
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    async fn reject(&mut self, source: &str, r: Rejected) {
        let reason = r.error.to_string();
        tracing::debug!(source, index = r.index, event_id = ?r.event_id, %reason, "record rejected");
        let out = &mut self.rejected_lines;
        out.extend_from_slice(b"{\"source\":");
        jsonl::push_json_str(out, source);
        out.extend_from_slice(format!(",\"index\":{}", r.index).as_bytes());
        out.extend_from_slice(b",\"event_id\":");
        match &r.event_id {
            Some(id) => jsonl::push_json_str(out, id),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"sequence_number\":");
        match &r.sequence_number {
            Some(s) => jsonl::push_json_str(out, s),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"reason\":");
        jsonl::push_json_str(out, &reason);
        out.extend_from_slice(b",\"record\":");
        out.extend_from_slice(r.raw.as_bytes());
        out.extend_from_slice(b"}\n");
        self.rejected_pending += 1;
        self.summary.rejected_records.push(RejectedReport {
            source: source.to_string(),
            index: r.index,
            event_id: r.event_id,
            sequence_number: r.sequence_number,
            reason,
        });
        if self.rejected_lines.len() >= self.thresholds.max_file_bytes {
            self.flush_rejected().await;
        }
    }

    async fn flush_rejected(&mut self) {
        if self.rejected_pending == 0 {
            return;
        }
        let lines = std::mem::take(&mut self.rejected_lines);
        let count = std::mem::take(&mut self.rejected_pending);
        let result = encode::rejected_file(&lines, count, self.processing_date);
        let file = match result {
            Ok(f) => f,
            Err(e) => {
                self.summary.failed_files.push(FailedFile {
                    location: self
                        .sink
                        .location(&crate::route::rejected_path(self.processing_date)),
                    records: count,
                    first_index: 0,
                    first_sequence_number: String::new(),
                    error: e.to_string(),
                });
                return;
            }
        };
        match self.store(&file).await {
            Ok(()) => self.summary.rejected += count,
            Err(error) => self.summary.failed_files.push(FailedFile {
                location: self.sink.location(&file.key),
                records: count,
                first_index: 0,
                first_sequence_number: String::new(),
                error,
            }),
        }
    }

    async fn store(&mut self, file: &EncodedFile) -> Result<(), String> {
        match self.sink.put(file).await {
            Ok(outcome) => {
                self.summary.files.push(FileReport {
                    location: self.sink.location(&file.key),
                    records: file.records,
                    bytes: file.body.len(),
                    outcome,
                });
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    async fn write_batch(&mut self, batch: Batch) {
        let Some(first) = batch.records.iter().min_by_key(|r| r.index) else {
            return;
        };
        let first_index = first.index;
        let first_sequence_number = first.sequence_number.clone();
        let partition = batch.key.path();
        let result =
            match encode::encode_batch(&batch, self.format, self.schemas.get(&batch.key.table)) {
                Ok(file) => self.store(&file).await.map_err(|e| (file.key, e)),
                Err(e) => Err((partition.clone(), e.to_string())),
            };
        match result {
            Ok(()) => {
                self.summary.archived += batch.records.len();
                *self
                    .summary
                    .partitions
                    .entry(batch.key.table.clone())
                    .or_default()
                    .entry(partition)
                    .or_default() += batch.records.len();
            }
            Err((key, error)) => {
                tracing::error!(key, error, "file not stored");
                self.summary.failed_files.push(FailedFile {
                    location: self.sink.location(&key),
                    records: batch.records.len(),
                    first_index,
                    first_sequence_number,
                    error,
                })
            }
        }
    }
}
