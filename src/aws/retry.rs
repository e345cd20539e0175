//! Retries with the archiver's own policy, for callers that turn the SDK's retries off
//! (the S3 sink, restore's batch writes): [`RetryPolicy`] bounds the attempts and the
//! exponential backoff with full jitter ([`jitter_unit`]), [`describe_sdk_error`] reduces
//! a failed SDK request of any service to a [`Failure`] and a message, and [`classify`]
//! decides whether another attempt is worthwhile.

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts per request, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry (upper bound of the jittered delay).
    pub base_delay: Duration,
    /// Largest backoff between attempts.
    pub max_delay: Duration,
    /// No retry starts after this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the backoff before retry number `retry` (0 for the first
    /// retry): `base_delay · 2^retry`, capped at `max_delay`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// The jittered backoff ("full jitter"): a point in `[0, backoff_cap]` chosen by
    /// `unit`, a number in `[0, 1)`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        self.backoff_cap(retry).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A number in `[0, 1)` for backoff jitter, from the clock and a counter (no crypto
/// needed, only spread between concurrent writers).
pub fn jitter_unit(salt: u64) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    // splitmix64
    let mut z = nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// What went wrong with one request attempt, reduced to what decides a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// The service answered with an HTTP status and maybe an error code.
    Http {
        /// HTTP status code.
        status: u16,
        /// The service's error code (`SlowDown`, `PreconditionFailed`,
        /// `ProvisionedThroughputExceededException`, ...), when present.
        code: Option<&'a str>,
    },
    /// The attempt timed out (connecting, reading, or the attempt as a whole).
    Timeout,
    /// The connection failed: refused, reset, or closed before a full response.
    Connection,
    /// The request could not be built or signed, or the client is misconfigured.
    Local,
}

impl Failure<'_> {
    /// Did a conditional request's precondition fail (HTTP 412, `PreconditionFailed`)?
    /// For S3's `If-None-Match: *` this means an object is already under the key.
    pub fn is_precondition_failed(&self) -> bool {
        matches!(
            self,
            Failure::Http { status: 412, .. }
                | Failure::Http {
                    code: Some("PreconditionFailed"),
                    ..
                }
        )
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// The service asked to slow down (S3's 503 SlowDown, DynamoDB's
    /// `ProvisionedThroughputExceededException`, 429, throttling codes): back off, retry.
    Throttled,
    /// A 5xx answer, a timeout or a connection failure: back off, retry.
    Transient,
    /// Retrying cannot help (access denied, no such bucket or table, bad request, a
    /// failed precondition, ...).
    Permanent,
}

impl RetryClass {
    /// Is another attempt worthwhile?
    pub fn is_retryable(self) -> bool {
        matches!(self, RetryClass::Throttled | RetryClass::Transient)
    }
}

/// Classifies a failed attempt, for S3 and DynamoDB alike: each error code below is
/// one of those services' (the other never sends it). A failed precondition is
/// [`RetryClass::Permanent`] whatever else the answer says (see
/// [`Failure::is_precondition_failed`]).
pub fn classify(failure: Failure<'_>) -> RetryClass {
    if failure.is_precondition_failed() {
        return RetryClass::Permanent;
    }
    match failure {
        Failure::Http {
            code:
                Some(
                    "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException"
                    | "ProvisionedThroughputExceededException",
                ),
            ..
        }
        | Failure::Http { status: 429, .. } => RetryClass::Throttled,
        Failure::Http {
            code:
                Some(
                    "RequestTimeout"
                    | "RequestTimeTooSkewed"
                    | "InternalError"
                    | "ConditionalRequestConflict"
                    | "OperationAborted"
                    | "InternalServerError"
                    | "ServiceUnavailable",
                ),
            ..
        } => RetryClass::Transient,
        Failure::Http { status, .. } if status >= 500 => RetryClass::Transient,
        Failure::Http { .. } | Failure::Local => RetryClass::Permanent,
        Failure::Timeout | Failure::Connection => RetryClass::Transient,
    }
}

