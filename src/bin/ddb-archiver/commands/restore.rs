//! `ddb-archiver restore`: restore a table as it was at a time T, into an existing table
//! or as DynamoDB import-from-S3 files.

use std::process::ExitCode;
use std::sync::Arc;

use ddb_archiver::model::Location;
use ddb_archiver::restore::{self, ImportOptions, RestoreOptions, Target};

use super::{print_summary, progress_bar};

/// The flags of `restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive: a local directory or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    source: String,

    /// The archived table to restore.
    #[arg(long, value_name = "NAME")]
    table: String,

    /// T: restore the table as it was at this instant (changes at or before it), RFC 3339.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    as_of: chrono::DateTime<chrono::FixedOffset>,

    /// The table written: it must exist with the archived key schema and be empty (see
    /// --allow-existing). With --start-import, the name of the table the import creates.
    #[arg(long, value_name = "TARGET")]
    to_table: String,

    /// Restore one item only: its key attributes as DynamoDB JSON, e.g.
    /// `{"pk":{"S":"INV#1001"}}`.
    #[arg(long, value_name = "DYNAMODB_JSON")]
    key: Option<String>,

    /// Compute the state and check the target (when it exists); write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Write into a target that already holds items (or an import prefix that holds
    /// files): items of the state overwrite items with the same key; others are kept.
    #[arg(long)]
    allow_existing: bool,

    /// Restore although `_rejected/` holds records of the table (or of a table that
    /// cannot be told) at or before T: those changes are not in the archive, so their
    /// items may be wrong at T. Without it, restore names them and stops.
    #[arg(long)]
    allow_rejected: bool,

    /// Restore although the archive is not complete at T: no baseline of the table was
    /// archived, or T is before the earliest baseline's time. Without it, restore says
    /// so and stops before writing anything.
    #[arg(long)]
    allow_incomplete: bool,

    /// Write the state as DynamoDB import-from-S3 input (gzip DynamoDB JSON lines) under
    /// this location, in a sub-prefix of the run's own (`run-<token>/`), instead of
    /// writing items (a local directory is accepted too).
    #[arg(long, value_name = "s3://bucket/prefix")]
    import_format: Option<String>,

    /// After --import-format, call ImportTable to create --to-table from this run's
    /// sub-prefix only (on-demand billing, the archived key schema).
    #[arg(long, requires = "import_format")]
    start_import: bool,

    /// The partition key's name, for --start-import when the archived key has two
    /// attributes (the other is the sort key).
    #[arg(long, value_name = "NAME", requires = "start_import")]
    partition_key: Option<String>,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    athena: super::restore_athena::AthenaArgs,

    /// BatchWriteItem requests in flight (1 to 64).
    #[arg(long, value_name = "N", default_value_t = ddb_archiver::restore::DEFAULT_CONCURRENCY)]
    concurrency: usize,

    /// Bytes of changes held in memory before sorted runs spill to temporary files.
    #[arg(long, value_name = "BYTES", default_value_t = ddb_archiver::restore::DEFAULT_MEMORY_BUDGET)]
    memory_budget: usize,
}

/// `--as-of`: an RFC 3339 time, with an example in the error.
fn parse_rfc3339(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-03-01T12:00:00Z ({e})"))
}

/// Computes the state at `--as-of` and writes it to the target, then prints the
/// summary; exits 0 when the whole state was written.
pub async fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let import = args
        .import_format
        .as_deref()
        .map(|dest| {
            Location::parse(dest)
                .map(|location| ImportOptions {
                    location,
                    start: args.start_import,
                    partition_key: args.partition_key.clone(),
                    file_bytes: restore::import::DEFAULT_FILE_BYTES,
                })
                .map_err(|e| anyhow::anyhow!("invalid --import-format: {}", e.reason))
        })
        .transpose()?;
    let opts = RestoreOptions {
        table: args.table,
        as_of: args.as_of.with_timezone(&chrono::Utc),
        key: args.key,
        to_table: args.to_table,
        dry_run: args.dry_run,
        allow_existing: args.allow_existing,
        allow_rejected: args.allow_rejected,
        allow_incomplete: args.allow_incomplete,
        memory_budget: args.memory_budget,
        concurrency: args.concurrency,
        retry: restore::write::default_policy(),
        import,
    };
    let source = ddb_archiver::archive::source::open(&args.source, "--source").await?;
    if args.athena.engine == super::restore_athena::Engine::Athena {
        return super::restore_athena::run(&args.athena, source.as_ref(), &opts, args.json).await;
    }
    let shared = ddb_archiver::aws::shared_config().await;
    // The SDK does not retry: restore retries each batch with its own policy.
    let client = ddb_archiver::aws::dynamodb(
        &shared,
        &ddb_archiver::aws::ClientOptions {
            retries: ddb_archiver::aws::SdkRetries::Off,
            attempt_timeout: Some(std::time::Duration::from_secs(30)),
        },
    );
    let target = match &opts.import {
        None => Target::Table {
            writer: Arc::new(client.clone()),
            client,
        },
        Some(import) => Target::Import {
            sink: ddb_archiver::sink::open(&import.location, None).await?,
            existing: ddb_archiver::archive::source::open_location(&import.location).await,
            client: import.start.then_some(client),
        },
    };
    let progress = progress_bar("{spinner} {elapsed} {human_pos} changes read ({per_sec}), {msg}")?;
    let result = restore::restore(source.as_ref(), target, &opts, &progress).await;
    let (summary, error) = match result {
        Ok(s) => (s, None),
        Err(failure) => (failure.summary, Some(failure.error)),
    };
    print_summary(args.json, &summary, summary.render_text())?;
    match error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(e.into()),
    }
}
