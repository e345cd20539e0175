//! Filter: which archived changes a replay selects — the time range `[from, to)` on
//! `approximate_creation_time`, one item's `keys`, and event names — and which
//! `year=/month=/day=` partitions can hold them.

use chrono::{DateTime, NaiveDate, Utc};

use crate::archive::reader::Row;
use crate::model::item::canonical_key;
use crate::model::key::utc_date;
use crate::model::EventName;

/// A filter that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid {flag}: {reason}")]
pub struct FilterError {
    /// The flag.
    pub flag: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The changes a replay selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Earliest time selected, milliseconds, inclusive.
    from_ms: Option<i64>,
    /// Time bound, milliseconds, exclusive.
    to_ms: Option<i64>,
    /// The item's keys, as minified text and as canonical text
    /// ([`canonical_key`]).
    key: Option<(String, String)>,
    /// Event names selected; empty selects all.
    events: Vec<EventName>,
}

/// Milliseconds of a time, rounded up: a row's millisecond time is at or after `t`
/// exactly when it is at or after this.
fn ceil_millis(t: &DateTime<Utc>) -> i64 {
    t.timestamp_millis() + i64::from(!t.timestamp_subsec_nanos().is_multiple_of(1_000_000))
}

impl Filter {
    /// A filter from the replay flags. `key` is DynamoDB JSON of the item's key
    /// attributes, e.g. `{"pk":{"S":"INV#1001"}}`.
    pub fn new(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        key: Option<&str>,
        events: &[EventName],
    ) -> Result<Self, FilterError> {
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(FilterError {
                    flag: "--from/--to",
                    reason: format!("--from {f} is not before --to {t}"),
                });
            }
        }
        let key = key
            .map(|k| {
                let bad = |reason: String| FilterError {
                    flag: "--key",
                    reason,
                };
                crate::decode::dynamo_json::validate_item(k).map_err(&bad)?;
                let canonical = canonical_key(k).map_err(&bad)?;
                Ok((crate::decode::minify_json(k), canonical))
            })
            .transpose()?;
        Ok(Filter {
            from_ms: from.as_ref().map(ceil_millis),
            to_ms: to.as_ref().map(ceil_millis),
            key,
            events: events.to_vec(),
        })
    }

    /// Does the filter select this row?
    pub fn matches(&self, row: &Row) -> bool {
        if self.from_ms.is_some_and(|f| row.time_ms < f)
            || self.to_ms.is_some_and(|t| row.time_ms >= t)
        {
            return false;
        }
        if !self.events.is_empty()
            && !EventName::parse(&row.event_name).is_some_and(|e| self.events.contains(&e))
        {
            return false;
        }
        match &self.key {
            None => true,
            Some((text, canonical)) => {
                row.keys == *text || canonical_key(&row.keys).is_ok_and(|k| k == *canonical)
            }
        }
    }

    /// Can the UTC day hold selected changes?
    pub fn day_in_range(&self, day: NaiveDate) -> bool {
        let (first, last) = self.day_bounds();
        first.is_none_or(|f| day >= f) && last.is_none_or(|l| day <= l)
    }

    /// The first and last UTC days the time range touches, where bounded.
    pub fn day_bounds(&self) -> (Option<NaiveDate>, Option<NaiveDate>) {
        (
            self.from_ms.and_then(utc_date),
            self.to_ms.and_then(|t| utc_date(t - 1)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn day_bounds_are_half_open() {
        let f = Filter::new(
            Some(t("2026-01-01T10:00:00Z")),
            Some(t("2026-01-03T00:00:00Z")),
            None,
            &[],
        )
        .unwrap();
        let d = |day| NaiveDate::from_ymd_opt(2026, 1, day).unwrap();
        assert!(!f.day_in_range(NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()));
        assert!(f.day_in_range(d(1)));
        assert!(f.day_in_range(d(2)));
        assert!(!f.day_in_range(d(3)), "--to is exclusive");
        assert!(Filter::new(
            Some(t("2026-01-02T00:00:00Z")),
            Some(t("2026-01-01T00:00:00Z")),
            None,
            &[]
        )
        .is_err());
        assert!(Filter::new(None, None, Some("{\"pk\":1}"), &[]).is_err());
    }
}
