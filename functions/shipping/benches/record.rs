//! CPU per record for shipping: decode → validate → decide → encode, no
//! I/O, for the record that completes an order. The label PDF is measured
//! separately. The baseline, in the same run, only parses the payload into
//! a `serde_json::Value`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow_contracts::LabelLocation;
use orderflow_runtime::testing::read_sample;
use shipping::ShippingState;
use shipping::decide::{Plan, decide, settle};
use shipping::label_pdf::render;

fn record(c: &mut Criterion) {
    let state = ShippingState {
        payment_authorized: true,
        ..ShippingState::default()
    };
    let location = LabelLocation {
        bucket: "labels".into(),
        key: "labels/ord-1001.pdf".into(),
        content_type: "application/pdf".into(),
    };
    let sample = "shipping/stock-reserved.sqs.json";
    let mut group = orderflow_runtime::bench::per_record(c, "shipping", sample, |m| {
        let mut plan = decide(state.clone(), m, &[]);
        if let Plan::Effect(effect) = plan {
            plan = settle(effect, location.clone());
        }
        match plan {
            Plan::Apply(d) => d,
            other => panic!("the order ships: {other:?}"),
        }
    });
    group.bench_function("label: render the PDF", |b| {
        let envelope = read_sample("shipping/stock-reserved.eventbridge.json").unwrap_or_default();
        let message = orderflow_contracts::Message::from_bus_json(&envelope);
        let Ok(message) = message else { return };
        let Plan::Effect(request) = decide(state.clone(), &message, &[]) else {
            return;
        };
        b.iter(|| render(black_box(&request), &message.meta.order_id))
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
