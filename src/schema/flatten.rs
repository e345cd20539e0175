//! Flatten: the typed columns of a [`TableSchema`] built from the images of change
//! records (`new_image`, or `old_image` for a REMOVE), followed by `type_errors`.
//!
//! Only the top-level attributes of an image are split (values stay raw JSON text until
//! a column needs them). Numbers never pass through floating point except for `double`
//! columns: decimals are scaled exactly into Decimal128. A value that does not fit its
//! column — another DynamoDB type, more digits than the precision, nonzero digits past
//! the scale, an unreadable timestamp or base64 — becomes null and the column's name is
//! added to that row's `type_errors`. A missing attribute (or a path that leads nowhere)
//! and a DynamoDB `NULL` are plain nulls, not errors.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float64Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::Field;
use arrow::error::ArrowError;
use base64::Engine as _;
use chrono::NaiveDate;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::convert::{epoch_day, to_decimal, to_f64, Misfit};
use super::{type_errors_field, Column, ColumnType, ElementType, PathStep, TableSchema};
use crate::model::{ChangeRecord, EventName};

pub(crate) use super::convert::{iso_millis, to_i64};

/// A DynamoDB attribute value; maps and lists keep their members as raw JSON text.
#[derive(Debug, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
enum Attr<'a> {
    S(#[serde(borrow)] Cow<'a, str>),
    N(#[serde(borrow)] Cow<'a, str>),
    B(#[serde(borrow)] Cow<'a, str>),
    SS(Vec<String>),
    NS(Vec<String>),
    BS(Vec<String>),
    M(#[serde(borrow)] Members<'a>),
    L(#[serde(borrow)] Vec<&'a RawValue>),
    NULL(serde::de::IgnoredAny),
    BOOL(bool),
}

/// The members of a DynamoDB map (or an image) in their order, values unparsed.
#[derive(Debug, Default)]
pub(crate) struct Members<'a>(pub(crate) Vec<(String, &'a RawValue)>);

impl<'a> Members<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of DynamoDB attribute values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A value converted for its column.
enum Cell {
    Str(String),
    I64(i64),
    F64(f64),
    Dec(i128),
    Bool(bool),
    Millis(i64),
    Days(i32),
    Bytes(Vec<u8>),
    StrList(Vec<Option<String>>),
    I64List(Vec<Option<i64>>),
    F64List(Vec<Option<f64>>),
    DecList(Vec<Option<i128>>),
}

fn millis_of(attr: &Attr) -> Result<i64, Misfit> {
    match attr {
        Attr::S(s) => iso_millis(s),
        Attr::N(n) => crate::decode::parse_epoch(n, crate::decode::TimeUnit::SecondsOrMillis),
        other => Err(format!("{} is not a timestamp", other.kind())),
    }
}

impl Attr<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Attr::S(_) => "S",
            Attr::N(_) => "N",
            Attr::B(_) => "B",
            Attr::SS(_) => "SS",
            Attr::NS(_) => "NS",
            Attr::BS(_) => "BS",
            Attr::M(_) => "M",
            Attr::L(_) => "L",
            Attr::NULL(_) => "NULL",
            Attr::BOOL(_) => "BOOL",
        }
    }
}

fn parse_attr(raw: &RawValue) -> Result<Attr<'_>, Misfit> {
    serde_json::from_str(raw.get()).map_err(|e| format!("not a DynamoDB value: {e}"))
}

/// Converts the elements of a list or set for an `array<...>` column.
fn elements<T>(
    attr: &Attr,
    set: Option<&Vec<String>>,
    want_string: bool,
    conv: impl Fn(&str) -> Result<T, Misfit>,
) -> Result<Vec<Option<T>>, Misfit> {
    if let Some(items) = set {
        return items.iter().map(|s| conv(s).map(Some)).collect();
    }
    let Attr::L(items) = attr else {
        return Err(format!("{} is not a list", attr.kind()));
    };
    items
        .iter()
        .map(|raw| match parse_attr(raw)? {
            Attr::NULL(_) => Ok(None),
            Attr::S(s) if want_string => conv(&s).map(Some),
            Attr::N(n) if !want_string => conv(&n).map(Some),
            other => Err(format!("list element {} does not fit", other.kind())),
        })
        .collect()
}

