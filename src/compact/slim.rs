//! Slim: the rows compaction sorts and spills carry each image (`keys`, `new_image`,
//! `old_image`) as a place in the row's `record` rather than as text of its own.
//!
//! The images of a change are substrings of the record it arrived in (the stream record,
//! or the DynamoDB change inside a Kinesis record), so holding them again would double
//! what the sorter keeps in memory and writes to its runs. [`slim`] finds each image in
//! its record and keeps only its offset and length; an image that is not found there
//! (a file written by other means) keeps its text. [`full`] puts the texts back, byte for
//! byte, just before the rows are encoded.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, StringBuilder, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use memchr::memmem;

use super::sort::ORDER_COLUMN;
use crate::encode::parquet::standard_fields;

/// The image columns, by position in the standard columns, and the names of the
/// columns that hold their places in `record`.
const IMAGES: [(usize, &str); 3] = [
    (KEYS, "_keys_at"),
    (KEYS + 1, "_new_image_at"),
    (KEYS + 2, "_old_image_at"),
];

/// The member name that precedes each image in a stream record (and in the DynamoDB
/// change inside a Kinesis record), in the order of [`IMAGES`]: where an image is
/// looked for first.
const MEMBERS: [&str; 3] = ["\"Keys\":", "\"NewImage\":", "\"OldImage\":"];

/// Position of `keys` in the standard columns.
const KEYS: usize = 8;

/// Position of `record` in the standard columns.
const RECORD: usize = 11;

