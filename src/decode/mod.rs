//! Decode: turn `{"Records": [...]}` documents (Lambda DynamoDB Streams events, DynamoDB
//! Streams `GetRecords` responses, Lambda Kinesis events carrying DynamoDB changes, and
//! tumbling-window events) into [`ChangeRecord`]s, keeping every image byte-exact.
//!
//! Nothing here parses a DynamoDB number or binary value: images are validated for shape
//! (see [`dynamo_json`]) and kept as the JSON text that arrived, with insignificant
//! whitespace removed (see [`minify_json`]).

pub mod dynamo_json;
mod scan;
mod time;

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::{ChangeRecord, EventName, JsonText, SourceKind};

pub(crate) use time::Decimal;
pub use time::{parse_epoch, TimeUnit};

/// Why a single record could not be archived. The message names what was wrong; the
/// record's identity travels beside it in [`Rejected`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is not a JSON object of the expected shape.
    #[error("record is not a change record: {0}")]
    Shape(String),
    /// A required field is missing.
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    /// A field is present but its value cannot be used.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field, as named in the event.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// No table name could be found for the record.
    #[error("no table name: {0}")]
    NoTable(String),
}

/// A whole input document could not be read; nothing from it is archived.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The bytes are not valid UTF-8.
    #[error("{source_name}: not valid UTF-8 at byte {offset}")]
    Utf8 {
        /// The input's name (file path or `-`).
        source_name: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not valid JSON.
    #[error("{source_name}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// The input's name (file path or `-`).
        source_name: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser reported.
        message: String,
    },
    /// Valid JSON that is not an event document.
    #[error("{source_name}: document {index} is not a stream event: {reason}")]
    NotAnEvent {
        /// The input's name (file path or `-`).
        source_name: String,
        /// 0-based index of the JSON document in the input.
        index: usize,
        /// What was expected.
        reason: String,
    },
}

/// A record that could not be decoded, kept whole with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// `eventID`, when it could be read.
    pub event_id: Option<String>,
    /// Sequence number (Kinesis: `kinesis.sequenceNumber`), when it could be read.
    pub sequence_number: Option<String>,
    /// 0-based position of the record in its document's `Records` array.
    pub index: usize,
    /// What was wrong.
    pub error: RecordError,
    /// The raw record as received, whitespace removed.
    pub raw: String,
}

/// The outcome of decoding one record of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A change ready to archive.
    Change(Box<ChangeRecord>),
    /// A record that must go to `_rejected/`.
    Rejected(Box<Rejected>),
}

/// Options that apply to every record of a document.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Table name for records whose event names none (`GetRecords` responses).
    pub table: Option<String>,
}

/// Splits an input into its JSON documents (one or more, e.g. one event per line) and
/// decodes each. Either the whole input is valid JSON and every record gets an outcome,
/// or a [`DocumentError`] names the input and the position and nothing is returned.
pub fn decode_input(
    bytes: &[u8],
    source_name: &str,
    opts: &DecodeOptions,
) -> Result<Vec<Decoded>, DocumentError> {
    decode_owned_input(bytes.to_vec(), source_name, opts)
}

/// [`decode_input`] of an input it may keep: the changes' JSON texts are ranges of it
/// (see [`JsonText`]), so no image is copied.
pub fn decode_owned_input(
    input: Vec<u8>,
    source_name: &str,
    opts: &DecodeOptions,
) -> Result<Vec<Decoded>, DocumentError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let bom = if input.starts_with(BOM) { BOM.len() } else { 0 };
    let buf = Arc::new(String::from_utf8(input).map_err(|e| DocumentError::Utf8 {
        source_name: source_name.to_string(),
        offset: e.utf8_error().valid_up_to().saturating_sub(bom),
    })?);
    let text = buf.get(bom..).unwrap_or_default();
    let fast = scan::documents(text, |index, element| match element {
        scan::Element::Read(raw, scanned) => decode_scanned(raw, scanned, index, opts, &buf),
        scan::Element::Other(raw) => decode_record_text(raw, index, opts, &buf),
    });
    if let Some(decoded) = fast {
        return Ok(decoded);
    }
    decode_text_general(text, source_name, opts, &buf)
}

