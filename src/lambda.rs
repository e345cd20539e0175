//! The Lambda function's logic, kept out of the binary so it can be tested in-process:
//! one invocation archives one DynamoDB Streams or Kinesis event through
//! [`Archiver`], answers with `batchItemFailures` naming the earliest record (in stream
//! order) whose file did not land, and reports itself in one JSON summary log line and
//! one CloudWatch Embedded Metric Format (EMF) line.
//!
//! Failure semantics: a record is reported done only when the file holding it (or, for
//! a rejected record, its `_rejected/` file) is durably stored. Lambda retries from the
//! reported record on; object names are deterministic and writes are conditional, so
//! redelivered files are found already present instead of being written twice.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::model::Location;
use crate::pipeline::Archiver;
use crate::report::{FailedFile, Summary};
use crate::settings::{Setting, Settings, SettingsError};
use crate::sink::{ObjectSink, PutOutcome};

/// Writes stop this long before the invocation's deadline, leaving time to answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1000);

/// The CloudWatch namespace of the function's metrics.
pub const METRICS_NAMESPACE: &str = "DdbArchiver";

/// An invocation that must fail as a whole, so that Lambda retries the entire batch.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The payload is not a stream event (nothing was archived).
    #[error("the event could not be read: {0}")]
    Input(String),
    /// A file did not land and its earliest record has no readable sequence number, so
    /// no `batchItemFailures` entry can name it.
    #[error(
        "{location} was not stored ({error}) and its earliest record (index {index}) has no \
         readable sequence number; failing the whole batch so that Lambda retries it"
    )]
    Unnameable {
        /// Position of the record in the event's `Records`.
        index: usize,
        /// The file that was not stored.
        location: String,
        /// Why it was not stored.
        error: String,
    },
}

/// The figures of one invocation, logged and emitted as metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metrics {
    /// Records whose change file landed (written now or already present).
    pub records_archived: u64,
    /// Records rejected and stored under `_rejected/`.
    pub records_rejected: u64,
    /// Records in files that did not land.
    pub records_failed: u64,
    /// Objects written by this invocation (not counting ones already present).
    pub files_written: u64,
    /// Objects found already present (a redelivery).
    pub files_already_present: u64,
    /// Bytes of the objects written by this invocation.
    pub bytes_written: u64,
    /// Age of the oldest change in the batch when the invocation ended (stream lag).
    pub stream_lag_ms: Option<u64>,
    /// Duration of the invocation.
    pub duration_ms: u64,
    /// Time spent storing files.
    pub write_ms: u64,
}

impl Metrics {
    /// The figures of a run summary that took `duration`, at `now_ms` (Unix epoch).
    pub fn from_summary(summary: &Summary, duration: Duration, now_ms: i64) -> Self {
        let written = summary
            .files
            .iter()
            .filter(|f| f.outcome == PutOutcome::Written);
        Metrics {
            records_archived: summary.archived as u64,
            records_rejected: summary.rejected as u64,
            records_failed: summary.failed_files.iter().map(|f| f.records as u64).sum(),
            files_written: written.clone().count() as u64,
            files_already_present: summary
                .files
                .iter()
                .filter(|f| f.outcome == PutOutcome::AlreadyPresent)
                .count() as u64,
            bytes_written: written.map(|f| f.bytes as u64).sum(),
            stream_lag_ms: summary
                .oldest_change_ms
                .map(|t| u64::try_from(now_ms.saturating_sub(t)).unwrap_or(0)),
            duration_ms: duration.as_millis() as u64,
            write_ms: summary.write_time.as_millis() as u64,
        }
    }

