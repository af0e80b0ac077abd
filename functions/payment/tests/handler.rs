//! The payment handler over the samples in `events/payment/`, through the
//! real handler with in-memory ports.

use orderflow_runtime::lambda::Response;
use orderflow_runtime::testing::{
    Expect, MemoryHandler, check_samples, memory_handler, read_sample,
};
use payment::{HoldStatus, MemoryLedger, Payment, Simulator};

/// What each sample must do to a fresh function (besides the shared
/// `POISON` expectations).
const EXPECTED: &[(&str, Expect)] = &[
    ("order-placed", Expect::Emits(&["PaymentAuthorized"])),
    ("order-placed-v2", Expect::Emits(&["PaymentAuthorized"])),
    (
        "order-placed-decline-token",
        Expect::Emits(&["PaymentDeclined"]),
    ),
    (
        "order-placed-over-limit",
        Expect::Emits(&["PaymentDeclined"]),
    ),
    ("stock-unavailable", Expect::Emits(&[])),
    // A shipment of an order this fresh function never authorized.
    ("shipment-scheduled", Expect::Emits(&[])),
];

type Provider = Simulator<MemoryLedger>;

fn handler() -> MemoryHandler<Payment<Provider>> {
    memory_handler(Payment::new(Simulator::new(
        Provider::DEFAULT_LIMIT_MINOR,
        MemoryLedger::new(),
    )))
}

/// The provider's holds, by status name.
fn ledger(h: &MemoryHandler<Payment<Provider>>) -> Vec<HoldStatus> {
    h.processor()
        .service()
        .gateway()
        .ledger()
        .holds()
        .into_iter()
        .map(|hold| hold.status)
        .collect()
}

#[tokio::test]
async fn every_sample_has_its_expected_outcome() {
    let checked = check_samples("payment", handler, EXPECTED).await.unwrap();
    assert!(checked >= 12, "only {checked} samples");
}

