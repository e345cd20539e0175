//! Order: changes in stream order — `approximate_creation_time`, then sequence number
//! compared numerically, then `event_id` — with duplicates dropped, optionally grouped
//! first (restore groups by item key, so each item's history comes together).
//!
//! Changes are held in memory up to a byte budget; past it each sorted run is spilled
//! to an anonymous temporary file and the runs are merged, so memory stays bounded
//! whatever the input holds. Replay sorts one day at a time (days are disjoint in
//! time). Two copies of one event (a retried or bisected batch archived twice) carry
//! the same group, time and sequence number, so they meet after sorting and the later
//! one is dropped by its `event_id`.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

use crate::model::order::cmp_sequence;

/// A temporary run file could not be written or read back.
#[derive(Debug, thiserror::Error)]
#[error("temporary sort file: {0}")]
pub struct OrderError(#[from] pub std::io::Error);

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

impl Change {
    /// Approximate bytes held in memory.
    pub fn approx_bytes(&self) -> usize {
        self.group.len()
            + self.sequence_number.len()
            + self.event_id.len()
            + self.record.len()
            + 104
    }
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

/// Sorts changes within a memory budget.
#[derive(Debug)]
pub struct Sorter {
    budget: usize,
    held: Vec<Change>,
    held_bytes: usize,
    runs: Vec<File>,
    duplicates: usize,
}

impl Sorter {
    /// A sorter holding at most about `budget` bytes of changes in memory.
    pub fn new(budget: usize) -> Self {
        Sorter {
            budget,
            held: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
            duplicates: 0,
        }
    }

    /// Adds a change, spilling a sorted run to disk when the budget is passed.
    pub fn push(&mut self, change: Change) -> Result<(), OrderError> {
        self.held_bytes += change.approx_bytes();
        self.held.push(change);
        if self.held_bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn sort_held(&mut self) -> Vec<Change> {
        let mut held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        held.sort_unstable_by(cmp_stream_order);
        let before = held.len();
        held.dedup_by(|later, earlier| later.event_id == earlier.event_id);
        self.duplicates += before - held.len();
        held
    }

    fn spill(&mut self) -> Result<(), OrderError> {
        let held = self.sort_held();
        let mut out = BufWriter::new(tempfile::tempfile()?);
        for c in &held {
            write_change(&mut out, c)?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.runs.push(file);
        tracing::debug!(
            records = held.len(),
            runs = self.runs.len(),
            "sorted run spilled"
        );
        Ok(())
    }

    /// The changes in stream order, without duplicates.
    pub fn into_sorted(mut self) -> Result<Sorted, OrderError> {
        let source = if self.runs.is_empty() {
            Source::Memory(self.sort_held().into_iter())
        } else {
            if !self.held.is_empty() {
                self.spill()?;
            }
            let mut readers: Vec<BufReader<File>> =
                self.runs.drain(..).map(BufReader::new).collect();
            let heads = readers
                .iter_mut()
                .map(read_change)
                .collect::<Result<Vec<_>, _>>()?;
            Source::Merge { readers, heads }
        };
        Ok(Sorted {
            source,
            last_event_id: None,
            duplicates: self.duplicates,
        })
    }
}

#[derive(Debug)]
enum Source {
    Memory(std::vec::IntoIter<Change>),
    Merge {
        readers: Vec<BufReader<File>>,
        heads: Vec<Option<Change>>,
    },
}

/// Changes in stream order, duplicates dropped.
#[derive(Debug)]
pub struct Sorted {
    source: Source,
    last_event_id: Option<String>,
    duplicates: usize,
}

impl Sorted {
    /// Duplicates dropped so far.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    fn next_any(&mut self) -> Result<Option<Change>, OrderError> {
        match &mut self.source {
            Source::Memory(it) => Ok(it.next()),
            Source::Merge { readers, heads } => {
                let mut best: Option<usize> = None;
                for (i, head) in heads.iter().enumerate() {
                    if let Some(h) = head {
                        let better = match best.and_then(|b| heads[b].as_ref()) {
                            Some(current) => cmp_stream_order(h, current) == Ordering::Less,
                            None => true,
                        };
                        if better {
                            best = Some(i);
                        }
                    }
                }
                let Some(i) = best else { return Ok(None) };
                let next = read_change(&mut readers[i])?;
                Ok(std::mem::replace(&mut heads[i], next))
            }
        }
    }
}

impl Iterator for Sorted {
    type Item = Result<Change, OrderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_any() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(c)) => {
                    if self.last_event_id.as_deref() == Some(c.event_id.as_str()) {
                        self.duplicates += 1;
                        continue;
                    }
                    self.last_event_id = Some(c.event_id.clone());
                    return Some(Ok(c));
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

fn write_change(out: &mut impl Write, c: &Change) -> std::io::Result<()> {
    out.write_all(&c.time_ms.to_le_bytes())?;
    write_text(out, &c.group)?;
    write_text(out, &c.sequence_number)?;
    write_text(out, &c.event_id)?;
    write_text(out, &c.record)
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

fn read_text(input: &mut impl Read) -> std::io::Result<String> {
    read_next_text(input)?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "truncated run file"))
}

fn read_change(input: &mut BufReader<File>) -> Result<Option<Change>, OrderError> {
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
}
