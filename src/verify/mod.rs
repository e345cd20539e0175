//! Verify: re-reads every object of an archive — a raw archive, a compacted layer, or
//! both under one root — and checks that each still holds what its name and its
//! manifest say it holds.
//!
//! Objects are told apart by their keys ([`ObjectKey::parse`]):
//! - raw data objects and `_rejected/` objects are checked on their own ([`objects`]):
//!   every row reads, the digest in the name is the digest of the content, every
//!   column is what the verbatim `record` gives again ([`rows`]);
//! - compacted files are checked with their day's manifest ([`compacted`]): sizes,
//!   checksums, versions, order, each event once, and the manifest's sources against
//!   the raw archive they came from.
//!
//! On S3 every object's bytes are also compared with the SHA-256 checksum S3 stored at
//! upload. A problem never stops the run: each bad object is reported with its reasons.

pub mod compacted;
pub mod objects;
pub mod parquet;
pub mod rows;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::archive::source::{ArchiveSource, SourceError, StoredChecksum};
use crate::model::key::{partition_day, ObjectKey, MANIFESTS_DIR};
use crate::schema::SchemaSet;

/// Most reasons kept for one object; past it the count of the others is given.
pub const MAX_REASONS: usize = 20;

/// Default bytes of event IDs held in memory while a compacted day is checked, before
/// sorted runs spill to temporary files.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Only this table (not applied to `_rejected/`).
    pub table: Option<String>,
    /// First UTC day verified (inclusive); `_rejected/` by its processing date.
    pub from: Option<NaiveDate>,
    /// Last UTC day verified (inclusive).
    pub to: Option<NaiveDate>,
    /// With schemas, the typed columns of Parquet files are checked too.
    pub schemas: Option<SchemaSet>,
    /// Bytes of event IDs held in memory per compacted day.
    pub memory_budget: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            table: None,
            from: None,
            to: None,
            schemas: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl VerifyOptions {
    fn day_selected(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }

    fn table_selected(&self, table: &str) -> bool {
        self.table.as_deref().is_none_or(|t| t == table)
    }
}

/// The kinds of archive objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A raw data object (`.parquet` or `.json.gz`).
    Raw,
    /// A `_rejected/` object.
    Rejected,
    /// A compacted file.
    Compacted,
    /// A compacted day's manifest.
    Manifest,
}

/// Objects checked, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectCounts {
    /// Raw data objects.
    pub raw: u64,
    /// `_rejected/` objects.
    pub rejected: u64,
    /// Compacted files.
    pub compacted: u64,
    /// Manifests.
    pub manifest: u64,
}

impl ObjectCounts {
    fn add(&mut self, kind: ObjectKind) {
        match kind {
            ObjectKind::Raw => self.raw += 1,
            ObjectKind::Rejected => self.rejected += 1,
            ObjectKind::Compacted => self.compacted += 1,
            ObjectKind::Manifest => self.manifest += 1,
        }
    }
}

/// An object that does not hold what it should.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadObject {
    /// Its full location (a path or an `s3://` URL).
    pub location: String,
    /// What kind of object it is.
    pub kind: ObjectKind,
    /// What is wrong, most specific first.
    pub reasons: Vec<String>,
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifySummary {
    /// Objects checked, by kind.
    pub checked: ObjectCounts,
    /// Rows read and re-derived from their records.
    pub rows: u64,
    /// Objects whose bytes were compared with the checksum stored at upload.
    pub checksums_compared: u64,
    /// Whether typed columns were checked (`--schemas`).
    pub typed_columns_checked: bool,
    /// Bad objects, with what is wrong.
    pub bad: Vec<BadObject>,
    /// Objects whose keys the archiver does not write: listed, not read.
    pub unexpected: Vec<String>,
    /// Multipart objects whose stored checksum could not be recomputed (parts of
    /// another size than the archiver's).
    pub checksums_not_compared: Vec<String>,
}

impl VerifySummary {
    /// Does everything hold?
    pub fn ok(&self) -> bool {
        self.bad.is_empty()
    }

    /// The human summary.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let c = &self.checked;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "checked {} raw objects, {} rejected objects, {} compacted files, {} manifests; {} rows re-derived from their records",
            c.raw, c.rejected, c.compacted, c.manifest, self.rows
        );
        if self.checksums_compared > 0 {
            let _ = writeln!(
                s,
                "{} objects compared with the SHA-256 checksum stored at upload",
                self.checksums_compared
            );
        }
        if !self.typed_columns_checked {
            let _ = writeln!(s, "typed columns not checked (no --schemas)");
        }
        for o in &self.unexpected {
            let _ = writeln!(s, "not an archive object, not read: {o}");
        }
        for o in &self.checksums_not_compared {
            let _ = writeln!(
                s,
                "stored multipart checksum not compared (unknown part size): {o}"
            );
        }
        if self.ok() {
            let _ = writeln!(s, "OK: every object holds what its name says");
        } else {
            let _ = writeln!(s, "{} BAD objects:", self.bad.len());
            for b in &self.bad {
                let _ = writeln!(s, "BAD {}", b.location);
                for r in &b.reasons {
                    let _ = writeln!(s, "  - {r}");
                }
            }
        }
        s
    }
}

/// What is wrong with one object, collected as it is checked.
#[derive(Debug, Default)]
pub struct Reasons {
    list: Vec<String>,
    more: usize,
}

impl Reasons {
    /// Adds a reason; past [`MAX_REASONS`] only counts it.
    pub fn push(&mut self, reason: impl Into<String>) {
        if self.list.len() < MAX_REASONS {
            self.list.push(reason.into());
        } else {
            self.more += 1;
        }
    }

