//! Baseline: the items a table held before its stream was archived, archived as
//! changes, and a coverage record that says so (the `baseline` command).
//!
//! - From a DynamoDB export ([`export`]): a full export becomes one baseline INSERT
//!   per item at the export time; an incremental export (gap repair) one change per
//!   line at its write time ([`convert`]). The manifests are checked before the data
//!   is trusted: each data file's MD5 and item count, the total, the table, the format,
//!   and that every data file lies in the export's own `data/` folder.
//! - From a parallel Scan ([`scan`]), for tables without point-in-time recovery.
//!
//! Rows go through the normal pipeline ([`crate::pipeline::Archiver`]), so names,
//! encodings and typed columns follow the usual rules; their representation (sequence
//! number `0`, `baseline-`/`export-` event IDs) is in [`crate::model::coverage`]. The
//! coverage record is written last, create-only, once every object is stored.
//!
//! Library API for callers that split an export into batches of data files (the
//! maintenance function): [`ExportRoot::read_summary`], [`ExportRoot::read_files`],
//! [`check_export`], [`ingest_export_files`] for each batch, then
//! [`coverage_for_export`] and [`record_coverage`] once every batch succeeded.

pub mod convert;
pub mod export;
pub mod scan;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::sync::Arc;

use serde::Serialize;

pub use convert::KeySchema;
pub use export::{ExportRoot, ExportSummary, ExportType, ManifestFileEntry};

use crate::encode::EncodedFile;
use crate::model::coverage::{
    self, CoverageExportType, CoverageKind, CoverageRecord, CoverageSource, CoverageWindow,
    COVERAGE_FORMAT,
};
use crate::model::ChangeRecord;
use crate::pipeline::Archiver;
use crate::schema::SchemaSet;
use crate::settings::{Settings, SettingsError};
use crate::sink::{ObjectSink, PutOutcome};

