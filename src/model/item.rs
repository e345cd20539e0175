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

/// One text for an item's key attributes (DynamoDB JSON), whatever the order of its
/// members and its whitespace: object members sorted by name, no whitespace.
pub fn canonical_key(keys: &str) -> Result<String, String> {
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
}
