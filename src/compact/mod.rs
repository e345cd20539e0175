//! Compact: a table-day's many small raw objects (both formats, mixed) become a few
//! large Parquet files in a separate, derived *compacted layer*, rows ordered by
//! `approximate_creation_time` then sequence number (numerically), each `event_id`
//! once, with a [manifest](crate::archive::manifest) of what was compacted.
//!
//! - **Deterministic:** a day's compaction *version* names its set of raw objects (their
//!   keys, which name their content); file names and bytes follow from the sources. A
//!   rerun over the same sources finds the day's manifest at that version and does
//!   nothing; late arrivals make a new version, whose files are written before the
//!   manifest switches to it, and the old version's files are deleted after. Every row
//!   carries its version in `compaction_version`, so a reader that joins on the
//!   manifest's version never sees two versions at once.
//! - **Bounded memory and every core:** sources are [`read`] on one thread per core into
//!   Arrow batches, which [`sort`] spills as sorted runs to temporary files past the
//!   memory budget; the runs are merged on a thread of their own and [written](mod@write)
//!   with each row group's columns encoded on several threads; each file is streamed to
//!   the sink in pieces as it is written, never held whole. Peak memory is about
//!   `memory_budget` plus a row group being encoded, one batch (about 1 MiB) per spilled
//!   run, the pieces on their way and a few fetched sources, whatever the day holds.
//! - **The raw archive is never written to:** only the compacted layer's sink is.

pub mod read;
pub mod slim;
pub mod sort;
pub mod write;

use chrono::NaiveDate;
use futures_util::StreamExt;
use serde::Serialize;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::archive::manifest::{
    self, Manifest, ManifestFile, ManifestLayout, RowDigest, Superseded,
};
use crate::archive::source::{table_days, ArchiveSource, SourceError};
use crate::encode::EncodedFile;
use crate::model::key::{partition_path, ObjectKey, MANIFESTS_DIR};
use crate::model::Format;
use crate::schema::SchemaSet;
use crate::sink::{Expect, ObjectSink, Pieces, Published};
use sort::RunSorter;
use write::{Layout, PieceSender, VersionColumn};

/// The compactor's layout version, part of every compaction version: raise it whenever
/// the same rows and settings would give other bytes.
pub const LAYOUT_VERSION: u32 = 3;

/// What a day says when the thread finishing its row digest stopped.
const DIGEST_STOPPED: &str = "finding the copies of events stopped";

/// Compacted files stored at once.
const FILES_AT_ONCE: usize = 2;

/// Default grace period: how long the files of a superseded version stay for queries
/// that planned on it (far longer than an Athena query can run).
pub const DEFAULT_GRACE_PERIOD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The day's manifest as found at the start of a run.
struct Current {
    /// The manifest, if there is a usable one.
    manifest: Option<Manifest>,
    /// What publishing must find under the manifest's key.
    expect: Expect,
    /// Whether it was found where older releases wrote manifests (then it is
    /// published where readers now look).
    legacy: bool,
    /// Whether a manifest is where older releases wrote them, to delete once the current
    /// one is published: the one just moved, or one a run that stopped after moving it
    /// left behind.
    delete_legacy: bool,
}

/// A crash injected at a named point, for the tests of what a crash leaves:
/// `DDB_ARCHIVER_FAIL_AT=<point>` makes the run stop there with an error.
fn fail_point(point: &str) -> Result<(), String> {
    if std::env::var("DDB_ARCHIVER_FAIL_AT").is_ok_and(|p| p == point) {
        return Err(format!("stopped at {point} (DDB_ARCHIVER_FAIL_AT)"));
    }
    Ok(())
}

/// Default largest compacted file, in bytes.
pub const DEFAULT_MAX_FILE_BYTES: usize = 256 * 1024 * 1024;

/// Encoded bytes of a row group before the next one starts (Athena reads row groups in
/// parallel; about 128 MiB suits it).
pub const ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

/// Most rows in one row group.
pub const ROW_GROUP_MAX_ROWS: usize = 1 << 20;