/// Why a baseline was not (completely) archived. Whatever the error, no coverage record
/// was written; objects already stored are correct, and a rerun completes the work.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// A manifest is not what the documented layout says.
    #[error("{file}: {reason}")]
    Manifest {
        /// `manifest-summary.json` or `manifest-files.json`.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The export cannot be read by this version (an Ion export).
    #[error("{0}")]
    Unsupported(String),
    /// The export is of another table than `--table`.
    #[error("the export is of table {export_table:?}, not {expected:?} (--table)")]
    TableMismatch {
        /// The table in the export's manifest.
        export_table: String,
        /// The table asked for.
        expected: String,
    },
    /// A manifest names a data file outside the export's own `data/` folder.
    #[error("manifest-files.json names data file {key:?}, which is refused: {reason}")]
    OutsideExport {
        /// The `dataFileS3Key`.
        key: String,
        /// Why.
        reason: String,
    },
    /// A data file's MD5 differs from the manifest's.
    #[error("{location}: MD5 {actual} differs from the manifest's {expected}: the file is not the one exported (changed or truncated)")]
    Checksum {
        /// The file.
        location: String,
        /// The manifest's base64 MD5.
        expected: String,
        /// The file's base64 MD5.
        actual: String,
    },
    /// Item counts disagree.
    #[error("{what}: {actual} items, but the manifest says {expected}")]
    Count {
        /// What was counted.
        what: String,
        /// The manifest's count.
        expected: u64,
        /// The count found.
        actual: u64,
    },
    /// Reading a file of the export failed (I/O, a truncated or corrupt gzip stream).
    #[error("reading {location}: {reason}")]
    Read {
        /// The file.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// A line of a data file is not a valid export line.
    #[error("{location} line {line}: {reason}")]
    Line {
        /// The file.
        location: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Objects could not be stored.
    #[error("{0}")]
    Write(String),
    /// The settings cannot be used.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A Scan was refused or failed, or DescribeTable failed.
    #[error("{0}")]
    Scan(String),
    /// A full export was given no key schema.
    #[error("a full export of table {0:?} needs the table's key attributes (--keys PK[,SK], or DescribeTable)")]
    NoKeySchema(String),
    /// Several data files failed; each error names its file.
    #[error("{} data files failed:\n  {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Files(Vec<BaselineError>),
}

/// What ingesting data files did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    /// Data files read.
    pub files: usize,
    /// Items (lines) read.
    pub item_count: u64,
    /// Changes archived (in objects written now or found present).
    pub change_count: u64,
    /// Objects written now.
    pub objects_written: usize,
    /// Objects found already present (a rerun).
    pub objects_already_present: usize,
    /// Keys of every object written or found present, relative to the archive root.
    pub objects: BTreeSet<String>,
}

impl IngestSummary {
    /// Adds another summary's counts and objects (one batch's, or one file's).
    pub fn merge(&mut self, other: IngestSummary) {
        self.files += other.files;
        self.item_count += other.item_count;
        self.change_count += other.change_count;
        self.objects_written += other.objects_written;
        self.objects_already_present += other.objects_already_present;
        self.objects.extend(other.objects);
    }
}

/// Checks an export's manifests against each other and against the table asked for,
/// before any data file is read: not of another table than `table`; the data files'
/// item counts add up to the summary's; every data file lies in the export's `data/`
/// folder. Returns each data file's path relative to the export's folder.
pub fn check_export(
    summary: &ExportSummary,
    files: &[ManifestFileEntry],
    table: Option<&str>,
) -> Result<Vec<String>, BaselineError> {
    if let Some(t) = table.filter(|t| *t != summary.table) {
        return Err(BaselineError::TableMismatch {
            export_table: summary.table.clone(),
            expected: t.to_string(),
        });
    }
    let total: u64 = files.iter().map(|f| f.item_count).sum();
    if total != summary.item_count {
        return Err(BaselineError::Count {
            what: "manifest-files.json (all data files)".to_string(),
            expected: summary.item_count,
            actual: total,
        });
    }
    let mut rels = Vec::with_capacity(files.len());
    let mut seen = BTreeSet::new();
    for f in files {
        let rel = export::resolve_data_file(summary, f)?;
        if !seen.insert(rel.clone()) {
            return Err(BaselineError::Manifest {
                file: "manifest-files.json".to_string(),
                reason: format!("data file {:?} is listed twice", f.data_file_s3_key),
            });
        }
        rels.push(rel);
    }
    Ok(rels)
}

/// Changes sent from a file's reader thread to its archiver at a time.
const CHUNK: usize = 512;

/// Data files read at the same time (each with a reader thread and an archiver whose
/// buffer holds at most `max_buffer_bytes`).
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
}

/// Archives the changes of some data files of an export (all of them, or a batch), into
/// `sink`, `concurrency` files at a time. Each file is checked (MD5 before it is read,
/// its item count after), read as a stream, and archived by an archiver of its own, so
/// a file's objects are the same whichever batch it is in and whatever runs beside it:
/// a rerun writes nothing new. Every file is tried; if any fails, the error names each
/// failed file (objects of the others are stored). `keys` is the table's key schema,
/// needed for a full export.
#[allow(clippy::too_many_arguments)]
pub async fn ingest_export_files(
    root: &ExportRoot,
    summary: &ExportSummary,
    files: &[ManifestFileEntry],
    keys: Option<&KeySchema>,
    sink: Arc<dyn ObjectSink>,
    settings: &Settings,
    schemas: &SchemaSet,
    concurrency: usize,
) -> Result<IngestSummary, BaselineError> {
    if summary.export_type == ExportType::Full && keys.is_none() {
        return Err(BaselineError::NoKeySchema(summary.table.clone()));
    }
    let rels = files
        .iter()
        .map(|f| export::resolve_data_file(summary, f))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(FileJob {
        root: root.clone(),
        summary: summary.clone(),
        keys: keys.cloned(),
        sink,
        settings: settings.clone(),
        schemas: schemas.clone(),
    });
    let mut pending = files.iter().cloned().zip(rels).enumerate();
    let mut results: Vec<Option<Result<IngestSummary, BaselineError>>> = Vec::new();
    results.resize_with(files.len(), || None);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < concurrency.max(1) {
            let Some((i, (entry, rel))) = pending.next() else {
                break;
            };
            let job = Arc::clone(&shared);
            tasks.spawn(async move { (i, job.ingest_file(&entry, &rel).await) });
        }
        match tasks.join_next().await {
            None => break,
            Some(Ok((i, r))) => results[i] = Some(r),
            Some(Err(e)) => return Err(BaselineError::Write(format!("a file task failed: {e}"))),
        }
    }
    let mut total = IngestSummary::default();
    let mut errors = Vec::new();
    for r in results.into_iter().flatten() {
        match r {
            Ok(s) => total.merge(s),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(total),
        1 => Err(errors.remove(0)),
        _ => Err(BaselineError::Files(errors)),
    }
}

