//! Restore on Athena: the SQL that computes a table's state at a time T over the view
//! of both layers ([`Layer::View`], every change once whichever days are compacted) and
//! writes it as DynamoDB import-from-S3 input, for archives too big for one machine.
//!
//! The order rule is restore's: the changes at or before T, each event once (the
//! earliest copy by time and then sequence number as a number, wherever its copies
//! sort: a Kinesis copy may fall on another day than the view's per-day numbering
//! sees), and for every item key the latest of them by `approximate_creation_time`,
//! then sequence number as a number (`length`, then text), then `event_id`; items whose
//! latest change is a `REMOVE` are left out. A baseline row (sequence number `0`)
//! sorts first at its millisecond, as everywhere.
//!
//! Each item becomes one line of text, `{"Item":` + the stored `new_image` + `}`: the
//! image is the JSON text that arrived (whitespace removed), concatenated as text and
//! never parsed, so every number keeps its digits. `UNLOAD ... WITH (format =
//! 'TEXTFILE', compression = 'GZIP')` writes a single `varchar` column as the line
//! itself: the text writer puts the field delimiter between columns only (there are no
//! others), escapes nothing by default, ends each row with a newline, and writes NULL
//! as `\N`. The text has no raw newline (JSON strings escape control characters), so
//! each line is exactly the import line `restore --import-format` writes.
//!
//! [`LayerSet::restore_select`] is the `SELECT` alone (the tests run it in Spark and
//! DuckDB); [`LayerSet::restore_sql`] wraps it in the `UNLOAD`.

use chrono::{DateTime, Datelike, Utc};

use super::layer::{Layer, LayerSet};
use crate::model::item::canonical_key;
use crate::model::Location;

/// A `--key` or `--export-location` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RestoreSqlError {
    /// The key is not DynamoDB JSON of one to two key attributes.
    #[error("invalid --key: {0}")]
    Key(String),
    /// The export location is not an S3 prefix Athena can write to.
    #[error("invalid --export-location {location:?}: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One item's key, as the texts its `keys` column can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTexts(Vec<String>);

