//! `orderflow place-order`: one order placed from a sample, and followed
//! until it settles.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::flow::Flow;
use crate::follow::follow;
use crate::order;
use crate::outcome::Outcome;

/// The sample placed when no --file is given, from the repository's root.
pub const SAMPLE: &str = "events/payment/order-placed.eventbridge.json";
/// How long the order may take to settle before the command gives up.
pub const SETTLE: Duration = Duration::from_secs(90);

/// Which order to place.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PlaceOrder {
    /// A sample OrderPlaced: an EventBridge envelope or an SQS event.
    #[arg(long, value_name = "PATH", default_value = SAMPLE)]
    pub file: PathBuf,
    /// Place it with the sample's own ids (a duplicate, if placed before)
    /// rather than fresh ones.
    #[arg(long)]
    pub as_is: bool,
}

impl PlaceOrder {
    /// Places the order, prints its events as they arrive, and fails
    /// unless it settles within [`SETTLE`].
    pub async fn run(&self, flow: &Flow) -> Result<()> {
        let file = self.file.display();
        let json =
            std::fs::read_to_string(&self.file).with_context(|| format!("reading {file}"))?;
        let message =
            order::from_sample(&json, !self.as_is).with_context(|| format!("in {file}"))?;
        println!("placing {} from {file}", message.meta.order_id);
        let results = follow(flow, std::slice::from_ref(&message), SETTLE).await?;
        match results.first() {
            Some((Outcome::Pending, _)) | None => {
                bail!("the order did not settle within {SETTLE:?}")
            }
            Some((outcome, latency)) => {
                let latency = latency
                    .map(|l| format!(" in {:.2}s", l.as_secs_f64()))
                    .unwrap_or_default();
                println!("{}: {outcome}{latency}", message.meta.order_id);
                Ok(())
            }
        }
    }
}
