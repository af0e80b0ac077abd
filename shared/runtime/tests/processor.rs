//! Idempotency with an outbox: duplicates never apply twice and re-publish
//! the stored outcome with the same event ids.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use orderflow_contracts::{
    AuthorizationId, Currency, Event, EventKind, Message, MinorUnits, PaymentAuthorized,
};
use orderflow_runtime::dlq::MemoryDeadLetters;
use orderflow_runtime::lambda::{Handler, Response, memory_store};
use orderflow_runtime::metrics::MetricsOut;
use orderflow_runtime::publish::{Coalescing, EventPublisher, MemoryPublisher};
use orderflow_runtime::store::{
    Commit, CommitError, CounterChange, MemoryStore, OrderRecord, OutboxEntry, Snapshot, StateStore,
};
use orderflow_runtime::{Decision, Input, Processed, Processor, RecordError, Service, Transient};
use serde::{Deserialize, Serialize};

/// Consumes `OrderPlaced`: takes one unit of `STOCK#X` and emits one event.
struct Counting;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    orders: u32,
}

impl Service for Counting {
    type State = Seen;
    type Contract = Message;
    const FUNCTION: &'static str = "payment";

    fn consumes(&self, kind: EventKind) -> bool {
        kind == EventKind::OrderPlaced
    }

    fn counters(&self, _: &Message) -> Vec<String> {
        vec!["STOCK#X".into()]
    }

    async fn handle(&self, input: Input<'_, Seen>) -> Result<Decision<Seen>, RecordError> {
        let event = Event::PaymentAuthorized(PaymentAuthorized {
            authorization_id: AuthorizationId::new("auth_1")
                .map_err(|e| RecordError::rejected("rejected", e))?,
            amount_minor: MinorUnits(100),
            currency: Currency::new("EUR").map_err(|e| RecordError::rejected("rejected", e))?,
        });
        Ok(Decision {
            state: Seen {
                orders: input.state.orders + 1,
            },
            counters: vec![CounterChange {
                key: "STOCK#X".into(),
                delta: -1,
            }],
            emit: vec![event],
        })
    }
}

/// Fails its first `n` publishes.
#[derive(Default)]
struct Flaky {
    failures_left: AtomicU32,
    inner: MemoryPublisher,
}

impl EventPublisher for Flaky {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), Transient> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Transient::new("EventBridge unavailable (test)"));
        }
        self.inner.publish(entries).await
    }
}

/// payment's sample `OrderPlaced`, as the bus delivers it.
fn order_envelope() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/payment/order-placed.eventbridge.json"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"))
}

fn order() -> Message {
    Message::from_bus_json(&order_envelope()).unwrap_or_else(|e| panic!("{e}"))
}

fn processor(failures: u32) -> Processor<Counting, MemoryStore, Flaky> {
    let store = MemoryStore::new();
    store.set_counter("STOCK#X", 5);
    let publisher = Flaky {
        failures_left: AtomicU32::new(failures),
        inner: MemoryPublisher::new(),
    };
    Processor::new(Counting, store, publisher, 3600)
}

/// Processes `message`, which must fail.
async fn fails<S: Service<Contract = Message>, St: StateStore, P: EventPublisher>(
    p: &Processor<S, St, P>,
    message: &Message,
) -> RecordError {
    match p.process(message).await {
        Ok(done) => panic!("must fail, but {done:?}"),
        Err(err) => err,
    }
}

