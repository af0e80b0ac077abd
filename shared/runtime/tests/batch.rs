//! The SQS batch loop: every record acknowledged, retried or dead-lettered,
//! exactly once.

use std::collections::HashSet;

use orderflow_contracts::ContractError;
use orderflow_runtime::batch::{self, BatchOptions, Disposition, Handled, Record};
use orderflow_runtime::dlq::MemoryDeadLetters;
use orderflow_runtime::{Processed, RecordError, Transient};
use proptest::prelude::*;

fn record(id: &str, body: &str) -> Record {
    Record {
        receipt_handle: format!("rh-{id}"),
        message_id: id.to_owned(),
        body: body.to_owned(),
        receive_count: 3,
    }
}

/// A handler whose behaviour each record's body names.
async fn scripted(record: &Record) -> Handled {
    Handled {
        subject: None,
        result: script(record),
    }
}

fn script(record: &Record) -> Result<Processed, RecordError> {
    match record.body.as_str() {
        "ok" => Ok(Processed::Applied { published: 0 }),
        "duplicate" => Ok(Processed::Duplicate { republished: 1 }),
        "transient" => Err(Transient::new("throttled").into()),
        "permanent" => Err(ContractError::UnknownVersion {
            found: 9,
            supported: 1,
        }
        .into()),
        "panic" => panic!("boom in {}", record.message_id),
        other => panic!("unscripted body {other}"),
    }
}

fn options(fifo: bool) -> BatchOptions {
    BatchOptions {
        function: "payment",
        concurrency: 4,
        fifo,
        deadline: None,
    }
}

fn failed_ids(report: &batch::BatchReport) -> Vec<String> {
    report
        .response()
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

#[tokio::test]
async fn response_names_exactly_the_failed_records() {
    let records = vec![
        record("a", "ok"),
        record("b", "transient"),
        record("c", "permanent"),
        record("d", "panic"),
        record("e", "ok"),
    ];
    let dlq = MemoryDeadLetters::new();
    let report = batch::process(&records, options(false), &dlq, scripted).await;
    assert_eq!(failed_ids(&report), vec!["b", "d"]);
    assert_eq!(report.outcomes[0].1, Disposition::Ack);
    assert_eq!(report.outcomes[2].1, Disposition::DeadLettered);
}

#[tokio::test]
async fn a_panic_fails_only_its_own_record() {
    let records = vec![record("a", "ok"), record("b", "panic"), record("c", "ok")];
    let dlq = MemoryDeadLetters::new();
    let report = batch::process(&records, options(false), &dlq, scripted).await;
    assert_eq!(failed_ids(&report), vec!["b"]);
    match &report.outcomes[1].1 {
        Disposition::Retry(why) => assert!(why.contains("boom in b"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn permanent_errors_go_to_the_dlq_with_their_reason() {
    let records = vec![record("m-1", "permanent")];
    let dlq = MemoryDeadLetters::new();
    let report = batch::process(&records, options(false), &dlq, scripted).await;
    assert!(failed_ids(&report).is_empty());
    let letters = dlq.letters();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.body, "permanent");
    assert_eq!(letter.error_kind, "unknown_version");
    assert!(letter.error_message.contains("unknown schema_version 9"));
    assert_eq!(letter.function, "payment");
    assert_eq!(letter.original_message_id, "m-1");
    assert_eq!(letter.receive_count, 3);
    let names: Vec<_> = letter.attributes().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "orderflow.error_kind",
            "orderflow.error_message",
            "orderflow.function",
            "orderflow.original_message_id",
            "orderflow.receive_count"
        ]
    );
}

#[tokio::test]
async fn a_failed_dlq_send_reports_the_record_instead_of_dropping_it() {
    let records = vec![record("a", "permanent"), record("b", "ok")];
    let dlq = MemoryDeadLetters::new();
    dlq.fail_sends(true);
    let report = batch::process(&records, options(false), &dlq, scripted).await;
    assert_eq!(failed_ids(&report), vec!["a"]);
    assert!(dlq.letters().is_empty());
}

#[tokio::test]
async fn fifo_stops_at_the_first_failure_and_reports_everything_after_it() {
    let records = vec![
        record("a", "ok"),
        record("b", "permanent"),
        record("c", "transient"),
        record("d", "ok"),
        record("e", "panic"),
    ];
    let dlq = MemoryDeadLetters::new();
    let report = batch::process(&records, options(true), &dlq, scripted).await;
    // b is dead-lettered (handled); c fails; d and e are never run.
    assert_eq!(failed_ids(&report), vec!["c", "d", "e"]);
    assert_eq!(dlq.letters().len(), 1);
    // d and e never ran: no duration.
    assert_eq!(report.durations_ms.len(), 3);
}

#[tokio::test]
async fn a_duplicate_is_acknowledged_and_every_record_that_ran_has_a_duration() {
    let records = vec![
        record("a", "ok"),
        record("b", "duplicate"),
        record("c", "permanent"),
        record("d", "transient"),
    ];
    let dlq = MemoryDeadLetters::new();
    let report = batch::process(&records, options(false), &dlq, scripted).await;
    let outcomes: Vec<&str> = report.outcomes.iter().map(|(_, d)| d.outcome()).collect();
    assert_eq!(
        outcomes,
        ["processed", "duplicate", "dead_lettered", "retry"]
    );
    assert_eq!(failed_ids(&report), vec!["d"]);
    assert_eq!(report.durations_ms.len(), 4);
    assert!(
        report
            .durations_ms
            .iter()
            .all(|ms| ms.is_finite() && *ms >= 0.0)
    );
}

#[tokio::test]
async fn concurrency_is_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let running = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let records: Vec<_> = (0..20).map(|i| record(&i.to_string(), "ok")).collect();
    let dlq = MemoryDeadLetters::new();
    let report = batch::process(&records, options(false), &dlq, |_| async {
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        running.fetch_sub(1, Ordering::SeqCst);
        Handled {
            subject: None,
            result: Ok(Processed::Applied { published: 0 }),
        }
    })
    .await;
    assert!(failed_ids(&report).is_empty());
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak > 1, "records should overlap, peak {peak}");
    assert!(peak <= 4, "at most 4 at once, peak {peak}");
}

