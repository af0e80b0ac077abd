//! Metrics in CloudWatch's Embedded Metric Format (EMF).
//!
//! Each invocation prints one JSON object on a line of its own to stdout.
//! CloudWatch Logs recognises it by its `_aws` key and extracts the
//! metrics, no API call needed: in namespace [`NAMESPACE`], with the
//! dimension `function`, the counts `processed`, `failed` (retried),
//! `dead_lettered` and `duplicate`, and `record_duration`, every record's
//! duration in milliseconds.
//!
//! ```json
//! {"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"orderflow",
//!   "Dimensions":[["function"]],"Metrics":[{"Name":"processed","Unit":"Count"},…,
//!   {"Name":"record_duration","Unit":"Milliseconds"}]}]},
//!  "function":"payment","processed":3,"failed":0,"dead_lettered":0,"duplicate":0,
//!  "record_duration":[1.2,0.8,0.9]}
//! ```
//!
//! The line is written straight to stdout, not through `tracing`, so it is
//! the plain EMF object and nothing else.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use crate::batch::{BatchReport, Disposition};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "orderflow";

/// The most values EMF takes for one metric in one object. A batch with
/// more durations continues on further lines that carry only those.
pub const MAX_VALUES: usize = 100;

/// The metric declarations of the counts, then of `record_duration`.
const COUNTS: &str = r#"{"Name":"processed","Unit":"Count"},{"Name":"failed","Unit":"Count"},{"Name":"dead_lettered","Unit":"Count"},{"Name":"duplicate","Unit":"Count"}"#;
const DURATION: &str = r#"{"Name":"record_duration","Unit":"Milliseconds"}"#;

/// How many records of a batch ended each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Processed for the first time.
    pub processed: usize,
    /// Reported as failed, to be delivered again.
    pub failed: usize,
    /// Sent to the DLQ.
    pub dead_lettered: usize,
    /// Seen before.
    pub duplicate: usize,
}

impl Counts {
    /// Counts the outcomes of `report`.
    pub fn of(report: &BatchReport) -> Self {
        let mut counts = Self::default();
        for (_, disposition) in &report.outcomes {
            match disposition {
                Disposition::Ack => counts.processed += 1,
                Disposition::Retry(_) => counts.failed += 1,
                Disposition::DeadLettered => counts.dead_lettered += 1,
                Disposition::Duplicate => counts.duplicate += 1,
            }
        }
        counts
    }
}

