//! Decode: turn `{"Records": [...]}` documents (Lambda DynamoDB Streams events, DynamoDB
//! Streams `GetRecords` responses, Lambda Kinesis events carrying DynamoDB changes, and
//! tumbling-window events) into [`ChangeRecord`]s, keeping every image byte-exact.
//!
//! Nothing here parses a DynamoDB number or binary value: images are validated for shape
//! (see [`dynamo_json`]) and kept as the JSON text that arrived, with insignificant
//! whitespace removed (see [`minify_json`]).

pub mod dynamo_json;
mod time;

use std::borrow::Cow;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

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

/// The kind of change a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventName {
    /// A new item was written.
    Insert,
    /// An existing item was changed.
    Modify,
    /// An item was deleted.
    Remove,
}

impl EventName {
    /// The name as DynamoDB spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Insert => "INSERT",
            EventName::Modify => "MODIFY",
            EventName::Remove => "REMOVE",
        }
    }

    /// Parses `INSERT`, `MODIFY` or `REMOVE`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INSERT" => Some(EventName::Insert),
            "MODIFY" => Some(EventName::Modify),
            "REMOVE" => Some(EventName::Remove),
            _ => None,
        }
    }
}

/// Where a record came from, as the stream names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A DynamoDB Streams record (Lambda event or `GetRecords`).
    DynamoDbStream,
    /// A Kinesis Data Streams record whose data is a DynamoDB change.
    Kinesis,
}

/// One decoded change, ready to be routed and archived. The JSON fields hold the
/// received JSON text with insignificant whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// `eventID` of the change.
    pub event_id: String,
    /// INSERT, MODIFY or REMOVE.
    pub event_name: EventName,
    /// Source table name.
    pub table_name: String,
    /// Stream sequence number (Kinesis: `kinesis.sequenceNumber`), decimal digits.
    pub sequence_number: String,
    /// The change's own time, milliseconds since the Unix epoch (UTC).
    pub approximate_creation_time_ms: i64,
    /// `StreamViewType`, when present.
    pub stream_view_type: Option<String>,
    /// `SizeBytes`, when present.
    pub size_bytes: Option<i64>,
    /// A REMOVE made by the TTL service.
    pub ttl_delete: bool,
    /// DynamoDB JSON of `Keys`.
    pub keys: String,
    /// DynamoDB JSON of `NewImage`.
    pub new_image: Option<String>,
    /// DynamoDB JSON of `OldImage`.
    pub old_image: Option<String>,
    /// The change record as received (Kinesis: the decoded DynamoDB change payload).
    pub record: String,
    /// Whether the record arrived through DynamoDB Streams or Kinesis.
    pub source: SourceKind,
    /// 0-based position of the record in its document's `Records` array (stream order
    /// within a Lambda batch).
    pub index: usize,
}

impl ChangeRecord {
    /// Approximate in-memory size, used by the buffer's byte thresholds.
    pub fn approx_bytes(&self) -> usize {
        self.event_id.len()
            + self.table_name.len()
            + self.sequence_number.len()
            + self.keys.len()
            + self.new_image.as_ref().map_or(0, String::len)
            + self.old_image.as_ref().map_or(0, String::len)
            + self.record.len()
            + self.stream_view_type.as_ref().map_or(0, String::len)
            + 64
    }
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
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| DocumentError::Utf8 {
        source_name: source_name.to_string(),
        offset: e.valid_up_to(),
    })?;
    if let Some(out) = decode_events_one_pass(text, opts) {
        return Ok(out);
    }
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
                .map(|(i, raw)| decode_record(raw, i, opts)),
        );
    }
    Ok(out)
}

/// The usual input, every document an object with a `Records` array, read in one pass:
/// the same outcome as [`decode_input`]'s general path, which runs instead whenever this
/// returns `None` (invalid JSON, a bare record, anything unexpected), so that errors are
/// found and named exactly as there.
fn decode_events_one_pass(text: &str, opts: &DecodeOptions) -> Option<Vec<Decoded>> {
    let mut out = Vec::new();
    let mut documents = 0;
    for doc in serde_json::Deserializer::from_str(text).into_iter::<DocumentShape<'_>>() {
        let records = doc.ok()?.records?;
        documents += 1;
        out.extend(
            records
                .into_iter()
                .enumerate()
                .map(|(i, raw)| decode_record(raw, i, opts)),
        );
    }
    (documents > 0).then_some(out)
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

