//! `orderflow replay`: archived events, replayed onto the bus.

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use clap::Args;

use super::rfc3339;
use crate::flow::Flow;
use crate::ops::parse_time;
use crate::progress;

/// Which window to replay, and to which rules.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Replay {
    /// The window's start: an RFC 3339 time (2026-11-24T09:30:00Z) or `now`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: DateTime<Utc>,
    /// The window's end (excluded): an RFC 3339 time or `now`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: DateTime<Utc>,
    /// Only to the rules that route this detail-type (EventBridge replays
    /// per rule, not per event).
    #[arg(long, value_name = "TYPE")]
    pub detail_type: Option<String>,
}

impl Replay {
    /// Runs the replay and waits for it to end; idempotency keeps every
    /// effect single, so a replay is safe against a live stack.
    pub async fn run(&self, flow: &Flow) -> Result<()> {
        println!(
            "replaying {} .. {} from {}",
            rfc3339(self.from),
            rfc3339(self.to),
            flow.stack.archive
        );
        let spinner = progress::spinner("starting the replay");
        let replayed = flow
            .replay(self.from, self.to, self.detail_type.as_deref(), |state| {
                spinner.set_message(format!("replay {state}"));
            })
            .await;
        spinner.finish_and_clear();
        let replayed = replayed?;
        if replayed.state != "COMPLETED" {
            bail!(
                "replay {} ended {}: {}",
                replayed.name,
                replayed.state,
                replayed.reason.unwrap_or_default()
            );
        }
        println!(
            "replay {} completed; idempotency keeps every effect single",
            replayed.name
        );
        Ok(())
    }
}
