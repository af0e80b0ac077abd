//! `cargo xtask fuzz`: coverage-guided fuzzing of the decoders and the
//! event pattern matcher with libFuzzer, on the stable toolchain.
//!
//! cargo-fuzz wants nightly for its sanitizers, but what guides libFuzzer is
//! LLVM's coverage instrumentation, and that is stable `-C` flags. So this
//! builds `fuzz/` (a workspace of its own) with those flags and `--cfg
//! fuzzing`, for the host's target triple named explicitly, which keeps the
//! flags off build scripts and proc macros, and runs each target binary
//! over its committed corpus in `fuzz/corpus/<target>/`. New inputs go to
//! `target/fuzz/corpus/<target>/`; `--merge` minimizes them into the
//! committed corpus. A crash leaves its input in
//! `target/fuzz/artifacts/<target>/` and fails the command.
//!
//! Fuzzing builds optimized. The short run of `cargo xtask test` builds
//! unoptimized instead (`--dev`): 1 min 54 s against about 5 min here, for
//! about a tenth of the executions a second; it still replays the whole
//! corpus and explores for its 20 s. Neither builds the AWS SDK: the
//! targets take the runtime without its `aws` feature (1 min 7 s against
//! 2 min 59 s for the `--dev` build with it).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cmd_stdout, project_root, run_cmd};

/// The fuzz targets, by binary name (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: [&str; 4] = ["bus_envelope", "detail", "event_pattern", "invocation"];

/// Seconds per target when not told otherwise: the short run of `cargo
/// xtask test`.
const DEFAULT_SECONDS: u64 = 20;

/// The largest input tried, in bytes: room for an SQS batch of a few
/// records, while the oversize cases (256 KB bodies) are the flow tests'.
const MAX_LEN: usize = 16 * 1024;

/// LLVM's SanitizerCoverage, as cargo-fuzz configures it for libFuzzer.
const INSTRUMENTATION: [&str; 5] = [
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
];

const USAGE: &str = "\
usage: cargo xtask fuzz [--seconds N | --runs N] [--merge] [--dev] [TARGET...]

  Builds fuzz/ with libFuzzer's coverage instrumentation and fuzzes each
  TARGET (default: all of bus_envelope, detail, event_pattern, invocation) over its
  committed corpus in fuzz/corpus/TARGET/.

  --seconds N   fuzz each target for N seconds (default 20)
  --runs N      fuzz each target for N executions instead
  --merge       then minimize the new inputs into fuzz/corpus/TARGET/
  --dev         build unoptimized: a quicker build, slower executions";

/// How long each target runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Budget {
    Seconds(u64),
    Runs(u64),
}

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq)]
struct Options {
    budget: Budget,
    merge: bool,
    /// Build with the dev profile rather than release.
    dev: bool,
    targets: Vec<&'static str>,
}

/// Entry point of `cargo xtask fuzz`.
pub fn main(args: &[String]) -> Result<()> {
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "help"))
    {
        println!("{USAGE}");
        return Ok(());
    }
    let options = parse(args).map_err(|e| anyhow::anyhow!("{e}\n\n{USAGE}"))?;
    run(&options)
}

/// Builds what the short run of `cargo xtask test` runs: `cargo xtask
/// fuzz --dev`, every target for the default time, which then finds them
/// built.
pub fn build_for_short_run() -> Result<()> {
    build(&project_root(), true).map(drop)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        budget: Budget::Seconds(DEFAULT_SECONDS),
        merge: false,
        dev: false,
        targets: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{flag} needs a number"))?;
            match value.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} takes a positive number, not `{value}`")),
            }
        };
        match arg.as_str() {
            "--seconds" => options.budget = Budget::Seconds(number("--seconds")?),
            "--runs" => options.budget = Budget::Runs(number("--runs")?),
            "--merge" => options.merge = true,
            "--dev" => options.dev = true,
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(target) => options.targets.push(target),
                None => return Err(format!("unknown fuzz target or flag `{name}`")),
            },
        }
    }
    if options.targets.is_empty() {
        options.targets = TARGETS.to_vec();
    }
    Ok(options)
}

fn run(options: &Options) -> Result<()> {
    let root = project_root();
    let bin_dir = build(&root, options.dev)?;
    let mut total = 0;
    for target in &options.targets {
        let executed = fuzz(&root, &bin_dir, target, options.budget)?;
        total += executed;
        if options.merge {
            merge(&root, &bin_dir, target)?;
        }
    }
    eprintln!(
        "fuzz: {total} executions over {} targets, no crash",
        options.targets.len()
    );
    Ok(())
}

