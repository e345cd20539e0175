//! Restore: a DynamoDB table as it was at a time T, rebuilt from the archive.
//!
//! Two passes. [`state`] computes the state at T into a temporary file: for every key,
//! the latest change at or before T, deduplicated and in stream order, within the
//! sorter's memory budget; archives that cannot give it are refused there, before any
//! write. Then either [`write`](mod@write) puts the items into an existing table with
//! `BatchWriteItem` (several requests in flight, its own retries), or [`import`] writes
//! them as DynamoDB import-from-S3 input and can start `ImportTable`. [`item`] converts
//! DynamoDB JSON exactly and compares key schemas. [`restore`] drives it.

pub mod athena;
pub mod import;
pub mod item;
pub mod rejected;
mod runs;
mod scan;
pub mod state;
mod summary;
pub mod write;

use std::sync::Arc;

use aws_sdk_dynamodb::types::ScalarAttributeType;
use chrono::{DateTime, Utc};

use crate::archive::filter::{Filter, FilterError};
use crate::archive::order::OrderError;
use crate::archive::reader::CorruptFile;
use crate::archive::source::{ArchiveSource, SourceError};
use crate::aws::retry::{describe_sdk_error, RetryPolicy};
use crate::model::hex::hex;
use crate::model::Location;
use crate::sink::{ObjectSink, SinkError};
use item::KeyShape;
pub use summary::{BaselineUsed, RestoreSummary};
use write::{BatchFailure, BatchWrite, WriteStats, BATCH_ITEMS};

/// Default memory budget of the sorter before sorted runs spill to disk.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// Default number of `BatchWriteItem` requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 6;

