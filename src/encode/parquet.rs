//! Parquet: the archive columns built directly with Arrow builders, written with one
//! `ArrowWriter` per file (zstd, row groups of [`ROW_GROUP_ROWS`], the archiver's version
//! in the key-value metadata).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::model::ChangeRecord;
use crate::schema::TableSchema;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Key-value metadata key holding the archiver's version.
pub const VERSION_KEY: &str = "ddb_archiver.version";

/// A Parquet encoding failure, before the partition is known.
#[derive(Debug)]
pub enum Error {
    /// Arrow refused the columns.
    Arrow(arrow::error::ArrowError),
    /// The Parquet writer failed.
    Parquet(parquet::errors::ParquetError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Arrow(e) => write!(f, "building Arrow columns: {e}"),
            Error::Parquet(e) => write!(f, "writing Parquet: {e}"),
        }
    }
}

impl Error {
    /// Attaches the partition being encoded.
    pub fn at(self, partition: &str) -> super::EncodeError {
        let partition = partition.to_string();
        match self {
            Error::Arrow(source) => super::EncodeError::Arrow { partition, source },
            Error::Parquet(source) => super::EncodeError::Parquet { partition, source },
        }
    }
}

/// The standard archive columns, in order.
pub fn standard_fields() -> Vec<Field> {
    vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("sequence_number", DataType::Utf8, false),
        Field::new(
            "approximate_creation_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("stream_view_type", DataType::Utf8, true),
        Field::new("size_bytes", DataType::Int64, true),
        Field::new("ttl_delete", DataType::Boolean, false),
        Field::new("keys", DataType::Utf8, false),
        Field::new("new_image", DataType::Utf8, true),
        Field::new("old_image", DataType::Utf8, true),
        Field::new("record", DataType::Utf8, false),
    ]
}

/// The Arrow schema of the standard columns.
pub fn standard_schema() -> SchemaRef {
    Arc::new(Schema::new(standard_fields()))
}

/// Builds the standard columns for `records`, in [`standard_fields`] order.
pub fn standard_columns(records: &[ChangeRecord]) -> Vec<ArrayRef> {
    let n = records.len();
    let text_bytes = |f: fn(&ChangeRecord) -> usize| records.iter().map(f).sum::<usize>();
    let mut event_id = StringBuilder::with_capacity(n, text_bytes(|r| r.event_id.len()));
    let mut event_name = StringBuilder::with_capacity(n, n * 6);
    let mut table_name = StringBuilder::with_capacity(n, text_bytes(|r| r.table_name.len()));
    let mut seq = StringBuilder::with_capacity(n, text_bytes(|r| r.sequence_number.len()));
    let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut view = StringBuilder::with_capacity(n, n * 18);
    let mut size = Int64Builder::with_capacity(n);
    let mut ttl = BooleanBuilder::with_capacity(n);
    let mut keys = StringBuilder::with_capacity(n, text_bytes(|r| r.keys.len()));
    let mut new_image = StringBuilder::with_capacity(
        n,
        text_bytes(|r| r.new_image.as_ref().map_or(0, |t| t.len())),
    );
    let mut old_image = StringBuilder::with_capacity(
        n,
        text_bytes(|r| r.old_image.as_ref().map_or(0, |t| t.len())),
    );
    let mut record = StringBuilder::with_capacity(n, text_bytes(|r| r.record.len()));
    for r in records {
        event_id.append_value(&r.event_id);
        event_name.append_value(r.event_name.as_str());
        table_name.append_value(&r.table_name);
        seq.append_value(&r.sequence_number);
        time.append_value(r.approximate_creation_time_ms);
        view.append_option(r.stream_view_type.as_deref());
        size.append_option(r.size_bytes);
        ttl.append_value(r.ttl_delete);
        keys.append_value(&r.keys);
        new_image.append_option(r.new_image.as_deref());
        old_image.append_option(r.old_image.as_deref());
        record.append_value(&r.record);
    }
    vec![
        Arc::new(event_id.finish()),
        Arc::new(event_name.finish()),
        Arc::new(table_name.finish()),
        Arc::new(seq.finish()),
        Arc::new(time.finish()),
        Arc::new(view.finish()),
        Arc::new(size.finish()),
        Arc::new(ttl.finish()),
        Arc::new(keys.finish()),
        Arc::new(new_image.finish()),
        Arc::new(old_image.finish()),
        Arc::new(record.finish()),
    ]
}

/// Writer settings shared by every archive file.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_size(ROW_GROUP_ROWS)
        // The JSON columns hold a distinct text per change: a dictionary only costs time.
        .set_column_dictionary_enabled(ColumnPath::from("keys"), false)
        .set_column_dictionary_enabled(ColumnPath::from("new_image"), false)
        .set_column_dictionary_enabled(ColumnPath::from("old_image"), false)
        .set_column_dictionary_enabled(ColumnPath::from("record"), false)
        .set_created_by(format!(
            "ddb-archiver version {}",
            env!("CARGO_PKG_VERSION")
        ))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            VERSION_KEY.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]))
        .build()
}

/// Changes are handed to the Parquet writer in Arrow batches of about this many bytes
/// of JSON text: the writer encodes each batch at once, so the Arrow columns of a whole
/// file are never held together, and each batch's memory is reused by the next.
const CHUNK_BYTES: usize = 1 << 20;

/// Encodes changes as a Parquet file (one row group) with the standard columns, then
/// the typed columns and `type_errors` of `schema` when given.
pub fn encode(records: &[ChangeRecord], schema: Option<&TableSchema>) -> Result<Vec<u8>, Error> {
    let mut writer = Writer::new(Vec::new(), schema, None, writer_properties())?;
    writer.write(records)?;
    writer.finish()
}

