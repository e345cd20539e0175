//! Maintenance: the scheduled work of the maintenance function. A weekly schedule sends
//! `{"action":"verify"}`: the raw archive and the compacted layer of the last
//! [`MaintenanceSettings::verify_days`] days are verified. A daily schedule sends
//! `{"action":"compact"}`: every *closed* UTC day of the look-back window is
//! compacted, unless its manifest already names its current raw objects. A day is
//! closed once its end is [`MaintenanceSettings::settle_hours`] past (DynamoDB Streams
//! keep records for 24 hours, so nothing more arrives for it from the stream). Running
//! over the whole window each time catches up on missed runs and retries failed days.
//! Its figures go out as one CloudWatch Embedded Metric Format line.
//!
//! A compaction run knows its deadline: it starts no new day once less than
//! [`MaintenanceSettings::deadline_margin`] is left before the invocation's end, and
//! reports the days it left for the next run. Days are taken in a fair order
//! ([`fair_order`]): one day of each table in turn, oldest first, the first table
//! rotating from run to run, so a huge day of one table cannot starve the others.
//!
//! With baseline settings ([`baseline::BaselineTarget`]), it also takes the baseline
//! workflow's `{"action":"baseline"}` and `{"action":"baseline-complete"}` ([`baseline`]).

pub mod baseline;

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::archive::source::{table_days, ArchiveSource};
use crate::compact::{CompactOptions, CompactSummary, Compactor, DayStatus};
use crate::sink::ObjectSink;

/// How the maintenance function compacts.
#[derive(Debug, Clone)]
pub struct MaintenanceSettings {
    /// Days back from today (UTC) that are looked at on each run.
    pub lookback_days: u32,
    /// Hours after a day's end before it is compacted.
    pub settle_hours: u32,
    /// Hours after a day's end after which a day still not compacted is counted in
    /// [`MaintenanceReport::uncompacted_past_threshold`].
    pub alarm_after_hours: u32,
    /// The compaction options (the day range is set from the window).
    pub compact: CompactOptions,
    /// Days back from today verified by a verify run.
    pub verify_days: u32,
    /// No new day is started once less than this is left before the invocation's
    /// deadline (it must cover the largest day's compaction).
    pub deadline_margin: std::time::Duration,
}

/// Default [`MaintenanceSettings::deadline_margin`]: 3 minutes of the function's 15.
pub const DEFAULT_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(180);

impl Default for MaintenanceSettings {
    fn default() -> Self {
        MaintenanceSettings {
            lookback_days: 7,
            settle_hours: 26,
            alarm_after_hours: 74,
            compact: CompactOptions::default(),
            verify_days: 8,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
        }
    }
}

/// The closed days of the window at `now`: from `lookback_days` before today to the last
/// day whose end is `settle_hours` past; `None` when no day is closed yet.
pub fn closed_days(
    now: DateTime<Utc>,
    lookback_days: u32,
    settle_hours: u32,
) -> Option<(NaiveDate, NaiveDate)> {
    let today = now.date_naive();
    let first = today - Duration::days(i64::from(lookback_days));
    // A day D ends at D+1 00:00; it is closed when D+1 00:00 + settle <= now.
    let last_end = (now - Duration::hours(i64::from(settle_hours))).date_naive();
    let last = last_end.pred_opt()?;
    (first <= last).then_some((first, last))
}

/// What one maintenance compaction run did.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceReport {
    /// The closed days looked at, first and last; `None` when none was closed.
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// The compaction of the window.
    pub summary: CompactSummary,
    /// Days that could not be compacted on this run.
    pub failed_days: usize,
    /// Failed days whose end is more than `alarm_after_hours` past.
    pub uncompacted_past_threshold: usize,
    /// Table-days not started because the deadline was near, `(table, YYYY-MM-DD)`, in
    /// the order they would have been taken; the next run takes them.
    pub days_left: Vec<(String, String)>,
}

