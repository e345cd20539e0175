//! Rows: every row of a file, read with every standard column, is re-derived from its
//! verbatim `record` (decoded again as the archiver decoded it when it arrived) and
//! compared column by column; Parquet files' other columns (typed columns and
//! `type_errors`, `compaction_version`) are compared with what they should hold. A
//! Parquet file's structure is checked strictly ([`super::parquet`]) and its pages are
//! decoded once.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use serde_json::value::RawValue;

use super::parquet::Structure;
use super::Reasons;
use crate::archive::export_row::ExportLine;
use crate::archive::reader::{self, Projection, Row};
use crate::decode::{decode_record, DecodeOptions, Decoded};
use crate::encode::parquet::standard_fields;
use crate::model::coverage::{
    is_non_stream, BASELINE_EVENT_PREFIX, EVENT_ID_HEX_DIGITS, EXPORT_EVENT_PREFIX,
};
use crate::model::Format;
use crate::model::{ChangeRecord, EventName, SourceKind};
use crate::schema::{SchemaSet, TableSchema};

/// The change a row's `record` gives when decoded again. A change that came through
/// Kinesis is first wrapped back into its Kinesis record (see
/// [`crate::archive::emit::stream_record`]); a record that names no table takes the
/// row's `table_name`, as `--table` gave it when it was archived.
///
/// A baseline or export row (sequence number `"0"`) holds an export line as its record,
/// not a stream record: see [`rederive_export`].
pub fn rederive(row: &Row) -> Result<ChangeRecord, String> {
    if is_non_stream(&row.sequence_number) {
        return rederive_export(row);
    }
    let text = crate::archive::emit::stream_record(
        row.record.clone(),
        &row.sequence_number,
        row.time_ms,
        &row.keys,
    );
    let raw: &RawValue =
        serde_json::from_str(&text).map_err(|e| format!("`record` is not JSON: {e}"))?;
    let opts = DecodeOptions {
        table: Some(row.table_name.clone()),
    };
    match decode_record(raw, 0, &opts) {
        Decoded::Change(c) => Ok(*c),
        Decoded::Rejected(r) => Err(format!("`record` does not decode: {}", r.error)),
    }
}

/// The change a baseline or export row's record (an export line) gives. From a full
/// export's or a Scan's `{"Item":...}`: an INSERT of the item, `NEW_IMAGE`, with the
/// item's values of the row's key attributes as keys; the time is the export's (or the
/// page read's), not in the line, so the row's. From an incremental line: its `Keys`
/// and images, the time of `Metadata.WriteTimeMicros`, REMOVE without a new image,
/// INSERT with a new image and no old one in a `NEW_AND_OLD_IMAGES` export, MODIFY
/// otherwise. The event ID must be `baseline-` (item lines) or `export-` (incremental
/// lines) and 32 lowercase hex digits.
pub fn rederive_export(row: &Row) -> Result<ChangeRecord, String> {
    let line = ExportLine::parse(&row.record)?;
    let (event_name, keys, time_ms, prefix, view) = match &line {
        ExportLine::Item { item } => (
            EventName::Insert,
            item_keys(item, &row.keys)?,
            row.time_ms,
            BASELINE_EVENT_PREFIX,
            Some("NEW_IMAGE".to_string()),
        ),
        ExportLine::Incremental {
            keys,
            new_image,
            old_image,
            write_time_micros,
        } => {
            let view = match row.stream_view_type.as_deref() {
                Some(v @ ("NEW_IMAGE" | "NEW_AND_OLD_IMAGES")) => v.to_string(),
                other => {
                    return Err(format!(
                        "an incremental export row's stream_view_type {other:?} is not NEW_IMAGE or NEW_AND_OLD_IMAGES"
                    ))
                }
            };
            let name = match (new_image, old_image) {
                (None, _) => EventName::Remove,
                (Some(_), None) if view == "NEW_AND_OLD_IMAGES" => EventName::Insert,
                _ => EventName::Modify,
            };
            (
                name,
                keys.clone(),
                write_time_micros.div_euclid(1000),
                EXPORT_EVENT_PREFIX,
                Some(view),
            )
        }
    };
    let hex = row.event_id.strip_prefix(prefix).unwrap_or_default();
    if hex.len() != EVENT_ID_HEX_DIGITS
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "event_id {:?} of a row from an export line is not {prefix} and {EVENT_ID_HEX_DIGITS} lowercase hex digits",
            row.event_id
        ));
    }
    Ok(ChangeRecord {
        event_id: row.event_id.clone(),
        event_name,
        table_name: row.table_name.clone(),
        sequence_number: row.sequence_number.clone(),
        approximate_creation_time_ms: time_ms,
        stream_view_type: view,
        size_bytes: None,
        ttl_delete: false,
        keys: keys.into(),
        new_image: line.new_image().map(|t| t.to_string().into()),
        old_image: line.old_image().map(|t| t.to_string().into()),
        record: row.record.clone().into(),
        source: SourceKind::Export,
        index: 0,
    })
}

