//! Item: DynamoDB JSON as written by the archive, turned into what restore writes.
//!
//! - [`to_item`] converts an image (`{"name": {"S": "..."}, ...}`) into aws-sdk-dynamodb
//!   [`AttributeValue`]s exactly: numbers stay their decimal text (all 38 digits),
//!   binaries are base64-decoded to their bytes, sets, maps and lists keep every member.
//! - [`KeyShape`] names the key attributes and their types, to compare with a target
//!   table's key schema.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use base64::Engine as _;
use serde_json::Value;

/// An item: attribute name → value.
pub type Item = HashMap<String, AttributeValue>;

/// Converts a DynamoDB JSON item text into attribute values. The error names the
/// attribute path and what is wrong.
pub fn to_item(text: &str) -> Result<Item, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Object(map) = value else {
        return Err("an item is a JSON object".into());
    };
    map.into_iter()
        .map(|(name, v)| {
            let av = to_attribute(v).map_err(|e| format!("{name}: {e}"))?;
            Ok((name, av))
        })
        .collect()
}

fn strings(v: Value, what: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(format!("{what} is a JSON array"));
    };
    items
        .into_iter()
        .map(|i| match i {
            Value::String(s) => Ok(s),
            _ => Err(format!("{what} members are JSON strings")),
        })
        .collect()
}

fn number(s: String) -> Result<String, String> {
    if crate::decode::dynamo_json::is_number_text(&s) {
        Ok(s)
    } else {
        Err(format!("{s:?} is not a number"))
    }
}

fn binary(s: &str) -> Result<Blob, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(Blob::new)
        .map_err(|e| format!("binary is not base64: {e}"))
}

/// Converts one DynamoDB JSON attribute value (`{"N": "1"}`, `{"M": {...}}`, ...).
pub fn to_attribute(v: Value) -> Result<AttributeValue, String> {
    let Value::Object(map) = v else {
        return Err("an attribute value is a JSON object".into());
    };
    let mut it = map.into_iter();
    let (Some((kind, inner)), None) = (it.next(), it.next()) else {
        return Err("an attribute value has exactly one type descriptor".into());
    };
    Ok(match (kind.as_str(), inner) {
        ("S", Value::String(s)) => AttributeValue::S(s),
        ("N", Value::String(s)) => AttributeValue::N(number(s)?),
        ("B", Value::String(s)) => AttributeValue::B(binary(&s)?),
        ("BOOL", Value::Bool(b)) => AttributeValue::Bool(b),
        ("NULL", Value::Bool(b)) => AttributeValue::Null(b),
        ("SS", v) => AttributeValue::Ss(strings(v, "SS")?),
        ("NS", v) => AttributeValue::Ns(
            strings(v, "NS")?
                .into_iter()
                .map(number)
                .collect::<Result<_, _>>()?,
        ),
        ("BS", v) => AttributeValue::Bs(
            strings(v, "BS")?
                .iter()
                .map(|s| binary(s))
                .collect::<Result<_, _>>()?,
        ),
        ("L", Value::Array(items)) => AttributeValue::L(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_attribute(v).map_err(|e| format!("[{i}]: {e}")))
                .collect::<Result<_, _>>()?,
        ),
        ("M", Value::Object(m)) => AttributeValue::M(
            m.into_iter()
                .map(|(k, v)| {
                    let av = to_attribute(v).map_err(|e| format!("{k}: {e}"))?;
                    Ok((k, av))
                })
                .collect::<Result<_, String>>()?,
        ),
        (kind, _) => return Err(format!("unknown or malformed attribute type {kind:?}")),
    })
}

/// The key attributes of an item: names and scalar types, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShape(pub Vec<(String, ScalarAttributeType)>);

