//! Where xtask's stack commands point: the `orderflow` CLI's [`Target`],
//! its flags read by the CLI's own definition, with the local cloud started
//! first (the CLI never starts one; xtask does).

use anyhow::Result;
use orderflow::{Cloud, Flow, Target};
use tokio::runtime::Runtime;

use crate::cloud::LocalCloud;

/// Takes the target flags (`--aws`, `--profile`, `--region`, `--cloud`,
/// `--endpoint-url`, `--stack-name`) out of `args`, and returns the rest.
pub fn parse(args: &[String]) -> Result<(Target, Vec<String>)> {
    Ok(Target::take_from(args)?)
}

/// The local cloud xtask runs for `target`: `None` on AWS, and for a cloud
/// named by `--endpoint-url`, which is not ours to start or to measure.
pub fn our_cloud(target: &Target) -> Option<Cloud> {
    (!target.aws && target.endpoint_url.is_none()).then(|| target.cloud())
}

/// Starts `target`'s local cloud if it is not up, and returns its endpoint
/// (`None` on AWS).
pub fn ensure_up(target: &Target) -> Result<Option<String>> {
    match our_cloud(target) {
        Some(cloud) => Ok(Some(cloud.ensure_up()?)),
        None => Ok(target.endpoint_url.clone().filter(|_| !target.aws)),
    }
}

/// A runtime and the deployed stack, its local cloud started if needed.
pub fn connect(target: &Target) -> Result<(Runtime, Flow)> {
    ensure_up(target)?;
    let runtime = orderflow::cli::runtime()?;
    let flow = runtime.block_on(target.connect())?;
    Ok((runtime, flow))
}
