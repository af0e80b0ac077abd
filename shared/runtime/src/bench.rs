//! A service's CPU-per-record bench, with its baseline, in one call (the
//! `bench` feature, which brings criterion).
//!
//! [`per_record`] runs one sample SQS invocation through decode → validate
//! → decide → encode ([`cpu_path`]), beside a baseline in the same run that
//! only parses the same payload into a `serde_json::Value`: these machines
//! are noisy, so a figure means something only as a ratio to its baseline.
//!
//! ```no_run
//! use criterion::{Criterion, criterion_group, criterion_main};
//! use orderflow_runtime::Decision;
//!
//! fn record(c: &mut Criterion) {
//!     let group = orderflow_runtime::bench::per_record(
//!         c,
//!         "notifications",
//!         "notifications/shipment-scheduled.sqs.json",
//!         |m| Decision::unchanged(vec![m.event.kind().detail_type()]),
//!     );
//!     group.finish();
//! }
//!
//! criterion_group!(benches, record);
//! criterion_main!(benches);
//! ```

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use orderflow_contracts::Message;

use crate::processor::Decision;
use crate::testing::{cpu_path, read_sample};

/// Benches `service`'s record path on `events/<sample>` (an SQS
/// invocation), deciding with `decide`, beside the `serde_json::Value`
/// baseline. Returns the group, for the service's own stages; finish it.
///
/// # Panics
///
/// When the sample cannot be read or its record does not go through: a
/// bench of an error path would measure the wrong thing.
pub fn per_record<'c, S: serde::Serialize>(
    c: &'c mut Criterion,
    service: &str,
    sample: &str,
    decide: impl Fn(&Message) -> Decision<S>,
) -> BenchmarkGroup<'c, WallTime> {
    let payload = read_sample(sample).unwrap_or_else(|e| panic!("events/{sample}: {e}"));
    if let Err(e) = cpu_path(&payload, &decide) {
        panic!("events/{sample} does not go through {service}'s record path: {e}");
    }
    let mut group = c.benchmark_group(service);
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline: payload to serde_json::Value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&payload)))
    });
    group.bench_function("record: decode, validate, decide, encode", |b| {
        b.iter(|| cpu_path(black_box(&payload), &decide))
    });
    group
}
