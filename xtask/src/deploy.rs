//! `cargo xtask deploy [--local]`: `sam build`, then `sam deploy`, of
//! `infra/template.yaml`. The local cloud gets exactly the build and the
//! deploy that AWS gets; only the endpoint (samlocal for LocalStack, plain
//! `sam deploy` with `AWS_ENDPOINT_URL` for ministack) and the architecture
//! (the host's) differ, and local builds trade the release profile's
//! whole-program optimization for build time ([`Build::Local`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cloud::{self, Cloud, LocalCloud};
use crate::target;
use crate::venv::{self, Venv};
use crate::{project_root, run_cmd};
use orderflow::Target;

/// The template, relative to the project root.
pub const TEMPLATE: &str = "infra/template.yaml";
/// Where `sam build` puts the built template and bootstraps.
const BUILD_DIR: &str = ".aws-sam/build";
/// The SAM configuration that the first, guided AWS deploy writes.
const SAM_CONFIG: &str = "infra/samconfig.toml";

const USAGE: &str = "\
usage: cargo xtask deploy [--local [--built] [--cloud localstack|ministack] | --aws]
                          [--stack-name NAME] [--profile P] [--region R] [--guided]

  --local        deploy to a local cloud (started if needed): LocalStack through
                 samlocal, or with --cloud ministack, the IAM-enforcing one
  --built        with --local: deploy what the last local build built, without
                 building (both clouds then run exactly the same artifacts)
  --aws          deploy to AWS (the default), arm64; guided the first time
                 (that writes infra/samconfig.toml), or with --guided
";

/// Runs `cargo xtask deploy`.
pub fn main(args: &[String]) -> Result<()> {
    let local = args.iter().any(|a| a == "--local");
    let guided = args.iter().any(|a| a == "--guided");
    let built = args.iter().any(|a| a == "--built");
    let args: Vec<String> = args
        .iter()
        .filter(|a| !matches!(a.as_str(), "--local" | "--guided" | "--built"))
        .cloned()
        .collect();
    let (mut target, rest) = target::parse(&args)?;
    if let Some(unknown) = rest.first() {
        anyhow::bail!("unknown argument `{unknown}`\n\n{USAGE}");
    }
    if target.endpoint_url.is_some() {
        anyhow::bail!(
            "deploy starts the cloud it deploys to: --cloud, not --endpoint-url\n\n{USAGE}"
        );
    }
    if !local && args.iter().any(|a| a == "--cloud") {
        anyhow::bail!("--cloud picks a local cloud: add --local\n\n{USAGE}");
    }
    if built && !local {
        anyhow::bail!(
            "--built deploys the last local build to a local cloud: add --local\n\n{USAGE}"
        );
    }
    target.aws = !local;
    if built {
        deploy_built_local(&target.stack, target.cloud())
    } else if local {
        deploy_local(&target.stack, target.cloud())
    } else {
        deploy_aws(&target, guided)
    }
}

/// The architecture the local cloud runs natively.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "x86_64",
    }
}

/// The tree a deploy builds: the project's own, or a copy of it (where
/// `cargo xtask new-service --prove` generates a service).
#[derive(Debug, Clone, Copy)]
pub struct Tree<'a> {
    /// Its root.
    pub root: &'a Path,
    /// The cargo target directory its builds use, if not `root/target`.
    /// A copy builds apart: its binaries have the project's names, and
    /// cargo would not put the project's own back in place.
    pub target_dir: Option<&'a Path>,
}

impl Tree<'_> {
    /// The project's own tree.
    fn project(root: &Path) -> Tree<'_> {
        Tree {
            root,
            target_dir: None,
        }
    }
}

/// Builds and deploys the stack to a local cloud (started if needed).
/// Idempotent: with nothing changed, the deploy is a no-op.
pub fn deploy_local(stack: &str, cloud: Cloud) -> Result<()> {
    deploy_local_from(Tree::project(&project_root()), stack, cloud)
}