#[tokio::test]
async fn both_shapes_decode_to_the_same_event_and_outcome() {
    for case in [
        "order-placed",
        "order-placed-v2",
        "order-placed-decline-token",
        "stock-unavailable",
    ] {
        let mut outcomes = Vec::new();
        for shape in ["sqs", "eventbridge"] {
            let h = handler();
            let file = format!("payment/{case}.{shape}.json");
            let payload = read_sample(&file).unwrap();
            h.invoke(&payload)
                .await
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            outcomes.push(
                h.published()
                    .into_iter()
                    .map(|e| (e.event_id, e.detail_type))
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(outcomes[0], outcomes[1], "{case}");
    }
}

#[tokio::test]
async fn stock_unavailable_after_authorization_voids_the_payment() {
    let h = handler();
    h.feed(&[
        "payment/order-placed.sqs.json",
        "payment/stock-unavailable.sqs.json",
    ])
    .await
    .unwrap();
    assert_eq!(h.published_kinds(), ["PaymentAuthorized", "PaymentVoided"]);
    assert_eq!(ledger(&h), [HoldStatus::Voided], "no hold left open");
}

#[tokio::test]
async fn a_shipment_captures_the_authorization_once() {
    let h = handler();
    h.feed(&[
        "payment/order-placed.sqs.json",
        "payment/shipment-scheduled.sqs.json",
        "payment/shipment-scheduled.eventbridge.json",
    ])
    .await
    .unwrap();
    assert_eq!(
        h.published_kinds(),
        ["PaymentAuthorized", "PaymentCaptured", "PaymentCaptured"],
        "the duplicate re-publishes the same capture"
    );
    let published = h.published();
    assert_eq!(published[1], published[2]);
    assert_eq!(ledger(&h), [HoldStatus::Captured]);
}

#[tokio::test]
async fn a_provider_timeout_after_a_real_authorization_leaves_no_open_hold() {
    let h = handler();
    // The provider authorizes, then the answer times out; stock is reported
    // short before the order's redelivery.
    let placed = read_sample("payment/order-placed.sqs.json")
        .unwrap()
        .replace("tok_visa_4242", "tok_timeout_1");
    match h.invoke(&placed).await {
        Ok(Response::Batch(b)) => assert_eq!(b.batch_item_failures.len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(ledger(&h), [HoldStatus::Open], "the hold is real");
    h.feed(&["payment/stock-unavailable.sqs.json"])
        .await
        .unwrap();
    match h.invoke(&placed).await {
        Ok(Response::Batch(b)) => assert!(b.batch_item_failures.is_empty(), "{b:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ledger(&h), [HoldStatus::Voided], "no hold left open");
    assert_eq!(h.published_kinds(), ["PaymentAuthorized", "PaymentVoided"]);
}

#[tokio::test]
async fn stock_unavailable_before_the_order_means_it_is_never_charged() {
    let h = handler();
    h.feed(&[
        "payment/stock-unavailable.eventbridge.json",
        "payment/order-placed.eventbridge.json",
    ])
    .await
    .unwrap();
    let messages = h.published_messages();
    assert_eq!(messages.len(), 1);
    match &messages[0].event {
        orderflow_contracts::Event::PaymentDeclined(d) => {
            assert_eq!(
                d.reason,
                orderflow_contracts::DeclineReason::StockUnavailable
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_duplicate_delivery_charges_once_and_republishes_the_same_event() {
    let h = handler();
    let payload = read_sample("payment/order-placed.sqs.json").unwrap();
    for _ in 0..3 {
        h.invoke(&payload).await.unwrap();
    }
    let published = h.published();
    assert_eq!(published.len(), 3);
    assert!(published.iter().all(|e| e == &published[0]));
}

#[tokio::test]
async fn a_flaky_provider_is_retried_by_sqs_until_it_authorizes() {
    let h = handler();
    let payload = read_sample("payment/order-placed.sqs.json")
        .unwrap()
        .replace("tok_visa_4242", "tok_flaky_2");
    for attempt in 1..=2 {
        match h.invoke(&payload).await {
            Ok(Response::Batch(b)) => {
                assert_eq!(b.batch_item_failures.len(), 1, "attempt {attempt}")
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    match h.invoke(&payload).await {
        Ok(Response::Batch(b)) => assert!(b.batch_item_failures.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.published_kinds(), ["PaymentAuthorized"]);
    assert!(h.letters().is_empty());
    // Each failed delivery asked SQS to bring the record back after its
    // backoff (the sample says receive 1: 2 s), not the 60 s timeout.
    let retries = h.dead_letters().retries();
    assert_eq!(retries.len(), 2, "{retries:?}");
    for (queue, retry) in &retries {
        assert_eq!(
            queue,
            "arn:aws:sqs:us-east-1:123456789012:orderflow-payment"
        );
        assert_eq!(retry.receipt_handle, "AQEB-sample-receipt-handle");
        assert_eq!(retry.delay, std::time::Duration::from_secs(2));
    }
}

#[tokio::test]
async fn a_retry_waits_longer_with_each_receive() {
    let h = handler();
    let payload = read_sample("payment/order-placed.sqs.json")
        .unwrap()
        .replace("tok_visa_4242", "tok_flaky_9")
        .replace(
            "\"ApproximateReceiveCount\": \"1\"",
            "\"ApproximateReceiveCount\": \"4\"",
        );
    let Ok(Response::Batch(b)) = h.invoke(&payload).await else {
        panic!("not a batch response")
    };
    assert_eq!(b.batch_item_failures.len(), 1);
    let delays: Vec<u64> = h
        .dead_letters()
        .retries()
        .iter()
        .map(|(_, r)| r.delay.as_secs())
        .collect();
    assert_eq!(delays, [16]);
}

#[tokio::test]
async fn a_direct_invocation_with_a_transient_failure_fails_the_invocation() {
    let h = handler();
    let payload = read_sample("payment/order-placed.eventbridge.json")
        .unwrap()
        .replace("tok_visa_4242", "tok_flaky_1");
    let err = h
        .invoke(&payload)
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(!err.is_permanent());
    assert!(matches!(
        h.invoke(&payload).await,
        Ok(Response::Direct {
            outcome: "processed"
        })
    ));
}

#[tokio::test]
async fn a_failed_dlq_send_reports_the_poison_record_as_failed() {
    let h = handler();
    h.dead_letters().fail_sends(true);
    let payload = read_sample("payment/poison-unknown-version.sqs.json").unwrap();
    match h.invoke(&payload).await {
        Ok(Response::Batch(b)) => assert_eq!(b.batch_item_failures.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_payload_that_is_neither_shape_is_dead_lettered_whole() {
    // `[[]]` and `[null]` matter: serde reads a struct from an array too,
    // field by field, so they once read as an SQS batch of no records (and
    // as a bus envelope), answered with nothing to retry: the payload was
    // gone without a trace. The fuzzer found `[[ ] ]`.
    let cases = [
        ("[1, 2]", "malformed"),
        ("\"text\"", "malformed"),
        ("[[]]", "malformed"),
        ("[null]", "malformed"),
    ];
    for (payload, kind) in cases {
        let h = handler();
        match h.invoke(payload).await {
            Ok(Response::Direct { outcome }) => assert_eq!(outcome, "dead_lettered", "{payload}"),
            other => panic!("{payload}: {other:?}"),
        }
        let letters = h.letters();
        assert_eq!(letters.len(), 1, "{payload}");
        assert_eq!(letters[0].body, payload);
        assert_eq!(
            letters[0].error_kind, kind,
            "{payload}: {}",
            letters[0].error_message
        );
    }
}

#[tokio::test]
async fn a_batch_whose_records_do_not_parse_fails_the_invocation_instead_of_one_dead_letter() {
    let h = handler();
    for payload in [
        "{\"Records\": [{\"body\": \"no message id\"}]}",
        // A record, or its attributes, as an array: serde would read them
        // field by field.
        "{\"Records\": [[\"m-1\", \"{}\"]]}",
        "{\"Records\": [{\"messageId\": \"m-1\", \"body\": \"{}\", \"attributes\": [\"1\"]}]}",
    ] {
        let err = h
            .invoke(payload)
            .await
            .err()
            .unwrap_or_else(|| panic!("{payload}: the batch was answered"));
        assert_eq!(err.kind(), "malformed", "{payload}: {err}");
        assert!(h.letters().is_empty(), "{payload}");
    }
}
