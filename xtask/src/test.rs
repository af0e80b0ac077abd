//! `cargo xtask test`: every check and test, in the order that fails
//! fastest. This is what CI runs.

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use orderflow::{DEFAULT_STACK, Target};

use crate::cloud::{Cloud, LocalCloud};
use crate::target;
use crate::{deploy, project_root, run_cmd, venv};

/// Runs everything.
pub fn main(args: &[String]) -> Result<()> {
    let root = project_root();
    let cargo = || {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(&root);
        cmd
    };
    let mut steps = Steps::new();
    steps.start("format");
    run_cmd(cargo().args(["fmt", "--all", "--check"]))?;
    steps.start("clippy");
    run_cmd(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    steps.start("what the functions link");
    check_function_deps(&root)?;
    steps.start("packaging: the library crates as crates.io would take them");
    check_packaging(&root)?;
    steps.start("unit, handler, adapter and property tests");
    run_cmd(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    steps.start("new-service: a generated service builds, is clean and passes its tests");
    crate::new_service::check(&root)?;
    if args.iter().any(|a| a == "--quick") {
        steps.summary();
        return Ok(());
    }
    steps.start("fuzz: building the targets");
    crate::fuzz::build_for_short_run()?;
    // Each target then runs for its seconds on one core, one after another
    // (about 85 s); the next four steps mostly wait on one process at a
    // time (the template checkers, a function, a local cloud). Beside each
    // other they share the two cores, where one after the other each left
    // a core idle.
    let fuzz = Alongside::start(
        "fuzz: a short run of every target over its corpus",
        &root.join("target/xtask-fuzz.log"),
        vec![xtask(&root, &["fuzz", "--dev"])?],
    )?;
    steps.start("template: cfn-lint and checkov");
    check_template()?;
    steps.start("local invoke: every sample through cargo lambda watch");
    local_invoke(&root)?;
    steps.start("local cloud: LocalStack plugin tests (a real function included)");
    Cloud::LocalStack.test(Some(&root.join("target/debug/payment")))?;
    steps.start("local cloud: ministack fixes and their tests");
    Cloud::Ministack.test(None)?;
    steps.start("fuzz: waiting for its short run (running alongside since the template check)");
    fuzz.finish()?;
    let localstack = Target::local(Cloud::LocalStack);
    let started = Instant::now();
    steps.start("deploy the stack to localstack (sam build + sam deploy)");
    deploy::deploy_local(DEFAULT_STACK, Cloud::LocalStack)?;
    steps.start("whole-flow and operations tests on localstack");
    suites_on(&localstack)?;
    // ministack's deploy and suites take about 130 s and little CPU of their
    // own (the cloud is one process, as is LocalStack): they run beside the
    // next two steps, which wait on LocalStack, not one after them.
    let ministack = Alongside::start(
        "deploy the same build to ministack, then its whole-flow, operations and IAM tests",
        &root.join("target/xtask-ministack.log"),
        vec![
            xtask(
                &root,
                &["deploy", "--local", "--built", "--cloud", "ministack"],
            )?,
            xtask(&root, &["flow", "--cloud", "ministack"])?,
        ],
    )?;
    steps.start("chaos on localstack: the same build, crashing on purpose");
    crate::chaos::run(&crate::chaos::Options::default())?;
    steps.start("new-service on localstack: a generated service deployed, receiving events");
    crate::new_service::prove_on_local_cloud(&root)?;
    let localstack_took = started.elapsed();
    steps.start("ministack: waiting for its deploy and suites (running alongside since chaos)");
    let ministack_took = ministack.finish()?;
    steps.summary();
    eprintln!(
        "\n==> all tests passed (deploy and suites: localstack {:.0} s, ministack {:.0} s \
         beside it)",
        localstack_took.as_secs_f64(),
        ministack_took.as_secs_f64()
    );
    Ok(())
}

/// This xtask, run again with `args` from `root`.
fn xtask(root: &Path, args: &[&str]) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe().context("where is xtask?")?);
    cmd.current_dir(root).args(args);
    Ok(cmd)
}

/// Commands run one after another in the background, each in a process
/// group of its own, their output written to a log that
/// [`Alongside::finish`] prints whole. Dropped unfinished (a step beside it
/// failed), it stops the command running and starts no other.
struct Alongside {
    name: &'static str,
    log: PathBuf,
    turn: Arc<Mutex<Turn>>,
    thread: Option<JoinHandle<Result<Duration>>>,
}

