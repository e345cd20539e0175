//! Compacted: one compacted table-day checked with its manifest. The manifest is read
//! within [`manifest::MAX_MANIFEST_BYTES`], parses, names this day, and names only files
//! and sources of this table and day; its files exist with the listed sizes, checksums
//! and rows, carry its version, and hold the day's changes in order, each event once,
//! with the manifest's row digest (format 1: its event-ID digest). Files of versions it
//! superseded are checked on their own; files of any other version (or of a day with no
//! manifest) belong to no published version: a failed or losing compaction run left
//! them, no reader reads them, compaction deletes them after its grace period, and they
//! are listed apart, not reported bad.
//!
//! Given the raw archive ([`Verifier::raw`]), every source is read from it by its key
//! (never by the manifest's free-form `location`) and must have the listed size and
//! checksum, and the sources' rows must give the manifest's row digest, deciding copies
//! as compaction does ([`RowDigest`]); the raw day's listing shows data objects that
//! the manifest does not list yet (late arrivals, [`super::BehindRaw`]).

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;

use super::rows::{check_file, Extra};
use super::{BehindRaw, CompactedDay, ObjectKind, Reasons, Verifier, VerifySummary, MAX_REASONS};
use crate::archive::manifest::{self, DigestRow, EventIds, Manifest, RowDigest};
use crate::archive::reader::{self, Column, Projection};
use crate::archive::source::ArchiveSource;
use crate::model::key::{partition_path, ObjectKey};
use crate::model::order::cmp_sequence;
use crate::model::Format;

/// The rows of a compacted day (or of its sources) gathered for the manifest's digest:
/// the row digest (format 2) or the distinct event IDs (format 1).
enum Gathered {
    Rows { digest: RowDigest, next: u64 },
    Ids(EventIds),
}

impl Gathered {
    /// What `m`'s digest is checked with, holding about `budget` bytes in memory.
    fn for_manifest(m: &Manifest, budget: usize) -> Self {
        if m.format == manifest::FORMAT_V1 {
            Gathered::Ids(EventIds::new(budget))
        } else {
            Gathered::Rows {
                digest: RowDigest::new(budget),
                next: 0,
            }
        }
    }

    /// Adds a row; `origin` orders copies that are the same change (any number that
    /// differs per row read).
    fn push(&mut self, row: &reader::Row, origin: Option<u64>, reasons: &mut Reasons) {
        let pushed = match self {
            Gathered::Ids(ids) => ids.push(&row.event_id),
            Gathered::Rows { digest, next } => {
                let origin = origin.unwrap_or(*next);
                *next += 1;
                digest.push(DigestRow::new(
                    &row.event_id,
                    row.time_ms,
                    &row.sequence_number,
                    &row.record,
                    origin,
                ))
            }
        };
        if let Err(e) = pushed {
            reasons.push(e.to_string());
        }
    }

    /// Compares what `what` holds with the manifest: as many distinct events, with its
    /// digest. Of the sources (`sources`), the copies must be the manifest's
    /// `duplicates_dropped`; the compacted files must hold no copies at all.
    fn finish(self, what: &str, m: &Manifest, sources: bool, reasons: &mut Reasons) {
        let finished = match self {
            Gathered::Ids(ids) => ids.finish().map(|d| (d.count, d.digest, d.duplicates)),
            Gathered::Rows { digest, .. } => {
                digest.finish().map(|d| (d.rows, d.digest, d.duplicates))
            }
        };
        let (rows, digest, duplicates) = match finished {
            Ok(f) => f,
            Err(e) => return reasons.push(e.to_string()),
        };
        let (kind, want) = if m.format == manifest::FORMAT_V1 {
            ("event-ID digest", m.event_id_digest.as_deref())
        } else {
            ("row digest", m.row_digest.as_deref())
        };
        let want = want.unwrap_or_default();
        if rows != m.rows || digest != want {
            reasons.push(format!(
                "{what} hold {rows} distinct events with {kind} {digest}; the manifest says {} with {want}",
                m.rows
            ));
        }
        if !sources && duplicates > 0 {
            reasons.push(format!(
                "the compacted files hold {duplicates} extra copies of event IDs"
            ));
        }
        if sources && m.format != manifest::FORMAT_V1 && duplicates != m.duplicates_dropped {
            reasons.push(format!(
                "{what} hold {duplicates} copies of events; the manifest says {} were dropped",
                m.duplicates_dropped
            ));
        }
    }
}

/// Is `key` a raw data object of `table` and `date`? Only such keys of a manifest are
/// ever read.
fn is_source_of_day(key: &str, table: &str, date: NaiveDate) -> bool {
    matches!(ObjectKey::parse(key), Some(ObjectKey::Data(d)) if d.table == table && d.date == date)
}

/// What a compacted file is to its day's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The day has no (readable) manifest.
    NoManifest,
    /// A file of the manifest's version.
    Current,
    /// A file of a version the manifest superseded, kept for a grace period.
    Superseded,
    /// A file of any other version.
    Leftover,
}

