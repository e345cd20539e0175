//! Verify: re-reads every object of an archive — a raw archive, a compacted layer, or
//! both under one root — and checks that each still holds what its name and its
//! manifest say it holds.
//!
//! Objects are told apart by their keys ([`ObjectKey::parse`]):
//! - raw data objects and `_rejected/` objects are checked on their own ([`objects`]):
//!   every row reads, the digest in the name is the digest of the content, every
//!   column is what the verbatim `record` gives again ([`rows`]), and a raw object's
//!   bytes are what encoding its records again gives;
//! - every Parquet file's structure is checked as strictly as the readers users query
//!   with ([`parquet`]);
//! - compacted files are checked with their day's manifest ([`compacted`]): sizes,
//!   checksums, versions, order, each event once, the row digest, and, given the raw
//!   archive ([`Verifier::raw`]), the manifest's sources and the raw objects of the day
//!   that it does not list yet. A manifest is data: its keys are checked before use and
//!   its free-form locations are never opened.
//!
//! - coverage records (baselines and gap repairs, `ddb-archiver-coverage/`) are read and
//!   checked like the readers do, and each must be archived in full: every object it
//!   lists present and good, their rows totalling its `change_count` (when every one of
//!   them is within the days verified).
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
use crate::model::coverage::parse_coverage_key;
use crate::model::key::{partition_day, ObjectKey, LEGACY_MANIFESTS_DIR, MANIFESTS_DIR};
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
    /// A coverage record (baseline or gap repair).
    Coverage,
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
    /// Coverage records.
    pub coverage: u64,
}

