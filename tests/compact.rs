//! Compaction, in process: events → raw archive (the real pipeline, both formats mixed,
//! part of it archived twice) → `compact` → a compacted layer whose rows are the raw
//! rows, ordered and once each; reruns, late arrivals, file splits, spills and a
//! corrupt source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use ddb_archiver::archive::manifest::{sha256_hex, Manifest};
use ddb_archiver::archive::reader::{read_rows, Projection, Row};
use ddb_archiver::archive::source::LocalDirSource;
use ddb_archiver::compact::{CompactOptions, CompactSummary, Compactor, DayStatus};
use ddb_archiver::model::key::ObjectKey;
use ddb_archiver::model::order::cmp_sequence;
use ddb_archiver::model::Format;
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;

const TABLE: &str = "orders";

/// `n` changes of 40 items over three UTC days (2026-01-01..03), several sharing a
/// second, sequence numbers crossing a digit boundary and not in time order.
fn records(n: usize, first: usize) -> Vec<String> {
    (first..first + n)
        .map(|i| {
            let item = i % 40;
            let secs = 1_767_268_800 + (i as i64 % 3) * 86_400 + (i as i64 / 7) * 60;
            let seq = 99_999_999_999_999_999_000u128 + (i as u128 * 7919) % 5000;
            let name = if i % 11 == 0 { "REMOVE" } else { "MODIFY" };
            let image = format!(
                r#"{{"pk":{{"S":"ITEM#{item}"}},"v":{{"N":"{i}.{i}00000000000000000000000000000001"}},"b":{{"B":"AP8A"}},"u":{{"S":"é ☃ {i}"}}}}"#
            );
            let images = if name == "REMOVE" {
                format!(r#""OldImage":{image}"#)
            } else {
                format!(r#""NewImage":{image},"OldImage":{image}"#)
            };
            format!(
                r#"{{"eventID":"ev-{i}","eventName":"{name}","eventSource":"aws:dynamodb","dynamodb":{{"ApproximateCreationDateTime":{secs},"Keys":{{"pk":{{"S":"ITEM#{item}"}}}},{images},"SequenceNumber":"{seq}","SizeBytes":99,"StreamViewType":"NEW_AND_OLD_IMAGES"}},"eventSourceARN":"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/x"}}"#
            )
        })
        .collect()
}

async fn archive(dir: &Path, format: Format, records: &[String], per_file: usize) {
    let settings = Settings {
        dest: dir.display().to_string(),
        format,
        max_file_records: per_file,
        ..Settings::default()
    };
    let mut a = Archiver::new(&settings, Arc::new(LocalDirSink::new(dir))).unwrap();
    for (i, chunk) in records.chunks(50).enumerate() {
        let doc = format!(r#"{{"Records":[{}]}}"#, chunk.join(","));
        assert!(a.ingest(doc.into_bytes(), &format!("in-{i}")).await);
    }
    let summary = a.finish().await;
    assert!(summary.is_clean(), "{summary:?}");
}

/// A raw archive of 600 changes: the first 400 as Parquet, the rest as gzip JSON lines,
/// changes 300..450 archived a second time in other files.
async fn raw_archive(dir: &Path) -> Vec<String> {
    let all = records(600, 0);
    archive(dir, Format::Parquet, &all[..400], 37).await;
    archive(dir, Format::JsonlGz, &all[400..], 41).await;
    archive(dir, Format::JsonlGz, &all[300..450], 23).await;
    all
}

async fn compact(raw: &Path, dest: &Path, options: &CompactOptions) -> CompactSummary {
    let source = LocalDirSource::new(raw);
    let dest_reader = LocalDirSource::new(dest);
    let sink = LocalDirSink::new(dest);
    Compactor {
        source: &source,
        dest: &dest_reader,
        sink: &sink,
        options,
        progress: &indicatif::ProgressBar::hidden(),
    }
    .run()
    .await
    .unwrap()
}

#[path = "util/files.rs"]
mod files_util;
use files_util::files;

/// The rows of every archive file under `dir` whose key satisfies `keep`, by table-day.
fn rows_by_day(dir: &Path, keep: impl Fn(&ObjectKey) -> bool) -> BTreeMap<String, Vec<Row>> {
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (key, bytes) in files(dir) {
        if !ObjectKey::parse(&key).is_some_and(|k| keep(&k)) {
            continue;
        }
        let day = key.rsplit_once('/').unwrap().0.to_string();
        let rows = read_rows(Format::of_key(&key).unwrap(), bytes, &key, Projection::ALL).unwrap();
        out.entry(day).or_default().extend(rows);
    }
    out
}

fn manifests(dir: &Path) -> BTreeMap<String, Manifest> {
    files(dir)
        .into_iter()
        .filter(|(k, _)| matches!(ObjectKey::parse(k), Some(ObjectKey::Manifest { .. })))
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect()
}

fn is_compacted_key(k: &str) -> bool {
    ObjectKey::parse(k).is_some_and(|k| is_compacted(&k))
}

fn is_compacted(k: &ObjectKey) -> bool {
    matches!(k, ObjectKey::Compacted { .. })
}

#[tokio::test]
async fn a_day_becomes_ordered_distinct_rows_equal_to_the_raw_ones() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_archive(raw.path()).await;
    let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    assert_eq!(summary.days.len(), 3, "{summary:#?}");
    assert!(summary
        .days
        .iter()
        .all(|d| d.status == DayStatus::Compacted));
    assert_eq!(summary.days.iter().map(|d| d.rows).sum::<u64>(), 600);
    assert_eq!(
        summary
            .days
            .iter()
            .map(|d| d.duplicates_dropped)
            .sum::<u64>(),
        150
    );

    let raw_rows = rows_by_day(raw.path(), |k| matches!(k, ObjectKey::Data(_)));
    let compacted = rows_by_day(out.path(), is_compacted);
    assert_eq!(
        raw_rows.keys().collect::<Vec<_>>(),
        compacted.keys().collect::<Vec<_>>()
    );
    for (day, rows) in &compacted {
        // Ordered by time, then sequence number numerically; each event once.
        for w in rows.windows(2) {
            let order = w[0]
                .time_ms
                .cmp(&w[1].time_ms)
                .then_with(|| cmp_sequence(&w[0].sequence_number, &w[1].sequence_number));
            assert!(
                order.is_lt(),
                "{day}: {} before {}",
                w[0].event_id,
                w[1].event_id
            );
        }
        // Every column equals the raw row of the same event.
        let by_id: BTreeMap<&str, &Row> = raw_rows[day]
            .iter()
            .map(|r| (r.event_id.as_str(), r))
            .collect();
        assert_eq!(by_id.len(), rows.len(), "{day}");
        for r in rows {
            assert_eq!(Some(&r), by_id.get(r.event_id.as_str()), "{day}");
        }
    }

    // The manifest names the sources, their checksums, the rows and the event IDs.
    let raw_files = files(raw.path());
    for (key, m) in manifests(out.path()) {
        assert!(
            key.starts_with("ddb-archiver-manifests/orders/year=2026/month=01/day=0"),
            "{key}"
        );
        assert_eq!(m.files.len(), 1);
        let day_rows = &compacted[&m.files[0].key.rsplit_once('/').unwrap().0.to_string()];
        assert_eq!(m.rows as usize, day_rows.len());
        assert_eq!(m.row_digest, Some(row_digest(day_rows)));
        assert_eq!(m.event_id_digest, None);
        for s in &m.sources {
            assert_eq!(s.sha256, sha256_hex(&raw_files[&s.key]));
            assert_eq!(s.bytes as usize, raw_files[&s.key].len());
            assert!(Path::new(&s.location).is_absolute(), "{}", s.location);
        }
        let compacted_files = files(out.path());
        assert_eq!(
            m.files[0].sha256,
            sha256_hex(&compacted_files[&m.files[0].key])
        );
    }
}

/// The manifest's row digest of distinct rows, computed as documented: by event ID, each
/// row's event ID, time, sequence number (texts length-prefixed, numbers little-endian)
/// and the SHA-256 of its record.
fn row_digest(rows: &[Row]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let mut h = Sha256::new();
    for r in sorted {
        h.update((r.event_id.len() as u64).to_le_bytes());
        h.update(r.event_id.as_bytes());
        h.update(r.time_ms.to_le_bytes());
        h.update((r.sequence_number.len() as u64).to_le_bytes());
        h.update(r.sequence_number.as_bytes());
        h.update(Sha256::digest(r.record.as_bytes()));
    }
    ddb_archiver::model::hex::hex(&h.finalize())
}

#[tokio::test]
async fn reruns_are_no_ops_and_late_arrivals_make_a_new_version() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    raw_archive(raw.path()).await;
    compact(raw.path(), out.path(), &CompactOptions::default()).await;
    let first = files(out.path());
    // Same sources: nothing changes; elsewhere: the same bytes.
    let again = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    assert!(again.days.iter().all(|d| d.status == DayStatus::Unchanged));
    assert_eq!(files(out.path()), first);
    compact(raw.path(), other.path(), &CompactOptions::default()).await;
    let other_files = files(other.path());
    for (k, v) in &first {
        if !k.starts_with("ddb-archiver-manifests/") {
            assert_eq!(Some(v), other_files.get(k), "{k}");
        }
    }

    // Late arrivals on the first day (i % 3 == 0): a new version of that day only.
    let late = records(30, 5000);
    archive(raw.path(), Format::Parquet, &late, 100).await;
    let after = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    // The late changes fall on every day.
    assert_eq!(after.days.len(), 3);
    for d in &after.days {
        assert_eq!(d.status, DayStatus::Compacted, "{d:#?}");
        // The old version's files stay for queries that planned on it.
        assert_eq!(d.superseded_deleted, 0, "{d:#?}");
    }
    let during = files(out.path());
    for (key, m) in manifests(out.path()) {
        assert_eq!(m.superseded.len(), 1, "{key}");
        assert_ne!(m.superseded[0].version, m.version);
    }
    for (k, v) in first.iter().filter(|(k, _)| is_compacted_key(k)) {
        assert!(
            during.get(k) == Some(v),
            "{k} is gone within the grace period"
        );
    }
    // A run within the grace period deletes nothing; one after it deletes the old
    // version's files, and only those.
    let later = |hours| CompactOptions {
        now: Some(chrono::Utc::now() + chrono::Duration::hours(hours)),
        ..CompactOptions::default()
    };
    let within = compact(raw.path(), out.path(), &later(23)).await;
    assert!(within
        .days
        .iter()
        .all(|d| d.status == DayStatus::Unchanged && d.superseded_deleted == 0));
    let past = compact(raw.path(), out.path(), &later(25)).await;
    for d in &past.days {
        assert_eq!(
            (d.status, d.superseded_deleted),
            (DayStatus::Unchanged, 1),
            "{d:#?}"
        );
    }
    // Only the new version's files remain, and the manifest names them.
    let now = files(out.path());
    for (key, m) in manifests(out.path()) {
        let versions: BTreeSet<String> = now
            .keys()
            .filter_map(|k| match ObjectKey::parse(k) {
                Some(ObjectKey::Compacted { version, date, .. })
                    if key.contains(&ddb_archiver::model::key::hive_date_path(date)) =>
                {
                    Some(version)
                }
                _ => None,
            })
            .collect();
        assert_eq!(versions, BTreeSet::from([m.version.clone()]), "{key}");
    }
    let total: usize = rows_by_day(out.path(), is_compacted)
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(total, 630);
}

#[tokio::test]
async fn small_files_and_spills_give_the_same_rows() {
    let raw = tempfile::tempdir().unwrap();
    let big = tempfile::tempdir().unwrap();
    let small = tempfile::tempdir().unwrap();
    raw_archive(raw.path()).await;
    compact(raw.path(), big.path(), &CompactOptions::default()).await;
    let options = CompactOptions {
        max_file_bytes: 20_000,
        memory_budget: 30_000,
        ..CompactOptions::default()
    };
    let summary = compact(raw.path(), small.path(), &options).await;
    assert!(
        summary.days.iter().all(|d| d.files.len() > 1),
        "{summary:#?}"
    );
    assert!(
        summary.days.iter().all(|d| d.spilled_runs > 2),
        "{summary:#?}"
    );
    // Parts in order hold the same rows as the single file.
    let one = rows_by_day(big.path(), is_compacted);
    let mut parts: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (key, bytes) in files(small.path()) {
        if let Some(ObjectKey::Compacted { .. }) = ObjectKey::parse(&key) {
            let day = key.rsplit_once('/').unwrap().0.to_string();
            parts
                .entry(day)
                .or_default()
                .extend(read_rows(Format::Parquet, bytes, &key, Projection::ALL).unwrap());
        }
    }
    assert_eq!(one, parts);
    // Spilled runs merge into the same bytes as a day sorted in memory.
    let spilled = tempfile::tempdir().unwrap();
    let options = CompactOptions {
        memory_budget: 30_000,
        ..CompactOptions::default()
    };
    let summary = compact(raw.path(), spilled.path(), &options).await;
    assert!(
        summary
            .days
            .iter()
            .all(|d| d.spilled_runs > 2 && d.spilled_bytes > 10_000),
        "{summary:#?}"
    );
    let in_memory = files(big.path());
    let compacted = |(k, _): &(&String, &Vec<u8>)| !k.starts_with("ddb-archiver-manifests/");
    assert_eq!(
        files(spilled.path())
            .iter()
            .filter(compacted)
            .collect::<Vec<_>>(),
        in_memory.iter().filter(compacted).collect::<Vec<_>>()
    );
    for (_, m) in manifests(small.path()) {
        let counted: u64 = m.files.iter().map(|f| f.rows).sum();
        assert_eq!(counted, m.rows);
    }
}

#[tokio::test]
async fn a_corrupt_source_fails_its_day_only() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_archive(raw.path()).await;
    let victim = files(raw.path())
        .into_keys()
        .find(|k| k.contains("day=02/") && k.ends_with(".json.gz"))
        .unwrap();
    let path = raw.path().join(&victim);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    let by_date: BTreeMap<&str, &ddb_archiver::compact::DayReport> =
        summary.days.iter().map(|d| (d.date.as_str(), d)).collect();
    assert_eq!(by_date["2026-01-01"].status, DayStatus::Compacted);
    assert_eq!(by_date["2026-01-03"].status, DayStatus::Compacted);
    let failed = by_date["2026-01-02"];
    assert_eq!(failed.status, DayStatus::Failed);
    let error = failed.error.as_deref().unwrap();
    assert!(error.contains(&victim), "{error}");
    assert!(files(out.path()).keys().all(|k| !k.contains("day=02/")));
    assert!(summary.render_text().contains("FAILED orders 2026-01-02"));
}

