//! Baseline and export rows read back, in process: an archive mixing a baseline (rows
//! made as the `baseline` command makes them, written by the real pipeline) and stream
//! changes; restore obeys the coverage record and gives the true state including items
//! never changed after the baseline; replay leaves the rows out or sends them as
//! synthetic records; verify checks them and the coverage record; compaction of a mixed
//! day verifies; the coverage report.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ddb_archiver::archive::source::LocalDirSource;
use ddb_archiver::compact::{CompactOptions, Compactor};
use ddb_archiver::model::coverage::{
    baseline_event_id, coverage_key, CoverageExportType, CoverageKind, CoverageRecord,
    CoverageSource, COVERAGE_FORMAT, NON_STREAM_SEQUENCE_NUMBER,
};
use ddb_archiver::model::item::canonical_key;
use ddb_archiver::model::{ChangeRecord, EventName, Format, JsonText, SourceKind};
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::replay::{replay, Output, ReplayOptions, ReplaySummary};
use ddb_archiver::restore::{
    restore, ImportOptions, RestoreError, RestoreOptions, RestoreSummary, Target,
};
use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;
use ddb_archiver::verify::{Verifier, VerifyOptions, VerifySummary};
use serde_json::Value;

#[path = "util/files.rs"]
mod files_util;
use files_util::files;

const TABLE: &str = "invoices";
const ARN: &str =
    "arn:aws:dynamodb:eu-west-1:123456789012:table/invoices/export/01767268800000-abcdefgh";
/// The export time: 2026-01-01T12:00:00Z.
const T0: i64 = 1_767_268_800_000;
const ITEMS: usize = 30;

fn settings(dir: &Path, format: Format) -> Settings {
    Settings {
        dest: dir.display().to_string(),
        format,
        table: None,
        max_file_bytes: 1 << 20,
        max_file_records: 7,
        max_file_age_secs: 300,
        max_buffer_bytes: 1 << 24,
        kms_key_id: None,
        schemas: None,
    }
}

fn image(item: usize, v: usize) -> String {
    format!(
        r#"{{"pk":{{"S":"INV#{item}"}},"v":{{"N":"{v}"}},"big":{{"N":"12345678901234567890123456789012345678"}},"b":{{"B":"AAEC/w=="}},"s":{{"S":"é \"q\""}}}}"#
    )
}

