//! DynamoDB Streams records: their shape (the record and its `dynamodb` part), the fields
//! the archive reads from them, and the archive record built from a change. A Kinesis
//! record carries the same change (see `kinesis`), so it is built here too.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::kinesis::KinesisShape;
use super::{
    dynamo_json, minify_json, parse_epoch, DecodeOptions, Identity, RecordError, TimeUnit,
};
use crate::model::{ChangeRecord, EventName, JsonText, SourceKind};

/// A change record's `userIdentity` (set on deletions by TTL).
#[derive(Deserialize)]
struct UserIdentity<'a> {
    #[serde(rename = "principalId", borrow, default)]
    principal_id: Option<Cow<'a, str>>,
}

/// A change record's fields, its `dynamodb` part kept raw.
#[derive(Deserialize)]
pub(super) struct RecordShape<'a> {
    #[serde(rename = "eventID", borrow, default)]
    pub(super) event_id: Option<Cow<'a, str>>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventSourceARN", borrow, default)]
    event_source_arn: Option<Cow<'a, str>>,
    #[serde(rename = "tableName", borrow, default)]
    table_name: Option<Cow<'a, str>>,
    #[serde(rename = "userIdentity", borrow, default)]
    user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow, default)]
    pub(super) dynamodb: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) kinesis: Option<KinesisShape<'a>>,
}

/// The `dynamodb` part of a change record, JSON values kept raw.
#[derive(Deserialize)]
pub(super) struct StreamRecordShape<'a> {
    #[serde(rename = "ApproximateCreationDateTime", borrow, default)]
    approximate_creation_date_time: Option<&'a RawValue>,
    #[serde(rename = "ApproximateCreationDateTimePrecision", borrow, default)]
    precision: Option<Cow<'a, str>>,
    #[serde(rename = "Keys", borrow, default)]
    keys: Option<&'a RawValue>,
    #[serde(rename = "NewImage", borrow, default)]
    new_image: Option<&'a RawValue>,
    #[serde(rename = "OldImage", borrow, default)]
    old_image: Option<&'a RawValue>,
    #[serde(rename = "SequenceNumber", borrow, default)]
    sequence_number: Option<Cow<'a, str>>,
    #[serde(rename = "SizeBytes", borrow, default)]
    size_bytes: Option<&'a RawValue>,
    #[serde(rename = "StreamViewType", borrow, default)]
    stream_view_type: Option<Cow<'a, str>>,
}

/// The fields of a change record the archive reads, however they were read (by the
/// fast path in [`scan`](super::scan), or by serde_json).
pub(super) struct Fields<'a> {
    pub(super) event_id: Option<Cow<'a, str>>,
    pub(super) event_name: Option<Cow<'a, str>>,
    pub(super) event_source_arn: Option<Cow<'a, str>>,
    pub(super) table_name: Option<Cow<'a, str>>,
    /// `userIdentity.principalId`.
    pub(super) principal_id: Option<Cow<'a, str>>,
}

impl<'a> From<&RecordShape<'a>> for Fields<'a> {
    fn from(r: &RecordShape<'a>) -> Self {
        Fields {
            event_id: r.event_id.clone(),
            event_name: r.event_name.clone(),
            event_source_arn: r.event_source_arn.clone(),
            table_name: r.table_name.clone(),
            principal_id: r
                .user_identity
                .as_ref()
                .and_then(|u| u.principal_id.clone()),
        }
    }
}

/// The `dynamodb` part of a change record; JSON values as their raw text.
pub(super) struct StreamFields<'a> {
    pub(super) time: Option<&'a str>,
    pub(super) precision: Option<Cow<'a, str>>,
    pub(super) keys: Option<&'a str>,
    pub(super) new_image: Option<&'a str>,
    pub(super) old_image: Option<&'a str>,
    pub(super) sequence_number: Option<Cow<'a, str>>,
    pub(super) size_bytes: Option<&'a str>,
    pub(super) stream_view_type: Option<Cow<'a, str>>,
    /// The images were already checked as DynamoDB JSON.
    pub(super) images_checked: bool,
}

impl<'a> From<&StreamRecordShape<'a>> for StreamFields<'a> {
    fn from(s: &StreamRecordShape<'a>) -> Self {
        StreamFields {
            time: s.approximate_creation_date_time.map(RawValue::get),
            precision: s.precision.clone(),
            keys: s.keys.map(RawValue::get),
            new_image: s.new_image.map(RawValue::get),
            old_image: s.old_image.map(RawValue::get),
            sequence_number: s.sequence_number.clone(),
            size_bytes: s.size_bytes.map(RawValue::get),
            stream_view_type: s.stream_view_type.clone(),
            images_checked: false,
        }
    }
}

