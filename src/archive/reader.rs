//! Reader: the rows of one archive file, Parquet or gzip JSON lines (every gzip member,
//! as written by several appends or tools), with every standard column or a
//! [`Projection`] of them, streamed row by row; Parquet files also as Arrow record
//! batches. Every reader of the archive (replay, schema infer, compaction, verify,
//! restore) reads through here.

use std::io::{BufReader, Cursor};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, TimestampMillisecondType};
use flate2::read::MultiGzDecoder;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::model::Format;
use crate::model::{ChangeRecord, EventName, SourceKind};

use super::jsonl_row::next_line;
pub use super::jsonl_row::parse_line;

/// A file whose rows cannot be read. `reason` says where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt archive file {location}: {reason}")]
pub struct CorruptFile {
    /// The file (path or `s3://` URL).
    pub location: String,
    /// What is wrong, with the row or line when known.
    pub reason: String,
}

/// The archive's standard columns (see [`crate::model::columns::STANDARD_COLUMNS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `event_id`
    EventId,
    /// `event_name`
    EventName,
    /// `table_name`
    TableName,
    /// `sequence_number`
    SequenceNumber,
    /// `approximate_creation_time`
    ApproximateCreationTime,
    /// `stream_view_type`
    StreamViewType,
    /// `size_bytes`
    SizeBytes,
    /// `ttl_delete`
    TtlDelete,
    /// `keys`
    Keys,
    /// `new_image`
    NewImage,
    /// `old_image`
    OldImage,
    /// `record`
    Record,
}

impl Column {
    /// Every standard column, in file order.
    pub const ALL: [Column; 12] = [
        Column::EventId,
        Column::EventName,
        Column::TableName,
        Column::SequenceNumber,
        Column::ApproximateCreationTime,
        Column::StreamViewType,
        Column::SizeBytes,
        Column::TtlDelete,
        Column::Keys,
        Column::NewImage,
        Column::OldImage,
        Column::Record,
    ];

    /// The column's name in the files.
    pub fn name(self) -> &'static str {
        crate::model::columns::STANDARD_COLUMNS[self as usize]
    }

    /// Can the column hold nulls?
    pub fn nullable(self) -> bool {
        matches!(
            self,
            Column::StreamViewType | Column::SizeBytes | Column::NewImage | Column::OldImage
        )
    }
}

/// The standard columns a read fills; the others are left empty in each [`Row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projection(u16);

impl Projection {
    /// Every standard column.
    pub const ALL: Projection = Projection((1 << 12) - 1);

    /// What replay and restore need: the ordering fields, the item's keys and the
    /// record text.
    pub const CHANGES: Projection = Projection::of(&[
        Column::EventId,
        Column::EventName,
        Column::SequenceNumber,
        Column::ApproximateCreationTime,
        Column::Keys,
        Column::Record,
    ]);

    /// [`Projection::CHANGES`] and the stream view type, which a baseline or export row's
    /// synthetic stream record carries ([`crate::archive::export_row`]).
    pub const CHANGES_AND_VIEW: Projection = Projection::of(&[
        Column::EventId,
        Column::EventName,
        Column::SequenceNumber,
        Column::ApproximateCreationTime,
        Column::StreamViewType,
        Column::Keys,
        Column::Record,
    ]);

    /// The given columns.
    pub const fn of(columns: &[Column]) -> Projection {
        let mut bits = 0u16;
        let mut i = 0;
        while i < columns.len() {
            bits |= 1 << columns[i] as u16;
            i += 1;
        }
        Projection(bits)
    }

    /// Does the projection hold `column`?
    pub fn contains(self, column: Column) -> bool {
        self.0 & (1 << column as u16) != 0
    }

