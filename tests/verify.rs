//! Verify, in process: generated changes (DynamoDB Streams and Kinesis, both formats,
//! archived twice in part, one rejected record) are archived and compacted, both trees
//! pass, and then single bytes flipped at many offsets of each kind of object must be
//! reported, naming the object, whenever a reader would read something else. Against
//! s3s-fs (ignored here, run by scripts/test.d/52-verify.sh) every flip must be
//! reported, because S3's stored checksum no longer matches.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ddb_archiver::archive::manifest::{self, Manifest};
use ddb_archiver::archive::reader;
use ddb_archiver::archive::source::{ArchiveSource, LocalDirSource, SourceError};
use ddb_archiver::compact::{CompactOptions, Compactor};
use ddb_archiver::model::key::{partition_path, ObjectKey};
use ddb_archiver::model::Format;
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::schema::SchemaSet;
use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;
use ddb_archiver::sink::ObjectSink;
use ddb_archiver::verify::{ObjectKind, Verifier, VerifyOptions, VerifySummary};

const TABLE: &str = "invoices";
const KINESIS_TABLE: &str = "kin_table";

/// Kinesis sequence numbers: these 52 digits and four more.
const KINESIS_SEQUENCE: &str = "4965782840918770152001999524250839011995335832519258";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn schemas() -> SchemaSet {
    SchemaSet::load_dir(&schemas_dir()).unwrap()
}

/// DynamoDB Streams changes of `invoices` over two UTC days, every image typed by the
/// bundled schema (numbers, lists, sets, binary), some values not fitting their column.
fn stream_records(n: usize) -> Vec<String> {
    let start: i64 = 1_767_261_600; // 2026-01-01T10:00:00Z
    (0..n)
        .map(|i| {
            let secs = start + i as i64 * 3_000;
            let name = if i % 5 == 4 { "MODIFY" } else { "INSERT" };
            let image = format!(
                r#"{{"pk":{{"S":"INV#{i}"}},"customer":{{"S":"c{}"}},"amount":{{"N":"{i}.5{i}"}},"big":{{"N":"1E+{i}"}},"lines":{{"L":[{{"M":{{"sku":{{"S":"s{i}"}},"price":{{"N":"0.{i}"}}}}}}]}},"tags":{{"SS":["a","b{i}"]}},"sig":{{"B":"AAEC"}},"paid":{{"BOOL":{}}},"issued_at":{{"S":"2026-01-0{}T00:00:00Z"}}}}"#,
                i % 3,
                i % 2 == 0,
                1 + i % 9
            );
            let old = if name == "MODIFY" {
                format!(r#","OldImage":{image}"#)
            } else {
                String::new()
            };
            format!(
                r#"{{"eventID":"ev-{i}","eventName":"{name}","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"eu-west-1","dynamodb":{{"ApproximateCreationDateTime":{secs},"Keys":{{"pk":{{"S":"INV#{i}"}}}},"NewImage":{image}{old},"SequenceNumber":"{}","SizeBytes":{},"StreamViewType":"NEW_AND_OLD_IMAGES"}},"eventSourceARN":"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000"}}"#,
                99_999_999_999_999_999_990u128 + i as u128,
                100 + i
            )
        })
        .collect()
}

/// Kinesis records carrying DynamoDB changes of `kin_table`, times in milliseconds,
/// sequence numbers `seq_base` followed by four digits.
fn kinesis_records(n: usize, seq_base: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("kin-{i}");
            let payload = serde_json::json!({"awsRegion": "eu-west-1", "eventID": id,
                "eventName": "INSERT", "userIdentity": null, "recordFormat": "application/json",
                "tableName": KINESIS_TABLE, "eventSource": "aws:dynamodb",
                "dynamodb": {"ApproximateCreationDateTime": 1_767_300_000_000u64 + i as u64 * 7,
                    "Keys": {"pk": {"S": id}}, "NewImage": {"pk": {"S": id}, "n": {"N": "1E+125"}},
                    "SizeBytes": 9}});
            let seq = format!("{seq_base}{i:04}");
            serde_json::json!({"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p",
                "sequenceNumber": seq,
                "data": base64::engine::general_purpose::STANDARD.encode(payload.to_string()),
                "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventID": format!("shardId-0:{seq}"),
                "eventName": "aws:kinesis:record"})
            .to_string()
        })
        .collect()
}

/// A record with no `dynamodb` part: rejected.
const REJECTED: &str = r#"{"eventID":"bad-1","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:eu-west-1:1:table/invoices/stream/x"}"#;