/// The item's values of the key attributes named in `keys` (in their order there), as
/// DynamoDB JSON.
fn item_keys(item: &str, keys: &str) -> Result<String, String> {
    let names = member_names(keys).map_err(|e| format!("`keys` is not a JSON object: {e}"))?;
    let values: std::collections::HashMap<String, &RawValue> =
        serde_json::from_str(item).map_err(|e| format!("`Item` is not a JSON object: {e}"))?;
    let mut out = String::from("{");
    for (i, name) in names.iter().enumerate() {
        let value = values
            .get(name)
            .ok_or_else(|| format!("the item has no key attribute {name:?}"))?;
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(name.clone()).to_string());
        out.push(':');
        out.push_str(&crate::decode::minify_json(value.get()));
    }
    out.push('}');
    Ok(out)
}

/// The member names of a JSON object, in order.
fn member_names(text: &str) -> Result<Vec<String>, serde_json::Error> {
    struct Names;
    impl<'de> serde::de::Visitor<'de> for Names {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                out.push(k);
            }
            Ok(out)
        }
    }
    serde::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_str(text), Names)
}

/// The columns of `row` that differ from its re-derived change.
pub fn differing_columns(row: &Row, change: &ChangeRecord) -> Vec<&'static str> {
    let opt = |a: &Option<String>, b: Option<&str>| a.as_deref() != b;
    [
        ("event_id", row.event_id != change.event_id),
        ("event_name", row.event_name != change.event_name.as_str()),
        ("table_name", row.table_name != change.table_name),
        (
            "sequence_number",
            row.sequence_number != change.sequence_number,
        ),
        (
            "approximate_creation_time",
            row.time_ms != change.approximate_creation_time_ms,
        ),
        (
            "stream_view_type",
            row.stream_view_type != change.stream_view_type,
        ),
        ("size_bytes", row.size_bytes != change.size_bytes),
        ("ttl_delete", row.ttl_delete != change.ttl_delete),
        ("keys", row.keys != change.keys.as_str()),
        (
            "new_image",
            opt(&row.new_image, change.new_image.as_deref()),
        ),
        (
            "old_image",
            opt(&row.old_image, change.old_image.as_deref()),
        ),
        ("record", row.record != change.record.as_str()),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// The columns a Parquet file holds beyond the standard ones.
#[derive(Debug, Clone, Copy)]
pub struct Extra<'a> {
    /// `None`: typed columns not checked; `Some(None)`: the table has no schema, so
    /// there must be none; `Some(Some(s))`: exactly `s`'s typed columns and
    /// `type_errors`.
    pub schema: Option<Option<&'a TableSchema>>,
    /// The `compaction_version` every row must carry (compacted files).
    pub version: Option<&'a str>,
}

impl<'a> Extra<'a> {
    /// What a file of `table` carries, given the schemas (if typed columns are checked)
    /// and the compaction version (compacted files).
    pub fn of(table: &str, schemas: Option<&'a SchemaSet>, version: Option<&'a str>) -> Self {
        Extra {
            schema: schemas.map(|s| s.get(table)),
            version,
        }
    }
}

/// One row read and re-derived.
pub struct CheckedRow {
    /// 0-based row number in the file.
    pub number: usize,
    /// The row as read.
    pub row: Row,
    /// Its re-derived change, if its record decodes.
    pub change: Option<ChangeRecord>,
}

/// What reading a file found beside its rows' problems.
#[derive(Debug, Clone, Default)]
pub struct FileRead {
    /// Rows read.
    pub rows: u64,
    /// A Parquet file's structure (`None` for gzip JSON lines).
    pub structure: Option<Structure>,
}

