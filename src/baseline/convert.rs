//! Convert: one line of an export's data file to the change it stands for (see
//! [`crate::model::coverage`] for the representation): a full export's
//! `{"Item":{...}}` becomes a baseline INSERT at the export time; an incremental
//! export's `{"Metadata":{"WriteTimeMicros":...},"Keys":{...},"NewImage":{...},
//! "OldImage":{...}}` becomes an INSERT, MODIFY or REMOVE at its write time. The line is
//! kept as the record, its images as ranges of it: every value stays byte-exact.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::export::{ExportSummary, ExportType};
use crate::archive::export_row::write_time_micros;
use crate::decode::dynamo_json::validate_item;
use crate::decode::{full_export_item, minify_json};
use crate::model::coverage::{baseline_event_id, export_event_id, NON_STREAM_SEQUENCE_NUMBER};
use crate::model::item::canonical_key;
use crate::model::{ChangeRecord, EventName, JsonText, SourceKind};

/// The table's key attributes: the partition key and the sort key, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    /// The partition (hash) key attribute's name.
    pub hash: String,
    /// The sort (range) key attribute's name.
    pub range: Option<String>,
}

impl KeySchema {
    /// Parses `pk` or `pk,sk`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        match parts.as_slice() {
            [h] if !h.is_empty() => Ok(KeySchema {
                hash: h.to_string(),
                range: None,
            }),
            [h, r] if !h.is_empty() && !r.is_empty() && h != r => Ok(KeySchema {
                hash: h.to_string(),
                range: Some(r.to_string()),
            }),
            _ => Err(format!(
                "{s:?} is not PARTITION_KEY or PARTITION_KEY,SORT_KEY (attribute names)"
            )),
        }
    }

    /// The key attribute names, partition key first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.hash.as_str()).chain(self.range.as_deref())
    }

    /// The item's key attributes as DynamoDB JSON (`{"pk":{...},"sk":{...}}`, in schema
    /// order), values as their text in the item.
    pub fn keys_of(&self, item: &str) -> Result<String, String> {
        let members: BTreeMap<Cow<'_, str>, &RawValue> =
            serde_json::from_str(item).map_err(|e| e.to_string())?;
        self.keys_in(&members)
    }

    /// [`KeySchema::keys_of`] of an item already split into its members.
    fn keys_in(&self, members: &BTreeMap<Cow<'_, str>, &RawValue>) -> Result<String, String> {
        let mut values = Vec::with_capacity(2);
        for name in self.names() {
            let v = members
                .get(name)
                .ok_or_else(|| format!("the item has no key attribute {name:?}"))?;
            values.push(v.get());
        }
        Ok(self.keys_text(values))
    }

    /// `{"pk":<value>,"sk":<value>}`: the key attributes' names (as JSON strings) with
    /// their values' texts, `values` in schema order.
    fn keys_text<'v>(&self, values: impl IntoIterator<Item = &'v str>) -> String {
        let mut out = String::with_capacity(64);
        out.push('{');
        for (i, (name, v)) in self.names().zip(values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::String(name.to_string()).to_string());
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
        out
    }
}

#[derive(Deserialize)]
struct IncrementalLine<'a> {
    #[serde(rename = "Metadata", borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(rename = "Keys", borrow)]
    keys: Option<&'a RawValue>,
    #[serde(rename = "NewImage", borrow, default)]
    new_image: Option<&'a RawValue>,
    #[serde(rename = "OldImage", borrow, default)]
    old_image: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(rename = "WriteTimeMicros", borrow)]
    write_time_micros: Option<&'a RawValue>,
}

/// What a line converts with: the export and, for a full export, the key schema.
pub struct Converter<'a> {
    /// The export's summary.
    pub summary: &'a ExportSummary,
    /// The table's key schema (full exports).
    pub keys: Option<&'a KeySchema>,
}

impl Converter<'_> {
    /// The baseline change of a full export line: `buf` is the (minified) line, `item`
    /// its item, `keys` the item's key attributes as DynamoDB JSON.
    fn full_change(
        &self,
        buf: &Arc<String>,
        item: &str,
        keys: String,
        index: usize,
    ) -> Result<ChangeRecord, String> {
        let s = self.summary;
        let canonical = canonical_key(&keys)?;
        Ok(ChangeRecord {
            event_id: baseline_event_id(&s.export_arn, &canonical),
            event_name: EventName::Insert,
            table_name: s.table.clone(),
            sequence_number: NON_STREAM_SEQUENCE_NUMBER.to_string(),
            approximate_creation_time_ms: s.export_time_ms,
            stream_view_type: Some("NEW_IMAGE".to_string()),
            size_bytes: None,
            ttl_delete: false,
            keys: JsonText::from(keys),
            new_image: Some(JsonText::within(buf, item)),
            old_image: None,
            record: JsonText::within(buf, buf.as_str()),
            source: SourceKind::Export,
            index,
        })
    }
}

