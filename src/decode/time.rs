//! Exact parsing of `ApproximateCreationDateTime`: JSON number or string text, integer,
//! fractional or scientific (`1.635734407123456789E9`), to whole milliseconds, with no
//! floating point on the way.

/// The unit an epoch timestamp is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds, unless the magnitude shows milliseconds (or microseconds): DynamoDB
    /// Streams write seconds, some senders write milliseconds.
    SecondsOrMillis,
    /// Milliseconds (Kinesis Data Streams for DynamoDB).
    Millis,
    /// Microseconds (Kinesis with `ApproximateCreationDateTimePrecision` = MICROSECOND).
    Micros,
}

/// Largest epoch value, in seconds, read as seconds by [`TimeUnit::SecondsOrMillis`]
/// (1e11 s is the year 5138; 1e11 ms is 1973).
const SECONDS_LIMIT: u128 = 100_000_000_000;
/// Largest value read as milliseconds by [`TimeUnit::SecondsOrMillis`].
const MILLIS_LIMIT: u128 = 100_000_000_000_000;
/// Largest value read as microseconds by [`TimeUnit::SecondsOrMillis`].
const MICROS_LIMIT: u128 = 100_000_000_000_000_000;
/// 9999-12-31T23:59:59.999Z: the last instant a four-digit year partition can hold.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// A non-negative decimal written as `digits × 10^exp` (no leading zeros in `digits`).
pub(crate) struct Decimal {
    /// Decimal digits, 0 to 9, most significant first.
    pub(crate) digits: Vec<u8>,
    /// Power of ten of the last digit.
    pub(crate) exp: i64,
}

impl Decimal {
    /// Parses `[+]digits[.digits][(e|E)[+|-]digits]` exactly.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a non-negative decimal number");
        let b = text.as_bytes();
        let mut i = 0;
        if b.first() == Some(&b'+') {
            i += 1;
        }
        let mut digits = Vec::new();
        let mut exp: i64 = 0;
        let mut seen_digit = false;
        while i < b.len() && b[i].is_ascii_digit() {
            digits.push(b[i] - b'0');
            seen_digit = true;
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                digits.push(b[i] - b'0');
                exp -= 1;
                seen_digit = true;
                i += 1;
            }
        }
        if !seen_digit {
            return Err(bad());
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let neg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i || i - start > 6 {
                return Err(bad());
            }
            let e: i64 = text[start..i].parse().map_err(|_| bad())?;
            exp += if neg { -e } else { e };
        }
        if i != b.len() {
            return Err(bad());
        }
        // Leading zeros carry no value; dropping them keeps the integer part short.
        let first = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
        digits.drain(..first);
        Ok(Decimal { digits, exp })
    }

    /// `floor(self × 10^shift)`, or `None` when it exceeds `u128`.
    fn floor_scaled(&self, shift: i64) -> Option<u128> {
        let e = self.exp + shift;
        let keep = if e >= 0 {
            self.digits.len()
        } else {
            let drop = usize::try_from(-e).ok()?;
            self.digits.len().saturating_sub(drop)
        };
        let mut v: u128 = 0;
        for d in &self.digits[..keep] {
            v = v.checked_mul(10)?.checked_add(u128::from(*d))?;
        }
        if e > 0 {
            for _ in 0..e {
                v = v.checked_mul(10)?;
            }
        }
        Some(v)
    }
}

/// Parses the raw JSON text of an epoch timestamp (a number, or a string holding one)
/// into milliseconds since the Unix epoch, truncating finer digits.
pub fn parse_epoch(raw_json: &str, unit: TimeUnit) -> Result<i64, String> {
    let text = raw_json.trim();
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => text,
    };
    let dec = Decimal::parse(text)?;
    let out_of_range = || format!("{text} is out of range for a timestamp");
    let shift = match unit {
        TimeUnit::Millis => 0,
        TimeUnit::Micros => -3,
        TimeUnit::SecondsOrMillis => {
            let whole = dec.floor_scaled(0).ok_or_else(out_of_range)?;
            if whole < SECONDS_LIMIT {
                3
            } else if whole < MILLIS_LIMIT {
                0
            } else if whole < MICROS_LIMIT {
                -3
            } else {
                return Err(out_of_range());
            }
        }
    };
    let ms = dec.floor_scaled(shift).ok_or_else(out_of_range)?;
    let ms = i64::try_from(ms).map_err(|_| out_of_range())?;
    if ms > MAX_MILLIS {
        return Err(out_of_range());
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_forms() {
        let s = TimeUnit::SecondsOrMillis;
        assert_eq!(parse_epoch("1428537600", s), Ok(1_428_537_600_000));
        assert_eq!(parse_epoch("1693997155.0", s), Ok(1_693_997_155_000));
        assert_eq!(
            parse_epoch("1.635734407123456789E9", s),
            Ok(1_635_734_407_123)
        );
        assert_eq!(parse_epoch("\"1.46480646E9\"", s), Ok(1_464_806_460_000));
        assert_eq!(parse_epoch("1480642020000", s), Ok(1_480_642_020_000));
        assert_eq!(parse_epoch("1480642020000123", s), Ok(1_480_642_020_000));
        assert_eq!(parse_epoch("0", s), Ok(0));
    }

    #[test]
    fn units() {
        assert_eq!(
            parse_epoch("1731924555370", TimeUnit::Millis),
            Ok(1_731_924_555_370)
        );
        assert_eq!(
            parse_epoch("1731924555370999", TimeUnit::Micros),
            Ok(1_731_924_555_370)
        );
    }

    #[test]
    fn rejects() {
        let s = TimeUnit::SecondsOrMillis;
        for bad in [
            "-1",
            "abc",
            "\"\"",
            "1e",
            "null",
            "true",
            "1e999999999",
            "1E30",
            "1.2.3",
        ] {
            assert!(parse_epoch(bad, s).is_err(), "{bad}");
        }
        assert!(parse_epoch("253402300800000", TimeUnit::Millis).is_err());
    }
}
