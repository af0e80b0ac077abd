//! orderflow's project commands, run as `cargo xtask <command>`.
//!
//! The operator's commands (DLQs, replays, traces, seeding, placing orders)
//! are the `orderflow` CLI's (`cli/`); `ops`, `seed` and `place-order` here
//! start the local cloud and run them through its library.
//!
//! # Layout
//! - `main.rs`: the command table and dispatch.
//! - `venv.rs`: the project's Python virtualenvs, installed from lock files.
//! - `cloud.rs`: the two local clouds (LocalStack in host mode, and
//!   ministack, which enforces IAM).
//! - `test.rs`: `cargo xtask test`, the one test command.
//! - `schemas.rs`: JSON Schemas generated from the contracts.
//! - `generate.rs`: `cargo xtask generate`: every generated file at once.
//! - `new_service.rs`: `cargo xtask new-service`: a new function's crate,
//!   samples and template entry.
//! - `services.rs`: `cargo xtask template`: each service's block of the
//!   SAM template, written from its entry in `infra/services.yaml`.
//! - `asyncapi.rs`: `cargo xtask asyncapi`: the bus as an AsyncAPI document.
//! - `fuzz.rs`: `cargo xtask fuzz`: libFuzzer on the decoders, on stable.
//! - `deploy.rs`: `sam build` + `sam deploy`, to AWS or the local cloud.
//! - `demo.rs`: `cargo xtask demo`, through the CLI's library.
//! - `target.rs`: the CLI's flags that point a stack command at AWS or a local
//!   cloud, read for xtask's own commands, and the cloud started first.
//! - `ops.rs`: `cargo xtask ops | seed | place-order`: the `orderflow` CLI,
//!   with the local cloud started first.
//! - `bench*.rs`: `cargo xtask bench`: init, compare, cloud and flow.
//! - `graph.rs`: `cargo xtask graph`: the event flow as a Mermaid diagram.
//! - `limits.rs`: AWS limits the template must respect that neither local
//!   cloud checks (SQS message sizes), checked by `cargo test`.
//! - `chaos.rs`: `cargo xtask chaos`: mixed orders through a stack whose
//!   functions crash on purpose, every invariant checked.

mod asyncapi;
mod bench;
mod bench_cloud;
mod bench_compare;
mod bench_first;
mod bench_flow;
mod build_cache;
mod chaos;
mod cloud;
mod demo;
mod deploy;
mod fuzz;
mod generate;
mod graph;
mod limits;
mod new_service;
mod ops;
mod schemas;
mod services;
mod target;
mod test;
mod venv;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo                 bring up the local cloud, build and deploy the stack,
                       seed stock, place a few orders and watch them settle
  test [--quick]       run every check and test (what CI runs); --quick
                       stops after the cargo tests
  deploy [--local]     sam build + sam deploy: to AWS (--profile, --region,
                       --stack-name, --guided) or to the local cloud;
                       --local --built deploys the last local build as it is
  seed [--file F]      orderflow seed, the local cloud started first: set
                       the stock in events/stock.json
  place-order [--file events/...] [--as-is]
                       orderflow place-order, the local cloud started first:
                       place one order (fresh ids unless --as-is) and follow
                       it until it settles
  flow                 only the whole-flow and operations tests, against the
                       deployed stack (on ministack, the IAM tests too)
  check-template       cfn-lint and checkov on infra/template.yaml
  ops <orderflow command>
                       the operator CLI (dlq list|show|redrive, replay,
                       trace, seed, place-order), the local cloud started
                       first; cargo xtask ops --help explains. Installed:
                       cargo install --path cli, then orderflow --help

  seed, place-order, flow and ops point at the local cloud unless given
  --aws (with --profile, --region), and at ministack, the local cloud that
  enforces IAM, with --cloud ministack; all take --stack-name (default
  orderflow).
  invoke-samples       invoke every function on every sample in events/ with
                       cargo lambda watch (in-memory adapters)
  setup                install the project's Python tools and both local clouds into .venv/
  schemas              regenerate events/schemas/ from the contracts (refuses
                       a change that breaks the released schemas)
  generate             rewrite every file generated from the contracts and
                       infra/services.yaml: the template's service blocks,
                       the README's diagram, events/asyncapi.yaml and
                       events/schemas/
  new-service NAME --consumes KIND[,KIND...] [--emits KIND[,KIND...]]
              [--description TEXT]
                       a new function in the standard shape: its crate with a
                       decide stub and tests, samples in events/NAME/, its
                       entry in infra/services.yaml and the template, and
                       the new kinds it emits in the contracts;
                       --check: one generated in a copy builds and passes
                       its tests; --prove: and, deployed from the copy to
                       LocalStack, receives events
  template [--write | --check]
                       the services' blocks of infra/template.yaml, written
                       from infra/services.yaml (one entry per service)
  asyncapi [--write | --check]
                       the AsyncAPI document of the bus (events/asyncapi.yaml),
                       from the template and the contracts
  fuzz [--seconds N | --runs N] [--merge] [--dev] [TARGET...]
                       coverage-guided fuzzing of the decoders (libFuzzer,
                       stable toolchain) over the corpus in fuzz/corpus/
  chaos [--orders N] [--faults SPEC] [--kill-every SECS]
                       mixed orders through a LocalStack stack whose functions
                       crash after a load, a commit or a publish, and are
                       SIGKILLed at random; then every invariant is checked
  bench init           cold init, size and max RSS of each function against a
                       bare lambda_runtime binary; its first invocation
                       against its warm ones
  bench compare        CPU per record of payment against Powertools for AWS
                       Lambda (Python) on the same payload (goal: 10x faster)
  bench cloud          local-cloud baselines: SQS hop rate, invoke p50/p99
                       warm and cold
  bench flow [--orders N] [--rate R] [--cloud NAME | --aws]
                       N mixed orders (default 1000) through a deployed
                       stack, at once or R per second: orders/s, settle
                       p50/p90/p99, and every order checked
  cloud up|down|status|logs|test [--cloud localstack|ministack]
                       a local cloud: LocalStack in host mode (the default)
                       or ministack with IAM enforced