fn key(item: usize) -> String {
    format!(r#"{{"pk":{{"S":"INV#{item}"}}}}"#)
}

/// A full export's line for `item`, its row as the baseline command makes it.
fn baseline_change(item: usize) -> ChangeRecord {
    let line = format!(r#"{{"Item":{}}}"#, image(item, 0));
    ChangeRecord {
        event_id: baseline_event_id(ARN, &canonical_key(&key(item)).unwrap()),
        event_name: EventName::Insert,
        table_name: TABLE.into(),
        sequence_number: NON_STREAM_SEQUENCE_NUMBER.into(),
        approximate_creation_time_ms: T0,
        stream_view_type: Some("NEW_IMAGE".into()),
        size_bytes: None,
        ttl_delete: false,
        keys: JsonText::from(key(item)),
        new_image: Some(JsonText::from(image(item, 0))),
        old_image: None,
        record: JsonText::from(line),
        source: SourceKind::Export,
        index: item,
    }
}

/// Writes the baseline's rows through the pipeline; returns the objects written.
async fn archive_baseline(dir: &Path, format: Format) -> Vec<String> {
    let before = data_keys(dir);
    let mut a = Archiver::new(&settings(dir, format), Arc::new(LocalDirSink::new(dir))).unwrap();
    for item in 0..ITEMS {
        a.push(baseline_change(item), "export").await;
    }
    let summary = a.finish().await;
    assert!(summary.is_clean(), "{summary:?}");
    let mut written: Vec<String> = data_keys(dir)
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    written.sort();
    written
}

fn data_keys(dir: &Path) -> Vec<String> {
    files(dir)
        .into_keys()
        .filter(|k| k.starts_with(TABLE))
        .collect()
}

fn coverage_record(objects: Vec<String>, change_count: u64) -> CoverageRecord {
    CoverageRecord {
        format: COVERAGE_FORMAT,
        table: TABLE.into(),
        kind: CoverageKind::Baseline,
        source: CoverageSource::Export,
        export_arn: Some(ARN.into()),
        export_type: CoverageExportType::FullExport,
        complete_from: Some(T0),
        window: None,
        item_count: ITEMS as u64,
        change_count,
        objects,
        recorded_at: T0 + 60_000,
    }
}

fn write_coverage(dir: &Path, record: &CoverageRecord) -> std::path::PathBuf {
    let key = coverage_key(TABLE, CoverageKind::Baseline, "01767268800000-abcdefgh").unwrap();
    let path = dir.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, record.to_json().unwrap()).unwrap();
    path
}

/// One stream change.
struct Stream {
    name: &'static str,
    item: usize,
    time_ms: i64,
    seq: u64,
    v: usize,
}

/// Changes after the export: items 0..5 modified (item 0 at T0 exactly, after the
/// baseline row in stream order), item 6 removed, items 30..33 inserted, across two
/// days.
fn stream_changes() -> Vec<Stream> {
    let mut out = Vec::new();
    let mut seq = 1000;
    let mut push = |name, item, time_ms, v| {
        seq += 1;
        out.push(Stream {
            name,
            item,
            time_ms,
            seq,
            v,
        });
    };
    push("MODIFY", 0, T0, 1);
    for item in 1..5 {
        push("MODIFY", item, T0 + item as i64 * 60_000, 1);
    }
    push("REMOVE", 6, T0 + 3_600_000, 0);
    for item in 30..33 {
        push("INSERT", item, T0 + 7_200_000 + item as i64, 1);
    }
    // The next day: item 1 again.
    push("MODIFY", 1, T0 + 86_400_000, 2);
    out
}

fn stream_text(s: &Stream) -> String {
    let images = match s.name {
        "REMOVE" => format!(r#""OldImage":{},"#, image(s.item, 0)),
        "INSERT" => format!(r#""NewImage":{},"#, image(s.item, s.v)),
        _ => format!(
            r#""NewImage":{},"OldImage":{},"#,
            image(s.item, s.v),
            image(s.item, s.v - 1)
        ),
    };
    format!(
        r#"{{"eventID":"ev-{}","eventName":"{}","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"eu-west-1","dynamodb":{{"ApproximateCreationDateTime":{}.{:03},"Keys":{},{images}"SequenceNumber":"{}","SizeBytes":50,"StreamViewType":"NEW_AND_OLD_IMAGES"}},"eventSourceARN":"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000"}}"#,
        s.seq,
        s.name,
        s.time_ms / 1000,
        s.time_ms % 1000,
        key(s.item),
        s.seq
    )
}

async fn archive_stream(dir: &Path, format: Format) {
    let mut a = Archiver::new(&settings(dir, format), Arc::new(LocalDirSink::new(dir))).unwrap();
    let changes = stream_changes();
    for (i, chunk) in changes.chunks(4).enumerate() {
        let parts: Vec<String> = chunk.iter().map(stream_text).collect();
        let doc = format!("{{\"Records\":[{}]}}", parts.join(","));
        assert!(a.ingest(doc.as_bytes(), &format!("batch-{i}")).await);
    }
    let summary = a.finish().await;
    assert!(summary.is_clean(), "{summary:?}");
}

/// The true state at `as_of`: the export's items, then the stream changes.
fn expected(as_of: i64) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    if as_of >= T0 {
        for item in 0..ITEMS {
            state.insert(key(item), image(item, 0));
        }
    }
    for s in stream_changes().iter().filter(|s| s.time_ms <= as_of) {
        if s.name == "REMOVE" {
            state.remove(&key(s.item));
        } else {
            state.insert(key(s.item), image(s.item, s.v));
        }
    }
    state
}

/// An archive of both formats: baseline in `format`, stream changes in the other; the
/// coverage record unless `with_coverage` is false. Returns the baseline's objects.
async fn mixed_archive(dir: &Path, format: Format, with_coverage: bool) -> Vec<String> {
    let objects = archive_baseline(dir, format).await;
    assert!(!objects.is_empty());
    assert!(objects.iter().all(|k| k.contains("/0-0-")), "{objects:?}");
    let other = match format {
        Format::Parquet => Format::JsonlGz,
        Format::JsonlGz => Format::Parquet,
    };
    archive_stream(dir, other).await;
    if with_coverage {
        write_coverage(dir, &coverage_record(objects.clone(), ITEMS as u64));
    }
    objects
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn restore_options(as_of: DateTime<Utc>, out: &Path) -> RestoreOptions {
    RestoreOptions {
        table: TABLE.into(),
        as_of,
        key: None,
        to_table: "restored".into(),
        dry_run: false,
        allow_existing: false,
        allow_rejected: false,
        allow_incomplete: false,
        memory_budget: 1 << 20,
        concurrency: 2,
        retry: ddb_archiver::restore::write::default_policy(),
        import: Some(ImportOptions {
            location: ddb_archiver::model::Location::Local(out.to_path_buf()),
            start: false,
            partition_key: None,
            file_bytes: 100_000,
        }),
    }
}

async fn run_restore(
    archive: &Path,
    opts: &RestoreOptions,
) -> Result<(RestoreSummary, BTreeMap<String, String>), Box<ddb_archiver::restore::RestoreFailure>>
{
    let ImportOptions { location, .. } = opts.import.clone().unwrap();
    let ddb_archiver::model::Location::Local(out) = location else {
        unreachable!()
    };
    let target = Target::Import {
        sink: Arc::new(LocalDirSink::new(&out)),
        existing: Box::new(LocalDirSource::new(&out)),
        client: None,
    };
    let source = LocalDirSource::new(archive);
    let summary = restore(&source, target, opts, &indicatif::ProgressBar::hidden()).await?;
    let mut state = BTreeMap::new();
    for file in &summary.import_files {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let item = v["Item"].to_string();
            let pk = v["Item"]["pk"]["S"].as_str().unwrap().to_string();
            let item_no: usize = pk.trim_start_matches("INV#").parse().unwrap();
            state.insert(key(item_no), item);
        }
    }
    Ok((summary, state))
}

fn normalized(state: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    state
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap()))
        .collect()
}

