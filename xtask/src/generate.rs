//! `cargo xtask generate`: every file written from the contracts and
//! `infra/services.yaml`, rewritten at once: the template's service
//! blocks, the README's diagram, the AsyncAPI document and the event
//! schemas.
//!
//! `cargo xtask new-service` ends with it. A service that declares new
//! kinds runs it as a fresh `cargo xtask generate`, since only a build of
//! the contracts with those kinds can write their schemas and documents.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use crate::{asyncapi, graph, schemas, services};

/// How `cargo xtask generate` begins each line that names a file it wrote.
const WROTE: &str = "wrote ";

/// Rewrites every generated file under `root`; returns their paths,
/// relative to it.
pub fn write(root: &Path) -> Result<Vec<PathBuf>> {
    services::write(root)?;
    graph::write(root)?;
    asyncapi::write(root)?;
    let mut written: Vec<PathBuf> = [graph::TEMPLATE, graph::README, asyncapi::DOCUMENT]
        .map(PathBuf::from)
        .into();
    written.extend(
        schemas::write(root)?
            .into_iter()
            .map(|name| PathBuf::from("events/schemas").join(name)),
    );
    Ok(written)
}

/// `cargo xtask generate`.
pub fn main() -> Result<()> {
    for path in write(&crate::project_root())? {
        println!("{WROTE}{}", path.display());
    }
    Ok(())
}

/// Runs `cargo xtask generate` in the repository at `root` as a new build
/// (in `target_dir`, if given): what writes the files of kinds that this
/// build of xtask does not know. Returns what it wrote, read from its
/// `wrote` lines; its stderr passes through.
pub fn in_new_build(root: &Path, target_dir: Option<&Path>) -> Result<Vec<PathBuf>> {
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.current_dir(root)
        .args(["run", "--quiet", "-p", "xtask", "--", "generate"])
        .stderr(std::process::Stdio::inherit());
    if let Some(dir) = target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let out = cmd
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "cargo xtask generate, built with the new kinds, failed with {}",
        out.status
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix(WROTE))
        .map(PathBuf::from)
        .collect())
}
