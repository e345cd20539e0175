//! Replay: the archive as a reprocessing source once the stream's 24 hours are gone.
//!
//! [`source`] lists and reads the `year=/month=/day=` partitions that overlap the time
//! range; [`reader`] turns each file (Parquet or gzip JSON lines) into rows; [`filter`]
//! selects them; [`order`] puts each day in stream order within a memory budget and
//! keeps one copy of each event wherever its copies sort ([`FirstCopies`]: every row of
//! the day is noted, so a copy whose first copy is before `--from` is dropped too);
//! [`emit`] groups the records, exactly as archived, into
//! `{"Records":[...]}` events. Baseline and export rows (sequence number `"0"`) are
//! left out unless [`ReplayOptions::include_baseline`]; then they are sent as synthetic
//! stream records ([`synthetic_stream_record`]); the events are written one per line or sent to a Lambda
//! function by [`invoke`]. [`replay()`] drives it, one day at a time.
//!
//! [`source`]: crate::archive::source
//! [`reader`]: crate::archive::reader
//! [`filter`]: crate::archive::filter
//! [`order`]: crate::archive::order
//! [`emit`]: crate::archive::emit

pub mod invoke;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;

use crate::archive::copies::{origin, FirstCopies};
use crate::archive::emit::Batcher;
use crate::archive::export_row::{synthetic_stream_record, ExportRow};
use crate::archive::filter::{Filter, FilterError};
use crate::archive::order::{Change, OrderError};
use crate::archive::reader::{read_rows, CorruptFile, Projection};
use crate::archive::source::{ArchiveSource, SourceError};
use crate::model::coverage::is_non_stream;
use crate::model::key::{partition_day, partition_path, table_prefix};
use crate::model::Format;
use invoke::{InvokeError, InvokeStats, Invoker};

/// Default memory budget for one day's changes before sorted runs spill to disk.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A flag cannot be used.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A setting other than a filter cannot be used.
    #[error("invalid {flag}: {reason}")]
    Option {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Listing or reading the archive failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A file could not be read (and `--skip-corrupt` was not given).
    #[error("{0} (--skip-corrupt reports it and goes on)")]
    Corrupt(CorruptFile),
    /// Sorting through temporary files failed.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// Writing the events failed.
    #[error("writing events: {0}")]
    Output(std::io::Error),
    /// The checkpoint file could not be read or written.
    #[error("checkpoint {path}: {error}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The Lambda function did not take an event.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The `--resume-after` event is not in the selected range.
    #[error("resume point {0} is not among the selected changes; nothing was replayed")]
    ResumeNotFound(String),
}

impl From<CorruptFile> for ReplayError {
    fn from(e: CorruptFile) -> Self {
        ReplayError::Corrupt(e)
    }
}

/// A replay that stopped, with what it did until then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ReplayFailure {
    /// Why it stopped.
    pub error: ReplayError,
    /// What was done before it stopped.
    pub summary: ReplaySummary,
}

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Table whose partitions are read (`<table>/year=.../`).
    pub table: String,
    /// The changes selected.
    pub filter: Filter,
    /// Most records per event (1 to [`crate::archive::emit::MAX_BATCH_RECORDS`]).
    pub batch_size: usize,
    /// Emit only the changes after this event (in replay order).
    pub resume_after: Option<String>,
    /// A file holding the last delivered event's ID: read at start (when
    /// `resume_after` is not given) and rewritten after each delivered event.
    pub checkpoint: Option<PathBuf>,
    /// Report corrupt files and go on instead of stopping.
    pub skip_corrupt: bool,
    /// Bytes of one day's changes held in memory before spilling sorted runs to disk.
    pub memory_budget: usize,
    /// Send baseline and export rows (sequence number `"0"`) too, as synthetic stream
    /// records ([`synthetic_stream_record`]); left out otherwise.
    pub include_baseline: bool,
}

/// Where the events go.
pub enum Output<'a> {
    /// One event per line.
    Lines(&'a mut (dyn Write + Send)),
    /// `Invoke` of a Lambda function per event.
    Lambda(Invoker),
}

