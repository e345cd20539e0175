//! Compact: a table-day's many small raw objects (both formats, mixed) become a few
//! large Parquet files in a separate, derived *compacted layer*, rows ordered by
//! `approximate_creation_time` then sequence number (numerically), each `event_id`
//! once, with a [`manifest`] of what was compacted.
//!
//! - **Deterministic:** a day's compaction *version* names its set of raw objects (their
//!   keys, which name their content); file names and bytes follow from the sources. A
//!   rerun over the same sources finds the day's manifest at that version and does
//!   nothing; late arrivals make a new version, whose files are written before the
//!   manifest switches to it, and the old version's files are deleted after. Every row
//!   carries its version in `compaction_version`, so a reader that joins on the
//!   manifest's version never sees two versions at once.
//! - **Bounded memory:** rows go through [`crate::archive::order::Sorter`], which spills
//!   sorted runs to temporary files past its budget; a file is built in memory up to
//!   `max_file_bytes` and then stored. Peak memory is about
//!   `memory_budget + max_file_bytes` plus one Arrow batch, whatever the day holds.
//! - **The raw archive is never written to:** only the compacted layer's sink is.

pub mod manifest;

use chrono::NaiveDate;
use serde::Serialize;

use crate::archive::key::{partition_path, ObjectKey};
use crate::archive::order::{Change, Sorter};
use crate::archive::reader::{self, parse_line, Format, Projection};
use crate::archive::source::{table_days, ArchiveSource, SourceError};
use crate::decode::ChangeRecord;
use crate::encode::parquet::{writer_properties, Writer};
use crate::encode::EncodedFile;
use crate::schema::SchemaSet;
use crate::sink::ObjectSink;
use manifest::{EventIdDigest, Manifest, ManifestFile, ManifestSource};

/// The column of compacted files that holds their compaction version.
pub const VERSION_COLUMN: &str = "compaction_version";

/// Default largest compacted file, in bytes.
pub const DEFAULT_MAX_FILE_BYTES: usize = 256 * 1024 * 1024;

/// Encoded bytes of a row group before the next one starts (Athena reads row groups in
/// parallel; about 128 MiB suits it).
pub const ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

/// Most rows in one row group.
pub const ROW_GROUP_MAX_ROWS: usize = 1 << 20;

/// Default bytes of changes held in memory while sorting, before runs spill to disk.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// Changes handed to the Parquet writer at a time, in bytes of their texts.
const CHUNK_BYTES: usize = 1 << 20;

/// What to compact and how.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Only this table; every table under the source when `None`.
    pub table: Option<String>,
    /// First UTC day compacted (inclusive).
    pub from: Option<NaiveDate>,
    /// Last UTC day compacted (inclusive).
    pub to: Option<NaiveDate>,
    /// Tables with a schema also get its typed columns and `type_errors`.
    pub schemas: SchemaSet,
    /// A compacted file ends once it reaches about this many bytes.
    pub max_file_bytes: usize,
    /// Encoded bytes of a row group.
    pub row_group_bytes: usize,
    /// Bytes of changes held in memory while sorting.
    pub memory_budget: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            table: None,
            from: None,
            to: None,
            schemas: SchemaSet::default(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            row_group_bytes: ROW_GROUP_BYTES,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// What happened to one table-day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// A new version was written.
    Compacted,
    /// The manifest already names this set of sources: nothing to do.
    Unchanged,
    /// The day could not be compacted; nothing of it changed.
    Failed,
}

/// One table-day's compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayReport {
    /// The DynamoDB table.
    pub table: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// What happened.
    pub status: DayStatus,
    /// The day's compaction version.
    pub version: Option<String>,
    /// Raw objects of the day.
    pub sources: usize,
    /// Rows written.
    pub rows: u64,
    /// Copies of events dropped.
    pub duplicates_dropped: u64,
    /// Sorted runs spilled to temporary files.
    pub spilled_runs: usize,
    /// The compacted files (full locations).
    pub files: Vec<String>,
    /// Files of a superseded version deleted.
    pub superseded_deleted: usize,
    /// Objects in the day's partition that are not archive objects, not read.
    pub other_objects: Vec<String>,
    /// Why the day failed, naming the object.
    pub error: Option<String>,
}

