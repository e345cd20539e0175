//! The `ddb-archiver` command line: archive local event files into a directory or S3.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::settings::Settings;

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
    /// Athena / Glue table definitions for the archive of one DynamoDB table.
    #[command(subcommand)]
    Schema(SchemaCommand),
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
    /// Archive files (`.parquet`, `.json.gz`) or directories to search for them.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<std::path::PathBuf>,
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
    format: ddb_archiver::encode::Format,
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
    settings: Settings,

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
        Command::Schema(cmd) => schema(cmd),
    }
}

fn schema(cmd: SchemaCommand) -> anyhow::Result<ExitCode> {
    use ddb_archiver::schema::{table::TableDefinition, TableSchema};
    let (args, glue) = match cmd {
        SchemaCommand::Ddl(args) => (args, false),
        SchemaCommand::Glue(args) => (args, true),
        SchemaCommand::Infer(args) => {
            let mut inferrer = ddb_archiver::schema::infer::Inferrer::new(args.table);
            for path in &args.paths {
                inferrer.add_path(path)?;
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
        args.format,
        &args.location,
        args.database.as_deref(),
        args.table_name.as_deref(),
    )?;
    print!("{}", if glue { def.glue_json() } else { def.ddl() });
    Ok(ExitCode::SUCCESS)
}

async fn archive(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    args.settings.validate()?;
    let dest = args.settings.destination()?;
    let sink = ddb_archiver::sink::open(&dest, args.settings.kms_key_id.as_deref()).await?;
    let mut archiver = Archiver::new(&args.settings, sink)?;
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
        archiver.ingest(&bytes, file).await;
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
