//! The publisher port, and its EventBridge (with the `aws` feature) and
//! in-memory adapters.

use std::future::Future;
use std::sync::Mutex;

use futures::channel::oneshot;

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

/// Sends the entries of concurrent publishes together: a publish made while
/// another is sending waits for it, and the next send carries every entry
/// that waited meanwhile (split into calls of 10 entries by the publisher
/// inside). The records of an SQS batch run concurrently and each publishes
/// its own outbox, so a batch takes about as many PutEvents calls as it has
/// waves of records, not one per record; nothing waits for a send that is
/// not already under way.
///
/// A publish returns once its own entries have gone out, and fails if the
/// send that carried them failed: the same promise as one publish alone
/// (consumers are idempotent by event id, so the other entries of a failed
/// send going out anyway is safe). The publish that finds no send under
/// way makes the sends, and returns when nothing waits any more: within a
/// batch, a wave or two later than its own. A publish whose send is
/// abandoned (the future sending it dropped or unwound) fails rather than
/// waits forever.
#[derive(Debug)]
pub struct Coalescing<P> {
    inner: P,
    queue: Mutex<Queue>,
}

/// The publishes waiting for a send.
#[derive(Debug, Default)]
struct Queue {
    /// A publish is sending, and sends whatever waits when it is done.
    sending: bool,
    waiting: Vec<Waiting>,
}

/// One publish's entries, and where its result goes.
#[derive(Debug)]
struct Waiting {
    entries: Vec<OutboxEntry>,
    done: oneshot::Sender<Result<(), Transient>>,
}

impl<P: EventPublisher> Coalescing<P> {
    /// Coalesces the publishes sent through `inner`.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            queue: Mutex::new(Queue::default()),
        }
    }

    /// The publisher inside.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends what waits, then what waited meanwhile, until nothing does.
    async fn send_all(&self) {
        let mut sending = Sending(Some(&self.queue));
        loop {
            let group = {
                let mut queue = self.queue();
                if queue.waiting.is_empty() {
                    // Under the same lock a new publish checks `sending` by.
                    queue.sending = false;
                    sending.0 = None;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let entries: Vec<OutboxEntry> = group
                .iter()
                .flat_map(|w| w.entries.iter().cloned())
                .collect();
            let result = self.inner.publish(&entries).await;
            let failure = result.err().map(|e| crate::error::chain(&e));
            for waiting in group {
                // A publish that stopped waiting wants no answer.
                let _ = waiting.done.send(match &failure {
                    None => Ok(()),
                    Some(why) => Err(Transient::new(why.clone())),
                });
            }
        }
    }
}

/// Ends a send that did not finish: no publish is sending any more, and
/// those waiting fail (their senders dropped) instead of waiting for it.
struct Sending<'q>(Option<&'q Mutex<Queue>>);

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if let Some(queue) = self.0 {
            let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.sending = false;
            queue.waiting.clear();
        }
    }
}

impl<P: EventPublisher> EventPublisher for Coalescing<P> {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), Transient> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, result) = oneshot::channel();
        let lead = {
            let mut queue = self.queue();
            queue.waiting.push(Waiting {
                entries: entries.to_vec(),
                done,
            });
            !std::mem::replace(&mut queue.sending, true)
        };
        if lead {
            self.send_all().await;
        }
        result.await.unwrap_or_else(|_| {
            Err(Transient::new(
                "the send carrying these events was abandoned; nothing is known of them",
            ))
        })
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

    /// Records each send, and answers it after giving way once, as a real
    /// send would: `fail` and `hang` name sends (from 1) that fail or never
    /// end.
    #[derive(Default)]
    struct Recording {
        sends: Mutex<Vec<Vec<OutboxEntry>>>,
        fail: Option<usize>,
        hang: Option<usize>,
    }

    impl Recording {
        fn sends(&self) -> Vec<Vec<OutboxEntry>> {
            self.sends.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    impl EventPublisher for Recording {
        async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), Transient> {
            let n = {
                let mut sends = self.sends.lock().unwrap_or_else(|p| p.into_inner());
                sends.push(entries.to_vec());
                sends.len()
            };
            tokio::task::yield_now().await;
            if self.hang == Some(n) {
                std::future::pending::<()>().await;
            }
            if self.fail == Some(n) {
                return Err(Transient::new("PutEvents refused"));
            }
            Ok(())
        }
    }

    /// An outbox of `n` entries whose details name `who`.
    fn outbox(who: &str, n: usize) -> Vec<OutboxEntry> {
        (0..n)
            .map(|i| OutboxEntry {
                detail: format!("{who}{i}"),
                ..entry(0)
            })
            .collect()
    }

    fn details(entries: &[OutboxEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.detail.as_str()).collect()
    }

    #[tokio::test]
    async fn publishes_made_while_one_sends_go_out_together_in_the_next_send() {
        let publisher = Coalescing::new(Recording::default());
        let outboxes: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|who| outbox(who, 2))
            .collect();
        let results =
            futures::future::join_all(outboxes.iter().map(|o| publisher.publish(o))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let sends = publisher.inner().sends();
        // The first alone; the four made while it was sending, in one.
        assert_eq!(
            sends.iter().map(|s| details(s)).collect::<Vec<_>>(),
            vec![
                vec!["a0", "a1"],
                vec!["b0", "b1", "c0", "c1", "d0", "d1", "e0", "e1"],
            ]
        );
    }

    #[tokio::test]
    async fn publishes_one_after_another_each_send_their_own() {
        let publisher = Coalescing::new(Recording::default());
        for who in ["a", "b", "c"] {
            assert!(publisher.publish(&outbox(who, 1)).await.is_ok());
        }
        assert!(publisher.publish(&[]).await.is_ok());
        assert_eq!(publisher.inner().sends().len(), 3);
    }

    #[tokio::test]
    async fn a_failed_send_fails_exactly_the_publishes_it_carried() {
        let publisher = Coalescing::new(Recording {
            fail: Some(2),
            ..Recording::default()
        });
        let outboxes = [outbox("a", 1), outbox("b", 1), outbox("c", 1)];
        let results =
            futures::future::join_all(outboxes.iter().map(|o| publisher.publish(o))).await;
        assert!(results[0].is_ok());
        for failed in &results[1..] {
            let why = failed.as_ref().err().map(ToString::to_string);
            assert_eq!(why.as_deref(), Some("PutEvents refused"));
        }
        // The next publish is sent as usual.
        assert!(publisher.publish(&outbox("d", 1)).await.is_ok());
        assert_eq!(publisher.inner().sends().len(), 3);
    }

    #[tokio::test]
    async fn a_send_abandoned_midway_fails_its_waiters_and_holds_up_no_later_publish() {
        let publisher = Coalescing::new(Recording {
            hang: Some(1),
            ..Recording::default()
        });
        let (a, b) = (outbox("a", 1), outbox("b", 1));
        let mut sending = Box::pin(publisher.publish(&a));
        assert!(futures::poll!(sending.as_mut()).is_pending());
        let mut waiting = Box::pin(publisher.publish(&b));
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(sending);
        let abandoned = waiting.await.err().map(|e| e.to_string());
        assert!(
            abandoned
                .as_deref()
                .is_some_and(|e| e.contains("abandoned")),
            "{abandoned:?}"
        );
        assert!(publisher.publish(&outbox("c", 1)).await.is_ok());
        assert_eq!(
            publisher
                .inner()
                .sends()
                .iter()
                .map(|s| details(s))
                .collect::<Vec<_>>(),
            vec![vec!["a0"], vec!["c0"]]
        );
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
