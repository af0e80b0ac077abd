//! What orderflow's three functions share, written once, for any
//! event-driven Lambda function on SQS and EventBridge.
//!
//! A function supplies a [`Service`]: its [`Contract`] (the events it reads
//! and writes; orderflow's are `orderflow_contracts::Message`), which kinds
//! it consumes, the state it keeps per subject (an order), and a `handle`
//! that turns an event into a [`Decision`] (the new state, counter changes
//! and the events to emit). Everything else lives here.
//!
//! The crate's README (`shared/runtime/README.md`) is the guide: what the
//! runtime does for a function, and a new service written against it,
//! doc-tested.
//!
//! Layout:
//! - [`lambda`]: the Lambda entry point. It reads an SQS batch or a direct
//!   EventBridge invocation and answers with an `SqsBatchResponse`.
//! - [`batch`]: the SQS batch loop: bounded concurrency, per-record panic
//!   isolation, FIFO stop-at-first-failure, no record started too close to
//!   the invocation's deadline, and permanent errors sent to the DLQ with
//!   their reason.
//! - [`contract`]: [`Contract`], what the runtime needs of a service's
//!   events, and its implementation for orderflow's `Message`.
//! - [`processor`]: one event, idempotently: load its records, decide
//!   (writing ahead before an external call), commit the effect with the
//!   outbox and the event's entry in the order's never-expiring record,
//!   publish. Reused event and order ids are refused with their reason.
//! - [`store`]: the [`store::StateStore`] port, with DynamoDB (feature
//!   `aws`) and in-memory adapters.
//! - [`publish`]: the [`publish::EventPublisher`] port, with EventBridge
//!   (feature `aws`) and in-memory adapters.
//! - [`dlq`]: the [`dlq::DeadLetterSink`] port, with SQS (feature `aws`)
//!   and in-memory adapters.
//! - [`config`]: the environment, read once at cold start.
//! - `aws`, with the feature of that name (on by default, as are the AWS
//!   adapters and `lambda::run`; without it the crate builds no AWS SDK):
//!   the AWS SDK configuration, built for a short cold start:
//!   compiled-in trust anchors, rustls on *ring*, credentials from the
//!   environment.
//! - [`telemetry`]: structured JSON logs, one outcome line per record.
//! - [`metrics`]: one CloudWatch EMF line of counts and durations per
//!   invocation.
//! - [`error`]: transient versus permanent errors.
//! - [`faults`]: crash injection after the load, the commit or the
//!   publish, for the chaos suite; off unless `ORDERFLOW_FAULTS` is set.
//! - `testing`, with the feature of that name: the real handler over
//!   in-memory ports, for handler tests and benches.
//! - `bench`, with the feature of that name: a service's CPU-per-record
//!   bench beside its baseline, in one call.
//! - `lean-logs`, a feature only: release builds compile out every
//!   `tracing` event and span below INFO, the SDK's included;
//!   [`telemetry::init`] warns when the log level asks for them.

#[cfg(feature = "aws")]
pub mod aws;
pub mod batch;
#[cfg(feature = "bench")]
pub mod bench;
pub mod config;
pub mod contract;
pub mod dlq;
pub mod error;
pub mod faults;
pub mod lambda;
pub mod metrics;
pub mod processor;
pub mod publish;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{Adapters, Config, ConfigError};
pub use contract::Contract;
pub use error::{RecordError, Transient};
pub use processor::{
    Ahead, Decision, Input, NoEffect, Plan, Processed, Processor, Refusal, Service,
};

/// The README's example, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
