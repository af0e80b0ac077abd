//! The inventory handler over the samples in `events/inventory/`, through
//! the real handler with in-memory ports.

use inventory::Inventory;
use orderflow_runtime::testing::{Expect, MemoryHandler, check_samples, memory_handler};

/// What each sample must do to a fresh function (besides the shared
/// `POISON` expectations) with seeded stock.
const EXPECTED: &[(&str, Expect)] = &[
    ("order-placed", Expect::Emits(&["StockReserved"])),
    (
        "order-placed-out-of-stock",
        Expect::Emits(&["StockUnavailable"]),
    ),
    ("payment-declined", Expect::Emits(&[])),
];

const MUG: &str = "STOCK#SKU-RED-MUG";
const TEA: &str = "STOCK#SKU-TEA-250G";

fn handler() -> MemoryHandler<Inventory> {
    let h = memory_handler(Inventory);
    h.store().set_counter(MUG, 10);
    h.store().set_counter(TEA, 5);
    h
}

#[tokio::test]
async fn every_sample_has_its_expected_outcome() {
    let checked = check_samples("inventory", handler, EXPECTED)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(checked >= 10, "only {checked} samples");
}

#[tokio::test]
async fn a_reservation_takes_every_line() {
    let h = handler();
    h.feed(&["inventory/order-placed.sqs.json"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.published_kinds(), ["StockReserved"]);
    assert_eq!(h.store().counter(MUG), Some(8));
    assert_eq!(h.store().counter(TEA), Some(4));
}

#[tokio::test]
async fn a_short_line_reserves_nothing_and_names_the_sku() {
    let h = handler();
    h.store().set_counter(TEA, 0);
    h.feed(&["inventory/order-placed.eventbridge.json"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.store().counter(MUG), Some(10), "all or nothing");
    let messages = h.published_messages();
    match &messages[0].event {
        orderflow_contracts::Event::StockUnavailable(u) => {
            let skus: Vec<&str> = u.short.iter().map(|s| s.sku.as_str()).collect();
            assert_eq!(skus, ["SKU-TEA-250G"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn declined_payment_releases_reserved_stock() {
    let h = handler();
    h.feed(&[
        "inventory/order-placed.sqs.json",
        "inventory/payment-declined.sqs.json",
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.published_kinds(), ["StockReserved", "StockReleased"]);
    assert_eq!(h.store().counter(MUG), Some(10));
    assert_eq!(h.store().counter(TEA), Some(5));
}

#[tokio::test]
async fn payment_declined_before_the_order_means_it_is_never_reserved() {
    let h = handler();
    h.feed(&[
        "inventory/payment-declined.eventbridge.json",
        "inventory/order-placed.eventbridge.json",
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(h.published_kinds().is_empty());
    assert_eq!(h.store().counter(MUG), Some(10));
}

#[tokio::test]
async fn duplicates_never_move_stock_twice() {
    let h = handler();
    let files = [
        "inventory/order-placed.sqs.json",
        "inventory/order-placed.eventbridge.json",
        "inventory/order-placed.sqs.json",
        "inventory/payment-declined.sqs.json",
        "inventory/payment-declined.sqs.json",
        "inventory/payment-declined.eventbridge.json",
    ];
    h.feed(&files).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.store().counter(MUG), Some(10));
    assert_eq!(h.store().counter(TEA), Some(5));
    let distinct: std::collections::HashSet<_> =
        h.published().into_iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len(), 2, "one reservation and one release");
}
