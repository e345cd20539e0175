//! `ddb-archiver archive`: archive local event files into a directory or S3, with the
//! same settings (flags or environment variables) as the Lambda function.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use ddb_archiver::pipeline::Archiver;

use super::print_summary;
use crate::settings::{self, SettingsArgs};

/// The flags of `archive`.
#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// Where and how to archive: flags with environment-variable fallbacks.
    #[command(flatten)]
    settings: SettingsArgs,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,

    /// Event files to archive; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

/// Archives every file, then prints the summary; exits 0 when every record was
/// archived, 2 when some were rejected, 1 on a fatal error.
pub async fn run(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
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
    print_summary(args.json, &summary, summary.render_text())?;
    Ok(if summary.has_fatal() {
        ExitCode::from(1)
    } else if summary.rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
