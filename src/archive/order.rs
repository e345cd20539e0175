//! Order: the one external sorter, [`Sorter`], over any [`RunItem`] — an item that
//! compares by a key, names itself by a text (copies share it) and spills as
//! length-prefixed texts. Two kinds of item use it: [`Change`]s in stream order —
//! optionally grouped first, then `approximate_creation_time`, then sequence number
//! compared numerically, then `event_id` — for replay, restore and verify; and bare
//! texts in byte order, for the event IDs of a manifest's digest
//! ([`crate::archive::manifest::EventIds`]).
//!
//! Items are held in memory up to a byte budget; past it each sorted run is spilled to
//! an anonymous temporary file and the runs are merged, so memory stays bounded
//! whatever the input holds. Replay sorts one day at a time (days are disjoint in
//! time); restore groups by item key, so each item's history comes together. Two
//! copies of one event (a retried or bisected batch archived twice) carry the same
//! group, time and sequence number, so they meet after sorting and the later one is
//! dropped by its `event_id`.
//!
//! Copies need not meet, though: Kinesis Data Streams can deliver one DynamoDB change
//! twice, with two sequence numbers and maybe two times, other changes sorting between
//! them. [`FirstCopies`] sorts changes and keeps one copy of each event wherever its
//! copies sort: the one the manifest's [`RowDigest`] keeps (the earliest in stream
//! order, then the lowest SHA-256 of the record), the rule compaction follows too.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

use crate::archive::manifest::{DigestRow, RowDigest};
use crate::archive::reader::Row;
use crate::model::order::cmp_sequence;

/// A temporary run file could not be written or read back.
#[derive(Debug, thiserror::Error)]
#[error("temporary sort file: {0}")]
pub struct OrderError(#[from] pub std::io::Error);

/// An item the [`Sorter`] sorts: its order, the text that names it, its size in memory
/// and its form in a run file.
pub trait RunItem: Sized {
    /// Approximate bytes held in memory.
    fn approx_bytes(&self) -> usize;
    /// The sort order: the key the items are sorted by.
    fn cmp_key(&self, other: &Self) -> Ordering;
    /// The text that names the item: of neighbours in order with the same identity, the
    /// later is a copy and is dropped.
    fn identity(&self) -> &str;
    /// Writes the item to a run file.
    fn write_run(&self, out: &mut impl Write) -> std::io::Result<()>;
    /// Reads an item written by [`RunItem::write_run`]; `None` at the end of the run.
    fn read_run(input: &mut impl Read) -> std::io::Result<Option<Self>>;
}

/// One change: its ordering fields and its record text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Sorted on before anything else (empty for plain stream order): restore puts the
    /// item's canonical key here.
    pub group: String,
    /// `approximate_creation_time`, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Sequence number, decimal digits.
    pub sequence_number: String,
    /// `event_id`.
    pub event_id: String,
    /// The record text exactly as archived.
    pub record: String,
}

/// Stream order within a group: group, time, then sequence number (numerically), then
/// event ID.
pub fn cmp_stream_order(a: &Change, b: &Change) -> Ordering {
    a.group
        .cmp(&b.group)
        .then_with(|| a.time_ms.cmp(&b.time_ms))
        .then_with(|| cmp_sequence(&a.sequence_number, &b.sequence_number))
        .then_with(|| a.event_id.cmp(&b.event_id))
}

/// Changes sort in [`cmp_stream_order`], and copies of one event share its `event_id`.
impl RunItem for Change {
    fn approx_bytes(&self) -> usize {
        self.group.len()
            + self.sequence_number.len()
            + self.event_id.len()
            + self.record.len()
            + 104
    }

    fn cmp_key(&self, other: &Self) -> Ordering {
        cmp_stream_order(self, other)
    }

    fn identity(&self) -> &str {
        &self.event_id
    }

    fn write_run(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.time_ms.to_le_bytes())?;
        write_text(out, &self.group)?;
        write_text(out, &self.sequence_number)?;
        write_text(out, &self.event_id)?;
        write_text(out, &self.record)
    }

    fn read_run(input: &mut impl Read) -> std::io::Result<Option<Self>> {
        let Some(time) = read_u64(input)? else {
            return Ok(None);
        };
        Ok(Some(Change {
            time_ms: i64::from_le_bytes(time),
            group: read_text(input)?,
            sequence_number: read_text(input)?,
            event_id: read_text(input)?,
            record: read_text(input)?,
        }))
    }
}

/// A bare text (an event ID) sorts in byte order, and repeats of it are copies.
impl RunItem for String {
    fn approx_bytes(&self) -> usize {
        self.len() + 40
    }

