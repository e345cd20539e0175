//! Restore on Athena (`restore --engine athena`), for archives too big for one machine.
//!
//! The state at T is computed by Athena, not here: the `UNLOAD` of
//! [`LayerSet::restore_sql`] over the view of both layers writes the import files under
//! the run's own sub-prefix of `--import-format`. Restore makes the same checks first
//! as on one machine (options, baseline coverage, rejected records, an empty location),
//! reads the archived key attributes from the first archive file (for `ImportTable`),
//! runs the query (`StartQueryExecution`, then `GetQueryExecution` until it ends), lists
//! the files it wrote, and with `--start-import` calls `ImportTable` on exactly that
//! sub-prefix, as the single-machine path does.

use std::time::Duration;

use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use sha2::{Digest, Sha256};

use super::item::KeyShape;
use super::{RestoreError, RestoreFailure, RestoreOptions, RestoreSummary};
use crate::archive::reader::{rows, Column, Projection};
use crate::archive::source::ArchiveSource;
use crate::model::hex::hex_digest;
use crate::model::item::canonical_key;
use crate::model::key::{partition_day, table_prefix};
use crate::model::{Format, Location};
use crate::schema::layer::LayerSet;
use crate::schema::restore_sql::KeyTexts;

/// Where and how Athena runs the query.
#[derive(Debug, Clone, Default)]
pub struct AthenaOptions {
    /// Athena database of the archive's tables and view.
    pub database: Option<String>,
    /// Athena name of the raw table (the view is `<name>_all`).
    pub table_name: Option<String>,
    /// Athena workgroup (`primary` when `None`).
    pub workgroup: Option<String>,
    /// Query result location (Athena's metadata and manifest files), when the workgroup
    /// does not set one.
    pub output_location: Option<String>,
    /// Time between two `GetQueryExecution` calls.
    pub poll: Duration,
}

/// The clients restore on Athena uses.
pub struct AthenaTarget<'a> {
    /// Runs the query.
    pub athena: &'a aws_sdk_athena::Client,
    /// Lists the import location.
    pub existing: &'a dyn ArchiveSource,
    /// Starts the import (`--start-import`).
    pub dynamodb: Option<&'a aws_sdk_dynamodb::Client>,
}

/// The sub-prefix of one Athena run under the import location: `run-<token>/`, the token
/// 16 hex digits of SHA-256 over the table, T in milliseconds, the `--key` and
/// `athena`. The same restore gives the same sub-prefix, which `UNLOAD` needs empty.
pub fn run_prefix(table: &str, as_of_ms: i64, key: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [table, &as_of_ms.to_string(), key.unwrap_or(""), "athena"] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("run-{}/", hex_digest(h.finalize().as_slice()))
}

/// Restores `opts.table` as of `opts.as_of` with Athena into import files (and with
/// `--start-import` a new table).
pub async fn restore(
    source: &dyn ArchiveSource,
    target: AthenaTarget<'_>,
    opts: &RestoreOptions,
    athena: &AthenaOptions,
) -> Result<RestoreSummary, Box<RestoreFailure>> {
    let mut summary = RestoreSummary {
        as_of: opts
            .as_of
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        dry_run: opts.dry_run,
        ..RestoreSummary::default()
    };
    match run(source, &target, opts, athena, &mut summary).await {
        Ok(()) => Ok(summary),
        Err(error) => Err(Box::new(RestoreFailure { error, summary })),
    }
}

fn athena_error(operation: &'static str, message: String) -> RestoreError {
    RestoreError::Athena { operation, message }
}

