//! The `ddb-archiver` command line: archive local event files into a directory or S3,
//! replay the archive as Lambda events, compact it and verify it.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ddb_archiver::pipeline::Archiver;

#[path = "common/settings.rs"]
mod settings;
use settings::{FormatArg, SettingsArgs};

/// Archive DynamoDB change streams as lossless, event-time-partitioned gzip JSON lines
/// or Parquet.
#[derive(Debug, Parser)]
#[command(name = "ddb-archiver", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Archive event files (`{"Records": [...]}` documents, one or more per file).
    ///
    /// Exit status: 0 when every record was archived, 2 when some were rejected (and
    /// kept under `_rejected/`), 1 on a fatal error.
    Archive(ArchiveArgs),
    /// Replay archived changes, in stream order and without duplicates, as Lambda events
    /// `{"Records":[...]}`: one per line, or invoking a Lambda function.
    ///
    /// Exit status: 0 when every selected change was replayed, 1 otherwise.
    Replay(ReplayArgs),
    /// Compact each table-day's raw objects into few large Parquet files, ordered by
    /// time then sequence number, each event once, with a manifest per table-day, in a
    /// separate compacted layer. The raw archive is only read.
    ///
    /// Exit status: 0 when every selected day is compacted or unchanged, 1 otherwise
    /// (each failed day is named with the object at fault; the other days are done).
    Compact(CompactArgs),
    /// Restore a table as it was at a time T: for every key, the latest archived change
    /// at or before T, written into an existing table with `BatchWriteItem`, or as
    /// DynamoDB import-from-S3 files (`--import-format`).
    ///
    /// The state is computed in full (bounded memory, spilling to temporary files)
    /// before anything is written: archives that cannot give it, a missing or non-empty
    /// target and a key-schema mismatch stop with nothing written.
    ///
    /// Exit status: 0 when the whole state was written, 1 otherwise.
    Restore(RestoreArgs),
    /// Verify the archive's integrity: every object (raw, rejected, compacted,
    /// manifests) is read again and checked against its name, its manifest, the records
    /// it holds and, on S3, the checksum stored at upload.
    ///
    /// Exit status: 0 when everything holds, 1 otherwise (each bad object is named).
    Verify(VerifyArgs),
    /// Athena / Glue table definitions for the archive of one DynamoDB table.
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The archive: a local directory or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    source: String,

    /// The table to replay.
    #[arg(long, value_name = "NAME")]
    table: String,

    /// Earliest `approximate_creation_time` replayed (inclusive), RFC 3339.
    #[arg(long, value_name = "RFC3339")]
    from: Option<chrono::DateTime<chrono::FixedOffset>>,

    /// End of the range (exclusive), RFC 3339.
    #[arg(long, value_name = "RFC3339")]
    to: Option<chrono::DateTime<chrono::FixedOffset>>,

    /// Replay one item only: its key attributes as DynamoDB JSON, e.g.
    /// `{"pk":{"S":"INV#1001"}}`.
    #[arg(long, value_name = "DYNAMODB_JSON")]
    key: Option<String>,

    /// Replay only these event names.
    #[arg(long, value_name = "INSERT,MODIFY,REMOVE", value_delimiter = ',', value_parser = parse_event_name)]
    event: Vec<ddb_archiver::model::EventName>,

    /// Most records per event (at most 10000); events also stay under 6 MB.
    #[arg(long, value_name = "N", default_value_t = 100)]
    batch_size: usize,

    /// Where events go, one per line: a file, or `-` for standard output.
    #[arg(
        long,
        value_name = "FILE|-",
        default_value = "-",
        conflicts_with = "invoke_function"
    )]
    out: String,

    /// Invoke this Lambda function with each event instead of writing it.
    #[arg(long, value_name = "NAME")]
    invoke_function: Option<String>,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,

    /// Replay only the changes after this event (the summary's last event).
    #[arg(long, value_name = "EVENT_ID")]
    resume_after: Option<String>,

    /// Resume after the event ID in this file, if it exists, and keep it updated with
    /// the last delivered event.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<std::path::PathBuf>,

    /// Report corrupt files and go on instead of stopping.
    #[arg(long)]
    skip_corrupt: bool,

    /// Bytes of one day's changes held in memory before sorted runs spill to
    /// temporary files.
    #[arg(long, value_name = "BYTES", default_value_t = ddb_archiver::replay::DEFAULT_MEMORY_BUDGET)]
    memory_budget: usize,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
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

    /// Write the state as DynamoDB import-from-S3 input (gzip DynamoDB JSON lines) to
    /// this location instead of writing items (a local directory is accepted too).
    #[arg(long, value_name = "s3://bucket/prefix")]
    import_format: Option<String>,

    /// After --import-format, call ImportTable to create --to-table from the files
    /// (on-demand billing, the archived key schema).
    #[arg(long, requires = "import_format")]
    start_import: bool,

    /// The partition key's name, for --start-import when the archived key has two
    /// attributes (the other is the sort key).
    #[arg(long, value_name = "NAME", requires = "start_import")]
    partition_key: Option<String>,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,

    /// BatchWriteItem requests in flight (1 to 64).
    #[arg(long, value_name = "N", default_value_t = ddb_archiver::restore::DEFAULT_CONCURRENCY)]
    concurrency: usize,

    /// Bytes of changes held in memory before sorted runs spill to temporary files.
    #[arg(long, value_name = "BYTES", default_value_t = ddb_archiver::restore::DEFAULT_MEMORY_BUDGET)]
    memory_budget: usize,
}

