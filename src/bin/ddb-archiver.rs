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
    }
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
