//! Pipeline: decode → route → buffer → encode → sink → report, driven the same way by
//! the CLI (one input at a time) and the Lambda function (one event per invocation).
//! Nothing is dropped: every record ends archived, rejected under `_rejected/`, or
//! named in the summary as part of an input or a file that failed.

use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};

use crate::buffer::{Batch, Buffer, Thresholds};
use crate::decode::{decode_owned_input, DecodeOptions, Decoded, Rejected};
use crate::encode::{self, jsonl, EncodedFile};
use crate::model::{ChangeRecord, Format};
use crate::report::{FailedFile, FileReport, InputError, RejectedReport, Summary};
use crate::route::PartitionKey;
use crate::schema::SchemaSet;
use crate::settings::{Settings, SettingsError};
use crate::sink::{ObjectSink, PutOutcome};

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
    /// The earliest pending rejected record: (index, sequence number).
    rejected_first: Option<(usize, Option<String>)>,
    deadline: Option<Instant>,
    summary: Summary,
}

/// Most files stored at the same time.
pub const WRITE_CONCURRENCY: usize = 4;

/// What a stored file holds, to account for it once the put is done.
enum FileKind {
    /// Changes of one partition.
    Data {
        /// Table name.
        table: String,
        /// Partition path.
        partition: String,
    },
    /// Rejected records.
    Rejected,
}