/// What a compaction run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactSummary {
    /// Every table-day considered, in order.
    pub days: Vec<DayReport>,
}

impl CompactSummary {
    /// Days with this status.
    pub fn count(&self, status: DayStatus) -> usize {
        self.days.iter().filter(|d| d.status == status).count()
    }

    /// The human summary.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} table-days: {} compacted, {} unchanged, {} failed",
            self.days.len(),
            self.count(DayStatus::Compacted),
            self.count(DayStatus::Unchanged),
            self.count(DayStatus::Failed)
        );
        for d in &self.days {
            match d.status {
                DayStatus::Compacted => {
                    let _ = writeln!(
                        s,
                        "  {} {}: {} sources -> {} rows in {} files ({} duplicates dropped, version {})",
                        d.table,
                        d.date,
                        d.sources,
                        d.rows,
                        d.files.len(),
                        d.duplicates_dropped,
                        d.version.as_deref().unwrap_or("")
                    );
                }
                DayStatus::Unchanged => {
                    let _ = writeln!(s, "  {} {}: unchanged", d.table, d.date);
                }
                DayStatus::Failed => {
                    let _ = writeln!(
                        s,
                        "  FAILED {} {}: {}",
                        d.table,
                        d.date,
                        d.error.as_deref().unwrap_or("")
                    );
                }
            }
            for o in &d.other_objects {
                let _ = writeln!(s, "  not an archive object, not read: {o}");
            }
        }
        s
    }
}

/// The raw archive, the compacted layer (read and written) and the options.
pub struct Compactor<'a> {
    /// The raw archive.
    pub source: &'a dyn ArchiveSource,
    /// The compacted layer, for reading manifests.
    pub dest: &'a dyn ArchiveSource,
    /// The compacted layer, for writing.
    pub sink: &'a dyn ObjectSink,
    /// What to compact.
    pub options: &'a CompactOptions,
    /// Advanced by one per row read.
    pub progress: &'a indicatif::ProgressBar,
}

