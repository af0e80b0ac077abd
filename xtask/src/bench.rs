//! `cargo xtask bench init`: cold init of each function against a bare
//! `lambda_runtime` binary, plus bootstrap size, its zip and max RSS; then
//! its first invocation against its warm ones (`bench_first`).
//!
//! Cold init is the time from starting the process to its first
//! `GET /runtime/invocation/next`: everything a cold start costs before the
//! first event. A tiny Runtime API on loopback takes that request; the
//! process is then killed. Figures are medians over many starts, and are
//! reported as ratios to the baseline measured in the same command, because
//! these machines are noisy.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::bench_first::{Invocations, Scenario};
use crate::{project_root, run_cmd};

/// Starts per binary: enough for a stable median on a noisy machine, at a
/// few milliseconds each.
const RUNS: usize = 101;

/// How long a binary may take to ask for its first event.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Entry point of `cargo xtask bench …`.
pub fn main(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some(which @ ("init" | "first")) => {
            let against = match &args[1..] {
                [] => None,
                [flag, dir] if flag == "--against" => Some(PathBuf::from(dir)),
                _ => bail!("usage: cargo xtask bench {which} [--against DIR]"),
            };
            init(which == "init", against.as_deref())
        }
        Some("compare") => crate::bench_compare::compare(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench init [--against DIR] | first [--against DIR] | compare \
             | cloud | flow"
        ),
    }
}

/// Builds the functions as they ship and measures them: their cold starts
/// against the hello binary's (unless `!cold`, for `bench first`), then
/// their first invocations against their warm ones.
///
/// With `against`, a directory holding other builds of the functions
/// (`target/release/payment` and the others from another commit), each is
/// measured beside this build's, its cold starts interleaved with theirs:
/// the way to compare two builds, since the same binary measured an hour
/// apart can differ by a fifth here.
fn init(cold: bool, against: Option<&Path>) -> Result<()> {
    let root = project_root();
    let functions = crate::services::names(&root)?;
    eprintln!("building release binaries (lto, codegen-units=1; minutes when cold)");
    // No `-p`, as `sam build` runs `cargo lambda build --bin NAME`: cargo
    // then resolves features over every member, and the binaries measured
    // are the ones that ship.
    let mut build = Command::new(env!("CARGO"));
    build.current_dir(&root).args(["build", "--release"]);
    for function in &functions {
        build.args(["--bin", function]);
    }
    run_cmd(&mut build)?;
    let release = root.join("target/release");
    // Each function as built here, then as in `against`.
    let mut builds = Vec::new();
    for function in &functions {
        builds.push((
            function,
            function.clone(),
            copied(&release.join(function), "this")?,
        ));
        if let Some(dir) = against {
            let other = dir.join(function);
            if !other.is_file() {
                bail!("--against: no {} to compare", other.display());
            }
            builds.push((function, format!("{function}*"), copied(&other, "against")?));
        }
    }
    if cold {
        cold_starts(&root, &builds)?;
    }
    println!(
        "\n{:<18} {:>10} {:>10} {:>8}  calls",
        "function path", "first p50", "warm p50", "ratio"
    );
    for (function, name, binary) in &builds {
        first_invocation(function, name, binary)?;
    }
    println!(
        "(first = the process's first invocation, from the event handed over to its response; \
         warm = the median of the next {}; each the median of {FIRST_RUNS} processes; \
         AWS calls answered on loopback over plain HTTP, so no TLS, from a table holding what \
         the path needs; calls = what each invocation called; budget: ratio <= 2)",
        crate::bench_first::WARM
    );
    if let Some(dir) = against {
        println!("(NAME* = the build in {})", dir.display());
    }
    Ok(())
}

/// A copy of `binary` under `target/bench/<into>/`, which the bench
/// measures in its place: the same bytes start 5–10% slower here from the
/// file the linker wrote than from a copy, so every binary a run compares
/// (this build, the hello binary, the build `--against` names) is a copy.
fn copied(binary: &Path, into: &str) -> Result<PathBuf> {
    let dir = project_root().join("target/bench").join(into);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let name = binary.file_name().context("a binary has a file name")?;
    let copy = dir.join(name);
    // A new file, not written over the last run's (which could still be
    // mapped by a process the kernel has not finished tearing down).
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(binary, &copy)
        .with_context(|| format!("copying {} to {}", binary.display(), copy.display()))?;
    Ok(copy)
}

