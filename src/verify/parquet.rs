//! Parquet: a Parquet file's structure checked as strictly as the readers users query
//! with (Athena, DuckDB, pyarrow, Spark). The row reader only uses the parts of the
//! footer it needs; a footer that it reads past but another reader refuses, or reads
//! differently, is found here: the magic bytes and footer length, every column chunk's
//! value count against its row group's rows, every column chunk inside the file and
//! right after the one before it (the archiver's writer stores them back to back), the
//! dictionary page before the data pages, the row groups' rows and sizes against their
//! columns and the total, and the Arrow schema (the `ARROW:schema` hint that pyarrow
//! reads) against the archive's columns.

use arrow::datatypes::Field;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use crate::archive::reader::parquet_guard;
use crate::encode::parquet::VERSION_KEY;

const MAGIC: &[u8; 4] = b"PAR1";

/// A Parquet file's structure, checked, with what its footer says about its writing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Structure {
    /// What is wrong: empty when it is sound.
    pub problems: Vec<String>,
    /// The archiver version in its key-value metadata
    /// ([`crate::encode::parquet::VERSION_KEY`]), if the footer decodes and has one.
    pub version: Option<String>,
    /// The writer named in its footer (`created_by`), if the footer decodes and has one.
    pub created_by: Option<String>,
    /// Columns at the top of its schema (the standard ones, then any others), if the
    /// footer decodes.
    pub columns: Option<usize>,
}

/// What is wrong with the structure of a Parquet file: empty when it is sound. The
/// file's Arrow schema must begin with `columns`, name for name and type for type.
pub fn check_structure(bytes: &[u8], columns: &[Field]) -> Vec<String> {
    check(bytes, columns).problems
}

/// Checks the structure of a Parquet file as [`check_structure`] does, and reads what
/// its footer says about its writing.
pub fn check(bytes: &[u8], columns: &[Field]) -> Structure {
    let mut problems = Vec::new();
    let (metadata, footer_start) = match footer(bytes) {
        Ok(m) => m,
        Err(e) => {
            return Structure {
                problems: vec![e],
                ..Structure::default()
            }
        }
    };
    check_row_groups(&metadata, footer_start, &mut problems);
    check_arrow_schema(&metadata, columns, &mut problems);
    let file = metadata.file_metadata();
    let version = file
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == VERSION_KEY))
        .and_then(|e| e.value.clone());
    Structure {
        problems,
        version,
        created_by: file.created_by().map(str::to_string),
        columns: Some(file.schema_descr().root_schema().get_fields().len()),
    }
}

/// The decoded footer and the offset where it starts, after checking the magic bytes
/// and the footer's length.
fn footer(bytes: &[u8]) -> Result<(ParquetMetaData, usize), String> {
    let n = bytes.len();
    if n < 12 || &bytes[..4] != MAGIC || &bytes[n - 4..] != MAGIC {
        return Err("not a Parquet file: no PAR1 magic at both ends".to_string());
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[n - 8..n - 4]);
    let len = u32::from_le_bytes(len) as usize;
    if len + 12 > n {
        return Err(format!(
            "Parquet footer length {len} does not fit in a file of {n} bytes"
        ));
    }
    let start = n - 8 - len;
    match parquet_guard(|| ParquetMetaDataReader::decode_metadata(&bytes[start..n - 8])) {
        Ok(Ok(m)) => Ok((m, start)),
        Ok(Err(e)) => Err(format!("Parquet footer cannot be decoded: {e}")),
        Err(_) => Err("Parquet footer cannot be decoded".to_string()),
    }
}

