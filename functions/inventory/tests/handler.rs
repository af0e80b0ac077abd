//! The inventory handler over the samples in `events/inventory/`, through
//! the real handler with in-memory ports.

use inventory::Inventory;
use inventory::stock_file::MEMORY_STOCK;
use orderflow_runtime::config::Adapters;
use orderflow_runtime::testing::{
    Expect, MemoryHandler, check_samples, events_dir, memory_handler,
};

/// What each sample must do to a fresh function (besides the shared
/// `POISON` expectations) with seeded stock.
const EXPECTED: &[(&str, Expect)] = &[
    ("order-placed", Expect::Emits(&["StockReserved"])),
    ("order-placed-v2", Expect::Emits(&["StockReserved"])),
    (
        "order-placed-out-of-stock",
        Expect::Emits(&["StockUnavailable"]),
    ),
    ("payment-declined", Expect::Emits(&[])),
];

const MUG: &str = "STOCK#SKU-RED-MUG";
const TEA: &str = "STOCK#SKU-TEA-250G";

fn handler() -> MemoryHandler<Inventory> {
    let h = memory_handler(Inventory::default());
    h.store().set_counter(MUG, 10);
    h.store().set_counter(TEA, 5);
    h
}

/// A handler as `cargo lambda watch` starts it in memory mode, with
/// `ORDERFLOW_MEMORY_STOCK` naming `events/stock.json` or unset.
fn memory_mode(stock_file: bool) -> MemoryHandler<Inventory> {
    let path = events_dir().join("stock.json").display().to_string();
    let inventory = Inventory::from_lookup(Adapters::Memory, |name| match name {
        MEMORY_STOCK if stock_file => Some(path.clone()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    memory_handler(inventory)
}

#[tokio::test]
async fn every_sample_has_its_expected_outcome() {
    let checked = check_samples("inventory", handler, EXPECTED).await.unwrap();
    assert!(checked >= 10, "only {checked} samples");
}

#[tokio::test]
async fn every_sample_has_its_expected_outcome_with_the_stock_file() {
    let checked = check_samples("inventory", || memory_mode(true), EXPECTED)
        .await
        .unwrap();
    assert!(checked >= 10, "only {checked} samples");
}

#[tokio::test]
async fn memory_mode_seeded_from_the_stock_file_reserves() {
    let h = memory_mode(true);
    assert_eq!(h.store().counter("STOCK#SKU-GOLD-KETTLE"), Some(0));
    h.feed(&["inventory/order-placed.sqs.json"]).await.unwrap();
    assert_eq!(h.published_kinds(), ["StockReserved"]);
    assert!(h.letters().is_empty());
    assert_eq!(h.store().counter(MUG), Some(98));
    assert_eq!(h.store().counter(TEA), Some(49));
}

#[tokio::test]
async fn memory_mode_without_stock_dead_letters_an_order_as_unknown_sku() {
    let h = memory_mode(false);
    h.feed(&["inventory/order-placed.sqs.json"]).await.unwrap();
    assert!(h.published_kinds().is_empty(), "no StockUnavailable");
    let letters = h.letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].error_kind, "unknown_sku");
    assert_eq!(letters[0].function, "inventory");
    assert!(
        letters[0]
            .error_message
            .contains("no stock record for SKU-RED-MUG, SKU-TEA-250G"),
        "{}",
        letters[0].error_message
    );
}

#[tokio::test]
async fn an_order_refused_for_an_unknown_sku_reserves_once_its_stock_is_loaded_and_redriven() {
    let h = memory_handler(Inventory::default());
    h.store().set_counter(MUG, 10);
    h.feed(&["inventory/order-placed.sqs.json"]).await.unwrap();
    let letters = h.letters();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].error_message.contains("for SKU-TEA-250G;"),
        "names only the unknown sku: {}",
        letters[0].error_message
    );
    assert_eq!(h.store().counter(MUG), Some(10), "nothing taken");

    // The operator loads the stock and redrives the dead letter.
    h.store().set_counter(TEA, 5);
    h.feed(&["inventory/order-placed.sqs.json"]).await.unwrap();
    assert_eq!(h.published_kinds(), ["StockReserved"]);
    assert_eq!(h.store().counter(TEA), Some(4));
}

#[tokio::test]
async fn a_reservation_takes_every_line() {
    let h = handler();
    h.feed(&["inventory/order-placed.sqs.json"]).await.unwrap();
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
        .unwrap();
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
    .unwrap();
    assert_eq!(h.published_kinds(), ["StockReserved", "StockReleased"]);
    assert_eq!(h.store().counter(MUG), Some(10));
    assert_eq!(h.store().counter(TEA), Some(5));
}

#[tokio::test]
async fn payment_declined_before_the_order_means_it_is_never_reserved_and_says_so() {
    let h = handler();
    h.feed(&[
        "inventory/payment-declined.eventbridge.json",
        "inventory/order-placed.eventbridge.json",
    ])
    .await
    .unwrap();
    assert_eq!(h.published_kinds(), ["StockNotReserved"]);
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
    h.feed(&files).await.unwrap();
    assert_eq!(h.store().counter(MUG), Some(10));
    assert_eq!(h.store().counter(TEA), Some(5));
    let distinct: std::collections::HashSet<_> =
        h.published().into_iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len(), 2, "one reservation and one release");
}
