//! `orderflow dlq list | show | redrive`: the stack's dead-letter queues.

use anyhow::Result;
use clap::{ArgGroup, Args, Subcommand};

use crate::flow::Flow;

/// The DLQs by name, as `show` and `redrive` take them.
const QUEUES: [&str; 4] = ["payment", "inventory", "shipping", "audit"];

/// The dead-letter queues.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Dlq {
    /// Every DLQ: depth, in flight, oldest message age.
    List,
    /// Each message in a DLQ with its reason (read only: nothing is taken).
    Show {
        /// The DLQ.
        #[arg(value_parser = QUEUES)]
        queue: String,
    },
    /// Moves messages of a DLQ back to its source queue.
    Redrive(Redrive),
}

/// `dlq redrive`: which messages, from which DLQ.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["all", "id"])))]
pub struct Redrive {
    /// The DLQ.
    #[arg(value_parser = QUEUES)]
    pub queue: String,
    /// Every message in the DLQ.
    #[arg(long)]
    pub all: bool,
    /// The message with this SQS message id (`dlq show` lists them); repeat
    /// for more.
    #[arg(long, value_name = "ID")]
    pub id: Vec<String>,
    /// Only say which messages would move.
    #[arg(long)]
    pub dry_run: bool,
}

impl Dlq {
    /// Runs the command against `flow`'s stack.
    pub async fn run(&self, flow: &Flow) -> Result<()> {
        match self {
            Dlq::List => list(flow).await,
            Dlq::Show { queue } => show(flow, queue).await,
            Dlq::Redrive(redrive) => redrive.run(flow).await,
        }
    }
}

async fn list(flow: &Flow) -> Result<()> {
    let depths = flow.dead_letter_depths().await?;
    println!(
        "{:<10} {:>7} {:>10} {:>12}  url",
        "dlq", "depth", "in flight", "oldest"
    );
    for d in depths {
        let oldest = d
            .oldest
            .map(|age| format!("{:.0}s", age.as_secs_f64()))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<10} {:>7} {:>10} {:>12}  {}",
            d.queue.name, d.depth, d.in_flight, oldest, d.queue.url
        );
    }
    Ok(())
}

async fn show(flow: &Flow, queue: &str) -> Result<()> {
    let dlq = flow.dead_letter_queue(queue)?;
    let letters = flow.peek_dead_letters(&dlq).await?;
    println!(
        "{} message(s) in the {queue} DLQ ({})",
        letters.len(),
        dlq.url
    );
    for letter in letters {
        println!("\n{}", letter.describe());
    }
    Ok(())
}

impl Redrive {
    async fn run(&self, flow: &Flow) -> Result<()> {
        // `--all` is an empty id list to the library.
        let redriven = flow.redrive(&self.queue, &self.id, self.dry_run).await?;
        let verb = if self.dry_run { "would move" } else { "moved" };
        println!(
            "{verb} {} message(s) from the {} DLQ to its source queue",
            redriven.moved.len(),
            self.queue
        );
        for id in &redriven.moved {
            println!("  {id}");
        }
        if let Some(status) = redriven.task_status {
            println!("move task: {status}");
        }
        Ok(())
    }
}
