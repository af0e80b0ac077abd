//! `cargo xtask chaos`: mixed orders through a stack whose functions crash
//! on purpose, then every invariant checked.
//!
//! The stack (`orderflow-chaos` unless `--stack-name`) is the last local
//! build, deployed to LocalStack with the template's `Faults` parameter
//! set, so each function process aborts at random right after a load,
//! after a commit or after a publish (`orderflow_runtime::faults`). Besides
//! those, a killer thread SIGKILLs one of the stack's function processes
//! every `--kill-every` seconds, wherever it is: the points nobody
//! thought of. A crashed invocation never answers, so SQS delivers its
//! whole batch again once the queue's visibility timeout is over: 10 s
//! on this stack (`VISIBILITY`), where AWS's is 60.
//!
//! Then, for `--orders N` orders in the load test's mix (shipped, declined,
//! out of stock, and a scarce sku), it fails unless:
//! - every order settles as the mix says (none lost);
//! - no order has two authorizations, captures, voids, reservations,
//!   releases or shipments (distinct event ids of one kind);
//! - the provider's ledger holds no open hold, and captured exactly the
//!   shipped orders' totals;
//! - each sku lost exactly the units shipped;
//! - none of the orders is in a DLQ, once the queues have drained;
//! - every fault point struck at least once (else the run proved nothing
//!   about it).

use std::collections::BTreeMap;
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use orderflow::batch::Plan;
use orderflow::{Cloud, Flow, Target};
use orderflow_contracts::EventKind;
use orderflow_runtime::faults::Point;

use crate::bench_flow::Mixed;
use crate::{deploy, project_root, target};

const USAGE: &str = "\
usage: cargo xtask chaos [--orders N] [--faults SPEC] [--kill-every SECS] [--stack-name NAME]

  --orders N         mixed orders to place (default 60; 10000 is the benchmark)
  --faults SPEC      crash chances per point (default load=0.03,commit=0.03,publish=0.03)
  --kill-every SECS  SIGKILL one of the stack's function processes this often
                     (default 4; 0 for never)
  --stack-name NAME  the chaos stack (default orderflow-chaos), deployed from
                     the last local build (built first if there is none)";

/// The chaos stack's `QueueVisibilityTimeout`: how soon a crashed batch
/// comes back. The template's floor, the function timeout (10 s): a run
/// spends most of its time waiting for crashed batches to come back (at
/// 3% a point, a batch of ten crashes about every third receive), and the
/// default, 60 s, would spend nearly all of it so.
const VISIBILITY: Duration = Duration::from_secs(10);

/// The events that are an effect: each at most once per order.
const ONCE: [EventKind; 6] = [
    EventKind::PaymentAuthorized,
    EventKind::PaymentCaptured,
    EventKind::PaymentVoided,
    EventKind::StockReserved,
    EventKind::StockReleased,
    EventKind::ShipmentScheduled,
];

/// How a chaos run goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Orders to place.
    pub orders: usize,
    /// `ORDERFLOW_FAULTS` for the stack.
    pub faults: String,
    /// How often to SIGKILL a function process; `None` for never.
    pub kill_every: Option<Duration>,
    /// The chaos stack.
    pub stack: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            orders: 60,
            faults: "load=0.03,commit=0.03,publish=0.03".into(),
            kill_every: Some(Duration::from_secs(4)),
            stack: "orderflow-chaos".into(),
        }
    }
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| anyhow::anyhow!("{flag} {value:?} is not a number\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--orders" => options.orders = number()? as usize,
                "--faults" => options.faults = value.clone(),
                "--kill-every" => {
                    options.kill_every = Some(number()?).filter(|&s| s > 0).map(Duration::from_secs)
                }
                "--stack-name" => options.stack = value.clone(),
                other => bail!("unknown flag {other:?}\n\n{USAGE}"),
            }
        }
        ensure!(options.orders > 0, "--orders must be at least 1");
        ensure!(
            !options.faults.contains(' '),
            "--faults {:?}: no spaces (it is one template parameter)",
            options.faults
        );
        Ok(options)
    }

    /// How long the orders may take to settle: two minutes, half a second
    /// an order, and the crashes' visibility timeouts on top.
    fn within(&self) -> Duration {
        Duration::from_secs(300) + Duration::from_millis(500) * self.orders as u32
    }
}

