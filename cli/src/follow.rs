//! Orders followed live: placed on the bus, their events printed as the
//! audit queue delivers them, until each settles. `orderflow place-order`
//! and `cargo xtask demo` are built on it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;
use orderflow_contracts::Message;

use crate::audit::Seen;
use crate::flow::Flow;
use crate::outcome::Outcome;
use crate::progress;

/// How an order ended, and how long after the first put the event that
/// settled it arrived.
pub type Settled = (Outcome, Option<Duration>);

/// Places the orders, prints their events as they arrive, and returns each
/// order's outcome and latency (first put to the event that settled it).
/// An order still pending after `settle` is returned as
/// [`Outcome::Pending`]. A spinner on stderr counts the orders settled.
pub async fn follow(flow: &Flow, messages: &[Message], settle: Duration) -> Result<Vec<Settled>> {
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
    let spinner = progress::spinner(waiting(&results));
    loop {
        for seen in audit.since(read) {
            read += 1;
            if seen
                .order_id
                .as_deref()
                .is_some_and(|o| ours.contains_key(o))
            {
                spinner.suspend(|| println!("{}", timeline_line(&seen, started, &names)));
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
                spinner.suspend(|| println!("  = {order}: {outcome}"));
                results[i] = (outcome, last);
                spinner.set_message(waiting(&results));
            }
        }
        if results.iter().all(|(o, _)| *o != Outcome::Pending) || started.elapsed() > settle {
            spinner.finish_and_clear();
            return Ok(results);
        }
        audit.changed(read, Duration::from_millis(500)).await;
    }
}

/// The spinner's message: `waiting for orders to settle (1 of 4 settled)`.
fn waiting(results: &[Settled]) -> String {
    let settled = results
        .iter()
        .filter(|(o, _)| *o != Outcome::Pending)
        .count();
    format!(
        "waiting for orders to settle ({settled} of {} settled)",
        results.len()
    )
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::waiting;
    use crate::outcome::Outcome;

    #[test]
    fn the_spinner_counts_settled_orders() {
        let results = [
            (Outcome::Shipped, Some(Duration::from_secs(1))),
            (Outcome::Pending, None),
        ];
        assert_eq!(
            waiting(&results),
            "waiting for orders to settle (1 of 2 settled)"
        );
    }
}
