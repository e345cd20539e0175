//! Schema files as written (`schemas/*.json`): their JSON shape, and reading and
//! validating one into a [`TableSchema`] (the table name, and each column's name, type
//! and source), with errors that name the file and the column.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::{Column, ColumnType, PathStep, SchemaError, Source, TableSchema};
use crate::model::columns::{PARTITION_COLUMNS, STANDARD_COLUMNS, TYPE_ERRORS_COLUMN};

/// The schema file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    #[serde(rename = "$schema")]
    _schema: Option<String>,
    table: String,
    #[serde(default, rename = "description")]
    _description: Option<String>,
    columns: Vec<ColumnRepr>,
}

/// A column as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnRepr {
    name: String,
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    path: Option<Vec<PathStep>>,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    description: Option<String>,
}

/// Checks a column name for Athena: 1 to 255 of lowercase `a-z`, `0-9`, `_`, not
/// starting with a digit.
pub fn validate_column_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1 to 255 characters".to_string());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err("must be lowercase letters a-z, digits and `_` only".to_string());
    }
    if name.as_bytes()[0].is_ascii_digit() {
        return Err("must not start with a digit".to_string());
    }
    Ok(())
}

impl ColumnRepr {
    /// The declared type, parsed and checked.
    fn column_type(&self) -> Result<ColumnType, String> {
        let ty = ColumnType::parse(&self.ty).ok_or_else(|| {
            format!(
                "unknown type {:?} (expected string, bigint, double, decimal(p,s), \
                 boolean, timestamp, date, binary, array<string|bigint|double|decimal(p,s)> \
                 or json)",
                self.ty
            )
        })?;
        ty.check()?;
        Ok(ty)
    }

    /// Where the value comes from: `attribute`, or `path` starting with one.
    fn source(&self) -> Result<Source, String> {
        match (&self.attribute, &self.path) {
            (Some(attribute), None) => {
                if attribute.is_empty() {
                    return Err("`attribute` is empty".to_string());
                }
                Ok(Source {
                    attribute: attribute.clone(),
                    path: Vec::new(),
                })
            }
            (None, Some(path)) => match path.split_first() {
                Some((PathStep::Key(attribute), rest)) if !attribute.is_empty() => Ok(Source {
                    attribute: attribute.clone(),
                    path: rest.to_vec(),
                }),
                _ => Err("`path` must start with a non-empty attribute name".to_string()),
            },
            (Some(_), Some(_)) => Err("give `attribute` or `path`, not both".to_string()),
            (None, None) => Err("give `attribute` or `path`".to_string()),
        }
    }
}

impl TableSchema {
    /// Parses and validates schema-file text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SchemaError> {
        let repr: FileRepr = serde_json::from_str(text).map_err(|e| SchemaError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        crate::model::key::validate_table_name(&repr.table).map_err(|reason| {
            SchemaError::Table {
                path: path.to_path_buf(),
                table: repr.table.clone(),
                reason,
            }
        })?;
        let reserved: Vec<&str> = STANDARD_COLUMNS
            .iter()
            .chain(PARTITION_COLUMNS.iter())
            .chain(std::iter::once(&TYPE_ERRORS_COLUMN))
            .copied()
            .collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut columns = Vec::with_capacity(repr.columns.len());
        for (i, c) in repr.columns.into_iter().enumerate() {
            let bad = |reason: String| SchemaError::Column {
                path: path.to_path_buf(),
                column: if c.name.is_empty() {
                    format!("#{}", i + 1)
                } else {
                    c.name.clone()
                },
                reason,
            };
            validate_column_name(&c.name).map_err(|r| bad(format!("invalid name: {r}")))?;
            let folded = c.name.to_lowercase();
            if reserved.contains(&folded.as_str()) {
                return Err(bad(
                    "collides with a standard or partition column of the archive".to_string(),
                ));
            }
            if let Some(first) = seen.insert(folded, i) {
                return Err(bad(format!(
                    "declared twice (columns #{} and #{})",
                    first + 1,
                    i + 1
                )));
            }
            let ty = c.column_type().map_err(bad)?;
            let source = c.source().map_err(bad)?;
            columns.push(Column {
                name: c.name,
                source,
                ty,
                description: c.description,
            });
        }
        Ok(TableSchema {
            table: repr.table,
            columns,
            file: path.to_path_buf(),
        })
    }