/// Table-days in a fair order: one day of each table in turn, each table's days oldest
/// first, starting with table number `rotate` (modulo the number of tables), so that
/// successive runs do not always favour the same table.
pub fn fair_order(days: Vec<(String, NaiveDate)>, rotate: usize) -> Vec<(String, NaiveDate)> {
    let mut by_table: BTreeMap<String, Vec<NaiveDate>> = BTreeMap::new();
    for (table, date) in days {
        by_table.entry(table).or_default().push(date);
    }
    let mut queues: VecDeque<(String, VecDeque<NaiveDate>)> = by_table
        .into_iter()
        .map(|(t, mut d)| {
            d.sort();
            (t, d.into())
        })
        .collect();
    if !queues.is_empty() {
        let n = rotate % queues.len();
        queues.rotate_left(n);
    }
    let mut out = Vec::new();
    while let Some((table, mut dates)) = queues.pop_front() {
        if let Some(date) = dates.pop_front() {
            out.push((table.clone(), date));
        }
        if !dates.is_empty() {
            queues.push_back((table, dates));
        }
    }
    out
}

/// Compacts the closed days of the window at `now`, in [`fair_order`], starting no new
/// day once `clock()` is within [`MaintenanceSettings::deadline_margin`] of `deadline`
/// (no limit without one).
pub async fn compact_closed_days(
    source: &dyn ArchiveSource,
    dest: &dyn ArchiveSource,
    sink: &dyn ObjectSink,
    settings: &MaintenanceSettings,
    now: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    clock: &(dyn Fn() -> DateTime<Utc> + Sync),
) -> Result<MaintenanceReport, crate::archive::source::SourceError> {
    let window = closed_days(now, settings.lookback_days, settings.settle_hours);
    let Some((from, to)) = window else {
        return Ok(MaintenanceReport {
            window,
            summary: CompactSummary::default(),
            failed_days: 0,
            uncompacted_past_threshold: 0,
            days_left: Vec::new(),
        });
    };
    let options = CompactOptions {
        from: Some(from),
        to: Some(to),
        ..settings.compact.clone()
    };
    let compactor = Compactor {
        source,
        dest,
        sink,
        options: &options,
        progress: &indicatif::ProgressBar::hidden(),
    };
    let days = table_days(source, options.table.as_deref(), options.from, options.to).await?;
    // One rotation step per run of a daily schedule.
    let rotate = usize::try_from(now.timestamp().div_euclid(86_400)).unwrap_or(0);
    let margin = Duration::from_std(settings.deadline_margin).unwrap_or(Duration::MAX);
    let mut summary = CompactSummary::default();
    let mut days_left = Vec::new();
    for (table, date) in fair_order(days, rotate) {
        let near = deadline.is_some_and(|d| clock() + margin >= d);
        if near || !days_left.is_empty() {
            days_left.push((table, date.to_string()));
            continue;
        }
        if let Some(report) = compactor.day(&table, date).await {
            summary.days.push(report);
        }
    }
    if !days_left.is_empty() {
        tracing::warn!(
            left = days_left.len(),
            first = ?days_left.first(),
            "deadline near: days left for the next run"
        );
    }
    let threshold = now - Duration::hours(i64::from(settings.alarm_after_hours));
    let overdue = |date: &str| {
        date.parse::<NaiveDate>()
            .ok()
            .and_then(|d| d.succ_opt())
            .and_then(|end| end.and_hms_opt(0, 0, 0))
            .is_some_and(|end| end.and_utc() <= threshold)
    };
    let failed: Vec<&str> = summary
        .days
        .iter()
        .filter(|d| d.status == DayStatus::Failed)
        .map(|d| d.date.as_str())
        .collect();
    Ok(MaintenanceReport {
        window,
        failed_days: failed.len(),
        uncompacted_past_threshold: failed.iter().filter(|d| overdue(d)).count(),
        summary,
        days_left,
    })
}

