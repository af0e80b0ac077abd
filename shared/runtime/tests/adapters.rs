//! The SDK adapters, against `aws-smithy-mocks`: partial failures,
//! throttling, conditional checks and transaction cancellations.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemError, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::error::{
    ProvisionedThroughputExceededException, TransactionCanceledException,
};
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_sdk_sqs::operation::send_message::SendMessageOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use orderflow_contracts::EventId;
use orderflow_contracts::{EventKind, Message};
use orderflow_runtime::dlq::{DeadLetter, DeadLetterSink, SqsDeadLetters};
use orderflow_runtime::publish::{EventBridgePublisher, EventPublisher, MemoryPublisher};
use orderflow_runtime::store::{
    Commit, CommitError, Completed, CounterChange, DynamoStore, Fingerprint, FirstSeen,
    OrderRecord, OutboxEntry, StateStore, Ticket,
};
use orderflow_runtime::{Decision, Input, Processed, Processor, RecordError, Service};

fn entry(n: u128) -> OutboxEntry {
    OutboxEntry {
        event_id: EventId::from_uuid(uuid::Uuid::from_u128(n)),
        source: "orderflow.payment".into(),
        detail_type: "PaymentAuthorized".into(),
        detail: format!("{{\"n\":{n}}}"),
    }
}

fn ok_entry() -> PutEventsResultEntry {
    PutEventsResultEntry::builder().event_id("eb-id").build()
}

fn failed_entry() -> PutEventsResultEntry {
    PutEventsResultEntry::builder()
        .error_code("InternalFailure")
        .error_message("try again")
        .build()
}

#[tokio::test]
async fn put_events_retries_only_the_failed_entries() {
    let first = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|req| req.entries().len() == 3)
        .then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(ok_entry())
                .entries(failed_entry())
                .entries(ok_entry())
                .build()
        });
    let retry = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|req| {
            req.entries().len() == 1 && req.entries()[0].detail() == Some("{\"n\":2}")
        })
        .then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(0)
                .entries(ok_entry())
                .build()
        });
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, &[&first, &retry]);
    let publisher =
        EventBridgePublisher::new(client, "orderflow").with_retries(3, Duration::from_millis(1));

    publisher
        .publish(&[entry(1), entry(2), entry(3)])
        .await
        .unwrap();
    assert_eq!(first.num_calls(), 1);
    assert_eq!(retry.num_calls(), 1, "only the failed entry is sent again");
}

#[tokio::test]
async fn put_events_that_keep_failing_are_a_transient_error() {
    let failing = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(failed_entry())
            .build()
    });
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, &[&failing]);
    let publisher =
        EventBridgePublisher::new(client, "orderflow").with_retries(3, Duration::from_millis(1));
    let err = publisher
        .publish(&[entry(1)])
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(err.to_string().contains("InternalFailure"), "{err}");
    assert_eq!(failing.num_calls(), 3);
}

#[tokio::test]
async fn put_events_goes_out_in_chunks_of_ten() {
    let chunk = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|req| req.entries().len() <= 10)
        .then_compute_output(|req| {
            let mut out = PutEventsOutput::builder().failed_entry_count(0);
            for _ in req.entries() {
                out = out.entries(ok_entry());
            }
            out.build()
        });
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, &[&chunk]);
    let publisher = EventBridgePublisher::new(client, "orderflow");
    let entries: Vec<_> = (0..25).map(entry).collect();
    publisher.publish(&entries).await.unwrap();
    assert_eq!(chunk.num_calls(), 3);
}

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

#[tokio::test]
async fn throttled_put_events_is_retried_by_the_sdk_then_succeeds() {
    let throttled_then_ok = mock!(aws_sdk_eventbridge::Client::put_events)
        .sequence()
        .http_status(400, Some(THROTTLED.to_owned()))
        .output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(0)
                .entries(ok_entry())
                .build()
        })
        .build();
    let client = mock_client!(
        aws_sdk_eventbridge,
        RuleMode::Sequential,
        &[&throttled_then_ok],
        |c| c.retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
        )
    );
    let publisher = EventBridgePublisher::new(client, "orderflow");
    publisher.publish(&[entry(1)]).await.unwrap();
    assert_eq!(throttled_then_ok.num_calls(), 2);
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_a_transient_error() {
    let throttled = mock!(aws_sdk_eventbridge::Client::put_events)
        .sequence()
        .http_status(400, Some(THROTTLED.to_owned()))
        .repeatedly()
        .build();
    let client = mock_client!(
        aws_sdk_eventbridge,
        RuleMode::Sequential,
        &[&throttled],
        |c| c.retry_config(RetryConfig::disabled())
    );
    let publisher = EventBridgePublisher::new(client, "orderflow");
    let err = publisher
        .publish(&[entry(1)])
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    let chain = orderflow_runtime::error::chain(&err);
    assert!(chain.contains("PutEvents"), "{chain}");
}