impl ObjectCounts {
    fn add(&mut self, kind: ObjectKind) {
        match kind {
            ObjectKind::Raw => self.raw += 1,
            ObjectKind::Rejected => self.rejected += 1,
            ObjectKind::Compacted => self.compacted += 1,
            ObjectKind::Manifest => self.manifest += 1,
            ObjectKind::Coverage => self.coverage += 1,
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
    /// Raw objects whose bytes were compared with a fresh encoding of their records.
    pub reencoded: u64,
    /// Raw objects whose bytes were not compared with a fresh encoding, counted by
    /// why not.
    pub not_reencoded: BTreeMap<String, u64>,
    /// Sources named by manifests that were not read again, for want of the raw
    /// archive (`--raw`).
    pub sources_not_read: u64,
    /// Compacted days whose raw day holds data objects that their manifest does not
    /// list (late arrivals): not bad objects, a compaction to run.
    pub behind_raw: Vec<BehindRaw>,
    /// Coverage records whose objects are not all within `--from`/`--to`: their objects
    /// outside are checked present, not read, and their `change_count` is not checked.
    pub coverage_not_counted: Vec<String>,
    /// Compacted files of no published version (left by a failed or losing compaction
    /// run, deleted by compaction after its grace period; no reader reads them).
    pub unpublished: Vec<String>,
}

/// A compacted day behind the raw archive: raw data objects of the day arrived after
/// it was compacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BehindRaw {
    /// The table.
    pub table: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// The day's manifest.
    pub manifest: String,
    /// Raw data objects of the day not among the manifest's sources.
    pub not_compacted: u64,
    /// The first of them (at most [`MAX_REASONS`]).
    pub raw_objects: Vec<String>,
}

impl BehindRaw {
    /// What to do about it, in one line.
    pub fn message(&self) -> String {
        format!(
            "{} {} is behind the raw archive: {} sources not compacted; run compact --from {} --to {} covering it",
            self.table, self.date, self.not_compacted, self.date, self.date
        )
    }
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
            "checked {} raw objects, {} rejected objects, {} compacted files, {} manifests, {} coverage records; {} rows re-derived from their records",
            c.raw, c.rejected, c.compacted, c.manifest, c.coverage, self.rows
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
        if self.reencoded > 0 {
            let _ = writeln!(
                s,
                "{} raw objects compared with a fresh encoding of their records",
                self.reencoded
            );
        }
        for (why, n) in &self.not_reencoded {
            let _ = writeln!(
                s,
                "{n} raw objects not compared with a fresh encoding: {why}"
            );
        }
        if self.sources_not_read > 0 {
            let _ = writeln!(
                s,
                "{} sources named by manifests not read again (no --raw)",
                self.sources_not_read
            );
        }
        for c in &self.coverage_not_counted {
            let _ = writeln!(
                s,
                "coverage record {c}: objects outside --from/--to not read, its change_count not checked"
            );
        }
        for b in &self.behind_raw {
            let _ = writeln!(s, "{}", b.message());
        }
        for o in &self.unpublished {
            let _ = writeln!(
                s,
                "of no published version (left by a failed or losing compaction; deleted after the grace period): {o}"
            );
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
    /// The raw archive that compacted days were made from (`--raw`): each manifest's
    /// sources are read from it (only keys of the manifest's table and day), and its
    /// listing of each day shows late arrivals. Without it the sources are not read.
    pub raw: Option<&'a dyn ArchiveSource>,
    /// What to verify.
    pub options: &'a VerifyOptions,
    /// Advanced by one per object checked.
    pub progress: &'a indicatif::ProgressBar,
}

/// What checking one raw object found, for the coverage records that list it.
#[derive(Debug, Clone, Copy)]
struct RawResult {
    /// Rows read.
    rows: u64,
    /// Nothing is wrong with it.
    good: bool,
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
        let mut coverage = Vec::new();
        let listed = self.source.list("").await?;
        for key in listed.iter().cloned() {
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
                Some(
                    ObjectKey::Manifest { table, date } | ObjectKey::LegacyManifest { table, date },
                ) => {
                    // A legacy manifest counts only where no current one is.
                    if self.options.table_selected(&table) && self.options.day_selected(date) {
                        let day = days.entry((table, date)).or_default();
                        if day.manifest.is_none() || !key.starts_with(LEGACY_MANIFESTS_DIR) {
                            day.manifest = Some(key);
                        }
                    }
                }
                None if parse_coverage_key(&key).is_some() => {
                    if parse_coverage_key(&key)
                        .is_some_and(|(table, _, _)| self.options.table_selected(&table))
                    {
                        coverage.push(key);
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
            (raw.len()
                + rejected.len()
                + coverage.len()
                + days.values().map(|d| d.files.len() + 1).sum::<usize>()) as u64,
        );
        let mut raw_checked: BTreeMap<String, RawResult> = BTreeMap::new();
        for (key, name) in &raw {
            let result = self.check_raw_object(key, name, &mut summary).await;
            raw_checked.insert(key.clone(), result);
        }
        let present: std::collections::HashSet<&str> = listed.iter().map(String::as_str).collect();
        for key in &coverage {
            self.check_coverage(key, &present, &raw_checked, &mut summary)
                .await;
        }
        for (key, digest) in &rejected {
            let mut reasons = Reasons::default();
            if let Some(bytes) = self.read(key, &mut reasons, &mut summary).await {
                objects::check_rejected(digest, &bytes, &self.source.location(key), &mut reasons);
            }
            self.report(key, ObjectKind::Rejected, reasons, &mut summary);
        }
        for ((table, date), day) in &days {
            compacted::check_day(self, table, *date, day, &mut summary).await;
        }
        Ok(summary)
    }

    /// Checks one raw data object, counts and reports it.
    async fn check_raw_object(
        &self,
        key: &str,
        name: &crate::model::key::DataKey,
        summary: &mut VerifySummary,
    ) -> RawResult {
        let mut reasons = Reasons::default();
        let mut rows = 0;
        if let Some(bytes) = self.read(key, &mut reasons, summary).await {
            let checked = objects::check_raw(
                name,
                bytes,
                &self.source.location(key),
                self.options.schemas.as_ref(),
                &mut reasons,
            );
            rows = checked.rows;
            summary.rows += checked.rows;
            match checked.reencoding {
                objects::Reencoding::Compared => summary.reencoded += 1,
                objects::Reencoding::NotCompared(why) => {
                    *summary.not_reencoded.entry(why).or_default() += 1
                }
                objects::Reencoding::AlreadyBad => {}
            }
        }
        let good = reasons.is_empty();
        self.report(key, ObjectKind::Raw, reasons, summary);
        RawResult { rows, good }
    }

    /// Checks a coverage record: it reads and checks ([`crate::archive::coverage::read`]),
    /// every object it lists is present and verifies, and their rows total its
    /// `change_count`: an export not archived in full is reported. Objects outside
    /// `--from`/`--to` are checked present only, and then the count is not checked
    /// (listed in [`VerifySummary::coverage_not_counted`]).
    async fn check_coverage(
        &self,
        key: &str,
        present: &std::collections::HashSet<&str>,
        raw_checked: &BTreeMap<String, RawResult>,
        summary: &mut VerifySummary,
    ) {
        let mut reasons = Reasons::default();
        match crate::archive::coverage::read(self.source, key).await {
            Err(e) => reasons.push(match e {
                crate::archive::coverage::CoverageError::Bad { reason, .. } => reason,
                other => other.to_string(),
            }),
            Ok(stored) => {
                let (mut rows, mut missing, mut outside) = (0u64, 0usize, 0usize);
                for object in &stored.record.objects {
                    if !present.contains(object.as_str()) {
                        missing += 1;
                        reasons.push(format!("it lists {object}, which is missing"));
                        continue;
                    }
                    match raw_checked.get(object) {
                        Some(r) => {
                            if !r.good {
                                reasons.push(format!("it lists {object}, which is bad"));
                            }
                            rows += r.rows;
                        }
                        None => outside += 1,
                    }
                }
                if missing > 0 {
                    reasons.push(format!(
                        "{missing} of its {} objects are missing: the export is not archived in full",
                        stored.record.objects.len()
                    ));
                } else if outside > 0 {
                    summary.coverage_not_counted.push(self.source.location(key));
                } else if rows != stored.record.change_count {
                    reasons.push(format!(
                        "its objects hold {rows} rows, its change_count is {}: the export is not archived in full",
                        stored.record.change_count
                    ));
                }
            }
        }
        self.report(key, ObjectKind::Coverage, reasons, summary);
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
        self.read_at_most(key, None, reasons, summary).await
    }

    /// The object's bytes as [`Verifier::read`] gives them; with `max_bytes`, an
    /// object over it is refused unread (a manifest the size of a disk is not one).
    pub(crate) async fn read_at_most(
        &self,
        key: &str,
        max_bytes: Option<u64>,
        reasons: &mut Reasons,
        summary: &mut VerifySummary,
    ) -> Option<Vec<u8>> {
        let got = match max_bytes {
            None => self.source.get(key).await,
            Some(max) => match self.source.get_tagged(key, max).await {
                Ok(Some((bytes, _tag))) => Ok(bytes),
                Ok(None) => Err(SourceError {
                    location: self.source.location(key),
                    message: "it is gone".to_string(),
                }),
                Err(e) => Err(e),
            },
        };
        let bytes = match got {
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
