//! The EventBridge adapter of [`EventPublisher`]: PutEvents, in chunks
//! EventBridge accepts.

use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{EventPublisher, chunks};
use crate::error::Transient;
use crate::store::OutboxEntry;

/// Publishes to an EventBridge bus with PutEvents.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
    attempts: u32,
    backoff: Duration,
}

impl EventBridgePublisher {
    /// A publisher to `bus` (a name or ARN).
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
            attempts: 4,
            backoff: Duration::from_millis(50),
        }
    }

    /// Sets how many times a failed entry is tried, and the first backoff
    /// (doubled after each try).
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    async fn publish_chunk(&self, chunk: &[OutboxEntry]) -> Result<(), Transient> {
        let mut pending: Vec<&OutboxEntry> = chunk.iter().collect();
        let mut delay = self.backoff;
        let mut last_errors = Vec::new();
        for attempt in 1..=self.attempts {
            let request: Vec<PutEventsRequestEntry> = pending
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(&e.detail)
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(request))
                .send()
                .await
                .map_err(|e| Transient::caused_by("EventBridge PutEvents failed", e))?;
            // PutEvents succeeds as a call while entries fail one by one:
            // FailedEntryCount must be checked, and the result entries line
            // up with the request entries by position.
            if out.failed_entry_count() == 0 {
                return Ok(());
            }
            let results = out.entries();
            last_errors.clear();
            let mut still = Vec::new();
            for (i, entry) in pending.iter().enumerate() {
                match results.get(i) {
                    Some(r) if r.error_code().is_none() && r.event_id().is_some() => {}
                    Some(r) => {
                        last_errors.push(format!(
                            "{}: {}",
                            r.error_code().unwrap_or("?"),
                            r.error_message().unwrap_or("")
                        ));
                        still.push(*entry);
                    }
                    None => still.push(*entry),
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            tracing::warn!(
                attempt,
                failed = pending.len(),
                "PutEvents entries failed; retrying only those"
            );
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(Transient::new(format!(
            "{} PutEvents entries still failing after {} attempts: {}",
            pending.len(),
            self.attempts,
            last_errors.join("; ")
        )))
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), Transient> {
        for chunk in chunks(entries) {
            self.publish_chunk(chunk).await?;
        }
        Ok(())
    }
}
