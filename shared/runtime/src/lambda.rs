//! The Lambda entry point shared by the three functions.
//!
//! One handler serves both delivery shapes:
//! - an SQS batch (`{"Records": [...]}`), answered with an
//!   `SqsBatchResponse` naming exactly the records to retry;
//! - a direct EventBridge invocation (the bus envelope itself). A permanent
//!   error sends it to the DLQ and succeeds; a transient one fails the
//!   invocation so Lambda retries it.

use std::borrow::Cow;
use std::time::SystemTime;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use orderflow_contracts::object::Object;
use serde::{Deserialize, Serialize};

use crate::batch::{self, BatchOptions, BatchReport, Disposition, Handled, Record, Subject};
use crate::contract::Contract;
use crate::dlq::{DeadLetterSink, RetryLater, backoff};
use crate::error::{RecordError, describe};
use crate::metrics::{self, MetricsOut};
use crate::processor::{Processor, Service};
use crate::publish::EventPublisher;
use crate::store::{MemoryStore, StateStore};

mod scan;
#[cfg(feature = "aws")]
mod serve;
#[cfg(feature = "aws")]
pub use serve::run;

/// What the function answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// For an SQS batch.
    Batch(SqsBatchResponse),
    /// For a direct invocation: how the event ended.
    Direct {
        /// `processed`, `duplicate` or `dead_lettered`.
        outcome: &'static str,
    },
}

/// What an invocation carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// An SQS batch.
    Sqs {
        /// The records, in order.
        records: Vec<Record>,
        /// Whether they come from a FIFO queue.
        fifo: bool,
        /// The queue they come from (`eventSourceARN`).
        source: Option<String>,
    },
    /// A direct EventBridge invocation: the payload is the bus envelope.
    Direct,
}

/// Tells the two delivery shapes apart and reads the SQS records.
pub fn read_invocation(payload: &str) -> Result<Invocation, RecordError> {
    // Fast path: an SQS event in one pass (`scan`). Anything it does not
    // read in full goes through serde, which names what is wrong.
    match scan::sqs_event(payload) {
        Some(invocation) => Ok(invocation),
        None => read_with_serde(payload),
    }
}

/// [`read_invocation`] without its fast path: what the `invocation` fuzz
/// target holds the fast path to.
#[cfg(fuzzing)]
#[doc(hidden)]
pub fn read_invocation_slowly(payload: &str) -> Result<Invocation, RecordError> {
    read_with_serde(payload)
}

fn read_with_serde(payload: &str) -> Result<Invocation, RecordError> {
    let Object(raw): Object<RawInvocation<'_>> = serde_json::from_str(payload).map_err(|e| {
        RecordError::Contract(orderflow_contracts::ContractError::Malformed {
            field: "$".into(),
            reason: e.to_string(),
        })
    })?;
    let Some(records) = raw.records else {
        return Ok(Invocation::Direct);
    };
    let source = records
        .first()
        .and_then(|r| r.0.event_source_arn.as_deref())
        .map(str::to_owned);
    let fifo = source.as_deref().is_some_and(|arn| arn.ends_with(".fifo"));
    let records = records
        .into_iter()
        .map(|Object(r)| Record {
            message_id: r.message_id,
            body: r.body.into_owned(),
            receive_count: r
                .attributes
                .0
                .approximate_receive_count
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            receipt_handle: r.receipt_handle,
        })
        .collect();
    Ok(Invocation::Sqs {
        records,
        fifo,
        source,
    })
}

/// Whether `payload` is a JSON object with a `Records` member, whatever
/// its shape.
fn has_records(payload: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "Records")]
        records: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Object<Probe>>(payload).is_ok_and(|p| p.0.records.is_some())
}

/// The parts of an invocation payload that tell the two shapes apart.
#[derive(Deserialize)]
struct RawInvocation<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<Object<SqsRecord<'a>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsRecord<'a> {
    message_id: String,
    #[serde(borrow)]
    body: Cow<'a, str>,
    #[serde(default)]
    receipt_handle: String,
    #[serde(default, borrow)]
    attributes: Object<SqsAttributes<'a>>,
    #[serde(rename = "eventSourceARN", borrow)]
    event_source_arn: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct SqsAttributes<'a> {
    #[serde(borrow)]
    approximate_receive_count: Option<Cow<'a, str>>,
}