    fn cmp_key(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }

    fn identity(&self) -> &str {
        self
    }

    fn write_run(&self, out: &mut impl Write) -> std::io::Result<()> {
        write_text(out, self)
    }

    fn read_run(input: &mut impl Read) -> std::io::Result<Option<Self>> {
        read_next_text(input)
    }
}

/// Sorts items within a memory budget, dropping copies.
#[derive(Debug)]
pub struct Sorter<T> {
    budget: usize,
    held: Vec<T>,
    held_bytes: usize,
    runs: Vec<File>,
    spilled_bytes: u64,
    duplicates: usize,
    keep_copies: bool,
}

impl<T: RunItem> Sorter<T> {
    /// A sorter holding at most about `budget` bytes of items in memory.
    pub fn new(budget: usize) -> Self {
        Sorter {
            budget,
            held: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
            spilled_bytes: 0,
            duplicates: 0,
            keep_copies: false,
        }
    }

    /// A sorter like [`Sorter::new`] that keeps copies: every item pushed comes out, in
    /// order, for a reader that chooses among copies itself.
    pub fn keeping_copies(budget: usize) -> Self {
        Sorter {
            keep_copies: true,
            ..Sorter::new(budget)
        }
    }

    /// Adds an item, spilling a sorted run to disk when the budget is passed.
    pub fn push(&mut self, item: T) -> Result<(), OrderError> {
        self.held_bytes += item.approx_bytes();
        self.held.push(item);
        if self.held_bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Bytes of the runs spilled to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    fn sort_held(&mut self) -> Vec<T> {
        let mut held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        held.sort_unstable_by(T::cmp_key);
        if self.keep_copies {
            return held;
        }
        let before = held.len();
        held.dedup_by(|later, earlier| later.identity() == earlier.identity());
        self.duplicates += before - held.len();
        held
    }

    fn spill(&mut self) -> Result<(), OrderError> {
        let held = self.sort_held();
        let mut out = BufWriter::new(tempfile::tempfile()?);
        for item in &held {
            item.write_run(&mut out)?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        self.spilled_bytes += file.stream_position()?;
        file.rewind()?;
        self.runs.push(file);
        tracing::debug!(
            items = held.len(),
            runs = self.runs.len(),
            "sorted run spilled"
        );
        Ok(())
    }

    /// The items in order, without copies.
    pub fn into_sorted(mut self) -> Result<Sorted<T>, OrderError> {
        let input = if self.runs.is_empty() {
            RunInput::Memory(self.sort_held().into_iter())
        } else {
            if !self.held.is_empty() {
                self.spill()?;
            }
            let mut readers: Vec<BufReader<File>> =
                self.runs.drain(..).map(BufReader::new).collect();
            let mut heads = BinaryHeap::with_capacity(readers.len());
            for (run, reader) in readers.iter_mut().enumerate() {
                if let Some(item) = T::read_run(reader)? {
                    heads.push(Reverse(Head { item, run }));
                }
            }
            RunInput::Merge { readers, heads }
        };
        Ok(Sorted {
            input,
            last_identity: None,
            duplicates: self.duplicates,
            keep_copies: self.keep_copies,
        })
    }
}

/// The next item of one spilled run, while merging.
#[derive(Debug)]
struct Head<T> {
    item: T,
    run: usize,
}

/// Heads order by their items, then by run: of equal items, the earlier run's comes
/// first.
impl<T: RunItem> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.item
            .cmp_key(&other.item)
            .then_with(|| self.run.cmp(&other.run))
    }
}

impl<T: RunItem> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: RunItem> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: RunItem> Eq for Head<T> {}

/// Where sorted items come from: memory, or the spilled runs merged.
#[derive(Debug)]
enum RunInput<T> {
    Memory(std::vec::IntoIter<T>),
    Merge {
        readers: Vec<BufReader<File>>,
        heads: BinaryHeap<Reverse<Head<T>>>,
    },
}

/// Items in order, copies dropped.
#[derive(Debug)]
pub struct Sorted<T> {
    input: RunInput<T>,
    last_identity: Option<String>,
    duplicates: usize,
    keep_copies: bool,
}

impl<T: RunItem> Sorted<T> {
    /// Copies dropped so far.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    fn next_any(&mut self) -> Result<Option<T>, OrderError> {
        match &mut self.input {
            RunInput::Memory(it) => Ok(it.next()),
            RunInput::Merge { readers, heads } => {
                let Some(Reverse(Head { item, run })) = heads.pop() else {
                    return Ok(None);
                };
                if let Some(next) = T::read_run(&mut readers[run])? {
                    heads.push(Reverse(Head { item: next, run }));
                }
                Ok(Some(item))
            }
        }
    }
}

