//! Manifest: what a compacted table-day was made from and holds, one JSON object on one
//! line under `_manifests/<table>/year=/month=/day=/manifest.json` of the compacted
//! layer. Verification checks the compacted files and their sources against it; the
//! Athena view reads the current `version` of each compacted day from it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

/// The digest over sorted distinct event IDs, fed one ID at a time in sorted order.
#[derive(Debug, Default)]
pub struct EventIdDigest {
    hash: Sha256,
    last: Option<String>,
    count: u64,
}

impl EventIdDigest {
    /// Adds the next ID; IDs must come sorted, and a repeat of the last is skipped.
    pub fn push(&mut self, id: &str) {
        if self.last.as_deref() == Some(id) {
            return;
        }
        self.hash.update(id.as_bytes());
        self.hash.update(b"\n");
        self.count += 1;
        self.last = Some(id.to_string());
    }

    /// Distinct IDs added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest, hex.
    pub fn finish(self) -> String {
        hex(self.hash.finalize().as_slice())
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
        let mut d = EventIdDigest::default();
        for id in ["a", "b", "b", "c"] {
            d.push(id);
        }
        assert_eq!(d.count(), 3);
        assert_eq!(d.finish(), sha256_hex(b"a\nb\nc\n"));
    }
}
