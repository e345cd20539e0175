//! Schemas: typed columns declared per DynamoDB table in JSON files (`schemas/*.json`,
//! format described by `schemas/schema.schema.json`), validated once at startup.
//!
//! - `file` reads and validates one schema file ([`TableSchema::parse`],
//!   [`TableSchema::load`]); [`SchemaSet`] holds every table's;
//! - [`flatten`] turns the images of change records into typed Arrow columns plus a
//!   `type_errors` column (Parquet only);
//! - [`table`] maps a schema (or the standard columns alone) to one Athena/Glue table
//!   definition, rendered as `CREATE EXTERNAL TABLE` DDL or as a CloudFormation
//!   `AWS::Glue::Table` `TableInput`;
//! - [`restore_sql`] the Athena SQL that restores a table's state at T over the view;

mod convert;
mod file;
pub mod flatten;
pub mod layer;
pub mod restore_sql;
pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use serde::Deserialize;

use crate::model::columns::{PARTITION_COLUMNS, TYPE_ERRORS_COLUMN};

pub use file::validate_column_name;

/// Largest decimal precision (Arrow Decimal128, Athena `decimal`).
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// A schema file that cannot be used. Every message names the file, and the column
/// when one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file or directory could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not valid JSON of the schema-file shape.
    #[error("{path}: not a schema file: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the JSON parser reported (with line and column).
        message: String,
    },
    /// The table name is not a DynamoDB table name.
    #[error("{path}: table {table:?}: {reason}")]
    Table {
        /// The file.
        path: PathBuf,
        /// The table name as written.
        table: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A column is invalid.
    #[error("{path}: column {column:?}: {reason}")]
    Column {
        /// The file.
        path: PathBuf,
        /// The column name as written (or its position when it has no usable name).
        column: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two files declare the same table.
    #[error("{path}: table {table:?} is already declared in {other}")]
    DuplicateTable {
        /// The second file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The first file.
        other: PathBuf,
    },
}

/// The element type of an `array<...>` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// `string`, from `S` elements (or a string set `SS`).
    String,
    /// `bigint`, from integral `N` elements (or a number set `NS`).
    Bigint,
    /// `double`, from `N` elements.
    Double,
    /// `decimal(p,s)`, from `N` elements, exact.
    Decimal {
        /// Total digits, 1 to 38.
        precision: u8,
        /// Digits after the decimal point, 0 to `precision`.
        scale: u8,
    },
}

/// The type of a typed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `string`, from `S`.
    String,
    /// `bigint`, from an integral `N` that fits 64 bits.
    Bigint,
    /// `double`, from `N` (the only type that goes through floating point).
    Double,
    /// `decimal(p,s)`, from `N`, exact.
    Decimal {
        /// Total digits, 1 to 38.
        precision: u8,
        /// Digits after the decimal point, 0 to `precision`.
        scale: u8,
    },
    /// `boolean`, from `BOOL`.
    Boolean,
    /// `timestamp` (milliseconds, UTC), from an ISO-8601 `S` or epoch seconds or
    /// milliseconds `N`.
    Timestamp,
    /// `date`, from a `YYYY-MM-DD` (or ISO-8601 timestamp) `S`, or epoch `N`.
    Date,
    /// `binary`, from `B`.
    Binary,
    /// `array<...>`, from a list `L` or a set (`SS`, `NS`).
    Array(ElementType),
    /// `json`: any value rendered as plain JSON text (Athena `string`).
    Json,
}

impl ElementType {
    fn parse(s: &str) -> Option<Self> {
        match ColumnType::parse(s)? {
            ColumnType::String => Some(ElementType::String),
            ColumnType::Bigint => Some(ElementType::Bigint),
            ColumnType::Double => Some(ElementType::Double),
            ColumnType::Decimal { precision, scale } => {
                Some(ElementType::Decimal { precision, scale })
            }
            _ => None,
        }
    }

    fn as_column(self) -> ColumnType {
        match self {
            ElementType::String => ColumnType::String,
            ElementType::Bigint => ColumnType::Bigint,
            ElementType::Double => ColumnType::Double,
            ElementType::Decimal { precision, scale } => ColumnType::Decimal { precision, scale },
        }
    }
}

