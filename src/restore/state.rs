//! State: the table as it was at T, computed from the archive before anything is
//! written.
//!
//! Every change at or before T (of one item with `--key`) goes into the archive's
//! [`FirstCopies`] sorter with its item's canonical key as the group, so each item's
//! history comes out together, in stream order, each event once: of its copies, the
//! earliest in stream order, wherever the others sort (a Kinesis duplicate has its own
//! sequence number and may have its own time, with other changes of the item between
//! the copies). Streaming through it keeps only the current item's last change: a
//! REMOVE leaves the item absent, an INSERT or MODIFY gives its `NewImage` text, exactly
//! as archived (whitespace removed), one line in a temporary file. Memory holds the
//! sorter's budget (which includes the notes that choose among copies, spilled past
//! their share like the changes), 8 bytes per displaced copy, and one item's last
//! change, never a map of all keys. Archives that cannot give the state stop the computation with the
//! reason: a `KEYS_ONLY` or `OLD_IMAGE` stream, or a latest change without its
//! `NewImage`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::item::{to_item, KeyShape};
use super::{RestoreError, RestoreSummary};
use crate::archive::copies::{origin, FirstCopies};
use crate::archive::filter::Filter;
use crate::archive::order::Change;
use crate::archive::reader::{rows, Projection};
use crate::archive::source::ArchiveSource;
use crate::model::hex::hex;
use crate::model::item::canonical_key;
use crate::model::key::{partition_day, table_prefix};
use crate::model::Format;

/// What restore reads of each row: the ordering fields, the keys, the record and the
/// stream view type (a baseline or export row's synthetic record carries it).
pub const PROJECTION: Projection = Projection::CHANGES_AND_VIEW;

/// What the state is computed from.
#[derive(Debug, Clone)]
pub struct StateInput<'a> {
    /// The archived table.
    pub table: &'a str,
    /// T: changes at or before this time, milliseconds since the Unix epoch.
    pub as_of_ms: i64,
    /// One item only (`--key`).
    pub key: Option<&'a Filter>,
    /// Bytes of changes held in memory before sorted runs spill to disk.
    pub memory_budget: usize,
}

/// The state at T: the final items' images, one per line, in a temporary file.
#[derive(Debug)]
pub struct StateFile {
    file: File,
    /// The archived key attributes (of the first key seen), if any change was read.
    pub keys: Option<KeyShape>,
    /// SHA-256, hex, of the file's text: the items in the order written. The same
    /// archive and options always give the same digest.
    pub digest: String,
}

/// A writer that hashes what it writes.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl StateFile {
    /// The items' DynamoDB JSON texts, one by one.
    pub fn images(mut self) -> Result<impl Iterator<Item = std::io::Result<String>>, RestoreError> {
        self.file.rewind().map_err(RestoreError::Spill)?;
        Ok(BufReader::new(self.file).lines())
    }
}

/// A stream view type whose records hold no new image.
fn without_new_images(view: &str) -> bool {
    matches!(view, "KEYS_ONLY" | "OLD_IMAGE")
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(borrow)]
    dynamodb: Option<Dynamodb<'a>>,
}

#[derive(Deserialize)]
struct Dynamodb<'a> {
    #[serde(rename = "NewImage", borrow)]
    new_image: Option<&'a RawValue>,
    #[serde(rename = "StreamViewType")]
    stream_view_type: Option<String>,
}

/// Lists the table's archive files in partitions up to T's UTC day.
async fn files_up_to(
    source: &dyn ArchiveSource,
    input: &StateInput<'_>,
    summary: &mut RestoreSummary,
) -> Result<Vec<String>, RestoreError> {
    let all = source.list(&table_prefix(input.table)).await?;
    if !all.iter().any(|k| partition_day(k).is_some()) {
        return Err(RestoreError::NoArchive {
            table: input.table.to_string(),
            location: source.location(&table_prefix(input.table)),
        });
    }
    let last_day = chrono::DateTime::from_timestamp_millis(input.as_of_ms).map(|t| t.date_naive());
    let mut days = std::collections::BTreeSet::new();
    let mut keys = Vec::new();
    for key in all {
        match partition_day(&key) {
            Some(day) if last_day.is_none_or(|l| day <= l) => {
                days.insert(day);
                keys.push(key);
            }
            Some(_) => summary.partitions_after_as_of += 1,
            None => tracing::debug!(key, "not under a year=/month=/day= partition"),
        }
    }
    summary.partitions = days.len();
    Ok(keys)
}

