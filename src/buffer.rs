//! Buffer: changes wait in memory, grouped by partition, until a file's worth is ready.
//! A partition's pending records become a [`Batch`] when adding one more would pass the
//! file thresholds (bytes or records), when they grow older than the age threshold, or
//! when the whole buffer passes its memory bound. The decisions are the pure functions
//! [`would_overflow`], [`is_full`], [`is_expired`] and [`over_memory`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::ChangeRecord;
use crate::route::PartitionKey;

/// When pending records become a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Largest file, in approximate in-memory bytes of its records.
    pub max_file_bytes: usize,
    /// Most records in one file.
    pub max_file_records: usize,
    /// Oldest a pending record may get before its partition is written.
    pub max_file_age: Duration,
    /// Most bytes held across all partitions; past it the largest partition is written.
    pub max_buffer_bytes: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_file_bytes: 32 * 1024 * 1024,
            max_file_records: 100_000,
            max_file_age: Duration::from_secs(300),
            max_buffer_bytes: 96 * 1024 * 1024,
        }
    }
}

/// Would adding a record of `add_bytes` to a file holding `records` records of `bytes`
/// bytes pass a file threshold? An empty file always takes its first record, so a
/// single record larger than the byte threshold still gets a file of its own.
pub fn would_overflow(bytes: usize, records: usize, add_bytes: usize, t: &Thresholds) -> bool {
    records > 0 && (records + 1 > t.max_file_records || bytes + add_bytes > t.max_file_bytes)
}

/// Has a file reached a threshold, so that nothing more can be added?
pub fn is_full(bytes: usize, records: usize, t: &Thresholds) -> bool {
    records >= t.max_file_records || bytes >= t.max_file_bytes
}

/// Have a partition's pending records waited past the age threshold?
pub fn is_expired(age: Duration, t: &Thresholds) -> bool {
    age >= t.max_file_age
}

/// Does the whole buffer hold more than its memory bound?
pub fn over_memory(total_bytes: usize, t: &Thresholds) -> bool {
    total_bytes > t.max_buffer_bytes
}

/// The records of one future file: one partition, in arrival order.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The partition every record belongs to.
    pub key: PartitionKey,
    /// The records, in the order they arrived.
    pub records: Vec<ChangeRecord>,
    /// Approximate in-memory bytes of the records.
    pub bytes: usize,
}

#[derive(Debug)]
struct Pending {
    records: Vec<ChangeRecord>,
    bytes: usize,
    since: Instant,
}

/// Pending records per partition, bounded by [`Thresholds`].
#[derive(Debug)]
pub struct Buffer {
    thresholds: Thresholds,
    partitions: HashMap<PartitionKey, Pending>,
    total_bytes: usize,
}

impl Buffer {
    /// An empty buffer.
    pub fn new(thresholds: Thresholds) -> Self {
        Buffer {
            thresholds,
            partitions: HashMap::new(),
            total_bytes: 0,
        }
    }

    /// Bytes held across all partitions.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Records held across all partitions.
    pub fn len(&self) -> usize {
        self.partitions.values().map(|p| p.records.len()).sum()
    }

    /// Is nothing pending?
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Adds a record to its partition and returns the batches that became ready.
    pub fn push(&mut self, key: PartitionKey, record: ChangeRecord, now: Instant) -> Vec<Batch> {
        let mut ready = Vec::new();
        let add = record.approx_bytes();
        let t = self.thresholds;
        if let Some(p) = self.partitions.get(&key) {
            if would_overflow(p.bytes, p.records.len(), add, &t) {
                ready.extend(self.take(&key));
            }
        }
        let pending = self
            .partitions
            .entry(key.clone())
            .or_insert_with(|| Pending {
                records: Vec::new(),
                bytes: 0,
                since: now,
            });
        pending.records.push(record);
        pending.bytes += add;
        self.total_bytes += add;
        if is_full(pending.bytes, pending.records.len(), &t) {
            ready.extend(self.take(&key));
        }
        while over_memory(self.total_bytes, &t) {
            let Some(largest) = self
                .partitions
                .iter()
                .max_by(|a, b| a.1.bytes.cmp(&b.1.bytes).then_with(|| b.0.cmp(a.0)))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            ready.extend(self.take(&largest));
        }
        ready
    }

    /// Gives every pending record's JSON texts buffers of their own (see
    /// [`ChangeRecord::detach`]), so that the inputs they arrived in can be freed: memory
    /// then stays bounded by the thresholds across any number of inputs.
    pub fn detach(&mut self) {
        for p in self.partitions.values_mut() {
            p.records.iter_mut().for_each(ChangeRecord::detach);
        }
    }

