//! Every public fixture is either archived or rejected with a clear error, never a panic.

use ddb_archiver::decode::minify_json;
use ddb_archiver::encode::Format;

use crate::support::*;

struct Expect {
    archived: usize,
    rejected: usize,
    /// Substring every rejection reason (or the input error) must contain.
    reason: &'static str,
    input_error: bool,
    table: Option<&'static str>,
}

const fn archived(n: usize) -> Expect {
    Expect {
        archived: n,
        rejected: 0,
        reason: "",
        input_error: false,
        table: None,
    }
}

const fn rejected(n: usize, reason: &'static str) -> Expect {
    Expect {
        archived: 0,
        rejected: n,
        reason,
        input_error: false,
        table: None,
    }
}

const fn input_error(reason: &'static str) -> Expect {
    Expect {
        archived: 0,
        rejected: 0,
        reason,
        input_error: true,
        table: None,
    }
}

/// The original records of a fixture, minified, by event ID.
fn original_records(bytes: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).unwrap();
    #[derive(serde::Deserialize)]
    struct Doc<'a> {
        #[serde(rename = "Records", borrow, default)]
        records: Option<Vec<&'a serde_json::value::RawValue>>,
    }
    let doc: Doc<'_> = serde_json::from_str(text).unwrap();
    match doc.records {
        Some(records) => records.iter().map(|r| minify_json(r.get())).collect(),
        // A bare change record is its own only record.
        None => vec![minify_json(text)],
    }
}

fn check(file: &str, expect: Expect) {
    let path = fixtures_dir().join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings {
            table: expect.table.map(str::to_string),
            ..settings(dir.path(), format)
        };
        let summary = archive(&s, &[(file, &bytes)]);
        assert_eq!(
            summary.archived, expect.archived,
            "{file} {format}: {summary:#?}"
        );
        assert_eq!(
            summary.rejected, expect.rejected,
            "{file} {format}: {summary:#?}"
        );
        assert_eq!(summary.rejected_records.len(), expect.rejected);
        for r in &summary.rejected_records {
            assert!(r.reason.contains(expect.reason), "{file}: {}", r.reason);
            assert_eq!(r.source, file);
        }
        assert_eq!(
            !summary.input_errors.is_empty(),
            expect.input_error,
            "{file}"
        );
        if expect.input_error {
            let e = &summary.input_errors[0].error;
            assert!(e.starts_with(file) && e.contains(expect.reason), "{e}");
            assert!(
                files(dir.path()).is_empty(),
                "nothing is written for a bad input"
            );
            continue;
        }
        let rows = all_rows(dir.path());
        assert_eq!(rows.len(), expect.archived);
        let rejected = rejected_lines(dir.path());
        assert_eq!(rejected.len(), expect.rejected);
        let originals = original_records(&bytes);
        for line in &rejected {
            let raw = serde_json::to_string(&line["record"]).unwrap();
            assert!(
                originals.iter().any(|o| {
                    serde_json::from_str::<serde_json::Value>(o).unwrap() == line["record"]
                }),
                "rejected record kept whole: {raw}"
            );
            assert!(line["reason"].as_str().unwrap().contains(expect.reason));
        }
        for (key, row) in &rows {
            assert!(
                key.starts_with(&format!("{}/year=", row.table_name)),
                "{key}"
            );
            if !row.record.contains("\"kinesis\"") && !file.contains("kinesis-dynamodb") {
                assert!(
                    originals.contains(&row.record),
                    "record kept byte-exact: {}",
                    row.record
                );
            }
        }
    }
}

#[test]
fn dotnet_event() {
    check("aws-lambda-dotnet__dynamodb-event.json", archived(2));
}

#[test]
fn dotnet_timewindow_event_without_table() {
    check(
        "aws-lambda-dotnet__dynamodb-timewindow-event.json",
        rejected(3, "names no table"),
    );
}

#[test]
fn dotnet_timewindow_event_with_table_lacks_time() {
    check(
        "aws-lambda-dotnet__dynamodb-timewindow-event.json",
        Expect {
            table: Some("orders"),
            ..rejected(3, "ApproximateCreationDateTime")
        },
    );
}

#[test]
fn dotnet_ms_event() {
    check(
        "aws-lambda-dotnet__dynamodb-with-ms-event.json",
        archived(2),
    );
    // Milliseconds and seconds for the same instant land on the same day and time.
    let dir = tempfile::tempdir().unwrap();
    let bytes =
        std::fs::read(fixtures_dir().join("aws-lambda-dotnet__dynamodb-with-ms-event.json"))
            .unwrap();
    archive(&settings(dir.path(), Format::JsonlGz), &[("ms", &bytes)]);
    let rows = all_rows(dir.path());
    assert!(
        rows.iter()
            .all(|(_, r)| r.time == "2016-12-02T01:27:00.000Z"),
        "{rows:?}"
    );
    let remove = rows.iter().find(|(_, r)| r.event_name == "REMOVE").unwrap();
    assert!(
        remove.1.ttl_delete,
        "REMOVE by dynamodb.amazonaws.com is a TTL delete"
    );
}

#[test]
fn go_malformed_event_fails_cleanly() {
    check(
        "aws-lambda-go__dynamodb-event-malformed.2.json",
        input_error("invalid JSON at line 135, column 10"),
    );
}

