//! `cargo xtask cloud up | down | status | logs | test [--cloud NAME]`: the two local clouds.
//!
//! - **LocalStack** (the default, `--cloud localstack`) runs in host mode (its Python runtime
//!   as a plain process, no Docker) on 127.0.0.1:4566, from `.venv/localstack`, with
//!   orderflow's extension (`infra/localstack/extension`) selected: DynamoDB backed by moto,
//!   and Lambda functions run as host processes. It writes under `.localstack/`.
//! - **ministack** (`--cloud ministack`) runs on 127.0.0.1:4567 from `.venv/ministack` with
//!   `AUTH=true`: every call a function makes is evaluated against its execution role, which
//!   the open edition of LocalStack does not do. It is started through orderflow's launcher
//!   (`infra/ministack`), which applies the fixes that make it behave as AWS does, and it
//!   writes its log and its IAM decisions (`authz.jsonl`) under `.ministack/`.
//!
//! Every project command that needs a cloud calls [`LocalCloud::ensure_up`]; it is idempotent, and
//! if the cloud's port already answers as that cloud (a user's Docker LocalStack, say) it uses
//! that one and `down` leaves it alone.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cmd_stdout, project_root, run_cmd, venv};

/// The LocalStack version this project pins (`localstack-core` in the lock; the Docker image
/// tag for users who run LocalStack in Docker instead).
pub const LOCALSTACK_VERSION: &str = "4.13.1";
/// The ministack version this project pins (in `infra/ministack/requirements.lock`).
pub const MINISTACK_VERSION: &str = "1.5.33";
/// How long a cloud may take to answer its health check (LocalStack takes ~2 s here, 10–20 s on
/// a cold cache; ministack about 2 s).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// LocalStack 4.x in host mode sometimes hangs after "Completed, bye!" (non-daemon
/// threads), so `down` sends SIGKILL after this grace period.
const STOP_GRACE: Duration = Duration::from_secs(15);

const USAGE: &str = "\
usage: cargo xtask cloud <command> [--cloud localstack|ministack]

  up       install on first use, start the cloud, wait until healthy
  down     stop the cloud that `up` started
  status   say what answers on the cloud's port, and its memory
  logs     print the cloud's log (`logs -f` follows it)
  test     start the cloud and run its plugin tests (extra args go to pytest)

  localstack (the default) listens on 127.0.0.1:4566; ministack, which enforces IAM,
  on 127.0.0.1:4567.
";

pub use orderflow::Cloud;

/// What xtask alone knows of a local cloud: how to install, start, stop and
/// test it. The clouds themselves, their names and endpoints, are the
/// `orderflow` CLI's ([`Cloud`]), which connects to them but never starts one.
pub trait LocalCloud: Sized {
    /// Takes `--cloud NAME` out of `args` (default: LocalStack), and returns the rest.
    fn take_flag(args: &[String]) -> Result<(Self, Vec<String>)>;
    /// The pinned version.
    fn version(self) -> &'static str;
    /// The lock file of its Python environment.
    fn lock(self) -> &'static str;
    /// The folder of the cloud's Python code (extension or launcher), tests and style.
    fn python_dir(self) -> &'static str;
    /// The path of its health document.
    fn health_path(self) -> &'static str;
    /// What the cloud's command line contains: tells our process from a reused pid.
    fn marker(self) -> &'static str;
    /// The file the cloud appends every IAM decision on a role to, if it enforces IAM.
    fn authorization_log(self) -> Option<PathBuf>;
    /// The CPU time (user and system) our cloud's own process has used since it started,
    /// if it is up: its threads, not the functions it runs as processes of their own.
    fn cpu_time(self) -> Option<Duration>;
    /// Makes sure this cloud answers on its port, starting ours if nothing does, and returns
    /// its endpoint URL.
    fn ensure_up(self) -> Result<String>;
    /// Starts the cloud and runs its plugin tests (`infra/<cloud>/tests`): ruff, then pytest.
    ///
    /// `bootstrap` is a built orderflow function binary for the tests that run real code;
    /// without it, ORDERFLOW_BOOTSTRAP from the environment is used, and those tests fail if
    /// neither is set.
    fn test(self, bootstrap: Option<&Path>) -> Result<()>;
}

