//! Every event fixture is either archived or rejected with a clear error, never a panic:
//! the project's own fixtures in tests/fixtures/events/ (its README says what each file
//! holds), then, as an extra check when they are beside the repository, the public sample
//! events from other projects' test suites.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use ddb_archiver::decode::minify_json;
use ddb_archiver::model::Format;
use ddb_archiver::report::Summary;
use serde_json::value::RawValue;

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

/// The DynamoDB change a Kinesis record carries, when its data decodes to JSON.
fn kinesis_payload(record: &str) -> Option<String> {
    let record: serde_json::Value = serde_json::from_str(record).ok()?;
    let data = record.pointer("/kinesis/data")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let payload = String::from_utf8(bytes).ok()?;
    serde_json::from_str::<serde::de::IgnoredAny>(&payload).ok()?;
    Some(payload)
}

/// The original records of a fixture, minified: every element of every document's
/// `Records` array (a bare change record is its own only record), and the change each
/// Kinesis record carries.
fn original_records(bytes: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).unwrap();
    #[derive(serde::Deserialize)]
    struct Doc<'a> {
        #[serde(rename = "Records", borrow, default)]
        records: Option<Vec<&'a RawValue>>,
    }
    let mut out = Vec::new();
    for doc in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
        let doc = doc.unwrap();
        let records = serde_json::from_str::<Doc<'_>>(doc.get())
            .unwrap()
            .records
            .unwrap_or_else(|| vec![doc]);
        for record in records {
            out.push(minify_json(record.get()));
            out.extend(kinesis_payload(record.get()).map(|p| minify_json(&p)));
        }
    }
    out
}

/// Archives one fixture file on its own (with `table` for records whose event names
/// none): the summary and the directory written.
fn archive_file(path: &Path, format: Format, table: Option<&str>) -> (Summary, tempfile::TempDir) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy();
    let dir = tempfile::tempdir().unwrap();
    let summary = archive(
        &Settings {
            table: table.map(str::to_string),
            ..settings(dir.path(), format)
        },
        &[(&name, &bytes)],
    );
    (summary, dir)
}

/// The archived rows under `dir` by event ID, each with its object key.
fn rows_by_event_id(dir: &Path) -> BTreeMap<String, (String, Row)> {
    all_rows(dir)
        .into_iter()
        .map(|(key, row)| (row.event_id.clone(), (key, row)))
        .collect()
}

/// The row of `event_id` among `rows`, checked to be under `partition` at `expected_time`.
fn row_at<'a>(
    rows: &'a BTreeMap<String, (String, Row)>,
    event_id: &str,
    partition: &str,
    expected_time: &str,
) -> &'a Row {
    let (key, row) = &rows[event_id];
    assert!(key.starts_with(partition), "{event_id}: {key}");
    assert_eq!(time(row), expected_time, "{event_id}");
    row
}

fn check(path: &Path, expect: Expect) {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let file = file.as_str();
    let bytes = std::fs::read(path).unwrap();
    for format in FORMATS {
        let (summary, dir) = archive_file(path, format, expect.table);
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
            assert!(
                originals.contains(&row.record),
                "record kept byte-exact: {}",
                row.record
            );
        }
    }
}

/// Checks one of the project's own fixtures.
fn own(file: &str, expect: Expect) {
    check(&own_fixture(file), expect);
}

/// Checks one of the public fixtures, when they are there.
fn public(file: &str, expect: Expect) {
    if let Some(dir) = public_fixtures_dir() {
        check(&dir.join(file), expect);
    }
}

/// A public fixture's bytes, when the public fixtures are there.
fn public_bytes(file: &str) -> Option<Vec<u8>> {
    Some(std::fs::read(public_fixtures_dir()?.join(file)).unwrap())
}

/// Archives `file` and checks each rejection in order: its event ID (`None`: none
/// could be read) and a substring of its reason.
fn assert_reasons(file: &str, want: &[(Option<&str>, &str)]) {
    let (summary, _dir) = archive_file(&own_fixture(file), Format::JsonlGz, None);
    let got: Vec<(Option<&str>, &str)> = summary
        .rejected_records
        .iter()
        .map(|r| (r.event_id.as_deref(), r.reason.as_str()))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (got, want) in got.iter().zip(want) {
        assert_eq!(got.0, want.0, "{got:?}");
        assert!(
            got.1.contains(want.1),
            "{:?}: {} lacks {}",
            got.0,
            got.1,
            want.1
        );
    }
}