/// The schema of rows as read: the standard columns, then [`ORDER_COLUMN`].
pub fn read_schema() -> SchemaRef {
    let mut fields = standard_fields();
    fields.push(Field::new(ORDER_COLUMN, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// The schema of slim rows: [`read_schema`] with the image columns nullable (null where
/// the image is a place in `record`), then one column per image with that place
/// (`offset << 32 | length`; null where the text is kept, or there is no image).
pub fn slim_schema() -> SchemaRef {
    let mut fields: Vec<Field> = read_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for (i, name) in IMAGES {
        fields[i] = Field::new(fields[i].name(), DataType::Utf8, true);
        fields.push(Field::new(name, DataType::UInt64, true));
    }
    Arc::new(Schema::new(fields))
}

fn text(batch: &RecordBatch, i: usize) -> Result<&StringArray, String> {
    batch
        .columns()
        .get(i)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| format!("sorted batch: column {i} is not text"))
}

/// A batch of [`read_schema`] as [`slim_schema`].
pub fn slim(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let records = text(batch, RECORD)?;
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let mut places = Vec::with_capacity(IMAGES.len());
    for ((i, _), member) in IMAGES.into_iter().zip(MEMBERS) {
        let member = memmem::Finder::new(member);
        let (kept, at) = slim_column(records, text(batch, i)?, &member);
        columns[i] = Arc::new(kept);
        places.push(Arc::new(at) as ArrayRef);
    }
    columns.extend(places);
    RecordBatch::try_new(slim_schema(), columns).map_err(|e| e.to_string())
}

/// One image column as (kept texts, places in `records`), each image looked for first
/// just after `member` (its name in the record).
fn slim_column(
    records: &StringArray,
    images: &StringArray,
    member: &memmem::Finder<'_>,
) -> (StringArray, UInt64Array) {
    let mut kept = StringBuilder::with_capacity(images.len(), 0);
    let mut at = Vec::with_capacity(images.len());
    for row in 0..images.len() {
        if images.is_null(row) {
            kept.append_null();
            at.push(None);
            continue;
        }
        let image = images.value(row);
        match place(records.value(row), image, member) {
            Some(p) => {
                kept.append_null();
                at.push(Some(p));
            }
            None => {
                kept.append_value(image);
                at.push(None);
            }
        }
    }
    (kept.finish(), UInt64Array::from(at))
}

/// Where `image` is in `record`, packed, if it is there and the place fits. Any place
/// holding the same bytes will do: it is looked for first just after `member` (a
/// search for a short, prepared needle and one comparison), then anywhere.
fn place(record: &str, image: &str, member: &memmem::Finder<'_>) -> Option<u64> {
    let (record, image) = (record.as_bytes(), image.as_bytes());
    let after_member = member.find(record).and_then(|at| {
        let mut start = at + member.needle().len();
        while record.get(start).is_some_and(u8::is_ascii_whitespace) {
            start += 1;
        }
        record
            .get(start..)
            .is_some_and(|rest| rest.starts_with(image))
            .then_some(start)
    });
    let offset = match after_member {
        Some(offset) => offset,
        None => memmem::find(record, image)?,
    };
    let offset = u32::try_from(offset).ok()?;
    let length = u32::try_from(image.len()).ok()?;
    Some((u64::from(offset) << 32) | u64::from(length))
}

/// A batch of [`slim_schema`] as [`read_schema`]: every image's text put back.
pub fn full(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let records = text(batch, RECORD)?;
    let width = read_schema().fields().len();
    let mut columns: Vec<ArrayRef> = batch.columns()[..width.min(batch.num_columns())].to_vec();
    for (n, (i, name)) in IMAGES.into_iter().enumerate() {
        let at = batch
            .columns()
            .get(width + n)
            .and_then(|c| c.as_primitive_opt::<arrow::datatypes::UInt64Type>())
            .ok_or_else(|| format!("sorted batch: bad `{name}`"))?;
        columns[i] = Arc::new(full_column(records, text(batch, i)?, at)?);
    }
    RecordBatch::try_new(read_schema(), columns).map_err(|e| e.to_string())
}

/// One image column's texts, from its kept texts and places.
fn full_column(
    records: &StringArray,
    kept: &StringArray,
    at: &UInt64Array,
) -> Result<StringArray, String> {
    let bytes: usize = (0..at.len())
        .filter(|&r| at.is_valid(r))
        .map(|r| (at.value(r) & u64::from(u32::MAX)) as usize)
        .sum::<usize>()
        + kept.values().len();
    let mut out = StringBuilder::with_capacity(at.len(), bytes);
    for row in 0..at.len() {
        if at.is_valid(row) {
            let p = at.value(row);
            let (offset, length) = ((p >> 32) as usize, (p & u64::from(u32::MAX)) as usize);
            let image = records
                .value(row)
                .get(offset..offset + length)
                .ok_or_else(|| {
                    format!("sorted batch: row {row}: an image's place is not in its record")
                })?;
            out.append_value(image);
        } else if kept.is_valid(row) {
            out.append_value(kept.value(row));
        } else {
            out.append_null();
        }
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Int64Array, TimestampMillisecondArray};

    fn read_batch(rows: &[(&str, Option<&str>, Option<&str>, &str)]) -> RecordBatch {
        let n = rows.len();
        let same = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(
                (0..n).map(|i| format!("e{i}")).collect::<Vec<_>>(),
            )),
            same("MODIFY"),
            same("t"),
            same("1"),
            Arc::new(TimestampMillisecondArray::from(vec![1i64; n]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(Int64Array::from(vec![None::<i64>; n])),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from((0..n as u64).collect::<Vec<_>>())),
        ];
        RecordBatch::try_new(read_schema(), columns).unwrap()
    }

    #[test]
    fn images_come_back_byte_for_byte_and_only_strangers_keep_their_text() {
        let record = r#"{"Keys":{"pk":{"S":"ü"}},"NewImage":{"pk":{"S":"ü"},"n":{"N":"12345678901234567890123456789012345678"}},"OldImage":{"pk":{"S":"ü"}}}"#;
        let batch = read_batch(&[
            (
                r#"{"pk":{"S":"ü"}}"#,
                Some(r#"{"pk":{"S":"ü"},"n":{"N":"12345678901234567890123456789012345678"}}"#),
                Some(r#"{"pk":{"S":"ü"}}"#),
                record,
            ),
            (
                r#"{"pk":{"S":"x"}}"#,
                None,
                Some(r#"{"elsewhere":{"B":"AA=="}}"#),
                r#"{"Keys":{"pk":{"S":"x"}}}"#,
            ),
        ]);
        let slimmed = slim(&batch).unwrap();
        // Found images hold no text; the one not in its record keeps it.
        let old = slimmed.column(KEYS + 2).as_string::<i32>();
        assert!(old.is_null(0));
        assert_eq!(old.value(1), r#"{"elsewhere":{"B":"AA=="}}"#);
        assert!(slimmed.column(KEYS).as_string::<i32>().is_null(1));
        assert_eq!(
            slimmed.column(KEYS + 1).as_string::<i32>().values().len(),
            0
        );
        assert_eq!(old.values().len(), r#"{"elsewhere":{"B":"AA=="}}"#.len());
        let back = full(&slimmed).unwrap();
        assert_eq!(back, batch);
    }

    #[test]
    fn images_are_found_after_their_member_with_spaces_or_anywhere_else() {
        let spaced = r#"{ "Keys": {"k":{"S":"a"}}, "NewImage":  {"k":{"S":"a"},"v":{"N":"1"}} }"#;
        // The member names another text: the image is still found where it is.
        let elsewhere = r#"{"NewImage":{"k":{"S":"b"}},"Other":{"k":{"S":"b"},"v":{"N":"2"}}}"#;
        let batch = read_batch(&[
            (
                r#"{"k":{"S":"a"}}"#,
                Some(r#"{"k":{"S":"a"},"v":{"N":"1"}}"#),
                None,
                spaced,
            ),
            (
                r#"{"k":{"S":"b"}}"#,
                Some(r#"{"k":{"S":"b"},"v":{"N":"2"}}"#),
                None,
                elsewhere,
            ),
        ]);
        let slimmed = slim(&batch).unwrap();
        let width = read_schema().fields().len();
        let new_at = slimmed
            .column(width + 1)
            .as_primitive::<arrow::datatypes::UInt64Type>();
        assert_eq!(
            (new_at.value(0) >> 32) as usize,
            spaced.find(r#"{"k":{"S":"a"},"v""#).unwrap()
        );
        assert_eq!(
            (new_at.value(1) >> 32) as usize,
            elsewhere.find(r#"{"k":{"S":"b"},"v""#).unwrap()
        );
        assert_eq!(
            slimmed.column(KEYS + 1).as_string::<i32>().values().len(),
            0
        );
        assert_eq!(full(&slimmed).unwrap(), batch);
    }

    #[test]
    fn a_place_outside_its_record_is_an_error() {
        let batch = read_batch(&[(r#"{"k":1}"#, None, None, r#"{"k":1}"#)]);
        let slimmed = slim(&batch).unwrap();
        let mut columns = slimmed.columns().to_vec();
        let width = read_schema().fields().len();
        columns[width] = Arc::new(UInt64Array::from(vec![Some((5u64 << 32) | 10)]));
        let bad = RecordBatch::try_new(slim_schema(), columns).unwrap();
        assert!(full(&bad).unwrap_err().contains("not in its record"));
    }
}
