//! Key: the object keys of the archive, built and parsed in one place.
//!
//! - A data object: `<table>/year=YYYY/month=MM/day=DD/<first>-<last>-<digest>.<ext>`,
//!   where `<first>` and `<last>` are the sequence numbers of its first and last
//!   change, `<digest>` 16 hex digits of [`crate::encode::record_set_digest`], and
//!   `<ext>` `parquet` or `json.gz`.
//! - A rejected-records object:
//!   `_rejected/year=YYYY/month=MM/day=DD/rejected-<digest>.json.gz`, under the
//!   processing date, `<digest>` 16 hex digits of SHA-256 over its uncompressed lines.
//!
//! In the compacted layer (its own root):
//! - A compacted file: `<table>/year=YYYY/month=MM/day=DD/compacted-<version>-<part>.parquet`,
//!   `<version>` 16 hex digits naming the set of raw objects it was made from, `<part>`
//!   three or more digits.
//! - A table-day's manifest:
//!   `ddb-archiver-manifests/<table>/year=YYYY/month=MM/day=DD/manifest.json`. No path
//!   part of a table location or of the manifests' location begins with `_` or `.`
//!   (Hive and Trino treat those as hidden). Manifests written before under
//!   `_manifests/` ([`LEGACY_MANIFESTS_DIR`]) are still read, and moved by the next
//!   compaction of their day.
//!
//! [`check_relative`] is the guard every local path goes through: a key taken from
//! storage never names a file outside the root it belongs to.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::format::Format;
use super::hex::DIGEST_HEX_DIGITS;

/// The folder under the archive root that holds rejected records.
pub const REJECTED_DIR: &str = "_rejected";

/// The folder under the compacted layer's root that holds the manifests. A table of
/// this name is not compacted (its files would share the folder).
pub const MANIFESTS_DIR: &str = "ddb-archiver-manifests";

/// Where manifests were kept before [`MANIFESTS_DIR`]: read, never written.
pub const LEGACY_MANIFESTS_DIR: &str = "_manifests";

/// Checks that a key is a plain relative key: not empty, no leading `/`, no empty,
/// `.` or `..` segment, no backslash or NUL. Every key joined to a local root goes
/// through it, so that no key read from storage (a manifest's, a listing's) reaches a
/// file outside that root.
pub fn check_relative(key: &str) -> Result<(), String> {
    let parts: Vec<&str> = key.split('/').collect();
    // An empty last part is a prefix's trailing slash.
    let inner = &parts[..parts.len().saturating_sub(1)];
    let bad = key.is_empty()
        || key.contains('\\')
        || key.contains('\0')
        || parts.iter().any(|p| *p == "." || *p == "..")
        || inner.iter().any(|p| p.is_empty());
    if bad {
        return Err(format!("{key:?} is not a relative key inside the archive"));
    }
    Ok(())
}

/// `year=YYYY/month=MM/day=DD/` for a date.
pub fn hive_date_path(date: NaiveDate) -> String {
    format!(
        "year={:04}/month={:02}/day={:02}/",
        date.year(),
        date.month(),
        date.day()
    )
}

/// A table's prefix: `<table>/`.
pub fn table_prefix(table: &str) -> String {
    format!("{table}/")
}

/// A partition's path, with a trailing slash: `<table>/year=YYYY/month=MM/day=DD/`.
pub fn partition_path(table: &str, date: NaiveDate) -> String {
    format!("{table}/{}", hive_date_path(date))
}

/// The partition of rejected records for a processing date:
/// `_rejected/year=YYYY/month=MM/day=DD/`.
pub fn rejected_path(processing_date: NaiveDate) -> String {
    partition_path(REJECTED_DIR, processing_date)
}

