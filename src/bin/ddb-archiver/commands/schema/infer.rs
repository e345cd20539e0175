//! `ddb-archiver schema infer`: propose a schema file from archived records.

use std::process::ExitCode;

/// The flags of `schema infer`.
#[derive(Debug, clap::Args)]
pub struct InferArgs {
    /// DynamoDB table to propose a schema for (needed when the files hold several).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// Archive files (`.parquet`, `.json.gz`), or directories and `s3://bucket/prefix`
    /// locations to search for them.
    #[arg(required = true, value_name = "PATH|s3://bucket/prefix")]
    paths: Vec<String>,
}

/// Reads the records at every path and prints the proposed schema as JSON.
pub async fn run(args: InferArgs) -> anyhow::Result<ExitCode> {
    let mut inferrer = ddb_archiver::infer::Inferrer::new(args.table);
    for path in &args.paths {
        inferrer.add_location(path).await?;
    }
    println!("{}", serde_json::to_string_pretty(&inferrer.finish()?)?);
    Ok(ExitCode::SUCCESS)
}