impl LocalCloud for Cloud {
    /// Takes `--cloud NAME` out of `args` (default: LocalStack), and returns the rest.
    fn take_flag(args: &[String]) -> Result<(Self, Vec<String>)> {
        let mut cloud = Cloud::default();
        let mut rest = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--cloud" {
                let name = args
                    .next()
                    .context("--cloud needs a value (localstack or ministack)")?;
                cloud = Cloud::parse(name)?;
            } else if let Some(name) = arg.strip_prefix("--cloud=") {
                cloud = Cloud::parse(name)?;
            } else {
                rest.push(arg.clone());
            }
        }
        Ok((cloud, rest))
    }

    fn version(self) -> &'static str {
        match self {
            Cloud::LocalStack => LOCALSTACK_VERSION,
            Cloud::Ministack => MINISTACK_VERSION,
        }
    }

    fn lock(self) -> &'static str {
        match self {
            Cloud::LocalStack => "infra/localstack/requirements.lock",
            Cloud::Ministack => "infra/ministack/requirements.lock",
        }
    }

    /// The folder of the cloud's Python code (extension or launcher), tests and style.
    fn python_dir(self) -> &'static str {
        match self {
            Cloud::LocalStack => "infra/localstack",
            Cloud::Ministack => "infra/ministack",
        }
    }

    fn health_path(self) -> &'static str {
        match self {
            Cloud::LocalStack => "/_localstack/health",
            Cloud::Ministack => "/_ministack/health",
        }
    }

    /// What the cloud's command line contains: tells our process from a reused pid.
    fn marker(self) -> &'static str {
        match self {
            Cloud::LocalStack => "localstack.runtime.main",
            Cloud::Ministack => "orderflow_ministack",
        }
    }

    /// The file ministack appends every IAM decision on a role to (see
    /// `infra/ministack/orderflow_ministack/patches.py`).
    fn authorization_log(self) -> Option<PathBuf> {
        match self {
            Cloud::LocalStack => None,
            Cloud::Ministack => Some(State::new(self).dir.join("authz.jsonl")),
        }
    }

    fn cpu_time(self) -> Option<Duration> {
        let pid = State::new(self).running_pid()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ticks = cmd_stdout(Command::new("getconf").arg("CLK_TCK")).ok()?;
        cpu_of(&stat, String::from_utf8_lossy(&ticks).trim().parse().ok()?)
    }

    fn ensure_up(self) -> Result<String> {
        let state = State::new(self);
        if let Some(endpoint) = already_up(&state)? {
            return Ok(endpoint);
        }
        fs::create_dir_all(&state.dir)?;
        // Two commands bringing the cloud up at once would race on the install and the port.
        let _lock = StartLock::acquire(&state)?;
        if let Some(endpoint) = already_up(&state)? {
            return Ok(endpoint);
        }
        let addr = self.addr();
        if port_in_use(addr) {
            bail!(
                "port clash: something on {addr} accepts connections but is not {} (GET {} does \
                 not answer). Stop it (`ss -ltnp 'sport = :{}'` shows which process), then run \
                 `cargo xtask cloud up --cloud {}` again",
                self.title(),
                self.health_path(),
                addr.rsplit(':').next().unwrap_or(addr),
                self.key(),
            );
        }
        start(&state)
    }

    fn test(self, bootstrap: Option<&Path>) -> Result<()> {
        run_tests(self, bootstrap, &[])
    }
}

/// The files `up` and `down` share, all under `.localstack/` or `.ministack/`.
struct State {
    cloud: Cloud,
    dir: PathBuf,
}

impl State {
    fn new(cloud: Cloud) -> Self {
        State {
            cloud,
            dir: project_root().join(format!(".{}", cloud.key())),
        }
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.join(format!("{}.pid", self.cloud.key()))
    }
    fn log_file(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.cloud.key()))
    }
    /// Shown to the user: `.localstack/localstack.log`.
    fn log_name(&self) -> String {
        format!(".{0}/{0}.log", self.cloud.key())
    }
    fn lambda_pids(&self) -> PathBuf {
        self.dir.join("lambda-pids")
    }
    /// The pid that `up` started, if it is still that cloud.
    fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_cloud_process(self.cloud, pid).then_some(pid)
    }
}