#[derive(Debug, clap::Args)]
struct CompactArgs {
    /// The raw archive: a local directory or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    source: String,

    /// The compacted layer: a local directory or `s3://bucket/prefix`, not the source.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    dest: String,

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

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_rfc3339(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-03-01T12:00:00Z ({e})"))
}

/// The table-days a command works on.
#[derive(Debug, clap::Args)]
struct DaysArgs {
    /// Only this table (default: every table under the source; `_rejected/` objects
    /// belong to no table).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,

    /// First UTC day (inclusive); `_rejected/` objects by their processing date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: Option<chrono::NaiveDate>,

    /// Last UTC day (inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: Option<chrono::NaiveDate>,
}

impl DaysArgs {
    /// Checks `--table` and `--from`/`--to`, naming the flag at fault.
    fn check(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.table {
            ddb_archiver::model::key::validate_table_name(t)
                .map_err(|e| anyhow::anyhow!("invalid --table: {e}"))?;
        }
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f > t {
                anyhow::bail!("invalid --from/--to: --from {f} is after --to {t}");
            }
        }
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The archive: a raw archive, a compacted layer, or both; a local directory or
    /// `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    source: String,

    #[command(flatten)]
    days: DaysArgs,

    /// Directory of schema files: the typed columns of Parquet files are checked too.
    #[arg(long, value_name = "DIR")]
    schemas: Option<std::path::PathBuf>,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_event_name(s: &str) -> Result<ddb_archiver::model::EventName, String> {
    ddb_archiver::model::EventName::parse(s)
        .ok_or_else(|| format!("{s:?} is not INSERT, MODIFY or REMOVE"))
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Print the Athena `CREATE EXTERNAL TABLE` statement (partition projection on) of a
    /// layer's table, or the view's `CREATE OR REPLACE VIEW`.
    Ddl(TableArgs),
    /// Print the same table as a CloudFormation `AWS::Glue::Table` `TableInput` (JSON).
    Glue(TableArgs),
    /// Print the Athena statements that compact one day on Athena: `INSERT INTO
    /// <name>_compacted`, then `INSERT INTO <name>_manifests`.
    CompactSql(CompactSqlArgs),
    /// Propose a schema file from archived records.
    Infer(InferArgs),
}

#[derive(Debug, clap::Args)]
struct InferArgs {
    /// DynamoDB table to propose a schema for (needed when the files hold several).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// Archive files (`.parquet`, `.json.gz`), or directories and `s3://bucket/prefix`
    /// locations to search for them.
    #[arg(required = true, value_name = "PATH|s3://bucket/prefix")]
    paths: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["schema", "table"])))]
struct TableArgs {
    /// Schema file of the table: standard columns, typed columns and `type_errors`.
    #[arg(long, value_name = "FILE")]
    schema: Option<std::path::PathBuf>,
    /// DynamoDB table name, without a schema: the standard columns only.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// Where the layer's files are: the archive's `s3://bucket/prefix/<table>/` (raw),
    /// the compacted layer's `s3://…/<table>/` (compacted) or `s3://…/_manifests/<table>/`
    /// (manifests). Not used by the view.
    #[arg(long, value_name = "S3_URL")]
    location: Option<String>,
    /// File format of the raw archive (it decides the raw table's and the view's columns).
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Athena database to create the table in.
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Athena name of the raw table (default: derived from the DynamoDB table name); the
    /// others are `<name>_compacted`, `<name>_manifests` and the view `<name>_all`.
    #[arg(long, value_name = "NAME")]
    table_name: Option<String>,
    /// Which table: the raw archive, the compacted layer, its manifests, or the view
    /// over all three.
    #[arg(long, value_enum, default_value = "raw")]
    layer: LayerArg,
}

