//! Read: a table-day's source objects fetched a few at a time and decoded on one worker
//! thread per core into Arrow batches of the standard columns (Parquet sources
//! column by column, gzip JSON lines through their changes), each worker sorting what it
//! read within its share of the memory budget. Every object is also measured and
//! hashed for the manifest. The first corrupt object stops the day, named.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, TimeUnit};
use futures_util::StreamExt;

use super::slim::{read_schema, slim};
use super::sort::RunSorter;
use crate::archive::manifest::{self, DigestRow, ManifestSource, RowDigest};
use crate::archive::reader::{self, CorruptFile, Projection, Row};
use crate::archive::source::ArchiveSource;
use crate::encode::parquet::{standard_columns, standard_fields};
use crate::model::Format;
use crate::model::{ChangeRecord, EventName};

/// Source objects fetched ahead of the decoding workers.
const FETCH_AHEAD: usize = 4;

/// Rows of a gzip JSON lines source per Arrow batch.
const JSONL_BATCH_ROWS: usize = 4096;

/// One fetched object for a worker.
struct Job {
    index: usize,
    key: String,
    location: String,
    bytes: Vec<u8>,
}

/// What a worker read.
struct WorkerOutput {
    sorter: RunSorter,
    sources: Vec<(usize, ManifestSource)>,
}

