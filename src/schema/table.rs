//! One Athena / Glue table definition for an archive table — the standard columns, the
//! typed columns and `type_errors` (Parquet), Hive partitions `year/month/day` with
//! partition projection — rendered two ways from the same model: `CREATE EXTERNAL
//! TABLE` DDL ([`TableDefinition::ddl`]) and a CloudFormation `AWS::Glue::Table`
//! `TableInput` ([`TableDefinition::glue_table_input`]).

use serde_json::{json, Value};

use super::{validate_column_name, TableSchema, PARTITION_COLUMNS, TYPE_ERRORS_COLUMN};
use crate::model::Format;

/// First year of the `year` partition projection (DynamoDB launched in 2012).
pub const PROJECTION_FIRST_YEAR: u32 = 2012;
/// Last year of the `year` partition projection.
pub const PROJECTION_LAST_YEAR: u32 = 2099;

/// Timestamp format of `approximate_creation_time` in `.json.gz` files, for the OpenX
/// JSON SerDe (`2026-01-01T00:00:00.000Z`).
pub const JSON_TIMESTAMP_FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX";

/// The OpenX JSON SerDe class.
pub const OPENX_JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";

/// A table definition that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The S3 location is unusable.
    #[error("invalid location {location:?}: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Athena table or database name is unusable.
    #[error("invalid {what} {name:?}: {reason}")]
    Name {
        /// `table name` or `database`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The DynamoDB table name is unusable.
    #[error("invalid DynamoDB table name {name:?}: {reason}")]
    Table {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A column of the Athena table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumn {
    /// Column name.
    pub name: String,
    /// Athena (Hive) type, e.g. `decimal(38,0)`, `array<string>`.
    pub ty: String,
    /// Comment, when the schema file describes the column.
    pub comment: Option<String>,
}

/// Storage of the table's files: formats and SerDe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// Hadoop input format class.
    pub input_format: &'static str,
    /// Hadoop output format class.
    pub output_format: &'static str,
    /// SerDe class.
    pub serde: &'static str,
    /// SerDe parameters.
    pub serde_parameters: Vec<(&'static str, &'static str)>,
}

/// An Athena table over one DynamoDB table's archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// Athena database, if given.
    pub database: Option<String>,
    /// Athena table name.
    pub name: String,
    /// Data columns, in file order.
    pub columns: Vec<TableColumn>,
    /// File format.
    pub format: Format,
    /// `s3://bucket/prefix/<table>/`, ending in `/`.
    pub location: String,
    /// Table parameters (`TBLPROPERTIES`): classification and partition projection.
    pub parameters: Vec<(String, String)>,
    /// Formats and SerDe of the files (by default those of `format`).
    pub storage: Storage,
}

/// The Athena names of one DynamoDB table's tables, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Athena database, if given.
    pub database: Option<String>,
    /// Athena name of the raw archive's table; the other tables and the view are named
    /// after it.
    pub name: String,
}

impl TableNames {
    /// The names for `dynamodb_table`: `name`, or the one derived from the DynamoDB
    /// table name ([`athena_table_name`]), in `database`.
    pub fn new(
        dynamodb_table: &str,
        database: Option<&str>,
        name: Option<&str>,
    ) -> Result<Self, TableError> {
        crate::model::key::validate_table_name(dynamodb_table).map_err(|reason| {
            TableError::Table {
                name: dynamodb_table.to_string(),
                reason,
            }
        })?;
        let name = match name {
            Some(n) => n.to_string(),
            None => athena_table_name(dynamodb_table),
        };
        validate_column_name(&name).map_err(|reason| TableError::Name {
            what: "table name",
            name: name.clone(),
            reason,
        })?;
        if let Some(db) = database {
            validate_column_name(db).map_err(|reason| TableError::Name {
                what: "database",
                name: db.to_string(),
                reason,
            })?;
        }
        Ok(TableNames {
            database: database.map(str::to_string),
            name,
        })
    }
}