/// Checks every row group and column chunk against the rows and against the file's
/// data, which lies between the leading magic and `footer_start`.
fn check_row_groups(metadata: &ParquetMetaData, footer_start: usize, problems: &mut Vec<String>) {
    let file = metadata.file_metadata();
    let leaves = file.schema_descr().num_columns();
    let data_end = i64::try_from(footer_start).unwrap_or(i64::MAX);
    let mut rows_total: i64 = 0;
    let mut previous_end: i64 = 4;
    for (g, rg) in metadata.row_groups().iter().enumerate() {
        let rows = rg.num_rows();
        if rows < 0 {
            problems.push(format!("row group {g} has {rows} rows"));
        }
        rows_total = rows_total.saturating_add(rows);
        if rg.num_columns() != leaves {
            problems.push(format!(
                "row group {g} has {} column chunks for {leaves} columns",
                rg.num_columns()
            ));
        }
        let mut uncompressed: i64 = 0;
        let mut compressed: i64 = 0;
        for (c, col) in rg.columns().iter().enumerate() {
            let name = col.column_path().string();
            let at = |what: String| format!("row group {g}, column {c} ({name}): {what}");
            let values = col.num_values();
            let repeated = col.column_descr().max_rep_level() > 0;
            if (!repeated && values != rows) || (repeated && values < rows) {
                problems.push(at(format!("{values} values in a row group of {rows} rows")));
            }
            let data = col.data_page_offset();
            let start = col.dictionary_page_offset().unwrap_or(data);
            if let Some(dict) = col.dictionary_page_offset() {
                if dict >= data {
                    problems.push(at(format!(
                        "dictionary page offset {dict} is not before the data page offset {data}"
                    )));
                }
            }
            let size = col.compressed_size();
            let end = start.saturating_add(size);
            // The archiver's writer stores column chunks back to back from byte 4.
            if start != previous_end || size <= 0 || end > data_end || data < start || data >= end {
                problems.push(at(format!(
                    "column chunk at {start}..{end} (data pages from {data}) does not follow the previous one, at {previous_end}, inside the file's data (to {data_end})"
                )));
            }
            if col.uncompressed_size() < 0 {
                problems.push(at(format!("uncompressed size {}", col.uncompressed_size())));
            }
            if let Some(stats) = col.statistics() {
                if stats.null_count_opt().is_some_and(|n| n > values as u64) {
                    problems.push(at(format!(
                        "statistics count {:?} nulls in {values} values",
                        stats.null_count_opt()
                    )));
                }
            }
            for (what, offset) in [
                ("column index", col.column_index_offset()),
                ("offset index", col.offset_index_offset()),
            ] {
                if let Some(o) = offset {
                    if o < 4 || o >= data_end {
                        problems.push(at(format!("{what} offset {o} is outside the file")));
                    }
                }
            }
            previous_end = end;
            uncompressed = uncompressed.saturating_add(col.uncompressed_size());
            compressed = compressed.saturating_add(size);
        }
        if rg.total_byte_size() != uncompressed {
            problems.push(format!(
                "row group {g} says {} bytes of column data, its columns hold {uncompressed}",
                rg.total_byte_size()
            ));
        }
        if rg.compressed_size() != compressed {
            problems.push(format!(
                "row group {g} says {} compressed bytes, its columns hold {compressed}",
                rg.compressed_size()
            ));
        }
        if let Some(o) = rg.file_offset() {
            let first = rg
                .columns()
                .first()
                .map(|c| c.dictionary_page_offset().unwrap_or(c.data_page_offset()));
            if Some(o) != first {
                problems.push(format!(
                    "row group {g} starts at {o}, its first column chunk at {first:?}"
                ));
            }
        }
    }
    // After the last chunk come the page indexes, if any, then the footer.
    let next = metadata
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .flat_map(|c| [c.column_index_offset(), c.offset_index_offset()])
        .flatten()
        .min()
        .unwrap_or(data_end);
    if previous_end != next {
        problems.push(format!(
            "the column chunks end at {previous_end}, but what follows them starts at {next}"
        ));
    }
    if rows_total != file.num_rows() {
        problems.push(format!(
            "the footer says {} rows, its row groups hold {rows_total}",
            file.num_rows()
        ));
    }
}

