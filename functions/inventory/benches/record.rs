//! CPU per record for inventory: decode → validate → decide → encode, no
//! I/O. The baseline, in the same run, only parses the payload into a
//! `serde_json::Value`.

use criterion::{Criterion, criterion_group, criterion_main};
use inventory::InventoryState;
use inventory::decide::decide;

fn record(c: &mut Criterion) {
    let stock = [Some(100), Some(100)];
    let sample = "inventory/order-placed.sqs.json";
    orderflow_runtime::bench::per_record(c, "inventory", sample, |m| {
        // Every sku has a record, so the order is never refused.
        decide(InventoryState::default(), m, &stock)
            .into_decision()
            .unwrap_or_else(|e| panic!("{e}"))
    })
    .finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