/// The Athena type of each standard column, in order.
pub fn standard_columns() -> Vec<TableColumn> {
    let types = [
        ("event_id", "string"),
        ("event_name", "string"),
        ("table_name", "string"),
        ("sequence_number", "string"),
        ("approximate_creation_time", "timestamp"),
        ("stream_view_type", "string"),
        ("size_bytes", "bigint"),
        ("ttl_delete", "boolean"),
        ("keys", "string"),
        ("new_image", "string"),
        ("old_image", "string"),
        ("record", "string"),
    ];
    types
        .iter()
        .map(|(name, ty)| TableColumn {
            name: name.to_string(),
            ty: ty.to_string(),
            comment: None,
        })
        .collect()
}

/// The Athena table name for a DynamoDB table name: lowercase, every character other
/// than `a-z`, `0-9` and `_` replaced by `_`, prefixed with `t_` when it would start
/// with a digit (`Orders-2026.v1` → `orders_2026_v1`).
pub fn athena_table_name(dynamodb_table: &str) -> String {
    let mut name: String = dynamodb_table
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "t_");
    }
    name
}

impl TableDefinition {
    /// The table over the archive of `dynamodb_table` at `location`: its typed columns
    /// when `schema` is given and the format is Parquet (`.json.gz` files carry the
    /// standard columns only). `name` overrides the derived Athena table name.
    pub fn new(
        dynamodb_table: &str,
        schema: Option<&TableSchema>,
        format: Format,
        location: &str,
        database: Option<&str>,
        name: Option<&str>,
    ) -> Result<Self, TableError> {
        let names = TableNames::new(dynamodb_table, database, name)?;
        let location = normalize_location(location)?;
        let columns = data_columns(schema, format);
        let classification = match format {
            Format::Parquet => "parquet",
            Format::JsonlGz => "json",
        };
        let mut parameters = vec![
            ("classification".to_string(), classification.to_string()),
            ("projection.enabled".to_string(), "true".to_string()),
            ("projection.year.type".to_string(), "integer".to_string()),
            (
                "projection.year.range".to_string(),
                format!("{PROJECTION_FIRST_YEAR},{PROJECTION_LAST_YEAR}"),
            ),
        ];
        for (part, last) in [("month", 12), ("day", 31)] {
            parameters.push((format!("projection.{part}.type"), "integer".to_string()));
            parameters.push((format!("projection.{part}.range"), format!("1,{last}")));
            parameters.push((format!("projection.{part}.digits"), "2".to_string()));
        }
        parameters.push((
            "storage.location.template".to_string(),
            format!("{location}year=${{year}}/month=${{month}}/day=${{day}}/"),
        ));
        Ok(TableDefinition {
            database: names.database,
            name: names.name,
            columns,
            format,
            location,
            parameters,
            storage: Storage::of(format),
        })
    }
}

/// The data columns of a table in `format`: the standard columns, then, for Parquet with
/// a schema, its typed columns and `type_errors` (`.json.gz` files carry the standard
/// columns only).
pub fn data_columns(schema: Option<&TableSchema>, format: Format) -> Vec<TableColumn> {
    let mut columns = standard_columns();
    if let (Some(schema), Format::Parquet) = (schema, format) {
        columns.extend(schema.columns.iter().map(|c| TableColumn {
            name: c.name.clone(),
            ty: c.ty.athena_type(),
            comment: c.description.clone(),
        }));
        columns.push(TableColumn {
            name: TYPE_ERRORS_COLUMN.to_string(),
            ty: "array<string>".to_string(),
            comment: Some("typed columns whose value did not fit their type".to_string()),
        });
    }
    columns
}

impl Storage {
    /// Formats and SerDe of the archive's files in `format`.
    pub fn of(format: Format) -> Storage {
        match format {
            Format::Parquet => Storage {
                input_format: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                output_format: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                serde: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                serde_parameters: vec![("serialization.format", "1")],
            },
            Format::JsonlGz => Storage {
                input_format: "org.apache.hadoop.mapred.TextInputFormat",
                output_format: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                serde: OPENX_JSON_SERDE,
                serde_parameters: vec![
                    ("case.insensitive", "false"),
                    ("timestamp.formats", JSON_TIMESTAMP_FORMAT),
                ],
            },
        }
    }
}