fn check_arrow_schema(metadata: &ParquetMetaData, columns: &[Field], problems: &mut Vec<String>) {
    let file = metadata.file_metadata();
    let read = |hint| {
        parquet_guard(|| parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), hint))
            .unwrap_or_else(|_| {
                Err(parquet::errors::ParquetError::General(
                    "the reader failed on it".to_string(),
                ))
            })
    };
    let schema = match read(file.key_value_metadata()) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("the Arrow schema cannot be read: {e}"));
            return;
        }
    };
    // Without the hint, as readers that ignore ARROW:schema see it.
    let plain = read(None);
    for (i, want) in columns.iter().enumerate() {
        let got = schema.fields().get(i);
        let same = got.is_some_and(|f| {
            f.name() == want.name()
                && f.data_type() == want.data_type()
                && f.is_nullable() == want.is_nullable()
        });
        if !same {
            problems.push(format!(
                "column {i} is {}, expected {} {} ({})",
                got.map_or("missing".to_string(), |f| format!(
                    "{} {} ({})",
                    f.name(),
                    f.data_type(),
                    if f.is_nullable() {
                        "nullable"
                    } else {
                        "required"
                    }
                )),
                want.name(),
                want.data_type(),
                if want.is_nullable() {
                    "nullable"
                } else {
                    "required"
                }
            ));
        }
    }
    match plain {
        Ok(plain) => {
            let names = |s: &arrow::datatypes::Schema| -> Vec<String> {
                s.fields().iter().map(|f| f.name().clone()).collect()
            };
            if names(&plain) != names(&schema) {
                problems.push(
                    "the ARROW:schema hint names other columns than the Parquet schema".to_string(),
                );
            }
        }
        Err(e) => problems.push(format!("the Parquet schema cannot be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_input, DecodeOptions, Decoded};
    use crate::encode::parquet::standard_fields;

    fn file() -> Vec<u8> {
        let text = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/events/invoices-stream.json"
        ))
        .unwrap();
        let changes: Vec<_> = decode_input(&text, "x", &DecodeOptions::default())
            .unwrap()
            .into_iter()
            .filter_map(|d| match d {
                Decoded::Change(c) => Some(*c),
                Decoded::Rejected(_) => None,
            })
            .collect();
        crate::encode::parquet::encode(&changes, None).unwrap()
    }

    #[test]
    fn a_sound_file_passes_and_truncations_fail() {
        let bytes = file();
        assert_eq!(
            check_structure(&bytes, &standard_fields()),
            Vec::<String>::new()
        );
        assert!(!check_structure(&bytes[..bytes.len() - 1], &standard_fields()).is_empty());
        assert!(!check_structure(&bytes[1..], &standard_fields()).is_empty());
        assert!(!check_structure(b"PAR1PAR1", &standard_fields()).is_empty());
    }

    #[test]
    fn columns_are_checked_by_name_type_and_nullability() {
        let bytes = file();
        let problems = check_structure(&bytes, &standard_fields()[..3]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut wrong = standard_fields();
        wrong.swap(0, 1);
        let problems = check_structure(&bytes, &wrong);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("column 0 is event_id"), "{problems:?}");
    }

    fn summary(m: &ParquetMetaData) -> String {
        let mut out = format!("rows {}", m.file_metadata().num_rows());
        for rg in m.row_groups() {
            out += &format!(" | rg {}", rg.num_rows());
            for c in rg.columns() {
                out += &format!(
                    " ({} {} {:?} {})",
                    c.num_values(),
                    c.data_page_offset(),
                    c.dictionary_page_offset(),
                    c.compressed_size()
                );
            }
        }
        out
    }

    #[test]
    fn every_footer_byte_flip_that_changes_a_checked_field_is_found() {
        // Each flip that still decodes as a footer but moves a value count, a row count,
        // a chunk's start or size must be named. A data page offset moved inside a chunk
        // that starts with its dictionary page is read past by every reader (they start
        // at the dictionary page); that, and flips elsewhere, the re-encoding check sees.
        let bytes = file();
        let n = bytes.len();
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[n - 8..n - 4]);
        let start = n - 8 - u32::from_le_bytes(len) as usize;
        let (good, _) = footer(&bytes).unwrap();
        let mut found = 0;
        for i in start..n - 8 {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            let Ok((m, _)) = footer(&flipped) else {
                continue;
            };
            let moved = m.file_metadata().num_rows() != good.file_metadata().num_rows()
                || m.row_groups().iter().zip(good.row_groups()).any(|(a, b)| {
                    a.num_rows() != b.num_rows()
                        || a.columns().iter().zip(b.columns()).any(|(x, y)| {
                            x.num_values() != y.num_values()
                                || x.dictionary_page_offset() != y.dictionary_page_offset()
                                || (x.dictionary_page_offset().is_none()
                                    && x.data_page_offset() != y.data_page_offset())
                                || x.compressed_size() != y.compressed_size()
                        })
                });
            if moved {
                found += 1;
                assert!(
                    !check_structure(&flipped, &standard_fields()).is_empty(),
                    "flip at byte {i} passes: {:?}",
                    summary(&m)
                );
            }
        }
        assert!(found > 20, "only {found} flips moved a checked field");
    }
}
