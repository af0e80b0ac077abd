//! CPU per record for shipping: decode → validate → decide → encode, no
//! I/O, for the record that completes an order. The label PDF is measured
//! separately. The baseline, in the same run, only parses the payload into
//! a `serde_json::Value`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orderflow_contracts::LabelLocation;
use orderflow_runtime::testing::{cpu_path, read_sample};
use shipping::ShippingState;
use shipping::decide::{Plan, decide, shipped};
use shipping::label_pdf::render;

fn record(c: &mut Criterion) {
    let payload = read_sample("shipping/stock-reserved.sqs.json").unwrap_or_default();
    let state = ShippingState {
        payment_authorized: true,
        ..ShippingState::default()
    };
    let location = LabelLocation {
        bucket: "labels".into(),
        key: "labels/ord-1001.pdf".into(),
        content_type: "application/pdf".into(),
    };
    let mut group = c.benchmark_group("shipping");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline: payload to serde_json::Value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&payload)))
    });
    group.bench_function("record: decode, validate, decide, encode", |b| {
        b.iter(|| {
            cpu_path(black_box(&payload), |m| {
                match decide(
                    state.clone(),
                    &m.meta.order_id,
                    &m.event,
                    m.meta.occurred_at,
                ) {
                    Plan::Apply(d) => d,
                    Plan::Effect(request) => shipped(request, location.clone()),
                }
            })
        })
    });
    group.bench_function("label: render the PDF", |b| {
        let envelope = read_sample("shipping/stock-reserved.eventbridge.json").unwrap_or_default();
        let message = orderflow_contracts::Message::from_bus_json(&envelope);
        let Ok(message) = message else { return };
        let Plan::Effect(request) = decide(
            state.clone(),
            &message.meta.order_id,
            &message.event,
            message.meta.occurred_at,
        ) else {
            return;
        };
        b.iter(|| render(black_box(&request), &message.meta.order_id))
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