/// The first object read is corrupt and many more are waiting: the day still fails
/// promptly (the readers stop, and nothing waits for them).
#[tokio::test]
async fn a_corrupt_first_source_stops_the_day_without_waiting() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let all = records(600, 0);
    archive(raw.path(), Format::Parquet, &all, 5).await;
    let victim = files(raw.path())
        .into_keys()
        .find(|k| k.contains("day=01/"))
        .unwrap();
    std::fs::write(raw.path().join(&victim), b"PAR1 not really").unwrap();
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        compact(raw.path(), out.path(), &CompactOptions::default()),
    )
    .await
    .expect("compaction ends");
    let failed = &summary.days[0];
    assert_eq!(failed.status, DayStatus::Failed, "{failed:#?}");
    assert!(
        failed.error.as_deref().unwrap().contains(&victim),
        "{failed:#?}"
    );
    assert!(summary.days[1..]
        .iter()
        .all(|d| d.status == DayStatus::Compacted));
}

/// The first 24 bytes of each column chunk of a Parquet file: its first page header.
fn page_header_offsets(file: &[u8]) -> Vec<usize> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::copy_from_slice(file)).unwrap();
    let mut v = Vec::new();
    for group in reader.metadata().row_groups() {
        for column in group.columns() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or(column.data_page_offset()) as usize;
            v.extend(start..(start + 24).min(file.len()));
        }
    }
    v
}