/// What one data file's task needs.
struct FileJob {
    root: ExportRoot,
    summary: ExportSummary,
    keys: Option<KeySchema>,
    sink: Arc<dyn ObjectSink>,
    settings: Settings,
    schemas: SchemaSet,
}

impl FileJob {
    async fn ingest_file(
        &self,
        entry: &ManifestFileEntry,
        rel: &str,
    ) -> Result<IngestSummary, BaselineError> {
        let checked = self.root.fetch_checked(rel, &entry.md5_checksum).await?;
        let location = self.root.location(rel);
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Result<Vec<ChangeRecord>, BaselineError>>(4);
        let summary = self.summary.clone();
        let keys = self.keys.clone();
        let path = checked.path.clone();
        let loc = location.clone();
        let reader = tokio::task::spawn_blocking(move || {
            read_lines(&path, checked.bytes, &loc, &summary, keys.as_ref(), &tx);
        });
        let mut archiver =
            Archiver::with_schemas(&self.settings, Arc::clone(&self.sink), self.schemas.clone())?;
        let mut lines = 0u64;
        let mut failure = None;
        while let Some(msg) = rx.recv().await {
            match msg {
                Ok(changes) => {
                    for c in changes {
                        lines += 1;
                        archiver.push(c, &location).await;
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(rx);
        let _ = reader.await;
        // The temporary copy (if any) lives until the reader is done.
        drop(checked);
        if let Some(e) = failure {
            return Err(e);
        }
        if lines != entry.item_count {
            return Err(BaselineError::Count {
                what: location,
                expected: entry.item_count,
                actual: lines,
            });
        }
        let report = archiver.finish().await;
        if !report.failed_files.is_empty() || report.rejected > 0 {
            let mut msgs: Vec<String> = report
                .failed_files
                .iter()
                .map(|f| format!("{}: {}", f.location, f.error))
                .collect();
            msgs.extend(
                report
                    .rejected_records
                    .iter()
                    .map(|r| format!("{} line {}: {}", r.source, r.index + 1, r.reason)),
            );
            return Err(BaselineError::Write(format!(
                "{location}: not every change was stored: {}",
                msgs.join("; ")
            )));
        }
        let mut out = IngestSummary {
            files: 1,
            item_count: lines,
            ..IngestSummary::default()
        };
        let root = self.sink.location("");
        for f in &report.files {
            out.change_count += f.records as u64;
            match f.outcome {
                PutOutcome::Written => out.objects_written += 1,
                PutOutcome::AlreadyPresent => out.objects_already_present += 1,
            }
            let key = f.location.strip_prefix(&root).ok_or_else(|| {
                BaselineError::Write(format!("{} is not under {root}", f.location))
            })?;
            out.objects.insert(key.trim_start_matches('/').to_string());
        }
        Ok(out)
    }
}

/// Reads a data file's gzip JSON lines (every gzip member; an empty file has none),
/// converts each line and sends the changes in chunks; the first error is sent and
/// ends the reading.
fn read_lines(
    path: &std::path::Path,
    bytes: u64,
    location: &str,
    summary: &ExportSummary,
    keys: Option<&KeySchema>,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<ChangeRecord>, BaselineError>>,
) {
    let read_err = |e: std::io::Error| {
        Err(BaselineError::Read {
            location: location.to_string(),
            reason: e.to_string(),
        })
    };
    if bytes == 0 {
        return;
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.blocking_send(read_err(e));
            return;
        }
    };
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut reader = std::io::BufReader::with_capacity(1 << 20, gz);
    let converter = convert::Converter { summary, keys };
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut index = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(
                        e.kind(),
                        format!("the gzip stream ends early (a truncated file): {e}"),
                    )
                } else {
                    e
                };
                let _ = tx.blocking_send(read_err(e));
                return;
            }
        }
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        match converter.convert(line, index) {
            Ok(c) => chunk.push(c),
            Err(reason) => {
                let _ = tx.blocking_send(Err(BaselineError::Line {
                    location: location.to_string(),
                    line: index + 1,
                    reason,
                }));
                return;
            }
        }
        index += 1;
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if tx.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
}

