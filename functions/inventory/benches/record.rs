//! CPU per record for inventory: decode → validate → decide → encode, no
//! I/O. The baseline, in the same run, only parses the payload into a
//! `serde_json::Value`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inventory::InventoryState;
use inventory::decide::decide;
use orderflow_runtime::testing::{cpu_path, read_sample};

fn record(c: &mut Criterion) {
    let payload = read_sample("inventory/order-placed.sqs.json").unwrap_or_default();
    let stock = [Some(100), Some(100)];
    let mut group = c.benchmark_group("inventory");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline: payload to serde_json::Value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&payload)))
    });
    group.bench_function("record: decode, validate, decide, encode", |b| {
        b.iter(|| {
            cpu_path(black_box(&payload), |m| {
                // Every sku has a record, so the decision never fails.
                decide(InventoryState::default(), &m.event, &stock)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        })
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