    /// The projected columns, in file order.
    pub fn columns(self) -> impl Iterator<Item = Column> {
        Column::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

/// One archived change. Columns outside the read's projection are empty: `""`, `None`,
/// `false`, time 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// `event_id`.
    pub event_id: String,
    /// `event_name`: INSERT, MODIFY or REMOVE.
    pub event_name: String,
    /// `table_name`.
    pub table_name: String,
    /// `sequence_number`, decimal digits.
    pub sequence_number: String,
    /// `approximate_creation_time`, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// `stream_view_type`.
    pub stream_view_type: Option<String>,
    /// `size_bytes`.
    pub size_bytes: Option<i64>,
    /// `ttl_delete`.
    pub ttl_delete: bool,
    /// `keys`, DynamoDB JSON text.
    pub keys: String,
    /// `new_image`, DynamoDB JSON text.
    pub new_image: Option<String>,
    /// `old_image`, DynamoDB JSON text.
    pub old_image: Option<String>,
    /// `record`, the change record text exactly as archived.
    pub record: String,
}

impl Row {
    /// The change this row holds, as the encoders take it (every column must have been
    /// read). The texts are the row's own.
    pub fn into_change(self) -> Result<ChangeRecord, String> {
        let event_name = EventName::parse(&self.event_name).ok_or_else(|| {
            format!(
                "event_name {:?} is not INSERT, MODIFY or REMOVE",
                self.event_name
            )
        })?;
        Ok(ChangeRecord {
            event_id: self.event_id,
            event_name,
            table_name: self.table_name,
            sequence_number: self.sequence_number,
            approximate_creation_time_ms: self.time_ms,
            stream_view_type: self.stream_view_type,
            size_bytes: self.size_bytes,
            ttl_delete: self.ttl_delete,
            keys: self.keys.into(),
            new_image: self.new_image.map(Into::into),
            old_image: self.old_image.map(Into::into),
            record: self.record.into(),
            // Not a column: the encoders do not use it.
            source: SourceKind::DynamoDbStream,
            index: 0,
        })
    }
}

/// Reads every row of one archive file into memory. `location` names the file in
/// errors.
pub fn read_rows(
    format: Format,
    bytes: Vec<u8>,
    location: &str,
    projection: Projection,
) -> Result<Vec<Row>, CorruptFile> {
    rows(format, bytes, location, projection)?.collect()
}

/// Streams the rows of one archive file. The first error ends the stream.
pub fn rows(
    format: Format,
    bytes: Vec<u8>,
    location: &str,
    projection: Projection,
) -> Result<Rows, CorruptFile> {
    let inner = match format {
        Format::Parquet => Inner::Parquet(ParquetRows {
            reader: parquet_batches(bytes, location, projection)?,
            batch: None,
            next: 0,
            row: 0,
        }),
        Format::JsonlGz => Inner::Jsonl(Box::new(BufReader::new(MultiGzDecoder::new(
            Cursor::new(bytes),
        )))),
    };
    Ok(Rows {
        inner,
        location: location.to_string(),
        projection,
        line: 0,
        done: false,
        text: String::new(),
    })
}

/// The Parquet panic guard, which every Parquet read goes through: the Parquet crate
/// panics on some corrupt footers and pages, and such bytes are a corrupt file like any
/// other, never a crashed thread or process. The panic's message, if any, is returned.
pub fn parquet_guard<T>(read: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// The Arrow record batches of a Parquet archive file, streamed. A page that makes the
/// Parquet crate panic ends the stream with an error, as any other undecodable page
/// does ([`parquet_guard`]).
pub struct ParquetBatches {
    reader: ParquetRecordBatchReader,
    done: bool,
}

impl Iterator for ParquetBatches {
    type Item = Result<RecordBatch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let error = match parquet_guard(|| self.reader.next()) {
            Ok(Some(Ok(batch))) => return Some(Ok(batch)),
            Ok(None) => return None,
            Ok(Some(Err(e))) => e.to_string(),
            Err(_) => "its pages cannot be decoded".to_string(),
        };
        self.done = true;
        Some(Err(error))
    }
}

/// The Arrow record batches of a Parquet archive file, with the projected standard
/// columns (and only those). A missing column is an error.
pub fn parquet_batches(
    bytes: Vec<u8>,
    location: &str,
    projection: Projection,
) -> Result<ParquetBatches, CorruptFile> {
    let corrupt = |reason: String| CorruptFile {
        location: location.to_string(),
        reason,
    };
    let builder = parquet_builder(bytes, location)?;
    let mask = projection_mask(builder.parquet_schema(), projection).map_err(corrupt)?;
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(ParquetBatches {
        reader,
        done: false,
    })
}

/// The mask that reads `projection`'s columns of a file with this schema; a missing
/// column is named.
fn projection_mask(
    schema: &parquet::schema::types::SchemaDescriptor,
    projection: Projection,
) -> Result<ProjectionMask, String> {
    let fields = schema.root_schema().get_fields();
    let mut roots = Vec::new();
    for column in projection.columns() {
        let i = fields
            .iter()
            .position(|f| f.name() == column.name())
            .ok_or_else(|| format!("no column `{}`", column.name()))?;
        roots.push(i);
    }
    Ok(ProjectionMask::roots(schema, roots))
}

/// Threads that decode archive objects at once (compaction's readers and encoders,
/// restore's scans): one per core, at most 4.
pub fn worker_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// The Arrow record batches of a Parquet archive file, with the projected standard
/// columns of the rows numbered `selected` (sorted, from 0, in file order) only: the
/// pages of the other rows are skipped where the file allows. A missing column is an
/// error.
pub fn parquet_selected_batches(
    bytes: Vec<u8>,
    location: &str,
    projection: Projection,
    selected: &[usize],
) -> Result<ParquetBatches, CorruptFile> {
    use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
    let corrupt = |reason: String| CorruptFile {
        location: location.to_string(),
        reason,
    };
    let builder = parquet_builder(bytes, location)?;
    let total = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut selectors = Vec::new();
    let mut at = 0;
    for &row in selected {
        if row < at || row >= total {
            return Err(corrupt(format!(
                "row {row} is not in the file (it holds {total} rows)"
            )));
        }
        if row > at {
            selectors.push(RowSelector::skip(row - at));
        }
        selectors.push(RowSelector::select(1));
        at = row + 1;
    }
    if total > at {
        selectors.push(RowSelector::skip(total - at));
    }
    let mask = projection_mask(builder.parquet_schema(), projection).map_err(corrupt)?;
    let reader = builder
        .with_projection(mask)
        .with_row_selection(RowSelection::from(selectors))
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(ParquetBatches {
        reader,
        done: false,
    })
}

/// The Arrow record batches of a Parquet file with every column it has, the standard
/// ones and any others (typed columns, `compaction_version`).
pub fn parquet_all_batches(bytes: Vec<u8>, location: &str) -> Result<ParquetBatches, CorruptFile> {
    let reader = parquet_builder(bytes, location)?
        .build()
        .map_err(|e| CorruptFile {
            location: location.to_string(),
            reason: format!("not a Parquet file: {e}"),
        })?;
    Ok(ParquetBatches {
        reader,
        done: false,
    })
}

/// Reads a Parquet file's footer. The Parquet crate panics on some corrupt footers;
/// that is a corrupt file too.
fn parquet_builder(
    bytes: Vec<u8>,
    location: &str,
) -> Result<ParquetRecordBatchReaderBuilder<bytes::Bytes>, CorruptFile> {
    let corrupt = |reason: String| CorruptFile {
        location: location.to_string(),
        reason: format!("not a Parquet file: {reason}"),
    };
    let bytes = bytes::Bytes::from(bytes);
    match parquet_guard(|| ParquetRecordBatchReaderBuilder::try_new(bytes)) {
        Ok(built) => built.map_err(|e| corrupt(e.to_string())),
        Err(_) => Err(corrupt("its footer cannot be decoded".to_string())),
    }
}

/// The decompressed bytes of a gzip object, every member (a `.json.gz` data file or a
/// `_rejected/` object).
pub fn gunzip(bytes: &[u8], location: &str) -> Result<Vec<u8>, CorruptFile> {
    use std::io::Read as _;
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| CorruptFile {
            location: location.to_string(),
            reason: format!("not gzip: {e}"),
        })?;
    Ok(out)
}