/// A byte flipped anywhere in a source either leaves it readable (the day is compacted)
/// or fails its day naming the object: never a stopped thread or a crash.
#[tokio::test]
async fn a_source_with_any_byte_flipped_fails_its_day_naming_it_or_compacts() {
    let raw = tempfile::tempdir().unwrap();
    let all = records(90, 0);
    archive(raw.path(), Format::Parquet, &all[..60], 60).await;
    archive(raw.path(), Format::JsonlGz, &all[60..], 30).await;
    let mut failed = 0;
    for (victim, original) in files(raw.path())
        .into_iter()
        .filter(|(k, _)| k.contains("day=01/"))
    {
        let path = raw.path().join(&victim);
        let step = (original.len() / 60).max(1);
        let mut offsets: Vec<usize> = (0..original.len()).step_by(step).collect();
        if victim.ends_with(".parquet") {
            // Every page header at the start of each column chunk, byte by byte.
            offsets.extend(page_header_offsets(&original));
        }
        for offset in offsets {
            let mut flipped = original.clone();
            flipped[offset] ^= if offset % 2 == 0 { 0x01 } else { 0xff };
            std::fs::write(&path, &flipped).unwrap();
            let out = tempfile::tempdir().unwrap();
            let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
            for d in summary
                .days
                .iter()
                .filter(|d| d.status == DayStatus::Failed)
            {
                failed += 1;
                let error = d.error.as_deref().unwrap_or_default();
                assert!(
                    error.contains(&victim) && error.contains("corrupt"),
                    "{victim} byte {offset}: {error}"
                );
            }
        }
        std::fs::write(&path, &original).unwrap();
    }
    assert!(failed > 20, "{failed}");
}