impl<T: RunItem> Iterator for Sorted<T> {
    type Item = Result<T, OrderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_any() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(item)) if self.keep_copies => return Some(Ok(item)),
                Ok(Some(item)) => {
                    let identity = item.identity();
                    match &mut self.last_identity {
                        Some(last) if last == identity => {
                            self.duplicates += 1;
                            continue;
                        }
                        Some(last) => {
                            last.clear();
                            last.push_str(identity);
                        }
                        None => self.last_identity = Some(identity.to_string()),
                    }
                    return Some(Ok(item));
                }
            }
        }
    }
}

/// A change and where it was read (its origin, unique among the changes sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placed {
    change: Change,
    origin: u64,
}

/// Placed changes sort in [`cmp_stream_order`], then by origin.
impl RunItem for Placed {
    fn approx_bytes(&self) -> usize {
        self.change.approx_bytes() + 8
    }

    fn cmp_key(&self, other: &Self) -> Ordering {
        cmp_stream_order(&self.change, &other.change).then_with(|| self.origin.cmp(&other.origin))
    }

    fn identity(&self) -> &str {
        &self.change.event_id
    }

    fn write_run(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.origin.to_le_bytes())?;
        self.change.write_run(out)
    }

    fn read_run(input: &mut impl Read) -> std::io::Result<Option<Self>> {
        let Some(origin) = read_u64(input)? else {
            return Ok(None);
        };
        let change = Change::read_run(input)?.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "truncated run file")
        })?;
        Ok(Some(Placed {
            change,
            origin: u64::from_le_bytes(origin),
        }))
    }
}

/// The origin of row number `row` of file number `file` among the files read: the file's
/// number shifted left 32 bits, or'ed with the row's.
pub fn origin(file: usize, row: usize) -> u64 {
    ((file as u64) << 32) | row as u64
}

/// Sorts changes in stream order within a memory budget and keeps one copy of each
/// event, wherever its copies sort.
///
/// Every row that may hold a copy is noted ([`FirstCopies::note`]) with its origin, a
/// number unique among the rows ([`origin`]); the rows selected are also pushed
/// ([`FirstCopies::push`]) with the same origin. The notes go into a [`RowDigest`],
/// which decides, per event ID, the copy kept: the lowest `approximate_creation_time`,
/// then the lowest sequence number (numerically), then the lowest SHA-256 of the record
/// text. The sorted changes then come out without the copies that are another change
/// than the one kept (the digest's `displaced` origins) and without repeats of the one
/// kept. A copy is dropped even when the copy kept was noted but not selected: a copy
/// is never a change of its own.
///
/// Memory: about `budget` bytes (7/8 for the changes, 1/8, at least 1 MiB, for the
/// notes; past them both spill sorted runs to temporary files), plus 8 bytes for each
/// displaced copy.
#[derive(Debug)]
pub struct FirstCopies {
    sorter: Sorter<Placed>,
    digest: RowDigest,
}

impl FirstCopies {
    /// Sorts within about `budget` bytes of memory.
    pub fn new(budget: usize) -> Self {
        FirstCopies {
            sorter: Sorter::keeping_copies(budget - budget / 8),
            digest: RowDigest::new(budget / 8),
        }
    }

    /// Notes a row that may be a copy of another (selected or not), as archived.
    pub fn note(&mut self, row: &Row, origin: u64) -> Result<(), OrderError> {
        self.digest.push(DigestRow::new(
            &row.event_id,
            row.time_ms,
            &row.sequence_number,
            &row.record,
            origin,
        ))
    }

    /// Adds a selected change, noted with the same origin.
    pub fn push(&mut self, change: Change, origin: u64) -> Result<(), OrderError> {
        self.sorter.push(Placed { change, origin })
    }

    /// Runs spilled to temporary files so far, changes and notes.
    pub fn spilled_runs(&self) -> usize {
        self.sorter.spilled_runs() + self.digest.spilled_runs()
    }

    /// The changes in order, one copy of each event.
    pub fn into_sorted(self) -> Result<FirstSorted, OrderError> {
        let displaced = self.digest.finish()?.displaced;
        Ok(FirstSorted {
            sorted: self.sorter.into_sorted()?,
            displaced,
            last_event_id: None,
            duplicates: 0,
        })
    }
}

/// The changes of [`FirstCopies`] in order, one copy of each event.
#[derive(Debug)]
pub struct FirstSorted {
    sorted: Sorted<Placed>,
    displaced: Vec<u64>,
    last_event_id: Option<String>,
    duplicates: usize,
}

