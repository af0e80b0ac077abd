//! Operations on a deployed stack: its dead-letter queues (list, show,
//! redrive) and replays from the bus archive. `orderflow dlq` and
//! `orderflow replay` print what these return; the same calls serve AWS
//! and the local cloud.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{DeadLetter, Flow};

/// A dead-letter queue of the stack and the queue it catches for.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    /// `payment`, `inventory`, `shipping` or `audit`.
    pub name: &'static str,
    /// The DLQ.
    pub url: String,
    /// The queue whose failures it holds: where a redrive sends them.
    pub source_url: String,
}

/// A DLQ's depth.
#[derive(Debug, Clone)]
pub struct DeadLetterDepth {
    /// The queue.
    pub queue: DeadLetterQueue,
    /// Messages waiting.
    pub depth: u64,
    /// Messages received by someone and not yet deleted or released.
    pub in_flight: u64,
    /// How long the oldest waiting message has been there.
    pub oldest: Option<Duration>,
}

/// What a redrive moved.
#[derive(Debug, Clone, Default)]
pub struct Redriven {
    /// Message ids moved (or that would move, on a dry run).
    pub moved: Vec<String>,
    /// For a whole-queue move: what the move task reports.
    pub task_status: Option<String>,
}

/// How a replay ended.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The replay's name.
    pub name: String,
    /// `COMPLETED`, `FAILED` or `CANCELLED`.
    pub state: String,
    /// Why, when it did not complete.
    pub reason: Option<String>,
}

impl Flow {
    /// The stack's dead-letter queues, by name.
    pub fn dead_letter_queues(&self) -> Vec<DeadLetterQueue> {
        let mut queues: Vec<DeadLetterQueue> = self
            .stack
            .services()
            .iter()
            .map(|s| DeadLetterQueue {
                name: s.name,
                url: s.dlq_url.clone(),
                source_url: s.queue_url.clone(),
            })
            .collect();
        queues.push(DeadLetterQueue {
            name: "audit",
            url: self.stack.audit_dlq_url.clone(),
            source_url: self.stack.audit_queue_url.clone(),
        });
        queues
    }

    /// The dead-letter queue called `name`.
    pub fn dead_letter_queue(&self, name: &str) -> Result<DeadLetterQueue> {
        let queues = self.dead_letter_queues();
        let names: Vec<&str> = queues.iter().map(|q| q.name).collect();
        queues
            .iter()
            .find(|q| q.name == name)
            .cloned()
            .with_context(|| format!("no DLQ `{name}`: the stack's DLQs are {}", names.join(", ")))
    }

    /// Every DLQ with its depth and the age of its oldest message.
    pub async fn dead_letter_depths(&self) -> Result<Vec<DeadLetterDepth>> {
        let mut depths = Vec::new();
        for queue in self.dead_letter_queues() {
            let (depth, in_flight) = self
                .queue_counts(&queue.url)
                .await
                .with_context(|| format!("GetQueueAttributes of the {} DLQ failed", queue.name))?;
            // SQS has no oldest-message attribute (CloudWatch has the
            // metric, a minute late): look at the messages themselves.
            let oldest = if depth == 0 {
                None
            } else {
                self.peek(&queue.url)
                    .await?
                    .iter()
                    .filter_map(|l| l.sent_at)
                    .min()
                    .and_then(|sent| (Utc::now() - sent).to_std().ok())
            };
            depths.push(DeadLetterDepth {
                queue,
                depth,
                in_flight,
                oldest,
            });
        }
        Ok(depths)
    }

    /// Each function's queue with the messages waiting in it and in
    /// flight: `(function, waiting, in flight)`. All zero once every
    /// delivery, redeliveries after a crash included, is done.
    pub async fn backlog(&self) -> Result<Vec<(&'static str, u64, u64)>> {
        let mut backlog = Vec::new();
        for service in self.stack.services() {
            let (waiting, in_flight) =
                self.queue_counts(&service.queue_url)
                    .await
                    .with_context(|| {
                        format!("GetQueueAttributes of the {} queue failed", service.name)
                    })?;
            backlog.push((service.name, waiting, in_flight));
        }
        Ok(backlog)
    }