fn doc(records: &[String]) -> String {
    format!("{{\"Records\":[{}]}}", records.join(","))
}

fn settings(dest: &str, format: Format) -> Settings {
    Settings {
        dest: dest.to_string(),
        format,
        table: None,
        max_file_bytes: 1 << 20,
        max_file_records: 9,
        max_file_age_secs: 300,
        max_buffer_bytes: 1 << 24,
        kms_key_id: None,
        schemas: Some(schemas_dir()),
    }
}

/// Archives every layout into `sink`: Parquet, gzip JSON lines, a part again (other
/// files, the same events), Kinesis in both formats (sequence numbers `seq_base` and
/// four digits), one rejected record.
async fn archive_all(dest: &str, sink: Arc<dyn ObjectSink>, seq_base: &str) {
    let stream = stream_records(30);
    let kinesis = kinesis_records(12, seq_base);
    let runs: [(Format, Vec<String>); 5] = [
        (Format::Parquet, stream[..16].to_vec()),
        (Format::JsonlGz, stream[16..].to_vec()),
        (Format::JsonlGz, stream[12..20].to_vec()),
        (Format::Parquet, kinesis[..6].to_vec()),
        (Format::JsonlGz, kinesis[6..].to_vec()),
    ];
    for (format, records) in runs {
        let mut a = Archiver::new(&settings(dest, format), Arc::clone(&sink)).unwrap();
        assert!(a.ingest(doc(&records).into_bytes(), "gen").await);
        let s = a.finish().await;
        assert!(s.is_clean(), "{s:?}");
    }
    let mut a = Archiver::new(&settings(dest, Format::JsonlGz), Arc::clone(&sink)).unwrap();
    let mut with_bad = stream_records(2);
    with_bad.push(REJECTED.to_string());
    assert!(a.ingest(doc(&with_bad).into_bytes(), "with-bad").await);
    assert_eq!(a.finish().await.rejected, 1);
}

async fn compact_into(raw: &dyn ArchiveSource, dest: &dyn ArchiveSource, sink: &dyn ObjectSink) {
    let options = CompactOptions {
        schemas: schemas(),
        ..CompactOptions::default()
    };
    let summary = Compactor {
        source: raw,
        dest,
        sink,
        options: &options,
        progress: &indicatif::ProgressBar::hidden(),
    }
    .run()
    .await
    .unwrap();
    assert!(summary.days.len() >= 3, "{summary:?}");
}

/// A raw tree and its compacted layer in two directories.
async fn local_trees() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let comp = dir.path().join("compacted");
    archive_all(
        &raw.display().to_string(),
        Arc::new(LocalDirSink::new(&raw)),
        KINESIS_SEQUENCE,
    )
    .await;
    compact_into(
        &LocalDirSource::new(&raw),
        &LocalDirSource::new(&comp),
        &LocalDirSink::new(&comp),
    )
    .await;
    (dir, raw, comp)
}

async fn verify(source: &dyn ArchiveSource, options: &VerifyOptions) -> VerifySummary {
    verify_with_raw(source, None, options).await
}

async fn verify_with_raw(
    source: &dyn ArchiveSource,
    raw: Option<&dyn ArchiveSource>,
    options: &VerifyOptions,
) -> VerifySummary {
    Verifier {
        source,
        raw,
        options,
        progress: &indicatif::ProgressBar::hidden(),
    }
    .run()
    .await
    .unwrap()
}

fn with_schemas() -> VerifyOptions {
    VerifyOptions {
        schemas: Some(schemas()),
        ..VerifyOptions::default()
    }
}

#[tokio::test]
async fn archived_and_compacted_trees_pass() {
    let (_dir, raw, comp) = local_trees().await;
    let s = verify(&LocalDirSource::new(&raw), &with_schemas()).await;
    assert!(s.ok(), "{}", s.render_text());
    assert!(s.typed_columns_checked);
    assert!(s.checked.raw >= 8, "{s:?}");
    assert_eq!(s.checked.rejected, 1);
    assert_eq!((s.checked.compacted, s.checked.manifest), (0, 0));
    assert_eq!(s.rows, 30 + 8 + 12 + 2);
    let c = verify(&LocalDirSource::new(&comp), &with_schemas()).await;
    assert!(c.ok(), "{}", c.render_text());
    assert!(c.checked.compacted >= 3 && c.checked.manifest == c.checked.compacted);
    assert_eq!(c.rows, 30 + 12, "each event once");
    let plain = verify(&LocalDirSource::new(&comp), &VerifyOptions::default()).await;
    assert!(plain.ok() && !plain.typed_columns_checked);
    assert!(plain.render_text().contains("typed columns not checked"));

    // An object of another name is listed, not a failure; filters select days.
    std::fs::write(raw.join("invoices/notes.txt"), b"x").unwrap();
    let s = verify(&LocalDirSource::new(&raw), &VerifyOptions::default()).await;
    assert!(s.ok());
    assert_eq!(s.unexpected.len(), 1, "{s:?}");
    let one_day = VerifyOptions {
        table: Some(TABLE.into()),
        from: chrono::NaiveDate::from_ymd_opt(2026, 1, 2),
        ..VerifyOptions::default()
    };
    let s = verify(&LocalDirSource::new(&raw), &one_day).await;
    assert!(s.ok() && s.checked.raw >= 1 && s.checked.raw < 8, "{s:?}");
}

