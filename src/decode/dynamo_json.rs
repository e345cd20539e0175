//! Shape validation of DynamoDB JSON items (`{"name": {"S": "..."}, ...}`) without
//! building a tree: every attribute value must be an object with exactly one known type
//! descriptor holding a value of the right JSON kind. Values are never converted, so
//! numbers keep all their digits and binaries keep their base64 text.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;

/// Checks that `text` is a DynamoDB JSON item. The error names the attribute path and
/// what was wrong (for example `NewImage.a.b[2]: unknown attribute type "X"`).
pub fn validate_item(text: &str) -> Result<(), String> {
    // The common case, a valid item, is checked without tracking the path; only a
    // failure is checked again with the path, to name where it is.
    if run_validation(text, None).is_ok() {
        return Ok(());
    }
    let path = RefCell::new(Vec::new());
    let result = run_validation(text, Some(&path));
    result.map_err(|e| {
        let msg = super::json_error_message(&e);
        let path = path.into_inner();
        if path.is_empty() {
            msg
        } else {
            format!("{}: {msg}", join_path(&path))
        }
    })
}

fn run_validation(text: &str, path: Option<Path<'_>>) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(ItemVisitor { path })
        .and_then(|()| de.end())
}

fn join_path(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        if !p.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(p);
    }
    out
}

/// Checks that `text` is a decimal number in DynamoDB's text form: optional sign,
/// digits with an optional fraction, optional exponent.
pub fn is_number_text(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-') | Some(b'+')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if matches!(b.get(i), Some(b'-') | Some(b'+')) {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// The attribute path being checked, tracked only when an error must be named.
type Path<'p> = &'p RefCell<Vec<String>>;

fn push(path: Option<Path<'_>>, part: impl FnOnce() -> String) {
    if let Some(p) = path {
        p.borrow_mut().push(part());
    }
}

fn pop(path: Option<Path<'_>>) {
    if let Some(p) = path {
        p.borrow_mut().pop();
    }
}

struct ItemVisitor<'p> {
    path: Option<Path<'p>>,
}

impl<'de> Visitor<'de> for ItemVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute names to attribute values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            push(self.path, || name.into_owned());
            map.next_value_seed(AttrSeed { path: self.path })?;
            pop(self.path);
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ItemVisitor<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

struct AttrSeed<'p> {
    path: Option<Path<'p>>,
}

impl<'de> DeserializeSeed<'de> for AttrSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AttrSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attribute value object such as {\"S\": \"text\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(tag) = map.next_key::<Cow<'de, str>>()? else {
            return Err(de::Error::custom(
                "empty attribute value: no type descriptor",
            ));
        };
        match tag.as_ref() {
            "S" | "B" => {
                map.next_value::<Cow<'de, str>>()?;
            }
            "N" => {
                let n = map.next_value::<Cow<'de, str>>()?;
                if !is_number_text(&n) {
                    return Err(de::Error::custom(format!("N value {n:?} is not a number")));
                }
            }
            "SS" | "BS" => map.next_value_seed(StrSeq { numbers: false })?,
            "NS" => map.next_value_seed(StrSeq { numbers: true })?,
            "BOOL" | "NULL" => {
                map.next_value::<bool>()?;
            }
            "M" => map.next_value_seed(ItemVisitor { path: self.path })?,
            "L" => map.next_value_seed(ListSeed { path: self.path })?,
            other => {
                return Err(de::Error::custom(format!(
                    "unknown attribute type {other:?}"
                )))
            }
        }
        if let Some(extra) = map.next_key::<Cow<'de, str>>()? {
            map.next_value::<IgnoredAny>()?;
            return Err(de::Error::custom(format!(
                "attribute value has more than one type descriptor ({tag:?} and {extra:?})"
            )));
        }
        Ok(())
    }
}

struct StrSeq {
    numbers: bool,
}

impl<'de> DeserializeSeed<'de> for StrSeq {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StrSeq {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(s) = seq.next_element::<Cow<'de, str>>()? {
            if self.numbers && !is_number_text(&s) {
                return Err(de::Error::custom(format!(
                    "NS element {s:?} is not a number"
                )));
            }
        }
        Ok(())
    }
}

struct ListSeed<'p> {
    path: Option<Path<'p>>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of attribute values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            push(self.path, || format!("[{i}]"));
            let more = seq.next_element_seed(AttrSeed { path: self.path })?;
            pop(self.path);
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_type() {
        let item = r#"{"s":{"S":"a\u0000é"},"n":{"N":"-1E-130"},"b":{"B":"AAE="},
            "ss":{"SS":[]},"ns":{"NS":["1","2.5"]},"bs":{"BS":["AA=="]},
            "m":{"M":{"x.y z":{"L":[{"NULL":true},{"BOOL":false}]}}},"l":{"L":[]}}"#;
        assert_eq!(validate_item(item), Ok(()));
        assert_eq!(validate_item("{}"), Ok(()));
    }

    #[test]
    fn names_the_path() {
        let err = validate_item(r#"{"a":{"M":{"b":{"L":[{"S":"x"},{"X":"1"}]}}}}"#).unwrap_err();
        assert_eq!(err, "a.b[1]: unknown attribute type \"X\"");
        let err = validate_item(r#"{"n":{"N":"12a"}}"#).unwrap_err();
        assert_eq!(err, "n: N value \"12a\" is not a number");
        assert!(validate_item(r#"{"n":{"N":1}}"#)
            .unwrap_err()
            .starts_with("n: invalid type"));
        assert!(validate_item(r#"{"n":{"S":"1","N":"1"}}"#).is_err());
        assert!(validate_item(r#"{"n":{}}"#).is_err());
        assert!(validate_item(r#"[]"#).is_err());
    }

    #[test]
    fn number_text() {
        for ok in [
            "0",
            "-1",
            "1E+125",
            "-1E-130",
            "3.14159",
            ".5",
            "5.",
            "12345678901234567890123456789012345678",
        ] {
            assert!(is_number_text(ok), "{ok}");
        }
        for bad in ["", "-", "e5", "1e", "1.2.3", "NaN", "0x10", " 1"] {
            assert!(!is_number_text(bad), "{bad}");
        }
    }
}