/// `--layer`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayerArg {
    /// The raw archive's table `<name>`.
    Raw,
    /// The compacted layer's table `<name>_compacted`.
    Compacted,
    /// The compacted layer's manifests, `<name>_manifests`.
    Manifests,
    /// The view `<name>_all`: compacted days from the compacted layer, other days raw.
    View,
}

impl From<LayerArg> for ddb_archiver::schema::layer::Layer {
    fn from(l: LayerArg) -> Self {
        use ddb_archiver::schema::layer::Layer;
        match l {
            LayerArg::Raw => Layer::Raw,
            LayerArg::Compacted => Layer::Compacted,
            LayerArg::Manifests => Layer::Manifests,
            LayerArg::View => Layer::View,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["schema", "table"])))]
struct CompactSqlArgs {
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

#[derive(Debug, clap::Args)]
struct ArchiveArgs {
    #[command(flatten)]
    settings: SettingsArgs,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,

    /// Event files to archive; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1 (fatal): exit status 2 means "some records rejected".
            let _ = e.print();
            return Ok(if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Command::Archive(args) => runtime.block_on(archive(args)),
        Command::Replay(args) => runtime.block_on(replay(args)),
        Command::Compact(args) => runtime.block_on(compact(args)),
        Command::Restore(args) => runtime.block_on(restore(args)),
        Command::Verify(args) => runtime.block_on(verify(args)),
        Command::Schema(cmd) => runtime.block_on(schema(cmd)),
    }
}

async fn schema(cmd: SchemaCommand) -> anyhow::Result<ExitCode> {
    use ddb_archiver::schema::layer::Layer;
    let (args, glue) = match cmd {
        SchemaCommand::Ddl(args) => (args, false),
        SchemaCommand::Glue(args) => (args, true),
        SchemaCommand::CompactSql(args) => {
            let set = layer_set(
                args.schema.as_deref(),
                args.table.as_deref(),
                args.format,
                args.database.as_deref(),
                args.table_name.as_deref(),
            )?;
            print!("{}", set.compact_sql(args.day));
            return Ok(ExitCode::SUCCESS);
        }
        SchemaCommand::Infer(args) => {
            let mut inferrer = ddb_archiver::infer::Inferrer::new(args.table);
            for path in &args.paths {
                inferrer.add_location(path).await?;
            }
            println!("{}", serde_json::to_string_pretty(&inferrer.finish()?)?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let layer = Layer::from(args.layer);
    if layer == Layer::View && glue {
        anyhow::bail!(
            "invalid --layer view: a Glue table cannot hold an Athena view; \
             create the view by running `ddb-archiver schema ddl --layer view` in Athena"
        );
    }
    let set = layer_set(
        args.schema.as_deref(),
        args.table.as_deref(),
        args.format,
        args.database.as_deref(),
        args.table_name.as_deref(),
    )?;
    if layer == Layer::View {
        print!("{}", set.view_sql());
        return Ok(ExitCode::SUCCESS);
    }
    let location = args
        .location
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--location is required with --layer {}", layer.name()))?;
    let def = set
        .table(layer, location)
        .map_err(|e| anyhow::anyhow!("invalid --location for --layer {}: {e}", layer.name()))?
        .ok_or_else(|| anyhow::anyhow!("--layer {} has no table", layer.name()))?;
    print!("{}", if glue { def.glue_json() } else { def.ddl() });
    Ok(ExitCode::SUCCESS)
}

/// The tables of the table named by `--schema FILE` or `--table NAME`.
fn layer_set(
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

async fn archive(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let config = args.settings.to_settings();
    let invalid = |e: ddb_archiver::settings::SettingsError| {
        anyhow::anyhow!("{}", settings::describe(&e, false))
    };
    config.validate().map_err(invalid)?;
    let dest = config.destination().map_err(invalid)?;
    let sink = ddb_archiver::sink::open(&dest, config.kms_key_id.as_deref()).await?;
    let mut archiver = Archiver::new(&config, sink).map_err(invalid)?;
    for file in &args.files {
        let bytes = if file == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading standard input")?;
            buf
        } else {
            std::fs::read(file).with_context(|| format!("reading {file}"))?
        };
        archiver.ingest(bytes, file).await;
    }
    let summary = archiver.finish().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render_text());
    }
    Ok(if summary.has_fatal() {
        ExitCode::from(1)
    } else if summary.rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    use ddb_archiver::archive::filter::Filter;
    use ddb_archiver::replay::{self, invoke, Output, ReplayOptions};
    let utc = |t: chrono::DateTime<chrono::FixedOffset>| t.with_timezone(&chrono::Utc);
    let opts = ReplayOptions {
        table: args.table,
        filter: Filter::new(
            args.from.map(utc),
            args.to.map(utc),
            args.key.as_deref(),
            &args.event,
        )?,
        batch_size: args.batch_size,
        resume_after: args.resume_after,
        checkpoint: args.checkpoint,
        skip_corrupt: args.skip_corrupt,
        memory_budget: args.memory_budget,
    };
    let source = ddb_archiver::archive::source::open(&args.source, "--source").await?;
    let progress = progress_bar("{spinner} {elapsed} {human_pos} records read ({per_sec}), {msg}")?;
    let to_stdout = args.invoke_function.is_none() && args.out == "-";
    let mut file_out;
    let mut stdout_out;
    let mut output = match &args.invoke_function {
        Some(name) => Output::Lambda(invoke::Invoker::new(invoke::lambda_client().await, name)),
        None if to_stdout => {
            stdout_out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
            Output::Lines(&mut stdout_out)
        }
        None => {
            let f = std::fs::File::create(&args.out)
                .with_context(|| format!("creating {}", args.out))?;
            file_out = std::io::BufWriter::new(f);
            Output::Lines(&mut file_out)
        }
    };
    let result = replay::replay(source.as_ref(), &opts, &mut output, &progress).await;
    let (summary, error) = match result {
        Ok(s) => (s, None),
        Err(failure) => (failure.summary, Some(failure.error)),
    };
    // With the events on standard output, the summary goes to standard error.
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&summary)?)
    } else {
        summary.render_text()
    };
    if to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    match error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(e.into()),
    }
}

