//! The compacted layer never disagrees with the raw archive: a crash and a rerun with
//! other settings, a hostile manifest, Kinesis duplicates, two compactions racing on
//! one day, the grace period and the move of manifests from their old folder. Each
//! case reads back what a reader of the exactly-once view would see: the rows of the
//! day's files whose version is the manifest's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use ddb_archiver::archive::manifest::Manifest;
use ddb_archiver::archive::reader::{read_rows, Projection, Row};
use ddb_archiver::archive::source::{ArchiveSource, LocalDirSource};
use ddb_archiver::compact::{CompactOptions, CompactSummary, Compactor, DayStatus};
use ddb_archiver::encode::EncodedFile;
use ddb_archiver::model::key::{ObjectKey, LEGACY_MANIFESTS_DIR, MANIFESTS_DIR};
use ddb_archiver::model::Format;
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;
use ddb_archiver::sink::{Expect, ObjectSink, Published, PutOutcome, SinkError};

#[path = "util/files.rs"]
mod util;
use util::files;

const TABLE: &str = "ledger";
/// 2026-02-01 00:00:00 UTC.
const DAY_START: i64 = 1_769_904_000;

/// A DynamoDB Streams record of `TABLE` on 2026-02-01.
fn stream_record(i: usize) -> String {
    let secs = DAY_START + (i as i64) * 37;
    format!(
        r#"{{"eventID":"ev-{i}","eventName":"MODIFY","eventSource":"aws:dynamodb","dynamodb":{{"ApproximateCreationDateTime":{secs},"Keys":{{"pk":{{"S":"K{k}"}}}},"NewImage":{{"pk":{{"S":"K{k}"}},"n":{{"N":"{i}.000000000000000000000000000000000001"}},"s":{{"S":"ünï {i}"}}}},"SequenceNumber":"{seq}","SizeBytes":50,"StreamViewType":"NEW_IMAGE"}},"eventSourceARN":"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/x"}}"#,
        k = i % 17,
        seq = 100_000_000_000_000_000_000u128 + i as u128 * 13,
    )
}

async fn archive(dir: &Path, docs: &[String], per_file: usize) {
    let settings = Settings {
        dest: dir.display().to_string(),
        max_file_records: per_file,
        ..Settings::default()
    };
    let mut a = Archiver::new(&settings, Arc::new(LocalDirSink::new(dir))).unwrap();
    for (i, doc) in docs.iter().enumerate() {
        assert!(a.ingest(doc.clone().into_bytes(), &format!("in-{i}")).await);
    }
    let summary = a.finish().await;
    assert!(summary.is_clean(), "{summary:?}");
}

/// 300 changes of one day in files of 20.
async fn raw_day(dir: &Path) {
    let records: Vec<String> = (0..300).map(stream_record).collect();
    let docs: Vec<String> = records
        .chunks(60)
        .map(|c| format!(r#"{{"Records":[{}]}}"#, c.join(",")))
        .collect();
    archive(dir, &docs, 20).await;
}

async fn run_compactor(
    source: &dyn ArchiveSource,
    dest: &dyn ArchiveSource,
    sink: &dyn ObjectSink,
    options: &CompactOptions,
) -> CompactSummary {
    Compactor {
        source,
        dest,
        sink,
        options,
        progress: &indicatif::ProgressBar::hidden(),
    }
    .run()
    .await
    .unwrap()
}

async fn compact_with(
    raw: &Path,
    out: &Path,
    sink: &dyn ObjectSink,
    options: &CompactOptions,
) -> CompactSummary {
    run_compactor(
        &LocalDirSource::new(raw),
        &LocalDirSource::new(out),
        sink,
        options,
    )
    .await
}

async fn compact(raw: &Path, out: &Path, options: &CompactOptions) -> CompactSummary {
    compact_with(raw, out, &LocalDirSink::new(out), options).await
}

fn manifests(dir: &Path) -> BTreeMap<String, Manifest> {
    files(dir)
        .into_iter()
        .filter(|(k, _)| matches!(ObjectKey::parse(k), Some(ObjectKey::Manifest { .. })))
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect()
}

/// What the exactly-once view shows of the compacted layer: for each day with a
/// manifest, the rows of its files of the manifest's version.
fn view(dir: &Path) -> Vec<Row> {
    let all = files(dir);
    let mut rows = Vec::new();
    for m in manifests(dir).values() {
        for (key, bytes) in &all {
            if let Some(ObjectKey::Compacted { version, .. }) = ObjectKey::parse(key) {
                if version == m.version {
                    rows.extend(
                        read_rows(Format::Parquet, bytes.clone(), key, Projection::ALL).unwrap(),
                    );
                }
            }
        }
    }
    rows
}

fn versions_on_disk(dir: &Path) -> BTreeSet<String> {
    files(dir)
        .keys()
        .filter_map(|k| match ObjectKey::parse(k) {
            Some(ObjectKey::Compacted { version, .. }) => Some(version),
            _ => None,
        })
        .collect()
}

/// The view holds each of `n` events once, and the manifest says so.
fn assert_exact(dir: &Path, n: usize) {
    let rows = view(dir);
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(rows.len(), n, "rows in the view");
    assert_eq!(ids.len(), n, "distinct events in the view");
    let m: Vec<Manifest> = manifests(dir).into_values().collect();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].rows as usize, n);
    let listed: u64 = m[0].files.iter().map(|f| f.rows).sum();
    assert_eq!(listed as usize, n);
}