/// The coverage record of an archived export: a baseline (complete from the export
/// time) for a full export, a repair (its window) for an incremental one.
pub fn coverage_for_export(summary: &ExportSummary, ingest: &IngestSummary) -> CoverageRecord {
    let (kind, export_type, complete_from, window) = match summary.export_type {
        ExportType::Full => (
            CoverageKind::Baseline,
            CoverageExportType::FullExport,
            Some(summary.export_time_ms),
            None,
        ),
        ExportType::Incremental => (
            CoverageKind::Repair,
            CoverageExportType::IncrementalExport,
            None,
            summary.window.map(|(from, to)| CoverageWindow { from, to }),
        ),
    };
    CoverageRecord {
        format: COVERAGE_FORMAT,
        table: summary.table.clone(),
        kind,
        source: CoverageSource::Export,
        export_arn: Some(summary.export_arn.clone()),
        export_type,
        complete_from,
        window,
        item_count: ingest.item_count,
        change_count: ingest.change_count,
        objects: ingest.objects.iter().cloned().collect(),
        recorded_at: chrono::Utc::now().timestamp_millis(),
    }
}

/// Writes a coverage record under [`coverage::coverage_key`] of its table, kind and
/// `id` (the export ID, or `scan-<start ms>`), create-only: a record already there
/// (from an earlier complete run of the same export) is kept and reported as
/// [`PutOutcome::AlreadyPresent`]. Call it only after every object it lists is stored.
pub async fn record_coverage(
    sink: &dyn ObjectSink,
    record: &CoverageRecord,
    id: &str,
) -> Result<(String, PutOutcome), BaselineError> {
    record.check().map_err(BaselineError::Write)?;
    let key = record.key(id).map_err(BaselineError::Write)?;
    let body = record.to_json().map_err(BaselineError::Write)?;
    let file = EncodedFile {
        key: key.clone(),
        body: bytes::Bytes::from(body),
        content_type: "application/json",
        content_encoding: None,
        records: 0,
    };
    let outcome = sink
        .put(&file)
        .await
        .map_err(|e| BaselineError::Write(e.to_string()))?;
    Ok((key, outcome))
}