/// A Parquet file being written from changes, in Arrow batches of about
/// [`CHUNK_BYTES`] of JSON text: the standard columns, the typed columns and
/// `type_errors` of a table schema when given, and optionally one constant text column
/// (the compacted layer's `compaction_version`).
pub struct Writer<W: std::io::Write + Send> {
    inner: ArrowWriter<W>,
    arrow_schema: SchemaRef,
    schema: Option<TableSchema>,
    constant: Option<String>,
}

impl<W: std::io::Write + Send> Writer<W> {
    /// A writer into `out`. `constant` names a text column and its value for every row.
    pub fn new(
        out: W,
        schema: Option<&TableSchema>,
        constant: Option<(&str, &str)>,
        properties: WriterProperties,
    ) -> Result<Self, Error> {
        let mut fields = standard_fields();
        if let Some(s) = schema {
            fields.extend(s.arrow_fields());
        }
        if let Some((name, _)) = constant {
            fields.push(Field::new(name, DataType::Utf8, false));
        }
        let arrow_schema = Arc::new(Schema::new(fields));
        let inner = ArrowWriter::try_new(out, Arc::clone(&arrow_schema), Some(properties))
            .map_err(Error::Parquet)?;
        Ok(Writer {
            inner,
            arrow_schema,
            schema: schema.cloned(),
            constant: constant.map(|(_, v)| v.to_string()),
        })
    }

    /// Writes changes, in batches of about [`CHUNK_BYTES`].
    pub fn write(&mut self, records: &[ChangeRecord]) -> Result<(), Error> {
        let mut rest = records;
        while !rest.is_empty() {
            let mut bytes = 0;
            let take = rest
                .iter()
                .position(|r| {
                    bytes += r.approx_bytes();
                    bytes >= CHUNK_BYTES
                })
                .map_or(rest.len(), |i| i + 1);
            let (chunk, tail) = rest.split_at(take);
            rest = tail;
            let mut columns = standard_columns(chunk);
            if let Some(s) = &self.schema {
                columns
                    .extend(crate::schema::flatten::typed_columns(s, chunk).map_err(Error::Arrow)?);
            }
            if let Some(v) = &self.constant {
                let values: arrow::array::StringArray =
                    std::iter::repeat_n(Some(v.as_str()), chunk.len()).collect();
                columns.push(Arc::new(values));
            }
            let batch = RecordBatch::try_new(Arc::clone(&self.arrow_schema), columns)
                .map_err(Error::Arrow)?;
            self.inner.write(&batch).map_err(Error::Parquet)?;
        }
        Ok(())
    }

    /// Bytes written to the output so far plus the encoded size of the row group in
    /// progress: about the file's size if it ended now.
    pub fn size(&self) -> usize {
        self.inner.bytes_written() + self.inner.in_progress_size()
    }

    /// Encoded bytes of the row group in progress.
    pub fn row_group_size(&self) -> usize {
        self.inner.in_progress_size()
    }

    /// Rows in the row group in progress.
    pub fn row_group_rows(&self) -> usize {
        self.inner.in_progress_rows()
    }

    /// Ends the row group in progress.
    pub fn end_row_group(&mut self) -> Result<(), Error> {
        self.inner.flush().map_err(Error::Parquet)
    }

    /// Ends the file and returns the output.
    pub fn finish(self) -> Result<W, Error> {
        self.inner.into_inner().map_err(Error::Parquet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_columns_match_the_parquet_files() {
        let parquet: Vec<String> = standard_fields().iter().map(|f| f.name().clone()).collect();
        let table: Vec<String> = crate::schema::table::standard_columns()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(parquet, table);
        assert_eq!(table, crate::model::columns::STANDARD_COLUMNS);
    }

    use crate::decode::{decode_input, DecodeOptions, Decoded};
    use arrow::array::{Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// Changes large enough to need several Arrow batches: all of them come back, in
    /// order, in one row group.
    #[test]
    fn files_larger_than_a_chunk_keep_every_change_in_order() {
        let filler = "x".repeat(9_000);
        let records: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    r#"{{"eventID":"e{i}","eventName":"INSERT","tableName":"orders","dynamodb":{{"ApproximateCreationDateTime":1,"Keys":{{"k":{{"N":"{i}"}}}},"NewImage":{{"k":{{"N":"{i}"}},"f":{{"S":"{filler}"}}}},"SequenceNumber":"{i}"}}}}"#
                )
            })
            .collect();
        let doc = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let changes: Vec<ChangeRecord> =
            decode_input(doc.as_bytes(), "t", &DecodeOptions::default())
                .expect("valid")
                .into_iter()
                .map(|d| match d {
                    Decoded::Change(c) => *c,
                    Decoded::Rejected(r) => panic!("rejected: {:?}", r.error),
                })
                .collect();
        let text: usize = changes.iter().map(ChangeRecord::approx_bytes).sum();
        assert!(text > 2 * CHUNK_BYTES, "the changes span several chunks");
        let file = encode(&changes, None).expect("encoded");
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file)).expect("a file");
        assert_eq!(builder.metadata().num_row_groups(), 1);
        let mut event_ids = Vec::new();
        let mut images = Vec::new();
        for batch in builder.build().expect("a reader") {
            let batch = batch.expect("a batch");
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("ids");
            let new = batch
                .column(9)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("images");
            for i in 0..batch.num_rows() {
                event_ids.push(ids.value(i).to_string());
                images.push(new.value(i).to_string());
            }
        }
        let expected: Vec<String> = (0..300).map(|i| format!("e{i}")).collect();
        assert_eq!(event_ids, expected);
        for (change, image) in changes.iter().zip(&images) {
            assert_eq!(change.new_image.as_deref(), Some(image.as_str()));
        }
    }
}