/// Entry point of `cargo xtask cloud …`.
pub fn main(args: &[String]) -> Result<()> {
    let (cloud, args) = Cloud::take_flag(args)?;
    match args.first().map(String::as_str) {
        Some("up") => cloud.ensure_up().map(|_| ()),
        Some("down") => down(cloud),
        Some("status") => status(cloud),
        Some("logs") => logs(cloud, &args[1..]),
        Some("test") if args.len() == 1 => cloud.test(None),
        Some("test") => run_tests(cloud, None, &args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown cloud command `{other}`\n\n{USAGE}"),
    }
}

/// Installs the cloud if needed, starts it in its own process group and waits until it is
/// healthy.
fn start(state: &State) -> Result<String> {
    let cloud = state.cloud;
    let _ = fs::remove_file(state.pid_file());
    let python = install(cloud)?;
    let env = match cloud {
        Cloud::LocalStack => {
            fs::create_dir_all(state.lambda_pids())?;
            localstack_env(&state.dir)
        }
        Cloud::Ministack => {
            fs::create_dir_all(state.dir.join("tmp"))?;
            // A fresh cloud has made no decision yet: the log covers this run alone.
            if let Some(log) = cloud.authorization_log() {
                let _ = fs::remove_file(log);
            }
            ministack_env(&state.dir)
        }
    };
    let log = fs::File::create(state.log_file())
        .with_context(|| format!("creating {}", state.log_file().display()))?;
    let started = Instant::now();
    let mut cmd = Command::new(&python);
    match cloud {
        Cloud::LocalStack => cmd.args(["-m", "localstack.runtime.main"]),
        Cloud::Ministack => cmd.args(["-m", "orderflow_ministack"]),
    };
    cmd.current_dir(&state.dir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: it outlives this command, a Ctrl-C in the terminal that ran
        // `up` does not reach it, and `down` can stop the functions it started with it.
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    let pid = child.id();
    fs::write(state.pid_file(), format!("{pid}\n"))?;
    // The child is deliberately not waited for: it must outlive xtask.
    drop(child);
    wait_ready(state, pid, Some(started))?;
    let endpoint = cloud.endpoint();
    let what = match cloud {
        Cloud::LocalStack => format!("LocalStack {LOCALSTACK_VERSION} in host mode"),
        Cloud::Ministack => format!("ministack {MINISTACK_VERSION}, IAM enforced"),
    };
    eprintln!(
        "xtask: local cloud up on {endpoint}: {what}, pid {pid}, ready in {:.1} s (log: {})",
        started.elapsed().as_secs_f64(),
        state.log_name()
    );
    Ok(endpoint)
}

/// The endpoint, if the cloud already answers there (ours or not) or ours is starting.
fn already_up(state: &State) -> Result<Option<String>> {
    let cloud = state.cloud;
    let endpoint = cloud.endpoint();
    if let Some(health) = health(cloud) {
        match state.running_pid() {
            Some(pid) => {
                wait_ready(state, pid, None)?;
                eprintln!("xtask: local cloud already up on {endpoint} (pid {pid})");
            }
            None => {
                let version = health
                    .get("version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?");
                eprintln!(
                    "xtask: using the {} {version} already listening on {endpoint} (not started \
                     by xtask, so `cloud down` leaves it alone)",
                    cloud.title()
                );
                if !version.starts_with(cloud.version()) {
                    eprintln!(
                        "xtask: note: this project pins {} {}",
                        cloud.title(),
                        cloud.version()
                    );
                }
            }
        }
        check_enforces_iam(cloud, &health)?;
        return Ok(Some(endpoint));
    }
    if let Some(pid) = state.running_pid() {
        // Ours, still starting (or wedged): wait for it rather than start a second one.
        wait_ready(state, pid, None)?;
        return Ok(Some(endpoint));
    }
    Ok(None)
}

/// ministack is here to enforce IAM: one started without `AUTH=true` would pass every test
/// that it exists to fail.
fn check_enforces_iam(cloud: Cloud, health: &serde_json::Value) -> Result<()> {
    if cloud == Cloud::Ministack && health.get("auth").and_then(|a| a.as_str()) != Some("enabled") {
        bail!(
            "the ministack on {} does not enforce IAM (its health says auth {}): stop it, and let \
             `cargo xtask cloud up --cloud ministack` start one with AUTH=true",
            cloud.endpoint(),
            health.get("auth").unwrap_or(&serde_json::Value::Null)
        );
    }
    Ok(())
}

/// Held while `up` installs and starts a cloud: `.<cloud>/starting` names the holder's pid, and
/// is removed when the holder is done (or found dead).
struct StartLock(PathBuf);

impl StartLock {
    fn acquire(state: &State) -> Result<Self> {
        let path = state.dir.join("starting");
        let waiting = Instant::now();
        let mut said = false;
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id())?;
                    return Ok(StartLock(path));
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder: Option<u32> = fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse().ok());
                    let alive =
                        holder.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    // An empty file is a holder that has not written its pid yet, unless old.
                    let young = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age < Duration::from_secs(5));
                    if !alive && (holder.is_some() || !young) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if !said {
                        eprintln!("xtask: another command is bringing the local cloud up; waiting");
                        said = true;
                    }
                    if waiting.elapsed() > START_TIMEOUT * 5 {
                        bail!(
                            "waited {} s for {} to go away; delete it if no `cargo xtask cloud up` \
                             is running",
                            waiting.elapsed().as_secs(),
                            path.display()
                        );
                    }
                    sleep(Duration::from_millis(200));
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("creating {}", path.display()));
                }
            }
        }
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// LocalStack's configuration: host mode, our plugins, every file under `.localstack/`.
fn localstack_env(state: &Path) -> Vec<(&'static str, String)> {
    let dir = state.display().to_string();
    let addr = Cloud::LocalStack.addr().to_string();
    vec![
        ("GATEWAY_LISTEN", addr.clone()),
        // Queue URLs like http://127.0.0.1:4566/queue/…: *.localhost.localstack.cloud does
        // not resolve offline.
        ("LOCALSTACK_HOST", addr),
        ("SQS_ENDPOINT_STRATEGY", "path".to_string()),
        // This machine may itself be a container; LocalStack would then write to
        // /var/lib/localstack. Host mode keeps everything under FILESYSTEM_ROOT.
        ("OVERRIDE_IN_DOCKER", "0".to_string()),
        ("FILESYSTEM_ROOT", format!("{dir}/filesystem")),
        ("LOCALSTACK_VOLUME_DIR", format!("{dir}/volume")),
        // Offline, the analytics shutdown hook raises and aborts the later hooks (Lambda
        // environments would never be stopped).
        ("DISABLE_EVENTS", "1".to_string()),
        ("SKIP_SSL_CERT_DOWNLOAD", "1".to_string()),
        ("PROVIDER_OVERRIDE_DYNAMODB", "moto".to_string()),
        ("LAMBDA_RUNTIME_EXECUTOR", "process".to_string()),
        // Each event source mapping is one loop that long-polls its queue (up to the
        // template's batching window), invokes the function synchronously, then sleeps this
        // long, by default 1 s even after a full batch: 10 records a second per queue at
        // most. The long poll already waits for records, so the loop needs no sleep of its own.
        (
            "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC",
            "0".to_string(),
        ),
        // After an empty poll it backs off from 1 s, ×1.5 each time, up to this (default 10 s),
        // each wait jittered ±50%, on top of the batching window's: an order arriving at an idle
        // queue could wait up to 16 s, now up to 2.5 s.
        (
            "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC",
            "1".to_string(),
        ),
        // Per order LocalStack spends about 245 ms of its one core; 6.5% of it went to
        // publishing SQS metrics to CloudWatch and 3.8% to logging each request. The
        // template's DLQ alarms read those metrics on AWS; no local test does. 200 orders,
        // alternating restarts: 5.8–6.4 orders/s with both off, 5.0–6.1 with them on.
        // A failed request leaves no line in LocalStack's log either; the functions log the
        // errors the SDK gave them (CloudWatch Logs).
        ("SQS_DISABLE_CLOUDWATCH_METRICS", "1".to_string()),
        // LocalStack's own calls to itself (an event delivered to its SQS targets, an event
        // source mapping's receives and deletes, a function invoked) go to the gateway in
        // memory, not over HTTP to its own port: per order, about 10 SQS sends for EventBridge
        // alone, each serialized by botocore, sent through urllib3, parsed back by the HTTP
        // server and the request parser. 200 orders, alternating restarts: 115 and 121 ms of its
        // CPU an order with it, 134 and 146 without; 7.6–7.9 orders/s against 6.3–6.9.
        ("IN_MEMORY_CLIENT", "1".to_string()),
        (
            "LOG_LEVEL_OVERRIDES",
            "localstack.request.aws=WARNING".to_string(),
        ),
        ("ORDERFLOW_LOCALSTACK_STATE", dir),
        ("PYTHONUNBUFFERED", "1".to_string()),
    ]
}

