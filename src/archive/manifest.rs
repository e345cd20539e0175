//! Manifest: what a compacted table-day was made from and holds, one JSON object on one
//! line under `_manifests/<table>/year=/month=/day=/manifest.json` of the compacted
//! layer. Verification checks the compacted files and their sources against it; the
//! Athena view reads the current `version` of each compacted day from it.
//!
//! The manifest's row digest has one implementation, [`RowDigest`], used by both
//! compaction (over the rows of its sources) and verification (over the compacted files
//! and over the sources). It also decides which copy of an event is kept (the rule is
//! [`RowDigest`]'s). Manifests of the first format carry an event-ID digest instead,
//! still checked with [`EventIds`].
//!
//! A manifest is data read from storage, never an instruction: its keys are parsed and
//! checked before use, and a manifest over [`MAX_MANIFEST_BYTES`] is refused.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::cmp::Ordering;
use std::io::{Read, Write};

use crate::archive::order::{read_text, read_u64, write_text, OrderError, RunItem, Sorter};
use crate::model::hex::hex;
use crate::model::order::cmp_sequence;

/// The manifest format's name and version.
pub const FORMAT: &str = "ddb-archiver/compaction-manifest/2";

/// The first manifest format: an event-ID digest instead of the row digest, no layout.
pub const FORMAT_V1: &str = "ddb-archiver/compaction-manifest/1";

/// The largest manifest read; a larger object under a manifest's key is refused, not
/// parsed (about 100,000 sources per day fit in far less).
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

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
    /// The [`RowDigest`] of the rows (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_digest: Option<String>,
    /// Format 1 only: SHA-256, hex, over the sorted distinct event IDs, each followed by
    /// `\n` ([`EventIds`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id_digest: Option<String>,
    /// What the files' bytes depend on besides the sources (format 2); the version
    /// names it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<ManifestLayout>,
    /// Versions this manifest replaced whose files may still be read by queries that
    /// began before the switch: each is deleted once its grace period is over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<Superseded>,
    /// The compacted files, in order.
    pub files: Vec<ManifestFile>,
    /// The raw objects compacted, sorted by key.
    pub sources: Vec<ManifestSource>,
    /// The archiver version that wrote it.
    pub created_by: String,
}

/// What a compacted day's bytes depend on besides its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLayout {
    /// The compactor's layout version: changes whenever the same rows and settings
    /// would give other bytes.
    pub compactor: u32,
    /// SHA-256, hex, of the table's schema file as used (its typed columns), or empty
    /// for none.
    pub schema_digest: String,
    /// A file ends once it reaches about this many bytes.
    pub max_file_bytes: u64,
    /// Encoded bytes of a row group.
    pub row_group_bytes: u64,
    /// Most rows in one row group.
    pub row_group_max_rows: u64,
}

/// A version replaced by a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superseded {
    /// The replaced version.
    pub version: String,
    /// When it was replaced, RFC 3339 UTC.
    pub at: String,
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

/// The compaction version of a set of raw object keys and the layout of the files made
/// from them: 16 hex digits of SHA-256 over the sorted keys, each followed by `\n`,
/// then the layout's fields, each followed by `\n`. A rerun with other settings, another
/// schema or another compactor layout is a new version, never a mix.
pub fn version_of(keys: &[String], layout: &ManifestLayout) -> String {
    let mut h = keys_hash(keys);
    for part in [
        format!("layout {}", layout.compactor),
        layout.schema_digest.clone(),
        layout.max_file_bytes.to_string(),
        layout.row_group_bytes.to_string(),
        layout.row_group_max_rows.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    crate::model::hex::hex_digest(h.finalize().as_slice())
}

/// The version of a format-1 manifest: its sources' keys alone.
pub fn version_of_sources_v1(keys: &[String]) -> String {
    crate::model::hex::hex_digest(keys_hash(keys).finalize().as_slice())
}

/// SHA-256 fed with the sorted keys, each followed by `\n`.
fn keys_hash(keys: &[String]) -> Sha256 {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for k in sorted {
        h.update(k.as_bytes());
        h.update(b"\n");
    }
    h
}

/// Reads a manifest's bytes: a manifest of format 1 or 2, for that table and day.
pub fn parse(bytes: &[u8], table: &str, date: &str) -> Result<Manifest, String> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{} bytes, over the {MAX_MANIFEST_BYTES}-byte limit for a manifest",
            bytes.len()
        ));
    }
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    if m.format != FORMAT && m.format != FORMAT_V1 {
        return Err(format!("unknown manifest format {:?}", m.format));
    }
    if m.table != table || m.date != date {
        return Err(format!(
            "it describes {} {}, not {table} {date}",
            m.table, m.date
        ));
    }
    let digest_ok = match m.format.as_str() {
        FORMAT => m.row_digest.is_some() && m.layout.is_some(),
        _ => m.event_id_digest.is_some(),
    };
    if !digest_ok {
        return Err(format!(
            "a {} manifest without its digest or layout",
            m.format
        ));
    }
    Ok(m)
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