/// Years 1970-9999 in microseconds: a write time outside has no partition.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl Converter<'_> {
    /// Converts one line (its text without the newline); `index` is its 0-based line
    /// number in its file. The error says what is wrong with the line.
    pub fn convert(&self, line: String, index: usize) -> Result<ChangeRecord, String> {
        let line = Arc::new(line);
        if let (ExportType::Full, Some(schema)) = (self.summary.export_type, self.keys) {
            // The usual line (compact, plain key names) in one pass; anything else
            // takes the general path below, which decides and names what is wrong.
            if let Some(f) = full_export_item(&line, &schema.hash, schema.range.as_deref()) {
                let keys = schema.keys_text(std::iter::once(f.hash).chain(f.range));
                return self.full_change(&line, f.item, keys, index);
            }
        }
        let minified = minify_json(&line);
        let buf = if minified.len() == line.len() {
            line
        } else {
            Arc::new(minified)
        };
        let text = buf.as_str();
        let s = self.summary;
        match s.export_type {
            ExportType::Full => {
                // Minified, a full export line is exactly `{"Item":<item>}`.
                let item = text
                    .strip_prefix("{\"Item\":")
                    .and_then(|t| t.strip_suffix('}'))
                    .ok_or("not a full export line {\"Item\":{...}}")?;
                let members: BTreeMap<Cow<'_, str>, &RawValue> = serde_json::from_str(item)
                    .map_err(|e| format!("not a full export line {{\"Item\":{{...}}}}: {e}"))?;
                validate_item(item).map_err(|e| format!("Item: {e}"))?;
                let schema = self
                    .keys
                    .ok_or("a full export needs the table's key schema")?;
                let keys = schema.keys_in(&members)?;
                self.full_change(&buf, item, keys, index)
            }
            ExportType::Incremental => {
                let l: IncrementalLine<'_> =
                    serde_json::from_str(text).map_err(|e| e.to_string())?;
                let meta: Metadata<'_> =
                    serde_json::from_str(l.metadata.ok_or("no Metadata")?.get())
                        .map_err(|e| format!("Metadata: {e}"))?;
                let micros = write_time_micros(
                    meta.write_time_micros
                        .ok_or("no Metadata.WriteTimeMicros")?,
                )
                .map_err(|e| format!("Metadata.WriteTimeMicros: {e}"))?;
                if !(0..=MAX_MICROS).contains(&micros) {
                    return Err(format!(
                        "Metadata.WriteTimeMicros {micros} is outside years 1970-9999"
                    ));
                }
                let keys = l.keys.ok_or("no Keys")?.get();
                validate_item(keys).map_err(|e| format!("Keys: {e}"))?;
                for (name, image) in [("NewImage", l.new_image), ("OldImage", l.old_image)] {
                    if let Some(image) = image {
                        validate_item(image.get()).map_err(|e| format!("{name}: {e}"))?;
                    }
                }
                let canonical = canonical_key(keys)?;
                let view = s.view_type.as_deref().unwrap_or("NEW_AND_OLD_IMAGES");
                let event_name = match (l.new_image, l.old_image) {
                    (None, _) => EventName::Remove,
                    (Some(_), _) if view == "NEW_IMAGE" => EventName::Modify,
                    (Some(_), None) => EventName::Insert,
                    (Some(_), Some(_)) => EventName::Modify,
                };
                Ok(ChangeRecord {
                    event_id: export_event_id(&s.export_arn, &canonical, micros),
                    event_name,
                    table_name: s.table.clone(),
                    sequence_number: NON_STREAM_SEQUENCE_NUMBER.to_string(),
                    approximate_creation_time_ms: micros.div_euclid(1000),
                    stream_view_type: Some(view.to_string()),
                    size_bytes: None,
                    ttl_delete: false,
                    keys: JsonText::within(&buf, keys),
                    new_image: l.new_image.map(|v| JsonText::within(&buf, v.get())),
                    old_image: l.old_image.map(|v| JsonText::within(&buf, v.get())),
                    record: JsonText::within(&buf, text),
                    source: SourceKind::Export,
                    index,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(t: ExportType, view: Option<&str>) -> ExportSummary {
        ExportSummary {
            export_arn: "arn:aws:dynamodb:us-east-1:1:table/t1/export/e1".into(),
            export_id: "e1".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:1:table/t1".into(),
            table: "t1".into(),
            export_time_ms: 1_700_000_000_123,
            item_count: 1,
            export_type: t,
            window: None,
            view_type: view.map(str::to_string),
        }
    }

    #[test]
    fn a_full_export_line_keeps_its_bytes() {
        let s = summary(ExportType::Full, None);
        let schema = KeySchema::parse("pk,sk").unwrap();
        let c = Converter {
            summary: &s,
            keys: Some(&schema),
        };
        let n38 = "12345678901234567890123456789012345678";
        let line = format!(
            r#"{{"Item": {{"sk":{{"N":"{n38}"}},"b":{{"B":"AAEC/w=="}},"pk":{{"S":"ünï \"😀\""}}}}}}"#
        );
        let ch = c.convert(line.clone(), 3).unwrap();
        assert_eq!(ch.record.as_str(), minify_json(&line));
        assert_eq!(
            ch.keys.as_str(),
            format!(r#"{{"pk":{{"S":"ünï \"😀\""}},"sk":{{"N":"{n38}"}}}}"#)
        );
        assert!(ch.new_image.as_deref().unwrap().contains(n38));
        assert!(ch.event_id.starts_with("baseline-"));
        assert_eq!(ch.sequence_number, "0");
        assert_eq!(ch.approximate_creation_time_ms, 1_700_000_000_123);
        assert_eq!(ch.index, 3);
        let again = c.convert(line, 9).unwrap();
        assert_eq!(again.event_id, ch.event_id);
        let missing = c.convert(r#"{"Item":{"pk":{"S":"a"}}}"#.into(), 0);
        assert!(missing.unwrap_err().contains("sk"));
        assert!(c.convert(r#"{"Item":{"pk":{"X":"a"}}}"#.into(), 0).is_err());
        assert!(c.convert("not json".into(), 0).is_err());
        for bad in [
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}},"Other":1}"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}},"Item":{"pk":{"S":"b"},"sk":{"N":"1"}}}"#,
            r#"{"Item":[1]}"#,
            r#"{"Items":{"pk":{"S":"a"},"sk":{"N":"1"}}}"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}}"#,
        ] {
            assert!(c.convert(bad.into(), 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn compact_lines_convert_as_their_spaced_forms_do() {
        let s = summary(ExportType::Full, None);
        for (schema, line) in [
            (
                "pk,sk",
                r#"{"Item":{"sk":{"N":"-1.5E+3"},"pk":{"S":"a \"ü\" 😀"},"m":{"M":{"pk":{"L":[{"NULL":true}]}}}}}"#,
            ),
            (
                "pk",
                r#"{"Item":{"pk":{"B":"AAEC/w=="},"ss":{"SS":["a","b"]}}}"#,
            ),
            ("p\"k", r#"{"Item":{"p\"k":{"S":"x"}}}"#),
            (
                "pk,sk",
                r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"pk":{"S":"b"}}}"#,
            ),
        ] {
            let schema = KeySchema::parse(schema).unwrap();
            let c = Converter {
                summary: &s,
                keys: Some(&schema),
            };
            let spaced = format!(" {} ", line.replace("\":", "\" :\t"));
            let fast = c.convert(line.to_string(), 1).unwrap();
            assert_eq!(fast, c.convert(spaced, 1).unwrap(), "{line}");
            assert_eq!(fast.record.as_str(), line);
        }
    }

    #[test]
    fn incremental_lines_get_their_event_names() {
        let s = summary(ExportType::Incremental, Some("NEW_AND_OLD_IMAGES"));
        let c = Converter {
            summary: &s,
            keys: None,
        };
        let line = |rest: &str| {
            format!(
                r#"{{"Metadata":{{"WriteTimeMicros":{{"N":"1700000000123456"}}}},"Keys":{{"pk":{{"S":"a"}}}}{rest}}}"#
            )
        };
        let ins = c
            .convert(line(r#","NewImage":{"pk":{"S":"a"}}"#), 0)
            .unwrap();
        assert_eq!(ins.event_name, EventName::Insert);
        assert_eq!(ins.approximate_creation_time_ms, 1_700_000_000_123);
        assert!(ins.event_id.starts_with("export-"));
        let m = c
            .convert(
                line(r#","NewImage":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"}}"#),
                0,
            )
            .unwrap();
        assert_eq!(m.event_name, EventName::Modify);
        assert_eq!(m.old_image.as_deref(), Some(r#"{"pk":{"S":"a"}}"#));
        let r = c
            .convert(line(r#","OldImage":{"pk":{"S":"a"}}"#), 0)
            .unwrap();
        assert_eq!(r.event_name, EventName::Remove);
        assert_eq!(r.new_image, None);
        let s2 = summary(ExportType::Incremental, Some("NEW_IMAGE"));
        let c2 = Converter {
            summary: &s2,
            keys: None,
        };
        let w = c2
            .convert(line(r#","NewImage":{"pk":{"S":"a"}}"#), 0)
            .unwrap();
        assert_eq!(w.event_name, EventName::Modify);
        assert!(c
            .convert(r#"{"Keys":{"pk":{"S":"a"}}}"#.into(), 0)
            .unwrap_err()
            .contains("Metadata"));
    }

    #[test]
    fn key_schemas_parse() {
        assert_eq!(KeySchema::parse("pk").unwrap().range, None);
        assert_eq!(
            KeySchema::parse("pk, sk").unwrap().range.as_deref(),
            Some("sk")
        );
        assert!(KeySchema::parse("").is_err());
        assert!(KeySchema::parse("a,a").is_err());
        assert!(KeySchema::parse("a,b,c").is_err());
    }
}