fn event() -> EventId {
    EventId::from_uuid(uuid::Uuid::from_u128(7))
}

fn completed_item(outbox: &[OutboxEntry]) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("EVENT#{}", event())),
        ),
        ("status".to_owned(), AttributeValue::S("COMPLETED".into())),
        (
            "outbox".to_owned(),
            AttributeValue::S(serde_json::to_string(outbox).unwrap_or_default()),
        ),
        (
            "fingerprint".to_owned(),
            AttributeValue::S(Fingerprint::of(b"first").to_string()),
        ),
        ("order_id".to_owned(), AttributeValue::S("ord-1".into())),
        (
            "detail_type".to_owned(),
            AttributeValue::S("OrderPlaced".into()),
        ),
    ])
}

fn ticket() -> Ticket {
    Ticket {
        event_id: event(),
        order_id: "ord-1".to_owned(),
        detail_type: "OrderPlaced",
        fingerprint: Fingerprint::of(b"second"),
        expires_at: 1000,
    }
}

/// The keys a BatchGetItem asks `table` for, in order.
fn keys_asked(req: &aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput) -> Vec<String> {
    req.request_items()
        .and_then(|r| r.get("payment"))
        .map(|k| {
            k.keys()
                .iter()
                .filter_map(|key| key.get("pk")?.as_s().ok().cloned())
                .collect()
        })
        .unwrap_or_default()
}

fn order_item(version: u64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S("ORDER#ord-1".into())),
        ("state".to_owned(), AttributeValue::S("{}".into())),
        ("version".to_owned(), AttributeValue::N(version.to_string())),
    ])
}

#[tokio::test]
async fn the_event_record_is_read_with_the_order_and_its_counters_in_one_request() {
    let outbox = vec![entry(1), entry(2)];
    let stored = completed_item(&outbox);
    let read = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .match_requests(|req| {
            keys_asked(req)
                == [
                    format!("EVENT#{}", event()),
                    "ORDER#ord-1".into(),
                    "STOCK#A".into(),
                ]
        })
        .then_output(move || {
            BatchGetItemOutput::builder()
                .responses("payment", vec![order_item(3), stored.clone()])
                .build()
        });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&read]);
    let store = DynamoStore::new(client, "payment");
    let snapshot = store
        .load(event(), "ord-1", &["STOCK#A".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        snapshot.event,
        Some(Completed {
            first: Some(FirstSeen {
                fingerprint: Fingerprint::of(b"first"),
                order_id: "ord-1".into(),
                detail_type: "OrderPlaced".into(),
            }),
            outbox
        })
    );
    assert_eq!(snapshot.order.map(|o| o.version), Some(3));
    assert_eq!(snapshot.counters, [None]);
}

#[tokio::test]
async fn an_event_record_an_earlier_build_left_in_progress_holds_nothing_up() {
    let read = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_output(|| {
        BatchGetItemOutput::builder()
            .responses(
                "payment",
                vec![HashMap::from([
                    (
                        "pk".to_owned(),
                        AttributeValue::S(format!("EVENT#{}", event())),
                    ),
                    ("status".to_owned(), AttributeValue::S("IN_PROGRESS".into())),
                    (
                        "lease_until".to_owned(),
                        AttributeValue::N("4102444800".into()),
                    ),
                ])],
            )
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&read]);
    let store = DynamoStore::new(client, "payment");
    let snapshot = store.load(event(), "ord-1", &[]).await.unwrap();
    assert_eq!(snapshot.event, None);
    assert_eq!(snapshot.order, None);
}

#[tokio::test]
async fn throttled_dynamodb_is_a_transient_error() {
    let read = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_error(|| {
        BatchGetItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&read], |c| c
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));
    let store = DynamoStore::new(client, "payment");
    let err = store
        .load(event(), "ord-1", &[])
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(
        orderflow_runtime::error::chain(&err).contains("BatchGetItem"),
        "{err}"
    );
}

