//! Exports in the documented layout, written to a temporary directory, archived into
//! another: every value byte-exact, a rerun writes nothing, every bad input refused
//! with no coverage record.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use md5::{Digest as _, Md5};

use super::*;
use crate::archive::reader::{read_rows, Projection};
use crate::model::{EventName, Format};
use crate::sink::local::LocalDirSink;

const TABLE: &str = "invoices";
const EXPORT_ID: &str = "01700000000000-abcdef12";

fn arn() -> String {
    format!("arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}")
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

fn md5(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

/// Writes an export: `files` are (name, body bytes, count in the manifest).
fn write_export(dir: &Path, summary_extra: &str, files: &[(&str, Vec<u8>, u64)]) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let total: u64 = files.iter().map(|f| f.2).sum();
    let summary = format!(
        r#"{{"version":"2020-06-30","exportArn":"{arn}/export/{EXPORT_ID}","startTime":"2026-03-01T12:00:00.000Z","endTime":"2026-03-01T12:05:00.000Z","tableArn":"{arn}","exportTime":"2026-03-01T12:00:00.000Z","s3Bucket":"b","s3Prefix":"p","manifestFilesS3Key":"p/AWSDynamoDB/{EXPORT_ID}/manifest-files.json","itemCount":{total},"outputFormat":"DYNAMODB_JSON"{summary_extra}}}"#,
        arn = arn()
    );
    std::fs::write(dir.join("manifest-summary.json"), summary).unwrap();
    let mut manifest = String::new();
    for (name, body, count) in files {
        std::fs::write(dir.join("data").join(name), body).unwrap();
        manifest.push_str(&format!(
            "{{\"itemCount\":{count},\"md5Checksum\":\"{}\",\"etag\":\"x\",\"dataFileS3Key\":\"p/AWSDynamoDB/{EXPORT_ID}/data/{name}\"}}\n",
            md5(body)
        ));
    }
    std::fs::write(dir.join("manifest-files.json"), manifest).unwrap();
}

fn n38(i: usize) -> String {
    format!(
        "{:038}",
        12345678901234567890123456789012345678u128 - i as u128
    )
}

fn full_lines(from: usize, to: usize) -> String {
    (from..to)
        .map(|i| {
            format!(
                "{{\"Item\":{{\"pk\":{{\"S\":\"INV#{i} ünï 😀\"}},\"sk\":{{\"N\":\"{i}\"}},\"amount\":{{\"N\":\"{}\"}},\"raw\":{{\"B\":\"AAEC/w==\"}},\"tags\":{{\"SS\":[\"a\",\"b\"]}}}}}}\n",
                n38(i)
            )
        })
        .collect()
}

fn settings(dest: &Path, format: Format) -> Settings {
    Settings {
        dest: dest.display().to_string(),
        format,
        max_file_records: 7,
        ..Settings::default()
    }
}

async fn run(
    export: &Path,
    dest: &Path,
    format: Format,
    table: Option<&str>,
) -> Result<BaselineReport, BaselineError> {
    let sink: Arc<dyn ObjectSink> = Arc::new(LocalDirSink::new(dest.to_path_buf()));
    run_export(
        &ExportRoot::Local(export.to_path_buf()),
        &ExportOptions {
            table: table.map(str::to_string),
            keys: Some(KeySchema::parse("pk,sk").unwrap()),
            concurrency: 2,
        },
        &settings(dest, format),
        sink,
    )
    .await
}

fn coverage_files(dest: &Path) -> Vec<std::path::PathBuf> {
    let dir = dest.join(coverage::COVERAGE_DIR).join(TABLE);
    std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Every row archived under `dest`, read back by the archive's own reader.
fn rows(dest: &Path) -> Vec<ChangeRecord> {
    let mut out = Vec::new();
    let mut stack = vec![dest.join(TABLE)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let loc = p.display().to_string();
                let format = Format::of_key(&loc).unwrap();
                let bytes = std::fs::read(&p).unwrap();
                for row in read_rows(format, bytes, &loc, Projection::ALL).unwrap() {
                    out.push(row.into_change().unwrap());
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn a_full_export_is_archived_byte_exact_and_a_rerun_writes_nothing() {
    for format in [Format::Parquet, Format::JsonlGz] {
        let tmp = tempfile::tempdir().unwrap();
        let (export, dest) = (tmp.path().join("export"), tmp.path().join("archive"));
        let a = full_lines(0, 20);
        let b = full_lines(20, 23);
        write_export(
            &export,
            "",
            &[
                ("a.json.gz", gzip(&a), 20),
                ("b.json.gz", gzip(&b), 3),
                // An empty partition: an empty file, and one holding an empty gzip.
                ("empty.json.gz", Vec::new(), 0),
                ("empty2.json.gz", gzip(""), 0),
            ],
        );
        let report = run(&export, &dest, format, Some(TABLE)).await.unwrap();
        assert_eq!(report.items_read, 23);
        assert_eq!(report.changes, 23);
        assert!(report.objects_written >= 4, "{report:?}");
        assert_eq!(report.objects_already_present, 0);
        assert_eq!(report.coverage, PutOutcome::Written);
        assert_eq!(
            report.coverage_key,
            format!("ddb-archiver-coverage/{TABLE}/baseline-{EXPORT_ID}.json")
        );
        let mut got = rows(&dest);
        assert_eq!(got.len(), 23);
        got.sort_by_key(|r| r.keys.to_string());
        let mut want: Vec<String> = a.lines().chain(b.lines()).map(str::to_string).collect();
        want.sort();
        let mut records: Vec<String> = got.iter().map(|r| r.record.to_string()).collect();
        records.sort();
        assert_eq!(records, want);
        for r in &got {
            assert_eq!(r.sequence_number, "0");
            assert!(r.event_id.starts_with("baseline-"));
            assert_eq!(r.event_name, EventName::Insert);
            assert_eq!(r.approximate_creation_time_ms, 1_772_366_400_000);
            assert!(r.keys.starts_with("{\"pk\":{\"S\":\"INV#"));
            assert!(r.record.contains(r.new_image.as_deref().unwrap()));
        }
        let cov = coverage_files(&dest);
        assert_eq!(cov.len(), 1);
        let record = CoverageRecord::from_json(&std::fs::read(&cov[0]).unwrap()).unwrap();
        assert_eq!(record.complete_from, Some(1_772_366_400_000));
        assert_eq!(record.item_count, 23);
        assert_eq!(record.change_count, 23);
        assert_eq!(record.objects.len(), report.objects_written);
        for key in &record.objects {
            assert!(dest.join(key).is_file(), "{key}");
            assert!(key.starts_with("invoices/year=2026/month=03/day=01/0-0-"));
        }

        let again = run(&export, &dest, format, None).await.unwrap();
        assert_eq!(again.objects_written, 0);
        assert_eq!(again.objects_already_present, report.objects_written);
        assert_eq!(again.coverage, PutOutcome::AlreadyPresent);
        assert_eq!(rows(&dest).len(), 23);
    }
}

#[tokio::test]
async fn an_incremental_export_becomes_inserts_modifies_and_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let (export, dest) = (tmp.path().join("export"), tmp.path().join("archive"));
    let lines = concat!(
        r#"{"Metadata":{"WriteTimeMicros":{"N":"1772366400000001"}},"Keys":{"pk":{"S":"a"},"sk":{"N":"1"}},"NewImage":{"pk":{"S":"a"},"sk":{"N":"1"},"v":{"N":"0.000000000000000000000000000000000001"}}}"#,
        "\n",
        r#"{"Metadata":{"WriteTimeMicros":{"N":"1772452800999999"}},"Keys":{"pk":{"S":"b"},"sk":{"N":"1"}},"OldImage":{"pk":{"S":"b"},"sk":{"N":"1"}},"NewImage":{"pk":{"S":"b"},"sk":{"N":"1"},"x":{"B":"/w=="}}}"#,
        "\n",
        r#"{"Metadata":{"WriteTimeMicros":{"N":"1772452801000000"}},"Keys":{"pk":{"S":"c"},"sk":{"N":"1"}},"OldImage":{"pk":{"S":"c"},"sk":{"N":"1"}}}"#,
        "\n"
    );
    write_export(
        &export,
        r#","exportType":"INCREMENTAL_EXPORT","exportFromTime":"2026-03-01T00:00:00.000Z","exportToTime":"2026-03-03T00:00:00.000Z","outputView":"NEW_AND_OLD_IMAGES""#,
        &[("i.json.gz", gzip(lines), 3)],
    );
    let report = run(&export, &dest, Format::Parquet, Some(TABLE))
        .await
        .unwrap();
    assert_eq!(report.changes, 3);
    assert!(report.window.is_some());
    assert_eq!(
        report.coverage_key,
        format!("ddb-archiver-coverage/{TABLE}/repair-{EXPORT_ID}.json")
    );
    let mut got = rows(&dest);
    got.sort_by_key(|r| r.approximate_creation_time_ms);
    let names: Vec<_> = got.iter().map(|r| r.event_name).collect();
    assert_eq!(
        names,
        [EventName::Insert, EventName::Modify, EventName::Remove]
    );
    assert_eq!(got[0].approximate_creation_time_ms, 1_772_366_400_000);
    assert_eq!(got[1].approximate_creation_time_ms, 1_772_452_800_999);
    assert!(got.iter().all(|r| r.event_id.starts_with("export-")));
    for (r, line) in got.iter().zip(lines.lines()) {
        assert_eq!(r.record.as_str(), line);
        assert_eq!(r.stream_view_type.as_deref(), Some("NEW_AND_OLD_IMAGES"));
    }
    // Two days: two partitions.
    assert!(dest.join("invoices/year=2026/month=03/day=01").is_dir());
    assert!(dest.join("invoices/year=2026/month=03/day=02").is_dir());
}

async fn refused(export: &Path, dest: &Path, table: Option<&str>, expect: &str) {
    let err = run(export, dest, Format::JsonlGz, table).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(expect), "{msg:?} does not contain {expect:?}");
    assert!(
        coverage_files(dest).is_empty(),
        "a coverage record after: {msg}"
    );
}

#[tokio::test]
async fn bad_exports_are_refused_with_no_coverage_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("archive");
    let good = gzip(&full_lines(0, 5));

    // MD5 mismatch: the manifest's checksum is of other bytes.
    let e = tmp.path().join("md5");
    write_export(&e, "", &[("a.json.gz", good.clone(), 5)]);
    std::fs::write(e.join("data/a.json.gz"), gzip(&full_lines(1, 6))).unwrap();
    refused(&e, &dest, None, "MD5").await;

    // A data file holding fewer items than its manifest line says (the total agrees).
    let e = tmp.path().join("count");
    write_export(
        &e,
        "",
        &[("a.json.gz", good.clone(), 6), ("b.json.gz", gzip(""), 0)],
    );
    refused(&e, &dest, None, "5 items, but the manifest says 6").await;

    // The data files' counts do not add up to the summary's.
    let e = tmp.path().join("total");
    write_export(&e, "", &[("a.json.gz", good.clone(), 5)]);
    let s = std::fs::read_to_string(e.join("manifest-summary.json"))
        .unwrap()
        .replace("\"itemCount\":5", "\"itemCount\":9");
    std::fs::write(e.join("manifest-summary.json"), s).unwrap();
    refused(&e, &dest, None, "5 items, but the manifest says 9").await;

    // A truncated gzip file whose manifest checksum matches the truncated bytes.
    let e = tmp.path().join("truncated");
    let cut = good[..good.len() - 12].to_vec();
    write_export(&e, "", &[("a.json.gz", cut, 5)]);
    refused(&e, &dest, None, "truncated").await;

    // A data file outside the export.
    for (i, outside) in [
        "p/AWSDynamoDB/99999999999999-zzzzzzzz/data/a.json.gz".to_string(),
        format!("p/AWSDynamoDB/{EXPORT_ID}/data/../../../etc/passwd"),
        format!("/abs/AWSDynamoDB/{EXPORT_ID}/data/a.json.gz"),
    ]
    .iter()
    .enumerate()
    {
        let e = tmp.path().join(format!("outside{i}"));
        write_export(&e, "", &[("a.json.gz", good.clone(), 5)]);
        let m = std::fs::read_to_string(e.join("manifest-files.json"))
            .unwrap()
            .replace(
                &format!("p/AWSDynamoDB/{EXPORT_ID}/data/a.json.gz"),
                outside,
            );
        std::fs::write(e.join("manifest-files.json"), m).unwrap();
        refused(&e, &dest, None, outside).await;
    }

    // ION.
    let e = tmp.path().join("ion");
    write_export(&e, "", &[("a.json.gz", good.clone(), 5)]);
    let s = std::fs::read_to_string(e.join("manifest-summary.json"))
        .unwrap()
        .replace("DYNAMODB_JSON", "ION");
    std::fs::write(e.join("manifest-summary.json"), s).unwrap();
    refused(&e, &dest, None, "Ion").await;

    // Another table.
    let e = tmp.path().join("table");
    write_export(&e, "", &[("a.json.gz", good.clone(), 5)]);
    refused(&e, &dest, Some("orders"), "not \"orders\"").await;

    // A line that is not an export line.
    let e = tmp.path().join("line");
    write_export(
        &e,
        "",
        &[("a.json.gz", gzip("{\"Item\":{\"pk\":{\"S\":\"x\"}}}\n"), 1)],
    );
    refused(&e, &dest, None, "line 1").await;

    // The good file still archives fine afterwards, into the same destination.
    let e = tmp.path().join("good");
    write_export(&e, "", &[("a.json.gz", good, 5)]);
    run(&e, &dest, Format::JsonlGz, None).await.unwrap();
    assert_eq!(coverage_files(&dest).len(), 1);
}

#[tokio::test]
async fn batches_of_files_make_the_same_objects_as_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    write_export(
        &export,
        "",
        &[
            ("a.json.gz", gzip(&full_lines(0, 10)), 10),
            ("b.json.gz", gzip(&full_lines(10, 30)), 20),
        ],
    );
    let root = ExportRoot::Local(export.clone());
    let summary = root.read_summary().await.unwrap();
    let files = root.read_files().await.unwrap();
    check_export(&summary, &files, Some(TABLE)).unwrap();
    let keys = KeySchema::parse("pk,sk").unwrap();
    let one = tmp.path().join("one");
    let no_keys = ingest_export_files(
        &root,
        &summary,
        &files,
        None,
        Arc::new(LocalDirSink::new(one.clone())),
        &settings(&one, Format::Parquet),
        &SchemaSet::default(),
        2,
    )
    .await
    .unwrap_err();
    assert!(no_keys.to_string().contains("--keys"), "{no_keys}");
    assert!(!one.exists());
    let batched = tmp.path().join("batched");
    let all = {
        let sink: Arc<dyn ObjectSink> = Arc::new(LocalDirSink::new(one.clone()));
        ingest_export_files(
            &root,
            &summary,
            &files,
            Some(&keys),
            sink,
            &settings(&one, Format::Parquet),
            &SchemaSet::default(),
            2,
        )
        .await
        .unwrap()
    };
    let mut total = IngestSummary::default();
    for batch in files.chunks(1) {
        let sink: Arc<dyn ObjectSink> = Arc::new(LocalDirSink::new(batched.clone()));
        total.merge(
            ingest_export_files(
                &root,
                &summary,
                batch,
                Some(&keys),
                sink,
                &settings(&batched, Format::Parquet),
                &SchemaSet::default(),
                1,
            )
            .await
            .unwrap(),
        );
    }
    assert_eq!(total.objects, all.objects);
    assert_eq!(total.change_count, 30);
    let sink = LocalDirSink::new(batched.clone());
    let record = coverage_for_export(&summary, &total);
    let (key, outcome) = record_coverage(&sink, &record, &summary.export_id)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Written);
    assert!(batched.join(key).is_file());
}
