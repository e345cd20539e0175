//! Infer: propose a schema file from archived records (`.parquet` or `.json.gz` archive
//! files), one column per top-level attribute seen in their images, typed by the values
//! seen: only `S` → `timestamp` when every value is ISO-8601, else `string`; only `N` →
//! `bigint` when every value is an integer within 64 bits, else `decimal(p,s)` wide enough
//! for every value as written (up to 38 digits), else `double`; only `BOOL` → `boolean`;
//! only `B` → `binary`; only `SS` → `array<string>`; only `NS` → an array of the number
//! type; anything else (maps, lists, binary sets, mixed types) → `json`. The proposal is
//! a starting point to edit, validated like any schema file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::archive::reader::{self, Column, CorruptFile, Projection};
use crate::archive::source::SourceError;
use crate::model::key::REJECTED_DIR;
use crate::model::Format;

use crate::model::columns::{PARTITION_COLUMNS, STANDARD_COLUMNS, TYPE_ERRORS_COLUMN};
use crate::schema::TableSchema;

/// An archive file that cannot be read, or records that do not make one proposal.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The file could not be read or decoded.
    #[error("{file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// The records come from several tables and none was chosen.
    #[error("the records come from several tables ({0}); choose one with --table")]
    SeveralTables(String),
    /// No record of the table was found.
    #[error("no archived record of table {0:?} in the files")]
    NoRecords(String),
    /// The proposal does not validate (a bug).
    #[error("the proposed schema does not validate: {0}")]
    Invalid(String),
}

/// What the numbers of one attribute look like.
#[derive(Debug, Default, Clone, Copy)]
struct Numbers {
    count: usize,
    not_bigint: bool,
    int_digits: i64,
    scale: i64,
    unreadable: bool,
}

impl Numbers {
    fn add(&mut self, text: &str) {
        self.count += 1;
        if crate::schema::flatten::to_i64(text).is_err() {
            self.not_bigint = true;
        }
        let magnitude = text.trim_start_matches(['-', '+']);
        match crate::decode::Decimal::parse(magnitude) {
            Ok(d) => {
                self.int_digits = self.int_digits.max(d.digits.len() as i64 + d.exp);
                self.scale = self.scale.max(-d.exp);
            }
            Err(_) => self.unreadable = true,
        }
    }

    fn ty(&self) -> String {
        if !self.not_bigint {
            return "bigint".to_string();
        }
        let p = (self.int_digits.max(0) + self.scale).max(1);
        if self.unreadable || p > i64::from(crate::schema::MAX_DECIMAL_PRECISION) {
            "double".to_string()
        } else {
            format!("decimal({p},{})", self.scale.max(0))
        }
    }
}

/// The DynamoDB types seen for one attribute.
#[derive(Debug, Default)]
struct Seen {
    strings: usize,
    timestamps: usize,
    numbers: Numbers,
    booleans: usize,
    binaries: usize,
    string_sets: usize,
    number_sets: Numbers,
    set_count: usize,
    other: usize,
}

impl Seen {
    fn kinds(&self) -> usize {
        [
            self.strings,
            self.numbers.count,
            self.booleans,
            self.binaries,
            self.string_sets,
            self.set_count,
            self.other,
        ]
        .iter()
        .filter(|n| **n > 0)
        .count()
    }

    fn ty(&self) -> String {
        if self.kinds() != 1 {
            return "json".to_string();
        }
        if self.strings > 0 {
            if self.timestamps == self.strings {
                "timestamp".to_string()
            } else {
                "string".to_string()
            }
        } else if self.numbers.count > 0 {
            self.numbers.ty()
        } else if self.booleans > 0 {
            "boolean".to_string()
        } else if self.binaries > 0 {
            "binary".to_string()
        } else if self.string_sets > 0 {
            "array<string>".to_string()
        } else if self.set_count > 0 && self.number_sets.count > 0 {
            format!("array<{}>", self.number_sets.ty())
        } else {
            "json".to_string()
        }
    }
}

#[derive(Deserialize)]
#[allow(clippy::upper_case_acronyms)]
enum Kind {
    S(String),
    N(String),
    BOOL(serde::de::IgnoredAny),
    B(serde::de::IgnoredAny),
    SS(serde::de::IgnoredAny),
    NS(Vec<String>),
    NULL(serde::de::IgnoredAny),
    M(serde::de::IgnoredAny),
    L(serde::de::IgnoredAny),
    BS(serde::de::IgnoredAny),
}