// --- the project's own fixtures -------------------------------------------------------

#[test]
fn lambda_event_with_every_attribute_type() {
    let file = "lambda-every-attribute-type.json";
    own(file, archived(4));
    for format in FORMATS {
        let (_, dir) = archive_file(&own_fixture(file), format, None);
        let rows = rows_by_event_id(dir.path());
        let insert = row_at(
            &rows,
            "5f1c0a9e2b7d4c3a8e6f1b2c3d4e5f01",
            "shipments/year=2025/month=12/day=31/",
            "2025-12-31T00:00:00.500Z",
        );
        let image = insert.new_image.as_deref().unwrap();
        for exact in [
            r#""declared_value":{"N":"98765432109876543210987654321098765432"}"#,
            r#""smallest":{"N":"-9.9999999999999999999999999999999999999E-130"}"#,
            r#""largest":{"N":"9.9999999999999999999999999999999999999E+125"}"#,
            r#""destination":{"S":"Łódź → 東京 🚚"}"#,
            r#""escaped":{"S":"\u00e9t\u00e9 \"quoted\" back\\slash\ttab\nline\/slash"}"#,
            r#""label":{"B":"AAECAwQFBgcICQoLDA0ODw=="}"#,
            r#""seals":{"BS":["/w==","AP8A/w==","c2VhbA=="]}"#,
            r#""dimensions_cm":{"NS":["120","80.5","-1E+3","12345678901234567890123456789012345678"]}"#,
            r#""customs_hold":{"NULL":true}"#,
            r#""n\u00e4me with escape":{"S":"attribute names may hold escapes"}"#,
        ] {
            assert!(image.contains(exact), "{format}: {exact} not in {image}");
        }
        let modify = row_at(
            &rows,
            "5f1c0a9e2b7d4c3a8e6f1b2c3d4e5f02",
            "shipments/year=2025/month=12/day=31/",
            "2025-12-31T23:59:59.123Z",
        );
        let image = modify.new_image.as_deref().unwrap();
        assert!(
            image.contains(r#""status":{"S":"in transit \ud83d\udce6"}"#),
            "{image}"
        );
        let remove = row_at(
            &rows,
            "5f1c0a9e2b7d4c3a8e6f1b2c3d4e5f03",
            "shipments/year=2026/month=01/day=01/",
            "2026-01-01T00:00:00.000Z",
        );
        assert!(!remove.ttl_delete, "no userIdentity on this REMOVE");
        let (_, empties) = &rows["5f1c0a9e2b7d4c3a8e6f1b2c3d4e5f04"];
        let image = empties.new_image.as_deref().unwrap();
        for exact in [
            r#""no_tags":{"SS":[]}"#,
            r#""no_blobs":{"BS":[]}"#,
            r#""not_null":{"NULL":false}"#,
            r#""notes":{"M":{"🌏":{"S":"raw four-byte name"},"":{"S":"empty name"}}}"#,
        ] {
            assert!(image.contains(exact), "{format}: {exact} not in {image}");
        }
    }
}

#[test]
fn byte_order_mark_crlf_and_milliseconds() {
    let file = "lambda-bom-crlf-milliseconds.json";
    own(file, archived(3));
    let (_, dir) = archive_file(&own_fixture(file), Format::JsonlGz, None);
    let rows = all_rows(dir.path());
    // Milliseconds, seconds and a string of seconds, all for the same instant.
    assert!(
        rows.iter()
            .all(|(_, r)| time(r) == "2025-08-01T00:00:00.250Z"),
        "{rows:?}"
    );
    let ttl: Vec<&str> = rows
        .iter()
        .filter(|(_, r)| r.ttl_delete)
        .map(|(_, r)| r.event_id.as_str())
        .collect();
    assert_eq!(
        ttl,
        ["acc-ttl-0002"],
        "only the REMOVE by dynamodb.amazonaws.com is a TTL delete"
    );
}

#[test]
fn every_stream_view_type() {
    for file in [
        "view-keys-only.json",
        "view-new-image.json",
        "view-old-image.json",
    ] {
        own(file, archived(3));
    }
    for (file, view) in [
        ("view-keys-only.json", "KEYS_ONLY"),
        ("view-new-image.json", "NEW_IMAGE"),
        ("view-old-image.json", "OLD_IMAGE"),
        ("lambda-every-attribute-type.json", "NEW_AND_OLD_IMAGES"),
    ] {
        let (_, dir) = archive_file(&own_fixture(file), Format::Parquet, None);
        for (_, row) in all_rows(dir.path()) {
            assert_eq!(row.stream_view_type.as_deref(), Some(view), "{file}");
            // Which images a change of each kind carries under each view.
            let want = match (view, row.event_name.as_str()) {
                ("KEYS_ONLY", _) | ("NEW_IMAGE", "REMOVE") | ("OLD_IMAGE", "INSERT") => {
                    (false, false)
                }
                ("NEW_IMAGE", _) | (_, "INSERT") => (true, false),
                ("OLD_IMAGE", _) | (_, "REMOVE") => (false, true),
                _ => (true, true),
            };
            let got = (row.new_image.is_some(), row.old_image.is_some());
            assert_eq!(got, want, "{file} {}", row.event_id);
        }
    }
}

#[test]
fn get_records_response_needs_a_table() {
    let file = "get-records-response.json";
    own(
        file,
        rejected(3, "no eventSourceARN and no --table was given"),
    );
    own(
        file,
        Expect {
            table: Some("inventory"),
            ..archived(3)
        },
    );
    let (_, dir) = archive_file(&own_fixture(file), Format::JsonlGz, Some("inventory"));
    let rows = rows_by_event_id(dir.path());
    let modify = row_at(
        &rows,
        "0b5e1f3a9d2c47e8b6a4c1d2e3f40002",
        "inventory/year=2025/month=11/day=01/",
        "2025-11-01T00:01:00.000Z",
    );
    assert_eq!(modify.sequence_number, "5100000000000000000000000000002");
}

#[test]
fn tumbling_window_events() {
    own("tumbling-window.json", archived(3));
    let file = "tumbling-window-stream-arn.json";
    own(file, rejected(3, "names no table and no --table was given"));
    own(
        file,
        Expect {
            archived: 2,
            table: Some("meters"),
            ..rejected(
                1,
                "missing required field `dynamodb.ApproximateCreationDateTime`",
            )
        },
    );
}

#[test]
fn kinesis_milliseconds_and_microseconds() {
    let file = "kinesis-dynamodb.json";
    own(file, archived(4));
    let (_, dir) = archive_file(&own_fixture(file), Format::Parquet, None);
    let rows = rows_by_event_id(dir.path());
    let ms = row_at(
        &rows,
        "7c2d9e40-1a6b-4f1e-9a70-000000000001",
        "telemetry/year=2025/month=06/day=16/",
        "2025-06-16T00:00:00.123Z",
    );
    assert_eq!(
        ms.sequence_number,
        "49660000000000000000000000000000000000000000000000000001"
    );
    row_at(
        &rows,
        "7c2d9e40-1a6b-4f1e-9a70-000000000002",
        "telemetry/year=2025/month=06/day=15/",
        "2025-06-15T23:59:59.999Z",
    );
    let (_, ttl) = &rows["7c2d9e40-1a6b-4f1e-9a70-000000000003"];
    assert!(
        ttl.ttl_delete,
        "REMOVE by dynamodb.amazonaws.com is a TTL delete"
    );
    let (_, spaced) = &rows["7c2d9e40-1a6b-4f1e-9a70-000000000004"];
    assert!(
        spaced
            .record
            .starts_with(r#"{"awsRegion":"us-east-2","eventID":"7c2d9e40"#),
        "a spaced payload is minified: {}",
        spaced.record
    );
}

#[test]
fn bare_record() {
    own("bare-record.json", archived(1));
}

#[test]
fn several_documents_one_per_line() {
    own("documents-per-line.jsonl", archived(3));
}

#[test]
fn each_bad_record_is_rejected_with_its_reason() {
    let file = "rejected-records.json";
    own(
        file,
        Expect {
            archived: 1,
            ..rejected(16, "")
        },
    );
    assert_reasons(
        file,
        &[
            (
                Some("rej-no-sequence-number"),
                "missing required field `dynamodb.SequenceNumber`",
            ),
            (
                Some("rej-sequence-not-decimal"),
                "\"seq-0001\" is not a decimal sequence number",
            ),
            (
                Some("rej-placeholder-table"),
                "\"{{table}}\" is not a valid DynamoDB table name",
            ),
            (
                Some("rej-stream-arn-names-no-table"),
                "eventSourceARN \"stream-ARN\" names no table",
            ),
            (
                Some("rej-unknown-event-name"),
                "\"UPSERT\" is not INSERT, MODIFY or REMOVE",
            ),
            (
                Some("rej-key-with-two-types"),
                "invalid `dynamodb.Keys`: entry: attribute value has more than one type descriptor",
            ),
            (
                Some("rej-number-not-a-number"),
                "invalid `dynamodb.NewImage`: amount: N value \"12abc\" is not a number",
            ),
            (
                Some("rej-unknown-attribute-type"),
                "invalid `dynamodb.OldImage`: entry: unknown attribute type \"STRING\"",
            ),
            (
                Some("rej-no-keys"),
                "missing required field `dynamodb.Keys`",
            ),
            (
                Some("rej-negative-size"),
                "invalid `dynamodb.SizeBytes`: -5",
            ),
            (
                Some("rej-no-creation-time"),
                "missing required field `dynamodb.ApproximateCreationDateTime`",
            ),
            (
                Some("rej-creation-time-not-a-number"),
                "invalid `dynamodb.ApproximateCreationDateTime`: \"yesterday\"",
            ),
            (
                Some("rej-null-event-name"),
                "missing required field `eventName`",
            ),
            (Some(""), "invalid `eventID`: empty"),
            (
                Some("rej-dynamodb-not-an-object"),
                "invalid `dynamodb`: invalid type: string",
            ),
            (
                Some("rej-no-dynamodb-part"),
                "missing required field `dynamodb`",
            ),
        ],
    );
}

#[test]
fn malformed_records_are_rejected_one_by_one() {
    let file = "malformed-records.json";
    own(
        file,
        Expect {
            archived: 2,
            ..rejected(13, "")
        },
    );
    assert_reasons(
        file,
        &[
            (
                Some("shard-0:bad-base64"),
                "invalid `kinesis.data`: not base64",
            ),
            (Some("shard-0:not-utf8"), "decoded data is not UTF-8"),
            (Some("shard-0:not-json"), "decoded data is not JSON"),
            (
                Some("shard-0:json-array"),
                "decoded data is not a DynamoDB change",
            ),
            (
                Some("audit-change-5"),
                "missing required field `kinesis.data: dynamodb`",
            ),
            (Some("audit-change-6"), "unknown precision \"NANOSECOND\""),
            (
                Some("shard-0:no-sequence-number"),
                "missing required field `kinesis.sequenceNumber`",
            ),
            (
                Some("shard-0:no-data"),
                "missing required field `kinesis.data`",
            ),
            (Some("audit-change-9"), "the change carries no `tableName`"),
            (None, "record is not a change record: invalid type: string"),
            (None, "record is not a change record: invalid type: null"),
            (None, "record is not a change record: invalid type: integer"),
            (
                None,
                "record is not a change record: duplicate field `eventName`",
            ),
        ],
    );
}

#[test]
fn truncated_document_names_the_position() {
    own(
        "malformed-truncated.json",
        input_error("invalid JSON at line 83, column 30: EOF while parsing a string"),
    );
}

#[test]
fn missing_comma_names_the_position() {
    own(
        "malformed-missing-comma.json",
        input_error("invalid JSON at line 41, column 1: expected `,` or `]`"),
    );
}

#[test]
fn invalid_utf8_names_the_byte_after_the_byte_order_mark() {
    own(
        "malformed-not-utf8.json",
        input_error("not valid UTF-8 at byte 291"),
    );
}

#[test]
fn describe_stream_response_is_not_an_event() {
    own(
        "not-an-event-describe-stream.json",
        input_error("document 0 is not a stream event"),
    );
}

// --- the public fixtures, when present ------------------------------------------------

#[test]
fn dotnet_event() {
    public("aws-lambda-dotnet__dynamodb-event.json", archived(2));
}

#[test]
fn dotnet_timewindow_event_without_table() {
    public(
        "aws-lambda-dotnet__dynamodb-timewindow-event.json",
        rejected(3, "names no table"),
    );
}

#[test]
fn dotnet_timewindow_event_with_table_lacks_time() {
    public(
        "aws-lambda-dotnet__dynamodb-timewindow-event.json",
        Expect {
            table: Some("orders"),
            ..rejected(3, "ApproximateCreationDateTime")
        },
    );
}

#[test]
fn dotnet_ms_event() {
    public(
        "aws-lambda-dotnet__dynamodb-with-ms-event.json",
        archived(2),
    );
    // Milliseconds and seconds for the same instant land on the same day and time.
    let Some(bytes) = public_bytes("aws-lambda-dotnet__dynamodb-with-ms-event.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    archive(&settings(dir.path(), Format::JsonlGz), &[("ms", &bytes)]);
    let rows = all_rows(dir.path());
    assert!(
        rows.iter()
            .all(|(_, r)| time(r) == "2016-12-02T01:27:00.000Z"),
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
    public(
        "aws-lambda-go__dynamodb-event-malformed.2.json",
        input_error("invalid JSON at line 135, column 10"),
    );
}

#[test]
fn go_event() {
    public("aws-lambda-go__dynamodb-event.json", archived(2));
}

#[test]
fn go_time_window_event() {
    public(
        "aws-lambda-go__dynamodb-time-window-event.json",
        rejected(3, "names no table"),
    );
}

#[test]
fn java_event_two_days() {
    public("aws-lambda-java-libs__dynamo_event.json", archived(3));
    let Some(bytes) = public_bytes("aws-lambda-java-libs__dynamo_event.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    archive(&settings(dir.path(), Format::Parquet), &[("java", &bytes)]);
    let rows = all_rows(dir.path());
    let modify = rows.iter().find(|(_, r)| r.event_name == "MODIFY").unwrap();
    assert_eq!(time(&modify.1), "2021-11-01T02:40:07.123Z");
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
    public(
        "aws-lambda-rust-runtime__example-dynamodb-event-record-with-optional-fields.json",
        rejected(1, "SequenceNumber"),
    );
}

#[test]
fn sam_template_table_placeholder() {
    public(
        "aws-sam-cli__DynamoDBUpdate.json",
        rejected(3, "not a valid DynamoDB table name"),
    );
}

#[test]
fn botocore_examples_document_is_not_an_event() {
    public(
        "botocore__dynamodbstreams-2012-08-10-examples-1.json",
        input_error("is not a stream event"),
    );
}

#[test]
fn kinesis_adapter_record_with_anonymized_sequence() {
    public(
        "dynamodb-streams-kinesis-adapter__complex_structure_expected.json",
        rejected(1, "not a decimal sequence number"),
    );
}

#[test]
fn keys_only_modify() {
    public(
        "dynamodb-streams-test__README-block02-keys-only-modify.json",
        archived(1),
    );
}

#[test]
fn new_image_remove() {
    public(
        "dynamodb-streams-test__README-block09-new-image-remove.json",
        archived(1),
    );
}

#[test]
fn old_image_modify() {
    public(
        "dynamodb-streams-test__README-block11-old-image-modify.json",
        archived(1),
    );
}

#[test]
fn powertools_stream_event_without_table() {
    public(
        "powertools-lambda-python__dynamoStreamEvent.json",
        rejected(2, "names no table"),
    );
}

#[test]
fn powertools_stream_event_with_table() {
    let file = "powertools-lambda-python__dynamoStreamEvent.json";
    let Some(bytes) = public_bytes(file) else {
        return;
    };
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
    public(
        "powertools-lambda-python__getting_started_dynamodb_event.json",
        rejected(2, "names no table"),
    );
}

#[test]
fn powertools_kinesis_dynamodb_stream() {
    public(
        "powertools-lambda-typescript__kinesis-dynamodb-stream.json",
        archived(2),
    );
    let file = "powertools-lambda-typescript__kinesis-dynamodb-stream.json";
    let Some(bytes) = public_bytes(file) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    archive(&settings(dir.path(), Format::Parquet), &[(file, &bytes)]);
    let rows = all_rows(dir.path());
    let (key, row) = &rows[0];
    assert!(key.starts_with(
        "PowertoolsEventsStack-DynamoDBTable59784FC0-8NKAMTERTAXY/year=2024/month=11/day=18/"
    ));
    assert_eq!(time(row), "2024-11-18T10:09:15.370Z");
    assert_eq!(
        row.sequence_number,
        "49657828409187701520019995242508390119953358325192589314"
    );
    assert_eq!(row.event_id, "d9428029-0f63-4056-86da-ce10d545b1b9");
    assert!(row
        .record
        .starts_with("{\"awsRegion\":\"eu-west-1\",\"eventID\":\"d9428029"));
}

/// Every fixture file, the project's own and the public ones when present, has a test
/// above.
#[test]
fn every_fixture_is_covered() {
    let this = include_str!("fixtures.rs");
    let dirs = std::iter::once(own_fixtures_dir()).chain(public_fixtures_dir());
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") || name.ends_with(".jsonl") {
                assert!(this.contains(&format!("\"{name}\"")), "no test for {name}");
            }
        }
    }
}