    /// Reads and validates one schema file.
    pub fn load(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|error| SchemaError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TableSchema, String> {
        TableSchema::parse(text, Path::new("schemas/t.json")).map_err(|e| e.to_string())
    }

    fn one_column(col: &str) -> Result<TableSchema, String> {
        parse(&format!(r#"{{"table": "invoices", "columns": [{col}]}}"#))
    }

    #[test]
    fn reads_attribute_and_path_columns() {
        let s = parse(
            r#"{"$schema": "./schema.schema.json", "table": "invoices", "columns": [
                {"name": "amount", "attribute": "amount", "type": "decimal(18,2)"},
                {"name": "dots", "attribute": "attr.with dots", "type": "json"},
                {"name": "first_sku", "path": ["lines", 0, "sku"], "type": "string"}]}"#,
        )
        .unwrap();
        assert_eq!(s.columns.len(), 3);
        assert_eq!(s.columns[1].source.attribute, "attr.with dots");
        assert_eq!(s.columns[2].source.attribute, "lines");
        assert_eq!(
            s.columns[2].source.path,
            vec![PathStep::Index(0), PathStep::Key("sku".into())]
        );
    }

    #[test]
    fn errors_name_file_and_column() {
        let cases = [
            (
                r#"{"name": "Amount", "attribute": "a", "type": "string"}"#,
                "\"Amount\"",
                "lowercase",
            ),
            (
                r#"{"name": "1st", "attribute": "a", "type": "string"}"#,
                "\"1st\"",
                "digit",
            ),
            (
                r#"{"name": "keys", "attribute": "a", "type": "string"}"#,
                "\"keys\"",
                "collides",
            ),
            (
                r#"{"name": "type_errors", "attribute": "a", "type": "string"}"#,
                "\"type_errors\"",
                "collides",
            ),
            (
                r#"{"name": "year", "attribute": "a", "type": "string"}"#,
                "\"year\"",
                "collides",
            ),
            (
                r#"{"name": "a", "attribute": "a", "type": "decimal(39,0)"}"#,
                "\"a\"",
                "precision 39",
            ),
            (
                r#"{"name": "a", "attribute": "a", "type": "decimal(5,6)"}"#,
                "\"a\"",
                "scale 6",
            ),
            (
                r#"{"name": "a", "attribute": "a", "type": "float"}"#,
                "\"a\"",
                "unknown type \"float\"",
            ),
            (
                r#"{"name": "a", "type": "string"}"#,
                "\"a\"",
                "`attribute` or `path`",
            ),
            (
                r#"{"name": "a", "attribute": "a", "path": ["a"], "type": "string"}"#,
                "\"a\"",
                "not both",
            ),
            (
                r#"{"name": "a", "path": [0], "type": "string"}"#,
                "\"a\"",
                "must start",
            ),
        ];
        for (col, name, why) in cases {
            let e = one_column(col).unwrap_err();
            assert!(e.starts_with("schemas/t.json: column "), "{e}");
            assert!(e.contains(name) && e.contains(why), "{col}: {e}");
        }
        let e = one_column(
            r#"{"name": "a", "attribute": "a", "type": "string"}, {"name": "a", "attribute": "b", "type": "bigint"}"#,
        )
        .unwrap_err();
        assert!(e.contains("\"a\"") && e.contains("declared twice"), "{e}");
        let e = parse(r#"{"table": "x", "columns": []}"#).unwrap_err();
        assert!(e.contains("schemas/t.json") && e.contains("\"x\""), "{e}");
        let e = parse(r#"{"table": "invoices", "columns": [], "extra": 1}"#).unwrap_err();
        assert!(e.contains("schemas/t.json") && e.contains("extra"), "{e}");
        let e = parse("{").unwrap_err();
        assert!(e.contains("schemas/t.json") && e.contains("line 1"), "{e}");
    }
}