/// Why a restore stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A setting cannot be used.
    #[error("invalid {flag}: {reason}")]
    Option {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `--key` cannot be used.
    #[error(transparent)]
    Key(#[from] FilterError),
    /// The source holds no partition of the table.
    #[error("no archived partitions of table {table} under {location}")]
    NoArchive {
        /// The table.
        table: String,
        /// Where it was looked for.
        location: String,
    },
    /// Listing or reading the archive failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An archive file could not be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptFile),
    /// Sorting through temporary files failed.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The temporary state file could not be written or read.
    #[error("temporary state file: {0}")]
    Spill(std::io::Error),
    /// The archive cannot give the state at T.
    #[error("cannot restore: {0}; nothing was written")]
    Unrestorable(String),
    /// The target table does not exist.
    #[error("target table {0} does not exist (--to-table); create it with the archived key schema first, or use --import-format to build a new table; nothing was written")]
    TargetMissing(String),
    /// The target table's key schema is not the archive's.
    #[error(
        "target table {table} has key {target}, the archive has {archived}; nothing was written"
    )]
    KeyMismatch {
        /// The target table.
        table: String,
        /// Its key attributes.
        target: String,
        /// The archived key attributes.
        archived: String,
    },
    /// `_rejected/` holds records of the table at or before T and `--allow-rejected` was
    /// not given.
    #[error("table {table}: {}; the archive does not hold these changes, so the state at T may be wrong for their items; --allow-rejected restores without them; nothing was written", .found.describe())]
    Rejected {
        /// The archived table.
        table: String,
        /// The records.
        found: rejected::RejectedRecords,
    },
    /// No baseline of the table was archived and `--allow-incomplete` was not given.
    #[error("table {table}: no baseline was archived (no baseline coverage record under {location}), so items never changed since archiving began are missing from the archive; archive one with `ddb-archiver baseline`, or --allow-incomplete restores what the archive holds; nothing was written")]
    NoBaseline {
        /// The archived table.
        table: String,
        /// Where coverage records were looked for.
        location: String,
    },
    /// T is before the table's complete-from time and `--allow-incomplete` was not
    /// given.
    #[error("table {table}: --as-of {as_of} is before {complete_from}, when the archive becomes complete (the earliest baseline, {baseline}): items not changed between T and then would be missing; --allow-incomplete restores what the archive holds; nothing was written")]
    BeforeBaseline {
        /// The archived table.
        table: String,
        /// T.
        as_of: String,
        /// The table's complete-from time.
        complete_from: String,
        /// The baseline that gives it.
        baseline: String,
    },
    /// The coverage records cannot be read or are not trusted.
    #[error(transparent)]
    Coverage(#[from] crate::archive::coverage::CoverageError),
    /// The target is not empty and `--allow-existing` was not given.
    #[error("{0} is not empty; --allow-existing writes into it anyway (items at T overwrite items with the same key); nothing was written")]
    NotEmpty(String),
    /// A DynamoDB request other than the writes failed.
    #[error("{operation} {table}: {message}")]
    DynamoDb {
        /// The operation.
        operation: &'static str,
        /// The table.
        table: String,
        /// What went wrong.
        message: String,
    },
    /// A batch of items could not be written.
    #[error(transparent)]
    Write(#[from] BatchFailure),
    /// An Athena request failed, or the query did not succeed (`--engine athena`).
    #[error("Athena {operation}: {message}")]
    Athena {
        /// The operation.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
    /// An import file could not be stored.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The run's import sub-prefix holds files the run did not write.
    #[error("{prefix} holds {count} files this restore did not write ({names}); an import of it would mix them in: remove them, or write elsewhere; no import was started")]
    ForeignImportFiles {
        /// The run's sub-prefix.
        prefix: String,
        /// How many files are not the run's.
        count: usize,
        /// A few of them.
        names: String,
    },
}

/// A restore that stopped, with what it did until then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RestoreFailure {
    /// Why it stopped.
    pub error: RestoreError,
    /// What was done before it stopped.
    pub summary: RestoreSummary,
}

/// Where the state at T goes instead of a table: DynamoDB import-from-S3 files.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `s3://bucket/prefix` or a local directory.
    pub location: Location,
    /// Call `ImportTable` (S3 locations only) to create `to_table` from the files.
    pub start: bool,
    /// The partition key's name, needed by `start` when the key has two attributes.
    pub partition_key: Option<String>,
    /// Most uncompressed bytes per file.
    pub file_bytes: usize,
}

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The archived table (`<table>/year=.../`).
    pub table: String,
    /// T: the state of the table at this instant (changes at or before it).
    pub as_of: DateTime<Utc>,
    /// One item only: its key attributes as DynamoDB JSON.
    pub key: Option<String>,
    /// The table written (or created by the import).
    pub to_table: String,
    /// Compute and count, write nothing.
    pub dry_run: bool,
    /// Write into a target that already holds items.
    pub allow_existing: bool,
    /// Restore although `_rejected/` holds records of the table at or before T.
    pub allow_rejected: bool,
    /// Restore although no baseline was archived or T is before the table's
    /// complete-from time.
    pub allow_incomplete: bool,
    /// Bytes of changes held in memory before sorted runs spill to disk.
    pub memory_budget: usize,
    /// `BatchWriteItem` requests in flight.
    pub concurrency: usize,
    /// Retries of each batch.
    pub retry: RetryPolicy,
    /// Write import files instead of items.
    pub import: Option<ImportOptions>,
}

/// Where the items go.
pub enum Target {
    /// An existing table, through this client; `writer` sends the batches (the same
    /// client, or a fault-injecting one in tests).
    Table {
        /// For `DescribeTable` and `Scan`.
        client: aws_sdk_dynamodb::Client,
        /// For `BatchWriteItem`.
        writer: Arc<dyn BatchWrite>,
    },
    /// Import files through `sink`; `client` starts the import with `--start-import`.
    Import {
        /// Where the files go.
        sink: Arc<dyn ObjectSink>,
        /// Lists the files already there.
        existing: Box<dyn ArchiveSource>,
        /// For `ImportTable`.
        client: Option<aws_sdk_dynamodb::Client>,
    },
}

fn dynamodb_error<E>(
    operation: &'static str,
    table: &str,
    e: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> RestoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    RestoreError::DynamoDb {
        operation,
        table: table.to_string(),
        message: describe_sdk_error(e).1,
    }
}

/// The target table's key attributes, or `None` when it does not exist.
async fn target_keys(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Option<KeyShape>, RestoreError> {
    let out = match client.describe_table().table_name(table).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(dynamodb_error("DescribeTable", table, &e)),
    };
    let Some(desc) = out.table else {
        return Ok(None);
    };
    let mut shape = Vec::new();
    for k in desc.key_schema() {
        let t = desc
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == k.attribute_name())
            .map_or(ScalarAttributeType::S, |d| d.attribute_type().clone());
        shape.push((k.attribute_name().to_string(), t));
    }
    shape.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(KeyShape(shape)))
}