    /// Is nothing wrong so far?
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list.push(format!("and {} more", self.more));
        }
        self.list
    }
}

/// The archive being verified and how.
pub struct Verifier<'a> {
    /// The archive (raw, compacted, or both under one root).
    pub source: &'a dyn ArchiveSource,
    /// What to verify.
    pub options: &'a VerifyOptions,
    /// Advanced by one per object checked.
    pub progress: &'a indicatif::ProgressBar,
}

/// The objects of one compacted table-day.
#[derive(Debug, Default)]
pub(crate) struct CompactedDay {
    pub(crate) manifest: Option<String>,
    pub(crate) files: Vec<String>,
}

impl Verifier<'_> {
    /// Verifies every selected object. Only listing the archive can fail the run.
    pub async fn run(&self) -> Result<VerifySummary, SourceError> {
        let mut summary = VerifySummary {
            typed_columns_checked: self.options.schemas.is_some(),
            ..VerifySummary::default()
        };
        let mut raw = Vec::new();
        let mut rejected = Vec::new();
        let mut days: BTreeMap<(String, NaiveDate), CompactedDay> = BTreeMap::new();
        for key in self.source.list("").await? {
            match ObjectKey::parse(&key) {
                Some(ObjectKey::Data(d)) => {
                    if self.options.table_selected(&d.table) && self.options.day_selected(d.date) {
                        raw.push((key, d));
                    }
                }
                Some(ObjectKey::Rejected { date, digest }) => {
                    if self.options.day_selected(date) {
                        rejected.push((key, digest));
                    }
                }
                Some(ObjectKey::Compacted { table, date, .. }) => {
                    if self.options.table_selected(&table) && self.options.day_selected(date) {
                        days.entry((table, date)).or_default().files.push(key);
                    }
                }
                Some(ObjectKey::Manifest { table, date }) => {
                    if self.options.table_selected(&table) && self.options.day_selected(date) {
                        days.entry((table, date)).or_default().manifest = Some(key);
                    }
                }
                None => {
                    if self.unknown_selected(&key) {
                        summary.unexpected.push(self.source.location(&key));
                    }
                }
            }
        }
        self.progress.set_length(
            (raw.len() + rejected.len() + days.values().map(|d| d.files.len() + 1).sum::<usize>())
                as u64,
        );
        for (key, name) in &raw {
            let mut reasons = Reasons::default();
            if let Some(bytes) = self.read(key, &mut reasons, &mut summary).await {
                summary.rows += objects::check_raw(
                    name,
                    bytes,
                    &self.source.location(key),
                    self.options.schemas.as_ref(),
                    &mut reasons,
                );
            }
            self.report(key, ObjectKind::Raw, reasons, &mut summary);
        }
        for (key, digest) in &rejected {
            let mut reasons = Reasons::default();
            if let Some(bytes) = self.read(key, &mut reasons, &mut summary).await {
                objects::check_rejected(digest, &bytes, &self.source.location(key), &mut reasons);
            }
            self.report(key, ObjectKind::Rejected, reasons, &mut summary);
        }
        let mut sources = compacted::SourceCache::default();
        for ((table, date), day) in &days {
            compacted::check_day(self, table, *date, day, &mut sources, &mut summary).await;
        }
        Ok(summary)
    }

    /// Is an object of an unknown name within the table and day filters?
    fn unknown_selected(&self, key: &str) -> bool {
        let in_table = match &self.options.table {
            None => true,
            Some(t) => {
                key.starts_with(&format!("{t}/"))
                    || key.starts_with(&format!("{MANIFESTS_DIR}/{t}/"))
            }
        };
        in_table && partition_day(key).is_none_or(|d| self.options.day_selected(d))
    }

    /// The object's bytes, compared with the checksum stored at upload; `None` (with
    /// the reason) when it cannot be read.
    pub(crate) async fn read(
        &self,
        key: &str,
        reasons: &mut Reasons,
        summary: &mut VerifySummary,
    ) -> Option<Vec<u8>> {
        let bytes = match self.source.get(key).await {
            Ok(b) => b,
            // The S3 client itself compares the body with the stored checksum when S3
            // sends one, and fails the read when they differ.
            Err(e) if e.message.contains("checksum mismatch") => {
                summary.checksums_compared += 1;
                reasons.push(format!(
                    "its bytes do not match the SHA-256 checksum stored at upload ({})",
                    e.message
                ));
                return None;
            }
            Err(e) => {
                reasons.push(format!("cannot be read: {}", e.message));
                return None;
            }
        };
        match self.source.stored_checksum(key).await {
            Ok(StoredChecksum::NotKept) => {}
            Ok(stored) => match objects::compare_checksum(&stored, &bytes) {
                Some(Ok(())) => summary.checksums_compared += 1,
                Some(Err(why)) => {
                    summary.checksums_compared += 1;
                    reasons.push(why);
                }
                None => summary
                    .checksums_not_compared
                    .push(self.source.location(key)),
            },
            Err(e) => reasons.push(format!("stored checksum cannot be read: {}", e.message)),
        }
        Some(bytes)
    }

    /// Counts a checked object and records it as bad if anything is wrong.
    pub(crate) fn report(
        &self,
        key: &str,
        kind: ObjectKind,
        reasons: Reasons,
        summary: &mut VerifySummary,
    ) {
        summary.checked.add(kind);
        self.progress.inc(1);
        if !reasons.is_empty() {
            let location = self.source.location(key);
            let reasons = reasons.finish();
            tracing::debug!(object = %location, ?reasons, "bad object");
            summary.bad.push(BadObject {
                location,
                kind,
                reasons,
            });
        }
    }
}