impl FirstSorted {
    /// Copies dropped so far.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }
}

impl Iterator for FirstSorted {
    type Item = Result<Change, OrderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let placed = match self.sorted.next()? {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            // Copies that are the same change as the one kept sort next to it.
            let id = &placed.change.event_id;
            if self.displaced.binary_search(&placed.origin).is_ok()
                || self.last_event_id.as_ref() == Some(id)
            {
                self.duplicates += 1;
                continue;
            }
            match &mut self.last_event_id {
                Some(last) => {
                    last.clear();
                    last.push_str(id);
                }
                None => self.last_event_id = Some(id.clone()),
            }
            return Some(Ok(placed.change));
        }
    }
}

/// Writes a length-prefixed text to a temporary run file.
pub(crate) fn write_text(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(&(s.len() as u64).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

fn read_u64(input: &mut impl Read) -> std::io::Result<Option<[u8; 8]>> {
    let mut buf = [0u8; 8];
    match input.read_exact(&mut buf) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a text written by [`write_text`]; `None` at the end of the input.
pub(crate) fn read_next_text(input: &mut impl Read) -> std::io::Result<Option<String>> {
    let Some(len) = read_u64(input)?.map(u64::from_le_bytes) else {
        return Ok(None);
    };
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    input.read_exact(&mut buf)?;
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

pub(crate) fn read_text(input: &mut impl Read) -> std::io::Result<String> {
    read_next_text(input)?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "truncated run file"))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn c(time_ms: i64, seq: &str, id: &str) -> Change {
        Change {
            group: String::new(),
            time_ms,
            sequence_number: seq.into(),
            event_id: id.into(),
            record: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert_eq!(cmp_sequence("9", "10"), Ordering::Less);
        assert_eq!(cmp_sequence("010", "9"), Ordering::Greater);
        let long_a = "4".repeat(56);
        let long_b = format!("{}5", "4".repeat(55));
        assert_eq!(cmp_sequence(&long_a, &long_b), Ordering::Less);
        assert_eq!(cmp_sequence("7", "7"), Ordering::Equal);
    }

    fn sorted(budget: usize, input: &[Change]) -> (Vec<String>, usize, usize) {
        let mut s = Sorter::new(budget);
        for x in input {
            s.push(x.clone()).unwrap();
        }
        let runs = s.spilled_runs();
        let mut out = s.into_sorted().unwrap();
        let ids = out
            .by_ref()
            .map(|r| r.unwrap().event_id)
            .collect::<Vec<_>>();
        (ids, out.duplicates(), runs)
    }

    #[test]
    fn in_memory_and_spilled_agree() {
        let mut input = Vec::new();
        for i in 0..500i64 {
            // Times repeat, sequence numbers grow past a digit boundary, some events twice.
            input.push(c(i / 7, &(1000 - i).to_string(), &format!("e{i}")));
            if i % 11 == 0 {
                input.push(c(i / 7, &(1000 - i).to_string(), &format!("e{i}")));
            }
        }
        input.reverse();
        let (mem, mem_dups, mem_runs) = sorted(usize::MAX, &input);
        let (disk, disk_dups, disk_runs) = sorted(2_000, &input);
        assert_eq!(mem_runs, 0);
        assert!(disk_runs > 5, "{disk_runs}");
        assert_eq!(mem, disk);
        assert_eq!(mem.len(), 500);
        assert_eq!(mem_dups, input.len() - 500);
        assert_eq!(disk_dups, mem_dups);
        let mut want = input.clone();
        want.sort_by(|a, b| {
            (a.time_ms, a.sequence_number.parse::<u64>().unwrap())
                .cmp(&(b.time_ms, b.sequence_number.parse::<u64>().unwrap()))
        });
        want.dedup_by(|a, b| a.event_id == b.event_id);
        let want: Vec<String> = want.into_iter().map(|x| x.event_id).collect();
        assert_eq!(mem, want);
    }

    #[test]
    fn groups_sort_first_and_spill_alike() {
        let mut input = Vec::new();
        for i in 0..300i64 {
            let mut x = c(1000 - i, &i.to_string(), &format!("e{i}"));
            x.group = format!("k{}", i % 7);
            input.push(x);
        }
        let mut want = input.clone();
        want.sort_by(|a, b| (&a.group, a.time_ms).cmp(&(&b.group, b.time_ms)));
        let want: Vec<String> = want.into_iter().map(|x| x.event_id).collect();
        for budget in [usize::MAX, 1_500] {
            let mut s = Sorter::new(budget);
            for x in &input {
                s.push(x.clone()).unwrap();
            }
            let got: Vec<String> = s
                .into_sorted()
                .unwrap()
                .map(|r| r.unwrap().event_id)
                .collect();
            assert_eq!(got, want, "budget {budget}");
        }
    }

    /// Changes through [`FirstCopies`], every one noted and those `selected` pushed, each
    /// with its index as origin: the event IDs out and the copies dropped.
    fn first_copies(
        budget: usize,
        input: &[Change],
        selected: impl Fn(&Change) -> bool,
    ) -> (Vec<String>, usize, usize) {
        let mut f = FirstCopies::new(budget);
        for (i, x) in input.iter().enumerate() {
            let origin = origin(0, i);
            let row = Row {
                event_id: x.event_id.clone(),
                time_ms: x.time_ms,
                sequence_number: x.sequence_number.clone(),
                record: x.record.clone(),
                ..Row::default()
            };
            f.note(&row, origin).unwrap();
            if selected(x) {
                f.push(x.clone(), origin).unwrap();
            }
        }
        let runs = f.spilled_runs();
        let mut out = f.into_sorted().unwrap();
        let got = out
            .by_ref()
            .map(|r| {
                let c = r.unwrap();
                format!("{}@{}", c.event_id, c.sequence_number)
            })
            .collect();
        (got, out.duplicates(), runs)
    }

    #[test]
    fn first_copies_are_kept_wherever_the_copies_sort() {
        // INSERT (A, seq 1), MODIFY (B, seq 2), then a Kinesis copy of A (seq 3, later).
        let mut input = vec![c(1_000, "1", "A"), c(2_000, "2", "B"), c(3_000, "3", "A")];
        // A copy of C whose sequence number is lower than the first copy's: the lower wins.
        input.push(c(4_000, "20", "C"));
        input.push(c(4_000, "9", "C"));
        // The same change archived twice: they meet.
        input.push(c(5_000, "30", "D"));
        input.push(c(5_000, "30", "D"));
        let want = ["A@1", "B@2", "C@9", "D@30"];
        for order in [false, true] {
            let mut input = input.clone();
            if order {
                input.reverse();
            }
            let (got, dups, _) = first_copies(usize::MAX, &input, |_| true);
            assert_eq!(got, want, "reversed: {order}");
            assert_eq!(dups, 3);
        }
        // The kept copy noted but not selected (before a range): its copy is not a change
        // of its own.
        let (got, dups, _) = first_copies(usize::MAX, &input, |x| x.time_ms >= 2_000);
        assert_eq!(got, ["B@2", "C@9", "D@30"]);
        assert_eq!(dups, 3);
    }

    #[test]
    fn first_copies_in_memory_and_spilled_agree() {
        let mut input = Vec::new();
        for i in 0..600i64 {
            input.push(c(i * 10, &(1_000 + i).to_string(), &format!("e{i}")));
            // Every seventh event again, later, with its own sequence number, many other
            // changes between the copies.
            if i % 7 == 0 {
                input.push(c(
                    i * 10 + 2_500,
                    &(5_000 + i).to_string(),
                    &format!("e{i}"),
                ));
            }
        }
        input.reverse();
        let (mem, mem_dups, mem_runs) = first_copies(usize::MAX, &input, |_| true);
        let (disk, disk_dups, disk_runs) = first_copies(3_000, &input, |_| true);
        assert_eq!(mem_runs, 0);
        assert!(disk_runs > 5, "{disk_runs}");
        assert_eq!(mem, disk);
        assert_eq!((mem_dups, disk_dups), (86, 86));
        let want: Vec<String> = (0..600).map(|i| format!("e{i}@{}", 1_000 + i)).collect();
        assert_eq!(mem, want);
    }

    #[test]
    fn texts_come_back_distinct_and_in_byte_order_in_memory_or_spilled() {
        let ids: Vec<String> = (0..2_000)
            .map(|i| format!("id-{}", (i * 7919) % 1_500))
            .collect();
        let mut want = ids.clone();
        want.sort();
        want.dedup();
        for budget in [usize::MAX, 3_000] {
            let mut s = Sorter::new(budget);
            for id in &ids {
                s.push(id.clone()).unwrap();
            }
            assert_eq!(s.spilled_runs() > 5, budget == 3_000);
            assert_eq!(s.spilled_bytes() > 0, budget == 3_000);
            let mut sorted = s.into_sorted().unwrap();
            let got: Vec<String> = sorted.by_ref().map(Result::unwrap).collect();
            assert_eq!(got, want, "budget {budget}");
            assert_eq!(sorted.duplicates(), ids.len() - want.len());
        }
    }
}