/// [`deploy_local`] of `tree`.
pub fn deploy_local_from(tree: Tree<'_>, stack: &str, cloud: Cloud) -> Result<()> {
    let tools = venv::ensure("tools", "infra/tools.lock")?;
    let architecture = host_architecture();
    build(tree, &tools, architecture, Build::Local)?;
    deploy_built(tree, &tools, stack, cloud, &[])
}

/// Deploys what the last `sam build` built to a local cloud: both clouds get
/// the same artifacts.
pub fn deploy_built_local(stack: &str, cloud: Cloud) -> Result<()> {
    deploy_built_local_with(stack, cloud, &[])
}

/// [`deploy_built_local`] with template parameters set (`Name=value`
/// each), building first if nothing is built yet.
pub fn deploy_built_local_with(stack: &str, cloud: Cloud, parameters: &[String]) -> Result<()> {
    let tools = venv::ensure("tools", "infra/tools.lock")?;
    let root = project_root();
    let tree = Tree::project(&root);
    if !root.join(BUILD_DIR).join("template.yaml").is_file() {
        build(tree, &tools, host_architecture(), Build::Local)?;
    }
    deploy_built(tree, &tools, stack, cloud, parameters)
}

fn deploy_built(
    tree: Tree<'_>,
    tools: &Venv,
    stack: &str,
    cloud: Cloud,
    parameters: &[String],
) -> Result<()> {
    let architecture = host_architecture();
    // After the build, which takes minutes: a cloud checked before it may
    // have stopped since.
    let endpoint = cloud.ensure_up()?;
    // samlocal points sam at LocalStack; for ministack, sam itself honours
    // AWS_ENDPOINT_URL (from aws_env), as it would for any endpoint.
    let program = match cloud {
        Cloud::LocalStack => "samlocal",
        Cloud::Ministack => "sam",
    };
    let mut deploy = sam(tree, tools, program);
    deploy
        .args(["deploy", "--region", "us-east-1"])
        .args(deploy_args(tree.root, stack, architecture))
        .args(parameters)
        .envs(cloud::aws_env(&endpoint));
    run_cmd(&mut deploy).with_context(|| format!("{program} deploy failed"))?;
    eprintln!(
        "xtask: stack `{stack}` deployed to the local cloud {} ({endpoint})",
        cloud.key()
    );
    Ok(())
}

fn deploy_aws(target: &Target, guided: bool) -> Result<()> {
    let tools = venv::ensure("tools", "infra/tools.lock")?;
    let root = project_root();
    let tree = Tree::project(&root);
    build(tree, &tools, "arm64", Build::Aws)?;
    let config = root.join(SAM_CONFIG);
    let mut deploy = sam(tree, &tools, "sam");
    deploy
        .arg("deploy")
        .args(deploy_args(&root, &target.stack, "arm64"))
        .arg("--config-file")
        .arg(&config);
    if guided || !config.exists() {
        eprintln!("xtask: first deploy: sam asks for the settings and saves them to {SAM_CONFIG}");
        deploy.arg("--guided");
    }
    if let Some(profile) = &target.profile {
        deploy.args(["--profile", profile]);
    }
    if let Some(region) = &target.region {
        deploy.args(["--region", region]);
    }
    run_cmd(&mut deploy).context("sam deploy failed")
}

/// What a build is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// AWS: the release profile as `Cargo.toml` sets it (fat LTO, one
    /// codegen unit), for the smallest, fastest bootstrap.
    Aws,
    /// A local cloud: the release profile unoptimized (`-C opt-level=0`),
    /// without LTO and with 16 codegen units, set through cargo's
    /// environment so that `sam build` runs the same command. The
    /// functions are a small part of a local order's time (the local cloud
    /// spends about 245 ms of CPU on each order); the build is most of a
    /// first run's.
    Local,
}

