//! Scan: restore's two reads of the archive, each on one worker per core (at most 4),
//! a few files fetched ahead.
//!
//! 1. [`read_changes`] reads every file up to T's day with only the columns that order
//!    the changes (event ID and name, sequence number, time, stream view type and keys;
//!    Parquet column by column into Arrow batches, gzip JSON lines line by line) into
//!    [`RunBuilder`]s, one per worker, each within its share of the budget.
//! 2. [`fetch_images`] reads again, of the files holding a winner only, the new image
//!    of each item's winning change (Parquet: only those rows' values are decoded), and
//!    the record when copies of the winner need the copy rule's record hash.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::TimestampMillisecondType;
use futures_util::stream::{FuturesOrdered, StreamExt};
use sha2::{Digest, Sha256};

use super::runs::{EntryError, RunBuilder, Source};
use super::RestoreError;
use crate::archive::copies::origin;
use crate::archive::filter::Filter;
use crate::archive::order::{read_text, read_u64, write_text, RunItem};
use crate::archive::reader::{
    parquet_batches, parquet_selected_batches, rows, worker_count, Column, CorruptFile, Projection,
    Row,
};
use crate::archive::source::ArchiveSource;
use crate::model::item::{canonical_key, is_canonical};
use crate::model::Format;

/// Files fetched ahead of the workers.
const FETCH_AHEAD: usize = 2;

/// What the first read takes of each row.
const ORDER_COLUMNS: Projection = Projection::of(&[
    Column::EventId,
    Column::EventName,
    Column::SequenceNumber,
    Column::ApproximateCreationTime,
    Column::StreamViewType,
    Column::Keys,
]);

/// What the first read selects.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The archived table, for messages.
    pub table: String,
    /// T, ms.
    pub as_of_ms: i64,
    /// One item only.
    pub key: Option<Filter>,
}

/// Rows counted by the first read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Rows read.
    pub read: usize,
    /// After T or of another item.
    pub skipped: usize,
    /// Selected.
    pub selected: usize,
}

/// A stream view type whose records hold no new image.
fn without_new_images(view: &str) -> bool {
    matches!(view, "KEYS_ONLY" | "OLD_IMAGE")
}

fn corrupt(location: &str, reason: String) -> RestoreError {
    RestoreError::Corrupt(CorruptFile {
        location: location.to_string(),
        reason,
    })
}

/// One row's ordering fields, borrowed from a batch or a line.
struct RowRef<'a> {
    event_id: &'a str,
    event_name: &'a str,
    sequence_number: &'a str,
    time_ms: i64,
    view: Option<&'a str>,
    keys: &'a str,
}

/// Adds one row to `builder` if it is selected.
fn add(
    sel: &Selection,
    builder: &mut RunBuilder,
    counts: &mut Counts,
    row: &RowRef<'_>,
    origin: u64,
    location: &str,
    canonical: &mut String,
) -> Result<(), RestoreError> {
    counts.read += 1;
    let other_item = || {
        sel.key.as_ref().is_some_and(|f| {
            !f.matches(&Row {
                keys: row.keys.to_string(),
                time_ms: row.time_ms,
                event_name: row.event_name.to_string(),
                ..Row::default()
            })
        })
    };
    if row.time_ms > sel.as_of_ms || other_item() {
        counts.skipped += 1;
        return Ok(());
    }
    if let Some(view) = row.view.filter(|v| without_new_images(v)) {
        return Err(RestoreError::Unrestorable(format!(
            "table {} was archived from a {view} stream (event {} in {location}): its records hold no new images, so the state at T cannot be rebuilt; archive a NEW_IMAGE or NEW_AND_OLD_IMAGES stream",
            sel.table, row.event_id
        )));
    }
    let key: &str = if is_canonical(row.keys) {
        row.keys
    } else {
        *canonical = canonical_key(row.keys).map_err(|reason| {
            corrupt(location, format!("event {}: keys: {reason}", row.event_id))
        })?;
        canonical
    };
    counts.selected += 1;
    builder
        .push(
            key,
            row.time_ms,
            row.sequence_number,
            row.event_id,
            origin,
            row.event_name == "REMOVE",
        )
        .map_err(|e| match e {
            EntryError::Change(reason) => {
                corrupt(location, format!("event {}: {reason}", row.event_id))
            }
            EntryError::Spill(e) => e.into(),
        })
}