/// What a crash between a day's files and its manifest leaves: the manifests removed.
fn remove_manifests(dir: &Path) {
    for key in manifests(dir).keys() {
        std::fs::remove_file(dir.join(key)).unwrap();
    }
}

/// Settings that make several small files of a day.
fn small_files() -> CompactOptions {
    CompactOptions {
        max_file_bytes: 8_000,
        ..CompactOptions::default()
    }
}

fn after_grace() -> CompactOptions {
    CompactOptions {
        now: Some(chrono::Utc::now() + chrono::Duration::hours(25)),
        ..CompactOptions::default()
    }
}

#[tokio::test]
async fn a_crash_then_a_rerun_with_other_settings_leaves_each_event_once() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_day(raw.path()).await;
    let big = CompactOptions {
        max_file_bytes: 100_000_000,
        ..CompactOptions::default()
    };
    compact(raw.path(), out.path(), &big).await;
    // What a crash between the files and the manifest leaves: files, no manifest.
    remove_manifests(out.path());
    let small = small_files();
    let summary = compact(raw.path(), out.path(), &small).await;
    assert_eq!(summary.days.len(), 1);
    assert_eq!(summary.days[0].status, DayStatus::Compacted, "{summary:#?}");
    let m = manifests(out.path()).into_values().next().unwrap();
    assert!(m.files.len() > 1, "small files: {}", m.files.len());
    assert_exact(out.path(), 300);
    // The crashed run's files are a version no manifest names: kept for the grace
    // period, then deleted by a later run.
    assert_eq!(versions_on_disk(out.path()).len(), 2);
    let later = CompactOptions {
        max_file_bytes: 8_000,
        ..after_grace()
    };
    let summary = compact(raw.path(), out.path(), &later).await;
    assert_eq!(summary.days[0].status, DayStatus::Unchanged);
    assert_eq!(
        versions_on_disk(out.path()),
        BTreeSet::from([m.version.clone()])
    );
    assert_exact(out.path(), 300);
    // The same sources with other settings is another version, never "unchanged".
    let other = compact(raw.path(), out.path(), &big).await;
    assert_eq!(other.days[0].status, DayStatus::Compacted);
    assert_ne!(other.days[0].version, Some(m.version));
    assert_exact(out.path(), 300);
}

/// A sink that fails a streamed file after its first piece, as a connection lost in
/// the middle of an upload would.
struct FailingStreamSink(LocalDirSink);

#[async_trait]
impl ObjectSink for FailingStreamSink {
    async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError> {
        self.0.put(file).await
    }

    async fn replace_streamed(
        &self,
        key: &str,
        _content_type: &'static str,
        pieces: &mut ddb_archiver::sink::Pieces,
    ) -> Result<(), SinkError> {
        let _ = pieces.recv().await;
        Err(SinkError {
            location: self.0.location(key),
            message: "injected: connection reset".to_string(),
        })
    }

    async fn publish(&self, file: &EncodedFile, expect: &Expect) -> Result<Published, SinkError> {
        self.0.publish(file, expect).await
    }

    fn location(&self, key: &str) -> String {
        self.0.location(key)
    }
}

#[tokio::test]
async fn a_store_failing_mid_file_fails_the_day_by_its_cause_and_a_rerun_heals() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_day(raw.path()).await;
    let sink = FailingStreamSink(LocalDirSink::new(out.path()));
    let summary = compact_with(raw.path(), out.path(), &sink, &CompactOptions::default()).await;
    assert_failed_for(&summary, "injected: connection reset");
    assert!(manifests(out.path()).is_empty());
    assert!(versions_on_disk(out.path()).is_empty());
    let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    assert_eq!(summary.days[0].status, DayStatus::Compacted, "{summary:#?}");
    assert_exact(out.path(), 300);
}