/// The rows of one archive file, streamed.
pub struct Rows {
    inner: Inner,
    location: String,
    projection: Projection,
    line: usize,
    done: bool,
    text: String,
}

enum Inner {
    Parquet(ParquetRows),
    Jsonl(Box<BufReader<MultiGzDecoder<Cursor<Vec<u8>>>>>),
}

struct ParquetRows {
    reader: ParquetBatches,
    batch: Option<Columns>,
    next: usize,
    row: usize,
}

impl Iterator for Rows {
    type Item = Result<Row, CorruptFile>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match &mut self.inner {
            Inner::Parquet(p) => p.next_row(self.projection),
            Inner::Jsonl(reader) => {
                next_line(reader, &mut self.text, &mut self.line, self.projection)
            }
        };
        match result {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(reason) => {
                self.done = true;
                Some(Err(CorruptFile {
                    location: self.location.clone(),
                    reason,
                }))
            }
        }
    }
}

/// The projected columns of one Parquet batch, type-checked.
struct Columns {
    rows: usize,
    cols: Vec<(Column, ArrayRef)>,
}

impl Columns {
    fn new(batch: &RecordBatch, projection: Projection) -> Result<Self, String> {
        let mut cols = Vec::new();
        for column in projection.columns() {
            let name = column.name();
            let array = batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column `{name}`"))?;
            let want = match column {
                Column::ApproximateCreationTime => "TIMESTAMP(MILLIS)",
                Column::SizeBytes => "INT64",
                Column::TtlDelete => "BOOLEAN",
                _ => "a string",
            };
            let ok = match column {
                Column::ApproximateCreationTime => array
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .is_some(),
                Column::SizeBytes => array.as_primitive_opt::<Int64Type>().is_some(),
                Column::TtlDelete => array.data_type() == &DataType::Boolean,
                _ => array.as_string_opt::<i32>().is_some(),
            };
            if !ok {
                return Err(format!(
                    "column `{name}` is {}, not {want}",
                    array.data_type()
                ));
            }
            cols.push((column, array.clone()));
        }
        Ok(Columns {
            rows: batch.num_rows(),
            cols,
        })
    }

