//! The dead-letter port: where permanently failing records go, with their
//! reason, and its SQS and in-memory adapters.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::error::Transient;

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

impl DeadLetter {
    /// The SQS message attributes that carry the reason.
    pub fn attributes(&self) -> [(&'static str, String); 5] {
        [
            ("orderflow.error_kind", self.error_kind.clone()),
            (
                "orderflow.error_message",
                truncate(&self.error_message, 1024),
            ),
            ("orderflow.function", self.function.clone()),
            (
                "orderflow.original_message_id",
                self.original_message_id.clone(),
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

/// Where dead letters go.
pub trait DeadLetterSink: Send + Sync {
    /// Sends one dead letter. An error means it was not stored, and the
    /// record must not be acknowledged.
    fn send(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), Transient>> + Send;
}

/// Sends dead letters to an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetters {
    /// Dead letters to `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl DeadLetterSink for SqsDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), Transient> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&letter.body);
        for (name, value) in letter.attributes() {
            let attribute = MessageAttributeValue::builder()
                .data_type(if name.ends_with("receive_count") {
                    "Number"
                } else {
                    "String"
                })
                .string_value(value)
                .build()
                .map_err(|e| Transient::caused_by("building a DLQ message attribute", e))?;
            request = request.message_attributes(name, attribute);
        }
        request
            .send()
            .await
            .map_err(|e| Transient::caused_by("SQS SendMessage to the DLQ failed", e))?;
        Ok(())
    }
}

/// Keeps dead letters in memory (tests) and logs them (local invoke).
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
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
}
