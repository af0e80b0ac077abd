//! The command line: the clap definition of `orderflow` and [`run`], which
//! the binary and `cargo xtask ops | seed | place-order` both call, so that
//! one parser serves both.

use std::ffi::OsString;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::runtime::Runtime;

use crate::cmd::dlq::Dlq;
use crate::cmd::place_order::PlaceOrder;
use crate::cmd::replay::Replay;
use crate::cmd::seed::Seed;
use crate::cmd::trace::Trace;
use crate::target::Target;

/// See, understand and recover a deployed orderflow stack, on a local cloud
/// (the default) or on AWS (--aws).
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "orderflow", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Where the stack is.
    #[command(flatten)]
    pub target: Target,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const AFTER_HELP: &str = "\
A local cloud must be up (`cargo xtask cloud up`, or `cargo xtask demo`, which \
also deploys the stack); this command does not start one. Files are read from \
the current directory: run it from the repository's root for the defaults.";

impl Cli {
    /// Parses `args` (the program's name first) and checks the rules
    /// between the target flags ([`Target::check`]); errors are clap's.
    pub fn try_parse_checked<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_with(Self::command(), args)
    }

    /// [`Cli::try_parse_checked`] with `command`, this CLI's definition
    /// renamed or with other help (what `cargo xtask ops` shows).
    pub fn try_parse_with<I, T>(mut command: clap::Command, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Self::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        cli.target
            .check()
            .map_err(|(kind, message)| command.error(kind, message))?;
        Ok(cli)
    }

    /// [`Cli::try_parse_checked`], or clap's message and exit: help and
    /// version on stdout with success, errors on stderr with status 2.
    pub fn parse_checked<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_checked(args).unwrap_or_else(|e| e.exit())
    }
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// The dead-letter queues: list them, show a queue's messages with their
    /// reasons, move messages back to their source queue.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Replay archived events onto the bus.
    Replay(Replay),
    /// One order's events from the archive as a causation tree, and its dead
    /// letters.
    Trace(Trace),
    /// Set the stock of every sku in a file.
    Seed(Seed),
    /// Place one order (fresh ids unless --as-is) and follow it until it
    /// settles.
    PlaceOrder(PlaceOrder),
}

/// The runtime the commands run on: two workers, enough for the audit
/// queue's pollers beside the command itself.
pub fn runtime() -> Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Connects to the target's stack and runs the command.
pub fn run(cli: Cli) -> Result<()> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let flow = cli.target.connect().await?;
        match &cli.command {
            Command::Dlq(dlq) => dlq.run(&flow).await,
            Command::Replay(replay) => replay.run(&flow).await,
            Command::Trace(trace) => trace.run(&flow).await,
            Command::Seed(seed) => seed.run(&flow).await,
            Command::PlaceOrder(place) => place.run(&flow).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::{Cli, Command};
    use crate::cmd::dlq::{Dlq, Redrive};
    use crate::target::Cloud;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_checked(line.split_whitespace())
    }

    fn refused(line: &str) -> ErrorKind {
        match parse(line) {
            Ok(cli) => panic!("`{line}` was accepted: {cli:?}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn aws_flags_need_aws_and_the_cloud_is_local_only() {
        assert_eq!(
            refused("orderflow dlq list --profile p"),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            refused("orderflow --region eu-west-1 dlq list"),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            refused("orderflow dlq list --aws --cloud ministack"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused("orderflow seed --aws --endpoint-url http://localhost:4566"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused("orderflow --aws seed --endpoint-url http://localhost:4566"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused("orderflow --cloud ministack seed --endpoint-url http://localhost:4566"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused("orderflow seed --cloud kubernetes"),
            ErrorKind::InvalidValue
        );
        let Ok(cli) = parse("orderflow seed --endpoint-url http://localhost:4599") else {
            panic!("refused");
        };
        assert_eq!(
            cli.target.endpoint().as_deref(),
            Some("http://localhost:4599")
        );
    }

    #[test]
    fn target_flags_go_before_or_after_the_command() {
        let Ok(cli) =
            parse("orderflow --aws dlq list --profile p --region eu-west-1 --stack-name s")
        else {
            panic!("refused");
        };
        assert!(cli.target.aws);
        assert_eq!(cli.target.profile.as_deref(), Some("p"));
        assert_eq!(cli.target.region.as_deref(), Some("eu-west-1"));
        assert_eq!(cli.target.stack, "s");
        assert_eq!(cli.command, Command::Dlq(Dlq::List));

        let Ok(cli) = parse("orderflow trace ord-1 --cloud ministack") else {
            panic!("refused");
        };
        assert!(!cli.target.aws);
        assert_eq!(cli.target.cloud(), Cloud::Ministack);
        assert_eq!(cli.target.stack, "orderflow");
    }

    #[test]
    fn redrive_needs_exactly_one_of_all_and_id() {
        assert_eq!(
            refused("orderflow dlq redrive payment"),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            refused("orderflow dlq redrive payment --all --id m-1"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            refused("orderflow dlq redrive billing --all"),
            ErrorKind::InvalidValue
        );
        let Ok(cli) = parse("orderflow dlq redrive shipping --id m-1 --id m-2 --dry-run") else {
            panic!("refused");
        };
        assert_eq!(
            cli.command,
            Command::Dlq(Dlq::Redrive(Redrive {
                queue: "shipping".into(),
                all: false,
                id: vec!["m-1".into(), "m-2".into()],
                dry_run: true,
            }))
        );
    }

    #[test]
    fn replay_times_are_rfc_3339_or_now() {
        let Ok(cli) = parse(
            "orderflow replay --from 2026-11-24T09:30:00Z --to 2026-11-24T11:30:00+01:00 \
             --detail-type OrderPlaced",
        ) else {
            panic!("refused");
        };
        let Command::Replay(replay) = cli.command else {
            panic!("not a replay: {:?}", cli.command);
        };
        assert_eq!(replay.from.to_rfc3339(), "2026-11-24T09:30:00+00:00");
        assert_eq!(replay.to.to_rfc3339(), "2026-11-24T10:30:00+00:00");
        assert_eq!(replay.detail_type.as_deref(), Some("OrderPlaced"));

        assert!(parse("orderflow replay --from 2026-11-24T09:30:00Z --to now").is_ok());
        assert_eq!(
            refused("orderflow replay --from yesterday --to now"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            refused("orderflow replay --from now"),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn trace_takes_a_valid_order_id_and_an_optional_window() {
        let Ok(cli) = parse("orderflow trace ord-1 --from 2026-11-24T09:30:00Z") else {
            panic!("refused");
        };
        let Command::Trace(trace) = cli.command else {
            panic!("not a trace: {:?}", cli.command);
        };
        assert_eq!(trace.order_id.as_str(), "ord-1");
        assert!(trace.from.is_some() && trace.to.is_none());
        assert_eq!(refused("orderflow trace ord/1"), ErrorKind::ValueValidation);
    }

    #[test]
    fn seed_and_place_order_default_to_the_repositorys_samples() {
        let Ok(cli) = parse("orderflow place-order --as-is") else {
            panic!("refused");
        };
        let Command::PlaceOrder(place) = cli.command else {
            panic!("not place-order: {:?}", cli.command);
        };
        assert!(place.as_is);
        assert_eq!(
            place.file.to_str(),
            Some("events/payment/order-placed.eventbridge.json")
        );
        let Ok(cli) = parse("orderflow seed") else {
            panic!("refused");
        };
        let Command::Seed(seed) = cli.command else {
            panic!("not seed: {:?}", cli.command);
        };
        assert_eq!(seed.file.to_str(), Some("events/stock.json"));
    }
}