    fn row(&self, i: usize, row_number: usize) -> Result<Row, String> {
        let mut row = Row::default();
        for (column, array) in &self.cols {
            if array.is_null(i) {
                if column.nullable() {
                    continue;
                }
                return Err(format!("row {row_number}: `{}` is null", column.name()));
            }
            let text = || array.as_string::<i32>().value(i).to_string();
            match column {
                Column::EventId => row.event_id = text(),
                Column::EventName => row.event_name = text(),
                Column::TableName => row.table_name = text(),
                Column::SequenceNumber => row.sequence_number = text(),
                Column::ApproximateCreationTime => {
                    row.time_ms = array.as_primitive::<TimestampMillisecondType>().value(i)
                }
                Column::StreamViewType => row.stream_view_type = Some(text()),
                Column::SizeBytes => {
                    row.size_bytes = Some(array.as_primitive::<Int64Type>().value(i))
                }
                Column::TtlDelete => row.ttl_delete = array.as_boolean().value(i),
                Column::Keys => row.keys = text(),
                Column::NewImage => row.new_image = Some(text()),
                Column::OldImage => row.old_image = Some(text()),
                Column::Record => row.record = text(),
            }
        }
        Ok(row)
    }
}

/// Every row of a record batch holding the standard columns (by name; others are
/// ignored).
pub fn batch_rows(batch: &RecordBatch) -> Result<Vec<Row>, String> {
    let cols = Columns::new(batch, Projection::ALL)?;
    (0..cols.rows).map(|i| cols.row(i, i + 1)).collect()
}