/// Checks one compacted table-day: its manifest and its files.
pub(crate) async fn check_day(
    v: &Verifier<'_>,
    table: &str,
    date: NaiveDate,
    day: &CompactedDay,
    summary: &mut VerifySummary,
) {
    let mut m_reasons = Reasons::default();
    let manifest = match &day.manifest {
        None => None,
        Some(key) => read_manifest(v, key, table, date, day, &mut m_reasons, summary).await,
    };
    let budget = v.options.memory_budget / 2;
    let mut gathered = manifest.as_ref().map(|m| Gathered::for_manifest(m, budget));
    let mut versions: BTreeMap<String, Vec<(u32, &String)>> = BTreeMap::new();
    for key in &day.files {
        if let Some(ObjectKey::Compacted { version, part, .. }) = ObjectKey::parse(key) {
            versions.entry(version).or_default().push((part, key));
        }
    }
    let mut mismatched = Vec::new();
    for (version, mut files) in versions {
        files.sort();
        let role = match &manifest {
            None => Role::NoManifest,
            Some(m) if m.version == version => Role::Current,
            Some(m) if m.superseded.iter().any(|s| s.version == version) => Role::Superseded,
            Some(_) => Role::Leftover,
        };
        let mut last: Option<(i64, String)> = None;
        for (_, key) in files {
            let mut reasons = Reasons::default();
            match role {
                Role::NoManifest if day.manifest.is_some() => {
                    reasons.push("its day's manifest cannot be used")
                }
                // Files of no published version (a compaction run that failed or lost a
                // race): no reader reads them, and compaction deletes them once the
                // grace period is over. Listed, not bad.
                Role::NoManifest | Role::Leftover => {
                    summary.unpublished.push(v.source.location(key));
                    continue;
                }
                _ => {}
            }
            if let Some(bytes) = v.read(key, &mut reasons, summary).await {
                let file = FileOfDay {
                    key,
                    table,
                    date,
                    version: &version,
                    entry: manifest
                        .as_ref()
                        .filter(|_| role == Role::Current)
                        .map(|m| m.files.iter().find(|f| &f.key == key)),
                };
                let digest = gathered.as_mut().filter(|_| role == Role::Current);
                summary.rows += check_file_of_day(
                    v,
                    &file,
                    bytes,
                    digest,
                    &mut last,
                    &mut mismatched,
                    &mut reasons,
                );
            }
            v.report(key, ObjectKind::Compacted, reasons, summary);
        }
    }
    let Some(key) = &day.manifest else {
        return;
    };
    if let (Some(m), Some(gathered)) = (&manifest, gathered) {
        // Either the file or its entry changed: both are named.
        for file in mismatched {
            m_reasons.push(format!(
                "its entry for {} does not match the file",
                v.source.location(&file)
            ));
        }
        gathered.finish("the compacted files", m, false, &mut m_reasons);
        match v.raw {
            Some(raw) => {
                check_sources(raw, m, table, date, budget, &mut m_reasons).await;
                check_behind(v, raw, key, m, table, date, &mut m_reasons, summary).await;
            }
            None => summary.sources_not_read += m.sources.len() as u64,
        }
    }
    v.report(key, ObjectKind::Manifest, m_reasons, summary);
}