    /// `(messages waiting, messages in flight)` in the queue at `url`.
    async fn queue_counts(&self, url: &str) -> Result<(u64, u64)> {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let number = |name: QueueAttributeName| -> u64 {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            number(QueueAttributeName::ApproximateNumberOfMessages),
            number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// Moves messages of DLQ `name` back to its source queue: those with
    /// the given ids, or all of them. With `dry_run`, only says which.
    pub async fn redrive(&self, name: &str, ids: &[String], dry_run: bool) -> Result<Redriven> {
        let queue = self.dead_letter_queue(name)?;
        let mut letters = self.peek(&queue.url).await?;
        // Another reader (a peek by `dlq show`, say) hides what it reads
        // for a moment: look again before calling an id unknown.
        for _ in 0..3 {
            if ids
                .iter()
                .all(|id| letters.iter().any(|l| &l.message_id == id))
            {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            letters = self.peek(&queue.url).await?;
        }
        let chosen: Vec<String> = if ids.is_empty() {
            letters.iter().map(|l| l.message_id.clone()).collect()
        } else {
            let unknown: Vec<&String> = ids
                .iter()
                .filter(|id| !letters.iter().any(|l| &l.message_id == *id))
                .collect();
            if !unknown.is_empty() {
                bail!("not in the {name} DLQ: {unknown:?}");
            }
            ids.to_vec()
        };
        if dry_run || chosen.is_empty() {
            return Ok(Redriven {
                moved: chosen,
                task_status: None,
            });
        }
        if ids.is_empty() {
            let status = self.move_all(&queue).await?;
            return Ok(Redriven {
                moved: chosen,
                task_status: Some(status),
            });
        }
        self.move_some(&queue, &chosen).await?;
        Ok(Redriven {
            moved: chosen,
            task_status: None,
        })
    }

    /// StartMessageMoveTask from the DLQ to its source, and waits for it.
    async fn move_all(&self, queue: &DeadLetterQueue) -> Result<String> {
        let source = self.queue_arn(&queue.url).await?;
        let destination = self.queue_arn(&queue.source_url).await?;
        // The destination is explicit: the runtime's dead letters were sent
        // by the function, so SQS has no source queue recorded for them.
        self.sqs
            .start_message_move_task()
            .source_arn(&source)
            .destination_arn(&destination)
            .send()
            .await
            .with_context(|| format!("StartMessageMoveTask on the {} DLQ failed", queue.name))?;
        for _ in 0..120 {
            let tasks = self
                .sqs
                .list_message_move_tasks()
                .source_arn(&source)
                .max_results(1)
                .send()
                .await
                .context("ListMessageMoveTasks failed")?;
            if let Some(task) = tasks.results().first() {
                match task.status() {
                    Some("COMPLETED") => {
                        return Ok(format!(
                            "COMPLETED, {} moved",
                            task.approximate_number_of_messages_moved()
                        ));
                    }
                    Some(status @ ("FAILED" | "CANCELLED")) => bail!(
                        "the move task {status}: {}",
                        task.failure_reason().unwrap_or("no reason given")
                    ),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("the move task did not finish within 60 s; see `orderflow dlq list`")
    }

    /// Sends the chosen messages to the source queue, then deletes them
    /// from the DLQ: a crash in between leaves a copy in both, which
    /// idempotency makes harmless.
    async fn move_some(&self, queue: &DeadLetterQueue, ids: &[String]) -> Result<()> {
        let mut left: Vec<&String> = ids.iter().collect();
        // The messages read and not chosen stay hidden until the end, so
        // that each receive reaches further into the queue; then they are
        // made visible again.
        let mut passed: Vec<String> = Vec::new();
        let moved = self.move_chosen(queue, &mut left, &mut passed).await;
        let released = crate::flow::release(&self.sqs, &queue.url, &passed).await;
        moved?;
        released?;
        if !left.is_empty() {
            bail!(
                "could not receive {left:?} from the {} DLQ (in flight elsewhere?)",
                queue.name
            );
        }
        Ok(())
    }

    async fn move_chosen(
        &self,
        queue: &DeadLetterQueue,
        left: &mut Vec<&String>,
        passed: &mut Vec<String>,
    ) -> Result<()> {
        let mut idle = 0;
        while !left.is_empty() && idle < 10 {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .send()
                .await
                .with_context(|| format!("could not read the {} DLQ", queue.name))?;
            if received.messages().is_empty() {
                // Hidden for a moment by another reader, perhaps.
                idle += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            idle = 0;
            for message in received.messages() {
                let id = message.message_id().unwrap_or_default();
                let handle = message.receipt_handle().unwrap_or_default();
                let Some(at) = left.iter().position(|l| l.as_str() == id) else {
                    passed.push(handle.to_owned());
                    continue;
                };
                self.sqs
                    .send_message()
                    .queue_url(&queue.source_url)
                    .message_body(message.body().unwrap_or_default())
                    .set_message_attributes(message.message_attributes().cloned())
                    .send()
                    .await
                    .with_context(|| format!("could not send {id} to its source queue"))?;
                self.sqs
                    .delete_message()
                    .queue_url(&queue.url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .with_context(|| format!("could not delete {id} from the DLQ"))?;
                left.remove(at);
            }
        }
        Ok(())
    }

    pub(crate) async fn queue_arn(&self, url: &str) -> Result<String> {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .with_context(|| format!("GetQueueAttributes of {url} failed"))?;
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .with_context(|| format!("{url} has no QueueArn"))
    }

    /// Replays the archived events of `[from, to)` onto the bus, to every
    /// rule, or with `detail_type` only to the rules that route that type
    /// (EventBridge replays per rule, not per event). Calls `progress`
    /// with each new state, and returns when the replay ends.
    pub async fn replay(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        detail_type: Option<&str>,
        progress: impl FnMut(&str),
    ) -> Result<Replayed> {
        if from >= to {
            bail!("--from ({from}) must be before --to ({to})");
        }
        let mut destination = ReplayDestination::builder().arn(&self.stack.bus_arn);
        if let Some(detail_type) = detail_type {
            let rules = self.rules_routing(detail_type).await?;
            if rules.is_empty() {
                bail!("no rule on the bus routes {detail_type}");
            }
            destination = destination.set_filter_arns(Some(rules));
        }
        let name = format!("orderflow-{}", Utc::now().format("%Y%m%dT%H%M%S%3f"));
        let destination = destination.build().context("replay destination")?;
        self.run_replay(&name, from, to, destination, progress)
            .await
    }

    /// Starts replay `name` of `[from, to)` to `destination` and waits for
    /// it to end, calling `progress` with each new state.
    pub(crate) async fn run_replay(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        destination: ReplayDestination,
        mut progress: impl FnMut(&str),
    ) -> Result<Replayed> {
        self.events
            .start_replay()
            .replay_name(name)
            .event_source_arn(&self.stack.archive_arn)
            .event_start_time(aws_time(from))
            .event_end_time(aws_time(to))
            .destination(destination)
            .send()
            .await
            .context("StartReplay failed")?;
        let mut last = String::new();
        for _ in 0..600 {
            let replay = self
                .events
                .describe_replay()
                .replay_name(name)
                .send()
                .await
                .context("DescribeReplay failed")?;
            let state = replay
                .state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            let line = match replay.event_last_replayed_time() {
                Some(at) => format!("{state} (replayed up to {at})"),
                None => state.clone(),
            };
            if line != last {
                progress(&line);
                last = line;
            }
            match replay.state() {
                Some(ReplayState::Completed | ReplayState::Failed | ReplayState::Cancelled) => {
                    return Ok(Replayed {
                        name: name.to_owned(),
                        state,
                        reason: replay.state_reason().map(str::to_owned),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        bail!("replay {name} did not end within 5 minutes (state {last})")
    }

    /// The ARNs of the bus's rules whose pattern can match `detail_type`.
    async fn rules_routing(&self, detail_type: &str) -> Result<Vec<String>> {
        let rules = self
            .events
            .list_rules()
            .event_bus_name(&self.stack.bus)
            .send()
            .await
            .context("ListRules failed")?;
        Ok(rules
            .rules()
            .iter()
            .filter(|r| {
                r.event_pattern()
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .is_some_and(|p| pattern_allows(&p, detail_type))
            })
            .filter_map(|r| r.arn().map(str::to_owned))
            .collect())
    }

    /// Every message in `queue`, left in place.
    pub async fn peek_dead_letters(&self, queue: &DeadLetterQueue) -> Result<Vec<DeadLetter>> {
        self.peek(&queue.url).await
    }

    async fn peek(&self, url: &str) -> Result<Vec<DeadLetter>> {
        crate::flow::peek(&self.sqs, url).await
    }
}

/// Whether an event pattern (or one of its `$or` branches) lets events of
/// `detail_type` through: it names the type, or does not filter on it.
pub fn pattern_allows(pattern: &Value, detail_type: &str) -> bool {
    if let Some(branches) = pattern.get("$or").and_then(Value::as_array) {
        return branches.iter().any(|b| pattern_allows(b, detail_type));
    }
    match pattern.get("detail-type").and_then(Value::as_array) {
        None => true,
        Some(types) => types.iter().any(|t| t.as_str() == Some(detail_type)),
    }
}

/// An RFC 3339 time, or `now`.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if text == "now" {
        return Ok(Utc::now());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("`{text}` is not an RFC 3339 time (like 2026-11-24T09:30:00Z) or `now`")
        })
}

fn aws_time(at: DateTime<Utc>) -> aws_sdk_eventbridge::primitives::DateTime {
    aws_sdk_eventbridge::primitives::DateTime::from_millis(at.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::pattern_allows;

    #[test]
    fn a_rule_routes_a_type_it_names_or_does_not_filter() {
        let payment = json!({"$or": [
            {"source": ["orderflow.orders"], "detail-type": ["OrderPlaced"]},
            {"source": ["orderflow.inventory"], "detail-type": ["StockUnavailable"]},
        ]});
        assert!(pattern_allows(&payment, "StockUnavailable"));
        assert!(!pattern_allows(&payment, "PaymentDeclined"));
        let audit = json!({"source": [{"prefix": "orderflow."}]});
        assert!(pattern_allows(&audit, "PaymentDeclined"));
    }
}
