//! Coverage: what the archive holds of a table besides its stream changes, as records
//! stored under the archive root at `ddb-archiver-coverage/<table>/<kind>-<id>.json`
//! (outside every table's Athena location).
//!
//! - A **baseline** record says that the table's items as of `complete_from` are in the
//!   archive (a full export, or a Scan), so the table is complete from that time on.
//! - A **repair** record says that an incremental export's window (`window`) was archived
//!   to fill a gap in the stream archive.
//!
//! A record is written last, create-only, after every object it lists was written.
//!
//! It also holds the representation of the rows that did not come from a stream (no
//! column was added): their `sequence_number` is [`NON_STREAM_SEQUENCE_NUMBER`], their
//! `event_id` begins with [`BASELINE_EVENT_PREFIX`] (full export or Scan) or
//! [`EXPORT_EVENT_PREFIX`] (incremental export), followed by 32 lowercase hex digits of
//! SHA-256 (see [`baseline_event_id`], [`scan_event_id`], [`export_event_id`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hex::hex;

/// The folder under the archive root that holds coverage records. A table of this name
/// would share the folder and is not supported.
pub const COVERAGE_DIR: &str = "ddb-archiver-coverage";

/// The largest coverage record read or written, in bytes (16 MiB).
pub const COVERAGE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The record format this code writes and reads.
pub const COVERAGE_FORMAT: u32 = 1;

/// `sequence_number` of every row that did not come from a stream (baseline or export
/// row). It sorts before every stream change at the same millisecond.
pub const NON_STREAM_SEQUENCE_NUMBER: &str = "0";

/// `event_id` prefix of a baseline row (full export or Scan).
pub const BASELINE_EVENT_PREFIX: &str = "baseline-";

/// `event_id` prefix of a gap-repair row (incremental export).
pub const EXPORT_EVENT_PREFIX: &str = "export-";

/// Hex digits after the prefix of a baseline or export event ID.
pub const EVENT_ID_HEX_DIGITS: usize = 32;

fn event_id(prefix: &str, material: &str) -> String {
    let hash = Sha256::digest(material.as_bytes());
    format!("{prefix}{}", hex(&hash[..EVENT_ID_HEX_DIGITS / 2]))
}

/// The event ID of a full export's item: `baseline-` and the first 32 hex digits of
/// SHA-256 over `export ARN + "\n" + canonical key` ([`super::item::canonical_key`]).
pub fn baseline_event_id(export_arn: &str, canonical_key: &str) -> String {
    event_id(
        BASELINE_EVENT_PREFIX,
        &format!("{export_arn}\n{canonical_key}"),
    )
}

/// The event ID of a Scan's item: `baseline-` and the first 32 hex digits of SHA-256 over
/// `"scan:" + table + ":" + scan start ms + "\n" + canonical key`.
pub fn scan_event_id(table: &str, scan_start_ms: i64, canonical_key: &str) -> String {
    event_id(
        BASELINE_EVENT_PREFIX,
        &format!("scan:{table}:{scan_start_ms}\n{canonical_key}"),
    )
}

/// The event ID of an incremental export's line: `export-` and the first 32 hex digits of
/// SHA-256 over `export ARN + "\n" + canonical key + "\n" + write time micros`.
pub fn export_event_id(export_arn: &str, canonical_key: &str, write_time_micros: i64) -> String {
    event_id(
        EXPORT_EVENT_PREFIX,
        &format!("{export_arn}\n{canonical_key}\n{write_time_micros}"),
    )
}

/// Whether a row did not come from a stream (a baseline or export row): its sequence
/// number is [`NON_STREAM_SEQUENCE_NUMBER`].
pub fn is_non_stream(sequence_number: &str) -> bool {
    sequence_number == NON_STREAM_SEQUENCE_NUMBER
}

/// Which kind of coverage a record gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoverageKind {
    /// The table's items as of a time (full export or Scan).
    Baseline,
    /// A window of changes from an incremental export (gap repair).
    Repair,
}

impl CoverageKind {
    /// `baseline` or `repair`, as in keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageKind::Baseline => "baseline",
            CoverageKind::Repair => "repair",
        }
    }

    /// Parses `baseline` or `repair`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "baseline" => Some(CoverageKind::Baseline),
            "repair" => Some(CoverageKind::Repair),
            _ => None,
        }
    }
}

/// Where the covered items were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoverageSource {
    /// A DynamoDB export (full or incremental).
    Export,
    /// A parallel Scan of the table.
    Scan,
}

