//! Report: what an archive run did — records per table and partition, files written,
//! files that failed, and every rejected record with its reason — for people (the CLI's
//! summary), scripts (`--json`) and the Lambda response (`batchItemFailures`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sink::PutOutcome;

/// One object the run stored (or found already stored).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileReport {
    /// Full location (path or `s3://` URL).
    pub location: String,
    /// Records in the object.
    pub records: usize,
    /// Object size in bytes.
    pub bytes: usize,
    /// Whether it was written now or already present.
    pub outcome: PutOutcome,
}

/// One object that could not be stored: its records are not archived.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedFile {
    /// Full location the object was going to.
    pub location: String,
    /// Records in the object.
    pub records: usize,
    /// The earliest record of the object, in stream order: (position in its input,
    /// sequence number).
    pub first_index: usize,
    /// Sequence number of that earliest record.
    pub first_sequence_number: String,
    /// Why it failed.
    pub error: String,
}

/// A record that was not archived as a change but kept under `_rejected/`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectedReport {
    /// The input it came from.
    pub source: String,
    /// Position in its document's `Records` array.
    pub index: usize,
    /// `eventID`, when readable.
    pub event_id: Option<String>,
    /// Sequence number, when readable.
    pub sequence_number: Option<String>,
    /// What was wrong.
    pub reason: String,
}

/// An input that could not be read at all (nothing from it was archived).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InputError {
    /// The input's name.
    pub source: String,
    /// The error, naming the position.
    pub error: String,
}

/// Everything an archive run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Records read from valid inputs.
    pub records: usize,
    /// Records archived (stored, or found already stored).
    pub archived: usize,
    /// Records rejected and kept under `_rejected/`.
    pub rejected: usize,
    /// Archived records per table, then per partition path.
    pub partitions: BTreeMap<String, BTreeMap<String, usize>>,
    /// Objects stored or already present (data and `_rejected/`).
    pub files: Vec<FileReport>,
    /// Objects that could not be stored.
    pub failed_files: Vec<FailedFile>,
    /// Rejected records with their reasons.
    pub rejected_records: Vec<RejectedReport>,
    /// Inputs that were not valid event documents.
    pub input_errors: Vec<InputError>,
    /// The oldest `ApproximateCreationDateTime` among the changes read, in milliseconds
    /// since the Unix epoch (the stream lag is the time since). Not in the JSON summary.
    #[serde(skip)]
    pub oldest_change_ms: Option<i64>,
    /// Wall-clock time spent storing files. Not in the JSON summary.
    #[serde(skip)]
    pub write_time: std::time::Duration,
}

impl Summary {
    /// Did every record get archived, with nothing rejected or failed?
    pub fn is_clean(&self) -> bool {
        self.rejected == 0 && self.failed_files.is_empty() && self.input_errors.is_empty()
    }

    /// Was anything lost: a failed object or an unreadable input?
    pub fn has_fatal(&self) -> bool {
        !self.failed_files.is_empty() || !self.input_errors.is_empty()
    }

    /// The human summary printed by the CLI.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} records: {} archived, {} rejected",
            self.records, self.archived, self.rejected
        );
        for (table, parts) in &self.partitions {
            let total: usize = parts.values().sum();
            let _ = writeln!(s, "table {table}: {total} records");
            for (path, n) in parts {
                let _ = writeln!(s, "  {path}  {n}");
            }
        }
        let written = self
            .files
            .iter()
            .filter(|f| f.outcome == PutOutcome::Written)
            .count();
        let _ = writeln!(
            s,
            "{} files ({} written, {} already present)",
            self.files.len(),
            written,
            self.files.len() - written
        );
        for f in &self.files {
            let _ = writeln!(
                s,
                "  {}  {} records, {} bytes",
                f.location, f.records, f.bytes
            );
        }
        for r in &self.rejected_records {
            let _ = writeln!(
                s,
                "rejected: {} record {} (event {}, sequence {}): {}",
                r.source,
                r.index,
                r.event_id.as_deref().unwrap_or("?"),
                r.sequence_number.as_deref().unwrap_or("?"),
                r.reason
            );
        }
        for f in &self.failed_files {
            let _ = writeln!(
                s,
                "FAILED: {} ({} records from sequence {}): {}",
                f.location, f.records, f.first_sequence_number, f.error
            );
        }
        for e in &self.input_errors {
            let _ = writeln!(s, "ERROR: {}", e.error);
        }
        s
    }
}