/// The number of a Hive partition folder in its canonical spelling (`year=2026` with
/// four digits, `month=01` and `day=02` with two); `None` for any other spelling.
pub fn hive_number(segment: &str, name: &str) -> Option<u32> {
    let digits = if name == "year" { 4 } else { 2 };
    segment
        .strip_prefix(name)?
        .strip_prefix('=')
        .filter(|v| v.len() == digits && v.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

/// The day of three partition folders `year=YYYY`, `month=MM`, `day=DD`, spelled
/// canonically; `None` for any other spelling or a day that does not exist.
pub fn hive_date(year: &str, month: &str, day: &str) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        i32::try_from(hive_number(year, "year")?).ok()?,
        hive_number(month, "month")?,
        hive_number(day, "day")?,
    )
}

/// The UTC day of a key `<table>/year=YYYY/month=MM/day=DD/<name>` (or the same under
/// [`MANIFESTS_DIR`]), parsed as strictly as [`ObjectKey::parse`]: `None` for any other
/// spelling.
pub fn partition_day(key: &str) -> Option<NaiveDate> {
    [MANIFESTS_DIR, LEGACY_MANIFESTS_DIR]
        .iter()
        .find_map(|dir| key.strip_prefix(dir).and_then(|k| k.strip_prefix('/')))
        .and_then(split_partition)
        .or_else(|| split_partition(key))
        .map(|(_, date, _)| date)
}

/// The name of a data object: what it holds, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKey {
    /// The DynamoDB table.
    pub table: String,
    /// The UTC day of its changes' event time.
    pub date: NaiveDate,
    /// Sequence number of its first change.
    pub first_sequence: String,
    /// Sequence number of its last change.
    pub last_sequence: String,
    /// Digest of its record set.
    pub digest: String,
    /// Its file format.
    pub format: Format,
}

/// An archive object's key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKey {
    /// Changes of one table and day.
    Data(DataKey),
    /// Rejected records.
    Rejected {
        /// The processing date.
        date: NaiveDate,
        /// Digest of the uncompressed lines.
        digest: String,
    },
    /// One file of a compacted table-day.
    Compacted {
        /// The DynamoDB table.
        table: String,
        /// The UTC day.
        date: NaiveDate,
        /// The compaction version: names the set of raw objects compacted.
        version: String,
        /// The file's number within the version, from 0.
        part: u32,
    },
    /// A table-day's manifest where older releases wrote it, under
    /// [`LEGACY_MANIFESTS_DIR`].
    LegacyManifest {
        /// The DynamoDB table.
        table: String,
        /// The UTC day.
        date: NaiveDate,
    },
    /// A compacted table-day's manifest.
    Manifest {
        /// The DynamoDB table.
        table: String,
        /// The UTC day.
        date: NaiveDate,
    },
}

impl DataKey {
    /// The key, relative to the archive root.
    pub fn key(&self) -> String {
        format!(
            "{}{}-{}-{}.{}",
            partition_path(&self.table, self.date),
            self.first_sequence,
            self.last_sequence,
            self.digest,
            self.format.extension()
        )
    }
}

