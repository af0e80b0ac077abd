//! The queue port, and its SQS (with the `aws` feature) and in-memory
//! adapters: where permanently failing records go, with their reason, and
//! when a record that failed for now comes back.
//!
//! A record reported as a batch item failure stays invisible for the
//! queue's whole visibility timeout (60 s here) before SQS delivers it
//! again. [`DeadLetterSink::retry_later`] shortens that to [`backoff`]:
//! 2 s after the first receive, doubling up to 60 s. With the template's
//! `maxReceiveCount` of 10 a record that keeps failing is still retried for
//! about five minutes before SQS moves it to the DLQ, but a brief fault
//! (a throttle, a conflicting write, a flaky dependency) costs seconds.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::Transient;

#[cfg(feature = "aws")]
mod sqs;
#[cfg(feature = "aws")]
pub use sqs::{SqsDeadLetters, change_visibility};

/// The first retry's delay.
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest delay: the queues' visibility timeout.
pub const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// How long a record that failed on its `receive_count`-th receive waits
/// before SQS delivers it again: 2 s, 4 s, 8 s, … at most 60 s.
pub fn backoff(receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(16);
    FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY)
}

/// One failed record to deliver again after `delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryLater {
    /// The receipt handle it was delivered with.
    pub receipt_handle: String,
    /// How long until SQS delivers it again.
    pub delay: Duration,
}

/// A record that can never succeed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The original body, unchanged, so it can be redriven.
    pub body: String,
    /// The error kind, e.g. `unknown_version`.
    pub error_kind: String,
    /// The error message, with its cause chain.
    pub error_message: String,
    /// The function that gave up on it.
    pub function: String,
    /// The SQS message id it arrived with (or the request id of a direct
    /// invocation).
    pub original_message_id: String,
    /// How many times it had been received.
    pub receive_count: u32,
}

/// The most bytes a dead letter's reason attributes take, names and data
/// types included. SQS counts them in the message's size, so a DLQ must
/// take messages this much larger than its source queue does, or the
/// largest bodies could never be dead-lettered with their reason (the
/// template's `MaximumMessageSize`s are checked against it).
pub const ATTRIBUTE_BYTES_MAX: usize = 2048;

/// The longest error message a dead letter carries, in bytes.
const ERROR_MESSAGE_BYTES_MAX: usize = 1024;

/// The longest message id a dead letter names: an SQS message id is at
/// most 100 characters, and so is a Lambda request id.
const MESSAGE_ID_BYTES_MAX: usize = 100;

impl DeadLetter {
    /// The SQS message attributes that carry the reason.
    pub fn attributes(&self) -> [(&'static str, String); 5] {
        [
            ("orderflow.error_kind", self.error_kind.clone()),
            (
                "orderflow.error_message",
                truncate(&self.error_message, ERROR_MESSAGE_BYTES_MAX),
            ),
            ("orderflow.function", self.function.clone()),
            (
                "orderflow.original_message_id",
                truncate(&self.original_message_id, MESSAGE_ID_BYTES_MAX),
            ),
            ("orderflow.receive_count", self.receive_count.to_string()),
        ]
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Where dead letters go, and how failed records come back.
pub trait DeadLetterSink: Send + Sync {
    /// Sends one dead letter. An error means it was not stored, and the
    /// record must not be acknowledged.
    fn send(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), Transient>> + Send;

    /// Sets when the records in `retries`, delivered from the queue
    /// `queue_arn` and about to be reported as failed, are delivered again.
    /// An error leaves them to the queue's visibility timeout: later, but
    /// not lost.
    fn retry_later(
        &self,
        queue_arn: &str,
        retries: &[RetryLater],
    ) -> impl Future<Output = Result<(), Transient>> + Send;
}

/// Keeps dead letters and retry delays in memory (tests, local invoke).
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
    retries: Mutex<Vec<(String, RetryLater)>>,
    fail: AtomicBool,
}

impl MemoryDeadLetters {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything sent so far.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every retry delay asked for so far, with its queue's ARN.
    pub fn retries(&self) -> Vec<(String, RetryLater)> {
        self.retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes every later send fail (to test that nothing is then dropped).
    pub fn fail_sends(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}

impl DeadLetterSink for MemoryDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), Transient> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Transient::new("dead-letter queue unavailable (test)"));
        }
        self.letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(letter.clone());
        Ok(())
    }
    async fn retry_later(&self, queue_arn: &str, retries: &[RetryLater]) -> Result<(), Transient> {
        self.retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(retries.iter().map(|r| (queue_arn.to_owned(), r.clone())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_attributes_fit_their_budget_whatever_the_error() {
        let letter = DeadLetter {
            body: String::new(),
            error_kind: "unknown_detail_type".into(),
            error_message: "é".repeat(100_000),
            function: "inventory".into(),
            original_message_id: "m".repeat(1_000),
            receive_count: u32::MAX,
        };
        // SQS counts each attribute's name, data type and value.
        let bytes: usize = letter
            .attributes()
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum();
        assert!(bytes <= ATTRIBUTE_BYTES_MAX, "{bytes} bytes");
    }

    #[test]
    fn backoff_doubles_from_two_seconds_up_to_the_visibility_timeout() {
        let secs: Vec<u64> = (0..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [2, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), LONGEST_RETRY);
        // maxReceiveCount 10: nine waits before SQS gives up, about 5 min.
        let patience: u64 = (1..10).map(|n| backoff(n).as_secs()).sum();
        assert_eq!(patience, 302);
    }
}
