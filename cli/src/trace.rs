//! One order's story, from the bus archive: `orderflow trace`.
//!
//! The archive holds every orderflow event for 30 days, but EventBridge
//! can only read it back by replaying it onto the bus. So a trace
//! - creates a queue and a rule on the bus matching only this order's
//!   events (`detail.order_id`), with the queue as the rule's one target;
//! - replays the window **to that rule alone** (`FilterArns`), so no
//!   function sees the replayed events;
//! - reads the queue until the replay has ended and the queue is quiet;
//! - deletes the rule and the queue, however the trace ends (Ctrl-C too).
//!
//! It reads nothing the functions read and takes nothing from the audit
//! queue, so it is safe against a live stack, locally and on AWS. The
//! dead letters of the order are added from the DLQs (read without taking).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use orderflow_contracts::OrderId;
use serde_json::{Value, json};

use crate::{DeadLetter, Flow};

/// One event of the order, as the archive holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// `detail.event_id`.
    pub event_id: String,
    /// `detail.causation_id`: the event that caused this one.
    pub causation_id: Option<String>,
    /// The envelope's `detail-type`.
    pub detail_type: String,
    /// The envelope's `source`.
    pub source: String,
    /// `detail.occurred_at`.
    pub occurred_at: Option<DateTime<Utc>>,
    /// How many copies the trace received: a function that sees a
    /// duplicate publishes its stored events again, with the same ids, and
    /// the trace's rule also gets what reaches the bus while it runs (an
    /// `orderflow replay` of the same window, say).
    pub copies: usize,
}

impl Traced {
    /// Reads an EventBridge envelope as a queue target receives it.
    pub fn parse(body: &str) -> Option<Self> {
        let envelope: Value = serde_json::from_str(body).ok()?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let detail = &envelope["detail"];
        Some(Self {
            event_id: text(&detail["event_id"])?,
            causation_id: text(&detail["causation_id"]),
            detail_type: text(&envelope["detail-type"]).unwrap_or_default(),
            source: text(&envelope["source"]).unwrap_or_default(),
            occurred_at: text(&detail["occurred_at"])
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
            copies: 1,
        })
    }

    /// The service that emitted it: `payment` for `orderflow.payment`.
    pub fn service(&self) -> &str {
        self.source
            .strip_prefix("orderflow.")
            .unwrap_or(&self.source)
    }
}

/// An order's events and dead letters.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The order.
    pub order_id: OrderId,
    /// The window searched.
    pub from: DateTime<Utc>,
    /// The window's end.
    pub to: DateTime<Utc>,
    /// Its events, one per event id, by time.
    pub events: Vec<Traced>,
    /// Its messages in the stack's DLQs, with the DLQ's name.
    pub dead_letters: Vec<(&'static str, DeadLetter)>,
    /// The replay that read the archive (also the temporary rule's and
    /// queue's name).
    pub replay: String,
}

