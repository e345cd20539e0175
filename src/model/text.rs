//! [`JsonText`]: the JSON text of a change (its record, keys and images) kept as a range
//! of the buffer it arrived in, so decoding copies no image.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A JSON text: a range of a shared buffer (usually the whole input the change arrived
/// in), read as `&str` through [`Deref`]. Cloning shares the buffer.
#[derive(Clone)]
pub struct JsonText {
    buf: Arc<String>,
    start: usize,
    end: usize,
}

impl JsonText {
    /// `part` as a range of `buf` when it lies inside it, else as a copy of its own.
    pub(crate) fn within(buf: &Arc<String>, part: &str) -> Self {
        let base = buf.as_ptr() as usize;
        let at = part.as_ptr() as usize;
        match at.checked_sub(base) {
            Some(start) if start + part.len() <= buf.len() => JsonText {
                buf: Arc::clone(buf),
                start,
                end: start + part.len(),
            },
            _ => JsonText::from(part),
        }
    }

    /// The text as a `&str`.
    pub fn as_str(&self) -> &str {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Whether the text holds a buffer larger than itself (part of an input).
    pub fn is_shared(&self) -> bool {
        self.end - self.start != self.buf.len()
    }

    /// Gives the text a buffer of its own, so that the input it was part of can be freed.
    pub fn detach(&mut self) {
        if self.is_shared() {
            *self = JsonText::from(self.as_str());
        }
    }
}

impl Deref for JsonText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for JsonText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for JsonText {
    fn from(s: String) -> Self {
        let end = s.len();
        JsonText {
            buf: Arc::new(s),
            start: 0,
            end,
        }
    }
}

impl From<&str> for JsonText {
    fn from(s: &str) -> Self {
        JsonText::from(s.to_string())
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for JsonText {}

impl PartialEq<str> for JsonText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for JsonText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_share_and_detach() {
        let buf = Arc::new(r#"{"a":{"S":"é"}}"#.to_string());
        let inner = buf.get(5..15).expect("a range");
        let mut t = JsonText::within(&buf, inner);
        assert_eq!(t, r#"{"S":"é"}"#);
        assert!(t.is_shared());
        assert_eq!(Arc::strong_count(&buf), 2);
        t.detach();
        assert!(!t.is_shared());
        assert_eq!(Arc::strong_count(&buf), 1);
        assert_eq!(t.as_str(), r#"{"S":"é"}"#);
    }

    #[test]
    fn text_outside_the_buffer_is_copied() {
        let buf = Arc::new("abc".to_string());
        let t = JsonText::within(&buf, "other");
        assert_eq!(t, "other");
        assert_eq!(Arc::strong_count(&buf), 1);
        assert_eq!(format!("{t:?} {t}"), "\"other\" other");
    }
}
