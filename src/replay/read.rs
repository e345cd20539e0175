//! Read: the rows of one archive file, Parquet or gzip JSON lines, as the few columns
//! replay needs — the `record` text exactly as archived, and `event_id`,
//! `approximate_creation_time`, `sequence_number`, `event_name` and `keys` to filter
//! and order by.

use std::io::{BufRead, BufReader};

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMillisecondType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A file whose rows cannot be read. `reason` says where and what.
#[derive(Debug, thiserror::Error)]
#[error("corrupt archive file {location}: {reason}")]
pub struct CorruptFile {
    /// The file (path or `s3://` URL).
    pub location: String,
    /// What is wrong, with the row or line when known.
    pub reason: String,
}

/// One archived change, as replay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `event_id`.
    pub event_id: String,
    /// `event_name`: INSERT, MODIFY or REMOVE.
    pub event_name: String,
    /// `sequence_number`, decimal digits.
    pub sequence_number: String,
    /// `approximate_creation_time`, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// `keys`, DynamoDB JSON text.
    pub keys: String,
    /// `record`, the change record text exactly as archived.
    pub record: String,
}

/// The archive file formats, told apart by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `.parquet`
    Parquet,
    /// `.json.gz`
    JsonlGz,
}

impl FileKind {
    /// The kind of an archive file name, or `None` for other files.
    pub fn of(key: &str) -> Option<Self> {
        if key.ends_with(".parquet") {
            Some(FileKind::Parquet)
        } else if key.ends_with(".json.gz") {
            Some(FileKind::JsonlGz)
        } else {
            None
        }
    }
}

/// Reads every row of one archive file. `location` names the file in errors.
pub fn read_rows(kind: FileKind, bytes: Vec<u8>, location: &str) -> Result<Vec<Row>, CorruptFile> {
    let corrupt = |reason: String| CorruptFile {
        location: location.to_string(),
        reason,
    };
    match kind {
        FileKind::Parquet => read_parquet(bytes).map_err(corrupt),
        FileKind::JsonlGz => read_jsonl_gz(&bytes).map_err(corrupt),
    }
}

const COLUMNS: [&str; 6] = [
    "event_id",
    "event_name",
    "sequence_number",
    "approximate_creation_time",
    "keys",
    "record",
];

fn read_parquet(bytes: Vec<u8>) -> Result<Vec<Row>, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| format!("not a Parquet file: {e}"))?;
    let fields = builder.parquet_schema().root_schema().get_fields();
    let mut roots = Vec::with_capacity(COLUMNS.len());
    for name in COLUMNS {
        let i = fields
            .iter()
            .position(|f| f.name() == name)
            .ok_or_else(|| format!("no column `{name}`"))?;
        roots.push(i);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("row {}: {e}", rows.len()))?;
        let text = |name: &str| {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column `{name}`"))?;
            col.as_string_opt::<i32>()
                .ok_or_else(|| format!("column `{name}` is {}, not a string", col.data_type()))
        };
        let (id, name, seq, keys, record) = (
            text("event_id")?,
            text("event_name")?,
            text("sequence_number")?,
            text("keys")?,
            text("record")?,
        );
        let time_col = batch
            .column_by_name("approximate_creation_time")
            .ok_or("no column `approximate_creation_time`")?;
        let time = time_col
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| {
                format!(
                    "column `approximate_creation_time` is {}, not TIMESTAMP(MILLIS)",
                    time_col.data_type()
                )
            })?;
        for i in 0..batch.num_rows() {
            let row = rows.len();
            for (col, name) in [
                (id as &dyn Array, "event_id"),
                (name, "event_name"),
                (seq, "sequence_number"),
                (keys, "keys"),
                (record, "record"),
                (time, "approximate_creation_time"),
            ] {
                if col.is_null(i) {
                    return Err(format!("row {row}: `{name}` is null"));
                }
            }
            rows.push(Row {
                event_id: id.value(i).to_string(),
                event_name: name.value(i).to_string(),
                sequence_number: seq.value(i).to_string(),
                time_ms: time.value(i),
                keys: keys.value(i).to_string(),
                record: record.value(i).to_string(),
            });
        }
    }
    Ok(rows)
}

#[derive(Deserialize)]
struct Line<'a> {
    event_id: String,
    event_name: String,
    sequence_number: String,
    approximate_creation_time: &'a str,
    #[serde(borrow)]
    keys: &'a RawValue,
    #[serde(borrow)]
    record: &'a RawValue,
}

fn read_jsonl_gz(bytes: &[u8]) -> Result<Vec<Row>, String> {
    let reader = BufReader::new(flate2::read::MultiGzDecoder::new(bytes));
    let mut rows = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line<'_> =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let time = chrono::DateTime::parse_from_rfc3339(parsed.approximate_creation_time).map_err(
            |e| {
                format!(
                    "line {}: approximate_creation_time {:?}: {e}",
                    n + 1,
                    parsed.approximate_creation_time
                )
            },
        )?;
        rows.push(Row {
            event_id: parsed.event_id,
            event_name: parsed.event_name,
            sequence_number: parsed.sequence_number,
            time_ms: time.timestamp_millis(),
            keys: parsed.keys.get().to_string(),
            record: parsed.record.get().to_string(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(FileKind::of("a/b.parquet"), Some(FileKind::Parquet));
        assert_eq!(FileKind::of("a/b.json.gz"), Some(FileKind::JsonlGz));
        assert_eq!(FileKind::of("a/b.json"), None);
    }

    #[test]
    fn corrupt_files_are_named() {
        for kind in [FileKind::Parquet, FileKind::JsonlGz] {
            let err = read_rows(kind, b"not an archive".to_vec(), "t/x").unwrap_err();
            assert_eq!(err.location, "t/x");
            assert!(err.to_string().contains("t/x"), "{err}");
        }
    }
}
