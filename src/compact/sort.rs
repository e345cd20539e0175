//! Sort: a table-day's rows, as Arrow record batches, put in stream order —
//! `approximate_creation_time`, then sequence number compared numerically, then
//! `event_id`, then where the row was read ([`ORDER_COLUMN`]) — with each `event_id`
//! once.
//!
//! Batches are held up to a byte budget. Past it they are sorted and spilled to an
//! anonymous temporary file as an Arrow IPC stream compressed with LZ4, in batches of about
//! [`RUN_BATCH_BYTES`], and the runs are merged: memory stays bounded whatever the day
//! holds (the budget, plus one batch per run while merging), and no row is ever parsed
//! or copied one field at a time. The last key makes the order total, so the output is
//! the same whichever thread read which object: of two copies of one event, the one
//! read first (lowest object key, then row) is kept.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek};

use arrow::array::{Array, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

use crate::model::order::cmp_sequence;

/// The hidden last column of sorted batches: `(object index << 32) | row`, where the
/// row was read. It is never written to a compacted file.
pub const ORDER_COLUMN: &str = "_read_order";

/// About this many bytes per batch of a sorted run.
pub const RUN_BATCH_BYTES: usize = 1 << 20;

const EVENT_ID: usize = 0;
const SEQUENCE_NUMBER: usize = 3;
const TIME: usize = 4;
const ORDER: usize = 12;

/// A sorted run could not be written to or read back from its temporary file.
#[derive(Debug, thiserror::Error)]
pub enum SortError {
    /// The temporary file failed.
    #[error("temporary sort file: {0}")]
    Io(#[from] std::io::Error),
    /// A batch could not be built, spilled or read back.
    #[error("sorting rows: {0}")]
    Arrow(#[from] ArrowError),
}

/// The ordering columns of one batch.
struct Keys {
    time: TimestampMillisecondArray,
    sequence_number: StringArray,
    event_id: StringArray,
    order: arrow::array::UInt64Array,
}

impl Keys {
    fn empty() -> Keys {
        Keys {
            time: TimestampMillisecondArray::from(Vec::<i64>::new()),
            sequence_number: StringArray::from(Vec::<&str>::new()),
            event_id: StringArray::from(Vec::<&str>::new()),
            order: arrow::array::UInt64Array::from(Vec::<u64>::new()),
        }
    }

    fn of(batch: &RecordBatch) -> Result<Keys, ArrowError> {
        let wrong = |name: &str| ArrowError::SchemaError(format!("sorted batch: bad `{name}`"));
        Ok(Keys {
            time: batch
                .column(TIME)
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(|| wrong("approximate_creation_time"))?
                .clone(),
            sequence_number: batch
                .column(SEQUENCE_NUMBER)
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong("sequence_number"))?
                .clone(),
            event_id: batch
                .column(EVENT_ID)
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong("event_id"))?
                .clone(),
            order: batch
                .columns()
                .get(ORDER)
                .and_then(|c| c.as_primitive_opt::<UInt64Type>())
                .ok_or_else(|| wrong(ORDER_COLUMN))?
                .clone(),
        })
    }
}

/// Stream order of row `i` of `a` and row `j` of `b`.
fn cmp_rows(a: &Keys, i: usize, b: &Keys, j: usize) -> Ordering {
    a.time
        .value(i)
        .cmp(&b.time.value(j))
        .then_with(|| cmp_sequence(a.sequence_number.value(i), b.sequence_number.value(j)))
        .then_with(|| a.event_id.value(i).cmp(b.event_id.value(j)))
        .then_with(|| a.order.value(i).cmp(&b.order.value(j)))
}

/// Sorts batches of [`super::slim::slim_schema`] within a memory budget.
#[derive(Debug)]
pub struct RunSorter {
    budget: usize,
    held: Vec<RecordBatch>,
    /// The held batches once sorted by [`RunSorter::finish`]: the last run, in memory.
    sorted: Vec<RecordBatch>,
    held_bytes: usize,
    runs: Vec<File>,
    spilled_bytes: u64,
    duplicates: u64,
}

impl RunSorter {
    /// A sorter holding at most about `budget` bytes of batches in memory.
    pub fn new(budget: usize) -> Self {
        RunSorter {
            budget,
            held: Vec::new(),
            sorted: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
            spilled_bytes: 0,
            duplicates: 0,
        }
    }

    /// Adds a batch of [`super::slim::slim_schema`], spilling a sorted run when the budget is passed.
    pub fn push(&mut self, batch: RecordBatch) -> Result<(), SortError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.held_bytes += batch.get_array_memory_size();
        self.held.push(batch);
        if self.held_bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs spilled to temporary files so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Sorts the batches still held (the last run, kept in memory) now, on the calling
    /// thread, rather than when the merge starts.
    pub fn finish(&mut self) -> Result<(), SortError> {
        let mut sorted = self.sort_held()?;
        self.sorted.append(&mut sorted);
        Ok(())
    }

    /// The held batches, sorted, without duplicates, in batches of about
    /// [`RUN_BATCH_BYTES`].
    fn sort_held(&mut self) -> Result<Vec<RecordBatch>, SortError> {
        let held = std::mem::take(&mut self.held);
        let held_bytes = std::mem::take(&mut self.held_bytes);
        let keys = held.iter().map(Keys::of).collect::<Result<Vec<_>, _>>()?;
        let mut rows: Vec<(usize, usize)> = held
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
            .collect();
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let per_batch = (RUN_BATCH_BYTES * rows.len() / held_bytes.max(1)).max(1);
        rows.sort_unstable_by(|&(a, i), &(b, j)| cmp_rows(&keys[a], i, &keys[b], j));
        let before = rows.len();
        rows.dedup_by(|&mut (b, j), &mut (a, i)| {
            keys[a].event_id.value(i) == keys[b].event_id.value(j)
        });
        self.duplicates += (before - rows.len()) as u64;
        let refs: Vec<&RecordBatch> = held.iter().collect();
        rows.chunks(per_batch)
            .map(|chunk| interleave_record_batch(&refs, chunk).map_err(SortError::from))
            .collect()
    }

    fn spill(&mut self) -> Result<(), SortError> {
        let sorted = self.sort_held()?;
        let Some(first) = sorted.first() else {
            return Ok(());
        };
        // LZ4 frames: the JSON text columns shrink several times for little CPU, and
        // the spill is read back once.
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(arrow::ipc::CompressionType::LZ4_FRAME))?;
        let mut out = StreamWriter::try_new_with_options(
            BufWriter::new(tempfile::tempfile()?),
            &first.schema(),
            options,
        )?;
        for batch in &sorted {
            out.write(batch)?;
        }
        out.finish()?;
        let mut file = out.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        self.spilled_bytes += file.stream_position()?;
        file.rewind()?;
        self.runs.push(file);
        tracing::debug!(runs = self.runs.len(), "sorted run spilled");
        Ok(())
    }
}

