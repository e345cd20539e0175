//! Rejected: the records of the table that the archiver could not archive and kept under
//! `_rejected/` instead. A state at T rebuilt without them may be wrong for their items
//! (a rejected REMOVE leaves an item that should be absent), so restore counts them
//! before anything is written and refuses unless `--allow-rejected`.
//!
//! `_rejected/` objects are partitioned by the date they were processed, which says
//! little about the changes' own times, so every object is read. Each line holds
//! `source`, `index`, `event_id`, `sequence_number`, `reason` and the raw `record`. The
//! record's table is read as the archiver reads it: a DynamoDB Streams record's
//! `eventSourceARN` (`...:table/<name>/stream/...`) or `tableName`; a Kinesis record's
//! change, decoded from `kinesis.data`, its `tableName` or `eventSourceARN`. Its time is
//! `dynamodb.ApproximateCreationDateTime`. A record counts when its table is the
//! restored one or cannot be told, and its time is at or before T or cannot be read.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::archive::reader::gunzip;
use crate::archive::source::ArchiveSource;
use crate::decode::{parse_epoch, table_from_arn, TimeUnit};
use crate::model::key::{ObjectKey, REJECTED_DIR};

use super::{listed, RestoreError, NAMED};

/// One rejected record that counts against the restore.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The `_rejected/` object and the line in it, from 1.
    pub location: String,
    /// `event_id`, when it was readable.
    pub event_id: Option<String>,
    /// The record's table, when it can be told.
    pub table: Option<String>,
    /// Why it was rejected.
    pub reason: String,
}

impl std::fmt::Display for RejectedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.event_id.as_deref().unwrap_or("(no event ID)");
        match &self.table {
            Some(_) => write!(f, "{id} at {} ({})", self.location, self.reason),
            None => write!(
                f,
                "{id} of unknown table at {} ({})",
                self.location, self.reason
            ),
        }
    }
}

/// The rejected records that count against a restore.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RejectedRecords {
    /// How many there are.
    pub count: usize,
    /// How many of them are of a table that cannot be told.
    pub unknown_table: usize,
    /// The first [`NAMED`] of them, in the order of the objects' keys and their lines.
    pub named: Vec<RejectedRecord>,
}

impl RejectedRecords {
    /// How many there are, those of an unknown table, and the named ones, `; `-joined,
    /// then how many more there are.
    pub fn describe(&self) -> String {
        let unknown = match self.unknown_table {
            0 => String::new(),
            n => format!(", {n} of them of a table that cannot be told"),
        };
        let named: Vec<String> = self.named.iter().map(ToString::to_string).collect();
        format!(
            "{} rejected records at or before T under _rejected/{unknown}: {}",
            self.count,
            listed(&named, self.count, "; ")
        )
    }
}

/// One line of a `_rejected/` object.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(borrow, default)]
    record: Option<&'a RawValue>,
}

/// The members of a JSON object, as raw texts.
type Members<'a> = BTreeMap<String, &'a RawValue>;

fn members(text: &str) -> Option<Members<'_>> {
    serde_json::from_str(text).ok()
}