impl KeyTexts {
    /// The texts of the key given as DynamoDB JSON (`{"pk":{"S":"INV#1001"}}`): the
    /// attributes in every order (values minified, as archived), and the canonical
    /// text ([`canonical_key`]). Restore's `--key` matches a row whose keys are the
    /// given text minified or have the same canonical text; these texts match the same
    /// rows unless a row's keys spell a character with another JSON escape than the
    /// key given (`\u0041` for `A`).
    pub fn parse(key: &str) -> Result<Self, RestoreSqlError> {
        let bad = RestoreSqlError::Key;
        crate::decode::dynamo_json::validate_item(key).map_err(bad)?;
        let canonical = canonical_key(key).map_err(bad)?;
        let members = raw_members(key)?;
        let text = |order: &[usize]| {
            let parts: Vec<String> = order
                .iter()
                .map(|&i| {
                    let (name, raw) = &members[i];
                    format!(
                        "{}:{}",
                        serde_json::Value::String(name.clone()),
                        crate::decode::minify_json(raw.get())
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        };
        let orders: Vec<Vec<usize>> = match members.len() {
            1 => vec![vec![0]],
            2 => vec![vec![0, 1], vec![1, 0]],
            n => {
                return Err(bad(format!(
                    "a DynamoDB key has one or two attributes, this one has {n}"
                )))
            }
        };
        let mut texts = vec![crate::decode::minify_json(key)];
        texts.extend(orders.iter().map(|o| text(o)));
        texts.push(canonical);
        let mut seen = std::collections::BTreeSet::new();
        texts.retain(|t| seen.insert(t.clone()));
        Ok(KeyTexts(texts))
    }

    /// The texts, the key as given first.
    pub fn texts(&self) -> &[String] {
        &self.0
    }
}

/// The members of a JSON object as (name, raw value) pairs, in the order written.
fn raw_members(
    key: &str,
) -> Result<Vec<(String, Box<serde_json::value::RawValue>)>, RestoreSqlError> {
    struct Members(Vec<(String, Box<serde_json::value::RawValue>)>);
    impl<'de> serde::Deserialize<'de> for Members {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Members;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Members, A::Error> {
                    let mut out = Vec::new();
                    while let Some(pair) = map.next_entry()? {
                        out.push(pair);
                    }
                    Ok(Members(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Members>(key)
        .map(|m| m.0)
        .map_err(|e| RestoreSqlError::Key(e.to_string()))
}

/// An Athena string literal (quotes doubled).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A double-quoted identifier (the names used here are fixed or validated).
fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

/// The export location as `s3://bucket/prefix/`, checked.
pub fn export_location(location: &str) -> Result<String, RestoreSqlError> {
    let bad = |reason: &str| RestoreSqlError::Location {
        location: location.to_string(),
        reason: reason.to_string(),
    };
    match Location::parse(location) {
        Ok(Location::S3 { bucket, prefix }) => {
            if prefix.is_empty() {
                return Err(bad(
                    "give a prefix: UNLOAD needs an empty folder, and the import reads all of it",
                ));
            }
            let url = format!("s3://{bucket}/{prefix}");
            if url.contains('\'') || url.chars().any(char::is_control) {
                return Err(bad("quotes and control characters are not allowed"));
            }
            Ok(url)
        }
        Ok(Location::Local(_)) => Err(bad("Athena writes to S3: give s3://bucket/prefix/")),
        Err(e) => Err(bad(&e.reason)),
    }
}

impl LayerSet {
    /// The `SELECT` of the state at `as_of` (milliseconds are kept, finer digits
    /// dropped, as restore does) over the view, of `key`'s item only when given: one
    /// `varchar` column `line`, one `{"Item":...}` import line per item present at T.
    pub fn restore_select(&self, as_of: DateTime<Utc>, key: Option<&KeyTexts>) -> String {
        let t = as_of.format("%Y-%m-%d %H:%M:%S%.3f");
        let (y, m, d) = (
            format!("{:04}", as_of.year()),
            format!("{:02}", as_of.month()),
            format!("{:02}", as_of.day()),
        );
        let (year, month, day) = (ident("year"), ident("month"), ident("day"));
        // Days up to T's, as partition conditions the view pushes down to both layers.
        let days = format!(
            "({year} < '{y}' OR ({year} = '{y}' AND ({month} < '{m}' OR ({month} = '{m}' AND {day} <= '{d}')))) "
        );
        let key_condition = key.map_or(String::new(), |k| {
            let texts: Vec<String> = k.texts().iter().map(|t| literal(t)).collect();
            format!("\n      AND \"keys\" IN ({})", texts.join(", "))
        });
        format!(
            "SELECT '{{\"Item\":' || \"new_image\" || '}}' AS \"line\"\n\
             FROM (\n  \
               SELECT \"event_name\", \"new_image\", row_number() OVER (\n    \
                 PARTITION BY \"keys\"\n    \
                 ORDER BY \"approximate_creation_time\" DESC, length(\"sequence_number\") DESC,\n             \
                 \"sequence_number\" DESC, \"event_id\" DESC\n  \
               ) AS \"_latest\"\n  \
               FROM (\n    \
                 SELECT \"event_id\", \"event_name\", \"keys\", \"approximate_creation_time\",\n           \
                 \"sequence_number\", \"new_image\", row_number() OVER (\n      \
                   PARTITION BY \"event_id\"\n      \
                   ORDER BY \"approximate_creation_time\", length(\"sequence_number\"), \"sequence_number\"\n    \
                 ) AS \"_copy\"\n    \
                 FROM {view}\n    \
                 WHERE {days}\n      \
                 AND \"approximate_creation_time\" <= TIMESTAMP '{t}'{key_condition}\n  \
               ) AS copies\n  \
               WHERE \"_copy\" = 1\n\
             ) AS ranked\n\
             WHERE \"_latest\" = 1 AND \"event_name\" <> 'REMOVE'",
            view = self.qualified(Layer::View),
            days = days.trim_end(),
        )
    }

    /// `UNLOAD (<restore_select>) TO '<location>' WITH (format = 'TEXTFILE',
    /// compression = 'GZIP')`: gzip files of `{"Item":...}` lines under `location`,
    /// which must be empty, for `ImportTable` (`DYNAMODB_JSON`, `GZIP`).
    pub fn restore_sql(
        &self,
        as_of: DateTime<Utc>,
        key: Option<&KeyTexts>,
        location: &str,
    ) -> Result<String, RestoreSqlError> {
        let location = export_location(location)?;
        Ok(format!(
            "UNLOAD (\n{}\n)\nTO {}\nWITH (format = 'TEXTFILE', compression = 'GZIP');\n",
            self.restore_select(as_of, key),
            literal(&location)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Format;

    fn set() -> LayerSet {
        LayerSet::new("invoices", None, Format::Parquet, Some("archive"), None).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn key_texts_cover_both_orders_and_the_canonical_text() {
        let k = KeyTexts::parse(r#"{ "sk" : {"N":"10"}, "pk":{"S":"a'b"} }"#).unwrap();
        assert_eq!(
            k.texts(),
            [
                r#"{"sk":{"N":"10"},"pk":{"S":"a'b"}}"#,
                r#"{"pk":{"S":"a'b"},"sk":{"N":"10"}}"#,
            ]
        );
        let one = KeyTexts::parse(r#"{"pk":{"S":"\u0041"}}"#).unwrap();
        assert_eq!(
            one.texts(),
            [r#"{"pk":{"S":"\u0041"}}"#, r#"{"pk":{"S":"A"}}"#]
        );
        for bad in [
            "{",
            "[]",
            r#"{"pk":{"X":"1"}}"#,
            r#"{"a":{"S":"1"},"b":{"S":"1"},"c":{"S":"1"}}"#,
        ] {
            assert!(KeyTexts::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn select_orders_as_restore_and_bounds_the_days() {
        let key = KeyTexts::parse(r#"{"pk":{"S":"a'b"}}"#).unwrap();
        let sql = set().restore_select(t("2026-03-02T18:30:00.1239Z"), Some(&key));
        assert!(sql.contains("FROM \"archive\".\"invoices_all\""), "{sql}");
        assert!(
            sql.contains("\"approximate_creation_time\" <= TIMESTAMP '2026-03-02 18:30:00.123'"),
            "{sql}"
        );
        assert!(sql.contains("(\"year\" < '2026' OR (\"year\" = '2026' AND (\"month\" < '03' OR (\"month\" = '03' AND \"day\" <= '02'))))"), "{sql}");
        assert!(
            sql.contains("AND \"keys\" IN ('{\"pk\":{\"S\":\"a''b\"}}')"),
            "{sql}"
        );
        assert!(sql.contains("ORDER BY \"approximate_creation_time\" DESC, length(\"sequence_number\") DESC,\n             \"sequence_number\" DESC, \"event_id\" DESC"), "{sql}");
        assert!(sql.ends_with("WHERE \"_latest\" = 1 AND \"event_name\" <> 'REMOVE'"));
        assert!(!set()
            .restore_select(t("2026-03-02T18:30:00Z"), None)
            .contains("\"keys\" IN"));
    }

    #[test]
    fn unload_wraps_the_select() {
        let s = set();
        let at = t("2026-03-02T18:30:00Z");
        let sql = s.restore_sql(at, None, "s3://b/restores/x").unwrap();
        assert_eq!(
            sql,
            format!(
                "UNLOAD (\n{}\n)\nTO 's3://b/restores/x/'\nWITH (format = 'TEXTFILE', compression = 'GZIP');\n",
                s.restore_select(at, None)
            )
        );
        for bad in ["s3://b", "s3://b/", "/tmp/x", "s3://b/it's", "http://b/x"] {
            assert!(s.restore_sql(at, None, bad).is_err(), "{bad}");
        }
    }
}