#[tokio::test]
async fn the_commit_completes_the_event_record_unless_a_delivery_completed_it() {
    let tx = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .match_requests(|req| {
            let Some(done) = req.transact_items().last().and_then(|i| i.put()) else {
                return false;
            };
            done.condition_expression() == Some("attribute_not_exists(pk) OR #status <> :completed")
                && done
                    .expression_attribute_values()
                    .and_then(|v| v.get(":completed"))
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("COMPLETED")
                && done
                    .item()
                    .get("status")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("COMPLETED")
        })
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&tx]);
    let store = DynamoStore::new(client, "inventory");
    store.commit(&commit()).await.unwrap();
    assert_eq!(tx.num_calls(), 1);
}

/// Consumes every event, and changes and emits nothing.
struct Quiet;

impl Service for Quiet {
    type State = ();
    type Contract = Message;
    const FUNCTION: &'static str = "payment";

    fn consumes(&self, _: EventKind) -> bool {
        true
    }

    async fn handle(&self, _: Input<'_, ()>) -> Result<Decision<()>, RecordError> {
        Ok(Decision::unchanged(()))
    }
}

#[tokio::test]
async fn a_new_event_costs_the_store_one_read_and_one_transaction() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/payment/order-placed.eventbridge.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let message = Message::from_bus_json(&text).unwrap_or_else(|e| panic!("{e}"));
    let read = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .then_output(|| BatchGetItemOutput::builder().build());
    let tx = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    // Sequential: any other request (a claim's PutItem first, say) finds no
    // rule and fails the event.
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&read, &tx]);
    let store = DynamoStore::new(client, "payment");
    let p = Processor::new(Quiet, store, MemoryPublisher::new(), 3600);
    let done = p.process(&message).await.unwrap();
    assert_eq!(done, Processed::Applied { published: 0 });
    assert_eq!((read.num_calls(), tx.num_calls()), (1, 1));
}

fn commit() -> Commit {
    Commit {
        ticket: ticket(),
        expected_version: 3,
        order: OrderRecord {
            state: "{}".into(),
            version: 4,
            ..OrderRecord::default()
        },
        counters: vec![
            CounterChange {
                key: "STOCK#A".into(),
                delta: -2,
            },
            CounterChange {
                key: "STOCK#B".into(),
                delta: -1,
            },
        ],
        outbox: vec![entry(1)],
    }
}

fn cancelled(codes: &'static [&'static str]) -> TransactWriteItemsError {
    let mut e = TransactionCanceledException::builder().message("Transaction cancelled");
    for code in codes {
        e = e.cancellation_reasons(
            aws_sdk_dynamodb::types::CancellationReason::builder()
                .code(*code)
                .build(),
        );
    }
    TransactWriteItemsError::TransactionCanceledException(e.build())
}

async fn commit_against(codes: &'static [&'static str]) -> CommitError {
    let tx = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .match_requests(|req| req.transact_items().len() == 4)
        .then_error(move || cancelled(codes));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &[&tx]);
    let store = DynamoStore::new(client, "inventory");
    store
        .commit(&commit())
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"))
}