/// ministack's configuration: IAM enforced, loopback only, every file under `.ministack/`.
fn ministack_env(state: &Path) -> Vec<(&'static str, String)> {
    let dir = state.display().to_string();
    let endpoint = Cloud::Ministack.endpoint();
    let mut env = vec![
        ("GATEWAY_PORT", "4567".to_string()),
        // It binds 0.0.0.0 by default; the tests stay on the loopback address.
        ("BIND_HOST", "127.0.0.1".to_string()),
        // Each function gets its execution role's session credentials, and every call it
        // makes is evaluated against that role.
        ("AUTH", "true".to_string()),
        // The functions it runs inherit this: without it their SDK calls go to real AWS.
        ("AWS_ENDPOINT_URL", endpoint),
        // Its IoT MQTT and SFTP listeners would bind 0.0.0.0; orderflow uses neither.
        ("IOT_MTLS_ENABLED", "0".to_string()),
        ("SFTP_ENABLED", "0".to_string()),
        // Its pid file and the functions' unpacked code go to TMPDIR.
        ("TMPDIR", format!("{dir}/tmp")),
        (
            "PYTHONPATH",
            project_root()
                .join(Cloud::Ministack.python_dir())
                .display()
                .to_string(),
        ),
        ("PYTHONUNBUFFERED", "1".to_string()),
    ];
    if let Some(log) = Cloud::Ministack.authorization_log() {
        env.push(("ORDERFLOW_AUTHZ_LOG", log.display().to_string()));
    }
    // The `ORDERFLOW_SKIP_<NAME>_FIX` switches, which turn a fix off to prove that its test
    // fails without it, reach it through the inherited environment.
    env
}

