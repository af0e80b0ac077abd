//! The SQS batch loop.
//!
//! Every record ends in exactly one of three ways: acknowledged, reported as
//! a batch item failure (SQS redelivers it, and after `maxReceiveCount` its
//! redrive policy moves it to the DLQ), or sent to the DLQ by us with its
//! reason and then acknowledged. Nothing is dropped: if the DLQ send fails,
//! the record is reported as failed instead.
//!
//! Each record's end is logged here, as exactly one JSON line: its ids,
//! `outcome` (`processed`, `duplicate`, `dead_lettered` or `retry`),
//! `duration_ms`, and for a failure `error_kind` and `error`. Error texts
//! are [redacted](crate::error::redact) of the input values they quote.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use futures::{FutureExt, StreamExt, stream};
use orderflow_contracts::EventId;
use tracing::Level;

use crate::contract::Contract;
use crate::dlq::{DeadLetter, DeadLetterSink};
use crate::error::{RecordError, describe, redact};
use crate::processor::Processed;

/// One SQS record, as the batch loop needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The SQS message id: what a batch item failure names.
    pub message_id: String,
    /// The body, unchanged.
    pub body: String,
    /// `ApproximateReceiveCount`.
    pub receive_count: u32,
    /// The receipt handle, to delay a retry (empty for a direct invocation).
    pub receipt_handle: String,
}

/// How one record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Processed: delete it.
    Ack,
    /// Seen before, its stored outcome re-published: delete it.
    Duplicate,
    /// Sent to the DLQ with its reason: delete it from the source queue.
    DeadLettered,
    /// Report it as failed so SQS delivers it again.
    Retry(String),
}

impl Disposition {
    /// The `outcome` that logs and metrics name it by: `processed`,
    /// `duplicate`, `dead_lettered` or `retry`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Ack => "processed",
            Self::Duplicate => "duplicate",
            Self::DeadLettered => "dead_lettered",
            Self::Retry(_) => "retry",
        }
    }
}

/// What a record is about: the ids its outcome line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// What the event is about ([`Contract::subject`]): its order.
    pub order_id: String,
    /// The event.
    pub event_id: EventId,
    /// The event that caused it, if any.
    pub causation_id: Option<EventId>,
    /// Its detail-type.
    pub detail_type: &'static str,
}

impl Subject {
    /// The ids of `message`.
    pub fn of<M: Contract>(message: &M) -> Self {
        Self {
            order_id: message.subject().to_owned(),
            event_id: message.event_id(),
            causation_id: message.causation_id(),
            detail_type: message.detail_type(),
        }
    }
}

/// What handling one record came to.
#[derive(Debug)]
pub struct Handled {
    /// What the record is about; `None` if it could not be decoded.
    pub subject: Option<Subject>,
    /// How processing ended.
    pub result: Result<Processed, RecordError>,
}

/// How to run a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// The function's name, for dead-letter reasons and log lines.
    pub function: &'static str,
    /// Records handled at once (standard queues only).
    pub concurrency: usize,
    /// A FIFO queue: records run in order, and the first failure stops the
    /// batch so that nothing overtakes it.
    pub fifo: bool,
    /// The invocation's deadline. A record is not started with less than
    /// [`START_RESERVE`] left: it is reported as failed instead, so the
    /// invocation answers in time. An invocation that times out answers
    /// nothing, and SQS then delivers every record of the batch again,
    /// including those already dead-lettered, which would be sent twice.
    pub deadline: Option<SystemTime>,
}

/// The least time left that a record is started with: enough for one
/// record's calls, and for the batch's closing calls (delaying the
/// retries), under the 10 s function timeout.
pub const START_RESERVE: Duration = Duration::from_secs(2);

/// How a batch went.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchReport {
    /// `(message id, disposition)` per input record, in input order.
    pub outcomes: Vec<(String, Disposition)>,
    /// How long each record that ran took, in milliseconds, in input order.
    /// The records a FIFO batch skips after a failure never run, so they
    /// have none.
    pub durations_ms: Vec<f64>,
}

impl BatchReport {
    /// An empty report with room for `records` records.
    fn with_capacity(records: usize) -> Self {
        Self {
            outcomes: Vec::with_capacity(records),
            durations_ms: Vec::with_capacity(records),
        }
    }

