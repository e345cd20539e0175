//! Runs: restore's changes as compact binary sort entries, sorted within a memory budget
//! (spilled to temporary files past it) and merged, so that each item's history comes
//! out together in stream order.
//!
//! An entry is one byte string whose byte order is the order restore needs:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | FNV-1a hash of the item's canonical key, big-endian (groups an item's changes; any order of items would do) |
//! | k | the canonical key text ([`crate::model::item::canonical_key`]; JSON text never holds a 0 byte) |
//! | 1 | 0, the end of the key |
//! | 8 | `approximate_creation_time` in ms, sign bit flipped, big-endian |
//! | 2 + n | the sequence number without leading zeros: its length, big-endian, then its digits ([`crate::model::order::cmp_sequence`]'s order) |
//! | e + 1 | the event ID, 0 and 1 escaped as 1 1 and 1 2, then 0 |
//! | 8 | the row's origin ([`crate::archive::copies::origin`]), big-endian |
//! | 1 | 1 for a REMOVE, else 0 |
//!
//! So entries sort by item, then time, then sequence number numerically, then event ID,
//! then origin: [`crate::archive::order::cmp_stream_order`] within each item. Memory
//! per change held is the entry (about 80 bytes plus the key) and 16 bytes of index.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

use crate::archive::order::OrderError;

/// Bytes of index per entry held in memory.
const INDEX_BYTES: usize = 16;

/// Why a change could not be added to a [`RunBuilder`].
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The change cannot be encoded; the text says why.
    #[error("{0}")]
    Change(String),
    /// A sorted run could not be spilled.
    #[error(transparent)]
    Spill(#[from] OrderError),
}

/// The FNV-1a hash of a text.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Appends the entry of one change to `out`. `key` is the item's canonical key text;
/// a sequence number of more than 65,535 digits is an error (the text).
pub fn encode(
    out: &mut Vec<u8>,
    key: &str,
    time_ms: i64,
    sequence_number: &str,
    event_id: &str,
    origin: u64,
    remove: bool,
) -> Result<(), String> {
    let seq = sequence_number.trim_start_matches('0');
    let seq_len =
        u16::try_from(seq.len()).map_err(|_| format!("sequence number of {} digits", seq.len()))?;
    out.extend_from_slice(&fnv1a(key.as_bytes()).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.push(0);
    out.extend_from_slice(&((time_ms as u64) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(&seq_len.to_be_bytes());
    out.extend_from_slice(seq.as_bytes());
    for b in event_id.bytes() {
        match b {
            0 => out.extend_from_slice(&[1, 1]),
            1 => out.extend_from_slice(&[1, 2]),
            b => out.push(b),
        }
    }
    out.push(0);
    out.extend_from_slice(&origin.to_be_bytes());
    out.push(u8::from(remove));
    Ok(())
}

/// The parts of an entry restore reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Hash, key and its end: equal for the changes of one item.
    pub group: &'a [u8],
    /// Time, sequence number and event ID: equal for copies archived twice.
    pub change: &'a [u8],
    /// The escaped event ID with its end.
    pub event_id: &'a [u8],
    /// Where the row was read.
    pub origin: u64,
    /// A REMOVE.
    pub remove: bool,
}

/// Splits an entry written by [`encode`]; `None` if it is not one.
pub fn parts(entry: &[u8]) -> Option<Parts<'_>> {
    let n = entry.len();
    if n < 8 + 1 + 8 + 2 + 1 + 9 {
        return None;
    }
    let key_end = 8 + entry[8..].iter().position(|b| *b == 0)? + 1;
    let seq_at = key_end + 8;
    let seq_len = usize::from(u16::from_be_bytes([
        *entry.get(seq_at)?,
        *entry.get(seq_at + 1)?,
    ]));
    let id_at = seq_at + 2 + seq_len;
    let tail = n - 9;
    if id_at >= tail {
        return None;
    }
    let mut origin = [0u8; 8];
    origin.copy_from_slice(&entry[tail..n - 1]);
    Some(Parts {
        group: &entry[..key_end],
        change: &entry[key_end..tail],
        event_id: &entry[id_at..tail],
        origin: u64::from_be_bytes(origin),
        remove: entry[n - 1] == 1,
    })
}

/// The canonical key text of an entry's group.
pub fn group_key(group: &[u8]) -> &[u8] {
    &group[8..group.len().saturating_sub(1)]
}

/// One entry's place in a [`RunBuilder`]'s arena: its hash (the first 8 bytes, to
/// compare most pairs without reading the arena), offset and length.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    hash: u64,
    at: usize,
    len: u32,
}