/// The objects to flip: one of each kind, with the verify options that select its day.
fn targets(raw: &Path, comp: &Path) -> Vec<(&'static str, PathBuf, String, VerifyOptions)> {
    let keys = |root: &Path| -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    };
    let mut picked: Vec<(&'static str, PathBuf, String, VerifyOptions)> = Vec::new();
    let select = |table: Option<&str>, date| VerifyOptions {
        table: table.map(str::to_string),
        from: Some(date),
        to: Some(date),
        schemas: Some(schemas()),
        ..VerifyOptions::default()
    };
    for (root, label_of) in [(raw, 0), (comp, 1)] {
        for key in keys(root) {
            let (label, options) = match ObjectKey::parse(&key) {
                Some(ObjectKey::Data(d)) if label_of == 0 && d.table == TABLE => (
                    match d.format {
                        Format::Parquet => "raw .parquet",
                        Format::JsonlGz => "raw .json.gz",
                    },
                    select(Some(&d.table), d.date),
                ),
                Some(ObjectKey::Data(d)) if d.table == KINESIS_TABLE => (
                    match d.format {
                        Format::Parquet => "kinesis .parquet",
                        Format::JsonlGz => "kinesis .json.gz",
                    },
                    select(Some(&d.table), d.date),
                ),
                Some(ObjectKey::Rejected { date, .. }) => {
                    ("_rejected .json.gz", select(Some("no_such_table"), date))
                }
                Some(ObjectKey::Compacted { table, date, .. }) if table == TABLE => {
                    ("compacted .parquet", select(Some(&table), date))
                }
                Some(ObjectKey::Manifest { table, date }) if table == TABLE => {
                    ("manifest.json", select(Some(&table), date))
                }
                _ => continue,
            };
            if !picked.iter().any(|p| p.0 == label) {
                picked.push((label, root.to_path_buf(), key, options));
            }
        }
    }
    assert_eq!(
        picked.len(),
        7,
        "{:?}",
        picked.iter().map(|p| p.0).collect::<Vec<_>>()
    );
    picked
}

/// What a reader reads from an object: Arrow batches with their schema, or the
/// decompressed text, or the manifest's fields; an error reads as itself.
fn reading(key: &str, bytes: &[u8]) -> String {
    if key.ends_with(".parquet") {
        // The Parquet crate panics on some corrupt pages: that reads as an error.
        let read = std::panic::catch_unwind(|| parquet_reading(key, bytes));
        read.unwrap_or_else(|_| "error: the reader panicked".to_string())
    } else if key.ends_with(".json.gz") {
        match reader::gunzip(bytes, key) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => format!("error {e}"),
        }
    } else {
        // `created_by` and the sources' `location`s only inform people: they are not
        // checked, and never opened.
        match serde_json::from_slice::<ddb_archiver::archive::manifest::Manifest>(bytes) {
            Ok(mut m) => {
                m.created_by.clear();
                m.sources.iter_mut().for_each(|s| s.location.clear());
                format!("{m:?}")
            }
            Err(e) => format!("error {e}"),
        }
    }
}

/// The Arrow batches (schema included) of a Parquet object, up to the first error.
fn parquet_reading(key: &str, bytes: &[u8]) -> String {
    match reader::parquet_all_batches(bytes.to_vec(), key) {
        Err(e) => format!("error {e}"),
        // A reader that failed once may fail forever: stop at the first error.
        Ok(mut batches) => {
            let mut out = String::new();
            for b in batches.by_ref() {
                match b {
                    Ok(b) => out.push_str(&format!("{b:?}\n")),
                    Err(e) => {
                        out.push_str(&format!("error {e}"));
                        break;
                    }
                }
            }
            out
        }
    }
}