/// A string column of a batch, type-checked.
fn strings<'a>(
    batch: &'a RecordBatch,
    column: Column,
    location: &str,
) -> Result<&'a StringArray, RestoreError> {
    let name = column.name();
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| corrupt(location, format!("no column `{name}`")))?;
    array.as_string_opt::<i32>().ok_or_else(|| {
        corrupt(
            location,
            format!("column `{name}` is {}, not a string", array.data_type()),
        )
    })
}

/// The value of a non-nullable string column at `i`.
fn required<'a>(
    array: &'a StringArray,
    i: usize,
    column: Column,
    row: usize,
    location: &str,
) -> Result<&'a str, RestoreError> {
    if array.is_null(i) {
        return Err(corrupt(
            location,
            format!("row {row}: `{}` is null", column.name()),
        ));
    }
    Ok(array.value(i))
}

/// Reads one file's rows into `builder`.
fn scan_file(
    sel: &Selection,
    file: usize,
    format: Format,
    bytes: Vec<u8>,
    location: &str,
    builder: &mut RunBuilder,
    progress: &indicatif::ProgressBar,
) -> Result<Counts, RestoreError> {
    let mut counts = Counts::default();
    let mut canonical = String::new();
    match format {
        Format::Parquet => {
            let mut at = 0usize;
            for batch in parquet_batches(bytes, location, ORDER_COLUMNS)? {
                let batch = batch.map_err(|e| corrupt(location, format!("row {}: {e}", at + 1)))?;
                let ids = strings(&batch, Column::EventId, location)?;
                let names = strings(&batch, Column::EventName, location)?;
                let seqs = strings(&batch, Column::SequenceNumber, location)?;
                let views = strings(&batch, Column::StreamViewType, location)?;
                let keys = strings(&batch, Column::Keys, location)?;
                let time_name = Column::ApproximateCreationTime.name();
                let times = batch
                    .column_by_name(time_name)
                    .and_then(|a| a.as_primitive_opt::<TimestampMillisecondType>())
                    .ok_or_else(|| {
                        corrupt(
                            location,
                            format!("column `{time_name}` is not TIMESTAMP(MILLIS)"),
                        )
                    })?;
                for i in 0..batch.num_rows() {
                    let n = at + i + 1;
                    if times.is_null(i) {
                        return Err(corrupt(location, format!("row {n}: `{time_name}` is null")));
                    }
                    let row = RowRef {
                        event_id: required(ids, i, Column::EventId, n, location)?,
                        event_name: required(names, i, Column::EventName, n, location)?,
                        sequence_number: required(seqs, i, Column::SequenceNumber, n, location)?,
                        time_ms: times.value(i),
                        view: (!views.is_null(i)).then(|| views.value(i)),
                        keys: required(keys, i, Column::Keys, n, location)?,
                    };
                    let o = origin(file, at + i);
                    add(sel, builder, &mut counts, &row, o, location, &mut canonical)?;
                }
                at += batch.num_rows();
                progress.inc(batch.num_rows() as u64);
            }
        }
        Format::JsonlGz => {
            for (i, row) in rows(format, bytes, location, ORDER_COLUMNS)?.enumerate() {
                let row = row?;
                let r = RowRef {
                    event_id: &row.event_id,
                    event_name: &row.event_name,
                    sequence_number: &row.sequence_number,
                    time_ms: row.time_ms,
                    view: row.stream_view_type.as_deref(),
                    keys: &row.keys,
                };
                add(
                    sel,
                    builder,
                    &mut counts,
                    &r,
                    origin(file, i),
                    location,
                    &mut canonical,
                )?;
                progress.inc(1);
            }
        }
    }
    Ok(counts)
}