/// Builds the fuzz targets, unoptimized if `dev`; returns the directory of
/// their binaries.
fn build(root: &Path, dev: bool) -> Result<PathBuf> {
    let host = host_triple()?;
    let target_dir = root.join("target/fuzz");
    let (profile, flag) = if dev {
        ("debug", "--profile=dev")
    } else {
        ("release", "--release")
    };
    eprintln!("fuzz: building fuzz/ ({profile}) with coverage instrumentation for {host}");
    // `-D warnings` fails the build on a warning in the project's own
    // crates (cargo caps the lints of registry crates): the fuzz targets
    // build the runtime without its `aws` feature, and this is where a
    // stray `cfg` there would show.
    let mut flags = vec!["--cfg", "fuzzing", "-D", "warnings"];
    flags.extend(INSTRUMENTATION);
    run_cmd(
        Command::new(env!("CARGO"))
            .current_dir(root.join("fuzz"))
            .env("RUSTFLAGS", flags.join(" "))
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .args(["build", flag, "--locked", "--target", &host])
            .arg("--target-dir")
            .arg(&target_dir),
    )
    .context("building the fuzz targets")?;
    Ok(target_dir.join(host).join(profile))
}

/// The host's target triple, as `rustc -vV` names it.
fn host_triple() -> Result<String> {
    let out = cmd_stdout(Command::new("rustc").arg("-vV"))?;
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// Fuzzes `target` for `budget`; returns how many inputs it ran.
fn fuzz(root: &Path, bin_dir: &Path, target: &str, budget: Budget) -> Result<u64> {
    let corpus = root.join("fuzz/corpus").join(target);
    let found = root.join("target/fuzz/corpus").join(target);
    let artifacts = root.join("target/fuzz/artifacts").join(target);
    for dir in [&corpus, &found, &artifacts] {
        fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let limit = match budget {
        Budget::Seconds(s) => format!("-max_total_time={s}"),
        Budget::Runs(n) => format!("-runs={n}"),
    };
    eprintln!(
        "fuzz: {target}, {}, from {} committed inputs",
        match budget {
            Budget::Seconds(s) => format!("{s} s"),
            Budget::Runs(n) => format!("{n} executions"),
        },
        fs::read_dir(&corpus)?.count()
    );
    let started = Instant::now();
    // New inputs go to the first directory, so the committed corpus only
    // changes through --merge.
    let out = Command::new(bin_dir.join(target))
        .args([limit, format!("-max_len={MAX_LEN}")])
        .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&found)
        .arg(&corpus)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running the fuzz target {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "fuzz target {target} failed ({}); its input is in {}:\n{}",
            out.status,
            artifacts.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let executed = stat(&log, "number_of_executed_units")
        .with_context(|| format!("{target}: libFuzzer printed no final stats:\n{log}"))?;
    eprintln!(
        "fuzz: {target}: {executed} executions in {:.0} s ({:.0}/s), peak RSS {} MB, no crash",
        started.elapsed().as_secs_f64(),
        executed as f64 / started.elapsed().as_secs_f64(),
        stat(&log, "peak_rss_mb").unwrap_or(0)
    );
    Ok(executed)
}

/// A `stat::NAME: VALUE` line of libFuzzer's final stats.
fn stat(log: &str, name: &str) -> Option<u64> {
    let prefix = format!("stat::{name}:");
    log.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

/// Minimizes the committed corpus and the new inputs into the committed
/// corpus.
fn merge(root: &Path, bin_dir: &Path, target: &str) -> Result<()> {
    let corpus = root.join("fuzz/corpus").join(target);
    let found = root.join("target/fuzz/corpus").join(target);
    let before = fs::read_dir(&corpus)?.count();
    cmd_stdout(
        Command::new(bin_dir.join(target))
            .args(["-merge=1".to_owned(), format!("-max_len={MAX_LEN}")])
            .arg(&corpus)
            .arg(&found)
            .stdin(Stdio::null()),
    )
    .with_context(|| format!("merging the corpus of {target}"))?;
    eprintln!(
        "fuzz: {target}: corpus {before} -> {} inputs (fuzz/corpus/{target}/)",
        fs::read_dir(&corpus)?.count()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_and_targets_are_read() {
        assert_eq!(
            parse(&args("--runs 1000 --merge --dev detail")),
            Ok(Options {
                budget: Budget::Runs(1000),
                merge: true,
                dev: true,
                targets: vec!["detail"],
            })
        );
        assert_eq!(parse(&[]).map(|o| o.targets), Ok(TARGETS.to_vec()));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            parse(&args("--seconds")),
            Err("--seconds needs a number".to_owned())
        );
        assert_eq!(
            parse(&args("--runs 0")),
            Err("--runs takes a positive number, not `0`".to_owned())
        );
        assert_eq!(
            parse(&args("envelope")),
            Err("unknown fuzz target or flag `envelope`".to_owned())
        );
    }

    #[test]
    fn final_stats_are_read() {
        let log = "#2\tINITED\nstat::number_of_executed_units: 1858493\nstat::peak_rss_mb: 61\n";
        assert_eq!(stat(log, "number_of_executed_units"), Some(1_858_493));
        assert_eq!(stat(log, "peak_rss_mb"), Some(61));
        assert_eq!(stat(log, "slowest_unit_time_sec"), None);
    }
}