/// Entries held in memory up to a budget, sorted and spilled as runs past it.
#[derive(Debug, Default)]
pub struct RunBuilder {
    budget: usize,
    arena: Vec<u8>,
    slots: Vec<Slot>,
    runs: Vec<File>,
}

impl RunBuilder {
    /// A builder holding about `budget` bytes of entries and index.
    pub fn new(budget: usize) -> Self {
        RunBuilder {
            budget: budget.max(1),
            ..RunBuilder::default()
        }
    }

    /// Adds the entry of one change ([`encode`]'s arguments), spilling a sorted run when
    /// the budget is passed.
    pub fn push(
        &mut self,
        key: &str,
        time_ms: i64,
        sequence_number: &str,
        event_id: &str,
        origin: u64,
        remove: bool,
    ) -> Result<(), EntryError> {
        let at = self.arena.len();
        if let Err(e) = encode(
            &mut self.arena,
            key,
            time_ms,
            sequence_number,
            event_id,
            origin,
            remove,
        ) {
            self.arena.truncate(at);
            return Err(EntryError::Change(e));
        }
        let len = self.arena.len() - at;
        let mut hash = [0u8; 8];
        hash.copy_from_slice(&self.arena[at..at + 8]);
        self.slots.push(Slot {
            hash: u64::from_be_bytes(hash),
            at,
            len: len as u32,
        });
        if self.held_bytes() > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Bytes held in memory.
    fn held_bytes(&self) -> usize {
        self.arena.len() + self.slots.len() * INDEX_BYTES
    }

    /// Runs spilled so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn sort(&mut self) {
        let arena = &self.arena;
        let bytes = |s: &Slot| &arena[s.at..s.at + s.len as usize];
        self.slots
            .sort_unstable_by(|a, b| a.hash.cmp(&b.hash).then_with(|| bytes(a).cmp(bytes(b))));
    }

    fn spill(&mut self) -> Result<(), OrderError> {
        self.sort();
        let mut out = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for s in &self.slots {
            out.write_all(&s.len.to_le_bytes())?;
            out.write_all(&self.arena[s.at..s.at + s.len as usize])?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.runs.push(file);
        self.arena.clear();
        self.slots.clear();
        tracing::debug!(runs = self.runs.len(), "restore: sorted run spilled");
        Ok(())
    }

    /// Sorts what is held: the sources of a [`Merge`], the one in memory first.
    pub fn finish(mut self) -> Vec<Source> {
        self.sort();
        let mut out = vec![Source::Memory {
            arena: std::mem::take(&mut self.arena),
            slots: std::mem::take(&mut self.slots),
            next: 0,
        }];
        out.extend(self.runs.into_iter().map(|f| Source::File {
            reader: BufReader::with_capacity(1 << 16, f),
            head: Vec::new(),
            live: false,
        }));
        out
    }
}

/// One sorted run: in memory, or spilled.
#[derive(Debug)]
pub enum Source {
    /// Sorted in memory.
    Memory {
        /// The entries.
        arena: Vec<u8>,
        /// Their places, sorted.
        slots: Vec<Slot>,
        /// The head.
        next: usize,
    },
    /// Spilled: length-prefixed entries.
    File {
        /// The run file.
        reader: BufReader<File>,
        /// The head entry.
        head: Vec<u8>,
        /// Whether `head` holds an entry.
        live: bool,
    },
}

impl Source {
    fn head(&self) -> Option<&[u8]> {
        match self {
            Source::Memory { arena, slots, next } => slots
                .get(*next)
                .map(|s| &arena[s.at..s.at + s.len as usize]),
            Source::File { head, live, .. } => live.then_some(head.as_slice()),
        }
    }

