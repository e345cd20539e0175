//! Exact conversions of DynamoDB number and time text for typed columns: numbers never
//! pass through floating point except for `double`; decimals are scaled exactly into
//! Decimal128's integer, or refused when they have more digits than the precision or
//! nonzero digits past the scale. Timestamps are read from ISO-8601 text.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Why a value did not fit (kept for logs; the row lists the column name).
pub(super) type Misfit = String;

/// An exact decimal: `(-1)^neg × digits × 10^exp`, `digits` without leading or
/// trailing zeros (empty for zero).
struct Number {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Number {
    /// Reads a DynamoDB number text (`-` or no sign, then a decimal), exactly.
    fn parse(text: &str) -> Option<Number> {
        let (neg, magnitude) = match text.strip_prefix('-') {
            Some(rest) if !rest.starts_with('+') => (true, rest),
            Some(_) => return None,
            None => (false, text),
        };
        let crate::decode::Decimal {
            mut digits,
            mut exp,
        } = crate::decode::Decimal::parse(magnitude).ok()?;
        while digits.last() == Some(&0) {
            digits.pop();
            exp += 1;
        }
        Some(Number { neg, digits, exp })
    }

    /// The value × 10^scale as an integer of at most `precision` digits.
    fn scaled(&self, precision: u8, scale: u8) -> Result<i128, Misfit> {
        if self.digits.is_empty() {
            return Ok(0);
        }
        let shift = self.exp + i64::from(scale);
        if shift < 0 {
            return Err(format!("more than {scale} digits after the decimal point"));
        }
        let total = self.digits.len() as i64 + shift;
        if total > i64::from(precision) {
            return Err(format!("more than {precision} digits"));
        }
        let mut v: i128 = 0;
        for d in &self.digits {
            v = v * 10 + i128::from(*d);
        }
        for _ in 0..shift {
            v *= 10;
        }
        Ok(if self.neg { -v } else { v })
    }
}

/// [`Number::parse`], with the reason when the text is not a number.
fn number(text: &str) -> Result<Number, Misfit> {
    Number::parse(text).ok_or_else(|| format!("{text:?} is not a number"))
}

/// The integer value of a number text, when it fits a `bigint`.
pub(crate) fn to_i64(text: &str) -> Result<i64, Misfit> {
    let v = number(text)?.scaled(19, 0)?;
    i64::try_from(v).map_err(|_| format!("{text} does not fit bigint"))
}

/// The `double` nearest a number text, when it is finite.
pub(super) fn to_f64(text: &str) -> Result<f64, Misfit> {
    let v: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{text} does not fit double"))
    }
}

/// A number text × 10^`scale`, when it fits `decimal(precision,scale)` exactly.
pub(super) fn to_decimal(text: &str, precision: u8, scale: u8) -> Result<i128, Misfit> {
    number(text)?.scaled(precision, scale)
}

/// Milliseconds since the epoch of an ISO-8601 text: RFC 3339 with an offset, a date
/// and time without one (read as UTC), or a date alone (midnight UTC).
pub(crate) fn iso_millis(text: &str) -> Result<i64, Misfit> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()));
    }
    Err(format!("{text:?} is not an ISO-8601 timestamp"))
}

/// The day since the epoch of a time in milliseconds, as a `date` column holds it.
pub(super) fn epoch_day(millis: i64) -> Result<i32, Misfit> {
    i32::try_from(millis.div_euclid(86_400_000)).map_err(|_| "date out of range".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_exact() {
        let n = |t: &str, p, s| to_decimal(t, p, s);
        assert_eq!(n("1234.56", 18, 2), Ok(123456));
        assert_eq!(n("500.00", 4, 1), Ok(5000));
        assert_eq!(n("-3", 10, 2), Ok(-300));
        assert_eq!(
            n("12345678901234567890123456789012345678", 38, 0),
            Ok(12345678901234567890123456789012345678)
        );
        assert_eq!(
            n("99999999999999999999999999999999999999", 38, 0),
            Ok(99999999999999999999999999999999999999)
        );
        assert!(n("123456789012345678901234567890123456789", 38, 0).is_err());
        assert!(n("1E+125", 38, 0).is_err());
        assert!(n("-1E-130", 38, 10).is_err());
        assert!(n("0.125", 18, 2).is_err());
        assert_eq!(n("0.120", 18, 2), Ok(12));
        assert_eq!(n("1.5E1", 3, 0), Ok(15));
        assert_eq!(n("0", 1, 0), Ok(0));
        assert_eq!(n("0.000E+999", 1, 0), Ok(0));
        assert!(n("1e99999999999999999999", 38, 0).is_err());
        assert!(n("-+1", 38, 0).is_err() && n("--1", 38, 0).is_err() && n("1x", 38, 0).is_err());
        assert_eq!(to_i64("9223372036854775807"), Ok(i64::MAX));
        assert!(to_i64("9223372036854775808").is_err());
        assert!(to_i64("1.5").is_err());
        assert_eq!(to_i64("1E3"), Ok(1000));
    }
}
