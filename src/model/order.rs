//! Order: stream order, the one order every reader of the archive uses. Changes sort by
//! their event time (`approximate_creation_time`, milliseconds), then by sequence number
//! compared as a number (Kinesis sequence numbers have ~56 digits), then by event ID so
//! that the order is total.

use std::cmp::Ordering;

/// Compares decimal sequence numbers numerically (they can have ~56 digits): fewer
/// significant digits first, then digit by digit.
pub fn cmp_sequence(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Stream order of two changes given as (time in ms, sequence number, event ID).
pub fn cmp_stream(a: (i64, &str, &str), b: (i64, &str, &str)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| cmp_sequence(a.1, b.1))
        .then_with(|| a.2.cmp(b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(cmp_sequence("9", "10"), Ordering::Less);
        assert_eq!(cmp_sequence("010", "10"), Ordering::Equal);
        assert_eq!(
            cmp_sequence(
                "49668979516014468453201812425011624208924476185347260418",
                "9"
            ),
            Ordering::Greater
        );
    }

    #[test]
    fn time_comes_before_sequence_then_event_id() {
        assert_eq!(cmp_stream((1, "9", "b"), (2, "1", "a")), Ordering::Less);
        assert_eq!(cmp_stream((1, "9", "b"), (1, "10", "a")), Ordering::Less);
        assert_eq!(cmp_stream((1, "10", "a"), (1, "10", "b")), Ordering::Less);
    }
}
