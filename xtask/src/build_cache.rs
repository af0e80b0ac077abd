//! The project's built dependencies, lent to a copy of the repository.
//!
//! `cargo xtask new-service`'s checks build a copy of the repository in a
//! target directory of its own ([`crate::new_service`] says why), which
//! used to mean building every dependency again, the AWS SDK included,
//! for minutes. The dependencies are the same crates with the same
//! features and profiles: cargo names each built unit by a hash of all of
//! that, so a unit the project has already built is the unit the copy
//! would build. [`seed`] copies those units (but none of the workspace's
//! own crates) into the copy's target directory, with their modification
//! times, as cargo's freshness checks compare them; cargo then builds only
//! what the copy changes.

use std::collections::BTreeSet;
use std::fs::{self, FileTimes};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

/// The directories of a profile's output that hold built units.
const UNIT_DIRS: [&str; 3] = ["deps", "build", ".fingerprint"];

/// What [`seed`] copied.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Built units (files or directories) copied.
    pub units: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Copies into `to` every dependency unit built under `from` (the
/// project's target directory) that `to` lacks, profile by profile
/// (`debug`, `<triple>/release`, …), leaving out the units of the
/// workspace at `root` and `to` itself.
pub fn seed(root: &Path, from: &Path, to: &Path) -> Result<Seeded> {
    let members = workspace_units(root)?;
    let mut seeded = Seeded::default();
    for profile in profiles(from, to)? {
        let relative = profile.strip_prefix(from).unwrap_or(&profile);
        for dir in UNIT_DIRS {
            let source = profile.join(dir);
            if !source.is_dir() {
                continue;
            }
            let dest = to.join(relative).join(dir);
            fs::create_dir_all(&dest)
                .with_context(|| format!("could not create {}", dest.display()))?;
            for entry in fs::read_dir(&source)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(unit) = unit_name(&name.to_string_lossy()) else {
                    continue;
                };
                if members.contains(&unit) || dest.join(&name).exists() {
                    continue;
                }
                seeded.bytes += copy_unit(&entry.path(), &dest.join(&name))?;
                seeded.units += 1;
            }
        }
    }
    Ok(seeded)
}

/// The profile directories under `from`: those that hold a
/// `.fingerprint`, one or two levels down, `to` excepted.
fn profiles(from: &Path, to: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut level = vec![from.to_path_buf()];
    for _ in 0..2 {
        let mut next = Vec::new();
        for dir in level {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry?.path();
                if !path.is_dir() || path.starts_with(to) {
                    continue;
                }
                if path.join(".fingerprint").is_dir() {
                    found.push(path);
                } else {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    found.sort();
    Ok(found)
}

/// The crate and target names of the workspace's own packages, as cargo
/// names their units (`-` as `_`).
fn workspace_units(root: &Path) -> Result<BTreeSet<String>> {
    let out = crate::cmd_stdout(Command::new(env!("CARGO")).current_dir(root).args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
    ]))?;
    let metadata: serde_json::Value = serde_json::from_slice(&out)?;
    let mut names = BTreeSet::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        names.extend(package["name"].as_str().map(normalized));
        for target in package["targets"].as_array().into_iter().flatten() {
            names.extend(target["name"].as_str().map(normalized));
        }
    }
    ensure!(!names.is_empty(), "cargo metadata listed no packages");
    Ok(names)
}

fn normalized(name: &str) -> String {
    name.replace('-', "_")
}

/// The crate a unit's file or directory belongs to: `serde_json` for
/// `libserde_json-0123456789abcdef.rlib`, `serde-json-…` (a fingerprint
/// directory), or `serde_json-….d`; `None` for a name without cargo's
/// hash, which is no unit.
fn unit_name(file: &str) -> Option<String> {
    let (base, extension) = file.split_once('.').unwrap_or((file, ""));
    let (name, hash) = base.rsplit_once('-')?;
    if hash.len() != 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let name = match extension {
        "rlib" | "rmeta" | "so" | "a" => name.strip_prefix("lib").unwrap_or(name),
        _ => name,
    };
    Some(normalized(name))
}

