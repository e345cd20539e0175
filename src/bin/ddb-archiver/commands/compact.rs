//! `ddb-archiver compact`: compact each table-day of the raw archive into a separate
//! compacted layer of Parquet files with manifests.

use std::process::ExitCode;

use ddb_archiver::archive::source;
use ddb_archiver::compact::{CompactOptions, Compactor, DayStatus};
use ddb_archiver::model::Location;

use super::{finish, load_schemas, progress_bar, DaysArgs};

/// The flags of `compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// The raw archive: a local directory or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    source: String,

    /// The compacted layer: a local directory or `s3://bucket/prefix`, not the source.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    dest: String,

    /// `--table`, `--from` and `--to`.
    #[command(flatten)]
    days: DaysArgs,

    /// Directory of schema files: compacted files of those tables also carry typed
    /// columns and `type_errors`.
    #[arg(long, value_name = "DIR")]
    schemas: Option<std::path::PathBuf>,

    /// A compacted file ends once it reaches about this many bytes.
    #[arg(long, value_name = "N", default_value_t = ddb_archiver::compact::DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: usize,

    /// Bytes of changes held in memory while sorting a day, before sorted runs spill
    /// to temporary files.
    #[arg(long, value_name = "BYTES", default_value_t = ddb_archiver::compact::DEFAULT_MEMORY_BUDGET)]
    memory_budget: usize,

    /// Hours the files of a superseded version (or of a version no manifest names,
    /// left by a failed run) stay before a later run deletes them, for queries that
    /// planned on them.
    #[arg(long, value_name = "HOURS", default_value_t = ddb_archiver::compact::DEFAULT_GRACE_PERIOD.as_secs() / 3600)]
    grace_period_hours: u64,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Checks the flags, compacts the selected days, then prints the summary; exits 0 when
/// no day failed.
pub async fn run(args: CompactArgs) -> anyhow::Result<ExitCode> {
    let source_location =
        Location::parse(&args.source).map_err(|e| anyhow::anyhow!("invalid --source: {e}"))?;
    let dest_location =
        Location::parse(&args.dest).map_err(|e| anyhow::anyhow!("invalid --dest: {e}"))?;
    if source_location == dest_location {
        anyhow::bail!(
            "invalid --dest: it is the --source; the compacted layer needs a place of its own"
        );
    }
    args.days.check()?;
    if args.max_file_bytes == 0 || args.memory_budget == 0 {
        anyhow::bail!("invalid --max-file-bytes / --memory-budget: must be greater than 0");
    }
    let options = CompactOptions {
        table: args.days.table,
        from: args.days.from,
        to: args.days.to,
        schemas: load_schemas(args.schemas.as_deref())?.unwrap_or_default(),
        max_file_bytes: args.max_file_bytes,
        memory_budget: args.memory_budget,
        grace_period: std::time::Duration::from_secs(args.grace_period_hours.saturating_mul(3600)),
        ..CompactOptions::default()
    };
    let raw = source::open_location(&source_location).await;
    let dest_reader = source::open_location(&dest_location).await;
    let sink = ddb_archiver::sink::open(&dest_location, None).await?;
    let progress = progress_bar("{spinner} {elapsed} {human_pos} rows read ({per_sec})")?;
    let summary = Compactor {
        source: raw.as_ref(),
        dest: dest_reader.as_ref(),
        sink: sink.as_ref(),
        options: &options,
        progress: &progress,
    }
    .run()
    .await?;
    progress.finish_and_clear();
    let ok = summary.count(DayStatus::Failed) == 0;
    finish(args.json, &summary, summary.render_text(), ok)
}