/// A file that could not be read and was skipped (`--skip-corrupt`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SkippedFile {
    /// The file.
    pub location: String,
    /// What is wrong with it.
    pub error: String,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Partitions (days) read.
    pub partitions: usize,
    /// Archive files read.
    pub files: usize,
    /// Files in the partitions that are not archive files, not read.
    pub other_files: Vec<String>,
    /// Corrupt files skipped.
    pub corrupt_files: Vec<SkippedFile>,
    /// Rows read from the files.
    pub records_read: usize,
    /// Rows the filters selected (duplicates included).
    pub records_selected: usize,
    /// Baseline and export rows (sequence number `"0"`) the filters selected and left
    /// out, for want of `--include-baseline`.
    pub baseline_left_out: usize,
    /// Baseline and export rows replayed as synthetic stream records
    /// (`--include-baseline`).
    pub baseline_included: usize,
    /// Selected copies of an event dropped: the event is replayed once, as its earliest
    /// copy of the day.
    pub duplicates_dropped: usize,
    /// Changes skipped up to and including the resume point.
    pub skipped_before_resume: usize,
    /// Records delivered in events.
    pub records_emitted: usize,
    /// Events delivered.
    pub events: usize,
    /// Lambda invocations, retries included.
    pub invocations: usize,
    /// Lambda invocations that re-sent records after a failure.
    pub retries: usize,
    /// Sorted runs spilled to temporary files.
    pub spilled_runs: usize,
    /// The event replay resumed after.
    pub resumed_after: Option<String>,
    /// The last delivered record's `event_id`: resume after it.
    pub last_event_id: Option<String>,
}

impl ReplaySummary {
    /// The human summary.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} partitions, {} files, {} records read, {} selected, {} duplicates dropped",
            self.partitions,
            self.files,
            self.records_read,
            self.records_selected,
            self.duplicates_dropped
        );
        if self.baseline_left_out > 0 {
            let _ = writeln!(
                s,
                "{} baseline and export rows left out (--include-baseline sends them)",
                self.baseline_left_out
            );
        }
        if self.baseline_included > 0 {
            let _ = writeln!(
                s,
                "{} baseline and export rows sent as synthetic stream records",
                self.baseline_included
            );
        }
        if let Some(r) = &self.resumed_after {
            let _ = writeln!(
                s,
                "resumed after {r} ({} changes skipped)",
                self.skipped_before_resume
            );
        }
        let _ = writeln!(
            s,
            "{} records replayed in {} events",
            self.records_emitted, self.events
        );
        if self.invocations > 0 {
            let _ = writeln!(
                s,
                "{} invocations ({} retries)",
                self.invocations, self.retries
            );
        }
        if let Some(last) = &self.last_event_id {
            let _ = writeln!(s, "last replayed event: {last}");
        }
        for f in &self.other_files {
            let _ = writeln!(s, "not an archive file, not read: {f}");
        }
        for f in &self.corrupt_files {
            let _ = writeln!(s, "SKIPPED corrupt file: {}", f.error);
        }
        s
    }
}

/// Reads the resume point from a checkpoint file; a missing or empty file has none.
pub fn read_checkpoint(path: &std::path::Path) -> Result<Option<String>, ReplayError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ReplayError::Checkpoint {
            path: path.display().to_string(),
            error,
        }),
    }
}

