//! `cargo xtask cloud up | down | status | logs | test`: the embedded local cloud.
//!
//! LocalStack runs in host mode (its Python runtime as a plain process, no Docker) on
//! 127.0.0.1:4566, from `.venv/localstack`, with orderflow's extension
//! (`infra/localstack/extension`) selected: DynamoDB backed by moto, and Lambda functions run
//! as host processes. Everything it writes lives under `.localstack/` (git-ignored).
//!
//! Every project command that needs AWS calls [`ensure_up`]; it is idempotent, and if a
//! LocalStack is already listening (a user's Docker one, say) it uses that one.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{project_root, run_cmd, venv};

/// The LocalStack version this project pins (`localstack-core` in the lock; the Docker image
/// tag for users who run LocalStack in Docker instead).
pub const LOCALSTACK_VERSION: &str = "4.13.1";
/// Where the local cloud answers.
pub const ENDPOINT: &str = "http://127.0.0.1:4566";
const ADDR: &str = "127.0.0.1:4566";
const LOCK: &str = "infra/localstack/requirements.lock";
const EXTENSION: &str = "infra/localstack/extension";
const TESTS: &str = "infra/localstack/tests";
/// How long LocalStack may take to answer its health check (it takes ~2 s here, 10–20 s on a
/// cold cache).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// LocalStack 4.x in host mode sometimes hangs after "Completed, bye!" (non-daemon
/// threads), so `down` sends SIGKILL after this grace period.
const STOP_GRACE: Duration = Duration::from_secs(15);

const USAGE: &str = "\
usage: cargo xtask cloud <command>

  up       install on first use, start LocalStack on 127.0.0.1:4566, wait until healthy
  down     stop the LocalStack that `up` started
  status   say what answers on 127.0.0.1:4566
  logs     print LocalStack's log (`logs -f` follows it)
  test     start the cloud and run the plugin tests (extra args go to pytest)
";

/// Entry point of `cargo xtask cloud …`.
pub fn main(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("up") => ensure_up().map(|_| ()),
        Some("down") => down(),
        Some("status") => status(),
        Some("logs") => logs(&args[1..]),
        Some("test") if args.len() == 1 => test(None),
        Some("test") => run_tests(None, &args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown cloud command `{other}`\n\n{USAGE}"),
    }
}

/// The files `up` and `down` share, all under `.localstack/`.
struct State {
    dir: PathBuf,
}

impl State {
    fn new() -> Self {
        State {
            dir: project_root().join(".localstack"),
        }
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.join("localstack.pid")
    }
    fn log_file(&self) -> PathBuf {
        self.dir.join("localstack.log")
    }
    fn lambda_pids(&self) -> PathBuf {
        self.dir.join("lambda-pids")
    }
    /// The pid that `up` started, if it is still that LocalStack.
    fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_localstack_process(pid).then_some(pid)
    }
}

/// Makes sure a LocalStack answers on 127.0.0.1:4566, starting ours if none does, and returns
/// its endpoint URL.
pub fn ensure_up() -> Result<String> {
    let state = State::new();
    if let Some(endpoint) = already_up(&state)? {
        return Ok(endpoint);
    }
    fs::create_dir_all(&state.dir)?;
    // Two commands bringing the cloud up at once would race on the install and the port.
    let _lock = StartLock::acquire(&state)?;
    if let Some(endpoint) = already_up(&state)? {
        return Ok(endpoint);
    }
    if port_in_use() {
        bail!(
            "port clash: something on {ADDR} accepts connections but is not LocalStack \
             (GET /_localstack/health does not answer). Stop it (`ss -ltnp 'sport = :4566'` \
             shows which process), then run `cargo xtask cloud up` again"
        );
    }
    let _ = fs::remove_file(state.pid_file());

    let python = install()?;
    fs::create_dir_all(state.lambda_pids())?;
    let log = fs::File::create(state.log_file())
        .with_context(|| format!("creating {}", state.log_file().display()))?;
    let started = Instant::now();
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "localstack.runtime.main"])
        .current_dir(&state.dir)
        .envs(localstack_env(&state.dir))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: it outlives this command, and a Ctrl-C in the terminal
        // that ran `up` does not reach it.
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    let pid = child.id();
    fs::write(state.pid_file(), format!("{pid}\n"))?;
    // The child is deliberately not waited for: it must outlive xtask.
    drop(child);
    wait_ready(&state, pid, Some(started))?;
    eprintln!(
        "xtask: local cloud up on {ENDPOINT}: LocalStack {LOCALSTACK_VERSION} in host mode, \
         pid {pid}, ready in {:.1} s (log: .localstack/localstack.log)",
        started.elapsed().as_secs_f64()
    );
    Ok(ENDPOINT.to_string())
}

