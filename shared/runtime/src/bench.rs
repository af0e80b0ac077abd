//! A service's CPU-per-record bench, with its baseline, in one call (the
//! `bench` feature, which brings criterion).
//!
//! [`per_record`] runs one sample SQS invocation through decode → validate
//! → decide → encode ([`cpu_path`]), beside a baseline in the same run that
//! only parses the same payload into a `serde_json::Value`: these machines
//! are noisy, so a figure means something only as a ratio to its baseline.
//! It also runs a batch of [`BATCH`] such records in one invocation, as a
//! queue under load hands them over: what an invocation costs once, not per
//! record, is then shared ten ways.
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
use crate::testing::{batch_of, cpu_path, read_sample};

/// The most records one invocation carries: the template's `BatchSize`.
pub const BATCH: usize = 10;

// The benches' names, which `cargo xtask bench compare` reads criterion's
// results by. A batch's time is the batch's, to divide by `BATCH`.
const BASELINE: &str = "baseline: payload to serde_json::Value";
const RECORD: &str = "record: decode, validate, decide, encode";
const BATCH_BASELINE: &str = "batch of 10 baseline: payload to serde_json::Value";
const BATCH_RECORD: &str = "batch of 10: decode, validate, decide, encode";

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
    let batch = batch_of(&payload, BATCH)
        .unwrap_or_else(|e| panic!("events/{sample} as a batch of {BATCH}: {e}"));
    let mut group = c.benchmark_group(service);
    group.throughput(Throughput::Elements(1));
    group.bench_function(BASELINE, |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&payload)))
    });
    group.bench_function(RECORD, |b| {
        b.iter(|| cpu_path(black_box(&payload), &decide))
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BATCH_BASELINE, |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&batch)))
    });
    group.bench_function(BATCH_RECORD, |b| {
        b.iter(|| cpu_path(black_box(&batch), &decide))
    });
    group.throughput(Throughput::Elements(1));
    group
}
