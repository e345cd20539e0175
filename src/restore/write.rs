//! Write: items go into the target table with `BatchWriteItem`, [`BATCH_ITEMS`] puts a
//! request. [`BatchWrite`] is the small trait at this I/O edge (the DynamoDB client, or a
//! fault-injecting fake in tests). [`write_batch`] retries a batch until every item is
//! written: `UnprocessedItems` are sent again, throttling (`ProvisionedThroughputExceeded
//! Exception`, `ThrottlingException`, `RequestLimitExceeded`), 5xx answers, timeouts and
//! connection failures are retried, each after an exponential backoff with full jitter,
//! and no retry starts once [`RetryPolicy::max_elapsed`] has passed. Failures are
//! classified by the archiver's one classification, [`crate::aws::retry::classify`].
//! Puts are idempotent: sending an item twice leaves the same item.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::item::Item;
use crate::aws::retry::{classify, describe_sdk_error, jitter_unit, RetryClass, RetryPolicy};

/// Most puts in one `BatchWriteItem` request (DynamoDB's limit).
pub const BATCH_ITEMS: usize = 25;

/// A `BatchWriteItem` request that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFailure {
    /// What to do about it.
    pub class: RetryClass,
    /// What happened.
    pub message: String,
}

/// Sends `BatchWriteItem` requests.
#[async_trait]
pub trait BatchWrite: Send + Sync {
    /// Puts `items` (at most [`BATCH_ITEMS`]) into `table`; returns the items DynamoDB
    /// left unprocessed.
    async fn put_items(&self, table: &str, items: Vec<Item>) -> Result<Vec<Item>, AttemptFailure>;
}

#[async_trait]
impl BatchWrite for aws_sdk_dynamodb::Client {
    async fn put_items(&self, table: &str, items: Vec<Item>) -> Result<Vec<Item>, AttemptFailure> {
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AttemptFailure {
                class: RetryClass::Permanent,
                message: e.to_string(),
            })?;
        let out = self
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| {
                let (failure, message) = describe_sdk_error(&e);
                AttemptFailure {
                    class: classify(failure),
                    message,
                }
            })?;
        Ok(out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|w| w.put_request.map(|p| p.item))
            .collect())
    }
}

/// What the retries of one or more batches took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Items written.
    pub items: usize,
    /// Requests sent, retries included.
    pub requests: usize,
    /// Requests sent again for items DynamoDB left unprocessed.
    pub unprocessed_retries: usize,
    /// Requests refused with throttling and sent again.
    pub throttles: usize,
    /// Requests sent again after a 5xx answer, a timeout or a connection failure.
    pub transient_retries: usize,
}

impl WriteStats {
    /// Adds another batch's figures.
    pub fn add(&mut self, other: &WriteStats) {
        self.items += other.items;
        self.requests += other.requests;
        self.unprocessed_retries += other.unprocessed_retries;
        self.throttles += other.throttles;
        self.transient_retries += other.transient_retries;
    }
}

/// A batch that could not be written completely.
#[derive(Debug, Clone, thiserror::Error)]
#[error("BatchWriteItem into {table}: {message} ({items_left} items of the batch not written after {attempts} attempts)")]
pub struct BatchFailure {
    /// The target table.
    pub table: String,
    /// The last failure.
    pub message: String,
    /// Items of the batch not known to be written.
    pub items_left: usize,
    /// Requests sent for the batch.
    pub attempts: u32,
    /// What the batch's requests did until then.
    pub stats: WriteStats,
}

/// Writes one batch, retrying unprocessed items and retryable failures as the policy
/// allows.
pub async fn write_batch(
    writer: &dyn BatchWrite,
    table: &str,
    items: Vec<Item>,
    policy: &RetryPolicy,
    salt: u64,
) -> Result<WriteStats, BatchFailure> {
    let started = Instant::now();
    let mut stats = WriteStats::default();
    let mut pending = items;
    let mut attempt: u32 = 0;
    loop {
        let sent = pending.len();
        attempt += 1;
        stats.requests += 1;
        let message = match writer.put_items(table, pending.clone()).await {
            Ok(unprocessed) => {
                stats.items += sent.saturating_sub(unprocessed.len());
                if unprocessed.is_empty() {
                    return Ok(stats);
                }
                stats.unprocessed_retries += 1;
                let m = format!("{} items left unprocessed", unprocessed.len());
                pending = unprocessed;
                m
            }
            Err(f) => {
                match f.class {
                    RetryClass::Throttled => stats.throttles += 1,
                    RetryClass::Transient => stats.transient_retries += 1,
                    RetryClass::Permanent => {
                        return Err(failure(table, f.message, pending.len(), attempt, stats))
                    }
                }
                f.message
            }
        };
        let delay = policy.backoff(attempt - 1, jitter_unit(salt ^ u64::from(attempt)));
        if attempt >= policy.max_attempts || started.elapsed() + delay > policy.max_elapsed {
            return Err(failure(table, message, pending.len(), attempt, stats));
        }
        tracing::debug!(table, attempt, ?delay, message, "retrying BatchWriteItem");
        tokio::time::sleep(delay).await;
    }
}