/// A proposed schema file (serializes in the schema-file format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// The DynamoDB table.
    pub table: String,
    /// One column per attribute seen, in order of first appearance.
    pub columns: Vec<ProposedColumn>,
}

/// A proposed column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposedColumn {
    /// Column name.
    pub name: String,
    /// The top-level attribute.
    pub attribute: String,
    /// The type, as written in schema files.
    #[serde(rename = "type")]
    pub ty: String,
}

/// Collects the images of archived records and proposes a schema.
#[derive(Debug, Default)]
pub struct Inferrer {
    table: Option<String>,
    tables: std::collections::BTreeSet<String>,
    records: usize,
    attributes: Vec<(String, Seen)>,
}

impl Inferrer {
    /// Proposes a schema for `table`, or for the only table of the records.
    pub fn new(table: Option<String>) -> Self {
        Inferrer {
            table,
            ..Inferrer::default()
        }
    }

    /// Adds one archived record (its table and image texts).
    pub fn add_record(&mut self, table: &str, images: [Option<&str>; 2]) {
        self.tables.insert(table.to_string());
        if self.table.as_deref().is_some_and(|t| t != table) {
            return;
        }
        self.records += 1;
        for image in images.into_iter().flatten() {
            let Ok(members) = serde_json::from_str::<crate::schema::flatten::Members>(image) else {
                continue;
            };
            for (name, raw) in members.0 {
                let i = match self.attributes.iter().position(|(n, _)| *n == name) {
                    Some(i) => i,
                    None => {
                        self.attributes.push((name, Seen::default()));
                        self.attributes.len() - 1
                    }
                };
                let seen = &mut self.attributes[i].1;
                match serde_json::from_str::<Kind>(raw.get()) {
                    Ok(Kind::S(s)) => {
                        seen.strings += 1;
                        if crate::schema::flatten::iso_millis(&s).is_ok() {
                            seen.timestamps += 1;
                        }
                    }
                    Ok(Kind::N(n)) => seen.numbers.add(&n),
                    Ok(Kind::BOOL(_)) => seen.booleans += 1,
                    Ok(Kind::B(_)) => seen.binaries += 1,
                    Ok(Kind::SS(_)) => seen.string_sets += 1,
                    Ok(Kind::NS(v)) => {
                        seen.set_count += 1;
                        for n in &v {
                            seen.number_sets.add(n);
                        }
                    }
                    Ok(Kind::NULL(_)) => {}
                    _ => seen.other += 1,
                }
            }
        }
    }

    /// Adds the archive objects at `location`: one archive file, or every `.parquet` and
    /// `.json.gz` object under a directory or `s3://bucket/prefix` (not `_rejected/`).
    pub async fn add_location(&mut self, location: &str) -> Result<(), InferError> {
        let source_error = |e: SourceError| InferError::File {
            file: e.location,
            reason: e.message,
        };
        let path = Path::new(location);
        if !location.starts_with("s3://") && !path.is_dir() {
            let bytes = std::fs::read(path).map_err(|e| InferError::File {
                file: location.to_string(),
                reason: e.to_string(),
            })?;
            return self.add_object(location, bytes);
        }
        let source = crate::archive::source::open(location, "PATH")
            .await
            .map_err(source_error)?;
        for key in source.list("").await.map_err(source_error)? {
            let rejected = key.split('/').any(|s| s == REJECTED_DIR);
            if rejected || Format::of_key(&key).is_none() {
                continue;
            }
            let bytes = source.get(&key).await.map_err(source_error)?;
            self.add_object(&source.location(&key), bytes)?;
        }
        Ok(())
    }

    /// Adds the records of one archive object (`.parquet` or `.json.gz`, told by its
    /// name); `location` names it in errors.
    pub fn add_object(&mut self, location: &str, bytes: Vec<u8>) -> Result<(), InferError> {
        let format = Format::of_key(location).ok_or_else(|| InferError::File {
            file: location.to_string(),
            reason: "not an archive file (.parquet or .json.gz)".to_string(),
        })?;
        let projection = Projection::of(&[Column::TableName, Column::NewImage, Column::OldImage]);
        for row in reader::rows(format, bytes, location, projection).map_err(corrupt)? {
            let row = row.map_err(corrupt)?;
            self.add_record(
                &row.table_name,
                [row.new_image.as_deref(), row.old_image.as_deref()],
            );
        }
        Ok(())
    }