impl Trace {
    /// Builds a trace from archived envelopes, keeping one event per id.
    pub fn new(
        order_id: OrderId,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        bodies: &[String],
        dead_letters: Vec<(&'static str, DeadLetter)>,
        replay: String,
    ) -> Self {
        let mut by_id: BTreeMap<String, Traced> = BTreeMap::new();
        for event in bodies.iter().filter_map(|b| Traced::parse(b)) {
            by_id
                .entry(event.event_id.clone())
                .and_modify(|e| e.copies += 1)
                .or_insert(event);
        }
        let mut events: Vec<Traced> = by_id.into_values().collect();
        events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        Self {
            order_id,
            from,
            to,
            events,
            dead_letters,
            replay,
        }
    }

    /// The causation tree, as `orderflow trace` prints it:
    ///
    /// ```text
    /// order ord-1 (4 events, 2 dead letters)
    ///   +0.000s  OrderPlaced              orders      8f1c2d3e
    ///   +0.412s  ├─ PaymentAuthorized     payment     0a1b2c3d
    ///   +0.530s  └─ StockReserved         inventory   4e5f6a7b
    ///   +1.020s     └─ ShipmentScheduled  shipping    9c8d7e6f
    /// ```
    pub fn render(&self) -> String {
        let mut out = format!(
            "order {} ({} event(s) in the archive between {} and {}, {} dead letter(s))\n",
            self.order_id,
            self.events.len(),
            self.from.format("%Y-%m-%dT%H:%M:%SZ"),
            self.to.format("%Y-%m-%dT%H:%M:%SZ"),
            self.dead_letters.len(),
        );
        let ids: HashMap<&str, usize> = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.event_id.as_str(), i))
            .collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); self.events.len()];
        let mut roots = Vec::new();
        for (i, event) in self.events.iter().enumerate() {
            match event.causation_id.as_deref().and_then(|c| ids.get(c)) {
                Some(&parent) if parent != i => children[parent].push(i),
                _ => roots.push(i),
            }
        }
        let start = self.events.iter().filter_map(|e| e.occurred_at).min();
        let mut rows = Vec::new();
        for &root in &roots {
            self.walk(root, "", None, &children, &mut rows);
        }
        for (prefix, i) in rows {
            let event = &self.events[i];
            let offset = match (event.occurred_at, start) {
                (Some(at), Some(start)) => {
                    format!("+{:.3}s", (at - start).num_milliseconds() as f64 / 1000.0)
                }
                _ => "?".to_owned(),
            };
            let name = format!("{prefix}{}", event.detail_type);
            let mut line = format!(
                "  {offset:>9}  {name:<34} {:<10} {}",
                event.service(),
                short(&event.event_id)
            );
            if let Some(cause) = &event.causation_id
                && !ids.contains_key(cause.as_str())
            {
                let _ = write!(line, "  (cause {} not in the window)", short(cause));
            }
            if event.copies > 1 {
                let _ = write!(line, "  ({} copies)", event.copies);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for (queue, letter) in &self.dead_letters {
            let _ = writeln!(
                out,
                "  dead letter in the {queue} DLQ: {} ({}: {}), message {}",
                letter.detail_type().unwrap_or_else(|| "?".into()),
                or_dash(letter.attribute("orderflow.error_kind")),
                or_dash(letter.attribute("orderflow.error_message")),
                letter.message_id,
            );
        }
        out
    }

    fn walk(
        &self,
        i: usize,
        indent: &str,
        last: Option<bool>,
        children: &[Vec<usize>],
        rows: &mut Vec<(String, usize)>,
    ) {
        let (branch, deeper) = match last {
            None => (String::new(), String::new()),
            Some(true) => (format!("{indent}└─ "), format!("{indent}   ")),
            Some(false) => (format!("{indent}├─ "), format!("{indent}│  ")),
        };
        rows.push((branch, i));
        let kids = &children[i];
        for (n, &kid) in kids.iter().enumerate() {
            self.walk(kid, &deeper, Some(n + 1 == kids.len()), children, rows);
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// The temporary rule and queue of one trace.
struct Scratch {
    name: String,
    queue_url: Option<String>,
    rule_arn: Option<String>,
}

impl Flow {
    /// The events of `order` in the archive between `from` and `to`, and
    /// its dead letters. Calls `progress` with each new replay state.
    pub async fn trace(
        &self,
        order: &OrderId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: impl FnMut(&str),
    ) -> Result<Trace> {
        if from >= to {
            bail!("--from ({from}) must be before --to ({to})");
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut scratch = Scratch {
            name: format!("{}{}", self.trace_prefix(), &id[..12]),
            queue_url: None,
            rule_arn: None,
        };
        let traced = tokio::select! {
            traced = self.trace_into(&mut scratch, order, from, to, progress) => traced,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        let removed = self.remove(&scratch).await;
        let bodies = traced?;
        removed?;
        let dead_letters = self.dead_letters_of(order).await?;
        Ok(Trace::new(
            order.clone(),
            (from, to),
            &bodies,
            dead_letters,
            scratch.name,
        ))
    }

    /// Sets up the trace's queue and rule, replays the window to that rule
    /// alone, and returns the bodies the queue received.
    async fn trace_into(
        &self,
        scratch: &mut Scratch,
        order: &OrderId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: impl FnMut(&str),
    ) -> Result<Vec<String>> {
        let (queue_url, queue_arn) = self.create_trace_queue(scratch).await?;
        let rule_arn = self.create_trace_rule(scratch, order).await?;
        self.let_rule_send(&queue_url, &queue_arn, &rule_arn)
            .await?;
        self.target_trace_queue(&scratch.name, &queue_arn).await?;
        // The queue keeps what the rule delivers while the replay runs.
        self.replay_to_rule(&scratch.name, &rule_arn, from, to, progress)
            .await?;
        self.read_until_quiet(&queue_url).await
    }

    /// Creates the trace's queue, recorded in `scratch` at once so that it
    /// is deleted however the trace ends; returns its URL and ARN.
    async fn create_trace_queue(&self, scratch: &mut Scratch) -> Result<(String, String)> {
        let queue = self
            .sqs
            .create_queue()
            .queue_name(&scratch.name)
            .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
            .attributes(QueueAttributeName::MessageRetentionPeriod, "3600")
            .send()
            .await
            .context("CreateQueue for the trace failed")?;
        let queue_url = queue.queue_url().context("CreateQueue gave no URL")?;
        scratch.queue_url = Some(queue_url.to_owned());
        let queue_arn = self.queue_arn(queue_url).await?;
        Ok((queue_url.to_owned(), queue_arn))
    }

    /// Creates the trace's rule, matching only `order`'s events, recorded in
    /// `scratch` at once so that it is deleted however the trace ends;
    /// returns its ARN.
    async fn create_trace_rule(&self, scratch: &mut Scratch, order: &OrderId) -> Result<String> {
        let pattern = json!({
            "source": [{"prefix": "orderflow."}],
            "detail": {"order_id": [order.as_str()]},
        });
        let rule = self
            .events
            .put_rule()
            .name(&scratch.name)
            .event_bus_name(&self.stack.bus)
            .event_pattern(pattern.to_string())
            .description("orderflow trace: deleted when the trace ends")
            .send()
            .await
            .context("PutRule for the trace failed")?;
        let rule_arn = rule.rule_arn().context("PutRule gave no ARN")?.to_owned();
        scratch.rule_arn = Some(rule_arn.clone());
        Ok(rule_arn)
    }

    /// Lets the trace's rule, and only it, send to the trace's queue.
    async fn let_rule_send(&self, queue_url: &str, queue_arn: &str, rule_arn: &str) -> Result<()> {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }],
        });
        self.sqs
            .set_queue_attributes()
            .queue_url(queue_url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .context("SetQueueAttributes (policy) for the trace failed")?;
        Ok(())
    }

    /// Makes the trace's queue the one target of the trace's rule.
    async fn target_trace_queue(&self, rule: &str, queue_arn: &str) -> Result<()> {
        let target = Target::builder()
            .id("trace")
            .arn(queue_arn)
            .build()
            .context("trace target")?;
        let put = self
            .events
            .put_targets()
            .rule(rule)
            .event_bus_name(&self.stack.bus)
            .targets(target)
            .send()
            .await
            .context("PutTargets for the trace failed")?;
        if put.failed_entry_count() > 0 {
            bail!(
                "PutTargets for the trace failed: {:?}",
                put.failed_entries()
            );
        }
        Ok(())
    }

    /// Replays the window onto the bus for the trace's rule alone, and
    /// fails unless the replay completes.
    async fn replay_to_rule(
        &self,
        name: &str,
        rule_arn: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: impl FnMut(&str),
    ) -> Result<()> {
        let destination = ReplayDestination::builder()
            .arn(&self.stack.bus_arn)
            .filter_arns(rule_arn)
            .build()
            .context("replay destination")?;
        let replayed = self
            .run_replay(name, from, to, destination, progress)
            .await?;
        if replayed.state != ReplayState::Completed.as_str() {
            bail!(
                "replay {} ended {}: {}",
                replayed.name,
                replayed.state,
                replayed.reason.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Reads the trace's queue until it has been quiet twice running.
    async fn read_until_quiet(&self, queue_url: &str) -> Result<Vec<String>> {
        // Delivery from the rule to the queue lags the replay's end.
        let mut bodies = Vec::new();
        let mut quiet = 0;
        while quiet < 2 {
            let before = bodies.len();
            self.drain(queue_url, &mut bodies, Duration::from_secs(2))
                .await?;
            quiet = if bodies.len() == before { quiet + 1 } else { 0 };
        }
        Ok(bodies)
    }

    /// Reads (and deletes) what the trace queue holds, waiting up to
    /// `wait` for the first message.
    async fn drain(&self, url: &str, bodies: &mut Vec<String>, wait: Duration) -> Result<()> {
        let mut wait = wait.as_secs() as i32;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .send()
                .await
                .context("ReceiveMessage on the trace queue failed")?;
            if out.messages().is_empty() {
                return Ok(());
            }
            for message in out.messages() {
                bodies.push(message.body().unwrap_or_default().to_owned());
                if let Some(handle) = message.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("DeleteMessage on the trace queue failed")?;
                }
            }
            wait = 0;
        }
    }

    /// Deletes whatever of the trace's rule and queue exists.
    async fn remove(&self, scratch: &Scratch) -> Result<()> {
        let mut failed = Vec::new();
        if scratch.rule_arn.is_some() {
            let targets = self
                .events
                .remove_targets()
                .rule(&scratch.name)
                .event_bus_name(&self.stack.bus)
                .ids("trace")
                .send()
                .await;
            let rule = self
                .events
                .delete_rule()
                .name(&scratch.name)
                .event_bus_name(&self.stack.bus)
                .send()
                .await;
            if let Err(e) = targets {
                failed.push(format!("rule {}'s target: {e}", scratch.name));
            }
            if let Err(e) = rule {
                failed.push(format!("rule {}: {e}", scratch.name));
            }
        }
        if let Some(url) = &scratch.queue_url
            && let Err(e) = self.sqs.delete_queue().queue_url(url).send().await
        {
            failed.push(format!("queue {url}: {e}"));
        }
        if !failed.is_empty() {
            bail!(
                "could not remove the trace's {}; delete by hand",
                failed.join(" and ")
            );
        }
        Ok(())
    }

    /// What the names of a trace's rule, queue and replay start with. Rule
    /// and replay names hold at most 64 of `[.-_A-Za-z0-9]`.
    fn trace_prefix(&self) -> String {
        let stack: String = self.stack.name.chars().take(40).collect();
        format!("{stack}-trace-")
    }

    /// The names of the trace rules and queues that exist now: none, unless
    /// a trace is running or one was killed before it could clean up.
    pub async fn trace_leftovers(&self) -> Result<Vec<String>> {
        let prefix = self.trace_prefix();
        let rules = self
            .events
            .list_rules()
            .event_bus_name(&self.stack.bus)
            .name_prefix(&prefix)
            .send()
            .await
            .context("ListRules failed")?;
        let queues = self
            .sqs
            .list_queues()
            .queue_name_prefix(&prefix)
            .send()
            .await
            .context("ListQueues failed")?;
        let mut names: Vec<String> = rules
            .rules()
            .iter()
            .filter_map(|r| r.name().map(|n| format!("rule {n}")))
            .chain(queues.queue_urls().iter().map(|u| format!("queue {u}")))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The messages about `order` in the stack's DLQs, left in place.
    async fn dead_letters_of(&self, order: &OrderId) -> Result<Vec<(&'static str, DeadLetter)>> {
        let mut found = Vec::new();
        for queue in self.dead_letter_queues() {
            for letter in self.peek_dead_letters(&queue).await? {
                if letter.order_id().as_deref() == Some(order.as_str()) {
                    found.push((queue.name, letter));
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn envelope(id: &str, cause: Option<&str>, kind: &str, source: &str, at: &str) -> String {
        json!({
            "source": source,
            "detail-type": kind,
            "detail": {
                "event_id": id,
                "order_id": "ord-1",
                "causation_id": cause,
                "occurred_at": at,
            },
        })
        .to_string()
    }

    fn trace(bodies: &[String]) -> Trace {
        let at = |h: u32| Utc.with_ymd_and_hms(2026, 11, 24, h, 0, 0).single();
        let (Ok(order), Some(from), Some(to)) = (OrderId::new("ord-1"), at(9), at(10)) else {
            unreachable!("constant order id and times are valid")
        };
        Trace::new(
            order,
            (from, to),
            bodies,
            Vec::new(),
            "orderflow-trace-1".to_owned(),
        )
    }

    #[test]
    fn renders_the_causation_tree_with_offsets_and_copies() {
        let bodies = [
            envelope(
                "cccccccc-3",
                Some("bbbbbbbb-2"),
                "ShipmentScheduled",
                "orderflow.shipping",
                "2026-11-24T09:30:01.020Z",
            ),
            envelope(
                "aaaaaaaa-1",
                None,
                "OrderPlaced",
                "orderflow.orders",
                "2026-11-24T09:30:00Z",
            ),
            envelope(
                "dddddddd-4",
                Some("aaaaaaaa-1"),
                "PaymentAuthorized",
                "orderflow.payment",
                "2026-11-24T09:30:00.412Z",
            ),
            envelope(
                "bbbbbbbb-2",
                Some("aaaaaaaa-1"),
                "StockReserved",
                "orderflow.inventory",
                "2026-11-24T09:30:00.530Z",
            ),
            envelope(
                "bbbbbbbb-2",
                Some("aaaaaaaa-1"),
                "StockReserved",
                "orderflow.inventory",
                "2026-11-24T09:30:00.530Z",
            ),
        ];
        let text = trace(&bodies).render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("order ord-1 (4 event(s)"), "{text}");
        let expected = [
            ("+0.000s", "OrderPlaced", "orders"),
            ("+0.412s", "├─ PaymentAuthorized", "payment"),
            ("+0.530s", "└─ StockReserved", "inventory"),
            ("+1.020s", "   └─ ShipmentScheduled", "shipping"),
        ];
        for (line, (offset, name, service)) in lines[1..].iter().zip(expected) {
            let cells: Vec<&str> = line.split("  ").filter(|c| !c.is_empty()).collect();
            assert_eq!(cells[0].trim(), offset, "{text}");
            assert!(line.contains(&format!("{name} ")), "`{name}` in {line}");
            assert!(line.contains(service), "{line}");
        }
        assert!(lines[3].contains("(2 copies)"), "{text}");
        assert_eq!(lines.len(), 5, "{text}");
    }

    #[test]
    fn an_event_whose_cause_is_outside_the_window_is_a_root_and_says_so() {
        let bodies = [envelope(
            "bbbbbbbb-2",
            Some("aaaaaaaa-1"),
            "StockReserved",
            "orderflow.inventory",
            "2026-11-24T09:30:00Z",
        )];
        let text = trace(&bodies).render();
        assert!(
            text.contains("StockReserved") && text.contains("(cause aaaaaaaa not in the window)"),
            "{text}"
        );
    }

    #[test]
    fn bodies_that_are_not_events_are_left_out() {
        let text = trace(&["not json".to_owned(), "{}".to_owned()]).render();
        assert!(text.starts_with("order ord-1 (0 event(s)"), "{text}");
    }
}