/// One encoded file waiting to be stored, and the record it starts with.
struct WriteJob {
    file: EncodedFile,
    kind: FileKind,
    first_index: usize,
    first_sequence_number: String,
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
            rejected_first: None,
            deadline: None,
            summary: Summary::default(),
        })
    }

    /// Sets the time by which every write must be done (the Lambda function: its
    /// deadline minus a safety margin). From then on no write starts, writes still
    /// running are abandoned, and their files are reported in
    /// [`Summary::failed_files`]. A write abandoned in flight may still land; its object
    /// name is deterministic, so a retry of the same records finds it.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Decodes one input (one or more JSON documents) and archives its records, writing
    /// the files that become ready. An input that is not valid JSON or not an event is
    /// recorded in the summary and nothing from it is archived; returns whether the
    /// input was readable. The changes keep ranges of the input (given as a `Vec<u8>`,
    /// it is not copied) until they are written or the next input comes.
    pub async fn ingest(&mut self, input: impl Into<Vec<u8>>, source: &str) -> bool {
        // Changes still pending from the previous input stop holding it.
        self.buffer.detach();
        let decoded = match decode_owned_input(input.into(), source, &self.decode) {
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
                Decoded::Change(change) => self.accept(source, *change).await,
                Decoded::Rejected(r) => self.reject(source, *r).await,
            }
        }
        let expired = self.buffer.take_expired(Instant::now());
        self.write_batches(expired).await;
        true
    }

    /// Archives one change that was not decoded from an event here (a baseline or
    /// export row made by the `baseline` command): routed, buffered, encoded and
    /// written like a decoded change. Files are written only as buffers fill (by size,
    /// never by age, so the same changes in the same order give the same files) and
    /// by [`Archiver::finish`].
    pub async fn push(&mut self, change: ChangeRecord, source: &str) {
        self.summary.records += 1;
        self.accept(source, change).await;
    }

    /// Routes and buffers one decoded change, writing the files that become ready.
    async fn accept(&mut self, source: &str, change: ChangeRecord) {
        let t = change.approximate_creation_time_ms;
        self.summary.oldest_change_ms = Some(self.summary.oldest_change_ms.map_or(t, |o| o.min(t)));
        let Some(key) = PartitionKey::for_record(&change) else {
            // Decoding bounds the time to years 1970-9999, so every change has a
            // partition; keep it anyway if that ever changes.
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
                    raw: change.record.to_string(),
                },
            )
            .await;
            return;
        };
        let ready = self.buffer.push(key, change, Instant::now());
        self.write_batches(ready).await;
    }

    /// Writes every pending file and returns what the run did.
    pub async fn finish(mut self) -> Summary {
        let rest = self.buffer.drain();
        self.write_batches(rest).await;
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
        if self
            .rejected_first
            .as_ref()
            .is_none_or(|(i, _)| r.index < *i)
        {
            self.rejected_first = Some((r.index, r.sequence_number.clone()));
        }
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
        let (first_index, first_sequence_number) = self
            .rejected_first
            .take()
            .map_or((0, None), |(i, s)| (i, s));
        let first_sequence_number = first_sequence_number.unwrap_or_default();
        match encode::rejected_file(&lines, count, self.processing_date) {
            Ok(file) => {
                self.write_jobs(vec![WriteJob {
                    file,
                    kind: FileKind::Rejected,
                    first_index,
                    first_sequence_number,
                }])
                .await
            }
            Err(e) => self.summary.failed_files.push(FailedFile {
                location: self
                    .sink
                    .location(&crate::model::key::rejected_path(self.processing_date)),
                records: count,
                first_index,
                first_sequence_number,
                error: e.to_string(),
            }),
        }
    }

    /// Encodes batches and stores them, [`WRITE_CONCURRENCY`] at a time.
    async fn write_batches(&mut self, batches: Vec<Batch>) {
        let mut jobs = Vec::with_capacity(batches.len());
        for batch in batches {
            let Some(first) = batch.records.iter().min_by_key(|r| r.index) else {
                continue;
            };
            let first_index = first.index;
            let first_sequence_number = first.sequence_number.clone();
            let partition = batch.key.path();
            match encode::encode_batch(&batch, self.format, self.schemas.get(&batch.key.table)) {
                Ok(file) => jobs.push(WriteJob {
                    file,
                    kind: FileKind::Data {
                        table: batch.key.table.clone(),
                        partition,
                    },
                    first_index,
                    first_sequence_number,
                }),
                Err(e) => {
                    tracing::error!(partition, error = %e, "file not encoded");
                    self.summary.failed_files.push(FailedFile {
                        location: self.sink.location(&partition),
                        records: batch.records.len(),
                        first_index,
                        first_sequence_number,
                        error: e.to_string(),
                    });
                }
            }
        }
        self.write_jobs(jobs).await;
    }

    /// Is the deadline (if any) reached?
    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Stores files, [`WRITE_CONCURRENCY`] at a time, and accounts for each in the
    /// summary in the order given. Past the deadline no put starts and puts in flight
    /// are abandoned; those files are reported as failed.
    async fn write_jobs(&mut self, jobs: Vec<WriteJob>) {
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        let mut stored = Vec::with_capacity(jobs.len());
        let mut files = Vec::with_capacity(jobs.len());
        for job in jobs {
            stored.push(Stored {
                key: job.file.key.clone(),
                records: job.file.records,
                bytes: job.file.body.len(),
                kind: job.kind,
                first_index: job.first_index,
                first_sequence_number: job.first_sequence_number,
            });
            files.push(job.file);
        }
        let results = self.put_all(files).await;
        self.summary.write_time += started.elapsed();
        for (file, result) in stored.into_iter().zip(results) {
            self.account(file, result);
        }
    }

    /// Puts files, [`WRITE_CONCURRENCY`] at a time, within the deadline; the results
    /// come in the order of `files`.
    async fn put_all(&self, files: Vec<EncodedFile>) -> Vec<Result<PutOutcome, String>> {
        let mut results: Vec<Option<Result<PutOutcome, String>>> = Vec::new();
        results.resize_with(files.len(), || None);
        let mut tasks = tokio::task::JoinSet::new();
        let mut ids = std::collections::HashMap::new();
        let mut pending = files.into_iter().enumerate();
        loop {
            while tasks.len() < WRITE_CONCURRENCY {
                let Some((i, file)) = pending.next() else {
                    break;
                };
                if self.out_of_time() {
                    results[i] = Some(Err(NOT_STARTED.to_string()));
                    continue;
                }
                let sink = Arc::clone(&self.sink);
                let deadline = self.deadline;
                let handle = tasks.spawn(async move {
                    let put = sink.put(&file);
                    let result = match deadline {
                        Some(d) => match tokio::time::timeout_at(d.into(), put).await {
                            Ok(r) => r.map_err(|e| e.message),
                            Err(_) => Err(ABANDONED.to_string()),
                        },
                        None => put.await.map_err(|e| e.message),
                    };
                    (i, result)
                });
                ids.insert(handle.id(), i);
            }
            match tasks.join_next_with_id().await {
                None => break,
                Some(Ok((_, (i, result)))) => results[i] = Some(result),
                Some(Err(e)) => {
                    if let Some(&i) = ids.get(&e.id()) {
                        results[i] = Some(Err(format!("the write task failed: {e}")));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("the write did not run".to_string())))
            .collect()
    }

    /// Accounts for one file whose put is done, stored or failed.
    fn account(&mut self, file: Stored, result: Result<PutOutcome, String>) {
        let Stored {
            key,
            records,
            bytes,
            kind,
            first_index,
            first_sequence_number,
        } = file;
        match result {
            Ok(outcome) => {
                self.summary.files.push(FileReport {
                    location: self.sink.location(&key),
                    records,
                    bytes,
                    outcome,
                });
                match kind {
                    FileKind::Data { table, partition } => {
                        self.summary.archived += records;
                        *self
                            .summary
                            .partitions
                            .entry(table)
                            .or_default()
                            .entry(partition)
                            .or_default() += records;
                    }
                    FileKind::Rejected => self.summary.rejected += records,
                }
            }
            Err(error) => {
                let location = self.sink.location(&key);
                tracing::error!(
                    location,
                    records,
                    first_sequence_number,
                    error,
                    "file not stored"
                );
                self.summary.failed_files.push(FailedFile {
                    location,
                    records,
                    first_index,
                    first_sequence_number,
                    error,
                });
            }
        }
    }
}

/// A file being stored: what its report needs once the put is done.
struct Stored {
    key: String,
    records: usize,
    bytes: usize,
    kind: FileKind,
    first_index: usize,
    first_sequence_number: String,
}

/// The error of a file whose put did not start because the deadline was reached.
pub const NOT_STARTED: &str = "not started: the deadline was reached";
/// The error of a file whose put was still running at the deadline.
pub const ABANDONED: &str = "abandoned at the deadline (the object may or may not have landed)";

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::sink::SinkError;

    /// A sink that holds every put for a while and counts how many run at once.
    #[derive(Default)]
    struct Slow {
        running: AtomicUsize,
        most: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl ObjectSink for Slow {
        async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            // Later keys finish first, so completion order differs from write order.
            let day: u64 = file.key[file.key.find("day=").map_or(0, |i| i + 4)..][..2]
                .parse()
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(120 - day * 10)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(PutOutcome::Written)
        }
        fn location(&self, key: &str) -> String {
            key.to_string()
        }
    }

    #[tokio::test]
    async fn writes_run_concurrently_within_the_bound_and_report_in_order() {
        let settings = Settings {
            format: Format::JsonlGz,
            ..Settings::default()
        };
        let sink = Arc::new(Slow::default());
        let mut archiver = Archiver::new(&settings, sink.clone()).unwrap();
        let records: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"eventID":"e{i}","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/tbl/stream/x","dynamodb":{{"ApproximateCreationDateTime":{},"Keys":{{"pk":{{"S":"k"}}}},"SequenceNumber":"{}"}}}}"#,
                    1_767_225_600 + i * 86_400,
                    100 + i
                )
            })
            .collect();
        let event = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        assert!(archiver.ingest(event.as_bytes(), "event").await);
        let summary = archiver.finish().await;
        assert_eq!(summary.archived, 10);
        assert_eq!(sink.most.load(Ordering::SeqCst), WRITE_CONCURRENCY);
        let days: Vec<&str> = summary
            .files
            .iter()
            .map(|f| &f.location[f.location.find("day=").unwrap()..][..6])
            .collect();
        let mut sorted = days.clone();
        sorted.sort();
        assert_eq!(days, sorted, "files are reported in write order");
    }
}