/// The type of the export, or `SCAN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CoverageExportType {
    /// `FULL_EXPORT`.
    FullExport,
    /// `INCREMENTAL_EXPORT`.
    IncrementalExport,
    /// `SCAN`: a Scan, not an export.
    Scan,
}

/// A window of time, both ends in milliseconds since the Unix epoch (stored as
/// ISO 8601 UTC text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageWindow {
    /// Start of the window (an incremental export's `exportFromTime`).
    #[serde(with = "time_ms")]
    pub from: i64,
    /// End of the window (an incremental export's `exportToTime`).
    #[serde(with = "time_ms")]
    pub to: i64,
}

/// One coverage record, as stored in JSON. Times are milliseconds since the Unix epoch
/// in memory and ISO 8601 UTC text (`2026-03-01T12:00:00.000Z`) in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageRecord {
    /// [`COVERAGE_FORMAT`].
    pub format: u32,
    /// The table's name.
    pub table: String,
    /// Baseline or repair.
    pub kind: CoverageKind,
    /// Export or Scan.
    pub source: CoverageSource,
    /// The export's ARN; `None` for a Scan.
    pub export_arn: Option<String>,
    /// The export's type, or `SCAN`.
    pub export_type: CoverageExportType,
    /// Baseline: the export time, or the Scan's end time; repair: `None`.
    #[serde(with = "opt_time_ms")]
    pub complete_from: Option<i64>,
    /// Repair: the incremental export's window; baseline: `None`.
    pub window: Option<CoverageWindow>,
    /// Items (lines) read from the export or the Scan.
    pub item_count: u64,
    /// Changes archived.
    pub change_count: u64,
    /// Keys of the objects written or found present, relative to the archive root,
    /// sorted.
    pub objects: Vec<String>,
    /// When the record was written.
    #[serde(with = "time_ms")]
    pub recorded_at: i64,
}

impl CoverageRecord {
    /// The record's key: [`coverage_key`] of its table and kind, and `id`.
    pub fn key(&self, id: &str) -> Result<String, String> {
        coverage_key(&self.table, self.kind, id)
    }

    /// The record as pretty JSON with a final newline (the stored bytes).
    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        let mut out = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        out.push(b'\n');
        if out.len() > COVERAGE_MAX_BYTES {
            return Err(format!(
                "the coverage record is {} bytes, more than the {COVERAGE_MAX_BYTES} allowed",
                out.len()
            ));
        }
        Ok(out)
    }

    /// Parses a stored record, refusing one over [`COVERAGE_MAX_BYTES`], of another
    /// format, or whose fields contradict each other (kind against `complete_from` and
    /// `window`, source against `export_arn` and `export_type`, an invalid table name).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > COVERAGE_MAX_BYTES {
            return Err(format!(
                "the coverage record is {} bytes, more than the {COVERAGE_MAX_BYTES} allowed",
                bytes.len()
            ));
        }
        let r: CoverageRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        r.check()?;
        Ok(r)
    }

    /// Checks the record's fields against each other (see [`CoverageRecord::from_json`]).
    pub fn check(&self) -> Result<(), String> {
        if self.format != COVERAGE_FORMAT {
            return Err(format!(
                "coverage record format {} is not {COVERAGE_FORMAT}, the one this version reads",
                self.format
            ));
        }
        check_segment(&self.table).map_err(|e| format!("the coverage record's table: {e}"))?;
        match self.kind {
            CoverageKind::Baseline if self.complete_from.is_none() => {
                return Err("a baseline coverage record has no complete_from".into())
            }
            CoverageKind::Repair if self.window.is_none() => {
                return Err("a repair coverage record has no window".into())
            }
            _ => {}
        }
        if let Some(w) = self.window {
            if w.from > w.to {
                return Err("the coverage record's window ends before it begins".into());
            }
        }
        match (self.source, &self.export_arn, self.export_type) {
            (CoverageSource::Scan, None, CoverageExportType::Scan) => {}
            (CoverageSource::Export, Some(_), CoverageExportType::FullExport)
                if self.kind == CoverageKind::Baseline => {}
            (CoverageSource::Export, Some(_), CoverageExportType::IncrementalExport)
                if self.kind == CoverageKind::Repair => {}
            _ => {
                return Err(format!(
                    "the coverage record's kind {}, source {:?}, export type {:?} and export ARN do not fit together",
                    self.kind.as_str(),
                    self.source,
                    self.export_type
                ))
            }
        }
        Ok(())
    }
}

fn check_segment(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not made of A-Z, a-z, 0-9, '.', '_', '-'"))
    }
}