/// The cold starts of the hello binary (built here) and of `builds` (name
/// and binary, built already), interleaved, with sizes and max RSS.
fn cold_starts(root: &Path, builds: &[(&String, String, PathBuf)]) -> Result<()> {
    // The hello example is built on its own: an example brings its
    // package's dev-dependencies, whose features (the SDK's test utilities)
    // would otherwise be unified into the functions' build too, 65 KB more
    // of payment than ships.
    run_cmd(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--release",
        "--example",
        "hello",
    ]))?;
    let release = root.join("target/release");
    let mut binaries = vec![("hello", copied(&release.join("examples/hello"), "this")?)];
    binaries.extend(
        builds
            .iter()
            .map(|(_, name, path)| (name.as_str(), path.clone())),
    );
    let paths: Vec<&Path> = binaries.iter().map(|(_, path)| path.as_path()).collect();
    let measured = measure_interleaved(&paths)?;
    let baseline = measured[0].p50;
    println!(
        "{:<10} {:>10} {:>8} {:>10} {:>10} {:>10}",
        "binary", "init p50", "ratio", "size", "zip", "max RSS"
    );
    for ((name, binary), m) in binaries.iter().zip(&measured) {
        print_row(name, binary, m, baseline)?;
    }
    println!(
        "(init = process start to first GET /next, median of {RUNS}, the binaries started in \
         turn; ratio = init / hello's init; zip = the bootstrap deflated as sam packages it; \
         budgets: ratio <= 2, zip <= 3 MB, max RSS <= 20 MB)"
    );
    Ok(())
}

/// Processes per function for the first-invocation figures.
const FIRST_RUNS: usize = 21;

/// What each function's invocations are timed on: the path of a record
/// that succeeds and does the function's work, never one that fails into
/// the DLQ (which would time the dead-letter client's first request).
fn scenarios_of(function: &str) -> Vec<Scenario> {
    let counter = |pk: &str| json!({ "pk": { "S": pk }, "value": { "N": "1000" } });
    match function {
        "payment" => vec![Scenario {
            name: "authorize",
            sample: "order-placed.sqs.json",
            items: vec![],
            must_call: &[
                "DynamoDB_20120810.TransactWriteItems",
                "AWSEvents.PutEvents",
            ],
        }],
        "inventory" => vec![Scenario {
            name: "reserve",
            sample: "order-placed.sqs.json",
            items: vec![counter("STOCK#SKU-RED-MUG"), counter("STOCK#SKU-TEA-250G")],
            must_call: &[
                "DynamoDB_20120810.TransactWriteItems",
                "AWSEvents.PutEvents",
            ],
        }],
        // Shipping's invocations take one of two paths: the first half of
        // an order (record it, wait) and the second (print and store the
        // label, publish the shipment). Both are timed.
        "shipping" => vec![
            Scenario {
                name: "wait",
                sample: "payment-authorized.sqs.json",
                items: vec![],
                must_call: &["DynamoDB_20120810.TransactWriteItems"],
            },
            Scenario {
                name: "ship",
                sample: "stock-reserved.sqs.json",
                items: vec![json!({
                    "pk": { "S": "ORDER#ord-1001" },
                    "version": { "N": "1" },
                    "state": { "S": json!({
                        "payment_authorized": true,
                        "reserved": null,
                        "cancelled_by": null,
                        "shipment": null,
                    }).to_string() },
                })],
                must_call: &["PUT /labels/", "AWSEvents.PutEvents"],
            },
        ],
        // A service this bench has no scenario for yet: its first sample,
        // on an empty table, as long as it fails into no DLQ.
        _ => vec![Scenario {
            name: "order placed",
            sample: "order-placed.sqs.json",
            items: vec![],
            must_call: &[],
        }],
    }
}

/// The first and warm invocations of `binary`, a build of `function`,
/// reported as `name`.
fn first_invocation(function: &str, name: &str, binary: &Path) -> Result<()> {
    for scenario in scenarios_of(function) {
        let sample = project_root()
            .join("events")
            .join(function)
            .join(scenario.sample);
        let event =
            std::fs::read_to_string(&sample).with_context(|| sample.display().to_string())?;
        // The bench points the SDK at a loopback endpoint over plain HTTP,
        // so the function trusts Amazon's roots, as on AWS.
        let run = median_invocations(binary, &event, &scenario)?;
        let label = format!("{name} {}", scenario.name);
        println!(
            "{label:<18} {:>8.2}ms {:>8.2}ms {:>7.2}x  {}",
            run.first.as_secs_f64() * 1e3,
            run.warm.as_secs_f64() * 1e3,
            run.ratio(),
            short_calls(&run.calls),
        );
    }
    Ok(())
}