fn join_error(e: tokio::task::JoinError) -> RestoreError {
    RestoreError::Spill(std::io::Error::other(format!(
        "a reading thread stopped: {e}"
    )))
}

/// The first read: every data file of `files` (numbered by their place in it; `None`
/// for a file that is not archive data) into sorted runs, within `budget` bytes in
/// all. Returns the runs, the counts (per file, in order) and the runs spilled.
pub async fn read_changes(
    source: &dyn ArchiveSource,
    files: &[(String, Option<Format>)],
    sel: &Selection,
    budget: usize,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<Source>, Vec<Counts>, usize), RestoreError> {
    let workers = worker_count();
    let share = (budget / workers).max(1);
    let pool: Arc<Mutex<Vec<RunBuilder>>> = Arc::new(Mutex::new(
        (0..workers).map(|_| RunBuilder::new(share)).collect(),
    ));
    let running = Arc::new(tokio::sync::Semaphore::new(workers));
    let sel = Arc::new(sel.clone());
    let mut read = futures_util::stream::iter(
        files
            .iter()
            .enumerate()
            .filter_map(|(i, (key, format))| format.map(|f| (i, key, f))),
    )
    .map(|(file, key, format)| {
        let (pool, running, sel, progress) = (
            Arc::clone(&pool),
            Arc::clone(&running),
            Arc::clone(&sel),
            progress.clone(),
        );
        async move {
            let bytes = source.get(key).await?;
            let location = source.location(key);
            let _permit = running
                .acquire_owned()
                .await
                .map_err(|e| RestoreError::Spill(std::io::Error::other(format!("reading: {e}"))))?;
            tokio::task::spawn_blocking(move || {
                let taken = pool.lock().ok().and_then(|mut p| p.pop());
                let mut builder = taken.unwrap_or_else(|| RunBuilder::new(share));
                let out = scan_file(
                    &sel,
                    file,
                    format,
                    bytes,
                    &location,
                    &mut builder,
                    &progress,
                );
                if let Ok(mut p) = pool.lock() {
                    p.push(builder);
                }
                out
            })
            .await
            .map_err(join_error)?
        }
    })
    .buffered(workers + FETCH_AHEAD);
    let mut counts = Vec::new();
    while let Some(c) = read.next().await {
        counts.push(c?);
    }
    drop(read);
    let builders = std::mem::take(
        &mut *pool
            .lock()
            .map_err(|_| RestoreError::Spill(std::io::Error::other("a reading thread failed")))?,
    );
    let spilled = builders.iter().map(RunBuilder::spilled_runs).sum();
    let sorting: Vec<_> = builders
        .into_iter()
        .map(|b| tokio::task::spawn_blocking(move || b.finish()))
        .collect();
    let mut sources = Vec::new();
    for s in sorting {
        sources.extend(s.await.map_err(join_error)?);
    }
    Ok((sources, counts, spilled))
}

/// One winning row (or one copy of a winner) to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Where it was read ([`origin`]).
    pub origin: u64,
    /// 0, or the number shared by the copies of one winner archived twice.
    pub copies: u64,
    /// A REMOVE (known from the first read).
    pub remove: bool,
}

/// What the second read found for one [`Wanted`] row.
#[derive(Debug)]
pub enum Fetched {
    /// A winner's new image, exactly as archived, checked.
    Image(String),
    /// One of a winner's copies, for the copy rule.
    Copy(CopyFound),
}

/// One copy of a winner archived twice: its record's hash decides which is kept.
#[derive(Debug, Clone)]
pub struct CopyFound {
    /// [`Wanted::copies`].
    pub copies: u64,
    /// SHA-256 of the record text.
    pub record_sha256: [u8; 32],
    /// Where it was read.
    pub origin: u64,
    /// A REMOVE.
    pub remove: bool,
    /// Its event ID, for messages.
    pub event_id: String,
    /// Its new image, if any, unchecked.
    pub image: Option<String>,
    /// The file, for messages.
    pub location: String,
}

