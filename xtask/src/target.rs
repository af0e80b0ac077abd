//! Where the stack commands point: the local cloud (the default) or AWS.
//! The same flags for every command: `--aws`, `--profile`, `--region`,
//! `--stack-name`, and `--cloud` to pick the local cloud.

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use orderflow_flow::{DEFAULT_STACK, Flow};
use tokio::runtime::Runtime;

use crate::cloud::Cloud;

/// A stack on AWS or in the local cloud.
#[derive(Debug, Clone)]
pub struct Target {
    /// AWS rather than the local cloud.
    pub aws: bool,
    /// The AWS profile (AWS only).
    pub profile: Option<String>,
    /// The AWS region (AWS only; the local cloud is us-east-1).
    pub region: Option<String>,
    /// The stack name.
    pub stack: String,
    /// Which local cloud (local only).
    pub cloud: Cloud,
}

impl Target {
    /// Takes the target flags out of `args`, and returns the rest.
    pub fn parse(args: &[String]) -> Result<(Self, Vec<String>)> {
        let mut target = Self::local(Cloud::default());
        let mut cloud_named = false;
        let mut rest = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value"))
            };
            match arg.as_str() {
                "--aws" => target.aws = true,
                "--local" => target.aws = false,
                "--profile" => target.profile = Some(value("--profile")?),
                "--region" => target.region = Some(value("--region")?),
                "--stack-name" => target.stack = value("--stack-name")?,
                "--cloud" => {
                    target.cloud = Cloud::parse(&value("--cloud")?)?;
                    cloud_named = true;
                }
                _ => rest.push(arg.clone()),
            }
        }
        if !target.aws && (target.profile.is_some() || target.region.is_some()) {
            bail!("--profile and --region are for AWS: add --aws");
        }
        if target.aws && cloud_named {
            bail!("--cloud picks a local cloud: it does not go with --aws");
        }
        Ok((target, rest))
    }

    /// The default stack on a local cloud.
    pub fn local(cloud: Cloud) -> Self {
        Self {
            aws: false,
            profile: None,
            region: None,
            stack: DEFAULT_STACK.to_owned(),
            cloud,
        }
    }

    /// Where it is, for messages: `stack orderflow on ministack`.
    pub fn describe(&self) -> String {
        let place = if self.aws { "AWS" } else { self.cloud.key() };
        format!("stack {} on {place}", self.stack)
    }

    /// The SDK configuration: the local cloud (started if needed) or AWS's
    /// default chain with the profile and region.
    pub async fn sdk_config(&self) -> Result<SdkConfig> {
        if !self.aws {
            let endpoint = self.cloud.ensure_up()?;
            return orderflow_flow::local_config(&endpoint).await;
        }
        let mut loader = orderflow_flow::tools_loader()?;
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        Ok(loader.load().await)
    }

    /// A runtime and the deployed stack.
    pub fn connect(&self) -> Result<(Runtime, Flow)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let flow = runtime.block_on(async {
            let config = self.sdk_config().await?;
            Flow::connect_with(&config, &self.stack).await
        })?;
        Ok((runtime, flow))
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_are_taken_and_the_rest_is_returned() {
        let (target, rest) = Target::parse(&args(&[
            "--aws",
            "--profile",
            "p",
            "--file",
            "f",
            "--stack-name",
            "s",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(target.aws);
        assert_eq!(target.profile.as_deref(), Some("p"));
        assert_eq!(target.stack, "s");
        assert_eq!(rest, args(&["--file", "f"]));
    }

    #[test]
    fn aws_flags_without_aws_and_missing_values_are_refused() {
        let err = Target::parse(&args(&["--region", "eu-west-1"]))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("--profile and --region are for AWS: add --aws")
        );
        let err = Target::parse(&args(&["--stack-name"]))
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("--stack-name needs a value"));
    }

    #[test]
    fn the_cloud_is_local_only() {
        let (target, _) =
            Target::parse(&args(&["--cloud", "ministack"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.cloud, crate::cloud::Cloud::Ministack);
        let err = Target::parse(&args(&["--aws", "--cloud", "ministack"]))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("--cloud picks a local cloud: it does not go with --aws")
        );
    }
}
