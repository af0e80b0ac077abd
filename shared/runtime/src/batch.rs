//! The SQS batch loop.
//!
//! Every record ends in exactly one of three ways: acknowledged, reported as
//! a batch item failure (SQS redelivers it, and after `maxReceiveCount` its
//! redrive policy moves it to the DLQ), or sent to the DLQ by us with its
//! reason and then acknowledged. Nothing is dropped: if the DLQ send fails,
//! the record is reported as failed instead.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use futures::{FutureExt, StreamExt, stream};

use crate::dlq::{DeadLetter, DeadLetterSink};
use crate::error::{RecordError, chain};

/// One SQS record, as the batch loop needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The SQS message id: what a batch item failure names.
    pub message_id: String,
    /// The body, unchanged.
    pub body: String,
    /// `ApproximateReceiveCount`.
    pub receive_count: u32,
}

/// How one record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Processed (or a duplicate): delete it.
    Ack,
    /// Sent to the DLQ with its reason: delete it from the source queue.
    DeadLettered,
    /// Report it as failed so SQS delivers it again.
    Retry(String),
}

/// How to run a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// The function's name, for dead-letter reasons.
    pub function: &'static str,
    /// Records handled at once (standard queues only).
    pub concurrency: usize,
    /// A FIFO queue: records run in order, and the first failure stops the
    /// batch so that nothing overtakes it.
    pub fifo: bool,
}

/// Each record's message id and disposition, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchReport {
    /// `(message id, disposition)` per input record.
    pub outcomes: Vec<(String, Disposition)>,
}

impl BatchReport {
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

/// Runs `handle` over every record and decides each one's fate.
pub async fn process<'r, H, F, D>(
    records: &'r [Record],
    options: BatchOptions,
    dead_letters: &D,
    handle: H,
) -> BatchReport
where
    H: Fn(&'r Record) -> F,
    F: Future<Output = Result<(), RecordError>> + 'r,
    D: DeadLetterSink,
{
    let one = |record: &'r Record| {
        let handled = AssertUnwindSafe(handle(record)).catch_unwind();
        async move {
            let disposition = match handled.await {
                Ok(Ok(())) => Disposition::Ack,
                Ok(Err(err)) if err.is_permanent() => {
                    dead_letter(record, &err, options.function, dead_letters).await
                }
                Ok(Err(err)) => {
                    tracing::warn!(message_id = %record.message_id, error = %chain(&err), "record failed; SQS will retry it");
                    Disposition::Retry(chain(&err))
                }
                Err(panic) => {
                    let what = panic_message(panic.as_ref());
                    tracing::error!(message_id = %record.message_id, panic = %what, "record panicked; SQS will retry it");
                    Disposition::Retry(format!("panicked: {what}"))
                }
            };
            (record.message_id.clone(), disposition)
        }
    };

    let outcomes = if options.fifo {
        let mut outcomes = Vec::with_capacity(records.len());
        let mut stopped = false;
        for record in records {
            if stopped {
                outcomes.push((
                    record.message_id.clone(),
                    Disposition::Retry("an earlier record of this FIFO batch failed".into()),
                ));
                continue;
            }
            let outcome = one(record).await;
            stopped = matches!(outcome.1, Disposition::Retry(_));
            outcomes.push(outcome);
        }
        outcomes
    } else {
        let mut indexed: Vec<(usize, (String, Disposition))> =
            stream::iter(records.iter().enumerate())
                .map(|(i, record)| one(record).map(move |outcome| (i, outcome)))
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
        indexed.sort_by_key(|(i, _)| *i);
        indexed.into_iter().map(|(_, outcome)| outcome).collect()
    };
    BatchReport { outcomes }
}

async fn dead_letter<D: DeadLetterSink>(
    record: &Record,
    err: &RecordError,
    function: &'static str,
    dead_letters: &D,
) -> Disposition {
    let letter = DeadLetter {
        body: record.body.clone(),
        error_kind: err.kind().to_owned(),
        error_message: chain(err),
        function: function.to_owned(),
        original_message_id: record.message_id.clone(),
        receive_count: record.receive_count,
    };
    match dead_letters.send(&letter).await {
        Ok(()) => {
            tracing::warn!(
                message_id = %record.message_id,
                error_kind = err.kind(),
                error = %letter.error_message,
                "record sent to the DLQ"
            );
            Disposition::DeadLettered
        }
        Err(send) => {
            tracing::error!(
                message_id = %record.message_id,
                error = %chain(err),
                dlq_error = %chain(&send),
                "DLQ send failed; reporting the record as failed instead"
            );
            Disposition::Retry(format!(
                "{}; and the DLQ send failed: {}",
                chain(err),
                chain(&send)
            ))
        }
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
