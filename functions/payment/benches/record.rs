//! CPU per record for payment: decode → validate → decide → encode, no I/O.
//! The baseline, in the same run, only parses the payload into a
//! `serde_json::Value`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow_contracts::{AuthorizationId, Message};
use orderflow_runtime::Contract;
use orderflow_runtime::lambda::{Invocation, read_invocation};
use orderflow_runtime::store::Fingerprint;
use orderflow_runtime::testing::read_sample;
use payment::PaymentState;
use payment::decide::{Plan, decide, settle};
use payment::gateway::GatewayResult;

/// Decides, answering the one provider call an order makes with `auth`.
fn decided(
    state: &PaymentState,
    m: &Message,
    auth: &AuthorizationId,
) -> orderflow_runtime::Decision<PaymentState> {
    let mut plan = decide(state.clone(), m, &[]);
    if let Plan::Effect(effect) = plan {
        plan = settle(
            effect,
            &m.meta.order_id,
            GatewayResult::Authorized(auth.clone()),
        );
    }
    match plan {
        Plan::Apply(d) => d,
        other => panic!("an authorized order is decided: {other:?}"),
    }
}

fn record(c: &mut Criterion) {
    const SAMPLE: &str = "payment/order-placed.sqs.json";
    let auth = AuthorizationId::new("auth_5d1c0e7a9b3f2c41").unwrap_or_else(|e| panic!("{e}"));
    let state = PaymentState::default();
    let mut group =
        orderflow_runtime::bench::per_record(c, "payment", SAMPLE, |m| decided(&state, m, &auth));
    let payload = read_sample(SAMPLE).unwrap_or_default();
    // Where the time goes, stage by stage.
    group.bench_function("stage: read the SQS invocation", |b| {
        b.iter(|| read_invocation(black_box(&payload)))
    });
    let body = match read_invocation(&payload) {
        Ok(Invocation::Sqs { records, .. }) => records.into_iter().next().map(|r| r.body),
        _ => None,
    }
    .unwrap_or_default();
    group.bench_function("stage: decode and validate the body", |b| {
        b.iter(|| Message::from_bus_json(black_box(&body)))
    });
    if let Ok(message) = Message::from_bus_json(&body) {
        // What idempotency adds to every record: the digest of the event,
        // kept with the claim and the order's record, and of the order's
        // data, kept with its opening.
        group.bench_function("stage: fingerprint the event", |b| {
            b.iter(|| Fingerprint::of_message_and_data(black_box(&message)))
        });
        let decision = decided(&state, &message, &auth);
        group.bench_function("stage: encode the outbox", |b| {
            b.iter(|| black_box(&message).outbox(decision.emit.clone()))
        });
    }
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
