//! The fast path of decode: one validating pass over the usual input that splits it
//! into records, picks out their fields, checks the images as DynamoDB JSON and notes
//! whether any whitespace needs removing, all at once.
//!
//! It is strict on purpose. Whenever something is unusual (an escape in a field the
//! archive reads, a value of an unexpected JSON type, a duplicate field, an image that
//! fails the shape check, invalid JSON) it gives up (`None`) and the general path, which
//! reads the same text with serde_json, decides and names what is wrong. So the fast
//! path never accepts what the general path would reject, and never produces another
//! outcome: it only saves the general path's repeated passes over the same bytes.

use std::borrow::Cow;

use super::dynamo_json::is_number_text;
use super::stream::{Fields, StreamFields};

/// Nesting deeper than this gives up (serde_json stops at 128 levels).
const MAX_DEPTH: usize = 100;

/// Every byte of a `u64` set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

const LOW_BITS: u64 = splat(0x01);
const HIGH_BITS: u64 = splat(0x80);

/// Whether any byte of `w` ends or escapes a string, or is a control character (which
/// JSON strings may not hold raw): `"`, `\` or below 0x20.
fn has_string_special(w: u64) -> bool {
    let zero_byte = |v: u64| v.wrapping_sub(LOW_BITS) & !v & HIGH_BITS;
    let quote = zero_byte(w ^ splat(b'"'));
    let backslash = zero_byte(w ^ splat(b'\\'));
    let control = w.wrapping_sub(splat(0x20)) & !w & HIGH_BITS;
    quote | backslash | control != 0
}