#[tokio::test]
async fn a_leftover_part_of_the_same_version_with_other_bytes_is_replaced() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_day(raw.path()).await;
    let small = small_files();
    compact(raw.path(), out.path(), &small).await;
    let published = manifests(out.path()).into_values().next().unwrap();
    // A run that stopped before its manifest, and left a damaged part behind.
    remove_manifests(out.path());
    let damaged = out.path().join(&published.files[1].key);
    std::fs::write(&damaged, b"PAR1 not what the manifest will say").unwrap();
    let summary = compact(raw.path(), out.path(), &small).await;
    assert_eq!(summary.days[0].status, DayStatus::Compacted, "{summary:#?}");
    let m = manifests(out.path()).into_values().next().unwrap();
    assert_eq!(m.version, published.version);
    for f in &m.files {
        let bytes = std::fs::read(out.path().join(&f.key)).unwrap();
        assert_eq!(
            ddb_archiver::archive::manifest::sha256_hex(&bytes),
            f.sha256,
            "{}",
            f.key
        );
    }
    assert_exact(out.path(), 300);
}

#[test]
fn a_crash_at_each_step_is_healed_by_a_rerun() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(raw_day(raw.path()));
    let bin = env!("CARGO_BIN_EXE_ddb-archiver");
    let run = |fail_at: Option<&str>, extra: &[&str]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["compact", "--source"])
            .arg(raw.path())
            .arg("--dest")
            .arg(out.path())
            .args(extra);
        if let Some(point) = fail_at {
            cmd.env("DDB_ARCHIVER_FAIL_AT", point);
        }
        let o = cmd.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    // Between the files and the manifest: nothing is published.
    let (code, text) = run(Some("compact-before-manifest"), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("compact-before-manifest"), "{text}");
    assert!(manifests(out.path()).is_empty());
    assert_eq!(versions_on_disk(out.path()).len(), 1);
    // A healthy rerun with other settings publishes its own version.
    let (code, text) = run(None, &["--max-file-bytes", "30000"]);
    assert_eq!(code, Some(0), "{text}");
    assert_exact(out.path(), 300);
    // Between the manifest and the deletion: published, nothing deleted.
    let (code, text) = run(Some("compact-after-manifest"), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert_exact(out.path(), 300);
    // The rerun finds the day done; one without a grace period removes the rest.
    let (code, text) = run(None, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("unchanged"), "{text}");
    let (code, text) = run(None, &["--grace-period-hours", "0"]);
    assert_eq!(code, Some(0), "{text}");
    let m = manifests(out.path()).into_values().next().unwrap();
    assert_eq!(versions_on_disk(out.path()), BTreeSet::from([m.version]));
    assert_exact(out.path(), 300);
}

