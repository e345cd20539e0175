//! `ddb-archiver replay`: replay archived changes as Lambda events, written one per line
//! or sent to a Lambda function.

use std::process::ExitCode;

use anyhow::Context as _;
use ddb_archiver::archive::filter::Filter;
use ddb_archiver::replay::{self, invoke, Output, ReplayOptions};

use super::{progress_bar, summary_text};

/// The flags of `replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
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

    /// Send baseline and export rows (sequence number "0") too, as synthetic
    /// DynamoDB Streams records; they are left out otherwise.
    #[arg(long)]
    include_baseline: bool,
}

/// `--event`: one event name.
fn parse_event_name(s: &str) -> Result<ddb_archiver::model::EventName, String> {
    ddb_archiver::model::EventName::parse(s)
        .ok_or_else(|| format!("{s:?} is not INSERT, MODIFY or REMOVE"))
}

/// Replays the selected changes, then prints the summary (to standard error when the
/// events go to standard output); exits 0 when every selected change was replayed.
pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
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
        include_baseline: args.include_baseline,
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
    let text = summary_text(args.json, &summary, summary.render_text())?;
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
