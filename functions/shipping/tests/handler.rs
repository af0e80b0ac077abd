//! The shipping handler over the samples in `events/shipping/`, through the
//! real handler with in-memory ports.

use orderflow_contracts::Event;
use orderflow_runtime::testing::{Expect, MemoryHandler, check_samples, memory_handler};
use shipping::Shipping;
use shipping::label_store::MemoryLabels;

/// What each sample must do to a fresh function (besides the shared
/// `POISON` expectations).
const EXPECTED: &[(&str, Expect)] = &[
    ("payment-authorized", Expect::Emits(&[])),
    ("stock-reserved", Expect::Emits(&[])),
    ("payment-declined", Expect::Emits(&[])),
    ("payment-voided", Expect::Emits(&[])),
    ("stock-unavailable", Expect::Emits(&[])),
    ("stock-released", Expect::Emits(&[])),
];

fn handler() -> MemoryHandler<Shipping<MemoryLabels>> {
    memory_handler(Shipping::new(MemoryLabels::default()))
}

#[tokio::test]
async fn every_sample_has_its_expected_outcome() {
    let checked = check_samples("shipping", handler, EXPECTED).await.unwrap();
    assert!(checked >= 16, "only {checked} samples");
}

#[tokio::test]
async fn both_positives_in_either_order_ship_once_with_a_printable_label() {
    for order in [
        [
            "shipping/payment-authorized.sqs.json",
            "shipping/stock-reserved.sqs.json",
        ],
        [
            "shipping/stock-reserved.eventbridge.json",
            "shipping/payment-authorized.eventbridge.json",
        ],
    ] {
        let h = handler();
        h.feed(&order).await.unwrap();
        let messages = h.published_messages();
        assert_eq!(messages.len(), 1, "{order:?}");
        let Event::ShipmentScheduled(shipment) = &messages[0].event else {
            panic!("{:?}", messages[0]);
        };
        assert!(shipment.tracking_number.as_str().starts_with("OF"));
        assert_eq!(shipment.label.key, "labels/ord-1001.pdf");
        assert_eq!(shipment.label.content_type, "application/pdf");
        let pdf = h
            .processor()
            .service()
            .labels()
            .get(&shipment.label.key)
            .unwrap_or_else(|| panic!("label not stored"));
        assert!(pdf.starts_with(b"%PDF-"), "a PDF document");
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            text.contains(shipment.tracking_number.as_str()),
            "tracking number printed"
        );
        assert!(text.contains("Ada Lovelace"), "addressee printed");
    }
}

#[tokio::test]
async fn the_tracking_number_is_the_same_on_every_delivery_order() {
    let mut numbers = Vec::new();
    for order in [
        [
            "shipping/payment-authorized.sqs.json",
            "shipping/stock-reserved.sqs.json",
        ],
        [
            "shipping/stock-reserved.sqs.json",
            "shipping/payment-authorized.sqs.json",
        ],
    ] {
        let h = handler();
        h.feed(&order).await.unwrap();
        if let Some(Event::ShipmentScheduled(s)) =
            h.published_messages().first().map(|m| m.event.clone())
        {
            numbers.push(s.tracking_number);
        }
    }
    assert_eq!(numbers.len(), 2);
    assert_eq!(numbers[0], numbers[1]);
}

#[tokio::test]
async fn after_any_negative_event_the_order_never_ships() {
    for negative in [
        "payment-declined",
        "payment-voided",
        "stock-unavailable",
        "stock-released",
    ] {
        let h = handler();
        let negative = format!("shipping/{negative}.sqs.json");
        h.feed(&[
            &negative,
            "shipping/payment-authorized.sqs.json",
            "shipping/stock-reserved.sqs.json",
        ])
        .await
        .unwrap();
        assert!(h.published().is_empty(), "{negative}");
        assert!(
            h.processor().service().labels().is_empty(),
            "{negative}: no label"
        );
    }
}

#[tokio::test]
async fn duplicates_ship_once() {
    let h = handler();
    h.feed(&[
        "shipping/payment-authorized.sqs.json",
        "shipping/stock-reserved.sqs.json",
        "shipping/stock-reserved.sqs.json",
        "shipping/payment-authorized.eventbridge.json",
    ])
    .await
    .unwrap();
    let distinct: std::collections::HashSet<_> =
        h.published().into_iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len(), 1);
    assert_eq!(h.processor().service().labels().len(), 1);
}