/// What a `baseline` run did, as printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    /// The table.
    pub table: String,
    /// `export` or `scan`.
    pub source: CoverageSource,
    /// The export's ARN (exports).
    pub export_arn: Option<String>,
    /// `FULL_EXPORT`, `INCREMENTAL_EXPORT` or `SCAN`.
    pub export_type: CoverageExportType,
    /// Items (lines) read.
    pub items_read: u64,
    /// Changes archived.
    pub changes: u64,
    /// Objects written now.
    pub objects_written: usize,
    /// Objects found already present.
    pub objects_already_present: usize,
    /// The coverage record's key, relative to the archive root.
    pub coverage_key: String,
    /// Whether the coverage record was written now or already present.
    pub coverage: PutOutcome,
    /// Baselines: the time the table is complete from (ISO 8601).
    pub complete_from: Option<String>,
    /// Repairs: the window repaired (ISO 8601).
    pub window: Option<(String, String)>,
}

impl BaselineReport {
    fn new(
        record: &CoverageRecord,
        ingest: &IngestSummary,
        key: String,
        coverage: PutOutcome,
    ) -> Self {
        let t = |ms: i64| coverage::format_time_ms(ms).unwrap_or_default();
        BaselineReport {
            table: record.table.clone(),
            source: record.source,
            export_arn: record.export_arn.clone(),
            export_type: record.export_type,
            items_read: ingest.item_count,
            changes: ingest.change_count,
            objects_written: ingest.objects_written,
            objects_already_present: ingest.objects_already_present,
            coverage_key: key,
            coverage,
            complete_from: record.complete_from.map(t),
            window: record.window.map(|w| (t(w.from), t(w.to))),
        }
    }

    /// The report as text lines.
    pub fn render_text(&self) -> String {
        let mut s = format!(
            "{} of table {}: {} items read, {} changes archived; {} objects written, {} already present\n",
            match self.export_type {
                CoverageExportType::FullExport => "full export",
                CoverageExportType::IncrementalExport => "incremental export",
                CoverageExportType::Scan => "scan",
            },
            self.table,
            self.items_read,
            self.changes,
            self.objects_written,
            self.objects_already_present
        );
        if let Some(t) = &self.complete_from {
            s.push_str(&format!("complete from {t}\n"));
        }
        if let Some((from, to)) = &self.window {
            s.push_str(&format!("repaired window {from} to {to}\n"));
        }
        s.push_str(&format!(
            "coverage record {} ({})\n",
            self.coverage_key,
            match self.coverage {
                PutOutcome::Written => "written",
                PutOutcome::AlreadyPresent => "already present",
            }
        ));
        s
    }
}

/// What `baseline --export` is asked to do.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The table the export must be of (`--table`).
    pub table: Option<String>,
    /// The table's key schema (`--keys`); for a full export without it, DescribeTable
    /// is asked.
    pub keys: Option<KeySchema>,
    /// Data files read at the same time.
    pub concurrency: usize,
}

/// Archives a whole export: reads and checks its manifests, finds the key schema of a
/// full export (from `options.keys`, else DescribeTable), archives every data file,
/// then writes the coverage record.
pub async fn run_export(
    root: &ExportRoot,
    options: &ExportOptions,
    settings: &Settings,
    sink: Arc<dyn ObjectSink>,
) -> Result<BaselineReport, BaselineError> {
    let schemas = settings.schemas()?;
    settings.validate()?;
    let summary = root.read_summary().await?;
    let files = root.read_files().await?;
    check_export(&summary, &files, options.table.as_deref())?;
    let keys = match (summary.export_type, &options.keys) {
        (ExportType::Incremental, _) => None,
        (ExportType::Full, Some(k)) => Some(k.clone()),
        (ExportType::Full, None) => Some(scan::describe_key_schema(&summary.table).await?),
    };
    let ingest = ingest_export_files(
        root,
        &summary,
        &files,
        keys.as_ref(),
        Arc::clone(&sink),
        settings,
        &schemas,
        options.concurrency,
    )
    .await?;
    let record = coverage_for_export(&summary, &ingest);
    let (key, outcome) = record_coverage(sink.as_ref(), &record, &summary.export_id).await?;
    Ok(BaselineReport::new(&record, &ingest, key, outcome))
}

#[cfg(test)]
mod tests;