async fn run(
    source: &dyn ArchiveSource,
    target: &AthenaTarget<'_>,
    opts: &RestoreOptions,
    athena: &AthenaOptions,
    summary: &mut RestoreSummary,
) -> Result<(), RestoreError> {
    super::validate(opts, chrono::Utc::now())?;
    let option = |flag, reason: &str| RestoreError::Option {
        flag,
        reason: reason.to_string(),
    };
    let Some(import) = &opts.import else {
        return Err(option(
            "--engine",
            "athena writes import files: give --import-format s3://bucket/prefix",
        ));
    };
    let Location::S3 { bucket, prefix } = &import.location else {
        return Err(option(
            "--import-format",
            "Athena writes to S3: give s3://bucket/prefix",
        ));
    };
    super::check_complete(source, opts, summary).await?;
    let there = target.existing.list("").await?;
    if !there.is_empty() && !opts.allow_existing {
        return Err(RestoreError::NotEmpty(format!(
            "--import-format {}",
            target.existing.location("")
        )));
    }
    summary.rejected =
        super::rejected::find(source, &opts.table, opts.as_of.timestamp_millis()).await?;
    if summary.rejected.count > 0 && !opts.allow_rejected {
        return Err(RestoreError::Rejected {
            table: opts.table.clone(),
            found: summary.rejected.clone(),
        });
    }
    let keys = archived_keys(source, &opts.table).await?;
    let key_texts = opts
        .key
        .as_deref()
        .map(KeyTexts::parse)
        .transpose()
        .map_err(|e| option("--key", &e.to_string()))?;
    let set = LayerSet::new(
        &opts.table,
        None,
        Format::Parquet,
        athena.database.as_deref(),
        athena.table_name.as_deref(),
    )
    .map_err(|e| option("--athena-table-name", &e.to_string()))?;
    let canonical = opts
        .key
        .as_deref()
        .map(|k| canonical_key(k).unwrap_or_else(|_| k.to_string()));
    let run_prefix = run_prefix(
        &opts.table,
        opts.as_of.timestamp_millis(),
        canonical.as_deref(),
    );
    let location = format!("s3://{bucket}/{prefix}{run_prefix}");
    let sql = set
        .restore_sql(opts.as_of, key_texts.as_ref(), &location)
        .map_err(|e| option("--import-format", &e.to_string()))?;
    summary.import_prefix = Some(target.existing.location(&run_prefix));
    let earlier = target.existing.list(&run_prefix).await?;
    if !earlier.is_empty() {
        return Err(RestoreError::ForeignImportFiles {
            prefix: target.existing.location(&run_prefix),
            count: earlier.len(),
            names: super::listed(
                &earlier
                    .iter()
                    .take(super::NAMED)
                    .map(|k| target.existing.location(k))
                    .collect::<Vec<_>>(),
                earlier.len(),
                ", ",
            ),
        });
    }
    if opts.dry_run {
        return Ok(());
    }
    run_query(target.athena, &sql, athena).await?;
    let files = target.existing.list(&run_prefix).await?;
    summary.import_files = files.iter().map(|k| target.existing.location(k)).collect();
    if let (true, Some(client)) = (import.start, target.dynamodb) {
        if files.is_empty() {
            return Err(RestoreError::Unrestorable(format!(
                "Athena wrote no files under {location}: no item exists at T, and an import needs at least one"
            )));
        }
        super::start_import(client, import, &run_prefix, opts, Some(keys), summary).await?;
    }
    Ok(())
}

/// The key attributes of the table's first archived change (names and types).
async fn archived_keys(source: &dyn ArchiveSource, table: &str) -> Result<KeyShape, RestoreError> {
    let files: Vec<String> = source
        .list(&table_prefix(table))
        .await?
        .into_iter()
        .filter(|k| partition_day(k).is_some())
        .collect();
    for key in &files {
        let Some(format) = Format::of_key(key) else {
            continue;
        };
        let location = source.location(key);
        let bytes = source.get(key).await?;
        if let Some(row) = rows(format, bytes, &location, Projection::of(&[Column::Keys]))?.next() {
            let row = row?;
            let keys = canonical_key(&row.keys).map_err(|reason| {
                RestoreError::Corrupt(crate::archive::reader::CorruptFile {
                    location: location.clone(),
                    reason: format!("event {}: keys: {reason}", row.event_id),
                })
            })?;
            return KeyShape::of_keys(&keys).map_err(RestoreError::Unrestorable);
        }
    }
    Err(RestoreError::NoArchive {
        table: table.to_string(),
        location: source.location(&table_prefix(table)),
    })
}

/// Runs `sql` and waits for it to end; an error unless it succeeded.
async fn run_query(
    client: &aws_sdk_athena::Client,
    sql: &str,
    opts: &AthenaOptions,
) -> Result<String, RestoreError> {
    let mut request = client
        .start_query_execution()
        .query_string(sql)
        .set_work_group(opts.workgroup.clone());
    if let Some(db) = &opts.database {
        request =
            request.query_execution_context(QueryExecutionContext::builder().database(db).build());
    }
    if let Some(out) = &opts.output_location {
        request = request
            .result_configuration(ResultConfiguration::builder().output_location(out).build());
    }
    let started = request.send().await.map_err(|e| {
        athena_error(
            "StartQueryExecution",
            crate::aws::retry::describe_sdk_error(&e).1,
        )
    })?;
    let id = started
        .query_execution_id
        .ok_or_else(|| athena_error("StartQueryExecution", "no query execution ID".into()))?;
    tracing::info!(query_execution_id = %id, "restore query started on Athena");
    loop {
        let out = client
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| {
                athena_error(
                    "GetQueryExecution",
                    crate::aws::retry::describe_sdk_error(&e).1,
                )
            })?;
        let status = out.query_execution.and_then(|q| q.status);
        let state = status.as_ref().and_then(|s| s.state.clone());
        match state {
            Some(QueryExecutionState::Succeeded) => return Ok(id),
            Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                let reason = status
                    .and_then(|s| s.state_change_reason)
                    .unwrap_or_default();
                return Err(athena_error(
                    "GetQueryExecution",
                    format!(
                        "query {id} ended {}: {reason}; files it wrote before stopping may remain under the run's sub-prefix",
                        state.map_or("?".into(), |s| s.as_str().to_string())
                    ),
                ));
            }
            _ => tokio::time::sleep(opts.poll).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_prefixes_follow_from_table_time_and_key() {
        let p = run_prefix("t", 5, None);
        assert_eq!(p, run_prefix("t", 5, None));
        assert!(p.starts_with("run-") && p.ends_with('/') && p.len() == 21);
        assert_ne!(p, run_prefix("t", 6, None));
        assert_ne!(p, run_prefix("t", 5, Some("{}")));
        assert_ne!(p, run_prefix("u", 5, None));
    }
}