    /// Takes the partitions whose oldest record has waited past the age threshold.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Batch> {
        let mut keys: Vec<PartitionKey> = self
            .partitions
            .iter()
            .filter(|(_, p)| is_expired(now.saturating_duration_since(p.since), &self.thresholds))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys.iter().filter_map(|k| self.take(k)).collect()
    }

    /// Takes everything, partitions in key order.
    pub fn drain(&mut self) -> Vec<Batch> {
        let mut keys: Vec<PartitionKey> = self.partitions.keys().cloned().collect();
        keys.sort();
        keys.iter().filter_map(|k| self.take(k)).collect()
    }

    fn take(&mut self, key: &PartitionKey) -> Option<Batch> {
        let p = self.partitions.remove(key)?;
        self.total_bytes -= p.bytes;
        Some(Batch {
            key: key.clone(),
            records: p.records,
            bytes: p.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn t(bytes: usize, records: usize) -> Thresholds {
        Thresholds {
            max_file_bytes: bytes,
            max_file_records: records,
            max_file_age: Duration::from_secs(10),
            max_buffer_bytes: usize::MAX,
        }
    }

    #[test]
    fn overflow_predicate() {
        let th = t(100, 3);
        assert!(!would_overflow(0, 0, 1000, &th), "first record always fits");
        assert!(!would_overflow(50, 1, 50, &th));
        assert!(would_overflow(50, 1, 51, &th));
        assert!(would_overflow(10, 3, 1, &th));
        assert!(!would_overflow(10, 2, 1, &th));
    }

    #[test]
    fn full_predicate() {
        let th = t(100, 3);
        assert!(!is_full(99, 2, &th));
        assert!(is_full(100, 1, &th));
        assert!(is_full(1, 3, &th));
    }

    fn record(i: usize, day: u32) -> (PartitionKey, ChangeRecord) {
        let rec = ChangeRecord {
            event_id: format!("e{i}"),
            event_name: crate::model::EventName::Insert,
            table_name: "tbl".into(),
            sequence_number: i.to_string(),
            approximate_creation_time_ms: 0,
            stream_view_type: None,
            size_bytes: None,
            ttl_delete: false,
            keys: "{}".into(),
            new_image: None,
            old_image: None,
            record: "x".repeat(100).into(),
            source: crate::model::SourceKind::DynamoDbStream,
            index: i,
        };
        let key = PartitionKey {
            table: "tbl".into(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 1, day).unwrap(),
        };
        (key, rec)
    }

    #[test]
    fn push_splits_on_records_and_keeps_order() {
        let mut b = Buffer::new(t(usize::MAX, 3));
        let now = Instant::now();
        let mut ready = Vec::new();
        for i in 0..7 {
            let (k, r) = record(i, 1);
            ready.extend(b.push(k, r, now));
        }
        ready.extend(b.drain());
        let sizes: Vec<usize> = ready.iter().map(|x| x.records.len()).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let order: Vec<usize> = ready
            .iter()
            .flat_map(|x| x.records.iter().map(|r| r.index))
            .collect();
        assert_eq!(order, (0..7).collect::<Vec<_>>());
        assert!(b.is_empty());
        assert_eq!(b.total_bytes(), 0);
    }

    #[test]
    fn memory_bound_writes_the_largest_partition() {
        let one = record(0, 1).1.approx_bytes();
        let mut b = Buffer::new(Thresholds {
            max_buffer_bytes: one * 3,
            ..t(usize::MAX, 100)
        });
        let now = Instant::now();
        let mut ready = Vec::new();
        for (i, day) in [(0, 1), (1, 1), (2, 2), (3, 3)] {
            let (k, r) = record(i, day);
            ready.extend(b.push(k, r, now));
            assert!(b.total_bytes() <= one * 3);
        }
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].key.date.day0(), 0, "day 1 held the most bytes");
        assert_eq!(ready[0].records.len(), 2);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn detached_records_free_their_input() {
        let input = std::sync::Arc::new(r#"{"k":{"S":"a"}}{"k":{"S":"b"}}"#.to_string());
        let mut b = Buffer::new(t(usize::MAX, 100));
        for (i, range) in [(0, 0..15), (1, 15..30)] {
            let (k, mut r) = record(i, 1);
            r.keys = crate::model::JsonText::within(&input, &input[range]);
            assert!(b.push(k, r, Instant::now()).is_empty());
        }
        assert_eq!(std::sync::Arc::strong_count(&input), 3);
        b.detach();
        assert_eq!(std::sync::Arc::strong_count(&input), 1);
        let batch = b.drain().remove(0);
        assert_eq!(batch.records[0].keys, r#"{"k":{"S":"a"}}"#);
        assert_eq!(batch.records[1].keys, r#"{"k":{"S":"b"}}"#);
    }

    #[test]
    fn expired_partitions_are_taken() {
        let mut b = Buffer::new(t(usize::MAX, 100));
        let t0 = Instant::now();
        let (k, r) = record(0, 1);
        assert!(b.push(k, r, t0).is_empty());
        let (k, r) = record(1, 2);
        assert!(b.push(k, r, t0 + Duration::from_secs(5)).is_empty());
        assert!(b.take_expired(t0 + Duration::from_secs(9)).is_empty());
        let taken = b.take_expired(t0 + Duration::from_secs(10));
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].records[0].index, 0);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn age_and_memory_predicates() {
        let th = Thresholds {
            max_buffer_bytes: 10,
            ..t(100, 3)
        };
        assert!(!is_expired(Duration::from_secs(9), &th));
        assert!(is_expired(Duration::from_secs(10), &th));
        assert!(!over_memory(10, &th));
        assert!(over_memory(11, &th));
    }
}
