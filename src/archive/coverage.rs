//! Coverage records read back: the baselines and gap repairs stored under
//! `ddb-archiver-coverage/<table>/` ([`crate::model::coverage`]), listed and read from an
//! archive source and checked before use. A record is data: its key must parse as a
//! coverage key, its body stay under [`COVERAGE_MAX_BYTES`], its table and kind be its
//! key's, its format be known, and every object it lists be a data key of its table.
//! Anything suspect is refused with the record's location and what is wrong.

use crate::archive::source::{ArchiveSource, SourceError};
use crate::model::coverage::{
    coverage_table_prefix, parse_coverage_key, CoverageKind, CoverageRecord, COVERAGE_DIR,
    COVERAGE_MAX_BYTES,
};
use crate::model::key::{validate_table_name, ObjectKey};

/// Why coverage records cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// Listing or reading the archive failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A coverage record (or a key under the coverage folder) is not trusted.
    #[error("coverage record {location}: {reason}")]
    Bad {
        /// The record's location.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One coverage record as stored, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCoverage {
    /// Its key, relative to the archive root.
    pub key: String,
    /// The id in its key (export ID or `scan-<ms>`).
    pub id: String,
    /// The record.
    pub record: CoverageRecord,
}

/// Checks a record read from `key` against its key: `table` and `kind` are the key's,
/// and every listed object is a data key of that table.
pub fn check_against_key(
    record: &CoverageRecord,
    table: &str,
    kind: CoverageKind,
) -> Result<(), String> {
    if record.table != table {
        return Err(format!(
            "its table {:?} is not its key's table {table:?}",
            record.table
        ));
    }
    if record.kind != kind {
        return Err(format!(
            "its kind {} is not its key's kind {}",
            record.kind.as_str(),
            kind.as_str()
        ));
    }
    for object in &record.objects {
        match ObjectKey::parse(object) {
            Some(ObjectKey::Data(d)) if d.table == table => {}
            _ => {
                return Err(format!(
                    "it lists {object:?}, which is not a data object of table {table}"
                ))
            }
        }
    }
    Ok(())
}

/// Reads and checks the record under `key`.
pub async fn read(source: &dyn ArchiveSource, key: &str) -> Result<StoredCoverage, CoverageError> {
    let bad = |reason: String| CoverageError::Bad {
        location: source.location(key),
        reason,
    };
    let (table, kind, id) = parse_coverage_key(key).ok_or_else(|| {
        bad(format!(
            "the key is not {COVERAGE_DIR}/<table>/<baseline|repair>-<id>.json"
        ))
    })?;
    let bytes = match source.get_tagged(key, COVERAGE_MAX_BYTES as u64).await? {
        Some((bytes, _)) => bytes,
        None => return Err(bad("it is gone".into())),
    };
    let record = CoverageRecord::from_json(&bytes).map_err(&bad)?;
    check_against_key(&record, &table, kind).map_err(bad)?;
    Ok(StoredCoverage {
        key: key.to_string(),
        id,
        record,
    })
}

/// Every coverage record of `table` (or of every table), sorted by key. Any key under
/// the coverage folder that is not a coverage key of the table, and any record that
/// does not check, fails the listing.
pub async fn list(
    source: &dyn ArchiveSource,
    table: Option<&str>,
) -> Result<Vec<StoredCoverage>, CoverageError> {
    let prefix = match table {
        Some(t) => {
            validate_table_name(t).map_err(|reason| CoverageError::Bad {
                location: source.location(&coverage_table_prefix(t)),
                reason: format!("invalid table: {reason}"),
            })?;
            coverage_table_prefix(t)
        }
        None => format!("{COVERAGE_DIR}/"),
    };
    let mut out = Vec::new();
    for key in source.list(&prefix).await? {
        out.push(read(source, &key).await?);
    }
    Ok(out)
}

/// The baseline a table is complete from: of its baseline records, the one with the
/// earliest `complete_from` (then the first by key). `None` when no baseline was
/// archived.
pub fn complete_from(records: &[StoredCoverage]) -> Option<&StoredCoverage> {
    records
        .iter()
        .filter(|c| c.record.kind == CoverageKind::Baseline)
        .filter(|c| c.record.complete_from.is_some())
        .min_by(|a, b| {
            a.record
                .complete_from
                .cmp(&b.record.complete_from)
                .then_with(|| a.key.cmp(&b.key))
        })
}

