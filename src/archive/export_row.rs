//! Export rows: changes that did not come from a stream (a baseline from a full export
//! or a Scan, a gap repair from an incremental export). They carry the sequence number
//! `"0"` ([`crate::model::coverage::is_non_stream`]) and, as their `record`, the export's line verbatim: `{"Item":{...}}` (full
//! export, Scan) or `{"Metadata":{...},"Keys":{...},"NewImage":{...},"OldImage":{...}}`
//! (incremental export). [`ExportLine`] reads such a line; [`synthetic_stream_record`]
//! turns an export row into a DynamoDB Streams record for the readers that need one
//! (replay with `--include-baseline`, restore's state).

use serde::Deserialize;
use serde_json::value::RawValue;

/// One export line, its JSON values minified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLine {
    /// `{"Item":{...}}`: a full export's or a Scan's item.
    Item {
        /// The item, DynamoDB JSON.
        item: String,
    },
    /// An incremental export's line.
    Incremental {
        /// `Keys`.
        keys: String,
        /// `NewImage`, absent for a delete.
        new_image: Option<String>,
        /// `OldImage`, absent in a NEW_IMAGE export and for a new item.
        old_image: Option<String>,
        /// `Metadata.WriteTimeMicros`, microseconds since the Unix epoch.
        write_time_micros: i64,
    },
}

#[derive(Deserialize)]
struct LineShape<'a> {
    #[serde(rename = "Item", borrow, default)]
    item: Option<&'a RawValue>,
    #[serde(rename = "Metadata", borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(rename = "Keys", borrow, default)]
    keys: Option<&'a RawValue>,
    #[serde(rename = "NewImage", borrow, default)]
    new_image: Option<&'a RawValue>,
    #[serde(rename = "OldImage", borrow, default)]
    old_image: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MetadataShape<'a> {
    #[serde(rename = "WriteTimeMicros", borrow)]
    write_time_micros: &'a RawValue,
}

/// An incremental export line's `Metadata.WriteTimeMicros`, microseconds since the Unix
/// epoch, as a JSON number, a string of digits, or `{"N":"..."}`: the one reading of it
/// for the baseline command and for the rows it archived.
pub fn write_time_micros(raw: &RawValue) -> Result<i64, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Micros {
        Number(i64),
        Text(String),
        N {
            #[serde(rename = "N")]
            n: String,
        },
    }
    let v: Micros =
        serde_json::from_str(raw.get()).map_err(|_| format!("{} is not a time", raw.get()))?;
    match v {
        Micros::Number(n) => Ok(n),
        Micros::Text(s) | Micros::N { n: s } => s
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not a whole number of microseconds")),
    }
}

/// A member's value as minified text, unless absent or `null`.
fn value(raw: Option<&RawValue>) -> Option<String> {
    raw.map(|r| crate::decode::minify_json(r.get()))
        .filter(|t| t != "null")
}

/// A member that must be a JSON object.
fn object(raw: Option<&RawValue>, name: &str) -> Result<Option<String>, String> {
    match value(raw) {
        Some(t) if !t.starts_with('{') => Err(format!("`{name}` is not a JSON object")),
        other => Ok(other),
    }
}

impl ExportLine {
    /// Reads an export line (an archived export row's `record`).
    pub fn parse(text: &str) -> Result<ExportLine, String> {
        if !text.trim_start().starts_with('{') {
            return Err("`record` is not an export line: not a JSON object".into());
        }
        let shape: LineShape<'_> = serde_json::from_str(text)
            .map_err(|e| format!("`record` is not an export line: {e}"))?;
        if let Some(item) = object(shape.item, "Item")? {
            if shape.keys.is_some() || shape.new_image.is_some() || shape.old_image.is_some() {
                return Err("`record` holds both `Item` and incremental members".into());
            }
            return Ok(ExportLine::Item { item });
        }
        let keys = object(shape.keys, "Keys")?
            .ok_or("`record` is an export line with neither `Item` nor `Keys`")?;
        let metadata = shape
            .metadata
            .ok_or("`record` is an incremental export line without `Metadata`")?;
        let metadata: MetadataShape<'_> = serde_json::from_str(metadata.get())
            .map_err(|e| format!("`Metadata` has no `WriteTimeMicros`: {e}"))?;
        let write_time_micros = write_time_micros(metadata.write_time_micros)
            .map_err(|e| format!("`Metadata.WriteTimeMicros`: {e}"))?;
        Ok(ExportLine::Incremental {
            keys,
            new_image: object(shape.new_image, "NewImage")?,
            old_image: object(shape.old_image, "OldImage")?,
            write_time_micros,
        })
    }

