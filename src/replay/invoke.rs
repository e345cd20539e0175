//! Invoke: delivers each event to a Lambda function with `Invoke` (aws-sdk-lambda),
//! reads the `batchItemFailures` of its response (partial batch responses) and sends
//! the records again from the first one that failed, as an event source mapping does —
//! at most [`MAX_ATTEMPTS`] times per event, then stops naming the first record the
//! function did not take.

use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use serde::Deserialize;

use crate::archive::emit::event_json;
use crate::archive::order::Change;

/// Invocations of one event, the first included, before replay gives up.
pub const MAX_ATTEMPTS: u32 = 4;

/// An event the function did not take.
#[derive(Debug, thiserror::Error)]
#[error(
    "function {function} did not process event {event_id} (sequence number \
     {sequence_number}) after {attempts} attempts: {reason}"
)]
pub struct InvokeError {
    /// The function name.
    pub function: String,
    /// `event_id` of the first record not processed.
    pub event_id: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// Invocations made for this event.
    pub attempts: u32,
    /// The last failure: the call's error, the function's error, or the failed items.
    pub reason: String,
    /// Records of the event processed before the first failed one.
    pub delivered: usize,
}

/// What invoking did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InvokeStats {
    /// `Invoke` calls made.
    pub invocations: usize,
    /// Of those, calls that re-sent records after a failure.
    pub retries: usize,
}

/// A Lambda client from the default credential and region chain, built by
/// [`crate::aws::lambda`] (`AWS_ENDPOINT_URL_LAMBDA` or `AWS_ENDPOINT_URL` points it at
/// another Invoke API, such as `cargo lambda watch`).
pub async fn lambda_client() -> aws_sdk_lambda::Client {
    crate::aws::lambda(&crate::aws::shared_config().await, &client_options())
}

/// Longest one `Invoke` attempt may take: a function runs at most 15 minutes, so an
/// answer later than this was lost (the attempt is then retried), and replay never waits
/// forever on it.
pub const INVOKE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15 * 60 + 60);

/// How replay's Lambda client is built: the SDK's standard retries, and
/// [`INVOKE_ATTEMPT_TIMEOUT`] per attempt.
pub fn client_options() -> crate::aws::ClientOptions {
    crate::aws::ClientOptions {
        attempt_timeout: Some(INVOKE_ATTEMPT_TIMEOUT),
        ..crate::aws::ClientOptions::default()
    }
}

/// Invokes one function with replayed events.
#[derive(Debug, Clone)]
pub struct Invoker {
    client: aws_sdk_lambda::Client,
    function: String,
    backoff: Duration,
}

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "batchItemFailures", default)]
    batch_item_failures: Vec<ItemFailure>,
}

#[derive(Deserialize)]
struct ItemFailure {
    #[serde(rename = "itemIdentifier", default)]
    item_identifier: Option<String>,
}

/// The position of the first failed record named by a function's response, `None`
/// when every record was processed. An identifier that matches no record's sequence
/// number or event ID fails the whole event, as Lambda's event source mappings do.
pub fn first_failure(records: &[Change], response: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(response);
    if text.trim().is_empty() || text.trim() == "null" {
        return None;
    }
    let Ok(parsed) = serde_json::from_str::<Response>(&text) else {
        // Any other successful response means the whole batch was processed.
        return None;
    };
    let mut first: Option<usize> = None;
    for failure in &parsed.batch_item_failures {
        let id = failure.item_identifier.as_deref().unwrap_or("");
        let pos = records
            .iter()
            .position(|c| !id.is_empty() && (c.sequence_number == id || c.event_id == id))
            .unwrap_or(0);
        first = Some(first.map_or(pos, |f| f.min(pos)));
    }
    first
}

impl Invoker {
    /// An invoker calling `function`.
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Invoker {
            client,
            function: function.into(),
            backoff: Duration::from_millis(200),
        }
    }

    /// The function name.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// Delivers one event, re-sending from the first failed record until the function
    /// takes every record or [`MAX_ATTEMPTS`] are spent.
    pub async fn deliver(
        &self,
        records: &[Change],
        stats: &mut InvokeStats,
    ) -> Result<(), InvokeError> {
        let mut start = 0;
        let mut attempts = 0;
        while start < records.len() {
            attempts += 1;
            stats.invocations += 1;
            if attempts > 1 {
                stats.retries += 1;
            }
            let rest = &records[start..];
            let reason = match self.invoke_once(rest).await {
                Ok(None) => return Ok(()),
                Ok(Some(failed)) => {
                    start += failed;
                    format!(
                        "the function reported {} as the first failed record",
                        records[start].event_id
                    )
                }
                Err(reason) => reason,
            };
            tracing::warn!(function = self.function, attempts, %reason, "invocation failed");
            if attempts >= MAX_ATTEMPTS {
                let failed = &records[start];
                return Err(InvokeError {
                    function: self.function.clone(),
                    event_id: failed.event_id.clone(),
                    sequence_number: failed.sequence_number.clone(),
                    attempts,
                    reason,
                    delivered: start,
                });
            }
            tokio::time::sleep(self.backoff * 2u32.pow(attempts - 1)).await;
        }
        Ok(())
    }

    /// One `Invoke`: `Ok(None)` when every record was processed, `Ok(Some(i))` when
    /// the function reported record `i` as the first failure, `Err` when the call or
    /// the function failed.
    async fn invoke_once(&self, records: &[Change]) -> Result<Option<usize>, String> {
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(event_json(records)))
            .send()
            .await
            .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())?;
        let payload = out.payload().map(Blob::as_ref).unwrap_or_default();
        if let Some(kind) = out.function_error() {
            let text = String::from_utf8_lossy(payload);
            let text: String = text.chars().take(500).collect();
            return Err(format!("function error {kind}: {text}"));
        }
        Ok(first_failure(records, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(seq: &str) -> Change {
        Change {
            group: String::new(),
            time_ms: 0,
            sequence_number: seq.into(),
            event_id: format!("e{seq}"),
            record: "{}".into(),
        }
    }

    /// The client built for replay bounds each attempt, so a lost invocation ends.
    #[test]
    fn each_invoke_attempt_has_a_timeout_past_the_longest_function_run() {
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = crate::aws::lambda(&shared, &client_options());
        let timeout = client
            .config()
            .timeout_config()
            .and_then(|t| t.operation_attempt_timeout());
        assert_eq!(timeout, Some(INVOKE_ATTEMPT_TIMEOUT));
        assert!(INVOKE_ATTEMPT_TIMEOUT > Duration::from_secs(15 * 60));
    }

    #[test]
    fn partial_batch_responses() {
        let recs = [c("10"), c("11"), c("12")];
        assert_eq!(first_failure(&recs, b""), None);
        assert_eq!(first_failure(&recs, b"null"), None);
        assert_eq!(first_failure(&recs, br#"{"batchItemFailures":[]}"#), None);
        assert_eq!(
            first_failure(
                &recs,
                br#"{"batchItemFailures":[{"itemIdentifier":"12"},{"itemIdentifier":"11"}]}"#
            ),
            Some(1)
        );
        assert_eq!(
            first_failure(&recs, br#"{"batchItemFailures":[{"itemIdentifier":"99"}]}"#),
            Some(0)
        );
        assert_eq!(
            first_failure(
                &recs,
                br#"{"batchItemFailures":[{"itemIdentifier":"e12"}]}"#
            ),
            Some(2)
        );
    }
}