/// Installs the cloud's venv from its lock (and, for LocalStack, the extension into it,
/// editable), each only when what it was installed from changed. Returns the venv's python.
pub fn install(cloud: Cloud) -> Result<PathBuf> {
    let root = project_root();
    let venv = venv::ensure(cloud.key(), cloud.lock())?;
    let python = venv.bin("python");
    let start_over = format!(
        "delete .venv/{} and run `cargo xtask cloud up --cloud {}` again",
        cloud.key(),
        cloud.key()
    );
    if !python.exists() {
        // For example a venv whose base interpreter was removed or upgraded.
        bail!(
            "broken install: {} does not run; {start_over}",
            python.display()
        );
    }
    // What the venv was last checked against: for LocalStack the extension's entry points,
    // which live in the installed metadata, so a changed pyproject.toml (or a moved checkout)
    // needs a reinstall (the code itself is editable); for ministack the checkout, as the
    // launcher is on PYTHONPATH and only ministack itself is installed.
    let extension = root.join("infra/localstack/extension");
    let wanted = match cloud {
        Cloud::LocalStack => {
            let pyproject = fs::read_to_string(extension.join("pyproject.toml"))
                .context("reading infra/localstack/extension/pyproject.toml")?;
            format!("{}\n{pyproject}", extension.display())
        }
        Cloud::Ministack => root.display().to_string(),
    };
    let stamp = venv.dir.join(".orderflow-extension");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let mut check = Command::new(&python);
    match cloud {
        Cloud::LocalStack => {
            eprintln!("xtask: installing the orderflow LocalStack extension into .venv/localstack");
            run_cmd(
                venv.pip_install()
                    .args(["--no-deps", "--no-build-isolation", "-e"])
                    .arg(&extension),
            )
            .with_context(|| format!("installing the extension; {start_over}"))?;
            check
                .args([
                    "-c",
                    "import localstack.runtime.main, orderflow_localstack.process_executor",
                ])
                .env("OVERRIDE_IN_DOCKER", "0")
                .env("FILESYSTEM_ROOT", root.join(".localstack/filesystem"));
        }
        Cloud::Ministack => {
            check
                .args(["-c", "import ministack.app, orderflow_ministack.patches"])
                .env("PYTHONPATH", root.join(cloud.python_dir()));
        }
    }
    let check = check.output().context("running the venv's python")?;
    if !check.status.success() {
        bail!(
            "broken install: {} does not import in .venv/{}:\n{}\n{start_over}",
            cloud.title(),
            cloud.key(),
            String::from_utf8_lossy(&check.stderr).trim_end()
        );
    }
    fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Waits until the cloud answers its health check (and LocalStack has said `Ready.`). Fails
/// with the log's tail if the process dies first.
fn wait_ready(state: &State, pid: u32, started: Option<Instant>) -> Result<()> {
    let cloud = state.cloud;
    let since = started.unwrap_or_else(Instant::now);
    loop {
        if health(cloud).is_some() && log_says_ready(state) {
            return Ok(());
        }
        if !is_cloud_process(cloud, pid) {
            let _ = fs::remove_file(state.pid_file());
            bail!(
                "{} exited during startup. The end of {}:\n{}\n\
                 If this looks like a broken install, delete .venv/{} and run \
                 `cargo xtask cloud up --cloud {}` again",
                cloud.title(),
                state.log_name(),
                log_tail(state, 30),
                cloud.key(),
                cloud.key()
            );
        }
        if since.elapsed() > START_TIMEOUT {
            bail!(
                "{} (pid {pid}) did not become healthy within {} s; see {}, or run \
                 `cargo xtask cloud down --cloud {}` and retry. Its end:\n{}",
                cloud.title(),
                START_TIMEOUT.as_secs(),
                state.log_name(),
                cloud.key(),
                log_tail(state, 30)
            );
        }
        sleep(Duration::from_millis(100));
    }
}

/// LocalStack answers its health check before its services are loaded; `Ready.` in its log
/// says they are. ministack is ready when it answers.
fn log_says_ready(state: &State) -> bool {
    match state.cloud {
        Cloud::LocalStack => fs::read_to_string(state.log_file())
            .map(|log| log.lines().any(|line| line.trim() == "Ready."))
            .unwrap_or(false),
        Cloud::Ministack => true,
    }
}

fn log_tail(state: &State, lines: usize) -> String {
    let log = fs::read_to_string(state.log_file()).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Stops the cloud that `up` started (by its pid): SIGTERM, then SIGKILL after a grace
/// period. Lambda runtimes it leaves behind are killed too.
fn down(cloud: Cloud) -> Result<()> {
    let state = State::new(cloud);
    match state.running_pid() {
        None => {
            let _ = fs::remove_file(state.pid_file());
            if health(cloud).is_some() {
                eprintln!(
                    "xtask: the {} on {} was not started by xtask; leaving it running",
                    cloud.title(),
                    cloud.endpoint()
                );
            } else {
                eprintln!("xtask: local cloud {} is not running", cloud.key());
            }
        }
        Some(pid) => {
            let started = Instant::now();
            signal(pid, "TERM");
            while is_cloud_process(cloud, pid) && started.elapsed() < STOP_GRACE {
                sleep(Duration::from_millis(100));
            }
            if is_cloud_process(cloud, pid) {
                eprintln!(
                    "xtask: {} (pid {pid}) still running after {} s; sending SIGKILL",
                    cloud.title(),
                    STOP_GRACE.as_secs()
                );
                signal_group(pid, "KILL");
                while is_cloud_process(cloud, pid) && started.elapsed() < STOP_GRACE * 2 {
                    sleep(Duration::from_millis(100));
                }
            }
            if cloud == Cloud::Ministack {
                // ministack runs each function's bootstrap as its own child, in the process
                // group `up` gave it: whatever of that group is left is ours.
                signal_group(pid, "KILL");
            }
            let _ = fs::remove_file(state.pid_file());
            eprintln!(
                "xtask: local cloud {} stopped (pid {pid}, {:.1} s)",
                cloud.key(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if cloud == Cloud::LocalStack {
        kill_leftover_lambdas(&state);
    }
    Ok(())
}

/// LocalStack's Lambda runtimes run in their own sessions; the executor records each one's
/// process group in `.localstack/lambda-pids/<pgid>` (content: its bootstrap path) and removes
/// it when it kills the runtime. What is left after LocalStack stopped is killed here.
fn kill_leftover_lambdas(state: &State) {
    let Ok(entries) = fs::read_dir(state.lambda_pids()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let pid: Option<u32> = entry.file_name().to_str().and_then(|n| n.parse().ok());
        let bootstrap = fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = pid {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !bootstrap.is_empty() && String::from_utf8_lossy(&cmdline).contains(bootstrap.trim())
            {
                eprintln!("xtask: killing a Lambda runtime LocalStack left behind (pgid {pid})");
                signal_group(pid, "KILL");
            }
        }
        let _ = fs::remove_file(path);
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), "--".to_string(), format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` is alive (not a zombie) and runs `cloud`: guards against a reused pid.
fn is_cloud_process(cloud: Cloud, pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    looks_like(cloud.marker(), &stat, &cmdline)
}

/// The user and system time of a `/proc/<pid>/stat` line (fields 14 and 15, counted after the
/// parenthesised command name, which may hold spaces), at `ticks` a second.
fn cpu_of(stat: &str, ticks: u32) -> Option<Duration> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` begins with field 3, the state.
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    (ticks > 0).then(|| Duration::from_secs_f64((user + system) as f64 / f64::from(ticks)))
}

/// Whether a process, by its `/proc/<pid>/stat` and `cmdline`, is live and runs the program
/// whose command line contains `marker`.
fn looks_like(marker: &str, stat: &str, cmdline: &[u8]) -> bool {
    // The state field follows the parenthesised command name; no stat means no process.
    let live = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
    // Right after `spawn` returns, the kernel may not have set the new program's arguments yet
    // (the exec has released the parent, but /proc/<pid>/cmdline is not filled in): an empty
    // cmdline of a live process is one still starting.
    live && (cmdline.is_empty() || String::from_utf8_lossy(cmdline).contains(marker))
}

/// The resident memory of the cloud's own process (not the functions it runs), in MiB
/// (`VmRSS` from `/proc`).
fn resident_mib(pid: u32) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn status(cloud: Cloud) -> Result<()> {
    let state = State::new(cloud);
    let ours = state.running_pid();
    let endpoint = cloud.endpoint();
    match health(cloud) {
        Some(health) => {
            let version = health
                .get("version")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            let services = health.get("services").and_then(|s| s.as_object());
            let running = services
                .map(|s| {
                    s.values()
                        .filter(|v| matches!(v.as_str(), Some("running" | "available")))
                        .count()
                })
                .unwrap_or(0);
            let total = services.map(|s| s.len()).unwrap_or(0);
            let who = match ours {
                Some(pid) => {
                    let memory = resident_mib(pid)
                        .map(|mib| format!(", {mib:.0} MiB resident"))
                        .unwrap_or_default();
                    format!(
                        "started by xtask, pid {pid}{memory}, log {}",
                        state.log_name()
                    )
                }
                None => "not started by xtask".to_string(),
            };
            let iam = match health.get("auth").and_then(|a| a.as_str()) {
                Some("enabled") => ", IAM enforced",
                _ => "",
            };
            println!("up: {} {version} on {endpoint}{iam} ({who})", cloud.title());
            println!("services: {running} running or available, {total} in all");
        }
        None => match ours {
            Some(pid) => println!(
                "starting: pid {pid} is not healthy yet (see `cargo xtask cloud logs --cloud {}`)",
                cloud.key()
            ),
            None if port_in_use(cloud.addr()) => println!(
                "port clash: {} is taken by something that is not {}",
                cloud.addr(),
                cloud.title()
            ),
            None => println!(
                "down: nothing answers on {endpoint} (`cargo xtask cloud up --cloud {}` starts it)",
                cloud.key()
            ),
        },
    }
    Ok(())
}

fn logs(cloud: Cloud, args: &[String]) -> Result<()> {
    let state = State::new(cloud);
    let log = state.log_file();
    if !log.exists() {
        bail!(
            "no log yet: {} is written by `cargo xtask cloud up --cloud {}`",
            state.log_name(),
            cloud.key()
        );
    }
    if args.iter().any(|a| a == "-f" || a == "--follow") {
        run_cmd(Command::new("tail").args(["-n", "100", "-f"]).arg(&log))
    } else {
        print!("{}", fs::read_to_string(&log)?);
        Ok(())
    }
}

fn run_tests(cloud: Cloud, bootstrap: Option<&Path>, extra: &[String]) -> Result<()> {
    let endpoint = cloud.ensure_up()?;
    let venv = venv::ensure(cloud.key(), cloud.lock())?;
    let root = project_root();
    // The Python code, tests and bench follow infra/<cloud>/ruff.toml.
    let python_dir = root.join(cloud.python_dir());
    let dir = cloud.python_dir();
    run_cmd(
        Command::new(venv.bin("ruff"))
            .args(["check", "--no-cache"])
            .arg(&python_dir),
    )
    .with_context(|| format!("{dir}: `ruff check --fix` fixes most of these"))?;
    run_cmd(
        Command::new(venv.bin("ruff"))
            .args(["format", "--check", "--no-cache"])
            .arg(&python_dir),
    )
    .with_context(|| format!("{dir}: run `.venv/{}/bin/ruff format {dir}`", cloud.key()))?;
    let mut pytest = Command::new(venv.bin("python"));
    pytest
        .args(["-m", "pytest", "-q"])
        .arg(python_dir.join("tests"))
        .args(extra)
        .current_dir(&root)
        .env("PYTHONPATH", &python_dir)
        .envs(aws_env(&endpoint));
    if let Some(authz) = cloud.authorization_log() {
        pytest.env("ORDERFLOW_AUTHZ_LOG", authz);
    }
    if let Some(bootstrap) = bootstrap {
        pytest.env("ORDERFLOW_BOOTSTRAP", root.join(bootstrap));
    }
    run_cmd(&mut pytest).with_context(|| format!("the {} plugin tests failed", cloud.title()))
}

/// Local-cloud credentials and region, for any command that talks to a local cloud. Both
/// clouds take `test` as their root caller (ministack: account 000000000000).
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
    ]
}

fn port_in_use(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// The cloud's health document, or `None` if nothing (or not that cloud) answers.
fn health(cloud: Cloud) -> Option<serde_json::Value> {
    let addr: SocketAddr = cloud.addr().parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\n\r\n",
        cloud.health_path(),
        cloud.addr()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("services")?;
    Some(value)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Cloud, LocalCloud, cpu_of, looks_like};

    #[test]
    fn cpu_time_is_user_plus_system_after_the_command_name() {
        let stat = "4242 (python -m x) S 1 4242 4242 0 -1 4194560 5 0 0 0 1234 566 7 8 20 0";
        assert_eq!(cpu_of(stat, 100), Some(Duration::from_millis(18_000)));
        assert_eq!(cpu_of(stat, 0), None);
        assert_eq!(cpu_of("4242 (python) S 1", 100), None);
    }

    const RUNNING: &str = "4242 (python) S 1 4242 4242 0 -1 4194560";

    #[test]
    fn a_process_still_in_exec_counts_as_starting() {
        assert!(looks_like("localstack.runtime.main", RUNNING, b""));
    }

    #[test]
    fn each_cloud_is_recognised_and_others_are_not() {
        let localstack = Cloud::LocalStack.marker();
        let ministack = Cloud::Ministack.marker();
        assert!(looks_like(
            localstack,
            RUNNING,
            b"python\0-m\0localstack.runtime.main\0"
        ));
        assert!(looks_like(
            ministack,
            RUNNING,
            b"python\0-m\0orderflow_ministack\0"
        ));
        assert!(!looks_like(
            ministack,
            RUNNING,
            b"python\0-m\0localstack.runtime.main\0"
        ));
        assert!(!looks_like(localstack, RUNNING, b"sleep\0forever\0"));
        assert!(!looks_like(localstack, "4242 (python) Z 1 4242", b""));
        assert!(!looks_like(localstack, "", b""));
    }

    #[test]
    fn the_cloud_flag_is_taken_wherever_it_is() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (cloud, rest) = Cloud::take_flag(&args(&["up", "--cloud", "ministack"])).unwrap();
        assert_eq!(cloud, Cloud::Ministack);
        assert_eq!(rest, args(&["up"]));
        let (cloud, _) = Cloud::take_flag(&args(&["status"])).unwrap();
        assert_eq!(cloud, Cloud::LocalStack);
        let unknown = Cloud::take_flag(&args(&["--cloud", "moto"]))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            unknown.as_deref(),
            Some("unknown cloud `moto`: the clouds are localstack and ministack")
        );
        assert!(Cloud::take_flag(&args(&["--cloud"])).is_err());
    }
}