#[tokio::test]
async fn typed_columns_and_the_version_column_are_written() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_archive(raw.path()).await;
    let schema_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        schema_dir.path().join("orders.json"),
        r#"{"table":"orders","columns":[{"name":"v","attribute":"v","type":"decimal(38,30)"},{"name":"u","attribute":"u","type":"string"}]}"#,
    )
    .unwrap();
    let options = CompactOptions {
        schemas: ddb_archiver::schema::SchemaSet::load_dir(schema_dir.path()).unwrap(),
        ..CompactOptions::default()
    };
    compact(raw.path(), out.path(), &options).await;
    let manifests = manifests(out.path());
    for (key, bytes) in files(out.path()) {
        if let Some(ObjectKey::Compacted { version, .. }) = ObjectKey::parse(&key) {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .unwrap();
            let names: Vec<String> = reader
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            assert_eq!(
                &names[12..],
                ["v", "u", "type_errors", "compaction_version"]
            );
            assert!(manifests.values().any(|m| m.version == version));
            for batch in reader.build().unwrap() {
                let batch = batch.unwrap();
                let col = batch.column_by_name("compaction_version").unwrap();
                let col = arrow::array::AsArray::as_string::<i32>(col);
                assert!(col.iter().all(|v| v == Some(version.as_str())));
            }
        }
    }
}

