//! The publisher port, and its EventBridge (with the `aws` feature) and
//! in-memory adapters.

use std::future::Future;
use std::sync::Mutex;

use crate::error::Transient;
use crate::store::OutboxEntry;

#[cfg(feature = "aws")]
mod eventbridge;
#[cfg(feature = "aws")]
pub use eventbridge::EventBridgePublisher;

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
