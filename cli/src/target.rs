//! Where a command points: a local cloud (the default) or AWS. The same
//! flags for every command, defined once here with clap and reused by
//! `cargo xtask` for its own stack commands ([`Target::take_from`]).
//!
//! The CLI never starts a local cloud (that is `cargo xtask cloud up`): it
//! connects to the cloud's known endpoint, or to `--endpoint-url`, and says
//! how to start one when nothing answers there.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Result, bail};
use aws_config::SdkConfig;
use clap::error::ErrorKind;
use clap::{Args, FromArgMatches};

use crate::flow::{Flow, local_config, tools_loader};
use crate::stack::DEFAULT_STACK;

/// One of the two local clouds `cargo xtask cloud up` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Cloud {
    /// LocalStack in host mode, with orderflow's extension: the default.
    #[default]
    #[value(name = "localstack")]
    LocalStack,
    /// ministack with `AUTH=true`: IAM is enforced.
    #[value(name = "ministack")]
    Ministack,
}

impl Cloud {
    /// Both, in the order `cargo xtask test` runs them.
    pub const ALL: [Cloud; 2] = [Cloud::LocalStack, Cloud::Ministack];

    /// The cloud a `--cloud` value names.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "localstack" => Ok(Cloud::LocalStack),
            "ministack" => Ok(Cloud::Ministack),
            other => bail!("unknown cloud `{other}`: the clouds are localstack and ministack"),
        }
    }

    /// The name in flags and folders: `localstack` or `ministack`.
    pub fn key(self) -> &'static str {
        match self {
            Cloud::LocalStack => "localstack",
            Cloud::Ministack => "ministack",
        }
    }

    /// The name in messages: `LocalStack` or `ministack`.
    pub fn title(self) -> &'static str {
        match self {
            Cloud::LocalStack => "LocalStack",
            Cloud::Ministack => "ministack",
        }
    }

    /// The address it listens on. Two ports, so that both clouds can run
    /// at once (`cargo xtask test` deploys the same build to each).
    pub fn addr(self) -> &'static str {
        match self {
            Cloud::LocalStack => "127.0.0.1:4566",
            Cloud::Ministack => "127.0.0.1:4567",
        }
    }

    /// Where the cloud answers.
    pub fn endpoint(self) -> String {
        format!("http://{}", self.addr())
    }
}

/// Where `--help` lists the target flags, apart from each command's own.
const HEADING: &str = "Where the stack is";

/// A stack on AWS or on a local cloud: the flags every command takes.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Target {
    /// The stack on AWS, with the default credential chain, rather than on
    /// a local cloud.
    #[arg(long, global = true, help_heading = HEADING)]
    pub aws: bool,
    /// The AWS profile (with --aws).
    #[arg(long, global = true, help_heading = HEADING, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// The AWS region (with --aws; a local cloud is us-east-1).
    #[arg(long, global = true, help_heading = HEADING, value_name = "REGION")]
    pub region: Option<String>,
    /// Which local cloud: localstack (the default) on 127.0.0.1:4566, or
    /// ministack, which enforces IAM, on 127.0.0.1:4567.
    #[arg(long, global = true, help_heading = HEADING, value_enum, value_name = "NAME")]
    pub cloud: Option<Cloud>,
    /// Any local cloud, by its endpoint, instead of --cloud's.
    #[arg(long, global = true, help_heading = HEADING, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The CloudFormation stack.
    #[arg(
        long = "stack-name",
        global = true,
        help_heading = HEADING,
        value_name = "NAME",
        default_value = DEFAULT_STACK
    )]
    pub stack: String,
}

impl Target {
    /// The default stack on a local cloud.
    pub fn local(cloud: Cloud) -> Self {
        Self {
            aws: false,
            profile: None,
            region: None,
            cloud: Some(cloud),
            endpoint_url: None,
            stack: DEFAULT_STACK.to_owned(),
        }
    }