impl ParquetRows {
    fn next_row(&mut self, projection: Projection) -> Result<Option<Row>, String> {
        loop {
            if let Some(cols) = &self.batch {
                if self.next < cols.rows {
                    let row = cols.row(self.next, self.row)?;
                    self.next += 1;
                    self.row += 1;
                    return Ok(Some(row));
                }
            }
            match self.reader.next() {
                None => return Ok(None),
                Some(Err(e)) => return Err(format!("row {}: {e}", self.row)),
                Some(Ok(batch)) => {
                    self.batch = Some(Columns::new(&batch, projection)?);
                    self.next = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_keys() {
        assert_eq!(Format::of_key("a/b.parquet"), Some(Format::Parquet));
        assert_eq!(Format::of_key("a/b.json.gz"), Some(Format::JsonlGz));
        assert_eq!(Format::of_key("a/b.json"), None);
    }

    #[test]
    fn projections() {
        assert!(Projection::ALL.columns().eq(Column::ALL));
        assert!(Projection::CHANGES.contains(Column::Record));
        assert!(!Projection::CHANGES.contains(Column::NewImage));
        for (c, name) in Column::ALL
            .iter()
            .zip(crate::model::columns::STANDARD_COLUMNS)
        {
            assert_eq!(c.name(), name);
        }
    }

    #[test]
    fn corrupt_files_are_named() {
        for format in [Format::Parquet, Format::JsonlGz] {
            let err =
                read_rows(format, b"not an archive".to_vec(), "t/x", Projection::ALL).unwrap_err();
            assert_eq!(err.location, "t/x");
            assert!(err.to_string().contains("t/x"), "{err}");
        }
    }

    fn gz(text: &str) -> Vec<u8> {
        crate::encode::jsonl::gzip(text.as_bytes()).unwrap()
    }

    const LINE: &str = r#"{"event_id":"e1","event_name":"INSERT","table_name":"t_1","sequence_number":"100","approximate_creation_time":"2026-01-01T00:00:01.500Z","stream_view_type":null,"size_bytes":12,"ttl_delete":false,"keys":{"pk":{"S":"a"}},"new_image":{"pk":{"S":"a"}},"old_image":null,"record":{"eventID":"e1"}}"#;

    #[test]
    fn every_gzip_member_is_read() {
        let mut bytes = gz(&format!("{LINE}\n"));
        bytes.extend(gz(&format!("{}\n", LINE.replace("e1", "e2"))));
        let rows = read_rows(Format::JsonlGz, bytes, "x", Projection::ALL).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].event_id, "e1");
        assert_eq!(rows[1].event_id, "e2");
        assert_eq!(rows[1].record, r#"{"eventID":"e2"}"#);
        assert_eq!(rows[0].time_ms, 1_767_225_601_500);
        assert_eq!(rows[0].size_bytes, Some(12));
        assert_eq!(rows[0].new_image.as_deref(), Some(r#"{"pk":{"S":"a"}}"#));
        assert_eq!(rows[0].old_image, None);
    }

    #[test]
    fn rows_become_changes_that_write_the_same_line() {
        let row = parse_line(LINE, Projection::ALL).unwrap();
        let change = row.clone().into_change().unwrap();
        let mut line = Vec::new();
        crate::encode::jsonl::write_line(&mut line, &change);
        assert_eq!(String::from_utf8(line).unwrap(), format!("{LINE}\n"));
        let bad = Row {
            event_name: "UPSERT".into(),
            ..row
        };
        assert!(bad.into_change().unwrap_err().contains("UPSERT"));
    }

    #[test]
    fn projections_leave_other_columns_empty_and_errors_name_the_line() {
        let only = Projection::of(&[Column::EventId]);
        let rows = read_rows(Format::JsonlGz, gz(&format!("\n{LINE}\n")), "x", only).unwrap();
        assert_eq!(
            rows,
            vec![Row {
                event_id: "e1".into(),
                ..Row::default()
            }]
        );
        let bad = format!(
            "{LINE}\n{}\n",
            LINE.replace(r#""keys":{"pk":{"S":"a"}},"#, "")
        );
        let err = read_rows(Format::JsonlGz, gz(&bad), "x", Projection::ALL).unwrap_err();
        assert!(
            err.reason.contains("line 2") && err.reason.contains("keys"),
            "{err}"
        );
        // Not projected, not needed.
        assert!(read_rows(Format::JsonlGz, gz(&bad), "x", only).is_ok());
    }
}