#[tokio::test]
async fn restore_after_the_baseline_gives_the_true_state_and_before_it_is_refused() {
    for format in [Format::Parquet, Format::JsonlGz] {
        let dir = tempfile::tempdir().unwrap();
        mixed_archive(dir.path(), format, true).await;
        for as_of in [T0, T0 + 90_000, T0 + 7_200_000 + 31, T0 + 2 * 86_400_000] {
            let out = tempfile::tempdir().unwrap();
            let (summary, state) = run_restore(dir.path(), &restore_options(at(as_of), out.path()))
                .await
                .unwrap_or_else(|e| panic!("{format:?} as of {as_of}: {e}"));
            assert_eq!(
                normalized(&state),
                normalized(&expected(as_of)),
                "{format:?} as of {as_of}"
            );
            // Items never changed after the baseline are there.
            assert!(state.contains_key(&key(ITEMS - 1)));
            let baseline = summary.baseline.clone().unwrap();
            assert_eq!(baseline.source, "export");
            assert_eq!(baseline.export_arn.as_deref(), Some(ARN));
            assert_eq!(baseline.complete_from, "2026-01-01T12:00:00.000Z");
            assert!(!summary.incomplete);
            assert!(summary.render_text().contains(ARN));
        }
        // Before the baseline: refused, nothing written.
        let out = tempfile::tempdir().unwrap();
        let e = run_restore(dir.path(), &restore_options(at(T0 - 1), out.path()))
            .await
            .unwrap_err();
        assert!(
            matches!(e.error, RestoreError::BeforeBaseline { .. }),
            "{}",
            e.error
        );
        let text = e.error.to_string();
        assert!(text.contains("2026-01-01T12:00:00.000Z") && text.contains("--allow-incomplete"));
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
        // --allow-incomplete restores what the archive holds.
        let mut opts = restore_options(at(T0 - 1), out.path());
        opts.allow_incomplete = true;
        let (summary, state) = run_restore(dir.path(), &opts).await.unwrap();
        assert!(summary.incomplete);
        assert!(state.is_empty());
    }
}