/// Reads and checks a manifest on its own: it is within the size limit, parses, names
/// this day, its version is that of its sources and layout, it names only files and
/// sources of this day, and every file it lists exists.
async fn read_manifest(
    v: &Verifier<'_>,
    key: &str,
    table: &str,
    date: NaiveDate,
    day: &CompactedDay,
    reasons: &mut Reasons,
    summary: &mut VerifySummary,
) -> Option<Manifest> {
    let bytes = v
        .read_at_most(key, Some(manifest::MAX_MANIFEST_BYTES), reasons, summary)
        .await?;
    let m = match manifest::parse(&bytes, table, &date.to_string()) {
        Ok(m) => m,
        Err(e) => {
            reasons.push(e);
            return None;
        }
    };
    let keys: Vec<String> = m.sources.iter().map(|s| s.key.clone()).collect();
    // Format 1 named the sources only; format 2 names the layout too.
    let version = match &m.layout {
        Some(layout) => manifest::version_of(&keys, layout),
        None => manifest::version_of_sources_v1(&keys),
    };
    if version != m.version {
        reasons.push(format!(
            "version {} is not its sources' version {version}",
            m.version
        ));
    }
    for f in &m.files {
        let of_day = matches!(
            ObjectKey::parse(&f.key),
            Some(ObjectKey::Compacted { table: t, date: d, version, .. })
                if t == table && d == date && version == m.version
        );
        if !of_day {
            reasons.push(format!(
                "names a file outside its day and version: {:?}",
                f.key
            ));
        } else if !day.files.contains(&f.key) {
            reasons.push(format!(
                "lists {}, which is missing",
                v.source.location(&f.key)
            ));
        }
    }
    for s in &m.sources {
        if !is_source_of_day(&s.key, table, date) {
            reasons.push(format!("names a source outside its day: {:?}", s.key));
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

/// A compacted file and what it should be.
struct FileOfDay<'a> {
    key: &'a str,
    table: &'a str,
    date: NaiveDate,
    /// The version in its name.
    version: &'a str,
    /// For a file of the manifest's version: its entry, if the manifest lists it.
    entry: Option<Option<&'a manifest::ManifestFile>>,
}

/// Checks one compacted file against its manifest entry and reads every row:
/// re-derived, on the day, in the day's order after the previous file's of its version,
/// carrying the version; the rows of the manifest's version go to `digest`.
fn check_file_of_day(
    v: &Verifier<'_>,
    file: &FileOfDay<'_>,
    bytes: Vec<u8>,
    mut digest: Option<&mut Gathered>,
    last: &mut Option<(i64, String)>,
    mismatched: &mut Vec<String>,
    reasons: &mut Reasons,
) -> u64 {
    let key = file.key;
    match file.entry {
        None => {}
        Some(None) => reasons.push("not listed in its day's manifest"),
        Some(Some(f)) => {
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
    let location = v.source.location(key);
    let extra = Extra::of(file.table, v.options.schemas.as_ref(), Some(file.version));
    let (table, date) = (file.table, file.date);
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
            if let Some(d) = digest.as_deref_mut() {
                d.push(row, None, reasons);
            }
        },
    );
    if let Some(Some(f)) = file.entry {
        if f.rows != read.rows {
            mismatched.push(key.to_string());
            reasons.push(format!(
                "holds {} rows; the manifest says {}",
                read.rows, f.rows
            ));
        }
    }
    read.rows
}

/// Every source the manifest lists is read from the raw archive by its key (a data key
/// of this table and day; any other was reported and is not read) and has its size and
/// checksum, and the sources' rows give the manifest's digest, copies decided as
/// compaction decides them.
async fn check_sources(
    raw: &dyn ArchiveSource,
    m: &Manifest,
    table: &str,
    date: NaiveDate,
    budget: usize,
    reasons: &mut Reasons,
) {
    let mut gathered = Gathered::for_manifest(m, budget);
    let mut complete = true;
    let projection = Projection::of(&[
        Column::EventId,
        Column::SequenceNumber,
        Column::ApproximateCreationTime,
        Column::Record,
    ]);
    for (index, s) in m.sources.iter().enumerate() {
        let format = Format::of_key(&s.key);
        let (true, Some(format)) = (is_source_of_day(&s.key, table, date), format) else {
            complete = false;
            continue;
        };
        let location = raw.location(&s.key);
        let bytes = match raw.get(&s.key).await {
            Ok(b) => b,
            Err(e) => {
                reasons.push(format!("source {location} cannot be read: {}", e.message));
                complete = false;
                continue;
            }
        };
        let sha = manifest::sha256_hex(&bytes);
        if s.bytes != bytes.len() as u64 || s.sha256 != sha {
            reasons.push(format!(
                "source {location} is {} bytes with SHA-256 {sha}; the manifest says {} bytes with {}",
                bytes.len(),
                s.bytes,
                s.sha256
            ));
        }
        let rows = match reader::rows(format, bytes, &location, projection) {
            Ok(rows) => rows,
            Err(e) => {
                reasons.push(format!("source {location}: {}", e.reason));
                complete = false;
                continue;
            }
        };
        for (n, row) in rows.enumerate() {
            match row {
                Ok(r) => gathered.push(&r, Some(((index as u64) << 32) | n as u64), reasons),
                Err(e) => {
                    reasons.push(format!("source {location}: {}", e.reason));
                    complete = false;
                    break;
                }
            }
        }
    }
    if complete {
        gathered.finish("its sources", m, true, reasons);
    }
}

/// Lists the raw day and records it as behind the raw archive when it holds data
/// objects that the manifest does not list among its sources (late arrivals).
#[allow(clippy::too_many_arguments)]
async fn check_behind(
    v: &Verifier<'_>,
    raw: &dyn ArchiveSource,
    manifest_key: &str,
    m: &Manifest,
    table: &str,
    date: NaiveDate,
    reasons: &mut Reasons,
    summary: &mut VerifySummary,
) {
    let listed = match raw.list(&partition_path(table, date)).await {
        Ok(l) => l,
        Err(e) => {
            reasons.push(format!("its raw day cannot be listed: {e}"));
            return;
        }
    };
    let sources: HashSet<&str> = m.sources.iter().map(|s| s.key.as_str()).collect();
    let missing: Vec<String> = listed
        .into_iter()
        .filter(|k| is_source_of_day(k, table, date) && !sources.contains(k.as_str()))
        .collect();
    if missing.is_empty() {
        return;
    }
    summary.behind_raw.push(BehindRaw {
        table: table.to_string(),
        date: date.to_string(),
        manifest: v.source.location(manifest_key),
        not_compacted: missing.len() as u64,
        raw_objects: missing
            .iter()
            .take(MAX_REASONS)
            .map(|k| raw.location(k))
            .collect(),
    });
}
