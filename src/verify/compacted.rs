//! Compacted: one compacted table-day checked with its manifest. The manifest parses
//! and names this day; its files exist with the listed sizes, checksums and rows, carry
//! its version, and hold the day's changes in order, each event once; every raw object
//! it lists still exists, with the listed size and checksum; and the event IDs of the
//! compacted files and of the sources are both exactly the manifest's.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::rows::{check_file, Extra};
use super::{CompactedDay, ObjectKind, Reasons, Verifier, VerifySummary};
use crate::archive::manifest::{self, EventIdDigest, EventIds, Manifest};
use crate::archive::reader::{self, Column, Projection};
use crate::archive::source::{open_location, ArchiveSource};
use crate::model::key::ObjectKey;
use crate::model::order::cmp_sequence;
use crate::model::Format;
use crate::model::Location;

/// The raw archives named by manifests' sources, one opened source per root.
#[derive(Default)]
pub struct SourceCache {
    roots: HashMap<String, Box<dyn ArchiveSource>>,
}

impl SourceCache {
    /// The source holding `key` at `location` (its full location, which ends in it).
    async fn open(&mut self, location: &str, key: &str) -> Result<&dyn ArchiveSource, String> {
        let root = location
            .strip_suffix(key)
            .ok_or_else(|| format!("its location {location} does not end in its key {key}"))?;
        if !self.roots.contains_key(root) {
            let parsed =
                Location::parse(root).map_err(|e| format!("location {location}: {}", e.reason))?;
            self.roots
                .insert(root.to_string(), open_location(&parsed).await);
        }
        self.roots
            .get(root)
            .map(AsRef::as_ref)
            .ok_or_else(|| format!("location {location} could not be opened"))
    }
}

fn push_id(ids: &mut EventIds, id: &str, reasons: &mut Reasons) {
    if let Err(e) = ids.push(id) {
        reasons.push(e.to_string());
    }
}

/// Checks one compacted table-day: its manifest and its files.
pub(crate) async fn check_day(
    v: &Verifier<'_>,
    table: &str,
    date: NaiveDate,
    day: &CompactedDay,
    sources: &mut SourceCache,
    summary: &mut VerifySummary,
) {
    let mut m_reasons = Reasons::default();
    let manifest = match &day.manifest {
        None => None,
        Some(key) => read_manifest(v, key, table, date, day, &mut m_reasons, summary).await,
    };
    let budget = v.options.memory_budget / 2;
    let mut ids = EventIds::new(budget);
    let mut files: Vec<(u32, &String)> = day
        .files
        .iter()
        .filter_map(|k| match ObjectKey::parse(k) {
            Some(ObjectKey::Compacted { part, .. }) => Some((part, k)),
            _ => None,
        })
        .collect();
    files.sort();
    let mut last: Option<(i64, String)> = None;
    let mut mismatched = Vec::new();
    for (_, key) in files {
        let mut reasons = Reasons::default();
        if day.manifest.is_none() {
            reasons.push("no manifest for its day");
        }
        if let Some(bytes) = v.read(key, &mut reasons, summary).await {
            summary.rows += check_file_of_day(
                v,
                key,
                table,
                date,
                bytes,
                manifest.as_ref(),
                &mut ids,
                &mut last,
                &mut mismatched,
                &mut reasons,
            );
        }
        v.report(key, ObjectKind::Compacted, reasons, summary);
    }
    if let (Some(key), Some(m)) = (&day.manifest, &manifest) {
        // Either the file or its entry changed: both are named.
        for file in mismatched {
            m_reasons.push(format!(
                "its entry for {} does not match the file",
                v.source.location(&file)
            ));
        }
        match ids.finish() {
            Err(e) => m_reasons.push(e.to_string()),
            Ok(ids) => {
                if ids.duplicates > 0 {
                    m_reasons.push(format!(
                        "the compacted files hold {} extra copies of event IDs",
                        ids.duplicates
                    ));
                }
                check_ids("the compacted files", &ids, m, &mut m_reasons);
            }
        }
        check_sources(m, sources, budget, &mut m_reasons).await;
        v.report(key, ObjectKind::Manifest, m_reasons, summary);
    } else if let Some(key) = &day.manifest {
        v.report(key, ObjectKind::Manifest, m_reasons, summary);
    }
}

/// Reads and checks a manifest on its own: it parses, names this day, its version is
/// its sources', and every file it lists exists.
async fn read_manifest(
    v: &Verifier<'_>,
    key: &str,
    table: &str,
    date: NaiveDate,
    day: &CompactedDay,
    reasons: &mut Reasons,
    summary: &mut VerifySummary,
) -> Option<Manifest> {
    let bytes = v.read(key, reasons, summary).await?;
    let m: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            reasons.push(format!("not a manifest: {e}"));
            return None;
        }
    };
    if m.format != manifest::FORMAT {
        reasons.push(format!(
            "format {:?} is not {:?}",
            m.format,
            manifest::FORMAT
        ));
    }
    if m.table != table || m.date != date.to_string() {
        reasons.push(format!(
            "names table {:?} and day {:?}, not {table:?} and {date}",
            m.table, m.date
        ));
    }
    let keys: Vec<String> = m.sources.iter().map(|s| s.key.clone()).collect();
    let version = manifest::version_of(&keys);
    if version != m.version {
        reasons.push(format!(
            "version {} is not its sources' version {version}",
            m.version
        ));
    }
    for f in &m.files {
        if !day.files.contains(&f.key) {
            reasons.push(format!(
                "lists {}, which is missing",
                v.source.location(&f.key)
            ));
        }
    }
    let rows: u64 = m.files.iter().map(|f| f.rows).sum();
    if rows != m.rows {
        reasons.push(format!(
            "its files hold {rows} rows by its own count, it says {}",
            m.rows
        ));
    }
    Some(m)
}

