//! `ddb-archiver schema restore-sql`: the Athena SQL that restores a table's state at T
//! as DynamoDB import files.

use std::process::ExitCode;

use ddb_archiver::schema::restore_sql::KeyTexts;

use super::layer_set;
use crate::settings::FormatArg;

/// The flags of `schema restore-sql`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["schema", "table"])))]
#[command(group(clap::ArgGroup::new("output").required(true).args(["export_location", "select_only"])))]
pub struct RestoreSqlArgs {
    /// Schema file of the table (its name; the view's typed columns are not read).
    #[arg(long, value_name = "FILE")]
    schema: Option<std::path::PathBuf>,
    /// DynamoDB table name, without a schema.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// T: the state of the table at this instant (changes at or before it), RFC 3339;
    /// milliseconds are kept, finer digits dropped, as restore does.
    #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
    as_of: chrono::DateTime<chrono::FixedOffset>,
    /// One item only: its key attributes as DynamoDB JSON, e.g. `{"pk":{"S":"INV#1001"}}`
    /// (matched in either attribute order, as restore's --key).
    #[arg(long, value_name = "DYNAMODB_JSON")]
    key: Option<String>,
    /// Where UNLOAD writes the import files: an empty `s3://bucket/prefix/`, then the
    /// ImportTable source (DYNAMODB_JSON, GZIP).
    #[arg(long, value_name = "s3://bucket/prefix/")]
    export_location: Option<String>,
    /// Print the SELECT alone (one `line` column of `{"Item":...}` text), without the
    /// UNLOAD around it.
    #[arg(long)]
    select_only: bool,
    /// File format of the raw archive.
    #[arg(long, value_enum, default_value = "parquet")]
    format: FormatArg,
    /// Athena database of the tables and the view.
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Athena name of the raw table (default: derived from the DynamoDB table name); the
    /// SQL reads the view `<name>_all`.
    #[arg(long, value_name = "NAME")]
    table_name: Option<String>,
}

/// `--as-of`: an RFC 3339 time.
fn rfc3339(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-03-01T12:00:00Z ({e})"))
}

/// Prints the `UNLOAD` statement (or with `--select-only` its `SELECT`).
pub fn run(args: RestoreSqlArgs) -> anyhow::Result<ExitCode> {
    let set = layer_set(
        args.schema.as_deref(),
        args.table.as_deref(),
        args.format,
        args.database.as_deref(),
        args.table_name.as_deref(),
    )?;
    let as_of = args.as_of.with_timezone(&chrono::Utc);
    let key = args.key.as_deref().map(KeyTexts::parse).transpose()?;
    match args.export_location.as_deref() {
        Some(location) if !args.select_only => {
            print!("{}", set.restore_sql(as_of, key.as_ref(), location)?)
        }
        _ => println!("{};", set.restore_select(as_of, key.as_ref())),
    }
    Ok(ExitCode::SUCCESS)
}