/// The key of a coverage record: `ddb-archiver-coverage/<table>/<kind>-<id>.json`.
/// `table` and `id` must match `[A-Za-z0-9._-]+` (and not be `.` or `..`).
pub fn coverage_key(table: &str, kind: CoverageKind, id: &str) -> Result<String, String> {
    check_segment(table).map_err(|e| format!("coverage table: {e}"))?;
    check_segment(id).map_err(|e| format!("coverage id: {e}"))?;
    Ok(format!(
        "{COVERAGE_DIR}/{table}/{}-{id}.json",
        kind.as_str()
    ))
}

/// The prefix of a table's coverage records: `ddb-archiver-coverage/<table>/`.
pub fn coverage_table_prefix(table: &str) -> String {
    format!("{COVERAGE_DIR}/{table}/")
}

/// Parses a key made by [`coverage_key`] into table, kind and id; `None` for any other
/// key.
pub fn parse_coverage_key(key: &str) -> Option<(String, CoverageKind, String)> {
    let rest = key.strip_prefix(COVERAGE_DIR)?.strip_prefix('/')?;
    let (table, file) = rest.split_once('/')?;
    let stem = file.strip_suffix(".json")?;
    let (kind, id) = stem.split_once('-')?;
    let kind = CoverageKind::parse(kind)?;
    check_segment(table).ok()?;
    check_segment(id).ok()?;
    Some((table.to_string(), kind, id.to_string()))
}