/// Lists `table`'s coverage records and gives the baseline it is complete from.
pub async fn table_baseline(
    source: &dyn ArchiveSource,
    table: &str,
) -> Result<Option<StoredCoverage>, CoverageError> {
    let records = list(source, Some(table)).await?;
    Ok(complete_from(&records).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::source::LocalDirSource;
    use crate::model::coverage::{
        coverage_key, CoverageExportType, CoverageSource, CoverageWindow, COVERAGE_FORMAT,
    };

    const ARN: &str = "arn:aws:dynamodb:eu-west-1:123456789012:table/invoices/export/01-a";

    fn record(kind: CoverageKind, complete_from: i64) -> CoverageRecord {
        CoverageRecord {
            format: COVERAGE_FORMAT,
            table: "invoices".into(),
            kind,
            source: CoverageSource::Export,
            export_arn: Some(ARN.into()),
            export_type: match kind {
                CoverageKind::Baseline => CoverageExportType::FullExport,
                CoverageKind::Repair => CoverageExportType::IncrementalExport,
            },
            complete_from: (kind == CoverageKind::Baseline).then_some(complete_from),
            window: (kind == CoverageKind::Repair).then_some(CoverageWindow {
                from: complete_from,
                to: complete_from + 1000,
            }),
            item_count: 2,
            change_count: 2,
            objects: vec!["invoices/year=2026/month=03/day=01/0-0-0123456789abcdef.parquet".into()],
            recorded_at: complete_from + 5,
        }
    }

    fn put(dir: &std::path::Path, key: &str, bytes: &[u8]) {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn store(dir: &std::path::Path, id: &str, r: &CoverageRecord) -> String {
        let key = coverage_key(&r.table, r.kind, id).unwrap();
        put(dir, &key, &r.to_json().unwrap());
        key
    }

    #[tokio::test]
    async fn the_earliest_baseline_is_the_complete_from() {
        let dir = tempfile::tempdir().unwrap();
        let source = LocalDirSource::new(dir.path());
        assert_eq!(table_baseline(&source, "invoices").await.unwrap(), None);
        store(
            dir.path(),
            "late",
            &record(CoverageKind::Baseline, 2_000_000),
        );
        let early = store(
            dir.path(),
            "early",
            &record(CoverageKind::Baseline, 1_000_000),
        );
        store(dir.path(), "gap", &record(CoverageKind::Repair, 500_000));
        let mut other = record(CoverageKind::Baseline, 1);
        other.table = "orders".into();
        other.objects =
            vec!["orders/year=2026/month=03/day=01/0-0-0123456789abcdef.parquet".into()];
        store(dir.path(), "o", &other);
        let all = list(&source, Some("invoices")).await.unwrap();
        assert_eq!(all.len(), 3);
        let base = table_baseline(&source, "invoices").await.unwrap().unwrap();
        assert_eq!(base.key, early);
        assert_eq!(base.id, "early");
        assert_eq!(base.record.complete_from, Some(1_000_000));
        assert_eq!(list(&source, None).await.unwrap().len(), 4);
        assert_eq!(
            table_baseline(&source, "orders")
                .await
                .unwrap()
                .unwrap()
                .record
                .complete_from,
            Some(1)
        );
    }

    async fn refused(dir: &std::path::Path) -> String {
        let source = LocalDirSource::new(dir);
        match list(&source, Some("invoices")).await {
            Err(e @ CoverageError::Bad { .. }) => e.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn suspect_records_are_refused() {
        // A key that is not a coverage key.
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "ddb-archiver-coverage/invoices/notes.txt",
            b"{}",
        );
        assert!(refused(dir.path()).await.contains("the key is not"));

        // Too big: refused unread.
        let dir = tempfile::tempdir().unwrap();
        let key = coverage_key("invoices", CoverageKind::Baseline, "big").unwrap();
        put(dir.path(), &key, &vec![b' '; COVERAGE_MAX_BYTES + 1]);
        let e = list(&LocalDirSource::new(dir.path()), Some("invoices"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&key) && e.contains("not read"), "{e}");

        // Another table's record under this table's key.
        let dir = tempfile::tempdir().unwrap();
        let mut r = record(CoverageKind::Baseline, 1);
        r.table = "orders".into();
        put(dir.path(), &key, &r.to_json().unwrap());
        assert!(refused(dir.path()).await.contains("is not its key's table"));

        // A repair under a baseline key.
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &key,
            &record(CoverageKind::Repair, 1).to_json().unwrap(),
        );
        assert!(refused(dir.path()).await.contains("is not its key's kind"));

        // An unknown format.
        let dir = tempfile::tempdir().unwrap();
        let text = String::from_utf8(record(CoverageKind::Baseline, 1).to_json().unwrap())
            .unwrap()
            .replace("\"format\": 1", "\"format\": 7");
        put(dir.path(), &key, text.as_bytes());
        assert!(refused(dir.path()).await.contains("format 7"));

        // Objects outside the table's data keys.
        for object in [
            "orders/year=2026/month=03/day=01/0-0-0123456789abcdef.parquet",
            "../invoices/year=2026/month=03/day=01/0-0-0123456789abcdef.parquet",
            "invoices/year=2026/month=03/day=01/notes.txt",
            "/etc/passwd",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut r = record(CoverageKind::Baseline, 1);
            r.objects = vec![object.into()];
            put(dir.path(), &key, &r.to_json().unwrap());
            let e = refused(dir.path()).await;
            assert!(e.contains("not a data object of table invoices"), "{e}");
        }

        // A table name that is not one.
        let dir = tempfile::tempdir().unwrap();
        let source = LocalDirSource::new(dir.path());
        assert!(list(&source, Some("../x")).await.is_err());
    }
}
