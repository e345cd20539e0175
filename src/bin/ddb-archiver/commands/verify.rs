//! `ddb-archiver verify`: read every object of an archive again and check it against
//! its name, its manifest, its records and its stored checksum.

use std::process::ExitCode;

use ddb_archiver::verify::{Verifier, VerifyOptions};

use super::{finish, load_schemas, progress_bar, DaysArgs};

/// The flags of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The archive: a raw archive, a compacted layer, or both; a local directory or
    /// `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    source: String,

    /// The raw archive that the compacted layer was made from: each manifest's sources
    /// are read from it by their keys (only keys of the manifest's table and day), and
    /// raw objects that a compacted day does not list yet are reported. Without it the
    /// sources are not read.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    raw: Option<String>,

    /// `--table`, `--from` and `--to`.
    #[command(flatten)]
    days: DaysArgs,

    /// Directory of schema files: the typed columns of Parquet files are checked too.
    #[arg(long, value_name = "DIR")]
    schemas: Option<std::path::PathBuf>,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Checks the flags, verifies the selected objects, then prints the summary; exits 0
/// when everything holds.
pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let location = ddb_archiver::model::Location::parse(&args.source)
        .map_err(|e| anyhow::anyhow!("invalid --source: {e}"))?;
    let raw_location = args
        .raw
        .as_deref()
        .map(ddb_archiver::model::Location::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid --raw: {e}"))?;
    args.days.check()?;
    let options = VerifyOptions {
        table: args.days.table,
        from: args.days.from,
        to: args.days.to,
        schemas: load_schemas(args.schemas.as_deref())?,
        ..VerifyOptions::default()
    };
    let source = ddb_archiver::archive::source::open_location(&location).await;
    let raw = match &raw_location {
        Some(l) => Some(ddb_archiver::archive::source::open_location(l).await),
        None => None,
    };
    let progress =
        progress_bar("{spinner} {elapsed} {human_pos}/{human_len} objects checked ({per_sec})")?;
    let summary = Verifier {
        source: source.as_ref(),
        raw: raw.as_deref(),
        options: &options,
        progress: &progress,
    }
    .run()
    .await?;
    progress.finish_and_clear();
    finish(args.json, &summary, summary.render_text(), summary.ok())
}