fn string(members: &Members<'_>, name: &str) -> Option<String> {
    members
        .get(name)
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

/// The table and time (milliseconds) of a change record in the Streams shape (or a
/// Kinesis record's decoded change), as far as they can be read.
fn change_table_and_time(
    change: &Members<'_>,
    arn_first: bool,
    unit: TimeUnit,
) -> (Option<String>, Option<i64>) {
    let arn = string(change, "eventSourceARN");
    let from_arn = table_from_arn(arn.as_deref()).map(str::to_string);
    let named = string(change, "tableName");
    let table = if arn_first {
        from_arn.or(named)
    } else {
        named.or(from_arn)
    };
    let dynamodb = change.get("dynamodb").and_then(|d| members(d.get()));
    let time = dynamodb.as_ref().and_then(|d| {
        let unit = match string(d, "ApproximateCreationDateTimePrecision").as_deref() {
            Some("MICROSECOND") => TimeUnit::Micros,
            _ => unit,
        };
        d.get("ApproximateCreationDateTime")
            .and_then(|t| parse_epoch(t.get(), unit).ok())
    });
    (table, time)
}

/// The table and time of a rejected record, as far as they can be read.
pub fn table_and_time(record: &str) -> (Option<String>, Option<i64>) {
    let Some(outer) = members(record) else {
        return (None, None);
    };
    let Some(kinesis) = outer.get("kinesis").and_then(|k| members(k.get())) else {
        return change_table_and_time(&outer, true, TimeUnit::SecondsOrMillis);
    };
    let change = string(&kinesis, "data")
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match change.as_deref().and_then(members) {
        Some(change) => change_table_and_time(&change, false, TimeUnit::Millis),
        None => (None, None),
    }
}

/// Reads every `_rejected/` object of `source` and gathers the records of `table` (or
/// of no table that can be told) at or before `as_of_ms` (or of no readable time).
pub async fn find(
    source: &dyn ArchiveSource,
    table: &str,
    as_of_ms: i64,
) -> Result<RejectedRecords, RestoreError> {
    let mut found = RejectedRecords::default();
    let mut keys: Vec<String> = source
        .list(&format!("{REJECTED_DIR}/"))
        .await?
        .into_iter()
        .filter(|k| matches!(ObjectKey::parse(k), Some(ObjectKey::Rejected { .. })))
        .collect();
    keys.sort();
    for key in keys {
        let location = source.location(&key);
        let text = gunzip(&source.get(&key).await?, &location)?;
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let at = format!("{location} line {}", i + 1);
            let parsed: Option<Line<'_>> = serde_json::from_slice(line).ok();
            let (event_id, reason, record) = match parsed {
                Some(l) => (l.event_id, l.reason, l.record),
                None => (None, Some("the line is not a rejected record".into()), None),
            };
            let (record_table, time) = record.map_or((None, None), |r| table_and_time(r.get()));
            let ours = record_table.as_deref().is_none_or(|t| t == table);
            if !ours || time.is_some_and(|t| t > as_of_ms) {
                continue;
            }
            found.count += 1;
            found.unknown_table += usize::from(record_table.is_none());
            if found.named.len() < NAMED {
                found.named.push(RejectedRecord {
                    location: at,
                    event_id,
                    table: record_table,
                    reason: reason.unwrap_or_default(),
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_times_of_both_shapes() {
        let stream = r#"{"eventID":"e1","eventName":"REMOVE","eventSourceARN":"arn:aws:dynamodb:r:1:table/orders/stream/x","dynamodb":{"ApproximateCreationDateTime":1767225600,"Keys":{"pk":{"Q":"x"}},"SequenceNumber":"1"}}"#;
        assert_eq!(
            table_and_time(stream),
            (Some("orders".into()), Some(1_767_225_600_000))
        );
        let named = r#"{"tableName":"t2","dynamodb":{"ApproximateCreationDateTime":"nope"}}"#;
        assert_eq!(table_and_time(named), (Some("t2".into()), None));
        let payload = r#"{"eventID":"k1","tableName":"inv","dynamodb":{"ApproximateCreationDateTime":1767225600613123,"ApproximateCreationDateTimePrecision":"MICROSECOND"}}"#;
        let data = base64::engine::general_purpose::STANDARD.encode(payload);
        let kinesis = format!(
            r#"{{"kinesis":{{"sequenceNumber":"4959","data":"{data}"}},"eventSourceARN":"arn:aws:kinesis:r:1:stream/s"}}"#
        );
        assert_eq!(
            table_and_time(&kinesis),
            (Some("inv".into()), Some(1_767_225_600_613))
        );
        let undecodable = r#"{"kinesis":{"data":"%%%"},"eventSourceARN":"arn:aws:dynamodb:r:1:table/orders/stream/x"}"#;
        assert_eq!(table_and_time(undecodable), (None, None));
        for unknown in ["[1,2]", "\"text\"", r#"{"eventSourceARN":"stream-ARN"}"#] {
            assert_eq!(table_and_time(unknown), (None, None), "{unknown}");
        }
    }
}
