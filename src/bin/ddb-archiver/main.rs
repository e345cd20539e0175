//! The `ddb-archiver` command line: archive local event files into a directory or S3,
//! replay the archive as Lambda events, compact it and verify it.
//!
//! This file only parses the command line and dispatches: each subcommand's flags and
//! the glue that runs it on the library live in [`commands`], one module per command
//! (the layout of cargo's `src/bin/cargo/commands/`). The archive settings' flags are
//! shared with the Lambda binary through `src/bin/common/settings.rs`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod commands;
#[path = "../common/settings.rs"]
mod settings;

use commands::{archive, baseline, compact, coverage, replay, restore, schema, verify};

/// Archive DynamoDB change streams as lossless, event-time-partitioned gzip JSON lines
/// or Parquet.
#[derive(Debug, Parser)]
#[command(name = "ddb-archiver", version)]
struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, each with its module in [`commands`].
#[derive(Debug, Subcommand)]
enum Command {
    /// Archive event files (`{"Records": [...]}` documents, one or more per file).
    ///
    /// Exit status: 0 when every record was archived, 2 when some were rejected (and
    /// kept under `_rejected/`), 1 on a fatal error.
    Archive(archive::ArchiveArgs),
    /// Replay archived changes, in stream order and without duplicates, as Lambda events
    /// `{"Records":[...]}`: one per line, or invoking a Lambda function.
    ///
    /// Exit status: 0 when every selected change was replayed, 1 otherwise.
    Replay(replay::ReplayArgs),
    /// Compact each table-day's raw objects into few large Parquet files, ordered by
    /// time then sequence number, each event once, with a manifest per table-day, in a
    /// separate compacted layer. The raw archive is only read.
    ///
    /// Exit status: 0 when every selected day is compacted or unchanged, 1 otherwise
    /// (each failed day is named with the object at fault; the other days are done).
    Compact(compact::CompactArgs),
    /// Restore a table as it was at a time T: for every key, the latest archived change
    /// at or before T, written into an existing table with `BatchWriteItem`, or as
    /// DynamoDB import-from-S3 files (`--import-format`).
    ///
    /// The state is computed in full (bounded memory, spilling to temporary files)
    /// before anything is written: archives that cannot give it, a missing or non-empty
    /// target and a key-schema mismatch stop with nothing written.
    ///
    /// Exit status: 0 when the whole state was written, 1 otherwise.
    Restore(restore::RestoreArgs),
    /// Verify the archive's integrity: every object (raw, rejected, compacted,
    /// manifests) is read again and checked against its name, its manifest, the records
    /// it holds and, on S3, the checksum stored at upload.
    ///
    /// Exit status: 0 when everything holds, 1 otherwise (each bad object is named).
    Verify(verify::VerifyArgs),
    /// Archive the items a table held before its stream was archived: a DynamoDB full
    /// export as baseline changes (an incremental export as gap repair), or a parallel
    /// Scan; then write the coverage record that says from when the table is complete.
    ///
    /// Exit status: 0 when every item was archived and the coverage recorded, 1
    /// otherwise (no coverage record; a rerun completes the work).
    Baseline(baseline::BaselineArgs),
    /// What the archive holds of each table: the baseline it is complete from (export
    /// or Scan, and when), the gap repairs with their windows, and the first and last
    /// stream change archived.
    ///
    /// Exit status: 0 when the coverage could be read (an incomplete table is reported,
    /// not an error), 1 when a coverage record is not trusted or the archive cannot be
    /// read.
    Coverage(coverage::CoverageArgs),
    /// Athena / Glue table definitions for the archive of one DynamoDB table.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
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

/// Parses the command line and runs the command on an async runtime.
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
        Command::Archive(args) => runtime.block_on(archive::run(args)),
        Command::Replay(args) => runtime.block_on(replay::run(args)),
        Command::Compact(args) => runtime.block_on(compact::run(args)),
        Command::Restore(args) => runtime.block_on(restore::run(args)),
        Command::Verify(args) => runtime.block_on(verify::run(args)),
        Command::Schema(cmd) => runtime.block_on(schema::run(cmd)),
        Command::Baseline(args) => runtime.block_on(baseline::run(args)),
        Command::Coverage(args) => runtime.block_on(coverage::run(args)),
    }
}