/// Bytes flipped at each end of an object.
const ENDS: usize = 32;

/// Offsets to flip: the first and last [`ENDS`] bytes, and every `step`-th byte.
fn offsets(len: usize, step: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len.min(ENDS)).collect();
    v.extend((ENDS..len.saturating_sub(ENDS)).step_by(step.max(1)));
    v.extend(len.saturating_sub(ENDS).max(ENDS.min(len))..len);
    v.dedup();
    v
}

/// Tries, detected, visible to a reader, invisible and not reported.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    tried: usize,
    detected: usize,
    visible: usize,
    invisible_passed: usize,
}

/// Flips one byte at each sampled offset of the object under `path` (`key` in `tree`),
/// verifies with `options`, and restores it. Every flip that changes what a reader
/// reads must be reported, naming the object; with `every`, every flip must be.
/// About `interior` offsets are sampled between the two ends.
#[allow(clippy::too_many_arguments)]
async fn flip_each(
    label: &str,
    path: &Path,
    key: &str,
    tree: &dyn ArchiveSource,
    raw: Option<&dyn ArchiveSource>,
    options: &VerifyOptions,
    every: bool,
    interior: usize,
) -> Counts {
    let original = std::fs::read(path).unwrap();
    let location = tree.location(key);
    let want = reading(key, &original);
    let mut counts = Counts::default();
    let step = (original.len() / interior).max(1);
    for offset in offsets(original.len(), step) {
        let mask = if offset % 2 == 0 { 0x01u8 } else { 0xff };
        let mut flipped = original.clone();
        flipped[offset] ^= mask;
        std::fs::write(path, &flipped).unwrap();
        let s = verify_with_raw(tree, raw, options).await;
        let detected = s.bad.iter().any(|b| b.location == location);
        let visible = reading(key, &flipped) != want;
        counts.tried += 1;
        counts.detected += usize::from(detected);
        counts.visible += usize::from(visible);
        counts.invisible_passed += usize::from(!visible && !detected);
        assert!(
            detected || (!visible && !every),
            "{label} {key}: byte {offset} ^ {mask:#04x} (changes what is read: {visible}) not reported:\n{}",
            s.render_text()
        );
    }
    std::fs::write(path, &original).unwrap();
    counts
}

#[tokio::test]
async fn flipped_bytes_that_change_what_is_read_are_reported() {
    let (_dir, raw, comp) = local_trees().await;
    let raw_source = LocalDirSource::new(&raw);
    let mut results = Vec::new();
    for (label, root, key, options) in targets(&raw, &comp) {
        let source = LocalDirSource::new(&root);
        // The compacted layer is checked against its raw archive.
        let with_raw: Option<&dyn ArchiveSource> = (root == comp).then_some(&raw_source);
        let path = root.join(&key);
        let counts = flip_each(label, &path, &key, &source, with_raw, &options, false, 30).await;
        results.push((label, counts));
    }
    for (label, c) in &results {
        eprintln!(
            "{label:20} tried {:4}  detected {:4}  visible {:4}  invisible and passed {:4}",
            c.tried, c.detected, c.visible, c.invisible_passed
        );
    }
    for (label, c) in &results {
        assert!(c.tried >= 80, "{label}: {c:?}");
        assert!(
            c.visible > c.tried / 2,
            "{label}: most flips change what is read: {c:?}"
        );
        if !label.starts_with("_rejected") && !label.starts_with("manifest") {
            // The manifest holds each compacted file's SHA-256, and a raw object of this
            // version must be its records' fresh encoding: nothing is invisible.
            assert_eq!(c.invisible_passed, 0, "{label}: {c:?}");
        }
    }
}