/// [`decode_input`]'s general path, serde_json only: reads any input the fast path
/// gives up on, and names what is wrong.
fn decode_text_general(
    text: &str,
    source_name: &str,
    opts: &DecodeOptions,
    buf: &Arc<String>,
) -> Result<Vec<Decoded>, DocumentError> {
    let mut docs = Vec::new();
    for doc in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
        let doc = doc.map_err(|e| DocumentError::Json {
            source_name: source_name.to_string(),
            line: e.line(),
            column: e.column(),
            message: json_error_message(&e),
        })?;
        docs.push(doc);
    }
    if docs.is_empty() {
        return Err(DocumentError::NotAnEvent {
            source_name: source_name.to_string(),
            index: 0,
            reason: "the input is empty".to_string(),
        });
    }
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        let records = document_records(doc).map_err(|reason| DocumentError::NotAnEvent {
            source_name: source_name.to_string(),
            index,
            reason,
        })?;
        out.extend(
            records
                .into_iter()
                .enumerate()
                .map(|(i, raw)| decode_record_text(raw.get(), i, opts, buf)),
        );
    }
    Ok(out)
}

/// The message of a serde_json error without its position suffix.
pub(crate) fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(pos) => full[..pos].to_string(),
        None => full,
    }
}

#[derive(Deserialize)]
struct DocumentShape<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    dynamodb: Option<&'a RawValue>,
    #[serde(borrow, default)]
    kinesis: Option<&'a RawValue>,
}

/// The records of one document: its `Records` array, or the document itself when it is
/// a single bare change record.
fn document_records(doc: &RawValue) -> Result<Vec<&RawValue>, String> {
    let shape: DocumentShape<'_> = serde_json::from_str(doc.get()).map_err(|e| {
        format!(
            "expected an object with a \"Records\" array ({})",
            json_error_message(&e)
        )
    })?;
    match shape.records {
        Some(records) => Ok(records),
        None if shape.dynamodb.is_some() || shape.kinesis.is_some() => Ok(vec![doc]),
        None => Err("expected an object with a \"Records\" array".to_string()),
    }
}

#[derive(Deserialize)]
struct UserIdentity<'a> {
    #[serde(rename = "principalId", borrow, default)]
    principal_id: Option<Cow<'a, str>>,
}

/// A change record's fields, its `dynamodb` part kept raw.
#[derive(Deserialize)]
struct RecordShape<'a> {
    #[serde(rename = "eventID", borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventSourceARN", borrow, default)]
    event_source_arn: Option<Cow<'a, str>>,
    #[serde(rename = "tableName", borrow, default)]
    table_name: Option<Cow<'a, str>>,
    #[serde(rename = "userIdentity", borrow, default)]
    user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow, default)]
    dynamodb: Option<&'a RawValue>,
    #[serde(borrow, default)]
    kinesis: Option<KinesisShape<'a>>,
}

#[derive(Deserialize)]
struct KinesisShape<'a> {
    #[serde(rename = "sequenceNumber", borrow, default)]
    sequence_number: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StreamRecordShape<'a> {
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
/// fast path in [`scan`], or by serde_json).
struct Fields<'a> {
    event_id: Option<Cow<'a, str>>,
    event_name: Option<Cow<'a, str>>,
    event_source_arn: Option<Cow<'a, str>>,
    table_name: Option<Cow<'a, str>>,
    /// `userIdentity.principalId`.
    principal_id: Option<Cow<'a, str>>,
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
struct StreamFields<'a> {
    time: Option<&'a str>,
    precision: Option<Cow<'a, str>>,
    keys: Option<&'a str>,
    new_image: Option<&'a str>,
    old_image: Option<&'a str>,
    sequence_number: Option<Cow<'a, str>>,
    size_bytes: Option<&'a str>,
    stream_view_type: Option<Cow<'a, str>>,
    /// The images were already checked as DynamoDB JSON.
    images_checked: bool,
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