#[tokio::test]
async fn a_duplicate_is_not_applied_twice_and_republishes_the_same_ids() {
    let p = processor(0);
    let message = order();
    let first = p.process(&message).await.unwrap();
    assert_eq!(first, Processed::Applied { published: 1 });
    for _ in 0..2 {
        let again = p.process(&message).await.unwrap();
        assert_eq!(again, Processed::Duplicate { republished: 1 });
    }
    assert_eq!(
        p.store().counter("STOCK#X"),
        Some(4),
        "the effect applied once"
    );
    let published = p.publisher().inner.published();
    assert_eq!(published.len(), 3);
    assert!(
        published.iter().all(|e| *e == published[0]),
        "byte-identical re-publishes"
    );
    let state = p
        .store()
        .state(message.meta.order_id.as_str())
        .unwrap_or_default();
    assert_eq!(state, r#"{"orders":1}"#);
}

#[tokio::test]
async fn a_publish_failure_after_commit_is_recovered_by_the_redelivery() {
    let p = processor(1);
    let message = order();
    let err = fails(&p, &message).await;
    assert!(!err.is_permanent(), "a publish failure is retried: {err}");
    assert!(p.publisher().inner.published().is_empty());
    let again = p.process(&message).await.unwrap();
    assert_eq!(again, Processed::Duplicate { republished: 1 });
    assert_eq!(p.store().counter("STOCK#X"), Some(4));
    assert_eq!(p.publisher().inner.published().len(), 1);
}

/// What a test does before each commit of a [`Meddling`] store: a conflict
/// it returns stops that commit.
trait BeforeCommit: Send + Sync {
    fn before_commit(&self) -> impl Future<Output = Option<CommitError>> + Send;
}

/// A store on a shared in-memory table, whose commits a test meddles with.
struct Meddling<H> {
    table: Arc<MemoryStore>,
    hook: H,
}

impl<H: BeforeCommit> StateStore for Meddling<H> {
    async fn load(
        &self,
        event: orderflow_contracts::EventId,
        order: &str,
        counters: &[String],
    ) -> Result<Snapshot, Transient> {
        self.table.load(event, order, counters).await
    }

    async fn write_ahead(
        &self,
        order: &str,
        expected_version: u64,
        record: &OrderRecord,
    ) -> Result<(), CommitError> {
        self.table
            .write_ahead(order, expected_version, record)
            .await
    }

    async fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        if let Some(conflict) = self.hook.before_commit().await {
            return Err(conflict);
        }
        self.table.commit(commit).await
    }
}

/// Before the first commit, a rival delivery of the same message runs to
/// its end through another processor on the same table: two deliveries of
/// one event at once, the rival committing between this one's load and its
/// commit.
struct Rival {
    processor: Processor<Counting, Arc<MemoryStore>, MemoryPublisher>,
    message: Message,
    raced: AtomicBool,
    done: std::sync::Mutex<Option<Result<Processed, RecordError>>>,
}

impl BeforeCommit for Rival {
    async fn before_commit(&self) -> Option<CommitError> {
        if !self.raced.swap(true, Ordering::SeqCst) {
            let done = self.processor.process(&self.message).await;
            *self.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(done);
        }
        None
    }
}

#[tokio::test]
async fn two_deliveries_at_once_apply_once_and_publish_the_same_outcome() {
    let table = Arc::new(MemoryStore::new());
    table.set_counter("STOCK#X", 5);
    let message = order();
    let store = Meddling {
        table: Arc::clone(&table),
        hook: Rival {
            processor: Processor::new(Counting, Arc::clone(&table), MemoryPublisher::new(), 3600),
            message: message.clone(),
            raced: AtomicBool::new(false),
            done: std::sync::Mutex::new(None),
        },
    };
    let p = Processor::new(Counting, store, MemoryPublisher::new(), 3600);

    let done = p.process(&message).await.unwrap();

    let rival = p.store().hook.done.lock().unwrap().take();
    assert_eq!(
        rival.map(|r| r.ok()),
        Some(Some(Processed::Applied { published: 1 }))
    );
    // Its commit found the event completed: it loaded again and re-published
    // what the rival left, as a duplicate.
    assert_eq!(done, Processed::Duplicate { republished: 1 });
    assert_eq!(table.counter("STOCK#X"), Some(4), "applied once");
    let ours = p.publisher().published();
    let theirs = p.store().hook.processor.publisher().published();
    assert_eq!(ours, theirs, "the same events, with the same ids");
}

#[tokio::test]
async fn a_failed_commit_leaves_nothing_in_the_way_of_the_retry() {
    let p = processor(0);
    p.store().set_counter("STOCK#X", 0);
    let message = order();
    // The commit's counter condition fails: a conflict, retried.
    let err = fails(&p, &message).await;
    assert!(err.to_string().contains("conflict"), "{err}");
    p.store().set_counter("STOCK#X", 1);
    let done = p.process(&message).await.unwrap();
    assert_eq!(done, Processed::Applied { published: 1 });
    assert_eq!(p.store().counter("STOCK#X"), Some(0));
}

#[tokio::test]
async fn an_event_the_function_does_not_consume_is_permanent() {
    let p = processor(0);
    let mut message = order();
    message.event = Event::PaymentAuthorized(PaymentAuthorized {
        authorization_id: AuthorizationId::new("a").unwrap(),
        amount_minor: MinorUnits(1),
        currency: Currency::new("EUR").unwrap(),
    });
    let err = fails(&p, &message).await;
    assert!(err.is_permanent());
    assert_eq!(err.kind(), "unexpected_event");
}