impl Compactor<'_> {
    /// Compacts every selected table-day. Only listing the raw archive can fail the
    /// run; a day that cannot be compacted is reported and the others go on.
    pub async fn run(&self) -> Result<CompactSummary, SourceError> {
        let days = table_days(
            self.source,
            self.options.table.as_deref(),
            self.options.from,
            self.options.to,
        )
        .await?;
        let mut summary = CompactSummary::default();
        for (table, date) in days {
            let report = self.day(&table, date).await;
            if let Some(report) = report {
                summary.days.push(report);
            }
        }
        Ok(summary)
    }

    /// Compacts one table-day; `None` when it holds no archive object.
    pub async fn day(&self, table: &str, date: NaiveDate) -> Option<DayReport> {
        let mut report = DayReport {
            table: table.to_string(),
            date: date.to_string(),
            status: DayStatus::Failed,
            version: None,
            sources: 0,
            rows: 0,
            duplicates_dropped: 0,
            spilled_runs: 0,
            files: Vec::new(),
            superseded_deleted: 0,
            other_objects: Vec::new(),
            error: None,
        };
        match self.try_day(table, date, &mut report).await {
            Ok(true) => Some(report),
            Ok(false) => None,
            Err(e) => {
                tracing::error!(table, %date, error = %e, "day not compacted");
                report.status = DayStatus::Failed;
                report.error = Some(e);
                report.files.clear();
                Some(report)
            }
        }
    }

    async fn try_day(
        &self,
        table: &str,
        date: NaiveDate,
        report: &mut DayReport,
    ) -> Result<bool, String> {
        let listed = self
            .source
            .list(&partition_path(table, date))
            .await
            .map_err(|e| e.to_string())?;
        let mut sources = Vec::new();
        for key in listed {
            match ObjectKey::parse(&key) {
                Some(ObjectKey::Data(_)) => sources.push(key),
                _ => report.other_objects.push(self.source.location(&key)),
            }
        }
        if sources.is_empty() {
            return Ok(!report.other_objects.is_empty());
        }
        report.sources = sources.len();
        let version = manifest::version_of(&sources);
        report.version = Some(version.clone());
        let manifest_key = ObjectKey::Manifest {
            table: table.to_string(),
            date,
        }
        .key();
        let previous = self.previous_manifest(&manifest_key).await?;
        if let Some(p) = previous.as_ref().filter(|p| p.version == version) {
            report.status = DayStatus::Unchanged;
            report.rows = p.rows;
            report.duplicates_dropped = p.duplicates_dropped;
            return Ok(true);
        }
        let (sorter, ids, manifest_sources) = self.read_sources(&sources).await?;
        report.spilled_runs = sorter.spilled_runs() + ids.spilled_runs();
        let files = self
            .write_files(table, date, &version, sorter, report)
            .await?;
        let mut digest = EventIdDigest::default();
        for c in ids.into_sorted().map_err(|e| e.to_string())? {
            digest.push(&c.map_err(|e| e.to_string())?.event_id);
        }
        if digest.count() != report.rows {
            return Err(format!(
                "{} distinct event IDs but {} distinct changes: an event ID appears with \
                 different times or sequence numbers",
                digest.count(),
                report.rows
            ));
        }
        let m = Manifest {
            format: manifest::FORMAT.to_string(),
            table: table.to_string(),
            date: date.to_string(),
            version: version.clone(),
            rows: report.rows,
            duplicates_dropped: report.duplicates_dropped,
            event_id_digest: digest.finish(),
            files,
            sources: manifest_sources,
            created_by: format!("ddb-archiver {}", env!("CARGO_PKG_VERSION")),
        };
        let mut body = serde_json::to_vec(&m).map_err(|e| e.to_string())?;
        body.push(b'\n');
        self.sink
            .replace(&EncodedFile {
                key: manifest_key,
                body,
                content_type: "application/json",
                content_encoding: None,
                records: 0,
            })
            .await
            .map_err(|e| e.to_string())?;
        if let Some(p) = previous {
            for f in p
                .files
                .iter()
                .filter(|f| !m.files.iter().any(|n| n.key == f.key))
            {
                self.sink.delete(&f.key).await.map_err(|e| e.to_string())?;
                report.superseded_deleted += 1;
            }
        }
        report.status = DayStatus::Compacted;
        Ok(true)
    }

    /// The day's current manifest, if there is a readable one.
    async fn previous_manifest(&self, key: &str) -> Result<Option<Manifest>, String> {
        if !self.dest.exists(key).await.map_err(|e| e.to_string())? {
            return Ok(None);
        }
        let bytes = self.dest.get(key).await.map_err(|e| e.to_string())?;
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                // A derived object: an unreadable one is replaced by the new version.
                tracing::warn!(manifest = %self.dest.location(key), error = %e, "unreadable manifest replaced");
                Ok(None)
            }
        }
    }

    /// Reads every source object into the sorters, with its size and checksum.
    async fn read_sources(
        &self,
        keys: &[String],
    ) -> Result<(Sorter, Sorter, Vec<ManifestSource>), String> {
        let budget = self.options.memory_budget;
        let mut sorter = Sorter::new(budget - budget / 8);
        let mut ids = Sorter::new(budget / 8);
        let mut sources = Vec::with_capacity(keys.len());
        for key in keys {
            let location = self.source.location(key);
            let bytes = self.source.get(key).await.map_err(|e| e.to_string())?;
            sources.push(ManifestSource {
                location: location.clone(),
                key: key.clone(),
                bytes: bytes.len() as u64,
                sha256: manifest::sha256_hex(&bytes),
            });
            let format =
                Format::of_key(key).ok_or_else(|| format!("{location}: not an archive file"))?;
            let rows = reader::rows(format, bytes, &location, Projection::ALL)
                .map_err(|e| e.to_string())?;
            for row in rows {
                let row = row.map_err(|e| e.to_string())?;
                let (time_ms, sequence_number, event_id) = (
                    row.time_ms,
                    row.sequence_number.clone(),
                    row.event_id.clone(),
                );
                let change = row
                    .into_change()
                    .map_err(|e| format!("corrupt archive file {location}: {e}"))?;
                let mut line = Vec::with_capacity(change.approx_bytes() + 256);
                crate::encode::jsonl::write_line(&mut line, &change);
                let line = String::from_utf8(line).map_err(|e| e.to_string())?;
                ids.push(Change {
                    group: event_id.clone(),
                    time_ms: 0,
                    sequence_number: String::new(),
                    event_id: event_id.clone(),
                    record: String::new(),
                })
                .map_err(|e| e.to_string())?;
                sorter
                    .push(Change {
                        group: String::new(),
                        time_ms,
                        sequence_number,
                        event_id,
                        record: line,
                    })
                    .map_err(|e| e.to_string())?;
                self.progress.inc(1);
            }
        }
        Ok((sorter, ids, sources))
    }

    /// Writes the sorted, deduplicated changes as the version's files.
    async fn write_files(
        &self,
        table: &str,
        date: NaiveDate,
        version: &str,
        sorter: Sorter,
        report: &mut DayReport,
    ) -> Result<Vec<ManifestFile>, String> {
        let mut out = FileSet {
            compactor: self,
            table,
            date,
            version,
            writer: None,
            part: 0,
            rows_in_file: 0,
            files: Vec::new(),
        };
        let mut sorted = sorter.into_sorted().map_err(|e| e.to_string())?;
        let mut chunk: Vec<ChangeRecord> = Vec::new();
        let mut chunk_bytes = 0;
        for change in sorted.by_ref() {
            let change = change.map_err(|e| e.to_string())?;
            let record = parse_line(&change.record, Projection::ALL)
                .and_then(reader::Row::into_change)
                .map_err(|e| format!("temporary sort file: {e}"))?;
            chunk_bytes += record.approx_bytes();
            chunk.push(record);
            report.rows += 1;
            // Small files get small chunks, so a file ends near its size limit.
            if chunk_bytes >= CHUNK_BYTES.min(self.options.max_file_bytes / 8) {
                out.write(&chunk).await?;
                chunk.clear();
                chunk_bytes = 0;
            }
        }
        out.write(&chunk).await?;
        report.duplicates_dropped = sorted.duplicates() as u64;
        out.finish_file().await?;
        report.files = out
            .files
            .iter()
            .map(|f| self.sink.location(&f.key))
            .collect();
        Ok(out.files)
    }
}