/// Reads every row of a file with every standard column, re-derives each and reports
/// the rows that differ; `each` gets every row in file order. A Parquet file's
/// structure is checked first ([`super::parquet::check`], its schema beginning with
/// the standard columns), then it is decoded once, batch by batch, and each batch's
/// other columns are checked against `extra`.
///
/// Bytes that make the Parquet crate panic make the file bad, not the run: every
/// Parquet read goes through the reader's guard ([`reader::parquet_guard`]).
pub fn check_file(
    format: Format,
    bytes: Vec<u8>,
    location: &str,
    extra: Extra<'_>,
    reasons: &mut Reasons,
    mut each: impl FnMut(CheckedRow, &mut Reasons),
) -> FileRead {
    let mut number = 0usize;
    let mut checked = |row: Row, reasons: &mut Reasons| {
        let change = rederive_checked(&row, number, reasons);
        let c = CheckedRow {
            number,
            row,
            change,
        };
        number += 1;
        c
    };
    let mut read = FileRead::default();
    match format {
        Format::JsonlGz => {
            let rows = match reader::rows(format, bytes, location, Projection::ALL) {
                Ok(r) => r,
                Err(e) => {
                    reasons.push(e.reason);
                    return read;
                }
            };
            for row in rows {
                match row {
                    Ok(row) => {
                        let c = checked(row, reasons);
                        read.rows += 1;
                        each(c, reasons);
                    }
                    Err(e) => {
                        reasons.push(e.reason);
                        break;
                    }
                }
            }
        }
        Format::Parquet => {
            let structure = super::parquet::check(&bytes, &standard_fields());
            for problem in &structure.problems {
                reasons.push(format!("Parquet structure: {problem}"));
            }
            read.structure = Some(structure);
            let batches = match reader::parquet_all_batches(bytes, location) {
                Ok(b) => b,
                Err(e) => {
                    reasons.push(e.reason);
                    return read;
                }
            };
            for batch in batches {
                let rows = batch.and_then(|b| reader::batch_rows(&b).map(|rows| (b, rows)));
                let (batch, rows) = match rows {
                    Ok(r) => r,
                    Err(e) => {
                        reasons.push(format!("after row {}: {e}", read.rows));
                        return read;
                    }
                };
                let chunk: Vec<CheckedRow> =
                    rows.into_iter().map(|row| checked(row, reasons)).collect();
                check_extra_columns(&batch, &chunk, extra, read.rows, reasons);
                read.rows += chunk.len() as u64;
                chunk.into_iter().for_each(|c| each(c, reasons));
            }
        }
    }
    read
}

/// A row's re-derived change, with the columns that differ from it reported.
fn rederive_checked(row: &Row, number: usize, reasons: &mut Reasons) -> Option<ChangeRecord> {
    match rederive(row) {
        Ok(c) => {
            let differ = differing_columns(row, &c);
            if !differ.is_empty() {
                reasons.push(format!(
                    "row {number} (event_id {:?}): {} differ from its record",
                    row.event_id,
                    differ.join(", ")
                ));
            }
            Some(c)
        }
        Err(why) => {
            reasons.push(format!("row {number} (event_id {:?}): {why}", row.event_id));
            None
        }
    }
}

/// Checks one Parquet batch's columns beyond the standard ones.
fn check_extra_columns(
    batch: &RecordBatch,
    chunk: &[CheckedRow],
    extra: Extra<'_>,
    first_row: u64,
    reasons: &mut Reasons,
) {
    let schema = batch.schema();
    let standard = crate::model::columns::STANDARD_COLUMNS.len();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if let Some(version) = extra.version {
        match batch
            .column_by_name(crate::model::columns::VERSION_COLUMN)
            .and_then(|c| c.as_string_opt::<i32>().cloned())
        {
            None => reasons.push(format!(
                "no text column `{}`",
                crate::model::columns::VERSION_COLUMN
            )),
            Some(values) => {
                if let Some(i) =
                    (0..values.len()).find(|&i| values.is_null(i) || values.value(i) != version)
                {
                    reasons.push(format!(
                        "row {}: `{}` is not the version {version}",
                        first_row + i as u64,
                        crate::model::columns::VERSION_COLUMN
                    ));
                }
            }
        }
    }
    let Some(schema_of_table) = extra.schema else {
        return;
    };
    let mut want: Vec<String> = crate::model::columns::STANDARD_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let fields = schema_of_table
        .map(TableSchema::arrow_fields)
        .unwrap_or_default();
    want.extend(fields.iter().map(|f| f.name().clone()));
    if extra.version.is_some() {
        want.push(crate::model::columns::VERSION_COLUMN.to_string());
    }
    if names != want {
        reasons.push(format!(
            "columns are [{}], not [{}]",
            names.join(", "),
            want.join(", ")
        ));
        return;
    }
    let Some(table_schema) = schema_of_table else {
        return;
    };
    let changes: Option<Vec<ChangeRecord>> = chunk.iter().map(|c| c.change.clone()).collect();
    let Some(changes) = changes else {
        // A row whose record does not decode is already reported.
        return;
    };
    let expected = match crate::schema::flatten::typed_columns(table_schema, &changes) {
        Ok(e) => e,
        Err(e) => {
            reasons.push(format!("typed columns cannot be re-derived: {e}"));
            return;
        }
    };
    for (i, (field, want)) in fields.iter().zip(expected).enumerate() {
        let got: &ArrayRef = batch.column(standard + i);
        if !same_array(got, &want) {
            reasons.push(format!(
                "rows {}..{}: typed column `{}` differs from its records",
                first_row,
                first_row + chunk.len() as u64,
                field.name()
            ));
        }
    }
}

fn same_array(a: &ArrayRef, b: &ArrayRef) -> bool {
    a.data_type() == b.data_type() && Arc::clone(a).to_data() == b.to_data()
}