#[test]
fn outgoing_ids_derive_from_the_cause_and_link_back_to_it() {
    let message = order();
    let emit = || {
        vec![Event::PaymentAuthorized(PaymentAuthorized {
            authorization_id: AuthorizationId::new("a").unwrap(),
            amount_minor: MinorUnits(1),
            currency: Currency::new("EUR").unwrap(),
        })]
    };
    let a = orderflow_runtime::Contract::outbox(&message, emit());
    let b = orderflow_runtime::Contract::outbox(&message, emit());
    assert_eq!(a[0].event_id, b[0].event_id);
    let decoded = Message::from_detail(EventKind::PaymentAuthorized, &a[0].detail).unwrap();
    assert_eq!(decoded.meta.causation_id, Some(message.meta.event_id));
    assert_eq!(decoded.meta.order_id, message.meta.order_id);
    assert_eq!(decoded.meta.event_id, a[0].event_id);
    assert_eq!(a[0].source, "orderflow.payment");
}

/// The first `n` commits meet a conflict.
struct Conflicts(AtomicU32);

impl BeforeCommit for Conflicts {
    async fn before_commit(&self) -> Option<CommitError> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
            .then(|| CommitError::Conflict("order changed (test)".into()))
    }
}

fn conflicting(conflicts: u32) -> Processor<Counting, Meddling<Conflicts>, MemoryPublisher> {
    let table = Arc::new(MemoryStore::new());
    table.set_counter("STOCK#X", 5);
    let store = Meddling {
        table,
        hook: Conflicts(AtomicU32::new(conflicts)),
    };
    Processor::new(Counting, store, MemoryPublisher::new(), 3600)
}

#[tokio::test]
async fn a_write_conflict_is_decided_again_in_the_same_delivery() {
    let p = conflicting(4);
    let done = p.process(&order()).await.unwrap();
    assert_eq!(done, Processed::Applied { published: 1 });
    assert_eq!(p.store().table.counter("STOCK#X"), Some(4));
}

#[tokio::test]
async fn a_persistent_conflict_goes_back_to_sqs_as_transient() {
    let p = conflicting(5);
    let message = order();
    let err = fails(&p, &message).await;
    assert!(!err.is_permanent());
    assert!(err.to_string().contains("after 5 attempts"), "{err}");
    // Nothing holds the event: the redelivery goes through at once.
    let done = p.process(&message).await.unwrap();
    assert_eq!(done, Processed::Applied { published: 1 });
}

/// [`Counting`], with a counter for memory mode's store to start with.
struct Seeded;

impl Service for Seeded {
    type State = Seen;
    type Contract = Message;
    const FUNCTION: &'static str = "inventory";

    fn consumes(&self, kind: EventKind) -> bool {
        Counting.consumes(kind)
    }

    fn memory_counters(&self) -> Vec<(String, i64)> {
        vec![("STOCK#X".into(), 7)]
    }

    async fn handle(&self, input: Input<'_, Seen>) -> Result<Decision<Seen>, RecordError> {
        Counting.handle(input).await
    }
}

#[test]
fn memory_mode_starts_with_the_services_own_counters_and_none_by_default() {
    assert_eq!(memory_store(&Seeded).counter("STOCK#X"), Some(7));
    assert_eq!(memory_store(&Counting).counter("STOCK#X"), None);
}

#[tokio::test]
async fn a_redelivery_after_the_idempotency_record_expired_applies_nothing_and_republishes() {
    let p = processor(0);
    let message = order();
    let first = p.process(&message).await.unwrap();
    assert_eq!(first, Processed::Applied { published: 1 });
    // Day 8: DynamoDB's TTL has removed the idempotency record; a DLQ
    // redrive or an archive replay delivers the event again.
    p.store().expire_event_records();
    let again = p.process(&message).await.unwrap();
    assert_eq!(again, Processed::Duplicate { republished: 1 });
    assert_eq!(p.store().counter("STOCK#X"), Some(4), "applied once");
    let published = p.publisher().inner.published();
    assert_eq!(published.len(), 2);
    assert_eq!(
        published[0], published[1],
        "the same outbox, the same event ids"
    );
}

#[tokio::test]
async fn an_event_id_reused_with_other_contents_is_refused_naming_both() {
    let p = processor(0);
    let message = order();
    p.process(&message).await.unwrap();
    let mut reused = message.clone();
    reused.meta.order_id = orderflow_contracts::OrderId::new("ord-someone-else").unwrap();
    let err = fails(&p, &reused).await;
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.kind(), "event_id_reused");
    let text = err.to_string();
    assert!(text.contains(message.meta.order_id.as_str()), "{text}");
    assert!(text.contains("ord-someone-else"), "{text}");
    assert_eq!(p.store().counter("STOCK#X"), Some(4), "nothing applied");

    // Past the idempotency record's TTL, the order's record still knows it.
    p.store().expire_event_records();
    let mut changed = message.clone();
    changed.meta.occurred_at += chrono::Duration::seconds(1);
    let err = fails(&p, &changed).await;
    assert_eq!(err.kind(), "event_id_reused", "{err}");
    assert_eq!(p.store().counter("STOCK#X"), Some(4), "nothing applied");
}