    /// One CloudWatch Embedded Metric Format document (a single line), namespace
    /// [`METRICS_NAMESPACE`], dimension `FunctionName`, metrics `RecordsArchived`,
    /// `RecordsRejected`, `RecordsFailed`, `FilesWritten`, `BytesWritten`,
    /// `StreamLagMs` (only when the batch held a change) and `DurationMs`.
    pub fn emf(&self, function_name: &str, timestamp_ms: i64) -> String {
        let mut metrics = vec![
            ("RecordsArchived", "Count", self.records_archived),
            ("RecordsRejected", "Count", self.records_rejected),
            ("RecordsFailed", "Count", self.records_failed),
            ("FilesWritten", "Count", self.files_written),
            ("BytesWritten", "Bytes", self.bytes_written),
        ];
        if let Some(lag) = self.stream_lag_ms {
            metrics.push(("StreamLagMs", "Milliseconds", lag));
        }
        metrics.push(("DurationMs", "Milliseconds", self.duration_ms));
        emf_document(function_name, timestamp_ms, &metrics)
    }
}

/// One CloudWatch Embedded Metric Format document (a single line) in
/// [`METRICS_NAMESPACE`] with dimension `FunctionName`: each metric's name, unit and
/// value.
pub fn emf_document(
    function_name: &str,
    timestamp_ms: i64,
    metrics: &[(&str, &str, u64)],
) -> String {
    let mut doc = serde_json::Map::new();
    doc.insert(
        "_aws".to_string(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("FunctionName".to_string(), function_name.into());
    for (name, _, value) in metrics {
        doc.insert(name.to_string(), (*value).into());
    }
    serde_json::Value::Object(doc).to_string()
}

/// The `batchItemFailures` answer for a run: empty when every record landed, else the
/// sequence number of the earliest record, in stream order, whose file did not land.
pub fn batch_item_failures(summary: &Summary) -> Result<DynamoDbEventResponse, InvocationError> {
    let mut response = DynamoDbEventResponse::default();
    if let Some(first) = earliest_failure(&summary.failed_files) {
        if first.first_sequence_number.is_empty() {
            return Err(InvocationError::Unnameable {
                index: first.first_index,
                location: first.location.clone(),
                error: first.error.clone(),
            });
        }
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(first.first_sequence_number.clone());
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// The failed file holding the earliest record in stream order.
pub fn earliest_failure(failed: &[FailedFile]) -> Option<&FailedFile> {
    failed.iter().min_by_key(|f| f.first_index)
}

/// The instant by which writes must be done for an invocation ending at `deadline`:
/// [`DEADLINE_MARGIN`] before it. A deadline already past when the invocation starts
/// cannot be real (local emulators send such values) and gives `None`: no limit.
pub fn write_deadline(deadline: SystemTime, now: SystemTime) -> Option<Instant> {
    match deadline.duration_since(now) {
        Ok(remaining) if !remaining.is_zero() => {
            Some(Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN))
        }
        _ => {
            tracing::warn!(
                deadline_ms = deadline
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                "the invocation's deadline is already past at its start; writing without one"
            );
            None
        }
    }
}

/// Checks the settings for the function: everything [`Settings::validate`] checks, and
/// an `s3://` destination (a Lambda function's disk does not outlive it).
pub fn validate_settings(settings: &Settings) -> Result<Location, SettingsError> {
    settings.validate()?;
    let dest = settings.destination()?;
    match dest {
        Location::S3 { .. } => Ok(dest),
        Location::Local(_) => Err(SettingsError {
            setting: Setting::Dest,
            reason: format!(
                "the Lambda function needs an s3://bucket/prefix destination, not {:?}",
                settings.dest
            ),
        }),
    }
}

/// What one invocation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The answer to Lambda.
    pub response: DynamoDbEventResponse,
    /// What the run did.
    pub summary: Summary,
    /// Its figures.
    pub metrics: Metrics,
}

/// The function: settings and sink made once at init, used by every invocation.
pub struct Function {
    settings: Settings,
    schemas: crate::schema::SchemaSet,
    sink: Arc<dyn ObjectSink>,
    function_name: String,
}

impl Function {
    /// A function writing to `sink`; `function_name` is the metrics dimension.
    pub fn new(
        settings: Settings,
        sink: Arc<dyn ObjectSink>,
        function_name: impl Into<String>,
    ) -> Result<Self, SettingsError> {
        settings.validate()?;
        let schemas = settings.schemas()?;
        Ok(Function {
            settings,
            schemas,
            sink,
            function_name: function_name.into(),
        })
    }

    /// The metrics dimension.
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// Archives one event (its JSON bytes), writing nothing after `deadline`. Logs one
    /// summary line at info level and prints one EMF line on stdout.
    pub async fn handle(
        &self,
        payload: Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<Outcome, InvocationError> {
        let started = Instant::now();
        let mut archiver =
            Archiver::with_schemas(&self.settings, Arc::clone(&self.sink), self.schemas.clone())
                .map_err(|e| InvocationError::Input(e.to_string()))?;
        archiver.set_deadline(deadline);
        archiver.ingest(payload, "event").await;
        let summary = archiver.finish().await;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let metrics = Metrics::from_summary(&summary, started.elapsed(), now_ms);
        println!("{}", metrics.emf(&self.function_name, now_ms));
        let response = match summary.input_errors.first() {
            Some(e) => Err(InvocationError::Input(e.error.clone())),
            None => batch_item_failures(&summary),
        };
        let failed_at = response
            .as_ref()
            .ok()
            .and_then(|r| r.batch_item_failures.first())
            .and_then(|f| f.item_identifier.clone());
        tracing::info!(
            records = summary.records,
            archived = metrics.records_archived,
            rejected = metrics.records_rejected,
            failed = metrics.records_failed,
            files_written = metrics.files_written,
            files_already_present = metrics.files_already_present,
            files_failed = summary.failed_files.len(),
            bytes_written = metrics.bytes_written,
            duration_ms = metrics.duration_ms,
            write_ms = metrics.write_ms,
            stream_lag_ms = metrics.stream_lag_ms,
            retry_from_sequence_number = failed_at,
            error = response.as_ref().err().map(|e| e.to_string()),
            "invocation summary"
        );
        Ok(Outcome {
            response: response?,
            summary,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::EncodedFile;
    use crate::sink::local::LocalDirSink;
    use crate::sink::SinkError;

    fn settings(dest: &str) -> Settings {
        Settings {
            dest: dest.to_string(),
            format: crate::model::Format::JsonlGz,
            ..Settings::default()
        }
    }

    /// Fault injection: fails puts of keys containing `fail` (a table name), passes the
    /// rest to a real local-directory sink.
    struct FailSome {
        inner: LocalDirSink,
        fail: &'static str,
    }

    #[async_trait::async_trait]
    impl ObjectSink for FailSome {
        async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError> {
            if file.key.contains(self.fail) {
                return Err(SinkError {
                    location: file.key.clone(),
                    message: "injected".into(),
                });
            }
            self.inner.put(file).await
        }
        fn location(&self, key: &str) -> String {
            self.inner.location(key)
        }
    }

    fn record(table: &str, seq: u32, day: u32) -> String {
        format!(
            r#"{{"eventID":"e{seq}","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/{table}/stream/x","dynamodb":{{"ApproximateCreationDateTime":{},"Keys":{{"pk":{{"S":"k{seq}"}}}},"NewImage":{{"pk":{{"S":"k{seq}"}},"n":{{"N":"12345678901234567890.123"}}}},"SequenceNumber":"{seq}","SizeBytes":10,"StreamViewType":"NEW_IMAGE"}}}}"#,
            1_767_225_600 + u64::from(day) * 86_400
        )
    }

    fn event(records: &[String]) -> Vec<u8> {
        format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes()
    }

    #[tokio::test]
    async fn reports_the_earliest_record_of_a_failed_file() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(FailSome {
            inner: LocalDirSink::new(dir.path()),
            fail: "bad/",
        });
        let f = Function::new(settings("unused"), sink, "fn").unwrap();
        // good (100, 103), bad (101, 104), poison (102, rejected)
        let recs = vec![
            record("good", 100, 0),
            record("bad", 101, 0),
            r#"{"eventID":"p","dynamodb":{"SequenceNumber":"102"}}"#.to_string(),
            record("good", 103, 1),
            record("bad", 104, 1),
        ];
        let out = f.handle(event(&recs), None).await.unwrap();
        let ids: Vec<_> = out
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect();
        assert_eq!(ids, ["101"]);
        assert_eq!(out.metrics.records_archived, 2);
        assert_eq!(out.metrics.records_rejected, 1);
        assert_eq!(out.metrics.records_failed, 2);
        assert_eq!(
            serde_json::to_string(&out.response).unwrap(),
            r#"{"batchItemFailures":[{"itemIdentifier":"101"}]}"#
        );
    }

    #[tokio::test]
    async fn failed_rejected_file_names_its_earliest_record() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(FailSome {
            inner: LocalDirSink::new(dir.path()),
            fail: "_rejected/",
        });
        let f = Function::new(settings("unused"), sink, "fn").unwrap();
        let recs = vec![
            record("good", 100, 0),
            r#"{"eventID":"p","dynamodb":{"SequenceNumber":"101"}}"#.to_string(),
            r#"{"eventID":"q","dynamodb":{"SequenceNumber":"102"}}"#.to_string(),
        ];
        let out = f.handle(event(&recs), None).await.unwrap();
        let ids: Vec<_> = out
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect();
        assert_eq!(ids, ["101"]);

        // A rejected record with no readable sequence number fails the whole batch.
        let recs = vec![record("good", 100, 0), "42".to_string()];
        let err = f.handle(event(&recs), None).await.unwrap_err();
        assert!(
            matches!(err, InvocationError::Unnameable { index: 1, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn nothing_starts_after_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LocalDirSink::new(dir.path()));
        let f = Function::new(settings("unused"), sink, "fn").unwrap();
        let recs = vec![record("tbl", 7, 0), record("tbl", 8, 2)];
        let out = f.handle(event(&recs), Some(Instant::now())).await.unwrap();
        assert_eq!(
            out.response.batch_item_failures[0]
                .item_identifier
                .as_deref(),
            Some("7")
        );
        assert_eq!(out.metrics.records_failed, 2);
        assert!(out
            .summary
            .failed_files
            .iter()
            .all(|f| f.error == crate::pipeline::NOT_STARTED));
        assert!(!dir.path().join("tbl").exists());
        // Redelivered with time to spare, everything lands and nothing fails.
        let out = f.handle(event(&recs), None).await.unwrap();
        assert!(out.response.batch_item_failures.is_empty());
        assert_eq!(out.metrics.files_written, 2, "{:#?}", out.summary);
        // Delivered again: a no-op reporting success.
        let out = f.handle(event(&recs), None).await.unwrap();
        assert!(out.response.batch_item_failures.is_empty());
        assert_eq!(out.metrics.files_written, 0);
        assert_eq!(out.metrics.files_already_present, 2);
        assert_eq!(out.metrics.records_archived, 2);
    }

    #[test]
    fn emf_document() {
        let m = Metrics {
            records_archived: 5,
            records_rejected: 1,
            records_failed: 2,
            files_written: 3,
            files_already_present: 0,
            bytes_written: 1234,
            stream_lag_ms: Some(60_000),
            duration_ms: 17,
            write_ms: 9,
        };
        let v: serde_json::Value = serde_json::from_str(&m.emf("archiver", 1_000)).unwrap();
        let names: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "RecordsArchived",
                "RecordsRejected",
                "RecordsFailed",
                "FilesWritten",
                "BytesWritten",
                "StreamLagMs",
                "DurationMs"
            ]
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "DdbArchiver"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["FunctionName"]])
        );
        assert_eq!(v["FunctionName"], "archiver");
        assert_eq!(v["RecordsArchived"], 5);
        assert_eq!(v["StreamLagMs"], 60_000);
        assert_eq!(v["BytesWritten"], 1234);
        assert_eq!(v["_aws"]["Timestamp"], 1_000);
    }

    #[test]
    fn deadlines() {
        let now = SystemTime::now();
        let d = write_deadline(now + Duration::from_secs(10), now).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(9) && left > Duration::from_secs(8),
            "{left:?}"
        );
        let d = write_deadline(now + Duration::from_millis(500), now).unwrap();
        assert!(d <= Instant::now());
        assert_eq!(write_deadline(SystemTime::UNIX_EPOCH, now), None);
    }

    #[test]
    fn lambda_needs_s3() {
        assert!(validate_settings(&settings("./archive")).is_err());
        assert!(validate_settings(&settings("s3://b/p")).is_ok());
    }
}