/// Checks one compacted file against the manifest and reads every row: re-derived,
/// in the day's order after the previous file's, carrying the version.
#[allow(clippy::too_many_arguments)]
fn check_file_of_day(
    v: &Verifier<'_>,
    key: &str,
    table: &str,
    date: NaiveDate,
    bytes: Vec<u8>,
    manifest: Option<&Manifest>,
    ids: &mut EventIds,
    last: &mut Option<(i64, String)>,
    mismatched: &mut Vec<String>,
    reasons: &mut Reasons,
) -> u64 {
    let Some(ObjectKey::Compacted { version, .. }) = ObjectKey::parse(key) else {
        return 0;
    };
    let entry = manifest.and_then(|m| m.files.iter().find(|f| f.key == key));
    if let Some(m) = manifest {
        if version != m.version {
            reasons.push(format!(
                "its version {version} is not the manifest's {}",
                m.version
            ));
        }
        match entry {
            None => reasons.push("not listed in its day's manifest"),
            Some(f) => {
                let sha = manifest::sha256_hex(&bytes);
                if f.bytes != bytes.len() as u64 || f.sha256 != sha {
                    mismatched.push(key.to_string());
                    reasons.push(format!(
                        "{} bytes with SHA-256 {sha}; the manifest says {} bytes with {}",
                        bytes.len(),
                        f.bytes,
                        f.sha256
                    ));
                }
            }
        }
    }
    let location = v.source.location(key);
    let extra = Extra::of(table, v.options.schemas.as_ref(), Some(&version));
    let read = check_file(
        Format::Parquet,
        bytes,
        &location,
        extra,
        reasons,
        |c, reasons| {
            let row = &c.row;
            if row.table_name != table {
                reasons.push(format!(
                    "row {}: table_name {:?} is not {table:?}",
                    c.number, row.table_name
                ));
            }
            let day = chrono::DateTime::from_timestamp_millis(row.time_ms).map(|t| t.date_naive());
            if day != Some(date) {
                reasons.push(format!("row {}: its time is not on {date}", c.number));
            }
            if let Some((t, s)) = last.as_ref() {
                let order = t
                    .cmp(&row.time_ms)
                    .then_with(|| cmp_sequence(s, &row.sequence_number));
                if order == std::cmp::Ordering::Greater {
                    reasons.push(format!(
                        "row {} (event_id {:?}) is out of order",
                        c.number, row.event_id
                    ));
                }
            }
            *last = Some((row.time_ms, row.sequence_number.clone()));
            push_id(ids, &row.event_id, reasons);
        },
    );
    if let Some(f) = entry {
        if f.rows != read {
            mismatched.push(key.to_string());
            reasons.push(format!("holds {read} rows; the manifest says {}", f.rows));
        }
    }
    read
}

/// Every source the manifest lists still exists with its size and checksum, and the
/// sources' distinct event IDs are the manifest's.
async fn check_sources(
    m: &Manifest,
    cache: &mut SourceCache,
    budget: usize,
    reasons: &mut Reasons,
) {
    let mut ids = EventIds::new(budget);
    let mut complete = true;
    for s in &m.sources {
        let source = match cache.open(&s.location, &s.key).await {
            Ok(src) => src,
            Err(why) => {
                reasons.push(format!("source {}: {why}", s.location));
                complete = false;
                continue;
            }
        };
        let bytes = match source.get(&s.key).await {
            Ok(b) => b,
            Err(e) => {
                reasons.push(format!(
                    "source {} cannot be read: {}",
                    s.location, e.message
                ));
                complete = false;
                continue;
            }
        };
        let sha = manifest::sha256_hex(&bytes);
        if s.bytes != bytes.len() as u64 || s.sha256 != sha {
            reasons.push(format!(
                "source {} is {} bytes with SHA-256 {sha}; the manifest says {} bytes with {}",
                s.location,
                bytes.len(),
                s.bytes,
                s.sha256
            ));
        }
        let Some(format) = Format::of_key(&s.key) else {
            reasons.push(format!("source {} is not an archive file", s.location));
            complete = false;
            continue;
        };
        let only_ids = Projection::of(&[Column::EventId]);
        match reader::rows(format, bytes, &s.location, only_ids) {
            Err(e) => {
                reasons.push(format!("source {}: {}", s.location, e.reason));
                complete = false;
            }
            Ok(rows) => {
                for row in rows {
                    match row {
                        Ok(r) => push_id(&mut ids, &r.event_id, reasons),
                        Err(e) => {
                            reasons.push(format!("source {}: {}", s.location, e.reason));
                            complete = false;
                            break;
                        }
                    }
                }
            }
        }
    }
    if !complete {
        return;
    }
    match ids.finish() {
        Err(e) => reasons.push(e.to_string()),
        Ok(ids) => check_ids("its sources", &ids, m, reasons),
    }
}

/// The distinct event IDs of `what` are the manifest's: as many, with its digest.
fn check_ids(what: &str, ids: &EventIdDigest, m: &Manifest, reasons: &mut Reasons) {
    if ids.count != m.rows || ids.digest != m.event_id_digest {
        reasons.push(format!(
            "{what} hold {} distinct event IDs with digest {}; the manifest says {} with {}",
            ids.count, ids.digest, m.rows, m.event_id_digest
        ));
    }
}