/// One row's part in the manifest's [`RowDigest`]: what the exactly-once view shows of
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    /// `event_id`.
    pub event_id: String,
    /// `approximate_creation_time`, milliseconds.
    pub time_ms: i64,
    /// Sequence number, decimal digits.
    pub sequence_number: String,
    /// SHA-256 of the row's `record` text.
    pub record_sha256: [u8; 32],
    /// Where the row was read, for the reader to find it again (compaction: the source
    /// object's number and the row's number in it); the last tie-breaker.
    pub origin: u64,
}

impl DigestRow {
    /// The row of a change.
    pub fn new(
        event_id: &str,
        time_ms: i64,
        sequence_number: &str,
        record: &str,
        origin: u64,
    ) -> Self {
        DigestRow {
            event_id: event_id.to_string(),
            time_ms,
            sequence_number: sequence_number.to_string(),
            record_sha256: Sha256::digest(record.as_bytes()).into(),
            origin,
        }
    }

    /// Whether `other` is the same change (a copy archived twice): same time, sequence
    /// number and record.
    fn same_change(&self, other: &DigestRow) -> bool {
        self.time_ms == other.time_ms
            && self.sequence_number == other.sequence_number
            && self.record_sha256 == other.record_sha256
    }
}

/// Rows sort by event ID, then stream order (time, sequence number numerically), then
/// record hash and origin: the first row of each event ID is the copy kept.
impl RunItem for DigestRow {
    fn approx_bytes(&self) -> usize {
        self.event_id.len() + self.sequence_number.len() + 112
    }

    fn cmp_key(&self, other: &Self) -> Ordering {
        self.event_id
            .cmp(&other.event_id)
            .then_with(|| self.time_ms.cmp(&other.time_ms))
            .then_with(|| cmp_sequence(&self.sequence_number, &other.sequence_number))
            .then_with(|| self.record_sha256.cmp(&other.record_sha256))
            .then_with(|| self.origin.cmp(&other.origin))
    }

    fn identity(&self) -> &str {
        &self.event_id
    }

    fn write_run(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.time_ms.to_le_bytes())?;
        out.write_all(&self.origin.to_le_bytes())?;
        out.write_all(&self.record_sha256)?;
        write_text(out, &self.event_id)?;
        write_text(out, &self.sequence_number)
    }

    fn read_run(input: &mut impl Read) -> std::io::Result<Option<Self>> {
        let Some(time) = read_u64(input)? else {
            return Ok(None);
        };
        let mut origin = [0u8; 8];
        input.read_exact(&mut origin)?;
        let mut record_sha256 = [0u8; 32];
        input.read_exact(&mut record_sha256)?;
        Ok(Some(DigestRow {
            time_ms: i64::from_le_bytes(time),
            origin: u64::from_le_bytes(origin),
            record_sha256,
            event_id: read_text(input)?,
            sequence_number: read_text(input)?,
        }))
    }
}

/// The rows of a table-day, gathered in any order within a memory budget, for the
/// manifest's row digest. Of the rows of one event ID, the one kept is the earliest in
/// stream order: the lowest `approximate_creation_time`, then the lowest sequence number
/// (numerically), then the lowest SHA-256 of `record`, then where it was read. The
/// others are copies, wherever they sort in stream order (a Kinesis duplicate has its
/// own sequence number and may have its own time).
#[derive(Debug)]
pub struct RowDigest {
    sorter: Sorter<DigestRow>,
}

/// The row digest of a table-day, with the copies it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDigestSummary {
    /// SHA-256, hex, over the rows kept in event-ID order: for each, the event ID, the
    /// time, the sequence number (texts length-prefixed, numbers little-endian 64-bit)
    /// and the record's SHA-256.
    pub digest: String,
    /// Rows kept: the distinct event IDs.
    pub rows: u64,
    /// Copies dropped.
    pub duplicates: u64,
    /// The origins of copies that are not the same change as the row kept (another
    /// time, sequence number or record), sorted: they do not meet the kept row in
    /// stream order, so a reader in stream order must skip them by origin.
    pub displaced: Vec<u64>,
}