#[tokio::test]
async fn restore_without_a_baseline_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    archive_stream(dir.path(), Format::Parquet).await;
    let out = tempfile::tempdir().unwrap();
    let e = run_restore(
        dir.path(),
        &restore_options(at(T0 + 86_400_000), out.path()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e.error, RestoreError::NoBaseline { .. }),
        "{}",
        e.error
    );
    assert!(e.error.to_string().contains("no baseline was archived"));
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    let mut opts = restore_options(at(T0 + 86_400_000), out.path());
    opts.allow_incomplete = true;
    let (summary, state) = run_restore(dir.path(), &opts).await.unwrap();
    assert!(summary.incomplete && summary.baseline.is_none());
    // Only the items changed since archiving began.
    assert_eq!(state.len(), 5 + 3);
    // A coverage record that is not trusted stops the restore too.
    let bad = coverage_record(
        vec!["other/year=2026/month=01/day=01/0-0-0123456789abcdef.parquet".into()],
        1,
    );
    write_coverage(dir.path(), &bad);
    let out = tempfile::tempdir().unwrap();
    let e = run_restore(
        dir.path(),
        &restore_options(at(T0 + 86_400_000), out.path()),
    )
    .await
    .unwrap_err();
    assert!(matches!(e.error, RestoreError::Coverage(_)), "{}", e.error);
}

async fn run_replay(dir: &Path, include_baseline: bool) -> (Vec<Value>, ReplaySummary) {
    let opts = ReplayOptions {
        table: TABLE.into(),
        filter: ddb_archiver::archive::filter::Filter::new(None, None, None, &[]).unwrap(),
        batch_size: 10,
        resume_after: None,
        checkpoint: None,
        skip_corrupt: false,
        memory_budget: 1 << 20,
        include_baseline,
    };
    let mut out: Vec<u8> = Vec::new();
    let summary = {
        let mut output = Output::Lines(&mut out);
        replay(
            &LocalDirSource::new(dir),
            &opts,
            &mut output,
            &indicatif::ProgressBar::hidden(),
        )
        .await
        .unwrap()
    };
    let records = String::from_utf8(out)
        .unwrap()
        .lines()
        .flat_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["Records"].as_array().unwrap().clone()
        })
        .collect();
    (records, summary)
}

