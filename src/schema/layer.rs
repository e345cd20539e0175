//! Athena over both layers of a table's archive: the raw archive, the compacted layer
//! ([`crate::compact`]) and its manifests, and one view that shows every change once
//! whichever days are compacted.
//!
//! - [`Layer::Raw`]: the archive's table `<name>` ([`TableDefinition::new`]).
//! - [`Layer::Compacted`]: `<name>_compacted`, Parquet, the raw Parquet table's columns
//!   (with the schema's typed columns and `type_errors`) and `compaction_version`.
//! - [`Layer::Manifests`]: `<name>_manifests`, one row per compacted table-day from its
//!   `manifest.json` (Hive JSON SerDe, so that Athena can also `INSERT INTO` it): the
//!   day's current `version`, `rows`, `duplicates_dropped` and `event_id_digest`.
//! - [`Layer::View`]: `<name>_all`, the compacted rows of the manifest's version of every
//!   day that has a manifest, and the raw rows of every day that has none, each event
//!   once (the first copy by sequence number, as compaction keeps).
//!
//! A day switches from raw to compacted at the moment its manifest is written, which the
//! compactor does last, after the day's files; rows of any other version of a day (a
//! superseded version not yet deleted, a version whose manifest is not written yet) do
//! not match the manifest's version and are never shown. So the view's answers do not
//! depend on when compaction runs.
//!
//! [`LayerSet::compact_sql`] compacts one day on Athena itself, for days too big for one
//! function.

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};

use super::table::{data_columns, Storage, TableColumn, TableDefinition, TableError, TableNames};
use super::TableSchema;
use crate::model::columns::PARTITION_COLUMNS;
use crate::model::columns::VERSION_COLUMN;
use crate::model::key::MANIFESTS_DIR;
use crate::model::Format;

/// Suffix of the compacted layer's table name.
pub const COMPACTED_SUFFIX: &str = "_compacted";
/// Suffix of the manifests' table name.
pub const MANIFESTS_SUFFIX: &str = "_manifests";
/// Suffix of the view's name.
pub const VIEW_SUFFIX: &str = "_all";

/// The Hive JSON SerDe class (Athena can write tables that use it).
pub const HIVE_JSON_SERDE: &str = "org.apache.hive.hcatalog.data.JsonSerDe";

/// The manifest keys the manifests table reads, with their Athena types; the others
/// (`files`, `sources`, …) are ignored.
pub const MANIFEST_COLUMNS: [(&str, &str); 4] = [
    ("version", "string"),
    ("rows", "bigint"),
    ("duplicates_dropped", "bigint"),
    ("event_id_digest", "string"),
];

/// The column that numbers an event's copies in the raw table (1 for the one kept).
const COPY_COLUMN: &str = "_copy";

/// Tag of the compaction versions made on Athena ([`LayerSet::sql_version`]).
pub const SQL_VERSION_TAG: &str = "sql";

/// Which table (or the view) a definition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The raw archive.
    Raw,
    /// The compacted layer's files.
    Compacted,
    /// The compacted layer's manifests.
    Manifests,
    /// The view over the three tables.
    View,
}

impl Layer {
    /// Every layer.
    pub const ALL: [Layer; 4] = [Layer::Raw, Layer::Compacted, Layer::Manifests, Layer::View];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Raw => "raw",
            Layer::Compacted => "compacted",
            Layer::Manifests => "manifests",
            Layer::View => "view",
        }
    }

    /// The layer named `name`.
    pub fn parse(name: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The tables and the view of one DynamoDB table's archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSet {
    /// The DynamoDB table.
    pub dynamodb_table: String,
    /// The schema, if given.
    pub schema: Option<TableSchema>,
    /// Format of the raw archive.
    pub format: Format,
    /// Database and raw table name.
    pub names: TableNames,
}