/// Against a real s3s-fs whose URL is in `DDB_ARCHIVER_TEST_S3` and whose data
/// directory is `DDB_ARCHIVER_TEST_S3_ROOT`, with a bucket `verify-test` and
/// credentials in the usual environment variables; run by scripts/test.d/52-verify.sh.
/// The compacted layer is verified with its raw archive (`--raw`).
/// Bytes are flipped in s3s-fs's files behind S3's back: the checksum it stored at
/// upload no longer matches, so every flip is reported, even those no reader sees.
#[tokio::test]
#[ignore = "needs s3s-fs: run by scripts/test.d/52-verify.sh"]
async fn on_s3_every_flip_is_reported() {
    use ddb_archiver::archive::source::S3Source;
    use ddb_archiver::sink::s3::{S3Options, S3Sink};
    const BUCKET: &str = "verify-test";
    let endpoint = std::env::var("DDB_ARCHIVER_TEST_S3").expect("DDB_ARCHIVER_TEST_S3");
    let data = PathBuf::from(std::env::var("DDB_ARCHIVER_TEST_S3_ROOT").expect("root"));
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let options = S3Options::default();
    let client = ddb_archiver::aws::s3_at(&shared, &options.client_options(), Some(endpoint));
    let source = |prefix: &str| S3Source::new(client.clone(), BUCKET.into(), prefix.into());
    let sink = |prefix: &str| S3Sink::new(client.clone(), BUCKET, prefix, options.clone());
    // s3s-fs keeps an object's checksum in a file named after its key, and a key with
    // two 56-digit sequence numbers makes that name too long for the file system: the
    // checksum is lost (and verify rightly reports it missing). Shorter ones here.
    archive_all(
        &format!("s3://{BUCKET}/raw"),
        Arc::new(sink("raw/")),
        "4965782840918770",
    )
    .await;
    compact_into(&source("raw/"), &source("compacted/"), &sink("compacted/")).await;
    let (raw, comp) = (source("raw/"), source("compacted/"));
    for (tree, want) in [(&raw, "raw"), (&comp, "compacted")] {
        let with_raw: Option<&dyn ArchiveSource> = (want == "compacted").then_some(&raw);
        let s = verify_with_raw(tree, with_raw, &with_schemas()).await;
        assert!(s.ok(), "{want}: {}", s.render_text());
        assert_eq!(s.sources_not_read, 0, "{want}");
        let c = &s.checked;
        assert_eq!(
            s.checksums_compared,
            c.raw + c.rejected + c.compacted + c.manifest,
            "{want}: every object has its stored checksum compared"
        );
    }
    let bucket = data.join(BUCKET);
    let mut results = Vec::new();
    for (label, root, key, options) in targets(&bucket.join("raw"), &bucket.join("compacted")) {
        let (tree, with_raw): (&dyn ArchiveSource, Option<&dyn ArchiveSource>) =
            if root.ends_with("raw") {
                (&raw, None)
            } else {
                (&comp, Some(&raw))
            };
        let path = root.join(&key);
        let counts = flip_each(label, &path, &key, tree, with_raw, &options, true, 12).await;
        results.push((label, counts));
    }
    for (label, c) in &results {
        eprintln!(
            "S3 {label:20} tried {:4}  detected {:4}  visible {:4}  invisible {:4}",
            c.tried,
            c.detected,
            c.visible,
            c.tried - c.visible
        );
    }
}

/// A local source that records what it is asked for: `list <prefix>`, `get <key>`,
/// `tagged <key>` (a read within a size limit), and so on.
struct Recording {
    inner: LocalDirSource,
    asked: std::sync::Mutex<Vec<String>>,
}