#[tokio::test]
async fn replay_leaves_baseline_rows_out_unless_included() {
    let dir = tempfile::tempdir().unwrap();
    mixed_archive(dir.path(), Format::Parquet, true).await;
    let stream = stream_changes();
    let (records, summary) = run_replay(dir.path(), false).await;
    assert_eq!(records.len(), stream.len());
    assert_eq!(summary.baseline_left_out, ITEMS);
    assert!(records
        .iter()
        .all(|r| r["dynamodb"]["SequenceNumber"] != "0"));

    let (records, summary) = run_replay(dir.path(), true).await;
    assert_eq!(records.len(), stream.len() + ITEMS);
    assert_eq!(summary.baseline_included, ITEMS);
    // The baseline rows come first (T0, sequence number 0 before the stream change at
    // T0), as synthetic DynamoDB Streams INSERTs holding the exported item.
    for (i, r) in records[..ITEMS].iter().enumerate() {
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["eventName"], "INSERT");
        assert_eq!(r["tableName"], TABLE);
        assert_eq!(r["dynamodb"]["SequenceNumber"], "0");
        assert_eq!(r["dynamodb"]["StreamViewType"], "NEW_IMAGE");
        assert!(
            r["eventID"].as_str().unwrap().starts_with("baseline-"),
            "{i}"
        );
        let pk = r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap();
        let item: usize = pk.trim_start_matches("INV#").parse().unwrap();
        let want: Value = serde_json::from_str(&image(item, 0)).unwrap();
        assert_eq!(r["dynamodb"]["NewImage"], want);
    }
    assert_eq!(records[ITEMS]["eventID"], "ev-1001");
    // The synthetic records decode as the archiver decodes stream records: the same row.
    let doc = serde_json::json!({ "Records": records[..ITEMS] }).to_string();
    let decoded = ddb_archiver::decode::decode_input(
        doc.as_bytes(),
        "replayed",
        &ddb_archiver::decode::DecodeOptions::default(),
    )
    .unwrap();
    for d in decoded {
        let ddb_archiver::decode::Decoded::Change(c) = d else {
            panic!("{d:?}");
        };
        assert_eq!(c.sequence_number, "0");
        assert_eq!(c.approximate_creation_time_ms, T0);
        assert_eq!(c.table_name, TABLE);
    }
}

async fn verify(dir: &Path, raw: Option<&Path>) -> VerifySummary {
    verify_with(dir, raw, &VerifyOptions::default()).await
}

async fn verify_with(dir: &Path, raw: Option<&Path>, options: &VerifyOptions) -> VerifySummary {
    let raw_source = raw.map(LocalDirSource::new);
    Verifier {
        source: &LocalDirSource::new(dir),
        raw: raw_source
            .as_ref()
            .map(|s| s as &dyn ddb_archiver::archive::source::ArchiveSource),
        options,
        progress: &indicatif::ProgressBar::hidden(),
    }
    .run()
    .await
    .unwrap()
}

#[tokio::test]
async fn verify_checks_baseline_rows_and_the_coverage_record() {
    for format in [Format::Parquet, Format::JsonlGz] {
        let dir = tempfile::tempdir().unwrap();
        let objects = mixed_archive(dir.path(), format, true).await;
        let summary = verify(dir.path(), None).await;
        assert!(summary.ok(), "{format:?}: {}", summary.render_text());
        assert_eq!(summary.checked.coverage, 1);
        assert!(summary.unexpected.is_empty(), "{:?}", summary.unexpected);
        assert_eq!(summary.rows as usize, ITEMS + stream_changes().len());

        // A coverage record that claims more changes than its objects hold.
        let path = write_coverage(
            dir.path(),
            &coverage_record(objects.clone(), ITEMS as u64 + 1),
        );
        let summary = verify(dir.path(), None).await;
        let bad: Vec<&str> = summary.bad.iter().map(|b| b.location.as_str()).collect();
        assert_eq!(
            bad,
            [path.display().to_string().as_str()],
            "{}",
            summary.render_text()
        );
        assert!(summary.bad[0].reasons[0].contains("not archived in full"));

        // Days verified that leave the baseline's day out: its objects are not read, and
        // the count is not checked (the short count above is not found).
        let later = VerifyOptions {
            from: Some(chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()),
            ..VerifyOptions::default()
        };
        let summary = verify_with(dir.path(), None, &later).await;
        assert!(summary.ok(), "{}", summary.render_text());
        assert_eq!(summary.checked.coverage, 1);
        assert_eq!(summary.coverage_not_counted, [path.display().to_string()]);

        // An object of the export gone: the record is reported.
        write_coverage(dir.path(), &coverage_record(objects.clone(), ITEMS as u64));
        std::fs::remove_file(dir.path().join(&objects[0])).unwrap();
        let summary = verify(dir.path(), None).await;
        assert!(!summary.ok());
        let reasons = &summary.bad[0].reasons;
        assert!(reasons[0].contains("which is missing"), "{reasons:?}");
    }
}

