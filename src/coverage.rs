//! Coverage: what the archive holds of each table, as `ddb-archiver coverage` prints it.
//!
//! Per table: the baseline it is complete from (the earliest baseline record's
//! `complete_from`; every baseline is listed), the gap repairs with their windows, and
//! the first and last stream change archived. The records are read and checked by
//! [`crate::archive::coverage`]. The stream changes are found without reading the whole
//! table: the earliest (then the latest) day partitions are read until one holds a
//! stream change; objects named `0-0-…` hold only baseline and export rows and are not
//! read, and rows with sequence number `"0"` are passed over.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde::Serialize;

use crate::archive::coverage::{complete_from, list, CoverageError, StoredCoverage};
use crate::archive::reader::{read_rows, Column, CorruptFile, Projection};
use crate::archive::source::{table_days, ArchiveSource, SourceError};
use crate::model::coverage::{format_time_ms, is_non_stream, CoverageKind, CoverageSource};
use crate::model::key::{partition_path, validate_table_name, ObjectKey};
use crate::model::order::cmp_stream;

/// Why the coverage cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum CoverageCommandError {
    /// `--table` is not a table name.
    #[error("invalid --table: {0}")]
    Table(String),
    /// Listing or reading the archive failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A coverage record is not trusted.
    #[error(transparent)]
    Record(#[from] CoverageError),
    /// An archive file cannot be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptFile),
}

/// A window of time, RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start.
    pub from: String,
    /// End.
    pub to: String,
}

/// One coverage record, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The record's key under the archive root.
    pub record: String,
    /// `export` or `scan`.
    pub source: &'static str,
    /// The export's ARN (`None` for a Scan).
    pub export_arn: Option<String>,
    /// `FULL_EXPORT`, `INCREMENTAL_EXPORT` or `SCAN`.
    pub export_type: String,
    /// Baseline: complete from this time, RFC 3339.
    pub complete_from: Option<String>,
    /// Repair: the window repaired.
    pub window: Option<Window>,
    /// Items read from the export or Scan.
    pub item_count: u64,
    /// Changes archived.
    pub change_count: u64,
    /// Objects written.
    pub objects: usize,
    /// When the record was written, RFC 3339.
    pub recorded_at: String,
}

impl Entry {
    fn of(c: &StoredCoverage) -> Self {
        let r = &c.record;
        let time = |ms: i64| format_time_ms(ms).unwrap_or_default();
        Entry {
            record: c.key.clone(),
            source: match r.source {
                CoverageSource::Export => "export",
                CoverageSource::Scan => "scan",
            },
            export_arn: r.export_arn.clone(),
            export_type: serde_json::to_value(r.export_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            complete_from: r.complete_from.map(time),
            window: r.window.map(|w| Window {
                from: time(w.from),
                to: time(w.to),
            }),
            item_count: r.item_count,
            change_count: r.change_count,
            objects: r.objects.len(),
            recorded_at: time(r.recorded_at),
        }
    }

    /// `full export <ARN>` or `scan (<record>)`.
    fn what(&self) -> String {
        match &self.export_arn {
            Some(arn) => format!(
                "{} {arn}",
                self.export_type.to_lowercase().replace('_', " ")
            ),
            None => format!("scan ({})", self.record),
        }
    }
}

/// A stream change archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamChange {
    /// Its `approximate_creation_time`, RFC 3339.
    pub time: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// Its event ID.
    pub event_id: String,
}

/// What the archive holds of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCoverage {
    /// The table.
    pub table: String,
    /// The table is complete from this time (the earliest baseline's), RFC 3339; `None`
    /// when no baseline was archived.
    pub complete_from: Option<String>,
    /// The baseline that gives it.
    pub baseline: Option<Entry>,
    /// Every baseline record, by key.
    pub baselines: Vec<Entry>,
    /// Every gap repair, by key.
    pub repairs: Vec<Entry>,
    /// The first stream change archived.
    pub first_stream_change: Option<StreamChange>,
    /// The last stream change archived.
    pub last_stream_change: Option<StreamChange>,
}

/// The coverage of every table asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageReport {
    /// By table name.
    pub tables: Vec<TableCoverage>,
}