impl TableDefinition {
    /// Formats and SerDe of the files.
    pub fn storage(&self) -> Storage {
        self.storage.clone()
    }

    /// The `CREATE EXTERNAL TABLE` statement for Athena.
    pub fn ddl(&self) -> String {
        let mut out = String::from("CREATE EXTERNAL TABLE IF NOT EXISTS ");
        if let Some(db) = &self.database {
            out.push_str(&format!("`{db}`."));
        }
        out.push_str(&format!("`{}` (\n", self.name));
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut line = format!("  `{}` {}", c.name, c.ty);
                if let Some(comment) = &c.comment {
                    line.push_str(&format!(" COMMENT {}", sql_string(comment)));
                }
                line
            })
            .collect();
        out.push_str(&cols.join(",\n"));
        out.push_str("\n)\nPARTITIONED BY (\n");
        let parts: Vec<String> = PARTITION_COLUMNS
            .iter()
            .map(|p| format!("  `{p}` string"))
            .collect();
        out.push_str(&parts.join(",\n"));
        out.push_str("\n)\n");
        let storage = self.storage();
        match self.format {
            Format::Parquet => out.push_str("STORED AS PARQUET\n"),
            Format::JsonlGz => {
                out.push_str(&format!("ROW FORMAT SERDE {}\n", sql_string(storage.serde)));
                if !storage.serde_parameters.is_empty() {
                    out.push_str(&format!(
                        "WITH SERDEPROPERTIES (\n{}\n)\n",
                        properties(storage.serde_parameters.iter().map(|(k, v)| (*k, *v)))
                    ));
                }
                out.push_str(&format!(
                    "STORED AS INPUTFORMAT {}\nOUTPUTFORMAT {}\n",
                    sql_string(storage.input_format),
                    sql_string(storage.output_format)
                ));
            }
        }
        out.push_str(&format!("LOCATION {}\n", sql_string(&self.location)));
        out.push_str(&format!(
            "TBLPROPERTIES (\n{}\n);\n",
            properties(
                self.parameters
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
            )
        ));
        out
    }

    /// The same table as a CloudFormation `AWS::Glue::Table` `TableInput`.
    pub fn glue_table_input(&self) -> Value {
        let storage = self.storage();
        let column = |c: &TableColumn| {
            let mut v = json!({"name": c.name, "type": c.ty});
            if let (Some(comment), Some(obj)) = (&c.comment, v.as_object_mut()) {
                obj.insert("comment".to_string(), json!(comment));
            }
            v
        };
        let mut parameters = serde_json::Map::new();
        parameters.insert("EXTERNAL".to_string(), json!("TRUE"));
        for (k, v) in &self.parameters {
            parameters.insert(k.clone(), json!(v));
        }
        let serde_parameters: serde_json::Map<String, Value> = storage
            .serde_parameters
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({
            "name": self.name,
            "tableType": "EXTERNAL_TABLE",
            "parameters": parameters,
            "partitionKeys": PARTITION_COLUMNS
                .iter()
                .map(|p| json!({"name": p, "type": "string"}))
                .collect::<Vec<_>>(),
            "storageDescriptor": {
                "columns": self.columns.iter().map(column).collect::<Vec<_>>(),
                "location": self.location,
                "inputFormat": storage.input_format,
                "outputFormat": storage.output_format,
                "serdeInfo": {
                    "serializationLibrary": storage.serde,
                    "parameters": serde_parameters,
                },
            },
        })
    }

    /// [`Self::glue_table_input`] as pretty JSON text with a final newline.
    pub fn glue_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.glue_table_input())
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
        text.push('\n');
        text
    }
}