/// A change record's fields; `D` is how its `dynamodb` part is read (kept raw, or
/// read in the same pass as [`StreamRecordShape`]).
#[derive(Deserialize)]
#[serde(bound(deserialize = "D: Deserialize<'de>"))]
struct RecordShape<'a, D = &'a RawValue> {
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
    #[serde(default)]
    dynamodb: Option<D>,
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

/// Identity fields read from a record, kept for the rejection report.
#[derive(Default)]
struct Identity {
    event_id: Option<String>,
    sequence_number: Option<String>,
}

/// Decodes one record of a document. Never fails: a bad record becomes
/// [`Decoded::Rejected`] with its raw text and the reason.
pub fn decode_record(raw: &RawValue, index: usize, opts: &DecodeOptions) -> Decoded {
    let mut ident = Identity::default();
    match decode_record_inner(raw, opts, &mut ident) {
        Ok(change) => Decoded::Change(Box::new(ChangeRecord { index, ..change })),
        Err(error) => Decoded::Rejected(Box::new(Rejected {
            event_id: ident.event_id,
            sequence_number: ident.sequence_number,
            index,
            error,
            raw: minify_json(raw.get()),
        })),
    }
}

fn decode_record_inner(
    raw: &RawValue,
    opts: &DecodeOptions,
    ident: &mut Identity,
) -> Result<ChangeRecord, RecordError> {
    if let Some(change) = decode_stream_one_pass(raw, opts, ident) {
        return change;
    }
    let outer: RecordShape<'_> =
        serde_json::from_str(raw.get()).map_err(|e| RecordError::Shape(json_error_message(&e)))?;
    match outer.kinesis {
        Some(kinesis) => decode_kinesis(outer.event_id, kinesis, opts, ident),
        None => {
            ident.event_id = outer.event_id.as_deref().map(str::to_string);
            let ddb = outer.dynamodb.ok_or(RecordError::Missing("dynamodb"))?;
            let stream: StreamRecordShape<'_> =
                serde_json::from_str(ddb.get()).map_err(|e| RecordError::Invalid {
                    field: "dynamodb",
                    reason: json_error_message(&e),
                })?;
            decode_stream(&outer, &stream, raw, opts, ident)
        }
    }
}

/// The usual DynamoDB Streams record, read in one pass. `None` when it is anything else
/// (a Kinesis record, no `dynamodb` part, a field of the wrong type): the general path
/// then reads it and names what is wrong.
fn decode_stream_one_pass(
    raw: &RawValue,
    opts: &DecodeOptions,
    ident: &mut Identity,
) -> Option<Result<ChangeRecord, RecordError>> {
    let outer: RecordShape<'_, StreamRecordShape<'_>> = serde_json::from_str(raw.get()).ok()?;
    if outer.kinesis.is_some() {
        return None;
    }
    let stream = outer.dynamodb.as_ref()?;
    ident.event_id = outer.event_id.as_deref().map(str::to_string);
    Some(decode_stream(&outer, stream, raw, opts, ident))
}

/// A DynamoDB Streams record from its parts.
fn decode_stream<D>(
    outer: &RecordShape<'_, D>,
    stream: &StreamRecordShape<'_>,
    raw: &RawValue,
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
        .approximate_creation_date_time
        .ok_or(RecordError::Missing("dynamodb.ApproximateCreationDateTime"))?;
    let time_ms = parse_epoch(time.get(), TimeUnit::SecondsOrMillis).map_err(|reason| {
        RecordError::Invalid {
            field: "dynamodb.ApproximateCreationDateTime",
            reason,
        }
    })?;
    build_change(
        outer,
        stream,
        table,
        sequence_number.to_string(),
        time_ms,
        raw.get(),
        SourceKind::DynamoDbStream,
    )
}

fn decode_kinesis(
    outer_event_id: Option<Cow<'_, str>>,
    kinesis: KinesisShape<'_>,
    opts: &DecodeOptions,
    ident: &mut Identity,
) -> Result<ChangeRecord, RecordError> {
    ident.event_id = outer_event_id.as_deref().map(str::to_string);
    ident.sequence_number = kinesis.sequence_number.as_deref().map(str::to_string);
    let sequence_number = kinesis
        .sequence_number
        .as_deref()
        .ok_or(RecordError::Missing("kinesis.sequenceNumber"))?;
    check_sequence_number("kinesis.sequenceNumber", sequence_number)?;
    let data = kinesis
        .data
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
    let payload_raw: &RawValue =
        serde_json::from_str(&payload).map_err(|e| RecordError::Invalid {
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
        .approximate_creation_date_time
        .ok_or(RecordError::Missing("dynamodb.ApproximateCreationDateTime"))?;
    let time_ms = parse_epoch(time.get(), unit).map_err(|reason| RecordError::Invalid {
        field: "dynamodb.ApproximateCreationDateTime",
        reason,
    })?;
    build_change(
        &inner,
        &stream,
        table,
        sequence_number.to_string(),
        time_ms,
        payload_raw.get(),
        SourceKind::Kinesis,
    )
}

fn build_change<D>(
    outer: &RecordShape<'_, D>,
    stream: &StreamRecordShape<'_>,
    table: &str,
    sequence_number: String,
    approximate_creation_time_ms: i64,
    raw_record: &str,
    source: SourceKind,
) -> Result<ChangeRecord, RecordError> {
    let record = minify_json(raw_record);
    // No whitespace between tokens in the whole record: its images need no minifying.
    let compact = record.len() == raw_record.len();
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
    crate::route::validate_table_name(table).map_err(RecordError::NoTable)?;
    let keys = stream.keys.ok_or(RecordError::Missing("dynamodb.Keys"))?;
    let keys = image_text("dynamodb.Keys", keys, compact)?;
    let new_image = stream
        .new_image
        .map(|v| image_text("dynamodb.NewImage", v, compact))
        .transpose()?;
    let old_image = stream
        .old_image
        .map(|v| image_text("dynamodb.OldImage", v, compact))
        .transpose()?;
    let size_bytes = stream
        .size_bytes
        .map(|v| {
            v.get()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| RecordError::Invalid {
                    field: "dynamodb.SizeBytes",
                    reason: format!("{} is not a non-negative integer", v.get()),
                })
        })
        .transpose()?;
    let ttl_delete = event_name == EventName::Remove
        && outer
            .user_identity
            .as_ref()
            .and_then(|u| u.principal_id.as_deref())
            == Some("dynamodb.amazonaws.com");
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

/// The image's text, validated; `compact` says it has no whitespace between tokens.
fn image_text(field: &'static str, raw: &RawValue, compact: bool) -> Result<String, RecordError> {
    dynamo_json::validate_item(raw.get())
        .map_err(|reason| RecordError::Invalid { field, reason })?;
    Ok(if compact {
        raw.get().to_string()
    } else {
        minify_json(raw.get())
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