/// Where an [`Alongside`]'s commands are.
enum Turn {
    /// Between two commands (or before the first).
    Between,
    /// A command runs, leading the process group of this id.
    Running(u32),
    /// Stopped: no command may start.
    Stopped,
}

impl Alongside {
    fn start(name: &'static str, log: &Path, commands: Vec<Command>) -> Result<Self> {
        let file = File::create(log).with_context(|| log.display().to_string())?;
        eprintln!(
            "\n==> {name}: started, beside the next steps (its log: {})",
            log.display()
        );
        let turn = Arc::new(Mutex::new(Turn::Between));
        let thread = {
            let turn = turn.clone();
            thread::spawn(move || run_in_turn(commands, &file, &turn))
        };
        Ok(Self {
            name,
            log: log.to_owned(),
            turn,
            thread: Some(thread),
        })
    }

    /// Waits for the commands, prints their log, and returns how long they
    /// took, or why they failed.
    fn finish(mut self) -> Result<Duration> {
        let thread = self.thread.take().context("finished twice")?;
        let result = thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the thread running them panicked")));
        eprintln!("\n==> {} (ran alongside), its output:", self.name);
        // Through `eprint!`, which a test captures, not a raw stderr handle.
        match std::fs::read(&self.log) {
            Ok(log) => eprint!("{}", String::from_utf8_lossy(&log)),
            Err(e) => eprintln!("could not read {}: {e}", self.log.display()),
        }
        result.with_context(|| format!("{} failed (log: {})", self.name, self.log.display()))
    }
}

impl Drop for Alongside {
    fn drop(&mut self) {
        if self.thread.is_none() {
            return;
        }
        let mut turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if let Turn::Running(leader) = *turn {
            terminate_group(leader);
        }
        *turn = Turn::Stopped;
    }
}

/// Runs `commands` in turn, their output to `log`, until one fails or
/// `turn` is stopped.
fn run_in_turn(commands: Vec<Command>, log: &File, turn: &Mutex<Turn>) -> Result<Duration> {
    let started = Instant::now();
    for mut cmd in commands {
        let line = format!("{cmd:?}");
        writeln!(&*log, "\n==> {line}")?;
        let mut child = {
            let mut turn = turn.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(*turn, Turn::Stopped) {
                bail!("stopped before {line}");
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log.try_clone()?)
                .process_group(0)
                .spawn()
                .with_context(|| format!("could not start {line}"))?;
            *turn = Turn::Running(child.id());
            child
        };
        let status = child.wait();
        let mut after = turn.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*after, Turn::Running(_)) {
            *after = Turn::Between;
        }
        drop(after);
        let status = status.with_context(|| format!("waiting for {line}"))?;
        if !status.success() {
            bail!("{line} failed with {status}");
        }
    }
    Ok(started.elapsed())
}

/// Sends SIGTERM to the process group that `leader` leads.
fn terminate_group(leader: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{leader}")])
        .status();
}

/// Crates no function may link, and why.
const NOT_IN_FUNCTIONS: [(&str, &str); 3] = [
    (
        "aws-lc-sys",
        "aws-lc is the SDK's default TLS crypto; the functions use rustls on ring \
         (orderflow_runtime::aws), which is smaller and starts faster",
    ),
    ("openssl-sys", "the functions link no system TLS library"),
    (
        "webpki-root-certs",
        "Mozilla's roots compiled in were 0.08 MB of every zip: the functions trust \
         Amazon's five (orderflow_runtime::aws::Trust), or the system's store behind an \
         https endpoint",
    ),
];

/// Fails when a function's build would link a crate of
/// [`NOT_IN_FUNCTIONS`]. `sam build` runs `cargo lambda build --bin NAME`
/// with no `-p`, so cargo resolves features over every member of the
/// workspace, the tests and xtask included; `cargo tree` with no `-p`
/// resolves them the same way. One SDK crate with its default features
/// anywhere in the workspace would bring aws-lc back into every bootstrap
/// without any test noticing.
pub fn check_function_deps(root: &Path) -> Result<()> {
    let tree = packages_in_tree(root, None)?;
    for (name, why) in NOT_IN_FUNCTIONS {
        if tree.iter().any(|package| package == name) {
            bail!(
                "the functions' build links {name}: {why} (see `cargo tree -i {name}`, \
                 with no -p, as sam builds; every SDK configuration starts from \
                 orderflow_runtime::aws::loader)"
            );
        }
    }
    eprintln!(
        "the functions' build links none of {:?}",
        NOT_IN_FUNCTIONS.map(|(name, _)| name)
    );
    for function in crate::services::names(root)? {
        let tree = packages_in_tree(root, Some(&function))?;
        for (name, why) in NOT_IN_A_FUNCTION {
            if tree.iter().any(|package| package == name) {
                bail!(
                    "{function} depends on {name}: {why} (see `cargo tree -p {function} -i {name}`)"
                );
            }
        }
    }
    eprintln!(
        "no function depends on any of {:?}",
        NOT_IN_A_FUNCTION.map(|(name, _)| name)
    );
    Ok(())
}

