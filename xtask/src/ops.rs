//! `cargo xtask ops`: see, understand and recover a deployed stack
//! without writing code. The same flags for the local cloud (the default)
//! and AWS (`--aws`, `--profile`, `--region`, `--stack-name`).

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, TimeDelta, Utc};
use orderflow_contracts::OrderId;
use orderflow_flow::ops::parse_time;

use crate::target::Target;

const USAGE: &str = "\
usage: cargo xtask ops <command> [--aws [--profile P] [--region R] | --cloud NAME] [--stack-name NAME]

  dlq list                         every DLQ: depth, in flight, oldest message age
  dlq show <queue>                 each message with its reason (read only)
  dlq redrive <queue> (--all | --id ID...) [--dry-run]
                                   move messages back to their source queue
  replay --from TIME --to TIME [--detail-type TYPE]
                                   replay archived events onto the bus (RFC 3339
                                   times, or `now`); with --detail-type, only to
                                   the rules that route that type
  trace <order_id> [--from TIME] [--to TIME]
                                   the order's events from the archive as a
                                   causation tree, and its dead letters
                                   (default window: the last 24 hours)

  <queue> is payment, inventory, shipping or audit.
";

/// Runs `cargo xtask ops`.
pub fn main(args: &[String]) -> Result<()> {
    let (target, rest) = Target::parse(args)?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["dlq", "list"] => list(&target),
        ["dlq", "show", queue] => show(&target, queue),
        ["dlq", "redrive", queue, flags @ ..] => redrive(&target, queue, flags),
        ["replay", flags @ ..] => replay(&target, flags),
        ["trace", order, flags @ ..] => trace(&target, order, flags),
        _ => bail!("{USAGE}"),
    }
}

fn list(target: &Target) -> Result<()> {
    let (runtime, flow) = target.connect()?;
    let depths = runtime.block_on(flow.dead_letter_depths())?;
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

fn show(target: &Target, queue: &str) -> Result<()> {
    let (runtime, flow) = target.connect()?;
    let dlq = flow.dead_letter_queue(queue)?;
    let letters = runtime.block_on(flow.peek_dead_letters(&dlq))?;
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

fn redrive(target: &Target, queue: &str, flags: &[&str]) -> Result<()> {
    let mut ids = Vec::new();
    let mut all = false;
    let mut dry_run = false;
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match *flag {
            "--all" => all = true,
            "--dry-run" => dry_run = true,
            "--id" => ids.push(flags.next().context("--id needs a message id")?.to_string()),
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    // Exactly one of the two: --all, or some ids.
    if all != ids.is_empty() {
        bail!("say which messages: --all, or one or more --id\n\n{USAGE}");
    }
    let (runtime, flow) = target.connect()?;
    let redriven = runtime.block_on(flow.redrive(queue, &ids, dry_run))?;
    let verb = if dry_run { "would move" } else { "moved" };
    println!(
        "{verb} {} message(s) from the {queue} DLQ to its source queue",
        redriven.moved.len()
    );
    for id in &redriven.moved {
        println!("  {id}");
    }
    if let Some(status) = redriven.task_status {
        println!("move task: {status}");
    }
    Ok(())
}

/// The `--flag value` pairs of `flags`, each of them one of `known`.
fn flag_values<'a>(flags: &[&'a str], known: &[&str]) -> Result<HashMap<&'a str, &'a str>> {
    let mut values = HashMap::new();
    let mut flags = flags.iter();
    while let Some(&flag) = flags.next() {
        if !known.contains(&flag) {
            bail!("unknown argument `{flag}`\n\n{USAGE}");
        }
        let value = flags
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        values.insert(flag, *value);
    }
    Ok(values)
}

/// The time `--from` or `--to` gives, if given.
fn time_flag(values: &HashMap<&str, &str>, flag: &str) -> Result<Option<DateTime<Utc>>> {
    values.get(flag).map(|text| parse_time(text)).transpose()
}

fn replay(target: &Target, flags: &[&str]) -> Result<()> {
    let values = flag_values(flags, &["--from", "--to", "--detail-type"])?;
    let detail_type = values.get("--detail-type").copied();
    let (Some(from), Some(to)) = (time_flag(&values, "--from")?, time_flag(&values, "--to")?)
    else {
        bail!("replay needs --from and --to\n\n{USAGE}");
    };
    let (runtime, flow) = target.connect()?;
    println!(
        "replaying {} .. {} from {}",
        rfc3339(from),
        rfc3339(to),
        flow.stack.archive
    );
    let replayed = runtime.block_on(flow.replay(from, to, detail_type, |state| {
        println!("  {state}");
    }))?;
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

fn trace(target: &Target, order: &str, flags: &[&str]) -> Result<()> {
    let order = OrderId::new(order).map_err(|e| anyhow::anyhow!("`{order}`: {e}"))?;
    let values = flag_values(flags, &["--from", "--to"])?;
    let now = Utc::now();
    let to = time_flag(&values, "--to")?.unwrap_or(now);
    let from = time_flag(&values, "--from")?.unwrap_or(now - TimeDelta::days(1));
    let (runtime, flow) = target.connect()?;
    eprintln!(
        "replaying {} .. {} from {} to a temporary rule for {order}",
        rfc3339(from),
        rfc3339(to),
        flow.stack.archive
    );
    let trace = runtime.block_on(flow.trace(&order, from, to, |state| {
        eprintln!("  {state}");
    }))?;
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

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