impl CoverageReport {
    /// The human report.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        if self.tables.is_empty() {
            let _ = writeln!(s, "no tables archived");
        }
        for t in &self.tables {
            let _ = writeln!(s, "{}", t.table);
            match &t.baseline {
                Some(b) => {
                    let _ = writeln!(
                        s,
                        "  complete from {}: baseline {} ({} items, {} changes)",
                        b.complete_from.as_deref().unwrap_or(""),
                        b.what(),
                        b.item_count,
                        b.change_count
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "  NOT COMPLETE: no baseline archived; items never changed since archiving began are not in the archive (restore refuses without --allow-incomplete)"
                    );
                }
            }
            for b in t
                .baselines
                .iter()
                .filter(|b| Some(*b) != t.baseline.as_ref())
            {
                let _ = writeln!(
                    s,
                    "  also a baseline at {}: {} ({} changes)",
                    b.complete_from.as_deref().unwrap_or(""),
                    b.what(),
                    b.change_count
                );
            }
            for r in &t.repairs {
                let (from, to) = r
                    .window
                    .as_ref()
                    .map_or(("", ""), |w| (w.from.as_str(), w.to.as_str()));
                let _ = writeln!(
                    s,
                    "  repaired {from} to {to}: {} ({} changes)",
                    r.what(),
                    r.change_count
                );
            }
            match (&t.first_stream_change, &t.last_stream_change) {
                (Some(f), Some(l)) => {
                    let _ = writeln!(
                        s,
                        "  stream changes from {} (sequence number {}) to {} (sequence number {})",
                        f.time, f.sequence_number, l.time, l.sequence_number
                    );
                }
                _ => {
                    let _ = writeln!(s, "  no stream changes archived");
                }
            }
        }
        s
    }
}

/// Reads the coverage of `table` (or of every table: those with partitions and those
/// with coverage records) from `source`.
pub async fn coverage(
    source: &dyn ArchiveSource,
    table: Option<&str>,
) -> Result<CoverageReport, CoverageCommandError> {
    if let Some(t) = table {
        validate_table_name(t).map_err(CoverageCommandError::Table)?;
    }
    let records = list(source, table).await?;
    let mut tables: BTreeSet<String> = records.iter().map(|c| c.record.table.clone()).collect();
    match table {
        Some(t) => {
            tables.insert(t.to_string());
        }
        None => {
            for (t, _) in table_days(source, None, None, None).await? {
                tables.insert(t);
            }
        }
    }
    let mut report = CoverageReport::default();
    for t in tables {
        let mine: Vec<StoredCoverage> = records
            .iter()
            .filter(|c| c.record.table == t)
            .cloned()
            .collect();
        let days: Vec<chrono::NaiveDate> = table_days(source, Some(&t), None, None)
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let first = first_stream_change(source, &t, days.iter().copied(), Ordering::Less).await?;
        let last =
            first_stream_change(source, &t, days.iter().rev().copied(), Ordering::Greater).await?;
        let baseline = complete_from(&mine).map(Entry::of);
        report.tables.push(TableCoverage {
            table: t,
            complete_from: baseline.as_ref().and_then(|b| b.complete_from.clone()),
            baseline,
            baselines: mine
                .iter()
                .filter(|c| c.record.kind == CoverageKind::Baseline)
                .map(Entry::of)
                .collect(),
            repairs: mine
                .iter()
                .filter(|c| c.record.kind == CoverageKind::Repair)
                .map(Entry::of)
                .collect(),
            first_stream_change: first,
            last_stream_change: last,
        });
    }
    Ok(report)
}

const PROJECTION: Projection = Projection::of(&[
    Column::EventId,
    Column::SequenceNumber,
    Column::ApproximateCreationTime,
]);

/// The stream change that comes first in `want` order (`Less`: earliest, `Greater`:
/// latest) in the first of `days` that holds one.
async fn first_stream_change(
    source: &dyn ArchiveSource,
    table: &str,
    days: impl Iterator<Item = chrono::NaiveDate>,
    want: Ordering,
) -> Result<Option<StreamChange>, CoverageCommandError> {
    for day in days {
        let mut best: Option<(i64, String, String)> = None;
        for key in source.list(&partition_path(table, day)).await? {
            let Some(ObjectKey::Data(d)) = ObjectKey::parse(&key) else {
                continue;
            };
            if d.table != table
                || (is_non_stream(&d.first_sequence) && is_non_stream(&d.last_sequence))
            {
                continue;
            }
            let bytes = source.get(&key).await?;
            for row in read_rows(d.format, bytes, &source.location(&key), PROJECTION)? {
                if is_non_stream(&row.sequence_number) {
                    continue;
                }
                let better = best.as_ref().is_none_or(|(t, s, e)| {
                    cmp_stream(
                        (row.time_ms, &row.sequence_number, &row.event_id),
                        (*t, s, e),
                    ) == want
                });
                if better {
                    best = Some((row.time_ms, row.sequence_number, row.event_id));
                }
            }
        }
        if let Some((time_ms, sequence_number, event_id)) = best {
            return Ok(Some(StreamChange {
                time: format_time_ms(time_ms).unwrap_or_default(),
                sequence_number,
                event_id,
            }));
        }
    }
    Ok(None)
}
