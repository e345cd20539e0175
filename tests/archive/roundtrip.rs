//! Lossless round trips: random DynamoDB values, including the hard cases (38-digit and
//! exponent numbers, every byte of binary, NUL and any unicode, empty sets, maps and lists,
//! odd attribute names), come back byte-exact from both formats.

use ddb_archiver::decode::minify_json;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::support::*;

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1E+125".to_string()),
        Just("-1E-130".to_string()),
        Just("0".to_string()),
        Just("12345678901234567890123456789012345678".to_string()),
        Just("-0.00000000000000000000000000000000000001".to_string()),
        "-?[1-9][0-9]{0,37}",
        "-?[0-9]{1,19}\\.[0-9]{1,19}",
        "-?[1-9]\\.[0-9]{1,36}[eE][+-]?[0-9]{1,3}",
    ]
}

fn b64() -> impl Strategy<Value = String> {
    use base64::Engine as _;
    prop::collection::vec(any::<u8>(), 0..40)
        .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("\u{0}".to_string()),
        Just("quote \" backslash \\ slash / tab \t newline \n".to_string()),
        Just("🦊 ünïcödé 中文 \u{2028}".to_string()),
        Just(String::new()),
    ]
}

fn attr() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text().prop_map(|s| json!({ "S": s })),
        number().prop_map(|n| json!({ "N": n })),
        b64().prop_map(|b| json!({ "B": b })),
        any::<bool>().prop_map(|b| json!({ "BOOL": b })),
        Just(json!({ "NULL": true })),
        prop::collection::vec(text(), 0..4).prop_map(|v| json!({ "SS": v })),
        prop::collection::vec(number(), 0..4).prop_map(|v| json!({ "NS": v })),
        prop::collection::vec(b64(), 0..4).prop_map(|v| json!({ "BS": v })),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({ "L": v })),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| json!({ "M": m.into_iter().collect::<Map<String, Value>>() })),
        ]
    })
}

fn item() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(text(), attr(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn event(items: &[(Value, Value, Option<Value>)], pretty: bool) -> String {
    let records: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (keys, new, old))| {
            let mut ddb = json!({
                "ApproximateCreationDateTime": 1_767_225_000 + i as i64 * 997,
                "Keys": keys,
                "NewImage": new,
                "SequenceNumber": format!("{}", 1000 + i),
                "SizeBytes": 10,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            });
            if let Some(old) = old {
                ddb["OldImage"] = old.clone();
            }
            json!({
                "eventID": format!("id-{i}"),
                "eventName": if old.is_some() { "MODIFY" } else { "INSERT" },
                "eventSource": "aws:dynamodb",
                "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/prop_table/stream/x",
                "dynamodb": ddb,
            })
        })
        .collect();
    let doc = json!({ "Records": records });
    if pretty {
        serde_json::to_string_pretty(&doc).unwrap()
    } else {
        serde_json::to_string(&doc).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn images_round_trip_byte_exact(
        items in prop::collection::vec((item(), item(), prop::option::of(item())), 1..6),
        pretty in any::<bool>(),
    ) {
        let input = event(&items, pretty);
        for format in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let summary = archive(&settings(dir.path(), format), &[("prop", input.as_bytes())]);
            prop_assert_eq!(summary.archived, items.len(), "{:?}", summary);
            let mut rows: Vec<Row> = all_rows(dir.path()).into_iter().map(|(_, r)| r).collect();
            rows.sort_by_key(|r| r.sequence_number.parse::<u64>().unwrap());
            for (row, (keys, new, old)) in rows.iter().zip(&items) {
                prop_assert_eq!(&row.keys, &minify_json(&serde_json::to_string_pretty(keys).unwrap()));
                prop_assert_eq!(row.new_image.clone(), Some(serde_json::to_string(new).unwrap()));
                prop_assert_eq!(row.old_image.clone(), old.as_ref().map(|o| serde_json::to_string(o).unwrap()));
                let record: Value = serde_json::from_str(&row.record).unwrap();
                prop_assert_eq!(&record["dynamodb"]["NewImage"], new);
            }
        }
    }
}

#[test]
fn hard_values_survive_exactly() {
    // Written by hand so the exact input bytes (escapes, exponent case, padding) are known.
    let image = r#"{"n38":{"N":"12345678901234567890123456789012345678"},"big":{"N":"1E+125"},"small":{"N":"-1E-130"},"nul":{"S":"a\u0000b"},"esc":{"S":"\u00e9\ud83e\udd8a\"\\"},"bin":{"B":"AAEC/w=="},"bs":{"BS":[]},"m":{"M":{}},"l":{"L":[]},"null":{"NULL":true},"f":{"BOOL":false},"":{"S":""},"a.b c":{"SS":["x"]}}"#;
    let input = format!(
        r#"{{"Records":[{{"eventID":"e","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:r:1:table/hard/stream/x","dynamodb":{{"ApproximateCreationDateTime":1767225600,"Keys":{{"n38":{{"N":"12345678901234567890123456789012345678"}}}},"NewImage":{image},"SequenceNumber":"1"}}}}]}}"#
    );
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        archive(&settings(dir.path(), format), &[("hard", input.as_bytes())]);
        let rows = all_rows(dir.path());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1.new_image.as_deref(), Some(image), "{format}");
        assert!(rows[0].1.record.contains(image));
    }
}