/// The endpoint, if a LocalStack already answers there (ours or not) or ours is starting.
fn already_up(state: &State) -> Result<Option<String>> {
    if let Some(health) = health() {
        match state.running_pid() {
            Some(pid) => {
                wait_ready(state, pid, None)?;
                eprintln!("xtask: local cloud already up on {ENDPOINT} (pid {pid})");
            }
            None => {
                let version = health
                    .get("version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?");
                eprintln!(
                    "xtask: using the LocalStack {version} already listening on {ENDPOINT} \
                     (not started by xtask, so `cloud down` leaves it alone)"
                );
                if !version.starts_with(LOCALSTACK_VERSION) {
                    eprintln!("xtask: note: this project pins LocalStack {LOCALSTACK_VERSION}");
                }
            }
        }
        return Ok(Some(ENDPOINT.to_string()));
    }
    if let Some(pid) = state.running_pid() {
        // Ours, still starting (or wedged): wait for it rather than start a second one.
        wait_ready(state, pid, None)?;
        return Ok(Some(ENDPOINT.to_string()));
    }
    Ok(None)
}

/// Held while `up` installs and starts LocalStack: `.localstack/starting` names the holder's
/// pid, and is removed when the holder is done (or found dead).
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
    vec![
        ("GATEWAY_LISTEN", ADDR.to_string()),
        // Queue URLs like http://127.0.0.1:4566/queue/…: *.localhost.localstack.cloud does
        // not resolve offline.
        ("LOCALSTACK_HOST", ADDR.to_string()),
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
        ("ORDERFLOW_LOCALSTACK_STATE", dir),
        ("PYTHONUNBUFFERED", "1".to_string()),
    ]
}

/// Installs `.venv/localstack` from the lock, and the extension into it (editable), each only
/// when what it was installed from changed. Returns the venv's python.
fn install() -> Result<PathBuf> {
    let root = project_root();
    let venv = venv::ensure("localstack", LOCK)?;
    let python = venv.bin("python");
    if !python.exists() {
        // For example a venv whose base interpreter was removed or upgraded.
        bail!(
            "broken install: {} does not run; delete .venv/localstack and run \
             `cargo xtask cloud up` again",
            python.display()
        );
    }
    let extension = root.join(EXTENSION);
    let pyproject = fs::read_to_string(extension.join("pyproject.toml"))
        .with_context(|| format!("reading {EXTENSION}/pyproject.toml"))?;
    // The entry points live in the installed metadata, so a changed pyproject.toml (or a moved
    // checkout) needs a reinstall; the code itself is editable.
    let wanted = format!("{}\n{pyproject}", extension.display());
    let stamp = venv.dir.join(".orderflow-extension");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("xtask: installing the orderflow LocalStack extension into .venv/localstack");
        run_cmd(
            venv.pip_install()
                .args(["--no-deps", "--no-build-isolation", "-e"])
                .arg(&extension),
        )
        .context("installing the extension; delete .venv/localstack to start over")?;
        let check = Command::new(&python)
            .args([
                "-c",
                "import localstack.runtime.main, orderflow_localstack.process_executor",
            ])
            .env("OVERRIDE_IN_DOCKER", "0")
            .env("FILESYSTEM_ROOT", root.join(".localstack/filesystem"))
            .output()
            .context("running the venv's python")?;
        if !check.status.success() {
            bail!(
                "broken install: LocalStack does not import in .venv/localstack:\n{}\n\
                 Delete .venv/localstack and run `cargo xtask cloud up` again",
                String::from_utf8_lossy(&check.stderr).trim_end()
            );
        }
        fs::write(&stamp, wanted)?;
    }
    Ok(python)
}

