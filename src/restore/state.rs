//! State: the table as it was at T, computed from the archive before anything is
//! written.
//!
//! Three steps ([`super::scan`] reads, on one worker per core):
//!
//! 1. Every change at or before T (of one item with `--key`) becomes a compact sort
//!    entry ([`super::runs`]): its item's canonical key, time, sequence number and event
//!    ID as comparable bytes, its origin (file and row) and whether it is a REMOVE. Only
//!    those columns are read; records and images are not. Entries are sorted within
//!    the memory budget, spilled past it, and merged.
//! 2. Each item's entries come out together, in stream order. Of the copies of one
//!    event (its event ID again: a retried batch archived twice, or a Kinesis copy with
//!    its own sequence number and time), the first in stream order is the change; the
//!    others are dropped wherever they sort, the rule of [`crate::archive::copies`]
//!    (copies of one event carry the same keys). The item's last change is its winner:
//!    a REMOVE leaves the item absent; otherwise its origin is kept, in a sorter by
//!    origin. Copies that are the same change (same time and sequence number) are all
//!    kept as candidates, and the lowest SHA-256 of the record decides, as
//!    [`crate::archive::manifest::RowDigest`] does.
//! 3. The winners' new images are read again, file by file, only their rows (the
//!    `new_image` column: the `NewImage` text exactly as archived, whitespace removed),
//!    checked, and written one per line to a temporary file, in origin order.
//!
//! Memory holds the budget (3/4 for the entries, 1/8 for the winners' origins, 1/8 for
//! the candidates that need the record hash; past their shares they spill), the event
//! IDs of the item being merged, and per worker one archive file and its decoded
//! batch. Archives that cannot give the state stop the computation with the reason: a
//! `KEYS_ONLY` or `OLD_IMAGE` stream, or a latest change without its `NewImage`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use sha2::{Digest, Sha256};

use super::item::KeyShape;
use super::runs::{group_key, parts, Merge};
use super::scan::{self, checked_image, CopyFound, Fetched, Selection, Wanted};
use super::{RestoreError, RestoreSummary};
use crate::archive::filter::Filter;
use crate::archive::order::Sorter;
use crate::archive::source::ArchiveSource;
use crate::model::hex::hex;
use crate::model::key::{partition_day, table_prefix};
use crate::model::Format;

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

/// An entry of the merge that cannot be read back.
fn unreadable() -> RestoreError {
    RestoreError::Spill(std::io::Error::other("a sort entry cannot be read back"))
}

/// Items' entries, in merge order, reduced to each item's winner.
#[derive(Debug, Default)]
struct Winners {
    /// The current item's group bytes, while one is open.
    group: Vec<u8>,
    open: bool,
    /// The current item's event IDs seen.
    seen: HashSet<Vec<u8>>,
    /// The current item's last change so far: its entry.
    last: Vec<u8>,
    /// Other copies of that change (origin, REMOVE).
    same: Vec<(u64, bool)>,
    /// Winners with copies so far.
    with_copies: u64,
    keys: usize,
    absent: usize,
    duplicates: usize,
    first_key: Option<String>,
}

impl Winners {
    fn entry(&mut self, e: &[u8], out: &mut Sorter<Wanted>) -> Result<(), RestoreError> {
        let p = parts(e).ok_or_else(unreadable)?;
        if !self.open || p.group != self.group.as_slice() {
            self.close(out)?;
            self.group.clear();
            self.group.extend_from_slice(p.group);
            self.open = true;
            self.seen.clear();
            if self.first_key.is_none() {
                self.first_key = Some(String::from_utf8_lossy(group_key(p.group)).into_owned());
            }
        }
        if self.seen.contains(p.event_id) {
            self.duplicates += 1;
            if parts(&self.last).is_some_and(|l| l.change == p.change) {
                self.same.push((p.origin, p.remove));
            }
            return Ok(());
        }
        self.seen.insert(p.event_id.to_vec());
        self.last.clear();
        self.last.extend_from_slice(e);
        self.same.clear();
        Ok(())
    }