impl Recording {
    fn new(root: &Path) -> Self {
        Recording {
            inner: LocalDirSource::new(root),
            asked: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn note(&self, what: &str, key: &str) {
        self.asked.lock().unwrap().push(format!("{what} {key}"));
    }

    /// The keys and prefixes asked for (without what was asked).
    fn asked(&self) -> Vec<String> {
        let asked = self.asked.lock().unwrap();
        asked
            .iter()
            .map(|a| a.split_once(' ').unwrap().1.to_string())
            .collect()
    }
}

#[async_trait::async_trait]
impl ArchiveSource for Recording {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.note("list", prefix);
        self.inner.list(prefix).await
    }

    async fn folders(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        self.note("folders", prefix);
        self.inner.folders(prefix).await
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        self.note("get", key);
        self.inner.get(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool, SourceError> {
        self.note("exists", key);
        self.inner.exists(key).await
    }

    async fn get_tagged(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<(Vec<u8>, String)>, SourceError> {
        self.note("tagged", key);
        self.inner.get_tagged(key, max_bytes).await
    }

    async fn list_modified(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, SourceError> {
        self.note("list_modified", prefix);
        self.inner.list_modified(prefix).await
    }

    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}

const DAY_1: (i32, u32, u32) = (2026, 1, 1);

fn day_1() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(DAY_1.0, DAY_1.1, DAY_1.2).unwrap()
}

/// The key of a table's manifest for day 1.
fn manifest_key(table: &str) -> String {
    ObjectKey::Manifest {
        table: table.to_string(),
        date: day_1(),
    }
    .key()
}

fn read_manifest(path: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_manifest(path: &Path, m: &Manifest) {
    let mut body = serde_json::to_vec(m).unwrap();
    body.push(b'\n');
    std::fs::write(path, body).unwrap();
}

/// Verify options selecting `table` on day 1.
fn on_day_1(table: &str) -> VerifyOptions {
    VerifyOptions {
        table: Some(table.to_string()),
        from: Some(day_1()),
        to: Some(day_1()),
        ..VerifyOptions::default()
    }
}

/// The reasons given for the bad manifest of `s` (none if it is not bad).
fn manifest_reasons(s: &VerifySummary) -> Vec<String> {
    s.bad
        .iter()
        .filter(|b| b.kind == ObjectKind::Manifest)
        .flat_map(|b| b.reasons.clone())
        .collect()
}

/// Everything a verification asked of `raw` and `comp` is of `table`'s day 1 (or the
/// listing of the compacted layer's root).
fn asked_only_day_1(raw: &Recording, comp: &Recording, table: &str) {
    let day = partition_path(table, day_1());
    for asked in raw.asked() {
        assert!(
            asked.starts_with(&day),
            "the raw archive was asked for {asked:?}"
        );
    }
    let manifest = manifest_key(table);
    for asked in comp.asked() {
        assert!(
            asked.is_empty() || asked.starts_with(&day) || asked == manifest,
            "the compacted layer was asked for {asked:?}"
        );
    }
}

#[tokio::test]
async fn hostile_manifests_open_nothing_outside_their_day() {
    let (dir, raw, comp) = local_trees().await;
    let path = comp.join(manifest_key(TABLE));
    let original = std::fs::read(&path).unwrap();
    let m = read_manifest(&path);
    // A copy of a source outside both trees, and a data object of another table.
    let outside = dir.path().join("outside.parquet");
    std::fs::copy(raw.join(&m.sources[0].key), &outside).unwrap();
    let other_table = LocalDirSource::new(&raw)
        .list(&format!("{KINESIS_TABLE}/"))
        .await
        .unwrap()
        .remove(0);
    let day = partition_path(TABLE, day_1());
    let hostile = [
        outside.display().to_string(),
        format!("{day}../../../../outside.parquet"),
        format!("../{}", m.sources[0].key),
        format!("{day}../../../../{other_table}"),
        other_table.clone(),
    ];
    let options = on_day_1(TABLE);
    for key in hostile {
        let mut bad = m.clone();
        bad.sources[0].key = key.clone();
        write_manifest(&path, &bad);
        let (raw_seen, comp_seen) = (Recording::new(&raw), Recording::new(&comp));
        let s = verify_with_raw(&comp_seen, Some(&raw_seen), &options).await;
        let reasons = manifest_reasons(&s);
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("names a source outside its day")),
            "{key}: {}",
            s.render_text()
        );
        asked_only_day_1(&raw_seen, &comp_seen, TABLE);
        assert!(!raw_seen.asked().contains(&key), "{key} was read");
    }

    // A file entry outside the day is named, and not opened either.
    let mut bad = m.clone();
    bad.files[0].key = outside.display().to_string();
    write_manifest(&path, &bad);
    let (raw_seen, comp_seen) = (Recording::new(&raw), Recording::new(&comp));
    let s = verify_with_raw(&comp_seen, Some(&raw_seen), &options).await;
    assert!(
        manifest_reasons(&s)
            .iter()
            .any(|r| r.starts_with("names a file outside its day")),
        "{}",
        s.render_text()
    );
    asked_only_day_1(&raw_seen, &comp_seen, TABLE);

    // Locations that point elsewhere are not opened: the sources are read by key from
    // the raw archive given, and the day passes.
    let mut elsewhere = m.clone();
    for (i, s) in elsewhere.sources.iter_mut().enumerate() {
        s.location = if i % 2 == 0 {
            format!("s3://another-bucket/{}", s.key)
        } else {
            outside.display().to_string()
        };
    }
    write_manifest(&path, &elsewhere);
    let (raw_seen, comp_seen) = (Recording::new(&raw), Recording::new(&comp));
    let s = verify_with_raw(&comp_seen, Some(&raw_seen), &options).await;
    assert!(s.ok(), "{}", s.render_text());
    assert_eq!(s.sources_not_read, 0);
    asked_only_day_1(&raw_seen, &comp_seen, TABLE);
    assert_eq!(
        raw_seen
            .asked()
            .iter()
            .filter(|a| a.ends_with(".parquet") || a.ends_with(".json.gz"))
            .count(),
        m.sources.len(),
        "each source read once, by its key"
    );

    // A 100 MB manifest (valid JSON, padded) is refused unread.
    let mut huge = original.clone();
    huge.resize(100 << 20, b' ');
    std::fs::write(&path, &huge).unwrap();
    let (raw_seen, comp_seen) = (Recording::new(&raw), Recording::new(&comp));
    let s = verify_with_raw(&comp_seen, Some(&raw_seen), &options).await;
    let reasons = manifest_reasons(&s);
    assert!(
        reasons.iter().any(|r| r.contains("over the limit")),
        "{}",
        s.render_text()
    );
    let manifest = manifest_key(TABLE);
    let asked = comp_seen.asked.lock().unwrap().clone();
    assert!(asked.contains(&format!("tagged {manifest}")), "{asked:?}");
    assert!(!asked.contains(&format!("get {manifest}")), "{asked:?}");
    assert!(
        raw_seen.asked().is_empty(),
        "no sources of an unread manifest"
    );

    std::fs::write(&path, &original).unwrap();
    let s = verify_with_raw(
        &LocalDirSource::new(&comp),
        Some(&LocalDirSource::new(&raw)),
        &options,
    )
    .await;
    assert!(s.ok(), "{}", s.render_text());
}

/// Archives one more change of `invoices` on day 1 into `raw`, as a late arrival.
async fn archive_late_change(raw: &Path) {
    let late = stream_records(1)[0]
        .replace("ev-0", "ev-late")
        .replace("99999999999999999990", "99999999999999999900");
    let sink: Arc<dyn ObjectSink> = Arc::new(LocalDirSink::new(raw));
    let mut a =
        Archiver::new(&settings(&raw.display().to_string(), Format::Parquet), sink).unwrap();
    assert!(a.ingest(doc(&[late]).into_bytes(), "late").await);
    assert!(a.finish().await.is_clean());
}

#[tokio::test]
async fn late_arrivals_are_reported_apart_from_bad_objects() {
    let (_dir, raw, comp) = local_trees().await;
    let (raw_source, comp_source) = (LocalDirSource::new(&raw), LocalDirSource::new(&comp));
    let before = verify_with_raw(&comp_source, Some(&raw_source), &with_schemas()).await;
    assert!(
        before.ok() && before.behind_raw.is_empty(),
        "{}",
        before.render_text()
    );
    assert_eq!(before.sources_not_read, 0);

    archive_late_change(&raw).await;
    let s = verify_with_raw(&comp_source, Some(&raw_source), &with_schemas()).await;
    assert!(
        s.ok(),
        "late arrivals are not bad objects: {}",
        s.render_text()
    );
    assert_eq!(s.behind_raw.len(), 1, "{}", s.render_text());
    let b = &s.behind_raw[0];
    assert_eq!(
        (b.table.as_str(), b.date.as_str(), b.not_compacted),
        (TABLE, "2026-01-01", 1)
    );
    assert_eq!(b.manifest, comp_source.location(&manifest_key(TABLE)));
    assert!(b.raw_objects[0].starts_with(&raw_source.location(&partition_path(TABLE, day_1()))));
    assert!(s.render_text().contains(
        "invoices 2026-01-01 is behind the raw archive: 1 sources not compacted; run compact --from 2026-01-01 --to 2026-01-01 covering it"
    ), "{}", s.render_text());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["behind_raw"][0]["not_compacted"], 1);

    // The maintenance function's metric.
    let report = ddb_archiver::maintenance::VerifyReport {
        from: day_1(),
        raw: VerifySummary::default(),
        compacted: s.clone(),
    };
    let emf: serde_json::Value = serde_json::from_str(&report.emf("fn", 1)).unwrap();
    assert_eq!(emf["CompactedDaysBehindRaw"], 1);
    let names: Vec<String> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"CompactedDaysBehindRaw".to_string()),
        "{names:?}"
    );