/// Waits until LocalStack answers its health check and has said `Ready.`. Fails with the log's
/// tail if the process dies first.
fn wait_ready(state: &State, pid: u32, started: Option<Instant>) -> Result<()> {
    let since = started.unwrap_or_else(Instant::now);
    loop {
        if health().is_some() && log_says_ready(state) {
            return Ok(());
        }
        if !is_localstack_process(pid) {
            let _ = fs::remove_file(state.pid_file());
            bail!(
                "LocalStack exited during startup. The end of .localstack/localstack.log:\n{}\n\
                 If this looks like a broken install, delete .venv/localstack and run \
                 `cargo xtask cloud up` again",
                log_tail(state, 30)
            );
        }
        if since.elapsed() > START_TIMEOUT {
            bail!(
                "LocalStack (pid {pid}) did not become healthy within {} s; see \
                 .localstack/localstack.log, or run `cargo xtask cloud down` and retry. Its end:\n{}",
                START_TIMEOUT.as_secs(),
                log_tail(state, 30)
            );
        }
        sleep(Duration::from_millis(200));
    }
}

fn log_says_ready(state: &State) -> bool {
    fs::read_to_string(state.log_file())
        .map(|log| log.lines().any(|line| line.trim() == "Ready."))
        .unwrap_or(false)
}

