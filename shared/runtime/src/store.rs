//! The state store port: idempotency records, per-order state and counters,
//! committed together.
//!
//! One table per function holds three kinds of item, keyed by `pk`:
//! - `EVENT#<event_id>`: the idempotency record. `IN_PROGRESS` with a lease
//!   while an invocation works on the event, then `COMPLETED` holding the
//!   outbox (the events to publish). It expires through the `expires_at`
//!   TTL attribute.
//! - `ORDER#<order_id>`: the function's state for one order, with a version
//!   for optimistic concurrency.
//! - `<counter key>`: a non-negative counter, e.g. `STOCK#<sku>`.

use std::future::Future;

use orderflow_contracts::{EventId, OrderId};
use serde::{Deserialize, Serialize};

use crate::error::Transient;

mod dynamo;
mod memory;

pub use dynamo::{COUNTER_ATTRIBUTE, DynamoStore, PK, STATE_ATTRIBUTE};
pub use memory::MemoryStore;

/// One event to publish, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The event's id, for logs and tests.
    pub event_id: EventId,
    /// EventBridge `source`.
    pub source: String,
    /// EventBridge `detail-type`.
    pub detail_type: String,
    /// EventBridge `detail`, as JSON.
    pub detail: String,
}

/// What claiming an event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody has processed the event: this invocation holds the lease.
    Acquired,
    /// The event was processed before; here is its outcome to re-publish.
    Completed(Vec<OutboxEntry>),
    /// Another invocation holds an unexpired lease on the event.
    Busy,
}

/// An order's state and the counters a decision needs, read together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The order's state as JSON with its version, if there is any yet.
    pub state: Option<(String, u64)>,
    /// The counters asked for, in the same order; `None` for a missing one.
    pub counters: Vec<Option<i64>>,
}

/// A change to a counter. A negative delta is conditioned on the counter
/// existing and staying at or above zero: a counter never goes negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterChange {
    /// The counter's key, e.g. `STOCK#SKU-1`.
    pub key: String,
    /// How much to add; negative to take away.
    pub delta: i64,
}

/// Everything one event changes, written atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The event being completed; its record must still be ours.
    pub event_id: EventId,
    /// The order whose state changes.
    pub order_id: OrderId,
    /// The version read in the [`Snapshot`] (0 when there was no state).
    pub expected_version: u64,
    /// The order's new state, as JSON.
    pub state: String,
    /// Counter changes.
    pub counters: Vec<CounterChange>,
    /// The events to publish once committed.
    pub outbox: Vec<OutboxEntry>,
    /// When the idempotency record expires (epoch seconds).
    pub expires_at: i64,
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Something changed since the snapshot (the order's version, a counter,
    /// or the event record). Retrying re-reads and decides again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed in a way worth retrying.
    #[error(transparent)]
    Transient(#[from] Transient),
}

/// Where a function keeps idempotency records, order state and counters.
pub trait StateStore: Send + Sync {
    /// Claims `event` until `lease_until` (epoch seconds), or reports what
    /// an earlier delivery left.
    fn claim(
        &self,
        event: EventId,
        lease_until: i64,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<Claim, Transient>> + Send;

    /// Gives a claim up, so a retry need not wait for the lease to expire.
    fn release(&self, event: EventId) -> impl Future<Output = Result<(), Transient>> + Send;

    /// Reads an order's state and the counters named by `counters`.
    fn load(
        &self,
        order: &OrderId,
        counters: &[String],
    ) -> impl Future<Output = Result<Snapshot, Transient>> + Send;

    /// Writes the state, the counter changes and the completed event record
    /// in one transaction.
    fn commit(&self, commit: &Commit) -> impl Future<Output = Result<(), CommitError>> + Send;
}

pub(crate) const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
pub(crate) const STATUS_COMPLETED: &str = "COMPLETED";

pub(crate) fn event_key(event: EventId) -> String {
    format!("EVENT#{event}")
}

/// The key of a function's state for one order.
pub fn order_key(order: &OrderId) -> String {
    format!("ORDER#{order}")
}
