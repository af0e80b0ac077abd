//! `cargo xtask bench compare`: CPU per record of orderflow's payment path
//! against Powertools for AWS Lambda (Python) doing the same job on the same
//! payload.
//!
//! - Rust: the criterion bench `functions/payment/benches/record.rs`, its
//!   `record` function (read the SQS invocation, decode and validate the
//!   body, fingerprint, decide, encode the state and the outbox) and its
//!   `baseline` (the payload parsed into a `serde_json::Value`).
//! - Python: `infra/bench/powertools_record.py` in `.venv/powertools`
//!   (`infra/bench/powertools.lock`): `BatchProcessor` with a parser model,
//!   a record handler that decides and encodes, and `json.loads` of the
//!   same payload as its baseline.
//!
//! Both sides time two invocations: the sample's one record, and a batch of
//! ten copies of it (the template's `BatchSize`, what a queue under load
//! hands over). What an invocation costs once is shared by its records, and
//! Powertools' share of that is large: one record alone flatters the ratio.
//!
//! Each side measures its own baseline in the same run, because these
//! machines are noisy: the report gives the raw figures, each side's
//! record/baseline ratio, the headline speedup (goal: 10×) and the speedup
//! normalized by the two baselines, for each invocation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{project_root, run_cmd};

/// The payload both sides process.
const PAYLOAD: &str = "events/payment/order-placed.sqs.json";
/// The criterion group and its two functions this report reads.
const GROUP: &str = "payment";
const RUST_BASELINE: &str = "baseline: payload to serde_json::Value";
const RUST_RECORD: &str = "record: decode, validate, decide, encode";
/// The same two on a batch of [`BATCH`] (`orderflow_runtime::bench`).
const RUST_BATCH_BASELINE: &str = "batch of 10 baseline: payload to serde_json::Value";
const RUST_BATCH_RECORD: &str = "batch of 10: decode, validate, decide, encode";
/// Selects those four functions (criterion matches `<group>/<function>`).
const FILTER: &str = "baseline|record:|batch of 10:";
/// The batch: the template's `BatchSize`.
const BATCH: usize = 10;
/// The Powertools side.
const SCRIPT: &str = "infra/bench/powertools_record.py";
const LOCK: &str = "infra/bench/powertools.lock";
/// The project's goal for the headline ratio.
const GOAL: f64 = 10.0;

const USAGE: &str = "usage: cargo xtask bench compare\n\n\
    CPU per record of payment's record path against Powertools for AWS Lambda \
    (Python) on the same payload; takes no arguments";

/// Entry point of `cargo xtask bench compare`.
pub fn compare(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        if matches!(arg.as_str(), "-h" | "--help" | "help") {
            println!("{USAGE}");
            return Ok(());
        }
        bail!("unknown argument `{arg}`\n\n{USAGE}");
    }
    let root = project_root();
    let payload = root.join(PAYLOAD);
    if count_records(&payload)? != 1 {
        bail!("{PAYLOAD} must hold one record: the batch is made of copies of it");
    }
    let (rust_one, rust_batch) = rust_side(&root)?;
    let python_one = python_side(&root, &payload, 1)?;
    let python_batch = python_side(&root, &payload, BATCH)?;
    println!();
    println!(
        "{:<22} {:>12} {:>12} {:>16}",
        "per record", "baseline", "record", "record/baseline"
    );
    let one = report("one record an invocation", &rust_one, &python_one);
    let batch = report(
        "a batch of 10 an invocation (the template's BatchSize)",
        &rust_batch,
        &python_batch,
    );
    println!();
    println!(
        "({PAYLOAD}, and {BATCH} copies of its record in one invocation; medians: Rust by \
         criterion, Python over timeit batches; baseline = parse the payload: serde_json::Value \
         vs json.loads; no I/O)"
    );
    if one.min(batch) < GOAL {
        println!("BELOW GOAL: orderflow is not {GOAL}× faster per record at both batch sizes");
    }
    Ok(())
}

/// One side's per-record medians, in microseconds.
struct Side {
    baseline_us: f64,
    record_us: f64,
}

impl Side {
    fn ratio(&self) -> f64 {
        self.record_us / self.baseline_us
    }
}