/// A millisecond time as ISO 8601 UTC text with milliseconds: `2026-03-01T12:00:00.000Z`.
pub fn format_time_ms(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Parses RFC 3339 text into milliseconds since the Unix epoch (sub-millisecond digits
/// are cut off).
pub fn parse_time_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

mod time_ms {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        match super::format_time_ms(*ms) {
            Some(t) => s.serialize_str(&t),
            None => Err(serde::ser::Error::custom(format!(
                "{ms} ms is out of the range of times"
            ))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let t = String::deserialize(d)?;
        super::parse_time_ms(&t)
            .ok_or_else(|| serde::de::Error::custom(format!("{t:?} is not an RFC 3339 time")))
    }
}

mod opt_time_ms {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => super::time_ms::serialize(ms, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(t) => super::parse_time_ms(&t)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{t:?} is not an RFC 3339 time"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> CoverageRecord {
        CoverageRecord {
            format: COVERAGE_FORMAT,
            table: "invoices".into(),
            kind: CoverageKind::Baseline,
            source: CoverageSource::Export,
            export_arn: Some(
                "arn:aws:dynamodb:eu-west-1:123456789012:table/invoices/export/01234-abcd".into(),
            ),
            export_type: CoverageExportType::FullExport,
            complete_from: Some(1_772_366_400_000),
            window: None,
            item_count: 309,
            change_count: 309,
            objects: vec!["invoices/year=2026/month=03/day=01/0-0-0123456789abcdef.parquet".into()],
            recorded_at: 1_772_366_401_234,
        }
    }

    #[test]
    fn keys_round_trip() {
        for (table, kind, id) in [
            (
                "invoices",
                CoverageKind::Baseline,
                "01234567890123-abcdefgh",
            ),
            ("t.a_b-c", CoverageKind::Repair, "scan-1772366400000"),
        ] {
            let key = coverage_key(table, kind, id).unwrap();
            assert!(key.starts_with("ddb-archiver-coverage/"));
            assert_eq!(
                parse_coverage_key(&key),
                Some((table.to_string(), kind, id.to_string()))
            );
        }
        assert_eq!(
            coverage_key("invoices", CoverageKind::Baseline, "x1").unwrap(),
            "ddb-archiver-coverage/invoices/baseline-x1.json"
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(coverage_key("a/b", CoverageKind::Baseline, "x").is_err());
        assert!(coverage_key("inv", CoverageKind::Baseline, "..").is_err());
        assert!(coverage_key("inv", CoverageKind::Baseline, "").is_err());
        assert!(coverage_key("inv", CoverageKind::Repair, "a b").is_err());
        for key in [
            "ddb-archiver-coverage/invoices/baseline-x.jsonl",
            "ddb-archiver-coverage/invoices/other-x.json",
            "ddb-archiver-coverage/invoices/baseline-.json",
            "ddb-archiver-coverage/invoices/sub/baseline-x.json",
            "ddb-archiver-coverage/../baseline-x.json",
            "other/invoices/baseline-x.json",
            "ddb-archiver-coverage/invoices/baselinex.json",
        ] {
            assert_eq!(parse_coverage_key(key), None, "{key}");
        }
    }

    #[test]
    fn record_json_round_trips_with_the_contract_fields() {
        let r = baseline();
        let json = r.to_json().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["format"], 1);
        assert_eq!(v["kind"], "baseline");
        assert_eq!(v["source"], "export");
        assert_eq!(v["export_type"], "FULL_EXPORT");
        assert_eq!(v["complete_from"], "2026-03-01T12:00:00.000Z");
        assert_eq!(v["window"], serde_json::Value::Null);
        assert_eq!(v["recorded_at"], "2026-03-01T12:00:01.234Z");
        assert_eq!(CoverageRecord::from_json(&json).unwrap(), r);

        let repair = CoverageRecord {
            kind: CoverageKind::Repair,
            export_type: CoverageExportType::IncrementalExport,
            complete_from: None,
            window: Some(CoverageWindow {
                from: 1_772_366_400_000,
                to: 1_772_373_600_000,
            }),
            ..baseline()
        };
        let json = repair.to_json().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["window"]["to"], "2026-03-01T14:00:00.000Z");
        assert_eq!(v["complete_from"], serde_json::Value::Null);
        assert_eq!(CoverageRecord::from_json(&json).unwrap(), repair);

        let scan = CoverageRecord {
            source: CoverageSource::Scan,
            export_arn: None,
            export_type: CoverageExportType::Scan,
            ..baseline()
        };
        let json = scan.to_json().unwrap();
        assert_eq!(CoverageRecord::from_json(&json).unwrap(), scan);
    }

    #[test]
    fn contradicting_or_foreign_records_are_refused() {
        let bad = [
            CoverageRecord {
                format: 2,
                ..baseline()
            },
            CoverageRecord {
                complete_from: None,
                ..baseline()
            },
            CoverageRecord {
                kind: CoverageKind::Repair,
                ..baseline()
            },
            CoverageRecord {
                export_arn: None,
                ..baseline()
            },
            CoverageRecord {
                table: "../x".into(),
                ..baseline()
            },
        ];
        for r in bad {
            let json = serde_json::to_vec(&r).unwrap();
            assert!(CoverageRecord::from_json(&json).is_err(), "{r:?}");
        }
        assert!(CoverageRecord::from_json(br#"{"format":1}"#).is_err());
        let mut json = baseline().to_json().unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        json = text
            .replace("2026-03-01T12:00:00.000Z", "yesterday")
            .into_bytes();
        assert!(CoverageRecord::from_json(&json).is_err());
        assert!(CoverageRecord::from_json(&vec![b' '; COVERAGE_MAX_BYTES + 1]).is_err());
    }

    #[test]
    fn event_ids_are_deterministic_and_prefixed() {
        let a = baseline_event_id("arn:x", r#"{"pk":{"S":"a"}}"#);
        assert_eq!(a, baseline_event_id("arn:x", r#"{"pk":{"S":"a"}}"#));
        assert!(a.starts_with(BASELINE_EVENT_PREFIX));
        assert_eq!(a.len(), BASELINE_EVENT_PREFIX.len() + EVENT_ID_HEX_DIGITS);
        assert_ne!(a, baseline_event_id("arn:y", r#"{"pk":{"S":"a"}}"#));
        let s = scan_event_id("t", 5, r#"{"pk":{"S":"a"}}"#);
        assert!(s.starts_with(BASELINE_EVENT_PREFIX));
        assert_ne!(s, scan_event_id("t", 6, r#"{"pk":{"S":"a"}}"#));
        let e = export_event_id("arn:x", r#"{"pk":{"S":"a"}}"#, 7);
        assert!(e.starts_with(EXPORT_EVENT_PREFIX));
        assert_ne!(e, export_event_id("arn:x", r#"{"pk":{"S":"a"}}"#, 8));
        // SHA-256("arn:x\n{\"pk\":{\"S\":\"a\"}}"), computed independently.
        let full = Sha256::digest(b"arn:x\n{\"pk\":{\"S\":\"a\"}}");
        assert_eq!(a, format!("baseline-{}", &hex(&full)[..32]));
        assert!(is_non_stream("0"));
        assert!(!is_non_stream("00"));
    }

    #[test]
    fn times_format_and_parse() {
        assert_eq!(
            format_time_ms(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            parse_time_ms("2026-03-01T12:00:00.000Z"),
            Some(1_772_366_400_000)
        );
        assert_eq!(
            parse_time_ms("2026-03-01T13:00:00+01:00"),
            Some(1_772_366_400_000)
        );
        assert_eq!(parse_time_ms("2026-03-01"), None);
    }
}