/// One sorted run being merged.
enum RunInput {
    Memory(std::vec::IntoIter<RecordBatch>),
    File(Box<StreamReader<BufReader<File>>>),
}

impl RunInput {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, SortError> {
        loop {
            let next = match self {
                RunInput::Memory(it) => it.next(),
                RunInput::File(reader) => reader.next().transpose()?,
            };
            match next {
                Some(b) if b.num_rows() == 0 => continue,
                other => return Ok(other),
            }
        }
    }
}

struct Cursor {
    input: RunInput,
    keys: Keys,
    slot: usize,
    row: usize,
    rows: usize,
}

/// The merged output of one or more [`RunSorter`]s: batches in stream order, each
/// `event_id` once.
pub struct Merged {
    /// Read orders of copies that do not meet their kept row in stream order (another
    /// time or sequence number), sorted: skipped wherever they come.
    displaced: Vec<u64>,
    cursors: Vec<Cursor>,
    /// Indices of the cursors with rows left, as a binary heap: the cursor whose current
    /// row comes first is at the top, so each row costs about log2(runs) comparisons.
    heap: Vec<usize>,
    pool: Vec<RecordBatch>,
    last_event_id: Option<String>,
    duplicates: u64,
    spilled_runs: usize,
    spilled_bytes: u64,
}