#[tokio::test]
async fn the_maintenance_run_compacts_closed_days_and_reports_failures() {
    use ddb_archiver::maintenance::{
        Maintenance, MaintenanceError, MaintenanceOutcome, MaintenanceReport, MaintenanceSettings,
    };
    let compaction = |o: MaintenanceOutcome| -> MaintenanceReport {
        match o {
            MaintenanceOutcome::Compact(r) => r,
            other => panic!("{other:?}"),
        }
    };
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_archive(raw.path()).await;
    let m = Maintenance {
        source: Box::new(LocalDirSource::new(raw.path())),
        dest: Box::new(LocalDirSource::new(out.path())),
        sink: Arc::new(LocalDirSink::new(out.path())),
        settings: MaintenanceSettings::default(),
        function_name: "maint".to_string(),
    };
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    // 2026-01-04 03:00: 01-01 and 01-02 are closed (26 h past their end), 01-03 is not.
    let report = compaction(
        m.handle(br#"{"action":"compact"}"#, at("2026-01-04T03:00:00Z"), None)
            .await
            .unwrap(),
    );
    let dates: Vec<&str> = report
        .summary
        .days
        .iter()
        .map(|d| d.date.as_str())
        .collect();
    assert_eq!(dates, ["2026-01-01", "2026-01-02"]);
    assert!(files(out.path()).keys().all(|k| !k.contains("day=03/")));
    // The next day's run compacts 01-03 and leaves the others as they are.
    let report = compaction(
        m.handle(br#"{"action":"compact"}"#, at("2026-01-05T03:00:00Z"), None)
            .await
            .unwrap(),
    );
    let statuses: Vec<DayStatus> = report.summary.days.iter().map(|d| d.status).collect();
    assert_eq!(
        statuses,
        [
            DayStatus::Unchanged,
            DayStatus::Unchanged,
            DayStatus::Compacted
        ]
    );
    // The weekly verify run checks both layers of the last 8 days.
    match m
        .handle(br#"{"action":"verify"}"#, at("2026-01-05T03:00:00Z"), None)
        .await
        .unwrap()
    {
        MaintenanceOutcome::Verify(v) => {
            assert!(v.raw.ok() && v.compacted.ok(), "{v:#?}");
            assert!(
                v.raw.checked.raw > 20 && v.compacted.checked.compacted == 3,
                "{v:#?}"
            );
            assert!(v.emf("maint", 1).contains(r#""VerifyBadObjects":0"#));
        }
        other => panic!("{other:?}"),
    }
    // A corrupt late source fails its day, is retried on every run, and counts as
    // overdue once 74 hours past the day's end.
    let before = files(raw.path());
    // ev-600 falls on the first day (600 % 3 == 0, 85 minutes after noon).
    archive(raw.path(), Format::JsonlGz, &records(1, 600), 10).await;
    let victim = files(raw.path())
        .into_keys()
        .find(|k| !before.contains_key(k))
        .unwrap();
    assert!(victim.contains("day=01/"), "{victim}");
    std::fs::write(raw.path().join(&victim), b"not gzip").unwrap();
    // Day 01 ended 2026-01-02 00:00: overdue from 2026-01-05 02:00.
    for (now, overdue) in [("2026-01-05T01:00:00Z", 0), ("2026-01-05T03:00:00Z", 1)] {
        match m.handle(br#"{"action":"compact"}"#, at(now), None).await {
            Err(MaintenanceError::DaysFailed { failed, days }) => {
                assert_eq!(failed, 1);
                assert!(
                    days.contains("2026-01-01") && days.contains(&victim),
                    "{days}"
                );
            }
            other => panic!("{other:?}"),
        }
        let report = ddb_archiver::maintenance::compact_closed_days(
            m.source.as_ref(),
            m.dest.as_ref(),
            m.sink.as_ref(),
            &m.settings,
            at(now),
            None,
            &chrono::Utc::now,
        )
        .await
        .unwrap();
        assert_eq!(report.uncompacted_past_threshold, overdue, "{now}");
    }
    // Verify names the corrupt source.
    match m
        .handle(br#"{"action":"verify"}"#, at("2026-01-05T03:00:00Z"), None)
        .await
    {
        Err(MaintenanceError::BadObjects { count, objects }) => {
            assert_eq!(count, 1);
            assert!(objects.contains(&victim), "{objects}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.handle(br#"{"action":"defrag"}"#, at("2026-01-05T03:00:00Z"), None)
            .await,
        Err(MaintenanceError::Event(_))
    ));
}

#[tokio::test]
async fn the_maintenance_run_starts_no_day_near_its_deadline_and_shares_time_among_tables() {
    use ddb_archiver::maintenance::{compact_closed_days, MaintenanceSettings};
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let orders = records(120, 0);
    let invoices: Vec<String> = orders
        .iter()
        .map(|r| {
            r.replace("table/orders/", "table/invoices/")
                .replace("\"ev-", "\"inv-")
        })
        .collect();
    archive(raw.path(), Format::Parquet, &orders, 50).await;
    archive(raw.path(), Format::Parquet, &invoices, 50).await;
    let source = LocalDirSource::new(raw.path());
    let dest = LocalDirSource::new(out.path());
    let sink = LocalDirSink::new(out.path());
    let settings = MaintenanceSettings::default();
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    // 2026-01-05 03:00: 01-01, 01-02 and 01-03 of both tables are closed. The clock
    // moves one minute per look; the deadline leaves room for three starts.
    let start = at("2026-01-05T03:00:00Z");
    let looks = std::sync::atomic::AtomicI64::new(0);
    let clock = || {
        start + chrono::Duration::minutes(looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    };
    let deadline = start
        + chrono::Duration::from_std(settings.deadline_margin).unwrap()
        + chrono::Duration::seconds(150);
    let report = compact_closed_days(
        &source,
        &dest,
        &sink,
        &settings,
        start,
        Some(deadline),
        &clock,
    )
    .await
    .unwrap();
    let done: Vec<(String, String)> = report
        .summary
        .days
        .iter()
        .map(|d| (d.table.clone(), d.date.clone()))
        .collect();
    let day = |t: &str, d: &str| (t.to_string(), format!("2026-01-0{d}"));
    // One day of each table in turn, oldest first: neither table waits for the other.
    assert_eq!(
        done,
        [
            day("invoices", "1"),
            day("orders", "1"),
            day("invoices", "2")
        ]
    );
    assert!(report
        .summary
        .days
        .iter()
        .all(|d| d.status == DayStatus::Compacted));
    assert_eq!(
        report.days_left,
        [day("orders", "2"), day("invoices", "3"), day("orders", "3")]
    );
    assert!(report.emf("f", 0).contains(r#""CompactionDaysLeft":3"#));
    // The next run, with time enough, takes the days left.
    let report = compact_closed_days(
        &source,
        &dest,
        &sink,
        &settings,
        start,
        None,
        &chrono::Utc::now,
    )
    .await
    .unwrap();
    assert!(report.days_left.is_empty());
    assert_eq!(report.summary.count(DayStatus::Compacted), 3);
    assert_eq!(report.summary.count(DayStatus::Unchanged), 3);
    // A deadline already within the margin starts nothing.
    let report = compact_closed_days(
        &source,
        &dest,
        &sink,
        &settings,
        start,
        Some(start),
        &chrono::Utc::now,
    )
    .await
    .unwrap();
    assert!(report.summary.days.is_empty());
    assert_eq!(report.days_left.len(), 6);
}

#[tokio::test]
async fn the_command_exits_one_naming_a_failed_day_and_refuses_bad_flags() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_archive(raw.path()).await;
    let victim = files(raw.path())
        .into_keys()
        .find(|k| k.contains("day=03/") && k.ends_with(".parquet"))
        .unwrap();
    std::fs::write(raw.path().join(&victim), b"PAR1 not parquet").unwrap();
    let bin = env!("CARGO_BIN_EXE_ddb-archiver");
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).output().unwrap();
    let (r, o) = (raw.path().to_str().unwrap(), out.path().to_str().unwrap());
    let res = run(&["compact", "--source", r, "--dest", o]);
    assert_eq!(res.status.code(), Some(1));
    let text = String::from_utf8_lossy(&res.stdout);
    assert!(
        text.contains("2 compacted, 0 unchanged, 1 failed"),
        "{text}"
    );
    assert!(text.contains(&victim), "{text}");
    let res = run(&[
        "compact",
        "--source",
        r,
        "--dest",
        o,
        "--to",
        "2026-01-02",
        "--json",
    ]);
    assert_eq!(res.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(v["days"].as_array().unwrap().len(), 2);
    assert!(v["days"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == "unchanged"));
    for (args, flag) in [
        (vec!["compact", "--source", r, "--dest", r], "--dest"),
        (
            vec!["compact", "--source", "gs://x", "--dest", o],
            "--source",
        ),
        (
            vec!["compact", "--source", r, "--dest", o, "--table", "a/b"],
            "--table",
        ),
        (
            vec![
                "compact",
                "--source",
                r,
                "--dest",
                o,
                "--from",
                "2026-01-03",
                "--to",
                "2026-01-01",
            ],
            "--from",
        ),
    ] {
        let res = run(&args);
        assert_eq!(res.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(&format!("invalid {flag}")), "{args:?}: {err}");
    }
}
