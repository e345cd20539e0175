//! `ddb-archiver schema`: Athena and Glue definitions for the archive of one DynamoDB
//! table, one module per subcommand (`ddl` and `glue` share [`table`]), and the
//! table-naming flags they share.

pub mod compact_sql;
pub mod infer;
pub mod restore_sql;
pub mod table;

use std::process::ExitCode;

use clap::Subcommand;

use crate::settings::FormatArg;

/// The subcommands of `schema`.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print the Athena `CREATE EXTERNAL TABLE` statement (partition projection on) of a
    /// layer's table, or the view's `CREATE OR REPLACE VIEW`.
    Ddl(table::TableArgs),
    /// Print the same table as a CloudFormation `AWS::Glue::Table` `TableInput` (JSON).
    Glue(table::TableArgs),
    /// Print the Athena statements that compact one day on Athena: `INSERT INTO
    /// <name>_compacted`, then `INSERT INTO <name>_manifests`.
    CompactSql(compact_sql::CompactSqlArgs),
    /// Print the Athena `UNLOAD` that writes the table's state at a time T as DynamoDB
    /// import files (the restore of archives too big for one machine).
    RestoreSql(restore_sql::RestoreSqlArgs),
    /// Propose a schema file from archived records.
    Infer(infer::InferArgs),
}

/// Runs one `schema` subcommand.
pub async fn run(cmd: SchemaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SchemaCommand::Ddl(args) => table::run(args, false),
        SchemaCommand::Glue(args) => table::run(args, true),
        SchemaCommand::CompactSql(args) => compact_sql::run(args),
        SchemaCommand::RestoreSql(args) => restore_sql::run(args),
        SchemaCommand::Infer(args) => infer::run(args).await,
    }
}

/// The tables of the table named by `--schema FILE` or `--table NAME`.
pub fn layer_set(
    schema: Option<&std::path::Path>,
    table: Option<&str>,
    format: FormatArg,
    database: Option<&str>,
    table_name: Option<&str>,
) -> anyhow::Result<ddb_archiver::schema::layer::LayerSet> {
    use ddb_archiver::schema::TableSchema;
    let schema = schema.map(TableSchema::load).transpose()?;
    let table = match (&schema, table) {
        (Some(s), _) => s.table.clone(),
        (None, Some(t)) => t.to_string(),
        (None, None) => anyhow::bail!("give --schema FILE or --table NAME"),
    };
    Ok(ddb_archiver::schema::layer::LayerSet::new(
        &table,
        schema.as_ref(),
        format.into(),
        database,
        table_name,
    )?)
}