    fn advance(&mut self) -> Result<(), OrderError> {
        match self {
            Source::Memory { next, .. } => *next += 1,
            Source::File { reader, head, live } => {
                let mut len = [0u8; 4];
                match reader.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        *live = false;
                        head.clear();
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
                head.resize(u32::from_le_bytes(len) as usize, 0);
                reader.read_exact(head)?;
                *live = true;
            }
        }
        Ok(())
    }
}

/// Sorted sources merged into one order, through a binary heap of source numbers.
#[derive(Debug)]
pub struct Merge {
    sources: Vec<Source>,
    heap: Vec<usize>,
}

impl Merge {
    /// Merges `sources`.
    pub fn new(mut sources: Vec<Source>) -> Result<Self, OrderError> {
        for s in &mut sources {
            if let Source::File { .. } = s {
                s.advance()?;
            }
        }
        let heap = (0..sources.len())
            .filter(|i| sources[*i].head().is_some())
            .collect();
        let mut m = Merge { sources, heap };
        for i in (0..m.heap.len() / 2).rev() {
            m.sift_down(i);
        }
        Ok(m)
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (self.sources[a].head(), self.sources[b].head());
        match x.cmp(&y) {
            Ordering::Equal => a < b,
            o => o == Ordering::Less,
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.less(self.heap[l], self.heap[m]) {
                m = l;
            }
            if r < n && self.less(self.heap[r], self.heap[m]) {
                m = r;
            }
            if m == i {
                return;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }

    /// The least entry, if any.
    pub fn peek(&self) -> Option<&[u8]> {
        self.heap.first().and_then(|s| self.sources[*s].head())
    }

    /// Moves past the least entry.
    pub fn advance(&mut self) -> Result<(), OrderError> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        self.sources[top].advance()?;
        if self.sources[top].head().is_none() {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, time: i64, seq: &str, id: &str, origin: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, key, time, seq, id, origin, false).unwrap();
        v
    }

    #[test]
    fn entries_sort_in_stream_order_within_an_item() {
        let k = r#"{"pk":{"S":"a"}}"#;
        let ordered = [
            entry(k, -5, "9", "b", 0),
            entry(k, 1, "9", "b", 0),
            entry(k, 1, "010", "a", 0),
            entry(k, 1, "10", "a", 1),
            entry(k, 1, "10", "a\u{0}", 0),
            entry(k, 1, "10", "a\u{1}", 0),
            entry(k, 1, "10", "ab", 0),
            entry(k, 1, "11", "", 0),
            entry(k, 2, "1", "z", 0),
        ];
        for w in ordered.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
        let p = parts(&ordered[4]).unwrap();
        assert_eq!(group_key(p.group), k.as_bytes());
        assert_eq!(p.event_id, b"a\x01\x01\x00");
        assert_eq!(p.origin, 0);
        assert!(!p.remove);
        assert_eq!(
            parts(&ordered[2]).unwrap().change,
            parts(&ordered[3]).unwrap().change
        );
        assert!(parts(b"short").is_none());
    }

    #[test]
    fn spilled_and_in_memory_runs_merge_alike() {
        let mut want = Vec::new();
        let mut builders = [RunBuilder::new(usize::MAX), RunBuilder::new(700)];
        for i in 0..500u64 {
            let key = format!(r#"{{"pk":{{"N":"{}"}}}}"#, i % 13);
            let (t, seq, id) = (
                (i * 7919 % 101) as i64,
                (i % 17).to_string(),
                format!("e{i}"),
            );
            want.push(entry(&key, t, &seq, &id, i));
            for b in &mut builders {
                b.push(&key, t, &seq, &id, i, false).unwrap();
            }
        }
        want.sort();
        assert_eq!(builders[0].spilled_runs(), 0);
        assert!(builders[1].spilled_runs() > 10);
        for b in builders {
            let mut m = Merge::new(b.finish()).unwrap();
            let mut got = Vec::new();
            while let Some(e) = m.peek() {
                got.push(e.to_vec());
                m.advance().unwrap();
            }
            assert_eq!(got, want);
        }
    }
}
