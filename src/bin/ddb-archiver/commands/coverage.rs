//! `ddb-archiver coverage`: what the archive holds of each table — the baseline it is
//! complete from, the gap repairs, the first and last stream change.

use std::process::ExitCode;

use super::print_summary;

/// The flags of `coverage`.
#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// The archive: a local directory or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|s3://bucket/prefix")]
    source: String,

    /// Only this table (all tables otherwise: those with partitions or coverage
    /// records).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Reads the coverage records and the first and last stream changes, then prints the
/// report; exits 0 when they could be read (an incomplete table is reported, not an
/// error).
pub async fn run(args: CoverageArgs) -> anyhow::Result<ExitCode> {
    let source = ddb_archiver::archive::source::open(&args.source, "--source").await?;
    let report = ddb_archiver::coverage::coverage(source.as_ref(), args.table.as_deref()).await?;
    print_summary(args.json, &report, report.render_text())?;
    Ok(ExitCode::SUCCESS)
}