    // Without the raw archive, nothing is compared with it, and the summary says so.
    let alone = verify(&comp_source, &with_schemas()).await;
    assert!(alone.ok() && alone.behind_raw.is_empty());
    assert!(alone.sources_not_read > 0);
    assert!(
        alone.render_text().contains("not read again (no --raw)"),
        "{}",
        alone.render_text()
    );

    // A compaction that covers the day picks it up; the superseded version's files stay
    // for the grace period and are not leftovers.
    compact_into(&raw_source, &comp_source, &LocalDirSink::new(&comp)).await;
    let after = verify_with_raw(&comp_source, Some(&raw_source), &with_schemas()).await;
    assert!(after.ok(), "{}", after.render_text());
    assert!(after.behind_raw.is_empty(), "{}", after.render_text());
    let m = read_manifest(&comp.join(manifest_key(TABLE)));
    assert_eq!(m.superseded.len(), 1);
    assert!(after.checked.compacted > before.checked.compacted);
}

#[tokio::test]
async fn the_row_digest_finds_a_changed_sequence_number_in_a_compacted_row() {
    use arrow::array::{Array, AsArray, RecordBatch, StringArray};
    let (_dir, raw, comp) = local_trees().await;
    let path = comp.join(manifest_key(KINESIS_TABLE));
    let mut m = read_manifest(&path);
    assert_eq!(m.format, manifest::FORMAT);
    let file = comp.join(&m.files[0].key);
    let batches: Vec<RecordBatch> = reader::parquet_all_batches(std::fs::read(&file).unwrap(), "x")
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Row 0's sequence number changed: still in order (the times differ), and its
    // Kinesis record does not hold it, so only the manifest's digest can tell.
    let i = batches[0].schema().index_of("sequence_number").unwrap();
    let old = batches[0].column(i).as_string::<i32>();
    let changed: StringArray = (0..old.len())
        .map(|r| {
            let v = old.value(r).to_string();
            Some(if r == 0 { format!("{v}7") } else { v })
        })
        .collect();
    let mut columns = batches[0].columns().to_vec();
    columns[i] = Arc::new(changed);
    let first = RecordBatch::try_new(batches[0].schema(), columns).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        Vec::new(),
        first.schema(),
        Some(ddb_archiver::encode::parquet::writer_properties()),
    )
    .unwrap();
    for b in std::iter::once(&first).chain(&batches[1..]) {
        writer.write(b).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    std::fs::write(&file, &bytes).unwrap();
    // The manifest's entry is brought in line with the file: sizes and checksums agree.
    m.files[0].bytes = bytes.len() as u64;
    m.files[0].sha256 = manifest::sha256_hex(&bytes);
    write_manifest(&path, &m);

    let options = on_day_1(KINESIS_TABLE);
    let raw_source = LocalDirSource::new(&raw);
    for with_raw in [None, Some(&raw_source as &dyn ArchiveSource)] {
        let s = verify_with_raw(&LocalDirSource::new(&comp), with_raw, &options).await;
        assert_eq!(s.bad.len(), 1, "only the manifest: {}", s.render_text());
        let reasons = manifest_reasons(&s);
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("the compacted files hold") && r.contains("row digest")),
            "{}",
            s.render_text()
        );
    }
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Verifies each flipped file that tests/python/test_verify_flips.py lists in
/// `$DDB_ARCHIVER_FLIPS/flips.json` (`tree` "raw" or "comp", `key`, `file`): the file's
/// bytes are put under the key in a copy of `$DDB_ARCHIVER_FLIPS/archive/<tree>` and that
/// tree is verified (the compacted one with its raw archive). Whether the object was
/// reported bad is written to `verdicts.json`, which the Python test reads. Run by that
/// test; without the variable there is nothing to do.
#[tokio::test]
#[ignore = "run by tests/python/test_verify_flips.py"]
async fn verdicts_on_flipped_files() {
    let Ok(dir) = std::env::var("DDB_ARCHIVER_FLIPS") else {
        eprintln!("DDB_ARCHIVER_FLIPS is not set: no flipped files to verify");
        return;
    };
    let dir = PathBuf::from(dir);
    let flips: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("flips.json")).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    copy_tree(&dir.join("archive"), work.path());
    let raw = LocalDirSource::new(work.path().join("raw"));
    let comp = LocalDirSource::new(work.path().join("comp"));
    let mut verdicts = Vec::new();
    for flip in flips {
        let (tree, key, file) = (
            flip["tree"].as_str().unwrap(),
            flip["key"].as_str().unwrap(),
            flip["file"].as_str().unwrap(),
        );
        let path = work.path().join(tree).join(key);
        let original = std::fs::read(&path).unwrap();
        std::fs::write(&path, std::fs::read(dir.join(file)).unwrap()).unwrap();
        let (source, with_raw): (&dyn ArchiveSource, Option<&dyn ArchiveSource>) = match tree {
            "raw" => (&raw, None),
            _ => (&comp, Some(&raw)),
        };
        let s = verify_with_raw(source, with_raw, &VerifyOptions::default()).await;
        let reported = s.bad.iter().any(|b| b.location == source.location(key));
        std::fs::write(&path, original).unwrap();
        verdicts.push(serde_json::json!({"file": file, "reported": reported}));
    }
    std::fs::write(
        dir.join("verdicts.json"),
        serde_json::to_vec(&verdicts).unwrap(),
    )
    .unwrap();
}
