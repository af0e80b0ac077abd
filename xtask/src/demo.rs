//! `cargo xtask demo`, `place-order` and `seed`: the deployed system, shown.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use orderflow_contracts::{Message, Sku};
use orderflow_flow::order::{self, new_order_id};
use orderflow_flow::{Flow, OrderSpec, Outcome, Seen};
use tokio::runtime::Runtime;

use crate::target::Target;
use crate::{deploy, project_root};

/// The stock `seed` writes, by sku.
const STOCK_FILE: &str = "events/stock.json";
/// How long an order may take to settle before the demo gives up on it.
const SETTLE: Duration = Duration::from_secs(90);

/// `cargo xtask demo`: up, build, deploy, seed, place a handful of orders,
/// watch them live, and sum up.
pub fn demo(args: &[String]) -> Result<()> {
    let (target, rest) = Target::parse(args)?;
    if let Some(unknown) = rest.first() {
        bail!("unknown argument `{unknown}` (usage: cargo xtask demo [--stack-name NAME])");
    }
    if target.aws {
        bail!("the demo runs on the local cloud; use `cargo xtask place-order --aws` on AWS");
    }
    step("1/4 local cloud, build and deploy (the same sam build + deploy as AWS)");
    deploy::deploy_local(&target.stack, target.cloud)?;
    let (runtime, flow) = target.connect()?;
    step("2/4 seed stock");
    runtime.block_on(seed_file(&flow))?;

    step("3/4 place orders");
    let orders = demo_orders()?;
    let messages = orders
        .iter()
        .map(|(o, _)| o.message())
        .collect::<Result<Vec<_>>>()?;
    for (message, (_, expected)) in messages.iter().zip(&orders) {
        println!("  {}  expect {expected}", message.meta.order_id);
    }

    step("4/4 live timeline (every event on the bus, as the audit queue delivers it)");
    let results = runtime.block_on(follow(&flow, &messages))?;
    sum_up(&runtime, &flow, &orders, &results)
}

/// The demo's orders, each with the outcome it should come to.
fn demo_orders() -> Result<[(OrderSpec, Outcome); 4]> {
    let stock = |sku: &str| Sku::new(sku).map_err(anyhow::Error::msg);
    let (mug, tea, kettle) = (
        stock("SKU-RED-MUG")?,
        stock("SKU-TEA-250G")?,
        stock("SKU-GOLD-KETTLE")?,
    );
    Ok([
        (
            OrderSpec::new(new_order_id("mug-and-tea")?, "tok_visa_4242")
                .line(&mug, 2, 1250)
                .line(&tea, 1, 899),
            Outcome::Shipped,
        ),
        (
            OrderSpec::new(new_order_id("tea")?, "tok_mastercard_5555").line(&tea, 3, 899),
            Outcome::Shipped,
        ),
        (
            OrderSpec::new(new_order_id("declined")?, "tok_decline_card").line(&mug, 1, 1250),
            Outcome::Declined,
        ),
        (
            OrderSpec::new(new_order_id("no-kettle")?, "tok_visa_4242").line(&kettle, 1, 15900),
            Outcome::OutOfStock,
        ),
    ])
}

/// Prints a table of how each order settled beside the provider's ledger,
/// and fails unless every order settled as expected.
fn sum_up(
    runtime: &Runtime,
    flow: &Flow,
    orders: &[(OrderSpec, Outcome)],
    results: &[(Outcome, Option<Duration>)],
) -> Result<()> {
    println!(
        "\n{:<34} {:<13} {:<13} {:>9}  provider's ledger",
        "order", "outcome", "expected", "latency"
    );
    let mut failed = 0;
    let mut open = 0;
    for ((order, expected), (outcome, latency)) in orders.iter().zip(results) {
        let (ok, held) = summary_row(runtime, flow, order, *expected, *outcome, *latency);
        open += usize::from(held);
        failed += usize::from(!ok);
    }
    if failed > 0 {
        bail!(
            "{failed} of {} orders did not settle as expected ({open} open hold(s) at the provider)",
            orders.len()
        );
    }
    println!(
        "\nAll {} orders settled as expected; {open} open holds at the provider.",
        orders.len()
    );
    Ok(())
}

/// Prints one order's row of the summary table. Returns whether it settled
/// as expected, and whether the provider still holds an open hold for it.
fn summary_row(
    runtime: &Runtime,
    flow: &Flow,
    order: &OrderSpec,
    expected: Outcome,
    outcome: Outcome,
    latency: Option<Duration>,
) -> (bool, bool) {
    // What the provider says, not what our events say: captured for a
    // shipped order, declined, voided or never asked otherwise.
    let ledger =
        runtime.block_on(flow.check_ledger(order.order_id(), outcome, order.total_minor()));
    let provider = match &ledger {
        Ok(Some(hold)) => format!("{} {}", hold.status, hold.amount_minor.0),
        Ok(None) => "never asked".to_owned(),
        Err(err) => format!("{err:#}"),
    };
    let held = matches!(
        runtime.block_on(flow.hold(order.order_id())),
        Ok(Some(hold)) if hold.status == orderflow_flow::HoldStatus::Open
    );
    let ok = outcome == expected && ledger.is_ok();
    let latency = latency
        .map(|l| format!("{:.2}s", l.as_secs_f64()))
        .unwrap_or_else(|| "-".into());
    println!(
        "{:<34} {:<13} {:<13} {:>9}  {provider}{}",
        order.order_id().as_str(),
        outcome.to_string(),
        expected.to_string(),
        latency,
        if ok { "" } else { "  <- not as expected" }
    );
    (ok, held)
}

