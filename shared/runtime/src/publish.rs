//! The publisher port, and its EventBridge and in-memory adapters.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::Transient;
use crate::store::OutboxEntry;

/// PutEvents takes at most 10 entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// PutEvents takes at most 256 KB per call, counting each entry's source,
/// detail-type and detail.
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;

/// The size EventBridge counts for one entry.
pub fn entry_size(entry: &OutboxEntry) -> usize {
    entry.source.len() + entry.detail_type.len() + entry.detail.len()
}

/// Splits entries into PutEvents calls: at most 10 entries and under 256 KB
/// each. An entry too large to send alone gets a call of its own, and
/// EventBridge will refuse it; the processor refuses such outcomes before
/// committing them, so that cannot happen with stored outboxes.
pub fn chunks(entries: &[OutboxEntry]) -> Vec<&[OutboxEntry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, entry) in entries.iter().enumerate() {
        let size = entry_size(entry);
        let full = i - start == MAX_ENTRIES_PER_CALL || bytes + size > MAX_BYTES_PER_CALL;
        if full && i > start {
            out.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// Publishes events to the bus.
pub trait EventPublisher: Send + Sync {
    /// Publishes every entry, or fails with nothing known about which went
    /// out. Consumers are idempotent by event id, so re-publishing is safe.
    fn publish(
        &self,
        entries: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), Transient>> + Send;
}

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

/// Keeps published events in memory (tests) and logs them (local invoke).
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    published: Mutex<Vec<OutboxEntry>>,
}

impl MemoryPublisher {
    /// An empty publisher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything published so far, in order.
    pub fn published(&self) -> Vec<OutboxEntry> {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets what was published.
    pub fn clear(&self) {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl EventPublisher for MemoryPublisher {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), Transient> {
        for entry in entries {
            // Debug: a record's info line is its outcome line.
            tracing::debug!(
                detail_type = %entry.detail_type,
                published_event_id = %entry.event_id,
                "published (memory)"
            );
        }
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(entries);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_contracts::EventId;

    fn entry(detail_len: usize) -> OutboxEntry {
        OutboxEntry {
            event_id: EventId::from_uuid(uuid::Uuid::nil()),
            source: "s".into(),
            detail_type: "t".into(),
            detail: "x".repeat(detail_len),
        }
    }

    #[test]
    fn chunks_hold_at_most_ten_entries() {
        let entries: Vec<_> = (0..23).map(|_| entry(10)).collect();
        let sizes: Vec<_> = chunks(&entries).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
    }

    #[test]
    fn chunks_stay_under_256_kb() {
        let entries: Vec<_> = (0..5).map(|_| entry(100 * 1024)).collect();
        let all = chunks(&entries);
        assert_eq!(
            all.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        for chunk in all {
            assert!(chunk.iter().map(entry_size).sum::<usize>() <= MAX_BYTES_PER_CALL);
        }
    }
}
