//! `cargo xtask demo`: the deployed system, shown, through the `orderflow`
//! CLI's library.

use std::time::Duration;

use anyhow::{Result, bail};
use orderflow::cmd::seed::{STOCK_FILE, seed_file};
use orderflow::follow::follow;
use orderflow::order::new_order_id;
use orderflow::{Flow, OrderSpec, Outcome};
use orderflow_contracts::Sku;
use tokio::runtime::Runtime;

use crate::{deploy, project_root, target};

/// How long an order may take to settle before the demo gives up on it.
const SETTLE: Duration = Duration::from_secs(90);

/// `cargo xtask demo`: up, build, deploy, seed, place a handful of orders,
/// watch them live, and sum up.
pub fn demo(args: &[String]) -> Result<()> {
    let (target, rest) = target::parse(args)?;
    if let Some(unknown) = rest.first() {
        bail!("unknown argument `{unknown}` (usage: cargo xtask demo [--stack-name NAME])");
    }
    let Some(cloud) = target::our_cloud(&target) else {
        bail!("the demo runs on a local cloud it starts; use `orderflow place-order --aws` on AWS");
    };
    step("1/4 local cloud, build and deploy (the same sam build + deploy as AWS)");
    deploy::deploy_local(&target.stack, cloud)?;
    let (runtime, flow) = target::connect(&target)?;
    step("2/4 seed stock");
    runtime.block_on(seed_file(&flow, &project_root().join(STOCK_FILE)))?;

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
    let results = runtime.block_on(follow(&flow, &messages, SETTLE))?;
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
        Ok(Some(hold)) if hold.status == orderflow::HoldStatus::Open
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

fn step(name: &str) {
    println!("\n==> {name}");
}