impl LayerSet {
    /// The tables of `dynamodb_table`'s archive, whose raw files are in `format`.
    pub fn new(
        dynamodb_table: &str,
        schema: Option<&TableSchema>,
        format: Format,
        database: Option<&str>,
        name: Option<&str>,
    ) -> Result<Self, TableError> {
        let names = TableNames::new(dynamodb_table, database, name)?;
        // The longest derived name must be valid too.
        TableNames::new(
            dynamodb_table,
            None,
            Some(&format!("{}{MANIFESTS_SUFFIX}", names.name)),
        )?;
        Ok(LayerSet {
            dynamodb_table: dynamodb_table.to_string(),
            schema: schema.cloned(),
            format,
            names,
        })
    }

    /// Athena name of `layer`'s table or view.
    pub fn name(&self, layer: Layer) -> String {
        let suffix = match layer {
            Layer::Raw => "",
            Layer::Compacted => COMPACTED_SUFFIX,
            Layer::Manifests => MANIFESTS_SUFFIX,
            Layer::View => VIEW_SUFFIX,
        };
        format!("{}{suffix}", self.names.name)
    }

    /// `"database"."name"` (or `"name"`) of `layer`, for Athena SQL.
    pub fn qualified(&self, layer: Layer) -> String {
        let name = quote(&self.name(layer));
        match &self.names.database {
            Some(db) => format!("{}.{name}", quote(db)),
            None => name,
        }
    }

    /// The table of `layer` at `location`; `None` for [`Layer::View`], which has no
    /// files. The raw table is [`TableDefinition::new`]'s. The compacted table's
    /// location is the compacted layer's `<table>/`, the manifests table's its
    /// `ddb-archiver-manifests/<table>/`.
    pub fn table(
        &self,
        layer: Layer,
        location: &str,
    ) -> Result<Option<TableDefinition>, TableError> {
        let schema = self.schema.as_ref();
        let table = &self.dynamodb_table;
        let db = self.names.database.as_deref();
        let def = match layer {
            Layer::View => return Ok(None),
            Layer::Raw => TableDefinition::new(
                table,
                schema,
                self.format,
                location,
                db,
                Some(&self.names.name),
            )?,
            Layer::Compacted => {
                let name = self.name(layer);
                let mut def = TableDefinition::new(
                    table,
                    schema,
                    Format::Parquet,
                    location,
                    db,
                    Some(&name),
                )?;
                if def.location.contains(&format!("/{MANIFESTS_DIR}/")) {
                    return Err(location_error(
                        location,
                        format!("is the manifests' folder; the compacted table's is the compacted layer's {table}/"),
                    ));
                }
                def.columns.push(column(VERSION_COLUMN, "string"));
                def
            }
            Layer::Manifests => {
                let name = self.name(layer);
                let mut def =
                    TableDefinition::new(table, None, Format::JsonlGz, location, db, Some(&name))?;
                let tail = format!("/{MANIFESTS_DIR}/{table}/");
                if !def.location.ends_with(&tail) {
                    return Err(location_error(
                        location,
                        format!("must be the compacted layer's {MANIFESTS_DIR}/{table}/"),
                    ));
                }
                def.columns = MANIFEST_COLUMNS.iter().map(|(n, t)| column(n, t)).collect();
                def.storage = Storage {
                    serde: HIVE_JSON_SERDE,
                    serde_parameters: Vec::new(),
                    ..Storage::of(Format::JsonlGz)
                };
                def
            }
        };
        Ok(Some(def))
    }

    /// The raw table's data columns, which the view shows.
    pub fn view_columns(&self) -> Vec<TableColumn> {
        data_columns(self.schema.as_ref(), self.format)
    }