/// Checks `s3://bucket/...` and makes it end with `/`.
fn normalize_location(location: &str) -> Result<String, TableError> {
    let bad = |reason: &str| TableError::Location {
        location: location.to_string(),
        reason: reason.to_string(),
    };
    let rest = location
        .strip_prefix("s3://")
        .ok_or_else(|| bad("must start with s3://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("names no bucket"));
    }
    if location.contains('\'') || location.contains('\\') {
        return Err(bad("must not contain quotes or backslashes"));
    }
    let mut out = location.to_string();
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// A single-quoted SQL string literal (Hive escapes: `\'` and `\\`).
pub(crate) fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn properties<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| format!("  {} = {}", sql_string(k), sql_string(v)))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// Placeholder bucket in the committed Glue definitions (`schemas/generated/`).
pub const BUCKET_PLACEHOLDER: &str = "__BUCKET__";
/// Placeholder key prefix (empty or ending in `/`) in the committed Glue definitions.
pub const PREFIX_PLACEHOLDER: &str = "__PREFIX__";
/// Placeholder DynamoDB table name of the standard-columns Glue definitions.
pub const TABLE_PLACEHOLDER: &str = "__TABLE__";

/// The files of `schemas/generated/`: for every schema, `<table>.parquet.glue.json`
/// and `<table>.jsonl.gz.glue.json`, and `_standard.<format>.glue.json` (standard
/// columns, table [`TABLE_PLACEHOLDER`]), with location
/// `s3://__BUCKET__/__PREFIX__<table>/`. Returns (file name, content) pairs.
pub fn generated_files(schemas: &super::SchemaSet) -> Result<Vec<(String, String)>, TableError> {
    let mut files = Vec::new();
    for format in [Format::Parquet, Format::JsonlGz] {
        for schema in schemas.iter() {
            let location = format!(
                "s3://{BUCKET_PLACEHOLDER}/{PREFIX_PLACEHOLDER}{}/",
                schema.table
            );
            let def =
                TableDefinition::new(&schema.table, Some(schema), format, &location, None, None)?;
            files.push((
                format!("{}.{}.glue.json", schema.table, format.name()),
                def.glue_json(),
            ));
        }
        let location =
            format!("s3://{BUCKET_PLACEHOLDER}/{PREFIX_PLACEHOLDER}{TABLE_PLACEHOLDER}/");
        let mut def = TableDefinition::new("standard", None, format, &location, None, None)?;
        def.name = TABLE_PLACEHOLDER.to_string();
        files.push((
            format!("_standard.{}.glue.json", format.name()),
            def.glue_json(),
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaSet;
    use std::path::Path;

    fn invoices() -> TableSchema {
        TableSchema::parse(
            r#"{"table": "invoices", "columns": [
                {"name": "amount", "attribute": "amount", "type": "decimal(18,2)", "description": "total, it's exact"},
                {"name": "tags", "attribute": "tags", "type": "array<string>"},
                {"name": "raw", "attribute": "x", "type": "json"}]}"#,
            Path::new("invoices.json"),
        )
        .unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(athena_table_name("Orders-2026.v1"), "orders_2026_v1");
        assert_eq!(athena_table_name("2026orders"), "t_2026orders");
        assert_eq!(athena_table_name("invoices"), "invoices");
    }

    #[test]
    fn parquet_ddl_has_typed_columns_projection_and_type_errors() {
        let s = invoices();
        let def = TableDefinition::new(
            "invoices",
            Some(&s),
            Format::Parquet,
            "s3://bucket/archive/invoices",
            Some("archive"),
            None,
        )
        .unwrap();
        let ddl = def.ddl();
        assert!(
            ddl.starts_with(
                "CREATE EXTERNAL TABLE IF NOT EXISTS `archive`.`invoices` (\n  `event_id` string,"
            ),
            "{ddl}"
        );
        assert!(ddl.contains("`record` string,\n  `amount` decimal(18,2) COMMENT 'total, it\\'s exact',\n  `tags` array<string>,\n  `raw` string,\n  `type_errors` array<string>"), "{ddl}");
        assert!(
            ddl.contains(
                "PARTITIONED BY (\n  `year` string,\n  `month` string,\n  `day` string\n)"
            ),
            "{ddl}"
        );
        assert!(
            ddl.contains("STORED AS PARQUET\nLOCATION 's3://bucket/archive/invoices/'"),
            "{ddl}"
        );
        assert!(ddl.contains("'projection.month.digits' = '2'"), "{ddl}");
        assert!(ddl.contains("'projection.day.range' = '1,31'"), "{ddl}");
        assert!(ddl.contains("'storage.location.template' = 's3://bucket/archive/invoices/year=${year}/month=${month}/day=${day}/'"), "{ddl}");
        assert!(ddl.trim_end().ends_with(");"));
    }

    #[test]
    fn json_ddl_has_standard_columns_and_openx_serde() {
        let s = invoices();
        let def = TableDefinition::new(
            "invoices",
            Some(&s),
            Format::JsonlGz,
            "s3://b/p/invoices/",
            None,
            Some("inv_json"),
        )
        .unwrap();
        let ddl = def.ddl();
        assert!(ddl.contains("`inv_json`"));
        assert!(
            !ddl.contains("amount") && !ddl.contains("type_errors"),
            "{ddl}"
        );
        assert!(ddl.contains("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'"));
        assert!(
            ddl.contains(concat!(
                "WITH SERDEPROPERTIES (\n  'case.insensitive' = 'false',\n",
                "  'timestamp.formats' = 'yyyy-MM-dd\\'T\\'HH:mm:ss.SSSXXX'\n)"
            )),
            "{ddl}"
        );
        assert!(ddl.contains("STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'"));
    }

    #[test]
    fn glue_and_ddl_share_the_model() {
        let s = invoices();
        let def =
            TableDefinition::new("invoices", Some(&s), Format::Parquet, "s3://b/", None, None)
                .unwrap();
        let glue = def.glue_table_input();
        let cols = glue["storageDescriptor"]["columns"].as_array().unwrap();
        assert_eq!(cols.len(), def.columns.len());
        for (c, g) in def.columns.iter().zip(cols) {
            assert_eq!(g["name"], c.name.as_str());
            assert_eq!(g["type"], c.ty.as_str());
            assert!(def.ddl().contains(&format!("`{}` {}", c.name, c.ty)));
        }
        for (k, v) in &def.parameters {
            assert_eq!(glue["parameters"][k], v.as_str());
        }
        assert_eq!(glue["storageDescriptor"]["location"], "s3://b/");
        assert_eq!(glue["partitionKeys"][1]["name"], "month");
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(
            TableDefinition::new("invoices", None, Format::Parquet, "/tmp/x", None, None).is_err()
        );
        assert!(
            TableDefinition::new("invoices", None, Format::Parquet, "s3:///x", None, None).is_err()
        );
        assert!(TableDefinition::new(
            "invoices",
            None,
            Format::Parquet,
            "s3://b/",
            None,
            Some("Bad-Name")
        )
        .is_err());
        assert!(TableDefinition::new("x", None, Format::Parquet, "s3://b/", None, None).is_err());
    }

    /// The committed `schemas/generated/` files are what the generator makes now.
    /// Regenerate with `scripts/generate-schemas.sh`.
    #[test]
    fn committed_generated_files_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let set = SchemaSet::load_dir(&root).unwrap();
        let out = root.join("generated");
        let regenerate = std::env::var_os("DDB_ARCHIVER_REGENERATE").is_some();
        let files = generated_files(&set).unwrap();
        if regenerate {
            std::fs::create_dir_all(&out).unwrap();
        }
        let mut stale = Vec::new();
        for (name, text) in &files {
            let path = out.join(name);
            if regenerate {
                std::fs::write(&path, text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(name.clone());
            }
        }
        let mut committed: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".glue.json"))
            .collect();
        committed.sort();
        let mut expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        expected.sort();
        assert!(
            stale.is_empty(),
            "stale files in schemas/generated/: {stale:?}; run scripts/generate-schemas.sh"
        );
        assert_eq!(
            committed, expected,
            "unexpected files in schemas/generated/; run scripts/generate-schemas.sh"
        );
    }
}
