//! Copies: changes sorted in stream order with one copy of each event kept wherever its
//! copies sort. Kinesis Data Streams can deliver one DynamoDB change twice, with two
//! sequence numbers and maybe two times, other changes sorting between them; the copy
//! kept is the one the manifest's [`RowDigest`] keeps (the earliest in stream order,
//! then the lowest SHA-256 of the record), the rule compaction follows too.

use std::cmp::Ordering;
use std::io::{Read, Write};

use crate::archive::manifest::{DigestRow, RowDigest};
use crate::archive::order::{
    cmp_stream_order, read_u64, Change, OrderError, RunItem, Sorted, Sorter,
};
use crate::archive::reader::Row;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::order::tests::c;

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
}
