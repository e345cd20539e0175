//! The maintenance function's baseline actions, for the baseline workflow (a Step
//! Functions Distributed Map over an export's data files):
//!
//! - `{"action":"baseline","export":"s3://…/AWSDynamoDB/<ExportId>/","files":[…]}`
//!   archives some data files of an export into the raw archive and leaves, for each,
//!   a note of the objects it made in the export's folder
//!   (`ddb-archiver-baseline/<digest>.json`, create-only);
//! - `{"action":"baseline-complete","export":…}` requires a note for every data file
//!   of the export, checks that every object they name is in the raw archive, and
//!   writes the coverage record.
//!
//! Everything is deterministic (object names, notes, the coverage record's key), so a
//! retried batch or a rerun writes nothing twice. The export's manifests are read and
//! checked on every call; the event only selects files, by `dataFileS3Key`.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::archive::source::ArchiveSource;
use crate::baseline::{
    self, BaselineError, ExportRoot, ExportSummary, ExportType, IngestSummary, KeySchema,
    ManifestFileEntry,
};
use crate::encode::EncodedFile;
use crate::model::Location;
use crate::schema::SchemaSet;
use crate::settings::Settings;
use crate::sink::{ObjectSink, PutOutcome};

/// Folder of the batch notes inside an export's folder.
pub const NOTES_DIR: &str = "ddb-archiver-baseline";
/// The largest note read back.
const NOTE_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Objects checked for presence at the same time.
const EXISTS_CONCURRENCY: usize = 32;
/// Version of the note format.
const NOTE_FORMAT: u32 = 1;

/// Where the baseline actions may read exports and where they archive.
pub struct BaselineTarget {
    /// Exports are read only under this location (`BASELINE_EXPORTS`).
    pub exports: Location,
    /// Archive settings: the raw archive as `dest`, format, KMS key, schemas.
    pub settings: Settings,
    /// The table schemas.
    pub schemas: SchemaSet,
    /// The raw archive, for writing.
    pub sink: Arc<dyn ObjectSink>,
}

/// A baseline event's fields (besides `action`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BaselineEvent {
    /// The export's folder, `s3://bucket/prefix/AWSDynamoDB/<ExportId>/` (or a directory).
    pub export: Option<String>,
    /// `baseline`: lines of `manifest-files.json`, or their `dataFileS3Key`s.
    #[serde(default)]
    pub files: Vec<serde_json::Value>,
    /// A full export's key attributes, `pk` or `pk,sk`; without it DescribeTable is asked.
    pub keys: Option<String>,
    /// The table the export must be of.
    pub table: Option<String>,
}

/// What a `baseline` batch did.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// The export's ID.
    pub export_id: String,
    /// Data files archived.
    pub files: usize,
    /// Items read.
    pub item_count: u64,
    /// Changes archived.
    pub change_count: u64,
    /// Objects written now.
    pub objects_written: usize,
    /// Objects found already present (a retry).
    pub objects_already_present: usize,
}

/// What `baseline-complete` did.
#[derive(Debug, Clone, Serialize)]
pub struct CompleteReport {
    /// The coverage record's key, relative to the archive root.
    pub coverage: String,
    /// Whether the record was written now or found present.
    pub outcome: PutOutcome,
    /// The table.
    pub table: String,
    /// Data files of the export.
    pub files: usize,
    /// Items read.
    pub item_count: u64,
    /// Changes archived.
    pub change_count: u64,
    /// Objects listed by the record.
    pub objects: usize,
}

/// Why a baseline action did not complete.
#[derive(Debug, thiserror::Error)]
pub enum BaselineActionError {
    /// The event or the function's settings do not allow the action.
    #[error("{0}")]
    Refused(String),
    /// Reading, checking or archiving the export failed.
    #[error("{export}: {source}")]
    Baseline {
        /// The export's folder.
        export: String,
        /// What failed.
        #[source]
        source: BaselineError,
    },
}

/// A note of one archived data file: what `baseline-complete` needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileNote {
    format: u32,
    /// The data file, relative to the export's folder (`data/<name>`).
    file: String,
    /// Its MD5 (base64), as in the manifest.
    md5: String,
    item_count: u64,
    change_count: u64,
    /// Keys of its objects, relative to the archive root, sorted.
    objects: Vec<String>,
}

