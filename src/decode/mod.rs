//! Decode: turn `{"Records": [...]}` documents (Lambda DynamoDB Streams events, DynamoDB
//! Streams `GetRecords` responses, Lambda Kinesis events carrying DynamoDB changes, and
//! tumbling-window events) into [`ChangeRecord`]s, keeping every image byte-exact.
//!
//! Nothing here parses a DynamoDB number or binary value: images are validated for shape
//! (see [`dynamo_json`]) and kept as the JSON text that arrived, with insignificant
//! whitespace removed (see [`minify_json`]).
//!
//! This module is the entry ([`decode_input`], [`decode_record`]) and the outcome types;
//! the work is split by input shape:
//! - `document`: the records of a whole document (`{"Records": [...]}` events,
//!   `GetRecords` responses, tumbling windows, a bare record), and [`DocumentError`];
//! - `stream`: DynamoDB Streams records, and the archive record built from a change;
//! - `kinesis`: Kinesis records, whose base64 data carries a DynamoDB change;
//! - `scan`: the fast path, a hand-written scanner for the common compact shapes.

mod document;
pub mod dynamo_json;
mod kinesis;
mod scan;
mod stream;
mod time;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::model::ChangeRecord;
use document::decode_text_general;
use kinesis::decode_kinesis;
use stream::{decode_stream, Fields, RecordShape, StreamRecordShape};

pub use document::DocumentError;
pub use scan::{full_export_item, FullExportItem};
pub use stream::table_from_arn;
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
/// (see [`JsonText`](crate::model::JsonText)), so no image is copied.
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

/// The message of a serde_json error without its position suffix.
pub(crate) fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(pos) => full[..pos].to_string(),
        None => full,
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

    /// The one outcome of a document holding one record.
    pub(super) fn one(doc: &str) -> Decoded {
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
}
