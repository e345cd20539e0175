//! Summary: what a restore did, as text for people and as JSON (`--json`).

use serde::Serialize;

use super::rejected;
use crate::archive::coverage::StoredCoverage;
use crate::model::coverage::{format_time_ms, CoverageSource};

/// The baseline a restore found the table complete from.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BaselineUsed {
    /// `export` or `scan`.
    pub source: String,
    /// The full export's ARN (`None` for a Scan).
    pub export_arn: Option<String>,
    /// The table is complete from this time on, RFC 3339.
    pub complete_from: String,
    /// The coverage record's key.
    pub record: String,
}

impl BaselineUsed {
    /// What a stored baseline record says.
    pub fn of(c: &StoredCoverage) -> Self {
        BaselineUsed {
            source: match c.record.source {
                CoverageSource::Export => "export".into(),
                CoverageSource::Scan => "scan".into(),
            },
            export_arn: c.record.export_arn.clone(),
            complete_from: c
                .record
                .complete_from
                .and_then(format_time_ms)
                .unwrap_or_default(),
            record: c.key.clone(),
        }
    }

    /// `export <ARN>` or `scan <id>`, complete from when.
    pub fn describe(&self) -> String {
        let what = match &self.export_arn {
            Some(arn) => format!("full export {arn}"),
            None => format!("scan ({})", self.record),
        };
        format!("{what}, complete from {}", self.complete_from)
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RestoreSummary {
    /// T, RFC 3339.
    pub as_of: String,
    /// Nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// Partitions (days) read: those up to T's UTC day.
    pub partitions: usize,
    /// Archive files in partitions after T's day, not read.
    pub partitions_after_as_of: usize,
    /// Archive files read.
    pub files: usize,
    /// Files in the partitions that are not archive files, not read.
    pub other_files: Vec<String>,
    /// Records of the table (or of a table that cannot be told) at or before T (or of a
    /// time that cannot be read) under `_rejected/`: restored without with
    /// `--allow-rejected`, refused otherwise.
    pub rejected: rejected::RejectedRecords,
    /// The baseline the table is complete from (the earliest archived), if any.
    pub baseline: Option<BaselineUsed>,
    /// The archive is not complete at T (no baseline, or T before it) and
    /// `--allow-incomplete` restored it anyway: items never changed after archiving
    /// began (or between T and the baseline) are missing.
    pub incomplete: bool,
    /// Changes read from the files.
    pub changes_read: usize,
    /// Changes after T, or of other items than `--key`.
    pub changes_skipped: usize,
    /// Changes at or before T that were considered (duplicates included).
    pub changes_selected: usize,
    /// Copies of a change dropped by `event_id`.
    pub duplicates_dropped: usize,
    /// Sorted runs spilled to temporary files.
    pub spilled_runs: usize,
    /// Distinct item keys with a change at or before T.
    pub keys: usize,
    /// Items present at T (written, or to be written in a dry run).
    pub items: usize,
    /// Items absent at T because their latest change is a REMOVE.
    pub absent_deleted: usize,
    /// Items written into the target table.
    pub items_written: usize,
    /// `BatchWriteItem` requests sent, retries included.
    pub requests: usize,
    /// Requests sent again for unprocessed items.
    pub unprocessed_retries: usize,
    /// Requests throttled and sent again.
    pub throttles: usize,
    /// Requests sent again after a 5xx answer, timeout or connection failure.
    pub transient_retries: usize,
    /// Was the target table found and checked (a dry run checks it when it exists)?
    pub target_checked: bool,
    /// Where this run's import files are: its own sub-prefix `run-<token>/` of the
    /// `--import-format` location (`--import-format`).
    pub import_prefix: Option<String>,
    /// Import files written (`--import-format`).
    pub import_files: Vec<String>,
    /// Import files that were already there (a rerun).
    pub import_files_already_present: usize,
    /// The import started with `--start-import`.
    pub import_arn: Option<String>,
}

impl RestoreSummary {
    /// The human summary.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "state at {}: {} partitions, {} files, {} changes read, {} skipped (after T or other keys), {} duplicates dropped",
            self.as_of,
            self.partitions,
            self.files,
            self.changes_read,
            self.changes_skipped,
            self.duplicates_dropped
        );
        match &self.baseline {
            Some(b) => {
                let _ = writeln!(s, "baseline: {}", b.describe());
            }
            None => {
                let _ = writeln!(s, "baseline: none archived");
            }
        }
        if self.incomplete {
            let _ = writeln!(
                s,
                "INCOMPLETE (--allow-incomplete): the archive is not complete at T; items never changed since archiving began are missing"
            );
        }
        let _ = writeln!(
            s,
            "{} keys: {} items present, {} absent because deleted",
            self.keys, self.items, self.absent_deleted
        );
        if self.dry_run {
            let _ = writeln!(
                s,
                "dry run: nothing written{}",
                if self.target_checked {
                    " (target table checked)"
                } else {
                    ""
                }
            );
        } else if self.import_files.is_empty() {
            let _ = writeln!(
                s,
                "{} items written in {} requests ({} unprocessed retries, {} throttles, {} other retries)",
                self.items_written,
                self.requests,
                self.unprocessed_retries,
                self.throttles,
                self.transient_retries
            );
        } else {
            let _ = writeln!(
                s,
                "{} import files written ({} already present) under {}",
                self.import_files.len(),
                self.import_files_already_present,
                self.import_prefix.as_deref().unwrap_or("")
            );
        }
        if self.rejected.count > 0 {
            let _ = writeln!(s, "not in the state: {}", self.rejected.describe());
        }
        if let Some(arn) = &self.import_arn {
            let _ = writeln!(s, "import started: {arn}");
        }
        for f in &self.other_files {
            let _ = writeln!(s, "not an archive file, not read: {f}");
        }
        s
    }
}
