//! Item: an item's key attributes (DynamoDB JSON) as one canonical text, the one way
//! every command compares item keys.

use serde_json::Value;

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Whether `keys` is already its own [`canonical_key`]: a JSON object of objects and
/// strings only, no whitespace, no escapes, every object's members in strictly
/// ascending byte order. Checked without parsing into values (the archive's keys
/// mostly are); `false` says nothing, [`canonical_key`] decides then.
pub fn is_canonical(keys: &str) -> bool {
    fn string(b: &[u8], i: &mut usize) -> Option<(usize, usize)> {
        if b.get(*i) != Some(&b'"') {
            return None;
        }
        let start = *i + 1;
        let mut j = start;
        loop {
            match *b.get(j)? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
        *i = j + 1;
        Some((start, j))
    }
    fn object(b: &[u8], i: &mut usize, depth: usize) -> Option<()> {
        if depth > 8 || b.get(*i) != Some(&b'{') {
            return None;
        }
        *i += 1;
        if b.get(*i) == Some(&b'}') {
            *i += 1;
            return Some(());
        }
        let mut last: Option<(usize, usize)> = None;
        loop {
            let name = string(b, i)?;
            if let Some(prev) = last {
                if b[prev.0..prev.1] >= b[name.0..name.1] {
                    return None;
                }
            }
            last = Some(name);
            if b.get(*i) != Some(&b':') {
                return None;
            }
            *i += 1;
            match b.get(*i)? {
                b'{' => object(b, i, depth + 1)?,
                b'"' => {
                    string(b, i)?;
                }
                _ => return None,
            }
            match b.get(*i)? {
                b',' => *i += 1,
                b'}' => {
                    *i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
    let b = keys.as_bytes();
    let mut i = 0;
    object(b, &mut i, 0).is_some() && i == b.len()
}

/// One text for an item's key attributes (DynamoDB JSON), whatever the order of its
/// members and its whitespace: object members sorted by name, no whitespace.
pub fn canonical_key(keys: &str) -> Result<String, String> {
    if is_canonical(keys) {
        return Ok(keys.to_string());
    }
    let v: Value = serde_json::from_str(keys).map_err(|e| e.to_string())?;
    if !v.is_object() {
        return Err("the keys are a JSON object".into());
    }
    let mut out = String::with_capacity(keys.len());
    write_canonical(&v, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keys_ignore_order_and_whitespace() {
        let a = canonical_key(r#"{"sk":{"N":"10"},"pk":{"S":"a\"b"}}"#).unwrap();
        let b = canonical_key(r#" { "pk" : { "S" : "a\"b" } , "sk":{"N":"10"} } "#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, r#"{"pk":{"S":"a\"b"},"sk":{"N":"10"}}"#);
        assert_ne!(
            a,
            canonical_key(r#"{"pk":{"S":"a\"b"},"sk":{"S":"10"}}"#).unwrap()
        );
        assert!(canonical_key("[]").is_err());
        assert!(canonical_key("{").is_err());
    }

    /// The slow way, for comparison with the fast path.
    fn by_values(keys: &str) -> Result<String, String> {
        let v: Value = serde_json::from_str(keys).map_err(|e| e.to_string())?;
        let mut out = String::new();
        write_canonical(&v, &mut out);
        Ok(out)
    }

    #[test]
    fn texts_taken_as_canonical_are_their_own_canonical_key() {
        let canonical = [
            r#"{"pk":{"S":"a"}}"#,
            r#"{"pk":{"S":"a b ü 😀"},"sk":{"N":"10"}}"#,
            r#"{"a":{"B":"AA=="},"ab":{"S":""},"b":{"S":"x"}}"#,
            r#"{}"#,
            r#"{"a":{}}"#,
            r#"{"a":{"M":{"x":{"S":"1"},"y":{"S":"2"}}}}"#,
        ];
        for k in canonical {
            assert!(is_canonical(k), "{k}");
            assert_eq!(by_values(k).unwrap(), k);
            assert_eq!(canonical_key(k).unwrap(), k);
        }
        let not = [
            r#"{"sk":{"N":"10"},"pk":{"S":"a"}}"#,
            r#"{"pk":{"S":"a"},"pk":{"S":"b"}}"#,
            r#"{ "pk":{"S":"a"}}"#,
            r#"{"pk":{"S":"a\"b"}}"#,
            r#"{"pk":{"S":"\u00e9"}}"#,
            r#"{"pk":{"BOOL":true}}"#,
            r#"{"pk":{"L":[]}}"#,
            r#"{"pk":{"S":"a"}} "#,
            r#"{"pk":{"S":"a"}}x"#,
            r#"{"pk":{"S":"a"},}"#,
            r#"{"pk":{"S":"a"}"#,
            "{\"pk\":{\"S\":\"a\u{1}\"}}",
            r#"["x"]"#,
            "",
        ];
        for k in not {
            assert!(!is_canonical(k), "{k}");
            if let (Ok(c), Ok(fast)) = (by_values(k), canonical_key(k)) {
                assert_eq!(fast, c, "{k}");
            }
        }
    }
}