impl MaintenanceReport {
    /// One CloudWatch Embedded Metric Format document (a single line) with
    /// `CompactedDays`, `CompactionFailedDays`, `UncompactedDaysPastThreshold` and
    /// `CompactionDaysLeft` (days not started for the deadline), dimension
    /// `FunctionName`.
    pub fn emf(&self, function_name: &str, now_ms: i64) -> String {
        crate::lambda::emf_document(
            function_name,
            now_ms,
            &[
                (
                    "CompactedDays",
                    "Count",
                    self.summary.count(DayStatus::Compacted) as u64,
                ),
                ("CompactionFailedDays", "Count", self.failed_days as u64),
                (
                    "UncompactedDaysPastThreshold",
                    "Count",
                    self.uncompacted_past_threshold as u64,
                ),
                ("CompactionDaysLeft", "Count", self.days_left.len() as u64),
            ],
        )
    }
}

/// What the maintenance function is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Compact the closed days of the window.
    Compact,
    /// Verify both layers over the last [`MaintenanceSettings::verify_days`] days.
    Verify,
    /// Archive some data files of an export ([`baseline::BaselineTarget::batch`]).
    Baseline,
    /// Record an export's coverage once all its data files are archived
    /// ([`baseline::BaselineTarget::complete`]).
    #[serde(rename = "baseline-complete")]
    BaselineComplete,
}

/// What a verify run found, in each layer.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The first day verified.
    pub from: NaiveDate,
    /// The raw archive.
    pub raw: crate::verify::VerifySummary,
    /// The compacted layer.
    pub compacted: crate::verify::VerifySummary,
}

impl VerifyReport {
    fn objects(s: &crate::verify::VerifySummary) -> u64 {
        s.checked.raw
            + s.checked.rejected
            + s.checked.compacted
            + s.checked.manifest
            + s.checked.coverage
    }

    /// One CloudWatch EMF line with `VerifiedObjects`, `VerifyBadObjects` and
    /// `CompactedDaysBehindRaw` (compacted days whose raw day holds objects they do not
    /// list), dimension `FunctionName`.
    pub fn emf(&self, function_name: &str, now_ms: i64) -> String {
        let objects = Self::objects(&self.raw) + Self::objects(&self.compacted);
        let bad = (self.raw.bad.len() + self.compacted.bad.len()) as u64;
        let behind = self.compacted.behind_raw.len() as u64;
        crate::lambda::emf_document(
            function_name,
            now_ms,
            &[
                ("VerifiedObjects", "Count", objects),
                ("VerifyBadObjects", "Count", bad),
                ("CompactedDaysBehindRaw", "Count", behind),
            ],
        )
    }
}

/// What one maintenance run did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceOutcome {
    /// A compaction run.
    Compact(MaintenanceReport),
    /// A verify run.
    Verify(Box<VerifyReport>),
    /// A baseline batch.
    Baseline(baseline::BatchReport),
    /// A baseline's coverage record.
    BaselineComplete(baseline::CompleteReport),
}

/// The maintenance function's event: `{"action":"compact"}`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MaintenanceEvent {
    /// What to do.
    pub action: Action,
    /// The baseline actions' fields.
    #[serde(flatten)]
    pub baseline: baseline::BaselineEvent,
}