impl Build {
    fn cargo_env(self) -> Vec<(&'static str, String)> {
        match self {
            Build::Aws => Vec::new(),
            Build::Local => vec![
                ("CARGO_PROFILE_RELEASE_LTO", "off".into()),
                ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16".into()),
                // Cargo has no environment variable for the profile's
                // per-package opt-levels (`Cargo.toml` sets them for size
                // and speed), but rustc takes the last `-C opt-level` it is
                // given, and RUSTFLAGS come after cargo's own flags.
                (
                    "RUSTFLAGS",
                    local_rustflags(std::env::var("RUSTFLAGS").ok()),
                ),
            ],
        }
    }
}

/// The caller's RUSTFLAGS, if any, with `-C opt-level=0` last.
fn local_rustflags(caller: Option<String>) -> String {
    match caller.filter(|flags| !flags.trim().is_empty()) {
        Some(flags) => format!("{flags} -C opt-level=0"),
        None => "-C opt-level=0".into(),
    }
}

/// `sam build`: one `cargo lambda build --release` per function. Each is
/// first built here, with the very command `sam build` runs: sam shows
/// nothing of a build until it ends, which on a fresh clone takes minutes,
/// while cargo shows what it compiles and how far it has got. `sam build`
/// then finds every function built.
fn build(tree: Tree<'_>, tools: &Venv, architecture: &str, kind: Build) -> Result<()> {
    for function in crate::services::names(tree.root)? {
        eprintln!("xtask: cargo lambda build --release --bin {function} ({architecture})");
        // `cargo` from PATH, as sam runs it.
        let mut cargo = with_tools(tree, tools, Command::new("cargo"));
        cargo.args(["lambda", "build", "--release"]);
        if architecture == "arm64" {
            cargo.arg("--arm64");
        }
        cargo.args(["--bin", &function]).envs(kind.cargo_env());
        run_cmd(&mut cargo).with_context(|| format!("building {function} failed"))?;
    }
    let mut build = sam(tree, tools, "sam");
    build
        .args(["build", "--beta-features", "--template-file", TEMPLATE])
        .args(["--build-dir", BUILD_DIR])
        .args([
            "--parameter-overrides",
            &format!("Architecture={architecture}"),
        ])
        .envs(kind.cargo_env());
    run_cmd(&mut build).context("sam build failed")
}

fn deploy_args(root: &Path, stack: &str, architecture: &str) -> Vec<String> {
    let template: PathBuf = root.join(BUILD_DIR).join("template.yaml");
    vec![
        "--template-file".into(),
        template.display().to_string(),
        "--stack-name".into(),
        stack.into(),
        "--resolve-s3".into(),
        "--capabilities".into(),
        "CAPABILITY_IAM".into(),
        "--no-confirm-changeset".into(),
        "--no-fail-on-empty-changeset".into(),
        "--parameter-overrides".into(),
        format!("Architecture={architecture}"),
    ]
}

/// A SAM CLI command from the tools venv, run from the tree's root, with
/// the venv first on PATH (cargo-lambda and zig live there too).
fn sam(tree: Tree<'_>, tools: &Venv, program: &str) -> Command {
    with_tools(tree, tools, Command::new(tools.bin(program)))
}

/// `cmd`, run from the tree's root with the tools venv first on PATH, and
/// the tree's target directory, if it has its own.
fn with_tools(tree: Tree<'_>, tools: &Venv, mut cmd: Command) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tools.dir.join("bin")];
    paths.extend(std::env::split_paths(&path));
    cmd.current_dir(tree.root)
        .env("PATH", std::env::join_paths(paths).unwrap_or(path))
        .env("SAM_CLI_TELEMETRY", "0");
    if let Some(dir) = tree.target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::local_rustflags;

    #[test]
    fn local_builds_keep_the_callers_rustflags_and_put_their_opt_level_last() {
        assert_eq!(local_rustflags(None), "-C opt-level=0");
        assert_eq!(local_rustflags(Some("  ".into())), "-C opt-level=0");
        assert_eq!(
            local_rustflags(Some("-C target-cpu=native".into())),
            "-C target-cpu=native -C opt-level=0"
        );
    }
}