    /// The local cloud named, or LocalStack.
    pub fn cloud(&self) -> Cloud {
        self.cloud.unwrap_or_default()
    }

    /// Checks the rules between the flags: `--profile` and `--region` only
    /// with `--aws`, `--cloud` and `--endpoint-url` only without it, and not
    /// both of those. They are checked here rather than declared to clap,
    /// which does not apply `requires` and `conflicts_with` across a global
    /// flag given before the command and another given after it.
    pub fn check(&self) -> Result<(), (ErrorKind, &'static str)> {
        if !self.aws && (self.profile.is_some() || self.region.is_some()) {
            return Err((
                ErrorKind::MissingRequiredArgument,
                "--profile and --region are for AWS: add --aws",
            ));
        }
        let conflict = match (self.aws, self.cloud.is_some(), self.endpoint_url.is_some()) {
            (true, true, _) => "--cloud picks a local cloud: it does not go with --aws",
            (true, _, true) => "--endpoint-url points at a local cloud: it does not go with --aws",
            (false, true, true) => "--cloud and --endpoint-url both pick the local cloud: give one",
            _ => return Ok(()),
        };
        Err((ErrorKind::ArgumentConflict, conflict))
    }

    /// Takes the target flags out of `args`, and returns the rest: for a
    /// tool with flags of its own (`cargo xtask deploy`, say). The flags are
    /// read by the same clap definition as the CLI's, so their rules hold
    /// there too.
    pub fn take_from(args: &[String]) -> Result<(Self, Vec<String>), clap::Error> {
        let command = Self::augment_args(clap::Command::new("target").no_binary_name(true));
        let mut ours = Vec::new();
        let mut rest = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.strip_prefix("--") {
                Some(flag) => match flag.split_once('=') {
                    Some((name, _)) => (name, true),
                    None => (flag, false),
                },
                None => ("", false),
            };
            let Some(def) = command.get_arguments().find(|a| a.get_long() == Some(name)) else {
                rest.push(arg.clone());
                continue;
            };
            ours.push(arg.clone());
            if !inline && def.get_action().takes_values() {
                ours.extend(args.next().cloned());
            }
        }
        let matches = command.clone().try_get_matches_from(ours)?;
        let target = Self::from_arg_matches(&matches)?;
        target
            .check()
            .map_err(|(kind, message)| command.clone().error(kind, message))?;
        Ok((target, rest))
    }

    /// Where it is, for messages: `stack orderflow on ministack`.
    pub fn describe(&self) -> String {
        let place = match (&self.endpoint_url, self.aws) {
            (_, true) => "AWS",
            (Some(url), false) => url.as_str(),
            (None, false) => self.cloud().key(),
        };
        format!("stack {} on {place}", self.stack)
    }

    /// The local cloud's endpoint (`None` on AWS).
    pub fn endpoint(&self) -> Option<String> {
        if self.aws {
            return None;
        }
        Some(
            self.endpoint_url
                .clone()
                .unwrap_or_else(|| self.cloud().endpoint()),
        )
    }

    /// The SDK configuration: the local cloud, which must be up, or AWS's
    /// default chain with the profile and region.
    pub async fn sdk_config(&self) -> Result<SdkConfig> {
        if let Some(endpoint) = self.endpoint() {
            self.check_answers(&endpoint)?;
            return local_config(&endpoint).await;
        }
        let mut loader = tools_loader()?;
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        Ok(loader.load().await)
    }

    /// The deployed stack.
    pub async fn connect(&self) -> Result<Flow> {
        let config = self.sdk_config().await?;
        Flow::connect_with(&config, &self.stack).await
    }

    /// Fails, saying how to start it, unless something accepts connections
    /// at `endpoint`. Without this the SDK would retry a refused connection
    /// for a while and then report a dispatch failure that names no cause.
    fn check_answers(&self, endpoint: &str) -> Result<()> {
        if answers(endpoint) {
            return Ok(());
        }
        let start = match (&self.endpoint_url, self.cloud()) {
            (Some(_), _) => "start that cloud, or".to_owned(),
            (None, Cloud::LocalStack) => {
                "start it with `cargo xtask cloud up` (or `cargo xtask demo`, which also deploys \
                 the stack), or"
                    .to_owned()
            }
            (None, cloud) => format!(
                "start it with `cargo xtask cloud up --cloud {}`, or",
                cloud.key()
            ),
        };
        bail!("no local cloud answers on {endpoint}: {start} point at AWS with --aws")
    }
}

