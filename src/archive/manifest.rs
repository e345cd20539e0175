//! Manifest: what a compacted table-day was made from and holds, one JSON object on one
//! line under `_manifests/<table>/year=/month=/day=/manifest.json` of the compacted
//! layer. Verification checks the compacted files and their sources against it; the
//! Athena view reads the current `version` of each compacted day from it.
//!
//! The manifest's event-ID digest has one implementation, [`EventIds`], used by both
//! compaction (over the rows it writes) and verification (over the compacted files and
//! over the sources).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::archive::order::{OrderError, Sorter};
use crate::model::hex::hex;

/// The manifest format's name and version.
pub const FORMAT: &str = "ddb-archiver/compaction-manifest/1";

/// A compacted table-day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The DynamoDB table.
    pub table: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// Names the set of raw objects compacted: 16 hex digits of SHA-256 over their keys.
    /// Every row of the compacted files carries it in `compaction_version`.
    pub version: String,
    /// Rows in the compacted files: the distinct changes of the day.
    pub rows: u64,
    /// Rows of the sources dropped as copies of an event already kept.
    pub duplicates_dropped: u64,
    /// SHA-256, hex, over the sorted distinct event IDs, each followed by `\n`.
    pub event_id_digest: String,
    /// The compacted files, in order.
    pub files: Vec<ManifestFile>,
    /// The raw objects compacted, sorted by key.
    pub sources: Vec<ManifestSource>,
    /// The archiver version that wrote it.
    pub created_by: String,
}

/// One compacted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its key, relative to the compacted layer's root.
    pub key: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Rows it holds.
    pub rows: u64,
}

/// One raw object compacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSource {
    /// Its full location (a path or an `s3://` URL), so the compacted layer can be
    /// checked on its own.
    pub location: String,
    /// Its key, relative to the raw archive's root.
    pub key: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// The compaction version of a set of raw object keys: 16 hex digits of SHA-256 over
/// the sorted keys, each followed by `\n`.
pub fn version_of(keys: &[String]) -> String {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for k in sorted {
        h.update(k.as_bytes());
        h.update(b"\n");
    }
    crate::model::hex::hex_digest(h.finalize().as_slice())
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(Sha256::digest(bytes).as_slice())
}

/// Below this many bytes of IDs held, [`EventIds`] does not spill: a tiny budget cannot
/// make a run (a file) per event ID.
pub const MIN_EVENT_IDS_BUDGET: usize = 1 << 20;

/// The event IDs of a table-day, gathered in any order within a memory budget, for the
/// manifest's [`Manifest::event_id_digest`]: compaction gathers the rows it writes,
/// verification the rows of the compacted files and of the sources.
#[derive(Debug)]
pub struct EventIds {
    sorter: Sorter<String>,
}

/// The digest of a set of event IDs, with how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIdDigest {
    /// SHA-256, hex, over the sorted distinct IDs, each followed by `\n`.
    pub digest: String,
    /// Distinct IDs.
    pub count: u64,
    /// IDs pushed again after their first time.
    pub duplicates: u64,
}

impl EventIds {
    /// Gathers IDs holding at most about `budget` bytes of them in memory (at least
    /// [`MIN_EVENT_IDS_BUDGET`]), spilling sorted runs to temporary files past it.
    pub fn new(budget: usize) -> Self {
        EventIds {
            sorter: Sorter::new(budget.max(MIN_EVENT_IDS_BUDGET)),
        }
    }

    /// Adds an ID.
    pub fn push(&mut self, id: &str) -> Result<(), OrderError> {
        self.sorter.push(id.to_string())
    }

    /// Runs spilled to temporary files so far.
    pub fn spilled_runs(&self) -> usize {
        self.sorter.spilled_runs()
    }

    /// Bytes of those runs.
    pub fn spilled_bytes(&self) -> u64 {
        self.sorter.spilled_bytes()
    }

    /// The digest over the distinct IDs in byte order.
    pub fn finish(self) -> Result<EventIdDigest, OrderError> {
        let mut sorted = self.sorter.into_sorted()?;
        let mut hash = Sha256::new();
        let mut count = 0u64;
        for id in sorted.by_ref() {
            hash.update(id?.as_bytes());
            hash.update(b"\n");
            count += 1;
        }
        Ok(EventIdDigest {
            digest: hex(hash.finalize().as_slice()),
            count,
            duplicates: sorted.duplicates() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_name_the_set_of_keys() {
        let a = vec!["t/x".to_string(), "t/y".to_string()];
        let b = vec!["t/y".to_string(), "t/x".to_string()];
        assert_eq!(version_of(&a), version_of(&b));
        assert_eq!(version_of(&a).len(), 16);
        assert_ne!(version_of(&a), version_of(&a[..1]));
    }

    #[test]
    fn event_id_digest_is_over_distinct_sorted_ids() {
        let mut ids = EventIds::new(0);
        for id in ["c", "b", "a", "b"] {
            ids.push(id).unwrap();
        }
        let d = ids.finish().unwrap();
        assert_eq!(d.count, 3);
        assert_eq!(d.duplicates, 1);
        assert_eq!(d.digest, sha256_hex(b"a\nb\nc\n"));
    }

    #[test]
    fn spilled_ids_give_the_same_digest() {
        let ids: Vec<String> = (0..60_000u64)
            .map(|i| format!("{:032x}", (i * 7919) % 50_000))
            .collect();
        let mut want: Vec<&String> = ids.iter().collect();
        want.sort();
        want.dedup();
        let text: String = want.iter().map(|id| format!("{id}\n")).collect();
        let mut gathered = EventIds::new(0);
        for id in &ids {
            gathered.push(id).unwrap();
        }
        assert!(gathered.spilled_runs() > 1, "{}", gathered.spilled_runs());
        let d = gathered.finish().unwrap();
        assert_eq!(d.count, 50_000);
        assert_eq!(d.duplicates, 10_000);
        assert_eq!(d.digest, sha256_hex(text.as_bytes()));
    }
}