    /// The item's new image (a full export's item, an incremental line's `NewImage`).
    pub fn new_image(&self) -> Option<&str> {
        match self {
            ExportLine::Item { item } => Some(item),
            ExportLine::Incremental { new_image, .. } => new_image.as_deref(),
        }
    }

    /// The item's old image (an incremental line's `OldImage`).
    pub fn old_image(&self) -> Option<&str> {
        match self {
            ExportLine::Item { .. } => None,
            ExportLine::Incremental { old_image, .. } => old_image.as_deref(),
        }
    }
}

/// What an export row holds that its synthetic stream record needs.
#[derive(Debug, Clone, Copy)]
pub struct ExportRow<'a> {
    /// `event_id`.
    pub event_id: &'a str,
    /// `event_name`: INSERT, MODIFY or REMOVE.
    pub event_name: &'a str,
    /// The table.
    pub table: &'a str,
    /// `approximate_creation_time`, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// `stream_view_type`.
    pub stream_view_type: Option<&'a str>,
    /// `keys`, DynamoDB JSON.
    pub keys: &'a str,
    /// `record`: the export line.
    pub record: &'a str,
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A DynamoDB Streams record made from an export row: `eventSource` `aws:dynamodb`,
/// the row's `eventID` and `eventName`, `tableName` (there is no stream ARN), and a
/// `dynamodb` part with the row's time (seconds, millisecond fraction), its keys, the
/// export line's images, `SequenceNumber` `"0"` and the row's `StreamViewType`. It is
/// synthetic: no stream ever delivered it.
pub fn synthetic_stream_record(row: &ExportRow<'_>) -> Result<String, String> {
    let line = ExportLine::parse(row.record)?;
    let mut dynamodb = format!(
        "{{\"ApproximateCreationDateTime\":{}.{:03},\"Keys\":{}",
        row.time_ms.div_euclid(1000),
        row.time_ms.rem_euclid(1000),
        crate::decode::minify_json(row.keys)
    );
    if let Some(image) = line.new_image() {
        dynamodb.push_str(",\"NewImage\":");
        dynamodb.push_str(image);
    }
    if let Some(image) = line.old_image() {
        dynamodb.push_str(",\"OldImage\":");
        dynamodb.push_str(image);
    }
    dynamodb.push_str(",\"SequenceNumber\":\"0\"");
    if let Some(view) = row.stream_view_type {
        dynamodb.push_str(",\"StreamViewType\":");
        dynamodb.push_str(&json_string(view));
    }
    dynamodb.push('}');
    Ok(format!(
        "{{\"eventID\":{},\"eventName\":{},\"eventVersion\":\"1.1\",\"eventSource\":\"aws:dynamodb\",\"tableName\":{},\"dynamodb\":{dynamodb}}}",
        json_string(row.event_id),
        json_string(row.event_name),
        json_string(row.table),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_export_lines_read() {
        let line =
            ExportLine::parse(r#"{ "Item" : {"pk":{"S":"a"},"n":{"N":"1E+125"}} }"#).unwrap();
        assert_eq!(
            line,
            ExportLine::Item {
                item: r#"{"pk":{"S":"a"},"n":{"N":"1E+125"}}"#.into()
            }
        );
        assert_eq!(line.old_image(), None);
    }

    #[test]
    fn incremental_lines_read() {
        let line = ExportLine::parse(
            r#"{"Metadata":{"WriteTimeMicros":{"N":"1767225600123456"}},"Keys":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"},"v":{"N":"1"}},"NewImage":{"pk":{"S":"a"},"v":{"N":"2"}}}"#,
        )
        .unwrap();
        let ExportLine::Incremental {
            write_time_micros, ..
        } = &line
        else {
            panic!("not incremental: {line:?}");
        };
        assert_eq!(*write_time_micros, 1_767_225_600_123_456);
        assert_eq!(line.new_image(), Some(r#"{"pk":{"S":"a"},"v":{"N":"2"}}"#));
        assert_eq!(line.old_image(), Some(r#"{"pk":{"S":"a"},"v":{"N":"1"}}"#));
        let removed = ExportLine::parse(
            r#"{"Metadata":{"WriteTimeMicros":{"N":"5"}},"Keys":{"pk":{"S":"a"}}}"#,
        )
        .unwrap();
        assert_eq!(removed.new_image(), None);
        for micros in ["5", r#""5""#] {
            let line = ExportLine::parse(&format!(
                r#"{{"Metadata":{{"WriteTimeMicros":{micros}}},"Keys":{{"pk":{{"S":"a"}}}}}}"#
            ))
            .unwrap();
            assert!(matches!(
                line,
                ExportLine::Incremental {
                    write_time_micros: 5,
                    ..
                }
            ));
        }
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, why) in [
            ("[]", "not an export line"),
            (r#"{"x":1}"#, "neither"),
            (r#"{"Item":[1]}"#, "not a JSON object"),
            (r#"{"Keys":{"pk":{"S":"a"}}}"#, "without `Metadata`"),
            (
                r#"{"Metadata":{"WriteTimeMicros":{"N":"1.5"}},"Keys":{}}"#,
                "not a whole number",
            ),
            (r#"{"Item":{},"Keys":{}}"#, "both"),
        ] {
            let e = ExportLine::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn synthetic_records_decode_as_the_row() {
        use crate::decode::{decode_input, DecodeOptions, Decoded};
        let row = ExportRow {
            event_id: "export-0123456789abcdef0123456789abcdef",
            event_name: "MODIFY",
            table: "invoices",
            time_ms: 1_767_225_600_123,
            stream_view_type: Some("NEW_AND_OLD_IMAGES"),
            keys: r#"{"pk":{"S":"a"}}"#,
            record: r#"{"Metadata":{"WriteTimeMicros":{"N":"1767225600123456"}},"Keys":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"},"v":{"N":"1"}},"NewImage":{"pk":{"S":"a"},"v":{"N":"2"}}}"#,
        };
        let record = synthetic_stream_record(&row).unwrap();
        let event = format!("{{\"Records\":[{record}]}}");
        let decoded = decode_input(event.as_bytes(), "test", &DecodeOptions::default()).unwrap();
        let Decoded::Change(c) = &decoded[0] else {
            panic!("{decoded:?}");
        };
        assert_eq!(c.event_id, row.event_id);
        assert_eq!(c.event_name.as_str(), "MODIFY");
        assert_eq!(c.table_name, "invoices");
        assert_eq!(c.sequence_number, "0");
        assert_eq!(c.approximate_creation_time_ms, row.time_ms);
        assert_eq!(c.keys.as_str(), row.keys);
        assert_eq!(
            c.new_image.as_deref(),
            Some(r#"{"pk":{"S":"a"},"v":{"N":"2"}}"#)
        );
        assert_eq!(
            c.old_image.as_deref(),
            Some(r#"{"pk":{"S":"a"},"v":{"N":"1"}}"#)
        );
        assert_eq!(c.stream_view_type.as_deref(), Some("NEW_AND_OLD_IMAGES"));
        assert!(crate::model::coverage::is_non_stream(&c.sequence_number));
    }
}