/// Whether something accepts a TCP connection at the URL's host and port.
fn answers(endpoint: &str) -> bool {
    let (default_port, rest) = match endpoint.split_once("://") {
        Some(("https", rest)) => (443, rest),
        Some((_, rest)) => (80, rest),
        None => (80, endpoint),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let addrs = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_socket_addrs()
    } else {
        (authority, default_port).to_socket_addrs()
    };
    addrs
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::{Cloud, Target, answers};

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn target_flags_are_taken_and_the_rest_is_returned() {
        let (target, rest) = Target::take_from(&args(&[
            "--aws",
            "--profile",
            "p",
            "--file",
            "f",
            "--stack-name=s",
            "--guided",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(target.aws);
        assert_eq!(target.profile.as_deref(), Some("p"));
        assert_eq!(target.stack, "s");
        assert_eq!(rest, args(&["--file", "f", "--guided"]));
    }

    #[test]
    fn taken_flags_follow_the_clis_rules() {
        let refused = |list: &[&str]| Target::take_from(&args(list)).is_err();
        assert!(refused(&["--region", "eu-west-1"]));
        assert!(refused(&["--aws", "--cloud", "ministack"]));
        assert!(refused(&["--stack-name"]));
        assert!(refused(&["--cloud", "kubernetes"]));
        let (target, rest) =
            Target::take_from(&args(&["--cloud", "ministack"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.cloud(), Cloud::Ministack);
        assert_eq!(target.stack, "orderflow");
        assert!(rest.is_empty());
        let (target, _) = Target::take_from(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.cloud(), Cloud::LocalStack);
        assert!(!target.aws && target.endpoint_url.is_none());
    }

    #[test]
    fn the_endpoint_is_the_clouds_unless_named_and_none_on_aws() {
        let mut target = Target::local(Cloud::Ministack);
        assert_eq!(target.endpoint().as_deref(), Some("http://127.0.0.1:4567"));
        target.endpoint_url = Some("http://localhost:9999".into());
        assert_eq!(target.endpoint().as_deref(), Some("http://localhost:9999"));
        assert_eq!(
            target.describe(),
            "stack orderflow on http://localhost:9999"
        );
        let aws = Target {
            aws: true,
            cloud: None,
            ..Target::local(Cloud::LocalStack)
        };
        assert_eq!(aws.endpoint(), None);
        assert_eq!(aws.describe(), "stack orderflow on AWS");
    }

    #[test]
    fn a_port_nobody_listens_on_does_not_answer_and_a_listener_does() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        assert!(answers(&format!("http://127.0.0.1:{port}/")));
        drop(listener);
        assert!(!answers(&format!("http://127.0.0.1:{port}")));
        assert!(!answers("http://nonexistent.invalid:4566"));
    }

    #[test]
    fn a_silent_cloud_is_refused_with_how_to_start_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        drop(listener);
        let target = Target {
            cloud: None,
            endpoint_url: Some(format!("http://127.0.0.1:{port}")),
            ..Target::local(Cloud::LocalStack)
        };
        let endpoint = target.endpoint().unwrap_or_default();
        let err = target.check_answers(&endpoint).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "no local cloud answers on http://127.0.0.1:{port}: start that cloud, or point \
                 at AWS with --aws"
            ))
        );
        let err = Target::local(Cloud::Ministack)
            .check_answers("http://127.0.0.1:1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("`cargo xtask cloud up --cloud ministack`"),
            "{err}"
        );
    }
}