/// Identity fields read from a record, kept for the rejection report.
#[derive(Default)]
struct Identity {
    event_id: Option<String>,
    sequence_number: Option<String>,
}

/// Decodes one record of a document. Never fails: a bad record becomes
/// [`Decoded::Rejected`] with its raw text and the reason.
pub fn decode_record(raw: &RawValue, index: usize, opts: &DecodeOptions) -> Decoded {
    let buf = Arc::new(raw.get().to_string());
    decode_record_text(&buf, index, opts, &buf)
}

/// [`decode_record`] of a record's JSON text (part of `buf`), by serde_json only.
fn decode_record_text(raw: &str, index: usize, opts: &DecodeOptions, buf: &Arc<String>) -> Decoded {
    let mut ident = Identity::default();
    let result = decode_record_inner(raw, opts, &mut ident, buf);
    outcome(result, ident, raw, index)
}

/// A record the fast path read, decoded.
fn decode_scanned(
    raw: &str,
    scanned: scan::Scanned<'_>,
    index: usize,
    opts: &DecodeOptions,
    buf: &Arc<String>,
) -> Decoded {
    let mut ident = Identity::default();
    let result = match (scanned.kinesis, scanned.stream) {
        (Some(kinesis), _) => decode_kinesis(
            scanned.fields.event_id,
            kinesis.sequence_number.map(Cow::Borrowed),
            kinesis.data.map(Cow::Borrowed),
            true,
            opts,
            &mut ident,
        ),
        (None, stream) => {
            ident.event_id = scanned.fields.event_id.as_deref().map(str::to_string);
            match stream {
                Some(stream) => decode_stream(
                    &scanned.fields,
                    &stream,
                    (raw, buf, Some(scanned.compact)),
                    opts,
                    &mut ident,
                ),
                None => Err(RecordError::Missing("dynamodb")),
            }
        }
    };
    outcome(result, ident, raw, index)
}

/// The decoded record, or its rejection with what identity was read.
fn outcome(
    result: Result<ChangeRecord, RecordError>,
    ident: Identity,
    raw: &str,
    index: usize,
) -> Decoded {
    match result {
        Ok(change) => Decoded::Change(Box::new(ChangeRecord { index, ..change })),
        Err(error) => Decoded::Rejected(Box::new(Rejected {
            event_id: ident.event_id,
            sequence_number: ident.sequence_number,
            index,
            error,
            raw: minify_json(raw),
        })),
    }
}

fn decode_record_inner(
    raw: &str,
    opts: &DecodeOptions,
    ident: &mut Identity,
    buf: &Arc<String>,
) -> Result<ChangeRecord, RecordError> {
    let outer: RecordShape<'_> =
        serde_json::from_str(raw).map_err(|e| RecordError::Shape(json_error_message(&e)))?;
    match outer.kinesis {
        Some(kinesis) => decode_kinesis(
            outer.event_id,
            kinesis.sequence_number,
            kinesis.data,
            false,
            opts,
            ident,
        ),
        None => {
            ident.event_id = outer.event_id.as_deref().map(str::to_string);
            let ddb = outer.dynamodb.ok_or(RecordError::Missing("dynamodb"))?;
            let stream: StreamRecordShape<'_> =
                serde_json::from_str(ddb.get()).map_err(|e| RecordError::Invalid {
                    field: "dynamodb",
                    reason: json_error_message(&e),
                })?;
            let fields = Fields::from(&outer);
            decode_stream(&fields, &(&stream).into(), (raw, buf, None), opts, ident)
        }
    }
}

