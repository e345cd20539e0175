//! The JSON-line row parser: one line of a gzip JSON-lines archive file (as
//! [`crate::encode::jsonl::write_line`] writes it) read into a [`Row`] with the projected
//! columns, every value kept as raw JSON until it is projected.

use std::io::BufRead;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::reader::{Column, Projection, Row};

/// One JSON line, every value kept as raw JSON until it is projected.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    event_name: Option<&'a RawValue>,
    #[serde(borrow)]
    table_name: Option<&'a RawValue>,
    #[serde(borrow)]
    sequence_number: Option<&'a RawValue>,
    #[serde(borrow)]
    approximate_creation_time: Option<&'a RawValue>,
    #[serde(borrow)]
    stream_view_type: Option<&'a RawValue>,
    #[serde(borrow)]
    size_bytes: Option<&'a RawValue>,
    #[serde(borrow)]
    ttl_delete: Option<&'a RawValue>,
    #[serde(borrow)]
    keys: Option<&'a RawValue>,
    #[serde(borrow)]
    new_image: Option<&'a RawValue>,
    #[serde(borrow)]
    old_image: Option<&'a RawValue>,
    #[serde(borrow)]
    record: Option<&'a RawValue>,
}

impl<'a> Line<'a> {
    fn get(&self, column: Column) -> Option<&'a RawValue> {
        match column {
            Column::EventId => self.event_id,
            Column::EventName => self.event_name,
            Column::TableName => self.table_name,
            Column::SequenceNumber => self.sequence_number,
            Column::ApproximateCreationTime => self.approximate_creation_time,
            Column::StreamViewType => self.stream_view_type,
            Column::SizeBytes => self.size_bytes,
            Column::TtlDelete => self.ttl_delete,
            Column::Keys => self.keys,
            Column::NewImage => self.new_image,
            Column::OldImage => self.old_image,
            Column::Record => self.record,
        }
        .filter(|v| v.get() != "null")
    }
}

/// The next non-blank line of `reader` as a row; `line` counts the lines read, and
/// errors name it. `None` at the end.
pub(super) fn next_line(
    reader: &mut impl BufRead,
    text: &mut String,
    line: &mut usize,
    projection: Projection,
) -> Result<Option<Row>, String> {
    loop {
        text.clear();
        *line += 1;
        let n = reader
            .read_line(text)
            .map_err(|e| format!("line {line}: {e}"))?;
        if n == 0 {
            return Ok(None);
        }
        if text.trim().is_empty() {
            continue;
        }
        return parse_line(text, projection)
            .map(Some)
            .map_err(|e| format!("line {line}: {e}"));
    }
}

/// Parses one archive JSON line (as [`crate::encode::jsonl::write_line`] writes it)
/// into a row with the projected columns.
pub fn parse_line(text: &str, projection: Projection) -> Result<Row, String> {
    let parsed: Line<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut row = Row::default();
    for column in projection.columns() {
        let name = column.name();
        let Some(raw) = parsed.get(column) else {
            if column.nullable() {
                continue;
            }
            return Err(format!("`{name}` is missing or null"));
        };
        let string = || {
            serde_json::from_str::<String>(raw.get())
                .map_err(|_| format!("`{name}` is {}, not a string", raw.get()))
        };
        match column {
            Column::EventId => row.event_id = string()?,
            Column::EventName => row.event_name = string()?,
            Column::TableName => row.table_name = string()?,
            Column::SequenceNumber => row.sequence_number = string()?,
            Column::ApproximateCreationTime => {
                let s = string()?;
                row.time_ms = chrono::DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| format!("{name} {s:?}: {e}"))?
                    .timestamp_millis();
            }
            Column::StreamViewType => row.stream_view_type = Some(string()?),
            Column::SizeBytes => {
                row.size_bytes = Some(
                    serde_json::from_str::<i64>(raw.get())
                        .map_err(|_| format!("`{name}` is {}, not an integer", raw.get()))?,
                )
            }
            Column::TtlDelete => {
                row.ttl_delete = serde_json::from_str::<bool>(raw.get())
                    .map_err(|_| format!("`{name}` is {}, not a boolean", raw.get()))?
            }
            Column::Keys => row.keys = raw.get().to_string(),
            Column::NewImage => row.new_image = Some(raw.get().to_string()),
            Column::OldImage => row.old_image = Some(raw.get().to_string()),
            Column::Record => row.record = raw.get().to_string(),
        }
    }
    Ok(row)
}