fn is_digest(s: &str) -> bool {
    s.len() == DIGEST_HEX_DIGITS && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_sequence(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The table, the partition's day and the file name of `<table>/year=/month=/day=/<name>`.
fn split_partition(key: &str) -> Option<(&str, NaiveDate, &str)> {
    let mut parts = key.splitn(5, '/');
    let table = parts.next()?;
    let (y, m, d, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let date = hive_date(y, m, d)?;
    (!table.is_empty() && !name.is_empty() && !name.contains('/')).then_some((table, date, name))
}

impl ObjectKey {
    /// Parses a key relative to the archive root; `None` for keys the archiver does not
    /// write.
    pub fn parse(key: &str) -> Option<ObjectKey> {
        for (dir, legacy) in [(MANIFESTS_DIR, false), (LEGACY_MANIFESTS_DIR, true)] {
            let Some(rest) = key.strip_prefix(dir).and_then(|k| k.strip_prefix('/')) else {
                continue;
            };
            let Some((table, date, name)) = split_partition(rest) else {
                continue;
            };
            if name == "manifest.json" && validate_table_name(table).is_ok() {
                let (table, date) = (table.to_string(), date);
                return Some(if legacy {
                    ObjectKey::LegacyManifest { table, date }
                } else {
                    ObjectKey::Manifest { table, date }
                });
            }
        }
        let (table, date, name) = split_partition(key)?;
        if let Some(stem) = name
            .strip_prefix("compacted-")
            .and_then(|n| n.strip_suffix(".parquet"))
        {
            validate_table_name(table).ok()?;
            let (version, part) = stem.split_once('-')?;
            let part_ok = part.len() >= 3 && part.bytes().all(|b| b.is_ascii_digit());
            let number: u32 = part.parse().ok()?;
            return (is_digest(version) && part_ok).then(|| ObjectKey::Compacted {
                table: table.to_string(),
                date,
                version: version.to_string(),
                part: number,
            });
        }
        if table == REJECTED_DIR {
            let digest = name.strip_prefix("rejected-")?.strip_suffix(".json.gz")?;
            return is_digest(digest).then(|| ObjectKey::Rejected {
                date,
                digest: digest.to_string(),
            });
        }
        validate_table_name(table).ok()?;
        let format = Format::of_key(name)?;
        let stem = &name[..name.len() - format.extension().len() - 1];
        let mut parts = stem.splitn(3, '-');
        let (first, last, digest) = (parts.next()?, parts.next()?, parts.next()?);
        (is_sequence(first) && is_sequence(last) && is_digest(digest)).then(|| {
            ObjectKey::Data(DataKey {
                table: table.to_string(),
                date,
                first_sequence: first.to_string(),
                last_sequence: last.to_string(),
                digest: digest.to_string(),
                format,
            })
        })
    }

    /// The key, relative to the archive root.
    pub fn key(&self) -> String {
        match self {
            ObjectKey::Data(d) => d.key(),
            ObjectKey::Rejected { date, digest } => {
                format!("{}rejected-{digest}.json.gz", rejected_path(*date))
            }
            ObjectKey::Compacted {
                table,
                date,
                version,
                part,
            } => format!(
                "{}compacted-{version}-{part:03}.parquet",
                partition_path(table, *date)
            ),
            ObjectKey::Manifest { table, date } => {
                format!(
                    "{MANIFESTS_DIR}/{}manifest.json",
                    partition_path(table, *date)
                )
            }
            ObjectKey::LegacyManifest { table, date } => {
                format!(
                    "{LEGACY_MANIFESTS_DIR}/{}manifest.json",
                    partition_path(table, *date)
                )
            }
        }
    }
}

/// The UTC calendar day of a millisecond epoch timestamp.
pub fn utc_date(epoch_ms: i64) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp_millis(epoch_ms).map(|t| t.date_naive())
}

/// Checks a table name against DynamoDB's rules (3 to 255 characters of `a-z`, `A-Z`,
/// `0-9`, `_`, `-`, `.`), which also makes it safe as a path segment.
pub fn validate_table_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !(3..=255).contains(&name.len()) || !ok_chars || name.bytes().all(|b| b == b'.') {
        return Err(format!(
            "{name:?} is not a valid DynamoDB table name (3-255 characters of a-z, A-Z, 0-9, '_', '-', '.')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn paths() {
        let cases = [
            (date(1970, 1, 1), "t_1", "t_1/year=1970/month=01/day=01/"),
            (
                date(2026, 12, 31),
                "a.b-c",
                "a.b-c/year=2026/month=12/day=31/",
            ),
            (date(9999, 2, 3), "tbl", "tbl/year=9999/month=02/day=03/"),
        ];
        for (d, table, want) in cases {
            assert_eq!(partition_path(table, d), want);
            assert_eq!(partition_day(&format!("{want}x.parquet")), Some(d));
        }
        assert_eq!(
            rejected_path(date(2026, 2, 28)),
            "_rejected/year=2026/month=02/day=28/"
        );
        assert_eq!(partition_day("t_1/year=2026/month=02/x.parquet"), None);
        assert_eq!(partition_day("t_1/year=2026/month=02/day=30/x"), None);
        // One strict spelling: folders that compaction and verify ignore are no day
        // for any reader.
        assert_eq!(partition_day("t_1/year=2026/month=2/day=03/x"), None);
        assert_eq!(partition_day("t_1/year=26/month=02/day=03/x"), None);
        assert_eq!(partition_day("t_1/year=2026/month=02/day=+3/x"), None);
        assert_eq!(hive_number("month=+1", "month"), None);
        assert_eq!(hive_number("month=12", "month"), Some(12));
    }

    #[test]
    fn keys_round_trip() {
        let keys = [
            ObjectKey::Data(DataKey {
                table: "orders".into(),
                date: date(2026, 1, 2),
                first_sequence: "100".into(),
                last_sequence: "49663957262389734712957744587421085651432537453286162434".into(),
                digest: "0123456789abcdef".into(),
                format: Format::Parquet,
            }),
            ObjectKey::Data(DataKey {
                table: "my-table.v2".into(),
                date: date(1970, 1, 1),
                first_sequence: "7".into(),
                last_sequence: "7".into(),
                digest: "fedcba9876543210".into(),
                format: Format::JsonlGz,
            }),
            ObjectKey::Rejected {
                date: date(2026, 12, 3),
                digest: "00ff00ff00ff00ff".into(),
            },
            ObjectKey::Compacted {
                table: "orders".into(),
                date: date(2026, 1, 2),
                version: "0123456789abcdef".into(),
                part: 12,
            },
            ObjectKey::Compacted {
                table: "orders".into(),
                date: date(2026, 1, 2),
                version: "0123456789abcdef".into(),
                part: 1234,
            },
            ObjectKey::Manifest {
                table: "orders".into(),
                date: date(2026, 1, 2),
            },
            ObjectKey::LegacyManifest {
                table: "orders".into(),
                date: date(2026, 1, 2),
            },
            // A table named like the manifests' folder is still a table in the raw
            // archive.
            ObjectKey::Data(DataKey {
                table: MANIFESTS_DIR.into(),
                date: date(2026, 1, 2),
                first_sequence: "1".into(),
                last_sequence: "2".into(),
                digest: "0123456789abcdef".into(),
                format: Format::Parquet,
            }),
        ];
        for k in keys {
            let text = k.key();
            assert_eq!(ObjectKey::parse(&text), Some(k.clone()), "{text}");
            let day = match &k {
                ObjectKey::Data(d) => d.date,
                ObjectKey::Rejected { date, .. }
                | ObjectKey::Compacted { date, .. }
                | ObjectKey::Manifest { date, .. }
                | ObjectKey::LegacyManifest { date, .. } => *date,
            };
            assert_eq!(partition_day(&text), Some(day));
        }
    }

    #[test]
    fn only_plain_relative_keys_pass_the_guard() {
        for good in ["a", "a/b.parquet", "orders/year=2026/", "a.b/c..d"] {
            assert!(check_relative(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a\\b",
            "a\0b",
            "..",
        ] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn foreign_keys_do_not_parse() {
        for key in [
            "orders/year=2026/month=01/day=02/100-200-0123456789abcdef.csv",
            "orders/year=2026/month=01/day=02/100-200-0123456789ABCDEF.parquet",
            "orders/year=2026/month=01/day=02/100-200-0123456789abcde.parquet",
            "orders/year=2026/month=01/day=02/x100-200-0123456789abcdef.parquet",
            "orders/year=2026/month=1/day=02/100-200-0123456789abcdef.parquet",
            "orders/year=2026/month=02/day=30/100-200-0123456789abcdef.parquet",
            "orders/year=2026/month=01/day=02/sub/100-200-0123456789abcdef.parquet",
            "orders/year=2026/month=01/100-200-0123456789abcdef.parquet",
            "_rejected/year=2026/month=01/day=02/rejected-0123.json.gz",
            "o/year=2026/month=01/day=02/100-200-0123456789abcdef.parquet",
            "orders/year=2026/month=01/day=02/compacted-0123456789abcdef-1.parquet",
            "orders/year=2026/month=01/day=02/compacted-0123456789abcdef.parquet",
            "_manifests/orders/year=2026/month=01/day=02/other.json",
            "_manifests/year=2026/month=01/day=02/manifest.json",
        ] {
            assert_eq!(ObjectKey::parse(key), None, "{key}");
        }
    }
}
