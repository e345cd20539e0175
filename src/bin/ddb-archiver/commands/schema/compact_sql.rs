//! `ddb-archiver schema compact-sql`: the Athena statements that compact one day.

use std::process::ExitCode;

use super::layer_set;
use crate::settings::FormatArg;

/// The flags of `schema compact-sql`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["schema", "table"])))]
pub struct CompactSqlArgs {
    /// Schema file of the table: typed columns and `type_errors`.
    #[arg(long, value_name = "FILE")]
    schema: Option<std::path::PathBuf>,
    /// DynamoDB table name, without a schema: the standard columns only.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// The UTC day to compact.
    #[arg(long, value_name = "YYYY-MM-DD")]
    day: chrono::NaiveDate,
    /// File format of the raw archive.
    #[arg(long, value_enum, default_value = "parquet")]
    format: FormatArg,
    /// Athena database of the tables.
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Athena name of the raw table (default: derived from the DynamoDB table name).
    #[arg(long, value_name = "NAME")]
    table_name: Option<String>,
}

/// Prints the `INSERT INTO <name>_compacted` and `INSERT INTO <name>_manifests`
/// statements for `--day`.
pub fn run(args: CompactSqlArgs) -> anyhow::Result<ExitCode> {
    let set = layer_set(
        args.schema.as_deref(),
        args.table.as_deref(),
        args.format,
        args.database.as_deref(),
        args.table_name.as_deref(),
    )?;
    print!("{}", set.compact_sql(args.day));
    Ok(ExitCode::SUCCESS)
}