/// The EMF lines for one invocation of `function` that ended as `report`,
/// each ending in a newline: one line, unless more than [`MAX_VALUES`]
/// records ran. `timestamp_ms` is milliseconds since the Unix epoch.
pub fn emf(function: &str, report: &BatchReport, timestamp_ms: u64) -> String {
    let counts = Counts::of(report);
    let mut chunks = report.durations_ms.chunks(MAX_VALUES);
    let mut out = String::with_capacity(400 + 10 * report.durations_ms.len());
    // Writing to a `String` cannot fail.
    let _ = write!(
        out,
        r#"{{"_aws":{{"Timestamp":{timestamp_ms},"CloudWatchMetrics":[{{"Namespace":"{NAMESPACE}","Dimensions":[["function"]],"Metrics":[{COUNTS}"#
    );
    let first = chunks.next();
    if first.is_some() {
        out.push(',');
        out.push_str(DURATION);
    }
    out.push_str(r#"]}]},"function":"#);
    push_json_str(&mut out, function);
    let _ = write!(
        out,
        r#","processed":{},"failed":{},"dead_lettered":{},"duplicate":{}"#,
        counts.processed, counts.failed, counts.dead_lettered, counts.duplicate
    );
    if let Some(values) = first {
        push_durations(&mut out, values);
    }
    out.push_str("}\n");
    for values in chunks {
        let _ = write!(
            out,
            r#"{{"_aws":{{"Timestamp":{timestamp_ms},"CloudWatchMetrics":[{{"Namespace":"{NAMESPACE}","Dimensions":[["function"]],"Metrics":[{DURATION}]}}]}},"function":"#
        );
        push_json_str(&mut out, function);
        push_durations(&mut out, values);
        out.push_str("}\n");
    }
    out
}

/// Appends `,"record_duration":[…]`.
fn push_durations(out: &mut String, values: &[f64]) {
    out.push_str(r#","record_duration":["#);
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // `{:?}` always writes a decimal point or an exponent, so the
        // value reads back as a float. JSON has no NaN or infinity; a
        // duration is neither, but stay valid.
        let value = if value.is_finite() { *value } else { 0.0 };
        let _ = write!(out, "{value:?}");
    }
    out.push(']');
}

/// Appends `text` as a JSON string.
fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Where a handler's EMF lines go.
#[derive(Debug, Default)]
pub enum MetricsOut {
    /// Stdout, where CloudWatch Logs picks them up: what a function uses.
    #[default]
    Stdout,
    /// Kept in memory, for tests.
    Memory(Mutex<Vec<String>>),
}

impl MetricsOut {
    /// Lines kept in memory, for tests.
    pub fn memory() -> Self {
        Self::Memory(Mutex::new(Vec::new()))
    }

    /// Emits `lines`, each ending in a newline. Writing to stdout is best
    /// effort: a metric is never worth failing an invocation.
    pub fn emit(&self, lines: &str) {
        match self {
            Self::Stdout => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(lines.as_bytes());
                let _ = stdout.flush();
            }
            Self::Memory(kept) => kept
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(lines.lines().map(str::to_owned)),
        }
    }

    /// The lines kept so far (none for stdout).
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Stdout => Vec::new(),
            Self::Memory(kept) => kept.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(durations: usize) -> BatchReport {
        BatchReport {
            outcomes: vec![
                ("a".into(), Disposition::Ack),
                ("b".into(), Disposition::Retry("throttled".into())),
                ("c".into(), Disposition::DeadLettered),
                ("d".into(), Disposition::Duplicate),
            ],
            durations_ms: (0..durations).map(|i| i as f64 + 0.25).collect(),
        }
    }

    fn parse(line: &str) -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    #[test]
    fn every_declared_metric_is_a_key_of_the_right_type() {
        let text = emf("payment", &report(4), 1_764_000_000_123);
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let emf = parse(lines[0]);
        assert_eq!(emf["_aws"]["Timestamp"], 1_764_000_000_123_u64);
        let directives = emf["_aws"]["CloudWatchMetrics"]
            .as_array()
            .unwrap_or_else(|| panic!("{emf}"));
        assert_eq!(directives.len(), 1);
        assert_eq!(directives[0]["Namespace"], "orderflow");
        assert_eq!(
            directives[0]["Dimensions"],
            serde_json::json!([["function"]])
        );
        assert_eq!(emf["function"], "payment");
        let metrics = directives[0]["Metrics"]
            .as_array()
            .unwrap_or_else(|| panic!("{emf}"));
        let names: Vec<&str> = metrics.iter().filter_map(|m| m["Name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "processed",
                "failed",
                "dead_lettered",
                "duplicate",
                "record_duration"
            ]
        );
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap_or_default();
            match metric["Unit"].as_str() {
                Some("Count") => assert!(emf[name].is_u64(), "{name}: {emf}"),
                Some("Milliseconds") => {
                    let values = emf[name].as_array().unwrap_or_else(|| panic!("{emf}"));
                    assert!(values.iter().all(serde_json::Value::is_f64), "{emf}");
                }
                other => panic!("{name}: unit {other:?}"),
            }
        }
        for name in ["processed", "failed", "dead_lettered", "duplicate"] {
            assert_eq!(emf[name], 1, "{name}: {emf}");
        }
        assert_eq!(
            emf["record_duration"],
            serde_json::json!([0.25, 1.25, 2.25, 3.25])
        );
    }

    #[test]
    fn more_durations_than_emf_takes_continue_on_further_lines() {
        let text = emf("inventory", &report(MAX_VALUES * 2 + 1), 7);
        let lines: Vec<serde_json::Value> = text.lines().map(parse).collect();
        assert_eq!(lines.len(), 3);
        let sizes: Vec<usize> = lines
            .iter()
            .filter_map(|l| l["record_duration"].as_array().map(Vec::len))
            .collect();
        assert_eq!(sizes, [MAX_VALUES, MAX_VALUES, 1]);
        assert_eq!(lines[0]["processed"], 1);
        for line in &lines[1..] {
            assert_eq!(line["function"], "inventory");
            assert_eq!(
                line["_aws"]["CloudWatchMetrics"][0]["Metrics"],
                serde_json::json!([{"Name": "record_duration", "Unit": "Milliseconds"}])
            );
            assert!(line.get("processed").is_none());
        }
    }

    #[test]
    fn an_empty_batch_declares_no_durations() {
        let text = emf("shipping", &BatchReport::default(), 7);
        let emf = parse(text.trim_end());
        assert_eq!(emf["processed"], 0);
        assert!(emf.get("record_duration").is_none());
        let metrics = &emf["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(metrics.as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn the_function_name_is_escaped() {
        let text = emf("a\"b\\c\n", &BatchReport::default(), 7);
        assert_eq!(parse(text.trim_end())["function"], "a\"b\\c\n");
    }
}