/// The names of the packages a build of `package` (of the whole workspace
/// if `None`) compiles for any target, dev-dependencies left out.
fn packages_in_tree(root: &Path, package: Option<&str>) -> Result<Vec<String>> {
    let mut tree = Command::new(env!("CARGO"));
    tree.current_dir(root)
        .args(["tree", "--quiet", "--prefix", "none", "--format", "{p}"])
        .args(["--edges", "normal,build", "--target", "all"]);
    if let Some(package) = package {
        tree.args(["-p", package]);
    }
    let out = tree.output().context("cargo tree")?;
    if !out.status.success() {
        bail!("cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split(' ').next())
        .map(str::to_owned)
        .collect())
}

/// Crates no function may depend on, though the workspace's tools and tests
/// do, and why.
const NOT_IN_A_FUNCTION: [(&str, &str); 2] = [
    (
        "aws-sdk-s3",
        "shipping's labels go through a PutObject of its own (shipping::s3); the S3 \
         client, its endpoint rules and its checksums were 0.85 MB of shipping's zip",
    ),
    (
        "crc-fast",
        "S3's flexible checksums link its lookup tables for some forty CRC variants, \
         about 0.6 MB of a zip, whatever the checksum used",
    ),
];

/// The crates meant for others to build on, in dependency order.
const LIBRARIES: [&str; 3] = [
    "orderflow-contracts",
    "orderflow-patterns",
    "orderflow-runtime",
];

/// Packages [`LIBRARIES`] as `cargo publish` would, without uploading or
/// building them: every dependency needs a version, and cargo warns about a
/// manifest without documentation, homepage or repository. Any warning
/// fails the step. The lockfile is left out because the packages' own
/// dependencies on each other are not on crates.io yet.
pub fn check_packaging(root: &Path) -> Result<()> {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(root).args([
        "package",
        "--no-verify",
        "--allow-dirty",
        "--exclude-lockfile",
    ]);
    for library in LIBRARIES {
        cargo.args(["-p", library]);
    }
    let out = cargo.output().context("cargo package")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("warning:") {
        bail!("cargo package {}:\n{stderr}", LIBRARIES.join(", "));
    }
    eprintln!("packaged {} for crates.io", LIBRARIES.join(", "));
    Ok(())
}

/// The AWS limits no local cloud checks ([`crate::limits`]), then
/// `cfn-lint` and `checkov` on the template: all must be clean (checkov
/// suppressions carry their reason in the template).
pub fn check_template() -> Result<()> {
    let root = project_root();
    let template = root.join(deploy::TEMPLATE);
    crate::limits::check(
        &std::fs::read_to_string(&template)
            .with_context(|| format!("could not read {}", template.display()))?,
    )?;
    let lint = venv::ensure("lint", "infra/lint.lock")?;
    run_cmd(
        Command::new(lint.bin("cfn-lint"))
            .current_dir(&root)
            .arg(deploy::TEMPLATE),
    )
    .context("cfn-lint found problems in the template")?;
    run_cmd(
        Command::new(lint.bin("checkov"))
            .current_dir(&root)
            // --skip-download: no fetching of guidelines (offline here).
            .args([
                "--quiet",
                "--compact",
                "--skip-download",
                "--framework",
                "cloudformation",
                "-f",
            ])
            .arg(deploy::TEMPLATE),
    )
    .context("checkov found problems in the template")
}

/// The whole-flow and operations tests (`tests/tests/{flow,ops}.rs`)
/// against a deployed stack: the local cloud's unless `--aws`; on
/// ministack, the IAM tests (`tests/tests/iam.rs`) after them.
pub fn flow(args: &[String]) -> Result<()> {
    let (target, rest) = target::parse(args)?;
    if let Some(unknown) = rest.first() {
        bail!(
            "unknown argument `{unknown}` (usage: cargo xtask flow [--aws ... | --cloud NAME] \
             [--stack-name NAME])"
        );
    }
    suites_on(&target)
}

/// The whole-flow and operations tests against `target`'s stack and, on
/// the cloud that enforces IAM, the IAM tests, which read what the others
/// made the functions call.
fn suites_on(target: &Target) -> Result<()> {
    flow_on(target)?;
    if !target.aws && target.cloud().authorization_log().is_some() {
        iam_on(target)?;
    }
    Ok(())
}

/// The whole-flow and operations tests against `target`'s stack, in three
/// passes: the cases in parallel, then the 200-order load alone, then the
/// 200-order flash sale alone; then the hostile corpus alone.
fn flow_on(target: &Target) -> Result<()> {
    let passes: [&[&str]; 3] = [
        &["--skip", "load_", "--skip", "flash_sale_"],
        &["load_"],
        &["flash_sale_"],
    ];
    for filter in passes {
        stack_tests(target, &["flow", "ops"], filter)
            .with_context(|| format!("the whole-flow tests failed on {}", target.describe()))?;
    }
    // Alone: its 200-odd dead letters must stay where they land, and the
    // operations tests redrive whole DLQs.
    stack_tests(target, &["hostile"], &[])
        .with_context(|| format!("the hostile corpus failed on {}", target.describe()))
}

/// The IAM tests (`tests/tests/iam.rs`) on ministack, after the whole-flow
/// run: every action a function's role was asked for was allowed, every
/// action its policy grants was asked for (or carries a reason), and an
/// operator holding exactly the README's permissions runs the ops commands.
fn iam_on(target: &Target) -> Result<()> {
    let Some(log) = target.cloud().authorization_log() else {
        bail!("the IAM tests need the cloud that enforces IAM: --cloud ministack");
    };
    eprintln!("\n==> IAM: least privilege both ways, and the operator's permissions");
    stack_tests(target, &["iam"], &[]).with_context(|| {
        format!(
            "the IAM tests failed (decisions read from {})",
            log.display()
        )
    })
}

/// `cargo test --workspace --test <each of tests> -- --ignored` against
/// `target`'s stack. The tests are `orderflow-flow`'s, but `-p
/// orderflow-flow` would resolve features for that crate alone, and
/// rebuild the SDK crates and everything above them that the unit-test
/// step built for the whole workspace (8 crates, 47 s); the same package
/// selection builds nothing again.
fn stack_tests(target: &Target, tests: &[&str], filter: &[&str]) -> Result<()> {
    let mut env: Vec<(&str, String)> = if target.aws {
        let mut env = Vec::new();
        if let Some(profile) = &target.profile {
            env.push(("AWS_PROFILE", profile.clone()));
        }
        if let Some(region) = &target.region {
            env.push(("AWS_REGION", region.clone()));
        }
        env
    } else {
        crate::cloud::aws_env(&target::ensure_up(target)?.unwrap_or_default())
    };
    if let Some(log) = target.cloud().authorization_log().filter(|_| !target.aws) {
        env.push(("ORDERFLOW_AUTHZ_LOG", log.display().to_string()));
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(project_root())
        .args(["test", "--workspace"]);
    for test in tests {
        cargo.args(["--test", test]);
    }
    run_cmd(
        cargo
            .arg("--")
            .args(["--ignored", "--nocapture", "--test-threads", "16"])
            .args(filter)
            .env("ORDERFLOW_STACK", &target.stack)
            .env("RUST_BACKTRACE", "0")
            .envs(env),
    )
}

/// The steps of a run, each timed: a step ends when the next begins, and
/// the last when the run prints its summary.
struct Steps {
    current: Option<(String, Instant)>,
    done: Vec<(String, Duration)>,
}

impl Steps {
    fn new() -> Self {
        Self {
            current: None,
            done: Vec::new(),
        }
    }

    /// Ends the current step and announces `name`.
    fn start(&mut self, name: &str) {
        self.end();
        eprintln!("\n==> {name}");
        self.current = Some((name.to_owned(), Instant::now()));
    }

    fn end(&mut self) {
        if let Some((name, started)) = self.current.take() {
            self.done.push((name, started.elapsed()));
        }
    }

    /// Ends the current step and prints how long each took.
    fn summary(mut self) {
        self.end();
        let total: Duration = self.done.iter().map(|(_, took)| *took).sum();
        eprintln!("\nsteps ({:.0} s in all):", total.as_secs_f64());
        for (name, took) in &self.done {
            eprintln!("{:>7.0} s  {name}", took.as_secs_f64());
        }
    }
}

/// What a function logs for each record it sends to its DLQ.
const DEAD_LETTER: &str = "record sent to the DLQ";
/// What marks an invocation's metrics line (EMF), the last it logs.
const METRICS: &str = "\"CloudWatchMetrics\"";

/// Starts `cargo lambda watch` with in-memory adapters and invokes every
/// function on every one of its samples, as a user would with
/// `cargo lambda invoke <fn> --data-file events/...`.
pub fn local_invoke(root: &Path) -> Result<()> {
    let tools = venv::ensure("tools", "infra/tools.lock")?;
    let cargo_lambda = tools.bin("cargo-lambda");
    // `watch` runs each function with `cargo run --bin <fn>`; build them
    // first, the same way, so no invoke waits on a compile.
    let functions = crate::services::names(root)?;
    for function in &functions {
        run_cmd(
            Command::new(env!("CARGO"))
                .current_dir(root)
                .args(["build", "--quiet", "--bin", function]),
        )?;
    }
    let port = free_port()?;
    let log = root.join("target/cargo-lambda-watch.log");
    let watch = Watch::start(&cargo_lambda, root, port, &log)?;
    let mut invoked = 0;
    for function in &functions {
        let mut samples: Vec<_> = std::fs::read_dir(root.join("events").join(function))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        samples.sort();
        for sample in samples {
            let name = sample
                .strip_prefix(root)
                .unwrap_or(&sample)
                .display()
                .to_string();
            let dead_before = watch.lines_with(DEAD_LETTER).len();
            let metrics_before = watch.lines_with(METRICS).len();
            let response = invoke(&cargo_lambda, function, port, &sample, &watch)
                .with_context(|| format!("cargo lambda invoke {function} --data-file {name}"))?;
            check_response(&name, &response)?;
            // A poison record is acknowledged because it went to the DLQ:
            // the function's log must say so, and its metrics count it.
            let poison = name.contains("/poison-");
            // The log is relayed by cargo-lambda, so a line may arrive after
            // the answer. Every invocation ends by logging its metrics (one
            // EMF line), which say how many records it dead-lettered: wait
            // for that, rather than for a line that should not come.
            let metrics = watch
                .wait_for_line(METRICS, metrics_before + 1, Duration::from_secs(5))
                .with_context(|| format!("{name}: no metrics line logged\n{}", watch.log_tail()))?;
            let dead_lettered = serde_json::from_str::<Value>(&metrics)
                .ok()
                .and_then(|metrics| metrics.get("dead_lettered")?.as_u64())
                .with_context(|| {
                    format!("{name}: its metrics line has no dead_lettered count: {metrics}")
                })?;
            if dead_lettered != u64::from(poison) {
                bail!(
                    "{name}: its metrics count {dead_lettered} record(s) dead-lettered, \
                     expected {}\n{}",
                    u64::from(poison),
                    watch.log_tail()
                );
            }
            if poison
                && watch
                    .wait_for_line(DEAD_LETTER, dead_before + 1, Duration::from_secs(5))
                    .is_none()
            {
                bail!(
                    "{name}: dead-lettered by its metrics, but no `record sent to the DLQ` line \
                     was logged\n{}",
                    watch.log_tail()
                );
            }
            println!("ok  {function:<9} {name}  {response}");
            invoked += 1;
        }
    }
    drop(watch);
    println!("local invoke: {invoked} passed, 0 failed");
    Ok(())
}

fn invoke(
    cargo_lambda: &Path,
    function: &str,
    port: u16,
    sample: &Path,
    watch: &Watch,
) -> Result<Value> {
    let started = Instant::now();
    loop {
        let out = Command::new(cargo_lambda)
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-file")
            .arg(sample)
            .output()?;
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).context("the response is not JSON");
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The server may still be starting: retry connection errors briefly.
        if started.elapsed() < Duration::from_secs(120) && stderr.contains("onnect") {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        bail!("invoke failed: {stderr}\nwatch log: {}", watch.log_tail());
    }
}

/// An SQS batch must come back with no failed record (poison records are
/// dead-lettered, not failed). A direct invocation must be processed: every
/// case in `events/` has its own event id, and its `eventbridge` shape sorts
/// before its `sqs` shape, so it is the first time the function sees that
/// event. (A duplicate here once hid that the payment samples for a declined
/// token and an amount over the limit carried the happy order's event id, so
/// one `cargo lambda watch` answered them from the first one's outcome.)
fn check_response(name: &str, response: &Value) -> Result<()> {
    if let Some(failures) = response.get("batchItemFailures") {
        if failures.as_array().is_some_and(Vec::is_empty) {
            return Ok(());
        }
        bail!("{name}: records failed: {response}");
    }
    match response.get("outcome").and_then(Value::as_str) {
        Some("processed") => Ok(()),
        Some("duplicate") => bail!(
            "{name}: answered as a duplicate: another sample carries its event id \
             (each case needs its own)"
        ),
        _ => bail!("{name}: unexpected response {response}"),
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `cargo lambda watch` process, stopped with its children on drop.
struct Watch {
    child: Child,
    log: std::path::PathBuf,
}

impl Watch {
    fn start(cargo_lambda: &Path, root: &Path, port: u16, log: &Path) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(log)?;
        let child = Command::new(cargo_lambda)
            .current_dir(root)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .args(["--env-var", "ORDERFLOW_ADAPTERS=memory"])
            // The memory store starts empty, and inventory dead-letters an
            // order whose sku has no stock record: seed the samples' skus.
            // Absolute, as the functions need not run from the root (and
            // comma-free: cargo-lambda reads `A=1,B=2` as two variables).
            .arg("--env-var")
            .arg(format!(
                "ORDERFLOW_MEMORY_STOCK={}",
                root.join("events/stock.json").display()
            ))
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            // Its own process group, so the functions it spawns stop with it.
            .process_group(0)
            .spawn()
            .context("starting cargo lambda watch")?;
        Ok(Self {
            child,
            log: log.to_path_buf(),
        })
    }

    /// The log's lines that hold `needle`, in order.
    fn lines_with(&self, needle: &str) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// The `count`-th line that holds `needle`, once the log has it,
    /// within `within` (the log is written by another process).
    fn wait_for_line(&self, needle: &str, count: usize, within: Duration) -> Option<String> {
        let started = Instant::now();
        loop {
            if let Some(line) = self.lines_with(needle).into_iter().nth(count - 1) {
                return Some(line);
            }
            if started.elapsed() >= within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        terminate_group(self.child.id());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::Duration;

    use serde_json::json;

    use super::{Alongside, check_response};

    /// A fresh directory for one test's logs.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn alongside_runs_its_commands_in_turn_and_stops_at_the_first_failure() {
        let dir = scratch("alongside-turns");
        let log = dir.join("ok.log");
        let started = Alongside::start("two", &log, vec![sh("echo one"), sh("echo two")])
            .and_then(Alongside::finish);
        assert!(started.is_ok(), "{started:?}");
        let text = std::fs::read_to_string(&log).expect("its log");
        assert!(text.find("one\n") < text.find("two\n"), "{text}");

        let log = dir.join("failed.log");
        let failed = Alongside::start("fails", &log, vec![sh("exit 3"), sh("echo nev''er")])
            .and_then(Alongside::finish)
            .map_err(|e| format!("{e:#}"));
        let err = failed.expect_err("a failed command fails the whole");
        assert!(err.contains("exit status: 3"), "{err}");
        let text = std::fs::read_to_string(&log).expect("its log");
        assert!(!text.contains("never"), "ran past the failure: {text}");
    }

    #[test]
    fn a_dropped_alongside_stops_the_running_command_and_starts_no_other() {
        let dir = scratch("alongside-drop");
        let log = dir.join("drop.log");
        let alongside = Alongside::start(
            "dropped",
            &log,
            // Quoted apart, so that the command lines in the log do not
            // hold the words they print.
            vec![sh("sleep 1 && echo la''te"), sh("echo ne''xt")],
        )
        .expect("started");
        std::thread::sleep(Duration::from_millis(200));
        drop(alongside);
        std::thread::sleep(Duration::from_millis(1500));
        let text = std::fs::read_to_string(&log).expect("its log");
        assert!(!text.contains("late") && !text.contains("next"), "{text}");
    }
    #[test]
    fn a_direct_invocation_must_be_processed() {
        assert!(check_response("s", &json!({"outcome": "processed"})).is_ok());
        assert!(check_response("s", &json!({"outcome": "duplicate"})).is_err());
        assert!(check_response("s", &json!({"outcome": "dead_lettered"})).is_err());
        assert!(check_response("s", &json!({"batchItemFailures": []})).is_ok());
        assert!(
            check_response(
                "s",
                &json!({"batchItemFailures": [{"itemIdentifier": "m"}]})
            )
            .is_err()
        );
    }
}