impl ColumnType {
    /// Parses a type as written in a schema file (`decimal(18,2)`, `array<string>`);
    /// whitespace is ignored, case is not. Precision and scale are checked by
    /// [`ColumnType::check`].
    pub fn parse(text: &str) -> Option<Self> {
        let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let simple = match s.as_str() {
            "string" => Some(ColumnType::String),
            "bigint" => Some(ColumnType::Bigint),
            "double" => Some(ColumnType::Double),
            "boolean" => Some(ColumnType::Boolean),
            "timestamp" => Some(ColumnType::Timestamp),
            "date" => Some(ColumnType::Date),
            "binary" => Some(ColumnType::Binary),
            "json" => Some(ColumnType::Json),
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        if let Some(inner) = s.strip_prefix("array<").and_then(|r| r.strip_suffix('>')) {
            return ElementType::parse(inner).map(ColumnType::Array);
        }
        let args = s.strip_prefix("decimal(")?.strip_suffix(')')?;
        let (p, sc) = args.split_once(',')?;
        let digits = |t: &str| {
            (!t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u8>().ok())
                .flatten()
        };
        Some(ColumnType::Decimal {
            precision: digits(p)?,
            scale: digits(sc)?,
        })
    }

    /// Checks precision and scale of decimals (1 ≤ p ≤ 38, 0 ≤ s ≤ p).
    pub fn check(self) -> Result<(), String> {
        let decimal = match self {
            ColumnType::Decimal { precision, scale } => Some((precision, scale)),
            ColumnType::Array(ElementType::Decimal { precision, scale }) => {
                Some((precision, scale))
            }
            _ => None,
        };
        if let Some((p, s)) = decimal {
            if p == 0 || p > MAX_DECIMAL_PRECISION {
                return Err(format!(
                    "decimal precision {p} is outside 1..={MAX_DECIMAL_PRECISION}"
                ));
            }
            if s > p {
                return Err(format!("decimal scale {s} is larger than precision {p}"));
            }
        }
        Ok(())
    }

    /// The Athena (Hive DDL) type: `json` columns are `string`.
    pub fn athena_type(self) -> String {
        match self {
            ColumnType::String | ColumnType::Json => "string".to_string(),
            ColumnType::Bigint => "bigint".to_string(),
            ColumnType::Double => "double".to_string(),
            ColumnType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            ColumnType::Boolean => "boolean".to_string(),
            ColumnType::Timestamp => "timestamp".to_string(),
            ColumnType::Date => "date".to_string(),
            ColumnType::Binary => "binary".to_string(),
            ColumnType::Array(e) => format!("array<{}>", e.as_column().athena_type()),
        }
    }

    /// The Arrow type written to Parquet.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::String | ColumnType::Json => DataType::Utf8,
            ColumnType::Bigint => DataType::Int64,
            ColumnType::Double => DataType::Float64,
            ColumnType::Decimal { precision, scale } => {
                DataType::Decimal128(precision, scale as i8)
            }
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            ColumnType::Date => DataType::Date32,
            ColumnType::Binary => DataType::Binary,
            ColumnType::Array(e) => DataType::List(Arc::new(Field::new(
                "element",
                e.as_column().arrow_type(),
                true,
            ))),
        }
    }
}

/// One step of a path into an attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PathStep {
    /// A 0-based index into a list (`L`).
    Index(usize),
    /// A key of a map (`M`), taken literally.
    Key(String),
}

/// Where a column's value comes from in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The top-level attribute name, literal (dots and spaces are part of the name).
    pub attribute: String,
    /// Steps into maps and lists below the attribute; empty for the attribute itself.
    pub path: Vec<PathStep>,
}

/// A typed column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name in Parquet and Athena: lowercase `[a-z0-9_]`, not starting with a
    /// digit.
    pub name: String,
    /// Where its value comes from.
    pub source: Source,
    /// Its type.
    pub ty: ColumnType,
    /// A description, used as the column comment.
    pub description: Option<String>,
}

/// The typed columns of one DynamoDB table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The DynamoDB table name.
    pub table: String,
    /// Its typed columns, in file order.
    pub columns: Vec<Column>,
    /// The file it was read from.
    pub file: PathBuf,
}