/// A DynamoDB Streams record from its parts and its text (see [`RawRecord`]).
pub(super) fn decode_stream(
    outer: &Fields<'_>,
    stream: &StreamFields<'_>,
    raw: RawRecord<'_>,
    opts: &DecodeOptions,
    ident: &mut Identity,
) -> Result<ChangeRecord, RecordError> {
    ident.sequence_number = stream.sequence_number.as_deref().map(str::to_string);
    let sequence_number = stream
        .sequence_number
        .as_deref()
        .ok_or(RecordError::Missing("dynamodb.SequenceNumber"))?;
    check_sequence_number("dynamodb.SequenceNumber", sequence_number)?;
    let table = table_from_arn(outer.event_source_arn.as_deref())
        .or(outer.table_name.as_deref())
        .or(opts.table.as_deref())
        .ok_or_else(|| no_table(outer.event_source_arn.as_deref()))?;
    let time = stream
        .time
        .ok_or(RecordError::Missing("dynamodb.ApproximateCreationDateTime"))?;
    let time_ms =
        parse_epoch(time, TimeUnit::SecondsOrMillis).map_err(|reason| RecordError::Invalid {
            field: "dynamodb.ApproximateCreationDateTime",
            reason,
        })?;
    build_change(
        outer,
        stream,
        table,
        sequence_number.to_string(),
        time_ms,
        raw,
        SourceKind::DynamoDbStream,
    )
}

/// A change's JSON text, the buffer it is part of (its images too), and whether it is
/// known to hold no whitespace between tokens.
pub(super) type RawRecord<'a> = (&'a str, &'a Arc<String>, Option<bool>);

/// The archive record from a change's parts and text.
pub(super) fn build_change(
    outer: &Fields<'_>,
    stream: &StreamFields<'_>,
    table: &str,
    sequence_number: String,
    approximate_creation_time_ms: i64,
    raw_record: RawRecord<'_>,
    source: SourceKind,
) -> Result<ChangeRecord, RecordError> {
    let (raw_record, buf, known_compact) = raw_record;
    let (record, compact) = match known_compact {
        Some(true) => (JsonText::within(buf, raw_record), true),
        _ => {
            let record = minify_json(raw_record);
            // No whitespace between tokens in the whole record: its images need no
            // minifying.
            if record.len() == raw_record.len() {
                (JsonText::within(buf, raw_record), true)
            } else {
                (JsonText::from(record), false)
            }
        }
    };
    let event_id = outer
        .event_id
        .as_deref()
        .ok_or(RecordError::Missing("eventID"))?;
    if event_id.is_empty() {
        return Err(RecordError::Invalid {
            field: "eventID",
            reason: "empty".to_string(),
        });
    }
    let event_name_text = outer
        .event_name
        .as_deref()
        .ok_or(RecordError::Missing("eventName"))?;
    let event_name = EventName::parse(event_name_text).ok_or_else(|| RecordError::Invalid {
        field: "eventName",
        reason: format!("{event_name_text:?} is not INSERT, MODIFY or REMOVE"),
    })?;
    crate::model::key::validate_table_name(table).map_err(RecordError::NoTable)?;
    let checked = stream.images_checked;
    let keys = stream.keys.ok_or(RecordError::Missing("dynamodb.Keys"))?;
    let image = |field, raw| image_text(field, raw, compact.then_some(buf), checked);
    let keys = image("dynamodb.Keys", keys)?;
    let new_image = stream
        .new_image
        .map(|v| image("dynamodb.NewImage", v))
        .transpose()?;
    let old_image = stream
        .old_image
        .map(|v| image("dynamodb.OldImage", v))
        .transpose()?;
    let size_bytes = stream
        .size_bytes
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| RecordError::Invalid {
                    field: "dynamodb.SizeBytes",
                    reason: format!("{v} is not a non-negative integer"),
                })
        })
        .transpose()?;
    let ttl_delete = event_name == EventName::Remove
        && outer.principal_id.as_deref() == Some("dynamodb.amazonaws.com");
    Ok(ChangeRecord {
        event_id: event_id.to_string(),
        event_name,
        table_name: table.to_string(),
        sequence_number,
        approximate_creation_time_ms,
        stream_view_type: stream.stream_view_type.as_deref().map(str::to_string),
        size_bytes,
        ttl_delete,
        keys,
        new_image,
        old_image,
        record,
        source,
        index: 0,
    })
}

/// The image's text, checked as DynamoDB JSON unless `checked`: a range of `compact`
/// (the buffer it is part of) when it has no whitespace between tokens, else minified.
fn image_text(
    field: &'static str,
    raw: &str,
    compact: Option<&Arc<String>>,
    checked: bool,
) -> Result<JsonText, RecordError> {
    if !checked {
        dynamo_json::validate_item(raw).map_err(|reason| RecordError::Invalid { field, reason })?;
    }
    Ok(match compact {
        Some(buf) => JsonText::within(buf, raw),
        None => JsonText::from(minify_json(raw)),
    })
}