/// Checks a winner's new image: present and DynamoDB JSON restore can write.
pub fn checked_image(
    image: Option<String>,
    event_id: &str,
    location: &str,
) -> Result<String, RestoreError> {
    let unrestorable = |why: &str| {
        RestoreError::Unrestorable(format!(
            "an item's latest change at T (event {event_id} in {location}) {why}"
        ))
    };
    let image = image.ok_or_else(|| unrestorable("has no NewImage"))?;
    super::item::to_item(&image)
        .map_err(|e| unrestorable(&format!("has a malformed NewImage: {e}")))?;
    Ok(image)
}

/// The wanted rows of one file, in row order.
fn fetch_file(
    format: Format,
    bytes: Vec<u8>,
    location: &str,
    wanted: &[Wanted],
) -> Result<Vec<Fetched>, RestoreError> {
    let with_record = wanted.iter().any(|w| w.copies != 0);
    let mut columns = vec![Column::EventId, Column::NewImage];
    if with_record {
        columns.push(Column::Record);
    }
    let projection = Projection::of(&columns);
    let row_of = |w: &Wanted| (w.origin & 0xffff_ffff) as usize;
    let mut found: Vec<(String, Option<String>, Option<String>)> = Vec::with_capacity(wanted.len());
    match format {
        Format::Parquet => {
            let selected: Vec<usize> = wanted.iter().map(row_of).collect();
            for batch in parquet_selected_batches(bytes, location, projection, &selected)? {
                let batch = batch.map_err(|e| corrupt(location, e))?;
                let ids = strings(&batch, Column::EventId, location)?;
                let images = strings(&batch, Column::NewImage, location)?;
                let records = if with_record {
                    Some(strings(&batch, Column::Record, location)?)
                } else {
                    None
                };
                for i in 0..batch.num_rows() {
                    let text = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
                    found.push((
                        ids.value(i).to_string(),
                        text(images),
                        records.and_then(text),
                    ));
                }
            }
        }
        Format::JsonlGz => {
            let mut next = wanted.iter().map(row_of).peekable();
            for (i, row) in rows(format, bytes, location, projection)?.enumerate() {
                let Some(&want) = next.peek() else { break };
                let row = row?;
                if i == want {
                    next.next();
                    found.push((row.event_id, row.new_image, Some(row.record)));
                }
            }
        }
    }
    if found.len() != wanted.len() {
        return Err(corrupt(
            location,
            format!(
                "{} rows read again where {} were read before",
                found.len(),
                wanted.len()
            ),
        ));
    }
    wanted
        .iter()
        .zip(found)
        .map(|(w, (event_id, image, record))| {
            if w.copies == 0 {
                return checked_image(image, &event_id, location).map(Fetched::Image);
            }
            Ok(Fetched::Copy(CopyFound {
                copies: w.copies,
                record_sha256: Sha256::digest(record.unwrap_or_default().as_bytes()).into(),
                origin: w.origin,
                remove: w.remove,
                event_id,
                image,
                location: location.to_string(),
            }))
        })
        .collect()
}