    /// The response Lambda gives SQS: exactly the records to retry.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .outcomes
            .iter()
            .filter(|(_, d)| matches!(d, Disposition::Retry(_)))
            .map(|(id, _)| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }
}

/// Why a FIFO record is retried without being run.
const BLOCKED: &str = "an earlier record of this FIFO batch failed";

/// Runs `handle` over every record, decides each one's fate and logs it.
pub async fn process<'r, H, F, D>(
    records: &'r [Record],
    options: BatchOptions,
    dead_letters: &D,
    handle: H,
) -> BatchReport
where
    H: Fn(&'r Record) -> F,
    F: Future<Output = Handled> + 'r,
    D: DeadLetterSink,
{
    let one = |record: &'r Record| {
        let handled = AssertUnwindSafe(handle(record)).catch_unwind();
        run_one(record, handled, options, dead_letters)
    };
    if options.fifo {
        in_order(records, options.function, one).await
    } else {
        concurrently(records, options.concurrency, one).await
    }
}

/// What running one record came to: its message id, its disposition and
/// how long it ran, in milliseconds.
type Ran = (String, Disposition, f64);

/// Runs one record's `handled` future, unless too little time is left to
/// start it, then decides its fate and logs it.
async fn run_one<U, D>(record: &Record, handled: U, options: BatchOptions, dead_letters: &D) -> Ran
where
    U: Future<Output = Result<Handled, Box<dyn Any + Send>>>,
    D: DeadLetterSink,
{
    let started = Instant::now();
    if let Some(left) = too_little_time(options.deadline) {
        let end = End::Retry {
            kind: "deadline",
            reason: format!(
                "not started: {} ms of the invocation left, under the {} ms reserve",
                left.as_millis(),
                START_RESERVE.as_millis()
            ),
        };
        log(options.function, record, None, &end, None);
        return (record.message_id.clone(), end.into_disposition(), 0.0);
    }
    let (subject, end) = match handled.await {
        Ok(Handled { subject, result }) => {
            let end = settle(record, result, options.function, dead_letters).await;
            (subject, end)
        }
        Err(panic) => {
            let what = panic_message(panic.as_ref());
            let reason = format!("panicked: {}", redact(&what));
            (
                None,
                End::Retry {
                    kind: "panic",
                    reason,
                },
            )
        }
    };
    let duration_ms = millis(started);
    log(
        options.function,
        record,
        subject.as_ref(),
        &end,
        Some(duration_ms),
    );
    (
        record.message_id.clone(),
        end.into_disposition(),
        duration_ms,
    )
}

