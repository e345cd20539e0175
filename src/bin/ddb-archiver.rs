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
    event: Vec<ddb_archiver::decode::EventName>,

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
            ddb_archiver::route::validate_table_name(t)
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

fn parse_event_name(s: &str) -> Result<ddb_archiver::decode::EventName, String> {
    ddb_archiver::decode::EventName::parse(s)
        .ok_or_else(|| format!("{s:?} is not INSERT, MODIFY or REMOVE"))
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Print the Athena `CREATE EXTERNAL TABLE` statement (partition projection on).
    Ddl(TableArgs),
    /// Print the same table as a CloudFormation `AWS::Glue::Table` `TableInput` (JSON).
    Glue(TableArgs),
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
    /// Where the table's archive is: `s3://bucket/prefix/<table>/`.
    #[arg(long, value_name = "S3_URL")]
    location: String,
    /// File format of the archive.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Athena database to create the table in.
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Athena table name (default: derived from the DynamoDB table name).
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
        Command::Verify(args) => runtime.block_on(verify(args)),
        Command::Schema(cmd) => runtime.block_on(schema(cmd)),
    }
}

async fn schema(cmd: SchemaCommand) -> anyhow::Result<ExitCode> {
    use ddb_archiver::schema::{table::TableDefinition, TableSchema};
    let (args, glue) = match cmd {
        SchemaCommand::Ddl(args) => (args, false),
        SchemaCommand::Glue(args) => (args, true),
        SchemaCommand::Infer(args) => {
            let mut inferrer = ddb_archiver::schema::infer::Inferrer::new(args.table);
            for path in &args.paths {
                inferrer.add_location(path).await?;
            }
            println!("{}", serde_json::to_string_pretty(&inferrer.finish()?)?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let schema = args.schema.as_deref().map(TableSchema::load).transpose()?;
    let table = match (&schema, &args.table) {
        (Some(s), _) => s.table.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => anyhow::bail!("give --schema FILE or --table NAME"),
    };
    let def = TableDefinition::new(
        &table,
        schema.as_ref(),
        args.format.into(),
        &args.location,
        args.database.as_deref(),
        args.table_name.as_deref(),
    )?;
    print!("{}", if glue { def.glue_json() } else { def.ddl() });
    Ok(ExitCode::SUCCESS)
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
    use ddb_archiver::replay::{self, filter::Filter, invoke, Output, ReplayOptions};
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
    use ddb_archiver::settings::Location;
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
    let schemas = load_schemas(args.schemas.as_deref())?.unwrap_or_default();
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
    let location = ddb_archiver::settings::Location::parse(&args.source)
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
