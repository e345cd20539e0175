//! Routing by event time: UTC midnight, a year boundary, two tables, Kinesis milliseconds
//! and microseconds; and determinism: the same input twice gives the same files.

use base64::Engine as _;
use ddb_archiver::model::Format;
use serde_json::json;

use crate::support::*;

fn ddb_record(id: &str, table: &str, seq: u64, time: serde_json::Value) -> serde_json::Value {
    json!({
        "eventID": id, "eventName": "INSERT", "eventSource": "aws:dynamodb",
        "eventSourceARN": format!("arn:aws:dynamodb:eu-west-1:1:table/{table}/stream/x"),
        "dynamodb": {"ApproximateCreationDateTime": time, "Keys": {"pk": {"S": id}},
                      "NewImage": {"pk": {"S": id}}, "SequenceNumber": seq.to_string()}
    })
}

fn kinesis_record(id: &str, seq: &str, time: u64, micros: bool) -> serde_json::Value {
    let mut ddb =
        json!({"ApproximateCreationDateTime": time, "Keys": {"pk": {"S": id}}, "SizeBytes": 9});
    if micros {
        ddb["ApproximateCreationDateTimePrecision"] = json!("MICROSECOND");
    }
    let payload = json!({"awsRegion": "eu-west-1", "eventID": id, "eventName": "INSERT",
        "userIdentity": null, "recordFormat": "application/json", "tableName": "kin_table",
        "dynamodb": ddb, "eventSource": "aws:dynamodb"});
    json!({"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": seq,
        "data": base64::engine::general_purpose::STANDARD.encode(payload.to_string()),
        "approximateArrivalTimestamp": 1.0},
        "eventSource": "aws:kinesis", "eventID": format!("shardId-0:{seq}"), "eventName": "aws:kinesis:record"})
}

fn partitions_of(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = all_rows(dir)
        .into_iter()
        .map(|(k, r)| (k[..k.rfind('/').unwrap() + 1].to_string(), r.event_id))
        .collect();
    v.sort();
    v
}

#[test]
fn utc_midnight_and_year_boundary() {
    let doc = json!({"Records": [
        ddb_record("before", "orders", 1, json!(1767225599.999)),   // 2025-12-31T23:59:59.999Z
        ddb_record("after", "orders", 2, json!(1767225600)),         // 2026-01-01T00:00:00Z
        ddb_record("ms", "orders", 3, json!(1767225599999u64)),      // milliseconds, 2025-12-31
        ddb_record("sci", "orders", 4, json!("1.7672256E9")),        // string, scientific
        ddb_record("other", "customers", 5, json!(1767225600)),      // second table
    ]});
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        let s = archive(
            &settings(dir.path(), format),
            &[("d", doc.to_string().as_bytes())],
        );
        assert_eq!(s.archived, 5);
        assert_eq!(
            partitions_of(dir.path()),
            vec![
                (
                    "customers/year=2026/month=01/day=01/".into(),
                    "other".into()
                ),
                ("orders/year=2025/month=12/day=31/".into(), "before".into()),
                ("orders/year=2025/month=12/day=31/".into(), "ms".into()),
                ("orders/year=2026/month=01/day=01/".into(), "after".into()),
                ("orders/year=2026/month=01/day=01/".into(), "sci".into()),
            ],
            "{format}"
        );
        let times: Vec<String> = all_rows(dir.path())
            .into_iter()
            .map(|(_, r)| time(&r))
            .collect();
        assert!(
            times.contains(&"2025-12-31T23:59:59.999Z".to_string()),
            "{times:?}"
        );
    }
}

#[test]
fn kinesis_milliseconds_and_microseconds() {
    let doc = json!({"Records": [
        kinesis_record("k-ms", "49657828409187701520019995242508390119953358325192589314", 1767225599999, false),
        kinesis_record("k-us", "49657828409187701520019995242508390119953358325192589315", 1767225600000123, true),
    ]});
    let dir = tempfile::tempdir().unwrap();
    let s = archive(
        &settings(dir.path(), Format::Parquet),
        &[("k", doc.to_string().as_bytes())],
    );
    assert_eq!(s.archived, 2, "{s:#?}");
    assert_eq!(
        partitions_of(dir.path()),
        vec![
            ("kin_table/year=2025/month=12/day=31/".into(), "k-ms".into()),
            ("kin_table/year=2026/month=01/day=01/".into(), "k-us".into()),
        ]
    );
    let rows = all_rows(dir.path());
    let us = rows.iter().find(|(_, r)| r.event_id == "k-us").unwrap();
    assert_eq!(time(&us.1), "2026-01-01T00:00:00.000Z");
    assert_eq!(
        us.1.sequence_number,
        "49657828409187701520019995242508390119953358325192589315"
    );
}

#[test]
fn same_input_twice_gives_same_files() {
    let example = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/events/invoices-stream.json"
    ))
    .unwrap();
    let own = std::fs::read(own_fixture("lambda-every-attribute-type.json")).unwrap();
    let inputs: [(&str, &[u8]); 2] = [("example", &example), ("own", &own)];
    for format in FORMATS {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        archive(&settings(a.path(), format), &inputs);
        archive(&settings(b.path(), format), &inputs);
        let first = files(a.path());
        assert_eq!(
            first,
            files(b.path()),
            "{format}: byte-identical in a fresh directory"
        );
        // Again into the same directory: nothing new, nothing duplicated.
        let again = archive(&settings(a.path(), format), &inputs);
        assert!(again
            .files
            .iter()
            .all(|f| f.outcome == ddb_archiver::sink::PutOutcome::AlreadyPresent));
        assert_eq!(first, files(a.path()));
        let mut ids: Vec<String> = all_rows(a.path())
            .into_iter()
            .map(|(_, r)| r.event_id)
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "no duplicated event_id");
        assert_eq!(n, 9);
    }
}

#[test]
fn different_record_sets_get_different_names() {
    let one = json!({"Records": [ddb_record("a", "orders", 1, json!(1767225600))]});
    let two = json!({"Records": [ddb_record("a", "orders", 1, json!(1767225600)), ddb_record("b", "orders", 2, json!(1767225600))]});
    let dir = tempfile::tempdir().unwrap();
    archive(
        &settings(dir.path(), Format::JsonlGz),
        &[("one", one.to_string().as_bytes())],
    );
    archive(
        &settings(dir.path(), Format::JsonlGz),
        &[("two", two.to_string().as_bytes())],
    );
    assert_eq!(files(dir.path()).len(), 2);
}