/// How many SQS records the payload holds: both sides report per record.
fn count_records(payload: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(payload)
        .with_context(|| format!("reading {}", payload.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", payload.display()))?;
    let records = value
        .get("Records")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if records == 0 {
        bail!("{} holds no SQS records", payload.display());
    }
    Ok(records)
}

/// The one record's figures, then the batch's, per record.
fn rust_side(root: &Path) -> Result<(Side, Side)> {
    eprintln!("xtask: running the payment criterion bench (release build; minutes when cold)");
    let started = SystemTime::now();
    // Criterion's report goes to stderr: stdout is for this command's table.
    run_cmd(
        Command::new(env!("CARGO"))
            .current_dir(root)
            .args(["bench", "-p", "payment", "--bench", "record", "--"])
            .args(["--warm-up-time", "1", "--measurement-time", "3", FILTER])
            .stdout(Stdio::from(std::io::stderr())),
    )?;
    let group = target_dir(root).join("criterion").join(GROUP);
    let per_call = |function: &str| median_ns(&group, function, started).map(|ns| ns / 1e3);
    let batch = BATCH as f64;
    Ok((
        Side {
            baseline_us: per_call(RUST_BASELINE)?,
            record_us: per_call(RUST_RECORD)?,
        },
        Side {
            baseline_us: per_call(RUST_BATCH_BASELINE)? / batch,
            record_us: per_call(RUST_BATCH_RECORD)? / batch,
        },
    ))
}

/// Where cargo, and so criterion, writes.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The median of `function` in criterion's group folder, in nanoseconds.
/// The function's folder is found by its `function_id` rather than by
/// guessing how criterion escapes the name; a result older than `since` (a
/// run that did not measure it) is refused.
fn median_ns(group: &Path, function: &str, since: SystemTime) -> Result<f64> {
    let entries =
        std::fs::read_dir(group).with_context(|| format!("reading {}", group.display()))?;
    for entry in entries {
        let new = entry?.path().join("new");
        let Ok(text) = std::fs::read_to_string(new.join("benchmark.json")) else {
            continue;
        };
        let benchmark: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", new.join("benchmark.json").display()))?;
        if benchmark.get("function_id").and_then(Value::as_str) != Some(function) {
            continue;
        }
        let path = new.join("estimates.json");
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("reading {}", path.display()))?;
        if modified < since {
            bail!(
                "{} predates this run: the bench did not measure `{function}`",
                path.display()
            );
        }
        let estimates: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?;
        return estimates
            .pointer("/median/point_estimate")
            .and_then(Value::as_f64)
            .with_context(|| format!("{} has no median.point_estimate", path.display()));
    }
    bail!(
        "no criterion result for `{GROUP}/{function}` under {}",
        group.display()
    )
}

fn python_side(root: &Path, payload: &Path, records: usize) -> Result<Side> {
    let venv = crate::venv::ensure("powertools", LOCK)?;
    eprintln!("xtask: timing the Powertools record path ({SCRIPT})");
    let mut cmd = Command::new(venv.bin("python"));
    cmd.current_dir(root).arg(root.join(SCRIPT)).arg(payload);
    if records > 1 {
        cmd.args(["--batch", &records.to_string()]);
    }
    // Powertools reads its settings from the environment; POWERTOOLS_DEBUG
    // in particular changes what it costs. Measure the defaults.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("POWERTOOLS_") {
            cmd.env_remove(&key);
        }
    }
    let line = format!("{cmd:?}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {line}"))?;
    if !out.status.success() {
        bail!("{line} failed with {}", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .transpose()
        .with_context(|| format!("{SCRIPT} printed {stdout:?}"))?
        .with_context(|| format!("{SCRIPT} printed nothing"))?;
    let figure = |key: &str| {
        result
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && *v > 0.0)
            .with_context(|| format!("{SCRIPT} printed no positive `{key}`: {result}"))
    };
    let theirs = result.get("records").and_then(Value::as_u64);
    if theirs != Some(records as u64) {
        bail!("{SCRIPT} timed {theirs:?} records per payload, not {records}");
    }
    Ok(Side {
        baseline_us: figure("baseline_us")?,
        record_us: figure("record_us")?,
    })
}

/// Prints one invocation's rows and verdict; returns the speedup.
fn report(title: &str, rust: &Side, python: &Side) -> f64 {
    println!("{title}");
    for (name, side) in [
        ("  Rust (orderflow)", rust),
        ("  Python (Powertools)", python),
    ] {
        println!(
            "{name:<22} {:>9.2} µs {:>9.2} µs {:>15.2}×",
            side.baseline_us,
            side.record_us,
            side.ratio()
        );
    }
    let speedup = python.record_us / rust.record_us;
    let normalized = python.ratio() / rust.ratio();
    let verdict = if speedup >= GOAL {
        "goal met"
    } else {
        "BELOW GOAL"
    };
    println!(
        "  orderflow is {speedup:.1}× faster per record than Powertools (goal ≥ {GOAL}×): {verdict}"
    );
    println!(
        "  normalized: {normalized:.2}× (Python's record/baseline over Rust's: the speedup with \
         each side's JSON parse as its unit; the baselines differ {:.1}×)",
        python.baseline_us / rust.baseline_us
    );
    speedup
}