/// Reads every object of `keys` (sorted) into sorters that together hold at most about
/// `budget` bytes, gives every row to `digest` (which decides the copies and digests
/// the rows for the manifest), and describes each object for the manifest, in key
/// order.
pub async fn read_sources(
    source: &dyn ArchiveSource,
    keys: &[String],
    budget: usize,
    digest: &Arc<Mutex<RowDigest>>,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<RunSorter>, Vec<ManifestSource>), String> {
    let workers = reader::worker_count().min(keys.len().max(1));
    let (tx, rx) = tokio::sync::mpsc::channel::<Job>(workers);
    let rx = Arc::new(Mutex::new(rx));
    let failed = Arc::new(AtomicBool::new(false));
    let mut results = Vec::new();
    for _ in 0..workers {
        let (done, result) = tokio::sync::oneshot::channel();
        let rx = Arc::clone(&rx);
        let failed = Arc::clone(&failed);
        let progress = progress.clone();
        let digest = Arc::clone(digest);
        let share = budget / workers;
        std::thread::Builder::new()
            .name("compact-read".into())
            .spawn(move || {
                let out = work(&rx, &failed, share, &digest, &progress);
                // Released before the result is sent, so the reader can take the digest
                // back once every result is in.
                drop(digest);
                if out.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                let _ = done.send(out);
            })
            .map_err(|e| format!("starting a reading thread: {e}"))?;
        results.push(result);
    }
    // Only the workers hold the receiver: once they have all stopped, sending fails.
    drop(rx);
    let mut fetched = futures_util::stream::iter(keys.iter().enumerate())
        .map(|(index, key)| async move {
            let bytes = source.get(key).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(Job {
                index,
                key: key.clone(),
                location: source.location(key),
                bytes,
            })
        })
        .buffered(FETCH_AHEAD);
    let mut fetch_error = None;
    while let Some(job) = fetched.next().await {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        match job {
            Ok(job) => {
                if tx.send(job).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                fetch_error = Some(e);
                failed.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    drop(tx);
    let mut sorters = Vec::new();
    let mut described = Vec::new();
    let mut first_error = fetch_error;
    for result in results {
        match result.await {
            Ok(Ok(out)) => {
                sorters.push(out.sorter);
                described.extend(out.sources);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert_with(|| "a reading thread stopped".to_string());
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    described.sort_by_key(|(index, _)| *index);
    Ok((sorters, described.into_iter().map(|(_, s)| s).collect()))
}

/// One worker: takes objects until there are none, or until any worker has failed.
fn work(
    rx: &Mutex<tokio::sync::mpsc::Receiver<Job>>,
    failed: &AtomicBool,
    budget: usize,
    digest: &Mutex<RowDigest>,
    progress: &indicatif::ProgressBar,
) -> Result<WorkerOutput, String> {
    let mut out = WorkerOutput {
        sorter: RunSorter::new(budget),
        sources: Vec::new(),
    };
    loop {
        let job = match rx.lock() {
            Ok(mut rx) => rx.blocking_recv(),
            Err(_) => None,
        };
        let Some(job) = job else { break };
        if failed.load(Ordering::Relaxed) {
            break;
        }
        out.sources.push((
            job.index,
            ManifestSource {
                location: job.location.clone(),
                key: job.key.clone(),
                bytes: job.bytes.len() as u64,
                sha256: manifest::sha256_hex(&job.bytes),
            },
        ));
        let format = Format::of_key(&job.key)
            .ok_or_else(|| format!("{}: not an archive file", job.location))?;
        let first = (job.index as u64) << 32;
        let sorter = &mut out.sorter;
        let mut push = |batch: RecordBatch| -> Result<(), String> {
            progress.inc(batch.num_rows() as u64);
            let rows = digest_rows(&batch)?;
            digest
                .lock()
                .map_err(|_| "a reading thread stopped".to_string())?
                .push_all(rows)
                .map_err(|e| e.to_string())?;
            sorter.push(slim(&batch)?).map_err(|e| e.to_string())
        };
        match format {
            Format::Parquet => read_parquet(job.bytes, &job.location, first, &mut push)?,
            Format::JsonlGz => read_jsonl(job.bytes, &job.location, first, &mut push)?,
        }
    }
    // Each worker sorts its last run itself, at once with the others.
    out.sorter.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Each row's part in the manifest's row digest, with its read order as its origin.
fn digest_rows(batch: &RecordBatch) -> Result<Vec<DigestRow>, String> {
    let text = |i: usize, name: &str| {
        batch
            .column(i)
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("sorted batch: `{name}` is not text"))
    };
    let (ids, seqs, records) = (
        text(0, "event_id")?,
        text(3, "sequence_number")?,
        text(11, "record")?,
    );
    let times = batch
        .column(4)
        .as_primitive_opt::<arrow::datatypes::TimestampMillisecondType>()
        .ok_or_else(|| "sorted batch: bad `approximate_creation_time`".to_string())?;
    let orders = batch
        .column(12)
        .as_primitive_opt::<arrow::datatypes::UInt64Type>()
        .ok_or_else(|| "sorted batch: bad read order".to_string())?;
    Ok((0..batch.num_rows())
        .map(|i| {
            DigestRow::new(
                ids.value(i),
                times.value(i),
                seqs.value(i),
                records.value(i),
                orders.value(i),
            )
        })
        .collect())
}

/// The standard columns of each batch of a Parquet source, checked.
fn read_parquet(
    bytes: Vec<u8>,
    location: &str,
    first: u64,
    push: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<(), String> {
    let corrupt = |reason: String| {
        CorruptFile {
            location: location.to_string(),
            reason,
        }
        .to_string()
    };
    let batches =
        reader::parquet_batches(bytes, location, Projection::ALL).map_err(|e| e.to_string())?;
    let mut next = first;
    for batch in batches {
        let batch = batch.map_err(corrupt)?;
        let rows = batch.num_rows() as u64;
        let batch = conform(&batch, next).map_err(corrupt)?;
        next += rows;
        push(batch)?;
    }
    Ok(())
}

/// A Parquet source's batch as [`read_schema`]: its standard columns, type- and
/// null-checked, with every `event_name` valid, and the read order appended.
fn conform(batch: &RecordBatch, first: u64) -> Result<RecordBatch, String> {
    let fields = standard_fields();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len() + 1);
    for field in &fields {
        let name = field.name();
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))?;
        let array = match (array.data_type(), field.data_type()) {
            (a, b) if a == b => Arc::clone(array),
            // The same instants, whatever time zone the file's Arrow schema names.
            (
                DataType::Timestamp(TimeUnit::Millisecond, _),
                DataType::Timestamp(TimeUnit::Millisecond, _),
            ) => arrow::compute::cast(array, field.data_type()).map_err(|e| e.to_string())?,
            (have, _) => {
                return Err(format!(
                    "column `{name}` is {have}, not {}",
                    field.data_type()
                ))
            }
        };
        if !field.is_nullable() && array.null_count() > 0 {
            let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
            return Err(format!("row {}: `{name}` is null", row + 1));
        }
        columns.push(array);
    }
    if let Some(names) = columns.get(1).and_then(|c| c.as_string_opt::<i32>()) {
        if let Some((row, name)) = names
            .iter()
            .enumerate()
            .find(|(_, n)| n.is_some_and(|n| EventName::parse(n).is_none()))
        {
            return Err(format!(
                "row {}: event_name {:?} is not INSERT, MODIFY or REMOVE",
                row + 1,
                name.unwrap_or_default()
            ));
        }
    }
    with_read_order(columns, first, batch.num_rows())
}

/// The standard columns of `rows` rows with their read order appended, as
/// [`read_schema`]: `first`, `first + 1`, ...
fn with_read_order(
    mut columns: Vec<ArrayRef>,
    first: u64,
    rows: usize,
) -> Result<RecordBatch, String> {
    columns.push(Arc::new(UInt64Array::from_iter_values(
        first..first + rows as u64,
    )));
    RecordBatch::try_new(read_schema(), columns).map_err(|e| e.to_string())
}

/// The changes of a gzip JSON lines source, in batches.
fn read_jsonl(
    bytes: Vec<u8>,
    location: &str,
    first: u64,
    push: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
) -> Result<(), String> {
    let rows = reader::rows(Format::JsonlGz, bytes, location, Projection::ALL)
        .map_err(|e| e.to_string())?;
    let mut chunk: Vec<ChangeRecord> = Vec::with_capacity(JSONL_BATCH_ROWS);
    let mut next = first;
    let mut flush = |chunk: &mut Vec<ChangeRecord>, next: &mut u64| -> Result<(), String> {
        if chunk.is_empty() {
            return Ok(());
        }
        let batch = with_read_order(standard_columns(chunk), *next, chunk.len())?;
        *next += chunk.len() as u64;
        chunk.clear();
        push(batch)
    };
    for row in rows {
        let row: Row = row.map_err(|e| e.to_string())?;
        let change = row
            .into_change()
            .map_err(|e| format!("corrupt archive file {location}: {e}"))?;
        chunk.push(change);
        if chunk.len() == JSONL_BATCH_ROWS {
            flush(&mut chunk, &mut next)?;
        }
    }
    flush(&mut chunk, &mut next)
}