/// Default bytes of changes held in memory while sorting, before runs spill to disk.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 * 1024 * 1024;

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
    /// How long the files of a superseded version, or of a version no manifest names,
    /// stay before a later run deletes them.
    pub grace_period: std::time::Duration,
    /// The time the run counts from; the clock when `None`.
    pub now: Option<DateTime<Utc>>,
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
            grace_period: DEFAULT_GRACE_PERIOD,
            now: None,
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
    /// Bytes of those runs: the temporary space the day needed.
    pub spilled_bytes: u64,
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
            spilled_bytes: 0,
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
        let now = self.options.now.unwrap_or_else(Utc::now);
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
        if table == MANIFESTS_DIR {
            return Err(format!(
                "a table named {MANIFESTS_DIR} cannot be compacted: the compacted layer keeps its manifests under that name"
            ));
        }
        sources.sort();
        report.sources = sources.len();
        let layout = self.manifest_layout(table);
        let version = manifest::version_of(&sources, &layout);
        report.version = Some(version.clone());
        let manifest_key = ObjectKey::Manifest {
            table: table.to_string(),
            date,
        }
        .key();
        let current = self.current_manifest(table, date).await?;
        if let Some(p) = current.manifest.as_ref().filter(|p| p.version == version) {
            report.status = DayStatus::Unchanged;
            report.rows = p.rows;
            report.duplicates_dropped = p.duplicates_dropped;
            if current.legacy {
                // Moved to where readers now look, then the old one is removed.
                self.publish(&manifest_key, p, &current.expect).await?;
            }
            if current.delete_legacy {
                self.delete_legacy_manifest(table, date).await?;
            }
            report.superseded_deleted = self.clean_up(table, date, p, now).await?;
            return Ok(true);
        }
        let budget = self.options.memory_budget;
        let digest = Arc::new(Mutex::new(RowDigest::new(budget / 8)));
        let (sorters, manifest_sources) = read::read_sources(
            self.source,
            &sources,
            budget - budget / 8,
            &digest,
            self.progress,
        )
        .await?;
        let digest = Arc::try_unwrap(digest)
            .map_err(|_| "a reading thread still holds the digest".to_string())?
            .into_inner()
            .map_err(|_| "a reading thread stopped".to_string())?;
        report.spilled_runs += digest.spilled_runs();
        report.spilled_bytes += digest.spilled_bytes();
        // The digest is finished on a thread of its own while the merge opens its runs;
        // the merge waits for the copies to skip only before its first row.
        let (displaced_tx, displaced_rx) = std::sync::mpsc::channel();
        let (digest_tx, digest_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("compact-digest".into())
            .spawn(move || {
                let summary = digest.finish().map_err(|e| e.to_string());
                let displaced = summary.as_ref().map(|s| s.displaced.clone());
                let _ = displaced_tx.send(displaced.map_err(String::clone));
                let _ = digest_tx.send(summary);
            })
            .map_err(|e| format!("starting the digest thread: {e}"))?;
        let displaced: write::Displaced<'static> = Box::new(move || {
            displaced_rx
                .recv()
                .map_err(|_| DIGEST_STOPPED.to_string())?
        });
        let files = self
            .write_files(table, date, &version, sorters, displaced, report)
            .await?;
        let digest = digest_rx.await.map_err(|_| DIGEST_STOPPED.to_string())??;
        if report.rows != digest.rows {
            return Err(format!(
                "{} distinct event IDs but {} rows written: the copies were not all dropped",
                digest.rows, report.rows
            ));
        }
        report.duplicates_dropped = digest.duplicates;
        let mut superseded: Vec<Superseded> = current
            .manifest
            .as_ref()
            .map(|p| p.superseded.clone())
            .unwrap_or_default();
        if let Some(p) = current.manifest.as_ref() {
            superseded.push(Superseded {
                version: p.version.clone(),
                at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
        }
        superseded.retain(|s| s.version != version);
        let m = Manifest {
            format: manifest::FORMAT.to_string(),
            table: table.to_string(),
            date: date.to_string(),
            version: version.clone(),
            rows: report.rows,
            duplicates_dropped: report.duplicates_dropped,
            row_digest: Some(digest.digest),
            event_id_digest: None,
            layout: Some(layout),
            superseded,
            files,
            sources: manifest_sources,
            created_by: format!("ddb-archiver {}", env!("CARGO_PKG_VERSION")),
        };
        fail_point("compact-before-manifest")?;
        self.publish(&manifest_key, &m, &current.expect).await?;
        if current.delete_legacy {
            self.delete_legacy_manifest(table, date).await?;
        }
        fail_point("compact-after-manifest")?;
        report.superseded_deleted = self.clean_up(table, date, &m, now).await?;
        report.status = DayStatus::Compacted;
        Ok(true)
    }

    /// Deletes the day's manifest from where older releases wrote it, once it is
    /// published where readers now look.
    async fn delete_legacy_manifest(&self, table: &str, date: NaiveDate) -> Result<(), String> {
        let key = ObjectKey::LegacyManifest {
            table: table.to_string(),
            date,
        }
        .key();
        self.sink.delete(&key).await.map_err(|e| e.to_string())
    }

    /// What the day's files depend on besides the sources.
    fn manifest_layout(&self, table: &str) -> ManifestLayout {
        let schema_digest = self
            .options
            .schemas
            .get(table)
            .map(|s| manifest::sha256_hex(format!("{:?}", s.columns).as_bytes()))
            .unwrap_or_default();
        ManifestLayout {
            compactor: LAYOUT_VERSION,
            schema_digest,
            max_file_bytes: self.options.max_file_bytes as u64,
            row_group_bytes: self.options.row_group_bytes as u64,
            row_group_max_rows: ROW_GROUP_MAX_ROWS as u64,
        }
    }

    /// The day's current manifest and what publishing over it must expect. A manifest
    /// that cannot be used (unreadable, too large, for another day) is reported and
    /// will be replaced, still under the precondition of its tag.
    async fn current_manifest(&self, table: &str, date: NaiveDate) -> Result<Current, String> {
        let date_text = date.to_string();
        let legacy_key = ObjectKey::LegacyManifest {
            table: table.to_string(),
            date,
        }
        .key();
        let current_key = ObjectKey::Manifest {
            table: table.to_string(),
            date,
        }
        .key();
        for (key, legacy) in [(&current_key, false), (&legacy_key, true)] {
            // An oversize object is refused unread, and fails the day naming it.
            let got = self
                .dest
                .get_tagged(key, manifest::MAX_MANIFEST_BYTES)
                .await
                .map_err(|e| e.to_string())?;
            let Some((bytes, tag)) = got else { continue };
            let manifest = match manifest::parse(&bytes, table, &date_text) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(manifest = %self.dest.location(key), error = %e, "unusable manifest: it will be replaced");
                    None
                }
            };
            let delete_legacy = legacy
                || self
                    .dest
                    .exists(&legacy_key)
                    .await
                    .map_err(|e| e.to_string())?;
            // A legacy manifest is moved: the new key must still be absent.
            let expect = if legacy {
                Expect::Absent
            } else {
                Expect::Tag(tag)
            };
            return Ok(Current {
                manifest,
                expect,
                legacy,
                delete_legacy,
            });
        }
        Ok(Current {
            manifest: None,
            expect: Expect::Absent,
            legacy: false,
            delete_legacy: false,
        })
    }

    /// Publishes a manifest: stored only if the manifest read at the start is still
    /// there; a lost race fails the day and changes nothing.
    async fn publish(&self, key: &str, m: &Manifest, expect: &Expect) -> Result<(), String> {
        let mut body = serde_json::to_vec(m).map_err(|e| e.to_string())?;
        body.push(b'\n');
        let file = EncodedFile {
            key: key.to_string(),
            body: body.into(),
            content_type: "application/json",
            content_encoding: None,
            records: 0,
        };
        match self.sink.publish(&file, expect).await.map_err(|e| e.to_string())? {
            Published::Stored => Ok(()),
            Published::Conflict(why) => Err(format!(
                "another compaction of this day published first ({why}); nothing of this run was published, and its files are removed by a later run"
            )),
        }
    }

    /// Deletes, from the day's folder of the compacted layer, the files of versions
    /// superseded more than the grace period ago, and files of versions that no
    /// manifest names (left by a failed or concurrent run) once they are older than the
    /// grace period. Only keys that parse as compacted files of this table and day are
    /// ever deleted; the manifest's own lists are not used for that. Returns how many
    /// were deleted.
    async fn clean_up(
        &self,
        table: &str,
        date: NaiveDate,
        m: &Manifest,
        now: DateTime<Utc>,
    ) -> Result<usize, String> {
        let grace =
            chrono::Duration::from_std(self.options.grace_period).unwrap_or(chrono::Duration::MAX);
        let listed = self
            .dest
            .list_modified(&partition_path(table, date))
            .await
            .map_err(|e| e.to_string())?;
        let mut deleted = 0;
        for (key, modified) in listed {
            let Some(ObjectKey::Compacted {
                table: t,
                date: d,
                version,
                ..
            }) = ObjectKey::parse(&key)
            else {
                continue;
            };
            if t != table || d != date || version == m.version {
                continue;
            }
            let since = match m.superseded.iter().find(|s| s.version == version) {
                Some(s) => DateTime::parse_from_rfc3339(&s.at)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(now),
                None => modified,
            };
            if since + grace <= now {
                self.sink.delete(&key).await.map_err(|e| e.to_string())?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Writes the sorted rows, without copies, as the version's files: encoded on a
    /// thread of their own, each file streamed to the sink a piece at a time as it is
    /// written, replacing any part file of this unpublished version left by a run that
    /// stopped (the same version's parts have the same bytes).
    async fn write_files(
        &self,
        table: &str,
        date: NaiveDate,
        version: &str,
        sorters: Vec<RunSorter>,
        displaced: write::Displaced<'static>,
        report: &mut DayReport,
    ) -> Result<Vec<ManifestFile>, String> {
        let options = self.options;
        let layout = Layout {
            schema: options.schemas.get(table).cloned(),
            version: VersionColumn {
                name: crate::model::columns::VERSION_COLUMN.to_string(),
                value: version.to_string(),
            },
            max_file_bytes: options.max_file_bytes,
            row_group_bytes: options.row_group_bytes,
            row_group_max_rows: ROW_GROUP_MAX_ROWS,
            encoders: crate::archive::reader::worker_count(),
        };
        const STOPPED: &str = write::STORE_STOPPED;
        let (files_tx, mut files_rx) = tokio::sync::mpsc::channel::<Pieces>(1);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("compact-write".into())
            .spawn(move || {
                let mut open = || -> Result<PieceSender, String> {
                    let (tx, rx) = tokio::sync::mpsc::channel(write::PIECES_AHEAD);
                    files_tx
                        .blocking_send(rx)
                        .map_err(|_| STOPPED.to_string())?;
                    Ok(tx)
                };
                let written = write::write_sorted(sorters, displaced, &layout, &mut open);
                let _ = done_tx.send(written);
            });
        spawned.map_err(|e| format!("starting the writing thread: {e}"))?;
        // Two files are stored at once, so that one's last part (and its fsync, or its
        // multipart completion) overlaps the next one's first pieces.
        let sink = self.sink;
        let mut storing = futures_util::stream::FuturesOrdered::new();
        let mut keys: Vec<String> = Vec::new();
        let mut store_error = None;
        let mut more = true;
        loop {
            tokio::select! {
                file = files_rx.recv(), if more && storing.len() < FILES_AT_ONCE => {
                    let Some(mut pieces) = file else {
                        more = false;
                        continue;
                    };
                    let part = u32::try_from(keys.len() + storing.len()).unwrap_or(u32::MAX);
                    let key = ObjectKey::Compacted {
                        table: table.to_string(),
                        date,
                        version: version.to_string(),
                        part,
                    }
                    .key();
                    storing.push_back(async move {
                        let content_type = Format::Parquet.content_type();
                        sink.replace_streamed(&key, content_type, &mut pieces)
                            .await
                            .map(|()| key)
                    });
                }
                Some(stored) = storing.next(), if !storing.is_empty() => match stored {
                    Ok(key) => keys.push(key),
                    Err(e) => {
                        store_error = Some(e.to_string());
                        break;
                    }
                },
                else => break,
            }
        }
        drop(storing);
        // The writer stops at its next piece once nothing takes them.
        drop(files_rx);
        let written = done_rx.await.map_err(|_| STOPPED.to_string())?;
        // The first failure: the writer's, unless it only saw the sink stop taking pieces.
        let written = match (written, store_error) {
            (Err(e), _) if !e.contains(STOPPED) => return Err(e),
            (_, Some(e)) => return Err(e),
            (written, None) => written?,
        };
        if written.files.len() != keys.len() {
            return Err(format!(
                "{} files written but {} stored",
                written.files.len(),
                keys.len()
            ));
        }
        report.rows = written.rows;
        report.spilled_runs += written.spilled_runs;
        report.spilled_bytes += written.spilled_bytes;
        report.files = keys.iter().map(|k| self.sink.location(k)).collect();
        Ok(keys
            .into_iter()
            .zip(written.files)
            .map(|(key, f)| ManifestFile {
                key,
                bytes: f.bytes,
                sha256: f.sha256,
                rows: f.rows,
            })
            .collect())
    }
}