fn write_checkpoint(path: &std::path::Path, event_id: &str) -> Result<(), ReplayError> {
    let err = |error| ReplayError::Checkpoint {
        path: path.display().to_string(),
        error,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".checkpoint-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(event_id.as_bytes())
        .and_then(|()| tmp.write_all(b"\n"))
        .map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// The archive files of each day the filter can select, by day.
async fn partitions(
    source: &dyn ArchiveSource,
    table: &str,
    filter: &Filter,
) -> Result<BTreeMap<NaiveDate, Vec<String>>, SourceError> {
    let mut prefixes = Vec::new();
    match filter.day_bounds() {
        (Some(first), Some(last)) if (last - first).num_days() < 4 * 366 => {
            let mut day = first;
            while day <= last {
                prefixes.push(partition_path(table, day));
                day = match day.succ_opt() {
                    Some(d) => d,
                    None => break,
                };
            }
        }
        _ => prefixes.push(table_prefix(table)),
    }
    let mut days: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for prefix in prefixes {
        for key in source.list(&prefix).await? {
            match partition_day(&key) {
                Some(day) if filter.day_in_range(day) => days.entry(day).or_default().push(key),
                Some(_) => {}
                None => tracing::debug!(key, "not under a year=/month=/day= partition"),
            }
        }
    }
    Ok(days)
}

/// Replay state carried across days.
struct Run<'o, 'w> {
    opts: &'o ReplayOptions,
    output: &'o mut Output<'w>,
    progress: &'o indicatif::ProgressBar,
    batcher: Batcher,
    resume: Option<String>,
    stats: InvokeStats,
    summary: ReplaySummary,
}

impl Run<'_, '_> {
    async fn read_day(
        &mut self,
        source: &dyn ArchiveSource,
        keys: &[String],
    ) -> Result<FirstCopies, ReplayError> {
        let mut sorter = FirstCopies::new(self.opts.memory_budget);
        for (file, key) in keys.iter().enumerate() {
            let Some(format) = Format::of_key(key) else {
                self.summary.other_files.push(source.location(key));
                continue;
            };
            let bytes = source.get(key).await?;
            let location = source.location(key);
            let rows = match read_rows(format, bytes, &location, Projection::CHANGES_AND_VIEW) {
                Ok(rows) => rows,
                Err(e) if self.opts.skip_corrupt => {
                    tracing::warn!(error = %e, "corrupt file skipped");
                    self.progress.println(format!("skipped: {e}"));
                    self.summary.corrupt_files.push(SkippedFile {
                        location: e.location.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.summary.files += 1;
            self.summary.records_read += rows.len();
            self.progress.inc(rows.len() as u64);
            for (i, row) in rows.into_iter().enumerate() {
                let origin = origin(file, i);
                sorter.note(&row, origin)?;
                if self.opts.filter.matches(&row) {
                    let record = if is_non_stream(&row.sequence_number) {
                        if !self.opts.include_baseline {
                            self.summary.baseline_left_out += 1;
                            continue;
                        }
                        self.summary.baseline_included += 1;
                        synthetic_stream_record(&ExportRow {
                            event_id: &row.event_id,
                            event_name: &row.event_name,
                            table: &self.opts.table,
                            time_ms: row.time_ms,
                            stream_view_type: row.stream_view_type.as_deref(),
                            keys: &row.keys,
                            record: &row.record,
                        })
                        .map_err(|reason| CorruptFile {
                            location: location.clone(),
                            reason: format!("row {i} (event_id {:?}): {reason}", row.event_id),
                        })?
                    } else {
                        crate::archive::emit::stream_record(
                            row.record,
                            &row.sequence_number,
                            row.time_ms,
                            &row.keys,
                        )
                    };
                    self.summary.records_selected += 1;
                    sorter.push(
                        Change {
                            group: String::new(),
                            time_ms: row.time_ms,
                            sequence_number: row.sequence_number,
                            event_id: row.event_id,
                            record,
                        },
                        origin,
                    )?;
                }
            }
            self.show();
        }
        Ok(sorter)
    }

    fn show(&self) {
        self.progress.set_message(format!(
            "{} files, {} replayed",
            self.summary.files, self.summary.records_emitted
        ));
    }

    async fn emit_day(&mut self, sorter: FirstCopies) -> Result<(), ReplayError> {
        self.summary.spilled_runs += sorter.spilled_runs();
        let mut sorted = sorter.into_sorted()?;
        for change in sorted.by_ref() {
            let change = change?;
            if let Some(resume) = &self.resume {
                self.summary.skipped_before_resume += 1;
                if *resume == change.event_id {
                    self.resume = None;
                }
                continue;
            }
            if let Some(batch) = self.batcher.push(change) {
                self.deliver(batch).await?;
            }
        }
        self.summary.duplicates_dropped += sorted.duplicates();
        Ok(())
    }

    async fn deliver(&mut self, batch: Vec<Change>) -> Result<(), ReplayError> {
        let last = match &mut self.output {
            Output::Lines(w) => {
                let mut line = crate::archive::emit::event_json(&batch);
                line.push(b'\n');
                w.write_all(&line).map_err(ReplayError::Output)?;
                if self.opts.checkpoint.is_some() {
                    w.flush().map_err(ReplayError::Output)?;
                }
                batch.last()
            }
            Output::Lambda(invoker) => {
                let result = invoker.deliver(&batch, &mut self.stats).await;
                self.summary.invocations = self.stats.invocations;
                self.summary.retries = self.stats.retries;
                if let Err(e) = result {
                    if let Some(done) = e.delivered.checked_sub(1).and_then(|i| batch.get(i)) {
                        self.delivered(e.delivered, done)?;
                    }
                    return Err(e.into());
                }
                batch.last()
            }
        };
        if let Some(last) = last {
            self.delivered(batch.len(), last)?;
        }
        self.summary.events += 1;
        self.show();
        Ok(())
    }

    fn delivered(&mut self, records: usize, last: &Change) -> Result<(), ReplayError> {
        self.summary.records_emitted += records;
        self.summary.last_event_id = Some(last.event_id.clone());
        if let Some(path) = &self.opts.checkpoint {
            write_checkpoint(path, &last.event_id)?;
        }
        Ok(())
    }
}

/// Replays the selected changes of `opts.table` from `source` into `output`, one day at
/// a time, in stream order without duplicates. `progress` is advanced by rows read
/// (pass [`indicatif::ProgressBar::hidden`] for none).
pub async fn replay(
    source: &dyn ArchiveSource,
    opts: &ReplayOptions,
    output: &mut Output<'_>,
    progress: &indicatif::ProgressBar,
) -> Result<ReplaySummary, Box<ReplayFailure>> {
    let fail =
        |error: ReplayError, summary: ReplaySummary| Box::new(ReplayFailure { error, summary });
    if let Err(reason) = crate::model::key::validate_table_name(&opts.table) {
        return Err(fail(
            ReplayError::Option {
                flag: "--table",
                reason,
            },
            ReplaySummary::default(),
        ));
    }
    if !(1..=crate::archive::emit::MAX_BATCH_RECORDS).contains(&opts.batch_size) {
        return Err(fail(
            ReplayError::Option {
                flag: "--batch-size",
                reason: format!(
                    "{} is not between 1 and {}",
                    opts.batch_size,
                    crate::archive::emit::MAX_BATCH_RECORDS
                ),
            },
            ReplaySummary::default(),
        ));
    }
    let resume = match (&opts.resume_after, &opts.checkpoint) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(path)) => match read_checkpoint(path) {
            Ok(r) => r,
            Err(e) => return Err(fail(e, ReplaySummary::default())),
        },
        (None, None) => None,
    };
    let mut run = Run {
        opts,
        output,
        progress,
        batcher: Batcher::new(opts.batch_size, crate::archive::emit::MAX_PAYLOAD_BYTES),
        resume: resume.clone(),
        stats: InvokeStats::default(),
        summary: ReplaySummary {
            resumed_after: resume,
            ..ReplaySummary::default()
        },
    };
    match run_all(&mut run, source).await {
        Ok(()) => {
            progress.finish_and_clear();
            Ok(run.summary)
        }
        Err(error) => {
            progress.abandon();
            Err(fail(error, run.summary))
        }
    }
}

async fn run_all(run: &mut Run<'_, '_>, source: &dyn ArchiveSource) -> Result<(), ReplayError> {
    let days = partitions(source, &run.opts.table, &run.opts.filter).await?;
    for (day, keys) in days {
        tracing::debug!(%day, files = keys.len(), "replaying partition");
        run.summary.partitions += 1;
        let sorter = run.read_day(source, &keys).await?;
        run.emit_day(sorter).await?;
    }
    if let Some(batch) = run.batcher.take() {
        run.deliver(batch).await?;
    }
    if let Output::Lines(w) = &mut run.output {
        w.flush().map_err(ReplayError::Output)?;
    }
    if let Some(resume) = run.resume.take() {
        return Err(ReplayError::ResumeNotFound(resume));
    }
    Ok(())
}
