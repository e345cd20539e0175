//! Route: each change goes to the Hive partition `<table>/year=YYYY/month=MM/day=DD/` of
//! the UTC day of its own event time (`approximate_creation_time`), never the time it
//! was processed.

use chrono::NaiveDate;

use crate::model::key::utc_date;

use crate::model::ChangeRecord;

/// A table and a UTC day: one Hive partition of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// DynamoDB table name (validated by [`validate_table_name`]).
    pub table: String,
    /// The UTC day.
    pub date: NaiveDate,
}

impl PartitionKey {
    /// The partition of a change: its table and the UTC day of its event time.
    pub fn for_record(record: &ChangeRecord) -> Option<Self> {
        let date = utc_date(record.approximate_creation_time_ms)?;
        Some(PartitionKey {
            table: record.table_name.clone(),
            date,
        })
    }

    /// The partition's path relative to the destination, with a trailing slash:
    /// `<table>/year=YYYY/month=MM/day=DD/`.
    pub fn path(&self) -> String {
        crate::model::key::partition_path(&self.table, self.date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::key::validate_table_name;

    #[test]
    fn partition_paths() {
        let cases = [
            (0, "t_1/year=1970/month=01/day=01/"),
            (1_767_225_599_999, "t_1/year=2025/month=12/day=31/"),
            (1_767_225_600_000, "t_1/year=2026/month=01/day=01/"),
            (951_782_400_000, "t_1/year=2000/month=02/day=29/"),
        ];
        for (ms, want) in cases {
            let key = PartitionKey {
                table: "t_1".into(),
                date: utc_date(ms).unwrap(),
            };
            assert_eq!(key.path(), want, "{ms}");
        }
    }

    #[test]
    fn table_names() {
        for ok in ["abc", "Example-Table", "a.b_c-9"] {
            assert!(validate_table_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "{{{table}}}", "a/b", "../x", "...", "tab le", ""] {
            assert!(validate_table_name(bad).is_err(), "{bad}");
        }
    }
}