impl KeyShape {
    /// The shape of a canonical key text (see [`crate::model::item::canonical_key`]).
    pub fn of_keys(keys: &str) -> Result<KeyShape, String> {
        let v: Value = serde_json::from_str(keys).map_err(|e| e.to_string())?;
        let Value::Object(map) = v else {
            return Err("the keys are a JSON object".into());
        };
        let mut out = Vec::new();
        for (name, value) in map {
            let kind = value
                .as_object()
                .and_then(|m| m.keys().next().cloned())
                .unwrap_or_default();
            let t = match kind.as_str() {
                "S" => ScalarAttributeType::S,
                "N" => ScalarAttributeType::N,
                "B" => ScalarAttributeType::B,
                other => return Err(format!("key attribute {name} has type {other:?}")),
            };
            out.push((name, t));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(KeyShape(out))
    }

    /// `name (S), sk (N)`, for messages.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(n, t)| format!("{n} ({})", t.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_every_type_exactly() {
        let n38 = "12345678901234567890123456789012345678";
        let text = format!(
            r#"{{"pk":{{"S":"INV#1 ünï 😀"}},"n":{{"N":"{n38}"}},"small":{{"N":"-1.5E-130"}},
            "b":{{"B":"AAEC/w=="}},"bs":{{"BS":["AA==","/w=="]}},"ns":{{"NS":["1","{n38}"]}},
            "ss":{{"SS":["a","b"]}},"t":{{"BOOL":true}},"z":{{"NULL":true}},
            "m":{{"M":{{"l":{{"L":[{{"N":"0.1"}},{{"M":{{}}}},{{"L":[]}}]}}}}}}}}"#
        );
        let item = to_item(&text).unwrap();
        assert_eq!(item["pk"], AttributeValue::S("INV#1 ünï 😀".into()));
        assert_eq!(item["n"], AttributeValue::N(n38.into()));
        assert_eq!(item["small"], AttributeValue::N("-1.5E-130".into()));
        assert_eq!(item["b"], AttributeValue::B(Blob::new(vec![0, 1, 2, 255])));
        assert_eq!(
            item["bs"],
            AttributeValue::Bs(vec![Blob::new(vec![0]), Blob::new(vec![255])])
        );
        assert_eq!(item["ns"], AttributeValue::Ns(vec!["1".into(), n38.into()]));
        assert_eq!(item["ss"], AttributeValue::Ss(vec!["a".into(), "b".into()]));
        assert_eq!(item["t"], AttributeValue::Bool(true));
        assert_eq!(item["z"], AttributeValue::Null(true));
        let AttributeValue::M(m) = &item["m"] else {
            panic!("not a map")
        };
        assert_eq!(
            m["l"],
            AttributeValue::L(vec![
                AttributeValue::N("0.1".into()),
                AttributeValue::M(HashMap::new()),
                AttributeValue::L(vec![]),
            ])
        );
    }

    #[test]
    fn malformed_values_name_the_attribute() {
        for (text, want) in [
            (r#"{"a":{"N":"x"}}"#, "a: \"x\" is not a number"),
            (r#"{"a":{"B":"%%"}}"#, "a: binary is not base64"),
            (r#"{"a":{"M":{"b":{"X":"1"}}}}"#, "a: b: unknown"),
            (r#"{"a":{"L":[{"S":1}]}}"#, "a: [0]: unknown or malformed"),
            (
                r#"{"a":{"S":"1","N":"1"}}"#,
                "a: an attribute value has exactly one",
            ),
            (r#"[1]"#, "an item is a JSON object"),
        ] {
            let e = to_item(text).unwrap_err();
            assert!(e.starts_with(want), "{text}: {e}");
        }
    }

    #[test]
    fn key_shapes() {
        let s = KeyShape::of_keys(r#"{"sk":{"N":"1"},"pk":{"B":"AA=="}}"#).unwrap();
        assert_eq!(
            s,
            KeyShape(vec![
                ("pk".into(), ScalarAttributeType::B),
                ("sk".into(), ScalarAttributeType::N)
            ])
        );
        assert_eq!(s.describe(), "pk (B), sk (N)");
        assert!(KeyShape::of_keys(r#"{"pk":{"SS":["a"]}}"#).is_err());
    }
}