/// A position in a JSON text, read forwards.
pub(super) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Whitespace was skipped between tokens.
    saw_whitespace: bool,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub(super) fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            saw_whitespace: false,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
            self.saw_whitespace = true;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `c` (after whitespace).
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }

    /// A string token; returns its contents (without quotes) and whether it holds an
    /// escape.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
                let word = u64::from_ne_bytes(chunk.try_into().ok()?);
                if has_string_special(word) {
                    break;
                }
                self.pos += 8;
            }
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    let body = self.text.get(start..self.pos)?;
                    self.pos += 1;
                    return Some((body, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
    }

    /// An escape sequence at a backslash. Escaped surrogates give up: the general path
    /// decides whether they pair.
    fn escape(&mut self) -> Option<()> {
        match *self.bytes.get(self.pos + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
            b'u' => {
                let hex = self.text.get(self.pos + 2..self.pos + 6)?;
                let code = u16::from_str_radix(hex, 16).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || (0xD800..0xE000).contains(&code) {
                    return None;
                }
                self.pos += 6;
            }
            _ => return None,
        }
        Some(())
    }

    /// A string with no escapes, as it stands in the text.
    fn plain_string(&mut self) -> Option<&'a str> {
        match self.string()? {
            (s, false) => Some(s),
            (_, true) => None,
        }
    }

    /// `null` → `None`, else what `read` reads.
    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// `null` → `None`, a plain string → its text; anything else gives up.
    fn optional_plain_string(&mut self) -> Option<Option<&'a str>> {
        self.optional(Self::plain_string)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.skip_ws();
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A JSON number token.
    fn number(&mut self) -> Option<()> {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match *self.bytes.get(self.pos)? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Any JSON value; returns its text.
    fn value(&mut self, depth: usize) -> Option<&'a str> {
        let start = {
            self.skip_ws();
            self.pos
        };
        match self.peek()? {
            b'{' => self.object(depth, |s, _| s.value(depth + 1).map(drop))?,
            b'[' => self.array(depth, |s| s.value(depth + 1).map(drop))?,
            b'"' => {
                self.string()?;
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        self.text.get(start..self.pos)
    }

    /// Opens a container at `open`; `false` when it closes at once (`{}`, `[]`).
    fn open(&mut self, depth: usize, open: u8, close: u8) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(open)?;
        if self.peek()? == close {
            self.pos += 1;
            return Some(false);
        }
        Some(true)
    }

    /// After a container's member: `true` at a comma (another follows), `false` at the
    /// container's end.
    fn next_member(&mut self, close: u8) -> Option<bool> {
        let c = self.peek()?;
        self.pos += 1;
        match c {
            b',' => Some(true),
            _ if c == close => Some(false),
            _ => None,
        }
    }

    /// An object, calling `member` at each value with its name, which must be plain
    /// (no escapes) when `plain_names`.
    fn members(
        &mut self,
        depth: usize,
        plain_names: bool,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        let mut more = self.open(depth, b'{', b'}')?;
        while more {
            let name = if plain_names {
                self.plain_string()?
            } else {
                self.string()?.0
            };
            self.eat(b':')?;
            member(self, name)?;
            more = self.next_member(b'}')?;
        }
        Some(())
    }

    /// An object whose member names the caller reads (so they must be plain).
    fn object(
        &mut self,
        depth: usize,
        member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.members(depth, true, member)
    }

    /// An array, calling `element` at each element.
    fn array(
        &mut self,
        depth: usize,
        mut element: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        let mut more = self.open(depth, b'[', b']')?;
        while more {
            element(self)?;
            more = self.next_member(b']')?;
        }
        Some(())
    }

    /// A DynamoDB JSON item (`{"name": {"S": "..."}, ...}`), checked as
    /// [`super::dynamo_json::validate_item`] does; returns its text.
    fn item(&mut self, depth: usize) -> Option<&'a str> {
        self.skip_ws();
        let start = self.pos;
        self.item_members(depth)?;
        self.text.get(start..self.pos)
    }

    /// An item's members; attribute names may hold escapes (only their validity
    /// matters here).
    fn item_members(&mut self, depth: usize) -> Option<()> {
        self.members(depth, false, |s, _| s.attribute(depth + 1))
    }

    /// One attribute value: an object with exactly one known type descriptor.
    fn attribute(&mut self, depth: usize) -> Option<()> {
        let mut seen = false;
        self.object(depth, |s, tag| {
            if std::mem::replace(&mut seen, true) {
                return None;
            }
            match tag {
                "S" | "B" => s.string().map(drop),
                "N" => s.plain_string().filter(|n| is_number_text(n)).map(drop),
                "SS" | "BS" => s.array(depth + 1, |s| s.string().map(drop)),
                "NS" => s.array(depth + 1, |s| {
                    s.plain_string().filter(|n| is_number_text(n)).map(drop)
                }),
                "BOOL" | "NULL" => match s.peek()? {
                    b't' => s.literal(b"true"),
                    _ => s.literal(b"false"),
                },
                "M" => s.item_members(depth + 1),
                "L" => s.array(depth + 1, |s| s.attribute(depth + 2)),
                _ => None,
            }
        })?;
        seen.then_some(())
    }

    /// An optional item: `null` → `None`.
    fn optional_item(&mut self) -> Option<Option<&'a str>> {
        self.optional(|s| s.item(0))
    }

    /// An optional value of any kind: `null` → `None`.
    fn optional_value(&mut self) -> Option<Option<&'a str>> {
        self.optional(|s| s.value(0))
    }
}

/// Sets `slot` once; a second occurrence of the field gives up, as serde's derived
/// readers reject duplicate fields.
fn once<T>(slot: &mut Option<Option<T>>, value: Option<T>) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

fn cow(v: Option<Option<&str>>) -> Option<Cow<'_, str>> {
    v.flatten().map(Cow::Borrowed)
}

/// The `kinesis` part of a Kinesis record.
pub(super) struct KinesisFields<'a> {
    /// `kinesis.sequenceNumber`.
    pub(super) sequence_number: Option<&'a str>,
    /// `kinesis.data`, base64.
    pub(super) data: Option<&'a str>,
}