/// The second read: the rows `wanted` yields (in origin order), file by file, each
/// file's findings handed to `found` in file order.
pub async fn fetch_images(
    source: &dyn ArchiveSource,
    files: &[(String, Option<Format>)],
    wanted: &mut dyn Iterator<Item = Result<Wanted, RestoreError>>,
    found: &mut dyn FnMut(Vec<Fetched>) -> Result<(), RestoreError>,
) -> Result<(), RestoreError> {
    let workers = worker_count();
    let running = Arc::new(tokio::sync::Semaphore::new(workers));
    let mut inflight = FuturesOrdered::new();
    let mut pending: Option<Wanted> = None;
    let mut done = false;
    loop {
        while !done && inflight.len() < workers + FETCH_AHEAD {
            // The next file's wanted rows.
            let mut rows: Vec<Wanted> = pending.take().into_iter().collect();
            loop {
                match wanted.next().transpose()? {
                    None => {
                        done = true;
                        break;
                    }
                    Some(w)
                        if rows
                            .first()
                            .is_none_or(|f| f.origin >> 32 == w.origin >> 32) =>
                    {
                        rows.push(w)
                    }
                    Some(w) => {
                        pending = Some(w);
                        break;
                    }
                }
            }
            let Some(first) = rows.first() else { break };
            let file = (first.origin >> 32) as usize;
            let (key, format) = match files.get(file) {
                Some((key, Some(format))) => (key.clone(), *format),
                _ => {
                    return Err(RestoreError::Spill(std::io::Error::other(format!(
                        "no archive file number {file}"
                    ))))
                }
            };
            let running = Arc::clone(&running);
            inflight.push_back(async move {
                let bytes = source.get(&key).await?;
                let location = source.location(&key);
                let _permit = running.acquire_owned().await.map_err(|e| {
                    RestoreError::Spill(std::io::Error::other(format!("reading: {e}")))
                })?;
                tokio::task::spawn_blocking(move || fetch_file(format, bytes, &location, &rows))
                    .await
                    .map_err(join_error)?
            });
        }
        match inflight.next().await {
            None => return Ok(()),
            Some(result) => found(result?)?,
        }
    }
}

/// Wanted rows sort by origin: file by file, in row order.
impl RunItem for Wanted {
    fn approx_bytes(&self) -> usize {
        40
    }

    fn cmp_key(&self, other: &Self) -> std::cmp::Ordering {
        self.origin.cmp(&other.origin)
    }

    fn identity(&self) -> &str {
        ""
    }

    fn write_run(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.origin.to_le_bytes())?;
        out.write_all(&self.copies.to_le_bytes())?;
        out.write_all(&[u8::from(self.remove)])
    }

    fn read_run(input: &mut impl Read) -> std::io::Result<Option<Self>> {
        let Some(origin) = read_u64(input)? else {
            return Ok(None);
        };
        let copies = read_u64(input)?.ok_or_else(truncated)?;
        let mut remove = [0u8];
        input.read_exact(&mut remove)?;
        Ok(Some(Wanted {
            origin: u64::from_le_bytes(origin),
            copies: u64::from_le_bytes(copies),
            remove: remove[0] == 1,
        }))
    }
}

fn truncated() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "truncated run file")
}

/// Copies sort by winner, then the copy rule: the lowest record hash, then origin.
impl RunItem for CopyFound {
    fn approx_bytes(&self) -> usize {
        self.event_id.len() + self.image.as_ref().map_or(0, String::len) + self.location.len() + 160
    }

    fn cmp_key(&self, other: &Self) -> std::cmp::Ordering {
        (self.copies, self.record_sha256, self.origin).cmp(&(
            other.copies,
            other.record_sha256,
            other.origin,
        ))
    }

    fn identity(&self) -> &str {
        ""
    }

    fn write_run(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.copies.to_le_bytes())?;
        out.write_all(&self.record_sha256)?;
        out.write_all(&self.origin.to_le_bytes())?;
        out.write_all(&[u8::from(self.remove), u8::from(self.image.is_some())])?;
        write_text(out, &self.event_id)?;
        write_text(out, self.image.as_deref().unwrap_or_default())?;
        write_text(out, &self.location)
    }

    fn read_run(input: &mut impl Read) -> std::io::Result<Option<Self>> {
        let Some(copies) = read_u64(input)? else {
            return Ok(None);
        };
        let mut record_sha256 = [0u8; 32];
        input.read_exact(&mut record_sha256)?;
        let origin = read_u64(input)?.ok_or_else(truncated)?;
        let mut flags = [0u8; 2];
        input.read_exact(&mut flags)?;
        let event_id = read_text(input)?;
        let image = read_text(input)?;
        Ok(Some(CopyFound {
            copies: u64::from_le_bytes(copies),
            record_sha256,
            origin: u64::from_le_bytes(origin),
            remove: flags[0] == 1,
            event_id,
            image: (flags[1] == 1).then_some(image),
            location: read_text(input)?,
        }))
    }
}
