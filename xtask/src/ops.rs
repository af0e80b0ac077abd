//! `cargo xtask ops | seed | place-order`: the `orderflow` CLI, run through
//! its library with the same clap parser, after starting the local cloud it
//! points at (which the CLI itself never does).

use anyhow::{Context, Result};
use orderflow::cli::{self, Cli};

use crate::project_root;
use crate::target;

/// Runs `orderflow <args>`: `cargo xtask ops dlq list` is `orderflow dlq
/// list`, `cargo xtask seed` is `orderflow seed`. clap answers `--help`
/// and refuses bad flags itself, exiting as the binary would.
pub fn forward<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let cli = Cli::parse_checked(std::iter::once("orderflow").chain(args));
    target::ensure_up(&cli.target)?;
    // The sample and stock files are named from the repository's root, as
    // they always were for these commands, wherever cargo was run from.
    std::env::set_current_dir(project_root())
        .context("could not change to the repository's root")?;
    cli::run(cli)
}