/// The files of one version being written.
struct FileSet<'c, 'a> {
    compactor: &'c Compactor<'a>,
    table: &'c str,
    date: NaiveDate,
    version: &'c str,
    writer: Option<Writer<Vec<u8>>>,
    part: u32,
    rows_in_file: u64,
    files: Vec<ManifestFile>,
}

impl FileSet<'_, '_> {
    async fn write(&mut self, chunk: &[ChangeRecord]) -> Result<(), String> {
        if chunk.is_empty() {
            return Ok(());
        }
        let options = self.compactor.options;
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let properties = writer_properties()
                    .into_builder()
                    .set_max_row_group_size(ROW_GROUP_MAX_ROWS)
                    .build();
                self.writer.insert(
                    Writer::new(
                        Vec::new(),
                        options.schemas.get(self.table),
                        Some((VERSION_COLUMN, self.version)),
                        properties,
                    )
                    .map_err(|e| e.to_string())?,
                )
            }
        };
        writer.write(chunk).map_err(|e| e.to_string())?;
        self.rows_in_file += chunk.len() as u64;
        if writer.row_group_size() >= options.row_group_bytes {
            writer.end_row_group().map_err(|e| e.to_string())?;
        }
        if writer.size() >= options.max_file_bytes {
            self.finish_file().await?;
        }
        Ok(())
    }

    async fn finish_file(&mut self) -> Result<(), String> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let body = writer.finish().map_err(|e| e.to_string())?;
        let key = ObjectKey::Compacted {
            table: self.table.to_string(),
            date: self.date,
            version: self.version.to_string(),
            part: self.part,
        }
        .key();
        self.part += 1;
        let file = ManifestFile {
            key: key.clone(),
            bytes: body.len() as u64,
            sha256: manifest::sha256_hex(&body),
            rows: std::mem::take(&mut self.rows_in_file),
        };
        let encoded = EncodedFile {
            key,
            body,
            content_type: Format::Parquet.content_type(),
            content_encoding: None,
            records: usize::try_from(file.rows).unwrap_or(usize::MAX),
        };
        self.compactor
            .sink
            .put(&encoded)
            .await
            .map_err(|e| e.to_string())?;
        self.files.push(file);
        Ok(())
    }
}