    fn close(&mut self, out: &mut Sorter<Wanted>) -> Result<(), RestoreError> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        self.keys += 1;
        let last = parts(&self.last).ok_or_else(unreadable)?;
        if self.same.is_empty() {
            if last.remove {
                self.absent += 1;
                return Ok(());
            }
            return Ok(out.push(Wanted {
                origin: last.origin,
                copies: 0,
                remove: false,
            })?);
        }
        self.with_copies += 1;
        let copies = self.with_copies;
        for (origin, remove) in
            std::iter::once((last.origin, last.remove)).chain(self.same.drain(..))
        {
            out.push(Wanted {
                origin,
                copies,
                remove,
            })?;
        }
        Ok(())
    }
}

/// Writes one image line.
fn write_line(out: &mut impl Write, image: &str) -> Result<(), RestoreError> {
    out.write_all(image.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(RestoreError::Spill)
}

/// Computes the state at T into a temporary file. Nothing is written anywhere else.
pub async fn compute(
    source: &dyn ArchiveSource,
    input: &StateInput<'_>,
    summary: &mut RestoreSummary,
    progress: &indicatif::ProgressBar,
) -> Result<StateFile, RestoreError> {
    let files: Vec<(String, Option<Format>)> = files_up_to(source, input, summary)
        .await?
        .into_iter()
        .map(|key| {
            let format = Format::of_key(&key);
            match format {
                Some(_) => summary.files += 1,
                None => summary.other_files.push(source.location(&key)),
            }
            (key, format)
        })
        .collect();
    let budget = input.memory_budget.max(8);
    let selection = Selection {
        table: input.table.to_string(),
        as_of_ms: input.as_of_ms,
        key: input.key.cloned(),
    };
    let started = std::time::Instant::now();
    let (sources, counts, spilled) =
        scan::read_changes(source, &files, &selection, budget - budget / 4, progress).await?;
    tracing::debug!(elapsed = ?started.elapsed(), "restore: changes read and sorted");
    for c in counts {
        summary.changes_read += c.read;
        summary.changes_skipped += c.skipped;
        summary.changes_selected += c.selected;
    }
    progress.set_message(format!("{} files read", summary.files));

    let mut wanted = Sorter::keeping_copies(budget / 8);
    let mut winners = Winners::default();
    let mut merge = Merge::new(sources)?;
    while let Some(e) = merge.peek() {
        winners.entry(e, &mut wanted)?;
        merge.advance()?;
    }
    winners.close(&mut wanted)?;
    drop(merge);
    tracing::debug!(elapsed = ?started.elapsed(), "restore: winners chosen");
    summary.keys = winners.keys;
    summary.absent_deleted = winners.absent;
    summary.duplicates_dropped = winners.duplicates;
    summary.spilled_runs = spilled + wanted.spilled_runs();
    let keys = winners
        .first_key
        .as_deref()
        .map(KeyShape::of_keys)
        .transpose()
        .map_err(RestoreError::Unrestorable)?;

    let mut out = Hashing {
        inner: BufWriter::new(tempfile::tempfile().map_err(RestoreError::Spill)?),
        hash: Sha256::new(),
    };
    let mut copies: Sorter<CopyFound> = Sorter::keeping_copies(budget / 8);
    let mut items = 0usize;
    let mut rows = wanted.into_sorted()?.map(|r| r.map_err(RestoreError::from));
    scan::fetch_images(source, &files, &mut rows, &mut |found| {
        for f in found {
            match f {
                Fetched::Image(image) => {
                    write_line(&mut out, &image)?;
                    items += 1;
                }
                Fetched::Copy(c) => copies.push(c)?,
            }
        }
        Ok(())
    })
    .await?;
    tracing::debug!(elapsed = ?started.elapsed(), "restore: images read");
    summary.spilled_runs += copies.spilled_runs();
    let mut decided = None;
    for c in copies.into_sorted()? {
        let c = c?;
        if decided == Some(c.copies) {
            continue;
        }
        decided = Some(c.copies);
        if c.remove {
            summary.absent_deleted += 1;
        } else {
            write_line(&mut out, &checked_image(c.image, &c.event_id, &c.location)?)?;
            items += 1;
        }
    }
    summary.items = items;
    let digest = hex(out.hash.finalize().as_slice());
    let file = out
        .inner
        .into_inner()
        .map_err(|e| RestoreError::Spill(e.into_error()))?;
    Ok(StateFile { file, keys, digest })
}
