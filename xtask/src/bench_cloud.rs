//! `cargo xtask bench cloud`: baselines of the local cloud on this machine.
//!
//! Prints LocalStack's raw SQS hop rate (send → receive → delete, msgs/s) and the invoke
//! latency through the process executor, p50/p99, warm and cold. The measuring is done by
//! `infra/localstack/bench.py` in the LocalStack venv (boto3 is there); ORDERFLOW_BOOTSTRAP, if
//! set, names the Rust function binary to invoke.

use std::process::Command;

use anyhow::{Context, Result};

use crate::cloud::{self, Cloud, LocalCloud};
use crate::{project_root, run_cmd, venv};

/// Entry point of `cargo xtask bench cloud [bench.py options]`, e.g. `--warm 100 --cold 10`.
pub fn main(args: &[String]) -> Result<()> {
    let endpoint = Cloud::LocalStack.ensure_up()?;
    let venv = venv::ensure("localstack", "infra/localstack/requirements.lock")?;
    let root = project_root();
    run_cmd(
        Command::new(venv.bin("python"))
            .arg(root.join("infra/localstack/bench.py"))
            .args(args)
            .current_dir(&root)
            .envs(cloud::aws_env(&endpoint)),
    )
    .context("the local cloud bench failed")
}