fn convert(ty: ColumnType, attr: &Attr) -> Result<Cell, Misfit> {
    let wrong = || format!("{} does not fit {}", attr.kind(), ty.athena_type());
    Ok(match (ty, attr) {
        (ColumnType::String, Attr::S(s)) => Cell::Str(s.to_string()),
        (ColumnType::Bigint, Attr::N(n)) => Cell::I64(to_i64(n)?),
        (ColumnType::Double, Attr::N(n)) => Cell::F64(to_f64(n)?),
        (ColumnType::Decimal { precision, scale }, Attr::N(n)) => {
            Cell::Dec(to_decimal(n, precision, scale)?)
        }
        (ColumnType::Boolean, Attr::BOOL(b)) => Cell::Bool(*b),
        (ColumnType::Timestamp, _) => Cell::Millis(millis_of(attr)?),
        (ColumnType::Date, Attr::S(s)) => {
            let days = match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) => epoch_day(
                    d.and_hms_opt(0, 0, 0)
                        .map_or(0, |t| t.and_utc().timestamp_millis()),
                )?,
                Err(_) => epoch_day(iso_millis(s)?)?,
            };
            Cell::Days(days)
        }
        (ColumnType::Date, Attr::N(_)) => Cell::Days(epoch_day(millis_of(attr)?)?),
        (ColumnType::Binary, Attr::B(b)) => Cell::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|e| format!("invalid base64: {e}"))?,
        ),
        (ColumnType::Json, _) => {
            let mut out = String::new();
            render_json(attr, &mut out)?;
            Cell::Str(out)
        }
        (ColumnType::Array(e), _) => {
            let set = match (e, attr) {
                (ElementType::String, Attr::SS(v)) => Some(v),
                (ElementType::String, Attr::L(_)) => None,
                (_, Attr::NS(v)) if e != ElementType::String => Some(v),
                (_, Attr::L(_)) => None,
                _ => return Err(wrong()),
            };
            match e {
                ElementType::String => {
                    Cell::StrList(elements(attr, set, true, |s| Ok(s.to_string()))?)
                }
                ElementType::Bigint => Cell::I64List(elements(attr, set, false, to_i64)?),
                ElementType::Double => Cell::F64List(elements(attr, set, false, to_f64)?),
                ElementType::Decimal { precision, scale } => {
                    Cell::DecList(elements(attr, set, false, |n| {
                        to_decimal(n, precision, scale)
                    })?)
                }
            }
        }
        _ => return Err(wrong()),
    })
}

fn push_number(text: &str, out: &mut String) {
    let is_json_number = text
        .bytes()
        .next()
        .is_some_and(|b| b == b'-' || b.is_ascii_digit())
        && serde_json::from_str::<&RawValue>(text).is_ok();
    if is_json_number {
        out.push_str(text);
    } else {
        push_str(text, out);
    }
}

fn push_str(text: &str, out: &mut String) {
    out.push_str(&serde_json::Value::from(text).to_string());
}

/// Plain JSON of a DynamoDB value: strings, exact number text, booleans, null, objects
/// in their order, lists and sets as arrays, binary as its base64 text.
fn render_json(attr: &Attr, out: &mut String) -> Result<(), Misfit> {
    let list = |items: &[String], number: bool, out: &mut String| {
        out.push('[');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if number {
                push_number(s, out);
            } else {
                push_str(s, out);
            }
        }
        out.push(']');
    };
    match attr {
        Attr::S(s) | Attr::B(s) => push_str(s, out),
        Attr::N(n) => push_number(n, out),
        Attr::SS(v) | Attr::BS(v) => list(v, false, out),
        Attr::NS(v) => list(v, true, out),
        Attr::NULL(_) => out.push_str("null"),
        Attr::BOOL(b) => out.push_str(if *b { "true" } else { "false" }),
        Attr::M(m) => {
            out.push('{');
            for (i, (k, v)) in m.0.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(k, out);
                out.push(':');
                render_json(&parse_attr(v)?, out)?;
            }
            out.push('}');
        }
        Attr::L(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render_json(&parse_attr(v)?, out)?;
            }
            out.push(']');
        }
    }
    Ok(())
}