#[tokio::test]
async fn verify_reports_a_baseline_row_that_its_export_line_does_not_give() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Archiver::new(
        &settings(dir.path(), Format::JsonlGz),
        Arc::new(LocalDirSink::new(dir.path())),
    )
    .unwrap();
    // The row's new image is not the export line's item.
    let mut wrong = baseline_change(1);
    wrong.new_image = Some(JsonText::from(image(1, 9)));
    a.push(wrong, "export").await;
    // The row's keys are not the item's.
    let mut keys = baseline_change(2);
    keys.keys = JsonText::from(key(3));
    a.push(keys, "export").await;
    // An event ID of another shape.
    let mut id = baseline_change(4);
    id.event_id = "ev-4".into();
    a.push(id, "export").await;
    assert!(a.finish().await.is_clean());
    let summary = verify(dir.path(), None).await;
    let text = summary.render_text();
    let reasons = summary.bad[0].reasons.join("\n");
    assert!(reasons.contains("new_image differ"), "{text}");
    assert!(reasons.contains("keys differ"), "{text}");
    assert!(reasons.contains("lowercase hex"), "{text}");
}

async fn compact(raw: &Path, out: &Path) -> ddb_archiver::compact::CompactSummary {
    Compactor {
        source: &LocalDirSource::new(raw),
        dest: &LocalDirSource::new(out),
        sink: &LocalDirSink::new(out),
        options: &CompactOptions::default(),
        progress: &indicatif::ProgressBar::hidden(),
    }
    .run()
    .await
    .unwrap()
}

#[tokio::test]
async fn compaction_of_a_day_mixing_baseline_and_stream_rows_verifies() {
    let raw = tempfile::tempdir().unwrap();
    mixed_archive(raw.path(), Format::JsonlGz, true).await;
    let out = tempfile::tempdir().unwrap();
    let summary = compact(raw.path(), out.path()).await;
    let first_day = summary
        .days
        .iter()
        .find(|d| d.date == "2026-01-01")
        .unwrap_or_else(|| panic!("{summary:?}"));
    let day_changes = stream_changes()
        .iter()
        .filter(|s| s.time_ms < T0 + 43_200_000)
        .count();
    assert_eq!(
        first_day.rows as usize,
        ITEMS + day_changes,
        "{first_day:?}"
    );
    assert_eq!(first_day.duplicates_dropped, 0);
    assert_eq!(
        first_day.status,
        ddb_archiver::compact::DayStatus::Compacted
    );
    let checked = verify(out.path(), Some(raw.path())).await;
    assert!(checked.ok(), "{}", checked.render_text());
    assert!(checked.checked.compacted > 0 && checked.checked.manifest > 0);
    assert!(checked.behind_raw.is_empty());
    // The compacted rows are in stream order: the baseline rows first at T0, before
    // the stream change at T0.
    let mut rows = Vec::new();
    for (k, bytes) in files(out.path()) {
        if k.ends_with(".parquet") && k.contains("day=01") && k.starts_with(TABLE) {
            rows.extend(
                ddb_archiver::archive::reader::read_rows(
                    Format::Parquet,
                    bytes,
                    &k,
                    ddb_archiver::archive::reader::Projection::ALL,
                )
                .unwrap(),
            );
        }
    }
    assert_eq!(rows.len(), ITEMS + day_changes);
    assert!(rows[..ITEMS].iter().all(|r| r.sequence_number == "0"));
    assert_eq!(rows[ITEMS].event_id, "ev-1001");
    // Compacting again over the same raw archive changes nothing.
    let again = compact(raw.path(), out.path()).await;
    assert_eq!(
        again.count(ddb_archiver::compact::DayStatus::Unchanged),
        again.days.len(),
        "{again:?}"
    );
}

