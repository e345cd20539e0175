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
//! them. [`crate::archive::copies`] keeps one copy of each event wherever its copies
//! sort.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

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

/// Writes a length-prefixed text to a temporary run file.
pub(crate) fn write_text(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(&(s.len() as u64).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

pub(crate) fn read_u64(input: &mut impl Read) -> std::io::Result<Option<[u8; 8]>> {
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
pub(crate) mod tests {
    use super::*;

    /// A change of no group for the tests: its record names its event ID.
    pub(crate) fn c(time_ms: i64, seq: &str, id: &str) -> Change {
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
