//! `orderflow trace`: one order's events from the archive, as a causation
//! tree, with its dead letters.

use anyhow::{Result, bail};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Args;
use orderflow_contracts::OrderId;

use super::rfc3339;
use crate::flow::Flow;
use crate::ops::parse_time;
use crate::progress;

/// Which order, and the window to search.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Trace {
    /// The order.
    #[arg(value_parser = order_id)]
    pub order_id: OrderId,
    /// The window's start: an RFC 3339 time or `now` (default: 24 hours
    /// ago).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// The window's end: an RFC 3339 time or `now` (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
}

fn order_id(text: &str) -> Result<OrderId, String> {
    OrderId::new(text)
}

impl Trace {
    /// Replays the window to a temporary rule for the order, and prints
    /// the tree. Fails when the order has no event and no dead letter.
    pub async fn run(&self, flow: &Flow) -> Result<()> {
        let order = &self.order_id;
        let now = Utc::now();
        let to = self.to.unwrap_or(now);
        let from = self.from.unwrap_or(now - TimeDelta::days(1));
        eprintln!(
            "replaying {} .. {} from {} to a temporary rule for {order}",
            rfc3339(from),
            rfc3339(to),
            flow.stack.archive
        );
        let spinner = progress::spinner("starting the replay");
        let trace = flow
            .trace(order, from, to, |state| {
                spinner.set_message(format!("replay {state}"));
            })
            .await;
        spinner.finish_and_clear();
        let trace = trace?;
        print!("{}", trace.render());
        if trace.events.is_empty() && trace.dead_letters.is_empty() {
            bail!(
                "no event of order {order} in the archive between {} and {}",
                rfc3339(from),
                rfc3339(to)
            );
        }
        Ok(())
    }
}
