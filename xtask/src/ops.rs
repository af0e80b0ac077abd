//! `cargo xtask ops | seed | place-order`: the `orderflow` CLI, run through
//! its library with the same clap parser, after starting the local cloud it
//! points at (which the CLI itself never does).

use anyhow::{Context, Result};
use clap::CommandFactory;
use orderflow::cli::{self, Cli};

use crate::project_root;
use crate::target;

const AFTER_HELP: &str = "\
The `orderflow` command line (`cargo install --path cli`), with the local cloud \
started first when it is not up. Files are named from the repository's root.";

/// Runs `orderflow <args>`: `cargo xtask ops dlq list` is `orderflow dlq
/// list`, `cargo xtask seed` is `orderflow seed`. clap answers `--help`
/// and refuses bad flags itself, exiting as the binary would.
pub fn forward<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let command = Cli::command()
        .bin_name("cargo xtask ops")
        .after_help(AFTER_HELP);
    let cli = Cli::try_parse_with(command, std::iter::once("ops").chain(args))
        .unwrap_or_else(|e| e.exit());
    target::ensure_up(&cli.target)?;
    // The sample and stock files are named from the repository's root, as
    // they always were for these commands, wherever cargo was run from.
    std::env::set_current_dir(project_root())
        .context("could not change to the repository's root")?;
    cli::run(cli)
}
