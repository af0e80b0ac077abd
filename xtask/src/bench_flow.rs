//! `cargo xtask bench flow`: orders through a deployed stack, as the load
//! test places them, at any size: throughput and each order's settle time.
//!
//! `--orders N` (default 1000) orders in the load test's mix (a fifth
//! declined, a fifth for a sku with 10 units, the rest shipped), placed at
//! once, or at `--rate R` orders per second to measure settle times at a
//! steady load rather than the drain of a backlog. Every order must settle
//! within `--within SECS` of the first put (default 120 s plus half a
//! second an order), its payment must agree with the provider's ledger,
//! the outcomes and stock must add up, and none may be in a DLQ; otherwise
//! the bench fails. The stack is the target flags' (`--cloud ministack`,
//! `--aws`, …), deployed beforehand with `cargo xtask deploy`. On a local
//! cloud it also prints the CPU the cloud's own process spent on the run:
//! the cloud is one process, so that bounds what it can settle a second.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use orderflow::batch::{Batch, Plan, mixed_orders, mixed_outcomes};
use orderflow::order::new_sku;
use orderflow::{Flow, OrderSpec};
use orderflow_contracts::Sku;

use crate::cloud::LocalCloud;
use crate::target;

const USAGE: &str = "usage: cargo xtask bench flow [--orders N] [--rate ORDERS_PER_S] \
                     [--within SECS] [--cloud NAME | --aws …] [--stack-name NAME]";

/// Units of the scarce sku: most of its orders end out of stock.
const SCARCE_UNITS: usize = 10;

/// Runs `cargo xtask bench flow`.
pub fn main(args: &[String]) -> Result<()> {
    let (target, rest) = target::parse(args)?;
    let options = Options::parse(&rest)?;
    let (runtime, flow) = target::connect(&target)?;
    eprintln!(
        "bench flow: {} orders on {}{}",
        options.orders,
        target.describe(),
        options
            .rate
            .map(|r| format!(" at {r} orders/s"))
            .unwrap_or_else(|| ", placed at once".into())
    );
    // A local cloud is one process: its CPU per order bounds the throughput.
    let cloud = target::our_cloud(&target);
    let cpu_before = cloud.and_then(LocalCloud::cpu_time);
    runtime.block_on(async {
        let plan = Plan {
            within: options.within,
            rate: options.rate,
        };
        let run = Mixed::place(&flow, "bench", options.orders, plan).await?;
        run.check_stock_and_dead_letters(&flow).await?;
        println!("{} orders: {}", options.orders, run.batch.figures());
        let used = cloud
            .and_then(LocalCloud::cpu_time)
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        if let (Some(cloud), Some(used)) = (cloud, used) {
            println!(
                "{}",
                cloud_limit(
                    cloud.title(),
                    used,
                    options.orders,
                    run.batch.orders_per_second()
                )
            );
        }
        Ok(())
    })
}

/// What a local cloud's CPU over a run says of its throughput: at one core,
/// `orders` over the CPU seconds they cost it is the most it can settle a
/// second, and the run reached `rate` of that. The CPU counts the whole
/// run (seeding, placing, the checks after), so the share is low, if
/// anything.
fn cloud_limit(title: &str, used: Duration, orders: usize, rate: f64) -> String {
    let per_order = used.as_secs_f64() / orders.max(1) as f64;
    let limit = 1.0 / per_order.max(1e-6);
    format!(
        "{title}'s own process used {:.1} s of CPU over the run, {:.0} ms an order: one core \
         settles {limit:.1} orders/s at most, and this run reached {:.0}% of that",
        used.as_secs_f64(),
        per_order * 1000.0,
        100.0 * rate / limit
    )
}

/// Mixed orders placed on a stack and settled as they must: the bench's
/// run, and the chaos suite's.
pub struct Mixed {
    /// The orders.
    pub orders: Vec<OrderSpec>,
    /// How they went.
    pub batch: Batch,
    plenty: (Sku, u64, usize),
    scarce: (Sku, u64, usize),
}