#[tokio::test]
async fn a_hostile_manifest_deletes_and_opens_nothing_outside_its_day() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    raw_day(raw.path()).await;
    // Another table and another day in the compacted layer.
    let other_day = stream_record(1).replace(
        &format!("\"ApproximateCreationDateTime\":{}", DAY_START + 37),
        &format!("\"ApproximateCreationDateTime\":{}", DAY_START + 86_400),
    );
    let other_table = stream_record(2).replace(&format!("table/{TABLE}/"), "table/accounts/");
    archive(
        raw.path(),
        &[format!(r#"{{"Records":[{other_day},{other_table}]}}"#)],
        10,
    )
    .await;
    compact(raw.path(), out.path(), &CompactOptions::default()).await;
    let victim = outside.path().join("victim.parquet");
    std::fs::write(&victim, b"not yours").unwrap();
    let before = files(out.path());
    let (key, mut m) = manifests(out.path())
        .into_iter()
        .find(|(k, _)| k.contains(&format!("/{TABLE}/")) && k.contains("day=01"))
        .unwrap();
    let foreign: Vec<String> = before
        .keys()
        .filter(|k| {
            matches!(ObjectKey::parse(k), Some(ObjectKey::Compacted { .. }))
                && (k.contains("accounts/") || k.contains("day=02"))
        })
        .cloned()
        .collect();
    assert_eq!(foreign.len(), 2, "{foreign:?}");
    let template = m.files[0].clone();
    for path in [
        victim.display().to_string(),
        format!("../{}/victim.parquet", outside.path().display()),
        "../../../../../../../../tmp/victim.parquet".to_string(),
    ]
    .into_iter()
    .chain(foreign.iter().cloned())
    {
        let mut f = template.clone();
        f.key = path;
        m.files.push(f);
    }
    for s in &mut m.sources {
        s.location = victim.display().to_string();
    }
    std::fs::write(out.path().join(&key), serde_json::to_vec(&m).unwrap()).unwrap();
    // A late change for that day makes a new version; the run after the grace period
    // deletes superseded files, and only the day's own.
    archive(
        raw.path(),
        &[format!(r#"{{"Records":[{}]}}"#, stream_record(300))],
        10,
    )
    .await;
    let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    assert!(
        summary.days.iter().all(|d| d.status != DayStatus::Failed),
        "{summary:#?}"
    );
    compact(raw.path(), out.path(), &after_grace()).await;
    assert_eq!(std::fs::read(&victim).unwrap(), b"not yours");
    let after = files(out.path());
    for k in &foreign {
        assert_eq!(after.get(k), before.get(k), "{k} was touched");
    }
    // A manifest the size of a disk is refused unread; the day fails, nothing else.
    let huge = out.path().join(&key);
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    let before = files(out.path());
    let summary = compact(raw.path(), out.path(), &after_grace()).await;
    let day = summary
        .days
        .iter()
        .find(|d| d.table == TABLE && d.date == "2026-02-01")
        .unwrap();
    assert_eq!(day.status, DayStatus::Failed);
    assert!(
        day.error
            .as_deref()
            .unwrap_or("")
            .contains("over the limit"),
        "{day:#?}"
    );
    let after = files(out.path());
    assert_eq!(before.len(), after.len());
    assert_eq!(std::fs::read(&victim).unwrap(), b"not yours");
}

/// A Lambda Kinesis record carrying the DynamoDB change `change` (its text), delivered
/// with Kinesis sequence number `seq`.
fn kinesis_record(change: &str, seq: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(change);
    format!(
        r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"p","sequenceNumber":"{seq}","data":"{data}","approximateArrivalTimestamp":1769904001.5}},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000001:{seq}","eventName":"aws:kinesis:record","awsRegion":"eu-west-1","eventSourceARN":"arn:aws:kinesis:eu-west-1:123456789012:stream/s"}}"#
    )
}

fn change(id: &str, ms: i64, value: &str) -> String {
    format!(
        r#"{{"awsRegion":"eu-west-1","eventID":"{id}","eventName":"MODIFY","recordFormat":"application/json","tableName":"{TABLE}","dynamodb":{{"ApproximateCreationDateTime":{ms},"Keys":{{"pk":{{"S":"{id}"}}}},"NewImage":{{"pk":{{"S":"{id}"}},"v":{{"S":"{value}"}}}},"SizeBytes":20}},"eventSource":"aws:dynamodb"}}"#
    )
}

#[tokio::test]
async fn kinesis_duplicates_are_dropped_wherever_they_sort() {
    for budget in [ddb_archiver::compact::DEFAULT_MEMORY_BUDGET, 4_096] {
        let raw = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let ms = DAY_START * 1000 + 5_000;
        let a = change("a", ms, "first");
        // Delivered: a, b (same millisecond), a again with its own sequence number,
        // and a copy of b with a later time, with c between them.
        let docs = [
            kinesis_record(
                &a,
                "4966000000000000000000000000000000000000000000000000100",
            ),
            kinesis_record(
                &change("b", ms, "second"),
                "4966000000000000000000000000000000000000000000000000200",
            ),
            kinesis_record(
                &a,
                "4966000000000000000000000000000000000000000000000000300",
            ),
            kinesis_record(
                &change("c", ms + 10, "third"),
                "4966000000000000000000000000000000000000000000000000400",
            ),
            kinesis_record(
                &change("b", ms + 20, "second"),
                "4966000000000000000000000000000000000000000000000000500",
            ),
        ];
        let docs: Vec<String> = docs
            .iter()
            .map(|r| format!(r#"{{"Records":[{r}]}}"#))
            .collect();
        archive(raw.path(), &docs, 1).await;
        let options = CompactOptions {
            memory_budget: budget,
            ..CompactOptions::default()
        };
        let summary = compact(raw.path(), out.path(), &options).await;
        assert_eq!(summary.days[0].status, DayStatus::Compacted, "{summary:#?}");
        assert_eq!(summary.days[0].duplicates_dropped, 2);
        let rows = view(out.path());
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.event_id.as_str(), r.sequence_number.as_str()))
            .collect();
        // The earliest copy of each event is kept; stream order follows.
        assert_eq!(
            got,
            [
                (
                    "a",
                    "4966000000000000000000000000000000000000000000000000100"
                ),
                (
                    "b",
                    "4966000000000000000000000000000000000000000000000000200"
                ),
                (
                    "c",
                    "4966000000000000000000000000000000000000000000000000400"
                ),
            ],
            "budget {budget}"
        );
        assert_exact(out.path(), 3);
    }
}

/// A sink that, the first time it is asked to publish, lets another compaction of the
/// same day (`other`) run to the end first: a race, deterministically. The other writer
/// is another process in life: here, another thread with a runtime of its own.
struct RacingSink {
    inner: Box<dyn ObjectSink>,
    other: Box<dyn Fn() -> CompactSummary + Send + Sync>,
    raced: AtomicBool,
}

#[async_trait]
impl ObjectSink for RacingSink {
    async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError> {
        self.inner.put(file).await
    }

    async fn replace(&self, file: &EncodedFile) -> Result<(), SinkError> {
        self.inner.replace(file).await
    }

    async fn publish(&self, file: &EncodedFile, expect: &Expect) -> Result<Published, SinkError> {
        if !self.raced.swap(true, Ordering::SeqCst) {
            let summary = std::thread::scope(|s| s.spawn(|| (self.other)()).join().unwrap());
            assert_eq!(summary.days[0].status, DayStatus::Compacted, "{summary:#?}");
        }
        self.inner.publish(file, expect).await
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.inner.delete(key).await
    }

    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}

fn other_settings() -> CompactOptions {
    CompactOptions {
        max_file_bytes: 8_000,
        ..CompactOptions::default()
    }
}

/// The loser of a race: its day failed for the race, nothing of it published.
fn assert_lost(summary: &CompactSummary) {
    assert_failed_for(summary, "another compaction of this day published first");
}

/// The (only) day failed, and its error says `why`.
fn assert_failed_for(summary: &CompactSummary, why: &str) {
    let day = &summary.days[0];
    assert_eq!(day.status, DayStatus::Failed, "{summary:#?}");
    assert!(day.error.as_deref().unwrap_or("").contains(why), "{day:#?}");
}

#[tokio::test]
async fn of_two_compactions_racing_on_a_day_one_wins_and_the_other_changes_nothing() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_day(raw.path()).await;
    let (r, o) = (raw.path().to_path_buf(), out.path().to_path_buf());
    let sink = RacingSink {
        inner: Box::new(LocalDirSink::new(out.path())),
        other: Box::new(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(compact(&r, &o, &other_settings()))
        }),
        raced: AtomicBool::new(false),
    };
    let summary = compact_with(raw.path(), out.path(), &sink, &CompactOptions::default()).await;
    assert_lost(&summary);
    // The winner's version is published and exact; the loser's files wait for the
    // grace period, unread by the view.
    let winner = manifests(out.path()).into_values().next().unwrap();
    assert_ne!(Some(&winner.version), summary.days[0].version.as_ref());
    assert_exact(out.path(), 300);
    assert_eq!(versions_on_disk(out.path()).len(), 2);
    let later = CompactOptions {
        max_file_bytes: 8_000,
        ..after_grace()
    };
    compact(raw.path(), out.path(), &later).await;
    assert_eq!(
        versions_on_disk(out.path()),
        BTreeSet::from([winner.version])
    );
    assert_exact(out.path(), 300);
    // A lock left by a writer stops the publish with a message that names it.
    let m_key = manifests(out.path()).into_keys().next().unwrap();
    let lock = out
        .path()
        .join(Path::new(&m_key).parent().unwrap())
        .join(".manifest.json.lock");
    std::fs::write(&lock, b"").unwrap();
    let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    let error = summary.days[0].error.clone().unwrap_or_default();
    assert!(error.contains(".manifest.json.lock"), "{error}");
    assert_exact(out.path(), 300);
}