/// A DynamoDB Streams record from its parts and its text (see [`RawRecord`]).
fn decode_stream(
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

/// A Kinesis record from its `eventID` and `kinesis` part: the base64 data is decoded
/// and read as the DynamoDB change it carries (by the fast path first when `fast`).
fn decode_kinesis(
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

/// A change's JSON text, the buffer it is part of (its images too), and whether it is
/// known to hold no whitespace between tokens.
type RawRecord<'a> = (&'a str, &'a Arc<String>, Option<bool>);

/// The archive record from a change's parts and text.
fn build_change(
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

fn check_sequence_number(field: &'static str, s: &str) -> Result<(), RecordError> {
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

/// Removes the whitespace between JSON tokens, leaving every token byte-for-byte as it
/// was. The input must be valid JSON.
pub fn minify_json(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Outside strings: copy up to the next string, skipping whitespace.
        let b = bytes[i];
        i += 1;
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => {
                // Inside a string: copy whole runs up to the closing quote, stepping over
                // escapes (`\"` does not close it).
                let start = i - 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
                        Some(at) if bytes[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at + 1;
                            break;
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
                let end = i.min(bytes.len());
                out.extend_from_slice(&bytes[start..end]);
            }
            _ => out.push(b),
        }
    }
    // Only ASCII whitespace outside strings was removed, so the bytes stay UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths of [`decode_input`], as text to compare.
    fn both_paths(text: &str) -> (String, String) {
        let opts = DecodeOptions::default();
        let fast = format!("{:?}", decode_input(text.as_bytes(), "t", &opts));
        let unmarked = text.strip_prefix('\u{feff}').unwrap_or(text);
        let buf = Arc::new(unmarked.to_string());
        let general = format!("{:?}", decode_text_general(&buf, "t", &opts, &buf));
        (fast, general)
    }

    /// A small deterministic generator (xorshift) for the mutations below.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    /// `text` with one byte inserted, deleted or replaced, in ways that stress JSON
    /// tokens; `None` when the result is not UTF-8.
    fn mutate(text: &str, rng: &mut Rng) -> Option<String> {
        const BYTES: &[u8] = b"\"\\ \n{}[],:0-eEnu.x\x01/";
        let mut b = text.as_bytes().to_vec();
        if b.is_empty() {
            return None;
        }
        let at = rng.below(b.len());
        let byte = BYTES[rng.below(BYTES.len())];
        match rng.below(3) {
            0 => b.insert(at, byte),
            1 => {
                b.remove(at);
            }
            _ => b[at] = byte,
        }
        String::from_utf8(b).ok()
    }

    /// Every Kinesis record's data decoded, mutated and encoded again; `None` when the
    /// text holds no Kinesis record.
    fn mutate_kinesis_payloads(text: &str, rng: &mut Rng) -> Option<String> {
        use base64::engine::general_purpose::STANDARD;
        let mut doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let mut any = false;
        for r in doc.get_mut("Records")?.as_array_mut()? {
            let Some(data) = r.pointer_mut("/kinesis/data") else {
                continue;
            };
            let payload = String::from_utf8(STANDARD.decode(data.as_str()?).ok()?).ok()?;
            let mutated = mutate(&payload, rng).unwrap_or(payload);
            *data = serde_json::Value::String(STANDARD.encode(mutated));
            any = true;
        }
        any.then(|| doc.to_string())
    }

    /// `minify_json` of a text that may not be valid JSON (then returned as it is).
    fn minify_json_lossy(text: &str) -> String {
        match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => minify_json(text),
            Err(_) => text.to_string(),
        }
    }

    /// The event files in `dir` (`.json` and `.jsonl`) that are UTF-8, by path. Files
    /// that are not UTF-8 stop before either path is taken, so they have nothing to
    /// compare.
    fn event_texts(dir: &std::path::Path) -> std::io::Result<Vec<(std::path::PathBuf, String)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path
                .extension()
                .is_some_and(|e| e == "json" || e == "jsonl")
            {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push((path, text));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Compares both paths on `text`, on its minified form and on `rounds` mutations of
    /// it (and of its Kinesis payloads); returns how many inputs were compared and how
    /// many of them the fast path read to the end (the rest fell back to the general
    /// path).
    fn compare_mutations(
        path: &std::path::Path,
        text: &str,
        rounds: usize,
        rng: &mut Rng,
    ) -> (usize, usize) {
        let mut cases = vec![text.to_string(), minify_json_lossy(text)];
        for round in 0..rounds {
            // One to three mutations at once.
            let mut mutated = mutate(text, rng);
            for _ in 0..round % 3 {
                mutated = mutated.and_then(|m| mutate(&m, rng));
            }
            cases.extend(mutated);
            cases.extend(mutate_kinesis_payloads(text, rng));
        }
        let mut fast = 0;
        for case in &cases {
            let (fast_out, general_out) = both_paths(case);
            assert_eq!(fast_out, general_out, "{}: {case}", path.display());
            let unmarked = case.strip_prefix('\u{feff}').unwrap_or(case);
            fast += usize::from(scan::documents(unmarked, |_, _| ()).is_some());
        }
        (cases.len(), fast)
    }

    /// Says on the terminal (past the test harness's capture of `eprintln!`) that the
    /// public sample events were not there.
    fn note_public_fixtures_skipped(dir: &str) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "public fixtures skipped: {dir} is not there (the project's own fixtures ran)"
        );
    }

    /// The fast path and the general path agree on every event fixture and on thousands
    /// of mutations of them. The project's own fixtures (tests/fixtures/events and the
    /// bundled example) reach the threshold alone; the public sample events beside the
    /// repository add to it when present.
    #[test]
    fn fast_path_matches_the_general_path() {
        /// Mutation rounds per fixture file.
        const ROUNDS: usize = 500;
        /// Inputs the project's own fixtures must give, fixtures and mutations.
        const OWN_INPUTS: usize = 8_000;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let public = root.join("../shared/fixtures/public");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut own, mut own_fast) = (0, 0);
        for dir in ["tests/fixtures/events", "examples/events"] {
            let files = event_texts(&root.join(dir)).unwrap();
            assert!(!files.is_empty(), "no fixtures in {dir}");
            for (path, text) in files {
                let (inputs, fast) = compare_mutations(&path, &text, ROUNDS, &mut rng);
                own += inputs;
                own_fast += fast;
            }
        }
        let mut public_inputs = 0;
        match event_texts(&public) {
            Ok(files) => {
                for (path, text) in files {
                    public_inputs += compare_mutations(&path, &text, ROUNDS, &mut rng).0;
                }
            }
            Err(_) => note_public_fixtures_skipped(&public.display().to_string()),
        }
        eprintln!("inputs compared: {own} from the project's fixtures ({own_fast} read by the fast path), {public_inputs} from the public ones");
        assert!(own >= OWN_INPUTS, "only {own} inputs compared");
        // Both paths are exercised in earnest, not only the general one.
        assert!(
            own_fast >= own / 4 && own - own_fast >= own / 4,
            "{own_fast} of {own} inputs read by the fast path"
        );
    }

    /// The unchanged fixtures reach every branch of the fast path's split: whole
    /// documents read by it and left to the general path, records read by it (compact
    /// and spaced) and left to the general path, and Kinesis payloads both ways.
    #[test]
    fn own_fixtures_reach_both_paths() {
        use base64::engine::general_purpose::STANDARD;
        const BRANCHES: [&str; 8] = [
            "documents read by the fast path",
            "documents left to the general path",
            "records read by the fast path",
            "records left to the general path",
            "compact records",
            "spaced records",
            "Kinesis payloads read by the fast path",
            "Kinesis payloads left to the general path",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut tally = std::collections::BTreeMap::<&str, usize>::new();
        let mut count = |what| *tally.entry(what).or_default() += 1;
        for (_, text) in event_texts(&dir).unwrap() {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let records = scan::documents(text, |_, element| match element {
                scan::Element::Read(_, scanned) => {
                    let data = scanned.kinesis.and_then(|k| k.data).map(str::to_string);
                    Some((scanned.compact, data))
                }
                scan::Element::Other(_) => None,
            });
            let Some(records) = records else {
                count(BRANCHES[1]);
                continue;
            };
            count(BRANCHES[0]);
            for record in records {
                let Some((compact, data)) = record else {
                    count(BRANCHES[3]);
                    continue;
                };
                count(BRANCHES[2]);
                count(if compact { BRANCHES[4] } else { BRANCHES[5] });
                if let Some(payload) = data.and_then(|d| STANDARD.decode(d).ok()) {
                    let fast = std::str::from_utf8(&payload)
                        .ok()
                        .and_then(scan::whole_record);
                    count(if fast.is_some() {
                        BRANCHES[6]
                    } else {
                        BRANCHES[7]
                    });
                }
            }
        }
        for what in BRANCHES {
            assert!(
                tally.contains_key(what),
                "no {what} among the fixtures: {tally:?}"
            );
        }
    }

    #[test]
    fn fast_path_cases() {
        let cases = [
            r#"{"Records":[{"eventID":"1","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:r:1:table/t/stream/s","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"S":"a"}},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":null,"eventName":"INSERT","tableName":"t","dynamodb":{"ApproximateCreationDateTime":"1","Keys":{"k":{"N":"1E+125"}},"NewImage":null,"SequenceNumber":"1","SizeBytes":null}}]}"#,
            r#"{"Records":[{"eventID":"1","eventID":"2","eventName":"INSERT","tableName":"t","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":"1","eventName":"INSERT","tableName":"t","userIdentity":{"principalId":"dynamodb.amazonaws.com","type":"Service"},"dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"M":{"x":{"L":[{"NULL":true}]}}}},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":"1","eventName":"REMOVE","tableName":"t","userIdentity":null,"dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"S":"\u00e9\ud83d\ude00"}},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":"1","eventName":"MODIFY","tableName":"t","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"B":"AA=="}},"OldImage":{"a":{"BS":[]},"b":{"SS":["x"]}},"SequenceNumber":"1"}}], "window": {"start": "x"}}"#,
            r#"{"Records":[{"eventID":"1","eventName":"INSERT","tableName":"t","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"S":"a"}},"SequenceNumber":"1"},"kinesis":null}]}"#,
            "{\"Records\":[{\"eventID\":\"1\",\"eventName\":\"INSERT\",\"tableName\":\"t\",\"dynamodb\":{\"ApproximateCreationDateTime\":1,\"Keys\":{\"k\":{\"S\":\"a\"}},\"SequenceNumber\":\"1\"}}]}\n{\"Records\":[]}\n",
        ];
        for case in cases {
            let (fast, general) = both_paths(case);
            assert_eq!(fast, general, "{case}");
        }
    }

    fn one(doc: &str) -> Decoded {
        let mut v = decode_input(doc.as_bytes(), "t", &DecodeOptions::default()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn minify_keeps_tokens() {
        assert_eq!(
            minify_json("{ \"a b\" : [ 1E+125 , \"x \\\" y\" ] }"),
            "{\"a b\":[1E+125,\"x \\\" y\"]}"
        );
    }

    proptest::proptest! {
        #[test]
        fn minify_matches_compact_serialisation(
            keys in proptest::collection::vec("[ a\"\\\\\t\n\u{e9}\u{65e5}]{0,12}", 0..6),
            nums in proptest::collection::vec(-1_000_000i64..1_000_000, 0..6),
        ) {
            let mut map = serde_json::Map::new();
            for (i, k) in keys.iter().enumerate() {
                map.insert(k.clone(), serde_json::json!([k, {"n": nums.get(i)}, null, true]));
            }
            let value = serde_json::Value::Object(map);
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            proptest::prop_assert_eq!(minify_json(&pretty), serde_json::to_string(&value).unwrap());
        }
    }

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

    #[test]
    fn invalid_json_names_position() {
        let err = decode_input(b"{\"Records\": [", "f.json", &DecodeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.json: invalid JSON at line 1"), "{err}");
    }

    #[test]
    fn not_an_event() {
        let err = decode_input(b"{\"x\":1}", "f.json", &DecodeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Records"), "{err}");
    }
}