/// A function's handler: its processor, its dead-letter sink and where its
/// metrics go.
#[derive(Debug)]
pub struct Handler<S, St, P, D> {
    processor: Processor<S, St, P>,
    dead_letters: D,
    concurrency: usize,
    metrics: MetricsOut,
}

impl<S, St, P, D> Handler<S, St, P, D>
where
    S: Service,
    St: StateStore,
    P: EventPublisher,
    D: DeadLetterSink,
{
    /// A handler running `processor` with at most `concurrency` records of a
    /// batch at once. Its metrics go to stdout.
    pub fn new(processor: Processor<S, St, P>, dead_letters: D, concurrency: usize) -> Self {
        Self {
            processor,
            dead_letters,
            concurrency,
            metrics: MetricsOut::Stdout,
        }
    }

    /// The same handler with its metrics going to `metrics`.
    pub fn with_metrics(self, metrics: MetricsOut) -> Self {
        Self { metrics, ..self }
    }

    /// Where the metrics go.
    pub fn metrics(&self) -> &MetricsOut {
        &self.metrics
    }

    /// The processor.
    pub fn processor(&self) -> &Processor<S, St, P> {
        &self.processor
    }

    /// The dead-letter sink.
    pub fn dead_letters(&self) -> &D {
        &self.dead_letters
    }

    /// Handles one invocation payload. `request_id` names a direct
    /// invocation in its dead letter.
    pub async fn handle(
        &self,
        payload: &str,
        deadline: Option<SystemTime>,
        request_id: &str,
    ) -> Result<Response, RecordError> {
        match read_invocation(payload) {
            Ok(Invocation::Sqs {
                records,
                fifo,
                source,
            }) => Ok(Response::Batch(
                self.handle_batch(&records, fifo, source.as_deref(), deadline)
                    .await,
            )),
            // A payload with `Records` that does not read as an SQS batch
            // fails the invocation: its records are SQS's to deliver again
            // (and to move to the DLQ after maxReceiveCount). Acknowledging
            // it, or dead-lettering it as one event, would drop every
            // record in it.
            Err(err) if has_records(payload) => Err(err),
            // A payload that is no SQS batch is read as a bus envelope; one
            // that is neither is dead-lettered whole, with its reason,
            // rather than failed forever.
            Ok(Invocation::Direct) | Err(_) => {
                self.handle_direct(payload, deadline, request_id).await
            }
        }
    }

    async fn handle_batch(
        &self,
        records: &[Record],
        fifo: bool,
        source: Option<&str>,
        deadline: Option<SystemTime>,
    ) -> SqsBatchResponse {
        let options = BatchOptions {
            function: S::FUNCTION,
            concurrency: self.concurrency,
            fifo,
            deadline,
        };
        let report = batch::process(records, options, &self.dead_letters, |record| {
            self.one(&record.body)
        })
        .await;
        self.emit_metrics(&report);
        if let Some(source) = source {
            self.retry_soon(source, records, &report).await;
        }
        report.response()
    }

    /// Has SQS deliver the records to retry again after their [`backoff`],
    /// rather than after the queue's whole visibility timeout.
    async fn retry_soon(&self, source: &str, records: &[Record], report: &BatchReport) {
        let retries: Vec<RetryLater> = records
            .iter()
            .zip(&report.outcomes)
            .filter(|(record, (_, d))| {
                matches!(d, Disposition::Retry(_)) && !record.receipt_handle.is_empty()
            })
            .map(|(record, _)| RetryLater {
                receipt_handle: record.receipt_handle.clone(),
                delay: backoff(record.receive_count),
            })
            .collect();
        if retries.is_empty() {
            return;
        }
        if let Err(err) = self.dead_letters.retry_later(source, &retries).await {
            tracing::warn!(
                function = S::FUNCTION,
                records = retries.len(),
                error = %describe(&err),
                "could not delay the retries; they come back after the visibility timeout"
            );
        }
    }

    /// Decodes and processes one record. The batch loop decides its fate
    /// and logs it.
    async fn one(&self, body: &str) -> Handled {
        let message = match S::Contract::from_bus_json(body) {
            Ok(message) => message,
            Err(err) => {
                return Handled {
                    subject: None,
                    result: Err(err.into()),
                };
            }
        };
        let result = self.processor.process(&message).await;
        Handled {
            subject: Some(Subject::of(&message)),
            result,
        }
    }

    /// Emits the invocation's metrics: one EMF line.
    fn emit_metrics(&self, report: &BatchReport) {
        let timestamp_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.metrics
            .emit(&metrics::emf(S::FUNCTION, report, timestamp_ms));
    }

    async fn handle_direct(
        &self,
        payload: &str,
        deadline: Option<SystemTime>,
        request_id: &str,
    ) -> Result<Response, RecordError> {
        // The same batch loop, with a batch of one: the same DLQ rules apply.
        let record = Record {
            message_id: request_id.to_owned(),
            body: payload.to_owned(),
            receive_count: 1,
            receipt_handle: String::new(),
        };
        let options = BatchOptions {
            function: S::FUNCTION,
            concurrency: 1,
            fifo: false,
            deadline,
        };
        let report = batch::process(
            std::slice::from_ref(&record),
            options,
            &self.dead_letters,
            |r| self.one(&r.body),
        )
        .await;
        self.emit_metrics(&report);
        match report.outcomes.into_iter().next().map(|(_, d)| d) {
            Some(Disposition::Retry(why)) => Err(crate::error::Transient::new(why).into()),
            Some(done) => Ok(Response::Direct {
                outcome: done.outcome(),
            }),
            None => {
                Err(crate::error::Transient::new("direct invocation produced no outcome").into())
            }
        }
    }
}

