//! The audit queue, read in the background: every orderflow event the bus
//! routed, in arrival order, so that tests and the demo can watch the flow.
//!
//! One [`Audit`] drains the queue (receive, then delete) and keeps what it
//! read. Two readers of the same queue would steal each other's events, so a
//! process has one, and a concurrent `cargo xtask demo` and test run against
//! the same stack disturb each other.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use orderflow_contracts::{EventKind, Message, OrderId};
use serde_json::Value;
use tokio::sync::watch;

/// Concurrent long polls on the audit queue.
const POLLERS: usize = 3;

/// One event as the audit queue delivered it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When this process received it.
    pub at: Instant,
    /// The envelope's `detail-type`.
    pub detail_type: String,
    /// The envelope's `source`.
    pub source: String,
    /// `detail.order_id`, when there is one.
    pub order_id: Option<String>,
    /// `detail.event_id`, when there is one.
    pub event_id: Option<String>,
    /// The decoded event, when it is a valid one.
    pub message: Option<Message>,
    /// The envelope's `replay-name`: set when a replay delivered it.
    pub replay_name: Option<String>,
}

impl Seen {
    /// Reads an audit queue body (an EventBridge envelope).
    pub fn parse(body: &str, at: Instant) -> Self {
        let envelope: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let detail = &envelope["detail"];
        Self {
            at,
            detail_type: text(&envelope["detail-type"]).unwrap_or_default(),
            source: text(&envelope["source"]).unwrap_or_default(),
            order_id: text(&detail["order_id"]),
            event_id: text(&detail["event_id"]),
            message: Message::from_bus_json(body).ok(),
            replay_name: text(&envelope["replay-name"]),
        }
    }

    /// The event's kind, when it is a valid event.
    pub fn kind(&self) -> Option<EventKind> {
        self.message.as_ref().map(Message::kind)
    }
}

/// The events read so far, and a signal when more arrive.
#[derive(Clone)]
pub struct Audit {
    log: Arc<Mutex<Vec<Seen>>>,
    arrivals: watch::Receiver<usize>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Audit {
    /// Starts draining `queue_url` on the current Tokio runtime. The
    /// pollers run as long as that runtime does.
    pub fn start(sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let failure = Arc::new(Mutex::new(None));
        let (tx, arrivals) = watch::channel(0);
        let tx = Arc::new(tx);
        for _ in 0..POLLERS {
            tokio::spawn(poll(
                sqs.clone(),
                queue_url.clone(),
                Arc::clone(&log),
                Arc::clone(&tx),
                Arc::clone(&failure),
            ));
        }
        Self {
            log,
            arrivals,
            failure,
        }
    }

    /// How many events were read so far.
    pub fn len(&self) -> usize {
        lock(&self.log).len()
    }

    /// Whether nothing was read yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything read so far from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Seen> {
        lock(&self.log)
            .get(from..)
            .map(<[Seen]>::to_vec)
            .unwrap_or_default()
    }

    /// The events of one order, in arrival order.
    pub fn of(&self, order: &OrderId) -> Vec<Seen> {
        lock(&self.log)
            .iter()
            .filter(|s| s.order_id.as_deref() == Some(order.as_str()))
            .cloned()
            .collect()
    }

    /// Waits until more than `seen` events have arrived, or `timeout`.
    pub async fn changed(&self, seen: usize, timeout: Duration) -> usize {
        let mut arrivals = self.arrivals.clone();
        let _ = tokio::time::timeout(timeout, arrivals.wait_for(|n| *n > seen)).await;
        *arrivals.borrow()
    }

    /// Waits until `done` holds for the order's events, or fails after
    /// `timeout` with what was seen.
    pub async fn wait_for(
        &self,
        order: &OrderId,
        timeout: Duration,
        done: impl Fn(&[Seen]) -> bool,
    ) -> anyhow::Result<Vec<Seen>> {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.len();
            let events = self.of(order);
            if done(&events) {
                return Ok(events);
            }
            if let Some(failure) = lock(&self.failure).clone() {
                anyhow::bail!("the audit queue can't be read: {failure}");
            }
            let now = Instant::now();
            if now >= deadline {
                anyhow::bail!(
                    "order {order} did not get there within {timeout:?}; its events: {:?}",
                    events.iter().map(|s| &s.detail_type).collect::<Vec<_>>()
                );
            }
            self.changed(count, deadline - now).await;
        }
    }
}

async fn poll(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    log: Arc<Mutex<Vec<Seen>>>,
    tx: Arc<watch::Sender<usize>>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let mut errors = 0_u32;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(out) => {
                errors = 0;
                out.messages.unwrap_or_default()
            }
            Err(err) => {
                errors += 1;
                if errors >= 5 {
                    *lock(&failure) =
                        Some(format!("{}", aws_sdk_sqs::error::DisplayErrorContext(err)));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let at = Instant::now();
        let mut deletes = Vec::with_capacity(messages.len());
        {
            let mut log = lock(&log);
            for (i, message) in messages.iter().enumerate() {
                log.push(Seen::parse(message.body().unwrap_or_default(), at));
                if let Some(handle) = message.receipt_handle() {
                    deletes.push(
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(handle)
                            .build(),
                    );
                }
            }
            tx.send_replace(log.len());
        }
        let entries: Vec<_> = deletes.into_iter().filter_map(Result::ok).collect();
        // A failed delete only means the event may be seen twice, which
        // readers tolerate (they count distinct event ids).
        let _ = sqs
            .delete_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