impl Merged {
    /// Merges the sorters' runs: each one's spilled files and its held batches. The rows
    /// to skip are given by [`Merged::skip`] before the first batch is taken.
    pub fn new(sorters: Vec<RunSorter>) -> Result<Merged, SortError> {
        let mut inputs = Vec::new();
        let mut duplicates = 0;
        let mut spilled_runs = 0;
        let mut spilled_bytes = 0;
        for mut sorter in sorters {
            sorter.finish()?;
            let memory = std::mem::take(&mut sorter.sorted);
            duplicates += sorter.duplicates;
            spilled_runs += sorter.runs.len();
            spilled_bytes += sorter.spilled_bytes;
            for file in sorter.runs {
                inputs.push(RunInput::File(Box::new(StreamReader::try_new_buffered(
                    file, None,
                )?)));
            }
            inputs.push(RunInput::Memory(memory.into_iter()));
        }
        let mut merged = Merged {
            displaced: Vec::new(),
            cursors: Vec::new(),
            heap: Vec::new(),
            pool: Vec::new(),
            last_event_id: None,
            duplicates,
            spilled_runs,
            spilled_bytes,
        };
        for mut input in inputs {
            if let Some(batch) = input.next_batch()? {
                let cursor = merged.cursor(input, batch)?;
                merged.cursors.push(cursor);
                merged.heap.push(merged.cursors.len() - 1);
            }
        }
        for i in (0..merged.heap.len() / 2).rev() {
            merged.sift_down(i);
        }
        Ok(merged)
    }

    fn cursor(&mut self, input: RunInput, batch: RecordBatch) -> Result<Cursor, SortError> {
        let keys = Keys::of(&batch)?;
        let rows = batch.num_rows();
        self.pool.push(batch);
        Ok(Cursor {
            input,
            keys,
            slot: self.pool.len() - 1,
            row: 0,
            rows,
        })
    }

    /// Skips the rows whose read order is in `displaced` (sorted) wherever they come.
    pub fn skip(&mut self, displaced: Vec<u64>) {
        self.displaced = displaced;
    }

    /// Copies of events dropped so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Runs that were spilled to temporary files.
    pub fn spilled_runs(&self) -> usize {
        self.spilled_runs
    }

    /// Bytes of the runs spilled to temporary files.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// The next batch of up to about `max_bytes` (at least one row), `None` at the end.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Option<RecordBatch>, SortError> {
        let mut picked: Vec<(usize, usize)> = Vec::new();
        let mut bytes = 0;
        while bytes < max_bytes {
            let Some(&best) = self.heap.first() else {
                break;
            };
            let c = &mut self.cursors[best];
            let id = c.keys.event_id.value(c.row);
            let displaced = !self.displaced.is_empty()
                && self
                    .displaced
                    .binary_search(&c.keys.order.value(c.row))
                    .is_ok();
            if displaced || self.last_event_id.as_deref() == Some(id) {
                self.duplicates += 1;
            } else {
                match &mut self.last_event_id {
                    Some(last) => {
                        last.clear();
                        last.push_str(id);
                    }
                    None => self.last_event_id = Some(id.to_string()),
                }
                picked.push((c.slot, c.row));
                bytes += row_bytes(&self.pool[c.slot], c.row);
            }
            c.row += 1;
            if c.row == c.rows {
                self.advance(best)?;
            } else {
                self.sift_down(0);
            }
        }
        if picked.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&RecordBatch> = self.pool.iter().collect();
        let out = interleave_record_batch(&refs, &picked)?;
        self.release_pool();
        Ok(Some(out))
    }

    /// Whether cursor `a`'s current row comes before cursor `b`'s.
    fn before(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.cursors[a], &self.cursors[b]);
        cmp_rows(&a.keys, a.row, &b.keys, b.row) == Ordering::Less
    }

    /// Restores the heap below position `i` after its cursor moved on.
    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut first = i;
            if l < self.heap.len() && self.before(self.heap[l], self.heap[first]) {
                first = l;
            }
            if r < self.heap.len() && self.before(self.heap[r], self.heap[first]) {
                first = r;
            }
            if first == i {
                return;
            }
            self.heap.swap(i, first);
            i = first;
        }
    }

    /// Moves cursor `i`, the heap's top, to its run's next batch, or takes it off the
    /// heap at the run's end.
    fn advance(&mut self, i: usize) -> Result<(), SortError> {
        match self.cursors[i].input.next_batch()? {
            Some(batch) => {
                self.cursors[i].keys = Keys::of(&batch)?;
                self.cursors[i].rows = batch.num_rows();
                self.cursors[i].row = 0;
                self.pool.push(batch);
                self.cursors[i].slot = self.pool.len() - 1;
            }
            None => {
                // The run's file and last batch are freed now, not when the merge ends.
                let c = &mut self.cursors[i];
                c.input = RunInput::Memory(Vec::new().into_iter());
                c.keys = Keys::empty();
                self.heap.swap_remove(0);
            }
        }
        self.sift_down(0);
        Ok(())
    }

    /// Keeps only the batches that cursors with rows left still read from.
    fn release_pool(&mut self) {
        let mut kept = Vec::with_capacity(self.heap.len());
        for &i in &self.heap {
            let c = &mut self.cursors[i];
            kept.push(self.pool[c.slot].clone());
            c.slot = kept.len() - 1;
        }
        self.pool = kept;
    }
}