/// A spinner on a terminal, nothing otherwise.
fn progress_bar(template: &str) -> anyhow::Result<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return Ok(indicatif::ProgressBar::hidden());
    }
    let bar = indicatif::ProgressBar::new_spinner()
        .with_style(indicatif::ProgressStyle::with_template(template)?);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Ok(bar)
}

async fn compact(args: CompactArgs) -> anyhow::Result<ExitCode> {
    use ddb_archiver::archive::source;
    use ddb_archiver::compact::{CompactOptions, Compactor, DayStatus};
    use ddb_archiver::model::Location;
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
    let schemas = ddb_archiver::schema::SchemaSet::load_optional(args.schemas.as_deref())
        .map_err(|e| anyhow::anyhow!("invalid --schemas: {e}"))?;
    let options = CompactOptions {
        table: args.days.table,
        from: args.days.from,
        to: args.days.to,
        schemas,
        max_file_bytes: args.max_file_bytes,
        memory_budget: args.memory_budget,
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
    let text = summary.render_text();
    finish(
        args.json,
        &summary,
        &text,
        summary.count(DayStatus::Failed) == 0,
    )
}

/// Prints a command's summary, as JSON with `--json`, and gives its exit status: 0 when
/// `ok`, 1 otherwise.
fn finish(
    json: bool,
    summary: &impl serde::Serialize,
    text: &str,
    ok: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        print!("{text}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    use ddb_archiver::model::Location;
    use ddb_archiver::restore::{self, ImportOptions, RestoreOptions, Target};
    use std::sync::Arc;
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
        memory_budget: args.memory_budget,
        concurrency: args.concurrency,
        retry: restore::write::default_policy(),
        import,
    };
    let source = ddb_archiver::archive::source::open(&args.source, "--source").await?;
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
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render_text());
    }
    match error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(e.into()),
    }
}

/// The schema files of `--schemas`, if given.
fn load_schemas(
    dir: Option<&std::path::Path>,
) -> anyhow::Result<Option<ddb_archiver::schema::SchemaSet>> {
    dir.map(|d| {
        ddb_archiver::schema::SchemaSet::load_dir(d)
            .map_err(|e| anyhow::anyhow!("invalid --schemas: {e}"))
    })
    .transpose()
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    use ddb_archiver::verify::{Verifier, VerifyOptions};
    let location = ddb_archiver::model::Location::parse(&args.source)
        .map_err(|e| anyhow::anyhow!("invalid --source: {e}"))?;
    args.days.check()?;
    let options = VerifyOptions {
        table: args.days.table,
        from: args.days.from,
        to: args.days.to,
        schemas: load_schemas(args.schemas.as_deref())?,
        ..VerifyOptions::default()
    };
    let source = ddb_archiver::archive::source::open_location(&location).await;
    let progress =
        progress_bar("{spinner} {elapsed} {human_pos}/{human_len} objects checked ({per_sec})")?;
    let summary = Verifier {
        source: source.as_ref(),
        options: &options,
        progress: &progress,
    }
    .run()
    .await?;
    progress.finish_and_clear();
    finish(args.json, &summary, &summary.render_text(), summary.ok())
}