/// What went wrong with one AWS SDK request attempt (any service: every SDK crate
/// re-exports the same `SdkError`), reduced to what decides a retry, and a message
/// naming it.
pub fn describe_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> (Failure<'_>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code();
            let msg = format!(
                "HTTP {status} {}: {}",
                code.unwrap_or("(no code)"),
                se.err().message().unwrap_or("")
            );
            (Failure::Http { status, code }, msg)
        }
        SdkError::TimeoutError(_) => (Failure::Timeout, "request timed out".to_string()),
        SdkError::DispatchFailure(d) => {
            let failure = if d.is_timeout() {
                Failure::Timeout
            } else if d.is_user() {
                Failure::Local
            } else {
                Failure::Connection
            };
            let detail = d
                .as_connector_error()
                .map_or_else(|| format!("{d:?}"), |c| error_chain(c));
            (failure, format!("request not sent: {detail}"))
        }
        SdkError::ResponseError(r) => (
            Failure::Connection,
            format!("reading the response failed: {r:?}"),
        ),
        SdkError::ConstructionFailure(_) => (
            Failure::Local,
            format!("request could not be built: {}", error_chain(err)),
        ),
        _ => (Failure::Local, error_chain(err)),
    }
}

/// An error and its sources, `: `-joined (a source's text already in the message is
/// left out).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use RetryClass::{Permanent, Throttled, Transient};
        let precondition = |status, code| Failure::Http { status, code }.is_precondition_failed();
        assert!(precondition(412, Some("PreconditionFailed")));
        assert!(precondition(412, None));
        assert!(precondition(400, Some("PreconditionFailed")));
        assert!(!precondition(409, Some("ConditionalRequestConflict")));
        assert!(!Failure::Timeout.is_precondition_failed());
        let answers: &[(u16, Option<&str>, RetryClass)] = &[
            (412, Some("PreconditionFailed"), Permanent),
            (412, None, Permanent),
            (503, Some("PreconditionFailed"), Permanent),
            // S3
            (503, Some("SlowDown"), Throttled),
            (429, None, Throttled),
            (400, Some("ThrottlingException"), Throttled),
            (500, Some("InternalError"), Transient),
            (502, None, Transient),
            (503, Some("ServiceUnavailable"), Transient),
            (400, Some("RequestTimeout"), Transient),
            (409, Some("ConditionalRequestConflict"), Transient),
            (403, Some("AccessDenied"), Permanent),
            (404, Some("NoSuchBucket"), Permanent),
            (400, Some("BadDigest"), Permanent),
            // DynamoDB
            (
                400,
                Some("ProvisionedThroughputExceededException"),
                Throttled,
            ),
            (400, Some("RequestLimitExceeded"), Throttled),
            (500, Some("InternalServerError"), Transient),
            (400, Some("ResourceNotFoundException"), Permanent),
            (400, Some("ValidationException"), Permanent),
        ];
        for &(status, code, want) in answers {
            assert_eq!(
                classify(Failure::Http { status, code }),
                want,
                "{status} {code:?}"
            );
        }
        assert_eq!(classify(Failure::Timeout), Transient);
        assert_eq!(classify(Failure::Connection), Transient);
        assert_eq!(classify(Failure::Local), Permanent);
        assert!(Throttled.is_retryable());
        assert!(Transient.is_retryable());
        assert!(!Permanent.is_retryable());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        };
        assert_eq!(p.backoff_cap(0), Duration::from_millis(100));
        assert_eq!(p.backoff_cap(1), Duration::from_millis(200));
        assert_eq!(p.backoff_cap(3), Duration::from_millis(800));
        assert_eq!(p.backoff_cap(5), Duration::from_secs(2));
        assert_eq!(p.backoff_cap(1000), Duration::from_secs(2));
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(400));
        assert!(p.backoff(3, 0.999) < Duration::from_millis(800));
        for salt in 0..100 {
            let u = jitter_unit(salt);
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