#[test]
fn go_event() {
    check("aws-lambda-go__dynamodb-event.json", archived(2));
}

#[test]
fn go_time_window_event() {
    check(
        "aws-lambda-go__dynamodb-time-window-event.json",
        rejected(3, "names no table"),
    );
}

#[test]
fn java_event_two_days() {
    check("aws-lambda-java-libs__dynamo_event.json", archived(3));
    let dir = tempfile::tempdir().unwrap();
    let bytes =
        std::fs::read(fixtures_dir().join("aws-lambda-java-libs__dynamo_event.json")).unwrap();
    archive(&settings(dir.path(), Format::Parquet), &[("java", &bytes)]);
    let rows = all_rows(dir.path());
    let modify = rows.iter().find(|(_, r)| r.event_name == "MODIFY").unwrap();
    assert_eq!(modify.1.time, "2021-11-01T02:40:07.123Z");
    assert!(modify
        .0
        .starts_with("ExampleTableWithStream/year=2021/month=11/day=01/"));
    let remove = rows.iter().find(|(_, r)| r.event_name == "REMOVE").unwrap();
    assert!(!remove.1.ttl_delete, "no userIdentity on this REMOVE");
    assert!(remove
        .0
        .starts_with("ExampleTableWithStream/year=2015/month=04/day=09/"));
}

#[test]
fn rust_runtime_record_without_sequence_number() {
    check(
        "aws-lambda-rust-runtime__example-dynamodb-event-record-with-optional-fields.json",
        rejected(1, "SequenceNumber"),
    );
}

#[test]
fn sam_template_table_placeholder() {
    check(
        "aws-sam-cli__DynamoDBUpdate.json",
        rejected(3, "not a valid DynamoDB table name"),
    );
}

#[test]
fn botocore_examples_document_is_not_an_event() {
    check(
        "botocore__dynamodbstreams-2012-08-10-examples-1.json",
        input_error("is not a stream event"),
    );
}

#[test]
fn kinesis_adapter_record_with_anonymized_sequence() {
    check(
        "dynamodb-streams-kinesis-adapter__complex_structure_expected.json",
        rejected(1, "not a decimal sequence number"),
    );
}

#[test]
fn keys_only_modify() {
    check(
        "dynamodb-streams-test__README-block02-keys-only-modify.json",
        archived(1),
    );
}

#[test]
fn new_image_remove() {
    check(
        "dynamodb-streams-test__README-block09-new-image-remove.json",
        archived(1),
    );
}

#[test]
fn old_image_modify() {
    check(
        "dynamodb-streams-test__README-block11-old-image-modify.json",
        archived(1),
    );
}

#[test]
fn powertools_stream_event_without_table() {
    check(
        "powertools-lambda-python__dynamoStreamEvent.json",
        rejected(2, "names no table"),
    );
}

#[test]
fn powertools_stream_event_with_table() {
    let file = "powertools-lambda-python__dynamoStreamEvent.json";
    let bytes = std::fs::read(fixtures_dir().join(file)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Settings {
        table: Some("orders".to_string()),
        ..settings(dir.path(), Format::JsonlGz)
    };
    let summary = archive(&s, &[(file, &bytes)]);
    assert_eq!(summary.archived, 1);
    assert_eq!(summary.rejected, 1);
    let r = &summary.rejected_records[0];
    assert_eq!(r.event_id.as_deref(), Some("2"));
    assert_eq!(r.sequence_number.as_deref(), Some("222"));
    assert!(
        r.reason.contains("ApproximateCreationDateTime"),
        "{}",
        r.reason
    );
    let rows = all_rows(dir.path());
    assert!(
        rows[0].0.starts_with("orders/year=2023/month=09/day=06/"),
        "{rows:?}"
    );
}

#[test]
fn powertools_getting_started() {
    check(
        "powertools-lambda-python__getting_started_dynamodb_event.json",
        rejected(2, "names no table"),
    );
}

#[test]
fn powertools_kinesis_dynamodb_stream() {
    check(
        "powertools-lambda-typescript__kinesis-dynamodb-stream.json",
        archived(2),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = "powertools-lambda-typescript__kinesis-dynamodb-stream.json";
    let bytes = std::fs::read(fixtures_dir().join(file)).unwrap();
    archive(&settings(dir.path(), Format::Parquet), &[(file, &bytes)]);
    let rows = all_rows(dir.path());
    let (key, row) = &rows[0];
    assert!(key.starts_with(
        "PowertoolsEventsStack-DynamoDBTable59784FC0-8NKAMTERTAXY/year=2024/month=11/day=18/"
    ));
    assert_eq!(row.time, "2024-11-18T10:09:15.370Z");
    assert_eq!(
        row.sequence_number,
        "49657828409187701520019995242508390119953358325192589314"
    );
    assert_eq!(row.event_id, "d9428029-0f63-4056-86da-ce10d545b1b9");
    assert!(row
        .record
        .starts_with("{\"awsRegion\":\"eu-west-1\",\"eventID\":\"d9428029"));
}

/// Every fixture file in the folder has a test above.
#[test]
fn every_fixture_is_covered() {
    let this = include_str!("fixtures.rs");
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            assert!(this.contains(&format!("\"{name}\"")), "no test for {name}");
        }
    }
}