/// Runs `cargo xtask chaos`.
pub fn main(args: &[String]) -> Result<()> {
    run(&Options::parse(args)?)
}

/// Deploys the chaos stack, runs the orders through it under crashes, and
/// checks every invariant.
pub fn run(options: &Options) -> Result<()> {
    let record = project_root().join("target/chaos/faults.log");
    fs::create_dir_all(record.parent().context("the record has a folder")?)?;
    if record.exists() {
        fs::remove_file(&record)
            .with_context(|| format!("could not clear {}", record.display()))?;
    }
    let cloud = Cloud::LocalStack;
    eprintln!(
        "chaos: deploying `{}` to {} with Faults={}",
        options.stack,
        cloud.key(),
        options.faults
    );
    deploy::deploy_built_local_with(
        &options.stack,
        cloud,
        &[
            format!("Faults={}", options.faults),
            format!("FaultsRecord={}", record.display()),
            format!("QueueVisibilityTimeout={}", VISIBILITY.as_secs()),
        ],
    )?;
    let target = Target {
        stack: options.stack.clone(),
        ..Target::local(cloud)
    };
    let (runtime, flow) = target::connect(&target)?;
    let started = Instant::now();
    let killer = Killer::start(&options.stack, options.kill_every);
    let placed = runtime.block_on(place(&flow, options));
    let kills = killer.stop();
    let mixed = placed?;
    let settled = started.elapsed();
    runtime.block_on(drain(&flow, Duration::from_secs(300)))?;
    runtime.block_on(mixed.check_stock_and_dead_letters(&flow))?;
    let copies = effects_once(&flow, &mixed)?;
    let strikes = strikes(&record)?;
    println!(
        "chaos: {} orders settled in {:.0} s under {} injected crashes {strikes:?} and {} \
         SIGKILLs {kills:?}; {}; outcomes {:?}; {copies} re-published copies on the bus",
        options.orders,
        settled.as_secs_f64(),
        strikes.values().sum::<usize>(),
        kills.values().sum::<usize>(),
        mixed.batch.figures(),
        mixed.batch.outcomes,
    );
    let idle: Vec<&str> = Point::ALL
        .into_iter()
        .map(Point::name)
        .filter(|p| !strikes.contains_key(*p))
        .collect();
    ensure!(
        idle.is_empty(),
        "no crash was injected at {idle:?}: the run proves nothing about them (raise --faults \
         or --orders)"
    );
    ensure!(
        options.kill_every.is_none() || !kills.is_empty(),
        "no function process of `{}` was found to SIGKILL (does the cloud run them as host \
         processes?)",
        options.stack
    );
    println!(
        "chaos: 0 lost, 0 effects twice, 0 open holds, captured = shipped, stock exact, \
         0 of these orders in a DLQ"
    );
    Ok(())
}

async fn place(flow: &Flow, options: &Options) -> Result<Mixed> {
    let plan = Plan {
        within: options.within(),
        rate: None,
    };
    Mixed::place(flow, "chaos", options.orders, plan).await
}

/// Waits until no message is waiting or in flight in any function's queue:
/// the redeliveries of crashed batches are done.
async fn drain(flow: &Flow, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let busy: Vec<_> = flow
            .backlog()
            .await?
            .into_iter()
            .filter(|(_, waiting, in_flight)| waiting + in_flight > 0)
            .collect();
        if busy.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the queues did not drain within {timeout:?}: {busy:?} (function, waiting, in flight)"
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Fails if any order shows two events of one effect kind under different
/// ids; returns how many copies of events reached the bus again under the
/// same id (re-published outboxes, which consumers drop as duplicates).
fn effects_once(flow: &Flow, mixed: &Mixed) -> Result<usize> {
    let mut copies = 0;
    for order in &mixed.orders {
        let events = flow.audit().of(order.order_id());
        let mut ids: BTreeMap<&str, Vec<_>> = BTreeMap::new();
        for seen in &events {
            if let (Some(kind), Some(id)) = (seen.kind(), seen.event_id.as_deref()) {
                let ids = ids.entry(kind.detail_type()).or_default();
                if ids.contains(&id) {
                    copies += 1;
                } else {
                    ids.push(id);
                }
            }
        }
        for kind in ONCE {
            let n = ids.get(kind.detail_type()).map_or(0, Vec::len);
            ensure!(
                n <= 1,
                "order {} has {n} distinct {} events",
                order.order_id(),
                kind.detail_type()
            );
        }
    }
    Ok(copies)
}

/// The injected crashes the record holds, by point.
fn strikes(record: &Path) -> Result<BTreeMap<String, usize>> {
    let text = match fs::read_to_string(record) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", record.display())),
    };
    let mut by_point = BTreeMap::new();
    for line in text.lines() {
        let point = line.split_whitespace().next().and_then(Point::named);
        let point =
            point.with_context(|| format!("{}: unexpected line {line:?}", record.display()))?;
        *by_point.entry(point.name().to_owned()).or_insert(0) += 1;
    }
    Ok(by_point)
}