/// The compacted layer on the S3 server named by `DDB_ARCHIVER_TEST_S3` (bucket
/// `sink-test`, under `prefix`): a reader and a writer.
async fn s3_layer(
    prefix: &str,
) -> (
    ddb_archiver::archive::source::S3Source,
    ddb_archiver::sink::s3::S3Sink,
) {
    let endpoint = std::env::var("DDB_ARCHIVER_TEST_S3").expect("DDB_ARCHIVER_TEST_S3");
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let options = ddb_archiver::sink::s3::S3Options::default();
    let client = ddb_archiver::aws::s3_at(&shared, &options.client_options(), Some(endpoint));
    (
        ddb_archiver::archive::source::S3Source::new(
            client.clone(),
            "sink-test".into(),
            prefix.into(),
        ),
        ddb_archiver::sink::s3::S3Sink::new(client, "sink-test", prefix, options),
    )
}

#[tokio::test]
#[ignore = "needs s3s-fs: run by scripts/test.d/30-s3-lambda.sh"]
async fn two_compactions_racing_on_s3_one_wins_by_its_etag() {
    let raw = tempfile::tempdir().unwrap();
    raw_day(raw.path()).await;
    let prefix = format!("race-{}/", std::process::id());
    let run = |raw: std::path::PathBuf, prefix: String, options: CompactOptions| async move {
        let (dest, sink) = s3_layer(&prefix).await;
        run_compactor(&LocalDirSource::new(&raw), &dest, &sink, &options).await
    };
    // Both runs see no manifest; the second to publish loses (If-None-Match: *).
    let (r, p) = (raw.path().to_path_buf(), prefix.clone());
    let (dest, inner) = s3_layer(&prefix).await;
    let sink = RacingSink {
        inner: Box::new(inner),
        other: Box::new(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(run(
                r.clone(),
                p.clone(),
                other_settings(),
            ))
        }),
        raced: AtomicBool::new(false),
    };
    let source = LocalDirSource::new(raw.path());
    let summary = run_compactor(&source, &dest, &sink, &CompactOptions::default()).await;
    assert_lost(&summary);
    // Now both see the winner's manifest; the second to publish loses (If-Match).
    let (r, p) = (raw.path().to_path_buf(), prefix.clone());
    let (_, inner) = s3_layer(&prefix).await;
    let sink = RacingSink {
        inner: Box::new(inner),
        other: Box::new(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(run(
                r.clone(),
                p.clone(),
                CompactOptions::default(),
            ))
        }),
        raced: AtomicBool::new(false),
    };
    let third = CompactOptions {
        max_file_bytes: 4_000,
        ..CompactOptions::default()
    };
    let summary = run_compactor(&source, &dest, &sink, &third).await;
    assert_lost(&summary);
    // The published version is the last winner's, and its files hold each event once.
    let keys = dest.list("").await.unwrap();
    let manifest_key = keys
        .iter()
        .find(|k| matches!(ObjectKey::parse(k), Some(ObjectKey::Manifest { .. })))
        .unwrap();
    let m: Manifest = serde_json::from_slice(&dest.get(manifest_key).await.unwrap()).unwrap();
    let mut rows = Vec::new();
    for k in &keys {
        if let Some(ObjectKey::Compacted { version, .. }) = ObjectKey::parse(k) {
            if version == m.version {
                let bytes = dest.get(k).await.unwrap();
                rows.extend(read_rows(Format::Parquet, bytes, k, Projection::ALL).unwrap());
            }
        }
    }
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!((rows.len(), ids.len(), m.rows), (300, 300, 300));
}