";

fn main() -> ExitCode {
    if let Some(mut restart) = restart_without_cargo_run_vars(std::env::vars_os()) {
        use std::os::unix::process::CommandExt;
        let err = restart.exec();
        eprintln!(
            "xtask: error: could not run itself again without `cargo run`'s variables: {err}"
        );
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            print!("{USAGE}");
            return Ok(());
        }
    };
    match command {
        "cloud" => cloud::main(rest),
        "bench" => match rest.split_first() {
            Some((what, args)) if what == "cloud" => bench_cloud::main(args),
            Some((what, args)) if what == "flow" => bench_flow::main(args),
            _ => bench::main(rest),
        },
        "schemas" => schemas::main(),
        "generate" => generate::main(),
        "fuzz" => fuzz::main(rest),
        "chaos" => chaos::main(rest),
        "asyncapi" => asyncapi::main(rest),
        "template" => services::main(rest),
        "new-service" => match rest {
            [flag] if flag == "--check" => new_service::check(&project_root()),
            [flag] if flag == "--prove" => new_service::prove_on_local_cloud(&project_root()),
            _ => new_service::main(rest),
        },
        "graph" => graph::main(rest),
        "ops" => ops::forward(rest.iter().map(String::as_str)),
        "demo" => demo::demo(rest),
        "deploy" => deploy::main(rest),
        "seed" | "place-order" => ops::forward(args.iter().map(String::as_str)),
        "flow" => test::flow(rest),
        "check-template" => test::check_template(),
        "test" => test::main(rest),
        "invoke-samples" => test::local_invoke(&project_root()),
        "setup" => {
            venv::ensure("tools", "infra/tools.lock")?;
            venv::ensure("lint", "infra/lint.lock")?;
            // Both local clouds, which `cloud up` would otherwise install on
            // first use.
            for cloud in cloud::Cloud::ALL {
                cloud::install(cloud)?;
            }
            Ok(())
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// `cargo run` describes xtask's own package to it in the environment
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...), and every cargo that
/// xtask starts would inherit that. ring's build script reruns when
/// `CARGO_MANIFEST_DIR` changes, so a build from here and one from a shell
/// each found the other's ring stale and rebuilt it, rustls, the SDK's HTTP
/// client and every workspace crate above them (30–50 s at each switch
/// between `cargo xtask test` and a plain `cargo test`). xtask therefore
/// runs itself again without them, before anything else: this is that
/// command, or `None` once they are gone.
fn restart_without_cargo_run_vars(
    env: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Option<Command> {
    let set_by_cargo_run: Vec<_> = env
        .map(|(name, _)| name)
        .filter(|name| name.to_str().is_some_and(is_cargo_run_var))
        .collect();
    if set_by_cargo_run.is_empty() {
        return None;
    }
    // The path this process runs from (`/proc/self/exe`); should it be
    // unreadable, the exec fails and says so.
    let exe = std::env::current_exe().unwrap_or_default();
    let mut restart = Command::new(exe);
    restart.args(std::env::args_os().skip(1));
    for name in set_by_cargo_run {
        restart.env_remove(name);
    }
    Some(restart)
}

/// Whether `cargo run` sets `name` to describe the package it runs.
fn is_cargo_run_var(name: &str) -> bool {
    matches!(
        name,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_CRATE_NAME"
            | "CARGO_BIN_NAME"
            | "CARGO_PRIMARY_PACKAGE"
    ) || name.starts_with("CARGO_PKG_")
}

/// The workspace root: xtask lives one level below it.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command to completion, failing with the command line if it fails.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let line = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {line}"))?;
    if !status.success() {
        bail!("{line} failed with {status}");
    }
    Ok(())
}

/// Runs a command to completion and returns what it printed, failing with
/// the command line and its stderr if it fails.
pub fn cmd_stdout(cmd: &mut Command) -> Result<Vec<u8>> {
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start {line}"))?;
    if !out.status.success() {
        bail!(
            "{line} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::restart_without_cargo_run_vars;

    fn env(names: &[&str]) -> impl Iterator<Item = (OsString, OsString)> {
        names
            .iter()
            .map(|n| (OsString::from(n), OsString::from("x")))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn xtask_run_by_cargo_runs_again_without_its_package_variables() {
        let restart = restart_without_cargo_run_vars(env(&[
            "PATH",
            "CARGO",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION",
            "CARGO_TARGET_DIR",
        ]));
        let Some(restart) = restart else {
            panic!("xtask run by cargo must run itself again");
        };
        let mut removed: Vec<_> = restart
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_PKG_NAME",
                "CARGO_PKG_VERSION"
            ]
        );
        // Nothing else is changed: the caller's CARGO, CARGO_TARGET_DIR and
        // PATH go on to every cargo xtask starts.
        assert_eq!(restart.get_envs().count(), removed.len());
    }

    #[test]
    fn xtask_without_them_runs_on() {
        assert!(
            restart_without_cargo_run_vars(env(&["PATH", "CARGO", "CARGO_TARGET_DIR"])).is_none()
        );
    }
}