    /// The proposed schema file.
    pub fn finish(self) -> Result<Proposal, InferError> {
        let table = match self.table {
            Some(t) => t,
            None if self.tables.len() > 1 => {
                let names: Vec<&str> = self.tables.iter().map(String::as_str).collect();
                return Err(InferError::SeveralTables(names.join(", ")));
            }
            None => self.tables.into_iter().next().unwrap_or_default(),
        };
        if self.records == 0 {
            return Err(InferError::NoRecords(table));
        }
        let mut used: Vec<String> = STANDARD_COLUMNS
            .iter()
            .chain(PARTITION_COLUMNS.iter())
            .chain(std::iter::once(&TYPE_ERRORS_COLUMN))
            .map(|s| s.to_string())
            .collect();
        let mut columns = Vec::new();
        for (attribute, seen) in &self.attributes {
            let base = column_name(attribute);
            let mut name = base.clone();
            let mut n = 1;
            while used.contains(&name) {
                n += 1;
                name = format!("{base}_{n}");
            }
            used.push(name.clone());
            columns.push(ProposedColumn {
                name,
                attribute: attribute.clone(),
                ty: seen.ty(),
            });
        }
        let proposal = Proposal { table, columns };
        let text =
            serde_json::to_string(&proposal).map_err(|e| InferError::Invalid(e.to_string()))?;
        TableSchema::parse(&text, Path::new("(proposal)"))
            .map_err(|e| InferError::Invalid(e.to_string()))?;
        Ok(proposal)
    }
}

fn corrupt(e: CorruptFile) -> InferError {
    InferError::File {
        file: e.location,
        reason: e.reason,
    }
}

/// A column name for an attribute: lowercase, `_` for anything but `a-z0-9_`, `a_` in
/// front of a leading digit.
fn column_name(attribute: &str) -> String {
    let mut name = crate::schema::table::athena_table_name(attribute);
    if let Some(rest) = name.strip_prefix("t_") {
        if rest.starts_with(|c: char| c.is_ascii_digit()) && !attribute.starts_with("t_") {
            name = format!("a_{rest}");
        }
    }
    name.truncate(200);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposes_types_from_values() {
        let mut inf = Inferrer::new(None);
        let images = [
            r#"{"pk":{"S":"A"},"amount":{"N":"99.90"},"qty":{"N":"2"},"at":{"S":"2026-01-01T00:00:00Z"},"tags":{"SS":["a"]},"scores":{"NS":["1","2.5"]},"m":{"M":{}},"Keys":{"BOOL":true},"9x":{"S":"b"},"mixed":{"S":"x"}}"#,
            r#"{"pk":{"S":"B"},"amount":{"N":"123456.5"},"qty":{"N":"-7"},"at":{"S":"2026-01-02"},"mixed":{"N":"1"},"note":{"NULL":true}}"#,
        ];
        for i in images {
            inf.add_record("invoices", [Some(i), None]);
        }
        inf.add_record("other", [Some(r#"{"x":{"S":"y"}}"#), None]);
        let e = Inferrer {
            table: None,
            ..Inferrer::default()
        };
        assert!(e.finish().is_err());
        let mut only = Inferrer::new(Some("invoices".into()));
        for i in images {
            only.add_record("invoices", [Some(i), None]);
        }
        let v = only.finish().unwrap();
        assert_eq!(v.table, "invoices");
        let cols: Vec<(String, String, String)> = v
            .columns
            .into_iter()
            .map(|c| (c.name, c.attribute, c.ty))
            .collect();
        let get = |a: &str| cols.iter().find(|c| c.1 == a).unwrap().clone();
        assert_eq!(get("pk").2, "string");
        assert_eq!(get("amount").2, "decimal(8,2)");
        assert_eq!(get("qty").2, "bigint");
        assert_eq!(get("at").2, "timestamp");
        assert_eq!(get("tags").2, "array<string>");
        assert_eq!(get("scores").2, "array<decimal(2,1)>");
        assert_eq!(get("m").2, "json");
        assert_eq!(get("mixed").2, "json");
        assert_eq!(get("Keys").0, "keys_2");
        assert_eq!(get("9x").0, "a_9x");
        assert_eq!(get("note").2, "json");
        assert!(matches!(inf.finish(), Err(InferError::SeveralTables(_))));
    }
}