impl RowDigest {
    /// Gathers rows holding at most about `budget` bytes of them in memory (at least
    /// [`MIN_EVENT_IDS_BUDGET`]), spilling sorted runs past it.
    pub fn new(budget: usize) -> Self {
        RowDigest {
            sorter: Sorter::keeping_copies(budget.max(MIN_EVENT_IDS_BUDGET)),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: DigestRow) -> Result<(), OrderError> {
        self.sorter.push(row)
    }

    /// Adds rows.
    pub fn push_all(&mut self, rows: Vec<DigestRow>) -> Result<(), OrderError> {
        rows.into_iter().try_for_each(|r| self.sorter.push(r))
    }

    /// Runs spilled to temporary files so far.
    pub fn spilled_runs(&self) -> usize {
        self.sorter.spilled_runs()
    }

    /// Bytes of those runs.
    pub fn spilled_bytes(&self) -> u64 {
        self.sorter.spilled_bytes()
    }

    /// The digest over the rows kept, and the copies.
    pub fn finish(self) -> Result<RowDigestSummary, OrderError> {
        let mut hash = Sha256::new();
        let mut rows = 0u64;
        let mut duplicates = 0u64;
        let mut displaced = Vec::new();
        let mut kept: Option<DigestRow> = None;
        for row in self.sorter.into_sorted()? {
            let row = row?;
            if let Some(k) = kept.as_ref().filter(|k| k.event_id == row.event_id) {
                duplicates += 1;
                if !k.same_change(&row) {
                    displaced.push(row.origin);
                }
                continue;
            }
            hash.update((row.event_id.len() as u64).to_le_bytes());
            hash.update(row.event_id.as_bytes());
            hash.update(row.time_ms.to_le_bytes());
            hash.update((row.sequence_number.len() as u64).to_le_bytes());
            hash.update(row.sequence_number.as_bytes());
            hash.update(row.record_sha256);
            rows += 1;
            kept = Some(row);
        }
        displaced.sort_unstable();
        Ok(RowDigestSummary {
            digest: hex(hash.finalize().as_slice()),
            rows,
            duplicates,
            displaced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> ManifestLayout {
        ManifestLayout {
            compactor: 2,
            schema_digest: String::new(),
            max_file_bytes: 100,
            row_group_bytes: 10,
            row_group_max_rows: 5,
        }
    }

    #[test]
    fn versions_name_the_set_of_keys_and_the_layout() {
        let a = vec!["t/x".to_string(), "t/y".to_string()];
        let b = vec!["t/y".to_string(), "t/x".to_string()];
        assert_eq!(version_of(&a, &layout()), version_of(&b, &layout()));
        assert_eq!(version_of(&a, &layout()).len(), 16);
        assert_ne!(version_of(&a, &layout()), version_of(&a[..1], &layout()));
        for other in [
            ManifestLayout {
                compactor: 3,
                ..layout()
            },
            ManifestLayout {
                schema_digest: "ab".into(),
                ..layout()
            },
            ManifestLayout {
                max_file_bytes: 101,
                ..layout()
            },
            ManifestLayout {
                row_group_bytes: 11,
                ..layout()
            },
            ManifestLayout {
                row_group_max_rows: 6,
                ..layout()
            },
        ] {
            assert_ne!(version_of(&a, &layout()), version_of(&a, &other));
        }
    }

    #[test]
    fn the_earliest_copy_of_an_event_is_kept_wherever_it_sorts() {
        let rows = |order: &[usize], budget: usize| {
            let all = [
                DigestRow::new("b", 5, "20", "{b}", 0),
                DigestRow::new("a", 7, "100", "{a}", 1),
                // A Kinesis duplicate of a: later time, its own sequence number.
                DigestRow::new("a", 9, "300", "{a}", 2),
                // The same change of b archived twice.
                DigestRow::new("b", 5, "20", "{b}", 3),
                DigestRow::new("c", 8, "200", "{c}", 4),
                // A copy of c with an earlier sequence number: it is the one kept.
                DigestRow::new("c", 8, "99", "{c}", 5),
            ];
            let mut d = RowDigest::new(budget);
            for &i in order {
                d.push(all[i].clone()).unwrap();
            }
            d.finish().unwrap()
        };
        let s = rows(&[0, 1, 2, 3, 4, 5], usize::MAX);
        assert_eq!((s.rows, s.duplicates), (3, 3));
        assert_eq!(s.displaced, [2, 4]);
        assert_eq!(rows(&[5, 4, 3, 2, 1, 0], usize::MAX), s);
        let kept = rows(&[0, 1, 5], usize::MAX);
        assert_eq!(kept.digest, s.digest);
        assert_ne!(rows(&[0, 1, 4], usize::MAX).digest, s.digest);
    }

    #[test]
    fn spilled_rows_give_the_same_digest() {
        let mut mem = RowDigest::new(usize::MAX);
        let mut disk = RowDigest::new(0);
        for i in 0..40_000u64 {
            let id = format!("{:032x}", (i * 7919) % 30_000);
            let row = DigestRow::new(&id, (i % 97) as i64, &(i % 1000).to_string(), &id, i);
            mem.push(row.clone()).unwrap();
            disk.push(row).unwrap();
        }
        assert!(disk.spilled_runs() > 1);
        let (m, d) = (mem.finish().unwrap(), disk.finish().unwrap());
        assert_eq!(m, d);
        assert_eq!(m.rows, 30_000);
        assert_eq!(m.duplicates, 10_000);
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