/// Approximate bytes of one row: its texts plus fixed-width fields.
fn row_bytes(batch: &RecordBatch, row: usize) -> usize {
    let mut n = 64;
    for column in batch.columns() {
        if let Some(s) = column.as_string_opt::<i32>() {
            if s.is_valid(row) {
                n += s.value_length(row).unsigned_abs() as usize;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::slim::read_schema;
    use arrow::array::{ArrayRef, BooleanArray, Int64Array, UInt64Array};
    use std::sync::Arc;

    fn batch(rows: &[(i64, &str, &str)], first_order: u64) -> RecordBatch {
        let n = rows.len();
        let text = |f: &dyn Fn(&(i64, &str, &str)) -> String| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let columns: Vec<ArrayRef> = vec![
            text(&|r| r.2.to_string()),
            text(&|_| "INSERT".to_string()),
            text(&|_| "t".to_string()),
            text(&|r| r.1.to_string()),
            Arc::new(
                TimestampMillisecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(Int64Array::from(vec![None::<i64>; n])),
            Arc::new(BooleanArray::from(vec![false; n])),
            text(&|_| "{}".to_string()),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            text(&|r| format!("{{\"id\":\"{}\"}}", r.2)),
            Arc::new(UInt64Array::from(
                (0..n as u64).map(|i| first_order + i).collect::<Vec<_>>(),
            )),
        ];
        crate::compact::slim::slim(&RecordBatch::try_new(read_schema(), columns).unwrap()).unwrap()
    }

    fn merged_ids(
        budget: usize,
        batches: &[RecordBatch],
        max_bytes: usize,
    ) -> (Vec<String>, u64, usize) {
        let mut a = RunSorter::new(budget);
        let mut b = RunSorter::new(budget);
        for (i, x) in batches.iter().enumerate() {
            if i % 2 == 0 {
                a.push(x.clone()).unwrap()
            } else {
                b.push(x.clone()).unwrap()
            }
        }
        let mut m = Merged::new(vec![a, b]).unwrap();
        let mut ids = Vec::new();
        while let Some(out) = m.next_batch(max_bytes).unwrap() {
            let col = out.column(EVENT_ID).as_string::<i32>();
            ids.extend(col.iter().map(|v| v.unwrap().to_string()));
        }
        (ids, m.duplicates(), m.spilled_runs())
    }

    #[test]
    fn memory_and_spilled_runs_give_the_same_order_without_duplicates() {
        let mut rows = Vec::new();
        for i in 0..600i64 {
            // Times repeat, sequence numbers cross a digit boundary, some events twice.
            rows.push((i / 7, (1000 - i).to_string(), format!("e{i:04}")));
            if i % 11 == 0 {
                rows.push((i / 7, (1000 - i).to_string(), format!("e{i:04}")));
            }
        }
        rows.reverse();
        let batches: Vec<RecordBatch> = rows
            .chunks(37)
            .enumerate()
            .map(|(k, c)| {
                let c: Vec<(i64, &str, &str)> = c
                    .iter()
                    .map(|(t, s, e)| (*t, s.as_str(), e.as_str()))
                    .collect();
                batch(&c, (k as u64) << 32)
            })
            .collect();
        let mut want = rows.clone();
        want.sort_by_key(|a| (a.0, a.1.parse::<u64>().unwrap()));
        want.dedup_by(|a, b| a.2 == b.2);
        let want: Vec<String> = want.into_iter().map(|r| r.2).collect();
        let (mem, mem_dups, mem_runs) = merged_ids(usize::MAX, &batches, 1 << 20);
        let (disk, disk_dups, disk_runs) = merged_ids(20_000, &batches, 300);
        assert_eq!(mem_runs, 0);
        assert!(disk_runs > 4, "{disk_runs}");
        assert_eq!(mem, want);
        assert_eq!(disk, want);
        assert_eq!(mem_dups, (rows.len() - want.len()) as u64);
        assert_eq!(disk_dups, mem_dups);
    }
}
