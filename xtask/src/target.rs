//! Where xtask's stack commands point: the `orderflow` CLI's [`Target`],
//! its flags read by the CLI's own definition, with the local cloud started
//! first (the CLI never starts one; xtask does).

use anyhow::Result;
use orderflow::{Flow, Target};
use tokio::runtime::Runtime;

use crate::cloud::LocalCloud;

/// Takes the target flags (`--aws`, `--profile`, `--region`, `--cloud`,
/// `--endpoint-url`, `--stack-name`) out of `args`, and returns the rest.
pub fn parse(args: &[String]) -> Result<(Target, Vec<String>)> {
    Ok(Target::take_from(args)?)
}

/// Starts `target`'s local cloud if it is not up, and returns its endpoint
/// (`None` on AWS). A cloud named by `--endpoint-url` is not ours to start.
pub fn ensure_up(target: &Target) -> Result<Option<String>> {
    match (&target.endpoint_url, target.aws) {
        (_, true) => Ok(None),
        (Some(url), false) => Ok(Some(url.clone())),
        (None, false) => Ok(Some(target.cloud().ensure_up()?)),
    }
}

/// A runtime and the deployed stack, its local cloud started if needed.
pub fn connect(target: &Target) -> Result<(Runtime, Flow)> {
    ensure_up(target)?;
    let runtime = orderflow::cli::runtime()?;
    let flow = runtime.block_on(target.connect())?;
    Ok((runtime, flow))
}