fn body() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("ok"),
        Just("duplicate"),
        Just("transient"),
        Just("permanent"),
        Just("panic")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every input record is acknowledged, failed or dead-lettered exactly
    /// once, and the failed ids are a subset of the inputs.
    #[test]
    fn every_record_ends_exactly_once(
        bodies in prop::collection::vec(body(), 0..25),
        fifo in any::<bool>(),
        dlq_down in any::<bool>(),
    ) {
        let records: Vec<Record> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| record(&format!("id-{i}"), b))
            .collect();
        let dlq = MemoryDeadLetters::new();
        dlq.fail_sends(dlq_down);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let runtime = runtime.map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Panics are expected here; keep the output readable.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let report = runtime.block_on(batch::process(&records, options(fifo), &dlq, scripted));
        std::panic::set_hook(hook);

        let inputs: HashSet<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
        prop_assert_eq!(report.outcomes.len(), records.len());
        let reported: Vec<&str> = report.outcomes.iter().map(|(id, _)| id.as_str()).collect();
        prop_assert_eq!(reported.len(), inputs.len());
        prop_assert_eq!(reported.iter().copied().collect::<HashSet<_>>(), inputs.clone());

        let failed = failed_ids(&report);
        prop_assert!(failed.iter().all(|id| inputs.contains(id.as_str())));
        let dead: HashSet<String> = dlq.letters().into_iter().map(|l| l.original_message_id).collect();
        let acked: HashSet<&str> = report
            .outcomes
            .iter()
            .filter(|(_, d)| matches!(d, Disposition::Ack | Disposition::Duplicate))
            .map(|(id, _)| id.as_str())
            .collect();
        for id in &inputs {
            let ends = usize::from(acked.contains(id))
                + usize::from(dead.contains(*id))
                + failed.iter().filter(|f| f == id).count();
            prop_assert_eq!(ends, 1, "record {} ended {} times", id, ends);
        }
        let first_failure = report.outcomes.iter().position(|(_, d)| matches!(d, Disposition::Retry(_)));
        if let (true, Some(first)) = (fifo, first_failure) {
            prop_assert!(report.outcomes[first..].iter().all(|(_, d)| matches!(d, Disposition::Retry(_))));
        }
    }
}

#[tokio::test]
async fn records_are_not_started_with_too_little_time_left_and_come_back() {
    let records = vec![record("a", "ok"), record("b", "permanent")];
    let dlq = MemoryDeadLetters::new();
    let options = BatchOptions {
        deadline: Some(std::time::SystemTime::now() + std::time::Duration::from_millis(500)),
        ..options(false)
    };
    let report = batch::process(&records, options, &dlq, scripted).await;
    // Neither ran: the permanent one is not dead-lettered now, so an
    // invocation that would have timed out cannot send it twice.
    assert_eq!(failed_ids(&report), vec!["a", "b"]);
    assert!(dlq.letters().is_empty());
    match &report.outcomes[0].1 {
        Disposition::Retry(why) => assert!(why.contains("not started"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn records_with_time_enough_left_run() {
    let records = vec![record("a", "ok")];
    let dlq = MemoryDeadLetters::new();
    let options = BatchOptions {
        deadline: Some(std::time::SystemTime::now() + std::time::Duration::from_secs(10)),
        ..options(false)
    };
    let report = batch::process(&records, options, &dlq, scripted).await;
    assert_eq!(report.outcomes[0].1, Disposition::Ack);
}

#[test]
fn a_deadline_already_past_when_the_invocation_begins_is_ignored() {
    use orderflow_runtime::lambda::plausible_deadline;
    use std::time::{Duration, SystemTime};
    let now = SystemTime::now();
    let ahead = now + Duration::from_secs(9);
    assert_eq!(plausible_deadline(ahead, now), Some(ahead));
    // What `cargo lambda watch` sends: its 600 s timeout as if it were an
    // epoch time.
    let emulated = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
    assert_eq!(plausible_deadline(emulated, now), None);
}