/// The store memory mode starts with: holding `service`'s
/// [memory counters](Service::memory_counters), if any.
pub fn memory_store<S: Service>(service: &S) -> MemoryStore {
    let store = MemoryStore::new();
    let counters = service.memory_counters();
    if !counters.is_empty() {
        tracing::info!(
            function = S::FUNCTION,
            counters = counters.len(),
            "the in-memory store starts with the function's counters"
        );
    }
    for (key, value) in &counters {
        store.set_counter(key, *value);
    }
    store
}

/// The invocation's deadline, unless it had already passed when the
/// invocation began. Lambda counts the deadline from the moment the runtime
/// picks the invocation up, so one in the past is an emulator's misreading:
/// `cargo lambda watch` (1.9) sends its timeout, `600000` ms, where an epoch
/// time belongs, which reads as 1970. Taken at its word, that deadline
/// would leave every record unstarted (see `batch::START_RESERVE`); it is
/// ignored instead, and said so once per process.
pub fn plausible_deadline(deadline: SystemTime, now: SystemTime) -> Option<SystemTime> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if deadline > now {
        return Some(deadline);
    }
    WARNED.call_once(|| {
        let epoch_ms = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        tracing::warn!(
            deadline_epoch_ms = epoch_ms as u64,
            "the invocation's deadline had passed before it began (an emulator's value?); \
             records run without the deadline reserve"
        );
    });
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(bodies: &[serde_json::Value]) -> String {
        let records: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| serde_json::json!({ "messageId": format!("m{i}"), "body": body }))
            .collect();
        serde_json::json!({ "Records": records }).to_string()
    }

    /// A guard for any faster reading of the body: the text it hands the
    /// decoder is the string the SQS record holds, however it is escaped.
    #[test]
    fn every_body_reads_as_the_string_it_holds() {
        let bodies = [
            r#"{"detail-type":"OrderPlaced","detail":{"a":"b\"c\\d"}}"#,
            "tabs\tand\nnewlines\r, a form feed \u{c} and a backspace \u{8}",
            "a control character \u{1} and a DEL \u{7f}",
            "café ☕ 𝄞, and a slash /",
            "",
        ];
        // serde_json writes `\u0001`; a slash may also come escaped.
        let payload = batch_of(&bodies.map(serde_json::Value::from)).replace('/', "\\/");
        let Ok(Invocation::Sqs { records, .. }) = read_invocation(&payload) else {
            panic!("{payload}");
        };
        let read: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(read, bodies);
    }
}