/// The note of a data file, relative to the export's folder.
fn note_key(rel: &str) -> String {
    let digest = Sha256::digest(rel.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{NOTES_DIR}/{hex}.json")
}

/// Checks that `export` lies under `exports`: same bucket (or directory tree), a
/// longer prefix, no `.`/`..` segment.
fn export_location(exports: &Location, export: &str) -> Result<Location, BaselineActionError> {
    let refuse = |why: String| BaselineActionError::Refused(format!("export {export:?}: {why}"));
    let loc = Location::parse(export).map_err(|e| refuse(e.to_string()))?;
    match (exports, &loc) {
        (
            Location::S3 {
                bucket: eb,
                prefix: ep,
            },
            Location::S3 { bucket, prefix },
        ) => {
            if bucket != eb || !prefix.starts_with(ep.as_str()) || prefix == ep {
                return Err(refuse(format!(
                    "exports are read only under s3://{eb}/{ep} (BASELINE_EXPORTS)"
                )));
            }
            if prefix.split('/').any(|s| s == "." || s == "..") {
                return Err(refuse("a `.` or `..` segment".to_string()));
            }
        }
        (Location::Local(root), Location::Local(path)) => {
            let plain = path.components().all(|c| {
                !matches!(
                    c,
                    std::path::Component::ParentDir | std::path::Component::CurDir
                )
            });
            if !plain || !path.starts_with(root) || path == root {
                return Err(refuse(format!(
                    "exports are read only under {} (BASELINE_EXPORTS)",
                    root.display()
                )));
            }
        }
        _ => {
            return Err(refuse(format!(
                "exports are read only under {exports} (BASELINE_EXPORTS)"
            )))
        }
    }
    Ok(loc)
}

/// The `dataFileS3Key` an event's file names: a manifest line or the key itself.
fn event_file_key(v: &serde_json::Value) -> Result<&str, BaselineActionError> {
    match v {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Object(o) => {
            o.get("dataFileS3Key")
                .and_then(|k| k.as_str())
                .ok_or_else(|| {
                    BaselineActionError::Refused(format!(
                        "files: {v} is not a manifest-files.json line (no dataFileS3Key)"
                    ))
                })
        }
        _ => Err(BaselineActionError::Refused(format!(
            "files: {v} is neither a manifest-files.json line nor a dataFileS3Key"
        ))),
    }
}

/// An opened, checked export.
struct Export {
    location: Location,
    root: ExportRoot,
    summary: ExportSummary,
    files: Vec<ManifestFileEntry>,
    /// Each file's path relative to the export's folder, in manifest order.
    rels: Vec<String>,
}

impl BaselineTarget {
    async fn open(&self, event: &BaselineEvent) -> Result<Export, BaselineActionError> {
        let export = event.export.as_deref().ok_or_else(|| {
            BaselineActionError::Refused(
                "the event has no \"export\" (the export's folder)".to_string(),
            )
        })?;
        let location = export_location(&self.exports, export)?;
        let root = ExportRoot::open(&location).await;
        let fail = |source| BaselineActionError::Baseline {
            export: location.to_string(),
            source,
        };
        let summary = root.read_summary().await.map_err(fail)?;
        // The folder must be this export's own: `…/AWSDynamoDB/<ExportId>/`.
        let own = format!("AWSDynamoDB/{}", summary.export_id);
        if !export.trim_end_matches('/').ends_with(&own) {
            return Err(BaselineActionError::Refused(format!(
                "export {export:?}: its manifest is of export {}, whose folder ends in {own}/",
                summary.export_id
            )));
        }
        let files = root.read_files().await.map_err(fail)?;
        let rels =
            baseline::check_export(&summary, &files, event.table.as_deref()).map_err(fail)?;
        Ok(Export {
            location,
            root,
            summary,
            files,
            rels,
        })
    }

    /// `{"action":"baseline"}`: archives the event's data files and notes each one.
    pub async fn batch(&self, event: &BaselineEvent) -> Result<BatchReport, BaselineActionError> {
        let ex = self.open(event).await?;
        let fail = |source| BaselineActionError::Baseline {
            export: ex.location.to_string(),
            source,
        };
        if event.files.is_empty() {
            return Err(BaselineActionError::Refused(
                "the event names no data files (\"files\")".to_string(),
            ));
        }
        let mut chosen: Vec<(ManifestFileEntry, String)> = Vec::new();
        let mut seen = BTreeSet::new();
        for v in &event.files {
            let key = event_file_key(v)?;
            let Some(i) = ex.files.iter().position(|f| f.data_file_s3_key == key) else {
                return Err(BaselineActionError::Refused(format!(
                    "files: {key:?} is not a data file of export {} (manifest-files.json)",
                    ex.summary.export_id
                )));
            };
            if seen.insert(i) {
                chosen.push((ex.files[i].clone(), ex.rels[i].clone()));
            }
        }
        let keys = match (ex.summary.export_type, &event.keys) {
            (ExportType::Incremental, _) => None,
            (ExportType::Full, Some(k)) => Some(
                KeySchema::parse(k)
                    .map_err(|e| BaselineActionError::Refused(format!("keys: {e}")))?,
            ),
            (ExportType::Full, None) => Some(
                baseline::scan::describe_key_schema(&ex.summary.table)
                    .await
                    .map_err(fail)?,
            ),
        };
        let notes = crate::sink::open(&ex.location, self.settings.kms_key_id.as_deref())
            .await
            .map_err(|e| fail(BaselineError::Write(e.to_string())))?;
        let concurrency = baseline::default_concurrency();
        // One file at a time through the library (its objects do not depend on the
        // batch), `concurrency` files at once; each noted once it is archived.
        let results: Vec<Result<IngestSummary, BaselineError>> =
            futures_util::stream::iter(chosen.iter())
                .map(|(entry, rel)| {
                    let notes = Arc::clone(&notes);
                    let ex = &ex;
                    let keys = keys.as_ref();
                    async move {
                        let ingest = baseline::ingest_export_files(
                            &ex.root,
                            &ex.summary,
                            std::slice::from_ref(entry),
                            keys,
                            Arc::clone(&self.sink),
                            &self.settings,
                            &self.schemas,
                            1,
                        )
                        .await?;
                        let note = FileNote {
                            format: NOTE_FORMAT,
                            file: rel.clone(),
                            md5: entry.md5_checksum.clone(),
                            item_count: ingest.item_count,
                            change_count: ingest.change_count,
                            objects: ingest.objects.iter().cloned().collect(),
                        };
                        write_note(notes.as_ref(), &note).await?;
                        Ok(ingest)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        let mut total = IngestSummary::default();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(s) => total.merge(s),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => {}
            1 => return Err(fail(errors.remove(0))),
            _ => return Err(fail(BaselineError::Files(errors))),
        }
        tracing::info!(
            export = %ex.location,
            files = total.files,
            items = total.item_count,
            changes = total.change_count,
            written = total.objects_written,
            present = total.objects_already_present,
            "baseline batch archived"
        );
        Ok(BatchReport {
            export_id: ex.summary.export_id.clone(),
            files: total.files,
            item_count: total.item_count,
            change_count: total.change_count,
            objects_written: total.objects_written,
            objects_already_present: total.objects_already_present,
        })
    }

    /// `{"action":"baseline-complete"}`: checks every data file's note and objects, then
    /// writes the coverage record.
    pub async fn complete(
        &self,
        event: &BaselineEvent,
        raw: &dyn ArchiveSource,
    ) -> Result<CompleteReport, BaselineActionError> {
        let ex = self.open(event).await?;
        let fail = |source| BaselineActionError::Baseline {
            export: ex.location.to_string(),
            source,
        };
        let mut total = IngestSummary::default();
        let table_dir = format!("{}/", ex.summary.table);
        for (entry, rel) in ex.files.iter().zip(&ex.rels) {
            let key = note_key(rel);
            let bytes = ex
                .root
                .read_small(&key, NOTE_MAX_BYTES)
                .await
                .map_err(|e| {
                    BaselineActionError::Refused(format!(
                        "data file {rel} of export {} has not been archived: no note {key} ({e})",
                        ex.summary.export_id
                    ))
                })?;
            let bad = |why: String| {
                fail(BaselineError::Manifest {
                    file: ex.root.location(&key),
                    reason: why,
                })
            };
            let note: FileNote = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
            if note.format != NOTE_FORMAT
                || note.file != *rel
                || note.md5 != entry.md5_checksum
                || note.item_count != entry.item_count
            {
                return Err(bad(format!(
                    "the note is of {} (MD5 {}, {} items), not of {rel} (MD5 {}, {} items) as the manifest says",
                    note.file, note.md5, note.item_count, entry.md5_checksum, entry.item_count
                )));
            }
            for o in &note.objects {
                let plain = o.starts_with(&table_dir)
                    && !o.split('/').any(|s| s.is_empty() || s == "." || s == "..");
                if !plain {
                    return Err(bad(format!("object {o:?} is not a key under {table_dir}")));
                }
            }
            total.merge(IngestSummary {
                files: 1,
                item_count: note.item_count,
                change_count: note.change_count,
                objects: note.objects.into_iter().collect(),
                ..IngestSummary::default()
            });
        }
        let missing: Vec<String> = futures_util::stream::iter(total.objects.iter())
            .map(|k| async move { (k, raw.exists(k).await) })
            .buffer_unordered(EXISTS_CONCURRENCY)
            .filter_map(|(k, r)| async move {
                match r {
                    Ok(true) => None,
                    Ok(false) => Some(format!("{k}: missing")),
                    Err(e) => Some(format!("{k}: {e}")),
                }
            })
            .collect()
            .await;
        if !missing.is_empty() {
            return Err(BaselineActionError::Refused(format!(
                "export {}: {} objects of its notes are not in the archive: {}",
                ex.summary.export_id,
                missing.len(),
                missing.join("; ")
            )));
        }
        let record = baseline::coverage_for_export(&ex.summary, &total);
        let (coverage, outcome) =
            baseline::record_coverage(self.sink.as_ref(), &record, &ex.summary.export_id)
                .await
                .map_err(fail)?;
        tracing::info!(export = %ex.location, coverage, ?outcome, "baseline coverage recorded");
        Ok(CompleteReport {
            coverage,
            outcome,
            table: ex.summary.table.clone(),
            files: total.files,
            item_count: total.item_count,
            change_count: total.change_count,
            objects: total.objects.len(),
        })
    }
}

/// Leaves a note, create-only: a retry finds its own (identical) note present.
async fn write_note(sink: &dyn ObjectSink, note: &FileNote) -> Result<(), BaselineError> {
    let body = serde_json::to_vec(note).map_err(|e| BaselineError::Write(e.to_string()))?;
    let file = EncodedFile {
        key: note_key(&note.file),
        body: bytes::Bytes::from(body),
        content_type: "application/json",
        content_encoding: None,
        records: 0,
    };
    sink.put(&file)
        .await
        .map(|_| ())
        .map_err(|e| BaselineError::Write(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_read_only_under_the_configured_prefix() {
        let exports = Location::parse("s3://b/exports/").unwrap();
        assert!(export_location(&exports, "s3://b/exports/AWSDynamoDB/01-a/").is_ok());
        for bad in [
            "s3://other/exports/AWSDynamoDB/01-a/",
            "s3://b/elsewhere/AWSDynamoDB/01-a/",
            "s3://b/exports/",
            "s3://b/exports/../x/AWSDynamoDB/01-a/",
            "/tmp/exports/AWSDynamoDB/01-a",
        ] {
            assert!(
                matches!(
                    export_location(&exports, bad),
                    Err(BaselineActionError::Refused(_))
                ),
                "{bad}"
            );
        }
        let local = Location::parse("/data/exports").unwrap();
        assert!(export_location(&local, "/data/exports/AWSDynamoDB/01-a").is_ok());
        assert!(export_location(&local, "/data/exports/../etc/AWSDynamoDB/01-a").is_err());
        assert!(export_location(&local, "/data/other/AWSDynamoDB/01-a").is_err());
    }

    #[test]
    fn files_are_named_by_manifest_line_or_key() {
        let line = serde_json::json!({"itemCount": 1, "md5Checksum": "x", "dataFileS3Key": "p/AWSDynamoDB/1/data/a.json.gz"});
        assert_eq!(
            event_file_key(&line).unwrap(),
            "p/AWSDynamoDB/1/data/a.json.gz"
        );
        assert_eq!(event_file_key(&serde_json::json!("k")).unwrap(), "k");
        assert!(event_file_key(&serde_json::json!({"itemCount": 1})).is_err());
        assert!(event_file_key(&serde_json::json!(3)).is_err());
    }

    #[test]
    fn notes_are_named_by_their_file() {
        let a = note_key("data/a.json.gz");
        assert!(a.starts_with("ddb-archiver-baseline/") && a.ends_with(".json"));
        assert_eq!(a.len(), "ddb-archiver-baseline/".len() + 32 + 5);
        assert_eq!(a, note_key("data/a.json.gz"));
        assert_ne!(a, note_key("data/b.json.gz"));
    }
}