#[tokio::test]
async fn the_coverage_report_names_the_baseline_and_the_stream_changes() {
    let dir = tempfile::tempdir().unwrap();
    mixed_archive(dir.path(), Format::Parquet, true).await;
    let report = ddb_archiver::coverage::coverage(&LocalDirSource::new(dir.path()), None)
        .await
        .unwrap();
    assert_eq!(report.tables.len(), 1);
    let t = &report.tables[0];
    assert_eq!(t.table, TABLE);
    assert_eq!(t.complete_from.as_deref(), Some("2026-01-01T12:00:00.000Z"));
    let b = t.baseline.as_ref().unwrap();
    assert_eq!(b.export_arn.as_deref(), Some(ARN));
    assert_eq!(b.change_count, ITEMS as u64);
    assert!(t.repairs.is_empty());
    let first = t.first_stream_change.as_ref().unwrap();
    assert_eq!(first.event_id, "ev-1001");
    assert_eq!(first.sequence_number, "1001");
    assert_eq!(first.time, "2026-01-01T12:00:00.000Z");
    let last = t.last_stream_change.as_ref().unwrap();
    assert_eq!(
        last.event_id,
        format!("ev-{}", 1000 + stream_changes().len())
    );
    assert_eq!(last.time, "2026-01-02T12:00:00.000Z");
    let text = report.render_text();
    assert!(
        text.contains("complete from 2026-01-01T12:00:00.000Z"),
        "{text}"
    );
    assert!(text.contains(ARN), "{text}");

    // Without a coverage record the table is reported incomplete.
    let plain = tempfile::tempdir().unwrap();
    archive_stream(plain.path(), Format::JsonlGz).await;
    let report = ddb_archiver::coverage::coverage(&LocalDirSource::new(plain.path()), Some(TABLE))
        .await
        .unwrap();
    assert!(report.tables[0].baseline.is_none());
    assert!(report.render_text().contains("NOT COMPLETE"));
}

const INCREMENTAL_ARN: &str =
    "arn:aws:dynamodb:eu-west-1:123456789012:table/invoices/export/01767290400000-12345678";