/// What the fast path read from one record.
pub(super) struct Scanned<'a> {
    /// The record's own fields.
    pub(super) fields: Fields<'a>,
    /// Its `dynamodb` part, images already checked.
    pub(super) stream: Option<StreamFields<'a>>,
    /// Its `kinesis` part.
    pub(super) kinesis: Option<KinesisFields<'a>>,
    /// The record holds no whitespace between tokens.
    pub(super) compact: bool,
}

/// Reads one change record (a JSON object) at the scanner's position.
fn record<'a>(s: &mut Scanner<'a>) -> Option<Scanned<'a>> {
    s.skip_ws();
    s.saw_whitespace = false;
    let mut event_id = None;
    let mut event_name = None;
    let mut arn = None;
    let mut table = None;
    let mut principal = None;
    let mut dynamodb: Option<Option<StreamFields<'a>>> = None;
    let mut kinesis: Option<Option<KinesisFields<'a>>> = None;
    s.object(0, |s, name| match name {
        "eventID" => once(&mut event_id, s.optional_plain_string()?),
        "eventName" => once(&mut event_name, s.optional_plain_string()?),
        "eventSourceARN" => once(&mut arn, s.optional_plain_string()?),
        "tableName" => once(&mut table, s.optional_plain_string()?),
        "userIdentity" => {
            let id = s.optional(|s| {
                let mut id = None;
                s.object(1, |s, name| match name {
                    "principalId" => once(&mut id, s.optional_plain_string()?),
                    _ => s.value(2).map(drop),
                })?;
                Some(id.flatten())
            })?;
            once(&mut principal, id.flatten())
        }
        "dynamodb" => once(&mut dynamodb, s.optional(stream_fields)?),
        "kinesis" => once(&mut kinesis, s.optional(kinesis_fields)?),
        _ => s.value(1).map(drop),
    })?;
    Some(Scanned {
        fields: Fields {
            event_id: cow(event_id),
            event_name: cow(event_name),
            event_source_arn: cow(arn),
            table_name: cow(table),
            principal_id: cow(principal),
        },
        stream: dynamodb.flatten(),
        kinesis: kinesis.flatten(),
        compact: !s.saw_whitespace,
    })
}

fn stream_fields<'a>(s: &mut Scanner<'a>) -> Option<StreamFields<'a>> {
    let mut time = None;
    let mut precision = None;
    let mut keys = None;
    let mut new_image = None;
    let mut old_image = None;
    let mut sequence_number = None;
    let mut size_bytes = None;
    let mut view = None;
    s.object(1, |s, name| match name {
        "ApproximateCreationDateTime" => once(&mut time, s.optional_value()?),
        "ApproximateCreationDateTimePrecision" => once(&mut precision, s.optional_plain_string()?),
        "Keys" => once(&mut keys, s.optional_item()?),
        "NewImage" => once(&mut new_image, s.optional_item()?),
        "OldImage" => once(&mut old_image, s.optional_item()?),
        "SequenceNumber" => once(&mut sequence_number, s.optional_plain_string()?),
        "SizeBytes" => once(&mut size_bytes, s.optional_value()?),
        "StreamViewType" => once(&mut view, s.optional_plain_string()?),
        _ => s.value(2).map(drop),
    })?;
    Some(StreamFields {
        time: time.flatten(),
        precision: cow(precision),
        keys: keys.flatten(),
        new_image: new_image.flatten(),
        old_image: old_image.flatten(),
        sequence_number: cow(sequence_number),
        size_bytes: size_bytes.flatten(),
        stream_view_type: cow(view),
        images_checked: true,
    })
}

fn kinesis_fields<'a>(s: &mut Scanner<'a>) -> Option<KinesisFields<'a>> {
    let mut sequence_number = None;
    let mut data = None;
    s.object(1, |s, name| match name {
        "sequenceNumber" => once(&mut sequence_number, s.optional_plain_string()?),
        "data" => once(&mut data, s.optional_plain_string()?),
        _ => s.value(2).map(drop),
    })?;
    Some(KinesisFields {
        sequence_number: sequence_number.flatten(),
        data: data.flatten(),
    })
}

