//! Scan: a baseline read from the live table by a parallel Scan (`--scan`), for tables
//! without point-in-time recovery. Reads are strongly consistent and limited to a
//! number of read units per second, taken from the consumed capacity DynamoDB returns.
//! A table whose stream is not enabled is refused: changes made while the Scan runs
//! reach the archive only through the stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ReturnConsumedCapacity};
use base64::Engine as _;
use tokio::sync::Mutex;

use super::{BaselineError, BaselineReport, IngestSummary, KeySchema};
use crate::model::coverage::{
    scan_event_id, CoverageExportType, CoverageKind, CoverageRecord, CoverageSource,
    COVERAGE_FORMAT, NON_STREAM_SEQUENCE_NUMBER,
};
use crate::model::item::canonical_key;
use crate::model::{ChangeRecord, EventName, JsonText, SourceKind};
use crate::pipeline::Archiver;
use crate::settings::Settings;
use crate::sink::{ObjectSink, PutOutcome};

fn client_error<E>(
    what: &str,
    e: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> BaselineError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    BaselineError::Scan(format!(
        "{what}: {}",
        crate::aws::retry::describe_sdk_error(e).1
    ))
}

async fn client() -> aws_sdk_dynamodb::Client {
    crate::aws::dynamodb(
        &crate::aws::shared_config().await,
        &crate::aws::ClientOptions::default(),
    )
}

fn key_schema_of(
    table: &str,
    schema: &[aws_sdk_dynamodb::types::KeySchemaElement],
) -> Result<KeySchema, BaselineError> {
    let name = |t: KeyType| {
        schema
            .iter()
            .find(|k| *k.key_type() == t)
            .map(|k| k.attribute_name().to_string())
    };
    Ok(KeySchema {
        hash: name(KeyType::Hash).ok_or_else(|| {
            BaselineError::Scan(format!("DescribeTable of {table} gave no partition key"))
        })?,
        range: name(KeyType::Range),
    })
}

/// The key schema of a table, from DescribeTable (the endpoint override
/// `AWS_ENDPOINT_URL_DYNAMODB` applies).
pub async fn describe_key_schema(table: &str) -> Result<KeySchema, BaselineError> {
    let out = client()
        .await
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            client_error(
                &format!("DescribeTable of {table} (for its key schema; give --keys to skip it)"),
                &e,
            )
        })?;
    let desc = out
        .table
        .ok_or_else(|| BaselineError::Scan(format!("DescribeTable of {table} gave no table")))?;
    key_schema_of(table, desc.key_schema())
}

/// An item as DynamoDB JSON text, attribute names sorted: numbers as their exact
/// decimal text, binaries as base64 of their exact bytes, sets, lists and maps nested.
pub fn item_json(item: &HashMap<String, AttributeValue>) -> Result<String, String> {
    let mut out = String::new();
    write_map(item, &mut out)?;
    Ok(out)
}

fn write_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::Value::String(s.to_string()).to_string());
}

fn write_map(m: &HashMap<String, AttributeValue>, out: &mut String) -> Result<(), String> {
    let mut names: Vec<&String> = m.keys().collect();
    names.sort();
    out.push('{');
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(name, out);
        out.push(':');
        write_value(&m[name], out).map_err(|e| format!("{name}: {e}"))?;
    }
    out.push('}');
    Ok(())
}

fn write_list<T>(tag: &str, items: &[T], out: &mut String, mut each: impl FnMut(&T, &mut String)) {
    out.push_str("{\"");
    out.push_str(tag);
    out.push_str("\":[");
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(v, out);
    }
    out.push_str("]}");
}

fn write_value(v: &AttributeValue, out: &mut String) -> Result<(), String> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => {
            out.push_str("{\"S\":");
            write_str(s, out);
            out.push('}');
        }
        AttributeValue::N(n) => {
            out.push_str("{\"N\":");
            write_str(n, out);
            out.push('}');
        }
        AttributeValue::B(b) => {
            out.push_str("{\"B\":");
            write_str(&b64(b.as_ref()), out);
            out.push('}');
        }
        AttributeValue::Bool(b) => out.push_str(if *b {
            "{\"BOOL\":true}"
        } else {
            "{\"BOOL\":false}"
        }),
        AttributeValue::Null(b) => out.push_str(if *b {
            "{\"NULL\":true}"
        } else {
            "{\"NULL\":false}"
        }),
        AttributeValue::Ss(v) => write_list("SS", v, out, |s, o| write_str(s, o)),
        AttributeValue::Ns(v) => write_list("NS", v, out, |s, o| write_str(s, o)),
        AttributeValue::Bs(v) => write_list("BS", v, out, |b, o| write_str(&b64(b.as_ref()), o)),
        AttributeValue::L(items) => {
            out.push_str("{\"L\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out).map_err(|e| format!("[{i}]: {e}"))?;
            }
            out.push_str("]}");
        }
        AttributeValue::M(m) => {
            out.push_str("{\"M\":");
            write_map(m, out)?;
            out.push('}');
        }
        other => {
            return Err(format!(
                "an attribute type this version does not know: {other:?}"
            ))
        }
    }
    Ok(())
}

