//! Emit: changes become Lambda events `{"Records":[...]}` holding each record's text
//! exactly as archived, in stream order, at most `--batch-size` records (up to
//! [`MAX_BATCH_RECORDS`]) and [`MAX_PAYLOAD_BYTES`] per event.

use crate::archive::order::Change;

/// The largest batch a Lambda event source mapping delivers.
pub const MAX_BATCH_RECORDS: usize = 10_000;

/// Lambda's payload limit for a synchronous invocation: 6 MB.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

const HEAD: &[u8] = b"{\"Records\":[";

/// The stream record to replay for an archived `record` text. DynamoDB Streams records
/// (they carry `dynamodb.SequenceNumber`) are returned unchanged. A change that came
/// through Kinesis is archived as its DynamoDB change payload, whose sequence number is
/// the Kinesis one: it is wrapped back into a Lambda Kinesis record, its payload base64
/// encoded byte for byte in `kinesis.data`, with `kinesis.sequenceNumber` and an
/// `approximateArrivalTimestamp` of the change's time.
pub fn stream_record(record: String, sequence_number: &str, time_ms: i64, keys: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Shape {
        dynamodb: Option<Inner>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(rename = "SequenceNumber")]
        sequence_number: Option<serde::de::IgnoredAny>,
    }
    let from_kinesis = matches!(
        serde_json::from_str::<Shape>(&record),
        Ok(Shape {
            dynamodb: Some(Inner {
                sequence_number: None
            })
        })
    );
    if !from_kinesis {
        return record;
    }
    use base64::Engine as _;
    use sha2::Digest as _;
    let data = base64::engine::general_purpose::STANDARD.encode(record.as_bytes());
    let partition_key: String = sha2::Sha256::digest(keys.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02X}"))
        .collect();
    let seq = serde_json::Value::String(sequence_number.to_string());
    format!(
        "{{\"kinesis\":{{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"{partition_key}\",\"sequenceNumber\":{seq},\"data\":\"{data}\",\"approximateArrivalTimestamp\":{}.{:03}}},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":\"replay:{}\",\"eventName\":\"aws:kinesis:record\"}}",
        time_ms.div_euclid(1000),
        time_ms.rem_euclid(1000),
        sequence_number.chars().filter(char::is_ascii_digit).collect::<String>(),
    )
}
const TAIL: &[u8] = b"]}";

/// The bytes of one event holding `records`, without a trailing newline.
pub fn event_json(records: &[Change]) -> Vec<u8> {
    let mut out = Vec::with_capacity(event_bytes(records.iter().map(|c| c.record.len())));
    out.extend_from_slice(HEAD);
    for (i, c) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(c.record.as_bytes());
    }
    out.extend_from_slice(TAIL);
    out
}

/// The size of an event holding records of the given lengths.
pub fn event_bytes(lengths: impl Iterator<Item = usize>) -> usize {
    let (n, sum) = lengths.fold((0usize, 0usize), |(n, s), l| (n + 1, s + l));
    HEAD.len() + TAIL.len() + sum + n.saturating_sub(1)
}

/// Groups changes into events by record count and payload size.
#[derive(Debug)]
pub struct Batcher {
    max_records: usize,
    max_bytes: usize,
    pending: Vec<Change>,
    bytes: usize,
}

impl Batcher {
    /// A batcher making events of at most `max_records` records and `max_bytes` bytes.
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        Batcher {
            max_records: max_records.max(1),
            max_bytes,
            pending: Vec::new(),
            bytes: HEAD.len() + TAIL.len(),
        }
    }

    /// Adds a change; returns the previous batch when this one does not fit in it. A
    /// single record larger than the payload limit still gets an event of its own.
    pub fn push(&mut self, change: Change) -> Option<Vec<Change>> {
        let add = change.record.len() + usize::from(!self.pending.is_empty());
        let ready = if !self.pending.is_empty()
            && (self.pending.len() >= self.max_records || self.bytes + add > self.max_bytes)
        {
            self.take()
        } else {
            None
        };
        self.bytes += change.record.len() + usize::from(!self.pending.is_empty());
        if self.bytes > self.max_bytes {
            tracing::warn!(
                event_id = change.event_id,
                bytes = change.record.len(),
                "record alone exceeds the payload limit"
            );
        }
        self.pending.push(change);
        ready
    }

    /// Takes the pending batch, if any.
    pub fn take(&mut self) -> Option<Vec<Change>> {
        self.bytes = HEAD.len() + TAIL.len();
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_changes_are_wrapped_back_into_kinesis_records() {
        use crate::decode::{decode_input, DecodeOptions, Decoded};
        let payload = r#"{"awsRegion":"eu-west-1","eventID":"k1","eventName":"INSERT","tableName":"kin_table","dynamodb":{"ApproximateCreationDateTime":1767225600123,"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"},"n":{"N":"1E+125"}}},"eventSource":"aws:dynamodb"}"#;
        let seq = "49657828409187701520019995242508390119953358325192589314";
        let wrapped = stream_record(
            payload.to_string(),
            seq,
            1_767_225_600_123,
            r#"{"pk":{"S":"a"}}"#,
        );
        let event = format!("{{\"Records\":[{wrapped}]}}");
        let decoded =
            decode_input(event.as_bytes(), "replayed", &DecodeOptions::default()).unwrap();
        let Decoded::Change(c) = &decoded[0] else {
            panic!("{decoded:?}")
        };
        assert_eq!(c.record, payload, "the payload comes back byte for byte");
        assert_eq!(c.sequence_number, seq);
        assert_eq!(c.event_id, "k1");
        assert_eq!(c.approximate_creation_time_ms, 1_767_225_600_123);
        assert_eq!(c.source, crate::model::SourceKind::Kinesis);

        let ddb = r#"{"eventID":"d1","dynamodb":{"SequenceNumber":"5","Keys":{}}}"#;
        assert_eq!(
            stream_record(ddb.to_string(), "5", 0, "{}"),
            ddb,
            "unchanged"
        );
    }

    fn c(id: usize, len: usize) -> Change {
        let pad = "x".repeat(len - 8 - id.to_string().len());
        Change {
            group: String::new(),
            time_ms: 0,
            sequence_number: id.to_string(),
            event_id: id.to_string(),
            record: format!("{{\"{id}\":\"{pad}\"}}"),
        }
    }

    #[test]
    fn batches_bounded_by_count_and_bytes() {
        for (max_records, max_bytes) in [(3, 1_000_000), (100, 250), (1, 10), (7, 333)] {
            let mut b = Batcher::new(max_records, max_bytes);
            let mut events = Vec::new();
            for i in 0..50 {
                events.extend(b.push(c(i, 20 + i % 30)));
            }
            events.extend(b.take());
            let mut next = 0;
            for e in &events {
                let json = event_json(e);
                assert_eq!(json.len(), event_bytes(e.iter().map(|c| c.record.len())));
                let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
                let recs = v["Records"].as_array().unwrap();
                assert!(recs.len() <= max_records);
                assert!(json.len() <= max_bytes || recs.len() == 1);
                for r in recs {
                    assert!(r.get(next.to_string()).is_some(), "{r} is not {next}");
                    next += 1;
                }
            }
            assert_eq!(next, 50);
        }
    }
}