/// `calls` without their services' prefixes, for the report.
fn short_calls(calls: &[String]) -> String {
    calls
        .iter()
        .map(|call| match call.rsplit_once('.') {
            Some((_, op)) if !call.contains(' ') => op.to_owned(),
            _ => call.split('?').next().unwrap_or(call).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The medians over [`FIRST_RUNS`] processes of `binary` on `event`.
fn median_invocations(binary: &Path, event: &str, scenario: &Scenario) -> Result<Invocations> {
    let env = lambda_env("");
    let mut firsts = Vec::with_capacity(FIRST_RUNS);
    let mut warms = Vec::with_capacity(FIRST_RUNS);
    let mut calls = Vec::new();
    for _ in 0..FIRST_RUNS {
        let run = crate::bench_first::first_and_warm(binary, event, scenario, &env)?;
        firsts.push(run.first);
        warms.push(run.warm);
        calls = run.calls;
    }
    firsts.sort();
    warms.sort();
    Ok(Invocations {
        first: firsts[FIRST_RUNS / 2],
        warm: warms[FIRST_RUNS / 2],
        calls,
    })
}

struct Measurement {
    p50: Duration,
    max_rss_kb: u64,
}

fn print_row(name: &str, binary: &Path, m: &Measurement, baseline: Duration) -> Result<()> {
    let size = std::fs::metadata(binary)?.len();
    println!(
        "{name:<10} {:>8.2}ms {:>7.2}x {:>8.2}MB {:>8.3}MB {:>8.1}MB",
        m.p50.as_secs_f64() * 1e3,
        m.p50.as_secs_f64() / baseline.as_secs_f64(),
        size as f64 / 1e6,
        zipped_size(binary)? as f64 / 1e6,
        m.max_rss_kb as f64 / 1024.0,
    );
    Ok(())
}

/// The size of a zip holding `binary` as `bootstrap`, deflated by Python's
/// zipfile, which is what `sam build` and `sam deploy` package with.
fn zipped_size(binary: &Path) -> Result<u64> {
    const ZIP: &str = "import io, sys, zipfile\n\
        out = io.BytesIO()\n\
        with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:\n    \
        z.write(sys.argv[1], 'bootstrap')\n\
        print(len(out.getvalue()))";
    let out = Command::new("python3")
        .args(["-c", ZIP])
        .arg(binary)
        .output()
        .context("python3, to zip the bootstrap as sam does")?;
    if !out.status.success() {
        bail!(
            "zipping {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("the zip size python3 printed")
}

/// [`RUNS`] cold starts of each of `binaries`, one of each in turn, so
/// that a noisy minute on this machine lands on every binary alike rather
/// than on whichever was being timed (each binary's starts in a row moved
/// a ratio by up to 0.7 between two runs of one hour).
fn measure_interleaved(binaries: &[&Path]) -> Result<Vec<Measurement>> {
    let mut times = vec![Vec::with_capacity(RUNS); binaries.len()];
    let mut max_rss_kb = vec![0; binaries.len()];
    for _ in 0..RUNS {
        for (i, binary) in binaries.iter().enumerate() {
            let (elapsed, rss) = one_cold_start(binary)?;
            times[i].push(elapsed);
            max_rss_kb[i] = max_rss_kb[i].max(rss);
        }
    }
    Ok(times
        .into_iter()
        .zip(max_rss_kb)
        .map(|(mut times, max_rss_kb)| {
            times.sort();
            Measurement {
                p50: times[RUNS / 2],
                max_rss_kb,
            }
        })
        .collect())
}

/// Starts `binary` against a loopback Runtime API and times its first
/// `/next` request.
fn one_cold_start(binary: &Path) -> Result<(Duration, u64)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let api = listener.local_addr()?.to_string();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(lambda_env(&api))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| binary.display().to_string())?;
    // Wait for the first request, but not for a binary that refused to
    // start (it would never come): poll the listener and the process.
    listener.set_nonblocking(true)?;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            bail!(
                "{} exited ({status}) before asking for an event: {}",
                binary.display(),
                stderr.trim()
            );
        }
        if started.elapsed() > START_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not ask for an event within {START_LIMIT:?}",
                binary.display()
            );
        }
        std::thread::sleep(Duration::from_micros(50));
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf)?;
    let elapsed = started.elapsed();
    let request = String::from_utf8_lossy(&buf[..n]);
    let rss = peak_rss_kb(child.id());
    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
    let _ = child.kill();
    let _ = child.wait();
    if !request.contains("/runtime/invocation/next") {
        bail!(
            "{}: first request was not /next: {request}",
            binary.display()
        );
    }
    Ok((elapsed, rss))
}

/// What Lambda puts in a function's environment, with the project's own
/// variables and static credentials (as Lambda provides them).
fn lambda_env(api: &str) -> Vec<(&'static str, String)> {
    let path: PathBuf = std::env::var_os("PATH")
        .map(PathBuf::from)
        .unwrap_or_default();
    vec![
        ("PATH", path.display().to_string()),
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCH".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_SESSION_TOKEN", "bench".into()),
        ("ORDERFLOW_TABLE", "bench".into()),
        ("ORDERFLOW_BUS", "orderflow".into()),
        ("ORDERFLOW_DLQ_URL", "http://127.0.0.1:9/queue/dlq".into()),
        ("ORDERFLOW_LABEL_BUCKET", "labels".into()),
        ("ORDERFLOW_PROVIDER_LEDGER", "ledger".into()),
    ]
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measured_binary_is_a_fresh_copy_that_can_still_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("bench-copied-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let original = dir.join("bench-copied-probe");
        std::fs::write(&original, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&original, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = copied(&original, "test").unwrap();
        assert_ne!(copy, original);
        assert_eq!(std::fs::read(&copy).unwrap(), b"#!/bin/sh\n");
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "still executable");
        std::fs::remove_file(copy).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