/// Copies a file or directory tree with its files' modification times,
/// into a temporary name first, so that an interrupted copy leaves
/// nothing cargo could take for a built unit. Returns the bytes copied.
fn copy_unit(from: &Path, to: &Path) -> Result<u64> {
    let mut partial = to.as_os_str().to_owned();
    partial.push(".seeding");
    let partial = PathBuf::from(partial);
    if partial.exists() {
        remove(&partial)?;
    }
    let bytes =
        copy_tree(from, &partial).with_context(|| format!("could not copy {}", from.display()))?;
    fs::rename(&partial, to)?;
    Ok(bytes)
}

fn copy_tree(from: &Path, to: &Path) -> Result<u64> {
    if !from.is_dir() {
        let bytes = fs::copy(from, to)?;
        let modified = fs::metadata(from)?.modified()?;
        fs::File::options()
            .write(true)
            .open(to)?
            .set_times(FileTimes::new().set_modified(modified))?;
        return Ok(bytes);
    }
    fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        bytes += copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(bytes)
}

fn remove(path: &Path) -> Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path)?;
    } else {
        fs::remove_file(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_named_by_their_crate() {
        for (file, crate_name) in [
            ("libserde_json-0123456789abcdef.rlib", "serde_json"),
            ("libserde_json-0123456789abcdef.rmeta", "serde_json"),
            ("serde_json-0123456789abcdef.d", "serde_json"),
            ("serde-json-0123456789abcdef", "serde_json"),
            ("liblibc-0123456789abcdef.rlib", "libc"),
            ("libc-0123456789abcdef", "libc"),
            ("orderflow-runtime-0123456789abcdef", "orderflow_runtime"),
            ("handler-0123456789abcdef", "handler"),
        ] {
            assert_eq!(unit_name(file).as_deref(), Some(crate_name), "{file}");
        }
        for file in [
            "payment",
            "payment.d",
            "libpayment.rlib",
            "x-123",
            "x-0123456789abcdeg",
        ] {
            assert_eq!(unit_name(file), None, "{file}");
        }
    }

    #[test]
    fn dependencies_are_copied_with_their_times_and_members_are_not() {
        let dir = std::env::temp_dir().join(format!("orderflow-seed-{}", std::process::id()));
        let from = dir.join("target");
        let to = from.join("copy");
        let debug = from.join("debug");
        for sub in UNIT_DIRS {
            fs::create_dir_all(debug.join(sub)).unwrap();
        }
        let dep = debug.join("deps/libserde-0123456789abcdef.rlib");
        fs::write(&dep, b"built").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(&dep)
            .unwrap()
            .set_times(FileTimes::new().set_modified(old))
            .unwrap();
        fs::create_dir_all(debug.join(".fingerprint/serde-0123456789abcdef")).unwrap();
        fs::write(
            debug.join(".fingerprint/serde-0123456789abcdef/lib-serde"),
            b"f",
        )
        .unwrap();
        fs::write(debug.join("deps/libxtask-0123456789abcdef.rlib"), b"ours").unwrap();
        fs::write(debug.join("deps/libpayment-0123456789abcdef.rlib"), b"ours").unwrap();

        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let seeded = seed(root, &from, &to).unwrap();
        assert_eq!(seeded, Seeded { units: 2, bytes: 6 });
        let copied = to.join("debug/deps/libserde-0123456789abcdef.rlib");
        assert_eq!(fs::read(&copied).unwrap(), b"built");
        assert_eq!(fs::metadata(&copied).unwrap().modified().unwrap(), old);
        assert!(
            to.join("debug/.fingerprint/serde-0123456789abcdef/lib-serde")
                .is_file()
        );
        assert!(
            !to.join("debug/deps/libxtask-0123456789abcdef.rlib")
                .exists()
        );
        assert!(
            !to.join("debug/deps/libpayment-0123456789abcdef.rlib")
                .exists()
        );
        // Nothing is copied twice, and the copy is not a profile of its own.
        assert_eq!(seed(root, &from, &to).unwrap(), Seeded::default());
        fs::remove_dir_all(&dir).unwrap();
    }
}
