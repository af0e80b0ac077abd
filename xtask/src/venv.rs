//! The project's Python virtualenvs, under `.venv/<name>` (git-ignored).
//!
//! Each venv is installed from a lock file of exact versions with
//! `--no-deps`, so pip never runs its resolver (it drifts, and can spin for
//! many minutes). A stamp holding the lock's contents makes the install rerun
//! only when the lock changes.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{project_root, run_cmd};

/// A project virtualenv that is installed and up to date with its lock.
pub struct Venv {
    /// The venv's folder.
    pub dir: PathBuf,
}

impl Venv {
    /// A program installed in the venv's `bin/`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// `pip install`, quietly, in this venv; add what to install.
    pub fn pip_install(&self) -> Command {
        let mut cmd = Command::new(self.bin("python"));
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]);
        cmd
    }
}

/// Makes sure `.venv/<name>` exists and holds exactly what `lock` (a path
/// relative to the project root) names.
pub fn ensure(name: &str, lock: &str) -> Result<Venv> {
    let root = project_root();
    let lock_path = root.join(lock);
    let wanted = fs::read_to_string(&lock_path)
        .with_context(|| format!("reading {}", lock_path.display()))?;
    let dir = root.join(".venv").join(name);
    let stamp = dir.join(".orderflow-lock");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(Venv { dir });
    }
    let python = find_python()?;
    eprintln!("xtask: installing {lock} into .venv/{name} (once per lock change)");
    if !dir.join("bin/python").exists() {
        run_cmd(Command::new(&python).args(["-m", "venv"]).arg(&dir)).context(
            "creating the venv: is python3-venv installed? (apt-get install python3-venv)",
        )?;
    }
    let venv = Venv { dir };
    run_cmd(venv.pip_install().args(["--no-deps", "-r"]).arg(&lock_path))
        .with_context(|| format!("installing {lock}; delete .venv/{name} to start over"))?;
    fs::write(&stamp, &wanted)?;
    Ok(venv)
}

fn find_python() -> Result<String> {
    for candidate in ["python3.11", "python3"] {
        let ok = Command::new(candidate)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(candidate.to_string());
        }
    }
    bail!("no python3 on PATH: install Python 3.11 (Debian: apt-get install python3 python3-venv)")
}