/// Follows a column's path from its attribute: `Ok(None)` when the value is absent.
fn resolve<'a>(column: &Column, image: &Members<'a>) -> Result<Option<Attr<'a>>, Misfit> {
    let Some(raw) = image.get(&column.source.attribute) else {
        return Ok(None);
    };
    let mut attr = parse_attr(raw)?;
    for step in &column.source.path {
        let next = match (step, &attr) {
            (PathStep::Key(k), Attr::M(m)) => m.get(k),
            (PathStep::Index(i), Attr::L(items)) => items.get(*i).copied(),
            (PathStep::Key(k), other) => {
                return Err(format!("{} has no key {k:?} (not a map)", other.kind()))
            }
            (PathStep::Index(i), other) => {
                return Err(format!("{} has no index {i} (not a list)", other.kind()))
            }
        };
        match next {
            Some(raw) => attr = parse_attr(raw)?,
            None => return Ok(None),
        }
    }
    Ok(match attr {
        Attr::NULL(_) => None,
        a => Some(a),
    })
}

/// One Arrow builder per column type.
enum Builder {
    Str(StringBuilder),
    I64(Int64Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder),
    Bool(BooleanBuilder),
    Millis(TimestampMillisecondBuilder),
    Days(Date32Builder),
    Bytes(BinaryBuilder),
    StrList(ListBuilder<StringBuilder>),
    I64List(ListBuilder<Int64Builder>),
    F64List(ListBuilder<Float64Builder>),
    DecList(ListBuilder<Decimal128Builder>),
}

fn list_field(ty: ColumnType) -> Option<Arc<Field>> {
    match ty.arrow_type() {
        arrow::datatypes::DataType::List(f) => Some(f),
        _ => None,
    }
}

fn list_of<B: ArrayBuilder>(values: B, n: usize, field: Option<Arc<Field>>) -> ListBuilder<B> {
    let list = ListBuilder::with_capacity(values, n);
    match field {
        Some(f) => list.with_field(f),
        None => list,
    }
}

impl Builder {
    fn new(ty: ColumnType, n: usize) -> Result<Self, ArrowError> {
        let decimal =
            |p: u8, s: u8| Decimal128Builder::with_capacity(n).with_precision_and_scale(p, s as i8);
        let field = list_field(ty);
        Ok(match ty {
            ColumnType::String | ColumnType::Json => {
                Builder::Str(StringBuilder::with_capacity(n, n * 16))
            }
            ColumnType::Bigint => Builder::I64(Int64Builder::with_capacity(n)),
            ColumnType::Double => Builder::F64(Float64Builder::with_capacity(n)),
            ColumnType::Decimal { precision, scale } => Builder::Dec(decimal(precision, scale)?),
            ColumnType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(n)),
            ColumnType::Timestamp => {
                Builder::Millis(TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC"))
            }
            ColumnType::Date => Builder::Days(Date32Builder::with_capacity(n)),
            ColumnType::Binary => Builder::Bytes(BinaryBuilder::with_capacity(n, n * 16)),
            ColumnType::Array(ElementType::String) => {
                Builder::StrList(list_of(StringBuilder::new(), n, field))
            }
            ColumnType::Array(ElementType::Bigint) => {
                Builder::I64List(list_of(Int64Builder::new(), n, field))
            }
            ColumnType::Array(ElementType::Double) => {
                Builder::F64List(list_of(Float64Builder::new(), n, field))
            }
            ColumnType::Array(ElementType::Decimal { precision, scale }) => {
                Builder::DecList(list_of(decimal(precision, scale)?, n, field))
            }
        })
    }

