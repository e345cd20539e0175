//! `ddb-archiver restore --engine athena`: its flags (flattened into restore's) and its
//! run: the state at T computed by Athena into import files, then `ImportTable`.

use std::process::ExitCode;

use ddb_archiver::archive::source::ArchiveSource;
use ddb_archiver::restore::athena::{self, AthenaOptions, AthenaTarget};
use ddb_archiver::restore::RestoreOptions;

use super::print_summary;

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Compute the state on this machine, from the raw archive.
    Local,
    /// Compute it on Athena over the view `<name>_all` (`schema restore-sql`'s UNLOAD),
    /// into import files under --import-format s3://…
    Athena,
}

/// The flags of restore on Athena.
#[derive(Debug, clap::Args)]
pub struct AthenaArgs {
    /// Where the state at T is computed: on this machine, or on Athena (which writes the
    /// import files under --import-format's run sub-prefix; then --start-import).
    #[arg(long, value_enum, default_value = "local")]
    pub engine: Engine,
    /// With --engine athena: the Athena database of the archive's tables and view.
    #[arg(long, value_name = "NAME")]
    athena_database: Option<String>,
    /// With --engine athena: the Athena name of the raw table (default: derived from the
    /// DynamoDB table name); the query reads the view `<name>_all`.
    #[arg(long, value_name = "NAME")]
    athena_table_name: Option<String>,
    /// With --engine athena: the Athena workgroup (default: primary).
    #[arg(long, value_name = "NAME")]
    athena_workgroup: Option<String>,
    /// With --engine athena: the query result location, when the workgroup sets none
    /// (Athena writes its metadata and manifest files there).
    #[arg(long, value_name = "s3://bucket/prefix/")]
    athena_output_location: Option<String>,
}

/// Runs the restore on Athena and prints its summary; exits 0 when the files were
/// written (and the import started, with --start-import).
pub async fn run(
    args: &AthenaArgs,
    source: &dyn ArchiveSource,
    opts: &RestoreOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let import = opts.import.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "--engine athena writes import files: give --import-format s3://bucket/prefix"
        )
    })?;
    let shared = ddb_archiver::aws::shared_config().await;
    let client = aws_sdk_athena::Client::new(&shared);
    let dynamodb =
        ddb_archiver::aws::dynamodb(&shared, &ddb_archiver::aws::ClientOptions::default());
    let existing = ddb_archiver::archive::source::open_location(&import.location).await;
    let target = AthenaTarget {
        athena: &client,
        existing: existing.as_ref(),
        dynamodb: import.start.then_some(&dynamodb),
    };
    let options = AthenaOptions {
        database: args.athena_database.clone(),
        table_name: args.athena_table_name.clone(),
        workgroup: args.athena_workgroup.clone(),
        output_location: args.athena_output_location.clone(),
        poll: std::time::Duration::from_secs(2),
    };
    let (summary, error) = match athena::restore(source, target, opts, &options).await {
        Ok(s) => (s, None),
        Err(failure) => (failure.summary, Some(failure.error)),
    };
    print_summary(json, &summary, summary.render_text())?;
    match error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(e.into()),
    }
}
