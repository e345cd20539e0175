//! `ddb-archiver baseline`: archive the items a table held before its stream was
//! archived, from a DynamoDB export (full: a baseline; incremental: a gap repair) or a
//! parallel Scan, and record the coverage.

use std::process::ExitCode;

use anyhow::Context as _;
use ddb_archiver::baseline::{self, scan, ExportOptions, ExportRoot, KeySchema};
use ddb_archiver::model::Location;
use ddb_archiver::settings::Settings;

use crate::settings::FormatArg;

/// The flags of `baseline`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["export", "scan"])))]
pub struct BaselineArgs {
    /// The archive: a local directory or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    dest: String,

    /// The export's own folder: a local directory (a downloaded
    /// `AWSDynamoDB/<ExportId>/`) or `s3://bucket/prefix/AWSDynamoDB/<ExportId>/`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix/AWSDynamoDB/<ExportId>/")]
    export: Option<String>,

    /// Scan this table instead of reading an export (its stream must be enabled).
    #[arg(long, value_name = "TABLE", conflicts_with_all = ["export", "table", "keys"])]
    scan: Option<String>,

    /// Refuse an export of any other table.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,

    /// The table's key attributes, for a full export: partition key, and sort key if
    /// any. Without it, the key schema is read with DynamoDB DescribeTable.
    #[arg(long, value_name = "PK[,SK]")]
    keys: Option<String>,

    /// File format of the archived changes.
    #[arg(long, value_enum, default_value = "parquet")]
    format: FormatArg,

    /// Directory of schema files: Parquet files of those tables also carry typed
    /// columns.
    #[arg(long, value_name = "DIR")]
    schemas: Option<std::path::PathBuf>,

    /// KMS key (ID, ARN or alias) to encrypt S3 objects with (SSE-KMS).
    #[arg(long, value_name = "KEY")]
    kms_key_id: Option<String>,

    /// Parallel Scan segments (`--scan`).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    segments: u32,

    /// Most read capacity units consumed per second by the Scan, all segments together
    /// (`--scan`).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_read_units: u32,

    /// Export data files read at the same time (default: the number of CPUs, at most
    /// 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: Option<u32>,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Archives the export or the Scan, then writes the coverage record and prints the
/// summary; exits 0 when everything was archived and recorded, 1 otherwise.
pub async fn run(args: BaselineArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        dest: args.dest.clone(),
        format: args.format.into(),
        kms_key_id: args.kms_key_id.clone(),
        schemas: args.schemas.clone(),
        ..Settings::default()
    };
    let dest = Location::parse(&args.dest).map_err(|e| anyhow::anyhow!("invalid --dest: {e}"))?;
    if let Some(t) = &args.table {
        ddb_archiver::model::key::validate_table_name(t)
            .map_err(|e| anyhow::anyhow!("invalid --table: {e}"))?;
    }
    let keys = args
        .keys
        .as_deref()
        .map(KeySchema::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid --keys: {e}"))?;
    let sink = ddb_archiver::sink::open(&dest, settings.kms_key_id.as_deref()).await?;
    let report = match (&args.export, &args.scan) {
        (Some(export), _) => {
            let location =
                Location::parse(export).map_err(|e| anyhow::anyhow!("invalid --export: {e}"))?;
            let root = ExportRoot::open(&location).await;
            let options = ExportOptions {
                table: args.table.clone(),
                keys,
                concurrency: args
                    .concurrency
                    .map_or_else(baseline::default_concurrency, |n| n as usize),
            };
            baseline::run_export(&root, &options, &settings, sink).await
        }
        (None, Some(table)) => {
            let options = scan::ScanOptions {
                table: table.clone(),
                segments: args.segments,
                max_read_units: f64::from(args.max_read_units),
            };
            scan::run_scan(&options, &settings, sink).await
        }
        (None, None) => anyhow::bail!("give --export or --scan"),
    };
    let report = report
        .context("baseline not recorded (objects already stored stay; a rerun completes it)")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(ExitCode::SUCCESS)
}