/// Reads a whole text holding one change record (a decoded Kinesis payload), with
/// optional whitespace around it; returns the record's text and what was read.
pub(super) fn whole_record(text: &str) -> Option<(&str, Scanned<'_>)> {
    let mut s = Scanner::new(text);
    s.skip_ws();
    let start = s.pos;
    let scanned = record(&mut s)?;
    let end = s.pos;
    s.skip_ws();
    (s.pos == text.len()).then_some(())?;
    Some((text.get(start..end)?, scanned))
}

/// One element of a document's `Records` array: read by the fast path, or only its
/// text, for the general path.
// Each element is handed on as soon as it is read, never stored in bulk: boxing the
// large variant would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
pub(super) enum Element<'a> {
    /// The fast path read it; the text is the record's.
    Read(&'a str, Scanned<'a>),
    /// Valid JSON the fast path did not read.
    Other(&'a str),
}

/// Splits a text of one or more `{"Records": [...]}` documents into their records and
/// hands each, in order, to `each` with its index in its document's array; returns what
/// `each` returned. `None` when anything is unusual at the document level: the general
/// path then reads the text.
pub(super) fn documents<'a, T>(
    text: &'a str,
    mut each: impl FnMut(usize, Element<'a>) -> T,
) -> Option<Vec<T>> {
    let mut s = Scanner::new(text);
    let mut out = Vec::new();
    let mut documents = 0;
    while s.peek().is_some() {
        let mut seen_records = false;
        s.object(0, |s, name| match name {
            "Records" => {
                if std::mem::replace(&mut seen_records, true) {
                    return None;
                }
                let mut index = 0;
                s.array(1, |s| {
                    s.skip_ws();
                    let start = s.pos;
                    let element = match record(s) {
                        Some(scanned) => Element::Read(s.text.get(start..s.pos)?, scanned),
                        None => {
                            s.pos = start;
                            Element::Other(s.value(2)?)
                        }
                    };
                    out.push(each(index, element));
                    index += 1;
                    Some(())
                })
            }
            // The general path reads these two as raw values of any kind, and
            // duplicates of them as errors.
            "dynamodb" | "kinesis" => None,
            _ => s.value(1).map(drop),
        })?;
        if !seen_records {
            return None;
        }
        documents += 1;
    }
    (documents > 0).then_some(out)
}

/// A full export line `{"Item":{...}}` read in one pass: the item's text and the texts
/// of its key attributes' values.
#[derive(Debug, PartialEq, Eq)]
pub struct FullExportItem<'a> {
    /// The item, as it stands in the line.
    pub item: &'a str,
    /// The partition key attribute's value.
    pub hash: &'a str,
    /// The sort key attribute's value, when the schema has one.
    pub range: Option<&'a str>,
}