fn failure(
    table: &str,
    message: String,
    items_left: usize,
    attempts: u32,
    stats: WriteStats,
) -> BatchFailure {
    BatchFailure {
        table: table.to_string(),
        message,
        items_left,
        attempts,
        stats,
    }
}

/// Restore's default retry policy for a batch: up to 30 requests over at most five
/// minutes, backoff from 50 ms up to 5 s.
pub fn default_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 30,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(5),
        max_elapsed: Duration::from_secs(300),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Answers each request with the next scripted outcome: `Ok(n)` leaves the last `n`
    /// items unprocessed, `Err(class)` fails the request. Records what it stored.
    struct Scripted {
        script: Mutex<VecDeque<Result<usize, RetryClass>>>,
        stored: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(script: Vec<Result<usize, RetryClass>>) -> Self {
            Scripted {
                script: Mutex::new(script.into()),
                stored: Mutex::new(Vec::new()),
            }
        }
    }

    #[async_trait]
    impl BatchWrite for Scripted {
        async fn put_items(
            &self,
            _table: &str,
            mut items: Vec<Item>,
        ) -> Result<Vec<Item>, AttemptFailure> {
            let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok(0));
            match next {
                Err(class) => Err(AttemptFailure {
                    class,
                    message: format!("{class:?}"),
                }),
                Ok(n) => {
                    let left = items.split_off(items.len() - n.min(items.len()));
                    let mut stored = self.stored.lock().unwrap();
                    for i in items {
                        let AttributeValue::S(s) = &i["pk"] else {
                            panic!()
                        };
                        stored.push(s.clone());
                    }
                    Ok(left)
                }
            }
        }
    }

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item::from([("pk".to_string(), AttributeValue::S(format!("k{i}")))]))
            .collect()
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_elapsed: Duration::from_secs(5),
        }
    }

    /// The DynamoDB answers restore meets, as the shared classification sees them.
    #[test]
    fn classification() {
        use crate::aws::retry::Failure;
        let http = |status, code| Failure::Http { status, code };
        assert_eq!(
            classify(http(400, Some("ProvisionedThroughputExceededException"))),
            RetryClass::Throttled
        );
        assert_eq!(
            classify(http(400, Some("ThrottlingException"))),
            RetryClass::Throttled
        );
        assert_eq!(
            classify(http(400, Some("RequestLimitExceeded"))),
            RetryClass::Throttled
        );
        assert_eq!(classify(http(500, None)), RetryClass::Transient);
        assert_eq!(
            classify(http(503, Some("ServiceUnavailable"))),
            RetryClass::Transient
        );
        assert_eq!(
            classify(http(400, Some("ResourceNotFoundException"))),
            RetryClass::Permanent
        );
        assert_eq!(
            classify(http(400, Some("ValidationException"))),
            RetryClass::Permanent
        );
        assert_eq!(classify(Failure::Timeout), RetryClass::Transient);
        assert_eq!(classify(Failure::Connection), RetryClass::Transient);
        assert_eq!(classify(Failure::Local), RetryClass::Permanent);
    }

    #[tokio::test]
    async fn throttling_and_unprocessed_items_lose_nothing() {
        let w = Scripted::new(vec![
            Err(RetryClass::Throttled),
            Ok(20),
            Err(RetryClass::Transient),
            Ok(7),
            Ok(0),
        ]);
        let stats = write_batch(&w, "t", items(25), &quick(), 1).await.unwrap();
        let mut stored = w.stored.lock().unwrap().clone();
        stored.sort();
        let mut want: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
        want.sort();
        assert_eq!(stored, want);
        assert_eq!(
            stats,
            WriteStats {
                items: 25,
                requests: 5,
                unprocessed_retries: 2,
                throttles: 1,
                transient_retries: 1
            }
        );
    }

    #[tokio::test]
    async fn permanent_failures_stop_at_once() {
        let w = Scripted::new(vec![Ok(5), Err(RetryClass::Permanent)]);
        let e = write_batch(&w, "t", items(25), &quick(), 1)
            .await
            .unwrap_err();
        assert_eq!((e.attempts, e.items_left, e.stats.items), (2, 5, 20));
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let w = Scripted::new(vec![Err(RetryClass::Throttled); 100]);
        let e = write_batch(&w, "t", items(3), &quick(), 1)
            .await
            .unwrap_err();
        assert_eq!(e.attempts, 10);
        assert_eq!(e.stats.throttles, 10);
        let policy = RetryPolicy {
            max_elapsed: Duration::from_millis(30),
            max_delay: Duration::from_millis(20),
            base_delay: Duration::from_millis(20),
            max_attempts: 1000,
        };
        let w = Scripted::new(vec![Err(RetryClass::Transient); 1000]);
        let started = Instant::now();
        assert!(write_batch(&w, "t", items(3), &policy, 1).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