#[tokio::test]
async fn cancellation_reasons_name_the_short_counter() {
    match commit_against(&["None", "None", "ConditionalCheckFailed", "None"]).await {
        CommitError::Conflict(what) => assert!(what.contains("counter STOCK#B"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cancellation_reasons_name_a_changed_order_or_event_record() {
    match commit_against(&["ConditionalCheckFailed", "None", "None", "None"]).await {
        CommitError::Conflict(what) => assert!(what.contains("order ord-1"), "{what}"),
        other => panic!("{other:?}"),
    }
    match commit_against(&["None", "None", "None", "ConditionalCheckFailed"]).await {
        CommitError::Conflict(what) => assert!(what.contains("event record"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_throttled_transaction_is_transient_not_a_conflict() {
    match commit_against(&["None", "ThrottlingError", "None", "None"]).await {
        CommitError::Transient(t) => assert!(t.to_string().contains("ThrottlingError"), "{t}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dead_letters_carry_their_reason_as_message_attributes() {
    let send = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|req| {
            let attrs = req.message_attributes();
            let value = |name: &str| {
                attrs
                    .and_then(|a| a.get(name))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned)
            };
            req.message_body() == Some("{bad")
                && value("orderflow.error_kind").as_deref() == Some("malformed")
                && value("orderflow.function").as_deref() == Some("payment")
                && value("orderflow.original_message_id").as_deref() == Some("m-1")
                && value("orderflow.receive_count").as_deref() == Some("2")
                && value("orderflow.error_message").is_some()
        })
        .then_output(|| SendMessageOutput::builder().message_id("dlq-1").build());
    let client = mock_client!(aws_sdk_sqs, RuleMode::Sequential, &[&send]);
    let sink = SqsDeadLetters::new(client, "http://localhost/dlq");
    sink.send(&DeadLetter {
        body: "{bad".into(),
        error_kind: "malformed".into(),
        error_message: "malformed event at `$`: EOF".into(),
        function: "payment".into(),
        original_message_id: "m-1".into(),
        receive_count: 2,
    })
    .await
    .unwrap();
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn retries_are_delayed_in_their_source_queue_whose_url_is_looked_up_once() {
    use aws_sdk_sqs::operation::change_message_visibility_batch::ChangeMessageVisibilityBatchOutput;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlOutput;
    use orderflow_runtime::dlq::RetryLater;
    use std::time::Duration;

    let lookup = mock!(aws_sdk_sqs::Client::get_queue_url)
        .match_requests(|req| {
            req.queue_name() == Some("orderflow-payment")
                && req.queue_owner_aws_account_id() == Some("123456789012")
        })
        .then_output(|| {
            GetQueueUrlOutput::builder()
                .queue_url("http://localhost/123456789012/orderflow-payment")
                .build()
        });
    let change = mock!(aws_sdk_sqs::Client::change_message_visibility_batch)
        .match_requests(|req| {
            let entries: Vec<(&str, Option<i32>)> = req
                .entries()
                .iter()
                .map(|e| (e.receipt_handle(), e.visibility_timeout()))
                .collect();
            req.queue_url() == Some("http://localhost/123456789012/orderflow-payment")
                && entries == [("rh-1", Some(2)), ("rh-2", Some(8))]
        })
        .sequence()
        .output(|| {
            ChangeMessageVisibilityBatchOutput::builder()
                .set_successful(Some(Vec::new()))
                .set_failed(Some(Vec::new()))
                .build()
                .unwrap()
        })
        .times(2)
        .build();
    let client = mock_client!(aws_sdk_sqs, RuleMode::Sequential, &[&lookup, &change]);
    let sink = SqsDeadLetters::new(client, "http://localhost/dlq");
    let retries = [
        RetryLater {
            receipt_handle: "rh-1".into(),
            delay: Duration::from_secs(2),
        },
        RetryLater {
            receipt_handle: "rh-2".into(),
            delay: Duration::from_secs(8),
        },
    ];
    let arn = "arn:aws:sqs:us-east-1:123456789012:orderflow-payment";
    for _ in 0..2 {
        sink.retry_later(arn, &retries).await.unwrap();
    }
    assert_eq!(lookup.num_calls(), 1, "the URL is cached");
    assert_eq!(change.num_calls(), 2);
}

#[tokio::test]
async fn a_visibility_change_that_fails_for_a_record_is_an_error() {
    use aws_sdk_sqs::operation::change_message_visibility_batch::ChangeMessageVisibilityBatchOutput;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlOutput;
    use aws_sdk_sqs::types::BatchResultErrorEntry;
    use orderflow_runtime::dlq::RetryLater;
    use std::time::Duration;

    let lookup = mock!(aws_sdk_sqs::Client::get_queue_url).then_output(|| {
        GetQueueUrlOutput::builder()
            .queue_url("http://localhost/q")
            .build()
    });
    let change = mock!(aws_sdk_sqs::Client::change_message_visibility_batch).then_output(|| {
        let failed = BatchResultErrorEntry::builder()
            .id("0")
            .code("ReceiptHandleIsInvalid")
            .sender_fault(true)
            .build()
            .unwrap();
        ChangeMessageVisibilityBatchOutput::builder()
            .set_successful(Some(Vec::new()))
            .failed(failed)
            .build()
            .unwrap()
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::Sequential, &[&lookup, &change]);
    let sink = SqsDeadLetters::new(client, "http://localhost/dlq");
    let retry = RetryLater {
        receipt_handle: "stale".into(),
        delay: Duration::from_secs(2),
    };
    let err = sink
        .retry_later("arn:aws:sqs:us-east-1:1:q", &[retry])
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(err.to_string().contains("ReceiptHandleIsInvalid"), "{err}");
}