pub(super) fn check_sequence_number(field: &'static str, s: &str) -> Result<(), RecordError> {
    if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RecordError::Invalid {
            field,
            reason: format!("{s:?} is not a decimal sequence number"),
        });
    }
    Ok(())
}

fn no_table(arn: Option<&str>) -> RecordError {
    RecordError::NoTable(match arn {
        Some(arn) => format!("eventSourceARN {arn:?} names no table and no --table was given"),
        None => "the record has no eventSourceARN and no --table was given".to_string(),
    })
}

/// The table name in a DynamoDB stream ARN (`...:table/<name>/stream/...`).
pub fn table_from_arn(arn: Option<&str>) -> Option<&str> {
    let arn = arn?;
    let start = arn.find(":table/")? + ":table/".len();
    let rest = &arn[start..];
    let end = rest.find('/').unwrap_or(rest.len());
    let name = &rest[..end];
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::one;
    use crate::decode::Decoded;

    #[test]
    fn arn_table() {
        assert_eq!(
            table_from_arn(Some("arn:aws:dynamodb:us-east-1:1:table/T-1/stream/2020")),
            Some("T-1")
        );
        assert_eq!(table_from_arn(Some("stream-ARN")), None);
    }

    #[test]
    fn ddb_record_decodes() {
        let d = one(
            r#"{"Records":[{"eventID":"e1","eventName":"REMOVE","eventSourceARN":"arn:aws:dynamodb:r:1:table/orders/stream/x",
            "userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"},
            "dynamodb":{"ApproximateCreationDateTime":1.635734407123456789E9,"Keys":{"id":{"N":"1E+125"}},
            "OldImage":{"id":{"N":"1E+125"}},"SequenceNumber":"42","SizeBytes":5,"StreamViewType":"OLD_IMAGE"}}]}"#,
        );
        let Decoded::Change(c) = d else {
            panic!("{d:?}")
        };
        assert_eq!(c.table_name, "orders");
        assert_eq!(c.approximate_creation_time_ms, 1_635_734_407_123);
        assert!(c.ttl_delete);
        assert_eq!(c.keys, r#"{"id":{"N":"1E+125"}}"#);
    }

    #[test]
    fn compact_and_spaced_records_decode_alike() {
        let spaced = r#"{"Records":[{ "eventID" : "e1", "eventName":"MODIFY","eventSourceARN":"arn:aws:dynamodb:r:1:table/tbl/stream/x",
            "dynamodb":{"ApproximateCreationDateTime":1,"Keys":{ "id" : {"S":"a b"}},
            "NewImage":{"id":{"S":"a b"}, "l":{"L":[ {"N":"1"} , {"S":" \" "} ]}},
            "OldImage":{"id":{"S":"a b"}},"SequenceNumber":"42"}}]}"#;
        let compact = r#"{"Records":[{"eventID":"e1","eventName":"MODIFY","eventSourceARN":"arn:aws:dynamodb:r:1:table/tbl/stream/x","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"id":{"S":"a b"}},"NewImage":{"id":{"S":"a b"},"l":{"L":[{"N":"1"},{"S":" \" "}]}},"OldImage":{"id":{"S":"a b"}},"SequenceNumber":"42"}}]}"#;
        let (Decoded::Change(a), Decoded::Change(b)) = (one(spaced), one(compact)) else {
            panic!("both decode")
        };
        assert_eq!(a, b);
        assert_eq!(
            a.new_image.as_deref(),
            Some(r#"{"id":{"S":"a b"},"l":{"L":[{"N":"1"},{"S":" \" "}]}}"#)
        );
    }

    #[test]
    fn malformed_dynamodb_part_is_named() {
        let d = one(r#"{"Records":[{"eventID":"e9","eventName":"INSERT","dynamodb":"x"}]}"#);
        let Decoded::Rejected(r) = d else {
            panic!("{d:?}")
        };
        assert_eq!(r.event_id.as_deref(), Some("e9"));
        assert!(
            matches!(
                r.error,
                RecordError::Invalid {
                    field: "dynamodb",
                    ..
                }
            ),
            "{:?}",
            r.error
        );
    }

    #[test]
    fn missing_table_is_rejected_with_reason() {
        let d = one(
            r#"{"Records":[{"eventID":"e1","eventName":"INSERT","eventSourceARN":"stream-ARN",
            "dynamodb":{"ApproximateCreationDateTime":1,"Keys":{},"SequenceNumber":"1"}}]}"#,
        );
        let Decoded::Rejected(r) = d else {
            panic!("{d:?}")
        };
        assert_eq!(r.event_id.as_deref(), Some("e1"));
        assert!(r.error.to_string().contains("--table"), "{}", r.error);
    }
}