/// A maintenance invocation that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The event is not `{"action": ...}` with a known action.
    #[error("not a maintenance event ({{\"action\":\"compact\"}}): {0}")]
    Event(String),
    /// The raw archive could not be listed.
    #[error(transparent)]
    Source(#[from] crate::archive::source::SourceError),
    /// Verification found bad objects.
    #[error("{count} bad objects: {objects}")]
    BadObjects {
        /// How many.
        count: usize,
        /// Each with what is wrong.
        objects: String,
    },
    /// A baseline action failed, or this function has no baseline settings.
    #[error(transparent)]
    Baseline(#[from] baseline::BaselineActionError),
    /// Some days could not be compacted (the others were); the next run retries them.
    #[error("{failed} days not compacted: {days}")]
    DaysFailed {
        /// How many.
        failed: usize,
        /// Each failed day with its error.
        days: String,
    },
}

/// The maintenance function: the raw archive, the compacted layer and the settings,
/// made once at init.
pub struct Maintenance {
    /// The raw archive.
    pub source: Box<dyn ArchiveSource>,
    /// The compacted layer, for reading.
    pub dest: Box<dyn ArchiveSource>,
    /// The compacted layer, for writing.
    pub sink: std::sync::Arc<dyn ObjectSink>,
    /// How to compact.
    pub settings: MaintenanceSettings,
    /// The metrics dimension.
    pub function_name: String,
}

impl Maintenance {
    /// Runs one event at `now`, for an invocation that ends at `deadline` (none: no
    /// limit): prints the EMF line, returns the report, or an error when the event is
    /// unknown or a day failed (so that the schedule's retries and the function's error
    /// alarm see it).
    pub async fn handle(
        &self,
        event: &[u8],
        now: DateTime<Utc>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<MaintenanceOutcome, MaintenanceError> {
        self.handle_with(event, now, deadline, None).await
    }

    /// [`Maintenance::handle`], with the baseline settings that the baseline actions
    /// need (without them, those actions are refused).
    pub async fn handle_with(
        &self,
        event: &[u8],
        now: DateTime<Utc>,
        deadline: Option<DateTime<Utc>>,
        target: Option<&baseline::BaselineTarget>,
    ) -> Result<MaintenanceOutcome, MaintenanceError> {
        let event: MaintenanceEvent =
            serde_json::from_slice(event).map_err(|e| MaintenanceError::Event(e.to_string()))?;
        let target = || {
            target.ok_or_else(|| {
                baseline::BaselineActionError::Refused(
                    "this function has no baseline settings (BASELINE_EXPORTS)".to_string(),
                )
            })
        };
        match event.action {
            Action::Baseline => Ok(MaintenanceOutcome::Baseline(
                target()?.batch(&event.baseline).await?,
            )),
            Action::BaselineComplete => Ok(MaintenanceOutcome::BaselineComplete(
                target()?
                    .complete(&event.baseline, self.source.as_ref())
                    .await?,
            )),
            Action::Compact => self
                .compact(now, deadline)
                .await
                .map(MaintenanceOutcome::Compact),
            Action::Verify => self
                .verify(now)
                .await
                .map(|r| MaintenanceOutcome::Verify(Box::new(r))),
        }
    }

    async fn verify(&self, now: DateTime<Utc>) -> Result<VerifyReport, MaintenanceError> {
        let from = now.date_naive() - Duration::days(i64::from(self.settings.verify_days));
        let options = crate::verify::VerifyOptions {
            from: Some(from),
            schemas: Some(self.settings.compact.schemas.clone()),
            ..crate::verify::VerifyOptions::default()
        };
        let progress = indicatif::ProgressBar::hidden();
        let mut summaries = Vec::new();
        // The compacted layer's manifests are checked against the raw archive.
        for (source, raw) in [
            (self.source.as_ref(), None),
            (self.dest.as_ref(), Some(self.source.as_ref())),
        ] {
            let verifier = crate::verify::Verifier {
                source,
                raw,
                options: &options,
                progress: &progress,
            };
            summaries.push(verifier.run().await?);
        }
        let compacted = summaries.pop().unwrap_or_default();
        let raw = summaries.pop().unwrap_or_default();
        let report = VerifyReport {
            from,
            raw,
            compacted,
        };
        println!(
            "{}",
            report.emf(&self.function_name, now.timestamp_millis())
        );
        let bad: Vec<String> = report
            .raw
            .bad
            .iter()
            .chain(&report.compacted.bad)
            .map(|b| format!("{}: {}", b.location, b.reasons.join(", ")))
            .collect();
        if !bad.is_empty() {
            return Err(MaintenanceError::BadObjects {
                count: bad.len(),
                objects: bad.join("; "),
            });
        }
        Ok(report)
    }

    async fn compact(
        &self,
        now: DateTime<Utc>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<MaintenanceReport, MaintenanceError> {
        let report = compact_closed_days(
            self.source.as_ref(),
            self.dest.as_ref(),
            self.sink.as_ref(),
            &self.settings,
            now,
            deadline,
            &Utc::now,
        )
        .await?;
        println!(
            "{}",
            report.emf(&self.function_name, now.timestamp_millis())
        );
        tracing::info!(
            compacted = report.summary.count(DayStatus::Compacted),
            unchanged = report.summary.count(DayStatus::Unchanged),
            failed = report.failed_days,
            left = report.days_left.len(),
            "maintenance run done"
        );
        if report.failed_days > 0 {
            let days: Vec<String> = report
                .summary
                .days
                .iter()
                .filter(|d| d.status == DayStatus::Failed)
                .map(|d| {
                    format!(
                        "{} {}: {}",
                        d.table,
                        d.date,
                        d.error.as_deref().unwrap_or("")
                    )
                })
                .collect();
            return Err(MaintenanceError::DaysFailed {
                failed: report.failed_days,
                days: days.join("; "),
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_day_is_closed_once_settled() {
        // 2026-03-10 02:30: 2026-03-08 ended 26.5 h ago (closed), 03-09 2.5 h ago.
        assert_eq!(
            closed_days(at("2026-03-10T02:30:00Z"), 7, 26),
            Some((d("2026-03-03"), d("2026-03-08")))
        );
        // Exactly at the settle time the day is closed.
        assert_eq!(
            closed_days(at("2026-03-10T02:00:00Z"), 7, 26),
            Some((d("2026-03-03"), d("2026-03-08")))
        );
        assert_eq!(
            closed_days(at("2026-03-10T01:59:59Z"), 7, 26),
            Some((d("2026-03-03"), d("2026-03-07")))
        );
        assert_eq!(closed_days(at("2026-03-10T01:00:00Z"), 1, 26), None);
    }

    #[test]
    fn days_are_taken_one_table_at_a_time_oldest_first_rotating() {
        let days = vec![
            ("b".to_string(), d("2026-01-02")),
            ("a".to_string(), d("2026-01-03")),
            ("b".to_string(), d("2026-01-01")),
            ("a".to_string(), d("2026-01-01")),
            ("a".to_string(), d("2026-01-02")),
            ("c".to_string(), d("2026-01-05")),
        ];
        let order = |rotate| -> Vec<String> {
            fair_order(days.clone(), rotate)
                .into_iter()
                .map(|(t, d)| format!("{t}{}", d.format("%d")))
                .collect()
        };
        assert_eq!(order(0), ["a01", "b01", "c05", "a02", "b02", "a03"]);
        assert_eq!(order(1), ["b01", "c05", "a01", "b02", "a02", "a03"]);
        assert_eq!(order(4), order(1));
        assert!(fair_order(Vec::new(), 3).is_empty());
    }

    #[test]
    fn metrics_name_the_function() {
        let report = MaintenanceReport {
            window: None,
            summary: CompactSummary::default(),
            failed_days: 2,
            uncompacted_past_threshold: 1,
            days_left: vec![("t".into(), "2026-01-01".into())],
        };
        let v: serde_json::Value = serde_json::from_str(&report.emf("fn", 5)).unwrap();
        assert_eq!(v["FunctionName"], "fn");
        assert_eq!(v["CompactionFailedDays"], 2);
        assert_eq!(v["UncompactedDaysPastThreshold"], 1);
        assert_eq!(v["CompactionDaysLeft"], 1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][2]["Name"],
            "UncompactedDaysPastThreshold"
        );
    }
}