impl TableSchema {
    /// The Arrow fields of the typed columns followed by `type_errors`.
    pub fn arrow_fields(&self) -> Vec<Field> {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow_type(), true))
            .collect();
        fields.push(type_errors_field());
        fields
    }
}

/// The `type_errors` column: a list of column names, never null (empty when every
/// value fitted).
pub fn type_errors_field() -> Field {
    Field::new(
        TYPE_ERRORS_COLUMN,
        DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
        false,
    )
}

/// The schemas of every table that has one, by DynamoDB table name.
#[derive(Debug, Clone, Default)]
pub struct SchemaSet {
    tables: BTreeMap<String, Arc<TableSchema>>,
}

impl SchemaSet {
    /// [`SchemaSet::load_dir`] when a directory is given, no schemas otherwise.
    pub fn load_optional(dir: Option<&Path>) -> Result<Self, SchemaError> {
        dir.map_or_else(|| Ok(SchemaSet::default()), SchemaSet::load_dir)
    }

    /// Reads every `*.json` file directly in `dir` (not `*.schema.json`, which are JSON
    /// Schemas for editors), validating each; two files for one table are an error.
    pub fn load_dir(dir: &Path) -> Result<Self, SchemaError> {
        let io = |error| SchemaError::Io {
            path: dir.to_path_buf(),
            error,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_file() && name.ends_with(".json") && !name.ends_with(".schema.json") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut set = SchemaSet::default();
        for path in paths {
            set.insert(TableSchema::load(&path)?)?;
        }
        Ok(set)
    }

    /// Adds a validated schema; a second schema for the same table is an error.
    pub fn insert(&mut self, schema: TableSchema) -> Result<(), SchemaError> {
        if let Some(other) = self.tables.get(&schema.table) {
            return Err(SchemaError::DuplicateTable {
                path: schema.file.clone(),
                table: schema.table.clone(),
                other: other.file.clone(),
            });
        }
        self.tables.insert(schema.table.clone(), Arc::new(schema));
        Ok(())
    }

    /// The schema of a DynamoDB table, if it has one.
    pub fn get(&self, table: &str) -> Option<&TableSchema> {
        self.tables.get(table).map(Arc::as_ref)
    }

    /// Every schema, by table name.
    pub fn iter(&self) -> impl Iterator<Item = &TableSchema> {
        self.tables.values().map(Arc::as_ref)
    }

    /// How many tables have a schema.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether no table has a schema.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types() {
        for (text, ty) in [
            ("string", ColumnType::String),
            (
                "decimal(18,2)",
                ColumnType::Decimal {
                    precision: 18,
                    scale: 2,
                },
            ),
            (
                "decimal( 38 , 0 )",
                ColumnType::Decimal {
                    precision: 38,
                    scale: 0,
                },
            ),
            (
                "array<decimal(10,2)>",
                ColumnType::Array(ElementType::Decimal {
                    precision: 10,
                    scale: 2,
                }),
            ),
            ("array<string>", ColumnType::Array(ElementType::String)),
            ("json", ColumnType::Json),
        ] {
            assert_eq!(ColumnType::parse(text), Some(ty), "{text}");
        }
        for text in [
            "decimal",
            "decimal(1)",
            "array<json>",
            "array<array<string>>",
            "int",
            "String",
            "decimal(-1,0)",
        ] {
            assert_eq!(ColumnType::parse(text), None, "{text}");
        }
        assert_eq!(
            ColumnType::parse("array<decimal(10,2)>")
                .unwrap()
                .athena_type(),
            "array<decimal(10,2)>"
        );
    }

    #[test]
    fn loads_the_bundled_schemas() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let set = SchemaSet::load_dir(&dir).unwrap();
        let invoices = set.get("invoices").unwrap();
        assert!(invoices.columns.iter().any(|c| c.name == "amount"));
        assert!(set.get("customers").is_none());
    }

    #[test]
    fn duplicate_tables_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"table": "invoices", "columns": []}"#;
        std::fs::write(dir.path().join("a.json"), text).unwrap();
        std::fs::write(dir.path().join("b.json"), text).unwrap();
        std::fs::write(dir.path().join("schema.schema.json"), "{}").unwrap();
        let e = SchemaSet::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.json") && e.contains("a.json"), "{e}");
    }
}