/// An incremental export's line for `item` written at `micros`, its row as the baseline
/// command makes it (NEW_AND_OLD_IMAGES): INSERT, MODIFY or REMOVE from its images.
fn repair_change(item: usize, micros: i64, new: Option<usize>, old: Option<usize>) -> ChangeRecord {
    let mut line = format!(
        r#"{{"Metadata":{{"WriteTimeMicros":{{"N":"{micros}"}}}},"Keys":{}"#,
        key(item)
    );
    if let Some(v) = new {
        line.push_str(&format!(r#","NewImage":{}"#, image(item, v)));
    }
    if let Some(v) = old {
        line.push_str(&format!(r#","OldImage":{}"#, image(item, v)));
    }
    line.push('}');
    let event_name = match (new, old) {
        (None, _) => EventName::Remove,
        (Some(_), None) => EventName::Insert,
        (Some(_), Some(_)) => EventName::Modify,
    };
    ChangeRecord {
        event_id: ddb_archiver::model::coverage::export_event_id(
            INCREMENTAL_ARN,
            &canonical_key(&key(item)).unwrap(),
            micros,
        ),
        event_name,
        table_name: TABLE.into(),
        sequence_number: NON_STREAM_SEQUENCE_NUMBER.into(),
        approximate_creation_time_ms: micros.div_euclid(1000),
        stream_view_type: Some("NEW_AND_OLD_IMAGES".into()),
        size_bytes: None,
        ttl_delete: false,
        keys: JsonText::from(key(item)),
        new_image: new.map(|v| JsonText::from(image(item, v))),
        old_image: old.map(|v| JsonText::from(image(item, v))),
        record: JsonText::from(line),
        source: SourceKind::Export,
        index: item,
    }
}

#[tokio::test]
async fn a_gap_repair_is_restored_replayed_verified_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    mixed_archive(dir.path(), Format::Parquet, true).await;
    // The window 18:00 to 19:00 on the export's day: item 10 modified, item 11 removed,
    // item 40 inserted.
    let from = T0 + 6 * 3_600_000;
    let micros = |ms: i64| ms * 1000 + 123;
    let repairs = [
        repair_change(10, micros(from + 1_000), Some(5), Some(0)),
        repair_change(11, micros(from + 2_000), None, Some(0)),
        repair_change(40, micros(from + 3_000), Some(1), None),
    ];
    let before = data_keys(dir.path());
    let mut a = Archiver::new(
        &settings(dir.path(), Format::JsonlGz),
        Arc::new(LocalDirSink::new(dir.path())),
    )
    .unwrap();
    for r in repairs.iter().cloned() {
        a.push(r, "incremental").await;
    }
    assert!(a.finish().await.is_clean());
    let mut objects: Vec<String> = data_keys(dir.path())
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    objects.sort();
    let record = CoverageRecord {
        kind: CoverageKind::Repair,
        export_arn: Some(INCREMENTAL_ARN.into()),
        export_type: CoverageExportType::IncrementalExport,
        complete_from: None,
        window: Some(ddb_archiver::model::coverage::CoverageWindow {
            from,
            to: from + 3_600_000,
        }),
        item_count: 3,
        ..coverage_record(objects, 3)
    };
    let key_text = coverage_key(TABLE, CoverageKind::Repair, "01767290400000-12345678").unwrap();
    std::fs::write(dir.path().join(&key_text), record.to_json().unwrap()).unwrap();

    // Verify: the rows are what their incremental lines give, and the repair is whole.
    let summary = verify(dir.path(), None).await;
    assert!(summary.ok(), "{}", summary.render_text());
    assert_eq!(summary.checked.coverage, 2);

    // Restore after the window: the repair's changes are in the state.
    let out = tempfile::tempdir().unwrap();
    let as_of = T0 + 86_400_000 * 2;
    let (_, state) = run_restore(dir.path(), &restore_options(at(as_of), out.path()))
        .await
        .unwrap();
    let mut want = expected(as_of);
    want.insert(key(10), image(10, 5));
    want.remove(&key(11));
    want.insert(key(40), image(40, 1));
    assert_eq!(normalized(&state), normalized(&want));

    // Replay: the repair's rows are synthetic INSERT, MODIFY and REMOVE records at their
    // write times.
    let (records, _) = run_replay(dir.path(), true).await;
    let synthetic: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventID"].as_str().unwrap().starts_with("export-"))
        .collect();
    let names: Vec<&str> = synthetic
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["MODIFY", "REMOVE", "INSERT"]);
    assert!(synthetic[1]["dynamodb"].get("NewImage").is_none());
    assert_eq!(
        synthetic[0]["dynamodb"]["OldImage"],
        serde_json::from_str::<Value>(&image(10, 0)).unwrap()
    );

    // The report lists the repair with its window.
    let report = ddb_archiver::coverage::coverage(&LocalDirSource::new(dir.path()), Some(TABLE))
        .await
        .unwrap();
    let r = &report.tables[0].repairs;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].export_arn.as_deref(), Some(INCREMENTAL_ARN));
    let w = r[0].window.as_ref().unwrap();
    assert_eq!(
        (w.from.as_str(), w.to.as_str()),
        ("2026-01-01T18:00:00.000Z", "2026-01-01T19:00:00.000Z")
    );
    assert!(report
        .render_text()
        .contains("repaired 2026-01-01T18:00:00.000Z"));

    // A row whose event name is not what its images give is reported.
    let bad = tempfile::tempdir().unwrap();
    let mut a = Archiver::new(
        &settings(bad.path(), Format::Parquet),
        Arc::new(LocalDirSink::new(bad.path())),
    )
    .unwrap();
    let mut wrong = repair_change(12, micros(from), None, Some(0));
    wrong.event_name = EventName::Modify;
    a.push(wrong, "incremental").await;
    assert!(a.finish().await.is_clean());
    let summary = verify(bad.path(), None).await;
    assert!(
        summary.bad[0].reasons[0].contains("event_name differ"),
        "{}",
        summary.render_text()
    );
}
