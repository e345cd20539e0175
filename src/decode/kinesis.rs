//! Kinesis records carrying DynamoDB changes (Kinesis Data Streams for DynamoDB): the
//! `kinesis` part's base64 data is decoded and read as the DynamoDB change it carries,
//! by the fast path (`scan`) first when it can; the sequence number is Kinesis's.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::stream::{
    build_change, check_sequence_number, table_from_arn, Fields, RawRecord, RecordShape,
    StreamFields, StreamRecordShape,
};
use super::{
    json_error_message, parse_epoch, scan, DecodeOptions, Identity, RecordError, TimeUnit,
};
use crate::model::{ChangeRecord, SourceKind};

/// The `kinesis` part of a Kinesis record: its sequence number and base64 data.
#[derive(Deserialize)]
pub(super) struct KinesisShape<'a> {
    #[serde(rename = "sequenceNumber", borrow, default)]
    pub(super) sequence_number: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) data: Option<Cow<'a, str>>,
}

/// A Kinesis record from its `eventID` and `kinesis` part: the base64 data is decoded
/// and read as the DynamoDB change it carries (by the fast path first when `fast`).
pub(super) fn decode_kinesis(
    outer_event_id: Option<Cow<'_, str>>,
    sequence_number: Option<Cow<'_, str>>,
    data: Option<Cow<'_, str>>,
    fast: bool,
    opts: &DecodeOptions,
    ident: &mut Identity,
) -> Result<ChangeRecord, RecordError> {
    ident.event_id = outer_event_id.as_deref().map(str::to_string);
    ident.sequence_number = sequence_number.as_deref().map(str::to_string);
    let sequence_number = sequence_number
        .as_deref()
        .ok_or(RecordError::Missing("kinesis.sequenceNumber"))?;
    check_sequence_number("kinesis.sequenceNumber", sequence_number)?;
    let data = data
        .as_deref()
        .ok_or(RecordError::Missing("kinesis.data"))?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| RecordError::Invalid {
            field: "kinesis.data",
            reason: format!("not base64: {e}"),
        })?;
    let payload = String::from_utf8(payload).map_err(|e| RecordError::Invalid {
        field: "kinesis.data",
        reason: format!(
            "decoded data is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    let payload = Arc::new(payload);
    if let Some((text, scanned)) = fast.then(|| scan::whole_record(&payload)).flatten() {
        if scanned.kinesis.is_none() {
            let change = KinesisChange {
                fields: scanned.fields,
                stream: scanned.stream,
                raw: (text, &payload, Some(scanned.compact)),
            };
            return change.decode(sequence_number, opts, ident);
        }
    }
    let payload_raw: &RawValue =
        serde_json::from_str(payload.as_str()).map_err(|e| RecordError::Invalid {
            field: "kinesis.data",
            reason: format!("decoded data is not JSON: {e}"),
        })?;
    let inner: RecordShape<'_> =
        serde_json::from_str(payload_raw.get()).map_err(|e| RecordError::Invalid {
            field: "kinesis.data",
            reason: format!("decoded data is not a DynamoDB change: {e}"),
        })?;
    if let Some(id) = inner.event_id.as_deref() {
        ident.event_id = Some(id.to_string());
    }
    let ddb = inner
        .dynamodb
        .ok_or(RecordError::Missing("kinesis.data: dynamodb"))?;
    let stream: StreamRecordShape<'_> =
        serde_json::from_str(ddb.get()).map_err(|e| RecordError::Invalid {
            field: "kinesis.data: dynamodb",
            reason: json_error_message(&e),
        })?;
    let change = KinesisChange {
        fields: Fields::from(&inner),
        stream: Some(StreamFields::from(&stream)),
        raw: (payload_raw.get(), &payload, None),
    };
    change.decode(sequence_number, opts, ident)
}

/// The DynamoDB change a Kinesis record carries, read from its decoded data.
struct KinesisChange<'a> {
    fields: Fields<'a>,
    stream: Option<StreamFields<'a>>,
    /// The change's JSON text, part of the decoded data.
    raw: RawRecord<'a>,
}

impl KinesisChange<'_> {
    fn decode(
        self,
        sequence_number: &str,
        opts: &DecodeOptions,
        ident: &mut Identity,
    ) -> Result<ChangeRecord, RecordError> {
        let inner = &self.fields;
        if let Some(id) = inner.event_id.as_deref() {
            ident.event_id = Some(id.to_string());
        }
        let stream = self
            .stream
            .ok_or(RecordError::Missing("kinesis.data: dynamodb"))?;
        let table = inner
            .table_name
            .as_deref()
            .or_else(|| table_from_arn(inner.event_source_arn.as_deref()))
            .or(opts.table.as_deref())
            .ok_or_else(|| RecordError::NoTable("the change carries no `tableName`".to_string()))?;
        let unit = match stream.precision.as_deref() {
            None | Some("MILLISECOND") => TimeUnit::Millis,
            Some("MICROSECOND") => TimeUnit::Micros,
            Some(other) => {
                return Err(RecordError::Invalid {
                    field: "dynamodb.ApproximateCreationDateTimePrecision",
                    reason: format!("unknown precision {other:?}"),
                })
            }
        };
        let time = stream
            .time
            .ok_or(RecordError::Missing("dynamodb.ApproximateCreationDateTime"))?;
        let time_ms = parse_epoch(time, unit).map_err(|reason| RecordError::Invalid {
            field: "dynamodb.ApproximateCreationDateTime",
            reason,
        })?;
        build_change(
            inner,
            &stream,
            table,
            sequence_number.to_string(),
            time_ms,
            self.raw,
            SourceKind::Kinesis,
        )
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use crate::decode::tests::one;
    use crate::decode::Decoded;

    #[test]
    fn kinesis_micros() {
        let payload = r#"{"eventID":"k1","eventName":"INSERT","tableName":"t_1","dynamodb":{"ApproximateCreationDateTime":1731924555370123,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{"id":{"S":"a"}}}}"#;
        let data = base64::engine::general_purpose::STANDARD.encode(payload);
        let doc = format!(
            r#"{{"Records":[{{"kinesis":{{"sequenceNumber":"4965","data":"{data}"}},"eventSource":"aws:kinesis","eventID":"shard:4965"}}]}}"#
        );
        let Decoded::Change(c) = one(&doc) else {
            panic!()
        };
        assert_eq!(c.approximate_creation_time_ms, 1_731_924_555_370);
        assert_eq!(c.event_id, "k1");
        assert_eq!(c.sequence_number, "4965");
        assert_eq!(c.record, payload);
    }
}
