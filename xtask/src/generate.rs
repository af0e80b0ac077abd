//! `cargo xtask generate`: every file written from the contracts and
//! `infra/services.yaml`, rewritten at once: the template's service
//! blocks, the README's diagram, the AsyncAPI document and the event
//! schemas.
//!
//! `cargo xtask new-service` ends with it. A service that declares new
//! kinds runs it as a fresh `cargo xtask generate`, since only a build of
//! the contracts with those kinds can write their schemas and documents.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{asyncapi, graph, schemas, services};

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
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs `cargo xtask generate` in the repository at `root` as a new build
/// (in `target_dir`, if given): what writes the files of kinds that this
/// build of xtask does not know.
pub fn in_new_build(root: &Path, target_dir: Option<&Path>) -> Result<()> {
    let mut cmd = std::process::Command::new(env!("CARGO"));
    // Its list of what it wrote is the caller's to print.
    cmd.current_dir(root)
        .args(["run", "--quiet", "-p", "xtask", "--", "generate"])
        .stdout(std::process::Stdio::null());
    if let Some(dir) = target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    crate::run_cmd(&mut cmd).context("cargo xtask generate, built with the new kinds")
}