#[tokio::test]
async fn an_order_id_opened_again_with_other_contents_is_refused_and_a_retry_is_not() {
    let p = processor(0);
    let message = order();
    p.process(&message).await.unwrap();

    // The storefront retried with a new event id: same order, same data.
    let mut retried = message.clone();
    retried.meta.event_id = orderflow_contracts::EventId::from_uuid(uuid::Uuid::from_u128(7));
    retried.meta.occurred_at += chrono::Duration::seconds(5);
    assert!(p.process(&retried).await.is_ok());

    // Another order under the same id.
    let mut other = message.clone();
    other.meta.event_id = orderflow_contracts::EventId::from_uuid(uuid::Uuid::from_u128(8));
    if let Event::OrderPlaced(order) = &mut other.event {
        order.total_minor = MinorUnits(order.total_minor.0 + 1);
    }
    let err = fails(&p, &other).await;
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.kind(), "order_id_reused");
    let text = err.to_string();
    assert!(text.contains(&message.meta.event_id.to_string()), "{text}");
    assert!(text.contains(&other.meta.event_id.to_string()), "{text}");
}

/// Writes ahead, then fails as a provider timeout would.
struct WritesAheadThenTimesOut;

impl Service for WritesAheadThenTimesOut {
    type State = Seen;
    type Contract = Message;
    const FUNCTION: &'static str = "payment";

    fn consumes(&self, kind: EventKind) -> bool {
        kind == EventKind::OrderPlaced
    }

    async fn handle(&self, input: Input<'_, Seen>) -> Result<Decision<Seen>, RecordError> {
        input
            .ahead
            .write(&Seen {
                orders: input.state.orders + 100,
            })
            .await?;
        Err(Transient::new("provider timed out (test)").into())
    }
}

#[tokio::test]
async fn a_write_ahead_outlives_the_delivery_that_failed_after_it() {
    let p = Processor::new(
        WritesAheadThenTimesOut,
        MemoryStore::new(),
        MemoryPublisher::new(),
        3600,
    );
    let message = order();
    let err = fails(&p, &message).await;
    assert!(!err.is_permanent());
    let record = p
        .store()
        .order(message.meta.order_id.as_str())
        .unwrap_or_else(|| panic!("no record written ahead"));
    assert_eq!(record.state, r#"{"orders":100}"#);
    assert!(record.applied.is_empty(), "the event is not applied");
    assert_eq!(
        record.opened_by.map(|o| o.event_id),
        Some(message.meta.event_id)
    );
}

/// Counts its sends, each of which gives way once before it is done, as a
/// real send would.
#[derive(Default)]
struct Sending {
    sends: AtomicU32,
    inner: MemoryPublisher,
}

impl EventPublisher for Sending {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), Transient> {
        self.sends.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        self.inner.publish(entries).await
    }
}

#[tokio::test]
async fn the_records_of_a_batch_share_their_publishes() {
    let envelope = order_envelope();
    let records: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            let body = envelope
                .replace("ord-1001", &format!("ord-200{i}"))
                .replace("c15923a5-8eee-50d0", &format!("c15923a5-8eee-50d{i}"));
            serde_json::json!({
                "messageId": format!("m{i}"),
                "receiptHandle": format!("r{i}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orderflow-payment",
            })
        })
        .collect();
    let payload = serde_json::json!({ "Records": records }).to_string();
    let store = MemoryStore::new();
    store.set_counter("STOCK#X", 10);
    let processor = Processor::new(Counting, store, Coalescing::new(Sending::default()), 3600);
    let handler =
        Handler::new(processor, MemoryDeadLetters::new(), 8).with_metrics(MetricsOut::memory());
    let response = handler.handle(&payload, None, "test").await;
    assert!(
        matches!(&response, Ok(Response::Batch(b)) if b.batch_item_failures.is_empty()),
        "{response:?}"
    );
    let sending = handler.processor().publisher().inner();
    let published = sending.inner.published();
    assert_eq!(published.len(), 5, "one event per order");
    // The first record's send, then one for the four that decided meanwhile.
    assert_eq!(sending.sends.load(Ordering::SeqCst), 2);
}
