//! Verify, in process: generated changes (DynamoDB Streams and Kinesis, both formats,
//! archived twice in part, one rejected record) are archived and compacted, both trees
//! pass, and then single bytes flipped at many offsets of each kind of object must be
//! reported, naming the object, whenever a reader would read something else. Against
//! s3s-fs (ignored here, run by scripts/test.d/52-verify.sh) every flip must be
//! reported, because S3's stored checksum no longer matches.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ddb_archiver::archive::reader;
use ddb_archiver::archive::source::{ArchiveSource, LocalDirSource};
use ddb_archiver::compact::{CompactOptions, Compactor};
use ddb_archiver::model::key::ObjectKey;
use ddb_archiver::model::Format;
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::schema::SchemaSet;
use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;
use ddb_archiver::sink::ObjectSink;
use ddb_archiver::verify::{Verifier, VerifyOptions, VerifySummary};

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
    Verifier {
        source,
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
        // `created_by` only informs: it is not checked.
        match serde_json::from_slice::<ddb_archiver::archive::manifest::Manifest>(bytes) {
            Ok(m) => format!(
                "{:?}",
                ddb_archiver::archive::manifest::Manifest {
                    created_by: String::new(),
                    ..m
                }
            ),
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
async fn flip_each(
    label: &str,
    path: &Path,
    key: &str,
    tree: &dyn ArchiveSource,
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
        let s = verify(tree, options).await;
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
    let mut results = Vec::new();
    for (label, root, key, options) in targets(&raw, &comp) {
        let source = LocalDirSource::new(&root);
        let counts = flip_each(label, &root.join(&key), &key, &source, &options, false, 30).await;
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
        if label.starts_with("compacted") {
            // The manifest holds each compacted file's SHA-256: nothing is invisible.
            assert_eq!(c.invisible_passed, 0, "{label}: {c:?}");
        }
    }
}

/// Against a real s3s-fs whose URL is in `DDB_ARCHIVER_TEST_S3` and whose data
/// directory is `DDB_ARCHIVER_TEST_S3_ROOT`, with a bucket `verify-test`, credentials
/// in the usual environment variables and `AWS_ENDPOINT_URL_S3` set to the same URL (the
/// manifests' sources are opened by their `s3://` locations); run by scripts/test.d/52-verify.sh.
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
        let s = verify(tree, &with_schemas()).await;
        assert!(s.ok(), "{want}: {}", s.render_text());
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
        let tree = if root.ends_with("raw") { &raw } else { &comp };
        let counts = flip_each(label, &root.join(&key), &key, tree, &options, true, 12).await;
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
