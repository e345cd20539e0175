//! Thresholds split a large input into several files per partition, each within the
//! limit, with no record lost; bad records among good ones are kept under `_rejected/`.

use ddb_archiver::model::Format;
use serde_json::json;

use crate::support::*;

fn big_input(n: usize) -> String {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({
                "eventID": format!("ev-{i:05}"), "eventName": "MODIFY", "eventSource": "aws:dynamodb",
                "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/big_table/stream/x",
                "dynamodb": {
                    // Three days, interleaved.
                    "ApproximateCreationDateTime": 1767225600 + (i % 3) as i64 * 86_400 + i as i64,
                    "Keys": {"pk": {"S": format!("item-{}", i % 50)}},
                    "NewImage": {"pk": {"S": format!("item-{}", i % 50)}, "payload": {"S": "x".repeat(200)}},
                    "SequenceNumber": format!("{}", 10_000 + i),
                }
            })
        })
        .collect();
    json!({"Records": records}).to_string()
}

#[test]
fn record_threshold_splits_files() {
    let input = big_input(3000);
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings {
            max_file_records: 400,
            ..settings(dir.path(), format)
        };
        let summary = archive(&s, &[("big", input.as_bytes())]);
        assert_eq!(summary.archived, 3000);
        let per_file: Vec<usize> = files(dir.path())
            .iter()
            .map(|(k, v)| read_rows(k, v).len())
            .collect();
        assert!(per_file.iter().all(|n| *n <= 400), "{per_file:?}");
        assert_eq!(per_file.iter().sum::<usize>(), 3000);
        assert_eq!(per_file.len(), 9, "3 days x 1000 records / 400 per file");
        let mut ids: Vec<String> = all_rows(dir.path())
            .into_iter()
            .map(|(_, r)| r.event_id)
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3000, "no record lost or duplicated");
    }
}

#[test]
fn byte_threshold_and_memory_bound_split_files() {
    let input = big_input(2000);
    let dir = tempfile::tempdir().unwrap();
    // Records are ~1.3 KB in memory: a few dozen per file, and the buffer as a whole
    // holds at most ~100 KB across the three partitions.
    let s = Settings {
        max_file_bytes: 50_000,
        max_buffer_bytes: 100_000,
        ..settings(dir.path(), Format::Parquet)
    };
    let summary = archive(&s, &[("big", input.as_bytes())]);
    assert_eq!(summary.archived, 2000);
    let all = files(dir.path());
    assert!(all.len() >= 30, "{} files", all.len());
    let mut total = 0;
    for (k, v) in &all {
        let rows = read_rows(k, v);
        let bytes: usize = rows
            .iter()
            .map(|r| r.record.len() + r.keys.len() + r.new_image.as_ref().map_or(0, String::len))
            .sum();
        assert!(bytes <= 50_000, "{k}: {bytes} bytes of records");
        total += rows.len();
    }
    assert_eq!(total, 2000);
}

#[test]
fn bad_records_do_not_stop_good_ones() {
    let doc = json!({"Records": [
        {"eventID": "good-1", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:r:1:table/mixed/stream/x",
         "dynamodb": {"ApproximateCreationDateTime": 1767225600, "Keys": {"k": {"S": "1"}}, "SequenceNumber": "1"}},
        {"eventID": "no-ddb", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:r:1:table/mixed/stream/x"},
        {"eventID": "bad-type", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:r:1:table/mixed/stream/x",
         "dynamodb": {"ApproximateCreationDateTime": 1767225600, "Keys": {"k": {"S": "2"}},
                      "NewImage": {"k": {"S": "2"}, "odd": {"Q": "1"}}, "SequenceNumber": "2"}},
        {"eventID": "bad-time", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:r:1:table/mixed/stream/x",
         "dynamodb": {"ApproximateCreationDateTime": "yesterday", "Keys": {"k": {"S": "3"}}, "SequenceNumber": "3"}},
        {"eventID": "bad-number", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:r:1:table/mixed/stream/x",
         "dynamodb": {"ApproximateCreationDateTime": 1767225600, "Keys": {"k": {"N": "12abc"}}, "SequenceNumber": "4"}},
        "not an object",
        {"eventID": "good-2", "eventName": "REMOVE", "eventSourceARN": "arn:aws:dynamodb:r:1:table/mixed/stream/x",
         "dynamodb": {"ApproximateCreationDateTime": 1767225600, "Keys": {"k": {"S": "1"}}, "SequenceNumber": "5"}},
    ]});
    let dir = tempfile::tempdir().unwrap();
    let summary = archive(
        &settings(dir.path(), Format::JsonlGz),
        &[("mixed.json", doc.to_string().as_bytes())],
    );
    assert_eq!(summary.archived, 2);
    assert_eq!(summary.rejected, 5);
    let reasons: Vec<(Option<String>, String)> = summary
        .rejected_records
        .iter()
        .map(|r| (r.event_id.clone(), r.reason.clone()))
        .collect();
    let reason_of = |id: &str| {
        reasons
            .iter()
            .find(|(e, _)| e.as_deref() == Some(id))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(reason_of("no-ddb"), "missing required field `dynamodb`");
    assert!(
        reason_of("bad-type").contains("odd: unknown attribute type \"Q\""),
        "{reasons:?}"
    );
    assert!(
        reason_of("bad-time").contains("ApproximateCreationDateTime"),
        "{reasons:?}"
    );
    assert!(
        reason_of("bad-number").contains("N value \"12abc\" is not a number"),
        "{reasons:?}"
    );
    let lines = rejected_lines(dir.path());
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().any(|l| l["record"] == json!("not an object")));
}