impl Mixed {
    /// Seeds two fresh skus (`n` units of one, [`SCARCE_UNITS`] of the
    /// other), places `n` orders in the load test's mix as `plan` says,
    /// and fails unless every order settles as the mix must, each agreeing
    /// with the provider's ledger.
    pub async fn place(flow: &Flow, label: &str, n: usize, plan: Plan) -> Result<Self> {
        let plenty = new_sku(&label.to_uppercase())?;
        let scarce = new_sku(&format!("{}SCARCE", label.to_uppercase()))?;
        flow.set_stock(&plenty, n as u64).await?;
        flow.set_stock(&scarce, SCARCE_UNITS as u64).await?;
        let orders = mixed_orders(label, n, &plenty, &scarce)?;
        let batch = Batch::place(flow, &orders, &format!("{n} mixed orders"), plan).await?;
        let (want, plenty_shipped, scarce_shipped) = mixed_outcomes(n, SCARCE_UNITS);
        ensure!(
            batch.outcomes == want,
            "outcomes {:?}, want {want:?}",
            batch.outcomes
        );
        Ok(Self {
            orders,
            batch,
            plenty: (plenty, n as u64, plenty_shipped),
            scarce: (scarce, SCARCE_UNITS as u64, scarce_shipped),
        })
    }

    /// Fails unless each sku lost exactly the units shipped, and none of
    /// the orders is in a DLQ.
    pub async fn check_stock_and_dead_letters(&self, flow: &Flow) -> Result<()> {
        for (sku, units, shipped) in [&self.plenty, &self.scarce] {
            let left = flow.stock(sku).await?;
            ensure!(
                left == Some(*units as i64 - *shipped as i64),
                "{sku}: {left:?} units left, want {units} less the {shipped} shipped"
            );
        }
        flow.none_dead_lettered(&self.orders).await
    }
}

/// The bench's own flags.
#[derive(Debug, PartialEq)]
struct Options {
    orders: usize,
    rate: Option<f64>,
    within: Duration,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut orders = 1000;
        let mut rate = None;
        let mut within = None;
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"));
            match flag.as_str() {
                "--orders" => orders = number(flag, value?)?,
                "--rate" => rate = Some(number::<f64>(flag, value?)?),
                "--within" => within = Some(Duration::from_secs(number(flag, value?)?)),
                other => bail!("unknown flag {other:?}\n{USAGE}"),
            }
        }
        ensure!(orders > 0, "--orders must be at least 1");
        if let Some(rate) = rate {
            ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of orders per second"
            );
        }
        let placing = rate.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(orders as f64 / r)
        });
        let within = within.unwrap_or(
            Duration::from_secs(120) + Duration::from_millis(500) * orders as u32 + placing,
        );
        Ok(Self {
            orders,
            rate,
            within,
        })
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} {value:?} is not a number\n{USAGE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Options> {
        Options::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_clouds_cpu_per_order_gives_its_limit_at_one_core() {
        assert_eq!(
            cloud_limit("LocalStack", Duration::from_millis(19_400), 200, 9.3),
            "LocalStack's own process used 19.4 s of CPU over the run, 97 ms an order: one \
             core settles 10.3 orders/s at most, and this run reached 90% of that"
        );
    }

    #[test]
    fn defaults_to_a_thousand_orders_at_once() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.orders, 1000);
        assert_eq!(options.rate, None);
        assert_eq!(options.within, Duration::from_secs(620));
    }

    #[test]
    fn a_rate_adds_the_placing_time_to_the_deadline() {
        let options = parse(&["--orders", "100", "--rate", "10"]).unwrap();
        assert_eq!(options.within, Duration::from_secs(120 + 50 + 10));
        let options = parse(&["--within", "30"]).unwrap();
        assert_eq!(options.within, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for args in [
            &["--orders", "many"][..],
            &["--orders", "0"],
            &["--rate", "-1"],
            &["--rate", "inf"],
            &["--rate"],
            &["--fast", "1"],
        ] {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(args[0]), "{args:?}: {error}");
        }
    }
}