/// Read units per second, shared by the segments: each request waits until the bucket
/// is not in debt, then pays what DynamoDB says it consumed.
struct ReadLimit {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl ReadLimit {
    fn new(per_second: f64) -> Self {
        ReadLimit {
            per_second,
            state: Mutex::new((per_second, Instant::now())),
        }
    }

    async fn wait(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.per_second)
                    .min(self.per_second);
                s.1 = now;
                if s.0 >= 0.0 {
                    return;
                }
                Duration::from_secs_f64(-s.0 / self.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn pay(&self, units: f64) {
        self.state.lock().await.0 -= units;
    }
}

/// What `baseline --scan` is asked to do.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The table.
    pub table: String,
    /// Parallel Scan segments.
    pub segments: u32,
    /// Most read capacity units consumed per second, over all segments.
    pub max_read_units: f64,
}

/// Archives a table by a parallel, strongly consistent Scan, then writes its coverage
/// record (`scan-<start ms>`, complete from the Scan's end). Refused unless the table's
/// stream is enabled.
pub async fn run_scan(
    options: &ScanOptions,
    settings: &Settings,
    sink: Arc<dyn ObjectSink>,
) -> Result<BaselineReport, BaselineError> {
    let schemas = settings.schemas()?;
    settings.validate()?;
    let table = options.table.clone();
    crate::model::key::validate_table_name(&table).map_err(BaselineError::Scan)?;
    let client = client().await;
    let desc = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .map_err(|e| client_error(&format!("DescribeTable of {table}"), &e))?
        .table
        .ok_or_else(|| BaselineError::Scan(format!("DescribeTable of {table} gave no table")))?;
    let stream_on = desc
        .stream_specification()
        .map(|s| s.stream_enabled())
        .unwrap_or(false);
    if !stream_on {
        return Err(BaselineError::Scan(format!(
            "table {table} has no stream enabled: changes made while the Scan runs would reach the archive only through the table's stream; enable the stream and archive it first, then scan"
        )));
    }
    let keys = key_schema_of(&table, desc.key_schema())?;
    let start_ms = chrono::Utc::now().timestamp_millis();
    let segments = options.segments.max(1);
    let limit = Arc::new(ReadLimit::new(options.max_read_units.max(1.0)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<ChangeRecord>, BaselineError>>(
        segments as usize * 2,
    );
    let mut tasks = tokio::task::JoinSet::new();
    for segment in 0..segments {
        let (client, tx, limit, keys, table) = (
            client.clone(),
            tx.clone(),
            Arc::clone(&limit),
            keys.clone(),
            table.clone(),
        );
        tasks.spawn(async move {
            let r = scan_segment(
                &client, &table, &keys, segment, segments, start_ms, &limit, &tx,
            )
            .await;
            if let Err(e) = r {
                let _ = tx.send(Err(e)).await;
            }
        });
    }
    drop(tx);
    let mut archiver = Archiver::with_schemas(settings, Arc::clone(&sink), schemas)?;
    let source = format!("scan of {table}");
    let mut items = 0u64;
    let mut failure = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Ok(changes) => {
                for c in changes {
                    items += 1;
                    archiver.push(c, &source).await;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    while tasks.join_next().await.is_some() {}
    if let Some(e) = failure {
        return Err(e);
    }
    let end_ms = chrono::Utc::now().timestamp_millis();
    let report = archiver.finish().await;
    if !report.failed_files.is_empty() || report.rejected > 0 {
        return Err(BaselineError::Write(format!(
            "not every change of the scan was stored: {}",
            report
                .failed_files
                .iter()
                .map(|f| format!("{}: {}", f.location, f.error))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let mut ingest = IngestSummary {
        item_count: items,
        ..IngestSummary::default()
    };
    let root = sink.location("");
    for f in &report.files {
        ingest.change_count += f.records as u64;
        match f.outcome {
            PutOutcome::Written => ingest.objects_written += 1,
            PutOutcome::AlreadyPresent => ingest.objects_already_present += 1,
        }
        if let Some(k) = f.location.strip_prefix(&root) {
            ingest.objects.insert(k.trim_start_matches('/').to_string());
        }
    }
    let record = CoverageRecord {
        format: COVERAGE_FORMAT,
        table: table.clone(),
        kind: CoverageKind::Baseline,
        source: CoverageSource::Scan,
        export_arn: None,
        export_type: CoverageExportType::Scan,
        complete_from: Some(end_ms),
        window: None,
        item_count: ingest.item_count,
        change_count: ingest.change_count,
        objects: ingest.objects.iter().cloned().collect(),
        recorded_at: chrono::Utc::now().timestamp_millis(),
    };
    let (key, outcome) =
        super::record_coverage(sink.as_ref(), &record, &format!("scan-{start_ms}")).await?;
    Ok(BaselineReport::new(&record, &ingest, key, outcome))
}

#[allow(clippy::too_many_arguments)]
async fn scan_segment(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: &KeySchema,
    segment: u32,
    segments: u32,
    start_ms: i64,
    limit: &ReadLimit,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<ChangeRecord>, BaselineError>>,
) -> Result<(), BaselineError> {
    let mut start_key = None;
    loop {
        limit.wait().await;
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .segment(segment as i32)
            .total_segments(segments as i32)
            .set_exclusive_start_key(start_key.take())
            .send()
            .await
            .map_err(|e| client_error(&format!("Scan of {table} segment {segment}"), &e))?;
        let read_ms = chrono::Utc::now().timestamp_millis();
        let units = out
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or(0.0);
        limit.pay(units).await;
        let mut changes = Vec::with_capacity(out.items().len());
        for item in out.items() {
            changes.push(scan_change(table, keys, item, start_ms, read_ms)?);
        }
        if tx.send(Ok(changes)).await.is_err() {
            return Ok(());
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start_key = Some(k),
            _ => return Ok(()),
        }
    }
}

fn scan_change(
    table: &str,
    keys: &KeySchema,
    item: &HashMap<String, AttributeValue>,
    start_ms: i64,
    read_ms: i64,
) -> Result<ChangeRecord, BaselineError> {
    let bad = |e: String| BaselineError::Scan(format!("an item of {table}: {e}"));
    let image = item_json(item).map_err(bad)?;
    let key_json = keys.keys_of(&image).map_err(bad)?;
    let canonical = canonical_key(&key_json).map_err(bad)?;
    let record = format!("{{\"Item\":{image}}}");
    let record = Arc::new(record);
    let image_part = &record["{\"Item\":".len()..record.len() - 1];
    Ok(ChangeRecord {
        event_id: scan_event_id(table, start_ms, &canonical),
        event_name: EventName::Insert,
        table_name: table.to_string(),
        sequence_number: NON_STREAM_SEQUENCE_NUMBER.to_string(),
        approximate_creation_time_ms: read_ms,
        stream_view_type: Some("NEW_IMAGE".to_string()),
        size_bytes: None,
        ttl_delete: false,
        keys: JsonText::from(key_json),
        new_image: Some(JsonText::within(&record, image_part)),
        old_image: None,
        record: JsonText::within(&record, record.as_str()),
        source: SourceKind::Export,
        index: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    #[test]
    fn items_become_exact_dynamodb_json() {
        let n38 = "-0.12345678901234567890123456789012345678E-120";
        let item = HashMap::from([
            ("pk".to_string(), AttributeValue::S("ünï \"😀\"\n".into())),
            ("n".to_string(), AttributeValue::N(n38.into())),
            (
                "b".to_string(),
                AttributeValue::B(Blob::new(vec![0u8, 1, 255])),
            ),
            (
                "m".to_string(),
                AttributeValue::M(HashMap::from([
                    ("z".to_string(), AttributeValue::Null(true)),
                    ("a".to_string(), AttributeValue::Bool(false)),
                ])),
            ),
            (
                "l".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::Ss(vec!["x".into(), "y".into()]),
                    AttributeValue::Ns(vec!["1".into(), "1E+3".into()]),
                    AttributeValue::Bs(vec![Blob::new(vec![9u8])]),
                ]),
            ),
        ]);
        let json = item_json(&item).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"b":{{"B":"AAH/"}},"l":{{"L":[{{"SS":["x","y"]}},{{"NS":["1","1E+3"]}},{{"BS":["CQ=="]}}]}},"m":{{"M":{{"a":{{"BOOL":false}},"z":{{"NULL":true}}}}}},"n":{{"N":"{n38}"}},"pk":{{"S":"ünï \"😀\"\n"}}}}"#
            )
        );
        crate::decode::dynamo_json::validate_item(&json).unwrap();
        let c = scan_change("t1x", &KeySchema::parse("pk").unwrap(), &item, 5, 7).unwrap();
        assert_eq!(c.record.as_str(), format!("{{\"Item\":{json}}}"));
        assert_eq!(c.new_image.as_deref(), Some(json.as_str()));
        assert!(c.event_id.starts_with("baseline-"));
        assert_eq!(c.approximate_creation_time_ms, 7);
    }

    #[tokio::test]
    async fn the_read_limit_waits_for_debt_to_be_paid() {
        let l = ReadLimit::new(100.0);
        let t0 = Instant::now();
        l.wait().await;
        assert!(t0.elapsed() < Duration::from_millis(50));
        l.pay(125.0).await;
        l.wait().await;
        // 100 in hand, 125 paid: 25 in debt at 100 a second.
        assert!(
            t0.elapsed() >= Duration::from_millis(240),
            "{:?}",
            t0.elapsed()
        );
    }
}