    /// `CREATE OR REPLACE VIEW <name>_all`: the compacted rows of each day's manifest
    /// version, then the raw rows of the days without a manifest, each event once.
    pub fn view_sql(&self) -> String {
        let cols = self.view_columns();
        let select = |alias: &str| {
            cols.iter()
                .map(|c| format!("{alias}.{}", quote(&c.name)))
                .chain(
                    PARTITION_COLUMNS
                        .iter()
                        .map(|p| format!("{alias}.{}", quote(p))),
                )
                .collect::<Vec<_>>()
                .join(", ")
        };
        let same_day = |a: &str, b: &str| {
            PARTITION_COLUMNS
                .iter()
                .map(|p| format!("{a}.{p} = {b}.{p}", p = quote(p)))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let manifests = self.qualified(Layer::Manifests);
        let raw_days = format!(
            "NOT EXISTS (\n    SELECT 1 FROM {manifests} AS m\n    WHERE {}\n  )",
            same_day("m", "r")
        );
        format!(
            "CREATE OR REPLACE VIEW {view} AS\n\
             SELECT {c_cols}\n\
             FROM {compacted} AS c\n\
             JOIN {manifests} AS m\n  ON {c_day}\n  AND m.\"version\" = c.{version}\n\
             UNION ALL\n\
             SELECT {r_cols}\n\
             FROM {raw_rows}\n\
             WHERE r.{copy} = 1;\n",
            view = self.qualified(Layer::View),
            c_cols = select("c"),
            compacted = self.qualified(Layer::Compacted),
            c_day = same_day("m", "c"),
            version = quote(VERSION_COLUMN),
            r_cols = select("r"),
            raw_rows = numbered_copies(&self.qualified(Layer::Raw), "r", &raw_days),
            copy = quote(COPY_COLUMN),
        )
    }

    /// The compaction version of `date` compacted on Athena: 16 hex digits of SHA-256
    /// over the DynamoDB table, the day and [`SQL_VERSION_TAG`]. The same for every run,
    /// so a day is compacted this way once (see [`Self::compact_sql`]).
    pub fn sql_version(&self, date: NaiveDate) -> String {
        let text = format!("{}\n{date}\n{SQL_VERSION_TAG}\n", self.dynamodb_table);
        crate::model::hex::hex_digest(Sha256::digest(text.as_bytes()).as_slice())
    }

    /// The Athena statements that compact `date` on Athena, `;`-terminated, one after
    /// the other: `INSERT INTO <name>_compacted` the day's changes, each `event_id`
    /// once, ordered by time then sequence number, with [`Self::sql_version`]; then
    /// `INSERT INTO <name>_manifests` the day's manifest row (its `rows` counted from
    /// the compacted table, `duplicates_dropped` the raw rows left out,
    /// `event_id_digest` NULL). Columns the raw files lack (typed columns of a
    /// `jsonl.gz` archive) are NULL.
    pub fn compact_sql(&self, date: NaiveDate) -> String {
        let version = self.sql_version(date);
        let raw_cols: Vec<String> = self.view_columns().into_iter().map(|c| c.name).collect();
        let compacted_cols = data_columns(self.schema.as_ref(), Format::Parquet);
        let select: Vec<String> = compacted_cols
            .iter()
            .map(|c| {
                if raw_cols.contains(&c.name) {
                    quote(&c.name)
                } else {
                    format!("NULL AS {}", quote(&c.name))
                }
            })
            .chain([format!("'{version}' AS {}", quote(VERSION_COLUMN))])
            .chain(PARTITION_COLUMNS.iter().map(|p| quote(p)))
            .collect();
        let (year, month, day) = (
            format!("{:04}", date.year()),
            format!("{:02}", date.month()),
            format!("{:02}", date.day()),
        );
        let on_day = format!("\"year\" = '{year}' AND \"month\" = '{month}' AND \"day\" = '{day}'");
        let raw = self.qualified(Layer::Raw);
        let compacted = self.qualified(Layer::Compacted);
        let rows = format!(
            "(SELECT count(*) FROM {compacted} WHERE {on_day} AND {} = '{version}')",
            quote(VERSION_COLUMN)
        );
        format!(
            "-- Compacts {table} of {date} on Athena, version {version}. Run the statements in\n\
             -- order, once per day: a previous compaction of the day (files and manifest) must\n\
             -- be removed from S3 first, as Athena cannot delete from external tables.\n\
             INSERT INTO {compacted}\n\
             SELECT {select}\n\
             FROM {raw_rows}\n\
             WHERE changes.{copy} = 1\n\
             ORDER BY \"approximate_creation_time\", length(\"sequence_number\"), \"sequence_number\";\n\
             \n\
             INSERT INTO {manifests}\n\
             SELECT '{version}' AS \"version\",\n  \
             {rows} AS \"rows\",\n  \
             (SELECT count(*) FROM {raw} WHERE {on_day}) - {rows} AS \"duplicates_dropped\",\n  \
             CAST(NULL AS varchar) AS \"event_id_digest\",\n  \
             '{year}' AS \"year\", '{month}' AS \"month\", '{day}' AS \"day\";\n",
            table = self.dynamodb_table,
            select = select.join(", "),
            raw_rows = numbered_copies(&raw, "changes", &on_day),
            copy = quote(COPY_COLUMN),
            manifests = self.qualified(Layer::Manifests),
        )
    }
}

/// The rows of `table` (aliased `r` inside) that match `condition`, each numbered in
/// `_copy` among the copies of its event (1 for the copy kept: the earliest in stream
/// order, by time and then sequence number as a number, as compaction keeps it), as
/// `(...) AS <alias>`. Copies are numbered per day, as compaction drops them per
/// table-day, which keeps conditions on the day's partitions below the window, where
/// they prune partitions.
fn numbered_copies(table: &str, alias: &str, condition: &str) -> String {
    let partitions: Vec<String> = PARTITION_COLUMNS.iter().map(|p| quote(p)).collect();
    format!(
        "(\n  SELECT r.*, row_number() OVER (\n    PARTITION BY {}, \"event_id\"\n    ORDER BY \"approximate_creation_time\", length(\"sequence_number\"), \"sequence_number\"\n  ) AS {copy}\n  \
         FROM {table} AS r\n  WHERE {condition}\n) AS {alias}",
        partitions.join(", "),
        copy = quote(COPY_COLUMN),
    )
}

fn column(name: &str, ty: &str) -> TableColumn {
    TableColumn {
        name: name.to_string(),
        ty: ty.to_string(),
        comment: None,
    }
}

fn location_error(location: &str, reason: String) -> TableError {
    TableError::Location {
        location: location.to_string(),
        reason,
    }
}

/// A double-quoted Athena SQL identifier (names here are validated: no quotes inside).
fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn invoices() -> TableSchema {
        TableSchema::parse(
            r#"{"table": "invoices", "columns": [
                {"name": "amount", "attribute": "amount", "type": "decimal(18,2)"}]}"#,
            Path::new("invoices.json"),
        )
        .unwrap()
    }

    fn set(format: Format) -> LayerSet {
        LayerSet::new("invoices", Some(&invoices()), format, Some("archive"), None).unwrap()
    }

    #[test]
    fn layers_parse_by_name() {
        for l in Layer::ALL {
            assert_eq!(Layer::parse(l.name()), Some(l));
        }
        assert_eq!(Layer::parse("Raw"), None);
    }

    #[test]
    fn raw_layer_is_the_archive_table() {
        let s = set(Format::JsonlGz);
        let raw = s.table(Layer::Raw, "s3://b/p/invoices/").unwrap().unwrap();
        let direct = TableDefinition::new(
            "invoices",
            Some(&invoices()),
            Format::JsonlGz,
            "s3://b/p/invoices/",
            Some("archive"),
            None,
        )
        .unwrap();
        assert_eq!(raw.ddl(), direct.ddl());
        assert!(s.table(Layer::View, "s3://b/").unwrap().is_none());
    }

    #[test]
    fn compacted_table_is_parquet_with_typed_columns_and_version() {
        let s = set(Format::JsonlGz);
        let def = s
            .table(Layer::Compacted, "s3://b/c/invoices")
            .unwrap()
            .unwrap();
        assert_eq!(def.name, "invoices_compacted");
        let names: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[12..], ["amount", "type_errors", "compaction_version"]);
        let ddl = def.ddl();
        assert!(
            ddl.contains("STORED AS PARQUET\nLOCATION 's3://b/c/invoices/'"),
            "{ddl}"
        );
        assert!(ddl.contains("'storage.location.template' = 's3://b/c/invoices/year=${year}/month=${month}/day=${day}/'"));
        assert!(s
            .table(
                Layer::Compacted,
                "s3://b/c/ddb-archiver-manifests/invoices/"
            )
            .is_err());
    }

    #[test]
    fn manifests_table_reads_four_keys_with_the_hive_json_serde() {
        let s = set(Format::Parquet);
        let def = s
            .table(
                Layer::Manifests,
                "s3://b/c/ddb-archiver-manifests/invoices/",
            )
            .unwrap()
            .unwrap();
        let ddl = def.ddl();
        assert!(ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `archive`.`invoices_manifests` (\n  `version` string,\n  `rows` bigint,\n  `duplicates_dropped` bigint,\n  `event_id_digest` string\n)"), "{ddl}");
        assert!(
            ddl.contains(
                "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\nSTORED AS INPUTFORMAT"
            ),
            "{ddl}"
        );
        assert!(ddl.contains("'projection.day.digits' = '2'"));
        let glue = def.glue_table_input();
        assert_eq!(
            glue["storageDescriptor"]["serdeInfo"]["serializationLibrary"],
            HIVE_JSON_SERDE
        );
        for bad in [
            "s3://b/c/invoices/",
            "s3://b/c/ddb-archiver-manifests/orders/",
        ] {
            let e = s.table(Layer::Manifests, bad).unwrap_err().to_string();
            assert!(e.contains("ddb-archiver-manifests/invoices/"), "{e}");
        }
    }

    #[test]
    fn view_joins_on_the_manifest_version_and_anti_joins_raw_days() {
        let sql = set(Format::Parquet).view_sql();
        assert!(
            sql.starts_with(
                "CREATE OR REPLACE VIEW \"archive\".\"invoices_all\" AS\nSELECT c.\"event_id\","
            ),
            "{sql}"
        );
        assert!(sql.contains("c.\"amount\", c.\"type_errors\", c.\"year\", c.\"month\", c.\"day\"\nFROM \"archive\".\"invoices_compacted\" AS c"), "{sql}");
        assert!(
            sql.contains("AND m.\"version\" = c.\"compaction_version\""),
            "{sql}"
        );
        assert!(
            sql.contains("PARTITION BY \"year\", \"month\", \"day\", \"event_id\"\n    ORDER BY \"approximate_creation_time\", length(\"sequence_number\")"),
            "{sql}"
        );
        assert!(
            sql.contains("FROM \"archive\".\"invoices\" AS r\n  WHERE NOT EXISTS"),
            "{sql}"
        );
        assert!(sql.ends_with(") AS r\nWHERE r.\"_copy\" = 1;\n"), "{sql}");
        // A jsonl.gz archive's view has the standard columns only.
        let sql = set(Format::JsonlGz).view_sql();
        assert!(
            !sql.contains("amount") && sql.contains("c.\"record\", c.\"year\""),
            "{sql}"
        );
    }

    #[test]
    fn compact_sql_has_a_fixed_version_per_day() {
        let s = set(Format::JsonlGz);
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let v = s.sql_version(day);
        assert_eq!(v.len(), 16);
        assert_eq!(v, s.sql_version(day));
        assert_ne!(v, s.sql_version(day.succ_opt().unwrap()));
        let sql = s.compact_sql(day);
        assert!(sql.contains(&format!("NULL AS \"amount\", NULL AS \"type_errors\", '{v}' AS \"compaction_version\", \"year\", \"month\", \"day\"")), "{sql}");
        assert!(
            sql.contains("WHERE \"year\" = '2026' AND \"month\" = '03' AND \"day\" = '02'"),
            "{sql}"
        );
        assert!(
            sql.contains("INSERT INTO \"archive\".\"invoices_manifests\"\nSELECT"),
            "{sql}"
        );
        assert_eq!(sql.matches(";\n").count(), 2);
    }

    #[test]
    fn long_names_are_refused() {
        let long = "a".repeat(250);
        assert!(LayerSet::new("invoices", None, Format::Parquet, None, Some(&long)).is_err());
    }
}