fn log_tail(state: &State, lines: usize) -> String {
    let log = fs::read_to_string(state.log_file()).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Stops the LocalStack that `up` started (by its pid): SIGTERM, then SIGKILL after a grace
/// period. Lambda runtimes it leaves behind are killed too.
fn down() -> Result<()> {
    let state = State::new();
    match state.running_pid() {
        None => {
            let _ = fs::remove_file(state.pid_file());
            if health().is_some() {
                eprintln!(
                    "xtask: the LocalStack on {ENDPOINT} was not started by xtask; leaving it running"
                );
            } else {
                eprintln!("xtask: local cloud is not running");
            }
        }
        Some(pid) => {
            let started = Instant::now();
            signal(pid, "TERM");
            while is_localstack_process(pid) && started.elapsed() < STOP_GRACE {
                sleep(Duration::from_millis(100));
            }
            if is_localstack_process(pid) {
                eprintln!(
                    "xtask: LocalStack (pid {pid}) still running after {} s; sending SIGKILL",
                    STOP_GRACE.as_secs()
                );
                signal_group(pid, "KILL");
                while is_localstack_process(pid) && started.elapsed() < STOP_GRACE * 2 {
                    sleep(Duration::from_millis(100));
                }
            }
            let _ = fs::remove_file(state.pid_file());
            eprintln!(
                "xtask: local cloud stopped (pid {pid}, {:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    kill_leftover_lambdas(&state);
    Ok(())
}

/// Lambda runtimes run in their own sessions; the executor records each one's process group in
/// `.localstack/lambda-pids/<pgid>` (content: its bootstrap path) and removes it when it kills
/// the runtime. What is left after LocalStack stopped is killed here.
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

/// Whether `pid` is alive (not a zombie) and runs LocalStack: guards against a reused pid.
fn is_localstack_process(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    looks_like_localstack(&stat, &cmdline)
}

/// Whether a process, by its `/proc/<pid>/stat` and `cmdline`, is a live LocalStack.
fn looks_like_localstack(stat: &str, cmdline: &[u8]) -> bool {
    // The state field follows the parenthesised command name; no stat means no process.
    let live = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
    // Right after `spawn` returns, the kernel may not have set the new program's arguments yet
    // (the exec has released the parent, but /proc/<pid>/cmdline is not filled in): an empty
    // cmdline of a live process is one still starting.
    live && (cmdline.is_empty()
        || String::from_utf8_lossy(cmdline).contains("localstack.runtime.main"))
}

fn status() -> Result<()> {
    let state = State::new();
    let ours = state.running_pid();
    match health() {
        Some(health) => {
            let version = health
                .get("version")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            let services = health.get("services").and_then(|s| s.as_object());
            let running = services
                .map(|s| s.values().filter(|v| v.as_str() == Some("running")).count())
                .unwrap_or(0);
            let total = services.map(|s| s.len()).unwrap_or(0);
            let who = match ours {
                Some(pid) => format!("started by xtask, pid {pid}, log .localstack/localstack.log"),
                None => "not started by xtask".to_string(),
            };
            println!("up: LocalStack {version} on {ENDPOINT} ({who})");
            println!("services: {running} running, {total} available");
        }
        None => match ours {
            Some(pid) => {
                println!("starting: pid {pid} is not healthy yet (see `cargo xtask cloud logs`)")
            }
            None if port_in_use() => {
                println!("port clash: {ADDR} is taken by something that is not LocalStack")
            }
            None => {
                println!("down: nothing answers on {ENDPOINT} (`cargo xtask cloud up` starts it)")
            }
        },
    }
    Ok(())
}

fn logs(args: &[String]) -> Result<()> {
    let state = State::new();
    let log = state.log_file();
    if !log.exists() {
        bail!("no log yet: .localstack/localstack.log is written by `cargo xtask cloud up`");
    }
    if args.iter().any(|a| a == "-f" || a == "--follow") {
        run_cmd(Command::new("tail").args(["-n", "100", "-f"]).arg(&log))
    } else {
        print!("{}", fs::read_to_string(&log)?);
        Ok(())
    }
}

/// Starts the cloud and runs the plugin tests (`infra/localstack/tests`): ruff, then pytest.
///
/// `bootstrap` is a built orderflow function binary for the tests that run real code; without
/// it, ORDERFLOW_BOOTSTRAP from the environment is used, and those tests fail if neither is set.
pub fn test(bootstrap: Option<&Path>) -> Result<()> {
    run_tests(bootstrap, &[])
}

fn run_tests(bootstrap: Option<&Path>, extra: &[String]) -> Result<()> {
    let endpoint = ensure_up()?;
    let venv = venv::ensure("localstack", LOCK)?;
    let root = project_root();
    // The extension, tests and bench follow infra/localstack/ruff.toml.
    let python_dir = root.join("infra/localstack");
    run_cmd(
        Command::new(venv.bin("ruff"))
            .args(["check", "--no-cache"])
            .arg(&python_dir),
    )
    .context("infra/localstack: `ruff check --fix` fixes most of these")?;
    run_cmd(
        Command::new(venv.bin("ruff"))
            .args(["format", "--check", "--no-cache"])
            .arg(&python_dir),
    )
    .context("infra/localstack: run `.venv/localstack/bin/ruff format infra/localstack`")?;
    let mut pytest = Command::new(venv.bin("python"));
    pytest
        .args(["-m", "pytest", "-q"])
        .arg(root.join(TESTS))
        .args(extra)
        .current_dir(&root)
        .envs(aws_env(&endpoint));
    if let Some(bootstrap) = bootstrap {
        pytest.env("ORDERFLOW_BOOTSTRAP", root.join(bootstrap));
    }
    run_cmd(&mut pytest).context("the LocalStack plugin tests failed")
}

/// Local-cloud test credentials and region, for any command that talks to [`ENDPOINT`].
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
    ]
}

fn port_in_use() -> bool {
    addr().is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

fn addr() -> Option<SocketAddr> {
    ADDR.parse().ok()
}

/// `GET /_localstack/health`, or `None` if nothing (or not LocalStack) answers.
fn health() -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect_timeout(&addr()?, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /_localstack/health HTTP/1.0\r\nHost: 127.0.0.1:4566\r\n\r\n")
        .ok()?;
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
    use super::looks_like_localstack;

    const RUNNING: &str = "4242 (python) S 1 4242 4242 0 -1 4194560";

    #[test]
    fn a_process_still_in_exec_counts_as_starting() {
        assert!(looks_like_localstack(RUNNING, b""));
    }

    #[test]
    fn localstack_is_recognised_and_others_are_not() {
        assert!(looks_like_localstack(
            RUNNING,
            b"python\0-m\0localstack.runtime.main\0"
        ));
        assert!(!looks_like_localstack(RUNNING, b"sleep\0forever\0"));
        assert!(!looks_like_localstack("4242 (python) Z 1 4242", b""));
        assert!(!looks_like_localstack("", b""));
    }
}