/// `cargo xtask place-order [--file F] [--as-is]`: places one order and
/// follows it until it settles.
pub fn place_order(args: &[String]) -> Result<()> {
    let (target, rest) = Target::parse(args)?;
    let mut file = "events/payment/order-placed.eventbridge.json".to_owned();
    let mut fresh = true;
    let mut rest = rest.into_iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--file" => file = rest.next().context("--file needs a path")?,
            "--as-is" => fresh = false,
            other => bail!(
                "unknown argument `{other}` (usage: cargo xtask place-order [--file F] [--as-is] [--aws ...])"
            ),
        }
    }
    let path = project_root().join(&file);
    let json = std::fs::read_to_string(&path).with_context(|| format!("reading {file}"))?;
    let message = order::from_sample(&json, fresh).with_context(|| format!("in {file}"))?;
    let (runtime, flow) = target.connect()?;
    println!("placing {} from {file}", message.meta.order_id);
    let results = runtime.block_on(follow(&flow, std::slice::from_ref(&message)))?;
    match results.first() {
        Some((Outcome::Pending, _)) | None => bail!("the order did not settle within {SETTLE:?}"),
        Some((outcome, latency)) => {
            let latency = latency
                .map(|l| format!(" in {:.2}s", l.as_secs_f64()))
                .unwrap_or_default();
            println!("{}: {outcome}{latency}", message.meta.order_id);
            Ok(())
        }
    }
}

/// `cargo xtask seed [--file F]`: sets the stock of every sku in the file.
pub fn seed(args: &[String]) -> Result<()> {
    let (target, rest) = Target::parse(args)?;
    if let Some(unknown) = rest.first() {
        bail!(
            "unknown argument `{unknown}` (usage: cargo xtask seed [--aws ...] [--stack-name NAME])"
        );
    }
    let (runtime, flow) = target.connect()?;
    runtime.block_on(seed_file(&flow))
}

async fn seed_file(flow: &Flow) -> Result<()> {
    let path = project_root().join(STOCK_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {STOCK_FILE}"))?;
    let stock: HashMap<String, u64> = serde_json::from_str(&text)
        .with_context(|| format!("{STOCK_FILE}: want {{\"SKU\": quantity}}"))?;
    let mut skus: Vec<_> = stock.into_iter().collect();
    skus.sort();
    for (sku, quantity) in skus {
        let sku = Sku::new(sku.as_str()).map_err(|e| anyhow::anyhow!("{STOCK_FILE}: {e}"))?;
        flow.set_stock(&sku, quantity).await?;
        println!("  {:<20} {quantity:>5} in stock", sku.as_str());
    }
    Ok(())
}

/// Places the orders, prints their events as they arrive, and returns each
/// order's outcome and latency (first put to the event that settled it).
async fn follow(flow: &Flow, messages: &[Message]) -> Result<Vec<(Outcome, Option<Duration>)>> {
    let audit = flow.audit();
    let mut read = audit.len();
    let started = Instant::now();
    flow.place_all(messages).await?;
    let ours: HashMap<&str, usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.meta.order_id.as_str(), i))
        .collect();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut results = vec![(Outcome::Pending, None); messages.len()];
    loop {
        for seen in audit.since(read) {
            read += 1;
            if seen
                .order_id
                .as_deref()
                .is_some_and(|o| ours.contains_key(o))
            {
                println!("{}", timeline_line(&seen, started, &names));
                if let Some(id) = &seen.event_id {
                    names.insert(id.clone(), seen.detail_type.clone());
                }
            }
        }
        for (i, message) in messages.iter().enumerate() {
            if results[i].0 != Outcome::Pending {
                continue;
            }
            let order = &message.meta.order_id;
            let outcome = flow.outcome(order).await?;
            if outcome != Outcome::Pending {
                let last = audit
                    .of(order)
                    .last()
                    .map(|s| s.at.saturating_duration_since(started));
                println!("  = {order}: {outcome}");
                results[i] = (outcome, last);
            }
        }
        if results.iter().all(|(o, _)| *o != Outcome::Pending) || started.elapsed() > SETTLE {
            return Ok(results);
        }
        audit.changed(read, Duration::from_millis(500)).await;
    }
}

/// `  +  0.84s  ord-tea-1a2b3c4d   inventory  StockReserved  <- OrderPlaced`
fn timeline_line(seen: &Seen, started: Instant, names: &HashMap<String, String>) -> String {
    let service = seen
        .source
        .strip_prefix("orderflow.")
        .unwrap_or(&seen.source);
    let mut line = format!(
        "  +{:>6.2}s  {:<30} {:<10} {:<18}",
        seen.at.saturating_duration_since(started).as_secs_f64(),
        seen.order_id.as_deref().unwrap_or("?"),
        service,
        seen.detail_type
    );
    let cause = seen.message.as_ref().and_then(|m| m.meta.causation_id);
    if let Some(cause) = cause.and_then(|c| names.get(&c.to_string())) {
        let _ = write!(line, " <- {cause}");
    }
    line.trim_end().to_owned()
}

fn step(name: &str) {
    println!("\n==> {name}");
}