/// Reads the changes at or before T into a sorter grouped by item key. Copies of one
/// event carry the same keys, so every copy of a selected change is selected too.
async fn read_changes(
    source: &dyn ArchiveSource,
    input: &StateInput<'_>,
    summary: &mut RestoreSummary,
    progress: &indicatif::ProgressBar,
) -> Result<FirstCopies, RestoreError> {
    let mut sorter = FirstCopies::new(input.memory_budget);
    for (file, key) in files_up_to(source, input, summary)
        .await?
        .into_iter()
        .enumerate()
    {
        let Some(format) = Format::of_key(&key) else {
            summary.other_files.push(source.location(&key));
            continue;
        };
        let location = source.location(&key);
        let bytes = source.get(&key).await?;
        summary.files += 1;
        for (i, row) in rows(format, bytes, &location, PROJECTION)?.enumerate() {
            let row = row?;
            let origin = origin(file, i);
            summary.changes_read += 1;
            progress.inc(1);
            if row.time_ms > input.as_of_ms || input.key.is_some_and(|f| !f.matches(&row)) {
                summary.changes_skipped += 1;
                continue;
            }
            if let Some(view) = row
                .stream_view_type
                .as_deref()
                .filter(|v| without_new_images(v))
            {
                return Err(RestoreError::Unrestorable(format!(
                    "table {} was archived from a {view} stream (event {} in {location}): its records hold no new images, so the state at T cannot be rebuilt; archive a NEW_IMAGE or NEW_AND_OLD_IMAGES stream",
                    input.table, row.event_id
                )));
            }
            let group = canonical_key(&row.keys).map_err(|reason| {
                RestoreError::Corrupt(crate::archive::reader::CorruptFile {
                    location: location.clone(),
                    reason: format!("event {}: keys: {reason}", row.event_id),
                })
            })?;
            summary.changes_selected += 1;
            sorter.note(&row, origin)?;
            // A baseline or export row's record is an export line: its stream form.
            let record = if crate::model::coverage::is_non_stream(&row.sequence_number) {
                crate::archive::export_row::synthetic_stream_record(
                    &crate::archive::export_row::ExportRow {
                        event_id: &row.event_id,
                        event_name: &row.event_name,
                        table: input.table,
                        time_ms: row.time_ms,
                        stream_view_type: row.stream_view_type.as_deref(),
                        keys: &row.keys,
                        record: &row.record,
                    },
                )
                .map_err(|reason| {
                    RestoreError::Corrupt(crate::archive::reader::CorruptFile {
                        location: location.clone(),
                        reason: format!("event {}: {reason}", row.event_id),
                    })
                })?
            } else {
                row.record
            };
            sorter.push(
                Change {
                    group,
                    time_ms: row.time_ms,
                    sequence_number: row.sequence_number,
                    event_id: row.event_id,
                    record,
                },
                origin,
            )?;
        }
        progress.set_message(format!("{} files read", summary.files));
    }
    Ok(sorter)
}

/// Writes the final image of an item's last change, or counts it absent.
fn emit_final_state(
    last: Change,
    out: &mut impl Write,
    summary: &mut RestoreSummary,
) -> Result<(), RestoreError> {
    summary.keys += 1;
    let unrestorable = |why: &str| {
        RestoreError::Unrestorable(format!(
            "item {} at T: its latest change (event {}) {why}",
            last.group, last.event_id
        ))
    };
    let record: Record<'_> = serde_json::from_str(&last.record)
        .map_err(|e| unrestorable(&format!("is not a JSON record: {e}")))?;
    if record.event_name.as_deref() == Some("REMOVE") {
        summary.absent_deleted += 1;
        return Ok(());
    }
    let dynamodb = record
        .dynamodb
        .ok_or_else(|| unrestorable("has no `dynamodb` member"))?;
    if let Some(view) = dynamodb
        .stream_view_type
        .as_deref()
        .filter(|v| without_new_images(v))
    {
        return Err(unrestorable(&format!(
            "comes from a {view} stream, which holds no new images"
        )));
    }
    let image = dynamodb
        .new_image
        .ok_or_else(|| unrestorable("has no NewImage"))?;
    let text = crate::decode::minify_json(image.get());
    to_item(&text).map_err(|e| unrestorable(&format!("has a malformed NewImage: {e}")))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(RestoreError::Spill)?;
    summary.items += 1;
    Ok(())
}

/// Computes the state at T into a temporary file. Nothing is written anywhere else.
pub async fn compute(
    source: &dyn ArchiveSource,
    input: &StateInput<'_>,
    summary: &mut RestoreSummary,
    progress: &indicatif::ProgressBar,
) -> Result<StateFile, RestoreError> {
    let sorter = read_changes(source, input, summary, progress).await?;
    summary.spilled_runs = sorter.spilled_runs();
    let mut sorted = sorter.into_sorted()?;
    let mut out = Hashing {
        inner: BufWriter::new(tempfile::tempfile().map_err(RestoreError::Spill)?),
        hash: Sha256::new(),
    };
    let mut keys = None;
    let mut last: Option<Change> = None;
    for change in sorted.by_ref() {
        let change = change?;
        if keys.is_none() {
            keys = Some(KeyShape::of_keys(&change.group).map_err(RestoreError::Unrestorable)?);
        }
        match last.take() {
            Some(prev) if prev.group != change.group => emit_final_state(prev, &mut out, summary)?,
            _ => {}
        }
        last = Some(change);
    }
    if let Some(prev) = last {
        emit_final_state(prev, &mut out, summary)?;
    }
    summary.duplicates_dropped = sorted.duplicates();
    let digest = hex(out.hash.finalize().as_slice());
    let file = out
        .inner
        .into_inner()
        .map_err(|e| RestoreError::Spill(e.into_error()))?;
    Ok(StateFile { file, keys, digest })
}