    fn append_null(&mut self) {
        match self {
            Builder::Str(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Dec(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Millis(b) => b.append_null(),
            Builder::Days(b) => b.append_null(),
            Builder::Bytes(b) => b.append_null(),
            Builder::StrList(b) => b.append_null(),
            Builder::I64List(b) => b.append_null(),
            Builder::F64List(b) => b.append_null(),
            Builder::DecList(b) => b.append_null(),
        }
    }

    /// Appends a converted value; `false` when it is not this builder's kind.
    fn append(&mut self, cell: Cell) -> bool {
        match (self, cell) {
            (Builder::Str(b), Cell::Str(v)) => b.append_value(v),
            (Builder::I64(b), Cell::I64(v)) => b.append_value(v),
            (Builder::F64(b), Cell::F64(v)) => b.append_value(v),
            (Builder::Dec(b), Cell::Dec(v)) => b.append_value(v),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Builder::Millis(b), Cell::Millis(v)) => b.append_value(v),
            (Builder::Days(b), Cell::Days(v)) => b.append_value(v),
            (Builder::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (Builder::StrList(b), Cell::StrList(v)) => b.append_value(v),
            (Builder::I64List(b), Cell::I64List(v)) => b.append_value(v),
            (Builder::F64List(b), Cell::F64List(v)) => b.append_value(v),
            (Builder::DecList(b), Cell::DecList(v)) => b.append_value(v),
            _ => return false,
        }
        true
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Str(mut b) => Arc::new(b.finish()),
            Builder::I64(mut b) => Arc::new(b.finish()),
            Builder::F64(mut b) => Arc::new(b.finish()),
            Builder::Dec(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Millis(mut b) => Arc::new(b.finish()),
            Builder::Days(mut b) => Arc::new(b.finish()),
            Builder::Bytes(mut b) => Arc::new(b.finish()),
            Builder::StrList(mut b) => Arc::new(b.finish()),
            Builder::I64List(mut b) => Arc::new(b.finish()),
            Builder::F64List(mut b) => Arc::new(b.finish()),
            Builder::DecList(mut b) => Arc::new(b.finish()),
        }
    }
}

/// The typed columns of `schema` for `records`, then `type_errors`, in
/// [`TableSchema::arrow_fields`] order.
pub fn typed_columns(
    schema: &TableSchema,
    records: &[ChangeRecord],
) -> Result<Vec<ArrayRef>, ArrowError> {
    let n = records.len();
    let mut builders = schema
        .columns
        .iter()
        .map(|c| Builder::new(c.ty, n))
        .collect::<Result<Vec<_>, _>>()?;
    let errors_item = match type_errors_field().data_type() {
        arrow::datatypes::DataType::List(f) => Some(f.clone()),
        _ => None,
    };
    let mut errors = list_of(StringBuilder::new(), n, errors_item);
    for r in records {
        let image = match r.event_name {
            EventName::Remove => r.old_image.as_deref(),
            _ => r.new_image.as_deref(),
        };
        let members = match image.map(serde_json::from_str::<Members>) {
            None => Ok(Members::default()),
            Some(Ok(m)) => Ok(m),
            Some(Err(e)) => Err(e.to_string()),
        };
        for (column, builder) in schema.columns.iter().zip(builders.iter_mut()) {
            let value = members
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|m| resolve(column, m))
                .and_then(|a| a.map(|a| convert(column.ty, &a)).transpose());
            match value {
                Ok(Some(cell)) => {
                    if !builder.append(cell) {
                        builder.append_null();
                        errors.values().append_value(&column.name);
                    }
                }
                Ok(None) => builder.append_null(),
                Err(why) => {
                    tracing::debug!(
                        event_id = %r.event_id,
                        sequence_number = %r.sequence_number,
                        column = %column.name,
                        %why,
                        "value does not fit its column"
                    );
                    builder.append_null();
                    errors.values().append_value(&column.name);
                }
            }
        }
        errors.append(true);
    }
    let mut out: Vec<ArrayRef> = builders.into_iter().map(Builder::finish).collect();
    out.push(Arc::new(errors.finish()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Array, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
        Int64Array, ListArray, StringArray, TimestampMillisecondArray,
    };
    use std::path::Path;

    fn schema(columns: &str) -> TableSchema {
        TableSchema::parse(
            &format!(r#"{{"table": "invoices", "columns": [{columns}]}}"#),
            Path::new("t.json"),
        )
        .unwrap()
    }

    fn record(event: EventName, image: &str) -> ChangeRecord {
        let (new_image, old_image) = match event {
            EventName::Remove => (None, Some(image.into())),
            _ => (Some(image.into()), None),
        };
        ChangeRecord {
            event_id: "e1".into(),
            event_name: event,
            table_name: "invoices".into(),
            sequence_number: "1".into(),
            approximate_creation_time_ms: 0,
            stream_view_type: None,
            size_bytes: None,
            ttl_delete: false,
            keys: "{}".into(),
            new_image,
            old_image,
            record: "{}".into(),
            source: crate::model::SourceKind::DynamoDbStream,
            index: 0,
        }
    }

    fn errors_of(cols: &[ArrayRef], row: usize) -> Vec<String> {
        let list = cols
            .last()
            .unwrap()
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        let v = list.value(row);
        let s = v.as_string::<i32>();
        (0..s.len()).map(|i| s.value(i).to_string()).collect()
    }

    /// Column `i`, as its concrete array type.
    fn col<T: 'static>(cols: &[ArrayRef], i: usize) -> &T {
        cols[i].as_any().downcast_ref::<T>().unwrap()
    }

    #[test]
    fn typed_values_from_images() {
        let s = schema(
            r#"{"name": "amount", "attribute": "amount", "type": "decimal(18,2)"},
               {"name": "big", "attribute": "big", "type": "decimal(38,0)"},
               {"name": "huge", "attribute": "huge", "type": "double"},
               {"name": "qty", "attribute": "qty", "type": "bigint"},
               {"name": "paid", "attribute": "paid", "type": "boolean"},
               {"name": "issued_at", "attribute": "issued_at", "type": "timestamp"},
               {"name": "expires", "attribute": "expires", "type": "timestamp"},
               {"name": "due", "attribute": "due", "type": "date"},
               {"name": "sig", "attribute": "sig", "type": "binary"},
               {"name": "tags", "attribute": "tags", "type": "array<string>"},
               {"name": "scores", "attribute": "scores", "type": "array<decimal(10,2)>"},
               {"name": "first_sku", "path": ["lines", 0, "sku"], "type": "string"},
               {"name": "third_sku", "path": ["lines", 2, "sku"], "type": "string"},
               {"name": "dots", "attribute": "attr.with dots", "type": "json"},
               {"name": "lines", "attribute": "lines", "type": "json"},
               {"name": "note", "attribute": "note", "type": "string"},
               {"name": "missing", "attribute": "missing", "type": "string"}"#,
        );
        let image = r#"{"amount":{"N":"1234.56"},"big":{"N":"12345678901234567890123456789012345678"},"huge":{"N":"1E+125"},"qty":{"N":"7"},"paid":{"BOOL":true},"issued_at":{"S":"2025-12-31T23:59:58.250Z"},"expires":{"N":"1767225600"},"due":{"S":"2026-02-01"},"sig":{"B":"AAEC/w=="},"tags":{"SS":["priority","eu"]},"scores":{"NS":["1","2.5","-3"]},"lines":{"L":[{"M":{"sku":{"S":"A-1"},"price":{"N":"500.00"}}},{"M":{"sku":{"S":"B-2"}}}]},"attr.with dots":{"M":{"z":{"NULL":true},"a":{"NS":["1E+2"]}}},"note":{"NULL":true}}"#;
        let cols = typed_columns(&s, &[record(EventName::Insert, image)]).unwrap();
        assert_eq!(cols.len(), s.columns.len() + 1);
        assert_eq!(col::<Decimal128Array>(&cols, 0).value(0), 123456);
        assert_eq!(
            col::<Decimal128Array>(&cols, 1).value(0),
            12345678901234567890123456789012345678
        );
        assert_eq!(col::<Float64Array>(&cols, 2).value(0), 1e125);
        assert_eq!(col::<Int64Array>(&cols, 3).value(0), 7);
        assert!(col::<BooleanArray>(&cols, 4).value(0));
        let ts = |i: usize| col::<TimestampMillisecondArray>(&cols, i).value(0);
        assert_eq!(ts(5), 1_767_225_598_250);
        assert_eq!(ts(6), 1_767_225_600_000);
        assert_eq!(col::<Date32Array>(&cols, 7).value(0), 20_485);
        assert_eq!(col::<BinaryArray>(&cols, 8).value(0), [0u8, 1, 2, 255]);
        let tags = col::<ListArray>(&cols, 9).value(0);
        assert_eq!(
            tags.as_string::<i32>().iter().flatten().collect::<Vec<_>>(),
            ["priority", "eu"]
        );
        let scores = col::<ListArray>(&cols, 10).value(0);
        let scores = scores.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(
            scores.iter().flatten().collect::<Vec<_>>(),
            [100, 250, -300]
        );
        let text = |i: usize| col::<StringArray>(&cols, i);
        assert_eq!(text(11).value(0), "A-1");
        assert!(text(12).is_null(0));
        assert_eq!(text(13).value(0), r#"{"z":null,"a":[1E+2]}"#);
        assert_eq!(
            text(14).value(0),
            r#"[{"sku":"A-1","price":500.00},{"sku":"B-2"}]"#
        );
        assert!(text(15).is_null(0));
        assert!(text(16).is_null(0));
        assert!(errors_of(&cols, 0).is_empty());
        // The field types match the declared schema.
        for (f, c) in s.arrow_fields().iter().zip(&cols) {
            assert_eq!(f.data_type(), c.data_type(), "{}", f.name());
        }
    }

    #[test]
    fn misfits_become_null_and_are_listed() {
        let s = schema(
            r#"{"name": "amount", "attribute": "amount", "type": "decimal(5,2)"},
               {"name": "qty", "attribute": "qty", "type": "bigint"},
               {"name": "when", "attribute": "when", "type": "timestamp"},
               {"name": "tags", "attribute": "tags", "type": "array<bigint>"},
               {"name": "sku", "path": ["lines", 0, "sku"], "type": "string"},
               {"name": "name", "attribute": "name", "type": "string"},
               {"name": "sig", "attribute": "sig", "type": "binary"}"#,
        );
        let bad = r#"{"amount":{"N":"1234.56"},"qty":{"S":"7"},"when":{"S":"yesterday"},"tags":{"L":[{"N":"1"},{"S":"x"}]},"lines":{"M":{}},"name":{"S":"ok"},"sig":{"B":"***"}}"#;
        let good = r#"{"amount":{"N":"-999.99"},"qty":{"N":"-7"},"when":{"N":"1767225600123"},"tags":{"L":[{"N":"1"},{"NULL":true}]},"name":{"S":"also"}}"#;
        let records = [
            record(EventName::Insert, bad),
            record(EventName::Remove, good),
            record(EventName::Modify, "not json"),
        ];
        let cols = typed_columns(&s, &records).unwrap();
        assert_eq!(
            errors_of(&cols, 0),
            ["amount", "qty", "when", "tags", "sku", "sig"]
        );
        assert!(errors_of(&cols, 1).is_empty());
        assert_eq!(errors_of(&cols, 2).len(), s.columns.len());
        for c in &cols[..s.columns.len()] {
            assert_eq!(c.len(), records.len());
            assert!(c.is_null(2), "an unreadable image gives nulls");
        }
        let text = cols[5].as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(text.value(0), "ok");
        assert_eq!(text.value(1), "also");
        assert_eq!(
            cols[0]
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .unwrap()
                .value(1),
            -99999
        );
        assert!(
            cols[0].is_null(0) && cols[1].is_null(0) && cols[2].is_null(0) && cols[3].is_null(0)
        );
        assert_eq!(
            cols[2]
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .unwrap()
                .value(1),
            1_767_225_600_123
        );
        let tags = cols[3]
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap()
            .value(1);
        assert_eq!(tags.len(), 2);
        assert!(tags.is_null(1));
    }
}