#[tokio::test]
async fn manifests_move_out_of_the_hidden_folder() {
    let raw = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    raw_day(raw.path()).await;
    compact(raw.path(), out.path(), &CompactOptions::default()).await;
    // As an older release left it: under `_manifests/`.
    let key = manifests(out.path()).into_keys().next().unwrap();
    let legacy = key.replacen(MANIFESTS_DIR, LEGACY_MANIFESTS_DIR, 1);
    std::fs::create_dir_all(out.path().join(&legacy).parent().unwrap()).unwrap();
    std::fs::rename(out.path().join(&key), out.path().join(&legacy)).unwrap();
    let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    assert_eq!(summary.days[0].status, DayStatus::Unchanged, "{summary:#?}");
    assert!(out.path().join(&key).is_file());
    assert!(!out.path().join(&legacy).exists());
    assert_exact(out.path(), 300);
    // A run that stopped between the move and the deletion left both: the next run
    // removes the old one.
    std::fs::copy(out.path().join(&key), out.path().join(&legacy)).unwrap();
    let summary = compact(raw.path(), out.path(), &CompactOptions::default()).await;
    assert_eq!(summary.days[0].status, DayStatus::Unchanged, "{summary:#?}");
    assert!(!out.path().join(&legacy).exists());
    assert_exact(out.path(), 300);
}