/// Runs a FIFO batch's records one after another; once one is to be
/// retried, the rest are retried without being run.
async fn in_order<'r, O, U>(records: &'r [Record], function: &'static str, one: O) -> BatchReport
where
    O: Fn(&'r Record) -> U,
    U: Future<Output = Ran>,
{
    let mut report = BatchReport::with_capacity(records.len());
    let mut stopped = false;
    for record in records {
        if stopped {
            let end = End::Retry {
                kind: "fifo_blocked",
                reason: BLOCKED.into(),
            };
            log(function, record, None, &end, None);
            report
                .outcomes
                .push((record.message_id.clone(), end.into_disposition()));
            continue;
        }
        let (id, disposition, duration_ms) = one(record).await;
        stopped = matches!(disposition, Disposition::Retry(_));
        report.outcomes.push((id, disposition));
        report.durations_ms.push(duration_ms);
    }
    report
}

/// Runs a standard batch's records, up to `concurrency` at once, and
/// reports them in input order.
async fn concurrently<'r, O, U>(records: &'r [Record], concurrency: usize, one: O) -> BatchReport
where
    O: Fn(&'r Record) -> U,
    U: Future<Output = Ran>,
{
    let mut report = BatchReport::with_capacity(records.len());
    let mut indexed: Vec<(usize, Ran)> = stream::iter(records.iter().enumerate())
        .map(|(i, record)| one(record).map(move |outcome| (i, outcome)))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    indexed.sort_by_key(|(i, _)| *i);
    for (_, (id, disposition, duration_ms)) in indexed {
        report.outcomes.push((id, disposition));
        report.durations_ms.push(duration_ms);
    }
    report
}

/// How much time is left before `deadline`, if that is under
/// [`START_RESERVE`].
fn too_little_time(deadline: Option<SystemTime>) -> Option<Duration> {
    let left = deadline?
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    (left < START_RESERVE).then_some(left)
}

/// How one record ended, with what its log line says about it.
enum End {
    Processed { published: usize },
    Duplicate { republished: usize },
    DeadLettered { kind: &'static str, reason: String },
    Retry { kind: &'static str, reason: String },
}

impl End {
    fn into_disposition(self) -> Disposition {
        match self {
            Self::Processed { .. } => Disposition::Ack,
            Self::Duplicate { .. } => Disposition::Duplicate,
            Self::DeadLettered { .. } => Disposition::DeadLettered,
            Self::Retry { reason, .. } => Disposition::Retry(reason),
        }
    }
}

/// Decides the fate of a record its handler is done with.
async fn settle<D: DeadLetterSink>(
    record: &Record,
    result: Result<Processed, RecordError>,
    function: &'static str,
    dead_letters: &D,
) -> End {
    match result {
        Ok(Processed::Applied { published }) => End::Processed { published },
        Ok(Processed::Duplicate { republished }) => End::Duplicate { republished },
        Err(err) if err.is_permanent() => dead_letter(record, &err, function, dead_letters).await,
        Err(err) => End::Retry {
            kind: err.kind(),
            reason: describe(&err),
        },
    }
}

async fn dead_letter<D: DeadLetterSink>(
    record: &Record,
    err: &RecordError,
    function: &'static str,
    dead_letters: &D,
) -> End {
    let letter = DeadLetter {
        body: record.body.clone(),
        error_kind: err.kind().to_owned(),
        error_message: describe(err),
        function: function.to_owned(),
        original_message_id: record.message_id.clone(),
        receive_count: record.receive_count,
    };
    match dead_letters.send(&letter).await {
        Ok(()) => End::DeadLettered {
            kind: err.kind(),
            reason: letter.error_message,
        },
        Err(send) => End::Retry {
            kind: "dlq_send_failed",
            reason: format!(
                "{}; and the DLQ send failed: {}",
                letter.error_message,
                describe(&send)
            ),
        },
    }
}

/// Milliseconds since `started`, to the microsecond.
fn millis(started: Instant) -> f64 {
    started.elapsed().as_micros() as f64 / 1000.0
}

/// Logs a record's outcome line: the one line each record gets.
fn log(
    function: &'static str,
    record: &Record,
    subject: Option<&Subject>,
    end: &End,
    duration_ms: Option<f64>,
) {
    // One call site per level and message; the fields are the same.
    macro_rules! line {
        ($level:expr, $message:literal, $outcome:literal, $published:expr, $kind:expr, $error:expr) => {
            tracing::event!(
                $level,
                function,
                message_id = record.message_id.as_str(),
                order_id = subject.map(|s| s.order_id.as_str()),
                event_id = subject.map(|s| tracing::field::display(s.event_id)),
                causation_id = subject
                    .and_then(|s| s.causation_id)
                    .map(tracing::field::display),
                detail_type = subject.map(|s| s.detail_type),
                outcome = $outcome,
                published = $published,
                error_kind = $kind,
                error = $error,
                duration_ms,
                $message
            )
        };
    }
    match end {
        End::Processed { published } => line!(
            Level::INFO,
            "record processed",
            "processed",
            Some(*published),
            None::<&str>,
            None::<&str>
        ),
        End::Duplicate { republished } => line!(
            Level::INFO,
            "duplicate delivery; stored outcome re-published",
            "duplicate",
            Some(*republished),
            None::<&str>,
            None::<&str>
        ),
        End::DeadLettered { kind, reason } => line!(
            Level::WARN,
            "record sent to the DLQ",
            "dead_lettered",
            None::<usize>,
            Some(*kind),
            Some(reason.as_str())
        ),
        End::Retry { kind, reason } if matches!(*kind, "panic" | "dlq_send_failed") => line!(
            Level::ERROR,
            "record failed; it will be retried",
            "retry",
            None::<usize>,
            Some(*kind),
            Some(reason.as_str())
        ),
        End::Retry { kind, reason } => line!(
            Level::WARN,
            "record failed; it will be retried",
            "retry",
            None::<usize>,
            Some(*kind),
            Some(reason.as_str())
        ),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