async fn table_is_empty(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<bool, RestoreError> {
    let out = client
        .scan()
        .table_name(table)
        .limit(1)
        .send()
        .await
        .map_err(|e| dynamodb_error("Scan", table, &e))?;
    Ok(out.count() == 0 && out.items().is_empty())
}

fn validate(opts: &RestoreOptions, now: DateTime<Utc>) -> Result<Option<Filter>, RestoreError> {
    let option = |flag, reason: String| RestoreError::Option { flag, reason };
    crate::model::key::validate_table_name(&opts.table).map_err(|r| option("--table", r))?;
    crate::model::key::validate_table_name(&opts.to_table).map_err(|r| option("--to-table", r))?;
    if opts.as_of > now {
        return Err(option(
            "--as-of",
            format!(
                "{} is in the future; the archive holds nothing after now",
                opts.as_of.to_rfc3339()
            ),
        ));
    }
    if opts.concurrency == 0 || opts.concurrency > 64 {
        return Err(option(
            "--concurrency",
            format!("{} is not between 1 and 64", opts.concurrency),
        ));
    }
    if let Some(import) = &opts.import {
        if import.start && !matches!(import.location, Location::S3 { .. }) {
            return Err(option(
                "--start-import",
                "the import reads from S3: give --import-format s3://bucket/prefix".into(),
            ));
        }
    }
    let key = opts
        .key
        .as_deref()
        .map(|k| Filter::new(None, None, Some(k), &[]))
        .transpose()?;
    Ok(key)
}

/// Restores `opts.table` as of `opts.as_of` from `source` into `target`. `progress` is
/// advanced by changes read (pass [`indicatif::ProgressBar::hidden`] for none).
pub async fn restore(
    source: &dyn ArchiveSource,
    target: Target,
    opts: &RestoreOptions,
    progress: &indicatif::ProgressBar,
) -> Result<RestoreSummary, Box<RestoreFailure>> {
    let mut summary = RestoreSummary {
        as_of: opts
            .as_of
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        dry_run: opts.dry_run,
        ..RestoreSummary::default()
    };
    let result = run(source, target, opts, progress, &mut summary).await;
    match result {
        Ok(()) => {
            progress.finish_and_clear();
            Ok(summary)
        }
        Err(error) => {
            progress.abandon();
            Err(Box::new(RestoreFailure { error, summary }))
        }
    }
}

async fn run(
    source: &dyn ArchiveSource,
    target: Target,
    opts: &RestoreOptions,
    progress: &indicatif::ProgressBar,
    summary: &mut RestoreSummary,
) -> Result<(), RestoreError> {
    let key = validate(opts, Utc::now())?;
    check_complete(source, opts, summary).await?;
    // Check the target first: a missing or non-empty one fails before the long read.
    let target_shape = match &target {
        Target::Table { client, .. } => match target_keys(client, &opts.to_table).await? {
            None if opts.dry_run => None,
            None => return Err(RestoreError::TargetMissing(opts.to_table.clone())),
            Some(shape) => {
                if !opts.allow_existing && !table_is_empty(client, &opts.to_table).await? {
                    return Err(RestoreError::NotEmpty(format!(
                        "target table {}",
                        opts.to_table
                    )));
                }
                summary.target_checked = true;
                Some(shape)
            }
        },
        Target::Import { existing, .. } => {
            let there = existing.list("").await?;
            if !there.is_empty() && !opts.allow_existing {
                return Err(RestoreError::NotEmpty(format!(
                    "--import-format {}",
                    existing.location("")
                )));
            }
            None
        }
    };
    summary.rejected = rejected::find(source, &opts.table, opts.as_of.timestamp_millis()).await?;
    if summary.rejected.count > 0 && !opts.allow_rejected {
        return Err(RestoreError::Rejected {
            table: opts.table.clone(),
            found: summary.rejected.clone(),
        });
    }
    let input = state::StateInput {
        table: &opts.table,
        as_of_ms: opts.as_of.timestamp_millis(),
        key: key.as_ref(),
        memory_budget: opts.memory_budget,
    };
    let state = state::compute(source, &input, summary, progress).await?;
    if let (Some(target), Some(archived)) = (&target_shape, &state.keys) {
        if target != archived {
            return Err(RestoreError::KeyMismatch {
                table: opts.to_table.clone(),
                target: target.describe(),
                archived: archived.describe(),
            });
        }
    }
    if opts.dry_run {
        return Ok(());
    }
    match target {
        Target::Table { writer, .. } => write_items(state, writer, opts, summary, progress).await,
        Target::Import {
            sink,
            client,
            existing,
        } => {
            let Some(import) = &opts.import else {
                return Err(RestoreError::Option {
                    flag: "--import-format",
                    reason: "an import target needs import options".into(),
                });
            };
            let keys = state.keys.clone();
            let canonical = opts
                .key
                .as_deref()
                .map(|k| crate::model::item::canonical_key(k).unwrap_or_else(|_| k.to_string()));
            let run_prefix = import::run_prefix(
                &opts.table,
                opts.as_of.timestamp_millis(),
                canonical.as_deref(),
                import.file_bytes,
                &state.digest,
            );
            summary.import_prefix = Some(sink.location(&run_prefix));
            let written = write_import(state, sink.as_ref(), import, &run_prefix, summary).await?;
            only_these_files(existing.as_ref(), &run_prefix, &written).await?;
            if let (true, Some(client)) = (import.start, client) {
                start_import(&client, import, &run_prefix, opts, keys, summary).await?;
            }
            Ok(())
        }
    }
}

/// Names the baseline the table is complete from in the summary, and refuses a T before
/// it (or a table without one) unless `--allow-incomplete`. Nothing is written before.
async fn check_complete(
    source: &dyn ArchiveSource,
    opts: &RestoreOptions,
    summary: &mut RestoreSummary,
) -> Result<(), RestoreError> {
    let baseline = crate::archive::coverage::table_baseline(source, &opts.table).await?;
    summary.baseline = baseline.as_ref().map(summary::BaselineUsed::of);
    let as_of = opts.as_of.timestamp_millis();
    let refusal = match &baseline {
        None => Some(RestoreError::NoBaseline {
            table: opts.table.clone(),
            location: source.location(&crate::model::coverage::coverage_table_prefix(&opts.table)),
        }),
        Some(b) => match b.record.complete_from {
            Some(from) if as_of < from => Some(RestoreError::BeforeBaseline {
                table: opts.table.clone(),
                as_of: summary.as_of.clone(),
                complete_from: crate::model::coverage::format_time_ms(from).unwrap_or_default(),
                baseline: summary::BaselineUsed::of(b).describe(),
            }),
            _ => None,
        },
    };
    match refusal {
        Some(e) if !opts.allow_incomplete => Err(e),
        Some(e) => {
            tracing::warn!(reason = %e, "restoring an incomplete archive (--allow-incomplete)");
            summary.incomplete = true;
            Ok(())
        }
        None => Ok(()),
    }
}

async fn write_items(
    state: state::StateFile,
    writer: Arc<dyn BatchWrite>,
    opts: &RestoreOptions,
    summary: &mut RestoreSummary,
    progress: &indicatif::ProgressBar,
) -> Result<(), RestoreError> {
    let mut tasks: tokio::task::JoinSet<Result<WriteStats, BatchFailure>> =
        tokio::task::JoinSet::new();
    let mut stats = WriteStats::default();
    let mut first_error: Option<RestoreError> = None;
    let mut batch = Vec::with_capacity(BATCH_ITEMS);
    let mut images = state.images()?;
    let mut salt = 0u64;
    let mut done = false;
    while !done || !tasks.is_empty() {
        // Fill the pipeline, then wait for one request to finish.
        while !done && first_error.is_none() && tasks.len() < opts.concurrency {
            match images.next() {
                Some(Ok(image)) => {
                    let item = item::to_item(&image)
                        .map_err(|e| RestoreError::Unrestorable(format!("malformed image: {e}")))?;
                    batch.push(item);
                    if batch.len() < BATCH_ITEMS {
                        continue;
                    }
                }
                Some(Err(e)) => return Err(RestoreError::Spill(e)),
                None => done = true,
            }
            if batch.is_empty() {
                continue;
            }
            let items = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ITEMS));
            let (writer, table, policy) = (writer.clone(), opts.to_table.clone(), opts.retry);
            salt += 1;
            tasks.spawn(async move {
                write::write_batch(writer.as_ref(), &table, items, &policy, salt).await
            });
        }
        if first_error.is_some() {
            done = true;
        }
        let Some(joined) = tasks.join_next().await else {
            continue;
        };
        match joined {
            Ok(Ok(s)) => stats.add(&s),
            Ok(Err(e)) => {
                stats.add(&e.stats);
                first_error.get_or_insert(e.into());
            }
            Err(e) => {
                first_error.get_or_insert(RestoreError::Option {
                    flag: "--to-table",
                    reason: format!("a write task failed: {e}"),
                });
            }
        }
        summary.items_written = stats.items;
        summary.requests = stats.requests;
        summary.unprocessed_retries = stats.unprocessed_retries;
        summary.throttles = stats.throttles;
        summary.transient_retries = stats.transient_retries;
        progress.set_message(format!("{} items written", stats.items));
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes the state as import files under `run_prefix`; returns their keys.
async fn write_import(
    state: state::StateFile,
    sink: &dyn ObjectSink,
    import: &ImportOptions,
    run_prefix: &str,
    summary: &mut RestoreSummary,
) -> Result<Vec<String>, RestoreError> {
    let mut writer = import::ImportWriter::new(sink, run_prefix, import.file_bytes);
    for image in state.images()? {
        writer.push(&image.map_err(RestoreError::Spill)?).await?;
    }
    writer.finish().await?;
    summary.import_files = writer.files.iter().map(|k| sink.location(k)).collect();
    summary.import_files_already_present = writer.already_present;
    Ok(writer.files)
}

/// Checks that the run's sub-prefix holds the files this run wrote and nothing else, so
/// an import of it holds exactly the state at T.
async fn only_these_files(
    existing: &dyn ArchiveSource,
    run_prefix: &str,
    written: &[String],
) -> Result<(), RestoreError> {
    let mine: std::collections::HashSet<&str> = written.iter().map(String::as_str).collect();
    let others: Vec<String> = existing
        .list(run_prefix)
        .await?
        .into_iter()
        .filter(|k| !mine.contains(k.as_str()))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(RestoreError::ForeignImportFiles {
        prefix: existing.location(run_prefix),
        count: others.len(),
        names: listed(
            &others
                .iter()
                .take(NAMED)
                .map(|k| existing.location(k))
                .collect::<Vec<_>>(),
            others.len(),
            ", ",
        ),
    })
}

/// `named`, joined by `sep`, then how many more of `total` there are.
fn listed(named: &[String], total: usize, sep: &str) -> String {
    let mut s = named.join(sep);
    if total > named.len() {
        s.push_str(&format!(" and {} more", total - named.len()));
    }
    s
}

/// How many files or records an error names before it counts the rest.
pub const NAMED: usize = 5;

async fn start_import(
    client: &aws_sdk_dynamodb::Client,
    import: &ImportOptions,
    run_prefix: &str,
    opts: &RestoreOptions,
    keys: Option<KeyShape>,
    summary: &mut RestoreSummary,
) -> Result<(), RestoreError> {
    let Location::S3 { bucket, prefix } = &import.location else {
        return Ok(());
    };
    let Some(keys) = keys else {
        return Err(RestoreError::Unrestorable(
            "no item existed at T, so there is no key schema to create a table with".into(),
        ));
    };
    let prefix = format!("{prefix}{run_prefix}");
    let target = import::ImportTarget {
        bucket: bucket.clone(),
        prefix: prefix.clone(),
        table: opts.to_table.clone(),
        keys,
        partition_key: import.partition_key.clone(),
    };
    let token: String = {
        use sha2::Digest as _;
        let text = format!(
            "{bucket}/{prefix}|{}|{}",
            opts.to_table,
            summary.import_files.join(",")
        );
        hex(&sha2::Sha256::digest(text.as_bytes())[..16])
    };
    let request =
        import::import_request(client, &target, &token).map_err(|reason| RestoreError::Option {
            flag: "--partition-key",
            reason,
        })?;
    let out = request
        .send()
        .await
        .map_err(|e| dynamodb_error("ImportTable", &opts.to_table, &e))?;
    summary.import_arn = out
        .import_table_description
        .and_then(|d| d.import_arn)
        .or_else(|| Some("(no ARN returned)".into()));
    Ok(())
}

#[cfg(test)]
mod tests;