/// SIGKILLs one of a stack's function processes now and then.
struct Killer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<BTreeMap<String, usize>>>,
}

impl Killer {
    fn start(stack: &str, every: Option<Duration>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = every.map(|every| {
            let (stop, prefix) = (stop.clone(), format!("AWS_LAMBDA_FUNCTION_NAME={stack}-"));
            thread::spawn(move || {
                let mut kills = BTreeMap::new();
                while !sleep_unless(&stop, every) {
                    if let Some((pid, function)) = pick(&function_processes(&prefix)) {
                        let killed = Command::new("kill").args(["-KILL", &pid]).status();
                        if killed.is_ok_and(|s| s.success()) {
                            *kills.entry(function).or_insert(0) += 1;
                        }
                    }
                }
                kills
            })
        });
        Self { stop, thread }
    }

    /// Stops killing; returns the kills by function.
    fn stop(mut self) -> BTreeMap<String, usize> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// Sleeps `total`, waking early when `stop` is set; returns whether it is.
fn sleep_unless(stop: &AtomicBool, total: Duration) -> bool {
    let until = Instant::now() + total;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    stop.load(Ordering::Relaxed)
}

/// One of `candidates`, at random.
fn pick<T: Clone>(candidates: &[T]) -> Option<T> {
    let draw = RandomState::new().hash_one(0u8) as usize;
    candidates.get(draw % candidates.len().max(1)).cloned()
}

/// `(pid, function)` of every process whose environment has `prefix`
/// (`AWS_LAMBDA_FUNCTION_NAME=<stack>-`): the local cloud runs each
/// function as a host process.
fn function_processes(prefix: &str) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid = entry.ok()?.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
            let name = environ
                .split(|&b| b == 0)
                .find_map(|var| var.strip_prefix(prefix.as_bytes()))?;
            Some((pid, String::from_utf8_lossy(name).into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Options> {
        Options::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_then_each_flag() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let options = parse(&[
            "--orders",
            "10000",
            "--faults",
            "commit=0.5",
            "--kill-every",
            "0",
            "--stack-name",
            "c",
        ])
        .unwrap();
        assert_eq!(options.orders, 10_000);
        assert_eq!(options.faults, "commit=0.5");
        assert_eq!(options.kill_every, None);
        assert_eq!(options.stack, "c");
    }

    #[test]
    fn bad_flags_are_refused_by_name() {
        for (args, says) in [
            (&["--orders", "0"][..], "at least 1"),
            (&["--orders", "x"], "not a number"),
            (&["--faults", "load=0.1, commit=0.1"], "no spaces"),
            (&["--kill-every"], "needs a value"),
            (&["--what", "1"], "unknown flag"),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(says), "{args:?}: {err}");
        }
    }

    #[test]
    fn strikes_are_counted_by_point_and_a_stray_line_is_an_error() {
        let dir = std::env::temp_dir().join(format!("orderflow-chaos-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let record = dir.join("faults.log");
        assert!(strikes(&record).unwrap().is_empty());
        fs::write(
            &record,
            "load payment 1\ncommit shipping 2\nload inventory 3\n",
        )
        .unwrap();
        let counted = strikes(&record).unwrap();
        assert_eq!(counted["load"], 2);
        assert_eq!(counted["commit"], 1);
        fs::write(&record, "answer payment 1\n").unwrap();
        assert!(strikes(&record).is_err());
    }

    #[test]
    fn this_process_is_found_by_its_environment() {
        // The test's own environment: a variable every process here has.
        let found = function_processes("PATH=");
        let me = std::process::id().to_string();
        assert!(found.iter().any(|(pid, _)| *pid == me), "{found:?}");
        assert!(function_processes("AWS_LAMBDA_FUNCTION_NAME=no-such-stack-").is_empty());
    }
}