/// Reads a compact full export line `{"Item":{...}}` (no whitespace outside strings) in
/// one pass: checks the item as [`super::dynamo_json::validate_item`] does and picks out
/// the values of the attributes named `hash` and `range`. `None` when anything is
/// unusual (whitespace, an escaped attribute name, a key attribute missing or given
/// twice, anything the shape check refuses): the general path then reads the line and
/// names what is wrong.
pub fn full_export_item<'a>(
    line: &'a str,
    hash: &str,
    range: Option<&str>,
) -> Option<FullExportItem<'a>> {
    let mut s = Scanner::new(line);
    s.eat(b'{')?;
    (s.plain_string()? == "Item").then_some(())?;
    s.eat(b':')?;
    let start = s.pos;
    let (mut hash_value, mut range_value) = (None, None);
    s.members(0, true, |s, name| {
        let slot = if name == hash {
            &mut hash_value
        } else if Some(name) == range {
            &mut range_value
        } else {
            return s.attribute(1);
        };
        let at = s.pos;
        s.attribute(1)?;
        match slot.replace(s.text.get(at..s.pos)?) {
            None => Some(()),
            Some(_) => None,
        }
    })?;
    let item = line.get(start..s.pos)?;
    s.eat(b'}')?;
    (s.pos == line.len() && !s.saw_whitespace).then_some(())?;
    Some(FullExportItem {
        item,
        hash: hash_value?,
        range: match range {
            Some(_) => Some(range_value?),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_are_found_in_any_lane() {
        for lane in 0..8 {
            for special in [b'"', b'\\', 0x00, 0x1f] {
                let mut w = [b'a'; 8];
                w[lane] = special;
                assert!(
                    has_string_special(u64::from_ne_bytes(w)),
                    "{lane} {special}"
                );
            }
            let mut w = [b'a'; 8];
            w[lane] = 0xc3;
            assert!(!has_string_special(u64::from_ne_bytes(w)));
            w[lane] = b' ';
            assert!(!has_string_special(u64::from_ne_bytes(w)));
        }
    }

    #[test]
    fn strings() {
        let mut s = Scanner::new(r#""plain text, long enough for words" "a\"b\u00e9""#);
        assert_eq!(
            s.string(),
            Some(("plain text, long enough for words", false))
        );
        assert_eq!(s.string(), Some((r#"a\"b\u00e9"#, true)));
        for bad in [
            r#""\ud800""#,
            r#""\x""#,
            "\"a\u{1}b\"",
            r#""\u12g4""#,
            r#""open"#,
        ] {
            assert_eq!(Scanner::new(bad).string(), None, "{bad}");
        }
    }

    #[test]
    fn numbers() {
        for good in ["0", "-0", "1.5", "12e3", "1E+125", "-1.0e-130"] {
            let mut s = Scanner::new(good);
            assert!(s.number().is_some() && s.pos == good.len(), "{good}");
        }
        for bad in ["-", "1.", ".5", "1e", "+1"] {
            let mut s = Scanner::new(bad);
            assert!(s.number().is_none() || s.pos != bad.len(), "{bad}");
        }
    }

    #[test]
    fn full_export_lines_give_their_item_and_keys() {
        let item = r#"{"sk":{"N":"12345678901234567890123456789012345678"},"x":{"L":[{"M":{"pk":{"S":"no"}}}]},"pk":{"S":"ü \"😀\""}}"#;
        let line = format!(r#"{{"Item":{item}}}"#);
        let got = full_export_item(&line, "pk", Some("sk")).unwrap();
        assert_eq!(got.item, item);
        assert_eq!(got.hash, r#"{"S":"ü \"😀\""}"#);
        assert_eq!(
            got.range,
            Some(r#"{"N":"12345678901234567890123456789012345678"}"#)
        );
        let no_range = full_export_item(&line, "sk", None).unwrap();
        assert_eq!((no_range.hash, no_range.range), (got.range.unwrap(), None));
        for unusual in [
            // Whitespace, a missing or duplicate key, an escaped name, other members,
            // a value the shape check refuses, trailing text.
            r#"{"Item": {"pk":{"S":"a"},"sk":{"N":"1"}}}"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}}} "#,
            r#"{"Item":{"pk":{"S":"a"}}}"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"pk":{"S":"b"}}}"#,
            r#"{"Item":{"p\u006b":{"S":"a"},"sk":{"N":"1"}}}"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}},"Other":1}"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"x"}}}"#,
            r#"{"Items":{"pk":{"S":"a"},"sk":{"N":"1"}}}"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}}}x"#,
            r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}}"#,
            r#"{"Item":[1]}"#,
        ] {
            assert_eq!(
                full_export_item(unusual, "pk", Some("sk")),
                None,
                "{unusual}"
            );
        }
    }

    #[test]
    fn items_follow_the_shape_check() {
        let good = [
            r#"{}"#,
            r#"{"a":{"S":"x"},"n":{"N":"-1.5E+3"},"b":{"BOOL":false},"z":{"NULL":true}}"#,
            r#"{"s":{"SS":["a","b"]},"ns":{"NS":["1","2.5"]},"bs":{"BS":["AA=="]}}"#,
            r#"{"m":{"M":{"l":{"L":[{"S":"x"},{"M":{}}]}}},"e\u00e9":{"B":"AA=="}}"#,
        ];
        for item in good {
            assert!(super::super::dynamo_json::validate_item(item).is_ok());
            let mut s = Scanner::new(item);
            assert_eq!(s.item(0), Some(item), "{item}");
        }
        let bad = [
            r#"{"a":{}}"#,
            r#"{"a":{"X":"x"}}"#,
            r#"{"a":{"N":"1x"}}"#,
            r#"{"a":{"S":"x","N":"1"}}"#,
            r#"{"a":{"NS":["1","x"]}}"#,
            r#"{"a":{"BOOL":"true"}}"#,
            r#"{"a":{"L":[{"S":1}]}}"#,
            r#"[]"#,
        ];
        for item in bad {
            assert!(super::super::dynamo_json::validate_item(item).is_err());
            assert_eq!(Scanner::new(item).item(0), None, "{item}");
        }
    }

    #[test]
    fn whitespace_is_noted() {
        let (text, scanned) =
            whole_record(r#" {"eventID":"1","dynamodb":{"Keys":{}}} "#).expect("a record");
        assert_eq!(text, r#"{"eventID":"1","dynamodb":{"Keys":{}}}"#);
        assert!(scanned.compact);
        let (_, scanned) =
            whole_record(r#"{"eventID":"1", "dynamodb":{"Keys":{}}}"#).expect("a record");
        assert!(!scanned.compact);
    }

    fn split(text: &str) -> Option<Vec<(usize, Element<'_>)>> {
        documents(text, |index, element| (index, element))
    }

    #[test]
    fn unusual_documents_go_to_the_general_path() {
        assert!(split(r#"{"Records":[]}"#).is_some());
        assert!(split(r#"{"Records":[],"Records":[]}"#).is_none());
        assert!(split(r#"{"Records":null}"#).is_none());
        assert!(split(r#"{"Records":[{}]"#).is_none());
        assert!(split(r#"{"eventID":"1","dynamodb":{}}"#).is_none());
        assert!(split("").is_none());
        let docs = split(r#"{"Records":[{"eventID":"1"},[1],{"eventID":"a\"b"}]}"#).expect("valid");
        assert!(matches!(docs[0], (0, Element::Read(..))));
        assert!(matches!(docs[1], (1, Element::Other("[1]"))));
        assert!(matches!(docs[2], (2, Element::Other(_))));
    }

    /// The usual inputs must be read by the fast path, or the speed of decoding is lost
    /// without any test noticing.
    #[test]
    fn usual_records_take_the_fast_path() {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        let example = include_str!("../../examples/events/invoices-stream.json");
        let docs = split(example).expect("the example event");
        assert!(docs.len() > 1);
        assert!(docs.iter().all(|(_, e)| matches!(e, Element::Read(..))));
        // A Kinesis record as Kinesis Data Streams for DynamoDB writes it.
        let payload = r#"{"awsRegion":"eu-west-1","eventID":"e1","eventName":"INSERT","userIdentity":null,"recordFormat":"application/json","tableName":"invoices","dynamodb":{"ApproximateCreationDateTime":1767225600613,"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"}},"SizeBytes":12},"eventSource":"aws:dynamodb"}"#;
        let event = format!(
            r#"{{"Records":[{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"K","sequenceNumber":"4959","data":"{}","approximateArrivalTimestamp":1767225600.613}},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000000:4959","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::1:role/r","awsRegion":"eu-west-1","eventSourceARN":"arn:aws:kinesis:eu-west-1:1:stream/s"}}]}}"#,
            STANDARD.encode(payload)
        );
        let docs = split(&event).expect("the Kinesis event");
        assert!(matches!(docs[0], (0, Element::Read(..))));
        let (text, scanned) = whole_record(payload).expect("the payload");
        assert_eq!(text, payload);
        assert!(scanned.compact && scanned.stream.is_some() && scanned.kinesis.is_none());
    }
}
